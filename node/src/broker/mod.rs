//! The broker: destinations (queues and topics), the store behind them, and the rules that
//! move a message from a producer to a consumer, a bridge, the dead-letter queue or the bin.
//!
//! ```text
//! SEND ─▶ Core::publish ─┬─ queue, persistent ─▶ Store (group commit) ─▶ Queue::enqueue ─▶ dispatch ─▶ consumer
//!                          ├─ queue, in memory ───────────────────────────▶ Queue::enqueue ─▶ dispatch ─▶ consumer
//!                          └─ topic ─▶ Topic::publish ─▶ every subscriber (local or bridge)
//! ACK  ─▶ Queue::ack ─▶ Effects{delete} ─▶ Store delete (rides the next group commit)
//! ```

pub mod message;
pub mod queue;
pub mod topic;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use mq_shared::api::{ConnectionInfo, ConnectionKind, QueueStats, TopicStats};
use tokio::sync::{mpsc, watch};

use crate::store::{Done, Op, Recovered, Store, StoreError};
pub use message::{Message, now_ms};
use queue::{Effects, Entry, Queue};
use topic::Topic;

/// Settings of the broker core.
#[derive(Debug, Clone)]
pub struct BrokerSettings {
    /// Core name.
    pub name: String,
    /// Store persistent messages.
    pub persistent: bool,
    /// Redeliveries before the dead-letter queue (`maximumRedeliveries`).
    pub max_redeliveries: u32,
    /// Dead-letter queue name.
    pub dlq: String,
    /// Default prefetch per subscription.
    pub prefetch: usize,
}

/// A consumer as a queue or topic sees it.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Unique consumer id.
    pub id: u64,
    /// Connection it belongs to.
    pub conn: u64,
    /// Most unacked messages.
    pub prefetch: usize,
    /// 0 for local consumers, negative for network bridges.
    pub priority: i32,
    /// Whether this consumer is another broker's bridge.
    pub network: bool,
    /// For a bridge's consumer: where it forwards to, the demand it stands for, and the
    /// loop-prevention filter dispatch applies (see [`NetworkConsumer`]).
    pub bridge: Option<Arc<NetworkConsumer>>,
    /// Where deliveries go (the connection's writer).
    pub tx: mpsc::UnboundedSender<Delivery>,
}

/// Header carrying the brokers a message has crossed, comma separated, oldest first
/// (ActiveMQ's `brokerPath`). Each bridge appends its own broker's name when it forwards.
pub const BROKER_PATH_HEADER: &str = "mq-broker-path";

/// The brokers a message has crossed (its [`BROKER_PATH_HEADER`]).
pub fn broker_path(msg: &Message) -> impl Iterator<Item = &str> {
    msg.header(BROKER_PATH_HEADER)
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// What a network consumer (one standing for consumers on other brokers) carries.
///
/// Dispatch uses it as ActiveMQ's `NetworkBridgeFilter`: a message is never handed to a
/// consumer whose remote broker is already in the message's broker path, nor once the path
/// is `message_ttl` long; such a message stays for other consumers. Demand advisories use
/// `hops` and `origin` so that demand travels at most `consumerTTL` hops and never returns
/// to a broker it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConsumer {
    /// The broker this consumer forwards to.
    pub remote_broker: Arc<str>,
    /// Hops from this node to the nearest consumer this one stands for (1: the peer's own).
    pub hops: u32,
    /// Brokers that every consumer this one stands for lies behind (the peer included).
    pub origin: Vec<Arc<str>>,
    /// `messageTTL`: most brokers a message may have crossed and still be forwarded.
    pub message_ttl: u32,
}

impl NetworkConsumer {
    /// Whether `msg` may be handed to this consumer (not back to a broker it crossed, and
    /// within `messageTTL`).
    pub fn accepts(&self, msg: &Message) -> bool {
        let mut n = 0u32;
        for b in broker_path(msg) {
            if b == &*self.remote_broker {
                return false;
            }
            n += 1;
        }
        n < self.message_ttl
    }
}

impl ConsumerSpec {
    /// Whether dispatch may hand `msg` to this consumer (always, for a local consumer).
    pub fn accepts(&self, msg: &Message) -> bool {
        self.bridge.as_ref().is_none_or(|b| b.accepts(msg))
    }

