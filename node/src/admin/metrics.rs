//! `GET /metrics`: Prometheus text format, counters named after ActiveMQ's JMX attributes.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;

/// A metric name, its type, its help text and how to read it from a queue's counters.
type Series = (
    &'static str,
    &'static str,
    &'static str,
    fn(&mq_shared::api::QueueStats) -> u64,
);

/// Renders every queue's and topic's counters, and the broker's role and store figures.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut out = String::with_capacity(4096);
    let role = state.role();
    let _ = writeln!(
        out,
        "# HELP mq_up 1 while the node runs; label role is its current role."
    );
    let _ = writeln!(out, "# TYPE mq_up gauge");
    let _ = writeln!(
        out,
        "mq_up{{broker=\"{}\",role=\"{role}\"}} 1",
        esc(&state.config.name)
    );
    let _ = writeln!(out, "# TYPE mq_uptime_seconds gauge");
    let _ = writeln!(
        out,
        "mq_uptime_seconds {}",
        state.started.elapsed().as_secs_f64()
    );
    if let Some(s) = state.serving() {
        let queues = s.core.queue_stats();
        let series: [Series; 9] = [
            (
                "mq_queue_size",
                "gauge",
                "Messages waiting or in flight (QueueSize).",
                |q| q.depth,
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
        for (name, kind, help, f) in series {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for q in &queues {
                let _ = writeln!(out, "{name}{{queue=\"{}\"}} {}", esc(&q.name), f(q));
            }
        }
        let _ = writeln!(out, "# TYPE mq_topic_subscribers gauge");
        for t in s.core.topic_stats() {
            let _ = writeln!(
                out,
                "mq_topic_subscribers{{topic=\"{}\"}} {}",
                esc(&t.name),
                t.subscribers
            );
        }
        if let Some(store) = s.core.store() {
            let _ = writeln!(out, "# TYPE mq_store_commits_total counter");
            let _ = writeln!(out, "mq_store_commits_total {}", store.commits());
            let _ = writeln!(out, "# TYPE mq_store_file_bytes gauge");
            let _ = writeln!(out, "mq_store_file_bytes {}", store.file_bytes());
        }
        let _ = writeln!(out, "# TYPE mq_connections gauge");
        let _ = writeln!(out, "mq_connections {}", s.core.connections().len());
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
