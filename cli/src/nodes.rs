//! Operations on the nodes of a cluster that several commands share: admin clients for a node,
//! addressing `NAME[/NODE]`, starting processes and waiting until they are ready, stopping them,
//! creating links, and gathering the status table.

use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use mq_shared::api::{AddNetworkConnector, NetworkConnectorList, PeerState, Role};
use mq_shared::ctl::{
    ClusterManifest, ClusterStatus, LinkEntry, LinkState, LinkStatus, NodeEntry, NodeStatus,
};
use mq_shared::defaults::{
    ADMIN_REQUEST_TIMEOUT, NODE_READY_TIMEOUT, NODE_STOP_TIMEOUT, READY_POLL_INTERVAL,
    STAT_REQUEST_TIMEOUT,
};
use tokio::task::JoinSet;

use crate::client::admin::{AdminClient, ConnectorOutcome, Endpoint};
use crate::error::{CliError, Result};
use crate::home::Home;
use crate::output;
use crate::process;
use crate::sys::Signal;

/// A loaded cluster: its manifest, its admin token and where it lives.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The manifest as read (or as being built).
    pub manifest: ClusterManifest,
    /// The admin token, if the cluster has one.
    pub token: Option<String>,
    /// Home it was loaded from.
    pub home: Home,
}

impl Cluster {
    /// Loads cluster `name` and its token.
    pub fn load(home: &Home, name: &str) -> Result<Cluster> {
        let manifest = home.load(name)?;
        let token = home.token(&manifest)?;
        Ok(Cluster {
            manifest,
            token,
            home: home.clone(),
        })
    }

    /// Writes the manifest back.
    pub fn save(&self) -> Result<()> {
        self.home.save(&self.manifest)
    }

    /// Cluster name.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// How to reach `node`'s admin API, and what to tell the user when that fails.
    pub fn endpoint(&self, node: &NodeEntry) -> Endpoint {
        let c = self.name();
        Endpoint {
            label: node.name.clone(),
            url: node.admin_url(),
            token: self.token.clone(),
            unreachable_hint: format!(
                "is it running? see `mqctl cluster status {c}`, start it with `mqctl node start {c}/{}`",
                node.name
            ),
            auth_hint: format!(
                "it was started with another token than {}; restart it with `mqctl node restart {c}/{}`",
                self.manifest.token_file, node.name
            ),
        }
    }

    /// An admin client for `node` with the given timeout.
    pub fn client(&self, node: &NodeEntry, timeout: Duration) -> Result<AdminClient> {
        AdminClient::new(self.endpoint(node), timeout)
    }

    /// The process or group named `name`: `Err(NodeNotFound)` if neither.
    pub fn check_node(&self, name: &str) -> Result<()> {
        if self.manifest.node(name).is_some() || self.manifest.group(name).is_some() {
            Ok(())
        } else {
            Err(self.node_not_found(name))
        }
    }

    /// The error for an unknown node name.
    pub fn node_not_found(&self, name: &str) -> CliError {
        let mut known: Vec<&str> = self
            .manifest
            .nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect();
        for g in &self.manifest.groups {
            if g.members.len() > 1 {
                known.push(g.name.as_str());
            }
        }
        CliError::NodeNotFound {
            cluster: self.name().to_string(),
            node: name.to_string(),
            known: known.join(", "),
        }
    }

    /// The process `name` (a process, not a group).
    pub fn process(&self, name: &str) -> Result<&NodeEntry> {
        match self.manifest.node(name) {
            Some(node) => Ok(node),
            None => match self.manifest.group(name) {
                Some(group) if group.members.len() > 1 => Err(CliError::Usage(format!(
                    "`{name}` is a master/slave group of cluster `{}`; name one of its processes ({})",
                    self.name(),
                    group.members.join(", ")
                ))),
                _ => Err(self.node_not_found(name)),
            },
        }
    }

    /// Group names in manifest order.
    pub fn group_names(&self) -> Vec<String> {
        if self.manifest.groups.is_empty() {
            let mut names: Vec<String> = Vec::new();
            for n in &self.manifest.nodes {
                if !names.contains(&n.group) {
                    names.push(n.group.clone());
                }
            }
            return names;
        }
        self.manifest
            .groups
            .iter()
            .map(|g| g.name.clone())
            .collect()
    }

