//! Virtual-topic fan-out: what it costs a persistent publisher when every message is copied
//! to G consumer groups, against a plain queue.
//!
//! ```text
//! cargo build --release -p mqnode --bins
//! MQ_TEST_PROFILE=release cargo run -p mq-tests --example vt_bench -- [N] [WINDOW] [ADDR]
//! ```
//!
//! Starts one real `mqnode` on loopback (or, with ADDR `host:port`, uses the STOMP broker
//! already listening there: a fresh one per run, since group queues outlive the run), then
//! runs three cases of N (default 5000) persistent 1 KiB messages from one producer, each
//! SEND with a receipt and at most WINDOW (default 1: a receipt per message, awaited before
//! the next SEND) receipts in flight:
//!
//! - `queue`: one consumer on `/queue/vt.bench.plain`, the reference;
//! - `G=1`, `G=4`: to `/topic/VirtualTopic.bench`, with one consumer connection per group,
//!   each subscribed to `/queue/Consumer.gK.VirtualTopic.bench` before the first SEND.
//!
//! Consumers use `ack:auto` and `activemq.prefetchSize:1000`. A warm-up of 1000 messages on
//! the plain queue comes first and is not counted. Per case it prints messages/s published
//! (N over the first SEND to the last receipt) and deliveries/s (G × N over the first SEND to
//! the last MESSAGE of any group), and checks that every group got every message exactly once
//! (it exits 1 if not).

use std::time::{Duration, Instant};

use mq_tests::client::{AckMode, StompClient};
use mq_tests::frame::{Command, Frame};
use mq_tests::*;

const SIZE: usize = 1024;
const TOPIC: &str = "/topic/VirtualTopic.bench";
const QUEUE: &str = "/queue/vt.bench.plain";

/// One case's figures.
struct Figures {
    published: f64,
    delivered: f64,
    ok: bool,
}

/// Sends `n` numbered persistent messages to `dest` with at most `window` receipts in flight;
/// returns when the last receipt came.
async fn produce(p: &mut StompClient, dest: &str, n: usize, window: usize) {
    let mut ids = std::collections::VecDeque::with_capacity(window);
    for i in 0..n {
        let id = p.next_receipt_id();
        let f = Frame::new(Command::Send)
            .with_header("destination", dest)
            .with_header("persistent", "true")
            .with_header("receipt", id.as_str())
            .with_body(numbered_body(i, SIZE));
        p.send_frame(f).await.expect("SEND written");
        ids.push_back(id);
        if ids.len() >= window
            && let Some(oldest) = ids.pop_front()
        {
            p.wait_receipt(&oldest).await.expect("receipt");
        }
    }
    for id in ids {
        p.wait_receipt(&id).await.expect("receipt");
    }
}

/// Receives `n` messages on `c`; returns how often each number came and when the last did.
async fn consume(mut c: StompClient, n: usize) -> (Vec<u32>, Instant) {
    let mut seen = vec![0u32; n];
    let mut got = 0;
    while got < n {
        match c.recv_timeout(Duration::from_secs(30)).await {
            Ok(Some(m)) => {
                let i = body_number(&m);
                if let Some(s) = seen.get_mut(i) {
                    *s += 1;
                }
                got += 1;
            }
            other => panic!("after {got} of {n} messages: {other:?}"),
        }
    }
    let last = Instant::now();
    // Anything more would be a duplicate.
    if let Ok(Some(m)) = c.recv_timeout(Duration::from_millis(200)).await {
        let i = body_number(&m);
        if let Some(s) = seen.get_mut(i) {
            *s += 1;
        }
    }
    let _ = c.disconnect().await;
    (seen, last)
}

/// One producer to `send_to`, one consumer per entry of `queues`, all subscribed first.
async fn case(addr: &str, send_to: &str, queues: &[String], n: usize, window: usize) -> Figures {
    let mut consumers = Vec::new();
    for q in queues {
        let mut c = connect(addr).await;
        subscribe_with(
            &mut c,
            q,
            "s",
            AckMode::Auto,
            &[("activemq.prefetchSize", "1000")],
        )
        .await;
        consumers.push(c);
    }
    let mut p = connect(addr).await;
    let start = Instant::now();
    let tasks: Vec<_> = consumers
        .into_iter()
        .map(|c| tokio::spawn(consume(c, n)))
        .collect();
    produce(&mut p, send_to, n, window).await;
    let published = n as f64 / start.elapsed().as_secs_f64();
    let _ = p.disconnect().await;
    let mut ok = true;
    let mut last = start;
    for (q, t) in queues.iter().zip(tasks) {
        let (seen, at) = t.await.expect("consumer task");
        last = last.max(at);
        let lost = seen.iter().filter(|c| **c == 0).count();
        let dup = seen.iter().filter(|c| **c > 1).count();
        if lost + dup > 0 {
            eprintln!("{q}: {lost} lost, {dup} duplicated");
            ok = false;
        }
    }
    let delivered = (n * queues.len()) as f64 / (last - start).as_secs_f64();
    Figures {
        published,
        delivered,
        ok,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5000);
    let window: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1).max(1);
    let external = args.get(3).cloned();
    let node = external
        .is_none()
        .then(|| Node::start(NodeOpts::new("vt-bench")));
    let addr = node
        .as_ref()
        .map_or_else(|| external.unwrap_or_default(), Node::stomp_addr);
    println!(
        "{addr}: {n} persistent messages of {SIZE} bytes, {window} receipt(s) in flight, consumers ack:auto prefetch 1000"
    );
    case(&addr, QUEUE, &[QUEUE.to_string()], 1000, window).await;
    let group = |k: usize| format!("/queue/Consumer.g{k}.VirtualTopic.bench");
    let cases: [(&str, &str, Vec<String>); 3] = [
        ("queue", QUEUE, vec![QUEUE.to_string()]),
        ("G=1", TOPIC, (1..=1).map(group).collect()),
        ("G=4", TOPIC, (1..=4).map(group).collect()),
    ];
    let mut all_ok = true;
    let mut g1 = None;
    for (label, dest, queues) in &cases {
        let f = case(&addr, dest, queues, n, window).await;
        all_ok &= f.ok;
        let ratio = match (*label, g1) {
            ("G=1", _) => {
                g1 = Some(f.published);
                String::new()
            }
            ("G=4", Some(one)) => format!("  (published G=4/G=1 {:.2})", f.published / one),
            _ => String::new(),
        };
        println!(
            "{label:<5} published {:>9.0} msg/s  delivered {:>9.0} msg/s  exactly once: {}{ratio}",
            f.published,
            f.delivered,
            if f.ok { "yes" } else { "NO" },
        );
    }
    drop(node);
    if !all_ok {
        std::process::exit(1);
    }
}
