//! The JSON shapes of `mqctl -o json` and the cluster manifest (`cluster.json`).
//!
//! `mqctl` writes a [`ClusterManifest`] for every cluster it creates and prints the report types
//! below with `-o json`. Scripts and tests parse the same types, so a field renamed here is a
//! breaking change: add fields, never rename or remove one. `docs/mqctl.md` documents each field.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::api::{BrowsedMessage, Role};

/// File name of the manifest inside a cluster's folder (`clusters/NAME/cluster.json`).
pub const MANIFEST_FILE: &str = "cluster.json";
/// File name of the admin token inside a cluster's folder (mode 0600).
pub const TOKEN_FILE: &str = "admin.token";
/// Current manifest format version.
pub const MANIFEST_VERSION: u32 = 1;

// ---- the manifest ---------------------------------------------------------------------------

/// How the brokers of a cluster are linked by network connectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Topology {
    /// A connector from every broker to every other (networkTTL 1).
    Mesh,
    /// Duplex links between neighbours around a ring (networkTTL ⌊n/2⌋).
    Ring,
    /// Duplex links between neighbours (networkTTL n-1).
    Line,
    /// Duplex links from the first broker to each other (networkTTL 2).
    Star,
    /// No links.
    None,
    /// Links given explicitly (`cluster create --from FILE`).
    Custom,
}

impl Topology {
    /// Every topology, in the order the docs list them.
    pub const ALL: [Topology; 6] = [
        Topology::Mesh,
        Topology::Ring,
        Topology::Line,
        Topology::Star,
        Topology::None,
        Topology::Custom,
    ];

    /// The lowercase name used on the command line and in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Topology::Mesh => "mesh",
            Topology::Ring => "ring",
            Topology::Line => "line",
            Topology::Star => "star",
            Topology::None => "none",
            Topology::Custom => "custom",
        }
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A topology name that is not one of [`Topology::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown topology `{0}` (expected mesh, ring, line, star or none)")]
pub struct UnknownTopology(pub String);

impl FromStr for Topology {
    type Err = UnknownTopology;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Topology::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownTopology(s.to_string()))
    }
}

/// `clusters/NAME/cluster.json`: everything `mqctl` needs to start, stop, link and address the
/// nodes of one cluster. Paths are absolute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterManifest {
    /// Manifest format version ([`MANIFEST_VERSION`]).
    #[serde(default = "manifest_version")]
    pub version: u32,
    /// Cluster name (the folder name).
    pub name: String,
    /// When the cluster was created, RFC 3339 UTC.
    pub created: String,
    /// Topology the links were generated from.
    pub topology: Topology,
    /// The `mqnode` executable the nodes were started with; reused by `start` and `restart`.
    #[serde(default)]
    pub mqnode: Option<String>,
    /// File holding the admin token, passed to every node with `--admin-token-file`.
    pub token_file: String,
    /// Every `mqnode` process of the cluster, in start order.
    pub nodes: Vec<NodeEntry>,
    /// Network connectors between brokers (HA groups).
    #[serde(default)]
    pub links: Vec<LinkEntry>,
    /// Brokers: a group of one process, or a master/slave pair sharing one data dir.
    #[serde(default)]
    pub groups: Vec<GroupEntry>,
    /// The security file every node is started with (`--security`); `null` for a cluster
    /// created before clusters were secured.
    #[serde(default)]
    pub security_file: Option<String>,
    /// Where mqctl keeps the cluster's passwords (mode 0600): the client user `app`, the
    /// bridge user `broker` and the discovery secret.
    #[serde(default)]
    pub credentials_file: Option<String>,
    /// The folder of the cluster's CA and node certificates, when it was created with `--tls`.
    #[serde(default)]
    pub tls_dir: Option<String>,
    /// The local PostgreSQL server mqctl runs for a `--ha jdbc` cluster created without
    /// `--store`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<LocalPostgres>,
}

/// A PostgreSQL server that mqctl runs inside a cluster's folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalPostgres {
    /// Its folder (`CLUSTER/postgres`: data, socket, log).
    pub dir: String,
    /// The folder of `initdb`, `pg_ctl` and `createdb`.
    pub bin: String,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    /// The password file of its user `mq`, which the nodes are given.
    pub password_file: String,
}

fn manifest_version() -> u32 {
    MANIFEST_VERSION
}

/// One `mqnode` process of a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEntry {
    /// Process name, passed as `--name` (`node1`, or `node1a`/`node1b` in an HA pair).
    pub name: String,
    /// Name of the broker (HA group) it belongs to; equal to `name` without HA.
    pub group: String,
    /// Data directory (`--data`); shared by the members of an HA group.
    pub data_dir: String,
    /// File that receives the process's stdout and stderr.
    pub log: String,
    /// STOMP port of its transport connector on 127.0.0.1.
    pub transport_port: u16,
    /// Port of its admin API on 127.0.0.1.
    pub admin_port: u16,
    /// Process id of the last start; `null` once stopped by `mqctl`.
    #[serde(default)]
    pub pid: Option<u32>,
    /// Whether the node stores persistent messages (`--persistent`).
    pub persistent: bool,
    /// Whether its transport is TLS (`ssl://`).
    #[serde(default)]
    pub tls: bool,
    /// Set for a node mqctl does not run (added by `mqctl cluster adopt`): where it is. Such a
    /// node has no data dir, log or pid here, and lifecycle commands leave it alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteNode>,
}

