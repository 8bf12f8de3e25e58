//! Every default of mq in one place, named after ActiveMQ's option where one exists.
//!
//! Change a default here and nowhere else: the node, the CLI and the docs read these constants.

use std::time::Duration;

// ---- process and listeners -------------------------------------------------------------

/// STOMP port of a transport connector (ActiveMQ's `stomp` connector).
pub const STOMP_PORT: u16 = 61613;
/// Admin HTTP port (ActiveMQ's Jetty console port).
pub const ADMIN_PORT: u16 = 8161;
/// Default transport connector URI.
pub const TRANSPORT_URI: &str = "tcp://127.0.0.1:61613";
/// Default admin bind address: loopback only.
pub const ADMIN_ADDR: &str = "127.0.0.1:8161";
/// Messages sent with `persistent:true` are stored (ActiveMQ `persistent="true"`).
pub const PERSISTENT: bool = true;

// ---- the node's log (log4j's `RollingFileAppender` in ActiveMQ) ---------------------------

/// Log filter when `RUST_LOG` is unset (or cannot be parsed).
pub const LOG_FILTER: &str = "info";
/// Size at which `--log-file` is rotated (log4j's `maxFileSize`; ActiveMQ ships 1024KB, which a
/// busy broker fills in minutes).
pub const LOG_MAX_SIZE: u64 = 100 * 1024 * 1024;
/// Rotated log files kept besides the current one (log4j's `maxBackupIndex`, 5 in ActiveMQ).
pub const LOG_MAX_FILES: usize = 5;

// ---- STOMP limits (enforced by the codec) ---------------------------------------------

/// Largest frame accepted, headers and body together (ActiveMQ `wireFormat.maxFrameSize`
/// is 100 MiB for OpenWire; STOMP clients rarely need more than this).
pub const MAX_FRAME_SIZE: usize = 10 * 1024 * 1024;
/// Most headers in one frame.
pub const MAX_HEADERS: usize = 1000;
/// Longest single header line (name, colon and value), in bytes.
pub const MAX_HEADER_LENGTH: usize = 10 * 1024;
/// How long a new connection may stay silent before its CONNECT frame (ActiveMQ
/// `transport.connectAttemptTimeout`, 30 s by default there).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Smallest heart-beat interval the server offers and accepts, in ms.
pub const HEARTBEAT_MIN_MS: u64 = 1000;
/// Grace factor on the client's heart-beat before it is dropped (STOMP 1.2 spec suggests some).
pub const HEARTBEAT_GRACE: f64 = 2.0;

// ---- limits, flow control and slow consumers (ActiveMQ `systemUsage` and friends) --------

