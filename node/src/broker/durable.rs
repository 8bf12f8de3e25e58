//! Durable topic subscriptions and virtual topics (ActiveMQ's semantics).
//!
//! A **durable subscription** (CONNECT `client-id`, SUBSCRIBE `activemq.subscriptionName` on a
//! topic) is a queue of its own inside the broker, named `mq.durable/N`: no client can send to
//! or subscribe to it by name. Publishing to the topic puts a copy of each message the
//! subscription's selector accepts into that queue (a persistent message: one store `Put` per
//! subscription, in the publish's commit); a non-persistent message only while the subscriber
//! is connected, as ActiveMQ does. The subscriber consumes that queue as a queue consumer: its
//! ack mode, prefetch and redelivery are a queue's, and a backlog larger than memory stays in
//! the store and is read back a window at a time. The list of subscriptions is kept in the
//! store as records of the reserved queue `mq.durable/subscriptions` (a record's sequence is
//! the subscription's number), so it rides the journal and survives restarts and failovers.
//!
//! A **virtual topic** is a topic named `VirtualTopic.X`: a SEND to it also goes, as a queue
//! message with its own id and `original-destination: /topic/VirtualTopic.X`, to every queue
//! `Consumer.<group>.VirtualTopic.X` a consumer (local, or a bridge standing for remote ones)
//! has subscribed to at least once. The groups are recorded in the store too. A message that
//! arrives from a bridge is not copied again: the node where it was published did that, and
//! queue demand forwards the copies.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use mq_shared::api::SubscriptionInfo;
use mq_shared::destination::Destination;
use mq_shared::selector::Selector;
use serde::{Deserialize, Serialize};

use super::consumer::{ConsumerSpec, Demand, Fold, ForBridge};
use super::message::{Message, now_ms};
use super::queue::Queue;
use super::{Attached, Core};
use crate::store::{DEFAULT_RANK, Done, Op, PRIORITIES};

/// Prefix of the broker's internal queues (durable subscriptions and their list).
pub const INTERNAL_PREFIX: &str = "mq.durable/";
/// The reserved queue whose records list the durable subscriptions and virtual topic groups.
const REGISTRY: &str = "mq.durable/subscriptions";
/// Prefix of a virtual topic's name.
pub const VIRTUAL_TOPIC_PREFIX: &str = "VirtualTopic.";
/// Prefix of a virtual topic's consumer queue (`Consumer.<group>.VirtualTopic.X`).
pub const CONSUMER_PREFIX: &str = "Consumer.";
/// Header a virtual topic's copy carries: the topic it was sent to.
pub const ORIGINAL_DESTINATION: &str = "original-destination";

/// Whether a queue name is the reserved one that lists the durable subscriptions.
pub fn is_registry(queue: &str) -> bool {
    queue == REGISTRY
}

/// Whether a queue name is one of the broker's own (never reachable by clients).
pub fn is_internal(queue: &str) -> bool {
    queue.starts_with(INTERNAL_PREFIX)
}

/// The virtual topic a queue named `Consumer.<group>.VirtualTopic.X` consumes, if it is one.
pub fn virtual_topic_of(queue: &str) -> Option<&str> {
    let rest = queue.strip_prefix(CONSUMER_PREFIX)?;
    let (group, topic) = rest.split_once('.')?;
    (!group.is_empty()
        && !group.contains(['*', '>'])
        && topic.len() > VIRTUAL_TOPIC_PREFIX.len()
        && topic.starts_with(VIRTUAL_TOPIC_PREFIX)
        && !topic.contains(['*', '>']))
    .then_some(topic)
}

/// One record of the registry queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Record {
    /// A durable subscription.
    Durable {
        client_id: String,
        name: String,
        topic: String,
        selector: Option<String>,
        created: u64,
    },
    /// A virtual topic's consumer queue.
    Group { queue: String },
}

