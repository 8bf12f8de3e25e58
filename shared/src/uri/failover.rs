//! Client failover: [`FailoverUri`] (`failover:(...)`) with its [`FailoverOptions`], and
//! [`ClientUri`], any target a client connects to.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use super::error::{UriError, unknown_option, unknown_scheme};
use super::host::{HostPort, masterslave_endpoints, parse_tcp, tcp_list, write_endpoint_list};
use super::redact::Redacted;
use super::syntax::{
    Scheme, composite, only_scheme, paren_body, query_pairs, scheme_of, split_query, strip_slashes,
    write_query,
};
use super::value::{Seen, attempts, boolean, entry, entry_map, reconnect_options, timeout};
use crate::defaults;

/// Options of `failover:(...)`; `reconnectDelayExponent` is another name for `backOffMultiplier`.
pub const FAILOVER_OPTIONS: &[&str] = &[
    "randomize",
    "initialReconnectDelay",
    "maxReconnectDelay",
    "useExponentialBackOff",
    "backOffMultiplier",
    "reconnectDelayExponent",
    "maxReconnectAttempts",
    "startupMaxReconnectAttempts",
    "timeout",
    "priorityBackup",
];

/// ActiveMQ failover options that mq does not implement.
const FAILOVER_UNSUPPORTED: &[&str] = &[
    "backup",
    "backupPoolSize",
    "priorityURIs",
    "trackMessages",
    "trackTransactionProducers",
    "maxCacheSize",
    "updateURIsSupported",
    "updateURIsURL",
    "rebalanceUpdateURIs",
    "reconnectSupported",
    "warnAfterReconnectAttempts",
];

/// Client failover (ActiveMQ `FailoverTransport`), over `tcp://` and `ssl://` endpoints alike:
/// `failover:(tcp://a:1,tcp://b:2)?randomize=false&initialReconnectDelay=10&maxReconnectDelay=30000&useExponentialBackOff=true&backOffMultiplier=2&maxReconnectAttempts=-1&startupMaxReconnectAttempts=-1&timeout=-1`,
/// or the bare list form `failover:tcp://a:1,tcp://b:2`.
#[derive(Debug, Clone, PartialEq)]
pub struct FailoverUri {
    /// Endpoints, in the order given (at least one).
    pub endpoints: Vec<HostPort>,
    /// Reconnect options.
    pub options: FailoverOptions,
}

/// Options of `failover:`, with ActiveMQ's names and defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct FailoverOptions {
    /// `randomize`: pick endpoints in random order (`false`: in list order).
    pub randomize: bool,
    /// `initialReconnectDelay`, ms.
    pub initial_reconnect_delay_ms: u64,
    /// `maxReconnectDelay`, ms.
    pub max_reconnect_delay_ms: u64,
    /// `useExponentialBackOff`.
    pub use_exponential_back_off: bool,
    /// `backOffMultiplier`, also accepted as `reconnectDelayExponent`.
    pub back_off_multiplier: f64,
    /// `maxReconnectAttempts` once connected: -1 forever, 0 none.
    pub max_reconnect_attempts: i64,
    /// `startupMaxReconnectAttempts` before the first connection: -1 forever, 0 none.
    pub startup_max_reconnect_attempts: i64,
    /// `timeout`, ms: how long a send waits while disconnected; -1 forever.
    pub timeout_ms: i64,
    /// `priorityBackup`: keep trying to return to the first endpoint.
    pub priority_backup: bool,
}

impl Default for FailoverOptions {
    fn default() -> Self {
        FailoverOptions {
            randomize: defaults::FAILOVER_RANDOMIZE,
            initial_reconnect_delay_ms: defaults::FAILOVER_INITIAL_RECONNECT_DELAY_MS,
            max_reconnect_delay_ms: defaults::FAILOVER_MAX_RECONNECT_DELAY_MS,
            use_exponential_back_off: defaults::FAILOVER_USE_EXPONENTIAL_BACK_OFF,
            back_off_multiplier: defaults::FAILOVER_BACK_OFF_MULTIPLIER,
            max_reconnect_attempts: defaults::FAILOVER_MAX_RECONNECT_ATTEMPTS,
            startup_max_reconnect_attempts: defaults::FAILOVER_STARTUP_MAX_RECONNECT_ATTEMPTS,
            timeout_ms: defaults::FAILOVER_TIMEOUT_MS,
            priority_backup: defaults::FAILOVER_PRIORITY_BACKUP,
        }
    }
}

reconnect_options!(FailoverOptions);

