//! The broker: destinations (queues and topics), the store behind them, and the rules that
//! move a message from a producer to a consumer, a bridge, the dead-letter queue or the bin.
//!
//! ```text
//! SEND ─▶ Core::publish ─┬─ queue, persistent ─▶ Store (group commit) ─▶ Queue::enqueue ─▶ dispatch ─▶ consumer
//!                          ├─ queue, in memory ───────────────────────────▶ Queue::enqueue ─▶ dispatch ─▶ consumer
//!                          └─ topic ─▶ Topic::publish ─▶ every subscriber (local or bridge)
//! ACK  ─▶ Core::settle ─▶ Queue::settle ─▶ Effects{delete} ─▶ Store delete (rides the next group commit)
//! ```
//!
//! [`Core`] is the whole API the transport and the bridges use: publish, settle (ack,
//! forwarded, nack), subscribe and unsubscribe, the transaction commit, a store barrier, and
//! the producer and connection registries. Nothing outside `broker` touches the store or a
//! queue's state. Modules: [`message`] (the frame ⇄ message mapping), [`consumer`] (what a
//! destination hands a consumer), [`queue`] and [`topic`] (the destinations), [`groups`]
//! (exclusive consumers and message groups), `properties` (what a selector reads of a
//! message), `wildcard` (subscriptions to patterns), [`temp`] (temporary destinations),
//! `publish` (the write side), [`registry`] (connections, recent forwarded ids),
//! [`scheduler`] (scheduled delivery: `AMQ_SCHEDULED_*`).
//!
//! Threads: calls come from connection and bridge tasks (tokio workers) and take each
//! destination's short mutex; what depends on a store commit (enqueue and dispatch of a
//! persistent message, a receipt) runs in the commit's completion on the store writer thread.

mod activity;
pub mod consumer;
pub mod durable;
pub mod groups;
pub mod message;
mod properties;
mod publish;
pub mod queue;
pub mod registry;
pub mod scheduler;
pub mod temp;
pub mod topic;
pub mod usage;
mod wildcard;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use mq_shared::api::{QueueStats, TopicStats};
use mq_shared::destination::{Destination, DestinationKind};
use tokio::sync::watch;

use crate::internode::{Advisory, DemandEntry, is_advisory};
use crate::store::{Loaded, Recovery, Store, StoreError};
use consumer::ForBridge;
pub use consumer::{
    AckHandle, ConsumerOptions, ConsumerSpec, Delivery, Demand, NetworkConsumer, Permit, Settle,
};
pub use message::{Message, Outgoing, now_ms};
use queue::{Entry, Queue, QueueEnv};
use registry::RecentIds;
pub use temp::TempOwner;
use temp::Temps;
use topic::Topic;
use usage::Usage;
use wildcard::Wildcards;
pub use wildcard::pattern as wildcard_pattern;

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
    /// Largest prefetch honoured (`max-prefetch`).
    pub max_prefetch: usize,
    /// Messages queued per non-durable topic subscriber beyond its prefetch.
    pub pending_message_limit: usize,
    /// Remove empty, unused destinations after this long (`gc-inactive-destinations`).
    pub gc_inactive_after: Option<std::time::Duration>,
    /// Schedule SENDs with `AMQ_SCHEDULED_*` headers (`scheduler-support`).
    pub scheduler_support: bool,
    /// Remove durable subscriptions offline for this long
    /// (`offline-durable-subscriber-timeout`); `None`: never.
    pub offline_durable_timeout: Option<std::time::Duration>,
}

/// Where a subscription is attached.
#[derive(Clone)]
pub enum Attached {
    /// A queue.
    Queue(Arc<Queue>),
    /// A topic.
    Topic(Arc<Topic>),
    /// Every queue or topic matching this wildcard pattern.
    Wildcard(Destination),
    /// A durable subscription's queue.
    Durable(Arc<Queue>, Arc<durable::DurableSub>),
    /// Nothing: a temporary destination whose owner is gone.
    Nowhere,
}

