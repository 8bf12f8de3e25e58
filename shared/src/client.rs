//! An async STOMP client over tokio: one TCP connection, one session.
//!
//! Used by `mqctl` (send, browse, bench), by the node's network bridges (store and forward)
//! and by the tests. The client owns its socket and its buffers, so every read leaves its
//! bytes in the client: dropping a [`StompClient::recv`] future (as [`StompClient::recv_timeout`]
//! does) loses nothing.
//!
//! Frames that arrive while the client waits for something else are kept: a MESSAGE that
//! arrives during [`StompClient::wait_receipt`] is returned by the next [`StompClient::recv`],
//! and a RECEIPT that arrives during `recv` (or out of order) is remembered for the
//! `wait_receipt` that asks for it. RECEIPT frames are never returned by `recv`.
//!
//! With heart-beating negotiated, the client writes an EOL whenever it has written nothing for
//! the agreed interval while it waits inside `recv`, `recv_timeout` or `wait_receipt`, and it
//! fails with [`ClientError::Timeout`] when the server stays silent for twice its interval.
//! Between calls nothing runs: a caller that goes quiet for longer than the interval should
//! call `recv_timeout` now and then.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::connection::{ConnError, Connection, Timers, sleep_until};
use crate::frame::{Command, Frame, FrameError, Item, Limits, Version};
use crate::heartbeat;
use crate::tls::Stream;

/// Limits on frames from the server: generous, since the server enforced its own on what it
/// accepted and adds headers of its own when it delivers.
pub const CLIENT_LIMITS: Limits = Limits {
    max_frame_size: 1 << 30,
    max_headers: 100_000,
    max_header_length: 1 << 20,
};

/// How long [`StompClient::disconnect`] waits for the server's RECEIPT at most.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The server may be this many of its intervals late before the client gives up on it.
const SERVER_HEARTBEAT_GRACE: f64 = 2.0;

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket failed.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// The server sent bytes that are not a valid STOMP frame.
    #[error("invalid frame from the server: {0}")]
    Frame(#[from] FrameError),
    /// The server answered with something STOMP does not allow here.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The server sent an ERROR frame (and will close the connection).
    #[error("server error: {message}")]
    Server {
        /// The ERROR frame's `message` header, or its body if it has none.
        message: String,
        /// The whole ERROR frame.
        frame: Frame,
    },
    /// The server closed the connection.
    #[error("connection closed by the server")]
    Closed,
    /// Something did not happen in time; the text says what.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The TLS connection could not be set up (no CA given, a certificate refused, ...).
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsError),
}

impl ClientError {
    /// The error an ERROR frame stands for (its `message` header, else its body).
    pub fn from_error_frame(frame: Frame) -> ClientError {
        let message = match frame.header("message") {
            Some(m) => m.to_owned(),
            None if !frame.body.is_empty() => String::from_utf8_lossy(&frame.body).into_owned(),
            None => "no message given".to_owned(),
        };
        ClientError::Server { message, frame }
    }
}

impl From<ConnError> for ClientError {
    fn from(e: ConnError) -> ClientError {
        match e {
            ConnError::Io(e) => ClientError::Io(e),
            ConnError::Frame(e) => ClientError::Frame(e),
            ConnError::Closed => ClientError::Closed,
            ConnError::PeerSilent { ms } => {
                ClientError::Timeout(format!("no data or heart-beat from the server for {ms} ms"))
            }
            e @ ConnError::WriteStalled { .. } => ClientError::Timeout(e.to_string()),
        }
    }
}

/// How to open the STOMP session.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// The `host` header (virtual host); `None` leaves it out.
    pub host: Option<String>,
    /// The `login` header, if any.
    pub login: Option<String>,
    /// The `passcode` header, if any.
    pub passcode: Option<String>,
    /// The `accept-version` header.
    pub accept_version: String,
    /// The `heart-beat` header: (ms between our beats, ms between the server's beats we want);
    /// 0 means none.
    pub heart_beat: (u64, u64),
    /// Further CONNECT headers, sent after the ones above.
    pub headers: Vec<(String, String)>,
    /// Bound on TCP connect plus the CONNECTED answer.
    pub connect_timeout: Duration,
    /// TLS settings for `ssl://` addresses (the CA to verify the server against, and the
    /// client certificate when the server asks for one); `None` allows plain TCP only.
    pub tls: Option<std::sync::Arc<crate::tls::ClientConfig>>,
}

