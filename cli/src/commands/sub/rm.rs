//! `mqctl sub rm NAME[/NODE] CLIENT_ID SUBSCRIPTION`: remove a durable subscription and its
//! backlog on one node.

use mq_shared::ctl::SubscriptionRemovedReport;

use crate::args::sub::RmArgs;
use crate::commands::Context;
use crate::error::{CliError, Outcome, Result};
use crate::output;

/// Runs `sub rm`.
pub async fn run(ctx: &Context, args: RmArgs) -> Result<Outcome> {
    let (at, client_id, name) = args.split().map_err(CliError::Usage)?;
    if client_id.is_empty() || name.is_empty() {
        return Err(CliError::Usage(
            "the client id and the subscription name may not be empty".to_string(),
        ));
    }
    let (client, _) = crate::commands::queue::resolve(ctx, &at).await?;
    output::confirm(
        &format!(
            "Remove durable subscription {name} of client-id {client_id} on {} with its backlog?",
            client.label()
        ),
        args.yes,
    )?;
    let answer = client.remove_subscription(&client_id, &name).await?;
    let report = SubscriptionRemovedReport {
        node: client.label().to_string(),
        client_id: answer.client_id,
        name: answer.name,
        dropped: answer.dropped,
    };
    ctx.out.report(&report, |r| {
        let plural = if r.dropped == 1 { "" } else { "s" };
        format!(
            "Removed durable subscription {} of client-id {} on {} ({} message{plural} dropped).",
            r.name, r.client_id, r.node, r.dropped
        )
    })?;
    Ok(Outcome::Complete)
}
