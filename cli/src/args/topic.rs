//! `mqctl topic ...` and `mqctl connection ...`: arguments.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// `mqctl topic VERB`.
#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Every topic on every node: subscribers, published, dispatched, forwarded.
    #[command(visible_alias = "list", after_help = NodesArgs::examples("topic ls"))]
    Ls(NodesArgs),
}

/// `mqctl connection VERB`.
#[derive(Debug, Subcommand)]
pub enum ConnectionCommand {
    /// Every open connection on every node: clients and bridges from other brokers.
    #[command(
        visible_alias = "list",
        after_help = "\
Examples:
  mqctl connection ls demo
  mqctl connection ls demo -o wide
  mqctl connection ls --url http://10.0.0.5:8161 --token-file admin.token"
    )]
    Ls(NodesArgs),
}

/// `NAME[/NODE]`, or `--url URL...`: the nodes a read goes to.
#[derive(Debug, Clone, Args)]
pub struct NodesArgs {
    /// Cluster (all its nodes) or one node or group of it: demo, demo/node2.
    #[arg(
        value_name = "NAME[/NODE]",
        required_unless_present = "url",
        conflicts_with = "url"
    )]
    pub name: Option<String>,
    #[command(flatten)]
    pub urls: NodeUrls,
}

impl NodesArgs {
    /// The examples of `mqctl COMMAND` when these are all it takes: a cluster, one node of it in
    /// JSON, nodes outside any cluster.
    pub fn examples(command: &str) -> String {
        format!(
            "Examples:\n  mqctl {command} demo\n  mqctl {command} demo/node2 -o json\n  mqctl {command} --url http://10.0.0.5:8161 --token-file admin.token"
        )
    }
}

/// `--url URL...` with `--token-file F`, as the reads of many nodes (`queue stat`, the `ls`
/// verbs) word them.
#[derive(Debug, Clone, Args)]
pub struct NodeUrls {
    /// Admin URL of a node outside any cluster; repeat for several.
    #[arg(long, value_name = "URL")]
    pub url: Vec<String>,
    /// File holding the admin token of the --url nodes [env: MQCTL_TOKEN_FILE].
    #[arg(long, value_name = "FILE", env = "MQCTL_TOKEN_FILE", hide_env = true)]
    pub token_file: Option<PathBuf>,
}
