//! The lease database locker (ActiveMQ's `lease-database-locker`): master/slave through one
//! row of the shared database (`mq_lock`, see `crate::store::pg::lock`).
//!
//! ```text
//!                take (only an ended lease)                    renewal not confirmed by the
//!  start ──▶ [slave] ──────────────────────────▶ [master] ───  local deadline, or the row ──▶ Lost
//!            try again when the row says it       renew every   names another holder
//!            ends (at most every                  lock-keep-alive-period; retry every
//!            lock-acquire-sleep-interval)         period/4 after a failure
//! ```
//!
//! Rules:
//! - **The lease lasts `lock-acquire-sleep-interval`** (L) from each take or renewal, and is
//!   renewed every `lock-keep-alive-period` (K). L > K is required ([`LeaseTiming::new`]),
//!   so a live master renews long before its lease ends.
//! - **Database time only.** The row's times are the database's (`statement_timestamp()`);
//!   a member's clock is never written or compared. A slave reads how long the lease has left,
//!   in database time, and sleeps that long (at most L) before trying again. A member's clock
//!   is only measured against the database's at start ([`LeaseLocker::clock_offset`]) and, with
//!   `max-allowable-diff-from-db-time` set, a member too far off refuses to start.
//! - **The master stops before its lease can end.** Each renewal (and the take) is timed on
//!   the member's monotonic clock from the moment it was *sent*: the database stamped it later,
//!   so the lease ends no earlier than `sent + L`. The member's own deadline is
//!   `sent + L - (L - K) / 2` for the last renewal that succeeded. At that deadline the lease is
//!   [`LeaseState::Lost`] ([`Lease::is_held`] is false from that instant, even in a process
//!   that was frozen and has not run its renewal task yet), leaving `(L - K) / 2` before any
//!   slave can take the lease.
//! - **Fencing.** Every write of a master runs in [`Lease::fenced_transaction`], whose first
//!   statement locks the lease row shared and checks that it still names this member's
//!   instance and epoch, unexpired. A taker's `UPDATE` waits for that transaction to end, and a
//!   transaction begun after a takeover sees the new holder and is refused: whatever a member
//!   believes, the database never commits a write of a deposed master after the takeover.
//!
//! Guarantee: at most one member's lease is held in the database at any time, and a member
//! reports [`Lease::is_held`] only within its own lease (as long as the member's monotonic
//! clock runs at most `(L - K) / 2` per L slower than the database's).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use deadpool_postgres::Transaction;
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::store::pg::lock::{self, FenceCheck, Grant, LockRow, TakeOutcome};
use crate::store::pg::{PgClient, PgError, PgPool};

/// How long a slave sleeps past the end the row gives, so that its try lands after it.
const WAKE_SLACK: Duration = Duration::from_millis(5);
/// The shortest retry of a failed renewal.
const MIN_RETRY: Duration = Duration::from_millis(5);
/// Samples taken to measure the clock offset (the one with the shortest round trip counts).
const CLOCK_SAMPLES: usize = 3;

/// Why the locker refused, or a fenced write was refused.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The timing options do not make a lease that a live master keeps.
    #[error(
        "lock-acquire-sleep-interval ({acquire_ms} ms) must be greater than \
         lock-keep-alive-period ({keep_alive_ms} ms), and both above 0: the lease lasts one \
         lock-acquire-sleep-interval and the master renews it every lock-keep-alive-period"
    )]
    Timing {
        /// `lock-keep-alive-period`.
        keep_alive_ms: u64,
        /// `lock-acquire-sleep-interval`.
        acquire_ms: u64,
    },
    /// The holder name is empty.
    #[error("the lease holder's name must not be empty")]
    NoName,
    /// This member's clock is further from the database's than allowed.
    #[error(
        "this member's clock is {offset_ms} ms off the database's (measured with a round trip of \
         {rtt_ms} ms), more than max-allowable-diff-from-db-time ({max_ms} ms): fix the clock \
         (NTP) or raise max-allowable-diff-from-db-time"
    )]
    ClockSkew {
        /// Member minus database, ms.
        offset_ms: i64,
        /// Round trip of the measurement, ms.
        rtt_ms: u64,
        /// The limit, ms.
        max_ms: u64,
    },
    /// Fenced write refused: another member (or a later epoch) holds the lease.
    #[error(
        "write refused: the lease is held by {} (epoch {epoch}), no longer by this member \
         (epoch {mine})", holder.as_deref().unwrap_or("nobody")
    )]
    Deposed {
        /// The holder now.
        holder: Option<String>,
        /// Its epoch.
        epoch: i64,
        /// This member's epoch.
        mine: i64,
    },
    /// Fenced write refused: this member's lease has ended (nobody took it yet).
    #[error(
        "write refused: this member's lease (epoch {epoch}) ended at {expires_at_ms} ms \
         (database time) without renewal"
    )]
    Expired {
        /// This member's epoch.
        epoch: i64,
        /// When it ended.
        expires_at_ms: i64,
    },
    /// The database could not be used.
    #[error(transparent)]
    Db(#[from] PgError),
}

