//! `mqctl topic ls` and `mqctl connection ls`: topics and connections of every node asked, in
//! one table, with the nodes that did not answer marked down (exit 3).

use mq_shared::api::ConnectionKind;
use mq_shared::ctl::{ConnectionReport, ConnectionRow, TopicReport, TopicRow};

use super::Context;
use super::nodes::{self, Gathered};
use crate::args::topic::{ConnectionCommand, NodesArgs, TopicCommand};
use crate::error::{Outcome, Result};
use crate::output::{self, Table};

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

async fn topics(ctx: &Context, args: NodesArgs) -> Result<Outcome> {
    let Gathered { data, down, tally } =
        nodes::gather(ctx, &args, |c| async move { c.topics().await }).await?;
    let mut topics: Vec<TopicRow> = data
        .into_iter()
        .flat_map(|(node, list)| {
            list.topics.into_iter().map(move |t| TopicRow {
                node: node.clone(),
                topic: t.name,
                subscribers: t.subscribers,
                enqueued: t.enqueued,
                dispatched: t.dispatched,
                forwarded: t.forwarded,
            })
        })
        .collect();
    // Stable: a topic's rows stay in the order the nodes were asked.
    topics.sort_by(|a, b| a.topic.cmp(&b.topic));
    let report = TopicReport { topics, down };
    nodes::print(ctx, &report, &report.down, |report| {
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
        table
    })?;
    tally.outcome()
}

async fn connections(ctx: &Context, args: NodesArgs) -> Result<Outcome> {
    let Gathered { data, down, tally } =
        nodes::gather(ctx, &args, |c| async move { c.connections().await }).await?;
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
    nodes::print(ctx, &report, &report.down, |report| {
        let now_ms = crate::home::now_ms();
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
        table
    })?;
    tally.outcome()
}
