//! Durable topic subscriptions (CONNECT `client-id`, SUBSCRIBE `activemq.subscriptionName`):
//! the backlog of an offline subscriber waits for it, across a SIGKILL restart for persistent
//! messages; UNSUBSCRIBE with the name removes it; one connection per client-id; selectors;
//! the admin API and `mqctl sub`; `offline-durable-subscriber-timeout`; a backlog larger than
//! the memory window; a master/slave failover while the subscriber is away; a network
//! connector forwards to a durable subscriber only while it is connected.

use mq_shared::api::Role;
use mq_shared::failover::Failover;
use mq_shared::uri::ClientUri;
use mq_tests::cli::CliHome;
use mq_tests::client::{AckMode, ConnectOptions, StompClient};
use mq_tests::frame::{Command, Frame};
use mq_tests::network::{LINK, static_uri, wait_connected};
use mq_tests::*;

/// Receives `n` messages on `c`, acknowledging each; returns their bodies.
async fn take_acked(c: &mut StompClient, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        let m = recv(c, SOON).await;
        ack_receipt(c, &m).await;
        out.push(body_str(&m));
    }
    out
}

/// Connects through `f` to whichever endpoint serves, within [`SOON`].
async fn connect_failover(f: &mut Failover) -> StompClient {
    match tokio::time::timeout(SOON, f.connect()).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => panic!("failover connect failed: {e}"),
        Err(_) => panic!("no endpoint of {:?} served within {SOON:?}", f.endpoints()),
    }
}

async fn subscriptions(node: &Node) -> Vec<api::SubscriptionInfo> {
    let l: api::SubscriptionList = node.admin().get_ok("/api/v1/subscriptions").await;
    l.subscriptions
}

/// UNSUBSCRIBE `id` with `activemq.subscriptionName`, waiting for the receipt.
async fn unsubscribe_named(c: &mut StompClient, id: &str, name: &str) {
    let r = c.next_receipt_id();
    let f = Frame::new(Command::Unsubscribe)
        .with_header("id", id)
        .with_header("activemq.subscriptionName", name)
        .with_header("receipt", r.as_str());
    c.send_frame(f).await.expect("UNSUBSCRIBE written");
    c.wait_receipt(&r).await.expect("UNSUBSCRIBE receipt");
}

#[tokio::test]
async fn an_offline_subscribers_backlog_waits_and_comes_on_reconnect() {
    let node = Node::start(NodeOpts::new("dur-backlog"));
    let addr = node.stomp_addr();
    offline_durable(&addr, "app", "/topic/news", &[]).await;
    let mut p = connect(&addr).await;
    send_persistent_all(&mut p, "/topic/news", (0..5).map(|i| format!("m{i}"))).await;
    // A non-persistent message reaches online durable subscribers only.
    send(&mut p, "/topic/news", "volatile", &[]).await;
    let s = subscriptions(&node).await;
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(
        (
            s[0].client_id.as_str(),
            s[0].name.as_str(),
            s[0].topic.as_str()
        ),
        ("app", "sub1", "/topic/news")
    );
    assert!(!s[0].active);
    assert_eq!(s[0].pending, 5);
    // Not one of the node's queues.
    let q: api::QueueList = node.admin().get_ok("/api/v1/queues").await;
    assert!(q.queues.is_empty(), "{:?}", q.queues);

    let mut c = durable_subscriber(&addr, "app", "/topic/news", &[]).await;
    let got = take_acked(&mut c, 5).await;
    assert_eq!(got, ["m0", "m1", "m2", "m3", "m4"]);
    // Online, it gets non-persistent messages too, from its topic.
    send(&mut p, "/topic/news", "live", &[]).await;
    let m = recv(&mut c, SOON).await;
    assert_eq!(body_str(&m), "live");
    assert_eq!(m.header("destination"), Some("/topic/news"));
    ack_receipt(&mut c, &m).await;
    expect_nothing(&mut c, QUIET).await;
    wait_for_async(SOON, async || {
        let s = subscriptions(&node).await;
        s[0].active && s[0].pending == 0 && s[0].dequeued == 6
    })
    .await;
}

