//! The election: the member and master node data, the pure rule that ranks candidates, and one
//! look at the group that follows, confirms or elects a master.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use zookeeper_client as zk;

use super::session::{Halt, Session, Wait, guarded};
use super::{MEMBER_PREFIX, MemberInfo, Paths, Role, Shared, ZkError, decode, encode};

/// How often a member looks again at an election under way (besides ZooKeeper's watches).
const ELECTION_POLL: Duration = Duration::from_millis(50);

/// What a member node holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct MemberData {
    pub(super) name: String,
    pub(super) address: String,
    pub(super) weight: u32,
    pub(super) position: u64,
    /// The election round (the epoch being elected) `position` was published for.
    #[serde(default)]
    pub(super) round: Option<u64>,
}

/// What the `master` node holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct MasterData {
    #[serde(flatten)]
    pub(super) info: MemberInfo,
    pub(super) epoch: u64,
}

/// A member node as the election sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Candidate {
    pub(super) seq: u64,
    pub(super) data: MemberData,
}

/// What a member does next in an election.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Decision {
    /// Try to claim the master node for the round.
    Claim,
    /// Wait for registered members to publish their positions (no watch tells: look again
    /// soon).
    Positions,
    /// Wait for more members to join (the members' watch tells).
    Quorum,
    /// Wait for the winner to claim (the master's watch tells).
    Winner,
}

/// The election rule, pure: `members` are the registered member nodes, `me` this member's
/// sequence, `waited` whether one session timeout has passed since the round began.
pub(super) fn decide(
    members: &[Candidate],
    me: u64,
    round: u64,
    quorum: usize,
    waited: bool,
) -> Decision {
    let published: Vec<&Candidate> = members
        .iter()
        .filter(|m| m.data.round.is_some_and(|r| r >= round))
        .collect();
    let pending = published.len() < members.len();
    if pending && (!waited || published.len() < quorum) {
        return Decision::Positions;
    }
    if published.len() < quorum {
        return Decision::Quorum;
    }
    match best(&published) {
        Some(w) if w.seq == me => Decision::Claim,
        _ => Decision::Winner,
    }
}

/// The latest position, then the highest weight, then the lowest sequence.
pub(super) fn best<'a>(candidates: &[&'a Candidate]) -> Option<&'a Candidate> {
    candidates.iter().copied().max_by(|a, b| {
        (a.data.position, a.data.weight, std::cmp::Reverse(a.seq)).cmp(&(
            b.data.position,
            b.data.weight,
            std::cmp::Reverse(b.seq),
        ))
    })
}

/// The sequence number of a member node's name (`member-0000000007`).
pub(super) fn parse_seq(child: &str) -> Option<u64> {
    child.strip_prefix(MEMBER_PREFIX)?.parse().ok()
}

