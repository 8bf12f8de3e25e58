//! STOMP over WebSocket (`ws://` transports): the upgrade and its subprotocols at the HTTP
//! level, stompjs from npm in Node (tests/js/stomp_ws.mjs) on its own, and messages crossing
//! between TCP and WebSocket clients both ways; `wss://` without a certificate refused at start
//! with a sentence.

use std::time::Duration;

use mq_shared::api::{BrokerInfo, ConnectionList};
use mq_tests::client::AckMode;
use mq_tests::js;
use mq_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bound on one stompjs script.
const SCRIPT: Duration = Duration::from_secs(60);

fn start(name: &str, extra: &[&str]) -> Node {
    let mut args = vec!["--transport", "ws://127.0.0.1:0"];
    args.extend_from_slice(extra);
    Node::start(NodeOpts::new(name).args(args))
}

/// The HTTP answer head to an upgrade request offering `protocols`.
async fn upgrade(addr: &str, protocols: Option<&str>) -> String {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let offer = protocols
        .map(|p| format!("Sec-WebSocket-Protocol: {p}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n"
    );
    s.write_all(req.as_bytes())
        .await
        .expect("writing the upgrade");
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(SOON, async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer to the upgrade within {SOON:?}");
    String::from_utf8_lossy(&head).to_ascii_lowercase()
}

#[tokio::test]
async fn the_upgrade_chooses_a_stomp_subprotocol() {
    let node = start("ws-upgrade", &[]);
    let url = node.ws_url();
    let addr = url.trim_start_matches("ws://");
    let b: BrokerInfo = node.admin().get_ok("/api/v1/broker").await;
    assert!(b.transports.contains(&url), "{:?}", b.transports);

    let head = upgrade(addr, Some("v12.stomp, v11.stomp, v10.stomp")).await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("sec-websocket-protocol: v12.stomp"), "{head}");
    let head = upgrade(addr, Some("mqtt, v11.stomp")).await;
    assert!(head.contains("sec-websocket-protocol: v11.stomp"), "{head}");
    let head = upgrade(addr, None).await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(!head.contains("sec-websocket-protocol"), "{head}");
    let head = upgrade(addr, Some("mqtt")).await;
    assert!(head.starts_with("http/1.1 400"), "{head}");
    // Plain STOMP on the WebSocket port is not an upgrade.
    let head = {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"CONNECT\naccept-version:1.2\n\n\0")
            .await
            .expect("write");
        let mut buf = vec![0u8; 256];
        let n = tokio::time::timeout(SOON, s.read(&mut buf))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase()
    };
    assert!(!head.contains("connected"), "{head}");
}

#[tokio::test]
async fn wss_without_a_certificate_is_refused_at_start_with_a_sentence() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().display().to_string();
    let out = run_mqnode_on("wss", &data, "wss://127.0.0.1:0", &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("wss://127.0.0.1:0") && err.contains("--tls-cert"),
        "{err}"
    );
    let out = run_mqnode(&["--transport", "ws://127.0.0.1", "--data", &data]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("port"));
}

