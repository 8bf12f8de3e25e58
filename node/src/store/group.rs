//! Group commit, shared by the store's two back ends (redb behind a journal in `writer`,
//! PostgreSQL in `pg::writer`): the commands a [`super::Store`] handle sends its writer thread,
//! the loop that thread runs, and the dedup window both keep.
//!
//! [`run`] takes every submission waiting in the channel into one group (at most
//! `MAX_COMMIT_BATCH` ops and the back end's byte bound), has the back end make the group
//! durable ([`GroupWriter::commit`]), then runs each submission's completion in submission
//! order ([`commit_group`], the one place where a sender learns its ops are durable). On a
//! replicated master the completions are handed to the [`Pipeline`] instead, which runs them
//! once the quorum holds the group while this thread writes the next ones. A read
//! that arrives while a group is gathered closes the group and is served after its commit, so
//! a read sees everything submitted before it. A group of acks alone may wait
//! ([`GroupWriter::ack_delay`]) for the next commit to ride, since a lost ack only means a
//! redelivery. Between groups the back end does its own upkeep ([`GroupWriter::maintain`]:
//! the redb writer's checkpoints).
//!
//! The loop's state is [`Shared`] with submitters: when the writer thread is idle and nothing
//! it took is unfinished, a submitter may commit its own group on its own thread, or hold its
//! acks for the next commit, without waking the writer ([`Lead`], reached through
//! [`super::Store::submit_here`] and [`super::Store::submit`]); the order of submissions is
//! kept because a submitter leads only when no earlier command is queued.
//!
//! A connection's SEND names its connection ([`Submission::sender`]). When the last group
//! carried puts of several connections, the next waits for as many ([`gathers`]: at most one
//! commit's time), so that producers which each wait for their RECEIPT keep sharing one sync
//! instead of splitting into alternating groups of one and the rest; the submission that
//! completes the group commits it on its own thread, or the writer thread does once the
//! window ends.
//!
//! Before the back end sees a group, [`prepare`] settles it: puts asking for a sequence get the
//! next ones in commit order, and puts whose dedup id is in the window (or earlier in the
//! group) are skipped; the window keeps the group's ids only once it is durable.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use super::confirm::{self, Pipeline};
use super::error::StoreError;
use super::{
    Cursor, Done, Inner, JobQuery, JobsDone, LoadDone, Loaded, LoadedJob, Op, Outcome, record,
};

/// Ops submitted together, and the callback to run once they are durable.
pub(super) struct Submission {
    pub(super) ops: Vec<Op>,
    pub(super) done: Option<Done>,
    /// The connection whose SEND this is, when it waits for the commit before sending again
    /// (see [`gathers`]).
    pub(super) sender: Option<u64>,
}

/// (queue, sequence, deliveries) of the messages delivered and not acknowledged, recorded at a
/// clean close.
pub(super) type Marks = Vec<(Arc<str>, u64, u32)>;

/// What the writer thread is asked to do.
pub(super) enum Cmd {
    Submit(Submission),
    Read(Read),
    /// Close after the queued submissions, recording these marks.
    Close(Marks),
    /// Look again at held and gathered groups and upkeep (sent by a submitter that led; not
    /// counted in [`Inner::queued`]).
    Wake,
}

/// A read, served between group commits, and its callback.
pub(super) enum Read {
    /// A queue's messages.
    Load(LoadQuery, LoadDone),
    /// Scheduled jobs (see [`super::Store::load_jobs`]).
    Jobs(JobQuery, JobsDone),
}

/// Which messages of a queue a read asks for (see [`super::Store::load`]).
pub(super) struct LoadQuery {
    pub(super) queue: Arc<str>,
    pub(super) from: Cursor,
    pub(super) limit: usize,
    pub(super) max_bytes: u64,
}

