//! A replicated group (`--ha replicated`) across "hosts": each `mqnode` member in a lab host of
//! its own ([`crate::netns`]), ZooKeeper in another, all on one bridge, so a partition is a
//! silent cut of links (nft drop), not a kill.
//!
//! ```text
//!   [zk] ZooKeeper 10.233.L.1:2181 ─┐
//!   [m0] mqnode, replication on 10.233.L.2, STOMP and admin on its own 127.0.0.1 ─┼─ br0
//!   [m1] ...                                      ─┤
//!   [m2] ...                                      ─┘
//! ```
//!
//! A member's STOMP and admin listen on its host's own loopback: the test reaches them through
//! that host's [`HostRuntime`] (a client "on the member's machine", which a partition of the
//! member's network does not cut off). Replication listens on the host's lab address with a
//! token (non-loopback). Every address given to a member or connected to goes through
//! [`crate::netns::guard`].
//!
//! [`RoleWatch`] samples every member's `GET /api/v1/broker` in rounds (all members at once)
//! and reports every round in which more than one answered `master`.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mq_shared::api::{BrokerInfo, ReplicationInfo, Role};
use tempfile::TempDir;

use crate::netns::{Host, HostRuntime, Lab, Origin, guard};
use crate::zookeeper::ZooKeeper;
use crate::{Node, NodeOpts, http_client, poll_until};

/// The port every member's replication listener binds on its host's address.
pub const REPLICATION_PORT: u16 = 61619;

/// How a [`Group`] starts.
#[derive(Debug, Clone)]
pub struct GroupOpts {
    /// Group name: the ZooKeeper path is `/mq/<name>`, members are `<name>-<i>`.
    pub name: String,
    /// Members (`--replicas`).
    pub members: usize,
    /// `--zk-session-timeout` in milliseconds.
    pub session_ms: u64,
    /// `--sync`.
    pub sync: String,
    /// `--weight` of each member (missing ones weigh 1).
    pub weights: Vec<u32>,
    /// Further flags for every member.
    pub extra: Vec<String>,
}

impl GroupOpts {
    /// Three members of group `name`, a 1000 ms session, `quorum_disk`, equal weights.
    pub fn new(name: &str) -> GroupOpts {
        GroupOpts {
            name: name.to_string(),
            members: 3,
            session_ms: 1000,
            sync: "quorum_disk".into(),
            weights: Vec::new(),
            extra: Vec::new(),
        }
    }

    /// With these weights.
    pub fn weights(mut self, w: &[u32]) -> GroupOpts {
        self.weights = w.to_vec();
        self
    }

    /// With this `sync` mode.
    pub fn sync(mut self, mode: &str) -> GroupOpts {
        self.sync = mode.to_string();
        self
    }
}

/// A replicated group in a lab of its own. Fields drop in order: the members, their runtimes,
/// ZooKeeper, then the lab's namespaces.
pub struct Group {
    /// The members (index = host index).
    pub nodes: Vec<Node>,
    /// One runtime per member host, to reach its loopback.
    pub rts: Vec<HostRuntime>,
    /// The ZooKeeper server, in host `zk`.
    pub zk: ZooKeeper,
    /// The member hosts.
    pub hosts: Vec<Host>,
    /// ZooKeeper's host.
    pub zk_host: Host,
    /// The options it started with.
    pub opts: GroupOpts,
    clients: Vec<reqwest::Client>,
    _dirs: Vec<TempDir>,
    _lab: Lab,
}

/// One member's admin API: base URL, token and an HTTP client of its own (its pooled
/// connections are in the member's host: never share it with another member's).
#[derive(Debug, Clone)]
pub struct AdminTarget {
    /// `http://127.0.0.1:PORT` inside the member's host.
    pub base: String,
    /// Bearer token.
    pub token: Option<String>,
    /// The client.
    pub client: reqwest::Client,
}

/// `GET /api/v1/broker` of `target` (run it on the member's runtime); `None` when it does not
/// answer within `timeout` (killed, paused, cut off) or answers something else than 200.
pub async fn broker_info(target: AdminTarget, timeout: Duration) -> Option<BrokerInfo> {
    let mut req = target
        .client
        .get(format!("{}/api/v1/broker", target.base))
        .timeout(timeout);
    if let Some(t) = &target.token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.ok()?;
    if resp.status().as_u16() != 200 {
        return None;
    }
    resp.json::<BrokerInfo>().await.ok()
}