/// Where a node that mqctl does not run is, and how to talk to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteNode {
    /// Admin API base URL, e.g. `http://10.0.0.5:8161`.
    pub admin: String,
    /// File holding its admin token; `null`: the cluster's own token.
    #[serde(default)]
    pub token_file: Option<String>,
    /// Its STOMP transport as it reported it when adopted, e.g. `tcp://10.0.0.5:61613`
    /// (empty when it had none: a slave).
    #[serde(default)]
    pub transport: String,
}

impl NodeEntry {
    /// The transport connector URI: `tcp://127.0.0.1:PORT` (`ssl://` with TLS), or a remote
    /// node's own.
    pub fn transport_uri(&self) -> String {
        match &self.remote {
            Some(r) => r.transport.clone(),
            None => {
                let scheme = if self.tls { "ssl" } else { "tcp" };
                format!("{scheme}://127.0.0.1:{}", self.transport_port)
            }
        }
    }

    /// The admin API base URL: `http://127.0.0.1:PORT`, or a remote node's own.
    pub fn admin_url(&self) -> String {
        match &self.remote {
            Some(r) => r.admin.clone(),
            None => format!("http://127.0.0.1:{}", self.admin_port),
        }
    }

    /// Whether mqctl does not run this node (it was adopted).
    pub fn is_remote(&self) -> bool {
        self.remote.is_some()
    }
}

/// `mqctl cluster adopt NAME --url URL -o json`: the node added to the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdoptedNode {
    /// Cluster name.
    pub cluster: String,
    /// Name given to the node in the cluster (`--name`, else its broker name).
    pub node: String,
    /// The broker name it reported.
    pub broker: String,
    /// Its role when adopted.
    pub role: Role,
    /// Admin API base URL.
    pub admin: String,
    /// STOMP transport it reported (empty for a slave).
    pub transport: String,
    /// Its token file, when not the cluster's.
    pub token_file: Option<String>,
    /// Whether the cluster was created by this adoption.
    pub created: bool,
}

/// One network connector between two brokers of a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkEntry {
    /// Connector name, unique in the cluster (`FROM-TO`); also its name on the FROM node.
    pub name: String,
    /// Broker (group) that holds the connector and forwards to `to`.
    pub from: String,
    /// Broker (group) it forwards to.
    pub to: String,
    /// Whether the same connection also carries messages from `to` back to `from`.
    pub duplex: bool,
    /// `networkTTL`: how many hops messages and demand travel.
    pub ttl: u32,
    /// The connector URI posted to the FROM node.
    pub uri: String,
}

