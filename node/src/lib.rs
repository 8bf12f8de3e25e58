//! # mqnode: one broker node of mq
//!
//! ```text
//! client ──STOMP──▶ transport (connection task) ──▶ broker::Core ──▶ Queue / Topic ──▶ consumer
//!                                                     │    ▲                       └──▶ bridge ──▶ peer node
//!                                                     ▼    │ recovery
//!                                                   store (redb, group commit)
//! admin API (axum) ──▶ NodeState ──▶ Core (stats, send, browse, purge), HA (stepdown), shutdown
//! ```
//!
//! Layout: [`config`] (flags and TOML), [`broker`] (destinations and delivery rules), [`store`]
//! (redb), [`transport`] (STOMP connections), [`ha`] (store lock and roles), [`admin`] (HTTP
//! API). The embeddable entry point is [`Broker::builder`], which mirrors ActiveMQ's
//! `BrokerService`; the `mqnode` binary is a thin shell around it.

pub mod admin;
pub mod broker;
pub mod config;
pub mod ha;
pub mod network;
pub mod store;
pub mod transport;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use mq_shared::api::{ReadyEvent, Role};
use mq_shared::uri::TransportUri;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::{BrokerSettings, Core};
use crate::config::NodeConfig;
use crate::ha::StoreLock;
use crate::store::Store;

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
    /// A configuration value is invalid.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
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
    /// Current role.
    pub fn role(&self) -> Role {
        *self.role.borrow()
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

    fn set_serving(&self, s: Option<Serving>) {
        *self.serving.write().unwrap_or_else(|e| e.into_inner()) = s;
    }

    fn set_stepdown_term(&self, term: Option<CancellationToken>) {
        *self.stepdown.lock().unwrap_or_else(|e| e.into_inner()) = term;
    }

    /// Stops reporting master (admin API, `/readyz`) before the store and lock are let go, so
    /// that no instant exists at which two nodes of a group claim to be master.
    fn withdraw(&self) {
        self.set_serving(None);
        self.set_stepdown_term(None);
        self.role.send_replace(Role::Slave);
    }

    fn emit(&self, role: Role, transports: Vec<String>) {
        self.role.send_replace(role);
        let _ = self.events.send(ReadyEvent {
            event: "ready".into(),
            name: self.config.name.clone(),
            role,
            admin: self.admin_url.clone(),
            transports,
        });
    }
}

/// Builder of a node, mirroring ActiveMQ's `BrokerService` setters.
#[derive(Debug, Default)]
pub struct BrokerBuilder {
    config: NodeConfig,
    transports: Vec<String>,
    networks: Vec<String>,
    admin: Option<String>,
}

impl BrokerBuilder {
    /// Broker name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.config.name = name.into();
        self
    }
    /// Store persistent messages.
    pub fn persistent(mut self, p: bool) -> Self {
        self.config.persistent = p;
        self
    }
    /// Data directory.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.data_dir = dir.into();
        self
    }
    /// Adds a transport connector (`tcp://HOST:PORT`).
    pub fn transport(mut self, uri: impl Into<String>) -> Self {
        self.transports.push(uri.into());
        self
    }
    /// Adds a network connector (`static:(...)` or `multicast://default`).
    pub fn network(mut self, uri: impl Into<String>) -> Self {
        self.networks.push(uri.into());
        self
    }
    /// Admin API address (`HOST:PORT`).
    pub fn admin(mut self, addr: impl Into<String>) -> Self {
        self.admin = Some(addr.into());
        self
    }
    /// Starts from a complete configuration (what the binary does).
    pub fn config(mut self, config: NodeConfig) -> Self {
        self.config = config;
        self
    }

    /// Validates, binds the admin API and starts the role machine. Returns once the node is
    /// serving as master or waiting as slave.
    pub async fn start(self) -> Result<Broker, NodeError> {
        let mut config = self.config;
        for t in self.transports {
            config
                .transports
                .push(t.parse().map_err(|e: mq_shared::uri::UriError| {
                    config::ConfigError::Invalid {
                        key: "transport",
                        message: e.to_string(),
                    }
                })?);
        }
        for n in self.networks {
            config
                .networks
                .push(n.parse().map_err(|e: mq_shared::uri::UriError| {
                    config::ConfigError::Invalid {
                        key: "network",
                        message: e.to_string(),
                    }
                })?);
            config.network_uris.push(n);
        }
        if let Some(a) = self.admin {
            config.admin = config::parse_admin(&a)?;
        }
        if config.transports.is_empty() {
            config
                .transports
                .push(mq_shared::defaults::TRANSPORT_URI.parse().map_err(
                    |e: mq_shared::uri::UriError| config::ConfigError::Invalid {
                        key: "transport",
                        message: e.to_string(),
                    },
                )?);
        }
        start(config, CancellationToken::new()).await
    }
}

