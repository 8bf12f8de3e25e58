//! `mqctl console NAME`: the cluster page served by mqctl on 127.0.0.1, its JSON read from the
//! nodes with the cluster's token, its refusal of other host names, and the page in headless
//! Chromium (tests/js/cluster_console_check.mjs) with every node, every link drawn and up,
//! and a queue with its per-node depths and total.

use std::process::Command;
use std::time::Duration;

use mq_tests::background::Background;
use mq_tests::cli::CliHome;
use mq_tests::js::{self, png_size};
use mq_tests::*;

/// Starts `mqctl console NAME` and returns it with the URL it printed.
fn console(home: &CliHome, name: &str) -> (Background, String) {
    let mut c = Background::start(
        Command::new(home.mqctl_path())
            .args(["console", name])
            .env("MQCTL_HOME", home.path()),
    );
    let url = c.line(Duration::from_secs(10));
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with('/'),
        "printed {url}"
    );
    (c, url)
}

#[tokio::test]
async fn mqctl_console_serves_the_cluster_and_only_to_its_own_host() {
    let home = CliHome::new();
    let _cluster = home.create("cons", &["--nodes", "2", "--topology", "line"]);
    home.run(&[
        "queue",
        "send",
        "cons/node2",
        "work",
        "--body",
        "b",
        "--messages",
        "4",
    ])
    .expect_code(0);
    let (mut c, url) = console(&home, "cons");

    let view: serde_json::Value = {
        let r = http(
            reqwest::Method::GET,
            &format!("{url}api/cluster"),
            None,
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    };
    let nodes = view["status"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(nodes.len(), 2, "{view}");
    assert!(nodes.iter().all(|n| n["alive"] == true), "{view}");
    assert_eq!(
        view["status"]["links"].as_array().map(Vec::len),
        Some(1),
        "{view}"
    );
    let work = view["totals"]
        .as_array()
        .and_then(|t| t.iter().find(|q| q["queue"] == "work").cloned())
        .unwrap_or_default();
    assert_eq!(
        (work["depth"].as_u64(), work["nodes"].as_u64()),
        (Some(4), Some(1)),
        "{view}"
    );
    assert!(view["down"].as_array().is_some_and(Vec::is_empty), "{view}");
    // The nodes' token is the cluster's; the page never gets it.
    let token =
        std::fs::read_to_string(home.cluster_dir("cons").join("admin.token")).unwrap_or_default();
    assert!(!token.trim().is_empty());
    let page = http(reqwest::Method::GET, &url, None, None).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("page.js"));
    assert!(!view.to_string().contains(token.trim()) && !page.body.contains(token.trim()));

    // Another host name (a rebound DNS name) is refused.
    let port = url
        .trim_start_matches("http://127.0.0.1:")
        .trim_end_matches('/');
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a client")
        .get(format!("{url}api/cluster"))
        .header("host", format!("attacker.example:{port}"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(r.status(), 421);

    // An unknown cluster is an error before anything is served.
    let run = home.run(&["console", "nope"]).expect_code(66);
    assert!(run.stderr.contains("nope"), "{}", run.stderr);
    assert!(c.is_running());
}

#[tokio::test]
async fn mqctl_console_page_renders_nodes_links_and_queues_in_chromium() {
    const TEST: &str = "cli_console::mqctl_console_page_renders_nodes_links_and_queues_in_chromium";
    let Some((scripts, chromium)) = js::browser_for(TEST) else {
        return;
    };
    let home = CliHome::new();
    let _cluster = home.create("graph", &["--nodes", "3", "--topology", "mesh"]);
    home.run(&[
        "queue",
        "send",
        "graph/node1",
        "orders",
        "--body",
        "o",
        "--messages",
        "5",
    ])
    .expect_code(0);
    home.run(&[
        "queue",
        "send",
        "graph/node3",
        "orders",
        "--body",
        "o",
        "--messages",
        "2",
    ])
    .expect_code(0);
    let (_c, url) = console(&home, "graph");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let shot = dir.path().join("cluster.png");
    let config = serde_json::json!({
        "url": url,
        "cluster": "graph",
        "nodes": ["node1", "node2", "node3"],
        "links": 6,
        "queue": "orders",
        "depths": {"node1": 5, "node3": 2},
        "total": 7,
        "screenshot": shot,
        "chromium": chromium,
    });
    let r = scripts.run(
        "cluster_console_check.mjs",
        &[&config.to_string()],
        Duration::from_secs(120),
    );
    assert_eq!(r["ok"], true, "{r}");
    let png = std::fs::read(&shot).expect("the screenshot was written");
    let (w, h) = png_size(&png).expect("the screenshot is a PNG");
    assert!(w >= 1000 && h >= 700, "screenshot is {w}x{h}");
    assert!(
        png.len() > 30_000,
        "screenshot of {} bytes looks blank",
        png.len()
    );
}
