//! The changes on their way to redb: ops applied in commit order to an overlay (a message
//! stored and removed before the overlay is written cancels out and never reaches redb), then
//! written into redb in one write transaction. The writer keeps one between two checkpoints
//! (reads merge it with redb's rows); recovery gathers the journal's records into one, a
//! chunk at a time.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use redb::WriteTransaction;

use super::Op;
use super::error::Cause;
use super::group::DedupChange;
use super::rows::RowChange;
use super::tables::{self, COUNTS, DEDUP, MSGS};

/// A message key: (queue, rank, sequence).
pub(super) type Key = (Arc<str>, u8, u64);

/// A message's change waiting for redb.
pub(super) enum Pending {
    /// Stored.
    Put(Bytes),
    /// Removed; it is in redb from an earlier write.
    Delete,
}

/// Changes not in redb yet.
#[derive(Default)]
pub(super) struct Changes {
    /// Changes to messages, in key order.
    pub(super) msgs: BTreeMap<Key, Pending>,
    /// Purges, in order: (queue, rank, from, to). redb's rows in those ranges are gone (puts
    /// applied after a purge are in `msgs` and stay).
    pub(super) purges: Vec<(Arc<str>, u8, u64, u64)>,
    /// Scheduled jobs stored (fire time, record) or removed (`None`), by id.
    pub(super) jobs: HashMap<Arc<str>, Option<(u64, Bytes)>>,
    /// Dedup ids added (with their counter), and evicted.
    ids: Vec<(Arc<str>, u64)>,
    evicted: Vec<Arc<str>>,
}

impl Changes {
    /// Applies durable ops, in commit order, with what they changed in the dedup window;
    /// `max_seq` moves past every sequence stored.
    pub(super) fn apply<'a>(
        &mut self,
        ops: impl IntoIterator<Item = &'a Op>,
        dedup: &DedupChange,
        max_seq: &mut u64,
    ) {
        for op in ops {
            match op.row() {
                RowChange::Put(key, data, _) => {
                    *max_seq = (*max_seq).max(key.seq);
                    self.msgs.insert(key.owned(), Pending::Put(data.clone()));
                }
                RowChange::Delete(key, _) => {
                    let key = key.owned();
                    if let Some(Pending::Put(_)) = self.msgs.get(&key) {
                        self.msgs.remove(&key);
                    } else {
                        self.msgs.insert(key, Pending::Delete);
                    }
                }
                RowChange::Purge(from, to) => {
                    // Pending puts in the range go; redb's rows get a delete each when the
                    // changes are written (and are hidden from reads until then).
                    let (queue, rank, first) = from.owned();
                    let range = (queue.clone(), rank, first)..=(queue.clone(), rank, to);
                    let gone: Vec<Key> = self.msgs.range(range).map(|(k, _)| k.clone()).collect();
                    for k in gone {
                        self.msgs.remove(&k);
                    }
                    self.purges.push((queue, rank, first, to));
                }
                RowChange::Job(id, job) => {
                    self.jobs
                        .insert(id.clone(), job.map(|(at, data)| (at, data.clone())));
                }
            }
        }
        self.ids.extend(dedup.added.iter().cloned());
        self.evicted.extend(dedup.evicted.iter().cloned());
    }

    /// Writes the changes into redb in `w`: purges first, then the messages with their
    /// queues' counts, the dedup ids and the scheduled jobs.
    pub(super) fn write(&self, w: &WriteTransaction) -> Result<(), Cause> {
        for (queue, rank, from, to) in &self.purges {
            tables::purge(w, queue, *rank, *from, *to)?;
        }
        let mut msgs = w.open_table(MSGS)?;
        let mut counts = w.open_table(COUNTS)?;
        for ((queue, rank, seq), change) in &self.msgs {
            let old = match change {
                Pending::Put(data) => msgs.insert((&**queue, *rank, *seq), &data[..])?,
                Pending::Delete => msgs.remove((&**queue, *rank, *seq))?,
            }
            .map(|g| g.value().len());
            if let Some(len) = old {
                tables::bump(&mut counts, queue, *rank, -1, -(len as i64))?;
            }
            if let Pending::Put(data) = change {
                tables::bump(&mut counts, queue, *rank, 1, data.len() as i64)?;
            }
        }
        let mut ids = w.open_table(DEDUP)?;
        for (id, n) in &self.ids {
            ids.insert(&**id, *n)?;
        }
        for id in &self.evicted {
            ids.remove(&**id)?;
        }
        for (id, job) in &self.jobs {
            tables::put_job(w, id, job.as_ref().map(|(at, d)| (*at, &d[..])))?;
        }
        Ok(())
    }

    /// Forgets them (written).
    pub(super) fn clear(&mut self) {
        self.msgs.clear();
        self.purges.clear();
        self.jobs.clear();
        self.ids.clear();
        self.evicted.clear();
    }
}
