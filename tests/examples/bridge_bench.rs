//! Throughput through one network bridge versus producing straight to the consuming node.
//!
//! ```text
//! cargo build --release -p mqnode --bins
//! MQ_TEST_PROFILE=release cargo run --release -p mq-tests --example bridge_bench -- [MESSAGES] [SIZE]
//! ```
//!
//! Starts real `mqnode` processes on loopback: node C with a consumer, and node A with a
//! `static:` connector to C. One producer sends MESSAGES (default 20000) messages of SIZE bytes
//! (default 1024), each with a receipt, pipelined 1000 at a time; the figure is messages per
//! second from the first send to the last message received on C. Persistent and
//! non-persistent, direct (produce on C) and through the bridge (produce on A).

use std::time::{Duration, Instant};

use mq_tests::client::AckMode;
use mq_tests::*;

async fn run(
    producer_node: &Node,
    consumer_node: &Node,
    dest: &str,
    n: usize,
    size: usize,
    persistent: bool,
) -> f64 {
    let mut c = connect(&consumer_node.stomp_addr()).await;
    subscribe(&mut c, dest, "s", AckMode::Auto).await;
    if producer_node.name() != consumer_node.name() {
        // Wait until the consumer's demand has crossed the bridge.
        let q = dest.trim_start_matches("/queue/").to_string();
        wait_for_async(SOON, async || {
            producer_node
                .admin()
                .queue(&q)
                .await
                .is_some_and(|s| s.consumers > 0)
        })
        .await;
    }
    let addr = producer_node.stomp_addr();
    let dest_p = dest.to_string();
    let start = Instant::now();
    let producer = tokio::spawn(async move {
        let mut p = connect(&addr).await;
        let headers: &[(&str, &str)] = if persistent {
            &[("persistent", "true")]
        } else {
            &[]
        };
        send_pipelined(
            &mut p,
            &dest_p,
            (0..n).map(|i| numbered_body(i, size)),
            headers,
            1000,
        )
        .await;
    });
    let mut got = 0;
    while got < n {
        match c.recv_timeout(Duration::from_secs(30)).await {
            Ok(Some(_)) => got += 1,
            other => panic!("after {got} of {n}: {other:?}"),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    producer.await.expect("producer");
    n as f64 / secs
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let size: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1024);
    let c = Node::start(NodeOpts::new("C"));
    let a =
        Node::start(NodeOpts::new("A").args(["--network", &format!("static:({})", c.stomp_url())]));
    println!("{n} messages of {size} bytes, receipts pipelined 1000 at a time");
    println!("{:<34} {:>12}", "case", "msg/s");
    for (persistent, label) in [(true, "persistent"), (false, "non-persistent")] {
        for round in 0..3 {
            let direct = run(
                &c,
                &c,
                &format!("/queue/direct-{label}-{round}"),
                n,
                size,
                persistent,
            )
            .await;
            let bridged = run(
                &a,
                &c,
                &format!("/queue/bridge-{label}-{round}"),
                n,
                size,
                persistent,
            )
            .await;
            println!(
                "{:<34} {:>12.0}",
                format!("{label} direct (run {})", round + 1),
                direct
            );
            println!(
                "{:<34} {:>12.0}",
                format!("{label} through bridge (run {})", round + 1),
                bridged
            );
        }
    }
}
