//! The file store's back end of the group commit (`group`): each group is one journal
//! record and one sync, and redb is checkpointed from the changes kept since the last one;
//! reads merge redb's rows with those changes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use redb::{Database, ReadableDatabase};

use super::changes::{Changes, Pending};
use super::error::{Cause, StoreError};
use super::group::{DedupChange, DedupWindow, GroupWriter, LoadQuery, Marks};
use super::journal::{AppendError, Journal};
use super::replication::Position;
use super::tables::{self, LSN, MSGS, SCHED, SCHED_IDS, SEQ, STATE};
use super::{JobQuery, Limits, Loaded, LoadedJob, Op, PRIORITIES, TRANSIENT};

/// The writer thread's state: redb, the journal in front of it, and the dedup window.
///
/// A batch is durable once its journal record is synced. redb only learns of it at the next
/// checkpoint: the changes since the last one wait in `changes`, where a message stored and
/// acknowledged between two checkpoints cancels out and never reaches redb at all.
pub(super) struct Writer {
    db: Database,
    journal: Journal,
    dedup: DedupWindow,
    /// LSN of the next journal record.
    lsn: u64,
    /// The changes since the last checkpoint (reads merge them with redb's rows).
    changes: Changes,
    /// Highest sequence stored.
    max_seq: u64,
    /// The next sequence (shared with the broker, see [`super::Store::sequence`]).
    seq: Arc<std::sync::atomic::AtomicU64>,
    /// Messages below this sequence may have been delivered before (kept at a clean close).
    redelivered_below: u64,
    /// Durable syncs and commits (false: the temporary store).
    sync: bool,
    /// Operations journaled since the last checkpoint.
    since_checkpoint: usize,
    /// LSNs were given up for failed records that may be on disk: the next checkpoint must
    /// record an LSN past them even if nothing else changed.
    lsn_given_up: bool,
    /// Since the last checkpoint, or the last failed attempt.
    last_checkpoint: Instant,
    /// Whether the last checkpoint attempt failed (the next waits an interval).
    checkpoint_failed: bool,
    limits: Limits,
    /// A replicated group's master: streams each group (its completions wait for the
    /// quorum in the store's pipeline, `confirm.rs`).
    replication: Option<super::replication::ReplicationHook>,
    /// The stream position of the group last committed, until [`GroupWriter::position`].
    streamed: Option<u64>,
}

impl Writer {
    /// The writer's state after recovery; `lsn` is the LSN of the next journal record.
    pub(super) fn new(
        db: Database,
        journal: Journal,
        dedup: DedupWindow,
        lsn: u64,
        recovered: &super::Recovery,
        limits: Limits,
        sync: bool,
    ) -> Writer {
        let (max_seq, redelivered_below) = (recovered.max_seq, recovered.redelivered_below);
        Writer {
            db,
            journal,
            dedup,
            lsn,
            changes: Changes::default(),
            max_seq,
            seq: Arc::new(std::sync::atomic::AtomicU64::new(max_seq + 1)),
            redelivered_below,
            sync,
            since_checkpoint: 0,
            lsn_given_up: false,
            last_checkpoint: Instant::now(),
            checkpoint_failed: false,
            limits,
            replication: None,
            streamed: None,
        }
    }

    /// Streams every group commit through `hook` (a replicated group's master).
    pub(super) fn set_replication(&mut self, hook: Option<super::replication::ReplicationHook>) {
        self.replication = hook;
    }

    /// The sequence counter, for the store handle.
    pub(super) fn sequence(&self) -> Arc<std::sync::atomic::AtomicU64> {
        self.seq.clone()
    }

    /// Whether anything waits for a checkpoint.
    fn dirty(&self) -> bool {
        self.since_checkpoint > 0 || self.lsn_given_up
    }