/// Accepted-callback of a publish: `Ok(true)` when the message was a duplicate and dropped.
pub type Accepted = Box<dyn FnOnce(Result<bool, StoreError>) + Send>;

struct Shared {
    settings: BrokerSettings,
    /// The store of persistent messages (`None` without persistence).
    store: Option<Store>,
    /// Where backlogs live: the store, or without persistence the temp store.
    disk: Option<Store>,
    usage: Arc<Usage>,
    env: Arc<QueueEnv>,
    queues: RwLock<HashMap<Arc<str>, Arc<Queue>>>,
    topics: RwLock<HashMap<Arc<str>, Arc<Topic>>>,
    /// Sequences: the store's counter, shared with its writer.
    seq: Arc<AtomicU64>,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, mq_shared::api::ConnectionInfo>>,
    demand: watch::Sender<u64>,
    recent: Mutex<RecentIds>,
    limits: registry::LimitCounters,
    wildcards: Wildcards,
    temps: Temps,
    scheduler: scheduler::Scheduler,
    durables: durable::Durables,
}

/// The broker core; cheap to clone.
#[derive(Clone)]
pub struct Core {
    shared: Arc<Shared>,
}

impl Core {
    /// A broker over an optional store (and, without one, an optional temp store for
    /// non-persistent messages past `memory-usage`), with what the store recovered.
    pub fn new(
        settings: BrokerSettings,
        store: Option<Store>,
        temp: Option<Store>,
        recovery: Recovery,
        usage: Arc<Usage>,
    ) -> Core {
        let (demand, _) = watch::channel(0);
        let disk = store.clone().or(temp);
        let seq = disk
            .as_ref()
            .map_or_else(|| Arc::new(AtomicU64::new(1)), Store::sequence);
        let temps = Temps::new(&settings.name);
        let scheduler = scheduler::Scheduler::new(settings.scheduler_support, store.is_some());
        let shared = Arc::new_cyclic(|weak: &std::sync::Weak<Shared>| {
            let weak = weak.clone();
            let env = Arc::new(QueueEnv {
                max_redeliveries: settings.max_redeliveries,
                usage: usage.clone(),
                disk: disk.clone(),
                apply: Arc::new(move |fx| {
                    if let Some(shared) = weak.upgrade() {
                        Core { shared }.apply(fx, None);
                    }
                }),
            });
            Shared {
                settings,
                store,
                disk,
                usage,
                env,
                queues: RwLock::new(HashMap::new()),
                topics: RwLock::new(HashMap::new()),
                seq,
                next_id: AtomicU64::new(1),
                conns: Mutex::new(HashMap::new()),
                demand,
                recent: Mutex::new(RecentIds::default()),
                limits: Default::default(),
                wildcards: Wildcards::default(),
                temps,
                scheduler,
                durables: Default::default(),
            }
        });
        let b = Core { shared };
        b.recover(recovery);
        b
    }

