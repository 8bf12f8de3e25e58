//! What the store does for a replicated group (`--ha replicated`): the hook through which a
//! master's writer thread streams each group commit and waits for its quorum, the stream
//! position kept in the store itself, and the snapshot a far-behind replica starts from.
//!
//! # The position
//!
//! Every member keeps `(epoch, position)` of the last replicated group it holds in one row of
//! the ordinary `msgs` table, under the reserved queue [`POSITION_QUEUE`] (never a broker
//! queue: [`super::Store::open_with`] leaves it out of the recovered queues). A master adds
//! that row to every group commit it streams ([`Replication::stamp`]), so the row travels in
//! the same journal record as the ops: on the master and on every replica that applied the
//! record, the position is exactly as durable as the data. The member with the latest
//! position holds every group any other member holds from the same history.
//!
//! # The hook
//!
//! On a master the writer thread calls, for each group commit:
//! 1. [`Replication::stamp`] with the ops about to be journaled, before the journal write
//!    (so the replicas' writes overlap the local one); it returns the position row to add;
//! 2. [`Replication::abandon`] if the journal write then failed;
//! 3. [`Replication::confirmable`] once the record is synced, and again whenever the hook's
//!    progress callback says it may have grown, while the writer goes on with the next
//!    groups: a group's completions, and with them every RECEIPT, run only once the quorum
//!    that `sync` names holds its position (and are refused when this member may no longer
//!    confirm). See `confirm.rs` for which thread runs them.
//!
//! The writer serves the snapshots replicas ask for between groups, and while it waits for
//! room in the pipeline (a replica catching up may be the very quorum a group waits for).
//!
//! # Snapshots
//!
//! [`Snapshot`] is a redb read transaction taken right after a checkpoint, so it holds every
//! group up to the position its row says, while the writer goes on. [`read_snapshot`] streams
//! its rows in chunks; [`install_snapshot`] writes them into a new store file that replaces
//! the replica's own once complete.

use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use redb::{Database, ReadTransaction, ReadableTable};

use super::changes::Changes;
use super::error::Cause;
use super::group::DedupChange;
use super::record;
use super::rows::RowChange;
use super::tables::{self, DEDUP, MSGS, SCHED, SEQ, STATE};
use super::{Op, StoreError, TRANSIENT};

/// The reserved queue whose one row holds this member's `(epoch, position)`.
pub const POSITION_QUEUE: &str = "mq.durable/replication-position";
/// The rank and sequence of that row.
const POSITION_KEY: (u8, u64) = (0, 1);

/// Whether a queue name is the reserved position row's.
pub fn is_position(queue: &str) -> bool {
    queue == POSITION_QUEUE
}

/// Where a member stands in the replicated stream: the epoch of the master that wrote its
/// last group, and that group's position (0: none yet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// The epoch of the master that wrote the group.
    pub epoch: u64,
    /// The group's position in the stream (1, 2, ...).
    pub pos: u64,
}

impl Position {
    /// The row's encoding: epoch then position, little endian.
    fn encode(self) -> Bytes {
        let mut b = Vec::with_capacity(16);
        b.extend_from_slice(&self.epoch.to_le_bytes());
        b.extend_from_slice(&self.pos.to_le_bytes());
        Bytes::from(b)
    }

    /// Reads a row written by [`Position::encode`].
    pub fn decode(data: &[u8]) -> Option<Position> {
        let epoch = u64::from_le_bytes(data.get(0..8)?.try_into().ok()?);
        let pos = u64::from_le_bytes(data.get(8..16)?.try_into().ok()?);
        Some(Position { epoch, pos })
    }

    /// The op that records this position (replacing the previous row).
    pub fn op(self) -> Op {
        Op::Put {
            queue: Arc::from(POSITION_QUEUE),
            rank: POSITION_KEY.0,
            seq: POSITION_KEY.1,
            data: self.encode(),
            dedup: None,
        }
    }

    /// The position an op records, if it is the position row.
    pub fn of_op(op: &Op) -> Option<Position> {
        match op.row() {
            RowChange::Put(key, data, _)
                if is_position(key.queue) && (key.rank, key.seq) == POSITION_KEY =>
            {
                Position::decode(data)
            }
            _ => None,
        }
    }
}

/// A consistent view of the master's store for a replica that starts over.
pub struct Snapshot {
    /// A read transaction that holds every group up to the position its row says.
    pub txn: ReadTransaction,
}

/// How a snapshot is handed over: the writer answers on this channel.
pub type SnapshotReply = std::sync::mpsc::Sender<Result<Snapshot, StoreError>>;