/// A back end of the store, as its writer thread drives it.
pub(super) trait GroupWriter {
    /// Bytes of ops one group gathers at most (a single larger submission is a group alone).
    fn max_bytes(&self) -> u64;
    /// How long a group of acks alone may wait for the next commit (`None`: it commits now).
    fn ack_delay(&self) -> Option<Duration>;
    /// How long the thread may wait for a command before [`GroupWriter::maintain`] is due
    /// (`None`: as long as it takes).
    fn idle_timeout(&self) -> Option<Duration>;
    /// The dedup window, which the back end loaded at open and writes with each group.
    fn dedup(&mut self) -> &mut DedupWindow;
    /// Makes a group durable: its ops (never none) and what it changes in the dedup window.
    /// On failure nothing of the group may be kept.
    fn commit(&mut self, ops: &[&Op], dedup: &DedupChange) -> Result<(), StoreError>;
    /// The stream position of the group just made durable, which a replicated master's
    /// quorum must hold before it is confirmed (`None`: nothing of it was streamed).
    fn position(&mut self) -> Option<u64> {
        None
    }
    /// Reads a queue's messages.
    fn read(&mut self, query: &LoadQuery) -> Result<Vec<Loaded>, StoreError>;
    /// Reads scheduled jobs.
    fn read_jobs(&mut self, query: &JobQuery) -> Result<Vec<LoadedJob>, StoreError>;
    /// Upkeep after each turn of the loop.
    fn maintain(&mut self);
    /// Whether [`GroupWriter::maintain`] has work now (a group committed by a submitter then
    /// wakes the writer thread for it).
    fn upkeep_due(&self) -> bool {
        false
    }
    /// Ends the store: a clean close with its marks, or `None` when every handle is gone
    /// without one (no clean mark, as after a crash).
    fn finish(self, close: Option<Marks>);
}

/// Bytes a submission's ops take in a group (their size in a journal record).
fn submission_bytes(s: &Submission) -> u64 {
    s.ops.iter().map(record::op_len).sum()
}

/// Whether a submission only removes messages (acks): such a submission promises nothing to
/// a producer, so it may wait a little for a commit that has to happen anyway.
fn only_deletes(s: &Submission) -> bool {
    !s.ops.is_empty() && s.ops.iter().all(|op| matches!(op, Op::Delete { .. }))
}

/// The longest a group of puts waits for the senders of the last group to come back.
const GATHER_MAX: Duration = Duration::from_millis(1);

/// How many connections' puts a group carries (see [`Submission::sender`]).
fn senders(batch: &[Submission]) -> usize {
    let mut ids: Vec<u64> = batch
        .iter()
        .filter(|s| !only_deletes(s))
        .filter_map(|s| s.sender)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids.len()
}

/// Whether a group holding puts of `senders` connections should wait (it has waited
/// `waited`) for more, when the last group carried puts of `expect` connections. A
/// connection that waits for each RECEIPT sends again about one round trip after its group
/// commits; committing the first that comes back alone splits N producers into alternating
/// groups of 1 and N-1 (half the sharing a sync allows), so a group waits for as many
/// senders as the last one had, at most `window` (one commit's time, at most
/// [`GATHER_MAX`]): the wait is bounded by what a sync costs anyway. One producer never
/// waits (`expect` is 1), nor do puts without a sender (replication, the scheduler).
pub(super) fn gathers(senders: usize, expect: usize, waited: Duration, window: Duration) -> bool {
    senders > 0 && senders < expect && waited < window
}

/// The writer thread's loop: groups, commits and reads until a close (or every handle is
/// gone), then [`GroupWriter::finish`]. With a `pipeline` (a replicated master), completions
/// run there once the quorum holds their group.
pub(super) fn run<W: GroupWriter>(
    w: W,
    rx: mpsc::Receiver<Cmd>,
    inner: &Inner,
    pipeline: Option<Pipeline>,
) {
    run_shared(&Shared::new(w), rx, inner, pipeline);
}

