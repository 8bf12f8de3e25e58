//! The PostgreSQL back end of [`crate::store::Store`]: the same commands as the redb writer
//! (`crate::store::writer`), served by one thread, `store-writer`, running the same
//! group-commit loop (`crate::store::group`), with a current-thread tokio runtime of its own
//! and a pool of connections made on it.
//!
//! - **Group commit.** Every submission waiting in the channel when a commit starts goes into
//!   one transaction (at most `MAX_COMMIT_BATCH` ops and `MAX_COMMIT_BYTES` bytes); the
//!   completions run after `COMMIT`, in submission order, on this thread. Submissions arriving
//!   during a commit wait in the channel and form the next group. Acks are not held back for
//!   the next commit as the file store's are.
//! - **Fencing.** A store opened with a [`Fence`] (a master of `--ha jdbc`) checks the lease
//!   row first in every transaction, locked shared (`lock::check_fence`): a member whose lease
//!   was taken over or has ended has every write refused by the database itself.
//! - **Rows.** A message is a row of `mq_msgs` keyed by (queue, sequence), its rank as
//!   `priority` (rank 0 is priority 9) and `transient` (a spilled non-persistent message).
//!   Consecutive puts of a group are one `INSERT ... SELECT FROM UNNEST` statement, consecutive
//!   deletes one `DELETE ... USING UNNEST`; purges, scheduled jobs, dedup ids and (once per
//!   `SEQ_RESERVE` sequences) the sequence mark are statements of the same transaction, in
//!   submission order.
//! - **Reads** run between commits, after the completions of every commit before them, like
//!   the redb writer's: a load is one query per chunk of rows, each priority read from its
//!   cursor (`LATERAL` over the ten priorities, index `mq_msgs_order`).
//! - **Failures.** A commit that fails (the database down, the lease lost, a timeout of
//!   [`REQUEST_TIMEOUT`]) fails every submission of its group and keeps nothing in memory; its
//!   connection is dropped and the next commit takes a new one, so service resumes once the
//!   database is back. A commit whose `COMMIT` was sent but not answered may have committed:
//!   its senders are told ERROR and the message may be delivered (a duplicate, never a loss).
//! - **Open** (recovery): in one transaction (fenced when the store is), spilled
//!   non-persistent messages are deleted, counts per queue and rank are read by `GROUP BY`, the
//!   highest sequence, the clean-close mark and delivery marks are read, and the store is
//!   marked in use. **Close** records the delivery marks and the clean-close mark.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use deadpool_postgres::Transaction;

use super::error::PgError;
use super::lock::{self, FenceCheck};
use super::pool::{PgClient, PgConfig, PgPool};
use crate::store::error::{Cause, StoreError};
use crate::store::group::{self, Cmd, DedupChange, DedupWindow, GroupWriter, LoadQuery, Marks};
use crate::store::rows::RowChange;
use crate::store::{
    Inner, JobQuery, Loaded, LoadedJob, Op, PRIORITIES, QueueSummary, Recovery, TRANSIENT,
};

/// Bound on one commit or read, from taking a connection to the answer of its last statement.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Sequences reserved at a time in `mq_state`: the row is written when a put passes the mark,
/// not at every commit (a hot row that every transaction updated would bloat), so a restart
/// skips up to this many sequences. Sequences only need to be unique and increasing.
const SEQ_RESERVE: u64 = 100_000;

/// Rows one load query returns at most; a larger load reads on from where it stopped.
const LOAD_CHUNK: usize = 512;

/// The lease a master's store transactions must still hold (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The lease holder's instance id (`crate::ha::lease::LeaseLocker::holder_id`).
    pub holder_id: String,
    /// The epoch of its lease.
    pub epoch: i64,
}

const STATE_SEQ: &str = "seq";
const STATE_CLEAN: &str = "clean";
const STATE_REDELIVERED_BELOW: &str = "redelivered_below";

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The `priority` and `transient` columns of a rank.
fn columns_of(rank: u8) -> (i16, bool) {
    let transient = rank >= TRANSIENT;
    let p = (rank % TRANSIENT).min(PRIORITIES as u8 - 1);
    (9 - i16::from(p), transient)
}

