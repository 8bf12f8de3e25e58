//! The master's side of replication: the [`Replicator`] its store's writer thread calls for
//! every group commit (stamp, then wait for the quorum), the backlog of recent groups, and one
//! task per replica link that streams them (or a snapshot first) and reads its acks.
//!
//! ```text
//! writer thread ── stamp(ops) ──▶ backlog (pos, group) ──notify──▶ link task ── Group ──▶ replica
//!       │                                                             ▲
//! completions ◀── progress: confirmable() = the quorum's position ◀────── Ack ──┘
//! ```
//!
//! A replica whose position the backlog cannot continue (new, far behind, from another epoch,
//! or ahead: groups never confirmed) gets a snapshot: the writer checkpoints and hands over a
//! read transaction, whose rows go out while the writer goes on; the stream then continues
//! from the snapshot's position.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
    self as repl, Chunk, Position, Progress, Replication, Snapshot, SnapshotReply,
};
use crate::store::{Op, Store};

/// Bytes of recent groups kept for replicas that fall a little behind.
const BACKLOG_BYTES: usize = 64 << 20;
/// How long a replica has to introduce itself.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a snapshot may wait for the writer.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(60);

/// Whether this member may still confirm (its ZooKeeper lease holds, as master of the epoch).
pub type Fence = Box<dyn Fn() -> bool + Send + Sync>;

/// One replica link as the master sees it.
struct Link {
    name: String,
    snapshot: bool,
    received: u64,
    durable: u64,
    /// Set while the writer thread writes this link's groups itself, straight into its
    /// socket, as it stamps them (a plain link whose task had sent everything before):
    /// the group reaches the replica without waiting for the link's task to be woken.
    direct: Option<Arc<std::net::TcpStream>>,
    /// The last position the writer thread wrote (or left in `pending`).
    direct_sent: u64,
    /// The bytes of its last group that the writer thread could not write at once (the
    /// socket was full): the link's task writes them, and streams on from there itself.
    pending: Vec<u8>,
    /// Why the writer thread's write failed: the link ends.
    broken: Option<String>,
}

impl Link {
    /// Writes a group's frame (at `pos`) into the socket if the writer thread writes this
    /// link; returns whether the link's task has to be woken (it takes over).
    fn write_direct(&mut self, pos: u64, frame: &[u8]) -> bool {
        use std::io::Write;
        let Some(sock) = &self.direct else {
            return false;
        };
        let rest = match (&**sock).write(frame) {
            Ok(n) => frame.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => frame,
            Err(e) => {
                self.broken = Some(format!("writing a group: {e}"));
                self.direct = None;
                return true;
            }
        };
        self.direct_sent = pos;
        if rest.is_empty() {
            return false;
        }
        self.pending.extend_from_slice(rest);
        self.direct = None;
        true
    }
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
    /// The store's callback for a quorum that may have grown.
    progress: Mutex<Option<Progress>>,
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
            progress: Mutex::new(None),
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
        {
            let mut s = self.lock();
            s.closed.get_or_insert_with(|| why.to_string());
            // Nothing more reaches a replica from the writer thread.
            for l in s.links.values_mut() {
                l.direct = None;
            }
        }
        self.progressed();
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

    /// The last position the quorum holds (this member counts as one, and holds all).
    fn quorum_holds(&self, s: &State) -> u64 {
        let need = self.quorum.saturating_sub(1);
        if self.sync == SyncMode::LocalDisk || need == 0 {
            return u64::MAX;
        }
        let mut held: Vec<u64> = s
            .links
            .values()
            .map(|l| match self.sync {
                SyncMode::QuorumMem => l.received,
                _ => l.durable,
            })
            .collect();
        held.sort_unstable_by(|a, b| b.cmp(a));
        held.get(need - 1).copied().unwrap_or(0)
    }

    /// Tells the store the quorum may have grown (or the term ended): it runs what may go
    /// out now, on this thread.
    fn progressed(&self) {
        let p = self
            .progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(p) = p {
            p();
        }
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
        let mut wake = false;
        match repl::encode_group(pos, &all) {
            Ok(group) => {
                s.last = pos;
                // Straight to the replicas whose links the writer thread writes (the frame is
                // encoded only for them); the others' tasks are woken to send it.
                let mut frame: Option<Bytes> = None;
                for l in s.links.values_mut() {
                    if l.direct.is_none() {
                        wake = true;
                        continue;
                    }
                    let f = frame.get_or_insert_with(|| {
                        Frame::Group {
                            epoch: self.epoch,
                            head: pos,
                            group: group.clone(),
                        }
                        .encode()
                    });
                    wake |= l.write_direct(pos, f);
                }
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
                wake = true;
            }
        }
        let last = s.last;
        drop(s);
        self.published.store(
            election_position(Position {
                epoch: self.epoch,
                pos: last,
            }),
            Ordering::Relaxed,
        );
        if wake {
            self.streamed.notify_waiters();
        }
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
        for l in s.links.values_mut() {
            l.direct = None;
        }
        drop(s);
        self.streamed.notify_waiters();
    }

