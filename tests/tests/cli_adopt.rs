//! Nodes mqctl does not run: `cluster adopt` records one in a manifest (reads include it, links
//! reach it, lifecycle commands refuse or skip it by name), and `--url` with `--token-file`
//! for `cluster status`, `link add|ls|rm` and `failover status|trigger`.

use std::time::Duration;

use mq_shared::ctl::{AdoptedNode, ClusterStatus, FailoverReport, FailoverStatus, LinkList};
use mq_tests::cli::CliHome;
use mq_tests::*;

const TOKEN: &str = "remote-node-token";

/// A token file holding [`TOKEN`], in `home`'s folder.
fn token_file(home: &CliHome) -> String {
    let path = home.path().join("remote.token");
    std::fs::write(&path, format!("{TOKEN}\n")).expect("writing the token file");
    path.display().to_string()
}

#[tokio::test]
async fn an_adopted_node_is_read_and_linked_but_never_started_or_stopped() {
    let home = CliHome::new();
    let mut remote = Node::start(NodeOpts::new("far-away").token(TOKEN));
    let url = remote.admin_url();
    let tokens = token_file(&home);

    // A wrong token is refused before anything is written.
    let wrong = home.path().join("wrong.token");
    std::fs::write(&wrong, "nope").expect("write");
    let wrong = wrong.display().to_string();
    home.run_by_url(&["cluster", "adopt", "ext"], &[&url], &wrong, &[])
        .expect_code(77);
    assert!(!home.cluster_dir("ext").join("cluster.json").exists());

    let adopt = ["cluster", "adopt", "ext"];
    let run = home
        .run_by_url(&adopt, &[&url], &tokens, &["-o", "json"])
        .expect_code(0);
    let adopted: AdoptedNode = run.json();
    assert_eq!(
        (adopted.node.as_str(), adopted.broker.as_str()),
        ("far-away", "far-away")
    );
    assert!(adopted.created);
    assert_eq!(adopted.transport, remote.stomp_url());
    home.run_by_url(&adopt, &[&url], &tokens, &[])
        .expect_code(2);

    let status: ClusterStatus = home.run_json(&["cluster", "status", "ext"]);
    let n = &status.nodes[0];
    assert!(n.remote && n.alive, "{status:?}");
    assert_eq!(n.pid, Some(remote.pid()));
    assert_eq!(n.transport, remote.stomp_url());

    // Reads and writes go to it.
    home.run(&[
        "queue",
        "send",
        "ext",
        "orders",
        "--body",
        "hi",
        "--messages",
        "3",
    ])
    .expect_code(0);
    assert_eq!(remote.admin().depth("orders").await, 3);

    // Lifecycle commands leave it alone, naming it.
    for verb in ["stop", "kill", "restart", "start"] {
        let run = home.run(&["node", verb, "ext/far-away"]).expect_code(2);
        assert!(
            run.stderr.contains("far-away") && run.stderr.contains("remote node"),
            "{verb}: {}",
            run.stderr
        );
    }
    let run = home.run(&["cluster", "stop", "ext"]).expect_code(0);
    assert!(run.stderr.contains("far-away"), "{}", run.stderr);
    let run = home.run(&["cluster", "start", "ext"]).expect_code(0);
    assert!(run.stderr.contains("far-away"), "{}", run.stderr);
    assert!(remote.is_running());

    // A local cluster links to it, over the transport it reported.
    let _local = home.create("loc", &["--nodes", "1", "--topology", "none"]);
    let adopt = ["cluster", "adopt", "loc"];
    home.run_by_url(&adopt, &[&url], &tokens, &["--name", "ext1"])
        .expect_code(0);
    home.run(&["link", "add", "loc", "node1", "ext1"])
        .expect_code(0);
    let up = poll_until(Duration::from_secs(20), || {
        let list: LinkList = home.run(&["link", "ls", "loc", "-o", "json"]).json();
        list.links
            .iter()
            .any(|l| l.to == "ext1" && l.state == mq_shared::ctl::LinkState::Up)
    });
    assert!(up, "the link to the adopted node never came up");
    let run = home
        .run(&["cluster", "destroy", "loc", "--yes"])
        .expect_code(0);
    assert!(run.stderr.contains("ext1"), "{}", run.stderr);
    assert!(remote.is_running(), "destroy left the remote node running");
}

