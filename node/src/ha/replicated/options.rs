//! The options of `--ha replicated`, ActiveMQ's replicated LevelDB keys: the flags and TOML
//! keys ([`ReplicatedOptions`], flattened into the node's options) and what they resolve to
//! ([`ReplicatedConfig`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigError;

/// Default of `replicas` (ActiveMQ's).
pub const DEFAULT_REPLICAS: usize = 3;
/// Default of `zk-address` (ActiveMQ's).
pub const DEFAULT_ZK_ADDRESS: &str = "127.0.0.1:2181";
/// Default of `bind`: ActiveMQ's port, on loopback (a non-loopback bind needs a token or TLS).
pub const DEFAULT_BIND: &str = "tcp://127.0.0.1:61619";

/// When a group commit counts as confirmed (`sync`, ActiveMQ's names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum SyncMode {
    /// Synced to the master's disk and to the disks of a quorum of members.
    #[default]
    QuorumDisk,
    /// Synced to the master's disk and received into the memory of a quorum of members.
    QuorumMem,
    /// Synced to the master's disk; replicas follow without being waited for.
    LocalDisk,
}

impl SyncMode {
    /// The option's value as written.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::QuorumDisk => "quorum_disk",
            SyncMode::QuorumMem => "quorum_mem",
            SyncMode::LocalDisk => "local_disk",
        }
    }
}

/// The flags and keys of `--ha replicated` (flattened into the node's options).
#[derive(Debug, Default, Clone, clap::Args, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ReplicatedOptions {
    /// With --ha replicated: members of the group, this one included; a group commit is
    /// confirmed once replicas/2 + 1 of them hold it [default: 3].
    #[arg(long)]
    pub replicas: Option<usize>,
    /// With --ha replicated: ZooKeeper's connect string, HOST:PORT[,HOST:PORT...]
    /// [default: 127.0.0.1:2181].
    #[arg(long = "zk-address", value_name = "HOSTS")]
    pub zk_address: Option<String>,
    /// With --ha replicated: the group's ZooKeeper node [default: /mq/<name of the group>,
    /// the broker name].
    #[arg(long = "zk-path", value_name = "PATH")]
    pub zk_path: Option<String>,
    /// With --ha replicated: ZooKeeper session timeout in ms; a master cut off from ZooKeeper
    /// stops serving before it ends [default: 2000].
    #[arg(long = "zk-session-timeout", value_name = "MS")]
    pub zk_session_timeout: Option<u64>,
    /// With --ha replicated: the replication listener, tcp://HOST:PORT (port 0 picks one); a
    /// non-loopback address needs --replication-token-file or TLS (--tls-cert, --tls-key,
    /// --tls-ca) [default: tcp://127.0.0.1:61619].
    #[arg(long, value_name = "URI")]
    pub bind: Option<String>,
    /// With --ha replicated: the host the other members reach this one's listener at
    /// [default: the bind address].
    #[arg(long, value_name = "HOST")]
    pub hostname: Option<String>,
    /// With --ha replicated: preference among members with the same journal position at an
    /// election; higher wins, never pre-empting a master [default: 1].
    #[arg(long)]
    pub weight: Option<u32>,
    /// With --ha replicated: what confirms a group commit: quorum_disk, quorum_mem or
    /// local_disk [default: quorum_disk].
    #[arg(long, value_enum, value_name = "MODE")]
    pub sync: Option<SyncMode>,
    /// With --ha replicated: file holding the token every member presents on replication
    /// links (ActiveMQ's securityToken); the same in every member.
    #[arg(long = "replication-token-file", value_name = "FILE")]
    pub replication_token_file: Option<PathBuf>,
}

/// The TOML keys of [`ReplicatedOptions`].
const KEYS: [&str; 9] = [
    "replicas",
    "zk-address",
    "zk-path",
    "zk-session-timeout",
    "bind",
    "hostname",
    "weight",
    "sync",
    "replication-token-file",
];

