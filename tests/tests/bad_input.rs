//! Bad input never takes the node down: each offender gets an ERROR frame with a `message`
//! header (a silent client just gets closed) and loses its connection, while another client
//! keeps working and a stored persistent message stays stored.

use std::time::{Duration, Instant};

use mq_tests::client::{AckMode, StompClient};
use mq_tests::frame::{Command, Frame};
use mq_tests::*;

/// A node (connect timeout 500 ms), a persistent message stored before the offence, and a
/// client connected before it that must keep working after it.
struct Scene {
    node: Node,
    witness: StompClient,
}

impl Scene {
    async fn new(name: &str) -> Scene {
        let node = Node::start(NodeOpts::new(name).args(["--connect-timeout-ms", "500"]));
        let mut witness = connect(&node.stomp_addr()).await;
        send_persistent(&mut witness, "/queue/precious", "stored before").await;
        subscribe(
            &mut witness,
            "/queue/witness",
            "w",
            AckMode::ClientIndividual,
        )
        .await;
        Scene { node, witness }
    }

    fn addr(&self) -> String {
        self.node.stomp_addr()
    }

    /// The witness still round-trips, new clients still connect, the stored message is there.
    async fn check_unharmed(mut self) {
        send(&mut self.witness, "/queue/witness", "still alive", &[]).await;
        let m = recv(&mut self.witness, SOON).await;
        assert_eq!(body_str(&m), "still alive");
        ack_receipt(&mut self.witness, &m).await;
        let mut c = connect(&self.addr()).await;
        subscribe(&mut c, "/queue/precious", "p", AckMode::ClientIndividual).await;
        let m = recv(&mut c, SOON).await;
        assert_eq!(body_str(&m), "stored before");
        assert!(self.node.is_running());
    }
}

/// Opens a 1.2 session on the scene's node.
async fn session(scene: &Scene) -> RawConn {
    RawConn::connect(&scene.addr(), Some("1.2"), "0,0").await.0
}

#[tokio::test]
async fn garbage_bytes() {
    let scene = Scene::new("garbage").await;
    let mut c = RawConn::open(&scene.addr()).await;
    let _ = c
        .write(b"\xde\xad\xbe\xef GET / HTTP/1.1\r\n\r\n\0\0\xff")
        .await;
    c.expect_error_then_close(SOON).await;
    // Garbage after a good CONNECT, too.
    let mut c = session(&scene).await;
    let _ = c.write(b"\x01\x02\x03\n\n\0").await;
    c.expect_error_then_close(SOON).await;
    scene.check_unharmed().await;
}

#[tokio::test]
async fn frame_without_nul() {
    let scene = Scene::new("nonul").await;
    // content-length says where the body ends, and the byte there is not NUL.
    let mut c = session(&scene).await;
    let _ = c
        .write(b"SEND\ndestination:/queue/x\ncontent-length:5\n\nhelloXXXX")
        .await;
    c.expect_error_then_close(SOON).await;
    // No content-length: the frame never ends, then the client closes its side.
    let mut c = session(&scene).await;
    let _ = c
        .write(b"SEND\ndestination:/queue/precious\npersistent:true\n\nunfinished")
        .await;
    c.shutdown_write().await;
    c.expect_closed(SOON).await;
    scene.check_unharmed().await;
}

#[tokio::test]
async fn content_length_of_100_mib() {
    let scene = Scene::new("huge").await;
    let mut c = session(&scene).await;
    let _ = c
        .write(b"SEND\ndestination:/queue/x\ncontent-length:104857600\n\n")
        .await;
    let started = Instant::now();
    let e = c.expect_error_then_close(SOON).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the node waited for the body before refusing it"
    );
    let msg = e.header("message").unwrap_or_default().to_owned();
    assert!(msg.contains("size") || msg.contains("large"), "{msg}");
    scene.check_unharmed().await;
}

#[tokio::test]
async fn ten_thousand_headers() {
    let scene = Scene::new("headers").await;
    let mut c = session(&scene).await;
    let mut frame = b"SEND\ndestination:/queue/x\n".to_vec();
    for i in 0..10_000 {
        frame.extend_from_slice(format!("h{i}:v{i}\n").as_bytes());
    }
    frame.extend_from_slice(b"\nbody\0");
    // The node may close while this is still being written.
    let _ = c.write(&frame).await;
    let e = c.expect_error_then_close(SOON).await;
    assert!(
        e.header("message").unwrap_or_default().contains("header"),
        "{e:?}"
    );
    scene.check_unharmed().await;
}

#[tokio::test]
async fn unknown_command() {
    let scene = Scene::new("unknown").await;
    let mut c = session(&scene).await;
    let _ = c.write(b"FROBNICATE\nreceipt:1\n\n\0").await;
    c.expect_error_then_close(SOON).await;
    // A command that starts like a real one.
    let mut c = session(&scene).await;
    let _ = c.write(b"SENDX\ndestination:/queue/x\n\n\0").await;
    c.expect_error_then_close(SOON).await;
    scene.check_unharmed().await;
}