/// [`run`] on a writer that submitting threads may lead too ([`Lead`]).
pub(super) fn run_shared<W: GroupWriter>(
    shared: &Shared<W>,
    rx: mpsc::Receiver<Cmd>,
    inner: &Inner,
    pipeline: Option<Pipeline>,
) {
    let lock = || shared.core.lock().unwrap_or_else(|e| e.into_inner());
    let max = mq_shared::defaults::MAX_COMMIT_BATCH;
    let (max_bytes, hold_limit) = match lock().as_ref() {
        Some(c) => (c.w.max_bytes(), c.w.ack_delay()),
        None => return,
    };
    // Set by a close: the delivery marks to record with the clean-close mark.
    let mut closing: Option<Marks> = None;
    // A read that arrived while a group was gathered: served once that group is committed.
    let mut read: Option<Read> = None;
    // Set when every handle is gone without a close.
    let mut abandoned = false;
    let last = loop {
        let (wait, carried) = {
            let mut g = lock();
            let Some(core) = g.as_mut() else { return };
            let mut wait = match hold_limit {
                Some(limit) if !core.held.is_empty() => {
                    Some(limit.saturating_sub(core.held_since.elapsed()))
                }
                _ => core.w.idle_timeout(),
            };
            // A group gathered for its senders commits when its window ends at the latest.
            if !core.gather.is_empty() {
                let left = core.window.saturating_sub(core.gather_since.elapsed());
                wait = Some(wait.map_or(left, |w| w.min(left)));
            }
            // While submitters lead, acks they hold may wait for this thread: it looks again
            // every `hold_limit` (without leaders it sleeps until told).
            if let Some(limit) = hold_limit
                && shared.led.swap(false, Ordering::SeqCst)
            {
                wait = Some(wait.map_or(limit, |w| w.min(limit)));
            }
            shared.set_deadline(wait);
            (wait, core.carry.take())
        };
        let mut timed_out = false;
        let next = match (carried, wait) {
            (Some(s), _) => Some(Cmd::Submit(s)),
            (None, None) => rx.recv().ok(),
            (None, Some(d)) => match rx.recv_timeout(d) {
                Ok(cmd) => Some(cmd),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    timed_out = true;
                    None
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => None,
            },
        };
        shared.set_deadline(Some(Duration::ZERO));
        let mut g = lock();
        let Some(core) = g.as_mut() else { return };
        // Commands taken from the channel this turn (they count as queued until done with, so
        // that no submitter commits ahead of them).
        let mut taken = usize::from(next.as_ref().is_some_and(|c| !matches!(c, Cmd::Wake)));
        let was_holding = !core.held.is_empty();
        let was_gathering = !core.gather.is_empty();
        // Held acks and a gathered group are never both there (acks join the group).
        let mut batch = std::mem::take(&mut core.held);
        batch.append(&mut core.gather);
        let mut nops: usize = batch.iter().map(|s| s.ops.len()).sum();
        let mut nbytes: u64 = batch.iter().map(submission_bytes).sum();
        match next {
            // A wake-up only (upkeep or a held ack is due): it does not close a hold.
            Some(Cmd::Wake) => {}
            Some(Cmd::Submit(s)) if s.ops.is_empty() && s.done.is_none() => {}
            Some(Cmd::Submit(s)) => {
                nops += s.ops.len();
                nbytes += submission_bytes(&s);
                batch.push(s);
            }
            Some(Cmd::Close(marks)) => closing = Some(marks),
            Some(Cmd::Read(r)) => read = Some(r),
            None if timed_out => {}
            None => abandoned = true,
        }
        while closing.is_none() && read.is_none() && !abandoned && nops < max && nbytes < max_bytes
        {
            match rx.try_recv() {
                Ok(Cmd::Wake) => {}
                Ok(Cmd::Submit(s)) if s.ops.is_empty() && s.done.is_none() => taken += 1,
                Ok(Cmd::Submit(s)) => {
                    let b = submission_bytes(&s);
                    if !batch.is_empty() && nbytes + b > max_bytes {
                        // It opens the next group commit (and is counted there).
                        core.carry = Some(s);
                        break;
                    }
                    taken += 1;
                    nops += s.ops.len();
                    nbytes += b;
                    batch.push(s);
                }
                Ok(Cmd::Close(marks)) => {
                    taken += 1;
                    closing = Some(marks);
                }
                Ok(Cmd::Read(r)) => {
                    taken += 1;
                    read = Some(r);
                }
                Err(_) => break,
            }
        }
        // Acks alone do not get a commit of their own: they wait (at most `hold_limit`) for
        // the next put, whose commit makes them durable too. A lost ack after a crash means a
        // redelivery, which at-least-once allows; a lost put would break a receipt.
        if hold_limit.is_some()
            && !batch.is_empty()
            && closing.is_none()
            && read.is_none()
            && !abandoned
            && !(was_holding && hold_limit.is_some_and(|l| core.held_since.elapsed() >= l))
            && core.carry.is_none()
            && nops < max
            && nbytes < max_bytes
            && batch.iter().all(only_deletes)
        {
            if !was_holding {
                core.held_since = Instant::now();
            }
            core.held = batch;
            inner.queued.fetch_sub(taken, Ordering::SeqCst);
            continue;
        }
        let n = senders(&batch);
        if closing.is_none()
            && read.is_none()
            && !abandoned
            && core.carry.is_none()
            && nops < max
            && nbytes < max_bytes
            && !batch.iter().any(|s| s.ops.is_empty())
        {
            let since = if was_gathering {
                core.gather_since
            } else {
                Instant::now()
            };
            if gathers(n, core.expect, since.elapsed(), core.window) {
                core.gather_since = since;
                core.gather = batch;
                inner.queued.fetch_sub(taken, Ordering::SeqCst);
                continue;
            }
        }
        if !batch.is_empty() {
            let started = Instant::now();
            commit_group(&mut core.w, batch, nops, inner, pipeline.as_ref());
            core.committed(n, started);
            shared.timed(started);
        }
        if let Some(r) = read.take() {
            // A read sees what is confirmed: every group before it is.
            if let Some(p) = &pipeline {
                p.wait_below(1, &mut || core.w.maintain());
            }
            serve(&mut core.w, r);
        }
        core.w.maintain();
        inner.queued.fetch_sub(taken, Ordering::SeqCst);
        if closing.is_some() || abandoned {
            // Nothing is committed after the close, by this thread or a submitter.
            break g.take();
        }
    };
    // Whatever arrives after the close is refused.
    drop(rx);
    let Some(mut core) = last else { return };
    if let Some(p) = pipeline {
        p.wait_below(1, &mut || core.w.maintain());
    }
    core.w.finish(closing);
}