impl Default for ConnectOptions {
    fn default() -> ConnectOptions {
        ConnectOptions {
            host: Some("localhost".to_owned()),
            login: None,
            passcode: None,
            accept_version: "1.0,1.1,1.2".to_owned(),
            heart_beat: (0, 0),
            headers: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            tls: None,
        }
    }
}

/// A subscription's acknowledgement mode (the SUBSCRIBE `ack` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckMode {
    /// The server considers a message acknowledged once sent.
    Auto,
    /// ACK is cumulative: it acknowledges the message and all earlier ones.
    Client,
    /// ACK acknowledges exactly one message.
    ClientIndividual,
}

impl AckMode {
    /// Reads a SUBSCRIBE `ack` header value (none means `auto`); the error is a sentence for
    /// an ERROR frame.
    pub fn parse(value: Option<&str>) -> Result<AckMode, String> {
        match value.unwrap_or("auto") {
            "auto" => Ok(AckMode::Auto),
            "client" => Ok(AckMode::Client),
            "client-individual" => Ok(AckMode::ClientIndividual),
            other => Err(format!(
                "ack mode '{other}' is not one of auto, client, client-individual"
            )),
        }
    }

    /// The header value: `"auto"`, `"client"` or `"client-individual"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            AckMode::Auto => "auto",
            AckMode::Client => "client",
            AckMode::ClientIndividual => "client-individual",
        }
    }
}

/// Connects to `addr` and opens a session, within `opts.connect_timeout`: the framed
/// connection and the server's CONNECTED. `addr` is `host:port`, with an optional `tcp://` or
/// `stomp://` prefix, or `ssl://` / `stomp+ssl://` for TLS (which needs `opts.tls`). For
/// callers that drive the connection themselves (the node's bridges); others use
/// [`StompClient::connect`].
pub async fn connect_stream(
    addr: &str,
    opts: &ConnectOptions,
) -> Result<(Connection<Stream>, Frame), ClientError> {
    let (secure, addr) = match addr
        .strip_prefix("ssl://")
        .or_else(|| addr.strip_prefix("stomp+ssl://"))
    {
        Some(rest) => (true, rest),
        None => (
            false,
            addr.strip_prefix("tcp://")
                .or_else(|| addr.strip_prefix("stomp://"))
                .unwrap_or(addr),
        ),
    };
    let limit = opts.connect_timeout;
    let open = async {
        let stream = if secure {
            let cfg = opts.tls.as_ref().ok_or(crate::tls::TlsError::NoCa)?;
            let host = match addr.rsplit_once(':') {
                Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']'),
                None => addr,
            };
            crate::tls::connect(addr, Some(cfg), host).await?
        } else {
            let tcp = TcpStream::connect(addr).await?;
            Stream::Plain(tcp)
        };
        stream.tcp().set_nodelay(true)?;
        handshake(Connection::new(stream, CLIENT_LIMITS), opts).await
    };
    match tokio::time::timeout(limit, open).await {
        Ok(result) => result,
        Err(_) => Err(ClientError::Timeout(format!(
            "no CONNECTED from {addr} within {} ms",
            limit.as_millis()
        ))),
    }
}