/// The master side of replication, called by the store's writer thread (see the module doc).
pub trait Replication: Send + Sync {
    /// The ops of a group commit about to be journaled: streams them and returns the position
    /// row to journal with them, or `None` when there is nothing to stream (only spilled
    /// non-persistent messages).
    fn stamp(&self, ops: &[&Op]) -> Option<Op>;
    /// The journal write of the group last stamped failed: it is not kept.
    fn abandon(&self);
    /// The last position that may be confirmed now (what the quorum that `sync` names
    /// holds). `Err` (a sentence): nothing waiting may be confirmed any more.
    fn confirmable(&self) -> Result<u64, String>;
    /// What to call whenever [`Replication::confirmable`] may have grown or failed (an ack
    /// came, the term ended), from whatever thread saw it: it runs the completions that may
    /// now go out, so it must not be called with a lock of the hook's held.
    fn on_progress(&self, f: Progress);
    /// A snapshot a replica asked for, for the writer to serve.
    fn snapshot_wanted(&self) -> Option<SnapshotReply>;
}

/// The store's callback for a quorum that may have grown ([`Replication::on_progress`]).
pub type Progress = Arc<dyn Fn() + Send + Sync>;

/// The hook as the store's options hold it.
pub type ReplicationHook = Arc<dyn Replication>;

/// The encoding of a group's ops on the replication stream: a journal record (length,
/// checksum, `lsn` = the position, the ops).
pub fn encode_group(pos: u64, ops: &[&Op]) -> Result<Bytes, StoreError> {
    let mut buf = BytesMut::new();
    record::encode(pos, ops, u32::MAX as u64, &mut buf).map_err(|t| StoreError::TooLarge {
        what: t.what,
        bytes: t.bytes,
        limit: t.limit,
    })?;
    Ok(buf.freeze())
}

/// Reads a group encoded by [`encode_group`]: its position and ops; `None` when it is not one.
pub fn decode_group(data: &[u8]) -> Option<(u64, Vec<Op>)> {
    let mut r = data;
    match record::read_next(&mut r, data.len() as u64, u32::MAX as u64) {
        Ok(Some((rec, _))) => Some((rec.lsn, rec.ops)),
        _ => None,
    }
}

/// One piece of a snapshot as it is streamed.
#[derive(Debug)]
pub enum Chunk {
    /// Messages and scheduled jobs, as ops ([`Op::Put`] and [`Op::Schedule`]), encoded as a
    /// group ([`encode_group`]).
    Ops(Bytes),
    /// Dedup ids, oldest first.
    Dedup(Vec<Arc<str>>),
    /// The end: the highest sequence the store ever gave.
    End {
        /// `state.seq` of the master's store.
        max_seq: u64,
    },
}

/// About how many bytes of rows one snapshot chunk carries.
const CHUNK_BYTES: usize = 1 << 20;
/// Dedup ids per chunk.
const CHUNK_IDS: usize = 10_000;

/// The position a snapshot holds (its row).
pub fn snapshot_position(s: &Snapshot) -> Result<Position, StoreError> {
    let read = || -> Result<Position, Cause> {
        let t = s.txn.open_table(MSGS)?;
        let row = t.get((POSITION_QUEUE, POSITION_KEY.0, POSITION_KEY.1))?;
        Ok(row
            .and_then(|g| Position::decode(g.value()))
            .unwrap_or_default())
    };
    read().map_err(StoreError::read)
}

/// Streams a snapshot's rows to `each` in chunks (messages of spilled non-persistent ranks
/// are left out); stops early, returning `Ok(false)`, when `each` says so.
pub fn read_snapshot(
    s: &Snapshot,
    mut each: impl FnMut(Chunk) -> bool,
) -> Result<bool, StoreError> {
    let run = |each: &mut dyn FnMut(Chunk) -> bool| -> Result<bool, Cause> {
        let mut ops: Vec<Op> = Vec::new();
        let mut bytes = 0usize;
        let mut flush = |ops: &mut Vec<Op>, bytes: &mut usize| -> Result<bool, Cause> {
            if ops.is_empty() {
                return Ok(true);
            }
            let refs: Vec<&Op> = ops.iter().collect();
            let group =
                encode_group(0, &refs).map_err(|e| Cause::Journal(std::io::Error::other(e)))?;
            ops.clear();
            *bytes = 0;
            Ok(each(Chunk::Ops(group)))
        };
        for row in s.txn.open_table(MSGS)?.iter()? {
            let (k, v) = row?;
            let (queue, rank, seq) = k.value();
            if rank >= TRANSIENT {
                continue;
            }
            bytes += v.value().len() + queue.len() + 32;
            ops.push(Op::Put {
                queue: Arc::from(queue),
                rank,
                seq,
                data: Bytes::copy_from_slice(v.value()),
                dedup: None,
            });
            if bytes >= CHUNK_BYTES && !flush(&mut ops, &mut bytes)? {
                return Ok(false);
            }
        }
        for row in s.txn.open_table(SCHED)?.iter()? {
            let (k, v) = row?;
            let (at, id) = k.value();
            bytes += v.value().len() + id.len() + 32;
            ops.push(Op::Schedule {
                id: Arc::from(id),
                at,
                data: Bytes::copy_from_slice(v.value()),
            });
            if bytes >= CHUNK_BYTES && !flush(&mut ops, &mut bytes)? {
                return Ok(false);
            }
        }
        if !flush(&mut ops, &mut bytes)? {
            return Ok(false);
        }
        let mut ids: Vec<(u64, Arc<str>)> = Vec::new();
        for row in s.txn.open_table(DEDUP)?.iter()? {
            let (k, v) = row?;
            ids.push((v.value(), Arc::from(k.value())));
        }
        ids.sort_by_key(|(n, _)| *n);
        for part in ids.chunks(CHUNK_IDS) {
            if !each(Chunk::Dedup(
                part.iter().map(|(_, id)| id.clone()).collect(),
            )) {
                return Ok(false);
            }
        }
        let max_seq = s.txn.open_table(STATE)?.get(SEQ)?.map_or(0, |g| g.value());
        Ok(each(Chunk::End { max_seq }))
    };
    run(&mut each).map_err(StoreError::read)
}

