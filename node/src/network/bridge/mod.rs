//! The bridge to one peer: an explicit state machine, one task per peer.
//!
//! ```text
//!            ┌────────────── cancel (connector removed, node stops) ───────────────┐
//!            ▼                                                                     │
//!   ┌─► connecting ── CONNECT/CONNECTED ok ──► connected ── link error ──┐          │
//!   │        │ every endpoint refused / timed out                       │          │
//!   │        ▼                                                          ▼          │
//!   └──── backoff (initialReconnectDelay × backOffMultiplier^n ≤ maxReconnectDelay) ◄┘
//! ```
//!
//! There is exactly one loop and every way out of `connected` goes through `backoff`: a link
//! cannot die silently. While connected, a [`Session`] runs:
//!
//! 1. subscribe to the peer's demand advisory ([`crate::internode::ADVISORY_DESTINATION`]);
//! 2. for each destination the peer demands (within `consumerTTL`, allowed by the
//!    include/exclude lists) and each statically included one, attach a network consumer to
//!    the local queue or topic (priority −5 and lower with `decreaseNetworkConsumerPriority`,
//!    prefetch `prefetchSize`, with the loop filter of [`crate::broker::NetworkConsumer`]);
//! 3. SEND each delivery to the peer with the message's id, its broker path plus this node,
//!    and a receipt; settle it locally as forwarded ([`crate::broker::Core::settle`]) only
//!    when the peer's RECEIPT says it is stored. Sends are pipelined up to the prefetch;
//! 4. with `duplex`, also subscribe on the peer for this node's own demand and publish what
//!    arrives locally (de-duplicated by id through the store), ACKing it after the commit.
//!
//! When demand for a destination goes away, its consumer stops sending and is detached once
//! its outstanding receipts are in (its unsent messages return to the queue); a duplex
//! subscription likewise waits for its pending ACKs before it UNSUBSCRIBEs. When the link
//! drops, every consumer is detached and its messages wait in the local store for the next
//! link; the peer drops any it had already stored by message id.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mq_shared::api::{PeerInfo, PeerState};
use mq_shared::backoff::Backoff;
use mq_shared::client::{self, ClientError, ConnectOptions};
use mq_shared::connection::{ConnError, Connection, Timers};
use mq_shared::frame::{Frame, Version};
use mq_shared::heartbeat;
use mq_shared::tls::Stream;
use mq_shared::uri::{HostPort, NetworkOptions};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{BRIDGE_CONNECT_TIMEOUT, BRIDGE_HEARTBEAT_MS, BridgeError};
use crate::broker::{Core, now_ms};
use crate::internode::{BRIDGE_HEADER, BROKER_HEADER};

/// Subscription id of the demand advisory on the peer.
const ADVISORY_SUB: &str = "advisory";
/// ActiveMQ's base priority of network consumers (`ConsumerInfo.NETWORK_CONSUMER_PRIORITY`).
const NETWORK_PRIORITY: i32 = -5;
/// The peer may be this many of its heart-beat intervals late before the link is dropped.
const SILENCE_FACTOR: f64 = 3.0;
/// Bytes waiting for the peer above which no more deliveries are forwarded for now.
const HIGH_WATER: usize = 1 << 20;

/// What one bridge needs to know about its connector.
#[derive(Debug)]
pub struct BridgeConfig {
    /// This node's broker name.
    pub local: Arc<str>,
    /// Connector name (for logs).
    pub connector: String,
    /// Connector options.
    pub options: NetworkOptions,
    /// TLS for `ssl://` peers: the CA to verify them against and this node's certificate.
    pub tls: Option<Arc<mq_shared::tls::ClientConfig>>,
}

/// Where a peer is: one endpoint, or several tried in order (`masterslave:`, `failover:`).
#[derive(Debug, Clone)]
pub struct Target {
    /// The peer as configured or discovered.
    pub uri: String,
    /// Endpoints, tried in order on each attempt.
    pub endpoints: Vec<HostPort>,
}

