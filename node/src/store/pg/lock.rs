//! The lease row (`mq_lock`, id 1) and the statements on it; the rules they implement are
//! `crate::ha::lease`'s.
//!
//! Every time is the database's: `statement_timestamp()` (when the server received the
//! statement) for the lease's end when it is taken or renewed and for the expiry checks of
//! those statements, `clock_timestamp()` for `acquired_at` (when the row was actually taken,
//! after any wait for a writer's lock) and in the fence check. A member's clock is never
//! written or compared. Times come back as ms since the epoch.
//!
//! - take: `UPDATE ... WHERE expires_at IS NULL OR expires_at <= now`, so only an expired (or
//!   never held, or released) lease is taken; it raises `epoch`.
//! - renew: `UPDATE ... WHERE holder_id = mine AND epoch = mine AND expires_at > now`: a lease
//!   already expired is not renewed, even when nobody took it.
//! - fence: `SELECT ... FOR SHARE` inside a writer's transaction. The shared row lock makes a
//!   taker's `UPDATE` wait until that transaction ends, and a writer started after a takeover
//!   sees the new holder: no write of a deposed holder commits after the takeover.

use std::time::Duration;

use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::Row;

use super::error::PgError;

/// The lease row as read, with the database's time of the read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRow {
    /// Name of the current or last holder (`None` before anyone held it).
    pub holder: Option<String>,
    /// Instance id of the current or last holder.
    pub holder_id: Option<String>,
    /// Raised at every acquisition; 0 before the first.
    pub epoch: i64,
    /// When the current or last holder took the lease.
    pub acquired_at_ms: Option<i64>,
    /// When the lease ends (ended), database time.
    pub expires_at_ms: Option<i64>,
    /// The database's time of this read.
    pub db_now_ms: i64,
}

impl LockRow {
    /// Whether the lease is held now (it has a holder and has not expired).
    pub fn is_live(&self) -> bool {
        self.holder_id.is_some() && self.expires_at_ms.is_some_and(|e| e > self.db_now_ms)
    }

    /// How long until the lease ends, in database time (zero when it has ended).
    pub fn remaining(&self) -> Duration {
        let ms = self
            .expires_at_ms
            .map_or(0, |e| e.saturating_sub(self.db_now_ms));
        Duration::from_millis(u64::try_from(ms).unwrap_or(0))
    }
}

/// A lease just taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The lease's epoch.
    pub epoch: i64,
    /// When it was taken (database time).
    pub acquired_at_ms: i64,
    /// When it ends unless renewed (database time).
    pub expires_at_ms: i64,
}

/// What an attempt to take the lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TakeOutcome {
    /// Taken.
    Taken(Grant),
    /// Held by another, or by a holder whose lease has not ended.
    Busy(LockRow),
}

/// What the fence check inside a writer's transaction found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FenceCheck {
    /// The lease is this holder's and has not expired: the transaction may write.
    Held,
    /// Another holder (or a later epoch of this one) has the lease.
    Deposed {
        /// The holder now.
        holder: Option<String>,
        /// Its epoch.
        epoch: i64,
    },
    /// This holder's lease has expired (nobody took it yet).
    Expired {
        /// When it ended, database time.
        expires_at_ms: i64,
    },
}

const MS: &str = "floor(extract(epoch FROM {}) * 1000)::bigint";

fn ms(expr: &str) -> String {
    MS.replace("{}", expr)
}

fn lease_ms(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)
}

fn row_of(r: &Row) -> LockRow {
    LockRow {
        holder: r.get(0),
        holder_id: r.get(1),
        epoch: r.get(2),
        acquired_at_ms: r.get(3),
        expires_at_ms: r.get(4),
        db_now_ms: r.get(5),
    }
}

/// Reads the lease row.
pub async fn read(client: &impl GenericClient) -> Result<LockRow, PgError> {
    let sql = format!(
        "SELECT holder, holder_id, epoch, {}, {}, {} FROM mq_lock WHERE id = 1",
        ms("acquired_at"),
        ms("expires_at"),
        ms("statement_timestamp()")
    );
    let st = client.prepare_cached(&sql).await?;
    match client.query_opt(&st, &[]).await? {
        Some(r) => Ok(row_of(&r)),
        None => Err(PgError::NoSchema(
            "the lock table mq_lock has no row 1".into(),
        )),
    }
}