    /// Sets up the queues the store holds messages for, from its counts: no message is read
    /// (they are read a window at a time once consumers come).
    fn recover(&self, recovery: Recovery) {
        let mut marks: HashMap<String, HashMap<u64, u32>> = HashMap::new();
        for ((q, seq), n) in recovery.marks {
            marks.entry(q).or_default().insert(seq, n);
        }
        let mut total = 0u64;
        let queues = recovery.queues.len();
        for s in recovery.queues {
            if durable::is_registry(&s.name) {
                // The list of durable subscriptions: read by `recover_durables`.
                continue;
            }
            total += s.counts.iter().sum::<u64>();
            self.queue(&s.name).recover(queue::Recovered {
                counts: s.counts,
                bytes: s.bytes,
                max_seq: recovery.max_seq,
                marks: marks.remove(&s.name).unwrap_or_default(),
                redelivered_below: recovery.redelivered_below,
            });
            // A virtual topic's consumer queue with a backlog was consumed from before.
            self.note_virtual_consumer(&s.name);
        }
        if total > 0 {
            tracing::info!(
                messages = total,
                queues,
                "persistent messages in the store (read back as consumers come)"
            );
        }
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

    /// The node's memory, store and temp usage, and its limits.
    pub fn usage(&self) -> &Arc<Usage> {
        &self.shared.usage
    }

    /// A fresh sequence for a message that is not stored (or stored with a chosen one).
    pub(crate) fn next_seq(&self) -> u64 {
        self.shared.seq.fetch_add(1, Ordering::Relaxed)
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

    /// A fresh globally unique message id: `ID:`, this broker's name and a random 128-bit
    /// UUID (version 4), so no one can guess the next id and pre-store it elsewhere.
    pub fn new_message_id(&self) -> String {
        let b: [u8; 16] = rand::random();
        let v = (u128::from_be_bytes(b) & !(0xf_u128 << 76) | (0x4_u128 << 76)) & !(0x3_u128 << 62)
            | (0x2_u128 << 62);
        let h = format!("{v:032x}");
        format!(
            "ID:{}-{}-{}-{}-{}-{}",
            self.shared.settings.name,
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    /// Whether `dest` exists (creating it needs the `admin` right).
    pub fn exists(&self, dest: &Destination) -> bool {
        if dest.is_temp() {
            return !matches!(self.temp_owner(dest), TempOwner::Unknown | TempOwner::Gone);
        }
        match dest.kind() {
            DestinationKind::Queue => self.find_queue(dest.name()).is_some(),
            DestinationKind::Topic => self
                .shared
                .topics
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(dest.name()),
        }
    }

    /// The queue of that name, created on first use.
    pub fn queue(&self, name: &str) -> Arc<Queue> {
        if let Some(q) = self.read_queues().get(name) {
            return q.clone();
        }
        let (q, created) = {
            let mut w = self
                .shared
                .queues
                .write()
                .unwrap_or_else(|e| e.into_inner());
            let mut created = false;
            let q = w
                .entry(Arc::from(name))
                .or_insert_with(|| {
                    created = true;
                    Arc::new(Queue::new(name, self.shared.env.clone()))
                })
                .clone();
            (q, created)
        };
        if created {
            self.attach_wildcards_to_queue(&q);
        }
        q
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
        let (t, created) = {
            let mut w = self
                .shared
                .topics
                .write()
                .unwrap_or_else(|e| e.into_inner());
            let mut created = false;
            let t = w
                .entry(Arc::from(name))
                .or_insert_with(|| {
                    created = true;
                    Arc::new(Topic::new(name, self.shared.settings.pending_message_limit))
                })
                .clone();
            (t, created)
        };
        if created {
            self.attach_wildcards_to_topic(&t);
        }
        t
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

    /// Queue statistics, sorted by name (durable subscriptions' queues are listed as
    /// subscriptions, not here).
    pub fn queue_stats(&self) -> Vec<QueueStats> {
        self.queues()
            .iter()
            .filter(|q| !durable::is_internal(&q.name))
            .map(|q| q.stats())
            .collect()
    }

    /// Topic statistics, sorted by name.
    pub fn topic_stats(&self) -> Vec<TopicStats> {
        self.topics().iter().map(|t| t.stats()).collect()
    }

    /// Records connection `conn` as a producer of `dest` (queues count their producers).
    pub fn add_producer(&self, dest: &Destination, conn: u64) {
        if dest.is_queue() && !dest.is_temp() {
            while !self.queue(dest.name()).add_producer(conn) {}
        }
    }

    /// Forgets connection `conn` as a producer of `dest`.
    pub fn remove_producer(&self, dest: &Destination, conn: u64) {
        if dest.is_queue()
            && !dest.is_temp()
            && let Some(q) = self.find_queue(dest.name())
        {
            q.remove_producer(conn);
        }
    }

    /// Attaches a consumer to a destination: a temporary one, every destination matching a
    /// wildcard (see the `wildcard` module), or one queue or topic.
    pub fn subscribe(&self, dest: &Destination, spec: ConsumerSpec) -> Attached {
        let a = if dest.is_temp() {
            self.subscribe_temp(dest, spec)
        } else if let Some(filter) = dest
            .has_wildcard()
            .then(|| wildcard::pattern(dest).ok())
            .flatten()
        {
            self.subscribe_wildcard(dest, filter, spec)
        } else {
            self.subscribe_one(dest, spec)
        };
        self.shared.demand.send_modify(|v| *v += 1);
        a
    }

    fn subscribe_one(&self, dest: &Destination, spec: ConsumerSpec) -> Attached {
        // A destination the inactive sweep retires between the lookup and the attach gives
        // the consumer back: look it up again (a new one is created).
        let mut spec = spec;
        loop {
            match dest.kind() {
                DestinationKind::Queue => {
                    let q = self.queue(dest.name());
                    match q.add_consumer(spec) {
                        Ok(fx) => {
                            self.apply(fx, None);
                            self.note_virtual_consumer(&q.name);
                            return Attached::Queue(q);
                        }
                        Err(back) => spec = back,
                    }
                }
                DestinationKind::Topic => {
                    let t = self.topic(dest.name());
                    match t.subscribe(spec) {
                        Ok(()) => return Attached::Topic(t),
                        Err(back) => spec = back,
                    }
                }
            }
        }
    }

    /// Detaches a consumer; its unacked queue messages are redelivered or dead-lettered.
    pub fn unsubscribe(&self, at: &Attached, consumer: u64) {
        match at {
            Attached::Queue(q) => {
                let fx = q.remove_consumer(consumer);
                self.apply(fx, None);
            }
            Attached::Topic(t) => t.unsubscribe(consumer),
            Attached::Wildcard(_) => self.unsubscribe_wildcard(consumer),
            Attached::Durable(q, sub) => self.detach_durable(q, sub, consumer),
            Attached::Nowhere => {}
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
    /// back where it came from), with the fewest hops to one of them and the union of their
    /// selectors. Wildcard subscriptions count once, under their pattern; temporary
    /// destinations by their id.
    pub fn demand_for(&self, except_conn: Option<u64>, except_broker: Option<&str>) -> Vec<Demand> {
        let to = ForBridge {
            conn: except_conn,
            broker: except_broker,
        };
        let mut out = Vec::new();
        for q in self.queues() {
            if durable::is_internal(&q.name) {
                // A durable subscriber's demand is its topic's (below).
                continue;
            }
            if let Some(fold) = q.demand_for(to) {
                out.push(Demand::of(Destination::queue(&q.name), fold));
            }
        }
        for t in self.topics() {
            if let Some(fold) = t.demand_for(to) {
                out.push(Demand::of(Destination::topic(&t.name), fold));
            }
        }
        for d in self.durable_demand(to) {
            durable::merge_demand(&mut out, d);
        }
        out.extend(self.wildcard_demand(to));
        out.extend(self.temp_demand(to));
        out
    }

    /// This node's demand as the bridge of broker `to_broker` (whose consumers here are those
    /// of connection `except_conn`) should see it: the advisory it subscribes to.
    pub fn advisory(&self, except_conn: Option<u64>, to_broker: Option<&str>) -> Advisory {
        let demand = self
            .demand_for(except_conn, to_broker)
            .into_iter()
            .filter(|d| !is_advisory(d.destination.as_str()))
            .map(|d| DemandEntry {
                destination: d.destination.to_string(),
                consumers: d.consumers,
                hops: d.hops,
                origin: d.origin.iter().map(|b| b.to_string()).collect(),
                selector: d.selector,
            })
            .collect();
        Advisory {
            broker: self.name().to_string(),
            demand,
        }
    }

    /// Removes the queues and topics that are empty, unused and inactive for
    /// `gc-inactive-destinations`'s timeout; returns how many.
    pub fn gc_inactive(&self) -> usize {
        let Some(after) = self.shared.settings.gc_inactive_after else {
            return 0;
        };
        let (now, idle) = (now_ms(), after.as_millis() as u64);
        let mut n = 0;
        {
            let mut qs = self
                .shared
                .queues
                .write()
                .unwrap_or_else(|e| e.into_inner());
            let before = qs.len();
            // A durable subscription's queue lives as long as the subscription.
            qs.retain(|name, q| durable::is_internal(name) || !q.retire_if_idle(now, idle));
            n += before - qs.len();
        }
        {
            let mut ts = self
                .shared
                .topics
                .write()
                .unwrap_or_else(|e| e.into_inner());
            let before = ts.len();
            ts.retain(|name, t| is_advisory_topic(name) || !t.retire_if_idle(now, idle));
            n += before - ts.len();
        }
        if n > 0 {
            self.shared
                .limits
                .gc_destinations
                .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
            tracing::debug!(removed = n, "inactive destinations removed");
        }
        n
    }

    /// Drops expired messages from every queue, and temporary destinations nobody uses.
    pub fn expire_sweep(&self) {
        self.sweep_temps();
        let now = now_ms();
        for q in self.queues() {
            let fx = q.expire(now);
            if !fx.is_empty() {
                self.apply(fx, None);
            }
        }
    }

    /// Purges a queue's waiting messages, in memory and in the store; returns how many.
    pub async fn purge(&self, name: &str) -> Result<Option<u64>, StoreError> {
        let Some(q) = self.find_queue(name) else {
            return Ok(None);
        };
        let (gone, mut ops, n) = q.purge();
        ops.extend(gone.iter().filter_map(|e| self.delete_op(e)));
        if let (Some(store), false) = (&self.shared.disk, ops.is_empty()) {
            store.commit(ops).await?;
        }
        Ok(Some(n))
    }

    /// Messages of queue `name` in dispatch order (in-flight ones first, flagged), at most
    /// `limit`: the window's, then the store's (read, not moved into memory).
    pub async fn browse(&self, name: &str, limit: usize) -> Option<Vec<(Entry, bool)>> {
        let q = self.find_queue(name)?;
        let (mut out, more) = q.browse_memory(limit);
        if let (Some(from), Some(store), true) = (more, &self.shared.disk, out.len() < limit) {
            match store
                .read(q.name.clone(), from, limit - out.len(), BROWSE_BYTES)
                .await
            {
                Ok(list) => out.extend(
                    list.iter()
                        .filter_map(|l| q.entry_of(l))
                        .map(|e| (e, false)),
                ),
                Err(e) => tracing::warn!(queue = %name, error = %e, "browsing the store failed"),
            }
        }
        Some(out)
    }

    /// Takes the waiting message `id` out of queue `name` (the window's, or one only in the
    /// store, looked for among the first [`TAKE_SCAN`]), for the admin API's move: the caller
    /// deletes its record, or gives it back with [`Queue::put_back`].
    pub async fn take_message(&self, q: &Arc<Queue>, id: &str) -> Option<Entry> {
        if let Some(e) = q.take_waiting(id) {
            return Some(e);
        }
        let store = self.shared.disk.as_ref()?;
        let (_, mut from) = q.browse_memory(0);
        let mut scanned = 0;
        while let Some(cursor) = from {
            if scanned >= TAKE_SCAN {
                break;
            }
            let list: Vec<Loaded> = store
                .read(q.name.clone(), cursor, 1000, BROWSE_BYTES)
                .await
                .ok()?;
            if list.is_empty() {
                break;
            }
            scanned += list.len();
            let mut next = cursor;
            for l in &list {
                let r = (l.rank % crate::store::TRANSIENT) as usize;
                if let Some(n) = next.get_mut(r) {
                    *n = (*n).max(l.seq + 1);
                }
                let Some(e) = q.entry_of(l) else { continue };
                if &*e.msg.id == id {
                    return q
                        .take_stored(l.rank, l.seq, l.data.len() as u64)
                        .then_some(e);
                }
            }
            from = Some(next);
        }
        None
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
        self.forget_virtual_consumer(name);
        Ok(Some(n))
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

/// Most bytes one browse reads from the store.
const BROWSE_BYTES: u64 = 64 * 1024 * 1024;
/// Most stored messages [`Core::take_message`] looks through for an id.
pub const TAKE_SCAN: usize = 100_000;

/// Whether a topic name (without `/topic/`) is an advisory's.
fn is_advisory_topic(name: &str) -> bool {
    is_advisory(&format!("/topic/{name}"))
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
