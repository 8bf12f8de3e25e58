//! A publish/subscribe topic: every current subscriber gets a copy; with no subscriber the
//! message is dropped (STOMP and ActiveMQ semantics for non-durable subscriptions). A
//! subscriber gets only the copies its selector accepts, a bridge's only those its network
//! filter accepts (no loops, `messageTTL`).
//!
//! Slow subscribers are bounded. A subscriber holds at most its prefetch of unsettled copies
//! (settled once written to its socket in `auto` mode, by its ACK in the client modes); further
//! copies wait in its pending queue, which keeps at most `pending-message-limit` (or the
//! subscriber's `activemq.maximumPendingMessageLimit`) of them: past
//! it the oldest is discarded for that subscriber and counted (ActiveMQ's
//! `constantPendingMessageLimitStrategy`). Nothing a subscriber does not read grows without
//! bound, and other subscribers are not held back.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use mq_shared::api::TopicStats;

use super::activity::{Activity, locked};
use super::consumer::{AckHandle, AckTarget, ConsumerSpec, Delivery, ForBridge};
use super::message::{Message, now_ms};

/// One subscriber and what it is owed.
struct Sub {
    spec: ConsumerSpec,
    /// Copies handed over and not settled yet.
    inflight: usize,
    /// Copies waiting for room.
    pending: VecDeque<Arc<Message>>,
    /// Copies dropped at the pending limit.
    discarded: u64,
}

#[derive(Default)]
struct Inner {
    subs: Vec<Sub>,
    enqueued: u64,
    dispatched: u64,
    forwarded: u64,
    discarded: u64,
    /// When the topic last had a subscriber or a message, for the inactive-destination sweep.
    activity: Activity,
}

/// One topic.
pub struct Topic {
    /// Name without `/topic/`.
    pub name: Arc<str>,
    pending_limit: usize,
    inner: Mutex<Inner>,
}

