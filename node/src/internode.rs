//! The inter-node protocol: what one node's bridge and another node's transport say to each
//! other on top of STOMP 1.2. A leaf module: the transport (serving bridges) and the network
//! connectors (being bridges) both use it and neither imports the other.
//!
//! ```text
//! bridge A ──CONNECT  mq-bridge:A ────────────────────────────▶ node B
//!          ◀─CONNECTED mq-broker:B ─────────────────────────────
//!          ──SUBSCRIBE /topic/ActiveMQ.Advisory.Consumer ──────▶   demand snapshots (JSON
//!          ◀─MESSAGE {"broker":"B","demand":[...]} ────────────     Advisory), again on change;
//!                                                                   an entry may be a wildcard
//!                                                                   pattern or a temporary
//!                                                                   destination's id, and may
//!                                                                   carry a selector
//!          ──SEND message-id:ID mq-broker-path:X,A receipt ───▶   stored, de-duplicated by id
//!          ◀─RECEIPT ──────────────────────────────────────────     then A deletes its copy
//!   duplex ──SUBSCRIBE dest mq-hops mq-origin mq-message-ttl ──▶   B's messages for A's demand
//!                     [selector]
//! ```
//!
//! The broker path lists the brokers a message has crossed, oldest first (ActiveMQ's
//! `brokerPath`); a node never forwards a message to a broker already on its path.

use std::sync::Arc;

use mq_shared::frame::Frame;
use serde::{Deserialize, Serialize};

/// CONNECT header with which a bridge names its broker: the connection is a network bridge.
pub const BRIDGE_HEADER: &str = "mq-bridge";
/// CONNECTED header with which a node names itself to a bridge.
pub const BROKER_HEADER: &str = "mq-broker";
/// Header carrying the brokers a message has crossed, comma separated, oldest first.
pub const BROKER_PATH_HEADER: &str = "mq-broker-path";
/// SUBSCRIBE header of a bridge's subscription: hops to the demand it stands for.
pub const HOPS_HEADER: &str = "mq-hops";
/// SUBSCRIBE header of a bridge's subscription: brokers its demand lies behind (comma list).
pub const ORIGIN_HEADER: &str = "mq-origin";
/// SUBSCRIBE header of a bridge's subscription: the bridge's `messageTTL`.
pub const MESSAGE_TTL_HEADER: &str = "mq-message-ttl";

/// The destination a bridge subscribes to on its peer to follow the peer's demand.
pub const ADVISORY_DESTINATION: &str = "/topic/ActiveMQ.Advisory.Consumer";
/// Prefix of advisory destinations: never forwarded, never counted as demand.
pub const ADVISORY_PREFIX: &str = "/topic/ActiveMQ.Advisory.";

/// Whether `destination` is an advisory (never forwarded).
pub fn is_advisory(destination: &str) -> bool {
    destination.starts_with(ADVISORY_PREFIX)
}

/// One snapshot of a node's demand, as its peer's bridge should see it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advisory {
    /// The node that sent it.
    pub broker: String,
    /// One entry per destination with consumers.
    pub demand: Vec<DemandEntry>,
}

/// Demand for one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemandEntry {
    /// `/queue/NAME` or `/topic/NAME`.
    pub destination: String,
    /// Consumers counted.
    pub consumers: usize,
    /// Hops to the nearest (0: on the sending node).
    pub hops: u32,
    /// Brokers all of them lie behind, the sending node excluded.
    #[serde(default)]
    pub origin: Vec<String>,
    /// The union (OR) of their selectors; absent when one of them has none (nodes that
    /// predate selectors neither send nor read it, and forward everything).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
}

/// Parses a comma list of broker names (a broker path or an [`ORIGIN_HEADER`]).
pub fn parse_brokers(v: &str) -> Vec<Arc<str>> {
    brokers(v).map(Arc::from).collect()
}

