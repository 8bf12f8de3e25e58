//! The nodes of a chaos run: two master/slave pairs, A and B, each two `mqnode` processes on
//! one data directory with fixed STOMP ports (so failover URIs can name a slave's port before it
//! serves), and a network connector on A's members to `masterslave:(B1,B2)`.
//!
//! [`Cluster`] owns every process it starts and is the run's guard: dropping it (at the end, on
//! an error, on a panic, on a cancelled run) SIGKILLs each node still running, by the pid of
//! the child it spawned, paused ones included.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use mq_shared::api::{BrokerInfo, NetworkConnectorList, PeerState, QueueStats, Role};
use tempfile::TempDir;
use tokio::time::Instant;

use crate::{Node, failover_uri, http_client, member};

/// Bound on one admin request of the driver: a node that does not answer in time (paused,
/// dead) makes no claim.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(1);

/// One master/slave pair on a shared data directory.
pub struct Pair {
    /// `A` or `B`.
    pub name: String,
    /// The members, `NAME1` and `NAME2`.
    pub nodes: Vec<Node>,
    /// `tcp://127.0.0.1:PORT` of each member's STOMP transport (only the master listens).
    pub urls: Vec<String>,
    data: PathBuf,
}

impl Pair {
    /// Starts `NAME1` (which becomes master) then `NAME2` (slave) on `data`, with `args`.
    fn start(name: &str, data: &Path, args: &[String]) -> anyhow::Result<Pair> {
        let opts: Vec<_> = (1..=2)
            .map(|i| member(&format!("{name}{i}"), data).args(args.iter().cloned()))
            .collect();
        let urls = opts.iter().map(|o| o.transport.clone()).collect();
        let mut nodes = Vec::new();
        for o in opts {
            let n = o.name.clone();
            nodes.push(
                Node::try_start(o).map_err(|f| {
                    anyhow::anyhow!("{n} did not start ({:?}):\n{}", f.status, f.log)
                })?,
            );
        }
        if nodes[0].role() != Role::Master || nodes[1].role() != Role::Slave {
            bail!(
                "{name}: expected {name}1 master and {name}2 slave, got {} and {}",
                nodes[0].role(),
                nodes[1].role()
            );
        }
        Ok(Pair {
            name: name.to_owned(),
            nodes,
            urls,
            data: data.to_path_buf(),
        })
    }

    /// `failover:(tcp://...,tcp://...)` of the pair, for clients.
    pub fn failover_uri(&self) -> String {
        failover_uri(&self.urls)
    }

    /// The shared data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// Waits until exactly one running member answers `role: master` on its admin API;
    /// returns its index.
    pub async fn master(&mut self, bound: Duration) -> anyhow::Result<usize> {
        let end = Instant::now() + bound;
        loop {
            let mut masters = Vec::new();
            let mut roles = Vec::new();
            for i in 0..self.nodes.len() {
                let info = if self.nodes[i].is_running() {
                    broker_info(&self.nodes[i]).await
                } else {
                    None
                };
                roles.push(info.as_ref().map(|b| b.role));
                if info.is_some_and(|b| b.role == Role::Master) {
                    masters.push(i);
                }
            }
            if let [m] = masters.as_slice() {
                return Ok(*m);
            }
            if Instant::now() >= end {
                bail!(
                    "{}: no single master within {bound:?} (roles {roles:?})",
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every member running, one of them master; returns the master's index.
    pub async fn settled(&mut self, bound: Duration) -> anyhow::Result<usize> {
        for n in &mut self.nodes {
            if !n.is_running() {
                bail!("{} is not running", n.name());
            }
        }
        self.master(bound).await
    }
}

/// A request to a node's admin API, with its bearer token.
fn request(node: &Node, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    let url = format!("{}{path}", node.admin_url());
    let r = http_client(ADMIN_TIMEOUT).request(method, url);
    match node.token() {
        Some(t) => r.bearer_auth(t),
        None => r,
    }
}

/// `GET /api/v1/broker` of a node, `None` when it does not answer within a second.
pub async fn broker_info(node: &Node) -> Option<BrokerInfo> {
    let r = request(node, reqwest::Method::GET, "/api/v1/broker")
        .send()
        .await
        .ok()?;
    r.json().await.ok()
}

/// Statistics of `queue` on a node, `None` when it does not answer or does not know it.
pub async fn queue_stats(node: &Node, queue: &str) -> Option<QueueStats> {
    let r = request(
        node,
        reqwest::Method::GET,
        &format!("/api/v1/queues/{queue}"),
    )
    .send()
    .await
    .ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

/// Whether a node's network connectors have a connected peer.
pub async fn bridge_connected(node: &Node) -> bool {
    let Ok(r) = request(node, reqwest::Method::GET, "/api/v1/network-connectors")
        .send()
        .await
    else {
        return false;
    };
    let Ok(list) = r.json::<NetworkConnectorList>().await else {
        return false;
    };
    list.connectors
        .iter()
        .flat_map(|c| &c.peers)
        .any(|p| p.state == PeerState::Connected)
}

/// `POST /api/v1/ha/stepdown`; the HTTP status, `None` without an answer.
pub async fn stepdown(node: &Node) -> Option<u16> {
    let r = request(node, reqwest::Method::POST, "/api/v1/ha/stepdown")
        .send()
        .await
        .ok()?;
    Some(r.status().as_u16())
}

/// The two pairs and the link from A to B; the guard of every process of the run.
pub struct Cluster {
    /// The producers' side; its members carry the network connector.
    pub a: Pair,
    /// The consumers' side, the connector's peer.
    pub b: Pair,
    /// Declared after the pairs, so the directories go after the processes.
    dirs: Vec<TempDir>,
}

impl Cluster {
    /// Starts B's pair, then A's pair with `--network static:(masterslave:(B1,B2))?connector`
    /// (`connector` holds the connector's options), and waits (bounded) for the bridge.
    pub async fn start(connector: &str) -> anyhow::Result<Cluster> {
        let dir = |name: &str| {
            tempfile::Builder::new()
                .prefix(&format!("mq-chaos-{name}-"))
                .tempdir()
                .context("creating a data directory")
        };
        let (da, db) = (dir("a")?, dir("b")?);
        let b = Pair::start("B", db.path(), &[])?;
        let network = format!("static:(masterslave:({}))?{connector}", b.urls.join(","));
        let a = Pair::start("A", da.path(), &["--network".to_owned(), network])?;
        let cluster = Cluster {
            a,
            b,
            dirs: vec![da, db],
        };
        let end = Instant::now() + Duration::from_secs(30);
        while !bridge_connected(&cluster.a.nodes[0]).await {
            if Instant::now() >= end {
                bail!("the bridge from A1 to B did not connect within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(cluster)
    }

    /// Both pairs.
    pub fn pairs_mut(&mut self) -> [&mut Pair; 2] {
        [&mut self.a, &mut self.b]
    }

    /// Writes each node's output so far to `DIR/NAME.log`.
    pub fn save_logs(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for n in self.a.nodes.iter().chain(&self.b.nodes) {
            let path = dir.join(format!("{}.log", n.name()));
            std::fs::write(&path, n.log())
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }

    /// Keeps the data directories after the run (for a post-mortem); returns their paths.
    pub fn keep_data(&mut self) -> Vec<PathBuf> {
        self.dirs.drain(..).map(TempDir::keep).collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in self.a.nodes.iter_mut().chain(self.b.nodes.iter_mut()) {
            if n.is_running() {
                // SIGKILL to the child's own pid, then reaped; works on a paused node too.
                n.kill();
            }
        }
    }
}
