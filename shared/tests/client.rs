//! The STOMP client against a scripted in-test server on a loopback socket.

#![cfg(feature = "client")]
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mq_shared::client::{AckMode, ClientError, ConnectOptions, StompClient};
use mq_shared::frame::{Command, Decoder, Frame, Item, Limits, Version, encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Bound on anything a test waits for.
const LIMIT: Duration = Duration::from_secs(5);

/// The server side of one connection, as a test script sees it.
struct Peer {
    stream: TcpStream,
    buf: BytesMut,
    decoder: Decoder,
    version: Version,
}

impl Peer {
    /// The next item, or `None` once the client has closed the connection.
    async fn item(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.decoder.decode(&mut self.buf).unwrap() {
                return Some(item);
            }
            let n = tokio::time::timeout(LIMIT, self.stream.read_buf(&mut self.buf))
                .await
                .expect("client went silent")
                .unwrap();
            if n == 0 {
                return None;
            }
        }
    }

    /// The next frame, skipping heart-beats.
    async fn frame(&mut self) -> Frame {
        loop {
            match self.item().await {
                Some(Item::Frame(f)) => return f,
                Some(Item::HeartBeat) => {}
                None => panic!("client closed the connection"),
            }
        }
    }

    async fn send(&mut self, frame: &Frame) {
        let mut out = BytesMut::new();
        encode(frame, self.version, &mut out);
        self.raw(&out).await;
    }

    async fn raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    async fn receipt(&mut self, frame: &Frame) {
        let id = frame.header("receipt").expect("frame asks for a receipt");
        self.send(&Frame::new(Command::Receipt).with_header("receipt-id", id))
            .await;
    }

    /// Reads CONNECT, answers CONNECTED with `version` and `heart_beat`, returns the CONNECT.
    async fn handshake(&mut self, version: Version, heart_beat: &str) -> Frame {
        let connect = self.frame().await;
        assert_eq!(connect.command, Command::Connect);
        let connected = Frame::new(Command::Connected)
            .with_header("version", version.as_str())
            .with_header("heart-beat", heart_beat)
            .with_header("server", "test/1");
        self.send(&connected).await;
        self.version = version;
        self.decoder.set_version(version);
        connect
    }
}

/// Serves one connection with `script`; returns the address to connect to.
async fn serve<F, Fut>(script: F) -> (String, JoinHandle<()>)
where
    F: FnOnce(Peer) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        script(Peer {
            stream,
            buf: BytesMut::new(),
            decoder: Decoder::new(Limits::default()),
            version: Version::V1_2,
        })
        .await;
    });
    (addr, task)
}

/// Connects with default options under the test's time bound.
async fn connect(addr: &str) -> StompClient {
    tokio::time::timeout(LIMIT, StompClient::connect(addr, ConnectOptions::default()))
        .await
        .unwrap()
        .unwrap()
}

async fn finish(task: JoinHandle<()>) {
    tokio::time::timeout(LIMIT, task).await.unwrap().unwrap();
}

fn message(id: &str, body: &'static str) -> Frame {
    Frame::new(Command::Message)
        .with_header("destination", "/queue/a")
        .with_header("subscription", "s1")
        .with_header("message-id", id)
        .with_header("ack", format!("ack-{id}"))
        .with_body(body)
}

#[tokio::test]
async fn connect_sends_options_and_reads_connected() {
    let (addr, task) = serve(|mut peer| async move {
        let connect = peer.handshake(Version::V1_1, "0,0").await;
        assert_eq!(connect.header("accept-version"), Some("1.0,1.1,1.2"));
        assert_eq!(connect.header("host"), Some("vh"));
        assert_eq!(connect.header("login"), Some("u"));
        assert_eq!(connect.header("passcode"), Some("p:w"));
        assert_eq!(connect.header("heart-beat"), Some("0,0"));
        assert_eq!(connect.header("client-id"), Some("c1"));
    })
    .await;
    let opts = ConnectOptions {
        host: Some("vh".into()),
        login: Some("u".into()),
        passcode: Some("p:w".into()),
        headers: vec![("client-id".into(), "c1".into())],
        ..ConnectOptions::default()
    };
    let client = StompClient::connect(&format!("tcp://{addr}"), opts)
        .await
        .unwrap();
    assert_eq!(client.version(), Version::V1_1);
    assert_eq!(client.connected().header("server"), Some("test/1"));
    finish(task).await;
}

