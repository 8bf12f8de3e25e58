//! Temporary destinations: queues and topics that belong to one connection and go with it.
//!
//! A client names them `/temp-queue/NAME` and `/temp-topic/NAME`, and NAME is its own: the
//! transport maps each NAME of a connection, at its first use (SUBSCRIBE, SEND or a `reply-to`
//! header), to a destination with a broker-wide id, `/remote-temp-queue/ID:BROKER-BOOT-CONN:N`
//! (ActiveMQ's spelling and scheme: the connection's id, then a sequence). That connection
//! owns it: only it may consume from it, and the destination and whatever waits in it are
//! removed when it closes. Any connection, on this node or another, may SEND to the id: a
//! responder gets it from the request's `reply-to`, which the transport rewrites the same way.
//!
//! Through a network of brokers, the owner's subscription is demand like any other: the peer
//! attaches a network consumer to the same id, which creates the destination there, not owned
//! by anyone, to carry replies back. A destination not owned on this node (a peer's, or one a
//! SEND named before its demand arrived) is removed once it has had no consumer for
//! [`mq_shared::defaults::TEMP_ORPHAN_TIMEOUT`]; one minted here whose owner is gone takes
//! nothing any more (a SEND to it is refused).
//!
//! Temporary destinations live in memory only (a restart ends every connection that could
//! read them), never match a wildcard, and are not listed with the queues and topics.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use mq_shared::destination::{Destination, DestinationKind};

use super::consumer::{Demand, ForBridge};
use super::message::{Message, now_ms};
use super::queue::{Entry, Kept, Queue};
use super::topic::Topic;
use super::{Attached, ConsumerSpec, Core};

/// Who a temporary destination belongs to, as this node knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TempOwner {
    /// Connection `conn` of this node owns it.
    Connection(u64),
    /// It is here for another node's owner (or for a SEND that named it).
    Remote,
    /// Minted here, and its owner has closed: it takes nothing any more.
    Gone,
    /// This node has no such destination.
    Unknown,
}

/// The temporary destinations of one broker.
pub(crate) struct Temps {
    /// Part of every id minted here: the broker's name and a random token of this start.
    mint_prefix: String,
    next: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    queues: HashMap<Arc<str>, Held<Queue>>,
    topics: HashMap<Arc<str>, Held<Topic>>,
}

struct Held<T> {
    dest: Arc<T>,
    owner: Option<u64>,
    /// Since when it has had no consumer (ms), for one not owned here.
    idle_since: Option<u64>,
}

