//! Scheduled delivery (`AMQ_SCHEDULED_*`): held back until due, repeated, listed and deleted
//! through the admin API and mqctl, kept across SIGKILL and failover when persistent, and
//! refused with an ERROR naming the header when a value is bad.

use std::time::{Duration, Instant};

use mq_tests::api::{ScheduledList, ScheduledMessage};
use mq_tests::cli::CliHome;
use mq_tests::client::AckMode;
use mq_tests::frame::Frame;
use mq_tests::*;

/// How late a fire may be in these tests (the node is shared with other tests).
const LATE: Duration = Duration::from_secs(3);

async fn scheduled(node: &Node) -> Vec<ScheduledMessage> {
    node.admin()
        .get_ok::<ScheduledList>("/api/v1/scheduled")
        .await
        .scheduled
}

/// The next frame, with how long after `since` it came.
async fn recv_at(
    c: &mut client::StompClient,
    since: Instant,
    timeout: Duration,
) -> (Frame, Duration) {
    let m = recv(c, timeout).await;
    (m, since.elapsed())
}

#[tokio::test]
async fn a_delayed_message_comes_not_before_its_delay_and_soon_after() {
    let node = Node::start(NodeOpts::new("sched-delay"));
    let addr = node.stomp_addr();
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/later", "s", AckMode::Auto).await;
    let mut p = connect(&addr).await;
    let sent = Instant::now();
    send(
        &mut p,
        "/queue/later",
        "in a second",
        &[
            ("persistent", "true"),
            ("AMQ_SCHEDULED_DELAY", "1000"),
            ("colour", "red"),
        ],
    )
    .await;
    let (m, after) = recv_at(&mut c, sent, Duration::from_secs(1) + LATE).await;
    assert!(
        after >= Duration::from_millis(1000),
        "delivered after {after:?}"
    );
    assert_eq!(body_str(&m), "in a second");
    assert_eq!(m.header("colour"), Some("red"), "the user headers are kept");
    // As ActiveMQ: the scheduling headers go, the job id comes.
    assert_eq!(m.header("AMQ_SCHEDULED_DELAY"), None);
    assert!(
        m.header("scheduledJobId")
            .is_some_and(|id| id.starts_with("ID:"))
    );
    expect_nothing(&mut c, QUIET).await;
    assert!(
        scheduled(&node).await.is_empty(),
        "the job is gone after its last fire"
    );
}

#[tokio::test]
async fn period_and_repeat_deliver_repeat_plus_one_copies_a_period_apart() {
    const PERIOD: u64 = 400;
    let node = Node::start(NodeOpts::new("sched-repeat"));
    let addr = node.stomp_addr();
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/ticks", "s", AckMode::Auto).await;
    let mut p = connect(&addr).await;
    let sent = Instant::now();
    send(
        &mut p,
        "/queue/ticks",
        "tick",
        &[
            ("persistent", "true"),
            ("AMQ_SCHEDULED_DELAY", "200"),
            ("AMQ_SCHEDULED_PERIOD", "400"),
            ("AMQ_SCHEDULED_REPEAT", "3"),
        ],
    )
    .await;
    let mut times = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for _ in 0..4 {
        let (m, at) = recv_at(&mut c, sent, LATE + Duration::from_millis(PERIOD)).await;
        assert!(
            ids.insert(m.header("message-id").unwrap_or("").to_string()),
            "each copy has an id of its own"
        );
        times.push(at);
    }
    assert!(
        times[0] >= Duration::from_millis(200),
        "first after {:?}",
        times[0]
    );
    // The node fires each repeat a period after the fire before; the client sees the copies
    // with its own reading jitter, so each gap is allowed a little less and the sum none.
    for w in times.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap >= Duration::from_millis(PERIOD - 50),
            "copies {gap:?} apart: {times:?}"
        );
    }
    assert!(
        times[3] - times[0] >= Duration::from_millis(3 * PERIOD - 50),
        "{times:?}"
    );
    expect_nothing(&mut c, Duration::from_millis(PERIOD) + QUIET).await;
}

