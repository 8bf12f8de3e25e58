//! One framed STOMP connection: the only owner of a byte stream, its buffers and its timers.
//!
//! The server's connection task, the network bridges and the client library all read and
//! write STOMP through this type, so decoding, limits, heart-beats and write deadlines are
//! written once.
//!
//! ```text
//!          read() ──▶ read_buf ──▶ decode() ──▶ Item::Frame / Item::HeartBeat
//!  socket                                                  (limits enforced by the Decoder)
//!          write_some() ◀── write_buf ◀── queue(frame) / queue_heart_beat()
//!
//!  tick(now), at next_deadline():  beat due        → queue an EOL
//!                                  peer silent     → ConnError::PeerSilent
//!                                  write stalled   → ConnError::WriteStalled
//! ```
//!
//! Every async method is cancel-safe: [`Connection::read`] keeps what it read in the buffer,
//! and [`Connection::write_some`] removes from the buffer only what left. A caller can thus
//! put both in one `select!` with its other work, so a peer that stops reading never blocks
//! anything but the bytes waiting for it, and the write deadline closes it in the end.
//!
//! Progress counters ([`Connection::queued_total`], [`Connection::written_total`]) tell a
//! caller when a particular frame has been handed to the kernel (the server acks `auto`
//! subscriptions then).

use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::io::{poll_read_buf, poll_write_buf};

use crate::frame::{Decoder, Frame, FrameError, Item, Limits, Version, encode};
use crate::heartbeat::Agreed;

/// Initial capacity of each buffer, and the least free room before a read.
const BUF: usize = 64 * 1024;

/// Why a connection cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// The socket failed.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent bytes that are not a valid STOMP frame (or break a limit).
    #[error("malformed frame: {0}")]
    Frame(#[from] FrameError),
    /// The peer closed the connection.
    #[error("connection closed by the peer")]
    Closed,
    /// The peer sent nothing (no frame, no heart-beat) for longer than agreed.
    #[error("no data or heart-beat from the peer for {ms} ms")]
    PeerSilent {
        /// Milliseconds since the last byte arrived.
        ms: u64,
    },
    /// Bytes waited for the peer to read them for longer than the write deadline.
    #[error("the peer took no data for {ms} ms while {pending} bytes waited for it")]
    WriteStalled {
        /// Milliseconds since the last byte left.
        ms: u64,
        /// Bytes still waiting.
        pending: usize,
    },
}

/// Timers of a connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timers {
    /// Write an EOL when nothing was written for this long.
    pub send_beat: Option<Duration>,
    /// Fail with [`ConnError::PeerSilent`] when nothing arrived for this long.
    pub read_silence: Option<Duration>,
    /// Fail with [`ConnError::WriteStalled`] when bytes wait and none left for this long.
    pub write_timeout: Option<Duration>,
}

impl Timers {
    /// Timers for agreed heart-beats, with the peer allowed `grace` times its interval.
    pub fn from_heart_beats(agreed: Agreed, grace: f64) -> Timers {
        Timers {
            send_beat: agreed.send,
            read_silence: agreed.recv.map(|d| d.mul_f64(grace.clamp(1.0, 100.0))),
            write_timeout: None,
        }
    }
}

/// What one [`Connection::drive`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Bytes read, if a read completed (`Some(0)`: end of stream).
    pub read: Option<usize>,
    /// Bytes written.
    pub wrote: usize,
}

/// A STOMP connection over any byte stream (TCP, TLS, ...).
#[derive(Debug)]
pub struct Connection<S> {
    io: S,
    read_buf: BytesMut,
    write_buf: BytesMut,
    decoder: Decoder,
    version: Version,
    timers: Timers,
    last_read: Instant,
    /// Last time bytes left, or the write buffer went from empty to non-empty.
    last_write: Instant,
    queued: u64,
    written: u64,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// A connection decoding with `limits` (1.2 escaping until [`Connection::set_version`]).
    pub fn new(io: S, limits: Limits) -> Connection<S> {
        let now = Instant::now();
        Connection {
            io,
            read_buf: BytesMut::with_capacity(BUF),
            write_buf: BytesMut::with_capacity(BUF),
            decoder: Decoder::new(limits),
            version: Version::V1_2,
            timers: Timers::default(),
            last_read: now,
            last_write: now,
            queued: 0,
            written: 0,
        }
    }

