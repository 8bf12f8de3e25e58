//! The connected phase of a bridge: follow the peer's demand, forward deliveries with
//! receipts, and (duplex) carry the peer's messages for this node's demand. See the parent
//! module for the protocol steps.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use mq_shared::api::ConnectionInfo;
use mq_shared::connection::sleep_until;
use mq_shared::destination::Destination;
use mq_shared::frame::{Command, Frame, Item};
use mq_shared::headers;
use mq_shared::uri::NetworkOptions;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{
    ADVISORY_SUB, BridgeConfig, HIGH_WATER, Link, NETWORK_PRIORITY, PeerStatus, peer_error,
};
use crate::broker::{
    AckHandle, Attached, ConsumerOptions, ConsumerSpec, Core, Delivery, Message, Outgoing, Settle,
    now_ms,
};
use crate::internode::{ADVISORY_DESTINATION, Advisory, BridgeSubscription, DemandEntry};
use crate::network::demand::{Selection, Want};
use crate::network::{BridgeError, STATIC_RESCAN};

/// One local network consumer attached for the peer.
struct Consumer {
    dest: String,
    attached: Attached,
    /// Sends awaiting the peer's receipt.
    inflight: usize,
    /// Demand went away: send nothing more, detach when `inflight` reaches 0.
    draining: bool,
}

/// A forwarded queue message awaiting the peer's receipt.
struct Pending {
    handle: AckHandle,
    consumer: u64,
}

/// A duplex subscription on the peer, for this node's demand.
struct Reverse {
    id: String,
    want: Want,
    /// Messages published locally whose ACK has not gone out yet.
    unacked: usize,
    /// Demand went away: publish nothing more, UNSUBSCRIBE when `unacked` reaches 0.
    closing: bool,
}

/// A message from the peer, committed here (or not): (subscription, ack id, outcome).
type Committed = (String, String, Result<(), String>);

/// The connected phase of a bridge.
pub(super) struct Session {
    core: Core,
    cfg: Arc<BridgeConfig>,
    status: Arc<PeerStatus>,
    link: Link,
    peer: Arc<str>,
    conn: u64,
    tx: mpsc::UnboundedSender<Delivery>,
    rx: mpsc::UnboundedReceiver<Delivery>,
    remote: Vec<DemandEntry>,
    fwd: BTreeMap<String, (Want, Vec<u64>)>,
    consumers: HashMap<u64, Consumer>,
    pending: HashMap<u64, Pending>,
    next_receipt: u64,
    rev: BTreeMap<String, Reverse>,
    rev_by_sub: HashMap<String, String>,
    next_sub: u64,
    committed_tx: mpsc::UnboundedSender<Committed>,
    committed_rx: mpsc::UnboundedReceiver<Committed>,
    /// The connector's options, shared with the wildcard consumers that check them.
    options: Arc<NetworkOptions>,
}

impl Session {
    pub(super) fn new(
        core: Core,
        cfg: Arc<BridgeConfig>,
        status: Arc<PeerStatus>,
        link: Link,
        peer: Arc<str>,
        addr: String,
    ) -> Session {
        let conn = core.register_connection(ConnectionInfo {
            id: 0,
            remote: addr,
            kind: mq_shared::api::ConnectionKind::Bridge,
            version: "1.2".into(),
            broker: Some(peer.to_string()),
            subscriptions: 0,
            since_ms: now_ms(),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let (committed_tx, committed_rx) = mpsc::unbounded_channel();
        let options = Arc::new(cfg.options.clone());
        Session {
            core,
            cfg,
            status,
            link,
            peer,
            conn,
            tx,
            rx,
            remote: Vec::new(),
            fwd: BTreeMap::new(),
            consumers: HashMap::new(),
            pending: HashMap::new(),
            next_receipt: 0,
            rev: BTreeMap::new(),
            rev_by_sub: HashMap::new(),
            next_sub: 0,
            committed_tx,
            committed_rx,
            options,
        }
    }

    /// Runs until the link fails (`Err`) or `cancel` fires (`Ok`). Always detaches every
    /// local consumer before returning.
    pub(super) async fn run(mut self, cancel: &CancellationToken) -> Result<(), BridgeError> {
        let r = self.serve(cancel).await;
        for (id, c) in self.consumers.drain() {
            self.core.unsubscribe(&c.attached, id);
        }
        self.core.unregister_connection(self.conn);
        r
    }

    async fn serve(&mut self, cancel: &CancellationToken) -> Result<(), BridgeError> {
        self.send(
            Frame::new(Command::Subscribe)
                .with_header("destination", ADVISORY_DESTINATION)
                .with_header("id", ADVISORY_SUB)
                .with_header("ack", "auto"),
        )?;
        let duplex = self.cfg.options.duplex;
        let mut local_demand: Option<watch::Receiver<u64>> =
            duplex.then(|| self.core.demand_changes());
        if duplex {
            self.reconcile_reverse()?;
        }
        let statics = !self.cfg.options.statically_included_destinations.is_empty()
            && !self.cfg.options.dynamic_only;
        let mut rescan = tokio::time::interval(STATIC_RESCAN);
        rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = self.link.next_deadline();
            let room = self.link.buffered() < HIGH_WATER;
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                p = self.link.drive(true) => {
                    if p?.read == Some(0) {
                        return Err(BridgeError::Closed);
                    }
                    while let Some(item) = self.link.decode()? {
                        if let Item::Frame(f) = item {
                            self.on_frame(f)?;
                        }
                    }
                }
                _ = sleep_until(deadline) => self.link.tick(Instant::now())?,
                Some(d) = self.rx.recv(), if room => {
                    self.forward(d)?;
                    // Take what else is ready before waiting again.
                    while self.link.buffered() < HIGH_WATER
                        && let Ok(d) = self.rx.try_recv()
                    {
                        self.forward(d)?;
                    }
                }
                Some(c) = self.committed_rx.recv() => self.on_committed(c)?,
                changed = changed(&mut local_demand) => {
                    if changed {
                        self.reconcile_reverse()?;
                    } else {
                        local_demand = None;
                    }
                }
                _ = rescan.tick(), if statics => self.reconcile_forward(),
            }
        }
    }

