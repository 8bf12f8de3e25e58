//! `mqctl failover trigger|status` against real clusters made by `mqctl cluster create --ha`.

use std::time::Duration;

use mq_shared::api::Role;
use mq_shared::client::{AckMode, StompClient};
use mq_shared::ctl::{
    ClusterStatus, FailoverMode, FailoverReport, FailoverStatus, LinkList, LinkState,
};
use mq_tests::cli::CliHome;
use mq_tests::poll_until;

const LINKS_TIMEOUT: Duration = Duration::from_secs(30);

fn status(home: &CliHome, name: &str) -> FailoverStatus {
    home.run(&["failover", "status", name, "-o", "json"]).json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_with_verify_loses_nothing_and_the_links_follow_the_new_master() {
    let home = CliHome::new();
    let demo = home.create("demo", &["--ha"]);
    let before = status(&home, demo.name());
    assert_eq!(before.groups.len(), 3);
    for g in &before.groups {
        assert_eq!(g.master.as_deref(), Some(format!("{}a", g.group).as_str()));
        assert_eq!(g.slaves, vec![format!("{}b", g.group)]);
        assert!(g.down.is_empty());
        let lock = g.lock.as_ref().expect("lock record");
        assert_eq!(lock.holder, format!("{}a", g.group));
    }
    // Every link is up before, so that "up after" means re-attached.
    assert!(
        poll_until(LINKS_TIMEOUT, || links_up(&home, demo.name())),
        "links never came up: {}",
        home.run(&["link", "ls", demo.name()]).stdout
    );

    let run = home
        .run(&[
            "failover", "trigger", "demo", "--mode", "kill", "--verify", "1000", "-o", "json",
        ])
        .expect_code(0);
    let report: FailoverReport = run.json();
    assert_eq!(report.group, "node1");
    assert_eq!(report.mode, FailoverMode::Kill);
    assert_eq!(report.old_master, "node1a");
    assert_eq!(report.new_master, "node1b");
    assert!(report.recovery_ms > 0, "{report:?}");
    let verify = report.verify.expect("verify counts");
    assert_eq!(
        (verify.sent, verify.received, verify.lost, verify.duplicated),
        (1000, 1000, 0, 0)
    );
    // The exact JSON shape is the contract.
    let value: serde_json::Value = run.json();
    let mut keys: Vec<&str> = value
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "group",
            "mode",
            "new_master",
            "old_master",
            "recovery_ms",
            "verify"
        ]
    );

    // The group's status follows; node1a is down (exit 3: some nodes did not answer).
    let after: FailoverStatus = home
        .run(&["failover", "status", "demo", "-o", "json"])
        .expect_code(3)
        .json();
    let g = &after.groups[0];
    assert_eq!(g.master.as_deref(), Some("node1b"));
    assert!(g.slaves.is_empty());
    assert_eq!(g.down, vec!["node1a".to_string()]);
    assert_eq!(g.lock.as_ref().map(|l| l.holder.as_str()), Some("node1b"));

    // Links into node1 (masterslave:) re-attach to node1b; links out of node1 were re-created on
    // node1b by the trigger.
    assert!(
        poll_until(LINKS_TIMEOUT, || links_up(&home, demo.name())),
        "links did not re-attach after the failover: {}",
        home.run(&["link", "ls", demo.name()]).stdout
    );
    // And a message sent to node2 reaches a consumer on node1's new master through them.
    let cluster: ClusterStatus = home
        .run(&["cluster", "status", "demo", "-o", "json"])
        .json();
    let addr = |name: &str| {
        cluster
            .nodes
            .iter()
            .find(|n| n.name == name)
            .map(|n| n.transport.trim_start_matches("tcp://").to_string())
            .expect("node in status")
    };
    let role = |name: &str| {
        cluster
            .nodes
            .iter()
            .find(|n| n.name == name)
            .and_then(|n| n.role)
    };
    assert_eq!(role("node1b"), Some(Role::Master));
    let mut consumer = StompClient::connect(&addr("node1b"), home.stomp_options("demo"))
        .await
        .expect("connect to node1b");
    consumer
        .subscribe("/queue/after.failover", "s", AckMode::Auto, &[])
        .await
        .expect("subscribe");
    let mut producer = StompClient::connect(&addr("node2a"), home.stomp_options("demo"))
        .await
        .expect("connect to node2a");
    // The subscription reaches node2 as demand; send until the bridge carries one over.
    let mut got = None;
    for i in 0..50 {
        producer
            .send(
                "/queue/after.failover",
                format!("m{i}"),
                &[("persistent", "true")],
                true,
            )
            .await
            .expect("send to node2a");
        if let Some(m) = consumer
            .recv_timeout(Duration::from_millis(200))
            .await
            .expect("receive")
        {
            got = Some(m);
            break;
        }
    }
    assert!(got.is_some(), "nothing sent to node2a reached node1b");
}

fn links_up(home: &CliHome, name: &str) -> bool {
    let run = home.run(&["link", "ls", name, "-o", "json"]);
    if run.code != 0 {
        return false;
    }
    let list: LinkList = run.json();
    !list.links.is_empty() && list.links.iter().all(|l| l.state == LinkState::Up)
}

