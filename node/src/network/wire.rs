//! One bridge connection to a peer's transport connector: STOMP 1.2 over TCP.
//!
//! The bridge task owns the read half and reads frames itself (cancel-safe: bytes stay in the
//! link's buffer). Writes go through a channel to a writer task that coalesces frames and
//! writes heart-beats when idle, so the bridge never blocks on a full socket while the peer
//! is itself blocked writing to us. A peer that stays silent past three of its heart-beat
//! intervals is taken for dead.

use std::time::Duration;

use bytes::BytesMut;
use mq_shared::frame::{Command, Decoder, Frame, Item, Limits, Version, encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout_at};

use super::BridgeError;

/// Frames from a peer may be large: it enforced its own limits on what it accepted.
const LINK_LIMITS: Limits = Limits {
    max_frame_size: 1 << 30,
    max_headers: 100_000,
    max_header_length: 1 << 20,
};

/// The peer may be this many of its heart-beat intervals late before the link is dropped.
const SILENCE_FACTOR: u32 = 3;

/// A connected bridge link.
pub struct Link {
    reader: OwnedReadHalf,
    decoder: Decoder,
    buf: BytesMut,
    out: mpsc::UnboundedSender<Frame>,
    /// The peer's CONNECTED frame.
    pub connected: Frame,
    recv_beat: Option<Duration>,
    last_read: Instant,
}

impl Link {
    /// Connects to `addr`, sends CONNECT with `headers` and waits for CONNECTED, all within
    /// `limit`. Heart-beats of `heartbeat_ms` are offered both ways.
    pub async fn connect(
        addr: &str,
        headers: Vec<(String, String)>,
        heartbeat_ms: u64,
        limit: Duration,
    ) -> Result<Link, BridgeError> {
        match tokio::time::timeout(limit, Self::handshake(addr, headers, heartbeat_ms)).await {
            Ok(r) => r,
            Err(_) => Err(BridgeError::Timeout(format!(
                "no CONNECTED from {addr} within {} ms",
                limit.as_millis()
            ))),
        }
    }

    async fn handshake(
        addr: &str,
        headers: Vec<(String, String)>,
        hb: u64,
    ) -> Result<Link, BridgeError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| BridgeError::Connect(format!("{addr}: {e}")))?;
        let _ = stream.set_nodelay(true);
        let (reader, mut writer) = stream.into_split();
        let mut connect = Frame::new(Command::Connect)
            .with_header("accept-version", "1.2")
            .with_header("host", "localhost")
            .with_header("heart-beat", format!("{hb},{hb}"));
        for (k, v) in headers {
            connect.push_header(k, v);
        }
        let mut b = BytesMut::new();
        encode(&connect, Version::V1_2, &mut b);
        writer.write_all(&b).await?;
        let mut link = Link {
            reader,
            decoder: Decoder::new(LINK_LIMITS),
            buf: BytesMut::with_capacity(64 * 1024),
            out: mpsc::unbounded_channel().0,
            connected: Frame::new(Command::Connected),
            recv_beat: None,
            last_read: Instant::now(),
        };
        let connected = link.read().await?;
        match connected.command {
            Command::Connected => {}
            Command::Error => return Err(server_error(&connected)),
            other => {
                return Err(BridgeError::Protocol(format!(
                    "expected CONNECTED, got {other}"
                )));
            }
        }
        if connected.header("version") != Some("1.2") {
            return Err(BridgeError::Protocol(format!(
                "peer chose STOMP {:?}; bridges speak 1.2",
                connected.header("version")
            )));
        }
        let (sx, sy) = connected
            .header("heart-beat")
            .and_then(|v| {
                let (a, b) = v.split_once(',')?;
                Some((a.trim().parse::<u64>().ok()?, b.trim().parse::<u64>().ok()?))
            })
            .unwrap_or((0, 0));
        let send_beat = (hb > 0 && sy > 0).then(|| Duration::from_millis(hb.max(sy)));
        link.recv_beat = (hb > 0 && sx > 0).then(|| Duration::from_millis(hb.max(sx)));
        let (tx, rx) = mpsc::unbounded_channel();
        link.out = tx;
        link.connected = connected;
        tokio::spawn(write_loop(writer, rx, send_beat));
        Ok(link)
    }

    /// The next frame from the peer (heart-beats skipped). Cancel-safe.
    pub async fn read(&mut self) -> Result<Frame, BridgeError> {
        loop {
            match self.decoder.decode(&mut self.buf)? {
                Some(Item::Frame(f)) => return Ok(f),
                Some(Item::HeartBeat) => continue,
                None => {}
            }
            if self.buf.capacity() - self.buf.len() < 8 * 1024 {
                self.buf.reserve(64 * 1024);
            }
            let read = self.reader.read_buf(&mut self.buf);
            let n = match self.recv_beat {
                None => read.await?,
                Some(d) => match timeout_at(self.last_read + d * SILENCE_FACTOR, read).await {
                    Ok(n) => n?,
                    Err(_) => {
                        return Err(BridgeError::Timeout(format!(
                            "peer silent for {} ms (heart-beat {} ms)",
                            self.last_read.elapsed().as_millis(),
                            d.as_millis()
                        )));
                    }
                },
            };
            if n == 0 {
                return Err(BridgeError::Closed);
            }
            self.last_read = Instant::now();
        }
    }

    /// Queues a frame for the writer. Fails once the writer has stopped (socket error).
    pub fn send(&self, f: Frame) -> Result<(), BridgeError> {
        self.out.send(f).map_err(|_| BridgeError::Closed)
    }
}

fn server_error(f: &Frame) -> BridgeError {
    BridgeError::Peer(
        f.header("message")
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&f.body).into_owned()),
    )
}

/// Turns an ERROR frame from the peer into an error.
pub fn peer_error(f: &Frame) -> BridgeError {
    server_error(f)
}

/// Writes queued frames, coalesced, and a heart-beat EOL whenever nothing was written for
/// `beat`. Ends when the link is dropped or the socket fails (closing the write half).
async fn write_loop(
    mut w: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Frame>,
    beat: Option<Duration>,
) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        let next = match beat {
            None => rx.recv().await,
            Some(d) => match tokio::time::timeout(d, rx.recv()).await {
                Ok(f) => f,
                Err(_) => {
                    if w.write_all(b"\n").await.is_err() {
                        return;
                    }
                    continue;
                }
            },
        };
        let Some(f) = next else {
            let _ = w.shutdown().await;
            return;
        };
        encode(&f, Version::V1_2, &mut buf);
        while buf.len() < 1 << 20 {
            match rx.try_recv() {
                Ok(f) => encode(&f, Version::V1_2, &mut buf),
                Err(_) => break,
            }
        }
        if w.write_all(&buf).await.is_err() {
            return;
        }
        buf.clear();
    }
}
