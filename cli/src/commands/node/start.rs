//! `mqctl node start NAME/NODE`: start one stopped node with its recorded flags, wait until it
//! is ready, and re-create its broker's links if it is the one serving.

use std::path::Path;
use std::time::Duration;

use mq_shared::api::Role;
use mq_shared::ctl::{NodeAction, NodeChange};
use mq_shared::defaults::STAT_REQUEST_TIMEOUT;

use crate::args::node::NodeStartArgs;
use crate::cluster::Cluster;
use crate::commands::Context;
use crate::error::{Outcome, Result};
use crate::lifecycle;
use crate::links;
use crate::process;

/// Runs `node start`.
pub async fn run(ctx: &Context, args: NodeStartArgs) -> Result<Outcome> {
    let mut cluster = Cluster::load(&ctx.home, &args.target.cluster)?;
    let node = cluster.process(&args.target.node)?.clone();
    cluster.check_local(&node, "start")?;
    let change = match process::running_pid(&node) {
        Some(pid) => NodeChange {
            cluster: cluster.name().to_string(),
            node: node.name.clone(),
            action: NodeAction::Unchanged,
            pid: Some(pid),
            role: None,
        },
        None => {
            start_one(
                &mut cluster,
                &node.name,
                args.mqnode.as_deref(),
                args.ready_timeout(),
                NodeAction::Started,
            )
            .await?
        }
    };
    super::print_change(ctx, &change)?;
    Ok(Outcome::Complete)
}

/// Starts process `name`, waits until it is ready, re-creates its group's links when it serves.
pub(crate) async fn start_one(
    cluster: &mut Cluster,
    name: &str,
    mqnode: Option<&Path>,
    timeout: Duration,
    action: NodeAction,
) -> Result<NodeChange> {
    let mqnode = process::mqnode_for(&cluster.manifest, mqnode)?;
    let mut launched = Vec::new();
    lifecycle::start_processes(
        cluster,
        &[name.to_string()],
        &mqnode,
        timeout,
        &mut launched,
    )
    .await?;
    let node = cluster.process(name)?.clone();
    let role = match cluster.client(&node, STAT_REQUEST_TIMEOUT)?.broker().await {
        Ok(info) => Some(info.role),
        Err(_) => None,
    };
    if matches!(role, Some(Role::Master | Role::Standalone)) {
        let links: Vec<_> = cluster
            .manifest
            .links
            .iter()
            .filter(|l| l.from == node.group)
            .cloned()
            .collect();
        links::apply_links(cluster, &links).await?;
    }
    Ok(NodeChange {
        cluster: cluster.name().to_string(),
        node: node.name.clone(),
        action,
        pid: node.pid,
        role,
    })
}
