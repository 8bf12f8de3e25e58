//! A load of producers and consumers that follow the master of a group through
//! `failover:(...)`, and what it saw ([`LoadResult`]): which confirmed messages were lost and
//! which were delivered twice without saying `redelivered:true`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mq_shared::client::{AckMode, ClientError, ConnectOptions, StompClient};
use mq_shared::failover::Failover;
use mq_shared::frame::Command;
use mq_shared::uri::ClientUri;

use crate::{QUIET, poll_until_async};

/// Every delivery a consumer saw: message id → the `redelivered` flag of each delivery.
pub type Deliveries = Arc<Mutex<HashMap<u64, Vec<bool>>>>;

/// Producers sending persistent messages with receipts and consumers acknowledging each one
/// (`client-individual`), all through `failover:(...)`, so they follow the master.
pub struct Load {
    stop_producing: Arc<AtomicBool>,
    stop_consuming: Arc<AtomicBool>,
    producers: Vec<tokio::task::JoinHandle<Vec<u64>>>,
    consumers: Vec<tokio::task::JoinHandle<()>>,
    /// Every delivery seen so far.
    pub deliveries: Deliveries,
    /// Receipts received so far, across producers.
    pub confirmed: Arc<AtomicU64>,
    /// Connections re-established after a failure, across clients.
    pub reconnects: Arc<AtomicU64>,
}

/// The outcome of a [`Load`].
#[derive(Debug)]
pub struct LoadResult {
    /// Ids confirmed by a RECEIPT.
    pub confirmed: Vec<u64>,
    /// Every delivery seen.
    pub deliveries: HashMap<u64, Vec<bool>>,
    /// Reconnections made.
    pub reconnects: u64,
}

impl LoadResult {
    /// Confirmed ids never delivered.
    pub fn lost(&self) -> Vec<u64> {
        self.confirmed
            .iter()
            .copied()
            .filter(|id| !self.deliveries.contains_key(id))
            .collect()
    }

    /// Ids delivered more than once, with the flags of their deliveries.
    pub fn duplicates(&self) -> Vec<(u64, Vec<bool>)> {
        let mut d: Vec<(u64, Vec<bool>)> = self
            .deliveries
            .iter()
            .filter(|(_, v)| v.len() > 1)
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        d.sort();
        d
    }

    /// Ids delivered more than once without `redelivered:true`: only the first delivery of a
    /// message may lack the flag. (Counted rather than taken in order: two consumers on two
    /// connections may record an original and its redelivery in either order.)
    pub fn unflagged_duplicates(&self) -> Vec<u64> {
        self.duplicates()
            .into_iter()
            .filter(|(_, flags)| flags.iter().filter(|f| !**f).count() > 1)
            .map(|(id, _)| id)
            .collect()
    }

    /// Panics unless every confirmed message was delivered.
    #[track_caller]
    pub fn assert_no_loss(&self) {
        let lost = self.lost();
        assert!(
            lost.is_empty(),
            "{} of {} confirmed messages lost, e.g. {:?}",
            lost.len(),
            self.confirmed.len(),
            &lost[..lost.len().min(10)]
        );
    }

    /// Panics unless every second delivery of a message said `redelivered:true`.
    #[track_caller]
    pub fn assert_redeliveries_flagged(&self) {
        let duplicates = self.duplicates();
        let unflagged = self.unflagged_duplicates();
        assert!(
            unflagged.is_empty(),
            "{} of {} duplicates lack redelivered:true ({unflagged:?}), e.g. {:?}",
            unflagged.len(),
            duplicates.len(),
            &duplicates[..duplicates.len().min(5)]
        );
    }
}

const DEST: &str = "/queue/ha.load";

async fn connect(f: &mut Failover) -> StompClient {
    match tokio::time::timeout(Duration::from_secs(30), f.connect()).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => panic!("failover connect failed: {e}"),
        Err(_) => panic!("no endpoint of {:?} served within 30 s", f.endpoints()),
    }
}

