//! `mqctl queue stat [NAME | --url URL...]`: every queue on every node in one table.
//!
//! All nodes are asked at once with a short timeout. A slave (which has no queues while it
//! waits for the store) is skipped; a node that does not answer is a row marked `(down)`, a
//! warning on stderr, and exit code 3. With `--watch` the table is redrawn until Ctrl-C.

use std::time::Duration;

use mq_shared::api;
use mq_shared::ctl::{QueueStatReport, QueueStatRow};
use mq_shared::uri::DestinationFilter;

use crate::args::queue::StatArgs;
use crate::client::admin::AdminClient;
use crate::commands::{Context, nodes};
use crate::error::{CliError, Outcome, Result};
use crate::output::{self, Format, Table};

/// Label of the totals row in the node column.
pub const TOTAL: &str = "total";

/// Runs `queue stat`.
pub async fn run(ctx: &Context, args: StatArgs) -> Result<Outcome> {
    let (clients, cluster) = sources(ctx, &args)?;
    let Some(secs) = args.watch else {
        let (report, errors) = collect(&clients, args.queue.as_ref()).await;
        for e in &errors {
            output::warn(&e.to_string());
        }
        print(ctx, &report, clients.len(), false)?;
        return outcome(&report, clients.len(), cluster.as_deref(), errors);
    };
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| CliError::io("could not watch for", "SIGTERM", e))?;
    // On a terminal, frames are drawn in place on the alternate screen, restored when this
    // guard drops: at Ctrl-C, SIGTERM, an error or a closed pipe alike.
    let screen = if ctx.out.is_tty() && ctx.out.is_table() {
        Some(output::Screen::enter()?)
    } else {
        None
    };
    loop {
        let (report, _) = collect(&clients, args.queue.as_ref()).await;
        match &screen {
            Some(screen) => screen.frame(&frame(ctx, &report, clients.len(), secs)?)?,
            None => print(ctx, &report, clients.len(), true)?,
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(secs)) => {}
            _ = &mut interrupt => return Ok(Outcome::Complete),
            _ = term.recv() => return Ok(Outcome::Complete),
        }
    }
}

/// One `--watch` frame for the alternate screen: a title line, the table cut to the screen's
/// height, and a last line saying how many rows did not fit.
fn frame(ctx: &Context, report: &QueueStatReport, nodes_asked: usize, secs: u64) -> Result<String> {
    let table = titled(stat_table(report, nodes_asked), nodes_asked);
    // Title, the table's top, header, separator and bottom lines, and the notice line.
    let rows = output::terminal_height().saturating_sub(6).max(1);
    let rendered = ctx.out.render(&table, Some(rows))?;
    let stamp = crate::home::now_rfc3339();
    let mut text = format!(
        "{stamp}  every {secs} s (Ctrl-C to stop)\n{}",
        rendered.text
    );
    if rendered.omitted > 0 {
        text.push_str(&format!(
            "… {} more rows do not fit the screen; narrow with --queue or enlarge the window",
            rendered.omitted
        ));
    }
    Ok(text)
}

/// The table with its empty sentence for `nodes_asked` nodes.
fn titled(mut table: Table, nodes_asked: usize) -> Table {
    table.empty = if nodes_asked == 1 {
        "No queues on this node.".to_string()
    } else {
        format!("No queues on any of the {nodes_asked} nodes.")
    };
    table
}

/// The nodes to ask, in display order, and the cluster name if any.
fn sources(ctx: &Context, args: &StatArgs) -> Result<(Vec<AdminClient>, Option<String>)> {
    nodes::sources(ctx, args.name.as_deref(), &args.urls)
}

/// Asks every node at once; rows sorted by queue, then node in the order given.
async fn collect(
    clients: &[AdminClient],
    filter: Option<&DestinationFilter>,
) -> (QueueStatReport, Vec<CliError>) {
    let answers = nodes::ask_all(clients, |c| async move { c.queues().await }).await;
    let (data, down, errors) = nodes::partition(clients, answers);
    let mut queues: Vec<QueueStatRow> = data
        .into_iter()
        .flat_map(|(node, list)| {
            list.queues
                .into_iter()
                .filter(|q| filter.is_none_or(|f| f.matches(&q.name)))
                .map(move |q| row(&node, q))
        })
        .collect();
    // Stable: a queue's rows stay in the order the nodes were asked.
    queues.sort_by(|a, b| a.queue.cmp(&b.queue));
    (QueueStatReport { queues, down }, errors)
}

fn row(node: &str, q: api::QueueStats) -> QueueStatRow {
    QueueStatRow {
        node: node.to_string(),
        queue: q.name,
        depth: q.depth,
        producers: q.producers,
        consumers: q.consumers,
        enqueued: q.enqueued,
        dequeued: q.dequeued,
        forwarded: q.forwarded,
        inflight: q.inflight,
        expired: q.expired,
        dead_lettered: q.dead_lettered,
        bytes: q.bytes,
        in_memory: q.in_memory,
    }
}

/// Header of the table and plain output.
pub const HEADER: [&str; 13] = [
    "node",
    "queue",
    "depth",
    "producers",
    "consumers",
    "enqueued",
    "dequeued",
    "forwarded",
    "in-flight",
    "expired",
    "dead-lettered",
    "bytes",
    "in-memory",
];

/// How many columns, from the first, a table shows without `--columns` or `-o wide`: they fit
/// 80 columns.
const DEFAULT_COLUMNS: usize = 7;

