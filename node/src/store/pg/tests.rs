//! The database layer against a real PostgreSQL server (`mq_tests::postgres::PgServer`, one
//! per test): connection errors, schema creation and migration, message rows, the lease row
//! and its fence.

use std::path::Path;
use std::time::Duration;

use mq_tests::SOON;
use mq_tests::postgres::{PgServer, now_ms};

use super::lock::{self, TakeOutcome};
use super::messages::{count_per_queue, delete_messages, insert_messages, read_queue};
use super::schema::{self, MIGRATIONS, Migrated, Migration, SCHEMA_VERSION};
use super::*;
use crate::ha::lease::{LeaseError, LeaseLocker, LeaseState, LostReason};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn config(server: &PgServer) -> Result<PgConfig, PgError> {
    PgConfig::from_options(&server.url(), Some(&server.password_file()))
}

async fn opened(server: &PgServer) -> Result<PgPool, PgError> {
    Ok(open(&config(server)?).await?.0)
}

fn msg(container: &str, seq: i64, priority: i16) -> StoredMessage {
    StoredMessage {
        container: container.into(),
        seq,
        priority,
        msg_id: format!("id-{container}-{seq}"),
        expiration_ms: if seq % 2 == 0 {
            0
        } else {
            1_700_000_000_000 + seq
        },
        msg: format!("body {seq}").into_bytes(),
    }
}

