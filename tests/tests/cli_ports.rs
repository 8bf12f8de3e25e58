//! The ports of `mqctl` clusters: handed out from the base upward, never from the kernel's
//! ephemeral range nor from another cluster of the same home, and checked free before a node
//! starts, so that a node is never reported started on a port another program holds.

use std::collections::BTreeSet;
use std::time::Duration;

use mq_shared::api::Role;
use mq_shared::ctl::{ClusterManifest, ClusterStatus};
use mq_tests::cli::{CliHome, processes_under};
use mq_tests::poll_until;

fn manifest(home: &CliHome, name: &str) -> ClusterManifest {
    let path = home.cluster_dir(name).join("cluster.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("manifest")).expect("parses")
}

fn ports(m: &ClusterManifest) -> BTreeSet<u16> {
    m.nodes
        .iter()
        .flat_map(|n| [n.transport_port, n.admin_port])
        .collect()
}

fn ephemeral() -> (u16, u16) {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .unwrap_or_else(|_| "32768 60999".to_string());
    let mut words = text
        .split_whitespace()
        .map(|w| w.parse::<u16>().expect("a port"));
    (
        words.next().expect("low end"),
        words.next().expect("high end"),
    )
}

#[test]
fn ports_come_from_the_base_upward_and_skip_the_ephemeral_range() {
    let home = CliHome::new();
    let (lo, hi) = ephemeral();
    // A base two ports below the ephemeral range: the first process fits below it, the second
    // must jump over it.
    let base = lo - 2;
    let _cluster = home.create(
        "edge",
        &[
            "--nodes",
            "2",
            "--topology",
            "none",
            "--base-port",
            &base.to_string(),
        ],
    );
    let m = manifest(&home, "edge");
    let all = ports(&m);
    assert_eq!(all.len(), 4, "four distinct ports: {all:?}");
    for port in &all {
        assert!(*port >= base, "{port} is not below the base {base}");
        assert!(
            !(lo..=hi).contains(port),
            "{port} is in the ephemeral range {lo}-{hi}: {all:?}"
        );
    }
}

#[test]
fn a_new_cluster_never_takes_the_ports_of_a_stopped_one() {
    let home = CliHome::new();
    let base = home.base_port().to_string();
    let _first = home.create(
        "first",
        &["--nodes", "2", "--topology", "none", "--base-port", &base],
    );
    let before = ports(&manifest(&home, "first"));
    assert!(
        before.iter().all(|p| *p >= home.base_port()),
        "from the base upward: {before:?}"
    );
    home.run(&["cluster", "stop", "first"]).expect_code(0);
    // The ports of `first` are free now; `second` must still not take them.
    let _second = home.create(
        "second",
        &["--nodes", "2", "--topology", "none", "--base-port", &base],
    );
    let after = ports(&manifest(&home, "second"));
    assert!(
        before.is_disjoint(&after),
        "second took ports of first: {before:?} and {after:?}"
    );
    home.run(&["cluster", "start", "first"]).expect_code(0);
    let st: ClusterStatus = home.run_json(&["cluster", "status", "first"]);
    assert!(st.nodes.iter().all(|n| n.alive));
}

#[test]
fn a_node_whose_port_another_program_holds_is_not_started() {
    let home = CliHome::new();
    let cluster = home.create("ha", &["--nodes", "1", "--ha", "--topology", "none"]);
    let m = manifest(&home, "ha");
    let node1a = m.nodes[0].clone();
    home.run(&["node", "kill", &cluster.node("node1a")])
        .expect_code(0);
    assert!(
        poll_until(Duration::from_secs(10), || {
            let st: ClusterStatus = home.run(&["cluster", "status", "ha", "-o", "json"]).json();
            st.nodes[1].role == Some(Role::Master)
        }),
        "node1b takes over"
    );
    // Another program takes node1a's STOMP port while node1a is down.
    let holder = std::net::TcpListener::bind(("127.0.0.1", node1a.transport_port))
        .expect("the killed node's port is free");
    let run = home.run(&["node", "start", &cluster.node("node1a")]);
    assert_ne!(run.code, 0, "refused: {}", run.stdout);
    let port = node1a.transport_port.to_string();
    assert!(
        run.stderr.contains(&port) && run.stderr.contains("node1a"),
        "names the port and the node: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("ss -ltnp"),
        "says what to do: {}",
        run.stderr
    );
    let running = processes_under(&home.cluster_dir("ha"))
        .into_iter()
        .filter(|pid| mq_tests::cli::cmdline(*pid).iter().any(|a| a == "node1a"))
        .count();
    assert_eq!(running, 0, "node1a was not started");

    // Once the port is free again, node1a starts as the slave.
    drop(holder);
    home.run(&["node", "start", &cluster.node("node1a")])
        .expect_code(0);
    let st: ClusterStatus = home.run_json(&["cluster", "status", "ha"]);
    assert_eq!(st.nodes[0].role, Some(Role::Slave));
}
