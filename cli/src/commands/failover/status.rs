//! `mqctl failover status NAME`: for each group, the member serving, the members waiting for
//! the store lock (or, in a replicated group, following the master), those that did not
//! answer, and what the group's HA kind elects and fences with: the holder recorded in the
//! lock file (shared file), the master's epoch and its replicas' state and lag (replicated),
//! or the lease row's holder and end (JDBC).
//!
//! Everything comes from the one status pass `cluster status` makes ([`status::gather_status`]),
//! whose broker info carries each member's `replication` and `lease`, and from the lock file.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use mq_shared::api::{ReplicaInfo, Role};
use mq_shared::ctl::{ClusterStatus, FailoverStatus, GroupStatus, LockHolder, NodeStatus};

use crate::args::cluster::ClusterOrUrls;
use crate::cluster::Cluster;
use crate::commands::Context;
use crate::error::{Outcome, Result};
use crate::output::{self, Format, Table};
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
        let now_ms = i64::try_from(crate::home::now_ms()).unwrap_or(i64::MAX);
        ctx.out.table(&table(&failover, now_ms))?;
    }
    status::target_outcome(&cluster, &gathered, &args).await
}

/// Each group's members sorted by the role they reported, in member order, with the lock
/// file's record and what the members report of their election (epoch and replicas, lease).
fn groups(cluster: &Cluster, gathered: &ClusterStatus) -> FailoverStatus {
    // A JDBC group elects through its database, a replicated one through ZooKeeper: neither
    // shares a lock file.
    let lock_file = |group: &str| {
        cluster
            .manifest
            .group(group)
            .is_none_or(|g| g.replicated.is_none() && g.store.is_none())
    };
    let groups = cluster
        .group_names()
        .into_iter()
        .map(|group| {
            let members = cluster.manifest.members(&group);
            let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
            // What each member answered, in member order.
            let reports: Vec<Option<&NodeStatus>> = names
                .iter()
                .map(|name| gathered.nodes.iter().find(|n| n.name == *name))
                .collect();
            let named = |want: &dyn Fn(Option<Role>) -> bool| -> Vec<String> {
                names
                    .iter()
                    .zip(&reports)
                    .filter(|(_, r)| want(r.and_then(|n| n.role)))
                    .map(|(name, _)| name.to_string())
                    .collect()
            };
            let answered: Vec<&NodeStatus> = reports.iter().flatten().copied().collect();
            let (epoch, replicas) = election(&answered, &names);
            GroupStatus {
                master: named(&|r| super::serves(r)).into_iter().next(),
                slaves: named(&|r| r == Some(Role::Slave)),
                down: named(&|r| r.is_none()),
                // A remote node's data dir is on its own host.
                lock: members
                    .first()
                    .filter(|m| !m.is_remote() && lock_file(&group))
                    .and_then(|m| LockHolder::read(Path::new(&m.data_dir))),
                epoch,
                replicas,
                lease: serving_first(&answered).find_map(|n| n.lease.clone()),
                group,
            }
        })
        .collect();
    FailoverStatus {
        cluster: cluster.name().to_string(),
        groups,
    }
}

/// The members that answered, the serving one first.
fn serving_first<'a>(answered: &[&'a NodeStatus]) -> impl Iterator<Item = &'a NodeStatus> {
    let serving = answered.iter().copied().filter(|n| super::serves(n.role));
    let others = answered.iter().copied().filter(|n| !super::serves(n.role));
    serving.chain(others)
}

/// A replicated group's epoch and replicas from what its members report (`None`, `None` when
/// none reports `replication`): the serving member's epoch and replica list; without one, the
/// highest epoch reported and each member's own entry. Replicas in member order.
fn election(answered: &[&NodeStatus], members: &[&str]) -> (Option<u64>, Option<Vec<ReplicaInfo>>) {
    let reported: Vec<_> = answered
        .iter()
        .filter_map(|n| n.replication.as_ref().map(|r| (n, r)))
        .collect();
    if reported.is_empty() {
        return (None, None);
    }
    let (epoch, mut replicas) = match reported.iter().find(|(n, _)| super::serves(n.role)) {
        Some((_, r)) => (r.epoch, r.replicas.clone()),
        None => (
            reported.iter().map(|(_, r)| r.epoch).max().unwrap_or(0),
            reported
                .iter()
                .flat_map(|(_, r)| r.replicas.iter().cloned())
                .collect(),
        ),
    };
    replicas.sort_by_key(|r| {
        members
            .iter()
            .position(|m| *m == r.name)
            .unwrap_or(usize::MAX)
    });
    (Some(epoch), Some(replicas))
}

