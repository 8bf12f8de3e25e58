//! The encoder: a frame out to bytes, with the escaping rules of the negotiated version.

use bytes::{BufMut, BytesMut};

use super::{Command, Frame, Version};

/// Writes `frame` to `dst` with the escaping rules of `version`.
///
/// A `content-length` header is added to a SEND, MESSAGE or ERROR frame with a non-empty body
/// unless the frame already carries one (which is then written as given). Headers of frames that
/// are never escaped (CONNECT, STOMP, CONNECTED, and every frame in 1.0) cannot carry LF: it is
/// written as a space so that a header can never split the frame. Their names are read up to
/// the first `:`, so a `:` in a name splits it there, unless what comes before it is empty or
/// `content-length` (the one header the decoder reads, so the frame would be unreadable): that
/// `:` is written as a space. A CR that is not
/// escaped (in those frames, and in 1.1, which has no escape for it) is written as is, and a
/// header whose value ends in one gets a CRLF line ending, so that every frame
/// [`Decoder`](super::Decoder) returns is encoded back to the same headers.
pub fn encode(frame: &Frame, version: Version, dst: &mut BytesMut) {
    let escaping = if frame.command.is_unescaped() || version == Version::V1_0 {
        None
    } else {
        Some(version)
    };
    let header_bytes: usize = frame
        .headers
        .iter()
        .map(|(n, v)| n.len() + v.len() + 2)
        .sum();
    dst.reserve(frame.command.as_str().len() + header_bytes + frame.body.len() + 32);
    dst.put_slice(frame.command.as_str().as_bytes());
    dst.put_u8(b'\n');
    for (name, value) in &frame.headers {
        put_name(dst, name, escaping);
        dst.put_u8(b':');
        put_header_text(dst, value, escaping);
        // The decoder drops one CR before an LF: a raw CR ending the value needs another.
        if value.ends_with('\r') && escaping != Some(Version::V1_2) {
            dst.put_u8(b'\r');
        }
        dst.put_u8(b'\n');
    }
    if !frame.body.is_empty()
        && matches!(
            frame.command,
            Command::Send | Command::Message | Command::Error
        )
        && frame.header("content-length").is_none()
    {
        dst.put_slice(b"content-length:");
        dst.put_slice(frame.body.len().to_string().as_bytes());
        dst.put_u8(b'\n');
    }
    dst.put_u8(b'\n');
    dst.put_slice(&frame.body);
    dst.put_u8(0);
}

/// A header name; unescaped, a `:` that would split it into nothing or `content-length` is
/// written as a space (see [`encode`]).
fn put_name(dst: &mut BytesMut, name: &str, escaping: Option<Version>) {
    if escaping.is_none()
        && let Some(i) = name.find(':')
        && (i == 0 || &name[..i] == "content-length")
    {
        put_header_text(dst, &name[..i], None);
        dst.put_u8(b' ');
        put_header_text(dst, &name[i + 1..], None);
    } else {
        put_header_text(dst, name, escaping);
    }
}

fn put_header_text(dst: &mut BytesMut, text: &str, escaping: Option<Version>) {
    let special = |b: u8| matches!(b, b'\n' | b'\r' | b':' | b'\\');
    if !text.bytes().any(special) {
        dst.put_slice(text.as_bytes());
        return;
    }
    for &b in text.as_bytes() {
        match (escaping, b) {
            (None, b'\n') => dst.put_u8(b' '),
            (None, b) => dst.put_u8(b),
            (Some(_), b'\n') => dst.put_slice(b"\\n"),
            (Some(_), b':') => dst.put_slice(b"\\c"),
            (Some(_), b'\\') => dst.put_slice(b"\\\\"),
            (Some(Version::V1_2), b'\r') => dst.put_slice(b"\\r"),
            (Some(_), b) => dst.put_u8(b),
        }
    }
}
