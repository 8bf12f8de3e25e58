//! Helpers shared by the master/slave tests: who holds the store lock (from the kernel's
//! `/proc/locks` and from the record in the lock file), a watcher that asserts at most one
//! member of a group claims to be master at any instant, and a load of producers and consumers
//! that follow the master through `failover:(...)`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mq_shared::api::{BrokerInfo, Role};
use mq_shared::client::{AckMode, ClientError, ConnectOptions, StompClient};
use mq_shared::ctl::LockHolder;
use mq_shared::failover::Failover;
use mq_shared::frame::Command;
use mq_shared::uri::ClientUri;

// ---- the lock --------------------------------------------------------------------------------

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

// ---- the admin API ---------------------------------------------------------------------------

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("HTTP client")
}

/// `GET /api/v1/broker`, or `None` when the node does not answer.
pub async fn broker(http: &reqwest::Client, admin: &str) -> Option<BrokerInfo> {
    let resp = http
        .get(format!("{admin}/api/v1/broker"))
        .send()
        .await
        .ok()?;
    resp.json().await.ok()
}

/// `POST /api/v1/ha/stepdown`: the status code.
pub async fn stepdown(admin: &str) -> u16 {
    match client()
        .post(format!("{admin}/api/v1/ha/stepdown"))
        .send()
        .await
    {
        Ok(r) => r.status().as_u16(),
        Err(e) => panic!("POST {admin}/api/v1/ha/stepdown failed: {e}"),
    }
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
            let http = client();
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

// ---- load through failover -------------------------------------------------------------------

/// Every delivery a consumer saw: message id → the `redelivered` flag of each delivery.
pub type Deliveries = Arc<Mutex<HashMap<u64, Vec<bool>>>>;

/// Producers sending persistent messages with receipts and consumers acknowledging each one
/// (`client-individual`), all through `failover:(...)`, so they follow the master.
pub struct Load {
    stop_producing: Arc<AtomicBool>,
    stop_consuming: Arc<AtomicBool>,
    producers: Vec<tokio::task::JoinHandle<Vec<u64>>>,
    consumers: Vec<tokio::task::JoinHandle<()>>,
    /// Every delivery seen so far.
    pub deliveries: Deliveries,
    /// Receipts received so far, across producers.
    pub confirmed: Arc<AtomicU64>,
    /// Connections re-established after a failure, across clients.
    pub reconnects: Arc<AtomicU64>,
}

/// The outcome of a [`Load`].
#[derive(Debug)]
pub struct LoadResult {
    /// Ids confirmed by a RECEIPT.
    pub confirmed: Vec<u64>,
    /// Every delivery seen.
    pub deliveries: HashMap<u64, Vec<bool>>,
    /// Reconnections made.
    pub reconnects: u64,
}

impl LoadResult {
    /// Confirmed ids never delivered.
    pub fn lost(&self) -> Vec<u64> {
        self.confirmed
            .iter()
            .copied()
            .filter(|id| !self.deliveries.contains_key(id))
            .collect()
    }

    /// Ids delivered more than once, with the flags of their deliveries.
    pub fn duplicates(&self) -> Vec<(u64, Vec<bool>)> {
        let mut d: Vec<(u64, Vec<bool>)> = self
            .deliveries
            .iter()
            .filter(|(_, v)| v.len() > 1)
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        d.sort();
        d
    }

    /// Ids delivered more than once without `redelivered:true`: only the first delivery of a
    /// message may lack the flag. (Counted rather than taken in order: two consumers on two
    /// connections may record an original and its redelivery in either order.)
    pub fn unflagged_duplicates(&self) -> Vec<u64> {
        self.duplicates()
            .into_iter()
            .filter(|(_, flags)| flags.iter().filter(|f| !**f).count() > 1)
            .map(|(id, _)| id)
            .collect()
    }
}

const DEST: &str = "/queue/ha.load";

async fn connect(f: &mut Failover) -> StompClient {
    match tokio::time::timeout(Duration::from_secs(30), f.connect()).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => panic!("failover connect failed: {e}"),
        Err(_) => panic!("no endpoint of {:?} served within 30 s", f.endpoints()),
    }
}

