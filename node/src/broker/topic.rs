//! A publish/subscribe topic: every current subscriber gets a copy; with no subscriber the
//! message is dropped (STOMP and ActiveMQ semantics for non-durable subscriptions). A bridge's
//! subscriber gets only the copies its network filter accepts (no loops, `messageTTL`).

use std::sync::{Arc, Mutex, MutexGuard};

use mq_shared::api::TopicStats;

use super::consumer::{ConsumerSpec, Delivery};
use super::message::Message;

#[derive(Default)]
struct Inner {
    subs: Vec<ConsumerSpec>,
    enqueued: u64,
    dispatched: u64,
    forwarded: u64,
}

/// One topic.
pub struct Topic {
    /// Name without `/topic/`.
    pub name: Arc<str>,
    inner: Mutex<Inner>,
}

impl Topic {
    /// A topic with no subscribers.
    pub fn new(name: &str) -> Topic {
        Topic {
            name: Arc::from(name),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a subscriber.
    pub fn subscribe(&self, spec: ConsumerSpec) {
        self.lock().subs.push(spec);
    }

    /// Removes a subscriber.
    pub fn unsubscribe(&self, id: u64) {
        self.lock().subs.retain(|s| s.id != id);
    }

    /// Sends a copy to every subscriber, skipping the network subscriptions of connection
    /// `except` (a bridge must not get back what it brought in; a client does get its own
    /// messages on its own subscriptions). An expired message reaches nobody. Returns the
    /// number of copies.
    pub fn publish(&self, msg: Arc<Message>, except: Option<u64>) -> usize {
        let mut g = self.lock();
        g.enqueued += 1;
        if msg.is_expired(super::now_ms()) {
            return 0;
        }
        let mut n = 0;
        let mut fwd = 0;
        for s in &g.subs {
            // Never back to the bridge it came from, nor to a broker it already crossed.
            if (s.network && Some(s.conn) == except) || !s.accepts(&msg) {
                continue;
            }
            let d = Delivery {
                consumer: s.id,
                message: msg.clone(),
                redelivered: false,
                ack: None,
            };
            if s.tx.send(d).is_ok() {
                n += 1;
                if s.network {
                    fwd += 1;
                }
            }
        }
        g.dispatched += n as u64;
        g.forwarded += fwd;
        n
    }

    /// Demand this topic shows a bridge: see [`super::Core::demand_for`].
    pub fn demand_for(
        &self,
        except_conn: Option<u64>,
        except_broker: Option<&str>,
    ) -> Option<(usize, u32, Vec<Arc<str>>)> {
        super::consumer::fold_demand(self.lock().subs.iter(), except_conn, except_broker)
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
        }
    }
}
