//! A replica's side of replication: one link to the master, its groups applied to the
//! replica's own store (one store submission per group: committed by the link's own task when
//! the store's writer is idle, else gathered by the writer with what arrives meanwhile into one
//! sync) and acknowledged, or a snapshot installed first.
//!
//! The replica refuses a master of an older epoch than the newest it knows, and a group of
//! another epoch than its master's, or out of order. A snapshot replaces its store: it is
//! closed, the rows are written into a new file that takes the store's place once complete,
//! and it is opened again.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mq_shared::tls::{ClientConfig, Stream, TlsError};
use tokio::io::{AsyncWriteExt, BufReader, ReadHalf, WriteHalf};
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;

use super::options::SyncMode;
use super::stream::election_position;
use super::wire::{self, Frame, WireError};
use crate::store::replication::{self as repl, Chunk, Position};
use crate::store::{Store, StoreError};

/// How long connecting to the master and its welcome may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Bytes of groups handed to the store and not yet synced.
const IN_FLIGHT_BYTES: usize = 32 << 20;

/// Why following a master stopped.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The link.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The connection or its TLS handshake.
    #[error("replication link: {0}")]
    Connect(#[from] TlsError),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The master refused this replica, or this replica the master.
    #[error("{0}")]
    Refused(String),
}

/// What a replica shares with the role machine and the admin API.
#[derive(Default)]
pub struct ReplicaStatus {
    /// `connecting`, `snapshot` or `streaming`.
    pub state: Mutex<&'static str>,
    /// The master's last position as last heard.
    pub head: AtomicU64,
    /// The position synced here.
    pub durable: AtomicU64,
}

/// The host of a `host:port` address (brackets of an IPv6 address removed): the name the
/// master's certificate is verified for, its `hostname` as published in ZooKeeper.
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// What a replica follows with.
pub struct Follower {
    /// This member's name.
    pub name: String,
    /// The group's token.
    pub token: Option<String>,
    /// With TLS: the master verified against the node's CA, the node's certificate presented.
    pub tls: Option<Arc<ClientConfig>>,
    /// The store file.
    pub path: PathBuf,
    /// Options the store is opened with.
    pub opts: crate::store::Options,
    /// The position published to ZooKeeper.
    pub published: Arc<AtomicU64>,
    /// For the admin API.
    pub status: Arc<ReplicaStatus>,
    /// What the group's master waits for: with `quorum_disk` each group is synced before
    /// its acknowledgement (on the link's task); otherwise a group is acknowledged as
    /// received at once and synced by the store's writer thread behind it, several groups
    /// to a sync when they come faster than one.
    pub sync: SyncMode,
}

impl Follower {
    fn set_state(&self, s: &'static str) {
        *self.status.state.lock().unwrap_or_else(|e| e.into_inner()) = s;
    }

    /// Opens the store (if it is not open) and reads its position.
    pub async fn open(&self, store: &mut Option<Store>) -> Result<Position, StoreError> {
        if store.is_none() {
            let path = self.path.clone();
            let opts = self.opts.clone();
            let (s, _) = tokio::task::spawn_blocking(move || Store::open_with(&path, &opts))
                .await
                .map_err(|e| StoreError::Task(e.to_string()))??;
            *store = Some(s);
        }
        let Some(s) = store.as_ref() else {
            return Err(StoreError::Closed);
        };
        let p = s.replication_position().await?;
        self.note(p);
        Ok(p)
    }

    fn note(&self, p: Position) {
        self.published
            .store(election_position(p), Ordering::Relaxed);
        self.status.durable.store(p.pos, Ordering::Relaxed);
    }

    /// Follows the master at `address` (elected for `epoch`) until the link breaks or
    /// `cancel` fires. `store` is this member's store, open or not; it is open again when
    /// this returns, unless reopening it failed.
    pub async fn follow(
        &self,
        store: &mut Option<Store>,
        address: &str,
        epoch: u64,
        cancel: &CancellationToken,
    ) -> Result<(), FollowError> {
        self.set_state("connecting");
        let mine = self.open(store).await?;
        let conn = tokio::time::timeout(
            CONNECT_TIMEOUT,
            mq_shared::tls::connect(address, self.tls.as_ref(), host_of(address)),
        )
        .await
        .map_err(|_| FollowError::Refused(format!("no answer from {address}")))??;
        let _ = conn.tcp().set_nodelay(true);
        let (rd, mut wr) = tokio::io::split(conn);
        let mut rd = BufReader::with_capacity(256 << 10, rd);
        wire::write(
            &mut wr,
            &Frame::Hello {
                token: self.token.clone().unwrap_or_default(),
                name: self.name.clone(),
                epoch: mine.epoch,
                pos: mine.pos,
                known_epoch: epoch,
            },
        )
        .await?;
        wr.flush().await.map_err(WireError::Io)?;
        let welcome = tokio::time::timeout(CONNECT_TIMEOUT, wire::read(&mut rd))
            .await
            .map_err(|_| FollowError::Refused("no welcome in time".into()))??;
        let (master_epoch, snapshot, from) = match welcome {
            Frame::Welcome {
                epoch,
                snapshot,
                from,
            } => (epoch, snapshot, from),
            Frame::Refused { reason } => return Err(FollowError::Refused(reason)),
            _ => return Err(WireError::Bad("expected a welcome").into()),
        };
        if master_epoch < epoch {
            return Err(FollowError::Refused(format!(
                "the master at {address} streams epoch {master_epoch}, older than the elected {epoch}"
            )));
        }
        let from = if snapshot {
            self.set_state("snapshot");
            tokio::select! {
                r = self.install(store, &mut rd, master_epoch) => r?,
                () = cancel.cancelled() => return Ok(()),
            }
        } else {
            from
        };
        self.set_state("streaming");
        let Some(s) = store.clone() else {
            return Err(StoreError::Closed.into());
        };
        tokio::select! {
            r = self.stream(&s, rd, wr, master_epoch, from) => r,
            () = cancel.cancelled() => Ok(()),
        }
    }