impl Load {
    /// Starts `producers` producers and `consumers` consumers on `uri`.
    pub fn start(uri: &str, producers: u64, consumers: usize) -> Load {
        let uri: ClientUri = uri.parse().expect("failover URI");
        let stop_producing = Arc::new(AtomicBool::new(false));
        let stop_consuming = Arc::new(AtomicBool::new(false));
        let deliveries: Deliveries = Arc::default();
        let confirmed = Arc::new(AtomicU64::new(0));
        let reconnects = Arc::new(AtomicU64::new(0));
        let producers = (0..producers)
            .map(|p| {
                let (uri, stop, confirmed, reconnects) = (
                    uri.clone(),
                    stop_producing.clone(),
                    confirmed.clone(),
                    reconnects.clone(),
                );
                tokio::spawn(async move {
                    let mut f = Failover::new(&uri, ConnectOptions::default());
                    let mut c = connect(&mut f).await;
                    let mut ok = Vec::new();
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let id = p * 1_000_000_000 + i;
                        i += 1;
                        let sent = tokio::time::timeout(
                            Duration::from_secs(10),
                            c.send(DEST, id.to_string(), &[("persistent", "true")], true),
                        )
                        .await;
                        match sent {
                            Ok(Ok(())) => {
                                ok.push(id);
                                confirmed.fetch_add(1, Ordering::Relaxed);
                            }
                            // Unconfirmed: it may or may not be stored; not resent, so that a
                            // second delivery can only be a redelivery.
                            _ => {
                                reconnects.fetch_add(1, Ordering::Relaxed);
                                c = connect(&mut f).await;
                            }
                        }
                    }
                    let _ = c.disconnect().await;
                    ok
                })
            })
            .collect();
        let consumers = (0..consumers)
            .map(|n| {
                let (uri, stop, deliveries, reconnects) = (
                    uri.clone(),
                    stop_consuming.clone(),
                    deliveries.clone(),
                    reconnects.clone(),
                );
                tokio::spawn(async move {
                    let mut f = Failover::new(&uri, ConnectOptions::default());
                    'connection: while !stop.load(Ordering::Relaxed) {
                        let mut c = connect(&mut f).await;
                        let sub = format!("c{n}");
                        let headers = [("activemq.prefetchSize", "50")];
                        if c.subscribe(DEST, &sub, AckMode::ClientIndividual, &headers)
                            .await
                            .is_err()
                        {
                            reconnects.fetch_add(1, Ordering::Relaxed);
                            continue 'connection;
                        }
                        while !stop.load(Ordering::Relaxed) {
                            match c.recv_timeout(Duration::from_millis(100)).await {
                                Ok(Some(m)) if m.command == Command::Message => {
                                    let id: u64 = std::str::from_utf8(&m.body)
                                        .ok()
                                        .and_then(|s| s.parse().ok())
                                        .expect("a load message body is its id");
                                    let flag = m.header("redelivered") == Some("true");
                                    deliveries
                                        .lock()
                                        .unwrap_or_else(|e| e.into_inner())
                                        .entry(id)
                                        .or_default()
                                        .push(flag);
                                    if c.ack(&m).await.is_err() {
                                        reconnects.fetch_add(1, Ordering::Relaxed);
                                        continue 'connection;
                                    }
                                }
                                Ok(_) => {}
                                Err(ClientError::Timeout(_)) => {}
                                Err(_) => {
                                    reconnects.fetch_add(1, Ordering::Relaxed);
                                    continue 'connection;
                                }
                            }
                        }
                        let _ = c.disconnect().await;
                    }
                })
            })
            .collect();
        Load {
            stop_producing,
            stop_consuming,
            producers,
            consumers,
            deliveries,
            confirmed,
            reconnects,
        }
    }

    /// Waits until at least `n` messages were confirmed in total (bounded).
    pub async fn wait_confirmed(&self, n: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.confirmed.load(Ordering::Relaxed) < n {
            assert!(
                Instant::now() < deadline,
                "only {} of {n} messages confirmed within {timeout:?}",
                self.confirmed.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the producers, waits (bounded by `drain`) until every confirmed message has been
    /// delivered, watches a little longer for duplicates, then stops the consumers.
    pub async fn finish(self, drain: Duration) -> LoadResult {
        self.stop_producing.store(true, Ordering::Relaxed);
        let mut confirmed = Vec::new();
        for p in self.producers {
            confirmed.extend(p.await.expect("producer task"));
        }
        let deadline = Instant::now() + drain;
        loop {
            let missing = {
                let d = self.deliveries.lock().unwrap_or_else(|e| e.into_inner());
                confirmed.iter().any(|id| !d.contains_key(id))
            };
            if !missing || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Late duplicates would arrive now.
        tokio::time::sleep(mq_tests::QUIET).await;
        self.stop_consuming.store(true, Ordering::Relaxed);
        for c in self.consumers {
            c.await.expect("consumer task");
        }
        let deliveries =
            std::mem::take(&mut *self.deliveries.lock().unwrap_or_else(|e| e.into_inner()));
        LoadResult {
            confirmed,
            deliveries,
            reconnects: self.reconnects.load(Ordering::Relaxed),
        }
    }
}

/// `failover:(tcp://A,tcp://B,...)?randomize=false&initialReconnectDelay=10&maxReconnectDelay=100`
pub fn failover_uri(stomp_urls: &[String]) -> String {
    format!(
        "failover:({})?randomize=false&initialReconnectDelay=10&maxReconnectDelay=100",
        stomp_urls.join(",")
    )
}

// ---- members -----------------------------------------------------------------------------------

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Options for member `name` of a group on `data_dir`, with a fixed STOMP port (so that
/// failover URIs can name a slave's port before it serves).
pub fn member(name: &str, data_dir: &Path) -> mq_tests::NodeOpts {
    let mut opts = mq_tests::NodeOpts::new(name).data(data_dir);
    opts.transport = format!("tcp://127.0.0.1:{}", free_port());
    opts
}

/// `tcp://127.0.0.1:PORT` a member was given (served or not).
pub fn transport_of(opts: &mq_tests::NodeOpts) -> String {
    opts.transport.clone()
}
