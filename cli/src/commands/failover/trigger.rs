//! `mqctl failover trigger NAME [--broker B] [--mode stepdown|kill] [--verify N]`.
//!
//! Phases, each shown on the spinner and timed from the trigger: the old master stops serving
//! (its process is gone, or its `/readyz` answers 503), another member takes over (its record
//! appears in the lock file: it took the store lock; in a replicated group, it reports itself
//! master of a newer epoch: ZooKeeper elected it), and a STOMP CONNECT to that member is
//! answered. The
//! CONNECT is tried every [`FAILOVER_PROBE_INTERVAL`] by a task of its own, so the admin calls
//! that watch the other phases never delay the measurement. Once it is answered, the new
//! master's broker info gives what the takeover made: the epoch of a replicated group's
//! election, the lease row of a JDBC group.

use std::path::Path;
use std::time::{Duration, Instant};

use mq_shared::api::BrokerInfo;
use mq_shared::client::{ConnectOptions, StompClient};
use mq_shared::ctl::{FailoverMode, FailoverReport, LinkEntry, LockHolder, NodeEntry};
use mq_shared::defaults::{
    ADMIN_REQUEST_TIMEOUT, FAILOVER_PROBE_INTERVAL, FAILOVER_TRIGGER_TIMEOUT, STAT_REQUEST_TIMEOUT,
};
use mq_shared::uri::ClientUri;

use super::verify;
use crate::args::failover::TriggerArgs;
use crate::cluster::Cluster;
use crate::commands::Context;
use crate::error::{CliError, Outcome, Result};
use crate::links;
use crate::output::{self, Format, Table};
use crate::process;
use crate::sys::Signal;

/// How often the phase watcher looks at the old master and the lock file.
const WATCH_INTERVAL: Duration = Duration::from_millis(20);