/// Live state of one peer, shared with the admin API.
#[derive(Debug)]
pub struct PeerStatus {
    info: Mutex<PeerInfo>,
    forwarded: AtomicU64,
}

impl PeerStatus {
    /// A peer not yet tried.
    pub fn new(uri: &str) -> PeerStatus {
        PeerStatus {
            info: Mutex::new(PeerInfo {
                uri: uri.to_string(),
                state: PeerState::Connecting,
                remote_broker: None,
                since_ms: now_ms(),
                forwarded: 0,
                reconnect_attempts: 0,
                next_retry_ms: None,
                last_error: None,
            }),
            forwarded: AtomicU64::new(0),
        }
    }

    /// A snapshot for the admin API.
    pub fn info(&self) -> PeerInfo {
        let mut i = self.lock().clone();
        i.forwarded = self.forwarded.load(Ordering::Relaxed);
        i
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PeerInfo> {
        self.info.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, state: PeerState, f: impl FnOnce(&mut PeerInfo)) {
        let mut i = self.lock();
        if i.state != state {
            i.since_ms = now_ms();
        }
        i.state = state;
        f(&mut i);
    }

    fn add_forwarded(&self, n: u64) {
        self.forwarded.fetch_add(n, Ordering::Relaxed);
    }
}

/// Runs the state machine of one peer as a tracked task that is started again (and says so
/// in the peer's `last_error`) if it ever panics.
pub fn spawn(
    tracker: &tokio_util::task::TaskTracker,
    core: Core,
    cfg: Arc<BridgeConfig>,
    target: Target,
    status: Arc<PeerStatus>,
    cancel: CancellationToken,
) {
    let what = format!("bridge {} to {}", cfg.connector, target.uri);
    let report = status.clone();
    tracker.spawn(crate::supervise::supervise(
        what,
        cancel.clone(),
        move |m| {
            report.set(PeerState::Backoff, |i| {
                i.last_error = Some(format!("bridge task panicked ({m}); restarting it"));
            })
        },
        move || {
            run(
                core.clone(),
                cfg.clone(),
                target.clone(),
                status.clone(),
                cancel.clone(),
            )
        },
    ));
}

/// Runs the state machine of one peer until `cancel` fires.
pub async fn run(
    core: Core,
    cfg: Arc<BridgeConfig>,
    target: Target,
    status: Arc<PeerStatus>,
    cancel: CancellationToken,
) {
    let mut backoff = Backoff::new(&cfg.options);
    let min_connect = Duration::from_millis(cfg.options.min_connect_time_ms);
    loop {
        let attempts = backoff.attempts();
        status.set(PeerState::Connecting, |i| {
            i.reconnect_attempts = attempts;
            i.next_retry_ms = None;
        });
        let attempt = tokio::select! {
            _ = cancel.cancelled() => return,
            r = connect_any(&cfg, &target) => r,
        };
        let err = match attempt {
            Err(e) => e,
            Ok((link, connected, addr)) => {
                let peer: Arc<str> =
                    Arc::from(connected.header(BROKER_HEADER).unwrap_or(addr.as_str()));
                if peer == cfg.local {
                    BridgeError::SelfLink(addr)
                } else {
                    tracing::info!(connector = %cfg.connector, peer = %peer, %addr, "bridge connected");
                    status.set(PeerState::Connected, |i| {
                        i.remote_broker = Some(peer.to_string());
                        i.reconnect_attempts = 0;
                        i.last_error = None;
                        i.next_retry_ms = None;
                    });
                    let started = Instant::now();
                    let r =
                        Session::new(core.clone(), cfg.clone(), status.clone(), link, peer, addr)
                            .run(&cancel)
                            .await;
                    if cancel.is_cancelled() {
                        return;
                    }
                    if started.elapsed() >= min_connect {
                        backoff.reset();
                    }
                    r.err().unwrap_or(BridgeError::Closed)
                }
            }
        };
        tracing::warn!(connector = %cfg.connector, peer = %target.uri, error = %err, "bridge down");
        let msg = err.to_string();
        match backoff.failed() {
            Some(d) => {
                let attempts = backoff.attempts();
                status.set(PeerState::Backoff, |i| {
                    i.reconnect_attempts = attempts;
                    i.next_retry_ms = Some(now_ms() + d.as_millis() as u64);
                    i.last_error = Some(msg);
                });
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(d) => {}
                }
            }
            None => {
                let attempts = backoff.attempts();
                status.set(PeerState::Backoff, |i| {
                    i.reconnect_attempts = attempts;
                    i.next_retry_ms = None;
                    i.last_error = Some(format!(
                        "{msg}; gave up after {attempts} attempts (maxReconnectAttempts)"
                    ));
                });
                tracing::error!(connector = %cfg.connector, peer = %target.uri, "bridge gave up (maxReconnectAttempts)");
                cancel.cancelled().await;
                return;
            }
        }
    }
}

