//! Planned switchovers: `POST /api/v1/ha/stepdown` under load, again and again, with a watcher
//! asserting through the admin API and the kernel's lock table that there is never more than
//! one master, and a final count asserting that no confirmed message was lost and that every
//! second delivery says `redelivered:true`.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mq_shared::api::Role;
use mq_tests::ha::{MasterWatch, lock_holder_pid, lock_record};
use mq_tests::load::Load;
use mq_tests::*;

const STEPDOWNS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 6)]
async fn twenty_stepdowns_under_load_alternate_masters_without_loss_or_two_masters() {
    let shared = tempfile::tempdir().expect("tempdir");
    let opts: Vec<NodeOpts> = ["sd-a", "sd-b", "sd-c"]
        .iter()
        .map(|n| member(n, shared.path()))
        .collect();
    let uri = failover_uri(&opts.iter().map(|o| o.transport.clone()).collect::<Vec<_>>());
    let nodes: Vec<Node> = opts.into_iter().map(Node::start).collect();
    let admins: Vec<Admin> = nodes.iter().map(Node::admin).collect();
    let watch = MasterWatch::start(
        nodes.iter().map(Node::admin_url).collect(),
        shared.path().into(),
    );
    let load = Load::start(&uri, 2, 2);
    load.wait_confirmed(200, Duration::from_secs(60)).await;

    let mut masters = Vec::new();
    for step in 0..STEPDOWNS {
        let old = master_of(&admins).await;
        let confirmed = load.confirmed.load(Ordering::Relaxed);
        let started = Instant::now();
        assert_eq!(
            admins[old].post("/api/v1/ha/stepdown", None).await.status,
            202,
            "step {step}"
        );
        let mut new = old;
        wait_for_async(SOON, async || {
            new = master_of_now(&admins).await.unwrap_or(old);
            new != old
        })
        .await;
        let took = started.elapsed();
        // The new master holds the lock, and its record names it.
        assert_eq!(
            lock_holder_pid(shared.path()),
            Some(nodes[new].pid()),
            "step {step}"
        );
        let record = lock_record(shared.path()).expect("lock record");
        assert_eq!(record.holder, nodes[new].name(), "step {step}");
        assert_eq!(record.pid, nodes[new].pid(), "step {step}");
        // The old one waits as a slave.
        assert_eq!(admins[old].role().await, Role::Slave, "step {step}");
        // And the load goes on through it.
        load.wait_confirmed(confirmed + 50, Duration::from_secs(30))
            .await;
        masters.push((nodes[new].name().to_string(), took.as_millis()));
    }
    let result = load.finish(Duration::from_secs(60)).await;
    let report = watch.finish().await;

    eprintln!(
        "masters after each stepdown (name, ms to a new master): {masters:?}; watch rounds {} ({} with a master); confirmed {}, duplicates {}",
        report.rounds,
        report.rounds_with_master,
        result.confirmed.len(),
        result.duplicates().len()
    );
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert!(
        report.rounds > 200,
        "the watcher ran only {} rounds",
        report.rounds
    );
    for pair in masters.windows(2) {
        assert_ne!(
            pair[0].0, pair[1].0,
            "each stepdown hands over to another member"
        );
    }
    result.assert_no_loss();
    result.assert_redeliveries_flagged();
}

/// The index of the member whose `/readyz` answers 200, waiting for one.
async fn master_of(admins: &[Admin]) -> usize {
    let mut found = None;
    wait_for_async(SOON, async || {
        found = master_of_now(admins).await;
        found.is_some()
    })
    .await;
    found.expect("a master")
}

async fn master_of_now(admins: &[Admin]) -> Option<usize> {
    for (i, a) in admins.iter().enumerate() {
        if a.get("/readyz").await.status == 200 {
            return Some(i);
        }
    }
    None
}
