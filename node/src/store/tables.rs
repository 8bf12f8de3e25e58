//! redb's tables and the reads and writes of them that are not the writer's hot path.
//!
//! ```text
//! msgs      (queue, rank, seq) → encoded message        read back in key order: a queue's
//!                                                       messages by priority, then as stored
//! counts    (queue, rank) → (messages, bytes)            kept with every change, so opening a
//!                                                       store reads no message
//! dedup     message id → dedup counter                   retried forwards dropped by id
//! delivered (queue, seq) → deliveries                    written at a clean close
//! sched     (fire time, job id) → encoded job           scheduled messages in fire-time order
//! sched_ids job id → fire time                          finds a job's row by its id
//! state     "clean", "lsn" (last journal record redb holds), "seq" (highest sequence stored),
//!           "redelivered_below" (messages below it may have been delivered before a crash)
//! ```
//!
//! `messages` ((queue, seq) → message) is the table of the first format; a store that has one
//! is moved to `msgs` when it is opened.

use std::collections::HashMap;
use std::sync::Arc;

use redb::{
    Database, ReadableDatabase, ReadableTable, TableDefinition, TableHandle, WriteTransaction,
};

use super::group::DedupWindow;
use super::{DEFAULT_RANK, PRIORITIES, QueueSummary, Recovery, TRANSIENT};
use crate::store::error::Cause;

/// (queue name, rank, sequence) → encoded [`crate::broker::message::Message`].
pub(super) const MSGS: TableDefinition<(&str, u8, u64), &[u8]> = TableDefinition::new("msgs");
/// (queue name, rank) → (messages, bytes) stored.
pub(super) const COUNTS: TableDefinition<(&str, u8), (u64, u64)> = TableDefinition::new("counts");
/// The first format's (queue name, sequence) → message table, moved to `msgs` at open.
const MESSAGES_V1: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("messages");
/// Message id → dedup counter of the commit that stored it.
pub(super) const DEDUP: TableDefinition<&str, u64> = TableDefinition::new("dedup");
/// (queue name, sequence) → deliveries, written at a clean close.
pub(super) const DELIVERED: TableDefinition<(&str, u64), u32> = TableDefinition::new("delivered");
/// (fire time ms, job id) → encoded scheduled job.
pub(super) const SCHED: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new("sched");
/// Job id → its fire time (the key of its row in `sched`).
pub(super) const SCHED_IDS: TableDefinition<&str, u64> = TableDefinition::new("sched_ids");
/// `"clean"`, `"lsn"` and `"seq"`.
pub(super) const STATE: TableDefinition<&str, u64> = TableDefinition::new("state");
/// Key in `state`: present while the store is closed cleanly.
pub(super) const CLEAN: &str = "clean";
/// Key in `state`: LSN of the last journal record redb holds durably.
pub(super) const LSN: &str = "lsn";
/// Key in `state`: the highest sequence ever stored.
pub(super) const SEQ: &str = "seq";
/// Key in `state`: messages below this sequence may have been delivered before a crash.
pub(super) const REDELIVERED_BELOW: &str = "redelivered_below";

/// Creates the tables that do not exist yet, and moves a first-format store's messages.
pub(super) fn create_tables(db: &Database) -> Result<(), Cause> {
    let mut w = db.begin_write()?;
    w.set_quick_repair(true);
    w.open_table(MSGS)?;
    w.open_table(COUNTS)?;
    w.open_table(DEDUP)?;
    w.open_table(DELIVERED)?;
    w.open_table(STATE)?;
    w.open_table(SCHED)?;
    w.open_table(SCHED_IDS)?;
    w.commit()?;
    migrate_v1(db)
}

