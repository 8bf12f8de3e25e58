//! One STOMP connection: the only owner of its socket.
//!
//! A single task reads frames, handles them against the [`Core`], and writes everything the
//! client must see: MESSAGE frames from its subscriptions, RECEIPTs (some written from store
//! callbacks, once a commit is durable), ERRORs and heart-beats. Writes are coalesced: after
//! each wake-up the task drains whatever else is ready before one `write_all`.
//!
//! Life of a connection: `Connecting` (only CONNECT/STOMP accepted, within the connect
//! timeout) → `Connected` → closed (DISCONNECT, ERROR, socket closed, heart-beat silence or
//! shutdown). On close, open transactions are aborted and unacked messages are redelivered.
//!
//! A connection whose CONNECT names a broker in [`BRIDGE_HEADER`] is another node's network
//! bridge: CONNECTED names this node back, its subscriptions are network consumers (with the
//! loop filter and demand hops of `crate::network::demand`), it may subscribe to the demand
//! advisory, and its sends keep their message ids and are de-duplicated.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mq_shared::api::ConnectionKind;
use mq_shared::frame::{Command, Decoder, Frame, FrameError, Item, Version, encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::TransportSettings;
use crate::broker::queue::{Effects, Queue};
use crate::broker::{
    Accepted, Attached, BROKER_PATH_HEADER, ConnMeta, ConsumerSpec, Core, Delivery, Destination,
    Message, NetworkConsumer, now_ms,
};
use crate::network::demand;

/// CONNECT header a network bridge sends with its broker name, so the node treats the
/// connection as a bridge (its consumers rank below local ones; its sends keep their ids).
pub const BRIDGE_HEADER: &str = "mq-bridge";
/// SUBSCRIBE header for consumer priority (ActiveMQ's name).
pub const PRIORITY_HEADER: &str = "activemq.priority";
/// SUBSCRIBE header for prefetch (ActiveMQ's name).
pub const PREFETCH_HEADER: &str = "activemq.prefetchSize";

/// Headers the broker sets itself and never copies from a SEND into the message.
const RESERVED: &[&str] = &[
    "destination",
    "receipt",
    "transaction",
    "content-length",
    "message-id",
    "subscription",
    "ack",
    "redelivered",
];

/// Something to write that came from outside the task (a store callback).
enum Out {
    Frame(Frame),
    /// An ERROR frame; the connection closes after writing it.
    Fatal(Frame),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AckMode {
    Auto,
    Client,
    ClientIndividual,
}

struct Sub {
    id: String,
    consumer: u64,
    ack: AckMode,
    attached: Attached,
    /// Delivered and not acked (client modes): (ack id, message id, seq).
    unacked: VecDeque<Unacked>,
}

#[derive(Clone)]
struct Unacked {
    ack_id: String,
    message_id: Arc<str>,
    seq: u64,
}

enum TxOp {
    Send(Message),
    Ack {
        sub: String,
        ack_id: String,
        nack: bool,
    },
}

struct Pending {
    count: AtomicUsize,
    notify: Notify,
}

/// Ends the connection; `Some` carries an ERROR frame to send first.
struct Close(Option<Frame>);

struct Session {
    conn: u64,
    broker: Core,
    settings: Arc<TransportSettings>,
    version: Option<Version>,
    bridge: Option<String>,
    subs: HashMap<String, Sub>,
    by_consumer: HashMap<u64, String>,
    txs: HashMap<String, Vec<TxOp>>,
    produced: HashSet<Arc<str>>,
    produced_queues: Vec<Arc<Queue>>,
    pending: Arc<Pending>,
    out_tx: mpsc::UnboundedSender<Out>,
    deliver_tx: mpsc::UnboundedSender<Delivery>,
    /// Client → server heart-beat interval agreed (ms), 0 = none.
    read_hb: u64,
    /// Server → client heart-beat interval agreed (ms), 0 = none.
    write_hb: u64,
    disconnecting: bool,
    /// A bridge's subscription to the demand advisory: its id and the last snapshot sent.
    advisory: Option<(String, String)>,
    /// Ticks when consumers change, while the advisory is subscribed.
    demand_rx: Option<watch::Receiver<u64>>,
}

/// Serves one accepted socket until it closes.
pub async fn run(
    mut stream: TcpStream,
    remote: SocketAddr,
    broker: Core,
    settings: Arc<TransportSettings>,
    shutdown: CancellationToken,
) {
    let conn = broker.register_connection(ConnMeta {
        remote: remote.to_string(),
        kind: ConnectionKind::Client,
        version: String::new(),
        broker: None,
        subscriptions: 0,
        since_ms: now_ms(),
    });
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Out>();
    let (deliver_tx, mut deliver_rx) = mpsc::unbounded_channel::<Delivery>();
    let mut s = Session {
        conn,
        broker: broker.clone(),
        settings: settings.clone(),
        version: None,
        bridge: None,
        subs: HashMap::new(),
        by_consumer: HashMap::new(),
        txs: HashMap::new(),
        produced: HashSet::new(),
        produced_queues: Vec::new(),
        pending: Arc::new(Pending {
            count: AtomicUsize::new(0),
            notify: Notify::new(),
        }),
        out_tx,
        deliver_tx,
        read_hb: 0,
        write_hb: 0,
        disconnecting: false,
        advisory: None,
        demand_rx: None,
    };
    let mut decoder = Decoder::new(settings.limits);
    let mut inbuf = BytesMut::with_capacity(16 * 1024);
    let mut outbuf = BytesMut::with_capacity(16 * 1024);
    let mut auto_acks: Vec<(Arc<Queue>, u64, u64)> = Vec::new();
    let connect_deadline = Instant::now() + settings.connect_timeout;
    let mut last_read = Instant::now();
    let mut last_write = Instant::now();
    let mut closing: Option<Frame> = None;
    let mut eof = false;

    'conn: loop {
        let now = Instant::now();
        // Deadline of whatever timer matters next.
        let read_deadline = if s.version.is_none() {
            connect_deadline
        } else if s.read_hb > 0 {
            last_read
                + Duration::from_millis(
                    (s.read_hb as f64 * mq_shared::defaults::HEARTBEAT_GRACE) as u64,
                )
        } else {
            now + Duration::from_secs(3600)
        };
        let write_deadline = if s.write_hb > 0 {
            last_write + Duration::from_millis(s.write_hb)
        } else {
            now + Duration::from_secs(3600)
        };
        let paused = s.pending.count.load(Ordering::Acquire) >= s.settings.max_pending_writes;

        tokio::select! {
            // Not biased: under a flood of deliveries the socket must still be read (a
            // subscriber's own SENDs and ACKs), so every ready branch gets its turn.
            _ = shutdown.cancelled() => {
                break 'conn;
            }
            Some(o) = out_rx.recv() => {
                if let Some(f) = push_out(&mut s, o, &mut outbuf) {
                    closing = Some(f);
                }
            }
            Some(d) = deliver_rx.recv() => {
                s.write_delivery(d, &mut outbuf, &mut auto_acks);
            }
            alive = demand_changed(&mut s.demand_rx) => {
                if alive {
                    s.send_advisory(false);
                } else {
                    s.demand_rx = None;
                }
            }
            r = stream.read_buf(&mut inbuf), if !paused && !eof && !s.disconnecting => {
                match r {
                    Ok(0) | Err(_) => { eof = true; }
                    Ok(_) => {
                        last_read = Instant::now();
                        loop {
                            match decoder.decode(&mut inbuf) {
                                Ok(None) => break,
                                Ok(Some(Item::HeartBeat)) => {}
                                Ok(Some(Item::Frame(f))) => {
                                    if let Err(Close(e)) = s.handle(f, &mut decoder) {
                                        closing = e;
                                        if closing.is_none() { s.disconnecting = true; }
                                        break;
                                    }
                                }
                                Err(e) => {
                                    tracing::debug!(conn, error = %e, "bad frame");
                                    closing = Some(protocol_error(&e));
                                    break;
                                }
                            }
                        }
                    }
                }
            }
            _ = s.pending.notify.notified(), if paused || s.disconnecting => {}
            _ = sleep_until(read_deadline) => {
                if s.version.is_none() {
                    closing = Some(error_frame(
                        "no CONNECT frame within the connect timeout",
                        None,
                    ));
                } else {
                    tracing::debug!(conn, "client silent past the heart-beat interval; closing");
                    break 'conn;
                }
            }
            _ = sleep_until(write_deadline) => {
                outbuf.extend_from_slice(b"\n");
            }
        }

        // Coalesce: take whatever else is ready before writing.
        while let Ok(o) = out_rx.try_recv() {
            if let Some(f) = push_out(&mut s, o, &mut outbuf) {
                closing = Some(f);
            }
        }
        let mut n = 0;
        while n < 256 {
            match deliver_rx.try_recv() {
                Ok(d) => s.write_delivery(d, &mut outbuf, &mut auto_acks),
                Err(_) => break,
            }
            n += 1;
        }
        if let Some(f) = closing.take() {
            encode(&f, s.version.unwrap_or(Version::V1_2), &mut outbuf);
            let _ = stream.write_all(&outbuf).await;
            let _ = stream.flush().await;
            break 'conn;
        }
        if !outbuf.is_empty() {
            if stream.write_all(&outbuf).await.is_err() {
                break 'conn;
            }
            outbuf.clear();
            last_write = Instant::now();
        }
        if !auto_acks.is_empty() {
            s.auto_ack(&mut auto_acks);
        }
        if s.disconnecting && s.pending.count.load(Ordering::Acquire) == 0 {
            break 'conn;
        }
        if eof {
            break 'conn;
        }
    }
    s.cleanup();
    // Whatever is still queued for this connection goes back to its queues via cleanup
    // (unsubscribe redelivers in-flight messages), so dropping the receivers loses nothing.
    drop(deliver_rx);
}

/// Resolves when demand changed (true) or can no longer change (false); never without a
/// receiver.
async fn demand_changed(rx: &mut Option<watch::Receiver<u64>>) -> bool {
    match rx {
        Some(rx) => rx.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}

fn push_out(s: &mut Session, o: Out, outbuf: &mut BytesMut) -> Option<Frame> {
    match o {
        Out::Frame(f) => {
            encode(&f, s.version.unwrap_or(Version::V1_2), outbuf);
            None
        }
        Out::Fatal(f) => Some(f),
    }
}

fn error_frame(message: &str, receipt: Option<&str>) -> Frame {
    let mut f = Frame::new(Command::Error).with_header("message", message);
    if let Some(r) = receipt {
        f.push_header("receipt-id", r);
    }
    f.with_header("content-type", "text/plain")
        .with_body(Bytes::from(message.to_string()))
}

fn protocol_error(e: &FrameError) -> Frame {
    error_frame(&format!("malformed frame: {e}"), None)
}

impl Session {
    fn version(&self) -> Version {
        self.version.unwrap_or(Version::V1_2)
    }

    /// Handles one frame. `Err(Close(Some(error)))` closes after sending the error;
    /// `Err(Close(None))` is an orderly DISCONNECT.
    fn handle(&mut self, f: Frame, decoder: &mut Decoder) -> Result<(), Close> {
        let receipt = f.header("receipt").map(str::to_string);
        let fail = |msg: String| Close(Some(error_frame(&msg, receipt.as_deref())));
        if self.version.is_none() {
            return match f.command {
                Command::Connect | Command::Stomp => self.on_connect(&f, decoder),
                _ => Err(fail(format!(
                    "{} before CONNECT: a CONNECT frame must come first",
                    f.command.as_str()
                ))),
            };
        }
        let r = match f.command {
            Command::Send => self.on_send(f, receipt.as_deref()),
            Command::Subscribe => self.on_subscribe(&f),
            Command::Unsubscribe => self.on_unsubscribe(&f),
            Command::Ack => self.on_ack(&f, false, receipt.as_deref()),
            Command::Nack => self.on_ack(&f, true, receipt.as_deref()),
            Command::Begin => self.on_begin(&f),
            Command::Commit => self.on_commit(&f, receipt.as_deref()),
            Command::Abort => self.on_abort(&f),
            Command::Disconnect => {
                self.disconnecting = true;
                if let Some(r) = &receipt {
                    self.after_pending(Frame::new(Command::Receipt).with_header("receipt-id", r));
                }
                return Err(Close(None));
            }
            Command::Connect | Command::Stomp => Err("already connected".to_string()),
            Command::Connected | Command::Message | Command::Receipt | Command::Error => {
                Err(format!(
                    "{} is a server frame; clients may not send it",
                    f.command.as_str()
                ))
            }
        };
        match r {
            Err(msg) => Err(fail(msg)),
            Ok(Reply::Now) => {
                if let Some(r) = receipt {
                    self.send_now(Frame::new(Command::Receipt).with_header("receipt-id", r));
                }
                Ok(())
            }
            Ok(Reply::Later) => Ok(()),
        }
    }

    fn send_now(&self, f: Frame) {
        let _ = self.out_tx.send(Out::Frame(f));
    }

    /// Sends a frame once every store write submitted so far by this connection is done.
    fn after_pending(&self, f: Frame) {
        if self.pending.count.load(Ordering::Acquire) == 0 {
            self.send_now(f);
            return;
        }
        if let Some(store) = self.broker.store() {
            let out = self.out_tx.clone();
            let pending = self.pending.clone();
            pending.count.fetch_add(1, Ordering::AcqRel);
            store.submit(
                Vec::new(),
                Some(Box::new(move |_| {
                    let _ = out.send(Out::Frame(f));
                    pending.count.fetch_sub(1, Ordering::AcqRel);
                    pending.notify.notify_one();
                })),
            );
        } else {
            self.send_now(f);
        }
    }

    fn on_connect(&mut self, f: &Frame, decoder: &mut Decoder) -> Result<(), Close> {
        let Some(v) = Version::negotiate(f.header("accept-version")) else {
            let e = error_frame(
                "Supported protocol versions are 1.0,1.1,1.2",
                f.header("receipt"),
            )
            .with_header("version", "1.0,1.1,1.2");
            return Err(Close(Some(e)));
        };
        self.version = Some(v);
        decoder.set_version(v);
        let mut connected = Frame::new(Command::Connected)
            .with_header("version", v.as_str())
            .with_header("server", format!("mq/{}", env!("CARGO_PKG_VERSION")))
            .with_header("session", format!("{}-{}", self.broker.name(), self.conn));
        if v >= Version::V1_1 {
            let (cx, cy) = parse_heartbeat(f.header("heart-beat"))
                .map_err(|m| Close(Some(error_frame(&m, f.header("receipt")))))?;
            let offer = self.settings.heartbeat_ms;
            // The client sends every max(cx, offer); the server every max(offer, cy).
            self.read_hb = if cx > 0 { cx.max(offer) } else { 0 };
            self.write_hb = if cy > 0 { cy.max(offer) } else { 0 };
            let hb = format!(
                "{},{}",
                if cy > 0 { offer } else { 0 },
                if cx > 0 { offer } else { 0 }
            );
            connected.push_header("heart-beat", hb);
        }
        self.bridge = f.header(BRIDGE_HEADER).map(str::to_string);
        if self.bridge.is_some() {
            connected.push_header(demand::BROKER_HEADER, self.broker.name());
        }
        let bridge = self.bridge.clone();
        self.broker.update_connection(self.conn, |m| {
            m.version = v.as_str().to_string();
            if let Some(b) = bridge {
                m.kind = ConnectionKind::Bridge;
                m.broker = Some(b);
            }
        });
        self.send_now(connected);
        Ok(())
    }

    fn on_send(&mut self, mut f: Frame, receipt: Option<&str>) -> Result<Reply, String> {
        let body = std::mem::take(&mut f.body);
        let dest_s = f
            .header("destination")
            .ok_or("SEND without a destination header")?;
        let dest = Destination::parse(dest_s)?;
        let persistent = f.header("persistent") == Some("true");
        let expires = match f.header("expires") {
            None | Some("") => 0,
            Some(v) => v
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("expires '{v}' is not a time in ms since the epoch"))?,
        };
        let from_bridge = self.bridge.is_some();
        let id = match (from_bridge, f.header("message-id")) {
            (true, Some(id)) => id.to_string(),
            _ => self.broker.new_message_id(),
        };
        let mut seen: HashSet<&str> = HashSet::new();
        let mut headers = Vec::new();
        for (k, v) in &f.headers {
            // First value wins; later repeats are dropped.
            if RESERVED.contains(&k.as_str()) || !seen.insert(k.as_str()) {
                continue;
            }
            headers.push((k.clone(), v.clone()));
        }
        let msg = Message {
            id: Arc::from(id),
            destination: Arc::from(dest.to_string()),
            headers,
            body,
            persistent,
            expires,
            timestamp: now_ms(),
        };
        if let Destination::Queue(q) = &dest
            && !self.produced.contains(q.as_str())
        {
            let queue = self.broker.queue(q);
            queue.add_producer(self.conn);
            self.produced.insert(Arc::from(q.as_str()));
            self.produced_queues.push(queue);
        }
        if let Some(tx) = f.header("transaction") {
            let ops = self
                .txs
                .get_mut(tx)
                .ok_or_else(|| format!("transaction '{tx}' was not begun"))?;
            ops.push(TxOp::Send(msg));
            return Ok(Reply::Now);
        }
        let ordered = self.pending.count.load(Ordering::Acquire) > 0;
        let via_store = self.broker.store().is_some() && (self.broker.stores(&msg) || ordered);
        if !via_store {
            self.broker
                .publish(msg, Some(self.conn), false, from_bridge, None);
            return Ok(Reply::Now);
        }
        let done = self.store_completion(receipt, "message not stored");
        self.broker
            .publish(msg, Some(self.conn), ordered, from_bridge, Some(done));
        Ok(Reply::Later)
    }

    /// Counts one more store write in flight and returns the callback that, once it is
    /// durable, writes the RECEIPT (if one was asked) or, if it failed, an ERROR that closes
    /// the connection (`what` says what was not stored).
    fn store_completion(&self, receipt: Option<&str>, what: &'static str) -> Accepted {
        self.pending.count.fetch_add(1, Ordering::AcqRel);
        let pending = self.pending.clone();
        let out = self.out_tx.clone();
        let receipt = receipt.map(str::to_string);
        Box::new(move |r| {
            match r {
                Ok(_) => {
                    if let Some(r) = receipt {
                        let _ = out.send(Out::Frame(
                            Frame::new(Command::Receipt).with_header("receipt-id", r),
                        ));
                    }
                }
                Err(e) => {
                    let _ = out.send(Out::Fatal(error_frame(
                        &format!("{what}: {e}"),
                        receipt.as_deref(),
                    )));
                }
            }
            pending.count.fetch_sub(1, Ordering::AcqRel);
            pending.notify.notify_one();
        })
    }

    fn on_subscribe(&mut self, f: &Frame) -> Result<Reply, String> {
        let dest_s = f
            .header("destination")
            .ok_or("SUBSCRIBE without a destination header")?;
        let id = match f.header("id") {
            Some(id) => id.to_string(),
            None if self.version() == Version::V1_0 => dest_s.to_string(),
            None => return Err("SUBSCRIBE without an id header".into()),
        };
        if self.subs.contains_key(&id) || self.advisory.as_ref().is_some_and(|(a, _)| *a == id) {
            return Err(format!("subscription id '{id}' is already in use"));
        }
        if demand::is_advisory(dest_s) {
            return self.subscribe_advisory(dest_s, id);
        }
        let dest = Destination::parse(dest_s)?;
        let ack = match f.header("ack").unwrap_or("auto") {
            "auto" => AckMode::Auto,
            "client" => AckMode::Client,
            "client-individual" => AckMode::ClientIndividual,
            other => {
                return Err(format!(
                    "ack mode '{other}' is not one of auto, client, client-individual"
                ));
            }
        };
        let prefetch = match f.header(PREFETCH_HEADER) {
            None => self.broker.settings().prefetch,
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(format!(
                        "{PREFETCH_HEADER} '{v}' must be a whole number above 0"
                    ));
                }
            },
        };
        let network = self.bridge.is_some();
        let priority = match f.header(PRIORITY_HEADER) {
            Some(v) => v
                .trim()
                .parse::<i32>()
                .map_err(|_| format!("{PRIORITY_HEADER} '{v}' is not a whole number"))?,
            None if network => -5,
            None => 0,
        };
        let bridge = match &self.bridge {
            Some(b) => Some(Arc::new(bridge_consumer(b, f)?)),
            None => None,
        };
        let consumer = self.broker.next_id();
        let spec = ConsumerSpec {
            id: consumer,
            conn: self.conn,
            prefetch,
            priority,
            network,
            bridge,
            tx: self.deliver_tx.clone(),
        };
        // Deliveries made during attach wait in the channel until this frame is handled,
        // so registering after attaching loses nothing.
        let attached = self.broker.subscribe(&dest, spec);
        self.by_consumer.insert(consumer, id.clone());
        self.subs.insert(
            id.clone(),
            Sub {
                id: id.clone(),
                consumer,
                ack,
                attached,
                unacked: VecDeque::new(),
            },
        );
        let n = self.subs.len() as u64;
        self.broker
            .update_connection(self.conn, |m| m.subscriptions = n);
        Ok(Reply::Now)
    }

    /// A bridge subscribes to this node's demand: a snapshot now and on every change.
    fn subscribe_advisory(&mut self, dest: &str, id: String) -> Result<Reply, String> {
        if self.bridge.is_none() {
            return Err(format!(
                "{dest} is served to network bridges only (CONNECT with {BRIDGE_HEADER})"
            ));
        }
        if dest != demand::ADVISORY_DESTINATION {
            return Err(format!(
                "unknown advisory destination {dest}; bridges subscribe to {}",
                demand::ADVISORY_DESTINATION
            ));
        }
        if self.advisory.is_some() {
            return Err("the demand advisory is already subscribed".into());
        }
        self.advisory = Some((id, String::new()));
        self.demand_rx = Some(self.broker.demand_changes());
        self.send_advisory(true);
        Ok(Reply::Now)
    }

    /// Sends the demand snapshot to the bridge if it changed since the last one (or always).
    fn send_advisory(&mut self, always: bool) {
        let Some((id, last)) = &mut self.advisory else {
            return;
        };
        let snap = demand::snapshot(&self.broker, Some(self.conn), self.bridge.as_deref());
        let body = serde_json::to_string(&snap).unwrap_or_default();
        if !always && body == *last {
            return;
        }
        *last = body.clone();
        let f = Frame::new(Command::Message)
            .with_header("subscription", id.as_str())
            .with_header("message-id", self.broker.new_message_id())
            .with_header("destination", demand::ADVISORY_DESTINATION)
            .with_header("content-type", "application/json")
            .with_body(Bytes::from(body));
        let _ = self.out_tx.send(Out::Frame(f));
    }

    fn on_unsubscribe(&mut self, f: &Frame) -> Result<Reply, String> {
        let id = match (f.header("id"), f.header("destination")) {
            (Some(id), _) => id.to_string(),
            (None, Some(d)) if self.version() == Version::V1_0 => d.to_string(),
            _ => return Err("UNSUBSCRIBE without an id header".into()),
        };
        if self.advisory.as_ref().is_some_and(|(a, _)| *a == id) {
            self.advisory = None;
            self.demand_rx = None;
            return Ok(Reply::Now);
        }
        let sub = self
            .subs
            .remove(&id)
            .ok_or_else(|| format!("no subscription with id '{id}'"))?;
        self.by_consumer.remove(&sub.consumer);
        self.broker.unsubscribe(&sub.attached, sub.consumer);
        let n = self.subs.len() as u64;
        self.broker
            .update_connection(self.conn, |m| m.subscriptions = n);
        Ok(Reply::Now)
    }

    /// Finds the subscription and ack id an ACK/NACK frame names.
    fn ack_target(&self, f: &Frame) -> Result<(String, String), String> {
        match self.version() {
            Version::V1_2 => {
                let id = f.header("id").ok_or("ACK/NACK without an id header")?;
                let sub = id
                    .split_once(':')
                    .and_then(|(c, _)| c.parse::<u64>().ok())
                    .and_then(|c| self.by_consumer.get(&c))
                    .ok_or_else(|| format!("no message with ack id '{id}' is awaiting an ack"))?;
                Ok((sub.clone(), id.to_string()))
            }
            v => {
                let mid = f
                    .header("message-id")
                    .ok_or("ACK/NACK without a message-id header")?;
                let sub = match f.header("subscription") {
                    Some(s) => s.to_string(),
                    None if v == Version::V1_0 => self
                        .subs
                        .values()
                        .find(|s| s.unacked.iter().any(|u| &*u.message_id == mid))
                        .map(|s| s.id.clone())
                        .ok_or_else(|| format!("no message '{mid}' is awaiting an ack"))?,
                    None => return Err("ACK/NACK without a subscription header".into()),
                };
                let s = self
                    .subs
                    .get(&sub)
                    .ok_or_else(|| format!("no subscription with id '{sub}'"))?;
                let u = s
                    .unacked
                    .iter()
                    .find(|u| &*u.message_id == mid)
                    .ok_or_else(|| format!("no message '{mid}' is awaiting an ack"))?;
                Ok((sub, u.ack_id.clone()))
            }
        }
    }

    fn on_ack(&mut self, f: &Frame, nack: bool, receipt: Option<&str>) -> Result<Reply, String> {
        let (sub, ack_id) = self.ack_target(f)?;
        if let Some(tx) = f.header("transaction") {
            let ops = self
                .txs
                .get_mut(tx)
                .ok_or_else(|| format!("transaction '{tx}' was not begun"))?;
            ops.push(TxOp::Ack { sub, ack_id, nack });
            return Ok(Reply::Now);
        }
        let mut fx = Effects::default();
        self.apply_ack(&sub, &ack_id, nack, &mut fx)?;
        if fx.is_empty() || self.broker.store().is_none() {
            self.broker.apply(fx, None);
            return Ok(Reply::Now);
        }
        match receipt {
            None => {
                self.broker.apply(fx, None);
                Ok(Reply::Now)
            }
            Some(r) => {
                let out = self.out_tx.clone();
                let r = r.to_string();
                self.broker.apply(
                    fx,
                    Some(Box::new(move |res| {
                        let f = match res {
                            Ok(_) => Frame::new(Command::Receipt).with_header("receipt-id", r),
                            Err(e) => {
                                let _ = out.send(Out::Fatal(error_frame(
                                    &format!("ack not stored: {e}"),
                                    Some(&r),
                                )));
                                return;
                            }
                        };
                        let _ = out.send(Out::Frame(f));
                    })),
                );
                Ok(Reply::Later)
            }
        }
    }

    /// Acks (or nacks) one delivery, or every earlier one too in `client` mode.
    fn apply_ack(
        &mut self,
        sub: &str,
        ack_id: &str,
        nack: bool,
        fx: &mut Effects,
    ) -> Result<(), String> {
        let s = self
            .subs
            .get_mut(sub)
            .ok_or_else(|| format!("no subscription with id '{sub}'"))?;
        let pos = s
            .unacked
            .iter()
            .position(|u| u.ack_id == ack_id)
            .ok_or_else(|| format!("no message with ack id '{ack_id}' is awaiting an ack"))?;
        // ACK in `client` mode is cumulative; a NACK always names one message.
        let taken: Vec<Unacked> = match s.ack {
            AckMode::Client if !nack => s.unacked.drain(..=pos).collect(),
            _ => s.unacked.remove(pos).into_iter().collect(),
        };
        if let Attached::Queue(q) = &s.attached {
            for u in taken {
                if nack {
                    q.nack(u.seq, s.consumer, fx);
                } else if self.bridge.is_some() {
                    // A bridge acks once its own node has the message: forwarded.
                    q.ack_forwarded(u.seq, s.consumer, fx);
                } else {
                    q.ack(u.seq, s.consumer, fx);
                }
            }
        }
        Ok(())
    }

    fn on_begin(&mut self, f: &Frame) -> Result<Reply, String> {
        let tx = f
            .header("transaction")
            .ok_or("BEGIN without a transaction header")?;
        if self.txs.contains_key(tx) {
            return Err(format!("transaction '{tx}' is already open"));
        }
        self.txs.insert(tx.to_string(), Vec::new());
        Ok(Reply::Now)
    }

    fn on_commit(&mut self, f: &Frame, receipt: Option<&str>) -> Result<Reply, String> {
        let tx = f
            .header("transaction")
            .ok_or("COMMIT without a transaction header")?;
        let ops = self
            .txs
            .remove(tx)
            .ok_or_else(|| format!("transaction '{tx}' was not begun"))?;
        let mut fx = Effects::default();
        let mut msgs = Vec::new();
        for op in ops {
            match op {
                TxOp::Send(m) => msgs.push(m),
                TxOp::Ack { sub, ack_id, nack } => {
                    // An ack of a message that is no longer pending (redelivered elsewhere)
                    // is skipped, as ActiveMQ does.
                    let _ = self.apply_ack(&sub, &ack_id, nack, &mut fx);
                }
            }
        }
        let deletes = std::mem::take(&mut fx.delete);
        self.broker.apply(fx, None);
        if msgs.is_empty() && deletes.is_empty() {
            return Ok(Reply::Now);
        }
        let done = self.store_completion(receipt, "transaction not stored");
        // Ordered: the transaction's messages go after everything this connection sent before.
        self.broker
            .publish_batch(msgs, deletes, Some(self.conn), true, false, Some(done));
        Ok(Reply::Later)
    }

    fn on_abort(&mut self, f: &Frame) -> Result<Reply, String> {
        let tx = f
            .header("transaction")
            .ok_or("ABORT without a transaction header")?;
        self.txs
            .remove(tx)
            .ok_or_else(|| format!("transaction '{tx}' was not begun"))?;
        Ok(Reply::Now)
    }

    /// Encodes a MESSAGE frame for a delivery.
    fn write_delivery(
        &mut self,
        d: Delivery,
        out: &mut BytesMut,
        auto_acks: &mut Vec<(Arc<Queue>, u64, u64)>,
    ) {
        let Some(sub_id) = self.by_consumer.get(&d.consumer) else {
            // Unsubscribed meanwhile: the queue redelivers it (remove_consumer ran).
            return;
        };
        let Some(sub) = self.subs.get_mut(sub_id) else {
            return;
        };
        let m = &d.message;
        let ack_id = format!("{}:{}", d.consumer, m.id);
        let mut f = Frame::new(Command::Message)
            .with_header("subscription", sub.id.as_str())
            .with_header("message-id", &*m.id)
            .with_header("destination", &*m.destination);
        if sub.ack != AckMode::Auto && self.version.unwrap_or(Version::V1_2) == Version::V1_2 {
            f.push_header("ack", ack_id.as_str());
        }
        if d.redelivered {
            f.push_header("redelivered", "true");
        }
        if m.expires != 0 && m.header("expires").is_none() {
            f.push_header("expires", m.expires.to_string());
        }
        let mut path_written = false;
        for (k, v) in &m.headers {
            if k == BROKER_PATH_HEADER {
                // Clients never see the broker path; a bridge gets it with this node added.
                if let Some(me) = self.bridge.as_ref().map(|_| self.broker.name())
                    && !path_written
                {
                    f.push_header(k.as_str(), format!("{v},{me}"));
                    path_written = true;
                }
                continue;
            }
            f.push_header(k.as_str(), v.as_str());
        }
        if self.bridge.is_some() {
            if !path_written {
                f.push_header(BROKER_PATH_HEADER, self.broker.name());
            }
            // The bridge stores what was stored here, whoever produced it.
            if m.persistent && m.header("persistent").is_none() {
                f.push_header("persistent", "true");
            }
        }
        f.body = m.body.clone();
        encode(&f, self.version.unwrap_or(Version::V1_2), out);
        match (sub.ack, &d.queue) {
            (AckMode::Auto, Some(q)) => auto_acks.push((q.clone(), d.seq, d.consumer)),
            (AckMode::Auto, None) => {}
            (_, _) => sub.unacked.push_back(Unacked {
                ack_id,
                message_id: m.id.clone(),
                seq: d.seq,
            }),
        }
    }

    /// Acks messages of auto-ack subscriptions once they are written to the socket.
    fn auto_ack(&mut self, acks: &mut Vec<(Arc<Queue>, u64, u64)>) {
        let mut fx = Effects::default();
        for (q, seq, consumer) in acks.drain(..) {
            q.ack(seq, consumer, &mut fx);
        }
        if !fx.is_empty() {
            self.broker.apply(fx, None);
        }
    }

    fn cleanup(&mut self) {
        self.txs.clear();
        for (_, sub) in self.subs.drain() {
            self.broker.unsubscribe(&sub.attached, sub.consumer);
        }
        self.by_consumer.clear();
        for q in self.produced_queues.drain(..) {
            q.remove_producer(self.conn);
        }
        self.broker.unregister_connection(self.conn);
    }
}

