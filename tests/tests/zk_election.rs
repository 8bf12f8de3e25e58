//! Election, fencing and membership through a real ZooKeeper server (`mqnode::ha::zk`), with
//! members as child processes (the `zk_member` example) that the tests kill, pause and cut off.
//!
//! Each test starts its own server (loopback, or inside a lab host of network namespaces) and
//! its members, waits on their JSON role events with bounds, and drops everything at its end.
//! Members ask for a 2000 ms session; the server's tick is 100 ms.

use std::time::{Duration, SystemTime};

use mq_tests::netns::{Lab, Origin};
use mq_tests::zookeeper::{Member, MemberOpts, ZooKeeper, unix_ms};
use mq_tests::{QUIET, SOON, poll_until};
use serde_json::Value;

/// The session timeout the members ask for.
const SESSION: Duration = Duration::from_millis(2000);
/// A member's lease: 2/3 of the session timeout.
const LEASE: Duration = Duration::from_millis(2000 * 2 / 3);
/// How long after its session can expire a new master may take to be elected: the server's
/// tick (100 ms) plus a few requests, generously.
const ELECTION: Duration = Duration::from_millis(1000);

fn is(r: &Value, role: &str) -> bool {
    r["role"] == role
}

/// Waits until exactly one of `members` is master and every other one a replica of it, all in
/// the same epoch; returns the master's index and the epoch.
#[track_caller]
fn settled(members: &[&Member], timeout: Duration) -> (usize, u64) {
    let mut found = None;
    let ok = poll_until(timeout, || {
        let roles: Vec<Option<Value>> = members.iter().map(|m| m.role()).collect();
        let masters: Vec<usize> = (0..members.len())
            .filter(|&i| roles[i].as_ref().is_some_and(|r| is(r, "master")))
            .collect();
        let [m] = masters[..] else { return false };
        let Some(epoch) = roles[m].as_ref().and_then(|r| r["epoch"].as_u64()) else {
            return false;
        };
        let followed = roles.iter().enumerate().all(|(i, r)| {
            i == m
                || r.as_ref().is_some_and(|r| {
                    is(r, "replica")
                        && r["master"] == members[m].name()
                        && r["epoch"].as_u64() == Some(epoch)
                })
        });
        if followed {
            found = Some((m, epoch));
        }
        followed
    });
    match found {
        Some(f) if ok => f,
        _ => {
            let states: Vec<String> = members
                .iter()
                .map(|m| format!("{}: {:?}", m.name(), m.role()))
                .collect();
            panic!("no single master within {timeout:?}: {states:?}");
        }
    }
}

/// Every member that ever reported master, with the epochs.
fn masters_ever(members: &[&Member]) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = members
        .iter()
        .flat_map(|m| {
            m.roles()
                .into_iter()
                .filter(|e| is(&e.json, "master"))
                .map(|e| (m.name().to_string(), e.json["epoch"].as_u64().unwrap_or(0)))
        })
        .collect();
    v.sort_by_key(|(_, e)| *e);
    v.dedup();
    v
}

#[test]
fn three_members_elect_one_master_the_latest_position_first_then_the_highest_weight() {
    let zk = ZooKeeper::start();
    let opts = |n: &str| MemberOpts::new(n).quorum(3);
    // a has the highest weight but an older position; b and c share the latest position and
    // c weighs more.
    let a = Member::start(&zk, Origin::Root, opts("a").position(5).weight(9));
    let b = Member::start(&zk, Origin::Root, opts("b").position(9).weight(1));
    let c = Member::start(&zk, Origin::Root, opts("c").position(9).weight(3));
    let all = [&a, &b, &c];
    let (m, epoch) = settled(&all, SOON);
    assert_eq!(all[m].name(), "c");
    assert_eq!(epoch, 1, "the first election of a new group");
    assert_eq!(masters_ever(&all), vec![("c".to_string(), 1)]);

    // A member joining later with a later position and a higher weight does not pre-empt a
    // healthy master.
    let d = Member::start(&zk, Origin::Root, opts("d").position(100).weight(100));
    let all = [&a, &b, &c, &d];
    assert_eq!(settled(&all, SOON), (2, 1));
    std::thread::sleep(QUIET);
    assert_eq!(settled(&all, SOON), (2, 1));
    assert_eq!(masters_ever(&all), vec![("c".to_string(), 1)]);

    // A master that leaves closes its session: its nodes go at once, and the next election
    // (now d has the latest position) does not wait for a session timeout.
    let mut c = c;
    let left = SystemTime::now();
    assert!(c.leave(), "c left cleanly");
    let rest = [&a, &b, &d];
    assert_eq!(settled(&rest, SESSION), (2, 2));
    let took = SystemTime::now().duration_since(left).unwrap_or_default();
    assert!(
        took < SESSION,
        "a new master {took:?} after the master left"
    );
}

