//! `mqctl node ls|start|stop|kill|restart`.

mod kill;
mod ls;
mod restart;
mod start;
mod stop;

use mq_shared::ctl::NodeChange;

use super::Context;
use crate::args::node::NodeCommand;
use crate::error::{Outcome, Result};
use crate::output::Format;

/// Runs one `node` verb.
pub async fn run(ctx: &Context, command: NodeCommand) -> Result<Outcome> {
    match command {
        NodeCommand::Ls(args) => ls::run(ctx, &args.name).await,
        NodeCommand::Start(args) => start::run(ctx, args).await,
        NodeCommand::Stop(args) => stop::run(ctx, args).await,
        NodeCommand::Kill(args) => kill::run(ctx, args).await,
        NodeCommand::Restart(args) => restart::run(ctx, args).await,
    }
}

/// Prints what a node command did: JSON, or one sentence.
pub(crate) fn print_change(ctx: &Context, change: &NodeChange) -> Result<()> {
    if ctx.out.format() == Format::Json {
        return ctx.out.json(change);
    }
    let pid = change
        .pid
        .map(|p| format!(" (pid {p})"))
        .unwrap_or_default();
    let role = change.role.map(|r| format!(" as {r}")).unwrap_or_default();
    let sentence = match change.action {
        mq_shared::ctl::NodeAction::Unchanged => {
            format!(
                "{}/{} was already in that state{pid}.",
                change.cluster, change.node
            )
        }
        action => format!("{}/{} {action}{pid}{role}.", change.cluster, change.node),
    };
    ctx.out.sentence(&sentence)
}