/// A socket that takes no bytes for this long while the node has bytes waiting for it is
/// closed and its unacknowledged messages go to other consumers (ActiveMQ `soWriteTimeout`).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages queued for one non-durable topic subscriber (beyond its prefetch in client ack
/// modes); past it the oldest are discarded for that subscriber and counted (ActiveMQ's
/// `constantPendingMessageLimitStrategy limit="1000"`).
pub const PENDING_MESSAGE_LIMIT: usize = 1000;
/// A temporary destination this node holds for another node's connection (or for a SEND that
/// named it before any demand came) is removed after this long without a consumer. ActiveMQ
/// has no such option: its temporary destinations follow the owner's advisories.
pub const TEMP_ORPHAN_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections a node accepts at once over all its transports (ActiveMQ `maximumConnections`).
pub const MAXIMUM_CONNECTIONS: usize = 1000;
/// A connection that sends nothing while it owes bytes (its CONNECT, the rest of a frame it
/// started) for this long is closed (ActiveMQ `maxInactivityDuration`). Between frames, an
/// idle connection is watched by the heart-beats it negotiated.
pub const MAX_INACTIVITY_DURATION: Duration = Duration::from_secs(30);
/// Largest `activemq.prefetchSize` honoured; larger values are capped (ActiveMQ's maximum).
pub const MAX_PREFETCH: usize = 32_767;
/// Messages sent with `AMQ_SCHEDULED_*` headers are held back and delivered when due
/// (`schedulerSupport`; ActiveMQ's default is false, ours true).
pub const SCHEDULER_SUPPORT: bool = true;
/// Stored scheduled messages held in memory: the next ones to fire; the rest stay in the
/// store and are read back by fire time as these run down.
pub const SCHEDULER_WINDOW: usize = 2000;
/// Non-persistent scheduled messages a node keeps (in memory only); a SEND past it is an
/// ERROR.
pub const MAX_NON_PERSISTENT_SCHEDULED: usize = 10_000;
/// Scheduled messages `GET /api/v1/scheduled` lists unless asked for another `limit`.
pub const SCHEDULED_LIST_LIMIT: usize = 1000;
/// Empty destinations with no consumers and no producers are removed
/// (`gcInactiveDestinations`).
pub const GC_INACTIVE_DESTINATIONS: bool = true;
/// How long a destination must be inactive before it is removed (`inactiveTimoutBeforeGC`,
/// ActiveMQ's spelling aside).
pub const INACTIVE_TIMEOUT_BEFORE_GC: Duration = Duration::from_secs(60);
/// How long a durable topic subscription may stay offline before it is removed
/// (`offlineDurableSubscriberTimeout`; ActiveMQ's -1: never).
pub const OFFLINE_DURABLE_SUBSCRIBER_TIMEOUT: Option<Duration> = None;
/// Bytes of messages (and their index entries) held in memory across every destination
/// (`memoryUsage`): a backlog past it lives only in the store and is read back a window at a
/// time; non-persistent messages past it are spilled to the store as transient records.
pub const MEMORY_USAGE: u64 = 64 * 1024 * 1024;
/// Bytes of persistent messages the store may hold (`storeUsage`), capped at what the disk
/// has free.
pub const STORE_USAGE: u64 = 100 * 1024 * 1024 * 1024;
/// Bytes of spilled non-persistent messages (`tempUsage`).
pub const TEMP_USAGE: u64 = 50 * 1024 * 1024 * 1024;
/// Hold a producer (no RECEIPT, no more reads from its connection) while a limit is reached
/// (`producerFlowControl`).
pub const PRODUCER_FLOW_CONTROL: bool = true;
/// Answer a SEND with ERROR `store full` at once instead of holding it (`sendFailIfNoSpace`).
pub const SEND_FAIL_IF_NO_SPACE: bool = false;
/// Hold at most this long, then ERROR `store full` (`sendFailIfNoSpaceAfterTimeout`; 0: no
/// timeout).
pub const SEND_FAIL_IF_NO_SPACE_AFTER_TIMEOUT_MS: u64 = 0;
/// Disk space the store keeps free (its limit is capped at free space minus this), so a full
/// disk is met as a full store rather than as a failed write.
pub const STORE_DISK_RESERVE: u64 = 64 * 1024 * 1024;
/// Messages a queue keeps ready in memory at most (its cursor's window); fewer when memory is
/// short.
pub const CURSOR_WINDOW: usize = 2000;
/// A queue reads more from the store once its window falls below this.
pub const CURSOR_LOW_WATER: usize = 500;
/// Most bytes one read of the store brings into a window.
pub const CURSOR_READ_BYTES: u64 = 4 * 1024 * 1024;
/// redb's page cache: a fraction of `memory-usage` (at least 4 MiB), not redb's 1 GiB default.
pub const STORE_CACHE_BYTES: usize = 16 * 1024 * 1024;

/// Stop, stepdown and a lost lock wait at most this long for connections (to flush what they
/// already owe their clients) before closing them: no client can delay a failover.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

// ---- dispatch, redelivery, dead letters, expiry ----------------------------------------

