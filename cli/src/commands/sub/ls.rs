//! `mqctl sub ls [NAME[/NODE] | --url URL...]`: every durable subscription on every node in
//! one table, with the nodes that did not answer marked down (exit 3).

use mq_shared::ctl::{SubscriptionReport, SubscriptionRow};

use crate::args::topic::NodesArgs;
use crate::commands::Context;
use crate::commands::nodes::{self, Gathered};
use crate::error::{Outcome, Result};
use crate::output::{self, Table};

/// Runs `sub ls`.
pub async fn run(ctx: &Context, args: NodesArgs) -> Result<Outcome> {
    let Gathered { data, down, tally } =
        nodes::gather(ctx, &args, |c| async move { c.subscriptions().await }).await?;
    let mut subscriptions: Vec<SubscriptionRow> = data
        .into_iter()
        .flat_map(|(node, list)| {
            list.subscriptions
                .into_iter()
                .map(move |s| SubscriptionRow {
                    node: node.clone(),
                    client_id: s.client_id,
                    name: s.name,
                    topic: s.topic,
                    selector: s.selector,
                    active: s.active,
                    pending: s.pending,
                    enqueued: s.enqueued,
                    dequeued: s.dequeued,
                })
        })
        .collect();
    // Stable: a subscription's rows stay in the order the nodes were asked.
    subscriptions.sort_by(|a, b| (&a.client_id, &a.name).cmp(&(&b.client_id, &b.name)));
    let report = SubscriptionReport {
        subscriptions,
        down,
    };
    nodes::print(ctx, &report, &report.down, |report| {
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
                output::yes_no(s.active),
                s.pending.to_string(),
                s.enqueued.to_string(),
                s.dequeued.to_string(),
            ]);
        }
        table
    })?;
    tally.outcome()
}
