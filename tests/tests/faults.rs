//! Faults and limits against real nodes: clients that stop reading (write timeout, stop,
//! stepdown, heart-beats, topic subscribers), too many connections, half-sent frames, huge
//! prefetches, destinations nobody uses, running out of file descriptors, stray bytes and
//! oversized frames, a full disk, and a connector URI with an absurd number.
//!
//! Each case sets small limits by flag so that it finishes in a few seconds, and waits on
//! conditions with bounds. A client that "stops reading" is a raw socket with a receive buffer
//! of a few KiB ([`stalled_subscriber`]) that the node has megabytes to send.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mq_shared::api::{Role, TopicList, TopicStats};
use mq_tests::client::{AckMode, ClientError, ConnectOptions, StompClient};
use mq_tests::frame::{Command, Frame};
use mq_tests::ha::MasterWatch;
use mq_tests::procfs::{cpu_time, mib, open_fds, rss_bytes};
use mq_tests::tmpfs::{Tmpfs, fill_leaving};
use mq_tests::*;

/// Messages a stalled consumer is sent: 40 of 256 KiB, 10 MiB in all, far more than the
/// socket buffers on both sides hold.
const STALL_COUNT: usize = 40;
const STALL_BODY: usize = 256 * 1024;

/// Bound on a node's exit after SIGTERM or on a handover, with `--shutdown-grace 500`.
const STOP_BOUND: Duration = Duration::from_secs(5);

/// Fills queue `dest` with [`STALL_COUNT`] numbered messages of [`STALL_BODY`] bytes.
async fn fill(addr: &str, dest: &str) {
    let mut p = connect(addr).await;
    let bodies = (0..STALL_COUNT).map(|i| numbered_body(i, STALL_BODY));
    send_pipelined(&mut p, dest, bodies, &[], 10).await;
}

/// Fills queue `name` and attaches a `client-individual` subscriber that never reads, waiting
/// until the node has dispatched every message to it.
async fn stall_on_queue(node: &Node, name: &str, heart_beat: &str) -> Stalled {
    let addr = node.stomp_addr();
    fill(&addr, &format!("/queue/{name}")).await;
    let stalled = stalled_subscriber(
        &addr,
        &format!("/queue/{name}"),
        heart_beat,
        &[("ack", "client-individual")],
    )
    .await;
    let admin = node.admin();
    wait_for_async(SOON, async || {
        admin
            .queue(name)
            .await
            .is_some_and(|q| q.inflight == STALL_COUNT as u64)
    })
    .await;
    stalled
}

/// Case 1: a consumer that stops reading is closed after `--write-timeout`, and its unacked
/// messages go to another consumer, flagged `redelivered`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_after_the_write_timeout_and_loses_its_messages_to_another()
 {
    let node = Node::start(NodeOpts::new("wt").args(["--write-timeout", "500"]));
    let mut stalled = stall_on_queue(&node, "wt", "0,0").await;
    let mut other = connect(&node.stomp_addr()).await;
    subscribe(&mut other, "/queue/wt", "o", AckMode::Auto).await;

    let got = drain(&mut other, STALL_COUNT, SOON).await;
    let after = stalled.subscribed_at.elapsed();
    assert!(
        after >= Duration::from_millis(450),
        "redelivered {after:?} after the stalled SUBSCRIBE, before the 500 ms write timeout"
    );
    let numbers: BTreeSet<usize> = got.iter().map(body_number).collect();
    assert_eq!(numbers, (0..STALL_COUNT).collect(), "every message, once");
    for m in &got {
        assert_eq!(m.header("redelivered"), Some("true"), "{:?}", m.headers);
        assert_eq!(m.body.len(), STALL_BODY);
    }
    stalled.conn.expect_closed(SOON).await;
    let q = node.admin().queue("wt").await.expect("queue wt");
    assert_eq!((q.consumers, q.depth), (1, 0), "{q:?}");
}

