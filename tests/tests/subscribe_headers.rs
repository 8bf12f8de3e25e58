//! ActiveMQ's other STOMP headers that change what a subscriber receives: each is honoured or
//! refused with an ERROR that names it (`activemq.noLocal`, `activemq.retroactive`,
//! `activemq.dispatchAsync`, `activemq.maximumPendingMessageLimit`, `activemq.priority`,
//! `activemq.subscriptionName`, `browser`, unknown `activemq.*` options, the scheduled
//! delivery headers on SEND), and CONNECT's `request-id`.

use mq_tests::client::{AckMode, ConnectOptions};
use mq_tests::network::*;
use mq_tests::*;

#[tokio::test]
async fn no_local_keeps_a_connections_own_topic_messages_from_it() {
    let node = Node::start(NodeOpts::new("nolocal"));
    let addr = node.stomp_addr();
    let mut me = connect(&addr).await;
    subscribe_with(
        &mut me,
        "/topic/chat",
        "quiet",
        AckMode::Auto,
        &[("activemq.noLocal", "true")],
    )
    .await;
    let mut other = connect(&addr).await;
    subscribe(&mut other, "/topic/chat", "s", AckMode::Auto).await;
    send(&mut me, "/topic/chat", "mine", &[]).await;
    send(&mut other, "/topic/chat", "theirs", &[]).await;
    assert_eq!(body_str(&recv(&mut me, SOON).await), "theirs");
    expect_nothing(&mut me, QUIET).await;
    assert_eq!(
        bodies(&drain(&mut other, 2, SOON).await),
        ["mine", "theirs"]
    );
    // A wildcard subscription honours it too.
    subscribe_with(
        &mut me,
        "/topic/chat.>",
        "wild",
        AckMode::Auto,
        &[("activemq.noLocal", "TRUE")],
    )
    .await;
    send(&mut me, "/topic/chat.room", "mine again", &[]).await;
    send(&mut other, "/topic/chat.room", "theirs again", &[]).await;
    assert_eq!(body_str(&recv(&mut me, SOON).await), "theirs again");
    expect_nothing(&mut me, QUIET).await;
}

#[tokio::test]
async fn headers_that_cannot_be_honoured_are_refused_by_name() {
    let node = Node::start(NodeOpts::new("refused"));
    let addr = node.stomp_addr();
    for (dest, header, says) in [
        ("/queue/q", ("activemq.noLocal", "true"), "activemq.noLocal"),
        (
            "/topic/t",
            ("activemq.retroactive", "true"),
            "activemq.retroactive",
        ),
        (
            "/topic/t",
            ("activemq.subscriptionName", "sub"),
            "activemq.subscriptionName",
        ),
        (
            "/queue/q",
            ("activemq.maximumPendingMessageLimit", "5"),
            "activemq.maximumPendingMessageLimit",
        ),
        (
            "/topic/t",
            ("activemq.maximumPendingMessageLimit", "-1"),
            "activemq.maximumPendingMessageLimit",
        ),
        (
            "/topic/t",
            ("activemq.dispatchAsync", "sometimes"),
            "activemq.dispatchAsync",
        ),
        ("/queue/q", ("browser", "true"), "browser"),
        ("/queue/q", ("transformation", "jms-xml"), "transformation"),
        (
            "/queue/q",
            ("activemq.optimizedAcknowledge", "true"),
            "activemq.optimizedAcknowledge",
        ),
        (
            "/queue/q",
            ("activemq.priority", "high"),
            "activemq.priority",
        ),
    ] {
        let mut c = connect(&addr).await;
        let e = subscribe_refused(&mut c, dest, &[header]).await;
        assert!(e.contains(says), "{header:?}: {e}");
    }
    let mut c = connect(&addr).await;
    let e = send_refused(&mut c, "/queue/q", &[("AMQ_SCHEDULED_DELAY", "later")]).await;
    assert!(e.contains("AMQ_SCHEDULED_DELAY"), "{e}");
    assert_eq!(
        node.admin()
            .queue("q")
            .await
            .map(|q| (q.consumers, q.depth)),
        None
    );
    // The harmless values are accepted.
    let mut c = connect(&addr).await;
    subscribe_with(
        &mut c,
        "/topic/t",
        "ok",
        AckMode::Auto,
        &[
            ("activemq.retroactive", "false"),
            ("activemq.dispatchAsync", "true"),
            ("browser", "false"),
            ("activemq.maximumPendingMessageLimit", "0"),
        ],
    )
    .await;
}