/// A running node.
pub struct Broker {
    state: Arc<NodeState>,
    events: Option<mpsc::UnboundedReceiver<ReadyEvent>>,
    done: tokio::task::JoinHandle<Result<(), NodeError>>,
}

impl Broker {
    /// A builder with ActiveMQ's defaults.
    pub fn builder() -> BrokerBuilder {
        BrokerBuilder::default()
    }

    /// Shared state (admin API, tests).
    pub fn state(&self) -> &Arc<NodeState> {
        &self.state
    }

    /// Admin base URL.
    pub fn admin_url(&self) -> &str {
        &self.state.admin_url
    }

    /// Bound transport URIs while master.
    pub fn transports(&self) -> Vec<String> {
        self.state
            .serving()
            .map(|s| s.transports)
            .unwrap_or_default()
    }

    /// The ready events (one per role taken); can be taken once.
    pub fn take_events(&mut self) -> Option<mpsc::UnboundedReceiver<ReadyEvent>> {
        self.events.take()
    }

    /// Asks the node to stop (as SIGTERM does).
    pub fn stop(&self) {
        self.state.shutdown.cancel();
    }

    /// Waits until the node has stopped: connections closed, commits finished, store closed.
    pub async fn wait(self) -> Result<(), NodeError> {
        match self.done.await {
            Ok(r) => r,
            Err(e) => Err(NodeError::Store(store::StoreError::Task(format!(
                "node task failed: {e}"
            )))),
        }
    }
}

/// Starts a node from a validated configuration; `shutdown` stops it.
pub async fn start(config: NodeConfig, shutdown: CancellationToken) -> Result<Broker, NodeError> {
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
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let (role, _) = watch::channel(Role::Slave);
    let state = Arc::new(NodeState {
        network: network::Manager::new(config.name.clone(), Some(&config.data_dir)),
        config,
        started: Instant::now(),
        admin_url: format!("http://{admin_addr}"),
        role,
        serving: RwLock::new(None),
        events: events_tx,
        shutdown,
        stepdown: std::sync::Mutex::new(None),
    });
    let tracker = TaskTracker::new();
    tracker.spawn(admin::serve(admin_listener, state.clone()));

    // Take the first role before returning, so a port in use is reported by start().
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let st = state.clone();
    let done = tokio::spawn(async move {
        let r = role_machine(st.clone(), Some(ready_tx)).await;
        st.shutdown.cancel();
        tracker.close();
        tracker.wait().await;
        r
    });
    match ready_rx.await {
        Ok(Ok(())) => Ok(Broker {
            state,
            events: Some(events_rx),
            done,
        }),
        Ok(Err(e)) => {
            let _ = done.await;
            Err(e)
        }
        Err(_) => match done.await {
            Ok(Err(e)) => Err(e),
            _ => Err(NodeError::Store(store::StoreError::Closed)),
        },
    }
}

type ReadySignal = Option<tokio::sync::oneshot::Sender<Result<(), NodeError>>>;

fn signal(ready: &mut ReadySignal, r: Result<(), NodeError>) -> Result<(), NodeError> {
    match ready.take() {
        Some(tx) => {
            // The first outcome goes to start(); a failure is also the node's end.
            let failed = r.is_err();
            let _ = tx.send(r);
            if failed {
                Err(NodeError::Store(store::StoreError::Closed))
            } else {
                Ok(())
            }
        }
        None => r,
    }
}

