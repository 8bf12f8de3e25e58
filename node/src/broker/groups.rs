//! Message groups and exclusive consumers: which consumer of a queue a message must go to.
//!
//! - **Exclusive consumers** (`activemq.exclusive:true`). The first exclusive consumer of the
//!   highest priority is the queue's exclusive one: it gets every message it accepts; the
//!   others get none of those (they wait while it is full). When it leaves, the next exclusive
//!   consumer takes over; with none left, dispatch is shared again. A message the exclusive
//!   consumer does not accept (its selector) goes to the others as usual, so a selective
//!   exclusive consumer cannot hold messages it will never take (ActiveMQ would keep them).
//! - **Message groups** (`JMSXGroupID`). The first message of a group goes to the consumer
//!   ordinary dispatch picks (so groups spread over consumers, round robin), which then owns
//!   the group: every later message of the group goes to it, waiting while it is full, until
//!   it leaves (its messages return to the queue and the group is assigned afresh) or a
//!   message with `JMSXGroupSeq: -1` closes the group. If the owner does not accept a message
//!   of its group (its selector), that message is dispatched as if it had no group. At most
//!   [`MAX_GROUPS`] groups are remembered per queue; past that the least recently used one is
//!   forgotten (its next message is assigned afresh), as ActiveMQ's cached group map does.
//!
//! [`Groups`] is the group → consumer map a queue keeps; [`choose`] is the rule, over the
//! queue's consumers, that the queue's dispatch asks for each waiting message.

use std::collections::HashMap;

use mq_shared::headers::{GROUP_ID, GROUP_SEQ};

use super::consumer::ConsumerSpec;
use super::message::Message;

/// Most groups a queue remembers (ActiveMQ's `CachedMessageGroupMap` default).
pub const MAX_GROUPS: usize = 1024;

/// The group → consumer map of one queue.
#[derive(Debug, Default)]
pub struct Groups {
    owners: HashMap<String, (u64, u64)>,
    tick: u64,
}

impl Groups {
    /// The consumer that owns `group`, if any (and marks the group used).
    pub fn owner(&mut self, group: &str) -> Option<u64> {
        self.tick += 1;
        let tick = self.tick;
        self.owners.get_mut(group).map(|(c, used)| {
            *used = tick;
            *c
        })
    }

    /// Gives `group` to `consumer`, forgetting the least recently used group past
    /// [`MAX_GROUPS`].
    pub fn assign(&mut self, group: &str, consumer: u64) {
        self.tick += 1;
        if self.owners.len() >= MAX_GROUPS
            && !self.owners.contains_key(group)
            && let Some(oldest) = self
                .owners
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(g, _)| g.clone())
        {
            self.owners.remove(&oldest);
        }
        self.owners.insert(group.to_string(), (consumer, self.tick));
    }

    /// Forgets `group` (closed by `JMSXGroupSeq: -1`, or its owner is gone).
    pub fn close(&mut self, group: &str) {
        self.owners.remove(group);
    }

    /// Forgets every group of `consumer` (it left).
    pub fn release(&mut self, consumer: u64) {
        self.owners.retain(|_, (c, _)| *c != consumer);
    }

    /// Groups remembered.
    pub fn len(&self) -> usize {
        self.owners.len()
    }

    /// Whether no group is remembered.
    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }
}

/// The group `msg` belongs to, and whether it closes the group (`JMSXGroupSeq: -1`).
pub fn group_of(msg: &Message) -> Option<(&str, bool)> {
    let id = msg.header(GROUP_ID).filter(|g| !g.is_empty())?;
    let closes = msg.header(GROUP_SEQ).is_some_and(|s| s.trim() == "-1");
    Some((id, closes))
}

