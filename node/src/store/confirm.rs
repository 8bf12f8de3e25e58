//! A replicated master's confirmations, pipelined: a group the writer thread made durable
//! waits here for the quorum to hold its stream position, while the writer goes on with the
//! next groups. Completions run in commit order (failed groups included, so that no sender
//! hears of a later group before an earlier one), on whichever thread finds them confirmable
//! first: the writer, when the quorum already holds a group it hands over; the task that read
//! the replica's acknowledgement that completed the quorum (the hook's progress callback); or
//! the `store-confirm` thread, which looks every [`FENCE_CHECK`] at groups still waiting, so
//! that a term that ended refuses them even when no acknowledgement ever comes.
//!
//! ```text
//! writer thread: commit N ─ hand(N) ─ commit N+1 ─ hand(N+1) ─ commit N+2 ─ ...
//! link task:                  ack ≥ N ─ completions N      ack ≥ N+1 ─ completions N+1
//! ```
//!
//! At most [`DEPTH`] groups wait at once; the writer waits for room (and, before a read or a
//! close, for none to wait), doing its upkeep meanwhile: the snapshot a catching-up replica
//! asks for may be what the quorum needs.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use super::replication::ReplicationHook;
use super::{Done, Outcome, StoreError};

/// Groups that may wait for their quorum at once.
pub(super) const DEPTH: usize = 16;
/// How often the writer, waiting for room, does its upkeep.
const UPKEEP_EVERY: Duration = Duration::from_millis(20);
/// How often groups still waiting are looked at again (the fence may have ended).
const FENCE_CHECK: Duration = Duration::from_millis(20);

/// A group's completions with their outcomes, and the position its quorum must hold
/// (`None`: nothing of it was streamed; it only keeps its place in the order).
struct Waiting {
    pos: Option<u64>,
    completions: Vec<(Done, Result<Outcome, StoreError>)>,
}

#[derive(Default)]
struct Queue {
    groups: VecDeque<Waiting>,
    /// Groups handed over whose completions have not all run yet (those in `groups` and
    /// those being run).
    count: usize,
    /// Some thread is running completions: only one does at a time, to keep the order.
    draining: bool,
    /// Set when the quorum may have grown while a thread was draining: it looks again.
    again: bool,
    /// The writer waits for `count` to fall.
    writer_waits: bool,
    /// The pipeline is dropped: the confirm thread ends once nothing waits.
    stopping: bool,
}

/// The state the writer, the link tasks and the confirm thread share.
struct Line {
    hook: ReplicationHook,
    queue: Mutex<Queue>,
    /// `count` fell (the writer waits on it).
    room: Condvar,
    /// The confirm thread's tick, cut short by the drop.
    tick: Condvar,
    /// How often the confirm thread looks at groups still waiting.
    every: Duration,
}

impl Line {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs, in order, the completions of every group at the front that may be confirmed
    /// now (or must be refused); returns at once when another thread is at it (it will look
    /// again).
    fn release(&self) {
        let mut q = self.lock();
        if q.draining {
            q.again = true;
            return;
        }
        q.draining = true;
        // Lets another thread drain should a completion panic here.
        struct Draining<'a>(&'a Line);
        impl Drop for Draining<'_> {
            fn drop(&mut self) {
                self.0.lock().draining = false;
            }
        }
        let guard = Draining(self);
        loop {
            q.again = false;
            let mut ready: Vec<(Waiting, Result<(), String>)> = Vec::new();
            let held = match q.groups.front() {
                Some(Waiting { pos: Some(_), .. }) => Some(self.hook.confirmable()),
                _ => None,
            };
            while let Some(front) = q.groups.front() {
                let verdict = match (front.pos, &held) {
                    (None, _) => Ok(()),
                    (Some(_), Some(Err(why))) => Err(why.clone()),
                    (Some(pos), Some(Ok(upto))) if pos <= *upto => Ok(()),
                    (Some(_), _) => break,
                };
                if let Some(w) = q.groups.pop_front() {
                    ready.push((w, verdict));
                }
            }
            if ready.is_empty() {
                if q.again {
                    continue;
                }
                break;
            }
            drop(q);
            let n = ready.len();
            for (w, verdict) in ready {
                if let Err(why) = &verdict {
                    tracing::error!(error = %why, "group not confirmed; its senders are told");
                }
                for (done, outcome) in w.completions {
                    done(match &verdict {
                        Ok(()) => outcome,
                        Err(why) => Err(StoreError::Task(format!("not confirmed: {why}"))),
                    });
                }
            }
            q = self.lock();
            q.count -= n;
            if q.writer_waits {
                self.room.notify_all();
            }
            if q.stopping {
                self.tick.notify_all();
            }
        }
        q.draining = false;
        drop(q);
        std::mem::forget(guard);
    }
}

