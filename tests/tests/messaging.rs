//! Point to point and publish/subscribe through a real node: ack modes, competing consumers,
//! topics, headers and bodies kept intact, prefetch and expiry.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use mq_tests::client::AckMode;
use mq_tests::*;

#[tokio::test]
async fn every_ack_mode_round_trips_on_queues_and_topics() {
    let node = Node::start(NodeOpts::new("ackmodes"));
    let admin = node.admin();
    let addr = node.stomp_addr();
    let mut producer = connect(&addr).await;
    for kind in ["queue", "topic"] {
        for mode in [AckMode::Auto, AckMode::Client, AckMode::ClientIndividual] {
            let name = format!("rt-{kind}-{}", mode.as_str());
            let dest = format!("/{kind}/{name}");
            let mut c = connect(&addr).await;
            subscribe(&mut c, &dest, "sub-1", mode).await;
            let sent: Vec<String> = (0..3).map(|i| format!("{name} #{i}")).collect();
            for body in &sent {
                send(&mut producer, &dest, body.clone(), &[]).await;
            }
            let got = drain(&mut c, 3, SOON).await;
            assert_eq!(bodies(&got), sent, "{dest} {}", mode.as_str());
            for m in &got {
                assert_eq!(m.header("subscription"), Some("sub-1"));
                assert_eq!(m.header("destination"), Some(dest.as_str()));
                assert!(m.header("message-id").is_some_and(|id| !id.is_empty()));
                // STOMP 1.2: an `ack` header exactly when the subscription needs acks.
                assert_eq!(
                    m.header("ack").is_some(),
                    mode != AckMode::Auto,
                    "{dest} {}: {m:?}",
                    mode.as_str()
                );
            }
            match mode {
                AckMode::Auto => {}
                AckMode::Client => ack_receipt(&mut c, &got[2]).await,
                AckMode::ClientIndividual => {
                    for m in &got {
                        ack_receipt(&mut c, m).await;
                    }
                }
            }
            if kind == "queue" {
                wait_for_async(SOON, async || {
                    admin
                        .queue(&name)
                        .await
                        .is_some_and(|q| q.depth == 0 && q.dequeued == 3)
                })
                .await;
            }
            c.disconnect().await.expect("DISCONNECT");
            if kind == "queue" {
                // Nothing comes back: every message was acknowledged.
                let mut again = connect(&addr).await;
                subscribe(&mut again, &dest, "sub-2", AckMode::Auto).await;
                expect_nothing(&mut again, QUIET).await;
            }
        }
    }
}

#[tokio::test]
async fn client_ack_is_cumulative_and_client_individual_is_not() {
    let node = Node::start(NodeOpts::new("cumulative"));
    let admin = node.admin();
    let addr = node.stomp_addr();
    let mut p = connect(&addr).await;

    // client: acking the 3rd of 5 acknowledges the first three.
    for i in 0..5 {
        send(&mut p, "/queue/cumul", format!("m{i}"), &[]).await;
    }
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/cumul", "s", AckMode::Client).await;
    let got = drain(&mut c, 5, SOON).await;
    ack_receipt(&mut c, &got[2]).await;
    wait_for_async(SOON, async || {
        admin
            .queue("cumul")
            .await
            .is_some_and(|q| q.depth == 2 && q.inflight == 2)
    })
    .await;
    drop(c);
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/cumul", "s", AckMode::Client).await;
    let again = drain(&mut c, 2, SOON).await;
    assert_eq!(bodies(&again), ["m3", "m4"]);
    assert!(
        again
            .iter()
            .all(|m| m.header("redelivered") == Some("true"))
    );
    ack_receipt(&mut c, &again[1]).await;
    wait_for_async(SOON, async || admin.depth("cumul").await == 0).await;

    // client-individual: acking the 2nd of 3 acknowledges only that one.
    for i in 0..3 {
        send(&mut p, "/queue/indiv", format!("m{i}"), &[]).await;
    }
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/indiv", "s", AckMode::ClientIndividual).await;
    let got = drain(&mut c, 3, SOON).await;
    ack_receipt(&mut c, &got[1]).await;
    wait_for_async(SOON, async || admin.depth("indiv").await == 2).await;
    drop(c);
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/indiv", "s", AckMode::ClientIndividual).await;
    let again = drain(&mut c, 2, SOON).await;
    assert_eq!(bodies(&again), ["m0", "m2"]);
    expect_nothing(&mut c, QUIET).await;
}

