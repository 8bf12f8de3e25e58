//! Admin API types: the JSON shapes of `/api/v1/*`, serialised by `mqnode` and deserialised by
//! `mqctl`. One definition, no drift. Field names are the wire names (snake_case).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// Base path of every versioned endpoint.
pub const BASE_PATH: &str = "/api/v1";

/// The role of a node with respect to its store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Holds the store lock and no other node has ever been seen waiting for it.
    Standalone,
    /// Holds the store lock; transports open.
    Master,
    /// Waits for the store lock; no transports.
    Slave,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Standalone => "standalone",
            Role::Master => "master",
            Role::Slave => "slave",
        })
    }
}

/// The one JSON line `mqnode` prints on stdout each time it starts serving (or starts waiting
/// as a slave): `{"event":"ready","name":..,"role":..,"admin":..,"transports":[..]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyEvent {
    /// Always `"ready"`.
    pub event: String,
    /// Broker name.
    pub name: String,
    /// `master` (or `standalone`) when serving, `slave` when waiting.
    pub role: Role,
    /// Admin base URL, e.g. `http://127.0.0.1:8161`.
    pub admin: String,
    /// Bound transport URIs (empty on a slave).
    pub transports: Vec<String>,
    /// The file holding the admin API's bearer token (the one given, or the one the node
    /// generated in its data directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token_file: Option<String>,
}

/// Error body of every failed admin call: `{"error":{"code":"...","message":"..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// The error.
    pub error: ErrorBody,
}

/// Stable error code and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable machine code, one of [`codes`].
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
}

/// Stable error codes of the admin API. Never reuse or rename one.
pub mod codes {
    /// 400: the request body is not valid JSON or misses a field.
    pub const BAD_JSON: &str = "bad_json";
    /// 400: a parameter is out of range or malformed.
    pub const BAD_REQUEST: &str = "bad_request";
    /// 400: a connector URI does not parse.
    pub const BAD_URI: &str = "bad_uri";
    /// 401: missing or wrong bearer token.
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// 403: the request's Host or Origin is not this listener's.
    pub const FORBIDDEN: &str = "forbidden";
    /// 404: no such queue, topic, connector or route.
    pub const NOT_FOUND: &str = "not_found";
    /// 409: the operation does not fit the node's state (e.g. stepdown on a slave).
    pub const CONFLICT: &str = "conflict";
    /// 503: the node is a slave or shutting down and cannot serve this.
    pub const UNAVAILABLE: &str = "unavailable";
    /// 500: the store or another internal part failed.
    pub const INTERNAL: &str = "internal";
}

/// `GET /api/v1/broker`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrokerInfo {
    /// Broker name (`--name`).
    pub name: String,
    /// mqnode version.
    pub version: String,
    /// Current role.
    pub role: Role,
    /// Milliseconds since the process started.
    pub uptime_ms: u64,
    /// Bound transport URIs (empty on a slave).
    pub transports: Vec<String>,
    /// Admin base URL.
    pub admin: String,
    /// Data directory.
    pub data_dir: String,
    /// Whether persistent messages are stored.
    pub persistent: bool,
    /// Process id.
    pub pid: u32,
    /// Store figures.
    pub store: StoreStats,
    /// Memory, store and temp store: used and limit (`memory-usage`, `store-usage`,
    /// `temp-usage`).
    #[serde(default)]
    pub usage: UsageReport,
    /// The replicated group (`--ha replicated`): absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<ReplicationInfo>,
    /// The lease row of `--ha jdbc` (lease database locker): absent otherwise, and while the
    /// database does not answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseInfo>,
}

/// `lease` of `GET /api/v1/broker` on a member of a `--ha jdbc` group: the lease row as the
/// database holds it, the same on every member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseInfo {
    /// The current or last holder's name; `None` while nobody ever took the lease.
    pub holder: Option<String>,
    /// When its lease ends (or ended): database time, ms since the Unix epoch.
    pub expires_at_ms: Option<i64>,
    /// `lock-keep-alive-period` of the member answering, ms: how often a master renews.
    pub keep_alive_ms: u64,
}

