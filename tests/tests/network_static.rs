//! The seed's static network: Broker3 forwards to Broker1 and Broker2 on demand, configured
//! exactly as ActiveMQ users write it; with `duplex=true` the same links carry messages back.

use mq_tests::api::PeerState;
use mq_tests::network::*;
use mq_tests::*;

/// `static:(tcp://localhost:P1,tcp://localhost:P2)?maxReconnectDelay=5000&useExponentialBackOff=false`.
fn seed_uri(b1: &Node, b2: &Node, extra: &str) -> String {
    let p = |n: &Node| {
        n.stomp_url()
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_string()
    };
    format!(
        "static:(tcp://localhost:{},tcp://localhost:{})?maxReconnectDelay=5000&useExponentialBackOff=false{extra}",
        p(b1),
        p(b2)
    )
}

#[tokio::test]
async fn broker3_forwards_to_competing_consumers_on_broker1_and_broker2() {
    const N: usize = 400;
    let b1 = Node::start(NodeOpts::new("Broker1"));
    let b2 = Node::start(NodeOpts::new("Broker2"));
    let b3 = Node::start(NodeOpts::new("Broker3").args(["--network", &seed_uri(&b1, &b2, "")]));
    wait_connected(&b3, 2).await;
    let l = connectors(&b3).await;
    assert_eq!(l.connectors.len(), 1);
    let c = &l.connectors[0];
    assert_eq!(c.options["maxReconnectDelay"], "5000");
    assert_eq!(c.options["useExponentialBackOff"], "false");
    let mut names: Vec<String> = c
        .peers
        .iter()
        .filter_map(|p| p.remote_broker.clone())
        .collect();
    names.sort();
    assert_eq!(names, vec!["Broker1", "Broker2"]);

    let c1 = consumer(&b1, "/queue/seed").await;
    let c2 = consumer(&b2, "/queue/seed").await;
    // Demand crossed both bridges: Broker3 holds one network consumer per peer.
    wait_consumers(&b3, "seed", 2).await;

    produce(&b3, "/queue/seed", 0..N, 256).await;
    let mut clients = [c1, c2];
    let got = collect(&mut clients, N, SOON).await;
    assert_exactly_once(&got, N);
    assert!(
        !got[0].is_empty() && !got[1].is_empty(),
        "both consumers compete: {} and {}",
        got[0].len(),
        got[1].len()
    );
    for c in clients.iter_mut() {
        expect_nothing(c, QUIET).await;
    }
    wait_for_async(SOON, async || b3.admin().depth("seed").await == 0).await;
    let q = b3.admin().queue("seed").await.expect("queue on Broker3");
    assert_eq!(q.forwarded, N as u64);
    let l = connectors(&b3).await;
    let total: u64 = l.connectors[0].peers.iter().map(|p| p.forwarded).sum();
    assert_eq!(total, N as u64, "per-peer forwarded counts add up");
}

#[tokio::test]
async fn duplex_carries_messages_from_broker1_back_to_broker3() {
    const N: usize = 200;
    let b1 = Node::start(NodeOpts::new("Broker1"));
    let b2 = Node::start(NodeOpts::new("Broker2"));
    let b3 = Node::start(
        NodeOpts::new("Broker3").args(["--network", &seed_uri(&b1, &b2, "&duplex=true")]),
    );
    wait_connected(&b3, 2).await;
    let mut c3 = consumer(&b3, "/queue/back").await;
    // Broker3's bridge subscribed on Broker1 (and Broker2) for its consumer's demand.
    wait_consumers(&b1, "back", 1).await;
    produce(&b1, "/queue/back", 0..N, 128).await;
    expect_each_once(&mut c3, N).await;
    expect_nothing(&mut c3, QUIET).await;
    wait_for_async(SOON, async || b1.admin().depth("back").await == 0).await;
    // Both directions on one connection per peer: Broker1 sees one bridge connection.
    let conns: mq_tests::api::ConnectionList = b1.admin().get_ok("/api/v1/connections").await;
    let bridges = conns
        .connections
        .iter()
        .filter(|c| c.broker.as_deref() == Some("Broker3"))
        .count();
    assert_eq!(bridges, 1);
    assert!(
        connectors(&b3).await.connectors[0]
            .peers
            .iter()
            .all(|p| p.state == PeerState::Connected)
    );
}
