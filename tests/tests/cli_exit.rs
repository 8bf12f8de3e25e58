//! `mqctl`'s exit codes say what happened, each with a sentence on stderr: 0 ok (a cluster
//! stopped cleanly included), 2 usage, 3 partial, 66 unknown, 69 unavailable, 75 timeout,
//! 77 not authorized.

use mq_shared::ctl::ClusterManifest;
use mq_tests::cli::{CliHome, Run, processes_under, script};

fn manifest(home: &CliHome, name: &str) -> ClusterManifest {
    let path = home.cluster_dir(name).join("cluster.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("manifest")).expect("parses")
}

/// `run` ended with `code` and said something on stderr.
fn says(run: &Run, code: i32) {
    assert_eq!(
        run.code, code,
        "expected exit code {code}\n--- stdout\n{}\n--- stderr\n{}",
        run.stdout, run.stderr
    );
    assert!(
        !run.stderr.trim().is_empty(),
        "exit {code} without a word on stderr"
    );
}

#[test]
fn a_cluster_stopped_cleanly_is_not_an_error() {
    let home = CliHome::new();
    let _cluster = home.create("calm", &["--nodes", "2", "--topology", "none"]);
    home.run(&["cluster", "stop", "calm"]).expect_code(0);
    let run = home.run(&["cluster", "status", "calm"]);
    says(&run, 0);
    assert!(run.stderr.contains("stopped cleanly"), "{}", run.stderr);
    assert!(
        run.rows()[1..].iter().all(|r| r[2] == "stopped"),
        "the role column says stopped:\n{}",
        run.stdout
    );
    // One node stopped on purpose, one running: still complete.
    home.run(&["node", "start", "calm/node1"]).expect_code(0);
    let run = home.run(&["cluster", "status", "calm"]);
    says(&run, 0);
    assert!(run.stderr.contains("node2"), "{}", run.stderr);
}

#[test]
fn unknown_names_exit_66() {
    let home = CliHome::new();
    says(&home.run(&["cluster", "status", "nope"]), 66);
    says(&home.run(&["queue", "stat", "nope"]), 66);
    let _cluster = home.create("known", &["--nodes", "1"]);
    says(&home.run(&["node", "stop", "known/node9"]), 66);
    says(&home.run(&["node", "logs", "known/node9"]), 66);
    let run = home.run(&["queue", "browse", "known", "no.such.queue"]);
    says(&run, 66);
    assert!(run.stderr.contains("no.such.queue"), "{}", run.stderr);
    says(&home.run(&["link", "rm", "known", "a-b"]), 66);
}

#[test]
fn nodes_down_exit_69_or_3_and_say_which() {
    let home = CliHome::new();
    let cluster = home.create("pair", &["--nodes", "1", "--ha", "--topology", "none"]);
    home.run(&["node", "kill", &cluster.node("node1b")])
        .expect_code(0);
    // Some members down: partial, naming them.
    let run = home.run(&["failover", "status", "pair"]);
    says(&run, 3);
    assert!(run.stderr.contains("node1b"), "{}", run.stderr);
    let run = home.run(&["cluster", "status", "pair"]);
    says(&run, 3);
    assert!(run.stderr.contains("node1b"), "{}", run.stderr);
    // A node that is down, asked directly.
    let run = home.run(&["queue", "send", &cluster.node("node1b"), "q", "--body", "x"]);
    says(&run, 69);
    assert!(run.stderr.contains("node1b"), "{}", run.stderr);
    // All down.
    home.run(&["node", "kill", &cluster.node("node1a")])
        .expect_code(0);
    let run = home.run(&["cluster", "status", "pair"]);
    says(&run, 69);
    assert!(
        run.stderr.contains("mqctl cluster start pair"),
        "{}",
        run.stderr
    );
    says(
        &home.run(&["queue", "send", "pair", "q", "--body", "x"]),
        69,
    );
}

#[test]
fn a_node_that_never_gets_ready_times_out_with_75() {
    let home = CliHome::new();
    let bin = tempfile::tempdir().expect("tempdir");
    let stuck = script(
        bin.path(),
        "stuck-mqnode",
        "echo 'opening a very slow store'\nexec sleep 60",
    );
    let run = home.run(&[
        "cluster",
        "create",
        "slow",
        "--nodes",
        "1",
        "--timeout",
        "1",
        "--mqnode",
        stuck.to_str().expect("utf-8 path"),
    ]);
    says(&run, 75);
    assert!(
        run.stderr.contains("node1") && run.stderr.contains("not ready after 1 s"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("opening a very slow store"),
        "shows the log tail: {}",
        run.stderr
    );
    assert!(!home.cluster_dir("slow").exists());
    assert!(processes_under(home.path()).is_empty());
}

#[test]
fn a_refused_token_exits_77() {
    let home = CliHome::new();
    let _cluster = home.create("locked", &["--nodes", "1"]);
    let m = manifest(&home, "locked");
    let wrong = home.path().join("wrong.token");
    std::fs::write(&wrong, "not-the-token\n").expect("write token");
    let run = home.run(&[
        "queue",
        "stat",
        "--url",
        &m.nodes[0].admin_url(),
        "--token-file",
        wrong.to_str().expect("utf-8 path"),
    ]);
    says(&run, 77);
    assert!(run.stderr.contains("--token-file"), "{}", run.stderr);
}

#[test]
fn usage_errors_exit_2_and_the_codes_are_in_the_help() {
    let home = CliHome::new();
    says(&home.run(&["queue", "stat"]), 2);
    says(&home.run(&["cluster", "create", "x", "--nodes", "0"]), 2);
    let help = home.run(&["--help"]).expect_code(0);
    for code in ["66", "69", "75", "77"] {
        assert!(
            help.stdout.contains(code),
            "--help lists {code}:\n{}",
            help.stdout
        );
    }
}