/// Index of the consumer that gets `msg` now, or `None` when it must wait. The queue's
/// `len` consumers are listed highest priority first, then in order of attachment; `at(i)`
/// gives the i-th one and whether it has room (under its prefetch, connection open). `rr` is
/// the queue's round robin position, moved past the consumer the shared rule chooses.
pub fn choose<'a>(
    len: usize,
    at: impl Fn(usize) -> (&'a ConsumerSpec, bool),
    msg: &Message,
    groups: &mut Groups,
    rr: &mut usize,
) -> Option<usize> {
    if let Some(x) = (0..len).find(|&i| at(i).0.options.exclusive) {
        let (spec, room) = at(x);
        if spec.accepts(msg) {
            return room.then_some(x);
        }
    }
    let Some((group, closes)) = group_of(msg) else {
        return shared(len, &at, msg, rr);
    };
    if let Some(owner) = groups.owner(group) {
        match (0..len).find(|&i| at(i).0.id == owner) {
            Some(i) if at(i).0.accepts(msg) => {
                if !at(i).1 {
                    return None;
                }
                if closes {
                    groups.close(group);
                }
                return Some(i);
            }
            // Its owner will not take it: dispatched as if it had no group.
            Some(_) => return shared(len, &at, msg, rr),
            None => groups.close(group),
        }
    }
    let i = shared(len, &at, msg, rr)?;
    if !closes {
        groups.assign(group, at(i).0.id);
    }
    Some(i)
}

