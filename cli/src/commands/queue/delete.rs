//! `mqctl queue delete NAME[/NODE] QUEUE`: delete a queue and its messages on one node.

use mq_shared::ctl::DeleteReport;

use crate::args::queue::PurgeArgs;
use crate::commands::Context;
use crate::error::{Outcome, Result};
use crate::output;

/// Runs `queue delete`.
pub async fn run(ctx: &Context, args: PurgeArgs) -> Result<Outcome> {
    let (client, queue) = super::resolve(ctx, &args.at).await?;
    output::confirm(
        &format!(
            "Delete queue {queue} on {} with its messages?",
            client.label()
        ),
        args.yes,
    )?;
    let answer = client.delete_queue(&queue).await?;
    let report = DeleteReport {
        node: client.label().to_string(),
        queue: answer.queue,
        removed: answer.removed,
    };
    ctx.out.report(&report, |r| {
        let plural = if r.removed == 1 { "" } else { "s" };
        format!(
            "Deleted queue {} on {} ({} message{plural} removed).",
            r.queue, r.node, r.removed
        )
    })?;
    Ok(Outcome::Complete)
}
