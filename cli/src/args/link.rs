//! `mqctl link ...`: arguments.

use clap::{Args, Subcommand};
use mq_shared::defaults::NETWORK_TTL;

use crate::args::cluster::ClusterOrUrls;

/// `mqctl link VERB`.
#[derive(Debug, Subcommand)]
pub enum LinkCommand {
    /// Add a network connector: FROM forwards to TO (both ways with --duplex).
    ///
    /// The connector is created on FROM's serving node with the URI
    /// static:(tcp://127.0.0.1:PORT)?networkTTL=N[&duplex=true], or
    /// static:(masterslave:(tcp://..,tcp://..))?... when TO is a master/slave pair, and recorded
    /// in the manifest so that `cluster start` re-creates it.
    ///
    /// With --url: a connector on the node at URL to the broker at the STOMP URI TO
    /// (static:(TO)?networkTTL=N[&duplex=true]), named --name or `link-HOST-PORT`.
    #[command(
        override_usage = "mqctl link add NAME FROM TO [--duplex] [--ttl N]\n       mqctl link add --url URL [--token-file F] TO-STOMP-URI [--name LINK] [--duplex] [--ttl N]",
        after_help = "\
Examples:
  mqctl link add demo node1 node3
  mqctl link add demo node1 node3 --duplex --ttl 2
  mqctl link add --url http://127.0.0.1:8161 tcp://10.0.0.6:61613 --name to-b"
    )]
    Add(LinkAddArgs),

    /// List the links of a cluster with their state.
    ///
    /// With --url (repeatable): every network connector of those nodes, peer by peer.
    #[command(
        visible_alias = "list",
        override_usage = ClusterOrUrls::usage("link ls"),
        after_help = "\
Examples:
  mqctl link ls demo
  mqctl link ls --url http://127.0.0.1:8161"
    )]
    Ls(ClusterOrUrls),

    /// Remove a link: delete the connector on its FROM node and from the manifest.
    ///
    /// With --url: delete the connector LINK of the node at URL.
    #[command(
        override_usage = "mqctl link rm NAME LINK\n       mqctl link rm --url URL [--token-file F] LINK",
        after_help = "\
Examples:
  mqctl link rm demo node1-node3
  mqctl link rm --url http://127.0.0.1:8161 to-b"
    )]
    Rm(LinkRmArgs),
}

/// `mqctl link add`.
#[derive(Debug, Args)]
pub struct LinkAddArgs {
    /// Cluster name, NAME FROM TO; with --url only TO, a STOMP URI (tcp://HOST:PORT).
    #[arg(value_name = "NAME FROM TO", num_args = 1..=3, required = true)]
    pub positional: Vec<String>,
    /// Admin URL of a node outside any cluster: the connector goes on it.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// File holding that node's admin token [env: MQCTL_TOKEN_FILE].
    #[arg(long, value_name = "FILE", env = "MQCTL_TOKEN_FILE", hide_env = true)]
    pub token_file: Option<std::path::PathBuf>,
    /// With --url: the connector's name [default: link-HOST-PORT of TO].
    #[arg(long = "name", value_name = "LINK", requires = "url")]
    pub link_name: Option<String>,
    /// Carry messages from TO back to FROM on the same connection.
    #[arg(long)]
    pub duplex: bool,
    /// networkTTL: how many hops messages and demand may travel.
    #[arg(long, value_name = "N", default_value_t = NETWORK_TTL, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub ttl: u32,
}

/// `mqctl link rm`.
#[derive(Debug, Args)]
pub struct LinkRmArgs {
    /// Cluster name and link name as `link ls` shows it (e.g. demo node1-node2); with --url
    /// only the link name.
    #[arg(value_name = "NAME LINK", num_args = 1..=2, required = true)]
    pub positional: Vec<String>,
    /// Admin URL of a node outside any cluster.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// File holding that node's admin token [env: MQCTL_TOKEN_FILE].
    #[arg(long, value_name = "FILE", env = "MQCTL_TOKEN_FILE", hide_env = true)]
    pub token_file: Option<std::path::PathBuf>,
}
