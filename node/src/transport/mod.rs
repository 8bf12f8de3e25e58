//! Transport connectors: TCP listeners that speak STOMP to clients and to other brokers'
//! bridges. This module owns sockets only; what a frame means is the broker core's business.
//!
//! ```text
//! serve (accept loop) ──▶ connection::run (one task per socket: reads, writes, timers)
//!                              └─▶ session::Session (STOMP semantics) ──▶ broker::Core API
//!                                     ├─ subscription (ack modes, unacked deliveries)
//!                                     └─ transaction (BEGIN/COMMIT/ABORT)
//! ```
//!
//! Connection tasks are tracked so shutdown can wait for all of them.

pub mod connection;
pub mod session;
pub mod subscription;
pub mod transaction;

use std::sync::Arc;
use std::time::Duration;

use mq_shared::frame::Limits;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::Core;

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
    /// How long the last bytes (an ERROR, a DISCONNECT's RECEIPT) may take to leave before a
    /// closing connection is dropped.
    pub close_timeout: Duration,
}

impl Default for TransportSettings {
    fn default() -> Self {
        TransportSettings {
            limits: Limits::default(),
            connect_timeout: mq_shared::defaults::CONNECT_TIMEOUT,
            heartbeat_ms: mq_shared::defaults::HEARTBEAT_MIN_MS,
            max_pending_writes: 10_000,
            close_timeout: mq_shared::defaults::CLOSE_TIMEOUT,
        }
    }
}

/// Accepts connections until `shutdown` fires, then waits for every connection task to end.
pub async fn serve(
    listener: TcpListener,
    broker: Core,
    settings: Arc<TransportSettings>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    let _ = stream.set_nodelay(true);
                    let b = broker.clone();
                    let s = settings.clone();
                    let sd = shutdown.clone();
                    tracker.spawn(async move {
                        connection::run(stream, remote, b, s, sd).await;
                    });
                }
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    }
                }
            }
        }
    }
}
