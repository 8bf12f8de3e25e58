//! STOMP over WebSocket: `ws://HOST:PORT` transport connectors, for browsers and other
//! WebSocket clients (stompjs, ActiveMQ's and RabbitMQ's `ws://` clients).
//!
//! ```text
//! serve (accept loop) ──▶ HTTP upgrade (subprotocol v12.stomp | v11.stomp | v10.stomp)
//!                      ──▶ WsStream (AsyncRead + AsyncWrite over the WebSocket)
//!                      ──▶ connection::run, the same task and Session as a TCP connection
//! ```
//!
//! - One STOMP frame per WebSocket message, as stompjs and ActiveMQ expect: the write side of
//!   [`WsStream`] cuts the byte stream the connection writes into whole frames (and each
//!   heart-beat EOL into a message of its own); messages are text when the frame is UTF-8,
//!   binary otherwise. The read side concatenates incoming messages, text or binary, so a
//!   client may also split a frame over several messages or put several in one.
//! - The client offers subprotocols in `Sec-WebSocket-Protocol`; the first STOMP one it
//!   offers is chosen. A client offering none is served STOMP all the same; one offering only
//!   others is refused with HTTP 400.
//! - The upgrade must complete within the node's connect timeout. Connections count against
//!   `maximum-connections` with the TCP ones; one over the limit gets an ERROR frame and is
//!   closed, as on TCP.
//! - A WebSocket message larger than the frame limit (plus 64 KiB of slack) closes the
//!   connection without a STOMP ERROR: the WebSocket layer refuses it before STOMP sees it.
//! - Pings are answered by the WebSocket layer; STOMP heart-beats work as on TCP.
//! - `wss://` is the same over TLS: the handshake (with the node's `--tls-cert`/`--tls-key`,
//!   and client certificates with `needClientAuth=true`) comes before the upgrade.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Sink, Stream};
use mq_shared::frame::Limits;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};

use super::{Connectors, accept_loop, connection, handshake, refuse};

/// The STOMP subprotocols, by the names stompjs and ActiveMQ use.
pub const SUBPROTOCOLS: [&str; 3] = ["v12.stomp", "v11.stomp", "v10.stomp"];

/// Room above the STOMP frame limit a WebSocket message may take (EOLs, the NUL, slack).
const MESSAGE_SLACK: usize = 64 * 1024;

/// Accepts WebSocket connections until `shutdown` fires, each upgraded and then served by
/// [`connection::run`] as its own tracked task, within the node's `maximum-connections`
/// budget shared with the other transports.
pub async fn serve(
    listener: TcpListener,
    tls: Option<mq_shared::tls::TlsAcceptor>,
    connectors: Connectors,
) {
    accept_loop(&listener, &connectors.shutdown, |stream, remote| {
        let permit = connectors.admit(remote, "ws");
        let run = upgrade_and_run(stream, tls.clone(), remote, connectors.clone(), permit);
        connectors.tracker.spawn(run);
    })
    .await;
}

