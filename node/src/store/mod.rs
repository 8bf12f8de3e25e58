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
//! durable commit with quick-repair, and the journal starts over (module `journal`). A message stored
//! and acknowledged between two checkpoints never reaches redb. After a crash, opening the store
//! replays the journal records written since the last checkpoint.
//!
//! Tables:
//! - `msgs`: (queue name, rank, sequence) → encoded [`crate::broker::message::Message`]; the
//!   rank is the priority rank (0 = priority 9), plus [`TRANSIENT`] for a spilled
//!   non-persistent message (dropped at every start)
//! - `counts`: (queue name, rank) → (messages, bytes): what recovery reads instead of the
//!   messages (a v1 store's `messages` table is migrated into these two at open)
//! - `dedup`: message id → sequence of the commit that stored it, to drop retried forwards
//! - `delivered`: (queue name, sequence) → delivery count, written at a clean close for the
//!   messages that were handed to a consumer and not acknowledged
//! - `state`: `"clean"` → 1 while the store is closed cleanly; removed when it is opened
//! - `sched` and `sched_ids`: scheduled messages by (fire time, job id), and each job's time
//!
//! A message recovered after a crash (no `clean` mark) may have been delivered before, so it is
//! recovered with a delivery count of at least 1 and goes out with `redelivered:true`, as JMS
//! defines the flag ("may have been delivered"). After a clean close (shutdown, stepdown) only
//! the messages recorded in `delivered` carry the flag.
//!
//! redb runs with quick-repair on, so reopening after a crash does not walk the whole file.
//! `state` also holds `"lsn"`: the last journal record redb holds.
//!
//! # Failures
//!
//! A submission's callback gets `Ok` only once its journal record is synced; then the record
//! is recovered after a crash. It gets an error when anything of the commit failed, and then
//! nothing of it is kept: not in memory (dedup ids, pending changes, LSN, journal length are
//! as before), and not on disk, where the failed record's header is zeroed and synced before
//! the error is reported, so recovery never replays a message whose sender was told ERROR.
//! If the disk refuses even that zeroing, the store refuses every commit
//! ([`StoreError::Failed`]) and retries the zeroing on each new submission, resuming once it
//! succeeds or a checkpoint has made redb durable past the failed record; only a crash
//! during that state can bring the failed record back (a duplicate, never a loss). The node
//! keeps running meanwhile.
//!
//! Limits: a group commit gathers at most `MAX_COMMIT_BATCH` ops and `MAX_COMMIT_BYTES`
//! bytes; a commit, queue name or message id that cannot fit in a record is refused
//! ([`StoreError::TooLarge`]), never truncated. While checkpoints keep failing the journal
//! grows up to `JOURNAL_HARD_LIMIT` and then refuses writes ([`StoreError::Full`]) until a
//! checkpoint succeeds; each checkpoint cuts a file a burst made larger back to a bounded
//! size. Opening the store reads and replays the journal one record at a time. The data
//! directory is synced after the store files are created.
//!
//! # Which thread runs what
//!
//! - [`Store::open`] runs on the caller's thread (the node calls it from a blocking task): it
//!   opens redb, replays the journal and reads the per-queue counts and state keys (no
//!   message: queues read theirs with [`Store::load`] as consumers make room).
//! - One thread, `store-writer`, owns redb and the journal from then on. It receives the
//!   submissions, writes and syncs the journal record of each group commit, checkpoints redb,
//!   and **runs every completion callback ([`Done`])**, in submission order, before it takes
//!   the next group. The broker's callbacks put the committed messages into their queues and
//!   dispatch them to consumers from there, so queue dispatch of persistent messages runs on
//!   the store writer thread, and a slow callback delays the next group commit.
//! - [`Store::submit`] never blocks (an unbounded channel), so a callback may submit again
//!   (an ack's delete, a dead-letter move); [`Store::commit`] awaits the callback's result on
//!   the caller's task. [`Store::close`] blocks until the writer thread has ended.
//!
//! # The PostgreSQL back end
//!
//! [`Store::open_postgres`] (`--store postgres://...`) serves the same commands over a
//! PostgreSQL database (`pg::writer`): one transaction per group commit, completions after
//! `COMMIT`, reads between commits, recovery by `GROUP BY` counts; with a [`pg::Fence`]
//! (`--ha jdbc`) every transaction first checks the lease. The broker cannot tell the two
//! apart; only [`Store::file_bytes`] (0) and [`Store::path`] (the URL) differ.
//!
//! # Files
//!
//! `error` (the error types), `group` (the writer thread's commands and group-commit loop,
//! and the dedup window, shared by both back ends), `journal` (the journal file, and what a
//! failed append leaves; its unit tests are in `journal_tests`),
//! `record` (the journal's record format), `file` (the journal file's trait, where tests inject
//! faults), `changes` (the changes on their way to redb, which checkpoints and replay write),
//! `recovery` (open and replay), `tables` (redb's tables), `writer` (the file back end of the
//! group commit: journal records and checkpoints).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;

