//! `mqctl cluster start NAME`: start the nodes that are not running, with their recorded ports
//! and flags, wait until they are ready, re-create the links, print the status.

use crate::args::cluster::StartArgs;
use crate::cluster::Cluster;
use crate::commands::Context;
use crate::error::{Outcome, Result};
use crate::lifecycle;
use crate::links;
use crate::status;
use crate::{output, process};

/// Runs `cluster start`.
/// Says which nodes a lifecycle command leaves alone, as mqctl does not run them.
pub(crate) fn remote_note(cluster: &Cluster, what: &str) {
    let remote: Vec<&str> = cluster
        .manifest
        .nodes
        .iter()
        .filter(|n| n.is_remote())
        .map(|n| n.name.as_str())
        .collect();
    if !remote.is_empty() {
        output::note(&format!(
            "Cannot {what} remote node(s) {}: mqctl does not run them.",
            remote.join(", ")
        ));
    }
}

pub async fn run(ctx: &Context, args: StartArgs) -> Result<Outcome> {
    let mut cluster = Cluster::load(&ctx.home, &args.name)?;
    let stopped: Vec<String> = cluster
        .manifest
        .nodes
        .iter()
        .filter(|n| !n.is_remote() && process::running_pid(n).is_none())
        .map(|n| n.name.clone())
        .collect();
    remote_note(&cluster, "start");
    // The cluster's own PostgreSQL first: the nodes keep their stores in it.
    if let Some(pg) = cluster.manifest.postgres.clone() {
        tokio::task::spawn_blocking(move || crate::postgres::start(&pg))
            .await
            .map_err(|e| {
                crate::error::CliError::Usage(format!("starting PostgreSQL failed: {e}"))
            })??;
    }
    // The cluster's own ZooKeeper too: the replicated groups elect their masters through it.
    if let Some(mut zk) = cluster.manifest.zookeeper.clone() {
        let started = crate::zookeeper::start(&mut zk).await;
        cluster.manifest.zookeeper = Some(zk);
        cluster.save()?;
        started?;
    }
    if stopped.is_empty() {
        output::note(&format!("Every node of {} is already running.", args.name));
    } else {
        let mqnode = process::mqnode_for(&cluster.manifest, args.mqnode.as_deref())?;
        let mut launched = Vec::new();
        // Processes that started stay recorded (and running) even if another one fails.
        lifecycle::start_processes(
            &mut cluster,
            &stopped,
            &mqnode,
            args.ready_timeout(),
            &mut launched,
        )
        .await?;
        let links = cluster.manifest.links.clone();
        links::apply_links(&cluster, &links).await?;
    }
    let status = status::gather_status(&cluster).await?;
    status::print_status(&ctx.out, &status)?;
    status::outcome(&cluster, &status)
}
