//! Bringing a cluster's processes up and down: starting them detached and waiting until each is
//! ready, stopping one with SIGTERM, killing one with SIGKILL, terminating many at once.
//!
//! Before anything is spawned, every port of every node to start is checked free: a node whose
//! port another program holds is refused with the port's number, instead of starting as a
//! slave that could never take over.
//!
//! Ready means the node printed its ready line (`{"event":"ready","role":...}`) in this run of
//! its log, or reports its role through the admin API, and then: a single node answers `/readyz`
//! 200; a member of a master/slave group answers `/healthz` 200 and some member of its group
//! serves (`/readyz` 200), because a slave waits for the store lock and never serves.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use mq_shared::api::Role;
use mq_shared::ctl::NodeEntry;
use mq_shared::defaults::{NODE_STOP_TIMEOUT, READY_POLL_INTERVAL};
use tokio::task::JoinSet;

use crate::client::admin::AdminClient;
use crate::cluster::Cluster;
use crate::error::{CliError, Result};
use crate::output;
use crate::ports;
use crate::process;
use crate::sys::Signal;

/// A process started in this run.
#[derive(Debug)]
pub struct Launched {
    /// Node name.
    pub name: String,
    /// The child process.
    pub child: Child,
    /// Length of its log once the run marker was written: this run's lines follow.
    pub log_from: u64,
}

/// Starts the processes `names` of `cluster` in two phases — first the first member of each
/// group (every member of a replicated group, whose election needs a quorum of them), then
/// the others — and waits until each is ready: `/healthz` answers and its group has
/// a serving member (`/readyz` 200). Pids are recorded in the manifest as soon as each process
/// is spawned. Started processes are appended to `launched` even when this fails, so that the
/// caller can stop them.
pub async fn start_processes(
    cluster: &mut Cluster,
    names: &[String],
    mqnode: &Path,
    timeout: Duration,
    launched: &mut Vec<Launched>,
) -> Result<()> {
    let (first, rest): (Vec<String>, Vec<String>) = names.iter().cloned().partition(|name| {
        let replicated = cluster
            .manifest
            .group_of(name)
            .is_some_and(|g| g.replicated.is_some());
        replicated
            || cluster
                .manifest
                .node(name)
                .and_then(|n| {
                    cluster
                        .manifest
                        .members(&n.group)
                        .first()
                        .map(|m| m.name == *name)
                })
                .unwrap_or(true)
    });
    check_ports(cluster, names)?;
    let bar = output::progress(names.len() as u64, "starting nodes");
    for phase in [first, rest] {
        if phase.is_empty() {
            continue;
        }
        let from = launched.len();
        for name in &phase {
            let node = cluster.process(name)?.clone();
            let (child, log_from) = process::spawn(&cluster.manifest, &node, mqnode)?;
            let pid = child.id();
            launched.push(Launched {
                name: name.clone(),
                child,
                log_from,
            });
            if let Some(entry) = cluster.manifest.node_mut(name) {
                entry.pid = Some(pid);
            }
            cluster.save()?;
        }
        if let Err(e) = wait_ready(cluster, &mut launched[from..], timeout, &bar).await {
            bar.abandon();
            return Err(e);
        }
    }
    bar.finish_and_clear();
    Ok(())
}

/// Every transport and admin port of the processes `names` must be free on 127.0.0.1.
fn check_ports(cluster: &Cluster, names: &[String]) -> Result<()> {
    for name in names {
        let node = cluster.process(name)?;
        for (port, role) in [
            (node.transport_port, "transport"),
            (node.admin_port, "admin"),
        ] {
            if !ports::port_is_free(port) {
                return Err(CliError::PortInUse {
                    port,
                    role,
                    node: format!("{}/{}", cluster.name(), node.name),
                    hint: format!("nothing was started; {}", ports::holder_hint(port)),
                });
            }
        }
    }
    Ok(())
}