/// Runs `failover trigger`.
pub async fn run(ctx: &Context, args: TriggerArgs) -> Result<Outcome> {
    let Some(name) = &args.target.name else {
        return super::remote::trigger(ctx, &args).await;
    };
    let cluster = Cluster::load(&ctx.home, name)?;
    let stomp_opts = crate::security::stomp_options(&cluster.manifest)?;
    let c = cluster.name().to_string();
    let group = super::pick_group(&cluster, args.broker.as_deref())?;
    let members: Vec<NodeEntry> = cluster
        .manifest
        .members(&group)
        .into_iter()
        .cloned()
        .collect();
    if members.len() < 2 {
        return Err(CliError::Usage(format!(
            "`{group}` of cluster `{c}` is a single node, not a master/slave group; create the cluster with `mqctl cluster create NAME --ha`"
        )));
    }
    let roles = super::roles(&cluster, &members, STAT_REQUEST_TIMEOUT).await?;
    let Some(old) = roles.iter().position(|r| super::serves(*r)) else {
        return Err(CliError::NoMaster {
            cluster: c.clone(),
            group: group.clone(),
            first: members[0].name.clone(),
            detail: describe_roles(&members, &roles),
        });
    };
    let old_node = members[old].clone();
    if !roles.contains(&Some(mq_shared::api::Role::Slave)) {
        let other = members
            .iter()
            .find(|m| m.name != old_node.name)
            .map_or("NODE", |m| m.name.as_str());
        return Err(CliError::Unavailable(format!(
            "no slave of {group} in cluster `{c}` is running to take over from {} ({}); start one with `mqctl node start {c}/{other}`",
            old_node.name,
            describe_roles(&members, &roles)
        )));
    }
    let mode: FailoverMode = args.mode.into();
    let old_client = cluster.client(&old_node, ADMIN_REQUEST_TIMEOUT)?;
    let old_info = old_client.broker().await?;
    let old_pid = old_info.pid;
    // A replicated group: the takeover is an election, seen in the members' `replication`.
    let old_epoch = old_info.replication.as_ref().map(|r| r.epoch);
    let electors: Vec<(String, crate::client::admin::AdminClient)> = match old_epoch {
        Some(_) => members
            .iter()
            .filter(|m| m.name != old_node.name)
            .map(|m| {
                Ok((
                    m.name.clone(),
                    cluster.client(m, WATCH_INTERVAL.max(Duration::from_millis(200)))?,
                ))
            })
            .collect::<Result<_>>()?,
        None => Vec::new(),
    };

    // Before: the messages to find again after.
    let queue = format!("mq.failover.verify.{}", crate::home::now_ms());
    let sent = match args.verify {
        Some(n) => {
            let bar = output::progress(n, &format!("sending {n} messages to {}", old_node.name));
            let sent = verify::send(&stomp_addr(&old_node), &queue, n, &bar, &stomp_opts)
                .await
                .map_err(|e| {
                    bar.abandon();
                    CliError::Stomp(format!(
                        "could not send the --verify messages to {} at {}: {e}; nothing was failed over",
                        old_node.name,
                        old_node.transport_uri()
                    ))
                })?;
            bar.finish_and_clear();
            Some(sent)
        }
        None => None,
    };

    // The trigger, and the race to the first CONNECTED.
    let candidates: Vec<(usize, String)> = members
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != old)
        .map(|(i, m)| (i, stomp_addr(m)))
        .collect();
    let spinner = super::spinner(match mode {
        FailoverMode::Stepdown => format!("{} stepping down", old_node.name),
        FailoverMode::Kill => format!("killing {}", old_node.name),
    });
    let t0 = Instant::now();
    let probe = tokio::spawn(first_serving(candidates, stomp_opts.clone()));
    let triggered = match mode {
        FailoverMode::Stepdown => old_client.stepdown().await,
        FailoverMode::Kill => match process::signal(&old_node, Signal::Kill) {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(CliError::Stomp(format!(
                "cannot kill {}: its recorded process is not running (see `mqctl node ls {c}`)",
                old_node.name
            ))),
            Err(e) => Err(e),
        },
    };
    if let Err(e) = triggered {
        probe.abort();
        spinner.abandon();
        return Err(e);
    }
    let mut timeline = Timeline {
        elected: old_epoch.is_some(),
        ..Timeline::default()
    };
    let taking_over = if timeline.elected {
        "waiting for ZooKeeper to elect another member"
    } else {
        "waiting for a slave to take the store lock"
    };
    let watcher = cluster.client(&old_node, WATCH_INTERVAL.max(Duration::from_millis(200)))?;
    let data_dir = Path::new(&old_node.data_dir);
    let deadline = t0 + FAILOVER_TRIGGER_TIMEOUT;
    tokio::pin!(probe);
    let (serving_at, new) = loop {
        tokio::select! {
            joined = &mut probe => match joined {
                Ok(found) => break found,
                Err(e) => {
                    spinner.abandon();
                    return Err(CliError::Stomp(format!("the STOMP probe failed: {e}")));
                }
            },
            _ = tokio::time::sleep(WATCH_INTERVAL) => {}
        }
        if timeline.down.is_none() {
            let down = match mode {
                FailoverMode::Kill => process::running_pid(&old_node).is_none(),
                FailoverMode::Stepdown => !matches!(watcher.readyz().await, Ok(true)),
            };
            if down {
                timeline.down = Some(t0.elapsed());
                spinner.set_message(format!("{} is down; {taking_over}", old_node.name));
            }
        }
        if let Some(old_epoch) = old_epoch
            && timeline.lock.is_none()
        {
            for (name, client) in &electors {
                let elected = client
                    .broker()
                    .await
                    .ok()
                    .and_then(|b| b.replication)
                    .filter(|r| r.epoch > old_epoch && r.master.as_deref() == Some(name.as_str()))
                    .map(|r| r.epoch);
                if let Some(epoch) = elected {
                    timeline.lock = Some((t0.elapsed(), name.clone()));
                    timeline.epoch = Some(epoch);
                    spinner.set_message(format!(
                        "ZooKeeper elected {name}; waiting for it to serve STOMP"
                    ));
                    break;
                }
            }
        } else if timeline.lock.is_none()
            && let Some(record) = LockHolder::read(data_dir)
                .filter(|r| r.pid != old_pid && members.iter().any(|m| m.name == r.holder))
        {
            timeline.lock = Some((t0.elapsed(), record.holder.clone()));
            spinner.set_message(format!(
                "{} took the store lock; waiting for it to serve STOMP",
                record.holder
            ));
        }
        if Instant::now() >= deadline {
            probe.abort();
            spinner.abandon();
            let roles = super::roles(&cluster, &members, STAT_REQUEST_TIMEOUT).await?;
            return Err(CliError::Timeout(format!(
                "no other member of {group} served STOMP within {} s of the {mode} of {} ({}); see `mqctl failover status {c}` and the nodes' logs",
                FAILOVER_TRIGGER_TIMEOUT.as_secs(),
                old_node.name,
                describe_roles(&members, &roles)
            )));
        }
    };
    let recovery = serving_at.saturating_duration_since(t0);
    let new_node = members[new].clone();
    // What the takeover made, as the new master reports it; the election's epoch as seen
    // while waiting if it does not answer (the failover is done: no error of this one fails it).
    let new_info = match cluster.client(&new_node, ADMIN_REQUEST_TIMEOUT) {
        Ok(client) => client.broker().await.ok(),
        Err(_) => None,
    };
    let elected = Elected::after(old_epoch, new_info.as_ref(), &new_node.name, timeline.epoch);
    spinner.finish_and_clear();

    // After: the group's own links live in its master's memory; give them to the new one.
    let links: Vec<LinkEntry> = cluster
        .manifest
        .links
        .iter()
        .filter(|l| l.from == group)
        .cloned()
        .collect();
    if !links.is_empty()
        && let Err(e) = links::apply_links(&cluster, &links).await
    {
        output::warn(&format!(
            "the links of {group} could not be re-created on {}: {e}",
            new_node.name
        ));
    }

    let verify = match sent {
        Some(sent) => {
            let uri = failover_uri(&members)?;
            let bar = output::progress(sent, &format!("consuming from {}", new_node.name));
            let report = verify::consume(&uri, &queue, sent, &bar, &stomp_opts)
                .await
                .map_err(|e| {
                    bar.abandon();
                    CliError::Stomp(format!(
                        "the failover of {group} to {} worked (recovery {} ms) but consuming queue {queue} through {uri} failed: {e}",
                        new_node.name,
                        recovery.as_millis()
                    ))
                })?;
            bar.finish_and_clear();
            Some(report)
        }
        None => None,
    };

    let report = FailoverReport {
        group: group.clone(),
        mode,
        old_master: old_node.name.clone(),
        new_master: new_node.name.clone(),
        recovery_ms: recovery.as_millis() as u64,
        verify,
        old_epoch,
        new_epoch: elected.new_epoch,
        lease: elected.lease,
    };
    if ctx.out.format() == Format::Json {
        ctx.out.json(&report)?;
    } else {
        ctx.out.table(&table(&report, now_ms()))?;
        output::note(&timeline.describe(mode, &old_node.name, &new_node.name, recovery));
        if mode == FailoverMode::Kill {
            output::note(&format!(
                "{} was killed; start it again as a slave with `mqctl node start {c}/{}`.",
                old_node.name, old_node.name
            ));
        }
    }
    match report.verify {
        Some(v) if v.lost > 0 => Err(CliError::Stomp(format!(
            "{} of {} confirmed messages were lost in the failover of {group} (queue {queue})",
            v.lost, v.sent
        ))),
        _ => Ok(Outcome::Complete),
    }
}