    /// Receives a snapshot into a new store file that replaces this member's store; returns
    /// its position (the store is open again).
    async fn install(
        &self,
        store: &mut Option<Store>,
        rd: &mut BufReader<ReadHalf<Stream>>,
        master_epoch: u64,
    ) -> Result<u64, FollowError> {
        let begin = wire::read(rd).await?;
        let Frame::SnapBegin { epoch, pos } = begin else {
            return Err(WireError::Bad("expected a snapshot").into());
        };
        if epoch > master_epoch {
            return Err(FollowError::Refused(
                "a snapshot from a later epoch than its master's".into(),
            ));
        }
        tracing::info!(
            position = pos,
            epoch,
            "receiving a snapshot; this member's own store is discarded"
        );
        if let Some(s) = store.take() {
            tokio::task::spawn_blocking(move || s.close())
                .await
                .map_err(|e| StoreError::Task(e.to_string()))?;
        }
        let (tx, rx) = std::sync::mpsc::sync_channel::<Chunk>(4);
        let path = self.path.clone();
        let writer = tokio::task::spawn_blocking(move || repl::install_snapshot(&path, rx));
        let received = async {
            loop {
                let c = match wire::read(rd).await? {
                    Frame::SnapOps(g) => Chunk::Ops(g),
                    Frame::SnapIds(ids) => Chunk::Dedup(ids),
                    Frame::SnapEnd { max_seq } => Chunk::End { max_seq },
                    _ => return Err(WireError::Bad("expected a snapshot chunk")),
                };
                let end = matches!(c, Chunk::End { .. });
                let tx = tx.clone();
                // The writer takes chunks as it writes them (a bounded channel).
                let sent = tokio::task::spawn_blocking(move || tx.send(c).is_ok())
                    .await
                    .unwrap_or(false);
                if !sent || end {
                    return Ok(());
                }
            }
        }
        .await;
        drop(tx);
        let installed = writer.await.map_err(|e| StoreError::Task(e.to_string()))?;
        // Whatever happened, the store (new or old) is opened again.
        let reopened = self.open(store).await;
        received?;
        let at = installed?;
        let now = reopened?;
        tracing::info!(position = at.pos, epoch = at.epoch, "snapshot installed");
        Ok(now.pos)
    }

