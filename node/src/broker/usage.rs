//! The node's resource limits (ActiveMQ's `systemUsage`): memory for messages held in RAM,
//! the store for persistent messages, the temp store for non-persistent messages spilled from
//! memory, and the producer flow control that holds a SEND while a limit is reached.
//!
//! ```text
//! memory-usage  bytes of messages in queue windows and in flight (plus a fixed cost per
//!               message): past it, persistent messages stay only in the store and
//!               non-persistent ones spill to the temp store; never a reason to hold a producer
//! store-usage   bytes of persistent messages stored, capped at what the disk has free (minus a
//!               reserve): a persistent SEND to a queue past it is held (or refused)
//! temp-usage    bytes of spilled non-persistent messages: a non-persistent SEND to a queue
//!               that finds memory full and the temp store full is held (or refused)
//! ```
//!
//! The counters are atomics that queues and the store completions update as messages come and
//! go; [`Usage::admit`] is the check a SEND passes before it is published, and
//! [`Usage::changed`] wakes held producers when space frees.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mq_shared::api::{UsageFigures, UsageReport};
use tokio::sync::Notify;

/// Fixed bytes counted for each message held in memory, on top of its headers and body (its
/// entry in the queue's window, the `Arc`, the map node).
pub const ENTRY_OVERHEAD: u64 = 160;

/// How a node meets a full store (`producer-flow-control`, `send-fail-if-no-space`,
/// `send-fail-if-no-space-after-timeout`).
#[derive(Debug, Clone, Copy)]
pub struct FlowControl {
    /// Hold the producer (no RECEIPT, nothing more read from its connection).
    pub hold: bool,
    /// Answer ERROR `store full` at once instead.
    pub fail_at_once: bool,
    /// Hold at most this long, then ERROR (`None`: no limit).
    pub fail_after: Option<Duration>,
}

/// The limits, in bytes.
#[derive(Debug, Clone)]
pub struct Limits {
    /// `memory-usage`.
    pub memory: u64,
    /// `store-usage`.
    pub store: u64,
    /// `temp-usage`.
    pub temp: u64,
    /// Bytes of the disk the store leaves free.
    pub disk_reserve: u64,
    /// Flow control.
    pub flow: FlowControl,
}

/// Why a SEND cannot be taken now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Full {
    /// Persistent messages reached `store-usage` (or the disk is nearly full).
    #[error(
        "store full: {used} bytes of persistent messages stored, the limit is {limit} bytes (store-usage, or the disk's free space)"
    )]
    Store {
        /// Bytes stored.
        used: u64,
        /// The limit in force.
        limit: u64,
    },
    /// Spilled non-persistent messages reached `temp-usage` with memory full.
    #[error(
        "store full: {used} bytes of non-persistent messages spilled to the temp store, the limit is {limit} bytes (temp-usage)"
    )]
    Temp {
        /// Bytes spilled.
        used: u64,
        /// The limit.
        limit: u64,
    },
    /// Spills wait to be written: the temp store is behind. Always a hold, never a refusal
    /// (it passes as soon as the writer catches up).
    #[error("temp store busy: {pending} bytes of non-persistent messages wait to be written to it")]
    Spilling {
        /// Bytes submitted and not yet written.
        pending: u64,
    },
}

impl Full {
    /// Whether this only asks the producer to wait, whatever the flow-control settings.
    pub fn is_transient(&self) -> bool {
        matches!(self, Full::Spilling { .. })
    }
}

/// Bytes of spilled non-persistent messages that may wait for the store writer at once: past
/// it, a non-persistent SEND that would spill is held until the writer catches up (so that a
/// fast producer cannot pile its messages up in the writer's queue, in memory).
pub const SPILL_IN_FLIGHT: u64 = 4 * 1024 * 1024;

/// The node's usage counters and limits; one per broker, shared by its queues.
#[derive(Debug)]
pub struct Usage {
    limits: Limits,
    memory: AtomicU64,
    store: AtomicU64,
    temp: AtomicU64,
    /// Bytes of spills submitted to the store and not yet written.
    spilling: AtomicU64,
    /// `store-usage` capped at what the disk had free at the last look.
    store_cap: AtomicU64,
    /// Where the store lives, for that look.
    data_dir: Option<PathBuf>,
    disk_checked: Mutex<Option<Instant>>,
    /// Producers waiting for space, and their wake-up.
    waiting: AtomicUsize,
    notify: Notify,
    /// SENDs held, and refused, for the metrics.
    held_total: AtomicU64,
    refused_total: AtomicU64,
}

