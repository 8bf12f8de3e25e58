//! `mqctl topic ls` and `mqctl connection ls`: topics and connections of every node asked, in
//! one table, with the nodes that did not answer marked down (exit 3).

use mq_shared::api::ConnectionKind;
use mq_shared::ctl::{ConnectionReport, ConnectionRow, TopicReport, TopicRow};

use super::Context;
use super::nodes::{self, Answer};
use crate::args::topic::{ConnectionCommand, NodesArgs, TopicCommand};
use crate::client::admin::AdminClient;
use crate::error::{CliError, Outcome, Result};
use crate::output::{self, Format, Table};

/// Marker in the second column of a node that did not answer.
const DOWN: &str = "(down)";

/// Runs one `topic` verb.
pub async fn run_topic(ctx: &Context, command: TopicCommand) -> Result<Outcome> {
    match command {
        TopicCommand::Ls(args) => topics(ctx, args).await,
    }
}

/// Runs one `connection` verb.
pub async fn run_connection(ctx: &Context, command: ConnectionCommand) -> Result<Outcome> {
    match command {
        ConnectionCommand::Ls(args) => connections(ctx, args).await,
    }
}

pub(crate) fn clients(
    ctx: &Context,
    args: &NodesArgs,
) -> Result<(Vec<AdminClient>, Option<String>)> {
    nodes::sources(
        ctx,
        args.name.as_deref(),
        &args.url,
        args.token_file.as_deref(),
    )
}

/// Splits answers into rows per node, down nodes and their errors.
pub(crate) fn sort_out<T>(
    clients: &[AdminClient],
    answers: Vec<Answer<T>>,
) -> (Vec<(String, T)>, Vec<String>, Vec<CliError>) {
    let mut data = Vec::new();
    let mut down = Vec::new();
    let mut errors = Vec::new();
    for (client, answer) in clients.iter().zip(answers) {
        match answer {
            Answer::Data(d) => data.push((client.label().to_string(), d)),
            Answer::Standby => {}
            Answer::Down(e) => {
                output::warn(&e.to_string());
                down.push(client.label().to_string());
                errors.push(e);
            }
        }
    }
    (data, down, errors)
}

async fn topics(ctx: &Context, args: NodesArgs) -> Result<Outcome> {
    let (clients, cluster) = clients(ctx, &args)?;
    let answers = nodes::ask_all(&clients, |c| async move { c.topics().await }).await;
    let (data, down, errors) = sort_out(&clients, answers);
    let mut rows: Vec<(usize, TopicRow)> = Vec::new();
    for (i, (node, list)) in data.into_iter().enumerate() {
        rows.extend(list.topics.into_iter().map(|t| {
            (
                i,
                TopicRow {
                    node: node.clone(),
                    topic: t.name,
                    subscribers: t.subscribers,
                    enqueued: t.enqueued,
                    dispatched: t.dispatched,
                    forwarded: t.forwarded,
                },
            )
        }));
    }
    rows.sort_by(|(ia, a), (ib, b)| a.topic.cmp(&b.topic).then(ia.cmp(ib)));
    let report = TopicReport {
        topics: rows.into_iter().map(|(_, r)| r).collect(),
        down,
    };
    if ctx.out.format() == Format::Json {
        ctx.out.json(&report)?;
    } else {
        let mut table = Table::new(
            vec![
                "node",
                "topic",
                "subscribers",
                "enqueued",
                "dispatched",
                "forwarded",
            ],
            "No topics.",
        )
        .numeric(2..6);
        for t in &report.topics {
            table.push(vec![
                t.node.clone(),
                t.topic.clone(),
                t.subscribers.to_string(),
                t.enqueued.to_string(),
                t.dispatched.to_string(),
                t.forwarded.to_string(),
            ]);
        }
        push_down(&mut table, &report.down);
        ctx.out.table(&table)?;
    }
    nodes::outcome(report.down.len(), clients.len(), cluster.as_deref(), errors)
}

async fn connections(ctx: &Context, args: NodesArgs) -> Result<Outcome> {
    let (clients, cluster) = clients(ctx, &args)?;
    let answers = nodes::ask_all(&clients, |c| async move { c.connections().await }).await;
    let (data, down, errors) = sort_out(&clients, answers);
    let mut report = ConnectionReport {
        connections: Vec::new(),
        down,
    };
    for (node, list) in data {
        let mut conns = list.connections;
        conns.sort_by_key(|c| c.id);
        report
            .connections
            .extend(conns.into_iter().map(|c| ConnectionRow {
                node: node.clone(),
                id: c.id,
                remote: c.remote,
                kind: c.kind,
                version: c.version,
                broker: c.broker,
                subscriptions: c.subscriptions,
                since_ms: c.since_ms,
            }));
    }
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
                "remote",
                "kind",
                "version",
                "broker",
                "subscriptions",
                "age",
            ],
            "No connections.",
        )
        .numeric([1, 6])
        .defaults(["node", "id", "remote", "kind", "version", "broker", "age"]);
        for c in &report.connections {
            table.push(vec![
                c.node.clone(),
                c.id.to_string(),
                c.remote.clone(),
                match c.kind {
                    ConnectionKind::Client => "client".to_string(),
                    ConnectionKind::Bridge => "bridge".to_string(),
                },
                if c.version.is_empty() {
                    "-".to_string()
                } else {
                    c.version.clone()
                },
                output::opt(c.broker.clone()),
                c.subscriptions.to_string(),
                output::uptime(Some(now_ms.saturating_sub(c.since_ms))),
            ]);
        }
        push_down(&mut table, &report.down);
        ctx.out.table(&table)?;
    }
    nodes::outcome(report.down.len(), clients.len(), cluster.as_deref(), errors)
}

/// One `(down)` row per node that did not answer.
pub(crate) fn push_down(table: &mut Table, down: &[String]) {
    for node in down {
        let mut cells = vec![node.clone(), DOWN.to_string()];
        cells.extend(std::iter::repeat_n(
            "-".to_string(),
            table.header.len().saturating_sub(2),
        ));
        table.push(cells);
    }
}