#[tokio::test]
async fn a_cron_message_is_listed_with_its_next_cron_time_and_a_deleted_one_never_fires() {
    let node = Node::start(NodeOpts::new("sched-admin"));
    let addr = node.stomp_addr();
    let mut p = connect(&addr).await;
    let before = now_ms();
    send(
        &mut p,
        "/queue/cron",
        "every minute",
        &[
            ("persistent", "true"),
            ("AMQ_SCHEDULED_CRON", "* * * * *"),
            ("AMQ_SCHEDULED_DELAY", "5000"),
        ],
    )
    .await;
    let after = now_ms();
    send(
        &mut p,
        "/queue/soon",
        "deleted",
        &[
            ("persistent", "true"),
            ("AMQ_SCHEDULED_DELAY", "1500"),
            ("AMQ_SCHEDULED_PERIOD", "100"),
            ("AMQ_SCHEDULED_REPEAT", "2"),
        ],
    )
    .await;
    send(
        &mut p,
        "/queue/soon",
        "kept",
        &[("AMQ_SCHEDULED_DELAY", "1500"), ("persistent", "false")],
    )
    .await;
    let list = scheduled(&node).await;
    assert_eq!(list.len(), 3, "{list:?}");
    // The next whole minute after the SEND, plus the delay (ActiveMQ: cron time + DELAY).
    let minute = |t: u64| (t / 60_000 + 1) * 60_000 + 5_000;
    let cron = list
        .iter()
        .find(|m| m.destination == "/queue/cron")
        .expect("cron listed");
    assert!(
        [minute(before), minute(after)].contains(&cron.next_fire_ms),
        "next fire {} for a send between {before} and {after}",
        cron.next_fire_ms
    );
    assert_eq!(cron.cron.as_deref(), Some("* * * * *"));
    assert!(cron.persistent);
    let repeating = list
        .iter()
        .find(|m| m.repeats_left == 2)
        .expect("repeating one listed");
    assert_eq!(
        (repeating.destination.as_str(), repeating.period_ms),
        ("/queue/soon", 100)
    );
    assert!(repeating.size >= "deleted".len() as u64);
    let memory = list
        .iter()
        .find(|m| !m.persistent)
        .expect("the non-persistent one");
    // Next to fire first.
    assert!(
        list.windows(2)
            .all(|w| w[0].next_fire_ms <= w[1].next_fire_ms)
    );

    let admin = node.admin();
    let path = format!("/api/v1/scheduled/{}", repeating.id);
    assert_eq!(admin.delete(&path).await.status, 200);
    assert_eq!(admin.delete(&path).await.status, 404, "gone already");
    assert_eq!(admin.delete("/api/v1/scheduled/ID:nope").await.status, 404);
    let left = scheduled(&node).await;
    assert_eq!(left.len(), 2);
    assert!(left.iter().any(|m| m.id == memory.id));

    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/soon", "s", AckMode::Auto).await;
    let m = recv(&mut c, Duration::from_millis(1500) + LATE).await;
    assert_eq!(body_str(&m), "kept");
    expect_nothing(&mut c, Duration::from_millis(500)).await;
}

#[tokio::test]
async fn after_sigkill_a_persistent_scheduled_message_still_fires_and_a_non_persistent_one_is_gone()
{
    let mut node = Node::start(NodeOpts::new("sched-crash"));
    let mut p = connect(&node.stomp_addr()).await;
    let sent = Instant::now();
    send(
        &mut p,
        "/queue/kept",
        "stored",
        &[("persistent", "true"), ("AMQ_SCHEDULED_DELAY", "2500")],
    )
    .await;
    send(
        &mut p,
        "/queue/lost",
        "memory",
        &[("AMQ_SCHEDULED_DELAY", "2500")],
    )
    .await;
    // The RECEIPT came only after the store commit: killed right after it, the job is there.
    node.kill();
    node.restart();
    let list = scheduled(&node).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].destination, "/queue/kept");
    let mut c = connect(&node.stomp_addr()).await;
    subscribe(&mut c, "/queue/kept", "a", AckMode::Auto).await;
    subscribe(&mut c, "/queue/lost", "b", AckMode::Auto).await;
    let (m, at) = recv_at(&mut c, sent, Duration::from_millis(2500) + LATE).await;
    assert_eq!(body_str(&m), "stored");
    assert!(at >= Duration::from_millis(2500), "fired after {at:?}");
    expect_nothing(&mut c, QUIET).await;
}