/// The bound of one admin request of the harness.
const INFO_TIMEOUT: Duration = Duration::from_millis(700);
/// The bound of one request of a [`RoleWatch`] round (a member answers its own host's
/// loopback in milliseconds; a paused one must not hold up the round for long).
const WATCH_TIMEOUT: Duration = Duration::from_millis(250);

impl Group {
    /// Makes the lab (host `zk` and one host per member), starts ZooKeeper and the members
    /// (each a slave first). Call from the test's own thread: the members die with it.
    #[track_caller]
    pub fn start(opts: GroupOpts) -> Group {
        let mut lab = Lab::new();
        let zk_host = lab.host("zk");
        let hosts: Vec<Host> = (0..opts.members)
            .map(|i| lab.host(&format!("m{i}")))
            .collect();
        let zk = ZooKeeper::start_in(&zk_host);
        let rts: Vec<HostRuntime> = hosts.iter().map(HostRuntime::new).collect();
        let dirs: Vec<TempDir> = (0..opts.members)
            .map(|_| {
                tempfile::Builder::new()
                    .prefix("mq-repl-")
                    .tempdir()
                    .expect("a data directory")
            })
            .collect();
        let mut g = Group {
            nodes: Vec::new(),
            rts,
            zk,
            hosts,
            zk_host,
            clients: (0..opts.members)
                .map(|_| http_client(INFO_TIMEOUT))
                .collect(),
            opts,
            _dirs: dirs,
            _lab: lab,
        };
        for i in 0..g.opts.members {
            let n = Node::start(g.member_opts(i));
            assert_eq!(n.role(), Role::Slave, "a member starts as slave");
            g.nodes.push(n);
        }
        g
    }

    /// The options of member `i`: data in its directory, replication on its host's address,
    /// ZooKeeper at the `zk` host's, both through the connection guard.
    fn member_opts(&self, i: usize) -> NodeOpts {
        let h = &self.hosts[i];
        let o = &self.opts;
        let data = self._dirs[i].path().join("data");
        std::fs::create_dir_all(&data).expect("a data directory");
        let token = self._dirs[i].path().join("replication.token");
        std::fs::write(&token, format!("{}-token\n", o.name)).expect("a token file");
        let bind = SocketAddr::new(IpAddr::V4(h.addr()), REPLICATION_PORT);
        let bind = guard(Origin::Host(h), bind).unwrap_or_else(|e| panic!("{e}"));
        let weight = o.weights.get(i).copied().unwrap_or(1);
        NodeOpts::new(&format!("{}-{i}", o.name))
            .data(data)
            .in_host(h)
            .args([
                "--ha".to_string(),
                "replicated".into(),
                "--replicas".into(),
                o.members.to_string(),
                "--zk-address".into(),
                self.zk.connect_string(Origin::Host(h)),
                "--zk-path".into(),
                format!("/mq/{}", o.name),
                "--zk-session-timeout".into(),
                o.session_ms.to_string(),
                "--bind".into(),
                format!("tcp://{bind}"),
                "--replication-token-file".into(),
                token.display().to_string(),
                "--weight".into(),
                weight.to_string(),
            ])
            // The default is left to the node; another mode is passed as given.
            .args(if o.sync == "quorum_disk" {
                Vec::new()
            } else {
                vec!["--sync".to_string(), o.sync.clone()]
            })
            .args(o.extra.clone())
    }

    /// The session timeout the members ask for.
    pub fn session(&self) -> Duration {
        Duration::from_millis(self.opts.session_ms)
    }

    /// Member `i`'s admin API.
    pub fn admin(&self, i: usize) -> AdminTarget {
        let a = self.nodes[i].admin();
        let base = a.base.clone();
        // Loopback inside the member's host.
        if let Some(addr) = base
            .strip_prefix("http://")
            .and_then(|s| s.parse::<SocketAddr>().ok())
        {
            self.rts[i].guard(addr);
        }
        AdminTarget {
            base,
            token: a.token,
            client: self.clients[i].clone(),
        }
    }

