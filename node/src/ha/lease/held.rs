//! A held [`Lease`]: its state as a watch, the deadline [`Lease::is_held`] checks, fenced
//! transactions, release, and the renewal task that keeps it.

use std::sync::{Arc, Mutex};

use deadpool_postgres::Transaction;
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::slot::Slot;
use super::timing::{LeaseTiming, Schedule};
use super::{LeaseError, LeaseInfo, LeaseLocker, lock_ignoring_poison, millis};
use crate::store::pg::lock::{self, FenceCheck, Grant};
use crate::store::pg::{PgError, PgPool};

/// A lease's state, as [`Lease::state`] watches it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LeaseState {
    /// Held; `expires_at_ms` (database time) moves on with each renewal.
    Held {
        /// The lease's epoch.
        epoch: i64,
        /// When it ends unless renewed, database time.
        expires_at_ms: i64,
    },
    /// Lost: stop serving.
    Lost {
        /// Why.
        reason: LostReason,
    },
}

/// Why a lease was lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LostReason {
    /// No renewal succeeded before the member's deadline (the database was unreachable, slow,
    /// or the process did not run).
    NotRenewed {
        /// The end of the last lease the database confirmed, database time.
        last_expires_at_ms: i64,
    },
    /// The row names another holder or epoch.
    Deposed {
        /// The holder now.
        holder: Option<String>,
        /// Its epoch.
        epoch: i64,
    },
    /// The renewal found the lease expired in the database.
    Expired,
    /// [`Lease::release`] was called, or every handle of the lease was dropped.
    Released,
}

impl std::fmt::Display for LostReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LostReason::NotRenewed { .. } => f.write_str("no renewal succeeded in time"),
            LostReason::Deposed { holder, epoch } => write!(
                f,
                "the lease is now held by {} (epoch {epoch})",
                holder.as_deref().unwrap_or("nobody")
            ),
            LostReason::Expired => f.write_str("the lease expired in the database"),
            LostReason::Released => f.write_str("released"),
        }
    }
}

impl LeaseLocker {
    /// The lease just taken with `grant` (sent at `sent`), renewed from now on over `renewals`.
    pub(super) fn start(&self, grant: Grant, sent: Instant, renewals: Slot) -> Lease {
        let schedule = Schedule::new(self.timing, sent);
        let (state, _) = watch::channel(LeaseState::Held {
            epoch: grant.epoch,
            expires_at_ms: grant.expires_at_ms,
        });
        let stop = CancellationToken::new();
        let inner = Arc::new(Inner {
            holder: self.holder.clone(),
            holder_id: self.holder_id.clone(),
            epoch: grant.epoch,
            acquired_at_ms: grant.acquired_at_ms,
            timing: self.timing,
            pool: self.pool.clone(),
            deadline: Mutex::new(schedule.deadline),
            expires_at_ms: Mutex::new(grant.expires_at_ms),
            state,
            stop: stop.clone(),
            renewer: Mutex::new(None),
        });
        let task = tokio::spawn(renew(inner.clone(), schedule, renewals));
        *lock_ignoring_poison(&inner.renewer) = Some(task);
        Lease {
            inner,
            _stop: Arc::new(stop.drop_guard()),
        }
    }
}

struct Inner {
    holder: String,
    holder_id: String,
    epoch: i64,
    acquired_at_ms: i64,
    timing: LeaseTiming,
    pool: PgPool,
    /// Held only while `Instant::now()` is before this.
    deadline: Mutex<Instant>,
    expires_at_ms: Mutex<i64>,
    state: watch::Sender<LeaseState>,
    stop: CancellationToken,
    renewer: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Inner {
    /// Marks the lease lost (terminal: nothing makes it held again). `false` when it was lost
    /// already.
    fn lose(&self, reason: LostReason) -> bool {
        *lock_ignoring_poison(&self.deadline) = Instant::now();
        let lost = self.state.send_if_modified(|s| {
            if matches!(s, LeaseState::Held { .. }) {
                *s = LeaseState::Lost {
                    reason: reason.clone(),
                };
                true
            } else {
                false
            }
        });
        if lost && reason != LostReason::Released {
            tracing::warn!(epoch = self.epoch, %reason, "lease lost; stop serving");
        }
        lost
    }

    /// Records a renewal, unless the lease was lost meanwhile.
    fn renewed(&self, deadline: Instant, expires_at_ms: i64) {
        self.state.send_if_modified(|s| {
            if !matches!(s, LeaseState::Held { .. }) {
                return false;
            }
            *lock_ignoring_poison(&self.deadline) = deadline;
            *lock_ignoring_poison(&self.expires_at_ms) = expires_at_ms;
            *s = LeaseState::Held {
                epoch: self.epoch,
                expires_at_ms,
            };
            true
        });
    }
}

/// A held lease. Clones share it; when the last is dropped the renewals stop (and the lease
/// ends one `lock-acquire-sleep-interval` after the last). [`Lease::release`] ends it at once.
#[derive(Clone)]
pub struct Lease {
    inner: Arc<Inner>,
    _stop: Arc<DropGuard>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("holder", &self.inner.holder)
            .field("epoch", &self.inner.epoch)
            .field("state", &*self.inner.state.borrow())
            .finish()
    }
}

impl Lease {
    /// The lease's epoch (raised at every acquisition by anyone).
    pub fn epoch(&self) -> i64 {
        self.inner.epoch
    }

