//! The role machine: slave → master → (stepdown or lock lost) → slave …, until shutdown.
//!
//! ```text
//!            try_lock ok (+ fence)                 stepdown / lock file replaced
//!  start ──▶ [slave: retry every lockAcquireSleepInterval] ──▶ [master] ───────────────▶ [slave]
//!              admin API up, /readyz 503                   │ crate::master::become_master:
//!              no transports                               │ open store, recover, bind
//!                                                          │ transports, start bridges
//!                                                          │ every lockKeepAlivePeriod: is the
//!                                                          │ file at DATA/lock still ours?
//! ```
//!
//! Runs as one task on the tokio runtime; the master's parts run as their own tasks
//! ([`crate::master`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use mq_shared::api::Role;
use tokio_util::sync::CancellationToken;

use super::{LockRecord, StoreLock};
use crate::master::{MasterParts, STORE_FILE, become_master};
use crate::node::{NodeError, NodeState};
use crate::store;

/// Where the first outcome (serving, waiting as slave, or failed) is reported to `start`.
pub type ReadySignal = Option<tokio::sync::oneshot::Sender<Result<(), NodeError>>>;

pub(crate) fn signal(ready: &mut ReadySignal, r: Result<(), NodeError>) -> Result<(), NodeError> {
    match ready.take() {
        Some(tx) => {
            // The first outcome goes to start(); a failure is also the node's end.
            let failed = r.is_err();
            let _ = tx.send(r);
            if failed {
                Err(NodeError::Stopped)
            } else {
                Ok(())
            }
        }
        None => r,
    }
}

/// Slave → master → (stepdown or lock lost) → slave …, until shutdown.
pub async fn run(state: Arc<NodeState>, mut ready: ReadySignal) -> Result<(), NodeError> {
    let cfg = state.config.clone();
    let mut announced_slave = false;
    loop {
        // Slave phase: wait for the lock.
        let lock = loop {
            match StoreLock::try_acquire(&cfg.data_dir, &cfg.name) {
                Ok(Some(l)) => break l,
                Ok(None) => {
                    if !announced_slave {
                        tracing::info!(
                            dir = %cfg.data_dir.display(),
                            holder = %LockRecord::read(&cfg.data_dir)
                                .map_or_else(|| "unknown".to_string(), |r| r.to_string()),
                            interval_ms = cfg.lock_acquire_sleep_interval.as_millis() as u64,
                            "store is locked by another node; waiting as slave"
                        );
                        state.emit(Role::Slave, Vec::new());
                        announced_slave = true;
                        signal(&mut ready, Ok(()))?;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot try the store lock; stopping");
                    return signal(&mut ready, Err(e.into()));
                }
            }
            tokio::select! {
                _ = state.shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(cfg.lock_acquire_sleep_interval) => {}
            }
        };
        tracing::info!(
            dir = %cfg.data_dir.display(),
            previous = %lock.previous().map_or_else(|| "none".to_string(), |r| r.to_string()),
            "store lock taken; starting as master"
        );
        if lock.fenced() && cfg.data_dir.join(STORE_FILE).exists() {
            // Not handed over on this very file: a master may still hold a replaced one. Give
            // its keep-alive check one period to notice and demote (see `ha`).
            tracing::warn!(
                wait_ms = cfg.lock_keep_alive_period.as_millis() as u64,
                "the lock file is new or was replaced; waiting one lockKeepAlivePeriod before serving"
            );
            tokio::select! {
                _ = state.shutdown.cancelled() => {
                    lock.release();
                    return signal(&mut ready, Ok(()));
                }
                _ = tokio::time::sleep(cfg.lock_keep_alive_period) => {}
            }
            if !lock.still_held() {
                tracing::warn!("the lock file was replaced again while waiting; back to slave");
                lock.release();
                continue;
            }
        }
        let term = CancellationToken::new();
        state.set_stepdown_term(Some(term.clone()));
        let serving = match take_over(&state, &lock).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                state.withdraw();
                lock.release();
                if state.shutdown.is_cancelled() {
                    return signal(&mut ready, Ok(()));
                }
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot serve; stopping");
                state.withdraw();
                lock.release();
                return signal(&mut ready, Err(e));
            }
        };
        signal(&mut ready, Ok(()))?;
        // Master phase.
        let mut keepalive = tokio::time::interval(cfg.lock_keep_alive_period);
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let reason = loop {
            tokio::select! {
                _ = state.shutdown.cancelled() => break Demote::Shutdown,
                _ = term.cancelled() => break Demote::Stepdown,
                _ = keepalive.tick() => {
                    if !lock.still_held() {
                        tracing::error!(
                            dir = %cfg.data_dir.display(),
                            "the store lock file was removed or replaced; demoting to slave so there are never two masters"
                        );
                        break Demote::LockLost;
                    }
                }
            }
        };
        let since = Instant::now();
        state.withdraw();
        serving.stop().await;
        lock.release();
        let took_ms = since.elapsed().as_millis() as u64;
        match reason {
            Demote::Shutdown => {
                tracing::info!(took_ms, "stopped; store closed and lock released");
                return Ok(());
            }
            Demote::Stepdown => {
                tracing::info!(
                    took_ms,
                    backoff_ms = mq_shared::defaults::STEPDOWN_BACKOFF_MS,
                    "stepped down: store closed and lock released; waiting as slave"
                );
                state.emit(Role::Slave, Vec::new());
                announced_slave = true;
                tokio::select! {
                    _ = state.shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_millis(mq_shared::defaults::STEPDOWN_BACKOFF_MS)) => {}
                }
            }
            Demote::LockLost => {
                tracing::info!(took_ms, "demoted: store closed; waiting as slave");
                state.emit(Role::Slave, Vec::new());
                announced_slave = true;
            }
        }
    }
}

/// Opens the store and serves, holding `lock`. A store still open by another process (a master
/// that lost its lock file and is closing) is retried every `lockAcquireSleepInterval` while the
/// lock stays ours. `Ok(None)`: shutdown, or the lock file was replaced meanwhile.
async fn take_over(
    state: &Arc<NodeState>,
    lock: &StoreLock,
) -> Result<Option<MasterParts>, NodeError> {
    let cfg = &state.config;
    let mut logged = false;
    loop {
        match become_master(state, None).await {
            Ok(parts) => return Ok(Some(parts)),
            Err(NodeError::Store(store::StoreError::AlreadyOpen { path })) => {
                if !logged {
                    tracing::warn!(
                        store = %path,
                        "the store is still open by another process; waiting for it to close"
                    );
                    logged = true;
                }
            }
            Err(e) => return Err(e),
        }
        tokio::select! {
            _ = state.shutdown.cancelled() => return Ok(None),
            _ = tokio::time::sleep(cfg.lock_acquire_sleep_interval) => {}
        }
        if !lock.still_held() {
            tracing::warn!(
                "the store lock file was replaced while waiting for the store; back to slave"
            );
            return Ok(None);
        }
    }
}

enum Demote {
    Shutdown,
    Stepdown,
    LockLost,
}
