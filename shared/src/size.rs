//! Sizes in bytes as users write them: `1048576`, `64MiB`, `100 GiB`, `512kb`, and ActiveMQ's
//! `100 gb`: a whole number with an optional unit. Units are case-insensitive; `k`/`kb`/`kib`
//! and the like are all powers of 1024, as ActiveMQ reads them. In a TOML file, a string or an
//! integer of bytes.

use std::fmt;
use std::str::FromStr;

/// A size in bytes, parsed from a number with an optional unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ByteSize(pub u64);

/// Why a size does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a size (a number of bytes, or with a unit: 64MiB, 100 GiB, 512kb)")]
pub struct SizeError(pub String);

impl FromStr for ByteSize {
    type Err = SizeError;

    fn from_str(s: &str) -> Result<ByteSize, SizeError> {
        let err = || SizeError(s.to_string());
        let t = s.trim();
        let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(digits);
        let unit = unit.trim().to_ascii_lowercase();
        let mult: u64 = match unit.as_str() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1 << 10,
            "m" | "mb" | "mib" => 1 << 20,
            "g" | "gb" | "gib" => 1 << 30,
            "t" | "tb" | "tib" => 1 << 40,
            _ => return Err(err()),
        };
        if num.is_empty() {
            return Err(err());
        }
        let v: u64 = num.parse().map_err(|_| err())?;
        Ok(ByteSize(v.checked_mul(mult).ok_or_else(err)?))
    }
}

impl fmt::Display for ByteSize {
    /// The largest binary unit that divides it exactly: `64MiB`, `1536KiB`, `100`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        for (unit, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] {
            if b != 0 && b.is_multiple_of(1u64 << shift) {
                return write!(f, "{}{unit}", b >> shift);
            }
        }
        write!(f, "{b}")
    }
}

impl<'de> serde::Deserialize<'de> for ByteSize {
    /// A number of bytes, or a string with a unit.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

impl serde::Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_units() {
        for (s, b) in [
            ("1048576", 1 << 20),
            ("64MiB", 64 << 20),
            ("64mb", 64 << 20),
            ("100 gb", 100 << 30),
            ("100 GiB", 100 << 30),
            ("512k", 512 << 10),
            ("0", 0),
        ] {
            assert_eq!(s.parse::<ByteSize>(), Ok(ByteSize(b)), "{s}");
        }
        for bad in [
            "",
            "MiB",
            "1.5MiB",
            "12 parsecs",
            "-1",
            "99999999999999999999 tb",
        ] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad}");
        }
    }

    #[test]
    fn display_round_trips() {
        for b in [0, 100, 1536, 64 << 20, 100 << 30] {
            let s = ByteSize(b).to_string();
            assert_eq!(s.parse::<ByteSize>(), Ok(ByteSize(b)), "{s}");
        }
        assert_eq!(ByteSize(64 << 20).to_string(), "64MiB");
    }
}
