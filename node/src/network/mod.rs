//! Network connectors: bridges from this node to other nodes (store and forward, on demand).
//!
//! ```text
//! Manager ── connector "nc-1" static:(tcp://b:61613,masterslave:(tcp://c1:1,tcp://c2:2))?…
//!    │          ├── bridge::run  peer b      connecting → connected → backoff → …
//!    │          └── bridge::run  peer c1|c2
//!    ├─ connector "nc-2" multicast://default  discovery::run_connector ── bridge per node heard
//!    └─ advertisers (transport connectors with discoveryUri, or --discovery)
//! ```
//!
//! Connectors come from `--network`/the config file and from the admin API at run time
//! ([`Manager::add`], [`Manager::remove`]); bridges run only while the node is master
//! ([`Manager::start`], [`Manager::stop`]). Connectors added at run time are kept in
//! `DATA/network-connectors.json` (not in the config file): the data directory is what a
//! master/slave group shares, so the member that takes over starts the same links, and a
//! restarted node keeps them.
//!
//! Modules: [`bridge`] (the per-peer state machine and forwarding), [`demand`] (advisories
//! and which destinations to forward), [`discovery`] (multicast). Reconnect delays are
//! [`mq_shared::backoff`]'s, the STOMP link itself is `mq_shared::connection`, the inter-node
//! headers are [`crate::internode`].

pub mod bridge;
pub mod demand;
pub mod discovery;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mq_shared::api::{NetworkConnectorInfo, NetworkConnectorList};
use mq_shared::uri::{DiscoveryUri, NetworkUri, UriError, redact_uri};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::Core;
use bridge::{BridgeConfig, PeerStatus, Target};

pub use mq_shared::defaults::{BRIDGE_CONNECT_TIMEOUT, BRIDGE_HEARTBEAT_MS, STATIC_RESCAN};

/// Why a bridge's link failed; shown as the peer's `last_error`.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// No endpoint accepted the TCP connection.
    #[error("cannot connect to {0}")]
    Connect(String),
    /// The socket failed.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent bytes that are not STOMP.
    #[error("invalid frame from the peer: {0}")]
    Frame(#[from] mq_shared::frame::FrameError),
    /// The peer sent something a bridge does not expect.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The peer answered with an ERROR frame.
    #[error("peer error: {0}")]
    Peer(String),
    /// Something did not happen in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The peer closed the connection.
    #[error("connection closed by the peer")]
    Closed,
    /// The peer is this node itself (a loop-back connector).
    #[error("{0} is this node itself; a bridge to itself is refused")]
    SelfLink(String),
    /// A message from the peer could not be stored here.
    #[error("store failed: {0}")]
    Store(String),
}

/// Why a connector could not be added or removed.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The URI does not parse; the message names the offending part.
    #[error("{0}")]
    BadUri(#[from] UriError),
    /// The name is not usable.
    #[error("connector name '{0}' must be non-empty, without spaces, '/' or '?'")]
    BadName(String),
    /// The body's name and the URI's `name` option differ.
    #[error("name '{given}' differs from the URI's name option '{in_uri}'")]
    NameMismatch {
        /// Name in the request.
        given: String,
        /// `name=` in the URI.
        in_uri: String,
    },
    /// A connector of that name exists.
    #[error("a network connector named '{0}' already exists")]
    Duplicate(String),
    /// No connector of that name.
    #[error("no network connector named '{0}'")]
    NotFound(String),
    /// An `ssl://` peer on a node that has no CA to verify it against.
    #[error("a network connector to an ssl:// peer needs --tls-ca to verify it")]
    NeedsCa,
}

/// A connector definition.
struct Def {
    name: String,
    uri: String,
    parsed: NetworkUri,
    /// Added through the admin API (kept in the data directory) rather than configured.
    runtime: bool,
}

/// File in the data directory holding the connectors added at run time.
pub const RUNTIME_CONNECTORS_FILE: &str = "network-connectors.json";

/// One run-time connector as kept on disk.
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedConnector {
    name: String,
    uri: String,
}

/// A running connector.
struct Live {
    cancel: CancellationToken,
    tracker: TaskTracker,
    peers: Arc<Mutex<Vec<Arc<PeerStatus>>>>,
}

/// What runs while master.
struct Running {
    core: Core,
    cancel: CancellationToken,
    tracker: TaskTracker,
    live: HashMap<String, Live>,
}

#[derive(Default)]
struct Inner {
    defs: Vec<Def>,
    configured: bool,
    next: u64,
    running: Option<Running>,
}

/// The network connectors of a node.
pub struct Manager {
    broker_name: Arc<str>,
    /// Where run-time connectors are kept; `None` keeps them in memory only.
    saved: Option<PathBuf>,
    inner: Mutex<Inner>,
    /// TLS for `ssl://` peers.
    tls: Option<Arc<mq_shared::tls::ClientConfig>>,
}

