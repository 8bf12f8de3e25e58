//! Cluster layouts, pure: node names, the links of each topology and the connector URIs posted
//! for them. Ports are handed out by [`crate::ports`].

use mq_shared::ctl::Topology;

/// One process to create: its name and its group (broker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedNode {
    /// Process name.
    pub name: String,
    /// Group name.
    pub group: String,
}

/// `node1..nodeN`; with `members` > 1, each broker `nodeK` is the group `nodeKa`, `nodeKb`,
/// ... of that many processes (at most 26).
pub fn node_names(count: usize, members: usize) -> Vec<PlannedNode> {
    let mut nodes = Vec::new();
    for k in 1..=count {
        let group = format!("node{k}");
        if members > 1 {
            for suffix in ('a'..='z').take(members) {
                nodes.push(PlannedNode {
                    name: format!("{group}{suffix}"),
                    group: group.clone(),
                });
            }
        } else {
            nodes.push(PlannedNode {
                name: group.clone(),
                group,
            });
        }
    }
    nodes
}

/// One link of a topology, between groups by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkSpec {
    /// Index of the forwarding group.
    pub from: usize,
    /// Index of the receiving group.
    pub to: usize,
    /// Both directions on one connection.
    pub duplex: bool,
    /// `networkTTL`.
    pub ttl: u32,
}

/// The links of `topology` over `n` brokers, so that a message sent on any broker can reach a
/// consumer on any other: mesh (every ordered pair, TTL 1), line (duplex neighbours, TTL n-1),
/// ring (duplex neighbours around, TTL ⌊n/2⌋), star (duplex from the first, TTL 2), none.
pub fn topology_links(topology: Topology, n: usize) -> Vec<LinkSpec> {
    if n < 2 {
        return Vec::new();
    }
    let ttl = |t: usize| u32::try_from(t).unwrap_or(u32::MAX).max(1);
    let duplex = |from, to, t| LinkSpec {
        from,
        to,
        duplex: true,
        ttl: ttl(t),
    };
    match topology {
        Topology::Mesh => (0..n)
            .flat_map(|from| {
                (0..n)
                    .filter(move |&to| to != from)
                    .map(move |to| LinkSpec {
                        from,
                        to,
                        duplex: false,
                        ttl: 1,
                    })
            })
            .collect(),
        Topology::Line => (0..n - 1).map(|i| duplex(i, i + 1, n - 1)).collect(),
        // Two brokers in a ring are one line: do not link them twice.
        Topology::Ring if n == 2 => vec![duplex(0, 1, 1)],
        Topology::Ring => (0..n).map(|i| duplex(i, (i + 1) % n, n / 2)).collect(),
        Topology::Star => (1..n).map(|i| duplex(0, i, 2)).collect(),
        Topology::None | Topology::Custom => Vec::new(),
    }
}

/// The name of a link from `from` to `to`: `FROM-TO`, with `-2`, `-3`... appended while it is
/// taken.
pub fn link_name(from: &str, to: &str, taken: &[&str]) -> String {
    let base = format!("{from}-{to}");
    if !taken.contains(&base.as_str()) {
        return base;
    }
    (2..)
        .map(|k| format!("{base}-{k}"))
        .find(|candidate| !taken.contains(&candidate.as_str()))
        .unwrap_or(base)
}

/// The connector URI for a link to a broker whose processes listen on `to_ports`:
/// `static:(tcp://127.0.0.1:P)?networkTTL=T[&duplex=true]`, or
/// `static:(masterslave:(tcp://127.0.0.1:A,tcp://127.0.0.1:B))?...` for an HA pair.
pub fn link_uri(to_ports: &[u16], ttl: u32, duplex: bool, tls: bool) -> String {
    let scheme = if tls { "ssl" } else { "tcp" };
    let addresses: Vec<String> = to_ports
        .iter()
        .map(|p| format!("{scheme}://127.0.0.1:{p}"))
        .collect();
    link_uri_to(&addresses, ttl, duplex)
}

