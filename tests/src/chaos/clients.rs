//! The load of a chaos run: producers that pipeline persistent SENDs with a RECEIPT each and
//! resend what was not confirmed after a reconnect, consumers that record each MESSAGE in the
//! [`Ledger`](super::ledger::Ledger) before they ACK it (`client-individual`), and the final
//! drain that empties a node's queue and dead-letter queue.
//!
//! Every client follows its group's master through `failover:(...)`. No client panics on a
//! broken connection: it counts a reconnect and carries on until told to stop or until its
//! deadline.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use mq_shared::client::{AckMode, ClientError, ConnectOptions, StompClient};
use mq_shared::failover::Failover;
use mq_shared::frame::{Command, Frame};
use mq_shared::uri::ClientUri;
use tokio::time::Instant;

use super::ledger::{MsgId, SharedLedger, Source, lock};

/// The queue the load uses.
pub const DEST: &str = "/queue/chaos";
/// The dead-letter queue the final drain empties too.
pub const DLQ: &str = "/queue/DLQ";

/// How long a producer waits for the oldest RECEIPT before it takes the connection for dead.
/// Longer than the longest pause a fault makes (5 s), so a paused master costs no resend.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on one TCP connect plus CONNECTED.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Bound on one failover round before a client looks at its stop flag and deadline again.
const FAILOVER_ROUND: Duration = Duration::from_secs(5);

/// Counters shared by every client of a run.
#[derive(Debug, Default)]
pub struct Counters {
    /// Producer connections re-established after a failure.
    pub producer_reconnects: AtomicU64,
    /// Consumer connections re-established after a failure.
    pub consumer_reconnects: AtomicU64,
}

/// What one producer does.
#[derive(Debug, Clone)]
pub struct ProducerSpec {
    /// Producer index (in every body it sends).
    pub index: u32,
    /// `failover:(...)` of the group it sends to.
    pub uri: ClientUri,
    /// SENDs in flight without their RECEIPT at most.
    pub window: usize,
    /// Messages per second at most; 0 for no limit.
    pub rate: f64,
    /// Body size in bytes.
    pub size: usize,
}

fn connect_options() -> ConnectOptions {
    ConnectOptions {
        connect_timeout: CONNECT_TIMEOUT,
        ..ConnectOptions::default()
    }
}

/// Connects through `f`, round after round, until it works or `give_up` passes.
async fn connect_until(f: &mut Failover, give_up: Instant) -> Option<StompClient> {
    loop {
        if Instant::now() >= give_up {
            return None;
        }
        let round = FAILOVER_ROUND.min(give_up.saturating_duration_since(Instant::now()));
        if let Ok(Ok(c)) = tokio::time::timeout(round, f.connect()).await {
            return Some(c);
        }
    }
}

/// Queues a SEND of `id` on `c`; returns its receipt id.
fn queue_send(c: &mut StompClient, id: MsgId, size: usize) -> String {
    let receipt = c.next_receipt_id();
    let f = Frame::new(Command::Send)
        .with_header("destination", DEST)
        .with_header("persistent", "true")
        .with_header("receipt", receipt.as_str())
        .with_body(id.body(size));
    c.queue_frame(&f);
    receipt
}

/// Sends until `stop`, then waits for the RECEIPTs still due, resending after each reconnect
/// what was not confirmed; gives up at `give_up` (what is unconfirmed then stays so).
pub async fn produce(
    spec: ProducerSpec,
    ledger: SharedLedger,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    give_up: Instant,
) {
    let mut f = Failover::new(&spec.uri, connect_options());
    let Some(mut c) = connect_until(&mut f, give_up).await else {
        return;
    };
    let started = Instant::now();
    let mut next_seq = 0u64;
    // SENDs written and not yet confirmed, oldest first, with their receipt ids.
    let mut pending: VecDeque<(String, MsgId)> = VecDeque::new();
    loop {
        if Instant::now() >= give_up {
            break;
        }
        let stopping = stop.load(Ordering::Relaxed);
        if !stopping {
            let allowed = if spec.rate > 0.0 {
                (spec.rate * started.elapsed().as_secs_f64()) as u64
            } else {
                u64::MAX
            };
            while pending.len() < spec.window && next_seq < allowed {
                let id = MsgId {
                    producer: spec.index,
                    seq: next_seq,
                    attempt: 0,
                };
                next_seq += 1;
                lock(&ledger).sent(id);
                pending.push_back((queue_send(&mut c, id, spec.size), id));
            }
        }
        let Some((receipt, id)) = pending.front().cloned() else {
            if stopping {
                break;
            }
            // Rate-limited with nothing in flight: wait for the next slot.
            let due = Duration::from_secs_f64((next_seq + 1) as f64 / spec.rate.max(1e-9));
            let wait = due.saturating_sub(started.elapsed());
            tokio::time::sleep(wait.min(Duration::from_millis(50))).await;
            continue;
        };
        let confirmed = match c.flush().await {
            Ok(()) => tokio::time::timeout(RECEIPT_TIMEOUT, c.wait_receipt(&receipt))
                .await
                .is_ok_and(|r| r.is_ok()),
            Err(_) => false,
        };
        if confirmed {
            pending.pop_front();
            lock(&ledger).receipted(id);
            continue;
        }
        // The connection is broken (or the master is not answering): reconnect and resend
        // every unconfirmed SEND as the next attempt.
        counters.producer_reconnects.fetch_add(1, Ordering::Relaxed);
        let Some(new) = connect_until(&mut f, give_up).await else {
            return;
        };
        c = new;
        let resend: Vec<MsgId> = pending.drain(..).map(|(_, id)| id).collect();
        for old in resend {
            let id = MsgId {
                attempt: old.attempt.saturating_add(1),
                ..old
            };
            lock(&ledger).sent(id);
            pending.push_back((queue_send(&mut c, id, spec.size), id));
        }
    }
    let _ = c.disconnect().await;
}

