//! The HTTP admin API: every endpoint's happy path and its errors, and bearer-token security.

use mq_shared::api::{
    ApiError, BrokerInfo, BrowseResponse, ConnectionKind, ConnectionList, PurgeResponse, QueueList,
    QueueStats, Role, SendResponse, StatusResponse, TopicList,
};
use mq_tests::client::AckMode;
use mq_tests::*;

#[track_caller]
fn assert_error(r: &HttpReply, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    let e: ApiError = r.json();
    assert_eq!(e.error.code, code, "{}", r.body);
    assert!(!e.error.message.is_empty(), "{}", r.body);
}

#[tokio::test]
async fn health_readiness_and_broker_info() {
    let mut node = Node::start(NodeOpts::new("info"));
    let admin = node.admin();
    let r: StatusResponse = admin.get_ok("/healthz").await;
    assert_eq!(r.status, "ok");
    let r = admin.get("/readyz").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let b: BrokerInfo = admin.get_ok("/api/v1/broker").await;
    assert_eq!(b.name, "info");
    assert_eq!(b.role, Role::Master);
    assert_eq!(b.transports, vec![node.stomp_url()]);
    assert_eq!(b.admin, node.admin_url());
    assert_eq!(std::path::Path::new(&b.data_dir), node.data_dir());
    assert!(b.persistent);
    assert_eq!(b.pid, node.pid());
    assert!(!b.version.is_empty());

    // The ready line agrees.
    assert_eq!(node.ready().transports, b.transports);
    assert_eq!(node.ready().admin, b.admin);
    assert!(node.is_running());
}