    /// Hops to the consumers this one stands for: 0 for a local consumer.
    pub fn hops(&self) -> u32 {
        self.bridge.as_ref().map_or(0, |b| b.hops)
    }
}

/// Demand for one destination as one bridge should see it: see [`Core::demand_for`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demand {
    /// The destination.
    pub destination: Destination,
    /// Consumers counted (local and network).
    pub consumers: usize,
    /// Fewest hops to one of them (0: a local consumer).
    pub hops: u32,
    /// Brokers that all of them lie behind (empty as soon as one is local).
    pub origin: Vec<Arc<str>>,
}

/// Folds consumers into a [`Demand`] aggregate, skipping those of connection `except_conn`
/// and those whose demand came through broker `except_broker`.
pub(crate) fn fold_demand<'a>(
    consumers: impl Iterator<Item = &'a ConsumerSpec>,
    except_conn: Option<u64>,
    except_broker: Option<&str>,
) -> Option<(usize, u32, Vec<Arc<str>>)> {
    let mut count = 0;
    let mut hops = u32::MAX;
    let mut origin: Option<Vec<Arc<str>>> = None;
    for c in consumers {
        if Some(c.conn) == except_conn {
            continue;
        }
        let o: &[Arc<str>] = c.bridge.as_ref().map_or(&[], |b| &b.origin[..]);
        if let Some(x) = except_broker
            && o.iter().any(|b| &**b == x)
        {
            continue;
        }
        count += 1;
        hops = hops.min(c.hops());
        origin = Some(match origin {
            None => o.to_vec(),
            Some(prev) => prev.into_iter().filter(|b| o.contains(b)).collect(),
        });
    }
    (count > 0).then(|| (count, hops, origin.unwrap_or_default()))
}

/// One message handed to one consumer.
#[derive(Debug)]
pub struct Delivery {
    /// Consumer id.
    pub consumer: u64,
    /// The message.
    pub message: Arc<Message>,
    /// Store sequence (0 for topics).
    pub seq: u64,
    /// Delivered before without an ack.
    pub redelivered: bool,
    /// The queue to ack against (None for topics).
    pub queue: Option<Arc<Queue>>,
}

/// A parsed destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Destination {
    /// `/queue/NAME`.
    Queue(String),
    /// `/topic/NAME`.
    Topic(String),
}

impl Destination {
    /// Parses `/queue/NAME` or `/topic/NAME`.
    pub fn parse(s: &str) -> Result<Destination, String> {
        let (kind, name) = if let Some(n) = s.strip_prefix("/queue/") {
            (true, n)
        } else if let Some(n) = s.strip_prefix("/topic/") {
            (false, n)
        } else {
            return Err(format!(
                "unsupported destination '{s}': use /queue/NAME or /topic/NAME"
            ));
        };
        if name.is_empty() || name.len() > 1024 {
            return Err(format!("destination '{s}' has an empty or too long name"));
        }
        Ok(if kind {
            Destination::Queue(name.to_string())
        } else {
            Destination::Topic(name.to_string())
        })
    }
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::Queue(n) => write!(f, "/queue/{n}"),
            Destination::Topic(n) => write!(f, "/topic/{n}"),
        }
    }
}

/// Where a subscription is attached.
#[derive(Clone)]
pub enum Attached {
    /// A queue.
    Queue(Arc<Queue>),
    /// A topic.
    Topic(Arc<Topic>),
}

/// Accepted-callback of a publish: `Ok(true)` when the message was a duplicate and dropped.
pub type Accepted = Box<dyn FnOnce(Result<bool, StoreError>) + Send>;

/// Live facts about one connection, for the admin API.
#[derive(Debug, Clone)]
pub struct ConnMeta {
    /// Peer address.
    pub remote: String,
    /// Client or bridge.
    pub kind: ConnectionKind,
    /// Negotiated version.
    pub version: String,
    /// Remote broker name for bridges.
    pub broker: Option<String>,
    /// Open subscriptions.
    pub subscriptions: u64,
    /// Epoch ms.
    pub since_ms: u64,
}

struct Shared {
    settings: BrokerSettings,
    store: Option<Store>,
    queues: RwLock<HashMap<Arc<str>, Arc<Queue>>>,
    topics: RwLock<HashMap<Arc<str>, Arc<Topic>>>,
    next_seq: AtomicU64,
    next_id: AtomicU64,
    id_prefix: String,
    conns: Mutex<HashMap<u64, ConnMeta>>,
    demand: watch::Sender<u64>,
    recent: Mutex<RecentIds>,
}

