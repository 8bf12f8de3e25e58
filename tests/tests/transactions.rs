//! STOMP transactions: sends and acks held until COMMIT, dropped on ABORT or when the
//! connection ends.

use mq_tests::client::AckMode;
use mq_tests::*;

#[tokio::test]
async fn commit_delivers_and_abort_discards() {
    let node = Node::start(NodeOpts::new("tx"));
    let addr = node.stomp_addr();
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/tx", "s", AckMode::Auto).await;
    let mut p = connect(&addr).await;

    p.begin("t1").await.expect("BEGIN");
    for body in ["one", "two"] {
        send(
            &mut p,
            "/queue/tx",
            body,
            &[("transaction", "t1"), ("persistent", "true")],
        )
        .await;
    }
    send(&mut p, "/topic/tx", "topic", &[("transaction", "t1")]).await;
    expect_nothing(&mut c, QUIET).await;
    subscribe(&mut c, "/topic/tx", "t", AckMode::Auto).await;
    p.commit("t1").await.expect("COMMIT");
    let got = drain(&mut c, 3, SOON).await;
    let mut got = bodies(&got);
    got.sort();
    assert_eq!(got, ["one", "topic", "two"]);

    p.begin("t2").await.expect("BEGIN");
    send(&mut p, "/queue/tx", "never", &[("transaction", "t2")]).await;
    p.abort("t2").await.expect("ABORT");
    expect_nothing(&mut c, QUIET).await;
    assert_eq!(node.admin().depth("tx").await, 0);

    // A transaction name can be used again once it ended; an unknown one is an error.
    p.begin("t1").await.expect("BEGIN again");
    p.commit("t1")
        .await
        .expect("COMMIT of an empty transaction");
    let e = p.commit("nope").await;
    assert!(e.is_err(), "COMMIT of an unknown transaction accepted");
}

#[tokio::test]
async fn acks_in_a_transaction_count_only_on_commit() {
    let node = Node::start(NodeOpts::new("txack"));
    let admin = node.admin();
    let addr = node.stomp_addr();
    let mut p = connect(&addr).await;
    send(&mut p, "/queue/txack", "a", &[("persistent", "true")]).await;
    send(&mut p, "/queue/txack", "b", &[("persistent", "true")]).await;
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/txack", "s", AckMode::ClientIndividual).await;
    let got = drain(&mut c, 2, SOON).await;

    let ack_in = |c: &mut client::StompClient, m: &frame::Frame, tx: &str| {
        let mut f = c.ack_frame(m).expect("ACK frame");
        f.push_header("transaction", tx);
        f
    };

    // Aborted: the ack never happened.
    c.begin("ta").await.expect("BEGIN");
    let f = ack_in(&mut c, &got[0], "ta");
    c.send_frame(f).await.expect("ACK");
    c.abort("ta").await.expect("ABORT");
    let q = admin.queue("txack").await.expect("queue");
    assert_eq!((q.depth, q.inflight, q.dequeued), (2, 2, 0));

    // Committed: both acks at once.
    c.begin("tb").await.expect("BEGIN");
    for m in &got {
        let f = ack_in(&mut c, m, "tb");
        c.send_frame(f).await.expect("ACK");
    }
    let q = admin.queue("txack").await.expect("queue");
    assert_eq!(q.dequeued, 0, "acks counted before COMMIT");
    c.commit("tb").await.expect("COMMIT");
    wait_for_async(SOON, async || {
        admin
            .queue("txack")
            .await
            .is_some_and(|q| q.depth == 0 && q.dequeued == 2)
    })
    .await;
    drop(c);
    let mut again = connect(&addr).await;
    subscribe(&mut again, "/queue/txack", "s", AckMode::Auto).await;
    expect_nothing(&mut again, QUIET).await;
}

#[tokio::test]
async fn an_open_transaction_is_aborted_when_its_connection_ends() {
    let node = Node::start(NodeOpts::new("txdrop"));
    let admin = node.admin();
    let addr = node.stomp_addr();
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/txdrop", "s", AckMode::Auto).await;

    // The socket just drops.
    let mut p = connect(&addr).await;
    p.begin("t").await.expect("BEGIN");
    send(
        &mut p,
        "/queue/txdrop",
        "dropped",
        &[("transaction", "t"), ("persistent", "true")],
    )
    .await;
    drop(p);
    // An orderly DISCONNECT with the transaction still open.
    let mut p = connect(&addr).await;
    p.begin("t").await.expect("BEGIN");
    send(
        &mut p,
        "/queue/txdrop",
        "disconnected",
        &[("transaction", "t")],
    )
    .await;
    p.disconnect().await.expect("DISCONNECT");

    wait_for_async(SOON, async || {
        let conns: api::ConnectionList = admin.get_ok("/api/v1/connections").await;
        conns.connections.len() == 1
    })
    .await;
    expect_nothing(&mut c, QUIET).await;
    assert_eq!(admin.depth("txdrop").await, 0);

    // Acks in a transaction of a dropped connection are not applied either: the message is
    // redelivered.
    let mut p = connect(&addr).await;
    send(&mut p, "/queue/txdrop2", "redo", &[("persistent", "true")]).await;
    let mut k = connect(&addr).await;
    subscribe(&mut k, "/queue/txdrop2", "s", AckMode::ClientIndividual).await;
    let m = recv(&mut k, SOON).await;
    k.begin("t").await.expect("BEGIN");
    let mut f = k.ack_frame(&m).expect("ACK frame");
    f.push_header("transaction", "t");
    k.send_frame(f).await.expect("ACK");
    drop(k);
    let mut k = connect(&addr).await;
    subscribe(&mut k, "/queue/txdrop2", "s", AckMode::ClientIndividual).await;
    let again = recv(&mut k, SOON).await;
    assert_eq!(body_str(&again), "redo");
    assert_eq!(again.header("redelivered"), Some("true"));
}
