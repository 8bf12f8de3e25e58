//! The node: what the admin API and the role machine share ([`NodeState`]), and [`start`],
//! which binds the admin API and runs the role machine (`crate::ha::role`) until shutdown.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use mq_shared::api::{ReadyEvent, Role};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::Core;
use crate::builder::Broker;
use crate::config::{self, NodeConfig};
use crate::{admin, ha, network, store};

/// Why a node could not start or keep serving.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A listener could not be bound (port in use, address not local).
    #[error("cannot listen on {what} {addr}: {error}")]
    Bind {
        /// `transport` or `admin`.
        what: &'static str,
        /// The address.
        addr: String,
        /// The I/O error (in the message, not a separate source, so it is printed once).
        error: std::io::Error,
    },
    /// The data directory could not be created or is not a directory.
    #[error("cannot use data directory {path}: {error}")]
    DataDir {
        /// Directory.
        path: String,
        /// The I/O error (in the message, not a separate source, so it is printed once).
        error: std::io::Error,
    },
    /// The store lock could not be tried.
    #[error(transparent)]
    Lock(#[from] ha::LockError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The lease of `--ha jdbc` could not be used (its database, the clock check).
    #[error(transparent)]
    Lease(#[from] ha::lease::LeaseError),
    /// A configuration value is invalid.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The node stopped before it could take a role (its first failure was reported).
    #[error("the node stopped while starting")]
    Stopped,
    /// The generated admin token could not be written.
    #[error("cannot write the admin token file {path}: {error}")]
    AdminToken {
        /// Token file.
        path: String,
        /// The I/O error (in the message, not a separate source, so it is printed once).
        error: std::io::Error,
    },
    /// The node's main task failed.
    #[error("node task failed: {0}")]
    Task(String),
}

/// What the admin API and the role machine share.
pub struct NodeState {
    /// The configuration the node runs with.
    pub config: NodeConfig,
    /// Process start.
    pub started: Instant,
    /// Admin base URL, e.g. `http://127.0.0.1:8161`.
    pub admin_url: String,
    role: watch::Sender<Role>,
    serving: RwLock<Option<Serving>>,
    events: mpsc::UnboundedSender<ReadyEvent>,
    /// Fires when the whole node must stop.
    pub shutdown: CancellationToken,
    /// Cancelled to ask the current master term to step down; `None` while not master.
    stepdown: std::sync::Mutex<Option<CancellationToken>>,
    /// Network connectors of this node.
    pub network: network::Manager,
    /// The replicated group's state (`--ha replicated`).
    pub replication: ha::replicated::Shared,
}

/// The parts that exist only while the node is master.
#[derive(Clone)]
pub struct Serving {
    /// The broker core.
    pub core: Core,
    /// Bound transport URIs.
    pub transports: Vec<String>,
}

impl NodeState {
    /// Current role: a replicated master whose ZooKeeper lease has ended is a slave already,
    /// before its role machine has stopped serving.
    pub fn role(&self) -> Role {
        let role = *self.role.borrow();
        if role == Role::Master && !self.replication.lease_holds() {
            return Role::Slave;
        }
        role
    }

    /// A receiver that sees every role change.
    pub fn role_changes(&self) -> watch::Receiver<Role> {
        self.role.subscribe()
    }

    /// The serving parts, when master.
    pub fn serving(&self) -> Option<Serving> {
        self.serving
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Asks a master to release the store and wait as a slave. False if not master.
    pub fn request_stepdown(&self) -> bool {
        if self.serving().is_none() {
            return false;
        }
        let term = self.stepdown.lock().unwrap_or_else(|e| e.into_inner());
        match term.as_ref() {
            Some(t) => {
                t.cancel();
                true
            }
            None => false,
        }
    }

    pub(crate) fn set_serving(&self, s: Option<Serving>) {
        *self.serving.write().unwrap_or_else(|e| e.into_inner()) = s;
    }

    pub(crate) fn set_stepdown_term(&self, term: Option<CancellationToken>) {
        *self.stepdown.lock().unwrap_or_else(|e| e.into_inner()) = term;
    }

    /// Stops reporting master (admin API, `/readyz`) before the store and lock are let go, so
    /// that no instant exists at which two nodes of a group claim to be master.
    pub(crate) fn withdraw(&self) {
        self.set_serving(None);
        self.set_stepdown_term(None);
        self.role.send_replace(Role::Slave);
    }

    pub(crate) fn emit(&self, role: Role, transports: Vec<String>) {
        self.role.send_replace(role);
        let _ = self.events.send(ReadyEvent {
            event: "ready".into(),
            name: self.config.name.clone(),
            role,
            admin: self.admin_url.clone(),
            transports,
            admin_token_file: self
                .config
                .admin_token_file
                .as_ref()
                .map(|p| p.display().to_string()),
        });
    }
}

/// Name of the admin token file a node generates in its data directory.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// The token in `DATA/admin.token`, made (mode 0600) when there is none yet: a restarted
/// node, and every member of a master/slave group, keeps the same one.
fn generated_token(dir: &std::path::Path) -> std::io::Result<(String, std::path::PathBuf)> {
    let path = dir.join(ADMIN_TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            Ok((t.trim().to_string(), path))
        }
        Ok(_) | Err(_) => {
            let token = crate::security::secret::new_token();
            crate::security::secret::write_private_file(&path, &format!("{token}\n"))?;
            Ok((token, path))
        }
    }
}

impl NodeState {
    /// `https` when the admin API serves TLS, else `http`.
    pub fn admin_scheme(&self) -> &'static str {
        if self.config.admin_tls.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

/// Starts a node from a validated configuration; `shutdown` stops it.
pub async fn start(
    mut config: NodeConfig,
    shutdown: CancellationToken,
) -> Result<Broker, NodeError> {
    let data_dir_error = |error| NodeError::DataDir {
        path: config.data_dir.display().to_string(),
        error,
    };
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        if config.data_dir.exists() && !config.data_dir.is_dir() {
            data_dir_error(std::io::Error::other("it exists and is not a directory"))
        } else {
            data_dir_error(e)
        }
    })?;
    if config.admin_token.is_none() {
        let (token, path) =
            generated_token(&config.data_dir).map_err(|error| NodeError::AdminToken {
                path: config.data_dir.join(ADMIN_TOKEN_FILE).display().to_string(),
                error,
            })?;
        config.admin_token = Some(token);
        config.admin_token_file = Some(path);
    }
    let admin_listener =
        TcpListener::bind(config.admin)
            .await
            .map_err(|error| NodeError::Bind {
                what: "admin",
                addr: config.admin.to_string(),
                error,
            })?;
    let admin_addr = admin_listener
        .local_addr()
        .map_err(|error| NodeError::Bind {
            what: "admin",
            addr: config.admin.to_string(),
            error,
        })?;
    let admin_url = format!(
        "{}://{admin_addr}",
        if config.admin_tls.is_some() {
            "https"
        } else {
            "http"
        }
    );
    // Bridges to ssl:// peers verify them against the CA and present this node's certificate
    // (if it has one).
    let bridge_tls = match (&config.tls, &config.tls_ca) {
        (Some(files), Some(_)) => Some(files.client_config()),
        (None, Some(ca)) => Some(mq_shared::tls::client_config(ca, None)),
        (_, None) => None,
    }
    .transpose()
    .map_err(|e| {
        NodeError::Config(config::ConfigError::Invalid {
            key: "tls-ca",
            message: e.to_string(),
        })
    })?;
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let (role, _) = watch::channel(Role::Slave);
    let state = Arc::new(NodeState {
        network: network::Manager::new(config.name.clone(), Some(&config.data_dir))
            .with_tls(bridge_tls),
        config,
        started: Instant::now(),
        admin_url,
        role,
        serving: RwLock::new(None),
        events: events_tx,
        shutdown,
        stepdown: std::sync::Mutex::new(None),
        replication: ha::replicated::Shared::default(),
    });
    let tracker = TaskTracker::new();
    tracker.spawn(admin::serve(admin_listener, state.clone()));

    // Take the first role before returning, so a port in use is reported by start().
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let st = state.clone();
    let done = tokio::spawn(async move {
        let r = match st.config.ha {
            crate::config::HaKind::File => ha::role::run(st.clone(), Some(ready_tx)).await,
            crate::config::HaKind::Jdbc => ha::jdbc::run(st.clone(), Some(ready_tx)).await,
            crate::config::HaKind::Replicated => {
                ha::replicated::run(st.clone(), Some(ready_tx)).await
            }
        };
        st.shutdown.cancel();
        tracker.close();
        tracker.wait().await;
        r
    });
    match ready_rx.await {
        Ok(Ok(())) => Ok(Broker::new(state, events_rx, done)),
        Ok(Err(e)) => {
            let _ = done.await;
            Err(e)
        }
        Err(_) => match done.await {
            Ok(Err(e)) => Err(e),
            _ => Err(NodeError::Stopped),
        },
    }
}
