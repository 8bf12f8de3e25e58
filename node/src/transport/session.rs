//! One STOMP session: what each client frame means, against the broker core's API.
//!
//! The session never touches the socket: it answers through [`Out`] (written by the
//! connection task, in order, also from store callbacks once a commit is durable) and turns
//! deliveries into MESSAGE frames for the connection task to write. Life of a session:
//! `Connecting` (only CONNECT/STOMP accepted) → `Connected` → closed; on close, open
//! transactions are aborted and unacked messages are redelivered.
//!
//! A connection whose CONNECT names a broker in [`BRIDGE_HEADER`] is another node's network
//! bridge: CONNECTED names this node back, its subscriptions are network consumers (with the
//! loop filter and demand hops of the inter-node protocol), it may subscribe to the demand
//! advisory, and its sends keep their message ids and are de-duplicated.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use mq_shared::api::ConnectionKind;
use mq_shared::connection::Timers;
use mq_shared::destination::Destination;
use mq_shared::frame::{Command, Frame, Version};
use mq_shared::heartbeat;
use tokio::sync::{Notify, mpsc, watch};

use super::TransportSettings;
use super::names::Names;
use super::subscription::{self, AckMode, Sub, Subscriptions, Unacked};
use super::transaction::{self, Transactions, TxOp};
use crate::broker::scheduler::Spec;
use crate::broker::{
    Accepted, AckHandle, ConsumerSpec, Core, Delivery, Message, NetworkConsumer, Outgoing, Permit,
    Settle, TempOwner,
};
use mq_shared::headers::CLIENT_ID;

use crate::internode::{
    ADVISORY_DESTINATION, BRIDGE_HEADER, BROKER_HEADER, BridgeSubscription, is_advisory,
};
use crate::security::{AuthError, Operation, Principal};

/// ActiveMQ's base priority of network consumers (`ConsumerInfo.NETWORK_CONSUMER_PRIORITY`).
const NETWORK_PRIORITY: i32 = -5;

/// Something for the connection task to write.
pub enum Out {
    /// A frame.
    Frame(Frame),
    /// An ERROR frame; the connection closes after writing it.
    Fatal(Frame),
}

/// Store writes a session has outstanding; its reads pause above a bound.
pub struct Pending {
    count: AtomicUsize,
    /// Bytes of the messages those writes carry.
    bytes: AtomicUsize,
    /// Notified whenever one completes.
    pub notify: Notify,
}

impl Pending {
    /// Outstanding writes.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Bytes of messages in the outstanding writes.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Acquire)
    }

    fn start(&self, bytes: usize) {
        self.count.fetch_add(1, Ordering::AcqRel);
        self.bytes.fetch_add(bytes, Ordering::AcqRel);
    }

    fn finish(&self, bytes: usize) {
        self.bytes.fetch_sub(bytes, Ordering::AcqRel);
        self.count.fetch_sub(1, Ordering::AcqRel);
        self.notify.notify_one();
    }
}

/// Ends the connection; `Some` carries an ERROR frame to send first.
pub struct Close(pub Option<Frame>);

/// Whether the receipt goes out now or from a store callback.
enum Reply {
    Now,
    Later,
}

/// An ERROR frame with `message` (and `receipt-id` when the frame asked for a receipt).
pub fn error_frame(message: &str, receipt: Option<&str>) -> Frame {
    let mut f = Frame::new(Command::Error).with_header("message", message);
    if let Some(r) = receipt {
        f.push_header("receipt-id", r);
    }
    f.with_header("content-type", "text/plain")
        .with_body(Bytes::from(message.to_string()))
}

