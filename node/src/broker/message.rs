//! A message as the broker holds it: the one mapping between STOMP frames and messages (every
//! SEND, every bridge's MESSAGE, every admin send comes in through [`Message::from_headers`];
//! every MESSAGE to a subscriber and every forwarded SEND goes out through
//! [`Message::to_frame`]), and its encoding in the store.
//!
//! Store record layout (little endian):
//! ```text
//! u8 version(1) | u64 timestamp_ms | u64 expires_ms | u8 flags(bit0 persistent)
//! | u16 id_len | id | u16 dest_len | destination
//! | u16 header_count | { u32 name_len | name | u32 value_len | value }*
//! | body (rest)
//! ```

use std::collections::HashSet;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use mq_shared::destination::Destination;
use mq_shared::frame::{Command, Frame};

use crate::internode::{BROKER_PATH_HEADER, extend_path};

/// Headers the broker sets itself and never copies from an incoming frame into a message.
pub const RESERVED: &[&str] = &[
    "destination",
    "receipt",
    "transaction",
    "content-length",
    "message-id",
    "subscription",
    "ack",
    "redelivered",
];

/// The priority of a message without a `priority` header (JMS's default).
pub const DEFAULT_PRIORITY: u8 = 4;

/// Headers rebuilt from the message's fields on the way out, so never copied verbatim.
const FROM_FIELDS: &[&str] = &["persistent", "expires", BROKER_PATH_HEADER];

/// An immutable message: shared between the queue, consumers and bridges by `Arc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Globally unique id (`message-id`); kept across network bridges.
    pub id: Arc<str>,
    /// Where it was sent.
    pub destination: Destination,
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

/// How a message leaves the node.
#[derive(Debug, Clone, Copy)]
pub enum Outgoing<'a> {
    /// A MESSAGE for a subscription.
    Deliver {
        /// The subscription id.
        subscription: &'a str,
        /// The `ack` header (STOMP 1.2, client ack modes).
        ack: Option<&'a str>,
        /// Delivered before without an ack.
        redelivered: bool,
        /// The subscriber is a network bridge; this node's name goes on the broker path.
        to_bridge: Option<&'a str>,
    },
    /// A SEND by this node's bridge (named `local`) to a peer.
    Forward {
        /// This node's name, appended to the broker path.
        local: &'a str,
    },
}

impl Message {
    /// The message an incoming frame's headers describe: user headers in order (first value
    /// of a repeated header wins, [`RESERVED`] ones dropped), `persistent:true`, and `expires`
    /// in ms since the epoch (an unreadable value is an error, from any sender).
    pub fn from_headers(
        id: Arc<str>,
        destination: Destination,
        headers: impl IntoIterator<Item = (String, String)>,
        body: Bytes,
        now_ms: u64,
    ) -> Result<Message, String> {
        let mut seen: HashSet<String> = HashSet::new();
        let mut kept = Vec::new();
        for (k, v) in headers {
            if RESERVED.contains(&k.as_str()) || !seen.insert(k.clone()) {
                continue;
            }
            kept.push((k, v));
        }
        let value = |name: &str| {
            kept.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let persistent = value("persistent") == Some("true");
        if let Some(p) = value("priority").map(str::trim)
            && !p.is_empty()
            && p.parse::<u64>().is_err()
        {
            return Err(format!("priority '{p}' is not a number from 0 to 9"));
        }
        let expires = match value("expires").map(str::trim) {
            None | Some("") => 0,
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| format!("expires '{v}' is not a time in ms since the epoch"))?,
        };
        Ok(Message {
            id,
            destination,
            headers: kept,
            body,
            persistent,
            expires,
            timestamp: now_ms,
        })
    }

    /// The message a SEND (or a bridge's MESSAGE) carries: its destination must parse, its
    /// `message-id` is kept when `keep_id` (a trusted bridge) and present, else `new_id` names it.
    pub fn from_frame(
        mut frame: Frame,
        keep_id: bool,
        new_id: impl FnOnce() -> String,
    ) -> Result<Message, String> {
        let dest = frame
            .header("destination")
            .ok_or_else(|| format!("{} without a destination header", frame.command))?;
        let destination = Destination::parse(dest).map_err(|e| e.to_string())?;
        let id = match frame.header("message-id") {
            Some(id) if keep_id => id.to_string(),
            _ => new_id(),
        };
        if !keep_id {
            // Only a trusted bridge says which brokers a message crossed.
            frame.remove_header(BROKER_PATH_HEADER);
        }
        let body = std::mem::take(&mut frame.body);
        Message::from_headers(Arc::from(id), destination, frame.headers, body, now_ms())
    }

    /// The frame that carries this message out: `message-id`, `destination`, `persistent` and
    /// `expires` from its fields, the broker path extended when it goes to or through a
    /// bridge (clients never see it), then the user headers.
    pub fn to_frame(&self, how: Outgoing<'_>) -> Frame {
        let (command, to_bridge) = match how {
            Outgoing::Deliver { to_bridge, .. } => (Command::Message, to_bridge),
            Outgoing::Forward { local } => (Command::Send, Some(local)),
        };
        let mut f = Frame::new(command);
        f.headers.reserve(self.headers.len() + 8);
        if let Outgoing::Deliver { subscription, .. } = how {
            f.push_header("subscription", subscription);
        }
        f.push_header("message-id", &*self.id);
        f.push_header("destination", self.destination.as_str());
        if let Outgoing::Deliver {
            ack, redelivered, ..
        } = how
        {
            if let Some(a) = ack {
                f.push_header("ack", a);
            }
            if redelivered {
                f.push_header("redelivered", "true");
            }
        }
        if self.persistent {
            f.push_header("persistent", "true");
        }
        if self.expires != 0 {
            f.push_header("expires", self.expires.to_string());
        }
        if let Some(local) = to_bridge {
            f.push_header(
                BROKER_PATH_HEADER,
                extend_path(self.header(BROKER_PATH_HEADER), local),
            );
        }
        for (k, v) in &self.headers {
            if !FROM_FIELDS.contains(&k.as_str()) {
                f.push_header(k.as_str(), v.as_str());
            }
        }
        f.body = self.body.clone();
        f
    }

