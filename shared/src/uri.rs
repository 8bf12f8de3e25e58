//! Connector URIs: parsed and printed here, pure (no I/O, no DNS), for the node and the CLI alike.
//!
//! The forms and option names are ActiveMQ Classic's, spelt as ActiveMQ spells them (option
//! names are case-sensitive; schemes are not). Defaults come from [`crate::defaults`].
//!
//! ```text
//! transport   = tcp [ "?discoveryUri=" discovery ]           tcp://0.0.0.0:61613?discoveryUri=multicast://default
//! tcp         = ( "tcp" | "stomp" ) "://" host ":" port        stomp:// is an alias of tcp://
//! host        = name | ipv4 | "[" ipv6 "]"
//! discovery   = "multicast://" ( "default" | ipv4 ":" port ) [ "?group=" text ]
//!
//! network     = "static:" "(" peer { "," peer } ")" [ "?" options ]
//!             | "masterslave:" "(" tcp { "," tcp } ")" [ "?" options ]   = static:(masterslave:(...))?options
//!             | "multicast://" ( "default" | ipv4 ":" port ) [ "?" options ]   options may include group
//! peer        = tcp | masterslave | failover
//! masterslave = "masterslave:" "(" tcp { "," tcp } ")"            master first, then its slaves
//! failover    = "failover:" ( "(" tcp { "," tcp } ")" | tcp { "," tcp } ) [ "?" options ]
//! client      = tcp | failover | masterslave                       masterslave = failover with randomize=false
//!
//! options     = name "=" value { "&" name "=" value }
//! destinations = filter { "," filter }                              a value of the *Destinations options
//! ```
//!
//! - `static:`, `masterslave:` and `failover:` may also be written with `//` (`failover://(...)`).
//! - Commas split a list only outside parentheses, so a nested `failover:(a,b)?...` is one peer.
//!   The bare form `failover:tcp://a:1,tcp://b:2` is read as one list only at top level; inside
//!   `static:(...)` its commas separate peers (as in ActiveMQ).
//! - Whitespace around commas, `&` and `=` is ignored. Option values may use `%XX` escapes
//!   (`%2C` for a comma); [`Display`](fmt::Display) escapes `% & , ( ) ? # =` and whitespace.
//! - Ports go from 1 to 65535; a transport may bind port 0 (any free port).
//! - Unknown options are errors, never ignored. Every [`UriError`] names the offending part.
//!
//! Destination filters ([`DestinationFilter`]) use ActiveMQ's wildcards over `.`-separated
//! names, written with our prefixes: `/queue/ORDERS.>`, `/topic/*.PRICE`; a bare name means a queue.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::str::FromStr;

use crate::defaults;

// ---- errors -----------------------------------------------------------------------------

/// Why a connector URI or destination filter was rejected. Each message names the offending part.
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

// ---- option names -------------------------------------------------------------------------

/// Options of `static:(...)`, `masterslave:(...)` and `multicast://` network connectors, in the
/// order [`NetworkUri`]'s `Display` prints them.
pub const NETWORK_OPTIONS: &[&str] = &[
    "name",
    "initialReconnectDelay",
    "maxReconnectDelay",
    "useExponentialBackOff",
    "backOffMultiplier",
    "maxReconnectAttempts",
    "minConnectTime",
    "networkTTL",
    "messageTTL",
    "consumerTTL",
    "duplex",
    "conduitSubscriptions",
    "decreaseNetworkConsumerPriority",
    "dynamicOnly",
    "prefetchSize",
    "staticBridge",
    "suppressDuplicateQueueSubscriptions",
    "excludedDestinations",
    "dynamicallyIncludedDestinations",
    "staticallyIncludedDestinations",
    "userName",
    "password",
];

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

/// Options of a transport connector URI.
pub const TRANSPORT_OPTIONS: &[&str] = &["discoveryUri"];

/// Options of a discovery URI (`multicast://default?group=...`).
pub const DISCOVERY_OPTIONS: &[&str] = &["group"];

/// ActiveMQ network connector options that mq does not implement.
const NETWORK_UNSUPPORTED: &[&str] = &[
    "conduitNetworkQueueSubscriptions",
    "advisoryPrefetchSize",
    "advisoryAckPercentage",
    "suppressDuplicateTopicSubscriptions",
    "bridgeTempDestinations",
    "alwaysSyncSend",
    "useVirtualDestSubs",
    "useCompression",
    "checkDuplicateMessagesOnDuplex",
    "gcDestinationViews",
    "gcSweepTime",
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

/// ActiveMQ multicast discovery options that mq does not implement.
const DISCOVERY_UNSUPPORTED: &[&str] = &[
    "interface",
    "networkInterface",
    "joinNetworkInterface",
    "timeToLive",
    "loopBackMode",
    "keepAliveInterval",
];

// ---- endpoints ----------------------------------------------------------------------------

/// `host:port` of a TCP endpoint. The host is a name (`localhost`), an IPv4 address, or an IPv6
/// address (written bracketed, `[::1]`, in URIs; stored here without brackets, in canonical form).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// Host name or address; IPv6 without brackets.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl HostPort {
    /// An endpoint from its parts (no validation).
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        HostPort {
            host: host.into(),
            port,
        }
    }

    /// `host:port`, IPv6 bracketed, as `TcpStream::connect` and `TcpListener::bind` take it.
    pub fn to_addr_string(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_addr_string())
    }
}

// ---- transport connectors -----------------------------------------------------------------

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
        const EXPECTED: &str = "tcp:// or stomp://";
        let s = non_empty(s)?;
        let (scheme, rest) = scheme_of(s, EXPECTED)?;
        if scheme != Scheme::Tcp {
            return Err(unknown_scheme(s, EXPECTED));
        }
        let (endpoint, query) = split_query(s);
        let (host_port, _) = split_query(slashes(s, rest)?);
        let addr = parse_host_port(host_port, endpoint, true)?;
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

// ---- discovery ----------------------------------------------------------------------------

