//! Who is master in a group, seen from outside: the store lock as the kernel's lock table
//! (`/proc/locks`) and the lock file's record show it, and [`MasterWatch`], which asserts that at
//! most one member of a group claims to be master at any instant.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mq_shared::api::{BrokerInfo, Role};
use mq_shared::ctl::LockHolder;

use crate::http_client;

/// Inode of `DATA/lock` now.
pub fn lock_inode(data_dir: &Path) -> Option<u64> {
    std::fs::metadata(data_dir.join("lock"))
        .ok()
        .map(|m| m.ino())
}

/// Every `(pid, inode)` of an exclusive `flock` in the kernel's lock table (`/proc/locks`).
pub fn flock_holders() -> Vec<(u32, u64)> {
    let Ok(locks) = std::fs::read_to_string("/proc/locks") else {
        return Vec::new();
    };
    locks
        .lines()
        .filter_map(|line| {
            // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 6 || f[1] != "FLOCK" || f[3] != "WRITE" {
                return None;
            }
            Some((f[4].parse().ok()?, f[5].rsplit(':').next()?.parse().ok()?))
        })
        .collect()
}

/// The pid holding the `flock` on the file now at `DATA/lock`, as the kernel reports it.
pub fn lock_holder_pid(data_dir: &Path) -> Option<u32> {
    let inode = lock_inode(data_dir)?;
    flock_holders()
        .into_iter()
        .find_map(|(pid, ino)| (ino == inode).then_some(pid))
}

/// The record the last taker wrote into `DATA/lock`.
pub fn lock_record(data_dir: &Path) -> Option<LockHolder> {
    LockHolder::read(data_dir)
}

/// Bound on one request of a [`MasterWatch`] round: a member that does not answer in time
/// makes no claim.
const WATCH_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /api/v1/broker`, or `None` when the node does not answer.
async fn broker(http: &reqwest::Client, admin: &str) -> Option<BrokerInfo> {
    let resp = http
        .get(format!("{admin}/api/v1/broker"))
        .send()
        .await
        .ok()?;
    resp.json().await.ok()
}

/// Watches the members of a group through their admin APIs and the lock, round after round,
/// and records every instant at which two of them could both be master.
///
/// A round asks every member at once. Two claims of master whose request windows overlap are
/// a violation. A claim is also checked against the kernel's lock table read right after: the
/// claimant must hold a `flock` on a file that was at `DATA/lock`, or, asked again, no longer
/// claim (it let go in between).
pub struct MasterWatch {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<WatchReport>,
}

/// What a [`MasterWatch`] saw.
#[derive(Debug, Default)]
pub struct WatchReport {
    /// Rounds completed.
    pub rounds: u64,
    /// Descriptions of the violations.
    pub violations: Vec<String>,
    /// Rounds in which some member claimed master.
    pub rounds_with_master: u64,
}

impl MasterWatch {
    /// Starts watching `admins` (base URLs) of the group sharing `data_dir`.
    pub fn start(admins: Vec<String>, data_dir: PathBuf) -> MasterWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        // Every file that was at `DATA/lock` while watching: a master may hold one that was
        // replaced until its keep-alive check notices.
        let mut inodes: Vec<u64> = lock_inode(&data_dir).into_iter().collect();
        let task = tokio::spawn(async move {
            let http = http_client(WATCH_TIMEOUT);
            let mut report = WatchReport::default();
            while !flag.load(Ordering::Relaxed) {
                let asks = admins.iter().map(|a| {
                    let (http, a) = (http.clone(), a.clone());
                    async move {
                        let a = a.as_str();
                        let sent = Instant::now();
                        let info = broker(&http, a).await;
                        (sent, Instant::now(), info)
                    }
                });
                let answers = futures_join_all(asks.collect()).await;
                let claims: Vec<(Instant, Instant, &BrokerInfo)> = answers
                    .iter()
                    .filter_map(|(s, r, i)| i.as_ref().map(|i| (*s, *r, i)))
                    .filter(|(_, _, i)| i.role == Role::Master)
                    .collect();
                for (i, a) in claims.iter().enumerate() {
                    for b in &claims[i + 1..] {
                        if a.0 <= b.1 && b.0 <= a.1 {
                            report.violations.push(format!(
                                "{} (pid {}) and {} (pid {}) both answered master in one round",
                                a.2.name, a.2.pid, b.2.name, b.2.pid
                            ));
                        }
                    }
                }
                if let Some(inode) = lock_inode(&data_dir)
                    && !inodes.contains(&inode)
                {
                    inodes.push(inode);
                }
                if let [(_, _, claim)] = claims.as_slice() {
                    report.rounds_with_master += 1;
                    let holds = |pid: u32| {
                        flock_holders()
                            .iter()
                            .any(|(p, ino)| *p == pid && inodes.contains(ino))
                    };
                    if !holds(claim.pid) {
                        // Has the claimant let go since? Ask it again.
                        let again = broker(&http, &claim.admin).await;
                        if again.as_ref().is_some_and(|b| b.role == Role::Master)
                            && !holds(claim.pid)
                        {
                            report.violations.push(format!(
                                "{} (pid {}) answers master without holding the store lock",
                                claim.name, claim.pid
                            ));
                        }
                    }
                }
                report.rounds += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            report
        });
        MasterWatch { stop, task }
    }

    /// Stops watching and returns what was seen.
    pub async fn finish(self) -> WatchReport {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("watch task")
    }
}

/// Runs futures concurrently and collects their outputs in order (what `join_all` does,
/// without another dependency).
async fn futures_join_all<F, T>(futures: Vec<F>) -> Vec<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("joined"));
    }
    out
}
