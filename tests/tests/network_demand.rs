//! Demand-driven forwarding: with no consumer anywhere messages stay where they were sent; a
//! consumer appearing two hops away pulls them; local consumers are served before the bridge;
//! `excludedDestinations` and `staticallyIncludedDestinations` override demand.

use std::time::{Duration, Instant};

use mq_tests::network::*;
use mq_tests::*;

const OPTS: &str = "networkTTL=2&initialReconnectDelay=100";

/// Asserts for `d` that `queue` on `node` keeps `depth` messages and forwards none.
async fn stays(node: &Node, queue: &str, depth: u64, d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        let q = node.admin().queue(queue).await.expect("queue exists");
        assert_eq!(
            (q.depth, q.forwarded),
            (depth, 0),
            "messages left {}",
            node.name()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_wait_for_demand_then_follow_a_consumer_two_hops_away() {
    const N: usize = 50;
    let c = Node::start(NodeOpts::new("C"));
    let b = Node::start(NodeOpts::new("B").args(["--network", &static_uri(&[&c], OPTS)]));
    let a = Node::start(NodeOpts::new("A").args(["--network", &static_uri(&[&b], OPTS)]));
    wait_connected(&a, 1).await;
    wait_connected(&b, 1).await;
    produce(&a, "/queue/idle", 0..N, 64).await;
    stays(&a, "idle", N as u64, Duration::from_millis(500)).await;
    assert_eq!(b.admin().depth("idle").await, 0);
    assert_eq!(c.admin().depth("idle").await, 0);

    let mut cc = consumer(&c, "/queue/idle").await;
    expect_each_once(&mut cc, N).await;
    wait_for_async(SOON, async || a.admin().depth("idle").await == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_consumers_are_served_before_the_bridge() {
    const N: usize = 100;
    let c = Node::start(NodeOpts::new("C"));
    let a = Node::start(NodeOpts::new("A").args(["--network", &static_uri(&[&c], OPTS)]));
    wait_connected(&a, 1).await;
    let mut remote = consumer(&c, "/queue/local").await;
    let mut local = consumer(&a, "/queue/local").await;
    wait_consumers(&a, "local", 2).await;
    produce(&a, "/queue/local", 0..N, 64).await;
    expect_each_once(&mut local, N).await;
    expect_nothing(&mut remote, QUIET).await;
    assert_eq!(a.admin().queue("local").await.map(|q| q.forwarded), Some(0));

    // With the local consumer gone, the bridge takes over.
    let _ = local.disconnect().await;
    produce(&a, "/queue/local", N..2 * N, 64).await;
    let got = collect(std::slice::from_mut(&mut remote), N, SOON).await;
    assert!(got[0].iter().all(|i| (N..2 * N).contains(i)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excluded_destinations_never_cross_and_static_ones_always_do() {
    let c = Node::start(NodeOpts::new("C"));
    let a = Node::start(NodeOpts::new("A").args([
        "--network",
        &static_uri(
            &[&c],
            "excludedDestinations=/queue/secret.>&staticallyIncludedDestinations=/queue/always",
        ),
    ]));
    wait_connected(&a, 1).await;
    let mut secret = consumer(&c, "/queue/secret.x").await;
    let mut open = consumer(&c, "/queue/open").await;
    wait_consumers(&a, "open", 1).await;
    produce(&a, "/queue/secret.x", 0..10, 16).await;
    produce(&a, "/queue/open", 0..10, 16).await;
    expect_each_once(&mut open, 10).await;
    expect_nothing(&mut secret, QUIET).await;
    assert_eq!(a.admin().depth("secret.x").await, 10);

    // No consumer of /queue/always anywhere, yet it is forwarded.
    produce(&a, "/queue/always", 0..10, 16).await;
    wait_for_async(SOON, async || c.admin().depth("always").await == 10).await;
    assert_eq!(a.admin().depth("always").await, 0);
}