/// The lease's timing: renewed every `keep_alive`, lasting `lease` (ActiveMQ's
/// `lockKeepAlivePeriod` and `lockAcquireSleepInterval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    keep_alive: Duration,
    lease: Duration,
}

impl LeaseTiming {
    /// Checks `acquire_interval > keep_alive > 0`.
    pub fn new(keep_alive: Duration, acquire_interval: Duration) -> Result<Self, LeaseError> {
        if keep_alive.is_zero() || acquire_interval <= keep_alive {
            return Err(LeaseError::Timing {
                keep_alive_ms: millis(keep_alive),
                acquire_ms: millis(acquire_interval),
            });
        }
        Ok(LeaseTiming {
            keep_alive,
            lease: acquire_interval,
        })
    }

    /// `lock-keep-alive-period`: how often the master renews.
    pub fn keep_alive(&self) -> Duration {
        self.keep_alive
    }

    /// `lock-acquire-sleep-interval`: how long a lease lasts, and a slave's longest sleep.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// What the master keeps between its own deadline and the earliest end of its lease:
    /// `(L - K) / 2`.
    pub fn stop_margin(&self) -> Duration {
        (self.lease - self.keep_alive) / 2
    }

    /// The master's deadline for a take or renewal sent at `sent`.
    pub fn deadline(&self, sent: Instant) -> Instant {
        sent + self.lease - self.stop_margin()
    }

    /// How soon a failed renewal is tried again.
    pub fn retry_interval(&self) -> Duration {
        (self.keep_alive / 4).max(MIN_RETRY)
    }

    /// How long a slave sleeps when the lease has `remaining` (database time) to run.
    pub fn slave_sleep(&self, remaining: Duration) -> Duration {
        (remaining + WAKE_SLACK).min(self.lease)
    }
}

/// A master's renewal schedule: pure, driven by the renewal task with its clock readings.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    timing: LeaseTiming,
    deadline: Instant,
    next: Instant,
}

impl Schedule {
    /// After a take sent at `sent`.
    fn new(timing: LeaseTiming, sent: Instant) -> Self {
        Schedule {
            timing,
            deadline: timing.deadline(sent),
            next: sent + timing.keep_alive,
        }
    }

    /// A renewal sent at `sent` succeeded.
    fn renewed(&mut self, sent: Instant) {
        self.deadline = self.deadline.max(self.timing.deadline(sent));
        self.next = sent + self.timing.keep_alive;
    }

    /// A renewal failed at `now`: try again soon, never past the deadline.
    fn failed(&mut self, now: Instant) {
        self.next = (now + self.timing.retry_interval()).min(self.deadline);
    }

    /// When the task wakes next.
    fn wake_at(&self) -> Instant {
        self.next.min(self.deadline)
    }

    /// Whether the lease must be taken as lost at `now`.
    fn lost(&self, now: Instant) -> bool {
        now >= self.deadline
    }

    /// How long an attempt at `now` may take.
    fn budget(&self, now: Instant) -> Duration {
        self.deadline.saturating_duration_since(now)
    }
}

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

