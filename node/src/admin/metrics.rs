//! `GET /metrics`: Prometheus text format (version 0.0.4), counters named after ActiveMQ's
//! JMX attributes.
//!
//! Conventions: every family has HELP and TYPE; counters end in `_total`; units are in the
//! names (`_seconds`, `_bytes`); no label changes value on a failover (the role is a gauge
//! per role, `mq_role{role="master"} 1`, not a label on `mq_up`); the broker name is in
//! `mq_build_info` only, since one node serves one broker. Families: the node (`mq_up`,
//! `mq_role`, `mq_build_info`, `mq_uptime_seconds`, connections and limits), per queue
//! (`queue` label), per topic (`topic`), per network bridge peer (`connector`, `peer`), the
//! store, and the process (`process_*`, read from `/proc/self`).

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use mq_shared::api::{PeerState, QueueStats, Role, TopicStats};

use super::AppState;

/// A family read from one stats record: name, type, help, value.
type Series<T> = (&'static str, &'static str, &'static str, fn(&T) -> u64);

/// Renders every family.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut m = Metrics::default();
    m.family("mq_up", "gauge", "1 while the node runs.");
    m.sample("mq_up", "", 1);
    m.family(
        "mq_role",
        "gauge",
        "1 for the role this node has now, 0 for the others.",
    );
    let role = state.role();
    for r in [Role::Standalone, Role::Master, Role::Slave] {
        m.sample("mq_role", &format!("role=\"{r}\""), u64::from(role == r));
    }
    m.family(
        "mq_build_info",
        "gauge",
        "Version and broker name of this node (always 1).",
    );
    m.sample(
        "mq_build_info",
        &format!(
            "version=\"{}\",broker=\"{}\"",
            env!("CARGO_PKG_VERSION"),
            esc(&state.config.name)
        ),
        1,
    );
    m.family(
        "mq_uptime_seconds",
        "gauge",
        "Seconds since the process started.",
    );
    m.sample_f(
        "mq_uptime_seconds",
        "",
        state.started.elapsed().as_secs_f64(),
    );
    if let Some(s) = state.serving() {
        let queues = s.core.queue_stats();
        let queue_series: [Series<QueueStats>; 10] = [
            (
                "mq_queue_size",
                "gauge",
                "Messages waiting or in flight (QueueSize).",
                |q| q.depth,
            ),
            (
                "mq_queue_bytes",
                "gauge",
                "Bytes of the messages waiting or in flight.",
                |q| q.bytes,
            ),
            (
                "mq_enqueue_total",
                "counter",
                "Messages added (EnqueueCount).",
                |q| q.enqueued,
            ),
            (
                "mq_dequeue_total",
                "counter",
                "Messages acknowledged (DequeueCount).",
                |q| q.dequeued,
            ),
            (
                "mq_forward_total",
                "counter",
                "Messages forwarded to other brokers (ForwardCount).",
                |q| q.forwarded,
            ),
            (
                "mq_inflight",
                "gauge",
                "Dispatched, not yet acknowledged (InFlightCount).",
                |q| q.inflight,
            ),
            (
                "mq_expired_total",
                "counter",
                "Messages dropped on expiry (ExpiredCount).",
                |q| q.expired,
            ),
            (
                "mq_dead_lettered_total",
                "counter",
                "Messages moved to the dead-letter queue.",
                |q| q.dead_lettered,
            ),
            ("mq_consumers", "gauge", "Consumers (ConsumerCount).", |q| {
                q.consumers
            }),
            ("mq_producers", "gauge", "Producers (ProducerCount).", |q| {
                q.producers
            }),
        ];
        for (name, kind, help, f) in queue_series {
            m.family(name, kind, help);
            for q in &queues {
                m.sample(name, &format!("queue=\"{}\"", esc(&q.name)), f(q));
            }
        }
        let topics = s.core.topic_stats();
        let topic_series: [Series<TopicStats>; 5] = [
            (
                "mq_topic_subscribers",
                "gauge",
                "Current subscribers of a topic.",
                |t| t.subscribers,
            ),
            (
                "mq_topic_enqueue_total",
                "counter",
                "Messages published to a topic.",
                |t| t.enqueued,
            ),
            (
                "mq_topic_dispatch_total",
                "counter",
                "Copies handed to subscribers.",
                |t| t.dispatched,
            ),
            (
                "mq_topic_pending",
                "gauge",
                "Copies waiting for slow subscribers.",
                |t| t.pending,
            ),
            (
                "mq_topic_discarded_total",
                "counter",
                "Copies discarded for slow subscribers (pending-message-limit).",
                |t| t.discarded,
            ),
        ];
        for (name, kind, help, f) in topic_series {
            m.family(name, kind, help);
            for t in &topics {
                m.sample(name, &format!("topic=\"{}\"", esc(&t.name)), f(t));
            }
        }
        m.family(
            "mq_connections",
            "gauge",
            "Open STOMP connections (clients and bridges).",
        );
        m.sample("mq_connections", "", s.core.connections().len() as u64);
        let limits = s.core.limit_counters();
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        m.family(
            "mq_connections_refused_total",
            "counter",
            "Connections refused at maximum-connections.",
        );
        m.sample(
            "mq_connections_refused_total",
            "",
            load(&limits.refused_connections),
        );
        m.family(
            "mq_destinations_removed_total",
            "counter",
            "Inactive destinations removed (gc-inactive-destinations).",
        );
        m.sample(
            "mq_destinations_removed_total",
            "",
            load(&limits.gc_destinations),
        );
        let usage = s.core.usage();
        let report = usage.report();
        for (what, fig, help) in [
            (
                "memory",
                report.memory,
                "messages held in memory: queue windows and in flight (memory-usage)",
            ),
            (
                "store",
                report.store,
                "persistent messages stored (store-usage, capped at the disk's free space)",
            ),
            (
                "temp",
                report.temp,
                "non-persistent messages spilled from memory (temp-usage)",
            ),
        ] {
            let used = format!("mq_{what}_usage_bytes");
            let limit = format!("mq_{what}_limit_bytes");
            m.family(&used, "gauge", &format!("Bytes of {help}."));
            m.sample(&used, "", fig.used);
            m.family(&limit, "gauge", &format!("The limit on bytes of {help}."));
            m.sample(&limit, "", fig.limit);
        }
        let (held, refused) = usage.flow_totals();
        m.family(
            "mq_producer_flow_control_held_total",
            "counter",
            "SENDs held because a limit was reached (producer-flow-control).",
        );
        m.sample("mq_producer_flow_control_held_total", "", held);
        m.family(
            "mq_producer_flow_control_refused_total",
            "counter",
            "SENDs refused with store full (send-fail-if-no-space and its timeout).",
        );
        m.sample("mq_producer_flow_control_refused_total", "", refused);
        if let Some(store) = s.core.store() {
            m.family(
                "mq_store_commits_total",
                "counter",
                "Group commits written to the journal.",
            );
            m.sample("mq_store_commits_total", "", store.commits());
            m.family(
                "mq_store_file_bytes",
                "gauge",
                "Bytes of the store's files on disk.",
            );
            m.sample("mq_store_file_bytes", "", store.file_bytes());
        }
    }
    let security = &state.config.security;
    m.family(
        "mq_failed_logins_total",
        "counter",
        "CONNECTs refused: authentication failed.",
    );
    m.sample("mq_failed_logins_total", "", security.failed_logins());
    m.family(
        "mq_denied_operations_total",
        "counter",
        "Operations refused by the authorization rules.",
    );
    m.sample(
        "mq_denied_operations_total",
        "",
        security.denied_operations(),
    );
    bridges(&mut m, &state);
    process(&mut m);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], m.out)
}

