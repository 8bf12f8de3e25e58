//! `mqctl queue purge NAME[/NODE] QUEUE`: remove every message of a queue on one node.

use mq_shared::ctl::PurgeReport;

use crate::args::queue::PurgeArgs;
use crate::commands::Context;
use crate::error::{Outcome, Result};

/// Runs `queue purge`.
pub async fn run(ctx: &Context, args: PurgeArgs) -> Result<Outcome> {
    let (client, queue) = super::resolve(ctx, &args.at).await?;
    crate::output::confirm(
        &format!(
            "Purge queue {queue} on {}: remove every waiting message?",
            client.label()
        ),
        args.yes,
    )?;
    let answer = client.purge(&queue).await?;
    let report = PurgeReport {
        node: client.label().to_string(),
        queue: answer.queue,
        removed: answer.removed,
    };
    ctx.out.report(&report, |r| {
        let plural = if r.removed == 1 { "" } else { "s" };
        format!(
            "Purged {} message{plural} from queue {} on {}.",
            r.removed, r.queue, r.node
        )
    })?;
    Ok(Outcome::Complete)
}