/// Slave → master → (stepdown or lock lost) → slave …, until shutdown.
async fn role_machine(state: Arc<NodeState>, mut ready: ReadySignal) -> Result<(), NodeError> {
    let cfg = state.config.clone();
    let mut announced_slave = false;
    loop {
        // Slave phase: wait for the lock.
        let lock = loop {
            match StoreLock::try_acquire(&cfg.data_dir, &cfg.name) {
                Ok(Some(l)) => break l,
                Ok(None) => {
                    if !announced_slave {
                        tracing::info!(
                            dir = %cfg.data_dir.display(),
                            holder = %ha::LockRecord::read(&cfg.data_dir)
                                .map_or_else(|| "unknown".to_string(), |r| r.to_string()),
                            interval_ms = cfg.lock_acquire_sleep_interval.as_millis() as u64,
                            "store is locked by another node; waiting as slave"
                        );
                        state.emit(Role::Slave, Vec::new());
                        announced_slave = true;
                        signal(&mut ready, Ok(()))?;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot try the store lock; stopping");
                    return signal(&mut ready, Err(e.into()));
                }
            }
            tokio::select! {
                _ = state.shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(cfg.lock_acquire_sleep_interval) => {}
            }
        };
        tracing::info!(
            dir = %cfg.data_dir.display(),
            previous = %lock.previous().map_or_else(|| "none".to_string(), |r| r.to_string()),
            "store lock taken; starting as master"
        );
        if lock.fenced() && cfg.data_dir.join(STORE_FILE).exists() {
            // Not handed over on this very file: a master may still hold a replaced one. Give
            // its keep-alive check one period to notice and demote (see `ha`).
            tracing::warn!(
                wait_ms = cfg.lock_keep_alive_period.as_millis() as u64,
                "the lock file is new or was replaced; waiting one lockKeepAlivePeriod before serving"
            );
            tokio::select! {
                _ = state.shutdown.cancelled() => {
                    lock.release();
                    return signal(&mut ready, Ok(()));
                }
                _ = tokio::time::sleep(cfg.lock_keep_alive_period) => {}
            }
            if !lock.still_held() {
                tracing::warn!("the lock file was replaced again while waiting; back to slave");
                lock.release();
                continue;
            }
        }
        let term = CancellationToken::new();
        state.set_stepdown_term(Some(term.clone()));
        let serving = match take_over(&state, &lock).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                state.withdraw();
                lock.release();
                if state.shutdown.is_cancelled() {
                    return signal(&mut ready, Ok(()));
                }
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot serve; stopping");
                state.withdraw();
                lock.release();
                return signal(&mut ready, Err(e));
            }
        };
        signal(&mut ready, Ok(()))?;
        // Master phase.
        let mut keepalive = tokio::time::interval(cfg.lock_keep_alive_period);
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let reason = loop {
            tokio::select! {
                _ = state.shutdown.cancelled() => break Demote::Shutdown,
                _ = term.cancelled() => break Demote::Stepdown,
                _ = keepalive.tick() => {
                    if !lock.still_held() {
                        tracing::error!(
                            dir = %cfg.data_dir.display(),
                            "the store lock file was removed or replaced; demoting to slave so there are never two masters"
                        );
                        break Demote::LockLost;
                    }
                }
            }
        };
        let since = Instant::now();
        state.withdraw();
        serving.stop().await;
        lock.release();
        let took_ms = since.elapsed().as_millis() as u64;
        match reason {
            Demote::Shutdown => {
                tracing::info!(took_ms, "stopped; store closed and lock released");
                return Ok(());
            }
            Demote::Stepdown => {
                tracing::info!(
                    took_ms,
                    backoff_ms = mq_shared::defaults::STEPDOWN_BACKOFF_MS,
                    "stepped down: store closed and lock released; waiting as slave"
                );
                state.emit(Role::Slave, Vec::new());
                announced_slave = true;
                tokio::select! {
                    _ = state.shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_millis(mq_shared::defaults::STEPDOWN_BACKOFF_MS)) => {}
                }
            }
            Demote::LockLost => {
                tracing::info!(took_ms, "demoted: store closed; waiting as slave");
                state.emit(Role::Slave, Vec::new());
                announced_slave = true;
            }
        }
    }
}

/// Name of the store file in the data directory.
const STORE_FILE: &str = "store.redb";

/// Opens the store and serves, holding `lock`. A store still open by another process (a master
/// that lost its lock file and is closing) is retried every `lockAcquireSleepInterval` while the
/// lock stays ours. `Ok(None)`: shutdown, or the lock file was replaced meanwhile.
async fn take_over(
    state: &Arc<NodeState>,
    lock: &StoreLock,
) -> Result<Option<MasterParts>, NodeError> {
    let cfg = &state.config;
    let mut logged = false;
    loop {
        match become_master(state).await {
            Ok(parts) => return Ok(Some(parts)),
            Err(NodeError::Store(store::StoreError::AlreadyOpen { path })) => {
                if !logged {
                    tracing::warn!(
                        store = %path,
                        "the store is still open by another process; waiting for it to close"
                    );
                    logged = true;
                }
            }
            Err(e) => return Err(e),
        }
        tokio::select! {
            _ = state.shutdown.cancelled() => return Ok(None),
            _ = tokio::time::sleep(cfg.lock_acquire_sleep_interval) => {}
        }
        if !lock.still_held() {
            tracing::warn!(
                "the store lock file was replaced while waiting for the store; back to slave"
            );
            return Ok(None);
        }
    }
}

