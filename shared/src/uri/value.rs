//! Typed option values: booleans, milliseconds, TTLs, attempt counts, prefetch sizes,
//! multipliers, names and destination lists, each error naming the option and what it accepts;
//! and [`Seen`], which rejects an option given twice. Every number is checked against its range
//! here, where it is read (the ranges are in the [module docs](super)).

use std::collections::BTreeMap;
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

/// The longest delay or timeout an option may give, ms: one day.
pub const MAX_DELAY_MS: u64 = 86_400_000;
/// The largest `backOffMultiplier`.
pub const MAX_BACK_OFF_MULTIPLIER: f64 = 1000.0;
/// The largest `maxReconnectAttempts` or `startupMaxReconnectAttempts` (a Java `int` in ActiveMQ).
pub const MAX_RECONNECT_ATTEMPTS: i64 = i32::MAX as i64;
/// The largest `networkTTL`, `messageTTL` or `consumerTTL`.
pub const MAX_TTL: u32 = 255;
/// The largest `prefetchSize`: ActiveMQ's maximum prefetch (`Short.MAX_VALUE`).
pub const MAX_PREFETCH_SIZE: usize = 32_767;

// What each kind of number accepts, as its errors say; the bounds are the constants above.
const MILLIS_WANT: &str = "a whole number of milliseconds from 0 to 86400000 (one day)";
const TIMEOUT_WANT: &str = "-1 (no limit) or a whole number of milliseconds from 0 to 86400000";
const ATTEMPTS_WANT: &str = "a whole number from -1 to 2147483647";
const TTL_WANT: &str = "a whole number from 0 to 255";
const PREFETCH_WANT: &str = "a whole number from 1 to 32767";
const MULTIPLIER_WANT: &str = "a number from 1 to 1000";

/// Delays: `initialReconnectDelay`, `maxReconnectDelay`, `minConnectTime`.
pub(super) fn millis(key: &str, raw: Option<&str>) -> Result<u64, UriError> {
    number(key, raw, 0..=MAX_DELAY_MS, MILLIS_WANT)
}

/// The failover `timeout`: -1 means none.
pub(super) fn timeout(key: &str, raw: Option<&str>) -> Result<i64, UriError> {
    // One day in ms fits an i64 many times over: the cast is exact.
    number(key, raw, -1..=MAX_DELAY_MS as i64, TIMEOUT_WANT)
}

pub(super) fn ttl(key: &str, raw: Option<&str>) -> Result<u32, UriError> {
    number(key, raw, 0..=MAX_TTL, TTL_WANT)
}

/// Attempts: -1 means forever.
pub(super) fn attempts(key: &str, raw: Option<&str>) -> Result<i64, UriError> {
    number(key, raw, -1..=MAX_RECONNECT_ATTEMPTS, ATTEMPTS_WANT)
}

pub(super) fn prefetch(key: &str, raw: Option<&str>) -> Result<usize, UriError> {
    number(key, raw, 1..=MAX_PREFETCH_SIZE, PREFETCH_WANT)
}

/// `backOffMultiplier`: finite (`NaN` and `inf` are outside every range).
pub(super) fn multiplier(key: &str, raw: Option<&str>) -> Result<f64, UriError> {
    number(key, raw, 1.0..=MAX_BACK_OFF_MULTIPLIER, MULTIPLIER_WANT)
}

/// A number within `range`, written plainly: `FromStr` also takes a leading `+`, which is not
/// wanted.
fn number<T: FromStr + PartialOrd>(
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

/// One printed option: its ActiveMQ name and value.
pub(super) fn entry(name: &'static str, value: impl ToString) -> (&'static str, String) {
    (name, value.to_string())
}

/// Printed options as the admin API shows them: name → value.
pub(super) fn entry_map(entries: Vec<(&'static str, String)>) -> BTreeMap<String, String> {
    entries
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// The five reconnect options, which network connectors ([`super::NetworkOptions`]) and
/// `failover:` ([`super::FailoverOptions`]) share under the same names and fields: printed
/// (`reconnect_entries`, in their order) and read from a query pair (`set_reconnect`).
macro_rules! reconnect_options {
    ($options:ty) => {
        impl $options {
            /// The reconnect options, printed, in their order.
            fn reconnect_entries(&self) -> [(&'static str, String); 5] {
                use $crate::uri::value::entry;
                [
                    entry("initialReconnectDelay", self.initial_reconnect_delay_ms),
                    entry("maxReconnectDelay", self.max_reconnect_delay_ms),
                    entry("useExponentialBackOff", self.use_exponential_back_off),
                    entry("backOffMultiplier", self.back_off_multiplier),
                    entry("maxReconnectAttempts", self.max_reconnect_attempts),
                ]
            }

            /// Sets the reconnect option `name` (what `key` stands for) from `raw`; `false`
            /// when `name` is not one of them.
            fn set_reconnect(
                &mut self,
                name: &str,
                key: &str,
                raw: Option<&str>,
            ) -> Result<bool, $crate::uri::UriError> {
                use $crate::uri::value::{attempts, boolean, millis, multiplier};
                match name {
                    "initialReconnectDelay" => self.initial_reconnect_delay_ms = millis(key, raw)?,
                    "maxReconnectDelay" => self.max_reconnect_delay_ms = millis(key, raw)?,
                    "useExponentialBackOff" => self.use_exponential_back_off = boolean(key, raw)?,
                    "backOffMultiplier" => self.back_off_multiplier = multiplier(key, raw)?,
                    "maxReconnectAttempts" => self.max_reconnect_attempts = attempts(key, raw)?,
                    _ => return Ok(false),
                }
                Ok(true)
            }
        }
    };
}
pub(super) use reconnect_options;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_want_names_its_bounds() {
        let cases: [(&str, &[String]); 6] = [
            (MILLIS_WANT, &[MAX_DELAY_MS.to_string()]),
            (TIMEOUT_WANT, &["-1".into(), MAX_DELAY_MS.to_string()]),
            (
                ATTEMPTS_WANT,
                &["-1".into(), MAX_RECONNECT_ATTEMPTS.to_string()],
            ),
            (TTL_WANT, &[MAX_TTL.to_string()]),
            (PREFETCH_WANT, &[MAX_PREFETCH_SIZE.to_string()]),
            (MULTIPLIER_WANT, &[MAX_BACK_OFF_MULTIPLIER.to_string()]),
        ];
        for (want, bounds) in cases {
            for bound in bounds {
                assert!(
                    want.contains(bound.as_str()),
                    "'{want}' should name {bound}"
                );
            }
        }
    }

    #[test]
    fn bounds_are_inclusive_and_floats_finite() {
        assert_eq!(millis("d", Some("86400000")), Ok(MAX_DELAY_MS));
        assert!(millis("d", Some("86400001")).is_err());
        assert_eq!(multiplier("m", Some("1000")), Ok(1000.0));
        for bad in ["1000.5", "1e21", "inf", "-inf", "NaN", "+2", "0.999"] {
            assert!(multiplier("m", Some(bad)).is_err(), "{bad}");
        }
        assert_eq!(timeout("t", Some("-1")), Ok(-1));
        assert!(timeout("t", Some("-2")).is_err());
    }
}