/// Case 2: SIGTERM while a client that never reads holds megabytes: the node exits 0 within
/// the shutdown grace and a small bound, even though the write timeout is a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_stalled_client_exits_within_the_shutdown_grace() {
    let mut node = Node::start(NodeOpts::new("stop-stall").args([
        "--shutdown-grace",
        "500",
        "--write-timeout",
        "60000",
    ]));
    let _stalled = stall_on_queue(&node, "stop", "0,0").await;
    let started = Instant::now();
    let status = node.terminate();
    let took = started.elapsed();
    assert!(status.success(), "exit status {status}");
    assert!(
        took < STOP_BOUND,
        "SIGTERM took {took:?} with --shutdown-grace 500"
    );
}

/// Case 3: a stepdown on a master with a stalled client: the other member serves STOMP within
/// a bound, and at no instant are both masters.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stepdown_with_a_stalled_client_hands_over_within_a_bound_without_two_masters() {
    let mut group = HaGroup::start(
        "sd-stall",
        2,
        &[
            "--shutdown-grace",
            "500",
            "--write-timeout",
            "60000",
            "--lock-acquire-sleep-interval",
            "50",
        ],
    );
    assert_eq!(group.master(SOON), 0);
    let _stalled = stall_on_queue(&group.nodes[0], "handover", "0,0").await;
    let watch = MasterWatch::start(
        group.nodes.iter().map(Node::admin_url).collect(),
        group.data_dir().to_path_buf(),
    );

    let started = Instant::now();
    let r = group.nodes[0]
        .admin()
        .post("/api/v1/ha/stepdown", None)
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    group.nodes[1].wait_event(Role::Master, STOP_BOUND);
    let addr = group.nodes[1].stomp_addr();
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/after", "a", AckMode::Auto).await;
    send(&mut c, "/queue/after", "served", &[]).await;
    assert_eq!(body_str(&recv(&mut c, SOON).await), "served");
    let took = started.elapsed();
    assert!(
        took < STOP_BOUND,
        "the other member served {took:?} after the stepdown"
    );
    let old = group.nodes[0].admin();
    wait_for_async(SOON, async || old.role().await == Role::Slave).await;

    let report = watch.finish().await;
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert!(report.rounds > 10, "the watch ran {} rounds", report.rounds);
    assert_eq!(group.master(SOON), 1);
}

/// Case 4: a client that agreed on heart-beats, then stops reading and beating, is closed
/// after about twice its interval although writes to it are pending and the write timeout is
/// a minute: a full socket never blocks the read side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heart_beats_are_enforced_while_writes_are_pending() {
    let node = Node::start(NodeOpts::new("hb-stall").args([
        "--heartbeat-ms",
        "100",
        "--write-timeout",
        "60000",
    ]));
    // The client promises a beat every 500 ms: the node allows it twice that.
    let mut stalled = stall_on_queue(&node, "hb", "500,0").await;
    let admin = node.admin();
    wait_for_async(Duration::from_secs(4), async || {
        admin.queue("hb").await.is_some_and(|q| q.consumers == 0)
    })
    .await;
    let after = stalled.subscribed_at.elapsed();
    assert!(
        after >= Duration::from_millis(950),
        "closed {after:?} after the last byte, before twice the 500 ms interval"
    );
    stalled.conn.expect_closed(SOON).await;
    let q = admin.queue("hb").await.expect("queue hb");
    assert_eq!((q.inflight, q.depth), (0, STALL_COUNT as u64), "{q:?}");
}

/// Topic statistics of `name`.
async fn topic(admin: &Admin, name: &str) -> Option<TopicStats> {
    let list: TopicList = admin.get_ok("/api/v1/topics").await;
    list.topics.into_iter().find(|t| t.name == name)
}

