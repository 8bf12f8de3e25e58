//! Unacknowledged messages come back marked `redelivered:true` when their consumer goes away;
//! past the redelivery limit, or on NACK, they move to the dead-letter queue.

use mq_tests::client::AckMode;
use mq_tests::*;

#[tokio::test]
async fn unacked_message_is_redelivered_when_its_consumer_disconnects() {
    let node = Node::start(NodeOpts::new("redeliver"));
    let addr = node.stomp_addr();
    let mut p = connect(&addr).await;
    send_persistent(&mut p, "/queue/work", "job").await;

    let mut first = connect(&addr).await;
    subscribe(&mut first, "/queue/work", "s", AckMode::Client).await;
    let m1 = recv(&mut first, SOON).await;
    assert_eq!(m1.header("redelivered"), None);
    let mut second = connect(&addr).await;
    subscribe(&mut second, "/queue/work", "s", AckMode::Client).await;
    expect_nothing(&mut second, QUIET).await;

    first.disconnect().await.expect("DISCONNECT");
    let m2 = recv(&mut second, SOON).await;
    assert_eq!(body_str(&m2), "job");
    assert_eq!(m2.header("redelivered"), Some("true"));
    assert_eq!(m2.header("message-id"), m1.header("message-id"));
    ack_receipt(&mut second, &m2).await;
    let admin = node.admin();
    wait_for_async(SOON, async || admin.depth("work").await == 0).await;
}

#[tokio::test]
async fn unacked_message_is_redelivered_when_the_socket_just_drops() {
    let node = Node::start(NodeOpts::new("dropped"));
    let addr = node.stomp_addr();
    let mut p = connect(&addr).await;
    for i in 0..3 {
        send_persistent(&mut p, "/queue/drop", format!("m{i}")).await;
    }
    let mut first = connect(&addr).await;
    subscribe(&mut first, "/queue/drop", "s", AckMode::ClientIndividual).await;
    let got = drain(&mut first, 3, SOON).await;
    ack_receipt(&mut first, &got[1]).await;
    let mut second = connect(&addr).await;
    subscribe(&mut second, "/queue/drop", "s", AckMode::ClientIndividual).await;
    drop(first); // no DISCONNECT: the TCP connection just closes
    let again = drain(&mut second, 2, SOON).await;
    assert_eq!(bodies(&again), ["m0", "m2"], "in their original order");
    assert!(
        again
            .iter()
            .all(|m| m.header("redelivered") == Some("true"))
    );
    expect_nothing(&mut second, QUIET).await;
}

#[tokio::test]
async fn past_the_redelivery_limit_a_message_moves_to_the_dlq() {
    let node = Node::start(NodeOpts::new("poison").args(["--maximum-redeliveries", "2"]));
    let admin = node.admin();
    let addr = node.stomp_addr();
    let mut p = connect(&addr).await;
    send(
        &mut p,
        "/queue/poison",
        "bad apple",
        &[("persistent", "true"), ("color", "red")],
    )
    .await;

    // One delivery and two redeliveries, each to a consumer that vanishes without acking.
    for attempt in 0..3 {
        let mut c = connect(&addr).await;
        subscribe(&mut c, "/queue/poison", "s", AckMode::Client).await;
        let m = recv(&mut c, SOON).await;
        assert_eq!(body_str(&m), "bad apple");
        let redelivered = m.header("redelivered") == Some("true");
        assert_eq!(redelivered, attempt > 0, "delivery {attempt}: {m:?}");
        drop(c);
    }
    wait_for_async(SOON, async || {
        admin.depth("poison").await == 0 && admin.depth("DLQ").await == 1
    })
    .await;
    let q = admin.queue("poison").await.expect("queue poison");
    assert_eq!(q.dead_lettered, 1);

    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/poison", "s", AckMode::Client).await;
    expect_nothing(&mut c, QUIET).await;

    // Browse the dead-letter queue through the admin API, then consume it.
    let dlq: api::BrowseResponse = admin.get_ok("/api/v1/queues/DLQ/messages?limit=10").await;
    assert_eq!(dlq.messages.len(), 1, "{dlq:?}");
    let dead = &dlq.messages[0];
    assert_eq!(dead.body, "bad apple");
    assert_eq!(
        dead.headers.get("original-destination").map(String::as_str),
        Some("/queue/poison"),
        "{dead:?}"
    );
    subscribe(&mut c, "/queue/DLQ", "dlq", AckMode::ClientIndividual).await;
    let m = recv(&mut c, SOON).await;
    assert_eq!(body_str(&m), "bad apple");
    assert_eq!(m.header("color"), Some("red"));
    assert_eq!(m.header("destination"), Some("/queue/DLQ"));
    ack_receipt(&mut c, &m).await;
    wait_for_async(SOON, async || admin.depth("DLQ").await == 0).await;
}

#[tokio::test]
async fn nack_sends_the_message_to_the_dlq() {
    let node = Node::start(NodeOpts::new("nack"));
    let admin = node.admin();
    let addr = node.stomp_addr();
    let mut p = connect(&addr).await;
    send_persistent(&mut p, "/queue/orders", "refuse me").await;
    send_persistent(&mut p, "/queue/orders", "keep me").await;
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/orders", "s", AckMode::ClientIndividual).await;
    let got = drain(&mut c, 2, SOON).await;
    nack_receipt(&mut c, &got[0]).await;
    ack_receipt(&mut c, &got[1]).await;
    wait_for_async(SOON, async || {
        admin.depth("orders").await == 0 && admin.depth("DLQ").await == 1
    })
    .await;
    // Not back on its own queue.
    expect_nothing(&mut c, QUIET).await;
    let mut d = connect(&addr).await;
    subscribe(&mut d, "/queue/DLQ", "d", AckMode::Auto).await;
    let m = recv(&mut d, SOON).await;
    assert_eq!(body_str(&m), "refuse me");
    assert_eq!(m.header("original-destination"), Some("/queue/orders"));
}

#[tokio::test]
async fn the_dead_letter_queue_name_is_configurable() {
    let node = Node::start(NodeOpts::new("dlqname").args(["--dlq", "Graveyard"]));
    let admin = node.admin();
    let addr = node.stomp_addr();
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/in", "s", AckMode::ClientIndividual).await;
    send(&mut c, "/queue/in", "rip", &[]).await;
    let m = recv(&mut c, SOON).await;
    c.nack(&m).await.expect("NACK");
    wait_for_async(SOON, async || admin.depth("Graveyard").await == 1).await;
    assert!(admin.queue("DLQ").await.is_none());
    subscribe(&mut c, "/queue/Graveyard", "g", AckMode::Auto).await;
    assert_eq!(body_str(&recv(&mut c, SOON).await), "rip");
}
