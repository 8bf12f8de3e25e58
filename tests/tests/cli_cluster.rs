//! `mqctl` against real `mqnode` processes: a cluster's life from create to destroy, a crash and
//! a restart that keeps persistent messages, and an HA pair's failover seen through mqctl.

use std::time::Duration;

use mq_shared::api::Role;
use mq_shared::ctl::{BrowseReport, ClusterManifest, ClusterStatus, QueueStatReport, SendReport};
use mq_tests::cli::{CliHome, is_running, processes_under};
use mq_tests::{free_port, poll_until};

fn status(home: &CliHome, name: &str) -> (ClusterStatus, i32) {
    let run = home.run(&["cluster", "status", name, "-o", "json"]);
    (run.json(), run.code)
}

fn depth(report: &QueueStatReport, node: &str, queue: &str) -> Option<u64> {
    report
        .queues
        .iter()
        .find(|r| r.node == node && r.queue == queue)
        .map(|r| r.depth)
}

#[test]
fn a_cluster_lives_from_create_to_destroy() {
    let home = CliHome::new();
    let cluster = home.create("demo", &["--nodes", "3"]);
    let dir = home.cluster_dir("demo");

    // Status: three nodes, all alive and serving, with the pids the manifest recorded.
    let (st, code) = status(&home, "demo");
    assert_eq!(code, 0);
    assert_eq!(
        st.nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
        ["node1", "node2", "node3"]
    );
    assert!(st.nodes.iter().all(|n| n.alive));
    assert!(
        st.nodes
            .iter()
            .all(|n| matches!(n.role, Some(Role::Master | Role::Standalone)))
    );
    let manifest: ClusterManifest =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cluster.json")).expect("manifest"))
            .expect("manifest parses");
    assert_eq!(manifest.nodes.len(), 3);
    assert_eq!(manifest.links.len(), 6, "mesh of 3: every ordered pair");
    for n in &manifest.nodes {
        let pid = n.pid.expect("pid recorded");
        assert!(is_running(pid), "{} runs", n.name);
    }

    // Send to the cluster (node1) and to node2; queue stat sees both.
    let sent: SendReport = home.run_json(&["queue", "send", "demo", "orders", "--body", "hello"]);
    assert_eq!((sent.node.as_str(), sent.sent), ("node1", 1));
    home.run(&[
        "queue",
        "send",
        &cluster.node("node2"),
        "kept",
        "--body",
        "survives a crash",
        "--header",
        "kind=test",
    ])
    .expect_code(0);
    let stat: QueueStatReport = home.run_json(&["queue", "stat", "demo"]);
    assert_eq!(depth(&stat, "node1", "orders"), Some(1));
    assert_eq!(depth(&stat, "node2", "kept"), Some(1));
    assert!(stat.down.is_empty());

    // Kill node2: status shows it down (exit 3), queue stat answers for the others (exit 3).
    let node2_pid = manifest.nodes[1].pid.expect("pid");
    home.run(&["node", "kill", &cluster.node("node2")])
        .expect_code(0);
    assert!(!is_running(node2_pid));
    let (st, code) = status(&home, "demo");
    assert_eq!(code, 3, "partial: node2 does not answer");
    let node2 = &st.nodes[1];
    assert!(!node2.alive);
    assert_eq!(node2.role, None);
    assert!(st.nodes[0].alive && st.nodes[2].alive);
    let run = home.run(&["queue", "stat", "demo", "-o", "json"]);
    assert_eq!(run.code, 3);
    let stat: QueueStatReport = run.json();
    assert_eq!(stat.down, ["node2"]);
    assert_eq!(depth(&stat, "node1", "orders"), Some(1));
    assert!(
        run.stderr.contains("node2"),
        "stderr says which node: {}",
        run.stderr
    );
    let plain = home.run(&["queue", "stat", "demo"]);
    assert_eq!(plain.code, 3);
    assert!(
        plain
            .rows()
            .iter()
            .any(|r| r[0] == "node2" && r[1] == "(down)"),
        "a row marks node2 down:\n{}",
        plain.stdout
    );

    // Restart node2: same ports, same data; the persistent message is still there.
    home.run(&["node", "restart", &cluster.node("node2")])
        .expect_code(0);
    let (st, code) = status(&home, "demo");
    assert_eq!(code, 0);
    assert!(st.nodes[1].alive);
    assert_eq!(
        st.nodes[1].transport,
        manifest.nodes[1].transport_uri(),
        "ports reused"
    );
    let browse: BrowseReport = home.run_json(&["queue", "browse", &cluster.node("node2"), "kept"]);
    assert_eq!(browse.messages.len(), 1);
    assert_eq!(browse.messages[0].body, "survives a crash");
    assert_eq!(
        browse.messages[0].headers.get("kind").map(String::as_str),
        Some("test")
    );

    // Stop and start the whole cluster: still there, still the same ports.
    home.run(&["cluster", "stop", "demo"]).expect_code(0);
    assert!(processes_under(&dir).is_empty(), "cluster stop stops all");
    home.run(&["cluster", "start", "demo"]).expect_code(0);
    let (st, _) = status(&home, "demo");
    assert!(st.nodes.iter().all(|n| n.alive));
    for (before, after) in manifest.nodes.iter().zip(&st.nodes) {
        assert_eq!(before.transport_uri(), after.transport);
        assert_eq!(before.admin_url(), after.admin);
    }

    // Purge, then destroy: no process and no folder left.
    home.run(&["queue", "purge", "demo", "orders", "--yes"])
        .expect_code(0);
    home.run(&["cluster", "destroy", "demo", "-y"])
        .expect_code(0);
    assert!(!dir.exists());
    assert!(processes_under(home.path()).is_empty());
    let run = home.run(&["cluster", "status", "demo"]);
    assert_eq!(run.code, 66, "unknown cluster");
    assert!(run.stderr.contains("no cluster named `demo`"));
}

