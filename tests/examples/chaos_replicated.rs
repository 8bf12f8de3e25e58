//! The chaos soak of a replicated group (`scripts/chaos.sh replicated`): three `mqnode --ha
//! replicated` members, each in a network namespace of its own, ZooKeeper in another
//! ([`mq_tests::replicated::Group`]); producers send persistent messages with receipts to the
//! master and consumers ack each one (client-individual), both following the master as a
//! [`RoleWatch`] sees it, from inside the master's host. For `--minutes N` one fault at a time
//! is drawn at random (seeded): a SIGKILL of the master or of a replica (restarted 1-4 s later),
//! a SIGSTOP of the master (0.5-3 s), or a cut of the master's or a replica's links to
//! ZooKeeper and the other members (1-4 s); the group must settle again (one master, every
//! replica streaming at lag 0) before the next one.
//!
//! Then the producers stop, the consumers drain until every receipted message has come (at most
//! `--drain` seconds), and the ledger ([`mq_tests::chaos::ledger`]) says what was lost (a
//! receipted SEND never delivered) and whether a second delivery of one SEND lacked
//! `redelivered:true`; the watch says whether two members ever answered `master` in one round.
//!
//! Options: `--minutes N` [10], `--seed S` [from the clock], `--producers P` [4],
//! `--consumers C` [4], `--session-ms MS` [1000], `--drain SECS` [120], `--sync MODE`
//! [`quorum_disk`; `quorum_mem` promises the same under one fault at a time, since each
//! replica syncs what it received right after acknowledging it; `local_disk` confirms before
//! any replica has a group, so a failover may lose what it confirmed last and the audit
//! counts it]. Prints a line per fault and a JSON summary last
//! (`"event":"chaos-replicated-summary"`). Exit status 0 when
//! the audit found no violation, 1 when it did, 2 on bad arguments or a run that could not be
//! carried out. Needs root (network namespaces), `ip`, `nft`, a JRE and ZooKeeper.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mq_shared::client::{AckMode, ConnectOptions, StompClient};
use mq_tests::chaos::ledger::{Ledger, MsgId, SharedLedger, Source, lock};
use mq_tests::replicated::{AdminTarget, Group, GroupOpts, RoleWatch, broker_info};
use mqnode::ha::replicated::options::SyncMode;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::runtime::Handle;

const DEST: &str = "/queue/chaos.replicated";
const BODY: usize = 200;
/// Bound on a fault's recovery: the group serving again with every member streaming.
const SETTLE: Duration = Duration::from_secs(60);

struct Args {
    minutes: f64,
    seed: u64,
    producers: usize,
    consumers: usize,
    session_ms: u64,
    drain: Duration,
    sync: String,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        minutes: 10.0,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs()),
        producers: 4,
        consumers: 4,
        session_ms: 1000,
        drain: Duration::from_secs(120),
        sync: "quorum_disk".into(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--minutes" => a.minutes = value.parse().context("--minutes")?,
            "--seed" => a.seed = value.parse().context("--seed")?,
            "--producers" => a.producers = value.parse().context("--producers")?,
            "--consumers" => a.consumers = value.parse().context("--consumers")?,
            "--session-ms" => a.session_ms = value.parse().context("--session-ms")?,
            "--drain" => a.drain = Duration::from_secs(value.parse().context("--drain")?),
            "--sync" => {
                // The node's own list of modes, so that the two cannot drift apart.
                let mode = <SyncMode as clap::ValueEnum>::from_str(value, false).map_err(|_| {
                    let modes: Vec<&str> = <SyncMode as clap::ValueEnum>::value_variants()
                        .iter()
                        .map(|m| m.as_str())
                        .collect();
                    anyhow::anyhow!("--sync {value}: expected one of {}", modes.join(", "))
                })?;
                a.sync = mode.as_str().into();
            }
            other => bail!("unknown option {other}"),
        }
    }
    if a.minutes.is_nan() || a.minutes <= 0.0 || a.producers == 0 || a.consumers == 0 {
        bail!("--minutes, --producers and --consumers must be positive");
    }
    Ok(a)
}

/// What the clients share: the members' runtimes and admin APIs, and who is master now.
#[derive(Clone)]
struct Members {
    handles: Vec<Handle>,
    admins: Vec<AdminTarget>,
    watch: Arc<RoleWatch>,
}

impl Members {
    /// The master's index and STOMP address (inside its host), when one serves.
    async fn master(&self) -> Option<(usize, String)> {
        let i = self.watch.master()?;
        let info = self.handles[i]
            .spawn(broker_info(self.admins[i].clone(), Duration::from_secs(1)))
            .await
            .ok()??;
        let t = info.transports.first()?;
        Some((i, t.strip_prefix("tcp://").unwrap_or(t).to_string()))
    }
}

