//! The STOMP 1.0/1.1/1.2 frame codec: bytes in, frames out, and back. No I/O.
//!
//! # Grammar (STOMP 1.2, with the leniencies noted)
//!
//! ```text
//! stream   = *( heart-beat | frame )
//! heart-beat = EOL                                  ; between frames only
//! frame    = command EOL
//!            *( header EOL )
//!            EOL
//!            body NUL
//! command  = "CONNECT" | "STOMP" | "CONNECTED" | "SEND" | "SUBSCRIBE" | "UNSUBSCRIBE"
//!          | "BEGIN" | "COMMIT" | "ABORT" | "ACK" | "NACK" | "DISCONNECT"
//!          | "MESSAGE" | "RECEIPT" | "ERROR"
//! header   = name ":" value                         ; split at the first raw ':'
//! EOL      = [CR] LF                                ; the CR is optional
//! body     = content-length octets                  ; when `content-length` is present
//!          | *( octet except NUL )                  ; otherwise, up to the first NUL
//! ```
//!
//! Header escaping depends on the negotiated [`Version`]:
//!
//! | version | escapes in names and values                 |
//! | ------- | ------------------------------------------- |
//! | 1.0     | none                                        |
//! | 1.1     | `\n` (LF), `\c` (`:`), `\\` (`\`)           |
//! | 1.2     | as 1.1, plus `\r` (CR)                      |
//!
//! CONNECT, STOMP and CONNECTED frames are never escaped, in either direction. Any other
//! backslash sequence is an error ([`FrameError::InvalidEscape`]). Values are not trimmed: only
//! the CR of a CRLF line ending is dropped (accepted in every version, so a header value ends
//! in a raw CR only when its line ends in CR CR LF). When a header repeats, its first value wins
//! ([`Frame::header`]).
//!
//! # Limits
//!
//! [`Limits`] are enforced while bytes arrive, not once the frame is complete: a frame fails as
//! soon as its buffered bytes (command through body, NUL excluded) exceed `max_frame_size` or
//! its `content-length` declares more than that; a header set fails as soon as it counts more
//! than `max_headers`; a header line fails as soon as it grows past `max_header_length` bytes,
//! EOL excluded, even before its EOL arrives; a command line that cannot be the start of a
//! known command fails at its first wrong byte. Defaults are in [`crate::defaults`].
//!
//! [`Decoder::decode`] answers `Ok(None)` when it needs more bytes: that is the normal answer,
//! not an error. It remembers how far it has scanned, so a large frame arriving in many reads is
//! scanned once.

use std::fmt;

use bytes::Bytes;

use crate::defaults;

mod decode;
mod encode;

pub use decode::Decoder;
pub use encode::encode;

/// A STOMP command: the first line of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// Client: open a session.
    Connect,
    /// Client: open a session (1.1+ synonym of CONNECT).
    Stomp,
    /// Server: the session is open.
    Connected,
    /// Client: send a message to a destination.
    Send,
    /// Client: subscribe to a destination.
    Subscribe,
    /// Client: end a subscription.
    Unsubscribe,
    /// Client: begin a transaction.
    Begin,
    /// Client: commit a transaction.
    Commit,
    /// Client: abort a transaction.
    Abort,
    /// Client: acknowledge a message.
    Ack,
    /// Client: refuse a message.
    Nack,
    /// Client: close the session.
    Disconnect,
    /// Server: a message for a subscription.
    Message,
    /// Server: confirms a frame that asked for a receipt.
    Receipt,
    /// Server: something went wrong; the server closes the connection after it.
    Error,
}

/// Every command, for lookups and tests.
const COMMANDS: [Command; 15] = [
    Command::Connect,
    Command::Stomp,
    Command::Connected,
    Command::Send,
    Command::Subscribe,
    Command::Unsubscribe,
    Command::Begin,
    Command::Commit,
    Command::Abort,
    Command::Ack,
    Command::Nack,
    Command::Disconnect,
    Command::Message,
    Command::Receipt,
    Command::Error,
];

impl Command {
    /// The command as it appears on the wire, e.g. `"SEND"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Command::Connect => "CONNECT",
            Command::Stomp => "STOMP",
            Command::Connected => "CONNECTED",
            Command::Send => "SEND",
            Command::Subscribe => "SUBSCRIBE",
            Command::Unsubscribe => "UNSUBSCRIBE",
            Command::Begin => "BEGIN",
            Command::Commit => "COMMIT",
            Command::Abort => "ABORT",
            Command::Ack => "ACK",
            Command::Nack => "NACK",
            Command::Disconnect => "DISCONNECT",
            Command::Message => "MESSAGE",
            Command::Receipt => "RECEIPT",
            Command::Error => "ERROR",
        }
    }

    /// The command spelled by `b` exactly (case-sensitive, no EOL), if any.
    pub fn parse(b: &[u8]) -> Option<Command> {
        COMMANDS
            .iter()
            .copied()
            .find(|c| c.as_str().as_bytes() == b)
    }

    /// Whether this frame's headers are written and read without escaping in every version.
    fn is_unescaped(&self) -> bool {
        matches!(self, Command::Connect | Command::Stomp | Command::Connected)
    }

    /// Whether `b` could still grow into a command line.
    fn is_prefix(b: &[u8]) -> bool {
        COMMANDS
            .iter()
            .any(|c| c.as_str().as_bytes().starts_with(b))
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A STOMP protocol version, ordered oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// STOMP 1.0: no escaping, no heart-beats.
    V1_0,
    /// STOMP 1.1: escaping of LF, `:` and `\`; heart-beats; NACK.
    V1_1,
    /// STOMP 1.2: adds CR escaping, CRLF line endings and the `ack` header.
    V1_2,
}