/// Moves the rows of a first-format `messages` table into `msgs` (all with the default
/// priority's rank: that format delivered in stored order), a batch per commit, then drops it.
fn migrate_v1(db: &Database) -> Result<(), Cause> {
    let exists = {
        let r = db.begin_read()?;
        r.list_tables()?.any(|t| t.name() == MESSAGES_V1.name())
    };
    if !exists {
        return Ok(());
    }
    let mut moved = 0usize;
    loop {
        let mut w = db.begin_write()?;
        w.set_quick_repair(true);
        let mut batch = Vec::new();
        {
            let old = w.open_table(MESSAGES_V1)?;
            for row in old.iter()?.take(10_000) {
                let (k, v) = row?;
                let (q, seq) = k.value();
                batch.push((q.to_string(), seq, v.value().to_vec()));
            }
        }
        if batch.is_empty() {
            w.delete_table(MESSAGES_V1)?;
            w.commit()?;
            break;
        }
        {
            let mut old = w.open_table(MESSAGES_V1)?;
            let mut msgs = w.open_table(MSGS)?;
            let mut counts = w.open_table(COUNTS)?;
            let mut state = w.open_table(STATE)?;
            let mut max_seq = state.get(SEQ)?.map_or(0, |g| g.value());
            for (q, seq, data) in &batch {
                // The first format had no priorities: every message keeps one order.
                let rank = DEFAULT_RANK;
                msgs.insert((q.as_str(), rank, *seq), &data[..])?;
                bump(&mut counts, q, rank, 1, data.len() as i64)?;
                old.remove((q.as_str(), *seq))?;
                max_seq = max_seq.max(*seq);
            }
            state.insert(SEQ, max_seq)?;
        }
        w.commit()?;
        moved += batch.len();
    }
    tracing::info!(
        messages = moved,
        "moved the store to the format with priorities"
    );
    Ok(())
}

