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
//! uncounted warm-up. Besides the rate, each run reports the CPU time per operation of the node
//! process and of this process (the clients), from `/proc/PID/stat`: on a busy machine the rate
//! follows the neighbours' load, the CPU time much less.
//!
//! - **connects**: sequential CONNECT → CONNECTED → close, one connection at a time, on a node
//!   with a security file: anonymous (no login), a login the node remembers (the same user
//!   again), a first login (a different user each time: a full argon2id check), a wrong
//!   password (refused after the same check), anonymous over `ssl://` (a TLS handshake each);
//!   and anonymous on a node without a security file.
//! - **tls**: one node with a `tcp://` and an `ssl://` transport. Persistent with a receipt per
//!   SEND (window 1) and non-persistent without receipts, 1024-byte bodies, one producer and one
//!   consumer (auto ack) on the same transport; messages per second from the first SEND to the
//!   last MESSAGE.

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

/// User plus system CPU time of process `pid` (`"self"` for this one) so far, in µs.
fn cpu_us(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which may hold spaces) start with the state.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    let ticks: u64 = f.iter().sum();
    ticks as f64 * 1e6 / clock_ticks()
}

/// Clock ticks per second of `/proc/PID/stat` times.
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// One run: operations per second, and CPU µs per operation of the node and of the clients.
#[derive(Debug, Clone, Copy)]
struct Sample {
    rate: f64,
    node_us: f64,
    client_us: f64,
}

/// Times `ops` operations done by `work` on the node with process id `pid`.
async fn measure(pid: u32, ops: usize, work: impl Future<Output = ()>) -> Sample {
    let pid = pid.to_string();
    let (node0, own0, start) = (cpu_us(&pid), cpu_us("self"), Instant::now());
    work.await;
    let secs = start.elapsed().as_secs_f64();
    Sample {
        rate: ops as f64 / secs,
        node_us: (cpu_us(&pid) - node0) / ops as f64,
        client_us: (cpu_us("self") - own0) / ops as f64,
    }
}

/// Medians of the rates and CPU times of `samples`, and the rates of each run.
fn summary(samples: &[Sample]) -> String {
    let m = |f: fn(&Sample) -> f64| median(samples.iter().map(f).collect());
    format!(
        "{:>9.0}/s  node {:>7.1} µs/op  clients {:>7.1} µs/op   rates {:?}",
        m(|s| s.rate),
        m(|s| s.node_us),
        m(|s| s.client_us),
        samples.iter().map(|s| s.rate.round()).collect::<Vec<_>>()
    )
}

/// Connects `n` times in a row with the options `opts(i)` makes.
async fn connects(addr: &str, n: usize, expect_ok: bool, opts: impl Fn(usize) -> ConnectOptions) {
    for i in 0..n {
        match StompClient::connect(addr, opts(i)).await {
            Ok(c) if expect_ok => drop(c),
            Err(_) if !expect_ok => {}
            Ok(_) => panic!("connect {i} should have been refused"),
            Err(e) => panic!("connect {i} failed: {e}"),
        }
    }
}

