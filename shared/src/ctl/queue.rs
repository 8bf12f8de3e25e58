//! The `-o json` reports of `mqctl queue` and `topic`: stats, send, browse, purge, delete.

use serde::{Deserialize, Serialize};

use crate::api::BrowsedMessage;

/// `mqctl queue stat -o json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStatReport {
    /// One entry per (node, queue), sorted by queue then node; no totals.
    pub queues: Vec<QueueStatRow>,
    /// Nodes that did not answer.
    pub down: Vec<String>,
}

/// One (node, queue) of [`QueueStatReport`], after ActiveMQ's `dstat` columns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStatRow {
    /// Node (process name, or `HOST:PORT` with `--url`).
    pub node: String,
    /// Queue name.
    pub queue: String,
    /// Messages waiting or in flight.
    pub depth: u64,
    /// Open producer connections.
    pub producers: u64,
    /// Consumers, local and network.
    pub consumers: u64,
    /// Messages ever added.
    pub enqueued: u64,
    /// Messages acknowledged.
    pub dequeued: u64,
    /// Messages forwarded to other brokers.
    pub forwarded: u64,
    /// Dispatched, not yet acknowledged.
    pub inflight: u64,
    /// Dropped on expiry.
    pub expired: u64,
    /// Moved to the dead-letter queue.
    pub dead_lettered: u64,
    /// Bytes held.
    pub bytes: u64,
    /// Of `depth`, the messages in the node's memory (the rest are only in its store).
    #[serde(default)]
    pub in_memory: u64,
}

/// `mqctl queue send -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendReport {
    /// Node that took the messages.
    pub node: String,
    /// Queue name.
    pub queue: String,
    /// Messages sent.
    pub sent: u64,
    /// Whether they were sent persistent.
    pub persistent: bool,
    /// Ids the node gave them, in order.
    pub message_ids: Vec<String>,
}

/// `mqctl queue browse -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowseReport {
    /// Node browsed.
    pub node: String,
    /// Queue name.
    pub queue: String,
    /// Messages in queue order.
    pub messages: Vec<BrowsedMessage>,
}

/// `mqctl queue purge -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeReport {
    /// Node purged.
    pub node: String,
    /// Queue name.
    pub queue: String,
    /// Messages removed.
    pub removed: u64,
}

/// `mqctl queue delete -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteReport {
    /// Node the queue was deleted on.
    pub node: String,
    /// Queue name.
    pub queue: String,
    /// Messages removed with it.
    pub removed: u64,
}

/// `mqctl topic ls -o json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicReport {
    /// One entry per (node, topic), sorted by topic then node.
    pub topics: Vec<TopicRow>,
    /// Nodes that did not answer.
    pub down: Vec<String>,
}

/// One (node, topic) of [`TopicReport`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRow {
    /// Node (process name, or `HOST:PORT` with `--url`).
    pub node: String,
    /// Topic name without `/topic/`.
    pub topic: String,
    /// Current subscribers, local and network.
    pub subscribers: u64,
    /// Messages published.
    pub enqueued: u64,
    /// Copies delivered to subscribers.
    pub dispatched: u64,
    /// Copies forwarded to other brokers.
    pub forwarded: u64,
}
