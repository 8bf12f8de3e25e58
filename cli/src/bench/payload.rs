//! The body of a bench message: who sent it, which one it was, and when.
//!
//! ```text
//!  0        8        16               32               48            size
//!  +--------+--------+----------------+----------------+---------------+
//!  | run    | prod.  | sequence       | send time (ns) | '.' padding   |
//!  +--------+--------+----------------+----------------+---------------+
//!    lowercase hex, fixed width
//! ```
//!
//! Text, so that every broker passes it through unchanged whatever it makes of a body (ActiveMQ
//! turns a SEND with `content-length` into a BytesMessage and back). The run id tells this run's
//! messages from leftovers of an earlier one; the send time is nanoseconds since a base
//! `Instant` shared by every task of the process, so latency needs no clock agreement.

/// Bytes the bench's own fields take at the start of every body.
pub const HEADER_LEN: usize = 48;

/// The fields of one bench message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Run id (random per run).
    pub run: u32,
    /// Producer index, from 0.
    pub producer: u32,
    /// Sequence number within the producer, from 0.
    pub seq: u64,
    /// Send time: nanoseconds since the run's base instant.
    pub sent_ns: u64,
}

/// A body template of `size` bytes (at least [`HEADER_LEN`]): padding after a blank header.
pub fn template(size: usize) -> Vec<u8> {
    vec![b'.'; size.max(HEADER_LEN)]
}

/// Writes `stamp` over the first [`HEADER_LEN`] bytes of `body` (from [`template`]).
pub fn write(stamp: &Stamp, body: &mut [u8]) {
    put_hex(&mut body[0..8], u64::from(stamp.run));
    put_hex(&mut body[8..16], u64::from(stamp.producer));
    put_hex(&mut body[16..32], stamp.seq);
    put_hex(&mut body[32..48], stamp.sent_ns);
}

/// Reads the stamp at the start of `body`; `None` if it is not a bench message.
pub fn read(body: &[u8]) -> Option<Stamp> {
    if body.len() < HEADER_LEN {
        return None;
    }
    Some(Stamp {
        run: u32::try_from(get_hex(&body[0..8])?).ok()?,
        producer: u32::try_from(get_hex(&body[8..16])?).ok()?,
        seq: get_hex(&body[16..32])?,
        sent_ns: get_hex(&body[32..48])?,
    })
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `value` as lowercase hex filling `dst` (leading zeros; the high digits are cut if it is too
/// long, which the fixed widths above rule out).
fn put_hex(dst: &mut [u8], mut value: u64) {
    for b in dst.iter_mut().rev() {
        *b = HEX[(value & 0xf) as usize];
        value >>= 4;
    }
}

fn get_hex(src: &[u8]) -> Option<u64> {
    let mut v: u64 = 0;
    for &b in src {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        v = (v << 4) | u64::from(d);
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let stamp = Stamp {
            run: 0xdead_beef,
            producer: 3,
            seq: 1_000_000,
            sent_ns: u64::MAX - 7,
        };
        let mut body = template(1024);
        write(&stamp, &mut body);
        assert_eq!(body.len(), 1024);
        assert_eq!(read(&body), Some(stamp));
        assert!(body[HEADER_LEN..].iter().all(|&b| b == b'.'));
    }

    #[test]
    fn small_sizes_still_carry_the_header() {
        assert_eq!(template(10).len(), HEADER_LEN);
    }

    #[test]
    fn foreign_bodies_are_refused() {
        assert_eq!(read(b"hello"), None);
        assert_eq!(read(&[b'z'; 64]), None);
    }
}
