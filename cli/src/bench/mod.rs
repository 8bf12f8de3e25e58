//! The bench engine behind `mqctl bench`: producers and consumers on their own STOMP
//! connections against any broker, end-to-end latency from a send timestamp, and an exact
//! count of lost and duplicated messages.
//!
//! A run goes: connect every consumer and SUBSCRIBE (with a receipt, so the subscription exists
//! before anything is sent), connect every producer, then release them all at once. Producers
//! send their share ([`payload`] stamps each body), optionally at a fixed rate and with a
//! window of outstanding receipts. Consumers record each message in their own [`tally::Tally`]
//! and stop when as many distinct messages arrived as were sent, or when nothing arrived for
//! the drain timeout after the producers finished. The tallies are merged into a
//! [`BenchReport`].

pub mod payload;
pub mod tally;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use indicatif::ProgressBar;
use mq_shared::bench::{BenchLoad, BenchParams, BenchReport, ReceiptMode};
use mq_shared::client::{AckMode, ClientError, ConnectOptions, StompClient};
use mq_shared::frame::{Command, Frame};
use mq_shared::uri::HostPort;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use self::payload::Stamp;
use self::tally::Tally;

/// Producers flush their socket after this many SEND frames without receipts (and whenever
/// they are about to wait).
const SEND_BATCH: u64 = 16;
/// How often an idle consumer looks at the run's progress.
const CONSUMER_POLL: Duration = Duration::from_millis(100);
/// Bound on DISCONNECT at the end of a run.
const DISCONNECT_LIMIT: Duration = Duration::from_secs(5);
/// Bound on connecting and subscribing.
const CONNECT_LIMIT: Duration = Duration::from_secs(10);

/// Why a bench could not run at all. Failures during the run are reported in
/// [`BenchReport::errors`] instead, with the messages they cost counted as lost.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// No endpoint of the URL accepted a STOMP connection.
    #[error("cannot connect to {endpoints}: {source}")]
    Connect {
        /// The endpoints tried.
        endpoints: String,
        /// The last failure.
        source: ClientError,
    },
    /// SUBSCRIBE was refused or not confirmed.
    #[error("cannot subscribe to {destination} on {endpoint}: {source}")]
    Subscribe {
        /// The endpoint.
        endpoint: String,
        /// The destination.
        destination: String,
        /// What went wrong.
        source: ClientError,
    },
}

/// Everything a run needs, already validated.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The URL as given (for the report).
    pub url: String,
    /// Endpoints to try in order.
    pub endpoints: Vec<HostPort>,
    /// Where consumers connect, if not to `endpoints`.
    pub consume_endpoints: Option<Vec<HostPort>>,
    /// Destination, `/queue/NAME`.
    pub destination: String,
    /// Spread messages round-robin over this many destinations `NAME.0`, `NAME.1`, ... (1:
    /// just `destination`); every consumer subscribes to all of them.
    pub queues: u32,
    /// What to send and how, as the report shows it. `load.size` is at least
    /// [`payload::HEADER_LEN`]; `load.duration_s` or `load.messages` is set.
    pub load: BenchLoad,
    /// Consumers' ack mode; `load.ack` is its header value.
    pub ack: AckMode,
    /// CONNECT `login`, `passcode` and `host`.
    pub login: Option<String>,
    /// See `login`.
    pub passcode: Option<String>,
    /// See `login`.
    pub vhost: String,
    /// TLS for `ssl://` endpoints (the CA the broker's certificate is checked against).
    pub tls: Option<std::sync::Arc<mq_shared::tls::ClientConfig>>,
    /// How long consumers wait for stragglers after the producers are done.
    pub drain_timeout: Duration,
}

impl BenchConfig {
    /// How long producers send in a timed run.
    fn duration(&self) -> Option<Duration> {
        self.load.duration_s.map(Duration::from_secs_f64)
    }

    /// The destinations messages go to.
    fn destinations(&self) -> Vec<String> {
        if self.queues <= 1 {
            return vec![self.destination.clone()];
        }
        (0..self.queues)
            .map(|i| format!("{}.{i}", self.destination))
            .collect()
    }