impl Version {
    /// The version as written in `version` and `accept-version` headers: `"1.0"`, `"1.1"`, `"1.2"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Version::V1_0 => "1.0",
            Version::V1_1 => "1.1",
            Version::V1_2 => "1.2",
        }
    }

    /// The highest version named in an `accept-version` header value (comma separated).
    ///
    /// No header means a 1.0 client, so [`Version::V1_0`]; a header naming no version we speak
    /// gives `None` (the server answers with an ERROR).
    pub fn negotiate(accept_version: Option<&str>) -> Option<Version> {
        let Some(value) = accept_version else {
            return Some(Version::V1_0);
        };
        value
            .split(',')
            .filter_map(|v| match v.trim() {
                "1.0" => Some(Version::V1_0),
                "1.1" => Some(Version::V1_1),
                "1.2" => Some(Version::V1_2),
                _ => None,
            })
            .max()
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One STOMP frame, headers unescaped, in wire order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The command.
    pub command: Command,
    /// Headers in the order received or to be sent; a name may repeat.
    pub headers: Vec<(String, String)>,
    /// The body: arbitrary bytes.
    pub body: Bytes,
}

impl Frame {
    /// A frame with no headers and an empty body.
    pub fn new(command: Command) -> Frame {
        Frame {
            command,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// Appends a header (builder style).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Frame {
        self.push_header(name, value);
        self
    }

    /// Sets the body (builder style).
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Frame {
        self.body = body.into();
        self
    }

    /// The value of the first header called `name`: in STOMP 1.2 a repeated header's first
    /// value wins.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Appends a header, even if one of that name exists.
    pub fn push_header(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.headers.push((name.into(), value.into()));
    }

    /// Replaces every header called `name` with one, at the first one's place (or at the end).
    pub fn set_header(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.headers.iter().position(|(n, _)| *n == name) {
            Some(i) => {
                self.headers[i].1 = value;
                let mut seen = 0usize;
                self.headers.retain(|(n, _)| {
                    if *n == name {
                        seen += 1;
                        seen == 1
                    } else {
                        true
                    }
                });
            }
            None => self.headers.push((name, value)),
        }
    }

    /// Removes every header called `name`.
    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| n != name);
    }
}

/// Bounds on what the decoder accepts; see the module doc for when each is checked.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest frame, command line through body (NUL excluded), in bytes.
    pub max_frame_size: usize,
    /// Most headers in one frame.
    pub max_headers: usize,
    /// Longest header line (name, colon and value as on the wire, EOL excluded), in bytes.
    pub max_header_length: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_frame_size: defaults::MAX_FRAME_SIZE,
            max_headers: defaults::MAX_HEADERS,
            max_header_length: defaults::MAX_HEADER_LENGTH,
        }
    }
}

/// What the decoder found next in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A complete frame.
    Frame(Frame),
    /// One EOL between frames: a heart-beat.
    HeartBeat,
}

