//! Opening the store: redb, then the journal records written after redb's last checkpoint
//! (an unclean stop) replayed into redb as they are read, then every stored message read back.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, WriteTransaction};

use super::error::{Cause, StoreError};
use super::journal::Journal;
use super::record::{self, Record};
use super::tables::{self, LSN, STATE};
use super::writer::Writer;
use super::{Options, Recovered};

/// Opens (or creates) the store at `path` and recovers it: the writer's state and every
/// stored message, ordered by queue then sequence.
pub(super) fn open(path: &Path, opts: &Options) -> Result<(Writer, Vec<Recovered>), StoreError> {
    let open_err = |e: Cause| StoreError::Open {
        path: path.display().to_string(),
        source: Arc::new(e),
    };
    let db = match Database::builder().create(path) {
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

fn recover(db: Database, path: &Path, opts: &Options) -> Result<(Writer, Vec<Recovered>), Cause> {
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
    let recovered = tables::read_all(&db)?;
    // From here on the store is in use: a crash before the next clean close must show.
    tables::mark_in_use(&db)?;
    let dedup = tables::read_dedup(&db)?;
    let writer = Writer::new(db, journal, dedup, last_lsn + 1, opts.limits);
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

/// Applies journal records written after the last checkpoint to redb as they are read, in
/// durable commits of about `chunk` bytes each, every one recording the last LSN it holds (a
/// crash during replay resumes after it).
struct Replay<'a> {
    db: &'a Database,
    /// redb's LSN before replay: records at or below it are there already.
    checkpoint: u64,
    chunk: u64,
    txn: Option<WriteTransaction>,
    /// Bytes of records in `txn`.
    in_txn: u64,
    /// Next dedup counter (read from redb before the first record applied).
    counter: Option<u64>,
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
            txn: None,
            in_txn: 0,
            counter: None,
            last: checkpoint,
            records: 0,
            ops: 0,
        })
    }

    fn apply(&mut self, rec: Record) -> Result<(), Cause> {
        if rec.lsn <= self.checkpoint {
            return Ok(());
        }
        let txn = match self.txn.take() {
            Some(t) => t,
            None => {
                let mut t = self.db.begin_write()?;
                t.set_quick_repair(true);
                t
            }
        };
        let mut counter = match self.counter {
            Some(c) => c,
            None => tables::next_dedup_counter(&txn)?,
        };
        self.ops += tables::apply_ops(&txn, &rec.ops, &mut counter)?;
        self.counter = Some(counter);
        self.in_txn += record::record_len(&rec.ops);
        self.last = rec.lsn;
        self.records += 1;
        self.txn = Some(txn);
        if self.in_txn >= self.chunk {
            self.commit()?;
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), Cause> {
        if let Some(txn) = self.txn.take() {
            txn.open_table(STATE)?.insert(LSN, self.last)?;
            txn.commit()?;
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
