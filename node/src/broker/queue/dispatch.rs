//! Dispatch: placing waiting messages with the consumers that have room and accept them.

use std::ops::Bound;
use std::sync::Arc;

use super::{Effects, Inflight, Inner, MAX_SKIP, Queue, Slot};
use crate::broker::consumer::{AckHandle, AckTarget, Delivery};
use crate::broker::message::{Message, now_ms};

impl Queue {
    pub(super) fn dispatch(self: &Arc<Self>, g: &mut Inner, fx: &mut Effects) {
        self.dispatch_from(g, fx, None)
    }

    /// Places waiting messages with consumers that have room, from the head of the window or
    /// from key `from` on.
    pub(super) fn dispatch_from(
        self: &Arc<Self>,
        g: &mut Inner,
        fx: &mut Effects,
        from: Option<(u8, u64)>,
    ) {
        let now = now_ms();
        // Messages at or after `from` are looked at; those before `after` are held back
        // because no consumer with room accepts them (network filter, selectors, groups).
        let mut after: Option<(u8, u64)> = None;
        let mut skipped = 0;
        while has_room(g) && skipped <= MAX_SKIP {
            let next = match (after, from) {
                (Some(k), _) => g.ready.range((Bound::Excluded(k), Bound::Unbounded)).next(),
                (None, Some(k)) => g.ready.range(k..).next(),
                (None, None) => g.ready.iter().next(),
            };
            let Some((&key, e)) = next else { break };
            if g.disk.waits_before(key.0) {
                // A higher priority waits in the store: read it first (see `refill`).
                break;
            }
            let msg = e.msg.clone();
            let Some(ix) = pick(g, &msg) else {
                skipped += 1;
                after = Some(key);
                continue;
            };
            let Some(entry) = g.ready.remove(&key) else {
                break;
            };
            if entry.msg.is_expired(now) {
                g.counters.expired += 1;
                self.release(g, &entry);
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
                g.ready.insert(key, entry);
                continue;
            }
            slot.inflight += 1;
            let consumer = slot.spec.id;
            g.inflight.insert(entry.seq, Inflight { entry, consumer });
        }
        self.refill(g);
    }
}

fn has_capacity(s: &Slot) -> bool {
    !s.closed && s.inflight < s.spec.prefetch
}

/// Whether any consumer could take a message now.
fn has_room(g: &Inner) -> bool {
    g.consumers.iter().any(has_capacity)
}

/// Index of the consumer to receive `msg`, if one with room takes it: the exclusive
/// consumer, the owner of its group, or the highest priority one in turn (see
/// [`crate::broker::groups::choose`]).
fn pick(g: &mut Inner, msg: &Message) -> Option<usize> {
    let Inner {
        consumers,
        groups,
        rr,
        ..
    } = g;
    let consumers = &*consumers;
    crate::broker::groups::choose(
        consumers.len(),
        |i| (&consumers[i].spec, has_capacity(&consumers[i])),
        msg,
        groups,
        rr,
    )
}
