//! The role machine of `--ha replicated`: ActiveMQ's replicated store, members with a store
//! of their own each, the master elected through ZooKeeper ([`crate::ha::zk`]) and its
//! journal streamed to the others.
//!
//! ```text
//!                     ZooKeeper: Replica{master}                 ZooKeeper: Master{epoch}
//!  start ──▶ [slave] ───────────────────────────▶ [replica] ─────────────────────────────▶ [master]
//!   open the store,      follow the master: its groups       close the replica's store, open
//!   read its position,   applied to this store, acked;       it with the Replicator hook, serve;
//!   join the group       a snapshot first when far behind    each group waits for its quorum
//!                                 ▲                                    │ role not Master{epoch}:
//!                                 └──────── [slave] ◀──────────────────┘ lease ended, session lost
//! ```
//!
//! - **Election.** Each member publishes its position (the epoch of its last group, then the
//!   group's number, [`stream::election_position`]) in ZooKeeper; the latest wins, then the
//!   weight. An election needs `replicas / 2 + 1` members, so the winner holds every confirmed
//!   group.
//! - **Confirming.** A master's store calls its [`stream::Replicator`] for every group commit
//!   (see [`crate::store::replication`]): completions, and every RECEIPT, wait until
//!   `replicas / 2 + 1` members hold the group as `sync` says, and until the member checked
//!   its ZooKeeper lease. A master without its quorum confirms nothing; one whose lease ends
//!   stops confirming at once and stops serving (its commits waiting fail, its connections
//!   close).
//! - **Replicas** do not serve clients; they keep the replication link and their store.
//! - **Links** carry the group's token in their hello; with the node's certificate
//!   (`tls-cert`, `tls-key`, `tls-ca`) they are TLS both ways: the master requires a replica
//!   certificate signed by the CA, and a replica verifies the master's for the host it dials
//!   (the `hostname` the master published in ZooKeeper).
//!
//! Files: `options` (the keys), `wire` (the link's frames), `stream` (the master's side),
//! `replica` (a replica's side).

pub mod options;
pub mod replica;
pub mod stream;
pub mod wire;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mq_shared::api::{ReplicaInfo, ReplicationInfo, Role as NodeRole};
use mq_shared::tls::{ClientConfig, TlsAcceptor};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use self::options::ReplicatedConfig;
use self::replica::{Follower, ReplicaStatus};
use self::stream::{Replicator, election_position};
use super::role::{ReadySignal, signal};
use super::zk::{Role as ZkRole, ZkConfig, ZkError, ZkMember};
use crate::config::ConfigError;
use crate::master::{STORE_FILE, become_master};
use crate::node::{NodeError, NodeState};
use crate::store::Store;
use crate::store::replication::ReplicationHook;

/// Pause between attempts to follow a master that does not answer.
const FOLLOW_RETRY: Duration = Duration::from_millis(200);

/// What the node, its master start-up and its admin API see of replication.
#[derive(Default)]
pub struct Shared {
    hook: Mutex<Option<ReplicationHook>>,
    status: Mutex<Status>,
}

#[derive(Default, Clone)]
enum Status {
    #[default]
    None,
    Waiting {
        epoch: u64,
    },
    Master {
        rep: Arc<Replicator>,
        name: String,
    },
    Replica {
        epoch: u64,
        master: String,
        name: String,
        status: Arc<ReplicaStatus>,
    },
}

