//! A point-to-point queue: messages waiting, messages in flight, and competing consumers.
//!
//! All state sits behind one short-held mutex. Methods never touch the store; instead they
//! return [`Effects`] (messages to delete, messages to dead-letter) that the broker applies, so
//! the queue stays a pure in-memory state machine that is easy to test.
//!
//! Dispatch: the consumer with capacity (in-flight below its prefetch) and the highest
//! priority wins; equal priorities take turns (round robin). Local consumers have priority 0,
//! network bridges a negative one, so local consumers are served first
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

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use mq_shared::api::QueueStats;

use super::consumer::{AckHandle, AckTarget, ConsumerSpec, Delivery, Settle};
use super::message::{Message, now_ms};

/// Most waiting messages dispatch steps over (held back by the network filter) before it
/// stops looking further down the queue.
pub const MAX_SKIP: usize = 4096;

/// A message held by a queue, with its store key and delivery count.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The message.
    pub msg: Arc<Message>,
    /// Store sequence.
    pub seq: u64,
    /// Deliveries that ended without an ack.
    pub redeliveries: u32,
}

/// Work for the broker after a queue operation.
#[derive(Debug, Default)]
pub struct Effects {
    /// Persistent messages to remove from the store (acked, expired).
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
    bytes: u64,
}

struct Inflight {
    entry: Entry,
    consumer: u64,
}

#[derive(Default)]
struct Inner {
    /// Removed from the broker by the inactive-destination sweep: takes nothing any more.
    retired: bool,
    /// When anything last happened here (ms since the epoch), for that sweep.
    last_active: u64,
    ready: VecDeque<Entry>,
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
    max_redeliveries: u32,
    inner: Mutex<Inner>,
}

