//! Demand: which destinations a bridge forwards, and the advisory that tells it.
//!
//! A node serves a special destination, [`crate::internode::ADVISORY_DESTINATION`], to bridge
//! connections only
//! (ActiveMQ's consumer advisories, folded into one snapshot). A bridge subscribes to it on
//! its peer; the peer answers at once with a JSON [`crate::internode::Advisory`] and again
//! whenever its
//! consumers change:
//!
//! ```text
//! {"broker":"B","demand":[{"destination":"/queue/orders","consumers":2,"hops":0,"origin":[]},
//!                         {"destination":"/topic/prices","consumers":1,"hops":1,"origin":["C"]}]}
//! ```
//!
//! Each entry counts the peer's consumers of one destination, leaving out the asking bridge's
//! own consumers and any network consumer whose demand came through the asking broker (so
//! demand never echoes back). `hops` is the distance to the nearest of them (0: a consumer on
//! the peer itself) and `origin` the brokers that all of them lie behind. The bridge forwards a
//! destination while `hops < consumerTTL` and its filters allow it ([`Selection`]); its
//! network consumer then stands for demand `hops + 1` away, behind `origin` plus the peer.
//!
//! ```text
//!   {"destination":"/queue/orders","consumers":2,"hops":0,"origin":[],"selector":"(a = 1) OR (b = 2)"}
//!   {"destination":"/topic/prices.>","consumers":1,"hops":0,"origin":[]}
//!   {"destination":"/remote-temp-queue/ID:B-5f3a09c2-7:1","consumers":1,"hops":0,"origin":[]}
//! ```
//!
//! `selector` is the union (OR) of the consumers' selectors, absent as soon as one of them has
//! none; the network consumer takes only matching messages, so the others never cross. A
//! wildcard entry stands for the peer's wildcard subscriptions: the network consumer is a
//! wildcard one too, attached to every matching destination here (existing and future) that
//! the connector's filters allow. A temporary destination's entry is its owner's subscription:
//! the network consumer carries replies sent here back to it.

use std::collections::BTreeMap;
use std::sync::Arc;

use mq_shared::destination::Destination;
use mq_shared::selector::Selector;
use mq_shared::uri::NetworkOptions;

use crate::broker::NetworkConsumer;
use crate::internode::{DemandEntry, is_advisory};

/// What a bridge wants attached for one destination.
#[derive(Debug, Clone, PartialEq)]
pub struct Want {
    /// Network consumers to attach: 1 with `conduitSubscriptions`, else one per remote consumer.
    pub consumers: usize,
    /// The filter and demand of each.
    pub network: Arc<NetworkConsumer>,
    /// The union of the remote consumers' selectors: only matching messages cross.
    pub selector: Option<Arc<Selector>>,
}

/// The destinations a bridge over a link with `options` forwards to broker `peer`.
#[derive(Debug, Clone)]
pub struct Selection {
    options: Arc<NetworkOptions>,
    peer: Arc<str>,
}

impl Selection {
    /// A selection for a bridge to `peer`.
    pub fn new(options: Arc<NetworkOptions>, peer: Arc<str>) -> Self {
        Selection { options, peer }
    }

