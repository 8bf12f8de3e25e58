//! Multicast discovery: two nodes that advertise on `multicast://default` (239.255.2.3:6155)
//! and have a `multicast://default` network connector find each other, forward both ways, and
//! forget a node that stops advertising.
//!
//! Multicast never touches a real interface: the test creates a network namespace with only
//! its own loopback (multicast route on `lo`), re-runs this test binary inside it with
//! `ip netns exec`, filtered to this one test by its full name, to start the nodes and drive
//! them, and deletes the namespace afterwards.
//! Needs root and `ip` (iproute2).

use std::time::Duration;

use mq_tests::api::PeerState;
use mq_tests::multicast::{NamespacedTest, in_loopback_namespace};
use mq_tests::network::*;
use mq_tests::*;

/// Outside the namespace it creates one and re-runs itself in it; inside (the environment
/// variable says which namespace) it starts the nodes and checks them.
#[test]
fn discovered_nodes_forward_both_ways_inside_a_network_namespace() {
    in_loopback_namespace(
        NamespacedTest {
            module: module_path!(),
            test: "discovered_nodes_forward_both_ways_inside_a_network_namespace",
            ns_env: "MQ_TEST_NETNS",
            prefix: "mqtest-",
            envs: &[],
        },
        inside_the_namespace,
    );
}

/// The part that runs inside the namespace.
async fn inside_the_namespace() {
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