/// Unacked messages per subscription (header `activemq.prefetchSize`; ActiveMQ queue prefetch 1000).
pub const PREFETCH_SIZE: usize = 1000;
/// Redeliveries before a message goes to the dead-letter queue (`maximumRedeliveries`).
pub const MAXIMUM_REDELIVERIES: u32 = 6;
/// Dead-letter queue name (ActiveMQ uses `ActiveMQ.DLQ`; mq's is `/queue/DLQ`).
pub const DLQ_NAME: &str = "DLQ";
/// Period of the sweep that drops expired messages (`expireMessagesPeriod`, 30000 ms in ActiveMQ;
/// shorter here because a sweep of an in-memory queue is cheap).
pub const EXPIRE_MESSAGES_PERIOD: Duration = Duration::from_millis(1000);

// ---- store ------------------------------------------------------------------------------

/// Most operations folded into one redb write transaction (group commit).
pub const MAX_COMMIT_BATCH: usize = 4096;
/// Longest an ack's store delete waits to ride a commit that writes a message, before it is
/// committed on its own. Such a delete holds no receipt of a SEND; a receipted ACK waits for it
/// at most this long longer.
pub const ACK_COMMIT_DELAY: Duration = Duration::from_millis(5);
/// How often the store's index (redb) is made durable and the journal emptied
/// (`checkpointInterval`; 5000 ms in KahaDB, shorter here so a takeover replays little).
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(1000);
/// Journal size that forces a checkpoint (`journalMaxFileLength`, 32 MiB as in KahaDB).
pub const JOURNAL_MAX_FILE_LENGTH: u64 = 32 * 1024 * 1024;
/// Bytes of operations one group commit gathers before it takes no more submissions (a
/// single larger submission is committed on its own, up to [`JOURNAL_HARD_LIMIT`]).
pub const MAX_COMMIT_BYTES: u64 = 16 * 1024 * 1024;
/// Journal size past which writes are refused ("store full") while checkpoints keep failing,
/// instead of the journal growing without bound.
pub const JOURNAL_HARD_LIMIT: u64 = 256 * 1024 * 1024;
/// Message ids remembered per node to drop duplicates from retried forwards.
pub const DEDUP_WINDOW: usize = 100_000;

// ---- network connectors (ActiveMQ `SimpleDiscoveryAgent` / `NetworkBridgeConfiguration`) --

/// `initialReconnectDelay`, ms.
pub const INITIAL_RECONNECT_DELAY_MS: u64 = 1000;
/// `maxReconnectDelay`, ms.
pub const MAX_RECONNECT_DELAY_MS: u64 = 30_000;
/// `useExponentialBackOff`.
pub const USE_EXPONENTIAL_BACK_OFF: bool = true;
/// `backOffMultiplier`.
pub const BACK_OFF_MULTIPLIER: f64 = 2.0;
/// `maxReconnectAttempts`: 0 means unlimited for static discovery.
pub const MAX_RECONNECT_ATTEMPTS: i64 = 0;
/// `minConnectTime`, ms: a connection that fails sooner counts as a failed attempt.
pub const MIN_CONNECT_TIME_MS: u64 = 5000;
/// `networkTTL`: hops for messages and consumer demand.
pub const NETWORK_TTL: u32 = 1;
/// `duplex`.
pub const DUPLEX: bool = false;
/// `conduitSubscriptions`.
pub const CONDUIT_SUBSCRIPTIONS: bool = true;
/// `decreaseNetworkConsumerPriority`: local consumers are served before bridges.
pub const DECREASE_NETWORK_CONSUMER_PRIORITY: bool = true;
/// `dynamicOnly`.
pub const DYNAMIC_ONLY: bool = false;
/// `prefetchSize` of a bridge's network consumer.
pub const NETWORK_PREFETCH_SIZE: usize = 1000;
/// Heart-beat interval a bridge asks for both ways, ms: a peer silent for three of them (a
/// SIGKILLed host, a cut cable) is taken for dead.
pub const BRIDGE_HEARTBEAT_MS: u64 = 1000;
/// Bound on TCP connect plus CONNECTED for one endpoint of a bridge's peer.
pub const BRIDGE_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a bridge with `staticallyIncludedDestinations` looks for new matching destinations.
pub const STATIC_RESCAN: Duration = Duration::from_secs(1);
/// ActiveMQ's default multicast discovery group (`multicast://default`).
pub const MULTICAST_GROUP: &str = "239.255.2.3:6155";
/// Period between multicast advertisements, ms (ActiveMQ `keepAliveInterval` 500 ms).
pub const MULTICAST_KEEPALIVE_MS: u64 = 500;
/// Missed advertisements before a discovered node is forgotten (`HEARTBEAT_MISS_BEFORE_DEATH`).
pub const MULTICAST_MISS_BEFORE_DEATH: u32 = 10;