use bytes::Bytes;

mod changes;
mod confirm;
mod error;
mod file;
#[cfg(test)]
pub(crate) use file::faults;
mod group;
mod journal;
pub mod pg;
mod record;
mod recovery;
pub mod replication;
mod rows;
mod tables;
mod writer;

pub use error::{Cause, StoreError};
use file::WrapFile;
use group::{Cmd, LoadQuery, Read, Submission};

/// How a store is opened; the default is what the node uses, tests add fault injection and
/// smaller limits.
#[derive(Clone)]
pub struct Options {
    /// Wraps the journal file (fault injection).
    pub(crate) wrap_journal: Option<WrapFile>,
    /// Sizes.
    pub(crate) limits: Limits,
    /// Sync the journal on every group commit and redb on every checkpoint (false only for
    /// the temporary store).
    pub(crate) sync: bool,
    /// redb's page cache, in bytes.
    pub cache_bytes: usize,
    /// A replicated group's master: every group commit is streamed and waits for its quorum
    /// ([`replication`]).
    pub replication: Option<replication::ReplicationHook>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            wrap_journal: None,
            limits: Limits::default(),
            sync: true,
            cache_bytes: mq_shared::defaults::STORE_CACHE_BYTES,
            replication: None,
        }
    }
}

impl Options {
    /// Options whose memory follows `memory-usage`: redb's page cache is a quarter of it, and
    /// a checkpoint comes once the journal holds a quarter of it (the changes between two
    /// checkpoints wait in memory), both at least 4 MiB and the journal at most its default.
    pub fn sized_for(memory: u64) -> Options {
        let quarter = (memory / 4).max(4 << 20);
        let mut o = Options {
            cache_bytes: usize::try_from(quarter).unwrap_or(usize::MAX),
            ..Options::default()
        };
        o.limits.journal_checkpoint = o.limits.journal_checkpoint.min(quarter);
        o
    }
}

/// The store's size limits, in bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Ops one group commit gathers before it takes no more submissions (a single
    /// submission larger than this is committed on its own).
    pub(crate) commit_bytes: u64,
    /// Largest journal record payload (its length field is a u32).
    pub(crate) max_payload: u64,
    /// Journal length that forces a checkpoint.
    pub(crate) journal_checkpoint: u64,
    /// Journal length past which writes are refused while checkpoints keep failing.
    pub(crate) journal_hard: u64,
    /// Journal preallocation step.
    pub(crate) chunk: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        use mq_shared::defaults as d;
        Limits {
            commit_bytes: d::MAX_COMMIT_BYTES,
            max_payload: u32::MAX as u64,
            journal_checkpoint: d::JOURNAL_MAX_FILE_LENGTH,
            journal_hard: d::JOURNAL_HARD_LIMIT,
            chunk: 4 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// Journal file size a checkpoint cuts back to: room for a journal that reached the
    /// checkpoint length with one more full group commit, so steady traffic never shrinks
    /// and regrows it; only a burst (one huge commit, checkpoints failing) leaves more.
    pub(crate) fn keep(&self) -> u64 {
        (self.journal_checkpoint + self.commit_bytes).div_ceil(self.chunk) * self.chunk + self.chunk
    }
}

/// Priority levels: rank 0 is priority 9 (delivered first), rank 9 priority 0.
pub const PRIORITIES: usize = 10;
/// A rank of a message's key: its priority rank, plus [`TRANSIENT`] for a non-persistent
/// message spilled from memory (dropped when the store is opened again).
pub const RANKS: usize = 2 * PRIORITIES;
/// Added to the rank of a spilled non-persistent message.
pub const TRANSIENT: u8 = PRIORITIES as u8;
/// The rank of the default priority (4).
pub const DEFAULT_RANK: u8 = 5;

