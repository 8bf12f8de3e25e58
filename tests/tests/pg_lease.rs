//! The lease database locker against a real PostgreSQL server, with each locker in a process
//! of its own (`tests/examples/pg_locker.rs`, its transitions as JSON lines): one holder at a
//! time, a takeover only once the lease has ended (database time), a holder cut off from the
//! database that stops before its lease ends, a frozen holder whose late writes the fence
//! refuses, members with skewed clocks, the database stopped and started, and the sentences of
//! a bad URL, password or database.
//!
//! Keep-alive 200 ms, lease (`lock-acquire-sleep-interval`) 500 ms. The test's clock is the
//! database's (one machine), so a line's read time can be compared with the row's times; it
//! is read after the locker printed it, so such a comparison is only ever stricter.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mq_tests::postgres::{Locker, LockerEvent, LockerOpts, PgServer, now_ms};
use mq_tests::*;
use mqnode::store::pg::lock::{self, LockRow};
use mqnode::store::pg::{PgConfig, PgPool};

/// The lease of these tests (`lock-acquire-sleep-interval`), ms.
const LEASE_MS: i64 = 500;

/// One sample of the lease row, with the test's clock.
#[derive(Debug, Clone)]
struct Sample {
    row: LockRow,
}

/// Samples the lease row every few ms on a connection of its own until stopped (samples
/// fail silently while the server is down).
struct Sampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<Sample>>,
}