/// The shared rule: among consumers with room that accept `msg`, the highest priority wins,
/// equal priorities take turns. One pass in round robin order, which tests each consumer's
/// filter at most once, and not at all for one ranked below the best found so far.
fn shared<'a>(
    len: usize,
    at: &impl Fn(usize) -> (&'a ConsumerSpec, bool),
    msg: &Message,
    rr: &mut usize,
) -> Option<usize> {
    let mut best: Option<(usize, i32)> = None;
    for k in 0..len {
        let i = (*rr + k) % len;
        let (spec, room) = at(i);
        if !room || best.is_some_and(|(_, p)| spec.priority <= p) {
            continue;
        }
        if spec.accepts(msg) {
            best = Some((i, spec.priority));
        }
    }
    let (i, _) = best?;
    *rr = (i + 1) % len;
    Some(i)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use mq_shared::destination::Destination;
    use mq_shared::selector::Selector;
    use tokio::sync::mpsc;

    use super::*;
    use crate::broker::consumer::{AckTarget, ConsumerOptions, Delivery};
    use crate::broker::queue::{Effects, Entry, Kept, MAX_SKIP, Queue, QueueEnv};

    fn entry(seq: u64, headers: &[(&str, &str)]) -> Entry {
        Entry::new(
            Arc::new(Message {
                id: Arc::from(format!("id-{seq}")),
                destination: Destination::queue("q"),
                headers: headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                body: Bytes::new(),
                persistent: false,
                expires: 0,
                timestamp: 0,
            }),
            seq,
            Kept::Memory,
        )
    }

    fn consumer(
        id: u64,
        prefetch: usize,
        options: ConsumerOptions,
    ) -> (ConsumerSpec, mpsc::UnboundedReceiver<Delivery>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let spec = ConsumerSpec {
            id,
            conn: id,
            prefetch,
            priority: 0,
            network: false,
            bridge: None,
            options,
            tx,
        };
        (spec, rx)
    }

    fn selecting(text: &str) -> ConsumerOptions {
        ConsumerOptions {
            selector: Selector::parse(text).ok().map(Arc::new),
            ..Default::default()
        }
    }

    fn exclusive() -> ConsumerOptions {
        ConsumerOptions {
            exclusive: true,
            ..Default::default()
        }
    }

    fn got(rx: &mut mpsc::UnboundedReceiver<Delivery>) -> Vec<u64> {
        std::iter::from_fn(|| rx.try_recv().ok())
            .filter_map(|d| match d.ack.map(|a| a.target) {
                Some(AckTarget::Queue { seq, .. }) => Some(seq),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_selective_consumer_gets_only_matches_and_the_rest_wait_for_others() {
        let q = Arc::new(Queue::new("q", QueueEnv::in_memory(6)));
        let (a, mut ra) = consumer(1, 100, selecting("k = 'a'"));
        let _ = q.add_consumer(a);
        for s in 1..=4 {
            let k = if s % 2 == 1 { "a" } else { "b" };
            let _ = q.enqueue(entry(s, &[("k", k)]));
        }
        assert_eq!(got(&mut ra), vec![1, 3]);
        assert_eq!(q.depth(), 4, "the b messages wait");
        let (b, mut rb) = consumer(2, 100, ConsumerOptions::default());
        let _ = q.add_consumer(b);
        assert_eq!(got(&mut rb), vec![2, 4]);
    }

    #[test]
    fn a_selective_consumer_with_room_does_not_hold_back_a_full_one() {
        let q = Arc::new(Queue::new("q", QueueEnv::in_memory(6)));
        let (a, mut ra) = consumer(1, 100, selecting("k = 'never'"));
        let (b, mut rb) = consumer(2, 1, ConsumerOptions::default());
        let _ = q.add_consumer(a);
        let _ = q.add_consumer(b);
        for s in 1..=3 {
            let _ = q.enqueue(entry(s, &[("k", "x")]));
        }
        assert_eq!(got(&mut rb), vec![1]);
        for s in 1..=3 {
            let mut fx = Effects::default();
            assert!(q.ack(s, 2, &mut fx));
            assert_eq!(got(&mut rb), if s < 3 { vec![s + 1] } else { vec![] });
        }
        assert!(got(&mut ra).is_empty());
    }

    #[test]
    fn matches_are_found_past_unmatched_messages_within_the_scan_bound() {
        let q = Arc::new(Queue::new("q", QueueEnv::in_memory(6)));
        let held = MAX_SKIP as u64 + 1;
        for s in 1..=held {
            let _ = q.enqueue(entry(s, &[("k", "b")]));
        }
        let _ = q.enqueue(entry(held + 1, &[("k", "a")]));
        // A consumer that comes later looks from the head, at most MAX_SKIP messages deep.
        let (a, mut ra) = consumer(1, 10, selecting("k = 'a'"));
        let _ = q.add_consumer(a);
        assert!(got(&mut ra).is_empty(), "beyond the bound: waits");
        // Once a consumer takes some of the held messages, the match is in reach.
        let (b, mut rb) = consumer(2, 10, selecting("k = 'b'"));
        let _ = q.add_consumer(b);
        assert_eq!(got(&mut rb).len(), 10);
        assert_eq!(got(&mut ra), vec![held + 1]);
    }

    #[test]
    fn the_exclusive_consumer_gets_everything_and_the_next_one_takes_over() {
        let q = Arc::new(Queue::new("q", QueueEnv::in_memory(6)));
        let (n, mut rn) = consumer(1, 100, ConsumerOptions::default());
        let (x, mut rx) = consumer(2, 2, exclusive());
        let (y, mut ry) = consumer(3, 100, exclusive());
        let _ = q.add_consumer(n);
        let _ = q.add_consumer(x);
        let _ = q.add_consumer(y);
        for s in 1..=5 {
            let _ = q.enqueue(entry(s, &[]));
        }
        assert_eq!(
            got(&mut rx),
            vec![1, 2],
            "the first exclusive one, to its prefetch"
        );
        assert!(
            got(&mut rn).is_empty() && got(&mut ry).is_empty(),
            "the rest wait"
        );
        let _ = q.remove_consumer(2);
        assert_eq!(got(&mut ry), vec![1, 2, 3, 4, 5]);
        let _ = q.remove_consumer(3);
        assert_eq!(
            got(&mut rn),
            vec![1, 2, 3, 4, 5],
            "no exclusive one left: shared"
        );
    }

    #[test]
    fn what_a_selective_exclusive_consumer_refuses_goes_to_the_others() {
        let q = Arc::new(Queue::new("q", QueueEnv::in_memory(6)));
        let (x, mut rx) = consumer(1, 100, {
            let mut o = selecting("k = 'a'");
            o.exclusive = true;
            o
        });
        let (n, mut rn) = consumer(2, 100, ConsumerOptions::default());
        let _ = q.add_consumer(x);
        let _ = q.add_consumer(n);
        for (s, k) in [(1, "a"), (2, "b"), (3, "a")] {
            let _ = q.enqueue(entry(s, &[("k", k)]));
        }
        assert_eq!(got(&mut rx), vec![1, 3]);
        assert_eq!(got(&mut rn), vec![2]);
    }

    #[test]
    fn a_group_sticks_to_one_consumer_until_it_leaves_or_the_group_closes() {
        let q = Arc::new(Queue::new("q", QueueEnv::in_memory(6)));
        let (a, mut ra) = consumer(1, 100, ConsumerOptions::default());
        let (b, mut rb) = consumer(2, 100, ConsumerOptions::default());
        let _ = q.add_consumer(a);
        let _ = q.add_consumer(b);
        let g = |id: &'static str| [(GROUP_ID, id)];
        for (s, id) in [(1, "g1"), (2, "g2"), (3, "g1"), (4, "g2"), (5, "g1")] {
            let _ = q.enqueue(entry(s, &g(id)));
        }
        let (ga, gb) = (got(&mut ra), got(&mut rb));
        assert_eq!(
            (ga.clone(), gb.clone()),
            (vec![1, 3, 5], vec![2, 4]),
            "spread, then sticky"
        );
        // A leaves: its messages come back and g1 goes to B.
        let _ = q.remove_consumer(1);
        assert_eq!(got(&mut rb), vec![1, 3, 5]);
        let _ = q.enqueue(entry(6, &g("g1")));
        assert_eq!(got(&mut rb), vec![6]);
        // Closing g1 (JMSXGroupSeq -1) lets its next message go to whoever is next.
        let _ = q.enqueue(entry(7, &[(GROUP_ID, "g1"), (GROUP_SEQ, "-1")]));
        assert_eq!(got(&mut rb), vec![7]);
        let (c, mut rc) = consumer(3, 100, ConsumerOptions::default());
        let _ = q.add_consumer(c);
        let _ = q.enqueue(entry(8, &g("g1")));
        let _ = q.enqueue(entry(9, &g("g1")));
        let (b8, c8) = (got(&mut rb), got(&mut rc));
        assert!(
            (b8.is_empty() && c8 == vec![8, 9]) || (c8.is_empty() && b8 == vec![8, 9]),
            "a new owner takes the whole group: {b8:?} {c8:?}"
        );
    }

    #[test]
    fn a_full_group_owner_holds_its_group_but_not_the_others() {
        let q = Arc::new(Queue::new("q", QueueEnv::in_memory(6)));
        let (a, mut ra) = consumer(1, 1, ConsumerOptions::default());
        let (b, mut rb) = consumer(2, 100, ConsumerOptions::default());
        let _ = q.add_consumer(a);
        let _ = q.add_consumer(b);
        let _ = q.enqueue(entry(1, &[(GROUP_ID, "g")]));
        assert_eq!(got(&mut ra), vec![1]);
        let _ = q.enqueue(entry(2, &[(GROUP_ID, "g")]));
        let _ = q.enqueue(entry(3, &[]));
        assert_eq!(got(&mut rb), vec![3], "g waits for A, the rest pass");
        let mut fx = Effects::default();
        assert!(q.ack(1, 1, &mut fx));
        assert_eq!(got(&mut ra), vec![2]);
    }

    #[test]
    fn the_least_recently_used_group_is_forgotten_past_the_bound() {
        let mut g = Groups::default();
        for i in 0..MAX_GROUPS {
            g.assign(&format!("g{i}"), 1);
        }
        assert_eq!(g.owner("g0"), Some(1), "g0 is used again");
        g.assign("new", 2);
        assert_eq!(g.len(), MAX_GROUPS);
        assert_eq!(g.owner("g1"), None, "the oldest unused group went");
        assert_eq!(g.owner("g0"), Some(1));
        g.release(1);
        assert_eq!(g.len(), 1);
        g.close("new");
        assert!(g.is_empty());
    }
}
