//! Transport connectors: `tcp://HOST:PORT`, `ssl://HOST:PORT`, `ws://HOST:PORT` or
//! `wss://HOST:PORT`, with `needClientAuth` (TLS) and `discoveryUri`, where a node listens.

use std::fmt;
use std::str::FromStr;

use super::discovery::DiscoveryUri;
use super::error::{UriError, unknown_option};
use super::host::{HostPort, transport_endpoint};
use super::redact::{Redacted, redact_uri};
use super::syntax::{non_empty, query_pairs};
use super::value::{Seen, boolean, required};

/// Options of a transport connector URI. `needClientAuth` is for `ssl://` and `wss://` only. The value of
/// `discoveryUri` is a URI: once it has a `?` of its own, the rest of the query is its options
/// (`?needClientAuth=true&discoveryUri=multicast://default?group=a&secret=s`).
pub const TRANSPORT_OPTIONS: &[&str] = &["needClientAuth", "discoveryUri"];

/// A transport connector: `tcp://HOST:PORT` (alias `stomp://`) for STOMP over TCP, or
/// `ssl://HOST:PORT` (alias `stomp+ssl://`) for STOMP over TLS, with the options
/// `needClientAuth` (ActiveMQ's name: require a client certificate; `ssl://` only) and
/// `discoveryUri` (ActiveMQ's `transportConnector` attribute of that name), to advertise the
/// connector, e.g. `tcp://127.0.0.1:0?discoveryUri=multicast://default`. Port 0 binds any
/// free port.
///
/// `ws://HOST:PORT` (and `wss://HOST:PORT`, over TLS) is STOMP over WebSocket, one frame per
/// WebSocket message, for browsers and other WebSocket clients (ActiveMQ's `ws://` connector).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportUri {
    /// Where to listen; `addr.secure` for `ssl://` and `wss://`.
    pub addr: HostPort,
    /// STOMP over WebSocket (`ws://`, `wss://`) rather than over a plain byte stream.
    pub websocket: bool,
    /// `needClientAuth`: TLS clients must present a certificate signed by the node's CA.
    pub need_client_auth: bool,
    /// Where to advertise this connector, if anywhere.
    pub discovery: Option<DiscoveryUri>,
}

impl TransportUri {
    /// Whether the connector speaks TLS (`ssl://`, `wss://`).
    pub fn is_tls(&self) -> bool {
        self.addr.secure
    }

    /// Whether the connector is STOMP over WebSocket (`ws://`, `wss://`).
    pub fn is_websocket(&self) -> bool {
        self.websocket
    }

    /// The scheme it is printed with: `tcp`, `ssl`, `ws` or `wss`.
    pub fn scheme(&self) -> &'static str {
        match (self.websocket, self.addr.secure) {
            (true, true) => "wss",
            (true, false) => "ws",
            (false, _) => self.addr.scheme(),
        }
    }

    /// `SCHEME://host:port` without options, e.g. `ws://127.0.0.1:61614`.
    pub fn endpoint_string(&self) -> String {
        format!("{}://{}", self.scheme(), self.addr)
    }

    /// The URI with its secrets masked (`***`), for logs and answers.
    pub fn redacted(&self) -> Redacted<'_, Self> {
        Redacted(self)
    }
}

impl FromStr for TransportUri {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, UriError> {
        let (addr, websocket, query) = transport_endpoint(non_empty(s)?)?;
        let context = match (websocket, addr.secure) {
            (true, true) => "wss://",
            (true, false) => "ws://",
            (false, true) => "ssl://",
            (false, false) => "tcp://",
        };
        let (own, discovery_text) = split_discovery(query);
        let mut need_client_auth = false;
        let mut seen = Seen::new(context);
        for (key, raw) in query_pairs(Some(&own)) {
            match key {
                "needClientAuth" if addr.secure => need_client_auth = boolean(key, raw)?,
                "needClientAuth" => {
                    return Err(UriError::OptionNeedsTls {
                        option: key.to_string(),
                        uri: redact_uri(s),
                    });
                }
                _ => {
                    let known = if addr.secure {
                        TRANSPORT_OPTIONS
                    } else {
                        &TRANSPORT_OPTIONS[1..]
                    };
                    return Err(unknown_option(key, context, known, &[]));
                }
            }
            seen.check(key, key)?;
        }
        // The value is a URI with its own escapes: it is handed on undecoded.
        let discovery = discovery_text
            .map(|raw| required("discoveryUri", raw)?.parse::<DiscoveryUri>())
            .transpose()?;
        Ok(TransportUri {
            addr,
            websocket,
            need_client_auth,
            discovery,
        })
    }
}