/// One change to the store. Messages are keyed by (queue, rank, sequence): a queue's messages
/// read back in key order come highest priority first, then in the order they were stored.
#[derive(Debug, Clone)]
pub enum Op {
    /// Store a message. With `dedup`, the id is recorded and the put is skipped if the id was
    /// seen before (the outcome says so).
    Put {
        /// Queue name.
        queue: Arc<str>,
        /// Rank of its key: priority rank (0 = priority 9), plus [`TRANSIENT`] for a spilled
        /// non-persistent message.
        rank: u8,
        /// Sequence (unique per node, increasing). 0 asks the writer for the next one when it
        /// commits, so sequences follow commit order; the completion's [`Outcome::first_seq`]
        /// says which it took.
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
        /// Priority rank it was stored with.
        rank: u8,
        /// Sequence.
        seq: u64,
        /// Its stored size in bytes (for the queue's byte count).
        size: u32,
    },
    /// Remove the messages of one rank of a queue stored with a sequence from `from` to `to`
    /// (both included), whatever they are: the part of a queue that lives only in the store.
    Purge {
        /// Queue name.
        queue: Arc<str>,
        /// Rank of their keys.
        rank: u8,
        /// Lowest sequence removed.
        from: u64,
        /// Highest sequence removed.
        to: u64,
    },
    /// Store a scheduled message (a job of the scheduler) under its id, due at `at`; replaces
    /// the job of that id if there is one (a repeat's next time).
    Schedule {
        /// Job id.
        id: Arc<str>,
        /// When it fires next, ms since the epoch.
        at: u64,
        /// Encoded job (`crate::broker::scheduler::Job`).
        data: Bytes,
    },
    /// Remove a scheduled message (its last fire, or deleted).
    Unschedule {
        /// Job id.
        id: Arc<str>,
    },
}

/// A scheduled job read back: when it fires, its id and its encoded record.
#[derive(Debug, Clone)]
pub struct LoadedJob {
    /// When it fires next, ms since the epoch.
    pub at: u64,
    /// Job id.
    pub id: Arc<str>,
    /// Encoded job.
    pub data: Bytes,
}

/// Which scheduled jobs a read asks for.
#[derive(Debug, Clone)]
pub enum JobQuery {
    /// Up to `limit` jobs in (fire time, id) order, strictly after `after` (from the first
    /// without it).
    After {
        /// The last key already seen.
        after: Option<(u64, Arc<str>)>,
        /// Most jobs returned.
        limit: usize,
    },
    /// The job of one id, if stored.
    Id(Arc<str>),
}

/// Completion of a read of scheduled jobs.
pub type JobsDone = Box<dyn FnOnce(Result<Vec<LoadedJob>, StoreError>) + Send>;

impl Op {
    /// Whether it only concerns a spilled non-persistent message (dropped at every start).
    pub fn is_transient(&self) -> bool {
        match self {
            Op::Put { rank, .. } | Op::Delete { rank, .. } => *rank >= TRANSIENT,
            Op::Purge { .. } | Op::Schedule { .. } | Op::Unschedule { .. } => false,
        }
    }
}

/// What a store holds for one queue, per priority rank, read at open without reading the
/// messages themselves (spilled non-persistent messages are gone by then).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueSummary {
    /// Queue name.
    pub name: String,
    /// Messages stored, per priority rank.
    pub counts: [u64; PRIORITIES],
    /// Bytes stored, per priority rank.
    pub bytes: [u64; PRIORITIES],
}

impl QueueSummary {
    /// Adds one (queue, rank) row of counts to `queues`, which lists the queues in the order
    /// their rows come (grouped by queue): a row of a new queue starts its summary.
    pub(crate) fn add_row(queues: &mut Vec<QueueSummary>, row: (&str, usize, u64, u64)) {
        let (name, rank, count, bytes) = row;
        if queues.last().is_none_or(|s| s.name != name) {
            queues.push(QueueSummary {
                name: name.to_string(),
                ..QueueSummary::default()
            });
        }
        if let Some(s) = queues.last_mut() {
            s.counts[rank] += count;
            s.bytes[rank] += bytes;
        }
    }
}

