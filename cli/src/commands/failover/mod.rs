//! `mqctl failover trigger|status`: master/slave groups (docs/ha.md).
//!
//! A group is the set of processes sharing one data directory; the one holding the store lock
//! is master. `trigger` makes it let go and measures the takeover from the outside, the way a
//! client sees it: from the kill or stepdown request until a STOMP CONNECT to another member is
//! answered CONNECTED. `status` shows who serves and who waits.

mod remote;
mod status;
mod trigger;
mod verify;

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mq_shared::api::Role;
use mq_shared::ctl::NodeEntry;
use tokio::task::JoinSet;

use super::Context;
use crate::args::failover::FailoverCommand;
use crate::cluster::Cluster;
use crate::error::{CliError, Outcome, Result};

/// Runs one `failover` verb.
pub async fn run(ctx: &Context, command: FailoverCommand) -> Result<Outcome> {
    match command {
        FailoverCommand::Trigger(args) => trigger::run(ctx, args).await,
        FailoverCommand::Status(args) => status::run(ctx, args).await,
    }
}

/// The group `broker` names (a group, or a process standing for its group); without it, the
/// first group with more than one member.
fn pick_group(cluster: &Cluster, broker: Option<&str>) -> Result<String> {
    match broker {
        Some(name) => cluster.broker_of(name),
        None => cluster
            .group_names()
            .into_iter()
            .find(|g| cluster.manifest.members(g).len() > 1)
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "cluster `{}` has no master/slave group; create one with `mqctl cluster create NAME --ha`",
                    cluster.name()
                ))
            }),
    }
}

/// Each member's role as its admin API reports it (`None`: did not answer), in member order.
async fn roles(
    cluster: &Cluster,
    members: &[NodeEntry],
    timeout: Duration,
) -> Result<Vec<Option<Role>>> {
    let mut tasks = JoinSet::new();
    for (i, node) in members.iter().enumerate() {
        let client = cluster.client(node, timeout)?;
        tasks.spawn(async move { (i, client.broker().await.ok().map(|b| b.role)) });
    }
    let mut out = vec![None; members.len()];
    while let Some(joined) = tasks.join_next().await {
        if let Ok((i, role)) = joined {
            out[i] = role;
        }
    }
    Ok(out)
}

/// Whether a role is the serving one.
fn serves(role: Option<Role>) -> bool {
    matches!(role, Some(Role::Master | Role::Standalone))
}

/// A spinner on stderr, hidden unless stderr is a terminal.
fn spinner(message: String) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
        bar.set_style(style);
    }
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(80));
    bar
}
