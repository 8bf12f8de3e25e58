//! A line A → B → C with `networkTTL=2`: demand from C crosses two hops, messages produced on
//! A reach C exactly once, also when B is SIGKILLed and restarted in the middle of the run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mq_tests::network::*;
use mq_tests::*;

const N: usize = 10_000;
const OPTS: &str = "networkTTL=2&initialReconnectDelay=100&maxReconnectDelay=500";

/// Starts C, then B linked to C, then A linked to B.
fn line() -> (Node, Node, Node) {
    let c = Node::start(NodeOpts::new("C"));
    let b = Node::start(NodeOpts::new("B").args(["--network", &static_uri(&[&c], OPTS)]));
    let a = Node::start(NodeOpts::new("A").args(["--network", &static_uri(&[&b], OPTS)]));
    (a, b, c)
}

async fn assert_empty(nodes: &[&Node], queue: &str) {
    for n in nodes {
        wait_for_async(SOON, async || n.admin().depth(queue).await == 0).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_persistent_messages_cross_two_hops_exactly_once() {
    let (a, b, c) = line();
    let mut cc = consumer(&c, "/queue/line").await;
    // C's consumer is demand on B (1 hop) and, within networkTTL=2, on A (2 hops).
    wait_consumers(&b, "line", 1).await;
    wait_consumers(&a, "line", 1).await;
    let t = Instant::now();
    produce(&a, "/queue/line", 0..N, 256).await;
    let got = collect(std::slice::from_mut(&mut cc), N, SOON).await;
    eprintln!("{N} messages A → B → C in {:?}", t.elapsed());
    assert_exactly_once(&got, N);
    expect_nothing(&mut cc, QUIET).await;
    assert_empty(&[&a, &b, &c], "line").await;
    assert_eq!(
        a.admin().queue("line").await.map(|q| q.forwarded),
        Some(N as u64)
    );
    assert_eq!(
        b.admin().queue("line").await.map(|q| q.forwarded),
        Some(N as u64)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_killed_and_restarted_midway_loses_and_duplicates_nothing() {
    let (a, mut b, c) = line();
    let mut cc = consumer(&c, "/queue/crash").await;
    wait_consumers(&a, "crash", 1).await;
    let t = Instant::now();

    // The producer runs on its own while B dies and comes back.
    let addr = a.stomp_addr();
    let produced = Arc::new(AtomicBool::new(false));
    let done = produced.clone();
    let producer = tokio::spawn(async move {
        let mut p = connect(&addr).await;
        send_numbered(&mut p, "/queue/crash", 0..N, 256, 100).await;
        done.store(true, Ordering::SeqCst);
    });

    let mut seen: Vec<usize> = Vec::with_capacity(N);
    let mut killed = false;
    let mut last = Instant::now();
    while seen.len() < N {
        match cc.recv_timeout(Duration::from_millis(20)).await {
            Ok(Some(f)) => {
                seen.push(body_number(&f));
                last = Instant::now();
            }
            Ok(None) => assert!(
                last.elapsed() < LINK,
                "received {} of {N}; nothing for {LINK:?}",
                seen.len()
            ),
            Err(e) => panic!("consumer on C failed: {e}"),
        }
        if !killed && seen.len() >= N / 3 {
            killed = true;
            b.kill();
            b.restart();
            last = Instant::now();
        }
    }
    producer.await.expect("producer task");
    assert!(produced.load(Ordering::SeqCst));
    eprintln!("{N} messages A → B(killed) → C in {:?}", t.elapsed());
    assert_exactly_once(&[seen], N);
    expect_nothing(&mut cc, Duration::from_secs(1)).await;
    assert_empty(&[&a, &b, &c], "crash").await;
}
