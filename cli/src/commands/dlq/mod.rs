//! `mqctl dlq retry`: dead letters back where they came from. The arguments live here with
//! the command (the noun has one verb).

mod retry;

use clap::{Args, Subcommand};
use mq_shared::defaults::DLQ_NAME;

use super::Context;
use crate::args::queue::UrlArgs;
use crate::error::{Outcome, Result};

/// `mqctl dlq VERB`.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Move dead-lettered messages back to the destination they came from (their
    /// original-destination header), or to --to.
    ///
    /// Each message keeps its id, headers and body and starts its delivery count again; the
    /// node stores it in its new destination before it deletes it from the dead-letter queue.
    /// --id names messages (as `mqctl queue browse NAME DLQ` shows them); --all takes every
    /// message waiting there when the command starts (asks first; --yes when not on a
    /// terminal), leaving those in flight to a consumer of the dead-letter queue. Exit code 0
    /// when every message was moved, else that of the failures (66 for an unknown id).
    #[command(
        override_usage = "mqctl dlq retry NAME[/NODE] (--id ID... | --all) [--to DEST] [--dlq QUEUE] [--yes]\n       mqctl dlq retry --url URL [--token-file F] (--id ID... | --all) [OPTIONS]",
        after_help = "\
Examples:
  mqctl queue browse demo DLQ
  mqctl dlq retry demo --id 'ID:node1-1a2312a1eabc866-7'
  mqctl dlq retry demo/node2 --all --yes
  mqctl dlq retry demo --all --to /queue/orders.replay
  mqctl dlq retry --url http://127.0.0.1:8161 --token-file admin.token --all --yes -o json"
    )]
    Retry(RetryArgs),
}

/// `mqctl dlq retry`.
#[derive(Debug, Args)]
pub struct RetryArgs {
    /// Cluster (its first node, or that group's master) or one node: demo, demo/node2.
    #[arg(
        value_name = "NAME[/NODE]",
        required_unless_present = "url",
        conflicts_with = "url"
    )]
    pub target: Option<String>,
    #[command(flatten)]
    pub url: UrlArgs,
    /// Id of a message to retry; repeat for several.
    #[arg(
        long = "id",
        value_name = "ID",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub ids: Vec<String>,
    /// Retry every message waiting in the dead-letter queue.
    #[arg(long)]
    pub all: bool,
    /// Send the messages here instead of their original destination: /queue/NAME,
    /// /topic/NAME, or a queue name.
    #[arg(long, value_name = "DEST")]
    pub to: Option<String>,
    /// The dead-letter queue, when the node was started with another --dlq.
    #[arg(long, value_name = "QUEUE", default_value = DLQ_NAME)]
    pub dlq: String,
    /// With --all: do it without asking (needed when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// Runs one `dlq` verb.
pub async fn run(ctx: &Context, command: DlqCommand) -> Result<Outcome> {
    match command {
        DlqCommand::Retry(args) => retry::run(ctx, args).await,
    }
}
