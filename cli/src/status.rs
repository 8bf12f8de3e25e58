//! The status of a cluster, gathered in one pass: every node is asked at once (with a short
//! timeout) for its health, role, uptime, queues, store, connectors and what its HA kind
//! elects with (a replicated member's epoch and replicas, a JDBC member's lease row).
//! `cluster create|start|status`, `link ls` and `failover status` all read this one
//! [`ClusterStatus`]; this module also draws its node and link tables and turns how many
//! nodes answered into an exit outcome.

use mq_shared::api::{LeaseInfo, NetworkConnectorList, PeerState, ReplicationInfo, Role};
use mq_shared::ctl::{ClusterStatus, LinkEntry, LinkState, LinkStatus, NodeStatus};
use mq_shared::defaults::STAT_REQUEST_TIMEOUT;
use tokio::task::JoinSet;

use crate::args::cluster::ClusterOrUrls;
use crate::client::admin::AdminClient;
use crate::cluster::Cluster;
use crate::error::{CliError, Outcome, Result};
use crate::home::Home;
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
    usage: Option<mq_shared::api::UsageReport>,
    connectors: Option<NetworkConnectorList>,
    /// What the HA kind elects with: a replicated member's epoch and replicas, a JDBC
    /// member's lease row.
    replication: Option<ReplicationInfo>,
    lease: Option<LeaseInfo>,
    /// For a remote node: the pid and the first transport it reports.
    pid: Option<u32>,
    transport: Option<String>,
}

/// Asks every node of `cluster` concurrently for its status.
pub async fn gather_status(cluster: &Cluster) -> Result<ClusterStatus> {
    let mut tasks = JoinSet::new();
    for (i, node) in cluster.manifest.nodes.iter().enumerate() {
        let client = cluster.client(node, STAT_REQUEST_TIMEOUT)?;
        // mqctl has no process to look at for a remote node: its answer is all there is.
        let running = node.is_remote() || process::running_pid(node).is_some();
        let remote = node.is_remote();
        tasks.spawn(async move { (i, ask_status(client, running, remote).await) });
    }
    let mut reports = vec![NodeReport::default(); cluster.manifest.nodes.len()];
    while let Some(joined) = tasks.join_next().await {
        if let Ok((i, report)) = joined {
            reports[i] = report;
        }
    }
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
                pid: node.pid.or(r.pid),
                alive: r.running && r.healthy,
                transport: r.transport.clone().unwrap_or_else(|| node.transport_uri()),
                admin: node.admin_url(),
                uptime_ms: r.uptime_ms,
                queues: r.queues,
                messages: r.messages,
                links_up: up,
                links_total: total,
                remote: node.is_remote(),
                usage: r.usage,
                replication: r.replication.clone(),
                lease: r.lease.clone(),
            }
        })
        .collect();
    let links = cluster
        .manifest
        .links
        .iter()
        .map(|link| link_status(cluster, link, &reports))
        .collect();
    Ok(ClusterStatus {
        name: cluster.name().to_string(),
        nodes,
        links,
    })
}