/// The lease as the admin API shows it (`GET /api/v1/broker`, `lease`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseInfo {
    /// The current or last holder's name.
    pub holder: Option<String>,
    /// When its lease ends (ended), database time, ms since the epoch.
    pub expires_at_ms: Option<i64>,
    /// `lock-keep-alive-period`, ms.
    pub keep_alive_ms: u64,
}

/// This member's clock against the database's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ClockOffset {
    /// Member minus database, ms (positive: the member is ahead).
    pub offset_ms: i64,
    /// Round trip of the sample, ms: the offset is known to ± half of it.
    pub rtt_ms: u64,
}

/// The member's wall clock, replaceable to test a skewed one.
pub type WallClock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Takes and keeps the lease for one member (one per process: its instance id is new each
/// time, so a restarted member with the same name is another holder).
pub struct LeaseLocker {
    pool: PgPool,
    /// The connection a slave tries with, handed to the renewals when it takes the lease.
    slot: tokio::sync::Mutex<Slot>,
    holder: String,
    holder_id: String,
    timing: LeaseTiming,
    max_diff: Option<Duration>,
    wall: WallClock,
}

impl std::fmt::Debug for LeaseLocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseLocker")
            .field("holder", &self.holder)
            .field("holder_id", &self.holder_id)
            .field("timing", &self.timing)
            .field("max_diff", &self.max_diff)
            .finish()
    }
}

impl LeaseLocker {
    /// A locker for member `holder` on `pool` (best its own small pool, so that renewals never
    /// wait behind the store's writes), renewing every `keep_alive` a lease of
    /// `acquire_interval`.
    pub fn new(
        pool: PgPool,
        holder: &str,
        keep_alive: Duration,
        acquire_interval: Duration,
    ) -> Result<Self, LeaseError> {
        if holder.is_empty() {
            return Err(LeaseError::NoName);
        }
        let timing = LeaseTiming::new(keep_alive, acquire_interval)?;
        let id: u64 = rand::random();
        Ok(LeaseLocker {
            slot: tokio::sync::Mutex::new(Slot::new(pool.clone())),
            pool,
            holder: holder.to_string(),
            holder_id: format!("{holder}/{}/{id:016x}", std::process::id()),
            timing,
            max_diff: None,
            wall: Arc::new(SystemTime::now),
        })
    }

    /// `max-allowable-diff-from-db-time`: refuse to start when this member's clock is further
    /// than `max` from the database's (`None`: no check).
    pub fn max_allowable_diff_from_db_time(mut self, max: Option<Duration>) -> Self {
        self.max_diff = max;
        self
    }

    /// Replaces the wall clock the offset is measured with (tests of a skewed member).
    pub fn wall_clock(mut self, clock: WallClock) -> Self {
        self.wall = clock;
        self
    }

    /// The timing.
    pub fn timing(&self) -> LeaseTiming {
        self.timing
    }

    /// This instance's id in the row (`NAME/PID/RANDOM`).
    pub fn holder_id(&self) -> &str {
        &self.holder_id
    }

    /// Measures this member's clock against the database's; with
    /// `max-allowable-diff-from-db-time` set, an offset beyond it (by more than the
    /// measurement's uncertainty) is [`LeaseError::ClockSkew`].
    pub async fn clock_offset(&self) -> Result<ClockOffset, LeaseError> {
        let client = self.pool.get().await?;
        let mut best: Option<ClockOffset> = None;
        for _ in 0..CLOCK_SAMPLES {
            let wall0 = (self.wall)();
            let t0 = Instant::now();
            let db = lock::db_now_ms(&client).await?;
            let rtt = t0.elapsed();
            let mid = wall_ms(wall0 + rtt / 2);
            let sample = ClockOffset {
                offset_ms: mid - db,
                rtt_ms: millis(rtt),
            };
            if best.is_none_or(|b| sample.rtt_ms < b.rtt_ms) {
                best = Some(sample);
            }
        }
        let best = best.unwrap_or(ClockOffset {
            offset_ms: 0,
            rtt_ms: 0,
        });
        if let Some(max) = self.max_diff {
            let sure = best
                .offset_ms
                .unsigned_abs()
                .saturating_sub(best.rtt_ms / 2);
            if sure > millis(max) {
                return Err(LeaseError::ClockSkew {
                    offset_ms: best.offset_ms,
                    rtt_ms: best.rtt_ms,
                    max_ms: millis(max),
                });
            }
        }
        Ok(best)
    }

