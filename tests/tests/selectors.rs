//! JMS selectors on SUBSCRIBE: a queue consumer gets only matching messages and the rest stay
//! for other consumers, a topic subscriber only matching copies, a malformed selector is an
//! ERROR naming the column, and through a bridge only what a remote consumer's selector (or
//! the union of several) matches crosses.

use mq_tests::client::AckMode;
use mq_tests::network::*;
use mq_tests::*;

const OPTS: &str = "initialReconnectDelay=100";

/// Sends `n` persistent messages to `dest`, alternating `color:red` and `color:blue`, with
/// bodies numbered 0..n.
async fn send_colors(c: &mut client::StompClient, dest: &str, n: usize) {
    for i in 0..n {
        let color = if i % 2 == 0 { "red" } else { "blue" };
        send(
            c,
            dest,
            numbered_body(i, 16),
            &[("persistent", "true"), ("color", color)],
        )
        .await;
    }
}

/// A connection to `addr` subscribed to `dest` (id `s`, ack `auto`) with `selector`.
async fn selecting(addr: &str, dest: &str, selector: &str) -> client::StompClient {
    let mut c = connect(addr).await;
    subscribe_with(&mut c, dest, "s", AckMode::Auto, &[("selector", selector)]).await;
    c
}

fn numbers(frames: &[frame::Frame]) -> Vec<usize> {
    frames.iter().map(body_number).collect()
}

#[tokio::test]
async fn a_queue_consumer_gets_only_matches_and_the_rest_wait_for_others() {
    let node = Node::start(NodeOpts::new("sel-queue"));
    let addr = node.stomp_addr();
    let mut red = selecting(&addr, "/queue/paint", "color = 'red'").await;
    let mut p = connect(&addr).await;
    send_colors(&mut p, "/queue/paint", 10).await;
    let got = drain(&mut red, 5, SOON).await;
    assert_eq!(numbers(&got), vec![0, 2, 4, 6, 8]);
    expect_nothing(&mut red, QUIET).await;
    assert_eq!(node.admin().depth("paint").await, 5, "the blue ones wait");

    // Another consumer, without a selector, takes what the first refuses.
    let mut any = connect(&addr).await;
    subscribe(&mut any, "/queue/paint", "s", AckMode::Auto).await;
    let got = drain(&mut any, 5, SOON).await;
    assert_eq!(numbers(&got), vec![1, 3, 5, 7, 9]);
    wait_for_async(SOON, async || node.admin().depth("paint").await == 0).await;
}

#[tokio::test]
async fn a_topic_subscriber_gets_only_matching_copies_and_jms_names_read_the_headers() {
    let node = Node::start(NodeOpts::new("sel-topic"));
    let addr = node.stomp_addr();
    let mut all = connect(&addr).await;
    subscribe(&mut all, "/topic/events", "s", AckMode::Auto).await;
    let selector = "JMSType = 'order' AND JMSPriority > 5 AND JMSCorrelationID LIKE 'c-%' \
                    AND JMSXGroupID IS NULL AND JMSDeliveryMode = 'NON_PERSISTENT' \
                    AND JMSMessageID LIKE 'ID:%' AND JMSTimestamp > 0";
    let mut picky = selecting(&addr, "/topic/events", selector).await;
    let mut p = connect(&addr).await;
    let cases: [(&str, &[(&str, &str)]); 4] = [
        (
            "match",
            &[
                ("type", "order"),
                ("priority", "7"),
                ("correlation-id", "c-1"),
            ],
        ),
        (
            "low",
            &[
                ("type", "order"),
                ("priority", "4"),
                ("correlation-id", "c-2"),
            ],
        ),
        (
            "grouped",
            &[
                ("type", "order"),
                ("priority", "9"),
                ("correlation-id", "c-3"),
                ("JMSXGroupID", "g"),
            ],
        ),
        ("untyped", &[("priority", "9"), ("correlation-id", "c-4")]),
    ];
    for (body, headers) in cases {
        send(&mut p, "/topic/events", body, headers).await;
    }
    assert_eq!(
        bodies(&drain(&mut all, 4, SOON).await),
        ["match", "low", "grouped", "untyped"]
    );
    assert_eq!(bodies(&drain(&mut picky, 1, SOON).await), ["match"]);
    expect_nothing(&mut picky, QUIET).await;
}

#[tokio::test]
async fn a_malformed_selector_is_an_error_naming_the_column_and_subscribes_nothing() {
    let node = Node::start(NodeOpts::new("sel-bad"));
    let addr = node.stomp_addr();
    let mut p = connect(&addr).await;
    send(&mut p, "/queue/kept", "waiting", &[]).await;
    for (selector, column) in [
        ("color = ", "column 9"),
        ("a = 1 AND OR b", "column 11"),
        ("x LIKE 5", "column 8"),
    ] {
        let mut c = connect(&addr).await;
        let e = subscribe_refused(&mut c, "/queue/kept", &[("selector", selector)]).await;
        assert!(
            e.contains("selector") && e.contains(column),
            "{selector}: {e}"
        );
    }
    let q = node.admin().queue("kept").await.expect("queue kept");
    assert_eq!(
        (q.consumers, q.depth),
        (0, 1),
        "no subscription was created"
    );
    // An empty selector is no selector (JMS).
    let mut c = selecting(&addr, "/queue/kept", " ").await;
    assert_eq!(body_str(&recv(&mut c, SOON).await), "waiting");
}