/// Adds `n` messages and `bytes` to the count of (queue, rank), removing the row at zero.
pub(super) fn bump(
    counts: &mut redb::Table<'_, (&str, u8), (u64, u64)>,
    queue: &str,
    rank: u8,
    n: i64,
    bytes: i64,
) -> Result<(), Cause> {
    let (c, b) = counts.get((queue, rank))?.map_or((0, 0), |g| g.value());
    let c = c.saturating_add_signed(n);
    let b = b.saturating_add_signed(bytes);
    if c == 0 {
        counts.remove((queue, rank))?;
    } else {
        counts.insert((queue, rank), (c, b))?;
    }
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

/// What recovery needs, without reading a message: per-queue counts, the highest sequence,
/// the delivery marks of the last clean close, and whether it was clean.
pub(super) fn read_recovery(db: &Database) -> Result<Recovery, Cause> {
    let r = db.begin_read()?;
    let state = r.open_table(STATE)?;
    let clean = state.get(CLEAN)?.is_some();
    let max_seq = state.get(SEQ)?.map_or(0, |g| g.value());
    // After a crash every stored message may have been delivered; after a clean close, those
    // the last crash left stay flagged.
    let redelivered_below = if clean {
        state.get(REDELIVERED_BELOW)?.map_or(0, |g| g.value())
    } else {
        max_seq + 1
    };
    let mut queues: Vec<QueueSummary> = Vec::new();
    for row in r.open_table(COUNTS)?.iter()? {
        let (k, v) = row?;
        let (q, rank) = k.value();
        let (c, b) = v.value();
        if rank >= TRANSIENT {
            // Spilled non-persistent messages do not outlive their node (dropped at open).
            continue;
        }
        let rank = (rank as usize).min(PRIORITIES - 1);
        QueueSummary::add_row(&mut queues, (q, rank, c, b));
    }
    let mut marks = HashMap::new();
    for row in r.open_table(DELIVERED)?.iter()? {
        let (k, v) = row?;
        let (q, seq) = k.value();
        marks.insert((q.to_string(), seq), v.value());
    }
    Ok(Recovery {
        queues,
        max_seq,
        marks,
        redelivered_below,
    })
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
    Ok(DedupWindow::new(rows.into()))
}

/// LSN of the last journal record redb holds (0 for none).
pub(super) fn read_lsn(db: &Database) -> Result<u64, Cause> {
    let r = db.begin_read()?;
    let t = r.open_table(STATE)?;
    Ok(t.get(LSN)?.map_or(0, |g| g.value()))
}

/// Drops every spilled non-persistent message (they do not survive a restart); returns how
/// many.
pub(super) fn drop_transient(db: &Database) -> Result<usize, Cause> {
    let queues: Vec<(String, u8)> = {
        let r = db.begin_read()?;
        let mut v = Vec::new();
        for row in r.open_table(COUNTS)?.iter()? {
            let (k, _) = row?;
            let (q, rank) = k.value();
            if rank >= TRANSIENT {
                v.push((q.to_string(), rank));
            }
        }
        v
    };
    if queues.is_empty() {
        return Ok(0);
    }
    let mut w = db.begin_write()?;
    w.set_quick_repair(true);
    let mut n = 0;
    {
        let mut msgs = w.open_table(MSGS)?;
        let mut counts = w.open_table(COUNTS)?;
        for (q, rank) in &queues {
            let gone: Vec<u64> = msgs
                .range((q.as_str(), *rank, 0)..=(q.as_str(), *rank, u64::MAX))?
                .map(|row| row.map(|(k, _)| k.value().2))
                .collect::<Result<_, _>>()?;
            for seq in &gone {
                msgs.remove((q.as_str(), *rank, *seq))?;
            }
            n += gone.len();
            counts.remove((q.as_str(), *rank))?;
        }
    }
    w.commit()?;
    Ok(n)
}

/// Removes the messages of (`queue`, `rank`) with a sequence from `from` to `to`, keeping the
/// counts.
pub(super) fn purge(
    w: &WriteTransaction,
    queue: &str,
    rank: u8,
    from: u64,
    to: u64,
) -> Result<usize, Cause> {
    let mut msgs = w.open_table(MSGS)?;
    let mut counts = w.open_table(COUNTS)?;
    let mut gone: Vec<(u64, usize)> = Vec::new();
    for row in msgs.range((queue, rank, from)..=(queue, rank, to))? {
        let (k, v) = row?;
        gone.push((k.value().2, v.value().len()));
    }
    for (seq, _) in &gone {
        msgs.remove((queue, rank, *seq))?;
    }
    let bytes: usize = gone.iter().map(|(_, l)| l).sum();
    bump(
        &mut counts,
        queue,
        rank,
        -(gone.len() as i64),
        -(bytes as i64),
    )?;
    Ok(gone.len())
}

/// Stores (`Some`) or removes (`None`) the scheduled job `id`, replacing its earlier row.
pub(super) fn put_job(
    w: &WriteTransaction,
    id: &str,
    job: Option<(u64, &[u8])>,
) -> Result<(), Cause> {
    let mut rows = w.open_table(SCHED)?;
    let mut ids = w.open_table(SCHED_IDS)?;
    let old = ids.remove(id)?.map(|g| g.value());
    if let Some(at) = old {
        rows.remove((at, id))?;
    }
    if let Some((at, data)) = job {
        rows.insert((at, id), data)?;
        ids.insert(id, at)?;
    }
    Ok(())
}

/// The next dedup counter: one past the highest in redb.
pub(super) fn next_dedup_counter(db: &Database) -> Result<u64, Cause> {
    let ids = db.begin_read()?.open_table(DEDUP)?;
    let mut max = None;
    for row in ids.iter()? {
        let (_, v) = row?;
        max = max.max(Some(v.value()));
    }
    Ok(max.map_or(0, |n| n + 1))
}

/// Records a clean close with the delivery marks (queue, sequence, deliveries) of messages
/// delivered and not acknowledged, and the sequence below which every message may have been
/// delivered (see [`Recovery::redelivered_below`]).
pub(super) fn mark_clean(
    db: &Database,
    marks: &[(Arc<str>, u64, u32)],
    redelivered_below: u64,
) -> Result<(), Cause> {
    tracing::debug!(marks = marks.len(), "recording a clean close");
    let mut w = db.begin_write()?;
    w.set_quick_repair(true);
    {
        let mut d = w.open_table(DELIVERED)?;
        for (q, seq, n) in marks {
            d.insert((&**q, *seq), *n)?;
        }
        let mut state = w.open_table(STATE)?;
        state.insert(CLEAN, 1)?;
        state.insert(REDELIVERED_BELOW, redelivered_below)?;
    }
    w.commit()?;
    Ok(())
}
