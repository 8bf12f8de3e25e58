//! `mqctl bench`: arguments.

use clap::{Args, ValueEnum};
use mq_shared::bench::ReceiptMode;

/// `--receipts`: whether each SEND asks for a RECEIPT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Receipts {
    /// A receipt per SEND; the producer waits for it (see --window).
    Each,
    /// No receipts; SEND frames go back to back.
    None,
}

impl From<Receipts> for ReceiptMode {
    fn from(r: Receipts) -> ReceiptMode {
        match r {
            Receipts::Each => ReceiptMode::Each,
            Receipts::None => ReceiptMode::None,
        }
    }
}

/// `--ack`: the consumers' SUBSCRIBE ack mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Ack {
    /// The broker considers a message acknowledged once delivered.
    Auto,
    /// ACK per message, cumulative.
    Client,
    /// ACK per message.
    ClientIndividual,
}

/// Benchmark any STOMP broker (mqnode, ActiveMQ, RabbitMQ): throughput, end-to-end latency,
/// and a check that every message arrived exactly once.
///
/// The broker is a node of a cluster (NAME[/NODE]), a node's admin URL (--url, whose STOMP
/// transport is asked for), or any STOMP URL (--stomp); with none of them,
/// tcp://127.0.0.1:61613. Each producer and each consumer has its own connection. Every body
/// carries the producer, a sequence number and a send timestamp, so consumers measure latency
/// from the send and count lost and duplicated messages exactly. Exits 1 when a message was
/// lost or duplicated or a client failed. docs/mqctl.md describes every option.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  mqctl bench demo --messages 20000 --receipts each
  mqctl bench demo/node2 --producers 4 --consumers 4 --consume-node node3
  mqctl bench --stomp tcp://127.0.0.1:61613 --duration 30 --rate 1000 -o json
  mqctl bench demo --non-persistent --selector \"region = 'eu' AND amount > 100\" \\
        --header region=eu --header amount=250
  mqctl bench --stomp tcp://127.0.0.1:61613 --non-persistent --login guest --passcode guest   (RabbitMQ)")]
