//! Unit tests of the store as a whole.

use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn put(q: &str, seq: u64, data: &[u8], dedup: Option<&str>) -> Op {
    Op::Put {
        queue: Arc::from(q),
        rank: DEFAULT_RANK,
        seq,
        data: Bytes::copy_from_slice(data),
        dedup: dedup.map(Arc::from),
    }
}

#[tokio::test]
async fn put_delete_recover_and_dedup() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("store.redb");
    let (store, rec) = open(&path)?;
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
            rank: DEFAULT_RANK,
            seq: 1,
            size: 0,
        }])
        .await?;
    store.close_marking(vec![(Arc::from("a"), 2, 3)]);
    let (store, rec) = open(&path)?;
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
    let (store, _) = open(&path)?;
    store.commit(vec![put("a", 1, b"one", None)]).await?;
    store.close();
    let (store, rec) = open(&path)?;
    assert_eq!(rec[0].deliveries, 0, "a clean close flags nothing");
    // Every handle dropped without a close, as when the process dies: no clean mark.
    drop(store);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let rec = loop {
        match open(&path) {
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

/// The bodies of queue `q` (its first 100) in the store at `path`, reopened and closed again.
async fn bodies_after_reopen(
    path: &std::path::Path,
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let (store, _) = open(path)?;
    let got = store
        .read(Arc::from("q"), Cursor::default(), 100, u64::MAX)
        .await?;
    store.close();
    Ok(got
        .iter()
        .map(|m| String::from_utf8_lossy(&m.data).into_owned())
        .collect())
}

/// Submits a put of `body` with [`Store::submit_here`] and waits for its completion; `true`
/// when the completion had run before `submit_here` returned (committed on this thread).
async fn put_here(store: &Store, body: &[u8]) -> Result<bool, Box<dyn std::error::Error>> {
    use std::sync::atomic::AtomicBool;
    let ran = Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    store.submit_here(
        vec![put("q", 0, body, None)],
        Some(Box::new(move |r| {
            flag.store(true, Ordering::SeqCst);
            let _ = tx.send(r);
        })),
    );
    let inline = ran.load(Ordering::SeqCst);
    rx.await??;
    Ok(inline)
}

#[tokio::test]
async fn an_idle_writer_lets_the_submitter_commit_its_own_group_in_order() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s.redb");
    let (store, _) = open(&path)?;
    store.commit(vec![put("q", 0, b"first", None)]).await?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    // Once the writer thread is done with the last group, the submitter commits here: the
    // completion has run when `submit_here` returns.
    let mut inline = 0;
    let mut n = 0u64;
    while inline < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "no submission was committed by its submitter"
        );
        n += 1;
        if put_here(&store, format!("m{n}").as_bytes()).await? {
            inline += 1;
        }
    }
    store.close();
    // Every message is there, in submission order.
    let bodies = bodies_after_reopen(&path).await?;
    let want: Vec<String> = std::iter::once("first".to_string())
        .chain((1..=n).map(|i| format!("m{i}")))
        .collect();
    assert_eq!(bodies, want);
    Ok(())
}

/// Submits a put of `body` for connection `sender` with [`Store::submit_from`]: whether its
/// completion had run when `submit_from` returned, and the completion's outcome to wait for.
fn put_from(
    store: &Store,
    sender: u64,
    body: &[u8],
) -> (
    bool,
    tokio::sync::oneshot::Receiver<Result<Outcome, StoreError>>,
) {
    use std::sync::atomic::AtomicBool;
    let ran = Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    store.submit_from(
        sender,
        vec![put("q", 0, body, None)],
        Some(Box::new(move |r| {
            flag.store(true, Ordering::SeqCst);
            let _ = tx.send(r);
        })),
    );
    (ran.load(Ordering::SeqCst), rx)
}

