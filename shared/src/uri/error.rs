//! [`UriError`], the one error of URI parsing, and the hints its messages carry ("did you
//! mean", the known options).

use std::fmt::Write as _;

use super::redact::{is_secret_key, redact_uri};
use crate::defaults;

/// Why a connector URI or destination filter was rejected. Each message names the offending part;
/// the URI text it quotes has its secrets (`password`, `secret`) masked, so an error may be
/// logged or shown as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// Nothing but whitespace was given.
    #[error("empty URI")]
    Empty,
    /// The text does not start with `scheme:`.
    #[error("missing scheme in '{uri}' (expected {expected})")]
    MissingScheme {
        /// The text as given.
        uri: String,
        /// The schemes allowed here.
        expected: &'static str,
    },
    /// A scheme that is not allowed here.
    #[error("unknown scheme '{scheme}' in '{uri}' (expected {expected})")]
    UnknownScheme {
        /// The scheme as given.
        scheme: String,
        /// The text as given.
        uri: String,
        /// The schemes allowed here.
        expected: &'static str,
    },
    /// `tcp:` or `multicast:` without the `//`.
    #[error("missing '//' after '{scheme}:' in '{uri}'")]
    MissingSlashes {
        /// The scheme as given.
        scheme: String,
        /// The text as given.
        uri: String,
    },
    /// A `(` without its `)`.
    #[error("missing ')' in '{uri}'")]
    MissingClose {
        /// The whole URI.
        uri: String,
    },
    /// A `)` without its `(`.
    #[error("unmatched ')' in '{uri}'")]
    UnmatchedClose {
        /// The whole URI.
        uri: String,
    },
    /// `static:` or `masterslave:` not followed by a parenthesised list.
    #[error("missing '(' after '{scheme}' in '{uri}' (write {scheme}(tcp://host:port,...))")]
    MissingOpen {
        /// `static:` or `masterslave:`.
        scheme: &'static str,
        /// The text as given.
        uri: String,
    },
    /// Text after a closing `)` that does not start the options with `?`.
    #[error("unexpected '{text}' after ')' in '{uri}' (options start with '?')")]
    TrailingText {
        /// The unexpected text.
        text: String,
        /// The text it was found in.
        uri: String,
    },
    /// A list with no entries, such as `static:()`.
    #[error("empty list in '{uri}'")]
    EmptyList {
        /// The text as given.
        uri: String,
    },
    /// A list with an empty entry, such as `static:(tcp://a:1,,tcp://b:2)`.
    #[error("empty entry in the list of '{uri}'")]
    EmptyEntry {
        /// The text as given.
        uri: String,
    },
    /// `tcp://:61613`.
    #[error("missing host in '{endpoint}'")]
    MissingHost {
        /// The endpoint as given.
        endpoint: String,
    },
    /// A host that is not a name, an IPv4 address or a bracketed IPv6 address.
    #[error("bad host '{host}' in '{endpoint}' ({reason})")]
    BadHost {
        /// The host as given.
        host: String,
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `tcp://localhost`.
    #[error("missing port in '{endpoint}' (write host:port)")]
    MissingPort {
        /// The endpoint as given.
        endpoint: String,
    },
    /// A port that is not a number in range.
    #[error("bad port '{port}' in '{endpoint}' (want {want})")]
    BadPort {
        /// The port as given.
        port: String,
        /// The endpoint as given.
        endpoint: String,
        /// The allowed range.
        want: &'static str,
    },
    /// An option name this URI does not know (option names are case-sensitive).
    #[error("unknown option '{option}' in {context} ({})", known_hint(.suggestion, .known))]
    UnknownOption {
        /// The option as given.
        option: String,
        /// The kind of URI, e.g. `static:(...)`.
        context: &'static str,
        /// A known option the given one looks like a misspelling of.
        suggestion: Option<&'static str>,
        /// The options this URI knows.
        known: Vec<&'static str>,
    },
    /// An ActiveMQ option that mq does not implement.
    #[error(
        "option '{option}' of ActiveMQ is not supported by mq in {context} ({})",
        known_hint(&None, .known)
    )]
    UnsupportedOption {
        /// The option as given.
        option: String,
        /// The kind of URI, e.g. `failover:(...)`.
        context: &'static str,
        /// The options this URI knows.
        known: Vec<&'static str>,
    },
    /// The same option twice.
    #[error("option '{option}' given more than once in {context}")]
    DuplicateOption {
        /// The option as given the second time.
        option: String,
        /// The kind of URI.
        context: &'static str,
    },
    /// `?duplex` without `=value`.
    #[error("option '{option}' has no value (write {option}=...)")]
    MissingValue {
        /// The option as given.
        option: String,
    },
    /// A value of the wrong type or out of range.
    #[error("option '{option}' wants {want}, got '{value}'")]
    BadValue {
        /// The option.
        option: String,
        /// What it accepts, e.g. `a whole number`.
        want: &'static str,
        /// The value as given.
        value: String,
    },
    /// A malformed destination filter.
    #[error("bad destination filter '{filter}': {reason}")]
    BadDestination {
        /// The filter as given.
        filter: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A TLS option on a plain `tcp://` or `ws://` URI.
    #[error("option '{option}' applies to ssl:// URIs only (and wss://), not '{uri}'")]
    OptionNeedsTls {
        /// The option as given.
        option: String,
        /// The URI as given (secrets masked).
        uri: String,
    },
    /// A multicast group that is neither `default` nor an IPv4 multicast address and port.
    #[error(
        "bad multicast group '{group}' in '{uri}' (want 'default' or an IPv4 multicast address and port, e.g. {})",
        defaults::MULTICAST_GROUP
    )]
    BadMulticast {
        /// The group address as given.
        group: String,
        /// The text as given.
        uri: String,
    },
}

fn known_hint(suggestion: &Option<&str>, known: &[&str]) -> String {
    let mut out = String::new();
    if let Some(s) = suggestion {
        let _ = write!(out, "did you mean '{s}'? ");
    }
    if known.is_empty() {
        out.push_str("it takes no options");
    } else {
        let _ = write!(out, "known: {}", known.join(", "));
    }
    out
}

/// The error for an option `known` does not list: unsupported if ActiveMQ has it.
pub(super) fn unknown_option(
    key: &str,
    context: &'static str,
    known: &[&'static str],
    unsupported: &[&'static str],
) -> UriError {
    if unsupported.contains(&key) || key.starts_with("nested.") {
        return UriError::UnsupportedOption {
            option: key.to_string(),
            context,
            known: known.to_vec(),
        };
    }
    let suggestion = known
        .iter()
        .copied()
        .filter(|k| k.eq_ignore_ascii_case(key) || edit_distance(k, key) <= 2)
        .min_by_key(|k| edit_distance(k, key));
    UriError::UnknownOption {
        option: key.to_string(),
        context,
        suggestion,
        known: known.to_vec(),
    }
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb {
                diagonal
            } else {
                1 + diagonal.min(above).min(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

pub(super) fn unknown_scheme(s: &str, expected: &'static str) -> UriError {
    UriError::UnknownScheme {
        scheme: s.split(':').next().unwrap_or_default().to_string(),
        uri: redact_uri(s),
        expected,
    }
}

pub(super) fn bad_value(key: &str, want: &'static str, value: &str) -> UriError {
    let value = if is_secret_key(key) {
        defaults::SECRET_MASK
    } else {
        value
    };
    UriError::BadValue {
        option: key.to_string(),
        want,
        value: value.to_string(),
    }
}