    /// Queues a frame for the peer (written by the session loop).
    fn send(&mut self, f: Frame) -> Result<(), BridgeError> {
        self.link.queue(&f);
        Ok(())
    }

    fn on_frame(&mut self, f: Frame) -> Result<(), BridgeError> {
        match f.command {
            Command::Receipt => {
                if let Some(n) = f
                    .header("receipt-id")
                    .and_then(|r| r.strip_prefix("f-"))
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    self.on_receipt(n);
                }
                Ok(())
            }
            Command::Message => {
                let sub = f.header("subscription").unwrap_or_default().to_string();
                if sub == ADVISORY_SUB {
                    let a: Advisory = serde_json::from_slice(&f.body)
                        .map_err(|e| BridgeError::Protocol(format!("bad demand advisory: {e}")))?;
                    self.remote = a.demand;
                    self.reconcile_forward();
                    Ok(())
                } else {
                    self.on_inbound(&sub, f)
                }
            }
            Command::Error => Err(peer_error(&f)),
            other => Err(BridgeError::Protocol(format!(
                "unexpected {other} frame from the peer"
            ))),
        }
    }

    /// The peer stored a forwarded message: ack it here (the store deletes it).
    fn on_receipt(&mut self, n: u64) {
        let Some(p) = self.pending.remove(&n) else {
            return;
        };
        if self.core.settle([(p.handle, Settle::Forwarded)], None) > 0 {
            self.status.add_forwarded(1);
        }
        let done = match self.consumers.get_mut(&p.consumer) {
            Some(c) => {
                c.inflight = c.inflight.saturating_sub(1);
                c.draining && c.inflight == 0
            }
            None => false,
        };
        if done && let Some(c) = self.consumers.remove(&p.consumer) {
            self.core.unsubscribe(&c.attached, p.consumer);
        }
    }

    /// Sends one local delivery to the peer.
    fn forward(&mut self, d: Delivery) -> Result<(), BridgeError> {
        let Some(c) = self.consumers.get_mut(&d.consumer) else {
            return Ok(());
        };
        if c.draining {
            // Stays in flight here until the consumer is detached, then returns to its queue.
            return Ok(());
        }
        let mut f = d.message.to_frame(Outgoing::Forward {
            local: &self.cfg.local,
        });
        match d.ack {
            // A topic copy needs no receipt: it only frees room in the subscriber's window,
            // once it is in the link's buffer (which is bounded).
            Some(handle) if !handle.is_queue() => {
                self.core.settle([(handle, Settle::Forwarded)], None);
                self.status.add_forwarded(1);
            }
            Some(handle) => {
                self.next_receipt += 1;
                let n = self.next_receipt;
                f.push_header("receipt", format!("f-{n}"));
                self.pending.insert(
                    n,
                    Pending {
                        handle,
                        consumer: d.consumer,
                    },
                );
                c.inflight += 1;
            }
            None => self.status.add_forwarded(1),
        }
        self.send(f)
    }

    /// Attaches and detaches local network consumers to match the peer's demand.
    fn reconcile_forward(&mut self) {
        let cfg = self.cfg.clone();
        let o = &cfg.options;
        let local: Vec<Destination> = if o.statically_included_destinations.is_empty() {
            Vec::new()
        } else {
            let mut v: Vec<Destination> = self
                .core
                .queues()
                .iter()
                .map(|q| Destination::queue(&q.name))
                .collect();
            v.extend(
                self.core
                    .topics()
                    .iter()
                    .map(|t| Destination::topic(&t.name)),
            );
            v
        };
        let wanted = Selection::new(self.options.clone(), self.peer.clone())
            .wanted(&self.remote, local.into_iter());
        let gone: Vec<String> = self
            .fwd
            .iter()
            .filter(|(k, (w, _))| wanted.get(*k) != Some(w))
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            if let Some((_, ids)) = self.fwd.remove(&k) {
                for id in ids {
                    self.detach(id);
                }
            }
        }
        for (k, w) in wanted {
            if self.fwd.contains_key(&k) {
                continue;
            }
            let Ok(dest) = Destination::parse(&k) else {
                continue;
            };
            let mut ids = Vec::with_capacity(w.consumers);
            for _ in 0..w.consumers {
                let id = self.core.next_id();
                let spec = ConsumerSpec {
                    id,
                    conn: self.conn,
                    prefetch: o.prefetch_size,
                    priority: priority(o, w.network.hops),
                    network: true,
                    bridge: Some(w.network.clone()),
                    options: ConsumerOptions {
                        selector: w.selector.clone(),
                        ..Default::default()
                    },
                    tx: self.tx.clone(),
                };
                let attached = self.core.subscribe(&dest, spec);
                self.consumers.insert(
                    id,
                    Consumer {
                        dest: k.clone(),
                        attached,
                        inflight: 0,
                        draining: false,
                    },
                );
                ids.push(id);
            }
            tracing::debug!(peer = %self.peer, destination = %k, "forwarding on demand");
            self.fwd.insert(k, (w, ids));
        }
        let n = self.consumers.len() as u64;
        self.core
            .update_connection(self.conn, |m| m.subscriptions = n);
    }

    fn detach(&mut self, id: u64) {
        let Some(c) = self.consumers.get_mut(&id) else {
            return;
        };
        if c.inflight > 0 {
            c.draining = true;
            return;
        }
        if let Some(c) = self.consumers.remove(&id) {
            tracing::debug!(peer = %self.peer, destination = %c.dest, "demand gone; detached");
            self.core.unsubscribe(&c.attached, id);
        }
    }

    /// Duplex: subscribes on the peer for this node's demand (and unsubscribes when it ends).
    fn reconcile_reverse(&mut self) -> Result<(), BridgeError> {
        let cfg = self.cfg.clone();
        let o = &cfg.options;
        let snap = self.core.advisory(Some(self.conn), Some(&self.peer));
        // The peer cannot apply this connector's filters to what a wildcard matches there:
        // with filters, wildcard demand is not subscribed for on the peer.
        let filtered =
            !o.excluded_destinations.is_empty() || !o.dynamically_included_destinations.is_empty();
        let mut wanted = Selection::new(self.options.clone(), self.cfg.local.clone())
            .wanted(&snap.demand, std::iter::empty());
        if filtered {
            wanted.retain(|k, _| Destination::parse(k).is_ok_and(|d| !d.has_wildcard()));
        }
        let gone: Vec<String> = self
            .rev
            .iter()
            .filter(|(k, r)| !r.closing && wanted.get(*k) != Some(&r.want))
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            if let Some(r) = self.rev.get_mut(&k) {
                r.closing = true;
                if r.unacked == 0 {
                    let id = r.id.clone();
                    self.unsubscribe_reverse(&k, &id)?;
                }
            }
        }
        for (k, w) in wanted {
            if self.rev.contains_key(&k) {
                continue;
            }
            self.next_sub += 1;
            let id = format!("rev-{}", self.next_sub);
            let mut f = Frame::new(Command::Subscribe)
                .with_header("destination", k.as_str())
                .with_header("id", id.as_str())
                .with_header("ack", "client-individual")
                .with_header(headers::PREFETCH_SIZE, o.prefetch_size.to_string())
                .with_header(headers::PRIORITY, priority(o, w.network.hops).to_string());
            if let Some(sel) = &w.selector {
                f.push_header(headers::SELECTOR, sel.to_string());
            }
            BridgeSubscription {
                hops: w.network.hops,
                origin: w.network.origin.clone(),
                message_ttl: o.message_ttl,
            }
            .add_headers(&self.cfg.local, &mut f);
            self.send(f)?;
            tracing::debug!(peer = %self.peer, destination = %k, "duplex: subscribed on the peer");
            self.rev_by_sub.insert(id.clone(), k.clone());
            self.rev.insert(
                k,
                Reverse {
                    id,
                    want: w,
                    unacked: 0,
                    closing: false,
                },
            );
        }
        Ok(())
    }

    fn unsubscribe_reverse(&mut self, dest: &str, id: &str) -> Result<(), BridgeError> {
        self.rev.remove(dest);
        self.rev_by_sub.remove(id);
        self.send(Frame::new(Command::Unsubscribe).with_header("id", id))
    }

    /// Duplex: a message from the peer for this node's demand.
    fn on_inbound(&mut self, sub: &str, f: Frame) -> Result<(), BridgeError> {
        let Some(dest) = self.rev_by_sub.get(sub).cloned() else {
            // Unsubscribed meanwhile: the peer takes it back.
            return Ok(());
        };
        let Some(r) = self.rev.get_mut(&dest) else {
            return Ok(());
        };
        if r.closing {
            // Not taken: it returns to the peer's queue when the subscription ends.
            return Ok(());
        }
        let ack = f
            .header("ack")
            .ok_or_else(|| BridgeError::Protocol("MESSAGE without an ack header".into()))?
            .to_string();
        if f.header("message-id").is_none() {
            return Err(BridgeError::Protocol(
                "MESSAGE from the peer without a message-id".into(),
            ));
        }
        let msg = Message::from_frame(f, true, String::new)
            .map_err(|e| BridgeError::Protocol(format!("MESSAGE from the peer: {e}")))?;
        r.unacked += 1;
        let done = self.committed_tx.clone();
        let sub = sub.to_string();
        self.core.publish(
            msg,
            Some(self.conn),
            false,
            true,
            Some(Box::new(move |res| {
                let _ = done.send((sub, ack, res.map(|_| ()).map_err(|e| e.to_string())));
            })),
        );
        Ok(())
    }

    /// A message from the peer is stored here: ACK it so the peer deletes it.
    fn on_committed(&mut self, (sub, ack, res): Committed) -> Result<(), BridgeError> {
        if let Err(e) = res {
            // Not stored: drop the link so the peer keeps and redelivers it.
            return Err(BridgeError::Store(e));
        }
        self.send(Frame::new(Command::Ack).with_header("id", ack))?;
        let Some(dest) = self.rev_by_sub.get(&sub).cloned() else {
            return Ok(());
        };
        let Some(r) = self.rev.get_mut(&dest) else {
            return Ok(());
        };
        r.unacked = r.unacked.saturating_sub(1);
        if r.closing && r.unacked == 0 {
            self.unsubscribe_reverse(&dest, &sub)?;
        }
        Ok(())
    }
}

