//! redb's tables and the reads and writes of them that are not the writer's hot path.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::{Op, Recovered};
use crate::store::error::Cause;

/// (queue name, sequence) → encoded [`crate::broker::message::Message`].
pub(super) const MESSAGES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("messages");
/// Message id → dedup counter of the commit that stored it.
pub(super) const DEDUP: TableDefinition<&str, u64> = TableDefinition::new("dedup");
/// (queue name, sequence) → deliveries, written at a clean close.
pub(super) const DELIVERED: TableDefinition<(&str, u64), u32> = TableDefinition::new("delivered");
/// `"clean"` and `"lsn"`.
pub(super) const STATE: TableDefinition<&str, u64> = TableDefinition::new("state");
/// Key in `state`: present while the store is closed cleanly.
pub(super) const CLEAN: &str = "clean";
/// Key in `state`: LSN of the last journal record redb holds durably.
pub(super) const LSN: &str = "lsn";

/// Creates the tables that do not exist yet.
pub(super) fn create_tables(db: &Database) -> Result<(), Cause> {
    let mut w = db.begin_write()?;
    w.set_quick_repair(true);
    w.open_table(MESSAGES)?;
    w.open_table(DEDUP)?;
    w.open_table(DELIVERED)?;
    w.open_table(STATE)?;
    w.commit()?;
    Ok(())
}

/// Marks the store as in use: a crash before the next clean close must show, and the delivery
/// marks of the last clean close have been read.
pub(super) fn mark_in_use(db: &Database) -> Result<(), Cause> {
    let mut w = db.begin_write()?;
    w.set_quick_repair(true);
    w.open_table(STATE)?.remove(CLEAN)?;
    w.open_table(DELIVERED)?.retain(|_, _| false)?;
    w.commit()?;
    Ok(())
}

/// Every stored message, ordered by queue then sequence.
pub(super) fn read_all(db: &Database) -> Result<Vec<Recovered>, Cause> {
    let r = db.begin_read()?;
    let clean = r.open_table(STATE)?.get(CLEAN)?.is_some();
    let marks = r.open_table(DELIVERED)?;
    let t = r.open_table(MESSAGES)?;
    let mut out = Vec::with_capacity(t.len().unwrap_or(0) as usize);
    for row in t.iter()? {
        let (k, v) = row?;
        let (queue, seq) = k.value();
        let marked = marks.get((queue, seq))?.map(|g| g.value()).unwrap_or(0);
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
pub(super) struct DedupWindow {
    pub(super) order: VecDeque<(Arc<str>, u64)>,
    pub(super) set: HashSet<Arc<str>>,
}

/// The dedup window as redb holds it.
pub(super) fn read_dedup(db: &Database) -> Result<DedupWindow, Cause> {
    let r = db.begin_read()?;
    let t = r.open_table(DEDUP)?;
    let mut rows: Vec<(Arc<str>, u64)> = Vec::new();
    for row in t.iter()? {
        let (k, v) = row?;
        rows.push((Arc::from(k.value()), v.value()));
    }
    rows.sort_by_key(|(_, n)| *n);
    let set = rows.iter().map(|(k, _)| k.clone()).collect();
    Ok(DedupWindow {
        order: rows.into(),
        set,
    })
}

/// LSN of the last journal record redb holds (0 for none).
pub(super) fn read_lsn(db: &Database) -> Result<u64, Cause> {
    let r = db.begin_read()?;
    let t = r.open_table(STATE)?;
    Ok(t.get(LSN)?.map_or(0, |g| g.value()))
}

/// Applies journaled ops to redb inside a write transaction, as recovery replays them;
/// `counter` is the next dedup counter and moves past every id recorded.
pub(super) fn apply_ops<'a>(
    w: &redb::WriteTransaction,
    ops: impl IntoIterator<Item = &'a Op>,
    counter: &mut u64,
) -> Result<usize, Cause> {
    let mut msgs = w.open_table(MESSAGES)?;
    let mut ids = w.open_table(DEDUP)?;
    let mut n = 0;
    for op in ops {
        n += 1;
        match op {
            Op::Put {
                queue,
                seq,
                data,
                dedup,
            } => {
                if let Some(id) = dedup {
                    ids.insert(&**id, *counter)?;
                    *counter += 1;
                }
                msgs.insert((&**queue, *seq), &data[..])?;
            }
            Op::Delete { queue, seq } => {
                msgs.remove((&**queue, *seq))?;
            }
        }
    }
    Ok(n)
}

/// The next dedup counter: one past the highest in redb.
pub(super) fn next_dedup_counter(w: &redb::WriteTransaction) -> Result<u64, Cause> {
    let ids = w.open_table(DEDUP)?;
    let mut max = None;
    for row in ids.iter()? {
        let (_, v) = row?;
        max = max.max(Some(v.value()));
    }
    Ok(max.map_or(0, |n| n + 1))
}

/// Records a clean close with the delivery marks of the messages still stored.
pub(super) fn mark_clean(db: &Database, marks: &[(Arc<str>, u64, u32)]) -> Result<(), Cause> {
    tracing::debug!(marks = marks.len(), "recording a clean close");
    let mut w = db.begin_write()?;
    w.set_quick_repair(true);
    {
        let msgs = w.open_table(MESSAGES)?;
        let mut d = w.open_table(DELIVERED)?;
        for (q, seq, n) in marks {
            if msgs.get((&**q, *seq))?.is_some() {
                d.insert((&**q, *seq), *n)?;
            }
        }
        w.open_table(STATE)?.insert(CLEAN, 1)?;
    }
    w.commit()?;
    Ok(())
}