/// Multicast discovery: `multicast://default` (ActiveMQ's group address 239.255.2.3:6155) or
/// `multicast://IP:PORT`, with the option `group` (default `"default"`): only nodes of the same
/// group find each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryUri {
    /// IPv4 multicast address and port the advertisements go to.
    pub group_addr: SocketAddr,
    /// Group name carried in the advertisements.
    pub group: String,
}

impl Default for DiscoveryUri {
    fn default() -> Self {
        DiscoveryUri {
            group_addr: default_group_addr(),
            group: defaults::MULTICAST_GROUP_NAME.to_string(),
        }
    }
}

impl FromStr for DiscoveryUri {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, UriError> {
        let s = non_empty(s)?;
        let (group_addr, query) = parse_multicast(s)?;
        let mut group = defaults::MULTICAST_GROUP_NAME.to_string();
        let mut seen = Seen::new("multicast://");
        for (key, raw) in query_pairs(query) {
            match key {
                "group" => group = non_empty_value(key, raw)?,
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
        Ok(DiscoveryUri { group_addr, group })
    }
}

impl fmt::Display for DiscoveryUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_addr(f)?;
        if self.group != defaults::MULTICAST_GROUP_NAME {
            write!(f, "?group={}", encode(&self.group))?;
        }
        Ok(())
    }
}

impl DiscoveryUri {
    /// `multicast://default` or `multicast://IP:PORT`, without options.
    fn write_addr(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
fn parse_multicast(s: &str) -> Result<(SocketAddr, Option<&str>), UriError> {
    const EXPECTED: &str = "multicast://";
    let (scheme, rest) = scheme_of(s, EXPECTED)?;
    if scheme != Scheme::Multicast {
        return Err(unknown_scheme(s, EXPECTED));
    }
    let rest = slashes(s, rest)?;
    let (addr, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    if addr == "default" {
        return Ok((default_group_addr(), query));
    }
    let bad = || UriError::BadMulticast {
        group: addr.to_string(),
        uri: s.to_string(),
    };
    let v4: SocketAddrV4 = addr.parse().map_err(|_| bad())?;
    if !v4.ip().is_multicast() || v4.port() == 0 {
        return Err(bad());
    }
    Ok((SocketAddr::V4(v4), query))
}

// ---- peers and network connectors -----------------------------------------------------------

/// One peer of a `static:(...)` list: a plain TCP endpoint, a master/slave pair
/// (`masterslave:(tcp://master:1,tcp://slave:2)`, master first), or a nested `failover:` URI.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerUri {
    /// `tcp://host:port`.
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
}

impl FromStr for PeerUri {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, UriError> {
        let s = non_empty(s)?;
        check_parens(s)?;
        parse_peer(s)
    }
}

impl fmt::Display for PeerUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerUri::Tcp(hp) => write!(f, "tcp://{hp}"),
            PeerUri::MasterSlave(eps) => {
                f.write_str("masterslave:")?;
                write_endpoint_list(f, eps)
            }
            PeerUri::Failover(fo) => fo.fmt(f),
        }
    }
}

fn parse_peer(s: &str) -> Result<PeerUri, UriError> {
    const EXPECTED: &str = "tcp://, stomp://, masterslave:(...) or failover:(...)";
    let (scheme, rest) = scheme_of(s, EXPECTED)?;
    match scheme {
        Scheme::Tcp => Ok(PeerUri::Tcp(parse_tcp(s, false)?)),
        Scheme::MasterSlave => {
            let (endpoints, query) = parse_masterslave(s, rest)?;
            reject_options(query, "masterslave:(...)")?;
            Ok(PeerUri::MasterSlave(endpoints))
        }
        Scheme::Failover => Ok(PeerUri::Failover(parse_failover(s, rest)?)),
        _ => Err(unknown_scheme(s, EXPECTED)),
    }
}

/// Options of a network connector, with ActiveMQ's names (ActiveMQ `NetworkConnector`,
/// `NetworkBridgeConfiguration` and `SimpleDiscoveryAgent`) and defaults from [`crate::defaults`].
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkOptions {
    /// `name`: connector name, unique on a node; `None` lets the node choose one.
    pub name: Option<String>,
    /// `initialReconnectDelay`, ms: the first wait after a link fails.
    pub initial_reconnect_delay_ms: u64,
    /// `maxReconnectDelay`, ms: the longest wait between attempts.
    pub max_reconnect_delay_ms: u64,
    /// `useExponentialBackOff`: multiply the wait by `backOffMultiplier` after each failure.
    pub use_exponential_back_off: bool,
    /// `backOffMultiplier`.
    pub back_off_multiplier: f64,
    /// `maxReconnectAttempts`: 0 (or less) means unlimited.
    pub max_reconnect_attempts: i64,
    /// `minConnectTime`, ms: a link that fails sooner counts as a failed attempt.
    pub min_connect_time_ms: u64,
    /// `networkTTL`: sets `messageTTL` and `consumerTTL` unless those are given.
    pub network_ttl: u32,
    /// `messageTTL`: hops a message may travel.
    pub message_ttl: u32,
    /// `consumerTTL`: hops consumer demand may travel.
    pub consumer_ttl: u32,
    /// `duplex`: the link also carries messages from the peer back to this node.
    pub duplex: bool,
    /// `conduitSubscriptions`: many remote consumers of a destination look like one.
    pub conduit_subscriptions: bool,
    /// `decreaseNetworkConsumerPriority`: local consumers are served before bridges.
    pub decrease_network_consumer_priority: bool,
    /// `dynamicOnly`.
    pub dynamic_only: bool,
    /// `prefetchSize` of the bridge's consumer on the peer (above 0).
    pub prefetch_size: usize,
    /// `staticBridge`: ignore remote demand; forward only `staticallyIncludedDestinations`.
    pub static_bridge: bool,
    /// `suppressDuplicateQueueSubscriptions`.
    pub suppress_duplicate_queue_subscriptions: bool,
    /// `excludedDestinations`: never forwarded on demand.
    pub excluded_destinations: Vec<DestinationFilter>,
    /// `dynamicallyIncludedDestinations`: when non-empty, only these are forwarded on demand.
    pub dynamically_included_destinations: Vec<DestinationFilter>,
    /// `staticallyIncludedDestinations`: always forwarded, demand or not, exclusions or not.
    pub statically_included_destinations: Vec<DestinationFilter>,
    /// `userName` for the peer.
    pub user_name: Option<String>,
    /// `password` for the peer.
    pub password: Option<String>,
}

