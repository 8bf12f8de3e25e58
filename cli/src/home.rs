//! `mqctl`'s home (`$MQCTL_HOME`, else `~/.mqctl`) and the cluster manifests in it.
//!
//! Layout: `clusters/NAME/cluster.json` (the manifest), `clusters/NAME/admin.token` (mode 0600),
//! and one folder per node: `clusters/NAME/NODE/data` and `clusters/NAME/NODE/node.log` (the
//! members of an HA group share the group's `data` folder and keep their own log).

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use mq_shared::ctl::{ClusterManifest, MANIFEST_FILE, TOKEN_FILE};
use mq_shared::defaults::{MQCTL_HOME_DIR, MQCTL_HOME_ENV};

use crate::error::{CliError, Result};

/// The folder holding every cluster.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// `$MQCTL_HOME`, else `$HOME/.mqctl`.
    pub fn locate() -> Result<Home> {
        if let Some(dir) = std::env::var_os(MQCTL_HOME_ENV).filter(|v| !v.is_empty()) {
            return Ok(Home::at(PathBuf::from(dir)));
        }
        match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => Ok(Home::at(PathBuf::from(home).join(MQCTL_HOME_DIR))),
            None => Err(CliError::NoHome),
        }
    }

    /// A home at `root` (made absolute against the current directory).
    pub fn at(root: PathBuf) -> Home {
        let root = if root.is_absolute() {
            root
        } else {
            std::env::current_dir()
                .map(|cwd| cwd.join(&root))
                .unwrap_or(root)
        };
        Home { root }
    }

    /// `HOME/clusters`.
    pub fn clusters_dir(&self) -> PathBuf {
        self.root.join("clusters")
    }

    /// `HOME/clusters/NAME`.
    pub fn cluster_dir(&self, name: &str) -> PathBuf {
        self.clusters_dir().join(name)
    }

    /// `HOME/clusters/NAME/cluster.json`.
    pub fn manifest_path(&self, name: &str) -> PathBuf {
        self.cluster_dir(name).join(MANIFEST_FILE)
    }

    /// `HOME/clusters/NAME/admin.token`.
    pub fn token_path(&self, name: &str) -> PathBuf {
        self.cluster_dir(name).join(TOKEN_FILE)
    }

    /// Names of the clusters with a manifest, sorted.
    pub fn cluster_names(&self) -> Result<Vec<String>> {
        let dir = self.clusters_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(CliError::io("could not list", dir, e)),
        };
        let mut names: Vec<String> = entries
            .filter_map(|entry| entry.ok())
            .filter(|entry| entry.path().join(MANIFEST_FILE).is_file())
            .filter_map(|entry| entry.file_name().into_string().ok())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Every port the manifests of this home record for local nodes, but those of cluster
    /// `except`. A manifest that does not parse is skipped.
    pub fn recorded_ports(&self, except: &str) -> Result<std::collections::BTreeSet<u16>> {
        let mut ports = std::collections::BTreeSet::new();
        for name in self.cluster_names()? {
            if name == except {
                continue;
            }
            if let Ok(manifest) = self.load(&name) {
                for node in &manifest.nodes {
                    ports.insert(node.transport_port);
                    ports.insert(node.admin_port);
                }
                if let Some(pg) = &manifest.postgres {
                    ports.insert(pg.port);
                }
                if let Some(zk) = &manifest.zookeeper {
                    ports.insert(zk.port);
                }
            }
        }
        Ok(ports)
    }

    /// Reads the manifest of cluster `name`.
    pub fn load(&self, name: &str) -> Result<ClusterManifest> {
        validate_name("cluster", name)?;
        let path = self.manifest_path(name);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CliError::ClusterNotFound {
                    name: name.to_string(),
                    home: self.clusters_dir(),
                });
            }
            Err(e) => return Err(CliError::io("could not read", path, e)),
        };
        serde_json::from_str(&text).map_err(|source| CliError::BadFile {
            path,
            what: "cluster manifest",
            source,
        })
    }

    /// Writes the manifest atomically (a temporary file renamed over the old one).
    pub fn save(&self, manifest: &ClusterManifest) -> Result<()> {
        let path = self.manifest_path(&manifest.name);
        let tmp = path.with_extension("json.tmp");
        let text = crate::output::to_json(manifest, true) + "\n";
        fs::write(&tmp, text).map_err(|e| CliError::io("could not write", &tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| CliError::io("could not write", &path, e))
    }

    /// Reads the admin token of a cluster (trimmed), or `None` when the manifest names no file.
    pub fn token(&self, manifest: &ClusterManifest) -> Result<Option<String>> {
        if manifest.token_file.is_empty() {
            return Ok(None);
        }
        read_token(Path::new(&manifest.token_file)).map(Some)
    }
}

/// Reads a token file, trimmed of surrounding whitespace.
pub fn read_token(path: &Path) -> Result<String> {
    fs::read_to_string(path)
        .map(|t| t.trim().to_string())
        .map_err(|e| CliError::io("could not read the admin token file", path, e))
}

/// Writes a fresh random token (64 hex digits) to `path`, readable by the owner only.
pub fn write_new_token(path: &Path) -> Result<()> {
    let bytes: [u8; 32] = rand::random();
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| CliError::io("could not create", path, e))?;
    file.write_all(token.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .map_err(|e| CliError::io("could not write", path, e))
}

/// Checks a cluster, node or link name: 1 to 64 of `A-Z a-z 0-9 . _ -`, starting with a letter
/// or digit (names become folder names and URL path segments).
pub fn validate_name(kind: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "invalid {kind} name `{name}`: use 1 to 64 letters, digits, `.`, `_` or `-`, starting with a letter or digit"
        )))
    }
}

/// Now as RFC 3339 UTC with seconds, e.g. `2025-01-31T12:00:00Z`.
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// Now in milliseconds since the Unix epoch (0 for a clock set before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `time` as RFC 3339 UTC with seconds; a time before 1970 (a clock set wrong) reads as 1970.
pub fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time.max(UNIX_EPOCH)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn names() {
        assert!(validate_name("cluster", "demo").is_ok());
        assert!(validate_name("cluster", "demo-1.a_b").is_ok());
        assert!(validate_name("cluster", "").is_err());
        assert!(validate_name("cluster", "../x").is_err());
        assert!(validate_name("cluster", "a/b").is_err());
        assert!(validate_name("cluster", "-x").is_err());
        assert!(validate_name("cluster", &"a".repeat(65)).is_err());
    }

    #[test]
    fn timestamps() {
        let at = |secs| rfc3339(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_735_689_599), "2024-12-31T23:59:59Z");
        let before = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(rfc3339(before), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn token_file_is_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("admin.token");
        write_new_token(&path).expect("write");
        let mode = fs::metadata(&path).expect("stat").permissions();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.mode() & 0o777, 0o600);
        let token = read_token(&path).expect("read");
        assert_eq!(token.len(), 64);
        assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(write_new_token(&path).is_err(), "never overwrites");
    }
}
