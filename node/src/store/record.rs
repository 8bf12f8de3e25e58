//! The journal's record format: encoding a group commit, and reading records back one at a
//! time from a stream.
//!
//! Record layout (little endian):
//!
//! ```text
//! u32 payload_len | u32 crc32(payload) | payload
//! payload = u64 lsn | u32 op_count | op*
//! op      = 3 u16 qlen queue u8 rank u64 seq u32 dlen data u16 idlen id  (put; idlen 0 = no id)
//!         | 4 u16 qlen queue u8 rank u64 seq u32 size                     (delete)
//!         | 5 u16 qlen queue u8 rank u64 from u64 to                       (purge: the messages of
//!                                                                          one rank, from ≤ seq ≤ to)
//!         | 6 u16 idlen id u64 at u32 dlen data                             (schedule a job)
//!         | 7 u16 idlen id                                                  (unschedule a job)
//! ```
//!
//! Ops 1 (put) and 2 (delete) of the first format, without rank and size, are still read: they
//! carry the default priority's rank and size 0.
//!
//! A header of zeros (length 0) is never a record: a payload holds at least its LSN and count.

use std::io::Read;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::Op;
use super::rows::{RowChange, RowKey};

const PUT_V1: u8 = 1;
const DELETE_V1: u8 = 2;
const PUT: u8 = 3;
const DELETE: u8 = 4;
const PURGE: u8 = 5;
const SCHEDULE: u8 = 6;
const UNSCHEDULE: u8 = 7;
/// Bytes of a record's header (length and checksum).
pub(super) const HEADER: usize = 8;
/// Bytes of a payload before its ops (LSN and op count).
const PAYLOAD_HEAD: usize = 12;

/// One record read back.
pub struct Record {
    /// Log sequence number.
    pub lsn: u64,
    /// Its operations.
    pub ops: Vec<Op>,
}

/// Why a group commit cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TooLong {
    /// What is too long.
    pub(super) what: &'static str,
    /// Its length in bytes.
    pub(super) bytes: u64,
    /// The most that fits.
    pub(super) limit: u64,
}

/// Bytes one op takes in a record.
pub(super) fn op_len(op: &Op) -> u64 {
    match op {
        Op::Put {
            queue, data, dedup, ..
        } => {
            1 + 2
                + queue.len() as u64
                + 1
                + 8
                + 4
                + data.len() as u64
                + 2
                + dedup.as_ref().map_or(0, |d| d.len() as u64)
        }
        Op::Delete { queue, .. } => 1 + 2 + queue.len() as u64 + 1 + 8 + 4,
        Op::Purge { queue, .. } => 1 + 2 + queue.len() as u64 + 1 + 8 + 8,
        Op::Schedule { id, data, .. } => 1 + 2 + id.len() as u64 + 8 + 4 + data.len() as u64,
        Op::Unschedule { id } => 1 + 2 + id.len() as u64,
    }
}

/// Bytes of the whole record (header included) that holds `ops`.
pub(super) fn record_len<'a>(ops: impl IntoIterator<Item = &'a Op>) -> u64 {
    (HEADER + PAYLOAD_HEAD) as u64 + ops.into_iter().map(op_len).sum::<u64>()
}

