//! `mqctl node kill NAME/NODE`: SIGKILL to one node, as a crash would. The pid stays in the
//! manifest, so `cluster status` shows the node as down rather than stopped.

use mq_shared::ctl::NodeAction;

use crate::args::node::NodeArgs;
use crate::cluster::Cluster;
use crate::commands::Context;
use crate::error::{Outcome, Result};
use crate::lifecycle;

/// Runs `node kill`.
pub async fn run(ctx: &Context, args: NodeArgs) -> Result<Outcome> {
    let cluster = Cluster::load(&ctx.home, &args.target.cluster)?;
    let node = cluster.process(&args.target.node)?.clone();
    cluster.check_local(&node, "kill")?;
    let pid = lifecycle::kill_process(&node).await?;
    let change = super::change(cluster.name(), &node.name, NodeAction::Killed, pid);
    super::print_change(ctx, &change)?;
    Ok(Outcome::Complete)
}