// ---- client failover transport (ActiveMQ `FailoverTransport`) ----------------------------

/// `randomize`.
pub const FAILOVER_RANDOMIZE: bool = true;
/// `initialReconnectDelay` of `failover:`, ms.
pub const FAILOVER_INITIAL_RECONNECT_DELAY_MS: u64 = 10;
/// `maxReconnectDelay` of `failover:`, ms.
pub const FAILOVER_MAX_RECONNECT_DELAY_MS: u64 = 30_000;
/// `maxReconnectAttempts` of `failover:`: -1 forever, 0 none.
pub const FAILOVER_MAX_RECONNECT_ATTEMPTS: i64 = -1;

// ---- master/slave on a shared store -------------------------------------------------------

/// Name of the lock file in the data directory (ActiveMQ `SharedFileLocker`).
pub const LOCK_FILE: &str = "lock";
/// How often a slave tries the lock (`lockAcquireSleepInterval`; 10000 ms in ActiveMQ,
/// 100 ms here so takeover stays under a second).
pub const LOCK_ACQUIRE_SLEEP_INTERVAL_MS: u64 = 100;
/// How often a master re-checks it still holds the lock (`lockKeepAlivePeriod`; 0 in ActiveMQ,
/// which allows two masters).
pub const LOCK_KEEP_ALIVE_PERIOD_MS: u64 = 500;
/// After a stepdown, how long the old master waits before it competes for the lock again.
pub const STEPDOWN_BACKOFF_MS: u64 = 2000;
/// How long `GET /api/v1/broker` on a `--ha jdbc` member waits for the database to read the
/// lease row; past it the answer leaves `lease` out (well within mqctl's
/// [`STAT_REQUEST_TIMEOUT`]).
pub const LEASE_INFO_TIMEOUT: Duration = Duration::from_millis(500);

// ---- mqctl ---------------------------------------------------------------------------------

/// First port `mqctl cluster create` hands out when `--base-port` is given without a value.
pub const CLUSTER_BASE_PORT: u16 = 61700;
/// Nodes in a new cluster.
pub const CLUSTER_NODES: usize = 3;
/// How long `mqctl` waits for a node to become ready.
pub const NODE_READY_TIMEOUT: Duration = Duration::from_secs(20);

// ---- connector URIs (added with `uri`) ----------------------------------------------------