/// The STOMP state of one connection.
pub struct Session {
    conn: u64,
    broker: Core,
    settings: Arc<TransportSettings>,
    version: Option<Version>,
    /// Timers agreed at CONNECT, for the connection task to apply.
    pub timers: Option<Timers>,
    bridge: Option<String>,
    subs: Subscriptions,
    txs: Transactions,
    produced: HashSet<Destination>,
    /// Its temporary destinations, by the names it gave them.
    names: Names,
    /// Store writes outstanding.
    pub pending: Arc<Pending>,
    out_tx: mpsc::UnboundedSender<Out>,
    deliver_tx: mpsc::UnboundedSender<Delivery>,
    /// DISCONNECT seen: read nothing more, close once pending writes are done.
    pub disconnecting: bool,
    /// A bridge's subscription to the demand advisory: its id and the last snapshot sent.
    advisory: Option<(String, String)>,
    /// Ticks when consumers change, while the advisory is subscribed.
    pub demand_rx: Option<watch::Receiver<u64>>,
    unregistered: bool,
    /// Who logged in (after CONNECT).
    principal: Option<Principal>,
    /// The peer is on a loopback address.
    from_loopback: bool,
    /// A SEND held by producer flow control: nothing more is read until it is taken.
    held: Option<Held>,
    /// The CONNECT's `client-id` (held by this connection until it closes).
    client_id: Option<String>,
}

/// A SEND waiting for space (`producer-flow-control`).
struct Held {
    msgs: Vec<Message>,
    receipt: Option<String>,
    from_bridge: bool,
    since: std::time::Instant,
}

impl Session {
    /// A session for connection `conn` (registered with the broker), answering on `out_tx`
    /// and receiving deliveries on the receiver of `deliver_tx`.
    pub fn new(
        conn: u64,
        broker: Core,
        settings: Arc<TransportSettings>,
        from_loopback: bool,
        out_tx: mpsc::UnboundedSender<Out>,
        deliver_tx: mpsc::UnboundedSender<Delivery>,
    ) -> Session {
        Session {
            conn,
            broker,
            settings,
            version: None,
            timers: None,
            bridge: None,
            subs: Subscriptions::default(),
            txs: Transactions::default(),
            produced: HashSet::new(),
            names: Names::default(),
            pending: Arc::new(Pending {
                count: AtomicUsize::new(0),
                bytes: AtomicUsize::new(0),
                notify: Notify::new(),
            }),
            out_tx,
            deliver_tx,
            disconnecting: false,
            advisory: None,
            demand_rx: None,
            unregistered: false,
            principal: None,
            from_loopback,
            held: None,
            client_id: None,
        }
    }

    /// The node's usage, whose changes wake a held SEND.
    pub fn usage(&self) -> Arc<crate::broker::usage::Usage> {
        self.broker.usage().clone()
    }

    /// Whether a SEND waits for space: the connection reads nothing more meanwhile.
    pub fn is_held(&self) -> bool {
        self.held.is_some()
    }

    /// Tries the held SEND again: `Ok(true)` once it is published (frames behind it may be
    /// read again), `Ok(false)` while it still waits, `Err` with the ERROR when its wait is
    /// over (`send-fail-if-no-space-after-timeout`).
    pub fn retry_held(&mut self) -> Result<bool, Close> {
        let Some(h) = self.held.take() else {
            return Ok(true);
        };
        match h.msgs.iter().try_for_each(|m| self.broker.admit(m)) {
            Ok(()) => {
                self.publish(h.msgs, h.receipt.as_deref(), h.from_bridge);
                Ok(true)
            }
            Err(full) => {
                let flow = self.broker.usage().limits().flow;
                if !full.is_transient() && flow.fail_after.is_some_and(|t| h.since.elapsed() >= t) {
                    self.broker.usage().count_refused();
                    return Err(Close(Some(error_frame(
                        &full.to_string(),
                        h.receipt.as_deref(),
                    ))));
                }
                self.held = Some(h);
                Ok(false)
            }
        }
    }

    /// The negotiated version, once connected.
    pub fn connected(&self) -> Option<Version> {
        self.version
    }

    fn version(&self) -> Version {
        self.version.unwrap_or(Version::V1_2)
    }

