//! Node configuration: command-line flags, an optional TOML file with the same keys, and the
//! validated [`NodeConfig`] the node runs with. Flags win over the file; the file wins over
//! the defaults of `mq_shared::defaults`.
//!
//! Files: `options` (the flags and keys: [`Options`], one clap and serde type, and the TOML
//! file read into it), `resolve` (flags over the file over the defaults, validated into a
//! [`NodeConfig`]); this module holds the result and the errors.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use mq_shared::defaults as d;

use crate::broker::usage::{FlowControl, Limits as UsageLimits};
use crate::security::Security;
use crate::transport::TransportSettings;
use mq_shared::tls::TlsFiles;
use mq_shared::uri::{NetworkUri, TransportUri};

mod options;
mod resolve;

pub use options::{HaKind, LogFormat, Options, read_file};
pub use resolve::{
    JDBC_LOCK_ACQUIRE_SLEEP_INTERVAL_MS, JDBC_LOCK_KEEP_ALIVE_PERIOD_MS, parse_admin, resolve,
};

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

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
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
mod tests;