impl Default for NetworkOptions {
    fn default() -> Self {
        NetworkOptions {
            name: None,
            initial_reconnect_delay_ms: defaults::INITIAL_RECONNECT_DELAY_MS,
            max_reconnect_delay_ms: defaults::MAX_RECONNECT_DELAY_MS,
            use_exponential_back_off: defaults::USE_EXPONENTIAL_BACK_OFF,
            back_off_multiplier: defaults::BACK_OFF_MULTIPLIER,
            max_reconnect_attempts: defaults::MAX_RECONNECT_ATTEMPTS,
            min_connect_time_ms: defaults::MIN_CONNECT_TIME_MS,
            network_ttl: defaults::NETWORK_TTL,
            message_ttl: defaults::NETWORK_TTL,
            consumer_ttl: defaults::NETWORK_TTL,
            duplex: defaults::DUPLEX,
            conduit_subscriptions: defaults::CONDUIT_SUBSCRIPTIONS,
            decrease_network_consumer_priority: defaults::DECREASE_NETWORK_CONSUMER_PRIORITY,
            dynamic_only: defaults::DYNAMIC_ONLY,
            prefetch_size: defaults::NETWORK_PREFETCH_SIZE,
            static_bridge: defaults::STATIC_BRIDGE,
            suppress_duplicate_queue_subscriptions:
                defaults::SUPPRESS_DUPLICATE_QUEUE_SUBSCRIPTIONS,
            excluded_destinations: Vec::new(),
            dynamically_included_destinations: Vec::new(),
            statically_included_destinations: Vec::new(),
            user_name: None,
            password: None,
        }
    }
}

/// What the admin API shows instead of a password.
const PASSWORD_MASK: &str = "******";

impl NetworkOptions {
    /// Every effective option by ActiveMQ name, for the admin API. `name`, `userName` and
    /// `password` appear only when set, and the password is masked; destination lists are
    /// comma-separated (empty when unset).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut map: BTreeMap<String, String> = self
            .entries()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        map.remove("name");
        map.remove("userName");
        map.remove("password");
        if let Some(name) = &self.name {
            map.insert("name".into(), name.clone());
        }
        if let Some(user) = &self.user_name {
            map.insert("userName".into(), user.clone());
        }
        if self.password.is_some() {
            map.insert("password".into(), PASSWORD_MASK.into());
        }
        map
    }

    /// Whether `destination` (`/queue/X` or `/topic/X`) may be forwarded on demand: not when
    /// `staticBridge` is set, not when excluded, and, if `dynamicallyIncludedDestinations` is
    /// non-empty, only when it matches one of them.
    pub fn allows_dynamic(&self, destination: &str) -> bool {
        !self.static_bridge
            && !self
                .excluded_destinations
                .iter()
                .any(|f| f.matches(destination))
            && (self.dynamically_included_destinations.is_empty()
                || self
                    .dynamically_included_destinations
                    .iter()
                    .any(|f| f.matches(destination)))
    }

    /// Whether `destination` is forwarded always, demand or not (`staticallyIncludedDestinations`;
    /// exclusions do not apply).
    pub fn is_static(&self, destination: &str) -> bool {
        self.statically_included_destinations
            .iter()
            .any(|f| f.matches(destination))
    }

    /// Every option with its value, unescaped, in [`NETWORK_OPTIONS`] order; unset optional
    /// strings as empty values.
    fn entries(&self) -> Vec<(&'static str, String)> {
        let list = |fs: &[DestinationFilter]| {
            fs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        vec![
            ("name", self.name.clone().unwrap_or_default()),
            (
                "initialReconnectDelay",
                self.initial_reconnect_delay_ms.to_string(),
            ),
            ("maxReconnectDelay", self.max_reconnect_delay_ms.to_string()),
            (
                "useExponentialBackOff",
                self.use_exponential_back_off.to_string(),
            ),
            ("backOffMultiplier", self.back_off_multiplier.to_string()),
            (
                "maxReconnectAttempts",
                self.max_reconnect_attempts.to_string(),
            ),
            ("minConnectTime", self.min_connect_time_ms.to_string()),
            ("networkTTL", self.network_ttl.to_string()),
            ("messageTTL", self.message_ttl.to_string()),
            ("consumerTTL", self.consumer_ttl.to_string()),
            ("duplex", self.duplex.to_string()),
            (
                "conduitSubscriptions",
                self.conduit_subscriptions.to_string(),
            ),
            (
                "decreaseNetworkConsumerPriority",
                self.decrease_network_consumer_priority.to_string(),
            ),
            ("dynamicOnly", self.dynamic_only.to_string()),
            ("prefetchSize", self.prefetch_size.to_string()),
            ("staticBridge", self.static_bridge.to_string()),
            (
                "suppressDuplicateQueueSubscriptions",
                self.suppress_duplicate_queue_subscriptions.to_string(),
            ),
            ("excludedDestinations", list(&self.excluded_destinations)),
            (
                "dynamicallyIncludedDestinations",
                list(&self.dynamically_included_destinations),
            ),
            (
                "staticallyIncludedDestinations",
                list(&self.statically_included_destinations),
            ),
            ("userName", self.user_name.clone().unwrap_or_default()),
            ("password", self.password.clone().unwrap_or_default()),
        ]
    }

    /// The options that differ from the defaults, escaped, as `name=value` query pairs. The TTLs
    /// are printed so that parsing them back gives the same three values.
    fn query_pairs(&self) -> Vec<String> {
        let default = NetworkOptions::default();
        let mine = self.entries();
        let theirs = default.entries();
        let mut pairs = Vec::new();
        for ((key, value), (_, default_value)) in mine.into_iter().zip(theirs) {
            let differs = match key {
                "name" => self.name.is_some(),
                "userName" => self.user_name.is_some(),
                "password" => self.password.is_some(),
                "messageTTL" => self.message_ttl != self.network_ttl,
                "consumerTTL" => self.consumer_ttl != self.network_ttl,
                _ => value != default_value,
            };
            if !differs {
                continue;
            }
            let value = match key {
                // Each filter is escaped on its own: the commas between them stay commas.
                "excludedDestinations"
                | "dynamicallyIncludedDestinations"
                | "staticallyIncludedDestinations" => {
                    value.split(',').map(encode).collect::<Vec<_>>().join(",")
                }
                _ => encode(&value),
            };
            pairs.push(format!("{key}={value}"));
        }
        pairs
    }
}

