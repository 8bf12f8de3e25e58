//! The `-o json` reports of `mqctl sub`, `scheduled` and `connection`.

use serde::{Deserialize, Serialize};

/// `mqctl scheduled ls -o json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledReport {
    /// One entry per scheduled message, next to fire first.
    pub scheduled: Vec<ScheduledRow>,
    /// Nodes that did not answer.
    pub down: Vec<String>,
}

/// `mqctl sub ls -o json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionReport {
    /// One entry per (node, subscription), sorted by client id, name, then node.
    pub subscriptions: Vec<SubscriptionRow>,
    /// Nodes that did not answer.
    pub down: Vec<String>,
}

/// One scheduled message of [`ScheduledReport`]: the node's answer with the node's name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledRow {
    /// Node (process name, or `HOST:PORT` with `--url`).
    pub node: String,
    /// What the node said of it.
    #[serde(flatten)]
    pub message: crate::api::ScheduledMessage,
}

/// `mqctl scheduled rm -o json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnscheduleReport {
    /// The node that held it.
    pub node: String,
    /// The job removed.
    pub id: String,
}

/// One (node, durable subscription) of [`SubscriptionReport`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRow {
    /// Node (process name, or `HOST:PORT` with `--url`).
    pub node: String,
    /// The subscription's client id.
    pub client_id: String,
    /// Its name.
    pub name: String,
    /// Its topic, `/topic/NAME`.
    pub topic: String,
    /// Its selector.
    pub selector: Option<String>,
    /// Whether a connection consumes it now.
    pub active: bool,
    /// Messages kept for it.
    pub pending: u64,
    /// Messages kept for it since the node started.
    pub enqueued: u64,
    /// Messages it acknowledged since the node started.
    pub dequeued: u64,
}

/// `mqctl sub rm -o json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRemovedReport {
    /// Node it was removed on.
    pub node: String,
    /// The subscription's client id.
    pub client_id: String,
    /// Its name.
    pub name: String,
    /// Messages of its backlog dropped with it.
    pub dropped: u64,
}

/// `mqctl connection ls -o json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionReport {
    /// One entry per connection, by node then id.
    pub connections: Vec<ConnectionRow>,
    /// Nodes that did not answer.
    pub down: Vec<String>,
}

/// One connection of [`ConnectionReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionRow {
    /// Node it is open on.
    pub node: String,
    /// Connection id, unique within the node's life.
    pub id: u64,
    /// Peer address.
    pub remote: String,
    /// `client` or `bridge`.
    pub kind: crate::api::ConnectionKind,
    /// Negotiated STOMP version, empty before CONNECT.
    pub version: String,
    /// Remote broker name, for bridges.
    pub broker: Option<String>,
    /// Open subscriptions.
    pub subscriptions: u64,
    /// Unix epoch ms when it connected.
    pub since_ms: u64,
}