#[test]
fn an_ha_pair_fails_over_and_mqctl_follows_the_master() {
    let home = CliHome::new();
    let cluster = home.create("ha", &["--nodes", "1", "--ha", "--topology", "none"]);

    let (st, code) = status(&home, "ha");
    assert_eq!(code, 0);
    let roles: Vec<_> = st.nodes.iter().map(|n| (n.name.as_str(), n.role)).collect();
    assert_eq!(
        roles,
        [
            ("node1a", Some(Role::Master)),
            ("node1b", Some(Role::Slave))
        ]
    );

    // NAME alone goes to the master.
    let sent: SendReport = home.run_json(&["queue", "send", "ha", "q", "--body", "before"]);
    assert_eq!(sent.node, "node1a");

    home.run(&["node", "kill", &cluster.node("node1a")])
        .expect_code(0);
    assert!(
        poll_until(Duration::from_secs(10), || {
            let (st, _) = status(&home, "ha");
            st.nodes[1].role == Some(Role::Master)
        }),
        "node1b takes over"
    );
    let sent: SendReport = home.run_json(&["queue", "send", "ha", "q", "--body", "after"]);
    assert_eq!(sent.node, "node1b");
    let browse: BrowseReport = home.run_json(&["queue", "browse", "ha/node1", "q"]);
    let bodies: Vec<&str> = browse.messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["before", "after"]);

    // The old master comes back as a slave.
    home.run(&["node", "start", &cluster.node("node1a")])
        .expect_code(0);
    let (st, code) = status(&home, "ha");
    assert_eq!(code, 0);
    assert_eq!(st.nodes[0].role, Some(Role::Slave));
}

#[test]
fn links_are_recorded_added_and_removed() {
    use mq_shared::ctl::{LinkAdded, LinkList, LinkRemoved};
    let home = CliHome::new();
    let _cluster = home.create("net", &["--nodes", "3", "--topology", "star"]);
    let list: LinkList = home.run_json(&["link", "ls", "net"]);
    let names: Vec<&str> = list.links.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["node1-node2", "node1-node3"]);
    assert!(list.links.iter().all(|l| l.duplex && l.ttl == 2));

    let added: LinkAdded = home.run_json(&["link", "add", "net", "node2", "node3", "--ttl", "3"]);
    assert_eq!(added.link.name, "node2-node3");
    assert!(!added.link.duplex);
    let transport3 = home
        .run(&["cluster", "status", "net", "-o", "json"])
        .json::<ClusterStatus>()
        .nodes[2]
        .transport
        .clone();
    assert_eq!(
        added.link.uri,
        format!("static:({transport3})?networkTTL=3"),
        "FROM forwards to TO's transport"
    );

    let removed: LinkRemoved = home.run_json(&["link", "rm", "net", "node1-node2"]);
    assert_eq!(removed.link.from, "node1");
    let list: LinkList = home.run_json(&["link", "ls", "net"]);
    let names: Vec<&str> = list.links.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["node1-node3", "node2-node3"]);
    let run = home.run(&["link", "rm", "net", "node1-node2"]);
    assert_eq!(run.code, 66, "unknown link");
    assert!(
        run.stderr.contains("no link `node1-node2`"),
        "{}",
        run.stderr
    );
}

#[test]
fn nodes_outside_a_cluster_are_reached_by_url() {
    let home = CliHome::new();
    let _cluster = home.create("one", &["--nodes", "1"]);
    let manifest: ClusterManifest = serde_json::from_str(
        &std::fs::read_to_string(home.cluster_dir("one").join("cluster.json")).expect("manifest"),
    )
    .expect("manifest parses");
    let admin = manifest.nodes[0].admin_url();
    let token = manifest.token_file.as_str();

    // Without the token the node refuses, and mqctl says what to pass.
    let run = home.run(&["queue", "send", "--url", &admin, "q", "--body", "x"]);
    assert_eq!(run.code, 77, "not authorized");
    assert!(run.stderr.contains("--token-file"), "{}", run.stderr);

    home.run(&[
        "queue",
        "send",
        "--url",
        &admin,
        "--token-file",
        token,
        "q",
        "--body",
        "x",
    ])
    .expect_code(0);

    // One live node and one address where nothing listens: partial, with the down one named.
    let nobody = format!("http://127.0.0.1:{}", free_port());
    let run = home.run(&[
        "queue",
        "stat",
        "--url",
        &admin,
        "--url",
        &nobody,
        "--token-file",
        token,
        "-o",
        "json",
    ]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let report: QueueStatReport = run.json();
    assert_eq!(report.down, [nobody.trim_start_matches("http://")]);
    assert_eq!(
        depth(&report, admin.trim_start_matches("http://"), "q"),
        Some(1)
    );
}