/// One row per group; the default columns are those of the HA kinds present (lock holder,
/// epoch and replica lag, lease holder and end).
fn table(status: &FailoverStatus, now_ms: i64) -> Table {
    let any = |f: &dyn Fn(&GroupStatus) -> bool| status.groups.iter().any(f);
    let mut defaults = vec!["group", "master", "slaves", "down"];
    let elected_otherwise = any(&|g| g.replicas.is_some() || g.lease.is_some());
    if any(&|g| g.lock.is_some()) || !elected_otherwise {
        defaults.push("lock holder");
    }
    if any(&|g| g.replicas.is_some()) {
        defaults.extend(["epoch", "replica lag"]);
    }
    if any(&|g| g.lease.is_some()) {
        defaults.extend(["lease holder", "lease ends"]);
    }
    let mut table = Table::new(
        vec![
            "group",
            "master",
            "slaves",
            "down",
            "lock holder",
            "epoch",
            "replica lag",
            "lease holder",
            "lease ends",
            "lease ends at",
        ],
        format!("Cluster {} has no nodes.", status.cluster),
    )
    .numeric([5])
    .defaults(defaults);
    let list = |names: &[String]| {
        if names.is_empty() {
            "-".to_string()
        } else {
            names.join(", ")
        }
    };
    for g in &status.groups {
        let expires = g.lease.as_ref().and_then(|l| l.expires_at_ms);
        table.push(vec![
            g.group.clone(),
            g.master.clone().unwrap_or_else(|| "(none)".to_string()),
            list(&g.slaves),
            list(&g.down),
            g.lock.as_ref().map_or_else(
                || "-".to_string(),
                |l| format!("{} (pid {})", l.holder, l.pid),
            ),
            output::opt(g.epoch),
            g.replicas
                .as_deref()
                .map_or_else(|| "-".to_string(), replica_lag),
            g.lease.as_ref().map_or_else(
                || "-".to_string(),
                |l| l.holder.clone().unwrap_or_else(|| "(none)".to_string()),
            ),
            expires.map_or_else(|| "-".to_string(), |at| relative(at, now_ms)),
            expires.map_or_else(|| "-".to_string(), absolute),
        ]);
    }
    table
}