impl FailoverOptions {
    /// Every effective option by ActiveMQ name (`backOffMultiplier`, not its alias).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        entry_map(self.entries())
    }

    fn entries(&self) -> Vec<(&'static str, String)> {
        let mut entries = vec![entry("randomize", self.randomize)];
        entries.extend(self.reconnect_entries());
        entries.extend([
            entry(
                "startupMaxReconnectAttempts",
                self.startup_max_reconnect_attempts,
            ),
            entry("timeout", self.timeout_ms),
            entry("priorityBackup", self.priority_backup),
        ]);
        entries
    }

    fn query_pairs(&self) -> Vec<String> {
        self.entries()
            .into_iter()
            .zip(FailoverOptions::default().entries())
            .filter(|((_, mine), (_, theirs))| mine != theirs)
            .map(|((key, value), _)| format!("{key}={value}"))
            .collect()
    }
}

impl FromStr for FailoverUri {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, UriError> {
        let s = composite(s)?;
        parse_failover(s, only_scheme(s, Scheme::Failover, "failover:")?)
    }
}

impl fmt::Display for FailoverUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("failover:")?;
        write_endpoint_list(f, &self.endpoints)?;
        write_query(f, &self.options.query_pairs())
    }
}

/// Parses `failover:` given its text and what follows the scheme.
pub(super) fn parse_failover(s: &str, rest: &str) -> Result<FailoverUri, UriError> {
    let rest = strip_slashes(rest);
    let (endpoints, query) = if rest.trim_start().starts_with('(') {
        let (body, query) = paren_body(s, rest, "failover:")?;
        (tcp_list(body, s)?, query)
    } else {
        let (body, query) = split_query(rest);
        (tcp_list(body, s)?, query)
    };
    let options = parse_failover_options(query)?;
    Ok(FailoverUri { endpoints, options })
}

fn parse_failover_options(query: Option<&str>) -> Result<FailoverOptions, UriError> {
    const CONTEXT: &str = "failover:(...)";
    let mut o = FailoverOptions::default();
    let mut seen = Seen::new(CONTEXT);
    for (key, raw) in query_pairs(query) {
        // `reconnectDelayExponent` is another name for `backOffMultiplier`.
        let canonical = match key {
            "reconnectDelayExponent" => "backOffMultiplier",
            _ => key,
        };
        match canonical {
            _ if o.set_reconnect(canonical, key, raw)? => {}
            "randomize" => o.randomize = boolean(key, raw)?,
            "startupMaxReconnectAttempts" => {
                o.startup_max_reconnect_attempts = attempts(key, raw)?;
            }
            "timeout" => o.timeout_ms = timeout(key, raw)?,
            "priorityBackup" => o.priority_backup = boolean(key, raw)?,
            _ => {
                return Err(unknown_option(
                    key,
                    CONTEXT,
                    FAILOVER_OPTIONS,
                    FAILOVER_UNSUPPORTED,
                ));
            }
        }
        seen.check(canonical, key)?;
    }
    Ok(o)
}

// ---- client targets -------------------------------------------------------------------------

/// Any client-side target (what `mqctl --url` takes): `tcp://` or `stomp://`, `ssl://` or
/// `stomp+ssl://`, `failover:(...)`,
/// or `masterslave:(a,b)`, which is read as a failover with `randomize=false` (master first).
#[derive(Debug, Clone, PartialEq)]
pub enum ClientUri {
    /// One endpoint (`tcp://` or, when [`HostPort::secure`], `ssl://`).
    Tcp(HostPort),
    /// Several endpoints with reconnect options.
    Failover(FailoverUri),
}

impl ClientUri {
    /// Every endpoint, in the order given.
    pub fn endpoints(&self) -> Vec<HostPort> {
        match self {
            ClientUri::Tcp(hp) => vec![hp.clone()],
            ClientUri::Failover(f) => f.endpoints.clone(),
        }
    }

    /// The URI with its secrets masked (`***`), for logs and answers.
    pub fn redacted(&self) -> Redacted<'_, Self> {
        Redacted(self)
    }
}

impl FromStr for ClientUri {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, UriError> {
        const EXPECTED: &str = "tcp://, stomp://, ssl://, failover:(...) or masterslave:(...)";
        let s = composite(s)?;
        let (scheme, rest) = scheme_of(s, EXPECTED)?;
        match scheme {
            Scheme::Tcp | Scheme::Ssl => Ok(ClientUri::Tcp(parse_tcp(s, false)?)),
            Scheme::Failover => Ok(ClientUri::Failover(parse_failover(s, rest)?)),
            Scheme::MasterSlave => Ok(ClientUri::Failover(FailoverUri {
                endpoints: masterslave_endpoints(s, rest)?,
                options: FailoverOptions {
                    randomize: false,
                    ..FailoverOptions::default()
                },
            })),
            _ => Err(unknown_scheme(s, EXPECTED)),
        }
    }
}

impl fmt::Display for ClientUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientUri::Tcp(hp) => write!(f, "{}://{hp}", hp.scheme()),
            ClientUri::Failover(fo) => fo.fmt(f),
        }
    }
}
