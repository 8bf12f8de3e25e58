//! `mqctl sub ls [NAME[/NODE] | --url URL...]`: every durable subscription on every node in
//! one table, with the nodes that did not answer marked down (exit 3).

use mq_shared::ctl::{SubscriptionReport, SubscriptionRow};

use crate::args::topic::NodesArgs;
use crate::commands::Context;
use crate::commands::nodes;
use crate::commands::topic::{clients, push_down, sort_out};
use crate::error::{Outcome, Result};
use crate::output::{self, Format, Table};

/// Runs `sub ls`.
pub async fn run(ctx: &Context, args: NodesArgs) -> Result<Outcome> {
    let (clients, cluster) = clients(ctx, &args)?;
    let answers = nodes::ask_all(&clients, |c| async move { c.subscriptions().await }).await;
    let (data, down, errors) = sort_out(&clients, answers);
    let mut rows: Vec<(usize, SubscriptionRow)> = Vec::new();
    for (i, (node, list)) in data.into_iter().enumerate() {
        rows.extend(list.subscriptions.into_iter().map(|s| {
            (
                i,
                SubscriptionRow {
                    node: node.clone(),
                    client_id: s.client_id,
                    name: s.name,
                    topic: s.topic,
                    selector: s.selector,
                    active: s.active,
                    pending: s.pending,
                    enqueued: s.enqueued,
                    dequeued: s.dequeued,
                },
            )
        }));
    }
    rows.sort_by(|(ia, a), (ib, b)| {
        (&a.client_id, &a.name)
            .cmp(&(&b.client_id, &b.name))
            .then(ia.cmp(ib))
    });
    let report = SubscriptionReport {
        subscriptions: rows.into_iter().map(|(_, r)| r).collect(),
        down,
    };
    if ctx.out.format() == Format::Json {
        ctx.out.json(&report)?;
    } else {
        let mut table = Table::new(
            vec![
                "node",
                "client-id",
                "name",
                "topic",
                "selector",
                "active",
                "pending",
                "enqueued",
                "dequeued",
            ],
            "No durable subscriptions.",
        )
        .numeric(6..9);
        for s in &report.subscriptions {
            table.push(vec![
                s.node.clone(),
                s.client_id.clone(),
                s.name.clone(),
                s.topic.clone(),
                output::opt(s.selector.clone()),
                if s.active { "yes" } else { "no" }.to_string(),
                s.pending.to_string(),
                s.enqueued.to_string(),
                s.dequeued.to_string(),
            ]);
        }
        push_down(&mut table, &report.down);
        ctx.out.table(&table)?;
    }
    nodes::outcome(report.down.len(), clients.len(), cluster.as_deref(), errors)
}
