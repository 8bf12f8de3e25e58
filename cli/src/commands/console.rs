//! `mqctl console NAME [--port P]`: one web page for a whole cluster, served by mqctl itself
//! on 127.0.0.1: every node (role, state), the links between brokers drawn as a graph with
//! their state, and every queue on every node with totals, refreshed every second.
//!
//! mqctl reads the nodes' admin APIs with the cluster's own token, server side: the page talks
//! only to mqctl (`GET /api/cluster`) and never sees a node's token. The page, its script and
//! stylesheet are built into mqctl; nothing is fetched from anywhere else (a
//! Content-Security-Policy says so to the browser). Requests whose `Host` is not the address
//! mqctl listens on are refused, so another web site cannot read the cluster through a
//! rebound DNS name. The URL is printed on stdout; Ctrl-C or SIGTERM stops serving.

use std::net::SocketAddr;
use std::sync::LazyLock;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use mq_shared::api::QueueStats;
use mq_shared::console;
use mq_shared::ctl::ClusterStatus;
use mq_shared::defaults::STAT_REQUEST_TIMEOUT;
use serde::Serialize;
use tokio::net::TcpListener;

use super::Context;
use super::nodes::{Answer, ask_all};
use crate::args::ConsoleArgs;
use crate::cluster::Cluster;
use crate::error::{CliError, Outcome, Result};
use crate::home::Home;
use crate::status;

/// The page: the head both consoles share, then this body.
static PAGE_HTML: LazyLock<String> = LazyLock::new(|| {
    console::page(
        "mq cluster console",
        "page.css",
        "page.js",
        include_str!("console/body.html"),
    )
});
const PAGE_JS: &str = include_str!("console/page.js");
const PAGE_CSS: &str = include_str!("console/page.css");

/// `GET /api/cluster`: what the page shows, gathered when asked.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterView {
    /// Nodes and links, as `mqctl cluster status -o json` has them.
    pub status: ClusterStatus,
    /// Every queue on every serving node.
    pub queues: Vec<NodeQueue>,
    /// Per queue, summed over the nodes.
    pub totals: Vec<QueueTotal>,
    /// Nodes whose queues could not be read (down or refusing).
    pub down: Vec<String>,
    /// Unix epoch ms when this was gathered.
    pub at_ms: u64,
}

/// One queue on one node.
#[derive(Debug, Clone, Serialize)]
pub struct NodeQueue {
    /// Process name.
    pub node: String,
    /// The queue's counters there.
    #[serde(flatten)]
    pub stats: QueueStats,
}

/// A queue's counters summed over the nodes that have it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QueueTotal {
    /// Queue name.
    pub queue: String,
    /// Nodes that have it.
    pub nodes: u64,
    /// Waiting or in flight, over all nodes.
    pub depth: u64,
    /// Ever added.
    pub enqueued: u64,
    /// Acknowledged.
    pub dequeued: u64,
    /// Forwarded to other brokers.
    pub forwarded: u64,
    /// Consumers (local and network).
    pub consumers: u64,
    /// Moved to the dead-letter queue.
    pub dead_lettered: u64,
}

#[derive(Clone)]
struct Shared {
    home: Home,
    name: String,
    /// `127.0.0.1:PORT`, the one `Host` accepted (and `localhost:PORT`).
    hosts: [String; 2],
}

