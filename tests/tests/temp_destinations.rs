//! Temporary destinations: `/temp-queue/NAME` and `/temp-topic/NAME` belong to the connection
//! that first uses them, which alone may consume from them, and go when it closes. `reply-to`
//! naming one reaches a responder as `/remote-temp-queue/ID`, which it (on this node or, through
//! a bridge, on another) can SEND to.

use mq_tests::client::{AckMode, StompClient};
use mq_tests::network::*;
use mq_tests::*;

/// A requester subscribed to its temporary queue `reply`, which sends `body` to `requests`
/// with `reply-to:/temp-queue/reply`.
async fn requester(addr: &str, requests: &str, body: &str) -> StompClient {
    let mut r = connect(addr).await;
    subscribe(&mut r, "/temp-queue/reply", "replies", AckMode::Auto).await;
    send(
        &mut r,
        requests,
        body.to_string(),
        &[("reply-to", "/temp-queue/reply")],
    )
    .await;
    r
}

/// Takes one request from `c` and answers it on its `reply-to`; returns that header.
async fn respond(c: &mut StompClient, answer: &str) -> String {
    let req = recv(c, SOON).await;
    let reply_to = req
        .header("reply-to")
        .expect("a reply-to header")
        .to_string();
    send(
        c,
        &reply_to,
        answer.to_string(),
        &[("correlation-id", "c-1")],
    )
    .await;
    reply_to
}

#[tokio::test]
async fn a_responder_on_another_connection_answers_on_the_requesters_temporary_queue() {
    let node = Node::start(NodeOpts::new("temp-rr"));
    let addr = node.stomp_addr();
    let mut service = connect(&addr).await;
    subscribe(&mut service, "/queue/requests", "s", AckMode::Auto).await;
    let mut req = requester(&addr, "/queue/requests", "what time is it?").await;
    let reply_to = respond(&mut service, "noon").await;
    assert!(
        reply_to.starts_with("/remote-temp-queue/ID:temp-rr-"),
        "{reply_to}"
    );
    let reply = recv(&mut req, SOON).await;
    assert_eq!(body_str(&reply), "noon");
    // The owner sees its temporary queue by the name it gave it.
    assert_eq!(reply.header("destination"), Some("/temp-queue/reply"));
    assert_eq!(reply.header("correlation-id"), Some("c-1"));
    // A temporary queue is not one of the node's queues.
    let l: api::QueueList = node.admin().get_ok("/api/v1/queues").await;
    assert!(
        l.queues.iter().all(|q| !q.name.contains("ID:")),
        "{:?}",
        l.queues
    );
}

#[tokio::test]
async fn only_the_owner_consumes_and_a_name_is_scoped_to_its_connection() {
    let node = Node::start(NodeOpts::new("temp-owner"));
    let addr = node.stomp_addr();
    let mut service = connect(&addr).await;
    subscribe(&mut service, "/queue/requests", "s", AckMode::Auto).await;
    let mut req = requester(&addr, "/queue/requests", "ping").await;
    let reply_to = recv(&mut service, SOON)
        .await
        .header("reply-to")
        .expect("reply-to")
        .to_string();
    // Another connection may not subscribe to it.
    let mut thief = connect(&addr).await;
    let e = subscribe_refused(&mut thief, &reply_to, &[]).await;
    assert!(e.contains("only the connection that created"), "{e}");
    // The same NAME on another connection is that connection's own temporary queue.
    let mut other = connect(&addr).await;
    subscribe(&mut other, "/temp-queue/reply", "mine", AckMode::Auto).await;
    send(&mut other, "/temp-queue/reply", "to myself", &[]).await;
    assert_eq!(body_str(&recv(&mut other, SOON).await), "to myself");
    expect_nothing(&mut req, QUIET).await;
    // A wildcard never matches a temporary destination.
    let mut wild = connect(&addr).await;
    subscribe(&mut wild, "/queue/>", "w", AckMode::Auto).await;
    send(&mut service, &reply_to, "pong", &[]).await;
    assert_eq!(body_str(&recv(&mut req, SOON).await), "pong");
    expect_nothing(&mut wild, QUIET).await;
}

