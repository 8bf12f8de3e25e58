//! STOMP through [`mq_shared::client::StompClient`]: connect (also with a client-id, and as a
//! durable subscriber), subscribe, send (with receipts, pipelined), receive and acknowledge,
//! each panicking with what went wrong; requests the node must refuse ([`subscribe_refused`],
//! [`send_refused`]) returning its ERROR; and the body helpers ([`numbered_body`],
//! [`body_number`], [`bodies`], and [`send_numbered`] with [`recv_numbered`] for whole runs)
//! that let tests check order.

use std::collections::HashSet;
use std::ops::Range;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use mq_shared::client::{AckMode, ClientError, ConnectOptions, StompClient};
use mq_shared::frame::{Command as StompCommand, Frame};

use crate::SOON;

/// Connects with the client's defaults (STOMP 1.2 negotiated, no heart-beats).
pub async fn connect(addr: &str) -> StompClient {
    connect_with(addr, ConnectOptions::default()).await
}

/// Connects with `opts`; panics if the node refuses.
pub async fn connect_with(addr: &str, opts: ConnectOptions) -> StompClient {
    match StompClient::connect(addr, opts).await {
        Ok(c) => c,
        Err(e) => panic!("STOMP connect to {addr} failed: {e}"),
    }
}

/// Options that CONNECT with `client-id` `id` (what a durable subscriber needs).
pub fn client_id_opts(id: &str) -> ConnectOptions {
    ConnectOptions {
        headers: vec![("client-id".into(), id.into())],
        ..ConnectOptions::default()
    }
}

/// A connection with client-id `id`.
pub async fn connect_as(addr: &str, id: &str) -> StompClient {
    connect_with(addr, client_id_opts(id)).await
}

/// The subscription name [`durable_subscriber`] subscribes with.
pub const DURABLE_NAME: (&str, &str) = ("activemq.subscriptionName", "sub1");

/// A connection with client-id `id` subscribed durably to `topic` ([`subscribe_durable`]).
pub async fn durable_subscriber(
    addr: &str,
    id: &str,
    topic: &str,
    extra: &[(&str, &str)],
) -> StompClient {
    let mut c = connect_as(addr, id).await;
    subscribe_durable(&mut c, topic, extra).await;
    c
}

/// Subscribes `c` (connected with a client-id) durably to `topic`: [`DURABLE_NAME`],
/// subscription id `d`, ack `client-individual`, and `extra` headers.
pub async fn subscribe_durable(c: &mut StompClient, topic: &str, extra: &[(&str, &str)]) {
    let mut h = vec![DURABLE_NAME];
    h.extend_from_slice(extra);
    subscribe_with(c, topic, "d", AckMode::ClientIndividual, &h).await;
}

/// Subscribes client `id` durably to `topic` as [`durable_subscriber`] does, then disconnects:
/// the subscription stays, offline.
pub async fn offline_durable(addr: &str, id: &str, topic: &str, extra: &[(&str, &str)]) {
    let c = durable_subscriber(addr, id, topic, extra).await;
    if let Err(e) = c.disconnect().await {
        panic!("DISCONNECT of durable subscriber {id} failed: {e}");
    }
}

/// Subscribes (waiting for the receipt).
pub async fn subscribe(c: &mut StompClient, dest: &str, id: &str, ack: AckMode) {
    subscribe_with(c, dest, id, ack, &[]).await
}

/// Subscribes with extra headers (waiting for the receipt).
pub async fn subscribe_with(
    c: &mut StompClient,
    dest: &str,
    id: &str,
    ack: AckMode,
    headers: &[(&str, &str)],
) {
    if let Err(e) = c.subscribe(dest, id, ack, headers).await {
        panic!("SUBSCRIBE {dest} failed: {e}");
    }
}

/// Sends with a receipt and waits for it.
pub async fn send(
    c: &mut StompClient,
    dest: &str,
    body: impl Into<Bytes>,
    headers: &[(&str, &str)],
) {
    if let Err(e) = c.send(dest, body, headers, true).await {
        panic!("SEND to {dest} failed: {e}");
    }
}

