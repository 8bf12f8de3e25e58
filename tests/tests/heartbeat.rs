//! Heart-beating (STOMP 1.1+): the server beats on time, and drops a client that stops
//! beating past the agreed interval (with the node's grace).

use std::time::{Duration, Instant};

use mq_tests::client::ConnectOptions;
use mq_tests::*;

/// The node offers 100 ms, so the intervals below are set by the clients.
fn node(name: &str) -> Node {
    Node::start(NodeOpts::new(name).args(["--heartbeat-ms", "100"]))
}

#[tokio::test]
async fn server_sends_heart_beats_on_time() {
    let node = node("beats");
    // The client sends none and wants one every 500 ms.
    let (mut c, connected) = RawConn::connect(&node.stomp_addr(), Some("1.2"), "0,500").await;
    let hb = connected
        .header("heart-beat")
        .expect("heart-beat in CONNECTED");
    let (sx, sy) = hb.split_once(',').expect("heart-beat is x,y");
    let sx: u64 = sx.parse().expect("number");
    assert!(
        sx > 0 && sx <= 500,
        "server offers to beat every {sx} ms: {hb}"
    );
    assert_eq!(sy, "0", "the client offered no beats: {hb}");

    // Over 2.6 s at one beat per 500 ms: 5 expected; allow scheduling slack.
    let window = Duration::from_millis(2600);
    let start = Instant::now();
    let mut beats = Vec::new();
    while start.elapsed() < window {
        match c.next(window.saturating_sub(start.elapsed())).await {
            RawEvent::HeartBeat => beats.push(start.elapsed()),
            RawEvent::Timeout => break,
            other => panic!("expected heart-beats, got {other:?}"),
        }
    }
    assert!(
        (4..=8).contains(&beats.len()),
        "{} beats in {window:?}: {beats:?}",
        beats.len()
    );
    let gaps: Vec<Duration> = beats.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter().all(|g| *g <= Duration::from_millis(900)),
        "a beat came late: gaps {gaps:?}"
    );
}

#[tokio::test]
async fn a_client_that_stops_beating_is_dropped() {
    let node = node("silence");
    let addr = node.stomp_addr();

    // This one promises a beat every 500 ms and keeps it (the client beats while it waits).
    let mut alive = connect_with(
        &addr,
        ConnectOptions {
            heart_beat: (500, 0),
            ..ConnectOptions::default()
        },
    )
    .await;

    // This one promises the same and then says nothing at all.
    let (mut silent, connected) = RawConn::connect(&addr, Some("1.2"), "500,0").await;
    let hb = connected
        .header("heart-beat")
        .expect("heart-beat in CONNECTED");
    assert!(!hb.ends_with(",0"), "server expects no beats: {hb}");
    let start = Instant::now();
    let silent_dropped = async {
        silent.expect_closed(Duration::from_secs(5)).await;
        start.elapsed()
    };
    // The beating client must be waiting (and so beating) meanwhile.
    let keep_beating = async {
        while start.elapsed() < Duration::from_millis(2500) {
            let r = alive.recv_timeout(Duration::from_millis(100)).await;
            assert!(matches!(r, Ok(None)), "the beating client got {r:?}");
        }
    };
    let (after, ()) = tokio::join!(silent_dropped, keep_beating);
    assert!(
        after >= Duration::from_millis(450),
        "dropped after {after:?}, before the 500 ms interval passed"
    );
    send(&mut alive, "/queue/hb", "still here", &[]).await;
}
