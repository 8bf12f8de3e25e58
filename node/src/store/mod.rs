//! The durable store: a write-ahead journal in front of a redb file, written by a single
//! writer thread that folds every operation waiting in its channel into one journal record and
//! one sync (group commit).
//!
//! Callers submit [`Op`]s with an optional completion callback. The callback runs on the writer
//! thread once the record holding the ops is synced (or failed), in submission order, so a
//! connection that pipelines sends sees its messages enqueued in the order it sent them. A
//! receipt for a persistent SEND is written only from such a callback: confirmed means durable.
//!
//! redb is the index that recovery reads: every `checkpointInterval` (or when the journal
//! reaches `journalMaxFileLength`) the changes since the last checkpoint go into redb in one
//! durable commit with quick-repair, and the journal starts over ([`journal`]). A message stored
//! and acknowledged between two checkpoints never reaches redb. After a crash, opening the store
//! replays the journal records written since the last checkpoint.
//!
//! Tables:
//! - `messages`: (queue name, sequence) → encoded [`crate::broker::message::Message`]
//! - `dedup`: message id → sequence of the commit that stored it, to drop retried forwards
//! - `delivered`: (queue name, sequence) → delivery count, written at a clean close for the
//!   messages that were handed to a consumer and not acknowledged
//! - `state`: `"clean"` → 1 while the store is closed cleanly; removed when it is opened
//!
//! A message recovered after a crash (no `clean` mark) may have been delivered before, so it is
//! recovered with a delivery count of at least 1 and goes out with `redelivered:true`, as JMS
//! defines the flag ("may have been delivered"). After a clean close (shutdown, stepdown) only
//! the messages recorded in `delivered` carry the flag.
//!
//! redb runs with quick-repair on, so reopening after a crash does not walk the whole file.
//! `state` also holds `"lsn"`: the last journal record redb holds.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use bytes::Bytes;
use journal::Journal;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

pub mod journal;

const MESSAGES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("messages");
const DEDUP: TableDefinition<&str, u64> = TableDefinition::new("dedup");
const DELIVERED: TableDefinition<(&str, u64), u32> = TableDefinition::new("delivered");
const STATE: TableDefinition<&str, u64> = TableDefinition::new("state");
const CLEAN: &str = "clean";
/// Key in `state`: LSN of the last journal record redb holds durably.
const LSN: &str = "lsn";

/// Store failures.
#[derive(Debug, thiserror::Error, Clone)]
pub enum StoreError {
    /// The store file could not be opened or created.
    #[error("cannot open store {path}: {reason}")]
    Open {
        /// Store file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Another process has the store file open (a master that has not let go of it yet).
    #[error("store {path} is still open by another process")]
    AlreadyOpen {
        /// Store file.
        path: String,
    },
    /// A write transaction failed (disk full, I/O error); nothing of it was committed.
    #[error("store write failed: {0}")]
    Write(String),
    /// A read failed.
    #[error("store read failed: {0}")]
    Read(String),
    /// The store is closed (node stopping or stepping down).
    #[error("store is closed")]
    Closed,
}

/// One change to the store.
#[derive(Debug, Clone)]
pub enum Op {
    /// Store a message. With `dedup`, the id is recorded and the put is skipped if the id was
    /// seen before (the outcome says so).
    Put {
        /// Queue name.
        queue: Arc<str>,
        /// Sequence (unique per node, increasing).
        seq: u64,
        /// Encoded message.
        data: Bytes,
        /// Id to de-duplicate on.
        dedup: Option<Arc<str>>,
    },
    /// Remove a message (acknowledged, expired, purged or moved).
    Delete {
        /// Queue name.
        queue: Arc<str>,
        /// Sequence.
        seq: u64,
    },
}

/// What a committed batch did for one submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Puts skipped because their dedup id was already stored.
    pub duplicates: usize,
}

/// Completion callback: runs on the writer thread after the commit (or its failure).
pub type Done = Box<dyn FnOnce(Result<Outcome, StoreError>) + Send>;

