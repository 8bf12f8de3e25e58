//! The `-o json` reports of `mqctl cluster`, `link` and `node`: listings, status and changes.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{LinkEntry, Topology};
use crate::api::Role;

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
    /// `replication` of the node's `GET /api/v1/broker` (`--ha replicated`): its epoch, its
    /// master and the replicas it reports; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<crate::api::ReplicationInfo>,
    /// `lease` of the node's `GET /api/v1/broker` (`--ha jdbc`): the lease row; absent
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<crate::api::LeaseInfo>,
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
