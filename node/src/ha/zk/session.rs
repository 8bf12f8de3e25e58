//! One ZooKeeper session after another: connecting and registering, the loop that looks, acts
//! and waits, every request guarded by the lease, and joining again when a session is lost.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use zookeeper_client as zk;

use super::election::step;
use super::fence::{LEASE_FRACTION, keep_lease};
use super::{Current, MEMBER_PREFIX, Paths, Role, Shared, ZkError, encode};

/// Pause after a failed ZooKeeper request before the next try (within a session).
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// First pause between attempts to open a new session; doubles up to one session timeout.
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);

/// One ZooKeeper session of a member and its registration.
pub(super) struct Session {
    pub(super) client: zk::Client,
    state: zk::StateWatcher,
    pub(super) id: i64,
    /// This member's previous session, whose nodes may linger until it expires.
    pub(super) old: Option<i64>,
    pub(super) seq: u64,
    /// The negotiated session timeout, and the lease it gives.
    pub(super) timeout: Duration,
    ttl: Duration,
    keeper: JoinHandle<()>,
    /// The round this member last published a position for.
    pub(super) published: Option<u64>,
    /// The round under way and when this member first saw it.
    pub(super) round_start: Option<(u64, Instant)>,
}

impl Session {
    /// Connects, creates the group's nodes, removes what `old` (this member's previous
    /// session) may still own, registers, and starts renewing the lease.
    pub(super) async fn open(shared: &Arc<Shared>, old: Option<i64>) -> Result<Session, ZkError> {
        let cfg = &shared.cfg;
        let p = &shared.paths;
        let connect = zk::Client::connector()
            .with_session_timeout(cfg.session_timeout)
            .connect(&cfg.address);
        // The client gives up after about one session timeout; this bound is a backstop.
        let client = match tokio::time::timeout(cfg.session_timeout * 2, connect).await {
            Ok(Ok(c)) => c,
            Ok(Err(error)) => {
                return Err(ZkError::Connect {
                    address: cfg.address.clone(),
                    error,
                });
            }
            Err(_) => {
                return Err(ZkError::Connect {
                    address: cfg.address.clone(),
                    error: zk::Error::Timeout,
                });
            }
        };
        let req = |op: &'static str, path: &str| {
            let path = path.to_string();
            move |error| ZkError::Request { op, path, error }
        };
        let dir = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        client
            .mkdir(&p.root, &dir)
            .await
            .map_err(req("create", &p.root))?;
        for (path, data) in [(&p.members, &b""[..]), (&p.epoch, &b"0"[..])] {
            match client.create(path, data, &dir).await {
                Ok(_) | Err(zk::Error::NodeExists) => {}
                Err(e) => return Err(req("create", path)(e)),
            }
        }
        if let Some(old) = old {
            remove_owned_by(&client, p, old).await?;
        }
        let sent = Instant::now();
        let sent_wall = SystemTime::now();
        let data = encode(&shared.member_data(None));
        let prefix = format!("{}/{MEMBER_PREFIX}", p.members);
        let node = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
        let (_, seq) = client
            .create(&prefix, &data, &node)
            .await
            .map_err(req("create", &prefix))?;
        let seq = u64::try_from(seq.into_i64()).map_err(|_| ZkError::Corrupt {
            path: prefix.clone(),
            reason: "negative sequence number".into(),
        })?;
        let timeout = client.session_timeout();
        let ttl = timeout * LEASE_FRACTION.0 / LEASE_FRACTION.1;
        shared.lease.renew(sent, sent_wall, ttl);
        let id = client.session_id().0;
        let keeper = tokio::spawn(keep_lease(
            shared.clone(),
            client.clone(),
            p.member(seq),
            id,
            ttl,
        ));
        shared.set_current(Some(Current {
            client: client.clone(),
            session: id,
            seq,
            round: None,
        }));
        tracing::info!(member = %cfg.name, session = %format!("{id:#x}"), seq,
            negotiated_timeout_ms = timeout.as_millis() as u64, "joined zookeeper group {}", p.root);
        Ok(Session {
            state: client.state_watcher(),
            client,
            id,
            old,
            seq,
            timeout,
            ttl,
            keeper,
            published: None,
            round_start: None,
        })
    }

    /// Ends the session: stops renewing, drops every handle on it (the client then closes it
    /// if ZooKeeper answers) and waits at most `wait` for the close.
    async fn close(self, shared: &Shared, wait: Duration) {
        self.keeper.abort();
        let _ = self.keeper.await;
        shared.set_current(None);
        let mut state = self.state;
        drop(self.client);
        let _ = tokio::time::timeout(wait, async {
            while !state.peek_state().is_terminated() {
                state.changed().await;
            }
        })
        .await;
    }
}

/// Errors after which the session is gone for good.
pub(super) fn terminal(e: &zk::Error) -> bool {
    matches!(
        e,
        zk::Error::SessionExpired
            | zk::Error::ClientClosed
            | zk::Error::AuthFailed
            | zk::Error::SessionMoved
    )
}

/// Why a session's loop stopped.
pub(super) enum Halt {
    /// The member is leaving.
    Shutdown,
    /// The session or its lease is gone.
    Lost(String),
    /// A request failed in a way the next try may not.
    Retry(ZkError),
}

