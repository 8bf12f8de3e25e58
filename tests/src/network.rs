//! Networks of nodes: links through the admin API, waits on bridge state and demand, producing
//! numbered messages and collecting them from several consumers, exactly once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mq_shared::api::{NetworkConnectorInfo, NetworkConnectorList, PeerState};
use mq_shared::client::{AckMode, StompClient};

use crate::{Node, SOON, body_number, connect, send_numbered, subscribe, wait_for_async};

/// Bound for a bridge to come up or for demand to cross it.
pub const LINK: Duration = Duration::from_secs(20);

/// `static:(tcp://ADDR,...)?QUERY` for the given nodes.
pub fn static_uri(peers: &[&Node], query: &str) -> String {
    let list: Vec<String> = peers.iter().map(|n| n.stomp_url()).collect();
    if query.is_empty() {
        format!("static:({})", list.join(","))
    } else {
        format!("static:({})?{query}", list.join(","))
    }
}

/// Adds a network connector through the admin API; returns its info (panics unless 201).
pub async fn add_link(node: &Node, uri: &str) -> NetworkConnectorInfo {
    let body = serde_json::json!({ "uri": uri }).to_string();
    let r = node
        .admin()
        .post("/api/v1/network-connectors", Some(&body))
        .await;
    assert_eq!(r.status, 201, "adding {uri} on {}: {}", node.name(), r.body);
    r.json()
}

/// The node's network connectors.
pub async fn connectors(node: &Node) -> NetworkConnectorList {
    node.admin().get_ok("/api/v1/network-connectors").await
}

/// Waits until `n` peers of the node's connectors are connected.
pub async fn wait_connected(node: &Node, n: usize) {
    wait_for_async(LINK, async || {
        let l = connectors(node).await;
        l.connectors
            .iter()
            .flat_map(|c| &c.peers)
            .filter(|p| p.state == PeerState::Connected)
            .count()
            >= n
    })
    .await;
}

/// Consumers (local and network) of `queue` on `node`.
pub async fn consumers(node: &Node, queue: &str) -> u64 {
    node.admin()
        .queue(queue)
        .await
        .map(|q| q.consumers)
        .unwrap_or(0)
}

/// Waits until `queue` on `node` has at least `n` consumers (demand arrived over a bridge).
pub async fn wait_consumers(node: &Node, queue: &str, n: u64) {
    wait_for_async(LINK, async || consumers(node, queue).await >= n).await;
}

/// A consumer on `node` (auto ack).
pub async fn consumer(node: &Node, dest: &str) -> StompClient {
    let mut c = connect(&node.stomp_addr()).await;
    subscribe(&mut c, dest, "s", AckMode::Auto).await;
    c
}

/// Receives from all `clients` until `n` messages arrived in total (each within `idle` of the
/// previous one); returns per-client bodies' numbers.
pub async fn collect(clients: &mut [StompClient], n: usize, idle: Duration) -> Vec<Vec<usize>> {
    let mut got: Vec<Vec<usize>> = vec![Vec::new(); clients.len()];
    let mut total = 0;
    let mut last = Instant::now();
    while total < n {
        let mut any = false;
        for (i, c) in clients.iter_mut().enumerate() {
            while let Ok(Some(f)) = c.recv_timeout(Duration::from_millis(5)).await {
                got[i].push(body_number(&f));
                total += 1;
                any = true;
            }
        }
        if any {
            last = Instant::now();
        } else if last.elapsed() > idle {
            panic!(
                "received {total} of {n} messages; nothing more within {idle:?} (per consumer: {:?})",
                got.iter().map(Vec::len).collect::<Vec<_>>()
            );
        }
    }
    got
}

/// Receives on `c` until `n` messages arrived (each within [`SOON`] of the previous one) and
/// panics unless they are the numbers `0..n`, each exactly once.
pub async fn expect_each_once(c: &mut StompClient, n: usize) {
    let got = collect(std::slice::from_mut(c), n, SOON).await;
    assert_exactly_once(&got, n);
}

/// Panics unless every number in `0..n` appears exactly once across `got`.
pub fn assert_exactly_once(got: &[Vec<usize>], n: usize) {
    let mut seen: HashMap<usize, usize> = HashMap::new();
    for v in got {
        for i in v {
            *seen.entry(*i).or_default() += 1;
        }
    }
    let dup: Vec<usize> = seen
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(i, _)| *i)
        .collect();
    let lost: Vec<usize> = (0..n).filter(|i| !seen.contains_key(i)).collect();
    assert!(
        dup.is_empty() && lost.is_empty(),
        "{} duplicated (e.g. {:?}), {} lost (e.g. {:?})",
        dup.len(),
        &dup[..dup.len().min(10)],
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    assert_eq!(seen.len(), n);
}

/// Sends `n` numbered persistent messages of `size` bytes to `dest`, receipts pipelined.
pub async fn produce(node: &Node, dest: &str, range: std::ops::Range<usize>, size: usize) {
    let mut p = connect(&node.stomp_addr()).await;
    send_numbered(&mut p, dest, range, size, 200).await;
    let _ = p.disconnect().await;
}
