//! Successful logins remembered, so that a client reconnecting with the same password is not
//! verified again (argon2 costs tens of milliseconds and megabytes by design).
//!
//! An entry is HMAC-SHA256 under a key drawn at start, of the user name, the password and the
//! stored hash, each length-prefixed: nothing in memory gives a password back, a changed hash
//! (after a reload) no longer matches, and only successes are kept, so a guess never hits. The
//! cache is bounded and simply emptied when full.

use std::collections::HashSet;
use std::sync::Mutex;

use hmac::{KeyInit, Mac};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// A keyed hash of one (user, password, stored hash).
pub(super) type CacheKey = [u8; 32];

pub(super) struct LoginCache {
    key: [u8; 32],
    capacity: usize,
    seen: Mutex<HashSet<CacheKey>>,
}

impl LoginCache {
    pub(super) fn new(capacity: usize) -> LoginCache {
        LoginCache {
            key: rand::random(),
            capacity,
            seen: Mutex::new(HashSet::new()),
        }
    }

    pub(super) fn key_for(&self, user: &str, password: &str, stored: &str) -> CacheKey {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes 32-byte keys");
        for part in [user, password, stored] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.finalize().into_bytes().into()
    }

    pub(super) fn contains(&self, key: &CacheKey) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(key)
    }

    pub(super) fn insert(&self, key: CacheKey) {
        if self.capacity == 0 {
            return;
        }
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= self.capacity {
            seen.clear();
        }
        seen.insert(key);
    }

    pub(super) fn clear(&self) {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_separate_their_parts_and_depend_on_the_process_key() {
        let c = LoginCache::new(4);
        let k = c.key_for("ab", "c", "h");
        assert_eq!(k, c.key_for("ab", "c", "h"));
        assert_ne!(k, c.key_for("a", "bc", "h"));
        assert_ne!(k, c.key_for("ab", "c", "h2"));
        assert_ne!(k, LoginCache::new(4).key_for("ab", "c", "h"));
    }

    #[test]
    fn bounded_and_cleared() {
        let c = LoginCache::new(2);
        let keys: Vec<CacheKey> = (0..3)
            .map(|i| c.key_for("u", &i.to_string(), "h"))
            .collect();
        c.insert(keys[0]);
        c.insert(keys[1]);
        assert!(c.contains(&keys[0]) && c.contains(&keys[1]));
        c.insert(keys[2]);
        assert_eq!(c.len(), 1);
        assert!(c.contains(&keys[2]) && !c.contains(&keys[0]));
        c.clear();
        assert!(!c.contains(&keys[2]));
        let none = LoginCache::new(0);
        none.insert(keys[0]);
        assert!(!none.contains(&keys[0]));
    }
}