/// `replication` of `GET /api/v1/broker` on a member of a replicated group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationInfo {
    /// The epoch of the master this member serves as or follows (0: none yet).
    pub epoch: u64,
    /// The master: this member's own name on the master, the one it follows on a replica
    /// (`None` while no master is known).
    pub master: Option<String>,
    /// On the master, the replicas connected to it; on a replica, itself.
    pub replicas: Vec<ReplicaInfo>,
}

/// One replica of a replicated group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaInfo {
    /// Member name.
    pub name: String,
    /// `connecting`, `snapshot` (catching up from a copy of the store) or `streaming`.
    pub state: String,
    /// Group commits the master holds and this replica has not synced yet.
    pub lag_records: u64,
}

/// One limit's figures, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageFigures {
    /// Bytes in use.
    pub used: u64,
    /// The limit in force.
    pub limit: u64,
}

/// The node's resource usage (ActiveMQ's `systemUsage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageReport {
    /// Messages held in memory (queue windows and in flight).
    pub memory: UsageFigures,
    /// Persistent messages stored; the limit is `store-usage` capped by the disk's free space.
    pub store: UsageFigures,
    /// Non-persistent messages spilled from memory.
    pub temp: UsageFigures,
}

/// Figures of the node's store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStats {
    /// Messages held in the store.
    pub messages: u64,
    /// Bytes of message bodies and headers held in the store.
    pub bytes: u64,
    /// Size of the store file on disk.
    pub file_bytes: u64,
    /// Write transactions committed since start.
    pub commits: u64,
}

/// Counters of one queue (after ActiveMQ's `DestinationViewMBean`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStats {
    /// Queue name without the `/queue/` prefix.
    pub name: String,
    /// Messages waiting or in flight (ActiveMQ QueueSize).
    pub depth: u64,
    /// Messages ever added.
    pub enqueued: u64,
    /// Messages acknowledged (removed by consumers).
    pub dequeued: u64,
    /// Messages forwarded to other brokers over network connectors.
    pub forwarded: u64,
    /// Current consumers (local and network).
    pub consumers: u64,
    /// Connections that sent to this queue and are still open.
    pub producers: u64,
    /// Dispatched and not yet acknowledged.
    pub inflight: u64,
    /// Dropped because their `expires` passed.
    pub expired: u64,
    /// Moved to the dead-letter queue.
    pub dead_lettered: u64,
    /// Bytes of the messages held (headers and bodies).
    pub bytes: u64,
    /// Of `depth`, the messages in memory now (the window ready to dispatch, and those in
    /// flight); the rest are only in the store.
    #[serde(default)]
    pub in_memory: u64,
}

/// `GET /api/v1/queues`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueList {
    /// One entry per queue, sorted by name.
    pub queues: Vec<QueueStats>,
}

/// `POST /api/v1/queues/{name}/messages` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendRequest {
    /// Message body (UTF-8 text).
    #[serde(default)]
    pub body: String,
    /// User headers. A name must not be empty: no STOMP frame can carry such a header, and
    /// consumers would refuse the message's frame.
    #[serde(default, deserialize_with = "header_map")]
    pub headers: BTreeMap<String, String>,
    /// Store the message before confirming; defaults to true.
    #[serde(default)]
    pub persistent: Option<bool>,
}

/// The `headers` of a [`SendRequest`]: a JSON object whose keys are non-empty.
fn header_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let headers = BTreeMap::<String, String>::deserialize(d)?;
    if headers.contains_key("") {
        return Err(serde::de::Error::custom("a header name must not be empty"));
    }
    Ok(headers)
}

/// Answer to a send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendResponse {
    /// Id given to the message.
    pub message_id: String,
    /// Queue name.
    pub queue: String,
    /// Whether it was stored durably before this answer.
    pub persistent: bool,
}

