//! The master's side of replication: the [`Replicator`] its store's writer thread calls for
//! every group commit (stamp, then wait for the quorum), the backlog of recent groups, and one
//! task per replica link that streams them (or a snapshot first) and reads its acks.
//!
//! ```text
//! writer thread ── stamp(ops) ──▶ backlog (pos, group) ──notify──▶ link task ── Group ──▶ replica
//!       │                                                             ▲
//! confirm thread ── wait(pos): until 1 + (replicas whose ack ≥ pos) ≥ quorum ◀── Ack ──┘
//! ```
//!
//! A replica whose position the backlog cannot continue (new, far behind, from another epoch,
//! or ahead: groups never confirmed) gets a snapshot: the writer checkpoints and hands over a
//! read transaction, whose rows go out while the writer goes on; the stream then continues
//! from the snapshot's position.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use bytes::Bytes;
use mq_shared::api::ReplicaInfo;
use mq_shared::tls::Stream;
use tokio::io::{AsyncWriteExt, BufWriter, WriteHalf};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::options::{ReplicatedConfig, SyncMode};
use super::wire::{self, Frame, WireError};
use crate::store::replication::{
    self as repl, Chunk, Position, Replication, Snapshot, SnapshotReply,
};
use crate::store::{Op, Store};

/// Bytes of recent groups kept for replicas that fall a little behind.
const BACKLOG_BYTES: usize = 64 << 20;
/// How long a replica has to introduce itself.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a snapshot may wait for the writer.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(60);
/// How often a confirmation waiting for its quorum looks at the fence again.
const FENCE_CHECK: Duration = Duration::from_millis(20);

/// Whether this member may still confirm (its ZooKeeper lease holds, as master of the epoch).
pub type Fence = Box<dyn Fn() -> bool + Send + Sync>;

/// One replica link as the master sees it.
struct Link {
    name: String,
    snapshot: bool,
    received: u64,
    durable: u64,
}

struct State {
    /// The position this term started from (the store's row when it became master).
    base: Position,
    /// The last position stamped.
    last: u64,
    /// Recent groups of this term, contiguous positions.
    backlog: VecDeque<(u64, Bytes)>,
    backlog_bytes: usize,
    links: BTreeMap<u64, Link>,
    next_link: u64,
    /// Set when this term may confirm nothing more.
    closed: Option<String>,
    /// Raised when a group was abandoned: links that may have sent it start over.
    generation: u64,
    snapshots: VecDeque<SnapshotReply>,
}

impl State {
    /// A term starting at `base`: nothing stamped, no backlog, no link.
    fn new(base: Position) -> State {
        State {
            base,
            last: base.pos,
            backlog: VecDeque::new(),
            backlog_bytes: 0,
            links: BTreeMap::new(),
            next_link: 0,
            closed: None,
            generation: 0,
            snapshots: VecDeque::new(),
        }
    }
}

/// The master's replication: the store's hook and the replica links' shared state.
pub struct Replicator {
    epoch: u64,
    quorum: usize,
    sync: SyncMode,
    token: Option<String>,
    fence: Fence,
    state: Mutex<State>,
    changed: Condvar,
    streamed: Notify,
    /// The store, to wake its writer when a snapshot is wanted.
    store: Mutex<Option<Store>>,
    /// The position published to ZooKeeper.
    published: Arc<AtomicU64>,
    /// Cancels the link tasks.
    stop: CancellationToken,
}

/// The position as ZooKeeper's election compares it: the epoch first, then the position
/// (a group of a newer master outranks any number of an older one's).
pub fn election_position(p: Position) -> u64 {
    (p.epoch << 40) | (p.pos & ((1 << 40) - 1))
}