/// The rank of a row's `priority` and `transient`.
fn rank_of(priority: i16, transient: bool) -> u8 {
    let p = u8::try_from((9 - priority).clamp(0, 9)).unwrap_or(0);
    if transient { p + TRANSIENT } else { p }
}

/// The writer thread's state.
pub(in crate::store) struct PgWriter {
    pool: PgPool,
    /// The connection of the last request, kept while it works.
    client: Option<PgClient>,
    fence: Option<Fence>,
    dedup: DedupWindow,
    /// The sequence mark recorded in `mq_state`: every sequence stored is at or below it.
    stored_seq: u64,
    redelivered_below: u64,
}

/// Opens the store on the current (writer's) runtime: connects, migrates and recovers.
pub(in crate::store) async fn open(
    config: &PgConfig,
    fence: Option<Fence>,
    seq_counter: &std::sync::atomic::AtomicU64,
) -> Result<(PgWriter, Recovery), PgError> {
    let (pool, migrated) = super::open(config).await?;
    if migrated.from != migrated.to {
        tracing::info!(
            from = migrated.from,
            to = migrated.to,
            "store schema brought up to date"
        );
    }
    let mut client = pool.get().await?;
    let r = tokio::time::timeout(REQUEST_TIMEOUT, recover(&mut client, fence.as_ref())).await;
    let (recovered, dedup) = match r {
        Ok(r) => r?,
        Err(_) => {
            return Err(PgError::Timeout {
                addr: config.url.address(),
                timeout_ms: REQUEST_TIMEOUT.as_millis() as u64,
            });
        }
    };
    seq_counter.store(recovered.max_seq + 1, Ordering::Relaxed);
    let w = PgWriter {
        pool,
        client: Some(client),
        fence,
        dedup,
        stored_seq: recovered.max_seq,
        redelivered_below: recovered.redelivered_below,
    };
    Ok((w, recovered))
}

/// The fence check, first in a transaction.
async fn fence_check(tx: &Transaction<'_>, fence: Option<&Fence>) -> Result<(), PgError> {
    let Some(f) = fence else {
        return Ok(());
    };
    match lock::check_fence(tx, &f.holder_id, f.epoch).await? {
        FenceCheck::Held => Ok(()),
        FenceCheck::Deposed { holder, epoch } => Err(PgError::Fenced(format!(
            "the lease is {}'s at epoch {epoch}, this member's was epoch {}",
            holder.as_deref().unwrap_or("nobody"),
            f.epoch
        ))),
        FenceCheck::Expired { .. } => Err(PgError::Fenced(format!(
            "the lease of epoch {} has ended",
            f.epoch
        ))),
    }
}

async fn recover(
    client: &mut PgClient,
    fence: Option<&Fence>,
) -> Result<(Recovery, DedupWindow), PgError> {
    let tx = client.transaction().await?;
    fence_check(&tx, fence).await?;
    let dropped = tx
        .execute("DELETE FROM mq_msgs WHERE transient", &[])
        .await?;
    if dropped > 0 {
        tracing::info!(
            messages = dropped,
            "dropped non-persistent messages spilled before the restart"
        );
    }
    let mut state: HashMap<String, i64> = HashMap::new();
    for r in tx.query("SELECT key, value FROM mq_state", &[]).await? {
        state.insert(r.get(0), r.get(1));
    }
    let max_row: Option<i64> = tx
        .query_one("SELECT max(seq) FROM mq_msgs", &[])
        .await?
        .get(0);
    let max_seq =
        to_u64(state.get(STATE_SEQ).copied().unwrap_or(0)).max(to_u64(max_row.unwrap_or(0)));
    let clean = state.contains_key(STATE_CLEAN);
    let redelivered_below = if clean {
        to_u64(state.get(STATE_REDELIVERED_BELOW).copied().unwrap_or(0))
    } else {
        max_seq + 1
    };
    let mut queues: Vec<QueueSummary> = Vec::new();
    let rows = tx
        .query(
            "SELECT container, priority, count(*), coalesce(sum(octet_length(msg)), 0)::bigint
             FROM mq_msgs GROUP BY container, priority ORDER BY container",
            &[],
        )
        .await?;
    for r in rows {
        let rank = usize::from(rank_of(r.get(1), false));
        let row = (r.get(0), rank, to_u64(r.get(2)), to_u64(r.get(3)));
        QueueSummary::add_row(&mut queues, row);
    }
    let mut marks = HashMap::new();
    for r in tx
        .query("SELECT container, seq, deliveries FROM mq_delivered", &[])
        .await?
    {
        let n: i32 = r.get(2);
        marks.insert((r.get::<_, String>(0), to_u64(r.get(1))), n.max(0) as u32);
    }
    // From here on the store is in use: a crash before the next clean close must show.
    tx.execute("DELETE FROM mq_state WHERE key = $1", &[&STATE_CLEAN])
        .await?;
    tx.execute("DELETE FROM mq_delivered", &[]).await?;
    let mut order = std::collections::VecDeque::new();
    for r in tx
        .query("SELECT msg_id, n FROM mq_dedup ORDER BY n", &[])
        .await?
    {
        order.push_back((Arc::from(r.get::<_, String>(0)), to_u64(r.get(1))));
    }
    tx.commit().await?;
    Ok((
        Recovery {
            queues,
            max_seq,
            marks,
            redelivered_below,
        },
        DedupWindow::new(order),
    ))
}

