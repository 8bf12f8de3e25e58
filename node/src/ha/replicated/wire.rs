//! The replication link's frames: a replica's hello and acknowledgements, the master's
//! answer, groups and snapshot chunks.
//!
//! ```text
//! frame   = u32 length | u8 kind | body            (little endian; length counts kind + body)
//! Hello   1  str token | str name | u64 epoch | u64 pos | u64 known_epoch     replica → master
//! Welcome 2  u64 epoch | u8 start (0 stream, 1 snapshot) | u64 from            master → replica
//! Refused 3  str reason                                                         master → replica
//! Group   4  u64 epoch | u64 head | bytes group (a journal record; its LSN is the position)
//! SnapBegin 5 u64 epoch | u64 pos
//! SnapOps 6  bytes group                SnapIds 7 u32 n | str id*             SnapEnd 8 u64 max_seq
//! Ack     9  u64 received | u64 durable                                         replica → master
//! ```
//!
//! `str` is a u16 length and UTF-8 bytes, `bytes` the rest of the frame.

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest frame accepted (a group commit is at most 16 MiB; snapshot chunks 1 MiB).
pub const MAX_FRAME: usize = 64 << 20;

/// One frame of the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The replica introduces itself: its token, its name, where it stands, and the newest
    /// epoch it knows from ZooKeeper.
    Hello {
        /// The group's token (empty: none).
        token: String,
        /// The member's name.
        name: String,
        /// The epoch of its last group.
        epoch: u64,
        /// The position of its last group.
        pos: u64,
        /// The newest epoch it has seen elected.
        known_epoch: u64,
    },
    /// The master accepts: it streams from `from` (exclusive), or sends a snapshot first.
    Welcome {
        /// The master's epoch.
        epoch: u64,
        /// Whether a snapshot comes first.
        snapshot: bool,
        /// The position after which groups follow (without a snapshot).
        from: u64,
    },
    /// The master refuses the replica.
    Refused {
        /// Why.
        reason: String,
    },
    /// One group commit.
    Group {
        /// The epoch of the master that wrote it.
        epoch: u64,
        /// The master's last position when it sent this one.
        head: u64,
        /// The group, as `crate::store::replication::encode_group` wrote it.
        group: Bytes,
    },
    /// A snapshot starts; it holds every group up to `pos`.
    SnapBegin {
        /// The master's epoch.
        epoch: u64,
        /// The snapshot's position.
        pos: u64,
    },
    /// Rows of a snapshot, as a group.
    SnapOps(Bytes),
    /// Dedup ids of a snapshot, oldest first.
    SnapIds(Vec<Arc<str>>),
    /// The snapshot is complete.
    SnapEnd {
        /// The highest sequence the master's store gave.
        max_seq: u64,
    },
    /// The replica holds every group up to `received` in memory and up to `durable` on disk.
    Ack {
        /// Received (decoded and handed to the store).
        received: u64,
        /// Synced to the replica's disk.
        durable: u64,
    },
}

/// Why a link broke.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The socket failed or closed.
    #[error("replication link: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent something that is not a frame of this protocol.
    #[error("replication link: unreadable frame ({0})")]
    Bad(&'static str),
}

fn put_str(b: &mut BytesMut, s: &str) {
    let s = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    b.put_u16_le(s.len() as u16);
    b.put_slice(s);
}

fn get_str(b: &mut Bytes) -> Result<String, WireError> {
    if b.remaining() < 2 {
        return Err(WireError::Bad("short string"));
    }
    let n = b.get_u16_le() as usize;
    if b.remaining() < n {
        return Err(WireError::Bad("short string"));
    }
    let s = b.split_to(n);
    String::from_utf8(s.to_vec()).map_err(|_| WireError::Bad("string not UTF-8"))
}

fn get_u64(b: &mut Bytes) -> Result<u64, WireError> {
    if b.remaining() < 8 {
        return Err(WireError::Bad("short number"));
    }
    Ok(b.get_u64_le())
}

