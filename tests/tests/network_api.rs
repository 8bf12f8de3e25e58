//! Network connectors through the admin API, the TOML config and `--network`: added, listed
//! and removed at run time; malformed URIs and unknown options refused with an error that
//! names the offending part.

use mq_tests::api::{ApiError, NetworkConnectorList, PeerState};
use mq_tests::network::*;
use mq_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_list_and_remove_connectors_at_run_time() {
    let b = Node::start(NodeOpts::new("B"));
    let a = Node::start(NodeOpts::new("A"));
    let admin = a.admin();
    let uri = static_uri(&[&b], "networkTTL=2&duplex=true");
    let body = serde_json::json!({ "name": "to-b", "uri": uri }).to_string();
    let r = admin.post("/api/v1/network-connectors", Some(&body)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let info: mq_tests::api::NetworkConnectorInfo = r.json();
    assert_eq!(info.name, "to-b");
    assert_eq!(info.options["networkTTL"], "2");
    assert_eq!(info.options["duplex"], "true");
    assert_eq!(info.peers.len(), 1);
    wait_connected(&a, 1).await;

    // A generated name, and a duplicate.
    let other = add_link(&a, &static_uri(&[&b], "")).await;
    assert!(!other.name.is_empty() && other.name != "to-b");
    let r = admin.post("/api/v1/network-connectors", Some(&body)).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.json::<ApiError>().error.code, "conflict");

    let l: NetworkConnectorList = admin.get_ok("/api/v1/network-connectors").await;
    assert_eq!(l.connectors.len(), 2);
    assert!(
        l.connectors
            .iter()
            .all(|c| c.peers[0].state == PeerState::Connected || c.name != "to-b")
    );

    let r = admin.delete("/api/v1/network-connectors/to-b").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = admin.delete("/api/v1/network-connectors/to-b").await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.json::<ApiError>().error.code, "not_found");
    let l: NetworkConnectorList = admin.get_ok("/api/v1/network-connectors").await;
    assert_eq!(l.connectors.len(), 1);
    // The removed connector's bridge is gone from B.
    wait_for_async(SOON, async || {
        let c: mq_tests::api::ConnectionList = b.admin().get_ok("/api/v1/connections").await;
        c.connections
            .iter()
            .filter(|c| c.broker.as_deref() == Some("A"))
            .count()
            == 1
    })
    .await;
}

#[tokio::test]
async fn malformed_uris_and_unknown_options_are_refused_naming_the_part() {
    let a = Node::start(NodeOpts::new("A"));
    let admin = a.admin();
    for (uri, part) in [
        ("static:(tcp://127.0.0.1:1)?networkTTl=2", "networkTTl"),
        ("static:(tcp://127.0.0.1:1)?duplex=maybe", "maybe"),
        ("static:(tcp://127.0.0.1:99999)", "99999"),
        ("static:(tcp://127.0.0.1:1", "static:(tcp://127.0.0.1:1"),
        ("bogus://x", "bogus"),
        (
            "static:(tcp://127.0.0.1:1)?excludedDestinations=/queue/a.>.b",
            "a.>.b",
        ),
    ] {
        let body = serde_json::json!({ "uri": uri }).to_string();
        let r = admin.post("/api/v1/network-connectors", Some(&body)).await;
        assert_eq!(r.status, 400, "{uri}: {}", r.body);
        let e: ApiError = r.json();
        assert_eq!(e.error.code, "bad_uri", "{uri}");
        assert!(e.error.message.contains(part), "{uri}: {}", e.error.message);
    }
    let r = admin
        .post("/api/v1/network-connectors", Some("{\"url\":\"x\"}"))
        .await;
    assert_eq!(r.status, 400);
    let l: NetworkConnectorList = admin.get_ok("/api/v1/network-connectors").await;
    assert!(l.connectors.is_empty());

    let out = run_mqnode(&[
        "--name",
        "bad",
        "--transport",
        "tcp://127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--network",
        "static:(tcp://127.0.0.1:1)?maxReconectDelay=5",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("maxReconectDelay"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connectors_from_the_toml_config_file() {
    let b = Node::start(NodeOpts::new("B"));
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("node.toml");
    std::fs::write(
        &file,
        format!(
            "network = [\"{}\"]\n",
            static_uri(&[&b], "name=from-file&networkTTL=3")
        ),
    )
    .expect("writing the config");
    let a = Node::start(NodeOpts::new("A").args(["--config", &file.display().to_string()]));
    wait_connected(&a, 1).await;
    let l = connectors(&a).await;
    assert_eq!(l.connectors[0].name, "from-file");
    assert_eq!(l.connectors[0].options["networkTTL"], "3");
    let mut cb = consumer(&b, "/queue/toml").await;
    wait_consumers(&a, "toml", 1).await;
    produce(&a, "/queue/toml", 0..3, 8).await;
    expect_each_once(&mut cb, 3).await;
}

/// Connectors added through the API are kept in the data directory: a restarted node, or the
/// member of its master/slave group that takes over, starts the same links.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_time_connectors_survive_restart_and_failover() {
    let b = Node::start(NodeOpts::new("B"));
    let mut group = HaGroup::start("A", 2, &[]);
    let m = group.master(SOON);
    let a = &group.nodes[m];
    add_link(a, &static_uri(&[&b], "name=to-b")).await;
    wait_connected(a, 1).await;

    // Kill the master: the slave takes over and starts the link it never saw being added.
    group.kill(m);
    let m2 = group.master(SOON);
    assert_ne!(m, m2);
    wait_connected(&group.nodes[m2], 1).await;
    let l = connectors(&group.nodes[m2]).await;
    assert_eq!(l.connectors.len(), 1);
    assert_eq!(l.connectors[0].name, "to-b");

    // Removed on the new master: gone after a restart too.
    let r = group.nodes[m2]
        .admin()
        .delete("/api/v1/network-connectors/to-b")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    group.nodes[m2].kill();
    group.nodes[m2].restart();
    let m3 = group.master(SOON);
    assert!(connectors(&group.nodes[m3]).await.connectors.is_empty());
}
