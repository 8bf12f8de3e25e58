//! The store on a disk that fills up: a small tmpfs is mounted (the harness's
//! [`mq_tests::tmpfs`]; the tests run as root and are skipped, saying why, only where mounting
//! is not permitted), filled, and the store must keep every message it confirmed across a crash.

use std::error::Error;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mq_tests::tmpfs::{Tmpfs, fill_leaving};
use mqnode::store::{DEFAULT_RANK, Loaded, Op, PRIORITIES, Store, StoreError};

type TestResult = Result<(), Box<dyn Error>>;

fn put(seq: u64, data: Vec<u8>) -> Op {
    Op::Put {
        queue: Arc::from("orders"),
        rank: DEFAULT_RANK,
        seq,
        data: Bytes::from(data),
        dedup: None,
    }
}

/// Opens the store once the writer thread of a dropped handle has let go of it.
fn reopen(path: &Path) -> Result<Store, StoreError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Store::open(path) {
            Err(StoreError::AlreadyOpen { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            r => return r.map(|(store, _)| store),
        }
    }
}

/// Every message of queue `orders`.
async fn orders(store: &Store) -> Result<Vec<Loaded>, StoreError> {
    let from_the_start = [0; PRIORITIES];
    store
        .read(Arc::from("orders"), from_the_start, usize::MAX, u64::MAX)
        .await
}

#[tokio::test]
async fn a_receipted_message_after_a_disk_full_error_survives_a_crash() -> TestResult {
    let Some(fs) = Tmpfs::mount("24m") else {
        return Ok(());
    };
    let path = fs.path().join("store.redb");
    let (store, _) = Store::open(&path)?;
    assert!(orders(&store).await?.is_empty());
    let filler = fs.path().join("filler");
    fill_leaving(&filler, 5 * 1024 * 1024 / 2)?;

    // 6 MiB do not fit in the 2.5 MiB left: the sender is told.
    let big = store.commit(vec![put(1, vec![1u8; 6 * 1024 * 1024])]).await;
    assert!(
        matches!(big, Err(StoreError::Write(_))),
        "a write the disk has no room for fails: {big:?}"
    );

    // Space comes back; a small message is confirmed.
    std::fs::remove_file(&filler)?;
    store.commit(vec![put(2, b"small".to_vec())]).await?;

    // A crash: the handle goes without a close, so nothing is checkpointed into redb and
    // only the journal holds the confirmed message.
    drop(store);
    let store = reopen(&path)?;
    let recovered = orders(&store).await?;
    let seqs: Vec<u64> = recovered.iter().map(|r| r.seq).collect();
    assert_eq!(
        seqs,
        vec![2],
        "the confirmed message is back, the refused one is not"
    );
    assert_eq!(&recovered[0].data[..], b"small");
    store.close();
    Ok(())
}
