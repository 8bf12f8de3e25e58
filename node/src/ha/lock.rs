//! The store lock: an exclusive `flock` on `DATA/lock`, with the holder's record and the
//! inode fence described in [`super`].

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Why the lock could not be tried.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The lock file could not be created or opened (permissions, missing directory).
    #[error("cannot open lock file {path}: {error}")]
    Open {
        /// Lock file path.
        path: String,
        /// The I/O error (in the message, not a separate source, so it is printed once).
        error: std::io::Error,
    },
}

pub use mq_shared::ctl::LockHolder as LockRecord;

/// A held store lock. Dropping it releases the lock.
#[derive(Debug)]
pub struct StoreLock {
    file: File,
    path: PathBuf,
    previous: Option<LockRecord>,
    handover: bool,
}

impl StoreLock {
    /// Tries once to take the lock; `Ok(None)` when another process holds it.
    pub fn try_acquire(dir: &Path, holder: &str) -> Result<Option<StoreLock>, LockError> {
        let path = dir.join(mq_shared::defaults::LOCK_FILE);
        let err = |error| LockError::Open {
            path: path.display().to_string(),
            error,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => return Err(err(e)),
        }
        let inode = file.metadata().map_err(err)?.ino();
        let mut text = String::new();
        // An unreadable record only costs the fence wait.
        let _ = file.read_to_string(&mut text);
        let previous = LockRecord::parse(&text);
        let handover = previous.as_ref().is_some_and(|p| p.inode == inode);
        let mine = LockRecord {
            holder: holder.to_string(),
            pid: std::process::id(),
            inode,
        };
        // Record who holds it: for the next taker (see the module doc) and for people.
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{mine}"))
            .and_then(|()| file.sync_data())
            .map_err(err)?;
        Ok(Some(StoreLock {
            file,
            path,
            previous,
            handover,
        }))
    }

    /// Whether the taker must wait one `lockKeepAlivePeriod` before serving: the file was not
    /// handed over by a holder of this very file (it is new, or was replaced), so a master
    /// holding an older file may still be running until its keep-alive check notices.
    pub fn fenced(&self) -> bool {
        !self.handover
    }

    /// The record the previous holder left in the file, if any.
    pub fn previous(&self) -> Option<&LockRecord> {
        self.previous.as_ref()
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

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn take(dir: &Path, who: &str) -> Result<StoreLock, Box<dyn std::error::Error>> {
        StoreLock::try_acquire(dir, who)?
            .ok_or_else(|| format!("{who} did not get the lock").into())
    }

    #[test]
    fn one_holder_at_a_time_and_replacement_is_noticed() -> TestResult {
        let dir = tempfile::tempdir()?;
        let a = take(dir.path(), "a")?;
        assert!(StoreLock::try_acquire(dir.path(), "b")?.is_none());
        assert!(a.still_held());
        std::fs::remove_file(dir.path().join("lock"))?;
        assert!(!a.still_held());
        a.release();
        Ok(())
    }

    #[test]
    fn a_handover_of_the_same_file_needs_no_fence() -> TestResult {
        let dir = tempfile::tempdir()?;
        let a = take(dir.path(), "a")?;
        assert!(a.fenced(), "a new lock file is fenced");
        let record = LockRecord::read(dir.path()).ok_or("no record")?;
        assert_eq!(record.holder, "a");
        assert_eq!(record.pid, std::process::id());
        a.release();
        let b = take(dir.path(), "b")?;
        assert!(!b.fenced(), "a released the same file");
        assert_eq!(b.previous().map(|p| p.holder.as_str()), Some("a"));
        b.release();
        Ok(())
    }

    #[test]
    fn a_replaced_lock_file_is_fenced_even_with_a_copied_record() -> TestResult {
        let dir = tempfile::tempdir()?;
        let a = take(dir.path(), "a")?;
        // Someone copies the file over itself: same text, new inode; `a` still holds the old one.
        let text = std::fs::read_to_string(dir.path().join("lock"))?;
        std::fs::write(dir.path().join("lock.new"), &text)?;
        std::fs::rename(dir.path().join("lock.new"), dir.path().join("lock"))?;
        let b = take(dir.path(), "b")?;
        assert!(b.fenced());
        assert!(!a.still_held());
        assert!(b.still_held());
        a.release();
        b.release();
        Ok(())
    }
}