/// One message seen by `GET /api/v1/queues/{name}/messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowsedMessage {
    /// Message id.
    pub message_id: String,
    /// Headers as the consumer would see them (user headers included).
    pub headers: BTreeMap<String, String>,
    /// Body as UTF-8 (lossy for binary bodies).
    pub body: String,
    /// Body length in bytes.
    pub size: u64,
    /// Whether the message is persistent.
    pub persistent: bool,
    /// Times it was delivered and not acknowledged.
    pub redeliveries: u32,
    /// Whether it is dispatched to a consumer right now.
    pub inflight: bool,
}

/// `GET /api/v1/queues/{name}/messages`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowseResponse {
    /// Queue name.
    pub queue: String,
    /// Messages in queue order, at most `limit`.
    pub messages: Vec<BrowsedMessage>,
}

/// `POST /api/v1/queues/{name}/messages/{id}/move` body (an empty body is the same as `{}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveRequest {
    /// Destination to move the message to, `/queue/NAME` or `/topic/NAME`; by default the
    /// message's `original-destination` header (which every dead-lettered message carries).
    #[serde(default)]
    pub to: Option<String>,
}

/// Answer to a move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveResponse {
    /// Id of the message moved (it keeps its id).
    pub message_id: String,
    /// Where it was, e.g. `/queue/DLQ`.
    pub from: String,
    /// Where it is now, e.g. `/queue/orders`.
    pub to: String,
}

/// Answer to purge and delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeResponse {
    /// Queue name.
    pub queue: String,
    /// Messages removed.
    pub removed: u64,
}

/// One topic of `GET /api/v1/topics`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicStats {
    /// Topic name without `/topic/`.
    pub name: String,
    /// Current subscribers (local and network).
    pub subscribers: u64,
    /// Messages published.
    pub enqueued: u64,
    /// Copies delivered to subscribers.
    pub dispatched: u64,
    /// Copies forwarded to other brokers.
    pub forwarded: u64,
    /// Copies discarded for slow subscribers (`pending-message-limit`).
    #[serde(default)]
    pub discarded: u64,
    /// Copies waiting for slow subscribers now.
    #[serde(default)]
    pub pending: u64,
}

/// One scheduled message of `GET /api/v1/scheduled` (a job of the scheduler).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledMessage {
    /// Job id: `DELETE /api/v1/scheduled/{id}` names it; each delivered copy carries it in
    /// `scheduledJobId`.
    pub id: String,
    /// Where it is delivered, as `/queue/NAME` or `/topic/NAME`.
    pub destination: String,
    /// Next fire, ms since the epoch.
    pub next_fire_ms: u64,
    /// Deliveries after the next one (`AMQ_SCHEDULED_REPEAT` left); a cron job repeats for
    /// ever and reports 0.
    pub repeats_left: u32,
    /// ms between repeats (`AMQ_SCHEDULED_PERIOD`).
    pub period_ms: u64,
    /// Its cron expression (`AMQ_SCHEDULED_CRON`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// Size of the message in bytes (body and headers).
    pub size: u64,
    /// Whether it is stored (survives restarts and failovers) or kept in memory only.
    pub persistent: bool,
}

/// `GET /api/v1/scheduled`: the scheduled messages in fire-time order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledList {
    /// At most `limit` of them, next to fire first.
    pub scheduled: Vec<ScheduledMessage>,
    /// Whether more exist past `limit`.
    #[serde(default)]
    pub truncated: bool,
}

/// `DELETE /api/v1/scheduled/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnscheduleResponse {
    /// The job removed.
    pub id: String,
}

/// One durable topic subscription of `GET /api/v1/subscriptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionInfo {
    /// The `client-id` of the connections that own it.
    pub client_id: String,
    /// Its `activemq.subscriptionName`.
    pub name: String,
    /// The topic, `/topic/NAME`.
    pub topic: String,
    /// Its selector, if it has one.
    #[serde(default)]
    pub selector: Option<String>,
    /// Whether a connection consumes it now.
    pub active: bool,
    /// Messages kept for it (its backlog, in flight included).
    pub pending: u64,
    /// Delivered and not acknowledged yet.
    #[serde(default)]
    pub inflight: u64,
    /// Messages kept for it since the node started.
    pub enqueued: u64,
    /// Messages it acknowledged since the node started.
    pub dequeued: u64,
}