impl Shared {
    /// The hook a master's store is opened with (set while it becomes master).
    pub fn hook(&self) -> Option<ReplicationHook> {
        self.hook.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_hook(&self, h: Option<ReplicationHook>) {
        *self.hook.lock().unwrap_or_else(|e| e.into_inner()) = h;
    }

    fn set_status(&self, s: Status) {
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = s;
    }

    /// Whether a replicated master still holds its ZooKeeper lease (true for every other
    /// role and HA kind). A master paused past its session learns it lost the role only when
    /// its watch runs again; until then this already says so, so it never reports itself
    /// master beside the member that replaced it.
    pub fn lease_holds(&self) -> bool {
        match &*self.status.lock().unwrap_or_else(|e| e.into_inner()) {
            Status::Master { rep, .. } => rep.holds(),
            _ => true,
        }
    }

    /// `replication` of `GET /api/v1/broker`; `None` unless `--ha replicated`.
    pub fn info(&self) -> Option<ReplicationInfo> {
        let s = self
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match s {
            Status::None => None,
            Status::Waiting { epoch } => Some(ReplicationInfo {
                epoch,
                master: None,
                replicas: Vec::new(),
            }),
            Status::Master { rep, name } => Some(ReplicationInfo {
                epoch: rep.epoch(),
                master: Some(name),
                replicas: rep.replicas(),
            }),
            Status::Replica {
                epoch,
                master,
                name,
                status,
            } => {
                let head = status.head.load(Ordering::Relaxed);
                let durable = status.durable.load(Ordering::Relaxed);
                Some(ReplicationInfo {
                    epoch,
                    master: Some(master),
                    replicas: vec![ReplicaInfo {
                        name,
                        state: (*status.state.lock().unwrap_or_else(|e| e.into_inner())).into(),
                        lag_records: head.saturating_sub(durable),
                    }],
                })
            }
        }
    }
}

fn config(state: &NodeState) -> Result<ReplicatedConfig, NodeError> {
    state.config.replicated.clone().ok_or_else(|| {
        NodeError::Config(ConfigError::Invalid {
            key: "ha",
            message: "replicated without its options".into(),
        })
    })
}

enum Demote {
    Shutdown,
    Stepdown,
    Lost,
}

/// Slave → replica or master → … until shutdown.
pub async fn run(state: Arc<NodeState>, mut ready: ReadySignal) -> Result<(), NodeError> {
    let rc = match config(&state) {
        Ok(c) => c,
        Err(e) => return signal(&mut ready, Err(e)),
    };
    let cfg = state.config.clone();
    let (acceptor, connector) = match link_tls(&rc, &cfg) {
        Ok(t) => t,
        Err(e) => return signal(&mut ready, Err(e)),
    };
    let listener = match TcpListener::bind(rc.bind).await {
        Ok(l) => l,
        Err(error) => {
            return signal(
                &mut ready,
                Err(NodeError::Bind {
                    what: "replication",
                    addr: rc.bind.to_string(),
                    error,
                }),
            );
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let advertised = format!("{}:{port}", rc.hostname);
    let published = Arc::new(AtomicU64::new(0));
    let replica_status = Arc::new(ReplicaStatus::default());
    let follower = Follower {
        name: cfg.name.clone(),
        token: rc.token.clone(),
        tls: connector,
        path: cfg.data_dir.join(STORE_FILE),
        opts: crate::store::Options {
            cache_bytes: (cfg.usage.memory / 4).max(4 << 20) as usize,
            ..crate::store::Options::default()
        },
        published: published.clone(),
        status: replica_status.clone(),
        sync: rc.sync,
    };
    let mut store: Option<Store> = None;
    let mine = match follower.open(&mut store).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "cannot open the store; stopping");
            return signal(&mut ready, Err(e.into()));
        }
    };
    tracing::info!(
        listener = %advertised,
        tls = acceptor.is_some(),
        epoch = mine.epoch,
        position = mine.pos,
        "replicated store opened; joining the group in ZooKeeper"
    );
    // The listener serves replicas while this member is master.
    let serving_links: Arc<Mutex<Option<Arc<Replicator>>>> = Arc::default();
    {
        let links = serving_links.clone();
        let stop = state.shutdown.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = stop.cancelled() => return,
                    a = listener.accept() => a,
                };
                let Ok((sock, peer)) = accepted else {
                    continue;
                };
                let rep = links.lock().unwrap_or_else(|e| e.into_inner()).clone();
                match rep {
                    Some(r) => {
                        let acceptor = acceptor.clone();
                        tokio::spawn(async move {
                            match mq_shared::tls::accept(sock, acceptor.as_ref()).await {
                                Ok(link) => stream::serve_link(r, link).await,
                                Err(e) => {
                                    tracing::warn!(%peer, error = %e, "replication link refused")
                                }
                            }
                        });
                    }
                    None => {
                        tracing::debug!(%peer, "a replica connected to a member that is not master")
                    }
                }
            }
        });
    }
    let position = published.clone();
    let zcfg = ZkConfig {
        address: rc.zk_address.clone(),
        path: rc.zk_path.clone(),
        session_timeout: rc.zk_session_timeout,
        name: cfg.name.clone(),
        replication_address: advertised.clone(),
        weight: rc.weight,
        quorum: rc.quorum(),
        position: Arc::new(move || position.load(Ordering::Relaxed)),
    };
    state.set_replication_status_waiting();
    state.emit(NodeRole::Slave, Vec::new());
    signal(&mut ready, Ok(()))?;
    let mut joined: Option<Arc<ZkMember>> = None;
    let mut warned = false;
    loop {
        let zk = match &joined {
            Some(z) => z.clone(),
            None => {
                let j = tokio::select! {
                    () = state.shutdown.cancelled() => break,
                    j = ZkMember::join(zcfg.clone()) => j,
                };
                match j {
                    Ok(m) => {
                        let m = Arc::new(m);
                        joined = Some(m.clone());
                        warned = false;
                        m
                    }
                    Err(ZkError::Config(e)) => {
                        tracing::error!(error = %e, "cannot join the group; stopping");
                        close(store.take()).await;
                        return Err(NodeError::Config(ConfigError::Invalid {
                            key: "zk-address",
                            message: e,
                        }));
                    }
                    Err(e) => {
                        if !warned {
                            tracing::warn!(error = %e, "cannot reach ZooKeeper; waiting as slave and trying again");
                            warned = true;
                        }
                        tokio::select! {
                            () = state.shutdown.cancelled() => break,
                            () = tokio::time::sleep(rc.zk_session_timeout / 2) => {}
                        }
                        continue;
                    }
                }
            }
        };
        let mut roles = zk.watch();
        let role = roles.borrow_and_update().clone();
        let next = match role {
            ZkRole::Master { epoch } => {
                close(store.take()).await;
                let base = match read_position(&follower).await {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the store's position; stopping");
                        leave(joined).await;
                        return Err(e);
                    }
                };
                // Weak: the fence must not keep the member (and its session) alive.
                let fence_zk = Arc::downgrade(&zk);
                let rep = Replicator::new(
                    &rc,
                    epoch,
                    base,
                    Box::new(move || {
                        fence_zk
                            .upgrade()
                            .is_some_and(|z| z.master_epoch() == Some(epoch))
                    }),
                    published.clone(),
                );
                tracing::info!(
                    epoch,
                    position = base.pos,
                    "elected master; opening the store for the group"
                );
                state.replication.set_hook(Some(rep.clone()));
                let term = CancellationToken::new();
                state.set_stepdown_term(Some(term.clone()));
                let serving = match become_master(&state, None).await {
                    Ok(s) => s,
                    Err(e) => {
                        state.replication.set_hook(None);
                        state.withdraw();
                        tracing::error!(error = %e, "cannot serve; stopping");
                        drop(zk);
                        leave(joined).await;
                        return Err(e);
                    }
                };
                state.replication.set_hook(None);
                if let Some(s) = serving.store() {
                    rep.attach(s);
                }
                *serving_links.lock().unwrap_or_else(|e| e.into_inner()) = Some(rep.clone());
                state.replication.set_status(Status::Master {
                    rep: rep.clone(),
                    name: cfg.name.clone(),
                });
                let reason = loop {
                    tokio::select! {
                        () = state.shutdown.cancelled() => break Demote::Shutdown,
                        () = term.cancelled() => break Demote::Stepdown,
                        r = roles.changed() => {
                            if r.is_err() { break Demote::Lost; }
                            let now = roles.borrow_and_update().clone();
                            if now != (ZkRole::Master { epoch }) {
                                break Demote::Lost;
                            }
                        }
                    }
                };
                // Stop reporting master, refuse every confirmation waiting, then stop serving.
                state.withdraw();
                let why = match reason {
                    Demote::Shutdown => "the node is stopping",
                    Demote::Stepdown => "the master steps down",
                    Demote::Lost => "this member is no longer master in ZooKeeper",
                };
                if matches!(reason, Demote::Lost) {
                    tracing::error!(
                        "no longer master in ZooKeeper; stopping serving so there are never two masters"
                    );
                }
                *serving_links.lock().unwrap_or_else(|e| e.into_inner()) = None;
                rep.close(why);
                serving.stop().await;
                state.set_replication_status_waiting();
                drop(rep);
                match reason {
                    Demote::Shutdown => {
                        tracing::info!("stopped; store closed");
                        Next::Shutdown
                    }
                    Demote::Stepdown => Next::Rejoin,
                    Demote::Lost => {
                        state.emit(NodeRole::Slave, Vec::new());
                        Next::Continue
                    }
                }
            }
            ZkRole::Replica { master, epoch } => {
                state.replication.set_status(Status::Replica {
                    epoch,
                    master: master.name.clone(),
                    name: cfg.name.clone(),
                    status: replica_status.clone(),
                });
                let cancel = CancellationToken::new();
                let mut last_error: Option<String> = None;
                let follow = async {
                    loop {
                        match follower
                            .follow(&mut store, &master.address, epoch, &cancel)
                            .await
                        {
                            Ok(()) => return,
                            Err(e) => {
                                let text = e.to_string();
                                if last_error.as_deref() != Some(text.as_str()) {
                                    tracing::warn!(master = %master.name, error = %text, "replication from the master stopped; trying again");
                                    last_error = Some(text);
                                }
                            }
                        }
                        tokio::select! {
                            () = cancel.cancelled() => return,
                            () = tokio::time::sleep(FOLLOW_RETRY) => {}
                        }
                    }
                };
                tokio::pin!(follow);
                let changed = wait_change(&mut roles, &state.shutdown);
                tokio::select! {
                    () = &mut follow => {}
                    () = changed => {
                        cancel.cancel();
                        // The follower ends at its next frame or chunk (it holds the store).
                        follow.await;
                    }
                }
                state.set_replication_status_waiting();
                Next::Continue
            }
            ZkRole::Candidate | ZkRole::Lost => {
                // A lost member joins again by itself.
                wait_change(&mut roles, &state.shutdown).await;
                Next::Continue
            }
        };
        drop(zk);
        match next {
            Next::Shutdown => break,
            Next::Continue if state.shutdown.is_cancelled() => break,
            Next::Continue => {}
            Next::Rejoin => {
                tracing::info!(
                    backoff_ms = mq_shared::defaults::STEPDOWN_BACKOFF_MS,
                    "stepped down: leaving the ZooKeeper group, then joining it again as a replica"
                );
                leave(joined.take()).await;
                state.emit(NodeRole::Slave, Vec::new());
                tokio::select! {
                    () = state.shutdown.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(mq_shared::defaults::STEPDOWN_BACKOFF_MS)) => {}
                }
            }
        }
        if store.is_none()
            && let Err(e) = follower.open(&mut store).await
        {
            tracing::error!(error = %e, "cannot open the store again; stopping");
            leave(joined).await;
            return Err(e.into());
        }
    }
    close(store.take()).await;
    leave(joined).await;
    Ok(())
}