    /// The stream (to query addresses or TLS state).
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// Reads and writes with the escaping rules of `v` from now on.
    pub fn set_version(&mut self, v: Version) {
        self.version = v;
        self.decoder.set_version(v);
    }

    /// The version frames are encoded and decoded with.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Replaces the timers (after CONNECT/CONNECTED); the clocks restart now.
    pub fn set_timers(&mut self, timers: Timers) {
        self.timers = timers;
        self.last_read = Instant::now();
        self.last_write = Instant::now();
    }

    /// The timers in force.
    pub fn timers(&self) -> Timers {
        self.timers
    }

    /// Encodes a frame into the write buffer (nothing is written until `write_some`/`flush`).
    pub fn queue(&mut self, frame: &Frame) {
        self.mark_queue_start();
        let before = self.write_buf.len();
        encode(frame, self.version, &mut self.write_buf);
        self.queued += (self.write_buf.len() - before) as u64;
    }

    /// Queues one EOL (a heart-beat).
    pub fn queue_heart_beat(&mut self) {
        self.mark_queue_start();
        self.write_buf.extend_from_slice(b"\n");
        self.queued += 1;
    }

    fn mark_queue_start(&mut self) {
        if self.write_buf.is_empty() {
            // The write deadline counts from when bytes start waiting, not from the last write.
            self.last_write = Instant::now();
        }
    }

    /// Bytes queued and not yet written.
    pub fn buffered(&self) -> usize {
        self.write_buf.len()
    }

    /// Bytes ever queued.
    pub fn queued_total(&self) -> u64 {
        self.queued
    }

    /// Bytes ever handed to the stream.
    pub fn written_total(&self) -> u64 {
        self.written
    }

    /// The next heart-beat or frame already buffered, without reading.
    pub fn decode(&mut self) -> Result<Option<Item>, FrameError> {
        self.decoder.decode(&mut self.read_buf)
    }

    /// Whether bytes of an incomplete frame are buffered.
    pub fn has_partial_frame(&self) -> bool {
        !self.read_buf.is_empty()
    }

    /// When bytes last arrived (or the timers were set).
    pub fn last_read(&self) -> Instant {
        self.last_read
    }

    /// Counts the peer as heard from now: while the server chose not to read (a producer held
    /// by flow control), its silence is not the peer's.
    pub fn excuse_silence(&mut self) {
        self.last_read = Instant::now();
    }

    /// The `receipt` of the frame the last decode error was about, if its headers said.
    pub fn failed_receipt(&self) -> Option<&str> {
        self.decoder.failed_receipt()
    }

    /// Reads once from the stream into the buffer; `Ok(0)` is end of stream. Cancel-safe.
    pub async fn read(&mut self) -> std::io::Result<usize> {
        if self.read_buf.capacity() - self.read_buf.len() < BUF / 8 {
            self.read_buf.reserve(BUF);
        }
        let n = self.io.read_buf(&mut self.read_buf).await?;
        if n > 0 {
            self.last_read = Instant::now();
        }
        Ok(n)
    }

    /// The next frame, skipping heart-beats, reading as needed; [`ConnError::Closed`] at the end
    /// of the stream. Does not write and does not watch timers. Cancel-safe.
    pub async fn read_frame(&mut self) -> Result<Frame, ConnError> {
        loop {
            while let Some(item) = self.decode()? {
                if let Item::Frame(f) = item {
                    return Ok(f);
                }
            }
            if self.read().await? == 0 {
                return Err(ConnError::Closed);
            }
        }
    }

