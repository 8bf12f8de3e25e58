//! `mqctl`: the admin CLI of mq. Creates local clusters of `mqnode` processes, links them, and
//! shows queue statistics across every node in one table.
//!
//! `main` only parses the command line, runs the command on a tokio runtime and turns the
//! outcome into an exit code (the table is in [`error`]): 0 ok, 2 usage (clap's errors
//! included), 3 partial, distinct codes for the common failures, 1 for anything else. A
//! closed stdout (`mqctl ... | head`) ends the program quietly with 0.

mod args;
mod bench;
mod client;
mod cluster;
mod commands;
mod error;
mod home;
mod lifecycle;
mod links;
mod output;
mod ports;
mod postgres;
mod process;
mod security;
mod status;
mod sys;
mod topology;
mod zookeeper;

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;

use crate::error::{CliError, EXIT_FAILED, EXIT_OK};

fn main() -> ExitCode {
    // clap exits with 2 on usage errors and 0 for --help and --version.
    let cli = args::Cli::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    // A bench of one producer and one consumer runs on one worker: with two, a worker that
    // takes a socket's readiness wakes its idle peer on every message, which a receipted
    // 1+1 pays in its round trip. TOKIO_WORKER_THREADS still decides when set.
    if let args::Command::Bench(b) = &cli.command
        && b.producers + b.consumers <= 2
        && std::env::var_os("TOKIO_WORKER_THREADS").is_none()
    {
        builder.worker_threads(1);
    }
    let runtime = builder
        .enable_all()
        .build()
        .context("cannot start the async runtime");
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let result = runtime.block_on(commands::run(cli));
    // Do not wait for stray blocking tasks (a hung request) once the command has ended.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(outcome) => outcome.exit_code(),
        Err(CliError::BrokenPipe) => ExitCode::from(EXIT_OK),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
