//! Multicast discovery: `multicast://default` or `multicast://IP:PORT`, with its `group` and
//! the `secret` that signs its advertisements.

use std::fmt;
use std::net::{SocketAddr, SocketAddrV4};
use std::str::FromStr;

use super::error::{UriError, unknown_option};
use super::redact::{Redacted, redact_uri};
use super::syntax::{
    Scheme, encode, non_empty, only_scheme, query_pairs, slashes, split_query, write_query,
};
use super::value::{Seen, non_empty_value};
use crate::defaults;

/// Options of a discovery URI (`multicast://default?group=...&secret=...`).
pub const DISCOVERY_OPTIONS: &[&str] = &["group", "secret"];

/// ActiveMQ multicast discovery options that mq does not implement.
pub(super) const DISCOVERY_UNSUPPORTED: &[&str] = &[
    "interface",
    "networkInterface",
    "joinNetworkInterface",
    "timeToLive",
    "loopBackMode",
    "keepAliveInterval",
];

/// Multicast discovery: `multicast://default` (ActiveMQ's group address 239.255.2.3:6155) or
/// `multicast://IP:PORT`, with the options `group` (default `"default"`): only nodes of the same
/// group find each other; and `secret`: advertisements are signed with it (HMAC-SHA256), and
/// unsigned or wrongly signed ones are ignored. `Display` prints the secret (configurations are
/// saved with it); show [`DiscoveryUri::redacted`] instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryUri {
    /// IPv4 multicast address and port the advertisements go to.
    pub group_addr: SocketAddr,
    /// Group name carried in the advertisements.
    pub group: String,
    /// Key that signs and checks advertisements; none: unsigned, as ActiveMQ's.
    pub secret: Option<String>,
}

impl Default for DiscoveryUri {
    fn default() -> Self {
        DiscoveryUri {
            group_addr: default_group_addr(),
            group: defaults::MULTICAST_GROUP_NAME.to_string(),
            secret: None,
        }
    }
}

impl FromStr for DiscoveryUri {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, UriError> {
        let s = non_empty(s)?;
        let (group_addr, query) = parse_multicast(s)?;
        let mut group = defaults::MULTICAST_GROUP_NAME.to_string();
        let mut secret = None;
        let mut seen = Seen::new("multicast://");
        for (key, raw) in query_pairs(query) {
            match key {
                "group" => group = non_empty_value(key, raw)?,
                "secret" => secret = Some(non_empty_value(key, raw)?),
                _ => {
                    return Err(unknown_option(
                        key,
                        "multicast://",
                        DISCOVERY_OPTIONS,
                        DISCOVERY_UNSUPPORTED,
                    ));
                }
            }
            seen.check(key, key)?;
        }
        Ok(DiscoveryUri {
            group_addr,
            group,
            secret,
        })
    }
}

impl fmt::Display for DiscoveryUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_addr(f)?;
        write_query(f, &self.query_pairs())
    }
}

impl DiscoveryUri {
    /// The URI with its secret masked, for logs and answers.
    pub fn redacted(&self) -> Redacted<'_, Self> {
        Redacted(self)
    }

    /// `group` (unless the default) and `secret` as escaped `name=value` pairs.
    pub(super) fn query_pairs(&self) -> Vec<String> {
        let mut pairs = Vec::new();
        if self.group != defaults::MULTICAST_GROUP_NAME {
            pairs.push(format!("group={}", encode(&self.group)));
        }
        if let Some(secret) = &self.secret {
            pairs.push(format!("secret={}", encode(secret)));
        }
        pairs
    }

    /// `multicast://default` or `multicast://IP:PORT`, without options.
    pub(super) fn write_addr(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group_addr == default_group_addr() {
            f.write_str("multicast://default")
        } else {
            write!(f, "multicast://{}", self.group_addr)
        }
    }
}

fn default_group_addr() -> SocketAddr {
    defaults::MULTICAST_GROUP
        .parse()
        .expect("defaults::MULTICAST_GROUP is an IPv4 address and port")
}

/// Parses `multicast://default` or `multicast://IP:PORT`, returning the address and the query.
pub(super) fn parse_multicast(s: &str) -> Result<(SocketAddr, Option<&str>), UriError> {
    const EXPECTED: &str = "multicast://";
    let (addr, query) = split_query(slashes(s, only_scheme(s, Scheme::Multicast, EXPECTED)?)?);
    if addr == "default" {
        return Ok((default_group_addr(), query));
    }
    let bad = || UriError::BadMulticast {
        group: addr.to_string(),
        uri: redact_uri(s),
    };
    let v4: SocketAddrV4 = addr.parse().map_err(|_| bad())?;
    if !v4.ip().is_multicast() || v4.port() == 0 {
        return Err(bad());
    }
    Ok((SocketAddr::V4(v4), query))
}