    /// The file store's commit point: makes one group durable with one journal record and
    /// one sync. On failure nothing of the group is kept, in memory or (as the journal's doc
    /// says) on disk.
    fn commit(&mut self, ops: &[&Op], dedup: &DedupChange) -> Result<(), StoreError> {
        // Replicated: the group goes to the replicas now, with its position row, which the
        // journal record carries too (so it is exactly as durable as the group).
        let stamp = self.replication.as_ref().and_then(|h| h.stamp(ops));
        let stamped: Vec<&Op>;
        let ops = match &stamp {
            Some(s) => {
                stamped = ops.iter().copied().chain(Some(s)).collect();
                &stamped[..]
            }
            None => ops,
        };
        let mut r = self.journal.append(self.lsn, ops);
        if matches!(r, Err(AppendError::Full { .. })) && self.checkpoint_due() {
            // Full because checkpoints failed: one more try (at most one an interval after a
            // failed one) before refusing.
            self.checkpoint();
            if !self.dirty() {
                r = self.journal.append(self.lsn, ops);
            }
        }
        if let Err(e) = r {
            if let (Some(h), Some(_)) = (&self.replication, &stamp) {
                h.abandon();
            }
            if matches!(e, AppendError::Undo { .. }) {
                // The record may be on disk: its LSN is given up, so the next checkpoint
                // records an LSN past it and recovery skips it.
                self.lsn += 1;
                self.lsn_given_up = true;
            }
            return Err(append_error(e));
        }
        self.lsn += 1;
        self.streamed = stamp.as_ref().and_then(Position::of_op).map(|p| p.pos);
        self.since_checkpoint += ops.len();
        self.changes
            .apply(ops.iter().copied(), dedup, &mut self.max_seq);
        Ok(())
    }

    /// Whether a checkpoint is due (`checkpointInterval` passed, or the journal reached
    /// `journalMaxFileLength`; after a failed attempt, only the interval).
    fn checkpoint_due(&self) -> bool {
        self.dirty()
            && (self.last_checkpoint.elapsed() >= mq_shared::defaults::CHECKPOINT_INTERVAL
                || (!self.checkpoint_failed
                    && self.journal.len() >= self.limits.journal_checkpoint))
    }

    /// Writes the changes since the last checkpoint into redb in one durable commit (with
    /// quick-repair), then empties the journal. On failure the journal keeps everything and
    /// the next checkpoint tries again.
    fn checkpoint(&mut self) {
        if !self.dirty() {
            return;
        }
        let r = self.write_checkpoint();
        match r {
            Ok(()) => {
                self.changes.clear();
                self.since_checkpoint = 0;
                self.lsn_given_up = false;
                self.last_checkpoint = Instant::now();
                self.checkpoint_failed = false;
            }
            Err(e) => {
                // Try again after another interval, not on every batch.
                self.last_checkpoint = Instant::now();
                self.checkpoint_failed = true;
                tracing::error!(error = %e, "store checkpoint failed; the journal keeps the data")
            }
        }
    }

    /// The checkpoint's redb commit (purges first, then the changes with their counts), then
    /// the journal reset.
    fn write_checkpoint(&mut self) -> Result<(), Cause> {
        let mut w = self.db.begin_write()?;
        if self.sync {
            w.set_quick_repair(true);
        } else {
            w.set_durability(redb::Durability::None)?;
        }
        self.changes.write(&w)?;
        {
            let mut state = w.open_table(STATE)?;
            state.insert(LSN, self.lsn - 1)?;
            state.insert(SEQ, self.max_seq)?;
        }
        w.commit()?;
        self.journal.reset();
        Ok(())
    }
}

impl Writer {
    /// Serves the snapshots replicas asked for.
    fn serve_snapshots(&mut self) {
        let Some(h) = self.replication.clone() else {
            return;
        };
        while let Some(reply) = h.snapshot_wanted() {
            self.snapshot(reply);
        }
    }

    /// A snapshot for a replica: a checkpoint, so that redb holds every group journaled, then
    /// a read transaction over it.
    fn snapshot(&mut self, reply: super::replication::SnapshotReply) {
        self.checkpoint();
        let r = if self.dirty() {
            Err(StoreError::Task(
                "the checkpoint before a snapshot failed".into(),
            ))
        } else {
            self.db
                .begin_read()
                .map(|txn| super::replication::Snapshot { txn })
                .map_err(StoreError::read)
        };
        let _ = reply.send(r);
    }

