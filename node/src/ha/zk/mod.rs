//! Election, membership and fencing of a replicated group through ZooKeeper.
//!
//! ZooKeeper decides; this module never runs a consensus of its own. Each member holds one
//! ZooKeeper session and, under the group path (`/mq/<group>` by default):
//!
//! ```text
//! /mq/<group>/members/member-0000000007   ephemeral sequential, one per member and session:
//!                                         {"name","address","weight","position","round"}
//! /mq/<group>/epoch                        persistent, decimal text: the last elected epoch
//! /mq/<group>/master                       ephemeral, the master's session owns it:
//!                                         {"seq","name","address","weight","position","epoch"}
//! ```
//!
//! # The election
//!
//! A member that finds no `master` node reads `epoch` (value `E`, version `v`) and runs round
//! `E + 1`: it writes its current journal position ([`ZkConfig::position`], asked now) and
//! `round: E + 1` into its member node, then reads every member node. Once at least
//! [`ZkConfig::quorum`] members have published for this round, and either every registered
//! member has or one session timeout has passed since the round began (a member that never
//! answers is a dead one whose session is about to expire), the candidates are ranked: the
//! latest position wins, then the highest weight, then the lowest sequence number. The winner
//! claims in one atomic multi-operation: set `epoch` to `E + 1` *if its version is still `v`*
//! and create the ephemeral `master` node. Whatever the members' views, at most one claim per
//! epoch succeeds, and every new master raises the epoch. The others watch `master`; a member
//! that finds it follows it as a replica. Nothing pre-empts a master while its node exists, so
//! a higher `weight` joining later never displaces a healthy master.
//!
//! # Fencing
//!
//! A master stops serving *before* ZooKeeper can expire its session and let another member
//! claim. Every member sends a small request on its session every `lease / 8` (the existence
//! of its own member node: it also proves the node is still there). A reply to a request sent
//! at local time `t` renews the lease to `t + lease`, with `lease = 2/3 × negotiated session
//! timeout`. [`ZkMember::master_epoch`] answers `Some` only while `now < t + lease`, reading the
//! clock itself, so a master that was paused or cut off stops confirming the moment its lease
//! runs out, before any event is delivered; the [`Role::Lost`] transition follows as soon as the
//! process runs, even if the client library has not noticed anything wrong.
//!
//! The guarantee. ZooKeeper received that request at some real time `≥ t`, and it expires a
//! session no earlier than one (negotiated) session timeout after it last heard from it (it
//! rounds expiry up to its tick; a new ZooKeeper leader only extends sessions). So the lease
//! ends before the session can expire — one third of a timeout before at equal clock rates —
//! provided that:
//! - the member's monotonic clock runs at more than 2/3 of the rate of the ZooKeeper leader's
//!   (NTP slews by at most 0.05 %; only a broken clock is that far off) and does not stop while
//!   the other runs (a suspended host stops `CLOCK_MONOTONIC`; a paused process does not), and
//! - the member checks [`ZkMember::master_epoch`] before each confirmation and acts on its
//!   answer within the remaining third of a timeout (a process frozen between the check and the
//!   act is the one case no lease can cover: keep that window to a few instructions).
//!
//! A member whose lease runs out (or whose session expires or is closed) reports
//! [`Role::Lost`], abandons the session (closing it if ZooKeeper still answers, so its
//! ephemeral nodes go at once), and joins again with a new session and member node, deleting the
//! nodes its old session may still own. It comes back as a replica when a master exists.
//!
//! This file holds the configuration, the roles and the [`ZkMember`] handle; `session.rs` runs
//! the sessions, `election.rs` the election, `fence.rs` the lease.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use zookeeper_client as zk;

mod election;
mod fence;
mod session;

use election::{MemberData, read_members};
use fence::Lease;
use session::{Session, run};

/// ActiveMQ's `zkSessionTimeout` default.
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_millis(2000);
/// ActiveMQ's `weight` default.
pub const DEFAULT_WEIGHT: u32 = 1;
/// The journal position a member reports at each election.
pub type PositionFn = Arc<dyn Fn() -> u64 + Send + Sync>;

