//! The replicated store (`--ha replicated`): three `mqnode` processes with a store each, a real
//! ZooKeeper server electing their master, the master streaming its journal to the others.
//!
//! - Under a receipted load through `failover:(...)`, a SIGKILL of the master loses no
//!   confirmed message: the new master holds every one (and says `redelivered:true` for what
//!   may have been delivered).
//! - With the master alone (both replicas killed) a persistent SEND gets no RECEIPT; it gets
//!   one once a replica is back.
//! - A replica that was down while messages flowed catches up, and a takeover by it then
//!   serves every one of them.
//! - A member presenting the wrong replication token is refused.
//! - With the nodes' TLS certificates the links are TLS: a group elects, a receipted message
//!   survives a SIGKILL of its master, and a member whose certificate the CA did not sign is
//!   refused by the master.
//! - A bridge from another node follows the master with `static:(masterslave:(...))`, and by
//!   multicast discovery: only the master advertises its transport, so after a SIGKILL of it
//!   the bridge finds the new master when it starts advertising; after a stepdown of that one
//!   (alive, now a replica, saying on the group that it stopped) it moves to the next, and
//!   messages receipted meanwhile reach it. The discovery test runs in a
//!   network namespace of its own ([`mq_tests::multicast`]): it needs root and iproute2.
//!
//! Members ask for a 1000 ms ZooKeeper session; the server's tick is 100 ms.

use std::sync::atomic::Ordering;
use std::time::Duration;

use mq_shared::api::{BrokerInfo, Role};
use mq_shared::client::AckMode;
use mq_tests::api::PeerState;
use mq_tests::certs::Pki;
use mq_tests::load::Load;
use mq_tests::multicast::{NamespacedTest, in_loopback_namespace};
use mq_tests::netns::Origin;
use mq_tests::zookeeper::ZooKeeper;
use mq_tests::*;

/// The session timeout members ask for.
const SESSION_MS: &str = "1000";
/// How long an election may take after a master's death: its session expiring, then a round.
const TAKEOVER: Duration = Duration::from_secs(15);

/// A member of the group `group` on `zk`, with a data directory of its own.
fn replicated(name: &str, zk: &ZooKeeper, group: &str, dir: &std::path::Path) -> NodeOpts {
    member(name, dir).args([
        "--ha".to_string(),
        "replicated".to_string(),
        "--replicas".to_string(),
        "3".to_string(),
        "--zk-address".to_string(),
        zk.connect_string(Origin::Root),
        "--zk-path".to_string(),
        format!("/mq/{group}"),
        "--zk-session-timeout".to_string(),
        SESSION_MS.to_string(),
        "--bind".to_string(),
        "tcp://127.0.0.1:0".to_string(),
    ])
}