#[tokio::test]
async fn persistent_backlog_survives_a_sigkill_restart() {
    let mut node = Node::start(NodeOpts::new("dur-kill"));
    let addr = node.stomp_addr();
    offline_durable(&addr, "app", "/topic/orders", &[]).await;
    let mut p = connect(&addr).await;
    send_persistent_all(&mut p, "/topic/orders", (0..3).map(|i| format!("p{i}"))).await;
    send(&mut p, "/topic/orders", "np", &[]).await;
    drop(p);
    node.kill();
    node.restart();
    let s = subscriptions(&node).await;
    assert_eq!(s.len(), 1, "the subscription survives: {s:?}");
    assert_eq!(s[0].pending, 3);
    let mut c = durable_subscriber(&addr, "app", "/topic/orders", &[]).await;
    assert_eq!(take_acked(&mut c, 3).await, ["p0", "p1", "p2"]);
    expect_nothing(&mut c, QUIET).await;
    // After a restart messages published while it was away are still kept.
    c.disconnect().await.expect("disconnect");
    let mut p = connect(&addr).await;
    send_persistent(&mut p, "/topic/orders", "after").await;
    let mut c = durable_subscriber(&addr, "app", "/topic/orders", &[]).await;
    assert_eq!(take_acked(&mut c, 1).await, ["after"]);
}

#[tokio::test]
async fn unsubscribe_with_the_name_removes_it_and_its_backlog() {
    let node = Node::start(NodeOpts::new("dur-unsub"));
    let addr = node.stomp_addr();
    let mut c = durable_subscriber(&addr, "app", "/topic/t", &[]).await;
    // A plain UNSUBSCRIBE only detaches: messages keep coming into the backlog.
    c.unsubscribe("d").await.expect("unsubscribe");
    let mut p = connect(&addr).await;
    send_persistent(&mut p, "/topic/t", "kept").await;
    wait_for_async(SOON, async || {
        subscriptions(&node)
            .await
            .first()
            .is_some_and(|s| !s.active && s.pending == 1)
    })
    .await;
    // With the name: gone, backlog and all.
    unsubscribe_named(&mut c, "d", "sub1").await;
    assert!(subscriptions(&node).await.is_empty());
    send_persistent(&mut p, "/topic/t", "nobody").await;
    subscribe_with(&mut c, "/topic/t", "d2", AckMode::Auto, &[DURABLE_NAME]).await;
    expect_nothing(&mut c, QUIET).await;
    assert_eq!(subscriptions(&node).await[0].pending, 0);
}