#[tokio::test]
async fn connect_refused_with_error_frame() {
    let (addr, task) = serve(|mut peer| async move {
        peer.frame().await;
        peer.send(
            &Frame::new(Command::Error)
                .with_header("message", "bad credentials")
                .with_body("login refused"),
        )
        .await;
    })
    .await;
    match StompClient::connect(&addr, ConnectOptions::default()).await {
        Err(ClientError::Server { message, frame }) => {
            assert_eq!(message, "bad credentials");
            assert_eq!(&frame.body[..], b"login refused");
        }
        other => panic!("expected a server error, got {other:?}"),
    }
    finish(task).await;
}

#[tokio::test]
async fn connect_times_out_on_a_silent_server() {
    let (addr, task) = serve(|mut peer| async move {
        peer.frame().await;
        // Never answers; waits for the client to give up and close.
        assert!(peer.item().await.is_none());
    })
    .await;
    let opts = ConnectOptions {
        connect_timeout: Duration::from_millis(100),
        ..ConnectOptions::default()
    };
    let result = StompClient::connect(&addr, opts).await;
    assert!(matches!(result, Err(ClientError::Timeout(_))), "{result:?}");
    finish(task).await;
}

#[tokio::test]
async fn send_with_receipt_keeps_messages_that_arrive_first() {
    let (addr, task) = serve(|mut peer| async move {
        peer.handshake(Version::V1_2, "0,0").await;
        let send = peer.frame().await;
        assert_eq!(send.command, Command::Send);
        assert_eq!(send.header("destination"), Some("/queue/a"));
        assert_eq!(send.header("persistent"), Some("true"));
        assert_eq!(&send.body[..], b"a\0b");
        peer.send(&message("1", "first")).await;
        peer.receipt(&send).await;
        peer.send(&message("2", "second")).await;
    })
    .await;
    let mut client = connect(&addr).await;
    client
        .send(
            "/queue/a",
            Bytes::from_static(b"a\0b"),
            &[("persistent", "true")],
            true,
        )
        .await
        .unwrap();
    let first = client.recv().await.unwrap();
    assert_eq!(&first.body[..], b"first");
    let second = client.recv().await.unwrap();
    assert_eq!(&second.body[..], b"second");
    finish(task).await;
}

#[tokio::test]
async fn pipelined_receipts_arrive_in_any_order() {
    let (addr, task) = serve(|mut peer| async move {
        peer.handshake(Version::V1_2, "0,0").await;
        let mut sends = Vec::new();
        for _ in 0..3 {
            sends.push(peer.frame().await);
        }
        for send in sends.iter().rev() {
            peer.receipt(send).await;
        }
    })
    .await;
    let mut client = connect(&addr).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let id = client.next_receipt_id();
        let frame = Frame::new(Command::Send)
            .with_header("destination", "/queue/a")
            .with_header("receipt", id.as_str())
            .with_body(format!("m{i}"));
        client.queue_frame(&frame);
        ids.push(id);
    }
    assert_eq!(
        ids.iter().collect::<std::collections::HashSet<_>>().len(),
        3
    );
    client.flush().await.unwrap();
    for id in &ids {
        client.wait_receipt(id).await.unwrap();
    }
    finish(task).await;
}

