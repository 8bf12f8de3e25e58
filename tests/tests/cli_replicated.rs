//! `mqctl cluster create --ha replicated` and `mqctl failover status|trigger` on the groups it
//! makes: real `mqnode` members with stores of their own, electing their master through a real
//! ZooKeeper server (the cluster's own, which mqctl runs from the installed package, or one
//! given with `--zookeeper`).
//!
//! - A cluster created without `--zookeeper` runs its own server under the cluster folder;
//!   `cluster status` shows one master and two slaves; the master's `replication.master` is
//!   itself; `failover status` shows its epoch (raised by every failover) and the other two
//!   as replicas streaming without lag; messages sent before a stepdown are received from the
//!   new master; `failover trigger` (stepdown, then kill, each with `--verify`) moves the
//!   master and loses nothing;
//!   `cluster destroy` leaves no process (node or ZooKeeper) behind.
//!   Each `failover trigger` reports the old master's epoch and the one it elected, by
//!   cluster name and by the members' admin URLs.
//! - With `--zookeeper HOST:PORT` mqctl runs no server; a `failover trigger` table shows both
//!   epochs at 80 columns; `cluster stop` and `cluster start` bring the group down and back
//!   with one master.

use std::path::Path;
use std::time::Duration;

use mq_shared::api::{BrokerInfo, Role};
use mq_shared::client::{AckMode, StompClient};
use mq_shared::ctl::{ClusterStatus, FailoverMode, FailoverReport, FailoverStatus, GroupStatus};
use mq_tests::cli::{CliHome, cmdline, is_running};
use mq_tests::poll_until;
use mq_tests::zookeeper::ZooKeeper;

/// How long a stepdown or kill may take to show in the members' roles (an election after a
/// 2000 ms session, on a busy machine).
const SETTLE: Duration = Duration::from_secs(30);

/// Live processes with an argument inside `dir` (nodes by `--data`, ZooKeeper by its
/// `zoo.cfg`).
fn processes_in(dir: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let dir = dir.to_string_lossy().into_owned();
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|pid| is_running(*pid) && cmdline(*pid).iter().any(|a| a.starts_with(&dir)))
        .collect()
}

/// Kills (by pid) whatever still runs inside the home when the test ends, ZooKeeper included.
struct Reaper<'a>(&'a CliHome);

impl Drop for Reaper<'_> {
    fn drop(&mut self) {
        for pid in processes_in(self.0.path()) {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        }
    }
}

fn cluster_status(home: &CliHome, name: &str) -> ClusterStatus {
    home.run(&["cluster", "status", name, "-o", "json"]).json()
}

/// `(master, slaves)` by name once exactly one member is master and the others slaves.
fn settled_roles(home: &CliHome, name: &str) -> (String, Vec<String>) {
    let mut seen = None;
    let ok = poll_until(SETTLE, || {
        let s = cluster_status(home, name);
        let masters: Vec<String> = s
            .nodes
            .iter()
            .filter(|n| n.role == Some(Role::Master))
            .map(|n| n.name.clone())
            .collect();
        let slaves: Vec<String> = s
            .nodes
            .iter()
            .filter(|n| n.role == Some(Role::Slave))
            .map(|n| n.name.clone())
            .collect();
        if masters.len() == 1 && masters.len() + slaves.len() == s.nodes.len() {
            seen = Some((masters[0].clone(), slaves));
            return true;
        }
        false
    });
    assert!(
        ok,
        "no single master among the members: {}",
        home.run(&["cluster", "status", name]).stdout
    );
    seen.unwrap_or_default()
}

/// `GET /api/v1/broker` of node `node` of cluster `name`.
async fn broker(home: &CliHome, name: &str, node: &str) -> BrokerInfo {
    let status = cluster_status(home, name);
    let admin = status
        .nodes
        .iter()
        .find(|n| n.name == node)
        .map(|n| n.admin.clone())
        .unwrap_or_else(|| panic!("no node {node} in {name}"));
    let token = std::fs::read_to_string(home.cluster_dir(name).join("admin.token"))
        .expect("the cluster's admin token");
    reqwest::Client::new()
        .get(format!("{admin}/api/v1/broker"))
        .bearer_auth(token.trim())
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("broker info")
        .json()
        .await
        .expect("broker info JSON")
}