/// What one commit writes besides the ops.
struct Extra<'a> {
    dedup: &'a DedupChange,
    /// The new sequence mark, when a put passed the old one.
    seq: Option<u64>,
}

/// Writes `ops` in submission order: runs of puts and of deletes as one statement each.
async fn write_ops(tx: &Transaction<'_>, ops: &[&Op], extra: &Extra<'_>) -> Result<(), PgError> {
    let mut i = 0;
    while i < ops.len() {
        match ops[i].row() {
            RowChange::Put(..) => {
                let mut keys = HashSet::new();
                let mut run = Vec::new();
                while let Some(RowChange::Put(key, ..)) = ops.get(i).map(|op| op.row()) {
                    if !keys.insert((key.queue.clone(), key.seq)) {
                        break;
                    }
                    run.push(ops[i]);
                    i += 1;
                }
                insert_puts(tx, &run).await?;
            }
            RowChange::Delete(..) => {
                let mut run = Vec::new();
                while let Some(op @ Op::Delete { .. }) = ops.get(i).copied() {
                    run.push(op);
                    i += 1;
                }
                delete_rows(tx, &run).await?;
            }
            RowChange::Purge(from, to) => {
                let (priority, transient) = columns_of(from.rank);
                let st = tx
                    .prepare_cached(
                        "DELETE FROM mq_msgs WHERE container = $1 AND priority = $2
                         AND transient = $3 AND seq BETWEEN $4 AND $5",
                    )
                    .await?;
                tx.execute(
                    &st,
                    &[
                        &&**from.queue,
                        &priority,
                        &transient,
                        &to_i64(from.seq),
                        &to_i64(to),
                    ],
                )
                .await?;
                i += 1;
            }
            RowChange::Job(id, Some((at, data))) => {
                let st = tx
                    .prepare_cached(
                        "INSERT INTO mq_sched (job_id, fire_at, job) VALUES ($1, $2, $3)
                         ON CONFLICT (job_id) DO UPDATE
                         SET fire_at = EXCLUDED.fire_at, job = EXCLUDED.job",
                    )
                    .await?;
                tx.execute(&st, &[&&**id, &to_i64(at), &&data[..]]).await?;
                i += 1;
            }
            RowChange::Job(id, None) => {
                let st = tx
                    .prepare_cached("DELETE FROM mq_sched WHERE job_id = $1")
                    .await?;
                tx.execute(&st, &[&&**id]).await?;
                i += 1;
            }
        }
    }
    if !extra.dedup.added.is_empty() {
        let ids: Vec<&str> = extra.dedup.added.iter().map(|(id, _)| &**id).collect();
        let ns: Vec<i64> = extra.dedup.added.iter().map(|(_, n)| to_i64(*n)).collect();
        let st = tx
            .prepare_cached(
                "INSERT INTO mq_dedup (msg_id, n) SELECT * FROM UNNEST($1::text[], $2::bigint[])
                 ON CONFLICT (msg_id) DO UPDATE SET n = EXCLUDED.n",
            )
            .await?;
        tx.execute(&st, &[&ids, &ns]).await?;
    }
    if !extra.dedup.evicted.is_empty() {
        let ids: Vec<&str> = extra.dedup.evicted.iter().map(|id| &**id).collect();
        let st = tx
            .prepare_cached("DELETE FROM mq_dedup WHERE msg_id = ANY($1::text[])")
            .await?;
        tx.execute(&st, &[&ids]).await?;
    }
    if let Some(seq) = extra.seq {
        let st = tx
            .prepare_cached(
                "INSERT INTO mq_state (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = greatest(mq_state.value, EXCLUDED.value)",
            )
            .await?;
        tx.execute(&st, &[&STATE_SEQ, &to_i64(seq)]).await?;
    }
    Ok(())
}

