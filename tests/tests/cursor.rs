//! The store cursor: with a small `--memory-usage`, a queue keeps only a window of its
//! messages in memory and the rest in the store, read back as consumers make room. What
//! clients see must not change: order and priorities, restarts, redelivery and the DLQ,
//! expiry, browse, purge and move, non-persistent spill, producer flow control, takeover and
//! bridges, all with most of the backlog on disk.

use std::collections::BTreeSet;
use std::ops::Range;
use std::time::{Duration, Instant};

use mq_tests::api::{BrokerInfo, BrowseResponse, MoveResponse, PurgeResponse, QueueStats};
use mq_tests::client::{AckMode, StompClient};
use mq_tests::frame::{Command, Frame};
use mq_tests::*;

/// Memory every node here runs with: the smallest allowed.
const MEMORY: &str = "1MiB";
/// Bytes of each message body: about 800 of them fill [`MEMORY`].
const BODY: usize = 1024;
/// Messages of a backlog: most of them cannot be in memory.
const BACKLOG: usize = 3000;

/// A node with [`MEMORY`], plus `extra` flags.
fn small(name: &str, extra: &[&str]) -> NodeOpts {
    NodeOpts::new(name)
        .args(["--memory-usage", MEMORY])
        .args(extra.iter().copied())
}

/// Sends numbered persistent messages `range` of [`BODY`] bytes to `dest`, with `headers`,
/// receipts pipelined.
async fn fill(addr: &str, dest: &str, range: Range<usize>, headers: &[(&str, &str)]) {
    let mut p = connect(addr).await;
    let mut all = vec![("persistent", "true")];
    all.extend_from_slice(headers);
    send_pipelined(
        &mut p,
        dest,
        range.map(|i| numbered_body(i, BODY)),
        &all,
        200,
    )
    .await;
    let _ = p.disconnect().await;
}

/// Fills queue `name` on `node` with the numbered persistent messages `0..n` ([`fill`]) and
/// checks that most of them are only in the store; the queue's statistics then.
async fn backlog_on_disk(node: &Node, name: &str, n: usize) -> QueueStats {
    fill(&node.stomp_addr(), &format!("/queue/{name}"), 0..n, &[]).await;
    let q = stats(&node.admin(), name).await;
    assert_mostly_on_disk(&q, n);
    q
}

/// Statistics of queue `name`; panics when the node does not know it.
async fn stats(admin: &Admin, name: &str) -> QueueStats {
    match admin.queue(name).await {
        Some(q) => q,
        None => panic!("no queue {name}"),
    }
}

/// The node's usage report.
async fn usage(admin: &Admin) -> mq_tests::api::UsageReport {
    let b: BrokerInfo = admin.get_ok("/api/v1/broker").await;
    b.usage
}

/// Panics unless `q` holds `depth` messages of which most are only in the store.
#[track_caller]
fn assert_mostly_on_disk(q: &QueueStats, depth: usize) {
    assert_eq!(q.depth, depth as u64, "{q:?}");
    assert!(
        q.in_memory * 2 < q.depth,
        "{} of {} messages in memory: the window should hold well under half",
        q.in_memory,
        q.depth
    );
}

/// A connection to `addr` subscribed to `dest` with ack `client-individual` and a prefetch of
/// `prefetch` messages.
async fn with_prefetch(addr: &str, dest: &str, prefetch: &str) -> StompClient {
    let mut c = connect(addr).await;
    let headers = [("activemq.prefetchSize", prefetch)];
    subscribe_with(&mut c, dest, "s", AckMode::ClientIndividual, &headers).await;
    c
}

/// Receives `n` messages and returns their numbers, checking each body's length.
async fn numbers(c: &mut StompClient, n: usize) -> Vec<usize> {
    drain(c, n, SOON)
        .await
        .iter()
        .map(|m| {
            assert_eq!(m.body.len(), BODY, "{:?}", m.headers);
            body_number(m)
        })
        .collect()
}

#[tokio::test]
async fn a_backlog_far_beyond_the_window_is_consumed_complete_and_in_order() {
    const N: usize = 4000;
    let node = Node::start(small("order", &[]));
    let admin = node.admin();
    let addr = node.stomp_addr();
    backlog_on_disk(&node, "order", N).await;
    let u = usage(&admin).await;
    assert_eq!(u.memory.limit, 1 << 20);
    assert!(u.memory.used <= u.memory.limit, "{u:?}");
    assert!(
        u.store.used >= (N * BODY) as u64,
        "every message is in the store: {u:?}"
    );

    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/order", "s", AckMode::Auto).await;
    assert_eq!(numbers(&mut c, N).await, (0..N).collect::<Vec<_>>());
    expect_nothing(&mut c, QUIET).await;
    wait_for_async(SOON, async || admin.depth("order").await == 0).await;
    let u = usage(&admin).await;
    wait_for_async(SOON, async || usage(&admin).await.store.used == 0).await;
    assert!(u.memory.used <= u.memory.limit, "{u:?}");
}