enum Demote {
    Shutdown,
    Stepdown,
    LockLost,
}

/// What runs while master, and how to stop it.
struct MasterParts {
    stop: CancellationToken,
    tracker: TaskTracker,
    store: Option<Store>,
    core: Core,
    state: Arc<NodeState>,
}

impl MasterParts {
    async fn stop(self) {
        self.state.network.stop().await;
        self.stop.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        if let Some(s) = self.store {
            // Connections are closed, so their unacked messages are back in their queues with
            // a delivery count: record those, so they go out again with redelivered:true.
            let marks = self.core.delivery_marks();
            // Commits everything already submitted, then closes the file.
            tokio::task::spawn_blocking(move || s.close_marking(marks))
                .await
                .ok();
        }
    }
}

async fn become_master(state: &Arc<NodeState>) -> Result<MasterParts, NodeError> {
    let cfg = &state.config;
    let began = Instant::now();
    let (store, recovered) = if cfg.persistent {
        let path = cfg.data_dir.join(STORE_FILE);
        let (s, r) = tokio::task::spawn_blocking(move || Store::open(&path))
            .await
            .map_err(|e| store::StoreError::Task(format!("store open task failed: {e}")))??;
        (Some(s), r)
    } else {
        (None, Vec::new())
    };
    let opened = Instant::now();
    let core = Core::new(
        BrokerSettings {
            name: cfg.name.clone(),
            persistent: cfg.persistent,
            max_redeliveries: cfg.maximum_redeliveries,
            dlq: cfg.dlq.clone(),
            prefetch: cfg.prefetch,
        },
        store.clone(),
        recovered,
    );
    // Where a takeover's time goes: reading the store, then rebuilding the queues.
    tracing::info!(
        open_ms = opened.duration_since(began).as_millis() as u64,
        recover_ms = opened.elapsed().as_millis() as u64,
        "store opened and queues recovered"
    );
    let mut listeners = Vec::new();
    for t in &cfg.transports {
        let addr = t.addr.to_addr_string();
        match TcpListener::bind(&addr).await {
            Ok(l) => listeners.push((l, t.clone())),
            Err(error) => {
                if let Some(s) = store {
                    tokio::task::spawn_blocking(move || s.close()).await.ok();
                }
                return Err(NodeError::Bind {
                    what: "transport",
                    addr: t.to_string(),
                    error,
                });
            }
        }
    }
    let stop = state.shutdown.child_token();
    let tracker = TaskTracker::new();
    let settings = Arc::new(cfg.transport.clone());
    let mut bound = Vec::new();
    // Bound transports to advertise for multicast discovery: those with a discoveryUri, or
    // all of them with --discovery.
    let node_discovery: Option<mq_shared::uri::DiscoveryUri> =
        cfg.discovery.as_deref().and_then(|d| d.parse().ok());
    let mut adverts = Vec::new();
    for (l, uri) in listeners {
        let local: SocketAddr = l.local_addr().map_err(|error| NodeError::Bind {
            what: "transport",
            addr: uri.to_string(),
            error,
        })?;
        let mut u: TransportUri = uri.clone();
        u.addr.port = local.port();
        bound.push(format!("tcp://{}", u.addr.to_addr_string()));
        if let Some(d) = u.discovery.clone().or_else(|| node_discovery.clone()) {
            adverts.push((d, format!("tcp://{}", u.addr.to_addr_string())));
        }
        tracker.spawn(transport::serve(
            l,
            core.clone(),
            settings.clone(),
            stop.clone(),
            tracker.clone(),
        ));
    }
    // Expiry sweep.
    {
        let core = core.clone();
        let stop = stop.clone();
        tracker.spawn(async move {
            let mut t = tokio::time::interval(mq_shared::defaults::EXPIRE_MESSAGES_PERIOD);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = t.tick() => core.expire_sweep(),
                }
            }
        });
    }
    state
        .network
        .start(core.clone(), &cfg.networks, &cfg.network_uris, adverts);
    let serving_core = core.clone();
    state.set_serving(Some(Serving {
        core,
        transports: bound.clone(),
    }));
    let role = if cfg.persistent {
        Role::Master
    } else {
        Role::Standalone
    };
    tracing::info!(transports = ?bound, %role, "serving");
    state.emit(role, bound);
    Ok(MasterParts {
        stop,
        tracker,
        store,
        core: serving_core,
        state: state.clone(),
    })
}
