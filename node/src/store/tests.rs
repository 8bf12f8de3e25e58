//! Unit tests of the store as a whole.

use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn put(q: &str, seq: u64, data: &[u8], dedup: Option<&str>) -> Op {
    Op::Put {
        queue: Arc::from(q),
        seq,
        data: Bytes::copy_from_slice(data),
        dedup: dedup.map(Arc::from),
    }
}

#[tokio::test]
async fn put_delete_recover_and_dedup() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("store.redb");
    let (store, rec) = Store::open(&path)?;
    assert!(rec.is_empty());
    store
        .commit(vec![
            put("a", 1, b"one", None),
            put("a", 2, b"two", Some("id-2")),
        ])
        .await?;
    let o = store
        .commit(vec![put("a", 3, b"dup", Some("id-2"))])
        .await?;
    assert_eq!(o.duplicates, 1);
    store
        .commit(vec![Op::Delete {
            queue: Arc::from("a"),
            seq: 1,
        }])
        .await?;
    store.close_marking(vec![(Arc::from("a"), 2, 3)]);
    let (store, rec) = Store::open(&path)?;
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].seq, 2);
    assert_eq!(&rec[0].data[..], b"two");
    assert_eq!(rec[0].deliveries, 3, "the mark of a clean close comes back");
    // The dedup window survives a restart.
    let o = store
        .commit(vec![put("a", 4, b"dup", Some("id-2"))])
        .await?;
    assert_eq!(o.duplicates, 1);
    store.close();
    Ok(())
}

#[tokio::test]
async fn a_store_not_closed_cleanly_flags_every_message_as_maybe_delivered() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("store.redb");
    let (store, _) = Store::open(&path)?;
    store.commit(vec![put("a", 1, b"one", None)]).await?;
    store.close();
    let (store, rec) = Store::open(&path)?;
    assert_eq!(rec[0].deliveries, 0, "a clean close flags nothing");
    // Every handle dropped without a close, as when the process dies: no clean mark.
    drop(store);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let rec = loop {
        match Store::open(&path) {
            Ok((s, rec)) => {
                s.close();
                break rec;
            }
            // The writer thread may still be closing the file.
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                tokio::task::yield_now().await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    assert_eq!(
        rec[0].deliveries, 1,
        "after an unclean end, maybe delivered"
    );
    Ok(())
}

#[tokio::test]
async fn acks_ride_the_next_put_or_commit_on_their_own_soon() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, _) = Store::open(&dir.path().join("s.redb"))?;
    store.commit(vec![put("q", 1, b"x", None)]).await?;
    let before = store.commits();
    // A lone delete is held back, then committed by itself: it still completes.
    let started = std::time::Instant::now();
    store
        .commit(vec![Op::Delete {
            queue: Arc::from("q"),
            seq: 1,
        }])
        .await?;
    assert!(started.elapsed() >= mq_shared::defaults::ACK_COMMIT_DELAY / 2);
    assert_eq!(store.commits(), before + 1);
    // A delete followed by a put: one commit for both.
    store.commit(vec![put("q", 2, b"y", None)]).await?;
    let before = store.commits();
    store.submit(
        vec![Op::Delete {
            queue: Arc::from("q"),
            seq: 2,
        }],
        None,
    );
    store.commit(vec![put("q", 3, b"z", None)]).await?;
    assert_eq!(store.commits(), before + 1);
    store.close();
    let (_, rec) = Store::open(&dir.path().join("s.redb"))?;
    assert_eq!(rec.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![3]);
    Ok(())
}

#[tokio::test]
async fn concurrent_submissions_share_commits() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, _) = Store::open(&dir.path().join("s.redb"))?;
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.commit(vec![put("q", i, b"x", None)]).await
        }));
    }
    for t in tasks {
        t.await??;
    }
    assert!(
        store.commits() < 200,
        "commits were not grouped: {}",
        store.commits()
    );
    store.close();
    Ok(())
}

#[tokio::test]
async fn a_failed_sync_fails_the_commit_with_a_write_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let faults = file::faults::Faults::new();
    let opts = Options {
        wrap_journal: Some(faults.wrap()),
    };
    let (store, _) = Store::open_with(&dir.path().join("s.redb"), &opts)?;
    faults.fail_syncs(1);
    let e = store
        .commit(vec![put("q", 1, b"x", None)])
        .await
        .err()
        .ok_or("the commit should fail")?;
    assert!(matches!(e, StoreError::Write(_)), "{e:?}");
    assert!(
        e.to_string().starts_with("store write failed: journal: "),
        "{e}"
    );
    store.commit(vec![put("q", 2, b"y", None)]).await?;
    store.close();
    Ok(())
}
