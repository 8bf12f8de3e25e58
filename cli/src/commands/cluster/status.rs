//! `mqctl cluster status NAME`: every node's role, pid, liveness, ports, uptime, queues and
//! links, asked of all nodes at once; `--url URL...` does the same for nodes outside any cluster.

use crate::args::cluster::ClusterOrUrls;
use crate::commands::Context;
use crate::error::{Outcome, Result};
use crate::status;

/// Runs `cluster status`. Exit 3 when some nodes that should run did not answer, 69 when none
/// did; nodes stopped cleanly are no failure.
pub async fn run(ctx: &Context, args: ClusterOrUrls) -> Result<Outcome> {
    let (cluster, status) = status::gather_target(&ctx.home, &args, None).await?;
    status::print_status(&ctx.out, &status)?;
    status::target_outcome(&cluster, &status, &args).await
}
