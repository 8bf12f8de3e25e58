//! Transport connectors: `tcp://HOST:PORT[?discoveryUri=...]`, where a node listens.

use std::fmt;
use std::str::FromStr;

use super::discovery::DiscoveryUri;
use super::error::{UriError, unknown_option};
use super::host::{HostPort, tcp_endpoint};
use super::syntax::{non_empty, query_pairs};
use super::value::{Seen, required};

/// Options of a transport connector URI.
pub const TRANSPORT_OPTIONS: &[&str] = &["discoveryUri"];

/// A transport connector: `tcp://HOST:PORT` or `stomp://HOST:PORT` (alias), with one optional
/// option, `discoveryUri` (ActiveMQ's `transportConnector` attribute of that name), to advertise
/// the connector, e.g. `tcp://127.0.0.1:0?discoveryUri=multicast://default`. Port 0 binds any
/// free port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportUri {
    /// Where to listen.
    pub addr: HostPort,
    /// Where to advertise this connector, if anywhere.
    pub discovery: Option<DiscoveryUri>,
}

impl FromStr for TransportUri {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, UriError> {
        let (addr, query) = tcp_endpoint(non_empty(s)?, true)?;
        let mut discovery = None;
        let mut seen = Seen::new("tcp://");
        for (key, raw) in query_pairs(query) {
            match key {
                // The value is a URI with its own escapes: it is handed on undecoded.
                "discoveryUri" => discovery = Some(required(key, raw)?.parse::<DiscoveryUri>()?),
                _ => return Err(unknown_option(key, "tcp://", TRANSPORT_OPTIONS, &[])),
            }
            seen.check(key, key)?;
        }
        Ok(TransportUri { addr, discovery })
    }
}

impl fmt::Display for TransportUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tcp://{}", self.addr)?;
        if let Some(d) = &self.discovery {
            write!(f, "?discoveryUri={d}")?;
        }
        Ok(())
    }
}
