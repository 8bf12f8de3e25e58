//! `mqctl failover trigger --url URL --url URL...`: a master/slave group outside any cluster,
//! given by its members' admin URLs. The member serving steps down (a stepdown is all there
//! is: mqctl has no process to kill), and the recovery is timed from the stepdown request
//! until another member's `/readyz` answers 200. `--verify` needs a cluster. The report
//! carries the epochs of a replicated group and the new lease of a JDBC group, as the old and
//! the new master report them.

use std::time::{Duration, Instant};

use mq_shared::ctl::{FailoverMode, FailoverReport};
use mq_shared::defaults::{ADMIN_REQUEST_TIMEOUT, FAILOVER_TRIGGER_TIMEOUT};

use crate::args::failover::TriggerArgs;
use crate::client::admin::AdminClient;
use crate::commands::Context;
use crate::commands::queue::url_endpoint;
use crate::error::{CliError, Outcome, Result};
use crate::output::{self, Format};

/// Group name of the members given by URL.
pub const GROUP: &str = "--url";

/// How often the other members' `/readyz` is asked.
const POLL: Duration = Duration::from_millis(20);

/// Runs `failover trigger --url ...`.
pub async fn trigger(ctx: &Context, args: &TriggerArgs) -> Result<Outcome> {
    let mode: FailoverMode = args.mode.into();
    if mode == FailoverMode::Kill {
        return Err(CliError::Usage(
            "--mode kill needs a process mqctl runs; with --url only a stepdown is possible"
                .to_string(),
        ));
    }
    if args.verify.is_some() {
        return Err(CliError::Usage(
            "--verify needs a cluster (mqctl cluster adopt the members into one first)".to_string(),
        ));
    }
    let urls = &args.target.urls.url;
    if urls.len() < 2 {
        return Err(CliError::Usage(
            "give every member of the group with --url (two at least)".to_string(),
        ));
    }
    let clients = urls
        .iter()
        .map(|u| {
            AdminClient::new(
                url_endpoint(u, args.target.urls.token_file.as_deref())?,
                ADMIN_REQUEST_TIMEOUT,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let mut infos = Vec::new();
    for c in &clients {
        infos.push(c.broker().await.ok());
    }
    let roles: Vec<Option<mq_shared::api::Role>> =
        infos.iter().map(|b| b.as_ref().map(|b| b.role)).collect();
    let described = || {
        clients
            .iter()
            .zip(&roles)
            .map(|(c, r)| {
                format!(
                    "{} {}",
                    c.label(),
                    r.map_or("not answering".to_string(), |r| r.to_string())
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(old) = roles.iter().position(|r| super::serves(*r)) else {
        return Err(CliError::Unavailable(format!(
            "no member given by --url is master ({})",
            described()
        )));
    };
    if !roles.contains(&Some(mq_shared::api::Role::Slave)) {
        return Err(CliError::Unavailable(format!(
            "no slave among the members given by --url to take over ({})",
            described()
        )));
    }
    let spinner = super::spinner(format!("{} stepping down", clients[old].label()));
    let t0 = Instant::now();
    if let Err(e) = clients[old].stepdown().await {
        spinner.abandon();
        return Err(e);
    }
    let deadline = t0 + FAILOVER_TRIGGER_TIMEOUT;
    let new = 'wait: loop {
        for (i, c) in clients.iter().enumerate() {
            if i != old && matches!(c.readyz().await, Ok(true)) {
                break 'wait i;
            }
        }
        if Instant::now() >= deadline {
            spinner.abandon();
            return Err(CliError::Timeout(format!(
                "no other member given by --url served within {} s after {} stepped down",
                FAILOVER_TRIGGER_TIMEOUT.as_secs(),
                clients[old].label()
            )));
        }
        tokio::time::sleep(POLL).await;
    };
    let recovery = t0.elapsed();
    let old_epoch = infos[old]
        .as_ref()
        .and_then(|b| b.replication.as_ref())
        .map(|r| r.epoch);
    let new_info = clients[new].broker().await.ok();
    let elected = super::trigger::Elected::after(
        old_epoch,
        new_info.as_ref(),
        new_info.as_ref().map_or("", |b| b.name.as_str()),
        None,
    );
    spinner.finish_and_clear();
    let report = FailoverReport {
        group: GROUP.to_string(),
        mode,
        old_master: clients[old].label().to_string(),
        new_master: clients[new].label().to_string(),
        recovery_ms: recovery.as_millis() as u64,
        verify: None,
        old_epoch,
        new_epoch: elected.new_epoch,
        lease: elected.lease,
    };
    if ctx.out.format() == Format::Json {
        ctx.out.json(&report)?;
    } else {
        ctx.out
            .table(&super::trigger::table(&report, super::trigger::now_ms()))?;
        output::note(&format!(
            "{} stepped down; {} answered /readyz as master after {} ms.",
            report.old_master, report.new_master, report.recovery_ms
        ));
    }
    Ok(Outcome::Complete)
}