#[test]
fn a_killed_master_is_replaced_within_the_session_timeout_and_the_epoch_rises() {
    let zk = ZooKeeper::start();
    let mut ms: Vec<Member> = ["a", "b", "c"]
        .iter()
        .map(|n| Member::start(&zk, Origin::Root, MemberOpts::new(n).quorum(2)))
        .collect();
    let (m, epoch) = settled(&ms.iter().collect::<Vec<_>>(), SOON);
    let others: Vec<usize> = (0..3).filter(|&i| i != m).collect();
    // The next election: the later position wins over the higher weight. (Weights are read
    // at join, so the tie-break by weight is the first test's.)
    let (x, y) = (others[0], others[1]);
    ms[x].set_position(20);
    ms[y].set_position(10);
    let seen_x = ms[x].roles().len();

    let killed = SystemTime::now();
    ms[m].kill();
    let won = ms[x].wait_role(seen_x, SESSION + ELECTION + SOON, |r| is(r, "master"));
    let took = won.at.duration_since(killed).unwrap_or_default();
    eprintln!("new master {took:?} after the kill");
    assert!(
        took <= SESSION + ELECTION,
        "a new master {took:?} after the kill (session timeout {SESSION:?})"
    );
    assert_eq!(
        won.json["epoch"].as_u64(),
        Some(epoch + 1),
        "the epoch rises"
    );
    let rest: Vec<&Member> = vec![&ms[x], &ms[y]];
    assert_eq!(settled(&rest, SOON), (0, epoch + 1));
}

#[test]
fn a_paused_master_reports_lost_before_its_session_expires_and_does_not_come_back_as_master() {
    let zk = ZooKeeper::start();
    let ms: Vec<Member> = ["a", "b"]
        .iter()
        .map(|n| Member::start(&zk, Origin::Root, MemberOpts::new(n)))
        .collect();
    let (m, epoch) = settled(&ms.iter().collect::<Vec<_>>(), SOON);
    let (master, other) = (&ms[m], &ms[1 - m]);
    let session = master.session().expect("the master reported its session");
    let track = zk.track_session(session);
    assert!(poll_until(SOON, || track.last_alive().is_some()));
    let seen = master.roles().len();
    let seen_other = other.roles().len();

    // Paused past the session timeout: ZooKeeper expires it and the other member takes over.
    master.pause();
    let won = other.wait_role(seen_other, SESSION + ELECTION + SOON, |r| is(r, "master"));
    assert_eq!(won.json["epoch"].as_u64(), Some(epoch + 1));
    assert!(poll_until(SOON, || track.gone().is_some()));
    master.resume();

    // Resumed, its first word is that it is lost, then it follows the new master.
    let back = master.wait_role(seen, SOON, |r| is(r, "replica"));
    let after = master.roles_after(seen);
    assert!(
        is(&after[0], "lost"),
        "first event after the pause: {after:?}"
    );
    assert!(
        after.iter().all(|r| !is(r, "master")),
        "never master again while another holds the role: {after:?}"
    );
    assert_eq!(back.json["master"], other.name());
    assert_eq!(back.json["epoch"].as_u64(), Some(epoch + 1));
    // Its lease ended while ZooKeeper still held the session.
    let lease_end = after[0]["lease_end_ms"].as_u64().expect("a lease end");
    let alive = unix_ms(track.last_alive().expect("seen alive"));
    eprintln!(
        "paused master: lease ended {} ms before its session was last seen alive",
        alive as i64 - lease_end as i64
    );
    assert!(
        lease_end < alive,
        "lease ended at {lease_end}, session last seen alive at {alive}"
    );
    assert_ne!(
        master.session(),
        Some(session),
        "it joined with a new session"
    );
}