#[tokio::test]
async fn puts_wait_for_the_senders_of_the_last_group_and_the_last_one_commits_them() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s.redb");
    let (store, _) = open(&path)?;
    store.commit(vec![put("q", 0, b"first", None)]).await?;
    let lead = store.inner.leader.get().ok_or("no leader")?.clone();
    // Every submitter below must find the writer thread asleep, or it leaves its group to that
    // thread: so wait until nothing is queued and the thread sleeps until a checkpoint still
    // at least 500 ms away, which nothing below wakes it before. Once the checkpoint has run
    // it sleeps until told, and the first gathered put would wake it: commit again.
    let mut firsts = 1;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer never slept"
        );
        if store.inner.queued.load(Ordering::SeqCst) == 0 {
            match lead.sleeps_for() {
                Some(d) if d >= std::time::Duration::from_millis(500) => break,
                None => {
                    store.commit(vec![put("q", 0, b"first", None)]).await?;
                    firsts += 1;
                    continue;
                }
                Some(_) => {}
            }
        }
        tokio::task::yield_now().await;
    }
    // The last group carried puts of two connections; a gathered group may wait 60 s.
    lead.prime(2, std::time::Duration::from_secs(60));
    let commits = store.commits();
    let (inline_a, a) = put_from(&store, 1, b"a");
    assert!(!inline_a, "the first sender's put was committed alone");
    // An ack submitted meanwhile joins the gathered group behind it.
    store.submit(
        vec![Op::Delete {
            queue: Arc::from("q"),
            rank: DEFAULT_RANK,
            seq: 1,
            size: 0,
        }],
        None,
    );
    // The same sender again does not complete the group: it waits for another connection.
    let (inline_a2, a2) = put_from(&store, 1, b"a2");
    assert!(
        !inline_a2,
        "a second put of the same sender completed the group"
    );
    let (inline_b, b) = put_from(&store, 2, b"b");
    assert!(
        inline_b,
        "the put that completes the group is committed on its thread"
    );
    for rx in [a, a2, b] {
        rx.await??;
    }
    assert_eq!(
        store.commits(),
        commits + 1,
        "one commit for the gathered group"
    );
    // The last group's window is its own commit's time now (at most a millisecond): a lone
    // put waiting for a second sender that never comes is committed by the writer thread.
    let (inline_c, c) = put_from(&store, 1, b"c");
    assert!(!inline_c);
    c.await??;
    // That group had one sender: the next put of a lone producer commits on its thread at
    // once.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (inline, rx) = put_from(&store, 1, b"d");
        rx.await??;
        if inline {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a lone sender never led"
        );
    }
    store.close();
    // Everything is there in submission order, the ack included (message 1 is gone).
    let bodies = bodies_after_reopen(&path).await?;
    let (more, bodies) = bodies.split_at(firsts - 1);
    assert!(more.iter().all(|b| b == "first"));
    assert_eq!(&bodies[..4], ["a", "a2", "b", "c"]);
    assert!(bodies[4..].iter().all(|b| b == "d"));
    Ok(())
}

#[test]
fn a_group_waits_only_for_more_senders_than_it_has_and_only_within_its_window() {
    use std::time::Duration;
    let ms = Duration::from_millis;
    assert!(group::gathers(1, 4, ms(0), ms(1)));
    assert!(group::gathers(3, 4, Duration::from_micros(999), ms(1)));
    assert!(
        !group::gathers(4, 4, ms(0), ms(1)),
        "as many as the last group"
    );
    assert!(!group::gathers(1, 4, ms(1), ms(1)), "the window is over");
    assert!(
        !group::gathers(1, 1, ms(0), ms(1)),
        "a lone producer never waits"
    );
    assert!(
        !group::gathers(0, 4, ms(0), ms(1)),
        "acks alone are not gathered"
    );
}

#[tokio::test]
async fn on_a_slow_disk_submitters_leave_the_commits_to_the_writer_thread() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (faults, opts) = faulty();
    let (store, _) = open_with(&dir.path().join("s.redb"), &opts)?;
    // Each sync takes 20 ms longer: after one such commit, a SEND's submission is not
    // committed on the submitting thread (it returns before its completion runs).
    faults.slow_syncs(std::time::Duration::from_millis(20));
    store.commit(vec![put("q", 0, b"slow", None)]).await?;
    for i in 0..3 {
        let inline = put_here(&store, format!("s{i}").as_bytes()).await?;
        assert!(!inline, "committed on the submitting thread");
    }
    // Quick again: after one quick commit on the writer thread, submitters lead again.
    faults.slow_syncs(std::time::Duration::ZERO);
    store.commit(vec![put("q", 0, b"quick", None)]).await?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let inline = put_here(&store, b"again").await?;
        if inline {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "submitters never led again"
        );
    }
    store.close();
    Ok(())
}