/// Reads network connector options; with `multicast`, also `group`, which is returned apart.
fn parse_network_options(
    query: Option<&str>,
    context: &'static str,
    multicast: bool,
) -> Result<(NetworkOptions, Option<String>), UriError> {
    let mut o = NetworkOptions::default();
    let mut group = None;
    let (mut network_ttl, mut message_ttl, mut consumer_ttl) = (None, None, None);
    let mut seen = Seen::new(context);
    for (key, raw) in query_pairs(query) {
        match key {
            "name" => o.name = Some(non_empty_value(key, raw)?),
            "initialReconnectDelay" => o.initial_reconnect_delay_ms = millis(key, raw)?,
            "maxReconnectDelay" => o.max_reconnect_delay_ms = millis(key, raw)?,
            "useExponentialBackOff" => o.use_exponential_back_off = boolean(key, raw)?,
            "backOffMultiplier" => o.back_off_multiplier = multiplier(key, raw)?,
            "maxReconnectAttempts" => o.max_reconnect_attempts = attempts(key, raw)?,
            "minConnectTime" => o.min_connect_time_ms = millis(key, raw)?,
            "networkTTL" => network_ttl = Some(ttl(key, raw)?),
            "messageTTL" => message_ttl = Some(ttl(key, raw)?),
            "consumerTTL" => consumer_ttl = Some(ttl(key, raw)?),
            "duplex" => o.duplex = boolean(key, raw)?,
            "conduitSubscriptions" => o.conduit_subscriptions = boolean(key, raw)?,
            "decreaseNetworkConsumerPriority" => {
                o.decrease_network_consumer_priority = boolean(key, raw)?;
            }
            "dynamicOnly" => o.dynamic_only = boolean(key, raw)?,
            "prefetchSize" => o.prefetch_size = prefetch(key, raw)?,
            "staticBridge" => o.static_bridge = boolean(key, raw)?,
            "suppressDuplicateQueueSubscriptions" => {
                o.suppress_duplicate_queue_subscriptions = boolean(key, raw)?;
            }
            "excludedDestinations" => o.excluded_destinations = destinations(key, raw)?,
            "dynamicallyIncludedDestinations" => {
                o.dynamically_included_destinations = destinations(key, raw)?;
            }
            "staticallyIncludedDestinations" => {
                o.statically_included_destinations = destinations(key, raw)?;
            }
            "userName" => o.user_name = Some(value(key, raw)?),
            "password" => o.password = Some(value(key, raw)?),
            "group" if multicast => group = Some(non_empty_value(key, raw)?),
            _ => {
                let known: Vec<&'static str> = if multicast {
                    DISCOVERY_OPTIONS
                        .iter()
                        .chain(NETWORK_OPTIONS)
                        .copied()
                        .collect()
                } else {
                    NETWORK_OPTIONS.to_vec()
                };
                let unsupported: Vec<&'static str> = if multicast {
                    NETWORK_UNSUPPORTED
                        .iter()
                        .chain(DISCOVERY_UNSUPPORTED)
                        .copied()
                        .collect()
                } else {
                    NETWORK_UNSUPPORTED.to_vec()
                };
                return Err(unknown_option(key, context, &known, &unsupported));
            }
        }
        seen.check(key, key)?;
    }
    o.network_ttl = network_ttl.unwrap_or(o.network_ttl);
    o.message_ttl = message_ttl.unwrap_or(o.network_ttl);
    o.consumer_ttl = consumer_ttl.unwrap_or(o.network_ttl);
    Ok((o, group))
}

/// A network connector URI: `static:(peer,peer,...)?options` (or `masterslave:(a,b)?options`,
/// read as `static:(masterslave:(a,b))?options`) or `multicast://default?options`.
#[derive(Debug, Clone, PartialEq)]
pub enum NetworkUri {
    /// A fixed list of peers: one bridge per peer.
    Static {
        /// The peers, in the order given.
        peers: Vec<PeerUri>,
        /// Connector options.
        options: NetworkOptions,
    },
    /// Peers found by multicast discovery.
    Multicast {
        /// Group address and name to listen on.
        discovery: DiscoveryUri,
        /// Connector options.
        options: NetworkOptions,
    },
}

impl NetworkUri {
    /// The connector's options.
    pub fn options(&self) -> &NetworkOptions {
        match self {
            NetworkUri::Static { options, .. } | NetworkUri::Multicast { options, .. } => options,
        }
    }
}

impl FromStr for NetworkUri {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, UriError> {
        const EXPECTED: &str = "static:(...), masterslave:(...) or multicast://";
        let s = non_empty(s)?;
        check_parens(s)?;
        let (scheme, rest) = scheme_of(s, EXPECTED)?;
        match scheme {
            Scheme::Static => {
                let rest = strip_slashes(rest);
                let (body, query) = paren_body(s, rest, "static:")?;
                let peers = split_list(body, s)?
                    .into_iter()
                    .map(parse_peer)
                    .collect::<Result<Vec<_>, _>>()?;
                let (options, _) = parse_network_options(query, "static:(...)", false)?;
                Ok(NetworkUri::Static { peers, options })
            }
            Scheme::MasterSlave => {
                let (endpoints, query) = parse_masterslave(s, rest)?;
                let (options, _) = parse_network_options(query, "masterslave:(...)", false)?;
                Ok(NetworkUri::Static {
                    peers: vec![PeerUri::MasterSlave(endpoints)],
                    options,
                })
            }
            Scheme::Multicast => {
                let (group_addr, query) = parse_multicast(s)?;
                let (options, group) = parse_network_options(query, "multicast://", true)?;
                let group = group.unwrap_or_else(|| defaults::MULTICAST_GROUP_NAME.to_string());
                Ok(NetworkUri::Multicast {
                    discovery: DiscoveryUri { group_addr, group },
                    options,
                })
            }
            _ => Err(unknown_scheme(s, EXPECTED)),
        }
    }
}