async fn ask_status(client: AdminClient, running: bool, remote: bool) -> NodeReport {
    let healthy = matches!(client.healthz().await, Ok(true));
    if !healthy {
        return NodeReport {
            running,
            ..NodeReport::default()
        };
    }
    let (broker, queues, connectors) =
        tokio::join!(client.broker(), client.queues(), client.connectors());
    // A remote node that refuses the token is of no use here: shown down, and the command
    // says why (`--url`).
    let refused = remote && matches!(broker, Err(CliError::Unauthorized { .. }));
    let broker = broker.ok();
    NodeReport {
        running,
        healthy: healthy && !refused,
        role: broker.as_ref().map(|b| b.role),
        uptime_ms: broker.as_ref().map(|b| b.uptime_ms),
        messages: broker.as_ref().map(|b| b.store.messages),
        usage: broker.as_ref().map(|b| b.usage),
        queues: queues.ok().map(|q| q.queues.len() as u64),
        connectors: connectors.ok().flatten(),
        replication: broker.as_ref().and_then(|b| b.replication.clone()),
        lease: broker.as_ref().and_then(|b| b.lease.clone()),
        pid: broker.as_ref().filter(|_| remote).map(|b| b.pid),
        transport: broker
            .as_ref()
            .filter(|_| remote)
            .and_then(|b| b.transports.first())
            .map(|t| crate::cluster::reachable_uri(t, client.host())),
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
            "stomp",
            "memory",
            "store",
            "temp",
        ],
        format!("Cluster {} has no nodes.", status.name),
    )
    .numeric([3, 8, 9, 12, 13, 14])
    // memory, store and temp with -o wide or --columns: the defaults fit 80 columns.
    .defaults([
        "node", "role", "pid", "stomp", "uptime", "queues", "messages", "links",
    ]);
    for n in &status.nodes {
        table.push(vec![
            n.name.clone(),
            n.group.clone(),
            role_cell(n),
            output::opt(n.pid),
            output::yes_no(n.alive),
            n.transport.clone(),
            n.admin.clone(),
            output::uptime(n.uptime_ms),
            output::opt(n.queues),
            output::opt(n.messages),
            format!("{}/{}", n.links_up, n.links_total),
            stomp_address(&n.transport),
            usage_cell(n.usage.map(|u| u.memory)),
            usage_cell(n.usage.map(|u| u.store)),
            usage_cell(n.usage.map(|u| u.temp)),
        ]);
    }
    table
}

/// A usage column: the share of the limit in use (`12%`), `-` when unknown.
fn usage_cell(fig: Option<mq_shared::api::UsageFigures>) -> String {
    match fig {
        Some(f) if f.limit > 0 => {
            let pct = (f.used as f64 * 100.0 / f.limit as f64).min(999.0);
            if f.used > 0 && pct < 1.0 {
                "<1%".to_string()
            } else {
                format!("{pct:.0}%")
            }
        }
        _ => "-".to_string(),
    }
}

/// The STOMP column: the port of a loopback transport, else `HOST:PORT`.
fn stomp_address(transport: &str) -> String {
    let address = transport
        .split_once("://")
        .map_or(transport, |(_, rest)| rest);
    match address.strip_prefix("127.0.0.1:") {
        Some(port) => port.to_string(),
        None if address.is_empty() => "-".to_string(),
        None => address.to_string(),
    }
}

