//! `mqctl cluster status NAME`: every node's role, pid, liveness, ports, uptime, queues and
//! links, asked of all nodes at once; `--url URL...` does the same for nodes outside any cluster.

use crate::args::cluster::StatusArgs;
use crate::cluster::Cluster;
use crate::commands::Context;
use crate::error::{Outcome, Result};
use crate::status;

/// Runs `cluster status`. Exit 3 when some nodes that should run did not answer, 69 when none
/// did; nodes stopped cleanly are no failure.
pub async fn run(ctx: &Context, args: StatusArgs) -> Result<Outcome> {
    let cluster = match &args.name {
        Some(name) => Cluster::load(&ctx.home, name)?,
        None => Cluster::from_urls(
            &ctx.home,
            &args.urls.url,
            args.urls.token_file.as_deref(),
            None,
        )?,
    };
    let status = status::gather_status(&cluster).await?;
    status::print_status(&ctx.out, &status)?;
    let outcome = status::outcome(&cluster, &status);
    match outcome {
        Err(e) if args.name.is_none() => Err(cluster.why_none_answered(e).await),
        other => other,
    }
}