    fn connect_options(&self) -> ConnectOptions {
        ConnectOptions {
            host: Some(self.vhost.clone()),
            login: self.login.clone(),
            passcode: self.passcode.clone(),
            accept_version: "1.0,1.1,1.2".to_owned(),
            heart_beat: (0, 0),
            headers: Vec::new(),
            connect_timeout: CONNECT_LIMIT,
            tls: self.tls.clone(),
        }
    }

    /// Connects to the first endpoint that answers, of the producers' or the consumers' list.
    async fn connect(&self, consumer: bool) -> Result<(StompClient, String), BenchError> {
        let endpoints = match (&self.consume_endpoints, consumer) {
            (Some(c), true) => c,
            _ => &self.endpoints,
        };
        let mut last = None;
        for hp in endpoints {
            let addr = hp.to_uri_string();
            match StompClient::connect(&addr, self.connect_options()).await {
                Ok(client) => return Ok((client, addr)),
                Err(e) => last = Some(e),
            }
        }
        Err(BenchError::Connect {
            endpoints: endpoints
                .iter()
                .map(HostPort::to_addr_string)
                .collect::<Vec<_>>()
                .join(", "),
            source: last.unwrap_or(ClientError::Closed),
        })
    }
}

/// What the run's tasks share: the time base and the progress counters.
#[derive(Debug)]
struct Shared {
    /// Send timestamps are nanoseconds since this instant.
    base: Instant,
    /// Distinct messages received so far (summed over consumers).
    received: AtomicU64,
    /// Messages sent so far.
    sent: AtomicU64,
    /// Total sent, once every producer is done; `u64::MAX` until then.
    sent_final: AtomicU64,
    /// A timed run is over: producers stop.
    stop: AtomicBool,
}

/// How one producer ended.
#[derive(Debug)]
struct ProducerEnd {
    sent: u64,
    started: Instant,
    finished: Instant,
    error: Option<String>,
}

/// How one consumer ended.
#[derive(Debug)]
struct ConsumerEnd {
    tally: Tally,
    last_receive: Option<Instant>,
    error: Option<String>,
}

/// Runs the warm-up (if any) and the measured run. `progress` makes a bar for the measured
/// run: `(length, message)`; the caller decides whether it is shown.
pub async fn run(
    cfg: &BenchConfig,
    progress: impl Fn(u64, &str) -> ProgressBar,
) -> Result<BenchReport, BenchError> {
    if cfg.load.warmup > 0 {
        let warm = BenchConfig {
            load: BenchLoad {
                messages: Some(cfg.load.warmup),
                duration_s: None,
                rate: None,
                ..cfg.load.clone()
            },
            ..cfg.clone()
        };
        let bar = progress(cfg.load.warmup, "warm-up");
        let report = run_once(&warm, &bar).await?;
        bar.finish_and_clear();
        if !report.ok() {
            crate::output::warn(&format!(
                "warm-up: {} lost, {} duplicated, errors: {}",
                report.lost,
                report.duplicated,
                report.errors.join("; ")
            ));
        }
    }
    let bar = match (cfg.load.messages, cfg.duration()) {
        (Some(n), _) => progress(n, "messages"),
        (None, Some(d)) => progress(d.as_secs().max(1), "seconds"),
        (None, None) => ProgressBar::hidden(),
    };
    let report = run_once(cfg, &bar).await;
    bar.finish_and_clear();
    report
}

