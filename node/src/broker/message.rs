//! A message as the broker holds it, and its encoding in the store.
//!
//! Store record layout (little endian):
//! ```text
//! u8 version(1) | u64 timestamp_ms | u64 expires_ms | u8 flags(bit0 persistent)
//! | u16 id_len | id | u16 dest_len | destination
//! | u16 header_count | { u32 name_len | name | u32 value_len | value }*
//! | body (rest)
//! ```

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// An immutable message: shared between the queue, consumers and bridges by `Arc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Globally unique id (`message-id`); kept across network bridges.
    pub id: Arc<str>,
    /// Destination with its prefix, e.g. `/queue/orders`.
    pub destination: Arc<str>,
    /// User headers, in the order the producer sent them (broker headers excluded).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Bytes,
    /// Stored before confirmation.
    pub persistent: bool,
    /// Expiry, ms since the epoch; 0 = never.
    pub expires: u64,
    /// When the broker first accepted it, ms since the epoch.
    pub timestamp: u64,
}

impl Message {
    /// Bytes held for this message (headers and body), for statistics.
    pub fn size(&self) -> u64 {
        let h: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2)
            .sum();
        (h + self.body.len() + self.id.len() + self.destination.len()) as u64
    }

    /// Whether the message's `expires` has passed at `now_ms`.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires != 0 && self.expires <= now_ms
    }

    /// First value of a user header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Encodes for the store.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(64 + self.size() as usize);
        b.put_u8(1);
        b.put_u64_le(self.timestamp);
        b.put_u64_le(self.expires);
        b.put_u8(u8::from(self.persistent));
        put_short(&mut b, &self.id);
        put_short(&mut b, &self.destination);
        b.put_u16_le(self.headers.len().min(u16::MAX as usize) as u16);
        for (k, v) in self.headers.iter().take(u16::MAX as usize) {
            b.put_u32_le(k.len() as u32);
            b.put_slice(k.as_bytes());
            b.put_u32_le(v.len() as u32);
            b.put_slice(v.as_bytes());
        }
        b.put_slice(&self.body);
        b.freeze()
    }

    /// Decodes a store record; `None` if it is not one.
    pub fn decode(b: &[u8]) -> Option<Message> {
        Message::decode_shared(&Bytes::copy_from_slice(b))
    }

    /// Decodes a store record whose body is then a slice of `record` (no copy).
    pub fn decode_shared(record: &Bytes) -> Option<Message> {
        let mut b: &[u8] = record;
        if b.remaining() < 1 + 8 + 8 + 1 || b.get_u8() != 1 {
            return None;
        }
        let timestamp = b.get_u64_le();
        let expires = b.get_u64_le();
        let persistent = b.get_u8() & 1 == 1;
        let id = get_short(&mut b)?;
        let destination = get_short(&mut b)?;
        if b.remaining() < 2 {
            return None;
        }
        let n = b.get_u16_le() as usize;
        let mut headers = Vec::with_capacity(n);
        for _ in 0..n {
            let k = get_long(&mut b)?;
            let v = get_long(&mut b)?;
            headers.push((k, v));
        }
        Some(Message {
            id: Arc::from(id),
            destination: Arc::from(destination),
            headers,
            body: record.slice(record.len() - b.len()..),
            persistent,
            expires,
            timestamp,
        })
    }
}

fn put_short(b: &mut BytesMut, s: &str) {
    let s = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    b.put_u16_le(s.len() as u16);
    b.put_slice(s);
}

fn get_short(b: &mut &[u8]) -> Option<String> {
    if b.remaining() < 2 {
        return None;
    }
    let n = b.get_u16_le() as usize;
    take_str(b, n)
}

fn get_long(b: &mut &[u8]) -> Option<String> {
    if b.remaining() < 4 {
        return None;
    }
    let n = b.get_u32_le() as usize;
    take_str(b, n)
}

fn take_str(b: &mut &[u8], n: usize) -> Option<String> {
    if b.remaining() < n {
        return None;
    }
    let s = std::str::from_utf8(&b[..n]).ok()?.to_string();
    b.advance(n);
    Some(s)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = Message {
            id: Arc::from("ID:b-1:7"),
            destination: Arc::from("/queue/a"),
            headers: vec![("k".into(), "v:1\n".into()), ("k".into(), "dup".into())],
            body: Bytes::from_static(b"\0binary\xff"),
            persistent: true,
            expires: 42,
            timestamp: 7,
        };
        assert_eq!(Message::decode(&m.encode()), Some(m));
        assert_eq!(Message::decode(b"\x02garbage"), None);
        assert_eq!(Message::decode(b""), None);
    }
}
