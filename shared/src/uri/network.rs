//! Network connectors: [`NetworkUri`] (`static:(...)`, `masterslave:(...)`, `multicast://`) and
//! their [`NetworkOptions`].

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::str::FromStr;

use super::discovery::{DISCOVERY_OPTIONS, DISCOVERY_UNSUPPORTED, DiscoveryUri, parse_multicast};
use super::error::{UriError, unknown_option, unknown_scheme};
use super::filter::DestinationFilter;
use super::host::parse_masterslave;
use super::peer::{PeerUri, parse_peer};
use super::redact::Redacted;
use super::syntax::{
    Scheme, composite, encode, paren_body, query_pairs, scheme_of, split_list, strip_slashes,
    write_query,
};
use super::value::{
    Seen, boolean, destinations, entry, entry_map, millis, non_empty_value, prefetch,
    reconnect_options, ttl, value,
};
use crate::defaults;

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

reconnect_options!(NetworkOptions);

impl NetworkOptions {
    /// Every effective option by ActiveMQ name, for the admin API. `name`, `userName` and
    /// `password` appear only when set, and the password is masked; destination lists are
    /// comma-separated (empty when unset).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut map = entry_map(self.entries());
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
            map.insert("password".into(), defaults::SECRET_MASK.into());
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
        let mut entries = vec![entry("name", self.name.clone().unwrap_or_default())];
        entries.extend(self.reconnect_entries());
        entries.extend([
            entry("minConnectTime", self.min_connect_time_ms),
            entry("networkTTL", self.network_ttl),
            entry("messageTTL", self.message_ttl),
            entry("consumerTTL", self.consumer_ttl),
            entry("duplex", self.duplex),
            entry("conduitSubscriptions", self.conduit_subscriptions),
            entry(
                "decreaseNetworkConsumerPriority",
                self.decrease_network_consumer_priority,
            ),
            entry("dynamicOnly", self.dynamic_only),
            entry("prefetchSize", self.prefetch_size),
            entry("staticBridge", self.static_bridge),
            entry(
                "suppressDuplicateQueueSubscriptions",
                self.suppress_duplicate_queue_subscriptions,
            ),
            entry("excludedDestinations", list(&self.excluded_destinations)),
            entry(
                "dynamicallyIncludedDestinations",
                list(&self.dynamically_included_destinations),
            ),
            entry(
                "staticallyIncludedDestinations",
                list(&self.statically_included_destinations),
            ),
            entry("userName", self.user_name.clone().unwrap_or_default()),
            entry("password", self.password.clone().unwrap_or_default()),
        ]);
        entries
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
                // Each filter is escaped on its own, so that a comma in one stays in it and the
                // commas between them stay commas.
                "excludedDestinations" => encode_list(&self.excluded_destinations),
                "dynamicallyIncludedDestinations" => {
                    encode_list(&self.dynamically_included_destinations)
                }
                "staticallyIncludedDestinations" => {
                    encode_list(&self.statically_included_destinations)
                }
                _ => encode(&value),
            };
            pairs.push(format!("{key}={value}"));
        }
        pairs
    }
}

/// A destination list as a query value: each filter escaped, joined by commas.
fn encode_list(filters: &[DestinationFilter]) -> String {
    filters
        .iter()
        .map(|f| encode(&f.to_string()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Options of the discovery part of a `multicast://` network connector.
#[derive(Default)]
struct DiscoveryOptions {
    group: Option<String>,
    secret: Option<String>,
}

/// Reads network connector options; with `multicast`, also `group` and `secret`, which are
/// returned apart.
fn parse_network_options(
    query: Option<&str>,
    context: &'static str,
    multicast: bool,
) -> Result<(NetworkOptions, DiscoveryOptions), UriError> {
    let mut o = NetworkOptions::default();
    let mut d = DiscoveryOptions::default();
    let (mut network_ttl, mut message_ttl, mut consumer_ttl) = (None, None, None);
    let mut seen = Seen::new(context);
    for (key, raw) in query_pairs(query) {
        match key {
            _ if o.set_reconnect(key, key, raw)? => {}
            "name" => o.name = Some(non_empty_value(key, raw)?),
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
            "group" if multicast => d.group = Some(non_empty_value(key, raw)?),
            "secret" if multicast => d.secret = Some(non_empty_value(key, raw)?),
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
    Ok((o, d))
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
    /// The URI with its password and discovery secret masked (`***`), for logs, admin API
    /// answers and `mqctl` output. `Display` prints them, for saving configurations.
    pub fn redacted(&self) -> Redacted<'_, Self> {
        Redacted(self)
    }

    /// Whether a static peer is reached over TLS (`ssl://`).
    pub fn has_tls_peer(&self) -> bool {
        match self {
            NetworkUri::Static { peers, .. } => {
                peers.iter().any(|p| p.endpoints().iter().any(|e| e.secure))
            }
            NetworkUri::Multicast { .. } => false,
        }
    }

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
        let s = composite(s)?;
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
                let (options, d) = parse_network_options(query, "multicast://", true)?;
                let group = d
                    .group
                    .unwrap_or_else(|| defaults::MULTICAST_GROUP_NAME.to_string());
                Ok(NetworkUri::Multicast {
                    discovery: DiscoveryUri {
                        group_addr,
                        group,
                        secret: d.secret,
                    },
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
                pairs.extend(discovery.query_pairs());
            }
        }
        pairs.extend(self.options().query_pairs());
        write_query(f, &pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comma_inside_a_destination_filter_prints_escaped() -> Result<(), UriError> {
        // Found by fuzzing: the printed list was split at every comma, the escaped one too.
        let uri: NetworkUri =
            "static:(tcp://h:1)?staticallyIncludedDestinations=%20a%2Cb,/topic/c".parse()?;
        let printed = uri.to_string();
        assert_eq!(
            printed,
            "static:(tcp://h:1)?staticallyIncludedDestinations=/queue/a%2Cb,/topic/c"
        );
        let again: NetworkUri = printed.parse()?;
        assert_eq!(again, uri);
        let patterns: Vec<&str> = again
            .options()
            .statically_included_destinations
            .iter()
            .map(DestinationFilter::pattern)
            .collect();
        assert_eq!(patterns, ["a,b", "c"]);
        Ok(())
    }

    #[test]
    fn a_value_with_unicode_whitespace_round_trips() -> Result<(), UriError> {
        let uri: NetworkUri = "static:(tcp://h:1)?name=%E3%80%80n%C2%A0&password=%C2%85".parse()?;
        assert_eq!(uri.options().name.as_deref(), Some("\u{3000}n\u{a0}"));
        assert_eq!(uri.options().password.as_deref(), Some("\u{85}"));
        let again: NetworkUri = uri.to_string().parse()?;
        assert_eq!(again, uri);
        Ok(())
    }
}
