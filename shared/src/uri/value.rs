//! Typed option values: booleans, milliseconds, TTLs, attempt counts, prefetch sizes,
//! multipliers, names and destination lists, each error naming the option; and [`Seen`], which
//! rejects an option given twice.

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
    const WANT: &str = "a whole number of milliseconds";
    // u64's FromStr accepts a leading '+'; a plain number is all we want.
    let raw_v = required(key, raw)?;
    if raw_v.starts_with('+') {
        return Err(bad_value(key, WANT, raw_v));
    }
    typed(key, raw, WANT)
}

pub(super) fn ttl(key: &str, raw: Option<&str>) -> Result<u32, UriError> {
    const WANT: &str = "a whole number";
    let raw_v = required(key, raw)?;
    if raw_v.starts_with('+') {
        return Err(bad_value(key, WANT, raw_v));
    }
    typed(key, raw, WANT)
}

/// Attempts and timeouts: -1 means forever.
pub(super) fn attempts(key: &str, raw: Option<&str>) -> Result<i64, UriError> {
    const WANT: &str = "a whole number, -1 or more";
    let raw_v = required(key, raw)?;
    match raw_v.parse::<i64>() {
        Ok(n) if n >= -1 && !raw_v.starts_with('+') => Ok(n),
        _ => Err(bad_value(key, WANT, raw_v)),
    }
}

pub(super) fn prefetch(key: &str, raw: Option<&str>) -> Result<usize, UriError> {
    const WANT: &str = "a whole number above 0";
    let raw_v = required(key, raw)?;
    match raw_v.parse::<usize>() {
        Ok(n) if n > 0 && !raw_v.starts_with('+') => Ok(n),
        _ => Err(bad_value(key, WANT, raw_v)),
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
