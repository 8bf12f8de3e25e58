//! A point-to-point queue: a window of messages ready in memory, the rest in the store (a
//! store cursor), messages in flight, and competing consumers.
//!
//! All state sits behind one short-held mutex. Methods return [`Effects`] (messages to delete
//! from the store, messages to dead-letter) that the broker applies; the only store calls made
//! here are the ones whose order matters against the queue's state: a read of the next
//! messages from the store, and the spill of a non-persistent message, both submitted under
//! the lock.
//!
//! # Window and store
//!
//! Messages are ordered by (priority rank, sequence): rank 0 is priority 9, so the highest
//! priority goes first and, within one, the order they were stored in. For each priority the
//! queue keeps the messages with the lowest sequences in memory (the window) and counts the
//! rest, which exist only in the store ([`Span`]: how many, how many bytes, from which
//! sequence). A new message joins the window only if nothing of its priority waits in the
//! store and memory allows (`memory-usage`, and [`WINDOW`] messages for persistent ones);
//! otherwise it stays in the store (persistent: it is there already) or is spilled there as a
//! transient record (non-persistent). When the window runs low ([`LOW_WATER`]) and consumers
//! are attached, the queue reads the next messages of every priority from the store
//! ([`Store::load`]), and the read's completion puts them in the window and dispatches. A
//! message of the window is not dispatched while one of a higher priority waits in the store:
//! that one is read first, whatever the window holds (at most [`MIN_WINDOW`] past the memory
//! limit). So a
//! backlog costs memory for its window only, whatever its length, and recovery reads no
//! message: it starts from the counts the store keeps.
//!
//! A read is submitted under the lock and served by the store's writer between group commits,
//! after the completions of everything committed before it: every message it returns was
//! already counted here, and none of them is in memory. A purge bumps an epoch that makes an
//! outstanding read's result void.
//!
//! # Dispatch
//!
//! The consumer with capacity (in-flight below its prefetch) and the highest priority wins;
//! equal priorities take turns (round robin). Local consumers have priority 0, network
//! bridges a negative one, so local consumers are served first
//! (`decreaseNetworkConsumerPriority`). A network consumer only takes messages its
//! [`super::NetworkConsumer`] filter accepts (no loops, `messageTTL`); a message no consumer
//! with room accepts stays in place and later messages may pass it (the scan is bounded by
//! [`MAX_SKIP`]). Messages a network consumer gives back (its bridge went away or lost demand)
//! were never seen by an application, so they return without counting as redeliveries.
//!
//! Selectors, exclusive consumers and message groups narrow the choice (see
//! [`super::groups`]): a message a consumer does not accept stays for the others. A consumer
//! only sees the first [`MAX_SKIP`] waiting messages that no consumer with room takes: a
//! selector that matches only messages further down waits until the head of the queue moves
//! (ActiveMQ has the same bound, its `maxPageSize`). An enqueue offers only the new message
//! (the others were offered already); an ack or a new consumer looks again from the head, so
//! a backlog that selectors refuse costs at most [`MAX_SKIP`] tests per consumer with room
//! when room appears, and nothing per message sent.
//!
//! The store cursor (the store's part, admission, read-back) is in `cursor.rs`, the choice of a
//! consumer in `dispatch.rs`; this file holds the queue's state and its operations.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use mq_shared::api::QueueStats;

use super::activity::{Activity, locked};
use super::consumer::{ConsumerSpec, ForBridge, Settle};
use super::message::Message;
use super::usage::{ENTRY_OVERHEAD, Usage};
use crate::store::{Op, PRIORITIES, Store, TRANSIENT};

mod cursor;
mod dispatch;

pub use cursor::Span;
use cursor::{Disk, Loading};

/// Most waiting messages dispatch steps over (held back by the network filter, selectors, or
/// a full group owner or exclusive consumer) before it stops looking further down the queue.
pub const MAX_SKIP: usize = 4096;
/// Most persistent messages a window holds (non-persistent ones are bounded by memory only).
pub const WINDOW: usize = mq_shared::defaults::CURSOR_WINDOW;
/// The window is refilled from the store below this many messages.
pub const LOW_WATER: usize = mq_shared::defaults::CURSOR_LOW_WATER;
/// Messages a queue may hold in memory even when `memory-usage` is reached, so no queue
/// stops dispatching because others took the memory.
pub const MIN_WINDOW: usize = 64;

