//! `mqctl queue purge NAME[/NODE] QUEUE` (remove every message of a queue on one node) and
//! `mqctl queue delete NAME[/NODE] QUEUE` (delete the queue with its messages): one flow, which
//! asks first (`--yes` when not on a terminal).

use mq_shared::ctl::{DeleteReport, PurgeReport};

use crate::args::queue::PurgeArgs;
use crate::commands::Context;
use crate::error::{Outcome, Result};
use crate::output;

/// What becomes of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// `queue purge`: its messages go, the queue stays.
    Purge,
    /// `queue delete`: the queue goes with its messages.
    Delete,
}

/// Runs `queue purge` or `queue delete`.
pub async fn run(ctx: &Context, args: PurgeArgs, removal: Removal) -> Result<Outcome> {
    let (client, queue) = super::resolve(ctx, &args.at).await?;
    let node = client.label().to_string();
    let question = match removal {
        Removal::Purge => format!("Purge queue {queue} on {node}: remove every waiting message?"),
        Removal::Delete => format!("Delete queue {queue} on {node} with its messages?"),
    };
    output::confirm(&question, args.yes)?;
    let answer = match removal {
        Removal::Purge => client.purge(&queue).await?,
        Removal::Delete => client.delete_queue(&queue).await?,
    };
    let (queue, removed) = (answer.queue, answer.removed);
    let plural = if removed == 1 { "" } else { "s" };
    let sentence = match removal {
        Removal::Purge => format!("Purged {removed} message{plural} from queue {queue} on {node}."),
        Removal::Delete => {
            format!("Deleted queue {queue} on {node} ({removed} message{plural} removed).")
        }
    };
    // The two reports have the same fields; each verb has its own type in `-o json`'s contract.
    match removal {
        Removal::Purge => {
            let report = PurgeReport {
                node,
                queue,
                removed,
            };
            ctx.out.report(&report, |_| sentence)?;
        }
        Removal::Delete => {
            let report = DeleteReport {
                node,
                queue,
                removed,
            };
            ctx.out.report(&report, |_| sentence)?;
        }
    }
    Ok(Outcome::Complete)
}
