//! Ports for the nodes of new clusters, and the check before any node starts.
//!
//! A new cluster's ports are handed out from `--base-port` (default 61700) upward, one at a time
//! in manifest order (transport, then admin, for each process), skipping every port that
//!
//! - lies in the kernel's ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`), from which
//!   the kernel picks the local port of every outgoing connection and of every `bind(0)`: a port
//!   from there, recorded in a manifest, is taken by some other program as soon as its node stops;
//! - is recorded by another cluster of the same home, running or not;
//! - cannot be bound on 127.0.0.1 right now.
//!
//! With every port free the i-th process gets `B + 2i` (transport) and `B + 2i + 1` (admin).

use std::collections::BTreeSet;
use std::net::TcpListener;

use crate::error::{CliError, Result};

/// Where Linux keeps the ephemeral port range.
const EPHEMERAL_RANGE_FILE: &str = "/proc/sys/net/ipv4/ip_local_port_range";

/// Linux's default ephemeral range, assumed when the file cannot be read.
pub const DEFAULT_EPHEMERAL: (u16, u16) = (32768, 60999);

/// The kernel's ephemeral port range, inclusive.
pub fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string(EPHEMERAL_RANGE_FILE)
        .ok()
        .and_then(|text| parse_range(&text))
        .unwrap_or(DEFAULT_EPHEMERAL)
}

/// Parses `LOW<whitespace>HIGH`.
pub fn parse_range(text: &str) -> Option<(u16, u16)> {
    let mut words = text.split_whitespace();
    let lo = words.next()?.parse::<u16>().ok()?;
    let hi = words.next()?.parse::<u16>().ok()?;
    (lo <= hi).then_some((lo, hi))
}

/// Whether `port` on 127.0.0.1 can be bound right now (with `SO_REUSEADDR`, as `mqnode` binds).
pub fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Hands out ports from a base upward; see the module documentation.
#[derive(Debug)]
pub struct Allocator {
    base: u16,
    next: u32,
    ephemeral: (u16, u16),
    reserved: BTreeSet<u16>,
    is_free: fn(u16) -> bool,
}

impl Allocator {
    /// From `base` upward, never one of `reserved` nor one in `ephemeral`.
    pub fn new(base: u16, ephemeral: (u16, u16), reserved: BTreeSet<u16>) -> Allocator {
        Allocator {
            base,
            next: u32::from(base.max(1)),
            ephemeral,
            reserved,
            is_free: port_is_free,
        }
    }

    /// Marks `port` as taken (a port a layout gives explicitly).
    pub fn reserve(&mut self, port: u16) {
        self.reserved.insert(port);
    }

    /// Whether `port` is in the ephemeral range.
    pub fn is_ephemeral(&self, port: u16) -> bool {
        (self.ephemeral.0..=self.ephemeral.1).contains(&port)
    }

    /// The next port that is neither ephemeral, reserved nor in use, and reserves it.
    pub fn next(&mut self) -> Result<u16> {
        while let Ok(port) = u16::try_from(self.next) {
            self.next += 1;
            if self.is_ephemeral(port) {
                self.next = u32::from(self.ephemeral.1) + 1;
                continue;
            }
            if self.reserved.contains(&port) || !(self.is_free)(port) {
                continue;
            }
            self.reserved.insert(port);
            return Ok(port);
        }
        Err(CliError::Usage(format!(
            "no free port left from --base-port {} upward (ports {}-{} are the kernel's ephemeral range, and others are in use or recorded by other clusters); choose a lower --base-port",
            self.base, self.ephemeral.0, self.ephemeral.1
        )))
    }
}

/// The sentence telling how to find what holds `port`.
pub fn holder_hint(port: u16) -> String {
    format!(
        "see what holds it with `ss -ltnp 'sport = :{port}'`, stop it, and run the command again"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allocator(base: u16, reserved: &[u16], busy: fn(u16) -> bool) -> Allocator {
        Allocator {
            is_free: busy,
            ..Allocator::new(base, (32768, 60999), reserved.iter().copied().collect())
        }
    }

    #[test]
    fn ranges_parse() {
        assert_eq!(parse_range("32768\t60999\n"), Some((32768, 60999)));
        assert_eq!(parse_range("1024 65535"), Some((1024, 65535)));
        assert_eq!(parse_range("9 8"), None);
        assert_eq!(parse_range("x"), None);
        assert_eq!(parse_range(""), None);
    }

    #[test]
    fn ports_go_up_from_the_base() {
        let mut a = allocator(61700, &[], |_| true);
        let got: Vec<u16> = (0..4).map(|_| a.next().expect("port")).collect();
        assert_eq!(got, [61700, 61701, 61702, 61703]);
    }

    #[test]
    fn the_ephemeral_range_is_skipped() {
        let mut a = allocator(32766, &[], |_| true);
        let got: Vec<u16> = (0..4).map(|_| a.next().expect("port")).collect();
        assert_eq!(got, [32766, 32767, 61000, 61001]);
    }

    #[test]
    fn reserved_and_busy_ports_are_skipped() {
        let mut a = allocator(61700, &[61701], |p| p != 61702);
        let got: Vec<u16> = (0..3).map(|_| a.next().expect("port")).collect();
        assert_eq!(got, [61700, 61703, 61704]);
        a.reserve(61705);
        assert_eq!(a.next().expect("port"), 61706);
    }

    #[test]
    fn running_out_is_an_error() {
        let mut a = allocator(65534, &[], |_| true);
        assert_eq!(a.next().expect("port"), 65534);
        assert_eq!(a.next().expect("port"), 65535);
        assert!(a.next().is_err());
    }
}