#[tokio::test]
async fn url_forms_of_status_links_and_failover() {
    let home = CliHome::new();
    let tokens = token_file(&home);
    let a = Node::start(NodeOpts::new("url-a").token(TOKEN));
    let b = Node::start(NodeOpts::new("url-b").token(TOKEN));
    let (ua, ub) = (a.admin_url(), b.admin_url());

    let status: ClusterStatus = home
        .run_by_url(
            &["cluster", "status"],
            &[&ua, &ub],
            &tokens,
            &["-o", "json"],
        )
        .expect_code(0)
        .json();
    assert_eq!(status.nodes.len(), 2);
    assert!(
        status.nodes.iter().all(|n| n.alive && n.remote),
        "{status:?}"
    );
    assert_eq!(status.nodes[1].transport, b.stomp_url());
    // Without the token: refused; nobody there: unavailable.
    home.run(&["cluster", "status", "--url", &ua])
        .expect_code(77);
    home.run(&["cluster", "status", "--url", "http://127.0.0.1:1"])
        .expect_code(69);

    // A connector from a to b, listed with its state, then removed.
    let b_to = b.stomp_url();
    let add = [b_to.as_str(), "--name", "a-to-b", "--ttl", "2"];
    home.run_by_url(&["link", "add"], &[&ua], &tokens, &add)
        .expect_code(0);
    let up = poll_until(Duration::from_secs(20), || {
        let list: LinkList = home
            .run_by_url(&["link", "ls"], &[&ua], &tokens, &["-o", "json"])
            .json();
        list.links.iter().any(|l| {
            l.name == "a-to-b"
                && l.to == "url-b"
                && l.ttl == 2
                && l.state == mq_shared::ctl::LinkState::Up
        })
    });
    assert!(up, "the connector from a to b never came up");
    home.run_by_url(&["link", "rm"], &[&ua], &tokens, &["a-to-b"])
        .expect_code(0);
    let run = home
        .run_by_url(&["link", "rm"], &[&ua], &tokens, &["a-to-b"])
        .expect_code(66);
    assert!(run.stderr.contains("a-to-b"), "{}", run.stderr);
    home.run_by_url(&["link", "add"], &[&ua], &tokens, &["node1", "node2"])
        .expect_code(2);

    // A master/slave group given by its members' URLs.
    let mut group = HaGroup::start("url-ha", 2, &[]);
    let master = group.master(READY_TIMEOUT);
    let urls: Vec<String> = group.nodes.iter().map(|n| n.admin_url()).collect();
    let members = [urls[0].as_str(), urls[1].as_str()];
    let label = |url: &str| url.trim_start_matches("http://").to_string();
    // The members share a data directory, and so the admin token generated in it.
    let ha_token = group.data_dir().join("admin.token").display().to_string();
    let status = ["failover", "status"];
    let st: FailoverStatus = home
        .run_by_url(&status, &members, &ha_token, &["-o", "json"])
        .expect_code(0)
        .json();
    assert_eq!(st.groups.len(), 1, "{st:?}");
    assert_eq!(st.groups[0].master, Some(label(&urls[master])));
    assert_eq!(st.groups[0].slaves, vec![label(&urls[1 - master])]);
    let trigger = ["failover", "trigger"];
    home.run_by_url(&trigger, &members, &ha_token, &["--mode", "kill"])
        .expect_code(2);
    let report: FailoverReport = home
        .run_by_url(&trigger, &members, &ha_token, &["-o", "json"])
        .expect_code(0)
        .json();
    assert_eq!(report.old_master, label(&urls[master]));
    assert_eq!(report.new_master, label(&urls[1 - master]));
    assert_eq!(group.master(READY_TIMEOUT), 1 - master);
}