impl ReplicatedOptions {
    /// Takes these options' keys out of a config file's table (the rest is the node's).
    pub fn take_from(table: &mut toml::Table) -> Result<ReplicatedOptions, toml::de::Error> {
        let mut mine = toml::Table::new();
        for k in KEYS {
            if let Some(v) = table.remove(k) {
                mine.insert(k.to_string(), v);
            }
        }
        mine.try_into()
    }

    /// These options over `file`'s (each one set here wins).
    pub fn over(self, file: ReplicatedOptions) -> ReplicatedOptions {
        ReplicatedOptions {
            replicas: self.replicas.or(file.replicas),
            zk_address: self.zk_address.or(file.zk_address),
            zk_path: self.zk_path.or(file.zk_path),
            zk_session_timeout: self.zk_session_timeout.or(file.zk_session_timeout),
            bind: self.bind.or(file.bind),
            hostname: self.hostname.or(file.hostname),
            weight: self.weight.or(file.weight),
            sync: self.sync.or(file.sync),
            replication_token_file: self.replication_token_file.or(file.replication_token_file),
        }
    }

    fn any_set(&self) -> Option<&'static str> {
        [
            (self.replicas.is_some(), "replicas"),
            (self.zk_address.is_some(), "zk-address"),
            (self.zk_path.is_some(), "zk-path"),
            (self.zk_session_timeout.is_some(), "zk-session-timeout"),
            (self.bind.is_some(), "bind"),
            (self.hostname.is_some(), "hostname"),
            (self.weight.is_some(), "weight"),
            (self.sync.is_some(), "sync"),
            (
                self.replication_token_file.is_some(),
                "replication-token-file",
            ),
        ]
        .into_iter()
        .find_map(|(set, key)| set.then_some(key))
    }
}

/// Which of the node's TLS files are set, as far as replication is concerned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeTls {
    /// `tls-cert` and `tls-key`: the node has a certificate of its own.
    pub identity: bool,
    /// `tls-ca`: the CA peers' certificates must be signed by.
    pub ca: bool,
}

/// What `--ha replicated` runs with.
#[derive(Clone)]
pub struct ReplicatedConfig {
    /// Members of the group, this one included.
    pub replicas: usize,
    /// ZooKeeper's connect string.
    pub zk_address: String,
    /// The group's ZooKeeper node.
    pub zk_path: String,
    /// ZooKeeper session timeout.
    pub zk_session_timeout: Duration,
    /// The replication listener's address.
    pub bind: SocketAddr,
    /// The host other members reach the listener at.
    pub hostname: String,
    /// Election preference.
    pub weight: u32,
    /// What confirms a group commit.
    pub sync: SyncMode,
    /// The token of replication links.
    pub token: Option<String>,
    /// Whether replication links are TLS (the node's certificate, key and CA), mutually
    /// authenticated.
    pub tls: bool,
}

impl std::fmt::Debug for ReplicatedConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicatedConfig")
            .field("replicas", &self.replicas)
            .field("zk_address", &self.zk_address)
            .field("zk_path", &self.zk_path)
            .field("zk_session_timeout", &self.zk_session_timeout)
            .field("bind", &self.bind)
            .field("hostname", &self.hostname)
            .field("weight", &self.weight)
            .field("sync", &self.sync)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("tls", &self.tls)
            .finish()
    }
}