    /// The messages of the query's queue from its cursor (per priority rank), highest priority
    /// first and in sequence order within one (persistent and spilled non-persistent ones
    /// merged): redb's rows merged with the changes not checkpointed yet, at most its `limit`
    /// and about its `max_bytes`.
    fn load(&self, query: &LoadQuery) -> Result<Vec<Loaded>, Cause> {
        let (queue, limit, max_bytes) = (&query.queue, query.limit, query.max_bytes);
        let r = self.db.begin_read()?;
        let msgs = r.open_table(MSGS)?;
        let mut out = Vec::new();
        let mut bytes = 0u64;
        for p in 0..PRIORITIES as u8 {
            if out.len() >= limit || bytes >= max_bytes {
                break;
            }
            let start = query.from[p as usize];
            let mut found: Vec<Loaded> = Vec::new();
            for rank in [p, p + TRANSIENT] {
                found.extend(self.rank_range(&msgs, queue, rank, start, limit - out.len())?);
            }
            found.sort_by_key(|l| l.seq);
            for l in found {
                if out.len() >= limit || bytes >= max_bytes {
                    break;
                }
                bytes += l.data.len() as u64;
                out.push(l);
            }
        }
        Ok(out)
    }

    /// Scheduled jobs: redb's rows with the changes not checkpointed yet applied.
    fn load_jobs(&self, query: &JobQuery) -> Result<Vec<LoadedJob>, Cause> {
        let r = self.db.begin_read()?;
        let rows = r.open_table(SCHED)?;
        let (after, limit) = match query {
            JobQuery::Id(id) => {
                let found = match self.changes.jobs.get(id) {
                    Some(job) => job.clone(),
                    None => match r.open_table(SCHED_IDS)?.get(&**id)?.map(|g| g.value()) {
                        Some(at) => rows
                            .get((at, &**id))?
                            .map(|v| (at, Bytes::copy_from_slice(v.value()))),
                        None => None,
                    },
                };
                return Ok(found
                    .map(|(at, data)| LoadedJob {
                        at,
                        id: id.clone(),
                        data,
                    })
                    .into_iter()
                    .collect());
            }
            JobQuery::After { after, limit } => (after, *limit),
        };
        use std::ops::Bound;
        let start = match after {
            Some((at, id)) => Bound::Excluded((*at, &**id)),
            None => Bound::Unbounded,
        };
        let mut out = Vec::new();
        for row in rows.range::<(u64, &str)>((start, Bound::Unbounded))? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = row?;
            let (at, id) = k.value();
            // The overlay wins for its id (a job moved or removed since the checkpoint).
            if self.changes.jobs.contains_key(id) {
                continue;
            }
            out.push(LoadedJob {
                at,
                id: Arc::from(id),
                data: Bytes::copy_from_slice(v.value()),
            });
        }
        let past = |at: u64, id: &str| match after {
            Some((a, i)) => (at, id) > (*a, &**i),
            None => true,
        };
        for (id, job) in &self.changes.jobs {
            if let Some((at, data)) = job
                && past(*at, id)
            {
                out.push(LoadedJob {
                    at: *at,
                    id: id.clone(),
                    data: data.clone(),
                });
            }
        }
        out.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        out.truncate(limit);
        Ok(out)
    }

    /// Up to `limit` messages of one key rank from sequence `start`: redb's rows with the
    /// overlay of changes not checkpointed yet applied.
    fn rank_range(
        &self,
        msgs: &redb::ReadOnlyTable<(&str, u8, u64), &[u8]>,
        queue: &Arc<str>,
        rank: u8,
        start: u64,
        limit: usize,
    ) -> Result<Vec<Loaded>, Cause> {
        let mut out = Vec::new();
        let mut disk = msgs.range((&**queue, rank, start)..=(&**queue, rank, u64::MAX))?;
        let mut over = self
            .changes
            .msgs
            .range((queue.clone(), rank, start)..=(queue.clone(), rank, u64::MAX))
            .peekable();
        // redb's rows of ranges purged since the last checkpoint are gone already.
        let purged: Vec<(u64, u64)> = self
            .changes
            .purges
            .iter()
            .filter(|(q, r, _, _)| q == queue && *r == rank)
            .map(|(_, _, f, t)| (*f, *t))
            .collect();
        let gone = |seq: u64| purged.iter().any(|(f, t)| (*f..=*t).contains(&seq));
        let mut next_disk = disk.next().transpose()?;
        while out.len() < limit {
            let disk_seq = next_disk.as_ref().map(|(k, _)| k.value().2);
            let over_seq = over.peek().map(|(k, _)| k.2);
            match (disk_seq, over_seq) {
                (None, None) => break,
                (Some(d), o) if o.is_none_or(|o| d < o) => {
                    if let Some((_, v)) = next_disk.take()
                        && !gone(d)
                    {
                        out.push(Loaded {
                            rank,
                            seq: d,
                            data: bytes::Bytes::copy_from_slice(v.value()),
                        });
                    }
                    next_disk = disk.next().transpose()?;
                }
                (d, Some(o)) => {
                    // The overlay wins for its key (a put or a delete not in redb yet).
                    if d == Some(o) {
                        next_disk = disk.next().transpose()?;
                    }
                    if let Some((_, Pending::Put(data))) = over.next() {
                        out.push(Loaded {
                            rank,
                            seq: o,
                            data: data.clone(),
                        });
                    }
                }
                (Some(_), None) => break,
            }
        }
        Ok(out)
    }
}

