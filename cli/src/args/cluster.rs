//! `mqctl cluster ...`: arguments.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use mq_shared::ctl::Topology;
use mq_shared::defaults::{CLUSTER_NODES, NODE_READY_TIMEOUT};

/// `mqctl cluster VERB`.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Create a cluster: start its mqnode processes, wait until they are ready, link them.
    ///
    /// Nodes are named node1..nodeN. With --ha each broker is a master/slave pair (node1a and
    /// node1b sharing node1's data dir); with --ha replicated a group of --replicas members
    /// (node1a, node1b, node1c, ...), each with a data dir of its own, elected through
    /// ZooKeeper (--zookeeper, else a local server mqctl runs in the cluster folder). Ports are handed out from --base-port upward (STOMP,
    /// then admin, for each process), outside the kernel's ephemeral range and never one that
    /// another cluster of this home records, and kept for every later start. The cluster lives
    /// in $MQCTL_HOME/clusters/NAME; an admin token is generated for it.
    #[command(after_help = "\
Examples:
  mqctl cluster create demo
  mqctl cluster create demo --nodes 5 --topology ring --base-port 61700
  mqctl cluster create ha --nodes 2 --ha --topology line
  mqctl cluster create rep --nodes 1 --ha replicated --replicas 3
  mqctl cluster create custom --from layout.json")]
    Create(CreateArgs),

    /// List the clusters in $MQCTL_HOME.
    #[command(
        visible_alias = "list",
        after_help = "\
Examples:
  mqctl cluster ls
  mqctl cluster ls -o json"
    )]
    Ls,

    /// Show every node of a cluster: role, pid, liveness, ports, uptime, queues, links.
    ///
    /// With --url (repeatable) instead of NAME: the same for nodes outside any cluster.
    #[command(
        override_usage = ClusterOrUrls::usage("cluster status"),
        after_help = ClusterOrUrls::examples(
            "cluster status",
            "'.nodes[] | select(.alive | not) | .name'",
            " --token-file admin.token"
        )
    )]
    Status(ClusterOrUrls),

    /// Add a node that mqctl does not run (on another host, or started by hand) to a cluster.
    ///
    /// The node is asked for its name, role and transport at URL (with the token of
    /// --token-file, else the cluster's), then recorded in the manifest: every command that
    /// reads nodes (status, queue stat, links, the console) includes it, links can go to and
    /// from it, and lifecycle commands (start, stop, kill, restart, destroy) leave it alone,
    /// saying so. The cluster is created, without local nodes, if it does not exist.
    #[command(after_help = "\
Examples:
  mqctl cluster adopt demo --url http://10.0.0.5:8161 --token-file ./remote.token
  mqctl cluster adopt edge --url http://127.0.0.1:8161 --name hand-started")]
    Adopt(AdoptArgs),

    /// Stop every node of a cluster (SIGTERM, then wait); the cluster stays on disk.
    #[command(after_help = "\
Examples:
  mqctl cluster stop demo
  mqctl cluster start demo")]
    Stop(ClusterName),

    /// Start the stopped nodes of a cluster with their recorded ports, and re-create its links.
    #[command(after_help = "\
Examples:
  mqctl cluster start demo")]
    Start(StartArgs),

    /// Stop every node of a cluster (SIGKILL after a bounded wait) and delete its folder, data
    /// included (asks first; --yes when stdin is not a terminal).
    #[command(after_help = "\
Examples:
  mqctl cluster destroy demo
  mqctl cluster destroy demo --yes")]
    Destroy(DestroyArgs),
}

/// A cluster name.
#[derive(Debug, Args)]
pub struct ClusterName {
    /// Cluster name.
    #[arg(value_name = "NAME")]
    pub name: String,
}

/// `NAME`, or `--url URL... [--token-file F]`: a cluster, or nodes outside any cluster
/// (`cluster status`, `link ls`, `failover status` and `failover trigger`).
#[derive(Debug, Args)]
pub struct ClusterOrUrls {
    /// Cluster name.
    #[arg(
        value_name = "NAME",
        required_unless_present = "url",
        conflicts_with = "url"
    )]
    pub name: Option<String>,
    #[command(flatten)]
    pub urls: UrlsArgs,
}

