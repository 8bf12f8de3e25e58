//! The replicated store under partitions: three `mqnode --ha replicated` members, each in a
//! network namespace of its own ("host"), ZooKeeper in another, joined by veth pairs to one
//! bridge (`mq_tests::replicated::Group`). Links are cut silently (nft drop), processes paused
//! (SIGSTOP) and killed; a [`RoleWatch`] samples every member's role meanwhile.
//!
//! - The master cut off from ZooKeeper and both replicas gets no RECEIPT later than one
//!   session timeout after the cut, gives up the role before a new master is elected (never
//!   two masters in a sample), and after the heal rejoins as a replica, catches up (lag 0), and
//!   a later takeover by it serves every receipted message.
//! - One replica cut off: the master keeps confirming with the other one; healed, the replica
//!   catches up.
//! - The master paused (SIGSTOP) past the session timeout and resumed: a SEND written to its
//!   connection while it was paused never gets a RECEIPT, and it rejoins as a replica.
//! - Every member SIGKILLed and restarted on its data: nothing receipted is lost.
//!
//! Members ask for a 1000 ms ZooKeeper session (a master's lease is 2/3 of it); the server's
//! tick is 100 ms. Clients connect to a member from inside its own host (its loopback), so a
//! cut of the member's links leaves them connected.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use mq_shared::api::Role;
use mq_shared::client::{AckMode, StompClient};
use mq_tests::frame::{Command, Frame};
use mq_tests::replicated::{Group, GroupOpts, RoleWatch, WatchReport};
use mq_tests::{SOON, stomp};

/// How long an election may take once the old master's session can expire (and a replica
/// streams and syncs): generous, the machine is shared.
const TAKEOVER: Duration = Duration::from_secs(20);
/// The queue every test uses.
const Q: &str = "/queue/netns";
/// How often the watch samples every member.
const SAMPLE: Duration = Duration::from_millis(50);
/// Persistent, as every message here.
const PERSISTENT: &[(&str, &str)] = &[("persistent", "true")];

/// Connects to member `i` (its STOMP transport, from inside its host) once it serves.
#[track_caller]
fn client(g: &Group, i: usize) -> StompClient {
    let mut addr = None;
    mq_tests::wait_for(SOON, || {
        addr = g.stomp_addr(i);
        addr.is_some()
    });
    let addr = addr.unwrap_or_default();
    g.rts[i].run(async move { stomp::connect(&addr).await })
}

/// Sends `n` persistent messages `<prefix>-<k>` to member `i`, each with its RECEIPT; returns
/// their bodies (all receipted, or this panics).
#[track_caller]
fn send_receipted(g: &Group, i: usize, prefix: &str, n: usize) -> Vec<String> {
    let c = client(g, i);
    let bodies: Vec<String> = (0..n).map(|k| format!("{prefix}-{k}")).collect();
    let sent = bodies.clone();
    g.rts[i].run(async move {
        let mut c = c;
        let frames = sent.into_iter().map(bytes::Bytes::from);
        stomp::send_pipelined(&mut c, Q, frames, PERSISTENT, 20).await;
    });
    bodies
}

/// Everything on [`Q`] of member `i` (auto ack) until `expected` has all come or nothing more
/// arrives within [`SOON`]; the bodies received.
fn drain(g: &Group, i: usize, expected: &BTreeSet<String>) -> BTreeSet<String> {
    let c = client(g, i);
    let want = expected.clone();
    g.rts[i].run(async move {
        let mut c = c;
        stomp::subscribe(&mut c, Q, "drain", AckMode::Auto).await;
        let mut got = BTreeSet::new();
        while !want.is_subset(&got) {
            match c.recv_timeout(SOON).await {
                Ok(Some(f)) => {
                    got.insert(String::from_utf8_lossy(&f.body).into_owned());
                }
                Ok(None) | Err(_) => break,
            }
        }
        got
    })
}

/// Panics unless every body of `receipted` is in `got`.
#[track_caller]
fn assert_all_there(receipted: &BTreeSet<String>, got: &BTreeSet<String>) {
    let lost: Vec<&String> = receipted.difference(got).collect();
    assert!(
        lost.is_empty(),
        "{} of {} receipted messages lost, e.g. {:?}",
        lost.len(),
        receipted.len(),
        &lost[..lost.len().min(10)]
    );
}

