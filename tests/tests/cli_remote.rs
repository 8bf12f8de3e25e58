//! `mqctl` against a node outside any cluster, started by hand with `--admin-token-file`:
//! every command that reads or changes a node takes `--url http://HOST:PORT` and
//! `--token-file FILE`.

use mq_shared::bench::BenchReport;
use mq_shared::ctl::{
    BrowseReport, ConnectionReport, DeleteReport, PurgeReport, QueueStatReport, SendReport,
    TopicReport,
};
use mq_tests::cli::CliHome;
use mq_tests::{Node, NodeOpts};

#[test]
fn a_node_outside_any_cluster_is_driven_by_url_and_token_file() {
    let home = CliHome::new();
    let token = "a-token-for-a-node-started-by-hand";
    let node = Node::start(NodeOpts::new("byhand").token(token));
    let url = node.admin_url();
    let token_file = home.path().join("byhand.token");
    std::fs::write(&token_file, format!("{token}\n")).expect("write the token file");
    let tf = token_file.to_str().expect("utf-8 path");
    let with = |args: &[&str]| -> Vec<String> {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(["--url", &url, "--token-file", tf, "-o", "json"].map(String::from));
        all
    };
    let run = |args: &[&str]| {
        let all = with(args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        home.run(&refs)
    };
    let label = url.trim_start_matches("http://");

    let sent: SendReport = run(&[
        "queue",
        "send",
        "remote.q",
        "--body",
        "x",
        "--messages",
        "3",
    ])
    .expect_code(0)
    .json();
    assert_eq!((sent.node.as_str(), sent.sent), (label, 3));
    let stat: QueueStatReport = run(&["queue", "stat"]).expect_code(0).json();
    assert_eq!(stat.queues.len(), 1);
    assert_eq!(
        (stat.queues[0].queue.as_str(), stat.queues[0].depth),
        ("remote.q", 3)
    );
    let browse: BrowseReport = run(&["queue", "browse", "remote.q"]).expect_code(0).json();
    assert_eq!(browse.messages.len(), 3);
    let purged: PurgeReport = run(&["queue", "purge", "remote.q", "--yes"])
        .expect_code(0)
        .json();
    assert_eq!(purged.removed, 3);
    let deleted: DeleteReport = run(&["queue", "delete", "remote.q", "--yes"])
        .expect_code(0)
        .json();
    assert_eq!(deleted.queue, "remote.q");

    // bench finds the node's STOMP transport through its admin API.
    let bench: BenchReport = run(&["bench", "--messages", "10", "--queue", "/topic/remote.t"])
        .expect_code(0)
        .json();
    assert_eq!(bench.params.url, node.stomp_url());
    let topics: TopicReport = run(&["topic", "ls"]).expect_code(0).json();
    assert!(
        topics
            .topics
            .iter()
            .any(|t| t.topic == "remote.t" && t.node == label)
    );
    let conns: ConnectionReport = run(&["connection", "ls"]).expect_code(0).json();
    assert!(conns.down.is_empty());

    // Without the token: 77, saying what to pass.
    let run = home.run(&["queue", "stat", "--url", &url]);
    assert_eq!(run.code, 77, "{}", run.stderr);
    assert!(run.stderr.contains("--token-file"), "{}", run.stderr);
}
