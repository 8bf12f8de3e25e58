//! The command line: `mqctl [-o table|plain|json] NOUN VERB ...`, parsed with clap derive.
//!
//! One module per noun; each verb's doc comment is its `--help`, with an `Examples:` block.

pub mod bench;
pub mod cluster;
pub mod failover;
pub mod link;
pub mod node;
pub mod queue;
pub mod sub;
pub mod topic;

use clap::{Parser, Subcommand};

use crate::output::Format;

const EXAMPLES: &str = "\
Examples:
  mqctl cluster create demo --nodes 3 --topology mesh
  mqctl cluster status demo
  mqctl queue send demo orders --body hello --count 10
  mqctl queue stat demo --watch 1
  mqctl node kill demo/node2
  mqctl cluster destroy demo

Clusters live in $MQCTL_HOME (default ~/.mqctl). Docs: docs/mqctl.md.";

/// `mqctl --help`'s closing text: examples, then the exit codes.
fn top_help() -> String {
    format!("{EXAMPLES}\n\n{}", crate::error::EXIT_CODES_HELP)
}

/// Create, link and inspect local clusters of mqnode brokers.
#[derive(Debug, Parser)]
#[command(name = "mqctl", version, after_help = top_help())]
pub struct Cli {
    /// Output format: table (default columns, fit to the terminal), wide (every column), plain
    /// (tab-separated, one row per line, every column) or json [default: table on a terminal,
    /// plain otherwise].
    #[arg(
        short = 'o',
        long = "output",
        global = true,
        value_enum,
        value_name = "FORMAT",
        hide_possible_values = true,
        display_order = 900
    )]
    pub output: Option<Format>,

    /// Show these columns, in this order (names as in the header; table and plain output).
    #[arg(
        long,
        global = true,
        value_name = "A,B,C",
        value_delimiter = ',',
        display_order = 901
    )]
    pub columns: Option<Vec<String>>,

    /// Show at most N rows (0: all) [default: 100 in tables, all in plain and JSON].
    #[arg(long, global = true, value_name = "N", display_order = 902)]
    pub limit: Option<usize>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The nouns.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, start, stop, inspect and destroy local clusters.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Start, stop, kill and restart single nodes of a cluster.
    #[command(subcommand)]
    Node(node::NodeCommand),
    /// Add, list and remove network connectors between brokers.
    #[command(subcommand)]
    Link(link::LinkCommand),
    /// Queue statistics across nodes; send, browse, purge and delete.
    #[command(subcommand)]
    Queue(queue::QueueCommand),
    /// Topics across nodes, with their subscribers.
    #[command(subcommand)]
    Topic(topic::TopicCommand),
    /// Durable topic subscriptions across nodes: list and remove.
    #[command(subcommand)]
    Sub(sub::SubCommand),
    /// Client and bridge connections across nodes.
    #[command(subcommand)]
    Connection(topic::ConnectionCommand),
    /// Fail over a master/slave group and measure recovery; show each group's master.
    #[command(subcommand)]
    Failover(failover::FailoverCommand),
    /// Dead letters: retry them, back to the destination they came from.
    #[command(subcommand)]
    Dlq(crate::commands::dlq::DlqCommand),
    /// Scheduled messages (AMQ_SCHEDULED_*): list them and delete them.
    #[command(subcommand)]
    Scheduled(crate::commands::scheduled::ScheduledCommand),
    /// Benchmark any STOMP broker: throughput, latency, lost and duplicated messages.
    Bench(bench::BenchArgs),
    /// Serve one live web page for a whole cluster: nodes, the links between them, queues.
    ///
    /// mqctl serves the page itself on 127.0.0.1 and prints its URL; it reads the nodes'
    /// admin APIs with the cluster's token (the browser never sees it) and the page refreshes
    /// every second. Ctrl-C stops it.
    #[command(after_help = "\
Examples:
  mqctl console demo
  mqctl console demo --port 8080")]
    Console(ConsoleArgs),
    /// Print a shell completion script: bash, zsh or fish.
    #[command(after_help = "\
Examples:
  mqctl completions bash > ~/.local/share/bash-completion/completions/mqctl
  mqctl completions zsh > \"${fpath[1]}/_mqctl\"
  mqctl completions fish > ~/.config/fish/completions/mqctl.fish")]
    Completions(CompletionsArgs),
    /// Print the man page of mqctl, or write one per command into a folder with --dir.
    #[command(after_help = "\