/// The TLS of replication links, when the node has a certificate: the listener presents it
/// and requires one signed by the CA from every replica; a replica verifies the master
/// against the CA and presents the node's certificate.
fn link_tls(
    rc: &ReplicatedConfig,
    cfg: &crate::config::NodeConfig,
) -> Result<(Option<TlsAcceptor>, Option<Arc<ClientConfig>>), NodeError> {
    let files = match &cfg.tls {
        Some(f) if rc.tls => f,
        _ => return Ok((None, None)),
    };
    let invalid = |key: &'static str, e: mq_shared::tls::TlsError| {
        NodeError::Config(ConfigError::Invalid {
            key,
            message: format!("replication link: {e}"),
        })
    };
    let server = mq_shared::tls::server_config(files, true).map_err(|e| invalid("tls-cert", e))?;
    let client = files.client_config().map_err(|e| invalid("tls-ca", e))?;
    Ok((Some(TlsAcceptor::from(server)), Some(client)))
}

/// What the loop does after a role.
enum Next {
    Continue,
    Shutdown,
    Rejoin,
}

/// Resolves at the next role change, or at shutdown.
async fn wait_change(roles: &mut watch::Receiver<ZkRole>, shutdown: &CancellationToken) {
    tokio::select! {
        () = shutdown.cancelled() => {}
        r = roles.changed() => {
            if r.is_err() {
                shutdown.cancelled().await;
            }
        }
    }
}

async fn close(store: Option<Store>) {
    if let Some(s) = store {
        tokio::task::spawn_blocking(move || s.close()).await.ok();
    }
}

/// The position of the (closed) store: opened, read and closed again.
async fn read_position(f: &Follower) -> Result<crate::store::replication::Position, NodeError> {
    let mut s = None;
    let p = f.open(&mut s).await;
    close(s).await;
    let p = p?;
    f.published.store(election_position(p), Ordering::Relaxed);
    Ok(p)
}

/// Leaves the ZooKeeper group (its session closed, so its nodes go at once); a handle still
/// shared elsewhere leaves when that goes.
async fn leave(joined: Option<Arc<ZkMember>>) {
    if let Some(z) = joined {
        match Arc::try_unwrap(z) {
            Ok(m) => m.leave().await,
            Err(z) => drop(z),
        }
    }
}

impl NodeState {
    fn set_replication_status_waiting(&self) {
        self.replication.set_status(Status::Waiting { epoch: 0 });
    }
}