impl fmt::Display for NetworkUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut pairs = Vec::new();
        match self {
            NetworkUri::Static { peers, .. } => {
                f.write_str("static:(")?;
                for (i, peer) in peers.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{peer}")?;
                }
                f.write_char(')')?;
            }
            NetworkUri::Multicast { discovery, .. } => {
                discovery.write_addr(f)?;
                if discovery.group != defaults::MULTICAST_GROUP_NAME {
                    pairs.push(format!("group={}", encode(&discovery.group)));
                }
            }
        }
        pairs.extend(self.options().query_pairs());
        write_query(f, &pairs)
    }
}

// ---- failover -------------------------------------------------------------------------------

/// Client failover (ActiveMQ `FailoverTransport`):
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

impl FailoverOptions {
    /// Every effective option by ActiveMQ name (`backOffMultiplier`, not its alias).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.entries()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }

    fn entries(&self) -> Vec<(&'static str, String)> {
        vec![
            ("randomize", self.randomize.to_string()),
            (
                "initialReconnectDelay",
                self.initial_reconnect_delay_ms.to_string(),
            ),
            ("maxReconnectDelay", self.max_reconnect_delay_ms.to_string()),
            (
                "useExponentialBackOff",
                self.use_exponential_back_off.to_string(),
            ),
            ("backOffMultiplier", self.back_off_multiplier.to_string()),
            (
                "maxReconnectAttempts",
                self.max_reconnect_attempts.to_string(),
            ),
            (
                "startupMaxReconnectAttempts",
                self.startup_max_reconnect_attempts.to_string(),
            ),
            ("timeout", self.timeout_ms.to_string()),
            ("priorityBackup", self.priority_backup.to_string()),
        ]
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
        const EXPECTED: &str = "failover:";
        let s = non_empty(s)?;
        check_parens(s)?;
        let (scheme, rest) = scheme_of(s, EXPECTED)?;
        if scheme != Scheme::Failover {
            return Err(unknown_scheme(s, EXPECTED));
        }
        parse_failover(s, rest)
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
fn parse_failover(s: &str, rest: &str) -> Result<FailoverUri, UriError> {
    let rest = strip_slashes(rest);
    let (endpoints, query) = if rest.trim_start().starts_with('(') {
        let (body, query) = paren_body(s, rest, "failover:")?;
        (tcp_list(body, s)?, query)
    } else {
        let (body, query) = match rest.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (rest, None),
        };
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
        let canonical = match key {
            "randomize" => {
                o.randomize = boolean(key, raw)?;
                key
            }
            "initialReconnectDelay" => {
                o.initial_reconnect_delay_ms = millis(key, raw)?;
                key
            }
            "maxReconnectDelay" => {
                o.max_reconnect_delay_ms = millis(key, raw)?;
                key
            }
            "useExponentialBackOff" => {
                o.use_exponential_back_off = boolean(key, raw)?;
                key
            }
            "backOffMultiplier" | "reconnectDelayExponent" => {
                o.back_off_multiplier = multiplier(key, raw)?;
                "backOffMultiplier"
            }
            "maxReconnectAttempts" => {
                o.max_reconnect_attempts = attempts(key, raw)?;
                key
            }
            "startupMaxReconnectAttempts" => {
                o.startup_max_reconnect_attempts = attempts(key, raw)?;
                key
            }
            "timeout" => {
                o.timeout_ms = attempts(key, raw)?;
                key
            }
            "priorityBackup" => {
                o.priority_backup = boolean(key, raw)?;
                key
            }
            _ => {
                return Err(unknown_option(
                    key,
                    CONTEXT,
                    FAILOVER_OPTIONS,
                    FAILOVER_UNSUPPORTED,
                ));
            }
        };
        seen.check(canonical, key)?;
    }
    Ok(o)
}

// ---- client targets -------------------------------------------------------------------------

/// Any client-side target (what `mqctl --url` takes): `tcp://` or `stomp://`, `failover:(...)`,
/// or `masterslave:(a,b)`, which is read as a failover with `randomize=false` (master first).
#[derive(Debug, Clone, PartialEq)]
pub enum ClientUri {
    /// One endpoint.
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
}

impl FromStr for ClientUri {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, UriError> {
        const EXPECTED: &str = "tcp://, stomp://, failover:(...) or masterslave:(...)";
        let s = non_empty(s)?;
        check_parens(s)?;
        let (scheme, rest) = scheme_of(s, EXPECTED)?;
        match scheme {
            Scheme::Tcp => Ok(ClientUri::Tcp(parse_tcp(s, false)?)),
            Scheme::Failover => Ok(ClientUri::Failover(parse_failover(s, rest)?)),
            Scheme::MasterSlave => {
                let (endpoints, query) = parse_masterslave(s, rest)?;
                reject_options(query, "masterslave:(...)")?;
                Ok(ClientUri::Failover(FailoverUri {
                    endpoints,
                    options: FailoverOptions {
                        randomize: false,
                        ..FailoverOptions::default()
                    },
                }))
            }
            _ => Err(unknown_scheme(s, EXPECTED)),
        }
    }
}

impl fmt::Display for ClientUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientUri::Tcp(hp) => write!(f, "tcp://{hp}"),
            ClientUri::Failover(fo) => fo.fmt(f),
        }
    }
}

// ---- destination filters --------------------------------------------------------------------