/// Ids of messages that arrived over bridges without going through the store's dedup table
/// (topic and non-persistent messages), so a retried or doubly routed forward is dropped.
#[derive(Default)]
struct RecentIds {
    order: std::collections::VecDeque<Arc<str>>,
    set: std::collections::HashSet<Arc<str>>,
}

impl RecentIds {
    /// Records `id`; false if it was already there.
    fn insert(&mut self, id: &Arc<str>) -> bool {
        if !self.set.insert(id.clone()) {
            return false;
        }
        self.order.push_back(id.clone());
        while self.order.len() > mq_shared::defaults::DEDUP_WINDOW {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

/// The broker core; cheap to clone.
#[derive(Clone)]
pub struct Core {
    shared: Arc<Shared>,
}

impl Core {
    /// A broker over an optional store, with the messages recovered from it.
    pub fn new(settings: BrokerSettings, store: Option<Store>, recovered: Vec<Recovered>) -> Core {
        let boot = now_ms();
        let id_prefix = format!(
            "ID:{}-{:x}{:04x}",
            settings.name,
            boot,
            rand::random::<u16>()
        );
        let (demand, _) = watch::channel(0);
        let b = Core {
            shared: Arc::new(Shared {
                settings,
                store,
                queues: RwLock::new(HashMap::new()),
                topics: RwLock::new(HashMap::new()),
                next_seq: AtomicU64::new(1),
                next_id: AtomicU64::new(1),
                id_prefix,
                conns: Mutex::new(HashMap::new()),
                demand,
                recent: Mutex::new(RecentIds::default()),
            }),
        };
        b.recover(recovered);
        b
    }

    fn recover(&self, recovered: Vec<Recovered>) {
        let mut max_seq = 0;
        let mut by_queue: HashMap<String, Vec<Entry>> = HashMap::new();
        let mut bad = 0usize;
        for r in recovered {
            max_seq = max_seq.max(r.seq);
            match Message::decode_shared(&r.data) {
                // Delivered before without an ack (or maybe, after a crash): the next delivery
                // says redelivered:true.
                Some(m) => by_queue.entry(r.queue).or_default().push(Entry {
                    msg: Arc::new(m),
                    seq: r.seq,
                    redeliveries: r.deliveries,
                }),
                None => bad += 1,
            }
        }
        if bad > 0 {
            tracing::error!(
                records = bad,
                "store records that do not decode were skipped"
            );
        }
        let mut total = 0;
        let mut flagged = 0;
        for (name, mut entries) in by_queue {
            entries.sort_by_key(|e| e.seq);
            total += entries.len();
            flagged += entries.iter().filter(|e| e.redeliveries > 0).count();
            self.queue(&name).recover(entries);
        }
        if total > 0 {
            tracing::info!(
                messages = total,
                redelivered = flagged,
                "recovered persistent messages from the store"
            );
        }
        self.shared.next_seq.store(max_seq + 1, Ordering::Relaxed);
    }

    /// Stored messages that were delivered and not acknowledged (queue, sequence, deliveries),
    /// for the store to record at a clean close.
    pub fn delivery_marks(&self) -> Vec<(Arc<str>, u64, u32)> {
        let mut out = Vec::new();
        for q in self.queues() {
            for (seq, n) in q.delivery_marks() {
                out.push((q.name.clone(), seq, n));
            }
        }
        out
    }

    /// Core settings.
    pub fn settings(&self) -> &BrokerSettings {
        &self.shared.settings
    }

    /// Core name.
    pub fn name(&self) -> &str {
        &self.shared.settings.name
    }

    /// The store, if persistence is on.
    pub fn store(&self) -> Option<&Store> {
        self.shared.store.as_ref()
    }

    /// A fresh globally unique message id.
    pub fn new_message_id(&self) -> String {
        let n = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.shared.id_prefix)
    }

    /// The queue of that name, created on first use.
    pub fn queue(&self, name: &str) -> Arc<Queue> {
        if let Some(q) = self.read_queues().get(name) {
            return q.clone();
        }
        let mut w = self
            .shared
            .queues
            .write()
            .unwrap_or_else(|e| e.into_inner());
        w.entry(Arc::from(name))
            .or_insert_with(|| Arc::new(Queue::new(name, self.shared.settings.max_redeliveries)))
            .clone()
    }

    /// The queue of that name if it exists.
    pub fn find_queue(&self, name: &str) -> Option<Arc<Queue>> {
        self.read_queues().get(name).cloned()
    }

    /// The topic of that name, created on first use.
    pub fn topic(&self, name: &str) -> Arc<Topic> {
        if let Some(t) = self
            .shared
            .topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return t.clone();
        }
        let mut w = self
            .shared
            .topics
            .write()
            .unwrap_or_else(|e| e.into_inner());
        w.entry(Arc::from(name))
            .or_insert_with(|| Arc::new(Topic::new(name)))
            .clone()
    }

    fn read_queues(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Arc<str>, Arc<Queue>>> {
        self.shared.queues.read().unwrap_or_else(|e| e.into_inner())
    }

    /// All queues, sorted by name.
    pub fn queues(&self) -> Vec<Arc<Queue>> {
        let mut v: Vec<Arc<Queue>> = self.read_queues().values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// All topics, sorted by name.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        let mut v: Vec<Arc<Topic>> = self
            .shared
            .topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Queue statistics, sorted by name.
    pub fn queue_stats(&self) -> Vec<QueueStats> {
        self.queues().iter().map(|q| q.stats()).collect()
    }

    /// Topic statistics, sorted by name.
    pub fn topic_stats(&self) -> Vec<TopicStats> {
        self.topics().iter().map(|t| t.stats()).collect()
    }

    /// Whether a message must go through the store.
    pub fn stores(&self, msg: &Message) -> bool {
        msg.persistent && self.shared.store.is_some()
    }

    /// Accepts a message for its destination. `accepted` runs once it is in its queue (after
    /// the store commit for a persistent message) or delivered to the topic's subscribers.
    ///
    /// `ordered` asks that a message that needs no store write still wait for the commits
    /// submitted before it, so one connection's messages keep their order.
    /// `dedup` drops a persistent message whose id the store has seen (retried forwards).
    /// `from_conn` is the producing connection, never handed its own topic message back.
    pub fn publish(
        &self,
        msg: Message,
        from_conn: Option<u64>,
        ordered: bool,
        dedup: bool,
        accepted: Option<Accepted>,
    ) {
        // A forward the store cannot de-duplicate (topic or non-persistent) is checked
        // against the ids recently seen from bridges instead.
        if dedup && !(self.stores(&msg) && msg.destination.starts_with("/queue/")) {
            let fresh = self
                .shared
                .recent
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(&msg.id);
            if !fresh {
                if let Some(a) = accepted {
                    a(Ok(true));
                }
                return;
            }
        }
        self.publish_batch(vec![msg], Vec::new(), from_conn, ordered, dedup, accepted)
    }

    /// Publishes several messages and applies store deletes in one commit (a STOMP
    /// transaction's COMMIT): all or nothing in the store.
    pub fn publish_batch(
        &self,
        msgs: Vec<Message>,
        deletes: Vec<Entry>,
        from_conn: Option<u64>,
        ordered: bool,
        dedup: bool,
        accepted: Option<Accepted>,
    ) {
        let mut ops = Vec::new();
        let mut deliver: Vec<(Destination, Message, u64)> = Vec::with_capacity(msgs.len());
        for m in msgs {
            let dest = match Destination::parse(&m.destination) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "dropping a message for a bad destination");
                    continue;
                }
            };
            let seq = self.shared.next_seq.fetch_add(1, Ordering::Relaxed);
            if let (Destination::Queue(q), true) = (&dest, self.stores(&m)) {
                ops.push(Op::Put {
                    queue: Arc::from(q.as_str()),
                    seq,
                    data: m.encode(),
                    dedup: dedup.then(|| m.id.clone()),
                });
            }
            deliver.push((dest, m, seq));
        }
        for e in deletes {
            if let Some(op) = self.delete_op(&e) {
                ops.push(op);
            }
        }
        let broker = self.clone();
        let finish = move |duplicates: usize| {
            // With a duplicate in a single-message batch, nothing is delivered.
            let skip = duplicates > 0 && deliver.len() == 1;
            if !skip {
                for (dest, m, seq) in deliver {
                    broker.deliver(dest, m, seq, from_conn);
                }
            }
            skip
        };
        match (&self.shared.store, ops.is_empty() && !ordered) {
            (Some(store), false) => {
                let done: Done = Box::new(move |r| {
                    let r = r.map(|o| finish(o.duplicates));
                    if let Some(a) = accepted {
                        a(r);
                    }
                });
                store.submit(ops, Some(done));
            }
            _ => {
                let dup = finish(0);
                if let Some(a) = accepted {
                    a(Ok(dup));
                }
            }
        }
    }

