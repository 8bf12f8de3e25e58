//! The store cursor: with a small `--memory-usage`, a queue keeps only a window of its
//! messages in memory and the rest in the store, read back as consumers make room. What
//! clients see must not change: order and priorities, restarts, redelivery and the DLQ,
//! expiry, browse, purge and move, non-persistent spill, producer flow control, takeover and
//! bridges, all with most of the backlog on disk.

use std::collections::BTreeSet;
use std::ops::Range;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    send_pipelined(&mut p, dest, range.map(|i| numbered_body(i, BODY)), &all, 200).await;
    let _ = p.disconnect().await;
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

/// Milliseconds since the epoch, as `expires` counts them.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[tokio::test]
async fn a_backlog_far_beyond_the_window_is_consumed_complete_and_in_order() {
    const N: usize = 4000;
    let node = Node::start(small("order", &[]));
    let admin = node.admin();
    let addr = node.stomp_addr();
    fill(&addr, "/queue/order", 0..N, &[]).await;

    let q = stats(&admin, "order").await;
    assert_mostly_on_disk(&q, N);
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
    let mut c = connect(&addr).await;
    subscribe_with(
        &mut c,
        "/queue/prio",
        "s",
        AckMode::ClientIndividual,
        &[("activemq.prefetchSize", "1")],
    )
    .await;
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
    let mut c = connect(&addr).await;
    let prefetch = [("activemq.prefetchSize", "10")];
    subscribe_with(
        &mut c,
        "/queue/restart",
        "s",
        AckMode::ClientIndividual,
        &prefetch,
    )
    .await;
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
    let mut c = connect(&addr).await;
    subscribe_with(
        &mut c,
        "/queue/restart",
        "s",
        AckMode::ClientIndividual,
        &prefetch,
    )
    .await;
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
    assert_eq!(nums, (15..BACKLOG).collect::<Vec<_>>(), "each once, in order");
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
    fill(&addr, "/queue/work", 0..BACKLOG, &[]).await;
    assert_mostly_on_disk(&stats(&admin, "work").await, BACKLOG);

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
        assert!(rounds <= 3, "{left} messages still in the queue after 2 rounds");
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
    wait_for_async(SOON, async || {
        admin.depth("DLQ").await == dead.len() as u64
    })
    .await;
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
    let addr = node.stomp_addr();
    fill(&addr, "/queue/seen", 0..BACKLOG, &[]).await;
    let before = stats(&admin, "seen").await;
    assert_mostly_on_disk(&before, BACKLOG);

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
    let run = home
        .run(&[
            "queue",
            "browse",
            "seen",
            "--limit",
            "0",
            "--url",
            &url,
            "--token-file",
            tf,
            "-o",
            "json",
        ])
        .expect_code(0);
    let report: mq_shared::ctl::BrowseReport = run.json();
    assert_eq!(report.messages.len(), BACKLOG);
    assert_eq!(
        report.messages.last().map(|m| &m.body[..8]),
        Some(format!("{:08}", BACKLOG - 1).as_str())
    );
    let stat: mq_shared::ctl::QueueStatReport = home
        .run(&[
            "queue",
            "stat",
            "--url",
            &url,
            "--token-file",
            tf,
            "-o",
            "json",
        ])
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
    fill(&addr, "/queue/gone", 0..BACKLOG, &[]).await;
    assert_mostly_on_disk(&stats(&admin, "gone").await, BACKLOG);

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
    fill(&addr, "/queue/deep", 0..BACKLOG, &[]).await;
    assert_mostly_on_disk(&stats(&admin, "deep").await, BACKLOG);

    let b: BrowseResponse = admin
        .get_ok(&format!("/api/v1/queues/deep/messages?limit={BACKLOG}"))
        .await;
    let id = b.messages[MOVED].message_id.clone();
    assert!(b.messages[MOVED].body.starts_with(&format!("{MOVED:08}")));
    let path = format!("/api/v1/queues/deep/messages/{id}/move");
    let r = admin.post(&path, Some(r#"{"to": "/queue/moved"}"#)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let m: MoveResponse = r.json();
    assert_eq!((m.from.as_str(), m.to.as_str()), ("/queue/deep", "/queue/moved"));
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
