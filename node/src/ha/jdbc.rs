//! The role machine of `--ha jdbc`: master/slave through the lease row of the PostgreSQL
//! store ([`super::lease`], ActiveMQ's lease database locker), members with data directories
//! of their own.
//!
//! ```text
//!            try_acquire: taken (only an ended lease)        lease lost (not renewed in time,
//!  start ──▶ [slave: try when the row says it ends] ──▶ [master] ── or deposed) / stepdown ──▶ [slave]
//!              admin API up, /readyz 503                  │ crate::master::become_master with
//!              database down: try every                   │ the lease's fence: every store
//!              lock-acquire-sleep-interval                │ transaction checks it first
//! ```
//!
//! - At start the lease's database is reached (its own pool of two connections, so renewals
//!   never wait behind the store's writes), the schema brought up to date, and with
//!   `max-allowable-diff-from-db-time` this member's clock checked against the database's. A
//!   refused login, a missing database or a clock too far off stop the node with one
//!   sentence; a server that does not answer yet is waited for, as a slave.
//! - A master whose renewals fail stops serving at its lease's local deadline, before the
//!   lease can end in the database (see [`super::lease`]): it withdraws (the admin API says
//!   slave), closes its transports and store, and waits as slave again. Writes it still
//!   attempts are refused by the fence once another member holds the lease.
//! - Losing the database: the master's commits fail (no receipts), its lease is lost, and
//!   every member keeps trying; the first to take the lease once the database is back serves.

use std::sync::Arc;
use std::time::Duration;

use mq_shared::api::Role;
use tokio_util::sync::CancellationToken;

use super::lease::{Lease, LeaseError, LeaseLocker, LostReason, SlaveWait};
use super::role::{ReadySignal, signal};
use crate::config::ConfigError;
use crate::master::become_master;
use crate::node::{NodeError, NodeState};
use crate::store::pg::{self, Fence, PgError, PgPool};
use crate::store::{Cause, StoreError};

/// Connections of the lease's own pool.
const LEASE_POOL_SIZE: usize = 2;

/// Whether a start error means the database cannot be reached yet (worth waiting for), not
/// that it refuses this member (a sentence to stop with).
fn unreachable(e: &PgError) -> bool {
    matches!(
        e,
        PgError::Unreachable { .. } | PgError::Timeout { .. } | PgError::PoolBusy { .. }
    )
}

/// Whether a failure to open the store may pass with the database (down, busy, the lease
/// taken meanwhile), so the member waits as slave and tries again.
fn transient(e: &NodeError) -> bool {
    match e {
        NodeError::Store(StoreError::OpenDatabase { cause, .. }) => match &**cause {
            Cause::Postgres(p) => !p.is_fatal() || matches!(p, PgError::Fenced(_)),
            _ => false,
        },
        _ => false,
    }
}

/// Reaches the lease's database, waiting (as slave) while it does not answer.
async fn connect(
    state: &Arc<NodeState>,
    ready: &mut ReadySignal,
    announced: &mut bool,
) -> Result<Option<PgPool>, NodeError> {
    let cfg = &state.config;
    let Some(store) = cfg.store.as_ref() else {
        return Err(NodeError::Config(ConfigError::Invalid {
            key: "ha",
            message: "jdbc needs --store postgres://USER@HOST:PORT/DB".into(),
        }));
    };
    let mut config = store.clone();
    config.pool_size = LEASE_POOL_SIZE;
    config.application_name = format!("mqnode {} lease", cfg.name);
    let mut warned = false;
    loop {
        match pg::open(&config).await {
            Ok((pool, _)) => return Ok(Some(pool)),
            Err(e) if unreachable(&e) => {
                if !warned {
                    tracing::warn!(error = %e, "cannot reach the lease's database; waiting as slave and trying again");
                    warned = true;
                }
                announce_slave(state, ready, announced)?;
            }
            Err(e) => {
                return Err(NodeError::Store(StoreError::OpenDatabase {
                    url: config.url.to_string(),
                    cause: Arc::new(Cause::Postgres(e)),
                }));
            }
        }
        tokio::select! {
            _ = state.shutdown.cancelled() => return Ok(None),
            _ = tokio::time::sleep(cfg.lock_acquire_sleep_interval) => {}
        }
    }
}

/// Reports the slave role once (the ready line, then `start` returns).
fn announce_slave(
    state: &Arc<NodeState>,
    ready: &mut ReadySignal,
    announced: &mut bool,
) -> Result<(), NodeError> {
    if !*announced {
        state.emit(Role::Slave, Vec::new());
        *announced = true;
        signal(ready, Ok(()))?;
    }
    Ok(())
}