    fn deliver(&self, dest: Destination, m: Message, seq: u64, from_conn: Option<u64>) {
        match dest {
            Destination::Queue(q) => {
                let queue = self.queue(&q);
                let fx = queue.enqueue(Entry {
                    msg: Arc::new(m),
                    seq,
                    redeliveries: 0,
                });
                self.apply(fx, None);
            }
            Destination::Topic(t) => {
                self.topic(&t).publish(Arc::new(m), from_conn);
            }
        }
    }

    fn delete_op(&self, e: &Entry) -> Option<Op> {
        if self.stores(&e.msg) {
            let name = Destination::parse(&e.msg.destination)
                .ok()
                .map(|d| match d {
                    Destination::Queue(n) | Destination::Topic(n) => n,
                })?;
            Some(Op::Delete {
                queue: Arc::from(name),
                seq: e.seq,
            })
        } else {
            None
        }
    }

    /// Applies a queue operation's effects: store deletes and dead-letter moves. `done` runs
    /// once they are durable.
    pub fn apply(&self, fx: Effects, done: Option<Done>) {
        let mut ops: Vec<Op> = fx.delete.iter().filter_map(|e| self.delete_op(e)).collect();
        let mut dead_moves: Vec<(Entry, Message)> = Vec::new();
        for e in fx.dead {
            if let Some(op) = self.delete_op(&e) {
                ops.push(op);
            }
            let mut m = (*e.msg).clone();
            if !m.headers.iter().any(|(k, _)| k == "original-destination") {
                m.headers
                    .push(("original-destination".into(), m.destination.to_string()));
            }
            m.destination = Arc::from(format!("/queue/{}", self.shared.settings.dlq));
            let seq = self.shared.next_seq.fetch_add(1, Ordering::Relaxed);
            if self.stores(&m) {
                ops.push(Op::Put {
                    queue: Arc::from(self.shared.settings.dlq.as_str()),
                    seq,
                    data: m.encode(),
                    dedup: None,
                });
            }
            dead_moves.push((
                Entry {
                    msg: Arc::new(m),
                    seq,
                    redeliveries: 0,
                },
                (*e.msg).clone(),
            ));
        }
        let broker = self.clone();
        let finish = move || {
            if !dead_moves.is_empty() {
                let dlq = broker.queue(&broker.shared.settings.dlq);
                for (entry, original) in dead_moves {
                    tracing::info!(id = %original.id, from = %original.destination, "moved to the dead-letter queue");
                    let fx = dlq.enqueue(entry);
                    // The dead-letter queue's own effects (expiry) carry no further dead letters.
                    broker.apply(fx, None);
                }
            }
        };
        match (&self.shared.store, ops.is_empty()) {
            (Some(store), false) => store.submit(
                ops,
                Some(Box::new(move |r| {
                    if r.is_ok() {
                        finish();
                    }
                    if let Some(d) = done {
                        d(r);
                    }
                })),
            ),
            _ => {
                finish();
                if let Some(d) = done {
                    d(Ok(Default::default()));
                }
            }
        }
    }