#[tokio::test]
async fn acks_ride_the_next_put_or_commit_on_their_own_soon() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, _) = open(&dir.path().join("s.redb"))?;
    store.commit(vec![put("q", 1, b"x", None)]).await?;
    let before = store.commits();
    // A lone delete is held back, then committed by itself: it still completes.
    let started = std::time::Instant::now();
    store
        .commit(vec![Op::Delete {
            queue: Arc::from("q"),
            rank: DEFAULT_RANK,
            seq: 1,
            size: 0,
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
            rank: DEFAULT_RANK,
            seq: 2,
            size: 0,
        }],
        None,
    );
    store.commit(vec![put("q", 3, b"z", None)]).await?;
    assert_eq!(store.commits(), before + 1);
    store.close();
    let (_, rec) = open(&dir.path().join("s.redb"))?;
    assert_eq!(rec.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![3]);
    Ok(())
}

#[tokio::test]
async fn concurrent_submissions_share_commits() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, _) = open(&dir.path().join("s.redb"))?;
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
    let (faults, opts) = faulty();
    let (store, _) = open_with(&dir.path().join("s.redb"), &opts)?;
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

/// Opens the store again once the writer thread of a dropped handle has let go of the file.
/// A stored message as a test sees it after an open.
#[derive(Debug)]
struct Rec {
    seq: u64,
    data: Bytes,
    deliveries: u32,
}

/// Opens the store and reads back every message of every queue it counts.
fn open(path: &Path) -> Result<(Store, Vec<Rec>), StoreError> {
    open_with(path, &Options::default())
}

/// [`open`] with options.
fn open_with(path: &Path, opts: &Options) -> Result<(Store, Vec<Rec>), StoreError> {
    let (store, r) = Store::open_with(path, opts)?;
    let mut out = Vec::new();
    for q in &r.queues {
        let (tx, rx) = std::sync::mpsc::channel();
        store.load(
            Arc::from(q.name.as_str()),
            [0; PRIORITIES],
            usize::MAX,
            u64::MAX,
            Box::new(move |l| {
                let _ = tx.send(l);
            }),
        )?;
        let list = rx.recv().map_err(|_| StoreError::Closed)??;
        assert_eq!(
            list.len() as u64,
            q.counts.iter().sum::<u64>(),
            "the counts match what is stored"
        );
        for l in list {
            let marked = r.marks.get(&(q.name.clone(), l.seq)).copied().unwrap_or(0);
            out.push(Rec {
                seq: l.seq,
                data: l.data,
                deliveries: marked.max(u32::from(l.seq < r.redelivered_below)),
            });
        }
    }
    Ok((store, out))
}

fn reopen(path: &Path, opts: &Options) -> Result<(Store, Vec<Rec>), StoreError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match open_with(path, opts) {
            Err(StoreError::AlreadyOpen { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            r => return r,
        }
    }
}

fn seqs(rec: &[Rec]) -> Vec<u64> {
    rec.iter().map(|r| r.seq).collect()
}

fn faulty() -> (Arc<file::faults::Faults>, Options) {
    let faults = file::faults::Faults::new();
    let opts = Options {
        wrap_journal: Some(faults.wrap()),
        ..Default::default()
    };
    (faults, opts)
}

#[tokio::test]
async fn a_small_commit_after_a_failed_preallocation_survives_a_crash() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s.redb");
    let (faults, opts) = faulty();
    let (store, _) = open_with(&path, &opts)?;
    // The disk has room for 1 MiB more than the first preallocated chunk: a 6 MiB record
    // needs a second chunk, and zeroing it runs out of space halfway.
    faults.limit_size(Some(5 * 1024 * 1024));
    let big = vec![7u8; 6 * 1024 * 1024];
    assert!(store.commit(vec![put("q", 1, &big, None)]).await.is_err());
    faults.limit_size(None);
    store.commit(vec![put("q", 2, b"small", None)]).await?;
    // A crash: no close, so no checkpoint; only the journal holds message 2.
    drop(store);
    let (store, rec) = reopen(&path, &opts)?;
    assert_eq!(seqs(&rec), vec![2], "the receipted message is recovered");
    store.close();
    Ok(())
}

#[tokio::test]
async fn a_commit_whose_sync_failed_is_not_replayed_after_a_crash() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s.redb");
    let (faults, opts) = faulty();
    let (store, _) = open_with(&path, &opts)?;
    faults.fail_syncs(1);
    assert!(store.commit(vec![put("q", 1, b"x", None)]).await.is_err());
    drop(store);
    let (store, rec) = reopen(&path, &opts)?;
    assert_eq!(seqs(&rec), Vec::<u64>::new(), "the sender was told ERROR");
    store.close();
    Ok(())
}

