//! What a queue and a topic share for the inactive-destination sweep
//! (`gc-inactive-destinations`): when anything last happened there and whether the sweep
//! retired it ([`Activity`]); and how their state's lock is taken ([`locked`]).

use std::sync::{Mutex, MutexGuard, PoisonError};

use super::message::now_ms;

/// A destination's activity: when anything last happened (ms since the epoch; a new one
/// starts now), and whether the sweep removed it from the broker (it takes nothing any more).
#[derive(Debug)]
pub(super) struct Activity {
    last: u64,
    retired: bool,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            last: now_ms(),
            retired: false,
        }
    }
}

impl Activity {
    /// Something happened at `now`.
    pub(super) fn touch_at(&mut self, now: u64) {
        self.last = now;
    }

    /// Something happened just now.
    pub(super) fn touch(&mut self) {
        self.touch_at(now_ms());
    }

    /// Whether the sweep retired it.
    pub(super) fn retired(&self) -> bool {
        self.retired
    }

    /// Retires it when it is `unused` and nothing happened for `idle_ms` before `now`;
    /// whether it did.
    pub(super) fn retire_if(&mut self, unused: bool, now: u64, idle_ms: u64) -> bool {
        let idle = unused && now.saturating_sub(self.last) >= idle_ms;
        if idle {
            self.retired = true;
        }
        idle
    }
}

/// The guard of a destination's state. A panic while it was held leaves the state
/// consistent enough to keep serving, so a poisoned lock is taken all the same.
pub(super) fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