/// How a member joins its group.
#[derive(Clone)]
pub struct ZkConfig {
    /// ZooKeeper connect string: `host:port[,host:port...]` (ActiveMQ `zkAddress`).
    pub address: String,
    /// The group's node (ActiveMQ `zkPath`), absolute; default `/mq/<group>`.
    pub path: String,
    /// Session timeout asked of ZooKeeper (ActiveMQ `zkSessionTimeout`); the server may clamp
    /// it to its `minSessionTimeout`/`maxSessionTimeout`, and the lease follows what it grants.
    pub session_timeout: Duration,
    /// This member's name (unique in the group; shown in status).
    pub name: String,
    /// Where replicas reach this member's replication listener (ActiveMQ `hostname` + `bind`).
    pub replication_address: String,
    /// Preference among members with the same position (ActiveMQ `weight`): higher wins.
    pub weight: u32,
    /// Members that must have published a position before an election ends
    /// (`replicas / 2 + 1` for a replicated store).
    pub quorum: usize,
    /// This member's journal position, asked when it publishes for an election.
    pub position: PositionFn,
}

impl ZkConfig {
    /// A configuration with the defaults: path `/mq/<group>`, a 2000 ms session, weight 1,
    /// quorum 1.
    pub fn new(
        address: impl Into<String>,
        group: &str,
        name: impl Into<String>,
        replication_address: impl Into<String>,
        position: impl Fn() -> u64 + Send + Sync + 'static,
    ) -> ZkConfig {
        ZkConfig {
            address: address.into(),
            path: format!("/mq/{group}"),
            session_timeout: DEFAULT_SESSION_TIMEOUT,
            name: name.into(),
            replication_address: replication_address.into(),
            weight: DEFAULT_WEIGHT,
            quorum: 1,
            position: Arc::new(position),
        }
    }

    fn validate(&self) -> Result<(), ZkError> {
        let bad = |m: String| Err(ZkError::Config(m));
        if self.address.trim().is_empty() {
            return bad("the ZooKeeper address is empty".into());
        }
        let p = &self.path;
        if !p.starts_with('/') || p.len() < 2 || p.ends_with('/') || p.contains("//") {
            return bad(format!(
                "zk-path {p:?} must be an absolute ZooKeeper path like /mq/group"
            ));
        }
        if self.session_timeout < Duration::from_millis(100) {
            return bad(format!(
                "zk-session-timeout {:?} is too short",
                self.session_timeout
            ));
        }
        if self.name.is_empty() {
            return bad("the member name is empty".into());
        }
        if self.quorum == 0 {
            return bad("the quorum must be at least 1".into());
        }
        Ok(())
    }
}

impl fmt::Debug for ZkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZkConfig")
            .field("address", &self.address)
            .field("path", &self.path)
            .field("session_timeout", &self.session_timeout)
            .field("name", &self.name)
            .field("replication_address", &self.replication_address)
            .field("weight", &self.weight)
            .field("quorum", &self.quorum)
            .finish_non_exhaustive()
    }
}

/// Why joining or asking the group failed.
#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    /// The configuration cannot work.
    #[error("invalid ZooKeeper configuration: {0}")]
    Config(String),
    /// No session could be opened.
    #[error("cannot open a ZooKeeper session at {address}: {error}")]
    Connect {
        /// The connect string.
        address: String,
        /// What the client reported.
        error: zk::Error,
    },
    /// A request failed.
    #[error("ZooKeeper {op} {path} failed: {error}")]
    Request {
        /// The operation.
        op: &'static str,
        /// The node.
        path: String,
        /// What the server or client reported.
        error: zk::Error,
    },
    /// A node holds something this module did not write.
    #[error("ZooKeeper node {path} holds unreadable data: {reason}")]
    Corrupt {
        /// The node.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The member has no session right now (it lost it and is joining again).
    #[error("no ZooKeeper session at the moment (lost; joining again)")]
    NoSession,
}

/// A member of the group as its node describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// Sequence number of its member node (lower joined earlier).
    pub seq: u64,
    /// Its name.
    pub name: String,
    /// Its replication address.
    pub address: String,
    /// Its weight.
    pub weight: u32,
    /// The journal position it last published (at its registration or the last election).
    pub position: u64,
}

/// Where a member stands. Transitions arrive in order on [`ZkMember::transitions`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// No master is known: an election is under way or waits for a quorum.
    Candidate,
    /// This member won the election of `epoch`; it may serve while
    /// [`ZkMember::master_epoch`] says so.
    Master {
        /// The epoch of this master's election.
        epoch: u64,
    },
    /// Another member is master; follow it (and refuse streams of an older epoch).
    Replica {
        /// The master.
        master: MemberInfo,
        /// The epoch of its election.
        epoch: u64,
    },
    /// The session or its lease is gone: serve nothing; the member is joining again.
    Lost,
}

/// Name prefix of member nodes.
const MEMBER_PREFIX: &str = "member-";

