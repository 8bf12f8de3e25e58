//! Who is connected (for the admin API) and which forwarded ids were seen recently.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use mq_shared::api::{ConnectionInfo, ConnectionKind};

use super::Core;

/// Live facts about one connection, for the admin API.
#[derive(Debug, Clone)]
pub struct ConnMeta {
    /// Peer address.
    pub remote: String,
    /// Client or bridge.
    pub kind: ConnectionKind,
    /// Negotiated version.
    pub version: String,
    /// Remote broker name for bridges.
    pub broker: Option<String>,
    /// Open subscriptions.
    pub subscriptions: u64,
    /// Epoch ms.
    pub since_ms: u64,
}

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

impl Core {
    /// Registers a connection for the admin API; returns its id.
    pub fn register_connection(&self, meta: ConnMeta) -> u64 {
        let id = self.next_id();
        self.lock_conns().insert(id, meta);
        id
    }

    /// Updates a connection's facts.
    pub fn update_connection(&self, id: u64, f: impl FnOnce(&mut ConnMeta)) {
        if let Some(m) = self.lock_conns().get_mut(&id) {
            f(m);
        }
    }

    /// Forgets a connection.
    pub fn unregister_connection(&self, id: u64) {
        self.lock_conns().remove(&id);
    }

    fn lock_conns(&self) -> std::sync::MutexGuard<'_, HashMap<u64, ConnMeta>> {
        self.shared.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Open connections.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        let mut v: Vec<ConnectionInfo> = self
            .lock_conns()
            .iter()
            .map(|(id, m)| ConnectionInfo {
                id: *id,
                remote: m.remote.clone(),
                kind: m.kind,
                version: m.version.clone(),
                broker: m.broker.clone(),
                subscriptions: m.subscriptions,
                since_ms: m.since_ms,
            })
            .collect();
        v.sort_by_key(|c| c.id);
        v
    }
}
