//! The faults a chaos run injects, one at a time, each on the current master of a pair:
//! SIGKILL (the slave takes over; the killed member is restarted as the new slave a moment
//! later), SIGKILL of B's master while A has messages in flight to it over the bridge,
//! SIGSTOP for 0.5–5 s then SIGCONT, and a stepdown through the admin API.
//!
//! Each fault returns a [`FaultRecord`]: when, on whom, and how long until the pair served
//! STOMP again (from the kill or the stepdown request until the other member answered a
//! CONNECT, probed every 5 ms; for a pause, from SIGCONT until the paused master answered).

use std::time::Duration;

use anyhow::{Context, bail};
use mq_shared::api::Role;
use mq_shared::client::{ConnectOptions, StompClient};
use rand::Rng;
use rand::rngs::StdRng;
use serde::Serialize;
use tokio::time::Instant;

use super::topology::{Cluster, Pair, broker_info, queue_stats, stepdown};
use crate::process::signal;

/// How long a pair may take to serve again after a fault before the run counts a violation.
pub const TAKEOVER_BOUND: Duration = Duration::from_secs(30);
/// How long a pause lasts: uniform in this range.
const PAUSE: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(5));
/// How long a killed member stays down before it is restarted: uniform in this range.
const RESTART_DELAY: (Duration, Duration) =
    (Duration::from_millis(300), Duration::from_millis(1500));
/// How long a bridged-peer kill waits for A to have messages in flight to B.
const FORWARDING_WAIT: Duration = Duration::from_secs(10);

/// A kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// SIGKILL of A's master.
    KillA,
    /// SIGKILL of B's master.
    KillB,
    /// SIGKILL of B's master at a moment A's queue has messages in flight to the bridge.
    KillBridgedPeer,
    /// SIGSTOP of A's master for 0.5–5 s, then SIGCONT.
    PauseA,
    /// SIGSTOP of B's master for 0.5–5 s, then SIGCONT.
    PauseB,
    /// `POST /api/v1/ha/stepdown` on A's master.
    StepdownA,
    /// `POST /api/v1/ha/stepdown` on B's master.
    StepdownB,
}

impl FaultKind {
    /// Every kind.
    pub const ALL: [FaultKind; 7] = [
        FaultKind::KillA,
        FaultKind::KillB,
        FaultKind::KillBridgedPeer,
        FaultKind::PauseA,
        FaultKind::PauseB,
        FaultKind::StepdownA,
        FaultKind::StepdownB,
    ];