    /// Attaches a consumer to a destination.
    pub fn subscribe(&self, dest: &Destination, spec: ConsumerSpec) -> Attached {
        let a = match dest {
            Destination::Queue(n) => {
                let q = self.queue(n);
                let fx = q.add_consumer(spec);
                self.apply(fx, None);
                Attached::Queue(q)
            }
            Destination::Topic(n) => {
                let t = self.topic(n);
                t.subscribe(spec);
                Attached::Topic(t)
            }
        };
        self.shared.demand.send_modify(|v| *v += 1);
        a
    }

    /// Detaches a consumer; its unacked queue messages are redelivered or dead-lettered.
    pub fn unsubscribe(&self, at: &Attached, consumer: u64) {
        match at {
            Attached::Queue(q) => {
                let fx = q.remove_consumer(consumer);
                self.apply(fx, None);
            }
            Attached::Topic(t) => t.unsubscribe(consumer),
        }
        self.shared.demand.send_modify(|v| *v += 1);
    }

    /// A receiver that changes whenever a consumer comes or goes (network bridges watch it to
    /// follow demand).
    pub fn demand_changes(&self) -> watch::Receiver<u64> {
        self.shared.demand.subscribe()
    }

    /// Demand as a bridge to broker `except_broker` should see it: per destination, the
    /// consumers other than those of connection `except_conn` (the bridge's own) and other than
    /// network consumers whose demand came through `except_broker` (so demand never echoes
    /// back where it came from), with the fewest hops to one of them.
    pub fn demand_for(&self, except_conn: Option<u64>, except_broker: Option<&str>) -> Vec<Demand> {
        let mut out = Vec::new();
        for q in self.queues() {
            if let Some((consumers, hops, origin)) = q.demand_for(except_conn, except_broker) {
                out.push(Demand {
                    destination: Destination::Queue(q.name.to_string()),
                    consumers,
                    hops,
                    origin,
                });
            }
        }
        for t in self.topics() {
            if let Some((consumers, hops, origin)) = t.demand_for(except_conn, except_broker) {
                out.push(Demand {
                    destination: Destination::Topic(t.name.to_string()),
                    consumers,
                    hops,
                    origin,
                });
            }
        }
        out
    }

