//! The PostgreSQL store (`--store postgres://...`, `--store-password-file`) against a real
//! server of the test's own: receipted persistent messages survive SIGKILL, a backlog past the
//! memory window comes back complete and in order, durable subscriptions and scheduled
//! messages survive a restart, concurrent sends share transactions, and a bad URL, a wrong
//! password or a missing database stop the node at start with one sentence.

use std::time::Duration;

use mq_tests::client::AckMode;
use mq_tests::postgres::PgServer;
use mq_tests::*;

/// A node whose store is `server`'s database `mq`.
fn pg_node(name: &str, server: &PgServer, extra: &[&str]) -> NodeOpts {
    let mut args = vec![
        "--store".to_string(),
        server.url(),
        "--store-password-file".to_string(),
        server.password_file().display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    NodeOpts::new(name).args(args)
}

async fn commits(node: &Node) -> u64 {
    let b: api::BrokerInfo = node.admin().get_ok("/api/v1/broker").await;
    b.store.commits
}

fn rows(server: &PgServer, sql: &str) -> u64 {
    server.psql("mq", sql).trim().parse().unwrap_or(u64::MAX)
}

#[tokio::test]
async fn receipted_persistent_messages_survive_sigkill_in_order() {
    const N: usize = 2_000;
    let server = PgServer::start();
    let mut node = Node::start(pg_node("pg-crash", &server, &[]));
    let addr = node.stomp_addr();
    let mut p = connect(&addr).await;
    send_numbered(&mut p, "/queue/durable", 0..N, 512, 100).await;
    // Every receipted message is a row in the database.
    assert_eq!(rows(&server, "SELECT count(*) FROM mq_msgs"), N as u64);
    node.kill();
    node.restart();
    let admin = node.admin();
    assert_eq!(admin.depth("durable").await, N as u64);
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/durable", "s", AckMode::Auto).await;
    for m in recv_numbered(&mut c, N, 512).await {
        // Recovered after a crash: it may have been delivered before.
        assert_eq!(m.header("redelivered"), Some("true"));
    }
    expect_nothing(&mut c, QUIET).await;
    wait_for_async(SOON, async || admin.depth("durable").await == 0).await;
    // Acknowledged messages leave the database.
    wait_for(SOON, || rows(&server, "SELECT count(*) FROM mq_msgs") == 0);
}

#[tokio::test]
async fn concurrent_sends_share_transactions_and_each_receipt_follows_its_commit() {
    const PRODUCERS: usize = 8;
    const EACH: usize = 250;
    let server = PgServer::start();
    let mut node = Node::start(pg_node("pg-group", &server, &[]));
    let addr = node.stomp_addr();
    let before = commits(&node).await;
    let mut tasks = Vec::new();
    for t in 0..PRODUCERS {
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            let mut p = connect(&addr).await;
            send_numbered(&mut p, &format!("/queue/g{t}"), 0..EACH, 256, 50).await;
        }));
    }
    for t in tasks {
        t.await.expect("producer");
    }
    let commits = commits(&node).await - before;
    let total = (PRODUCERS * EACH) as u64;
    assert!(
        commits < total,
        "{total} sends took {commits} transactions: no group commit"
    );
    node.kill();
    node.restart();
    for t in 0..PRODUCERS {
        assert_eq!(node.admin().depth(&format!("g{t}")).await, EACH as u64);
    }
}

#[tokio::test]
async fn a_backlog_past_the_memory_window_comes_back_complete_and_in_order() {
    const N: usize = 4_000;
    let server = PgServer::start();
    let mut node = Node::start(pg_node("pg-backlog", &server, &["--memory-usage", "1MiB"]));
    let addr = node.stomp_addr();
    let mut p = connect(&addr).await;
    send_numbered(&mut p, "/queue/backlog", 0..N, 2048, 100).await;
    node.kill();
    node.restart();
    assert_eq!(node.admin().depth("backlog").await, N as u64);
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/backlog", "s", AckMode::Auto).await;
    recv_numbered(&mut c, N, 2048).await;
    expect_nothing(&mut c, QUIET).await;
}

#[tokio::test]
async fn a_durable_subscription_and_a_scheduled_message_survive_a_restart() {
    let server = PgServer::start();
    let mut node = Node::start(pg_node("pg-dur", &server, &[]));
    let addr = node.stomp_addr();
    offline_durable(&addr, "app", "/topic/orders", &[]).await;
    let mut p = connect(&addr).await;
    send_persistent_all(&mut p, "/topic/orders", (0..3).map(|i| format!("p{i}"))).await;
    send(
        &mut p,
        "/queue/later",
        "scheduled",
        &[("persistent", "true"), ("AMQ_SCHEDULED_DELAY", "2000")],
    )
    .await;
    drop(p);
    node.kill();
    node.restart();
    let mut c = durable_subscriber(&addr, "app", "/topic/orders", &[]).await;
    for i in 0..3 {
        let m = recv(&mut c, SOON).await;
        assert_eq!(body_str(&m), format!("p{i}"));
        ack_receipt(&mut c, &m).await;
    }
    expect_nothing(&mut c, QUIET).await;
    let mut s = connect(&addr).await;
    subscribe(&mut s, "/queue/later", "l", AckMode::Auto).await;
    let m = recv(&mut s, Duration::from_secs(2) + SOON).await;
    assert_eq!(body_str(&m), "scheduled");
    // A clean stop and start keeps the subscription too, with nothing left to deliver.
    node.terminate();
    node.restart();
    let mut c = durable_subscriber(&addr, "app", "/topic/orders", &[]).await;
    expect_nothing(&mut c, QUIET).await;
}

/// Starts a node that must fail; returns its output.
fn start_error(name: &str, args: Vec<String>) -> String {
    match Node::try_start(NodeOpts::new(name).args(args)) {
        Ok(_) => panic!("node {name} started"),
        Err(f) => {
            assert!(
                f.status.is_some_and(|s| !s.success()),
                "{name} did not exit with an error: {:?}\n{}",
                f.status,
                f.log
            );
            f.log
        }
    }
}

#[tokio::test]
async fn a_bad_url_a_wrong_password_or_a_missing_database_is_one_sentence_at_start() {
    let server = PgServer::start();
    let pw = server.password_file().display().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not-the-password\n").expect("write");
    let wrong = wrong.display().to_string();
    let arg = |url: &str, file: &str| {
        vec![
            "--store".to_string(),
            url.to_string(),
            "--store-password-file".to_string(),
            file.to_string(),
        ]
    };
    let log = start_error("pg-badurl", arg("mysql://mq@127.0.0.1:5432/mq", &pw));
    assert!(
        log.contains("store URL must start with postgres://"),
        "{log}"
    );
    let url_with_pw = format!("postgres://mq:s3cret@127.0.0.1:{}/mq", server.port());
    let log = start_error("pg-urlpw", arg(&url_with_pw, &pw));
    assert!(log.contains("must not contain a password"), "{log}");
    assert!(!log.contains("s3cret"), "{log}");
    let log = start_error("pg-wrongpw", arg(&server.url(), &wrong));
    assert!(log.contains("refused the password"), "{log}");
    assert!(!log.contains("not-the-password"), "{log}");
    let log = start_error("pg-nodb", arg(&server.url_for("nosuchdb"), &pw));
    assert!(
        log.contains("database \"nosuchdb\" does not exist"),
        "{log}"
    );
    assert!(!log.contains(server.password()), "{log}");
    let log = start_error(
        "pg-nofile",
        arg(
            &server.url(),
            &dir.path().join("absent").display().to_string(),
        ),
    );
    assert!(log.contains("cannot read the store password file"), "{log}");
}