/// The longest a group commit may take for submitters to go on committing their own.
const LEAD_MAX: Duration = Duration::from_millis(2);

/// The writer's state, shared by the writer thread and the submitters that commit their own
/// group while it is idle ([`Lead`]).
pub(super) struct Shared<W> {
    /// `None` once the writer has finished.
    core: Mutex<Option<Core<W>>>,
    /// Set by a submitter that led: the writer thread then looks at held acks in time.
    led: AtomicBool,
    /// Set while the last group commit took longer than [`LEAD_MAX`]: submitters leave the
    /// commits to the writer thread (a slow or stalled disk must not hold up the tasks of a
    /// runtime worker), until a commit is quick again.
    slow: AtomicBool,
    /// When the writer thread wakes next at the latest, in µs after `base` (`u64::MAX`: only
    /// when told).
    deadline: AtomicU64,
    base: Instant,
}

/// What one turn of the loop leaves for the next.
struct Core<W> {
    w: W,
    /// A submission taken from the channel that did not fit in the last group commit.
    carry: Option<Submission>,
    /// Delete-only submissions held back to ride the next commit, and since when.
    held: Vec<Submission>,
    held_since: Instant,
    /// A group waiting for the senders of the last one ([`gathers`]), and since when; acks
    /// submitted meanwhile join it (never `held`), so that the order of submissions holds.
    gather: Vec<Submission>,
    gather_since: Instant,
    /// How many connections' puts the last group with any carried.
    expect: usize,
    /// How long a gathered group may wait: the last commit's time, at most [`GATHER_MAX`].
    window: Duration,
}

impl<W> Core<W> {
    /// Notes a group commit of puts from `senders` connections that started at `started`.
    fn committed(&mut self, senders: usize, started: Instant) {
        if senders > 0 {
            self.expect = senders;
        }
        self.window = started.elapsed().min(GATHER_MAX);
    }
}