/// `failover status` of a one-group cluster once its master lists exactly `followers` as
/// replicas, all streaming with no lag.
fn streaming(home: &CliHome, name: &str, followers: &[String]) -> GroupStatus {
    let mut last = None;
    let ok = poll_until(SETTLE, || {
        let run = home.run(&["failover", "status", name, "-o", "json"]);
        if run.code != 0 {
            return false;
        }
        let status: FailoverStatus = run.json();
        let Some(group) = status.groups.into_iter().next() else {
            return false;
        };
        let mut names: Vec<&str> = group
            .replicas
            .iter()
            .flatten()
            .filter(|r| r.state == "streaming" && r.lag_records == 0)
            .map(|r| r.name.as_str())
            .collect();
        names.sort_unstable();
        let mut want: Vec<&str> = followers.iter().map(String::as_str).collect();
        want.sort_unstable();
        let done = names == want && group.replicas.as_ref().map(Vec::len) == Some(want.len());
        last = Some(group);
        done
    });
    assert!(ok, "not every follower streams without lag: {last:?}");
    last.unwrap_or_else(|| panic!("no failover status of {name}"))
}

/// The header and the first row of a one-row table, cell by cell.
fn table_row(text: &str) -> (Vec<String>, Vec<String>) {
    let cells = |line: &str| -> Vec<String> {
        line.split(['│', '┆'])
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect()
    };
    let lines: Vec<&str> = text.lines().collect();
    match lines[..] {
        [_, header, _, row, ..] => (cells(header), cells(row)),
        _ => panic!("not a one-row table:\n{text}"),
    }
}