struct Submission {
    ops: Vec<Op>,
    done: Option<Done>,
}

enum Cmd {
    Submit(Submission),
    /// Close after the queued submissions, recording these (queue, seq, deliveries) marks.
    Close(Vec<(Arc<str>, u64, u32)>),
}

/// A message read back at recovery.
#[derive(Debug, Clone)]
pub struct Recovered {
    /// Queue name.
    pub queue: String,
    /// Sequence.
    pub seq: u64,
    /// Encoded message.
    pub data: Bytes,
    /// Deliveries without an ack before the store was closed (at least 1 after a crash).
    pub deliveries: u32,
}

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::Sender<Cmd>,
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    commits: AtomicU64,
    writer: std::sync::Mutex<Option<thread::JoinHandle<()>>>,
}

impl Store {
    /// Opens (or creates) the store file and starts the writer thread. Returns the store and
    /// every message it holds, ordered by queue then sequence.
    pub fn open(path: &Path) -> Result<(Store, Vec<Recovered>), StoreError> {
        let open_err = |e: &dyn std::fmt::Display| StoreError::Open {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let db = Database::builder().create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::AlreadyOpen {
                path: path.display().to_string(),
            },
            e => open_err(&e),
        })?;
        // Make sure the tables exist, with quick-repair on for every later commit.
        {
            let mut w = db.begin_write().map_err(|e| open_err(&e))?;
            w.set_quick_repair(true);
            w.open_table(MESSAGES).map_err(|e| open_err(&e))?;
            w.open_table(DEDUP).map_err(|e| open_err(&e))?;
            w.open_table(DELIVERED).map_err(|e| open_err(&e))?;
            w.open_table(STATE).map_err(|e| open_err(&e))?;
            w.commit().map_err(|e| open_err(&e))?;
        }
        // Records the journal holds beyond redb's last checkpoint (an unclean stop) go into
        // redb first; then the journal starts empty.
        let journal_path = path.with_extension("journal");
        let (mut journal, records) = Journal::open(&journal_path).map_err(|e| open_err(&e))?;
        let last_lsn = replay(&db, records)?;
        journal.reset().map_err(|e| open_err(&e))?;
        let recovered = read_all(&db)?;
        // From here on the store is in use: a crash before the next clean close must show.
        {
            let mut w = db.begin_write().map_err(|e| open_err(&e))?;
            w.set_quick_repair(true);
            w.open_table(STATE)
                .map_err(|e| open_err(&e))?
                .remove(CLEAN)
                .map_err(|e| open_err(&e))?;
            w.open_table(DELIVERED)
                .map_err(|e| open_err(&e))?
                .retain(|_, _| false)
                .map_err(|e| open_err(&e))?;
            w.commit().map_err(|e| open_err(&e))?;
        }
        let seen = read_dedup(&db)?;
        let writer = Writer {
            dedup_counter: seen.order.back().map_or(0, |(_, n)| *n + 1),
            db,
            journal,
            dedup: seen,
            lsn: last_lsn + 1,
            pending: HashMap::new(),
            pending_ids: Vec::new(),
            pending_evicted: Vec::new(),
            since_checkpoint: 0,
            last_checkpoint: Instant::now(),
        };
        let (tx, rx) = mpsc::channel::<Cmd>();
        let inner = Arc::new(Inner {
            path: path.to_path_buf(),
            commits: AtomicU64::new(0),
            writer: std::sync::Mutex::new(None),
        });
        let inner2 = inner.clone();
        let handle = thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(writer, rx, inner2))
            .map_err(|e| open_err(&e))?;
        if let Ok(mut w) = inner.writer.lock() {
            *w = Some(handle);
        }
        Ok((Store { tx, inner }, recovered))
    }

    /// Queues ops for the next commit; `done` runs once they are durable.
    pub fn submit(&self, ops: Vec<Op>, done: Option<Done>) {
        if let Err(mpsc::SendError(Cmd::Submit(Submission {
            done: Some(done), ..
        }))) = self.tx.send(Cmd::Submit(Submission { ops, done }))
        {
            done(Err(StoreError::Closed));
        }
    }

    /// Submits and waits for durability.
    pub async fn commit(&self, ops: Vec<Op>) -> Result<Outcome, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(
            ops,
            Some(Box::new(move |r| {
                let _ = tx.send(r);
            })),
        );
        rx.await.unwrap_or(Err(StoreError::Closed))
    }

    /// Write transactions committed since open.
    pub fn commits(&self) -> u64 {
        self.inner.commits.load(Ordering::Relaxed)
    }

    /// Size of the store on disk in bytes (redb file and journal).
    pub fn file_bytes(&self) -> u64 {
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        size(&self.inner.path) + size(&self.inner.path.with_extension("journal"))
    }

    /// Path of the store file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Stops the writer after it has committed everything already submitted, and closes the
    /// file cleanly. Other clones of this handle see [`StoreError::Closed`] afterwards.
    pub fn close(self) {
        self.close_marking(Vec::new());
    }

    /// Like [`Store::close`], recording which stored messages were delivered and not
    /// acknowledged (queue, sequence, deliveries), so they come back with `redelivered:true`.
    pub fn close_marking(self, delivered: Vec<(Arc<str>, u64, u32)>) {
        let Store { tx, inner } = self;
        let _ = tx.send(Cmd::Close(delivered));
        drop(tx);
        let handle = inner.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

fn read_all(db: &Database) -> Result<Vec<Recovered>, StoreError> {
    let rerr = |e: &dyn std::fmt::Display| StoreError::Read(e.to_string());
    let r = db.begin_read().map_err(|e| rerr(&e))?;
    let clean = r
        .open_table(STATE)
        .map_err(|e| rerr(&e))?
        .get(CLEAN)
        .map_err(|e| rerr(&e))?
        .is_some();
    let marks = r.open_table(DELIVERED).map_err(|e| rerr(&e))?;
    let t = r.open_table(MESSAGES).map_err(|e| rerr(&e))?;
    let mut out = Vec::with_capacity(t.len().unwrap_or(0) as usize);
    for row in t.iter().map_err(|e| rerr(&e))? {
        let (k, v) = row.map_err(|e| rerr(&e))?;
        let (queue, seq) = k.value();
        let marked = marks
            .get((queue, seq))
            .map_err(|e| rerr(&e))?
            .map(|g| g.value())
            .unwrap_or(0);
        out.push(Recovered {
            queue: queue.to_string(),
            seq,
            data: Bytes::copy_from_slice(v.value()),
            deliveries: if clean { marked } else { marked.max(1) },
        });
    }
    Ok(out)
}

/// The dedup window: ids in arrival order, and the set for lookups.
struct DedupWindow {
    order: VecDeque<(Arc<str>, u64)>,
    set: HashSet<Arc<str>>,
}

fn read_dedup(db: &Database) -> Result<DedupWindow, StoreError> {
    let rerr = |e: &dyn std::fmt::Display| StoreError::Read(e.to_string());
    let r = db.begin_read().map_err(|e| rerr(&e))?;
    let t = r.open_table(DEDUP).map_err(|e| rerr(&e))?;
    let mut rows: Vec<(Arc<str>, u64)> = Vec::new();
    for row in t.iter().map_err(|e| rerr(&e))? {
        let (k, v) = row.map_err(|e| rerr(&e))?;
        rows.push((Arc::from(k.value()), v.value()));
    }
    rows.sort_by_key(|(_, n)| *n);
    let set = rows.iter().map(|(k, _)| k.clone()).collect();
    Ok(DedupWindow {
        order: rows.into(),
        set,
    })
}

/// Whether a submission only removes messages (acks): such a submission promises nothing to
/// a producer, so it may wait a little for a commit that has to happen anyway.
fn only_deletes(s: &Submission) -> bool {
    !s.ops.is_empty() && s.ops.iter().all(|op| matches!(op, Op::Delete { .. }))
}

/// Applies journal records written after the last checkpoint to redb and makes them durable
/// there, so the journal can be emptied. Returns the last LSN now in redb.
fn replay(db: &Database, records: Vec<journal::Record>) -> Result<u64, StoreError> {
    let werr = |e: &dyn std::fmt::Display| StoreError::Write(e.to_string());
    let checkpoint = read_lsn(db)?;
    let todo: Vec<journal::Record> = records.into_iter().filter(|r| r.lsn > checkpoint).collect();
    let Some(last) = todo.last().map(|r| r.lsn) else {
        return Ok(checkpoint);
    };
    let mut w = db.begin_write().map_err(|e| werr(&e))?;
    w.set_quick_repair(true);
    let mut ops = 0usize;
    {
        let mut msgs = w.open_table(MESSAGES).map_err(|e| werr(&e))?;
        let mut ids = w.open_table(DEDUP).map_err(|e| werr(&e))?;
        let mut counter = ids
            .iter()
            .map_err(|e| werr(&e))?
            .filter_map(|r| r.ok().map(|(_, v)| v.value()))
            .max()
            .map_or(0, |n| n + 1);
        for r in &todo {
            for op in &r.ops {
                ops += 1;
                match op {
                    Op::Put {
                        queue,
                        seq,
                        data,
                        dedup,
                    } => {
                        if let Some(id) = dedup {
                            ids.insert(&**id, counter).map_err(|e| werr(&e))?;
                            counter += 1;
                        }
                        msgs.insert((&**queue, *seq), &data[..])
                            .map_err(|e| werr(&e))?;
                    }
                    Op::Delete { queue, seq } => {
                        msgs.remove((&**queue, *seq)).map_err(|e| werr(&e))?;
                    }
                }
            }
        }
        let mut st = w.open_table(STATE).map_err(|e| werr(&e))?;
        st.insert(LSN, last).map_err(|e| werr(&e))?;
    }
    w.commit().map_err(|e| werr(&e))?;
    tracing::info!(
        records = todo.len(),
        ops,
        "replayed the journal after an unclean stop"
    );
    Ok(last)
}

fn read_lsn(db: &Database) -> Result<u64, StoreError> {
    let rerr = |e: &dyn std::fmt::Display| StoreError::Read(e.to_string());
    let r = db.begin_read().map_err(|e| rerr(&e))?;
    let t = r.open_table(STATE).map_err(|e| rerr(&e))?;
    Ok(t.get(LSN).map_err(|e| rerr(&e))?.map_or(0, |g| g.value()))
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
struct Writer {
    db: Database,
    journal: Journal,
    dedup: DedupWindow,
    dedup_counter: u64,
    /// LSN of the next journal record.
    lsn: u64,
    /// Changes to messages since the last checkpoint.
    pending: HashMap<(Arc<str>, u64), Pending>,
    /// Dedup ids added (with their counter) and evicted since the last checkpoint.
    pending_ids: Vec<(Arc<str>, u64)>,
    pending_evicted: Vec<Arc<str>>,
    /// Operations journaled since the last checkpoint.
    since_checkpoint: usize,
    last_checkpoint: Instant,
}

impl Writer {
    /// Makes one batch durable: one journal record and one sync. Returns each submission's
    /// outcome.
    fn commit(&mut self, batch: &[Submission]) -> Result<Vec<Outcome>, StoreError> {
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut effective: Vec<&Op> = Vec::new();
        // Ids this batch adds, to forget again if the journal write fails.
        let mut added: Vec<Arc<str>> = Vec::new();
        for s in batch {
            let mut o = Outcome::default();
            for op in &s.ops {
                if let Op::Put {
                    dedup: Some(id), ..
                } = op
                {
                    if self.dedup.set.contains(id) {
                        o.duplicates += 1;
                        continue;
                    }
                    self.dedup.set.insert(id.clone());
                    added.push(id.clone());
                }
                effective.push(op);
            }
            outcomes.push(o);
        }
        if effective.is_empty() {
            return Ok(outcomes);
        }
        if let Err(e) = self.journal.append(self.lsn, &effective) {
            for id in &added {
                self.dedup.set.remove(id);
            }
            return Err(StoreError::Write(format!("journal: {e}")));
        }
        self.lsn += 1;
        self.since_checkpoint += effective.len();
        for op in effective {
            match op {
                Op::Put {
                    queue, seq, data, ..
                } => {
                    self.pending
                        .insert((queue.clone(), *seq), Pending::Put(data.clone()));
                }
                Op::Delete { queue, seq } => {
                    let key = (queue.clone(), *seq);
                    if let Some(Pending::Put(_)) = self.pending.get(&key) {
                        self.pending.remove(&key);
                    } else {
                        self.pending.insert(key, Pending::Delete);
                    }
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
    /// `journalMaxFileLength`).
    fn checkpoint_due(&self) -> bool {
        self.since_checkpoint > 0
            && (self.last_checkpoint.elapsed() >= mq_shared::defaults::CHECKPOINT_INTERVAL
                || self.journal.len() >= mq_shared::defaults::JOURNAL_MAX_FILE_LENGTH)
    }

    /// Writes the changes since the last checkpoint into redb in one durable commit (with
    /// quick-repair), then empties the journal. On failure the journal keeps everything and
    /// the next checkpoint tries again.
    fn checkpoint(&mut self) {
        if self.since_checkpoint == 0 {
            return;
        }
        let werr = |e: &dyn std::fmt::Display| StoreError::Write(e.to_string());
        let r = (|| {
            let mut w = self.db.begin_write().map_err(|e| werr(&e))?;
            w.set_quick_repair(true);
            {
                let mut msgs = w.open_table(MESSAGES).map_err(|e| werr(&e))?;
                for ((queue, seq), change) in &self.pending {
                    match change {
                        Pending::Put(data) => {
                            msgs.insert((&**queue, *seq), &data[..])
                                .map_err(|e| werr(&e))?;
                        }
                        Pending::Delete => {
                            msgs.remove((&**queue, *seq)).map_err(|e| werr(&e))?;
                        }
                    }
                }
                let mut ids = w.open_table(DEDUP).map_err(|e| werr(&e))?;
                for (id, n) in &self.pending_ids {
                    ids.insert(&**id, *n).map_err(|e| werr(&e))?;
                }
                for id in &self.pending_evicted {
                    ids.remove(&**id).map_err(|e| werr(&e))?;
                }
                w.open_table(STATE)
                    .map_err(|e| werr(&e))?
                    .insert(LSN, self.lsn - 1)
                    .map_err(|e| werr(&e))?;
            }
            w.commit().map_err(|e| werr(&e))?;
            self.journal
                .reset()
                .map_err(|e| StoreError::Write(format!("journal: {e}")))
        })();
        match r {
            Ok(()) => {
                self.pending.clear();
                self.pending_ids.clear();
                self.pending_evicted.clear();
                self.since_checkpoint = 0;
                self.last_checkpoint = Instant::now();
            }
            Err(e) => {
                // Try again after another interval, not on every batch.
                self.last_checkpoint = Instant::now();
                tracing::error!(error = %e, "store checkpoint failed; the journal keeps the data")
            }
        }
    }
}

fn writer_loop(mut wr: Writer, rx: mpsc::Receiver<Cmd>, inner: Arc<Inner>) {
    let max = mq_shared::defaults::MAX_COMMIT_BATCH;
    let hold_limit = mq_shared::defaults::ACK_COMMIT_DELAY;
    // Delete-only submissions held back to ride the next commit, and since when.
    let mut held: Vec<Submission> = Vec::new();
    let mut held_since = Instant::now();
    // Set by a close: the delivery marks to record with the clean-close mark.
    let mut closing: Option<Vec<(Arc<str>, u64, u32)>> = None;
    // Set when every handle is gone without a close: no clean mark, as after a crash.
    let mut abandoned = false;
    while closing.is_none() && !abandoned {
        let mut timed_out = false;
        let wait = if !held.is_empty() {
            Some(hold_limit.saturating_sub(held_since.elapsed()))
        } else if wr.since_checkpoint > 0 {
            Some(
                mq_shared::defaults::CHECKPOINT_INTERVAL
                    .saturating_sub(wr.last_checkpoint.elapsed()),
            )
        } else {
            None
        };
        let next = match wait {
            None => rx.recv().ok(),
            Some(d) => match rx.recv_timeout(d) {
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
        match next {
            Some(Cmd::Submit(s)) => {
                nops += s.ops.len();
                batch.push(s);
            }
            Some(Cmd::Close(marks)) => closing = Some(marks),
            None if timed_out => {}
            None => abandoned = true,
        }
        while closing.is_none() && !abandoned && nops < max {
            match rx.try_recv() {
                Ok(Cmd::Submit(s)) => {
                    nops += s.ops.len();
                    batch.push(s);
                }
                Ok(Cmd::Close(marks)) => {
                    closing = Some(marks);
                    break;
                }
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            if wr.checkpoint_due() {
                wr.checkpoint();
            }
            continue;
        }
        // Acks alone do not get a commit of their own: they wait (at most `hold_limit`) for
        // the next put, whose commit makes them durable too. A lost ack after a crash means a
        // redelivery, which at-least-once allows; a lost put would break a receipt.
        if closing.is_none()
            && !abandoned
            && !(timed_out && was_holding)
            && nops < max
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
            wr.commit(&batch)
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
        if wr.checkpoint_due() {
            wr.checkpoint();
        }
    }
    // Whatever arrives after the close is refused.
    drop(rx);
    if let Some(marks) = closing {
        wr.checkpoint();
        if wr.journal.is_empty()
            && let Err(e) = mark_clean(&wr.db, &marks)
        {
            tracing::error!(error = %e, "cannot record the clean close; recovered messages will be flagged redelivered");
        }
    }
    let Writer { db, .. } = wr;
    if let Err(e) = db.close() {
        tracing::warn!(error = %e, "closing the store");
    }
}

fn mark_clean(db: &Database, marks: &[(Arc<str>, u64, u32)]) -> Result<(), StoreError> {
    tracing::debug!(marks = marks.len(), "recording a clean close");
    let werr = |e: &dyn std::fmt::Display| StoreError::Write(e.to_string());
    let mut w = db.begin_write().map_err(|e| werr(&e))?;
    w.set_quick_repair(true);
    {
        let msgs = w.open_table(MESSAGES).map_err(|e| werr(&e))?;
        let mut d = w.open_table(DELIVERED).map_err(|e| werr(&e))?;
        for (q, seq, n) in marks {
            if msgs.get((&**q, *seq)).map_err(|e| werr(&e))?.is_some() {
                d.insert((&**q, *seq), *n).map_err(|e| werr(&e))?;
            }
        }
        let mut st = w.open_table(STATE).map_err(|e| werr(&e))?;
        st.insert(CLEAN, 1).map_err(|e| werr(&e))?;
    }
    w.commit().map_err(|e| werr(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(q: &str, seq: u64, data: &[u8], dedup: Option<&str>) -> Op {
        Op::Put {
            queue: Arc::from(q),
            seq,
            data: Bytes::copy_from_slice(data),
            dedup: dedup.map(Arc::from),
        }
    }

    #[tokio::test]
    async fn put_delete_recover_and_dedup() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Read(e.to_string()))?;
        let path = dir.path().join("store.redb");
        let (store, rec) = Store::open(&path)?;
        assert!(rec.is_empty());
        store
            .commit(vec![
                put("a", 1, b"one", None),
                put("a", 2, b"two", Some("id-2")),
            ])
            .await?;
        let o = store
            .commit(vec![put("a", 3, b"dup", Some("id-2"))])
            .await?;
        assert_eq!(o.duplicates, 1);
        store
            .commit(vec![Op::Delete {
                queue: Arc::from("a"),
                seq: 1,
            }])
            .await?;
        store.close_marking(vec![(Arc::from("a"), 2, 3)]);
        let (store, rec) = Store::open(&path)?;
        assert_eq!(rec.len(), 1);
        assert_eq!(rec[0].seq, 2);
        assert_eq!(&rec[0].data[..], b"two");
        assert_eq!(rec[0].deliveries, 3, "the mark of a clean close comes back");
        // The dedup window survives a restart.
        let o = store
            .commit(vec![put("a", 4, b"dup", Some("id-2"))])
            .await?;
        assert_eq!(o.duplicates, 1);
        store.close();
        Ok(())
    }

    #[tokio::test]
    async fn a_store_not_closed_cleanly_flags_every_message_as_maybe_delivered()
    -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Read(e.to_string()))?;
        let path = dir.path().join("store.redb");
        let (store, _) = Store::open(&path)?;
        store.commit(vec![put("a", 1, b"one", None)]).await?;
        store.close();
        let (store, rec) = Store::open(&path)?;
        assert_eq!(rec[0].deliveries, 0, "a clean close flags nothing");
        // Every handle dropped without a close, as when the process dies: no clean mark.
        drop(store);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let rec = loop {
            match Store::open(&path) {
                Ok((s, rec)) => {
                    s.close();
                    break rec;
                }
                // The writer thread may still be closing the file.
                Err(e) if std::time::Instant::now() < deadline => {
                    let _ = e;
                    tokio::task::yield_now().await;
                }
                Err(e) => return Err(e),
            }
        };
        assert_eq!(
            rec[0].deliveries, 1,
            "after an unclean end, maybe delivered"
        );
        Ok(())
    }

    #[tokio::test]
    async fn acks_ride_the_next_put_or_commit_on_their_own_soon() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Read(e.to_string()))?;
        let (store, _) = Store::open(&dir.path().join("s.redb"))?;
        store.commit(vec![put("q", 1, b"x", None)]).await?;
        let before = store.commits();
        // A lone delete is held back, then committed by itself: it still completes.
        let started = std::time::Instant::now();
        store
            .commit(vec![Op::Delete {
                queue: Arc::from("q"),
                seq: 1,
            }])
            .await?;
        assert!(started.elapsed() >= mq_shared::defaults::ACK_COMMIT_DELAY / 2);
        assert_eq!(store.commits(), before + 1);
        // A delete followed by a put: one commit for both.
        store.commit(vec![put("q", 2, b"y", None)]).await?;
        let before = store.commits();
        store.submit(
            vec![Op::Delete {
                queue: Arc::from("q"),
                seq: 2,
            }],
            None,
        );
        store.commit(vec![put("q", 3, b"z", None)]).await?;
        assert_eq!(store.commits(), before + 1);
        store.close();
        let (_, rec) = Store::open(&dir.path().join("s.redb"))?;
        assert_eq!(rec.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![3]);
        Ok(())
    }

    #[tokio::test]
    async fn concurrent_submissions_share_commits() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Read(e.to_string()))?;
        let (store, _) = Store::open(&dir.path().join("s.redb"))?;
        let mut tasks = Vec::new();
        for i in 0..200u64 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                s.commit(vec![put("q", i, b"x", None)]).await
            }));
        }
        for t in tasks {
            t.await.map_err(|e| StoreError::Write(e.to_string()))??;
        }
        assert!(
            store.commits() < 200,
            "commits were not grouped: {}",
            store.commits()
        );
        store.close();
        Ok(())
    }
}