/// The broker names of a comma list, in order.
pub fn brokers(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// A broker path with `local` appended (the path a message carries when `local` forwards it).
pub fn extend_path(path: Option<&str>, local: &str) -> String {
    match path {
        Some(p) if !p.trim().is_empty() => format!("{p},{local}"),
        _ => local.to_string(),
    }
}

/// What a bridge's SUBSCRIBE says about the demand it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeSubscription {
    /// Hops from the subscribing node to the nearest consumer it stands for (1: its own).
    pub hops: u32,
    /// Brokers every consumer it stands for lies behind, the subscribing broker first.
    pub origin: Vec<Arc<str>>,
    /// Its `messageTTL`.
    pub message_ttl: u32,
}

impl BridgeSubscription {
    /// Reads the headers of a SUBSCRIBE from the bridge of broker `bridge`.
    pub fn from_frame(bridge: &str, f: &Frame) -> Result<BridgeSubscription, String> {
        let num = |name: &str, default: u32| -> Result<u32, String> {
            match f.header(name) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<u32>()
                    .map_err(|_| format!("{name} '{v}' is not a whole number")),
            }
        };
        let remote: Arc<str> = Arc::from(bridge);
        let mut origin = vec![remote.clone()];
        if let Some(v) = f.header(ORIGIN_HEADER) {
            origin.extend(parse_brokers(v).into_iter().filter(|b| *b != remote));
        }
        Ok(BridgeSubscription {
            hops: num(HOPS_HEADER, 1)?,
            origin,
            message_ttl: num(MESSAGE_TTL_HEADER, mq_shared::defaults::NETWORK_TTL)?,
        })
    }

    /// Adds these headers to a SUBSCRIBE sent by broker `local` (which the peer adds itself).
    pub fn add_headers(&self, local: &str, f: &mut Frame) {
        let origin: Vec<&str> = self
            .origin
            .iter()
            .filter(|b| ***b != *local)
            .map(|b| &**b)
            .collect();
        f.push_header(HOPS_HEADER, self.hops.to_string());
        f.push_header(ORIGIN_HEADER, origin.join(","));
        f.push_header(MESSAGE_TTL_HEADER, self.message_ttl.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mq_shared::frame::Command;

    #[test]
    fn paths_and_subscriptions_round_trip() -> Result<(), String> {
        assert_eq!(extend_path(None, "A"), "A");
        assert_eq!(extend_path(Some("X, Y"), "A"), "X, Y,A");
        assert_eq!(brokers(" X, ,Y").collect::<Vec<_>>(), vec!["X", "Y"]);
        let sub = BridgeSubscription {
            hops: 2,
            origin: vec![Arc::from("A"), Arc::from("C")],
            message_ttl: 3,
        };
        let mut f = Frame::new(Command::Subscribe);
        sub.add_headers("A", &mut f);
        assert_eq!(BridgeSubscription::from_frame("A", &f)?, sub);
        f.set_header(HOPS_HEADER, "x");
        assert!(BridgeSubscription::from_frame("A", &f).is_err());
        Ok(())
    }

    #[test]
    fn advisory_round_trips_as_json() -> Result<(), serde_json::Error> {
        let a = Advisory {
            broker: "B".into(),
            demand: vec![DemandEntry {
                destination: "/queue/a".into(),
                consumers: 2,
                hops: 0,
                origin: vec![],
                selector: Some("(a = 1) OR (b = 2)".into()),
            }],
        };
        let s = serde_json::to_string(&a)?;
        assert_eq!(serde_json::from_str::<Advisory>(&s)?, a);
        // An older node's entry (no selector) reads as demand for everything, and an entry
        // without a selector is written as an older node writes it.
        let old = r#"{"broker":"B","demand":[{"destination":"/queue/a","consumers":1,"hops":0}]}"#;
        let read = serde_json::from_str::<Advisory>(old)?;
        assert_eq!(read.demand[0].selector, None);
        let mut plain = a.clone();
        plain.demand[0].selector = None;
        assert!(!serde_json::to_string(&plain)?.contains("selector"));
        Ok(())
    }
}
