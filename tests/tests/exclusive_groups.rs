//! Exclusive consumers (`activemq.exclusive:true`: while attached, the exclusive consumer gets
//! every message of the queue; the next one takes over when it leaves) and message groups
//! (`JMSXGroupID`: one consumer per group while it lives, groups spread over consumers,
//! `JMSXGroupSeq: -1` closes a group).

use std::collections::{BTreeMap, BTreeSet};

use mq_tests::client::{AckMode, StompClient};
use mq_tests::network::*;
use mq_tests::*;

const EXCLUSIVE: (&str, &str) = ("activemq.exclusive", "true");

/// Receives until `n` messages arrived over `clients` (each within [`SOON`] of the previous
/// one); per client, the groups its messages belonged to.
async fn groups_seen(clients: &mut [StompClient], n: usize) -> Vec<BTreeSet<String>> {
    let mut seen = vec![BTreeSet::new(); clients.len()];
    let mut total = 0;
    let mut last = std::time::Instant::now();
    while total < n {
        for (i, c) in clients.iter_mut().enumerate() {
            while let Ok(Some(f)) = c.recv_timeout(std::time::Duration::from_millis(5)).await {
                seen[i].insert(f.header("JMSXGroupID").unwrap_or("").to_string());
                total += 1;
                last = std::time::Instant::now();
            }
        }
        assert!(
            last.elapsed() < SOON,
            "got {total} of {n} messages: {seen:?}"
        );
    }
    seen
}

/// Sends `per_group` messages of each group in `groups`, interleaved.
async fn send_groups(p: &mut StompClient, dest: &str, groups: &[&str], per_group: usize) {
    for i in 0..per_group {
        for g in groups {
            send(
                p,
                dest,
                format!("{g}-{i}"),
                &[("JMSXGroupID", g), ("persistent", "true")],
            )
            .await;
        }
    }
}

#[tokio::test]
async fn the_exclusive_consumer_gets_everything_and_the_next_takes_over() {
    let node = Node::start(NodeOpts::new("exclusive"));
    let addr = node.stomp_addr();
    let mut plain = connect(&addr).await;
    subscribe(&mut plain, "/queue/ex", "s", AckMode::Auto).await;
    let mut first = connect(&addr).await;
    subscribe_with(&mut first, "/queue/ex", "s", AckMode::Auto, &[EXCLUSIVE]).await;
    let mut second = connect(&addr).await;
    subscribe_with(&mut second, "/queue/ex", "s", AckMode::Auto, &[EXCLUSIVE]).await;
    let mut p = connect(&addr).await;
    for i in 0..6 {
        send(&mut p, "/queue/ex", numbered_body(i, 16), &[]).await;
    }
    let got: Vec<usize> = drain(&mut first, 6, SOON)
        .await
        .iter()
        .map(body_number)
        .collect();
    assert_eq!(got, (0..6).collect::<Vec<_>>());
    expect_nothing(&mut plain, QUIET).await;
    expect_nothing(&mut second, QUIET).await;
    let _ = first.disconnect().await;
    for i in 6..9 {
        send(&mut p, "/queue/ex", numbered_body(i, 16), &[]).await;
    }
    let got: Vec<usize> = drain(&mut second, 3, SOON)
        .await
        .iter()
        .map(body_number)
        .collect();
    assert_eq!(got, vec![6, 7, 8]);
    expect_nothing(&mut plain, QUIET).await;
    // With no exclusive consumer left, dispatch is shared again.
    let _ = second.disconnect().await;
    send(&mut p, "/queue/ex", numbered_body(9, 16), &[]).await;
    assert_eq!(body_number(&recv(&mut plain, SOON).await), 9);
}

#[tokio::test]
async fn exclusive_options_are_checked() {
    let node = Node::start(NodeOpts::new("exclusive-bad"));
    let mut c = connect(&node.stomp_addr()).await;
    let e = subscribe_refused(&mut c, "/topic/t", &[EXCLUSIVE]).await;
    assert!(
        e.contains("activemq.exclusive") && e.contains("topic"),
        "{e}"
    );
    let mut c = connect(&node.stomp_addr()).await;
    let e = subscribe_refused(&mut c, "/queue/q", &[("activemq.exclusive", "yes")]).await;
    assert!(
        e.contains("activemq.exclusive 'yes' must be true or false"),
        "{e}"
    );
}

