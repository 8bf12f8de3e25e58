//! One peer of a `static:(...)` network connector: `tcp://` or `ssl://`, `masterslave:(...)` or
//! a nested `failover:(...)`.

use std::fmt;
use std::str::FromStr;

use super::error::{UriError, unknown_scheme};
use super::failover::{FailoverUri, parse_failover};
use super::host::{HostPort, masterslave_endpoints, parse_tcp, write_endpoint_list};
use super::redact::Redacted;
use super::syntax::{Scheme, composite, scheme_of};

/// One peer of a `static:(...)` list: one endpoint (`tcp://` or `ssl://`), a master/slave pair
/// (`masterslave:(tcp://master:1,tcp://slave:2)`, master first), or a nested `failover:` URI.
/// Each endpoint records its own scheme ([`HostPort::secure`]).
#[derive(Debug, Clone, PartialEq)]
pub enum PeerUri {
    /// `tcp://host:port`, or `ssl://host:port` when [`HostPort::secure`].
    Tcp(HostPort),
    /// `masterslave:(tcp://master:port,tcp://slave:port,...)`: whichever is serving.
    MasterSlave(Vec<HostPort>),
    /// `failover:(...)?options`.
    Failover(FailoverUri),
}

impl PeerUri {
    /// Every endpoint this peer may be reached at, in the order given.
    pub fn endpoints(&self) -> Vec<HostPort> {
        match self {
            PeerUri::Tcp(hp) => vec![hp.clone()],
            PeerUri::MasterSlave(eps) => eps.clone(),
            PeerUri::Failover(f) => f.endpoints.clone(),
        }
    }

    /// The URI with its secrets masked (`***`), for logs and answers.
    pub fn redacted(&self) -> Redacted<'_, Self> {
        Redacted(self)
    }
}

impl FromStr for PeerUri {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, UriError> {
        parse_peer(composite(s)?)
    }
}

impl fmt::Display for PeerUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerUri::Tcp(hp) => write!(f, "{}://{hp}", hp.scheme()),
            PeerUri::MasterSlave(eps) => {
                f.write_str("masterslave:")?;
                write_endpoint_list(f, eps)
            }
            PeerUri::Failover(fo) => fo.fmt(f),
        }
    }
}

pub(super) fn parse_peer(s: &str) -> Result<PeerUri, UriError> {
    const EXPECTED: &str = "tcp://, stomp://, ssl://, masterslave:(...) or failover:(...)";
    let (scheme, rest) = scheme_of(s, EXPECTED)?;
    match scheme {
        Scheme::Tcp | Scheme::Ssl => Ok(PeerUri::Tcp(parse_tcp(s, false)?)),
        Scheme::MasterSlave => Ok(PeerUri::MasterSlave(masterslave_endpoints(s, rest)?)),
        Scheme::Failover => Ok(PeerUri::Failover(parse_failover(s, rest)?)),
        _ => Err(unknown_scheme(s, EXPECTED)),
    }
}