/// Case 5: a topic subscriber that never reads, while 5000 × 16 KiB are published with
/// `--pending-message-limit 100`: the node's memory stays bounded, the topic shows what was
/// discarded and at most 100 pending, and a subscriber that reads gets every message.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_topic_subscriber_that_never_reads_stays_bounded_and_holds_nobody_back() {
    const N: usize = 5000;
    const LEN: usize = 16 * 1024;
    let node = Node::start(NodeOpts::new("firehose").args(["--pending-message-limit", "100"]));
    let addr = node.stomp_addr();
    let admin = node.admin();
    let _stalled = stalled_subscriber(
        &addr,
        "/topic/firehose",
        "0,0",
        &[("activemq.prefetchSize", "100")],
    )
    .await;
    let mut reader = connect(&addr).await;
    // A prefetch above the message count: this subscriber is never the slow one.
    subscribe_with(
        &mut reader,
        "/topic/firehose",
        "r",
        AckMode::Auto,
        &[("activemq.prefetchSize", "10000")],
    )
    .await;
    wait_for_async(SOON, async || {
        topic(&admin, "firehose")
            .await
            .is_some_and(|t| t.subscribers == 2)
    })
    .await;
    let before = rss_bytes(node.pid());

    let mut producer = connect(&addr).await;
    let publish = send_pipelined(
        &mut producer,
        "/topic/firehose",
        (0..N).map(|i| numbered_body(i, LEN)),
        &[],
        100,
    );
    let read = drain(&mut reader, N, SOON);
    let ((), got) = tokio::join!(publish, read);
    let numbers: Vec<usize> = got.iter().map(body_number).collect();
    assert_eq!(
        numbers,
        (0..N).collect::<Vec<_>>(),
        "the reader got all, in order"
    );

    let after = rss_bytes(node.pid());
    let t = topic(&admin, "firehose").await.expect("topic firehose");
    let published = (N * LEN) as u64;
    let grown = after.saturating_sub(before);
    eprintln!(
        "RSS {:.1} MiB before, {:.1} MiB after {:.1} MiB published; {t:?}",
        mib(before),
        mib(after),
        mib(published)
    );
    assert!(
        grown < published / 4,
        "RSS grew {:.1} MiB while {:.1} MiB were published",
        mib(grown),
        mib(published)
    );
    assert_eq!(t.enqueued, N as u64, "{t:?}");
    assert!(t.pending <= 100, "{t:?}");
    assert!(
        t.discarded > 0 && t.discarded < N as u64,
        "copies were discarded for the stalled subscriber only: {t:?}"
    );
}

/// Case 6: `--maximum-connections 3`: the fourth connection gets the ERROR and is closed;
/// once one closes, a new one is accepted.
#[tokio::test]
async fn maximum_connections_refuses_the_next_one_until_one_closes() {
    let node = Node::start(NodeOpts::new("maxconn").args(["--maximum-connections", "3"]));
    let addr = node.stomp_addr();
    let mut first = connect(&addr).await;
    let _second = connect(&addr).await;
    let _third = connect(&addr).await;

    let mut fourth = RawConn::open(&addr).await;
    let e = fourth.expect_error_then_close(SOON).await;
    assert_eq!(
        e.header("message"),
        Some("maximum-connections (3) reached; try again later"),
        "{e:?}"
    );

    send(&mut first, "/queue/maxconn", "from the first", &[]).await;
    if let Err(e) = first.disconnect().await {
        panic!("DISCONNECT: {e}");
    }
    // Its slot comes back when the node has finished with it.
    let mut again = None;
    wait_for_async(SOON, async || {
        again = StompClient::connect(&addr, ConnectOptions::default())
            .await
            .ok();
        again.is_some()
    })
    .await;
    let mut again = again.expect("a connection after one closed");
    subscribe(&mut again, "/queue/maxconn", "s", AckMode::Auto).await;
    assert_eq!(body_str(&recv(&mut again, SOON).await), "from the first");
}

/// A 1.2 session that starts a SEND of `content_length` bytes and sends `sent` of them.
async fn half_sent(addr: &str, content_length: usize, sent: usize) -> RawConn {
    let (mut c, _) = RawConn::connect(addr, Some("1.2"), "0,0").await;
    let mut bytes =
        format!("SEND\ndestination:/queue/partial\ncontent-length:{content_length}\n\n")
            .into_bytes();
    bytes.resize(bytes.len() + sent, b'p');
    if let Err(e) = c.write(&bytes).await {
        panic!("writing a partial SEND: {e}");
    }
    c
}

