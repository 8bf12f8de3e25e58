//! Failover under load: producers and consumers follow the master through `failover:(...)`,
//! and every message confirmed by a RECEIPT is consumed after the master is killed.

use std::time::Duration;

use mq_shared::api::Role;
use mq_tests::load::{Load, LoadResult};
use mq_tests::*;

/// Starts a master and a slave on one data dir, runs 4 producers and 4 consumers through
/// failover, kills the master with SIGKILL mid-stream, and lets the load run on the new master.
async fn kill_under_load() -> LoadResult {
    let shared = tempfile::tempdir().expect("tempdir");
    let a_opts = member("fo-a", shared.path());
    let b_opts = member("fo-b", shared.path());
    let uri = failover_uri(&[a_opts.transport.clone(), b_opts.transport.clone()]);
    let mut a = Node::start(a_opts);
    let mut b = Node::start(b_opts);
    assert_eq!((a.role(), b.role()), (Role::Master, Role::Slave));

    let load = Load::start(&uri, 4, 4);
    load.wait_confirmed(2_000, Duration::from_secs(60)).await;
    let before = load.confirmed.load(std::sync::atomic::Ordering::Relaxed);
    a.kill();
    b.wait_event(Role::Master, SOON);
    // The load goes on against the new master.
    load.wait_confirmed(before + 2_000, Duration::from_secs(60))
        .await;
    let result = load.finish(Duration::from_secs(60)).await;
    assert!(
        result.reconnects >= 8,
        "every client reconnected: {}",
        result.reconnects
    );
    result
}

/// Zero loss: every message confirmed by a RECEIPT is consumed after the kill. A message
/// delivered (or acknowledged, with the ack not yet committed) before the kill comes back from
/// the store after it; such a second delivery must say `redelivered:true`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_of_the_master_under_load_loses_no_confirmed_message() {
    let result = kill_under_load().await;
    result.assert_no_loss();
    result.assert_redeliveries_flagged();
    eprintln!(
        "confirmed {}, delivered {}, delivered twice or more {}",
        result.confirmed.len(),
        result.deliveries.len(),
        result.duplicates().len()
    );
}
