//! A ring A → B → C → A of duplex links: a message is never delivered twice and never
//! circulates (the broker path stops it from returning to a broker it crossed, `networkTTL`
//! bounds its hops), for queues and topics, even with a TTL larger than the ring.

use std::collections::HashSet;

use mq_tests::api::TopicList;
use mq_tests::client::AckMode;
use mq_tests::network::*;
use mq_tests::*;

const N: usize = 300;

async fn ring(ttl: u32) -> (Node, Node, Node) {
    let a = Node::start(NodeOpts::new("A"));
    let b = Node::start(NodeOpts::new("B"));
    let c = Node::start(NodeOpts::new("C"));
    let q = format!("networkTTL={ttl}&duplex=true&initialReconnectDelay=100");
    add_link(&a, &static_uri(&[&b], &q)).await;
    add_link(&b, &static_uri(&[&c], &q)).await;
    add_link(&c, &static_uri(&[&a], &q)).await;
    for n in [&a, &b, &c] {
        wait_connected(n, 1).await;
    }
    (a, b, c)
}

async fn topic_subscribers(n: &Node, name: &str) -> u64 {
    let l: TopicList = n.admin().get_ok("/api/v1/topics").await;
    l.topics
        .iter()
        .find(|t| t.name == name)
        .map(|t| t.subscribers)
        .unwrap_or(0)
}

async fn queue_messages_cross_the_ring_once(ttl: u32) {
    let (a, b, c) = ring(ttl).await;
    let mut cc = consumer(&c, "/queue/ring").await;
    wait_consumers(&a, "ring", 1).await;
    wait_consumers(&b, "ring", 1).await;
    produce(&a, "/queue/ring", 0..N, 128).await;
    produce(&b, "/queue/ring", N..2 * N, 128).await;
    expect_each_once(&mut cc, 2 * N).await;
    expect_nothing(&mut cc, QUIET).await;
    let mut forwarded = 0;
    for n in [&a, &b, &c] {
        wait_for_async(SOON, async || n.admin().depth("ring").await == 0).await;
        forwarded += n.admin().queue("ring").await.map_or(0, |q| q.forwarded);
    }
    // Each message crosses at most two links of a three-broker ring (never back to a broker
    // it has crossed), and at most networkTTL.
    let bound = (2 * N as u64) * u64::from(ttl.min(2));
    assert!(
        forwarded <= bound,
        "{forwarded} forwards for {} messages (bound {bound})",
        2 * N
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_with_ttl_one_delivers_each_queue_message_once() {
    queue_messages_cross_the_ring_once(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_with_ttl_larger_than_the_ring_never_loops() {
    queue_messages_cross_the_ring_once(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_copies_reach_each_subscriber_once_around_the_ring() {
    const M: usize = 50;
    let (a, b, c) = ring(3).await;
    let mut subs = Vec::new();
    for n in [&a, &b, &c] {
        let mut s = connect(&n.stomp_addr()).await;
        subscribe(&mut s, "/topic/ring", "t", AckMode::Auto).await;
        subs.push(s);
    }
    // B sees its own subscriber and the demand of A's and C's.
    wait_for_async(LINK, async || topic_subscribers(&b, "ring").await >= 3).await;
    let mut p = connect(&b.stomp_addr()).await;
    for i in 0..M {
        send(&mut p, "/topic/ring", numbered_body(i, 32), &[]).await;
    }
    for (k, s) in subs.iter_mut().enumerate() {
        let got = drain(s, M, SOON).await;
        let set: HashSet<usize> = got.iter().map(body_number).collect();
        assert_eq!(set.len(), M, "subscriber {k} got duplicates");
        expect_nothing(s, QUIET).await;
    }
    let mut forwarded = 0;
    for n in [&a, &b, &c] {
        let l: TopicList = n.admin().get_ok("/api/v1/topics").await;
        forwarded += l
            .topics
            .iter()
            .find(|t| t.name == "ring")
            .map_or(0, |t| t.forwarded);
    }
    assert!(
        forwarded <= 4 * M as u64,
        "{forwarded} topic forwards for {M} messages: copies circulate"
    );
}