/// Case 7: `--max-inactivity-duration 500`: a partial CONNECT and a half-sent SEND each get
/// their ERROR and are closed; ten connections holding 9 MB partial frames give the memory
/// back once they are closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_inactivity_closes_half_sent_frames_and_frees_their_memory() {
    let node = Node::start(NodeOpts::new("inactive").args(["--max-inactivity-duration", "500"]));
    let addr = node.stomp_addr();
    let bound = Duration::from_secs(3);

    let mut c = RawConn::open(&addr).await;
    let started = Instant::now();
    let _ = c.write(b"CONNECT\naccept-version:1.2\nho").await;
    let e = c.expect_error_then_close(bound).await;
    assert_eq!(
        e.header("message"),
        Some("no data for 500 ms before CONNECT (max-inactivity-duration)")
    );
    assert!(started.elapsed() >= Duration::from_millis(450));

    let started = Instant::now();
    let mut c = half_sent(&addr, 9_000_000, 1000).await;
    let e = c.expect_error_then_close(bound).await;
    assert_eq!(
        e.header("message"),
        Some("no data for 500 ms in the middle of a frame (max-inactivity-duration)")
    );
    assert!(started.elapsed() >= Duration::from_millis(450));

    // Ten frames of 9.5 MB, 9 MB of each sent: the node holds 90 MB for them. The bodies go
    // out 1 MB at a time, round robin, so that none falls silent for 500 ms before all ten
    // are there.
    let before = rss_bytes(node.pid());
    let mut conns = Vec::new();
    for _ in 0..10 {
        conns.push(half_sent(&addr, 9_500_000, 0).await);
    }
    let piece = vec![b'p'; 1_000_000];
    for _ in 0..9 {
        for c in &mut conns {
            if let Err(e) = c.write(&piece).await {
                panic!("writing a partial SEND body: {e}");
            }
        }
    }
    let mut peak = before;
    let held = poll_until(SOON, || {
        peak = peak.max(rss_bytes(node.pid()));
        peak > before + 60 * 1024 * 1024
    });
    for c in &mut conns {
        let e = c.expect_error_then_close(SOON).await;
        assert!(
            e.header("message")
                .is_some_and(|m| m.contains("in the middle of a frame")),
            "{e:?}"
        );
    }
    // Closed on our side too, so the node does not linger reading them.
    drop(conns);
    let mut now = peak;
    let released = poll_until(SOON, || {
        now = rss_bytes(node.pid());
        now < before + 20 * 1024 * 1024
    });
    eprintln!(
        "RSS {:.1} MiB before, {:.1} MiB holding ten partial frames, {:.1} MiB after",
        mib(before),
        mib(peak),
        mib(now)
    );
    assert!(
        held,
        "the partial frames never showed in RSS (peak {:.1} MiB)",
        mib(peak)
    );
    assert!(
        released,
        "RSS stayed at {:.1} MiB after the partial frames were closed ({:.1} MiB before)",
        mib(now),
        mib(before)
    );
    let mut ok = connect(&addr).await;
    send(&mut ok, "/queue/partial", "whole", &[]).await;
}