    /// The destinations to forward given the peer's advisory and the node's own destinations
    /// (for `staticallyIncludedDestinations`, which are forwarded demand or not unless
    /// `dynamicOnly` is set).
    pub fn wanted(
        &self,
        advisory: &[DemandEntry],
        local: impl Iterator<Item = Destination>,
    ) -> BTreeMap<String, Want> {
        let o = &*self.options;
        let mut out = BTreeMap::new();
        for e in advisory {
            let Ok(dest) = Destination::parse(&e.destination) else {
                continue;
            };
            // A temporary destination is followed whatever the include and exclude lists say
            // (ActiveMQ's `bridgeTempDestinations`), except by a static bridge.
            let allowed = if dest.is_temp() {
                !o.static_bridge
            } else {
                o.allows_dynamic(&e.destination) || o.is_static(&e.destination)
            };
            if is_advisory(&e.destination)
                || e.hops >= o.consumer_ttl
                || !allowed
                || (dest.has_wildcard() && crate::broker::wildcard_pattern(&dest).is_err())
            {
                continue;
            }
            // A selector this node cannot read forwards everything: more than needed, never
            // less.
            let selector = e.selector.as_deref().and_then(|text| {
                Selector::parse(text)
                    .map_err(|err| {
                        tracing::warn!(peer = %self.peer, destination = %e.destination, %err, "demand with a selector this node cannot read; forwarding every message")
                    })
                    .ok()
                    .map(Arc::new)
            });
            let mut origin: Vec<Arc<str>> = vec![self.peer.clone()];
            origin.extend(
                e.origin
                    .iter()
                    .filter(|b| **b != *self.peer)
                    .map(|b| Arc::from(b.as_str())),
            );
            out.insert(
                e.destination.clone(),
                Want {
                    consumers: if o.conduit_subscriptions {
                        1
                    } else {
                        e.consumers.max(1)
                    },
                    network: Arc::new(NetworkConsumer {
                        remote_broker: self.peer.clone(),
                        hops: e.hops.saturating_add(1),
                        origin,
                        message_ttl: o.message_ttl,
                        // A wildcard consumer checks each destination it attaches to.
                        scope: dest.has_wildcard().then(|| self.options.clone()),
                    }),
                    selector,
                },
            );
        }
        if !o.dynamic_only && !o.statically_included_destinations.is_empty() {
            for d in local {
                let name = d.to_string();
                if is_advisory(&name) || out.contains_key(&name) || !o.is_static(&name) {
                    continue;
                }
                out.insert(
                    name,
                    Want {
                        consumers: 1,
                        network: Arc::new(NetworkConsumer {
                            remote_broker: self.peer.clone(),
                            hops: 1,
                            origin: vec![self.peer.clone()],
                            message_ttl: o.message_ttl,
                            scope: None,
                        }),
                        selector: None,
                    },
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(d: &str, hops: u32, origin: &[&str]) -> DemandEntry {
        DemandEntry {
            destination: d.into(),
            consumers: 2,
            hops,
            origin: origin.iter().map(|s| s.to_string()).collect(),
            selector: None,
        }
    }

    #[test]
    fn ttl_filters_and_static_includes() -> Result<(), mq_shared::uri::UriError> {
        let uri: mq_shared::uri::NetworkUri = "static:(tcp://h:1)?networkTTL=2&excludedDestinations=/queue/secret.>&staticallyIncludedDestinations=/queue/always".parse()?;
        let o = uri.options();
        let sel = Selection::new(Arc::new(o.clone()), Arc::from("B"));
        let adv = vec![
            entry("/queue/a", 0, &[]),
            entry("/queue/far", 2, &["C", "D"]),
            entry("/queue/near", 1, &["C"]),
            entry("/queue/secret.x", 0, &[]),
            entry("/topic/ActiveMQ.Advisory.Consumer", 0, &[]),
        ];
        let local = vec![Destination::queue("always"), Destination::queue("other")];
        let w = sel.wanted(&adv, local.into_iter());
        let keys: Vec<&str> = w.keys().map(String::as_str).collect();
        assert_eq!(keys, vec!["/queue/a", "/queue/always", "/queue/near"]);
        let near = &w["/queue/near"].network;
        assert_eq!(near.hops, 2);
        assert_eq!(
            near.origin,
            vec![Arc::<str>::from("B"), Arc::<str>::from("C")]
        );
        assert_eq!(w["/queue/a"].consumers, 1);
        // Temporary destinations pass the lists; a wildcard is checked as written, and its
        // consumer checks each destination it attaches to.
        let uri2: mq_shared::uri::NetworkUri =
            "static:(tcp://h:1)?dynamicallyIncludedDestinations=/queue/orders.>".parse()?;
        let sel2 = Selection::new(Arc::new(uri2.options().clone()), Arc::from("B"));
        let mut adv2 = vec![
            entry("/remote-temp-queue/ID:B-1:1", 0, &[]),
            entry("/queue/orders.*", 0, &[]),
            entry("/queue/>", 0, &[]),
        ];
        adv2[1].selector = Some("a = 1".into());
        let w2 = sel2.wanted(&adv2, std::iter::empty());
        let keys2: Vec<&str> = w2.keys().map(String::as_str).collect();
        assert_eq!(
            keys2,
            vec!["/queue/orders.*", "/remote-temp-queue/ID:B-1:1"]
        );
        let wild = &w2["/queue/orders.*"];
        assert!(wild.selector.is_some() && w2["/remote-temp-queue/ID:B-1:1"].selector.is_none());
        assert!(wild.network.permits("/queue/orders.eu") && !wild.network.permits("/queue/x"));
        Ok(())
    }
}