fn write_file(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_database_gets_the_schema_once_and_an_empty_lease_row() -> TestResult {
    let server = PgServer::start();
    let (pool, first) = open(&config(&server)?).await?;
    assert_eq!(
        first,
        Migrated {
            from: 0,
            to: SCHEMA_VERSION
        }
    );
    let (_, again) = open(&config(&server)?).await?;
    assert_eq!(
        again,
        Migrated {
            from: SCHEMA_VERSION,
            to: SCHEMA_VERSION
        }
    );
    assert_eq!(SCHEMA_VERSION, MIGRATIONS.last().map_or(0, |m| m.version));
    let client = pool.get().await?;
    assert_eq!(schema::version(&client).await?, SCHEMA_VERSION);
    let row = lock::read(&client).await?;
    assert_eq!((row.holder, row.epoch, row.expires_at_ms), (None, 0, None));
    assert!(row.holder_id.is_none());
    // The tables of the documented shapes.
    let tables = server.psql(
        "mq",
        "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables \
         WHERE table_schema = 'public'",
    );
    assert_eq!(
        tables,
        "mq_acks,mq_dedup,mq_delivered,mq_lock,mq_msgs,mq_sched,mq_schema_version,mq_state"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_starting_together_migrate_once() -> TestResult {
    let server = PgServer::start();
    let c = config(&server)?;
    let (a, b, d) = tokio::join!(open(&c), open(&c), open(&c));
    let mut froms = vec![a?.1.from, b?.1.from, d?.1.from];
    froms.sort();
    assert_eq!(froms, [0, SCHEMA_VERSION, SCHEMA_VERSION]);
    assert_eq!(
        server.psql("mq", "SELECT count(*) FROM mq_schema_version"),
        MIGRATIONS.len().to_string(),
        "each migration applied once"
    );
    assert_eq!(server.psql("mq", "SELECT count(*) FROM mq_lock"), "1");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_newer_than_this_build_is_refused() -> TestResult {
    let server = PgServer::start();
    opened(&server).await?;
    server.psql(
        "mq",
        "INSERT INTO mq_schema_version (version, description) VALUES (99, 'from the future')",
    );
    let e = open(&config(&server)?).await.expect_err("refused");
    assert!(
        matches!(
            e,
            PgError::SchemaTooNew {
                found: 99,
                known: SCHEMA_VERSION
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains("newer than this mqnode knows"),
        "{e}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_in_order_in_one_transaction() -> TestResult {
    let server = PgServer::start();
    let pool = PgPool::connect(&config(&server)?).await?;
    let v1 = MIGRATIONS[0];
    let broken = Migration {
        version: 2,
        description: "broken",
        sql: "ALTER TABLE mq_msgs ADD COLUMN xid text; ALTER TABLE no_such_table ADD COLUMN x int",
    };
    let mut client = pool.get().await?;
    // A failing second migration takes the first one down with it: nothing is applied.
    let e = schema::migrate_with(&mut client, &[v1, broken])
        .await
        .expect_err("fails");
    assert!(matches!(e, PgError::NoSchema(_) | PgError::Db(_)), "{e}");
    assert_eq!(schema::version(&client).await?, 0);
    assert_eq!(
        server.psql("mq", "SELECT to_regclass('mq_msgs') IS NULL"),
        "t",
        "the first migration was rolled back"
    );
    // Version by version: 1 now, then 2 on a later start.
    assert_eq!(
        schema::migrate_with(&mut client, &[v1]).await?,
        Migrated { from: 0, to: 1 }
    );
    let v2 = Migration {
        version: 2,
        description: "xid",
        sql: "ALTER TABLE mq_msgs ADD COLUMN xid text",
    };
    assert_eq!(
        schema::migrate_with(&mut client, &[v1, v2]).await?,
        Migrated { from: 1, to: 2 }
    );
    assert_eq!(
        server.psql(
            "mq",
            "SELECT string_agg(description, '|' ORDER BY version) FROM mq_schema_version"
        ),
        format!("{}|xid", v1.description)
    );
    assert_eq!(
        server.psql("mq", "SELECT count(*) FROM information_schema.columns WHERE table_name = 'mq_msgs' AND column_name = 'xid'"),
        "1"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_failures_are_one_clear_sentence_each() -> TestResult {
    let server = PgServer::start();
    let dir = tempfile::tempdir()?;
    let wrong = write_file(dir.path(), "wrong", "not-the-password\n");
    let fast = |mut c: PgConfig| {
        c.connect_timeout = Duration::from_millis(500);
        c
    };

    let c = fast(PgConfig::from_options(&server.url(), Some(&wrong))?);
    let e = PgPool::connect(&c).await.expect_err("wrong password");
    assert!(matches!(e, PgError::BadPassword { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("refused the password of user \"mq\""),
        "{e}"
    );
    assert!(!e.to_string().contains("not-the-password"), "{e}");

    let c = fast(PgConfig::from_options(&server.url(), None)?);
    let e = PgPool::connect(&c).await.expect_err("no password");
    assert!(matches!(e, PgError::PasswordRequired { .. }), "{e:?}");
    assert!(e.to_string().contains("--store-password-file"), "{e}");

    let c = fast(PgConfig::from_options(
        &server.url_for("nope"),
        Some(&server.password_file()),
    )?);
    let e = PgPool::connect(&c).await.expect_err("missing database");
    assert!(matches!(e, PgError::NoDatabase { .. }), "{e:?}");
    assert!(
        e.to_string().contains("database \"nope\" does not exist"),
        "{e}"
    );

    let down = format!("postgres://mq@127.0.0.1:{}/mq", mq_tests::free_port());
    let c = fast(PgConfig::from_options(
        &down,
        Some(&server.password_file()),
    )?);
    let e = PgPool::connect(&c).await.expect_err("nothing listens");
    assert!(matches!(e, PgError::Unreachable { .. }), "{e:?}");
    assert!(e.to_string().contains("is the server running"), "{e}");

    // A server that accepts the TCP connection and never answers.
    let (silent, port) = mq_tests::busy_port();
    let c = fast(PgConfig::from_options(
        &format!("postgres://mq@127.0.0.1:{port}/mq"),
        Some(&server.password_file()),
    )?);
    let started = std::time::Instant::now();
    let e = PgPool::connect(&c).await.expect_err("silent server");
    assert!(
        matches!(
            e,
            PgError::Timeout {
                timeout_ms: 500,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(silent);

    let e = PgConfig::from_options("postgres://mq:pw@127.0.0.1/mq", None).expect_err("bad URL");
    assert!(
        matches!(e, PgError::Url(PgUrlError::PasswordInUrl)),
        "{e:?}"
    );
    Ok(())
}

#[test]
fn the_password_file_gives_its_content_less_one_line_end_and_never_shows_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    for (text, want) in [
        ("s3cret\n", "s3cret"),
        ("s3cret\r\n", "s3cret"),
        (" two words ", " two words "),
    ] {
        let p = write_file(dir.path(), "pw", text);
        assert_eq!(Password::read_file(&p)?, Password::new(want));
    }
    let p = write_file(dir.path(), "empty", "\n");
    assert!(matches!(
        Password::read_file(&p),
        Err(PgError::EmptyPassword { .. })
    ));
    let e = Password::read_file(&dir.path().join("missing")).expect_err("missing");
    assert!(
        e.to_string()
            .starts_with("cannot read the store password file"),
        "{e}"
    );
    let p = write_file(dir.path(), "pw", "hunter2\n");
    let c = PgConfig::from_options("postgres://mq@h/db", Some(&p))?;
    assert!(!format!("{c:?}").contains("hunter2"));
    assert_eq!(format!("{}", Password::new("hunter2")), "***");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_are_read_in_delivery_order_from_a_cursor_and_deleted_by_key() -> TestResult {
    let server = PgServer::start();
    let pool = opened(&server).await?;
    let mut client = pool.get().await?;
    let batch: Vec<StoredMessage> = [(1, 4), (2, 9), (3, 4), (4, 0), (5, 9), (6, 4), (7, 7)]
        .iter()
        .map(|&(seq, p)| msg("queue://a", seq, p))
        .chain([msg("queue://b", 1, 4)])
        .collect();
    let tx = client.transaction().await?;
    assert_eq!(insert_messages(&tx, &batch).await?, 8);
    tx.commit().await?;

    // Pages of 3 from a cursor: priority high to low, then seq.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = read_queue(&client, "queue://a", after, 3).await?;
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        after = Some(last.cursor());
        seen.extend(page.iter().map(|m| (m.seq, m.priority)));
    }
    assert_eq!(
        seen,
        [(2, 9), (5, 9), (7, 7), (1, 4), (3, 4), (6, 4), (4, 0)]
    );
    // Every column comes back as written.
    let all = read_queue(&client, "queue://a", None, 100).await?;
    let mut by_seq = all.clone();
    by_seq.sort_by_key(|m| m.seq);
    assert_eq!(by_seq, batch[..7]);
    assert_eq!(
        count_per_queue(&client).await?,
        [("queue://a".to_string(), 7), ("queue://b".to_string(), 1)]
    );

    let tx = client.transaction().await?;
    let keys = [
        batch[0].key(),
        batch[1].key(),
        MessageKey {
            container: "queue://a".into(),
            seq: 99,
        },
    ];
    assert_eq!(delete_messages(&tx, &keys).await?, 2);
    tx.commit().await?;
    assert_eq!(
        count_per_queue(&client).await?,
        [("queue://a".to_string(), 5), ("queue://b".to_string(), 1)]
    );

    // A batch with a key already stored is refused whole.
    let tx = client.transaction().await?;
    let dup = [msg("queue://c", 1, 4), msg("queue://b", 1, 4)];
    assert!(insert_messages(&tx, &dup).await.is_err());
    drop(tx);
    assert_eq!(read_queue(&client, "queue://c", None, 10).await?, []);
    assert!(read_queue(&client, "queue://a", None, -1).await.is_err());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_row_is_taken_only_once_ended_and_renewed_only_by_its_holder() -> TestResult {
    let server = PgServer::start();
    let pool = opened(&server).await?;
    let c = pool.get().await?;
    let lease = Duration::from_millis(400);
    let before = now_ms();
    let TakeOutcome::Taken(a) = lock::take(&c, "a", "a/1", lease).await? else {
        panic!("an empty row is taken");
    };
    assert_eq!(a.epoch, 1);
    // The lease ends one lease length after the server received the statement (database
    // time: this machine's clock), and was taken in between.
    assert!(a.expires_at_ms >= before + 400, "{a:?} sent at {before}");
    assert!(
        a.acquired_at_ms >= before && a.acquired_at_ms < a.expires_at_ms,
        "{a:?}"
    );
    // Held: another member is told who holds it and for how long.
    let TakeOutcome::Busy(row) = lock::take(&c, "b", "b/1", lease).await? else {
        panic!("a held lease is not taken");
    };
    assert_eq!((row.holder.as_deref(), row.epoch), (Some("a"), 1));
    assert!(row.is_live() && row.remaining() <= lease);
    // Only the holder of this epoch renews.
    assert!(lock::renew(&c, "b/1", 1, lease).await?.is_none());
    assert!(lock::renew(&c, "a/1", 2, lease).await?.is_none());
    let renewed = lock::renew(&c, "a/1", 1, lease).await?.ok_or("renewed")?;
    assert!(renewed >= a.expires_at_ms);
    // Released: taken at once by the next, with a new epoch; the old holder cannot renew.
    assert!(lock::release(&c, "a/1", 1).await?);
    let TakeOutcome::Taken(b) = lock::take(&c, "b", "b/1", lease).await? else {
        panic!("a released lease is taken");
    };
    assert_eq!(b.epoch, 2);
    assert!(lock::renew(&c, "a/1", 1, lease).await?.is_none());
    assert!(!lock::release(&c, "a/1", 1).await?);
    // An ended lease is not renewed even by its holder.
    server.psql(
        "mq",
        "UPDATE mq_lock SET expires_at = now() - interval '1 second'",
    );
    assert!(lock::renew(&c, "b/1", 2, lease).await?.is_none());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_masters_fenced_writes_are_refused_by_the_database() -> TestResult {
    let server = PgServer::start();
    let pool = opened(&server).await?;
    let (k, l) = (Duration::from_millis(100), Duration::from_millis(300));
    let a = LeaseLocker::new(pool.clone(), "a", k, l)?;
    let b = LeaseLocker::new(pool.clone(), "b", k, l)?;
    let lease_a = tokio::time::timeout(SOON, a.acquire()).await??;
    assert!(lease_a.is_held());
    let write = |seq| {
        let m = msg("queue://fence", seq, 4);
        let lease = lease_a.clone();
        let pool = pool.clone();
        async move {
            lease
                .fenced_transaction(&pool, async |tx| insert_messages(tx, &[m]).await)
                .await
        }
    };
    assert_eq!(write(1).await?, 1);
    // Someone ends a's lease in the database (as time would): b takes it.
    server.psql(
        "mq",
        "UPDATE mq_lock SET expires_at = now() - interval '1 second'",
    );
    let e = write(2).await.expect_err("expired lease");
    assert!(matches!(e, LeaseError::Expired { .. }), "{e}");
    let lease_b = match b.try_acquire().await? {
        Ok(l) => l,
        Err(row) => panic!("b could not take an ended lease: {row:?}"),
    };
    assert_eq!(lease_b.epoch(), lease_a.epoch() + 1);
    let e = write(3).await.expect_err("deposed");
    assert!(
        matches!(&e, LeaseError::Deposed { holder: Some(h), .. } if h == "b"),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("write refused: the lease is held by b"),
        "{e}"
    );
    // a's renewal gives up at once: it finds b in the row, or (when it ran between the lease's
    // end and b's take-over, as it may on a busy machine) the lease ended.
    let reason = tokio::time::timeout(SOON, lease_a.lost()).await?;
    let deposed = LostReason::Deposed {
        holder: Some("b".into()),
        epoch: lease_b.epoch(),
    };
    assert!(
        reason == deposed || reason == LostReason::Expired,
        "{reason:?}"
    );
    assert!(!lease_a.is_held());
    // Only the write made while a held the lease is there; b writes fine.
    let seqs: Vec<i64> = read_queue(&pool.get().await?, "queue://fence", None, 10)
        .await?
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(seqs, [1]);
    let m = msg("queue://fence", 4, 4);
    lease_b
        .fenced_transaction(&pool, async |tx| insert_messages(tx, &[m]).await)
        .await?;
    assert!(matches!(*lease_b.state().borrow(), LeaseState::Held { .. }));
    lease_b.release().await?;
    assert!(!lease_b.is_held());
    assert_eq!(lease_b.lost().await, LostReason::Released);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_waits_for_the_fenced_transaction_in_flight() -> TestResult {
    let server = PgServer::start();
    let pool = opened(&server).await?;
    let (k, l) = (Duration::from_millis(100), Duration::from_millis(300));
    let mut lock_config = config(&server)?;
    lock_config.lock_timeout = Some(k);
    let lock_pool = PgPool::connect(&lock_config).await?;
    let a = LeaseLocker::new(lock_pool.clone(), "a", k, l)?;
    let b = LeaseLocker::new(lock_pool.clone(), "b", k, l)?;
    let lease_a = tokio::time::timeout(SOON, a.acquire()).await??;
    let (in_tx, entered) = tokio::sync::oneshot::channel::<()>();
    let (go, proceed) = tokio::sync::oneshot::channel::<()>();
    let writer = {
        let lease = lease_a.clone();
        let pool = pool.clone();
        tokio::spawn(async move {
            let m = msg("queue://slow", 1, 4);
            lease
                .fenced_transaction(&pool, async |tx| {
                    let n = insert_messages(tx, &[m]).await?;
                    let _ = in_tx.send(());
                    let _ = proceed.await;
                    // The test's clock is the database's: the commit comes after this.
                    Ok((n, now_ms()))
                })
                .await
        })
    };
    entered.await?;
    // a's transaction holds the lease row (shared): its renewals wait and fail, a stops
    // serving, the lease ends in the database; still b cannot take it.
    assert!(matches!(
        tokio::time::timeout(SOON, lease_a.lost()).await?,
        LostReason::NotRenewed { .. }
    ));
    let taker = tokio::spawn(async move { b.acquire().await });
    let quiet = tokio::time::timeout(l * 2, async {
        while !taker.is_finished() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(quiet.is_err(), "b took the lease while a's write was open");
    let _ = go.send(());
    let (n, before_commit_ms) = writer.await??;
    assert_eq!(n, 1);
    let lease_b = tokio::time::timeout(SOON, taker).await???;
    assert!(
        lease_b.acquired_at_ms() >= before_commit_ms,
        "b took the row at {} before a's commit began at {before_commit_ms}",
        lease_b.acquired_at_ms()
    );
    // a's write, made under its lease, committed before the takeover and is kept.
    assert_eq!(
        read_queue(&pool.get().await?, "queue://slow", None, 10)
            .await?
            .len(),
        1
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_whose_handles_are_all_dropped_stops_renewing_and_runs_out() -> TestResult {
    let server = PgServer::start();
    let pool = opened(&server).await?;
    let (k, l) = (Duration::from_millis(100), Duration::from_millis(300));
    let a = LeaseLocker::new(pool.clone(), "a", k, l)?;
    let lease = tokio::time::timeout(SOON, a.acquire()).await??;
    let mut state = lease.state();
    let info = lease.info();
    assert_eq!(
        (info.holder.as_deref(), info.keep_alive_ms),
        (Some("a"), 100)
    );
    drop(lease);
    let lost = tokio::time::timeout(
        SOON,
        state.wait_for(|s| matches!(s, LeaseState::Lost { .. })),
    )
    .await??
    .clone();
    assert_eq!(
        lost,
        LeaseState::Lost {
            reason: LostReason::Released
        }
    );
    // Nobody renews it any more: b takes it once it has run out, not at once.
    let b = LeaseLocker::new(pool.clone(), "b", k, l)?;
    let row = a.current().await?;
    let lease_b = tokio::time::timeout(SOON, b.acquire()).await??;
    assert!(
        lease_b.acquired_at_ms() >= row.expires_at_ms.ok_or("an end")?,
        "taken at {} before the end {:?}",
        lease_b.acquired_at_ms(),
        row.expires_at_ms
    );
    assert_eq!(b.current().await?.holder.as_deref(), Some("b"));
    Ok(())
}