    /// When it was taken, database time.
    pub fn acquired_at_ms(&self) -> i64 {
        self.inner.acquired_at_ms
    }

    /// The state, updated at each renewal and when lost.
    pub fn state(&self) -> watch::Receiver<LeaseState> {
        self.inner.state.subscribe()
    }

    /// Whether this member may serve now: held, and before its deadline. Checks the clock
    /// itself, so it turns false at the deadline even if the renewal task has not run.
    pub fn is_held(&self) -> bool {
        matches!(*self.inner.state.borrow(), LeaseState::Held { .. })
            && Instant::now() < *lock_ignoring_poison(&self.inner.deadline)
    }

    /// Waits until the lease is lost, and says why.
    pub async fn lost(&self) -> LostReason {
        let mut rx = self.state();
        let r = rx
            .wait_for(|s| matches!(s, LeaseState::Lost { .. }))
            .await
            .map(|s| s.clone());
        match r {
            Ok(LeaseState::Lost { reason }) => reason,
            _ => LostReason::Released,
        }
    }

    /// The lease as the admin API shows it.
    pub fn info(&self) -> LeaseInfo {
        LeaseInfo {
            holder: Some(self.inner.holder.clone()),
            expires_at_ms: Some(*lock_ignoring_poison(&self.inner.expires_at_ms)),
            keep_alive_ms: millis(self.inner.timing.keep_alive()),
        }
    }

    /// Runs `f` in a transaction on `pool` whose first statement is the fence: the lease row
    /// locked shared and checked to be this member's, this epoch's and unexpired. `f` runs
    /// only then, and the transaction commits only if `f` succeeds; otherwise it is rolled
    /// back. The database decides, not this member's view of its lease.
    pub async fn fenced_transaction<T>(
        &self,
        pool: &PgPool,
        f: impl AsyncFnOnce(&Transaction<'_>) -> Result<T, PgError>,
    ) -> Result<T, LeaseError> {
        let mut client = pool.get().await?;
        let tx = client.transaction().await.map_err(PgError::from)?;
        match lock::check_fence(&tx, &self.inner.holder_id, self.inner.epoch).await? {
            FenceCheck::Held => {}
            FenceCheck::Deposed { holder, epoch } => {
                return Err(LeaseError::Deposed {
                    holder,
                    epoch,
                    mine: self.inner.epoch,
                });
            }
            FenceCheck::Expired { expires_at_ms } => {
                return Err(LeaseError::Expired {
                    epoch: self.inner.epoch,
                    expires_at_ms,
                });
            }
        }
        let out = f(&tx).await?;
        tx.commit().await.map_err(PgError::from)?;
        Ok(out)
    }

    /// Stops serving (state [`LostReason::Released`]) and ends the lease in the database, so
    /// a slave may take it at its next try.
    pub async fn release(&self) -> Result<(), LeaseError> {
        // Stop serving first; a lease lost already is not ours to end in the row.
        let held = self.inner.lose(LostReason::Released);
        self.inner.stop.cancel();
        let task = lock_ignoring_poison(&self.inner.renewer).take();
        if let Some(task) = task {
            let _ = task.await;
        }
        if !held {
            return Ok(());
        }
        let i = &self.inner;
        Slot::new(i.pool.clone())
            .run(i.timing.keep_alive(), async |c| {
                lock::release(c, &i.holder_id, i.epoch).await
            })
            .await?;
        tracing::info!(epoch = i.epoch, "lease released");
        Ok(())
    }
}

/// The renewal task: renew on schedule; lose the lease at the deadline or when the row says so.
async fn renew(inner: Arc<Inner>, mut schedule: Schedule, mut slot: Slot) {
    let mut failing = false;
    loop {
        tokio::select! {
            biased;
            _ = inner.stop.cancelled() => {
                // Released, or every handle dropped: the lease runs out in the row.
                inner.lose(LostReason::Released);
                return;
            }
            _ = tokio::time::sleep_until(schedule.wake_at()) => {}
        }
        let sent = Instant::now();
        if schedule.lost(sent) {
            let last = *lock_ignoring_poison(&inner.expires_at_ms);
            inner.lose(LostReason::NotRenewed {
                last_expires_at_ms: last,
            });
            return;
        }
        let r = slot
            .run(schedule.budget(sent), async |c| {
                match lock::renew(c, &inner.holder_id, inner.epoch, inner.timing.lease()).await? {
                    Some(expires) => Ok(Ok(expires)),
                    None => Ok(Err(lock::read(c).await?)),
                }
            })
            .await;
        match r {
            Ok(Ok(expires_at_ms)) => {
                schedule.renewed(sent);
                inner.renewed(schedule.deadline, expires_at_ms);
                if failing {
                    tracing::info!(epoch = inner.epoch, "lease renewed again");
                    failing = false;
                }
            }
            Ok(Err(row)) => {
                let reason = if row.holder_id.as_deref() == Some(inner.holder_id.as_str())
                    && row.epoch == inner.epoch
                {
                    LostReason::Expired
                } else {
                    LostReason::Deposed {
                        holder: row.holder,
                        epoch: row.epoch,
                    }
                };
                inner.lose(reason);
                return;
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, epoch = inner.epoch, "lease renewal failed; retrying");
                    failing = true;
                }
                schedule.failed(Instant::now());
            }
        }
    }
}