/// A broker: one process, or a master/slave pair sharing a data dir (or, with `store`, a
/// JDBC pair sharing a PostgreSQL database, each member with a data dir of its own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEntry {
    /// Broker name (`node1`).
    pub name: String,
    /// Process names, first member first (`node1a`, `node1b`).
    pub members: Vec<String>,
    /// The PostgreSQL store of a `--ha jdbc` group: its members run with `--ha jdbc --store`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<GroupStore>,
}

/// The PostgreSQL database of a `--ha jdbc` group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupStore {
    /// `postgres://USER@HOST:PORT/DB` (never with a password).
    pub url: String,
    /// The file holding the password (`--store-password-file`), if one is needed.
    #[serde(default)]
    pub password_file: Option<String>,
}

impl ClusterManifest {
    /// The process named `name`.
    pub fn node(&self, name: &str) -> Option<&NodeEntry> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The process named `name`, mutably.
    pub fn node_mut(&mut self, name: &str) -> Option<&mut NodeEntry> {
        self.nodes.iter_mut().find(|n| n.name == name)
    }

    /// The group of the process named `name`.
    pub fn group_of(&self, name: &str) -> Option<&GroupEntry> {
        self.groups
            .iter()
            .find(|g| g.members.iter().any(|m| m == name))
    }

    /// The group named `name`.
    pub fn group(&self, name: &str) -> Option<&GroupEntry> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The processes of group `name`, in member order.
    pub fn members(&self, group: &str) -> Vec<&NodeEntry> {
        match self.group(group) {
            Some(g) => g.members.iter().filter_map(|m| self.node(m)).collect(),
            None => self.nodes.iter().filter(|n| n.group == group).collect(),
        }
    }

    /// Whether any broker is a master/slave group of more than one process.
    pub fn has_ha(&self) -> bool {
        self.groups.iter().any(|g| g.members.len() > 1)
    }

    /// The link named `name`.
    pub fn link(&self, name: &str) -> Option<&LinkEntry> {
        self.links.iter().find(|l| l.name == name)
    }
}

// ---- `cluster create --from FILE` ------------------------------------------------------------

/// A custom layout for `cluster create --from FILE`: the `nodes` and `links` of a manifest, with
/// everything but names optional. A full `cluster.json` is accepted too (other fields are
/// ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterLayout {
    /// Processes, in start order.
    #[serde(default)]
    pub nodes: Vec<LayoutNode>,
    /// Links between groups.
    #[serde(default)]
    pub links: Vec<LayoutLink>,
}

/// One process of a [`ClusterLayout`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutNode {
    /// Process name.
    pub name: String,
    /// Group; processes with the same group form a master/slave pair. Defaults to `name`.
    #[serde(default)]
    pub group: Option<String>,
    /// Transport port; picked by `mqctl` when absent.
    #[serde(default)]
    pub transport_port: Option<u16>,
    /// Admin port; picked by `mqctl` when absent.
    #[serde(default)]
    pub admin_port: Option<u16>,
    /// Defaults to the command line (`--no-persistent`).
    #[serde(default)]
    pub persistent: Option<bool>,
}

/// One link of a [`ClusterLayout`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutLink {
    /// Connector name; `FROM-TO` when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// Group that forwards.
    pub from: String,
    /// Group forwarded to.
    pub to: String,
    /// Both directions on one connection.
    #[serde(default)]
    pub duplex: bool,
    /// `networkTTL`; 1 when absent.
    #[serde(default)]
    pub ttl: Option<u32>,
}

// ---- `-o json` reports ------------------------------------------------------------------------

/// `mqctl cluster ls -o json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterList {
    /// One entry per cluster folder, sorted by name.
    pub clusters: Vec<ClusterSummary>,
}

/// One cluster of [`ClusterList`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSummary {
    /// Cluster name.
    pub name: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// Topology.
    pub topology: Topology,
    /// Processes in the manifest.
    pub nodes: usize,
    /// Processes currently running.
    pub running: usize,
    /// The cluster's folder.
    pub path: String,
}

