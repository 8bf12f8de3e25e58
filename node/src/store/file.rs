//! The journal's file, behind a small trait so tests can make a sync fail.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::sync::Arc;

/// What the journal needs of its file.
pub(crate) trait JournalFile: Read + Write + Seek + Send {
    /// `fdatasync`.
    fn sync_data(&mut self) -> std::io::Result<()>;
    /// `fsync`.
    fn sync_all(&mut self) -> std::io::Result<()>;
}

impl JournalFile for File {
    fn sync_data(&mut self) -> std::io::Result<()> {
        File::sync_data(self)
    }

    fn sync_all(&mut self) -> std::io::Result<()> {
        File::sync_all(self)
    }
}

/// Wraps the opened journal file (tests wrap it in a [`faults::Faulty`]).
pub(crate) type WrapFile = Arc<dyn Fn(File) -> Box<dyn JournalFile> + Send + Sync>;

/// Fault injection for tests: a journal file that fails its syncs.
#[cfg(test)]
pub(crate) mod faults {
    use std::fs::File;
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::sync::{Arc, Mutex};

    use super::{JournalFile, WrapFile};

    #[derive(Default)]
    struct Plan {
        /// Syncs that fail with EIO from now on.
        failing_syncs: usize,
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

        /// The next `n` syncs fail.
        pub(crate) fn fail_syncs(&self, n: usize) {
            self.plan().failing_syncs = n;
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
            let mut p = self.plan();
            if p.failing_syncs > 0 {
                p.failing_syncs -= 1;
                return Err(std::io::Error::from_raw_os_error(libc::EIO));
            }
            Ok(())
        }
    }

    struct Faulty {
        file: File,
        faults: Arc<Faults>,
    }

    impl Read for Faulty {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.file.read(buf)
        }
    }

    impl Seek for Faulty {
        fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
            self.file.seek(pos)
        }
    }

    impl Write for Faulty {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.file.write(buf)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            self.file.flush()
        }
    }

    impl JournalFile for Faulty {
        fn sync_data(&mut self) -> std::io::Result<()> {
            self.faults.sync()?;
            self.file.sync_data()
        }

        fn sync_all(&mut self) -> std::io::Result<()> {
            self.faults.sync()?;
            self.file.sync_all()
        }
    }
}
