//! A Jepsen-style soak: real nodes, a steady load, random faults, and an audit of every message
//! at the end. `tests/examples/chaos.rs` runs it for minutes (`scripts/chaos.sh`),
//! `tests/tests/chaos_short.rs` for a few seconds with a fixed list of faults.
//!
//! ```text
//!  producers ──failover:(A1,A2)──▶ [A1 ⇄ A2] ──static:(masterslave:(B1,B2))──▶ [B1 ⇄ B2] ◀──failover:(B1,B2)── consumers
//!  (SEND persistent + RECEIPT,      shared store A     bridge: store and forward   shared store B   (client-individual,
//!   resend unconfirmed on reconnect)                   on the consumers' demand                   record, then ACK)
//! ```
//!
//! [`run`] starts the [`Cluster`], the load ([`clients`]), and injects faults ([`faults`]) one at
//! a time with a pause between, until the load's time is up. Then the producers stop (waiting
//! for the RECEIPTs still due), the consumers drain B until every confirmed message has arrived
//! (bounded), and a last consumer empties the queue and the dead-letter queue on both masters.
//! The [`Ledger`](ledger::Ledger) then says what was lost (a confirmed SEND never delivered),
//! what came twice and why (a resend of an unconfirmed SEND, or a redelivery, which must say
//! `redelivered:true`), and the [`Summary`] gives the counts, the faults and the takeover times.
//!
//! [`run`] must be awaited on the thread that owns the run (a test's thread, a binary's main
//! thread): nodes are started and restarted there, and die with it.

pub mod clients;
pub mod faults;
pub mod ledger;
pub mod topology;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use mq_shared::uri::ClientUri;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::time::Instant;

use clients::{Counters, ProducerSpec};
pub use faults::{FaultKind, FaultRecord};
use ledger::{Audit, Ledger, SharedLedger, lock};
pub use topology::Cluster;

/// The network connector's options: the bridge retries B quickly and never backs off for long,
/// so a failover of B costs seconds of forwarding, not half a minute.
pub const CONNECTOR_OPTIONS: &str = "initialReconnectDelay=200&maxReconnectDelay=2000";

/// Which faults a run injects.
#[derive(Debug, Clone)]
pub enum Plan {
    /// Kinds drawn at random (uniformly, seeded) until the load's time is up.
    Random(Vec<FaultKind>),
    /// These faults in this order; the load stops one pause after the last.
    Sequence(Vec<FaultKind>),
}

/// What a run does.
#[derive(Debug, Clone)]
pub struct Config {
    /// How long the load runs (faults are injected meanwhile).
    pub duration: Duration,
    /// Producers on A.
    pub producers: usize,
    /// Consumers on B.
    pub consumers: usize,
    /// SENDs a producer has in flight without their RECEIPT at most.
    pub window: usize,
    /// Messages per second per producer at most; 0 for no limit.
    pub rate: f64,
    /// Body size in bytes.
    pub size: usize,
    /// Consumer prefetch (`activemq.prefetchSize`).
    pub prefetch: u32,
    /// Seeds the choice of faults, pauses and delays.
    pub seed: u64,
    /// The faults.
    pub plan: Plan,
    /// Time between the end of one fault and the start of the next: uniform in this range.
    pub pause: (Duration, Duration),
    /// Load before the first fault.
    pub warmup: Duration,
    /// Bound on the drain after the load: producers' last RECEIPTs, consumers catching up.
    pub drain: Duration,
    /// How often a progress line is printed.
    pub progress: Duration,
    /// Where the nodes' logs are written at the end, if anywhere.
    pub log_dir: Option<PathBuf>,
    /// Keep the data directories when the audit fails.
    pub keep_data_on_failure: bool,
}

impl Config {
    /// The soak's defaults: `minutes` of load, every kind of fault at random, a fault every
    /// 5–15 s.
    pub fn soak(minutes: f64) -> Config {
        Config {
            duration: Duration::from_secs_f64(minutes * 60.0),
            producers: 4,
            consumers: 4,
            window: 32,
            rate: 1000.0,
            size: 256,
            prefetch: 100,
            seed: 1,
            plan: Plan::Random(FaultKind::ALL.to_vec()),
            pause: (Duration::from_secs(5), Duration::from_secs(15)),
            warmup: Duration::from_secs(5),
            drain: Duration::from_secs(120),
            progress: Duration::from_secs(30),
            log_dir: None,
            keep_data_on_failure: false,
        }
    }