#[test]
fn stepdown_is_the_default_and_status_shows_the_swap() {
    let home = CliHome::new();
    let pair = home.create("pair", &["--ha", "--nodes", "1", "--topology", "none"]);
    let run = home
        .run(&["failover", "trigger", pair.name()])
        .expect_code(0);
    let rows = run.rows();
    assert_eq!(
        rows[0],
        ["group", "mode", "old master", "new master", "recovery ms"]
    );
    assert_eq!(rows[1][..4], ["node1", "stepdown", "node1a", "node1b"]);
    let ms: u64 = rows[1][4].parse().expect("recovery ms is a number");
    assert!(ms > 0);
    assert!(
        run.stderr.contains("Timeline: stepdown of node1a at 0 ms"),
        "{}",
        run.stderr
    );
    // The old master waits as a slave.
    assert!(poll_until(Duration::from_secs(10), || {
        let s = status(&home, pair.name());
        s.groups[0].master.as_deref() == Some("node1b")
            && s.groups[0].slaves == ["node1a".to_string()]
    }));
    let plain = home
        .run(&["failover", "status", pair.name()])
        .expect_code(0);
    assert_eq!(plain.rows()[1][..3], ["node1", "node1b", "node1a"]);
    // And back: node1a is past its stepdown back-off once node1b steps down.
    let back: FailoverReport = home.run_json(&["failover", "trigger", pair.name()]);
    assert_eq!(
        (back.old_master.as_str(), back.new_master.as_str()),
        ("node1b", "node1a")
    );
    assert!(back.verify.is_none());
    // A shared-file group has no election to report.
    assert_eq!(
        (back.old_epoch, back.new_epoch, back.lease),
        (None, None, None)
    );
}

#[test]
fn refusals_name_the_problem() {
    let home = CliHome::new();
    let single = home.create("single", &["--nodes", "1"]);
    let run = home
        .run(&["failover", "trigger", single.name()])
        .expect_code(2);
    assert!(
        run.stderr.contains("has no master/slave group"),
        "{}",
        run.stderr
    );
    let run = home
        .run(&["failover", "trigger", single.name(), "--broker", "node1"])
        .expect_code(2);
    assert!(run.stderr.contains("is a single node"), "{}", run.stderr);

    let ha = home.create("ha", &["--ha", "--nodes", "1", "--topology", "none"]);
    let run = home.run(&["failover", "trigger", ha.name(), "--broker", "nosuch"]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("nosuch"), "{}", run.stderr);
    home.run(&["node", "kill", &ha.node("node1b")])
        .expect_code(0);
    let run = home
        .run(&["failover", "trigger", ha.name(), "--mode", "kill"])
        .expect_code(69);
    assert!(
        run.stderr.contains("no slave of node1")
            && run.stderr.contains("mqctl node start ha/node1b"),
        "{}",
        run.stderr
    );
    // Nothing was done to the master.
    let s = status(&home, ha.name());
    assert_eq!(s.groups[0].master.as_deref(), Some("node1a"));
}

#[test]
fn queue_send_over_failover_follows_the_master_through_a_kill() {
    const COUNT: u64 = 5000;
    let home = CliHome::new();
    let pair = home.create("qs", &["--ha", "--nodes", "1", "--topology", "none"]);
    let manifest: mq_shared::ctl::ClusterManifest = serde_json::from_str(
        &std::fs::read_to_string(home.cluster_dir(pair.name()).join("cluster.json"))
            .expect("manifest"),
    )
    .expect("manifest parses");
    let endpoints: Vec<String> = manifest.nodes.iter().map(|n| n.transport_uri()).collect();
    let uri = format!("failover:({})?randomize=false", endpoints.join(","));
    let (login, passcode) = home.login(pair.name());
    let sender = std::process::Command::new(home.mqctl_path())
        .args([
            "queue",
            "send",
            "--url",
            &uri,
            "sent.through",
            "--body",
            "x",
        ])
        .args(["--count", &COUNT.to_string(), "-o", "json"])
        .args(["--login", &login, "--passcode", &passcode])
        .env("MQCTL_HOME", home.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start mqctl queue send");
    // Kill the master once the sender is under way.
    let depth = |home: &CliHome| -> u64 {
        let run = home.run(&[
            "queue",
            "stat",
            "qs",
            "--queue",
            "sent.through",
            "-o",
            "json",
        ]);
        let report: mq_shared::ctl::QueueStatReport = match serde_json::from_str(&run.stdout) {
            Ok(r) => r,
            Err(_) => return 0,
        };
        report.queues.iter().map(|q| q.depth).max().unwrap_or(0)
    };
    assert!(poll_until(Duration::from_secs(30), || depth(&home) >= 200));
    let report: FailoverReport = home.run_json(&["failover", "trigger", "qs", "--mode", "kill"]);
    assert_eq!(report.new_master, "node1b");
    let out = sender.wait_with_output().expect("mqctl queue send");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let sent: mq_shared::ctl::SendReport =
        serde_json::from_slice(&out.stdout).expect("send report");
    assert_eq!(sent.sent, COUNT);
    assert!(stderr.contains("reconnecting"), "{stderr}");
    // Every confirmed message is on the new master (a resent one may be there twice).
    let after = depth(&home);
    assert!((COUNT..=COUNT + 1).contains(&after), "depth {after}");
}