    /// The lease row as the admin API shows it (on a slave: who is master, until when).
    pub async fn current(&self) -> Result<LeaseInfo, LeaseError> {
        let client = self.pool.get().await?;
        let row = lock::read(&client).await?;
        Ok(LeaseInfo {
            holder: row.holder,
            expires_at_ms: row.expires_at_ms,
            keep_alive_ms: millis(self.timing.keep_alive),
        })
    }

    /// One attempt: the lease when it had ended, else the row that holds it.
    pub async fn try_acquire(&self) -> Result<Result<Lease, LockRow>, LeaseError> {
        let mut slot = self.slot.lock().await;
        let sent = Instant::now();
        let outcome = slot
            .run(self.timing.lease, async |c| {
                lock::take(c, &self.holder, &self.holder_id, self.timing.lease).await
            })
            .await?;
        Ok(match outcome {
            TakeOutcome::Taken(grant) => {
                // The renewals go on on the connection that took the lease: no new login
                // stands between the take and the first renewal.
                let renewals = Slot {
                    pool: self.pool.clone(),
                    client: slot.client.take(),
                };
                Ok(self.start(grant, sent, renewals))
            }
            TakeOutcome::Busy(row) => Err(row),
        })
    }

    /// Waits until this member holds the lease: measures the clock first (refusing a skew
    /// beyond `max-allowable-diff-from-db-time`), then tries whenever the lease may have ended.
    /// While the database cannot be reached (or refuses the login) it keeps trying every
    /// `lock-acquire-sleep-interval`; an error retrying cannot mend ([`PgError::is_fatal`]: no
    /// schema, a statement the database refuses) ends it.
    ///
    /// Cancel it by dropping the future. One dropped just after the database took the lease
    /// for it leaves that lease unrenewed: it ends after one `lock-acquire-sleep-interval`.
    pub async fn acquire(&self) -> Result<Lease, LeaseError> {
        let mut clock_checked = false;
        let mut failing = false;
        let mut seen: Option<(Option<String>, i64)> = None;
        loop {
            let attempt = async {
                if !clock_checked {
                    let offset = self.clock_offset().await?;
                    tracing::info!(
                        offset_ms = offset.offset_ms,
                        rtt_ms = offset.rtt_ms,
                        "clock measured against the database's"
                    );
                    clock_checked = true;
                }
                self.try_acquire().await
            };
            let sleep = match attempt.await {
                Ok(Ok(lease)) => {
                    tracing::info!(
                        holder = %self.holder,
                        epoch = lease.epoch(),
                        "lease taken; starting as master"
                    );
                    return Ok(lease);
                }
                Ok(Err(row)) => {
                    if failing {
                        tracing::info!("the database answers again");
                        failing = false;
                    }
                    let now_seen = (row.holder.clone(), row.epoch);
                    if seen.as_ref() != Some(&now_seen) {
                        tracing::info!(
                            holder = row.holder.as_deref().unwrap_or("nobody"),
                            epoch = row.epoch,
                            remaining_ms = millis(row.remaining()),
                            "the lease is held; waiting as slave"
                        );
                        seen = Some(now_seen);
                    }
                    self.timing.slave_sleep(row.remaining())
                }
                Err(e @ LeaseError::ClockSkew { .. }) => return Err(e),
                Err(LeaseError::Db(e)) if e.is_fatal() => return Err(e.into()),
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "cannot try the lease; retrying");
                        failing = true;
                    }
                    self.timing.lease
                }
            };
            tokio::time::sleep(sleep).await;
        }
    }

    fn start(&self, grant: Grant, sent: Instant, renewals: Slot) -> Lease {
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
            keep_alive_ms: millis(self.inner.timing.keep_alive),
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
            .run(i.timing.keep_alive, async |c| {
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
                match lock::renew(c, &inner.holder_id, inner.epoch, inner.timing.lease).await? {
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

/// A connection kept from one attempt to the next (a renewal does not wait for a new login),
/// replaced once it is closed. Each attempt runs within a budget; a connection whose request
/// timed out is closed rather than kept or returned to the pool, where its late answer would
/// confuse the next user.
struct Slot {
    pool: PgPool,
    client: Option<PgClient>,
}

impl Slot {
    fn new(pool: PgPool) -> Self {
        Slot { pool, client: None }
    }

    async fn run<T>(
        &mut self,
        budget: Duration,
        f: impl AsyncFnOnce(&PgClient) -> Result<T, PgError>,
    ) -> Result<T, PgError> {
        let timeout = || PgError::Timeout {
            addr: self.pool.config().url.address(),
            timeout_ms: millis(budget),
        };
        let until = Instant::now() + budget;
        let client = match self.client.take() {
            Some(c) if !c.is_closed() => c,
            _ => tokio::time::timeout_at(until, self.pool.get())
                .await
                .map_err(|_| timeout())??,
        };
        let r = tokio::time::timeout_at(until, f(&client)).await;
        match r {
            Ok(r) => {
                if !client.is_closed() {
                    self.client = Some(client);
                }
                r
            }
            Err(_) => {
                drop(deadpool_postgres::Object::take(client));
                Err(timeout())
            }
        }
    }
}

fn lock_ignoring_poison<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn wall_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_acquire_interval_must_exceed_the_keep_alive() {
        for (k, a) in [(200, 200), (500, 200), (0, 100)] {
            let e = LeaseTiming::new(ms(k), ms(a)).expect_err("refused");
            let text = e.to_string();
            assert!(
                text.contains("lock-acquire-sleep-interval")
                    && text.contains("lock-keep-alive-period"),
                "{text}"
            );
        }
        let t = LeaseTiming::new(ms(200), ms(500)).expect("valid");
        assert_eq!((t.keep_alive(), t.lease()), (ms(200), ms(500)));
        assert_eq!(t.stop_margin(), ms(150));
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_follows_the_last_renewal_sent_and_stays_inside_the_lease() {
        let t = LeaseTiming::new(ms(200), ms(500)).expect("valid");
        let start = Instant::now();
        let mut s = Schedule::new(t, start);
        // The take was sent at `start`: the lease ends no earlier than start + 500 in the
        // database; the member stops at start + 350.
        assert_eq!(s.deadline, start + ms(350));
        assert_eq!(s.wake_at(), start + ms(200));
        // A renewal sent at 200 that took 80 ms to answer still counts from 200.
        tokio::time::advance(ms(280)).await;
        s.renewed(start + ms(200));
        assert_eq!(s.deadline, start + ms(550));
        assert_eq!(s.wake_at(), start + ms(400));
        // Failures retry every 50 ms, never past the deadline, which does not move.
        tokio::time::advance(ms(120)).await;
        s.failed(Instant::now());
        assert_eq!(s.wake_at(), start + ms(450));
        tokio::time::advance(ms(100)).await;
        s.failed(Instant::now());
        assert_eq!(s.wake_at(), start + ms(550));
        assert!(!s.lost(start + ms(549)));
        assert!(s.lost(start + ms(550)));
        assert_eq!(s.budget(start + ms(500)), ms(50));
        // The member's end is always stop_margin before the lease's earliest end.
        assert_eq!(s.deadline + t.stop_margin(), start + ms(200) + t.lease());
    }

    #[test]
    fn a_slave_sleeps_until_the_row_says_the_lease_ends_at_most_one_interval() {
        let t = LeaseTiming::new(ms(200), ms(500)).expect("valid");
        assert_eq!(t.slave_sleep(ms(120)), ms(125));
        assert_eq!(t.slave_sleep(Duration::ZERO), ms(5));
        assert_eq!(t.slave_sleep(ms(10_000)), ms(500));
        assert_eq!(t.retry_interval(), ms(50));
        assert_eq!(
            LeaseTiming::new(ms(8), ms(20))
                .expect("valid")
                .retry_interval(),
            MIN_RETRY
        );
    }
}
