//! STOMP details real clients rely on: version negotiation, header escaping, repeated headers,
//! CRLF line endings and a receipt for every frame that asks.

use std::collections::BTreeSet;

use mq_tests::client::{AckMode, ConnectOptions, StompClient};
use mq_tests::frame::{Command, Frame, Version};
use mq_tests::*;

fn opts(accept_version: &str) -> ConnectOptions {
    ConnectOptions {
        accept_version: accept_version.to_owned(),
        ..ConnectOptions::default()
    }
}

#[tokio::test]
async fn versions_1_0_1_1_and_1_2_are_negotiated() {
    let node = Node::start(NodeOpts::new("versions"));
    let addr = node.stomp_addr();

    // A CONNECT without accept-version is a 1.0 client.
    let (_c, connected) = RawConn::connect(&addr, None, "0,0").await;
    assert_eq!(connected.header("version").unwrap_or("1.0"), "1.0");
    for (accept, want) in [
        ("1.0", "1.0"),
        ("1.1", "1.1"),
        ("1.2", "1.2"),
        ("1.0,1.1", "1.1"),
        ("1.1,1.2", "1.2"),
        ("1.0,1.1,1.2", "1.2"),
        ("1.2,9.9", "1.2"),
    ] {
        let (_c, connected) = RawConn::connect(&addr, Some(accept), "0,0").await;
        assert_eq!(
            connected.header("version"),
            Some(want),
            "accept-version {accept}"
        );
        assert!(connected.header("server").is_some());
    }

    // A version the server does not speak: ERROR listing what it speaks, then close.
    let mut c = RawConn::open(&addr).await;
    c.send_frame(
        &Frame::new(Command::Connect)
            .with_header("accept-version", "2.0,3.1")
            .with_header("host", "localhost"),
    )
    .await;
    let e = c.expect_error_then_close(SOON).await;
    let supported = e.header("version").unwrap_or_default();
    assert!(supported.contains("1.2"), "{e:?}");

    // A full exchange in every version, with client acks (1.0/1.1 ack by message-id).
    for (v, want) in [
        ("1.0", Version::V1_0),
        ("1.1", Version::V1_1),
        ("1.2", Version::V1_2),
    ] {
        let dest = format!("/queue/v{v}");
        let mut c = StompClient::connect(&addr, opts(v)).await.expect("connect");
        assert_eq!(c.version(), want);
        subscribe(&mut c, &dest, "s", AckMode::Client).await;
        send(&mut c, &dest, format!("hello {v}"), &[]).await;
        let m = recv(&mut c, SOON).await;
        assert_eq!(body_str(&m), format!("hello {v}"));
        ack_receipt(&mut c, &m).await;
        let name = dest.trim_start_matches("/queue/").to_owned();
        let admin = node.admin();
        wait_for_async(SOON, async || admin.depth(&name).await == 0).await;
        c.disconnect().await.expect("DISCONNECT");
    }
}

#[tokio::test]
async fn header_values_survive_escaping_in_every_version() {
    let node = Node::start(NodeOpts::new("escaping"));
    let addr = node.stomp_addr();
    // 1.1 and 1.2 escape LF, ':' and '\'; 1.2 also CR.
    for (v, value) in [
        ("1.1", "a:b\nc\\d"),
        ("1.2", "a:b\nc\\d\re"),
        ("1.0", "plain:colon"),
    ] {
        let mut c = StompClient::connect(&addr, opts(v)).await.expect("connect");
        let dest = format!("/queue/esc{v}");
        subscribe(&mut c, &dest, "s", AckMode::Auto).await;
        send(
            &mut c,
            &dest,
            "x",
            &[("tricky", value), ("colon:name", "v")],
        )
        .await;
        let m = recv(&mut c, SOON).await;
        assert_eq!(m.header("tricky"), Some(value), "STOMP {v}: {m:?}");
        if v == "1.0" {
            // No escaping in 1.0: a line splits at its first colon.
            assert_eq!(m.header("colon"), Some("name:v"), "STOMP {v}: {m:?}");
        } else {
            assert_eq!(m.header("colon:name"), Some("v"), "STOMP {v}: {m:?}");
        }
    }

    // On the wire, exactly as a 1.2 client writes it.
    let mut sub = connect(&addr).await;
    subscribe(&mut sub, "/queue/wire", "s", AckMode::Auto).await;
    let (mut raw, _) = RawConn::connect(&addr, Some("1.2"), "0,0").await;
    raw.write(
        b"SEND\ndestination:/queue/wire\nk:one\\ctwo\\nthree\\\\four\\rfive\nreceipt:r\n\n\0",
    )
    .await
    .expect("write");
    let r = raw.frame(SOON).await;
    assert_eq!(r.command, Command::Receipt, "{r:?}");
    let m = recv(&mut sub, SOON).await;
    assert_eq!(m.header("k"), Some("one:two\nthree\\four\rfive"));
}