    /// Member `i`'s broker info, `None` when it does not answer in time.
    pub fn info(&self, i: usize) -> Option<BrokerInfo> {
        let target = self.admin(i);
        self.rts[i].run(broker_info(target, INFO_TIMEOUT))
    }

    /// The STOMP address of member `i` while it serves (from its admin API), inside its host.
    pub fn stomp_addr(&self, i: usize) -> Option<String> {
        let info = self.info(i)?;
        if info.role != Role::Master {
            return None;
        }
        let t = info.transports.first()?;
        let addr: SocketAddr = t.strip_prefix("tcp://").unwrap_or(t).parse().ok()?;
        Some(self.rts[i].guard(addr).to_string())
    }

    /// Waits until exactly one of `running` is master and every other one streams from it,
    /// in its epoch, with nothing left to sync; returns the master's index and its epoch.
    /// Panics with every member's state after `timeout`.
    #[track_caller]
    pub fn settled(&self, running: &[usize], timeout: Duration) -> (usize, u64) {
        let mut found = None;
        let mut last = Vec::new();
        let ok = poll_until(timeout, || {
            let infos: Vec<(usize, Option<BrokerInfo>)> =
                running.iter().map(|&i| (i, self.info(i))).collect();
            last = infos.clone();
            found = settled_master(&infos);
            found.is_some()
        });
        match found {
            Some(f) if ok => f,
            _ => panic!("the group did not settle within {timeout:?}: {last:#?}"),
        }
    }

    /// Cuts host `i` off from ZooKeeper and from every other member (silently, both ways).
    pub fn isolate(&self, i: usize) {
        self.hosts[i].cut(&self.zk_host);
        for (j, h) in self.hosts.iter().enumerate() {
            if j != i {
                self.hosts[i].cut(h);
            }
        }
    }

    /// Undoes [`Group::isolate`].
    pub fn rejoin(&self, i: usize) {
        self.hosts[i].heal(&self.zk_host);
        for (j, h) in self.hosts.iter().enumerate() {
            if j != i {
                self.hosts[i].heal(h);
            }
        }
    }

    /// Every member's admin API with its runtime's handle, for a [`RoleWatch`].
    pub fn targets(&self) -> Vec<(String, tokio::runtime::Handle, AdminTarget)> {
        (0..self.nodes.len())
            .map(|i| {
                (
                    self.nodes[i].name().to_string(),
                    self.rts[i].handle(),
                    self.admin(i),
                )
            })
            .collect()
    }
}

/// One round of a [`RoleWatch`]: when it started, and each member's role and epoch (`None`:
/// no answer).
#[derive(Debug, Clone)]
pub struct Round {
    /// Since the watch started.
    pub at: Duration,
    /// Per member: role and epoch, if it answered.
    pub roles: Vec<Option<(Role, u64)>>,
    /// Per member: when its answer came (since the watch started), if it answered.
    pub answered: Vec<Option<Duration>>,
}

impl Round {
    /// Whether more than one member answered `master` in it.
    pub fn two_masters(&self) -> bool {
        self.roles
            .iter()
            .filter(|x| matches!(x, Some((Role::Master, _))))
            .count()
            > 1
    }
}

/// Whether a group has settled, from its running members' answers (index, `GET
/// /api/v1/broker`, `None` if it did not answer): exactly one is master, every other one
/// streams from it in its epoch with nothing left to apply, and the master sees each of them
/// streaming at lag 0. Then the master's index and its epoch.
pub fn settled_master(infos: &[(usize, Option<BrokerInfo>)]) -> Option<(usize, u64)> {
    let masters: Vec<&(usize, Option<BrokerInfo>)> = infos
        .iter()
        .filter(|(_, b)| b.as_ref().is_some_and(|b| b.role == Role::Master))
        .collect();
    let [(m, Some(mb))] = masters[..] else {
        return None;
    };
    let rep = mb.replication.as_ref()?;
    let caught_up = |r: &ReplicationInfo| {
        r.replicas
            .iter()
            .all(|x| x.state == "streaming" && x.lag_records == 0)
    };
    let followers = infos.iter().all(|(i, b)| {
        *i == *m
            || b.as_ref()
                .and_then(|b| b.replication.as_ref())
                .is_some_and(|r| {
                    r.master.as_deref() == Some(mb.name.as_str())
                        && r.epoch == rep.epoch
                        && caught_up(r)
                })
    });
    let seen = rep.replicas.len() + 1 == infos.len() && caught_up(rep);
    (followers && seen).then_some((*m, rep.epoch))
}