/// How often the disk's free space is looked at, at most.
const DISK_CHECK: Duration = Duration::from_millis(250);

impl Usage {
    /// Usage with these limits; `data_dir` is where the store's disk space is measured.
    pub fn new(limits: Limits, data_dir: Option<PathBuf>) -> Usage {
        let u = Usage {
            store_cap: AtomicU64::new(limits.store),
            limits,
            memory: AtomicU64::new(0),
            store: AtomicU64::new(0),
            temp: AtomicU64::new(0),
            spilling: AtomicU64::new(0),
            data_dir,
            disk_checked: Mutex::new(None),
            waiting: AtomicUsize::new(0),
            notify: Notify::new(),
            held_total: AtomicU64::new(0),
            refused_total: AtomicU64::new(0),
        };
        u.check_disk(true);
        u
    }

    /// Limits without a disk to watch (tests, and nodes without persistence).
    pub fn unlimited() -> Usage {
        Usage::new(
            Limits {
                memory: u64::MAX,
                store: u64::MAX,
                temp: u64::MAX,
                disk_reserve: 0,
                flow: FlowControl {
                    hold: true,
                    fail_at_once: false,
                    fail_after: None,
                },
            },
            None,
        )
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Bytes of messages held in memory now.
    pub fn memory(&self) -> u64 {
        self.memory.load(Ordering::Relaxed)
    }

    /// Whether `bytes` more fit in memory.
    pub fn memory_room(&self, bytes: u64) -> bool {
        self.memory().saturating_add(bytes) <= self.limits.memory
    }

    /// Bytes of memory left under the limit.
    pub fn memory_headroom(&self) -> u64 {
        self.limits.memory.saturating_sub(self.memory())
    }

    /// Counts `bytes` more held in memory.
    pub fn add_memory(&self, bytes: u64) {
        self.memory.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts `bytes` fewer held in memory.
    pub fn sub_memory(&self, bytes: u64) {
        sub(&self.memory, bytes);
        self.wake();
    }

    /// Counts `bytes` more of persistent messages stored.
    pub fn add_store(&self, bytes: u64) {
        self.store.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts `bytes` fewer of persistent messages stored.
    pub fn sub_store(&self, bytes: u64) {
        sub(&self.store, bytes);
        self.wake();
    }

    /// Counts `bytes` more spilled to the temp store.
    pub fn add_temp(&self, bytes: u64) {
        self.temp.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts `bytes` fewer spilled.
    pub fn sub_temp(&self, bytes: u64) {
        sub(&self.temp, bytes);
        self.wake();
    }

    /// Counts a spill of `bytes` submitted to the store writer.
    pub fn spill_submitted(&self, bytes: u64) {
        self.spilling.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts a spill of `bytes` written (or failed).
    pub fn spill_written(&self, bytes: u64) {
        sub(&self.spilling, bytes);
        self.wake();
    }

    /// The store limit in force: `store-usage`, or less when the disk has less free.
    pub fn store_limit(&self) -> u64 {
        self.store_cap.load(Ordering::Relaxed)
    }

    /// Whether a SEND of `bytes` can be taken now: `stored` for a persistent message to a
    /// queue (counted against the store), `queued` for any message to a queue (a
    /// non-persistent one needs memory or the temp store). Topic messages always can.
    pub fn admit(&self, stored: bool, queued: bool, bytes: u64) -> Result<(), Full> {
        if stored {
            self.check_disk(false);
            let used = self.store.load(Ordering::Relaxed);
            let limit = self.store_limit();
            if used.saturating_add(bytes) > limit {
                return Err(Full::Store { used, limit });
            }
        } else if queued && !self.memory_room(bytes + ENTRY_OVERHEAD) {
            let used = self.temp.load(Ordering::Relaxed);
            if used.saturating_add(bytes) > self.limits.temp {
                return Err(Full::Temp {
                    used,
                    limit: self.limits.temp,
                });
            }
            let pending = self.spilling.load(Ordering::Relaxed);
            if pending > 0 && pending.saturating_add(bytes) > SPILL_IN_FLIGHT {
                return Err(Full::Spilling { pending });
            }
        }
        Ok(())
    }

    /// Looks at the disk's free space again (at most every 250 ms unless `now`), and caps
    /// the store limit with it: what is stored plus what is free, less the reserve.
    pub fn check_disk(&self, now: bool) {
        let Some(dir) = &self.data_dir else { return };
        {
            let mut last = self.disk_checked.lock().unwrap_or_else(|e| e.into_inner());
            if !now && last.is_some_and(|t| t.elapsed() < DISK_CHECK) {
                return;
            }
            *last = Some(Instant::now());
        }
        let Ok(st) = rustix::fs::statvfs(dir) else {
            return;
        };
        let free = st.f_bavail.saturating_mul(st.f_frsize);
        let total = st.f_blocks.saturating_mul(st.f_frsize);
        // A small file system (a test's tmpfs) keeps a twentieth free rather than 64 MiB.
        let reserve = self.limits.disk_reserve.min(total / 20);
        let used = self.store.load(Ordering::Relaxed);
        let cap = self
            .limits
            .store
            .min(used.saturating_add(free.saturating_sub(reserve)));
        let before = self.store_cap.swap(cap, Ordering::Relaxed);
        if cap > before {
            self.wake();
        }
    }

    /// Waits until some space may have freed (or `at_most` passed): held producers call it
    /// between checks.
    pub async fn changed(&self, at_most: Duration) {
        /// Counts a waiter for as long as it waits, also when its future is dropped.
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let _w = Waiting(&self.waiting);
        let _ = tokio::time::timeout(at_most, self.notify.notified()).await;
    }

    fn wake(&self) {
        if self.waiting.load(Ordering::Relaxed) > 0 {
            self.notify.notify_waiters();
        }
    }

    /// Counts a SEND held by flow control.
    pub fn count_held(&self) {
        self.held_total.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a SEND refused with `store full`.
    pub fn count_refused(&self) {
        self.refused_total.fetch_add(1, Ordering::Relaxed);
    }

    /// (held, refused) SENDs since start.
    pub fn flow_totals(&self) -> (u64, u64) {
        (
            self.held_total.load(Ordering::Relaxed),
            self.refused_total.load(Ordering::Relaxed),
        )
    }

    /// Used and limit of each, for the admin API and the metrics.
    pub fn report(&self) -> UsageReport {
        let fig = |used: &AtomicU64, limit: u64| UsageFigures {
            used: used.load(Ordering::Relaxed),
            limit,
        };
        UsageReport {
            memory: fig(&self.memory, self.limits.memory),
            store: fig(&self.store, self.store_limit()),
            temp: fig(&self.temp, self.limits.temp),
        }
    }
}

fn sub(a: &AtomicU64, n: u64) {
    let _ = a.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
        Some(v.saturating_sub(n))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(memory: u64, store: u64, temp: u64) -> Limits {
        Limits {
            memory,
            store,
            temp,
            disk_reserve: 0,
            flow: FlowControl {
                hold: true,
                fail_at_once: false,
                fail_after: None,
            },
        }
    }

    #[test]
    fn persistent_sends_count_against_the_store_and_others_against_memory_then_temp() {
        let u = Usage::new(limits(1000, 5000, 2000), None);
        assert!(u.admit(true, true, 4000).is_ok());
        u.add_store(4000);
        assert!(matches!(
            u.admit(true, true, 2000),
            Err(Full::Store {
                used: 4000,
                limit: 5000
            })
        ));
        // Non-persistent: memory first, then the temp store.
        assert!(u.admit(false, true, 500).is_ok());
        u.add_memory(900);
        assert!(u.admit(false, true, 500).is_ok(), "the temp store has room");
        u.add_temp(1800);
        assert!(matches!(u.admit(false, true, 500), Err(Full::Temp { .. })));
        // Topics are never held.
        assert!(u.admit(false, false, 500).is_ok());
        u.sub_temp(1800);
        u.sub_store(4000);
        assert!(u.admit(true, true, 2000).is_ok());
    }

    #[test]
    fn counters_never_go_below_zero() {
        let u = Usage::unlimited();
        u.sub_memory(10);
        assert_eq!(u.memory(), 0);
    }

    #[test]
    fn the_disk_caps_the_store_limit() {
        let dir = std::env::temp_dir();
        let u = Usage::new(limits(1, u64::MAX, 1), Some(dir));
        assert!(u.store_limit() < u64::MAX, "capped at the free space");
    }
}