impl<W> Shared<W> {
    /// The shared state of writer `w`.
    pub(super) fn new(w: W) -> Shared<W> {
        Shared {
            core: Mutex::new(Some(Core {
                w,
                carry: None,
                held: Vec::new(),
                held_since: Instant::now(),
                gather: Vec::new(),
                gather_since: Instant::now(),
                expect: 1,
                window: Duration::ZERO,
            })),
            led: AtomicBool::new(false),
            slow: AtomicBool::new(false),
            deadline: AtomicU64::new(0),
            base: Instant::now(),
        }
    }

    /// Notes how long a group commit that started at `started` took.
    fn timed(&self, started: Instant) {
        self.slow
            .store(started.elapsed() > LEAD_MAX, Ordering::SeqCst);
    }

    /// Records how long the writer thread may sleep from now (`None`: until told).
    fn set_deadline(&self, wait: Option<Duration>) {
        let at = wait.map_or(u64::MAX, |w| self.micros(Instant::now() + w));
        self.deadline.store(at, Ordering::SeqCst);
    }

    fn micros(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.base).as_micros()).unwrap_or(u64::MAX)
    }

    /// Whether the writer thread sleeps past `d` from now.
    fn sleeps_past(&self, d: Duration) -> bool {
        self.deadline.load(Ordering::SeqCst) > self.micros(Instant::now() + d)
    }
}

/// What became of a submission offered to [`Lead::lead`].
pub(super) enum Led {
    /// Taken: committed on the calling thread with its completion run, or held (an ack) or
    /// gathered (a put, [`gathers`]) for a commit to come; `wake`: the writer thread must
    /// look again (upkeep is due, the store was clean until now, or a held or gathered
    /// group must commit before it would otherwise wake).
    Taken { wake: bool },
    /// Not taken: it goes to the writer thread.
    Declined(Submission),
}

/// A writer that a submitting thread may drive itself.
pub(super) trait Lead: Send + Sync {
    /// When the writer is idle and nothing submitted before waits for it: holds `s` for the
    /// next commit if it only deletes (acks, as the writer thread would), or else, with
    /// `commit`, commits it on the calling thread with the acks held, running the
    /// completions here, in order. Hands it back otherwise (and when it is empty).
    fn lead(&self, s: Submission, inner: &Inner, commit: bool) -> Led;

    /// As if the last group had carried puts of `senders` connections and taken `window`,
    /// with commits quick enough for submitters to lead (whatever the last one took: a first
    /// commit that preallocates the journal on a busy disk can take longer than [`LEAD_MAX`]).
    #[cfg(test)]
    fn prime(&self, senders: usize, window: Duration);

    /// How long from now the writer thread sleeps at most (`None`: until told; zero while it
    /// works).
    #[cfg(test)]
    fn sleeps_for(&self) -> Option<Duration>;
}

