//! `mqctl cluster destroy NAME`: stop every process of the cluster (SIGTERM, SIGKILL after a
//! bounded wait) — the recorded ones and any stray `mqnode` still using the cluster's folder,
//! then its own PostgreSQL or ZooKeeper server — then delete the folder.

use std::fs;

use mq_shared::ctl::{ClusterChange, NodeAction, NodeChange};

use crate::commands::{Context, node};
use crate::error::{CliError, Outcome, Result};
use crate::home::validate_name;
use crate::lifecycle;
use crate::output;
use crate::process;

/// Runs `cluster destroy`.
pub async fn run(ctx: &Context, name: &str, yes: bool) -> Result<Outcome> {
    validate_name("cluster", name)?;
    let dir = ctx.home.cluster_dir(name);
    let manifest = match ctx.home.load(name) {
        Ok(m) => Some(m),
        // A folder whose manifest is unreadable is still removed, after its strays are stopped.
        Err(CliError::BadFile { .. }) if dir.is_dir() => None,
        Err(e) => return Err(e),
    };
    let nodes = manifest.as_ref().map_or(0, |m| m.nodes.len());
    output::confirm(
        &format!(
            "Destroy cluster {name}: stop its {nodes} node(s) and delete {} with their data?",
            dir.display()
        ),
        yes,
    )?;
    let mut changes: Vec<NodeChange> = Vec::new();
    if let Some(m) = &manifest {
        let (remote, local): (Vec<_>, Vec<_>) =
            m.nodes.iter().cloned().partition(|n| n.is_remote());
        if !remote.is_empty() {
            let names: Vec<&str> = remote.iter().map(|n| n.name.as_str()).collect();
            output::note(&format!(
                "Cannot stop remote node(s) {}: mqctl does not run them; they are only forgotten.",
                names.join(", ")
            ));
        }
        for (node, pid) in lifecycle::terminate_all(&local).await {
            changes.push(node::change(name, &node, NodeAction::Stopped, pid));
        }
    }
    for (pid, label) in process::stop_strays(&dir).await {
        changes.push(node::change(name, &label, NodeAction::Killed, Some(pid)));
    }
    // The cluster's own PostgreSQL, last: its folder goes with the cluster's.
    if let Some(pg) = manifest.as_ref().and_then(|m| m.postgres.clone()) {
        tokio::task::spawn_blocking(move || crate::postgres::stop(&pg))
            .await
            .map_err(|e| CliError::Usage(format!("stopping PostgreSQL failed: {e}")))??;
    }
    // And its own ZooKeeper, whose folder goes with the cluster's too.
    // (Found by its folder when the manifest could not be read.)
    let zk = manifest
        .as_ref()
        .and_then(|m| m.zookeeper.clone())
        .or_else(|| {
            let own = dir.join("zookeeper");
            own.join("zoo.cfg")
                .is_file()
                .then(|| mq_shared::ctl::LocalZooKeeper {
                    dir: own.to_string_lossy().into_owned(),
                    port: 0,
                    pid: None,
                })
        });
    if let Some(zk) = zk {
        crate::zookeeper::stop(&zk).await?;
    }
    fs::remove_dir_all(&dir).map_err(|e| CliError::io("could not remove", &dir, e))?;
    let report = ClusterChange {
        name: name.to_string(),
        action: "destroyed".to_string(),
        nodes: changes,
    };
    ctx.out.report(&report, |r| {
        let stopped = r
            .nodes
            .iter()
            .filter(|c| c.action != NodeAction::Unchanged)
            .count();
        format!(
            "Destroyed cluster {name}: stopped {stopped} running node(s), removed {}.",
            dir.display()
        )
    })?;
    Ok(Outcome::Complete)
}