#[tokio::test]
async fn subscribe_and_ack_in_1_2() {
    let (addr, task) = serve(|mut peer| async move {
        peer.handshake(Version::V1_2, "0,0").await;
        let sub = peer.frame().await;
        assert_eq!(sub.command, Command::Subscribe);
        assert_eq!(sub.header("destination"), Some("/queue/a"));
        assert_eq!(sub.header("id"), Some("s1"));
        assert_eq!(sub.header("ack"), Some("client-individual"));
        assert_eq!(sub.header("activemq.prefetchSize"), Some("10"));
        peer.receipt(&sub).await;
        peer.send(&message("7", "hello")).await;
        let ack = peer.frame().await;
        assert_eq!(ack.command, Command::Ack);
        assert_eq!(ack.header("id"), Some("ack-7"));
        peer.send(&message("8", "again")).await;
        let nack = peer.frame().await;
        assert_eq!(nack.command, Command::Nack);
        assert_eq!(nack.header("id"), Some("ack-8"));
        let unsub = peer.frame().await;
        assert_eq!(unsub.command, Command::Unsubscribe);
        assert_eq!(unsub.header("id"), Some("s1"));
        peer.receipt(&unsub).await;
    })
    .await;
    let mut client = connect(&addr).await;
    client
        .subscribe(
            "/queue/a",
            "s1",
            AckMode::ClientIndividual,
            &[("activemq.prefetchSize", "10")],
        )
        .await
        .unwrap();
    let msg = client.recv().await.unwrap();
    assert_eq!(&msg.body[..], b"hello");
    client.ack(&msg).await.unwrap();
    let msg = client.recv().await.unwrap();
    client.nack(&msg).await.unwrap();
    client.unsubscribe("s1").await.unwrap();
    finish(task).await;
}

#[tokio::test]
async fn ack_in_1_1_and_1_0_names_the_message() {
    for version in [Version::V1_1, Version::V1_0] {
        let (addr, task) = serve(move |mut peer| async move {
            peer.handshake(version, "0,0").await;
            peer.send(&message("9", "x")).await;
            let ack = peer.frame().await;
            assert_eq!(ack.command, Command::Ack);
            assert_eq!(ack.header("message-id"), Some("9"));
            assert_eq!(ack.header("subscription"), Some("s1"));
            assert_eq!(ack.header("id"), None);
        })
        .await;
        let mut client = connect(&addr).await;
        assert_eq!(client.version(), version);
        let msg = client.recv().await.unwrap();
        client.ack(&msg).await.unwrap();
        if version == Version::V1_0 {
            assert!(matches!(
                client.nack(&msg).await,
                Err(ClientError::Protocol(_))
            ));
        }
        finish(task).await;
    }
}

#[tokio::test]
async fn transactions_wait_for_receipts() {
    let (addr, task) = serve(|mut peer| async move {
        peer.handshake(Version::V1_2, "0,0").await;
        for expected in [Command::Begin, Command::Commit, Command::Abort] {
            let frame = peer.frame().await;
            assert_eq!(frame.command, expected);
            assert_eq!(frame.header("transaction"), Some("tx1"));
            peer.receipt(&frame).await;
        }
    })
    .await;
    let mut client = connect(&addr).await;
    client.begin("tx1").await.unwrap();
    client.commit("tx1").await.unwrap();
    client.abort("tx1").await.unwrap();
    finish(task).await;
}

#[tokio::test]
async fn error_frame_while_waiting_for_a_receipt() {
    let (addr, task) = serve(|mut peer| async move {
        peer.handshake(Version::V1_2, "0,0").await;
        let send = peer.frame().await;
        let id = send.header("receipt").unwrap().to_owned();
        peer.send(
            &Frame::new(Command::Error)
                .with_header("message", "queue is full")
                .with_header("receipt-id", id),
        )
        .await;
    })
    .await;
    let mut client = connect(&addr).await;
    match client.send("/queue/a", "x", &[], true).await {
        Err(ClientError::Server { message, .. }) => assert_eq!(message, "queue is full"),
        other => panic!("expected a server error, got {other:?}"),
    }
    // The server then closed the connection.
    assert!(matches!(client.recv().await, Err(ClientError::Closed)));
    finish(task).await;
}

#[tokio::test]
async fn recv_timeout_keeps_a_partly_read_frame() {
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let (addr, task) = serve(|mut peer| async move {
        peer.handshake(Version::V1_2, "0,0").await;
        let mut bytes = BytesMut::new();
        encode(&message("1", "split body"), Version::V1_2, &mut bytes);
        let (head, tail) = bytes.split_at(bytes.len() / 2);
        peer.raw(head).await;
        go_rx.await.unwrap();
        peer.raw(tail).await;
    })
    .await;
    let mut client = connect(&addr).await;
    let first = client.recv_timeout(Duration::from_millis(100)).await;
    assert!(matches!(first, Ok(None)), "{first:?}");
    go_tx.send(()).unwrap();
    let msg = client.recv_timeout(LIMIT).await.unwrap().unwrap();
    assert_eq!(&msg.body[..], b"split body");
    assert_eq!(msg.header("message-id"), Some("1"));
    finish(task).await;
}