/// Takes the lease for `lease` if it has ended (or was never held, or was released).
pub async fn take(
    client: &impl GenericClient,
    holder: &str,
    holder_id: &str,
    lease: Duration,
) -> Result<TakeOutcome, PgError> {
    let sql = format!(
        // The CTE locks the row first (waiting for any writer holding it shared), so that
        // `acquired_at` is when the row was really taken, after that wait.
        "WITH locked AS (SELECT id FROM mq_lock WHERE id = 1 FOR UPDATE)
         UPDATE mq_lock SET holder = $1, holder_id = $2, epoch = epoch + 1,
                acquired_at = clock_timestamp(),
                expires_at = statement_timestamp() + $3::bigint * interval '1 millisecond'
         FROM locked
         WHERE mq_lock.id = locked.id
           AND (expires_at IS NULL OR expires_at <= statement_timestamp())
         RETURNING epoch, {}, {}",
        ms("acquired_at"),
        ms("expires_at")
    );
    let st = client.prepare_cached(&sql).await?;
    match client
        .query_opt(&st, &[&holder, &holder_id, &lease_ms(lease)])
        .await?
    {
        Some(r) => Ok(TakeOutcome::Taken(Grant {
            epoch: r.get(0),
            acquired_at_ms: r.get(1),
            expires_at_ms: r.get(2),
        })),
        None => Ok(TakeOutcome::Busy(read(client).await?)),
    }
}

/// Extends this holder's unexpired lease to `lease` from now; `Ok(None)` when it is no longer
/// this holder's or has expired.
pub async fn renew(
    client: &impl GenericClient,
    holder_id: &str,
    epoch: i64,
    lease: Duration,
) -> Result<Option<i64>, PgError> {
    let sql = format!(
        "UPDATE mq_lock SET expires_at = statement_timestamp() + $3::bigint * interval '1 millisecond'
         WHERE id = 1 AND holder_id = $1 AND epoch = $2 AND expires_at > statement_timestamp()
         RETURNING {}",
        ms("expires_at")
    );
    let st = client.prepare_cached(&sql).await?;
    Ok(client
        .query_opt(&st, &[&holder_id, &epoch, &lease_ms(lease)])
        .await?
        .map(|r| r.get(0)))
}

/// Ends this holder's lease now, so a waiting member may take it at once; `false` when it was
/// no longer this holder's. The holder's name stays in the row (the last holder).
pub async fn release(
    client: &impl GenericClient,
    holder_id: &str,
    epoch: i64,
) -> Result<bool, PgError> {
    let st = client
        .prepare_cached(
            "UPDATE mq_lock SET expires_at = least(expires_at, statement_timestamp())
             WHERE id = 1 AND holder_id = $1 AND epoch = $2",
        )
        .await?;
    Ok(client.execute(&st, &[&holder_id, &epoch]).await? == 1)
}

/// The fence: locks the lease row shared in `tx` and tells whether the lease is still
/// `holder_id`'s at `epoch` and unexpired. Run first in every write transaction of a master.
pub async fn check_fence(
    tx: &Transaction<'_>,
    holder_id: &str,
    epoch: i64,
) -> Result<FenceCheck, PgError> {
    let sql = format!(
        "SELECT holder, holder_id, epoch, expires_at > clock_timestamp(), {}
         FROM mq_lock WHERE id = 1 FOR SHARE",
        ms("expires_at")
    );
    let st = tx.prepare_cached(&sql).await?;
    let Some(r) = tx.query_opt(&st, &[]).await? else {
        return Err(PgError::NoSchema(
            "the lock table mq_lock has no row 1".into(),
        ));
    };
    let holder: Option<String> = r.get(0);
    let id: Option<String> = r.get(1);
    let row_epoch: i64 = r.get(2);
    let live: Option<bool> = r.get(3);
    let expires_at_ms: Option<i64> = r.get(4);
    if id.as_deref() != Some(holder_id) || row_epoch != epoch {
        return Ok(FenceCheck::Deposed {
            holder,
            epoch: row_epoch,
        });
    }
    if live != Some(true) {
        return Ok(FenceCheck::Expired {
            expires_at_ms: expires_at_ms.unwrap_or(0),
        });
    }
    Ok(FenceCheck::Held)
}

/// The database's clock now (`clock_timestamp()`), ms since the epoch.
pub async fn db_now_ms(client: &impl GenericClient) -> Result<i64, PgError> {
    let st = client
        .prepare_cached(&format!("SELECT {}", ms("clock_timestamp()")))
        .await?;
    Ok(client.query_one(&st, &[]).await?.get(0))
}
