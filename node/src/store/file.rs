//! The journal's file, behind a small trait so tests can make a write or a sync fail.
//!
//! Every access names its offset: nothing depends on a file cursor, so a write that failed
//! halfway cannot move where the next one lands.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// What the journal needs of its file.
pub(crate) trait JournalFile: Send {
    /// Reads at `offset`, as `pread`.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize>;
    /// Writes all of `buf` at `offset`, as `pwrite` until done.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()>;
    /// `fdatasync`.
    fn sync_data(&self) -> std::io::Result<()>;
    /// `fsync`.
    fn sync_all(&self) -> std::io::Result<()>;
    /// `ftruncate`.
    fn set_len(&self, len: u64) -> std::io::Result<()>;
    /// The file's length.
    fn len(&self) -> std::io::Result<u64>;
}

impl JournalFile for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        FileExt::read_at(self, buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        FileExt::write_all_at(self, buf, offset)
    }

    fn sync_data(&self) -> std::io::Result<()> {
        File::sync_data(self)
    }

    fn sync_all(&self) -> std::io::Result<()> {
        File::sync_all(self)
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        File::set_len(self, len)
    }

    fn len(&self) -> std::io::Result<u64> {
        Ok(self.metadata()?.len())
    }
}

/// Wraps the opened journal file (tests wrap it in a [`faults::Faults`] file).
pub(crate) type WrapFile = Arc<dyn Fn(File) -> Box<dyn JournalFile> + Send + Sync>;

/// A [`Read`] over a journal file from an offset on, for a `BufReader`.
pub(super) struct ReadFrom<'a> {
    pub(super) file: &'a dyn JournalFile,
    pub(super) at: u64,
}

impl Read for ReadFrom<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// Fault injection for tests: a journal file that runs out of space or fails its syncs.
#[cfg(test)]
pub(crate) mod faults {
    use std::fs::File;
    use std::sync::{Arc, Mutex};

    use super::{JournalFile, WrapFile};

    #[derive(Default)]
    struct Plan {
        /// Writes fail with ENOSPC where they would grow the file past this length.
        size_limit: Option<u64>,
        /// Syncs that fail with EIO from now on.
        failing_syncs: usize,
        /// Every write fails with EIO while set.
        failing_writes: bool,
        /// How long each sync takes on top of the real one (a slow disk).
        sync_delay: std::time::Duration,
    }

    /// Shared switches of every file wrapped by [`Faults::wrap`].
    #[derive(Default)]
    pub(crate) struct Faults {
        plan: Mutex<Plan>,
    }

    impl Faults {
        pub(crate) fn new() -> Arc<Faults> {
            Arc::new(Faults::default())
        }

        fn plan(&self) -> std::sync::MutexGuard<'_, Plan> {
            self.plan.lock().unwrap_or_else(|e| e.into_inner())
        }

        /// The file cannot grow past `limit` bytes (a full disk); `None` lifts it.
        pub(crate) fn limit_size(&self, limit: Option<u64>) {
            self.plan().size_limit = limit;
        }

        /// The next `n` syncs fail.
        pub(crate) fn fail_syncs(&self, n: usize) {
            self.plan().failing_syncs = n;
        }

        /// Every write fails while `on`.
        pub(crate) fn fail_writes(&self, on: bool) {
            self.plan().failing_writes = on;
        }

        /// Every sync takes `d` longer (a slow disk); zero lifts it.
        pub(crate) fn slow_syncs(&self, d: std::time::Duration) {
            self.plan().sync_delay = d;
        }

        /// A wrapper for the store's options.
        pub(crate) fn wrap(self: &Arc<Faults>) -> WrapFile {
            let faults = self.clone();
            Arc::new(move |file| {
                Box::new(Faulty {
                    file,
                    faults: faults.clone(),
                }) as Box<dyn JournalFile>
            })
        }

        fn sync(&self) -> std::io::Result<()> {
            let delay = self.plan().sync_delay;
            if !delay.is_zero() {
                std::thread::sleep(delay);
            }
            let mut p = self.plan();
            if p.failing_syncs > 0 {
                p.failing_syncs -= 1;
                return Err(std::io::Error::from_raw_os_error(libc::EIO));
            }
            Ok(())
        }
    }

    /// A file that obeys a [`Faults`] plan. A failed sync leaves the written bytes in the
    /// file, as a real one may: the page cache can still write them out.
    struct Faulty {
        file: File,
        faults: Arc<Faults>,
    }

    impl JournalFile for Faulty {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
            JournalFile::read_at(&self.file, buf, offset)
        }

        fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
            let (limit, failing) = {
                let p = self.faults.plan();
                (p.size_limit, p.failing_writes)
            };
            if failing {
                return Err(std::io::Error::from_raw_os_error(libc::EIO));
            }
            if let Some(limit) = limit {
                let room = limit
                    .max(self.file.metadata()?.len())
                    .saturating_sub(offset);
                if (buf.len() as u64) > room {
                    // What fits is written, as a disk running full does.
                    let n = room as usize;
                    JournalFile::write_all_at(&self.file, &buf[..n], offset)?;
                    return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
                }
            }
            JournalFile::write_all_at(&self.file, buf, offset)
        }

        fn sync_data(&self) -> std::io::Result<()> {
            self.faults.sync()?;
            self.file.sync_data()
        }

        fn sync_all(&self) -> std::io::Result<()> {
            self.faults.sync()?;
            self.file.sync_all()
        }

        fn set_len(&self, len: u64) -> std::io::Result<()> {
            self.file.set_len(len)
        }

        fn len(&self) -> std::io::Result<u64> {
            JournalFile::len(&self.file)
        }
    }
}