/// One family per bridge figure, one sample per peer of every network connector.
fn bridges(m: &mut Metrics, state: &AppState) {
    let connectors = state.network.list().connectors;
    let peers: Vec<_> = connectors
        .iter()
        .flat_map(|c| c.peers.iter().map(move |p| (c, p)))
        .collect();
    let label = |c: &mq_shared::api::NetworkConnectorInfo, p: &mq_shared::api::PeerInfo| {
        format!("connector=\"{}\",peer=\"{}\"", esc(&c.name), esc(&p.uri))
    };
    m.family(
        "mq_bridge_connected",
        "gauge",
        "1 while a network bridge to the peer is connected, else 0.",
    );
    for (c, p) in &peers {
        m.sample(
            "mq_bridge_connected",
            &label(c, p),
            u64::from(p.state == PeerState::Connected),
        );
    }
    m.family(
        "mq_bridge_forward_total",
        "counter",
        "Messages a bridge forwarded to its peer.",
    );
    for (c, p) in &peers {
        m.sample("mq_bridge_forward_total", &label(c, p), p.forwarded);
    }
    m.family(
        "mq_bridge_reconnect_attempts",
        "gauge",
        "Failed connection attempts in a row of a bridge.",
    );
    for (c, p) in &peers {
        m.sample(
            "mq_bridge_reconnect_attempts",
            &label(c, p),
            p.reconnect_attempts,
        );
    }
}

/// Process figures from `/proc/self` (Linux); families without a value are left out.
fn process(m: &mut Metrics) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    if let Some(rss) = kb("VmRSS:") {
        m.family(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
        );
        m.sample("process_resident_memory_bytes", "", rss * 1024);
    }
    if let Some(vm) = kb("VmSize:") {
        m.family(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
        );
        m.sample("process_virtual_memory_bytes", "", vm * 1024);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        m.family("process_open_fds", "gauge", "Open file descriptors.");
        m.sample("process_open_fds", "", fds.count() as u64);
    }
    // utime and stime are fields 14 and 15 of /proc/self/stat, in clock ticks (100 per second
    // on Linux); the command name in field 2 may hold spaces, so count after its ')'.
    if let Some(rest) = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, r)| r.to_string()))
    {
        let f: Vec<&str> = rest.split_whitespace().collect();
        let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
        if let (Some(u), Some(s)) = (tick(11), tick(12)) {
            m.family(
                "process_cpu_seconds_total",
                "counter",
                "User and system CPU time in seconds.",
            );
            m.sample_f("process_cpu_seconds_total", "", (u + s) as f64 / 100.0);
        }
    }
}

/// Text being written.
#[derive(Default)]
struct Metrics {
    out: String,
}

impl Metrics {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &str, v: u64) {
        if labels.is_empty() {
            let _ = writeln!(self.out, "{name} {v}");
        } else {
            let _ = writeln!(self.out, "{name}{{{labels}}} {v}");
        }
    }

    fn sample_f(&mut self, name: &str, labels: &str, v: f64) {
        if labels.is_empty() {
            let _ = writeln!(self.out, "{name} {v}");
        } else {
            let _ = writeln!(self.out, "{name}{{{labels}}} {v}");
        }
    }
}

/// Escapes a label value.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