/// The rounds in which more than one member answered `master`.
fn with_two_masters(rounds: &[Round]) -> Vec<Round> {
    rounds.iter().filter(|r| r.two_masters()).cloned().collect()
}

/// What a [`RoleWatch`] saw.
#[derive(Debug)]
pub struct WatchReport {
    /// Member names, in the order of [`Round::roles`].
    pub names: Vec<String>,
    /// Every round.
    pub rounds: Vec<Round>,
}

impl WatchReport {
    /// Rounds in which more than one member answered `master`.
    pub fn two_masters(&self) -> Vec<Round> {
        with_two_masters(&self.rounds)
    }

    /// Rounds in which member `i` answered `master`.
    pub fn master_rounds(&self, i: usize) -> usize {
        self.rounds
            .iter()
            .filter(|r| matches!(r.roles.get(i), Some(Some((Role::Master, _)))))
            .count()
    }
}

/// Samples every member's role in rounds (each round asks all members at once, each on its
/// own host's runtime) until [`RoleWatch::finish`].
pub struct RoleWatch {
    stop: Arc<AtomicBool>,
    rounds: Arc<Mutex<Vec<Round>>>,
    names: Vec<String>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RoleWatch {
    /// Starts sampling `targets` (from [`Group::targets`]) every `every`.
    pub fn start(
        targets: Vec<(String, tokio::runtime::Handle, AdminTarget)>,
        every: Duration,
    ) -> RoleWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let rounds: Arc<Mutex<Vec<Round>>> = Arc::default();
        let names = targets.iter().map(|t| t.0.clone()).collect();
        let (flag, out) = (stop.clone(), rounds.clone());
        let thread = std::thread::spawn(move || {
            let t0 = Instant::now();
            let Some(first) = targets.first().map(|t| t.1.clone()) else {
                return;
            };
            while !flag.load(Ordering::Relaxed) {
                let at = t0.elapsed();
                let tasks: Vec<_> = targets
                    .iter()
                    .map(|(_, h, a)| {
                        let a = a.clone();
                        h.spawn(async move {
                            let info = broker_info(a, WATCH_TIMEOUT).await?;
                            Some((t0.elapsed(), info))
                        })
                    })
                    .collect();
                let (roles, answered) = first.block_on(async move {
                    let (mut roles, mut answered) = (Vec::new(), Vec::new());
                    for t in tasks {
                        let got = t.await.ok().flatten();
                        answered.push(got.as_ref().map(|g| g.0));
                        roles
                            .push(got.map(|(_, b)| (b.role, b.replication.map_or(0, |r| r.epoch))));
                    }
                    (roles, answered)
                });
                out.lock().unwrap_or_else(|e| e.into_inner()).push(Round {
                    at,
                    roles,
                    answered,
                });
                std::thread::sleep(every);
            }
        });
        RoleWatch {
            stop,
            rounds,
            names,
            thread: Some(thread),
        }
    }

    /// The member that answered `master` in the latest round, when exactly one did.
    pub fn master(&self) -> Option<usize> {
        let rounds = self.rounds.lock().unwrap_or_else(|e| e.into_inner());
        let last = rounds.last()?;
        let mut masters = last
            .roles
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(r, Some((Role::Master, _))));
        match (masters.next(), masters.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    }

    /// Rounds so far in which more than one member answered `master`.
    pub fn two_masters_so_far(&self) -> Vec<Round> {
        with_two_masters(&self.rounds.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Stops sampling; every round seen.
    pub fn finish(mut self) -> WatchReport {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let rounds = std::mem::take(&mut *self.rounds.lock().unwrap_or_else(|e| e.into_inner()));
        WatchReport {
            names: std::mem::take(&mut self.names),
            rounds,
        }
    }
}

impl Drop for RoleWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