/// `node1b 0, node1c 12 (snapshot)`: each replica's lag in records, with its state unless it
/// is streaming; `(none)` when the master has no replica connected.
fn replica_lag(replicas: &[ReplicaInfo]) -> String {
    if replicas.is_empty() {
        return "(none)".to_string();
    }
    replicas
        .iter()
        .map(|r| {
            if r.state == "streaming" {
                format!("{} {}", r.name, r.lag_records)
            } else {
                format!("{} {} ({})", r.name, r.lag_records, r.state)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// When a lease ends, from now (mqctl's clock): `in 1.2 s`, `0.4 s ago`, past a minute
/// `in 3m05s`.
pub(super) fn relative(at_ms: i64, now_ms: i64) -> String {
    let delta = at_ms.saturating_sub(now_ms);
    let span = delta.unsigned_abs();
    let text = if span < 60_000 {
        format!("{}.{} s", span / 1000, span % 1000 / 100)
    } else {
        output::uptime(Some(span))
    };
    if delta >= 0 {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// A lease's end as RFC 3339 UTC with milliseconds.
pub(super) fn absolute(at_ms: i64) -> String {
    match u64::try_from(at_ms) {
        Ok(ms) => {
            humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
        }
        Err(_) => format!("{at_ms} ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mq_shared::api::{LeaseInfo, ReplicationInfo};
    use mq_shared::ctl::{ClusterManifest, GroupEntry, GroupReplicated, GroupStore, NodeEntry};

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

    /// A cluster `ha` of `groups` (name, members), with `kind` set on every group.
    fn cluster_of(groups: &[(&str, &[&str])], kind: fn(&mut GroupEntry)) -> Cluster {
        let nodes: Vec<NodeEntry> = groups
            .iter()
            .flat_map(|(g, members)| members.iter().map(move |m| node(m, g)))
            .collect();
        Cluster {
            manifest: ClusterManifest {
                groups: groups
                    .iter()
                    .map(|(g, members)| {
                        let mut entry = GroupEntry {
                            name: g.to_string(),
                            members: members.iter().map(|m| m.to_string()).collect(),
                            store: None,
                            replicated: None,
                        };
                        kind(&mut entry);
                        entry
                    })
                    .collect(),
                nodes,
                ..crate::cluster::bare_manifest("ha", String::new(), String::new())
            },
            token: None,
            home: crate::home::Home::at("/nonexistent".into()),
        }
    }

    fn status_of(cluster: &Cluster, nodes: Vec<NodeStatus>) -> ClusterStatus {
        ClusterStatus {
            name: cluster.name().to_string(),
            nodes,
            links: vec![],
        }
    }

    fn node_of(cluster: &Cluster, name: &str) -> NodeEntry {
        cluster
            .manifest
            .node(name)
            .cloned()
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    fn replica(name: &str, state: &str, lag_records: u64) -> ReplicaInfo {
        ReplicaInfo {
            name: name.into(),
            state: state.into(),
            lag_records,
        }
    }

    /// A report of member `name` of group `node1`, replicated: its role, epoch and replicas.
    fn replicated(name: &str, role: Role, epoch: u64, replicas: Vec<ReplicaInfo>) -> NodeStatus {
        NodeStatus {
            replication: Some(ReplicationInfo {
                epoch,
                master: None,
                replicas,
            }),
            ..crate::status::tests::reported(name, "node1", Some(role))
        }
    }

    /// A streaming replica's own report: epoch and lag.
    fn follower(name: &str, epoch: u64, lag_records: u64) -> NodeStatus {
        replicated(
            name,
            Role::Slave,
            epoch,
            vec![replica(name, "streaming", lag_records)],
        )
    }

    /// One replicated group `node1` of three members.
    fn trio() -> Cluster {
        cluster_of(
            &[("node1", &["node1a", "node1b", "node1c"])],
            replicated_kind,
        )
    }

    fn no_kind(_: &mut GroupEntry) {}

    fn replicated_kind(g: &mut GroupEntry) {
        g.replicated = Some(GroupReplicated {
            zk_address: "127.0.0.1:1".into(),
            zk_path: format!("/mq/ha/{}", g.name),
            token_file: "/nonexistent/token".into(),
        });
    }

    fn jdbc_kind(g: &mut GroupEntry) {
        g.store = Some(GroupStore {
            url: "postgres://mq@127.0.0.1:1/mq".into(),
            password_file: None,
        });
    }

    #[test]
    fn members_are_sorted_by_the_role_they_reported() {
        let cluster = cluster_of(
            &[
                ("node1", &["node1a", "node1b"]),
                ("node2", &["node2a", "node2b"]),
            ],
            no_kind,
        );
        let nodes = &cluster.manifest.nodes;
        let gathered = status_of(
            &cluster,
            vec![
                reported(&nodes[0], Some(Role::Slave)),
                reported(&nodes[1], Some(Role::Master)),
                reported(&nodes[2], None),
                reported(&nodes[3], Some(Role::Slave)),
            ],
        );
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
        assert_eq!((one.epoch, &one.replicas, &one.lease), (None, &None, &None));
        // The JSON of a shared-file group is what it was before epochs and leases.
        let json = serde_json::to_value(one).unwrap_or_default();
        let keys: Vec<&String> = json
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        assert_eq!(keys, ["down", "group", "lock", "master", "slaves"]);
    }

    #[test]
    fn a_replicated_group_shows_the_masters_epoch_and_replicas_in_member_order() {
        let cluster = trio();
        let gathered = status_of(
            &cluster,
            vec![
                follower("node1a", 6, 9),
                replicated(
                    "node1b",
                    Role::Master,
                    7,
                    vec![
                        replica("node1c", "snapshot", 40),
                        replica("node1a", "streaming", 0),
                    ],
                ),
                replicated(
                    "node1c",
                    Role::Slave,
                    7,
                    vec![replica("node1c", "snapshot", 41)],
                ),
            ],
        );
        let status = groups(&cluster, &gathered);
        let g = &status.groups[0];
        assert_eq!(g.epoch, Some(7));
        assert_eq!(
            g.replicas.as_deref(),
            Some(
                [
                    replica("node1a", "streaming", 0),
                    replica("node1c", "snapshot", 40)
                ]
                .as_slice()
            ),
            "the master's view, in member order"
        );
        assert_eq!((&g.lock, &g.lease), (&None, &None));
        let t = table(&status, 0);
        assert_eq!(
            t.defaults.as_deref(),
            Some(["group", "master", "slaves", "down", "epoch", "replica lag"].as_slice())
        );
        assert_eq!(t.rows[0][5..7], ["7", "node1a 0, node1c 40 (snapshot)"]);
    }

    #[test]
    fn without_a_master_a_replicated_group_shows_each_followers_own_lag() {
        let cluster = trio();
        let gathered = status_of(
            &cluster,
            vec![
                follower("node1a", 4, 3),
                reported(&node_of(&cluster, "node1b"), None),
                // Waiting for the next election: an epoch, no replica entry.
                replicated("node1c", Role::Slave, 5, vec![]),
            ],
        );
        let g = &groups(&cluster, &gathered).groups[0];
        assert_eq!(g.master, None);
        assert_eq!(g.epoch, Some(5), "the highest epoch a member reports");
        assert_eq!(g.replicas, Some(vec![replica("node1a", "streaming", 3)]));
        // A master with no replica connected.
        let alone = status_of(
            &cluster,
            vec![
                replicated("node1a", Role::Master, 9, vec![]),
                reported(&node_of(&cluster, "node1b"), None),
                reported(&node_of(&cluster, "node1c"), None),
            ],
        );
        let status = groups(&cluster, &alone);
        assert_eq!(status.groups[0].replicas, Some(vec![]));
        assert_eq!(table(&status, 0).rows[0][6], "(none)");
    }

    #[test]
    fn a_jdbc_group_shows_the_lease_as_its_master_reports_it() {
        let cluster = cluster_of(&[("node1", &["node1a", "node1b"])], jdbc_kind);
        let lease = |holder: &str, expires_at_ms: i64| LeaseInfo {
            holder: Some(holder.into()),
            expires_at_ms: Some(expires_at_ms),
            keep_alive_ms: 500,
        };
        let with = |name: &str, role: Role, l: LeaseInfo| NodeStatus {
            lease: Some(l),
            ..reported(&node_of(&cluster, name), Some(role))
        };
        let gathered = status_of(
            &cluster,
            vec![
                with("node1a", Role::Slave, lease("node1b", 1_000)),
                with("node1b", Role::Master, lease("node1b", 2_000)),
            ],
        );
        let status = groups(&cluster, &gathered);
        let g = &status.groups[0];
        assert_eq!(
            g.lease,
            Some(lease("node1b", 2_000)),
            "the master's read first"
        );
        assert_eq!((g.epoch, &g.replicas, &g.lock), (None, &None, &None));
        let t = table(&status, 800);
        assert_eq!(
            t.defaults.as_deref(),
            Some(
                [
                    "group",
                    "master",
                    "slaves",
                    "down",
                    "lease holder",
                    "lease ends"
                ]
                .as_slice()
            )
        );
        assert_eq!(
            t.rows[0][7..],
            ["node1b", "in 1.2 s", "1970-01-01T00:00:02.000Z"]
        );
        let json = serde_json::to_value(g).unwrap_or_default();
        assert_eq!(json["lease"]["expires_at_ms"], 2_000, "raw in JSON");
        assert!(json.get("epoch").is_none() && json.get("replicas").is_none());
    }

    #[test]
    fn lease_ends_read_relative_to_now() {
        assert_eq!(relative(10_000, 8_750), "in 1.2 s");
        assert_eq!(relative(10_000, 10_000), "in 0.0 s");
        assert_eq!(relative(10_000, 10_400), "0.4 s ago");
        assert_eq!(relative(200_000, 15_000), "in 3m05s");
        assert_eq!(relative(0, 7_200_000), "2h00m ago");
        assert_eq!(absolute(-5), "-5 ms");
    }
}