    /// The CI run: a few seconds of load with one fault of each family (a bridged-peer kill,
    /// a stepdown of A, a kill of A, a pause of B), fixed seed.
    pub fn short() -> Config {
        Config {
            duration: Duration::from_secs(30),
            producers: 2,
            consumers: 2,
            rate: 200.0,
            plan: Plan::Sequence(vec![
                FaultKind::KillBridgedPeer,
                FaultKind::StepdownA,
                FaultKind::KillA,
                FaultKind::PauseB,
            ]),
            pause: (Duration::from_millis(1000), Duration::from_millis(1500)),
            warmup: Duration::from_secs(1),
            drain: Duration::from_secs(30),
            progress: Duration::from_secs(5),
            seed: 7,
            ..Config::soak(0.0)
        }
    }

    /// An upper bound on the whole run: load, drain, final drain, and slack for starting and
    /// the last fault.
    pub fn hard_bound(&self) -> Duration {
        self.duration + self.drain + FINAL_DRAIN + Duration::from_secs(120)
    }
}

/// Bound on the final drain of each node.
const FINAL_DRAIN: Duration = Duration::from_secs(60);
/// The final drain stops once nothing arrived for this long.
const FINAL_IDLE: Duration = Duration::from_secs(2);
/// After every confirmed message arrived, how long consumers keep watching for late
/// duplicates.
const LATE_DUPLICATES: Duration = Duration::from_secs(1);

/// The outcome of a run; one JSON line at the end of `scripts/chaos.sh`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Always `chaos-summary`.
    pub event: &'static str,
    /// No violation.
    pub ok: bool,
    /// The seed.
    pub seed: u64,
    /// Producers, consumers, window, rate per producer.
    pub producers: usize,
    /// Consumers.
    pub consumers: usize,
    /// Window per producer.
    pub window: usize,
    /// Messages per second per producer at most (0: no limit).
    pub rate: f64,
    /// Seconds of load.
    pub load_secs: f64,
    /// Seconds from the start of the load to the end of the audit.
    pub run_secs: f64,
    /// Seconds from the end of the load until every confirmed message had arrived (or the
    /// drain bound passed).
    pub drain_secs: f64,
    /// The message counts.
    #[serde(flatten)]
    pub audit: Audit,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, u64>,
    /// Faults injected in all.
    pub faults_total: u64,
    /// Longest time from a kill or stepdown of a master to its peer serving STOMP.
    pub max_takeover_ms: Option<u64>,
    /// Median of those times.
    pub median_takeover_ms: Option<u64>,
    /// Longest pause of a master.
    pub max_paused_ms: Option<u64>,
    /// Producer reconnects.
    pub producer_reconnects: u64,
    /// Consumer reconnects.
    pub consumer_reconnects: u64,
    /// Depth of the queue on each group's master after the final drain.
    pub depth_after: BTreeMap<String, Option<u64>>,
    /// Everything that broke the contract: a lost confirmed message, a second delivery
    /// without `redelivered:true`, a pair that did not serve again in time.
    pub violations: Vec<String>,
}

/// Prints `[+SECONDS] line` relative to the run's start.
#[derive(Debug, Clone, Copy)]
struct Clock(Instant);

impl Clock {
    fn ms(&self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }

    fn line(&self, s: &str) {
        println!("[+{:9.3}s] {s}", self.0.elapsed().as_secs_f64());
    }
}

fn progress_line(ledger: &SharedLedger, counters: &Counters, faults: &AtomicU64) -> String {
    let p = lock(ledger).progress();
    format!(
        "sent {} (sends {}), receipted {}, consumed {}, deliveries {}, awaited {}, faults {}, reconnects producers {} consumers {}",
        p.sent,
        p.sends,
        p.receipted,
        p.consumed,
        p.deliveries,
        p.outstanding,
        faults.load(Ordering::Relaxed),
        counters.producer_reconnects.load(Ordering::Relaxed),
        counters.consumer_reconnects.load(Ordering::Relaxed),
    )
}

