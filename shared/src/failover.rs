//! Client-side failover: connect to whichever endpoint of a `failover:(...)` (or
//! `masterslave:(...)`) URI is serving, with ActiveMQ's `FailoverTransport` options.
//!
//! One attempt tries every endpoint once (in list order, or shuffled with `randomize=true`).
//! Between attempts the delay starts at `initialReconnectDelay` and grows by
//! `backOffMultiplier` (with `useExponentialBackOff`) up to `maxReconnectDelay`, as
//! [`crate::backoff`] computes it. Before the first successful connection
//! `startupMaxReconnectAttempts` bounds the attempts, afterwards `maxReconnectAttempts` (-1
//! forever, 0 a single attempt); `timeout` (ms, -1 none) bounds the whole call. What to do
//! with in-flight work after a reconnect (resend unconfirmed messages,
//! resubscribe) is the caller's business: the broker redelivers unacked messages itself.

use std::time::Duration;

use rand::seq::SliceRandom;

use crate::backoff::{Backoff, BackoffConfig};
use crate::client::{ClientError, ConnectOptions, StompClient};
use crate::uri::{ClientUri, FailoverOptions, HostPort};

/// Connects to the serving endpoint of a client URI, again after each failure.
#[derive(Debug, Clone)]
pub struct Failover {
    endpoints: Vec<HostPort>,
    options: FailoverOptions,
    connect: ConnectOptions,
    connected_once: bool,
    current: Option<HostPort>,
}

impl Failover {
    /// A connector for `uri`; a plain `tcp://` URI is one endpoint with default options.
    pub fn new(uri: &ClientUri, connect: ConnectOptions) -> Failover {
        let (endpoints, options) = match uri {
            ClientUri::Tcp(hp) => (vec![hp.clone()], FailoverOptions::default()),
            ClientUri::Failover(f) => (f.endpoints.clone(), f.options.clone()),
        };
        Failover {
            endpoints,
            options,
            connect,
            connected_once: false,
            current: None,
        }
    }

    /// The endpoint of the last successful connection.
    pub fn current(&self) -> Option<&HostPort> {
        self.current.as_ref()
    }

    /// The endpoints, in the order given.
    pub fn endpoints(&self) -> &[HostPort] {
        &self.endpoints
    }

    /// Connects to the first endpoint that answers CONNECTED, retrying per the options.
    pub async fn connect(&mut self) -> Result<StompClient, ClientError> {
        if self.options.timeout_ms >= 0 {
            let limit = Duration::from_millis(self.options.timeout_ms as u64);
            let what = self.describe();
            match tokio::time::timeout(limit, self.connect_loop()).await {
                Ok(r) => r,
                Err(_) => Err(ClientError::Timeout(format!(
                    "no endpoint of {what} answered within {} ms",
                    limit.as_millis()
                ))),
            }
        } else {
            self.connect_loop().await
        }
    }

    fn describe(&self) -> String {
        let list: Vec<String> = self.endpoints.iter().map(|e| e.to_string()).collect();
        format!("failover:({})", list.join(","))
    }

    async fn connect_loop(&mut self) -> Result<StompClient, ClientError> {
        let attempts = if self.connected_once {
            self.options.max_reconnect_attempts
        } else {
            self.options.startup_max_reconnect_attempts
        };
        let mut backoff = Backoff::new(BackoffConfig::failover(&self.options, attempts));
        loop {
            let mut order = self.endpoints.clone();
            if self.options.randomize {
                order.shuffle(&mut rand::rng());
            }
            let mut last = None;
            for ep in order {
                match StompClient::connect(&ep.to_uri_string(), self.connect.clone()).await {
                    Ok(c) => {
                        self.connected_once = true;
                        self.current = Some(ep);
                        return Ok(c);
                    }
                    Err(e) => last = Some(e),
                }
            }
            // -1: forever; 0: this single attempt; n: n more after it.
            match backoff.failed() {
                Some(delay) => tokio::time::sleep(delay).await,
                None => return Err(last.unwrap_or(ClientError::Closed)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A one-shot server that answers the first CONNECT with CONNECTED.
    async fn server() -> std::io::Result<(u16, tokio::task::JoinHandle<()>)> {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let port = l.local_addr()?.port();
        let h = tokio::spawn(async move {
            if let Ok((mut s, _)) = l.accept().await {
                let mut buf = vec![0u8; 1024];
                let mut got = Vec::new();
                while !got.contains(&0) {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s
                    .write_all(b"CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0")
                    .await;
                let _ = s.read(&mut buf).await;
            }
        });
        Ok((port, h))
    }

    fn closed_port() -> std::io::Result<u16> {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        Ok(l.local_addr()?.port())
    }

    #[tokio::test]
    async fn skips_a_dead_endpoint() -> Result<(), Box<dyn std::error::Error>> {
        let dead = closed_port()?;
        let (live, h) = server().await?;
        let uri: ClientUri = format!(
            "failover:(tcp://127.0.0.1:{dead},tcp://127.0.0.1:{live})?randomize=false&maxReconnectAttempts=0&startupMaxReconnectAttempts=0"
        )
        .parse()?;
        let mut f = Failover::new(&uri, ConnectOptions::default());
        let _c = f.connect().await?;
        assert_eq!(f.current().map(|h| h.port), Some(live));
        h.abort();
        Ok(())
    }

    #[tokio::test]
    async fn gives_up_after_the_attempts_allowed() -> Result<(), Box<dyn std::error::Error>> {
        let dead = closed_port()?;
        let uri: ClientUri = format!(
            "failover:(tcp://127.0.0.1:{dead})?startupMaxReconnectAttempts=2&initialReconnectDelay=1"
        )
        .parse()?;
        let mut f = Failover::new(&uri, ConnectOptions::default());
        assert!(f.connect().await.is_err());
        Ok(())
    }
}