#[tokio::test]
async fn a_second_connection_with_the_same_client_id_is_refused() {
    let node = Node::start(NodeOpts::new("dur-dup"));
    let addr = node.stomp_addr();
    let first = connect_as(&addr, "app").await;
    let e = match StompClient::connect(&addr, client_id_opts("app")).await {
        Ok(_) => panic!("a second connection with client-id app was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("InvalidClientIDException"), "{e}");
    assert!(e.contains("app"), "{e}");
    // Once the first has gone, the client-id is free again.
    first.disconnect().await.expect("disconnect");
    let _again = connect_as(&addr, "app").await;
}

#[tokio::test]
async fn a_subscription_name_without_a_client_id_is_an_error_naming_it() {
    let node = Node::start(NodeOpts::new("dur-noid"));
    let mut c = connect(&node.stomp_addr()).await;
    let e = subscribe_refused(&mut c, "/topic/t", &[DURABLE_NAME]).await;
    assert!(e.contains("client-id"), "{e}");
    assert!(e.contains("activemq.subscriptionName"), "{e}");
}

#[tokio::test]
async fn no_local_on_a_durable_subscription_is_refused_by_name() {
    let node = Node::start(NodeOpts::new("dur-nolocal"));
    let mut c = connect_as(&node.stomp_addr(), "nl").await;
    let e = subscribe_refused(
        &mut c,
        "/topic/t",
        &[DURABLE_NAME, ("activemq.noLocal", "true")],
    )
    .await;
    assert!(e.contains("activemq.noLocal"), "{e}");
    assert!(subscriptions(&node).await.is_empty(), "nothing was created");
}

#[tokio::test]
async fn a_durable_selector_keeps_only_matching_messages_and_a_new_one_replaces_it() {
    let node = Node::start(NodeOpts::new("dur-sel"));
    let addr = node.stomp_addr();
    offline_durable(
        &addr,
        "app",
        "/topic/prices",
        &[("selector", "kind = 'gold'")],
    )
    .await;
    let mut p = connect(&addr).await;
    for (body, kind) in [("g1", "gold"), ("s1", "silver"), ("g2", "gold")] {
        send(
            &mut p,
            "/topic/prices",
            body,
            &[("persistent", "true"), ("kind", kind)],
        )
        .await;
    }
    let s = subscriptions(&node).await;
    assert_eq!(s[0].selector.as_deref(), Some("kind = 'gold'"));
    assert_eq!(s[0].pending, 2);
    // Another selector: the subscription is recreated (its backlog goes).
    let mut c = durable_subscriber(
        &addr,
        "app",
        "/topic/prices",
        &[("selector", "kind = 'silver'")],
    )
    .await;
    expect_nothing(&mut c, QUIET).await;
    send(
        &mut p,
        "/topic/prices",
        "s2",
        &[("persistent", "true"), ("kind", "silver")],
    )
    .await;
    assert_eq!(take_acked(&mut c, 1).await, ["s2"]);
    let s = subscriptions(&node).await;
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].selector.as_deref(), Some("kind = 'silver'"));
}

#[tokio::test]
async fn the_admin_api_and_mqctl_list_and_remove_subscriptions() {
    let node = Node::start(NodeOpts::new("dur-admin"));
    let addr = node.stomp_addr();
    offline_durable(&addr, "billing", "/topic/invoices", &[]).await;
    let _online = durable_subscriber(&addr, "audit", "/topic/invoices", &[]).await;
    let mut p = connect(&addr).await;
    send_persistent_all(&mut p, "/topic/invoices", (0..4).map(|i| format!("i{i}"))).await;
    let home = CliHome::new();
    let token = node.data_dir().join("admin.token");
    let url = node.admin_url();
    let token_s = token.display().to_string();
    let run = home.run(&[
        "sub",
        "ls",
        "--url",
        &url,
        "--token-file",
        &token_s,
        "-o",
        "json",
    ]);
    let report: mq_shared::ctl::SubscriptionReport = run.expect_code(0).json();
    let rows: Vec<(&str, &str, bool)> = report
        .subscriptions
        .iter()
        .map(|s| (s.client_id.as_str(), s.name.as_str(), s.active))
        .collect();
    assert_eq!(rows, [("audit", "sub1", true), ("billing", "sub1", false)]);
    assert_eq!(report.subscriptions[1].pending, 4);
    assert_eq!(report.subscriptions[1].enqueued, 4);
    // The table.
    let run = home.run(&["sub", "ls", "--url", &url, "--token-file", &token_s]);
    let out = run.expect_code(0);
    let rows = out.rows();
    assert!(
        rows.iter()
            .any(|r| r.contains(&"billing".to_string()) && r.contains(&"4".to_string())),
        "{rows:?}"
    );
    // An active one cannot be removed; an offline one can, with its backlog.
    let r = node
        .admin()
        .delete("/api/v1/subscriptions/audit/sub1")
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    let run = home.run(&[
        "sub",
        "rm",
        "--url",
        &url,
        "--token-file",
        &token_s,
        "billing",
        "sub1",
        "--yes",
        "-o",
        "json",
    ]);
    let removed: mq_shared::ctl::SubscriptionRemovedReport = run.expect_code(0).json();
    assert_eq!(removed.dropped, 4);
    let left: Vec<String> = subscriptions(&node)
        .await
        .into_iter()
        .map(|s| s.client_id)
        .collect();
    assert_eq!(left, ["audit"]);
    let r = node
        .admin()
        .delete("/api/v1/subscriptions/billing/sub1")
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
}

