//! `mqctl dlq retry NAME[/NODE] (--id ID... | --all) [--to DEST]`: moves dead letters back to
//! their `original-destination` (or `--to`) with the node's move endpoint, one message at a
//! time (`POST /api/v1/queues/{dlq}/messages/{id}/move`).
//!
//! With `--all` the dead-letter queue is browsed in pages and each waiting message moved; the
//! run takes at most as many messages as the queue held when it started, and each id once,
//! so a message that comes straight back (a consumer that rejects it again) or a queue that
//! fills as fast as it empties cannot keep it going. A message the node refuses to move (no
//! `original-destination`, in flight, gone) is reported and the others go on; a node that
//! stops answering ends the run, after printing what was moved.

use std::collections::HashSet;

use mq_shared::api::{MoveRequest, MoveResponse, codes};
use mq_shared::defaults::ADMIN_REQUEST_TIMEOUT;
use serde::Serialize;

use super::RetryArgs;
use crate::client::admin::AdminClient;
use crate::cluster::Cluster;
use crate::commands::Context;
use crate::error::{CliError, Outcome, Result};
use crate::output::{self, Format, Table};

/// Messages browsed per page with `--all`.
const PAGE: usize = 500;

/// `mqctl dlq retry -o json`: what became of each message.
#[derive(Debug, Default, Serialize)]
pub struct RetryReport {
    /// Node label.
    pub node: String,
    /// The dead-letter queue, without `/queue/`.
    pub dlq: String,
    /// Messages moved, with where they went.
    pub moved: Vec<MoveResponse>,
    /// Messages left where they are on purpose (in flight to a consumer of the queue).
    pub skipped: Vec<RetryProblem>,
    /// Messages the node refused to move.
    pub failed: Vec<RetryProblem>,
    /// The node's refusals as errors, one per entry of `failed`, for stderr and the exit code.
    #[serde(skip)]
    errors: Vec<CliError>,
}

/// A message not moved, and why.
#[derive(Debug, Clone, Serialize)]
pub struct RetryProblem {
    /// Message id.
    pub message_id: String,
    /// The node's error code (`not_found`, `conflict`, `bad_request`, ...) or `in_flight`.
    pub code: String,
    /// Why, in words.
    pub message: String,
}

/// Runs `dlq retry`.
pub async fn run(ctx: &Context, args: RetryArgs) -> Result<Outcome> {
    let dlq = args
        .dlq
        .strip_prefix("/queue/")
        .unwrap_or(&args.dlq)
        .to_string();
    if dlq.is_empty() {
        return Err(CliError::Usage("--dlq is empty".to_string()));
    }
    let request = MoveRequest {
        to: args.to.as_deref().map(destination).transpose()?,
    };
    let client = connect(ctx, &args).await?;
    let mut report = RetryReport {
        node: client.label().to_string(),
        dlq: dlq.clone(),
        ..RetryReport::default()
    };
    let outcome = if args.all {
        retry_all(&client, &dlq, &request, args.yes, &mut report).await
    } else {
        retry_ids(&client, &dlq, &args.ids, &request, &mut report).await
    };
    // What was moved is shown even when the node stopped answering half way.
    if outcome.is_ok() || !report.moved.is_empty() {
        print(ctx, &report)?;
    }
    outcome?;
    let mut errors = std::mem::take(&mut report.errors);
    match errors.len() {
        0 => Ok(Outcome::Complete),
        1 => Err(errors.swap_remove(0)),
        _ => Err(CliError::Several(errors)),
    }
}

/// The admin client for `NAME[/NODE]` or `--url`.
async fn connect(ctx: &Context, args: &RetryArgs) -> Result<AdminClient> {
    match (&args.target, &args.url.url) {
        (Some(target), None) => {
            let (name, node) = crate::args::split_target(target);
            Cluster::load(&ctx.home, &name)?
                .serving(node.as_deref(), ADMIN_REQUEST_TIMEOUT)
                .await
        }
        (None, Some(url)) => AdminClient::new(
            crate::commands::queue::url_endpoint(url, args.url.token_file.as_deref())?,
            ADMIN_REQUEST_TIMEOUT,
        ),
        _ => Err(CliError::Usage(
            "give NAME[/NODE] or --url URL, not both".to_string(),
        )),
    }
}

/// `--to`: `/queue/NAME` and `/topic/NAME` as given, a bare name as a queue.
fn destination(to: &str) -> Result<String> {
    let to = to.trim();
    if to.is_empty() {
        return Err(CliError::Usage("--to is empty".to_string()));
    }
    Ok(if to.starts_with('/') {
        to.to_string()
    } else {
        format!("/queue/{to}")
    })
}