/// What the session's loop waits for next.
pub(super) enum Wait {
    /// A master exists: its node changing or going.
    Master(zk::OneshotWatcher),
    /// An election: the master node appearing, members coming or going, or a poll.
    Election(zk::OneshotWatcher, zk::OneshotWatcher, Duration),
    /// Nothing: look again now.
    Again,
}

/// Runs the member: one session after another until shutdown.
pub(super) async fn run(shared: Arc<Shared>, first: Session, cancel: CancellationToken) {
    let mut next = Some(first);
    let mut old = None;
    let mut pause = RECONNECT_PAUSE;
    loop {
        let mut s = match next.take() {
            Some(s) => s,
            None => {
                let open = tokio::select! {
                    () = cancel.cancelled() => return,
                    r = Session::open(&shared, old) => r,
                };
                match open {
                    Ok(s) => {
                        pause = RECONNECT_PAUSE;
                        s
                    }
                    Err(e) => {
                        tracing::warn!(member = %shared.cfg.name, error = %e, "cannot join again yet");
                        tokio::select! {
                            () = cancel.cancelled() => return,
                            () = tokio::time::sleep(pause) => {}
                        }
                        pause = (pause * 2).min(shared.cfg.session_timeout);
                        continue;
                    }
                }
            }
        };
        let halt = serve(&shared, &mut s, &cancel).await;
        shared.lease.revoke();
        shared.set_role(Role::Lost);
        old = Some(s.id);
        match halt {
            Halt::Lost(why) => {
                tracing::warn!(member = %shared.cfg.name, "zookeeper session lost: {why}; joining again");
                // Whatever a close achieves, it achieves at once; do not wait for a dead link.
                s.close(&shared, Duration::ZERO).await;
            }
            Halt::Shutdown | Halt::Retry(_) => {
                s.close(&shared, shared.cfg.session_timeout).await;
                return;
            }
        }
    }
}

/// One session: looks, acts, waits, until the session is lost or the member leaves.
async fn serve(shared: &Shared, s: &mut Session, cancel: &CancellationToken) -> Halt {
    loop {
        let wait = match step(shared, s, cancel).await {
            Ok(w) => w,
            Err(Halt::Retry(e)) => {
                if matches!(
                    &e,
                    ZkError::Request {
                        error: zk::Error::ConnectionLoss,
                        ..
                    }
                ) {
                    tracing::debug!(member = %shared.cfg.name, error = %e, "retrying");
                } else {
                    tracing::warn!(member = %shared.cfg.name, error = %e, "retrying");
                }
                if let Err(h) = guarded(shared, s, cancel, async {
                    tokio::time::sleep(RETRY_PAUSE).await;
                    Ok(())
                })
                .await
                {
                    return h;
                }
                continue;
            }
            Err(h) => return h,
        };
        let woken = match wait {
            Wait::Again => Ok(()),
            Wait::Master(w) => {
                guarded(shared, s, cancel, async {
                    w.changed().await;
                    Ok(())
                })
                .await
            }
            Wait::Election(master, members, poll) => {
                guarded(shared, s, cancel, async {
                    tokio::select! {
                        _ = master.changed() => {}
                        _ = members.changed() => {}
                        () = tokio::time::sleep(poll) => {}
                    }
                    Ok(())
                })
                .await
            }
        };
        if let Err(h) = woken {
            return h;
        }
    }
}

/// Runs `fut` unless the member leaves, the lease runs out or the session ends first.
pub(super) async fn guarded<T>(
    shared: &Shared,
    s: &mut Session,
    cancel: &CancellationToken,
    fut: impl Future<Output = Result<T, zk::Error>>,
) -> Result<T, Halt> {
    let state = &mut s.state;
    let ended = async {
        loop {
            let st = state.peek_state();
            if st.is_terminated() {
                return st;
            }
            state.changed().await;
        }
    };
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(Halt::Shutdown),
        () = shared.lease.expired() => Err(Halt::Lost(format!(
            "no answer from ZooKeeper for {:?} (the lease)", s.ttl))),
        st = ended => Err(Halt::Lost(format!("session {st}"))),
        r = fut => r.map_err(|e| if terminal(&e) {
            Halt::Lost(format!("session: {e}"))
        } else {
            Halt::Retry(ZkError::Request { op: "request", path: shared.paths.root.clone(), error: e })
        }),
    }
}

/// Deletes the master and member nodes that session `old` still owns.
async fn remove_owned_by(client: &zk::Client, p: &Paths, old: i64) -> Result<(), ZkError> {
    let req = |op: &'static str, path: &str| {
        let path = path.to_string();
        move |error| ZkError::Request { op, path, error }
    };
    let mut paths = vec![p.master.clone()];
    let children = client
        .list_children(&p.members)
        .await
        .map_err(req("list", &p.members))?;
    paths.extend(children.iter().map(|c| format!("{}/{c}", p.members)));
    for path in paths {
        match client.check_stat(&path).await {
            Ok(Some(stat)) if stat.ephemeral_owner == old => {
                match client.delete(&path, Some(stat.version)).await {
                    Ok(()) | Err(zk::Error::NoNode) | Err(zk::Error::BadVersion) => {}
                    Err(e) => return Err(req("delete", &path)(e)),
                }
                tracing::info!("removed {path}, left by this member's previous session");
            }
            Ok(_) => {}
            Err(e) => return Err(req("stat", &path)(e)),
        }
    }
    Ok(())
}