    /// Drops expired messages from every queue.
    pub fn expire_sweep(&self) {
        let now = now_ms();
        for q in self.queues() {
            let fx = q.expire(now);
            if !fx.is_empty() {
                self.apply(fx, None);
            }
        }
    }

    /// Purges a queue's waiting messages; returns how many.
    pub async fn purge(&self, name: &str) -> Result<Option<u64>, StoreError> {
        let Some(q) = self.find_queue(name) else {
            return Ok(None);
        };
        let gone = q.purge();
        let n = gone.len() as u64;
        let ops: Vec<Op> = gone.iter().filter_map(|e| self.delete_op(e)).collect();
        if let (Some(store), false) = (&self.shared.store, ops.is_empty()) {
            store.commit(ops).await?;
        }
        Ok(Some(n))
    }

    /// Deletes a queue with no consumers. `Err(Some(n))` when it has n consumers.
    pub async fn delete_queue(&self, name: &str) -> Result<Option<u64>, DeleteError> {
        let Some(q) = self.find_queue(name) else {
            return Ok(None);
        };
        let c = q.consumer_count();
        if c > 0 {
            return Err(DeleteError::HasConsumers(c));
        }
        let n = self
            .purge(name)
            .await
            .map_err(DeleteError::Store)?
            .unwrap_or(0);
        self.shared
            .queues
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        Ok(Some(n))
    }

    /// Registers a connection for the admin API; returns its id.
    pub fn register_connection(&self, meta: ConnMeta) -> u64 {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock_conns().insert(id, meta);
        id
    }

    /// Updates a connection's facts.
    pub fn update_connection(&self, id: u64, f: impl FnOnce(&mut ConnMeta)) {
        if let Some(m) = self.lock_conns().get_mut(&id) {
            f(m);
        }
    }

    /// Forgets a connection.
    pub fn unregister_connection(&self, id: u64) {
        self.lock_conns().remove(&id);
    }

    fn lock_conns(&self) -> std::sync::MutexGuard<'_, HashMap<u64, ConnMeta>> {
        self.shared.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Open connections.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        let mut v: Vec<ConnectionInfo> = self
            .lock_conns()
            .iter()
            .map(|(id, m)| ConnectionInfo {
                id: *id,
                remote: m.remote.clone(),
                kind: m.kind,
                version: m.version.clone(),
                broker: m.broker.clone(),
                subscriptions: m.subscriptions,
                since_ms: m.since_ms,
            })
            .collect();
        v.sort_by_key(|c| c.id);
        v
    }

    /// A fresh id for a consumer or connection.
    pub fn next_id(&self) -> u64 {
        self.shared.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Messages and bytes held across all queues.
    pub fn totals(&self) -> (u64, u64) {
        self.queues().iter().fold((0, 0), |(m, b), q| {
            let s = q.stats();
            (m + s.depth, b + s.bytes)
        })
    }
}

/// Why a queue could not be deleted.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    /// Consumers are attached.
    #[error("queue has {0} consumer(s); stop them before deleting it")]
    HasConsumers(usize),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}