/// Whether a destination is a queue or a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DestinationKind {
    /// `/queue/...`: point to point.
    Queue,
    /// `/topic/...`: publish and subscribe.
    Topic,
}

impl DestinationKind {
    /// `/queue/` or `/topic/`.
    pub fn prefix(self) -> &'static str {
        match self {
            DestinationKind::Queue => "/queue/",
            DestinationKind::Topic => "/topic/",
        }
    }

    /// Splits `/queue/NAME` or `/topic/NAME` into kind and name; a bare `NAME` is a queue.
    /// `None` for any other `/...` prefix.
    fn split(destination: &str) -> Option<(DestinationKind, &str)> {
        if let Some(name) = destination.strip_prefix("/queue/") {
            Some((DestinationKind::Queue, name))
        } else if let Some(name) = destination.strip_prefix("/topic/") {
            Some((DestinationKind::Topic, name))
        } else if destination.starts_with('/') {
            None
        } else {
            Some((DestinationKind::Queue, destination))
        }
    }
}

/// A destination pattern with ActiveMQ's wildcards over `.`-separated names: `*` matches exactly
/// one segment, `>` one or more trailing segments (so `ORDERS.>` matches `ORDERS.EU` and
/// `ORDERS.EU.DE` but not `ORDERS`) and may only come last. Wildcards are whole segments; `A*`
/// is a literal name. Written with our prefixes, `/queue/ORDERS.>` or `/topic/*.PRICE`; a bare
/// name without a prefix (`ORDERS.>`) means a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationFilter {
    kind: DestinationKind,
    pattern: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    One,
    Rest,
}

impl DestinationFilter {
    /// Parses `/queue/PATTERN`, `/topic/PATTERN` or a bare queue `PATTERN`.
    pub fn parse(s: &str) -> Result<Self, UriError> {
        let text = s.trim();
        let bad = |reason| UriError::BadDestination {
            filter: text.to_string(),
            reason,
        };
        if text.is_empty() {
            return Err(bad("empty"));
        }
        let (kind, pattern) = DestinationKind::split(text)
            .ok_or_else(|| bad("want /queue/NAME, /topic/NAME or a bare queue NAME"))?;
        if pattern.is_empty() {
            return Err(bad("empty name"));
        }
        let parts: Vec<&str> = pattern.split('.').collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            segments.push(match *part {
                "" => return Err(bad("empty segment between dots")),
                "*" => Segment::One,
                ">" if i + 1 == parts.len() => Segment::Rest,
                ">" => return Err(bad("'>' may only be the last segment")),
                literal => Segment::Literal(literal.to_string()),
            });
        }
        Ok(DestinationFilter {
            kind,
            pattern: pattern.to_string(),
            segments,
        })
    }

    /// Queue or topic.
    pub fn kind(&self) -> DestinationKind {
        self.kind
    }

    /// The pattern without its prefix, e.g. `ORDERS.>`.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Whether `destination` (`/queue/X`, `/topic/X`, or a bare queue name) matches.
    pub fn matches(&self, destination: &str) -> bool {
        let Some((kind, name)) = DestinationKind::split(destination) else {
            return false;
        };
        if kind != self.kind {
            return false;
        }
        let mut parts = name.split('.');
        for segment in &self.segments {
            match segment {
                Segment::Rest => return parts.next().is_some(),
                Segment::One => {
                    if parts.next().is_none() {
                        return false;
                    }
                }
                Segment::Literal(literal) => {
                    if parts.next() != Some(literal.as_str()) {
                        return false;
                    }
                }
            }
        }
        parts.next().is_none()
    }
}

impl FromStr for DestinationFilter {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, UriError> {
        DestinationFilter::parse(s)
    }
}

impl fmt::Display for DestinationFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.kind.prefix(), self.pattern)
    }
}

// ---- lexical helpers ------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Tcp,
    Static,
    MasterSlave,
    Failover,
    Multicast,
}

fn non_empty(s: &str) -> Result<&str, UriError> {
    let s = s.trim();
    if s.is_empty() {
        Err(UriError::Empty)
    } else {
        Ok(s)
    }
}

/// Splits `scheme:rest`, recognising the schemes of this module (case-insensitively).
fn scheme_of<'a>(s: &'a str, expected: &'static str) -> Result<(Scheme, &'a str), UriError> {
    let missing = || UriError::MissingScheme {
        uri: s.to_string(),
        expected,
    };
    let (name, rest) = s.split_once(':').ok_or_else(missing)?;
    let looks_like_scheme = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    // `localhost:61613` is a host and port, not a scheme.
    if !looks_like_scheme || rest.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(missing());
    }
    let scheme = match name.to_ascii_lowercase().as_str() {
        "tcp" | "stomp" => Scheme::Tcp,
        "static" => Scheme::Static,
        "masterslave" => Scheme::MasterSlave,
        "failover" => Scheme::Failover,
        "multicast" => Scheme::Multicast,
        _ => return Err(unknown_scheme(s, expected)),
    };
    Ok((scheme, rest))
}

fn unknown_scheme(s: &str, expected: &'static str) -> UriError {
    UriError::UnknownScheme {
        scheme: s.split(':').next().unwrap_or_default().to_string(),
        uri: s.to_string(),
        expected,
    }
}

/// The text after the `//` that `tcp:` and `multicast:` require.
fn slashes<'a>(s: &str, rest: &'a str) -> Result<&'a str, UriError> {
    rest.strip_prefix("//")
        .ok_or_else(|| UriError::MissingSlashes {
            scheme: s.split(':').next().unwrap_or_default().to_string(),
            uri: s.to_string(),
        })
}

/// Composite schemes may be written `failover://(...)` as well as `failover:(...)`.
fn strip_slashes(rest: &str) -> &str {
    rest.strip_prefix("//").unwrap_or(rest)
}

/// Splits `text?query` at the first `?`.
fn split_query(s: &str) -> (&str, Option<&str>) {
    match s.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (s, None),
    }
}

