//! `mqctl bench`: throughput and end-to-end latency of any STOMP broker, with an exact check
//! that every message arrived once. The engine is in [`crate::bench`].

use std::time::Duration;

use mq_shared::bench::{BenchLoad, BenchReport, ReceiptMode};
use mq_shared::client::AckMode;
use mq_shared::uri::ClientUri;

use mq_shared::defaults::ADMIN_REQUEST_TIMEOUT;

use crate::args::bench::{Ack, BenchArgs};
use crate::args::queue::is_stomp_uri;
use crate::bench::{self, BenchConfig, payload};
use crate::client::admin::AdminClient;
use crate::cluster::Cluster;
use crate::commands::Context;
use crate::commands::queue::url_endpoint;
use crate::error::{CliError, Outcome, Result};
use crate::output::{self, Format, Table};

/// Runs `bench`.
pub async fn run(ctx: &Context, args: BenchArgs) -> Result<Outcome> {
    let (url, consume_url) = endpoints(ctx, &args).await?;
    let mut cfg = config(&args, url, consume_url)?;
    // A cluster's nodes: log in as its client user and trust its CA, unless told otherwise.
    if let Some(target) = &args.target {
        let (name, _) = crate::args::split_target(target);
        let opts = crate::security::stomp_options(&Cluster::load(&ctx.home, &name)?.manifest)?;
        if cfg.login.is_none() {
            cfg.login = opts.login;
            cfg.passcode = opts.passcode;
        }
        if cfg.tls.is_none() {
            cfg.tls = opts.tls;
        }
    }
    if let Some(n) = args.idle_connections {
        let hold = Duration::from_secs_f64(args.hold);
        let opened = bench::hold_idle(&cfg, n, hold, |n| {
            output::note(&format!(
                "opened {n} idle connections; holding them for {} s",
                args.hold
            ));
        })
        .await
        .map_err(|e| CliError::Bench(e.to_string()))?;
        ctx.out.sentence(&format!(
            "Held {opened} idle connections for {} s.",
            args.hold
        ))?;
        return Ok(Outcome::Complete);
    }
    let report = bench::run(&cfg, output::progress).await.map_err(|e| {
        CliError::Bench(format!(
            "{e}; check that a broker speaks STOMP at {}",
            cfg.url
        ))
    })?;
    if ctx.out.format() == Format::Json {
        ctx.out.json(&report)?;
    } else {
        ctx.out.table(&table(&report))?;
        if report.foreign > 0 {
            output::note(&format!(
                "{} messages left in {} by an earlier run were consumed and not counted.",
                report.foreign, report.params.destination
            ));
        }
    }
    if report.ok() {
        return Ok(Outcome::Complete);
    }
    let mut problems = Vec::new();
    if report.lost > 0 {
        problems.push(format!("{} of {} messages lost", report.lost, report.sent));
    }
    if report.duplicated > 0 {
        problems.push(format!("{} duplicated", report.duplicated));
    }
    problems.extend(report.errors.iter().cloned());
    Err(CliError::Bench(format!(
        "bench against {} failed: {}",
        report.params.endpoint,
        problems.join("; ")
    )))
}

/// The STOMP URIs producers and consumers connect to: from NAME[/NODE], from a node's admin
/// URL, or as given.
async fn endpoints(ctx: &Context, args: &BenchArgs) -> Result<(String, Option<String>)> {
    let url = match (&args.target, &args.url, &args.stomp) {
        (Some(target), _, _) => {
            let (name, node) = crate::args::split_target(target);
            let cluster = Cluster::load(&ctx.home, &name)?;
            cluster.stomp_uri(node.as_deref())?
        }
        (None, Some(url), _) if is_stomp_uri(url) => url.clone(),
        (None, Some(url), _) => {
            let endpoint = url_endpoint(url, args.token_file.as_deref())?;
            let client = AdminClient::new(endpoint, ADMIN_REQUEST_TIMEOUT)?;
            let info = client.broker().await?;
            let host = client.host().to_string();
            match info.transports.first() {
                Some(t) => crate::cluster::reachable_uri(t, &host),
                None => {
                    return Err(CliError::Unavailable(format!(
                        "{} at {url} has no STOMP transport open (it is a {}); bench its group's master",
                        info.name, info.role
                    )));
                }
            }
        }
        (None, None, Some(stomp)) => stomp.clone(),
        (None, None, None) => DEFAULT_STOMP.to_string(),
    };
    let consume = match (&args.consume_node, &args.consume_stomp, &args.target) {
        (Some(node), _, Some(target)) => {
            let (name, _) = crate::args::split_target(target);
            let cluster = Cluster::load(&ctx.home, &name)?;
            Some(cluster.stomp_uri(Some(node))?)
        }
        (_, Some(url), _) => Some(url.clone()),
        _ => None,
    };
    Ok((url, consume))
}