Examples:
  mqctl man | man -l -
  mqctl man --dir /usr/local/share/man/man1")]
    Man(ManArgs),
    /// Security helpers: hash a password for a node's security file.
    #[command(subcommand)]
    Security(SecurityCommand),
}

/// `mqctl security ...`.
#[derive(Debug, Subcommand)]
pub enum SecurityCommand {
    /// Read a password on stdin (one trailing newline is ignored) and print its argon2id PHC
    /// string, for the `password` key of a user in a security file.
    #[command(after_help = "\
Examples:
  printf '%s' 's3cret' | mqctl security hash-password
  mqctl security hash-password < password.txt")]
    HashPassword,
}

/// `mqctl console`.
#[derive(Debug, clap::Args)]
pub struct ConsoleArgs {
    /// Cluster name.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Port on 127.0.0.1 to serve the page on [default: a free one].
    #[arg(long, value_name = "P", default_value_t = 0, hide_default_value = true)]
    pub port: u16,
}

/// Shells `mqctl completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    /// GNU bash.
    Bash,
    /// zsh.
    Zsh,
    /// fish.
    Fish,
}

/// `mqctl completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: Shell,
}

/// `mqctl man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write mqctl.1 and one page per command (mqctl-cluster-create.1, ...) into this folder
    /// instead of printing mqctl.1.
    #[arg(long, value_name = "D")]
    pub dir: Option<std::path::PathBuf>,
}

/// `--persistent` / `--non-persistent`: one spelling in every command, persistent by default
/// (as ActiveMQ and mqnode). The last one given wins.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct Persistence {
    /// Persistent: stored, and kept across a restart [default].
    #[arg(long, overrides_with = "non_persistent")]
    pub persistent: bool,
    /// Non-persistent: kept in memory only, lost when the node stops.
    #[arg(long, overrides_with = "persistent", alias = "no-persistent")]
    pub non_persistent: bool,
}

impl Persistence {
    /// Whether persistent was chosen (the default).
    pub fn is_persistent(self) -> bool {
        !self.non_persistent
    }
}

/// Splits `NAME/NODE` into the cluster and the node.
pub fn split_target(target: &str) -> (String, Option<String>) {
    match target.split_once('/') {
        Some((cluster, node)) if !node.is_empty() => (cluster.to_string(), Some(node.to_string())),
        Some((cluster, _)) => (cluster.to_string(), None),
        None => (target.to_string(), None),
    }
}

/// clap parser for `NAME/NODE` (both parts required).
pub fn parse_node_target(s: &str) -> Result<NodeTarget, String> {
    match s.split_once('/') {
        Some((cluster, node)) if !cluster.is_empty() && !node.is_empty() && !node.contains('/') => {
            Ok(NodeTarget {
                cluster: cluster.to_string(),
                node: node.to_string(),
            })
        }
        _ => Err(format!("expected CLUSTER/NODE, e.g. demo/node2, got `{s}`")),
    }
}

/// A node of a cluster, `NAME/NODE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTarget {
    /// Cluster name.
    pub cluster: String,
    /// Process (or group) name.
    pub node: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn targets() {
        assert_eq!(split_target("demo"), ("demo".into(), None));
        assert_eq!(
            split_target("demo/node2"),
            ("demo".into(), Some("node2".into()))
        );
        assert_eq!(split_target("demo/"), ("demo".into(), None));
        assert!(parse_node_target("demo").is_err());
        assert!(parse_node_target("demo/").is_err());
        assert!(parse_node_target("/x").is_err());
        assert_eq!(
            parse_node_target("demo/node1a"),
            Ok(NodeTarget {
                cluster: "demo".into(),
                node: "node1a".into()
            })
        );
    }

    #[test]
    fn global_output_flag_anywhere() {
        let cli =
            Cli::try_parse_from(["mqctl", "queue", "stat", "demo", "-o", "json"]).expect("parses");
        assert_eq!(cli.output, Some(Format::Json));
        let cli =
            Cli::try_parse_from(["mqctl", "--output", "plain", "cluster", "ls"]).expect("parses");
        assert_eq!(cli.output, Some(Format::Plain));
    }
}