/// Case 8: a prefetch of 18446744073709551615 is taken (capped, not refused); with
/// `--max-prefetch 5` a client-ack subscriber that acks nothing gets exactly 5 of 20.
#[tokio::test]
async fn huge_prefetches_are_capped_by_max_prefetch() {
    let node = Node::start(NodeOpts::new("prefetch-default"));
    let mut c = connect(&node.stomp_addr()).await;
    subscribe_with(
        &mut c,
        "/queue/huge",
        "h",
        AckMode::ClientIndividual,
        &[("activemq.prefetchSize", "18446744073709551615")],
    )
    .await;
    send(&mut c, "/queue/huge", "one", &[]).await;
    send(&mut c, "/queue/huge", "two", &[]).await;
    let got = drain(&mut c, 2, SOON).await;
    assert_eq!(bodies(&got), ["one", "two"]);
    drop((c, node));

    let node = Node::start(NodeOpts::new("prefetch-5").args(["--max-prefetch", "5"]));
    let addr = node.stomp_addr();
    let mut p = connect(&addr).await;
    send_pipelined(
        &mut p,
        "/queue/capped",
        (0..20).map(|i| numbered_body(i, 16)),
        &[],
        20,
    )
    .await;
    let mut c = connect(&addr).await;
    subscribe_with(
        &mut c,
        "/queue/capped",
        "c",
        AckMode::ClientIndividual,
        &[("activemq.prefetchSize", "18446744073709551615")],
    )
    .await;
    let got = drain(&mut c, 5, SOON).await;
    expect_nothing(&mut c, QUIET).await;
    let q = node.admin().queue("capped").await.expect("queue capped");
    assert_eq!((q.inflight, q.depth), (5, 20), "{q:?}");
    // One ack makes room for exactly one more.
    ack_receipt(&mut c, &got[0]).await;
    let next = recv(&mut c, SOON).await;
    assert_eq!(body_number(&next), 5);
    expect_nothing(&mut c, QUIET).await;
}

/// Case 9: 1000 subscribe/unsubscribe cycles on distinct queues (and 100 on topics) with
/// `--inactive-timeout-before-gc 200` leave the lists empty again; a queue holding a stored
/// message is never removed (and goes once it is empty and unused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inactive_destinations_are_removed_but_not_a_queue_with_a_message() {
    let node = Node::start(NodeOpts::new("gc").args(["--inactive-timeout-before-gc", "200"]));
    let addr = node.stomp_addr();
    let admin = node.admin();
    {
        let mut p = connect(&addr).await;
        send_persistent(&mut p, "/queue/gc-keep", "kept").await;
        if let Err(e) = p.disconnect().await {
            panic!("DISCONNECT: {e}");
        }
    }
    let mut c = connect(&addr).await;
    for (kind, n) in [("queue", 1000), ("topic", 100)] {
        for i in 0..n {
            let dest = format!("/{kind}/gc-{i}");
            subscribe(&mut c, &dest, "s", AckMode::Auto).await;
            if let Err(e) = c.unsubscribe("s").await {
                panic!("UNSUBSCRIBE {dest}: {e}");
            }
        }
    }
    let mut left = Vec::new();
    let emptied = poll_until_async(SOON, async || {
        let queues: mq_shared::api::QueueList = admin.get_ok("/api/v1/queues").await;
        let topics: TopicList = admin.get_ok("/api/v1/topics").await;
        left = queues
            .queues
            .into_iter()
            .map(|q| q.name)
            .chain(
                topics
                    .topics
                    .into_iter()
                    .map(|t| t.name)
                    .filter(|n| n.starts_with("gc-")),
            )
            .collect();
        left.iter().filter(|n| n.starts_with("gc-")).count() <= 1
    })
    .await;
    assert!(
        emptied,
        "still there: {} destinations: {left:?}",
        left.len()
    );
    assert!(left.iter().any(|n| n == "gc-keep"), "{left:?}");
    assert_eq!(admin.depth("gc-keep").await, 1);

    subscribe(&mut c, "/queue/gc-keep", "k", AckMode::Auto).await;
    assert_eq!(body_str(&recv(&mut c, SOON).await), "kept");
    if let Err(e) = c.unsubscribe("k").await {
        panic!("UNSUBSCRIBE: {e}");
    }
    wait_for_async(SOON, async || admin.queue("gc-keep").await.is_none()).await;
}