    /// The admin client of the node that serves `target`: a process by name, the current master
    /// of a group, or (with `None`) the first group's master.
    pub async fn serving(&self, target: Option<&str>, timeout: Duration) -> Result<AdminClient> {
        let group = match target {
            Some(name) => match self.manifest.node(name) {
                // A process named explicitly is used as is, even a slave: the user asked for it.
                Some(node) => return self.client(node, timeout),
                None if self.manifest.group(name).is_some() => name.to_string(),
                None => return Err(self.node_not_found(name)),
            },
            None => self.group_names().into_iter().next().ok_or_else(|| {
                CliError::Usage(format!("cluster `{}` has no nodes", self.name()))
            })?,
        };
        self.master_of(&group, timeout).await
    }

    /// The member of `group` whose `/readyz` answers 200 (for a group of one, that node).
    pub async fn master_of(&self, group: &str, timeout: Duration) -> Result<AdminClient> {
        let members = self.manifest.members(group);
        if let [only] = members.as_slice() {
            return self.client(only, timeout);
        }
        let first = members.first().map(|n| n.name.clone()).unwrap_or_default();
        let mut details = Vec::new();
        for node in members {
            let client = self.client(node, timeout)?;
            match client.readyz().await {
                Ok(true) => return Ok(client),
                Ok(false) => details.push(format!("{} is a slave", node.name)),
                Err(_) => details.push(format!("{} did not answer", node.name)),
            }
        }
        Err(CliError::NoMaster {
            cluster: self.name().to_string(),
            group: group.to_string(),
            first,
            detail: details.join(", "),
        })
    }
}

// ---- starting ------------------------------------------------------------------------------

/// A process started in this run.
#[derive(Debug)]
pub struct Launched {
    /// Node name.
    pub name: String,
    /// The child process.
    pub child: Child,
}

/// Starts the processes `names` of `cluster` in two phases — first the first member of each
/// group, then the others — and waits until each is ready: `/healthz` answers and its group has
/// a serving member (`/readyz` 200). Pids are recorded in the manifest as soon as each process
/// is spawned. Started processes are appended to `launched` even when this fails, so that the
/// caller can stop them.
pub async fn start_processes(
    cluster: &mut Cluster,
    names: &[String],
    mqnode: &std::path::Path,
    launched: &mut Vec<Launched>,
) -> Result<()> {
    let (first, rest): (Vec<String>, Vec<String>) = names.iter().cloned().partition(|name| {
        cluster
            .manifest
            .node(name)
            .and_then(|n| {
                cluster
                    .manifest
                    .members(&n.group)
                    .first()
                    .map(|m| m.name == *name)
            })
            .unwrap_or(true)
    });
    let bar = output::progress(names.len() as u64, "starting nodes");
    for phase in [first, rest] {
        if phase.is_empty() {
            continue;
        }
        let from = launched.len();
        for name in &phase {
            let node = cluster.process(name)?.clone();
            let child = process::spawn(&cluster.manifest, &node, mqnode)?;
            let pid = child.id();
            launched.push(Launched {
                name: name.clone(),
                child,
            });
            if let Some(entry) = cluster.manifest.node_mut(name) {
                entry.pid = Some(pid);
            }
            cluster.save()?;
        }
        if let Err(e) = wait_ready(cluster, &mut launched[from..], &bar).await {
            bar.abandon();
            return Err(e);
        }
    }
    bar.finish_and_clear();
    Ok(())
}

/// Polls until every process in `waiting` is ready; reports at once one that exits.
async fn wait_ready(
    cluster: &Cluster,
    waiting: &mut [Launched],
    bar: &indicatif::ProgressBar,
) -> Result<()> {
    let deadline = Instant::now() + NODE_READY_TIMEOUT;
    let poll = READY_POLL_INTERVAL.max(Duration::from_millis(10));
    let mut ready = vec![false; waiting.len()];
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    loop {
        for (launch, _) in waiting.iter_mut().zip(&ready).filter(|(_, r)| !**r) {
            if let Ok(Some(status)) = launch.child.try_wait() {
                let node = cluster.process(&launch.name)?;
                return Err(CliError::NodeExited {
                    node: launch.name.clone(),
                    status: status.to_string(),
                    log: PathBuf::from(&node.log),
                    tail: process::log_tail(node.log.as_ref()),
                });
            }
        }
        let mut checks = JoinSet::new();
        for (i, launch) in waiting.iter().enumerate().filter(|(i, _)| !ready[*i]) {
            let node = cluster.process(&launch.name)?;
            let this = cluster.client(node, poll.max(Duration::from_millis(500)))?;
            let members: Vec<AdminClient> = cluster
                .manifest
                .members(&node.group)
                .into_iter()
                .filter(|m| m.name != node.name)
                .map(|m| cluster.client(m, Duration::from_millis(500)))
                .collect::<Result<_>>()?;
            checks.spawn(async move { (i, is_ready(&this, &members).await) });
        }
        while let Some(Ok((i, ok))) = checks.join_next().await {
            if ok && !ready[i] {
                ready[i] = true;
                bar.inc(1);
            }
        }
        if ready.iter().all(|r| *r) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let i = ready.iter().position(|r| !r).unwrap_or(0);
            let node = cluster.process(&waiting[i].name)?;
            let members = cluster.manifest.members(&node.group).len();
            return Err(CliError::NodeNotReady {
                node: node.name.clone(),
                secs: NODE_READY_TIMEOUT.as_secs(),
                waiting: if members > 1 {
                    format!(
                        "its /healthz or its group's master at /readyz did not answer 200 on {}",
                        node.admin_url()
                    )
                } else {
                    format!("{}/readyz did not answer 200", node.admin_url())
                },
                log: PathBuf::from(&node.log),
                tail: process::log_tail(node.log.as_ref()),
            });
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = &mut interrupt => {
                return Err(CliError::Interrupted { cleanup: String::new() });
            }
        }
    }
}

