//! `mqctl scheduled ls`: the scheduled messages of every node asked, in one table.

use mq_shared::ctl::{ScheduledReport, ScheduledRow};

use crate::args::topic::NodesArgs;
use crate::commands::Context;
use crate::commands::nodes::{self, Answer};
use crate::error::{Outcome, Result};
use crate::output::{self, Format, Table};

/// Scheduled messages asked of each node (the admin API's own default).
const PER_NODE: usize = mq_shared::defaults::SCHEDULED_LIST_LIMIT;

/// Runs `scheduled ls`.
pub async fn run(ctx: &Context, args: NodesArgs) -> Result<Outcome> {
    let (clients, cluster) = nodes::sources(
        ctx,
        args.name.as_deref(),
        &args.url,
        args.token_file.as_deref(),
    )?;
    let answers = nodes::ask_all(&clients, |c| async move { c.scheduled(PER_NODE).await }).await;
    let mut report = ScheduledReport::default();
    let mut errors = Vec::new();
    for (client, answer) in clients.iter().zip(answers) {
        match answer {
            Answer::Data(list) => {
                if list.truncated {
                    output::warn(&format!(
                        "{} holds more than {PER_NODE} scheduled messages; the first {PER_NODE} are shown",
                        client.label()
                    ));
                }
                report
                    .scheduled
                    .extend(list.scheduled.into_iter().map(|m| ScheduledRow {
                        node: client.label().to_string(),
                        message: m,
                    }));
            }
            Answer::Standby => {}
            Answer::Down(e) => {
                output::warn(&e.to_string());
                report.down.push(client.label().to_string());
                errors.push(e);
            }
        }
    }
    report.scheduled.sort_by(|a, b| {
        (a.message.next_fire_ms, &a.message.id).cmp(&(b.message.next_fire_ms, &b.message.id))
    });
    if ctx.out.format() == Format::Json {
        ctx.out.json(&report)?;
    } else {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
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
        for node in &report.down {
            let mut cells = vec![node.clone(), "(down)".to_string()];
            cells.extend(std::iter::repeat_n("-".to_string(), table.header.len() - 2));
            table.push(cells);
        }
        ctx.out.table(&table)?;
    }
    nodes::outcome(report.down.len(), clients.len(), cluster.as_deref(), errors)
}