    /// The name in logs, summaries and `--faults`: `kill_a`, `kill_bridged_peer`, ...
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::KillA => "kill_a",
            FaultKind::KillB => "kill_b",
            FaultKind::KillBridgedPeer => "kill_bridged_peer",
            FaultKind::PauseA => "pause_a",
            FaultKind::PauseB => "pause_b",
            FaultKind::StepdownA => "stepdown_a",
            FaultKind::StepdownB => "stepdown_b",
        }
    }

    /// The kind called `name`.
    pub fn parse(name: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// One fault as injected.
#[derive(Debug, Clone, Serialize)]
pub struct FaultRecord {
    /// Its kind.
    pub kind: FaultKind,
    /// Milliseconds since the run started.
    pub at_ms: u64,
    /// The member hit.
    pub target: String,
    /// Its pid.
    pub pid: u32,
    /// Kill or stepdown: ms until the other member served STOMP.
    pub takeover_ms: Option<u64>,
    /// Pause: how long the master was stopped.
    pub paused_ms: Option<u64>,
    /// Pause: ms from SIGCONT until it served STOMP again.
    pub resumed_ms: Option<u64>,
    /// Bridged-peer kill: messages A had in flight when B's master was killed.
    pub inflight: Option<u64>,
    /// What went wrong, if the pair did not recover in time.
    pub violation: Option<String>,
}

impl FaultRecord {
    fn new(kind: FaultKind, at_ms: u64, target: String, pid: u32) -> FaultRecord {
        FaultRecord {
            kind,
            at_ms,
            target,
            pid,
            takeover_ms: None,
            paused_ms: None,
            resumed_ms: None,
            inflight: None,
            violation: None,
        }
    }

    /// One line for the run's log.
    pub fn describe(&self) -> String {
        let mut s = format!("{} on {} (pid {})", self.kind.name(), self.target, self.pid);
        if let Some(n) = self.inflight {
            s.push_str(&format!(", {n} in flight on A"));
        }
        if let Some(ms) = self.paused_ms {
            s.push_str(&format!(", paused {ms} ms"));
        }
        if let Some(ms) = self.resumed_ms {
            s.push_str(&format!(", serving {ms} ms after SIGCONT"));
        }
        if let Some(ms) = self.takeover_ms {
            s.push_str(&format!(", peer serving after {ms} ms"));
        }
        if let Some(v) = &self.violation {
            s.push_str(&format!(", VIOLATION: {v}"));
        }
        s
    }
}

/// Polls `url` with STOMP CONNECTs every 5 ms until one is answered; the time from `since`,
/// `None` if `bound` passes first.
async fn serving_after(url: &str, since: Instant, bound: Duration) -> Option<Duration> {
    let opts = ConnectOptions {
        connect_timeout: Duration::from_secs(1),
        ..ConnectOptions::default()
    };
    loop {
        if let Ok(c) = StompClient::connect(url, opts.clone()).await {
            let took = since.elapsed();
            let _ = c.disconnect().await;
            return Some(took);
        }
        if since.elapsed() >= bound {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn uniform(rng: &mut StdRng, (lo, hi): (Duration, Duration)) -> Duration {
    rng.random_range(lo..=hi)
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// Injects one fault of `kind`; `at_ms` is the time of the run it starts at.
pub async fn inject(
    cluster: &mut Cluster,
    kind: FaultKind,
    rng: &mut StdRng,
    at_ms: u64,
) -> anyhow::Result<FaultRecord> {
    match kind {
        FaultKind::KillA => kill(&mut cluster.a, kind, rng, at_ms, None).await,
        FaultKind::KillB => kill(&mut cluster.b, kind, rng, at_ms, None).await,
        FaultKind::KillBridgedPeer => {
            let a = cluster.a.master(TAKEOVER_BOUND).await?;
            let inflight = forwarding(&cluster.a.nodes[a]).await;
            kill(&mut cluster.b, kind, rng, at_ms, Some(inflight)).await
        }
        FaultKind::PauseA => pause(&mut cluster.a, kind, rng, at_ms).await,
        FaultKind::PauseB => pause(&mut cluster.b, kind, rng, at_ms).await,
        FaultKind::StepdownA => step_down(&mut cluster.a, kind, at_ms).await,
        FaultKind::StepdownB => step_down(&mut cluster.b, kind, at_ms).await,
    }
}

/// Waits (bounded) until A's queue has messages dispatched and unacknowledged (A has no
/// consumer but the bridge, so: in flight to B); returns how many (0 if it never saw any).
async fn forwarding(a_master: &crate::Node) -> u64 {
    let end = Instant::now() + FORWARDING_WAIT;
    loop {
        let inflight = queue_stats(a_master, "chaos")
            .await
            .map_or(0, |q| q.inflight);
        if inflight > 0 || Instant::now() >= end {
            return inflight;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn kill(
    pair: &mut Pair,
    kind: FaultKind,
    rng: &mut StdRng,
    at_ms: u64,
    inflight: Option<u64>,
) -> anyhow::Result<FaultRecord> {
    let m = pair.master(TAKEOVER_BOUND).await?;
    let peer = 1 - m;
    let node = &mut pair.nodes[m];
    let mut rec = FaultRecord::new(kind, at_ms, node.name().to_owned(), node.pid());
    rec.inflight = inflight;
    let t0 = Instant::now();
    node.kill();
    match serving_after(&pair.urls[peer], t0, TAKEOVER_BOUND).await {
        Some(d) => rec.takeover_ms = Some(ms(d)),
        None => {
            rec.violation = Some(format!(
                "{} did not serve within {TAKEOVER_BOUND:?} of the kill",
                pair.nodes[peer].name()
            ))
        }
    }
    tokio::time::sleep(uniform(rng, RESTART_DELAY)).await;
    // Blocking (waits for the ready line), on the driver's own thread: the restarted process
    // is tied to the thread that spawns it.
    pair.nodes[m].restart();
    if pair.nodes[m].role() != Role::Slave {
        bail!(
            "{} restarted as {}, not as the slave",
            pair.nodes[m].name(),
            pair.nodes[m].role()
        );
    }
    Ok(rec)
}

async fn pause(
    pair: &mut Pair,
    kind: FaultKind,
    rng: &mut StdRng,
    at_ms: u64,
) -> anyhow::Result<FaultRecord> {
    let m = pair.master(TAKEOVER_BOUND).await?;
    let node = &pair.nodes[m];
    let pid = node.pid();
    let mut rec = FaultRecord::new(kind, at_ms, node.name().to_owned(), pid);
    let length = uniform(rng, PAUSE);
    let t0 = Instant::now();
    signal(pid, rustix::process::Signal::STOP);
    tokio::time::sleep(length).await;
    signal(pid, rustix::process::Signal::CONT);
    rec.paused_ms = Some(ms(t0.elapsed()));
    let resumed = Instant::now();
    match serving_after(&pair.urls[m], resumed, TAKEOVER_BOUND).await {
        Some(d) => rec.resumed_ms = Some(ms(d)),
        None => {
            rec.violation = Some(format!(
                "{} did not serve within {TAKEOVER_BOUND:?} of SIGCONT",
                pair.nodes[m].name()
            ))
        }
    }
    Ok(rec)
}

async fn step_down(pair: &mut Pair, kind: FaultKind, at_ms: u64) -> anyhow::Result<FaultRecord> {
    let m = pair.master(TAKEOVER_BOUND).await?;
    let peer = 1 - m;
    let node = &pair.nodes[m];
    let mut rec = FaultRecord::new(kind, at_ms, node.name().to_owned(), node.pid());
    let t0 = Instant::now();
    let status = stepdown(node)
        .await
        .with_context(|| format!("stepdown request to {}", node.name()))?;
    if status != 202 {
        bail!("stepdown of {} answered HTTP {status}", node.name());
    }
    match serving_after(&pair.urls[peer], t0, TAKEOVER_BOUND).await {
        Some(d) => rec.takeover_ms = Some(ms(d)),
        None => {
            rec.violation = Some(format!(
                "{} did not serve within {TAKEOVER_BOUND:?} of the stepdown of {}",
                pair.nodes[peer].name(),
                pair.nodes[m].name()
            ))
        }
    }
    // The old master waits as the slave.
    let end = Instant::now() + TAKEOVER_BOUND;
    while broker_info(&pair.nodes[m]).await.map(|b| b.role) != Some(Role::Slave) {
        if Instant::now() >= end {
            bail!(
                "{} did not report slave within {TAKEOVER_BOUND:?} of its stepdown",
                pair.nodes[m].name()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(rec)
}