#[tokio::test]
async fn maximum_pending_message_limit_bounds_one_slow_topic_subscriber() {
    let node = Node::start(NodeOpts::new("pending"));
    let addr = node.stomp_addr();
    let mut slow = connect(&addr).await;
    subscribe_with(
        &mut slow,
        "/topic/ticks",
        "s",
        AckMode::ClientIndividual,
        &[
            ("activemq.prefetchSize", "1"),
            ("activemq.maximumPendingMessageLimit", "3"),
        ],
    )
    .await;
    let mut p = connect(&addr).await;
    for i in 0..10 {
        send(&mut p, "/topic/ticks", numbered_body(i, 16), &[]).await;
    }
    let first = recv(&mut slow, SOON).await;
    assert_eq!(body_number(&first), 0);
    let l: api::TopicList = node.admin().get_ok("/api/v1/topics").await;
    let t = l
        .topics
        .iter()
        .find(|t| t.name == "ticks")
        .expect("topic ticks");
    assert_eq!(
        (t.pending, t.discarded),
        (3, 6),
        "1 in flight, 3 wait, 6 dropped"
    );
    ack(&mut slow, &first).await;
    assert_eq!(
        body_number(&recv(&mut slow, SOON).await),
        7,
        "the newest waited"
    );
}

#[tokio::test]
async fn a_higher_priority_consumer_is_served_first() {
    let node = Node::start(NodeOpts::new("prio"));
    let addr = node.stomp_addr();
    let mut low = connect(&addr).await;
    subscribe(&mut low, "/queue/p", "s", AckMode::Auto).await;
    let mut high = connect(&addr).await;
    subscribe_with(
        &mut high,
        "/queue/p",
        "s",
        AckMode::ClientIndividual,
        &[("activemq.priority", "9"), ("activemq.prefetchSize", "2")],
    )
    .await;
    let mut p = connect(&addr).await;
    for i in 0..3 {
        send(&mut p, "/queue/p", numbered_body(i, 16), &[]).await;
    }
    let got: Vec<usize> = drain(&mut high, 2, SOON)
        .await
        .iter()
        .map(body_number)
        .collect();
    assert_eq!(got, vec![0, 1]);
    assert_eq!(
        body_number(&recv(&mut low, SOON).await),
        2,
        "only what the first has no room for"
    );
}

#[tokio::test]
async fn connect_request_id_is_echoed_as_response_id() {
    let node = Node::start(NodeOpts::new("reqid"));
    let mut opts = ConnectOptions::default();
    opts.headers.push(("request-id".into(), "req-7".into()));
    let c = connect_with(&node.stomp_addr(), opts).await;
    assert_eq!(c.connected().header("response-id"), Some("req-7"));
}

#[tokio::test]
async fn after_a_restart_a_no_local_subscriber_still_gets_only_others_messages() {
    let mut node = Node::start(NodeOpts::new("nolocal-restart"));
    node.restart();
    let addr = node.stomp_addr();
    let mut me = connect(&addr).await;
    subscribe_with(
        &mut me,
        "/topic/t",
        "s",
        AckMode::Auto,
        &[("activemq.noLocal", "true")],
    )
    .await;
    let mut other = connect(&addr).await;
    send(&mut me, "/topic/t", "mine", &[]).await;
    send(&mut other, "/topic/t", "theirs", &[]).await;
    assert_eq!(body_str(&recv(&mut me, SOON).await), "theirs");
    expect_nothing(&mut me, QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_local_is_per_connection_across_a_bridge() {
    let b = Node::start(NodeOpts::new("B"));
    let a = Node::start(
        NodeOpts::new("A").args(["--network", &static_uri(&[&b], "initialReconnectDelay=100")]),
    );
    wait_connected(&a, 1).await;
    // A noLocal subscriber on B still gets what a connection on A publishes...
    let mut remote = connect(&b.stomp_addr()).await;
    subscribe_with(
        &mut remote,
        "/topic/news",
        "s",
        AckMode::Auto,
        &[("activemq.noLocal", "true")],
    )
    .await;
    // ...while the publisher's own noLocal subscription on A does not.
    let mut me = connect(&a.stomp_addr()).await;
    subscribe_with(
        &mut me,
        "/topic/news",
        "s",
        AckMode::Auto,
        &[("activemq.noLocal", "true")],
    )
    .await;
    wait_for_async(LINK, async || {
        let l: api::TopicList = a.admin().get_ok("/api/v1/topics").await;
        l.topics
            .iter()
            .any(|t| t.name == "news" && t.subscribers == 2)
    })
    .await;
    send(&mut me, "/topic/news", "from A", &[]).await;
    assert_eq!(body_str(&recv(&mut remote, SOON).await), "from A");
    expect_nothing(&mut me, QUIET).await;
}
