//! Connector URIs: parsed and printed here, pure (no I/O, no DNS), for the node and the CLI alike.
//!
//! The forms and option names are ActiveMQ Classic's, spelt as ActiveMQ spells them (option
//! names are case-sensitive; schemes are not). Defaults come from [`crate::defaults`].
//!
//! ```text
//! transport   = transport-endpoint [ "?" topts ]                      tcp://0.0.0.0:61613?discoveryUri=multicast://default
//! topts       = topt { "&" topt }       topt = "needClientAuth=" bool (ssl://, wss://) | "discoveryUri=" discovery
//! transport-endpoint = endpoint | ws | wss                 transports only; peers and clients speak tcp/ssl
//! ws          = "ws" "://" host ":" port                   STOMP over WebSocket
//! wss         = "wss" "://" host ":" port                  STOMP over WebSocket over TLS
//! endpoint    = tcp | ssl
//! tcp         = ( "tcp" | "stomp" ) "://" host ":" port        stomp:// is an alias of tcp://
//! ssl         = ( "ssl" | "stomp+ssl" ) "://" host ":" port    STOMP over TLS; stomp+ssl:// is an alias
//! host        = name | ipv4 | "[" ipv6 "]"
//! discovery   = "multicast://" ( "default" | ipv4 ":" port ) [ "?" ( "group=" text | "secret=" text ) ... ]
//!
//! network     = "static:" "(" peer { "," peer } ")" [ "?" options ]
//!             | "masterslave:" "(" endpoint { "," endpoint } ")" [ "?" options ]   = static:(masterslave:(...))?options
//!             | "multicast://" ( "default" | ipv4 ":" port ) [ "?" options ]   options may include group, secret
//! peer        = endpoint | masterslave | failover
//! masterslave = "masterslave:" "(" endpoint { "," endpoint } ")"  master first, then its slaves
//! failover    = "failover:" ( "(" endpoint { "," endpoint } ")" | endpoint { "," endpoint } ) [ "?" options ]
//! client      = endpoint | failover | masterslave                  masterslave = failover with randomize=false
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
//!   (`%2C` for a comma); [`Display`](std::fmt::Display) escapes `% & , ( ) ? # =`, whitespace
//!   and control characters.
//! - Ports go from 1 to 65535; a transport may bind port 0 (any free port).
//! - Each endpoint records its scheme ([`HostPort::secure`]): `tcp://` and `ssl://` may be mixed
//!   in one list, and `Display` writes each back as it was (aliases as `tcp://` and `ssl://`).
//! - A transport's `discoveryUri` ends at the next `&`, unless it has a `?` of its own: then the
//!   rest of the query is the discovery URI's options (so write it last):
//!   `ssl://h:1?needClientAuth=true&discoveryUri=multicast://default?secret=s`.
//! - Unknown options are errors, never ignored. Every [`UriError`] names the offending part.
//! - Secrets (`password`, `secret`) are printed by `Display`, which saves configurations; show
//!   URIs through [`redact_uri`] or the types' `redacted()` ([`Redacted`]), which mask them as
//!   `***`. Errors mask them already.
//! - Numbers are checked where they are read, against the ranges below; an error names the
//!   option and its range. They are written plainly (no `+`); `NaN` and infinities never pass.
//!
//! | options | accepted |
//! | --- | --- |
//! | `initialReconnectDelay`, `maxReconnectDelay`, `minConnectTime` | 0 to 86400000 ms (one day, [`MAX_DELAY_MS`]) |
//! | `timeout` (failover) | -1 (no limit), or 0 to 86400000 ms |
//! | `backOffMultiplier` (alias `reconnectDelayExponent`) | 1 to 1000 ([`MAX_BACK_OFF_MULTIPLIER`]) |
//! | `maxReconnectAttempts`, `startupMaxReconnectAttempts` | -1 to 2147483647 (ActiveMQ's `int`, [`MAX_RECONNECT_ATTEMPTS`]) |
//! | `networkTTL`, `messageTTL`, `consumerTTL` | 0 to 255 ([`MAX_TTL`]) |
//! | `prefetchSize` | 1 to 32767 (ActiveMQ's maximum prefetch, [`MAX_PREFETCH_SIZE`]) |
//!
//! A day is longer than any useful wait between reconnects and keeps the back-off's arithmetic
//! far from overflow (which [`crate::backoff`] guards against anyway).
//!
//! Destination filters ([`DestinationFilter`]) use ActiveMQ's wildcards over `.`-separated
//! names, written with our prefixes: `/queue/ORDERS.>`, `/topic/*.PRICE`; a bare name means a queue.
//!
//! Layout: `syntax` splits the text (schemes, lists, queries, escapes), `value` reads
//! typed option values, `host` the endpoints; one module per URI kind (`transport`,
//! `discovery`, `peer`, `network`, `failover`, `filter`); `redact` masks secrets; `error` holds
//! [`UriError`].

mod discovery;
mod error;
mod failover;
mod filter;
mod host;
mod network;
mod peer;
mod redact;
mod syntax;
mod transport;
mod value;

pub use discovery::{DISCOVERY_OPTIONS, DiscoveryUri};
pub use error::UriError;
pub use failover::{ClientUri, FAILOVER_OPTIONS, FailoverOptions, FailoverUri};
pub use filter::{DestinationFilter, DestinationKind};
pub use host::HostPort;
pub use network::{NETWORK_OPTIONS, NetworkOptions, NetworkUri};
pub use peer::PeerUri;
pub use redact::{Redacted, redact_uri};
pub use transport::{TRANSPORT_OPTIONS, TransportUri};
pub use value::{
    MAX_BACK_OFF_MULTIPLIER, MAX_DELAY_MS, MAX_PREFETCH_SIZE, MAX_RECONNECT_ATTEMPTS, MAX_TTL,
};