/// One durable subscription.
pub struct DurableSub {
    /// The `client-id` of the connections that own it.
    pub client_id: String,
    /// Its `activemq.subscriptionName`.
    pub name: String,
    /// The topic (name without `/topic/`).
    pub topic: Arc<str>,
    /// The selector's text.
    pub selector_text: Option<String>,
    selector: Option<Arc<Selector>>,
    /// The internal queue that holds its messages.
    pub queue: Arc<str>,
    /// Its number: the sequence of its registry record.
    record: u64,
    /// Size of its registry record in bytes.
    record_len: u32,
    state: Mutex<SubState>,
}

struct SubState {
    /// The connection consuming it, while one does.
    active: Option<u64>,
    /// When it last went offline (or was recovered), ms since the epoch.
    offline_since: u64,
}

impl DurableSub {
    /// Whether a connection consumes it now.
    pub fn is_active(&self) -> bool {
        self.lock().active.is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SubState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a message published to its topic is kept for it.
    fn wants(&self, m: &Message) -> bool {
        (m.persistent || self.is_active()) && self.selector.as_ref().is_none_or(|s| s.matches(m))
    }

    fn same(&self, topic: &str, selector: Option<&str>) -> bool {
        &*self.topic == topic && self.selector_text.as_deref() == selector
    }

    fn record_op(&self, data: bytes::Bytes) -> Op {
        Op::Put {
            queue: Arc::from(REGISTRY),
            rank: DEFAULT_RANK,
            seq: self.record,
            data,
            dedup: None,
        }
    }

    fn delete_record_op(&self) -> Op {
        Op::Delete {
            queue: Arc::from(REGISTRY),
            rank: DEFAULT_RANK,
            seq: self.record,
            size: self.record_len,
        }
    }
}

/// The broker's durable subscriptions, the client ids in use, and the virtual topic groups.
#[derive(Default)]
pub(super) struct Durables {
    subs: RwLock<Subs>,
    /// Client id → the connection using it.
    clients: Mutex<HashMap<String, u64>>,
    /// Virtual topic name → its consumer queues (with the sequence of their record).
    groups: RwLock<Groups>,
}

/// Durable subscriptions by (client id, name).
type Subs = HashMap<(String, String), Arc<DurableSub>>;
/// Virtual topic name → its consumer queues (with the sequence of their record).
type Groups = HashMap<String, BTreeSet<(String, u64)>>;

/// The locks of [`Durables`], taken even when a panic poisoned them (each change leaves the
/// maps consistent).
impl Durables {
    fn subs(&self) -> RwLockReadGuard<'_, Subs> {
        self.subs.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn subs_mut(&self) -> RwLockWriteGuard<'_, Subs> {
        self.subs.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn groups(&self) -> RwLockReadGuard<'_, Groups> {
        self.groups.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn groups_mut(&self) -> RwLockWriteGuard<'_, Groups> {
        self.groups.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn clients(&self) -> MutexGuard<'_, HashMap<String, u64>> {
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why a durable subscription could not be removed.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    /// A connection consumes it.
    #[error(
        "durable subscription '{1}' of client-id '{0}' is in use by a connection; it must disconnect or unsubscribe first"
    )]
    Active(String, String),
}

impl Core {
    fn durables(&self) -> &Durables {
        &self.shared.durables
    }

    /// Takes `client_id` for connection `conn`; refused while another connection holds it
    /// (ActiveMQ's `InvalidClientIDException`).
    pub fn claim_client_id(&self, client_id: &str, conn: u64) -> Result<(), String> {
        let mut c = self.durables().clients();
        match c.get(client_id) {
            Some(other) if *other != conn => Err(format!(
                "InvalidClientIDException: client-id '{client_id}' is already connected to broker {} (connection {other}); one connection at a time may use a client-id",
                self.name()
            )),
            _ => {
                c.insert(client_id.to_string(), conn);
                Ok(())
            }
        }
    }

    /// Gives `client_id` back (its connection closed).
    pub fn release_client_id(&self, client_id: &str, conn: u64) {
        let mut c = self.durables().clients();
        if c.get(client_id) == Some(&conn) {
            c.remove(client_id);
        }
    }