/// The network consumer a bridge's SUBSCRIBE asks for: it forwards to broker `bridge`, stands
/// for demand [`demand::HOPS_HEADER`] hops away behind [`demand::ORIGIN_HEADER`], and takes
/// messages within the bridge's [`demand::MESSAGE_TTL_HEADER`].
fn bridge_consumer(bridge: &str, f: &Frame) -> Result<NetworkConsumer, String> {
    let num = |name: &str, default: u32| -> Result<u32, String> {
        match f.header(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<u32>()
                .map_err(|_| format!("{name} '{v}' is not a whole number")),
        }
    };
    let remote: Arc<str> = Arc::from(bridge);
    let mut origin = vec![remote.clone()];
    if let Some(v) = f.header(demand::ORIGIN_HEADER) {
        origin.extend(
            demand::parse_brokers(v)
                .into_iter()
                .filter(|b| *b != remote),
        );
    }
    Ok(NetworkConsumer {
        remote_broker: remote,
        hops: num(demand::HOPS_HEADER, 1)?,
        origin,
        message_ttl: num(demand::MESSAGE_TTL_HEADER, mq_shared::defaults::NETWORK_TTL)?,
    })
}

/// Whether the receipt goes out now or from a store callback.
enum Reply {
    Now,
    Later,
}

fn parse_heartbeat(v: Option<&str>) -> Result<(u64, u64), String> {
    let Some(v) = v else { return Ok((0, 0)) };
    let (a, b) = v
        .split_once(',')
        .ok_or_else(|| format!("heart-beat '{v}' is not two numbers 'cx,cy'"))?;
    let p = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| format!("heart-beat '{v}' is not two numbers 'cx,cy'"))
    };
    Ok((p(a)?, p(b)?))
}
