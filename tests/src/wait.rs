//! Waiting: the one polling loop (sync and async) every test and helper waits with, and the
//! bounds they wait for. Tests wait on conditions, never on bare sleeps.

use std::panic::Location;
use std::thread;
use std::time::{Duration, Instant};

/// How long a node may take from spawn to its ready line (debug builds start slower).
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a node may take to exit after SIGTERM or a shutdown request.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// A generous bound for things that should happen at once (a message to arrive, a counter to
/// change); only reached when a test is about to fail.
pub const SOON: Duration = Duration::from_secs(10);
/// How long to watch for something that must not happen (a message that must not arrive).
pub const QUIET: Duration = Duration::from_millis(300);

/// How often [`poll_until`] and [`poll_until_async`] look at their condition.
const POLL: Duration = Duration::from_millis(15);

/// Polls `cond` every ~15 ms until it is true or `timeout` passes; returns whether it held
/// (for callers that want their own failure message).
pub fn poll_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() >= timeout {
            return false;
        }
        thread::sleep(POLL);
    }
}

/// Async [`poll_until`]: polls `cond` (an async closure) every ~15 ms until it is true or
/// `timeout` passes; returns whether it held.
pub async fn poll_until_async(timeout: Duration, mut cond: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond().await {
            return true;
        }
        if start.elapsed() >= timeout {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `cond` until it is true; panics (naming the caller's line) if it is still false after
/// `timeout`.
#[track_caller]
pub fn wait_for(timeout: Duration, cond: impl FnMut() -> bool) {
    let caller = Location::caller();
    if !poll_until(timeout, cond) {
        panic!("condition at {caller} not met within {timeout:?}");
    }
}

/// Async [`wait_for`]: polls `cond` (an async closure) until it is true; panics (naming the
/// caller's line) if it is still false after `timeout`.
#[track_caller]
pub fn wait_for_async(
    timeout: Duration,
    cond: impl AsyncFnMut() -> bool,
) -> impl Future<Output = ()> {
    let caller = Location::caller();
    async move {
        if !poll_until_async(timeout, cond).await {
            panic!("condition at {caller} not met within {timeout:?}");
        }
    }
}
