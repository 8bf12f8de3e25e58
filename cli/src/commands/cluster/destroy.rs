//! `mqctl cluster destroy NAME`: stop every process of the cluster (SIGTERM, SIGKILL after a
//! bounded wait) — the recorded ones and any stray `mqnode` still using the cluster's folder —
//! then delete the folder.

use std::fs;

use mq_shared::ctl::{ClusterChange, NodeAction, NodeChange};

use crate::commands::Context;
use crate::error::{CliError, Outcome, Result};
use crate::home::validate_name;
use crate::lifecycle;
use crate::output::Format;
use crate::process;

/// Runs `cluster destroy`.
pub async fn run(ctx: &Context, name: &str) -> Result<Outcome> {
    validate_name("cluster", name)?;
    let dir = ctx.home.cluster_dir(name);
    let manifest = match ctx.home.load(name) {
        Ok(m) => Some(m),
        // A folder whose manifest is unreadable is still removed, after its strays are stopped.
        Err(CliError::BadFile { .. }) if dir.is_dir() => None,
        Err(e) => return Err(e),
    };
    let mut changes: Vec<NodeChange> = Vec::new();
    if let Some(m) = &manifest {
        for (node, pid) in lifecycle::terminate_all(&m.nodes).await {
            changes.push(NodeChange {
                cluster: name.to_string(),
                node,
                action: if pid.is_some() {
                    NodeAction::Stopped
                } else {
                    NodeAction::Unchanged
                },
                pid,
                role: None,
            });
        }
    }
    for (pid, label) in process::stop_strays(&dir).await {
        changes.push(NodeChange {
            cluster: name.to_string(),
            node: label,
            action: NodeAction::Killed,
            pid: Some(pid),
            role: None,
        });
    }
    fs::remove_dir_all(&dir).map_err(|e| CliError::io("could not remove", &dir, e))?;
    let report = ClusterChange {
        name: name.to_string(),
        action: "destroyed".to_string(),
        nodes: changes,
    };
    if ctx.out.format() == Format::Json {
        ctx.out.json(&report)?;
    } else {
        let stopped = report
            .nodes
            .iter()
            .filter(|c| c.action != NodeAction::Unchanged)
            .count();
        ctx.out.sentence(&format!(
            "Destroyed cluster {name}: stopped {stopped} running node(s), removed {}.",
            dir.display()
        ))?;
    }
    Ok(Outcome::Complete)
}