async fn connect(addr: &str) -> Option<StompClient> {
    let opts = ConnectOptions {
        connect_timeout: Duration::from_secs(3),
        ..ConnectOptions::default()
    };
    StompClient::connect(addr, opts).await.ok()
}

impl Members {
    /// Runs `session` on a connection to the master, inside the master's host: `Ok(None)` when
    /// no master serves (after a short wait) or it could not be reached, `Err` when the task
    /// failed.
    async fn on_master<T, F, Fut>(&self, session: F) -> Result<Option<T>, tokio::task::JoinError>
    where
        F: FnOnce(StompClient) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let Some((i, addr)) = self.master().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            return Ok(None);
        };
        self.handles[i]
            .spawn(async move {
                let c = connect(&addr).await?;
                Some(session(c).await)
            })
            .await
    }
}

/// One producer: sends its next message (or resends the unconfirmed one, as a new attempt)
/// with a receipt on a connection to the master, one at a time, until `stop`.
async fn produce(p: u32, m: Members, ledger: SharedLedger, stop: Arc<AtomicBool>) {
    let mut next = MsgId {
        producer: p,
        seq: 0,
        attempt: 0,
    };
    while !stop.load(Ordering::Relaxed) {
        let (l, s, mut id) = (ledger.clone(), stop.clone(), next);
        let session = m.on_master(move |mut c| async move {
            while !s.load(Ordering::Relaxed) {
                lock(&l).sent(id);
                let send = c.send(DEST, id.body(BODY), &[("persistent", "true")], true);
                match tokio::time::timeout(Duration::from_secs(5), send).await {
                    Ok(Ok(())) => {
                        lock(&l).receipted(id);
                        id = MsgId {
                            producer: p,
                            seq: id.seq + 1,
                            attempt: 0,
                        };
                    }
                    _ => {
                        // Unconfirmed: resent as the next attempt on the next connection.
                        id.attempt = id.attempt.saturating_add(1);
                        return id;
                    }
                }
            }
            id
        });
        match session.await {
            Ok(Some(n)) => next = n,
            Ok(None) => {}
            Err(_) => return,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One consumer: records then acks every message of [`DEST`] on a connection to the master,
/// until `stop`.
async fn consume(m: Members, ledger: SharedLedger, stop: Arc<AtomicBool>, source: Source) {
    while !stop.load(Ordering::Relaxed) {
        let (l, s) = (ledger.clone(), stop.clone());
        let session = m.on_master(move |mut c| async move {
            let sub = c
                .subscribe(
                    DEST,
                    "chaos",
                    AckMode::ClientIndividual,
                    &[("activemq.prefetchSize", "16")],
                )
                .await;
            if sub.is_err() {
                return;
            }
            while !s.load(Ordering::Relaxed) {
                match c.recv_timeout(Duration::from_millis(500)).await {
                    Ok(Some(f)) => {
                        match MsgId::parse(&f.body) {
                            Some(id) => {
                                let redelivered = f.header("redelivered") == Some("true");
                                lock(&l).delivered(id, redelivered, source);
                            }
                            None => lock(&l).foreign(),
                        }
                        if c.ack(&f).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(_) => return,
                }
            }
        });
        let _ = session.await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The kinds of fault, drawn uniformly.
const KINDS: [&str; 5] = [
    "kill_master",
    "kill_replica",
    "pause_master",
    "cut_master",
    "cut_replica",
];

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("chaos_replicated: {e:#}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("chaos_replicated: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> anyhow::Result<bool> {
    let t0 = Instant::now();
    let log = |line: String| println!("[{:>8.1}s] {line}", t0.elapsed().as_secs_f64());
    let mut opts = GroupOpts::new("chaos").sync(&args.sync);
    opts.session_ms = args.session_ms;
    let mut g = Group::start(opts);
    let all = [0, 1, 2];
    let (m0, e0) = g.settled(&all, SETTLE);
    log(format!(
        "group up: master {} epoch {e0}, seed {}, sync {}",
        g.nodes[m0].name(),
        args.seed,
        args.sync
    ));
    let watch = Arc::new(RoleWatch::start(g.targets(), Duration::from_millis(100)));
    let members = Members {
        handles: g.rts.iter().map(|r| r.handle()).collect(),
        admins: (0..3).map(|i| g.admin(i)).collect(),
        watch: watch.clone(),
    };
    let driver = tokio::runtime::Runtime::new().context("a runtime for the clients")?;
    let ledger: SharedLedger = Arc::new(std::sync::Mutex::new(Ledger::new(args.producers)));
    let stop_producing = Arc::new(AtomicBool::new(false));
    let stop_consuming = Arc::new(AtomicBool::new(false));
    let producers: Vec<_> = (0..args.producers)
        .map(|p| {
            driver.spawn(produce(
                p as u32,
                members.clone(),
                ledger.clone(),
                stop_producing.clone(),
            ))
        })
        .collect();
    let consumers: Vec<_> = (0..args.consumers)
        .map(|_| {
            driver.spawn(consume(
                members.clone(),
                ledger.clone(),
                stop_consuming.clone(),
                Source::Load,
            ))
        })
        .collect();

    let mut rng = StdRng::seed_from_u64(args.seed);
    let end = t0 + Duration::from_secs_f64(args.minutes * 60.0);
    let mut counts = std::collections::BTreeMap::<&str, u64>::new();
    let mut unsettled = Vec::new();
    let faults = AtomicU64::new(0);
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(rng.random_range(1000..4000)));
        let (m, _) = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            g.settled(&all, SETTLE)
        })) {
            Ok(s) => s,
            Err(_) => {
                unsettled.push(t0.elapsed().as_secs_f64());
                log("the group did not settle; ending the run".into());
                break;
            }
        };
        let kind = KINDS[rng.random_range(0..KINDS.len())];
        let replica = [(m + 1) % 3, (m + 2) % 3][rng.random_range(0..2)];
        // A pause is 0.5-3 s, a kill or a cut 1-4 s.
        let hold = if kind == "pause_master" {
            Duration::from_millis(rng.random_range(500..3000))
        } else {
            Duration::from_millis(rng.random_range(1000..4000))
        };
        let p = lock(&ledger).progress();
        log(format!(
            "fault {}: {kind} (master {}, replica {}, {hold:?}); receipted {} consumed {}",
            faults.load(Ordering::Relaxed) + 1,
            g.nodes[m].name(),
            g.nodes[replica].name(),
            p.receipted,
            p.consumed
        ));
        match kind {
            "kill_master" | "kill_replica" => {
                let i = if kind == "kill_master" { m } else { replica };
                g.nodes[i].kill();
                std::thread::sleep(hold);
                g.nodes[i].restart();
            }
            "pause_master" => {
                g.nodes[m].pause();
                std::thread::sleep(hold);
                g.nodes[m].resume();
            }
            _ => {
                let i = if kind == "cut_master" { m } else { replica };
                g.isolate(i);
                std::thread::sleep(hold);
                g.rejoin(i);
            }
        }
        faults.fetch_add(1, Ordering::Relaxed);
        *counts.entry(kind).or_default() += 1;
    }
    let settled_at_end =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| g.settled(&all, SETTLE))).is_ok();

    log("stopping the producers".into());
    stop_producing.store(true, Ordering::Relaxed);
    for p in producers {
        let _ = driver.block_on(p);
    }
    let drain_end = Instant::now() + args.drain;
    while lock(&ledger).progress().outstanding > 0 && Instant::now() < drain_end {
        std::thread::sleep(Duration::from_millis(200));
    }
    stop_consuming.store(true, Ordering::Relaxed);
    for c in consumers {
        let _ = driver.block_on(c);
    }
    let audit = lock(&ledger).audit();
    drop(members);
    let watch = Arc::try_unwrap(watch).ok();
    let doubles = watch
        .as_ref()
        .map(|w| w.two_masters_so_far())
        .unwrap_or_default();
    let two_masters = doubles.len();
    for r in &doubles {
        println!(
            "two masters in the round at {:?}: roles {:?}, answered at {:?}",
            r.at, r.roles, r.answered
        );
    }
    let rounds = watch.map(|w| w.finish().rounds.len()).unwrap_or(0);
    let ok = audit.lost == 0
        && audit.duplicates_unflagged == 0
        && two_masters == 0
        && unsettled.is_empty()
        && settled_at_end;
    println!(
        "receipted {} lost {} consumed {} duplicates {} (resent {}, redelivered {}, unflagged {}); faults {}; two-master rounds {two_masters} of {rounds}",
        audit.receipted,
        audit.lost,
        audit.consumed,
        audit.duplicates,
        audit.duplicates_resent,
        audit.duplicates_redelivered,
        audit.duplicates_unflagged,
        faults.load(Ordering::Relaxed)
    );
    println!(
        "{}",
        json!({
            "event": "chaos-replicated-summary",
            "ok": ok,
            "seed": args.seed,
            "minutes": args.minutes,
            "session_ms": args.session_ms,
            "sync": args.sync,
            "faults": counts,
            "faults_total": faults.load(Ordering::Relaxed),
            "unsettled_at_s": unsettled,
            "settled_at_end": settled_at_end,
            "watch_rounds": rounds,
            "two_master_rounds": two_masters,
            "two_master_samples": doubles
                .iter()
                .take(5)
                .map(|r| format!("at {:?}: {:?} answered at {:?}", r.at, r.roles, r.answered))
                .collect::<Vec<_>>(),
            "audit": audit,
        })
    );
    Ok(ok)
}
