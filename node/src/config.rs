//! Node configuration: command-line flags, an optional TOML file with the same keys, and the
//! validated [`NodeConfig`] the node runs with. Flags win over the file; the file wins over
//! the defaults of `mq_shared::defaults`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use mq_shared::defaults as d;
use mq_shared::frame::Limits;
use mq_shared::uri::{NetworkUri, TransportUri};
use serde::Deserialize;

use crate::broker::usage::{FlowControl, Limits as UsageLimits};
use crate::security::Security;
use crate::transport::TransportSettings;
use mq_shared::size::ByteSize;
use mq_shared::tls::TlsFiles;

/// Configuration errors; each names the key or flag at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {error}")]
    Read {
        /// File path.
        path: String,
        /// I/O error (in the message, not a separate source, so it is printed once).
        error: std::io::Error,
    },
    /// The config file is not valid TOML or has an unknown key.
    #[error("config file {path}: {message}")]
    Parse {
        /// File path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A value is invalid.
    #[error("{key}: {message}")]
    Invalid {
        /// Flag or key name.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

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

/// `lock-keep-alive-period` with `--ha jdbc` when not set, ms.
pub const JDBC_LOCK_KEEP_ALIVE_PERIOD_MS: u64 = 1000;
/// `lock-acquire-sleep-interval` (the lease) with `--ha jdbc` when not set, ms.
pub const JDBC_LOCK_ACQUIRE_SLEEP_INTERVAL_MS: u64 = 3000;

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

/// Where and how the node logs (`--log-*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// The log file; `None`: stderr.
    pub file: Option<PathBuf>,
    /// Rotate the file when a write would take it past this many bytes.
    pub max_size: u64,
    /// Rotated files kept.
    pub max_files: usize,
    /// Line format.
    pub format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            file: None,
            max_size: d::LOG_MAX_SIZE,
            max_files: d::LOG_MAX_FILES,
            format: LogFormat::Text,
        }
    }
}

/// Smallest `log-max-size`: below it nearly every line would start a new file.
pub const LOG_MIN_SIZE: u64 = 1024;
/// Most `log-max-files`: each rotation renames every kept file.
pub const LOG_MAX_FILES_LIMIT: usize = 1000;

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