/// `mqctl cluster status NAME -o json` (also printed by `cluster create` and `cluster start`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// Cluster name.
    pub name: String,
    /// One entry per process, in manifest order.
    pub nodes: Vec<NodeStatus>,
    /// One entry per link of the manifest.
    pub links: Vec<LinkStatus>,
}

/// One process of [`ClusterStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Process name.
    pub name: String,
    /// Broker (HA group) name.
    pub group: String,
    /// Role the node reports; `null` when it did not answer.
    pub role: Option<Role>,
    /// Process id recorded in the manifest.
    pub pid: Option<u32>,
    /// The recorded process runs and its `/healthz` answers 200.
    pub alive: bool,
    /// Transport connector URI.
    pub transport: String,
    /// Admin API base URL.
    pub admin: String,
    /// Milliseconds since the node started; `null` when it did not answer.
    pub uptime_ms: Option<u64>,
    /// Queues on the node; `null` when unknown (down, or a slave).
    pub queues: Option<u64>,
    /// Messages held in the node's store; `null` when unknown.
    pub messages: Option<u64>,
    /// Network connector peers in state `connected`.
    pub links_up: u64,
    /// Network connector peers configured on the node.
    pub links_total: u64,
    /// A node mqctl does not run (adopted, or given by `--url`).
    #[serde(default)]
    pub remote: bool,
    /// Memory, store and temp usage with their limits; `null` when unknown.
    #[serde(default)]
    pub usage: Option<crate::api::UsageReport>,
}

/// State of one link, from the FROM broker's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    /// Every peer of the connector is connected.
    Up,
    /// The connector exists and no peer is connected yet (connecting or backing off).
    Down,
    /// The FROM broker has no connector of this name (not created, or the node restarted).
    Missing,
    /// The FROM broker did not answer, or does not support network connectors.
    Unknown,
}

impl fmt::Display for LinkState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkState::Up => "up",
            LinkState::Down => "down",
            LinkState::Missing => "missing",
            LinkState::Unknown => "unknown",
        })
    }
}

/// One link of [`ClusterStatus`] and [`LinkList`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkStatus {
    /// Connector name.
    pub name: String,
    /// Forwarding broker.
    pub from: String,
    /// Receiving broker.
    pub to: String,
    /// Both directions on one connection.
    pub duplex: bool,
    /// `networkTTL`.
    pub ttl: u32,
    /// Connector URI.
    pub uri: String,
    /// State seen on the FROM broker.
    pub state: LinkState,
    /// Peers (of the connector) in state `connected`, as the FROM broker reports them.
    pub peers_up: u64,
    /// Peers of the connector.
    pub peers_total: u64,
}

/// `mqctl link ls NAME -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkList {
    /// Cluster name.
    pub cluster: String,
    /// Links in manifest order.
    pub links: Vec<LinkStatus>,
}

/// `mqctl link add -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkAdded {
    /// Cluster name.
    pub cluster: String,
    /// The recorded link.
    pub link: LinkEntry,
    /// Whether the FROM node created the connector (false when it does not support network
    /// connectors; the link stays recorded and is created on the next start).
    pub applied: bool,
}

/// `mqctl link rm -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkRemoved {
    /// Cluster name.
    pub cluster: String,
    /// The removed link.
    pub link: LinkEntry,
    /// Whether the FROM node had the connector and removed it.
    pub applied: bool,
}

/// `mqctl node ls NAME -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeList {
    /// Cluster name.
    pub cluster: String,
    /// Processes in manifest order.
    pub nodes: Vec<NodeListEntry>,
}

/// One process of [`NodeList`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeListEntry {
    /// Process name.
    pub name: String,
    /// Broker (HA group) name.
    pub group: String,
    /// Recorded process id.
    pub pid: Option<u32>,
    /// Whether the recorded process is running.
    pub running: bool,
    /// Transport connector URI.
    pub transport: String,
    /// Admin API base URL.
    pub admin: String,
    /// Data directory.
    pub data_dir: String,
    /// Log file.
    pub log: String,
}