    /// Attaches `spec` to durable subscription `name` of `client_id` on `topic` (a topic name
    /// without `/topic/`), creating it, or replacing it when its topic or selector differ
    /// (ActiveMQ deletes and recreates it: its backlog goes). The consumer gets every message
    /// of the subscription's queue (the selector applied when they were kept). Returns the
    /// store ops that record the change, for the caller to [`Core::persist`] (its RECEIPT
    /// follows them).
    pub fn subscribe_durable(
        &self,
        client_id: &str,
        name: &str,
        topic: &str,
        selector: Option<(String, Arc<Selector>)>,
        mut spec: ConsumerSpec,
    ) -> Result<(Attached, Vec<Op>), String> {
        if spec.options.no_local {
            // A durable subscription keeps what is published while nobody is connected: whose
            // connection it came from is not kept with it, so noLocal cannot be honoured.
            return Err(format!(
                "{}:true is not supported on a durable subscription ('{name}' of client-id '{client_id}')",
                mq_shared::headers::NO_LOCAL
            ));
        }
        let conn = spec.conn;
        let key = (client_id.to_string(), name.to_string());
        let mut ops = Vec::new();
        let sub = {
            let mut subs = self.durables().subs_mut();
            let existing = subs.get(&key).cloned();
            if let Some(old) = &existing
                && old.is_active()
            {
                return Err(format!(
                    "durable subscription '{name}' of client-id '{client_id}' is already active"
                ));
            }
            let sel_text = selector.as_ref().map(|(t, _)| t.as_str());
            match existing {
                Some(old) if old.same(topic, sel_text) => old,
                old => {
                    if let Some(old) = old {
                        tracing::info!(client_id, name, "durable subscription changed: recreated");
                        ops.extend(self.drop_durable_queue(&old));
                    }
                    let record = self.next_seq();
                    let rec = Record::Durable {
                        client_id: client_id.to_string(),
                        name: name.to_string(),
                        topic: topic.to_string(),
                        selector: sel_text.map(str::to_string),
                        created: now_ms(),
                    };
                    let data = bytes::Bytes::from(serde_json::to_vec(&rec).unwrap_or_default());
                    let sub = Arc::new(DurableSub {
                        client_id: client_id.to_string(),
                        name: name.to_string(),
                        topic: Arc::from(topic),
                        selector_text: sel_text.map(str::to_string),
                        selector: selector.map(|(_, s)| s),
                        queue: Arc::from(format!("{INTERNAL_PREFIX}{record}")),
                        record,
                        record_len: data.len() as u32,
                        state: Mutex::new(SubState {
                            active: None,
                            offline_since: now_ms(),
                        }),
                    });
                    if self.shared.store.is_some() {
                        ops.push(sub.record_op(data));
                    }
                    subs.insert(key, sub.clone());
                    sub
                }
            }
        };
        sub.lock().active = Some(conn);
        // The queue consumer takes every message kept for the subscription.
        spec.options.selector = None;
        loop {
            let q = self.queue(&sub.queue);
            match q.add_consumer(spec) {
                Ok(fx) => {
                    self.apply(fx, None);
                    self.shared.demand.send_modify(|v| *v += 1);
                    return Ok((Attached::Durable(q, sub), ops));
                }
                Err(back) => spec = back,
            }
        }
    }

    /// Detaches the consumer of a durable subscription: it goes offline and keeps its messages.
    pub(super) fn detach_durable(&self, q: &Arc<Queue>, sub: &Arc<DurableSub>, consumer: u64) {
        let fx = q.remove_consumer(consumer);
        self.apply(fx, None);
        let mut s = sub.lock();
        s.active = None;
        s.offline_since = now_ms();
    }

    /// Removes durable subscription `name` of `client_id` and its backlog (UNSUBSCRIBE with
    /// `activemq.subscriptionName`, the admin API): how many messages its backlog held, and
    /// the store ops that make the removal durable, for the caller to [`Core::persist`].
    /// `Ok(None)` when there is none.
    pub fn remove_durable(
        &self,
        client_id: &str,
        name: &str,
    ) -> Result<Option<(u64, Vec<Op>)>, RemoveError> {
        let key = (client_id.to_string(), name.to_string());
        let sub = {
            let mut subs = self.durables().subs_mut();
            match subs.get(&key) {
                None => return Ok(None),
                Some(s) if s.is_active() => {
                    return Err(RemoveError::Active(key.0, key.1));
                }
                Some(_) => subs.remove(&key),
            }
        };
        let Some(sub) = sub else { return Ok(None) };
        let pending = self.find_queue(&sub.queue).map_or(0, |q| q.depth() as u64);
        let ops = self.drop_durable_queue(&sub);
        self.shared.demand.send_modify(|v| *v += 1);
        tracing::info!(client_id, name, pending, "durable subscription removed");
        Ok(Some((pending, ops)))
    }

