//! The writer thread: it folds every submission waiting in its channel into one journal
//! record and one sync (group commit), runs the completion callbacks, and checkpoints redb.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Instant;

use bytes::Bytes;
use redb::{Database, ReadableDatabase};

use super::error::{Cause, StoreError};
use super::journal::{AppendError, Journal};
use super::record;
use super::tables::{self, COUNTS, DEDUP, DedupWindow, LSN, MSGS, SCHED, SCHED_IDS, SEQ, STATE};
use super::{
    Cursor, Done, Inner, JobQuery, JobsDone, Limits, LoadDone, Loaded, LoadedJob, Op, Outcome,
    PRIORITIES, TRANSIENT,
};

/// Ops submitted together, and the callback to run once they are durable.
pub(super) struct Submission {
    pub(super) ops: Vec<Op>,
    pub(super) done: Option<Done>,
}

/// What the writer thread is asked to do.
pub(super) enum Cmd {
    Submit(Submission),
    /// Read a queue's messages (see [`super::Store::load`]).
    Load {
        queue: Arc<str>,
        from: Cursor,
        limit: usize,
        max_bytes: u64,
        done: LoadDone,
    },
    /// Read scheduled jobs (see [`super::Store::load_jobs`]).
    LoadJobs {
        query: JobQuery,
        done: JobsDone,
    },
    /// Close after the queued submissions, recording these (queue, seq, deliveries) marks.
    Close(Vec<(Arc<str>, u64, u32)>),
}

/// A message key: (queue, rank, sequence).
type Key = (Arc<str>, u8, u64);

/// Whether a submission only removes messages (acks): such a submission promises nothing to
/// a producer, so it may wait a little for a commit that has to happen anyway.
fn only_deletes(s: &Submission) -> bool {
    !s.ops.is_empty() && s.ops.iter().all(|op| matches!(op, Op::Delete { .. }))
}

/// A change waiting for the next checkpoint to reach redb.
enum Pending {
    /// Stored since the last checkpoint.
    Put(Bytes),
    /// Removed since the last checkpoint; it is in redb from an earlier one.
    Delete,
}