    /// What retried forwards are de-duplicated by: the id, which names the broker that minted
    /// it and a random UUID (`ID:BROKER-UUID`), so (origin broker, message id) in one. It must
    /// not be the broker a copy came through: after a failover the other member of a
    /// master/slave pair forwards the same message again, and that copy must be recognised.
    /// Only trusted bridges keep their ids (a client's are replaced), and a UUID cannot be
    /// guessed, so no one can pre-store another broker's ids to make them drop.
    pub fn dedup_key(&self) -> Arc<str> {
        self.id.clone()
    }

    /// The brokers this message has crossed (its broker path), oldest first.
    pub fn broker_path(&self) -> impl Iterator<Item = &str> {
        crate::internode::brokers(self.header(BROKER_PATH_HEADER).unwrap_or(""))
    }

    /// Bytes held for this message (headers and body), for statistics.
    pub fn size(&self) -> u64 {
        let h: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2)
            .sum();
        (h + self.body.len() + self.id.len() + self.destination.as_str().len()) as u64
    }

    /// JMS priority from the `priority` header: 0 (lowest) to 9, default 4; a larger number
    /// counts as 9 (what `from_headers` accepts is checked there).
    pub fn priority(&self) -> u8 {
        self.header("priority")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(DEFAULT_PRIORITY, |p| p.min(9) as u8)
    }

    /// The store rank of its priority: 0 for priority 9 (delivered first) to 9 for priority 0.
    pub fn rank(&self) -> u8 {
        9 - self.priority()
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

    /// Length of the store record [`Message::encode`] writes, to the byte: a record held
    /// until its checkpoint must not carry a grown buffer's slack.
    fn encoded_len(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .take(u16::MAX as usize)
            .map(|(k, v)| 8 + k.len() + v.len())
            .sum();
        let short = |s: &str| 2 + s.len().min(u16::MAX as usize);
        1 + 8
            + 8
            + 1
            + short(&self.id)
            + short(self.destination.as_str())
            + 2
            + headers
            + self.body.len()
    }

    /// Encodes for the store and points the body at the record's copy of it, so that the
    /// buffer the frame was read into is not kept alive by this message as well.
    pub fn encode_shared(&mut self) -> Bytes {
        let data = self.encode();
        self.body = data.slice(data.len() - self.body.len()..);
        data
    }

    /// Encodes for the store.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(self.encoded_len());
        b.put_u8(1);
        b.put_u64_le(self.timestamp);
        b.put_u64_le(self.expires);
        b.put_u8(u8::from(self.persistent));
        put_short(&mut b, &self.id);
        put_short(&mut b, self.destination.as_str());
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
        let destination = Destination::parse(&get_short(&mut b)?).ok()?;
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
            destination,
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
            destination: Destination::queue("a"),
            headers: vec![("k".into(), "v:1\n".into()), ("k".into(), "dup".into())],
            body: Bytes::from_static(b"\0binary\xff"),
            persistent: true,
            expires: 42,
            timestamp: 7,
        };
        let data = m.encode();
        assert_eq!(data.len(), m.encoded_len());
        assert_eq!(Message::decode(&data), Some(m.clone()));
        let mut shared = m.clone();
        let record = shared.encode_shared();
        assert_eq!(record, data);
        assert_eq!(shared, m);
        assert_eq!(
            shared.body.as_ptr(),
            record[record.len() - m.body.len()..].as_ptr()
        );
        assert_eq!(Message::decode(b"\x02garbage"), None);
        assert_eq!(Message::decode(b""), None);
    }

    #[test]
    fn one_mapping_in_and_out() -> Result<(), String> {
        let send = Frame::new(Command::Send)
            .with_header("destination", "/queue/q")
            .with_header("message-id", "forged")
            .with_header("k", "1")
            .with_header("k", "2")
            .with_header("receipt", "r")
            .with_header("persistent", "true")
            .with_header("expires", "99")
            .with_body(&b"hi"[..]);
        let m = Message::from_frame(send.clone(), false, || "ID:new".into())?;
        assert_eq!(&*m.id, "ID:new");
        assert!(m.persistent);
        assert_eq!(m.expires, 99);
        assert_eq!(m.header("k"), Some("1"));
        assert_eq!(m.header("receipt"), None);
        let kept = Message::from_frame(send, true, || "ID:new".into())?;
        assert_eq!(&*kept.id, "forged");
        let bad = Frame::new(Command::Send)
            .with_header("destination", "/queue/q")
            .with_header("expires", "soon");
        assert!(Message::from_frame(bad, true, String::new).is_err());
        let out = m.to_frame(Outgoing::Deliver {
            subscription: "s",
            ack: None,
            redelivered: true,
            to_bridge: None,
        });
        assert_eq!(out.header("redelivered"), Some("true"));
        assert_eq!(out.header(BROKER_PATH_HEADER), None);
        assert_eq!(
            out.headers
                .iter()
                .filter(|(k, _)| k == "persistent")
                .count(),
            1
        );
        let fwd = m.to_frame(Outgoing::Forward { local: "A" });
        assert_eq!(fwd.command, Command::Send);
        assert_eq!(fwd.header(BROKER_PATH_HEADER), Some("A"));
        assert_eq!(fwd.header("expires"), Some("99"));
        Ok(())
    }
}
