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

use std::collections::BTreeMap;
use std::sync::Arc;

use mq_shared::destination::Destination;
use mq_shared::uri::NetworkOptions;

use crate::broker::NetworkConsumer;
use crate::internode::{DemandEntry, is_advisory};

/// What a bridge wants attached for one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    /// Network consumers to attach: 1 with `conduitSubscriptions`, else one per remote consumer.
    pub consumers: usize,
    /// The filter and demand of each.
    pub network: Arc<NetworkConsumer>,
}

/// The destinations a bridge over a link with `options` forwards to broker `peer`.
#[derive(Debug, Clone)]
pub struct Selection<'a> {
    options: &'a NetworkOptions,
    peer: Arc<str>,
}

impl<'a> Selection<'a> {
    /// A selection for a bridge to `peer`.
    pub fn new(options: &'a NetworkOptions, peer: Arc<str>) -> Self {
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
        let o = self.options;
        let mut out = BTreeMap::new();
        for e in advisory {
            if is_advisory(&e.destination)
                || Destination::parse(&e.destination).is_err()
                || e.hops >= o.consumer_ttl
                || !(o.allows_dynamic(&e.destination) || o.is_static(&e.destination))
            {
                continue;
            }
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
                    }),
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
                        }),
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
        }
    }

    #[test]
    fn ttl_filters_and_static_includes() -> Result<(), mq_shared::uri::UriError> {
        let uri: mq_shared::uri::NetworkUri = "static:(tcp://h:1)?networkTTL=2&excludedDestinations=/queue/secret.>&staticallyIncludedDestinations=/queue/always".parse()?;
        let o = uri.options();
        let sel = Selection::new(o, Arc::from("B"));
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
        Ok(())
    }
}
