//! The store cursor: what of a queue is only in the store (counts per priority, no message),
//! admission of a new message to the window or the store, and reading the next messages back.

use std::sync::Arc;

use bytes::Bytes;

use super::{Effects, Entry, Inner, Kept, LOW_WATER, MIN_WINDOW, Queue, WINDOW};
use crate::broker::message::Message;
use crate::store::{Loaded, Op, PRIORITIES, StoreError, TRANSIENT};

/// Most bytes one read from the store brings.
const READ_BYTES: u64 = mq_shared::defaults::CURSOR_READ_BYTES;

/// Messages of one kind and priority that are only in the store.
#[derive(Debug, Clone, Copy, Default)]
pub struct Span {
    /// How many.
    pub count: u64,
    /// Their bytes as stored.
    pub bytes: u64,
    /// The highest sequence among them (what a purge removes up to).
    pub max: u64,
}

impl Span {
    pub(super) fn add(&mut self, seq: u64, len: u64) {
        self.count += 1;
        self.bytes += len;
        self.max = self.max.max(seq);
    }

    pub(super) fn take(&mut self, len: u64) {
        self.count = self.count.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(len);
    }
}

/// The part of a queue that lives only in the store, per priority rank.
#[derive(Debug, Clone, Default)]
pub(super) struct Disk {
    /// Persistent messages.
    pub(super) kept: [Span; PRIORITIES],
    /// Spilled non-persistent ones.
    pub(super) temp: [Span; PRIORITIES],
    /// Per rank: every message of that rank below this sequence is in memory or gone; those
    /// counted in the spans are at or above it.
    pub(super) next: [u64; PRIORITIES],
}

impl Disk {
    pub(super) fn count(&self, rank: usize) -> u64 {
        self.kept[rank].count + self.temp[rank].count
    }

    pub(super) fn total(&self) -> u64 {
        (0..PRIORITIES).map(|r| self.count(r)).sum()
    }

    pub(super) fn bytes(&self) -> u64 {
        (0..PRIORITIES)
            .map(|r| self.kept[r].bytes + self.temp[r].bytes)
            .sum()
    }

    /// Whether messages of a higher priority than `rank` wait in the store.
    pub(super) fn waits_before(&self, rank: u8) -> bool {
        (0..(rank as usize).min(PRIORITIES)).any(|r| self.count(r) > 0)
    }
}

/// A read from the store in progress.
pub(super) struct Loading {
    /// The queue's epoch when it was submitted: a purge since makes it void.
    epoch: u64,
    /// Per rank, messages counted in the store when it was submitted.
    counted: [u64; PRIORITIES],
    limit: usize,
    max_bytes: u64,
}

impl Queue {
    /// A new message goes into the window, or stays in (or is spilled to) the store.
    pub(super) fn admit(self: &Arc<Self>, g: &mut Inner, e: Entry) {
        let r = e.rank as usize;
        // A message that arrives after later ones of its priority went to memory joins them
        // there, whatever memory says: the store part must stay behind the window.
        let behind = e.seq < g.disk.next[r];
        if self.env.disk.is_some() && !behind && (g.disk.count(r) > 0 || !self.has_room(g, &e)) {
            match e.kept {
                Kept::Store(len) => {
                    g.disk.kept[r].add(e.seq, u64::from(len));
                    return;
                }
                Kept::Memory | Kept::Temp(_) => {
                    if let Some(store) = &self.env.disk {
                        let data = e.msg.encode();
                        let len = data.len() as u64;
                        // Submitted under the lock: a read submitted after it sees it.
                        // Counted until written: producers wait while too much is pending.
                        self.env.usage.spill_submitted(len);
                        let usage = self.env.usage.clone();
                        store.submit(
                            vec![Op::Put {
                                queue: self.name.clone(),
                                rank: e.rank + TRANSIENT,
                                seq: e.seq,
                                data,
                                dedup: None,
                            }],
                            Some(Box::new(move |_| usage.spill_written(len))),
                        );
                        g.disk.temp[r].add(e.seq, len);
                        self.env.usage.add_temp(len);
                        return;
                    }
                }
            }
        }
        self.hold(g, e);
    }

    /// Whether the window takes `e` now.
    fn has_room(&self, g: &Inner, e: &Entry) -> bool {
        if matches!(e.kept, Kept::Store(_)) && g.ready.len() >= WINDOW {
            return false;
        }
        g.ready.len() < MIN_WINDOW || self.env.usage.memory_room(e.cost())
    }

    /// Puts an entry into the window.
    pub(super) fn hold(&self, g: &mut Inner, e: Entry) {
        let r = e.rank as usize;
        g.disk.next[r] = g.disk.next[r].max(e.seq + 1);
        self.env.usage.add_memory(e.cost());
        g.counters.bytes += e.msg.size();
        g.ready.insert(e.key(), e);
    }

    /// Counts an entry leaving memory for good.
    pub(super) fn release(&self, g: &mut Inner, e: &Entry) {
        self.env.usage.sub_memory(e.cost());
        g.counters.bytes = g.counters.bytes.saturating_sub(e.msg.size());
    }

    /// Takes a message that is only in the store out of the queue's count (the admin API
    /// found it with a read); false if it is not there any more (read into the window, or
    /// purged). The caller deletes its record.
    pub fn take_stored(&self, rank: u8, seq: u64, len: u64) -> bool {
        let mut g = self.lock();
        let (r, temp) = ((rank % TRANSIENT) as usize, rank >= TRANSIENT);
        if r >= PRIORITIES || seq < g.disk.next[r] || g.taken.contains(&seq) {
            return false;
        }
        let span = if temp {
            &mut g.disk.temp[r]
        } else {
            &mut g.disk.kept[r]
        };
        if span.count == 0 || seq > span.max {
            return false;
        }
        span.take(len);
        g.taken.insert(seq);
        true
    }

