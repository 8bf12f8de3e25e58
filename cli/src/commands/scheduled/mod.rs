//! `mqctl scheduled ls` and `mqctl scheduled rm`: the messages nodes hold for scheduled
//! delivery (`AMQ_SCHEDULED_*`). The arguments live here with the commands.

mod ls;
mod rm;

use clap::{Args, Subcommand};

use super::Context;
use crate::args::topic::NodesArgs;
use crate::error::{Outcome, Result};

/// `mqctl scheduled VERB`.
#[derive(Debug, Subcommand)]
pub enum ScheduledCommand {
    /// Every scheduled message on every node, next to fire first: id, destination, next
    /// fire, repeats left, size.
    ///
    /// A slave holds none (its master does); a node that does not answer is marked down
    /// (exit 3 when some did not, 69 when none did).
    #[command(
        visible_alias = "list",
        after_help = "\
Examples:
  mqctl scheduled ls demo
  mqctl scheduled ls demo/node2 -o json
  mqctl scheduled ls --url http://127.0.0.1:8161 --token-file admin.token"
    )]
    Ls(NodesArgs),
    /// Delete a scheduled message: it is never delivered again.
    ///
    /// Every node named is asked in turn until one holds it. Exit code 66 when none does.
    #[command(
        visible_alias = "delete",
        override_usage = "mqctl scheduled rm NAME[/NODE] --id ID\n       mqctl scheduled rm --url URL [--token-file F] --id ID",
        after_help = "\
Examples:
  mqctl scheduled ls demo
  mqctl scheduled rm demo --id 'ID:node1-6e1b2a3c-2f4d-4b1a-9c3e-5d6f7a8b9c0d'
  mqctl scheduled rm --url http://127.0.0.1:8161 --token-file admin.token --id ID -o json"
    )]
    Rm(RmArgs),
}

/// `mqctl scheduled rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    #[command(flatten)]
    pub nodes: NodesArgs,
    /// The scheduled message's id (`mqctl scheduled ls` shows it; each delivered copy
    /// carries it as `scheduledJobId`).
    #[arg(long, value_name = "ID")]
    pub id: String,
}

/// Runs one `scheduled` verb.
pub async fn run(ctx: &Context, command: ScheduledCommand) -> Result<Outcome> {
    match command {
        ScheduledCommand::Ls(args) => ls::run(ctx, args).await,
        ScheduledCommand::Rm(args) => rm::run(ctx, args).await,
    }
}