#[tokio::test]
async fn a_new_master_fires_the_scheduled_messages_of_the_one_it_replaced() {
    let shared = tempfile::tempdir().expect("tempdir");
    let mut a = Node::start(member("sched-a", shared.path()));
    let mut b = Node::start(member("sched-b", shared.path()));
    assert_eq!((a.role(), b.role()), (api::Role::Master, api::Role::Slave));
    let mut p = connect(&a.stomp_addr()).await;
    let sent = Instant::now();
    send(
        &mut p,
        "/queue/ha",
        "later",
        &[("persistent", "true"), ("AMQ_SCHEDULED_DELAY", "1500")],
    )
    .await;
    // Overdue by the time the slave takes over: fired at once.
    send(
        &mut p,
        "/queue/ha",
        "overdue",
        &[("persistent", "true"), ("AMQ_SCHEDULED_DELAY", "1")],
    )
    .await;
    a.kill();
    b.wait_event(api::Role::Master, SOON);
    let mut c = connect(&b.stomp_addr()).await;
    subscribe(&mut c, "/queue/ha", "s", AckMode::Auto).await;
    let mut got = Vec::new();
    while got.len() < 2 {
        let (m, at) = recv_at(&mut c, sent, Duration::from_millis(1500) + LATE).await;
        let body = body_str(&m);
        if body == "later" {
            assert!(at >= Duration::from_millis(1500), "fired after {at:?}");
        }
        // "overdue" may have fired on the old master already; it is delivered once from
        // the store either way.
        if !got.contains(&body) {
            got.push(body);
        }
    }
    got.sort();
    assert_eq!(got, ["later", "overdue"]);
    expect_nothing(&mut c, QUIET).await;
}

#[tokio::test]
async fn bad_scheduling_headers_are_errors_that_name_the_header() {
    let node = Node::start(NodeOpts::new("sched-bad"));
    for (header, value) in [
        ("AMQ_SCHEDULED_DELAY", "-1"),
        ("AMQ_SCHEDULED_DELAY", "soon"),
        ("AMQ_SCHEDULED_PERIOD", "1.5"),
        ("AMQ_SCHEDULED_CRON", "* * *"),
        ("AMQ_SCHEDULED_CRON", "99 * * * *"),
    ] {
        let mut c = connect(&node.stomp_addr()).await;
        let e = send_refused(&mut c, "/queue/bad", &[(header, value)]).await;
        assert!(e.contains(header), "{header}={value}: {e}");
    }
    let mut c = connect(&node.stomp_addr()).await;
    let e = send_refused(
        &mut c,
        "/queue/bad",
        &[
            ("AMQ_SCHEDULED_DELAY", "10"),
            ("AMQ_SCHEDULED_REPEAT", "-2"),
        ],
    )
    .await;
    assert!(e.contains("AMQ_SCHEDULED_REPEAT"), "{e}");
    assert!(scheduled(&node).await.is_empty());
    assert_eq!(node.admin().depth("bad").await, 0);
}