/// Checks that parentheses balance, so that the parsers may rely on it.
fn check_parens(uri: &str) -> Result<(), UriError> {
    let mut depth = 0usize;
    for c in uri.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => {
                return Err(UriError::UnmatchedClose {
                    uri: uri.to_string(),
                });
            }
            ')' => depth -= 1,
            _ => {}
        }
    }
    if depth > 0 {
        Err(UriError::MissingClose {
            uri: uri.to_string(),
        })
    } else {
        Ok(())
    }
}

/// Splits `(body)?query` (after a composite scheme) into the body and the query.
fn paren_body<'a>(
    s: &str,
    rest: &'a str,
    scheme: &'static str,
) -> Result<(&'a str, Option<&'a str>), UriError> {
    let inner = rest
        .trim_start()
        .strip_prefix('(')
        .ok_or_else(|| UriError::MissingOpen {
            scheme,
            uri: s.to_string(),
        })?;
    let mut depth = 0usize;
    let mut close = None;
    for (i, c) in inner.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => {
                close = Some(i);
                break;
            }
            ')' => depth -= 1,
            _ => {}
        }
    }
    let close = close.ok_or_else(|| UriError::MissingClose { uri: s.to_string() })?;
    let body = &inner[..close];
    let after = inner[close + 1..].trim_start();
    if after.is_empty() {
        Ok((body, None))
    } else if let Some(query) = after.strip_prefix('?') {
        Ok((body, Some(query)))
    } else {
        Err(UriError::TrailingText {
            text: after.to_string(),
            uri: s.to_string(),
        })
    }
}

/// Splits a list at the commas outside parentheses; entries are trimmed and must not be empty.
fn split_list<'a>(body: &'a str, uri: &str) -> Result<Vec<&'a str>, UriError> {
    if body.trim().is_empty() {
        return Err(UriError::EmptyList {
            uri: uri.to_string(),
        });
    }
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in body.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                items.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&body[start..]);
    let items: Vec<&str> = items.into_iter().map(str::trim).collect();
    if items.iter().any(|item| item.is_empty()) {
        return Err(UriError::EmptyEntry {
            uri: uri.to_string(),
        });
    }
    Ok(items)
}

/// `masterslave:(tcp://a:1,tcp://b:2)` with its (unparsed) query.
fn parse_masterslave<'a>(
    s: &'a str,
    rest: &'a str,
) -> Result<(Vec<HostPort>, Option<&'a str>), UriError> {
    let (body, query) = paren_body(s, strip_slashes(rest), "masterslave:")?;
    Ok((tcp_list(body, s)?, query))
}

/// A list of `tcp://host:port` endpoints without options.
fn tcp_list(body: &str, uri: &str) -> Result<Vec<HostPort>, UriError> {
    split_list(body, uri)?
        .into_iter()
        .map(|item| parse_tcp(item, false))
        .collect()
}

/// `tcp://host:port` (or `stomp://`) without options, as a peer or client endpoint.
fn parse_tcp(s: &str, zero_ok: bool) -> Result<HostPort, UriError> {
    const EXPECTED: &str = "tcp:// or stomp://";
    let (scheme, rest) = scheme_of(s, EXPECTED)?;
    if scheme != Scheme::Tcp {
        return Err(unknown_scheme(s, EXPECTED));
    }
    let (endpoint, query) = split_query(s);
    let (host_port, _) = split_query(slashes(s, rest)?);
    let hp = parse_host_port(host_port, endpoint, zero_ok)?;
    reject_options(query, "tcp://")?;
    Ok(hp)
}

/// Rejects any option: `context` takes none.
fn reject_options(query: Option<&str>, context: &'static str) -> Result<(), UriError> {
    match query_pairs(query).first() {
        Some((key, _)) => Err(unknown_option(key, context, &[], &[])),
        None => Ok(()),
    }
}

/// Parses `host:port`, `[v6]:port`; `endpoint` is the whole endpoint text, for errors.
fn parse_host_port(hp: &str, endpoint: &str, zero_ok: bool) -> Result<HostPort, UriError> {
    let bad_host = |host: &str, reason| UriError::BadHost {
        host: host.to_string(),
        endpoint: endpoint.to_string(),
        reason,
    };
    let missing_port = || UriError::MissingPort {
        endpoint: endpoint.to_string(),
    };
    let (host, port) = if let Some(bracketed) = hp.strip_prefix('[') {
        let (v6, after) = bracketed
            .split_once(']')
            .ok_or_else(|| bad_host(hp, "missing ']'"))?;
        let ip: Ipv6Addr = v6
            .parse()
            .map_err(|_| bad_host(&format!("[{v6}]"), "not an IPv6 address"))?;
        let port = match after.strip_prefix(':') {
            Some(port) => port,
            None if after.is_empty() => return Err(missing_port()),
            None => return Err(bad_host(hp, "want ':' and a port after ']'")),
        };
        (ip.to_string(), port)
    } else {
        let colons = hp.matches(':').count();
        if colons > 1 {
            return Err(bad_host(
                hp,
                "an IPv6 address must be bracketed, e.g. [::1]:61613",
            ));
        }
        let (host, port) = hp.split_once(':').ok_or_else(missing_port)?;
        check_host(host, endpoint)?;
        (host.to_string(), port)
    };
    if port.is_empty() {
        return Err(missing_port());
    }
    let want = if zero_ok {
        "a number from 0 to 65535"
    } else {
        "a number from 1 to 65535"
    };
    let parsed = port
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| port.parse::<u16>().ok())
        .flatten()
        .filter(|p| zero_ok || *p != 0);
    let port = parsed.ok_or_else(|| UriError::BadPort {
        port: port.to_string(),
        endpoint: endpoint.to_string(),
        want,
    })?;
    Ok(HostPort { host, port })
}

