//! `mqctl node stop NAME/NODE`: SIGTERM to one node and a bounded wait for it to exit.

use mq_shared::ctl::NodeAction;

use crate::args::node::NodeArgs;
use crate::cluster::Cluster;
use crate::commands::Context;
use crate::error::{Outcome, Result};
use crate::lifecycle;

/// Runs `node stop`.
pub async fn run(ctx: &Context, args: NodeArgs) -> Result<Outcome> {
    let mut cluster = Cluster::load(&ctx.home, &args.target.cluster)?;
    let node = cluster.process(&args.target.node)?.clone();
    cluster.check_local(&node, "stop")?;
    let pid = lifecycle::stop_and_record(&mut cluster, &node).await?;
    let change = super::change(cluster.name(), &node.name, NodeAction::Stopped, pid);
    super::print_change(ctx, &change)?;
    Ok(Outcome::Complete)
}