    /// The ops that forget a subscription: its record, and every message of its queue (which
    /// leaves the broker).
    fn drop_durable_queue(&self, sub: &DurableSub) -> Vec<Op> {
        let mut ops = Vec::new();
        if self.shared.store.is_some() {
            ops.push(sub.delete_record_op());
        }
        let q = self
            .shared
            .queues
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&sub.queue);
        if let Some(q) = q {
            let (gone, purge, _) = q.purge();
            ops.extend(purge);
            ops.extend(gone.iter().filter_map(|e| self.delete_op(e)));
        }
        ops
    }

    /// Submits `ops` (if any) to the store; `done` runs once they are durable (at once when
    /// there are none).
    pub fn persist(&self, ops: Vec<Op>, done: Option<Done>) {
        match (&self.shared.disk, ops.is_empty()) {
            (Some(store), false) => store.submit(ops, done),
            _ => {
                if let Some(d) = done {
                    d(Ok(Default::default()));
                }
            }
        }
    }

    /// Whether internal queue `queue` still belongs to a subscription (a copy published just
    /// before its subscription was removed is dropped).
    pub(super) fn durable_queue_live(&self, queue: &str) -> bool {
        self.durables().subs().values().any(|s| &*s.queue == queue)
    }

    /// The copies of topic message `m` for its durable subscriptions and, unless it came from
    /// a bridge (`from_bridge`), for its virtual topic's consumer queues.
    pub(super) fn fan_out(&self, m: &Message, from_bridge: bool) -> Vec<Message> {
        let mut out = Vec::new();
        if m.destination.is_queue() || m.destination.is_temp() {
            return out;
        }
        let topic = m.destination.name();
        {
            let subs = self.durables().subs();
            for s in subs.values() {
                if &*s.topic == topic && s.wants(m) {
                    let mut c = m.clone();
                    c.destination = Destination::queue(&s.queue);
                    out.push(c);
                }
            }
        }
        if !from_bridge && topic.starts_with(VIRTUAL_TOPIC_PREFIX) {
            let groups = self.durables().groups();
            for (queue, _) in groups.get(topic).into_iter().flatten() {
                let mut c = m.clone();
                c.destination = Destination::queue(queue);
                c.id = Arc::from(self.new_message_id());
                c.headers
                    .retain(|(k, _)| !k.eq_ignore_ascii_case(ORIGINAL_DESTINATION));
                c.headers
                    .push((ORIGINAL_DESTINATION.into(), m.destination.to_string()));
                out.push(c);
            }
        }
        out
    }

    /// Records queue `queue` as a virtual topic's consumer queue if it is one (a consumer
    /// subscribed to it), so the topic's messages are copied to it from now on.
    pub(super) fn note_virtual_consumer(&self, queue: &str) {
        let Some(topic) = virtual_topic_of(queue) else {
            return;
        };
        {
            let g = self.durables().groups();
            if g.get(topic)
                .is_some_and(|s| s.iter().any(|(q, _)| q == queue))
            {
                return;
            }
        }
        let record = self.next_seq();
        let inserted = self
            .durables()
            .groups_mut()
            .entry(topic.to_string())
            .or_default()
            .insert((queue.to_string(), record));
        if inserted && self.shared.store.is_some() {
            tracing::info!(queue, topic, "virtual topic consumer queue created");
            let rec = Record::Group {
                queue: queue.to_string(),
            };
            let data = bytes::Bytes::from(serde_json::to_vec(&rec).unwrap_or_default());
            self.persist(
                vec![Op::Put {
                    queue: Arc::from(REGISTRY),
                    rank: DEFAULT_RANK,
                    seq: record,
                    data,
                    dedup: None,
                }],
                None,
            );
        }
    }

    /// Forgets queue `queue` as a virtual topic's consumer queue (it was deleted).
    pub(super) fn forget_virtual_consumer(&self, queue: &str) {
        let Some(topic) = virtual_topic_of(queue) else {
            return;
        };
        let gone: Vec<(String, u64)> = {
            let mut g = self.durables().groups_mut();
            let Some(set) = g.get_mut(topic) else { return };
            let gone: Vec<_> = set.iter().filter(|(q, _)| q == queue).cloned().collect();
            set.retain(|(q, _)| q != queue);
            gone
        };
        if self.shared.store.is_some() {
            let ops = gone
                .into_iter()
                .map(|(q, seq)| Op::Delete {
                    queue: Arc::from(REGISTRY),
                    rank: DEFAULT_RANK,
                    seq,
                    size: serde_json::to_vec(&Record::Group { queue: q })
                        .map_or(0, |v| v.len() as u32),
                })
                .collect();
            self.persist(ops, None);
        }
    }

    /// Reads the durable subscriptions and virtual topic groups back from the store (at
    /// start, before the transports open). Internal queues whose subscription is gone are
    /// purged.
    pub async fn recover_durables(&self) {
        let Some(store) = self.shared.store.clone() else {
            return;
        };
        let list = match store
            .read(Arc::from(REGISTRY), [0; PRIORITIES], usize::MAX, u64::MAX)
            .await
        {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "reading the durable subscriptions failed");
                return;
            }
        };
        let now = now_ms();
        let (mut subs, mut groups) = (0, 0);
        for l in list {
            match serde_json::from_slice::<Record>(&l.data) {
                Ok(Record::Durable {
                    client_id,
                    name,
                    topic,
                    selector,
                    ..
                }) => {
                    let compiled = selector
                        .as_deref()
                        .and_then(|t| Selector::parse(t).ok().map(Arc::new));
                    let sub = Arc::new(DurableSub {
                        client_id: client_id.clone(),
                        name: name.clone(),
                        topic: Arc::from(topic.as_str()),
                        selector_text: selector,
                        selector: compiled,
                        queue: Arc::from(format!("{INTERNAL_PREFIX}{}", l.seq)),
                        record: l.seq,
                        record_len: l.data.len() as u32,
                        state: Mutex::new(SubState {
                            active: None,
                            offline_since: now,
                        }),
                    });
                    // Its queue exists from now on (empty or recovered with its backlog).
                    self.queue(&sub.queue);
                    self.durables().subs_mut().insert((client_id, name), sub);
                    subs += 1;
                }
                Ok(Record::Group { queue }) => {
                    if let Some(topic) = virtual_topic_of(&queue) {
                        self.durables()
                            .groups_mut()
                            .entry(topic.to_string())
                            .or_default()
                            .insert((queue, l.seq));
                        groups += 1;
                    }
                }
                Err(e) => {
                    tracing::warn!(seq = l.seq, error = %e, "unreadable durable subscription record skipped");
                }
            }
        }
        // Messages of a subscription removed while its copies were being stored.
        let mut ops = Vec::new();
        for q in self.queues() {
            if is_internal(&q.name) && !self.durable_queue_live(&q.name) {
                self.shared
                    .queues
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&q.name);
                let (gone, purge, _) = q.purge();
                ops.extend(purge);
                ops.extend(gone.iter().filter_map(|e| self.delete_op(e)));
            }
        }
        self.persist(ops, None);
        if subs + groups > 0 {
            tracing::info!(
                subscriptions = subs,
                virtual_groups = groups,
                "durable subscriptions recovered"
            );
        }
    }

    /// Removes the offline durable subscriptions offline for longer than
    /// `offline-durable-subscriber-timeout` (ActiveMQ's `offlineDurableSubscriberTimeout`).
    pub fn sweep_offline_durables(&self) {
        let Some(after) = self.shared.settings.offline_durable_timeout else {
            return;
        };
        let now = now_ms();
        let idle = after.as_millis() as u64;
        let stale: Vec<(String, String)> = self
            .durables()
            .subs()
            .values()
            .filter(|s| {
                let st = s.lock();
                st.active.is_none() && now.saturating_sub(st.offline_since) >= idle
            })
            .map(|s| (s.client_id.clone(), s.name.clone()))
            .collect();
        for (c, n) in stale {
            if let Ok(Some((_, ops))) = self.remove_durable(&c, &n) {
                self.persist(ops, None);
                tracing::info!(client_id = %c, name = %n, "offline durable subscription timed out");
            }
        }
    }

    /// The durable subscriptions, sorted by client id and name, with their backlog.
    pub fn durable_stats(&self) -> Vec<SubscriptionInfo> {
        let subs: Vec<Arc<DurableSub>> = self.durables().subs().values().cloned().collect();
        let mut out: Vec<SubscriptionInfo> = subs
            .iter()
            .map(|s| {
                let q = self.find_queue(&s.queue).map(|q| q.stats());
                SubscriptionInfo {
                    client_id: s.client_id.clone(),
                    name: s.name.clone(),
                    topic: Destination::topic(&s.topic).to_string(),
                    selector: s.selector_text.clone(),
                    active: s.is_active(),
                    pending: q.as_ref().map_or(0, |q| q.depth),
                    inflight: q.as_ref().map_or(0, |q| q.inflight),
                    enqueued: q.as_ref().map_or(0, |q| q.enqueued),
                    dequeued: q.as_ref().map_or(0, |q| q.dequeued),
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.client_id, &a.name).cmp(&(&b.client_id, &b.name)));
        out
    }

    /// The topic demand of connected durable subscribers, for bridges: see
    /// [`Core::demand_for`].
    pub(super) fn durable_demand(&self, to: ForBridge<'_>) -> Vec<Demand> {
        let subs: Vec<Arc<DurableSub>> = self
            .durables()
            .subs()
            .values()
            .filter(|s| s.is_active())
            .cloned()
            .collect();
        let mut out = Vec::new();
        for s in subs {
            let Some(q) = self.find_queue(&s.queue) else {
                continue;
            };
            let Some((consumers, hops, origin, _)) = q.demand_for(to) else {
                continue;
            };
            out.push(Demand {
                destination: Destination::topic(&s.topic),
                consumers,
                hops,
                origin,
                selector: s.selector_text.clone(),
            });
        }
        out
    }
}