/// Sends CONNECT on `conn` and waits for CONNECTED; sets the negotiated version and the
/// heart-beat timers on the connection.
pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    mut conn: Connection<S>,
    opts: &ConnectOptions,
) -> Result<(Connection<S>, Frame), ClientError> {
    let mut connect =
        Frame::new(Command::Connect).with_header("accept-version", &opts.accept_version);
    if let Some(host) = &opts.host {
        connect.push_header("host", host);
    }
    if let Some(login) = &opts.login {
        connect.push_header("login", login);
    }
    if let Some(passcode) = &opts.passcode {
        connect.push_header("passcode", passcode);
    }
    let (cx, cy) = opts.heart_beat;
    connect.push_header("heart-beat", format!("{cx},{cy}"));
    for (name, value) in &opts.headers {
        connect.push_header(name, value);
    }
    conn.queue(&connect);
    conn.flush().await?;
    let connected = conn.read_frame().await?;
    match connected.command {
        Command::Connected => {}
        Command::Error => return Err(ClientError::from_error_frame(connected)),
        other => {
            return Err(ClientError::Protocol(format!(
                "expected CONNECTED, got {other}"
            )));
        }
    }
    let version = match connected.header("version") {
        None | Some("1.0") => Version::V1_0,
        Some("1.1") => Version::V1_1,
        Some("1.2") => Version::V1_2,
        Some(other) => {
            return Err(ClientError::Protocol(format!(
                "server chose unknown version {other:?}"
            )));
        }
    };
    conn.set_version(version);
    let theirs = match connected.header("heart-beat") {
        None => (0, 0),
        Some(value) => heartbeat::parse(value).ok_or_else(|| {
            ClientError::Protocol(format!("bad heart-beat header {value:?} in CONNECTED"))
        })?,
    };
    let agreed = heartbeat::agree(opts.heart_beat, theirs);
    conn.set_timers(Timers::from_heart_beats(agreed, SERVER_HEARTBEAT_GRACE));
    Ok((conn, connected))
}

/// One STOMP session over TCP. See the module doc for how waiting and heart-beats work.
#[derive(Debug)]
pub struct StompClient {
    conn: Connection<Stream>,
    connected: Frame,
    /// Frames received while waiting for a receipt, for `recv`.
    pending: VecDeque<Frame>,
    /// Receipt ids received but not yet waited for.
    receipts: HashSet<String>,
    next_receipt: u64,
}

impl StompClient {
    /// Connects to `addr` (`host:port`, a `tcp://` or `stomp://` prefix is accepted), sends
    /// CONNECT and waits for CONNECTED. An ERROR answer is [`ClientError::Server`].
    pub async fn connect(addr: &str, opts: ConnectOptions) -> Result<StompClient, ClientError> {
        let (conn, connected) = connect_stream(addr, &opts).await?;
        Ok(StompClient {
            conn,
            connected,
            pending: VecDeque::new(),
            receipts: HashSet::new(),
            next_receipt: 0,
        })
    }

    /// The server's CONNECTED frame (`version`, `server`, `session`, `heart-beat`, ...).
    pub fn connected(&self) -> &Frame {
        &self.connected
    }

    /// The negotiated protocol version.
    pub fn version(&self) -> Version {
        self.conn.version()
    }

    /// Writes a frame and flushes it (with anything queued before); waits for no answer.
    pub async fn send_frame(&mut self, frame: Frame) -> Result<(), ClientError> {
        self.queue_frame(&frame);
        self.flush().await
    }

    /// Encodes a frame into the write buffer without writing it, to batch several frames into
    /// one write; [`StompClient::flush`] (or any wait for an answer) writes them.
    pub fn queue_frame(&mut self, frame: &Frame) {
        self.conn.queue(frame);
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        // The connection removes bytes from its buffer as they leave: a dropped flush loses nothing.
        Ok(self.conn.flush().await?)
    }

    /// Sends a message to `destination` with the given extra headers. With `receipt`, asks
    /// for a RECEIPT and waits for it (MESSAGE frames arriving meanwhile are kept for `recv`).
    pub async fn send(
        &mut self,
        destination: &str,
        body: impl Into<Bytes>,
        headers: &[(&str, &str)],
        receipt: bool,
    ) -> Result<(), ClientError> {
        let mut frame = Frame::new(Command::Send)
            .with_header("destination", destination)
            .with_body(body);
        for (name, value) in headers {
            frame.push_header(*name, *value);
        }
        if receipt {
            self.request(frame).await
        } else {
            self.send_frame(frame).await
        }
    }

