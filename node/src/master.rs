//! What runs while a node is master: the store, the broker core over it, the transport
//! connectors, the expiry sweep, the scheduler and the network bridges; and how it all stops.
//!
//! Threads: the store has its own writer thread (`store-writer`, group commits and the
//! completions that enqueue and dispatch persistent messages); recovery runs on a blocking
//! thread; every listener, connection, bridge and the sweep is a tokio task, tracked so that a
//! stop waits for all of them before the store closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use mq_shared::api::Role;
use mq_shared::uri::TransportUri;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::{BrokerSettings, Core};
use crate::node::{NodeError, NodeState, Serving};
use crate::store::Store;
use crate::transport;

/// How much longer than `shutdown-grace` a stop waits for its tasks before it goes on.
const STOP_BACKSTOP: std::time::Duration = std::time::Duration::from_secs(2);

/// Name of the store file in the data directory.
pub const STORE_FILE: &str = "store.redb";
/// Folder of the temp store (non-persistent messages past `memory-usage`, nodes without
/// persistence) in the data directory.
pub const TEMP_DIR: &str = "tmp";

/// What runs while master, and how to stop it.
pub struct MasterParts {
    stop: CancellationToken,
    tracker: TaskTracker,
    store: Option<Store>,
    /// The temp store of a node without persistence (non-persistent messages past
    /// `memory-usage`).
    temp: Option<Store>,
    core: Core,
    state: Arc<NodeState>,
}

impl MasterParts {
    /// The store this master serves from (`None` without persistence).
    pub fn store(&self) -> Option<Store> {
        self.store.clone()
    }

    /// Stops bridges, transports and connections, then closes the store.
    ///
    /// Connections get `shutdown-grace` to receive what they are owed (receipts of commits
    /// in flight); no client can hold the stop, a stepdown or a lost lock longer than that.
    pub async fn stop(self) {
        let grace = self.state.config.shutdown_grace;
        self.stop.cancel();
        self.state.network.stop().await;
        self.tracker.close();
        // Every task watches the token; connections give up after the grace by themselves.
        // The bound is a backstop that says so in the log.
        if tokio::time::timeout(grace + STOP_BACKSTOP, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::error!(
                grace_ms = grace.as_millis() as u64,
                "tasks still running after the shutdown grace; closing the store anyway"
            );
        }
        if let Some(s) = self.store {
            // Connections are closed, so their unacked messages are back in their queues with
            // a delivery count: record those, so they go out again with redelivered:true.
            let marks = self.core.delivery_marks();
            // Commits everything already submitted, then closes the file.
            tokio::task::spawn_blocking(move || s.close_marking(marks))
                .await
                .ok();
        }
        if let Some(t) = self.temp {
            tokio::task::spawn_blocking(move || t.close()).await.ok();
        }
    }
}

