//! Who is connected (for the admin API) and which forwarded ids were seen recently.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mq_shared::api::ConnectionInfo;

use super::Core;

/// Ids of messages that arrived over bridges without going through the store's dedup table
/// (topic and non-persistent messages), so a retried or doubly routed forward is dropped.
#[derive(Default)]
pub(super) struct RecentIds {
    order: VecDeque<Arc<str>>,
    set: HashSet<Arc<str>>,
}

impl RecentIds {
    /// Records `id`; false if it was already there.
    pub(super) fn insert(&mut self, id: &Arc<str>) -> bool {
        if !self.set.insert(id.clone()) {
            return false;
        }
        self.order.push_back(id.clone());
        while self.order.len() > mq_shared::defaults::DEDUP_WINDOW {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

/// Node-wide counters of what limits did (for `/metrics` and the admin API).
#[derive(Debug, Default)]
pub struct LimitCounters {
    /// Connections refused at `maximum-connections`.
    pub refused_connections: AtomicU64,
    /// Topic messages discarded for slow subscribers at `pending-message-limit`.
    pub discarded: AtomicU64,
    /// Destinations removed by `gc-inactive-destinations`.
    pub gc_destinations: AtomicU64,
}

impl Core {
    /// Counts a connection refused at `maximum-connections`.
    pub fn count_refused_connection(&self) {
        self.shared
            .limits
            .refused_connections
            .fetch_add(1, Ordering::Relaxed);
    }

    /// What the limits did so far.
    pub fn limit_counters(&self) -> &LimitCounters {
        &self.shared.limits
    }

    /// Registers a connection for the admin API (its `id` is assigned here); returns the id.
    pub fn register_connection(&self, mut info: ConnectionInfo) -> u64 {
        let id = self.next_id();
        info.id = id;
        self.lock_conns().insert(id, info);
        id
    }

    /// Updates a connection's facts.
    pub fn update_connection(&self, id: u64, f: impl FnOnce(&mut ConnectionInfo)) {
        if let Some(m) = self.lock_conns().get_mut(&id) {
            f(m);
        }
    }

    /// Forgets a connection.
    pub fn unregister_connection(&self, id: u64) {
        self.lock_conns().remove(&id);
    }

    fn lock_conns(&self) -> std::sync::MutexGuard<'_, HashMap<u64, ConnectionInfo>> {
        self.shared.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Open connections.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        let mut v: Vec<ConnectionInfo> = self.lock_conns().values().cloned().collect();
        v.sort_by_key(|c| c.id);
        v
    }
}