/// What a node or cluster command did to a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeAction {
    /// Started and ready.
    Started,
    /// Stopped with SIGTERM.
    Stopped,
    /// Killed with SIGKILL.
    Killed,
    /// Stopped (or found dead) and started again.
    Restarted,
    /// Nothing to do: already running, or already stopped.
    Unchanged,
}

impl fmt::Display for NodeAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NodeAction::Started => "started",
            NodeAction::Stopped => "stopped",
            NodeAction::Killed => "killed",
            NodeAction::Restarted => "restarted",
            NodeAction::Unchanged => "unchanged",
        })
    }
}

/// `mqctl node start|stop|kill|restart -o json`, and one entry per process of `cluster stop`
/// and `cluster destroy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeChange {
    /// Cluster name.
    pub cluster: String,
    /// Process name.
    pub node: String,
    /// What was done.
    pub action: NodeAction,
    /// Process id now running (after start/restart), or the one that was signalled.
    pub pid: Option<u32>,
    /// Role the node reports after a start; `null` otherwise.
    pub role: Option<Role>,
}

/// `mqctl cluster stop|destroy -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterChange {
    /// Cluster name.
    pub name: String,
    /// `stopped` or `destroyed`.
    pub action: String,
    /// One entry per process.
    pub nodes: Vec<NodeChange>,
}

/// `mqctl queue stat -o json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStatReport {
    /// One entry per (node, queue), sorted by queue then node; no totals.
    pub queues: Vec<QueueStatRow>,
    /// Nodes that did not answer.
    pub down: Vec<String>,
}

/// One (node, queue) of [`QueueStatReport`], after ActiveMQ's `dstat` columns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStatRow {
    /// Node (process name, or `HOST:PORT` with `--url`).
    pub node: String,
    /// Queue name.
    pub queue: String,
    /// Messages waiting or in flight.
    pub depth: u64,
    /// Open producer connections.
    pub producers: u64,
    /// Consumers, local and network.
    pub consumers: u64,
    /// Messages ever added.
    pub enqueued: u64,
    /// Messages acknowledged.
    pub dequeued: u64,
    /// Messages forwarded to other brokers.
    pub forwarded: u64,
    /// Dispatched, not yet acknowledged.
    pub inflight: u64,
    /// Dropped on expiry.
    pub expired: u64,
    /// Moved to the dead-letter queue.
    pub dead_lettered: u64,
    /// Bytes held.
    pub bytes: u64,
    /// Of `depth`, the messages in the node's memory (the rest are only in its store).
    #[serde(default)]
    pub in_memory: u64,
}

/// `mqctl queue send -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendReport {
    /// Node that took the messages.
    pub node: String,
    /// Queue name.
    pub queue: String,
    /// Messages sent.
    pub sent: u64,
    /// Whether they were sent persistent.
    pub persistent: bool,
    /// Ids the node gave them, in order.
    pub message_ids: Vec<String>,
}

/// `mqctl queue browse -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowseReport {
    /// Node browsed.
    pub node: String,
    /// Queue name.
    pub queue: String,
    /// Messages in queue order.
    pub messages: Vec<BrowsedMessage>,
}

/// `mqctl queue purge -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeReport {
    /// Node purged.
    pub node: String,
    /// Queue name.
    pub queue: String,
    /// Messages removed.
    pub removed: u64,
}

/// `mqctl queue delete -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteReport {
    /// Node the queue was deleted on.
    pub node: String,
    /// Queue name.
    pub queue: String,
    /// Messages removed with it.
    pub removed: u64,
}

/// `mqctl topic ls -o json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicReport {
    /// One entry per (node, topic), sorted by topic then node.
    pub topics: Vec<TopicRow>,
    /// Nodes that did not answer.
    pub down: Vec<String>,
}

/// One (node, topic) of [`TopicReport`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRow {
    /// Node (process name, or `HOST:PORT` with `--url`).
    pub node: String,
    /// Topic name without `/topic/`.
    pub topic: String,
    /// Current subscribers, local and network.
    pub subscribers: u64,
    /// Messages published.
    pub enqueued: u64,
    /// Copies delivered to subscribers.
    pub dispatched: u64,
    /// Copies forwarded to other brokers.
    pub forwarded: u64,
}

