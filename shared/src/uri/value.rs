//! Typed option values: booleans, milliseconds, TTLs, attempt counts, prefetch sizes,
//! multipliers, names and destination lists, each error naming the option; and [`Seen`], which
//! rejects an option given twice.

use std::ops::RangeInclusive;
use std::str::FromStr;

use super::error::{UriError, bad_value};
use super::filter::DestinationFilter;
use super::syntax::decode;

/// Remembers the options already given, to reject repeats.
pub(super) struct Seen {
    context: &'static str,
    names: Vec<String>,
}

impl Seen {
    pub(super) fn new(context: &'static str) -> Self {
        Seen {
            context,
            names: Vec::new(),
        }
    }

    /// Records `canonical` (the option `given` names), failing if it came before.
    pub(super) fn check(&mut self, canonical: &str, given: &str) -> Result<(), UriError> {
        if self.names.iter().any(|n| n == canonical) {
            return Err(UriError::DuplicateOption {
                option: if canonical == given {
                    given.to_string()
                } else {
                    format!("{canonical}/{given}")
                },
                context: self.context,
            });
        }
        self.names.push(canonical.to_string());
        Ok(())
    }
}

/// The raw value of an option that needs one.
pub(super) fn required<'a>(key: &str, raw: Option<&'a str>) -> Result<&'a str, UriError> {
    raw.ok_or_else(|| UriError::MissingValue {
        option: key.to_string(),
    })
}

/// The value, `%XX` escapes decoded.
pub(super) fn value(key: &str, raw: Option<&str>) -> Result<String, UriError> {
    decode(key, required(key, raw)?)
}

pub(super) fn non_empty_value(key: &str, raw: Option<&str>) -> Result<String, UriError> {
    let v = value(key, raw)?;
    if v.is_empty() {
        return Err(bad_value(key, "a non-empty name", ""));
    }
    Ok(v)
}

/// Parses with `FromStr`, reporting `want` on failure.
fn typed<T: FromStr>(key: &str, raw: Option<&str>, want: &'static str) -> Result<T, UriError> {
    let raw = required(key, raw)?;
    raw.parse().map_err(|_| bad_value(key, want, raw))
}

pub(super) fn boolean(key: &str, raw: Option<&str>) -> Result<bool, UriError> {
    typed(key, raw, "true or false")
}

pub(super) fn millis(key: &str, raw: Option<&str>) -> Result<u64, UriError> {
    whole(key, raw, 0..=u64::MAX, "a whole number of milliseconds")
}

pub(super) fn ttl(key: &str, raw: Option<&str>) -> Result<u32, UriError> {
    whole(key, raw, 0..=u32::MAX, "a whole number")
}

/// Attempts and timeouts: -1 means forever.
pub(super) fn attempts(key: &str, raw: Option<&str>) -> Result<i64, UriError> {
    whole(key, raw, -1..=i64::MAX, "a whole number, -1 or more")
}

pub(super) fn prefetch(key: &str, raw: Option<&str>) -> Result<usize, UriError> {
    whole(key, raw, 1..=usize::MAX, "a whole number above 0")
}

/// A whole number within `range`, written plainly: the integers' `FromStr` also takes a leading
/// `+`, which is not wanted.
fn whole<T: FromStr + PartialOrd>(
    key: &str,
    raw: Option<&str>,
    range: RangeInclusive<T>,
    want: &'static str,
) -> Result<T, UriError> {
    let raw = required(key, raw)?;
    match raw.parse::<T>() {
        Ok(n) if range.contains(&n) && !raw.starts_with('+') => Ok(n),
        _ => Err(bad_value(key, want, raw)),
    }
}

pub(super) fn multiplier(key: &str, raw: Option<&str>) -> Result<f64, UriError> {
    const WANT: &str = "a number of at least 1";
    let raw_v = required(key, raw)?;
    match raw_v.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 1.0 => Ok(x),
        _ => Err(bad_value(key, WANT, raw_v)),
    }
}

/// One printed option: its ActiveMQ name and value.
pub(super) fn entry(name: &'static str, value: impl ToString) -> (&'static str, String) {
    (name, value.to_string())
}

/// The reconnect options of network connectors and failover alike, printed, in their order.
pub(super) fn reconnect_entries(
    initial_ms: u64,
    max_ms: u64,
    exponential: bool,
    multiplier: f64,
    attempts: i64,
) -> [(&'static str, String); 5] {
    [
        entry("initialReconnectDelay", initial_ms),
        entry("maxReconnectDelay", max_ms),
        entry("useExponentialBackOff", exponential),
        entry("backOffMultiplier", multiplier),
        entry("maxReconnectAttempts", attempts),
    ]
}

/// A comma-separated list of destination filters; an empty value is an empty list.
pub(super) fn destinations(
    key: &str,
    raw: Option<&str>,
) -> Result<Vec<DestinationFilter>, UriError> {
    let raw = required(key, raw)?;
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    raw.split(',')
        .map(|item| DestinationFilter::parse(&decode(key, item.trim())?))
        .collect()
}