impl ClusterOrUrls {
    /// The usage of `mqctl COMMAND` when these are all it takes.
    pub fn usage(command: &str) -> String {
        format!("mqctl {command} NAME\n       mqctl {command} --url URL... [--token-file F]")
    }

    /// The examples of `mqctl COMMAND` for a report of many nodes: a cluster, its JSON through
    /// `jq FILTER`, and two nodes outside any cluster (`url_tail` after their URLs).
    pub fn examples(command: &str, filter: &str, url_tail: &str) -> String {
        format!(
            "Examples:\n  mqctl {command} demo\n  mqctl {command} demo -o json | jq {filter}\n  mqctl {command} --url http://10.0.0.5:8161 --url http://10.0.0.6:8161{url_tail}"
        )
    }
}

/// `--url URL...` with `--token-file F`: nodes outside any cluster.
#[derive(Debug, Clone, Args)]
pub struct UrlsArgs {
    /// Admin URL of a node outside any cluster, e.g. http://127.0.0.1:8161 (repeatable).
    #[arg(long, value_name = "URL")]
    pub url: Vec<String>,
    /// File holding those nodes' admin token [env: MQCTL_TOKEN_FILE].
    #[arg(long, value_name = "FILE", env = "MQCTL_TOKEN_FILE", hide_env = true)]
    pub token_file: Option<PathBuf>,
}

/// `mqctl cluster adopt`.
#[derive(Debug, Args)]
pub struct AdoptArgs {
    /// Cluster name (created if it does not exist).
    #[arg(value_name = "NAME")]
    pub cluster: String,
    /// Admin URL of the node, e.g. http://10.0.0.5:8161.
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// File holding the node's admin token [default: the cluster's token].
    #[arg(long, value_name = "F")]
    pub token_file: Option<PathBuf>,
    /// Name of the node in the cluster [default: the broker name it reports].
    #[arg(long, value_name = "NODE")]
    pub name: Option<String>,
}

/// `mqctl cluster destroy`.
#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// Cluster name.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Do it without asking (needed when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// Topologies `cluster create --topology` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TopologyArg {
    /// A connector from every node to every other (networkTTL 1).
    Mesh,
    /// Duplex links between neighbours around a ring (networkTTL n/2).
    Ring,
    /// Duplex links between neighbours (networkTTL n-1).
    Line,
    /// Duplex links from the first node to each other (networkTTL 2).
    Star,
    /// No links.
    None,
}

impl From<TopologyArg> for Topology {
    fn from(t: TopologyArg) -> Self {
        match t {
            TopologyArg::Mesh => Topology::Mesh,
            TopologyArg::Ring => Topology::Ring,
            TopologyArg::Line => Topology::Line,
            TopologyArg::Star => Topology::Star,
            TopologyArg::None => Topology::None,
        }
    }
}

/// `--ha KIND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HaArg {
    /// Pairs sharing a data dir (an OS lock on `DATA/lock`).
    File,
    /// Pairs sharing a PostgreSQL database (its lease row).
    Jdbc,
    /// Groups of `--replicas` members, each with a store of its own, the master elected
    /// through ZooKeeper and streaming its journal to the others.
    Replicated,
}