/// A single node is ready when `/readyz` answers 200; a member of an HA group when its
/// `/healthz` answers 200 and it or another member answers `/readyz` 200.
async fn is_ready(this: &AdminClient, others: &[AdminClient]) -> bool {
    if others.is_empty() {
        return matches!(this.readyz().await, Ok(true));
    }
    if !matches!(this.healthz().await, Ok(true)) {
        return false;
    }
    if matches!(this.readyz().await, Ok(true)) {
        return true;
    }
    for other in others {
        if matches!(other.readyz().await, Ok(true)) {
            return true;
        }
    }
    false
}

// ---- stopping ------------------------------------------------------------------------------

/// Stops the recorded process of `node` with SIGTERM and waits (bounded) for it to exit.
/// `Ok(None)` when it was not running. Does not touch the manifest.
pub async fn stop_process(cluster: &Cluster, node: &NodeEntry) -> Result<Option<u32>> {
    let Some(pid) = process::signal(node, Signal::Term)? else {
        return Ok(None);
    };
    if process::wait_exit(pid, node, NODE_STOP_TIMEOUT).await {
        Ok(Some(pid))
    } else {
        Err(CliError::StopTimeout {
            cluster: cluster.name().to_string(),
            node: node.name.clone(),
            pid,
            secs: NODE_STOP_TIMEOUT.as_secs(),
        })
    }
}

/// Kills the recorded process of `node` with SIGKILL and waits (bounded) until it is gone.
pub async fn kill_process(node: &NodeEntry) -> Result<Option<u32>> {
    let Some(pid) = process::signal(node, Signal::Kill)? else {
        return Ok(None);
    };
    process::wait_exit(pid, node, NODE_STOP_TIMEOUT).await;
    Ok(Some(pid))
}

/// SIGTERM to every running process of `nodes`, then SIGKILL to those still running after the
/// bounded wait. Returns the pids that were running.
pub async fn terminate_all(nodes: &[NodeEntry]) -> Vec<(String, Option<u32>)> {
    let mut signalled = Vec::new();
    for node in nodes {
        let pid = process::signal(node, Signal::Term).ok().flatten();
        signalled.push((node.clone(), pid));
    }
    let deadline = Instant::now() + NODE_STOP_TIMEOUT;
    for (node, pid) in &signalled {
        if let Some(pid) = pid {
            let left = deadline.saturating_duration_since(Instant::now());
            if !process::wait_exit(*pid, node, left).await {
                let _ = process::signal(node, Signal::Kill);
                process::wait_exit(*pid, node, NODE_STOP_TIMEOUT).await;
            }
        }
    }
    signalled
        .into_iter()
        .map(|(node, pid)| (node.name, pid))
        .collect()
}

// ---- links ---------------------------------------------------------------------------------

/// Creates `links` on their FROM brokers. A node without network connector support (404) is
/// not an error: the links stay recorded, with one warning. Returns whether the node supports
/// them.
pub async fn apply_links(cluster: &Cluster, links: &[LinkEntry]) -> Result<bool> {
    let mut supported = true;
    for link in links {
        let client = cluster.master_of(&link.from, ADMIN_REQUEST_TIMEOUT).await?;
        let request = AddNetworkConnector {
            name: Some(link.name.clone()),
            uri: link.uri.clone(),
        };
        if client.add_connector(&request).await? == ConnectorOutcome::Unsupported {
            supported = false;
            break;
        }
    }
    if !supported {
        output::warn("links recorded; this mqnode does not support network connectors");
    }
    Ok(supported)
}

// ---- status --------------------------------------------------------------------------------

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
