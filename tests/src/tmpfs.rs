//! A small tmpfs for tests of a full disk: [`Tmpfs::mount`] mounts one on a fresh directory
//! (root is needed; where mounting is not permitted it says why and gives `None`, and the test
//! skips), [`fill_leaving`] fills it up to a given free space, and dropping it unmounts it,
//! also when the test fails.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::Command;

/// A mounted tmpfs, unmounted when dropped. Drop every process using it first (declare the
/// `Tmpfs` before the nodes that live on it).
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it, e.g. `24m`). `None`, with the
    /// reason printed, where this machine does not permit mounting; panics on other failures.
    pub fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::Builder::new()
            .prefix("mq-tmpfs-")
            .tempdir()
            .expect("creating a mount point");
        let out = match Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
        {
            Ok(out) => out,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("skipped: no mount command on this machine");
                return None;
            }
            Err(e) => panic!("running mount: {e}"),
        };
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr).to_lowercase();
            let refused = [
                "permission denied",
                "not permitted",
                "superuser",
                "must be root",
            ];
            if refused.iter().any(|s| why.contains(s)) {
                eprintln!("skipped: mounting a tmpfs is not permitted here: {why}");
                return None;
            }
            panic!("mount -t tmpfs failed: {why}");
        }
        Some(Tmpfs { dir })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
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
            // Still busy (a process of a failed test holds a file): detach it now; the kernel
            // frees it once the last user is gone.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// Writes `path` until its file system is full, then gives `free` bytes back (by truncating
/// it): the file system is left with about `free` bytes of room. Returns the file's size.
pub fn fill_leaving(path: &Path, free: u64) -> std::io::Result<u64> {
    let mut f = File::create(path)?;
    let chunk = vec![0x5au8; 64 * 1024];
    let mut len = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => len += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
            Err(e) => return Err(e),
        }
    }
    f.sync_all()?;
    let keep = len.saturating_sub(free);
    f.set_len(keep)?;
    Ok(keep)
}
