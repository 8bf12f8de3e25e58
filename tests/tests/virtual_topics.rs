//! Virtual topics: a SEND to `/topic/VirtualTopic.X` also goes to every consumer queue
//! `/queue/Consumer.<group>.VirtualTopic.X` that was subscribed to: each group gets every
//! message once, its consumers compete, and plain topic subscribers still get it. Across a
//! network connector the group's consumers on both nodes compete, the publishing node's own
//! first: the other node's get what they have no room for, or all when there are none.

use mq_tests::client::AckMode;
use mq_tests::network::*;
use mq_tests::*;

const TOPIC: &str = "/topic/VirtualTopic.orders";
const GROUP_A: &str = "/queue/Consumer.A.VirtualTopic.orders";
const GROUP_B: &str = "/queue/Consumer.B.VirtualTopic.orders";
/// Group A's queue by name, as the admin API knows it.
const QUEUE_A: &str = "Consumer.A.VirtualTopic.orders";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_group_gets_every_message_once_and_its_consumers_compete() {
    const N: usize = 40;
    let node = Node::start(NodeOpts::new("vt-groups"));
    let addr = node.stomp_addr();
    let mut a = vec![
        consumer(&node, GROUP_A).await,
        consumer(&node, GROUP_A).await,
    ];
    let mut b = vec![consumer(&node, GROUP_B).await];
    let mut plain = connect(&addr).await;
    subscribe(&mut plain, TOPIC, "t", AckMode::Auto).await;
    produce(&node, TOPIC, 0..N, 32).await;
    let got_a = collect(&mut a, N, SOON).await;
    assert_exactly_once(&got_a, N);
    assert!(
        got_a.iter().all(|v| !v.is_empty()),
        "both consumers of group A got some: {:?}",
        got_a.iter().map(Vec::len).collect::<Vec<_>>()
    );
    let got_b = collect(&mut b, N, SOON).await;
    assert_exactly_once(&got_b, N);
    let got_t = collect(std::slice::from_mut(&mut plain), N, SOON).await;
    assert_exactly_once(&got_t, N);
    for c in a.iter_mut().chain(b.iter_mut()) {
        expect_nothing(c, QUIET).await;
    }
    // A group's copy is a queue message that names the topic it came from.
    produce(&node, TOPIC, N..N + 1, 32).await;
    let m = recv(&mut b[0], SOON).await;
    assert_eq!(m.header("destination"), Some(GROUP_B));
    assert_eq!(m.header("original-destination"), Some(TOPIC));
}