/// Upgrades one accepted socket and serves it (or refuses it without a permit).
async fn upgrade_and_run(
    stream: TcpStream,
    tls: Option<mq_shared::tls::TlsAcceptor>,
    remote: SocketAddr,
    connectors: Connectors,
    permit: Option<OwnedSemaphorePermit>,
) {
    let Connectors {
        broker,
        settings,
        shutdown,
        ..
    } = connectors;
    // wss://: the TLS handshake first (bounded in time), then the upgrade inside it.
    let Some(stream) = handshake(stream, tls.as_ref(), remote, &shutdown).await else {
        return;
    };
    let config = websocket_config(&settings.limits);
    let handshake =
        tokio_tungstenite::accept_hdr_async_with_config(stream, negotiate, Some(config));
    let ws = tokio::select! {
        _ = shutdown.cancelled() => return,
        r = tokio::time::timeout(settings.connect_timeout, handshake) => match r {
            Ok(Ok(ws)) => ws,
            Ok(Err(e)) => {
                tracing::debug!(%remote, error = %e, "WebSocket upgrade failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%remote, "WebSocket upgrade not done within the connect timeout");
                return;
            }
        }
    };
    let stream = WsStream::new(ws);
    match permit {
        Some(permit) => connection::run(stream, remote, broker, settings, shutdown, permit).await,
        None => refuse(stream, settings.maximum_connections).await,
    }
}

/// WebSocket limits that follow the STOMP ones.
fn websocket_config(limits: &Limits) -> WebSocketConfig {
    let max = limits.max_frame_size.saturating_add(MESSAGE_SLACK);
    WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

/// Chooses the subprotocol: the first STOMP one the client offers; none when it offers none;
/// a 400 when it offers only others. (The shape is tungstenite's handshake callback, whose
/// refusal is a whole HTTP response.)
#[allow(clippy::result_large_err)]
fn negotiate(request: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
    let offered: Vec<&str> = request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if offered.is_empty() {
        return Ok(response);
    }
    match offered.iter().find(|p| SUBPROTOCOLS.contains(p)) {
        Some(chosen) => {
            if let Ok(v) = HeaderValue::from_str(chosen) {
                response
                    .headers_mut()
                    .insert(header::SEC_WEBSOCKET_PROTOCOL, v);
            }
            Ok(response)
        }
        None => {
            let mut refusal = ErrorResponse::new(Some(format!(
                "none of the offered subprotocols ({}) is STOMP: offer {}",
                offered.join(", "),
                SUBPROTOCOLS.join(", ")
            )));
            *refusal.status_mut() = StatusCode::BAD_REQUEST;
            Err(refusal)
        }
    }
}

/// A WebSocket seen as a byte stream, for [`connection::run`]: reads concatenate incoming
/// messages; writes go out as one message per whole STOMP frame (or heart-beat EOL).
pub struct WsStream<S> {
    ws: WebSocketStream<S>,
    /// What is left of the message being read.
    incoming: Bytes,
    /// The peer closed (or the WebSocket ended): reads give end of file.
    eof: bool,
    /// Bytes written that do not make a whole frame yet.
    outgoing: BytesMut,
}

impl<S> WsStream<S> {
    /// Wraps an upgraded WebSocket.
    pub fn new(ws: WebSocketStream<S>) -> Self {
        WsStream {
            ws,
            incoming: Bytes::new(),
            eof: false,
            outgoing: BytesMut::new(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsStream<S> {
    /// Hands every whole frame of `outgoing` to the WebSocket (not yet flushed).
    fn poll_hand_over(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(n) = frame_len(&self.outgoing) {
            ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(to_io)?;
            let frame = self.outgoing.split_to(n).freeze();
            if frame.iter().all(|&b| b == 0) {
                continue;
            }
            let message = match Utf8Bytes::try_from(frame.clone()) {
                Ok(text) => Message::Text(text),
                Err(_) => Message::Binary(frame),
            };
            Pin::new(&mut self.ws).start_send(message).map_err(to_io)?;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // Frames (and pongs) still waiting for the socket go on while the connection reads:
        // it does not call flush between frames, as a TCP socket needs none.
        let _ = Pin::new(&mut this.ws).poll_flush(cx);
        loop {
            if !this.incoming.is_empty() {
                let n = this.incoming.len().min(buf.remaining());
                buf.put_slice(&this.incoming[..n]);
                this.incoming.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut this.ws).poll_next(cx)) {
                Some(Ok(Message::Text(text))) => this.incoming = Bytes::from(text),
                Some(Ok(Message::Binary(bytes))) => this.incoming = bytes,
                Some(Ok(Message::Close(_))) | None => this.eof = true,
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Err(e)) => {
                    this.eof = true;
                    return Poll::Ready(Err(to_io(e)));
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // Take more only once what was handed over before has left: a client that does not
        // read makes writes pend, and the connection's write timeout sees it.
        ready!(this.poll_hand_over(cx))?;
        ready!(Pin::new(&mut this.ws).poll_flush(cx)).map_err(to_io)?;
        this.outgoing.extend_from_slice(data);
        if let Poll::Ready(Err(e)) = this.poll_hand_over(cx) {
            return Poll::Ready(Err(e));
        }
        // Start writing now; what the socket does not take yet goes on at the next read,
        // write or flush.
        if let Poll::Ready(Err(e)) = Pin::new(&mut this.ws).poll_flush(cx) {
            return Poll::Ready(Err(to_io(e)));
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_hand_over(cx))?;
        Pin::new(&mut this.ws).poll_flush(cx).map_err(to_io)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_hand_over(cx))?;
        Pin::new(&mut this.ws).poll_close(cx).map_err(to_io)
    }
}

fn to_io(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(e) => e,
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            io::Error::new(io::ErrorKind::BrokenPipe, "the WebSocket is closed")
        }
        other => io::Error::other(other),
    }
}

/// The length of the first whole item at the front of `buf`, the server's own output: a
/// heart-beat EOL (`\n` or `\r\n`) or a frame through its NUL. `None` until it is all there.
///
/// A small scan rather than a full decode, which would copy every header and body once more:
/// the end of the headers, a `content-length` among them (the first wins, as when decoding),
/// then the body's length or the first NUL after the headers.
fn frame_len(buf: &[u8]) -> Option<usize> {
    match buf {
        [] => None,
        [b'\n', ..] | [0, ..] => Some(1),
        [b'\r', b'\n', ..] => Some(2),
        [b'\r'] => None,
        _ => {
            let (headers, body_start) = header_block(buf)?;
            if let Some(len) = content_length(headers)
                && let Some(end) = body_start.checked_add(len)
            {
                if buf.len() <= end {
                    return None;
                }
                if buf[end] == 0 {
                    return Some(end + 1);
                }
                // A content-length that does not end at a NUL: take the next NUL.
                return buf[end..].iter().position(|&b| b == 0).map(|i| end + i + 1);
            }
            buf[body_start..]
                .iter()
                .position(|&b| b == 0)
                .map(|i| body_start + i + 1)
        }
    }
}

/// The command and header lines of the frame at the front of `buf`, and where its body
/// starts (after the blank line); `None` until the blank line is there.
fn header_block(buf: &[u8]) -> Option<(&[u8], usize)> {
    let mut line_start = 0;
    while let Some(i) = buf[line_start..].iter().position(|&b| b == b'\n') {
        let line_end = line_start + i;
        let line = &buf[line_start..line_end];
        if (line.is_empty() || line == b"\r") && line_start > 0 {
            return Some((&buf[..line_start], line_end + 1));
        }
        line_start = line_end + 1;
    }
    None
}

/// The value of the first `content-length` header line in `headers` (the command line first).
fn content_length(headers: &[u8]) -> Option<usize> {
    headers
        .split(|&b| b == b'\n')
        .skip(1)
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .find_map(|l| l.strip_prefix(b"content-length:"))
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mq_shared::frame::{Command, Frame, Version, encode};

    fn encoded(frames: &[Frame]) -> BytesMut {
        let mut b = BytesMut::new();
        for f in frames {
            encode(f, Version::V1_2, &mut b);
        }
        b
    }

    /// Splits `buf` the way the write side does.
    fn split(mut buf: BytesMut) -> (Vec<Bytes>, BytesMut) {
        let mut out = Vec::new();
        while let Some(n) = frame_len(&buf) {
            out.push(buf.split_to(n).freeze());
        }
        (out, buf)
    }

    #[test]
    fn frames_and_heart_beats_are_cut_apart() {
        let message = Frame::new(Command::Message)
            .with_header("destination", "/queue/a")
            .with_header("x", "has\0no\0effect")
            .with_body(Bytes::from_static(b"with\0NULs\0inside"));
        let receipt = Frame::new(Command::Receipt).with_header("receipt-id", "7");
        let mut all = encoded(std::slice::from_ref(&message));
        all.extend_from_slice(b"\n");
        all.extend_from_slice(&encoded(std::slice::from_ref(&receipt)));
        all.extend_from_slice(b"\r\n");
        let (parts, rest) = split(all);
        assert!(rest.is_empty());
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[0], encoded(&[message]).freeze());
        assert_eq!(&parts[1][..], b"\n");
        assert_eq!(parts[2], encoded(&[receipt]).freeze());
        assert_eq!(&parts[3][..], b"\r\n");
    }

    #[test]
    fn a_partial_frame_waits_for_the_rest() {
        let f = Frame::new(Command::Message)
            .with_header("destination", "/queue/a")
            .with_body(Bytes::from(vec![b'x'; 1000]));
        let whole = encoded(&[f]);
        for cut in [1, 5, 20, whole.len() - 500, whole.len() - 1] {
            assert_eq!(frame_len(&whole[..cut]), None, "cut at {cut}");
        }
        assert_eq!(frame_len(&whole), Some(whole.len()));
        assert_eq!(frame_len(b"\r"), None);
    }

    #[test]
    fn frames_without_content_length_end_at_the_nul() {
        let raw = b"CONNECTED\r\nversion:1.2\r\n\r\n\0MESSAGE\n\nbody\0";
        assert_eq!(frame_len(raw), Some(27));
        assert_eq!(frame_len(&raw[27..]), Some(14));
        // A wrong content-length still ends at a NUL rather than running on.
        let raw = b"MESSAGE\ncontent-length:2\n\nabcd\0";
        assert_eq!(frame_len(raw), Some(raw.len()));
    }

    #[test]
    fn the_first_content_length_wins() {
        let raw = b"MESSAGE\ncontent-length:3\ncontent-length:1\n\na\0c\0";
        assert_eq!(frame_len(raw), Some(raw.len()));
    }
}
