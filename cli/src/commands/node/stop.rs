//! `mqctl node stop NAME/NODE`: SIGTERM to one node and a bounded wait for it to exit.

use mq_shared::ctl::{NodeAction, NodeChange};

use crate::args::node::NodeArgs;
use crate::cluster::Cluster;
use crate::commands::Context;
use crate::error::{Outcome, Result};
use crate::lifecycle;

/// Runs `node stop`.
pub async fn run(ctx: &Context, args: NodeArgs) -> Result<Outcome> {
    let mut cluster = Cluster::load(&ctx.home, &args.target.cluster)?;
    let node = cluster.process(&args.target.node)?.clone();
    let pid = lifecycle::stop_process(&cluster, &node).await?;
    if let Some(entry) = cluster.manifest.node_mut(&node.name) {
        entry.pid = None;
    }
    cluster.save()?;
    let change = NodeChange {
        cluster: cluster.name().to_string(),
        node: node.name.clone(),
        action: if pid.is_some() {
            NodeAction::Stopped
        } else {
            NodeAction::Unchanged
        },
        pid,
        role: None,
    };
    super::print_change(ctx, &change)?;
    Ok(Outcome::Complete)
}
