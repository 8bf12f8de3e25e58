//! TCP endpoints: [`HostPort`], host and port checks, and `tcp://` / `ssl://` lists without
//! options.

use std::fmt::{self, Write as _};
use std::net::{Ipv4Addr, Ipv6Addr};

use super::error::{UriError, unknown_option, unknown_scheme};
use super::syntax::{
    Scheme, paren_body, query_pairs, scheme_of, slashes, split_list, split_query, strip_slashes,
};

/// `host:port` of a TCP endpoint, and whether it speaks TLS (`ssl://`) or plain TCP (`tcp://`).
/// The host is a name (`localhost`), an IPv4 address, or an IPv6 address (written bracketed,
/// `[::1]`, in URIs; stored here without brackets, in canonical form).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// Host name or address; IPv6 without brackets.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// `ssl://` (TLS) rather than `tcp://`.
    pub secure: bool,
}

impl HostPort {
    /// A plain TCP endpoint from its parts (no validation).
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        HostPort {
            host: host.into(),
            port,
            secure: false,
        }
    }

    /// A TLS (`ssl://`) endpoint from its parts (no validation).
    pub fn tls(host: impl Into<String>, port: u16) -> Self {
        HostPort {
            secure: true,
            ..HostPort::new(host, port)
        }
    }

    /// `ssl` or `tcp`.
    pub fn scheme(&self) -> &'static str {
        if self.secure { "ssl" } else { "tcp" }
    }

    /// `tcp://host:port` or `ssl://host:port`.
    pub fn to_uri_string(&self) -> String {
        format!("{}://{self}", self.scheme())
    }

    /// Whether the host is a loopback address or `localhost` (what a node may serve without
    /// a security file).
    pub fn is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
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

/// `host:port` (IPv6 bracketed), without the scheme: see [`HostPort::to_uri_string`].
impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_addr_string())
    }
}

/// `masterslave:(tcp://a:1,tcp://b:2)` with its (unparsed) query.
pub(super) fn parse_masterslave<'a>(
    s: &'a str,
    rest: &'a str,
) -> Result<(Vec<HostPort>, Option<&'a str>), UriError> {
    let (body, query) = paren_body(s, strip_slashes(rest), "masterslave:")?;
    Ok((tcp_list(body, s)?, query))
}

/// `masterslave:(tcp://a:1,ssl://b:2)` as a peer or client, where it takes no options.
pub(super) fn masterslave_endpoints(s: &str, rest: &str) -> Result<Vec<HostPort>, UriError> {
    let (endpoints, query) = parse_masterslave(s, rest)?;
    reject_options(query, "masterslave:(...)")?;
    Ok(endpoints)
}

/// A list of `tcp://host:port` or `ssl://host:port` endpoints without options.
pub(super) fn tcp_list(body: &str, uri: &str) -> Result<Vec<HostPort>, UriError> {
    split_list(body, uri)?
        .into_iter()
        .map(|item| parse_tcp(item, false))
        .collect()
}

/// `tcp://host:port` or `ssl://host:port` (or an alias) without options, as a peer or client
/// endpoint.
pub(super) fn parse_tcp(s: &str, zero_ok: bool) -> Result<HostPort, UriError> {
    let (hp, query) = tcp_endpoint(s, zero_ok)?;
    reject_options(query, if hp.secure { "ssl://" } else { "tcp://" })?;
    Ok(hp)
}

/// `tcp://host:port?query` or `ssl://host:port?query` (or `stomp://`, `stomp+ssl://`): the
/// endpoint and the (unparsed) query.
pub(super) fn tcp_endpoint(s: &str, zero_ok: bool) -> Result<(HostPort, Option<&str>), UriError> {
    const EXPECTED: &str = "tcp://, stomp://, ssl:// or stomp+ssl://";
    let (secure, rest) = match scheme_of(s, EXPECTED)? {
        (Scheme::Tcp, rest) => (false, rest),
        (Scheme::Ssl, rest) => (true, rest),
        _ => return Err(unknown_scheme(s, EXPECTED)),
    };
    endpoint_after_scheme(s, rest, secure, zero_ok)
}

/// A transport connector's endpoint: what [`tcp_endpoint`] reads, or `ws://host:port` and
/// `wss://host:port` (STOMP over WebSocket, plain or TLS). The `bool` says WebSocket.
pub(super) fn transport_endpoint(s: &str) -> Result<(HostPort, bool, Option<&str>), UriError> {
    const EXPECTED: &str = "tcp://, stomp://, ssl://, stomp+ssl://, ws:// or wss://";
    let (secure, websocket, rest) = match scheme_of(s, EXPECTED)? {
        (Scheme::Tcp, rest) => (false, false, rest),
        (Scheme::Ssl, rest) => (true, false, rest),
        (Scheme::Ws, rest) => (false, true, rest),
        (Scheme::Wss, rest) => (true, true, rest),
        _ => return Err(unknown_scheme(s, EXPECTED)),
    };
    let (hp, query) = endpoint_after_scheme(s, rest, secure, true)?;
    Ok((hp, websocket, query))
}

/// `//host:port?query` after the scheme of `s`.
fn endpoint_after_scheme<'a>(
    s: &'a str,
    rest: &'a str,
    secure: bool,
    zero_ok: bool,
) -> Result<(HostPort, Option<&'a str>), UriError> {
    let (endpoint, query) = split_query(s);
    let (host_port, _) = split_query(slashes(s, rest)?);
    let mut hp = parse_host_port(host_port, endpoint, zero_ok)?;
    hp.secure = secure;
    Ok((hp, query))
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
    Ok(HostPort::new(host, port))
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

/// `(tcp://a:1,ssl://b:2)`.
pub(super) fn write_endpoint_list(
    f: &mut fmt::Formatter<'_>,
    endpoints: &[HostPort],
) -> fmt::Result {
    f.write_char('(')?;
    for (i, hp) in endpoints.iter().enumerate() {
        if i > 0 {
            f.write_char(',')?;
        }
        write!(f, "{}://{hp}", hp.scheme())?;
    }
    f.write_char(')')
}