/// The links as a table.
pub fn links_table(cluster: &str, links: &[LinkStatus]) -> output::Table {
    let mut table = output::Table::new(
        vec![
            "link", "from", "to", "duplex", "ttl", "state", "peers", "uri",
        ],
        format!("Cluster {cluster} has no links. Add one with `mqctl link add {cluster} FROM TO`."),
    )
    .numeric([4])
    .defaults(["link", "from", "to", "duplex", "ttl", "state", "peers"]);
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

/// Whether a node answered the status pass.
fn answered(n: &NodeStatus) -> bool {
    n.alive || n.role.is_some()
}

/// Whether a node was stopped by `mqctl` (no pid recorded) and does not answer: stopped on
/// purpose, not down.
pub fn stopped_cleanly(n: &NodeStatus) -> bool {
    !n.remote && n.pid.is_none() && !answered(n)
}

/// The role column: the role reported, `stopped` for a node stopped cleanly, `down` for one
/// that should run and does not answer.
fn role_cell(n: &NodeStatus) -> String {
    match n.role {
        Some(role) => role.to_string(),
        None if stopped_cleanly(n) => "stopped".to_string(),
        None => "down".to_string(),
    }
}

/// How a status pass ends, with a sentence on stderr for anything but "all answered":
/// nodes stopped cleanly are no failure (complete, with a note); some nodes that should run
/// and do not answer make it partial; when none of those answers it is an error.
pub fn outcome(cluster: &Cluster, status: &ClusterStatus) -> Result<Outcome> {
    let c = cluster.name();
    let names = |nodes: &[&NodeStatus]| -> String {
        nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let stopped: Vec<&NodeStatus> = status.nodes.iter().filter(|n| stopped_cleanly(n)).collect();
    let expected: Vec<&NodeStatus> = status
        .nodes
        .iter()
        .filter(|n| !stopped_cleanly(n))
        .collect();
    let down: Vec<&NodeStatus> = expected.iter().copied().filter(|n| !answered(n)).collect();
    if !stopped.is_empty() && expected.is_empty() {
        output::note(&format!(
            "Cluster {c} is stopped: every node was stopped cleanly. Start it with `mqctl cluster start {c}`."
        ));
    } else if !stopped.is_empty() {
        output::note(&format!(
            "Stopped cleanly: {}. Start with `mqctl cluster start {c}`.",
            names(&stopped)
        ));
    }
    if down.is_empty() {
        return Ok(Outcome::Complete);
    }
    if down.len() == expected.len() {
        return Err(CliError::NoneAnswered {
            cluster: c.to_string(),
        });
    }
    output::warn(&format!(
        "{} of the {} running node(s) of cluster {c} did not answer: {} (killed or crashed? see `mqctl node logs {c}/NODE`, start with `mqctl node start {c}/NODE`)",
        down.len(),
        expected.len(),
        names(&down)
    ));
    Ok(Outcome::Partial)
}

/// The cluster `NAME`, or the nodes given by `--url` (the members of one group named `group`
/// when given), and one status pass over it (`cluster status`, `failover status`).
pub async fn gather_target(
    home: &Home,
    target: &ClusterOrUrls,
    group: Option<&str>,
) -> Result<(Cluster, ClusterStatus)> {
    let cluster = match &target.name {
        Some(name) => Cluster::load(home, name)?,
        None => Cluster::from_urls(
            home,
            &target.urls.url,
            target.urls.token_file.as_deref(),
            group,
        )?,
    };
    let status = gather_status(&cluster).await?;
    Ok((cluster, status))
}

/// [`outcome`] of a [`gather_target`] pass: when none of the nodes given by `--url` answered,
/// the error is what the first one says.
pub async fn target_outcome(
    cluster: &Cluster,
    status: &ClusterStatus,
    target: &ClusterOrUrls,
) -> Result<Outcome> {
    match outcome(cluster, status) {
        Err(e) if target.name.is_none() => Err(cluster.why_none_answered(e).await),
        other => other,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use mq_shared::api::Role;

    /// A node of its own group, alive when it reports a role.
    fn node(name: &str, pid: Option<u32>, role: Option<Role>) -> NodeStatus {
        NodeStatus {
            pid,
            ..reported(name, name, role)
        }
    }

    /// The status of a node of `group` that reported `role` (none: it did not answer), with
    /// nothing else known of it.
    pub(crate) fn reported(name: &str, group: &str, role: Option<Role>) -> NodeStatus {
        NodeStatus {
            name: name.into(),
            group: group.into(),
            role,
            pid: None,
            alive: role.is_some(),
            transport: String::new(),
            admin: String::new(),
            uptime_ms: None,
            queues: None,
            messages: None,
            links_up: 0,
            links_total: 0,
            remote: false,
            usage: None,
            replication: None,
            lease: None,
        }
    }

    fn cluster(nodes: Vec<NodeStatus>) -> (Cluster, ClusterStatus) {
        let manifest = crate::cluster::bare_manifest("c", String::new(), String::new());
        (
            Cluster {
                manifest,
                token: None,
                home: crate::home::Home::at("/nonexistent".into()),
            },
            ClusterStatus {
                name: "c".into(),
                nodes,
                links: vec![],
            },
        )
    }

    #[test]
    fn stopped_nodes_are_not_failures() {
        let (c, st) = cluster(vec![node("a", None, None), node("b", None, None)]);
        assert_eq!(outcome(&c, &st).ok(), Some(Outcome::Complete));
        assert_eq!(role_cell(&st.nodes[0]), "stopped");
        let (c, st) = cluster(vec![
            node("a", None, None),
            node("b", Some(7), Some(Role::Standalone)),
        ]);
        assert_eq!(outcome(&c, &st).ok(), Some(Outcome::Complete));
    }

    #[test]
    fn nodes_that_should_run_and_do_not_answer_are_down() {
        let (c, st) = cluster(vec![
            node("a", Some(1), None),
            node("b", Some(2), Some(Role::Master)),
        ]);
        assert_eq!(outcome(&c, &st).ok(), Some(Outcome::Partial));
        assert_eq!(role_cell(&st.nodes[0]), "down");
        let (c, st) = cluster(vec![node("a", Some(1), None), node("b", None, None)]);
        assert!(matches!(
            outcome(&c, &st),
            Err(CliError::NoneAnswered { .. })
        ));
    }
}