#[test]
fn a_master_cut_off_from_zookeeper_is_lost_in_time_replaced_and_rejoins_as_replica_when_healed() {
    // Declared first, dropped last: the processes in it go before its namespaces.
    let mut lab = Lab::new();
    let zh = lab.host("zk");
    let hosts = [lab.host("a"), lab.host("b"), lab.host("c")];
    let zk = ZooKeeper::start_in(&zh);
    let ms: Vec<Member> = hosts
        .iter()
        .map(|h| Member::start(&zk, Origin::Host(h), MemberOpts::new(h.name()).quorum(2)))
        .collect();
    let (m, epoch) = settled(&ms.iter().collect::<Vec<_>>(), SOON);
    let master = &ms[m];
    let session = master.session().expect("the master reported its session");
    let track = zk.track_session(session);
    assert!(poll_until(SOON, || track.last_alive().is_some()));
    let seen = master.roles().len();

    let cut = SystemTime::now();
    hosts[m].cut(&zh);
    let lost = master.wait_role(seen, LEASE + SOON, |r| is(r, "lost"));
    let lost_ms = lost.json["ts_ms"].as_u64().unwrap_or(u64::MAX);
    // Within one lease of the cut (its last renewal was sent before it), with a little room
    // for scheduling.
    assert!(
        lost_ms <= unix_ms(cut) + LEASE.as_millis() as u64 + 250,
        "lost {} ms after the cut",
        lost_ms.saturating_sub(unix_ms(cut))
    );
    // A new master among the others, in the next epoch.
    let rest: Vec<&Member> = (0..3).filter(|&i| i != m).map(|i| &ms[i]).collect();
    let (n, next) = settled(&rest, SESSION + ELECTION + SOON);
    assert_eq!(next, epoch + 1);
    // The cut-off master reported lost, and its lease had ended, while ZooKeeper still held
    // its session; the new master came after.
    assert!(poll_until(SOON, || track.gone().is_some()));
    let alive = unix_ms(track.last_alive().expect("seen alive"));
    let lease_end = lost.json["lease_end_ms"].as_u64().expect("a lease end");
    eprintln!(
        "cut-off master: lost {} ms after the cut, {} ms before its session was last seen alive",
        lost_ms as i64 - unix_ms(cut) as i64,
        alive as i64 - lost_ms as i64
    );
    assert!(
        lost_ms < alive && lease_end < alive,
        "lost at {lost_ms}, lease end {lease_end}, session last seen alive at {alive}"
    );
    let new_master = rest[n]
        .roles()
        .into_iter()
        .find(|e| is(&e.json, "master"))
        .expect("the new master's event");
    assert!(new_master.json["ts_ms"].as_u64() > Some(lost_ms));

    hosts[m].heal(&zh);
    let back = master.wait_role(seen, SESSION * 3 + SOON, |r| is(r, "replica"));
    assert_eq!(back.json["master"], rest[n].name());
    assert_eq!(back.json["epoch"].as_u64(), Some(next));
    let after = master.roles_after(seen);
    assert!(
        after.iter().all(|r| !is(r, "master")),
        "never master again: {after:?}"
    );
    let all: Vec<&Member> = ms.iter().collect();
    let (now_master, now_epoch) = settled(&all, SOON);
    assert_eq!((ms[now_master].name(), now_epoch), (rest[n].name(), next));
}
