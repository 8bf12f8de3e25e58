//! The status of a cluster, gathered in one pass: every node is asked at once (with a short
//! timeout) for its health, role, uptime, queues, store and connectors. `cluster create|start|
//! status`, `link ls` and `failover status` all read this one [`ClusterStatus`]; this module
//! also draws its node and link tables and turns how many nodes answered into an exit outcome.

use mq_shared::api::{NetworkConnectorList, PeerState, Role};
use mq_shared::ctl::{ClusterStatus, LinkEntry, LinkState, LinkStatus, NodeStatus};
use mq_shared::defaults::STAT_REQUEST_TIMEOUT;
use tokio::task::JoinSet;

use crate::client::admin::AdminClient;
use crate::cluster::Cluster;
use crate::error::{CliError, Outcome, Result};
use crate::output;
use crate::process;

/// What one node said when asked for its status.
#[derive(Debug, Clone, Default)]
struct NodeReport {
    running: bool,
    healthy: bool,
    role: Option<Role>,
    uptime_ms: Option<u64>,
    queues: Option<u64>,
    messages: Option<u64>,
    connectors: Option<NetworkConnectorList>,
}

/// Asks every node of `cluster` concurrently for its status. Returns the status and how many
/// nodes answered.
pub async fn gather_status(cluster: &Cluster) -> Result<(ClusterStatus, usize)> {
    let mut tasks = JoinSet::new();
    for (i, node) in cluster.manifest.nodes.iter().enumerate() {
        let client = cluster.client(node, STAT_REQUEST_TIMEOUT)?;
        let running = process::running_pid(node).is_some();
        tasks.spawn(async move { (i, ask_status(client, running).await) });
    }
    let mut reports = vec![NodeReport::default(); cluster.manifest.nodes.len()];
    while let Some(joined) = tasks.join_next().await {
        if let Ok((i, report)) = joined {
            reports[i] = report;
        }
    }
    let answered = reports.iter().filter(|r| r.healthy).count();
    let nodes = cluster
        .manifest
        .nodes
        .iter()
        .zip(&reports)
        .map(|(node, r)| {
            let (up, total) = r.connectors.as_ref().map_or((0, 0), |list| {
                let peers = list.connectors.iter().flat_map(|c| c.peers.iter());
                peers.fold((0, 0), |(up, total), p| {
                    (up + u64::from(p.state == PeerState::Connected), total + 1)
                })
            });
            NodeStatus {
                name: node.name.clone(),
                group: node.group.clone(),
                role: r.role,
                pid: node.pid,
                alive: r.running && r.healthy,
                transport: node.transport_uri(),
                admin: node.admin_url(),
                uptime_ms: r.uptime_ms,
                queues: r.queues,
                messages: r.messages,
                links_up: up,
                links_total: total,
            }
        })
        .collect();
    let links = cluster
        .manifest
        .links
        .iter()
        .map(|link| link_status(cluster, link, &reports))
        .collect();
    Ok((
        ClusterStatus {
            name: cluster.name().to_string(),
            nodes,
            links,
        },
        answered,
    ))
}

async fn ask_status(client: AdminClient, running: bool) -> NodeReport {
    let healthy = matches!(client.healthz().await, Ok(true));
    if !healthy {
        return NodeReport {
            running,
            ..NodeReport::default()
        };
    }
    let (broker, queues, connectors) =
        tokio::join!(client.broker(), client.queues(), client.connectors());
    let broker = broker.ok();
    NodeReport {
        running,
        healthy,
        role: broker.as_ref().map(|b| b.role),
        uptime_ms: broker.as_ref().map(|b| b.uptime_ms),
        messages: broker.as_ref().map(|b| b.store.messages),
        queues: queues.ok().map(|q| q.queues.len() as u64),
        connectors: connectors.ok().flatten(),
    }
}

/// A link's state from its FROM broker's serving member.
fn link_status(cluster: &Cluster, link: &LinkEntry, reports: &[NodeReport]) -> LinkStatus {
    let serving = cluster
        .manifest
        .nodes
        .iter()
        .zip(reports)
        .filter(|(n, _)| n.group == link.from)
        .map(|(_, r)| r)
        .find(|r| matches!(r.role, Some(Role::Master | Role::Standalone)));
    let connector = serving
        .and_then(|r| r.connectors.as_ref())
        .map(|list| list.connectors.iter().find(|c| c.name == link.name));
    let (state, up, total) = match connector {
        None => (LinkState::Unknown, 0, 0),
        Some(None) => (LinkState::Missing, 0, 0),
        Some(Some(c)) => {
            let total = c.peers.len() as u64;
            let up = c
                .peers
                .iter()
                .filter(|p| p.state == PeerState::Connected)
                .count() as u64;
            let state = if total > 0 && up == total {
                LinkState::Up
            } else {
                LinkState::Down
            };
            (state, up, total)
        }
    };
    LinkStatus {
        name: link.name.clone(),
        from: link.from.clone(),
        to: link.to.clone(),
        duplex: link.duplex,
        ttl: link.ttl,
        uri: link.uri.clone(),
        state,
        peers_up: up,
        peers_total: total,
    }
}

/// The status as a table: one row per process.
pub fn status_table(status: &ClusterStatus) -> output::Table {
    let mut table = output::Table::new(
        vec![
            "node",
            "group",
            "role",
            "pid",
            "alive",
            "transport",
            "admin",
            "uptime",
            "queues",
            "messages",
            "links",
        ],
        format!("Cluster {} has no nodes.", status.name),
    )
    .numeric([3, 8, 9]);
    for n in &status.nodes {
        table.push(vec![
            n.name.clone(),
            n.group.clone(),
            n.role.map_or_else(|| "down".to_string(), |r| r.to_string()),
            output::opt(n.pid),
            output::yes_no(n.alive),
            n.transport.clone(),
            n.admin.clone(),
            output::uptime(n.uptime_ms),
            output::opt(n.queues),
            output::opt(n.messages),
            format!("{}/{}", n.links_up, n.links_total),
        ]);
    }
    table
}

/// The links as a table.
pub fn links_table(cluster: &str, links: &[LinkStatus]) -> output::Table {
    let mut table = output::Table::new(
        vec![
            "link", "from", "to", "duplex", "ttl", "state", "peers", "uri",
        ],
        format!("Cluster {cluster} has no links. Add one with `mqctl link add {cluster} FROM TO`."),
    )
    .numeric([4]);
    for l in links {
        table.push(vec![
            l.name.clone(),
            l.from.clone(),
            l.to.clone(),
            output::yes_no(l.duplex),
            l.ttl.to_string(),
            l.state.to_string(),
            format!("{}/{}", l.peers_up, l.peers_total),
            l.uri.clone(),
        ]);
    }
    table
}

/// Prints a cluster's status in the chosen format.
pub fn print_status(out: &output::Output, status: &ClusterStatus) -> Result<()> {
    match out.format() {
        output::Format::Json => out.json(status),
        _ => out.table(&status_table(status)),
    }
}

/// All `answered`: complete; some: partial; none: an error saying how to start the cluster.
pub fn outcome(cluster: &Cluster, answered: usize) -> Result<Outcome> {
    let total = cluster.manifest.nodes.len();
    if answered == total {
        Ok(Outcome::Complete)
    } else if answered == 0 {
        Err(CliError::NoneAnswered {
            cluster: cluster.name().to_string(),
        })
    } else {
        Ok(Outcome::Partial)
    }
}