/// Builds a store from a snapshot's chunks: written into a new file next to `path`, which
/// replaces the store file (and its journal is removed) once the last chunk is in, so a crash
/// meanwhile leaves the old store as it was. The store must be closed. Returns the position
/// the snapshot holds.
pub fn install_snapshot(
    path: &Path,
    chunks: impl IntoIterator<Item = Chunk>,
) -> Result<Position, StoreError> {
    let tmp = path.with_extension("snapshot");
    let err = |e: Cause| StoreError::Open {
        path: tmp.display().to_string(),
        source: Arc::new(e),
    };
    let run = || -> Result<Position, Cause> {
        match std::fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let db = Database::create(&tmp)?;
        tables::create_tables(&db)?;
        let mut counter = 0u64;
        let mut max_seq = 0u64;
        let mut position = Position::default();
        let mut ended = false;
        for chunk in chunks {
            let mut w = db.begin_write()?;
            match chunk {
                Chunk::Ops(group) => {
                    let Some((_, ops)) = decode_group(&group) else {
                        return Err(Cause::Journal(std::io::Error::other(
                            "a snapshot chunk is not readable",
                        )));
                    };
                    if let Some(p) = ops.iter().find_map(Position::of_op) {
                        position = p;
                    }
                    // Through the same overlay a checkpoint writes (with the dedup ids
                    // the puts carry, numbered on).
                    let mut dedup = DedupChange::default();
                    for op in &ops {
                        if let Op::Put {
                            dedup: Some(id), ..
                        } = op
                        {
                            dedup.added.push((id.clone(), counter));
                            counter += 1;
                        }
                    }
                    let mut changes = Changes::default();
                    changes.apply(&ops, &dedup, &mut max_seq);
                    changes.write(&w)?;
                }
                Chunk::Dedup(ids) => {
                    let mut t = w.open_table(DEDUP)?;
                    for id in ids {
                        t.insert(&*id, counter)?;
                        counter += 1;
                    }
                }
                Chunk::End { max_seq: seq } => {
                    let mut state = w.open_table(STATE)?;
                    state.insert(SEQ, seq.max(max_seq))?;
                    ended = true;
                }
            }
            w.set_quick_repair(true);
            w.commit()?;
            if ended {
                break;
            }
        }
        if !ended {
            return Err(Cause::Journal(std::io::Error::other(
                "the snapshot ended before its last chunk",
            )));
        }
        drop(db);
        match std::fs::remove_file(path.with_extension("journal")) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(position)
    };
    run().map_err(err)
}

impl super::Store {
    /// The position this store holds (its row; zero for none), read through the writer.
    pub async fn replication_position(&self) -> Result<Position, StoreError> {
        let mut from = [u64::MAX; super::PRIORITIES];
        from[POSITION_KEY.0 as usize] = POSITION_KEY.1;
        let rows = self
            .read(Arc::from(POSITION_QUEUE), from, 1, u64::MAX)
            .await?;
        Ok(rows
            .iter()
            .find(|l| (l.rank, l.seq) == POSITION_KEY)
            .and_then(|l| Position::decode(&l.data))
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_round_trips_through_its_row() {
        let p = Position { epoch: 7, pos: 42 };
        assert_eq!(Position::of_op(&p.op()), Some(p));
        assert_eq!(Position::decode(b"short"), None);
        let other = Op::Unschedule { id: Arc::from("x") };
        assert_eq!(Position::of_op(&other), None);
    }

    #[test]
    fn a_group_round_trips_and_garbage_is_refused() -> Result<(), StoreError> {
        let ops = [
            Position { epoch: 1, pos: 3 }.op(),
            Op::Delete {
                queue: Arc::from("q"),
                rank: 5,
                seq: 9,
                size: 10,
            },
        ];
        let refs: Vec<&Op> = ops.iter().collect();
        let g = encode_group(3, &refs)?;
        let (pos, back) = decode_group(&g).ok_or(StoreError::Closed)?;
        assert_eq!(pos, 3);
        assert_eq!(back.len(), 2);
        assert!(decode_group(&g[..g.len() - 1]).is_none());
        assert!(decode_group(b"").is_none());
        Ok(())
    }
}
