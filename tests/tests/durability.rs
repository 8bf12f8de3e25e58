//! What a receipt promises: a confirmed persistent message survives SIGKILL, and SIGTERM is a
//! clean stop (exit 0) that keeps it too. Non-persistent messages live in memory only.

use std::time::Duration;

use mq_tests::client::AckMode;
use mq_tests::*;

#[tokio::test]
async fn ten_thousand_confirmed_messages_survive_sigkill_in_order() {
    const N: usize = 10_000;
    let mut node = Node::start(NodeOpts::new("crash"));
    let addr = node.stomp_addr();
    let mut p = connect(&addr).await;
    send_numbered(&mut p, "/queue/durable", 0..N, 1024, 100).await;

    node.kill();
    node.restart();
    assert_eq!(node.stomp_addr(), addr, "restarted on the same port");
    let admin = node.admin();
    let q = admin.queue("durable").await.expect("queue recovered");
    assert_eq!(q.depth, N as u64);

    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/durable", "s", AckMode::Auto).await;
    recv_numbered(&mut c, N, 1024).await;
    expect_nothing(&mut c, QUIET).await;
    wait_for_async(SOON, async || admin.depth("durable").await == 0).await;
}

#[tokio::test]
async fn after_sigkill_persistent_messages_remain_and_non_persistent_ones_are_gone() {
    let mut node = Node::start(NodeOpts::new("mixed"));
    let addr = node.stomp_addr();
    let mut p = connect(&addr).await;
    for i in 0..10 {
        send(&mut p, "/queue/mixed", format!("memory {i}"), &[]).await;
        send_persistent(&mut p, "/queue/mixed", format!("disk {i}")).await;
        send(
            &mut p,
            "/queue/memonly",
            format!("memory {i}"),
            &[("persistent", "false")],
        )
        .await;
    }
    assert_eq!(node.admin().depth("mixed").await, 20);

    node.kill();
    node.restart();
    let mut c = connect(&node.stomp_addr()).await;
    subscribe(&mut c, "/queue/mixed", "a", AckMode::Auto).await;
    subscribe(&mut c, "/queue/memonly", "b", AckMode::Auto).await;
    let got = drain(&mut c, 10, SOON).await;
    let want: Vec<String> = (0..10).map(|i| format!("disk {i}")).collect();
    assert_eq!(bodies(&got), want);
    expect_nothing(&mut c, QUIET).await;
}

#[tokio::test]
async fn sigterm_exits_zero_and_keeps_confirmed_messages() {
    let mut node = Node::start(NodeOpts::new("graceful"));
    let addr = node.stomp_addr();
    let mut p = connect(&addr).await;
    send_persistent(&mut p, "/queue/keep", "still here").await;
    // A connected client does not hold up the stop.
    let mut idle = connect(&addr).await;
    subscribe(&mut idle, "/queue/other", "s", AckMode::Auto).await;

    let status = node.terminate();
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGTERM: {status}"
    );
    match idle.recv_timeout(Duration::from_secs(5)).await {
        Err(e) => assert!(is_closed(&e), "{e}"),
        Ok(f) => panic!("client of a stopped node got {f:?}"),
    }

    node.restart();
    let mut c = connect(&node.stomp_addr()).await;
    subscribe(&mut c, "/queue/keep", "s", AckMode::Auto).await;
    let m = recv(&mut c, SOON).await;
    assert_eq!(body_str(&m), "still here");
    assert_eq!(m.header("persistent"), Some("true"));
}

