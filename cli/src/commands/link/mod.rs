//! `mqctl link add|ls|rm`.

mod add;
mod ls;
mod remote;
mod rm;

use super::Context;
use crate::args::link::LinkCommand;
use crate::error::{Outcome, Result};

/// Runs one `link` verb.
pub async fn run(ctx: &Context, command: LinkCommand) -> Result<Outcome> {
    match command {
        LinkCommand::Add(args) => add::run(ctx, args).await,
        LinkCommand::Ls(args) => ls::run(ctx, args).await,
        LinkCommand::Rm(args) => rm::run(ctx, args).await,
    }
}