/// What opening the store found: the queues and their sizes, the highest sequence stored,
/// and what recovery needs to flag redeliveries. Messages are loaded later, a window at a time
/// ([`Store::load`]).
#[derive(Debug, Clone, Default)]
pub struct Recovery {
    /// Queues with stored messages.
    pub queues: Vec<QueueSummary>,
    /// Highest sequence in the store (0 for none).
    pub max_seq: u64,
    /// Deliveries recorded at the last clean close, per (queue, sequence).
    pub marks: std::collections::HashMap<(String, u64), u32>,
    /// Every message with a lower sequence may have been delivered before (a crash came after
    /// it was stored): it goes out with `redelivered:true`. Kept across clean closes until
    /// those messages are gone.
    pub redelivered_below: u64,
}

/// A stored message read back: its key and encoded record.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Rank of its key (priority rank, plus [`TRANSIENT`] for a spilled non-persistent one).
    pub rank: u8,
    /// Sequence.
    pub seq: u64,
    /// Encoded message.
    pub data: Bytes,
}

/// Where a read of a queue's messages starts: per priority rank, the lowest sequence wanted
/// (persistent and spilled non-persistent messages of one priority are read together, in
/// sequence order).
pub type Cursor = [u64; PRIORITIES];

/// Completion of a read: the messages found, in key order.
pub type LoadDone = Box<dyn FnOnce(Result<Vec<Loaded>, StoreError>) + Send>;

/// What a committed batch did for one submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Puts skipped because their dedup id was already stored.
    pub duplicates: usize,
    /// The sequence the writer gave the submission's first put that asked for one (seq 0);
    /// its later such puts have the next ones, in order. 0 when there were none.
    pub first_seq: u64,
}

/// Completion callback: runs on the writer thread after the commit (or its failure).
pub type Done = Box<dyn FnOnce(Result<Outcome, StoreError>) + Send>;

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::Sender<Cmd>,
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// The store file, or for the PostgreSQL store its URL (without password).
    path: PathBuf,
    /// Whether the store is PostgreSQL's (no file of its own).
    remote: bool,
    /// The next sequence: taken by the writer for puts that ask for one, and by the broker
    /// for messages it keeps in memory, so one order spans both.
    seq: Arc<AtomicU64>,
    pub(crate) commits: AtomicU64,
    writer: std::sync::Mutex<Option<thread::JoinHandle<()>>>,
    /// Commands sent to the writer thread and not yet done with: a submitter commits its own
    /// group only when this is 0 (see [`Store::submit_here`]).
    queued: std::sync::atomic::AtomicUsize,
    /// The file store's writer, which a submitter may drive while it is idle.
    leader: std::sync::OnceLock<Arc<dyn group::Lead>>,
}

impl Store {
    /// Opens (or creates) the store file and starts the writer thread. Returns the store and
    /// what it holds (queue sizes; the messages are read later, a window at a time).
    pub fn open(path: &Path) -> Result<(Store, Recovery), StoreError> {
        Store::open_with(path, &Options::default())
    }

