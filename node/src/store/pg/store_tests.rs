//! The node's store over PostgreSQL (`writer`) against a real server: what each op does, reads
//! by priority from a cursor, scheduled jobs, dedup, recovery after a crash and after a clean
//! close, and the fence that refuses the writes of a member whose lease was taken over.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mq_tests::SOON;
use mq_tests::postgres::PgServer;

use super::*;
use crate::ha::lease::LeaseLocker;
use crate::store::{JobQuery, Op, Store, StoreError, TRANSIENT};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn config(server: &PgServer) -> Result<PgConfig, PgError> {
    PgConfig::from_options(&server.url(), Some(&server.password_file()))
}

fn put(queue: &str, rank: u8, seq: u64, dedup: Option<&str>) -> Op {
    Op::Put {
        queue: Arc::from(queue),
        rank,
        seq,
        data: Bytes::from(format!("{queue}/{rank}/{seq}")),
        dedup: dedup.map(Arc::from),
    }
}

async fn open(
    server: &PgServer,
    fence: Option<Fence>,
) -> Result<(Store, crate::store::Recovery), StoreError> {
    let c = config(server).map_err(|e| StoreError::Task(e.to_string()))?;
    tokio::task::spawn_blocking(move || Store::open_postgres(&c, fence))
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
}