/// Sends a persistent message with a receipt: once this returns, the message is durable.
pub async fn send_persistent(c: &mut StompClient, dest: &str, body: impl Into<Bytes>) {
    send(c, dest, body, &[("persistent", "true")]).await
}

/// Sends each of `bodies` to `dest` in turn as [`send_persistent`] does.
pub async fn send_persistent_all<B: Into<Bytes>>(
    c: &mut StompClient,
    dest: &str,
    bodies: impl IntoIterator<Item = B>,
) {
    for body in bodies {
        send_persistent(c, dest, body).await;
    }
}

/// Sends `bodies` to `dest` with a receipt each, pipelined in windows of `window` frames:
/// every window is written at once, then its receipts are awaited.
pub async fn send_pipelined(
    c: &mut StompClient,
    dest: &str,
    bodies: impl IntoIterator<Item = Bytes>,
    headers: &[(&str, &str)],
    window: usize,
) {
    let mut ids: Vec<String> = Vec::with_capacity(window);
    let mut bodies = bodies.into_iter().peekable();
    while bodies.peek().is_some() {
        for body in bodies.by_ref().take(window) {
            let id = c.next_receipt_id();
            let mut f = Frame::new(StompCommand::Send)
                .with_header("destination", dest)
                .with_header("receipt", id.as_str())
                .with_body(body);
            for (k, v) in headers {
                f.push_header(*k, *v);
            }
            c.queue_frame(&f);
            ids.push(id);
        }
        if let Err(e) = c.flush().await {
            panic!("writing SEND frames to {dest} failed: {e}");
        }
        for id in ids.drain(..) {
            match tokio::time::timeout(SOON, c.wait_receipt(&id)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => panic!("no receipt {id} for a SEND to {dest}: {e}"),
                Err(_) => panic!("no receipt {id} for a SEND to {dest} within {SOON:?}"),
            }
        }
    }
}

/// Sends the persistent [`numbered_body`]s `range` of `len` bytes each to `dest`, receipts
/// pipelined in windows of `window`: once this returns, every one is durable.
pub async fn send_numbered(
    c: &mut StompClient,
    dest: &str,
    range: Range<usize>,
    len: usize,
    window: usize,
) {
    let bodies = range.map(|i| numbered_body(i, len));
    send_pipelined(c, dest, bodies, &[("persistent", "true")], window).await
}

/// Receives the [`numbered_body`]s 0 to `n`-1, each within [`SOON`], in order, each once and
/// `len` bytes long; panics at the first that is not; returns them.
pub async fn recv_numbered(c: &mut StompClient, n: usize, len: usize) -> Vec<Frame> {
    let mut seen = HashSet::with_capacity(n);
    let mut got = Vec::with_capacity(n);
    for expected in 0..n {
        let m = recv(c, SOON).await;
        let i = body_number(&m);
        assert!(seen.insert(i), "message {i} delivered twice");
        assert_eq!(i, expected, "out of order or lost");
        assert_eq!(m.body.len(), len, "the length of message {i}");
        got.push(m);
    }
    got
}

/// The next MESSAGE (or other non-receipt frame); panics if none arrives within `timeout`.
pub async fn recv(c: &mut StompClient, timeout: Duration) -> Frame {
    match c.recv_timeout(timeout).await {
        Ok(Some(f)) => f,
        Ok(None) => panic!("no frame within {timeout:?}"),
        Err(e) => panic!("receiving failed: {e}"),
    }
}

/// Exactly `n` frames, each within `timeout` of the previous one.
pub async fn drain(c: &mut StompClient, n: usize, timeout: Duration) -> Vec<Frame> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        match c.recv_timeout(timeout).await {
            Ok(Some(f)) => got.push(f),
            Ok(None) => panic!(
                "got {} of {n} frames; nothing more within {timeout:?}",
                got.len()
            ),
            Err(e) => panic!("got {} of {n} frames, then: {e}", got.len()),
        }
    }
    got
}