/// Polls until every process in `waiting` is ready; reports at once one that exits.
async fn wait_ready(
    cluster: &Cluster,
    waiting: &mut [Launched],
    timeout: Duration,
    bar: &indicatif::ProgressBar,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let poll = READY_POLL_INTERVAL.max(Duration::from_millis(10));
    let mut ready = vec![false; waiting.len()];
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    loop {
        for (launch, _) in waiting.iter_mut().zip(&ready).filter(|(_, r)| !**r) {
            if let Ok(Some(status)) = launch.child.try_wait() {
                let node = cluster.process(&launch.name)?;
                return Err(CliError::NodeExited {
                    node: launch.name.clone(),
                    status: status.to_string(),
                    log: PathBuf::from(&node.log),
                    tail: process::log_tail(node.log.as_ref()),
                });
            }
        }
        let mut checks = JoinSet::new();
        for (i, launch) in waiting.iter().enumerate().filter(|(i, _)| !ready[*i]) {
            let node = cluster.process(&launch.name)?;
            let this = cluster.client(node, poll.max(Duration::from_millis(500)))?;
            let members: Vec<AdminClient> = cluster
                .manifest
                .members(&node.group)
                .into_iter()
                .filter(|m| m.name != node.name)
                .map(|m| cluster.client(m, Duration::from_millis(500)))
                .collect::<Result<_>>()?;
            let line_role = process::ready_role(Path::new(&node.log), launch.log_from);
            checks.spawn(async move { (i, is_ready(&this, &members, line_role).await) });
        }
        while let Some(Ok((i, ok))) = checks.join_next().await {
            if ok && !ready[i] {
                ready[i] = true;
                bar.inc(1);
            }
        }
        if ready.iter().all(|r| *r) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let i = ready.iter().position(|r| !r).unwrap_or(0);
            let node = cluster.process(&waiting[i].name)?;
            let members = cluster.manifest.members(&node.group).len();
            return Err(CliError::NodeNotReady {
                node: node.name.clone(),
                secs: timeout.as_secs(),
                waiting: if process::ready_role(Path::new(&node.log), waiting[i].log_from).is_none()
                {
                    format!(
                        "no ready line in its log and no role from {}/api/v1/broker",
                        node.admin_url()
                    )
                } else if members > 1 {
                    format!(
                        "its /healthz or its group's master at /readyz did not answer 200 on {}",
                        node.admin_url()
                    )
                } else {
                    format!("{}/readyz did not answer 200", node.admin_url())
                },
                log: PathBuf::from(&node.log),
                tail: process::log_tail(node.log.as_ref()),
            });
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = &mut interrupt => {
                return Err(CliError::Interrupted { cleanup: String::new() });
            }
        }
    }
}

/// Ready: the node told its role (`line_role`, from its ready line, else through the admin
/// API), and then a single node answers `/readyz` 200; a member of an HA group answers
/// `/healthz` 200 and it or another member answers `/readyz` 200.
async fn is_ready(this: &AdminClient, others: &[AdminClient], line_role: Option<Role>) -> bool {
    if line_role.is_none() && this.broker().await.is_err() {
        return false;
    }
    if others.is_empty() {
        return matches!(this.readyz().await, Ok(true));
    }
    if !matches!(this.healthz().await, Ok(true)) {
        return false;
    }
    if matches!(this.readyz().await, Ok(true)) {
        return true;
    }
    for other in others {
        if matches!(other.readyz().await, Ok(true)) {
            return true;
        }
    }
    false
}

/// Stops the recorded process of `node` with SIGTERM and waits (bounded) for it to exit.
/// `Ok(None)` when it was not running. Does not touch the manifest.
pub async fn stop_process(cluster: &Cluster, node: &NodeEntry) -> Result<Option<u32>> {
    let Some(pid) = process::signal(node, Signal::Term)? else {
        return Ok(None);
    };
    if process::wait_exit(pid, node, NODE_STOP_TIMEOUT).await {
        Ok(Some(pid))
    } else {
        Err(CliError::StopTimeout {
            cluster: cluster.name().to_string(),
            node: node.name.clone(),
            pid,
            secs: NODE_STOP_TIMEOUT.as_secs(),
        })
    }
}

/// [`stop_process`], then records in the manifest that `node` no longer runs.
pub async fn stop_and_record(cluster: &mut Cluster, node: &NodeEntry) -> Result<Option<u32>> {
    let pid = stop_process(cluster, node).await?;
    if let Some(entry) = cluster.manifest.node_mut(&node.name) {
        entry.pid = None;
    }
    cluster.save()?;
    Ok(pid)
}

/// Kills the recorded process of `node` with SIGKILL and waits (bounded) until it is gone.
pub async fn kill_process(node: &NodeEntry) -> Result<Option<u32>> {
    let Some(pid) = process::signal(node, Signal::Kill)? else {
        return Ok(None);
    };
    process::wait_exit(pid, node, NODE_STOP_TIMEOUT).await;
    Ok(Some(pid))
}

/// SIGTERM to every running process of `nodes`, then SIGKILL to those still running after the
/// bounded wait. Returns the pids that were running.
pub async fn terminate_all(nodes: &[NodeEntry]) -> Vec<(String, Option<u32>)> {
    let mut signalled = Vec::new();
    for node in nodes {
        let pid = process::signal(node, Signal::Term).ok().flatten();
        signalled.push((node.clone(), pid));
    }
    let deadline = Instant::now() + NODE_STOP_TIMEOUT;
    for (node, pid) in &signalled {
        if let Some(pid) = pid {
            let left = deadline.saturating_duration_since(Instant::now());
            if !process::wait_exit(*pid, node, left).await {
                let _ = process::signal(node, Signal::Kill);
                process::wait_exit(*pid, node, NODE_STOP_TIMEOUT).await;
            }
        }
    }
    signalled
        .into_iter()
        .map(|(node, pid)| (node.name, pid))
        .collect()
}
