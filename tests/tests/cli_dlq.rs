//! `mqctl dlq retry`: dead letters (NACKed, or past `maximum-redeliveries`) go back to the
//! queue they came from, or to `--to`, on a cluster node and on a node given by `--url`.

use mq_shared::ctl::{BrowseReport, ClusterStatus};
use mq_tests::cli::CliHome;
use mq_tests::client::AckMode;
use mq_tests::*;
use serde_json::Value;

/// The `message_id`s of a JSON report's list `key`.
fn ids(report: &Value, key: &str) -> Vec<String> {
    report[key]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|m| m["message_id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Bodies of the messages `mqctl queue browse TARGET QUEUE` shows (none for a queue that is
/// not there).
fn browse(home: &CliHome, target: &str, queue: &str) -> Vec<BrowseReportMessage> {
    let run = home.run(&["queue", "browse", target, queue, "-o", "json"]);
    if run.code == 66 {
        return Vec::new();
    }
    let report: BrowseReport = run.expect_code(0).json();
    report
        .messages
        .into_iter()
        .map(|m| BrowseReportMessage {
            body: m.body,
            original: m.headers.get("original-destination").cloned(),
        })
        .collect()
}

#[derive(Debug, PartialEq, Eq)]
struct BrowseReportMessage {
    body: String,
    original: Option<String>,
}

#[tokio::test]
async fn retry_all_sends_nacked_messages_back_to_the_queues_they_came_from() {
    let home = CliHome::new();
    let cluster = home.create("dlqc", &["--nodes", "1", "--topology", "none"]);
    let status: ClusterStatus = home.run_json(&["cluster", "status", cluster.name()]);
    let addr = status.nodes[0].transport.trim_start_matches("tcp://");
    let mut c = connect_with(addr, home.stomp_options(cluster.name())).await;
    subscribe(&mut c, "/queue/orders", "o", AckMode::ClientIndividual).await;
    subscribe(&mut c, "/queue/invoices", "i", AckMode::ClientIndividual).await;
    for (queue, body) in [("orders", "o1"), ("orders", "o2"), ("invoices", "i1")] {
        send_persistent(&mut c, &format!("/queue/{queue}"), body).await;
    }
    // NACK is the poison ack: each goes straight to the dead-letter queue.
    for m in drain(&mut c, 3, SOON).await {
        nack_receipt(&mut c, &m).await;
    }
    c.disconnect().await.expect("DISCONNECT");
    wait_for(SOON, || browse(&home, cluster.name(), "DLQ").len() == 3);

    // --all asks first; without a terminal to ask on, --yes is needed, and nothing moves.
    let refused = home
        .run(&["dlq", "retry", cluster.name(), "--all"])
        .expect_code(2);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    assert_eq!(browse(&home, cluster.name(), "DLQ").len(), 3);

    let report: Value = home.run_json(&["dlq", "retry", &cluster.node("node1"), "--all", "--yes"]);
    assert_eq!(report["node"], "node1", "{report}");
    assert_eq!(report["dlq"], "DLQ", "{report}");
    assert_eq!(ids(&report, "moved").len(), 3, "{report}");
    assert!(ids(&report, "failed").is_empty(), "{report}");
    let mut whither: Vec<&str> = report["moved"]
        .as_array()
        .map(|l| l.iter().filter_map(|m| m["to"].as_str()).collect())
        .unwrap_or_default();
    whither.sort_unstable();
    assert_eq!(
        whither,
        ["/queue/invoices", "/queue/orders", "/queue/orders"]
    );

    let back = |body: &str| BrowseReportMessage {
        body: body.to_string(),
        original: None,
    };
    assert_eq!(
        browse(&home, cluster.name(), "orders"),
        [back("o1"), back("o2")]
    );
    assert_eq!(browse(&home, cluster.name(), "invoices"), [back("i1")]);
    assert!(browse(&home, cluster.name(), "DLQ").is_empty());

    // And a consumer of the queue gets them again.
    let mut c = connect_with(addr, home.stomp_options(cluster.name())).await;
    subscribe(&mut c, "/queue/orders", "o", AckMode::Auto).await;
    assert_eq!(bodies(&drain(&mut c, 2, SOON).await), ["o1", "o2"]);

    // Nothing left: a sentence, exit 0.
    let empty = home
        .run(&["dlq", "retry", cluster.name(), "--all", "--yes"])
        .expect_code(0);
    assert!(
        empty.stderr.contains("no messages to retry"),
        "{}",
        empty.stderr
    );
}

#[tokio::test]
async fn retry_by_id_and_to_a_new_queue_on_a_node_given_by_url() {
    let home = CliHome::new();
    let token = "a-token-for-the-dlq-test";
    // maximumRedeliveries 0: a message whose consumer leaves without acking is dead-lettered.
    let node = Node::start(NodeOpts::new("dlqurl").token(token).args([
        "--maximum-redeliveries",
        "0",
        "--dlq",
        "Graveyard",
    ]));
    let admin = node.admin();
    let token_file = home.path().join("node.token");
    std::fs::write(&token_file, token).expect("write the token file");
    let tf = token_file.to_str().expect("utf-8 path");
    let url = node.admin_url();
    let retry = |args: &[&str]| {
        let mut all = vec!["dlq", "retry", "--url", &url, "--token-file", tf];
        all.extend_from_slice(&["--dlq", "Graveyard", "-o", "json"]);
        all.extend_from_slice(args);
        home.run(&all)
    };

    let mut c = connect(&node.stomp_addr()).await;
    for body in ["m0", "m1", "m2"] {
        send_persistent(&mut c, "/queue/work", body).await;
    }
    subscribe(&mut c, "/queue/work", "w", AckMode::Client).await;
    drain(&mut c, 3, SOON).await;
    drop(c);
    wait_for_async(SOON, async || admin.depth("Graveyard").await == 3).await;
    let dead: api::BrowseResponse = admin
        .get_ok("/api/v1/queues/Graveyard/messages?limit=10")
        .await;
    let id = |i: usize| dead.messages[i].message_id.clone();
    assert!(
        dead.messages.iter().all(
            |m| m.headers.get("original-destination").map(String::as_str) == Some("/queue/work")
        ),
        "{dead:?}"
    );

    // One message back to where it came from, one to another queue.
    let report: Value = retry(&["--id", &id(0)]).expect_code(0).json();
    assert_eq!(ids(&report, "moved"), [id(0)], "{report}");
    assert_eq!(report["moved"][0]["to"], "/queue/work", "{report}");
    let report: Value = retry(&["--id", &id(1), "--to", "replay"])
        .expect_code(0)
        .json();
    assert_eq!(report["moved"][0]["to"], "/queue/replay", "{report}");
    assert_eq!(admin.depth("work").await, 1);
    assert_eq!(admin.depth("replay").await, 1);

    // An id the queue does not hold: 66, naming it.
    let missing = retry(&["--id", "ID:no-such-message"]).expect_code(66);
    assert!(
        missing.stderr.contains("ID:no-such-message"),
        "{}",
        missing.stderr
    );
    // Without the token: 77.
    let run = home.run(&["dlq", "retry", "--url", &url, "--all", "--yes"]);
    assert_eq!(run.code, 77, "{}", run.stderr);

    // A message put into the dead-letter queue by hand has no original destination: --all
    // moves the others, reports that one and exits 1.
    let sent = admin
        .post(
            "/api/v1/queues/Graveyard/messages",
            Some(r#"{"body": "orphan"}"#),
        )
        .await;
    assert_eq!(sent.status, 201, "{}", sent.body);
    let run = retry(&["--all", "--yes"]).expect_code(1);
    let report: Value = run.json();
    assert_eq!(ids(&report, "moved"), [id(2)], "{report}");
    assert_eq!(ids(&report, "failed").len(), 1, "{report}");
    assert_eq!(report["failed"][0]["code"], "bad_request", "{report}");
    assert!(
        run.stderr.contains("original-destination"),
        "{}",
        run.stderr
    );
    assert_eq!(admin.depth("work").await, 2);
    assert_eq!(admin.depth("Graveyard").await, 1);
}
