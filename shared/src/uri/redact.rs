//! Secrets in URIs, masked for display: the values of `password` and `secret` (and `passcode`,
//! any case) become `***` ([`defaults::SECRET_MASK`]), and so does the password of a
//! `scheme://user:password@host` user-info part.
//!
//! [`redact_uri`] works on any text, parsed or not (what a user typed, an error message), so a
//! URI that fails to parse is shown masked too. A masked value runs as far as the parser would
//! read it: to the next `&` at the top level; inside parentheses also to the `,` or `)` that ends
//! the list entry. [`Redacted`] shows a parsed URI through [`redact_uri`]; the URI types' own
//! `Display` stays unmasked, because configurations are saved with it.

use std::fmt;

use crate::defaults;

/// Option names whose values are secrets.
const SECRET_KEYS: &[&str] = &["password", "passcode", "secret"];

/// Whether the option `key` holds a secret (`password`, `passcode`, `secret`, any case).
pub(super) fn is_secret_key(key: &str) -> bool {
    SECRET_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key))
}

/// `s` with every secret masked: `password=...`, `secret=...` and `passcode=...` values, and
/// the password of `user:password@` user info.
///
/// ```
/// use mq_shared::uri::redact_uri;
/// assert_eq!(
///     redact_uri("static:(ssl://a:1,failover:(tcp://b:2))?userName=bridge&password=s3cret&duplex=true"),
///     "static:(ssl://a:1,failover:(tcp://b:2))?userName=bridge&password=***&duplex=true",
/// );
/// ```
pub fn redact_uri(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    let mut i = 0;
    let mut at_boundary = true;
    while i < bytes.len() {
        if at_boundary && let Some(value_start) = secret_value_start(s, i) {
            out.push_str(&s[i..value_start]);
            out.push_str(defaults::SECRET_MASK);
            i = value_end(bytes, value_start, depth);
            at_boundary = false;
            continue;
        }
        if s[i..].starts_with("://")
            && let Some((colon, at)) = user_info_password(bytes, i + 3)
        {
            out.push_str(&s[i..=colon]);
            out.push_str(defaults::SECRET_MASK);
            i = at;
            at_boundary = false;
            continue;
        }
        let Some(c) = s[i..].chars().next() else {
            break;
        };
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        at_boundary = matches!(c, '?' | '&' | '(' | ',' | ';') || c.is_whitespace();
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// If a secret option starts at `i` (`password=`, spaces allowed around `=`), where its value
/// starts.
fn secret_value_start(s: &str, i: usize) -> Option<usize> {
    let rest = &s[i..];
    let key_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
        .unwrap_or(rest.len());
    if key_len == 0 || !is_secret_key(&rest[..key_len]) {
        return None;
    }
    let after_key = &rest[key_len..];
    let eq = after_key.trim_start();
    let eq = eq.strip_prefix('=')?;
    let value = eq.trim_start();
    Some(i + (rest.len() - value.len()))
}

/// Where a value starting at `start` ends: the next `&` outside any parentheses it opens; and
/// inside a list (`depth > 0`), also the `,` or `)` that ends the entry.
fn value_end(bytes: &[u8], start: usize, depth: usize) -> usize {
    let mut nested = 0usize;
    let mut j = start;
    while j < bytes.len() {
        match bytes[j] {
            b'&' if nested == 0 => break,
            b',' | b')' if nested == 0 && depth > 0 => break,
            b'(' => nested += 1,
            b')' => nested = nested.saturating_sub(1),
            _ => {}
        }
        j += 1;
    }
    j
}

/// For the authority starting at `start` (after `://`), the positions of the `:` and `@` of a
/// `user:password@` part, if there is one.
fn user_info_password(bytes: &[u8], start: usize) -> Option<(usize, usize)> {
    let mut colon = None;
    for (j, b) in bytes.iter().enumerate().skip(start) {
        match b {
            b'@' => return colon.map(|c| (c, j)),
            b':' if colon.is_none() => colon = Some(j),
            b'/' | b'?' | b'#' | b'(' | b')' | b',' | b'&' | b'[' => return None,
            _ if b.is_ascii_whitespace() => return None,
            _ => {}
        }
    }
    None
}

/// A URI (or anything displayed as one) shown with its secrets masked, via [`redact_uri`]:
/// `format!("{}", Redacted(&uri))`, or `uri.redacted()` on the URI types.
#[derive(Clone, Copy)]
pub struct Redacted<'a, T: ?Sized>(pub &'a T);

impl<T: fmt::Display + ?Sized> fmt::Display for Redacted<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_uri(&self.0.to_string()))
    }
}

impl<T: fmt::Display + ?Sized> fmt::Debug for Redacted<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", redact_uri(&self.0.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_values_of_secret_options_only() {
        assert_eq!(
            redact_uri("static:(tcp://a:1)?password=p&userName=u"),
            "static:(tcp://a:1)?password=***&userName=u"
        );
        assert_eq!(
            redact_uri("multicast://default?group=g&secret=abc"),
            "multicast://default?group=g&secret=***"
        );
        assert_eq!(redact_uri("x?PASSWORD = p q&a=1"), "x?PASSWORD = ***&a=1");
        assert_eq!(redact_uri("passcode=p"), "passcode=***");
        // Not a key of its own: a suffix, or a value.
        assert_eq!(redact_uri("x?mypassword=p"), "x?mypassword=p");
        assert_eq!(redact_uri("x?name=password"), "x?name=password");
        assert_eq!(redact_uri("tcp://a:1"), "tcp://a:1");
    }

    #[test]
    fn a_value_ends_where_the_parser_would_end_it() {
        // Top level: only `&` ends it, so a raw comma or parenthesis stays masked.
        assert_eq!(
            redact_uri("s:(t://a:1)?password=a,b)c"),
            "s:(t://a:1)?password=***"
        );
        // Inside a list, the entry's `,` or `)` ends it too.
        assert_eq!(
            redact_uri("static:(failover:(tcp://a:1?password=x,tcp://b:2)?secret=y)"),
            "static:(failover:(tcp://a:1?password=***,tcp://b:2)?secret=***)"
        );
        // The discovery URI nested in a transport: its secret runs to the end.
        assert_eq!(
            redact_uri("ssl://h:1?discoveryUri=multicast://default?secret=s%26t"),
            "ssl://h:1?discoveryUri=multicast://default?secret=***"
        );
    }

    #[test]
    fn masks_user_info_passwords() {
        assert_eq!(redact_uri("tcp://u:pw@h:1"), "tcp://u:***@h:1");
        assert_eq!(redact_uri("tcp://u@h:1"), "tcp://u@h:1");
        assert_eq!(redact_uri("tcp://h:1/x@y"), "tcp://h:1/x@y");
        assert_eq!(redact_uri("tcp://[::1]:1"), "tcp://[::1]:1");
    }

    #[test]
    fn keeps_multibyte_text() {
        assert_eq!(redact_uri("é?password=ü&ß=1"), "é?password=***&ß=1");
    }
}
