//! The lexical layer: schemes, `(...)` lists split at top-level commas, `?` queries and their
//! `name=value` pairs, `%XX` escapes. Nothing here knows an option name.

use std::fmt::{self, Write as _};

use super::error::{UriError, bad_value, unknown_scheme};
use super::redact::redact_uri;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scheme {
    Tcp,
    Ssl,
    /// STOMP over WebSocket (`ws://`), transports only.
    Ws,
    /// STOMP over WebSocket over TLS (`wss://`), transports only.
    Wss,
    Static,
    MasterSlave,
    Failover,
    Multicast,
}

pub(super) fn non_empty(s: &str) -> Result<&str, UriError> {
    let s = s.trim();
    if s.is_empty() {
        Err(UriError::Empty)
    } else {
        Ok(s)
    }
}

/// Splits `scheme:rest`, recognising the schemes of this module (case-insensitively).
pub(super) fn scheme_of<'a>(
    s: &'a str,
    expected: &'static str,
) -> Result<(Scheme, &'a str), UriError> {
    let missing = || UriError::MissingScheme {
        uri: redact_uri(s),
        expected,
    };
    let (name, rest) = s.split_once(':').ok_or_else(missing)?;
    let looks_like_scheme = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    // `localhost:61613` is a host and port, not a scheme.
    if !looks_like_scheme || rest.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(missing());
    }
    let scheme = match name.to_ascii_lowercase().as_str() {
        "tcp" | "stomp" => Scheme::Tcp,
        "ssl" | "stomp+ssl" => Scheme::Ssl,
        "ws" => Scheme::Ws,
        "wss" => Scheme::Wss,
        "static" => Scheme::Static,
        "masterslave" => Scheme::MasterSlave,
        "failover" => Scheme::Failover,
        "multicast" => Scheme::Multicast,
        _ => return Err(unknown_scheme(s, expected)),
    };
    Ok((scheme, rest))
}

/// The text after the `//` that `tcp:`, `ssl:` and `multicast:` require.
pub(super) fn slashes<'a>(s: &str, rest: &'a str) -> Result<&'a str, UriError> {
    rest.strip_prefix("//")
        .ok_or_else(|| UriError::MissingSlashes {
            scheme: s.split(':').next().unwrap_or_default().to_string(),
            uri: redact_uri(s),
        })
}

/// Composite schemes may be written `failover://(...)` as well as `failover:(...)`.
pub(super) fn strip_slashes(rest: &str) -> &str {
    rest.strip_prefix("//").unwrap_or(rest)
}

/// Splits `text?query` at the first `?`.
pub(super) fn split_query(s: &str) -> (&str, Option<&str>) {
    match s.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (s, None),
    }
}

/// Trims a whole URI, which must not be empty and whose parentheses must balance (so that the
/// parsers may rely on it).
pub(super) fn composite(s: &str) -> Result<&str, UriError> {
    let s = non_empty(s)?;
    check_parens(s)?;
    Ok(s)
}

/// [`scheme_of`] where only `want` will do: the text after `scheme:`.
pub(super) fn only_scheme<'a>(
    s: &'a str,
    want: Scheme,
    expected: &'static str,
) -> Result<&'a str, UriError> {
    match scheme_of(s, expected)? {
        (scheme, rest) if scheme == want => Ok(rest),
        _ => Err(unknown_scheme(s, expected)),
    }
}

/// Checks that parentheses balance.
fn check_parens(uri: &str) -> Result<(), UriError> {
    let mut depth = 0usize;
    for c in uri.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => {
                return Err(UriError::UnmatchedClose {
                    uri: redact_uri(uri),
                });
            }
            ')' => depth -= 1,
            _ => {}
        }
    }
    if depth > 0 {
        Err(UriError::MissingClose {
            uri: redact_uri(uri),
        })
    } else {
        Ok(())
    }
}

/// Splits `(body)?query` (after a composite scheme) into the body and the query.
pub(super) fn paren_body<'a>(
    s: &str,
    rest: &'a str,
    scheme: &'static str,
) -> Result<(&'a str, Option<&'a str>), UriError> {
    let inner = rest
        .trim_start()
        .strip_prefix('(')
        .ok_or_else(|| UriError::MissingOpen {
            scheme,
            uri: redact_uri(s),
        })?;
    let mut depth = 0usize;
    let mut close = None;
    for (i, c) in inner.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => {
                close = Some(i);
                break;
            }
            ')' => depth -= 1,
            _ => {}
        }
    }
    let close = close.ok_or_else(|| UriError::MissingClose { uri: redact_uri(s) })?;
    let body = &inner[..close];
    let after = inner[close + 1..].trim_start();
    if after.is_empty() {
        Ok((body, None))
    } else if let Some(query) = after.strip_prefix('?') {
        Ok((body, Some(query)))
    } else {
        Err(UriError::TrailingText {
            text: redact_uri(after),
            uri: redact_uri(s),
        })
    }
}

/// Splits a list at the commas outside parentheses; entries are trimmed and must not be empty.
pub(super) fn split_list<'a>(body: &'a str, uri: &str) -> Result<Vec<&'a str>, UriError> {
    if body.trim().is_empty() {
        return Err(UriError::EmptyList {
            uri: redact_uri(uri),
        });
    }
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in body.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                items.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&body[start..]);
    let items: Vec<&str> = items.into_iter().map(str::trim).collect();
    if items.iter().any(|item| item.is_empty()) {
        return Err(UriError::EmptyEntry {
            uri: redact_uri(uri),
        });
    }
    Ok(items)
}

pub(super) fn write_query(f: &mut fmt::Formatter<'_>, pairs: &[String]) -> fmt::Result {
    if !pairs.is_empty() {
        write!(f, "?{}", pairs.join("&"))?;
    }
    Ok(())
}

/// `name=value` pairs of a query, trimmed, empty segments skipped; `None` for a missing `=`.
pub(super) fn query_pairs(query: Option<&str>) -> Vec<(&str, Option<&str>)> {
    query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .map(str::trim)
        .filter(|seg| !seg.is_empty())
        .map(|seg| match seg.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (seg, None),
        })
        .collect()
}

/// Decodes `%XX` escapes.
pub(super) fn decode(key: &str, raw: &str) -> Result<String, UriError> {
    if !raw.contains('%') {
        return Ok(raw.to_string());
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            let byte = hex.ok_or_else(|| bad_value(key, "%XX escapes with two hex digits", raw))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad_value(key, "escapes that decode to UTF-8", raw))
}

/// Escapes what would otherwise end, split or be trimmed off a value: `% & , ( ) ? # =`,
/// whitespace (Unicode's, which the parser trims) and control characters, byte by byte of
/// their UTF-8.
pub(super) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '&' | ',' | '(' | ')' | '?' | '#' | '=')
            || c.is_whitespace()
            || c.is_control()
        {
            for b in c.encode_utf8(&mut [0; 4]).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_character_the_parser_trims_is_escaped() {
        // A value ending in U+00A0 or U+3000 was printed raw, and trimmed when read back.
        for c in [
            '\u{a0}', '\u{85}', '\u{2028}', '\u{3000}', '\u{9f}', ' ', '\t',
        ] {
            let value = format!("{c}x{c}");
            let printed = encode(&value);
            assert_eq!(printed.trim(), printed, "{c:?}");
            assert!(printed.is_ascii(), "{printed}");
            assert_eq!(decode("k", &printed), Ok(value));
        }
        assert_eq!(encode("a b\u{a0}é"), "a%20b%C2%A0é");
    }
}
