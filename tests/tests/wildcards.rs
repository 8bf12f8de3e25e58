//! Wildcard subscriptions: `.` separates, `*` matches one segment, `>` the rest. A topic
//! wildcard subscriber gets every matching topic's messages, a queue wildcard consumer consumes
//! from every matching queue, those that exist and those created later; SEND to a wildcard is
//! an ERROR; through a bridge, demand for a pattern makes the peer forward matching ones.

use mq_tests::client::AckMode;
use mq_tests::network::*;
use mq_tests::*;

const OPTS: &str = "initialReconnectDelay=100";

/// Waits until the bridges of `node` have attached at least `n` network consumers there.
async fn wait_bridge_subscriptions(node: &Node, n: u64) {
    wait_for_async(LINK, async || {
        let l: api::ConnectionList = node.admin().get_ok("/api/v1/connections").await;
        l.connections
            .iter()
            .filter(|c| c.kind == api::ConnectionKind::Bridge)
            .map(|c| c.subscriptions)
            .sum::<u64>()
            >= n
    })
    .await;
}

#[tokio::test]
async fn a_topic_wildcard_gets_existing_and_future_topics_that_match() {
    let node = Node::start(NodeOpts::new("wild-topic"));
    let addr = node.stomp_addr();
    let mut p = connect(&addr).await;
    // prices.eu exists before the subscription (it has a subscriber of its own).
    let mut eu = connect(&addr).await;
    subscribe(&mut eu, "/topic/prices.eu", "s", AckMode::Auto).await;
    let mut rest = connect(&addr).await;
    subscribe(&mut rest, "/topic/prices.>", "s", AckMode::Auto).await;
    let mut one = connect(&addr).await;
    subscribe(&mut one, "/topic/prices.*", "s", AckMode::Auto).await;
    for (dest, body) in [
        ("/topic/prices.eu", "eu"),
        ("/topic/prices.us.ny", "ny"),
        ("/topic/prices", "bare"),
        ("/topic/other.eu", "other"),
        ("/topic/prices.jp", "jp"),
    ] {
        send(&mut p, dest, body, &[]).await;
    }
    let got = drain(&mut rest, 3, SOON).await;
    assert_eq!(bodies(&got), ["eu", "ny", "jp"]);
    assert_eq!(got[1].header("destination"), Some("/topic/prices.us.ny"));
    assert_eq!(bodies(&drain(&mut one, 2, SOON).await), ["eu", "jp"]);
    expect_nothing(&mut rest, QUIET).await;
    expect_nothing(&mut one, QUIET).await;
    assert_eq!(bodies(&drain(&mut eu, 1, SOON).await), ["eu"]);
}

#[tokio::test]
async fn a_queue_wildcard_consumes_from_existing_and_later_queues() {
    let node = Node::start(NodeOpts::new("wild-queue"));
    let addr = node.stomp_addr();
    let mut p = connect(&addr).await;
    send(&mut p, "/queue/orders.eu", numbered_body(0, 16), &[]).await;
    send(&mut p, "/queue/orders.us", numbered_body(1, 16), &[]).await;
    send(&mut p, "/queue/invoices.eu", numbered_body(99, 16), &[]).await;
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/orders.*", "s", AckMode::ClientIndividual).await;
    let mut got = drain(&mut c, 2, SOON).await;
    // A queue created after the subscription is consumed from too.
    send(&mut p, "/queue/orders.jp", numbered_body(2, 16), &[]).await;
    got.extend(drain(&mut c, 1, SOON).await);
    let mut n: Vec<usize> = got.iter().map(body_number).collect();
    n.sort();
    assert_eq!(n, vec![0, 1, 2]);
    for m in &got {
        ack_receipt(&mut c, m).await;
    }
    expect_nothing(&mut c, QUIET).await;
    for q in ["orders.eu", "orders.us", "orders.jp"] {
        assert_eq!(node.admin().depth(q).await, 0, "{q} consumed");
    }
    assert_eq!(node.admin().depth("invoices.eu").await, 1, "not matched");
    // Gone with its UNSUBSCRIBE from every queue it was attached to.
    c.unsubscribe("s").await.expect("UNSUBSCRIBE");
    for q in ["orders.eu", "orders.us", "orders.jp"] {
        let s = node.admin().queue(q).await.expect("queue");
        assert_eq!(s.consumers, 0, "{q}");
    }
}

#[tokio::test]
async fn send_to_a_wildcard_and_a_malformed_pattern_are_errors() {
    let node = Node::start(NodeOpts::new("wild-bad"));
    let addr = node.stomp_addr();
    for dest in ["/queue/a.*", "/topic/a.>", "/queue/ok,/queue/b.*"] {
        let mut c = connect(&addr).await;
        let e = send_refused(&mut c, dest, &[]).await;
        assert!(
            e.contains("wildcard") && e.contains("SUBSCRIBE only"),
            "{dest}: {e}"
        );
    }
    let mut c = connect(&addr).await;
    let e = subscribe_refused(&mut c, "/queue/a.>.b", &[]).await;
    assert!(e.contains("'>' may only be the last segment"), "{e}");
    // Nothing was created by the refused SENDs.
    let l: api::QueueList = node.admin().get_ok("/api/v1/queues").await;
    assert!(l.queues.iter().all(|q| q.name != "ok"), "{:?}", l.queues);
}

