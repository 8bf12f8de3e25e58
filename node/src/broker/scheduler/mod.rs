//! The scheduler (ActiveMQ `schedulerSupport`): messages sent with `AMQ_SCHEDULED_DELAY`,
//! `_PERIOD`, `_REPEAT` or `_CRON` are held as jobs and published to their destination when
//! due, as new messages ([`job`] has the rules).
//!
//! ```text
//! SEND ─▶ Core::schedule ─┬─ persistent ─▶ Store (Op::Schedule, group commit) ─▶ RECEIPT; window
//!                          └─ otherwise ───▶ memory (lost on restart) ─────────────▶ RECEIPT
//! timer task ─▶ due job ─▶ publish the copy + Op::Schedule(next time) or Op::Unschedule,
//!                          one commit ─▶ the next time back into the window
//! ```
//!
//! Stored jobs live in the store's `sched` table by (fire time, id). Only the next
//! `SCHEDULER_WINDOW` of them are in memory (`State::stored`, bodies included): memory holds
//! every stored job up to the *horizon* key, and when it runs below half the window the
//! next ones are read from the store in fire-time order. A job committed past the horizon
//! stays in the store only. Non-persistent jobs (and every job of a node without
//! persistence) are in memory only, at most `MAX_NON_PERSISTENT_SCHEDULED`.
//!
//! Threads: the timer is one tokio task of the master ([`Core::run_scheduler`]); the
//! completions of schedule, fire and window reads run on the store writer thread, in commit
//! order, which is what keeps the horizon right: a job committed before a read is seen by it,
//! one committed after it is compared with the horizon the read has moved. A slave runs no
//! scheduler; a new master reads the window when it starts and fires what is overdue at once.

pub mod job;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mq_shared::api::ScheduledMessage;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use job::{Job, Spec};

use super::{Accepted, Core, Message, now_ms};
use crate::store::{JobQuery, Op, Store, StoreError};

/// (fire time, job id): the order jobs fire in.
type Key = (u64, Arc<str>);

/// Jobs fired in one go before the timer task yields.
const FIRE_BATCH: usize = 1000;
/// A fire whose commit failed is tried again this much later.
const RETRY_MS: u64 = 1000;
/// The timer's longest sleep (it is woken early by any new job).
const IDLE: Duration = Duration::from_secs(60);

/// Which stored jobs memory holds.
#[derive(Debug, Clone)]
enum Horizon {
    /// None read yet.
    Nothing,
    /// Every stored job with a key up to this one.
    Upto(Key),
    /// Every stored job.
    All,
}

impl Horizon {
    fn covers(&self, key: &Key) -> bool {
        match self {
            Horizon::Nothing => false,
            Horizon::Upto(h) => key <= h,
            Horizon::All => true,
        }
    }
}

struct State {
    /// Stored jobs in memory: every one up to `horizon` that is not firing.
    stored: BTreeMap<Key, Job>,
    horizon: Horizon,
    /// A window read is under way.
    loading: bool,
    /// Jobs kept in memory only.
    transient: BTreeMap<Key, Job>,
    /// Fire time and whether stored, of each job in `stored` or `transient`.
    keys: HashMap<Arc<str>, (u64, bool)>,
    /// Jobs fired whose commit is not done yet (whether stored).
    firing: HashMap<Arc<str>, bool>,
    /// Firing jobs deleted meanwhile: their next time is dropped.
    cancelled: HashSet<Arc<str>>,
}

/// The scheduler's state, shared by the core and its timer task.
pub(super) struct Scheduler {
    state: Mutex<State>,
    wake: Notify,
    /// `scheduler-support`.
    enabled: bool,
    window: usize,
    max_transient: usize,
}

