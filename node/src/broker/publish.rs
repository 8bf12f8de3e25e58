//! The write side of the core: publishing messages, settling deliveries, and the store
//! operations they turn into.
//!
//! Every path ends in one store submission per call (or none), and the queue work that
//! depends on it runs in the submission's completion, on the store writer thread, once the
//! journal record is synced: confirmed means durable, and a connection's pipelined sends are
//! enqueued in the order it sent them.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use mq_shared::destination::{Destination, DestinationKind};

use super::consumer::{AckHandle, AckTarget, Settle};
use super::queue::{Effects, Entry};
use super::{Accepted, Core, Message};
use crate::store::{Done, Op};

impl Core {
    /// Whether a message must go through the store (never for a temporary destination's).
    pub fn stores(&self, msg: &Message) -> bool {
        msg.persistent && self.shared.store.is_some() && !msg.destination.is_temp()
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
        if dedup && !(self.stores(&msg) && msg.destination.is_queue()) {
            let fresh = self
                .shared
                .recent
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(&msg.dedup_key());
            if !fresh {
                if let Some(a) = accepted {
                    a(Ok(true));
                }
                return;
            }
        }
        self.publish_batch(vec![msg], Vec::new(), from_conn, ordered, dedup, accepted)
    }

    /// A STOMP transaction's COMMIT: its messages and the store effects of its acks in one
    /// commit (all or nothing in the store), after everything the connection sent before.
    /// `accepted` runs once that is durable (at once when there is nothing to store).
    pub fn commit_transaction(
        &self,
        msgs: Vec<Message>,
        acks: Vec<(AckHandle, Settle)>,
        from_conn: Option<u64>,
        accepted: Accepted,
    ) {
        let mut fx = Effects::default();
        for (h, how) in acks {
            // An ack of a message no longer in flight (redelivered elsewhere) is skipped, as
            // ActiveMQ does.
            settle_one(h, how, &mut fx);
        }
        let deletes = std::mem::take(&mut fx.delete);
        self.apply(fx, None);
        if msgs.is_empty() && deletes.is_empty() {
            accepted(Ok(false));
            return;
        }
        self.publish_batch(msgs, deletes, from_conn, true, false, Some(accepted));
    }

    /// Settles deliveries (ACK, forwarded, NACK); `done` runs once their store effects are
    /// durable (at once when there are none). Returns how many were still in flight.
    pub fn settle(
        &self,
        items: impl IntoIterator<Item = (AckHandle, Settle)>,
        done: Option<Done>,
    ) -> usize {
        let mut fx = Effects::default();
        let mut n = 0;
        for (h, how) in items {
            if settle_one(h, how, &mut fx) {
                n += 1;
            }
        }
        self.apply(fx, done);
        n
    }

    /// Runs `done` once every store submission made before it is durable (at once without a
    /// store): a receipt that must not overtake earlier work.
    pub fn barrier(&self, done: Done) {
        match &self.shared.store {
            Some(store) => store.submit(Vec::new(), Some(done)),
            None => done(Ok(Default::default())),
        }
    }

    /// Publishes several messages and applies store deletes in one commit.
    fn publish_batch(
        &self,
        msgs: Vec<Message>,
        deletes: Vec<Entry>,
        from_conn: Option<u64>,
        ordered: bool,
        dedup: bool,
        accepted: Option<Accepted>,
    ) {
        let mut ops = Vec::new();
        let mut deliver: Vec<(Message, u64)> = Vec::with_capacity(msgs.len());
        for m in msgs {
            let seq = self.shared.next_seq.fetch_add(1, Ordering::Relaxed);
            if m.destination.is_queue() && self.stores(&m) {
                ops.push(Op::Put {
                    queue: Arc::from(m.destination.name()),
                    seq,
                    data: m.encode(),
                    dedup: dedup.then(|| m.dedup_key()),
                });
            }
            deliver.push((m, seq));
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
                for (m, seq) in deliver {
                    broker.deliver(m, seq, from_conn);
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

    fn deliver(&self, m: Message, seq: u64, from_conn: Option<u64>) {
        if m.destination.is_temp() {
            return self.deliver_temp(m, seq, from_conn);
        }
        match m.destination.kind() {
            DestinationKind::Queue => {
                let name = m.destination.name().to_string();
                let fx = self.enqueue(
                    &name,
                    Entry {
                        msg: Arc::new(m),
                        seq,
                        redeliveries: 0,
                    },
                );
                self.apply(fx, None);
            }
            DestinationKind::Topic => {
                let topic = self.topic(m.destination.name());
                topic.publish(Arc::new(m), from_conn);
            }
        }
    }

    /// Puts an entry into queue `name` (created on first use; looked up again if the sweep
    /// retired the one found).
    fn enqueue(&self, name: &str, mut entry: Entry) -> Effects {
        loop {
            match self.queue(name).enqueue(entry) {
                Ok(fx) => return fx,
                Err(back) => entry = back,
            }
        }
    }

    pub(super) fn delete_op(&self, e: &Entry) -> Option<Op> {
        self.stores(&e.msg).then(|| Op::Delete {
            queue: Arc::from(e.msg.destination.name()),
            seq: e.seq,
        })
    }

    /// Applies a queue operation's effects: store deletes and dead-letter moves. `done` runs
    /// once they are durable.
    pub(crate) fn apply(&self, fx: Effects, done: Option<Done>) {
        let mut ops: Vec<Op> = fx.delete.iter().filter_map(|e| self.delete_op(e)).collect();
        let mut dead_moves: Vec<(Entry, Message)> = Vec::new();
        let dlq = Destination::queue(&self.shared.settings.dlq);
        for e in fx.dead {
            if let Some(op) = self.delete_op(&e) {
                ops.push(op);
            }
            let mut m = (*e.msg).clone();
            if !m.headers.iter().any(|(k, _)| k == "original-destination") {
                m.headers
                    .push(("original-destination".into(), m.destination.to_string()));
            }
            m.destination = dlq.clone();
            let seq = self.shared.next_seq.fetch_add(1, Ordering::Relaxed);
            if self.stores(&m) {
                ops.push(Op::Put {
                    queue: Arc::from(dlq.name()),
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
                for (entry, original) in dead_moves {
                    tracing::info!(id = %original.id, from = %original.destination, "moved to the dead-letter queue");
                    let fx = broker.enqueue(dlq.name(), entry);
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
}

/// Settles one delivery against its queue (store effects into `fx`) or its topic (room in the
/// subscriber's window; a NACKed topic copy is dropped). False if it was no longer in flight.
fn settle_one(h: AckHandle, how: Settle, fx: &mut Effects) -> bool {
    match h.target {
        AckTarget::Queue { queue, seq } => queue.settle(seq, h.consumer, fx, how),
        AckTarget::Topic(topic) => topic.settle(h.consumer),
    }
}
