//! A replicated master's confirmations, pipelined: a group the writer thread made durable
//! waits here, on a thread of its own, for the quorum to hold its stream position, while the
//! writer goes on with the next groups. Completions run on that thread, in commit order
//! (failed groups included, so that no sender hears of a later group before an earlier one).
//!
//! ```text
//! writer thread: commit N ─ hand(N) ─ commit N+1 ─ hand(N+1) ─ commit N+2 ─ ...
//! confirm thread:            wait(N) ─ completions N ─ wait(N+1) ─ completions N+1 ─ ...
//! ```
//!
//! At most [`DEPTH`] groups wait at once; the writer waits for room (and, before a read or a
//! close, for none to wait), doing its upkeep meanwhile: the snapshot a catching-up replica
//! asks for may be what the quorum needs.

use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::replication::ReplicationHook;
use super::{Done, Outcome, StoreError};

/// Groups that may wait for their quorum at once.
pub(super) const DEPTH: usize = 16;
/// How often the writer, waiting for room, does its upkeep.
const UPKEEP_EVERY: Duration = Duration::from_millis(20);

/// A group's completions with their outcomes, and the position its quorum must hold
/// (`None`: nothing of it was streamed; it only keeps its place in the order).
struct Waiting {
    pos: Option<u64>,
    completions: Vec<(Done, Result<Outcome, StoreError>)>,
}

/// The pipeline between the writer thread and the confirm thread.
pub(super) struct Pipeline {
    tx: Option<mpsc::Sender<Waiting>>,
    /// Groups handed over whose completions have not all run yet.
    waiting: Arc<(Mutex<usize>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Pipeline {
    /// Starts the confirm thread of a master streaming through `hook`.
    pub(super) fn start(hook: ReplicationHook) -> std::io::Result<Pipeline> {
        let (tx, rx) = mpsc::channel::<Waiting>();
        let waiting = Arc::new((Mutex::new(0usize), Condvar::new()));
        let counted = waiting.clone();
        let thread = std::thread::Builder::new()
            .name("store-confirm".into())
            .spawn(move || {
                for w in rx {
                    let r = w.pos.map_or(Ok(()), |pos| hook.wait(pos));
                    if let Err(why) = &r {
                        tracing::error!(error = %why, "group not confirmed; its senders are told");
                    }
                    for (done, outcome) in w.completions {
                        done(match &r {
                            Ok(()) => outcome,
                            Err(why) => Err(StoreError::Task(format!("not confirmed: {why}"))),
                        });
                    }
                    let (n, cv) = &*counted;
                    *n.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
                    cv.notify_all();
                }
            })?;
        Ok(Pipeline {
            tx: Some(tx),
            waiting,
            thread: Some(thread),
        })
    }

    /// Hands a group's completions over, to run once the quorum holds `pos`.
    pub(super) fn hand(
        &self,
        pos: Option<u64>,
        completions: Vec<(Done, Result<Outcome, StoreError>)>,
    ) {
        let (n, _) = &*self.waiting;
        *n.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        let w = Waiting { pos, completions };
        let sent = self.tx.as_ref().map(|tx| tx.send(w));
        if let Some(Err(mpsc::SendError(w))) = sent {
            // The confirm thread is gone (a completion panicked): nothing is confirmed.
            *n.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
            for (done, _) in w.completions {
                done(Err(StoreError::Task(
                    "not confirmed: the confirmations stopped".into(),
                )));
            }
        }
    }

    /// Blocks until fewer than `limit` groups wait, running `upkeep` every little while.
    pub(super) fn wait_below(&self, limit: usize, upkeep: &mut dyn FnMut()) {
        let (n, cv) = &*self.waiting;
        let mut count = n.lock().unwrap_or_else(|e| e.into_inner());
        while *count >= limit {
            if self.thread.as_ref().is_none_or(|t| t.is_finished()) {
                return;
            }
            let (c, timeout) = cv
                .wait_timeout(count, UPKEEP_EVERY)
                .unwrap_or_else(|e| e.into_inner());
            count = c;
            if timeout.timed_out() && *count >= limit {
                drop(count);
                upkeep();
                count = n.lock().unwrap_or_else(|e| e.into_inner());
            }
        }
    }
}

impl Drop for Pipeline {
    /// Lets the confirm thread finish what was handed over, and joins it.
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("the store's confirm thread panicked");
        }
    }
}
