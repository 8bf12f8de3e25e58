//! The cluster manifest (`cluster.json`) `mqctl` writes for every cluster it creates, and the
//! custom layout `cluster create --from FILE` reads.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::api::Role;

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
    /// The local ZooKeeper server mqctl runs for a `--ha replicated` cluster created without
    /// `--zookeeper`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zookeeper: Option<LocalZooKeeper>,
}

/// A ZooKeeper server that mqctl runs inside a cluster's folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalZooKeeper {
    /// Its folder (`CLUSTER/zookeeper`: `zoo.cfg`, data, log).
    pub dir: String,
    /// Its client port on 127.0.0.1.
    pub port: u16,
    /// Process id of its last start; `null` once stopped by `mqctl`.
    #[serde(default)]
    pub pid: Option<u32>,
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
    /// The ZooKeeper election of a `--ha replicated` group: its members run with
    /// `--ha replicated`, each with a store of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicated: Option<GroupReplicated>,
}

/// How the members of a `--ha replicated` group find each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupReplicated {
    /// ZooKeeper's connect string (`--zk-address`).
    pub zk_address: String,
    /// The group's node in ZooKeeper (`--zk-path`).
    pub zk_path: String,
    /// The file holding the token of the replication links (`--replication-token-file`).
    pub token_file: String,
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