/// Where a message's record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// Nowhere: a non-persistent message held in memory only.
    Memory,
    /// In the store, as a persistent message of that many bytes.
    Store(u32),
    /// In the store as a transient record (a non-persistent message spilled from memory).
    Temp(u32),
}

/// A message held by a queue, with its store key and delivery count.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The message.
    pub msg: Arc<Message>,
    /// Sequence (the store key's, for a stored one).
    pub seq: u64,
    /// Priority rank: 0 for priority 9 … 9 for priority 0.
    pub rank: u8,
    /// Deliveries that ended without an ack.
    pub redeliveries: u32,
    /// Where its record is.
    pub kept: Kept,
}

impl Entry {
    /// A new entry for `msg` with sequence `seq`.
    pub fn new(msg: Arc<Message>, seq: u64, kept: Kept) -> Entry {
        Entry {
            rank: msg.rank(),
            msg,
            seq,
            redeliveries: 0,
            kept,
        }
    }

    fn key(&self) -> (u8, u64) {
        (self.rank, self.seq)
    }

    /// Bytes it is counted for while in memory.
    fn cost(&self) -> u64 {
        self.msg.size() + ENTRY_OVERHEAD
    }

    /// The store op that removes its record, if it has one.
    pub fn delete_op(&self, queue: &Arc<str>) -> Option<Op> {
        let (rank, size) = match self.kept {
            Kept::Memory => return None,
            Kept::Store(n) => (self.rank, n),
            Kept::Temp(n) => (self.rank + TRANSIENT, n),
        };
        Some(Op::Delete {
            queue: queue.clone(),
            rank,
            seq: self.seq,
            size,
        })
    }
}

/// Work for the broker after a queue operation.
#[derive(Debug, Default)]
pub struct Effects {
    /// Messages to remove from the store (acked, expired).
    pub delete: Vec<Entry>,
    /// Messages to move to the dead-letter queue.
    pub dead: Vec<Entry>,
}

impl Effects {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.delete.is_empty() && self.dead.is_empty()
    }
}

/// Applies effects produced off a caller's path (a store read's completion).
pub type Applier = Arc<dyn Fn(Effects) + Send + Sync>;

/// What every queue of a broker shares.
pub struct QueueEnv {
    /// Redeliveries before the dead-letter queue (`maximumRedeliveries`).
    pub max_redeliveries: u32,
    /// The node's usage counters.
    pub usage: Arc<Usage>,
    /// The store backlogs live in (the node's store, or its temp store without persistence);
    /// `None` keeps everything in memory.
    pub disk: Option<Store>,
    /// Applies the effects of a store read's completion.
    pub apply: Applier,
}

impl QueueEnv {
    /// An environment that keeps everything in memory and applies nothing (tests).
    pub fn in_memory(max_redeliveries: u32) -> Arc<QueueEnv> {
        Arc::new(QueueEnv {
            max_redeliveries,
            usage: Arc::new(Usage::unlimited()),
            disk: None,
            apply: Arc::new(|_| {}),
        })
    }
}

struct Slot {
    spec: ConsumerSpec,
    inflight: usize,
    closed: bool,
}

#[derive(Default)]
struct Counters {
    enqueued: u64,
    dequeued: u64,
    forwarded: u64,
    expired: u64,
    dead_lettered: u64,
    /// Bytes of the messages in memory (window and in flight).
    bytes: u64,
}

struct Inflight {
    entry: Entry,
    consumer: u64,
}

#[derive(Default)]
struct Inner {
    /// For the inactive-destination sweep.
    activity: Activity,
    /// Messages ready to dispatch, by (rank, sequence).
    ready: BTreeMap<(u8, u64), Entry>,
    /// Messages only in the store.
    disk: Disk,
    loading: Option<Loading>,
    /// Bumped by a purge.
    epoch: u64,
    /// Sequences taken out of the store's part (a message moved by the admin API): a read
    /// that returns one skips it.
    taken: HashSet<u64>,
    /// Deliveries recorded at the last clean close, for messages still in the store.
    marks: HashMap<u64, u32>,
    /// Messages below this sequence may have been delivered before a crash.
    redelivered_below: u64,
    inflight: HashMap<u64, Inflight>,
    consumers: Vec<Slot>,
    rr: usize,
    /// Message groups and their consumers.
    groups: super::groups::Groups,
    producers: HashSet<u64>,
    counters: Counters,
}