/// Where `bench` connects without NAME, --url or --stomp: mqnode's default transport.
const DEFAULT_STOMP: &str = mq_shared::defaults::TRANSPORT_URI;

/// Checks the arguments and turns them into the engine's configuration.
fn config(args: &BenchArgs, url: String, consume_url: Option<String>) -> Result<BenchConfig> {
    let uri: ClientUri = url
        .parse()
        .map_err(|e| CliError::Usage(format!("--stomp: {e}")))?;
    let endpoints = uri.endpoints();
    if endpoints.is_empty() {
        return Err(CliError::Usage("--stomp names no endpoint".to_string()));
    }
    let consume_endpoints = match &consume_url {
        None => None,
        Some(url) => {
            let uri: ClientUri = url
                .parse()
                .map_err(|e| CliError::Usage(format!("--consume-stomp: {e}")))?;
            Some(uri.endpoints())
        }
    };
    let messages = match (args.messages, args.duration) {
        (None, None) => Some(10_000),
        (m, _) => m,
    };
    if args.producers == 0 && (args.consumers == 0 || args.messages.is_none() || args.warmup > 0) {
        return Err(CliError::Usage(
            "--producers 0 drains messages already waiting: it needs consumers and --messages, and takes no --warmup"
                .to_string(),
        ));
    }
    if args.consumers == 0 && args.duration.is_none() && args.warmup > 0 {
        return Err(CliError::Usage(
            "--warmup needs consumers to take the warm-up messages away".to_string(),
        ));
    }
    if args.window > 1 && args.receipts == crate::args::bench::Receipts::None {
        return Err(CliError::Usage(
            "--window applies to --receipts each only".to_string(),
        ));
    }
    let destination = if args.queue.starts_with("/queue/") || args.queue.starts_with("/topic/") {
        args.queue.clone()
    } else {
        format!("/queue/{}", args.queue)
    };
    let ack = match args.ack {
        Ack::Auto => AckMode::Auto,
        Ack::Client => AckMode::Client,
        Ack::ClientIndividual => AckMode::ClientIndividual,
    };
    Ok(BenchConfig {
        url,
        endpoints,
        consume_endpoints,
        destination,
        queues: args.queues,
        load: BenchLoad {
            messages,
            duration_s: args
                .duration
                .map(|s| Duration::from_secs_f64(s).as_secs_f64()),
            size: args.size.max(payload::HEADER_LEN),
            producers: args.producers,
            consumers: args.consumers,
            persistent: args.persistence.is_persistent(),
            receipts: ReceiptMode::from(args.receipts),
            window: args.window,
            rate: args.rate,
            ack: ack.as_str().to_owned(),
            prefetch: args.prefetch,
            warmup: args.warmup,
            selector: args.selector.clone(),
            headers: args.headers.iter().cloned().collect(),
        },
        ack,
        login: args.login.clone(),
        passcode: args.passcode.clone(),
        vhost: args.vhost.clone(),
        tls: match &args.tls_ca {
            Some(ca) => Some(
                mq_shared::tls::client_config(ca, None)
                    .map_err(|e| CliError::Usage(format!("--tls-ca: {e}")))?,
            ),
            None => None,
        },
        drain_timeout: Duration::from_secs_f64(args.drain_timeout),
    })
}

/// The columns of the result table; by default a table leaves out the first (the broker).
const HEADER: [&str; 9] = [
    "broker",
    "messages",
    "send/s",
    "recv/s",
    "p50 ms",
    "p99 ms",
    "max ms",
    "lost",
    "duplicated",
];

/// The one-row result table.
fn table(r: &BenchReport) -> Table {
    let mut t = Table::new(HEADER.to_vec(), "No result.")
        .numeric(1..=8)
        .defaults(HEADER[1..].iter().copied());
    let broker = match &r.params.server {
        Some(server) => format!("{} ({server})", r.params.endpoint),
        None => r.params.endpoint.clone(),
    };
    t.push(vec![
        broker,
        r.received.to_string(),
        format!("{:.0}", r.send_rate),
        format!("{:.0}", r.receive_rate),
        format!("{:.2}", r.latency_ms.p50),
        format!("{:.2}", r.latency_ms.p99),
        format!("{:.2}", r.latency_ms.max),
        r.lost.to_string(),
        r.duplicated.to_string(),
    ]);
    t
}