#[tokio::test]
async fn competing_consumers_share_a_queue_without_duplicates() {
    let node = Node::start(NodeOpts::new("competing"));
    let addr = node.stomp_addr();
    let mut a = connect(&addr).await;
    let mut b = connect(&addr).await;
    subscribe(&mut a, "/queue/work", "a", AckMode::Auto).await;
    subscribe(&mut b, "/queue/work", "b", AckMode::Auto).await;
    let mut p = connect(&addr).await;
    let n = 20;
    for i in 0..n {
        send(&mut p, "/queue/work", format!("job-{i:02}"), &[]).await;
    }
    let mut got_a = Vec::new();
    let mut got_b = Vec::new();
    let deadline = std::time::Instant::now() + SOON;
    while got_a.len() + got_b.len() < n && std::time::Instant::now() < deadline {
        if let Some(f) = a
            .recv_timeout(Duration::from_millis(20))
            .await
            .expect("recv a")
        {
            got_a.push(body_str(&f));
        }
        if let Some(f) = b
            .recv_timeout(Duration::from_millis(20))
            .await
            .expect("recv b")
        {
            got_b.push(body_str(&f));
        }
    }
    assert!(
        !got_a.is_empty() && !got_b.is_empty(),
        "both consumers must get work: a={got_a:?} b={got_b:?}"
    );
    let set_a: BTreeSet<_> = got_a.iter().cloned().collect();
    let set_b: BTreeSet<_> = got_b.iter().cloned().collect();
    assert!(set_a.is_disjoint(&set_b), "a={got_a:?} b={got_b:?}");
    let all: BTreeSet<String> = (0..n).map(|i| format!("job-{i:02}")).collect();
    let union: BTreeSet<String> = set_a.union(&set_b).cloned().collect();
    assert_eq!(union, all);
    assert_eq!(got_a.len() + got_b.len(), n, "no duplicates");
    expect_nothing(&mut a, QUIET).await;
    expect_nothing(&mut b, Duration::from_millis(50)).await;
}

#[tokio::test]
async fn every_topic_subscriber_gets_every_message() {
    let node = Node::start(NodeOpts::new("fanout"));
    let addr = node.stomp_addr();
    let mut subs = Vec::new();
    for i in 0..3 {
        let mut c = connect(&addr).await;
        subscribe(&mut c, "/topic/news", &format!("s{i}"), AckMode::Auto).await;
        subs.push(c);
    }
    let mut p = connect(&addr).await;
    let sent: Vec<String> = (0..10).map(|i| format!("headline {i}")).collect();
    for b in &sent {
        send(&mut p, "/topic/news", b.clone(), &[]).await;
    }
    for c in &mut subs {
        let got = drain(c, sent.len(), SOON).await;
        assert_eq!(bodies(&got), sent);
    }
    let topics: api::TopicList = node.admin().get_ok("/api/v1/topics").await;
    let news = topics.topics.iter().find(|t| t.name == "news");
    assert!(
        news.is_some_and(|t| t.subscribers == 3 && t.enqueued == 10),
        "{topics:?}"
    );
}

#[tokio::test]
async fn topic_message_without_subscriber_is_dropped_while_a_queue_keeps_it() {
    let node = Node::start(NodeOpts::new("nosub"));
    let addr = node.stomp_addr();
    let mut p = connect(&addr).await;
    send(&mut p, "/topic/lonely", "into the void", &[]).await;
    send(&mut p, "/queue/lonely", "kept", &[]).await;
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/topic/lonely", "t", AckMode::Auto).await;
    subscribe(&mut c, "/queue/lonely", "q", AckMode::Auto).await;
    let m = recv(&mut c, SOON).await;
    assert_eq!(body_str(&m), "kept");
    assert_eq!(m.header("subscription"), Some("q"));
    expect_nothing(&mut c, QUIET).await;
}

#[tokio::test]
async fn queue_and_topic_of_the_same_name_are_distinct() {
    let node = Node::start(NodeOpts::new("distinct"));
    let addr = node.stomp_addr();
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/x", "q", AckMode::Auto).await;
    subscribe(&mut c, "/topic/x", "t", AckMode::Auto).await;
    let mut p = connect(&addr).await;
    send(&mut p, "/queue/x", "to the queue", &[]).await;
    let m = recv(&mut c, SOON).await;
    assert_eq!(
        (m.header("subscription"), body_str(&m).as_str()),
        (Some("q"), "to the queue")
    );
    expect_nothing(&mut c, QUIET).await;
    send(&mut p, "/topic/x", "to the topic", &[]).await;
    let m = recv(&mut c, SOON).await;
    assert_eq!(
        (m.header("subscription"), body_str(&m).as_str()),
        (Some("t"), "to the topic")
    );
    assert_eq!(m.header("destination"), Some("/topic/x"));
    expect_nothing(&mut c, QUIET).await;
}