/// Runs the soak described by `cfg` and returns its summary; `Err` when the run could not be
/// carried out (a node that would not start, a pair without a master), not for violations,
/// which the summary lists.
pub async fn run(cfg: Config) -> anyhow::Result<Summary> {
    let clock = Clock(Instant::now());
    clock.line(&format!(
        "chaos: seed {}, load {:?}, {} producers ({} msg/s each, window {}), {} consumers, plan {:?}",
        cfg.seed, cfg.duration, cfg.producers, cfg.rate, cfg.window, cfg.consumers, cfg.plan
    ));
    let mut cluster = Cluster::start(CONNECTOR_OPTIONS).await?;
    clock.line(&format!(
        "started A1, A2 (data {}), B1, B2 (data {}); bridge A1 -> B1 connected",
        cluster.a.data_dir().display(),
        cluster.b.data_dir().display()
    ));
    let result = drive(&cfg, &mut cluster, clock).await;
    if let Some(dir) = &cfg.log_dir {
        match cluster.save_logs(dir) {
            Ok(()) => clock.line(&format!("node logs in {}", dir.display())),
            Err(e) => clock.line(&format!("could not save the node logs: {e:#}")),
        }
    }
    let failed = result.as_ref().map_or(true, |s| !s.ok);
    if failed && cfg.keep_data_on_failure {
        for d in cluster.keep_data() {
            clock.line(&format!("kept data directory {}", d.display()));
        }
    }
    result
}

