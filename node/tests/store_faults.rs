//! The store on a disk that fills up: a small tmpfs is mounted (the tests run as root; they
//! are skipped, saying why, only where mounting is not permitted), filled, and the store must
//! keep every message it confirmed across a crash.

use std::error::Error;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mqnode::store::{DEFAULT_RANK, Loaded, Op, PRIORITIES, Store, StoreError};

type TestResult = Result<(), Box<dyn Error>>;

/// A tmpfs mounted on a fresh directory, unmounted when dropped (also when a test fails).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it); `None` if this machine does
    /// not permit mounting.
    fn mount(size: &str) -> Result<Option<Tmpfs>, Box<dyn Error>> {
        let dir = tempfile::tempdir()?;
        let out = match Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
        {
            Ok(out) => out,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("skipped: no mount command on this machine");
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr).to_lowercase();
            if [
                "permission denied",
                "not permitted",
                "superuser",
                "must be root",
            ]
            .iter()
            .any(|s| why.contains(s))
            {
                eprintln!("skipped: mounting a tmpfs is not permitted here: {why}");
                return Ok(None);
            }
            return Err(format!("mount failed: {why}").into());
        }
        Ok(Some(Tmpfs { dir }))
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Still busy (a failed test left a file open): detach it now, it goes once free.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// Writes `path` until the file system is full, then gives back `free` bytes.
fn fill_leaving(path: &Path, free: u64) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    let chunk = vec![0x5au8; 64 * 1024];
    let mut len = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => len += n as u64,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => return Err(e),
        }
    }
    f.sync_all()?;
    f.set_len(len.saturating_sub(free))?;
    Ok(())
}

fn put(seq: u64, data: Vec<u8>) -> Op {
    Op::Put {
        queue: Arc::from("orders"),
        rank: DEFAULT_RANK,
        seq,
        data: Bytes::from(data),
        dedup: None,
    }
}

/// Opens the store once the writer thread of a dropped handle has let go of it, and reads
/// back every message of queue `orders`.
fn reopen(path: &Path) -> Result<(Store, Vec<Loaded>), StoreError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match open(path) {
            Err(StoreError::AlreadyOpen { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            r => return r,
        }
    }
}

/// Opens the store and reads back every message of queue `orders`.
fn open(path: &Path) -> Result<(Store, Vec<Loaded>), StoreError> {
    let (store, _) = Store::open(path)?;
    let (tx, rx) = std::sync::mpsc::channel();
    store.load(
        Arc::from("orders"),
        [0; PRIORITIES],
        usize::MAX,
        u64::MAX,
        Box::new(move |l| {
            let _ = tx.send(l);
        }),
    )?;
    let list = rx.recv().map_err(|_| StoreError::Closed)??;
    Ok((store, list))
}

#[tokio::test]
async fn a_receipted_message_after_a_disk_full_error_survives_a_crash() -> TestResult {
    let Some(fs) = Tmpfs::mount("24m")? else {
        return Ok(());
    };
    let path = fs.path().join("store.redb");
    let (store, recovered) = open(&path)?;
    assert!(recovered.is_empty());
    let filler = fs.path().join("filler");
    fill_leaving(&filler, 5 * 1024 * 1024 / 2)?;

    // 6 MiB do not fit in the 2.5 MiB left: the sender is told.
    let big = store.commit(vec![put(1, vec![1u8; 6 * 1024 * 1024])]).await;
    assert!(
        matches!(big, Err(StoreError::Write(_))),
        "a write the disk has no room for fails: {big:?}"
    );

    // Space comes back; a small message is confirmed.
    std::fs::remove_file(&filler)?;
    store.commit(vec![put(2, b"small".to_vec())]).await?;

    // A crash: the handle goes without a close, so nothing is checkpointed into redb and
    // only the journal holds the confirmed message.
    drop(store);
    let (store, recovered) = reopen(&path)?;
    let seqs: Vec<u64> = recovered.iter().map(|r| r.seq).collect();
    assert_eq!(
        seqs,
        vec![2],
        "the confirmed message is back, the refused one is not"
    );
    assert_eq!(&recovered[0].data[..], b"small");
    store.close();
    Ok(())
}
