//! The node's flags and config-file keys: [`Options`] (one type for the `mqnode` command line
//! and the TOML file), its value enums, the file read into it, and flags laid over the file.

use std::path::{Path, PathBuf};

use clap::Parser;
use mq_shared::size::ByteSize;
use serde::Deserialize;

use super::ConfigError;

/// The node's options: the `mqnode` command line and the TOML config file, one type for both
/// (every flag is a key of the same name in the file). Unset options take the defaults of
/// `mq_shared::defaults`; [`resolve`] merges flags over the file and validates.
#[derive(Debug, Default, Clone, Parser, Deserialize)]
#[command(
    name = "mqnode",
    version,
    about = "mq broker node: STOMP, redb persistence, network connectors, master/slave"
)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Options {
    /// Broker name (ActiveMQ brokerName); unique within a network of brokers.
    #[arg(long)]
    pub name: Option<String>,
    /// Data directory: the store and its lock live here. Nodes sharing it form a master/slave group.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Store messages sent with persistent:true (true|false).
    #[arg(long)]
    pub persistent: Option<bool>,
    /// Keep persistent messages in PostgreSQL instead of the data directory's store:
    /// postgres://USER@HOST:PORT/DB (the schema is created and migrated by the node).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// File holding the password of the --store database user (not in the URL, so that it
    /// never reaches a log or the admin API).
    #[arg(long = "store-password-file", value_name = "FILE")]
    pub store_password_file: Option<PathBuf>,
    /// Transport connector URI, repeatable (tcp://HOST:PORT; port 0 picks a free port).
    #[arg(long = "transport")]
    #[serde(default)]
    pub transport: Vec<String>,
    /// Admin API address HOST:PORT (port 0 picks a free port).
    #[arg(long)]
    pub admin: Option<String>,
    /// Network connector URI, repeatable (static:(tcp://h:p,...)?options or multicast://default).
    #[arg(long = "network")]
    #[serde(default)]
    pub network: Vec<String>,
    /// Advertise the transport connectors on this discovery URI (multicast://default).
    #[arg(long)]
    pub discovery: Option<String>,
    /// File holding the admin API bearer token.
    #[arg(long = "admin-token-file")]
    pub admin_token_file: Option<PathBuf>,
    /// TOML config file with the same keys as these flags.
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Largest STOMP frame accepted, in bytes.
    #[arg(long = "max-frame-size")]
    pub max_frame_size: Option<usize>,
    /// Most headers in one frame.
    #[arg(long = "max-headers")]
    pub max_headers: Option<usize>,
    /// Longest header line, in bytes.
    #[arg(long = "max-header-length")]
    pub max_header_length: Option<usize>,
    /// Milliseconds a new connection may take to send CONNECT.
    #[arg(long = "connect-timeout-ms")]
    pub connect_timeout_ms: Option<u64>,
    /// Heart-beat interval the server offers, in ms.
    #[arg(long = "heartbeat-ms")]
    pub heartbeat_ms: Option<u64>,
    /// Default prefetch per subscription (activemq.prefetchSize).
    #[arg(long)]
    pub prefetch: Option<usize>,
    /// Redeliveries before the dead-letter queue (maximumRedeliveries).
    #[arg(long = "maximum-redeliveries")]
    pub maximum_redeliveries: Option<u32>,
    /// Dead-letter queue name.
    #[arg(long)]
    pub dlq: Option<String>,
    /// How master/slave members elect their master: file (a lock on DATA/lock, members share
    /// the data directory), jdbc (a lease row in the --store database) or replicated
    /// (ZooKeeper elects, each member keeps its own store, the master streams its journal)
    /// [default: file].
    #[arg(long, value_enum, value_name = "KIND")]
    pub ha: Option<HaKind>,
    /// How often a slave tries the store lock, in ms (lockAcquireSleepInterval); with
    /// --ha jdbc also how long the lease lasts, and it must exceed lock-keep-alive-period
    /// [default: 100; 3000 with --ha jdbc].
    #[arg(long = "lock-acquire-sleep-interval")]
    pub lock_acquire_sleep_interval: Option<u64>,
    /// How often a master checks it still holds the lock, in ms (lockKeepAlivePeriod); with
    /// --ha jdbc how often it renews its lease [default: 500; 1000 with --ha jdbc].
    #[arg(long = "lock-keep-alive-period")]
    pub lock_keep_alive_period: Option<u64>,
    /// With --ha jdbc: refuse to start when this member's clock is further than this many ms
    /// from the database's (maxAllowableDiffFromDBTime); unset: no check.
    #[arg(long = "max-allowable-diff-from-db-time", value_name = "MS")]
    pub max_allowable_diff_from_db_time: Option<u64>,
    /// Close a socket that takes no bytes for this many ms while bytes wait for it; its
    /// unacknowledged messages go to other consumers (soWriteTimeout) [default: 10000].
    #[arg(long = "write-timeout")]
    pub write_timeout: Option<u64>,
    /// Messages queued for one non-durable topic subscriber beyond its prefetch; past it the
    /// oldest are discarded for that subscriber and counted [default: 1000].
    #[arg(long = "pending-message-limit")]
    pub pending_message_limit: Option<usize>,
    /// Connections accepted at once over all transports; more are refused [default: 1000].
    #[arg(long = "maximum-connections")]
    pub maximum_connections: Option<usize>,
    /// Close a connection that owes bytes (its CONNECT, the rest of a started frame) and sends
    /// nothing for this many ms [default: 30000].
    #[arg(long = "max-inactivity-duration")]
    pub max_inactivity_duration: Option<u64>,
    /// Largest activemq.prefetchSize honoured; larger values are capped [default: 32767].
    #[arg(long = "max-prefetch")]
    pub max_prefetch: Option<usize>,
    /// Remove empty destinations without consumers or producers (true|false) [default: true].
    #[arg(long = "gc-inactive-destinations")]
    pub gc_inactive_destinations: Option<bool>,
    /// Ms a destination must stay inactive before it is removed [default: 60000].
    #[arg(long = "inactive-timeout-before-gc")]
    pub inactive_timeout_before_gc: Option<u64>,
    /// Deliver SENDs with AMQ_SCHEDULED_* headers when due (true|false); false delivers them
    /// at once, headers untouched [default: true].
    #[arg(long = "scheduler-support")]
    pub scheduler_support: Option<bool>,
    /// Ms a durable topic subscription may stay offline before it is removed with its
    /// backlog; -1: never (offlineDurableSubscriberTimeout) [default: -1].
    #[arg(
        long = "offline-durable-subscriber-timeout",
        allow_negative_numbers = true
    )]
    pub offline_durable_subscriber_timeout: Option<i64>,
    /// Ms that stop, stepdown and a lost lock wait for connections to flush before closing
    /// them [default: 1000].
    #[arg(long = "shutdown-grace")]
    pub shutdown_grace: Option<u64>,
    /// Security file (users, groups, authorization); without one only loopback clients are
    /// served, anonymously.
    #[arg(long)]
    pub security: Option<PathBuf>,
    /// PEM certificate chain of this node, for ssl:// transports and TLS links.
    #[arg(long = "tls-cert")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of that certificate.
    #[arg(long = "tls-key")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificate(s): peers' certificates are verified against it, and clients' with
    /// needClientAuth=true.
    #[arg(long = "tls-ca")]
    pub tls_ca: Option<PathBuf>,
    /// PEM certificate chain for HTTPS on the admin API.
    #[arg(long = "admin-tls-cert")]
    pub admin_tls_cert: Option<PathBuf>,
    /// PEM private key of the admin certificate.
    #[arg(long = "admin-tls-key")]
    pub admin_tls_key: Option<PathBuf>,
    /// Further Host names the admin API answers to (besides its bound address and
    /// localhost), repeatable.
    #[arg(long = "admin-allowed-hosts")]
    #[serde(default)]
    pub admin_allowed_hosts: Vec<String>,
    /// Write the log to this file instead of stderr, rotated by size (FILE, FILE.1 ... FILE.N,
    /// the oldest removed); created mode 0600. Its folder must exist.
    #[arg(long = "log-file", value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// Size at which the log file is rotated: bytes, or with a unit (512KiB, 100MiB, 1GiB)
    /// [default: 100MiB].
    #[arg(long = "log-max-size", value_name = "SIZE")]
    pub log_max_size: Option<ByteSize>,
    /// Rotated log files kept besides the current one (0: none, the file starts over)
    /// [default: 5].
    #[arg(long = "log-max-files", value_name = "N")]
    pub log_max_files: Option<usize>,
    /// Log format: text (one line per event for people) or json (one JSON object per line)
    /// [default: text]. RUST_LOG chooses what is logged (default: info).
    #[arg(long = "log-format", value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Bytes of messages held in memory, all queues together (memoryUsage); a backlog past it
    /// stays in the store and is read back as consumers make room; non-persistent messages
    /// past it spill to the temp store [default: 64MiB].
    #[arg(long = "memory-usage")]
    pub memory_usage: Option<ByteSize>,
    /// Bytes of persistent messages stored (storeUsage), capped at the disk's free space
    /// [default: 100GiB].
    #[arg(long = "store-usage")]
    pub store_usage: Option<ByteSize>,
    /// Bytes of non-persistent messages spilled to the temp store (tempUsage) [default: 50GiB].
    #[arg(long = "temp-usage")]
    pub temp_usage: Option<ByteSize>,
    /// Hold a producer while a limit is reached: no RECEIPT and nothing more read from its
    /// connection until space frees (producerFlowControl) [default: true].
    #[arg(long = "producer-flow-control")]
    pub producer_flow_control: Option<bool>,
    /// Answer a SEND with ERROR "store full" at once instead of holding it
    /// (sendFailIfNoSpace) [default: false].
    #[arg(long = "send-fail-if-no-space")]
    pub send_fail_if_no_space: Option<bool>,
    /// Hold a SEND at most this many ms, then answer ERROR "store full"; 0: no limit
    /// (sendFailIfNoSpaceAfterTimeout) [default: 0].
    #[arg(long = "send-fail-if-no-space-after-timeout")]
    pub send_fail_if_no_space_after_timeout: Option<u64>,
    /// The keys of `--ha replicated` (read from the file by [`read_file`], beside the others).
    #[command(flatten)]
    #[serde(skip)]
    pub replicated: crate::ha::replicated::options::ReplicatedOptions,
}