impl Frame {
    /// The frame's bytes, length first.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(64);
        b.put_u32_le(0);
        match self {
            Frame::Hello {
                token,
                name,
                epoch,
                pos,
                known_epoch,
            } => {
                b.put_u8(1);
                put_str(&mut b, token);
                put_str(&mut b, name);
                b.put_u64_le(*epoch);
                b.put_u64_le(*pos);
                b.put_u64_le(*known_epoch);
            }
            Frame::Welcome {
                epoch,
                snapshot,
                from,
            } => {
                b.put_u8(2);
                b.put_u64_le(*epoch);
                b.put_u8(u8::from(*snapshot));
                b.put_u64_le(*from);
            }
            Frame::Refused { reason } => {
                b.put_u8(3);
                put_str(&mut b, reason);
            }
            Frame::Group { epoch, head, group } => {
                b.reserve(group.len() + 17);
                b.put_u8(4);
                b.put_u64_le(*epoch);
                b.put_u64_le(*head);
                b.put_slice(group);
            }
            Frame::SnapBegin { epoch, pos } => {
                b.put_u8(5);
                b.put_u64_le(*epoch);
                b.put_u64_le(*pos);
            }
            Frame::SnapOps(group) => {
                b.reserve(group.len() + 1);
                b.put_u8(6);
                b.put_slice(group);
            }
            Frame::SnapIds(ids) => {
                b.put_u8(7);
                b.put_u32_le(ids.len() as u32);
                for id in ids {
                    put_str(&mut b, id);
                }
            }
            Frame::SnapEnd { max_seq } => {
                b.put_u8(8);
                b.put_u64_le(*max_seq);
            }
            Frame::Ack { received, durable } => {
                b.put_u8(9);
                b.put_u64_le(*received);
                b.put_u64_le(*durable);
            }
        }
        let len = (b.len() - 4) as u32;
        b[0..4].copy_from_slice(&len.to_le_bytes());
        b.freeze()
    }

    /// Reads a frame's body (after its length).
    pub fn decode(mut b: Bytes) -> Result<Frame, WireError> {
        if b.is_empty() {
            return Err(WireError::Bad("empty frame"));
        }
        let kind = b.get_u8();
        let f = match kind {
            1 => Frame::Hello {
                token: get_str(&mut b)?,
                name: get_str(&mut b)?,
                epoch: get_u64(&mut b)?,
                pos: get_u64(&mut b)?,
                known_epoch: get_u64(&mut b)?,
            },
            2 => {
                let epoch = get_u64(&mut b)?;
                if b.remaining() < 1 {
                    return Err(WireError::Bad("short welcome"));
                }
                let snapshot = b.get_u8() != 0;
                Frame::Welcome {
                    epoch,
                    snapshot,
                    from: get_u64(&mut b)?,
                }
            }
            3 => Frame::Refused {
                reason: get_str(&mut b)?,
            },
            4 => Frame::Group {
                epoch: get_u64(&mut b)?,
                head: get_u64(&mut b)?,
                group: b,
            },
            5 => Frame::SnapBegin {
                epoch: get_u64(&mut b)?,
                pos: get_u64(&mut b)?,
            },
            6 => Frame::SnapOps(b),
            7 => {
                if b.remaining() < 4 {
                    return Err(WireError::Bad("short id list"));
                }
                let n = b.get_u32_le() as usize;
                let mut ids = Vec::with_capacity(n.min(1 << 16));
                for _ in 0..n {
                    ids.push(Arc::from(get_str(&mut b)?));
                }
                Frame::SnapIds(ids)
            }
            8 => Frame::SnapEnd {
                max_seq: get_u64(&mut b)?,
            },
            9 => Frame::Ack {
                received: get_u64(&mut b)?,
                durable: get_u64(&mut b)?,
            },
            _ => return Err(WireError::Bad("unknown kind")),
        };
        Ok(f)
    }
}

/// Reads one frame.
pub async fn read(r: &mut (impl AsyncRead + Unpin)) -> Result<Frame, WireError> {
    let len = r.read_u32_le().await? as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(WireError::Bad("frame length out of range"));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await?;
    Frame::decode(Bytes::from(buf))
}

/// Writes one frame (not flushed).
pub async fn write(w: &mut (impl AsyncWrite + Unpin), f: &Frame) -> Result<(), WireError> {
    w.write_all(&f.encode()).await?;
    Ok(())
}

/// Whether two tokens are equal, in time that does not depend on where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_frame_round_trips() -> Result<(), WireError> {
        let frames = [
            Frame::Hello {
                token: "t".into(),
                name: "b1".into(),
                epoch: 3,
                pos: 9,
                known_epoch: 4,
            },
            Frame::Welcome {
                epoch: 4,
                snapshot: true,
                from: 0,
            },
            Frame::Refused {
                reason: "no".into(),
            },
            Frame::Group {
                epoch: 4,
                head: 6,
                group: Bytes::from_static(b"abc"),
            },
            Frame::SnapBegin { epoch: 4, pos: 10 },
            Frame::SnapOps(Bytes::from_static(b"rows")),
            Frame::SnapIds(vec![Arc::from("a"), Arc::from("b")]),
            Frame::SnapEnd { max_seq: 77 },
            Frame::Ack {
                received: 5,
                durable: 4,
            },
        ];
        let mut buf = Vec::new();
        for f in &frames {
            write(&mut buf, f).await?;
        }
        let mut r = &buf[..];
        for f in &frames {
            assert_eq!(&read(&mut r).await?, f);
        }
        assert!(read(&mut r).await.is_err(), "end of stream");
        let mut bad = &[1u8, 0, 0, 0, 42][..];
        assert!(matches!(read(&mut bad).await, Err(WireError::Bad(_))));
        Ok(())
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("secret", "secret"));
        assert!(!same_token("secret", "secreT"));
        assert!(!same_token("secret", "secret2"));
        assert!(!same_token("", "x"));
        assert!(same_token("", ""));
    }
}
