//! `mqctl scheduled ls`: the scheduled messages of every node asked, in one table.

use mq_shared::ctl::{ScheduledReport, ScheduledRow};

use crate::args::topic::NodesArgs;
use crate::commands::Context;
use crate::commands::nodes::{self, Gathered};
use crate::error::{Outcome, Result};
use crate::output::{self, Table};

/// Scheduled messages asked of each node (the admin API's own default).
const PER_NODE: usize = mq_shared::defaults::SCHEDULED_LIST_LIMIT;

/// Runs `scheduled ls`.
pub async fn run(ctx: &Context, args: NodesArgs) -> Result<Outcome> {
    let Gathered { data, down, tally } =
        nodes::gather(ctx, &args, |c| async move { c.scheduled(PER_NODE).await }).await?;
    let mut report = ScheduledReport {
        scheduled: Vec::new(),
        down,
    };
    for (node, list) in data {
        if list.truncated {
            output::warn(&format!(
                "{node} holds more than {PER_NODE} scheduled messages; the first {PER_NODE} are shown"
            ));
        }
        report
            .scheduled
            .extend(list.scheduled.into_iter().map(|m| ScheduledRow {
                node: node.clone(),
                message: m,
            }));
    }
    report.scheduled.sort_by(|a, b| {
        (a.message.next_fire_ms, &a.message.id).cmp(&(b.message.next_fire_ms, &b.message.id))
    });
    nodes::print(ctx, &report, &report.down, |report| {
        let now_ms = crate::home::now_ms();
        let mut table = Table::new(
            vec![
                "node",
                "id",
                "destination",
                "next fire",
                "in",
                "repeats left",
                "period",
                "cron",
                "size",
                "persistent",
            ],
            "No scheduled messages.",
        )
        .numeric([5, 8])
        .defaults([
            "node",
            "id",
            "destination",
            "in",
            "repeats left",
            "cron",
            "size",
        ]);
        for r in &report.scheduled {
            let m = &r.message;
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(m.next_fire_ms);
            table.push(vec![
                r.node.clone(),
                m.id.clone(),
                m.destination.clone(),
                humantime::format_rfc3339_seconds(at).to_string(),
                if m.next_fire_ms <= now_ms {
                    "due".to_string()
                } else {
                    output::uptime(Some(m.next_fire_ms - now_ms))
                },
                m.repeats_left.to_string(),
                if m.period_ms > 0 {
                    format!("{}ms", m.period_ms)
                } else {
                    "-".to_string()
                },
                output::opt(m.cron.clone()),
                m.size.to_string(),
                output::yes_no(m.persistent),
            ]);
        }
        table
    })?;
    tally.outcome()
}