/// Three members of a group, started (as slaves first) with data directories of their own.
struct Group {
    nodes: Vec<Node>,
    urls: Vec<String>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Group {
    fn start(zk: &ZooKeeper, group: &str, weights: [u32; 3]) -> Group {
        Group::start_with(zk, group, weights, Default::default())
    }

    /// A group whose member `i` also gets `extra[i]`.
    fn start_with(
        zk: &ZooKeeper,
        group: &str,
        weights: [u32; 3],
        extra: [Vec<String>; 3],
    ) -> Group {
        let dirs: Vec<tempfile::TempDir> = (0..3)
            .map(|_| tempfile::tempdir().expect("data dir"))
            .collect();
        let mut urls = Vec::new();
        let nodes = (0..3)
            .map(|i| {
                let opts = replicated(&format!("{group}-{i}"), zk, group, dirs[i].path())
                    .args(["--weight".to_string(), weights[i].to_string()])
                    .args(extra[i].clone());
                urls.push(opts.transport.clone());
                let n = Node::start(opts);
                assert_eq!(n.role(), Role::Slave, "a member starts as slave");
                n
            })
            .collect();
        Group {
            nodes,
            urls,
            _dirs: dirs,
        }
    }

    fn uri(&self) -> String {
        failover_uri(&self.urls)
    }
}

/// The STOMP address of member `i`, once it serves (its latest ready line).
fn stomp_of(g: &mut Group, i: usize) -> String {
    g.nodes[i].wait_event(Role::Master, SOON);
    g.nodes[i].stomp_addr()
}

/// The broker info of a member, if its admin API answers.
async fn info(n: &Node) -> Option<BrokerInfo> {
    let r = n.admin().get("/api/v1/broker").await;
    (r.status == 200).then(|| r.json())
}

/// The names of the replicas a master lists in `GET /api/v1/broker`.
async fn replica_names(master: &Node) -> Vec<String> {
    let b = info(master).await.expect("master info");
    b.replication
        .expect("replication info")
        .replicas
        .into_iter()
        .map(|r| r.name)
        .collect()
}

/// Waits until exactly one of the running members (by index) is master and every other one
/// streams from it with nothing left to apply; returns the master's index.
async fn settled(g: &Group, running: &[usize], timeout: Duration) -> usize {
    let mut found = None;
    let ok = poll_until_async(timeout, async || {
        let mut infos = Vec::new();
        for &i in running {
            match info(&g.nodes[i]).await {
                Some(b) => infos.push((i, Some(b))),
                None => return false,
            }
        }
        found = mq_tests::replicated::settled_master(&infos).map(|(m, _)| m);
        found.is_some()
    })
    .await;
    match found {
        Some(m) if ok => m,
        _ => {
            let mut states = Vec::new();
            for &i in running {
                states.push(format!(
                    "{}: {:?}",
                    g.nodes[i].name(),
                    info(&g.nodes[i]).await
                ));
            }
            panic!("the group did not settle within {timeout:?}: {states:#?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_of_the_master_under_load_loses_no_confirmed_message() {
    let zk = ZooKeeper::start();
    let g = Group::start(&zk, "rkill", [1, 1, 1]);
    kill_of_the_master_under_load(g).await;
}

/// With `quorum_mem` the replicas acknowledge a group once received, before their own
/// sync: a master killed -9 still leaves every confirmed message with the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_quorum_mem_a_kill_of_the_master_under_load_loses_no_confirmed_message() {
    let zk = ZooKeeper::start();
    let mem = || vec!["--sync".to_string(), "quorum_mem".to_string()];
    let g = Group::start_with(&zk, "rkillmem", [1, 1, 1], [mem(), mem(), mem()]);
    kill_of_the_master_under_load(g).await;
}

/// SIGKILL of the master under 4 producers and 4 consumers with receipts: nothing receipted
/// is lost, redeliveries are flagged, and the killed member rejoins as a replica.
async fn kill_of_the_master_under_load(mut g: Group) {
    let m = settled(&g, &[0, 1, 2], TAKEOVER).await;
    let load = Load::start(&g.uri(), 4, 4);
    load.wait_confirmed(1_000, Duration::from_secs(60)).await;
    let before = load.confirmed.load(Ordering::Relaxed);
    g.nodes[m].kill();
    let rest: Vec<usize> = (0..3).filter(|&i| i != m).collect();
    let n = settled(&g, &rest, TAKEOVER).await;
    assert_ne!(n, m);
    load.wait_confirmed(before + 1_000, Duration::from_secs(60))
        .await;
    let result = load.finish(Duration::from_secs(60)).await;
    result.assert_no_loss();
    result.assert_redeliveries_flagged();
    // The killed member comes back as a replica of the new master and catches up.
    g.nodes[m].restart();
    assert_eq!(g.nodes[m].role(), Role::Slave);
    assert_eq!(settled(&g, &[0, 1, 2], TAKEOVER).await, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_master_without_its_quorum_confirms_nothing() {
    let zk = ZooKeeper::start();
    let mut g = Group::start(&zk, "rquorum", [1, 1, 1]);
    let m = settled(&g, &[0, 1, 2], TAKEOVER).await;
    let mut c = stomp::connect(&stomp_of(&mut g, m)).await;
    stomp::send_persistent(&mut c, "/queue/q", "with the quorum").await;
    let others: Vec<usize> = (0..3).filter(|&i| i != m).collect();
    for &i in &others {
        g.nodes[i].kill();
    }
    // The master alone: its session holds, so it stays master, but confirms nothing.
    let mut send = Box::pin(c.send("/queue/q", "alone", &[("persistent", "true")], true));
    let early = tokio::time::timeout(Duration::from_secs(3), &mut send).await;
    assert!(early.is_err(), "a RECEIPT came without a quorum: {early:?}");
    assert_eq!(g.nodes[m].admin().role().await, Role::Master);
    // One replica back: the quorum holds the message again and the RECEIPT follows.
    g.nodes[others[0]].restart();
    let late = tokio::time::timeout(SOON + TAKEOVER, &mut send).await;
    assert!(
        matches!(late, Ok(Ok(()))),
        "no RECEIPT once the quorum was back: {late:?}"
    );
    drop(send);
    stomp::subscribe(&mut c, "/queue/q", "s", AckMode::Auto).await;
    let got = stomp::drain(&mut c, 2, SOON).await;
    assert_eq!(stomp::bodies(&got), ["with the quorum", "alone"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_that_was_down_catches_up_and_a_takeover_by_it_has_everything() {
    const N: usize = 2_000;
    let weights = [1, 5, 9];
    let zk = ZooKeeper::start();
    let mut g = Group::start(&zk, "rcatch", weights);
    let m = settled(&g, &[0, 1, 2], TAKEOVER).await;
    // The replica to catch up: the heavier of the two, so that it wins a later election
    // against the other if, and only if, its position is as recent.
    let mut replicas: Vec<usize> = (0..3).filter(|&i| i != m).collect();
    replicas.sort_by_key(|&i| weights[i]);
    let (other, late) = (replicas[0], replicas[1]);
    g.nodes[late].kill();
    let mut c = stomp::connect(&stomp_of(&mut g, m)).await;
    let bodies = (0..N).map(|i| stomp::numbered_body(i, 200));
    stomp::send_pipelined(
        &mut c,
        "/queue/catch",
        bodies,
        &[("persistent", "true")],
        100,
    )
    .await;
    drop(c);
    g.nodes[late].restart();
    assert_eq!(settled(&g, &[0, 1, 2], TAKEOVER).await, m);
    g.nodes[m].kill();
    let n = settled(&g, &[late, other], TAKEOVER).await;
    assert_eq!(
        n, late,
        "the caught-up replica, as recent as the other and heavier, wins"
    );
    let mut c = stomp::connect(&stomp_of(&mut g, late)).await;
    stomp::subscribe(&mut c, "/queue/catch", "s", AckMode::Auto).await;
    let got = stomp::drain(&mut c, N, SOON + SOON).await;
    let mut numbers: Vec<usize> = got.iter().map(stomp::body_number).collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), N, "every message, once each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_with_the_wrong_replication_token_is_refused() {
    let zk = ZooKeeper::start();
    let dirs: Vec<tempfile::TempDir> = (0..3)
        .map(|_| tempfile::tempdir().expect("data dir"))
        .collect();
    let mut nodes = Vec::new();
    for (i, token) in ["group-secret", "group-secret", "guessed"]
        .iter()
        .enumerate()
    {
        let file = dirs[i].path().join("replication.token");
        std::fs::write(&file, format!("{token}\n")).expect("token file");
        let opts = replicated(&format!("rtoken-{i}"), &zk, "rtoken", dirs[i].path()).args([
            "--replication-token-file".to_string(),
            file.display().to_string(),
            // The impostor never wins an election while the others are there.
            "--weight".to_string(),
            if i == 2 { "1" } else { "5" }.to_string(),
        ]);
        nodes.push(Node::start(opts));
    }
    let g = Group {
        nodes,
        urls: Vec::new(),
        _dirs: dirs,
    };
    let m = settled(&g, &[0, 1], TAKEOVER).await;
    assert_ne!(m, 2);
    // It keeps trying, and is told why it is refused.
    wait_for(SOON, || {
        g.nodes[2].log().contains("wrong replication token")
    });
    let names = replica_names(&g.nodes[m]).await;
    assert!(
        !names.contains(&"rtoken-2".to_string()),
        "the impostor replicates: {names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_tls_a_group_elects_and_a_receipted_message_survives_a_kill_of_the_master() {
    let pki = Pki::new();
    let zk = ZooKeeper::start();
    let mut g = Group::start_with(
        &zk,
        "rtls",
        [1, 1, 1],
        [pki.node_args(), pki.node_args(), pki.node_args()],
    );
    // Settled: both replicas stream from the master, each over a verified TLS link.
    let m = settled(&g, &[0, 1, 2], TAKEOVER).await;
    let mut c = stomp::connect(&stomp_of(&mut g, m)).await;
    stomp::send_persistent(&mut c, "/queue/tls", "replicated over TLS").await;
    drop(c);
    g.nodes[m].kill();
    let rest: Vec<usize> = (0..3).filter(|&i| i != m).collect();
    let n = settled(&g, &rest, TAKEOVER).await;
    assert_ne!(n, m);
    let mut c = stomp::connect(&stomp_of(&mut g, n)).await;
    stomp::subscribe(&mut c, "/queue/tls", "s", AckMode::Auto).await;
    let got = stomp::drain(&mut c, 1, SOON).await;
    assert_eq!(stomp::bodies(&got), ["replicated over TLS"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_tls_a_member_whose_certificate_the_ca_did_not_sign_is_refused() {
    let pki = Pki::new();
    let zk = ZooKeeper::start();
    // The third member trusts the group's CA, but its own certificate is another CA's.
    let rogue = vec![
        "--tls-cert".to_string(),
        pki.rogue_cert.display().to_string(),
        "--tls-key".to_string(),
        pki.rogue_key.display().to_string(),
        "--tls-ca".to_string(),
        pki.ca.display().to_string(),
    ];
    // It never wins an election while the others are there.
    let g = Group::start_with(
        &zk,
        "rtlsrogue",
        [5, 5, 1],
        [pki.node_args(), pki.node_args(), rogue],
    );
    let m = settled(&g, &[0, 1], TAKEOVER).await;
    assert_ne!(m, 2);
    // Its handshake is refused, again at each attempt, and the master says why.
    wait_for(SOON, || {
        g.nodes[m]
            .log()
            .contains("not signed by the trusted CA (tls-ca)")
    });
    let names = replica_names(&g.nodes[m]).await;
    assert!(
        !names.contains(&"rtlsrogue-2".to_string()),
        "the member outside the CA replicates: {names:?}"
    );
    // The refused member says so too, and keeps trying.
    wait_for(SOON, || {
        g.nodes[2]
            .log()
            .contains("replication from the master stopped")
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bridge_to_the_group_with_masterslave_follows_its_master() {
    let zk = ZooKeeper::start();
    let mut g = Group::start(&zk, "rbridge", [1, 1, 1]);
    let m = settled(&g, &[0, 1, 2], TAKEOVER).await;
    // Replicas bind no STOMP transport: the link finds the member that serves.
    let uri = format!(
        "static:(masterslave:({}))?initialReconnectDelay=100&maxReconnectDelay=200",
        g.urls.join(",")
    );
    let a = Node::start(NodeOpts::new("rbridge-a").args(["--network", &uri]));
    network::wait_connected(&a, 1).await;
    let mut cm = stomp::connect(&stomp_of(&mut g, m)).await;
    stomp::subscribe(&mut cm, "/queue/group", "s", AckMode::ClientIndividual).await;
    network::wait_consumers(&a, "group", 1).await;
    network::produce(&a, "/queue/group", 0..10, 16).await;
    // Acked with receipts: confirmed by the group's quorum before its master dies.
    for _ in 0..10 {
        let f = stomp::recv(&mut cm, SOON).await;
        stomp::ack_receipt(&mut cm, &f).await;
    }
    g.nodes[m].kill();
    let rest: Vec<usize> = (0..3).filter(|&i| i != m).collect();
    let n = settled(&g, &rest, TAKEOVER).await;
    let mut cn = stomp::connect(&stomp_of(&mut g, n)).await;
    stomp::subscribe(&mut cn, "/queue/group", "s", AckMode::Auto).await;
    network::wait_consumers(&a, "group", 1).await;
    network::produce(&a, "/queue/group", 10..20, 16).await;
    let got = network::collect(std::slice::from_mut(&mut cn), 10, SOON).await;
    let mut ids = got[0].clone();
    ids.sort_unstable();
    assert_eq!(ids, (10..20).collect::<Vec<_>>(), "{got:?}");
    stomp::expect_nothing(&mut cn, QUIET).await;
}

/// Outside, it creates a network namespace and re-runs itself in it (as the discovery tests
/// do); inside, a group whose members advertise on `multicast://default` and a node bridging
/// to what it discovers there.
#[test]
fn a_bridge_to_the_group_by_discovery_follows_its_master() {
    in_loopback_namespace(
        NamespacedTest {
            module: module_path!(),
            test: "a_bridge_to_the_group_by_discovery_follows_its_master",
            ns_env: "MQ_TEST_REPLICATED_NETNS",
            prefix: "mqrdisc-",
            envs: &[],
        },
        bridge_by_discovery_inside,
    );
}

/// Waits until the node's connector has a connected peer that is `broker` and no other peer
/// but, not connected, those at `gone` (a master that died without a word is forgotten only
/// once its adverts have been missed for a while); returns the peer's URI. Panics with the
/// peers after [`network::LINK`].
async fn wait_bridged_to(a: &Node, broker: &str, gone: &[&str]) -> String {
    let mut uri = None;
    let ok = poll_until_async(network::LINK, async || {
        let l = network::connectors(a).await;
        let peers = &l.connectors[0].peers;
        let to = peers.iter().find(|p| {
            p.state == PeerState::Connected && p.remote_broker.as_deref() == Some(broker)
        });
        uri = to.map(|p| p.uri.clone());
        to.is_some()
            && peers.iter().all(|p| {
                Some(&p.uri) == uri.as_ref()
                    || (gone.contains(&p.uri.as_str()) && p.state != PeerState::Connected)
            })
    })
    .await;
    match uri {
        Some(u) if ok => u,
        _ => panic!(
            "no bridge to {broker} alone within {:?}: {:#?}",
            network::LINK,
            network::connectors(a).await.connectors[0].peers
        ),
    }
}

/// The part that runs inside the namespace.
async fn bridge_by_discovery_inside() {
    let zk = ZooKeeper::start();
    let advertise = || vec!["--discovery".to_string(), "multicast://default".to_string()];
    let mut g = Group::start_with(
        &zk,
        "rdisc",
        [1, 1, 1],
        [advertise(), advertise(), advertise()],
    );
    let m = settled(&g, &[0, 1, 2], TAKEOVER).await;
    let a = Node::start(NodeOpts::new("rdisc-a").args([
        "--network",
        "multicast://default?initialReconnectDelay=100&maxReconnectDelay=200",
    ]));
    let old = wait_bridged_to(&a, g.nodes[m].name(), &[]).await;
    // Replicas bind no STOMP transport, and advertise none.
    for (i, n) in g.nodes.iter().enumerate() {
        assert_eq!(
            n.log().contains("advertising transport connectors"),
            i == m,
            "{}:\n{}",
            n.name(),
            n.log()
        );
    }
    let mut cm = stomp::connect(&stomp_of(&mut g, m)).await;
    stomp::subscribe(&mut cm, "/queue/disc", "s", AckMode::ClientIndividual).await;
    network::wait_consumers(&a, "disc", 1).await;
    network::produce(&a, "/queue/disc", 0..10, 16).await;
    // Acked with receipts: confirmed by the group's quorum before its master dies.
    let mut first = Vec::new();
    for _ in 0..10 {
        let f = stomp::recv(&mut cm, SOON).await;
        first.push(stomp::body_number(&f));
        stomp::ack_receipt(&mut cm, &f).await;
    }
    assert_eq!(first, (0..10).collect::<Vec<_>>());
    g.nodes[m].kill();
    // Receipted by the bridging node while the group has no master: held there.
    network::produce(&a, "/queue/disc", 10..20, 16).await;
    let rest: Vec<usize> = (0..3).filter(|&i| i != m).collect();
    let n = settled(&g, &rest, TAKEOVER).await;
    assert_ne!(n, m);
    let second = wait_bridged_to(&a, g.nodes[n].name(), &[&old]).await;
    let mut cn = stomp::connect(&stomp_of(&mut g, n)).await;
    stomp::subscribe(&mut cn, "/queue/disc", "s", AckMode::Auto).await;
    network::produce(&a, "/queue/disc", 20..30, 16).await;
    let got = network::collect(std::slice::from_mut(&mut cn), 20, SOON).await;
    let mut ids = got[0].clone();
    ids.sort_unstable();
    assert_eq!(ids, (10..30).collect::<Vec<_>>(), "{got:?}");
    stomp::expect_nothing(&mut cn, QUIET).await;
    drop(cn);
    // A planned switchover: the master steps down and stays up as a replica, so it stops
    // serving STOMP and advertising, and the bridge moves to the member elected next.
    let r = g.nodes[n].admin().post("/api/v1/ha/stepdown", None).await;
    assert_eq!(r.status, 202, "{}", r.body);
    // Receipted by the bridging node during the switchover: held there until the group's
    // new master has a consumer for them.
    network::produce(&a, "/queue/disc", 30..40, 16).await;
    let p = settled(&g, &rest, TAKEOVER).await;
    assert_ne!(p, n, "the member that stepped down was elected again");
    // The member that stepped down said so on the group (a killed one is only forgotten once
    // its adverts have been missed): its peer is gone from the connector, not just down.
    wait_bridged_to(&a, g.nodes[p].name(), &[&old]).await;
    assert!(
        network::connectors(&a).await.connectors[0]
            .peers
            .iter()
            .all(|x| x.uri != second),
        "the member that stepped down is still a peer"
    );
    let mut cp = stomp::connect(&stomp_of(&mut g, p)).await;
    stomp::subscribe(&mut cp, "/queue/disc", "s", AckMode::Auto).await;
    let got = network::collect(std::slice::from_mut(&mut cp), 10, SOON).await;
    let mut ids = got[0].clone();
    ids.sort_unstable();
    assert_eq!(ids, (30..40).collect::<Vec<_>>(), "{got:?}");
    stomp::expect_nothing(&mut cp, QUIET).await;
}