/// One run: connect, go, collect.
async fn run_once(cfg: &BenchConfig, bar: &ProgressBar) -> Result<BenchReport, BenchError> {
    let run_id: u32 = rand::random();
    let shared = Arc::new(Shared {
        base: Instant::now(),
        received: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        sent_final: AtomicU64::new(u64::MAX),
        stop: AtomicBool::new(false),
    });
    let start = Arc::new(Barrier::new(
        (cfg.load.producers + cfg.load.consumers) as usize + 1,
    ));

    // Consumers first, subscribed, so nothing sent can miss them.
    let mut consumers = Vec::with_capacity(cfg.load.consumers as usize);
    let mut endpoint = String::new();
    let mut server = None;
    for i in 0..cfg.load.consumers {
        let (mut client, addr) = cfg.connect(true).await?;
        let prefetch = cfg.load.prefetch.to_string();
        let mut headers = vec![
            ("activemq.prefetchSize", prefetch.as_str()),
            ("prefetch-count", prefetch.as_str()),
        ];
        if let Some(s) = &cfg.load.selector {
            headers.push(("selector", s.as_str()));
        }
        for (j, destination) in cfg.destinations().into_iter().enumerate() {
            let id = format!("bench-{i}-{j}");
            let subscribed = tokio::time::timeout(
                CONNECT_LIMIT,
                client.subscribe(&destination, &id, cfg.ack, &headers),
            )
            .await
            .unwrap_or_else(|_| Err(ClientError::Timeout("no RECEIPT for SUBSCRIBE".to_owned())));
            if let Err(source) = subscribed {
                return Err(BenchError::Subscribe {
                    endpoint: addr,
                    destination,
                    source,
                });
            }
        }
        server = server.or_else(|| client.connected().header("server").map(str::to_owned));
        endpoint = addr;
        consumers.push(client);
    }
    let mut producers = Vec::with_capacity(cfg.load.producers as usize);
    for _ in 0..cfg.load.producers {
        let (client, addr) = cfg.connect(false).await?;
        server = client
            .connected()
            .header("server")
            .map(str::to_owned)
            .or(server);
        endpoint = addr;
        producers.push(client);
    }

    let mut consumer_tasks = JoinSet::new();
    for client in consumers {
        let (cfg, shared, start) = (cfg.clone(), shared.clone(), start.clone());
        consumer_tasks.spawn(async move {
            start.wait().await;
            consume(client, &cfg, &shared, run_id).await
        });
    }
    let mut producer_tasks = JoinSet::new();
    for (p, client) in producers.into_iter().enumerate() {
        let (cfg, shared, start) = (cfg.clone(), shared.clone(), start.clone());
        let p = p as u32;
        producer_tasks.spawn(async move {
            start.wait().await;
            let end = produce(client, &cfg, &shared, run_id, p).await;
            (p, end)
        });
    }

    // A drain (no producers): the consumers take what waits, as many as asked for.
    let drain = cfg.load.producers == 0;
    if drain {
        shared
            .sent_final
            .store(cfg.load.messages.unwrap_or(0), Ordering::Relaxed);
    }
    start.wait().await;
    let released = Instant::now();
    let deadline = cfg.duration().map(|d| released + d);

    // Progress and the clock of a timed run, until the producers are done.
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    let mut sent = vec![0u64; cfg.load.producers as usize];
    let mut producer_ends = Vec::with_capacity(sent.len());
    let mut errors = Vec::new();
    loop {
        tokio::select! {
            joined = producer_tasks.join_next() => match joined {
                Some(Ok((p, end))) => {
                    sent[p as usize] = end.sent;
                    if let Some(e) = &end.error {
                        errors.push(format!("producer {p}: {e}"));
                    }
                    producer_ends.push(end);
                }
                Some(Err(e)) => errors.push(format!("producer task: {e}")),
                None => break,
            },
            _ = ticker.tick() => {
                if let Some(at) = deadline {
                    let now = Instant::now();
                    if now >= at {
                        shared.stop.store(true, Ordering::Relaxed);
                    }
                    bar.set_position(now.saturating_duration_since(released).as_secs());
                } else {
                    bar.set_position(shared.received.load(Ordering::Relaxed));
                }
            }
        }
    }
    let total_sent: u64 = sent.iter().sum();
    if !drain {
        shared.sent_final.store(total_sent, Ordering::Relaxed);
    }
    if deadline.is_some() {
        bar.set_message("draining");
    }

    let mut tallies = Vec::new();
    let mut last_receive: Option<Instant> = None;
    loop {
        tokio::select! {
            joined = consumer_tasks.join_next() => match joined {
                Some(Ok(end)) => {
                    if let Some(e) = &end.error {
                        errors.push(format!("consumer: {e}"));
                    }
                    last_receive = last_receive.max(end.last_receive);
                    tallies.push(end.tally);
                }
                Some(Err(e)) => errors.push(format!("consumer task: {e}")),
                None => break,
            },
            _ = ticker.tick() => {
                if deadline.is_none() {
                    bar.set_position(shared.received.load(Ordering::Relaxed));
                }
            }
        }
    }

    let first_send = producer_ends
        .iter()
        .map(|e| e.started)
        .min()
        .unwrap_or(released);
    let last_send = producer_ends
        .iter()
        .map(|e| e.finished)
        .max()
        .unwrap_or(first_send);
    let mut tally = Tally::default().merge(tallies);
    let received = tally.received();
    let send_ms = ms(last_send.saturating_duration_since(first_send));
    let total_ms = ms(last_receive
        .unwrap_or(last_send)
        .saturating_duration_since(first_send));
    let per_sec = |n: u64, ms: f64| {
        if ms > 0.0 {
            n as f64 * 1000.0 / ms
        } else {
            0.0
        }
    };
    let lost = if cfg.load.consumers == 0 {
        0
    } else if drain {
        cfg.load.messages.unwrap_or(0).saturating_sub(received)
    } else {
        tally.lost(&sent)
    };
    Ok(BenchReport {
        params: params(cfg, endpoint, server),
        sent: total_sent,
        received,
        send_ms,
        total_ms,
        send_rate: per_sec(total_sent, send_ms),
        receive_rate: per_sec(received, total_ms),
        latency_ms: tally.latency(),
        lost,
        duplicated: tally.duplicated,
        foreign: tally.foreign,
        errors,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn params(cfg: &BenchConfig, endpoint: String, server: Option<String>) -> BenchParams {
    BenchParams {
        url: cfg.url.clone(),
        endpoint,
        server,
        destination: cfg.destination.clone(),
        load: cfg.load.clone(),
    }
}

/// Opens `n` STOMP connections to the first endpoint that answers and keeps them open (idle,
/// no heart-beats) for `hold`, to measure a broker's memory per connection. Calls `opened`
/// once all are open. Returns how many were opened.
pub async fn hold_idle(
    cfg: &BenchConfig,
    n: u32,
    hold: Duration,
    opened: impl FnOnce(u32),
) -> Result<u32, BenchError> {
    let mut clients = Vec::with_capacity(n as usize);
    for _ in 0..n {
        clients.push(cfg.connect(false).await?.0);
    }
    opened(n);
    tokio::time::sleep(hold).await;
    let mut closing = JoinSet::new();
    for client in clients {
        closing.spawn(async move {
            let _ = tokio::time::timeout(DISCONNECT_LIMIT, client.disconnect()).await;
        });
    }
    while closing.join_next().await.is_some() {}
    Ok(n)
}

/// Producer `p`'s share of `total`: an even split, the remainder to the first producers.
fn share(total: u64, producers: u32, p: u32) -> u64 {
    let n = u64::from(producers);
    total / n + u64::from(u64::from(p) < total % n)
}

/// One producer: sends its share (or until the run's clock stops it), then disconnects.
async fn produce(
    mut client: StompClient,
    cfg: &BenchConfig,
    shared: &Shared,
    run: u32,
    p: u32,
) -> ProducerEnd {
    let count = cfg.load.messages.map(|n| share(n, cfg.load.producers, p));
    // This producer's interval between sends at the target rate.
    let interval = cfg
        .load
        .rate
        .map(|r| Duration::from_secs_f64(f64::from(cfg.load.producers) / r));
    let mut frame = Frame::new(Command::Send)
        .with_header("destination", cfg.destination.as_str())
        .with_header(
            "persistent",
            if cfg.load.persistent { "true" } else { "false" },
        );
    for (k, v) in &cfg.load.headers {
        frame.push_header(k.as_str(), v.as_str());
    }
    let receipt_at = frame.headers.len();
    if cfg.load.receipts == ReceiptMode::Each {
        frame.push_header("receipt", "");
    }
    let destinations = cfg.destinations();
    let template = payload::template(cfg.load.size);
    let window = cfg.load.window.max(1) as usize;
    let mut outstanding: VecDeque<String> = VecDeque::with_capacity(window);
    let started = Instant::now();
    let mut seq: u64 = 0;
    let result: Result<(), ClientError> = async {
        loop {
            if count.is_some_and(|n| seq >= n) || shared.stop.load(Ordering::Relaxed) {
                break;
            }
            let mut sent_at = Instant::now();
            if let Some(step) = interval {
                // Open loop: message `seq` is due at `started + seq * step`, and its latency
                // counts from then, so a stalled broker cannot hide its stall.
                let due = started + step.mul_f64(seq as f64);
                if due > sent_at {
                    client.flush().await?;
                    tokio::time::sleep_until(due.into()).await;
                }
                sent_at = due;
            }
            let mut body = template.clone();
            let stamp = Stamp {
                run,
                producer: p,
                seq,
                sent_ns: sent_at.saturating_duration_since(shared.base).as_nanos() as u64,
            };
            payload::write(&stamp, &mut body);
            frame.body = Bytes::from(body);
            if destinations.len() > 1 {
                let d = &destinations[(seq % destinations.len() as u64) as usize];
                frame.headers[0].1.clone_from(d);
            }
            match cfg.load.receipts {
                ReceiptMode::Each => {
                    let id = client.next_receipt_id();
                    frame.headers[receipt_at].1.clone_from(&id);
                    client.queue_frame(&frame);
                    outstanding.push_back(id);
                    if outstanding.len() >= window
                        && let Some(oldest) = outstanding.pop_front()
                    {
                        client.wait_receipt(&oldest).await?;
                    }
                }
                ReceiptMode::None => {
                    client.queue_frame(&frame);
                    if (seq + 1).is_multiple_of(SEND_BATCH) {
                        client.flush().await?;
                    }
                }
            }
            seq += 1;
            shared.sent.fetch_add(1, Ordering::Relaxed);
        }
        client.flush().await?;
        while let Some(id) = outstanding.pop_front() {
            client.wait_receipt(&id).await?;
        }
        Ok(())
    }
    .await;
    let finished = Instant::now();
    let error = match result {
        Ok(()) => {
            // DISCONNECT with a receipt also tells us the broker has read every SEND.
            match tokio::time::timeout(DISCONNECT_LIMIT, client.disconnect()).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("DISCONNECT: {e}")),
                Err(_) => Some("DISCONNECT not confirmed in time".to_owned()),
            }
        }
        Err(e) => Some(e.to_string()),
    };
    ProducerEnd {
        sent: seq,
        started,
        finished,
        error,
    }
}

/// One consumer: records every MESSAGE until the run has all it sent, or the drain timeout.
async fn consume(
    mut client: StompClient,
    cfg: &BenchConfig,
    shared: &Shared,
    run: u32,
) -> ConsumerEnd {
    let mut tally = Tally::default();
    let mut last_receive = None;
    let mut last_activity = Instant::now();
    let result: Result<(), ClientError> = async {
        loop {
            let target = shared.sent_final.load(Ordering::Relaxed);
            if shared.received.load(Ordering::Relaxed) >= target {
                break;
            }
            if target != u64::MAX && last_activity.elapsed() >= cfg.drain_timeout {
                break;
            }
            let Some(frame) = client.recv_timeout(CONSUMER_POLL).await? else {
                continue;
            };
            let now = Instant::now();
            last_activity = now;
            if frame.command != Command::Message {
                continue;
            }
            if cfg.ack != AckMode::Auto {
                let ack = client.ack_frame(&frame)?;
                client.queue_frame(&ack);
            }
            match payload::read(&frame.body) {
                // A drain takes messages of any earlier run.
                Some(stamp) if stamp.run == run || cfg.load.producers == 0 => {
                    let now_ns = now.saturating_duration_since(shared.base).as_nanos() as u64;
                    let us = now_ns.saturating_sub(stamp.sent_ns) / 1000;
                    // A drained message was sent by another run: no latency to speak of.
                    let us = if cfg.load.producers == 0 {
                        0
                    } else {
                        u32::try_from(us).unwrap_or(u32::MAX)
                    };
                    if tally.record(stamp.producer, stamp.seq, us) {
                        shared.received.fetch_add(1, Ordering::Relaxed);
                        last_receive = Some(now);
                    }
                }
                _ => tally.foreign += 1,
            }
        }
        client.flush().await
    }
    .await;
    let error = match result {
        Ok(()) => match tokio::time::timeout(DISCONNECT_LIMIT, client.disconnect()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("DISCONNECT: {e}")),
            Err(_) => Some("DISCONNECT not confirmed in time".to_owned()),
        },
        Err(e) => Some(e.to_string()),
    };
    ConsumerEnd {
        tally,
        last_receive,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up() {
        for (total, producers) in [(10, 3), (1, 4), (1_000_000, 4), (7, 7)] {
            let sum: u64 = (0..producers).map(|p| share(total, producers, p)).sum();
            assert_eq!(sum, total);
        }
        assert_eq!(share(10, 3, 0), 4);
        assert_eq!(share(10, 3, 2), 3);
    }
}
