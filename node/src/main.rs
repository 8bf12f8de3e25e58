//! `mqnode`: parses flags, sets up the log ([`logging`]), starts the node, prints its ready
//! line(s) on stdout, stops on SIGTERM/SIGINT.

mod logging;

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use mqnode::config::{NodeConfig, Options, resolve};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// mimalloc instead of glibc's allocator: the store's writer thread allocates what the
/// connection tasks free (message records, reads of a backlog), and glibc's per-thread arenas
/// then spend a quarter of a drain in locks and consolidation (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` option (its position in mimalloc's option list, which keeps its
/// numbering across versions).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Memory freed is given back to the system after 2 ms instead of mimalloc's 10: a drained
/// backlog's memory leaves sooner, for a few percent of throughput (docs/BENCHMARKS.md).
#[allow(unsafe_code)]
fn tune_allocator() {
    // SAFETY: `mi_option_set` stores an integer option of the allocator; it may be called at
    // any time from any thread.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 2) }
}

fn main() -> ExitCode {
    tune_allocator();
    let args = Options::parse();
    // The configuration first: it says where the log goes. Its errors go to stderr.
    let config = match resolve(args).context("invalid configuration") {
        Ok(config) => config,
        Err(e) => {
            eprintln!("mqnode: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let to_file = config.log.file.is_some();
    if let Err(e) = logging::init(&config.log) {
        eprintln!("mqnode: {e:#}");
        return ExitCode::FAILURE;
    }
    // No transparent huge pages: mimalloc asks for them, and 2 MiB pages half used would
    // double what a backlog keeps resident.
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::warn!(error = %e, "cannot turn transparent huge pages off; memory use may be higher");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mqnode: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // stderr always has it (a service manager keeps it); a log file gets it too.
            if to_file {
                tracing::error!(error = %format!("{e:#}"), "stopped with an error");
            }
            eprintln!("mqnode: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: NodeConfig) -> anyhow::Result<()> {
    let name = config.name.clone();
    let shutdown = CancellationToken::new();
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let sd = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("signal received; stopping");
        sd.cancel();
    });
    // SIGHUP re-reads the security file; a bad file keeps the rules in force and says why.
    let security = config.security.clone();
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match security.reload() {
                Ok(()) => tracing::info!("SIGHUP: security file reloaded"),
                Err(e) => {
                    tracing::warn!(error = %e, "SIGHUP: security file not reloaded; the old rules stay")
                }
            }
        }
    });
    let mut node = mqnode::start(config, shutdown)
        .await
        .with_context(|| format!("node {name} failed to start"))?;
    if let Some(mut events) = node.take_events() {
        tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                if let Ok(line) = serde_json::to_string(&ev) {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                }
            }
        });
    }
    node.wait()
        .await
        .with_context(|| format!("node {name} stopped with an error"))?;
    Ok(())
}