impl Manager {
    /// No connectors yet. Run-time connectors are kept in `data_dir` when one is given.
    pub fn new(broker_name: String, data_dir: Option<&Path>) -> Manager {
        Manager {
            broker_name: Arc::from(broker_name),
            saved: data_dir.map(|d| d.join(RUNTIME_CONNECTORS_FILE)),
            inner: Mutex::new(Inner::default()),
            tls: None,
        }
    }

    /// Bridges to `ssl://` peers use `tls` (the CA that verifies them, this node's own
    /// certificate).
    pub fn with_tls(mut self, tls: Option<Arc<mq_shared::tls::ClientConfig>>) -> Manager {
        self.tls = tls;
        self
    }

    /// Replaces the run-time definitions with those kept on disk (another member of the group
    /// may have changed them while this node was a slave).
    fn load_saved(&self, g: &mut Inner) {
        let Some(path) = &self.saved else { return };
        let saved: Vec<SavedConnector> = match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(v) => v,
                Err(e) => {
                    tracing::error!(file = %path.display(), error = %e, "run-time network connectors file is not valid JSON; ignoring it");
                    return;
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "cannot read run-time network connectors");
                return;
            }
        };
        g.defs.retain(|d| !d.runtime);
        for c in saved {
            if g.defs.iter().any(|d| d.name == c.name) {
                continue;
            }
            match c.uri.parse::<NetworkUri>() {
                Ok(parsed) => g.defs.push(Def {
                    name: c.name,
                    uri: c.uri,
                    parsed,
                    runtime: true,
                }),
                Err(e) => {
                    tracing::error!(connector = %c.name, error = %e, "skipping a saved network connector")
                }
            }
        }
    }

    /// Writes the run-time definitions to disk (atomically: temp file, then rename).
    fn save(&self, g: &Inner) {
        let Some(path) = &self.saved else { return };
        let list: Vec<SavedConnector> = g
            .defs
            .iter()
            .filter(|d| d.runtime)
            .map(|d| SavedConnector {
                name: d.name.clone(),
                uri: d.uri.clone(),
            })
            .collect();
        // The URIs may hold passwords: the file is private to the node's user (0600).
        let tmp = path.with_extension("json.tmp");
        let r = serde_json::to_string_pretty(&list)
            .map_err(std::io::Error::other)
            .and_then(|text| crate::security::secret::write_private_file(&tmp, &text))
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = r {
            tracing::error!(file = %path.display(), error = %e, "cannot save run-time network connectors; they last until this node stops");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the bridges of every connector over `core` (when the node becomes master): the
    /// configured ones (`networks`, as given in `uris`; added on the first start) and those
    /// added at run time. `adverts` are the bound transport URIs to advertise, with the group
    /// to advertise each on.
    pub fn start(
        &self,
        core: Core,
        networks: &[NetworkUri],
        uris: &[String],
        adverts: Vec<(DiscoveryUri, String)>,
    ) {
        let mut g = self.lock();
        if !g.configured {
            g.configured = true;
            for (i, parsed) in networks.iter().enumerate() {
                let uri = uris.get(i).cloned().unwrap_or_else(|| parsed.to_string());
                let name = match &parsed.options().name {
                    Some(n) => n.clone(),
                    None => next_name(&mut g),
                };
                if g.defs.iter().any(|d| d.name == name) {
                    tracing::error!(connector = %name, uri = %redact_uri(&uri), "two network connectors share a name; the second is ignored (set name=... on one)");
                    continue;
                }
                g.defs.push(Def {
                    name,
                    uri,
                    parsed: parsed.clone(),
                    runtime: false,
                });
            }
        }
        if g.running.is_some() {
            return;
        }
        self.load_saved(&mut g);
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let mut by_group: HashMap<String, (DiscoveryUri, Vec<String>)> = HashMap::new();
        for (d, s) in adverts {
            by_group
                .entry(d.to_string())
                .or_insert_with(|| (d.clone(), Vec::new()))
                .1
                .push(s);
        }
        for (_, (d, services)) in by_group {
            tracker.spawn(discovery::advertise(
                d,
                self.broker_name.to_string(),
                services,
                cancel.clone(),
            ));
        }
        let mut live = HashMap::new();
        for d in &g.defs {
            live.insert(
                d.name.clone(),
                launch(&core, &self.broker_name, d, &cancel, self.tls.clone()),
            );
        }
        g.running = Some(Running {
            core,
            cancel,
            tracker,
            live,
        });
    }

    /// Stops every bridge and advertiser (when the node stops serving) and waits for them;
    /// local consumers are detached, so waiting messages stay in the store.
    pub async fn stop(&self) {
        let Some(r) = self.lock().running.take() else {
            return;
        };
        r.cancel.cancel();
        for (_, l) in r.live {
            l.tracker.close();
            l.tracker.wait().await;
        }
        r.tracker.close();
        r.tracker.wait().await;
    }

    /// Every connector with its peers' states.
    pub fn list(&self) -> NetworkConnectorList {
        let g = self.lock();
        NetworkConnectorList {
            connectors: g.defs.iter().map(|d| info(&g, d)).collect(),
        }
    }

    /// Adds a connector (named `name`, else by the URI's `name` option, else generated) and
    /// starts it if the node is master.
    pub fn add(
        &self,
        name: Option<String>,
        uri: &str,
    ) -> Result<NetworkConnectorInfo, NetworkError> {
        let parsed: NetworkUri = uri.parse()?;
        if parsed.has_tls_peer() && self.tls.is_none() {
            return Err(NetworkError::NeedsCa);
        }
        let mut g = self.lock();
        let name = match (name, &parsed.options().name) {
            (Some(n), Some(u)) if n != *u => {
                return Err(NetworkError::NameMismatch {
                    given: n,
                    in_uri: u.clone(),
                });
            }
            (Some(n), _) => n,
            (None, Some(u)) => u.clone(),
            (None, None) => loop {
                let n = next_name(&mut g);
                if !g.defs.iter().any(|d| d.name == n) {
                    break n;
                }
            },
        };
        if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '/' || c == '?') {
            return Err(NetworkError::BadName(name));
        }
        if g.defs.iter().any(|d| d.name == name) {
            return Err(NetworkError::Duplicate(name));
        }
        let def = Def {
            name: name.clone(),
            uri: uri.trim().to_string(),
            parsed,
            runtime: true,
        };
        let broker = self.broker_name.clone();
        if let Some(r) = g.running.as_mut() {
            let l = launch(&r.core, &broker, &def, &r.cancel, self.tls.clone());
            r.live.insert(name.clone(), l);
        }
        tracing::info!(connector = %name, uri = %redact_uri(&def.uri), "network connector added");
        g.defs.push(def);
        self.save(&g);
        let d = g.defs.last().map(|d| info(&g, d));
        d.ok_or(NetworkError::NotFound(name))
    }

    /// Removes a connector and stops its bridges (their messages stay in the local store).
    pub async fn remove(&self, name: &str) -> Result<(), NetworkError> {
        let live = {
            let mut g = self.lock();
            let before = g.defs.len();
            g.defs.retain(|d| d.name != name);
            if g.defs.len() == before {
                return Err(NetworkError::NotFound(name.to_string()));
            }
            self.save(&g);
            g.running.as_mut().and_then(|r| r.live.remove(name))
        };
        if let Some(l) = live {
            l.cancel.cancel();
            l.tracker.close();
            l.tracker.wait().await;
        }
        tracing::info!(connector = %name, "network connector removed");
        Ok(())
    }
}