impl ReplicatedConfig {
    /// Members that must hold a group before it is confirmed: `replicas / 2 + 1`.
    pub fn quorum(&self) -> usize {
        self.replicas / 2 + 1
    }
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

/// Resolves the options: `None` unless `replicated` (then every key is checked); a key set
/// without `--ha replicated` is refused. With a certificate (`tls`), links are TLS and the
/// CA is required.
pub fn resolve(
    o: &ReplicatedOptions,
    replicated: bool,
    name: &str,
    persistent: bool,
    tls: NodeTls,
) -> Result<Option<ReplicatedConfig>, ConfigError> {
    if !replicated {
        return match o.any_set() {
            Some(key) => Err(invalid(key, "is only used with --ha replicated")),
            None => Ok(None),
        };
    }
    if !persistent {
        return Err(invalid(
            "ha",
            "replicated needs persistent = true: a node without persistence has nothing to replicate",
        ));
    }
    let replicas = o.replicas.unwrap_or(DEFAULT_REPLICAS);
    if replicas == 0 {
        return Err(invalid("replicas", "must be at least 1"));
    }
    let zk_address = o
        .zk_address
        .clone()
        .unwrap_or_else(|| DEFAULT_ZK_ADDRESS.to_string());
    if zk_address.trim().is_empty() {
        return Err(invalid("zk-address", "is empty"));
    }
    let zk_path = o.zk_path.clone().unwrap_or_else(|| format!("/mq/{name}"));
    if !zk_path.starts_with('/') || zk_path.len() < 2 || zk_path.ends_with('/') {
        return Err(invalid(
            "zk-path",
            format!("{zk_path:?} must be an absolute ZooKeeper path like /mq/group"),
        ));
    }
    let timeout = o.zk_session_timeout.unwrap_or(2000);
    if timeout < 100 {
        return Err(invalid(
            "zk-session-timeout",
            format!("{timeout} ms is too short (at least 100)"),
        ));
    }
    let bind_text = o.bind.clone().unwrap_or_else(|| DEFAULT_BIND.to_string());
    let addr = bind_text.strip_prefix("tcp://").unwrap_or(&bind_text);
    let addr = addr.trim_end_matches('/').replace("localhost", "127.0.0.1");
    let bind: SocketAddr = addr.parse().map_err(|_| {
        invalid(
            "bind",
            format!("{bind_text:?} is not tcp://HOST:PORT with an IP address host"),
        )
    })?;
    let token = match &o.replication_token_file {
        Some(p) => {
            let t = std::fs::read_to_string(p).map_err(|e| {
                invalid(
                    "replication-token-file",
                    format!("cannot read {}: {e}", p.display()),
                )
            })?;
            let t = t.trim().to_string();
            if t.is_empty() {
                return Err(invalid(
                    "replication-token-file",
                    format!("{} is empty", p.display()),
                ));
            }
            Some(t)
        }
        None => None,
    };
    if tls.identity && !tls.ca {
        return Err(invalid(
            "tls-ca",
            "with --ha replicated and --tls-cert the replication links are TLS, and members verify each other against --tls-ca: give it",
        ));
    }
    if !bind.ip().is_loopback() && token.is_none() && !tls.identity {
        return Err(invalid(
            "bind",
            format!(
                "refusing a replication listener on non-loopback {bind} without --replication-token-file or TLS (--tls-cert, --tls-key and --tls-ca)"
            ),
        ));
    }
    let hostname = match &o.hostname {
        Some(h) if !h.trim().is_empty() => h.trim().to_string(),
        Some(_) => return Err(invalid("hostname", "is empty")),
        None if bind.ip().is_unspecified() => {
            return Err(invalid(
                "hostname",
                format!("bind {bind} names no host the other members can reach: set --hostname"),
            ));
        }
        None => bind.ip().to_string(),
    };
    Ok(Some(ReplicatedConfig {
        replicas,
        zk_address,
        zk_path,
        zk_session_timeout: Duration::from_millis(timeout),
        bind,
        hostname,
        weight: o.weight.unwrap_or(crate::ha::zk::DEFAULT_WEIGHT),
        sync: o.sync.unwrap_or_default(),
        token,
        tls: tls.identity,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_activemqs_on_loopback() -> Result<(), ConfigError> {
        let c = resolve(
            &ReplicatedOptions::default(),
            true,
            "b1",
            true,
            NodeTls::default(),
        )?
        .ok_or_else(|| invalid("ha", "none"))?;
        assert_eq!(c.replicas, 3);
        assert_eq!(c.quorum(), 2);
        assert_eq!(c.zk_address, "127.0.0.1:2181");
        assert_eq!(c.zk_path, "/mq/b1");
        assert_eq!(c.zk_session_timeout, Duration::from_millis(2000));
        assert_eq!(c.bind.to_string(), "127.0.0.1:61619");
        assert_eq!(c.hostname, "127.0.0.1");
        assert_eq!(c.sync, SyncMode::QuorumDisk);
        Ok(())
    }

    #[test]
    fn what_cannot_work_is_refused() {
        let wide = ReplicatedOptions {
            bind: Some("tcp://0.0.0.0:61619".into()),
            ..Default::default()
        };
        let open = resolve(&wide, true, "b", true, NodeTls::default());
        assert!(
            matches!(&open, Err(ConfigError::Invalid { key: "bind", message }) if message.contains("--replication-token-file or TLS")),
            "no token, no TLS: {open:?}"
        );
        let tls = NodeTls {
            identity: true,
            ca: true,
        };
        let lan = ReplicatedOptions {
            bind: Some("tcp://10.0.0.1:61619".into()),
            ..Default::default()
        };
        let c = resolve(&lan, true, "b", true, tls).map(|c| c.map(|c| c.tls));
        assert!(
            matches!(c, Ok(Some(true))),
            "TLS is enough for a wide bind: {c:?}"
        );
        let no_ca = NodeTls {
            identity: true,
            ca: false,
        };
        assert!(matches!(
            resolve(&ReplicatedOptions::default(), true, "b", true, no_ca),
            Err(ConfigError::Invalid { key: "tls-ca", .. })
        ));
        let keys = ReplicatedOptions {
            replicas: Some(3),
            ..Default::default()
        };
        assert!(
            resolve(&keys, false, "b", true, NodeTls::default()).is_err(),
            "without --ha"
        );
        assert!(
            resolve(
                &ReplicatedOptions::default(),
                true,
                "b",
                false,
                NodeTls::default()
            )
            .is_err()
        );
        let zero = ReplicatedOptions {
            replicas: Some(0),
            ..Default::default()
        };
        assert!(resolve(&zero, true, "b", true, NodeTls::default()).is_err());
        let path = ReplicatedOptions {
            zk_path: Some("mq/b".into()),
            ..Default::default()
        };
        assert!(resolve(&path, true, "b", true, NodeTls::default()).is_err());
    }

    #[test]
    fn the_keys_come_out_of_a_config_file_and_the_rest_stays() -> Result<(), toml::de::Error> {
        let mut t: toml::Table = toml::from_str(
            "replicas = 5\nsync = \"quorum_mem\"\nzk-path = \"/mq/g\"\nname = \"b\"\n",
        )?;
        let o = ReplicatedOptions::take_from(&mut t)?;
        assert_eq!(o.replicas, Some(5));
        assert_eq!(o.sync, Some(SyncMode::QuorumMem));
        assert_eq!(o.zk_path.as_deref(), Some("/mq/g"));
        assert_eq!(t.len(), 1, "the node's own key stays");
        let mut bad: toml::Table = toml::from_str("sync = \"sometimes\"\n")?;
        assert!(ReplicatedOptions::take_from(&mut bad).is_err());
        Ok(())
    }

    #[test]
    fn quorum_counts_every_member() -> Result<(), ConfigError> {
        let mut c = resolve(
            &ReplicatedOptions::default(),
            true,
            "b",
            true,
            NodeTls::default(),
        )?
        .ok_or_else(|| invalid("ha", "none"))?;
        for (n, q) in [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3)] {
            c.replicas = n;
            assert_eq!(c.quorum(), q, "{n} members");
        }
        Ok(())
    }
}