#[tokio::test]
async fn a_repeated_header_keeps_its_first_value() {
    let node = Node::start(NodeOpts::new("repeated"));
    let addr = node.stomp_addr();
    let mut sub = connect(&addr).await;
    subscribe(&mut sub, "/queue/first", "s", AckMode::Auto).await;
    subscribe(&mut sub, "/queue/second", "s2", AckMode::Auto).await;
    let (mut raw, _) = RawConn::connect(&addr, Some("1.2"), "0,0").await;
    raw.write(
        b"SEND\ndestination:/queue/first\ndestination:/queue/second\nx:1\nx:2\nreceipt:r\n\nbody\0",
    )
    .await
    .expect("write");
    assert_eq!(raw.frame(SOON).await.command, Command::Receipt);
    let m = recv(&mut sub, SOON).await;
    assert_eq!(m.header("destination"), Some("/queue/first"));
    assert_eq!(m.header("x"), Some("1"), "{m:?}");
    expect_nothing(&mut sub, QUIET).await;
}

#[tokio::test]
async fn crlf_line_endings_are_accepted() {
    let node = Node::start(NodeOpts::new("crlf"));
    let addr = node.stomp_addr();
    let mut sub = connect(&addr).await;
    subscribe(&mut sub, "/queue/crlf", "s", AckMode::Auto).await;
    let mut raw = RawConn::open(&addr).await;
    raw.write(b"CONNECT\r\naccept-version:1.2\r\nhost:localhost\r\n\r\n\0")
        .await
        .expect("write");
    assert_eq!(raw.frame(SOON).await.command, Command::Connected);
    raw.write(b"SEND\r\ndestination:/queue/crlf\r\nk:v\r\nreceipt:r1\r\n\r\nhi\0\r\n")
        .await
        .expect("write");
    let r = raw.frame(SOON).await;
    assert_eq!(
        (r.command, r.header("receipt-id")),
        (Command::Receipt, Some("r1"))
    );
    let m = recv(&mut sub, SOON).await;
    assert_eq!((m.header("k"), body_str(&m).as_str()), (Some("v"), "hi"));
}

/// A raw session that sends frames with receipts and keeps what came back: the receipt ids
/// asked for and received, and the messages that arrived meanwhile.
struct Receipts {
    conn: RawConn,
    want: BTreeSet<String>,
    got: BTreeSet<String>,
    messages: Vec<Frame>,
}

impl Receipts {
    /// Sends `cmd` with `receipt:ID` and `headers`, then reads until that receipt arrives.
    async fn exchange(&mut self, cmd: Command, id: &str, headers: &[(&str, &str)]) {
        let mut f = Frame::new(cmd).with_header("receipt", id);
        for (k, v) in headers {
            f.push_header(*k, *v);
        }
        self.want.insert(id.to_owned());
        self.conn.send_frame(&f).await;
        while !self.got.contains(id) {
            let r = self.conn.frame(SOON).await;
            match r.command {
                Command::Receipt => {
                    let rid = r.header("receipt-id").expect("receipt-id");
                    self.got.insert(rid.to_owned());
                }
                Command::Message => self.messages.push(r),
                _ => panic!("unexpected frame waiting for receipt {id}: {r:?}"),
            }
        }
    }
}

#[tokio::test]
async fn every_frame_that_asks_gets_a_receipt() {
    let node = Node::start(NodeOpts::new("receipts"));
    let addr = node.stomp_addr();
    let (conn, _) = RawConn::connect(&addr, Some("1.2"), "0,0").await;
    let mut s = Receipts {
        conn,
        want: BTreeSet::new(),
        got: BTreeSet::new(),
        messages: Vec::new(),
    };

    let sub = [
        ("destination", "/queue/rcpt"),
        ("id", "s1"),
        ("ack", "client-individual"),
    ];
    s.exchange(Command::Subscribe, "subscribe", &sub).await;
    let dest = [("destination", "/queue/rcpt")];
    s.exchange(Command::Send, "send-1", &dest).await;
    s.exchange(Command::Send, "send-2", &dest).await;
    while s.messages.len() < 2 {
        let f = s.conn.frame(SOON).await;
        assert_eq!(f.command, Command::Message, "{f:?}");
        s.messages.push(f);
    }
    let ack1 = s.messages[0].header("ack").expect("ack header").to_owned();
    let ack2 = s.messages[1].header("ack").expect("ack header").to_owned();
    s.exchange(Command::Ack, "ack", &[("id", &ack1)]).await;
    s.exchange(Command::Nack, "nack", &[("id", &ack2)]).await;
    let tx = [("transaction", "t1")];
    s.exchange(Command::Begin, "begin", &tx).await;
    let in_tx = [("destination", "/queue/other"), ("transaction", "t1")];
    s.exchange(Command::Send, "send-tx", &in_tx).await;
    s.exchange(Command::Commit, "commit", &tx).await;
    let tx2 = [("transaction", "t2")];
    s.exchange(Command::Begin, "begin-2", &tx2).await;
    s.exchange(Command::Abort, "abort", &tx2).await;
    s.exchange(Command::Unsubscribe, "unsubscribe", &[("id", "s1")])
        .await;
    s.exchange(Command::Disconnect, "disconnect", &[]).await;
    assert_eq!(s.want, s.got);
    s.conn.expect_closed(SOON).await;

    // What those frames did: one acked, one dead-lettered, one committed.
    let admin = node.admin();
    wait_for_async(SOON, async || {
        admin.depth("rcpt").await == 0
            && admin.depth("DLQ").await == 1
            && admin.depth("other").await == 1
    })
    .await;
}