#[tokio::test]
async fn an_offline_subscription_past_the_timeout_is_removed() {
    let node = Node::start(
        NodeOpts::new("dur-timeout").args(["--offline-durable-subscriber-timeout", "300"]),
    );
    let addr = node.stomp_addr();
    let online = durable_subscriber(&addr, "stays", "/topic/t", &[]).await;
    offline_durable(&addr, "goes", "/topic/t", &[]).await;
    let mut p = connect(&addr).await;
    send_persistent(&mut p, "/topic/t", "x").await;
    wait_for_async(SOON, async || {
        let s = subscriptions(&node).await;
        s.len() == 1 && s[0].client_id == "stays"
    })
    .await;
    drop(online);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_beyond_the_memory_window_comes_complete_and_in_order() {
    const N: usize = 3000;
    let node = Node::start(NodeOpts::new("dur-big").args(["--memory-usage", "1MiB"]));
    let addr = node.stomp_addr();
    offline_durable(&addr, "app", "/topic/bulk", &[]).await;
    let mut p = connect(&addr).await;
    send_numbered(&mut p, "/topic/bulk", 0..N, 2048, 200).await;
    assert_eq!(subscriptions(&node).await[0].pending, N as u64);
    let mut c = connect_as(&addr, "app").await;
    subscribe_with(
        &mut c,
        "/topic/bulk",
        "d",
        AckMode::Auto,
        &[DURABLE_NAME, ("activemq.prefetchSize", "100")],
    )
    .await;
    for i in 0..N {
        let m = recv(&mut c, SOON).await;
        assert_eq!(body_number(&m), i, "in order");
    }
    expect_nothing(&mut c, QUIET).await;
}

#[tokio::test]
async fn internal_queues_cannot_be_reached_by_name() {
    let node = Node::start(NodeOpts::new("dur-hidden"));
    let mut c = connect(&node.stomp_addr()).await;
    let e = send_refused(&mut c, "/queue/mq.durable/1", &[]).await;
    assert!(e.contains("reserved"), "{e}");
    let mut c = connect(&node.stomp_addr()).await;
    let e = subscribe_refused(&mut c, "/queue/mq.durable/1", &[]).await;
    assert!(e.contains("reserved"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_subscribers_backlog_follows_a_master_slave_failover() {
    const TOPIC: &str = "/topic/ledger";
    let shared = tempfile::tempdir().expect("tempdir");
    let a_opts = member("dur-fo-a", shared.path());
    let b_opts = member("dur-fo-b", shared.path());
    let uri: ClientUri = failover_uri(&[a_opts.transport.clone(), b_opts.transport.clone()])
        .parse()
        .expect("failover URI");
    let mut a = Node::start(a_opts);
    let mut b = Node::start(b_opts);
    assert_eq!((a.role(), b.role()), (Role::Master, Role::Slave));
    let mut sub = Failover::new(&uri, client_id_opts("app"));
    let mut pubs = Failover::new(&uri, ConnectOptions::default());

    // Online first: it consumes and acknowledges two, then goes away.
    let mut c = connect_failover(&mut sub).await;
    subscribe_durable(&mut c, TOPIC, &[]).await;
    let mut p = connect_failover(&mut pubs).await;
    send_persistent_all(&mut p, TOPIC, (0..2).map(|i| format!("m{i}"))).await;
    assert_eq!(take_acked(&mut c, 2).await, ["m0", "m1"]);
    c.disconnect().await.expect("disconnect");
    send_persistent_all(&mut p, TOPIC, (2..7).map(|i| format!("m{i}"))).await;
    drop(p);
    assert_eq!(subscriptions(&a).await[0].pending, 5);

    a.kill();
    b.wait_event(Role::Master, SOON);
    // The new master has the subscription and its backlog from the shared store, and keeps
    // collecting for it.
    let s = subscriptions(&b).await;
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(
        (s[0].client_id.as_str(), s[0].name.as_str(), s[0].active),
        ("app", "sub1", false)
    );
    assert_eq!(s[0].pending, 5);
    let mut p = connect_failover(&mut pubs).await;
    send_persistent(&mut p, TOPIC, "m7").await;

    // Back through the same failover URI: every message once, in order, none of the two
    // acknowledged before the kill again. Those read back after the crash say they may have
    // been delivered (the store cannot tell); the one published on the new master does not.
    let mut c = connect_failover(&mut sub).await;
    assert_eq!(
        sub.current().map(|e| e.to_string()),
        Some(b.stomp_addr()),
        "reconnected to the new master"
    );
    subscribe_durable(&mut c, TOPIC, &[]).await;
    let mut got = Vec::new();
    for _ in 0..6 {
        let m = recv(&mut c, SOON).await;
        ack_receipt(&mut c, &m).await;
        got.push((body_str(&m), m.header("redelivered") == Some("true")));
    }
    let expected: Vec<(String, bool)> = (2..8).map(|i| (format!("m{i}"), i < 7)).collect();
    assert_eq!(got, expected);
    expect_nothing(&mut c, QUIET).await;
    wait_for_async(SOON, async || {
        let s = subscriptions(&b).await;
        s.len() == 1 && s[0].active && s[0].pending == 0
    })
    .await;
}

/// Subscribers (local and network) of `/topic/NAME` on `node`.
async fn topic_subscribers(node: &Node, name: &str) -> u64 {
    let t: api::TopicList = node.admin().get_ok("/api/v1/topics").await;
    t.topics
        .iter()
        .find(|t| t.name == name)
        .map_or(0, |t| t.subscribers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_published_on_another_node_while_the_subscriber_is_away_are_not_kept() {
    let two = Node::start(NodeOpts::new("dur-net-two"));
    let one = Node::start(NodeOpts::new("dur-net-one").args([
        "--network",
        &static_uri(&[&two], "initialReconnectDelay=100"),
    ]));
    wait_connected(&one, 1).await;
    let mut p = connect(&one.stomp_addr()).await;
    // Connected, the subscriber on node two is demand: node one forwards to it.
    let mut c = durable_subscriber(&two.stomp_addr(), "app", "/topic/news", &[]).await;
    wait_for_async(LINK, async || topic_subscribers(&one, "news").await == 1).await;
    send_persistent(&mut p, "/topic/news", "online").await;
    assert_eq!(take_acked(&mut c, 1).await, ["online"]);
    // Away: the demand is gone, and what node one publishes meanwhile is not kept for it.
    c.disconnect().await.expect("disconnect");
    wait_for_async(LINK, async || topic_subscribers(&one, "news").await == 0).await;
    send_persistent(&mut p, "/topic/news", "missed").await;
    let s = subscriptions(&two).await;
    assert_eq!((s.len(), s[0].active, s[0].pending), (1, false, 0), "{s:?}");
    let mut c = durable_subscriber(&two.stomp_addr(), "app", "/topic/news", &[]).await;
    wait_for_async(LINK, async || topic_subscribers(&one, "news").await == 1).await;
    send_persistent(&mut p, "/topic/news", "back").await;
    assert_eq!(take_acked(&mut c, 1).await, ["back"], "not \"missed\"");
    expect_nothing(&mut c, QUIET).await;
}