#[tokio::test]
async fn a_wildcard_consumer_reconnecting_after_a_restart_gets_what_waited() {
    let mut node = Node::start(NodeOpts::new("wild-restart"));
    let mut p = connect(&node.stomp_addr()).await;
    for (i, q) in ["/queue/jobs.a", "/queue/jobs.b", "/queue/jobs.c.d"]
        .iter()
        .enumerate()
    {
        send_persistent(&mut p, q, numbered_body(i, 16)).await;
    }
    drop(p);
    node.restart();
    let mut c = connect(&node.stomp_addr()).await;
    subscribe(&mut c, "/queue/jobs.>", "s", AckMode::Auto).await;
    let mut n: Vec<usize> = drain(&mut c, 3, SOON)
        .await
        .iter()
        .map(body_number)
        .collect();
    n.sort();
    assert_eq!(n, vec![0, 1, 2]);
    let mut p = connect(&node.stomp_addr()).await;
    send_persistent(&mut p, "/queue/jobs.new", numbered_body(3, 16)).await;
    assert_eq!(body_number(&recv(&mut c, SOON).await), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demand_for_a_pattern_makes_the_peer_forward_matching_destinations() {
    let b = Node::start(NodeOpts::new("B"));
    let a = Node::start(NodeOpts::new("A").args(["--network", &static_uri(&[&b], OPTS)]));
    wait_connected(&a, 1).await;
    let mut t = connect(&b.stomp_addr()).await;
    subscribe(&mut t, "/topic/prices.>", "s", AckMode::Auto).await;
    let mut q = connect(&b.stomp_addr()).await;
    subscribe(&mut q, "/queue/tasks.*", "s", AckMode::Auto).await;
    // The demand is the patterns: A has no such topic or queue yet, and its bridge attaches
    // one wildcard consumer for each.
    wait_bridge_subscriptions(&a, 2).await;
    let mut p = connect(&a.stomp_addr()).await;
    // Topics created on A after the demand came are forwarded.
    send(&mut p, "/topic/prices.eu", "eu", &[]).await;
    send(&mut p, "/topic/prices.us.ny", "ny", &[]).await;
    send(&mut p, "/topic/other", "other", &[]).await;
    let got = drain(&mut t, 2, SOON).await;
    assert_eq!(bodies(&got), ["eu", "ny"]);
    assert_eq!(got[0].header("destination"), Some("/topic/prices.eu"));
    expect_nothing(&mut t, QUIET).await;
    // Queues: a new queue on A is drained by the consumer on B.
    send_persistent(&mut p, "/queue/tasks.x", numbered_body(7, 16)).await;
    send_persistent(&mut p, "/queue/tasks.x.y", numbered_body(8, 16)).await;
    let m = recv(&mut q, SOON).await;
    assert_eq!(
        (body_number(&m), m.header("destination")),
        (7, Some("/queue/tasks.x"))
    );
    expect_nothing(&mut q, QUIET).await;
    wait_for_async(SOON, async || a.admin().depth("tasks.x").await == 0).await;
    assert_eq!(
        a.admin().depth("tasks.x.y").await,
        1,
        "not matched by tasks.*"
    );
}

#[tokio::test]
async fn a_wildcard_reaches_only_what_its_subscriber_may_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hash = mq_shared::password::hash("pw").expect("a password hash");
    let file = dir.path().join("security.toml");
    std::fs::write(
        &file,
        format!(
            "[[users]]\nname = \"app\"\npassword = \"{}\"\ngroups = [\"apps\"]\n\n\
             [[authorization]]\ndestination = \"queue://secret.>\"\n\n\
             [[authorization]]\ndestination = \"queue://>\"\nread = [\"apps\"]\nwrite = [\"apps\"]\nadmin = [\"apps\"]\n",
            hash.as_str()
        ),
    )
    .expect("write the security file");
    let node = Node::start(NodeOpts::new("wild-sec").args(["--security", &file.to_string_lossy()]));
    // Messages the user may not read, put there by the operator.
    let r = node
        .admin()
        .post(
            "/api/v1/queues/secret.x/messages",
            Some(r#"{"body":"classified"}"#),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let login = client::ConnectOptions {
        login: Some("app".into()),
        passcode: Some("pw".into()),
        ..Default::default()
    };
    let mut c = connect_with(&node.stomp_addr(), login.clone()).await;
    subscribe(&mut c, "/queue/>", "s", AckMode::Auto).await;
    let mut p = connect_with(&node.stomp_addr(), login).await;
    send(&mut p, "/queue/open.x", "public", &[]).await;
    assert_eq!(body_str(&recv(&mut c, SOON).await), "public");
    expect_nothing(&mut c, QUIET).await;
    assert_eq!(node.admin().depth("secret.x").await, 1);
}
