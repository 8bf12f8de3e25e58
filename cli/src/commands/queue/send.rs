//! `mqctl queue send NAME[/NODE] QUEUE`: send messages through a node's admin API, or over
//! STOMP to `--stomp tcp://...` or `--stomp failover:(...)`, following the master of a group.

use std::collections::BTreeMap;
use std::time::Duration;

use mq_shared::api::SendRequest;
use mq_shared::client::{ClientError, ConnectOptions, StompClient};
use mq_shared::ctl::SendReport;
use mq_shared::defaults::FAILOVER_TRIGGER_TIMEOUT;
use mq_shared::failover::Failover;
use mq_shared::uri::ClientUri;

use crate::args::queue::SendArgs;
use crate::commands::Context;
use crate::error::{CliError, Outcome, Result};
use crate::output;

/// Runs `queue send`.
pub async fn run(ctx: &Context, args: SendArgs) -> Result<Outcome> {
    let body = match (&args.body, &args.file) {
        (Some(body), _) => body.clone(),
        (None, Some(file)) => {
            let bytes = std::fs::read(file).map_err(|e| CliError::io("could not read", file, e))?;
            String::from_utf8(bytes).map_err(|_| {
                CliError::Usage(format!(
                    "{} is not UTF-8 text; the admin API sends text bodies only",
                    file.display()
                ))
            })?
        }
        (None, None) => {
            return Err(CliError::Usage(
                "give the message body with --body TEXT or --file F (--body '' sends an empty one)"
                    .to_string(),
            ));
        }
    };
    if let Some(target) = args.stomp_target() {
        let (uri, queue) = target.map_err(CliError::Usage)?;
        let report = send_stomp(&uri, &queue, &body, &args).await?;
        return print(ctx, &report);
    }
    let (client, queue) = super::resolve(ctx, &args.at).await?;
    let persistent = args.persistence.is_persistent();
    let request = SendRequest {
        body,
        headers: args.headers.iter().cloned().collect::<BTreeMap<_, _>>(),
        persistent: Some(persistent),
    };
    let bar = if args.messages > 1 {
        output::progress(args.messages, "sending")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut ids = Vec::new();
    for sent in 0..args.messages {
        match client.send_message(&queue, &request).await {
            Ok(answer) => ids.push(answer.message_id),
            Err(e) => {
                bar.abandon();
                if sent > 0 {
                    output::note(&format!(
                        "{sent} of {} messages were sent before this error.",
                        args.messages
                    ));
                }
                return Err(e);
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let report = SendReport {
        node: client.label().to_string(),
        queue,
        sent: args.messages,
        persistent,
        message_ids: ids,
    };
    print(ctx, &report)
}

/// Prints what was sent: JSON, or one sentence.
fn print(ctx: &Context, report: &SendReport) -> Result<Outcome> {
    ctx.out.report(report, |r| {
        let kind = if r.persistent {
            "persistent"
        } else {
            "non-persistent"
        };
        let plural = if r.sent == 1 { "" } else { "s" };
        let id = match r.message_ids.as_slice() {
            [one] => format!(" (id {one})"),
            _ => String::new(),
        };
        format!(
            "Sent {} {kind} message{plural} to queue {} on {}{id}.",
            r.sent, r.queue, r.node
        )
    })?;
    Ok(Outcome::Complete)
}

/// Sends `args.messages` messages over STOMP, each with a RECEIPT. A dropped connection (a master
/// failing over) is re-established through the URI's failover options and the unconfirmed
/// message is sent again: at least once, never lost. STOMP receipts carry no message id, so
/// the report lists none.
async fn send_stomp(uri: &str, queue: &str, body: &str, args: &SendArgs) -> Result<SendReport> {
    let parsed: ClientUri = uri
        .parse()
        .map_err(|e| CliError::Usage(format!("--stomp: {e}")))?;
    let queue = queue.strip_prefix("/queue/").unwrap_or(queue);
    if queue.is_empty() {
        return Err(CliError::Usage("the queue name is empty".to_string()));
    }
    let persistent = args.persistence.is_persistent();
    let mut headers: Vec<(&str, &str)> =
        vec![("persistent", if persistent { "true" } else { "false" })];
    headers.extend(args.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let destination = format!("/queue/{queue}");
    // A plain tcp:// endpoint is tried once, as ActiveMQ's tcp transport; failover:(...) retries
    // per its options.
    let reconnect = matches!(parsed, ClientUri::Failover(_));
    let opts = ConnectOptions {
        login: args.login.clone(),
        passcode: args.passcode.clone(),
        tls: match &args.tls_ca {
            Some(ca) => Some(
                mq_shared::tls::client_config(ca, None)
                    .map_err(|e| CliError::Usage(format!("--tls-ca: {e}")))?,
            ),
            None => None,
        },
        ..ConnectOptions::default()
    };
    let mut failover = Failover::new(&parsed, opts.clone());
    let mut client = connect(&mut failover, uri, reconnect, &opts).await?;
    let bar = if args.messages > 1 {
        output::progress(args.messages, "sending")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut sent = 0;
    while sent < args.messages {
        match client
            .send(&destination, body.to_string(), &headers, true)
            .await
        {
            Ok(()) => {
                sent += 1;
                bar.inc(1);
            }
            Err(ClientError::Io(_) | ClientError::Closed) if reconnect => {
                bar.suspend(|| {
                    output::note(&format!(
                        "connection to {} lost after {sent} confirmed messages; reconnecting",
                        endpoint(&failover)
                    ))
                });
                client = connect(&mut failover, uri, reconnect, &opts).await?;
            }
            Err(e) => {
                bar.abandon();
                return Err(CliError::Stomp(format!(
                    "{} refused a message to {destination} after {sent} of {}: {e}",
                    endpoint(&failover),
                    args.messages
                )));
            }
        }
    }
    bar.finish_and_clear();
    let _ = client.disconnect().await;
    Ok(SendReport {
        node: endpoint(&failover),
        queue: queue.to_string(),
        sent,
        persistent,
        message_ids: Vec::new(),
    })
}

/// Connects through `failover` (or, without `reconnect`, tries its one endpoint once), bounded
/// so that a URI whose endpoints never answer ends.
async fn connect(
    failover: &mut Failover,
    uri: &str,
    reconnect: bool,
    opts: &ConnectOptions,
) -> Result<StompClient> {
    let limit: Duration = FAILOVER_TRIGGER_TIMEOUT;
    let attempt = async {
        match (reconnect, failover.endpoints().first()) {
            (false, Some(ep)) => StompClient::connect(&ep.to_uri_string(), opts.clone()).await,
            _ => failover.connect().await,
        }
    };
    match tokio::time::timeout(limit, attempt).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(CliError::Stomp(format!(
            "could not connect to {uri}: {e}; check the URL and that a broker serves there"
        ))),
        Err(_) => Err(CliError::Timeout(format!(
            "no endpoint of {uri} answered within {} s; check the URL and that a broker serves there",
            limit.as_secs()
        ))),
    }
}

/// `HOST:PORT` of the endpoint in use.
fn endpoint(failover: &Failover) -> String {
    failover
        .current()
        .or(failover.endpoints().first())
        .map_or_else(|| "the broker".to_string(), ToString::to_string)
}