impl Temps {
    pub(crate) fn new(broker: &str) -> Temps {
        let token: u32 = rand::random();
        Temps {
            mint_prefix: format!("ID:{broker}-{token:08x}-"),
            next: AtomicU64::new(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn minted_here(&self, id: &str) -> bool {
        id.starts_with(&self.mint_prefix)
    }
}

impl Core {
    fn temps(&self) -> &Temps {
        &self.shared.temps
    }

    /// A new temporary queue or topic owned by connection `owner`.
    pub fn create_temp(&self, kind: DestinationKind, owner: u64) -> Destination {
        let t = self.temps();
        let n = t.next.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}{owner}:{n}", t.mint_prefix);
        let dest = Destination::temporary(kind, &id);
        let mut g = t.lock();
        let key: Arc<str> = Arc::from(id.as_str());
        match kind {
            DestinationKind::Queue => {
                g.queues.insert(
                    key,
                    Held {
                        dest: Arc::new(Queue::new(&id, self.shared.env.clone())),
                        owner: Some(owner),
                        idle_since: None,
                    },
                );
            }
            DestinationKind::Topic => {
                let limit = self.shared.settings.pending_message_limit;
                g.topics.insert(
                    key,
                    Held {
                        dest: Arc::new(Topic::new(&id, limit)),
                        owner: Some(owner),
                        idle_since: None,
                    },
                );
            }
        }
        dest
    }

    /// Who the temporary destination `dest` belongs to.
    pub fn temp_owner(&self, dest: &Destination) -> TempOwner {
        let t = self.temps();
        let g = t.lock();
        let owner = match dest.kind() {
            DestinationKind::Queue => g.queues.get(dest.name()).map(|h| h.owner),
            DestinationKind::Topic => g.topics.get(dest.name()).map(|h| h.owner),
        };
        match owner {
            Some(Some(c)) => TempOwner::Connection(c),
            Some(None) => TempOwner::Remote,
            None if t.minted_here(dest.name()) => TempOwner::Gone,
            None => TempOwner::Unknown,
        }
    }

    /// The temporary queue `dest`, created (owned by no one here) if this node has none and
    /// did not mint it; `None` when its owner here is gone.
    pub(super) fn temp_queue(&self, dest: &Destination) -> Option<Arc<Queue>> {
        let t = self.temps();
        let mut g = t.lock();
        if let Some(h) = g.queues.get(dest.name()) {
            return Some(h.dest.clone());
        }
        if t.minted_here(dest.name()) {
            return None;
        }
        let q = Arc::new(Queue::new(dest.name(), self.shared.env.clone()));
        g.queues.insert(
            Arc::from(dest.name()),
            Held {
                dest: q.clone(),
                owner: None,
                idle_since: Some(now_ms()),
            },
        );
        Some(q)
    }

    /// The temporary topic `dest`, created as [`Core::temp_queue`] creates queues when `create`.
    pub(super) fn temp_topic(&self, dest: &Destination, create: bool) -> Option<Arc<Topic>> {
        let t = self.temps();
        let mut g = t.lock();
        if let Some(h) = g.topics.get(dest.name()) {
            return Some(h.dest.clone());
        }
        if !create || t.minted_here(dest.name()) {
            return None;
        }
        let topic = Arc::new(Topic::new(
            dest.name(),
            self.shared.settings.pending_message_limit,
        ));
        g.topics.insert(
            Arc::from(dest.name()),
            Held {
                dest: topic.clone(),
                owner: None,
                idle_since: Some(now_ms()),
            },
        );
        Some(topic)
    }

    /// Attaches a consumer to a temporary destination (`None`: its owner here is gone).
    pub(super) fn subscribe_temp(&self, dest: &Destination, spec: ConsumerSpec) -> Attached {
        match dest.kind() {
            DestinationKind::Queue => match self.temp_queue(dest) {
                Some(q) => {
                    if let Ok(fx) = q.add_consumer(spec) {
                        self.apply(fx, None);
                    }
                    Attached::Queue(q)
                }
                None => Attached::Nowhere,
            },
            DestinationKind::Topic => match self.temp_topic(dest, true) {
                Some(t) => {
                    let _ = t.subscribe(spec);
                    Attached::Topic(t)
                }
                None => Attached::Nowhere,
            },
        }
    }

    /// Removes the temporary destinations of connection `owner` (it closed); what waits in
    /// them is dropped.
    pub fn remove_temps(&self, owner: u64) {
        let mut g = self.temps().lock();
        let before = g.queues.len() + g.topics.len();
        g.queues.retain(|_, h| h.owner != Some(owner));
        g.topics.retain(|_, h| h.owner != Some(owner));
        let n = before - g.queues.len() - g.topics.len();
        if n > 0 {
            tracing::debug!(conn = owner, removed = n, "temporary destinations removed");
        }
    }

    /// Removes the temporary destinations not owned here that have had no consumer for
    /// [`mq_shared::defaults::TEMP_ORPHAN_TIMEOUT`], and expires what waits in the others.
    pub(super) fn sweep_temps(&self) {
        let now = now_ms();
        let timeout = mq_shared::defaults::TEMP_ORPHAN_TIMEOUT.as_millis() as u64;
        let mut queues = Vec::new();
        {
            let mut g = self.temps().lock();
            let orphaned = |h_owner: Option<u64>, used: bool, idle: &mut Option<u64>| {
                if h_owner.is_some() || used {
                    *idle = None;
                    return false;
                }
                let since = *idle.get_or_insert(now);
                now.saturating_sub(since) >= timeout
            };
            g.queues.retain(|_, h| {
                let used = h.dest.consumer_count() > 0;
                !orphaned(h.owner, used, &mut h.idle_since)
            });
            g.topics.retain(|_, h| {
                let used = h.dest.stats().subscribers > 0;
                !orphaned(h.owner, used, &mut h.idle_since)
            });
            queues.extend(g.queues.values().map(|h| h.dest.clone()));
        }
        for q in queues {
            let fx = q.expire(now);
            if !fx.is_empty() {
                self.apply(fx, None);
            }
        }
    }

    /// Demand of the temporary destinations (see [`Core::demand_for`]).
    pub(super) fn temp_demand(&self, to: ForBridge<'_>) -> Vec<Demand> {
        let (queues, topics): (Vec<_>, Vec<_>) = {
            let g = self.temps().lock();
            (
                g.queues.values().map(|h| h.dest.clone()).collect(),
                g.topics.values().map(|h| h.dest.clone()).collect(),
            )
        };
        let mut out = Vec::new();
        for q in queues {
            if let Some(fold) = q.demand_for(to) {
                let queue = Destination::temporary(DestinationKind::Queue, &q.name);
                out.push(Demand::of(queue, fold));
            }
        }
        for t in topics {
            if let Some(fold) = t.demand_for(to) {
                let topic = Destination::temporary(DestinationKind::Topic, &t.name);
                out.push(Demand::of(topic, fold));
            }
        }
        out.sort_by(|a, b| a.destination.as_str().cmp(b.destination.as_str()));
        out
    }
}

impl Core {
    /// Delivers a message sent to a temporary destination: into its queue (created if this
    /// node has none and did not mint it) or to its topic's subscribers; dropped when its
    /// owner here is gone.
    pub(super) fn deliver_temp(&self, m: Message, seq: u64, kept: Kept, from_conn: Option<u64>) {
        let dest = m.destination.clone();
        match dest.kind() {
            DestinationKind::Queue => match self.temp_queue(&dest) {
                Some(q) => {
                    if let Ok(fx) = q.enqueue(Entry::new(Arc::new(m), seq, kept)) {
                        self.apply(fx, None);
                    }
                }
                None => {
                    tracing::debug!(destination = %dest, "temporary queue gone; message dropped")
                }
            },
            DestinationKind::Topic => {
                if let Some(t) = self.temp_topic(&dest, false) {
                    t.publish(Arc::new(m), from_conn);
                }
            }
        }
    }
}