/// The pipeline between the writer thread and the threads that confirm.
pub(super) struct Pipeline {
    line: Arc<Line>,
    thread: Option<JoinHandle<()>>,
}

impl Pipeline {
    /// Starts the confirmations of a master streaming through `hook`: its progress callback
    /// releases what the quorum now holds.
    pub(super) fn start(hook: ReplicationHook) -> std::io::Result<Pipeline> {
        Pipeline::start_every(hook, FENCE_CHECK)
    }

    /// [`Pipeline::start`], looking at waiting groups every `every`.
    fn start_every(hook: ReplicationHook, every: Duration) -> std::io::Result<Pipeline> {
        let line = Arc::new(Line {
            hook: hook.clone(),
            queue: Mutex::new(Queue::default()),
            room: Condvar::new(),
            tick: Condvar::new(),
            every,
        });
        // Weak: the hook outlives the store, and must not keep it alive.
        let weak: Weak<Line> = Arc::downgrade(&line);
        hook.on_progress(Arc::new(move || {
            if let Some(l) = weak.upgrade() {
                l.release();
            }
        }));
        let watched = line.clone();
        let thread = std::thread::Builder::new()
            .name("store-confirm".into())
            .spawn(move || {
                loop {
                    let q = watched.lock();
                    if q.stopping && q.count == 0 {
                        break;
                    }
                    let (q, _) = watched
                        .tick
                        .wait_timeout(q, watched.every)
                        .unwrap_or_else(|e| e.into_inner());
                    let waits = !q.groups.is_empty();
                    drop(q);
                    if waits {
                        watched.release();
                    }
                }
            })?;
        Ok(Pipeline {
            line,
            thread: Some(thread),
        })
    }

    /// Hands a group's completions over, to run once the quorum holds `pos` (here and now
    /// when it already does).
    pub(super) fn hand(
        &self,
        pos: Option<u64>,
        completions: Vec<(Done, Result<Outcome, StoreError>)>,
    ) {
        {
            let mut q = self.line.lock();
            if self.thread.as_ref().is_none_or(|t| t.is_finished()) {
                drop(q);
                for (done, _) in completions {
                    done(Err(StoreError::Task(
                        "not confirmed: the confirmations stopped".into(),
                    )));
                }
                return;
            }
            q.count += 1;
            q.groups.push_back(Waiting { pos, completions });
        }
        self.line.release();
    }

    /// Blocks until fewer than `limit` groups wait, running `upkeep` every little while.
    pub(super) fn wait_below(&self, limit: usize, upkeep: &mut dyn FnMut()) {
        let mut q = self.line.lock();
        while q.count >= limit {
            if self.thread.as_ref().is_none_or(|t| t.is_finished()) {
                return;
            }
            q.writer_waits = true;
            let (g, timeout) = self
                .line
                .room
                .wait_timeout(q, UPKEEP_EVERY)
                .unwrap_or_else(|e| e.into_inner());
            q = g;
            q.writer_waits = false;
            if timeout.timed_out() && q.count >= limit {
                drop(q);
                upkeep();
                q = self.line.lock();
            }
        }
    }
}