/// A host name or IPv4 address: letters, digits, `-`, `_` and `.`; all-numeric means IPv4.
fn check_host(host: &str, endpoint: &str) -> Result<(), UriError> {
    let bad = |reason| UriError::BadHost {
        host: host.to_string(),
        endpoint: endpoint.to_string(),
        reason,
    };
    if host.is_empty() {
        return Err(UriError::MissingHost {
            endpoint: endpoint.to_string(),
        });
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(bad(
            "a host is a name, an IPv4 address or a bracketed IPv6 address",
        ));
    }
    if host.chars().all(|c| c.is_ascii_digit() || c == '.') && host.parse::<Ipv4Addr>().is_err() {
        return Err(bad("not an IPv4 address"));
    }
    Ok(())
}

/// `(tcp://a:1,tcp://b:2)`.
fn write_endpoint_list(f: &mut fmt::Formatter<'_>, endpoints: &[HostPort]) -> fmt::Result {
    f.write_char('(')?;
    for (i, hp) in endpoints.iter().enumerate() {
        if i > 0 {
            f.write_char(',')?;
        }
        write!(f, "tcp://{hp}")?;
    }
    f.write_char(')')
}

fn write_query(f: &mut fmt::Formatter<'_>, pairs: &[String]) -> fmt::Result {
    if !pairs.is_empty() {
        write!(f, "?{}", pairs.join("&"))?;
    }
    Ok(())
}

// ---- options --------------------------------------------------------------------------------

/// `name=value` pairs of a query, trimmed, empty segments skipped; `None` for a missing `=`.
fn query_pairs(query: Option<&str>) -> Vec<(&str, Option<&str>)> {
    query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .map(str::trim)
        .filter(|seg| !seg.is_empty())
        .map(|seg| match seg.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (seg, None),
        })
        .collect()
}

/// Remembers the options already given, to reject repeats.
struct Seen {
    context: &'static str,
    names: Vec<String>,
}

impl Seen {
    fn new(context: &'static str) -> Self {
        Seen {
            context,
            names: Vec::new(),
        }
    }

    /// Records `canonical` (the option `given` names), failing if it came before.
    fn check(&mut self, canonical: &str, given: &str) -> Result<(), UriError> {
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

/// The error for an option `known` does not list: unsupported if ActiveMQ has it.
fn unknown_option(
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

/// The raw value of an option that needs one.
fn required<'a>(key: &str, raw: Option<&'a str>) -> Result<&'a str, UriError> {
    raw.ok_or_else(|| UriError::MissingValue {
        option: key.to_string(),
    })
}

/// The value, `%XX` escapes decoded.
fn value(key: &str, raw: Option<&str>) -> Result<String, UriError> {
    decode(key, required(key, raw)?)
}

fn non_empty_value(key: &str, raw: Option<&str>) -> Result<String, UriError> {
    let v = value(key, raw)?;
    if v.is_empty() {
        return Err(bad_value(key, "a non-empty name", ""));
    }
    Ok(v)
}

fn bad_value(key: &str, want: &'static str, value: &str) -> UriError {
    UriError::BadValue {
        option: key.to_string(),
        want,
        value: value.to_string(),
    }
}

/// Parses with `FromStr`, reporting `want` on failure.
fn typed<T: FromStr>(key: &str, raw: Option<&str>, want: &'static str) -> Result<T, UriError> {
    let raw = required(key, raw)?;
    raw.parse().map_err(|_| bad_value(key, want, raw))
}

fn boolean(key: &str, raw: Option<&str>) -> Result<bool, UriError> {
    typed(key, raw, "true or false")
}

fn millis(key: &str, raw: Option<&str>) -> Result<u64, UriError> {
    const WANT: &str = "a whole number of milliseconds";
    // u64's FromStr accepts a leading '+'; a plain number is all we want.
    let raw_v = required(key, raw)?;
    if raw_v.starts_with('+') {
        return Err(bad_value(key, WANT, raw_v));
    }
    typed(key, raw, WANT)
}

fn ttl(key: &str, raw: Option<&str>) -> Result<u32, UriError> {
    const WANT: &str = "a whole number";
    let raw_v = required(key, raw)?;
    if raw_v.starts_with('+') {
        return Err(bad_value(key, WANT, raw_v));
    }
    typed(key, raw, WANT)
}

/// Attempts and timeouts: -1 means forever.
fn attempts(key: &str, raw: Option<&str>) -> Result<i64, UriError> {
    const WANT: &str = "a whole number, -1 or more";
    let raw_v = required(key, raw)?;
    match raw_v.parse::<i64>() {
        Ok(n) if n >= -1 && !raw_v.starts_with('+') => Ok(n),
        _ => Err(bad_value(key, WANT, raw_v)),
    }
}

fn prefetch(key: &str, raw: Option<&str>) -> Result<usize, UriError> {
    const WANT: &str = "a whole number above 0";
    let raw_v = required(key, raw)?;
    match raw_v.parse::<usize>() {
        Ok(n) if n > 0 && !raw_v.starts_with('+') => Ok(n),
        _ => Err(bad_value(key, WANT, raw_v)),
    }
}

fn multiplier(key: &str, raw: Option<&str>) -> Result<f64, UriError> {
    const WANT: &str = "a number of at least 1";
    let raw_v = required(key, raw)?;
    match raw_v.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 1.0 => Ok(x),
        _ => Err(bad_value(key, WANT, raw_v)),
    }
}

/// A comma-separated list of destination filters; an empty value is an empty list.
fn destinations(key: &str, raw: Option<&str>) -> Result<Vec<DestinationFilter>, UriError> {
    let raw = required(key, raw)?;
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    raw.split(',')
        .map(|item| DestinationFilter::parse(&decode(key, item.trim())?))
        .collect()
}

/// Decodes `%XX` escapes.
fn decode(key: &str, raw: &str) -> Result<String, UriError> {
    if !raw.contains('%') {
        return Ok(raw.to_string());
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            let byte = hex.ok_or_else(|| bad_value(key, "%XX escapes with two hex digits", raw))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad_value(key, "escapes that decode to UTF-8", raw))
}

/// Escapes what would otherwise end or split a value: `% & , ( ) ? # =` and whitespace.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '&' | ',' | '(' | ')' | '?' | '#' | '=')
            || c.is_ascii_whitespace()
            || c.is_ascii_control()
        {
            let _ = write!(out, "%{:02X}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}