async fn insert_puts(tx: &Transaction<'_>, run: &[&Op]) -> Result<(), PgError> {
    let mut containers: Vec<&str> = Vec::with_capacity(run.len());
    let mut seqs: Vec<i64> = Vec::with_capacity(run.len());
    let mut priorities: Vec<i16> = Vec::with_capacity(run.len());
    let mut transients: Vec<bool> = Vec::with_capacity(run.len());
    let mut ids: Vec<&str> = Vec::with_capacity(run.len());
    let mut bodies: Vec<&[u8]> = Vec::with_capacity(run.len());
    for op in run {
        if let RowChange::Put(key, data, dedup) = op.row() {
            let (p, t) = columns_of(key.rank);
            containers.push(key.queue);
            seqs.push(to_i64(key.seq));
            priorities.push(p);
            transients.push(t);
            ids.push(dedup.map_or("", |d| &**d));
            bodies.push(&data[..]);
        }
    }
    let st = tx
        .prepare_cached(
            "INSERT INTO mq_msgs (container, seq, priority, transient, msg_id, msg)
             SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::smallint[], $4::boolean[],
                                  $5::text[], $6::bytea[])
             ON CONFLICT (container, seq) DO UPDATE SET priority = EXCLUDED.priority,
                 transient = EXCLUDED.transient, msg_id = EXCLUDED.msg_id, msg = EXCLUDED.msg",
        )
        .await?;
    tx.execute(
        &st,
        &[&containers, &seqs, &priorities, &transients, &ids, &bodies],
    )
    .await?;
    Ok(())
}

async fn delete_rows(tx: &Transaction<'_>, run: &[&Op]) -> Result<(), PgError> {
    let mut containers: Vec<&str> = Vec::with_capacity(run.len());
    let mut seqs: Vec<i64> = Vec::with_capacity(run.len());
    for op in run {
        if let RowChange::Delete(key, _) = op.row() {
            containers.push(key.queue);
            seqs.push(to_i64(key.seq));
        }
    }
    let st = tx
        .prepare_cached(
            "DELETE FROM mq_msgs m USING UNNEST($1::text[], $2::bigint[]) AS k(container, seq)
             WHERE m.container = k.container AND m.seq = k.seq",
        )
        .await?;
    tx.execute(&st, &[&containers, &seqs]).await?;
    Ok(())
}

/// Reads up to `limit` messages (about `max_bytes`) of the query's queue from its cursor, in
/// key order.
async fn read_messages(client: &PgClient, query: &LoadQuery) -> Result<Vec<Loaded>, PgError> {
    let (queue, limit, max_bytes) = (&*query.queue, query.limit, query.max_bytes);
    // Cursor per rank 0..9 (priority 9..0), moved on as chunks are read.
    let mut cursor: Vec<i64> = query.from.iter().map(|s| to_i64(*s)).collect();
    let st = client
        .prepare_cached(
            "SELECT m.priority, m.transient, m.seq, m.msg
             FROM generate_series(0, 9) AS r(rank)
             CROSS JOIN LATERAL (
                 SELECT priority, transient, seq, msg FROM mq_msgs
                 WHERE container = $1 AND priority = 9 - r.rank AND seq >= ($2::bigint[])[r.rank + 1]
                 ORDER BY seq LIMIT $3) m
             ORDER BY m.priority DESC, m.seq LIMIT $3",
        )
        .await?;
    let mut out = Vec::new();
    let mut bytes = 0u64;
    while out.len() < limit && bytes < max_bytes {
        let want = (limit - out.len()).min(LOAD_CHUNK);
        let rows = client
            .query(&st, &[&queue, &cursor, &(want as i64)])
            .await?;
        let n = rows.len();
        for r in rows {
            let priority: i16 = r.get(0);
            let transient: bool = r.get(1);
            let seq: i64 = r.get(2);
            let data: Vec<u8> = r.get(3);
            let rank = rank_of(priority, false);
            // Higher priorities are exhausted; this one goes on after this row.
            for c in cursor.iter_mut().take(usize::from(rank)) {
                *c = i64::MAX;
            }
            cursor[usize::from(rank)] = seq.saturating_add(1);
            if out.len() >= limit || bytes >= max_bytes {
                continue;
            }
            bytes += data.len() as u64;
            out.push(Loaded {
                rank: rank_of(priority, transient),
                seq: to_u64(seq),
                data: Bytes::from(data),
            });
        }
        if n < want {
            break;
        }
    }
    Ok(out)
}