/// Validated node configuration.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Broker name.
    pub name: String,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Store persistent messages.
    pub persistent: bool,
    /// The PostgreSQL store (`--store`); `None`: the store file in the data directory.
    pub store: Option<crate::store::pg::PgConfig>,
    /// Transport connectors to open when master.
    pub transports: Vec<TransportUri>,
    /// Admin API address.
    pub admin: SocketAddr,
    /// Network connectors.
    pub networks: Vec<NetworkUri>,
    /// Their URIs as given.
    pub network_uris: Vec<String>,
    /// Discovery URI to advertise transports on.
    pub discovery: Option<String>,
    /// Admin bearer token.
    pub admin_token: Option<String>,
    /// Connection settings.
    pub transport: TransportSettings,
    /// Default prefetch.
    pub prefetch: usize,
    /// `maximumRedeliveries`.
    pub maximum_redeliveries: u32,
    /// Dead-letter queue name.
    pub dlq: String,
    /// How the master is elected (`--ha`).
    pub ha: HaKind,
    /// `maxAllowableDiffFromDBTime` (`--ha jdbc`); `None`: no check.
    pub max_allowable_diff_from_db_time: Option<Duration>,
    /// `lockAcquireSleepInterval`.
    pub lock_acquire_sleep_interval: Duration,
    /// `lockKeepAlivePeriod`.
    pub lock_keep_alive_period: Duration,
    /// Messages queued per non-durable topic subscriber beyond its prefetch.
    pub pending_message_limit: usize,
    /// Largest prefetch honoured.
    pub max_prefetch: usize,
    /// Inactivity after which an empty, unused destination is removed; `None`: never.
    pub gc_inactive_after: Option<Duration>,
    /// `scheduler-support`: schedule SENDs with `AMQ_SCHEDULED_*` headers.
    pub scheduler_support: bool,
    /// How long a durable subscription may stay offline; `None`: forever.
    pub offline_durable_timeout: Option<Duration>,
    /// How long stop, stepdown and a lost lock wait for connections.
    pub shutdown_grace: Duration,
    /// Who may connect and what they may do (no file: loopback clients, anonymously).
    pub security: Security,
    /// The node's certificate, key and CA, when TLS is configured.
    pub tls: Option<TlsFiles>,
    /// `tls-ca`, also without a certificate of the node's own: links verify `ssl://` peers
    /// against it.
    pub tls_ca: Option<PathBuf>,
    /// The admin API's certificate and key, for HTTPS.
    pub admin_tls: Option<TlsFiles>,
    /// Host names the admin API answers to besides its address and localhost.
    pub admin_allowed_hosts: Vec<String>,
    /// The file the admin token was read from (`--admin-token-file`); the node generates
    /// `DATA/admin.token` when none is given.
    pub admin_token_file: Option<PathBuf>,
    /// Where and how the `mqnode` binary logs (an embedded broker logs through the
    /// application's own subscriber).
    pub log: LogSettings,
    /// `memory-usage`, `store-usage`, `temp-usage` and flow control.
    pub usage: UsageLimits,
    /// `--ha replicated`: the group's options.
    pub replicated: Option<crate::ha::replicated::options::ReplicatedConfig>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            name: "localhost".into(),
            data_dir: PathBuf::from("data"),
            persistent: d::PERSISTENT,
            store: None,
            transports: Vec::new(),
            admin: SocketAddr::from(([127, 0, 0, 1], d::ADMIN_PORT)),
            networks: Vec::new(),
            network_uris: Vec::new(),
            discovery: None,
            admin_token: None,
            transport: TransportSettings::default(),
            prefetch: d::PREFETCH_SIZE,
            maximum_redeliveries: d::MAXIMUM_REDELIVERIES,
            dlq: d::DLQ_NAME.into(),
            ha: HaKind::File,
            max_allowable_diff_from_db_time: None,
            lock_acquire_sleep_interval: Duration::from_millis(d::LOCK_ACQUIRE_SLEEP_INTERVAL_MS),
            lock_keep_alive_period: Duration::from_millis(d::LOCK_KEEP_ALIVE_PERIOD_MS),
            pending_message_limit: d::PENDING_MESSAGE_LIMIT,
            max_prefetch: d::MAX_PREFETCH,
            gc_inactive_after: d::GC_INACTIVE_DESTINATIONS.then_some(d::INACTIVE_TIMEOUT_BEFORE_GC),
            scheduler_support: d::SCHEDULER_SUPPORT,
            offline_durable_timeout: d::OFFLINE_DURABLE_SUBSCRIBER_TIMEOUT,
            shutdown_grace: d::SHUTDOWN_GRACE,
            security: Security::none(),
            tls: None,
            tls_ca: None,
            admin_tls: None,
            admin_allowed_hosts: Vec::new(),
            admin_token_file: None,
            log: LogSettings::default(),
            usage: UsageLimits {
                memory: d::MEMORY_USAGE,
                store: d::STORE_USAGE,
                temp: d::TEMP_USAGE,
                disk_reserve: d::STORE_DISK_RESERVE,
                flow: FlowControl {
                    hold: d::PRODUCER_FLOW_CONTROL,
                    fail_at_once: d::SEND_FAIL_IF_NO_SPACE,
                    fail_after: None,
                },
            },
            replicated: None,
        }
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

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

/// Parses an admin address: `HOST:PORT` (also `http://HOST:PORT`); host must be an IP or
/// `localhost`.
pub fn parse_admin(s: &str) -> Result<SocketAddr, ConfigError> {
    let t = s.strip_prefix("http://").unwrap_or(s).trim_end_matches('/');
    let t = t.replace("localhost", "127.0.0.1");
    t.parse::<SocketAddr>().map_err(|_| {
        invalid(
            "admin",
            format!("'{s}' is not HOST:PORT with an IP address host"),
        )
    })
}