    /// A receipt id unique on this connection, for a caller that adds the `receipt` header
    /// itself (to pipeline several frames) and later calls [`StompClient::wait_receipt`].
    pub fn next_receipt_id(&mut self) -> String {
        self.next_receipt += 1;
        format!("r-{}", self.next_receipt)
    }

    /// Waits for the RECEIPT with `receipt-id` `id`; receipts may arrive in any order and
    /// earlier ones are remembered. An ERROR frame meanwhile is [`ClientError::Server`].
    pub async fn wait_receipt(&mut self, id: &str) -> Result<(), ClientError> {
        if self.receipts.remove(id) {
            return Ok(());
        }
        loop {
            let frame = self.read_frame().await?;
            match frame.command {
                Command::Receipt => match frame.header("receipt-id") {
                    Some(got) if got == id => return Ok(()),
                    Some(got) => {
                        self.receipts.insert(got.to_owned());
                    }
                    None => {
                        return Err(ClientError::Protocol(
                            "RECEIPT without a receipt-id header".to_owned(),
                        ));
                    }
                },
                Command::Error => return Err(ClientError::from_error_frame(frame)),
                _ => self.pending.push_back(frame),
            }
        }
    }

    /// Subscribes to `destination` under subscription `id`, asking for a receipt and waiting
    /// for it. `headers` are added (e.g. `activemq.prefetchSize`).
    pub async fn subscribe(
        &mut self,
        destination: &str,
        id: &str,
        ack: AckMode,
        headers: &[(&str, &str)],
    ) -> Result<(), ClientError> {
        let mut frame = Frame::new(Command::Subscribe)
            .with_header("destination", destination)
            .with_header("id", id)
            .with_header("ack", ack.as_str());
        for (name, value) in headers {
            frame.push_header(*name, *value);
        }
        self.request(frame).await
    }

    /// Ends subscription `id`, waiting for the receipt.
    pub async fn unsubscribe(&mut self, id: &str) -> Result<(), ClientError> {
        self.request(Frame::new(Command::Unsubscribe).with_header("id", id))
            .await
    }

    /// The next frame from the server that is not a heart-beat or a RECEIPT: usually a
    /// MESSAGE. An ERROR frame is returned as [`ClientError::Server`].
    pub async fn recv(&mut self) -> Result<Frame, ClientError> {
        if let Some(frame) = self.pending.pop_front() {
            return Ok(frame);
        }
        loop {
            let frame = self.read_frame().await?;
            match frame.command {
                Command::Receipt => {
                    if let Some(id) = frame.header("receipt-id") {
                        self.receipts.insert(id.to_owned());
                    }
                }
                Command::Error => return Err(ClientError::from_error_frame(frame)),
                _ => return Ok(frame),
            }
        }
    }

