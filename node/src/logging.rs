//! The `mqnode` log: tracing events to stderr (the default) or to a file rotated by size
//! (`--log-file`, `--log-max-size`, `--log-max-files`), as text lines or one JSON object per
//! line (`--log-format`). `RUST_LOG` chooses what is logged (an `EnvFilter`, default `info`).
//!
//! Rotation, as log4j's `RollingFileAppender` does it: before a write that would take `FILE`
//! past the size, `FILE.N-1` becomes `FILE.N` (the old `FILE.N` is removed), …, `FILE` becomes
//! `FILE.1`, and a new `FILE` is started. A write is one whole event, so no line is split
//! across files; a single event larger than the size makes one file of its own. Every file is
//! created (and kept) mode 0600: logs name queues, users and addresses.
//!
//! stdout is not the log: it carries the ready lines that `mqctl` and tests read.

use std::ffi::OsString;
use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, IsTerminal, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use mq_shared::defaults as d;
use mqnode::config::{LogFormat, LogSettings};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// Mode of every log file: read and written by the node's user only.
const LOG_FILE_MODE: u32 = 0o600;

/// Installs the global subscriber for `settings` and a panic hook that logs panics. Fails when
/// the log file cannot be opened.
pub fn init(settings: &LogSettings) -> anyhow::Result<()> {
    let filter = filter();
    let to_file = settings.file.is_some();
    let layer = match &settings.file {
        None => layer(
            settings.format,
            std::io::stderr,
            std::io::stderr().is_terminal(),
        ),
        Some(path) => {
            let file = RotatingFile::open(path, settings.max_size, settings.max_files)
                .with_context(|| format!("cannot open the log file {}", path.display()))?;
            layer(settings.format, Mutex::new(file), false)
        }
    };
    tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init()
        .context("cannot install the logger")?;
    // A panic anywhere (a task included) is an error in the log, not only a line on stderr;
    // with a log file it goes to stderr too, where a service manager keeps it.
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!(panic = %info, "panic");
        if to_file {
            eprintln!("mqnode: panic: {info}");
        }
    }));
    Ok(())
}

/// `RUST_LOG`, else [`d::LOG_FILTER`]; a `RUST_LOG` that does not parse is said on stderr.
fn filter() -> EnvFilter {
    match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(&spec).unwrap_or_else(|e| {
            eprintln!(
                "mqnode: RUST_LOG={spec:?} is not a log filter ({e}); logging at {}",
                d::LOG_FILTER
            );
            EnvFilter::new(d::LOG_FILTER)
        }),
        _ => EnvFilter::new(d::LOG_FILTER),
    }
}

/// The formatting layer for `format`, writing to `writer`.
fn layer<W>(format: LogFormat, writer: W, ansi: bool) -> Box<dyn Layer<Registry> + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let fmt = tracing_subscriber::fmt::layer().with_writer(writer);
    match format {
        LogFormat::Text => fmt.with_ansi(ansi).boxed(),
        LogFormat::Json => fmt.json().with_ansi(false).boxed(),
    }
}

/// A log file rotated by size: `path`, `path.1` (the newest rotated) … `path.keep`.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    max_size: u64,
    keep: usize,
    file: File,
    size: u64,
}

impl RotatingFile {
    /// Opens (or creates, mode 0600) `path` for appending; its present size counts.
    pub fn open(path: &Path, max_size: u64, keep: usize) -> io::Result<RotatingFile> {
        let file = open_log(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            path: path.to_path_buf(),
            max_size,
            keep,
            file,
            size,
        })
    }

    /// `path.n`.
    fn rotated(&self, n: usize) -> PathBuf {
        let mut name = OsString::from(self.path.as_os_str());
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    /// Shifts the rotated files up by one, dropping the oldest, and starts a new file.
    fn rotate(&mut self) -> io::Result<()> {
        if self.keep == 0 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        ignore_missing(std::fs::remove_file(self.rotated(self.keep)))?;
        for n in (1..self.keep).rev() {
            ignore_missing(std::fs::rename(self.rotated(n), self.rotated(n + 1)))?;
        }
        std::fs::rename(&self.path, self.rotated(1))?;
        self.file = open_log(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let len = buf.len() as u64;
        if self.size > 0
            && self.size.saturating_add(len) > self.max_size
            && let Err(e) = self.rotate()
        {
            // The log goes on in the current file; try again after another max_size.
            eprintln!(
                "mqnode: cannot rotate the log file {}: {e}; writing on to it",
                self.path.display()
            );
            self.size = 0;
        }
        self.file.write_all(buf)?;
        self.size = self.size.saturating_add(len);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Opens `path` for appending, creating it; mode 0600 either way.
fn open_log(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(LOG_FILE_MODE)
        .open(path)?;
    file.set_permissions(Permissions::from_mode(LOG_FILE_MODE))?;
    Ok(file)
}

fn ignore_missing(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap_or_default()
    }

    #[test]
    fn rotates_whole_writes_and_drops_the_oldest() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("node.log");
        let mut f = RotatingFile::open(&path, 10, 2)?;
        for line in [
            "aaaa\n", "bbbb\n", "cccc\n", "dddd\n", "eeee\n", "ffff\n", "gggg\n",
        ] {
            f.write_all(line.as_bytes())?;
        }
        assert_eq!(read(&path), "gggg\n");
        assert_eq!(read(&f.rotated(1)), "eeee\nffff\n");
        assert_eq!(read(&f.rotated(2)), "cccc\ndddd\n");
        assert!(!f.rotated(3).exists(), "only two rotated files are kept");
        for p in [path.clone(), f.rotated(1), f.rotated(2)] {
            let mode = std::fs::metadata(&p)?.permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
        Ok(())
    }

    #[test]
    fn a_reopened_file_counts_what_it_holds_and_is_made_private() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("node.log");
        std::fs::write(&path, "12345678\n")?;
        std::fs::set_permissions(&path, Permissions::from_mode(0o644))?;
        let mut f = RotatingFile::open(&path, 12, 1)?;
        assert_eq!(
            std::fs::metadata(&path)?.permissions().mode() & 0o777,
            0o600
        );
        f.write_all(b"next\n")?;
        assert_eq!(read(&path), "next\n");
        assert_eq!(read(&f.rotated(1)), "12345678\n");
        Ok(())
    }

    #[test]
    fn an_event_larger_than_the_size_gets_a_file_of_its_own() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("node.log");
        let mut f = RotatingFile::open(&path, 4, 3)?;
        f.write_all(b"a very long line\n")?;
        f.write_all(b"b\n")?;
        assert_eq!(read(&path), "b\n");
        assert_eq!(read(&f.rotated(1)), "a very long line\n");
        Ok(())
    }

    #[test]
    fn keeping_no_rotated_file_starts_the_file_over() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("node.log");
        let mut f = RotatingFile::open(&path, 6, 0)?;
        f.write_all(b"one\n")?;
        f.write_all(b"two\n")?;
        assert_eq!(read(&path), "two\n");
        assert!(!f.rotated(1).exists());
        Ok(())
    }

    #[test]
    fn an_unopenable_path_is_an_error() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        assert!(
            RotatingFile::open(dir.path(), 1024, 1).is_err(),
            "a directory"
        );
        let missing = dir.path().join("no-such-dir").join("node.log");
        assert!(RotatingFile::open(&missing, 1024, 1).is_err());
        Ok(())
    }
}