/// The store error a failed append is reported as.
fn append_error(e: AppendError) -> StoreError {
    match e {
        AppendError::Io(e) => StoreError::write(e),
        AppendError::Undo { write, undo } => {
            tracing::error!(error = %write, undo = %undo, "a failed journal write could not be undone; the store refuses writes until it can be");
            StoreError::Failed(Arc::new(undo.into()))
        }
        AppendError::Refused(e) => StoreError::Failed(Arc::new(e.into())),
        AppendError::TooLong(t) => StoreError::TooLarge {
            what: t.what,
            bytes: t.bytes,
            limit: t.limit,
        },
        AppendError::Full { limit } => StoreError::Full { limit },
    }
}

impl GroupWriter for Writer {
    fn max_bytes(&self) -> u64 {
        self.limits.commit_bytes
    }

    fn ack_delay(&self) -> Option<Duration> {
        Some(mq_shared::defaults::ACK_COMMIT_DELAY)
    }

    /// Until the next checkpoint is due, while anything waits for one.
    fn idle_timeout(&self) -> Option<Duration> {
        self.dirty().then(|| {
            mq_shared::defaults::CHECKPOINT_INTERVAL.saturating_sub(self.last_checkpoint.elapsed())
        })
    }

    fn dedup(&mut self) -> &mut DedupWindow {
        &mut self.dedup
    }

    /// [`Writer::commit`].
    fn commit(&mut self, ops: &[&Op], dedup: &DedupChange) -> Result<(), StoreError> {
        Writer::commit(self, ops, dedup)
    }

    /// Replicated: the position the quorum must hold before the group is confirmed (a
    /// group refused stays in the local store, as one that was never confirmed).
    fn position(&mut self) -> Option<u64> {
        self.streamed.take()
    }

    fn read(&mut self, query: &LoadQuery) -> Result<Vec<Loaded>, StoreError> {
        self.load(query).map_err(StoreError::read)
    }

    fn read_jobs(&mut self, query: &JobQuery) -> Result<Vec<LoadedJob>, StoreError> {
        self.load_jobs(query).map_err(StoreError::read)
    }

    fn upkeep_due(&self) -> bool {
        self.checkpoint_due()
    }

    fn maintain(&mut self) {
        if self.checkpoint_due() {
            self.checkpoint();
        }
        self.serve_snapshots();
    }

    /// A clean close undoes what a failed write left if it can, checkpoints, and marks the
    /// store clean when the journal is empty; then redb is closed.
    fn finish(mut self, close: Option<Marks>) {
        if let Some(marks) = close {
            if let Err(e) = self.journal.undo_pending() {
                tracing::error!(error = %e, "the journal still cannot undo a failed write");
            }
            self.checkpoint();
            if self.journal.is_empty()
                && !self.journal.needs_undo()
                && let Err(e) = mark_clean(&self.db, &marks, self.redelivered_below)
            {
                tracing::error!(error = %e, "cannot record the clean close; recovered messages will be flagged redelivered");
            }
        }
        let Writer { db, .. } = self;
        if let Err(e) = db.close() {
            tracing::warn!(error = %e, "closing the store");
        }
    }
}

fn mark_clean(
    db: &Database,
    marks: &[(Arc<str>, u64, u32)],
    redelivered_below: u64,
) -> Result<(), StoreError> {
    tables::mark_clean(db, marks, redelivered_below).map_err(StoreError::write)
}
