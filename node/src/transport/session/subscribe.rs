//! SUBSCRIBE and UNSUBSCRIBE: consumers on destinations and patterns, durable subscriptions,
//! and a bridge's subscription to the demand advisory.

use std::sync::Arc;

use bytes::Bytes;
use mq_shared::destination::Destination;
use mq_shared::frame::{Command, Frame, Version};
use mq_shared::headers::CLIENT_ID;

use super::{Out, Reply, Session};
use crate::broker::{ConsumerSpec, NetworkConsumer, Permit, TempOwner};
use crate::internode::{ADVISORY_DESTINATION, BRIDGE_HEADER, BridgeSubscription, is_advisory};
use crate::security::Operation;
use crate::transport::subscription::{self, AckMode, Sub};

/// ActiveMQ's base priority of network consumers (`ConsumerInfo.NETWORK_CONSUMER_PRIORITY`).
const NETWORK_PRIORITY: i32 = -5;

impl Session {
    pub(super) fn on_subscribe(&mut self, f: &Frame) -> Result<Reply, String> {
        let dest_s = f
            .header("destination")
            .ok_or("SUBSCRIBE without a destination header")?;
        let id = match f.header("id") {
            Some(id) => id.to_string(),
            None if self.version() == Version::V1_0 => dest_s.to_string(),
            None => return Err("SUBSCRIBE without an id header".into()),
        };
        if self.subs.contains(&id) || self.advisory.as_ref().is_some_and(|(a, _)| *a == id) {
            return Err(format!("subscription id '{id}' is already in use"));
        }
        if is_advisory(dest_s) {
            return self.subscribe_advisory(dest_s, id);
        }
        if dest_s.contains(',') {
            return Err(format!(
                "SUBSCRIBE to composite destination '{dest_s}': composite destinations are for SEND; subscribe to each part, or to a wildcard"
            ));
        }
        let dest = self.names.resolve(dest_s, &self.broker, self.conn)?;
        if dest.has_wildcard() {
            crate::broker::wildcard_pattern(&dest)?;
        }
        let durable = self.durable_name(f, &dest)?;
        if dest.is_temp() && self.bridge.is_none() {
            match self.broker.temp_owner(&dest) {
                TempOwner::Connection(c) if c == self.conn => {}
                _ => {
                    return Err(format!(
                        "cannot SUBSCRIBE to {dest}: only the connection that created a temporary destination consumes from it"
                    ));
                }
            }
        }
        self.allow(Operation::Read, &dest)?;
        let mut options = subscription::options(f, &dest)?;
        if dest.has_wildcard()
            && self.settings.security.is_enabled()
            && let Some(p) = self.principal.clone()
        {
            // A pattern the reader may subscribe to reaches only what it may read.
            let security = self.settings.security.clone();
            options.permit = Some(Permit(Arc::new(move |d: &str| {
                security.authorize(&p, Operation::Read, d).is_ok()
            })));
        }
        let ack = AckMode::parse(f.header("ack"))?;
        let settings = self.broker.settings();
        let prefetch = subscription::prefetch(f, settings.prefetch, settings.max_prefetch)?;
        let network = self.bridge.is_some();
        let priority = subscription::priority(f, if network { NETWORK_PRIORITY } else { 0 })?;
        let bridge = match &self.bridge {
            Some(b) => {
                let s = BridgeSubscription::from_frame(b, f)?;
                Some(Arc::new(NetworkConsumer {
                    remote_broker: Arc::from(b.as_str()),
                    hops: s.hops,
                    origin: s.origin,
                    message_ttl: s.message_ttl,
                    scope: None,
                }))
            }
            None => None,
        };
        let consumer = self.broker.next_id();
        let selector = options.selector.clone();
        let spec = ConsumerSpec {
            id: consumer,
            conn: self.conn,
            prefetch,
            priority,
            network,
            bridge,
            options,
            tx: self.deliver_tx.clone(),
        };
        // Deliveries made during attach wait in the channel until this frame is handled,
        // so registering after attaching loses nothing.
        let durable_info = durable.clone().map(|n| (n, dest.to_string()));
        let (attached, reply) = match (durable, &self.client_id) {
            (Some(name), Some(client_id)) => {
                let text = f
                    .header(mq_shared::headers::SELECTOR)
                    .map(|t| t.trim().to_string());
                let (attached, ops) = self.broker.subscribe_durable(
                    client_id,
                    &name,
                    dest.name(),
                    text.zip(selector),
                    spec,
                )?;
                // The RECEIPT once the subscription is recorded.
                let done =
                    self.store_completion(f.header("receipt"), "durable subscription not stored");
                self.broker
                    .persist(ops, Some(Box::new(move |r| done(r.map(|_| false)))));
                (attached, Reply::Later)
            }
            _ => (self.broker.subscribe(&dest, spec), Reply::Now),
        };
        self.subs.insert(Sub {
            id,
            consumer,
            ack,
            attached,
            unacked: Default::default(),
            durable: durable_info,
        });
        self.count_subscriptions();
        Ok(reply)
    }