async fn read_jobs(client: &PgClient, query: &JobQuery) -> Result<Vec<LoadedJob>, PgError> {
    let rows = match query {
        JobQuery::Id(id) => {
            let st = client
                .prepare_cached("SELECT fire_at, job_id, job FROM mq_sched WHERE job_id = $1")
                .await?;
            client.query(&st, &[&&**id]).await?
        }
        JobQuery::After { after: None, limit } => {
            let st = client
                .prepare_cached(
                    "SELECT fire_at, job_id, job FROM mq_sched ORDER BY fire_at, job_id LIMIT $1",
                )
                .await?;
            client.query(&st, &[&(*limit as i64)]).await?
        }
        JobQuery::After {
            after: Some((at, id)),
            limit,
        } => {
            let st = client
                .prepare_cached(
                    "SELECT fire_at, job_id, job FROM mq_sched WHERE (fire_at, job_id) > ($1, $2)
                     ORDER BY fire_at, job_id LIMIT $3",
                )
                .await?;
            client
                .query(&st, &[&to_i64(*at), &&**id, &(*limit as i64)])
                .await?
        }
    };
    Ok(rows
        .iter()
        .map(|r| LoadedJob {
            at: to_u64(r.get(0)),
            id: Arc::from(r.get::<_, String>(1)),
            data: Bytes::from(r.get::<_, Vec<u8>>(2)),
        })
        .collect())
}

impl PgWriter {
    /// The kept connection, or a new one from the pool.
    async fn client(&mut self) -> Result<&mut PgClient, PgError> {
        if self.client.as_ref().is_some_and(|c| c.is_closed()) {
            self.client = None;
        }
        let c = match self.client.take() {
            Some(c) => c,
            None => self.pool.get().await?,
        };
        Ok(self.client.insert(c))
    }

    /// Forgets the kept connection after a failure (closed, not returned to the pool: its
    /// state is unknown).
    fn discard(&mut self) {
        if let Some(c) = self.client.take() {
            drop(deadpool_postgres::Object::take(c));
        }
    }

    /// Runs `f` on the kept connection within [`REQUEST_TIMEOUT`]; a failure drops it.
    async fn request<T>(
        &mut self,
        f: impl AsyncFnOnce(&mut PgClient, Option<&Fence>) -> Result<T, PgError>,
    ) -> Result<T, PgError> {
        let addr = self.pool.config().url.address();
        let fence = self.fence.clone();
        let r = tokio::time::timeout(REQUEST_TIMEOUT, async {
            let c = self.client().await?;
            f(c, fence.as_ref()).await
        })
        .await;
        let r = match r {
            Ok(r) => r,
            Err(_) => Err(PgError::Timeout {
                addr,
                timeout_ms: REQUEST_TIMEOUT.as_millis() as u64,
            }),
        };
        if r.is_err() {
            self.discard();
        }
        r
    }