/// Merges options over their config file (if they name one) over the defaults, and
/// validates the result. The binary and the embedded builder both start through here.
pub fn resolve(args: Options) -> Result<NodeConfig, ConfigError> {
    let o = match &args.config {
        Some(p) => {
            let file = read_file(p)?;
            args.over(file)
        }
        None => args,
    };
    let mut c = NodeConfig::default();
    usage(&mut c.usage, &o)?;
    if let Some(n) = o.name {
        if n.trim().is_empty() || n.contains(char::is_whitespace) || n.contains(',') {
            return Err(invalid(
                "name",
                format!("'{n}' must be non-empty without spaces or commas"),
            ));
        }
        c.name = n;
    }
    if let Some(dir) = o.data {
        c.data_dir = dir;
    } else {
        c.data_dir = PathBuf::from("data").join(&c.name);
    }
    if let Some(p) = o.persistent {
        c.persistent = p;
    }
    match (&o.store, &o.store_password_file) {
        (Some(url), file) => {
            let pg = crate::store::pg::PgConfig::from_options(url, file.as_deref()).map_err(
                |e| match e {
                    crate::store::pg::PgError::Url(_) => invalid("store", e.to_string()),
                    _ => invalid("store-password-file", e.to_string()),
                },
            )?;
            c.store = Some(pg);
        }
        (None, Some(_)) => {
            return Err(invalid(
                "store-password-file",
                "is only used with --store postgres://...",
            ));
        }
        (None, None) => {}
    }
    let transports = o.transport;
    let transports = if transports.is_empty() {
        vec![d::TRANSPORT_URI.to_string()]
    } else {
        transports
    };
    for t in &transports {
        let u: TransportUri = t
            .parse()
            .map_err(|e: mq_shared::uri::UriError| invalid("transport", e.to_string()))?;
        c.transports.push(u);
    }
    if let Some(a) = o.admin {
        c.admin = parse_admin(&a)?;
    }
    let networks = o.network;
    for n in &networks {
        let u: NetworkUri = n
            .parse()
            .map_err(|e: mq_shared::uri::UriError| invalid("network", e.to_string()))?;
        c.networks.push(u);
    }
    c.network_uris = networks;
    c.discovery = o.discovery;
    if let Some(d) = &c.discovery {
        // Validated here so a typo is reported at start, not ignored.
        d.parse::<mq_shared::uri::DiscoveryUri>()
            .map_err(|e| invalid("discovery", e.to_string()))?;
    }
    if let Some(p) = o.admin_token_file.clone() {
        let t = std::fs::read_to_string(&p).map_err(|e| {
            invalid(
                "admin-token-file",
                format!("cannot read {}: {e}", p.display()),
            )
        })?;
        let t = t.trim().to_string();
        if t.is_empty() {
            return Err(invalid(
                "admin-token-file",
                format!("{} is empty", p.display()),
            ));
        }
        c.admin_token = Some(t);
        c.admin_token_file = o.admin_token_file;
    }
    if c.admin_token.is_none() && !c.admin.ip().is_loopback() {
        return Err(invalid(
            "admin",
            format!(
                "refusing to serve the admin API on non-loopback {} without --admin-token-file",
                c.admin
            ),
        ));
    }
    let mut limits = Limits::default();
    if let Some(v) = o.max_frame_size {
        limits.max_frame_size = positive("max-frame-size", v)?;
    }
    if let Some(v) = o.max_headers {
        limits.max_headers = positive("max-headers", v)?;
    }
    if let Some(v) = o.max_header_length {
        limits.max_header_length = positive("max-header-length", v)?;
    }
    c.transport.limits = limits;
    if let Some(v) = o.connect_timeout_ms {
        c.transport.connect_timeout =
            Duration::from_millis(positive("connect-timeout-ms", v as usize)? as u64);
    }
    if let Some(v) = o.heartbeat_ms {
        c.transport.heartbeat_ms = positive("heartbeat-ms", v as usize)? as u64;
    }
    if let Some(v) = o.prefetch {
        c.prefetch = positive("prefetch", v)?;
    }
    if let Some(v) = o.maximum_redeliveries {
        c.maximum_redeliveries = v;
    }
    if let Some(v) = o.dlq {
        if v.is_empty() || v.contains('/') {
            return Err(invalid("dlq", format!("'{v}' must be a plain queue name")));
        }
        c.dlq = v;
    }
    if let Some(v) = o.lock_acquire_sleep_interval {
        c.lock_acquire_sleep_interval =
            Duration::from_millis(positive("lock-acquire-sleep-interval", v as usize)? as u64);
    }
    if let Some(v) = o.lock_keep_alive_period {
        c.lock_keep_alive_period =
            Duration::from_millis(positive("lock-keep-alive-period", v as usize)? as u64);
    }
    c.ha = o.ha.unwrap_or_default();
    c.replicated = crate::ha::replicated::options::resolve(
        &o.replicated,
        c.ha == HaKind::Replicated,
        &c.name,
        c.persistent,
    )?;
    if c.ha == HaKind::Jdbc {
        if c.store.is_none() {
            return Err(invalid(
                "ha",
                "jdbc elects the master through the store's database: give --store postgres://USER@HOST:PORT/DB",
            ));
        }
        if !c.persistent {
            return Err(invalid(
                "ha",
                "jdbc needs persistent = true: a node without persistence has no store to share",
            ));
        }
        if o.lock_keep_alive_period.is_none() {
            c.lock_keep_alive_period = Duration::from_millis(JDBC_LOCK_KEEP_ALIVE_PERIOD_MS);
        }
        if o.lock_acquire_sleep_interval.is_none() {
            c.lock_acquire_sleep_interval =
                Duration::from_millis(JDBC_LOCK_ACQUIRE_SLEEP_INTERVAL_MS);
        }
        crate::ha::lease::LeaseTiming::new(c.lock_keep_alive_period, c.lock_acquire_sleep_interval)
            .map_err(|e| invalid("lock-acquire-sleep-interval", e.to_string()))?;
        c.max_allowable_diff_from_db_time =
            o.max_allowable_diff_from_db_time.map(Duration::from_millis);
    } else if o.max_allowable_diff_from_db_time.is_some() {
        return Err(invalid(
            "max-allowable-diff-from-db-time",
            "is only used with --ha jdbc",
        ));
    }
    if let Some(v) = o.write_timeout {
        c.transport.write_timeout = millis("write-timeout", v)?;
    }
    if let Some(v) = o.pending_message_limit {
        c.pending_message_limit = v;
    }
    if let Some(v) = o.maximum_connections {
        c.transport.maximum_connections = positive("maximum-connections", v)?;
    }
    if let Some(v) = o.max_inactivity_duration {
        c.transport.max_inactivity = millis("max-inactivity-duration", v)?;
    }
    if let Some(v) = o.max_prefetch {
        c.max_prefetch = positive("max-prefetch", v)?;
    }
    let gc_after = match o.inactive_timeout_before_gc {
        Some(v) => millis("inactive-timeout-before-gc", v)?,
        None => d::INACTIVE_TIMEOUT_BEFORE_GC,
    };
    c.gc_inactive_after = o
        .gc_inactive_destinations
        .unwrap_or(d::GC_INACTIVE_DESTINATIONS)
        .then_some(gc_after);
    if let Some(v) = o.scheduler_support {
        c.scheduler_support = v;
    }
    c.offline_durable_timeout = match o.offline_durable_subscriber_timeout {
        None => d::OFFLINE_DURABLE_SUBSCRIBER_TIMEOUT,
        Some(-1) => None,
        Some(v) if v > 0 => Some(millis("offline-durable-subscriber-timeout", v as u64)?),
        Some(v) => {
            return Err(invalid(
                "offline-durable-subscriber-timeout",
                format!("{v} is neither -1 (never) nor a number of ms above 0"),
            ));
        }
    };
    if let Some(v) = o.shutdown_grace {
        c.shutdown_grace = Duration::from_millis(v);
        c.transport.shutdown_grace = c.shutdown_grace;
    }
    if let Some(p) = o.security {
        c.security = Security::load(&p).map_err(|e| invalid("security", e.to_string()))?;
        c.transport.security = c.security.clone();
    }
    tls(
        &mut c,
        o.tls_cert,
        o.tls_key,
        o.tls_ca,
        o.admin_tls_cert,
        o.admin_tls_key,
    )?;
    for t in &c.transports {
        if !c.security.is_enabled() && !t.addr.is_loopback() {
            return Err(invalid(
                "transport",
                format!(
                    "refusing to serve STOMP on non-loopback {} without --security (anonymous clients are served on loopback only)",
                    t.redacted()
                ),
            ));
        }
    }
    c.admin_allowed_hosts = o.admin_allowed_hosts;
    c.log.file = o.log_file;
    if let Some(ByteSize(v)) = o.log_max_size {
        if v < LOG_MIN_SIZE {
            return Err(invalid(
                "log-max-size",
                format!("{v} bytes is below the smallest, {LOG_MIN_SIZE} (1KiB)"),
            ));
        }
        c.log.max_size = v;
    }
    if let Some(v) = o.log_max_files {
        if v > LOG_MAX_FILES_LIMIT {
            return Err(invalid(
                "log-max-files",
                format!("{v} is above the largest, {LOG_MAX_FILES_LIMIT}"),
            ));
        }
        c.log.max_files = v;
    }
    if let Some(f) = o.log_format {
        c.log.format = f;
    }
    Ok(c)
}