impl<W: GroupWriter + Send> Lead for Shared<W> {
    #[cfg(test)]
    fn prime(&self, senders: usize, window: Duration) {
        if let Some(core) = self.core.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            core.expect = senders;
            core.window = window;
            self.slow.store(false, Ordering::SeqCst);
        }
    }

    #[cfg(test)]
    fn sleeps_for(&self) -> Option<Duration> {
        let at = self.deadline.load(Ordering::SeqCst);
        (at != u64::MAX)
            .then(|| Duration::from_micros(at.saturating_sub(self.micros(Instant::now()))))
    }

    fn lead(&self, s: Submission, inner: &Inner, commit: bool) -> Led {
        let hold = only_deletes(&s);
        // A group is committed here only when asked and while commits are quick.
        let declined = !hold && (!commit || self.slow.load(Ordering::SeqCst));
        if declined || s.ops.is_empty() || inner.queued.load(Ordering::SeqCst) != 0 {
            return Led::Declined(s);
        }
        let Ok(mut g) = self.core.try_lock() else {
            return Led::Declined(s);
        };
        let Some(core) = g.as_mut() else {
            return Led::Declined(s);
        };
        // Checked again under the lock: the writer thread counts what it takes until done.
        if core.carry.is_some()
            || inner.queued.load(Ordering::SeqCst) != 0
            || submission_bytes(&s) >= core.w.max_bytes()
        {
            return Led::Declined(s);
        }
        self.led.store(true, Ordering::SeqCst);
        if !core.gather.is_empty() || (commit && !hold && s.sender.is_some() && core.expect > 1) {
            // A group gathered for the senders of the last one: this joins it, and commits it
            // here if it is the last awaited (acks join to keep the order of submissions).
            if core.gather.is_empty() {
                core.gather = std::mem::take(&mut core.held);
                core.gather_since = Instant::now();
            }
            core.gather.push(s);
            let n = senders(&core.gather);
            let waited = core.gather_since.elapsed();
            let nops: usize = core.gather.iter().map(|s| s.ops.len()).sum();
            let full = nops >= mq_shared::defaults::MAX_COMMIT_BATCH
                || core.gather.iter().map(submission_bytes).sum::<u64>() >= core.w.max_bytes();
            if !full && (hold || gathers(n, core.expect, waited, core.window)) {
                return Led::Taken {
                    wake: self.sleeps_past(core.window.saturating_sub(waited)),
                };
            }
            let clean = core.w.idle_timeout().is_none();
            let batch = std::mem::take(&mut core.gather);
            let started = Instant::now();
            commit_group(&mut core.w, batch, nops, inner, None);
            core.committed(n, started);
            self.timed(started);
            let wake = core.w.upkeep_due() || (clean && core.w.idle_timeout().is_some());
            return Led::Taken { wake };
        }
        if let Some(limit) = core.w.ack_delay()
            && hold
        {
            // Acks wait for the next put (at most `limit`), as on the writer thread.
            if core.held.is_empty() {
                core.held_since = Instant::now();
            }
            core.held.push(s);
            return Led::Taken {
                wake: self.sleeps_past(limit),
            };
        }
        if !commit {
            return Led::Declined(s);
        }
        let clean = core.w.idle_timeout().is_none();
        let mut batch = std::mem::take(&mut core.held);
        batch.push(s);
        let n = senders(&batch);
        let nops = batch.iter().map(|s| s.ops.len()).sum();
        let started = Instant::now();
        commit_group(&mut core.w, batch, nops, inner, None);
        core.committed(n, started);
        self.timed(started);
        let wake = core.w.upkeep_due() || (clean && core.w.idle_timeout().is_some());
        Led::Taken { wake }
    }
}

/// Serves a read, running its callback here (on the writer thread).
fn serve<W: GroupWriter>(w: &mut W, read: Read) {
    match read {
        Read::Load(query, done) => done(w.read(&query)),
        Read::Jobs(query, done) => done(w.read_jobs(&query)),
    }
}

/// The commit point: the group is made durable (unless nothing is left to write: only
/// ordering barriers, or duplicates), then each submission's completion runs, in submission
/// order, with its outcome or the commit's error: here, or with a `pipeline` once the quorum
/// holds the group.
fn commit_group<W: GroupWriter>(
    w: &mut W,
    mut batch: Vec<Submission>,
    nops: usize,
    inner: &Inner,
    pipeline: Option<&Pipeline>,
) {
    let Prepared {
        outcomes,
        ops,
        dedup,
    } = prepare(&mut batch, w.dedup(), &inner.seq);
    let wrote = !ops.is_empty();
    let result = if wrote {
        w.commit(&ops, &dedup)
    } else {
        Ok(())
    };
    let (outcomes, pos): (Vec<Result<Outcome, StoreError>>, _) = match result {
        Ok(()) => {
            w.dedup().record(&dedup);
            if nops > 0 {
                inner.commits.fetch_add(1, Ordering::Relaxed);
            }
            let pos = if wrote { w.position() } else { None };
            (outcomes.into_iter().map(Ok).collect(), pos)
        }
        Err(e) => {
            w.dedup().forget(&dedup);
            tracing::error!(error = %e, "store commit failed; the senders are told and nothing of the batch is kept");
            (batch.iter().map(|_| Err(e.clone())).collect(), None)
        }
    };
    let completions = batch
        .into_iter()
        .zip(outcomes)
        .filter_map(|(s, o)| s.done.map(|done| (done, o)));
    match pipeline {
        Some(p) => {
            let completions: Vec<_> = completions.collect();
            if pos.is_some() || !completions.is_empty() {
                p.wait_below(confirm::DEPTH, &mut || w.maintain());
                p.hand(pos, completions);
            }
        }
        None => {
            for (done, o) in completions {
                done(o);
            }
        }
    }
}