impl Load {
    /// Starts `producers` producers and `consumers` consumers on `uri`.
    pub fn start(uri: &str, producers: u64, consumers: usize) -> Load {
        let uri: ClientUri = uri.parse().expect("failover URI");
        let stop_producing = Arc::new(AtomicBool::new(false));
        let stop_consuming = Arc::new(AtomicBool::new(false));
        let deliveries: Deliveries = Arc::default();
        let confirmed = Arc::new(AtomicU64::new(0));
        let reconnects = Arc::new(AtomicU64::new(0));
        let producers = (0..producers)
            .map(|p| {
                let (uri, stop, confirmed, reconnects) = (
                    uri.clone(),
                    stop_producing.clone(),
                    confirmed.clone(),
                    reconnects.clone(),
                );
                tokio::spawn(async move {
                    let mut f = Failover::new(&uri, ConnectOptions::default());
                    let mut c = connect(&mut f).await;
                    let mut ok = Vec::new();
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let id = p * 1_000_000_000 + i;
                        i += 1;
                        let sent = tokio::time::timeout(
                            Duration::from_secs(10),
                            c.send(DEST, id.to_string(), &[("persistent", "true")], true),
                        )
                        .await;
                        match sent {
                            Ok(Ok(())) => {
                                ok.push(id);
                                confirmed.fetch_add(1, Ordering::Relaxed);
                            }
                            // Unconfirmed: it may or may not be stored; not resent, so that a
                            // second delivery can only be a redelivery.
                            _ => {
                                reconnects.fetch_add(1, Ordering::Relaxed);
                                c = connect(&mut f).await;
                            }
                        }
                    }
                    let _ = c.disconnect().await;
                    ok
                })
            })
            .collect();
        let consumers = (0..consumers)
            .map(|n| {
                let (uri, stop, deliveries, reconnects) = (
                    uri.clone(),
                    stop_consuming.clone(),
                    deliveries.clone(),
                    reconnects.clone(),
                );
                tokio::spawn(async move {
                    let mut f = Failover::new(&uri, ConnectOptions::default());
                    'connection: while !stop.load(Ordering::Relaxed) {
                        let mut c = connect(&mut f).await;
                        let sub = format!("c{n}");
                        let headers = [("activemq.prefetchSize", "50")];
                        if c.subscribe(DEST, &sub, AckMode::ClientIndividual, &headers)
                            .await
                            .is_err()
                        {
                            reconnects.fetch_add(1, Ordering::Relaxed);
                            continue 'connection;
                        }
                        while !stop.load(Ordering::Relaxed) {
                            match c.recv_timeout(Duration::from_millis(100)).await {
                                Ok(Some(m)) if m.command == Command::Message => {
                                    let id: u64 = std::str::from_utf8(&m.body)
                                        .ok()
                                        .and_then(|s| s.parse().ok())
                                        .expect("a load message body is its id");
                                    let flag = m.header("redelivered") == Some("true");
                                    deliveries
                                        .lock()
                                        .unwrap_or_else(|e| e.into_inner())
                                        .entry(id)
                                        .or_default()
                                        .push(flag);
                                    if c.ack(&m).await.is_err() {
                                        reconnects.fetch_add(1, Ordering::Relaxed);
                                        continue 'connection;
                                    }
                                }
                                Ok(_) => {}
                                Err(ClientError::Timeout(_)) => {}
                                Err(_) => {
                                    reconnects.fetch_add(1, Ordering::Relaxed);
                                    continue 'connection;
                                }
                            }
                        }
                        let _ = c.disconnect().await;
                    }
                })
            })
            .collect();
        Load {
            stop_producing,
            stop_consuming,
            producers,
            consumers,
            deliveries,
            confirmed,
            reconnects,
        }
    }

    /// Waits until at least `n` messages were confirmed in total (bounded).
    pub async fn wait_confirmed(&self, n: u64, timeout: Duration) {
        let confirmed = async || self.confirmed.load(Ordering::Relaxed) >= n;
        assert!(
            poll_until_async(timeout, confirmed).await,
            "only {} of {n} messages confirmed within {timeout:?}",
            self.confirmed.load(Ordering::Relaxed)
        );
    }

    /// Stops the producers, waits (bounded by `drain`) until every confirmed message has been
    /// delivered, watches a little longer for duplicates, then stops the consumers.
    pub async fn finish(self, drain: Duration) -> LoadResult {
        self.stop_producing.store(true, Ordering::Relaxed);
        let mut confirmed = Vec::new();
        for p in self.producers {
            confirmed.extend(p.await.expect("producer task"));
        }
        // Bounded; what is still missing then is reported by `LoadResult::lost`.
        poll_until_async(drain, async || {
            let d = self.deliveries.lock().unwrap_or_else(|e| e.into_inner());
            confirmed.iter().all(|id| d.contains_key(id))
        })
        .await;
        // Late duplicates would arrive now.
        tokio::time::sleep(QUIET).await;
        self.stop_consuming.store(true, Ordering::Relaxed);
        for c in self.consumers {
            c.await.expect("consumer task");
        }
        let deliveries =
            std::mem::take(&mut *self.deliveries.lock().unwrap_or_else(|e| e.into_inner()));
        LoadResult {
            confirmed,
            deliveries,
            reconnects: self.reconnects.load(Ordering::Relaxed),
        }
    }
}

/// `failover:(tcp://A,tcp://B,...)?randomize=false&initialReconnectDelay=10&maxReconnectDelay=100`
pub fn failover_uri(stomp_urls: &[String]) -> String {
    format!(
        "failover:({})?randomize=false&initialReconnectDelay=10&maxReconnectDelay=100",
        stomp_urls.join(",")
    )
}