/// Panics if the watch ever saw two members answer `master` in one round.
#[track_caller]
fn assert_one_master(w: &WatchReport) {
    let two = w.two_masters();
    assert!(
        two.is_empty(),
        "two masters in {} of {} rounds ({:?}), e.g. {:?}",
        two.len(),
        w.rounds.len(),
        w.names,
        &two[..two.len().min(3)]
    );
    assert!(w.rounds.len() >= 5, "the watch sampled: {}", w.rounds.len());
}

#[test]
fn a_master_cut_off_from_zookeeper_and_its_replicas_stops_confirming_and_rejoins_as_replica() {
    let mut g = Group::start(GroupOpts::new("rcut"));
    let session = g.session();
    let (m, epoch) = g.settled(&[0, 1, 2], TAKEOVER);
    let watch = RoleWatch::start(g.targets(), SAMPLE);
    let mut receipted: BTreeSet<String> =
        send_receipted(&g, m, "before", 100).into_iter().collect();

    // A connection to the master from its own host stays open across the cut.
    let c = client(&g, m);
    let cut = Instant::now();
    g.isolate(m);
    // Keep sending on it, one at a time, for two session timeouts: every RECEIPT must arrive
    // within one session timeout of the cut.
    let (confirmed, late) = g.rts[m].run(async move {
        let mut c = c;
        let end = cut + session * 2;
        let (mut confirmed, mut late) = (Vec::new(), Vec::new());
        for k in 0.. {
            let left = end.saturating_duration_since(Instant::now());
            let body = format!("cut-{k}");
            match tokio::time::timeout(left, c.send(Q, body.clone(), PERSISTENT, true)).await {
                Ok(Ok(())) => {
                    if cut.elapsed() > session {
                        late.push((body.clone(), cut.elapsed()));
                    }
                    confirmed.push(body);
                }
                // ERROR, the connection closed, or no RECEIPT until the end: stopped.
                Ok(Err(_)) | Err(_) => break,
            }
        }
        (confirmed, late)
    });
    eprintln!("cut-off master: {} RECEIPTs after the cut", confirmed.len());
    assert!(
        late.is_empty(),
        "RECEIPTs later than {session:?} after the cut: {late:?}"
    );
    receipted.extend(confirmed);
    // It gave up the role (its admin API answers on its own host).
    assert!(
        mq_tests::poll_until(SOON, || g.info(m).is_some_and(|b| b.role != Role::Master)),
        "the cut-off master is still master: {:?}",
        g.info(m)
    );
    eprintln!(
        "cut-off master: not master {:?} after the cut",
        cut.elapsed()
    );

    // A new master among the others, in a later epoch, serving.
    let others: Vec<usize> = (0..3).filter(|&i| i != m).collect();
    let (n, next) = g.settled(&others, TAKEOVER);
    assert!(next > epoch, "epoch {next} after {epoch}");
    receipted.extend(send_receipted(&g, n, "during", 100));

    // Healed: the old master follows the new one (which keeps the role) and catches up.
    g.rejoin(m);
    assert_eq!(g.settled(&[0, 1, 2], TAKEOVER), (n, next));
    assert_eq!(g.info(m).map(|b| b.role), Some(Role::Slave));

    // Its copy is complete: with the third member down, the new master's quorum is the old
    // one; then the new master dies, the third comes back, and the old master, with the
    // latest position, is elected and serves every receipted message.
    let k = others[if others[0] == n { 1 } else { 0 }];
    g.nodes[k].kill();
    receipted.extend(send_receipted(&g, n, "after", 100));
    g.nodes[n].kill();
    g.nodes[k].restart();
    let (back, last) = g.settled(&[m, k], TAKEOVER);
    assert_eq!(back, m, "the member with the latest position wins");
    assert!(last > next);
    let got = drain(&g, m, &receipted);
    assert_all_there(&receipted, &got);

    let report = watch.finish();
    assert_one_master(&report);
    assert!(report.master_rounds(m) > 0 && report.master_rounds(n) > 0);
}