/// The writer thread's state: redb, the journal in front of it, and the dedup window.
///
/// A batch is durable once its journal record is synced. redb only learns of it at the next
/// checkpoint: the changes since the last one wait in `pending`, where a message stored and
/// acknowledged between two checkpoints cancels out and never reaches redb at all.
pub(super) struct Writer {
    db: Database,
    journal: Journal,
    dedup: DedupWindow,
    dedup_counter: u64,
    /// LSN of the next journal record.
    lsn: u64,
    /// Changes to messages since the last checkpoint, in key order (reads merge them with
    /// redb's rows).
    pending: BTreeMap<Key, Pending>,
    /// Purges since the last checkpoint, in order: (queue, rank, from, to). redb's rows in
    /// those ranges are gone (puts committed after a purge went to `pending` and stay).
    purges: Vec<(Arc<str>, u8, u64, u64)>,
    /// Scheduled jobs stored (fire time, record) or removed (`None`) since the last
    /// checkpoint, by id.
    pending_jobs: HashMap<Arc<str>, Option<(u64, Bytes)>>,
    /// Highest sequence stored.
    max_seq: u64,
    /// The next sequence (shared with the broker, see [`super::Store::sequence`]).
    seq: Arc<std::sync::atomic::AtomicU64>,
    /// Messages below this sequence may have been delivered before (kept at a clean close).
    redelivered_below: u64,
    /// Durable syncs and commits (false: the temporary store).
    sync: bool,
    /// Dedup ids added (with their counter) and evicted since the last checkpoint.
    pending_ids: Vec<(Arc<str>, u64)>,
    pending_evicted: Vec<Arc<str>>,
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
    /// A replicated group's master: streams each group and waits for its quorum.
    replication: Option<super::replication::ReplicationHook>,
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
            dedup_counter: dedup.order.back().map_or(0, |(_, n)| *n + 1),
            db,
            journal,
            dedup,
            lsn,
            pending: BTreeMap::new(),
            purges: Vec::new(),
            pending_jobs: HashMap::new(),
            max_seq,
            seq: Arc::new(std::sync::atomic::AtomicU64::new(max_seq + 1)),
            redelivered_below,
            sync,
            pending_ids: Vec::new(),
            pending_evicted: Vec::new(),
            since_checkpoint: 0,
            lsn_given_up: false,
            last_checkpoint: Instant::now(),
            checkpoint_failed: false,
            limits,
            replication: None,
        }
    }

    /// Streams every group commit through `hook` and confirms it only once its quorum holds
    /// it (a replicated group's master).
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

    /// Makes one batch durable: one journal record and one sync. Returns each submission's
    /// outcome. On failure nothing of the batch is kept, in memory or (as the journal's doc
    /// says) on disk.
    fn commit(&mut self, batch: &mut [Submission]) -> Result<Vec<Outcome>, StoreError> {
        let mut outcomes = Vec::with_capacity(batch.len());
        // Ids this batch adds, to forget again if the journal write fails.
        let mut added: Vec<Arc<str>> = Vec::new();
        // Puts asking for a sequence get the next ones, in commit order.
        let mut skip: Vec<bool> = Vec::new();
        for s in batch.iter_mut() {
            let mut o = Outcome::default();
            for op in &mut s.ops {
                if let Op::Put {
                    dedup: Some(id), ..
                } = op
                {
                    if self.dedup.set.contains(id) {
                        o.duplicates += 1;
                        skip.push(true);
                        continue;
                    }
                    self.dedup.set.insert(id.clone());
                    added.push(id.clone());
                }
                if let Op::Put { seq, .. } = op
                    && *seq == 0
                {
                    *seq = self.seq.fetch_add(1, Ordering::Relaxed);
                    if o.first_seq == 0 {
                        o.first_seq = *seq;
                    }
                }
                skip.push(false);
            }
            outcomes.push(o);
        }
        let mut flags = skip.into_iter();
        let effective: Vec<&Op> = batch
            .iter()
            .flat_map(|s| s.ops.iter())
            .filter(|_| !flags.next().unwrap_or(false))
            .collect();
        if effective.is_empty() {
            return Ok(outcomes);
        }
        // Replicated: the group goes to the replicas now, with its position row.
        let stamp = self.replication.as_ref().and_then(|h| h.stamp(&effective));
        let mut effective = effective;
        effective.extend(stamp.as_ref());
        let mut r = self.journal.append(self.lsn, &effective);
        if matches!(r, Err(AppendError::Full { .. })) && self.checkpoint_due() {
            // Full because checkpoints failed: one more try (at most one an interval after a
            // failed one) before refusing.
            self.checkpoint();
            if !self.dirty() {
                r = self.journal.append(self.lsn, &effective);
            }
        }
        if let Err(e) = r {
            if let (Some(h), Some(_)) = (&self.replication, &stamp) {
                h.abandon();
            }
            for id in &added {
                self.dedup.set.remove(id);
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
        self.since_checkpoint += effective.len();
        for op in effective {
            match op {
                Op::Put {
                    queue,
                    rank,
                    seq,
                    data,
                    ..
                } => {
                    self.max_seq = self.max_seq.max(*seq);
                    self.pending
                        .insert((queue.clone(), *rank, *seq), Pending::Put(data.clone()));
                }
                Op::Delete {
                    queue, rank, seq, ..
                } => {
                    let key = (queue.clone(), *rank, *seq);
                    if let Some(Pending::Put(_)) = self.pending.get(&key) {
                        self.pending.remove(&key);
                    } else {
                        self.pending.insert(key, Pending::Delete);
                    }
                }
                Op::Purge {
                    queue,
                    rank,
                    from,
                    to,
                } => {
                    // Pending puts in the range go; redb's rows get a delete each at the
                    // checkpoint (and are hidden from reads until then).
                    let range = (queue.clone(), *rank, *from)..=(queue.clone(), *rank, *to);
                    let gone: Vec<Key> =
                        self.pending.range(range).map(|(k, _)| k.clone()).collect();
                    for k in gone {
                        self.pending.remove(&k);
                    }
                    self.purges.push((queue.clone(), *rank, *from, *to));
                }
                Op::Schedule { id, at, data } => {
                    self.pending_jobs
                        .insert(id.clone(), Some((*at, data.clone())));
                }
                Op::Unschedule { id } => {
                    self.pending_jobs.insert(id.clone(), None);
                }
            }
        }
        let window = mq_shared::defaults::DEDUP_WINDOW;
        for id in added {
            self.pending_ids.push((id.clone(), self.dedup_counter));
            self.dedup.order.push_back((id, self.dedup_counter));
            self.dedup_counter += 1;
            while self.dedup.order.len() > window {
                if let Some((old, _)) = self.dedup.order.pop_front() {
                    self.dedup.set.remove(&old);
                    self.pending_evicted.push(old);
                }
            }
        }
        Ok(outcomes)
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
                self.pending.clear();
                self.purges.clear();
                self.pending_jobs.clear();
                self.pending_ids.clear();
                self.pending_evicted.clear();
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
        for (queue, rank, from, to) in &self.purges {
            tables::purge(&w, queue, *rank, *from, *to)?;
        }
        {
            let mut msgs = w.open_table(MSGS)?;
            let mut counts = w.open_table(COUNTS)?;
            for ((queue, rank, seq), change) in &self.pending {
                match change {
                    Pending::Put(data) => {
                        let old = msgs
                            .insert((&**queue, *rank, *seq), &data[..])?
                            .map(|g| g.value().len());
                        if let Some(len) = old {
                            tables::bump(&mut counts, queue, *rank, -1, -(len as i64))?;
                        }
                        tables::bump(&mut counts, queue, *rank, 1, data.len() as i64)?;
                    }
                    Pending::Delete => {
                        let old = msgs
                            .remove((&**queue, *rank, *seq))?
                            .map(|g| g.value().len());
                        if let Some(len) = old {
                            tables::bump(&mut counts, queue, *rank, -1, -(len as i64))?;
                        }
                    }
                }
            }
            let mut ids = w.open_table(DEDUP)?;
            for (id, n) in &self.pending_ids {
                ids.insert(&**id, *n)?;
            }
            for id in &self.pending_evicted {
                ids.remove(&**id)?;
            }
            for (id, job) in &self.pending_jobs {
                tables::put_job(&w, id, job.as_ref().map(|(at, d)| (*at, &d[..])))?;
            }
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
    /// Replicated: waits until the group just committed may be confirmed (its quorum holds
    /// it), serving snapshots meanwhile. Refused, the senders are told it failed (it stays in
    /// the local store, as a group that was never confirmed).
    fn confirm_replicated(&mut self, o: Vec<Outcome>) -> Result<Vec<Outcome>, StoreError> {
        let Some(h) = self.replication.clone() else {
            return Ok(o);
        };
        match h.confirm(&mut |reply| self.snapshot(reply)) {
            Ok(()) => Ok(o),
            Err(why) => Err(StoreError::Task(format!("not confirmed: {why}"))),
        }
    }

    /// Serves the snapshots asked for while the writer was not confirming.
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

    /// Serves a read, running its callback here (on the writer thread).
    fn serve(&self, cmd: Cmd) {
        if let Cmd::LoadJobs { query, done } = cmd {
            done(self.load_jobs(&query).map_err(StoreError::read));
            return;
        }
        if let Cmd::Load {
            queue,
            from,
            limit,
            max_bytes,
            done,
        } = cmd
        {
            let r = self
                .load(&queue, &from, limit, max_bytes)
                .map_err(StoreError::read);
            done(r);
        }
    }

    /// The messages of `queue` from `from` (per priority rank), highest priority first and
    /// in sequence order within one (persistent and spilled non-persistent ones merged): redb's
    /// rows merged with the changes not checkpointed yet, at most `limit` and about
    /// `max_bytes`.
    fn load(
        &self,
        queue: &Arc<str>,
        from: &Cursor,
        limit: usize,
        max_bytes: u64,
    ) -> Result<Vec<Loaded>, Cause> {
        let r = self.db.begin_read()?;
        let msgs = r.open_table(MSGS)?;
        let mut out = Vec::new();
        let mut bytes = 0u64;
        for p in 0..PRIORITIES as u8 {
            if out.len() >= limit || bytes >= max_bytes {
                break;
            }
            let start = from[p as usize];
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
                let found = match self.pending_jobs.get(id) {
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
            if self.pending_jobs.contains_key(id) {
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
        for (id, job) in &self.pending_jobs {
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
            .pending
            .range((queue.clone(), rank, start)..=(queue.clone(), rank, u64::MAX))
            .peekable();
        // redb's rows of ranges purged since the last checkpoint are gone already.
        let purged: Vec<(u64, u64)> = self
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

/// Bytes a submission's ops take in a journal record.
fn submission_bytes(s: &Submission) -> u64 {
    s.ops.iter().map(record::op_len).sum()
}

pub(super) fn writer_loop(mut wr: Writer, rx: mpsc::Receiver<Cmd>, inner: Arc<Inner>) {
    let max = mq_shared::defaults::MAX_COMMIT_BATCH;
    let max_bytes = wr.limits.commit_bytes;
    // A submission taken from the channel that did not fit in the last group commit.
    let mut carry: Option<Submission> = None;
    let hold_limit = mq_shared::defaults::ACK_COMMIT_DELAY;
    // Delete-only submissions held back to ride the next commit, and since when.
    let mut held: Vec<Submission> = Vec::new();
    let mut held_since = Instant::now();
    // Set by a close: the delivery marks to record with the clean-close mark.
    let mut closing: Option<Vec<(Arc<str>, u64, u32)>> = None;
    // A read that arrived while a batch was gathered: served once that batch is committed, so
    // a read sees everything submitted before it (and nothing a later submission changes).
    let mut load: Option<Cmd> = None;
    // Set when every handle is gone without a close: no clean mark, as after a crash.
    let mut abandoned = false;
    while closing.is_none() && !abandoned {
        let mut timed_out = false;
        let wait = if !held.is_empty() {
            Some(hold_limit.saturating_sub(held_since.elapsed()))
        } else if wr.dirty() {
            Some(
                mq_shared::defaults::CHECKPOINT_INTERVAL
                    .saturating_sub(wr.last_checkpoint.elapsed()),
            )
        } else {
            None
        };
        let next = match (carry.take(), wait) {
            (Some(s), _) => Some(Cmd::Submit(s)),
            (None, None) => rx.recv().ok(),
            (None, Some(d)) => match rx.recv_timeout(d) {
                Ok(cmd) => Some(cmd),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    timed_out = true;
                    None
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => None,
            },
        };
        let was_holding = !held.is_empty();
        let mut batch = std::mem::take(&mut held);
        let mut nops: usize = batch.iter().map(|s| s.ops.len()).sum();
        let mut nbytes: u64 = batch.iter().map(submission_bytes).sum();
        match next {
            Some(Cmd::Submit(s)) => {
                nops += s.ops.len();
                nbytes += submission_bytes(&s);
                batch.push(s);
            }
            Some(Cmd::Close(marks)) => closing = Some(marks),
            Some(cmd @ (Cmd::Load { .. } | Cmd::LoadJobs { .. })) => load = Some(cmd),
            None if timed_out => {}
            None => abandoned = true,
        }
        while closing.is_none() && load.is_none() && !abandoned && nops < max && nbytes < max_bytes
        {
            match rx.try_recv() {
                Ok(Cmd::Submit(s)) => {
                    let b = submission_bytes(&s);
                    if !batch.is_empty() && nbytes + b > max_bytes {
                        // It opens the next group commit.
                        carry = Some(s);
                        break;
                    }
                    nops += s.ops.len();
                    nbytes += b;
                    batch.push(s);
                }
                Ok(Cmd::Close(marks)) => {
                    closing = Some(marks);
                    break;
                }
                Ok(cmd @ (Cmd::Load { .. } | Cmd::LoadJobs { .. })) => {
                    load = Some(cmd);
                    break;
                }
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            if let Some(cmd) = load.take() {
                wr.serve(cmd);
            }
            if wr.checkpoint_due() {
                wr.checkpoint();
            }
            continue;
        }
        // Acks alone do not get a commit of their own: they wait (at most `hold_limit`) for
        // the next put, whose commit makes them durable too. A lost ack after a crash means a
        // redelivery, which at-least-once allows; a lost put would break a receipt.
        if closing.is_none()
            && load.is_none()
            && !abandoned
            && !(timed_out && was_holding)
            && carry.is_none()
            && nops < max
            && nbytes < max_bytes
            && batch.iter().all(only_deletes)
        {
            if !was_holding {
                held_since = Instant::now();
            }
            held = batch;
            continue;
        }
        let result = if nops == 0 {
            // Only ordering barriers: nothing to write.
            Ok(vec![Outcome::default(); batch.len()])
        } else {
            wr.commit(&mut batch).and_then(|o| wr.confirm_replicated(o))
        };
        match result {
            Ok(outcomes) => {
                if nops > 0 {
                    inner.commits.fetch_add(1, Ordering::Relaxed);
                }
                for (s, o) in batch.into_iter().zip(outcomes) {
                    if let Some(done) = s.done {
                        done(Ok(o));
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "store commit failed; the senders are told and nothing of the batch is kept");
                for s in batch {
                    if let Some(done) = s.done {
                        done(Err(e.clone()));
                    }
                }
            }
        }
        if let Some(cmd) = load.take() {
            wr.serve(cmd);
        }
        if wr.checkpoint_due() {
            wr.checkpoint();
        }
        wr.serve_snapshots();
    }
    // Whatever arrives after the close is refused.
    drop(rx);
    if let Some(marks) = closing {
        if let Err(e) = wr.journal.undo_pending() {
            tracing::error!(error = %e, "the journal still cannot undo a failed write");
        }
        wr.checkpoint();
        if wr.journal.is_empty()
            && !wr.journal.needs_undo()
            && let Err(e) = mark_clean(&wr.db, &marks, wr.redelivered_below)
        {
            tracing::error!(error = %e, "cannot record the clean close; recovered messages will be flagged redelivered");
        }
    }
    let Writer { db, .. } = wr;
    if let Err(e) = db.close() {
        tracing::warn!(error = %e, "closing the store");
    }
}

fn mark_clean(
    db: &Database,
    marks: &[(Arc<str>, u64, u32)],
    redelivered_below: u64,
) -> Result<(), StoreError> {
    tables::mark_clean(db, marks, redelivered_below).map_err(StoreError::write)
}
