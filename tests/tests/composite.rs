//! Composite destinations: a SEND to `/queue/a,/topic/b` delivers to each part, each part
//! persistent or not as the message says, and its RECEIPT comes once every part is stored.

use mq_tests::client::AckMode;
use mq_tests::network::*;
use mq_tests::*;

#[tokio::test]
async fn a_composite_send_reaches_every_part_and_its_receipt_means_all_are_stored() {
    let mut node = Node::start(NodeOpts::new("composite"));
    let addr = node.stomp_addr();
    let mut t = connect(&addr).await;
    subscribe(&mut t, "/topic/audit", "s", AckMode::Auto).await;
    let mut p = connect(&addr).await;
    send(
        &mut p,
        "/queue/orders, /queue/billing,/topic/audit",
        "order 1",
        &[("persistent", "true"), ("k", "v")],
    )
    .await;
    // The RECEIPT came: both queues hold it already.
    for q in ["orders", "billing"] {
        assert_eq!(node.admin().depth(q).await, 1, "{q}");
    }
    let copy = recv(&mut t, SOON).await;
    assert_eq!(
        (body_str(&copy).as_str(), copy.header("k")),
        ("order 1", Some("v"))
    );
    assert_eq!(copy.header("destination"), Some("/topic/audit"));
    // Each part is its own message, and each queue's copy is persistent.
    drop(p);
    node.restart();
    let addr = node.stomp_addr();
    let mut ids = Vec::new();
    for q in ["/queue/orders", "/queue/billing"] {
        let mut c = connect(&addr).await;
        subscribe(&mut c, q, "s", AckMode::Auto).await;
        let m = recv(&mut c, SOON).await;
        assert_eq!(
            (body_str(&m).as_str(), m.header("destination")),
            ("order 1", Some(q))
        );
        ids.push(m.header("message-id").map(str::to_string));
    }
    assert_ne!(ids[0], ids[1], "one message id per part");
}

#[tokio::test]
async fn composite_parts_in_a_transaction_arrive_at_commit() {
    let node = Node::start(NodeOpts::new("composite-tx"));
    let addr = node.stomp_addr();
    let mut p = connect(&addr).await;
    p.begin("tx").await.expect("BEGIN");
    send(
        &mut p,
        "/queue/x,/queue/y",
        "in tx",
        &[("transaction", "tx")],
    )
    .await;
    assert_eq!(
        node.admin().depth("x").await + node.admin().depth("y").await,
        0
    );
    p.commit("tx").await.expect("COMMIT");
    for q in ["x", "y"] {
        assert_eq!(node.admin().depth(q).await, 1, "{q}");
    }
}

#[tokio::test]
async fn malformed_composites_are_errors() {
    let node = Node::start(NodeOpts::new("composite-bad"));
    let addr = node.stomp_addr();
    for (dest, says) in [
        ("/queue/a,,/queue/b", "empty part"),
        (
            "/queue/a,/elsewhere/b",
            "unsupported destination '/elsewhere/b'",
        ),
        ("/queue/a,/topic/b.*", "wildcard"),
    ] {
        let mut c = connect(&addr).await;
        let e = send_refused(&mut c, dest, &[]).await;
        assert!(e.contains(says), "{dest}: {e}");
    }
    // No part of a refused SEND was delivered.
    assert_eq!(
        node.admin().queue("a").await.map(|q| q.depth).unwrap_or(0),
        0
    );
    let mut c = connect(&addr).await;
    let e = subscribe_refused(&mut c, "/queue/a,/queue/b", &[]).await;
    assert!(e.contains("composite destinations are for SEND"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_part_follows_its_own_demand_through_a_bridge() {
    let b = Node::start(NodeOpts::new("B"));
    let a = Node::start(
        NodeOpts::new("A").args(["--network", &static_uri(&[&b], "initialReconnectDelay=100")]),
    );
    wait_connected(&a, 1).await;
    let mut remote = consumer(&b, "/queue/far").await;
    wait_consumers(&a, "far", 1).await;
    let mut local = consumer(&a, "/queue/near").await;
    let mut p = connect(&a.stomp_addr()).await;
    send(
        &mut p,
        "/queue/near,/queue/far",
        numbered_body(5, 16),
        &[("persistent", "true")],
    )
    .await;
    assert_eq!(body_number(&recv(&mut local, SOON).await), 5);
    let m = recv(&mut remote, SOON).await;
    assert_eq!(
        (body_number(&m), m.header("destination")),
        (5, Some("/queue/far"))
    );
}
