//! The JSON shapes of `mqctl -o json` and the cluster manifest (`cluster.json`).
//!
//! `mqctl` writes a [`ClusterManifest`] for every cluster it creates and prints the report types
//! below with `-o json`. Scripts and tests parse the same types, so a field renamed here is a
//! breaking change: add fields, never rename or remove one. `docs/mqctl.md` documents each field.
//!
//! One file per command family: `manifest` (the manifest and `cluster create --from` layouts),
//! `cluster` (clusters, nodes, links), `queue` (queues, topics), `sub` (durable subscriptions,
//! scheduled messages, connections), `failover`. Everything is re-exported here.

mod cluster;
mod failover;
mod manifest;
mod queue;
mod sub;

pub use cluster::*;
pub use failover::*;
pub use manifest::*;
pub use queue::*;
pub use sub::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topology_names_round_trip() {
        for t in Topology::ALL {
            assert_eq!(t.as_str().parse::<Topology>(), Ok(t));
            let json = serde_json::to_string(&t).expect("serialise");
            assert_eq!(json, format!("\"{t}\""));
        }
        assert!("hub".parse::<Topology>().is_err());
    }

    #[test]
    fn layout_accepts_a_minimal_file() {
        let layout: ClusterLayout = serde_json::from_str(
            r#"{"nodes":[{"name":"a"},{"name":"b","group":"b"}],"links":[{"from":"a","to":"b"}]}"#,
        )
        .expect("parse");
        assert_eq!(layout.nodes.len(), 2);
        assert_eq!(layout.links[0].ttl, None);
        assert!(!layout.links[0].duplex);
    }

    #[test]
    fn lock_records_parse_strictly() {
        let r = LockHolder::parse("node 1a pid 12 inode 34\n").expect("parses");
        assert_eq!(r.holder, "node 1a");
        assert_eq!((r.pid, r.inode), (12, 34));
        assert_eq!(LockHolder::parse(&r.to_string()), Some(r));
        assert_eq!(LockHolder::parse("n1 pid 12\n"), None);
        assert_eq!(LockHolder::parse("pid 1 inode 2"), None);
        assert_eq!(LockHolder::parse(""), None);
        assert_eq!(LockHolder::parse("n1 pid x inode 3"), None);
    }

    #[test]
    fn failover_report_shape() {
        let r = FailoverReport {
            group: "node1".into(),
            mode: FailoverMode::Kill,
            old_master: "node1a".into(),
            new_master: "node1b".into(),
            recovery_ms: 180,
            verify: None,
            old_epoch: None,
            new_epoch: None,
            lease: None,
        };
        let v = serde_json::to_value(&r).expect("serialise");
        assert_eq!(
            v,
            serde_json::json!({"group": "node1", "mode": "kill", "old_master": "node1a",
                "new_master": "node1b", "recovery_ms": 180, "verify": null})
        );
        // A report without the election's fields (an older mqctl) still reads.
        let older: FailoverReport = serde_json::from_value(serde_json::json!({"group": "node1",
            "mode": "kill", "old_master": "node1a", "new_master": "node1b", "recovery_ms": 180,
            "verify": null}))
        .expect("parse");
        assert_eq!(older, r);
        let elected = FailoverReport {
            old_epoch: Some(3),
            new_epoch: Some(4),
            ..r
        };
        let v = serde_json::to_value(&elected).expect("serialise");
        assert_eq!(
            (&v["old_epoch"], &v["new_epoch"]),
            (&serde_json::json!(3), &serde_json::json!(4))
        );
    }
}
