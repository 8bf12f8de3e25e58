//! The store lock decides the master: one master per data directory however the members are
//! started, stopped, killed or tampered with, and a clear error and exit when the data
//! directory cannot be used.

use mq_shared::api::Role;
use mq_tests::client::AckMode;
use mq_tests::ha::{MasterWatch, lock_holder_pid, lock_record};
use mq_tests::*;

/// Waits (bounded) for a line in the node's log: stderr is read by another thread, so a log
/// line can trail the ready event printed on stdout. On a timeout the harness prints the log.
fn expect_log(node: &Node, text: &str) {
    wait_for(SOON, || node.log().contains(text));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_store_are_one_master_and_one_slave() {
    let shared = tempfile::tempdir().expect("tempdir");
    let a = Node::start(member("lk-a", shared.path()));
    let b = Node::start(member("lk-b", shared.path()));
    assert_eq!(a.role(), Role::Master);
    assert_eq!(b.role(), Role::Slave);
    assert_eq!(a.admin().role().await, Role::Master);
    assert_eq!(b.admin().role().await, Role::Slave);
    assert_eq!(b.admin().get("/readyz").await.status, 503);
    assert_eq!(a.admin().get("/readyz").await.status, 200);
    // The slave opened no transport: nothing listens on its port.
    let b_port = b.ready().transports.first().cloned();
    assert_eq!(b_port, None, "a slave reports no transports");
    // The kernel and the record agree on the holder.
    assert_eq!(lock_holder_pid(shared.path()), Some(a.pid()));
    let record = lock_record(shared.path()).expect("lock record");
    assert_eq!((record.holder.as_str(), record.pid), ("lk-a", a.pid()));
    // A stepdown request to a slave is refused.
    assert_eq!(
        b.admin().post("/api/v1/ha/stepdown", None).await.status,
        409
    );
    expect_log(&b, "store is locked by another node; waiting as slave");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_member_started_first_is_master_whatever_its_name() {
    // "b", meant as the slave, starts before "a" exists: it takes the lock and serves.
    let shared = tempfile::tempdir().expect("tempdir");
    let b = Node::start(member("first-b", shared.path()));
    assert_eq!(b.role(), Role::Master);
    expect_log(&b, "store lock taken; starting as master");
    let a = Node::start(member("first-a", shared.path()));
    assert_eq!(a.role(), Role::Slave);
    expect_log(&a, "waiting as slave");
    let mut c = connect(&b.stomp_addr()).await;
    send_persistent(&mut c, "/queue/first", "served by b").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_take_over_one_after_another() {
    let shared = tempfile::tempdir().expect("tempdir");
    let mut nodes = [
        Node::start(member("three-a", shared.path())),
        Node::start(member("three-b", shared.path())),
        Node::start(member("three-c", shared.path())),
    ];
    assert_eq!(
        nodes.iter().map(Node::role).collect::<Vec<_>>(),
        [Role::Master, Role::Slave, Role::Slave]
    );
    let mut c = connect(&nodes[0].stomp_addr()).await;
    for i in 0..20 {
        send_persistent(&mut c, "/queue/three", format!("m{i}")).await;
    }
    drop(c);

    // Two rounds: kill the master, exactly one of the others takes over with every message.
    let mut expected_depth = 20;
    let mut master = 0;
    let mut dead = Vec::new();
    for round in 0..2 {
        nodes[master].kill();
        dead.push(master);
        let others: Vec<(usize, Admin)> = nodes
            .iter_mut()
            .enumerate()
            .filter_map(|(i, n)| (!dead.contains(&i) && n.is_running()).then_some((i, n)))
            .map(|(i, n)| (i, n.admin()))
            .collect();
        let mut winner = None;
        wait_for_async(SOON, async || {
            for (i, admin) in &others {
                if admin.get("/readyz").await.status == 200 {
                    winner = Some(*i);
                    return true;
                }
            }
            false
        })
        .await;
        let w = winner.expect("a member took over");
        nodes[w].wait_event(Role::Master, SOON);
        for (i, n) in nodes.iter().enumerate() {
            if !dead.contains(&i) && i != w {
                assert_eq!(n.admin().role().await, Role::Slave, "round {round}");
            }
        }
        assert_eq!(lock_holder_pid(shared.path()), Some(nodes[w].pid()));
        let admin = nodes[w].admin();
        assert_eq!(admin.depth("three").await, expected_depth, "round {round}");
        let mut c = connect(&nodes[w].stomp_addr()).await;
        subscribe(&mut c, "/queue/three", "s", AckMode::ClientIndividual).await;
        let m = recv(&mut c, SOON).await;
        ack_receipt(&mut c, &m).await;
        expected_depth -= 1;
        wait_for_async(SOON, async || admin.depth("three").await == expected_depth).await;
        drop(c);
        master = w;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_slave_does_not_disturb_the_master() {
    let shared = tempfile::tempdir().expect("tempdir");
    let a = Node::start(member("ks-a", shared.path()));
    let mut b = Node::start(member("ks-b", shared.path()));
    let mut c = connect(&a.stomp_addr()).await;
    send_persistent(&mut c, "/queue/ks", "before").await;
    b.kill();
    send_persistent(&mut c, "/queue/ks", "after").await;
    assert_eq!(a.admin().role().await, Role::Master);
    assert_eq!(a.admin().depth("ks").await, 2);
    assert_eq!(lock_holder_pid(shared.path()), Some(a.pid()));
    // Started again, it is a slave again.
    b.restart();
    assert_eq!(b.role(), Role::Slave);
    assert_eq!(b.admin().role().await, Role::Slave);
}

/// Replacing `DATA/lock` under a running master lets a slave lock the new file at once. The
/// master notices within one lockKeepAlivePeriod and demotes itself; the slave waits that long
/// (the new file was not handed over) and for the store to be closed, so at no instant do both
/// serve.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replaced_lock_file_demotes_the_master_before_the_slave_serves() {
    for how in ["replace", "remove"] {
        let shared = tempfile::tempdir().expect("tempdir");
        let mut a = Node::start(member(&format!("rl-{how}-a"), shared.path()));
        let mut b = Node::start(member(&format!("rl-{how}-b"), shared.path()));
        let mut c = connect(&a.stomp_addr()).await;
        for i in 0..10 {
            send_persistent(&mut c, "/queue/rl", format!("m{i}")).await;
        }
        drop(c);
        let watch = MasterWatch::start(vec![a.admin_url(), b.admin_url()], shared.path().into());
        let lock = shared.path().join("lock");
        match how {
            "replace" => {
                let copy = shared.path().join("lock.new");
                std::fs::copy(&lock, &copy).expect("copy the lock file");
                std::fs::rename(&copy, &lock).expect("replace the lock file");
            }
            _ => std::fs::remove_file(&lock).expect("remove the lock file"),
        }
        b.wait_event(Role::Master, SOON);
        a.wait_event(Role::Slave, SOON);
        let report = watch.finish().await;
        assert!(
            report.violations.is_empty(),
            "{how}: {:?}",
            report.violations
        );
        assert!(report.rounds > 10, "{how}: only {} rounds", report.rounds);
        expect_log(
            &a,
            "the store lock file was removed or replaced; demoting to slave",
        );
        expect_log(&b, "the lock file is new or was replaced");
        assert_eq!(lock_holder_pid(shared.path()), Some(b.pid()));
        assert_eq!(a.admin().role().await, Role::Slave);
        assert_eq!(b.admin().depth("rl").await, 10, "{how}");
    }
}

#[test]
fn an_unusable_data_dir_is_one_clear_error_and_a_non_zero_exit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").expect("write");
    let store_dir = dir.path().join("store-is-a-dir");
    std::fs::create_dir_all(store_dir.join("store.redb")).expect("mkdir");
    let cases = [
        (
            "/dev/null/x".to_string(),
            "cannot use data directory /dev/null/x: Not a directory".to_string(),
        ),
        (
            file.display().to_string(),
            format!(
                "cannot use data directory {}: it exists and is not a directory",
                file.display()
            ),
        ),
        (
            // The admin token is made first (a slave serves its admin API too).
            "/proc/self".to_string(),
            "cannot write the admin token file /proc/self/admin.token".to_string(),
        ),
        (
            store_dir.display().to_string(),
            format!(
                "cannot open store {}",
                store_dir.join("store.redb").display()
            ),
        ),
    ];
    for (data, want) in cases {
        let out = run_mqnode_on("bad", &data, "tcp://127.0.0.1:0", &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "--data {data}: {stderr}");
        assert!(
            stderr.contains(&want),
            "--data {data}: want {want:?} in:\n{stderr}"
        );
        // Each line says it once, not once per layer of the error chain.
        for line in stderr.lines() {
            assert!(line.matches(&want).count() <= 1, "{line}");
        }
        assert!(out.stdout.is_empty(), "no ready line: {:?}", out.stdout);
    }
}