    /// An entry for a message read from the store (for browsing), if it decodes.
    pub fn entry_of(&self, l: &Loaded) -> Option<Entry> {
        let g = self.lock();
        decode_loaded(&g, l)
    }

    /// Reads the next messages from the store when the window runs low and someone consumes.
    pub(super) fn refill(self: &Arc<Self>, g: &mut Inner) {
        if g.loading.is_some()
            || g.activity.retired()
            || g.consumers.is_empty()
            || g.disk.total() == 0
        {
            return;
        }
        let Some(store) = &self.env.disk else {
            return;
        };
        let len = g.ready.len();
        // The window's best is of a lower priority than messages in the store: dispatch
        // waits for those, so they are read whatever the window holds (at most MIN_WINDOW
        // of them past the memory limit).
        let starved = g
            .ready
            .keys()
            .next()
            .is_some_and(|&(rank, _)| g.disk.waits_before(rank));
        if len >= LOW_WATER && !starved {
            return;
        }
        let headroom = self.env.usage.memory_headroom();
        let (limit, max_bytes) = if headroom > 0 && len < WINDOW {
            (WINDOW - len, READ_BYTES.min(headroom))
        } else if len < MIN_WINDOW {
            (MIN_WINDOW - len, READ_BYTES)
        } else if starved {
            (MIN_WINDOW, READ_BYTES)
        } else {
            return;
        };
        let mut counted = [0; PRIORITIES];
        for (r, c) in counted.iter_mut().enumerate() {
            *c = g.disk.count(r);
        }
        let epoch = g.epoch;
        let q = self.clone();
        let submitted = store.load(
            self.name.clone(),
            g.disk.next,
            limit,
            max_bytes,
            Box::new(move |r| q.loaded(epoch, r)),
        );
        match submitted {
            Ok(()) => {
                g.loading = Some(Loading {
                    epoch,
                    counted,
                    limit,
                    max_bytes,
                })
            }
            Err(e) => tracing::debug!(queue = %self.name, error = %e, "store read not submitted"),
        }
    }

    /// A store read's completion (on the store's writer thread): the messages join the window
    /// and are dispatched.
    fn loaded(self: &Arc<Self>, epoch: u64, r: Result<Vec<Loaded>, StoreError>) {
        let mut g = self.lock();
        let Some(loading) = g.loading.take_if(|l| l.epoch == epoch) else {
            // Purged meanwhile: the result is void.
            return;
        };
        let list = match r {
            Ok(list) => list,
            Err(e) => {
                tracing::error!(queue = %self.name, error = %e, "reading messages from the store failed; trying again on the next dispatch");
                return;
            }
        };
        let bytes: u64 = list.iter().map(|l| l.data.len() as u64).sum();
        let truncated = list.len() >= loading.limit || bytes >= loading.max_bytes;
        let mut got = [0u64; PRIORITIES];
        let mut bad = 0;
        for l in &list {
            let (r, temp) = ((l.rank % TRANSIENT) as usize, l.rank >= TRANSIENT);
            if r >= PRIORITIES || l.seq < g.disk.next[r] {
                continue;
            }
            got[r] += 1;
            let len = l.data.len() as u64;
            if temp {
                g.disk.temp[r].take(len);
            } else {
                g.disk.kept[r].take(len);
            }
            g.disk.next[r] = l.seq + 1;
            if g.taken.remove(&l.seq) {
                continue;
            }
            match decode_loaded(&g, l) {
                Some(mut e) => {
                    e.redeliveries = g.marks.remove(&l.seq).unwrap_or(e.redeliveries);
                    self.env.usage.add_memory(e.cost());
                    g.counters.bytes += e.msg.size();
                    g.ready.insert(e.key(), e);
                }
                None => {
                    bad += 1;
                    if temp {
                        self.env.usage.sub_temp(len);
                    } else {
                        self.env.usage.sub_store(len);
                    }
                }
            }
        }
        if bad > 0 {
            tracing::error!(queue = %self.name, records = bad, "store records that do not decode were skipped");
        }
        if !truncated {
            // The store had fewer than counted of some rank (a spill that failed): the count
            // follows the store.
            for (r, counted) in loading.counted.iter().enumerate() {
                let missing = counted.saturating_sub(got[r]);
                if missing > 0 && g.disk.count(r) > 0 {
                    tracing::warn!(queue = %self.name, rank = r, missing, "fewer messages in the store than counted");
                    let disk = &mut g.disk;
                    for span in [&mut disk.temp[r], &mut disk.kept[r]] {
                        let m = missing.min(span.count);
                        let b = span.bytes.checked_div(span.count).unwrap_or(0) * m;
                        span.count -= m;
                        span.bytes = span.bytes.saturating_sub(b);
                    }
                }
            }
        }
        let mut fx = Effects::default();
        self.dispatch(&mut g, &mut fx);
        drop(g);
        if !fx.is_empty() {
            (self.env.apply)(fx);
        }
    }
}

/// The entry of a message read from the store, with its redelivery flag.
fn decode_loaded(g: &Inner, l: &Loaded) -> Option<Entry> {
    let msg = Message::decode_shared(&Bytes::clone(&l.data))?;
    let len = l.data.len() as u32;
    let kept = if l.rank >= TRANSIENT {
        Kept::Temp(len)
    } else {
        Kept::Store(len)
    };
    let mut e = Entry::new(Arc::new(msg), l.seq, kept);
    e.rank = l.rank % TRANSIENT;
    let marked = g.marks.get(&l.seq).copied().unwrap_or(0);
    let maybe = u32::from(l.seq < g.redelivered_below && l.rank < TRANSIENT);
    e.redeliveries = marked.max(maybe);
    Some(e)
}
