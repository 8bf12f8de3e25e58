//! What security costs: CONNECTs per second with and without a login, and `ssl://` against
//! `tcp://` for one producer and one consumer.
//!
//! ```text
//! cargo build --release --workspace --bins
//! MQ_TEST_PROFILE=release cargo run --release -p mq-tests --example security_bench -- [RUNS]
//! ```
//!
//! Starts real `mqnode` processes on loopback. Every figure is the median of RUNS (default 5)
//! runs, the variants of one measurement alternating run by run (A B, B A, A B, ...), after an
//! uncounted warm-up.
//!
//! - **connects**: sequential CONNECT → CONNECTED → close, one connection at a time, on a node
//!   with a security file: anonymous (no login), a login the node remembers (the same user
//!   again), a first login (a different user each time: a full argon2id check), a wrong
//!   password (refused after the same check); and anonymous on a node without a security file.
//! - **tls**: one node with a `tcp://` and an `ssl://` transport. Persistent with a receipt per
//!   SEND (window 1) and non-persistent without receipts, 1024-byte bodies, one producer and one
//!   consumer (auto ack) on the same transport; messages per second from the first SEND to the
//!   last MESSAGE.

use std::sync::Arc;
use std::time::Instant;

use mq_tests::certs::Pki;
use mq_tests::client::{AckMode, ConnectOptions, StompClient};
use mq_tests::security::{SecurityDir, SecurityFile, login};
use mq_tests::*;

/// Distinct users for first logins (the node remembers up to 1024 logins).
const FRESH_USERS: usize = 200;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Connects `n` times in a row with the options `opts(i)` makes; connects per second.
async fn connects(
    addr: &str,
    n: usize,
    expect_ok: bool,
    opts: impl Fn(usize) -> ConnectOptions,
) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        match StompClient::connect(addr, opts(i)).await {
            Ok(c) if expect_ok => drop(c),
            Err(_) if !expect_ok => {}
            Ok(_) => panic!("connect {i} should have been refused"),
            Err(e) => panic!("connect {i} failed: {e}"),
        }
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// One producer and one consumer on `url` (same options), `n` messages; messages per second.
async fn one_to_one(url: &str, opts: ConnectOptions, n: usize, persistent: bool) -> f64 {
    let dest = format!("/queue/bench.{}", rand_suffix());
    let mut consumer = StompClient::connect(url, opts.clone())
        .await
        .expect("consumer connect");
    subscribe(&mut consumer, &dest, "s", AckMode::Auto).await;
    let mut producer = StompClient::connect(url, opts)
        .await
        .expect("producer connect");
    let body = bytes::Bytes::from(vec![b'x'; 1024]);
    let start = Instant::now();
    let d = dest.clone();
    let sender = tokio::spawn(async move {
        let headers: &[(&str, &str)] = if persistent {
            &[("persistent", "true")]
        } else {
            &[]
        };
        for _ in 0..n {
            producer
                .send(&d, body.clone(), headers, persistent)
                .await
                .expect("SEND");
        }
        producer
    });
    for i in 0..n {
        match consumer.recv_timeout(SOON).await {
            Ok(Some(_)) => {}
            other => panic!("message {i} of {n}: {other:?}"),
        }
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let producer = sender.await.expect("the producer task");
    let _ = producer.disconnect().await;
    let _ = consumer.disconnect().await;
    rate
}

fn rand_suffix() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);

    // ---- connects ----
    let mut file = SecurityFile::new()
        .anonymous(true)
        .user("app", "app-pw", &["apps"]);
    for u in 0..FRESH_USERS * runs {
        file = file.user(&format!("u{u}"), &format!("pw{u}"), &["apps"]);
    }
    let sec = SecurityDir::new(&file);
    let secured = Node::start(NodeOpts::new("secured").args(sec.args()));
    let open = Node::start(NodeOpts::new("open"));
    let (s, o) = (secured.stomp_addr(), open.stomp_addr());
    // Warm up both nodes (and make the remembered login once); not counted.
    let _ = connects(&o, 500, true, |_| ConnectOptions::default()).await;
    let _ = connects(&s, 500, true, |_| login("app", "app-pw")).await;
    let mut fresh_next = 0usize;
    let mut results: Vec<(&str, Vec<f64>)> = vec![
        ("no security file, anonymous", vec![]),
        ("security file, anonymous", vec![]),
        ("security file, login (remembered)", vec![]),
        ("security file, first login (argon2id)", vec![]),
        ("security file, wrong password (argon2id)", vec![]),
    ];
    for run in 0..runs {
        let mut order: Vec<usize> = (0..results.len()).collect();
        if run % 2 == 1 {
            order.reverse();
        }
        for k in order {
            let rate = match k {
                0 => connects(&o, 2000, true, |_| ConnectOptions::default()).await,
                1 => connects(&s, 2000, true, |_| ConnectOptions::default()).await,
                2 => connects(&s, 2000, true, |_| login("app", "app-pw")).await,
                3 => {
                    let first = fresh_next;
                    fresh_next += FRESH_USERS;
                    connects(&s, FRESH_USERS, true, |i| {
                        login(&format!("u{}", first + i), &format!("pw{}", first + i))
                    })
                    .await
                }
                _ => connects(&s, FRESH_USERS, false, |_| login("app", "wrong")).await,
            };
            results[k].1.push(rate);
        }
    }
    println!("CONNECTs per second (sequential, median of {runs} runs):");
    for (name, rates) in &results {
        println!(
            "  {name:<42} {:>9.0}   runs: {:?}",
            median(rates.clone()),
            rates.iter().map(|r| r.round()).collect::<Vec<_>>()
        );
    }
    drop(secured);
    drop(open);

    // ---- tls against tcp ----
    let pki = Pki::new();
    let node = Node::start(
        NodeOpts::new("tls")
            .args(pki.node_args())
            .args(["--transport".to_string(), "ssl://127.0.0.1:0".to_string()]),
    );
    let tcp = node.ready().transports[0].clone();
    let ssl = node.ready().transports[1].clone();
    assert!(tcp.starts_with("tcp://") && ssl.starts_with("ssl://"));
    let tls: Arc<_> = pki.client();
    let tls_opts = ConnectOptions {
        tls: Some(tls),
        ..ConnectOptions::default()
    };
    // Warm up both transports; not counted.
    one_to_one(&tcp, ConnectOptions::default(), 5_000, false).await;
    one_to_one(&ssl, tls_opts.clone(), 5_000, false).await;
    for (label, n, persistent) in [
        ("persistent, receipt per SEND", 5_000, true),
        ("non-persistent, no receipts", 50_000, false),
    ] {
        let (mut t, mut s) = (Vec::new(), Vec::new());
        for run in 0..runs {
            if run % 2 == 0 {
                t.push(one_to_one(&tcp, ConnectOptions::default(), n, persistent).await);
                s.push(one_to_one(&ssl, tls_opts.clone(), n, persistent).await);
            } else {
                s.push(one_to_one(&ssl, tls_opts.clone(), n, persistent).await);
                t.push(one_to_one(&tcp, ConnectOptions::default(), n, persistent).await);
            }
        }
        let (mt, ms) = (median(t.clone()), median(s.clone()));
        println!(
            "1+1 {label}, {n} x 1024 B: tcp {mt:.0} msg/s, ssl {ms:.0} msg/s ({:+.1}%)   runs tcp {:?} ssl {:?}",
            (ms / mt - 1.0) * 100.0,
            t.iter().map(|r| r.round()).collect::<Vec<_>>(),
            s.iter().map(|r| r.round()).collect::<Vec<_>>()
        );
    }
}
