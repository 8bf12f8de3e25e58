//! `mqctl` failing well: each failure exits non-zero with a sentence that says what and where,
//! and leaves nothing running and no half-created cluster behind.

use mq_tests::bin_path;
use mq_tests::cli::{CliHome, processes_under, script};

#[test]
fn creating_an_existing_cluster_fails_and_leaves_it_alone() {
    let home = CliHome::new();
    let _cluster = home.create("demo", &["--nodes", "1"]);
    let run = home.run(&["cluster", "create", "demo", "--nodes", "1"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("already exists"), "{}", run.stderr);
    assert!(run.stderr.contains("demo"));
    home.run(&["cluster", "status", "demo"]).expect_code(0);
}

#[test]
fn a_port_in_use_is_skipped_or_named_and_nothing_starts() {
    let home = CliHome::new();
    let listener = std::net::TcpListener::bind(("127.0.0.1", home.base_port())).expect("bind");
    let port = listener.local_addr().expect("addr").port();

    // Ports handed out by mqctl skip the one in use.
    let _cluster = home.create("skips", &["--nodes", "1", "--base-port", &port.to_string()]);
    let manifest =
        std::fs::read_to_string(home.cluster_dir("skips").join("cluster.json")).expect("manifest");
    assert!(!manifest.contains(&format!(": {port},")), "{manifest}");

    // A port a layout gives explicitly is refused by number and node, before anything starts.
    let layout = home.path().join("layout.json");
    std::fs::write(
        &layout,
        format!(r#"{{"nodes": [{{"name": "a"}}, {{"name": "b", "transport_port": {port}}}]}}"#),
    )
    .expect("write layout");
    let run = home.run(&[
        "cluster",
        "create",
        "busy",
        "--from",
        layout.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(&port.to_string()) && run.stderr.contains(" b)"),
        "names the port and the node: {}",
        run.stderr
    );
    assert!(!home.cluster_dir("busy").exists());
    assert!(processes_under(&home.cluster_dir("busy")).is_empty());
}

#[test]
fn a_missing_mqnode_is_a_clear_error() {
    let home = CliHome::new();
    let run = home.run(&["cluster", "create", "x", "--mqnode", "/nonexistent/mqnode"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("mqnode not found"), "{}", run.stderr);
    assert!(run.stderr.contains("/nonexistent/mqnode"));
    assert!(!home.cluster_dir("x").exists());

    // Not beside mqctl and not on PATH either.
    let lonely = tempfile::tempdir().expect("tempdir");
    let mqctl = lonely.path().join("mqctl");
    std::fs::copy(bin_path("mqctl"), &mqctl).expect("copy mqctl");
    let output = std::process::Command::new(&mqctl)
        .args(["cluster", "create", "x"])
        .env("MQCTL_HOME", home.path())
        .env("PATH", lonely.path())
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("mqnode not found") && stderr.contains("PATH"),
        "{stderr}"
    );
}

#[test]
fn a_node_that_crashes_at_start_is_reported_with_its_log() {
    let home = CliHome::new();
    let bin = tempfile::tempdir().expect("tempdir");
    let crash = script(
        bin.path(),
        "crashing-mqnode",
        "echo 'fatal: cannot open the store' >&2\nexit 1",
    );
    let run = home.run(&[
        "cluster",
        "create",
        "bad",
        "--mqnode",
        crash.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("exited during start"), "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot open the store"),
        "log tail shown: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("node.log"),
        "names the log: {}",
        run.stderr
    );
    assert!(!home.cluster_dir("bad").exists());
    assert!(processes_under(home.path()).is_empty());
}

#[test]
fn when_one_node_crashes_the_others_are_stopped_too() {
    let home = CliHome::new();
    let bin = tempfile::tempdir().expect("tempdir");
    let real = bin_path("mqnode");
    // node1 and node3 are real nodes; node2 dies at once.
    let flaky = script(
        bin.path(),
        "flaky-mqnode",
        &format!(
            "case \" $* \" in *' --name node2 '*) echo 'node2 refuses to start' >&2; exit 3;; esac\nexec '{}' \"$@\"",
            real.display()
        ),
    );
    let run = home.run(&[
        "cluster",
        "create",
        "flaky",
        "--mqnode",
        flaky.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("node2"), "{}", run.stderr);
    assert!(run.stderr.contains("refuses to start"), "{}", run.stderr);
    assert!(!home.cluster_dir("flaky").exists());
    assert!(
        processes_under(home.path()).is_empty(),
        "node1 and node3 were stopped"
    );
}

#[test]
fn usage_errors_exit_2() {
    let home = CliHome::new();
    for args in [
        &["cluster", "create"][..],
        &["cluster", "create", "x", "--topology", "hub"],
        &["node", "stop", "demo"],
        &["queue", "send", "demo"],
        &["queue", "send", "demo", "q", "--header", "novalue"],
        &["queue", "stat"],
        &["cluster", "create", "../escape"],
        &["bogus"],
    ] {
        let run = home.run(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(!run.stderr.is_empty());
    }
}

#[test]
fn unknown_clusters_and_nodes_say_how_to_find_the_right_name() {
    let home = CliHome::new();
    let run = home.run(&["cluster", "status", "nope"]);
    assert_eq!(run.code, 66);
    assert!(run.stderr.contains("mqctl cluster ls"), "{}", run.stderr);

    let _cluster = home.create("demo", &["--nodes", "1"]);
    let run = home.run(&["node", "stop", "demo/node9"]);
    assert_eq!(run.code, 66);
    assert!(
        run.stderr.contains("node9") && run.stderr.contains("node1"),
        "{}",
        run.stderr
    );
}
