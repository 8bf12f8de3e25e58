//! The write side of the core: publishing messages, settling deliveries, and the store
//! operations they turn into.
//!
//! Every path ends in one store submission per call (or none), and the queue work that
//! depends on it runs in the submission's completion once the journal record is synced: on
//! the store writer thread, or on the connection's own task when the writer was idle and the
//! connection committed its group itself ([`crate::store::Store::submit_here`]). Confirmed
//! means durable, and a connection's pipelined sends are enqueued in the order it sent them.

use std::sync::Arc;

use mq_shared::destination::{Destination, DestinationKind};

use super::consumer::{AckHandle, AckTarget, Settle};
use super::queue::{Effects, Entry, Kept};
use super::{Accepted, Core, Message, durable};
use crate::store::{Done, Op, Outcome};

impl Core {
    /// Whether a message must go through the store (never for a temporary destination's).
    pub fn stores(&self, msg: &Message) -> bool {
        msg.persistent && self.shared.store.is_some() && !msg.destination.is_temp()
    }

    /// Whether a message can be taken now, against `store-usage` (persistent, to a queue) or
    /// memory and `temp-usage` (non-persistent, to a queue); topic messages always can.
    pub fn admit(&self, msg: &Message) -> Result<(), super::usage::Full> {
        let queued = msg.destination.is_queue();
        self.shared
            .usage
            .admit(queued && self.stores(msg), queued, msg.size())
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
        self.publish_batch(
            vec![msg],
            Vec::new(),
            Vec::new(),
            from_conn,
            ordered,
            dedup,
            accepted,
        )
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
        // Scheduled messages become jobs, stored in the same commit.
        let (msgs, mut scheduled) = self.split_scheduled(msgs);
        let extra = std::mem::take(&mut scheduled.ops);
        let core = self.clone();
        let accepted: super::Accepted = Box::new(move |r| {
            if r.is_ok() {
                core.add_scheduled(scheduled);
            }
            accepted(r)
        });
        if msgs.is_empty() && deletes.is_empty() && extra.is_empty() {
            accepted(Ok(false));
            return;
        }
        self.publish_batch(msgs, deletes, extra, from_conn, true, false, Some(accepted));
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

    /// Publishes several messages and applies store deletes and `extra` ops (a scheduled
    /// job's next time) in one commit.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn publish_batch(
        &self,
        msgs: Vec<Message>,
        deletes: Vec<Entry>,
        extra: Vec<Op>,
        from_conn: Option<u64>,
        ordered: bool,
        dedup: bool,
        accepted: Option<Accepted>,
    ) {
        let mut ops = Vec::new();
        // A topic message's copies for its durable subscriptions and virtual topic groups go
        // in the same commit (a bridge's forward was copied to the groups where it was sent).
        let mut all = Vec::with_capacity(msgs.len());
        for m in msgs {
            let copies = self.fan_out(&m, dedup);
            all.push(m);
            all.extend(copies);
        }
        // Each message with the length of its record when it is stored (the writer gives
        // stored ones their sequences, in order).
        let mut deliver: Vec<(Message, Option<u32>)> = Vec::with_capacity(all.len());
        for mut m in all {
            if m.destination.is_queue() && self.stores(&m) {
                let data = m.encode_shared();
                let len = data.len() as u32;
                // Only the message as it was forwarded is de-duplicated by its id (copies for
                // durable subscriptions share it).
                let internal = durable::is_internal(m.destination.name());
                ops.push(Op::Put {
                    queue: Arc::from(m.destination.name()),
                    rank: m.rank(),
                    seq: 0,
                    data,
                    dedup: (dedup && !internal).then(|| m.dedup_key()),
                });
                deliver.push((m, Some(len)));
            } else {
                deliver.push((m, None));
            }
        }
        for e in deletes {
            if let Some(op) = self.delete_op(&e) {
                ops.push(op);
            }
        }
        ops.extend(extra);
        // Counted as stored from the submission on, so that SENDs admitted while this one is
        // being written see it (and store-usage is not overshot by a pipelined burst).
        let reserved: u64 = deliver.iter().filter_map(|(_, s)| *s).map(u64::from).sum();
        self.shared.usage.add_store(reserved);
        let broker = self.clone();
        let single = deliver.len() == 1;
        let finish = move |o: Outcome| {
            // With a duplicate in a single-message batch, nothing is delivered.
            let skip = o.duplicates > 0 && single;
            if skip {
                broker.shared.usage.sub_store(reserved);
            } else {
                let mut next = o.first_seq;
                for (m, stored) in deliver {
                    let (seq, kept) = match stored {
                        Some(len) => {
                            let seq = next;
                            next += 1;
                            (seq, Kept::Store(len))
                        }
                        None => (broker.next_seq(), Kept::Memory),
                    };
                    broker.deliver(m, seq, kept, from_conn);
                }
            }
            skip
        };
        match (&self.shared.store, ops.is_empty() && !ordered) {
            (Some(store), false) => {
                let usage = self.shared.usage.clone();
                let done: Done = Box::new(move |r| {
                    if r.is_err() {
                        usage.sub_store(reserved);
                        // A full disk shows in the store limit at once.
                        usage.check_disk(true);
                    }
                    let r = r.map(finish);
                    if let Some(a) = accepted {
                        a(r);
                    }
                });
                match from_conn {
                    // A connection's (or bridge's) own task, holding no lock: it may commit
                    // the group itself when the writer is idle, or join one gathered for
                    // the connections of the last group.
                    Some(conn) => store.submit_from(conn, ops, Some(done)),
                    None => store.submit(ops, Some(done)),
                }
            }
            _ => {
                let dup = finish(Outcome::default());
                if let Some(a) = accepted {
                    a(Ok(dup));
                }
            }
        }
    }