    /// Applies groups after `from` as they come, acknowledging what is received and synced.
    async fn stream(
        &self,
        store: &Store,
        mut rd: BufReader<ReadHalf<Stream>>,
        mut wr: WriteHalf<Stream>,
        master_epoch: u64,
        from: u64,
    ) -> Result<(), FollowError> {
        let (acks, mut acked) = watch::channel((from, from));
        // The first ack says where the stream starts (a snapshot just installed, say).
        acked.mark_changed();
        let acks = Arc::new(acks);
        let failed: Arc<Mutex<Option<StoreError>>> = Arc::new(Mutex::new(None));
        let room = Arc::new(Semaphore::new(IN_FLIGHT_BYTES));
        let send_acks = async {
            loop {
                if acked.changed().await.is_err() {
                    return Ok::<(), FollowError>(());
                }
                let (received, durable) = *acked.borrow_and_update();
                wire::write(&mut wr, &Frame::Ack { received, durable }).await?;
                wr.flush().await.map_err(WireError::Io)?;
            }
        };
        let apply = async {
            let mut expected = from;
            loop {
                let f = wire::read(&mut rd).await?;
                let Frame::Group { epoch, head, group } = f else {
                    return Err(WireError::Bad("expected a group").into());
                };
                if epoch != master_epoch {
                    return Err(FollowError::Refused(format!(
                        "a group of epoch {epoch} from the master of epoch {master_epoch}"
                    )));
                }
                self.status.head.store(head, Ordering::Relaxed);
                let Some((pos, ops)) = repl::decode_group(&group) else {
                    return Err(WireError::Bad("unreadable group").into());
                };
                if pos != expected + 1 {
                    return Err(FollowError::Refused(format!(
                        "group {pos} out of order (expected {})",
                        expected + 1
                    )));
                }
                if let Some(e) = failed.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    return Err(e.into());
                }
                expected = pos;
                let n = group.len().clamp(1, IN_FLIGHT_BYTES) as u32;
                let permit = room
                    .clone()
                    .acquire_many_owned(n)
                    .await
                    .map_err(|_| StoreError::Closed)?;
                let at = ops.iter().find_map(Position::of_op);
                let acks2 = acks.clone();
                let failed2 = failed.clone();
                let status = self.status.clone();
                let published = self.published.clone();
                let done: crate::store::Done = Box::new(move |r| {
                    drop(permit);
                    match r {
                        Ok(_) => {
                            if let Some(p) = at {
                                published.store(election_position(p), Ordering::Relaxed);
                            }
                            status.durable.store(pos, Ordering::Relaxed);
                            acks2.send_modify(|a| a.1 = a.1.max(pos));
                        }
                        Err(e) => {
                            *failed2.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                        }
                    }
                });
                if self.sync == SyncMode::QuorumDisk {
                    // This task holds no lock: with the store's writer idle, it commits the
                    // group itself (no hand-off to the writer thread and back before the ack).
                    store.submit_here(ops, Some(done));
                } else {
                    // Received is what the master waits for: the ack goes out before the sync.
                    store.submit(ops, Some(done));
                }
                acks.send_modify(|a| a.0 = a.0.max(pos));
            }
        };
        tokio::select! {
            r = send_acks => r,
            r = apply => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Op;
    use crate::store::faults::Faults;
    use tokio::io::AsyncWriteExt;

    /// A replica following a fake master's link, its store on a disk whose syncs take
    /// 300 ms: the first ack that says group 1 is received says whether it is synced too.
    async fn first_ack_of_a_group(
        sync: SyncMode,
    ) -> Result<(u64, u64), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let faults = Faults::new();
        faults.slow_syncs(Duration::from_millis(300));
        let opts = crate::store::Options {
            wrap_journal: Some(faults.wrap()),
            ..crate::store::Options::default()
        };
        let path = dir.path().join("store.redb");
        let follower = Follower {
            name: "r1".into(),
            token: None,
            tls: None,
            path: path.clone(),
            opts: opts.clone(),
            published: Arc::default(),
            status: Arc::default(),
            sync,
        };
        let (store, _) =
            tokio::task::spawn_blocking(move || Store::open_with(&path, &opts)).await??;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let near = tokio::net::TcpStream::connect(listener.local_addr()?).await?;
        let (mut master, _) = listener.accept().await?;
        let (rd, wr) = tokio::io::split(Stream::Plain(near));
        let fake_master = async {
            let put = Op::Put {
                queue: Arc::from("q"),
                rank: 4,
                seq: 1,
                data: bytes::Bytes::from_static(b"m"),
                dedup: None,
            };
            let row = Position { epoch: 1, pos: 1 }.op();
            let group = repl::encode_group(1, &[&put, &row])?;
            let frame = Frame::Group {
                epoch: 1,
                head: 1,
                group,
            };
            master.write_all(&frame.encode()).await?;
            loop {
                if let Frame::Ack { received, durable } = wire::read(&mut master).await?
                    && received >= 1
                {
                    return Ok::<_, Box<dyn std::error::Error>>((received, durable));
                }
            }
        };
        let r = tokio::select! {
            r = follower.stream(&store, BufReader::new(rd), wr, 1, 0) => Err(format!("the replica stopped: {r:?}").into()),
            r = tokio::time::timeout(Duration::from_secs(10), fake_master) => r?,
        };
        tokio::task::spawn_blocking(move || store.close()).await?;
        r
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_quorum_mem_a_group_is_acknowledged_as_received_before_its_sync()
    -> Result<(), Box<dyn std::error::Error>> {
        assert_eq!(first_ack_of_a_group(SyncMode::QuorumMem).await?, (1, 0));
        assert_eq!(first_ack_of_a_group(SyncMode::QuorumDisk).await?, (1, 1));
        Ok(())
    }

    #[test]
    fn the_master_is_verified_as_the_host_it_is_dialled_at() {
        assert_eq!(host_of("mq1.example:61619"), "mq1.example");
        assert_eq!(host_of("10.0.0.1:61619"), "10.0.0.1");
        assert_eq!(host_of("[::1]:61619"), "::1");
        assert_eq!(host_of("mq1"), "mq1");
    }
}