#[tokio::test]
async fn user_headers_are_preserved() {
    let node = Node::start(NodeOpts::new("headers"));
    let addr = node.stomp_addr();
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/h", "s", AckMode::Auto).await;
    subscribe(&mut c, "/topic/h", "t", AckMode::Auto).await;
    let headers = [
        ("color", "red"),
        ("correlation-id", "c-42"),
        ("reply-to", "/queue/replies"),
        ("content-type", "application/json;charset=utf-8"),
        ("x-empty", ""),
        ("x-unicode", "grüße ☃"),
        ("persistent", "true"),
    ];
    let mut p = connect(&addr).await;
    for dest in ["/queue/h", "/topic/h"] {
        send(&mut p, dest, "{}", &headers).await;
        let m = recv(&mut c, SOON).await;
        for (k, v) in headers {
            assert_eq!(m.header(k), Some(v), "header {k} on {dest}: {m:?}");
        }
        assert_eq!(body_str(&m), "{}");
    }
}

#[tokio::test]
async fn binary_bodies_with_nul_bytes_arrive_intact() {
    let node = Node::start(NodeOpts::new("binary"));
    let addr = node.stomp_addr();
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/bin", "s", AckMode::Auto).await;
    let mut p = connect(&addr).await;
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let cases: Vec<Bytes> = vec![
        Bytes::from_static(b"\0"),
        Bytes::from_static(b"before\0after\0\0end"),
        Bytes::from(all_bytes),
        Bytes::from(big),
        Bytes::new(),
    ];
    for body in &cases {
        send(
            &mut p,
            "/queue/bin",
            body.clone(),
            &[("persistent", "true")],
        )
        .await;
        let m = recv(&mut c, SOON).await;
        assert_eq!(m.body.len(), body.len());
        assert!(m.body == body, "body of {} bytes changed", body.len());
        if !body.is_empty() {
            let len = body.len().to_string();
            assert_eq!(m.header("content-length"), Some(len.as_str()));
        }
    }
}

#[tokio::test]
async fn prefetch_one_alternates_consumers_and_bounds_unacked_messages() {
    let node = Node::start(NodeOpts::new("prefetch"));
    let addr = node.stomp_addr();
    let prefetch = [("activemq.prefetchSize", "1")];
    let mut a = connect(&addr).await;
    let mut b = connect(&addr).await;
    subscribe_with(
        &mut a,
        "/queue/pf",
        "a",
        AckMode::ClientIndividual,
        &prefetch,
    )
    .await;
    subscribe_with(
        &mut b,
        "/queue/pf",
        "b",
        AckMode::ClientIndividual,
        &prefetch,
    )
    .await;
    let mut p = connect(&addr).await;
    for i in 0..6 {
        send(&mut p, "/queue/pf", format!("m{i}"), &[]).await;
    }
    let a0 = recv(&mut a, SOON).await;
    let b0 = recv(&mut b, SOON).await;
    assert_eq!(
        (body_str(&a0).as_str(), body_str(&b0).as_str()),
        ("m0", "m1")
    );
    // One unacked message each: nothing more until an ack.
    expect_nothing(&mut a, QUIET).await;
    expect_nothing(&mut b, Duration::from_millis(50)).await;
    let q = node.admin().queue("pf").await.expect("queue pf");
    assert_eq!((q.depth, q.inflight), (6, 2));
    ack(&mut a, &a0).await;
    let a1 = recv(&mut a, SOON).await;
    assert_eq!(body_str(&a1), "m2");
    ack(&mut b, &b0).await;
    let b1 = recv(&mut b, SOON).await;
    assert_eq!(body_str(&b1), "m3");
    expect_nothing(&mut a, QUIET).await;
    ack(&mut b, &b1).await;
    let b2 = recv(&mut b, SOON).await;
    assert_eq!(body_str(&b2), "m4");
    expect_nothing(&mut b, QUIET).await;

    // A bad prefetch value is refused.
    let mut bad = connect(&addr).await;
    let r = bad
        .subscribe(
            "/queue/pf",
            "x",
            AckMode::Auto,
            &[("activemq.prefetchSize", "many")],
        )
        .await;
    assert!(r.is_err(), "prefetch 'many' accepted");
}