/// `memory-usage`, `store-usage`, `temp-usage` and the flow-control keys.
fn usage(u: &mut UsageLimits, o: &Options) -> Result<(), ConfigError> {
    if let Some(v) = o.memory_usage {
        // Below a megabyte no window could hold a message of any size.
        if v.0 < 1 << 20 {
            return Err(invalid(
                "memory-usage",
                format!("{v} is too small; give at least 1MiB"),
            ));
        }
        u.memory = v.0;
    }
    if let Some(v) = o.store_usage {
        u.store = positive("store-usage", v.0 as usize)? as u64;
    }
    if let Some(v) = o.temp_usage {
        u.temp = positive("temp-usage", v.0 as usize)? as u64;
    }
    if let Some(v) = o.producer_flow_control {
        u.flow.hold = v;
    }
    if let Some(v) = o.send_fail_if_no_space {
        u.flow.fail_at_once = v;
    }
    if let Some(v) = o.send_fail_if_no_space_after_timeout {
        u.flow.fail_after = (v > 0).then(|| Duration::from_millis(v));
    }
    Ok(())
}

/// Validates the TLS files: both halves of each pair, and every `ssl://` transport and
/// `needClientAuth` backed by what it needs. The files are read once here, so a bad one is
/// a startup error.
fn tls(
    c: &mut NodeConfig,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    ca: Option<PathBuf>,
    admin_cert: Option<PathBuf>,
    admin_key: Option<PathBuf>,
) -> Result<(), ConfigError> {
    c.tls = match (cert, key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert,
            key,
            ca: ca.clone(),
        }),
        (None, None) => None,
        _ => return Err(invalid("tls-cert", "tls-cert and tls-key go together")),
    };
    c.tls_ca = ca.clone();
    for t in &c.transports {
        if t.is_tls() {
            let Some(files) = &c.tls else {
                return Err(invalid(
                    "transport",
                    format!("{} needs --tls-cert and --tls-key", t.redacted()),
                ));
            };
            if t.need_client_auth && files.ca.is_none() {
                return Err(invalid(
                    "transport",
                    format!("{}: needClientAuth=true needs --tls-ca", t.redacted()),
                ));
            }
            mq_shared::tls::server_config(files, t.need_client_auth)
                .map_err(|e| invalid("tls-cert", e.to_string()))?;
        }
    }
    if c.networks.iter().any(|n| n.has_tls_peer()) && ca.is_none() {
        return Err(invalid(
            "tls-ca",
            "a network connector to an ssl:// peer needs --tls-ca to verify it",
        ));
    }
    c.admin_tls = match (admin_cert, admin_key) {
        (Some(cert), Some(key)) => {
            let files = TlsFiles {
                cert,
                key,
                ca: None,
            };
            mq_shared::tls::server_config(&files, false)
                .map_err(|e| invalid("admin-tls-cert", e.to_string()))?;
            Some(files)
        }
        (None, None) => None,
        _ => {
            return Err(invalid(
                "admin-tls-cert",
                "admin-tls-cert and admin-tls-key go together",
            ));
        }
    };
    Ok(())
}

