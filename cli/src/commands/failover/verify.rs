//! `failover trigger --verify N`: persistent messages sent (each confirmed by a RECEIPT) before
//! the failover, consumed through `failover:(...)` after it, and counted by the id in their
//! body (`verify-I`): every confirmed message must come back, and any second delivery of one is
//! a duplicate.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use indicatif::ProgressBar;
use mq_shared::client::{AckMode, ClientError, ConnectOptions, StompClient};
use mq_shared::ctl::VerifyReport;
use mq_shared::defaults::{FAILOVER_TRIGGER_TIMEOUT, FAILOVER_VERIFY_IDLE};
use mq_shared::failover::Failover;
use mq_shared::frame::{Command, Frame};
use mq_shared::uri::ClientUri;

/// Frames written before their receipts are awaited.
const WINDOW: u64 = 200;
/// After the last expected message, how long to watch for duplicates.
const TRAILING: Duration = Duration::from_millis(300);

/// Body of verify message `i`.
fn body(i: u64) -> Bytes {
    Bytes::from(format!("verify-{i}"))
}

/// The id in a verify message's body.
fn id_of(frame: &Frame) -> Option<u64> {
    std::str::from_utf8(&frame.body)
        .ok()?
        .strip_prefix("verify-")?
        .parse()
        .ok()
}

/// Sends `n` persistent messages to `/queue/QUEUE` on `addr`, pipelined, each with a receipt;
/// returns once all are confirmed.
pub async fn send(
    addr: &str,
    queue: &str,
    n: u64,
    bar: &ProgressBar,
    opts: &ConnectOptions,
) -> Result<u64, ClientError> {
    let mut client = StompClient::connect(addr, opts.clone()).await?;
    let destination = format!("/queue/{queue}");
    let mut confirmed = 0;
    while confirmed < n {
        let window = WINDOW.min(n - confirmed);
        let mut ids = Vec::with_capacity(window as usize);
        for i in confirmed..confirmed + window {
            let id = client.next_receipt_id();
            let frame = Frame::new(Command::Send)
                .with_header("destination", destination.as_str())
                .with_header("persistent", "true")
                .with_header("receipt", id.as_str())
                .with_body(body(i));
            client.queue_frame(&frame);
            ids.push(id);
        }
        client.flush().await?;
        for id in ids {
            client.wait_receipt(&id).await?;
        }
        confirmed += window;
        bar.set_position(confirmed);
    }
    client.disconnect().await?;
    Ok(confirmed)
}

/// Consumes `/queue/QUEUE` through `uri` until every one of the `sent` messages arrived (then
/// a short watch for duplicates) or nothing arrives for [`FAILOVER_VERIFY_IDLE`]; a dropped
/// connection is re-established through the failover URI.
pub async fn consume(
    uri: &ClientUri,
    queue: &str,
    sent: u64,
    bar: &ProgressBar,
    opts: &ConnectOptions,
) -> Result<VerifyReport, ClientError> {
    let destination = format!("/queue/{queue}");
    let mut failover = Failover::new(uri, opts.clone());
    let mut seen: HashSet<u64> = HashSet::with_capacity(sent as usize);
    let mut duplicated = 0;
    'connection: loop {
        let mut client = connect(&mut failover).await?;
        client
            .subscribe(&destination, "verify", AckMode::Auto, &[])
            .await?;
        loop {
            let wait = if seen.len() as u64 >= sent {
                TRAILING
            } else {
                FAILOVER_VERIFY_IDLE
            };
            match client.recv_timeout(wait).await {
                Ok(Some(frame)) if frame.command == Command::Message => {
                    if let Some(i) = id_of(&frame).filter(|i| *i < sent) {
                        if seen.insert(i) {
                            bar.inc(1);
                        } else {
                            duplicated += 1;
                        }
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => {
                    let _ = client.disconnect().await;
                    break 'connection;
                }
                Err(ClientError::Server { .. })
                | Err(ClientError::Closed)
                | Err(ClientError::Io(_)) => {
                    continue 'connection;
                }
                Err(e) => return Err(e),
            }
        }
    }
    let received = seen.len() as u64;
    Ok(VerifyReport {
        sent,
        received,
        lost: sent - received,
        duplicated,
    })
}

async fn connect(failover: &mut Failover) -> Result<StompClient, ClientError> {
    match tokio::time::timeout(FAILOVER_TRIGGER_TIMEOUT, failover.connect()).await {
        Ok(result) => result,
        Err(_) => Err(ClientError::Timeout(format!(
            "no endpoint of {:?} answered within {} s",
            failover
                .endpoints()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            FAILOVER_TRIGGER_TIMEOUT.as_secs()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        let f = Frame::new(Command::Message).with_body(body(42));
        assert_eq!(id_of(&f), Some(42));
        let other = Frame::new(Command::Message).with_body(Bytes::from_static(b"hello"));
        assert_eq!(id_of(&other), None);
    }
}