pub struct BenchArgs {
    /// A cluster (its first broker) or one node or group of it: demo, demo/node2. A group is
    /// reached through failover:(...) over its members.
    #[arg(value_name = "NAME[/NODE]", conflicts_with_all = ["url", "stomp"])]
    pub target: Option<String>,
    /// Admin URL of a node outside any cluster (http://HOST:PORT); its STOMP transport is
    /// taken from GET /api/v1/broker. (A STOMP URL here is read as --stomp.)
    #[arg(long, value_name = "URL", conflicts_with = "stomp")]
    pub url: Option<String>,
    /// File holding the admin token of the --url node [env: MQCTL_TOKEN_FILE].
    #[arg(long, value_name = "FILE", env = "MQCTL_TOKEN_FILE", hide_env = true)]
    pub token_file: Option<std::path::PathBuf>,
    /// Any STOMP broker: tcp://HOST:PORT, stomp://HOST:PORT, or failover:(...) (the first
    /// endpoint that answers is used) [default: tcp://127.0.0.1:61613 without NAME or --url].
    #[arg(long, value_name = "STOMP-URL")]
    pub stomp: Option<String>,
    /// Consumers connect to this STOMP URL instead (e.g. another broker of a network, to
    /// measure forwarding through a bridge) [default: where the producers connect].
    #[arg(
        long,
        value_name = "STOMP-URL",
        alias = "consume-url",
        conflicts_with = "consume_node"
    )]
    pub consume_stomp: Option<String>,
    /// Consumers connect to this node or group of the cluster NAME instead.
    #[arg(long, value_name = "NODE", requires = "target")]
    pub consume_node: Option<String>,
    /// Messages to send in all (split across producers) [default: 10000 without --duration].
    #[arg(long, value_name = "N", conflicts_with = "duration",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub messages: Option<u64>,
    /// Send for this many seconds instead of a fixed number of messages [default: off].
    #[arg(long, value_name = "SECS", value_parser = parse_positive_secs)]
    pub duration: Option<f64>,
    /// Body size in bytes (at least 48: the bench's own header).
    #[arg(long, value_name = "BYTES", default_value_t = 1024)]
    pub size: usize,
    /// Producer connections (0: only consume --messages N messages already waiting, e.g. left
    /// by a run with --consumers 0, and report the drain rate).
    #[arg(long, value_name = "P", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub producers: u32,
    /// Consumer connections (0: only produce, and leave the messages in the queue).
    #[arg(long, value_name = "C", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub consumers: u32,
    /// `persistent:true` (the default) or `persistent:false` on every SEND.
    #[command(flatten)]
    pub persistence: crate::args::Persistence,
    /// Ask for a RECEIPT per SEND (`each`) or not (`none`).
    #[arg(long, value_enum, value_name = "MODE", default_value_t = Receipts::None)]
    pub receipts: Receipts,
    /// With `--receipts each`: receipts a producer may wait for at once (1: strictly one
    /// SEND, then its RECEIPT, then the next SEND).
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub window: u32,
    /// Total send rate in messages per second (fixed load, for latency) [default: as fast as
    /// possible]. Latency is then measured from each message's scheduled send time.
    #[arg(long, value_name = "R", value_parser = parse_positive_rate)]
    pub rate: Option<f64>,
    /// Queue name (`/queue/NAME`; a leading `/queue/` or `/topic/` is kept as given).
    #[arg(long, value_name = "NAME", default_value = "mqbench")]
    pub queue: String,
    /// Spread the messages round-robin over N queues NAME.0 ... NAME.N-1; every consumer
    /// subscribes to all of them.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub queues: u32,
    /// Instead of a run: open N idle connections, hold them for --hold seconds, close them
    /// (to measure the broker's memory per connection) [default: off].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub idle_connections: Option<u32>,
    /// With --idle-connections: seconds to hold them open.
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = parse_positive_secs)]
    pub hold: f64,
    /// Messages sent and consumed before the measured run (not counted).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub warmup: u64,
    /// The consumers' ack mode.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = Ack::Auto)]
    pub ack: Ack,
    /// A JMS selector every consumer subscribes with (`selector` header), to measure what
    /// selecting costs; give the producers matching headers with --header, or the messages
    /// the selector refuses stay in the queue and count as lost [default: none].
    #[arg(long, value_name = "EXPR")]
    pub selector: Option<String>,
    /// A header on every SEND, `NAME=VALUE` (repeatable): what --selector reads [default:
    /// none].
    #[arg(long = "header", value_name = "NAME=VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// Prefetch per consumer (`activemq.prefetchSize` and RabbitMQ's `prefetch-count`).
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub prefetch: u32,
    /// Login for CONNECT (RabbitMQ: guest) [default: none].
    #[arg(long, value_name = "USER")]
    pub login: Option<String>,
    /// Passcode for CONNECT (RabbitMQ: guest) [default: none].
    #[arg(long, value_name = "SECRET")]
    pub passcode: Option<String>,
    /// PEM CA certificate to verify an ssl:// broker against (a cluster created with --tls
    /// uses its own CA).
    #[arg(long = "tls-ca", value_name = "FILE")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// The `host` header of CONNECT (virtual host; RabbitMQ: /).
    #[arg(long, value_name = "VHOST", default_value = "localhost")]
    pub vhost: String,
    /// Once the producers are done, how long consumers wait for a missing message before
    /// counting it lost.
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = parse_positive_secs)]
    pub drain_timeout: f64,
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("expected NAME=VALUE, got `{s}`")),
    }
}

fn parse_positive_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!("expected seconds between 0 and 86400, got `{s}`")),
    }
}

fn parse_positive_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!(
            "expected a positive number of messages per second, got `{s}`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_checked() {
        assert!(parse_positive_secs("0").is_err());
        assert!(parse_positive_secs("x").is_err());
        assert_eq!(parse_positive_secs("1.5"), Ok(1.5));
        assert!(parse_positive_rate("-1").is_err());
        assert!(parse_positive_rate("inf").is_err());
        assert_eq!(parse_positive_rate("2000"), Ok(2000.0));
    }
}