/// A row's counters, in the order of [`HEADER`] after node and queue.
fn counters(r: &QueueStatRow) -> [u64; 11] {
    [
        r.depth,
        r.producers,
        r.consumers,
        r.enqueued,
        r.dequeued,
        r.forwarded,
        r.inflight,
        r.expired,
        r.dead_lettered,
        r.bytes,
        r.in_memory,
    ]
}

fn cells(node: &str, queue: &str, counters: [u64; 11]) -> Vec<String> {
    let mut cells = vec![node.to_string(), queue.to_string()];
    cells.extend(counters.iter().map(u64::to_string));
    cells
}

/// The rows of `report` as a table: each queue's rows, then its totals row when more than one
/// node was asked, then one `(down)` row per node that did not answer.
pub fn stat_table(report: &QueueStatReport, nodes_asked: usize) -> Table {
    let mut table = Table::new(HEADER.to_vec(), "No queues.")
        .numeric(2..13)
        .defaults(HEADER[..DEFAULT_COLUMNS].iter().copied());
    let mut i = 0;
    while i < report.queues.len() {
        let queue = &report.queues[i].queue;
        let group: Vec<&QueueStatRow> = report.queues[i..]
            .iter()
            .take_while(|r| r.queue == *queue)
            .collect();
        for r in &group {
            table.push(cells(&r.node, &r.queue, counters(r)));
        }
        if nodes_asked > 1 {
            let mut total = [0; 11];
            for r in &group {
                for (sum, n) in total.iter_mut().zip(counters(r)) {
                    *sum += n;
                }
            }
            table.push(cells(TOTAL, queue, total));
        }
        i += group.len();
    }
    nodes::push_down(&mut table, &report.down);
    table
}

fn print(
    ctx: &Context,
    report: &QueueStatReport,
    nodes_asked: usize,
    watching: bool,
) -> Result<()> {
    match ctx.out.format() {
        Format::Json if watching => output::write_stdout(&(output::to_json(report, false) + "\n")),
        Format::Json => ctx.out.json(report),
        _ => {
            let table = titled(stat_table(report, nodes_asked), nodes_asked);
            let rendered = ctx.out.render(&table, None)?;
            if watching {
                output::write_stdout(&format!("{}\n", rendered.text))?;
            } else {
                output::write_stdout(&rendered.text)?;
            }
            if let Some(notice) = rendered.notice() {
                output::note(&notice);
            }
            Ok(())
        }
    }
}

/// Complete when every node answered; partial when some did not; an error when none did.
fn outcome(
    report: &QueueStatReport,
    asked: usize,
    cluster: Option<&str>,
    errors: Vec<CliError>,
) -> Result<Outcome> {
    nodes::outcome(report.down.len(), asked, cluster, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(node: &str, queue: &str, depth: u64) -> QueueStatRow {
        QueueStatRow {
            node: node.into(),
            queue: queue.into(),
            depth,
            enqueued: depth * 2,
            bytes: depth * 100,
            ..QueueStatRow::default()
        }
    }

    #[test]
    fn totals_follow_each_queue_and_down_rows_come_last() {
        let report = QueueStatReport {
            queues: vec![r("node1", "a", 1), r("node3", "a", 4), r("node1", "b", 2)],
            down: vec!["node2".into()],
        };
        let table = stat_table(&report, 3);
        let firsts: Vec<(&str, &str, &str)> = table
            .rows
            .iter()
            .map(|c| (c[0].as_str(), c[1].as_str(), c[2].as_str()))
            .collect();
        assert_eq!(
            firsts,
            [
                ("node1", "a", "1"),
                ("node3", "a", "4"),
                ("total", "a", "5"),
                ("node1", "b", "2"),
                ("total", "b", "2"),
                ("node2", "(down)", "-"),
            ]
        );
        assert_eq!(table.rows[2][5], "10", "enqueued summed");
        assert_eq!(table.rows[2][11], "500", "bytes summed");
        assert!(table.rows.iter().all(|row| row.len() == HEADER.len()));
    }

    #[test]
    fn one_node_has_no_totals() {
        let report = QueueStatReport {
            queues: vec![r("node1", "a", 1)],
            down: vec![],
        };
        assert_eq!(stat_table(&report, 1).rows.len(), 1);
    }

    #[test]
    fn plain_output_is_one_row_per_line() {
        let report = QueueStatReport {
            queues: vec![r("node1", "a", 1), r("node2", "a", 2)],
            down: vec![],
        };
        let text = output::render_plain(&stat_table(&report, 2));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("node\tqueue\tdepth\tproducers"));
        assert!(lines[3].starts_with("total\ta\t3\t"));
    }

    #[test]
    fn exit_outcomes() {
        let all = QueueStatReport::default();
        assert_eq!(
            outcome(&all, 3, Some("c"), vec![]).ok(),
            Some(Outcome::Complete)
        );
        let some = QueueStatReport {
            queues: vec![],
            down: vec!["node2".into()],
        };
        assert_eq!(
            outcome(&some, 3, Some("c"), vec![]).ok(),
            Some(Outcome::Partial)
        );
        let none = QueueStatReport {
            queues: vec![],
            down: vec!["node1".into()],
        };
        assert!(matches!(
            outcome(&none, 1, Some("c"), vec![]),
            Err(CliError::NoneAnswered { .. })
        ));
    }
}