/// `staticBridge`: when true a bridge ignores remote demand and forwards only the statically
/// included destinations.
pub const STATIC_BRIDGE: bool = false;
/// `suppressDuplicateQueueSubscriptions`: drop duplicate routes through intermediaries in a mesh.
pub const SUPPRESS_DUPLICATE_QUEUE_SUBSCRIPTIONS: bool = false;
/// `group` of multicast discovery (ActiveMQ `MulticastDiscoveryAgent` group `"default"`).
pub const MULTICAST_GROUP_NAME: &str = "default";
/// `useExponentialBackOff` of `failover:`.
pub const FAILOVER_USE_EXPONENTIAL_BACK_OFF: bool = true;
/// `backOffMultiplier` (documented as `reconnectDelayExponent`) of `failover:`.
pub const FAILOVER_BACK_OFF_MULTIPLIER: f64 = 2.0;
/// `startupMaxReconnectAttempts` of `failover:`: -1 forever, 0 none.
pub const FAILOVER_STARTUP_MAX_RECONNECT_ATTEMPTS: i64 = -1;
/// `timeout` of `failover:`, ms: how long a send waits while disconnected; -1 forever.
pub const FAILOVER_TIMEOUT_MS: i64 = -1;
/// `priorityBackup` of `failover:`: keep trying to return to the first URI of the list.
pub const FAILOVER_PRIORITY_BACKUP: bool = false;
/// How long `mqctl` waits for a node to exit after SIGTERM before it reports (or, for
/// `cluster destroy`, sends SIGKILL).
pub const NODE_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Timeout of one admin API call made by `mqctl`.
pub const ADMIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Timeout of each node's answer to `mqctl queue stat` and `cluster status`, so that a hung
/// node shows as down instead of stalling the table.
pub const STAT_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How often `mqctl` polls `/readyz` and process liveness while waiting for a node.
pub const READY_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How long `mqctl failover trigger` waits for a slave to take over and serve STOMP.
pub const FAILOVER_TRIGGER_TIMEOUT: Duration = Duration::from_secs(30);
/// How often `mqctl failover trigger` tries a STOMP CONNECT while waiting for the new master
/// (the bound on how much its recovery figure can overstate the real one).
pub const FAILOVER_PROBE_INTERVAL: Duration = Duration::from_millis(5);
/// With `failover trigger --verify`: how long to wait for one more message after the last one
/// before counting the rest as lost.
pub const FAILOVER_VERIFY_IDLE: Duration = Duration::from_secs(3);
/// Lines of a node's log shown when it fails to start.
pub const LOG_TAIL_LINES: usize = 20;
/// Environment variable naming `mqctl`'s home (clusters live in `$MQCTL_HOME/clusters`).
pub const MQCTL_HOME_ENV: &str = "MQCTL_HOME";
/// `mqctl`'s home under the user's home directory when `MQCTL_HOME` is unset.
pub const MQCTL_HOME_DIR: &str = ".mqctl";

// ---- security ------------------------------------------------------------------------------

/// Memory cost of a new password hash, KiB (argon2id `m`; OWASP's first recommendation).
pub const PASSWORD_HASH_M_COST_KIB: u32 = 19_456;
/// Passes of a new password hash (argon2id `t`).
pub const PASSWORD_HASH_T_COST: u32 = 2;
/// Lanes of a new password hash (argon2id `p`).
pub const PASSWORD_HASH_P_COST: u32 = 1;
/// Largest memory cost a stored hash may ask for, KiB: each verification allocates it, so a
/// typo in a security file must not make every login allocate gigabytes.
pub const PASSWORD_HASH_MAX_M_COST_KIB: u32 = 256 * 1024;
/// Largest number of passes a stored hash may ask for.
pub const PASSWORD_HASH_MAX_T_COST: u32 = 64;
/// Largest number of lanes a stored hash may ask for.
pub const PASSWORD_HASH_MAX_P_COST: u32 = 16;
/// Password verifications running at once: each takes a core and `m` KiB of memory for tens
/// of milliseconds, so a reconnect storm queues instead of exhausting the machine.
pub const MAX_CONCURRENT_PASSWORD_CHECKS: usize = 4;
/// Successful logins remembered (as keyed hashes of user, password and stored hash) so that a
/// reconnecting client is not verified again; cleared on reload.
pub const LOGIN_CACHE_SIZE: usize = 1024;
/// Group every anonymous client is in (ActiveMQ `anonymousGroup`).
pub const ANONYMOUS_GROUP: &str = "anonymous";
/// Bound on a TLS handshake, accepted or made (a client that opens a socket and says nothing
/// does not hold a task past it).
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// What a password or a discovery secret is shown as, everywhere.
pub const SECRET_MASK: &str = "***";
/// Largest distance between a signed multicast advertisement's timestamp and the receiver's
/// clock: older (or later) ones are refused, which bounds replays.
pub const MULTICAST_SIGNATURE_MAX_AGE: Duration = Duration::from_secs(60);
