//! `mqctl sub ...`: arguments (durable topic subscriptions).

use clap::{Args, Subcommand};

use super::queue::{QueueTarget, UrlArgs};
use super::topic::NodesArgs;

/// `mqctl sub VERB`.
#[derive(Debug, Subcommand)]
pub enum SubCommand {
    /// Every durable topic subscription on every node: client id, name, topic, selector,
    /// whether it is connected, its backlog.
    #[command(visible_alias = "list", after_help = NodesArgs::examples("sub ls"))]
    Ls(NodesArgs),
    /// Remove a durable subscription on one node, with its backlog (asks first; --yes when
    /// not on a terminal). The node refuses while a connection consumes it.
    #[command(
        override_usage = "mqctl sub rm NAME[/NODE] CLIENT_ID SUBSCRIPTION [--yes]\n       mqctl sub rm --url URL CLIENT_ID SUBSCRIPTION [--yes]",
        after_help = "\
Examples:
  mqctl sub rm demo billing invoices
  mqctl sub rm demo/node2 billing invoices --yes"
    )]
    Rm(RmArgs),
}

/// `mqctl sub rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// NAME[/NODE] (not with --url), then the subscription's client id and name.
    #[arg(value_name = "ARGS", num_args = 2..=3, required = true)]
    pub args: Vec<String>,
    #[command(flatten)]
    pub url: UrlArgs,
    /// Do it without asking (needed when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
}

impl RmArgs {
    /// Where it goes (as a queue command's target, the client id in the queue's place) and
    /// the subscription's client id and name.
    pub fn split(&self) -> Result<(QueueTarget, String, String), String> {
        let (target, client_id, name) = match (self.url.url.is_some(), &self.args[..]) {
            (true, [c, n]) => (None, c, n),
            (false, [t, c, n]) => (Some(t.clone()), c, n),
            (true, [_, _, _]) => {
                return Err(
                    "with --url give only CLIENT_ID SUBSCRIPTION, not a cluster name".to_string(),
                );
            }
            _ => {
                return Err(
                    "give NAME[/NODE] CLIENT_ID SUBSCRIPTION, or --url URL CLIENT_ID SUBSCRIPTION"
                        .to_string(),
                );
            }
        };
        let at = QueueTarget {
            target: target.or_else(|| Some(client_id.clone())),
            queue: self.url.url.is_none().then(|| client_id.clone()),
            url: self.url.clone(),
        };
        Ok((at, client_id.clone(), name.clone()))
    }
}