    /// The `activemq.subscriptionName` of a SUBSCRIBE to a topic (ignored on a queue, as
    /// ActiveMQ does), checked: it needs the connection's `client-id`, one plain topic, and a
    /// name this connection does not consume already.
    fn durable_name(&self, f: &Frame, dest: &Destination) -> Result<Option<String>, String> {
        use mq_shared::headers::SUBSCRIPTION_NAME;
        let Some(name) = f.header(SUBSCRIPTION_NAME) else {
            return Ok(None);
        };
        if dest.is_queue() {
            return Ok(None);
        }
        if self.client_id.is_none() {
            return Err(format!(
                "{SUBSCRIPTION_NAME} needs the {CLIENT_ID} header on CONNECT: a durable subscription belongs to a client-id"
            ));
        }
        if name.is_empty() {
            return Err(format!("{SUBSCRIPTION_NAME} is empty"));
        }
        if dest.is_temp() || dest.has_wildcard() {
            return Err(format!(
                "{SUBSCRIPTION_NAME}: a durable subscription is to one topic; {dest} is {}",
                if dest.is_temp() {
                    "temporary"
                } else {
                    "a wildcard pattern"
                }
            ));
        }
        if self.subs.durable_names().any(|n| n == name) {
            return Err(format!(
                "durable subscription '{name}' is already active on this connection"
            ));
        }
        Ok(Some(name.to_string()))
    }

    fn count_subscriptions(&self) {
        let n = self.subs.len() as u64;
        self.broker
            .update_connection(self.conn, |m| m.subscriptions = n);
    }

    /// A bridge subscribes to this node's demand: a snapshot now and on every change.
    fn subscribe_advisory(&mut self, dest: &str, id: String) -> Result<Reply, String> {
        if self.bridge.is_none() {
            return Err(format!(
                "{dest} is served to network bridges only (CONNECT with {BRIDGE_HEADER})"
            ));
        }
        if dest != ADVISORY_DESTINATION {
            return Err(format!(
                "unknown advisory destination {dest}; bridges subscribe to {ADVISORY_DESTINATION}"
            ));
        }
        if self.advisory.is_some() {
            return Err("the demand advisory is already subscribed".into());
        }
        self.advisory = Some((id, String::new()));
        self.demand_rx = Some(self.broker.demand_changes());
        self.send_advisory(true);
        Ok(Reply::Now)
    }

    /// Sends the demand snapshot to the bridge if it changed since the last one (or always).
    pub fn send_advisory(&mut self, always: bool) {
        let Some((id, last)) = &mut self.advisory else {
            return;
        };
        let snap = self
            .broker
            .advisory(Some(self.conn), self.bridge.as_deref());
        let body = serde_json::to_string(&snap).unwrap_or_default();
        if !always && body == *last {
            return;
        }
        *last = body.clone();
        let f = Frame::new(Command::Message)
            .with_header("subscription", id.as_str())
            .with_header("message-id", self.broker.new_message_id())
            .with_header("destination", ADVISORY_DESTINATION)
            .with_header("content-type", "application/json")
            .with_body(Bytes::from(body));
        self.out.send(Out::Frame(f));
    }

    pub(super) fn on_unsubscribe(&mut self, f: &Frame) -> Result<Reply, String> {
        let id = match (f.header("id"), f.header("destination")) {
            (Some(id), _) => id.to_string(),
            (None, Some(d)) if self.version() == Version::V1_0 => d.to_string(),
            _ => return Err("UNSUBSCRIBE without an id header".into()),
        };
        if self.advisory.as_ref().is_some_and(|(a, _)| *a == id) {
            self.advisory = None;
            self.demand_rx = None;
            return Ok(Reply::Now);
        }
        let name = f.header(mq_shared::headers::SUBSCRIPTION_NAME);
        let sub = self.subs.remove(&id);
        if sub.is_none() && name.is_none() {
            return Err(format!("no subscription with id '{id}'"));
        }
        if let Some(sub) = sub {
            // Detaches; a durable subscription keeps its messages unless named below.
            self.broker.unsubscribe(&sub.attached, sub.consumer);
            self.count_subscriptions();
        }
        let Some(name) = name else {
            return Ok(Reply::Now);
        };
        // With activemq.subscriptionName: the durable subscription and its backlog go.
        let Some(client_id) = self.client_id.clone() else {
            return Err(format!(
                "{}: removing a durable subscription needs the {CLIENT_ID} header on CONNECT",
                mq_shared::headers::SUBSCRIPTION_NAME
            ));
        };
        match self.broker.remove_durable(&client_id, name) {
            Ok(Some((_, ops))) => {
                let done = self.store_completion(f.header("receipt"), "unsubscribe not stored");
                self.broker
                    .persist(ops, Some(Box::new(move |r| done(r.map(|_| false)))));
                Ok(Reply::Later)
            }
            Ok(None) => Ok(Reply::Now),
            Err(e) => Err(e.to_string()),
        }
    }
}