    fn deliver(&self, m: Message, seq: u64, kept: Kept, from_conn: Option<u64>) {
        if m.destination.is_temp() {
            return self.deliver_temp(m, seq, kept, from_conn);
        }
        match m.destination.kind() {
            DestinationKind::Queue => {
                let name = m.destination.name().to_string();
                let entry = Entry::new(Arc::new(m), seq, kept);
                if durable::is_internal(&name) && !self.durable_queue_live(&name) {
                    // Its subscription was removed while the copy was being stored.
                    if let Some(op) = self.delete_op(&entry) {
                        self.persist(vec![op], None);
                    }
                    return;
                }
                let fx = self.enqueue(&name, entry);
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

    /// The op that removes an entry's record (if it has one), counted off the usage.
    pub(super) fn delete_op(&self, e: &Entry) -> Option<Op> {
        match e.kept {
            Kept::Memory => return None,
            Kept::Store(n) => self.shared.usage.sub_store(u64::from(n)),
            Kept::Temp(n) => self.shared.usage.sub_temp(u64::from(n)),
        }
        e.delete_op(&Arc::from(e.msg.destination.name()))
    }

    /// Applies a queue operation's effects: store deletes and dead-letter moves. `done` runs
    /// once they are durable.
    pub(crate) fn apply(&self, fx: Effects, done: Option<Done>) {
        let mut ops: Vec<Op> = fx.delete.iter().filter_map(|e| self.delete_op(e)).collect();
        // Each move with the length of its record when it is stored.
        let mut dead_moves: Vec<(Message, Option<u32>, u32, Arc<str>)> = Vec::new();
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
            let from = Arc::from(m.destination.to_string());
            m.destination = dlq.clone();
            let stored = if self.stores(&m) {
                let data = m.encode();
                let len = data.len() as u32;
                ops.push(Op::Put {
                    queue: Arc::from(dlq.name()),
                    rank: m.rank(),
                    seq: 0,
                    data,
                    dedup: None,
                });
                Some(len)
            } else {
                None
            };
            dead_moves.push((m, stored, e.redeliveries, from));
        }
        let broker = self.clone();
        let finish = move |o: Outcome| {
            let mut next = o.first_seq;
            for (m, stored, _, from) in dead_moves {
                tracing::info!(id = %m.id, %from, "moved to the dead-letter queue");
                let (seq, kept) = match stored {
                    Some(len) => {
                        let seq = next;
                        next += 1;
                        broker.shared.usage.add_store(u64::from(len));
                        (seq, Kept::Store(len))
                    }
                    None => (broker.next_seq(), Kept::Memory),
                };
                let fx = broker.enqueue(dlq.name(), Entry::new(Arc::new(m), seq, kept));
                // The dead-letter queue's own effects (expiry) carry no further dead letters.
                broker.apply(fx, None);
            }
        };
        match (&self.shared.disk, ops.is_empty()) {
            (Some(store), false) => store.submit(
                ops,
                Some(Box::new(move |r| {
                    if let Ok(o) = &r {
                        finish(*o);
                    }
                    if let Some(d) = done {
                        d(r);
                    }
                })),
            ),
            _ => {
                finish(Outcome::default());
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