/// When each phase was seen, from the trigger.
#[derive(Debug, Default)]
struct Timeline {
    down: Option<Duration>,
    /// The store lock taken, or (`elected`) the election won, and by whom.
    lock: Option<(Duration, String)>,
    /// Whether the group elects through ZooKeeper (a replicated group).
    elected: bool,
    /// The epoch of that election, once seen.
    epoch: Option<u64>,
}

impl Timeline {
    fn describe(&self, mode: FailoverMode, old: &str, new: &str, serving: Duration) -> String {
        let mut parts = vec![format!("{mode} of {old} at 0 ms")];
        if let Some(d) = self.down {
            parts.push(format!("{old} down at +{} ms", d.as_millis()));
        }
        if let Some((d, who)) = &self.lock {
            parts.push(if self.elected {
                match self.epoch {
                    Some(e) => format!("{who} elected (epoch {e}) at +{} ms", d.as_millis()),
                    None => format!("{who} elected at +{} ms", d.as_millis()),
                }
            } else {
                format!("store lock taken by {who} at +{} ms", d.as_millis())
            });
        }
        parts.push(format!(
            "{new} serving STOMP at +{} ms",
            serving.as_millis()
        ));
        format!("Timeline: {}.", parts.join(", "))
    }
}

/// What a takeover made, from the new master's broker info.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Elected {
    /// A replicated group's new epoch.
    pub new_epoch: Option<u64>,
    /// A JDBC group's lease row.
    pub lease: Option<mq_shared::api::LeaseInfo>,
}

