//! `mqctl failover status NAME`: for each group, the member serving, the members waiting for
//! the store lock (or, in a replicated group, following the master), those that did not
//! answer, and the holder recorded in the lock file (none in a replicated group).
//!
//! The roles come from the one status pass `cluster status` makes ([`status::gather_status`]).

use std::path::Path;

use mq_shared::api::Role;
use mq_shared::ctl::{ClusterStatus, FailoverStatus, GroupStatus, LockHolder};

use crate::args::cluster::ClusterOrUrls;
use crate::cluster::Cluster;
use crate::commands::Context;
use crate::error::{Outcome, Result};
use crate::output::{Format, Table};
use crate::status;

/// Runs `failover status`. Exit 3 when some members that should run did not answer (with a
/// sentence on stderr naming them), 69 when none did.
pub async fn run(ctx: &Context, args: ClusterOrUrls) -> Result<Outcome> {
    // Nodes given by URL are the members of one group.
    let (cluster, gathered) =
        status::gather_target(&ctx.home, &args, Some(super::remote::GROUP)).await?;
    let failover = groups(&cluster, &gathered);
    if ctx.out.format() == Format::Json {
        ctx.out.json(&failover)?;
    } else {
        ctx.out.table(&table(&failover))?;
    }
    status::target_outcome(&cluster, &gathered, &args).await
}

/// Each group's members sorted by the role they reported, in member order, with the lock
/// file's record.
fn groups(cluster: &Cluster, gathered: &ClusterStatus) -> FailoverStatus {
    let role_of = |member: &str| -> Option<Role> {
        gathered
            .nodes
            .iter()
            .find(|n| n.name == member)
            .and_then(|n| n.role)
    };
    let replicated = |group: &str| {
        cluster
            .manifest
            .group(group)
            .is_some_and(|g| g.replicated.is_some())
    };
    let groups = cluster
        .group_names()
        .into_iter()
        .map(|group| {
            let members = cluster.manifest.members(&group);
            let named = |want: &dyn Fn(Option<Role>) -> bool| -> Vec<String> {
                members
                    .iter()
                    .filter(|m| want(role_of(&m.name)))
                    .map(|m| m.name.clone())
                    .collect()
            };
            GroupStatus {
                master: named(&|r| super::serves(r)).into_iter().next(),
                slaves: named(&|r| r == Some(Role::Slave)),
                down: named(&|r| r.is_none()),
                // A remote node's data dir is on its own host; a replicated group shares no
                // lock (ZooKeeper elects its master).
                lock: members
                    .first()
                    .filter(|m| !m.is_remote() && !replicated(&group))
                    .and_then(|m| LockHolder::read(Path::new(&m.data_dir))),
                group,
            }
        })
        .collect();
    FailoverStatus {
        cluster: cluster.name().to_string(),
        groups,
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

#[cfg(test)]
mod tests {
    use super::*;
    use mq_shared::ctl::{ClusterManifest, GroupEntry, NodeEntry, NodeStatus};

    fn node(name: &str, group: &str) -> NodeEntry {
        NodeEntry {
            name: name.into(),
            group: group.into(),
            data_dir: format!("/nonexistent/{group}/data"),
            log: format!("/nonexistent/{name}/node.log"),
            transport_port: 1,
            admin_port: 2,
            pid: None,
            persistent: true,
            tls: false,
            remote: None,
        }
    }

    fn reported(node: &NodeEntry, role: Option<Role>) -> NodeStatus {
        NodeStatus {
            transport: node.transport_uri(),
            admin: node.admin_url(),
            ..crate::status::tests::reported(&node.name, &node.group, role)
        }
    }

    #[test]
    fn members_are_sorted_by_the_role_they_reported() {
        let nodes = vec![
            node("node1a", "node1"),
            node("node1b", "node1"),
            node("node2a", "node2"),
            node("node2b", "node2"),
        ];
        let cluster = Cluster {
            manifest: ClusterManifest {
                groups: vec![
                    GroupEntry {
                        name: "node1".into(),
                        members: vec!["node1a".into(), "node1b".into()],
                        store: None,
                        replicated: None,
                    },
                    GroupEntry {
                        name: "node2".into(),
                        members: vec!["node2a".into(), "node2b".into()],
                        store: None,
                        replicated: None,
                    },
                ],
                nodes: nodes.clone(),
                ..crate::cluster::bare_manifest("ha", String::new(), String::new())
            },
            token: None,
            home: crate::home::Home::at("/nonexistent".into()),
        };
        let gathered = ClusterStatus {
            name: "ha".into(),
            nodes: vec![
                reported(&nodes[0], Some(Role::Slave)),
                reported(&nodes[1], Some(Role::Master)),
                reported(&nodes[2], None),
                reported(&nodes[3], Some(Role::Slave)),
            ],
            links: vec![],
        };
        let status = groups(&cluster, &gathered);
        assert_eq!(status.cluster, "ha");
        let [one, two] = status.groups.as_slice() else {
            panic!("two groups, got {:?}", status.groups);
        };
        assert_eq!(one.group, "node1");
        assert_eq!(one.master.as_deref(), Some("node1b"));
        assert_eq!(one.slaves, ["node1a"]);
        assert!(one.down.is_empty());
        assert_eq!(two.master, None);
        assert_eq!(two.slaves, ["node2b"]);
        assert_eq!(two.down, ["node2a"]);
        assert_eq!(one.lock, None, "no lock file under a missing data dir");
    }
}