/// Receives and ACKs (`client-individual`, prefetch `prefetch`) on `uri` until `stop`,
/// recording each MESSAGE before its ACK.
pub async fn consume(
    index: usize,
    uri: ClientUri,
    prefetch: u32,
    ledger: SharedLedger,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    give_up: Instant,
) {
    let mut f = Failover::new(&uri, connect_options());
    let prefetch = prefetch.to_string();
    let sub = format!("c{index}");
    while !stop.load(Ordering::Relaxed) {
        // Bounded rounds, so a stop during a long outage is seen.
        let round = Instant::now() + FAILOVER_ROUND;
        let Some(mut c) = connect_until(&mut f, round.min(give_up)).await else {
            if Instant::now() >= give_up {
                return;
            }
            continue;
        };
        let headers = [("activemq.prefetchSize", prefetch.as_str())];
        let mut healthy = c
            .subscribe(DEST, &sub, AckMode::ClientIndividual, &headers)
            .await
            .is_ok();
        while healthy && !stop.load(Ordering::Relaxed) {
            healthy = match c.recv_timeout(Duration::from_millis(100)).await {
                Ok(Some(m)) if m.command == Command::Message => {
                    record(&ledger, &m, Source::Load);
                    c.ack(&m).await.is_ok()
                }
                Ok(_) | Err(ClientError::Timeout(_)) => true,
                Err(_) => false,
            };
        }
        if healthy {
            let _ = c.disconnect().await;
        } else {
            counters.consumer_reconnects.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn record(ledger: &SharedLedger, m: &Frame, source: Source) {
    let redelivered = m.header("redelivered") == Some("true");
    let mut l = lock(ledger);
    match MsgId::parse(&m.body) {
        Some(id) => l.delivered(id, redelivered, source),
        None => l.foreign(),
    }
}

/// What the final drain of one node took.
#[derive(Debug, Clone, Copy, Default)]
pub struct Drained {
    /// Messages taken from the queue.
    pub queue: u64,
    /// Messages taken from the dead-letter queue.
    pub dead_letter: u64,
}

/// Empties [`DEST`] and [`DLQ`] on the node at `addr` (`tcp://HOST:PORT`), recording and
/// ACKing every message, until nothing arrives for `idle` or `bound` passes.
pub async fn drain_node(
    addr: &str,
    ledger: &SharedLedger,
    idle: Duration,
    bound: Duration,
) -> Result<Drained, ClientError> {
    let end = Instant::now() + bound;
    let mut c = StompClient::connect(addr, connect_options()).await?;
    let headers = [("activemq.prefetchSize", "500")];
    c.subscribe(DEST, "left", AckMode::ClientIndividual, &headers)
        .await?;
    c.subscribe(DLQ, "dlq", AckMode::ClientIndividual, &headers)
        .await?;
    let mut got = Drained::default();
    while Instant::now() < end {
        let Some(m) = c.recv_timeout(idle).await? else {
            break;
        };
        if m.command != Command::Message {
            continue;
        }
        let dead = m.header("subscription") == Some("dlq");
        record(
            ledger,
            &m,
            if dead {
                Source::DeadLetter
            } else {
                Source::Leftover
            },
        );
        if dead {
            got.dead_letter += 1;
        } else {
            got.queue += 1;
        }
        c.ack(&m).await?;
    }
    let _ = c.disconnect().await;
    Ok(got)
}