#[tokio::test]
async fn a_group_stays_with_one_consumer_and_groups_spread() {
    let node = Node::start(NodeOpts::new("groups"));
    let addr = node.stomp_addr();
    let mut a = connect(&addr).await;
    subscribe(&mut a, "/queue/g", "s", AckMode::Auto).await;
    let mut b = connect(&addr).await;
    subscribe(&mut b, "/queue/g", "s", AckMode::Auto).await;
    let mut p = connect(&addr).await;
    send_groups(&mut p, "/queue/g", &["red", "blue", "green", "black"], 5).await;
    let mut clients = [a, b];
    let seen = groups_seen(&mut clients, 20).await;
    assert!(
        seen[0].is_disjoint(&seen[1]),
        "a group went to both: {seen:?}"
    );
    assert!(
        !seen[0].is_empty() && !seen[1].is_empty(),
        "groups did not spread: {seen:?}"
    );

    // The owner of "red" leaves: the group moves to the other consumer, whole.
    let [a, b] = clients;
    let (owner, mut other) = if seen[0].contains("red") {
        (a, b)
    } else {
        (b, a)
    };
    let _ = owner.disconnect().await;
    send_groups(&mut p, "/queue/g", &["red"], 3).await;
    let got = drain(&mut other, 3, SOON).await;
    assert_eq!(bodies(&got), ["red-0", "red-1", "red-2"]);
    // JMSXGroupSeq -1 closes the group (its last message still goes to its owner).
    send(
        &mut p,
        "/queue/g",
        "red-last",
        &[("JMSXGroupID", "red"), ("JMSXGroupSeq", "-1")],
    )
    .await;
    assert_eq!(body_str(&recv(&mut other, SOON).await), "red-last");
    // A newcomer is given some of the groups that start now (round robin).
    let mut newcomer = connect(&addr).await;
    subscribe(&mut newcomer, "/queue/g", "s", AckMode::Auto).await;
    for i in 0..4 {
        let g = format!("new-{i}");
        send(&mut p, "/queue/g", g.clone(), &[("JMSXGroupID", &g)]).await;
    }
    let mut clients = [other, newcomer];
    let seen = groups_seen(&mut clients, 4).await;
    assert!(!seen[1].is_empty(), "the newcomer got no group: {seen:?}");
}

#[tokio::test]
async fn after_a_restart_each_group_is_still_consumed_by_one_consumer() {
    let mut node = Node::start(NodeOpts::new("groups-restart"));
    let mut p = connect(&node.stomp_addr()).await;
    send_groups(&mut p, "/queue/stored", &["a", "b", "c"], 4).await;
    drop(p);
    node.restart();
    let addr = node.stomp_addr();
    let mut x = connect(&addr).await;
    subscribe(&mut x, "/queue/stored", "s", AckMode::Auto).await;
    let mut y = connect(&addr).await;
    subscribe(&mut y, "/queue/stored", "s", AckMode::Auto).await;
    let mut clients = [x, y];
    let seen = groups_seen(&mut clients, 12).await;
    assert!(
        seen[0].is_disjoint(&seen[1]),
        "a group went to both: {seen:?}"
    );
    let all: BTreeSet<String> = seen.iter().flatten().cloned().collect();
    assert_eq!(all, ["a", "b", "c"].map(String::from).into_iter().collect());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_exclusive_consumer_keeps_messages_from_the_bridge_until_it_leaves() {
    let b = Node::start(NodeOpts::new("B"));
    let a = Node::start(
        NodeOpts::new("A").args(["--network", &static_uri(&[&b], "initialReconnectDelay=100")]),
    );
    wait_connected(&a, 1).await;
    let mut remote = consumer(&b, "/queue/ex").await;
    wait_consumers(&a, "ex", 1).await;
    let mut ex = connect(&a.stomp_addr()).await;
    // A prefetch of 2: with room or without, nothing goes to the bridge.
    subscribe_with(
        &mut ex,
        "/queue/ex",
        "s",
        AckMode::ClientIndividual,
        &[EXCLUSIVE, ("activemq.prefetchSize", "2")],
    )
    .await;
    produce(&a, "/queue/ex", 0..6, 16).await;
    let got = drain(&mut ex, 2, SOON).await;
    assert_eq!(got.iter().map(body_number).collect::<Vec<_>>(), vec![0, 1]);
    expect_nothing(&mut remote, QUIET).await;
    let _ = ex.disconnect().await;
    // Its two unacked ones come back; everything now crosses to B.
    let got = collect(std::slice::from_mut(&mut remote), 6, SOON).await;
    let mut by: BTreeMap<usize, usize> = BTreeMap::new();
    for i in &got[0] {
        *by.entry(*i).or_default() += 1;
    }
    assert_eq!(
        by.keys().copied().collect::<Vec<_>>(),
        (0..6).collect::<Vec<_>>()
    );
}
