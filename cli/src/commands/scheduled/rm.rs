//! `mqctl scheduled rm`: delete one scheduled message, on whichever node holds it.

use mq_shared::api::codes;
use mq_shared::ctl::UnscheduleReport;

use super::RmArgs;
use crate::commands::Context;
use crate::commands::nodes;
use crate::error::{CliError, Outcome, Result};

/// Runs `scheduled rm`.
pub async fn run(ctx: &Context, args: RmArgs) -> Result<Outcome> {
    let (clients, _) = nodes::sources(ctx, args.nodes.name.as_deref(), &args.nodes.urls)?;
    // The first "not found" answer, reported if no node holds it.
    let mut missing: Option<CliError> = None;
    let mut failed: Option<CliError> = None;
    for client in &clients {
        match client.unschedule(&args.id).await {
            Ok(answer) => {
                let report = UnscheduleReport {
                    node: client.label().to_string(),
                    id: answer.id,
                };
                ctx.out.report(&report, |r| {
                    format!("Deleted scheduled message {} on {}.", r.id, r.node)
                })?;
                return Ok(Outcome::Complete);
            }
            // A slave holds none; the master of its group answers for it.
            Err(CliError::Api { code, .. }) if code == codes::UNAVAILABLE => {}
            Err(e @ CliError::Api { status: 404, .. }) => {
                missing.get_or_insert(e);
            }
            Err(e) => {
                crate::output::warn(&e.to_string());
                failed.get_or_insert(e);
            }
        }
    }
    Err(failed.or(missing).unwrap_or_else(|| {
        CliError::Unavailable(format!(
            "no master answered for scheduled message {}: start one, or address its group's master",
            args.id
        ))
    }))
}
