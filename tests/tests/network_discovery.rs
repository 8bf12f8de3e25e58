//! Multicast discovery: two nodes that advertise on `multicast://default` (239.255.2.3:6155)
//! and have a `multicast://default` network connector find each other, forward both ways, and
//! forget a node that stops advertising.
//!
//! Multicast never touches a real interface: the test creates a network namespace with only
//! its own loopback (multicast route on `lo`), re-runs this test binary inside it with
//! `ip netns exec`, filtered to this one test by its full name, to start the nodes and drive
//! them, and deletes the namespace afterwards.
//! Needs root and `ip` (iproute2).

use std::process::Command;
use std::time::Duration;

use mq_tests::api::PeerState;
use mq_tests::network::*;
use mq_tests::*;

/// Environment variable naming the namespace the inner test runs in.
const NS_ENV: &str = "MQ_TEST_NETNS";

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running ip {args:?} (is iproute2 installed?): {e}"));
    assert!(
        out.status.success(),
        "ip {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Deletes the namespace when the test ends, however it ends.
struct Namespace(String);

impl Namespace {
    fn create() -> Namespace {
        let name = format!("mqtest-{}", std::process::id());
        ip(&["netns", "add", &name]);
        let ns = Namespace(name);
        ip(&["-n", &ns.0, "link", "set", "lo", "up"]);
        ip(&["-n", &ns.0, "link", "set", "lo", "multicast", "on"]);
        ip(&["-n", &ns.0, "route", "add", "224.0.0.0/4", "dev", "lo"]);
        ns
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Outside the namespace it creates one and re-runs itself in it; inside (the environment
/// variable says which namespace) it starts the nodes and checks them.
#[test]
fn discovered_nodes_forward_both_ways_inside_a_network_namespace() {
    if let Ok(ns) = std::env::var(NS_ENV) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        rt.block_on(inside_the_namespace(&ns));
        return;
    }
    let ns = Namespace::create();
    let exe = std::env::current_exe().expect("this test binary");
    // The test's full name in this binary: its module path without the crate, then its own.
    let module = module_path!()
        .split_once("::")
        .map_or(module_path!(), |(_, m)| m);
    let name = format!("{module}::discovered_nodes_forward_both_ways_inside_a_network_namespace");
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(exe)
        .args(["--exact", &name, "--nocapture", "--test-threads=1"])
        .env(NS_ENV, &ns.0)
        .output()
        .expect("running the test inside the namespace");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "inside the namespace:\n{text}");
    assert!(
        text.contains("1 passed"),
        "the inner test did not run:\n{text}"
    );
}

/// The part that runs inside the namespace `ns`.
async fn inside_the_namespace(ns: &str) {
    // Refuse to send multicast anywhere but inside the namespace made for it.
    let here = Command::new("ip")
        .args(["netns", "identify", &std::process::id().to_string()])
        .output()
        .expect("ip netns identify");
    assert_eq!(String::from_utf8_lossy(&here.stdout).trim(), ns);

    let opts = |name: &str| {
        NodeOpts::new(name).args([
            "--discovery",
            "multicast://default",
            "--network",
            "multicast://default?initialReconnectDelay=100&maxReconnectDelay=500",
        ])
    };
    let d1 = Node::start(opts("D1"));
    let mut d2 = Node::start(opts("D2"));
    wait_connected(&d1, 1).await;
    wait_connected(&d2, 1).await;
    let l = connectors(&d1).await;
    assert_eq!(
        l.connectors[0].peers.len(),
        1,
        "only the other node, not itself"
    );
    assert_eq!(l.connectors[0].peers[0].uri, d2.stomp_url());
    assert_eq!(
        l.connectors[0].peers[0].remote_broker.as_deref(),
        Some("D2")
    );

    let mut c2 = consumer(&d2, "/queue/disc").await;
    wait_consumers(&d1, "disc", 1).await;
    produce(&d1, "/queue/disc", 0..20, 32).await;
    expect_each_once(&mut c2, 20).await;

    let mut c1 = consumer(&d1, "/queue/back").await;
    wait_consumers(&d2, "back", 1).await;
    produce(&d2, "/queue/back", 0..20, 32).await;
    expect_each_once(&mut c1, 20).await;

    // D2 dies without a word: after MULTICAST_MISS_BEFORE_DEATH silent periods D1 forgets it.
    d2.kill();
    wait_for_async(Duration::from_secs(15), async || {
        connectors(&d1).await.connectors[0].peers.is_empty()
    })
    .await;
    // And finds it again when it comes back.
    d2.restart();
    wait_for_async(LINK, async || {
        connectors(&d1).await.connectors[0]
            .peers
            .iter()
            .any(|p| p.state == PeerState::Connected)
    })
    .await;
}
