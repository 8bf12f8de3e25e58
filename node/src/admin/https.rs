//! HTTPS for the admin API: a listener whose connections are TLS sessions, for axum.
//!
//! Handshakes run in their own tasks (bounded by the TLS handshake timeout), so a client that
//! opens a socket and says nothing cannot hold up the others; finished sessions are handed to
//! axum in the order they complete.

use std::net::SocketAddr;

use mq_shared::tls::{self, Stream, TlsAcceptor};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// TLS sessions on the admin port.
pub struct TlsListener {
    local: SocketAddr,
    rx: mpsc::Receiver<(Stream, SocketAddr)>,
}

impl TlsListener {
    /// Accepts on `listener` and handshakes with `acceptor` until `shutdown`.
    pub fn new(
        listener: TcpListener,
        acceptor: TlsAcceptor,
        shutdown: CancellationToken,
    ) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (tcp, peer) = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = listener.accept() => match r {
                        Ok(a) => a,
                        Err(e) => {
                            tracing::warn!(error = %e, "admin accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                let tx = tx.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match tls::accept(tcp, Some(&acceptor)).await {
                        Ok(s) => {
                            let _ = tx.send((s, peer)).await;
                        }
                        Err(e) => tracing::debug!(%peer, error = %e, "admin TLS handshake failed"),
                    }
                });
            }
        });
        Ok(TlsListener { local, rx })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = Stream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Stream, SocketAddr) {
        match self.rx.recv().await {
            Some(s) => s,
            // The accept task ended (shutdown): never resolve, axum's graceful shutdown ends us.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}