    /// Like [`StompClient::recv`], but `None` when nothing arrives within `d`. Bytes of a
    /// frame that arrived in part stay buffered for the next call.
    pub async fn recv_timeout(&mut self, d: Duration) -> Result<Option<Frame>, ClientError> {
        match tokio::time::timeout(d, self.recv()).await {
            Ok(result) => result.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Acknowledges `message` (a MESSAGE received on this connection). Sent and flushed; no
    /// receipt is awaited.
    pub async fn ack(&mut self, message: &Frame) -> Result<(), ClientError> {
        let frame = self.ack_frame(message)?;
        self.send_frame(frame).await
    }

    /// Refuses `message` (STOMP 1.1 and later). Sent and flushed; no receipt is awaited.
    pub async fn nack(&mut self, message: &Frame) -> Result<(), ClientError> {
        let frame = self.nack_frame(message)?;
        self.send_frame(frame).await
    }

    /// The ACK frame for `message` in this connection's version, for callers that add headers
    /// (`transaction`, `receipt`) before sending it: `id` from the `ack` header in 1.2,
    /// `message-id` and `subscription` in 1.0 and 1.1.
    pub fn ack_frame(&self, message: &Frame) -> Result<Frame, ClientError> {
        self.acknowledgement(Command::Ack, message)
    }

    /// The NACK frame for `message`, as [`StompClient::ack_frame`]; STOMP 1.0 has no NACK.
    pub fn nack_frame(&self, message: &Frame) -> Result<Frame, ClientError> {
        if self.version() == Version::V1_0 {
            return Err(ClientError::Protocol(
                "NACK does not exist in STOMP 1.0".to_owned(),
            ));
        }
        self.acknowledgement(Command::Nack, message)
    }

    fn acknowledgement(&self, command: Command, message: &Frame) -> Result<Frame, ClientError> {
        let missing = |name: &str| {
            ClientError::Protocol(format!("cannot {command} a frame without a {name} header"))
        };
        let mut frame = Frame::new(command);
        if self.version() == Version::V1_2 {
            let id = message.header("ack").ok_or_else(|| missing("ack"))?;
            frame.push_header("id", id);
        } else {
            let id = message
                .header("message-id")
                .ok_or_else(|| missing("message-id"))?;
            frame.push_header("message-id", id);
            match message.header("subscription") {
                Some(sub) => frame.push_header("subscription", sub),
                None if self.version() == Version::V1_1 => return Err(missing("subscription")),
                None => {}
            }
        }
        Ok(frame)
    }

    /// Begins transaction `tx`, waiting for the receipt.
    pub async fn begin(&mut self, tx: &str) -> Result<(), ClientError> {
        self.request(Frame::new(Command::Begin).with_header("transaction", tx))
            .await
    }

    /// Commits transaction `tx`, waiting for the receipt.
    pub async fn commit(&mut self, tx: &str) -> Result<(), ClientError> {
        self.request(Frame::new(Command::Commit).with_header("transaction", tx))
            .await
    }

    /// Aborts transaction `tx`, waiting for the receipt.
    pub async fn abort(&mut self, tx: &str) -> Result<(), ClientError> {
        self.request(Frame::new(Command::Abort).with_header("transaction", tx))
            .await
    }

    /// Sends DISCONNECT with a receipt, waits for it (at most 5 s) and closes the socket.
    /// A server that closes the connection instead of answering is fine too.
    pub async fn disconnect(mut self) -> Result<(), ClientError> {
        let wait = self.request(Frame::new(Command::Disconnect));
        let result = match tokio::time::timeout(DISCONNECT_TIMEOUT, wait).await {
            Ok(Ok(())) | Ok(Err(ClientError::Closed)) => Ok(()),
            Ok(Err(ClientError::Io(e)))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                ) =>
            {
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ClientError::Timeout(format!(
                "no RECEIPT for DISCONNECT within {} s",
                DISCONNECT_TIMEOUT.as_secs()
            ))),
        };
        // The session is over either way; a failed shutdown only means the peer left first.
        let _ = self.conn.shutdown().await;
        result
    }

    /// Sends `frame` with a fresh `receipt` header and waits for the RECEIPT.
    async fn request(&mut self, mut frame: Frame) -> Result<(), ClientError> {
        let id = self.next_receipt_id();
        frame.set_header("receipt", id.as_str());
        self.send_frame(frame).await?;
        self.wait_receipt(&id).await
    }

    /// The next frame off the wire, skipping heart-beats. Flushes queued writes before it
    /// waits, writes heart-beats while it waits, and fails if the server's beats stop.
    async fn read_frame(&mut self) -> Result<Frame, ClientError> {
        loop {
            while let Some(item) = self.conn.decode()? {
                if let Item::Frame(frame) = item {
                    return Ok(frame);
                }
            }
            self.conn.flush().await?;
            let deadline = self.conn.next_deadline();
            tokio::select! {
                n = self.conn.read() => {
                    if n? == 0 {
                        return Err(ClientError::Closed);
                    }
                }
                _ = sleep_until(deadline) => self.conn.tick(Instant::now())?,
            }
        }
    }
}
