//! The `-o json` reports of `mqctl failover`, and the record of the store's lock file.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::api::{LeaseInfo, ReplicaInfo};

/// How `mqctl failover trigger` makes the master let go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailoverMode {
    /// `POST /api/v1/ha/stepdown`: a planned switchover.
    Stepdown,
    /// SIGKILL to the master's process: a crash.
    Kill,
}

impl fmt::Display for FailoverMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailoverMode::Stepdown => "stepdown",
            FailoverMode::Kill => "kill",
        })
    }
}

/// `mqctl failover trigger -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverReport {
    /// The HA group (broker) that failed over.
    pub group: String,
    /// How the master was made to let go.
    pub mode: FailoverMode,
    /// Process that was master before.
    pub old_master: String,
    /// Process that is master now.
    pub new_master: String,
    /// From the kill (or the stepdown request) until a STOMP CONNECT to the new master was
    /// answered CONNECTED, in ms.
    pub recovery_ms: u64,
    /// With `--verify N`: what became of the N messages sent before; `null` otherwise.
    pub verify: Option<VerifyReport>,
    /// A replicated group: the epoch the old master served in; absent for other groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_epoch: Option<u64>,
    /// A replicated group: the epoch of the election that made the new master (greater than
    /// `old_epoch`); absent for other groups, or when the new master did not report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_epoch: Option<u64>,
    /// A JDBC group: the lease row as the new master reports it once it serves (its holder
    /// and end); absent for other groups, or when the new master did not report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseInfo>,
}

/// Messages sent through a failover and consumed after it (`failover trigger --verify`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Persistent messages confirmed by a RECEIPT before the failover.
    pub sent: u64,
    /// Distinct ones consumed from the new master.
    pub received: u64,
    /// Confirmed but never consumed: `sent - received`.
    pub lost: u64,
    /// Deliveries beyond the first of the same message.
    pub duplicated: u64,
}

/// `mqctl failover status -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverStatus {
    /// Cluster name.
    pub cluster: String,
    /// One entry per group (broker), in manifest order.
    pub groups: Vec<GroupStatus>,
}

/// One group of [`FailoverStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupStatus {
    /// Group name.
    pub group: String,
    /// The member serving (role `master` or `standalone`); `null` when none is.
    pub master: Option<String>,
    /// Members waiting for the store lock.
    pub slaves: Vec<String>,
    /// Members that did not answer.
    pub down: Vec<String>,
    /// What the group's lock file says, when it has a readable record.
    pub lock: Option<LockHolder>,
    /// A replicated group's epoch: its master's, or with no master answering the highest a
    /// member reports (the last master's); absent for other groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// A replicated group's replicas with their state and lag: those the master reports, or
    /// with no master answering each answering member's own entry; absent for other groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<Vec<ReplicaInfo>>,
    /// A `--ha jdbc` group's lease row, as its master (else another member) reports it;
    /// absent for other groups and while no member could read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseInfo>,
}

/// The record a node writes into the store's lock file (`DATA/lock`) when it takes the lock:
/// one line `NAME pid PID inode INO`. The record stays after the holder lets go, so it names
/// the current or the last holder; the OS lock itself says whether it is held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// Broker name (`--name`) of the holder.
    pub holder: String,
    /// Its process id.
    pub pid: u32,
    /// Inode of the lock file it locked; a taker that finds its own file's inode here knows
    /// the file was handed over, not replaced.
    pub inode: u64,
}

impl LockHolder {
    /// Parses the first line of a lock file; `None` for anything else (empty, older formats).
    pub fn parse(text: &str) -> Option<LockHolder> {
        let words: Vec<&str> = text.lines().next()?.split_whitespace().collect();
        let [name @ .., "pid", pid, "inode", inode] = words.as_slice() else {
            return None;
        };
        if name.is_empty() {
            return None;
        }
        Some(LockHolder {
            holder: name.join(" "),
            pid: pid.parse().ok()?,
            inode: inode.parse().ok()?,
        })
    }

    /// Reads the record of the lock file in data directory `dir`.
    pub fn read(dir: &std::path::Path) -> Option<LockHolder> {
        let text = std::fs::read_to_string(dir.join(crate::defaults::LOCK_FILE)).ok()?;
        LockHolder::parse(&text)
    }
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} pid {} inode {}", self.holder, self.pid, self.inode)
    }
}
