//! The chaos soak as a program: two master/slave pairs linked by a network connector, a load
//! through failover, random faults for N minutes, then an audit of every message
//! ([`mq_tests::chaos`]). `scripts/chaos.sh` builds the release binaries and runs it:
//!
//! ```text
//! cargo build --release --workspace --bins
//! MQ_TEST_PROFILE=release cargo run --release -p mq-tests --example chaos -- --minutes 20
//! ```
//!
//! Options (defaults in brackets): `--minutes N` [20], `--producers P` [4], `--consumers C` [4],
//! `--window W` [32], `--rate R` messages/s per producer, 0 for no limit [1000], `--size BYTES`
//! [256], `--seed S` [from the clock], `--faults kill_a,kill_b,...` [all kinds],
//! `--pause-min SECS` [5], `--pause-max SECS` [15], `--drain SECS` [120], `--progress SECS`
//! [30], `--log-dir DIR` (node logs written there at the end; data directories kept there on
//! failure).
//!
//! Prints progress and fault lines with timestamps, a human summary, then one JSON line
//! (`"event":"chaos-summary"`). Exit status: 0 when the audit found no violation, 1 when it did
//! (a receipted message lost, a second delivery without `redelivered:true`, a pair that did
//! not serve again), 2 on bad arguments or a run that could not be carried out, 3 when the run
//! overran its bound, 130 on Ctrl-C. Every node started is SIGKILLed by pid when the run ends, however it ends
//! (the nodes also die with this process).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use mq_tests::chaos::{self, Config, FaultKind, Plan, Summary};

fn parse_args(args: &[String]) -> anyhow::Result<Config> {
    let mut minutes = 20.0;
    let mut cfg = Config::soak(minutes);
    cfg.seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_secs());
    cfg.keep_data_on_failure = true;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .with_context(|| format!("{flag} needs a value"))
                .cloned()
        };
        let secs = |v: String| -> anyhow::Result<Duration> {
            let s: f64 = v
                .parse()
                .with_context(|| format!("{flag}: {v:?} is not a number"))?;
            if !(s >= 0.0 && s.is_finite()) {
                bail!("{flag}: {v:?} is not a duration in seconds");
            }
            Ok(Duration::from_secs_f64(s))
        };
        match flag.as_str() {
            "--minutes" => {
                let v = value()?;
                minutes = v.parse().with_context(|| format!("--minutes: {v:?}"))?;
                if !(minutes > 0.0 && minutes.is_finite()) {
                    bail!("--minutes must be positive");
                }
            }
            "--producers" => cfg.producers = value()?.parse().context("--producers")?,
            "--consumers" => cfg.consumers = value()?.parse().context("--consumers")?,
            "--window" => cfg.window = value()?.parse().context("--window")?,
            "--rate" => cfg.rate = value()?.parse().context("--rate")?,
            "--size" => cfg.size = value()?.parse().context("--size")?,
            "--seed" => cfg.seed = value()?.parse().context("--seed")?,
            "--faults" => {
                let kinds = value()?
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        FaultKind::parse(s).with_context(|| {
                            let all: Vec<_> = FaultKind::ALL.iter().map(|k| k.name()).collect();
                            format!("--faults: unknown kind {s:?} (kinds: {})", all.join(", "))
                        })
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                cfg.plan = Plan::Random(kinds);
            }
            "--pause-min" => cfg.pause.0 = secs(value()?)?,
            "--pause-max" => cfg.pause.1 = secs(value()?)?,
            "--drain" => cfg.drain = secs(value()?)?,
            "--progress" => cfg.progress = secs(value()?)?.max(Duration::from_secs(1)),
            "--log-dir" => cfg.log_dir = Some(PathBuf::from(value()?)),
            "-h" | "--help" => bail!(
                "usage: chaos [--minutes N] [--producers P] [--consumers C] [--window W] [--rate R] [--size BYTES] [--seed S] [--faults KIND,...] [--pause-min SECS] [--pause-max SECS] [--drain SECS] [--progress SECS] [--log-dir DIR]"
            ),
            other => bail!("unknown argument {other:?} (see --help)"),
        }
    }
    if cfg.pause.0 > cfg.pause.1 {
        bail!("--pause-min is above --pause-max");
    }
    if cfg.producers == 0 || cfg.consumers == 0 || cfg.window == 0 {
        bail!("--producers, --consumers and --window must be at least 1");
    }
    cfg.duration = Duration::from_secs_f64(minutes * 60.0);
    Ok(cfg)
}

