//! The connection a lease attempt runs on.

use std::time::Duration;

use tokio::time::Instant;

use super::millis;
use crate::store::pg::{PgClient, PgError, PgPool};

/// A connection kept from one attempt to the next (a renewal does not wait for a new login),
/// replaced once it is closed. Each attempt runs within a budget; a connection whose request
/// timed out is closed rather than kept or returned to the pool, where its late answer would
/// confuse the next user.
pub(super) struct Slot {
    pub(super) pool: PgPool,
    pub(super) client: Option<PgClient>,
}

impl Slot {
    pub(super) fn new(pool: PgPool) -> Self {
        Slot { pool, client: None }
    }

    pub(super) async fn run<T>(
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