/// Resolves when this node's demand changed (true) or can no longer change (false).
async fn changed(rx: &mut Option<watch::Receiver<u64>>) -> bool {
    match rx {
        Some(rx) => rx.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}

/// Priority of a network consumer standing for demand `hops` away: ActiveMQ's −5, one lower
/// per further hop, with `decreaseNetworkConsumerPriority`; else 0 like a local consumer.
fn priority(o: &NetworkOptions, hops: u32) -> i32 {
    if o.decrease_network_consumer_priority {
        NETWORK_PRIORITY.saturating_sub(hops.saturating_sub(1).min(1000) as i32)
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::internode::BROKER_PATH_HEADER;
    use bytes::Bytes;

    fn send_frame(m: &Message, local: &str) -> Frame {
        m.to_frame(Outgoing::Forward { local })
    }

    fn msg(path: Option<&str>) -> Message {
        let mut headers = vec![("k".to_string(), "v".to_string())];
        if let Some(p) = path {
            headers.push((BROKER_PATH_HEADER.to_string(), p.to_string()));
        }
        Message {
            id: Arc::from("ID:a-1"),
            destination: Destination::queue("q"),
            headers,
            body: Bytes::from_static(b"hi"),
            persistent: true,
            expires: 0,
            timestamp: 1,
        }
    }

    #[test]
    fn forwarded_send_keeps_id_and_extends_the_path() {
        let f = send_frame(&msg(None), "A");
        assert_eq!(f.header("message-id"), Some("ID:a-1"));
        assert_eq!(f.header("persistent"), Some("true"));
        assert_eq!(f.header(BROKER_PATH_HEADER), Some("A"));
        assert_eq!(f.header("k"), Some("v"));
        let f = send_frame(&msg(Some("X,Y")), "A");
        assert_eq!(f.header(BROKER_PATH_HEADER), Some("X,Y,A"));
        assert_eq!(
            f.headers
                .iter()
                .filter(|(k, _)| k == BROKER_PATH_HEADER)
                .count(),
            1
        );
    }

    #[test]
    fn priorities_fall_with_hops() {
        let mut o = NetworkOptions::default();
        assert_eq!(priority(&o, 1), -5);
        assert_eq!(priority(&o, 3), -7);
        o.decrease_network_consumer_priority = false;
        assert_eq!(priority(&o, 3), 0);
    }
}