/// Moves each message of `ids`.
async fn retry_ids(
    client: &AdminClient,
    dlq: &str,
    ids: &[String],
    request: &MoveRequest,
    report: &mut RetryReport,
) -> Result<()> {
    let mut seen = HashSet::new();
    for id in ids {
        if seen.insert(id.as_str()) {
            move_one(client, dlq, id, request, report).await?;
        }
    }
    Ok(())
}

/// Moves every message waiting in `dlq` when the run starts (after asking).
async fn retry_all(
    client: &AdminClient,
    dlq: &str,
    request: &MoveRequest,
    yes: bool,
    report: &mut RetryReport,
) -> Result<()> {
    let depth = match client.queue(dlq).await {
        Ok(stats) => stats.depth,
        // No such queue: nothing was ever dead-lettered there (or it was emptied and removed).
        Err(CliError::Api { code, .. }) if code == codes::NOT_FOUND => 0,
        Err(e) => return Err(e),
    };
    if depth == 0 {
        return Ok(());
    }
    let whither = match &request.to {
        Some(to) => format!("to {to}"),
        None => "back to its original destination".to_string(),
    };
    let plural = if depth == 1 { "" } else { "s" };
    output::confirm(
        &format!(
            "Retry {depth} message{plural} of queue {dlq} on {}: move each {whither}?",
            client.label()
        ),
        yes,
    )?;
    let budget = usize::try_from(depth).unwrap_or(usize::MAX);
    let mut seen: HashSet<String> = HashSet::new();
    let mut limit = PAGE;
    while seen.len() < budget {
        let page = client.browse(dlq, limit).await?;
        let full = page.messages.len() >= limit;
        let fresh: Vec<_> = page
            .messages
            .into_iter()
            .filter(|m| !seen.contains(&m.message_id))
            .take(budget - seen.len())
            .collect();
        if fresh.is_empty() {
            if !full {
                break;
            }
            // A full page of messages already tried (in flight, refused): look further.
            limit = limit.saturating_add(PAGE);
            continue;
        }
        for m in fresh {
            seen.insert(m.message_id.clone());
            if m.inflight {
                report.skipped.push(RetryProblem {
                    message_id: m.message_id,
                    code: "in_flight".to_string(),
                    message: format!("in flight to a consumer of {dlq}"),
                });
            } else {
                move_one(client, dlq, &m.message_id, request, report).await?;
            }
        }
    }
    Ok(())
}

/// Moves one message; a refusal of that message is recorded, any other failure returned.
async fn move_one(
    client: &AdminClient,
    dlq: &str,
    id: &str,
    request: &MoveRequest,
    report: &mut RetryReport,
) -> Result<()> {
    match client.move_message(dlq, id, request).await {
        Ok(moved) => report.moved.push(moved),
        Err(
            e @ CliError::Api {
                status: 400..=499, ..
            },
        ) => {
            if let CliError::Api { code, message, .. } = &e {
                report.failed.push(RetryProblem {
                    message_id: id.to_string(),
                    code: code.clone(),
                    message: message.clone(),
                });
            }
            report.errors.push(e);
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Prints the report: JSON, or one row per message and a closing sentence on stderr.
fn print(ctx: &Context, report: &RetryReport) -> Result<()> {
    if ctx.out.format() == Format::Json {
        return ctx.out.json(report);
    }
    let mut table = Table::new(
        vec!["message-id", "result", "to", "reason"],
        format!(
            "Queue {} on {} has no messages to retry.",
            report.dlq, report.node
        ),
    )
    // Why a message was not moved is on stderr too; -o wide shows it here.
    .defaults(["message-id", "result", "to"]);
    for m in &report.moved {
        table.push(vec![
            m.message_id.clone(),
            "moved".to_string(),
            m.to.clone(),
            String::new(),
        ]);
    }
    for (result, list) in [("skipped", &report.skipped), ("failed", &report.failed)] {
        for p in list {
            table.push(vec![
                p.message_id.clone(),
                result.to_string(),
                String::new(),
                p.message.clone(),
            ]);
        }
    }
    let tried = report.moved.len() + report.skipped.len() + report.failed.len();
    ctx.out.table(&table)?;
    if tried > 0 {
        let plural = if tried == 1 { "" } else { "s" };
        output::note(&format!(
            "Moved {} of {tried} message{plural} out of {} on {}.",
            report.moved.len(),
            report.dlq,
            report.node
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::destination;

    #[test]
    fn a_bare_name_is_a_queue() {
        assert_eq!(destination("orders").ok().as_deref(), Some("/queue/orders"));
        assert_eq!(destination("/topic/t").ok().as_deref(), Some("/topic/t"));
        assert!(destination(" ").is_err());
    }
}
