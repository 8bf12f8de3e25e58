//! `mqctl cluster status NAME`: every node's role, pid, liveness, ports, uptime, queues and
//! links, asked of all nodes at once.

use crate::cluster::Cluster;
use crate::commands::Context;
use crate::error::{Outcome, Result};
use crate::status;

/// Runs `cluster status`. Exit 3 when some nodes that should run did not answer, 69 when none
/// did; nodes stopped cleanly are no failure.
pub async fn run(ctx: &Context, name: &str) -> Result<Outcome> {
    let cluster = Cluster::load(&ctx.home, name)?;
    let status = status::gather_status(&cluster).await?;
    status::print_status(&ctx.out, &status)?;
    status::outcome(&cluster, &status)
}
