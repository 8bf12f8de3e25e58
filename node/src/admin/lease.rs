//! `lease` of `GET /api/v1/broker` on a `--ha jdbc` member: the lease row (`mq_lock`) as the
//! database holds it, so every member, master or slave, shows the same holder and end.
//!
//! The row is read over a pool of one connection of the admin API's own (made at the first
//! request, `application_name` `mqnode NAME admin`), never over the store's or the lease's, so
//! that a status request never waits behind a commit or a renewal. A read takes at most
//! [`LEASE_INFO_TIMEOUT`]; a database that does not answer by then (or has no lease row yet)
//! leaves `lease` out of the answer instead of stalling it.

use mq_shared::api::LeaseInfo;
use mq_shared::defaults::LEASE_INFO_TIMEOUT;
use tokio::sync::Mutex;

use crate::NodeState;
use crate::config::HaKind;
use crate::store::pg::{PgConfig, PgError, PgPool, lock};

/// Reads the lease row for the admin API; one per admin router.
#[derive(Debug)]
pub struct LeaseView {
    /// The store's database, with a pool of one and short bounds.
    config: PgConfig,
    /// `lock-keep-alive-period` of this member, ms.
    keep_alive_ms: u64,
    /// Made by the first read that reaches the database.
    pool: Mutex<Option<PgPool>>,
}

impl LeaseView {
    /// The view of a `--ha jdbc` member's lease; `None` for any other HA kind.
    pub fn new(state: &NodeState) -> Option<LeaseView> {
        let cfg = &state.config;
        if cfg.ha != HaKind::Jdbc {
            return None;
        }
        let mut config = cfg.store.clone()?;
        config.pool_size = 1;
        config.application_name = format!("mqnode {} admin", cfg.name);
        config.connect_timeout = LEASE_INFO_TIMEOUT;
        config.statement_timeout = Some(LEASE_INFO_TIMEOUT);
        Some(LeaseView {
            config,
            keep_alive_ms: u64::try_from(cfg.lock_keep_alive_period.as_millis())
                .unwrap_or(u64::MAX),
            pool: Mutex::new(None),
        })
    }

    /// The lease row; `None` when the database did not answer within [`LEASE_INFO_TIMEOUT`]
    /// or could not be read (it says why in the log, at debug level).
    pub async fn read(&self) -> Option<LeaseInfo> {
        match tokio::time::timeout(LEASE_INFO_TIMEOUT, self.try_read()).await {
            Ok(Ok(info)) => Some(info),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "cannot read the lease row for the admin API");
                None
            }
            Err(_) => {
                tracing::debug!("the lease row was not read in time for the admin API");
                None
            }
        }
    }

    async fn try_read(&self) -> Result<LeaseInfo, PgError> {
        let pool = {
            let mut slot = self.pool.lock().await;
            match slot.as_ref() {
                Some(p) => p.clone(),
                None => slot.insert(PgPool::connect(&self.config).await?).clone(),
            }
        };
        let client = pool.get().await?;
        let row = lock::read(&client).await?;
        Ok(LeaseInfo {
            holder: row.holder,
            expires_at_ms: row.expires_at_ms,
            keep_alive_ms: self.keep_alive_ms,
        })
    }
}