impl Sampler {
    async fn start(server: &PgServer) -> Sampler {
        let mut config =
            PgConfig::from_options(&server.url(), Some(&server.password_file())).expect("config");
        config.pool_size = 1;
        config.connect_timeout = Duration::from_millis(500);
        let pool = PgPool::connect(&config).await.expect("sampler connects");
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let task = tokio::spawn(async move {
            let mut out = Vec::new();
            while !s.load(Ordering::Relaxed) {
                if let Ok(c) = pool.get().await
                    && let Ok(row) = lock::read(&c).await
                {
                    out.push(Sample { row });
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            out
        });
        Sampler { stop, task }
    }

    async fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("sampler task")
    }
}

/// What is known of one epoch of the lease: its holder, when it was taken and the latest end
/// any renewal gave it (database time).
#[derive(Debug, Default, Clone)]
struct Epoch {
    holder: String,
    acquired_at_ms: i64,
    max_expires_ms: i64,
}

/// Every epoch seen in the lockers' events and the row's samples.
fn epochs(lockers: &[&Locker], samples: &[Sample]) -> BTreeMap<i64, Epoch> {
    let mut out: BTreeMap<i64, Epoch> = BTreeMap::new();
    for l in lockers {
        let mut current = None;
        for e in l.events() {
            match e.kind() {
                "acquired" => {
                    let epoch = e.int("epoch");
                    let entry = out.entry(epoch).or_default();
                    entry.holder = l.name().to_string();
                    entry.acquired_at_ms = e.int("acquired_at_ms");
                    entry.max_expires_ms = entry.max_expires_ms.max(e.int("expires_at_ms"));
                    current = Some(epoch);
                }
                "renewed" => {
                    let epoch = current.expect("a renewal follows an acquisition");
                    let entry = out.entry(epoch).or_default();
                    entry.max_expires_ms = entry.max_expires_ms.max(e.int("expires_at_ms"));
                }
                _ => {}
            }
        }
    }
    for s in samples {
        let (Some(holder), Some(acquired), Some(expires)) =
            (&s.row.holder, s.row.acquired_at_ms, s.row.expires_at_ms)
        else {
            continue;
        };
        let entry = out.entry(s.row.epoch).or_default();
        if entry.holder.is_empty() {
            entry.holder = holder.clone();
            entry.acquired_at_ms = acquired;
        }
        assert_eq!(
            &entry.holder, holder,
            "epoch {} has one holder",
            s.row.epoch
        );
        entry.max_expires_ms = entry.max_expires_ms.max(expires);
    }
    out
}

/// Never two holders, in database time: each epoch was taken only once the one before had
/// ended, whatever renewal of it any locker or sample saw. Returns the epochs.
#[track_caller]
fn assert_one_holder_at_a_time(lockers: &[&Locker], samples: &[Sample]) -> BTreeMap<i64, Epoch> {
    let all = epochs(lockers, samples);
    let list: Vec<(&i64, &Epoch)> = all.iter().collect();
    for pair in list.windows(2) {
        let ((e1, a), (e2, b)) = (pair[0], pair[1]);
        assert!(
            b.acquired_at_ms >= a.max_expires_ms,
            "epoch {e2} ({}) was taken at {} before epoch {e1} ({}) ended at {}",
            b.holder,
            b.acquired_at_ms,
            a.holder,
            a.max_expires_ms
        );
    }
    // The samples never went back.
    for w in samples.windows(2) {
        assert!(
            w[1].row.epoch >= w[0].row.epoch,
            "the epoch went back: {w:?}"
        );
    }
    all
}

/// Never two holders, as the lockers report it: the spans from each `acquired` line to the
/// next `lost` line (or to the locker's kill, or to now) of different lockers never overlap,
/// as the test read the lines. A locker killed at `killed` holds nothing after it.
#[track_caller]
fn assert_states_never_overlap(lockers: &[(&Locker, Option<Instant>)]) {
    let mut spans: Vec<(Instant, Instant, &str)> = Vec::new();
    for (l, killed) in lockers {
        let end = killed.unwrap_or_else(Instant::now);
        let mut from = None;
        for e in l.events() {
            match (e.kind(), from) {
                ("acquired", None) => from = Some(e.read_at),
                ("lost", Some(f)) => {
                    spans.push((f, e.read_at, l.name()));
                    from = None;
                }
                _ => {}
            }
        }
        if let Some(f) = from {
            spans.push((f, end, l.name()));
        }
    }
    spans.sort();
    let mut latest: Option<(Instant, &str)> = None;
    for (from, to, name) in spans {
        if let Some((end, other)) = latest {
            assert!(
                end <= from || other == name,
                "{other} still held the lease when {name} reported it held"
            );
        }
        if latest.is_none_or(|(end, _)| to > end) {
            latest = Some((to, name));
        }
    }
}

/// Starts a locker and waits for its first `waiting` (it has connected and measured its clock).
#[track_caller]
fn start_locker(opts: &LockerOpts) -> Locker {
    let l = Locker::start(opts);
    l.wait_event(0, "waiting", SOON);
    l
}

/// Events of `l` of kind `kind` after the first `skip`.
fn events_of(l: &Locker, skip: usize, kind: &str) -> Vec<LockerEvent> {
    l.events()
        .into_iter()
        .skip(skip)
        .filter(|e| e.kind() == kind)
        .collect()
}

/// The rows of `queue://NAME`, a locker's fenced writes.
fn rows_of(server: &PgServer, name: &str) -> i64 {
    server
        .psql(
            "mq",
            &format!("SELECT count(*) FROM mq_msgs WHERE container = 'queue://{name}'"),
        )
        .parse()
        .expect("a count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_locker_holds_the_lease_and_the_other_waits() {
    let server = PgServer::start();
    let a = start_locker(&LockerOpts::new("a", &server));
    let held = a.wait_event(0, "acquired", SOON);
    let b = start_locker(&LockerOpts::new("b", &server));
    // For three lease lengths b never takes it, while a keeps renewing.
    let from = a.event_count();
    let watch = Duration::from_millis(3 * LEASE_MS as u64);
    assert!(
        b.next_event(0, watch, |e| e.kind() == "acquired").is_none(),
        "b took a held lease"
    );
    assert!(
        events_of(&a, from, "renewed").len() >= 5,
        "a renews every 200 ms"
    );
    assert!(events_of(&a, 0, "lost").is_empty());
    assert_eq!(
        server.psql("mq", "SELECT holder || ' ' || epoch FROM mq_lock"),
        format!("a {}", held.int("epoch"))
    );
    assert!(b.stderr().contains("waiting as slave"), "{}", b.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holder_is_replaced_once_its_lease_has_ended_and_never_before() {
    let server = PgServer::start();
    let mut a_opts = LockerOpts::new("a", &server);
    a_opts.write_every_ms = Some(20);
    let mut a = start_locker(&a_opts);
    a.wait_event(0, "acquired", SOON);
    let b = start_locker(&LockerOpts::new("b", &server));
    let sampler = Sampler::start(&server).await;
    // Let a renew and write a while, then kill it.
    a.wait_event(0, "renewed", SOON);
    a.next_event(0, SOON, |e| e.kind() == "write" && e.int("seq") >= 5)
        .expect("a writes");
    let killed_at = Instant::now();
    a.kill();
    let took = b.wait_event(0, "acquired", SOON);
    let samples = sampler.finish().await;
    let ok_writes = events_of(&a, 0, "write")
        .iter()
        .filter(|e| e.json["ok"] == true)
        .count();

    let all = assert_one_holder_at_a_time(&[&a, &b], &samples);
    assert_states_never_overlap(&[(&a, Some(killed_at)), (&b, None)]);
    let (a_epoch, b_epoch) = (&all[&(took.int("epoch") - 1)], &all[&took.int("epoch")]);
    assert_eq!(
        (a_epoch.holder.as_str(), b_epoch.holder.as_str()),
        ("a", "b")
    );
    // Bounded: b took it within one lease length of its end (it sleeps until the row says).
    let late = b_epoch.acquired_at_ms - a_epoch.max_expires_ms;
    assert!(
        (0..=LEASE_MS).contains(&late),
        "b took the lease {late} ms after it ended"
    );
    assert!(took.read_at >= killed_at);
    assert!(took.read_at - killed_at <= Duration::from_millis(2 * LEASE_MS as u64));
    // Every write a confirmed is in the database (one more may have committed unconfirmed).
    let rows = rows_of(&server, "a");
    assert!(
        rows >= ok_writes as i64 && rows <= ok_writes as i64 + 1,
        "{rows} rows for {ok_writes} confirmed writes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_database_stops_the_holder_before_its_lease_ends_and_the_lockers_recover() {
    let mut server = PgServer::start();
    let a = start_locker(&LockerOpts::new("a", &server));
    a.wait_event(0, "acquired", SOON);
    let b = start_locker(&LockerOpts::new("b", &server));
    a.wait_event(0, "renewed", SOON);
    let before_stop = a.event_count();
    server.stop();
    let lost = a.wait_event(before_stop, "lost", SOON);
    assert_eq!(lost.json["reason"]["kind"], "not_renewed", "{}", lost.json);
    // a stopped (printed lost, read here later) before the end of the last lease the database
    // gave it, whichever renewal that was.
    let all = epochs(&[&a], &[]);
    let (_, last) = all.last_key_value().expect("a's epoch");
    assert!(
        lost.read_at_ms < last.max_expires_ms,
        "a reported the loss at {} after its lease ended at {}",
        lost.read_at_ms,
        last.max_expires_ms
    );
    assert_eq!(
        lost.json["reason"]["last_expires_at_ms"].as_i64(),
        Some(last.max_expires_ms)
    );
    // Its write after the loss does not go through (the database is down).
    let w = a.wait_event(before_stop, "write", SOON);
    assert_eq!(
        (w.json["after_lost"].as_bool(), w.json["ok"].as_bool()),
        (Some(true), Some(false))
    );
    // Both keep trying; once the database is back one of them holds the lease again.
    a.wait_event(before_stop, "waiting", SOON);
    let (a_from, b_from) = (a.event_count(), b.event_count());
    server.start_again();
    let sampler = Sampler::start(&server).await;
    let started = Instant::now();
    let first = loop {
        if let Some(e) = a.next_event(a_from, Duration::from_millis(20), |e| {
            e.kind() == "acquired"
        }) {
            break ("a", e);
        }
        if let Some(e) = b.next_event(b_from, Duration::from_millis(20), |e| {
            e.kind() == "acquired"
        }) {
            break ("b", e);
        }
        assert!(
            started.elapsed() < SOON,
            "nobody took the lease after the restart"
        );
    };
    // The other keeps waiting while the new holder renews.
    let other = if first.0 == "a" {
        (&b, b_from)
    } else {
        (&a, a_from)
    };
    let quiet = Duration::from_millis(2 * LEASE_MS as u64);
    assert!(
        other
            .0
            .next_event(other.1, quiet, |e| e.kind() == "acquired")
            .is_none()
    );
    let samples = sampler.finish().await;
    let all = assert_one_holder_at_a_time(&[&a, &b], &samples);
    assert_states_never_overlap(&[(&a, None), (&b, None)]);
    assert_eq!(
        all.last_key_value().map(|(_, e)| e.holder.as_str()),
        Some(first.0)
    );
    assert!(
        a.stderr().contains("cannot try the lease; retrying"),
        "{}",
        a.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_holder_is_deposed_and_the_fence_refuses_its_late_writes() {
    let server = PgServer::start();
    let mut a_opts = LockerOpts::new("a", &server);
    a_opts.write_every_ms = Some(20);
    let a = start_locker(&a_opts);
    a.wait_event(0, "acquired", SOON);
    let b = start_locker(&LockerOpts::new("b", &server));
    a.next_event(0, SOON, |e| e.kind() == "write" && e.int("seq") >= 3)
        .expect("a writes");
    let sampler = Sampler::start(&server).await;
    a.freeze();
    // b takes over once a's lease ends (or once the server ended a's session if a froze
    // inside a transaction, which releases its lock on the row).
    let took = b.wait_event(0, "acquired", SOON);
    // Everything a printed before it froze has been read by now.
    let frozen = a.event_count();
    a.thaw();
    let lost = a.wait_event(frozen, "lost", SOON);
    a.next_event(frozen, SOON, |e| {
        e.kind() == "write" && e.json["after_lost"] == true
    })
    .expect("a tries a write after the loss");
    let samples = sampler.finish().await;

    let all = assert_one_holder_at_a_time(&[&a, &b], &samples);
    assert_eq!(all[&took.int("epoch")].holder, "b");
    assert!(
        ["not_renewed", "deposed"].contains(&lost.json["reason"]["kind"].as_str().unwrap_or("")),
        "{}",
        lost.json
    );
    // The first write a reports after waking may be the one it was in when it froze (then
    // committed before the takeover, or ended by the server). Every one it began after that,
    // the one after the loss included, was refused by the database's fence, which names b.
    let woken = events_of(&a, frozen, "write");
    let in_flight = usize::from(woken.first().is_some_and(|w| w.json["after_lost"] == false));
    assert!(woken.len() > in_flight, "{woken:?}");
    for w in &woken[in_flight..] {
        assert_eq!(w.json["ok"], false, "a wrote after b took over: {}", w.json);
        assert_eq!(w.json["fenced"], true, "{}", w.json);
        let text = w.json["error"].as_str().unwrap_or("");
        assert!(
            text.contains("write refused: the lease is held by b"),
            "{text}"
        );
    }
    // The database holds exactly the writes a confirmed.
    let ok = events_of(&a, 0, "write")
        .iter()
        .filter(|e| e.json["ok"] == true)
        .count() as i64;
    assert_eq!(rows_of(&server, "a"), ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_with_skewed_clocks_behave_since_only_database_time_counts() {
    let server = PgServer::start();
    let hour = 3_600_000;
    let mut a_opts = LockerOpts::new("ahead", &server);
    a_opts.clock_offset_ms = hour;
    let mut b_opts = LockerOpts::new("behind", &server);
    b_opts.clock_offset_ms = -hour;
    let mut a = start_locker(&a_opts);
    let clock = a.wait_event(0, "clock", SOON);
    assert!(
        (clock.int("offset_ms") - hour).abs() < 1_000,
        "{}",
        clock.json
    );
    a.wait_event(0, "acquired", SOON);
    let b = start_locker(&b_opts);
    let sampler = Sampler::start(&server).await;
    a.wait_event(0, "renewed", SOON);
    let quiet = Duration::from_millis(2 * LEASE_MS as u64);
    assert!(
        b.next_event(0, quiet, |e| e.kind() == "acquired").is_none(),
        "b took a held lease"
    );
    let killed_at = Instant::now();
    a.kill();
    let took = b.wait_event(0, "acquired", SOON);
    let samples = sampler.finish().await;
    let all = assert_one_holder_at_a_time(&[&a, &b], &samples);
    assert_states_never_overlap(&[(&a, Some(killed_at)), (&b, None)]);
    let prev = &all[&(took.int("epoch") - 1)];
    let late = took.int("acquired_at_ms") - prev.max_expires_ms;
    assert!(
        (0..=LEASE_MS).contains(&late),
        "taken {late} ms after the lease ended"
    );
    // The row's times are the database's, not the members' (an hour off).
    assert!((took.int("acquired_at_ms") - now_ms()).abs() < 10_000);

    // max-allowable-diff-from-db-time refuses a member too far off, and lets one within it run.
    let mut far = LockerOpts::new("far", &server);
    far.clock_offset_ms = 5_000;
    far.max_diff_ms = Some(1_000);
    let mut far = Locker::start(&far);
    let status = far.wait_exit(SOON).expect("refused at start");
    assert_eq!(status.code(), Some(3));
    let e = far.wait_event(0, "error", SOON);
    let text = e.json["message"].as_str().unwrap_or("");
    assert!(
        text.contains("max-allowable-diff-from-db-time (1000 ms)"),
        "{text}"
    );
    let mut near = LockerOpts::new("near", &server);
    near.clock_offset_ms = 5_000;
    near.max_diff_ms = Some(10_000);
    start_locker(&near);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_url_password_or_database_is_one_clear_sentence() {
    let server = PgServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not-the-password\n").expect("write");
    let down = format!("postgres://mq@127.0.0.1:{}/mq", free_port());
    let cases: Vec<(LockerOpts, &str)> = vec![
        (
            LockerOpts {
                url: "postgres://mq@127.0.0.1:notaport/mq".into(),
                ..LockerOpts::new("u", &server)
            },
            "the store URL has an invalid port \"notaport\"",
        ),
        (
            LockerOpts {
                url: "postgres://mq:pw@127.0.0.1/mq".into(),
                ..LockerOpts::new("u", &server)
            },
            "must not contain a password",
        ),
        (
            LockerOpts {
                password_file: Some(wrong),
                ..LockerOpts::new("u", &server)
            },
            "refused the password of user \"mq\"",
        ),
        (
            LockerOpts {
                url: server.url_for("nope"),
                ..LockerOpts::new("u", &server)
            },
            "database \"nope\" does not exist",
        ),
        (
            LockerOpts {
                url: down,
                ..LockerOpts::new("u", &server)
            },
            "cannot reach PostgreSQL at 127.0.0.1:",
        ),
        (
            LockerOpts {
                acquire_ms: 200,
                ..LockerOpts::new("u", &server)
            },
            "lock-acquire-sleep-interval (200 ms) must be greater than lock-keep-alive-period (200 ms)",
        ),
    ];
    for (opts, want) in cases {
        let mut l = Locker::start(&opts);
        let status = l.wait_exit(SOON).expect("the locker exits");
        assert_eq!(status.code(), Some(2), "{opts:?}");
        let e = l.wait_event(0, "error", SOON);
        let text = e.json["message"].as_str().unwrap_or("");
        assert!(text.contains(want), "{opts:?}: {text}");
        assert!(
            !text.contains("not-the-password") && !text.contains(server.password()),
            "{text}"
        );
    }
}