/// A duration in ms, above 0 and at most a day.
fn millis(key: &'static str, v: u64) -> Result<Duration, ConfigError> {
    if v == 0 || v > 86_400_000 {
        Err(invalid(
            key,
            format!("{v} ms is not between 1 and 86400000"),
        ))
    } else {
        Ok(Duration::from_millis(v))
    }
}

fn positive(key: &'static str, v: usize) -> Result<usize, ConfigError> {
    if v == 0 {
        Err(invalid(key, "must be above 0"))
    } else {
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_file_and_bad_values_name_their_key() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let f = dir.path().join("node.toml");
        std::fs::write(
            &f,
            "name = \"fromfile\"\nprefetch = 7\ntransport = [\"tcp://127.0.0.1:0\"]\n",
        )?;
        let c = resolve(Options {
            config: Some(f.clone()),
            name: Some("fromflag".into()),
            ..Options::default()
        })?;
        assert_eq!(c.name, "fromflag");
        assert_eq!(c.prefetch, 7);
        std::fs::write(&f, "nmae = \"typo\"\n")?;
        let e = resolve(Options {
            config: Some(f),
            ..Options::default()
        })
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.contains("nmae"), "{e}");
        let e = resolve(Options {
            admin: Some("0.0.0.0:8161".into()),
            ..Options::default()
        })
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.contains("non-loopback"), "{e}");
        Ok(())
    }

    #[test]
    fn sizes_take_units_and_log_settings_are_checked() -> Result<(), Box<dyn std::error::Error>> {
        let size = |s: &str| s.parse::<ByteSize>().map(|b| b.0);
        assert_eq!(size("4096"), Ok(4096));
        assert_eq!(size("100MiB"), Ok(100 << 20));
        assert_eq!(size("100 mib"), Ok(100 << 20));
        assert_eq!(size("512K"), Ok(512 << 10));
        assert_eq!(size("1GB"), Ok(1 << 30));
        for bad in ["", "MiB", "1.5MiB", "10 parsecs", "-1", "99999999999999GiB"] {
            assert!(size(bad).is_err(), "{bad}");
        }
        let dir = tempfile::tempdir()?;
        let f = dir.path().join("node.toml");
        std::fs::write(
            &f,
            "log-file = \"/tmp/n.log\"\nlog-max-size = \"2KiB\"\nlog-max-files = 3\nlog-format = \"json\"\n",
        )?;
        let c = resolve(Options {
            config: Some(f.clone()),
            ..Options::default()
        })?;
        let want = LogSettings {
            file: Some(PathBuf::from("/tmp/n.log")),
            max_size: 2048,
            max_files: 3,
            format: LogFormat::Json,
        };
        assert_eq!(c.log, want);
        std::fs::write(&f, "log-max-size = 5000\n")?;
        let c = resolve(Options {
            config: Some(f.clone()),
            ..Options::default()
        })?;
        assert_eq!(c.log.max_size, 5000);
        std::fs::write(&f, "log-format = \"xml\"\n")?;
        assert!(read_file(&f).is_err());
        let e = resolve(Options {
            log_max_size: Some(ByteSize(10)),
            ..Options::default()
        })
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.contains("log-max-size"), "{e}");
        Ok(())
    }

    /// `packaging/node.toml` names every key of [`Options`] (set, or commented out when it has
    /// no default), names no other, and what it sets are the defaults: it cannot go stale.
    #[test]
    fn the_packaged_sample_config_lists_every_key_with_its_default()
    -> Result<(), Box<dyn std::error::Error>> {
        use clap::CommandFactory;
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/node.toml");
        let text = std::fs::read_to_string(&path)?;
        let named: std::collections::BTreeSet<&str> = text
            .lines()
            .filter_map(|line| {
                let line = line.trim_start().trim_start_matches('#').trim_start();
                let (key, _) = line.split_once('=')?;
                let key = key.trim();
                let kebab = key.chars().all(|c| c.is_ascii_lowercase() || c == '-');
                (!key.is_empty() && kebab).then_some(key)
            })
            .collect();
        let command = Options::command();
        let keys: std::collections::BTreeSet<&str> = command
            .get_arguments()
            .filter_map(|a| a.get_long())
            .filter(|l| !["config", "help", "version"].contains(l))
            .collect();
        let missing: Vec<_> = keys.difference(&named).collect();
        assert!(missing.is_empty(), "packaging/node.toml lacks {missing:?}");
        let unknown: Vec<_> = named.difference(&keys).collect();
        assert!(unknown.is_empty(), "packaging/node.toml names {unknown:?}");
        // The sample's data directory is the service's; every other value is the default.
        let data = Some(PathBuf::from("/var/lib/mqnode"));
        let sample = resolve(Options {
            config: Some(path),
            data: data.clone(),
            ..Options::default()
        })?;
        let defaults = resolve(Options {
            data,
            ..Options::default()
        })?;
        assert_eq!(format!("{sample:?}"), format!("{defaults:?}"));
        Ok(())
    }
}