/// [`link_uri`] for a broker whose processes listen at `addresses` (`tcp://HOST:PORT`).
pub fn link_uri_to(addresses: &[String], ttl: u32, duplex: bool) -> String {
    let target = if addresses.len() > 1 {
        format!("masterslave:({})", addresses.join(","))
    } else {
        addresses.join(",")
    };
    let mut uri = format!("static:({target})?networkTTL={ttl}");
    if duplex {
        uri.push_str("&duplex=true");
    }
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(links: &[LinkSpec]) -> Vec<(usize, usize, bool, u32)> {
        links
            .iter()
            .map(|l| (l.from, l.to, l.duplex, l.ttl))
            .collect()
    }

    #[test]
    fn no_links_below_two_brokers() {
        for t in Topology::ALL {
            assert!(topology_links(t, 0).is_empty());
            assert!(topology_links(t, 1).is_empty());
        }
    }

    #[test]
    fn mesh_links_every_ordered_pair() {
        for n in 1..=5 {
            let links = topology_links(Topology::Mesh, n);
            assert_eq!(links.len(), n * n.saturating_sub(1));
            assert!(
                links
                    .iter()
                    .all(|l| !l.duplex && l.ttl == 1 && l.from != l.to)
            );
            for a in 0..n {
                for b in (0..n).filter(|&b| b != a) {
                    assert!(links.iter().any(|l| l.from == a && l.to == b));
                }
            }
        }
    }

    #[test]
    fn line_links_neighbours() {
        assert!(topology_links(Topology::Line, 1).is_empty());
        assert_eq!(pairs(&topology_links(Topology::Line, 2)), [(0, 1, true, 1)]);
        assert_eq!(
            pairs(&topology_links(Topology::Line, 3)),
            [(0, 1, true, 2), (1, 2, true, 2)]
        );
        assert_eq!(
            pairs(&topology_links(Topology::Line, 5)),
            [
                (0, 1, true, 4),
                (1, 2, true, 4),
                (2, 3, true, 4),
                (3, 4, true, 4)
            ]
        );
        assert_eq!(topology_links(Topology::Line, 4).len(), 3);
    }

    #[test]
    fn ring_closes_the_line() {
        assert!(topology_links(Topology::Ring, 1).is_empty());
        assert_eq!(pairs(&topology_links(Topology::Ring, 2)), [(0, 1, true, 1)]);
        assert_eq!(
            pairs(&topology_links(Topology::Ring, 3)),
            [(0, 1, true, 1), (1, 2, true, 1), (2, 0, true, 1)]
        );
        assert_eq!(
            pairs(&topology_links(Topology::Ring, 4)),
            [
                (0, 1, true, 2),
                (1, 2, true, 2),
                (2, 3, true, 2),
                (3, 0, true, 2)
            ]
        );
        let five = topology_links(Topology::Ring, 5);
        assert_eq!(five.len(), 5);
        assert!(five.iter().all(|l| l.ttl == 2 && l.duplex));
    }

    #[test]
    fn star_links_the_first_to_each_other() {
        assert!(topology_links(Topology::Star, 1).is_empty());
        for n in 2..=5 {
            let links = topology_links(Topology::Star, n);
            assert_eq!(links.len(), n - 1);
            assert!(links.iter().all(|l| l.from == 0 && l.duplex && l.ttl == 2));
            let mut tos: Vec<usize> = links.iter().map(|l| l.to).collect();
            tos.sort();
            assert_eq!(tos, (1..n).collect::<Vec<_>>());
        }
    }

    #[test]
    fn none_and_custom_have_no_generated_links() {
        for n in 1..=5 {
            assert!(topology_links(Topology::None, n).is_empty());
            assert!(topology_links(Topology::Custom, n).is_empty());
        }
    }

    /// Every topology lets a message on any broker reach any other (following links in their
    /// direction, both ways for duplex) within the link's TTL.
    #[test]
    fn every_topology_connects_all_brokers_within_ttl() {
        for t in [
            Topology::Mesh,
            Topology::Line,
            Topology::Ring,
            Topology::Star,
        ] {
            for n in 1..=5 {
                let links = topology_links(t, n);
                for src in 0..n {
                    let mut dist = vec![usize::MAX; n];
                    dist[src] = 0;
                    let mut frontier = vec![src];
                    while let Some(x) = frontier.pop() {
                        for l in &links {
                            let next = if l.from == x {
                                Some(l.to)
                            } else if l.duplex && l.to == x {
                                Some(l.from)
                            } else {
                                None
                            };
                            if let Some(y) = next
                                && dist[x] + 1 < dist[y]
                            {
                                dist[y] = dist[x] + 1;
                                frontier.push(y);
                            }
                        }
                    }
                    for (dst, d) in dist.iter().enumerate() {
                        assert!(*d != usize::MAX, "{t} n={n}: {src} cannot reach {dst}");
                        if let Some(max_ttl) = links.iter().map(|l| l.ttl as usize).max() {
                            assert!(*d <= max_ttl, "{t} n={n}: {src}->{dst} needs {d} hops");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn names_and_ha_pairs() {
        let plain = node_names(3, 1);
        assert_eq!(
            plain.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
            ["node1", "node2", "node3"]
        );
        assert!(plain.iter().all(|n| n.name == n.group));
        let ha = node_names(2, 2);
        assert_eq!(
            ha.iter()
                .map(|n| (n.name.as_str(), n.group.as_str()))
                .collect::<Vec<_>>(),
            [
                ("node1a", "node1"),
                ("node1b", "node1"),
                ("node2a", "node2"),
                ("node2b", "node2")
            ]
        );
        let three = node_names(1, 3);
        assert_eq!(
            three.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
            ["node1a", "node1b", "node1c"]
        );
    }

    #[test]
    fn uris() {
        assert_eq!(
            link_uri(&[61702], 1, false, false),
            "static:(tcp://127.0.0.1:61702)?networkTTL=1"
        );
        assert_eq!(
            link_uri(&[61702], 2, true, false),
            "static:(tcp://127.0.0.1:61702)?networkTTL=2&duplex=true"
        );
        assert_eq!(
            link_uri(&[61704, 61706], 1, true, false),
            "static:(masterslave:(tcp://127.0.0.1:61704,tcp://127.0.0.1:61706))?networkTTL=1&duplex=true"
        );
    }

    #[test]
    fn link_names_are_unique() {
        assert_eq!(link_name("node1", "node2", &[]), "node1-node2");
        assert_eq!(
            link_name("node1", "node2", &["node1-node2"]),
            "node1-node2-2"
        );
        assert_eq!(
            link_name("node1", "node2", &["node1-node2", "node1-node2-2"]),
            "node1-node2-3"
        );
    }
}