impl Replicator {
    /// A master's replication for `epoch`, continuing from `base` (the store's position).
    pub fn new(
        cfg: &ReplicatedConfig,
        epoch: u64,
        base: Position,
        fence: Fence,
        published: Arc<AtomicU64>,
    ) -> Arc<Replicator> {
        Arc::new(Replicator {
            epoch,
            quorum: cfg.quorum(),
            sync: cfg.sync,
            token: cfg.token.clone(),
            fence,
            state: Mutex::new(State::new(base)),
            changed: Condvar::new(),
            streamed: Notify::new(),
            store: Mutex::new(None),
            published,
            stop: CancellationToken::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The store whose writer serves snapshots (woken through it).
    pub fn attach(&self, store: Store) {
        *self.store.lock().unwrap_or_else(|e| e.into_inner()) = Some(store);
    }

    /// Ends the term: nothing more is confirmed (a waiting confirmation is refused) and the
    /// links close.
    pub fn close(&self, why: &str) {
        self.lock().closed.get_or_insert_with(|| why.to_string());
        self.changed.notify_all();
        self.streamed.notify_waiters();
        self.stop.cancel();
        *self.store.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Whether this member still holds its ZooKeeper lease as master of its epoch.
    pub fn holds(&self) -> bool {
        (self.fence)()
    }

    /// The epoch of this term.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The replicas connected now, with how many groups each lacks on disk.
    pub fn replicas(&self) -> Vec<ReplicaInfo> {
        let s = self.lock();
        s.links
            .values()
            .map(|l| ReplicaInfo {
                name: l.name.clone(),
                state: if l.snapshot { "snapshot" } else { "streaming" }.into(),
                lag_records: s.last.saturating_sub(l.durable),
            })
            .collect()
    }

    /// Whether the quorum holds position `pos` (this member counts as one).
    fn quorum_has(&self, s: &State, pos: u64) -> bool {
        if self.sync == SyncMode::LocalDisk {
            return true;
        }
        let acked = s
            .links
            .values()
            .filter(|l| {
                let has = match self.sync {
                    SyncMode::QuorumMem => l.received,
                    _ => l.durable,
                };
                has >= pos
            })
            .count();
        1 + acked >= self.quorum
    }

    fn wake_writer(&self) {
        if let Some(s) = self
            .store
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            // An empty submission: the writer loops and serves what waits.
            s.submit(Vec::new(), None);
        }
    }
}

impl Replication for Replicator {
    fn stamp(&self, ops: &[&Op]) -> Option<Op> {
        let kept: Vec<&Op> = ops.iter().copied().filter(|o| !o.is_transient()).collect();
        if kept.is_empty() {
            return None;
        }
        let mut s = self.lock();
        let pos = s.last + 1;
        let row = Position {
            epoch: self.epoch,
            pos,
        }
        .op();
        let mut all = kept;
        all.push(&row);
        match repl::encode_group(pos, &all) {
            Ok(group) => {
                s.last = pos;
                s.backlog_bytes += group.len();
                s.backlog.push_back((pos, group));
                while s.backlog_bytes > BACKLOG_BYTES && s.backlog.len() > 1 {
                    if let Some((_, g)) = s.backlog.pop_front() {
                        s.backlog_bytes -= g.len();
                    }
                }
            }
            Err(e) => {
                // The journal refuses it too; should it not, nothing more is confirmed.
                tracing::error!(error = %e, "a group cannot be replicated; confirming nothing more");
                s.closed
                    .get_or_insert_with(|| format!("a group cannot be replicated: {e}"));
            }
        }
        drop(s);
        self.published.store(
            election_position(Position {
                epoch: self.epoch,
                pos: self.lock().last,
            }),
            Ordering::Relaxed,
        );
        self.streamed.notify_waiters();
        Some(row)
    }

    fn abandon(&self) {
        let mut s = self.lock();
        if let Some((_, g)) = s.backlog.pop_back() {
            s.backlog_bytes -= g.len();
        }
        s.last = s.last.saturating_sub(1).max(s.base.pos);
        // Links may have sent the group: they start over (and get a snapshot).
        s.generation += 1;
        drop(s);
        self.streamed.notify_waiters();
    }

    fn wait(&self, pos: u64) -> Result<(), String> {
        let mut s = self.lock();
        loop {
            if let Some(why) = &s.closed {
                return Err(why.clone());
            }
            if !(self.fence)() {
                return Err(
                    "this member is no longer the master (its ZooKeeper lease ended)".into(),
                );
            }
            if self.quorum_has(&s, pos) {
                return Ok(());
            }
            s = self
                .changed
                .wait_timeout(s, FENCE_CHECK)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn snapshot_wanted(&self) -> Option<SnapshotReply> {
        self.lock().snapshots.pop_front()
    }
}

/// Why a link ended.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The socket or a frame.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The replica was refused.
    #[error("refused: {0}")]
    Refused(String),
    /// The replica cannot be served from here any more.
    #[error("{0}")]
    Behind(String),
}

/// The master's writing half of a link.
type Writer = BufWriter<WriteHalf<Stream>>;

/// Serves one replica connection (plain, or TLS once its handshake is done) until it breaks
/// or the term ends.
pub async fn serve_link(rep: Arc<Replicator>, stream: Stream) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    let stop = rep.stop.clone();
    let mut id = None;
    let r = tokio::select! {
        r = link(&rep, stream, &mut id) => r,
        () = stop.cancelled() => Ok(()),
    };
    let name = id.and_then(|i| rep.lock().links.remove(&i).map(|l| l.name));
    rep.changed.notify_all();
    match r {
        Ok(()) => {}
        Err(e) => {
            tracing::warn!(%peer, replica = name.as_deref().unwrap_or("?"), error = %e, "replication link ended")
        }
    }
}

async fn link(
    rep: &Arc<Replicator>,
    stream: Stream,
    id: &mut Option<u64>,
) -> Result<(), LinkError> {
    let _ = stream.tcp().set_nodelay(true);
    let (mut rd, wr) = tokio::io::split(stream);
    let mut wr = BufWriter::with_capacity(256 << 10, wr);
    let hello = tokio::time::timeout(HELLO_TIMEOUT, wire::read(&mut rd))
        .await
        .map_err(|_| LinkError::Refused("no hello in time".into()))??;
    let Frame::Hello {
        token,
        name,
        epoch,
        pos,
        known_epoch,
    } = hello
    else {
        return Err(LinkError::Refused("the first frame is not a hello".into()));
    };
    if let Some(t) = &rep.token
        && !wire::same_token(t, &token)
    {
        return refuse(&mut wr, "wrong replication token".into()).await;
    }
    if known_epoch > rep.epoch {
        let why = format!(
            "epoch {} is older than the newest elected, {known_epoch}",
            rep.epoch
        );
        return refuse(&mut wr, why).await;
    }
    let theirs = Position { epoch, pos };
    // Where the stream can continue from, if it can.
    let (from, generation) = {
        let mut s = rep.lock();
        let from = continues(&s, rep.epoch, theirs);
        let i = s.next_link;
        s.next_link += 1;
        let held = from.unwrap_or(0);
        s.links.insert(
            i,
            Link {
                name: name.clone(),
                snapshot: from.is_none(),
                received: held,
                durable: held,
            },
        );
        *id = Some(i);
        (from, s.generation)
    };
    let Some(i) = *id else {
        return Ok(());
    };
    tracing::info!(replica = %name, their_epoch = epoch, their_pos = pos, snapshot = from.is_none(), "replica connected");
    wire::write(
        &mut wr,
        &Frame::Welcome {
            epoch: rep.epoch,
            snapshot: from.is_none(),
            from: from.unwrap_or(0),
        },
    )
    .await?;
    wr.flush().await.map_err(WireError::Io)?;
    // Acks, read while groups go out.
    let acks = {
        let rep = rep.clone();
        async move {
            loop {
                match wire::read(&mut rd).await? {
                    Frame::Ack { received, durable } => {
                        if let Some(l) = rep.lock().links.get_mut(&i) {
                            l.received = l.received.max(received);
                            l.durable = l.durable.max(durable);
                        }
                        rep.changed.notify_all();
                    }
                    _ => {
                        return Err::<(), LinkError>(
                            WireError::Bad("replica sent a master's frame").into(),
                        );
                    }
                }
            }
        }
    };
    let send = async {
        let from = match from {
            Some(f) => f,
            None => {
                let at = send_snapshot(rep, &mut wr).await?;
                if let Some(l) = rep.lock().links.get_mut(&i) {
                    l.snapshot = false;
                }
                at
            }
        };
        stream_from(rep, &mut wr, from, generation).await
    };
    tokio::select! {
        r = acks => r,
        r = send => r,
    }
}

/// Tells the replica why it is refused.
async fn refuse(wr: &mut Writer, reason: String) -> Result<(), LinkError> {
    let _ = wire::write(
        wr,
        &Frame::Refused {
            reason: reason.clone(),
        },
    )
    .await;
    let _ = wr.flush().await;
    Err(LinkError::Refused(reason))
}

/// The position after which the backlog continues `theirs`, if it does.
fn continues(s: &State, epoch: u64, theirs: Position) -> Option<u64> {
    if theirs.pos > s.last {
        return None;
    }
    let next_held = |p: u64| p == s.last || s.backlog.front().is_some_and(|(f, _)| *f <= p + 1);
    if theirs == s.base {
        return next_held(theirs.pos).then_some(theirs.pos);
    }
    // A group of this term: the backlog holds it if it was not evicted.
    if theirs.epoch == epoch && theirs.pos > s.base.pos && next_held(theirs.pos) {
        return Some(theirs.pos);
    }
    None
}

/// Streams the groups after `from` as they come, until the term ends.
async fn stream_from(
    rep: &Arc<Replicator>,
    wr: &mut Writer,
    mut sent: u64,
    generation: u64,
) -> Result<(), LinkError> {
    loop {
        let notified = rep.streamed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (batch, head) = {
            let s = rep.lock();
            if let Some(why) = &s.closed {
                return Err(LinkError::Behind(format!("the term ended: {why}")));
            }
            if s.generation != generation {
                return Err(LinkError::Behind(
                    "a group it may have been sent was abandoned; starting over".into(),
                ));
            }
            let mut batch = Vec::new();
            if sent < s.last {
                let Some(front) = s.backlog.front().map(|(p, _)| *p) else {
                    return Err(LinkError::Behind("the backlog is empty".into()));
                };
                if front > sent + 1 {
                    return Err(LinkError::Behind(format!(
                        "fell behind the backlog (needs {}, it starts at {front})",
                        sent + 1
                    )));
                }
                let start = (sent + 1 - front) as usize;
                let mut bytes = 0usize;
                for (_, g) in s.backlog.iter().skip(start) {
                    batch.push(g.clone());
                    bytes += g.len();
                    if bytes >= 4 << 20 {
                        break;
                    }
                }
            }
            (batch, s.last)
        };
        if batch.is_empty() {
            notified.await;
            continue;
        }
        for group in batch {
            sent += 1;
            wire::write(
                wr,
                &Frame::Group {
                    epoch: rep.epoch,
                    head,
                    group,
                },
            )
            .await?;
        }
        wr.flush().await.map_err(WireError::Io)?;
    }
}

/// Asks the writer for a snapshot and sends it; returns its position.
async fn send_snapshot(rep: &Arc<Replicator>, wr: &mut Writer) -> Result<u64, LinkError> {
    let (tx, rx) = std::sync::mpsc::channel();
    rep.lock().snapshots.push_back(tx);
    rep.changed.notify_all();
    rep.wake_writer();
    let (chunks_tx, mut chunks) = tokio::sync::mpsc::channel::<Result<Frame, String>>(4);
    let reader = tokio::task::spawn_blocking(move || {
        let snap: Snapshot = match rx.recv_timeout(SNAPSHOT_WAIT) {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(format!("the store gave no snapshot: {e}")),
            Err(_) => return Err("the store gave no snapshot in time".to_string()),
        };
        let at = repl::snapshot_position(&snap).map_err(|e| e.to_string())?;
        let _ = chunks_tx.blocking_send(Ok(Frame::SnapBegin {
            epoch: at.epoch,
            pos: at.pos,
        }));
        let r = repl::read_snapshot(&snap, |c| {
            let f = match c {
                Chunk::Ops(g) => Frame::SnapOps(g),
                Chunk::Dedup(ids) => Frame::SnapIds(ids),
                Chunk::End { max_seq } => Frame::SnapEnd { max_seq },
            };
            chunks_tx.blocking_send(Ok(f)).is_ok()
        });
        if let Err(e) = r {
            let _ = chunks_tx.blocking_send(Err(format!("reading the snapshot: {e}")));
        }
        Ok(at.pos)
    });
    let mut rows = 0u64;
    while let Some(f) = chunks.recv().await {
        let f = f.map_err(LinkError::Behind)?;
        if matches!(f, Frame::SnapOps(_)) {
            rows += 1;
        }
        wire::write(wr, &f).await?;
    }
    wr.flush().await.map_err(WireError::Io)?;
    let at = reader
        .await
        .map_err(|e| LinkError::Behind(e.to_string()))?
        .map_err(LinkError::Behind)?;
    tracing::info!(position = at, chunks = rows, "snapshot sent");
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(base: Position, backlog: &[u64]) -> State {
        State {
            last: backlog.last().copied().unwrap_or(base.pos),
            backlog: backlog.iter().map(|p| (*p, Bytes::new())).collect(),
            ..State::new(base)
        }
    }

    #[test]
    fn the_backlog_continues_only_the_same_history() {
        let base = Position { epoch: 2, pos: 10 };
        let s = state(base, &[11, 12, 13]);
        let at = |epoch, pos| continues(&s, 3, Position { epoch, pos });
        assert_eq!(at(2, 10), Some(10), "where the term began");
        assert_eq!(at(3, 12), Some(12), "a group of this term");
        assert_eq!(at(3, 13), Some(13), "up to date");
        assert_eq!(at(3, 14), None, "ahead: groups never confirmed");
        assert_eq!(at(1, 10), None, "same position, another history");
        assert_eq!(at(2, 9), None, "behind the term's start");
        assert_eq!(at(0, 0), None, "new");
        // Evicted groups cannot be sent again.
        let s = state(base, &[12, 13]);
        assert_eq!(continues(&s, 3, base), None);
        assert_eq!(continues(&s, 3, Position { epoch: 3, pos: 12 }), Some(12));
        // A new group: every member starts from nothing.
        let s = state(Position::default(), &[]);
        assert_eq!(continues(&s, 1, Position::default()), Some(0));
    }

    #[test]
    fn the_election_ranks_the_epoch_before_the_position() {
        let older = election_position(Position { epoch: 1, pos: 900 });
        let newer = election_position(Position { epoch: 2, pos: 3 });
        assert!(newer > older);
        assert!(
            election_position(Position { epoch: 2, pos: 4 }) > newer,
            "then the position"
        );
    }
}
