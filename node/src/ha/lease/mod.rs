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
//!
//! Files: `timing` (the lease's durations and a master's renewal schedule, pure), `held` (a
//! held [`Lease`], its state and its renewal task), `slot` (the connection an attempt runs
//! on); this module has the [`LeaseLocker`] that takes the lease, and its errors.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::time::Instant;

use crate::store::pg::lock::{self, LockRow, TakeOutcome};
use crate::store::pg::{PgError, PgPool};

mod held;
mod slot;
mod timing;

pub use held::{Lease, LeaseState, LostReason};
pub use timing::LeaseTiming;

use slot::Slot;

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
            keep_alive_ms: millis(self.timing.keep_alive()),
        })
    }

    /// One attempt: the lease when it had ended, else the row that holds it.
    pub async fn try_acquire(&self) -> Result<Result<Lease, LockRow>, LeaseError> {
        let mut slot = self.slot.lock().await;
        let sent = Instant::now();
        let outcome = slot
            .run(self.timing.lease(), async |c| {
                lock::take(c, &self.holder, &self.holder_id, self.timing.lease()).await
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
        let mut waiting = SlaveWait::new(self.timing);
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
                Ok(Err(row)) => waiting.held(&row),
                Err(e @ LeaseError::ClockSkew { .. }) => return Err(e),
                Err(LeaseError::Db(e)) if e.is_fatal() => return Err(e.into()),
                Err(e) => waiting.failed(&e),
            };
            tokio::time::sleep(sleep).await;
        }
    }
}

/// A slave between its attempts at the lease ([`LeaseLocker::acquire`], the node's role
/// machine): how long it sleeps after each, and what it logs, once each: a new holder, the
/// database failing, the database answering again.
#[derive(Debug)]
pub struct SlaveWait {
    timing: LeaseTiming,
    failing: bool,
    /// The holder and epoch last logged.
    seen: Option<(Option<String>, i64)>,
}

impl SlaveWait {
    /// Before the first attempt.
    pub fn new(timing: LeaseTiming) -> Self {
        SlaveWait {
            timing,
            failing: false,
            seen: None,
        }
    }

    /// After an attempt that found the lease held, as `row` says: sleep until it may end.
    pub fn held(&mut self, row: &LockRow) -> Duration {
        if self.failing {
            tracing::info!("the lease's database answers again");
            self.failing = false;
        }
        let now_seen = (row.holder.clone(), row.epoch);
        if self.seen.as_ref() != Some(&now_seen) {
            tracing::info!(
                holder = row.holder.as_deref().unwrap_or("nobody"),
                epoch = row.epoch,
                remaining_ms = millis(row.remaining()),
                "the lease is held by another member; waiting as slave"
            );
            self.seen = Some(now_seen);
        }
        self.timing.slave_sleep(row.remaining())
    }

    /// After an attempt that failed with `e`, one that retrying may mend: sleep one
    /// `lock-acquire-sleep-interval`.
    pub fn failed(&mut self, e: &LeaseError) -> Duration {
        if !self.failing {
            tracing::warn!(error = %e, "cannot try the lease; retrying every lock-acquire-sleep-interval");
            self.failing = true;
        }
        self.timing.lease()
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
