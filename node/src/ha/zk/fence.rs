//! Fencing: the lease a member may act on, renewed by a request on its session every
//! `lease / 8`, and how it ends before ZooKeeper can expire the session.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::time::Instant;
use zookeeper_client as zk;

use super::Shared;
use super::session::terminal;

/// The part of the negotiated session timeout a lease lasts, as numerator / denominator.
pub(super) const LEASE_FRACTION: (u32, u32) = (2, 3);

/// Lease renewals per lease.
const RENEWALS_PER_LEASE: u32 = 8;

/// The lease: until when the member may act on its last proof that its session is alive.
#[derive(Debug)]
pub(super) struct Lease {
    deadline: watch::Sender<Option<Instant>>,
    /// The wall-clock time of the current or last deadline (for reports).
    wall: Mutex<Option<SystemTime>>,
}

impl Lease {
    pub(super) fn new() -> Lease {
        Lease {
            deadline: watch::Sender::new(None),
            wall: Mutex::new(None),
        }
    }

    /// A reply arrived to a request sent at `sent` (`sent_wall` on the wall clock): the
    /// session was alive after `sent`, so the lease runs to `sent + ttl` (never shortened).
    pub(super) fn renew(&self, sent: Instant, sent_wall: SystemTime, ttl: Duration) {
        let d = sent + ttl;
        let longer = self.deadline.send_if_modified(|cur| {
            if cur.is_none_or(|c| d > c) {
                *cur = Some(d);
                true
            } else {
                false
            }
        });
        if longer {
            *self.wall.lock().unwrap_or_else(|e| e.into_inner()) = Some(sent_wall + ttl);
        }
    }

    /// Ends the lease now.
    pub(super) fn revoke(&self) {
        self.deadline.send_replace(None);
    }

    /// Whether the lease holds at `now`.
    pub(super) fn holds(&self, now: Instant) -> bool {
        self.deadline.borrow().is_some_and(|d| now < d)
    }

    /// Resolves once the lease has run out or been revoked.
    pub(super) async fn expired(&self) {
        let mut rx = self.deadline.subscribe();
        loop {
            let d = *rx.borrow_and_update();
            match d {
                None => return,
                Some(d) if Instant::now() >= d => return,
                Some(d) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(d) => {}
                        r = rx.changed() => if r.is_err() { return },
                    }
                }
            }
        }
    }

    pub(super) fn wall(&self) -> Option<SystemTime> {
        *self.wall.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Renews the lease with one request on the session every `ttl / 8`.
pub(super) async fn keep_lease(
    shared: Arc<Shared>,
    client: zk::Client,
    me: String,
    id: i64,
    ttl: Duration,
) {
    let every = ttl / RENEWALS_PER_LEASE;
    loop {
        let sent = Instant::now();
        let sent_wall = SystemTime::now();
        match client.check_stat(&me).await {
            Ok(Some(stat)) if stat.ephemeral_owner == id => {
                shared.lease.renew(sent, sent_wall, ttl)
            }
            Ok(_) => {
                tracing::warn!(member = %shared.cfg.name, "member node {me} was removed");
                shared.lease.revoke();
                return;
            }
            Err(e) if terminal(&e) => return,
            // Connection trouble: the next try may get through before the lease ends.
            Err(_) => {}
        }
        tokio::time::sleep_until(sent + every).await;
    }
}
