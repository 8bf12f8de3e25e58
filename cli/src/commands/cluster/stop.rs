//! `mqctl cluster stop NAME`: SIGTERM to every node at once, then wait (bounded) for each.

use mq_shared::ctl::{ClusterChange, NodeAction};
use mq_shared::defaults::NODE_STOP_TIMEOUT;

use crate::cluster::Cluster;
use crate::commands::{Context, node};
use crate::error::{CliError, Outcome, Result};
use crate::output::{Format, Table};
use crate::process;
use crate::sys::Signal;

/// Runs `cluster stop`.
pub async fn run(ctx: &Context, name: &str) -> Result<Outcome> {
    let mut cluster = Cluster::load(&ctx.home, name)?;
    // Signal all first so that a slave does not take over from a master stopping before it.
    let mut signalled = Vec::new();
    let mut errors = Vec::new();
    super::start::remote_note(&cluster, "stop");
    for node in cluster.manifest.nodes.iter().filter(|n| !n.is_remote()) {
        match process::signal(node, Signal::Term) {
            Ok(pid) => signalled.push((node.clone(), pid)),
            Err(e) => errors.push(e),
        }
    }
    let mut changes = Vec::new();
    for (node, pid) in signalled {
        if let Some(pid) = pid
            && !process::wait_exit(pid, &node, NODE_STOP_TIMEOUT).await
        {
            errors.push(CliError::StopTimeout {
                cluster: cluster.name().to_string(),
                node: node.name.clone(),
                pid,
                secs: NODE_STOP_TIMEOUT.as_secs(),
            });
            continue;
        }
        if let Some(entry) = cluster.manifest.node_mut(&node.name) {
            entry.pid = None;
        }
        changes.push(node::change(name, &node.name, NodeAction::Stopped, pid));
    }
    cluster.save()?;
    // The cluster's own PostgreSQL goes after its nodes, which close their stores in it.
    if let Some(pg) = cluster.manifest.postgres.clone()
        && errors.is_empty()
    {
        let stopped = tokio::task::spawn_blocking(move || crate::postgres::stop(&pg)).await;
        match stopped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(e),
            Err(e) => errors.push(CliError::Usage(format!("stopping PostgreSQL failed: {e}"))),
        }
    }
    // So does the cluster's own ZooKeeper.
    if let Some(zk) = cluster.manifest.zookeeper.clone()
        && errors.is_empty()
    {
        match crate::zookeeper::stop(&zk).await {
            Ok(_) => {
                if let Some(z) = cluster.manifest.zookeeper.as_mut() {
                    z.pid = None;
                }
                cluster.save()?;
            }
            Err(e) => errors.push(e),
        }
    }
    let report = ClusterChange {
        name: name.to_string(),
        action: "stopped".to_string(),
        nodes: changes,
    };
    print_change(ctx, &report)?;
    if errors.is_empty() {
        Ok(Outcome::Complete)
    } else {
        Err(CliError::Several(errors))
    }
}

/// Prints a cluster-wide change: JSON, or one row per node.
pub fn print_change(ctx: &Context, report: &ClusterChange) -> Result<()> {
    if ctx.out.format() == Format::Json {
        return ctx.out.json(report);
    }
    let mut table = Table::new(
        vec!["node", "action", "pid"],
        format!("Cluster {} has no nodes.", report.name),
    );
    for c in &report.nodes {
        table.push(vec![
            c.node.clone(),
            match c.action {
                NodeAction::Unchanged => "not running".to_string(),
                action => action.to_string(),
            },
            crate::output::opt(c.pid),
        ]);
    }
    ctx.out.table(&table)
}
