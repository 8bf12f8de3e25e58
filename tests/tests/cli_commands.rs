//! The day-one commands: `queue delete`, `topic ls`, `connection ls`, `node logs`, the
//! confirmations of `cluster destroy`, `queue purge` and `queue delete`, and `queue send`
//! refusing to send nothing by accident.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use mq_shared::ctl::{
    ClusterManifest, ConnectionReport, DeleteReport, QueueStatReport, SendReport, TopicReport,
};
use mq_tests::cli::CliHome;
use mq_tests::poll_until;

fn manifest(home: &CliHome, name: &str) -> ClusterManifest {
    let path = home.cluster_dir(name).join("cluster.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("manifest")).expect("parses")
}

fn queues(home: &CliHome, cluster: &str) -> Vec<String> {
    let r: QueueStatReport = home.run_json(&["queue", "stat", cluster]);
    r.queues.into_iter().map(|q| q.queue).collect()
}

#[test]
fn destructive_commands_ask_first() {
    let home = CliHome::new();
    let _cluster = home.create("careful", &["--nodes", "1"]);
    home.run(&[
        "queue",
        "send",
        "careful",
        "q",
        "--body",
        "x",
        "--messages",
        "2",
    ])
    .expect_code(0);

    // stdin is not a terminal: refused without --yes, nothing done.
    for args in [
        &["queue", "purge", "careful", "q"][..],
        &["queue", "delete", "careful", "q"],
        &["cluster", "destroy", "careful"],
    ] {
        let run = home.run(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("--yes"), "{args:?}: {}", run.stderr);
    }
    assert!(home.cluster_dir("careful").exists());
    assert_eq!(queues(&home, "careful"), ["q"]);

    // On a terminal it asks; "n" keeps everything, "y" goes ahead.
    let on_tty = |args: &str, answer: &str| -> (i32, String) {
        let mut child = Command::new("script")
            .args([
                "-qec",
                &format!("'{}' {args}", home.mqctl_path().display()),
                "/dev/null",
            ])
            .env("MQCTL_HOME", home.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run mqctl on a terminal");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(answer.as_bytes()).expect("answer");
        let mut out = String::new();
        child
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut out)
            .expect("read");
        let status = child.wait().expect("wait");
        (status.code().unwrap_or(-1), out)
    };
    let (code, out) = on_tty("queue purge careful q", "n\n");
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("Purge queue q on node1") && out.contains("[y/N]"),
        "{out}"
    );
    let (code, out) = on_tty("queue purge careful q", "y\n");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Purged 2 messages"), "{out}");

    let deleted: DeleteReport = home.run_json(&["queue", "delete", "careful", "q", "--yes"]);
    assert_eq!(
        (deleted.queue.as_str(), deleted.node.as_str()),
        ("q", "node1")
    );
    assert!(queues(&home, "careful").is_empty());
    let run = home.run(&["queue", "delete", "careful", "q", "--yes"]);
    assert_eq!(run.code, 66, "unknown queue: {}", run.stderr);

    home.run(&["cluster", "destroy", "careful", "--yes"])
        .expect_code(0);
    assert!(!home.cluster_dir("careful").exists());
}

#[test]
fn queue_send_needs_a_body() {
    let home = CliHome::new();
    let _cluster = home.create("bodies", &["--nodes", "1"]);
    let run = home.run(&["queue", "send", "bodies", "q"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--body ''"), "{}", run.stderr);
    let sent: SendReport = home.run_json(&["queue", "send", "bodies", "q", "--body", ""]);
    assert_eq!(sent.sent, 1);
}

#[test]
fn topics_and_connections_are_listed() {
    let home = CliHome::new();
    let cluster = home.create("seen", &["--nodes", "2", "--topology", "none"]);
    let m = manifest(&home, "seen");
    // A topic comes to exist when published to (bench subscribes, then publishes).
    home.run(&[
        "bench",
        &cluster.node("node2"),
        "--queue",
        "/topic/news",
        "--messages",
        "5",
    ])
    .expect_code(0);
    let topics: TopicReport = home.run_json(&["topic", "ls", "seen"]);
    let news = topics
        .topics
        .iter()
        .find(|t| t.topic == "news")
        .expect("topic news");
    assert_eq!(news.node, "node2");
    assert!(news.enqueued >= 5, "{news:?}");
    let plain = home.run(&["topic", "ls", "seen"]).expect_code(0);
    assert_eq!(plain.rows()[0][..2], ["node", "topic"]);

    // A STOMP client connected to node1 shows up there.
    let mut conn =
        std::net::TcpStream::connect(("127.0.0.1", m.nodes[0].transport_port)).expect("connect");
    let (login, passcode) = home.login("seen");
    conn.write_all(
        format!(
            "CONNECT\naccept-version:1.2\nhost:localhost\nlogin:{login}\npasscode:{passcode}\n\n\0"
        )
        .as_bytes(),
    )
    .expect("CONNECT");
    let mut connected = [0u8; 9];
    conn.read_exact(&mut connected).expect("CONNECTED");
    assert_eq!(&connected, b"CONNECTED");
    let report: ConnectionReport = home.run_json(&["connection", "ls", "seen"]);
    let mine = report
        .connections
        .iter()
        .find(|c| c.node == "node1" && c.version == "1.2")
        .expect("the client connection on node1");
    assert_eq!(mine.kind, mq_shared::api::ConnectionKind::Client);
    let table = home
        .run_with(
            &["connection", "ls", "seen", "-o", "table"],
            &[("COLUMNS", "80")],
        )
        .expect_code(0);
    assert!(table.stdout.contains("client"), "{}", table.stdout);
    drop(conn);

    // A node that is down: partial, marked down.
    home.run(&["node", "kill", &cluster.node("node2")])
        .expect_code(0);
    let run = home.run(&["topic", "ls", "seen"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.rows()
            .iter()
            .any(|r| r[0] == "node2" && r[1] == "(down)")
    );
}

#[test]
fn node_logs_show_and_follow_the_log() {
    let home = CliHome::new();
    let cluster = home.create("logged", &["--nodes", "1"]);
    let all = home
        .run(&["node", "logs", &cluster.node("node1"), "--lines", "0"])
        .expect_code(0);
    assert!(
        all.stdout.contains("==== mqctl: starting node1"),
        "{}",
        all.stdout
    );
    assert!(all.stdout.contains("\"event\":\"ready\""), "{}", all.stdout);
    let two = home
        .run(&["node", "logs", &cluster.node("node1"), "-n", "2"])
        .expect_code(0);
    assert_eq!(two.stdout.lines().count(), 2, "{}", two.stdout);

    // --follow prints what is appended.
    let mut child = Command::new(home.mqctl_path())
        .args([
            "node",
            "logs",
            &cluster.node("node1"),
            "--follow",
            "-n",
            "1",
        ])
        .env("MQCTL_HOME", home.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("follow");
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let log = manifest(&home, "logged").nodes[0].log.clone();
    let mut seen = Vec::new();
    let found = poll_until(Duration::from_secs(10), || {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .expect("open the log");
        writeln!(file, "a line written by the test").expect("append");
        seen.extend(rx.try_iter());
        seen.iter().any(|l| l == "a line written by the test")
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(found, "followed: {seen:?}");
}