/// Encodes one record into `buf` (cleared first). Refuses, rather than truncating, a record
/// whose payload would be longer than `max_payload` (at most `u32::MAX`), and a queue name or
/// dedup id longer than 65535 bytes.
pub(super) fn encode(
    lsn: u64,
    ops: &[&Op],
    max_payload: u64,
    buf: &mut BytesMut,
) -> Result<(), TooLong> {
    let max_payload = max_payload.min(u32::MAX as u64);
    let payload = record_len(ops.iter().copied()) - HEADER as u64;
    if payload > max_payload {
        return Err(TooLong {
            what: "a commit",
            bytes: payload,
            limit: max_payload,
        });
    }
    for op in ops {
        let (queue, id): (&str, Option<&str>) = match op {
            Op::Put { queue, dedup, .. } => (queue, dedup.as_deref()),
            Op::Delete { queue, .. } | Op::Purge { queue, .. } => (queue, None),
            Op::Schedule { id, .. } | Op::Unschedule { id } => ("", Some(id)),
        };
        for (what, s) in [("a queue name", queue), ("a message id", id.unwrap_or(""))] {
            if s.len() > u16::MAX as usize {
                return Err(TooLong {
                    what,
                    bytes: s.len() as u64,
                    limit: u16::MAX as u64,
                });
            }
        }
    }
    buf.clear();
    buf.reserve(payload as usize + HEADER);
    buf.put_u32_le(payload as u32);
    buf.put_u32_le(0);
    buf.put_u64_le(lsn);
    buf.put_u32_le(ops.len() as u32);
    for op in ops {
        encode_op(op, buf);
    }
    let crc = crc32fast::hash(&buf[HEADER..]);
    buf[4..8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

fn encode_op(op: &Op, b: &mut BytesMut) {
    match op.row() {
        RowChange::Put(key, data, dedup) => {
            b.put_u8(PUT);
            put_key(b, key);
            b.put_u32_le(data.len() as u32);
            b.put_slice(data);
            put_str16(b, dedup.map_or("", |d| d));
        }
        RowChange::Delete(key, size) => {
            b.put_u8(DELETE);
            put_key(b, key);
            b.put_u32_le(size);
        }
        RowChange::Purge(from, to) => {
            b.put_u8(PURGE);
            put_key(b, from);
            b.put_u64_le(to);
        }
        RowChange::Job(id, Some((at, data))) => {
            b.put_u8(SCHEDULE);
            put_str16(b, id);
            b.put_u64_le(at);
            b.put_u32_le(data.len() as u32);
            b.put_slice(data);
        }
        RowChange::Job(id, None) => {
            b.put_u8(UNSCHEDULE);
            put_str16(b, id);
        }
    }
}

/// Writes a message row's key: queue name, rank, sequence (a purge's first one).
fn put_key(b: &mut BytesMut, key: RowKey<'_>) {
    put_str16(b, key.queue);
    b.put_u8(key.rank);
    b.put_u64_le(key.seq);
}

/// Writes a string `encode` has checked to be at most 65535 bytes.
fn put_str16(b: &mut BytesMut, s: &str) {
    b.put_u16_le(s.len() as u16);
    b.put_slice(s.as_bytes());
}

/// Reads the next whole record from `r`, `room` being the bytes left in the file, and
/// returns it with its length. `None` ends the journal: end of file, a torn or corrupt
/// record, or zeros. Only one record is in memory at a time.
pub(super) fn read_next(
    r: &mut impl Read,
    room: u64,
    max_payload: u64,
) -> std::io::Result<Option<(Record, u64)>> {
    let mut header = [0u8; HEADER];
    if !read_full(r, &mut header)? {
        return Ok(None);
    }
    let [a, b, c, d, e, f, g, h] = header;
    let len = u32::from_le_bytes([a, b, c, d]) as u64;
    let crc = u32::from_le_bytes([e, f, g, h]);
    if len < PAYLOAD_HEAD as u64 || len > max_payload || HEADER as u64 + len > room {
        return Ok(None);
    }
    let mut payload = vec![0u8; len as usize];
    if !read_full(r, &mut payload)? || crc32fast::hash(&payload) != crc {
        return Ok(None);
    }
    Ok(decode_payload(Bytes::from(payload)).map(|rec| (rec, HEADER as u64 + len)))
}

/// Fills `buf`; `false` at end of file.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<bool> {
    match r.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

fn decode_payload(mut p: Bytes) -> Option<Record> {
    if p.remaining() < PAYLOAD_HEAD {
        return None;
    }
    let lsn = p.get_u64_le();
    let n = p.get_u32_le() as usize;
    let mut ops = Vec::with_capacity(n.min(1 << 16));
    for _ in 0..n {
        if p.remaining() < 1 {
            return None;
        }
        let code = p.get_u8();
        match code {
            PUT | PUT_V1 => {
                let queue = get_str16(&mut p)?;
                let rank = if code == PUT {
                    if p.remaining() < 1 {
                        return None;
                    }
                    p.get_u8()
                } else {
                    super::DEFAULT_RANK
                };
                if p.remaining() < 12 {
                    return None;
                }
                let seq = p.get_u64_le();
                let dlen = p.get_u32_le() as usize;
                if p.remaining() < dlen {
                    return None;
                }
                let data = p.split_to(dlen);
                let id = get_str16(&mut p)?;
                ops.push(Op::Put {
                    queue,
                    rank,
                    seq,
                    data,
                    dedup: (!id.is_empty()).then_some(id),
                });
            }
            DELETE => {
                let queue = get_str16(&mut p)?;
                if p.remaining() < 13 {
                    return None;
                }
                let rank = p.get_u8();
                let seq = p.get_u64_le();
                let size = p.get_u32_le();
                ops.push(Op::Delete {
                    queue,
                    rank,
                    seq,
                    size,
                });
            }
            DELETE_V1 => {
                let queue = get_str16(&mut p)?;
                if p.remaining() < 8 {
                    return None;
                }
                let seq = p.get_u64_le();
                ops.push(Op::Delete {
                    queue,
                    rank: crate::store::DEFAULT_RANK,
                    seq,
                    size: 0,
                });
            }
            PURGE => {
                let queue = get_str16(&mut p)?;
                if p.remaining() < 17 {
                    return None;
                }
                let rank = p.get_u8();
                let from = p.get_u64_le();
                let to = p.get_u64_le();
                ops.push(Op::Purge {
                    queue,
                    rank,
                    from,
                    to,
                });
            }
            SCHEDULE => {
                let id = get_str16(&mut p)?;
                if p.remaining() < 12 {
                    return None;
                }
                let at = p.get_u64_le();
                let dlen = p.get_u32_le() as usize;
                if p.remaining() < dlen {
                    return None;
                }
                let data = p.split_to(dlen);
                ops.push(Op::Schedule { id, at, data });
            }
            UNSCHEDULE => {
                let id = get_str16(&mut p)?;
                ops.push(Op::Unschedule { id });
            }
            _ => return None,
        }
    }
    Some(Record { lsn, ops })
}

fn get_str16(p: &mut Bytes) -> Option<Arc<str>> {
    if p.remaining() < 2 {
        return None;
    }
    let n = p.get_u16_le() as usize;
    if p.remaining() < n {
        return None;
    }
    let s = Arc::from(std::str::from_utf8(&p[..n]).ok()?);
    p.advance(n);
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_over_long_commit_or_name_is_refused_not_truncated() {
        let mut buf = BytesMut::new();
        let big = Op::Put {
            queue: Arc::from("q"),
            rank: crate::store::DEFAULT_RANK,
            seq: 1,
            data: Bytes::from(vec![0u8; 1000]),
            dedup: None,
        };
        let e = encode(1, &[&big], 500, &mut buf).err();
        assert!(matches!(
            e,
            Some(TooLong {
                what: "a commit",
                limit: 500,
                ..
            })
        ));
        let long_id = Op::Put {
            queue: Arc::from("q"),
            rank: crate::store::DEFAULT_RANK,
            seq: 1,
            data: Bytes::new(),
            dedup: Some(Arc::from("x".repeat(70_000))),
        };
        let e = encode(1, &[&long_id], u64::MAX, &mut buf).err();
        assert!(matches!(
            e,
            Some(TooLong {
                what: "a message id",
                bytes: 70_000,
                ..
            })
        ));
        // The limit is never above what the u32 length field holds.
        let e = encode(1, &[&big], u64::MAX, &mut buf);
        assert!(e.is_ok());
        assert_eq!(buf.len() as u64, record_len([&big]));
    }
}