    /// Handles one frame. `Err(Close(Some(error)))` closes after sending the error;
    /// `Err(Close(None))` is an orderly DISCONNECT.
    pub fn handle(&mut self, f: Frame) -> Result<(), Close> {
        let receipt = f.header("receipt").map(str::to_string);
        let fail = |msg: String| Close(Some(error_frame(&msg, receipt.as_deref())));
        if self.version.is_none() {
            // CONNECT itself goes through `authenticate` and `connect`.
            return Err(fail(format!(
                "{} before CONNECT: a CONNECT frame must come first",
                f.command.as_str()
            )));
        }
        let r = match f.command {
            Command::Send => self.on_send(f, receipt.as_deref()),
            Command::Subscribe => self.on_subscribe(&f),
            Command::Unsubscribe => self.on_unsubscribe(&f),
            Command::Ack => self.on_ack(&f, false, receipt.as_deref()),
            Command::Nack => self.on_ack(&f, true, receipt.as_deref()),
            Command::Begin => transaction::name(&f, "BEGIN")
                .and_then(|tx| self.txs.begin(tx))
                .map(|()| Reply::Now),
            Command::Commit => self.on_commit(&f, receipt.as_deref()),
            Command::Abort => transaction::name(&f, "ABORT")
                .and_then(|tx| self.txs.end(tx))
                .map(|_| Reply::Now),
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
        if self.pending.count() == 0 {
            self.send_now(f);
            return;
        }
        let out = self.out_tx.clone();
        let pending = self.pending.clone();
        pending.start(0);
        self.broker.barrier(Box::new(move |_| {
            let _ = out.send(Out::Frame(f));
            pending.finish(0);
        }));
    }

    /// Checks a CONNECT's `login` and `passcode` (off the connection task: a password check
    /// is slow by design); the result goes to [`Session::connect`].
    pub fn authenticate(
        &self,
        f: Frame,
    ) -> impl std::future::Future<Output = (Frame, Result<Principal, AuthError>)> + Send + 'static
    {
        let security = self.settings.security.clone();
        let from_loopback = self.from_loopback;
        async move {
            let r = security
                .authenticate_async(f.header("login"), f.header("passcode"), from_loopback)
                .await;
            (f, r)
        }
    }

    /// Answers a CONNECT once its login was checked: CONNECTED, or ERROR `authentication
    /// failed` (without saying which part was wrong) and a close.
    pub fn connect(
        &mut self,
        f: Frame,
        principal: Result<Principal, AuthError>,
    ) -> Result<(), Close> {
        let principal = match principal {
            Ok(p) => p,
            Err(e) => {
                tracing::info!(conn = self.conn, login = ?f.header("login"), "authentication failed");
                return Err(Close(Some(error_frame(
                    &e.to_string(),
                    f.header("receipt"),
                ))));
            }
        };
        if f.header(BRIDGE_HEADER).is_some() && !principal.bridge {
            return Err(Close(Some(error_frame(
                &format!(
                    "{} may not act as a network bridge (not in bridge-groups)",
                    principal.describe()
                ),
                f.header("receipt"),
            ))));
        }
        self.principal = Some(principal);
        self.on_connect(&f)
    }

    /// Fails with the denial's sentence unless this connection may do `op` on `dest`. A
    /// temporary destination is checked under its `/temp-queue/ID` name (the `temp://`
    /// entries), and reading one is only asked by its owner.
    fn allow(&self, op: Operation, dest: &Destination) -> Result<(), String> {
        let security = &self.settings.security;
        let Some(p) = &self.principal else {
            return Err("not connected".into());
        };
        if dest.is_temp() {
            let prefix = if dest.is_queue() {
                mq_shared::destination::TEMP_QUEUE_PREFIX
            } else {
                mq_shared::destination::TEMP_TOPIC_PREFIX
            };
            return security
                .authorize_owned(p, op, &format!("{prefix}{}", dest.name()))
                .map_err(|d| d.to_string());
        }
        security
            .authorize(p, op, dest.as_str())
            .map_err(|d| d.to_string())?;
        // Subscribing to a pattern creates nothing.
        if !dest.has_wildcard() && !self.broker.exists(dest) {
            // Creating a destination on first use is ActiveMQ's admin right.
            security
                .authorize(p, Operation::Admin, dest.as_str())
                .map_err(|d| d.to_string())?;
        }
        Ok(())
    }

    fn on_connect(&mut self, f: &Frame) -> Result<(), Close> {
        let Some(v) = Version::negotiate(f.header("accept-version")) else {
            let e = error_frame(
                "Supported protocol versions are 1.0,1.1,1.2",
                f.header("receipt"),
            )
            .with_header("version", "1.0,1.1,1.2");
            return Err(Close(Some(e)));
        };
        self.version = Some(v);
        let mut connected = Frame::new(Command::Connected)
            .with_header("version", v.as_str())
            .with_header("server", format!("mq/{}", env!("CARGO_PKG_VERSION")))
            .with_header("session", format!("{}-{}", self.broker.name(), self.conn));
        if v >= Version::V1_1 {
            let theirs = match f.header("heart-beat") {
                None => (0, 0),
                Some(h) => heartbeat::parse(h).ok_or_else(|| {
                    Close(Some(error_frame(
                        &format!("heart-beat '{h}' is not two numbers 'cx,cy'"),
                        f.header("receipt"),
                    )))
                })?,
            };
            let offer = self.settings.heartbeat_ms;
            // The server offers `offer` each way, but only where the client asked for beats.
            let mine = (
                if theirs.1 > 0 { offer } else { 0 },
                if theirs.0 > 0 { offer } else { 0 },
            );
            connected.push_header("heart-beat", format!("{},{}", mine.0, mine.1));
            let agreed = heartbeat::agree((offer, offer), theirs);
            self.timers = Some(Timers::from_heart_beats(
                agreed,
                mq_shared::defaults::HEARTBEAT_GRACE,
            ));
        } else {
            self.timers = Some(Timers::default());
        }
        if let Some(r) = f.header(mq_shared::headers::REQUEST_ID) {
            connected.push_header(mq_shared::headers::RESPONSE_ID, r);
        }
        if let Some(id) = f.header(CLIENT_ID) {
            if id.is_empty() {
                return Err(Close(Some(error_frame(
                    "client-id is empty: give the connection a name, or leave the header out",
                    f.header("receipt"),
                ))));
            }
            // One connection at a time per client-id (ActiveMQ refuses a duplicate).
            self.broker
                .claim_client_id(id, self.conn)
                .map_err(|e| Close(Some(error_frame(&e, f.header("receipt")))))?;
            self.client_id = Some(id.to_string());
        }
        self.bridge = f.header(BRIDGE_HEADER).map(str::to_string);
        if self.bridge.is_some() {
            connected.push_header(BROKER_HEADER, self.broker.name());
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
        let from_bridge = self.bridge.is_some();
        let tx = f.header("transaction").map(str::to_string);
        let broker = self.broker.clone();
        let msgs = if from_bridge {
            // A bridge forwards to one concrete destination, under its global name.
            vec![Message::from_frame(f, true, || broker.new_message_id())?]
        } else {
            let text = f
                .header("destination")
                .ok_or("SEND without a destination header")?
                .to_string();
            let dests = self.names.resolve_send(&text, &self.broker, self.conn)?;
            if let Some(r) = f.header(mq_shared::headers::REPLY_TO)
                && mq_shared::destination::own_temp(r).is_some()
            {
                // The responder gets a name it can send to.
                let d = self.names.resolve(r, &self.broker, self.conn)?;
                f.set_header(mq_shared::headers::REPLY_TO, d.as_str());
            }
            f.set_header("destination", dests[0].as_str());
            let first = Message::from_frame(f, false, || broker.new_message_id())?;
            let mut msgs = Vec::with_capacity(dests.len());
            for d in &dests[1..] {
                // Each part is a message of its own, with its own id.
                let mut m = first.clone();
                m.destination = d.clone();
                m.id = Arc::from(broker.new_message_id());
                msgs.push(m);
            }
            msgs.insert(0, first);
            msgs
        };
        // Scheduled delivery, its headers checked before anything else happens (not for a
        // bridge's forward: a fired copy has no such headers).
        let scheduled = match (from_bridge, self.broker.scheduler_support(), msgs.first()) {
            (false, true, Some(m)) => Spec::of(m)?,
            _ => None,
        };
        for m in &msgs {
            // (A bridge's forward to one is accepted and dropped: refusing it would break the
            // link, and the message would come again.)
            if !from_bridge
                && m.destination.is_temp()
                && self.broker.temp_owner(&m.destination) == TempOwner::Gone
            {
                return Err(format!(
                    "temporary destination {} no longer exists: the connection that created it has closed",
                    m.destination
                ));
            }
            self.allow(Operation::Write, &m.destination)?;
        }
        for m in &msgs {
            if !self.produced.contains(&m.destination) {
                self.broker.add_producer(&m.destination, self.conn);
                self.produced.insert(m.destination.clone());
            }
        }
        if let Some(tx) = tx {
            // A transaction's scheduled messages become jobs when it commits.
            for m in msgs {
                self.txs.push(&tx, TxOp::Send(m))?;
            }
            return Ok(Reply::Now);
        }
        if let Some(spec) = scheduled {
            self.broker.schedule(msgs, &spec, || {
                self.store_completion(receipt, "scheduled message not stored")
            })?;
            return Ok(Reply::Later);
        }
        if let Err(full) = msgs.iter().try_for_each(|m| self.broker.admit(m)) {
            let flow = self.broker.usage().limits().flow;
            if !full.is_transient() && (!flow.hold || flow.fail_at_once) {
                self.broker.usage().count_refused();
                return Err(full.to_string());
            }
            // Held: no RECEIPT and nothing more read until there is room.
            tracing::debug!(conn = self.conn, reason = %full, "SEND held by producer flow control");
            // (Waiting for the temp store's writer is pacing, not a limit reached.)
            if !full.is_transient() {
                self.broker.usage().count_held();
            }
            self.held = Some(Held {
                msgs,
                receipt: receipt.map(str::to_string),
                from_bridge,
                since: std::time::Instant::now(),
            });
            return Ok(Reply::Later);
        }
        self.publish(msgs, receipt, from_bridge);
        Ok(Reply::Later)
    }

    /// Publishes a SEND's message (a composite SEND's messages); its RECEIPT (or ERROR)
    /// follows the store.
    fn publish(&mut self, msgs: Vec<Message>, receipt: Option<&str>, from_bridge: bool) {
        let ordered = self.pending.count() > 0;
        let bytes = msgs.iter().map(|m| m.size() as usize).sum();
        let done = self.store_completion_of(bytes, receipt, "message not stored");
        if msgs.len() == 1 {
            if let Some(msg) = msgs.into_iter().next() {
                self.broker
                    .publish(msg, Some(self.conn), ordered, from_bridge, Some(done));
            }
        } else {
            // A composite SEND: every part in one store commit, the RECEIPT once all of them
            // are stored.
            self.broker
                .commit_transaction(msgs, Vec::new(), Some(self.conn), done);
        }
    }

    /// Counts one more store write in flight and returns the callback that, once it is
    /// durable (at once when nothing was stored), writes the RECEIPT (if one was asked) or,
    /// if it failed, an ERROR that closes the connection (`what` says what was not stored).
    fn store_completion(&self, receipt: Option<&str>, what: &'static str) -> Accepted {
        self.store_completion_of(0, receipt, what)
    }

    /// [`Session::store_completion`] of a write carrying `bytes` of messages: reads pause
    /// while too many bytes wait for the store (`MAX_PENDING_BYTES`).
    fn store_completion_of(
        &self,
        bytes: usize,
        receipt: Option<&str>,
        what: &'static str,
    ) -> Accepted {
        self.pending.start(bytes);
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
            pending.finish(bytes);
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
        if self.subs.contains(&id) || self.advisory.as_ref().is_some_and(|(a, _)| *a == id) {
            return Err(format!("subscription id '{id}' is already in use"));
        }
        if is_advisory(dest_s) {
            return self.subscribe_advisory(dest_s, id);
        }
        if dest_s.contains(',') {
            return Err(format!(
                "SUBSCRIBE to composite destination '{dest_s}': composite destinations are for SEND; subscribe to each part, or to a wildcard"
            ));
        }
        let dest = self.names.resolve(dest_s, &self.broker, self.conn)?;
        if dest.has_wildcard() {
            crate::broker::wildcard_pattern(&dest)?;
        }
        let durable = self.durable_name(f, &dest)?;
        if dest.is_temp() && self.bridge.is_none() {
            match self.broker.temp_owner(&dest) {
                TempOwner::Connection(c) if c == self.conn => {}
                _ => {
                    return Err(format!(
                        "cannot SUBSCRIBE to {dest}: only the connection that created a temporary destination consumes from it"
                    ));
                }
            }
        }
        self.allow(Operation::Read, &dest)?;
        let mut options = subscription::options(f, &dest)?;
        if dest.has_wildcard()
            && self.settings.security.is_enabled()
            && let Some(p) = self.principal.clone()
        {
            // A pattern the reader may subscribe to reaches only what it may read.
            let security = self.settings.security.clone();
            options.permit = Some(Permit(Arc::new(move |d: &str| {
                security.authorize(&p, Operation::Read, d).is_ok()
            })));
        }
        let ack = AckMode::parse(f.header("ack"))?;
        let settings = self.broker.settings();
        let prefetch = subscription::prefetch(f, settings.prefetch, settings.max_prefetch)?;
        let network = self.bridge.is_some();
        let priority = subscription::priority(f, if network { NETWORK_PRIORITY } else { 0 })?;
        let bridge = match &self.bridge {
            Some(b) => {
                let s = BridgeSubscription::from_frame(b, f)?;
                Some(Arc::new(NetworkConsumer {
                    remote_broker: Arc::from(b.as_str()),
                    hops: s.hops,
                    origin: s.origin,
                    message_ttl: s.message_ttl,
                    scope: None,
                }))
            }
            None => None,
        };
        let consumer = self.broker.next_id();
        let selector = options.selector.clone();
        let spec = ConsumerSpec {
            id: consumer,
            conn: self.conn,
            prefetch,
            priority,
            network,
            bridge,
            options,
            tx: self.deliver_tx.clone(),
        };
        // Deliveries made during attach wait in the channel until this frame is handled,
        // so registering after attaching loses nothing.
        let durable_info = durable.clone().map(|n| (n, dest.to_string()));
        let (attached, reply) = match (durable, &self.client_id) {
            (Some(name), Some(client_id)) => {
                let text = f
                    .header(mq_shared::headers::SELECTOR)
                    .map(|t| t.trim().to_string());
                let (attached, ops) = self.broker.subscribe_durable(
                    client_id,
                    &name,
                    dest.name(),
                    text.zip(selector),
                    spec,
                )?;
                // The RECEIPT once the subscription is recorded.
                let done =
                    self.store_completion(f.header("receipt"), "durable subscription not stored");
                self.broker
                    .persist(ops, Some(Box::new(move |r| done(r.map(|_| false)))));
                (attached, Reply::Later)
            }
            _ => (self.broker.subscribe(&dest, spec), Reply::Now),
        };
        self.subs.insert(Sub {
            id,
            consumer,
            ack,
            attached,
            unacked: Default::default(),
            durable: durable_info,
        });
        self.count_subscriptions();
        Ok(reply)
    }

    /// The `activemq.subscriptionName` of a SUBSCRIBE to a topic (ignored on a queue, as
    /// ActiveMQ does), checked: it needs the connection's `client-id`, one plain topic, and a
    /// name this connection does not consume already.
    fn durable_name(&self, f: &Frame, dest: &Destination) -> Result<Option<String>, String> {
        use mq_shared::headers::SUBSCRIPTION_NAME;
        let Some(name) = f.header(SUBSCRIPTION_NAME) else {
            return Ok(None);
        };
        if dest.is_queue() {
            return Ok(None);
        }
        if self.client_id.is_none() {
            return Err(format!(
                "{SUBSCRIPTION_NAME} needs the {CLIENT_ID} header on CONNECT: a durable subscription belongs to a client-id"
            ));
        }
        if name.is_empty() {
            return Err(format!("{SUBSCRIPTION_NAME} is empty"));
        }
        if dest.is_temp() || dest.has_wildcard() {
            return Err(format!(
                "{SUBSCRIPTION_NAME}: a durable subscription is to one topic; {dest} is {}",
                if dest.is_temp() {
                    "temporary"
                } else {
                    "a wildcard pattern"
                }
            ));
        }
        if self.subs.durable_names().any(|n| n == name) {
            return Err(format!(
                "durable subscription '{name}' is already active on this connection"
            ));
        }
        Ok(Some(name.to_string()))
    }

    fn count_subscriptions(&self) {
        let n = self.subs.len() as u64;
        self.broker
            .update_connection(self.conn, |m| m.subscriptions = n);
    }

    /// A bridge subscribes to this node's demand: a snapshot now and on every change.
    fn subscribe_advisory(&mut self, dest: &str, id: String) -> Result<Reply, String> {
        if self.bridge.is_none() {
            return Err(format!(
                "{dest} is served to network bridges only (CONNECT with {BRIDGE_HEADER})"
            ));
        }
        if dest != ADVISORY_DESTINATION {
            return Err(format!(
                "unknown advisory destination {dest}; bridges subscribe to {ADVISORY_DESTINATION}"
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
    pub fn send_advisory(&mut self, always: bool) {
        let Some((id, last)) = &mut self.advisory else {
            return;
        };
        let snap = self
            .broker
            .advisory(Some(self.conn), self.bridge.as_deref());
        let body = serde_json::to_string(&snap).unwrap_or_default();
        if !always && body == *last {
            return;
        }
        *last = body.clone();
        let f = Frame::new(Command::Message)
            .with_header("subscription", id.as_str())
            .with_header("message-id", self.broker.new_message_id())
            .with_header("destination", ADVISORY_DESTINATION)
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
        let name = f.header(mq_shared::headers::SUBSCRIPTION_NAME);
        let sub = self.subs.remove(&id);
        if sub.is_none() && name.is_none() {
            return Err(format!("no subscription with id '{id}'"));
        }
        if let Some(sub) = sub {
            // Detaches; a durable subscription keeps its messages unless named below.
            self.broker.unsubscribe(&sub.attached, sub.consumer);
            self.count_subscriptions();
        }
        let Some(name) = name else {
            return Ok(Reply::Now);
        };
        // With activemq.subscriptionName: the durable subscription and its backlog go.
        let Some(client_id) = self.client_id.clone() else {
            return Err(format!(
                "{}: removing a durable subscription needs the {CLIENT_ID} header on CONNECT",
                mq_shared::headers::SUBSCRIPTION_NAME
            ));
        };
        match self.broker.remove_durable(&client_id, name) {
            Ok(Some((_, ops))) => {
                let done = self.store_completion(f.header("receipt"), "unsubscribe not stored");
                self.broker
                    .persist(ops, Some(Box::new(move |r| done(r.map(|_| false)))));
                Ok(Reply::Later)
            }
            Ok(None) => Ok(Reply::Now),
            Err(e) => Err(e.to_string()),
        }
    }

    /// How this connection's ACK settles a delivery: a bridge acks once its own node has the
    /// message, so its ACKs count as forwarded.
    fn settle_kind(&self, nack: bool) -> Settle {
        match (nack, self.bridge.is_some()) {
            (true, _) => Settle::Nack,
            (false, true) => Settle::Forwarded,
            (false, false) => Settle::Ack,
        }
    }

    fn on_ack(&mut self, f: &Frame, nack: bool, receipt: Option<&str>) -> Result<Reply, String> {
        let (sub, ack_id) = self.subs.ack_target(f, self.version())?;
        if let Some(tx) = f.header("transaction") {
            self.txs.push(tx, TxOp::Ack { sub, ack_id, nack })?;
            return Ok(Reply::Now);
        }
        let how = self.settle_kind(nack);
        let taken = self.subs.take(&sub, &ack_id, nack)?;
        let items = handles(taken, how);
        let Some(r) = receipt else {
            self.broker.settle(items, None);
            return Ok(Reply::Now);
        };
        let out = self.out_tx.clone();
        let r = r.to_string();
        self.broker.settle(
            items,
            Some(Box::new(move |res| {
                let f = match res {
                    Ok(_) => Out::Frame(Frame::new(Command::Receipt).with_header("receipt-id", r)),
                    Err(e) => Out::Fatal(error_frame(&format!("ack not stored: {e}"), Some(&r))),
                };
                let _ = out.send(f);
            })),
        );
        Ok(Reply::Later)
    }

    fn on_commit(&mut self, f: &Frame, receipt: Option<&str>) -> Result<Reply, String> {
        let tx = transaction::name(f, "COMMIT")?;
        let ops = self.txs.end(tx)?;
        let mut msgs = Vec::new();
        let mut acks = Vec::new();
        for op in ops {
            match op {
                TxOp::Send(m) => msgs.push(m),
                TxOp::Ack { sub, ack_id, nack } => {
                    // An ack of a message that is no longer pending (redelivered elsewhere)
                    // is skipped, as ActiveMQ does.
                    if let Ok(taken) = self.subs.take(&sub, &ack_id, nack) {
                        acks.extend(handles(taken, self.settle_kind(nack)));
                    }
                }
            }
        }
        let done = self.store_completion(receipt, "transaction not stored");
        // Ordered: the transaction's messages go after everything this connection sent before.
        self.broker
            .commit_transaction(msgs, acks, Some(self.conn), done);
        Ok(Reply::Later)
    }

    /// The MESSAGE frame for a delivery, and the handle to settle it with once it is written
    /// when its subscription is in `auto` mode. `None` when the subscription is gone (the
    /// queue redelivers the message: unsubscribing gave it back).
    pub fn delivery_frame(&mut self, d: Delivery) -> Option<(Frame, Option<AckHandle>)> {
        let version = self.version();
        let to_bridge = self.bridge.as_ref().map(|_| self.broker.name().to_string());
        let sub = self.subs.by_consumer(d.consumer)?;
        let m = &d.message;
        let ack_id = format!("{}:{}", d.consumer, m.id);
        let mut f = m.to_frame(Outgoing::Deliver {
            subscription: &sub.id,
            ack: (sub.ack != AckMode::Auto && version == Version::V1_2).then_some(&*ack_id),
            redelivered: d.redelivered,
            to_bridge: to_bridge.as_deref(),
        });
        if let Some((_, topic)) = &sub.durable {
            // A durable subscriber's messages come from its topic.
            f.set_header("destination", topic.as_str());
        }
        if !self.names.is_empty() {
            // The owner of a temporary destination sees it by the name it gave it.
            if let Some(n) = self.names.own_name(&m.destination) {
                f.set_header("destination", n);
            }
            if let Some(n) = f
                .header(mq_shared::headers::REPLY_TO)
                .and_then(|r| self.names.own_name_of(r))
            {
                let n = n.to_string();
                f.set_header(mq_shared::headers::REPLY_TO, n);
            }
        }
        let auto = match sub.ack {
            AckMode::Auto => d.ack,
            _ => {
                sub.unacked.push_back(Unacked {
                    ack_id,
                    message_id: m.id.clone(),
                    handle: d.ack,
                });
                None
            }
        };
        Some((f, auto))
    }

    /// Settles deliveries of `auto` subscriptions once written to the socket.
    pub fn auto_ack(&self, handles: impl IntoIterator<Item = AckHandle>) {
        self.broker
            .settle(handles.into_iter().map(|h| (h, Settle::Ack)), None);
    }

    /// How long the client may take to send CONNECT.
    pub fn connect_timeout(&self) -> Duration {
        self.settings.connect_timeout
    }

    /// Ends the session: open transactions are aborted, subscriptions detached (their unacked
    /// messages redelivered), producers and the connection forgotten. Runs when the session
    /// is dropped, also when its task panics; a second call does nothing.
    fn cleanup(&mut self) {
        self.txs.clear();
        for sub in self.subs.drain() {
            self.broker.unsubscribe(&sub.attached, sub.consumer);
        }
        for d in self.produced.drain() {
            self.broker.remove_producer(&d, self.conn);
        }
        self.broker.remove_temps(self.conn);
        if let Some(id) = self.client_id.take() {
            self.broker.release_client_id(&id, self.conn);
        }
        if !self.unregistered {
            self.unregistered = true;
            self.broker.unregister_connection(self.conn);
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.cleanup();
    }
}

fn handles(taken: Vec<Unacked>, how: Settle) -> Vec<(AckHandle, Settle)> {
    taken
        .into_iter()
        .filter_map(|u| u.handle.map(|h| (h, how)))
        .collect()
}