/// Priorities 0–9 interleaved: a consumer taking one message at a time gets the highest
/// priority first and, within one, the order they were sent, also for messages that waited
/// in the store while lower priorities were in memory.
#[tokio::test]
async fn priorities_beyond_the_window_go_highest_first_then_in_send_order() {
    let node = Node::start(small("prio", &[]));
    let admin = node.admin();
    let addr = node.stomp_addr();
    let mut p = connect(&addr).await;
    let mut expected: Vec<(u8, usize)> = Vec::with_capacity(BACKLOG);
    for chunk in (0..BACKLOG).collect::<Vec<_>>().chunks(200) {
        let mut ids = Vec::new();
        for &i in chunk {
            let prio = (i % 10) as u8;
            expected.push((9 - prio, i));
            let id = p.next_receipt_id();
            let f = Frame::new(Command::Send)
                .with_header("destination", "/queue/prio")
                .with_header("persistent", "true")
                .with_header("priority", prio.to_string().as_str())
                .with_header("receipt", id.as_str())
                .with_body(numbered_body(i, BODY));
            p.queue_frame(&f);
            ids.push(id);
        }
        p.flush().await.expect("writing SEND frames");
        for id in ids {
            p.wait_receipt(&id).await.expect("a receipt");
        }
    }
    expected.sort();
    assert_mostly_on_disk(&stats(&admin, "prio").await, BACKLOG);

    // One message at a time: with a prefetch of 1, each dispatch picks the best one waiting.
    let mut c = with_prefetch(&addr, "/queue/prio", "1").await;
    let mut got = Vec::with_capacity(BACKLOG);
    for _ in 0..BACKLOG {
        let m = recv(&mut c, SOON).await;
        got.push(body_number(&m));
        ack(&mut c, &m).await;
    }
    let want: Vec<usize> = expected.iter().map(|(_, i)| *i).collect();
    if got != want {
        let at = got.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(0);
        panic!(
            "priority order broken at delivery {at}: got {:?}, expected {:?} (priority = number % 10)",
            &got[at..(at + 10).min(got.len())],
            &want[at..(at + 10).min(want.len())]
        );
    }
    expect_nothing(&mut c, QUIET).await;
}