/// One queue.
pub struct Queue {
    /// Name without `/queue/`.
    pub name: Arc<str>,
    /// `/queue/NAME`.
    pub destination: Arc<str>,
    env: Arc<QueueEnv>,
    inner: Mutex<Inner>,
}

/// What a queue recovered from the store holds: see [`Queue::recover`].
#[derive(Debug, Clone, Default)]
pub struct Recovered {
    /// Persistent messages stored, per rank.
    pub counts: [u64; PRIORITIES],
    /// Their bytes, per rank.
    pub bytes: [u64; PRIORITIES],
    /// The highest sequence in the store.
    pub max_seq: u64,
    /// Deliveries recorded at the last clean close, by sequence.
    pub marks: HashMap<u64, u32>,
    /// Messages below this sequence may have been delivered before.
    pub redelivered_below: u64,
}

impl Queue {
    /// A new empty queue.
    pub fn new(name: &str, env: Arc<QueueEnv>) -> Queue {
        Queue {
            name: Arc::from(name),
            destination: Arc::from(format!("/queue/{name}")),
            env,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        locked(&self.inner)
    }

    /// Takes what the store holds for this queue at open: counts only, no message is read.
    pub fn recover(&self, r: Recovered) {
        let mut g = self.lock();
        for rank in 0..PRIORITIES {
            if r.counts[rank] > 0 {
                g.disk.kept[rank] = Span {
                    count: r.counts[rank],
                    bytes: r.bytes[rank],
                    max: r.max_seq,
                };
                self.env.usage.add_store(r.bytes[rank]);
            }
        }
        g.marks = r.marks;
        g.redelivered_below = r.redelivered_below;
    }

    /// Puts entries taken out with [`Queue::take_waiting`] or [`Queue::take_stored`] back
    /// where they were.
    pub fn put_back(&self, entries: impl IntoIterator<Item = Entry>) {
        let mut g = self.lock();
        for e in entries {
            let r = e.rank as usize;
            if e.seq >= g.disk.next[r] && g.taken.remove(&e.seq) {
                // It was only in the store: counted there again.
                let seq = e.seq;
                match e.kept {
                    Kept::Store(n) => g.disk.kept[r].add(seq, u64::from(n)),
                    Kept::Temp(n) => g.disk.temp[r].add(seq, u64::from(n)),
                    Kept::Memory => self.hold(&mut g, e),
                }
            } else {
                self.hold(&mut g, e);
            }
        }
    }

    /// Adds a message and dispatches. `Err` gives the entry back when the queue was retired
    /// meanwhile (the caller looks the queue up again).
    pub fn enqueue(self: &Arc<Self>, entry: Entry) -> Result<Effects, Entry> {
        let mut g = self.lock();
        if g.activity.retired() {
            return Err(entry);
        }
        g.activity.touch();
        g.counters.enqueued += 1;
        let key = entry.key();
        self.admit(&mut g, entry);
        let mut fx = Effects::default();
        // Every message before it was offered to every consumer with room when it came (or
        // when room last appeared, which dispatches from the head): only the new one (and
        // what lies behind it in the window) needs a look, so a backlog a selector refuses
        // costs nothing per enqueue. One that stayed on disk waits for its turn.
        if g.ready.contains_key(&key) {
            self.dispatch_from(&mut g, &mut fx, Some(key));
        }
        Ok(fx)
    }

    /// Records a connection as a producer of this queue; false when the queue was retired.
    pub fn add_producer(&self, conn: u64) -> bool {
        let mut g = self.lock();
        g.activity.touch();
        if g.activity.retired() {
            return false;
        }
        g.producers.insert(conn);
        true
    }

    /// Forgets a producer connection.
    pub fn remove_producer(&self, conn: u64) {
        let mut g = self.lock();
        g.activity.touch();
        g.producers.remove(&conn);
    }

    /// Retires the queue if it is empty, unused and was inactive for `idle_ms`: it then takes
    /// nothing more, and the broker forgets it.
    pub fn retire_if_idle(&self, now: u64, idle_ms: u64) -> bool {
        let mut g = self.lock();
        let unused = g.ready.is_empty()
            && g.disk.total() == 0
            && g.loading.is_none()
            && g.inflight.is_empty()
            && g.consumers.is_empty()
            && g.producers.is_empty();
        g.activity.retire_if(unused, now, idle_ms)
    }

    /// Adds a consumer and dispatches to it. `Err` gives the consumer back when the queue was
    /// retired meanwhile.
    pub fn add_consumer(self: &Arc<Self>, spec: ConsumerSpec) -> Result<Effects, ConsumerSpec> {
        let mut g = self.lock();
        if g.activity.retired() {
            return Err(spec);
        }
        g.activity.touch();
        let pos = g
            .consumers
            .iter()
            .position(|s| s.spec.priority < spec.priority)
            .unwrap_or(g.consumers.len());
        g.consumers.insert(
            pos,
            Slot {
                spec,
                inflight: 0,
                closed: false,
            },
        );
        let mut fx = Effects::default();
        self.dispatch(&mut g, &mut fx);
        Ok(fx)
    }

    /// Removes a consumer; its unacked messages go back to the window marked redelivered, or
    /// to the dead-letter queue past the redelivery limit.
    pub fn remove_consumer(self: &Arc<Self>, id: u64) -> Effects {
        let mut g = self.lock();
        g.activity.touch();
        // A bridge's returns are not redeliveries: no application saw them (and a bridge
        // that loses its peer must not push messages towards the dead-letter queue).
        let network = g
            .consumers
            .iter()
            .any(|s| s.spec.id == id && s.spec.network);
        g.consumers.retain(|s| s.spec.id != id);
        g.groups.release(id);
        let seqs: Vec<u64> = g
            .inflight
            .iter()
            .filter(|(_, f)| f.consumer == id)
            .map(|(s, _)| *s)
            .collect();
        let mut fx = Effects::default();
        for s in seqs {
            if let Some(f) = g.inflight.remove(&s) {
                let mut e = f.entry;
                if !network {
                    e.redeliveries += 1;
                }
                if e.redeliveries > self.env.max_redeliveries {
                    g.counters.dead_lettered += 1;
                    self.release(&mut g, &e);
                    fx.dead.push(e);
                } else {
                    // Still counted in memory: back into the window at its place.
                    g.ready.insert(e.key(), e);
                }
            }
        }
        self.dispatch(&mut g, &mut fx);
        fx
    }

    /// Acknowledges one in-flight message of a consumer: it leaves the queue (and the store).
    /// False if it was not in flight with that consumer.
    pub fn ack(self: &Arc<Self>, seq: u64, consumer: u64, fx: &mut Effects) -> bool {
        self.settle(seq, consumer, fx, Settle::Ack)
    }

    /// Settles one in-flight message of a consumer: acked (it leaves the queue and the store),
    /// forwarded (likewise, counted as forwarded to another broker) or nacked (straight to the
    /// dead-letter queue, ActiveMQ's poison ack). False if it was not in flight with that
    /// consumer (already settled, or redelivered elsewhere).
    pub fn settle(
        self: &Arc<Self>,
        seq: u64,
        consumer: u64,
        fx: &mut Effects,
        how: Settle,
    ) -> bool {
        let mut g = self.lock();
        if !matches!(g.inflight.get(&seq), Some(f) if f.consumer == consumer) {
            return false;
        }
        if let Some(f) = g.inflight.remove(&seq) {
            match how {
                Settle::Ack => g.counters.dequeued += 1,
                Settle::Forwarded => {
                    g.counters.dequeued += 1;
                    g.counters.forwarded += 1;
                }
                Settle::Nack => g.counters.dead_lettered += 1,
            }
            self.release(&mut g, &f.entry);
            if let Some(slot) = g.consumers.iter_mut().find(|s| s.spec.id == consumer) {
                slot.inflight = slot.inflight.saturating_sub(1);
            }
            match how {
                Settle::Nack => fx.dead.push(f.entry),
                Settle::Ack | Settle::Forwarded => fx.delete.push(f.entry),
            }
        }
        self.dispatch(&mut g, fx);
        true
    }

    /// Drops expired messages of the window (those in the store go when they are read).
    pub fn expire(self: &Arc<Self>, now: u64) -> Effects {
        let mut g = self.lock();
        let mut fx = Effects::default();
        let gone: Vec<(u8, u64)> = g
            .ready
            .iter()
            .filter(|(_, e)| e.msg.is_expired(now))
            .map(|(k, _)| *k)
            .collect();
        for k in gone {
            if let Some(e) = g.ready.remove(&k) {
                g.counters.expired += 1;
                self.release(&mut g, &e);
                fx.delete.push(e);
            }
        }
        if !fx.delete.is_empty() {
            self.dispatch(&mut g, &mut fx);
        }
        fx
    }

    /// Removes every waiting message, in the window and in the store (in-flight ones stay
    /// with their consumers). Returns the window's entries (for their store deletes), the ops
    /// that remove the store's part, and how many messages went.
    pub fn purge(&self) -> (Vec<Entry>, Vec<Op>, u64) {
        let mut g = self.lock();
        let gone: Vec<Entry> = std::mem::take(&mut g.ready).into_values().collect();
        for e in &gone {
            self.release(&mut g, e);
        }
        let mut ops = Vec::new();
        let mut n = gone.len() as u64;
        for r in 0..PRIORITIES {
            let next = g.disk.next[r];
            for (span, rank, temp) in [
                (g.disk.kept[r], r as u8, false),
                (g.disk.temp[r], r as u8 + TRANSIENT, true),
            ] {
                if span.count == 0 {
                    continue;
                }
                n += span.count;
                ops.push(Op::Purge {
                    queue: self.name.clone(),
                    rank,
                    from: next,
                    to: span.max,
                });
                if temp {
                    self.env.usage.sub_temp(span.bytes);
                } else {
                    self.env.usage.sub_store(span.bytes);
                }
            }
            let top = g.disk.kept[r].max.max(g.disk.temp[r].max);
            g.disk.next[r] = next.max(top.saturating_add(1));
            g.disk.kept[r] = Span::default();
            g.disk.temp[r] = Span::default();
        }
        g.epoch += 1;
        g.loading = None;
        g.taken.clear();
        (gone, ops, n)
    }

    /// Takes the waiting message `id` out of the window (not one in flight), for the admin
    /// API's move; the caller owns its store record from then on.
    pub fn take_waiting(&self, id: &str) -> Option<Entry> {
        let mut g = self.lock();
        let key = g
            .ready
            .iter()
            .find(|(_, e)| &*e.msg.id == id)
            .map(|(k, _)| *k)?;
        let e = g.ready.remove(&key)?;
        self.release(&mut g, &e);
        Some(e)
    }

    /// Messages in dispatch order, in flight ones first (flagged), at most `limit`, from
    /// memory; and where to continue in the store (`None` when nothing is there).
    pub fn browse_memory(&self, limit: usize) -> (Vec<(Entry, bool)>, Option<[u64; PRIORITIES]>) {
        let g = self.lock();
        let mut inflight: Vec<(Entry, bool)> = g
            .inflight
            .values()
            .map(|f| (f.entry.clone(), true))
            .collect();
        inflight.sort_by_key(|(e, _)| e.key());
        let mut all: Vec<(Entry, bool)> = inflight
            .into_iter()
            .chain(g.ready.values().map(|e| (e.clone(), false)))
            .take(limit)
            .collect();
        all.truncate(limit);
        let more = (g.disk.total() > 0).then_some(g.disk.next);
        (all, more)
    }

    /// [`Queue::browse_memory`] without the store's part.
    pub fn browse(&self, limit: usize) -> Vec<(Entry, bool)> {
        self.browse_memory(limit).0
    }

    /// Persistent messages delivered without an ack: (sequence, deliveries), counting a
    /// message still in flight as delivered once more, and the marks of messages not read
    /// back since the last clean close.
    pub fn delivery_marks(&self) -> Vec<(u64, u32)> {
        let g = self.lock();
        let inflight = g
            .inflight
            .values()
            .map(|f| (&f.entry, f.entry.redeliveries + 1));
        let ready = g
            .ready
            .values()
            .filter(|e| e.redeliveries > 0)
            .map(|e| (e, e.redeliveries));
        let mut out: Vec<(u64, u32)> = inflight
            .chain(ready)
            .filter(|(e, _)| matches!(e.kept, Kept::Store(_)))
            .map(|(e, n)| (e.seq, n))
            .collect();
        out.extend(g.marks.iter().map(|(s, n)| (*s, *n)));
        out
    }

    /// Where redelivery flags of messages still in the store start (see
    /// [`crate::store::Recovery::redelivered_below`]).
    pub fn redelivered_below(&self) -> u64 {
        self.lock().redelivered_below
    }

    /// Number of consumers (local and network).
    pub fn consumer_count(&self) -> usize {
        self.lock().consumers.len()
    }

    /// Demand this queue shows a bridge: see [`super::Core::demand_for`].
    pub(crate) fn demand_for(&self, to: ForBridge<'_>) -> Option<super::consumer::Fold> {
        super::consumer::fold_demand(self.lock().consumers.iter().map(|s| &s.spec), to)
    }

    /// Waiting (in memory and in the store) plus in-flight messages.
    pub fn depth(&self) -> usize {
        let g = self.lock();
        g.ready.len() + g.inflight.len() + g.disk.total() as usize
    }

    /// Messages of this queue in memory now (window and in flight).
    pub fn in_memory(&self) -> usize {
        let g = self.lock();
        g.ready.len() + g.inflight.len()
    }

    /// Counters for the admin API.
    pub fn stats(&self) -> QueueStats {
        let g = self.lock();
        QueueStats {
            name: self.name.to_string(),
            depth: (g.ready.len() + g.inflight.len()) as u64 + g.disk.total(),
            enqueued: g.counters.enqueued,
            dequeued: g.counters.dequeued,
            forwarded: g.counters.forwarded,
            consumers: g.consumers.len() as u64,
            producers: g.producers.len() as u64,
            inflight: g.inflight.len() as u64,
            expired: g.counters.expired,
            dead_lettered: g.counters.dead_lettered,
            bytes: g.counters.bytes + g.disk.bytes(),
            in_memory: (g.ready.len() + g.inflight.len()) as u64,
        }
    }
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("name", &self.name).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::consumer::{AckTarget, Delivery};
    use bytes::Bytes;
    use mq_shared::destination::Destination;
    use tokio::sync::mpsc;

    fn entry(seq: u64) -> Entry {
        Entry::new(
            Arc::new(Message {
                id: Arc::from(format!("id-{seq}")),
                destination: Destination::queue("q"),
                headers: vec![],
                body: Bytes::from_static(b"x"),
                persistent: true,
                expires: 0,
                timestamp: 0,
            }),
            seq,
            Kept::Memory,
        )
    }

    fn seq_of(d: &Delivery) -> u64 {
        match d.ack.as_ref().map(|a| &a.target) {
            Some(AckTarget::Queue { seq, .. }) => *seq,
            _ => 0,
        }
    }

    fn consumer(
        id: u64,
        prefetch: usize,
        priority: i32,
    ) -> (ConsumerSpec, mpsc::UnboundedReceiver<Delivery>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            ConsumerSpec {
                id,
                conn: id,
                prefetch,
                priority,
                network: priority < 0,
                bridge: None,
                options: Default::default(),
                tx,
            },
            rx,
        )
    }