/// How the members of a master/slave group elect their master (`--ha`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HaKind {
    /// An OS lock on `DATA/lock` in the shared data directory.
    #[default]
    File,
    /// ActiveMQ's lease database locker: a lease row in the `--store` PostgreSQL database.
    Jdbc,
    /// ActiveMQ's replicated store: every member keeps its own store, ZooKeeper elects the
    /// master, which streams its journal to the others.
    Replicated,
}

/// How log events are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line per event: time, level, target, message and fields.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields` (and spans).
    Json,
}

/// Flags over the file: each option set on the command line wins; a list given on the
/// command line replaces the file's.
macro_rules! over {
    ($flags:ident, $file:ident; one: $($o:ident),* ; list: $($l:ident),* $(,)?) => {
        Options {
            $($o: $flags.$o.or($file.$o),)*
            $($l: if $flags.$l.is_empty() { $file.$l } else { $flags.$l },)*
            replicated: $flags.replicated.over($file.replicated),
            config: $flags.config,
        }
    };
}

impl Options {
    /// These options over `file`'s.
    pub fn over(self, file: Options) -> Options {
        over!(self, file;
            one: name, data, persistent, store, store_password_file, admin, discovery, admin_token_file, max_frame_size,
                 max_headers, max_header_length, connect_timeout_ms, heartbeat_ms, prefetch,
                 maximum_redeliveries, dlq, ha, lock_acquire_sleep_interval, lock_keep_alive_period,
                 max_allowable_diff_from_db_time,
                 write_timeout, pending_message_limit, maximum_connections,
                 max_inactivity_duration, max_prefetch, gc_inactive_destinations,
                 inactive_timeout_before_gc, offline_durable_subscriber_timeout, scheduler_support, shutdown_grace, security, tls_cert, tls_key, tls_ca,
                 admin_tls_cert, admin_tls_key, log_file, log_max_size, log_max_files, log_format,
                 memory_usage, store_usage, temp_usage, producer_flow_control,
                 send_fail_if_no_space, send_fail_if_no_space_after_timeout;
            list: transport, network, admin_allowed_hosts)
    }
}

/// Reads a TOML config file.
pub fn read_file(path: &Path) -> Result<Options, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.display().to_string(),
        error,
    })?;
    let parse = |e: toml::de::Error| ConfigError::Parse {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let mut table: toml::Table = toml::from_str(&text).map_err(parse)?;
    let replicated =
        crate::ha::replicated::options::ReplicatedOptions::take_from(&mut table).map_err(parse)?;
    let mut o: Options = table.try_into().map_err(parse)?;
    o.replicated = replicated;
    Ok(o)
}
