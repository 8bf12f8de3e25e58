//! `mqctl queue send NAME[/NODE] QUEUE`: send messages through a node's admin API.

use std::collections::BTreeMap;

use mq_shared::api::SendRequest;
use mq_shared::ctl::SendReport;

use crate::args::queue::SendArgs;
use crate::commands::Context;
use crate::error::{CliError, Outcome, Result};
use crate::output::{self, Format};

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
        (None, None) => String::new(),
    };
    let (client, queue) = super::resolve(ctx, &args.at).await?;
    let persistent = !args.non_persistent;
    let request = SendRequest {
        body,
        headers: args.headers.iter().cloned().collect::<BTreeMap<_, _>>(),
        persistent: Some(persistent),
    };
    let bar = if args.count > 1 {
        output::progress(args.count, "sending")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut ids = Vec::new();
    for sent in 0..args.count {
        match client.send_message(&queue, &request).await {
            Ok(answer) => ids.push(answer.message_id),
            Err(e) => {
                bar.abandon();
                if sent > 0 {
                    output::note(&format!(
                        "{sent} of {} messages were sent before this error.",
                        args.count
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
        sent: args.count,
        persistent,
        message_ids: ids,
    };
    if ctx.out.format() == Format::Json {
        ctx.out.json(&report)?;
    } else {
        let kind = if persistent {
            "persistent"
        } else {
            "non-persistent"
        };
        let plural = if report.sent == 1 { "" } else { "s" };
        let id = match report.message_ids.as_slice() {
            [one] => format!(" (id {one})"),
            _ => String::new(),
        };
        ctx.out.sentence(&format!(
            "Sent {} {kind} message{plural} to queue {} on {}{id}.",
            report.sent, report.queue, report.node
        ))?;
    }
    Ok(Outcome::Complete)
}
