//! `mqctl queue browse NAME[/NODE] QUEUE`: show messages without consuming them.

use mq_shared::ctl::BrowseReport;

use crate::args::queue::BrowseArgs;
use crate::commands::Context;
use crate::error::{Outcome, Result};
use crate::output::{self, Format, Table};

/// Longest body shown in a table cell.
const BODY_PREVIEW: usize = 60;

/// Runs `queue browse`.
pub async fn run(ctx: &Context, args: BrowseArgs) -> Result<Outcome> {
    let (client, queue) = super::resolve(ctx, &args.at).await?;
    let limit = match ctx.out.limit() {
        None => output::DEFAULT_TABLE_LIMIT,
        Some(0) => u32::MAX as usize,
        Some(n) => n,
    };
    let answer = client.browse(&queue, limit).await?;
    if answer.messages.len() == limit
        && let Ok(stats) = client.queue(&queue).await
        && stats.depth > limit as u64
    {
        output::note(&format!(
            "Showing the first {limit} of {} messages of queue {queue}; --limit N shows more, --limit 0 all.",
            stats.depth
        ));
    }
    let report = BrowseReport {
        node: client.label().to_string(),
        queue,
        messages: answer.messages,
    };
    if ctx.out.format() == Format::Json {
        ctx.out.json(&report)?;
        return Ok(Outcome::Complete);
    }
    let mut table = Table::new(
        vec![
            "#",
            "message-id",
            "size",
            "persistent",
            "redeliveries",
            "in-flight",
            "headers",
            "body",
        ],
        format!("Queue {} on {} has no messages.", report.queue, report.node),
    )
    .numeric([0, 2, 4])
    .defaults(["#", "message-id", "size", "body"]);
    for (i, m) in report.messages.iter().enumerate() {
        let headers = m
            .headers
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        table.push(vec![
            (i + 1).to_string(),
            m.message_id.clone(),
            m.size.to_string(),
            output::yes_no(m.persistent),
            m.redeliveries.to_string(),
            output::yes_no(m.inflight),
            headers,
            preview(&m.body),
        ]);
    }
    ctx.out.table(&table)?;
    Ok(Outcome::Complete)
}

/// The body on one line, cut to [`BODY_PREVIEW`] characters.
fn preview(body: &str) -> String {
    let one_line: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() > BODY_PREVIEW {
        let cut: String = one_line.chars().take(BODY_PREVIEW - 1).collect();
        format!("{cut}…")
    } else {
        one_line
    }
}

#[cfg(test)]
mod tests {
    use super::preview;

    #[test]
    fn previews_fit_one_line() {
        assert_eq!(preview("a\nb\tc"), "a b c");
        let long = "x".repeat(100);
        assert_eq!(preview(&long).chars().count(), 60);
        assert!(preview(&long).ends_with('…'));
    }
}