/// Streams numbered persistent messages with pipelined receipts until the connection fails;
/// `confirmed` counts the prefix 0..n whose receipts arrived.
async fn stream_until_cut(
    addr: String,
    dest: &'static str,
    confirmed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::Ordering;
    let mut p = connect(&addr).await;
    let mut next = 0usize;
    loop {
        let mut ids = Vec::new();
        for _ in 0..50 {
            let id = p.next_receipt_id();
            let f = frame::Frame::new(frame::Command::Send)
                .with_header("destination", dest)
                .with_header("persistent", "true")
                .with_header("receipt", id.as_str())
                .with_body(numbered_body(next, 256));
            p.queue_frame(&f);
            ids.push(id);
            next += 1;
        }
        if p.flush().await.is_err() {
            return;
        }
        for id in ids {
            match tokio::time::timeout(SOON, p.wait_receipt(&id)).await {
                Ok(Ok(())) => {
                    confirmed.fetch_add(1, Ordering::SeqCst);
                }
                Ok(Err(_)) => return,
                Err(_) => panic!("receipt {id} neither came nor failed within {SOON:?}"),
            }
        }
    }
}

/// Consumes everything on `dest`: numbers must rise strictly (order kept, no duplicates) and
/// cover 0..confirmed.
async fn check_prefix_kept(node: &Node, dest: &str, confirmed: usize) {
    let name = dest.trim_start_matches("/queue/");
    let depth = node.admin().depth(name).await as usize;
    assert!(
        depth >= confirmed,
        "{confirmed} messages confirmed, {depth} recovered"
    );
    let mut c = connect(&node.stomp_addr()).await;
    subscribe(&mut c, dest, "s", AckMode::Auto).await;
    let got = drain(&mut c, depth, SOON).await;
    let numbers: Vec<usize> = got.iter().map(body_number).collect();
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "order or duplicates wrong: {numbers:?}"
    );
    for (i, n) in numbers.iter().take(confirmed).enumerate() {
        assert_eq!(*n, i, "confirmed message {i} missing");
    }
    expect_nothing(&mut c, QUIET).await;
}