/// A connected link to the peer: STOMP 1.2 with heart-beats both ways.
type Link = Connection<Stream>;

/// Tries each endpoint in order; the first that answers CONNECTED wins.
async fn connect_any(
    cfg: &BridgeConfig,
    target: &Target,
) -> Result<(Link, Frame, String), BridgeError> {
    let mut last = BridgeError::Connect(format!("{}: no endpoint", target.uri));
    let hb = BRIDGE_HEARTBEAT_MS;
    let opts = ConnectOptions {
        login: cfg.options.user_name.clone(),
        passcode: cfg.options.password.clone(),
        accept_version: "1.2".into(),
        heart_beat: (hb, hb),
        headers: vec![(BRIDGE_HEADER.to_string(), cfg.local.to_string())],
        connect_timeout: BRIDGE_CONNECT_TIMEOUT,
        tls: cfg.tls.clone(),
        ..ConnectOptions::default()
    };
    for ep in &target.endpoints {
        let addr = ep.to_uri_string();
        match client::connect_stream(&addr, &opts).await {
            Ok((mut link, connected)) => {
                if link.version() != Version::V1_2 {
                    last = BridgeError::Protocol(format!(
                        "peer chose STOMP {}; bridges speak 1.2",
                        link.version()
                    ));
                    continue;
                }
                let theirs = connected
                    .header("heart-beat")
                    .and_then(heartbeat::parse)
                    .unwrap_or((0, 0));
                let agreed = heartbeat::agree((hb, hb), theirs);
                link.set_timers(Timers::from_heart_beats(agreed, SILENCE_FACTOR));
                return Ok((link, connected, addr));
            }
            Err(e) => last = connect_error(&addr, e),
        }
    }
    Err(last)
}

/// What a failed connection attempt to `addr` says.
fn connect_error(addr: &str, e: ClientError) -> BridgeError {
    match e {
        ClientError::Io(e) => BridgeError::Connect(format!("{addr}: {e}")),
        ClientError::Frame(e) => BridgeError::Frame(e),
        ClientError::Protocol(m) => BridgeError::Protocol(m),
        ClientError::Server { message, .. } => BridgeError::Peer(message),
        ClientError::Closed => BridgeError::Closed,
        ClientError::Timeout(m) => BridgeError::Timeout(m),
        ClientError::Tls(e) => BridgeError::Connect(format!("{addr}: {e}")),
    }
}

impl From<ConnError> for BridgeError {
    fn from(e: ConnError) -> BridgeError {
        match e {
            ConnError::Io(e) => BridgeError::Io(e),
            ConnError::Frame(e) => BridgeError::Frame(e),
            ConnError::Closed => BridgeError::Closed,
            e @ (ConnError::PeerSilent { .. } | ConnError::WriteStalled { .. }) => {
                BridgeError::Timeout(e.to_string())
            }
        }
    }
}

/// Turns an ERROR frame from the peer into an error.
fn peer_error(f: &Frame) -> BridgeError {
    BridgeError::Peer(
        f.header("message")
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&f.body).into_owned()),
    )
}

mod session;
use session::Session;
