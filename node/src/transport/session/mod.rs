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
//!
//! This file holds the session's state, CONNECT and the dispatch of each frame; `send.rs`
//! handles SEND, `subscribe.rs` SUBSCRIBE and UNSUBSCRIBE, `ack.rs` ACK, NACK, COMMIT and the
//! MESSAGE frames they settle.

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
use super::subscription::Subscriptions;
use super::transaction::{self, Transactions};
use crate::broker::{Accepted, Core, Delivery};
use mq_shared::headers::CLIENT_ID;

use crate::internode::{BRIDGE_HEADER, BROKER_HEADER};
use crate::security::{AuthError, Operation, Principal};

mod ack;
mod send;
mod subscribe;

use send::Held;

/// Something for the connection task to write.
pub enum Out {
    /// A frame.
    Frame(Frame),
    /// An ERROR frame; the connection closes after writing it.
    Fatal(Frame),
}

/// Where a session's frames for its client go: the connection task's channel, or, while that
/// task is itself handling the client's input ([`Outbox::begin`] to [`Outbox::end`]), a buffer
/// the task writes out when it is done. A frame made on the task (a RECEIPT after a commit the
/// task made itself, or after a non-persistent SEND) then does not wake the task it runs on:
/// tokio reschedules a task woken while it runs as a yield, and wakes an idle worker to steal
/// it, which costs a receipted SEND two thread wake-ups for nothing.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::UnboundedSender<Out>,
    local: Arc<std::sync::Mutex<Local>>,
}

/// Frames made while the connection task handles input.
#[derive(Default)]
struct Local {
    handling: bool,
    frames: Vec<Out>,
}

impl Outbox {
    /// An outbox over the connection task's channel.
    pub fn new(tx: mpsc::UnboundedSender<Out>) -> Outbox {
        Outbox {
            tx,
            local: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Local> {
        self.local.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends a frame to the client (dropped once the connection is gone).
    pub fn send(&self, o: Out) {
        let mut l = self.lock();
        if l.handling {
            l.frames.push(o);
        } else {
            // Under the lock, so that no frame made later is written before it.
            let _ = self.tx.send(o);
        }
    }

    /// The connection task starts handling input: frames made meanwhile wait for [`Outbox::end`].
    pub fn begin(&self) {
        self.lock().handling = true;
    }

    /// The connection task is done handling input: `write` gets the frames made meanwhile, in
    /// order; frames sent before [`Outbox::begin`] are on the channel, and `write` must take
    /// those first. Frames made after this go to the channel.
    pub fn end(&self, write: impl FnOnce(Vec<Out>)) {
        let mut l = self.lock();
        let frames = std::mem::take(&mut l.frames);
        write(frames);
        l.handling = false;
    }
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
    /// Frames for the client.
    pub out: Outbox,
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

impl Session {
    /// A session for connection `conn` (registered with the broker), answering through `out`
    /// and receiving deliveries on the receiver of `deliver_tx`.
    pub fn new(
        conn: u64,
        broker: Core,
        settings: Arc<TransportSettings>,
        from_loopback: bool,
        out: Outbox,
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
            out,
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
                // What a reconnect may ask for again is free before the RECEIPT goes out:
                // its subscriptions (a durable one may be resumed) and its client-id.
                self.detach_and_release();
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
        self.out.send(Out::Frame(f));
    }

    /// Sends a frame once every store write submitted so far by this connection is done.
    fn after_pending(&self, f: Frame) {
        if self.pending.count() == 0 {
            self.send_now(f);
            return;
        }
        let out = self.out.clone();
        let pending = self.pending.clone();
        pending.start(0);
        self.broker.barrier(Box::new(move |_| {
            out.send(Out::Frame(f));
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
        let out = self.out.clone();
        let receipt = receipt.map(str::to_string);
        Box::new(move |r| {
            match r {
                Ok(_) => {
                    if let Some(r) = receipt {
                        out.send(Out::Frame(
                            Frame::new(Command::Receipt).with_header("receipt-id", r),
                        ));
                    }
                }
                Err(e) => {
                    out.send(Out::Fatal(error_frame(
                        &format!("{what}: {e}"),
                        receipt.as_deref(),
                    )));
                }
            }
            pending.finish(bytes);
        })
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
        self.detach_and_release();
        for d in self.produced.drain() {
            self.broker.remove_producer(&d, self.conn);
        }
        self.broker.remove_temps(self.conn);
        if !self.unregistered {
            self.unregistered = true;
            self.broker.unregister_connection(self.conn);
        }
    }
}

impl Session {
    /// Detaches every subscription (unacked messages go back) and gives the client-id up.
    fn detach_and_release(&mut self) {
        for sub in self.subs.drain() {
            self.broker.unsubscribe(&sub.attached, sub.consumer);
        }
        if let Some(id) = self.client_id.take() {
            self.broker.release_client_id(&id, self.conn);
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.cleanup();
    }
}

#[cfg(test)]
mod tests {
    use super::{Out, Outbox};
    use mq_shared::frame::{Command, Frame};
    use tokio::sync::mpsc;

    fn frame(id: &str) -> Out {
        Out::Frame(Frame::new(Command::Receipt).with_header("receipt-id", id))
    }

    fn id(o: &Out) -> String {
        match o {
            Out::Frame(f) | Out::Fatal(f) => f.header("receipt-id").unwrap_or("").to_string(),
        }
    }

    #[test]
    fn frames_made_while_the_task_handles_input_follow_those_sent_before_in_order() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let out = Outbox::new(tx);
        out.send(frame("1"));
        out.begin();
        out.send(frame("2"));
        // Another thread's completion while the task handles input waits with it.
        let other = out.clone();
        let t = std::thread::spawn(move || other.send(frame("3")));
        assert!(t.join().is_ok());
        let mut written = Vec::new();
        out.end(|frames| {
            while let Ok(o) = rx.try_recv() {
                written.push(id(&o));
            }
            written.extend(frames.iter().map(id));
        });
        assert_eq!(written, ["1", "2", "3"]);
        // Once done, frames go to the channel again.
        out.send(frame("4"));
        assert_eq!(rx.try_recv().map(|o| id(&o)).ok().as_deref(), Some("4"));
    }
}