#[tokio::test]
async fn after_a_restart_a_selective_consumer_gets_its_matches_and_leaves_the_rest() {
    let mut node = Node::start(NodeOpts::new("sel-restart"));
    let mut p = connect(&node.stomp_addr()).await;
    send_colors(&mut p, "/queue/stored", 6).await;
    drop(p);
    node.restart();
    let mut red = selecting(&node.stomp_addr(), "/queue/stored", "color <> 'blue'").await;
    assert_eq!(numbers(&drain(&mut red, 3, SOON).await), vec![0, 2, 4]);
    expect_nothing(&mut red, QUIET).await;
    wait_for_async(SOON, async || node.admin().depth("stored").await == 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_what_a_remote_selector_matches_crosses_a_bridge() {
    let b = Node::start(NodeOpts::new("B"));
    let a = Node::start(NodeOpts::new("A").args(["--network", &static_uri(&[&b], OPTS)]));
    wait_connected(&a, 1).await;
    let mut red = selecting(&b.stomp_addr(), "/queue/work", "color = 'red'").await;
    wait_consumers(&a, "work", 1).await;
    let mut p = connect(&a.stomp_addr()).await;
    send_colors(&mut p, "/queue/work", 10).await;
    assert_eq!(
        numbers(&drain(&mut red, 5, SOON).await),
        vec![0, 2, 4, 6, 8]
    );
    expect_nothing(&mut red, QUIET).await;
    wait_for_async(SOON, async || {
        a.admin()
            .queue("work")
            .await
            .is_some_and(|q| q.forwarded == 5)
    })
    .await;
    let q = a.admin().queue("work").await.expect("queue work on A");
    assert_eq!(
        (q.depth, q.forwarded),
        (5, 5),
        "the blue ones never crossed"
    );

    // A second remote consumer with another selector: the union crosses.
    let mut blue = selecting(&b.stomp_addr(), "/queue/work", "color = 'blue'").await;
    assert_eq!(
        numbers(&drain(&mut blue, 5, SOON).await),
        vec![1, 3, 5, 7, 9]
    );
    wait_for_async(SOON, async || a.admin().depth("work").await == 0).await;

    // Topics too: only matching copies are forwarded.
    let mut t = selecting(&b.stomp_addr(), "/topic/feed", "color = 'red'").await;
    wait_for_async(LINK, async || {
        let l: api::TopicList = a.admin().get_ok("/api/v1/topics").await;
        l.topics
            .iter()
            .any(|t| t.name == "feed" && t.subscribers == 1)
    })
    .await;
    for i in 0..4 {
        let color = if i % 2 == 0 { "red" } else { "blue" };
        send(
            &mut p,
            "/topic/feed",
            numbered_body(i, 16),
            &[("color", color)],
        )
        .await;
    }
    assert_eq!(numbers(&drain(&mut t, 2, SOON).await), vec![0, 2]);
    let l: api::TopicList = a.admin().get_ok("/api/v1/topics").await;
    let feed = l
        .topics
        .iter()
        .find(|t| t.name == "feed")
        .expect("topic feed on A");
    assert_eq!(feed.forwarded, 2, "only the red copies crossed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_consumer_without_a_selector_makes_everything_cross() {
    let b = Node::start(NodeOpts::new("B"));
    let a = Node::start(NodeOpts::new("A").args(["--network", &static_uri(&[&b], OPTS)]));
    wait_connected(&a, 1).await;
    let red = selecting(&b.stomp_addr(), "/queue/mixed", "color = 'red'").await;
    let mut any = connect(&b.stomp_addr()).await;
    subscribe(&mut any, "/queue/mixed", "s", AckMode::Auto).await;
    wait_consumers(&a, "mixed", 1).await;
    let mut p = connect(&a.stomp_addr()).await;
    // Every third one blue, so that taking turns alone would hand red some blue ones.
    for i in 0..12 {
        let color = if i % 3 == 2 { "blue" } else { "red" };
        let headers = [("persistent", "true"), ("color", color)];
        send(&mut p, "/queue/mixed", numbered_body(i, 16), &headers).await;
    }
    let got = collect(&mut [red, any], 12, SOON).await;
    assert_exactly_once(&got, 12);
    assert!(
        got[0].iter().all(|i| i % 3 != 2),
        "red got only red: {:?}",
        got[0]
    );
    assert!(
        got[1].iter().any(|i| i % 3 == 2),
        "blue crossed: {:?}",
        got[1]
    );
    wait_for_async(SOON, async || a.admin().depth("mixed").await == 0).await;
}

#[test]
fn mqctl_bench_measures_with_a_selector_and_counts_what_it_refuses_as_lost() {
    let node = Node::start(NodeOpts::new("sel-bench"));
    let home = mq_tests::cli::CliHome::new();
    let stomp = node.stomp_url();
    let selector = "region = 'eu' AND amount > 100 AND kind IN ('a', 'b')";
    let base = [
        "bench",
        "--stomp",
        &stomp,
        "--non-persistent",
        "--messages",
        "200",
        "--selector",
        selector,
        "-o",
        "json",
    ];
    let mut args = base.to_vec();
    args.extend([
        "--header",
        "region=eu",
        "--header",
        "amount=250",
        "--header",
        "kind=a",
    ]);
    let report: mq_shared::bench::BenchReport = home.run(&args).expect_code(0).json();
    assert_eq!((report.sent, report.received, report.lost), (200, 200, 0));
    assert_eq!(report.params.load.selector.as_deref(), Some(selector));
    assert_eq!(
        report.params.load.headers.get("amount").map(String::as_str),
        Some("250")
    );
    // Messages the selector refuses are never delivered: lost, exit 1, and left queued.
    let mut args = base.to_vec();
    args.extend([
        "--queue",
        "refused",
        "--drain-timeout",
        "0.5",
        "--header",
        "region=us",
    ]);
    let run = home.run(&args);
    assert_eq!(run.code, 1, "{}", run.stderr);
}
