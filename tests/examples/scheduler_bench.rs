//! Scheduling lateness: how long after its requested time a scheduled message reaches its
//! consumer.
//!
//! ```text
//! cargo build --release -p mqnode
//! MQ_TEST_PROFILE=release cargo run --release -p mq-tests --example scheduler_bench -- [N] [DELAY_MS]
//! ```
//!
//! Starts one real `mqnode` on loopback and a consumer on `/queue/sched.bench`, then sends N
//! (default 1000) messages with `AMQ_SCHEDULED_DELAY: DELAY_MS` (default 500), pipelined in
//! windows of 100 with a receipt each, first persistent, then non-persistent. Each body holds
//! the wall-clock time (µs) just before its SEND was written; its requested delivery time is
//! that plus the delay, so the figure also counts the SEND's way to the node (a lower bound
//! the node cannot beat). Lateness = the consumer's reading time minus the requested time;
//! prints the median, p99 and maximum in ms, and the earliest (negative would be a message
//! delivered early).

use std::time::Duration;

use bytes::Bytes;
use mq_tests::client::{AckMode, StompClient};
use mq_tests::frame::{Command, Frame};
use mq_tests::*;

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn run(p: &mut StompClient, c: &mut StompClient, n: usize, delay_ms: i64, persistent: bool) {
    let dest = "/queue/sched.bench";
    let delay = delay_ms.to_string();
    let mut ids = Vec::new();
    for start in (0..n).step_by(100) {
        for _ in start..(start + 100).min(n) {
            let id = p.next_receipt_id();
            let f = Frame::new(Command::Send)
                .with_header("destination", dest)
                .with_header("receipt", id.as_str())
                .with_header("persistent", if persistent { "true" } else { "false" })
                .with_header("AMQ_SCHEDULED_DELAY", delay.as_str())
                .with_body(Bytes::from(now_us().to_string()));
            p.queue_frame(&f);
            ids.push(id);
        }
        p.flush().await.expect("SEND frames written");
        for id in ids.drain(..) {
            p.wait_receipt(&id).await.expect("receipt");
        }
    }
    let mut late: Vec<f64> = Vec::with_capacity(n);
    for _ in 0..n {
        let m = recv(c, Duration::from_millis(delay_ms as u64) + SOON).await;
        let sent: i64 = body_str(&m).parse().expect("a time in the body");
        late.push((now_us() - (sent + delay_ms * 1000)) as f64 / 1000.0);
    }
    late.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{} {n} messages, DELAY {delay_ms} ms: lateness median {:.1} ms, p99 {:.1} ms, max {:.1} ms, earliest {:.1} ms",
        if persistent {
            "persistent    "
        } else {
            "non-persistent"
        },
        pct(&late, 0.5),
        pct(&late, 0.99),
        late[late.len() - 1],
        late[0],
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let delay_ms: i64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(500);
    let node = Node::start(NodeOpts::new("sched-bench"));
    let addr = node.stomp_addr();
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/sched.bench", "s", AckMode::Auto).await;
    let mut p = connect(&addr).await;
    run(&mut p, &mut c, n, delay_ms, true).await;
    run(&mut p, &mut c, n, delay_ms, false).await;
}