/// Splits a transport's query into its own options and the raw value of `discoveryUri`
/// (`Some(None)` when it has no `=`). The discovery URI ends at the next `&`, unless it has a
/// query of its own (a `?` before that `&`): then it runs to the end of the text.
fn split_discovery(query: Option<&str>) -> (String, Option<Option<&str>>) {
    let Some(q) = query else {
        return (String::new(), None);
    };
    let mut start = 0;
    for segment in q.split('&') {
        let key = segment.split_once('=').map_or(segment, |(k, _)| k).trim();
        if key == "discoveryUri" {
            let before = &q[..start];
            let Some((_, value)) = q[start..].split_once('=') else {
                return (
                    format!("{before}&{}", &q[start + segment.len()..]),
                    Some(None),
                );
            };
            let value = value.trim_start();
            let own_query = value.split('&').next().is_some_and(|v| v.contains('?'));
            return match value.split_once('&') {
                Some((uri, after)) if !own_query => (format!("{before}&{after}"), Some(Some(uri))),
                _ => (before.to_string(), Some(Some(value.trim_end()))),
            };
        }
        start += segment.len() + 1;
    }
    (q.to_string(), None)
}

impl fmt::Display for TransportUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.endpoint_string())?;
        let mut sep = '?';
        if self.need_client_auth {
            write!(f, "{sep}needClientAuth=true")?;
            sep = '&';
        }
        if let Some(d) = &self.discovery {
            write!(f, "{sep}discoveryUri={d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> TransportUri {
        match s.parse() {
            Ok(t) => t,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn websocket_transports() {
        let t = parse("ws://127.0.0.1:61614");
        assert!(t.is_websocket() && !t.is_tls());
        assert_eq!(t.addr, HostPort::new("127.0.0.1", 61614));
        assert_eq!(t.to_string(), "ws://127.0.0.1:61614");
        assert_eq!(t.endpoint_string(), "ws://127.0.0.1:61614");
        let t = parse("WSS://[::1]:0?needClientAuth=true");
        assert!(t.is_websocket() && t.is_tls() && t.need_client_auth);
        assert_eq!(t.scheme(), "wss");
        assert_eq!(t.to_string(), "wss://[::1]:0?needClientAuth=true");
        assert_eq!(parse(&t.to_string()), t);
        let t = parse("ws://0.0.0.0:0?discoveryUri=multicast://default");
        assert_eq!(t.discovery, Some(DiscoveryUri::default()));
        assert_eq!(parse(&t.to_string()), t);
        let tcp = parse("tcp://h:1");
        assert!(!tcp.is_websocket());
        assert_eq!(tcp.scheme(), "tcp");
    }

    #[test]
    fn websocket_transport_errors_name_the_part() {
        let e = "ws://h:1?needClientAuth=true"
            .parse::<TransportUri>()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("needClientAuth"), "{e}");
        let e = "wsx://h:1"
            .parse::<TransportUri>()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("wsx") && e.contains("ws://"), "{e}");
        assert!("ws://h".parse::<TransportUri>().is_err());
        assert!("ws://h:70000".parse::<TransportUri>().is_err());
    }

    #[test]
    fn websocket_is_not_a_peer_or_client_scheme() {
        assert!(
            "static:(ws://h:1)"
                .parse::<super::super::NetworkUri>()
                .is_err()
        );
        assert!("ws://h:1".parse::<super::super::ClientUri>().is_err());
    }
}
