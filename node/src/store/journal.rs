//! The write-ahead journal in front of redb.
//!
//! A group commit appends one record holding every operation of the batch and syncs the file
//! once (`fdatasync` of an append: the cheapest durable write a disk offers). The same
//! operations are then applied to redb without a sync; every checkpoint makes redb durable in
//! one commit (with quick-repair) and empties the journal. After a crash, recovery replays the
//! records written after the last checkpoint.
//!
//! Record layout (little endian):
//!
//! ```text
//! u32 payload_len | u32 crc32(payload) | payload
//! payload = u64 lsn | u32 op_count | op*
//! op      = 1 u16 qlen queue u64 seq u32 dlen data u16 idlen id   (put; idlen 0 = no dedup id)
//!         | 2 u16 qlen queue u64 seq                               (delete)
//! ```
//!
//! A record that is cut short, fails its checksum, or does not carry a higher LSN than the one
//! before it ends the journal: it was being written when the process died (so nothing in it was
//! confirmed), or it is left over from before the last checkpoint.
//!
//! The file is preallocated with zeros in chunks and written in place, so a sync flushes data
//! only, not file-size metadata (about a third faster on ext4 than a sync after an append; the
//! same reason KahaDB preallocates its journal). A checkpoint rewinds to the start instead of
//! truncating; what lies beyond the last record is zeros or old records that the LSN rule
//! ignores.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::Op;
use super::file::{JournalFile, WrapFile};

const PUT: u8 = 1;
const DELETE: u8 = 2;
const HEADER: usize = 8;
/// Preallocation step.
const CHUNK: u64 = 4 * 1024 * 1024;

/// An open journal file, positioned at its end.
pub struct Journal {
    file: Box<dyn JournalFile>,
    /// End of the last record: where the next one goes.
    len: u64,
    /// Bytes of the file already allocated (zeros or old records).
    allocated: u64,
    buf: BytesMut,
}

/// One record read back.
pub struct Record {
    /// Log sequence number.
    pub lsn: u64,
    /// Its operations.
    pub ops: Vec<Op>,
}

impl Journal {
    /// Opens (or creates) the journal and reads every whole record in it. A torn tail is cut
    /// off.
    pub fn open(path: &Path) -> std::io::Result<(Journal, Vec<Record>)> {
        Journal::open_with(path, None)
    }

    /// Like [`Journal::open`], with the file wrapped by `wrap` (tests inject faults so).
    pub(crate) fn open_with(
        path: &Path,
        wrap: Option<&WrapFile>,
    ) -> std::io::Result<(Journal, Vec<Record>)> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)?;
        let mut file: Box<dyn JournalFile> = match wrap {
            Some(w) => w(file),
            None => Box::new(file),
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut records: Vec<Record> = Vec::new();
        let mut at = 0usize;
        while let Some((rec, used)) = read_record(&bytes[at..]) {
            if records.last().is_some_and(|r| rec.lsn <= r.lsn) {
                break;
            }
            records.push(rec);
            at += used;
        }
        let mut journal = Journal {
            file,
            len: at as u64,
            allocated: bytes.len() as u64,
            buf: BytesMut::with_capacity(64 * 1024),
        };
        journal.file.seek(SeekFrom::Start(journal.len))?;
        journal.preallocate(CHUNK)?;
        Ok((journal, records))
    }

    /// Makes sure `need` bytes past the end of the last record are allocated, zeroing a
    /// new chunk (once) when they are not.
    fn preallocate(&mut self, need: u64) -> std::io::Result<()> {
        if self.len + need <= self.allocated {
            return Ok(());
        }
        let target = (self.len + need).div_ceil(CHUNK) * CHUNK;
        let zeros = vec![0u8; (target - self.allocated) as usize];
        self.file.seek(SeekFrom::Start(self.allocated))?;
        self.file.write_all(&zeros)?;
        self.file.sync_all()?;
        self.allocated = target;
        self.file.seek(SeekFrom::Start(self.len))?;
        Ok(())
    }

    /// Bytes in the journal.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the journal holds no record.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends one record and syncs it to disk. On failure the file is cut back to where it
    /// was, so a later record never follows a broken one.
    pub fn append(&mut self, lsn: u64, ops: &[&Op]) -> std::io::Result<()> {
        self.buf.clear();
        self.buf.put_u32_le(0);
        self.buf.put_u32_le(0);
        self.buf.put_u64_le(lsn);
        self.buf.put_u32_le(ops.len() as u32);
        for op in ops {
            encode_op(op, &mut self.buf);
        }
        let payload_len = (self.buf.len() - HEADER) as u32;
        let crc = crc32fast::hash(&self.buf[HEADER..]);
        self.buf[0..4].copy_from_slice(&payload_len.to_le_bytes());
        self.buf[4..8].copy_from_slice(&crc.to_le_bytes());
        // Room for the record plus a zeroed header after it, so what follows the last record
        // never reads as one.
        self.preallocate(self.buf.len() as u64 + HEADER as u64)?;
        let r = self
            .file
            .write_all(&self.buf)
            .and_then(|()| self.file.sync_data());
        match r {
            Ok(()) => {
                self.len += self.buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                // The next record overwrites whatever part of this one was written.
                let _ = self.file.seek(SeekFrom::Start(self.len));
                Err(e)
            }
        }
    }

    /// Empties the journal once redb holds everything in it durably: the next record goes
    /// at the start (older records left behind carry lower LSNs and are ignored).
    pub fn reset(&mut self) -> std::io::Result<()> {
        self.file.seek(SeekFrom::Start(0))?;
        self.len = 0;
        Ok(())
    }
}

