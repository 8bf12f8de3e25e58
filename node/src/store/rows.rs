//! An op seen as the rows it changes: a message row (queue, rank, sequence) stored or removed,
//! a range of one rank's message rows removed, or a scheduled job's row stored or removed. The
//! journal's encoding, the overlay of changes on their way to redb, the PostgreSQL writer and
//! replication's position row read ops through this one view.

use std::sync::Arc;

use bytes::Bytes;

use super::Op;

/// The key of a message row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RowKey<'a> {
    /// Queue name.
    pub(crate) queue: &'a Arc<str>,
    /// Rank (priority rank, plus `TRANSIENT` for a spilled non-persistent message).
    pub(crate) rank: u8,
    /// Sequence.
    pub(crate) seq: u64,
}

impl RowKey<'_> {
    /// The key as an owned (queue, rank, sequence).
    pub(crate) fn owned(self) -> (Arc<str>, u8, u64) {
        (self.queue.clone(), self.rank, self.seq)
    }
}

/// What one op changes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RowChange<'a> {
    /// A message row stored: its key, encoded message and the id to de-duplicate on.
    Put(RowKey<'a>, &'a Bytes, Option<&'a Arc<str>>),
    /// A message row removed: its key and stored size.
    Delete(RowKey<'a>, u32),
    /// The rows of one rank from the key's sequence to the second one (both included) removed.
    Purge(RowKey<'a>, u64),
    /// A job's row by id: stored with its fire time and record, or removed (`None`).
    Job(&'a Arc<str>, Option<(u64, &'a Bytes)>),
}

impl Op {
    /// The rows this op changes.
    pub(crate) fn row(&self) -> RowChange<'_> {
        let key = |queue, rank: &u8, seq: &u64| RowKey {
            queue,
            rank: *rank,
            seq: *seq,
        };
        match self {
            Op::Put {
                queue,
                rank,
                seq,
                data,
                dedup,
            } => RowChange::Put(key(queue, rank, seq), data, dedup.as_ref()),
            Op::Delete {
                queue,
                rank,
                seq,
                size,
            } => RowChange::Delete(key(queue, rank, seq), *size),
            Op::Purge {
                queue,
                rank,
                from,
                to,
            } => RowChange::Purge(key(queue, rank, from), *to),
            Op::Schedule { id, at, data } => RowChange::Job(id, Some((*at, data))),
            Op::Unschedule { id } => RowChange::Job(id, None),
        }
    }
}