#[tokio::test]
async fn a_temporary_queue_goes_with_its_connection() {
    let node = Node::start(NodeOpts::new("temp-gone"));
    let addr = node.stomp_addr();
    let mut service = connect(&addr).await;
    subscribe(&mut service, "/queue/requests", "s", AckMode::Auto).await;
    let req = requester(&addr, "/queue/requests", "ping").await;
    let reply_to = recv(&mut service, SOON)
        .await
        .header("reply-to")
        .expect("reply-to")
        .to_string();
    let _ = req.disconnect().await;
    let mut late = connect(&addr).await;
    wait_for_async(SOON, async || {
        let mut probe = connect(&addr).await;
        probe.send(&reply_to, "late", &[], true).await.is_err()
    })
    .await;
    let e = send_refused(&mut late, &reply_to, &[]).await;
    assert!(e.contains("no longer exists"), "{e}");
}

#[tokio::test]
async fn a_temporary_topic_reaches_its_owner_only_and_a_restart_ends_it() {
    let mut node = Node::start(NodeOpts::new("temp-topic"));
    let addr = node.stomp_addr();
    let mut owner = connect(&addr).await;
    subscribe(&mut owner, "/temp-topic/events", "s", AckMode::Auto).await;
    send(
        &mut owner,
        "/queue/announce",
        "hello",
        &[("reply-to", "/temp-topic/events")],
    )
    .await;
    let mut other = connect(&addr).await;
    subscribe(&mut other, "/queue/announce", "s", AckMode::Auto).await;
    let reply_to = recv(&mut other, SOON)
        .await
        .header("reply-to")
        .expect("reply-to")
        .to_string();
    assert!(reply_to.starts_with("/remote-temp-topic/"), "{reply_to}");
    send(&mut other, &reply_to, "event 1", &[]).await;
    let m = recv(&mut owner, SOON).await;
    assert_eq!(
        (body_str(&m).as_str(), m.header("destination")),
        ("event 1", Some("/temp-topic/events"))
    );

    // Across a restart no connection survives, and neither does its temporary topic: the old
    // id reaches no one, and the same name is a new destination.
    drop(owner);
    drop(other);
    node.restart();
    let addr = node.stomp_addr();
    let mut owner = connect(&addr).await;
    subscribe(&mut owner, "/temp-topic/events", "s", AckMode::Auto).await;
    let mut p = connect(&addr).await;
    send(&mut p, &reply_to, "to the old one", &[]).await;
    expect_nothing(&mut owner, QUIET).await;
    send(
        &mut owner,
        "/queue/announce",
        "again",
        &[("reply-to", "/temp-topic/events")],
    )
    .await;
    let mut other = connect(&addr).await;
    subscribe(&mut other, "/queue/announce", "s", AckMode::Auto).await;
    let new_id = recv(&mut other, SOON)
        .await
        .header("reply-to")
        .map(str::to_string);
    assert_ne!(new_id.as_deref(), Some(reply_to.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responder_on_another_node_answers_through_the_bridge() {
    let b = Node::start(NodeOpts::new("B"));
    // Duplex: A forwards requests to B's consumer and B's replies come back over the same link.
    let a = Node::start(NodeOpts::new("A").args([
        "--network",
        &static_uri(&[&b], "duplex=true&initialReconnectDelay=100"),
    ]));
    wait_connected(&a, 1).await;
    let mut service = consumer(&b, "/queue/requests").await;
    wait_consumers(&a, "requests", 1).await;
    let mut req = requester(&a.stomp_addr(), "/queue/requests", "ping over there").await;
    // The reply may be sent before B has heard of the requester's demand: it waits on B for it.
    let reply_to = respond(&mut service, "pong from B").await;
    assert!(
        reply_to.starts_with("/remote-temp-queue/ID:A-"),
        "{reply_to}"
    );
    let reply = recv(&mut req, LINK).await;
    assert_eq!(body_str(&reply), "pong from B");
    assert_eq!(reply.header("destination"), Some("/temp-queue/reply"));
    // And nobody on B may consume from it.
    let mut thief = connect(&b.stomp_addr()).await;
    let e = subscribe_refused(&mut thief, &reply_to, &[]).await;
    assert!(e.contains("only the connection that created"), "{e}");
}