/// `GET /api/v1/subscriptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionList {
    /// One entry per durable subscription, sorted by client id and name.
    pub subscriptions: Vec<SubscriptionInfo>,
}

/// `DELETE /api/v1/subscriptions/{client_id}/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRemoved {
    /// The subscription's client id.
    pub client_id: String,
    /// Its name.
    pub name: String,
    /// Messages of its backlog dropped with it.
    pub dropped: u64,
}

/// `GET /api/v1/topics`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicList {
    /// One entry per topic.
    pub topics: Vec<TopicStats>,
}

/// What is on the other end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionKind {
    /// A STOMP client.
    Client,
    /// Another broker's network bridge.
    Bridge,
}

/// One connection of `GET /api/v1/connections`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionInfo {
    /// Connection id, unique within the node's life.
    pub id: u64,
    /// Peer address.
    pub remote: String,
    /// Client or bridge.
    pub kind: ConnectionKind,
    /// Negotiated STOMP version (`1.0`, `1.1`, `1.2`), empty before CONNECT.
    pub version: String,
    /// Remote broker name for bridges.
    pub broker: Option<String>,
    /// Open subscriptions.
    pub subscriptions: u64,
    /// Unix epoch ms when it connected.
    pub since_ms: u64,
}

/// `GET /api/v1/connections`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionList {
    /// Open connections.
    pub connections: Vec<ConnectionInfo>,
}

/// State of one peer of a network connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerState {
    /// Linked and forwarding on demand.
    Connected,
    /// Dialling or handshaking.
    Connecting,
    /// Waiting before the next attempt.
    Backoff,
}

/// One peer of a network connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// The peer's URI as configured (or discovered).
    pub uri: String,
    /// Link state.
    pub state: PeerState,
    /// Name the peer broker reported, once connected.
    pub remote_broker: Option<String>,
    /// Unix epoch ms when the current state began.
    pub since_ms: u64,
    /// Messages forwarded to this peer.
    pub forwarded: u64,
    /// Connection attempts since the last success.
    pub reconnect_attempts: u64,
    /// Unix epoch ms of the next attempt while in `backoff`.
    pub next_retry_ms: Option<u64>,
    /// The last error, if the link is down.
    pub last_error: Option<String>,
}

/// One network connector of `GET /api/v1/network-connectors`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkConnectorInfo {
    /// Connector name (unique on this node).
    pub name: String,
    /// The URI as given.
    pub uri: String,
    /// Effective options, by ActiveMQ name.
    pub options: BTreeMap<String, String>,
    /// One entry per peer.
    pub peers: Vec<PeerInfo>,
}

/// `GET /api/v1/network-connectors`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkConnectorList {
    /// Connectors of this node.
    pub connectors: Vec<NetworkConnectorInfo>,
}

/// `POST /api/v1/network-connectors` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddNetworkConnector {
    /// Name; generated when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// `static:(...)?...` or `multicast://default`.
    pub uri: String,
}

/// Answer of operations that only change state (stepdown, shutdown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusResponse {
    /// What happened, e.g. `stepping_down`, `shutting_down`.
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_send_request_with_an_empty_header_name_is_refused() -> Result<(), serde_json::Error> {
        // Found by fuzzing: the message was accepted, and its MESSAGE frame, with a header line
        // ":value", was refused by every consumer's decoder.
        let e = serde_json::from_str::<SendRequest>(r#"{"headers":{"":"x"}}"#)
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("a header name must not be empty")),
            "{e:?}"
        );
        let ok: SendRequest = serde_json::from_str(r#"{"headers":{"k":""},"body":"b"}"#)?;
        assert_eq!(ok.headers.get("k").map(String::as_str), Some(""));
        let none: SendRequest = serde_json::from_str("{}")?;
        assert!(none.headers.is_empty());
        Ok(())
    }
}
