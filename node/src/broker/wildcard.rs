//! Wildcard subscriptions: one consumer attached to every queue or topic whose name matches a
//! pattern (`.` separates segments, `*` matches one, `>` the rest), those that exist when it
//! subscribes and those created later.
//!
//! ```text
//! SUBSCRIBE /topic/prices.>  ─▶ Wildcards: { pattern, spec, attached: {prices.eu, prices.us} }
//!                                   │ attach spec to every matching topic now
//! first SEND to /topic/prices.jp ─▶ Core::topic creates it ─▶ attach every matching pattern
//! ```
//!
//! The consumer is the same (one id, one delivery channel) in every destination it is attached
//! to; each destination dispatches to it on its own, so its prefetch applies per destination.
//! Its acks name the destination they came from, as any delivery's do. Its demand is the
//! pattern's: a bridge is told about `/topic/prices.>` (and its peer attaches a wildcard
//! consumer of its own, which follows that peer's topics), never about each matched topic, so
//! no message crosses twice for one subscription. A wildcard network consumer only attaches
//! to destinations its connector's filters allow, a client's only to those it may read.
//! Temporary destinations and advisory topics never match.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use mq_shared::destination::{Destination, DestinationKind};
use mq_shared::uri::DestinationFilter;

use super::consumer::{ConsumerSpec, Demand, ForBridge, fold};
use super::queue::{Effects, Queue};
use super::topic::Topic;
use super::{Attached, Core};
use crate::internode::is_advisory;

/// The wildcard subscriptions of one broker.
#[derive(Default)]
pub(crate) struct Wildcards {
    subs: Mutex<Vec<WildSub>>,
}

struct WildSub {
    /// The pattern as subscribed, e.g. `/topic/prices.>`.
    pattern: Destination,
    filter: DestinationFilter,
    spec: ConsumerSpec,
    queues: HashMap<Arc<str>, Arc<Queue>>,
    topics: HashMap<Arc<str>, Arc<Topic>>,
}

/// The pattern a wildcard destination stands for; the error is a sentence for an ERROR frame.
pub fn pattern(dest: &Destination) -> Result<DestinationFilter, String> {
    DestinationFilter::parse(dest.as_str())
        .map_err(|e| format!("wildcard destination {dest} is not a valid pattern: {e}"))
}

impl WildSub {
    fn wants(&self, destination: &str) -> bool {
        !is_advisory(destination)
            && self.filter.matches(destination)
            && self
                .spec
                .bridge
                .as_ref()
                .is_none_or(|b| b.permits(destination))
            && self
                .spec
                .options
                .permit
                .as_ref()
                .is_none_or(|p| (p.0)(destination))
    }

    fn attach_queue(&mut self, q: &Arc<Queue>, fx: &mut Vec<Effects>) {
        // A durable subscription's queue is never a wildcard's match.
        if self.queues.contains_key(&q.name)
            || super::durable::is_internal(&q.name)
            || !self.wants(&q.destination)
        {
            return;
        }
        if let Ok(e) = q.add_consumer(self.spec.clone()) {
            fx.push(e);
            self.queues.insert(q.name.clone(), q.clone());
        }
    }

    fn attach_topic(&mut self, t: &Arc<Topic>) {
        if self.topics.contains_key(&t.name)
            || !self.wants(Destination::topic(&t.name).as_str())
            || t.subscribe(self.spec.clone()).is_err()
        {
            return;
        }
        self.topics.insert(t.name.clone(), t.clone());
    }
}

impl Wildcards {
    fn lock(&self) -> MutexGuard<'_, Vec<WildSub>> {
        self.subs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Core {
    fn wildcards(&self) -> &Wildcards {
        &self.shared.wildcards
    }

    /// Attaches `spec` (marked as a wildcard's) to every queue or topic matching `filter`,
    /// now and as they are created.
    pub(super) fn subscribe_wildcard(
        &self,
        pattern: &Destination,
        filter: DestinationFilter,
        mut spec: ConsumerSpec,
    ) -> Attached {
        spec.options.wildcard = true;
        let mut sub = WildSub {
            pattern: pattern.clone(),
            filter,
            spec,
            queues: HashMap::new(),
            topics: HashMap::new(),
        };
        let mut fx = Vec::new();
        {
            // Under the lock, so that a destination created meanwhile is attached once: by
            // this loop or by its creation, which waits for the lock.
            let mut subs = self.wildcards().lock();
            match pattern.kind() {
                DestinationKind::Queue => {
                    for q in self.queues() {
                        sub.attach_queue(&q, &mut fx);
                    }
                }
                DestinationKind::Topic => {
                    for t in self.topics() {
                        sub.attach_topic(&t);
                    }
                }
            }
            subs.push(sub);
        }
        for e in fx {
            self.apply(e, None);
        }
        Attached::Wildcard(pattern.clone())
    }

    /// Detaches wildcard consumer `consumer` from everything it was attached to.
    pub(super) fn unsubscribe_wildcard(&self, consumer: u64) {
        let gone: Vec<WildSub> = {
            let mut subs = self.wildcards().lock();
            let (gone, keep) = std::mem::take(&mut *subs)
                .into_iter()
                .partition(|s| s.spec.id == consumer);
            *subs = keep;
            gone
        };
        for s in gone {
            for q in s.queues.values() {
                let fx = q.remove_consumer(consumer);
                self.apply(fx, None);
            }
            for t in s.topics.values() {
                t.unsubscribe(consumer);
            }
        }
    }

    /// A queue was just created: attach the wildcard consumers whose pattern matches it.
    pub(super) fn attach_wildcards_to_queue(&self, q: &Arc<Queue>) {
        let mut fx = Vec::new();
        {
            let mut subs = self.wildcards().lock();
            for s in subs
                .iter_mut()
                .filter(|s| s.pattern.kind() == DestinationKind::Queue)
            {
                s.attach_queue(q, &mut fx);
            }
        }
        for e in fx {
            self.apply(e, None);
        }
    }

    /// A topic was just created: attach the wildcard subscribers whose pattern matches it.
    pub(super) fn attach_wildcards_to_topic(&self, t: &Arc<Topic>) {
        let mut subs = self.wildcards().lock();
        for s in subs
            .iter_mut()
            .filter(|s| s.pattern.kind() == DestinationKind::Topic)
        {
            s.attach_topic(t);
        }
    }

    /// Demand of the wildcard subscriptions, one entry per pattern (see
    /// [`Core::demand_for`]).
    pub(super) fn wildcard_demand(&self, to: ForBridge<'_>) -> Vec<Demand> {
        let subs = self.wildcards().lock();
        let mut by_pattern: HashMap<&Destination, Vec<&ConsumerSpec>> = HashMap::new();
        for s in subs.iter() {
            by_pattern.entry(&s.pattern).or_default().push(&s.spec);
        }
        let mut out: Vec<Demand> = by_pattern
            .into_iter()
            .filter_map(|(pattern, specs)| {
                Some(Demand::of(pattern.clone(), fold(specs.into_iter(), to)?))
            })
            .collect();
        out.sort_by(|a, b| a.destination.as_str().cmp(b.destination.as_str()));
        out
    }
}
