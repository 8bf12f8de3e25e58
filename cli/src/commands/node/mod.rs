//! `mqctl node ls|start|stop|kill|logs|restart`.

mod kill;
mod logs;
mod ls;
mod restart;
mod start;
mod stop;

use mq_shared::ctl::{NodeAction, NodeChange};

use super::Context;
use crate::args::node::NodeCommand;
use crate::error::{Outcome, Result};

/// Runs one `node` verb.
pub async fn run(ctx: &Context, command: NodeCommand) -> Result<Outcome> {
    match command {
        NodeCommand::Ls(args) => ls::run(ctx, &args.name).await,
        NodeCommand::Start(args) => start::run(ctx, args).await,
        NodeCommand::Stop(args) => stop::run(ctx, args).await,
        NodeCommand::Kill(args) => kill::run(ctx, args).await,
        NodeCommand::Logs(args) => logs::run(ctx, args).await,
        NodeCommand::Restart(args) => restart::run(ctx, args).await,
    }
}

/// What signalling `node` did: `action` when it was running as `pid`, else nothing.
pub(crate) fn change(
    cluster: &str,
    node: &str,
    action: NodeAction,
    pid: Option<u32>,
) -> NodeChange {
    NodeChange {
        cluster: cluster.to_string(),
        node: node.to_string(),
        action: if pid.is_some() {
            action
        } else {
            NodeAction::Unchanged
        },
        pid,
        role: None,
    }
}

/// Prints what a node command did: JSON, or one sentence.
pub(crate) fn print_change(ctx: &Context, change: &NodeChange) -> Result<()> {
    ctx.out.report(change, describe)
}

/// `demo/node2 stopped (pid 123).`
fn describe(change: &NodeChange) -> String {
    let pid = change
        .pid
        .map(|p| format!(" (pid {p})"))
        .unwrap_or_default();
    let role = change.role.map(|r| format!(" as {r}")).unwrap_or_default();
    match change.action {
        NodeAction::Unchanged => {
            format!(
                "{}/{} was already in that state{pid}.",
                change.cluster, change.node
            )
        }
        action => format!("{}/{} {action}{pid}{role}.", change.cluster, change.node),
    }
}