#[tokio::test]
async fn a_commit_that_failed_and_could_not_be_undone_is_not_recovered_after_a_close() -> TestResult
{
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s.redb");
    let (faults, opts) = faulty();
    let (store, _) = open_with(&path, &opts)?;
    // The record's sync fails, and so does the sync that would undo it.
    faults.fail_syncs(2);
    assert!(store.commit(vec![put("q", 1, b"x", None)]).await.is_err());
    store.close();
    let (store, rec) = reopen(&path, &opts)?;
    assert_eq!(seqs(&rec), Vec::<u64>::new(), "the sender was told ERROR");
    store.close();
    Ok(())
}

#[tokio::test]
async fn after_a_write_that_cannot_be_undone_commits_are_refused_until_the_disk_recovers()
-> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s.redb");
    let (faults, opts) = faulty();
    let (store, _) = open_with(&path, &opts)?;
    faults.fail_syncs(usize::MAX);
    assert!(store.commit(vec![put("q", 1, b"x", None)]).await.is_err());
    let e = store
        .commit(vec![put("q", 2, b"y", None)])
        .await
        .err()
        .ok_or("a commit after an undo that failed is refused")?;
    assert!(e.to_string().contains("refused"), "{e}");
    faults.fail_syncs(0);
    store.commit(vec![put("q", 3, b"z", None)]).await?;
    drop(store);
    let (store, rec) = reopen(&path, &opts)?;
    assert_eq!(seqs(&rec), vec![3]);
    store.close();
    Ok(())
}

#[tokio::test]
async fn a_failed_write_leaves_nothing_a_later_commit_trips_over() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s.redb");
    let (faults, opts) = faulty();
    let (store, _) = open_with(&path, &opts)?;
    store.commit(vec![put("q", 1, b"one", None)]).await?;
    faults.fail_writes(true);
    assert!(store.commit(vec![put("q", 2, b"two", None)]).await.is_err());
    faults.fail_writes(false);
    store.commit(vec![put("q", 3, b"three", None)]).await?;
    drop(store);
    let (store, rec) = reopen(&path, &opts)?;
    assert_eq!(seqs(&rec), vec![1, 3]);
    store.close();
    Ok(())
}

fn small_limits() -> Limits {
    Limits::small(1024 * 1024)
}

#[tokio::test]
async fn a_commit_larger_than_the_journal_takes_is_refused_and_the_store_goes_on() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s.redb");
    let opts = Options {
        limits: small_limits(),
        ..Default::default()
    };
    let (store, _) = open_with(&path, &opts)?;
    let huge = vec![0u8; 2 * 1024 * 1024];
    let e = store
        .commit(vec![put("q", 1, &huge, Some("id-1"))])
        .await
        .err()
        .ok_or("a commit over the hard limit is refused")?;
    assert!(matches!(e, StoreError::TooLarge { .. }), "{e:?}");
    assert!(e.to_string().starts_with("store write failed: "), "{e}");
    // The refused put's dedup id was not kept: a retry of a smaller message with it is stored.
    let o = store
        .commit(vec![put("q", 2, b"small", Some("id-1"))])
        .await?;
    assert_eq!(o.duplicates, 0);
    drop(store);
    let (store, rec) = reopen(&path, &opts)?;
    assert_eq!(seqs(&rec), vec![2]);
    store.close();
    Ok(())
}

#[tokio::test]
async fn a_group_commit_stops_at_its_byte_limit() -> TestResult {
    let dir = tempfile::tempdir()?;
    let opts = Options {
        limits: small_limits(),
        ..Default::default()
    };
    let (store, _) = open_with(&dir.path().join("s.redb"), &opts)?;
    // The first callback holds the writer thread until ten more submissions are queued, so
    // the next group commit could take them all at once.
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let (held_tx, held_rx) = tokio::sync::oneshot::channel::<()>();
    store.submit(
        vec![put("q", 0, b"first", None)],
        Some(Box::new(move |_| {
            let _ = held_tx.send(());
            let _ = release_rx.recv_timeout(std::time::Duration::from_secs(10));
        })),
    );
    held_rx.await?;
    let before = store.commits();
    let mut waits = Vec::new();
    for i in 1..=10u64 {
        let (tx, rx) = tokio::sync::oneshot::channel();
        store.submit(
            vec![put("q", i, &[i as u8; 2000], None)],
            Some(Box::new(move |r| {
                let _ = tx.send(r);
            })),
        );
        waits.push(rx);
    }
    release_tx.send(())?;
    for w in waits {
        w.await??;
    }
    // 20 000 bytes at most 8 KiB a commit: at least three commits.
    let commits = store.commits() - before;
    assert!(commits >= 3, "{commits} commits");
    store.close();
    Ok(())
}