/// `mqctl scheduled ls -o json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledReport {
    /// One entry per scheduled message, next to fire first.
    pub scheduled: Vec<ScheduledRow>,
    /// Nodes that did not answer.
    pub down: Vec<String>,
}

/// `mqctl sub ls -o json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionReport {
    /// One entry per (node, subscription), sorted by client id, name, then node.
    pub subscriptions: Vec<SubscriptionRow>,
    /// Nodes that did not answer.
    pub down: Vec<String>,
}

/// One scheduled message of [`ScheduledReport`]: the node's answer with the node's name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledRow {
    /// Node (process name, or `HOST:PORT` with `--url`).
    pub node: String,
    /// What the node said of it.
    #[serde(flatten)]
    pub message: crate::api::ScheduledMessage,
}

/// `mqctl scheduled rm -o json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnscheduleReport {
    /// The node that held it.
    pub node: String,
    /// The job removed.
    pub id: String,
}

/// One (node, durable subscription) of [`SubscriptionReport`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRow {
    /// Node (process name, or `HOST:PORT` with `--url`).
    pub node: String,
    /// The subscription's client id.
    pub client_id: String,
    /// Its name.
    pub name: String,
    /// Its topic, `/topic/NAME`.
    pub topic: String,
    /// Its selector.
    pub selector: Option<String>,
    /// Whether a connection consumes it now.
    pub active: bool,
    /// Messages kept for it.
    pub pending: u64,
    /// Messages kept for it since the node started.
    pub enqueued: u64,
    /// Messages it acknowledged since the node started.
    pub dequeued: u64,
}

/// `mqctl sub rm -o json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRemovedReport {
    /// Node it was removed on.
    pub node: String,
    /// The subscription's client id.
    pub client_id: String,
    /// Its name.
    pub name: String,
    /// Messages of its backlog dropped with it.
    pub dropped: u64,
}

/// `mqctl connection ls -o json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionReport {
    /// One entry per connection, by node then id.
    pub connections: Vec<ConnectionRow>,
    /// Nodes that did not answer.
    pub down: Vec<String>,
}

/// One connection of [`ConnectionReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionRow {
    /// Node it is open on.
    pub node: String,
    /// Connection id, unique within the node's life.
    pub id: u64,
    /// Peer address.
    pub remote: String,
    /// `client` or `bridge`.
    pub kind: crate::api::ConnectionKind,
    /// Negotiated STOMP version, empty before CONNECT.
    pub version: String,
    /// Remote broker name, for bridges.
    pub broker: Option<String>,
    /// Open subscriptions.
    pub subscriptions: u64,
    /// Unix epoch ms when it connected.
    pub since_ms: u64,
}

// ---- failover -------------------------------------------------------------------------------

/// How `mqctl failover trigger` makes the master let go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailoverMode {
    /// `POST /api/v1/ha/stepdown`: a planned switchover.
    Stepdown,
    /// SIGKILL to the master's process: a crash.
    Kill,
}

impl fmt::Display for FailoverMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailoverMode::Stepdown => "stepdown",
            FailoverMode::Kill => "kill",
        })
    }
}

/// `mqctl failover trigger -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverReport {
    /// The HA group (broker) that failed over.
    pub group: String,
    /// How the master was made to let go.
    pub mode: FailoverMode,
    /// Process that was master before.
    pub old_master: String,
    /// Process that is master now.
    pub new_master: String,
    /// From the kill (or the stepdown request) until a STOMP CONNECT to the new master was
    /// answered CONNECTED, in ms.
    pub recovery_ms: u64,
    /// With `--verify N`: what became of the N messages sent before; `null` otherwise.
    pub verify: Option<VerifyReport>,
}

/// Messages sent through a failover and consumed after it (`failover trigger --verify`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Persistent messages confirmed by a RECEIPT before the failover.
    pub sent: u64,
    /// Distinct ones consumed from the new master.
    pub received: u64,
    /// Confirmed but never consumed: `sent - received`.
    pub lost: u64,
    /// Deliveries beyond the first of the same message.
    pub duplicated: u64,
}

