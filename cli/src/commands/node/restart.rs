//! `mqctl node restart NAME/NODE`: stop it (or notice it is dead), start it again with the same
//! flags, wait until it is ready.

use mq_shared::ctl::NodeAction;

use crate::args::node::NodeStartArgs;
use crate::cluster::Cluster;
use crate::commands::Context;
use crate::error::{Outcome, Result};
use crate::lifecycle;

/// Runs `node restart`.
pub async fn run(ctx: &Context, args: NodeStartArgs) -> Result<Outcome> {
    let mut cluster = Cluster::load(&ctx.home, &args.target.cluster)?;
    let node = cluster.process(&args.target.node)?.clone();
    cluster.check_local(&node, "restart")?;
    lifecycle::stop_and_record(&mut cluster, &node).await?;
    let change = super::start::start_one(
        &mut cluster,
        &node.name,
        args.mqnode.as_deref(),
        args.ready_timeout(),
        NodeAction::Restarted,
    )
    .await?;
    super::print_change(ctx, &change)?;
    Ok(Outcome::Complete)
}
