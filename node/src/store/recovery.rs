//! Opening the store: redb, then the journal records written after redb's last checkpoint
//! (an unclean stop) replayed into redb, then every stored message read back.

use std::path::Path;
use std::sync::Arc;

use redb::Database;

use super::error::{Cause, StoreError};
use super::journal::{self, Journal};
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
    // redb first; then the journal starts empty.
    let journal_path = path.with_extension("journal");
    let (mut journal, records) = Journal::open_with(&journal_path, opts.wrap_journal.as_ref())?;
    let last_lsn = replay(&db, records)?;
    journal.reset()?;
    let recovered = tables::read_all(&db)?;
    // From here on the store is in use: a crash before the next clean close must show.
    tables::mark_in_use(&db)?;
    let dedup = tables::read_dedup(&db)?;
    Ok((Writer::new(db, journal, dedup, last_lsn + 1), recovered))
}

/// Applies journal records written after the last checkpoint to redb and makes them durable
/// there, so the journal can be emptied. Returns the last LSN now in redb.
fn replay(db: &Database, records: Vec<journal::Record>) -> Result<u64, Cause> {
    let checkpoint = tables::read_lsn(db)?;
    let todo: Vec<journal::Record> = records.into_iter().filter(|r| r.lsn > checkpoint).collect();
    let Some(last) = todo.last().map(|r| r.lsn) else {
        return Ok(checkpoint);
    };
    let mut w = db.begin_write()?;
    w.set_quick_repair(true);
    let mut counter = tables::next_dedup_counter(&w)?;
    let ops = tables::apply_ops(&w, todo.iter().flat_map(|r| &r.ops), &mut counter)?;
    w.open_table(STATE)?.insert(LSN, last)?;
    w.commit()?;
    tracing::info!(
        records = todo.len(),
        ops,
        "replayed the journal after an unclean stop"
    );
    Ok(last)
}