impl Queue {
    /// A new empty queue.
    pub fn new(name: &str, max_redeliveries: u32) -> Queue {
        Queue {
            name: Arc::from(name),
            destination: Arc::from(format!("/queue/{name}")),
            max_redeliveries,
            inner: Mutex::new(Inner {
                last_active: now_ms(),
                ..Inner::default()
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent-enough state; keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds recovered messages (in sequence order) without dispatching.
    pub fn recover(&self, entries: impl IntoIterator<Item = Entry>) {
        let mut g = self.lock();
        for e in entries {
            g.counters.bytes += e.msg.size();
            g.ready.push_back(e);
        }
    }

    /// Adds a message and dispatches. `Err` gives the entry back when the queue was retired
    /// meanwhile (the caller looks the queue up again).
    pub fn enqueue(self: &Arc<Self>, entry: Entry) -> Result<Effects, Entry> {
        let mut g = self.lock();
        if g.retired {
            return Err(entry);
        }
        g.last_active = now_ms();
        g.counters.enqueued += 1;
        g.counters.bytes += entry.msg.size();
        g.ready.push_back(entry);
        let mut fx = Effects::default();
        // Every message before it was offered to every consumer with room when it came (or
        // when room last appeared, which dispatches from the head): only the new one needs
        // a look, so a backlog a selector refuses costs nothing per enqueue.
        let from = g.ready.len() - 1;
        self.dispatch_from(&mut g, &mut fx, from);
        Ok(fx)
    }

    /// Records a connection as a producer of this queue; false when the queue was retired.
    pub fn add_producer(&self, conn: u64) -> bool {
        let mut g = self.lock();
        g.last_active = now_ms();
        if g.retired {
            return false;
        }
        g.producers.insert(conn);
        true
    }

    /// Forgets a producer connection.
    pub fn remove_producer(&self, conn: u64) {
        let mut g = self.lock();
        g.last_active = now_ms();
        g.producers.remove(&conn);
    }

    /// Retires the queue if it is empty, unused and was inactive for `idle_ms`: it then takes
    /// nothing more, and the broker forgets it.
    pub fn retire_if_idle(&self, now: u64, idle_ms: u64) -> bool {
        let mut g = self.lock();
        let idle = g.ready.is_empty()
            && g.inflight.is_empty()
            && g.consumers.is_empty()
            && g.producers.is_empty()
            && now.saturating_sub(g.last_active) >= idle_ms;
        if idle {
            g.retired = true;
        }
        idle
    }

    /// Adds a consumer and dispatches to it. `Err` gives the consumer back when the queue was
    /// retired meanwhile.
    pub fn add_consumer(self: &Arc<Self>, spec: ConsumerSpec) -> Result<Effects, ConsumerSpec> {
        let mut g = self.lock();
        if g.retired {
            return Err(spec);
        }
        g.last_active = now_ms();
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

    /// Removes a consumer; its unacked messages go back to the head of the queue marked
    /// redelivered, or to the dead-letter queue past the redelivery limit.
    pub fn remove_consumer(self: &Arc<Self>, id: u64) -> Effects {
        let mut g = self.lock();
        g.last_active = now_ms();
        // A bridge's returns are not redeliveries: no application saw them (and a bridge
        // that loses its peer must not push messages towards the dead-letter queue).
        let network = g
            .consumers
            .iter()
            .any(|s| s.spec.id == id && s.spec.network);
        g.consumers.retain(|s| s.spec.id != id);
        g.groups.release(id);
        let mut back: Vec<Entry> = Vec::new();
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
                if e.redeliveries > self.max_redeliveries {
                    g.counters.dead_lettered += 1;
                    g.counters.bytes = g.counters.bytes.saturating_sub(e.msg.size());
                    fx.dead.push(e);
                } else {
                    back.push(e);
                }
            }
        }
        back.sort_by_key(|e| e.seq);
        for e in back.into_iter().rev() {
            g.ready.push_front(e);
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
            g.counters.bytes = g.counters.bytes.saturating_sub(f.entry.msg.size());
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

    /// Drops expired waiting messages.
    pub fn expire(self: &Arc<Self>, now: u64) -> Effects {
        let mut g = self.lock();
        let mut fx = Effects::default();
        if g.ready.iter().any(|e| e.msg.is_expired(now)) {
            let (keep, gone): (Vec<Entry>, Vec<Entry>) =
                g.ready.drain(..).partition(|e| !e.msg.is_expired(now));
            g.ready = keep.into();
            for e in gone {
                g.counters.expired += 1;
                g.counters.bytes = g.counters.bytes.saturating_sub(e.msg.size());
                fx.delete.push(e);
            }
        }
        fx
    }

    /// Removes every waiting message (in-flight ones stay with their consumers).
    pub fn purge(&self) -> Vec<Entry> {
        let mut g = self.lock();
        let gone: Vec<Entry> = g.ready.drain(..).collect();
        for e in &gone {
            g.counters.bytes = g.counters.bytes.saturating_sub(e.msg.size());
        }
        gone
    }

    /// Takes the waiting message `id` out of the queue (not one in flight), for the admin
    /// API's move; the caller owns its store record from then on.
    pub fn take_waiting(&self, id: &str) -> Option<Entry> {
        let mut g = self.lock();
        let i = g.ready.iter().position(|e| &*e.msg.id == id)?;
        let e = g.ready.remove(i)?;
        g.counters.bytes = g.counters.bytes.saturating_sub(e.msg.size());
        Some(e)
    }

    /// Messages in queue order (in-flight ones included and flagged), at most `limit`.
    pub fn browse(&self, limit: usize) -> Vec<(Entry, bool)> {
        let g = self.lock();
        let mut all: Vec<(Entry, bool)> = g
            .inflight
            .values()
            .map(|f| (f.entry.clone(), true))
            .chain(g.ready.iter().map(|e| (e.clone(), false)))
            .collect();
        all.sort_by_key(|(e, _)| e.seq);
        all.truncate(limit);
        all
    }

    /// Persistent messages delivered without an ack: (sequence, deliveries), counting a
    /// message still in flight as delivered once more.
    pub fn delivery_marks(&self) -> Vec<(u64, u32)> {
        let g = self.lock();
        let inflight = g
            .inflight
            .values()
            .map(|f| (&f.entry, f.entry.redeliveries + 1));
        let ready = g
            .ready
            .iter()
            .filter(|e| e.redeliveries > 0)
            .map(|e| (e, e.redeliveries));
        inflight
            .chain(ready)
            .filter(|(e, _)| e.msg.persistent)
            .map(|(e, n)| (e.seq, n))
            .collect()
    }

    /// Number of consumers (local and network).
    pub fn consumer_count(&self) -> usize {
        self.lock().consumers.len()
    }

    /// Demand this queue shows a bridge: see [`super::Core::demand_for`].
    pub fn demand_for(
        &self,
        except_conn: Option<u64>,
        except_broker: Option<&str>,
    ) -> Option<super::consumer::Fold> {
        let g = self.lock();
        super::consumer::fold_demand(
            g.consumers.iter().map(|s| &s.spec),
            except_conn,
            except_broker,
        )
    }

    /// Waiting plus in-flight messages.
    pub fn depth(&self) -> usize {
        let g = self.lock();
        g.ready.len() + g.inflight.len()
    }

    /// Counters for the admin API.
    pub fn stats(&self) -> QueueStats {
        let g = self.lock();
        QueueStats {
            name: self.name.to_string(),
            depth: (g.ready.len() + g.inflight.len()) as u64,
            enqueued: g.counters.enqueued,
            dequeued: g.counters.dequeued,
            forwarded: g.counters.forwarded,
            consumers: g.consumers.len() as u64,
            producers: g.producers.len() as u64,
            inflight: g.inflight.len() as u64,
            expired: g.counters.expired,
            dead_lettered: g.counters.dead_lettered,
            bytes: g.counters.bytes,
        }
    }

    fn dispatch(self: &Arc<Self>, g: &mut Inner, fx: &mut Effects) {
        self.dispatch_from(g, fx, 0)
    }

    fn dispatch_from(self: &Arc<Self>, g: &mut Inner, fx: &mut Effects, from: usize) {
        let now = now_ms();
        // Index into `ready` of the next message to place; messages before it are held back
        // because no consumer with room accepts them (network filter, selectors, groups).
        let mut i = from;
        while i < g.ready.len() && i <= MAX_SKIP {
            let Some(ix) = pick(g, i) else {
                if !has_room(g) {
                    break;
                }
                i += 1;
                continue;
            };
            let Some(entry) = g.ready.remove(i) else {
                break;
            };
            if entry.msg.is_expired(now) {
                g.counters.expired += 1;
                g.counters.bytes = g.counters.bytes.saturating_sub(entry.msg.size());
                fx.delete.push(entry);
                continue;
            }
            let slot = &mut g.consumers[ix];
            let d = Delivery {
                consumer: slot.spec.id,
                message: entry.msg.clone(),
                redelivered: entry.redeliveries > 0,
                ack: Some(AckHandle {
                    target: AckTarget::Queue {
                        queue: self.clone(),
                        seq: entry.seq,
                    },
                    consumer: slot.spec.id,
                }),
            };
            if slot.spec.tx.send(d).is_err() {
                // The connection is gone; its cleanup will remove the consumer.
                slot.closed = true;
                g.ready.insert(i, entry);
                continue;
            }
            slot.inflight += 1;
            let consumer = slot.spec.id;
            g.inflight.insert(entry.seq, Inflight { entry, consumer });
        }
    }
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("name", &self.name).finish()
    }
}

fn has_capacity(s: &Slot) -> bool {
    !s.closed && s.inflight < s.spec.prefetch
}

/// Whether any consumer could take a message now.
fn has_room(g: &Inner) -> bool {
    g.consumers.iter().any(has_capacity)
}

/// Index of the consumer to receive the waiting message at `at`, if one with room takes it:
/// the exclusive consumer, the owner of its group, or the highest priority one in turn (see
/// [`super::groups::choose`]).
fn pick(g: &mut Inner, at: usize) -> Option<usize> {
    let msg = g.ready.get(at)?.msg.clone();
    let Inner {
        consumers,
        groups,
        rr,
        ..
    } = g;
    let consumers = &*consumers;
    super::groups::choose(
        consumers.len(),
        |i| (&consumers[i].spec, has_capacity(&consumers[i])),
        &msg,
        groups,
        rr,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use mq_shared::destination::Destination;
    use tokio::sync::mpsc;

    fn entry(seq: u64) -> Entry {
        Entry {
            msg: Arc::new(Message {
                id: Arc::from(format!("id-{seq}")),
                destination: Destination::queue("q"),
                headers: vec![],
                body: Bytes::from_static(b"x"),
                persistent: true,
                expires: 0,
                timestamp: 0,
            }),
            seq,
            redeliveries: 0,
        }
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
        let q = Arc::new(Queue::new("q", 6));
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
        let q = Arc::new(Queue::new("q", 1));
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
        let q = Arc::new(Queue::new("q", 6));
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
        let q = Arc::new(Queue::new("q", 0));
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
        let q = Arc::new(Queue::new("q", 6));
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
