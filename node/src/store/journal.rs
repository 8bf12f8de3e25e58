//! The write-ahead journal in front of redb.
//!
//! A group commit appends one record holding every operation of the batch and syncs the file
//! once (`fdatasync` of an append: the cheapest durable write a disk offers). The same
//! operations are then applied to redb without a sync; every checkpoint makes redb durable in
//! one commit (with quick-repair) and empties the journal. After a crash, recovery replays the
//! records written after the last checkpoint, reading them one at a time. The record format is
//! in [`super::record`].
//!
//! A record that is cut short, fails its checksum, or does not carry a higher LSN than the one
//! before it ends the journal: it was being written when the process died (so nothing in it was
//! confirmed), or it is left over from before the last checkpoint.
//!
//! The file is preallocated with zeros in chunks and written in place at explicit offsets, so
//! a sync flushes data only, not file-size metadata (about a third faster on ext4 than a sync
//! after an append; the same reason KahaDB preallocates its journal). Each record is written
//! together with a zeroed header after it, so what follows the last record never reads as
//! one. A checkpoint rewinds to the start instead of truncating (old records beyond carry
//! lower LSNs), and gives back what a burst preallocated beyond a bounded size.
//!
//! # What a failed append leaves
//!
//! An append either succeeds (the record is synced, its submitters are told so) or returns an
//! error, and then the journal's length and allocation are as before and the record is made
//! unreadable before the error is returned: its header is overwritten with zeros and synced,
//! so recovery stops there. A preallocation that runs out of space gives the space it took
//! back. If even the zeroing fails, the record may still be on disk, so the journal refuses
//! every append ([`AppendError::Undo`], then [`AppendError::Refused`]) and retries the zeroing
//! first each time; it accepts appends again once the zeroing succeeds, or once a checkpoint
//! has made redb durable past the failed record's LSN (recovery skips records at or below
//! redb's LSN, and the writer gives the failed record's LSN up for that). Only a crash while
//! in that state, with the disk refusing even the zeroing, can bring the failed record back:
//! at-least-once for a message its sender was told had failed.

use std::fs::OpenOptions;
use std::io::BufReader;
use std::path::Path;

use bytes::{BufMut, BytesMut};

use super::error::Cause;
use super::file::{JournalFile, ReadFrom, WrapFile};
use super::record::{self, HEADER, Record, TooLong};
use super::{Limits, Op};

/// Zeros written at a time when preallocating.
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// Why an append failed. In every case nothing of the record is readable by recovery, except
/// as [`Journal`]'s doc says for `Undo` and `Refused`.
#[derive(Debug)]
pub(super) enum AppendError {
    /// The record could not be written or synced (or its space allocated); it was undone.
    Io(std::io::Error),
    /// The record could not be written or synced, and undoing it failed too.
    Undo {
        /// Why the write failed.
        write: std::io::Error,
        /// Why the undo failed.
        undo: std::io::Error,
    },
    /// An earlier record could still not be undone: nothing is written until it is.
    Refused(std::io::Error),
    /// The record can never fit.
    TooLong(TooLong),
    /// The journal reached its hard limit (checkpoints are failing).
    Full {
        /// The limit in bytes.
        limit: u64,
    },
}

/// An open journal file.
pub(super) struct Journal {
    file: Box<dyn JournalFile>,
    /// End of the last record: where the next one goes.
    len: u64,
    /// Bytes of the file already allocated (zeros or old records).
    allocated: u64,
    buf: BytesMut,
    limits: Limits,
    /// Offset of a failed record that could not be undone.
    undo_at: Option<u64>,
    /// Sync every record (false only for the temporary store, which need not survive).
    sync: bool,
}

