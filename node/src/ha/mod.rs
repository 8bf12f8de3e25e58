//! Master/slave on a shared data directory.
//!
//! The store lock is the file `lock` in the data directory, held with an exclusive OS file
//! lock (`flock`), which the kernel releases when the holder dies. Role machine:
//!
//! ```text
//!            try_lock ok                      lock lost / stepdown
//!  start ──▶ [slave: poll every lockAcquireSleepInterval] ──▶ [master] ──────────────▶ [slave]
//!                                                  │ every lockKeepAlivePeriod: is the file
//!                                                  │ at `lock` still the one we hold?
//! ```
//!
//! The keep-alive check guards against the lock file being deleted or replaced under a running
//! master (a new file could be locked by another node: two masters). The master compares the
//! device and inode of its open handle with the path's; on a mismatch it demotes itself.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Why the lock could not be tried.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The lock file could not be created or opened (permissions, missing directory).
    #[error("cannot open lock file {path}: {source}")]
    Open {
        /// Lock file path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A held store lock. Dropping it releases the lock.
#[derive(Debug)]
pub struct StoreLock {
    file: File,
    path: PathBuf,
}

impl StoreLock {
    /// Tries once to take the lock; `Ok(None)` when another process holds it.
    pub fn try_acquire(dir: &Path, holder: &str) -> Result<Option<StoreLock>, LockError> {
        let path = dir.join(mq_shared::defaults::LOCK_FILE);
        let err = |source| LockError::Open {
            path: path.display().to_string(),
            source,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(err)?;
        match file.try_lock() {
            Ok(()) => {
                // Record who holds it, for people looking at the directory.
                let _ = file.set_len(0);
                let _ = writeln!(file, "{holder} pid {}", std::process::id());
                Ok(Some(StoreLock { file, path }))
            }
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(err(e)),
        }
    }

    /// Whether the lock file at the path is still the one this lock holds.
    pub fn still_held(&self) -> bool {
        let (Ok(mine), Ok(there)) = (self.file.metadata(), std::fs::metadata(&self.path)) else {
            return false;
        };
        mine.dev() == there.dev() && mine.ino() == there.ino()
    }

    /// Releases the lock.
    pub fn release(self) {
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_replacement_is_noticed() -> Result<(), LockError> {
        let dir = tempfile::tempdir().map_err(|e| LockError::Open {
            path: "tmp".into(),
            source: e,
        })?;
        let a = StoreLock::try_acquire(dir.path(), "a")?;
        assert!(a.is_some());
        assert!(StoreLock::try_acquire(dir.path(), "b")?.is_none());
        let a = a.ok_or_else(|| LockError::Open {
            path: "a".into(),
            source: std::io::Error::other("no lock"),
        })?;
        assert!(a.still_held());
        std::fs::remove_file(dir.path().join("lock")).map_err(|e| LockError::Open {
            path: "lock".into(),
            source: e,
        })?;
        assert!(!a.still_held());
        a.release();
        Ok(())
    }
}