fn encode_op(op: &Op, b: &mut BytesMut) {
    match op {
        Op::Put {
            queue,
            seq,
            data,
            dedup,
        } => {
            b.put_u8(PUT);
            put_str16(b, queue);
            b.put_u64_le(*seq);
            b.put_u32_le(data.len() as u32);
            b.put_slice(data);
            put_str16(b, dedup.as_deref().unwrap_or(""));
        }
        Op::Delete { queue, seq } => {
            b.put_u8(DELETE);
            put_str16(b, queue);
            b.put_u64_le(*seq);
        }
    }
}

fn put_str16(b: &mut BytesMut, s: &str) {
    let s = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    b.put_u16_le(s.len() as u16);
    b.put_slice(s);
}

/// One whole record at the front of `bytes` and its length, if there is one.
fn read_record(bytes: &[u8]) -> Option<(Record, usize)> {
    if bytes.len() < HEADER {
        return None;
    }
    let len = u32::from_le_bytes(bytes[0..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(bytes[4..8].try_into().ok()?);
    let payload = bytes.get(HEADER..HEADER + len)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    let rec = decode_payload(payload)?;
    Some((rec, HEADER + len))
}

fn decode_payload(mut p: &[u8]) -> Option<Record> {
    if p.remaining() < 12 {
        return None;
    }
    let lsn = p.get_u64_le();
    let n = p.get_u32_le() as usize;
    let mut ops = Vec::with_capacity(n.min(1 << 16));
    for _ in 0..n {
        if p.remaining() < 1 {
            return None;
        }
        match p.get_u8() {
            PUT => {
                let queue = get_str16(&mut p)?;
                if p.remaining() < 12 {
                    return None;
                }
                let seq = p.get_u64_le();
                let dlen = p.get_u32_le() as usize;
                if p.remaining() < dlen {
                    return None;
                }
                let data = Bytes::copy_from_slice(&p[..dlen]);
                p.advance(dlen);
                let id = get_str16(&mut p)?;
                ops.push(Op::Put {
                    queue,
                    seq,
                    data,
                    dedup: (!id.is_empty()).then_some(id),
                });
            }
            DELETE => {
                let queue = get_str16(&mut p)?;
                if p.remaining() < 8 {
                    return None;
                }
                let seq = p.get_u64_le();
                ops.push(Op::Delete { queue, seq });
            }
            _ => return None,
        }
    }
    Some(Record { lsn, ops })
}

fn get_str16(p: &mut &[u8]) -> Option<Arc<str>> {
    if p.remaining() < 2 {
        return None;
    }
    let n = p.get_u16_le() as usize;
    if p.remaining() < n {
        return None;
    }
    let s = std::str::from_utf8(&p[..n]).ok()?;
    let s = Arc::from(s);
    p.advance(n);
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(seq: u64, id: Option<&str>) -> Op {
        Op::Put {
            queue: Arc::from("q"),
            seq,
            data: Bytes::from(vec![seq as u8; 100]),
            dedup: id.map(Arc::from),
        }
    }

    #[test]
    fn records_round_trip_and_a_torn_tail_is_dropped() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("journal");
        let (mut j, recs) = Journal::open(&path)?;
        assert!(recs.is_empty());
        let a = put(1, Some("id-1"));
        let b = Op::Delete {
            queue: Arc::from("q"),
            seq: 1,
        };
        j.append(1, &[&a, &b])?;
        j.append(2, &[&put(2, None)])?;
        let good = j.len();
        drop(j);
        // A crash in the middle of the third record.
        let mut f = OpenOptions::new().write(true).open(&path)?;
        f.seek(SeekFrom::Start(good))?;
        f.write_all(&[200, 0, 0, 0, 1, 2, 3])?;
        drop(f);
        let (j, recs) = Journal::open(&path)?;
        assert_eq!(j.len(), good, "the torn record is not part of the journal");
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].lsn, 1);
        assert_eq!(recs[0].ops.len(), 2);
        assert!(
            matches!(&recs[0].ops[0], Op::Put { seq: 1, dedup: Some(id), data, .. } if &**id == "id-1" && data.len() == 100)
        );
        assert!(matches!(&recs[1].ops[0], Op::Put { dedup: None, .. }));
        Ok(())
    }

    #[test]
    fn records_after_a_reset_start_at_the_beginning() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("journal");
        let (mut j, _) = Journal::open(&path)?;
        for lsn in 1..=5 {
            j.append(lsn, &[&put(lsn, None)])?;
        }
        j.reset()?;
        j.append(6, &[&put(6, None)])?;
        drop(j);
        // The old records after the new one carry lower LSNs: they end the journal.
        let (j, recs) = Journal::open(&path)?;
        assert_eq!(recs.iter().map(|r| r.lsn).collect::<Vec<_>>(), vec![6]);
        assert!(j.len() < std::fs::metadata(&path)?.len(), "preallocated");
        Ok(())
    }

    #[test]
    fn a_corrupted_record_ends_the_journal() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("journal");
        let (mut j, _) = Journal::open(&path)?;
        j.append(1, &[&put(1, None)])?;
        let first = j.len() as usize;
        j.append(2, &[&put(2, None)])?;
        drop(j);
        let mut bytes = std::fs::read(&path)?;
        bytes[first + 20] ^= 0xff;
        std::fs::write(&path, &bytes)?;
        let (_, recs) = Journal::open(&path)?;
        assert_eq!(recs.len(), 1);
        Ok(())
    }
}
