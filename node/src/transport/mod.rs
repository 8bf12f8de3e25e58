//! Transport connectors: TCP listeners that speak STOMP to clients and to other brokers'
//! bridges. This module owns sockets only; what a frame means is the broker core's business.
//!
//! ```text
//! serve (accept loop) ──▶ connection::run (one task per socket: reads, writes, timers)
//!                              └─▶ session::Session (STOMP semantics) ──▶ broker::Core API
//!                                     ├─ subscription (ack modes, unacked deliveries, options)
//!                                     ├─ names (temporary destinations, composites, wildcards)
//!                                     └─ transaction (BEGIN/COMMIT/ABORT)
//! ```
//!
//! Connection tasks are tracked so shutdown can wait for all of them.

pub mod connection;
pub mod names;
pub mod session;
pub mod subscription;
pub mod transaction;
// STOMP over WebSocket (ws:// transports).
pub mod websocket;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mq_shared::connection::Connection;
use mq_shared::frame::Limits;
use mq_shared::tls::TlsAcceptor;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::Core;
use crate::security::Security;

/// Settings shared by every connection of a node.
#[derive(Debug, Clone)]
pub struct TransportSettings {
    /// Frame and header limits.
    pub limits: Limits,
    /// How long a new connection may take to send CONNECT.
    pub connect_timeout: Duration,
    /// Heart-beat interval the server offers, ms (both directions).
    pub heartbeat_ms: u64,
    /// Most store writes one connection may have outstanding before its reads pause.
    pub max_pending_writes: usize,
    /// Most bytes of messages those writes may carry before its reads pause.
    pub max_pending_bytes: usize,
    /// A socket that takes no bytes for this long while bytes wait for it is closed.
    pub write_timeout: Duration,
    /// A connection that owes bytes (its CONNECT, the rest of a frame) and sends nothing for
    /// this long is closed.
    pub max_inactivity: Duration,
    /// Connections accepted at once, over every transport of the node.
    pub maximum_connections: usize,
    /// How long a stopping connection may take to flush what it owes its client.
    pub shutdown_grace: Duration,
    /// Who may connect and what they may do.
    pub security: Security,
}

impl Default for TransportSettings {
    fn default() -> Self {
        TransportSettings {
            limits: Limits::default(),
            connect_timeout: mq_shared::defaults::CONNECT_TIMEOUT,
            heartbeat_ms: mq_shared::defaults::HEARTBEAT_MIN_MS,
            max_pending_writes: 10_000,
            // Enough for group commits to stay full; a pipelining producer cannot pile up
            // more than this in memory ahead of the store.
            max_pending_bytes: 4 << 20,
            write_timeout: mq_shared::defaults::WRITE_TIMEOUT,
            max_inactivity: mq_shared::defaults::MAX_INACTIVITY_DURATION,
            maximum_connections: mq_shared::defaults::MAXIMUM_CONNECTIONS,
            shutdown_grace: mq_shared::defaults::SHUTDOWN_GRACE,
            security: Security::none(),
        }
    }
}

/// What every transport connector of a node serves with.
#[derive(Clone)]
pub struct Connectors {
    /// The broker core the connections talk to.
    pub broker: Core,
    /// Connection settings.
    pub settings: Arc<TransportSettings>,
    /// The node's `maximum-connections` budget, shared by all its transports.
    pub slots: Arc<Semaphore>,
    /// Stops the accept loops and the connections.
    pub shutdown: CancellationToken,
    /// Tracks every connection task, so that shutdown can wait for them.
    pub tracker: TaskTracker,
}

/// Accepts connections until `shutdown` fires, each as its own tracked task. A connection
/// beyond the `maximum-connections` budget gets an ERROR and is closed.
/// With `tls` (an `ssl://` transport), every connection first completes a TLS handshake
/// (bounded in time; plain bytes get no CONNECTED, only a closed socket).
pub async fn serve(listener: TcpListener, tls: Option<TlsAcceptor>, connectors: Connectors) {
    accept_loop(&listener, &connectors.shutdown, |stream, remote| {
        let Some(permit) = connectors.admit(remote, "tcp") else {
            let limit = connectors.settings.maximum_connections;
            connectors.tracker.spawn(refuse(stream, limit));
            return;
        };
        let s = connectors.clone();
        let tls = tls.clone();
        connectors.tracker.spawn(async move {
            if let Some(stream) = handshake(stream, tls.as_ref(), remote, &s.shutdown).await {
                connection::run(stream, remote, s.broker, s.settings, s.shutdown, permit).await;
            }
        });
    })
    .await;
}

impl Connectors {
    /// A slot of the `maximum-connections` budget for a connection accepted from `remote`,
    /// or `None` (counted and logged) when the budget is spent.
    fn admit(&self, remote: SocketAddr, transport: &'static str) -> Option<OwnedSemaphorePermit> {
        let permit = self.slots.clone().try_acquire_owned().ok();
        if permit.is_none() {
            self.broker.count_refused_connection();
            tracing::warn!(%remote, transport, limit = self.settings.maximum_connections, "connection refused: maximum-connections reached");
        }
        permit
    }
}

/// Accepts connections on `listener` until `shutdown` fires, handing each (with `TCP_NODELAY`
/// set) to `accepted`. Accept errors (EMFILE and friends) back off from 5 ms to 1 s instead
/// of spinning.
async fn accept_loop(
    listener: &TcpListener,
    shutdown: &CancellationToken,
    mut accepted: impl FnMut(TcpStream, SocketAddr),
) {
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok((stream, remote)) => {
                    backoff = ACCEPT_BACKOFF_MIN;
                    let _ = stream.set_nodelay(true);
                    accepted(stream, remote);
                }
                Err(e) => {
                    tracing::warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "accept failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                }
            }
        }
    }
}

/// The TLS handshake of an accepted socket when the transport has `tls` (the plain socket
/// otherwise); `None` when it fails or `shutdown` fires first.
async fn handshake(
    stream: TcpStream,
    tls: Option<&TlsAcceptor>,
    remote: SocketAddr,
    shutdown: &CancellationToken,
) -> Option<mq_shared::tls::Stream> {
    tokio::select! {
        _ = shutdown.cancelled() => None,
        r = mq_shared::tls::accept(stream, tls) => match r {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::debug!(%remote, error = %e, "TLS handshake failed");
                None
            }
        },
    }
}

/// First wait after a failed accept.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
/// Longest wait after failed accepts in a row.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Tells a connection over the limit why it is closed, briefly, and closes it.
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(stream: S, limit: usize) {
    let mut conn = Connection::new(stream, Limits::default());
    conn.queue(&session::error_frame(
        &format!("maximum-connections ({limit}) reached; try again later"),
        None,
    ));
    conn.close_gracefully(Duration::from_millis(500), 64 * 1024)
        .await;
}
