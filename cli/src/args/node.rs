//! `mqctl node ...`: arguments.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{NodeTarget, parse_node_target};
use crate::args::cluster::{ClusterName, ReadyTimeout};

/// `mqctl node VERB`.
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// List the processes of a cluster: pid, running, ports, data dir, log.
    #[command(
        visible_alias = "list",
        after_help = "\
Examples:
  mqctl node ls demo"
    )]
    Ls(ClusterName),

    /// Start one stopped node with its recorded flags and wait until it is ready.
    #[command(after_help = "\
Examples:
  mqctl node start demo/node2")]
    Start(NodeStartArgs),

    /// Stop one node gracefully (SIGTERM) and wait for it to exit.
    #[command(after_help = "\
Examples:
  mqctl node stop demo/node2")]
    Stop(NodeArgs),

    /// Kill one node at once (SIGKILL), as a crash would.
    #[command(after_help = "\
Examples:
  mqctl node kill demo/node2
  mqctl node kill ha/node1a      # the slave node1b takes over")]
    Kill(NodeArgs),

    /// Show the log of one node (its stdout and stderr), and follow it with --follow.
    #[command(after_help = "\
Examples:
  mqctl node logs demo/node2
  mqctl node logs demo/node2 --lines 100
  mqctl node logs demo/node2 --follow")]
    Logs(LogsArgs),

    /// Stop (or notice dead) and start one node again, then wait until it is ready.
    #[command(after_help = "\
Examples:
  mqctl node restart demo/node2")]
    Restart(NodeStartArgs),
}

/// One node, `NAME/NODE`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// Cluster and node, e.g. demo/node2.
    #[arg(value_name = "NAME/NODE", value_parser = parse_node_target)]
    pub target: NodeTarget,
}

/// `node logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Cluster and node, e.g. demo/node2.
    #[arg(value_name = "NAME/NODE", value_parser = parse_node_target)]
    pub target: NodeTarget,
    /// How many of the last lines to show (0: the whole log).
    #[arg(long, short = 'n', value_name = "N", default_value_t = 20)]
    pub lines: usize,
    /// Keep printing lines as the node writes them, until Ctrl-C.
    #[arg(long, short = 'f')]
    pub follow: bool,
}

/// `node start` and `node restart`.
#[derive(Debug, Args)]
pub struct NodeStartArgs {
    /// Cluster and node, e.g. demo/node2.
    #[arg(value_name = "NAME/NODE", value_parser = parse_node_target)]
    pub target: NodeTarget,

    /// The mqnode executable [default: the one the cluster was created with].
    #[arg(long, value_name = "PATH")]
    pub mqnode: Option<PathBuf>,

    #[command(flatten)]
    pub ready: ReadyTimeout,
}

impl NodeStartArgs {
    /// `--timeout`.
    pub fn ready_timeout(&self) -> std::time::Duration {
        self.ready.duration()
    }
}