#[tokio::test]
async fn expired_messages_are_dropped_and_counted() {
    let node = Node::start(NodeOpts::new("expiry"));
    let admin = node.admin();
    let addr = node.stomp_addr();
    let mut p = connect(&addr).await;
    let past = (now_ms() - 1_000).to_string();
    let future = (now_ms() + 600_000).to_string();

    // Waiting in a queue with no consumer.
    send(
        &mut p,
        "/queue/exp",
        "stale",
        &[("expires", &past), ("persistent", "true")],
    )
    .await;
    send(&mut p, "/queue/exp", "fresh", &[("expires", &future)]).await;
    send(&mut p, "/queue/exp", "forever", &[("expires", "0")]).await;
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/exp", "s", AckMode::Auto).await;
    let got = drain(&mut c, 2, SOON).await;
    assert_eq!(bodies(&got), ["fresh", "forever"]);
    assert_eq!(got[0].header("expires"), Some(future.as_str()));
    expect_nothing(&mut c, QUIET).await;
    wait_for_async(SOON, async || {
        admin
            .queue("exp")
            .await
            .is_some_and(|q| q.expired == 1 && q.depth == 0)
    })
    .await;

    // Sent while a consumer waits.
    send(&mut p, "/queue/exp", "stale again", &[("expires", &past)]).await;
    expect_nothing(&mut c, QUIET).await;
    wait_for_async(SOON, async || {
        admin.queue("exp").await.is_some_and(|q| q.expired == 2)
    })
    .await;
    let metrics = admin.get("/metrics").await;
    assert!(
        metrics.body.contains("mq_expired_total{queue=\"exp\"} 2"),
        "{}",
        metrics.body
    );
}

#[tokio::test]
async fn one_producer_keeps_its_order_across_persistent_and_non_persistent_sends() {
    let node = Node::start(NodeOpts::new("order"));
    let addr = node.stomp_addr();
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/order", "s", AckMode::Auto).await;
    let mut p = connect(&addr).await;
    // Written back to back without waiting: memory-only messages must not overtake stored ones.
    let n = 300;
    for i in 0..n {
        let f = frame::Frame::new(frame::Command::Send)
            .with_header("destination", "/queue/order")
            .with_header("persistent", if i % 3 == 0 { "true" } else { "false" })
            .with_body(numbered_body(i, 64));
        p.queue_frame(&f);
    }
    p.flush().await.expect("flush");
    let got = drain(&mut c, n, SOON).await;
    let numbers: Vec<usize> = got.iter().map(body_number).collect();
    assert_eq!(numbers, (0..n).collect::<Vec<_>>());
}

#[tokio::test]
async fn default_prefetch_bounds_unacked_messages_at_1000() {
    let node = Node::start(NodeOpts::new("prefetch1000"));
    let addr = node.stomp_addr();
    let mut p = connect(&addr).await;
    send_pipelined(
        &mut p,
        "/queue/backlog",
        (0..1200).map(|i| numbered_body(i, 16)),
        &[],
        200,
    )
    .await;
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/backlog", "s", AckMode::ClientIndividual).await;
    let got = drain(&mut c, 1000, SOON).await;
    expect_nothing(&mut c, QUIET).await;
    let q = node.admin().queue("backlog").await.expect("queue backlog");
    assert_eq!((q.depth, q.inflight), (1200, 1000));
    ack(&mut c, &got[0]).await;
    let next = recv(&mut c, SOON).await;
    assert_eq!(body_number(&next), 1000);
}

#[tokio::test]
async fn a_topic_subscriber_gets_its_own_connections_messages_too() {
    // Every current subscriber gets a copy, the publisher's own subscriptions included
    // (ActiveMQ's noLocal is false unless asked for).
    let node = Node::start(NodeOpts::new("selfcopy"));
    let addr = node.stomp_addr();
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/topic/chat", "t", AckMode::Auto).await;
    let mut other = connect(&addr).await;
    subscribe(&mut other, "/topic/chat", "t", AckMode::Auto).await;
    send(&mut c, "/topic/chat", "hello, room", &[]).await;
    assert_eq!(body_str(&recv(&mut other, SOON).await), "hello, room");
    let own = recv(&mut c, std::time::Duration::from_secs(2)).await;
    assert_eq!(body_str(&own), "hello, room");
}

#[tokio::test]
async fn an_expired_message_is_not_delivered_to_topic_subscribers() {
    let node = Node::start(NodeOpts::new("topicexp"));
    let addr = node.stomp_addr();
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/topic/exp", "t", AckMode::Auto).await;
    let mut p = connect(&addr).await;
    let past = (now_ms() - 1_000).to_string();
    send(&mut p, "/topic/exp", "stale", &[("expires", &past)]).await;
    send(&mut p, "/topic/exp", "fresh", &[]).await;
    let m = recv(&mut c, SOON).await;
    assert_eq!(
        body_str(&m),
        "fresh",
        "an expired topic message was delivered"
    );
}