impl Elected {
    /// From `info` of the new master `name` (`None`: it did not answer): in a replicated group
    /// (`old_epoch` known) the epoch it serves in when it reports itself master, else `seen`
    /// (the epoch seen while waiting for the election); the lease row it reports.
    pub(super) fn after(
        old_epoch: Option<u64>,
        info: Option<&BrokerInfo>,
        name: &str,
        seen: Option<u64>,
    ) -> Elected {
        let reported = info
            .and_then(|b| b.replication.as_ref())
            .filter(|r| r.master.as_deref() == Some(name))
            .map(|r| r.epoch);
        Elected {
            new_epoch: old_epoch.and(reported.or(seen)),
            lease: info.and_then(|b| b.lease.clone()),
        }
    }
}

/// mqctl's clock, ms since the Unix epoch, for a lease's end.
pub(super) fn now_ms() -> i64 {
    i64::try_from(crate::home::now_ms()).unwrap_or(i64::MAX)
}

/// Tries a STOMP CONNECT on each candidate until one answers; returns when it did and which.
async fn first_serving(candidates: Vec<(usize, String)>, opts: ConnectOptions) -> (Instant, usize) {
    let options = ConnectOptions {
        connect_timeout: Duration::from_secs(2),
        ..opts
    };
    loop {
        for (i, addr) in &candidates {
            if let Ok(client) = StompClient::connect(addr, options.clone()).await {
                let at = Instant::now();
                let _ = client.disconnect().await;
                return (at, *i);
            }
        }
        tokio::time::sleep(FAILOVER_PROBE_INTERVAL).await;
    }
}

/// `HOST:PORT` of a member's STOMP transport.
fn stomp_addr(node: &NodeEntry) -> String {
    node.transport_uri()
}

/// `failover:(tcp://A,tcp://B,...)?randomize=false` over every member of the group.
fn failover_uri(members: &[NodeEntry]) -> Result<ClientUri> {
    let list: Vec<String> = members.iter().map(NodeEntry::transport_uri).collect();
    let text = format!("failover:({})?randomize=false", list.join(","));
    text.parse()
        .map_err(|e| CliError::Stomp(format!("cannot build the client URI {text}: {e}")))
}

