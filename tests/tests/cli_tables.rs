//! `mqctl` tables fit the terminal: at `COLUMNS=80` no line of any table is wider than 80 with
//! the default columns; `--columns` picks columns, `-o wide` shows them all, `--limit` leaves
//! rows out with a notice on stderr.

use mq_shared::ctl::ClusterStatus;
use mq_tests::cli::{CliHome, Run};

const NARROW: [(&str, &str); 1] = [("COLUMNS", "80")];

/// `mqctl ARGS -o table` at 80 columns: exit 0 and no line wider than 80.
fn fits(home: &CliHome, args: &[&str]) -> Run {
    let mut all = args.to_vec();
    all.extend(["-o", "table"]);
    let run = home.run_with(&all, &NARROW);
    assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
    for line in run.stdout.lines() {
        assert!(
            line.chars().count() <= 80,
            "{args:?}: a line of {} columns:\n{}",
            line.chars().count(),
            run.stdout
        );
    }
    assert!(
        run.stdout.contains('┆') || run.stdout.contains('│'),
        "{args:?}: a table:\n{}\n{}",
        run.stdout,
        run.stderr
    );
    run
}

#[test]
fn every_table_fits_80_columns() {
    let home = CliHome::new();
    let _cluster = home.create("fit", &["--nodes", "2", "--ha", "--topology", "line"]);
    let long_queue = "orders.europe.germany.bavaria.munich.warehouse-17";
    home.run(&[
        "queue",
        "send",
        "fit",
        long_queue,
        "--body",
        &"a long body that goes on ".repeat(20),
        "--header",
        "customer=someone-with-a-rather-long-identifier",
        "--header",
        "kind=order",
        "--messages",
        "3",
    ])
    .expect_code(0);
    home.run(&["queue", "send", "fit/node2", "short", "--body", "x"])
        .expect_code(0);

    fits(&home, &["cluster", "ls"]);
    let status = fits(&home, &["cluster", "status", "fit"]);
    assert!(status.stdout.contains("node2b"), "{}", status.stdout);
    fits(&home, &["node", "ls", "fit"]);
    fits(&home, &["link", "ls", "fit"]);
    let stat = fits(&home, &["queue", "stat", "fit"]);
    assert!(stat.stdout.contains("orders.euro"), "{}", stat.stdout);
    let browse = fits(&home, &["queue", "browse", "fit", long_queue]);
    assert!(browse.stdout.contains("a long body"), "{}", browse.stdout);
    fits(&home, &["failover", "status", "fit"]);
    fits(&home, &["connection", "ls", "fit"]);
    let st: ClusterStatus = home.run(&["cluster", "status", "fit", "-o", "json"]).json();
    let stomp = st.nodes[0].transport.clone();
    let (login, passcode) = home.login("fit");
    fits(
        &home,
        &[
            "bench",
            "--login",
            &login,
            "--passcode",
            &passcode,
            "--url",
            &stomp,
            "--messages",
            "20",
            "--queue",
            "/topic/fit.bench.on.a.topic.with.a.rather.long.name",
        ],
    );
    fits(&home, &["topic", "ls", "fit"]);
    fits(&home, &["failover", "trigger", "fit", "--verify", "10"]);
    fits(&home, &["cluster", "stop", "fit"]);
}

#[test]
fn columns_wide_and_limit() {
    let home = CliHome::new();
    let _cluster = home.create("cols", &["--nodes", "2", "--topology", "none"]);
    for q in ["a", "b", "c"] {
        home.run(&["queue", "send", "cols", q, "--body", "x"])
            .expect_code(0);
    }
    // The default table leaves some columns out; -o wide shows them all.
    let table = home.run_with(&["queue", "stat", "cols", "-o", "table"], &NARROW);
    assert!(!table.stdout.contains("dead-lettered"), "{}", table.stdout);
    let wide = home
        .run_with(&["queue", "stat", "cols", "-o", "wide"], &NARROW)
        .expect_code(0);
    for column in ["dead-lettered", "bytes", "in-flight", "forwarded"] {
        assert!(wide.stdout.contains(column), "{column}:\n{}", wide.stdout);
    }
    // --columns picks and orders them, in a table and in plain output.
    let picked = home
        .run_with(
            &[
                "queue",
                "stat",
                "cols",
                "--columns",
                "queue,bytes,node",
                "-o",
                "table",
            ],
            &NARROW,
        )
        .expect_code(0);
    let header = picked
        .stdout
        .lines()
        .find(|l| l.contains("queue"))
        .expect("header");
    let q = header.find("queue").expect("queue");
    let b = header.find("bytes").expect("bytes");
    let n = header.find("node").expect("node");
    assert!(q < b && b < n, "{header}");
    assert!(!header.contains("depth"));
    let plain = home
        .run(&["queue", "stat", "cols", "--columns", "queue,depth"])
        .expect_code(0);
    assert_eq!(plain.rows()[0], ["queue", "depth"]);
    let run = home.run(&["queue", "stat", "cols", "--columns", "nope"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("dead-lettered"),
        "lists the columns: {}",
        run.stderr
    );
    // Plain output keeps every column.
    let all = home.run(&["cluster", "status", "cols"]).expect_code(0);
    assert_eq!(all.rows()[0].len(), 15, "{}", all.stdout);
    assert_eq!(
        all.rows()[0][12..],
        ["memory", "store", "temp"],
        "{}",
        all.stdout
    );

    // --limit leaves rows out and says so on stderr.
    let limited = home
        .run_with(
            &["queue", "stat", "cols", "--limit", "2", "-o", "table"],
            &NARROW,
        )
        .expect_code(0);
    let rows = limited
        .stdout
        .lines()
        .filter(|l| l.contains("cols") || l.contains("node1") || l.contains("total"))
        .count();
    assert_eq!(rows, 2, "{}", limited.stdout);
    assert!(
        limited.stderr.contains("Showing 2 of"),
        "{}",
        limited.stderr
    );
    let plain = home
        .run(&["queue", "stat", "cols", "--limit", "1"])
        .expect_code(0);
    assert_eq!(plain.rows().len(), 2, "header and one row");
    assert!(plain.stderr.contains("Showing 1 of"), "{}", plain.stderr);
}