#[tokio::test]
async fn a_transaction_schedules_its_messages_when_it_commits_and_not_when_it_aborts() {
    let node = Node::start(NodeOpts::new("sched-tx"));
    let addr = node.stomp_addr();
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/tx", "s", AckMode::Auto).await;
    let mut p = connect(&addr).await;
    for (tx, body) in [("t1", "aborted"), ("t2", "committed")] {
        p.begin(tx).await.expect("BEGIN");
        send(
            &mut p,
            "/queue/tx",
            body,
            &[
                ("transaction", tx),
                ("persistent", "true"),
                ("AMQ_SCHEDULED_DELAY", "500"),
            ],
        )
        .await;
    }
    assert!(
        scheduled(&node).await.is_empty(),
        "nothing before the commit"
    );
    p.abort("t1").await.expect("ABORT");
    let sent = Instant::now();
    p.commit("t2").await.expect("COMMIT");
    assert_eq!(scheduled(&node).await.len(), 1);
    let (m, at) = recv_at(&mut c, sent, Duration::from_millis(500) + LATE).await;
    assert_eq!(body_str(&m), "committed");
    assert!(at >= Duration::from_millis(400), "fired after {at:?}");
    expect_nothing(&mut c, QUIET).await;
}

#[tokio::test]
async fn without_scheduler_support_the_message_is_delivered_at_once_headers_and_all() {
    let node = Node::start(NodeOpts::new("sched-off").args(["--scheduler-support", "false"]));
    let addr = node.stomp_addr();
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/now", "s", AckMode::Auto).await;
    let mut p = connect(&addr).await;
    send(
        &mut p,
        "/queue/now",
        "now",
        &[("AMQ_SCHEDULED_DELAY", "60000")],
    )
    .await;
    let m = recv(&mut c, SOON).await;
    assert_eq!(m.header("AMQ_SCHEDULED_DELAY"), Some("60000"));
    assert!(scheduled(&node).await.is_empty());
}

/// More jobs than the node holds in memory (its window is 2000): they are read back from the
/// store by fire time as the window runs down, and every one fires once.
#[tokio::test]
async fn a_backlog_larger_than_the_window_fires_every_message_once() {
    const N: usize = 3000;
    let node = Node::start(NodeOpts::new("sched-backlog"));
    let addr = node.stomp_addr();
    let mut p = connect(&addr).await;
    send_pipelined(
        &mut p,
        "/queue/backlog",
        (0..N).map(|i| numbered_body(i, 100)),
        &[("persistent", "true"), ("AMQ_SCHEDULED_DELAY", "1000")],
        200,
    )
    .await;
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/backlog", "s", AckMode::Auto).await;
    let got = drain(&mut c, N, SOON).await;
    let mut seen: Vec<usize> = got.iter().map(body_number).collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), N);
    expect_nothing(&mut c, QUIET).await;
    wait_for_async(SOON, async || scheduled(&node).await.is_empty()).await;
}

#[tokio::test]
async fn mqctl_lists_and_removes_scheduled_messages() {
    let home = CliHome::new();
    let node = Node::start(NodeOpts::new("sched-cli"));
    let mut p = connect(&node.stomp_addr()).await;
    send(
        &mut p,
        "/queue/cli",
        "x",
        &[("persistent", "true"), ("AMQ_SCHEDULED_DELAY", "600000")],
    )
    .await;
    let url = node.admin_url();
    let token = node.data_dir().join("admin.token").display().to_string();
    let ls = ["scheduled", "ls"];
    let run = home
        .run_by_url(&ls, &[&url], &token, &["-o", "json"])
        .expect_code(0);
    let report: mq_shared::ctl::ScheduledReport = run.json();
    assert_eq!(report.scheduled.len(), 1);
    let id = report.scheduled[0].message.id.clone();
    assert_eq!(report.scheduled[0].message.destination, "/queue/cli");
    let table = home.run_by_url(&ls, &[&url], &token, &[]).expect_code(0);
    assert!(table.stdout.contains(&id), "{}", table.stdout);
    let rm = ["scheduled", "rm"];
    home.run_by_url(&rm, &[&url], &token, &["--id", &id])
        .expect_code(0);
    home.run_by_url(&rm, &[&url], &token, &["--id", &id])
        .expect_code(66);
    let empty = home.run_by_url(&ls, &[&url], &token, &[]).expect_code(0);
    assert!(empty.stdout.trim().is_empty(), "{}", empty.stdout);
    assert!(
        empty.stderr.contains("No scheduled messages."),
        "{}",
        empty.stderr
    );
}