/// A node called `name` with [`stream_until_cut`] sending to `dest`, once 1000 messages are
/// confirmed: the node, the count of confirmed messages, and the sender.
async fn node_mid_stream(
    name: &str,
    dest: &'static str,
) -> (
    Node,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    tokio::task::JoinHandle<()>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let node = Node::start(NodeOpts::new(name));
    let confirmed = std::sync::Arc::new(AtomicUsize::new(0));
    let sender = tokio::spawn(stream_until_cut(node.stomp_addr(), dest, confirmed.clone()));
    wait_for_async(SOON, async || confirmed.load(Ordering::SeqCst) >= 1000).await;
    (node, confirmed, sender)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_the_middle_of_a_stream_loses_no_confirmed_message() {
    use std::sync::atomic::Ordering;
    let (mut node, confirmed, sender) = node_mid_stream("cut", "/queue/cut").await;
    node.kill();
    sender.await.expect("sender task");
    let confirmed = confirmed.load(Ordering::SeqCst);
    node.restart();
    check_prefix_kept(&node, "/queue/cut", confirmed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_in_the_middle_of_a_stream_finishes_what_it_confirmed() {
    use std::sync::atomic::Ordering;
    let (mut node, confirmed, sender) = node_mid_stream("drain", "/queue/drain").await;
    let status = node.terminate();
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGTERM: {status}"
    );
    sender.await.expect("sender task");
    let confirmed = confirmed.load(Ordering::SeqCst);
    node.restart();
    check_prefix_kept(&node, "/queue/drain", confirmed).await;
}

#[tokio::test]
async fn acked_and_dead_lettered_messages_stay_so_after_sigkill() {
    let mut node = Node::start(NodeOpts::new("settled"));
    let addr = node.stomp_addr();
    let mut p = connect(&addr).await;
    for i in 0..10 {
        send_persistent(&mut p, "/queue/settle", format!("m{i}")).await;
    }
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/settle", "s", AckMode::ClientIndividual).await;
    let got = drain(&mut c, 10, SOON).await;
    // Acked with a receipt: gone for good. NACKed with a receipt: in the DLQ for good.
    for m in &got[..4] {
        ack_receipt(&mut c, m).await;
    }
    nack_receipt(&mut c, &got[4]).await;

    node.kill();
    node.restart();
    let mut c = connect(&node.stomp_addr()).await;
    subscribe(&mut c, "/queue/settle", "s", AckMode::Auto).await;
    subscribe(&mut c, "/queue/DLQ", "d", AckMode::Auto).await;
    let got = drain(&mut c, 6, SOON).await;
    let mut queue = Vec::new();
    let mut dlq = Vec::new();
    for m in &got {
        match m.header("subscription") {
            Some("s") => queue.push(body_str(m)),
            _ => dlq.push(body_str(m)),
        }
    }
    assert_eq!(queue, ["m5", "m6", "m7", "m8", "m9"]);
    assert_eq!(dlq, ["m4"]);
    expect_nothing(&mut c, QUIET).await;
}

#[tokio::test]
async fn receipts_for_disconnect_and_commit_cover_what_came_before() {
    let mut node = Node::start(NodeOpts::new("covered"));
    let addr = node.stomp_addr();
    // Sends without receipts, then DISCONNECT with one: its receipt means all are stored.
    let mut p = connect(&addr).await;
    for i in 0..500 {
        let f = frame::Frame::new(frame::Command::Send)
            .with_header("destination", "/queue/covered")
            .with_header("persistent", "true")
            .with_body(numbered_body(i, 128));
        p.queue_frame(&f);
    }
    p.disconnect().await.expect("DISCONNECT with a receipt");
    // A committed transaction.
    let mut p = connect(&addr).await;
    p.begin("t").await.expect("BEGIN");
    for i in 500..550 {
        p.send(
            "/queue/covered",
            numbered_body(i, 128),
            &[("persistent", "true"), ("transaction", "t")],
            false,
        )
        .await
        .expect("SEND in a transaction");
    }
    p.commit("t").await.expect("COMMIT with a receipt");

    node.kill();
    node.restart();
    let mut c = connect(&node.stomp_addr()).await;
    subscribe(&mut c, "/queue/covered", "s", AckMode::Auto).await;
    let got = drain(&mut c, 550, SOON).await;
    let numbers: Vec<usize> = got.iter().map(body_number).collect();
    assert_eq!(numbers, (0..550).collect::<Vec<_>>());
    expect_nothing(&mut c, QUIET).await;
}

/// A message delivered and not acknowledged when the node stops comes back marked
/// `redelivered:true`: after a clean stop (the store records it) and after SIGKILL (every
/// recovered message may have been delivered); one never delivered is not marked after a clean
/// stop.
#[tokio::test]
async fn delivered_unacked_messages_come_back_marked_redelivered() {
    let mut node = Node::start(NodeOpts::new("marks"));
    let addr = node.stomp_addr();
    let mut p = connect(&addr).await;
    send_persistent(&mut p, "/queue/marks", "delivered").await;
    send_persistent(&mut p, "/queue/other", "never delivered").await;
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/marks", "s", AckMode::ClientIndividual).await;
    let m = recv(&mut c, SOON).await;
    assert_eq!(m.header("redelivered"), None);

    let status = node.terminate();
    assert!(status.success(), "SIGTERM is a clean stop: {status:?}");
    node.restart();
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/marks", "s", AckMode::ClientIndividual).await;
    subscribe(&mut c, "/queue/other", "o", AckMode::ClientIndividual).await;
    let frames = drain(&mut c, 2, SOON).await;
    for f in &frames {
        let body = body_str(f);
        let flagged = f.header("redelivered") == Some("true");
        assert_eq!(
            flagged,
            body == "delivered",
            "{body}: redelivered={flagged}"
        );
    }

    node.kill();
    node.restart();
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/other", "o", AckMode::ClientIndividual).await;
    let f = recv(&mut c, SOON).await;
    assert_eq!(
        f.header("redelivered"),
        Some("true"),
        "after a crash a recovered message may have been delivered"
    );
}
