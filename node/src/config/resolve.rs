//! [`resolve`]: options over their config file over the defaults, checked key by key into the
//! [`NodeConfig`] the node runs with; each error names its key.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use mq_shared::defaults as d;
use mq_shared::frame::Limits;
use mq_shared::size::ByteSize;
use mq_shared::tls::TlsFiles;
use mq_shared::uri::{NetworkUri, TransportUri};

use super::{
    ConfigError, HaKind, LOG_MAX_FILES_LIMIT, LOG_MIN_SIZE, NodeConfig, Options, invalid, millis,
    positive, read_file,
};
use crate::broker::usage::Limits as UsageLimits;
use crate::security::Security;

/// `lock-keep-alive-period` with `--ha jdbc` when not set, ms.
pub const JDBC_LOCK_KEEP_ALIVE_PERIOD_MS: u64 = 1000;
/// `lock-acquire-sleep-interval` (the lease) with `--ha jdbc` when not set, ms.
pub const JDBC_LOCK_ACQUIRE_SLEEP_INTERVAL_MS: u64 = 3000;

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
        crate::ha::replicated::options::NodeTls {
            identity: o.tls_cert.is_some() && o.tls_key.is_some(),
            ca: o.tls_ca.is_some(),
        },
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