#[test]
fn a_replica_cut_off_leaves_the_master_confirming_with_the_other() {
    let g = Group::start(GroupOpts::new("rrep"));
    let (m, epoch) = g.settled(&[0, 1, 2], TAKEOVER);
    let watch = RoleWatch::start(g.targets(), SAMPLE);
    let r = (m + 1) % 3;
    let other = (m + 2) % 3;
    g.isolate(r);
    // Confirmed with the other replica's copy: every RECEIPT comes (send_receipted panics
    // after SOON without one).
    let started = Instant::now();
    let mut receipted: BTreeSet<String> = send_receipted(&g, m, "cut", 300).into_iter().collect();
    eprintln!(
        "300 receipted with one replica cut off in {:?}",
        started.elapsed()
    );
    let info = g.info(m).expect("the master answers");
    assert_eq!(info.role, Role::Master);
    let rep = info.replication.expect("replication info");
    assert_eq!(rep.epoch, epoch, "no election");
    assert!(
        rep.replicas
            .iter()
            .any(|x| x.name == g.nodes[other].name() && x.state == "streaming"),
        "{rep:?}"
    );
    // Healed, the replica catches up with the same master.
    g.rejoin(r);
    assert_eq!(g.settled(&[0, 1, 2], TAKEOVER), (m, epoch));
    receipted.extend(send_receipted(&g, m, "healed", 50));
    let got = drain(&g, m, &receipted);
    assert_all_there(&receipted, &got);
    let report = watch.finish();
    assert_one_master(&report);
    assert_eq!(report.master_rounds(r), 0, "the cut-off replica never led");
}

#[test]
fn a_master_paused_past_its_session_confirms_nothing_once_resumed_and_rejoins_as_replica() {
    let g = Group::start(GroupOpts::new("rstop"));
    let session = g.session();
    let (m, epoch) = g.settled(&[0, 1, 2], TAKEOVER);
    let watch = RoleWatch::start(g.targets(), SAMPLE);
    let mut receipted: BTreeSet<String> = send_receipted(&g, m, "before", 50).into_iter().collect();
    let c = client(&g, m);

    let paused = Instant::now();
    g.nodes[m].pause();
    let others: Vec<usize> = (0..3).filter(|&i| i != m).collect();
    let (n, next) = g.settled(&others, TAKEOVER);
    assert!(next > epoch);
    // A SEND written to the paused master's connection (the kernel takes the bytes) before it
    // resumes: it must never be confirmed.
    let (c, id) = g.rts[m]
        .run(async move {
            let mut c = c;
            let id = c.next_receipt_id();
            let f = Frame::new(Command::Send)
                .with_header("destination", Q)
                .with_header("persistent", "true")
                .with_header("receipt", id.as_str())
                .with_body("while-paused");
            c.queue_frame(&f);
            c.flush().await.map(|()| (c, id))
        })
        .unwrap_or_else(|e| panic!("writing to the paused master's connection: {e}"));
    assert!(
        paused.elapsed() > session,
        "paused for {:?} only",
        paused.elapsed()
    );
    g.nodes[m].resume();
    let pending = g.rts[m].spawn(async move {
        let mut c = c;
        tokio::time::timeout(TAKEOVER, c.wait_receipt(&id)).await
    });
    // It rejoins as a replica of the new master and catches up.
    assert_eq!(g.settled(&[0, 1, 2], TAKEOVER), (n, next));
    let outcome = g.rts[m].run(async move { tokio::time::timeout(SOON, pending).await });
    match outcome {
        Ok(Ok(Ok(Ok(())))) => panic!("the resumed master confirmed a SEND"),
        Ok(Ok(Ok(Err(e)))) => eprintln!("SEND to the resumed master: {e}"),
        Ok(Ok(Err(_))) | Err(_) => eprintln!("SEND to the resumed master: no RECEIPT"),
        Ok(Err(e)) => panic!("the sending task failed: {e}"),
    }
    receipted.extend(send_receipted(&g, n, "after", 50));
    let got = drain(&g, n, &receipted);
    assert_all_there(&receipted, &got);
    let report = watch.finish();
    assert_one_master(&report);
}

#[test]
fn every_member_killed_and_restarted_on_its_data_loses_nothing_receipted() {
    let mut g = Group::start(GroupOpts::new("rall"));
    let (m, _) = g.settled(&[0, 1, 2], TAKEOVER);
    let receipted: BTreeSet<String> = send_receipted(&g, m, "kept", 500).into_iter().collect();
    for i in 0..3 {
        g.nodes[i].kill();
    }
    for i in 0..3 {
        g.nodes[i].restart();
    }
    let (n, _) = g.settled(&[0, 1, 2], TAKEOVER);
    let got = drain(&g, n, &receipted);
    assert_all_there(&receipted, &got);
}
