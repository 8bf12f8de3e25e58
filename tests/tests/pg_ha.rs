//! Master/slave with `--ha jdbc`: two members with data directories of their own share a
//! PostgreSQL store and elect their master through its lease row. Under a receipted load of
//! 4 producers and 4 consumers following the master through `failover:(...)`: a SIGKILL of the
//! master, and the database stopped and started again, lose no confirmed message, and no two
//! members answer master at once. Also the ready lines, a stepdown (what `mqctl failover
//! trigger` asks for; the `lease` of both members' broker info names the new master), the
//! start-up checks of the options, and `mqctl` making JDBC pairs whose
//! `failover status` shows the lease row's holder and end before and after a failover, and
//! whose `failover trigger` report names the lease the new master took.
//!
//! Keep-alive 500 ms, lease (`lock-acquire-sleep-interval`) 2000 ms: a master that cannot
//! renew stops 750 ms before its lease can end.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mq_shared::api::{BrokerInfo, Role};
use mq_tests::load::Load;
use mq_tests::postgres::PgServer;
use mq_tests::*;

const KEEP_ALIVE: &str = "500";
const LEASE: &str = "2000";

/// A member of the group on `server`, with a data directory of its own.
fn jdbc_member(name: &str, server: &PgServer, dir: &std::path::Path) -> NodeOpts {
    member(name, dir).args([
        "--ha".to_string(),
        "jdbc".to_string(),
        "--store".to_string(),
        server.url(),
        "--store-password-file".to_string(),
        server.password_file().display().to_string(),
        "--lock-keep-alive-period".to_string(),
        KEEP_ALIVE.to_string(),
        "--lock-acquire-sleep-interval".to_string(),
        LEASE.to_string(),
        // Every member's clock is the database's here: the check passes.
        "--max-allowable-diff-from-db-time".to_string(),
        "5000".to_string(),
    ])
}

/// Asks every member for its role, round after round, and records each round in which two
/// answered master with overlapping request windows.
struct Watch {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(u64, Vec<String>)>,
}

impl Watch {
    fn start(admins: Vec<String>) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .expect("http client");
            let mut rounds = 0;
            let mut violations = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                let asks: Vec<_> = admins
                    .iter()
                    .map(|a| {
                        let (http, url) = (http.clone(), format!("{a}/api/v1/broker"));
                        tokio::spawn(async move {
                            let sent = Instant::now();
                            let info: Option<BrokerInfo> = match http.get(url).send().await {
                                Ok(r) => r.json().await.ok(),
                                Err(_) => None,
                            };
                            (sent, Instant::now(), info)
                        })
                    })
                    .collect();
                let mut claims = Vec::new();
                for a in asks {
                    if let Ok((s, r, Some(i))) = a.await
                        && i.role == Role::Master
                    {
                        claims.push((s, r, i.name));
                    }
                }
                for (i, a) in claims.iter().enumerate() {
                    for b in &claims[i + 1..] {
                        if a.0 <= b.1 && b.0 <= a.1 {
                            violations.push(format!("{} and {} both answered master", a.2, b.2));
                        }
                    }
                }
                rounds += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (rounds, violations)
        });
        Watch { stop, task }
    }

    async fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("watch task")
    }
}