/// The nodes of one group.
#[derive(Clone, Debug)]
struct Paths {
    root: String,
    members: String,
    master: String,
    epoch: String,
}

impl Paths {
    fn new(root: &str) -> Paths {
        Paths {
            root: root.to_string(),
            members: format!("{root}/members"),
            master: format!("{root}/master"),
            epoch: format!("{root}/epoch"),
        }
    }

    fn member(&self, seq: u64) -> String {
        format!("{}/{MEMBER_PREFIX}{seq:010}", self.members)
    }
}

/// The current session, as the handle's methods see it.
#[derive(Clone, Debug)]
struct Current {
    client: zk::Client,
    session: i64,
    seq: u64,
    round: Option<u64>,
}

/// State shared by the handle and the task that runs the member.
struct Shared {
    cfg: ZkConfig,
    paths: Paths,
    role: watch::Sender<Role>,
    transitions: broadcast::Sender<Role>,
    lease: Lease,
    current: Mutex<Option<Current>>,
}

impl Shared {
    fn set_role(&self, role: Role) {
        let changed = self.role.send_if_modified(|cur| {
            if *cur == role {
                false
            } else {
                *cur = role.clone();
                true
            }
        });
        if changed {
            tracing::info!(member = %self.cfg.name, role = ?role, "zookeeper role");
            // No receiver is not an error: transitions are for whoever listens.
            let _ = self.transitions.send(role);
        }
    }

    fn current(&self) -> Option<Current> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_current(&self, c: Option<Current>) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = c;
    }

    fn set_round(&self, round: u64) {
        if let Some(c) = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            c.round = Some(round);
        }
    }

    fn member_data(&self, round: Option<u64>) -> MemberData {
        MemberData {
            name: self.cfg.name.clone(),
            address: self.cfg.replication_address.clone(),
            weight: self.cfg.weight,
            position: (self.cfg.position)(),
            round,
        }
    }
}

/// A member of a replicated group: joined through [`ZkMember::join`], left on
/// [`ZkMember::leave`] or drop.
pub struct ZkMember {
    shared: Arc<Shared>,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for ZkMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZkMember")
            .field("name", &self.shared.cfg.name)
            .field("role", &*self.shared.role.borrow())
            .finish_non_exhaustive()
    }
}