fn keys(l: &[crate::store::Loaded]) -> Vec<(u8, u64)> {
    l.iter().map(|m| (m.rank, m.seq)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_reads_and_recovery_match_the_file_store() -> TestResult {
    let server = PgServer::start();
    let (store, rec) = open(&server, None).await?;
    assert!(rec.queues.is_empty());
    assert_eq!(rec.max_seq, 0);
    let q: Arc<str> = Arc::from("q");
    // Sequences asked for (0) follow commit order; a dedup id seen before skips its put.
    let o = store
        .commit(vec![
            put("q", 5, 0, Some("m1")),
            put("q", 5, 0, None),
            put("q", 0, 0, None),
        ])
        .await?;
    assert_eq!((o.first_seq, o.duplicates), (1, 0));
    let o = store.commit(vec![put("q", 5, 0, Some("m1"))]).await?;
    assert_eq!(o.duplicates, 1);
    store
        .commit(vec![
            put("q", 5, 10, None),
            put("q", 5 + TRANSIENT, 11, None),
            put("q", 9, 12, None),
        ])
        .await?;
    // Highest priority first, then by sequence, persistent and spilled merged.
    let all = store.read(q.clone(), [0; 10], 100, u64::MAX).await?;
    assert_eq!(
        keys(&all),
        [
            (0, 3),
            (5, 1),
            (5, 2),
            (5, 10),
            (5 + TRANSIENT, 11),
            (9, 12)
        ]
    );
    assert_eq!(&all[1].data[..], b"q/5/0", "the data as submitted");
    // From a cursor, with a limit and a byte bound.
    let mut from = [0u64; 10];
    from[0] = 4;
    from[5] = 2;
    assert_eq!(
        keys(&store.read(q.clone(), from, 2, u64::MAX).await?),
        [(5, 2), (5, 10)]
    );
    assert_eq!(
        keys(&store.read(q.clone(), [0; 10], 100, 1).await?),
        [(0, 3)]
    );
    // Delete one, purge a range of one rank.
    store
        .commit(vec![
            Op::Delete {
                queue: q.clone(),
                rank: 0,
                seq: 3,
                size: 5,
            },
            Op::Purge {
                queue: q.clone(),
                rank: 5,
                from: 2,
                to: 10,
            },
        ])
        .await?;
    assert_eq!(
        keys(&store.read(q.clone(), [0; 10], 100, u64::MAX).await?),
        [(5, 1), (5 + TRANSIENT, 11), (9, 12)]
    );
    // Scheduled jobs by (time, id), after a key, by id; a schedule replaces its job.
    store
        .commit(vec![
            Op::Schedule {
                id: Arc::from("b"),
                at: 200,
                data: Bytes::from_static(b"B"),
            },
            Op::Schedule {
                id: Arc::from("a"),
                at: 300,
                data: Bytes::from_static(b"A"),
            },
            Op::Schedule {
                id: Arc::from("c"),
                at: 200,
                data: Bytes::from_static(b"C"),
            },
            Op::Schedule {
                id: Arc::from("a"),
                at: 100,
                data: Bytes::from_static(b"A2"),
            },
            Op::Unschedule { id: Arc::from("c") },
        ])
        .await?;
    let jobs = store
        .read_jobs(JobQuery::After {
            after: None,
            limit: 10,
        })
        .await?;
    let ids: Vec<(u64, &str)> = jobs.iter().map(|j| (j.at, &*j.id)).collect();
    assert_eq!(ids, [(100, "a"), (200, "b")]);
    let after = store
        .read_jobs(JobQuery::After {
            after: Some((100, Arc::from("a"))),
            limit: 10,
        })
        .await?;
    assert_eq!(after.len(), 1);
    let a = store.read_jobs(JobQuery::Id(Arc::from("a"))).await?;
    assert_eq!(&a[0].data[..], b"A2");
    // A crash (the handle dropped without a close): spilled messages go, the others come back
    // flagged as maybe delivered, and sequences go on past the highest.
    drop(store);
    let (store, rec) = tokio::time::timeout(SOON, async {
        loop {
            match open(&server, None).await {
                Ok(r) => return Ok(r),
                Err(e) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    if !e.to_string().contains("still") {
                        return Err(e);
                    }
                }
            }
        }
    })
    .await??;
    // Sequences go on past the mark reserved in the state row (written once, not per commit).
    assert!(rec.max_seq >= 12, "{}", rec.max_seq);
    assert_eq!(rec.redelivered_below, rec.max_seq + 1);
    assert_eq!(
        server.psql("mq", "SELECT value FROM mq_state WHERE key = 'seq'"),
        "100003",
        "the mark set by the first commit (sequences 1 to 3) covers every later put"
    );
    assert_eq!(rec.queues.len(), 1);
    let mut counts = [0u64; 10];
    counts[5] = 1;
    counts[9] = 1;
    assert_eq!(rec.queues[0].counts, counts);
    assert_eq!(rec.queues[0].bytes[5], 5);
    assert_eq!(
        keys(&store.read(q.clone(), [0; 10], 100, u64::MAX).await?),
        [(5, 1), (9, 12)]
    );
    // The dedup window survives too.
    assert_eq!(
        store
            .commit(vec![put("q", 5, 0, Some("m1"))])
            .await?
            .duplicates,
        1
    );
    let o = store.commit(vec![put("q", 5, 0, None)]).await?;
    assert_eq!(o.first_seq, rec.max_seq + 1);
    let below = rec.redelivered_below;
    // A clean close keeps the delivery marks and the earlier crash's flag.
    tokio::task::spawn_blocking(move || store.close_marking(vec![(Arc::from("q"), 12, 2)])).await?;
    let (_store, rec) = open(&server, None).await?;
    assert_eq!(rec.marks.get(&("q".to_string(), 12)), Some(&2));
    assert_eq!(rec.redelivered_below, below);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_masters_writes_are_refused_and_nothing_of_them_is_kept() -> TestResult {
    let server = PgServer::start();
    let pool = PgPool::connect(&config(&server)?).await?;
    schema::migrate(&mut pool.get().await?).await?;
    let (k, l) = (Duration::from_millis(100), Duration::from_millis(300));
    let a = LeaseLocker::new(pool.clone(), "a", k, l)?;
    let b = LeaseLocker::new(pool.clone(), "b", k, l)?;
    let lease_a = tokio::time::timeout(SOON, a.acquire()).await??;
    let fence = Fence {
        holder_id: a.holder_id().to_string(),
        epoch: lease_a.epoch(),
    };
    let (store, _) = open(&server, Some(fence.clone())).await?;
    store.commit(vec![put("q", 5, 0, Some("ok"))]).await?;
    // a stops renewing (frozen, cut off): its lease ends and b takes it.
    drop(lease_a);
    let lease_b = tokio::time::timeout(SOON, b.acquire()).await??;
    assert!(lease_b.epoch() > fence.epoch);
    let e = store
        .commit(vec![put("q", 5, 0, Some("late"))])
        .await
        .expect_err("refused");
    assert!(
        e.to_string().contains("no longer holds the store's lease"),
        "{e}"
    );
    assert_eq!(server.psql("mq", "SELECT count(*) FROM mq_msgs"), "1");
    assert_eq!(
        server.psql("mq", "SELECT count(*) FROM mq_dedup WHERE msg_id = 'late'"),
        "0"
    );
    // Opening with the old fence is refused as well.
    drop(store);
    let e = open(&server, Some(fence)).await.err().ok_or("opened")?;
    assert!(e.to_string().contains("no longer holds"), "{e}");
    Ok(())
}
