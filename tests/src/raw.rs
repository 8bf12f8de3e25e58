//! [`RawConn`]: a STOMP connection at the byte level, for tests that must send what a
//! well-behaved client never would and watch every heart-beat and close.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::BytesMut;
use mq_shared::frame::{Command as StompCommand, Decoder, Frame, Item, Limits, Version, encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::SOON;

/// What a raw connection read next.
#[derive(Debug)]
pub enum RawEvent {
    /// A frame.
    Frame(Frame),
    /// A heart-beat (one EOL between frames).
    HeartBeat,
    /// The server closed the connection (EOF or reset).
    Closed,
    /// Nothing within the timeout.
    Timeout,
}

/// Moves the next complete item read into `buf` to `pending`: whether there was one. Panics
/// when the server sent an invalid frame.
fn decode_next(decoder: &mut Decoder, buf: &mut BytesMut, pending: &mut VecDeque<Item>) -> bool {
    match decoder.decode(buf) {
        Ok(Some(item)) => {
            pending.push_back(item);
            true
        }
        Ok(None) => false,
        Err(e) => panic!("the server sent an invalid frame: {e}"),
    }
}

/// A STOMP connection at the byte level: sends exactly the bytes a test gives it.
pub struct RawConn {
    stream: TcpStream,
    buf: BytesMut,
    decoder: Decoder,
    version: Version,
    pending: VecDeque<Item>,
}

impl RawConn {
    /// Opens a TCP connection; no STOMP is spoken yet.
    pub async fn open(addr: &str) -> RawConn {
        let stream = match TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(e) => panic!("TCP connect to {addr} failed: {e}"),
        };
        RawConn::from_stream(stream)
    }

    /// Opens a TCP connection whose receive buffer (`SO_RCVBUF`, set before connecting, so the
    /// kernel never widens it) is about `bytes`: once the test stops reading, the peer's
    /// writes stall after a few KiB instead of filling megabytes of buffers.
    pub async fn open_with_recv_buffer(addr: &str, bytes: u32) -> RawConn {
        let sock_addr: std::net::SocketAddr = match addr.parse() {
            Ok(a) => a,
            Err(e) => panic!("{addr} is not IP:PORT: {e}"),
        };
        let socket = match sock_addr {
            std::net::SocketAddr::V4(_) => TcpSocket::new_v4(),
            std::net::SocketAddr::V6(_) => TcpSocket::new_v6(),
        }
        .and_then(|s| s.set_recv_buffer_size(bytes).map(|()| s));
        let stream = match socket {
            Ok(s) => s.connect(sock_addr).await,
            Err(e) => Err(e),
        };
        match stream {
            Ok(s) => RawConn::from_stream(s),
            Err(e) => panic!("TCP connect to {addr} (receive buffer {bytes}) failed: {e}"),
        }
    }

    fn from_stream(stream: TcpStream) -> RawConn {
        let _ = stream.set_nodelay(true);
        RawConn {
            stream,
            buf: BytesMut::with_capacity(64 * 1024),
            decoder: Decoder::new(Limits {
                max_frame_size: 1 << 30,
                max_headers: 100_000,
                max_header_length: 1 << 20,
            }),
            version: Version::V1_2,
            pending: VecDeque::new(),
        }
    }

    /// Opens a connection and sends CONNECT with `accept-version` (`None`: a 1.0 CONNECT
    /// without the header) and `heart-beat`; returns the CONNECTED frame.
    pub async fn connect(
        addr: &str,
        accept_version: Option<&str>,
        heart_beat: &str,
    ) -> (RawConn, Frame) {
        RawConn::open(addr)
            .await
            .handshake(accept_version, heart_beat)
            .await
    }

    /// Sends CONNECT on an opened connection (as [`RawConn::connect`] does) and returns the
    /// CONNECTED frame.
    pub async fn handshake(
        self,
        accept_version: Option<&str>,
        heart_beat: &str,
    ) -> (RawConn, Frame) {
        let mut c = self;
        let mut f = Frame::new(StompCommand::Connect).with_header("host", "localhost");
        if let Some(v) = accept_version {
            f.push_header("accept-version", v);
            f.push_header("heart-beat", heart_beat);
        }
        c.send_frame(&f).await;
        let connected = c.frame(SOON).await;
        assert_eq!(
            connected.command,
            StompCommand::Connected,
            "expected CONNECTED, got {connected:?}"
        );
        c.version = match connected.header("version") {
            Some("1.1") => Version::V1_1,
            Some("1.2") => Version::V1_2,
            _ => Version::V1_0,
        };
        c.decoder.set_version(c.version);
        (c, connected)
    }

    /// Writes raw bytes. Errors are returned, not fatal: a server that already closed is
    /// something tests of bad input expect.
    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// Encodes and writes a frame with the negotiated version's escaping; panics on error.
    pub async fn send_frame(&mut self, f: &Frame) {
        let mut b = BytesMut::new();
        encode(f, self.version, &mut b);
        if let Err(e) = self.write(&b).await {
            panic!("writing {} failed: {e}", f.command);
        }
    }

    /// Closes our sending side (the server sees EOF) and keeps reading.
    pub async fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown().await;
    }

    /// The next frame, heart-beat, close or timeout.
    pub async fn next(&mut self, timeout: Duration) -> RawEvent {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(item) = self.pending.pop_front() {
                return match item {
                    Item::Frame(f) => RawEvent::Frame(f),
                    Item::HeartBeat => RawEvent::HeartBeat,
                };
            }
            if decode_next(&mut self.decoder, &mut self.buf, &mut self.pending) {
                continue;
            }
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Err(_) => return RawEvent::Timeout,
                Ok(Ok(0)) | Ok(Err(_)) => return RawEvent::Closed,
                Ok(Ok(_)) => {}
            }
        }
    }

    /// The next frame, skipping heart-beats; panics on close or timeout.
    pub async fn frame(&mut self, timeout: Duration) -> Frame {
        loop {
            match self.next(timeout).await {
                RawEvent::Frame(f) => return f,
                RawEvent::HeartBeat => {}
                other => panic!("expected a frame, got {other:?}"),
            }
        }
    }

    /// Expects an ERROR frame with a non-empty `message` header (skipping other frames and
    /// heart-beats), then the server closing the connection, all within `timeout`. Returns the
    /// ERROR frame.
    pub async fn expect_error_then_close(&mut self, timeout: Duration) -> Frame {
        let deadline = tokio::time::Instant::now() + timeout;
        let left = || deadline.saturating_duration_since(tokio::time::Instant::now());
        let error = loop {
            match self.next(left()).await {
                RawEvent::Frame(f) if f.command == StompCommand::Error => break f,
                RawEvent::Frame(_) | RawEvent::HeartBeat => {}
                other => panic!("expected an ERROR frame, got {other:?}"),
            }
        };
        assert!(
            error.header("message").is_some_and(|m| !m.is_empty()),
            "ERROR frame without a message header: {error:?}"
        );
        self.expect_closed(left()).await;
        error
    }

    /// Expects the server to close the connection within `timeout`; frames and heart-beats
    /// before the close are skipped and returned.
    pub async fn expect_closed(&mut self, timeout: Duration) -> Vec<Frame> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut frames = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                RawEvent::Closed => return frames,
                RawEvent::Frame(f) => frames.push(f),
                RawEvent::HeartBeat => {}
                RawEvent::Timeout => panic!(
                    "the server did not close the connection within {timeout:?} (frames meanwhile: {frames:?})"
                ),
            }
        }
    }

    /// Reads and discards until the server closes; `Ok` with the bytes discarded when it
    /// closed in order (FIN), `Err` when the connection was reset (or `TimedOut`): tells an
    /// orderly close from a reset, which [`RawEvent::Closed`] does not.
    pub async fn until_closed(&mut self, timeout: Duration) -> std::io::Result<usize> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut skipped = self.buf.len();
        self.buf.clear();
        self.pending.clear();
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Err(_) => return Err(std::io::ErrorKind::TimedOut.into()),
                Ok(Ok(0)) => return Ok(skipped),
                Ok(Ok(n)) => {
                    skipped += n;
                    self.buf.clear();
                }
                Ok(Err(e)) => return Err(e),
            }
        }
    }

    /// Keeps writing `data` (in 16 KiB pieces, until it is all written or a write fails)
    /// while reading, as a client streaming a long body does; returns what was read first
    /// (heart-beats skipped: a frame, the close, or a timeout) and how many bytes of `data`
    /// had been written by then.
    pub async fn next_while_writing(
        &mut self,
        data: &[u8],
        timeout: Duration,
    ) -> (RawEvent, usize) {
        let deadline = tokio::time::Instant::now() + timeout;
        let (mut rd, mut wr) = self.stream.split();
        let sent = std::cell::Cell::new(0usize);
        let mut writing = true;
        let writer = async {
            for piece in data.chunks(16 * 1024) {
                if wr.write_all(piece).await.is_err() {
                    break;
                }
                sent.set(sent.get() + piece.len());
            }
        };
        tokio::pin!(writer);
        let event = 'read: loop {
            while let Some(item) = self.pending.pop_front() {
                if let Item::Frame(f) = item {
                    break 'read RawEvent::Frame(f);
                }
            }
            if decode_next(&mut self.decoder, &mut self.buf, &mut self.pending) {
                continue;
            }
            tokio::select! {
                () = &mut writer, if writing => writing = false,
                r = tokio::time::timeout_at(deadline, rd.read_buf(&mut self.buf)) => match r {
                    Err(_) => break RawEvent::Timeout,
                    Ok(Ok(0)) | Ok(Err(_)) => break RawEvent::Closed,
                    Ok(Ok(_)) => {}
                },
            }
        };
        (event, sent.get())
    }
}
