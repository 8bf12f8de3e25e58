//! Fuzz target: arbitrary text parsed as every connector URI type, destination filter and
//! destination.
//!
//! Checked for every input and type: no panic; an accepted value prints (`Display`) as text
//! that parses back to an equal value and prints the same again; a rejection renders as a
//! message; the masked form (`redacted()`) of an accepted URI never shows its password or
//! discovery secret. The values' accessors (endpoints, option maps, filter matching) and the
//! masking of unparsed text (`redact_uri`) run too.
#![no_main]

use std::fmt::{Debug, Display};
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use mq_shared::destination::{Destination, DestinationKind};
use mq_shared::uri::{
    ClientUri, DestinationFilter, DiscoveryUri, FailoverUri, HostPort, NetworkUri, PeerUri,
    TransportUri, redact_uri,
};

/// Parses `text` as `T`; if accepted, checks the print/parse round trip and returns the value.
fn round_trip<T>(text: &str) -> Option<T>
where
    T: FromStr + Display + PartialEq + Debug,
    T::Err: Display,
{
    match text.parse::<T>() {
        Ok(value) => {
            let printed = value.to_string();
            match printed.parse::<T>() {
                Ok(again) => {
                    assert_eq!(again, value, "{text:?} printed as {printed:?}");
                    assert_eq!(again.to_string(), printed, "printing is not stable");
                }
                Err(e) => panic!("{text:?} printed as {printed:?}, which is rejected: {e}"),
            }
            Some(value)
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            None
        }
    }
}

/// An endpoint whose host is an IP address gives an address string the socket API takes.
fn check_endpoint(hp: &HostPort) {
    let addr = hp.to_addr_string();
    assert_eq!(hp.to_string(), addr);
    if hp.host.parse::<IpAddr>().is_ok() {
        assert!(
            addr.parse::<SocketAddr>().is_ok(),
            "{hp:?} gives the address {addr:?}"
        );
    }
}

/// Put in place of a URI's secrets: the masked form must not show it.
const SECRET: &str = "FuzzSecret42";

/// How often the marker shows in `masked` beyond its count in `without` (the URI without its
/// secrets): each is a secret that was not masked.
fn leaked(masked: &str, without: &str) -> bool {
    masked.matches(SECRET).count() > without.matches(SECRET).count()
}

/// `n` with its password and discovery secret set to `secret`.
fn network_with(n: &NetworkUri, secret: Option<&str>) -> NetworkUri {
    let mut n = n.clone();
    match &mut n {
        NetworkUri::Static { options, .. } => options.password = secret.map(str::to_string),
        NetworkUri::Multicast { discovery, options } => {
            options.password = secret.map(str::to_string);
            discovery.secret = secret.map(str::to_string);
        }
    }
    n
}

fn check_network_masking(n: &NetworkUri) {
    let marked = network_with(n, Some(SECRET));
    let masked = marked.redacted().to_string();
    let without = network_with(n, None).to_string();
    assert!(!leaked(&masked, &without), "{marked} masked as {masked}");
}

fn check_transport_masking(t: &TransportUri) {
    let with = |secret: Option<&str>| {
        let mut t = t.clone();
        if let Some(d) = &mut t.discovery {
            d.secret = secret.map(str::to_string);
        }
        t
    };
    let marked = with(Some(SECRET));
    let masked = marked.redacted().to_string();
    assert!(
        !leaked(&masked, &with(None).to_string()),
        "{marked} masked as {masked}"
    );
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();
    let _ = redact_uri(text);

    if let Some(t) = round_trip::<TransportUri>(text) {
        check_endpoint(&t.addr);
        check_transport_masking(&t);
    }
    if let Some(n) = round_trip::<NetworkUri>(text) {
        check_network_masking(&n);
        let options = n.options();
        let _ = options.to_map();
        let _ = options.allows_dynamic(text);
        let _ = options.is_static(text);
        if let NetworkUri::Static { peers, .. } = &n {
            for peer in peers {
                peer.endpoints().iter().for_each(check_endpoint);
            }
        }
    }
    if let Some(c) = round_trip::<ClientUri>(text) {
        c.endpoints().iter().for_each(check_endpoint);
    }
    if let Some(f) = round_trip::<FailoverUri>(text) {
        let _ = f.options.to_map();
    }
    if let Some(p) = round_trip::<PeerUri>(text) {
        p.endpoints().iter().for_each(check_endpoint);
    }
    if let Some(d) = round_trip::<DiscoveryUri>(text) {
        let mut marked = d.clone();
        marked.secret = Some(SECRET.to_string());
        let masked = marked.redacted().to_string();
        let without = DiscoveryUri { secret: None, ..d }.to_string();
        assert!(!leaked(&masked, &without), "{marked} masked as {masked}");
    }
    if let Some(filter) = round_trip::<DestinationFilter>(text) {
        // A filter written out as a destination matches it when it has no wildcards.
        let printed = filter.to_string();
        if !printed.contains(['*', '>']) {
            assert!(
                filter.matches(&printed),
                "{printed:?} does not match itself"
            );
        }
        let _ = filter.matches(text);
    }
    if let Some(d) = round_trip::<Destination>(text) {
        // A temporary destination prints with ActiveMQ's /remote-temp-queue/ or
        // /remote-temp-topic/ prefix, any other with its kind's.
        let prefix = match (d.is_temp(), d.kind()) {
            (true, DestinationKind::Queue) => mq_shared::destination::REMOTE_TEMP_QUEUE_PREFIX,
            (true, DestinationKind::Topic) => mq_shared::destination::REMOTE_TEMP_TOPIC_PREFIX,
            (false, kind) => kind.prefix(),
        };
        assert_eq!(format!("{prefix}{}", d.name()), d.as_str());
    }
});
