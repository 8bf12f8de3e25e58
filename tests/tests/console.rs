//! The node's web console: its pages served without the token while the API keeps needing it,
//! the redirects, the move endpoint that sends a dead letter back to its original destination,
//! and the page itself in headless Chromium (tests/js/console_check.mjs): it renders, shows the
//! broker and a queue's depth, sends, browses, moves a dead letter, purges, runs stompjs in the
//! browser over ws://, fetches nothing from outside, and leaves a screenshot that is checked.

use std::time::Duration;

use mq_shared::api::{ApiError, BrowseResponse, MoveResponse, SendResponse};
use mq_tests::client::AckMode;
use mq_tests::js::{self, png_size};
use mq_tests::*;

const TOKEN: &str = "console-test-token";

/// A node with a token and both a TCP and a ws:// transport.
fn start(name: &str) -> Node {
    Node::start(
        NodeOpts::new(name)
            .token(TOKEN)
            .args(["--transport", "ws://127.0.0.1:0"]),
    )
}

/// GET without following redirects and without a token.
async fn get_plain(url: &str) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client");
    client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

#[tokio::test]
async fn pages_are_served_without_the_token_and_the_api_needs_it() {
    let node = start("console-pages");
    let base = node.admin_url();
    for from in ["/console", "/"] {
        let r = get_plain(&format!("{base}{from}")).await;
        assert!(r.status().is_redirection(), "{from}: {}", r.status());
        assert_eq!(
            r.headers().get("location").and_then(|v| v.to_str().ok()),
            Some("/console/"),
            "{from}"
        );
    }
    for (path, kind, needle) in [
        ("/console/", "text/html", "console.js"),
        ("/console/console.js", "text/javascript", "Authorization"),
        ("/console/console.css", "text/css", "--accent"),
    ] {
        let r = get_plain(&format!("{base}{path}")).await;
        assert_eq!(r.status(), 200, "{path}");
        let header = |name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        assert!(header("content-type").starts_with(kind), "{path}");
        let csp = header("content-security-policy");
        assert!(
            csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"),
            "{path}: {csp}"
        );
        let body = r.text().await.unwrap_or_default();
        assert!(body.contains(needle), "{path} lacks {needle}");
        // Built in: nothing refers to another host (the SVG namespace is a name, not a fetch).
        let body = body.replace("http://www.w3.org/2000/svg", "");
        assert!(
            !body.contains("https://") && !body.contains("http://"),
            "{path}"
        );
    }
    assert_eq!(
        get_plain(&format!("{base}/console/nope")).await.status(),
        404
    );
    let r = get_plain(&format!("{base}/api/v1/broker")).await;
    assert_eq!(r.status(), 401);
    let r = get_plain(&format!("{base}/api/v1/queues/DLQ/messages/x/move")).await;
    assert_eq!(r.status(), 405, "the move endpoint takes POST only");
    let admin = node.admin();
    let r = admin.get("/api/v1/broker").await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Sends `body` to queue `q` and dead-letters it with a NACK over TCP; returns its id.
async fn dead_letter(node: &Node, q: &str, body: &str) -> String {
    let admin = node.admin();
    let r = admin
        .post(
            &format!("/api/v1/queues/{q}/messages"),
            Some(&format!(
                r#"{{"body":"{body}","headers":{{"kind":"poison"}}}}"#
            )),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let sent: SendResponse = r.json();
    let mut c = connect(&node.stomp_addr()).await;
    subscribe(
        &mut c,
        &format!("/queue/{q}"),
        "s",
        AckMode::ClientIndividual,
    )
    .await;
    let m = recv(&mut c, SOON).await;
    assert_eq!(body_str(&m), body);
    nack_receipt(&mut c, &m).await;
    drop(c);
    sent.message_id
}

#[track_caller]
fn assert_error(r: &HttpReply, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    let e: ApiError = r.json();
    assert_eq!(e.error.code, code, "{}", r.body);
}

#[tokio::test]
async fn a_dead_letter_moves_back_to_its_original_destination() {
    let mut node = start("console-move");
    let admin = node.admin();
    let id = dead_letter(&node, "orders", "poison pill").await;
    wait_for_async(SOON, async || admin.depth("DLQ").await == 1).await;
    let dlq: BrowseResponse = admin.get_ok("/api/v1/queues/DLQ/messages").await;
    assert_eq!(dlq.messages[0].message_id, id);
    assert_eq!(
        dlq.messages[0]
            .headers
            .get("original-destination")
            .map(String::as_str),
        Some("/queue/orders")
    );
    let path = |q: &str, id: &str| format!("/api/v1/queues/{q}/messages/{id}/move");

    // Errors first: nothing moves.
    assert_error(
        &admin.post(&path("DLQ", "ID:nope"), None).await,
        404,
        "not_found",
    );
    assert_error(
        &admin.post(&path("nope", &id), None).await,
        404,
        "not_found",
    );
    assert_error(
        &admin
            .post(&path("DLQ", &id), Some(r#"{"to":"/nowhere/x"}"#))
            .await,
        400,
        "bad_request",
    );
    assert_error(
        &admin
            .post(&path("DLQ", &id), Some(r#"{"to":"/queue/DLQ"}"#))
            .await,
        400,
        "bad_request",
    );
    assert_error(
        &admin.post(&path("DLQ", &id), Some("{nope")).await,
        400,
        "bad_json",
    );
    let anonymous = http(
        reqwest::Method::POST,
        &format!("{}{}", node.admin_url(), path("DLQ", &id)),
        None,
        None,
    )
    .await;
    assert_error(&anonymous, 401, "unauthorized");
    assert_eq!(admin.depth("DLQ").await, 1);

    // An empty body moves it to its original destination, with its id, body and headers.
    let r = admin.post(&path("DLQ", &id), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let moved: MoveResponse = r.json();
    assert_eq!(
        (
            moved.message_id.as_str(),
            moved.from.as_str(),
            moved.to.as_str()
        ),
        (id.as_str(), "/queue/DLQ", "/queue/orders")
    );
    assert_eq!(admin.depth("DLQ").await, 0);
    assert_eq!(admin.depth("orders").await, 1);
    let back: BrowseResponse = admin.get_ok("/api/v1/queues/orders/messages").await;
    let m = &back.messages[0];
    assert_eq!(
        (m.message_id.as_str(), m.body.as_str()),
        (id.as_str(), "poison pill")
    );
    assert_eq!(m.headers.get("kind").map(String::as_str), Some("poison"));
    assert!(!m.headers.contains_key("original-destination"));
    // Moving it again: it is not in the DLQ any more; and without original-destination the
    // request must say where.
    assert_error(&admin.post(&path("DLQ", &id), None).await, 404, "not_found");
    assert_error(
        &admin.post(&path("orders", &id), None).await,
        400,
        "bad_request",
    );

    // The move is in the store: after a restart it is in orders, not in the DLQ.
    node.restart();
    let admin = node.admin();
    assert_eq!(admin.depth("orders").await, 1);
    assert_eq!(admin.depth("DLQ").await, 0);

    // A message in flight to a consumer cannot be moved; `to` names any destination.
    let mut c = connect(&node.stomp_addr()).await;
    subscribe(&mut c, "/queue/orders", "s", AckMode::Client).await;
    let held = recv(&mut c, SOON).await;
    assert_error(
        &admin
            .post(&path("orders", &id), Some(r#"{"to":"/queue/elsewhere"}"#))
            .await,
        409,
        "conflict",
    );
    drop(held);
    drop(c);
    wait_for_async(SOON, async || {
        admin.queue("orders").await.is_some_and(|q| q.inflight == 0)
    })
    .await;
    let r = admin
        .post(&path("orders", &id), Some(r#"{"to":"/queue/elsewhere"}"#))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(admin.depth("elsewhere").await, 1);
    assert_eq!(admin.depth("orders").await, 0);
    let mut c = connect(&node.stomp_addr()).await;
    subscribe(&mut c, "/queue/elsewhere", "s", AckMode::Auto).await;
    assert_eq!(body_str(&recv(&mut c, SOON).await), "poison pill");
}

#[tokio::test]
async fn the_console_works_in_headless_chromium() {
    const TEST: &str = "console::the_console_works_in_headless_chromium";
    let Some((scripts, chromium)) = js::browser_for(TEST) else {
        return;
    };
    let node = start("console-browser");
    let admin = node.admin();
    for i in 0..3 {
        let r = admin
            .post(
                "/api/v1/queues/console.q/messages",
                Some(&format!(r#"{{"body":"message {i}"}}"#)),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    dead_letter(&node, "orders", "back to orders").await;
    wait_for_async(SOON, async || admin.depth("DLQ").await == 1).await;

    let dir = tempfile::tempdir().expect("a temporary directory");
    let shot = dir.path().join("console.png");
    let config = serde_json::json!({
        "origin": node.admin_url(),
        "token": TOKEN,
        "broker": "console-browser",
        "queue": "console.q",
        "depth": 3,
        "dlq": "DLQ",
        "original": "orders",
        "ws": node.ws_url(),
        "screenshot": shot,
        "chromium": chromium,
    });
    let result = scripts.run(
        "console_check.mjs",
        &[&config.to_string()],
        Duration::from_secs(150),
    );
    assert_eq!(result["ok"], true, "{result}");
    assert!(result["requests"].as_u64().unwrap_or(0) > 5, "{result}");

    // The screenshot: a real PNG of a rendered page, not an empty one.
    let png = std::fs::read(&shot).expect("the screenshot was written");
    let (w, h) = png_size(&png).expect("the screenshot is a PNG");
    assert!(w >= 1000 && h >= 800, "screenshot is {w}x{h}");
    assert!(
        png.len() > 30_000,
        "screenshot of {} bytes looks blank",
        png.len()
    );

    // What the browser did is what the node now holds.
    assert_eq!(admin.depth("console.q").await, 0, "purged");
    assert_eq!(admin.depth("DLQ").await, 0, "moved out");
    assert_eq!(admin.depth("orders").await, 1, "moved back");
    assert_eq!(
        admin.depth("browser.ws").await,
        0,
        "consumed by stompjs in the browser"
    );
    let q = admin
        .queue("browser.ws")
        .await
        .expect("the browser's queue");
    assert_eq!((q.enqueued, q.dequeued), (1, 1));
}