/// Why bytes are not a valid STOMP frame. The text of each is a sentence fit for the
/// `message` header of an ERROR frame; after any of them the stream cannot be resynchronised.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The command line is not a STOMP command.
    #[error("unknown command {0:?}")]
    UnknownCommand(String),
    /// The frame is larger than allowed.
    #[error("frame exceeds the maximum size of {limit} bytes")]
    FrameTooLarge {
        /// The configured `max_frame_size`.
        limit: usize,
    },
    /// The frame has more headers than allowed.
    #[error("frame has more than the maximum of {limit} headers")]
    TooManyHeaders {
        /// The configured `max_headers`.
        limit: usize,
    },
    /// A header line is longer than allowed.
    #[error("header line exceeds the maximum length of {limit} bytes")]
    HeaderTooLong {
        /// The configured `max_header_length`.
        limit: usize,
    },
    /// A header line has no `:` or an empty name.
    #[error("malformed header line {0:?}: expected name:value")]
    MalformedHeader(String),
    /// A header contains a backslash sequence the version does not define.
    #[error("undefined escape sequence {0:?} in a header")]
    InvalidEscape(String),
    /// A header is not UTF-8.
    #[error("header is not valid UTF-8")]
    InvalidUtf8,
    /// The `content-length` header is not a byte count.
    #[error("content-length {0:?} is not a valid byte count")]
    BadContentLength(String),
    /// The byte after `content-length` bytes of body is not NUL.
    #[error("frame body is not followed by a NUL byte where content-length says it ends")]
    MissingNul,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use bytes::BytesMut;
    use proptest::prelude::*;

    fn decode_all(dec: &mut Decoder, buf: &mut BytesMut) -> Result<Vec<Item>, FrameError> {
        let mut items = Vec::new();
        while let Some(item) = dec.decode(buf)? {
            items.push(item);
        }
        Ok(items)
    }

    fn decode_one(bytes: &[u8], version: Version) -> Result<Option<Item>, FrameError> {
        let mut dec = Decoder::new(Limits::default());
        dec.set_version(version);
        dec.decode(&mut BytesMut::from(bytes))
    }

    fn frame_of(bytes: &[u8], version: Version) -> Frame {
        match decode_one(bytes, version) {
            Ok(Some(Item::Frame(f))) => f,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    fn encoded(frame: &Frame, version: Version) -> Vec<u8> {
        let mut dst = BytesMut::new();
        encode(frame, version, &mut dst);
        dst.to_vec()
    }

    fn small_limits() -> Limits {
        Limits {
            max_frame_size: 1024,
            max_headers: 4,
            max_header_length: 32,
        }
    }

    #[test]
    fn command_names_round_trip() {
        for c in COMMANDS {
            assert_eq!(Command::parse(c.as_str().as_bytes()), Some(c));
        }
        assert_eq!(Command::parse(b"send"), None);
        assert_eq!(Command::parse(b"SEND "), None);
    }

    #[test]
    fn version_negotiation() {
        assert_eq!(Version::negotiate(None), Some(Version::V1_0));
        assert_eq!(Version::negotiate(Some("1.0,1.1,1.2")), Some(Version::V1_2));
        assert_eq!(Version::negotiate(Some("1.1, 1.0")), Some(Version::V1_1));
        assert_eq!(Version::negotiate(Some("1.2,2.0")), Some(Version::V1_2));
        assert_eq!(Version::negotiate(Some("2.0")), None);
        assert_eq!(Version::negotiate(Some("")), None);
        assert!(Version::V1_0 < Version::V1_2);
    }

    #[test]
    fn header_accessors() {
        let mut f = Frame::new(Command::Send)
            .with_header("a", "1")
            .with_header("b", "2")
            .with_header("a", "3");
        assert_eq!(f.header("a"), Some("1"));
        f.set_header("a", "9");
        assert_eq!(
            f.headers,
            vec![("a".into(), "9".into()), ("b".into(), "2".into())]
        );
        f.set_header("c", "4");
        assert_eq!(f.header("c"), Some("4"));
        f.push_header("b", "5");
        f.remove_header("b");
        assert_eq!(f.header("b"), None);
        assert_eq!(f.headers.len(), 2);
    }

    #[test]
    fn decodes_a_simple_frame_and_removes_its_bytes() {
        let mut buf = BytesMut::from(&b"SEND\ndestination:/queue/a\n\nhello\0SEND"[..]);
        let mut dec = Decoder::new(Limits::default());
        let item = dec.decode(&mut buf).unwrap();
        let expected = Frame::new(Command::Send)
            .with_header("destination", "/queue/a")
            .with_body(&b"hello"[..]);
        assert_eq!(item, Some(Item::Frame(expected)));
        assert_eq!(&buf[..], b"SEND");
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
    }

    #[test]
    fn repeated_header_first_value_wins() {
        let f = frame_of(b"MESSAGE\nfoo:World\nfoo:Hello\n\n\0", Version::V1_2);
        assert_eq!(f.header("foo"), Some("World"));
        assert_eq!(f.headers.len(), 2);
    }

    #[test]
    fn values_are_not_trimmed_and_may_hold_colons() {
        let f = frame_of(b"SEND\n a : b:c \n\n\0", Version::V1_0);
        assert_eq!(f.headers, vec![(" a ".to_owned(), " b:c ".to_owned())]);
    }

    #[test]
    fn crlf_line_endings() {
        let f = frame_of(
            b"SEND\r\ndestination:/queue/a\r\nx:\r\n\r\nbody\0",
            Version::V1_2,
        );
        assert_eq!(f.command, Command::Send);
        assert_eq!(f.header("destination"), Some("/queue/a"));
        assert_eq!(f.header("x"), Some(""));
        assert_eq!(&f.body[..], b"body");
        // Only one CR is an EOL's.
        let f = frame_of(b"SEND\nx:a\r\r\n\n\0", Version::V1_0);
        assert_eq!(f.header("x"), Some("a\r"));
    }

    #[test]
    fn heart_beats_between_frames() {
        let mut buf = BytesMut::from(&b"\n\r\n\nSEND\n\n\0\n"[..]);
        let mut dec = Decoder::new(Limits::default());
        let items = decode_all(&mut dec, &mut buf).unwrap();
        assert_eq!(
            items,
            vec![
                Item::HeartBeat,
                Item::HeartBeat,
                Item::HeartBeat,
                Item::Frame(Frame::new(Command::Send)),
                Item::HeartBeat,
            ]
        );
        assert!(buf.is_empty());
        // A lone CR waits for its LF.
        let mut buf = BytesMut::from(&b"\r"[..]);
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"\n");
        assert_eq!(dec.decode(&mut buf).unwrap(), Some(Item::HeartBeat));
    }

    #[test]
    fn stray_nuls_between_frames_are_skipped() -> Result<(), FrameError> {
        let mut dec = Decoder::new(Limits::default());
        let mut buf = BytesMut::from(&b"\n\0\0SEND\ndestination:/queue/a\n\nx\0\0"[..]);
        assert_eq!(dec.decode(&mut buf)?, Some(Item::HeartBeat));
        let Some(Item::Frame(f)) = dec.decode(&mut buf)? else {
            panic!("a frame after the NULs");
        };
        assert_eq!(f.header("destination"), Some("/queue/a"));
        assert_eq!(dec.decode(&mut buf)?, None);
        assert!(buf.is_empty(), "the trailing NUL is consumed too");
        Ok(())
    }

    #[test]
    fn the_receipt_of_a_frame_that_fails_is_kept_for_the_error() {
        let limits = Limits {
            max_frame_size: 64,
            ..Limits::default()
        };
        let mut dec = Decoder::new(limits);
        let mut buf = BytesMut::from(&b"SEND\nreceipt:r-7\ndestination:/queue/a\n\n"[..]);
        buf.extend_from_slice(&[b'x'; 100]);
        assert!(matches!(
            dec.decode(&mut buf),
            Err(FrameError::FrameTooLarge { .. })
        ));
        assert_eq!(dec.failed_receipt(), Some("r-7"));
        let mut dec = Decoder::new(Limits::default());
        let mut buf = BytesMut::from(&b"SEND\ndestination:/queue/a\n\nx\0BOGUS\n"[..]);
        assert!(matches!(dec.decode(&mut buf), Ok(Some(Item::Frame(_)))));
        assert!(dec.decode(&mut buf).is_err());
        assert_eq!(dec.failed_receipt(), None, "no receipt carried over");
    }

    #[test]
    fn escaping_per_version() {
        let raw = b"MESSAGE\na\\cb:x\\ny\\\\z\\rw\n\n\0";
        let f = frame_of(raw, Version::V1_2);
        assert_eq!(f.headers, vec![("a:b".to_owned(), "x\ny\\z\rw".to_owned())]);
        // 1.1 has no \r.
        assert_eq!(
            decode_one(raw, Version::V1_1),
            Err(FrameError::InvalidEscape("\\r".into()))
        );
        let f = frame_of(b"MESSAGE\na\\cb:x\\ny\\\\z\n\n\0", Version::V1_1);
        assert_eq!(f.headers, vec![("a:b".to_owned(), "x\ny\\z".to_owned())]);
        // 1.0 has no escaping at all.
        let f = frame_of(raw, Version::V1_0);
        assert_eq!(
            f.headers,
            vec![("a\\cb".to_owned(), "x\\ny\\\\z\\rw".to_owned())]
        );
        // Undefined escapes are fatal in 1.1 and 1.2.
        for v in [Version::V1_1, Version::V1_2] {
            assert_eq!(
                decode_one(b"SEND\nx:a\\tb\n\n\0", v),
                Err(FrameError::InvalidEscape("\\t".into()))
            );
            assert_eq!(
                decode_one(b"SEND\nx:a\\\n\n\0", v),
                Err(FrameError::InvalidEscape("\\".into()))
            );
        }
    }

    #[test]
    fn encoding_escapes_per_version() {
        let f = Frame::new(Command::Message).with_header("a:b", "x\ny\\z\rw");
        assert_eq!(
            encoded(&f, Version::V1_2),
            b"MESSAGE\na\\cb:x\\ny\\\\z\\rw\n\n\0"
        );
        assert_eq!(
            encoded(&f, Version::V1_1),
            b"MESSAGE\na\\cb:x\\ny\\\\z\rw\n\n\0"
        );
        // 1.0 cannot escape: an LF becomes a space so the frame stays whole; a CR stays.
        assert_eq!(encoded(&f, Version::V1_0), b"MESSAGE\na:b:x y\\z\rw\n\n\0");
    }

    #[test]
    fn raw_carriage_returns_survive_re_encoding() {
        // Found by fuzzing: a raw CR that 1.0 reads (or a value ending in one, read in 1.0 or
        // 1.1 from a CR CR LF line) was written back as a space, or lost to the CRLF.
        for (raw, version) in [
            (&b"SEND\nx\ry:a\rb\n\n\0"[..], Version::V1_0),
            (&b"SEND\nx:a\r\r\n\n\0"[..], Version::V1_0),
            (&b"SEND\nx:a\r\r\n\n\0"[..], Version::V1_1),
            (&b"CONNECT\nlogin:\r\r\n\n\0"[..], Version::V1_2),
        ] {
            let f = frame_of(raw, version);
            let again = frame_of(&encoded(&f, version), version);
            assert_eq!(again, f, "{version}: {:?}", String::from_utf8_lossy(raw));
        }
        let f = Frame::new(Command::Message).with_header("x", "a\r");
        assert_eq!(encoded(&f, Version::V1_1), b"MESSAGE\nx:a\r\r\n\n\0");
        assert_eq!(encoded(&f, Version::V1_2), b"MESSAGE\nx:a\\r\n\n\0");
    }

    #[test]
    fn an_unescaped_name_never_splits_into_nothing_or_content_length() {
        // Found by fuzzing: a name starting with ':', or "content-length:..." (read escaped from
        // a 1.1 or 1.2 client, or given to the admin API), made a frame that no 1.0 consumer
        // could read: an empty name, or a content-length that is not a number.
        let f = frame_of(b"SEND\n\\ca\\cb:v\n\n\0", Version::V1_2);
        assert_eq!(f.header(":a:b"), Some("v"));
        let wire = encoded(&f, Version::V1_0);
        assert_eq!(wire, b"SEND\n a:b:v\n\n\0");
        // Read, as every 1.0 line, up to its first colon.
        assert_eq!(frame_of(&wire, Version::V1_0).header(" a"), Some("b:v"));
        let f = frame_of(b"MESSAGE\ncontent-length\\c:+\n\nx\0", Version::V1_1);
        let wire = encoded(&f, Version::V1_0);
        assert_eq!(wire, b"MESSAGE\ncontent-length :+\ncontent-length:1\n\nx\0");
        let again = frame_of(&wire, Version::V1_0);
        assert_eq!(again.header("content-length "), Some("+"));
        assert_eq!(&again.body[..], b"x");
        // Any other name splits at its first colon, as 1.0 reads it.
        let f = Frame::new(Command::Send).with_header("colon:name", "v");
        assert_eq!(encoded(&f, Version::V1_0), b"SEND\ncolon:name:v\n\n\0");
        // Values keep theirs.
        let f = Frame::new(Command::Message).with_header("k", ":v:");
        assert_eq!(encoded(&f, Version::V1_0), b"MESSAGE\nk::v:\n\n\0");
    }

    #[test]
    fn connect_frames_are_never_escaped() {
        let raw = b"CONNECT\nlogin:a\\b\npasscode:p:q\n\n\0";
        for v in [Version::V1_0, Version::V1_1, Version::V1_2] {
            let f = frame_of(raw, v);
            assert_eq!(f.header("login"), Some("a\\b"));
            assert_eq!(f.header("passcode"), Some("p:q"));
        }
        let f = frame_of(b"STOMP\nlogin:a\\t\n\n\0", Version::V1_2);
        assert_eq!(f.header("login"), Some("a\\t"));
        let f = Frame::new(Command::Connected).with_header("server", "mq\\1:2");
        assert_eq!(
            encoded(&f, Version::V1_2),
            b"CONNECTED\nserver:mq\\1:2\n\n\0"
        );
    }

    #[test]
    fn content_length_allows_nul_in_body() {
        let f = frame_of(b"SEND\ncontent-length:5\n\na\0b\0c\0", Version::V1_2);
        assert_eq!(&f.body[..], b"a\0b\0c");
        // First content-length wins too.
        let f = frame_of(
            b"SEND\ncontent-length:1\ncontent-length:3\n\na\0",
            Version::V1_2,
        );
        assert_eq!(&f.body[..], b"a");
    }

    #[test]
    fn content_length_errors() {
        assert_eq!(
            decode_one(b"SEND\ncontent-length:3\n\nabcd\0", Version::V1_2),
            Err(FrameError::MissingNul)
        );
        assert_eq!(
            decode_one(b"SEND\ncontent-length:x1\n\nabcd\0", Version::V1_2),
            Err(FrameError::BadContentLength("x1".into()))
        );
        assert_eq!(
            decode_one(b"SEND\ncontent-length:-1\n\n\0", Version::V1_2),
            Err(FrameError::BadContentLength("-1".into()))
        );
    }

    #[test]
    fn content_length_waits_for_the_whole_body() {
        let mut dec = Decoder::new(Limits::default());
        let mut buf = BytesMut::from(&b"SEND\ncontent-length:6\n\nab\0"[..]);
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"cde");
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"\0");
        let Some(Item::Frame(f)) = dec.decode(&mut buf).unwrap() else {
            panic!("expected a frame");
        };
        assert_eq!(&f.body[..], b"ab\0cde");
    }

    #[test]
    fn encode_adds_content_length() {
        let f = Frame::new(Command::Send)
            .with_header("destination", "/queue/a")
            .with_body(&b"a\0b"[..]);
        assert_eq!(
            encoded(&f, Version::V1_2),
            b"SEND\ndestination:/queue/a\ncontent-length:3\n\na\0b\0"
        );
        // Not for an empty body, nor when one is present already.
        assert_eq!(
            encoded(&Frame::new(Command::Send), Version::V1_2),
            b"SEND\n\n\0"
        );
        let f = Frame::new(Command::Error)
            .with_header("content-length", "2")
            .with_body(&b"ab"[..]);
        assert_eq!(
            encoded(&f, Version::V1_0),
            b"ERROR\ncontent-length:2\n\nab\0"
        );
        // Frames that carry no body by protocol get none added.
        let f = Frame::new(Command::Receipt).with_header("receipt-id", "1");
        assert_eq!(encoded(&f, Version::V1_2), b"RECEIPT\nreceipt-id:1\n\n\0");
    }

    #[test]
    fn unknown_command_and_garbage_fail_promptly() {
        assert_eq!(
            decode_one(b"FOO\n\n\0", Version::V1_2),
            Err(FrameError::UnknownCommand("FOO".into()))
        );
        assert_eq!(
            decode_one(b"send\n\n\0", Version::V1_2),
            Err(FrameError::UnknownCommand("send".into()))
        );
        // No EOL yet, but no command starts like this.
        assert!(matches!(
            decode_one(b"GET / HTTP/1.1", Version::V1_2),
            Err(FrameError::UnknownCommand(_))
        ));
        assert!(matches!(
            decode_one(b"\x16\x03\x01", Version::V1_2),
            Err(FrameError::UnknownCommand(_))
        ));
        assert!(matches!(
            decode_one(b"SENDING", Version::V1_2),
            Err(FrameError::UnknownCommand(_))
        ));
        assert!(matches!(
            decode_one(b"\rX", Version::V1_2),
            Err(FrameError::UnknownCommand(_))
        ));
        // A valid beginning waits.
        assert_eq!(decode_one(b"UNSUBSCR", Version::V1_2), Ok(None));
        assert_eq!(decode_one(b"SEND\r", Version::V1_2), Ok(None));
        // A megabyte of garbage is refused on the first bytes.
        let garbage = vec![b'x'; 1 << 20];
        assert!(matches!(
            decode_one(&garbage, Version::V1_2),
            Err(FrameError::UnknownCommand(s)) if s.len() <= 64
        ));
    }

    #[test]
    fn malformed_headers() {
        assert_eq!(
            decode_one(b"SEND\nnocolon\n\n\0", Version::V1_2),
            Err(FrameError::MalformedHeader("nocolon".into()))
        );
        assert_eq!(
            decode_one(b"SEND\n:value\n\n\0", Version::V1_2),
            Err(FrameError::MalformedHeader(":value".into()))
        );
        assert_eq!(
            decode_one(b"SEND\nx:\xff\xfe\n\n\0", Version::V1_2),
            Err(FrameError::InvalidUtf8)
        );
        // A body need not be UTF-8.
        let f = frame_of(b"SEND\nx:\xc3\xa9\n\n\xff\xfe\0", Version::V1_2);
        assert_eq!(f.header("x"), Some("é"));
        assert_eq!(&f.body[..], b"\xff\xfe");
    }

    #[test]
    fn declared_content_length_over_the_limit_fails_at_once() {
        let mut dec = Decoder::new(Limits::default());
        let mut buf = BytesMut::from(&b"SEND\ncontent-length:104857600\n\n"[..]);
        assert_eq!(
            dec.decode(&mut buf),
            Err(FrameError::FrameTooLarge {
                limit: defaults::MAX_FRAME_SIZE
            })
        );
    }

    #[test]
    fn content_length_past_usize_max_fails_under_a_limit_of_usize_max() {
        // The body's end offset overflowed: a panic with overflow checks, a MissingNul without.
        let mut dec = Decoder::new(Limits {
            max_frame_size: usize::MAX,
            ..Limits::default()
        });
        let mut buf = BytesMut::from(&b"SEND\ncontent-length:18446744073709551615\n\nx\0"[..]);
        assert_eq!(
            dec.decode(&mut buf),
            Err(FrameError::FrameTooLarge { limit: usize::MAX })
        );
    }

    #[test]
    fn body_over_the_limit_fails_once_buffered() {
        let limits = small_limits();
        let mut dec = Decoder::new(limits);
        let mut buf = BytesMut::from(&b"SEND\n\n"[..]);
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
        // Up to the limit it waits ...
        buf.extend_from_slice(&vec![b'a'; limits.max_frame_size - buf.len()]);
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
        // ... one byte more and it fails, NUL or not.
        buf.extend_from_slice(b"a");
        assert_eq!(
            dec.decode(&mut buf),
            Err(FrameError::FrameTooLarge {
                limit: limits.max_frame_size
            })
        );
        // Exactly the limit is accepted.
        let mut buf = BytesMut::from(&b"SEND\n\n"[..]);
        buf.extend_from_slice(&vec![b'a'; limits.max_frame_size - buf.len()]);
        buf.extend_from_slice(b"\0");
        assert!(matches!(
            dec.decode(&mut buf),
            Ok(Some(Item::Frame(f))) if f.body.len() == limits.max_frame_size - 6
        ));
        // A complete oversized frame in one read fails too.
        let mut buf = BytesMut::from(&b"SEND\n\n"[..]);
        buf.extend_from_slice(&vec![b'a'; 2000]);
        buf.extend_from_slice(b"\0");
        assert!(matches!(
            dec.decode(&mut buf),
            Err(FrameError::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn headers_over_the_frame_limit_fail_before_the_blank_line() {
        let limits = Limits {
            max_frame_size: 100,
            max_headers: 1000,
            max_header_length: 1000,
        };
        let mut dec = Decoder::new(limits);
        let mut buf = BytesMut::from(&b"SEND\n"[..]);
        while buf.len() <= 100 {
            buf.extend_from_slice(b"h:v\n");
        }
        assert_eq!(
            dec.decode(&mut buf),
            Err(FrameError::FrameTooLarge { limit: 100 })
        );
    }

    #[test]
    fn header_lines_past_the_frame_limit_are_not_parsed() {
        // Found by fuzzing: header lines that arrived whole in one read were all parsed (and
        // allocated) before the frame was measured.
        let limits = Limits {
            max_frame_size: 100,
            max_headers: 1000,
            max_header_length: 1000,
        };
        let mut raw = b"SEND\n".to_vec();
        while raw.len() <= 100 {
            raw.extend_from_slice(b"h:v\n");
        }
        raw.extend_from_slice(b"not a header\n\n\0");
        let mut dec = Decoder::new(limits);
        assert_eq!(
            dec.decode(&mut BytesMut::from(&raw[..])),
            Err(FrameError::FrameTooLarge { limit: 100 })
        );
        // A frame of exactly the limit still passes.
        let mut raw = b"SEND\n".to_vec();
        for _ in 0..23 {
            raw.extend_from_slice(b"h:v\n");
        }
        raw.extend_from_slice(b"\nab\0");
        assert_eq!(raw.len(), 101);
        assert!(matches!(
            dec.decode(&mut BytesMut::from(&raw[..])),
            Ok(Some(Item::Frame(_)))
        ));
    }

    #[test]
    fn ten_thousand_headers_fail_when_counted() {
        let mut raw = b"SEND\n".to_vec();
        for i in 0..10_000 {
            raw.extend_from_slice(format!("h{i}:v\n").as_bytes());
        }
        // Never terminated: the count alone must fail it.
        assert_eq!(
            decode_one(&raw, Version::V1_2),
            Err(FrameError::TooManyHeaders {
                limit: defaults::MAX_HEADERS
            })
        );
        // And exactly the limit is fine.
        let limits = small_limits();
        let mut dec = Decoder::new(limits);
        let mut buf = BytesMut::from(&b"SEND\na:1\nb:2\nc:3\nd:4\n\n\0"[..]);
        assert!(matches!(dec.decode(&mut buf), Ok(Some(Item::Frame(_)))));
        let mut buf = BytesMut::from(&b"SEND\na:1\nb:2\nc:3\nd:4\ne:5\n"[..]);
        assert_eq!(
            dec.decode(&mut buf),
            Err(FrameError::TooManyHeaders { limit: 4 })
        );
    }

    #[test]
    fn long_header_line_fails_without_its_eol() {
        let limits = small_limits();
        let mut dec = Decoder::new(limits);
        let mut buf = BytesMut::from(&b"SEND\nx:"[..]);
        buf.extend_from_slice(&[b'v'; 30]);
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(&[b'v'; 10]);
        assert_eq!(
            dec.decode(&mut buf),
            Err(FrameError::HeaderTooLong { limit: 32 })
        );
        // With its EOL, too.
        let mut buf = BytesMut::from(&b"SEND\nx:"[..]);
        buf.extend_from_slice(&[b'v'; 31]);
        buf.extend_from_slice(b"\n\n\0");
        assert_eq!(
            dec.decode(&mut buf),
            Err(FrameError::HeaderTooLong { limit: 32 })
        );
        // Exactly the limit, with a CRLF, is fine.
        let mut buf = BytesMut::from(&b"SEND\nx:"[..]);
        buf.extend_from_slice(&[b'v'; 30]);
        buf.extend_from_slice(b"\r\n\n\0");
        assert!(matches!(dec.decode(&mut buf), Ok(Some(Item::Frame(_)))));
    }

    #[test]
    fn header_length_limit_of_usize_max_lets_a_partial_line_wait() {
        // Found by fuzzing: the limit plus one for the CR overflowed.
        let mut dec = Decoder::new(Limits {
            max_header_length: usize::MAX,
            ..Limits::default()
        });
        let mut buf = BytesMut::from(&b"ACK\nid:1"[..]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        buf.extend_from_slice(b"\n\n\0");
        assert!(matches!(
            dec.decode(&mut buf),
            Ok(Some(Item::Frame(f))) if f.header("id") == Some("1")
        ));
    }

    #[test]
    fn large_body_arriving_in_small_reads_is_scanned_once() {
        // Not a timing test: checks the bookkeeping that avoids rescans gives the same result.
        let mut dec = Decoder::new(Limits::default());
        let mut buf = BytesMut::from(&b"SEND\n\n"[..]);
        for _ in 0..1000 {
            buf.extend_from_slice(&[b'z'; 100]);
            assert_eq!(dec.decode(&mut buf).unwrap(), None);
        }
        buf.extend_from_slice(b"\0\n");
        let Some(Item::Frame(f)) = dec.decode(&mut buf).unwrap() else {
            panic!("expected a frame");
        };
        assert_eq!(f.body.len(), 100_000);
        assert_eq!(dec.decode(&mut buf).unwrap(), Some(Item::HeartBeat));
    }

    #[test]
    fn error_messages_are_sentences() {
        let e = FrameError::FrameTooLarge { limit: 10 };
        assert_eq!(e.to_string(), "frame exceeds the maximum size of 10 bytes");
        let e = FrameError::UnknownCommand("FOO\u{1}".into());
        assert_eq!(e.to_string(), "unknown command \"FOO\\u{1}\"");
    }

    // ---- properties -------------------------------------------------------------------

    fn any_version() -> impl Strategy<Value = Version> {
        prop_oneof![
            Just(Version::V1_0),
            Just(Version::V1_1),
            Just(Version::V1_2)
        ]
    }

    /// Header text the version can carry: anything in 1.1 and 1.2 (escaped, or a raw CR in
    /// 1.1); 1.0 cannot carry LF or (in names) ':'.
    fn header_text(version: Version, name: bool) -> BoxedStrategy<String> {
        let class = match (version, name) {
            (Version::V1_2 | Version::V1_1, _) => "[a-z:\\\\\n\r\0 é€😀-]",
            (Version::V1_0, true) => "[a-z\\\\\r\0 é€😀-]",
            (Version::V1_0, false) => "[a-z:\\\\\r\0 é€😀-]",
        };
        let min = usize::from(name);
        proptest::string::string_regex(&format!("{class}{{{min},12}}"))
            .unwrap()
            .prop_filter("content-length is the codec's", |s| s != "content-length")
            .boxed()
    }

    fn any_frame(version: Version) -> impl Strategy<Value = Frame> {
        let command = proptest::sample::select(
            COMMANDS
                .iter()
                .copied()
                .filter(|c| !c.is_unescaped())
                .collect::<Vec<_>>(),
        );
        let headers = proptest::collection::vec(
            (header_text(version, true), header_text(version, false)),
            0..6,
        );
        let body = proptest::collection::vec(any::<u8>(), 0..48);
        (command, headers, body).prop_map(|(command, headers, body)| {
            // Only SEND, MESSAGE and ERROR get a content-length, so only they carry NULs.
            let body = if matches!(command, Command::Send | Command::Message | Command::Error) {
                body
            } else {
                body.into_iter().filter(|&b| b != 0).collect()
            };
            Frame {
                command,
                headers,
                body: Bytes::from(body),
            }
        })
    }

    fn connect_frame() -> impl Strategy<Value = Frame> {
        let command = prop_oneof![
            Just(Command::Connect),
            Just(Command::Stomp),
            Just(Command::Connected)
        ];
        let headers =
            proptest::collection::vec(("[a-z-]{1,10}", "[a-z0-9:.,\\\\\r -]{0,12}"), 0..6);
        (command, headers).prop_map(|(command, headers)| Frame {
            command,
            headers,
            body: Bytes::new(),
        })
    }

    /// The frame as it decodes after encoding: with the `content-length` the encoder added.
    fn as_decoded(frame: &Frame) -> Frame {
        let mut f = frame.clone();
        if !f.body.is_empty()
            && matches!(f.command, Command::Send | Command::Message | Command::Error)
        {
            f.push_header("content-length", f.body.len().to_string());
        }
        f
    }

    fn versioned_frames() -> impl Strategy<Value = (Version, Vec<Frame>, Vec<bool>)> {
        any_version().prop_flat_map(|v| {
            (
                Just(v),
                proptest::collection::vec(prop_oneof![any_frame(v), connect_frame()], 1..4),
                proptest::collection::vec(any::<bool>(), 4),
            )
        })
    }

    proptest! {
        #[test]
        fn encode_then_decode_round_trips((version, frames, _) in versioned_frames()) {
            for frame in frames {
                let bytes = encoded(&frame, version);
                let mut buf = BytesMut::from(&bytes[..]);
                let mut dec = Decoder::new(Limits::default());
                dec.set_version(version);
                prop_assert_eq!(dec.decode(&mut buf), Ok(Some(Item::Frame(as_decoded(&frame)))));
                prop_assert!(buf.is_empty());
            }
        }

        #[test]
        fn split_at_every_byte_decodes_the_same((version, frames, beats) in versioned_frames()) {
            let mut stream = BytesMut::new();
            let mut expected = Vec::new();
            for (frame, beat) in frames.iter().zip(beats) {
                if beat {
                    stream.extend_from_slice(b"\r\n\n");
                    expected.extend([Item::HeartBeat, Item::HeartBeat]);
                }
                encode(frame, version, &mut stream);
                expected.push(Item::Frame(as_decoded(frame)));
            }
            for split in 0..=stream.len() {
                let mut dec = Decoder::new(Limits::default());
                dec.set_version(version);
                let mut buf = BytesMut::from(&stream[..split]);
                let mut items = decode_all(&mut dec, &mut buf).unwrap();
                buf.extend_from_slice(&stream[split..]);
                items.extend(decode_all(&mut dec, &mut buf).unwrap());
                prop_assert_eq!(&items, &expected);
                prop_assert!(buf.is_empty());
            }
        }

        #[test]
        fn random_bytes_never_panic(
            prefix in prop_oneof![Just(&b""[..]), Just(&b"SEND\n"[..]), Just(&b"MESSAGE\ncontent-length:3\n"[..])],
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
            chunk in 1usize..64,
            version in any_version(),
        ) {
            let mut dec = Decoder::new(small_limits());
            dec.set_version(version);
            let mut buf = BytesMut::from(prefix);
            for piece in bytes.chunks(chunk) {
                buf.extend_from_slice(piece);
                match decode_all(&mut dec, &mut buf) {
                    Ok(_) => {}
                    Err(_) => return Ok(()),
                }
            }
        }

        #[test]
        fn random_text_never_panics(
            text in "[A-Z\\\\:\n\r\0a-z-]{0,200}",
            version in any_version(),
        ) {
            let mut dec = Decoder::new(small_limits());
            dec.set_version(version);
            let mut buf = BytesMut::from(text.as_bytes());
            let _ = decode_all(&mut dec, &mut buf);
        }
    }
}