/// `mqctl failover status -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverStatus {
    /// Cluster name.
    pub cluster: String,
    /// One entry per group (broker), in manifest order.
    pub groups: Vec<GroupStatus>,
}

/// One group of [`FailoverStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupStatus {
    /// Group name.
    pub group: String,
    /// The member serving (role `master` or `standalone`); `null` when none is.
    pub master: Option<String>,
    /// Members waiting for the store lock.
    pub slaves: Vec<String>,
    /// Members that did not answer.
    pub down: Vec<String>,
    /// What the group's lock file says, when it has a readable record.
    pub lock: Option<LockHolder>,
}

/// The record a node writes into the store's lock file (`DATA/lock`) when it takes the lock:
/// one line `NAME pid PID inode INO`. The record stays after the holder lets go, so it names
/// the current or the last holder; the OS lock itself says whether it is held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// Broker name (`--name`) of the holder.
    pub holder: String,
    /// Its process id.
    pub pid: u32,
    /// Inode of the lock file it locked; a taker that finds its own file's inode here knows
    /// the file was handed over, not replaced.
    pub inode: u64,
}

impl LockHolder {
    /// Parses the first line of a lock file; `None` for anything else (empty, older formats).
    pub fn parse(text: &str) -> Option<LockHolder> {
        let words: Vec<&str> = text.lines().next()?.split_whitespace().collect();
        let [name @ .., "pid", pid, "inode", inode] = words.as_slice() else {
            return None;
        };
        if name.is_empty() {
            return None;
        }
        Some(LockHolder {
            holder: name.join(" "),
            pid: pid.parse().ok()?,
            inode: inode.parse().ok()?,
        })
    }

    /// Reads the record of the lock file in data directory `dir`.
    pub fn read(dir: &std::path::Path) -> Option<LockHolder> {
        let text = std::fs::read_to_string(dir.join(crate::defaults::LOCK_FILE)).ok()?;
        LockHolder::parse(&text)
    }
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} pid {} inode {}", self.holder, self.pid, self.inode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topology_names_round_trip() {
        for t in Topology::ALL {
            assert_eq!(t.as_str().parse::<Topology>(), Ok(t));
            let json = serde_json::to_string(&t).expect("serialise");
            assert_eq!(json, format!("\"{t}\""));
        }
        assert!("hub".parse::<Topology>().is_err());
    }

    #[test]
    fn layout_accepts_a_minimal_file() {
        let layout: ClusterLayout = serde_json::from_str(
            r#"{"nodes":[{"name":"a"},{"name":"b","group":"b"}],"links":[{"from":"a","to":"b"}]}"#,
        )
        .expect("parse");
        assert_eq!(layout.nodes.len(), 2);
        assert_eq!(layout.links[0].ttl, None);
        assert!(!layout.links[0].duplex);
    }

    #[test]
    fn lock_records_parse_strictly() {
        let r = LockHolder::parse("node 1a pid 12 inode 34\n").expect("parses");
        assert_eq!(r.holder, "node 1a");
        assert_eq!((r.pid, r.inode), (12, 34));
        assert_eq!(LockHolder::parse(&r.to_string()), Some(r));
        assert_eq!(LockHolder::parse("n1 pid 12\n"), None);
        assert_eq!(LockHolder::parse("pid 1 inode 2"), None);
        assert_eq!(LockHolder::parse(""), None);
        assert_eq!(LockHolder::parse("n1 pid x inode 3"), None);
    }

    #[test]
    fn failover_report_shape() {
        let r = FailoverReport {
            group: "node1".into(),
            mode: FailoverMode::Kill,
            old_master: "node1a".into(),
            new_master: "node1b".into(),
            recovery_ms: 180,
            verify: None,
        };
        let v = serde_json::to_value(&r).expect("serialise");
        assert_eq!(
            v,
            serde_json::json!({"group": "node1", "mode": "kill", "old_master": "node1a",
                "new_master": "node1b", "recovery_ms": 180, "verify": null})
        );
    }
}