async fn drive(cfg: &Config, cluster: &mut Cluster, clock: Clock) -> anyhow::Result<Summary> {
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let ledger: SharedLedger = Arc::new(std::sync::Mutex::new(Ledger::new(cfg.producers)));
    let counters = Arc::new(Counters::default());
    let stop_producing = Arc::new(AtomicBool::new(false));
    let stop_consuming = Arc::new(AtomicBool::new(false));
    let injected = Arc::new(AtomicU64::new(0));
    let a_uri: ClientUri = cluster
        .a
        .failover_uri()
        .parse()
        .context("A's failover URI")?;
    let b_uri: ClientUri = cluster
        .b
        .failover_uri()
        .parse()
        .context("B's failover URI")?;
    let load_end = Instant::now() + cfg.duration;
    let give_up = load_end + cfg.drain;

    let consumers: Vec<_> = (0..cfg.consumers)
        .map(|i| {
            tokio::spawn(clients::consume(
                i,
                b_uri.clone(),
                cfg.prefetch,
                ledger.clone(),
                counters.clone(),
                stop_consuming.clone(),
                give_up,
            ))
        })
        .collect();
    let producers: Vec<_> = (0..cfg.producers)
        .map(|i| {
            let spec = ProducerSpec {
                index: i as u32,
                uri: a_uri.clone(),
                window: cfg.window,
                rate: cfg.rate,
                size: cfg.size,
            };
            tokio::spawn(clients::produce(
                spec,
                ledger.clone(),
                counters.clone(),
                stop_producing.clone(),
                give_up,
            ))
        })
        .collect();
    let progress = {
        let (ledger, counters, injected, every) = (
            ledger.clone(),
            counters.clone(),
            injected.clone(),
            cfg.progress,
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                clock.line(&progress_line(&ledger, &counters, &injected));
            }
        })
    };

    // Warm-up: the load flows end to end before the first fault.
    let warm = Instant::now() + cfg.warmup.max(Duration::from_millis(1));
    while Instant::now() < warm || lock(&ledger).progress().consumed == 0 {
        if Instant::now() >= load_end {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    clock.line(&format!(
        "warm: {}",
        progress_line(&ledger, &counters, &injected)
    ));

    let mut records: Vec<FaultRecord> = Vec::new();
    let mut violations: Vec<String> = Vec::new();
    let mut sequence = match &cfg.plan {
        Plan::Sequence(v) => v.clone().into_iter(),
        Plan::Random(_) => Vec::new().into_iter(),
    };
    loop {
        let pause = rng.random_range(cfg.pause.0..=cfg.pause.1);
        if Instant::now() + pause >= load_end {
            break;
        }
        tokio::time::sleep(pause).await;
        let kind = match &cfg.plan {
            Plan::Random(kinds) if !kinds.is_empty() => kinds[rng.random_range(0..kinds.len())],
            Plan::Random(_) => break,
            Plan::Sequence(_) => match sequence.next() {
                Some(k) => k,
                None => break,
            },
        };
        let n = records.len() + 1;
        clock.line(&format!("fault {n}: {} ...", kind.name()));
        let rec = faults::inject(cluster, kind, &mut rng, clock.ms())
            .await
            .with_context(|| format!("fault {n} ({})", kind.name()))?;
        injected.fetch_add(1, Ordering::Relaxed);
        clock.line(&format!("fault {n}: {}", rec.describe()));
        if let Some(v) = &rec.violation {
            violations.push(format!("fault {n}: {v}"));
        }
        records.push(rec);
        for pair in [&mut cluster.a, &mut cluster.b] {
            pair.settled(faults::TAKEOVER_BOUND)
                .await
                .with_context(|| format!("after fault {n}"))?;
        }
    }
    if let Plan::Sequence(_) = cfg.plan {
        // One more pause of load after the last fault, then stop.
        let pause = rng.random_range(cfg.pause.0..=cfg.pause.1);
        tokio::time::sleep(pause.min(load_end.saturating_duration_since(Instant::now()))).await;
    } else {
        tokio::time::sleep_until(load_end).await;
    }
    let load_secs = clock.0.elapsed().as_secs_f64();

    // Drain: producers wait for their last RECEIPTs; consumers catch up.
    stop_producing.store(true, Ordering::Relaxed);
    let drain_start = Instant::now();
    clock.line(&format!(
        "load stopped: {}",
        progress_line(&ledger, &counters, &injected)
    ));
    for p in producers {
        p.await.context("a producer task panicked")?;
    }
    while lock(&ledger).progress().outstanding > 0 && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drain_secs = drain_start.elapsed().as_secs_f64();
    clock.line(&format!(
        "drained in {drain_secs:.1} s: {}",
        progress_line(&ledger, &counters, &injected)
    ));
    tokio::time::sleep(LATE_DUPLICATES).await;
    stop_consuming.store(true, Ordering::Relaxed);
    for c in consumers {
        c.await.context("a consumer task panicked")?;
    }
    progress.abort();

    // Whatever is left anywhere: the queue and the dead-letter queue on both masters.
    let mut depth_after = BTreeMap::new();
    for pair in [&mut cluster.a, &mut cluster.b] {
        let m = pair.master(faults::TAKEOVER_BOUND).await?;
        let url = pair.urls[m].clone();
        match clients::drain_node(&url, &ledger, FINAL_IDLE, FINAL_DRAIN).await {
            Ok(d) => clock.line(&format!(
                "final drain of {}: {} from the queue, {} from the dead-letter queue",
                pair.nodes[m].name(),
                d.queue,
                d.dead_letter
            )),
            Err(e) => violations.push(format!(
                "the final drain of {} failed: {e}",
                pair.nodes[m].name()
            )),
        }
        let depth = topology::queue_stats(&pair.nodes[m], "chaos")
            .await
            .map(|q| q.depth);
        depth_after.insert(pair.name.clone(), depth);
    }

    let audit = lock(&ledger).audit();
    if audit.lost > 0 {
        violations.push(format!(
            "{} of {} receipted messages lost (of them {} had another attempt consumed), e.g. {:?}",
            audit.lost, audit.receipted, audit.lost_other_attempt_consumed, audit.lost_sample
        ));
    }
    if audit.duplicates_unflagged > 0 {
        violations.push(format!(
            "{} second deliveries without redelivered:true, e.g. {:?}",
            audit.duplicates_unflagged, audit.unflagged_sample
        ));
    }
    if audit.phantom > 0 || audit.foreign > 0 {
        violations.push(format!(
            "{} deliveries of messages never sent, {} of bodies not sent by the load",
            audit.phantom, audit.foreign
        ));
    }
    let mut faults_by_kind: BTreeMap<&'static str, u64> = BTreeMap::new();
    for r in &records {
        *faults_by_kind.entry(r.kind.name()).or_default() += 1;
    }
    let mut takeovers: Vec<u64> = records.iter().filter_map(|r| r.takeover_ms).collect();
    takeovers.sort_unstable();
    Ok(Summary {
        event: "chaos-summary",
        ok: violations.is_empty(),
        seed: cfg.seed,
        producers: cfg.producers,
        consumers: cfg.consumers,
        window: cfg.window,
        rate: cfg.rate,
        load_secs,
        run_secs: clock.0.elapsed().as_secs_f64(),
        drain_secs,
        audit,
        faults: faults_by_kind,
        faults_total: records.len() as u64,
        max_takeover_ms: takeovers.last().copied(),
        median_takeover_ms: takeovers.get(takeovers.len() / 2).copied(),
        max_paused_ms: records.iter().filter_map(|r| r.paused_ms).max(),
        producer_reconnects: counters.producer_reconnects.load(Ordering::Relaxed),
        consumer_reconnects: counters.consumer_reconnects.load(Ordering::Relaxed),
        depth_after,
        violations,
    })
}