impl Topic {
    /// A topic with no subscribers; each subscriber may have `pending_limit` copies waiting
    /// beyond its prefetch.
    pub fn new(name: &str, pending_limit: usize) -> Topic {
        Topic {
            name: Arc::from(name),
            pending_limit,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        locked(&self.inner)
    }

    /// Adds a subscriber. `Err` gives it back when the topic was retired meanwhile (the
    /// caller looks the topic up again).
    pub fn subscribe(&self, spec: ConsumerSpec) -> Result<(), ConsumerSpec> {
        let mut g = self.lock();
        if g.activity.retired() {
            return Err(spec);
        }
        g.activity.touch();
        g.subs.push(Sub {
            spec,
            inflight: 0,
            pending: VecDeque::new(),
            discarded: 0,
        });
        Ok(())
    }

    /// Removes a subscriber (what it was owed is dropped: a non-durable subscription).
    pub fn unsubscribe(&self, id: u64) {
        let mut g = self.lock();
        g.activity.touch();
        g.subs.retain(|s| s.spec.id != id);
    }

    /// Sends a copy to every subscriber that accepts it (selector, network filter), skipping
    /// the network subscriptions of connection `except` (a bridge must not get back what it
    /// brought in) and its `activemq.noLocal` ones; a client does get its own messages on its
    /// other subscriptions. An expired message reaches nobody. Returns the
    /// number of copies handed over or queued.
    pub fn publish(self: &Arc<Self>, msg: Arc<Message>, except: Option<u64>) -> usize {
        let now = now_ms();
        let mut g = self.lock();
        g.enqueued += 1;
        g.activity.touch_at(now);
        if msg.is_expired(now) {
            return 0;
        }
        let mut n = 0;
        let (mut handed, mut fwd, mut dropped) = (0u64, 0u64, 0u64);
        for s in &mut g.subs {
            // Never back to the bridge it came from (nor to a noLocal subscriber of the
            // connection that sent it), nor to a broker it already crossed.
            if ((s.spec.network || s.spec.options.no_local) && Some(s.spec.conn) == except)
                || !s.spec.accepts(&msg)
            {
                continue;
            }
            n += 1;
            if s.inflight < s.spec.prefetch && s.pending.is_empty() {
                if self.hand(s, msg.clone()) {
                    handed += 1;
                    fwd += u64::from(s.spec.network);
                }
            } else {
                s.pending.push_back(msg.clone());
                if s.pending.len() > s.spec.options.pending_limit.unwrap_or(self.pending_limit) {
                    s.pending.pop_front();
                    s.discarded += 1;
                    dropped += 1;
                }
            }
        }
        g.dispatched += handed;
        g.forwarded += fwd;
        g.discarded += dropped;
        n
    }

    /// Hands one copy to a subscriber; false if its connection is gone.
    fn hand(self: &Arc<Self>, s: &mut Sub, msg: Arc<Message>) -> bool {
        let d = Delivery {
            consumer: s.spec.id,
            message: msg,
            redelivered: false,
            ack: Some(AckHandle {
                target: AckTarget::Topic(self.clone()),
                consumer: s.spec.id,
            }),
        };
        if s.spec.tx.send(d).is_ok() {
            s.inflight += 1;
            true
        } else {
            false
        }
    }

    /// A subscriber settled one copy (written in `auto` mode, ACKed or NACKed otherwise):
    /// room for the next pending one. False if it is not a subscriber any more.
    pub fn settle(self: &Arc<Self>, consumer: u64) -> bool {
        let now = now_ms();
        let mut g = self.lock();
        let Some(i) = g.subs.iter().position(|s| s.spec.id == consumer) else {
            return false;
        };
        let (mut handed, mut fwd) = (0u64, 0u64);
        {
            let s = &mut g.subs[i];
            s.inflight = s.inflight.saturating_sub(1);
            while s.inflight < s.spec.prefetch {
                let Some(m) = s.pending.pop_front() else {
                    break;
                };
                if m.is_expired(now) {
                    continue;
                }
                if !self.hand(s, m) {
                    break;
                }
                handed += 1;
                fwd += u64::from(s.spec.network);
            }
        }
        g.dispatched += handed;
        g.forwarded += fwd;
        true
    }

    /// Demand this topic shows a bridge: see [`super::Core::demand_for`].
    pub(crate) fn demand_for(&self, to: ForBridge<'_>) -> Option<super::consumer::Fold> {
        super::consumer::fold_demand(self.lock().subs.iter().map(|s| &s.spec), to)
    }

    /// Retires the topic if it had no subscriber and no message for `idle_ms`: it then takes
    /// no subscriber any more, and the broker forgets it.
    pub fn retire_if_idle(&self, now: u64, idle_ms: u64) -> bool {
        let mut g = self.lock();
        let unused = g.subs.is_empty();
        g.activity.retire_if(unused, now, idle_ms)
    }

    /// Counters for the admin API.
    pub fn stats(&self) -> TopicStats {
        let g = self.lock();
        TopicStats {
            name: self.name.to_string(),
            subscribers: g.subs.len() as u64,
            enqueued: g.enqueued,
            dispatched: g.dispatched,
            forwarded: g.forwarded,
            discarded: g.discarded,
            pending: g.subs.iter().map(|s| s.pending.len() as u64).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use mq_shared::destination::Destination;
    use tokio::sync::mpsc;

    fn msg(n: u8) -> Arc<Message> {
        Arc::new(Message {
            id: Arc::from(format!("id-{n}")),
            destination: Destination::topic("t"),
            headers: vec![],
            body: Bytes::from(vec![n]),
            persistent: false,
            expires: 0,
            timestamp: 0,
        })
    }

    #[test]
    fn a_slow_subscriber_is_bounded_and_the_oldest_copies_go() {
        let t = Arc::new(Topic::new("t", 3));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _ = t.subscribe(ConsumerSpec {
            id: 1,
            conn: 1,
            prefetch: 2,
            priority: 0,
            network: false,
            bridge: None,
            options: Default::default(),
            tx,
        });
        for n in 0..10 {
            t.publish(msg(n), None);
        }
        let got: Vec<u8> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|d| d.message.body[0])
            .collect();
        assert_eq!(got, vec![0, 1], "prefetch 2 in flight");
        let s = t.stats();
        assert_eq!((s.pending, s.discarded), (3, 5), "3 wait, 5 discarded");
        // Settling makes room for the newest that waited, oldest first.
        assert!(t.settle(1));
        assert!(t.settle(1));
        let got: Vec<u8> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|d| d.message.body[0])
            .collect();
        assert_eq!(got, vec![7, 8]);
        assert!(!t.settle(2), "not a subscriber");
    }
}