/// Looks at the group once and acts: follows or confirms a master, or takes part in an
/// election.
pub(super) async fn step(
    shared: &Shared,
    s: &mut Session,
    cancel: &CancellationToken,
) -> Result<Wait, Halt> {
    let p = &shared.paths;
    let client = s.client.clone();
    let (stat, master_watch) =
        guarded(shared, s, cancel, client.check_and_watch_stat(&p.master)).await?;
    if let Some(stat) = stat {
        let got = guarded(shared, s, cancel, async {
            match client.get_data(&p.master).await {
                Ok(d) => Ok(Some(d)),
                Err(zk::Error::NoNode) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await?;
        let Some((data, _)) = got else {
            return Ok(Wait::Again);
        };
        if stat.ephemeral_owner == s.id {
            let m: MasterData = decode(&p.master, &data).map_err(Halt::Retry)?;
            shared.set_role(Role::Master { epoch: m.epoch });
            return Ok(Wait::Master(master_watch));
        }
        if s.old == Some(stat.ephemeral_owner) {
            // This member's previous session, not yet expired: it serves nothing any more.
            guarded(shared, s, cancel, async {
                match client.delete(&p.master, Some(stat.version)).await {
                    Ok(()) | Err(zk::Error::NoNode | zk::Error::BadVersion) => Ok(()),
                    Err(e) => Err(e),
                }
            })
            .await?;
            return Ok(Wait::Again);
        }
        match decode::<MasterData>(&p.master, &data) {
            Ok(m) => {
                s.round_start = None;
                shared.set_role(Role::Replica {
                    master: m.info,
                    epoch: m.epoch,
                });
            }
            Err(e) => {
                tracing::warn!(member = %shared.cfg.name, error = %e, "cannot follow the master node");
                shared.set_role(Role::Candidate);
            }
        }
        return Ok(Wait::Master(master_watch));
    }

    // No master: the election of round epoch + 1.
    shared.set_role(Role::Candidate);
    let (raw, estat) = guarded(shared, s, cancel, client.get_data(&p.epoch)).await?;
    let epoch: u64 = std::str::from_utf8(&raw)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| {
            Halt::Retry(ZkError::Corrupt {
                path: p.epoch.clone(),
                reason: format!("not a number: {:?}", String::from_utf8_lossy(&raw)),
            })
        })?;
    let round = epoch + 1;
    let started = match s.round_start {
        Some((r, t)) if r == round => t,
        _ => {
            let now = Instant::now();
            s.round_start = Some((round, now));
            now
        }
    };
    if s.published != Some(round) {
        let data = encode(&shared.member_data(Some(round)));
        guarded(
            shared,
            s,
            cancel,
            client.set_data(&p.member(s.seq), &data, None),
        )
        .await?;
        s.published = Some(round);
        shared.set_round(round);
    }
    let (_, members_watch) = guarded(
        shared,
        s,
        cancel,
        client.list_and_watch_children(&p.members),
    )
    .await?;
    let list = guarded(shared, s, cancel, read_members(&client, p)).await?;
    if !list
        .iter()
        .any(|c| c.seq == s.seq && c.data.round.is_some_and(|r| r >= round))
    {
        // Its published position was overwritten (by a concurrent publish_position).
        s.published = None;
        return Ok(Wait::Again);
    }
    let waited = started.elapsed() >= s.timeout;
    let decision = decide(&list, s.seq, round, shared.cfg.quorum, waited);
    if decision == Decision::Claim {
        let me = list
            .iter()
            .find(|c| c.seq == s.seq)
            .map(|c| c.data.clone())
            .unwrap_or_else(|| shared.member_data(Some(round)));
        let master = MasterData {
            info: MemberInfo {
                seq: s.seq,
                name: me.name,
                address: me.address,
                weight: me.weight,
                position: me.position,
            },
            epoch: round,
        };
        let claimed = guarded(shared, s, cancel, async {
            let mut w = client.new_multi_writer();
            let node = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
            w.add_set_data(&p.epoch, round.to_string().as_bytes(), Some(estat.version))?;
            w.add_create(&p.master, &encode(&master), &node)?;
            match w.commit().await {
                Ok(_) => Ok(true),
                Err(zk::MultiWriteError::OperationFailed {
                    source: zk::Error::BadVersion | zk::Error::NodeExists,
                    ..
                }) => Ok(false),
                Err(e) => Err(e.into()),
            }
        })
        .await?;
        if claimed {
            tracing::info!(member = %shared.cfg.name, epoch = round, "elected master");
            shared.set_role(Role::Master { epoch: round });
        }
        return Ok(Wait::Again);
    }
    // Positions arrive without a watch: look again soon. Otherwise the watches tell; the
    // timeout only bounds the wait should one be missed.
    let poll = match decision {
        Decision::Positions => ELECTION_POLL,
        _ => s.timeout,
    };
    Ok(Wait::Election(master_watch, members_watch, poll))
}

/// Reads every member node (skipping those that go meanwhile or hold foreign data), by
/// sequence.
pub(super) async fn read_members(
    client: &zk::Client,
    p: &Paths,
) -> Result<Vec<Candidate>, zk::Error> {
    let children = client.list_children(&p.members).await?;
    // Requests are sent when their futures are made: all of them go out before the first reply.
    let reads: Vec<_> = children
        .iter()
        .filter_map(|c| parse_seq(c).map(|seq| (seq, c)))
        .map(|(seq, c)| {
            let path = format!("{}/{c}", p.members);
            (seq, client.get_data(&path), path)
        })
        .collect();
    let mut out = Vec::with_capacity(reads.len());
    for (seq, read, path) in reads {
        match read.await {
            Ok((data, _)) => match decode::<MemberData>(&path, &data) {
                Ok(data) => out.push(Candidate { seq, data }),
                Err(e) => tracing::warn!(error = %e, "ignoring a member node"),
            },
            Err(zk::Error::NoNode) => {}
            Err(error) => return Err(error),
        }
    }
    out.sort_by_key(|c| c.seq);
    Ok(out)
}