#[tokio::test]
async fn a_checkpoint_after_a_burst_gives_the_journal_space_back() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s.redb");
    let limits = small_limits();
    let opts = Options {
        limits,
        ..Default::default()
    };
    let (store, _) = open_with(&path, &opts)?;
    store
        .commit(vec![put("q", 1, &vec![1u8; 300 * 1024], None)])
        .await?;
    let journal = path.with_extension("journal");
    assert!(std::fs::metadata(&journal)?.len() > 300 * 1024);
    store.close();
    assert!(std::fs::metadata(&journal)?.len() <= limits.keep());
    let (store, rec) = open_with(&path, &opts)?;
    assert_eq!(seqs(&rec), vec![1]);
    store.close();
    Ok(())
}

#[tokio::test]
async fn replay_applies_a_long_journal_in_several_commits() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s.redb");
    let (store, _) = open(&path)?;
    for i in 0..50u64 {
        let id = format!("id-{i}");
        store
            .commit(vec![put("q", i, &[i as u8; 1000], Some(&id))])
            .await?;
    }
    store
        .commit(vec![Op::Delete {
            queue: Arc::from("q"),
            rank: DEFAULT_RANK,
            seq: 0,
            size: 0,
        }])
        .await?;
    drop(store);
    // Replay in commits of about 4 KiB.
    let opts = Options {
        limits: Limits {
            journal_checkpoint: 4096,
            ..Limits::default()
        },
        ..Default::default()
    };
    let (store, rec) = reopen(&path, &opts)?;
    assert_eq!(seqs(&rec), (1..50).collect::<Vec<_>>());
    // The dedup ids of every replayed commit came back.
    let o = store
        .commit(vec![put("q", 99, b"dup", Some("id-49"))])
        .await?;
    assert_eq!(o.duplicates, 1);
    store.close();
    Ok(())
}

fn job(id: &str, at: u64, data: &[u8]) -> Op {
    Op::Schedule {
        id: Arc::from(id),
        at,
        data: Bytes::copy_from_slice(data),
    }
}

/// The jobs a store holds, in (fire time, id) order, as (at, id, data).
async fn jobs(
    store: &Store,
    after: Option<(u64, &str)>,
    limit: usize,
) -> Vec<(u64, String, Vec<u8>)> {
    let query = JobQuery::After {
        after: after.map(|(at, id)| (at, Arc::from(id))),
        limit,
    };
    store
        .read_jobs(query)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|j| (j.at, j.id.to_string(), j.data.to_vec()))
        .collect()
}

#[tokio::test]
async fn scheduled_jobs_move_and_go_and_survive_a_crash_and_a_checkpoint() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("store.redb");
    let (store, _) = Store::open(&path)?;
    store
        .commit(vec![
            job("a", 300, b"A"),
            job("b", 100, b"B"),
            job("c", 200, b"C"),
        ])
        .await?;
    // A repeat moves "b" past "c"; "c" fires for the last time.
    store
        .commit(vec![
            job("b", 400, b"B2"),
            Op::Unschedule { id: Arc::from("c") },
        ])
        .await?;
    let want = vec![
        (300, "a".to_string(), b"A".to_vec()),
        (400, "b".to_string(), b"B2".to_vec()),
    ];
    assert_eq!(jobs(&store, None, 10).await, want);
    assert_eq!(jobs(&store, Some((300, "a")), 10).await, want[1..]);
    assert_eq!(jobs(&store, None, 1).await, want[..1]);
    let one = store.read_jobs(JobQuery::Id(Arc::from("b"))).await?;
    assert_eq!(one.first().map(|j| j.at), Some(400));
    assert!(
        store
            .read_jobs(JobQuery::Id(Arc::from("c")))
            .await?
            .is_empty()
    );
    // A crash: the journal is replayed.
    drop(store);
    let (store, _) = reopen(&path, &Options::default())?;
    assert_eq!(jobs(&store, None, 10).await, want);
    // A clean close checkpoints them into redb.
    store.close();
    let (store, _) = Store::open(&path)?;
    assert_eq!(jobs(&store, None, 10).await, want);
    store
        .commit(vec![Op::Unschedule { id: Arc::from("a") }])
        .await?;
    assert_eq!(jobs(&store, None, 10).await, want[1..]);
    store.close();
    let (store, _) = Store::open(&path)?;
    assert_eq!(jobs(&store, None, 10).await, want[1..]);
    store.close();
    Ok(())
}