#[tokio::test]
async fn frame_before_connect_gets_an_error_with_its_receipt_id() {
    let scene = Scene::new("early").await;
    let mut c = RawConn::open(&scene.addr()).await;
    c.send_frame(
        &Frame::new(Command::Send)
            .with_header("destination", "/queue/precious")
            .with_header("receipt", "early-1")
            .with_body("sneaky"),
    )
    .await;
    let e = c.expect_error_then_close(SOON).await;
    assert_eq!(e.header("receipt-id"), Some("early-1"), "{e:?}");
    scene.check_unharmed().await;
}

#[tokio::test]
async fn refused_frame_with_a_receipt_gets_an_error_with_its_receipt_id() {
    let scene = Scene::new("refused").await;
    let mut c = session(&scene).await;
    c.send_frame(
        &Frame::new(Command::Send)
            .with_header("destination", "/nowhere/x")
            .with_header("receipt", "bad-dest"),
    )
    .await;
    let e = c.expect_error_then_close(SOON).await;
    assert_eq!(e.header("receipt-id"), Some("bad-dest"), "{e:?}");
    let mut c = session(&scene).await;
    c.send_frame(
        &Frame::new(Command::Ack)
            .with_header("id", "no-such-ack")
            .with_header("receipt", "bad-ack"),
    )
    .await;
    let e = c.expect_error_then_close(SOON).await;
    assert_eq!(e.header("receipt-id"), Some("bad-ack"), "{e:?}");
    scene.check_unharmed().await;
}

#[tokio::test]
async fn undefined_escape_in_1_2() {
    let scene = Scene::new("escape").await;
    let mut c = session(&scene).await;
    let _ = c
        .write(b"SEND\ndestination:/queue/x\nk:tab\\there\n\nbody\0")
        .await;
    let e = c.expect_error_then_close(SOON).await;
    assert!(
        e.header("message").unwrap_or_default().contains("escape"),
        "{e:?}"
    );
    scene.check_unharmed().await;
}

#[tokio::test]
async fn silent_client_is_closed_after_the_connect_timeout() {
    let scene = Scene::new("silent").await;
    let started = Instant::now();
    let mut c = RawConn::open(&scene.addr()).await;
    c.expect_closed(Duration::from_secs(5)).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(400),
        "closed after {waited:?}, before the 500 ms connect timeout"
    );
    scene.check_unharmed().await;
}

#[tokio::test]
async fn second_connect_is_refused() {
    let scene = Scene::new("reconnect").await;
    let mut c = session(&scene).await;
    c.send_frame(
        &Frame::new(Command::Connect)
            .with_header("accept-version", "1.2")
            .with_header("host", "localhost"),
    )
    .await;
    c.expect_error_then_close(SOON).await;
    scene.check_unharmed().await;
}

#[tokio::test]
async fn header_line_too_long() {
    let scene = Scene::new("longline").await;
    let mut c = session(&scene).await;
    let mut frame = b"SEND\ndestination:/queue/x\nbig:".to_vec();
    frame.extend(std::iter::repeat_n(b'a', 64 * 1024));
    frame.extend_from_slice(b"\n\nbody\0");
    let _ = c.write(&frame).await;
    c.expect_error_then_close(SOON).await;
    scene.check_unharmed().await;
}

#[tokio::test]
async fn escape_defined_only_in_1_2_is_refused_in_1_1() {
    let scene = Scene::new("escape11").await;
    let (mut c, connected) = RawConn::connect(&scene.addr(), Some("1.1"), "0,0").await;
    assert_eq!(connected.header("version"), Some("1.1"));
    let _ = c
        .write(b"SEND\ndestination:/queue/x\nk:cr\\rhere\n\nbody\0")
        .await;
    c.expect_error_then_close(SOON).await;
    scene.check_unharmed().await;
}

#[tokio::test]
async fn frames_just_inside_the_limits_are_accepted() {
    let scene = Scene::new("limits").await;
    let addr = scene.addr();
    let mut sub = connect(&addr).await;
    subscribe(&mut sub, "/queue/limits", "s", AckMode::Auto).await;
    let mut p = connect(&addr).await;
    // 990 headers (the limit is 1000), one header line of 10,000 bytes (limit 10 KiB) and a
    // body of 9 MiB (frame limit 10 MiB).
    let names: Vec<String> = (0..990).map(|i| format!("h{i}")).collect();
    let long = "v".repeat(10_000 - "long:".len());
    let mut headers: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "x")).collect();
    headers.truncate(985);
    headers.push(("long", long.as_str()));
    let body = bytes::Bytes::from(vec![7u8; 9 * 1024 * 1024]);
    send(&mut p, "/queue/limits", body.clone(), &headers).await;
    let m = recv(&mut sub, SOON).await;
    assert_eq!(m.body.len(), body.len());
    assert_eq!(m.header("h984"), Some("x"));
    assert_eq!(m.header("long"), Some(long.as_str()));
    scene.check_unharmed().await;
}
