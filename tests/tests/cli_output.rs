//! `mqctl` output as a contract: JSON matches the table, the human table has its header and
//! totals, plain output is one row per line, and a closed pipe ends quietly.

use mq_shared::ctl::{ClusterStatus, QueueStatReport};
use mq_tests::cli::CliHome;

/// The columns of `mqctl queue stat`, in order: what scripts and readers of the table rely on.
const QUEUE_STAT_COLUMNS: &str = "node queue depth producers consumers enqueued dequeued \
                                  forwarded in-flight expired dead-lettered bytes";

#[test]
fn status_json_matches_the_plain_rows() {
    let home = CliHome::new();
    let _cluster = home.create("demo", &["--nodes", "2", "--topology", "line"]);
    let json: ClusterStatus = home.run_json(&["cluster", "status", "demo"]);
    let plain = home.run(&["cluster", "status", "demo"]).expect_code(0);
    let rows = plain.rows();
    assert_eq!(rows[0][..3], ["node", "group", "role"]);
    assert_eq!(rows.len(), 1 + json.nodes.len());
    for (row, node) in rows[1..].iter().zip(&json.nodes) {
        assert_eq!(row[0], node.name);
        assert_eq!(row[3], node.pid.map(|p| p.to_string()).unwrap_or_default());
        assert_eq!(row[4], if node.alive { "yes" } else { "no" });
        assert_eq!(row[5], node.transport);
        assert_eq!(row[6], node.admin);
    }
    assert_eq!(json.name, "demo");
    assert_eq!(json.links.len(), 1);
    assert_eq!(json.links[0].name, "node1-node2");
    assert!(json.links[0].duplex);
}

#[test]
fn queue_stat_json_matches_the_plain_rows() {
    let home = CliHome::new();
    let cluster = home.create("demo", &["--nodes", "2", "--topology", "none"]);
    home.run(&["queue", "send", "demo", "a", "--count", "3", "--body", "x"])
        .expect_code(0);
    home.run(&["queue", "send", &cluster.node("node2"), "a", "--body", "y"])
        .expect_code(0);
    home.run(&["queue", "send", &cluster.node("node2"), "b", "--body", "z"])
        .expect_code(0);
    let json: QueueStatReport = home.run_json(&["queue", "stat", "demo"]);
    let rows = home.run(&["queue", "stat", "demo"]).expect_code(0).rows();
    // Plain: header, then per queue its node rows and a total row.
    let body: Vec<&Vec<String>> = rows[1..].iter().filter(|r| r[0] != "total").collect();
    assert_eq!(body.len(), json.queues.len());
    for (row, q) in body.iter().zip(&json.queues) {
        assert_eq!(row[0], q.node);
        assert_eq!(row[1], q.queue);
        assert_eq!(row[2], q.depth.to_string());
        assert_eq!(row[5], q.enqueued.to_string());
        assert_eq!(row[11], q.bytes.to_string());
    }
    let total_a = rows
        .iter()
        .find(|r| r[0] == "total" && r[1] == "a")
        .expect("a total row for queue a");
    assert_eq!(total_a[2], "4");

    // --queue filters with a glob.
    let only_b: QueueStatReport = home.run_json(&["queue", "stat", "demo", "--queue", "b"]);
    assert!(only_b.queues.iter().all(|q| q.queue == "b"));
    assert_eq!(only_b.queues.len(), 1);
}

#[test]
fn the_human_queue_stat_table_has_its_header_and_totals() {
    let home = CliHome::new();
    let _cluster = home.create("demo", &["--nodes", "2", "--topology", "none"]);
    home.run(&[
        "queue", "send", "demo", "orders", "--count", "2", "--body", "x",
    ])
    .expect_code(0);
    let run = home
        .run(&["queue", "stat", "demo", "-o", "wide"])
        .expect_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    let header = lines
        .iter()
        .find(|l| l.contains("node") && l.contains("queue"))
        .expect("a header line");
    let mut at = 0;
    for column in QUEUE_STAT_COLUMNS.split_whitespace() {
        let found = header[at..]
            .find(column)
            .unwrap_or_else(|| panic!("column {column} in order in {header}"));
        at += found + column.len();
    }
    let cells = |line: &str| -> Vec<String> {
        line.split(['│', '┆'])
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect()
    };
    let total = lines
        .iter()
        .map(|l| cells(l))
        .find(|c| c.first().map(String::as_str) == Some("total"))
        .expect("a totals row");
    assert_eq!(total[1], "orders");
    assert_eq!(total[2], "2");
}

#[test]
fn an_empty_result_is_a_sentence() {
    let home = CliHome::new();
    let run = home.run(&["cluster", "ls", "-o", "table"]).expect_code(0);
    assert!(run.stdout.starts_with("No clusters"), "{}", run.stdout);
    let run = home.run(&["cluster", "ls"]).expect_code(0);
    assert!(run.stdout.is_empty(), "plain mode prints no rows");
    assert!(run.stderr.contains("No clusters"));
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let home = CliHome::new();
    let _cluster = home.create("demo", &["--nodes", "1"]);
    home.run(&["queue", "send", "demo", "q", "--body", "x"])
        .expect_code(0);
    // The first snapshot fills `head`; the next write (a second later) hits the closed pipe.
    // mqctl's own exit status is reported on stderr, after anything it printed there.
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{{ '{}' queue stat demo --watch 1; echo \"mqctl exit $?\" >&2; }} | head -1 >/dev/null",
            home.mqctl_path().display()
        ))
        .env("MQCTL_HOME", home.path())
        .output()
        .expect("run through a pipe");
    assert_eq!(String::from_utf8_lossy(&output.stderr), "mqctl exit 0\n");
}
