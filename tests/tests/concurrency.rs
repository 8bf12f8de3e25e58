//! Hundreds of concurrent connections are normal.

use mq_tests::client::AckMode;
use mq_tests::*;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_hundred_clients_each_send_and_receive_at_once() {
    const N: usize = 300;
    let node = Node::start(NodeOpts::new("crowd"));
    let addr = node.stomp_addr();
    let connected = std::sync::Arc::new(Barrier::new(N + 1));
    let go = std::sync::Arc::new(Barrier::new(N + 1));
    let mut tasks = JoinSet::new();
    for i in 0..N {
        let addr = addr.clone();
        let connected = connected.clone();
        let go = go.clone();
        tasks.spawn(async move {
            let mut c = connect(&addr).await;
            let own = format!("/queue/crowd-{i}");
            subscribe(&mut c, &own, "own", AckMode::ClientIndividual).await;
            subscribe(&mut c, "/topic/crowd", "all", AckMode::Auto).await;
            connected.wait().await;
            go.wait().await;
            // Everyone sends at once: one message to its own queue, one to a shared queue.
            let body = format!("from client {i}");
            send(&mut c, &own, body.clone(), &[("persistent", "true")]).await;
            send(&mut c, "/queue/crowd-shared", body.clone(), &[]).await;
            let mut got_own = false;
            let mut got_broadcast = false;
            while !(got_own && got_broadcast) {
                let m = recv(&mut c, SOON).await;
                match m.header("subscription") {
                    Some("own") => {
                        assert_eq!(body_str(&m), body);
                        ack_receipt(&mut c, &m).await;
                        got_own = true;
                    }
                    Some("all") => {
                        assert_eq!(body_str(&m), "go");
                        got_broadcast = true;
                    }
                    other => panic!("client {i}: unexpected subscription {other:?}"),
                }
            }
            c.disconnect().await.expect("DISCONNECT");
        });
    }
    connected.wait().await;
    let admin = node.admin();
    let conns: api::ConnectionList = admin.get_ok("/api/v1/connections").await;
    assert_eq!(conns.connections.len(), N);
    let mut p = connect(&addr).await;
    send(&mut p, "/topic/crowd", "go", &[]).await;
    go.wait().await;
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r {
            std::panic::resume_unwind(e.into_panic());
        }
    }
    wait_for_async(SOON, async || admin.depth("crowd-shared").await == N as u64).await;
    let mut c = connect(&addr).await;
    subscribe(&mut c, "/queue/crowd-shared", "s", AckMode::Auto).await;
    let got = drain(&mut c, N, SOON).await;
    let mut from: Vec<String> = bodies(&got);
    from.sort();
    from.dedup();
    assert_eq!(from.len(), N, "one message from each client");
    let queues: api::QueueList = admin.get_ok("/api/v1/queues").await;
    let own_left: u64 = queues
        .queues
        .iter()
        .filter(|q| q.name.starts_with("crowd-") && q.name != "crowd-shared")
        .map(|q| q.depth)
        .sum();
    assert_eq!(own_left, 0);
}