/// A clean stop and a crash with a backlog on disk: the depth is known at once from the
/// store's counts (no message is read before a consumer comes), every message is delivered
/// once, and delivered unacked messages come back flagged.
#[tokio::test]
async fn restarts_with_a_backlog_on_disk_recover_the_depth_from_counts_and_deliver_each_once() {
    let mut node = Node::start(small("restart", &[]));
    let addr = node.stomp_addr();
    fill(&addr, "/queue/restart", 0..BACKLOG, &[]).await;

    // 0..5 acked; 5..15 delivered (the prefetch of 10 refills as acks come) and left
    // unacked at the clean stop.
    let mut c = with_prefetch(&addr, "/queue/restart", "10").await;
    let got = drain(&mut c, 10, SOON).await;
    assert_eq!(
        got.iter().map(body_number).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
    for m in &got[..5] {
        ack_receipt(&mut c, m).await;
    }
    let more = drain(&mut c, 5, SOON).await;
    assert_eq!(
        more.iter().map(body_number).collect::<Vec<_>>(),
        (10..15).collect::<Vec<_>>()
    );
    let status = node.terminate();
    assert!(status.success(), "SIGTERM is a clean stop: {status}");

    node.restart();
    let admin = node.admin();
    let q = stats(&admin, "restart").await;
    assert_eq!(q.depth, (BACKLOG - 5) as u64, "{q:?}");
    assert_eq!(q.in_memory, 0, "no message read before a consumer: {q:?}");
    // After the clean stop only the delivered unacked messages are flagged.
    let mut c = with_prefetch(&addr, "/queue/restart", "10").await;
    let mut got = drain(&mut c, 10, SOON).await;
    for m in &got {
        ack_receipt(&mut c, m).await;
    }
    got.extend(drain(&mut c, 10, SOON).await);
    for (k, m) in got.iter().enumerate() {
        let i = body_number(m);
        assert_eq!(i, k + 5, "in order after the restart");
        let flagged = m.header("redelivered") == Some("true");
        assert_eq!(flagged, i < 15, "message {i}: redelivered={flagged}");
    }
    // 5..15 acked now; 15..25 delivered and unacked when the node is killed.

    node.kill();
    node.restart();
    let q = stats(&admin, "restart").await;
    assert_eq!(q.depth, (BACKLOG - 15) as u64, "{q:?}");
    assert_eq!(q.in_memory, 0, "no message read before a consumer: {q:?}");
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/restart", "s", AckMode::Auto).await;
    let got = drain(&mut c, BACKLOG - 15, SOON).await;
    let nums: Vec<usize> = got.iter().map(body_number).collect();
    assert_eq!(
        nums,
        (15..BACKLOG).collect::<Vec<_>>(),
        "each once, in order"
    );
    // Delivered before the crash: flagged. After a crash the node flags every recovered
    // message (it cannot know which were delivered), so the others are flagged too.
    let unflagged: Vec<usize> = got
        .iter()
        .filter(|m| m.header("redelivered") != Some("true"))
        .map(body_number)
        .collect();
    assert!(
        unflagged.is_empty(),
        "after SIGKILL every recovered message may have been delivered; not flagged: {:?}",
        &unflagged[..unflagged.len().min(10)]
    );
    expect_nothing(&mut c, QUIET).await;
    wait_for_async(SOON, async || admin.depth("restart").await == 0).await;
}

/// Messages read back from disk, refused (NACK) or left unacked by consumers that go away
/// past `--maximum-redeliveries`, land in the DLQ exactly once.
#[tokio::test]
async fn messages_read_back_from_disk_reach_the_dlq_exactly_once() {
    const ACKED_UP_TO: usize = 2500;
    let node = Node::start(small("dlq", &["--maximum-redeliveries", "1"]));
    let admin = node.admin();
    let addr = node.stomp_addr();
    backlog_on_disk(&node, "work", BACKLOG).await;

    // The first 2500: every hundredth refused, the others acknowledged.
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/work", "s", AckMode::ClientIndividual).await;
    for expected in 0..ACKED_UP_TO {
        let m = recv(&mut c, SOON).await;
        assert_eq!(body_number(&m), expected);
        if expected % 100 == 0 {
            c.nack(&m).await.expect("NACK");
        } else if expected + 1 == ACKED_UP_TO {
            ack_receipt(&mut c, &m).await;
        } else {
            ack(&mut c, &m).await;
        }
    }
    c.disconnect().await.expect("DISCONNECT");

    // The rest, which were all on disk: consumers take them and go away without acking,
    // until each is past its redelivery limit.
    let mut rounds = 0;
    loop {
        let left = admin.depth("work").await as usize;
        if left == 0 {
            break;
        }
        rounds += 1;
        assert!(
            rounds <= 3,
            "{left} messages still in the queue after 2 rounds"
        );
        let mut c = connect(&addr).await;
        subscribe(&mut c, "/queue/work", "s", AckMode::ClientIndividual).await;
        let got = drain(&mut c, left, SOON).await;
        assert!(got.iter().all(|m| body_number(m) >= ACKED_UP_TO));
        c.disconnect().await.expect("DISCONNECT");
    }

    let dead: BTreeSet<usize> = (0..ACKED_UP_TO)
        .filter(|i| i % 100 == 0)
        .chain(ACKED_UP_TO..BACKLOG)
        .collect();
    wait_for_async(SOON, async || admin.depth("DLQ").await == dead.len() as u64).await;
    let q = stats(&admin, "work").await;
    assert_eq!(q.dead_lettered, dead.len() as u64, "{q:?}");

    let mut d = connect(&addr).await;
    subscribe(&mut d, "/queue/DLQ", "d", AckMode::Auto).await;
    let got = drain(&mut d, dead.len(), SOON).await;
    let mut seen = BTreeSet::new();
    for m in &got {
        let i = body_number(m);
        assert!(seen.insert(i), "message {i} dead-lettered twice");
        assert_eq!(m.header("original-destination"), Some("/queue/work"));
    }
    assert_eq!(seen, dead);
    expect_nothing(&mut d, QUIET).await;
}

/// Messages whose `expires` passes while they wait in the store are not delivered and count
/// as expired; the ones around them are delivered in order.
#[tokio::test]
async fn messages_expiring_on_disk_are_not_delivered_and_count_as_expired() {
    const BEFORE: usize = 1000;
    const EXPIRING: usize = 2000;
    const AFTER: usize = 500;
    let node = Node::start(small("expiry", &[]));
    let admin = node.admin();
    let addr = node.stomp_addr();
    fill(&addr, "/queue/ttl", 0..BEFORE, &[]).await;
    let expires = now_ms() + 1500;
    let at = expires.to_string();
    fill(
        &addr,
        "/queue/ttl",
        BEFORE..BEFORE + EXPIRING,
        &[("expires", at.as_str())],
    )
    .await;
    let total = BEFORE + EXPIRING + AFTER;
    fill(&addr, "/queue/ttl", BEFORE + EXPIRING..total, &[]).await;
    assert_mostly_on_disk(&stats(&admin, "ttl").await, total);
    wait_for(SOON, || now_ms() > expires + 50);

    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/ttl", "s", AckMode::Auto).await;
    let want: Vec<usize> = (0..BEFORE).chain(BEFORE + EXPIRING..total).collect();
    assert_eq!(numbers(&mut c, want.len()).await, want);
    expect_nothing(&mut c, QUIET).await;
    wait_for_async(SOON, async || admin.depth("ttl").await == 0).await;
    let q = stats(&admin, "ttl").await;
    assert_eq!(q.expired, EXPIRING as u64, "{q:?}");
}

/// The admin API's browse and `mqctl queue browse` see the messages that are only on disk,
/// in queue order, without bringing them into memory.
#[tokio::test]
async fn browse_sees_messages_on_disk() {
    let node = Node::start(small("browse", &[]));
    let admin = node.admin();
    let before = backlog_on_disk(&node, "seen", BACKLOG).await;

    let b: BrowseResponse = admin
        .get_ok(&format!("/api/v1/queues/seen/messages?limit={BACKLOG}"))
        .await;
    let nums: Vec<usize> = b
        .messages
        .iter()
        .map(|m| m.body[..8].parse().expect("a numbered body"))
        .collect();
    assert_eq!(nums, (0..BACKLOG).collect::<Vec<_>>());
    assert!(b.messages.iter().all(|m| m.persistent && !m.inflight));
    let after = stats(&admin, "seen").await;
    assert_eq!(
        after.in_memory, before.in_memory,
        "browsing reads the store without moving messages into memory"
    );

    let home = mq_tests::cli::CliHome::new();
    let token_file = home.path().join("browse.token");
    std::fs::write(&token_file, node.token().expect("the node's admin token"))
        .expect("writing the token file");
    let tf = token_file.to_str().expect("a UTF-8 path");
    let url = node.admin_url();
    let browse = ["queue", "browse", "seen", "--limit", "0"];
    let run = home
        .run_by_url(&browse, &[&url], tf, &["-o", "json"])
        .expect_code(0);
    let report: mq_shared::ctl::BrowseReport = run.json();
    assert_eq!(report.messages.len(), BACKLOG);
    assert_eq!(
        report.messages.last().map(|m| &m.body[..8]),
        Some(format!("{:08}", BACKLOG - 1).as_str())
    );
    let stat: mq_shared::ctl::QueueStatReport = home
        .run_by_url(&["queue", "stat"], &[&url], tf, &["-o", "json"])
        .expect_code(0)
        .json();
    let row = stat
        .queues
        .iter()
        .find(|q| q.queue == "seen")
        .expect("queue seen in queue stat");
    assert_eq!(row.depth, BACKLOG as u64);
    assert_eq!(row.in_memory, after.in_memory);
}

/// A purge removes the backlog on disk too: the depth is 0, stays 0 after a crash, nothing
/// is delivered, and messages sent after the purge are.
#[tokio::test]
async fn a_purged_backlog_stays_purged_after_a_crash() {
    let mut node = Node::start(small("purge", &[]));
    let admin = node.admin();
    let addr = node.stomp_addr();
    backlog_on_disk(&node, "gone", BACKLOG).await;

    let r = admin.post("/api/v1/queues/gone/purge", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let purged: PurgeResponse = r.json();
    assert_eq!(purged.removed, BACKLOG as u64);
    assert_eq!(admin.depth("gone").await, 0);
    wait_for_async(SOON, async || usage(&admin).await.store.used == 0).await;

    node.kill();
    node.restart();
    assert_eq!(admin.depth("gone").await, 0);
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/gone", "s", AckMode::Auto).await;
    expect_nothing(&mut c, QUIET).await;
    fill(&addr, "/queue/gone", BACKLOG..BACKLOG + 10, &[]).await;
    assert_eq!(
        numbers(&mut c, 10).await,
        (BACKLOG..BACKLOG + 10).collect::<Vec<_>>()
    );
    expect_nothing(&mut c, QUIET).await;
}

/// The admin API's move takes a message from deep in the backlog on disk.
#[tokio::test]
async fn a_message_deep_in_the_backlog_on_disk_can_be_moved() {
    const MOVED: usize = BACKLOG - 100;
    let node = Node::start(small("move", &[]));
    let admin = node.admin();
    let addr = node.stomp_addr();
    backlog_on_disk(&node, "deep", BACKLOG).await;

    let b: BrowseResponse = admin
        .get_ok(&format!("/api/v1/queues/deep/messages?limit={BACKLOG}"))
        .await;
    let id = b.messages[MOVED].message_id.clone();
    assert!(b.messages[MOVED].body.starts_with(&format!("{MOVED:08}")));
    let path = format!("/api/v1/queues/deep/messages/{id}/move");
    let r = admin.post(&path, Some(r#"{"to": "/queue/moved"}"#)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let m: MoveResponse = r.json();
    assert_eq!(
        (m.from.as_str(), m.to.as_str()),
        ("/queue/deep", "/queue/moved")
    );
    assert_eq!(admin.depth("deep").await, (BACKLOG - 1) as u64);
    assert_eq!(admin.depth("moved").await, 1);
    let again = admin.post(&path, Some(r#"{"to": "/queue/moved"}"#)).await;
    assert_eq!(again.status, 404, "moved once only: {}", again.body);

    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/moved", "m", AckMode::Auto).await;
    let got = recv(&mut c, SOON).await;
    assert_eq!(body_number(&got), MOVED);
    assert_eq!(got.header("message-id"), Some(id.as_str()));
    subscribe(&mut c, "/queue/deep", "s", AckMode::Auto).await;
    let want: Vec<usize> = (0..BACKLOG).filter(|i| *i != MOVED).collect();
    assert_eq!(numbers(&mut c, want.len()).await, want);
    expect_nothing(&mut c, QUIET).await;
}

/// What a spill may add to the node's resident memory, whatever its volume: spills waiting
/// for the store writer (4 MiB at most), a read back from the store (4 MiB), the store's page
/// cache and write buffers, and the allocator's slack.
const SPILL_SLACK: u64 = 48 << 20;

/// Bytes of each non-persistent message of the spill test.
const SPILL_BODY: usize = 16 * 1024;

/// Sends non-persistent messages `range` of [`SPILL_BODY`] bytes: none is held (the temp
/// store has room), the temp store's usage rises, and a consumer then gets them all in
/// order. Returns the highest resident memory of the node seen meanwhile.
async fn spill_round(node: &Node, range: Range<usize>) -> u64 {
    let admin = node.admin();
    let addr = node.stomp_addr();
    let mut rss = mq_tests::procfs::rss_bytes(node.pid());
    let mut p = connect(&addr).await;
    send_pipelined(
        &mut p,
        "/queue/spill",
        range.clone().map(|i| numbered_body(i, SPILL_BODY)),
        &[("persistent", "false")],
        20,
    )
    .await;
    rss = rss.max(mq_tests::procfs::rss_bytes(node.pid()));
    let u = usage(&admin).await;
    let sent = (range.len() * SPILL_BODY) as u64;
    assert!(
        u.temp.used >= sent.saturating_sub(2 * u.memory.limit),
        "all but what memory holds went to the temp store: {u:?}"
    );
    // A queue may hold 64 messages whatever the limit.
    let floor = 64 * (SPILL_BODY as u64 + 1024);
    assert!(u.memory.used <= u.memory.limit.max(floor), "{u:?}");
    assert_eq!(
        mq_tests::security::metric(node, "mq_producer_flow_control_held_total").await,
        0,
        "no SEND is held while the temp store has room"
    );
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/spill", "s", AckMode::Auto).await;
    let mut next = range.start;
    while next < range.end {
        let got = drain(&mut c, 200.min(range.end - next), SOON).await;
        for m in &got {
            assert_eq!(body_number(m), next, "in order");
            assert_eq!(m.body.len(), SPILL_BODY);
            next += 1;
        }
        rss = rss.max(mq_tests::procfs::rss_bytes(node.pid()));
    }
    expect_nothing(&mut c, QUIET).await;
    wait_for_async(SOON, async || usage(&admin).await.temp.used == 0).await;
    rss
}

/// Non-persistent messages past `memory-usage` spill to the temp store and are delivered in
/// order, and the node's resident memory stays bounded: a round of 96 MiB after a first one
/// of 24 MiB (which sets the base: the store's cache, the allocator's pools) adds less than
/// [`SPILL_SLACK`], whatever it spills (288 MiB add as much as 96 MiB do; before spills were
/// paced by the store writer, 96 MiB added about 100 MiB).
async fn non_persistent_messages_spill_and_memory_stays_bounded(name: &str, extra: &[&str]) {
    const WARM: usize = 1536;
    const ROUND: usize = 4 * WARM;
    let node = Node::start(small(name, extra));
    let base = spill_round(&node, 0..WARM).await;
    let peak = spill_round(&node, WARM..WARM + ROUND).await;
    let bound = base + SPILL_SLACK;
    eprintln!(
        "{name}: base {:.1} MiB, peak {:.1} MiB for {:.0} MiB spilled",
        mq_tests::procfs::mib(base),
        mq_tests::procfs::mib(peak),
        mq_tests::procfs::mib((ROUND * SPILL_BODY) as u64)
    );
    assert!(
        peak < bound,
        "resident memory {:.1} MiB, bound {:.1} MiB (base {:.1} MiB + the slack)",
        mq_tests::procfs::mib(peak),
        mq_tests::procfs::mib(bound),
        mq_tests::procfs::mib(base)
    );
}

#[tokio::test]
async fn non_persistent_messages_spill_on_a_persistent_node() {
    non_persistent_messages_spill_and_memory_stays_bounded("spill", &[]).await;
}

#[tokio::test]
async fn non_persistent_messages_spill_on_a_node_without_persistence() {
    non_persistent_messages_spill_and_memory_stays_bounded("spilltemp", &["--persistent", "false"])
        .await;
}

/// Bytes of each message of the flow-control tests: 256 of them fill a 1MiB store.
const FLOW_BODY: usize = 4096;
/// Messages the flow-control producers send: half again what the store takes.
const FLOW_N: usize = 400;

/// A producer that beats every 200 ms (the node offers 200 ms too), with `FLOW_N` persistent
/// SENDs written at once: their receipt ids.
async fn flood(node: &Node, dest: &str) -> (StompClient, Vec<String>) {
    let opts = mq_tests::client::ConnectOptions {
        heart_beat: (200, 200),
        ..Default::default()
    };
    let mut p = connect_with(&node.stomp_addr(), opts).await;
    assert_eq!(p.connected().header("heart-beat"), Some("200,200"));
    let mut ids = Vec::with_capacity(FLOW_N);
    for i in 0..FLOW_N {
        let id = p.next_receipt_id();
        let f = Frame::new(Command::Send)
            .with_header("destination", dest)
            .with_header("persistent", "true")
            .with_header("receipt", id.as_str())
            .with_body(numbered_body(i, FLOW_BODY));
        p.queue_frame(&f);
        ids.push(id);
    }
    p.flush().await.expect("writing SEND frames");
    (p, ids)
}

/// Waits for the receipts of `ids` in order while they come (each within `QUIET` of the
/// previous one); returns how many came. An ERROR is returned as it is.
async fn receipts_while_they_come(
    p: &mut StompClient,
    ids: &[String],
) -> (usize, Option<mq_tests::client::ClientError>) {
    for (n, id) in ids.iter().enumerate() {
        match tokio::time::timeout(Duration::from_secs(1), p.wait_receipt(id)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return (n, Some(e)),
            Err(_) => return (n, None),
        }
    }
    (ids.len(), None)
}

/// With a store full (`--store-usage 1MiB`), a producer is held: no RECEIPT while the store
/// is full, the held counter rises, heart-beats keep its connection alive, and once a consumer
/// makes room the RECEIPTs come and every receipted message is delivered.
#[tokio::test]
async fn a_producer_past_store_usage_is_held_until_a_consumer_makes_room() {
    let node = Node::start(small(
        "held",
        &["--store-usage", "1MiB", "--heartbeat-ms", "200"],
    ));
    let admin = node.admin();
    let (mut p, ids) = flood(&node, "/queue/full").await;
    let (stored, err) = receipts_while_they_come(&mut p, &ids).await;
    assert!(err.is_none(), "held, not refused: {err:?}");
    assert!(
        (100..FLOW_N).contains(&stored),
        "{stored} of {FLOW_N} receipted before the store filled"
    );
    assert!(mq_tests::security::metric(&node, "mq_producer_flow_control_held_total").await >= 1);
    assert_eq!(admin.depth("full").await, stored as u64);
    let full = usage(&admin).await;

    // Held for 10 heart-beat intervals: no receipt, no error, the connection stays.
    let held = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(2), p.wait_receipt(&ids[stored])).await;
    assert!(
        r.is_err(),
        "a RECEIPT or ERROR while the store is full: {r:?}"
    );
    assert!(held.elapsed() >= Duration::from_secs(2));
    let conns: mq_tests::api::ConnectionList = admin.get_ok("/api/v1/connections").await;
    assert_eq!(
        conns.connections.len(),
        1,
        "the held producer is still connected"
    );

    // A consumer makes room: the rest are stored, receipted and delivered.
    let mut c = connect(&node.stomp_addr()).await;
    subscribe(&mut c, "/queue/full", "s", AckMode::Auto).await;
    let (rest, got) = tokio::join!(
        async {
            for id in &ids[stored..] {
                if let Err(e) = p.wait_receipt(id).await {
                    panic!("receipt {id} after room was made: {e}");
                }
            }
        },
        drain(&mut c, FLOW_N, SOON)
    );
    let () = rest;
    let nums: Vec<usize> = got.iter().map(body_number).collect();
    assert_eq!(nums, (0..FLOW_N).collect::<Vec<_>>());
    expect_nothing(&mut c, QUIET).await;
    // The limit held while the producer was held, also against SENDs read before the
    // first of them was stored.
    assert!(
        full.store.used <= full.store.limit,
        "{} bytes stored past a store-usage of {}: {full:?}",
        full.store.used.saturating_sub(full.store.limit),
        full.store.limit
    );
}

/// `--send-fail-if-no-space true`: the SEND past a full store gets ERROR "store full" at once;
/// other clients go on, and so does sending once there is room.
#[tokio::test]
async fn send_fail_if_no_space_answers_store_full_and_the_node_goes_on() {
    let node = Node::start(small(
        "refuse",
        &[
            "--store-usage",
            "1MiB",
            "--heartbeat-ms",
            "200",
            "--send-fail-if-no-space",
            "true",
        ],
    ));
    let admin = node.admin();
    let mut other = connect(&node.stomp_addr()).await;
    // One SEND at a time, each waiting for its receipt.
    let mut p = connect(&node.stomp_addr()).await;
    let mut stored = 0;
    let err = loop {
        assert!(
            stored < FLOW_N,
            "every SEND receipted: the store never filled"
        );
        let body = numbered_body(stored, FLOW_BODY);
        match p
            .send("/queue/full", body, &[("persistent", "true")], true)
            .await
        {
            Ok(()) => stored += 1,
            Err(e) => break e,
        }
    };
    match err {
        mq_tests::client::ClientError::Server { message, .. } => {
            assert!(message.contains("store full"), "{message}")
        }
        other => panic!("expected ERROR store full after {stored} receipts, got {other}"),
    }
    assert!((100..FLOW_N).contains(&stored), "{stored} receipted");
    assert!(mq_tests::security::metric(&node, "mq_producer_flow_control_refused_total").await >= 1);
    assert_eq!(
        mq_tests::security::metric(&node, "mq_producer_flow_control_held_total").await,
        0
    );

    // The other client consumes what was stored; then a new producer is served.
    subscribe(&mut other, "/queue/full", "s", AckMode::Auto).await;
    let got = drain(&mut other, stored, SOON).await;
    assert_eq!(
        got.iter().map(body_number).collect::<Vec<_>>(),
        (0..stored).collect::<Vec<_>>()
    );
    wait_for_async(SOON, async || admin.depth("full").await == 0).await;
    let mut p = connect(&node.stomp_addr()).await;
    send_persistent(&mut p, "/queue/full", numbered_body(FLOW_N, FLOW_BODY)).await;
    assert_eq!(body_number(&recv(&mut other, SOON).await), FLOW_N);
}

/// `--send-fail-if-no-space-after-timeout 300`: the SEND is held, then gets ERROR "store
/// full" once 300 ms passed.
#[tokio::test]
async fn send_fail_after_timeout_holds_then_answers_store_full() {
    let node = Node::start(small(
        "timeout",
        &[
            "--store-usage",
            "1MiB",
            "--heartbeat-ms",
            "200",
            "--send-fail-if-no-space-after-timeout",
            "300",
        ],
    ));
    // One SEND at a time, each waiting for its receipt; the one the full store holds is
    // answered ERROR after the hold.
    let mut p = connect(&node.stomp_addr()).await;
    let mut stored = 0;
    let (err, waited) = loop {
        assert!(
            stored < FLOW_N,
            "every SEND receipted: the store never filled"
        );
        let body = numbered_body(stored, FLOW_BODY);
        let sent = Instant::now();
        let r = tokio::time::timeout(
            SOON,
            p.send("/queue/full", body, &[("persistent", "true")], true),
        )
        .await;
        match r {
            Ok(Ok(())) => stored += 1,
            Ok(Err(e)) => break (e, sent.elapsed()),
            Err(_) => panic!("neither RECEIPT nor ERROR for SEND {stored} within {SOON:?}"),
        }
    };
    match err {
        mq_tests::client::ClientError::Server { message, .. } => {
            assert!(message.contains("store full"), "{message}")
        }
        other => panic!("expected ERROR store full, got {other}"),
    }
    assert!(
        waited >= Duration::from_millis(300),
        "ERROR after {waited:?}, before the 300 ms hold"
    );
    assert!((100..FLOW_N).contains(&stored), "{stored} receipted");
    assert!(mq_tests::security::metric(&node, "mq_producer_flow_control_held_total").await >= 1);
    assert!(mq_tests::security::metric(&node, "mq_producer_flow_control_refused_total").await >= 1);
    assert_eq!(node.admin().depth("full").await, stored as u64);
}

/// Master and slave on one data directory, a backlog on disk, the master killed: the slave
/// takes over and delivers the whole backlog once, in order.
#[tokio::test]
async fn a_slave_taking_over_delivers_the_whole_backlog_once() {
    let shared = tempfile::tempdir().expect("tempdir");
    let extra = ["--memory-usage", MEMORY];
    let a_opts = member("cur-a", shared.path()).args(extra);
    let b_opts = member("cur-b", shared.path()).args(extra);
    let mut a = Node::start(a_opts);
    let mut b = Node::start(b_opts);
    assert_eq!((a.role(), b.role()), (api::Role::Master, api::Role::Slave));
    fill(&a.stomp_addr(), "/queue/takeover", 0..BACKLOG, &[]).await;
    assert_mostly_on_disk(&stats(&a.admin(), "takeover").await, BACKLOG);

    a.kill();
    b.wait_event(api::Role::Master, SOON);
    let admin = b.admin();
    let q = stats(&admin, "takeover").await;
    assert_eq!(q.depth, BACKLOG as u64, "{q:?}");
    assert_eq!(q.in_memory, 0, "{q:?}");
    let mut c = connect(&b.stomp_addr()).await;
    subscribe(&mut c, "/queue/takeover", "s", AckMode::Auto).await;
    assert_eq!(
        numbers(&mut c, BACKLOG).await,
        (0..BACKLOG).collect::<Vec<_>>()
    );
    expect_nothing(&mut c, QUIET).await;
    wait_for_async(SOON, async || admin.depth("takeover").await == 0).await;
}

/// A backlog beyond the window on node A crosses a bridge to a consumer on node B: every
/// message once, in the producer's order.
#[tokio::test]
async fn a_backlog_on_disk_crosses_a_bridge_once_and_in_order() {
    use mq_tests::network::{add_link, static_uri, wait_connected, wait_consumers};
    let a = Node::start(small("bridge-a", &[]));
    let b = Node::start(small("bridge-b", &[]));
    fill(&a.stomp_addr(), "/queue/far", 0..BACKLOG, &[]).await;
    assert_mostly_on_disk(&stats(&a.admin(), "far").await, BACKLOG);

    let mut c = connect(&b.stomp_addr()).await;
    subscribe(&mut c, "/queue/far", "s", AckMode::Auto).await;
    add_link(&a, &static_uri(&[&b], "")).await;
    wait_connected(&a, 1).await;
    wait_consumers(&a, "far", 1).await;
    assert_eq!(
        numbers(&mut c, BACKLOG).await,
        (0..BACKLOG).collect::<Vec<_>>()
    );
    expect_nothing(&mut c, QUIET).await;
    wait_for_async(SOON, async || a.admin().depth("far").await == 0).await;
    let q = stats(&a.admin(), "far").await;
    assert_eq!(q.forwarded, BACKLOG as u64, "{q:?}");
}

/// Sizes take units; a bad one, or a memory-usage below 1MiB, is a startup error naming the
/// key (flag or config file); good ones are shown back in the broker's usage limits.
#[tokio::test]
async fn sizes_with_bad_units_are_refused_naming_the_key_and_good_ones_are_shown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("a UTF-8 path");
    let refused = |extra: &[&str], key: &str, also: &str| {
        let mut args = vec!["--name", "sizes", "--data", d];
        args.extend_from_slice(extra);
        let out = run_mqnode(&args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{extra:?} started");
        assert!(out.stdout.is_empty(), "{extra:?} printed a ready line");
        assert!(
            err.contains(key) && err.contains(also),
            "{extra:?}: the error names neither {key} nor {also}:\n{err}"
        );
    };
    refused(
        &["--memory-usage", "12parsecs"],
        "memory-usage",
        "12parsecs",
    );
    refused(&["--memory-usage", "100"], "memory-usage", "1MiB");
    let file = dir.path().join("node.toml");
    std::fs::write(&file, "store-usage = \"5 furlongs\"\n").expect("writing the config file");
    let f = file.to_str().expect("a UTF-8 path");
    refused(&["--config", f], "store-usage", "5 furlongs");
    std::fs::write(&file, "temp-usage = \"1GiB\"\n").expect("writing the config file");

    let node = Node::start(NodeOpts::new("sizes").args(["--memory-usage", "64MiB", "--config", f]));
    let u = usage(&node.admin()).await;
    assert_eq!(u.memory.limit, 64 << 20, "{u:?}");
    assert_eq!(u.temp.limit, 1 << 30, "{u:?}");
}