    fn confirmable(&self) -> Result<u64, String> {
        let s = self.lock();
        if let Some(why) = &s.closed {
            return Err(why.clone());
        }
        if !(self.fence)() {
            return Err("this member is no longer the master (its ZooKeeper lease ended)".into());
        }
        Ok(self.quorum_holds(&s))
    }

    fn on_progress(&self, f: Progress) {
        *self.progress.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
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
    // A plain link's socket, for the writer thread to write groups into (a TLS link's
    // records are its task's alone).
    let direct = match stream.is_tls() {
        true => None,
        false => {
            use std::os::fd::AsFd;
            match stream.tcp().as_fd().try_clone_to_owned() {
                Ok(fd) => Some(Arc::new(std::net::TcpStream::from(fd))),
                Err(e) => {
                    tracing::warn!(error = %e, "the link's task writes every group itself");
                    None
                }
            }
        }
    };
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
                direct: None,
                direct_sent: 0,
                pending: Vec::new(),
                broken: None,
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
                        // The completions this ack releases run here, on the link's task.
                        rep.progressed();
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
        stream_from(rep, &mut wr, i, direct, from, generation).await
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

/// Streams the groups after `from` as they come, until the term ends: link `i`'s task
/// sends what the replica lacks, and once it has sent everything and flushed, hands a plain
/// link's socket (`direct`) to the writer thread, which then writes each group as it stamps
/// it; the task takes over again when a write could not be completed at once.
async fn stream_from(
    rep: &Arc<Replicator>,
    wr: &mut Writer,
    i: u64,
    direct: Option<Arc<std::net::TcpStream>>,
    mut sent: u64,
    generation: u64,
) -> Result<(), LinkError> {
    loop {
        let notified = rep.streamed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let flushed = wr.buffer().is_empty();
        let next = next_to_send(
            &mut rep.lock(),
            generation,
            i,
            direct.as_ref(),
            &mut sent,
            flushed,
        )?;
        let Some((pending, batch, head)) = next else {
            notified.await;
            continue;
        };
        if !pending.is_empty() {
            wr.write_all(&pending).await.map_err(WireError::Io)?;
        }
        if batch.is_empty() {
            wr.flush().await.map_err(WireError::Io)?;
            if pending.is_empty() {
                notified.await;
            }
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

/// What a link's task sends next: the rest of a group the writer thread left, the groups
/// after it, and the master's head position.
type Next = (Vec<u8>, Vec<Bytes>, u64);

/// What link `i`'s task sends next, having sent up to `sent`: the rest of a group the writer
/// thread could not write at once, then the groups after it (and the head position); `None`
/// when there is nothing, or when the writer thread writes the link (handed over here when
/// the task is caught up and `flushed`, and the link is plain).
fn next_to_send(
    s: &mut State,
    generation: u64,
    i: u64,
    direct: Option<&Arc<std::net::TcpStream>>,
    sent: &mut u64,
    flushed: bool,
) -> Result<Option<Next>, LinkError> {
    if let Some(why) = &s.closed {
        return Err(LinkError::Behind(format!("the term ended: {why}")));
    }
    if s.generation != generation {
        return Err(LinkError::Behind(
            "a group it may have been sent was abandoned; starting over".into(),
        ));
    }
    let Some(l) = s.links.get_mut(&i) else {
        return Err(LinkError::Behind("the link was removed".into()));
    };
    if let Some(why) = l.broken.take() {
        return Err(LinkError::Wire(WireError::Io(std::io::Error::other(why))));
    }
    if l.direct.is_some() {
        return Ok(None);
    }
    // What the writer thread wrote before it handed back.
    let pending = std::mem::take(&mut l.pending);
    *sent = (*sent).max(l.direct_sent);
    if let Some(sock) = direct
        && pending.is_empty()
        && *sent == s.last
        && flushed
    {
        l.direct = Some(sock.clone());
        l.direct_sent = *sent;
        return Ok(None);
    }
    let mut batch = Vec::new();
    if *sent < s.last {
        let Some(front) = s.backlog.front().map(|(p, _)| *p) else {
            return Err(LinkError::Behind("the backlog is empty".into()));
        };
        if front > *sent + 1 {
            return Err(LinkError::Behind(format!(
                "fell behind the backlog (needs {}, it starts at {front})",
                *sent + 1
            )));
        }
        let start = (*sent + 1 - front) as usize;
        let mut bytes = 0usize;
        for (_, g) in s.backlog.iter().skip(start) {
            batch.push(g.clone());
            bytes += g.len();
            if bytes >= 4 << 20 {
                break;
            }
        }
    }
    Ok(Some((pending, batch, s.last)))
}

/// Asks the writer for a snapshot and sends it; returns its position.
async fn send_snapshot(rep: &Arc<Replicator>, wr: &mut Writer) -> Result<u64, LinkError> {
    let (tx, rx) = std::sync::mpsc::channel();
    rep.lock().snapshots.push_back(tx);
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
    /// Waits (bounded) until link 0's writer matches `direct`.
    async fn link_direct_becomes(rep: &Replicator, direct: bool) -> bool {
        let until = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::time::Instant::now() < until {
            if rep
                .lock()
                .links
                .get(&0)
                .is_some_and(|l| l.direct.is_some() == direct)
            {
                return true;
            }
            // The link task changes it as it runs: let it (bounded by `until`).
            tokio::task::yield_now().await;
        }
        false
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_writes_a_caught_up_link_and_its_task_takes_over_when_the_socket_is_full()
    -> Result<(), Box<dyn std::error::Error>> {
        let cfg = ReplicatedConfig {
            replicas: 3,
            zk_address: String::new(),
            zk_path: String::new(),
            zk_session_timeout: Duration::from_secs(2),
            bind: "127.0.0.1:0".parse()?,
            hostname: "localhost".into(),
            weight: 1,
            sync: SyncMode::QuorumDisk,
            token: None,
            tls: false,
        };
        let rep = Replicator::new(
            &cfg,
            1,
            Position::default(),
            Box::new(|| true),
            Arc::new(AtomicU64::new(0)),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let mut replica = tokio::net::TcpStream::connect(listener.local_addr()?).await?;
        let (sock, _) = listener.accept().await?;
        tokio::spawn(serve_link(rep.clone(), Stream::Plain(sock)));
        let hello = Frame::Hello {
            token: String::new(),
            name: "r1".into(),
            epoch: 0,
            pos: 0,
            known_epoch: 0,
        };
        replica.write_all(&hello.encode()).await?;
        assert!(matches!(
            wire::read(&mut replica).await?,
            Frame::Welcome {
                snapshot: false,
                from: 0,
                ..
            }
        ));
        // Caught up: the writer thread's stamps write the link.
        assert!(
            link_direct_becomes(&rep, true).await,
            "the link was never handed over"
        );
        let put = |n: u64| Op::Put {
            queue: Arc::from("q"),
            rank: 4,
            seq: n,
            data: Bytes::from(vec![n as u8; 1 << 20]),
            dedup: None,
        };
        // The replica reads nothing: 24 MiB fill the socket, and the task takes over.
        let stamper = rep.clone();
        tokio::task::spawn_blocking(move || {
            for n in 1..=24 {
                stamper.stamp(&[&put(n)]);
            }
        })
        .await?;
        assert!(
            rep.lock().links.get(&0).is_some_and(|l| l.direct.is_none()),
            "24 MiB went into a socket nobody read"
        );
        // Every group arrives once, in order, whoever wrote it.
        for n in 1..=24u64 {
            let Frame::Group { group, .. } = wire::read(&mut replica).await? else {
                return Err("not a group".into());
            };
            let (pos, ops) = repl::decode_group(&group).ok_or("a torn group")?;
            assert_eq!(pos, n);
            assert!(
                matches!(&ops[0], Op::Put { seq, data, .. } if *seq == n && data.len() == 1 << 20)
            );
        }
        replica
            .write_all(
                &Frame::Ack {
                    received: 24,
                    durable: 24,
                }
                .encode(),
            )
            .await?;
        // Caught up again: handed back, and the next group follows from the writer thread.
        assert!(
            link_direct_becomes(&rep, true).await,
            "the link was not handed back"
        );
        rep.stamp(&[&put(25)]);
        let Frame::Group { group, .. } = wire::read(&mut replica).await? else {
            return Err("not a group".into());
        };
        assert_eq!(repl::decode_group(&group).map(|g| g.0), Some(25));
        // This member and the one replica that acknowledged 24 are a quorum of 3.
        let until = tokio::time::Instant::now() + Duration::from_secs(10);
        while rep.confirmable() != Ok(24) && tokio::time::Instant::now() < until {
            tokio::task::yield_now().await;
        }
        assert_eq!(rep.confirmable(), Ok(24));
        rep.close("test over");
        Ok(())
    }
}