/// Case 10: a node limited to 64 file descriptors, offered more connections than that: it
/// stays up, does not spin on the failing accepts, and accepts again once they close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_errors_back_off_and_the_node_accepts_again() {
    const LIMIT: u64 = 64;
    let mut node = Node::start(
        NodeOpts::new("emfile")
            .open_files(LIMIT)
            .args(["--connect-timeout-ms", "60000"]),
    );
    let addr = node.stomp_addr();
    let pid = node.pid();
    let mut held = Vec::new();
    for _ in 0..2 * LIMIT {
        // The kernel completes these from its backlog whether or not the node accepts them.
        match tokio::net::TcpStream::connect(&addr).await {
            Ok(s) => held.push(s),
            Err(e) => panic!("TCP connect #{}: {e}", held.len()),
        }
    }
    wait_for(SOON, || {
        open_fds(pid) as u64 >= LIMIT - 1 && node.log().contains("accept failed")
    });
    let cpu_before = cpu_time(pid);
    let window = Instant::now();
    // A measurement window, not a wait: the node must stay idle while refused.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let used = cpu_time(pid).saturating_sub(cpu_before);
    let wall = window.elapsed();
    assert!(node.is_running(), "the node died out of descriptors");
    assert!(
        used < wall / 4,
        "the node used {used:?} of CPU in {wall:?} while accepts failed"
    );

    drop(held);
    let mut c = None;
    wait_for_async(SOON, async || {
        c = StompClient::connect(&addr, ConnectOptions::default())
            .await
            .ok();
        c.is_some()
    })
    .await;
    let mut c = c.expect("a connection once descriptors are free");
    subscribe(&mut c, "/queue/emfile", "s", AckMode::Auto).await;
    send(&mut c, "/queue/emfile", "accepted again", &[]).await;
    assert_eq!(body_str(&recv(&mut c, SOON).await), "accepted again");
    assert_eq!(node.admin().get("/healthz").await.status, 200);
}

/// Case 11: NUL bytes between frames are skipped; the ERROR for a frame over
/// `--max-frame-size` carries its `receipt-id`; and a client still streaming a body without
/// content-length past the limit reads that ERROR instead of a reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stray_nuls_pass_and_limit_errors_carry_receipt_ids_and_survive_a_streaming_client() {
    let node = Node::start(NodeOpts::new("frames").args(["--max-frame-size", "65536"]));
    let addr = node.stomp_addr();

    let (mut c, _) = RawConn::connect(&addr, Some("1.2"), "0,0").await;
    let _ = c
        .write(b"\n\0SEND\ndestination:/queue/nul\nreceipt:n-1\n\nhello\0\0\n\0\0")
        .await;
    let r = c.frame(SOON).await;
    assert_eq!(
        (r.command, r.header("receipt-id")),
        (Command::Receipt, Some("n-1")),
        "{r:?}"
    );
    c.send_frame(
        &Frame::new(Command::Send)
            .with_header("destination", "/queue/nul")
            .with_header("receipt", "n-2")
            .with_body("again"),
    )
    .await;
    assert_eq!(c.frame(SOON).await.header("receipt-id"), Some("n-2"));
    let mut sub = connect(&addr).await;
    subscribe(&mut sub, "/queue/nul", "s", AckMode::Auto).await;
    assert_eq!(bodies(&drain(&mut sub, 2, SOON).await), ["hello", "again"]);

    // Over the limit by content-length, with a receipt.
    let (mut c, _) = RawConn::connect(&addr, Some("1.2"), "0,0").await;
    let _ = c
        .write(b"SEND\ndestination:/queue/big\nreceipt:big-1\ncontent-length:100000\n\n")
        .await;
    let e = c.expect_error_then_close(SOON).await;
    assert_eq!(e.header("receipt-id"), Some("big-1"), "{e:?}");

    // Over the limit by streaming: 3 MiB without content-length, written while reading.
    let (mut c, _) = RawConn::connect(&addr, Some("1.2"), "0,0").await;
    let _ = c
        .write(b"SEND\ndestination:/queue/big\nreceipt:stream-1\n\n")
        .await;
    let body = vec![b's'; 3 * 1024 * 1024];
    let (first, sent) = c.next_while_writing(&body, SOON).await;
    let RawEvent::Frame(e) = first else {
        panic!("expected the ERROR while streaming, got {first:?} after {sent} bytes");
    };
    assert_eq!(e.command, Command::Error, "{e:?}");
    assert!(
        e.header("message").is_some_and(|m| m.contains("65536")),
        "{e:?}"
    );
    assert_eq!(e.header("receipt-id"), Some("stream-1"), "{e:?}");
    // The node read away what was still coming and closed in order: no reset cut the client
    // short.
    if let Err(e) = c.write(&body[sent..]).await {
        panic!(
            "the stream was cut after {sent} of {} bytes: {e}",
            body.len()
        );
    }
    if let Err(e) = c.until_closed(SOON).await {
        panic!("the connection ended with {e}, not an orderly close");
    }
    assert_eq!(node.admin().depth("big").await, 0);
}