/// STOMP over `wss://`: the TLS handshake with the node's certificate, the upgrade inside it,
/// then a frame each way.
#[tokio::test]
async fn wss_carries_stomp_over_tls() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

    let pki = mq_tests::certs::Pki::new();
    let mut args = vec!["--transport".to_string(), "wss://127.0.0.1:0".to_string()];
    args.extend(pki.node_args());
    let node = Node::start(NodeOpts::new("wss").args(args));
    let url = node
        .ready()
        .transports
        .iter()
        .find(|t| t.starts_with("wss://"))
        .cloned()
        .unwrap_or_else(|| panic!("no wss:// transport in {:?}", node.ready().transports));
    let addr = url.trim_start_matches("wss://").to_string();
    let tls = mq_shared::tls::connect(&addr, Some(&pki.client()), "127.0.0.1")
        .await
        .expect("a TLS session with the node's certificate");
    let mut req = format!("wss://{addr}/")
        .into_client_request()
        .expect("a request");
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "v12.stomp".parse().expect("a header value"),
    );
    let (mut ws, resp) = tokio::time::timeout(SOON, tokio_tungstenite::client_async(req, tls))
        .await
        .expect("upgrade within the timeout")
        .expect("the upgrade");
    assert_eq!(
        resp.headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("v12.stomp")
    );
    let frames = [
        "CONNECT\naccept-version:1.2\nhost:localhost\n\n\0",
        "SUBSCRIBE\nid:1\ndestination:/queue/wss\nack:auto\n\n\0",
        "SEND\ndestination:/queue/wss\n\nover wss\0",
    ];
    for f in frames {
        ws.send(Message::text(f)).await.expect("sending a frame");
    }
    let mut seen = String::new();
    let got = tokio::time::timeout(SOON, async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Text(t) = m {
                seen.push_str(t.as_str());
                if seen.contains("MESSAGE\n") && seen.contains("over wss") {
                    return true;
                }
            }
        }
        false
    })
    .await;
    assert!(
        matches!(got, Ok(true)),
        "no MESSAGE over wss:// within {SOON:?}: {seen:?}"
    );
    assert!(seen.starts_with("CONNECTED\n"), "{seen:?}");
}

#[tokio::test]
async fn stompjs_sends_and_receives_over_ws() {
    const TEST: &str = "websocket::stompjs_sends_and_receives_over_ws";
    let Some(scripts) = js::scripts_for(TEST) else {
        return;
    };
    let node = start("ws-stompjs", &["--heartbeat-ms", "200"]);
    let r = scripts.run("stomp_ws.mjs", &["roundtrip", &node.ws_url()], SCRIPT);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["subprotocol"], "v12.stomp", "{r}");
    assert_eq!(r["version"], "1.2", "{r}");
    assert!(r["pongs"].as_u64().unwrap_or(0) >= 2, "{r}");
    // The connection was one of the node's, and it is gone.
    let admin = node.admin();
    wait_for_async(SOON, async || {
        let c: ConnectionList = admin.get_ok("/api/v1/connections").await;
        c.connections.is_empty()
    })
    .await;
}

#[tokio::test]
async fn messages_cross_between_tcp_and_websocket_both_ways() {
    const TEST: &str = "websocket::messages_cross_between_tcp_and_websocket_both_ways";
    let Some(scripts) = js::scripts_for(TEST) else {
        return;
    };
    let node = start("ws-cross", &[]);
    let ws = node.ws_url();
    const N: usize = 20;

    // TCP producer, WebSocket consumer.
    let mut tcp = connect(&node.stomp_addr()).await;
    for i in 0..N {
        let n = i.to_string();
        send(
            &mut tcp,
            "/queue/tcp.to.ws",
            format!("m{i}"),
            &[("n", &n), ("persistent", "true")],
        )
        .await;
    }
    let r = scripts.run("stomp_ws.mjs", &["receive", &ws, "tcp.to.ws", "20"], SCRIPT);
    let got: Vec<(String, String)> = r["messages"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    (
                        m["body"].as_str().unwrap_or_default().to_string(),
                        m["n"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let want: Vec<(String, String)> = (0..N).map(|i| (format!("m{i}"), i.to_string())).collect();
    assert_eq!(got, want, "{r}");
    let admin = node.admin();
    wait_for_async(SOON, async || admin.depth("tcp.to.ws").await == 0).await;

    // WebSocket producer, TCP consumer.
    let r = scripts.run("stomp_ws.mjs", &["send", &ws, "ws.to.tcp", "20"], SCRIPT);
    assert_eq!(r["sent"], 20, "{r}");
    subscribe(&mut tcp, "/queue/ws.to.tcp", "s", AckMode::Auto).await;
    let frames = drain(&mut tcp, N, SOON).await;
    let got: Vec<(String, String)> = frames
        .iter()
        .map(|f| (body_str(f), f.header("n").unwrap_or_default().to_string()))
        .collect();
    assert_eq!(got, want);
    assert!(
        frames
            .iter()
            .all(|f| f.header("persistent") == Some("true")),
        "headers kept across transports"
    );
}
