//! `mqctl cluster ls`: the clusters in `$MQCTL_HOME`, with how many of their nodes run.

use mq_shared::ctl::{ClusterList, ClusterSummary};

use crate::commands::Context;
use crate::error::{Outcome, Result};
use crate::output::{self, Format, Table};
use crate::process;

/// Runs `cluster ls`.
pub async fn run(ctx: &Context) -> Result<Outcome> {
    let mut list = ClusterList::default();
    for name in ctx.home.cluster_names()? {
        match ctx.home.load(&name) {
            Ok(m) => list.clusters.push(ClusterSummary {
                running: m
                    .nodes
                    .iter()
                    .filter(|n| process::running_pid(n).is_some())
                    .count(),
                nodes: m.nodes.len(),
                name: m.name,
                created: m.created,
                topology: m.topology,
                path: ctx.home.cluster_dir(&name).to_string_lossy().into_owned(),
            }),
            Err(e) => output::warn(&e.to_string()),
        }
    }
    if ctx.out.format() == Format::Json {
        ctx.out.json(&list)?;
        return Ok(Outcome::Complete);
    }
    let mut table = Table::new(
        vec!["cluster", "nodes", "running", "topology", "created", "path"],
        format!(
            "No clusters in {}. Create one with `mqctl cluster create demo`.",
            ctx.home.clusters_dir().display()
        ),
    )
    .numeric([1, 2])
    .defaults(["cluster", "nodes", "running", "topology", "created"]);
    for c in &list.clusters {
        table.push(vec![
            c.name.clone(),
            c.nodes.to_string(),
            c.running.to_string(),
            c.topology.to_string(),
            c.created.clone(),
            c.path.clone(),
        ]);
    }
    ctx.out.table(&table)?;
    Ok(Outcome::Complete)
}