/// Waits until one of `nodes` answers master; returns its index.
async fn wait_master(nodes: &mut [&mut Node], timeout: Duration) -> usize {
    let mut master = None;
    wait_for_async(timeout, async || {
        for (i, n) in nodes.iter().enumerate() {
            if n.admin().role().await == Role::Master {
                master = Some(i);
                return true;
            }
        }
        false
    })
    .await;
    master.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_of_the_master_under_load_loses_no_confirmed_message_and_never_two_masters() {
    let server = PgServer::start();
    let (da, db) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let a_opts = jdbc_member("pgha-a", &server, da.path());
    let b_opts = jdbc_member("pgha-b", &server, db.path());
    let uri = failover_uri(&[a_opts.transport.clone(), b_opts.transport.clone()]);
    let mut a = Node::start(a_opts);
    let mut b = Node::start(b_opts);
    assert_eq!(a.ready().role, Role::Master);
    assert_eq!(b.ready().role, Role::Slave);
    assert!(b.ready().transports.is_empty(), "a slave serves nothing");
    let watch = Watch::start(vec![a.admin_url(), b.admin_url()]);
    let load = Load::start(&uri, 4, 4);
    load.wait_confirmed(1_000, Duration::from_secs(60)).await;
    let before = load.confirmed.load(Ordering::Relaxed);
    a.kill();
    // The slave takes over once the dead master's lease has ended.
    b.wait_event(Role::Master, Duration::from_millis(2000) + SOON);
    load.wait_confirmed(before + 1_000, Duration::from_secs(60))
        .await;
    let result = load.finish(Duration::from_secs(60)).await;
    let (rounds, violations) = watch.finish().await;
    assert!(violations.is_empty(), "{violations:?}");
    assert!(rounds > 10, "the watch ran ({rounds} rounds)");
    result.assert_no_loss();
    result.assert_redeliveries_flagged();
    // The killed member comes back as slave.
    a.restart();
    assert_eq!(a.role(), Role::Slave);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_database_stopped_under_load_stops_the_master_and_service_resumes_without_loss() {
    let mut server = PgServer::start();
    let (da, db) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let a_opts = jdbc_member("pgdb-a", &server, da.path());
    let b_opts = jdbc_member("pgdb-b", &server, db.path());
    let uri = failover_uri(&[a_opts.transport.clone(), b_opts.transport.clone()]);
    let mut a = Node::start(a_opts);
    let mut b = Node::start(b_opts);
    assert_eq!(a.role(), Role::Master);
    let watch = Watch::start(vec![a.admin_url(), b.admin_url()]);
    let load = Load::start(&uri, 4, 4);
    load.wait_confirmed(1_000, Duration::from_secs(60)).await;
    server.stop_immediate();
    // The master cannot renew: it stops serving before its lease could end.
    let stopped = Instant::now();
    wait_for_async(Duration::from_millis(2000) + SOON, async || {
        a.admin().role().await == Role::Slave
    })
    .await;
    assert!(
        stopped.elapsed() < Duration::from_millis(2000) + SOON,
        "the master stopped serving after {:?}",
        stopped.elapsed()
    );
    // Nothing is confirmed while the database is away.
    let during = load.confirmed.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(load.confirmed.load(Ordering::Relaxed), during);
    assert_eq!(b.admin().role().await, Role::Slave);
    server.start_again();
    wait_master(&mut [&mut a, &mut b], Duration::from_secs(30)).await;
    load.wait_confirmed(during + 1_000, Duration::from_secs(60))
        .await;
    let result = load.finish(Duration::from_secs(60)).await;
    let (_, violations) = watch.finish().await;
    assert!(violations.is_empty(), "{violations:?}");
    result.assert_no_loss();
    result.assert_redeliveries_flagged();
}

#[tokio::test]
async fn a_stepdown_moves_the_master_to_the_other_member_with_its_messages() {
    let server = PgServer::start();
    let (da, db) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let mut a = Node::start(jdbc_member("pgfo-a", &server, da.path()));
    let mut b = Node::start(jdbc_member("pgfo-b", &server, db.path()));
    let mut p = connect(&a.stomp_addr()).await;
    send_persistent(&mut p, "/queue/moved", "kept").await;
    drop(p);
    // Stepdown: the master releases the lease, the slave takes it at its next try.
    let r = a.admin().post("/api/v1/ha/stepdown", None).await;
    assert!(r.status < 300, "stepdown: {r:?}");
    b.wait_event(Role::Master, Duration::from_millis(2000) + SOON);
    wait_for_async(SOON, async || a.admin().role().await == Role::Slave).await;
    let mut c = connect(&b.stomp_addr()).await;
    subscribe(&mut c, "/queue/moved", "s", client::AckMode::Auto).await;
    assert_eq!(body_str(&recv(&mut c, SOON).await), "kept");
    // The lease row names the master, and both members' broker info says so.
    assert_eq!(
        server.psql("mq", "SELECT holder FROM mq_lock WHERE id = 1"),
        "pgfo-b"
    );
    for n in [&a, &b] {
        let info: BrokerInfo = n.admin().get_ok("/api/v1/broker").await;
        let lease = info.lease.expect("the lease in the broker info");
        assert_eq!(lease.holder.as_deref(), Some("pgfo-b"), "{}", info.name);
        assert_eq!(lease.keep_alive_ms, 500);
        assert!(
            lease.expires_at_ms.is_some_and(|t| t >= now_ms()),
            "{lease:?}"
        );
        assert_eq!(info.replication, None);
    }
    assert_eq!(a.refresh(), Role::Slave);
}

#[tokio::test]
async fn the_options_of_the_lease_are_checked_at_start() {
    let server = PgServer::start();
    let pw = server.password_file().display().to_string();
    let try_args = |name: &str, extra: &[&str]| {
        let mut args: Vec<String> = vec!["--ha".into(), "jdbc".into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        match Node::try_start(NodeOpts::new(name).args(args)) {
            Ok(_) => panic!("{name} started"),
            Err(f) => f.log,
        }
    };
    let log = try_args("pgopt-nostore", &[]);
    assert!(
        log.contains("ha: jdbc elects the master through the store's database"),
        "{log}"
    );
    let url = server.url();
    let log = try_args(
        "pgopt-timing",
        &[
            "--store",
            &url,
            "--store-password-file",
            &pw,
            "--lock-keep-alive-period",
            "1000",
            "--lock-acquire-sleep-interval",
            "1000",
        ],
    );
    assert!(
        log.contains("lock-acquire-sleep-interval (1000 ms) must be greater than lock-keep-alive-period (1000 ms)"),
        "{log}"
    );
    // The clock check is a lease option: refused without --ha jdbc.
    let log = match Node::try_start(
        NodeOpts::new("pgopt-diff").args(["--max-allowable-diff-from-db-time", "1000"]),
    ) {
        Ok(_) => panic!("started"),
        Err(f) => f.log,
    };
    assert!(log.contains("is only used with --ha jdbc"), "{log}");
}

fn signal(node: &Node, sig: rustix::process::Signal) {
    let pid = i32::try_from(node.pid())
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .expect("a node's pid");
    rustix::process::kill_process(pid, sig).expect("signal the node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_master_that_wakes_after_a_takeover_has_its_writes_refused() {
    let server = PgServer::start();
    let (da, db) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let a = Node::start(jdbc_member("pgfz-a", &server, da.path()));
    let mut b = Node::start(jdbc_member("pgfz-b", &server, db.path()));
    assert_eq!(a.role(), Role::Master);
    let mut p = connect(&a.stomp_addr()).await;
    send_persistent(&mut p, "/queue/fence", "before").await;
    // Frozen: no renewal, so its lease ends and the slave takes over.
    signal(&a, rustix::process::Signal::STOP);
    b.wait_event(Role::Master, Duration::from_millis(2000) + SOON);
    // A SEND waits in the frozen master's socket; it wakes believing it still serves.
    let id = p.next_receipt_id();
    let f = mq_tests::frame::Frame::new(mq_tests::frame::Command::Send)
        .with_header("destination", "/queue/fence")
        .with_header("persistent", "true")
        .with_header("receipt", id.as_str())
        .with_body("late-fenced");
    p.send_frame(f).await.expect("SEND written");
    signal(&a, rustix::process::Signal::CONT);
    // No RECEIPT: the fence refuses its commit (ERROR), or it stops serving first.
    let r = tokio::time::timeout(SOON, p.wait_receipt(&id)).await;
    assert!(
        !matches!(r, Ok(Ok(()))),
        "a deposed master confirmed a write"
    );
    wait_for_async(SOON, async || a.admin().role().await == Role::Slave).await;
    assert_eq!(
        server.psql(
            "mq",
            "SELECT count(*) FROM mq_msgs WHERE position('late-fenced'::bytea IN msg) > 0"
        ),
        "0",
        "nothing of the deposed master's write is stored"
    );
    assert_eq!(b.admin().depth("fence").await, 1);
}

#[test]
fn mqctl_makes_jdbc_pairs_on_a_database_per_broker_and_fails_them_over() {
    use mq_shared::ctl::{FailoverReport, FailoverStatus};
    let server = PgServer::start();
    server.create_database("b1");
    server.create_database("b2");
    let home = mq_tests::cli::CliHome::new();
    let pw = server.password_file().display().to_string();
    // One database per broker.
    let run = home
        .run(&[
            "cluster",
            "create",
            "one",
            "--ha",
            "jdbc",
            "--nodes",
            "2",
            "--store",
            &server.url_for("b1"),
        ])
        .expect_code(2);
    assert!(run.stderr.contains("one --store"), "{}", run.stderr);
    let (b1, b2) = (server.url_for("b1"), server.url_for("b2"));
    let pair = home.create(
        "jdbc",
        &[
            "--ha",
            "jdbc",
            "--nodes",
            "2",
            "--topology",
            "none",
            "--store",
            &b1,
            "--store",
            &b2,
            "--store-password-file",
            &pw,
        ],
    );
    let asked = now_ms();
    let status: FailoverStatus = home
        .run(&["failover", "status", pair.name(), "-o", "json"])
        .json();
    for g in &status.groups {
        let master = format!("{}a", g.group);
        assert_eq!(g.master.as_deref(), Some(master.as_str()));
        assert_eq!(g.slaves, [format!("{}b", g.group)]);
        // The lease row: its holder, held past the moment we asked (database and test share
        // the host's clock), by at most one lease (3000 ms by default with --ha jdbc).
        let lease = g.lease.as_ref().expect("the group's lease");
        assert_eq!(lease.holder.as_deref(), Some(master.as_str()));
        assert_eq!(lease.keep_alive_ms, 1000);
        let ends = lease.expires_at_ms.expect("when the lease ends");
        assert!(
            ends >= asked && ends <= now_ms() + 3_100,
            "the lease ends at {ends}, asked at {asked}"
        );
        assert_eq!((g.epoch, &g.replicas, &g.lock), (None, &None, &None));
    }
    let table = home
        .run(&["failover", "status", pair.name(), "-o", "table"])
        .expect_code(0);
    let rows: Vec<&str> = table.stdout.lines().collect();
    assert!(
        rows[1].contains("lease holder") && rows[1].contains("lease ends"),
        "{}",
        table.stdout
    );
    assert!(
        rows.iter()
            .any(|r| r.contains("node1a") && r.contains(" in ")),
        "the lease ends in a moment: {}",
        table.stdout
    );
    // Each pair elects its master in its own database.
    assert_eq!(
        server.psql("b1", "SELECT holder FROM mq_lock WHERE id = 1"),
        "node1a"
    );
    assert_eq!(
        server.psql("b2", "SELECT holder FROM mq_lock WHERE id = 1"),
        "node2a"
    );
    let triggered = now_ms();
    let report: FailoverReport = home.run_json(&[
        "failover",
        "trigger",
        pair.name(),
        "--broker",
        "node1",
        "--mode",
        "kill",
        "--verify",
        "200",
    ]);
    assert_eq!(
        (report.old_master.as_str(), report.new_master.as_str()),
        ("node1a", "node1b")
    );
    let verify = report.verify.expect("verify counts");
    assert_eq!((verify.sent, verify.lost), (200, 0));
    // The report names the lease the new master took, held past the takeover by at most one
    // lease; a JDBC group has no epochs.
    let lease = report.lease.as_ref().expect("the new lease in the report");
    assert_eq!(lease.holder.as_deref(), Some("node1b"));
    let ends = lease.expires_at_ms.expect("when the new lease ends");
    assert!(
        ends >= triggered && ends <= now_ms() + 3_100,
        "the new lease ends at {ends}, the trigger at {triggered}"
    );
    assert_eq!((report.old_epoch, report.new_epoch), (None, None));
    assert_eq!(
        server.psql("b1", "SELECT holder FROM mq_lock WHERE id = 1"),
        "node1b"
    );
    // The survivor reports the lease it took.
    let status: FailoverStatus = home
        .run(&["failover", "status", pair.name(), "-o", "json"])
        .expect_code(3)
        .json();
    let lease = status.groups[0].lease.as_ref().expect("node1's lease");
    assert_eq!(lease.holder.as_deref(), Some("node1b"));
}

/// Now by the test's clock, ms since the Unix epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The pid of a cluster's own PostgreSQL while it runs (line 1 of `postmaster.pid`).
fn postmaster_pid(cluster_dir: &std::path::Path) -> Option<u32> {
    let text = std::fs::read_to_string(cluster_dir.join("postgres/data/postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

#[test]
fn without_store_mqctl_runs_a_local_postgresql_in_the_cluster_folder() {
    use mq_shared::ctl::{FailoverReport, FailoverStatus};
    use std::os::unix::fs::PermissionsExt;
    let home = mq_tests::cli::CliHome::new();
    // Run as root, mqctl runs PostgreSQL as the user postgres, which must enter the folder.
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o711))
        .expect("chmod the home");
    let pair = home.create(
        "local",
        &["--ha", "jdbc", "--nodes", "1", "--topology", "none"],
    );
    let dir = home.cluster_dir(pair.name());
    let pid = postmaster_pid(&dir).expect("the cluster's PostgreSQL runs");
    let status: FailoverStatus = home
        .run(&["failover", "status", pair.name(), "-o", "json"])
        .json();
    assert_eq!(status.groups[0].master.as_deref(), Some("node1a"));
    assert_eq!(status.groups[0].slaves, ["node1b"]);
    // Its password is a file of the cluster's, never in the manifest's URLs.
    let manifest = std::fs::read_to_string(dir.join("cluster.json")).expect("manifest");
    let password = std::fs::read_to_string(dir.join("postgres.password")).expect("password file");
    assert!(!manifest.contains(password.trim()), "{manifest}");
    let report: FailoverReport = home.run_json(&[
        "failover",
        "trigger",
        pair.name(),
        "--mode",
        "kill",
        "--verify",
        "100",
    ]);
    assert_eq!(report.new_master, "node1b");
    assert_eq!(report.verify.expect("verify").lost, 0);
    // Stop takes the server down after the nodes; start brings both back.
    home.run(&["cluster", "stop", pair.name()]).expect_code(0);
    assert!(
        postmaster_pid(&dir).is_none(),
        "PostgreSQL still runs after stop"
    );
    home.run(&["cluster", "start", pair.name()]).expect_code(0);
    let pid2 = postmaster_pid(&dir).expect("PostgreSQL started again");
    assert!(poll_until(SOON, || {
        let s: FailoverStatus = home
            .run(&["failover", "status", pair.name(), "-o", "json"])
            .json();
        s.groups[0].master.is_some()
    }));
    // Destroy stops it and removes the folder.
    home.run(&["cluster", "destroy", pair.name(), "--yes"])
        .expect_code(0);
    assert!(!dir.exists());
    let alive = |p: u32| std::path::Path::new(&format!("/proc/{p}")).exists();
    assert!(
        poll_until(SOON, || !alive(pid2)),
        "PostgreSQL {pid2} still runs"
    );
    assert_ne!(pid, 0);
}