/// Opens the store, recovers, binds the transports and starts serving. With `fence` (a master
/// of `--ha jdbc`), every transaction of the PostgreSQL store checks that lease first.
pub async fn become_master(
    state: &Arc<NodeState>,
    fence: Option<crate::store::pg::Fence>,
) -> Result<MasterParts, NodeError> {
    let cfg = &state.config;
    let began = Instant::now();
    // redb's page cache and the changes between checkpoints follow memory-usage (not redb's
    // 1 GiB cache); a replicated group's master waits for its quorum at every group commit.
    let opts = crate::store::Options {
        replication: state.replication.hook(),
        ..crate::store::Options::sized_for(cfg.usage.memory)
    };
    let (store, temp, recovered) = if let (true, Some(pg)) = (cfg.persistent, &cfg.store) {
        // The PostgreSQL store: its writer thread connects, migrates and recovers.
        let pg = pg.clone();
        let (s, r) = tokio::task::spawn_blocking(move || Store::open_postgres(&pg, fence))
            .await
            .map_err(|e| NodeError::Task(e.to_string()))??;
        (Some(s), None, r)
    } else if cfg.persistent {
        let path = cfg.data_dir.join(STORE_FILE);
        let (s, r) = tokio::task::spawn_blocking(move || Store::open_with(&path, &opts))
            .await
            .map_err(|e| NodeError::Task(e.to_string()))??;
        (Some(s), None, r)
    } else {
        // Without persistence, messages past memory-usage spill to a temp store that starts
        // empty each time.
        let dir = cfg.data_dir.join(TEMP_DIR);
        let t = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir).map_err(|e| crate::store::StoreError::Open {
                path: dir.display().to_string(),
                source: Arc::new(e.into()),
            })?;
            Store::open_temporary(&dir.join(STORE_FILE))
        })
        .await
        .map_err(|e| NodeError::Task(e.to_string()))??;
        (None, Some(t), crate::store::Recovery::default())
    };
    let usage = Arc::new(crate::broker::usage::Usage::new(
        cfg.usage.clone(),
        Some(cfg.data_dir.clone()),
    ));
    let opened = Instant::now();
    let core = Core::new(
        BrokerSettings {
            name: cfg.name.clone(),
            persistent: cfg.persistent,
            max_redeliveries: cfg.maximum_redeliveries,
            dlq: cfg.dlq.clone(),
            prefetch: cfg.prefetch,
            max_prefetch: cfg.max_prefetch,
            pending_message_limit: cfg.pending_message_limit,
            gc_inactive_after: cfg.gc_inactive_after,
            scheduler_support: cfg.scheduler_support,
            offline_durable_timeout: cfg.offline_durable_timeout,
        },
        store.clone(),
        temp.clone(),
        recovered,
        usage,
    );
    core.recover_durables().await;
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
                for s in [store, temp].into_iter().flatten() {
                    tokio::task::spawn_blocking(move || s.close()).await.ok();
                }
                return Err(NodeError::Bind {
                    what: "transport",
                    addr: t.redacted().to_string(),
                    error,
                });
            }
        }
    }
    let stop = state.shutdown.child_token();
    let tracker = TaskTracker::new();
    let settings = Arc::new(cfg.transport.clone());
    let connectors = transport::Connectors {
        broker: core.clone(),
        // One `maximum-connections` budget for every transport of the node.
        slots: Arc::new(tokio::sync::Semaphore::new(settings.maximum_connections)),
        settings,
        shutdown: stop.clone(),
        tracker: tracker.clone(),
    };
    let mut bound = Vec::new();
    // Bound transports to advertise for multicast discovery: those with a discoveryUri, or
    // all of them with --discovery.
    let node_discovery: Option<mq_shared::uri::DiscoveryUri> =
        cfg.discovery.as_deref().and_then(|d| d.parse().ok());
    let mut adverts = Vec::new();
    for (l, uri) in listeners {
        let local: SocketAddr = l.local_addr().map_err(|error| NodeError::Bind {
            what: "transport",
            addr: uri.redacted().to_string(),
            error,
        })?;
        let mut u: TransportUri = uri.clone();
        u.addr.port = local.port();
        let tls = match (uri.is_tls(), &cfg.tls) {
            (true, Some(files)) => match mq_shared::tls::server_config(files, uri.need_client_auth)
            {
                Ok(c) => Some(mq_shared::tls::TlsAcceptor::from(c)),
                Err(e) => {
                    return Err(NodeError::Config(crate::config::ConfigError::Invalid {
                        key: "tls-cert",
                        message: e.to_string(),
                    }));
                }
            },
            _ => None,
        };
        // STOMP over WebSocket: its own accept loop (the upgrade first), then the same
        // connection task as TCP; not advertised for discovery (bridges speak TCP).
        if u.is_websocket() {
            bound.push(u.endpoint_string());
            tracker.spawn(transport::websocket::serve(l, tls, connectors.clone()));
            continue;
        }
        bound.push(u.addr.to_uri_string());
        if let Some(d) = u.discovery.clone().or_else(|| node_discovery.clone()) {
            adverts.push((d, u.addr.to_uri_string()));
        }
        tracker.spawn(transport::serve(l, tls, connectors.clone()));
    }
    // Sweeps: expired messages, and (with gc-inactive-destinations) destinations nobody uses.
    let gc_period = cfg.gc_inactive_after.map(|after| {
        (after / 4).clamp(
            std::time::Duration::from_millis(50),
            std::time::Duration::from_secs(10),
        )
    });
    // Offline durable subscriptions past offline-durable-subscriber-timeout.
    let offline_period = cfg.offline_durable_timeout.map(|after| {
        (after / 4).clamp(
            std::time::Duration::from_millis(50),
            std::time::Duration::from_secs(10),
        )
    });
    for (period, sweep) in [
        (
            Some(mq_shared::defaults::EXPIRE_MESSAGES_PERIOD),
            Core::expire_sweep as fn(&Core),
        ),
        (gc_period, |c: &Core| {
            c.gc_inactive();
        }),
        (offline_period, Core::sweep_offline_durables),
    ] {
        let Some(period) = period else { continue };
        let core = core.clone();
        let stop = stop.clone();
        tracker.spawn(async move {
            let mut t = tokio::time::interval(period);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = t.tick() => sweep(&core),
                }
            }
        });
    }
    // The scheduler: reads the first window of stored jobs and fires what is overdue.
    tracker.spawn(core.clone().run_scheduler(stop.clone()));
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
        temp,
        core: serving_core,
        state: state.clone(),
    })
}