    #[test]
    fn round_robin_prefetch_and_priority() {
        let q = Arc::new(Queue::new("q", QueueEnv::in_memory(6)));
        let (a, mut ra) = consumer(1, 2, 0);
        let (b, mut rb) = consumer(2, 2, 0);
        let (n, mut rn) = consumer(3, 10, -5);
        let _ = q.add_consumer(a);
        let _ = q.add_consumer(b);
        let _ = q.add_consumer(n);
        for s in 1..=6 {
            let _ = q.enqueue(entry(s));
        }
        let got = |r: &mut mpsc::UnboundedReceiver<Delivery>| {
            let mut v = vec![];
            while let Ok(d) = r.try_recv() {
                v.push(seq_of(&d));
            }
            v
        };
        assert_eq!(got(&mut ra), vec![1, 3]);
        assert_eq!(got(&mut rb), vec![2, 4]);
        // The network consumer only gets what local consumers have no room for.
        assert_eq!(got(&mut rn), vec![5, 6]);
    }

    #[test]
    fn redelivery_then_dead_letter() {
        let q = Arc::new(Queue::new("q", QueueEnv::in_memory(1)));
        let _ = q.enqueue(entry(1));
        let (a, mut ra) = consumer(1, 10, 0);
        let _ = q.add_consumer(a);
        assert!(ra.try_recv().is_ok());
        let fx = q.remove_consumer(1);
        assert!(fx.dead.is_empty());
        let (b, mut rb) = consumer(2, 10, 0);
        let _ = q.add_consumer(b);
        let d = rb.try_recv().ok();
        assert!(d.as_ref().is_some_and(|d| d.redelivered));
        let fx = q.remove_consumer(2);
        assert_eq!(fx.dead.len(), 1);
        assert_eq!(q.depth(), 0);
    }