/// Asserts that no frame arrives within `d`.
pub async fn expect_nothing(c: &mut StompClient, d: Duration) {
    match c.recv_timeout(d).await {
        Ok(None) => {}
        Ok(Some(f)) => panic!(
            "expected nothing, got {} {:?} body {:?}",
            f.command,
            f.headers,
            body_str(&f)
        ),
        Err(e) => panic!("expected nothing, got an error: {e}"),
    }
}

/// Acknowledges a message (no receipt).
pub async fn ack(c: &mut StompClient, m: &Frame) {
    if let Err(e) = c.ack(m).await {
        panic!("ACK failed: {e}");
    }
}

/// Acknowledges a message and waits for the receipt of the ACK.
pub async fn ack_receipt(c: &mut StompClient, m: &Frame) {
    let f = c.ack_frame(m).expect("an ACK frame for this message");
    settle_with_receipt(c, f).await;
}

/// Refuses a message (NACK) and waits for the receipt of the NACK.
pub async fn nack_receipt(c: &mut StompClient, m: &Frame) {
    let f = c.nack_frame(m).expect("a NACK frame for this message");
    settle_with_receipt(c, f).await;
}

/// Sends an ACK or NACK frame with a receipt and waits for it.
async fn settle_with_receipt(c: &mut StompClient, mut f: Frame) {
    let cmd = f.command;
    let id = c.next_receipt_id();
    f.push_header("receipt", id.as_str());
    if let Err(e) = c.send_frame(f).await {
        panic!("writing {cmd}: {e}");
    }
    if let Err(e) = c.wait_receipt(&id).await {
        panic!("receipt for {cmd}: {e}");
    }
}

/// The body as UTF-8 (lossy).
pub fn body_str(f: &Frame) -> String {
    String::from_utf8_lossy(&f.body).into_owned()
}

/// Bodies of `frames` as UTF-8.
pub fn bodies(frames: &[Frame]) -> Vec<String> {
    frames.iter().map(body_str).collect()
}

/// Whether a client error is the end of the connection (closed, reset, or an ERROR frame).
pub fn is_closed(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Closed | ClientError::Io(_) | ClientError::Server { .. }
    )
}

/// Milliseconds since the epoch, as the `expires` header and the scheduler count them.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A body of `len` bytes whose start spells `i` (so order can be checked) padded with `.`.
pub fn numbered_body(i: usize, len: usize) -> Bytes {
    let mut b = format!("{i:08}").into_bytes();
    b.resize(len.max(8), b'.');
    Bytes::from(b)
}

/// The number at the start of a [`numbered_body`].
pub fn body_number(f: &Frame) -> usize {
    let s = std::str::from_utf8(&f.body[..8.min(f.body.len())]).unwrap_or("");
    s.parse()
        .unwrap_or_else(|_| panic!("body does not start with a number: {:?}", body_str(f)))
}

/// The ERROR `message` a refused request (SUBSCRIBE, SEND with a receipt, ...) got; panics if
/// it was not refused with an ERROR.
pub fn refusal(r: Result<(), ClientError>, what: &str) -> String {
    match r {
        Err(ClientError::Server { message, .. }) => message,
        other => panic!("{what}: expected an ERROR, got {other:?}"),
    }
}

/// Subscribes with `headers` and returns the ERROR `message` the node refused it with.
pub async fn subscribe_refused(
    c: &mut StompClient,
    dest: &str,
    headers: &[(&str, &str)],
) -> String {
    let r = c.subscribe(dest, "refused", AckMode::Auto, headers).await;
    refusal(r, &format!("SUBSCRIBE {dest} {headers:?}"))
}

/// Sends with a receipt and `headers` and returns the ERROR `message` the node refused it with.
pub async fn send_refused(c: &mut StompClient, dest: &str, headers: &[(&str, &str)]) -> String {
    let r = c.send(dest, "refused", headers, true).await;
    refusal(r, &format!("SEND {dest} {headers:?}"))
}