    /// Writes some of the buffer (what the stream takes now). Cancel-safe. Resolves at once
    /// with 0 when nothing is buffered.
    pub async fn write_some(&mut self) -> Result<usize, ConnError> {
        if self.write_buf.is_empty() {
            return Ok(0);
        }
        let n = self.io.write_buf(&mut self.write_buf).await?;
        if n == 0 {
            return Err(ConnError::Closed);
        }
        self.written += n as u64;
        self.last_write = Instant::now();
        Ok(n)
    }

    /// Waits until the stream takes some of the buffer or (when `read`) gives some bytes,
    /// and reports both: the one future a server loop selects on, so that a peer that does
    /// not read never keeps its bytes from being read, nor the other way round. Pending for
    /// ever when there is nothing to write and `read` is false. Cancel-safe: it returns as
    /// soon as either side made progress.
    pub async fn drive(&mut self, read: bool) -> Result<Progress, ConnError> {
        if read && self.read_buf.capacity() - self.read_buf.len() < BUF / 8 {
            self.read_buf.reserve(BUF);
        }
        let p = std::future::poll_fn(|cx| {
            let mut p = Progress::default();
            let mut ready = false;
            if !self.write_buf.is_empty()
                && let Poll::Ready(r) =
                    poll_write_buf(Pin::new(&mut self.io), cx, &mut self.write_buf)
            {
                match r {
                    Ok(0) => return Poll::Ready(Err(ConnError::Closed)),
                    Ok(n) => p.wrote = n,
                    Err(e) => return Poll::Ready(Err(e.into())),
                }
                ready = true;
            }
            if read
                && let Poll::Ready(r) =
                    poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read_buf)
            {
                match r {
                    Ok(n) => p.read = Some(n),
                    Err(e) => return Poll::Ready(Err(e.into())),
                }
                ready = true;
            }
            if ready {
                Poll::Ready(Ok(p))
            } else {
                Poll::Pending
            }
        })
        .await?;
        let now = Instant::now();
        if p.wrote > 0 {
            self.written += p.wrote as u64;
            self.last_write = now;
        }
        if p.read.is_some_and(|n| n > 0) {
            self.last_read = now;
        }
        Ok(p)
    }

    /// Writes the whole buffer and flushes the stream.
    pub async fn flush(&mut self) -> Result<(), ConnError> {
        while !self.write_buf.is_empty() {
            self.write_some().await?;
        }
        self.io.flush().await?;
        Ok(())
    }

    /// Like [`Connection::flush`] but gives up after `limit` (a peer that does not read).
    pub async fn flush_within(&mut self, limit: Duration) -> Result<(), ConnError> {
        let pending = self.buffered();
        match tokio::time::timeout(limit, self.flush()).await {
            Ok(r) => r,
            Err(_) => Err(ConnError::WriteStalled {
                ms: limit.as_millis() as u64,
                pending,
            }),
        }
    }

    /// Shuts the write side down (after a flush).
    pub async fn shutdown(&mut self) -> std::io::Result<()> {
        self.io.shutdown().await
    }

    /// Closes politely after a final frame: flushes within `limit`, sends FIN, then reads and
    /// discards what the peer is still sending (at most `limit`, at most `max_bytes`) before
    /// the socket is dropped. Dropping a socket with unread bytes makes the kernel send a
    /// reset, which can destroy the final frame before the peer reads it.
    pub async fn close_gracefully(&mut self, limit: Duration, max_bytes: usize) {
        let deadline = Instant::now() + limit;
        if tokio::time::timeout_at(deadline, self.flush())
            .await
            .is_err()
        {
            return;
        }
        if self.io.shutdown().await.is_err() {
            return;
        }
        let mut drained = 0usize;
        let mut scratch = [0u8; 16 * 1024];
        while drained < max_bytes {
            match tokio::time::timeout_at(deadline, self.io.read(&mut scratch)).await {
                Ok(Ok(n)) if n > 0 => drained += n,
                _ => break,
            }
        }
    }

    /// When [`Connection::tick`] next has something to do, if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        let beat = match self.timers.send_beat {
            Some(d) if self.write_buf.is_empty() => Some(self.last_write + d),
            _ => None,
        };
        let silence = self.timers.read_silence.map(|d| self.last_read + d);
        let stall = match self.timers.write_timeout {
            Some(d) if !self.write_buf.is_empty() => Some(self.last_write + d),
            _ => None,
        };
        [beat, silence, stall].into_iter().flatten().min()
    }

    /// Does what the timers ask at `now`: queues a heart-beat when one is due, fails when the
    /// peer has been silent or has not taken bytes for too long.
    pub fn tick(&mut self, now: Instant) -> Result<(), ConnError> {
        if let Some(d) = self.timers.read_silence
            && now >= self.last_read + d
        {
            return Err(ConnError::PeerSilent {
                ms: now.duration_since(self.last_read).as_millis() as u64,
            });
        }
        if let Some(d) = self.timers.write_timeout
            && !self.write_buf.is_empty()
            && now >= self.last_write + d
        {
            return Err(ConnError::WriteStalled {
                ms: now.duration_since(self.last_write).as_millis() as u64,
                pending: self.write_buf.len(),
            });
        }
        if let Some(d) = self.timers.send_beat
            && self.write_buf.is_empty()
            && now >= self.last_write + d
        {
            self.queue_heart_beat();
        }
        Ok(())
    }
}