/// Case 12: the data directory on a 24 MiB tmpfs filled to leave 2.5 MiB: a 6 MiB persistent
/// SEND gets an ERROR; with room again, a small one gets its RECEIPT and survives a SIGKILL;
/// the refused one is not there after the restart. Skipped (saying why) where mounting is not
/// permitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_a_send_and_a_later_receipted_one_survives_a_crash() {
    let Some(fs) = Tmpfs::mount("24m") else {
        return;
    };
    let mut node = Node::start(NodeOpts::new("diskfull").data(fs.path().join("data")));
    let addr = node.stomp_addr();
    let filler = fs.path().join("filler");
    if let Err(e) = fill_leaving(&filler, 5 * 1024 * 1024 / 2) {
        panic!("filling the tmpfs: {e}");
    }

    let mut c = connect(&addr).await;
    let big = Bytes::from(vec![b'B'; 6 * 1024 * 1024]);
    match c
        .send("/queue/disk", big, &[("persistent", "true")], true)
        .await
    {
        Err(ClientError::Server { message, .. }) => {
            assert!(message.starts_with("message not stored: "), "{message}");
            eprintln!("the full disk's ERROR: {message}");
        }
        other => panic!("a 6 MiB persistent SEND on a full disk got {other:?}"),
    }
    if let Err(e) = std::fs::remove_file(&filler) {
        panic!("removing the filler: {e}");
    }
    let mut c = connect(&addr).await;
    send_persistent(&mut c, "/queue/disk", "small").await;

    node.kill();
    node.restart();
    let mut c = connect(&node.stomp_addr()).await;
    subscribe(&mut c, "/queue/disk", "s", AckMode::ClientIndividual).await;
    let m = recv(&mut c, SOON).await;
    assert_eq!(body_str(&m), "small");
    expect_nothing(&mut c, QUIET).await;
    assert_eq!(node.admin().depth("disk").await, 1);
}

/// Case 13: a connector URI whose backOffMultiplier is 1e21 is refused naming the option: by
/// the admin API (400) and by `mqnode --network` at start.
#[tokio::test]
async fn a_connector_uri_with_an_absurd_number_is_refused_naming_the_option() {
    const URI: &str = "static:(tcp://127.0.0.1:1)?backOffMultiplier=1e21&maxReconnectDelay=100";
    let node = Node::start(NodeOpts::new("baduri"));
    let admin = node.admin();
    let body = serde_json::json!({ "uri": URI }).to_string();
    let r = admin.post("/api/v1/network-connectors", Some(&body)).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("backOffMultiplier"), "{}", r.body);
    let list: mq_shared::api::NetworkConnectorList =
        admin.get_ok("/api/v1/network-connectors").await;
    assert!(list.connectors.is_empty(), "{list:?}");
    assert_eq!(admin.get("/healthz").await.status, 200);

    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8 path");
    let out = run_mqnode_on("baduri2", data, "tcp://127.0.0.1:0", &["--network", URI]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started: {out:?}");
    assert!(stderr.contains("backOffMultiplier"), "{stderr}");
    assert!(out.stdout.is_empty(), "printed a ready line: {out:?}");
}