/// Adds `d` to the demand list, folded into an entry for the same destination if there is one.
pub(super) fn merge_demand(out: &mut Vec<Demand>, d: Demand) {
    let Some(e) = out.iter_mut().find(|e| e.destination == d.destination) else {
        out.push(d);
        return;
    };
    let fold: Fold = (e.consumers, e.hops, e.origin.clone(), e.selector.clone());
    e.consumers = fold.0 + d.consumers;
    e.hops = fold.1.min(d.hops);
    e.origin = fold
        .2
        .into_iter()
        .filter(|b| d.origin.contains(b))
        .collect();
    e.selector = match (fold.3, d.selector) {
        (Some(a), Some(b)) if a == b => Some(a),
        (Some(a), Some(b)) => {
            let text = format!("({a}) OR ({b})");
            (text.len() <= mq_shared::selector::MAX_LENGTH).then_some(text)
        }
        _ => None,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_topic_consumer_queues_are_recognised() {
        assert_eq!(
            virtual_topic_of("Consumer.A.VirtualTopic.orders"),
            Some("VirtualTopic.orders")
        );
        assert_eq!(
            virtual_topic_of("Consumer.A.VirtualTopic.a.b"),
            Some("VirtualTopic.a.b")
        );
        for q in [
            "Consumer..VirtualTopic.x",
            "Consumer.A.VirtualTopic.",
            "Consumer.A.orders",
            "Consumer.*.VirtualTopic.x",
            "orders",
        ] {
            assert_eq!(virtual_topic_of(q), None, "{q}");
        }
        assert!(is_internal("mq.durable/12"));
        assert!(!is_internal("orders"));
    }
}