    fn with_path(seq: u64, path: &str) -> Entry {
        let mut e = entry(seq);
        let mut m = (*e.msg).clone();
        m.headers
            .push((crate::internode::BROKER_PATH_HEADER.into(), path.into()));
        e.msg = Arc::new(m);
        e
    }

    fn bridge_to(
        id: u64,
        broker: &str,
        ttl: u32,
    ) -> (ConsumerSpec, mpsc::UnboundedReceiver<Delivery>) {
        let (mut c, rx) = consumer(id, 10, -5);
        c.bridge = Some(Arc::new(crate::broker::consumer::NetworkConsumer {
            remote_broker: Arc::from(broker),
            hops: 1,
            origin: vec![Arc::from(broker)],
            message_ttl: ttl,
            scope: None,
        }));
        (c, rx)
    }

    #[test]
    fn network_filter_holds_back_loops_and_lets_later_messages_pass() {
        let q = Arc::new(Queue::new("q", QueueEnv::in_memory(6)));
        let (n, mut rn) = bridge_to(1, "B", 2);
        let _ = q.add_consumer(n);
        let _ = q.enqueue(with_path(1, "B")); // came from B: never back to B
        let _ = q.enqueue(with_path(2, "X,Y")); // crossed messageTTL brokers already
        let _ = q.enqueue(entry(3));
        let _ = q.enqueue(with_path(4, "X"));
        let got: Vec<u64> = std::iter::from_fn(|| rn.try_recv().ok().map(|d| seq_of(&d))).collect();
        assert_eq!(got, vec![3, 4]);
        assert_eq!(q.depth(), 4);
        // A local consumer takes what the bridge may not.
        let (l, mut rl) = consumer(2, 10, 0);
        let _ = q.add_consumer(l);
        let got: Vec<u64> = std::iter::from_fn(|| rl.try_recv().ok().map(|d| seq_of(&d))).collect();
        assert_eq!(got, vec![1, 2]);
    }

