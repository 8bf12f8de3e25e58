//! `mqctl cluster create|ls|status|stop|start|destroy`.

mod adopt;
mod create;
mod destroy;
mod ls;
mod start;
mod status;
mod stop;

use super::Context;
use crate::args::cluster::ClusterCommand;
use crate::error::{Outcome, Result};

/// Runs one `cluster` verb.
pub async fn run(ctx: &Context, command: ClusterCommand) -> Result<Outcome> {
    match command {
        ClusterCommand::Create(args) => create::run(ctx, args).await,
        ClusterCommand::Ls => ls::run(ctx).await,
        ClusterCommand::Status(args) => status::run(ctx, args).await,
        ClusterCommand::Adopt(args) => adopt::run(ctx, args).await,
        ClusterCommand::Stop(args) => stop::run(ctx, &args.name).await,
        ClusterCommand::Start(args) => start::run(ctx, args).await,
        ClusterCommand::Destroy(args) => destroy::run(ctx, &args.name, args.yes).await,
    }
}