/// `node1a is master, node1b did not answer`.
fn describe_roles(members: &[NodeEntry], roles: &[Option<mq_shared::api::Role>]) -> String {
    members
        .iter()
        .zip(roles)
        .map(|(m, r)| match r {
            Some(role) => format!("{} is {role}", m.name),
            None => format!("{} did not answer", m.name),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One row: the group, both masters and the recovery time; the check's counts; a replicated
/// group's epochs, a JDBC group's new lease (its end from `now_ms`). The epochs and the lease
/// are default columns when there is room for them in 80 columns: without `--verify`.
pub(super) fn table(report: &FailoverReport, now_ms: i64) -> Table {
    let mut header = vec!["group", "mode", "old master", "new master", "recovery ms"];
    let mut numeric = vec![4];
    let mut defaults = vec!["group", "old master", "new master", "recovery ms"];
    let mut row = vec![
        report.group.clone(),
        report.mode.to_string(),
        report.old_master.clone(),
        report.new_master.clone(),
        report.recovery_ms.to_string(),
    ];
    let room = report.verify.is_none();
    if let Some(v) = report.verify {
        numeric.extend(header.len()..header.len() + 4);
        header.extend(["sent", "received", "lost", "duplicated"]);
        defaults.extend(["sent", "lost", "duplicated"]);
        row.extend([
            v.sent.to_string(),
            v.received.to_string(),
            v.lost.to_string(),
            v.duplicated.to_string(),
        ]);
    }
    if report.old_epoch.is_some() || report.new_epoch.is_some() {
        numeric.extend(header.len()..header.len() + 2);
        header.extend(["old epoch", "new epoch"]);
        if room {
            defaults.extend(["old epoch", "new epoch"]);
        }
        row.extend([output::opt(report.old_epoch), output::opt(report.new_epoch)]);
    }
    if let Some(l) = &report.lease {
        header.extend(["lease holder", "lease ends", "lease ends at"]);
        if room {
            defaults.extend(["lease holder", "lease ends"]);
        }
        row.extend([
            l.holder.clone().unwrap_or_else(|| "(none)".to_string()),
            l.expires_at_ms
                .map_or_else(|| "-".to_string(), |at| super::status::relative(at, now_ms)),
            l.expires_at_ms
                .map_or_else(|| "-".to_string(), super::status::absolute),
        ]);
    }
    let mut table = Table::new(header, "No failover.")
        .numeric(numeric)
        .defaults(defaults);
    table.push(row);
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use mq_shared::api::{LeaseInfo, ReplicationInfo, Role};
    use mq_shared::ctl::VerifyReport;

    fn report() -> FailoverReport {
        FailoverReport {
            group: "node1".into(),
            mode: FailoverMode::Kill,
            old_master: "node1a".into(),
            new_master: "node1b".into(),
            recovery_ms: 2_180,
            verify: None,
            old_epoch: None,
            new_epoch: None,
            lease: None,
        }
    }

    fn verified() -> Option<VerifyReport> {
        Some(VerifyReport {
            sent: 1000,
            received: 1000,
            lost: 0,
            duplicated: 0,
        })
    }

    fn info(
        name: &str,
        replication: Option<ReplicationInfo>,
        lease: Option<LeaseInfo>,
    ) -> BrokerInfo {
        BrokerInfo {
            name: name.into(),
            version: "0".into(),
            role: Role::Master,
            uptime_ms: 1,
            transports: Vec::new(),
            admin: String::new(),
            data_dir: String::new(),
            persistent: true,
            pid: 1,
            store: Default::default(),
            usage: Default::default(),
            replication,
            lease,
        }
    }

    fn lease() -> LeaseInfo {
        LeaseInfo {
            holder: Some("node1b".into()),
            expires_at_ms: Some(2_000),
            keep_alive_ms: 500,
        }
    }

    /// The default columns' names and how wide the table renders with them (a space either
    /// side of each cell, a border after each column and one more), before any cut.
    fn defaults_and_width(t: &Table) -> (Vec<&'static str>, usize) {
        let names: Vec<&'static str> = match &t.defaults {
            Some(d) => d.iter().copied().filter(|n| t.header.contains(n)).collect(),
            None => t.header.clone(),
        };
        let width = names
            .iter()
            .map(|n| {
                let i = t.header.iter().position(|h| h == n).unwrap_or_default();
                t.rows
                    .iter()
                    .map(|r| r[i].chars().count())
                    .chain([n.chars().count()])
                    .max()
                    .unwrap_or_default()
                    + 3
            })
            .sum::<usize>()
            + 1;
        (names, width)
    }

    #[test]
    fn the_election_is_read_from_the_new_master() {
        let rep = |epoch, master: &str| ReplicationInfo {
            epoch,
            master: Some(master.into()),
            replicas: Vec::new(),
        };
        let new = info("node1b", Some(rep(4, "node1b")), None);
        let e = Elected::after(Some(3), Some(&new), "node1b", Some(4));
        assert_eq!((e.new_epoch, e.lease), (Some(4), None));
        // Not answering, or not (yet) master of its own epoch: the epoch seen while waiting.
        assert_eq!(
            Elected::after(Some(3), None, "node1b", Some(4)).new_epoch,
            Some(4)
        );
        let follower = info("node1b", Some(rep(5, "node1c")), None);
        assert_eq!(
            Elected::after(Some(3), Some(&follower), "node1b", None).new_epoch,
            None
        );
        // A JDBC group: no epoch, the lease row.
        let jdbc = info("node1b", None, Some(lease()));
        assert_eq!(
            Elected::after(None, Some(&jdbc), "node1b", None),
            Elected {
                new_epoch: None,
                lease: Some(lease())
            }
        );
    }

    #[test]
    fn a_shared_file_group_shows_what_it_did_before() {
        let t = table(&report(), 0);
        assert_eq!(
            t.header,
            ["group", "mode", "old master", "new master", "recovery ms"]
        );
        let t = table(
            &FailoverReport {
                verify: verified(),
                ..report()
            },
            0,
        );
        let (names, width) = defaults_and_width(&t);
        assert_eq!(
            names,
            [
                "group",
                "old master",
                "new master",
                "recovery ms",
                "sent",
                "lost",
                "duplicated"
            ]
        );
        assert!(width <= 80, "{width}");
        assert_eq!(t.numeric, [4, 5, 6, 7, 8]);
    }

    #[test]
    fn a_replicated_group_shows_both_epochs() {
        let elected = FailoverReport {
            old_epoch: Some(3),
            new_epoch: Some(4),
            ..report()
        };
        let t = table(&elected, 0);
        assert_eq!(t.header[5..], ["old epoch", "new epoch"]);
        assert_eq!(t.rows[0][5..], ["3", "4"]);
        assert_eq!(t.numeric, [4, 5, 6]);
        let (names, width) = defaults_and_width(&t);
        assert!(names.ends_with(&["old epoch", "new epoch"]), "{names:?}");
        assert!(width <= 80, "{width}");
        // With --verify the counts take the room: the epochs are in -o wide.
        let t = table(
            &FailoverReport {
                verify: verified(),
                ..elected.clone()
            },
            0,
        );
        assert_eq!(t.header[9..], ["old epoch", "new epoch"]);
        assert_eq!(t.numeric, [4, 5, 6, 7, 8, 9, 10]);
        let (names, width) = defaults_and_width(&t);
        assert!(!names.contains(&"new epoch"), "{names:?}");
        assert!(width <= 80, "{width}");
        // An epoch the new master did not report.
        let t = table(
            &FailoverReport {
                new_epoch: None,
                ..elected
            },
            0,
        );
        assert_eq!(t.rows[0][5..], ["3", "-"]);
    }

    #[test]
    fn a_jdbc_group_shows_the_new_lease() {
        let t = table(
            &FailoverReport {
                lease: Some(lease()),
                ..report()
            },
            800,
        );
        assert_eq!(
            t.header[5..],
            ["lease holder", "lease ends", "lease ends at"]
        );
        assert_eq!(
            t.rows[0][5..],
            ["node1b", "in 1.2 s", "1970-01-01T00:00:02.000Z"]
        );
        let (names, width) = defaults_and_width(&t);
        assert!(
            names.ends_with(&["lease holder", "lease ends"]),
            "{names:?}"
        );
        assert!(width <= 80, "{width}");
    }
}