/// Sleeps until `deadline`, or for ever when there is none (for a `select!` branch).
pub async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Command;

    #[tokio::test]
    async fn frames_cross_and_counters_follow() -> Result<(), ConnError> {
        let (a, b) = tokio::io::duplex(1 << 16);
        let mut a = Connection::new(a, Limits::default());
        let mut b = Connection::new(b, Limits::default());
        a.queue(&Frame::new(Command::Send).with_header("destination", "/queue/x"));
        let queued = a.queued_total();
        assert!(queued > 0 && a.buffered() as u64 == queued);
        a.flush().await?;
        assert_eq!(a.written_total(), queued);
        let f = b.read_frame().await?;
        assert_eq!(f.header("destination"), Some("/queue/x"));
        drop(a);
        assert!(matches!(b.read_frame().await, Err(ConnError::Closed)));
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn timers_beat_and_detect_silence_and_stalls() -> Result<(), ConnError> {
        // A peer that never reads: a tiny pipe fills up at once.
        let (a, _b) = tokio::io::duplex(16);
        let mut c = Connection::new(a, Limits::default());
        c.set_timers(Timers {
            send_beat: Some(Duration::from_millis(100)),
            read_silence: Some(Duration::from_millis(1000)),
            write_timeout: Some(Duration::from_millis(300)),
        });
        let t0 = Instant::now();
        assert_eq!(c.next_deadline(), Some(t0 + Duration::from_millis(100)));
        tokio::time::advance(Duration::from_millis(100)).await;
        c.tick(Instant::now())?;
        assert_eq!(c.buffered(), 1, "a heart-beat is queued");
        c.queue(&Frame::new(Command::Send).with_body(vec![b'x'; 100]));
        c.write_some().await?;
        assert!(c.buffered() > 0, "the pipe takes only 16 bytes");
        tokio::time::advance(Duration::from_millis(300)).await;
        assert!(matches!(
            c.tick(Instant::now()),
            Err(ConnError::WriteStalled { .. })
        ));
        c.set_timers(Timers {
            read_silence: Some(Duration::from_millis(50)),
            ..Timers::default()
        });
        tokio::time::advance(Duration::from_millis(50)).await;
        assert!(matches!(
            c.tick(Instant::now()),
            Err(ConnError::PeerSilent { ms: 50 })
        ));
        Ok(())
    }
}
