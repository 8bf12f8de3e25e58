//! Opening the store: redb, then the journal records written after redb's last checkpoint
//! (an unclean stop) replayed into redb as they are read. No message is read: recovery
//! returns each queue's counts (kept in redb with every change), so opening takes the same
//! time whatever the backlog; messages are read later, a window at a time.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableTable};

use super::changes::Changes;
use super::error::{Cause, StoreError};
use super::group::DedupChange;
use super::journal::Journal;
use super::record::{self, Record};
use super::tables::{self, LSN, SEQ, STATE};
use super::writer::Writer;
use super::{Op, Options, Recovery};

/// Opens (or creates) the store at `path` and recovers it: the writer's state and every
/// stored message, ordered by queue then sequence.
pub(super) fn open(path: &Path, opts: &Options) -> Result<(Writer, Recovery), StoreError> {
    let open_err = |e: Cause| StoreError::Open {
        path: path.display().to_string(),
        source: Arc::new(e),
    };
    let db = match Database::builder()
        .set_cache_size(opts.cache_bytes)
        .create(path)
    {
        Ok(db) => db,
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
            return Err(StoreError::AlreadyOpen {
                path: path.display().to_string(),
            });
        }
        Err(e) => return Err(open_err(e.into())),
    };
    recover(db, path, opts).map_err(open_err)
}

fn recover(db: Database, path: &Path, opts: &Options) -> Result<(Writer, Recovery), Cause> {
    // Make sure the tables exist, with quick-repair on for every later commit.
    tables::create_tables(&db)?;
    // Records the journal holds beyond redb's last checkpoint (an unclean stop) go into
    // redb first, one at a time as they are read; then the journal starts empty.
    let journal_path = path.with_extension("journal");
    let mut replay = Replay::new(&db, opts.limits.journal_checkpoint)?;
    let mut journal = Journal::open(
        &journal_path,
        opts.wrap_journal.as_ref(),
        opts.limits,
        |rec| replay.apply(rec),
    )?;
    let last_lsn = replay.finish()?;
    // A new store file or journal must survive a crash: their directory entries too.
    sync_dir(path)?;
    journal.reset();
    let dropped = tables::drop_transient(&db)?;
    if dropped > 0 {
        tracing::info!(
            messages = dropped,
            "dropped non-persistent messages spilled before the restart"
        );
    }
    let recovered = tables::read_recovery(&db)?;
    // From here on the store is in use: a crash before the next clean close must show.
    tables::mark_in_use(&db)?;
    let dedup = tables::read_dedup(&db)?;
    journal.set_sync(opts.sync);
    let writer = Writer::new(
        db,
        journal,
        dedup,
        last_lsn + 1,
        &recovered,
        opts.limits,
        opts.sync,
    );
    Ok((writer, recovered))
}

/// `fsync` of the directory holding the store files.
fn sync_dir(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()
}

/// Applies journal records written after the last checkpoint to redb as they are read: each
/// goes into the changes on their way to redb (as the writer's commits do), which are written
/// in durable commits of about `chunk` bytes of records each, every one recording the last
/// LSN it holds (a crash during replay resumes after it).
struct Replay<'a> {
    db: &'a Database,
    /// redb's LSN before replay: records at or below it are there already.
    checkpoint: u64,
    chunk: u64,
    changes: Changes,
    /// Bytes of records in `changes`.
    in_txn: u64,
    /// Next dedup counter (read from redb before the first record applied).
    counter: Option<u64>,
    /// Highest sequence stored, past what redb's state says.
    max_seq: u64,
    last: u64,
    records: usize,
    ops: usize,
}

impl<'a> Replay<'a> {
    fn new(db: &'a Database, chunk: u64) -> Result<Replay<'a>, Cause> {
        let checkpoint = tables::read_lsn(db)?;
        Ok(Replay {
            db,
            checkpoint,
            chunk,
            changes: Changes::default(),
            in_txn: 0,
            counter: None,
            max_seq: 0,
            last: checkpoint,
            records: 0,
            ops: 0,
        })
    }

    fn apply(&mut self, rec: Record) -> Result<(), Cause> {
        if rec.lsn <= self.checkpoint {
            return Ok(());
        }
        let mut counter = match self.counter {
            Some(c) => c,
            None => tables::next_dedup_counter(self.db)?,
        };
        // Every id the record holds is a new one: the writer journals no duplicate.
        let mut dedup = DedupChange::default();
        for op in &rec.ops {
            if let Op::Put {
                dedup: Some(id), ..
            } = op
            {
                dedup.added.push((id.clone(), counter));
                counter += 1;
            }
        }
        self.changes.apply(&rec.ops, &dedup, &mut self.max_seq);
        self.ops += rec.ops.len();
        self.counter = Some(counter);
        self.in_txn += record::record_len(&rec.ops);
        self.last = rec.lsn;
        self.records += 1;
        if self.in_txn >= self.chunk {
            self.commit()?;
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), Cause> {
        if self.in_txn > 0 {
            let mut txn = self.db.begin_write()?;
            txn.set_quick_repair(true);
            self.changes.write(&txn)?;
            let mut state = txn.open_table(STATE)?;
            state.insert(LSN, self.last)?;
            let seq = state.get(SEQ)?.map_or(0, |g| g.value());
            if self.max_seq > seq {
                state.insert(SEQ, self.max_seq)?;
            }
            drop(state);
            txn.commit()?;
            self.changes.clear();
            self.in_txn = 0;
        }
        Ok(())
    }

    /// Commits what is left; returns the last LSN redb now holds.
    fn finish(mut self) -> Result<u64, Cause> {
        self.commit()?;
        if self.records > 0 {
            tracing::info!(
                records = self.records,
                ops = self.ops,
                "replayed the journal after an unclean stop"
            );
        }
        Ok(self.last)
    }
}