    /// Opens a store that does not survive a crash (no syncs; the temporary store of
    /// non-persistent messages that do not fit in memory): an existing file is discarded.
    pub fn open_temporary(path: &Path) -> Result<Store, StoreError> {
        for p in [path.to_path_buf(), path.with_extension("journal")] {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(StoreError::Open {
                        path: p.display().to_string(),
                        source: Arc::new(e.into()),
                    });
                }
            }
        }
        let opts = Options {
            sync: false,
            ..Options::default()
        };
        Store::open_with(path, &opts).map(|(s, _)| s)
    }

    /// Like [`Store::open`], with test hooks.
    pub fn open_with(path: &Path, opts: &Options) -> Result<(Store, Recovery), StoreError> {
        let (mut writer, mut recovered) = recovery::open(path, opts)?;
        // The replicated position row is the store's own, never a queue of the broker's.
        recovered
            .queues
            .retain(|q| !replication::is_position(&q.name));
        if opts.replication.is_some() {
            // A replicated group's new master: the old one may have delivered any of these.
            recovered.redelivered_below = recovered.max_seq + 1;
            recovered.marks.clear();
        }
        writer.set_replication(opts.replication.clone());
        // A master's groups wait for their quorum on a thread of their own.
        let pipeline = opts
            .replication
            .clone()
            .map(confirm::Pipeline::start)
            .transpose()
            .map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                source: Arc::new(e.into()),
            })?;
        let (tx, rx) = mpsc::channel::<Cmd>();
        let inner = Arc::new(Inner {
            path: path.to_path_buf(),
            remote: false,
            seq: writer.sequence(),
            commits: AtomicU64::new(0),
            writer: std::sync::Mutex::new(None),
            queued: Default::default(),
            leader: Default::default(),
        });
        let shared = Arc::new(group::Shared::new(writer));
        if pipeline.is_none() {
            // A replicated master's groups wait for their quorum: only its writer commits.
            let _ = inner.leader.set(shared.clone());
        }
        let inner2 = inner.clone();
        let handle = thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || group::run_shared(&shared, rx, &inner2, pipeline))
            .map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                source: Arc::new(e.into()),
            })?;
        if let Ok(mut w) = inner.writer.lock() {
            *w = Some(handle);
        }
        Ok((Store { tx, inner }, recovered))
    }

    /// Opens the PostgreSQL store of `config` (`--store postgres://...`): connects, brings the
    /// schema up to date and recovers, then serves the same commands as the file store on a
    /// writer thread of its own (`pg::writer`). With a `fence`, every transaction first checks
    /// that this member still holds that lease. Blocks until the store is open or failed.
    pub fn open_postgres(
        config: &pg::PgConfig,
        fence: Option<pg::Fence>,
    ) -> Result<(Store, Recovery), StoreError> {
        let label = config.url.to_string();
        let (tx, rx) = mpsc::channel::<Cmd>();
        let inner = Arc::new(Inner {
            path: PathBuf::from(&label),
            remote: true,
            seq: Arc::new(AtomicU64::new(1)),
            commits: AtomicU64::new(0),
            writer: std::sync::Mutex::new(None),
            queued: Default::default(),
            leader: Default::default(),
        });
        let (opened_tx, opened_rx) = mpsc::channel();
        let inner2 = inner.clone();
        let config = config.clone();
        let handle = thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || pg::writer::run(config, fence, rx, inner2, opened_tx))
            .map_err(|e| StoreError::OpenDatabase {
                url: label.clone(),
                cause: Arc::new(e.into()),
            })?;
        let recovered = match opened_rx.recv() {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                let _ = handle.join();
                return Err(e);
            }
            Err(_) => {
                let _ = handle.join();
                return Err(StoreError::Task(format!(
                    "the writer of store {label} ended while opening it"
                )));
            }
        };
        if let Ok(mut w) = inner.writer.lock() {
            *w = Some(handle);
        }
        Ok((Store { tx, inner }, recovered))
    }

    /// Queues ops for the next commit; `done` runs once they are durable (on the writer
    /// thread, or on the thread of a later [`Store::submit_here`] whose commit carries them).
    pub fn submit(&self, ops: Vec<Op>, done: Option<Done>) {
        self.offer(
            Submission {
                ops,
                done,
                sender: None,
            },
            false,
        );
    }

    /// Like [`Store::submit`], but when the writer is idle and nothing submitted before waits
    /// for it, the calling thread commits the group itself (with the acks waiting to ride a
    /// commit) and runs the completions before returning: no hand-off to the writer thread and
    /// back, which is most of a receipted SEND's time. It blocks for one journal sync, so the
    /// caller must hold no lock that a completion may take (a connection's own SEND).
    pub fn submit_here(&self, ops: Vec<Op>, done: Option<Done>) {
        self.offer(
            Submission {
                ops,
                done,
                sender: None,
            },
            true,
        );
    }

    /// [`Store::submit_here`] for a SEND of connection `sender`, which waits for its RECEIPT
    /// before the next: when the last group carried puts of several connections, this one
    /// joins a group gathered for them (at most one commit's time) instead of committing
    /// alone, so that N producers share one sync rather than alternating groups of one and
    /// N-1. The group is committed by the submission that completes it (on its thread) or,
    /// when the others do not come in time, by the writer thread; the completion then runs
    /// there.
    pub fn submit_from(&self, sender: u64, ops: Vec<Op>, done: Option<Done>) {
        self.offer(
            Submission {
                ops,
                done,
                sender: Some(sender),
            },
            true,
        );
    }

    /// Offers a submission to the writer's leader (acks alone are held for the next commit
    /// without waking the writer thread; with `commit`, a group is committed here), else sends
    /// it to the writer thread.
    fn offer(&self, mut s: Submission, commit: bool) {
        if let Some(lead) = self.inner.leader.get() {
            match lead.lead(s, &self.inner, commit) {
                group::Led::Taken { wake } => {
                    if wake {
                        // Not counted as queued: a wake-up orders nothing, so the next
                        // submitter may still lead. Refused only once the writer is gone.
                        let _ = self.tx.send(Cmd::Wake);
                    }
                    return;
                }
                group::Led::Declined(back) => s = back,
            }
        }
        // Refused, its completion has been told.
        let _ = self.send(Cmd::Submit(s));
    }

    /// Sends a command to the writer thread, counted as queued until it is done with. A
    /// submission the closed store refuses fails with [`StoreError::Closed`]; `Err` gives
    /// back any other command.
    fn send(&self, cmd: Cmd) -> Result<(), StoreError> {
        self.inner.queued.fetch_add(1, Ordering::SeqCst);
        match self.tx.send(cmd) {
            Ok(()) => Ok(()),
            Err(mpsc::SendError(cmd)) => {
                self.inner.queued.fetch_sub(1, Ordering::SeqCst);
                if let Cmd::Submit(Submission {
                    done: Some(done), ..
                }) = cmd
                {
                    done(Err(StoreError::Closed));
                }
                Err(StoreError::Closed)
            }
        }
    }

    /// Reads up to `limit` messages (and about `max_bytes`) of `queue`, in key order (rank,
    /// then sequence), starting per priority at `from[priority rank]`; `done` runs on the
    /// writer thread with what the store holds then (committed, checkpointed or not). Reads are
    /// served between group commits, after the completions of every commit before them. Fails
    /// (without running `done`) when the store is closed.
    pub fn load(
        &self,
        queue: Arc<str>,
        from: Cursor,
        limit: usize,
        max_bytes: u64,
        done: LoadDone,
    ) -> Result<(), StoreError> {
        self.send(Cmd::Read(Read::Load(
            LoadQuery {
                queue,
                from,
                limit,
                max_bytes,
            },
            done,
        )))
    }

    /// Reads scheduled jobs (see [`JobQuery`]); `done` runs on the writer thread, ordered with
    /// the commits' completions like [`Store::load`].
    pub fn load_jobs(&self, query: JobQuery, done: JobsDone) -> Result<(), StoreError> {
        self.send(Cmd::Read(Read::Jobs(query, done)))
    }

    /// [`Store::load_jobs`], awaited.
    pub async fn read_jobs(&self, query: JobQuery) -> Result<Vec<LoadedJob>, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.load_jobs(
            query,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        )?;
        rx.await.unwrap_or(Err(StoreError::Closed))
    }

    /// [`Store::load`], awaited.
    pub async fn read(
        &self,
        queue: Arc<str>,
        from: Cursor,
        limit: usize,
        max_bytes: u64,
    ) -> Result<Vec<Loaded>, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.load(
            queue,
            from,
            limit,
            max_bytes,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        )?;
        rx.await.unwrap_or(Err(StoreError::Closed))
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

    /// The store's sequence counter (see [`Op::Put`]): the broker takes the sequences of
    /// messages that are not stored, or stored with one it chose, from it too.
    pub fn sequence(&self) -> Arc<AtomicU64> {
        self.inner.seq.clone()
    }

    /// Write transactions committed since open.
    pub fn commits(&self) -> u64 {
        self.inner.commits.load(Ordering::Relaxed)
    }

    /// Size of the store on disk in bytes (redb file and journal; 0 for the PostgreSQL store,
    /// whose files are the server's).
    pub fn file_bytes(&self) -> u64 {
        if self.inner.remote {
            return 0;
        }
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        size(&self.inner.path) + size(&self.inner.path.with_extension("journal"))
    }

    /// Path of the store file (the URL, without password, of the PostgreSQL store).
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
        let _ = self.send(Cmd::Close(delivered));
        let Store { tx, inner } = self;
        drop(tx);
        let handle = inner.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
impl Limits {
    /// Small limits for tests: 4 KiB chunks, 8 KiB group commits, a checkpoint at 16 KiB of
    /// journal, and writes refused past `journal_hard`.
    pub(crate) fn small(journal_hard: u64) -> Limits {
        Limits {
            commit_bytes: 8 * 1024,
            max_payload: u32::MAX as u64,
            journal_checkpoint: 16 * 1024,
            journal_hard,
            chunk: 4096,
        }
    }
}

#[cfg(test)]
mod tests;