/// One producer and one consumer on `url` (same options), `n` messages, on the node with
/// process id `pid`; the clock runs from the first SEND to the last MESSAGE.
async fn one_to_one(
    pid: u32,
    url: &str,
    opts: ConnectOptions,
    n: usize,
    persistent: bool,
) -> Sample {
    let dest = format!("/queue/bench.{}", rand_suffix());
    let mut consumer = StompClient::connect(url, opts.clone())
        .await
        .expect("consumer connect");
    subscribe(&mut consumer, &dest, "s", AckMode::Auto).await;
    let mut producer = StompClient::connect(url, opts)
        .await
        .expect("producer connect");
    let body = bytes::Bytes::from(vec![b'x'; 1024]);
    let d = dest.clone();
    let pid_s = pid.to_string();
    let (node0, own0, start) = (cpu_us(&pid_s), cpu_us("self"), Instant::now());
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
    let secs = start.elapsed().as_secs_f64();
    let producer = sender.await.expect("the producer task");
    let sample = Sample {
        rate: n as f64 / secs,
        node_us: (cpu_us(&pid_s) - node0) / n as f64,
        client_us: (cpu_us("self") - own0) / n as f64,
    };
    let _ = producer.disconnect().await;
    let _ = consumer.disconnect().await;
    sample
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
    let pki = Pki::new();
    let secured = Node::start(
        NodeOpts::new("secured")
            .args(sec.args())
            .args(pki.node_args())
            .args(["--transport".to_string(), "ssl://127.0.0.1:0".to_string()]),
    );
    let open = Node::start(NodeOpts::new("open"));
    let (s, o) = (secured.stomp_addr(), open.stomp_addr());
    let s_tls = secured.ready().transports[1].clone();
    let tls_opts = ConnectOptions {
        tls: Some(pki.client()),
        ..ConnectOptions::default()
    };
    // Warm up both nodes (and make the remembered login once); not counted.
    connects(&o, 500, true, |_| ConnectOptions::default()).await;
    connects(&s, 500, true, |_| login("app", "app-pw")).await;
    let mut fresh_next = 0usize;
    let mut results: Vec<(&str, Vec<Sample>)> = vec![
        ("no security file, anonymous", vec![]),
        ("security file, anonymous", vec![]),
        ("security file, login (remembered)", vec![]),
        ("security file, first login (argon2id)", vec![]),
        ("security file, wrong password (argon2id)", vec![]),
        ("security file, anonymous, over ssl://", vec![]),
    ];
    const FAST: usize = 5000;
    for run in 0..runs {
        let mut order: Vec<usize> = (0..results.len()).collect();
        if run % 2 == 1 {
            order.reverse();
        }
        for k in order {
            let (sp, op) = (secured.pid(), open.pid());
            let sample = match k {
                0 => {
                    let work = connects(&o, FAST, true, |_| ConnectOptions::default());
                    measure(op, FAST, work).await
                }
                1 => {
                    let work = connects(&s, FAST, true, |_| ConnectOptions::default());
                    measure(sp, FAST, work).await
                }
                2 => {
                    let work = connects(&s, FAST, true, |_| login("app", "app-pw"));
                    measure(sp, FAST, work).await
                }
                3 => {
                    let first = fresh_next;
                    fresh_next += FRESH_USERS;
                    let work = connects(&s, FRESH_USERS, true, |i| {
                        login(&format!("u{}", first + i), &format!("pw{}", first + i))
                    });
                    measure(sp, FRESH_USERS, work).await
                }
                4 => {
                    let work = connects(&s, FRESH_USERS, false, |_| login("app", "wrong"));
                    measure(sp, FRESH_USERS, work).await
                }
                _ => {
                    let work = connects(&s_tls, FAST / 5, true, |_| tls_opts.clone());
                    measure(sp, FAST / 5, work).await
                }
            };
            results[k].1.push(sample);
        }
    }
    println!("CONNECTs, one at a time (median of {runs} runs):");
    for (name, samples) in &results {
        println!("  {name:<42} {}", summary(samples));
    }
    drop(secured);
    drop(open);

    // ---- tls against tcp ----
    let node = Node::start(
        NodeOpts::new("tls")
            .args(pki.node_args())
            .args(["--transport".to_string(), "ssl://127.0.0.1:0".to_string()]),
    );
    let pid = node.pid();
    let tcp = node.ready().transports[0].clone();
    let ssl = node.ready().transports[1].clone();
    assert!(tcp.starts_with("tcp://") && ssl.starts_with("ssl://"));
    let plain = ConnectOptions::default;
    // Warm up both transports; not counted.
    one_to_one(pid, &tcp, plain(), 5_000, false).await;
    one_to_one(pid, &ssl, tls_opts.clone(), 5_000, false).await;
    for (label, n, persistent) in [
        ("persistent, receipt per SEND", 5_000, true),
        ("non-persistent, no receipts", 200_000, false),
    ] {
        let (mut t, mut s) = (Vec::new(), Vec::new());
        for run in 0..runs {
            if run % 2 == 0 {
                t.push(one_to_one(pid, &tcp, plain(), n, persistent).await);
                s.push(one_to_one(pid, &ssl, tls_opts.clone(), n, persistent).await);
            } else {
                s.push(one_to_one(pid, &ssl, tls_opts.clone(), n, persistent).await);
                t.push(one_to_one(pid, &tcp, plain(), n, persistent).await);
            }
        }
        println!("1+1 {label}, {n} x 1024 B (median of {runs} runs):");
        println!("  tcp {}", summary(&t));
        println!("  ssl {}", summary(&s));
    }
}
