//! `mqnode`: parses flags, starts the node, prints its ready line(s), stops on SIGTERM/SIGINT.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use mqnode::config::{Options, resolve};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    // A panic anywhere (a task included) is an error in the log, not only a line on stderr.
    std::panic::set_hook(Box::new(|info| {
        tracing::error!(panic = %info, "panic");
    }));
    let args = Options::parse();
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
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mqnode: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Options) -> anyhow::Result<()> {
    let config = resolve(args).context("invalid configuration")?;
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