impl Scheduler {
    /// A scheduler over a store (`stored`) or memory only.
    pub(super) fn new(enabled: bool, stored: bool) -> Scheduler {
        Scheduler {
            state: Mutex::new(State {
                stored: BTreeMap::new(),
                horizon: if stored {
                    Horizon::Nothing
                } else {
                    Horizon::All
                },
                loading: false,
                transient: BTreeMap::new(),
                keys: HashMap::new(),
                firing: HashMap::new(),
                cancelled: HashSet::new(),
            }),
            wake: Notify::new(),
            enabled,
            window: mq_shared::defaults::SCHEDULER_WINDOW,
            max_transient: mq_shared::defaults::MAX_NON_PERSISTENT_SCHEDULED,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stored jobs just committed: into memory if inside the horizon.
    fn add_stored(&self, jobs: Vec<Job>) {
        let mut st = self.lock();
        for j in jobs {
            st.insert_stored(j, self.window);
        }
        drop(st);
        self.wake.notify_one();
    }

    /// Memory-only jobs, refused past `MAX_NON_PERSISTENT_SCHEDULED`.
    fn add_transient(&self, jobs: Vec<Job>) -> Result<(), String> {
        let mut st = self.lock();
        if st.transient.len() + jobs.len() > self.max_transient {
            return Err(format!(
                "the node already holds {} non-persistent scheduled messages, its limit; send it persistent:true or later",
                st.transient.len()
            ));
        }
        for j in jobs {
            st.insert_transient(j);
        }
        drop(st);
        self.wake.notify_one();
        Ok(())
    }
}

impl State {
    fn insert_stored(&mut self, job: Job, window: usize) {
        let key = (job.at, job.id.clone());
        if !self.horizon.covers(&key)
            || self.keys.contains_key(&job.id)
            || self.firing.contains_key(&job.id)
        {
            return;
        }
        self.keys.insert(job.id.clone(), (job.at, true));
        self.stored.insert(key, job);
        while self.stored.len() > window {
            // The latest goes back to living in the store only.
            if let Some((_, j)) = self.stored.pop_last() {
                self.keys.remove(&j.id);
            }
            if let Some((k, _)) = self.stored.last_key_value() {
                self.horizon = Horizon::Upto(k.clone());
            }
        }
    }

    fn insert_transient(&mut self, job: Job) {
        self.keys.insert(job.id.clone(), (job.at, false));
        self.transient.insert((job.at, job.id.clone()), job);
    }

    /// Takes a job out of memory, with whether it is stored.
    fn remove(&mut self, id: &Arc<str>) -> Option<(Job, bool)> {
        let (at, stored) = self.keys.remove(id)?;
        let map = if stored {
            &mut self.stored
        } else {
            &mut self.transient
        };
        map.remove(&(at, id.clone())).map(|j| (j, stored))
    }

    /// The jobs due at `now` (at most `max`), marked firing, with whether each is stored.
    fn take_due(&mut self, now: u64, max: usize) -> Vec<(Job, bool)> {
        let mut due = Vec::new();
        while due.len() < max {
            let s = self.stored.first_key_value().map(|(k, _)| k.0);
            let t = self.transient.first_key_value().map(|(k, _)| k.0);
            let (stored, map) = match (s, t) {
                (Some(a), Some(b)) if a <= b => (true, &mut self.stored),
                (Some(_), None) => (true, &mut self.stored),
                (_, Some(_)) => (false, &mut self.transient),
                (None, None) => break,
            };
            let Some(entry) = map.first_entry() else {
                break;
            };
            if entry.key().0 > now {
                break;
            }
            let job = entry.remove();
            self.keys.remove(&job.id);
            self.firing.insert(job.id.clone(), stored);
            due.push((job, stored));
        }
        due
    }

    fn next_at(&self) -> Option<u64> {
        let s = self.stored.first_key_value().map(|(k, _)| k.0);
        let t = self.transient.first_key_value().map(|(k, _)| k.0);
        s.into_iter().chain(t).min()
    }

    /// The window read to start, if memory runs low and the store holds more.
    fn wants_load(&mut self, window: usize) -> Option<(JobQuery, usize)> {
        if self.loading || self.stored.len() >= window / 2 {
            return None;
        }
        let after = match &self.horizon {
            Horizon::All => return None,
            Horizon::Nothing => None,
            Horizon::Upto(k) => Some(k.clone()),
        };
        self.loading = true;
        let limit = window - self.stored.len();
        Some((JobQuery::After { after, limit }, limit))
    }

    /// A window read's jobs; `last`: the key of its last row when it returned all it was
    /// asked for (the store may hold more), `None` when it returned fewer.
    fn loaded(&mut self, jobs: Vec<Job>, last: Option<Key>, window: usize) {
        self.loading = false;
        self.horizon = match last {
            Some(k) => Horizon::Upto(k),
            None => Horizon::All,
        };
        for j in jobs {
            self.insert_stored(j, window);
        }
    }
}

/// What the admin API shows of a job.
fn info(job: &Job, persistent: bool) -> ScheduledMessage {
    ScheduledMessage {
        id: job.id.to_string(),
        destination: job.msg.destination.as_str().to_string(),
        next_fire_ms: job.at,
        repeats_left: job.spec.repeat,
        period_ms: job.spec.period,
        cron: (!job.spec.cron.is_empty()).then(|| job.spec.cron.clone()),
        size: job.msg.size(),
        persistent,
    }
}

impl Core {
    /// Whether SENDs with `AMQ_SCHEDULED_*` headers are scheduled (`scheduler-support`).
    pub fn scheduler_support(&self) -> bool {
        self.shared.scheduler.enabled
    }

    fn store_or_closed(&self) -> Result<&Store, StoreError> {
        self.shared.store.as_ref().ok_or(StoreError::Closed)
    }

    /// Makes jobs of `msgs` (one each, e.g. the parts of a composite SEND), due by `spec`
    /// from now: stored ones in a store commit after which the callback `accepted` makes
    /// runs (the RECEIPT), the others in memory at once. An error (the memory-only limit)
    /// refuses them all, before `accepted` is called.
    pub fn schedule(
        &self,
        msgs: Vec<Message>,
        spec: &Spec,
        accepted: impl FnOnce() -> Accepted,
    ) -> Result<(), String> {
        let (stored, ops, transient) = self.jobs_of(msgs.into_iter().map(|m| (m, spec.clone())));
        self.shared.scheduler.add_transient(transient)?;
        let accepted = accepted();
        if ops.is_empty() {
            accepted(Ok(false));
            return Ok(());
        }
        let Ok(store) = self.store_or_closed() else {
            accepted(Err(StoreError::Closed));
            return Ok(());
        };
        let me = self.clone();
        store.submit(
            ops,
            Some(Box::new(move |r| {
                if r.is_ok() {
                    me.shared.scheduler.add_stored(stored);
                }
                accepted(r.map(|_| false));
            })),
        );
        Ok(())
    }

    /// Jobs for messages: the stored ones with their ops, and the memory-only ones.
    fn jobs_of(
        &self,
        msgs: impl IntoIterator<Item = (Message, Spec)>,
    ) -> (Vec<Job>, Vec<Op>, Vec<Job>) {
        let now = now_ms();
        let (mut stored, mut ops, mut transient) = (Vec::new(), Vec::new(), Vec::new());
        for (m, spec) in msgs {
            let keep = self.stores(&m);
            let job = Job {
                id: Arc::from(self.new_message_id()),
                at: spec.first_fire(now),
                spec,
                msg: Arc::new(m),
            };
            if keep {
                ops.push(Op::Schedule {
                    id: job.id.clone(),
                    at: job.at,
                    data: job.encode(),
                });
                stored.push(job);
            } else {
                transient.push(job);
            }
        }
        (stored, ops, transient)
    }

    /// Splits a transaction's messages into those to publish and the jobs of the scheduled
    /// ones, whose store ops join the transaction's commit (the session checked their
    /// headers when they were sent).
    pub(super) fn split_scheduled(&self, msgs: Vec<Message>) -> (Vec<Message>, Scheduled) {
        if !self.scheduler_support() {
            return (msgs, Scheduled::default());
        }
        let mut plain = Vec::new();
        let mut later = Vec::new();
        for m in msgs {
            match Spec::of(&m) {
                Ok(Some(spec)) => later.push((m, spec)),
                _ => plain.push(m),
            }
        }
        let (stored, ops, transient) = self.jobs_of(later);
        (
            plain,
            Scheduled {
                stored,
                ops,
                transient,
            },
        )
    }

    /// A transaction's scheduled messages, once its commit is durable.
    pub(super) fn add_scheduled(&self, s: Scheduled) {
        self.shared.scheduler.add_stored(s.stored);
        if let Err(e) = self.shared.scheduler.add_transient(s.transient) {
            tracing::warn!(error = %e, "a transaction's non-persistent scheduled messages dropped");
        }
    }

    /// The scheduled jobs, next to fire first: at most `limit`, and whether there are more.
    pub async fn scheduled(
        &self,
        limit: usize,
    ) -> Result<(Vec<ScheduledMessage>, bool), StoreError> {
        let mut all: Vec<(Job, bool)> = {
            let st = self.shared.scheduler.lock();
            st.transient
                .values()
                .take(limit + 1)
                .map(|j| (j.clone(), false))
                .collect()
        };
        if let Some(store) = &self.shared.store {
            let rows = store
                .read_jobs(JobQuery::After {
                    after: None,
                    limit: limit + 1,
                })
                .await?;
            all.extend(
                rows.into_iter()
                    .filter_map(|r| Job::decode(r.id, r.at, &r.data))
                    .map(|j| (j, true)),
            );
        }
        all.sort_by(|(a, _), (b, _)| (a.at, &a.id).cmp(&(b.at, &b.id)));
        let more = all.len() > limit;
        all.truncate(limit);
        Ok((all.iter().map(|(j, p)| info(j, *p)).collect(), more))
    }

    /// Deletes a scheduled job (it never fires again); `false` if there is none of that id.
    pub async fn unschedule(&self, id: &str) -> Result<bool, StoreError> {
        let id: Arc<str> = Arc::from(id);
        let sched = &self.shared.scheduler;
        // The job as memory held it, put back if its removal cannot be committed.
        let mut held = None;
        let found = {
            let mut st = sched.lock();
            match st.remove(&id) {
                Some((job, stored)) => {
                    held = Some(job);
                    Some(stored)
                }
                None => match st.firing.get(&id).copied() {
                    Some(stored) => {
                        st.cancelled.insert(id.clone());
                        Some(stored)
                    }
                    None => None,
                },
            }
        };
        sched.wake.notify_one();
        if found == Some(false) {
            return Ok(true);
        }
        let Some(store) = &self.shared.store else {
            return Ok(found.is_some());
        };
        if found.is_none() && store.read_jobs(JobQuery::Id(id.clone())).await?.is_empty() {
            return Ok(false);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let me = self.clone();
        let gone = id.clone();
        store.submit(
            vec![Op::Unschedule { id }],
            Some(Box::new(move |r| {
                let sched = &me.shared.scheduler;
                let mut st = sched.lock();
                if r.is_ok() {
                    // A window read served before this commit may have brought it in.
                    if st.remove(&gone).is_none() && st.firing.contains_key(&gone) {
                        st.cancelled.insert(gone);
                    }
                } else if let Some(job) = held {
                    // Still stored: it fires as before.
                    st.insert_stored(job, sched.window);
                } else {
                    st.cancelled.remove(&gone);
                }
                drop(st);
                let _ = tx.send(r);
            })),
        );
        rx.await.unwrap_or(Err(StoreError::Closed))?;
        Ok(true)
    }

    /// The timer: fires due jobs, keeps the window filled, until `stop`.
    pub async fn run_scheduler(self, stop: CancellationToken) {
        let sched = &self.shared.scheduler;
        loop {
            let now = now_ms();
            let (due, next, load) = {
                let mut st = sched.lock();
                let due = st.take_due(now, FIRE_BATCH);
                (due, st.next_at(), st.wants_load(sched.window))
            };
            if let Some((query, limit)) = load {
                self.load_window(query, limit);
            }
            let busy = due.len() >= FIRE_BATCH;
            for (job, stored) in due {
                self.fire(job, stored, now);
            }
            if busy {
                tokio::task::yield_now().await;
                continue;
            }
            let wait = next.map_or(IDLE, |t| Duration::from_millis(t.saturating_sub(now_ms())));
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = sched.wake.notified() => {}
                _ = tokio::time::sleep(wait.min(IDLE)) => {}
            }
        }
    }

    /// Reads the next stored jobs into the window.
    fn load_window(&self, query: JobQuery, limit: usize) {
        let me = self.clone();
        let done = Box::new(move |r: Result<Vec<crate::store::LoadedJob>, StoreError>| {
            let sched = &me.shared.scheduler;
            match r {
                Ok(rows) => {
                    let full = rows.len() >= limit;
                    // An unreadable row still moves the horizon past it.
                    let last = rows.last().map(|r| (r.at, r.id.clone()));
                    let jobs: Vec<Job> = rows
                        .into_iter()
                        .filter_map(|r| {
                            let j = Job::decode(r.id.clone(), r.at, &r.data);
                            if j.is_none() {
                                tracing::error!(id = %r.id, "a stored scheduled message cannot be read; it is skipped");
                            }
                            j
                        })
                        .collect();
                    sched
                        .lock()
                        .loaded(jobs, full.then_some(last).flatten(), sched.window);
                    sched.wake.notify_one();
                }
                Err(e) => {
                    sched.lock().loading = false;
                    tracing::error!(error = %e, "cannot read scheduled messages from the store");
                }
            }
        });
        match self
            .store_or_closed()
            .and_then(|s| s.load_jobs(query, done))
        {
            Ok(()) => {}
            Err(_) => self.shared.scheduler.lock().loading = false,
        }
    }

    /// Fires one job: publishes its copy and, for a stored job, moves it to its next time
    /// (or removes it) in the same commit.
    fn fire(&self, job: Job, stored: bool, now: u64) {
        let fired = job.fire(now, || self.new_message_id());
        let deliver: Vec<Message> = fired.deliver.into_iter().collect();
        let id = job.id.clone();
        let (next, child) = (fired.next, fired.child);
        if !stored {
            self.publish_batch(deliver, Vec::new(), Vec::new(), None, false, false, None);
            let mut st = self.shared.scheduler.lock();
            st.firing.remove(&id);
            if !st.cancelled.remove(&id)
                && let Some(n) = next
            {
                st.insert_transient(n);
            }
            if let Some(c) = child {
                st.insert_transient(c);
            }
            return;
        }
        let mut ops = vec![match &next {
            Some(n) => Op::Schedule {
                id: n.id.clone(),
                at: n.at,
                data: n.encode(),
            },
            None => Op::Unschedule { id: id.clone() },
        }];
        if let Some(c) = &child {
            ops.push(Op::Schedule {
                id: c.id.clone(),
                at: c.at,
                data: c.encode(),
            });
        }
        let me = self.clone();
        let accepted: Accepted = Box::new(move |r| {
            let sched = &me.shared.scheduler;
            let mut st = sched.lock();
            st.firing.remove(&id);
            match r {
                Ok(_) => {
                    if st.cancelled.remove(&id) {
                        if next.is_some()
                            && let Some(store) = &me.shared.store
                        {
                            store.submit(vec![Op::Unschedule { id }], None);
                        }
                    } else if let Some(n) = next {
                        st.insert_stored(n, sched.window);
                    }
                    if let Some(c) = child {
                        st.insert_stored(c, sched.window);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, job = %id, "a scheduled message could not be published; trying again");
                    if !st.cancelled.remove(&id) {
                        // The store still has it at its old time; memory tries again soon.
                        st.keys.insert(id.clone(), (now + RETRY_MS, true));
                        st.stored.insert(
                            (now + RETRY_MS, id.clone()),
                            Job {
                                at: now + RETRY_MS,
                                ..job
                            },
                        );
                    }
                }
            }
            drop(st);
            sched.wake.notify_one();
        });
        self.publish_batch(deliver, Vec::new(), ops, None, false, false, Some(accepted));
    }
}

/// A transaction's scheduled messages (see [`Core::split_scheduled`]).
#[derive(Default)]
pub(super) struct Scheduled {
    stored: Vec<Job>,
    /// Their store ops, for the transaction's commit.
    pub(super) ops: Vec<Op>,
    transient: Vec<Job>,
}

#[cfg(test)]
mod tests;