/// `mqctl cluster create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Cluster name (letters, digits, `.`, `_`, `-`).
    #[arg(value_name = "NAME")]
    pub name: String,

    /// Number of brokers.
    #[arg(long, default_value_t = CLUSTER_NODES, value_parser = parse_node_count, conflicts_with = "from")]
    pub nodes: usize,

    /// How brokers are linked.
    #[arg(long, value_enum, default_value_t = TopologyArg::Mesh, conflicts_with = "from")]
    pub topology: TopologyArg,

    /// Make each broker a master/slave pair: `--ha` (or `--ha file`) shares one data dir,
    /// `--ha jdbc` shares a PostgreSQL database (`--store`), each member with a data dir of its
    /// own; `--ha replicated` makes groups of `--replicas` members elected through ZooKeeper.
    #[arg(
        long,
        value_enum,
        value_name = "KIND",
        num_args = 0..=1,
        default_missing_value = "file",
        require_equals = false,
        conflicts_with = "from"
    )]
    pub ha: Option<HaArg>,

    /// With `--ha jdbc`: the PostgreSQL database of a broker, `postgres://USER@HOST:PORT/DB`;
    /// once per broker (node1, node2, ...), each broker needs a database of its own.
    #[arg(long = "store", value_name = "URL", requires = "ha")]
    pub stores: Vec<String>,

    /// With `--ha replicated`: members of each group (the quorum is replicas/2 + 1)
    /// [default: 3].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(2..=9), requires = "ha")]
    pub replicas: Option<u16>,

    /// With `--ha replicated`: the ZooKeeper connect string, HOST:PORT[,HOST:PORT...];
    /// without it mqctl runs one ZooKeeper server of the cluster's own on 127.0.0.1.
    #[arg(long, value_name = "HOST:PORT", requires = "ha")]
    pub zookeeper: Option<String>,

    /// With `--store`: the file holding the database user's password.
    #[arg(long = "store-password-file", value_name = "FILE", requires = "stores")]
    pub store_password_file: Option<PathBuf>,

    /// Serve every transport and link over TLS (ssl://) with a CA and node certificates that
    /// mqctl makes in the cluster folder.
    #[arg(long)]
    pub tls: bool,

    /// First port to hand out: ports go from P upward (process i gets P+2i for STOMP and
    /// P+2i+1 for admin when all are free), skipping the kernel's ephemeral range, ports in use
    /// and ports recorded by other clusters of this home.
    #[arg(
        long,
        value_name = "P",
        env = "MQCTL_BASE_PORT",
        num_args = 0..=1,
        default_value = CLUSTER_BASE_PORT_STR,
        default_missing_value = CLUSTER_BASE_PORT_STR,
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    pub base_port: u16,

    /// Whether the nodes store persistent messages (`mqnode --persistent true|false`).
    #[command(flatten)]
    pub persistence: super::Persistence,

    /// Custom layout: a JSON file with `nodes` and `links` (see docs/mqctl.md).
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,

    /// The mqnode executable [default: beside mqctl, else on PATH].
    #[arg(long, value_name = "PATH")]
    pub mqnode: Option<PathBuf>,

    #[command(flatten)]
    pub ready: ReadyTimeout,
}

/// `--timeout SECS`: how long a start waits for each node to be ready.
#[derive(Debug, Clone, Copy, Args)]
pub struct ReadyTimeout {
    /// Seconds to wait for each node to be ready; past that the start fails (exit 75) naming
    /// the node, with its log tail.
    #[arg(
        long = "timeout",
        value_name = "SECS",
        default_value_t = NODE_READY_TIMEOUT.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    pub secs: u64,
}

impl ReadyTimeout {
    /// As a duration.
    pub fn duration(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.secs)
    }
}

impl CreateArgs {
    /// `--timeout`.
    pub fn ready_timeout(&self) -> std::time::Duration {
        self.ready.duration()
    }
}

impl StartArgs {
    /// `--timeout`.
    pub fn ready_timeout(&self) -> std::time::Duration {
        self.ready.duration()
    }
}

/// `CLUSTER_BASE_PORT` as text for clap's `default_missing_value`; a unit test keeps the two
/// in step.
const CLUSTER_BASE_PORT_STR: &str = "61700";

fn parse_node_count(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=64).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a number of brokers from 1 to 64, got `{s}`"
        )),
    }
}

/// `mqctl cluster start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Cluster name.
    #[arg(value_name = "NAME")]
    pub name: String,

    /// The mqnode executable [default: the one the cluster was created with].
    #[arg(long, value_name = "PATH")]
    pub mqnode: Option<PathBuf>,

    #[command(flatten)]
    pub ready: ReadyTimeout,
}

#[cfg(test)]
mod tests {
    use super::*;
    use mq_shared::defaults::CLUSTER_BASE_PORT;

    #[test]
    fn base_port_default_matches_shared_defaults() {
        assert_eq!(CLUSTER_BASE_PORT_STR, CLUSTER_BASE_PORT.to_string());
    }

    #[test]
    fn node_count_bounds() {
        assert_eq!(parse_node_count("3"), Ok(3));
        assert!(parse_node_count("0").is_err());
        assert!(parse_node_count("65").is_err());
        assert!(parse_node_count("x").is_err());
    }
}