fn next_name(g: &mut Inner) -> String {
    g.next += 1;
    format!("nc-{}", g.next)
}

fn info(g: &Inner, d: &Def) -> NetworkConnectorInfo {
    let peers = g
        .running
        .as_ref()
        .and_then(|r| r.live.get(&d.name))
        .map(|l| {
            l.peers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|p| p.info())
                .collect()
        })
        .unwrap_or_default();
    let mut options = d.parsed.options().to_map();
    options.insert("name".into(), d.name.clone());
    NetworkConnectorInfo {
        name: d.name.clone(),
        uri: redact_uri(&d.uri),
        options,
        peers,
    }
}

/// Starts the bridges of one connector.
fn launch(
    core: &Core,
    local: &Arc<str>,
    d: &Def,
    parent: &CancellationToken,
    tls: Option<Arc<mq_shared::tls::ClientConfig>>,
) -> Live {
    let cancel = parent.child_token();
    let tracker = TaskTracker::new();
    let peers: Arc<Mutex<Vec<Arc<PeerStatus>>>> = Arc::default();
    let cfg = Arc::new(BridgeConfig {
        local: local.clone(),
        connector: d.name.clone(),
        options: d.parsed.options().clone(),
        tls,
    });
    match &d.parsed {
        NetworkUri::Static { peers: list, .. } => {
            for p in list {
                let uri = p.redacted().to_string();
                let status = Arc::new(PeerStatus::new(&uri));
                peers
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(status.clone());
                let target = Target {
                    uri,
                    endpoints: p.endpoints(),
                };
                bridge::spawn(
                    &tracker,
                    core.clone(),
                    cfg.clone(),
                    target,
                    status,
                    cancel.clone(),
                );
            }
        }
        NetworkUri::Multicast { discovery, .. } => {
            tracker.spawn(discovery::run_connector(
                core.clone(),
                cfg.clone(),
                discovery.clone(),
                peers.clone(),
                cancel.clone(),
                tracker.clone(),
            ));
        }
    }
    Live {
        cancel,
        tracker,
        peers,
    }
}
