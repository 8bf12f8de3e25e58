//! `mqctl failover status NAME`: for each group, the member serving, the members waiting for
//! the store lock, those that did not answer, and the holder recorded in the lock file.

use std::path::Path;

use mq_shared::api::Role;
use mq_shared::ctl::{FailoverStatus, GroupStatus, LockHolder, NodeEntry};
use mq_shared::defaults::STAT_REQUEST_TIMEOUT;

use crate::commands::Context;
use crate::error::{CliError, Outcome, Result};
use crate::nodes::Cluster;
use crate::output::{Format, Table};

/// Runs `failover status`. Exit 3 when some members did not answer, 1 when none did.
pub async fn run(ctx: &Context, name: &str) -> Result<Outcome> {
    let cluster = Cluster::load(&ctx.home, name)?;
    let mut groups = Vec::new();
    let mut answered = 0;
    for group in cluster.group_names() {
        let members: Vec<NodeEntry> = cluster
            .manifest
            .members(&group)
            .into_iter()
            .cloned()
            .collect();
        let roles = super::roles(&cluster, &members, STAT_REQUEST_TIMEOUT).await?;
        answered += roles.iter().filter(|r| r.is_some()).count();
        let named = |want: &dyn Fn(Option<Role>) -> bool| -> Vec<String> {
            members
                .iter()
                .zip(&roles)
                .filter(|(_, r)| want(**r))
                .map(|(m, _)| m.name.clone())
                .collect()
        };
        groups.push(GroupStatus {
            master: named(&|r| super::serves(r)).into_iter().next(),
            slaves: named(&|r| r == Some(Role::Slave)),
            down: named(&|r| r.is_none()),
            lock: members
                .first()
                .and_then(|m| LockHolder::read(Path::new(&m.data_dir))),
            group,
        });
    }
    let status = FailoverStatus {
        cluster: cluster.name().to_string(),
        groups,
    };
    if ctx.out.format() == Format::Json {
        ctx.out.json(&status)?;
    } else {
        ctx.out.table(&table(&status))?;
    }
    if answered == cluster.manifest.nodes.len() {
        Ok(Outcome::Complete)
    } else if answered == 0 {
        Err(CliError::NoneAnswered {
            cluster: cluster.name().to_string(),
        })
    } else {
        Ok(Outcome::Partial)
    }
}

/// One row per group.
fn table(status: &FailoverStatus) -> Table {
    let mut table = Table::new(
        vec!["group", "master", "slaves", "down", "lock holder"],
        format!("Cluster {} has no nodes.", status.cluster),
    );
    let list = |names: &[String]| {
        if names.is_empty() {
            "-".to_string()
        } else {
            names.join(", ")
        }
    };
    for g in &status.groups {
        table.push(vec![
            g.group.clone(),
            g.master.clone().unwrap_or_else(|| "(none)".to_string()),
            list(&g.slaves),
            list(&g.down),
            g.lock.as_ref().map_or_else(
                || "-".to_string(),
                |l| format!("{} (pid {})", l.holder, l.pid),
            ),
        ]);
    }
    table
}
