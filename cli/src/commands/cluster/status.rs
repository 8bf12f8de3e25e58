//! `mqctl cluster status NAME`: every node's role, pid, liveness, ports, uptime, queues and
//! links, asked of all nodes at once.

use crate::commands::Context;
use crate::error::{CliError, Outcome, Result};
use crate::nodes::{self, Cluster};

/// Runs `cluster status`. Exit 3 when some nodes did not answer, 1 when none did.
pub async fn run(ctx: &Context, name: &str) -> Result<Outcome> {
    let cluster = Cluster::load(&ctx.home, name)?;
    let (status, answered) = nodes::gather_status(&cluster).await?;
    nodes::print_status(&ctx.out, &status)?;
    outcome(&cluster, answered)
}

/// All answered: complete; some: partial; none: an error saying how to start the cluster.
pub fn outcome(cluster: &Cluster, answered: usize) -> Result<Outcome> {
    let total = cluster.manifest.nodes.len();
    if answered == total {
        Ok(Outcome::Complete)
    } else if answered == 0 {
        Err(CliError::NoneAnswered {
            cluster: cluster.name().to_string(),
        })
    } else {
        Ok(Outcome::Partial)
    }
}