/// Runs `mqctl console`.
pub async fn run(ctx: &Context, args: ConsoleArgs) -> Result<Outcome> {
    // Fail early and plainly for an unknown cluster.
    Cluster::load(&ctx.home, &args.name)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| CliError::io("could not listen on", addr.to_string(), e))?;
    let local = listener
        .local_addr()
        .map_err(|e| CliError::io("could not read the address of", addr.to_string(), e))?;
    let shared = Shared {
        home: ctx.home.clone(),
        name: args.name.clone(),
        hosts: [
            format!("127.0.0.1:{}", local.port()),
            format!("localhost:{}", local.port()),
        ],
    };
    let app = router(shared);
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        writeln!(out, "http://{local}/")
            .and_then(|()| out.flush())
            .map_err(|e| CliError::io("could not write to", "stdout", e))?;
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| CliError::io("could not watch for", "SIGTERM", e))?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        })
        .await
        .map_err(|e| CliError::io("serving the console on", local.to_string(), e))?;
    Ok(Outcome::Complete)
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route("/", get(|| async { asset(&PAGE_HTML, console::HTML) }))
        .route(
            "/page.js",
            get(|| async { asset(PAGE_JS, console::JAVASCRIPT) }),
        )
        .route("/page.css", get(|| async { asset(PAGE_CSS, console::CSS) }))
        .route("/api/cluster", get(cluster_view))
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            local_host_only,
        ))
        .with_state(shared)
}

/// Refuses requests for another host name than the one mqctl listens on.
async fn local_host_only(State(shared): State<Shared>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if !shared.hosts.iter().any(|h| h == host) {
        return (
            StatusCode::MISDIRECTED_REQUEST,
            format!("this console answers for {} only", shared.hosts[0]),
        )
            .into_response();
    }
    next.run(req).await
}

/// One built-in file, with the headers both consoles give theirs.
fn asset(body: &'static str, content_type: &'static str) -> Response {
    (console::headers(content_type), body).into_response()
}

async fn cluster_view(State(shared): State<Shared>) -> Response {
    match gather(&shared).await {
        Ok(view) => Json(view).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

/// Reads the manifest afresh (links come and go) and asks every node.
async fn gather(shared: &Shared) -> Result<ClusterView> {
    let cluster = Cluster::load(&shared.home, &shared.name)?;
    let clients = cluster
        .manifest
        .nodes
        .iter()
        .map(|n| cluster.client(n, STAT_REQUEST_TIMEOUT))
        .collect::<Result<Vec<_>>>()?;
    let (status, answers) = tokio::join!(
        status::gather_status(&cluster),
        ask_all(&clients, |c| async move { c.queues().await })
    );
    let status = status?;
    let mut queues = Vec::new();
    let mut down = Vec::new();
    for (node, answer) in cluster.manifest.nodes.iter().zip(answers) {
        match answer {
            Answer::Data(list) => queues.extend(list.queues.into_iter().map(|stats| NodeQueue {
                node: node.name.clone(),
                stats,
            })),
            Answer::Standby => {}
            Answer::Down(_) => down.push(node.name.clone()),
        }
    }
    Ok(ClusterView {
        totals: totals(&queues),
        status,
        queues,
        down,
        at_ms: crate::home::now_ms(),
    })
}

/// Sums each queue over its nodes, by queue name.
fn totals(queues: &[NodeQueue]) -> Vec<QueueTotal> {
    let mut by_name: std::collections::BTreeMap<&str, QueueTotal> = Default::default();
    for q in queues {
        let t = by_name.entry(&q.stats.name).or_insert_with(|| QueueTotal {
            queue: q.stats.name.clone(),
            ..QueueTotal::default()
        });
        t.nodes += 1;
        t.depth += q.stats.depth;
        t.enqueued += q.stats.enqueued;
        t.dequeued += q.stats.dequeued;
        t.forwarded += q.stats.forwarded;
        t.consumers += q.stats.consumers;
        t.dead_lettered += q.stats.dead_lettered;
    }
    by_name.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_sum_each_queue_over_its_nodes() {
        let q = |node: &str, name: &str, depth| NodeQueue {
            node: node.into(),
            stats: QueueStats {
                name: name.into(),
                depth,
                enqueued: depth + 1,
                ..QueueStats::default()
            },
        };
        let t = totals(&[q("n1", "a", 2), q("n2", "a", 3), q("n2", "b", 1)]);
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[0].queue.as_str(), t[0].nodes, t[0].depth, t[0].enqueued),
            ("a", 2, 5, 7)
        );
        assert_eq!((t[1].queue.as_str(), t[1].nodes, t[1].depth), ("b", 1, 1));
    }
}