impl ZkMember {
    /// Opens a session, creates the group's nodes if needed, registers this member and starts
    /// taking part in elections (in a task of the current tokio runtime). Fails when the
    /// configuration is invalid or no session can be opened now; once joined, the member
    /// opens new sessions by itself.
    pub async fn join(cfg: ZkConfig) -> Result<ZkMember, ZkError> {
        cfg.validate()?;
        let (transitions, _) = broadcast::channel(64);
        let shared = Arc::new(Shared {
            paths: Paths::new(&cfg.path),
            cfg,
            role: watch::Sender::new(Role::Candidate),
            transitions,
            lease: Lease::new(),
            current: Mutex::new(None),
        });
        let session = Session::open(&shared, None).await?;
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(shared.clone(), session, cancel.clone()));
        Ok(ZkMember {
            shared,
            cancel,
            task: Some(task),
        })
    }

    /// The current role.
    pub fn role(&self) -> Role {
        self.shared.role.borrow().clone()
    }

    /// The latest role, for consumers that only need the current state.
    pub fn watch(&self) -> watch::Receiver<Role> {
        self.shared.role.subscribe()
    }

    /// Every role transition from now on, in order.
    pub fn transitions(&self) -> broadcast::Receiver<Role> {
        self.shared.transitions.subscribe()
    }

    /// The fence: `Some(epoch)` while this member is master *and* its lease holds at this
    /// instant (the clock is read here, not in the background). Check it before each
    /// confirmation.
    pub fn master_epoch(&self) -> Option<u64> {
        match &*self.shared.role.borrow() {
            Role::Master { epoch } if self.shared.lease.holds(Instant::now()) => Some(*epoch),
            _ => None,
        }
    }

    /// When the current lease ends (or the last one ended), on the wall clock.
    pub fn lease_end(&self) -> Option<SystemTime> {
        self.shared.lease.wall()
    }

    /// The current ZooKeeper session id (`None` while joining again).
    pub fn session_id(&self) -> Option<i64> {
        self.shared.current().map(|c| c.session)
    }

    /// This member's sequence number in the current session.
    pub fn seq(&self) -> Option<u64> {
        self.shared.current().map(|c| c.seq)
    }

    /// The registered members, by sequence, with the positions they last published.
    pub async fn members(&self) -> Result<Vec<MemberInfo>, ZkError> {
        let cur = self.shared.current().ok_or(ZkError::NoSession)?;
        let list = read_members(&cur.client, &self.shared.paths)
            .await
            .map_err(|error| ZkError::Request {
                op: "list",
                path: self.shared.paths.members.clone(),
                error,
            })?;
        Ok(list
            .into_iter()
            .map(|c| MemberInfo {
                seq: c.seq,
                name: c.data.name,
                address: c.data.address,
                weight: c.data.weight,
                position: c.data.position,
            })
            .collect())
    }

    /// Publishes this member's current position now (for status between elections).
    pub async fn publish_position(&self) -> Result<(), ZkError> {
        let cur = self.shared.current().ok_or(ZkError::NoSession)?;
        let path = self.shared.paths.member(cur.seq);
        let data = encode(&self.shared.member_data(cur.round));
        cur.client
            .set_data(&path, &data, None)
            .await
            .map(|_| ())
            .map_err(|error| ZkError::Request {
                op: "set",
                path,
                error,
            })
    }

    /// Leaves the group: stops serving (role [`Role::Lost`]), closes the session so its nodes
    /// go at once, and waits (at most one session timeout) for ZooKeeper to confirm.
    pub async fn leave(mut self) {
        self.cancel.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for ZkMember {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Plain structs of strings and numbers always serialize.
    serde_json::to_vec(v).unwrap_or_default()
}

fn decode<T: for<'de> Deserialize<'de>>(path: &str, data: &[u8]) -> Result<T, ZkError> {
    serde_json::from_slice(data).map_err(|e| ZkError::Corrupt {
        path: path.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::election::{Candidate, Decision, MasterData, best, decide, parse_seq};
    use super::*;

    fn cand(seq: u64, position: u64, weight: u32, round: Option<u64>) -> Candidate {
        Candidate {
            seq,
            data: MemberData {
                name: format!("m{seq}"),
                address: String::new(),
                weight,
                position,
                round,
            },
        }
    }

    #[test]
    fn the_latest_position_wins_then_the_weight_then_the_lowest_sequence() {
        let a = cand(1, 10, 1, Some(1));
        let b = cand(2, 12, 1, Some(1));
        let c = cand(3, 11, 9, Some(1));
        assert_eq!(best(&[&a, &b, &c]).map(|w| w.seq), Some(2));
        let b = cand(2, 10, 1, Some(1));
        let c = cand(3, 10, 9, Some(1));
        assert_eq!(best(&[&a, &b, &c]).map(|w| w.seq), Some(3));
        let c = cand(3, 10, 1, Some(1));
        assert_eq!(best(&[&c, &b, &a]).map(|w| w.seq), Some(1));
        assert_eq!(best(&[]), None);
    }

    #[test]
    fn only_the_winner_claims_once_everyone_published() {
        let ms = [
            cand(1, 5, 1, Some(3)),
            cand(2, 7, 1, Some(3)),
            cand(3, 6, 1, Some(3)),
        ];
        assert_eq!(decide(&ms, 2, 3, 1, false), Decision::Claim);
        assert_eq!(decide(&ms, 1, 3, 1, false), Decision::Winner);
        assert_eq!(decide(&ms, 3, 3, 1, false), Decision::Winner);
        // A position published for a later round counts too.
        let ms = [cand(1, 5, 1, Some(4)), cand(2, 1, 1, Some(3))];
        assert_eq!(decide(&ms, 1, 3, 2, false), Decision::Claim);
    }

    #[test]
    fn an_election_waits_for_silent_members_until_a_session_timeout_passed() {
        // Member 2 has the best position but published for an older round only: its current
        // position is unknown.
        let ms = [cand(1, 5, 1, Some(3)), cand(2, 9, 1, Some(2))];
        assert_eq!(decide(&ms, 1, 3, 1, false), Decision::Positions);
        assert_eq!(decide(&ms, 1, 3, 1, true), Decision::Claim);
        // A member that never published (joined while a master existed) is waited for too.
        let ms = [cand(1, 5, 1, Some(3)), cand(2, 0, 1, None)];
        assert_eq!(decide(&ms, 1, 3, 1, false), Decision::Positions);
    }

    #[test]
    fn no_election_ends_without_a_quorum_of_positions() {
        // Too few published even after the wait, but one may still publish: keep looking.
        let ms = [cand(1, 5, 1, Some(3)), cand(2, 4, 1, None)];
        assert_eq!(decide(&ms, 1, 3, 2, true), Decision::Positions);
        let ms = [cand(1, 5, 1, Some(3)), cand(2, 4, 1, Some(3))];
        assert_eq!(decide(&ms, 1, 3, 2, false), Decision::Claim);
        // Everyone published and still too few: wait for members to join.
        let ms = [cand(1, 5, 1, Some(3))];
        assert_eq!(decide(&ms, 1, 3, 2, true), Decision::Quorum);
        assert_eq!(decide(&ms, 1, 3, 1, false), Decision::Claim);
    }

    #[test]
    fn a_member_that_is_not_registered_never_claims() {
        let ms = [cand(1, 5, 1, Some(3))];
        assert_eq!(decide(&ms, 7, 3, 1, true), Decision::Winner);
    }

    #[test]
    fn member_node_names_carry_their_sequence() {
        assert_eq!(parse_seq("member-0000000042"), Some(42));
        assert_eq!(parse_seq("member-x"), None);
        assert_eq!(parse_seq("other-0000000001"), None);
        let p = Paths::new("/mq/g");
        assert_eq!(p.member(42), "/mq/g/members/member-0000000042");
        assert_eq!(
            parse_seq(p.member(7).rsplit('/').next().unwrap_or("")),
            Some(7)
        );
    }

    #[test]
    fn node_data_round_trips_and_old_member_data_reads() -> Result<(), ZkError> {
        let m = MasterData {
            info: MemberInfo {
                seq: 3,
                name: "b".into(),
                address: "10.0.0.2:61619".into(),
                weight: 2,
                position: 99,
            },
            epoch: 7,
        };
        assert_eq!(decode::<MasterData>("/m", &encode(&m))?, m);
        let d: MemberData = decode(
            "/m",
            br#"{"name":"a","address":"x:1","weight":1,"position":4}"#,
        )?;
        assert_eq!(d.round, None);
        assert!(decode::<MemberData>("/m", b"garbage").is_err());
        Ok(())
    }

    #[test]
    fn configurations_that_cannot_work_are_refused() {
        let ok = ZkConfig::new("127.0.0.1:2181", "g", "a", "127.0.0.1:1", || 0);
        assert_eq!(ok.path, "/mq/g");
        assert_eq!(ok.session_timeout, DEFAULT_SESSION_TIMEOUT);
        assert!(ok.validate().is_ok());
        for path in ["mq/g", "/", "/mq/", "/mq//g"] {
            let mut c = ok.clone();
            c.path = path.into();
            assert!(matches!(c.validate(), Err(ZkError::Config(_))), "{path}");
        }
        let mut c = ok.clone();
        c.quorum = 0;
        assert!(c.validate().is_err());
        let mut c = ok.clone();
        c.address = " ".into();
        assert!(c.validate().is_err());
        let mut c = ok;
        c.session_timeout = Duration::from_millis(10);
        assert!(c.validate().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn the_lease_runs_from_when_the_renewing_request_was_sent() {
        let lease = Lease::new();
        let ttl = Duration::from_millis(1000);
        assert!(
            !lease.holds(Instant::now()),
            "no lease before the first renewal"
        );
        let sent = Instant::now();
        tokio::time::advance(Duration::from_millis(300)).await;
        // The reply came 300 ms later: the lease still counts from the send.
        lease.renew(sent, SystemTime::now(), ttl);
        assert!(lease.holds(Instant::now()));
        assert!(!lease.holds(sent + ttl));
        // A late reply to an older request never shortens it.
        lease.renew(sent - Duration::from_millis(200), SystemTime::now(), ttl);
        assert!(lease.holds(sent + ttl - Duration::from_millis(1)));
        let t0 = Instant::now();
        lease.expired().await;
        assert_eq!(Instant::now(), sent + ttl);
        assert_eq!(Instant::now() - t0, Duration::from_millis(700));
    }

    #[tokio::test(start_paused = true)]
    async fn renewals_push_the_end_and_a_revoke_ends_it_at_once() {
        let lease = Arc::new(Lease::new());
        let ttl = Duration::from_millis(1000);
        let start = Instant::now();
        lease.renew(start, SystemTime::now(), ttl);
        let l = lease.clone();
        let waiter = tokio::spawn(async move {
            l.expired().await;
            Instant::now()
        });
        tokio::time::advance(Duration::from_millis(800)).await;
        lease.renew(Instant::now(), SystemTime::now(), ttl);
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(!waiter.is_finished(), "renewed at 800 ms: runs to 1800 ms");
        lease.revoke();
        let ended = waiter.await.ok();
        assert_eq!(ended, Some(start + Duration::from_millis(1300)));
        assert!(!lease.holds(Instant::now()));
    }
}