impl Drop for Pipeline {
    /// Lets what was handed over be confirmed or refused, and joins the confirm thread.
    fn drop(&mut self) {
        self.line.lock().stopping = true;
        self.line.tick.notify_all();
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("the store's confirm thread panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::store::Op;
    use crate::store::replication::{Progress, Replication, SnapshotReply};

    /// A quorum that holds what the test says, calling the pipeline back as a link would.
    #[derive(Default)]
    struct Quorum {
        held: AtomicU64,
        refused: Mutex<Option<String>>,
        progress: Mutex<Option<Progress>>,
    }

    impl Quorum {
        fn ack(&self, pos: u64) {
            self.held.store(pos, Ordering::SeqCst);
            let p = self.progress.lock().ok().and_then(|p| p.clone());
            if let Some(p) = p {
                p();
            }
        }
    }

    impl Replication for Quorum {
        fn stamp(&self, _: &[&Op]) -> Option<Op> {
            None
        }
        fn abandon(&self) {}
        fn confirmable(&self) -> Result<u64, String> {
            match self.refused.lock().ok().and_then(|r| r.clone()) {
                Some(why) => Err(why),
                None => Ok(self.held.load(Ordering::SeqCst)),
            }
        }
        fn on_progress(&self, f: Progress) {
            if let Ok(mut p) = self.progress.lock() {
                *p = Some(f);
            }
        }
        fn snapshot_wanted(&self) -> Option<SnapshotReply> {
            None
        }
    }

    type Log = Arc<Mutex<Vec<(u64, bool, String)>>>;

    fn done(log: &Log, n: u64) -> Done {
        let log = log.clone();
        Box::new(move |r: Result<Outcome, StoreError>| {
            let who = std::thread::current().name().unwrap_or("?").to_string();
            if let Ok(mut l) = log.lock() {
                l.push((n, r.is_ok(), who));
            }
        })
    }

    fn wait_for(log: &Log, n: usize) -> Vec<(u64, bool, String)> {
        let until = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let l = log.lock().map(|l| l.clone()).unwrap_or_default();
            if l.len() >= n || std::time::Instant::now() > until {
                return l;
            }
            std::thread::yield_now();
        }
    }

    #[test]
    fn groups_run_in_order_on_the_thread_that_completes_their_quorum() -> std::io::Result<()> {
        let quorum = Arc::new(Quorum::default());
        // The confirm thread does not look before the test is done: only acks release.
        let p = Pipeline::start_every(quorum.clone(), Duration::from_secs(3600))?;
        let log: Log = Arc::default();
        // Held already: runs on the handing thread.
        quorum.ack(1);
        p.hand(Some(1), vec![(done(&log, 1), Ok(Outcome::default()))]);
        assert_eq!(wait_for(&log, 1).len(), 1);
        // Not held: waits, and so does an unstreamed group behind it.
        p.hand(Some(2), vec![(done(&log, 2), Ok(Outcome::default()))]);
        p.hand(None, vec![(done(&log, 3), Ok(Outcome::default()))]);
        p.hand(Some(3), vec![(done(&log, 4), Ok(Outcome::default()))]);
        assert_eq!(log.lock().map(|l| l.len()).unwrap_or(0), 1);
        // An ack for 2 (read on a thread of the links') releases 2 and the barrier, not 3.
        let q2 = quorum.clone();
        std::thread::Builder::new()
            .name("link".into())
            .spawn(move || q2.ack(2))?
            .join()
            .map_err(|_| std::io::Error::other("ack thread"))?;
        let l = wait_for(&log, 3);
        assert_eq!(
            l.iter().map(|(n, ok, _)| (*n, *ok)).collect::<Vec<_>>(),
            [(1, true), (2, true), (3, true)]
        );
        assert_ne!(l[0].2, "link");
        assert_eq!(l[1].2, "link");
        assert_eq!(l[2].2, "link");
        drop(l);
        // Dropped with a group waiting: the drop waits for it (the ack comes meanwhile).
        let q3 = quorum.clone();
        let acker = std::thread::spawn(move || q3.ack(3));
        drop(p);
        assert_eq!(wait_for(&log, 4)[3].0, 4);
        acker
            .join()
            .map_err(|_| std::io::Error::other("ack thread"))?;

        // A term that ends refuses what waits, from the confirm thread, without any ack.
        let quorum = Arc::new(Quorum::default());
        let p = Pipeline::start(quorum.clone())?;
        let log: Log = Arc::default();
        p.hand(Some(1), vec![(done(&log, 1), Ok(Outcome::default()))]);
        if let Ok(mut r) = quorum.refused.lock() {
            *r = Some("the term ended".into());
        }
        p.wait_below(1, &mut || {});
        let l = wait_for(&log, 1);
        assert_eq!(
            (l[0].0, l[0].1, l[0].2.as_str()),
            (1, false, "store-confirm")
        );
        Ok(())
    }
}