#[tokio::test]
async fn queues_send_browse_purge_and_delete() {
    let node = Node::start(NodeOpts::new("queues"));
    let admin = node.admin();

    let list: QueueList = admin.get_ok("/api/v1/queues").await;
    assert!(list.queues.is_empty(), "{list:?}");
    assert_error(&admin.get("/api/v1/queues/nope").await, 404, "not_found");

    // Send.
    for i in 0..3 {
        let r = admin
            .post(
                "/api/v1/queues/orders/messages",
                Some(&format!(
                    r#"{{"body":"order {i}","headers":{{"k":"v{i}"}}}}"#
                )),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let s: SendResponse = r.json();
        assert_eq!(s.queue, "orders");
        assert!(s.persistent);
        assert!(!s.message_id.is_empty());
    }
    assert_error(
        &admin
            .post("/api/v1/queues/orders/messages", Some("{not json"))
            .await,
        400,
        "bad_json",
    );
    assert_error(
        &admin
            .post("/api/v1/queues/orders/messages", Some(r#"{"body": 5}"#))
            .await,
        400,
        "bad_json",
    );
    let q: QueueStats = admin.get_ok("/api/v1/queues/orders").await;
    assert_eq!((q.name.as_str(), q.depth, q.enqueued), ("orders", 3, 3));
    let list: QueueList = admin.get_ok("/api/v1/queues").await;
    assert_eq!(list.queues.len(), 1);

    // Browse does not consume.
    let b: BrowseResponse = admin.get_ok("/api/v1/queues/orders/messages?limit=2").await;
    assert_eq!(b.queue, "orders");
    let bodies: Vec<&str> = b.messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["order 0", "order 1"]);
    assert_eq!(
        b.messages[0].headers.get("k").map(String::as_str),
        Some("v0")
    );
    assert!(b.messages.iter().all(|m| m.persistent && !m.inflight));
    assert_error(
        &admin.get("/api/v1/queues/orders/messages?limit=many").await,
        400,
        "bad_request",
    );
    assert_error(
        &admin.get("/api/v1/queues/nope/messages").await,
        404,
        "not_found",
    );
    let q: QueueStats = admin.get_ok("/api/v1/queues/orders").await;
    assert_eq!(q.depth, 3);
    let mut c = connect(&node.stomp_addr()).await;
    subscribe(&mut c, "/queue/orders", "s", AckMode::ClientIndividual).await;
    let got = drain(&mut c, 3, SOON).await;
    assert_eq!(got[2].header("k"), Some("v2"));
    assert_eq!(body_str(&got[0]), "order 0");

    // Delete refuses a queue with consumers; purge leaves in-flight messages with them.
    assert_error(
        &admin.delete("/api/v1/queues/orders").await,
        409,
        "conflict",
    );
    admin
        .post("/api/v1/queues/orders/messages", Some(r#"{"body":"x"}"#))
        .await;
    c.unsubscribe("s").await.expect("UNSUBSCRIBE");
    let r = admin.post("/api/v1/queues/orders/purge", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let p: PurgeResponse = r.json();
    assert_eq!((p.queue.as_str(), p.removed), ("orders", 4));
    assert_eq!(admin.depth("orders").await, 0);
    assert_error(
        &admin.post("/api/v1/queues/nope/purge", None).await,
        404,
        "not_found",
    );
    let r = admin.delete("/api/v1/queues/orders").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_error(&admin.get("/api/v1/queues/orders").await, 404, "not_found");
    assert_error(
        &admin.delete("/api/v1/queues/orders").await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn topics_and_connections() {
    let node = Node::start(NodeOpts::new("lists"));
    let admin = node.admin();
    let addr = node.stomp_addr();
    let mut a = connect(&addr).await;
    let mut b = connect(&addr).await;
    subscribe(&mut a, "/topic/prices", "p", AckMode::Auto).await;
    subscribe(&mut b, "/topic/prices", "p", AckMode::Auto).await;
    subscribe(&mut b, "/queue/jobs", "j", AckMode::Auto).await;
    send(&mut a, "/topic/prices", "42", &[]).await;
    drain(&mut b, 1, SOON).await;

    let t: TopicList = admin.get_ok("/api/v1/topics").await;
    let prices = t
        .topics
        .iter()
        .find(|t| t.name == "prices")
        .expect("topic prices");
    assert_eq!((prices.subscribers, prices.enqueued), (2, 1));

    let c: ConnectionList = admin.get_ok("/api/v1/connections").await;
    assert_eq!(c.connections.len(), 2, "{c:?}");
    let mut subs: Vec<u64> = c.connections.iter().map(|c| c.subscriptions).collect();
    subs.sort();
    assert_eq!(subs, [1, 2]);
    assert!(
        c.connections
            .iter()
            .all(|c| c.kind == ConnectionKind::Client
                && c.version == "1.2"
                && c.remote.starts_with("127.0.0.1:"))
    );

    drop(a);
    wait_for_async(SOON, async || {
        let c: ConnectionList = admin.get_ok("/api/v1/connections").await;
        c.connections.len() == 1
    })
    .await;
}

#[tokio::test]
async fn metrics_and_unknown_routes() {
    let node = Node::start(NodeOpts::new("metrics"));
    let admin = node.admin();
    let mut c = connect(&node.stomp_addr()).await;
    for _ in 0..2 {
        send(&mut c, "/queue/measured", "m", &[]).await;
    }
    let m = admin.get("/metrics").await;
    assert_eq!(m.status, 200);
    assert!(
        m.body.contains("mq_queue_size{queue=\"measured\"} 2"),
        "{}",
        m.body
    );
    assert!(m.body.contains("# TYPE mq_queue_size gauge"), "{}", m.body);
    assert!(m.body.contains("\nmq_up 1\n"), "{}", m.body);
    // The role is a gauge per role, never a label that changes on failover.
    assert!(m.body.contains("mq_role{role=\"master\"} 1"), "{}", m.body);
    assert!(m.body.contains("mq_role{role=\"slave\"} 0"), "{}", m.body);
    assert!(
        m.body.contains("process_resident_memory_bytes "),
        "{}",
        m.body
    );
    assert_prometheus_conventions(&m.body);

    assert_error(&admin.get("/api/v1/nope").await, 404, "not_found");
    assert_error(&admin.get("/nope").await, 404, "not_found");
}

/// Every sample's family has HELP and TYPE before it, counters end in `_total`, every value
/// is a number, and no family is declared twice.
fn assert_prometheus_conventions(text: &str) {
    use std::collections::{HashMap, HashSet};
    let mut help = HashSet::new();
    let mut types: HashMap<String, String> = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            assert!(help.insert(name.clone()), "HELP twice for {name}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            let (name, kind) = (it.next().unwrap_or_default(), it.next().unwrap_or_default());
            assert!(help.contains(name), "TYPE before HELP for {name}");
            assert!(
                ["counter", "gauge"].contains(&kind),
                "unknown type {kind} of {name}"
            );
            if kind == "counter" {
                assert!(
                    name.ends_with("_total"),
                    "counter {name} does not end in _total"
                );
            }
            assert!(
                types.insert(name.to_string(), kind.to_string()).is_none(),
                "TYPE twice for {name}"
            );
            continue;
        }
        if line.is_empty() {
            continue;
        }
        let name = line.split(['{', ' ']).next().unwrap_or_default();
        assert!(
            types.contains_key(name),
            "sample of {name} without TYPE: {line}"
        );
        let value = line.rsplit(' ').next().unwrap_or_default();
        assert!(value.parse::<f64>().is_ok(), "not a number: {line}");
    }
}

#[tokio::test]
async fn stepdown_makes_a_master_a_slave_until_it_retakes_the_lock() {
    let mut node = Node::start(NodeOpts::new("stepper"));
    let admin = node.admin();
    let mut c = connect(&node.stomp_addr()).await;
    send_persistent(&mut c, "/queue/kept", "across the stepdown").await;

    let r = admin.post("/api/v1/ha/stepdown", None).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let s: StatusResponse = r.json();
    assert_eq!(s.status, "stepping_down");
    node.wait_event(Role::Slave, SOON);
    assert_eq!(admin.role().await, Role::Slave);
    assert_eq!(admin.get("/readyz").await.status, 503);
    assert_error(&admin.get("/api/v1/queues").await, 503, "unavailable");
    // Only a master can step down.
    assert_error(
        &admin.post("/api/v1/ha/stepdown", None).await,
        409,
        "conflict",
    );

    // Nobody else wants the lock, so the node takes it back.
    let ev = node.wait_event(Role::Master, SOON);
    assert_eq!(ev.transports.len(), 1);
    assert_eq!(admin.role().await, Role::Master);
    assert_eq!(admin.get("/readyz").await.status, 200);
    let mut c = connect(&node.stomp_addr()).await;
    subscribe(&mut c, "/queue/kept", "s", AckMode::Auto).await;
    assert_eq!(body_str(&recv(&mut c, SOON).await), "across the stepdown");
}

#[tokio::test]
async fn shutdown_endpoint_stops_the_node_cleanly() {
    let mut node = Node::start(NodeOpts::new("stopper"));
    let r = node.admin().post("/api/v1/shutdown", None).await;
    assert!(r.status == 200 || r.status == 202, "{}", r.body);
    let s: StatusResponse = r.json();
    assert_eq!(s.status, "shutting_down");
    let status = node.wait_exit(EXIT_TIMEOUT);
    assert_eq!(status.code(), Some(0), "{status}");
}

#[tokio::test]
async fn a_token_protects_everything_but_health() {
    let node = Node::start(NodeOpts::new("guarded").token("s3cret-token"));
    let url = node.admin_url();
    for path in [
        "/api/v1/broker",
        "/api/v1/queues",
        "/api/v1/connections",
        "/metrics",
    ] {
        let r = http(reqwest::Method::GET, &format!("{url}{path}"), None, None).await;
        assert_error(&r, 401, "unauthorized");
        let r = http(
            reqwest::Method::GET,
            &format!("{url}{path}"),
            None,
            Some("wrong"),
        )
        .await;
        assert_error(&r, 401, "unauthorized");
        let r = http(
            reqwest::Method::GET,
            &format!("{url}{path}"),
            None,
            Some("s3cret-token"),
        )
        .await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
    let (status, _): (u16, ApiError) = post_json(
        &format!("{url}/api/v1/shutdown"),
        &serde_json::json!({}),
        None,
    )
    .await;
    assert_eq!(status, 401);
    for path in ["/healthz", "/readyz"] {
        let r = http(reqwest::Method::GET, &format!("{url}{path}"), None, None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
    let (status, b): (u16, BrokerInfo) =
        get_json(&format!("{url}/api/v1/broker"), Some("s3cret-token")).await;
    assert_eq!((status, b.name.as_str()), (200, "guarded"));
}

#[tokio::test]
async fn every_error_is_json() {
    let node = Node::start(NodeOpts::new("errors"));
    let admin = node.admin();
    // A known path with a method it does not serve.
    for (method, path) in [
        (reqwest::Method::POST, "/api/v1/broker"),
        (reqwest::Method::PUT, "/api/v1/queues"),
        (reqwest::Method::DELETE, "/api/v1/topics"),
    ] {
        let r = http(method.clone(), &format!("{}{path}", admin.base), None, None).await;
        assert_eq!(r.status, 405, "{method} {path}: {}", r.body);
        let e: Result<ApiError, _> = serde_json::from_str(&r.body);
        assert!(
            e.is_ok(),
            "{method} {path}: 405 without a JSON error body: {:?}",
            r.body
        );
    }
    // A queue name that is not UTF-8 once decoded.
    let r = admin.get("/api/v1/queues/%FF").await;
    assert_eq!(r.status, 400, "{}", r.body);
    let e: Result<ApiError, _> = serde_json::from_str(&r.body);
    assert!(e.is_ok(), "400 without a JSON error body: {:?}", r.body);
}

#[tokio::test]
async fn queue_counters_follow_producers_consumers_and_acks() {
    let node = Node::start(NodeOpts::new("counters"));
    let admin = node.admin();
    let addr = node.stomp_addr();
    let mut p = connect(&addr).await;
    for _ in 0..4 {
        send(&mut p, "/queue/count", "0123456789", &[]).await;
    }
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/count", "s", AckMode::ClientIndividual).await;
    let got = drain(&mut c, 4, SOON).await;
    ack_receipt(&mut c, &got[0]).await;
    let q: QueueStats = admin.get_ok("/api/v1/queues/count").await;
    assert_eq!(
        (
            q.depth,
            q.enqueued,
            q.dequeued,
            q.inflight,
            q.consumers,
            q.producers
        ),
        (3, 4, 1, 3, 1, 1),
        "{q:?}"
    );
    assert!(q.bytes >= 30, "{q:?}");
    let b: api::BrowseResponse = admin.get_ok("/api/v1/queues/count/messages").await;
    assert!(b.messages.iter().all(|m| m.inflight), "{b:?}");
    drop(p);
    drop(c);
    wait_for_async(SOON, async || {
        admin
            .queue("count")
            .await
            .is_some_and(|q| q.producers == 0 && q.consumers == 0 && q.inflight == 0)
    })
    .await;
    let b: api::BrowseResponse = admin.get_ok("/api/v1/queues/count/messages").await;
    assert_eq!(b.messages.len(), 3);
    assert!(
        b.messages
            .iter()
            .all(|m| !m.inflight && m.redeliveries == 1),
        "{b:?}"
    );
}
