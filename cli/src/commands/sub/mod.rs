//! `mqctl sub ls|rm`: durable topic subscriptions.

mod ls;
mod rm;

use super::Context;
use crate::args::sub::SubCommand;
use crate::error::{Outcome, Result};

/// Runs one `sub` verb.
pub async fn run(ctx: &Context, command: SubCommand) -> Result<Outcome> {
    match command {
        SubCommand::Ls(args) => ls::run(ctx, args).await,
        SubCommand::Rm(args) => rm::run(ctx, args).await,
    }
}