    #[test]
    fn a_bridge_giving_messages_back_is_not_a_redelivery() {
        let q = Arc::new(Queue::new("q", QueueEnv::in_memory(0)));
        let (n, mut rn) = bridge_to(1, "B", 1);
        let _ = q.add_consumer(n);
        let _ = q.enqueue(entry(1));
        assert!(rn.try_recv().is_ok());
        let fx = q.remove_consumer(1);
        assert!(
            fx.dead.is_empty(),
            "maximumRedeliveries=0 yet not dead-lettered"
        );
        let (l, mut rl) = consumer(2, 10, 0);
        let _ = q.add_consumer(l);
        assert!(rl.try_recv().is_ok_and(|d| !d.redelivered));
    }

    #[test]
    fn ack_frees_capacity() {
        let q = Arc::new(Queue::new("q", QueueEnv::in_memory(6)));
        let (a, mut ra) = consumer(1, 1, 0);
        let _ = q.add_consumer(a);
        let _ = q.enqueue(entry(1));
        let _ = q.enqueue(entry(2));
        assert_eq!(ra.try_recv().ok().map(|d| seq_of(&d)), Some(1));
        assert!(ra.try_recv().is_err());
        let mut fx = Effects::default();
        assert!(q.ack(1, 1, &mut fx));
        assert_eq!(fx.delete.len(), 1);
        assert_eq!(ra.try_recv().ok().map(|d| seq_of(&d)), Some(2));
        assert!(!q.ack(1, 1, &mut fx), "double ack is refused");
    }
}