#[tokio::test]
async fn client_beats_while_it_waits() {
    let (addr, task) = serve(|mut peer| async move {
        // The server wants a beat every 20 ms at least.
        peer.handshake(Version::V1_2, "0,20").await;
        // Answer only once two heart-beats have come in.
        let mut beats = 0;
        while beats < 2 {
            match peer.item().await {
                Some(Item::HeartBeat) => beats += 1,
                other => panic!("expected a heart-beat, got {other:?}"),
            }
        }
        peer.send(&message("1", "after beats")).await;
    })
    .await;
    let opts = ConnectOptions {
        heart_beat: (10, 0),
        ..ConnectOptions::default()
    };
    let mut client = StompClient::connect(&addr, opts).await.unwrap();
    let msg = client.recv_timeout(LIMIT).await.unwrap().unwrap();
    assert_eq!(&msg.body[..], b"after beats");
    finish(task).await;
}

#[tokio::test]
async fn silent_server_past_its_heart_beat_times_out() {
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let (addr, task) = serve(|mut peer| async move {
        // Promises a beat every 20 ms, then sends none.
        peer.handshake(Version::V1_2, "20,0").await;
        let _ = done_rx.await;
    })
    .await;
    let opts = ConnectOptions {
        heart_beat: (0, 10),
        ..ConnectOptions::default()
    };
    let mut client = StompClient::connect(&addr, opts).await.unwrap();
    let result = client.recv_timeout(LIMIT).await;
    assert!(matches!(result, Err(ClientError::Timeout(_))), "{result:?}");
    done_tx.send(()).unwrap();
    finish(task).await;
}

#[tokio::test]
async fn server_heart_beats_are_skipped() {
    let (addr, task) = serve(|mut peer| async move {
        peer.handshake(Version::V1_2, "0,0").await;
        peer.raw(b"\n\r\n\n").await;
        peer.send(&message("1", "x")).await;
    })
    .await;
    let mut client = connect(&addr).await;
    let msg = client.recv().await.unwrap();
    assert_eq!(msg.command, Command::Message);
    finish(task).await;
}

#[tokio::test]
async fn garbage_from_the_server_is_a_frame_error() {
    let (addr, task) = serve(|mut peer| async move {
        peer.handshake(Version::V1_2, "0,0").await;
        peer.raw(b"HTTP/1.1 400 Bad Request\r\n").await;
    })
    .await;
    let mut client = connect(&addr).await;
    assert!(matches!(client.recv().await, Err(ClientError::Frame(_))));
    finish(task).await;
}

#[tokio::test]
async fn disconnect_waits_for_its_receipt() {
    let (addr, task) = serve(|mut peer| async move {
        peer.handshake(Version::V1_2, "0,0").await;
        let frame = peer.frame().await;
        assert_eq!(frame.command, Command::Disconnect);
        peer.receipt(&frame).await;
        assert!(
            peer.item().await.is_none(),
            "client closes after the receipt"
        );
    })
    .await;
    let client = connect(&addr).await;
    client.disconnect().await.unwrap();
    finish(task).await;
}

#[tokio::test]
async fn disconnect_accepts_a_server_that_just_closes() {
    let (addr, task) = serve(|mut peer| async move {
        peer.handshake(Version::V1_2, "0,0").await;
        let frame = peer.frame().await;
        assert_eq!(frame.command, Command::Disconnect);
    })
    .await;
    let client = connect(&addr).await;
    client.disconnect().await.unwrap();
    finish(task).await;
}

#[tokio::test]
async fn closed_connection_is_reported() {
    let (addr, task) = serve(|mut peer| async move {
        peer.handshake(Version::V1_2, "0,0").await;
    })
    .await;
    let mut client = connect(&addr).await;
    finish(task).await;
    assert!(matches!(client.recv().await, Err(ClientError::Closed)));
}