/// The dedup window: ids in arrival order with their counters, and the set for lookups.
pub(super) struct DedupWindow {
    pub(super) order: VecDeque<(Arc<str>, u64)>,
    pub(super) set: HashSet<Arc<str>>,
    /// The counter of the next id recorded.
    next: u64,
}

/// What one group changes in the dedup window once it is durable.
#[derive(Default)]
pub(super) struct DedupChange {
    /// Ids the group records, with their counters.
    pub(super) added: Vec<(Arc<str>, u64)>,
    /// Ids pushed out of the window by them, oldest first.
    pub(super) evicted: Vec<Arc<str>>,
}

impl DedupWindow {
    /// The window of these ids (oldest first).
    pub(super) fn new(order: VecDeque<(Arc<str>, u64)>) -> DedupWindow {
        let set = order.iter().map(|(id, _)| id.clone()).collect();
        let next = order.back().map_or(0, |(_, n)| *n + 1);
        DedupWindow { order, set, next }
    }

    /// What recording `ids` (new ones, in order) would change.
    fn change(&self, ids: Vec<Arc<str>>) -> DedupChange {
        let window = mq_shared::defaults::DEDUP_WINDOW;
        let over = (self.order.len() + ids.len()).saturating_sub(window);
        let evicted = self
            .order
            .iter()
            .map(|(id, _)| id.clone())
            .chain(ids.iter().cloned())
            .take(over)
            .collect();
        let added = ids
            .into_iter()
            .enumerate()
            .map(|(i, id)| (id, self.next + i as u64))
            .collect();
        DedupChange { added, evicted }
    }

    /// Records a group's ids: it is durable.
    fn record(&mut self, change: &DedupChange) {
        self.next += change.added.len() as u64;
        self.order.extend(change.added.iter().cloned());
        for _ in 0..change.evicted.len() {
            if let Some((old, _)) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }

    /// Forgets a group's ids again: its commit failed.
    fn forget(&mut self, change: &DedupChange) {
        for (id, _) in &change.added {
            self.set.remove(id);
        }
    }
}

/// A group ready to write (see [`prepare`]).
struct Prepared<'a> {
    /// Each submission's outcome, once the group is durable.
    outcomes: Vec<Outcome>,
    /// The ops to write, in submission order: all but the puts skipped as duplicates.
    ops: Vec<&'a Op>,
    /// What the group changes in the dedup window ([`DedupWindow::record`] once it is
    /// durable, [`DedupWindow::forget`] if it fails).
    dedup: DedupChange,
}

/// Gives the group's puts that ask for one (seq 0) the next sequences of `sequence`, in commit
/// order, and skips the puts whose dedup id `window` holds or the group has had already.
fn prepare<'a>(
    batch: &'a mut [Submission],
    window: &mut DedupWindow,
    sequence: &AtomicU64,
) -> Prepared<'a> {
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut added: Vec<Arc<str>> = Vec::new();
    let mut skip: Vec<bool> = Vec::new();
    for s in batch.iter_mut() {
        let mut o = Outcome::default();
        for op in &mut s.ops {
            if let Op::Put {
                dedup: Some(id), ..
            } = op
            {
                if window.set.contains(id) {
                    o.duplicates += 1;
                    skip.push(true);
                    continue;
                }
                window.set.insert(id.clone());
                added.push(id.clone());
            }
            if let Op::Put { seq, .. } = op
                && *seq == 0
            {
                *seq = sequence.fetch_add(1, Ordering::Relaxed);
                if o.first_seq == 0 {
                    o.first_seq = *seq;
                }
            }
            skip.push(false);
        }
        outcomes.push(o);
    }
    let batch: &'a [Submission] = batch;
    let mut flags = skip.into_iter();
    let ops = batch
        .iter()
        .flat_map(|s| s.ops.iter())
        .filter(|_| !flags.next().unwrap_or(false))
        .collect();
    Prepared {
        outcomes,
        ops,
        dedup: window.change(added),
    }
}
