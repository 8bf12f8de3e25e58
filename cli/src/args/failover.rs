//! `mqctl failover ...`: arguments.

use clap::{Args, Subcommand, ValueEnum};
use mq_shared::ctl::FailoverMode;

use crate::args::cluster::ClusterOrUrls;

/// `mqctl failover VERB`.
#[derive(Debug, Subcommand)]
pub enum FailoverCommand {
    /// Make the master of an HA group let go, and measure how long until a slave serves.
    ///
    /// The master steps down (POST /api/v1/ha/stepdown) or, with --mode kill, is killed with
    /// SIGKILL. Progress is shown through each phase (old master down, store lock taken, new
    /// master serving STOMP), then a table: old master, new master, and the time to recovery,
    /// from the kill or stepdown request until a STOMP CONNECT to the new master is answered.
    /// With --verify N, N persistent messages are sent (each confirmed by a RECEIPT) to a fresh
    /// queue before, and consumed through failover:(...) after: lost and duplicated are counted
    /// and any loss is exit code 1. The group's own links are re-created on the new master if it
    /// has not restored them itself.
    ///
    /// With --url (repeatable) instead of NAME: the members of one group outside any cluster;
    /// the one serving steps down (stepdown only: mqctl has no process to kill), and recovery
    /// is timed until another member's /readyz answers 200 (--verify needs a cluster).
    #[command(
        override_usage = "mqctl failover trigger NAME [--broker B] [--mode stepdown|kill] [--verify N]\n       mqctl failover trigger --url URL --url URL... [--token-file F]",
        after_help = "\
Examples:
  mqctl cluster create demo --ha
  mqctl failover trigger demo                           # first HA group, stepdown
  mqctl failover trigger demo --broker node2 --mode kill --verify 1000
  mqctl failover trigger demo -o json | jq .recovery_ms
  mqctl failover trigger --url http://10.0.0.5:8161 --url http://10.0.0.6:8161"
    )]
    Trigger(TriggerArgs),

    /// Each group's master, slaves, members down, and the holder recorded in its lock file.
    ///
    /// With --url (repeatable) instead of NAME: the members of one group outside any cluster.
    #[command(
        override_usage = ClusterOrUrls::usage("failover status"),
        after_help = ClusterOrUrls::examples("failover status", "'.groups[] | {group, master}'", "")
    )]
    Status(ClusterOrUrls),
}

/// `failover trigger`.
#[derive(Debug, Args)]
pub struct TriggerArgs {
    #[command(flatten)]
    pub target: ClusterOrUrls,

    /// The group (broker) to fail over, e.g. node2, or one of its processes; default: the
    /// first group with more than one member.
    #[arg(long, value_name = "B")]
    pub broker: Option<String>,

    /// stepdown: a planned switchover; kill: SIGKILL to the master, as a crash.
    #[arg(long, value_enum, default_value_t = ModeArg::Stepdown)]
    pub mode: ModeArg,

    /// Send N persistent messages before and check all N are consumable after.
    #[arg(long, value_name = "N")]
    pub verify: Option<u64>,
}

/// Modes `failover trigger --mode` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// POST /api/v1/ha/stepdown to the master.
    Stepdown,
    /// SIGKILL to the master's process.
    Kill,
}

impl From<ModeArg> for FailoverMode {
    fn from(m: ModeArg) -> FailoverMode {
        match m {
            ModeArg::Stepdown => FailoverMode::Stepdown,
            ModeArg::Kill => FailoverMode::Kill,
        }
    }
}
