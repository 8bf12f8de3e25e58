//! A peer that is down is retried with the connector's back-off, its state is visible in the
//! admin API (`backoff`, attempts, next retry, last error), and once it is back the messages
//! that waited flow. `masterslave:(a,b)` follows whichever of the pair is master.

use std::time::Duration;

use mq_tests::api::{PeerInfo, PeerState, Role};
use mq_tests::client::AckMode;
use mq_tests::network::*;
use mq_tests::*;

async fn peer(node: &Node) -> PeerInfo {
    let l = connectors(node).await;
    l.connectors[0].peers[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_peer_is_retried_with_back_off_and_waiting_messages_flow_when_it_returns() {
    const N: usize = 30;
    let mut b = Node::start(NodeOpts::new("B"));
    b.kill();
    let a = Node::start(NodeOpts::new("A").args([
        "--network",
        &static_uri(
            &[&b],
            "initialReconnectDelay=100&maxReconnectDelay=400&backOffMultiplier=2",
        ),
    ]));
    wait_for_async(SOON, async || peer(&a).await.reconnect_attempts >= 4).await;
    let p = peer(&a).await;
    assert!(
        matches!(p.state, PeerState::Backoff | PeerState::Connecting),
        "{p:?}"
    );
    assert!(p.last_error.is_some(), "{p:?}");
    assert_eq!(p.remote_broker, None);
    // Once in back-off, the next retry is announced and never more than maxReconnectDelay away.
    wait_for_async(SOON, async || peer(&a).await.state == PeerState::Backoff).await;
    let p = peer(&a).await;
    let next = p.next_retry_ms.expect("next retry while in backoff");
    assert!(next >= p.since_ms && next - p.since_ms <= 400, "{p:?}");

    produce(&a, "/queue/wait", 0..N, 64).await;
    b.restart();
    let mut cb = consumer(&b, "/queue/wait").await;
    expect_each_once(&mut cb, N).await;
    let p = peer(&a).await;
    assert_eq!(p.state, PeerState::Connected);
    assert_eq!(p.remote_broker.as_deref(), Some("B"));
    assert_eq!(p.reconnect_attempts, 0);
    assert_eq!(p.last_error, None);
    assert_eq!(p.forwarded, N as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_dies_is_noticed_and_reconnected() {
    let mut b = Node::start(NodeOpts::new("B"));
    let a = Node::start(NodeOpts::new("A").args([
        "--network",
        &static_uri(&[&b], "initialReconnectDelay=100&maxReconnectDelay=200"),
    ]));
    wait_connected(&a, 1).await;
    b.kill();
    wait_for_async(SOON, async || peer(&a).await.state != PeerState::Connected).await;
    b.restart();
    wait_connected(&a, 1).await;
    let mut cb = consumer(&b, "/queue/again").await;
    wait_consumers(&a, "again", 1).await;
    produce(&a, "/queue/again", 0..5, 16).await;
    expect_each_once(&mut cb, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masterslave_follows_the_master_of_the_pair() {
    let data = tempfile::tempdir().expect("shared data dir");
    let slave_port = {
        let (_l, p) = busy_port();
        p
    };
    let mut m = Node::start(NodeOpts::new("M").data(data.path()));
    let mut s = Node::start(
        NodeOpts::new("S")
            .data(data.path())
            .args(["--transport", &format!("tcp://127.0.0.1:{slave_port}")]),
    );
    assert_eq!(s.role(), Role::Slave);
    let uri = format!(
        "static:(masterslave:({},tcp://127.0.0.1:{slave_port}))?initialReconnectDelay=100&maxReconnectDelay=200",
        m.stomp_url()
    );
    let a = Node::start(NodeOpts::new("A").args(["--network", &uri]));
    wait_connected(&a, 1).await;
    assert_eq!(peer(&a).await.remote_broker.as_deref(), Some("M"));
    let mut cm = connect(&m.stomp_addr()).await;
    subscribe(&mut cm, "/queue/pair", "s", AckMode::ClientIndividual).await;
    wait_consumers(&a, "pair", 1).await;
    produce(&a, "/queue/pair", 0..10, 16).await;
    // Acked with receipts: the pair's store no longer holds them when M dies.
    for _ in 0..10 {
        let f = recv(&mut cm, SOON).await;
        ack_receipt(&mut cm, &f).await;
    }

    m.kill();
    s.wait_event(Role::Master, Duration::from_secs(10));
    wait_for_async(LINK, async || {
        let p = peer(&a).await;
        p.state == PeerState::Connected && p.remote_broker.as_deref() == Some("S")
    })
    .await;
    let mut cs = consumer(&s, "/queue/pair").await;
    wait_consumers(&a, "pair", 1).await;
    produce(&a, "/queue/pair", 10..20, 16).await;
    let got = collect(std::slice::from_mut(&mut cs), 10, SOON).await;
    assert!(got[0].iter().all(|i| (10..20).contains(i)), "{got:?}");
    expect_nothing(&mut cs, QUIET).await;
}
