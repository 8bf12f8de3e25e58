//! `mqctl link ...`: arguments.

use clap::{Args, Subcommand};
use mq_shared::defaults::NETWORK_TTL;

use crate::args::cluster::ClusterName;

/// `mqctl link VERB`.
#[derive(Debug, Subcommand)]
pub enum LinkCommand {
    /// Add a network connector: FROM forwards to TO (both ways with --duplex).
    ///
    /// The connector is created on FROM's serving node with the URI
    /// static:(tcp://127.0.0.1:PORT)?networkTTL=N[&duplex=true], or
    /// static:(masterslave:(tcp://..,tcp://..))?... when TO is a master/slave pair, and recorded
    /// in the manifest so that `cluster start` re-creates it.
    #[command(after_help = "\
Examples:
  mqctl link add demo node1 node3
  mqctl link add demo node1 node3 --duplex --ttl 2")]
    Add(LinkAddArgs),

    /// List the links of a cluster with their state.
    #[command(
        visible_alias = "list",
        after_help = "\
Examples:
  mqctl link ls demo"
    )]
    Ls(ClusterName),

    /// Remove a link: delete the connector on its FROM node and from the manifest.
    #[command(after_help = "\
Examples:
  mqctl link rm demo node1-node3")]
    Rm(LinkRmArgs),
}

/// `mqctl link add`.
#[derive(Debug, Args)]
pub struct LinkAddArgs {
    /// Cluster name.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Broker that forwards (a node, or an HA group).
    #[arg(value_name = "FROM")]
    pub from: String,
    /// Broker it forwards to.
    #[arg(value_name = "TO")]
    pub to: String,
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
    /// Cluster name.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Link name, as `link ls` shows it (e.g. node1-node2).
    #[arg(value_name = "LINK")]
    pub link: String,
}