#[tokio::test]
async fn messages_before_a_groups_first_subscribe_are_not_kept_for_it() {
    let node = Node::start(NodeOpts::new("vt-late"));
    produce(&node, TOPIC, 0..3, 16).await;
    assert_eq!(
        node.admin().queue("Consumer.A.VirtualTopic.orders").await,
        None
    );
    let mut a = consumer(&node, GROUP_A).await;
    expect_nothing(&mut a, QUIET).await;
    // From its first subscribe on, the group's queue keeps them, also while nobody consumes.
    a.disconnect().await.expect("disconnect");
    produce(&node, TOPIC, 3..6, 16).await;
    assert_eq!(
        node.admin().depth("Consumer.A.VirtualTopic.orders").await,
        3
    );
    let mut a = consumer(&node, GROUP_A).await;
    let got = collect(std::slice::from_mut(&mut a), 3, SOON).await;
    assert_eq!(got[0], [3, 4, 5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_consumers_on_two_bridged_nodes_compete_once_per_group() {
    const N: usize = 60;
    let two = Node::start(NodeOpts::new("vt-two"));
    let one = Node::start(NodeOpts::new("vt-one").args([
        "--network",
        &static_uri(&[&two], "initialReconnectDelay=100"),
    ]));
    wait_connected(&one, 1).await;
    // Group A on both nodes; group B only on node two.
    let mut a = vec![consumer(&one, GROUP_A).await, consumer(&two, GROUP_A).await];
    let mut b = vec![consumer(&two, GROUP_B).await];
    // The demand of node two's consumers reached node one.
    wait_consumers(&one, "Consumer.A.VirtualTopic.orders", 2).await;
    wait_consumers(&one, "Consumer.B.VirtualTopic.orders", 1).await;
    produce(&one, TOPIC, 0..N, 32).await;
    let got_a = collect(&mut a, N, SOON).await;
    assert_exactly_once(&got_a, N);
    let got_b = collect(&mut b, N, SOON).await;
    assert_exactly_once(&got_b, N);
    for c in a.iter_mut().chain(b.iter_mut()) {
        expect_nothing(c, QUIET).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_local_group_consumer_leaves_the_rest_to_the_other_nodes_and_none_leaves_all() {
    const N: usize = 40;
    let two = Node::start(NodeOpts::new("vt-busy-two"));
    let one = Node::start(NodeOpts::new("vt-busy-one").args([
        "--network",
        &static_uri(&[&two], "initialReconnectDelay=100"),
    ]));
    wait_connected(&one, 1).await;
    // Group A on node one: one message at a time, held unacknowledged.
    let mut slow = connect(&one.stomp_addr()).await;
    subscribe_with(
        &mut slow,
        GROUP_A,
        "s",
        AckMode::ClientIndividual,
        &[("activemq.prefetchSize", "1")],
    )
    .await;
    let mut remote = consumer(&two, GROUP_A).await;
    wait_consumers(&one, QUEUE_A, 2).await;

    produce(&one, TOPIC, 0..N, 32).await;
    // The local consumer is served first, up to its prefetch; the bridge's consumer (a lower
    // priority) takes what it has no room for.
    let held = recv(&mut slow, SOON).await;
    let got = collect(std::slice::from_mut(&mut remote), N - 1, SOON).await;
    expect_nothing(&mut slow, QUIET).await;
    expect_nothing(&mut remote, QUIET).await;
    assert_exactly_once(&[vec![body_number(&held)], got[0].clone()], N);

    // With room again, the local consumer is preferred.
    ack_receipt(&mut slow, &held).await;
    produce(&one, TOPIC, N..N + 1, 32).await;
    let m = recv(&mut slow, SOON).await;
    assert_eq!(body_number(&m), N);
    ack_receipt(&mut slow, &m).await;
    expect_nothing(&mut remote, QUIET).await;

    // No local consumer: the other node's consumer of the group gets every message, in order.
    slow.disconnect().await.expect("disconnect");
    wait_for_async(SOON, async || consumers(&one, QUEUE_A).await == 1).await;
    produce(&one, TOPIC, N + 1..2 * N + 1, 32).await;
    let got = collect(std::slice::from_mut(&mut remote), N, SOON).await;
    assert_eq!(got[0], (N + 1..2 * N + 1).collect::<Vec<_>>());
    expect_nothing(&mut remote, QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_groups_messages_wait_on_the_publishing_node_while_its_remote_consumer_is_away() {
    const N: usize = 30;
    let two = Node::start(NodeOpts::new("vt-away-two"));
    let one = Node::start(NodeOpts::new("vt-away-one").args([
        "--network",
        &static_uri(&[&two], "initialReconnectDelay=100"),
    ]));
    wait_connected(&one, 1).await;
    // Group A's only consumer is on node two: its demand creates the group's queue on node one.
    let remote = consumer(&two, GROUP_A).await;
    wait_consumers(&one, QUEUE_A, 1).await;
    remote.disconnect().await.expect("disconnect");
    wait_for_async(SOON, async || consumers(&one, QUEUE_A).await == 0).await;
    // Published on node one while nobody of the group is connected anywhere: kept there.
    produce(&one, TOPIC, 0..N, 32).await;
    assert_eq!(one.admin().depth(QUEUE_A).await, N as u64);
    // The consumer comes back on node two and gets them all, once, in order.
    let mut remote = consumer(&two, GROUP_A).await;
    let got = collect(std::slice::from_mut(&mut remote), N, SOON).await;
    assert_eq!(got[0], (0..N).collect::<Vec<_>>());
    expect_nothing(&mut remote, QUIET).await;
    wait_for_async(SOON, async || one.admin().depth(QUEUE_A).await == 0).await;
}