impl Journal {
    /// Opens (or creates) the journal and hands every whole record in it, in order, to
    /// `each`, reading one record at a time. A torn tail is left behind (the next record
    /// overwrites it).
    pub(super) fn open(
        path: &Path,
        wrap: Option<&WrapFile>,
        limits: Limits,
        mut each: impl FnMut(Record) -> Result<(), Cause>,
    ) -> Result<Journal, Cause> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)?;
        let file: Box<dyn JournalFile> = match wrap {
            Some(w) => w(file),
            None => Box::new(file),
        };
        let size = file.len()?;
        let mut at = 0u64;
        {
            let mut r = BufReader::with_capacity(
                1 << 20,
                ReadFrom {
                    file: &*file,
                    at: 0,
                },
            );
            let mut last: Option<u64> = None;
            while let Some((rec, used)) = record::read_next(&mut r, size - at, limits.max_payload)?
            {
                if last.is_some_and(|l| rec.lsn <= l) {
                    break;
                }
                last = Some(rec.lsn);
                at += used;
                each(rec)?;
            }
        }
        let mut journal = Journal {
            file,
            len: at,
            allocated: size,
            buf: BytesMut::with_capacity(64 * 1024),
            limits,
            undo_at: None,
            sync: true,
        };
        journal.preallocate(limits.chunk)?;
        Ok(journal)
    }

    /// Makes sure `need` bytes past the end of the last record are allocated, zeroing new
    /// chunks (once) when they are not. On failure the space taken is given back.
    fn preallocate(&mut self, need: u64) -> std::io::Result<()> {
        let end = self.len + need;
        if end <= self.allocated {
            return Ok(());
        }
        // Whole chunks, but never past the hard limit.
        let target = (end.div_ceil(self.limits.chunk) * self.limits.chunk)
            .min(self.limits.journal_hard.max(end));
        let r = (|| {
            let mut at = self.allocated;
            while at < target {
                let n = (target - at).min(ZEROS.len() as u64);
                self.file.write_all_at(&ZEROS[..n as usize], at)?;
                at += n;
            }
            self.file.sync_all()
        })();
        match r {
            Ok(()) => {
                self.allocated = target;
                Ok(())
            }
            Err(e) => {
                if let Err(e) = self.file.set_len(self.allocated) {
                    tracing::warn!(error = %e, "cannot give back the journal's failed preallocation");
                }
                Err(e)
            }
        }
    }

    /// Bytes in the journal.
    pub(super) fn len(&self) -> u64 {
        self.len
    }

    /// Whether the journal holds no record.
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of the file.
    #[cfg(test)]
    pub(super) fn allocated(&self) -> u64 {
        self.allocated
    }

    /// Appends one record and syncs it to disk. On failure nothing of it is readable, as the
    /// module doc says.
    pub(super) fn append(&mut self, lsn: u64, ops: &[&Op]) -> Result<(), AppendError> {
        self.undo_pending().map_err(AppendError::Refused)?;
        record::encode(lsn, ops, self.limits.max_payload, &mut self.buf)
            .map_err(AppendError::TooLong)?;
        let rec = self.buf.len() as u64;
        // The record plus the zeroed header after it.
        let need = rec + HEADER as u64;
        let hard = self.limits.journal_hard;
        if need > hard {
            return Err(AppendError::TooLong(TooLong {
                what: "a commit",
                bytes: rec,
                limit: hard - HEADER as u64,
            }));
        }
        if self.len + need > hard {
            return Err(AppendError::Full { limit: hard });
        }
        self.preallocate(need).map_err(AppendError::Io)?;
        self.buf.put_bytes(0, HEADER);
        // Records of spilled non-persistent messages alone need no sync: they are dropped
        // at the next start anyway (a later synced record makes them durable with it).
        let sync = self.sync && ops.iter().any(|op| !op.is_transient());
        let r = self
            .file
            .write_all_at(&self.buf, self.len)
            .and_then(|()| if sync { self.file.sync_data() } else { Ok(()) });
        match r {
            Ok(()) => {
                self.len += rec;
                Ok(())
            }
            Err(write) => match self.zero_header(self.len) {
                Ok(()) => Err(AppendError::Io(write)),
                Err(undo) => {
                    self.undo_at = Some(self.len);
                    Err(AppendError::Undo { write, undo })
                }
            },
        }
    }

    /// Whether records are synced (see the field).
    pub(super) fn set_sync(&mut self, sync: bool) {
        self.sync = sync;
    }

    /// Whether a failed record still waits to be undone.
    pub(super) fn needs_undo(&self) -> bool {
        self.undo_at.is_some()
    }

    /// Undoes the failed record still on disk, if there is one.
    pub(super) fn undo_pending(&mut self) -> std::io::Result<()> {
        if let Some(at) = self.undo_at {
            self.zero_header(at)?;
            tracing::info!("the journal undid a failed write; writes are accepted again");
            self.undo_at = None;
        }
        Ok(())
    }

    fn zero_header(&self, at: u64) -> std::io::Result<()> {
        self.file.write_all_at(&[0; HEADER], at)?;
        self.file.sync_data()
    }

    /// Empties the journal once redb holds everything in it durably, up to the last LSN
    /// handed out (a failed record that could not be undone included): the next record goes
    /// at the start, and a file a burst left larger than the limits keep is cut back.
    pub(super) fn reset(&mut self) {
        self.undo_at = None;
        self.len = 0;
        // Not synced: what it hides (records redb already holds) is skipped by LSN anyway;
        // it only spares the next open reading them.
        if let Err(e) = self.file.write_all_at(&[0; HEADER], 0) {
            tracing::debug!(error = %e, "cannot clear the journal's first header");
        }
        let keep = self.limits.keep();
        if self.allocated > keep {
            match self.file.set_len(keep) {
                Ok(()) => self.allocated = keep,
                Err(e) => tracing::warn!(error = %e, "cannot shrink the journal"),
            }
        }
    }
}

#[cfg(test)]
#[path = "journal_tests.rs"]
mod tests;