fn print_summary(s: &Summary) {
    let a = &s.audit;
    println!("==== chaos summary (seed {}) ====", s.seed);
    println!(
        "load {:.0} s, run {:.0} s, drain {:.1} s",
        s.load_secs, s.run_secs, s.drain_secs
    );
    println!(
        "sent {} (SEND frames {}, resends {}), receipted {}, unreceipted {} (of them consumed {})",
        a.sent, a.sends, a.resends, a.receipted, a.unreceipted, a.unreceipted_consumed
    );
    println!(
        "consumed {} distinct, {} deliveries ({} in the final drain, {} from the dead-letter queue)",
        a.consumed, a.deliveries, a.leftover, a.dead_lettered
    );
    println!(
        "duplicates {} over {} messages: {} resends of unconfirmed SENDs, {} redeliveries flagged, {} unflagged",
        a.duplicates,
        a.duplicated_messages,
        a.duplicates_resent,
        a.duplicates_redelivered,
        a.duplicates_unflagged
    );
    println!("LOST (receipted, never consumed): {}", a.lost);
    println!("faults {}: {:?}", s.faults_total, s.faults);
    println!(
        "takeover ms: max {:?}, median {:?}; longest pause {:?} ms; reconnects producers {} consumers {}",
        s.max_takeover_ms,
        s.median_takeover_ms,
        s.max_paused_ms,
        s.producer_reconnects,
        s.consumer_reconnects
    );
    for v in &s.violations {
        println!("VIOLATION: {v}");
    }
    println!("{}", if s.ok { "OK" } else { "FAILED" });
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match parse_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("chaos: {e:#}");
            return ExitCode::from(2);
        }
    };
    let bound = cfg.hard_bound();
    // Last resort if the run wedges past its bound in a blocking call: exiting ends this
    // process, and every node dies with the thread that started it.
    std::thread::spawn(move || {
        std::thread::sleep(bound + Duration::from_secs(60));
        eprintln!("chaos: the run overran its bound of {bound:?}; exiting");
        std::process::exit(3);
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("chaos: starting the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    // The run's future is polled on this (main) thread: the nodes are started and restarted
    // here and die with it. Dropping the future (bound reached, Ctrl-C) drops the cluster,
    // which SIGKILLs every node.
    let outcome = runtime.block_on(async {
        tokio::select! {
            r = tokio::time::timeout(bound, chaos::run(cfg)) => match r {
                Ok(Ok(summary)) => Outcome::Done(Box::new(summary)),
                Ok(Err(e)) => Outcome::Failed(e),
                Err(_) => Outcome::Overran,
            },
            _ = tokio::signal::ctrl_c() => Outcome::Interrupted,
        }
    });
    match outcome {
        Outcome::Done(summary) => {
            print_summary(&summary);
            match serde_json::to_string(&summary) {
                Ok(line) => println!("{line}"),
                Err(e) => eprintln!("chaos: the summary does not serialise: {e}"),
            }
            if summary.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Outcome::Failed(e) => {
            eprintln!("chaos: {e:#}");
            ExitCode::from(2)
        }
        Outcome::Overran => {
            eprintln!("chaos: the run overran its bound of {bound:?}; every node was killed");
            ExitCode::from(3)
        }
        Outcome::Interrupted => {
            eprintln!("chaos: interrupted; every node was killed");
            ExitCode::from(130)
        }
    }
}

/// How [`main`]'s run ended.
enum Outcome {
    /// Audited.
    Done(Box<Summary>),
    /// Could not be carried out.
    Failed(anyhow::Error),
    /// Past its bound.
    Overran,
    /// Ctrl-C.
    Interrupted,
}