fn transport(home: &CliHome, name: &str, node: &str) -> String {
    cluster_status(home, name)
        .nodes
        .into_iter()
        .find(|n| n.name == node)
        .map(|n| n.transport)
        .unwrap_or_else(|| panic!("no node {node} in {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicated_cluster_runs_its_own_zookeeper_fails_over_and_is_destroyed_without_a_trace() {
    let home = CliHome::new();
    let _reaper = Reaper(&home);
    let rep = home.create("rep", &["--nodes", "1", "--ha", "replicated"]);
    let dir = home.cluster_dir(rep.name());
    assert!(dir.join("zookeeper").join("zoo.cfg").is_file());
    assert!(
        processes_in(&dir.join("zookeeper"))
            .into_iter()
            .any(|pid| cmdline(pid)
                .iter()
                .any(|a| a.contains("ZooKeeperServerMain"))),
        "the cluster's ZooKeeper runs"
    );

    // One master, two slaves, each with a data dir of its own.
    let (master, slaves) = settled_roles(&home, rep.name());
    assert_eq!(slaves.len(), 2, "{slaves:?}");
    for n in ["node1a", "node1b", "node1c"] {
        assert!(
            dir.join(n).join("data").is_dir(),
            "{n} has its own data dir"
        );
    }
    let info = broker(&home, rep.name(), &master).await;
    let replication = info.replication.expect("replication on the master");
    assert_eq!(replication.master.as_deref(), Some(master.as_str()));
    assert!(replication.epoch > 0);
    // The master's epoch, and both followers streaming with nothing left to sync.
    let group = streaming(&home, rep.name(), &slaves);
    assert_eq!(group.master.as_deref(), Some(master.as_str()));
    assert_eq!(group.slaves.len(), 2);
    assert_eq!(group.lock, None, "a replicated group has no lock file");
    assert_eq!(group.lease, None);
    let first_epoch = group.epoch.expect("the group's epoch");
    assert_eq!(first_epoch, replication.epoch, "the master's epoch");
    let table = home
        .run(&["failover", "status", rep.name(), "-o", "table"])
        .expect_code(0);
    let header = table.stdout.lines().nth(1).unwrap_or_default().to_string();
    assert!(
        header.contains("epoch") && header.contains("replica lag") && !header.contains("lock"),
        "{}",
        table.stdout
    );

    // Sent to the master, received from the next one.
    let opts = home.stomp_options(rep.name());
    let mut p = StompClient::connect(&transport(&home, rep.name(), &master), opts.clone())
        .await
        .expect("connect to the master");
    for i in 0..10 {
        mq_tests::send_persistent(&mut p, "/queue/kept", format!("kept-{i}")).await;
    }
    p.disconnect().await.expect("disconnect");

    // A stepdown: another member is elected, nothing confirmed is lost.
    let report: FailoverReport = home
        .run(&[
            "failover",
            "trigger",
            rep.name(),
            "--verify",
            "200",
            "-o",
            "json",
        ])
        .expect_code(0)
        .json();
    assert_eq!(report.mode, FailoverMode::Stepdown);
    assert_eq!(report.old_master, master);
    assert_ne!(report.new_master, master);
    let v = report.verify.expect("verify counts");
    assert_eq!((v.sent, v.received, v.lost, v.duplicated), (200, 200, 0, 0));
    assert_eq!(report.old_epoch, Some(first_epoch));
    assert_eq!(report.lease, None, "a replicated group has no lease");
    let (second, slaves) = settled_roles(&home, rep.name());
    assert_eq!(second, report.new_master);
    assert!(
        slaves.contains(&master),
        "the old master follows: {slaves:?}"
    );
    let group = streaming(&home, rep.name(), &slaves);
    let second_epoch = group.epoch.expect("the group's epoch");
    assert!(
        second_epoch > first_epoch,
        "a new master, a new epoch: {second_epoch} after {first_epoch}"
    );
    assert_eq!(
        report.new_epoch,
        Some(second_epoch),
        "the election reported"
    );
    let mut c = StompClient::connect(&transport(&home, rep.name(), &second), opts.clone())
        .await
        .expect("connect to the new master");
    c.subscribe("/queue/kept", "s", AckMode::Auto, &[])
        .await
        .expect("subscribe");
    let mut got = Vec::new();
    while got.len() < 10 {
        let f = c
            .recv_timeout(Duration::from_secs(10))
            .await
            .expect("receive")
            .expect("a message before the timeout");
        got.push(String::from_utf8_lossy(&f.body).into_owned());
    }
    got.sort();
    let mut want: Vec<String> = (0..10).map(|i| format!("kept-{i}")).collect();
    want.sort();
    assert_eq!(got, want);
    c.disconnect().await.expect("disconnect");

    // A kill: the survivors elect one of them once the dead member's session expires.
    let report: FailoverReport = home
        .run(&[
            "failover",
            "trigger",
            rep.name(),
            "--mode",
            "kill",
            "--verify",
            "100",
            "-o",
            "json",
        ])
        .expect_code(0)
        .json();
    assert_eq!(report.old_master, second);
    assert_ne!(report.new_master, second);
    let v = report.verify.expect("verify counts");
    assert_eq!((v.sent, v.lost), (100, 0));
    let after: FailoverStatus = home
        .run(&["failover", "status", rep.name(), "-o", "json"])
        .expect_code(3)
        .json();
    assert_eq!(
        after.groups[0].master.as_deref(),
        Some(report.new_master.as_str())
    );
    assert_eq!(after.groups[0].down, vec![second.clone()]);
    let epoch = after.groups[0].epoch.expect("the group's epoch");
    assert!(
        epoch > second_epoch,
        "{epoch} after {second_epoch}: {after:?}"
    );
    assert_eq!(
        (report.old_epoch, report.new_epoch),
        (Some(second_epoch), Some(epoch))
    );
    let replicas = after.groups[0].replicas.as_deref().unwrap_or_default();
    assert!(
        replicas.iter().all(|r| r.name != second),
        "the killed member is no replica of the new master: {replicas:?}"
    );

    // By admin URL, outside the cluster: a stepdown reports the election as well.
    let urls: Vec<String> = cluster_status(&home, rep.name())
        .nodes
        .into_iter()
        .map(|n| n.admin)
        .collect();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    let token = dir.join("admin.token").display().to_string();
    let by_url: FailoverReport = home
        .run_by_url(&["failover", "trigger"], &urls, &token, &["-o", "json"])
        .expect_code(0)
        .json();
    let later: FailoverStatus = home
        .run(&["failover", "status", rep.name(), "-o", "json"])
        .expect_code(3)
        .json();
    let latest = later.groups[0].epoch.expect("the group's epoch");
    assert!(latest > epoch, "{latest} after {epoch}: {later:?}");
    assert_eq!(
        (by_url.old_epoch, by_url.new_epoch, &by_url.lease),
        (Some(epoch), Some(latest), &None)
    );

    // Destroy: no node and no ZooKeeper survive, the folder is gone.
    home.run(&["cluster", "destroy", rep.name(), "--yes"])
        .expect_code(0);
    assert!(!dir.exists());
    assert!(
        poll_until(Duration::from_secs(10), || processes_in(&dir).is_empty()),
        "processes left: {:?}",
        processes_in(&dir)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_external_zookeeper_the_cluster_stops_and_starts_with_one_master() {
    let zk = ZooKeeper::start();
    let home = CliHome::new();
    let _reaper = Reaper(&home);
    let address = zk.addr().to_string();
    let ext = home.create(
        "ext",
        &[
            "--nodes",
            "1",
            "--ha",
            "replicated",
            "--replicas",
            "3",
            "--zookeeper",
            &address,
            "--tls",
        ],
    );
    let dir = home.cluster_dir(ext.name());
    assert!(!dir.join("zookeeper").exists(), "no server of its own");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cluster.json")).expect("manifest"))
            .expect("manifest JSON");
    assert_eq!(manifest["groups"][0]["replicated"]["zk_address"], address);
    assert_eq!(
        manifest["groups"][0]["replicated"]["zk_path"],
        "/mq/ext/node1"
    );
    let (master, slaves) = settled_roles(&home, ext.name());
    assert_eq!(slaves.len(), 2);
    // With --tls the replication links use the cluster's certificates too: both followers
    // stream from the master over TLS.
    let before = streaming(&home, ext.name(), &slaves)
        .epoch
        .expect("the group's epoch");
    let logs: Vec<String> = manifest["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["log"].as_str())
        .map(|f| std::fs::read_to_string(f).unwrap_or_default())
        .collect();
    assert_eq!(logs.len(), 3, "{manifest}");
    for log in &logs {
        let opened = log
            .lines()
            .find(|l| l.contains("replicated store opened"))
            .unwrap_or_else(|| {
                panic!("no replicated store in the log of {master}'s group:\n{log}")
            });
        assert!(opened.contains("tls=true"), "{opened}");
    }
    // The members are in the group's node in ZooKeeper.
    let dump = zk.four_letter("dump").expect("dump");
    assert!(dump.contains("/mq/ext/node1"), "{dump}");

    // A stepdown in a table at 80 columns: the old and the new epoch among its default columns.
    let run = home
        .run_with(
            &["failover", "trigger", ext.name(), "-o", "table"],
            &[("COLUMNS", "80")],
        )
        .expect_code(0);
    let (header, row) = table_row(&run.stdout);
    let cell = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .and_then(|i| row.get(i))
            .unwrap_or_else(|| panic!("no {name} column:\n{}", run.stdout))
            .clone()
    };
    assert!(
        run.stdout.lines().all(|l| l.chars().count() <= 80),
        "{}",
        run.stdout
    );
    assert_eq!(cell("old master"), master);
    let (new_master, slaves) = settled_roles(&home, ext.name());
    assert_eq!(cell("new master"), new_master);
    let after = streaming(&home, ext.name(), &slaves)
        .epoch
        .expect("the group's epoch");
    assert!(after > before, "{after} after {before}");
    assert_eq!(cell("old epoch"), before.to_string(), "{}", run.stdout);
    assert_eq!(cell("new epoch"), after.to_string(), "{}", run.stdout);

    home.run(&["cluster", "stop", ext.name()]).expect_code(0);
    assert!(
        poll_until(Duration::from_secs(10), || processes_in(&dir).is_empty()),
        "processes left after stop: {:?}",
        processes_in(&dir)
    );
    home.run(&["cluster", "start", ext.name()]).expect_code(0);
    let (_, slaves) = settled_roles(&home, ext.name());
    assert_eq!(slaves.len(), 2, "one master again, two slaves: {slaves:?}");
    home.run(&["cluster", "destroy", ext.name(), "--yes"])
        .expect_code(0);
    assert!(
        poll_until(Duration::from_secs(10), || processes_in(&dir).is_empty()),
        "processes left: {:?}",
        processes_in(&dir)
    );
    // The external server was not mqctl's to stop.
    assert!(zk.four_letter("ruok").is_ok_and(|a| a.contains("imok")));
}