    /// Commits one group: one transaction. On failure nothing of the group is kept.
    async fn commit(&mut self, ops: &[&Op], dedup: &DedupChange) -> Result<(), StoreError> {
        let max_put = ops
            .iter()
            .filter_map(|op| match op {
                Op::Put { seq, .. } => Some(*seq),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        let seq = (max_put > self.stored_seq).then(|| max_put.saturating_add(SEQ_RESERVE));
        let extra = Extra { dedup, seq };
        let r = self
            .request(async |c, fence| {
                let tx = c.transaction().await?;
                fence_check(&tx, fence).await?;
                write_ops(&tx, ops, &extra).await?;
                tx.commit().await?;
                Ok(())
            })
            .await;
        r.map_err(StoreError::write)?;
        if let Some(s) = seq {
            self.stored_seq = s;
        }
        Ok(())
    }

    /// Records a clean close with the delivery marks.
    async fn mark_clean(&mut self, marks: &[(Arc<str>, u64, u32)]) -> Result<(), PgError> {
        let below = to_i64(self.redelivered_below);
        self.request(async |c, fence| {
            let tx = c.transaction().await?;
            fence_check(&tx, fence).await?;
            if !marks.is_empty() {
                let qs: Vec<&str> = marks.iter().map(|(q, _, _)| &**q).collect();
                let seqs: Vec<i64> = marks.iter().map(|(_, s, _)| to_i64(*s)).collect();
                let ns: Vec<i32> = marks
                    .iter()
                    .map(|(_, _, n)| i32::try_from(*n).unwrap_or(i32::MAX))
                    .collect();
                tx.execute(
                    "INSERT INTO mq_delivered (container, seq, deliveries)
                     SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::integer[])
                     ON CONFLICT (container, seq) DO UPDATE SET deliveries = EXCLUDED.deliveries",
                    &[&qs, &seqs, &ns],
                )
                .await?;
            }
            tx.execute(
                "INSERT INTO mq_state (key, value) VALUES ($1, 1), ($2, $3)
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                &[&STATE_CLEAN, &STATE_REDELIVERED_BELOW, &below],
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }
}

/// The writer with the runtime its requests run on, as the group-commit loop drives it.
struct OnRuntime {
    rt: tokio::runtime::Runtime,
    w: PgWriter,
}

impl GroupWriter for OnRuntime {
    fn max_bytes(&self) -> u64 {
        mq_shared::defaults::MAX_COMMIT_BYTES
    }

    /// Acks are committed at once.
    fn ack_delay(&self) -> Option<Duration> {
        None
    }

    fn idle_timeout(&self) -> Option<Duration> {
        None
    }

    fn dedup(&mut self) -> &mut DedupWindow {
        &mut self.w.dedup
    }

    fn commit(&mut self, ops: &[&Op], dedup: &DedupChange) -> Result<(), StoreError> {
        self.rt.block_on(self.w.commit(ops, dedup))
    }

    fn read(&mut self, query: &LoadQuery) -> Result<Vec<Loaded>, StoreError> {
        let r = self.w.request(async |c, _| read_messages(c, query).await);
        self.rt.block_on(r).map_err(StoreError::read)
    }

    fn read_jobs(&mut self, query: &JobQuery) -> Result<Vec<LoadedJob>, StoreError> {
        let r = self.w.request(async |c, _| read_jobs(c, query).await);
        self.rt.block_on(r).map_err(StoreError::read)
    }

    fn maintain(&mut self) {}

    fn finish(mut self, close: Option<Marks>) {
        if let Some(marks) = close
            && let Err(e) = self.rt.block_on(self.w.mark_clean(&marks))
        {
            tracing::error!(error = %e, "cannot record the clean close; recovered messages will be flagged redelivered");
        }
        self.w.discard();
        self.w.pool.close();
    }
}

/// The writer thread: opens the store, reports the result on `opened`, then serves commands
/// until a close (or every handle is gone).
pub(in crate::store) fn run(
    config: PgConfig,
    fence: Option<Fence>,
    rx: mpsc::Receiver<Cmd>,
    inner: Arc<Inner>,
    opened: mpsc::Sender<Result<Recovery, StoreError>>,
) {
    let label = config.url.to_string();
    let open_err = |e: Cause| StoreError::OpenDatabase {
        url: label.clone(),
        cause: Arc::new(e),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = opened.send(Err(open_err(Cause::Journal(e))));
            return;
        }
    };
    let w = match rt.block_on(open(&config, fence, &inner.seq)) {
        Ok((w, recovered)) => {
            let _ = opened.send(Ok(recovered));
            w
        }
        Err(e) => {
            let _ = opened.send(Err(open_err(Cause::Postgres(e))));
            return;
        }
    };
    group::run(OnRuntime { rt, w }, rx, &inner, None);
}