/// Waits as slave until the lease is taken; `None` at shutdown.
async fn wait_for_lease(
    state: &Arc<NodeState>,
    locker: &LeaseLocker,
    ready: &mut ReadySignal,
    announced: &mut bool,
) -> Result<Option<Lease>, NodeError> {
    let mut waiting = SlaveWait::new(locker.timing());
    loop {
        let sleep = match locker.try_acquire().await {
            Ok(Ok(lease)) => return Ok(Some(lease)),
            Ok(Err(row)) => waiting.held(&row),
            Err(LeaseError::Db(e)) if e.is_fatal() => return Err(LeaseError::Db(e).into()),
            Err(e) => waiting.failed(&e),
        };
        announce_slave(state, ready, announced)?;
        tokio::select! {
            _ = state.shutdown.cancelled() => return Ok(None),
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}

enum Demote {
    Shutdown,
    Stepdown,
    Lost(LostReason),
}

/// Slave → master → (lease lost or stepdown) → slave …, until shutdown.
pub async fn run(state: Arc<NodeState>, mut ready: ReadySignal) -> Result<(), NodeError> {
    let cfg = state.config.clone();
    let mut announced = false;
    let pool = match connect(&state, &mut ready, &mut announced).await {
        Ok(Some(p)) => p,
        Ok(None) => return signal(&mut ready, Ok(())),
        Err(e) => {
            tracing::error!(error = %e, "cannot use the lease's database; stopping");
            return signal(&mut ready, Err(e));
        }
    };
    let locker = match LeaseLocker::new(
        pool.clone(),
        &cfg.name,
        cfg.lock_keep_alive_period,
        cfg.lock_acquire_sleep_interval,
    ) {
        Ok(l) => l.max_allowable_diff_from_db_time(cfg.max_allowable_diff_from_db_time),
        Err(e) => return signal(&mut ready, Err(e.into())),
    };
    match locker.clock_offset().await {
        Ok(o) => tracing::info!(
            offset_ms = o.offset_ms,
            rtt_ms = o.rtt_ms,
            "clock measured against the database's"
        ),
        Err(e @ LeaseError::ClockSkew { .. }) => {
            tracing::error!(error = %e, "stopping");
            return signal(&mut ready, Err(e.into()));
        }
        // The database went away again: the lease attempts below wait for it.
        Err(e) => tracing::warn!(error = %e, "cannot measure the clock against the database's"),
    }
    loop {
        let lease = match wait_for_lease(&state, &locker, &mut ready, &mut announced).await {
            Ok(Some(l)) => l,
            Ok(None) => {
                pool.close();
                return signal(&mut ready, Ok(()));
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot try the lease; stopping");
                pool.close();
                return signal(&mut ready, Err(e));
            }
        };
        tracing::info!(
            holder = %cfg.name,
            epoch = lease.epoch(),
            "lease taken; starting as master"
        );
        let fence = Fence {
            holder_id: locker.holder_id().to_string(),
            epoch: lease.epoch(),
        };
        let term = CancellationToken::new();
        state.set_stepdown_term(Some(term.clone()));
        let serving = match become_master(&state, Some(fence)).await {
            Ok(s) => s,
            Err(e) if transient(&e) => {
                tracing::warn!(error = %e, "cannot open the store; waiting as slave and trying again");
                state.withdraw();
                release(&lease).await;
                announce_slave(&state, &mut ready, &mut announced)?;
                tokio::select! {
                    _ = state.shutdown.cancelled() => return signal(&mut ready, Ok(())),
                    _ = tokio::time::sleep(cfg.lock_acquire_sleep_interval) => {}
                }
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot serve; stopping");
                state.withdraw();
                release(&lease).await;
                pool.close();
                return signal(&mut ready, Err(e));
            }
        };
        signal(&mut ready, Ok(()))?;
        let reason = if lease.is_held() {
            tokio::select! {
                _ = state.shutdown.cancelled() => Demote::Shutdown,
                _ = term.cancelled() => Demote::Stepdown,
                r = lease.lost() => Demote::Lost(r),
            }
        } else {
            // Lost while the store was opened and recovered.
            Demote::Lost(lease.lost().await)
        };
        let since = tokio::time::Instant::now();
        // Stop reporting master first, then stop serving: transports, bridges, the store.
        state.withdraw();
        if let Demote::Lost(r) = &reason {
            tracing::error!(reason = %r, "the lease is lost; stopping serving so there are never two masters");
        }
        serving.stop().await;
        let took_ms = since.elapsed().as_millis() as u64;
        match reason {
            Demote::Shutdown => {
                release(&lease).await;
                pool.close();
                tracing::info!(took_ms, "stopped; store closed and lease released");
                return Ok(());
            }
            Demote::Stepdown => {
                release(&lease).await;
                tracing::info!(
                    took_ms,
                    backoff_ms = mq_shared::defaults::STEPDOWN_BACKOFF_MS,
                    "stepped down: store closed and lease released; waiting as slave"
                );
                state.emit(Role::Slave, Vec::new());
                announced = true;
                tokio::select! {
                    _ = state.shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_millis(mq_shared::defaults::STEPDOWN_BACKOFF_MS)) => {}
                }
            }
            Demote::Lost(_) => {
                tracing::info!(took_ms, "demoted: store closed; waiting as slave");
                state.emit(Role::Slave, Vec::new());
                announced = true;
            }
        }
    }
}

/// Ends the lease in the database so a slave may take it at once (when the database cannot be
/// reached it runs out by itself).
async fn release(lease: &Lease) {
    if let Err(e) = lease.release().await {
        tracing::warn!(error = %e, "cannot release the lease; it ends by itself after lock-acquire-sleep-interval");
    }
}
