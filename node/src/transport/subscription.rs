//! A connection's subscriptions: what each SUBSCRIBE asked for, and the deliveries awaiting
//! an ACK, found again by the ack id or message id that each STOMP version uses.
//!
//! | version | ACK/NACK names a delivery by                      |
//! | ------- | ------------------------------------------------- |
//! | 1.2     | `id`: the MESSAGE's `ack` header, `CONSUMER:MSGID` |
//! | 1.1     | `message-id` and `subscription`                    |
//! | 1.0     | `message-id` (`subscription` optional)             |
//!
//! In `client` mode an ACK is cumulative (it settles the delivery and every earlier one of
//! the subscription); a NACK always names one delivery. [`options`] reads what a SUBSCRIBE
//! asks beyond that (selector, ActiveMQ's `activemq.*` options).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

pub use mq_shared::client::AckMode;
use mq_shared::destination::Destination;
use mq_shared::frame::{Frame, Version};
use mq_shared::headers;
use mq_shared::selector::Selector;

use crate::broker::{AckHandle, Attached, ConsumerOptions};

/// A delivery awaiting its ACK.
#[derive(Debug, Clone)]
pub struct Unacked {
    /// The 1.2 ack id.
    pub ack_id: String,
    /// The MESSAGE's `message-id`.
    pub message_id: Arc<str>,
    /// What to settle it with (none for topic deliveries).
    pub handle: Option<AckHandle>,
}

/// One subscription of the connection.
pub struct Sub {
    /// The SUBSCRIBE `id`.
    pub id: String,
    /// The broker's consumer id.
    pub consumer: u64,
    /// Ack mode.
    pub ack: AckMode,
    /// Where it is attached.
    pub attached: Attached,
    /// Delivered and not acked (client modes), oldest first.
    pub unacked: VecDeque<Unacked>,
    /// A durable subscription's name and topic (`/topic/NAME`, its MESSAGEs' destination).
    pub durable: Option<(String, String)>,
}

/// The SUBSCRIBE `activemq.prefetchSize` (else `default`), above 0, capped at `max`
/// (`max-prefetch`: a larger value is honoured as `max`, as ActiveMQ does).
pub fn prefetch(f: &Frame, default: usize, max: usize) -> Result<usize, String> {
    let n = match f.header(headers::PREFETCH_SIZE) {
        None => default,
        Some(v) => match v.trim().parse::<u128>() {
            Ok(n) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
            _ => {
                return Err(format!(
                    "{} '{v}' must be a whole number above 0",
                    headers::PREFETCH_SIZE
                ));
            }
        },
    };
    Ok(n.min(max))
}

/// The SUBSCRIBE `activemq.priority` (else `default`).
pub fn priority(f: &Frame, default: i32) -> Result<i32, String> {
    match f.header(headers::PRIORITY) {
        Some(v) => v
            .trim()
            .parse::<i32>()
            .map_err(|_| format!("{} '{v}' is not a whole number", headers::PRIORITY)),
        None => Ok(default),
    }
}

/// A boolean SUBSCRIBE header (`true` or `false`, in any case), `false` when absent.
fn flag(f: &Frame, name: &str) -> Result<bool, String> {
    match f.header(name).map(str::trim) {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(format!("{name} '{v}' must be true or false")),
    }
}

/// What a SUBSCRIBE to `dest` asks beyond the ack mode, prefetch and priority: its selector
/// and ActiveMQ options, each honoured or refused with an ERROR that names it (a header that
/// changes which messages a subscriber gets is never ignored):
///
/// - `selector`: parsed here; a malformed one is refused with its column. An empty one is no
///   selector (JMS).
/// - `activemq.exclusive` (queues), `activemq.noLocal` (topics),
///   `activemq.maximumPendingMessageLimit` (topics; 0 is the node's `pending-message-limit`):
///   honoured; asked of the other kind of destination, refused.
/// - `activemq.dispatchAsync`: accepted (dispatch never runs on the producer's thread here).
/// - `activemq.subscriptionName`: read by the session (a durable subscription on a topic).
/// - `activemq.retroactive:true`, `browser:true`, `transformation`, and any other
///   `activemq.` header: refused.
pub fn options(f: &Frame, dest: &Destination) -> Result<ConsumerOptions, String> {
    use headers::*;
    let queue = dest.is_queue();
    let mut o = ConsumerOptions::default();
    if let Some(text) = f.header(SELECTOR)
        && !text.trim().is_empty()
    {
        let sel = Selector::parse(text).map_err(|e| format!("SUBSCRIBE {SELECTOR}: {e}"))?;
        o.selector = Some(Arc::new(sel));
    }
    o.exclusive = flag(f, EXCLUSIVE)?;
    if o.exclusive && !queue {
        return Err(format!(
            "{EXCLUSIVE}:true applies to queues; {dest} is a topic"
        ));
    }
    o.no_local = flag(f, NO_LOCAL)?;
    if o.no_local && queue {
        return Err(format!(
            "{NO_LOCAL}:true applies to topics; {dest} is a queue (a queue consumer may receive its own connection's messages)"
        ));
    }
    if flag(f, RETROACTIVE)? {
        return Err(format!(
            "{RETROACTIVE}:true is not supported: a topic here keeps no messages for subscribers to come"
        ));
    }
    flag(f, DISPATCH_ASYNC)?;
    if let Some(v) = f.header(MAXIMUM_PENDING_MESSAGE_LIMIT) {
        let n = v.trim().parse::<usize>().map_err(|_| {
            format!("{MAXIMUM_PENDING_MESSAGE_LIMIT} '{v}' must be a whole number, 0 or more")
        })?;
        if n > 0 && queue {
            return Err(format!(
                "{MAXIMUM_PENDING_MESSAGE_LIMIT} applies to topic subscriptions; a queue never discards messages"
            ));
        }
        o.pending_limit = (n > 0).then_some(n);
    }
    if flag(f, BROWSER)? {
        return Err(format!(
            "{BROWSER}:true is not supported: queue browsing is available through the admin API"
        ));
    }
    if let Some(t) = f.header(TRANSFORMATION) {
        return Err(format!(
            "{TRANSFORMATION} '{t}' is not supported: messages are delivered as they were sent"
        ));
    }
    const KNOWN: [&str; 8] = [
        PREFETCH_SIZE,
        PRIORITY,
        EXCLUSIVE,
        NO_LOCAL,
        RETROACTIVE,
        DISPATCH_ASYNC,
        MAXIMUM_PENDING_MESSAGE_LIMIT,
        SUBSCRIPTION_NAME,
    ];
    if let Some((k, _)) = f
        .headers
        .iter()
        .find(|(k, _)| k.starts_with(ACTIVEMQ_PREFIX) && !KNOWN.contains(&k.as_str()))
    {
        return Err(format!(
            "unknown SUBSCRIBE header {k}: not supported by this node"
        ));
    }
    Ok(o)
}

/// Every subscription of one connection.
#[derive(Default)]
pub struct Subscriptions {
    subs: HashMap<String, Sub>,
    by_consumer: HashMap<u64, String>,
}

impl Subscriptions {
    /// Whether subscription id `id` is taken.
    pub fn contains(&self, id: &str) -> bool {
        self.subs.contains_key(id)
    }

    /// Number of subscriptions.
    pub fn len(&self) -> usize {
        self.subs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    /// The names of its durable subscriptions.
    pub fn durable_names(&self) -> impl Iterator<Item = &str> {
        self.subs
            .values()
            .filter_map(|s| s.durable.as_ref().map(|(n, _)| n.as_str()))
    }

    /// Adds a subscription.
    pub fn insert(&mut self, sub: Sub) {
        self.by_consumer.insert(sub.consumer, sub.id.clone());
        self.subs.insert(sub.id.clone(), sub);
    }

    /// Removes subscription `id`.
    pub fn remove(&mut self, id: &str) -> Option<Sub> {
        let sub = self.subs.remove(id)?;
        self.by_consumer.remove(&sub.consumer);
        Some(sub)
    }

    /// Removes every subscription.
    pub fn drain(&mut self) -> impl Iterator<Item = Sub> + '_ {
        self.by_consumer.clear();
        self.subs.drain().map(|(_, s)| s)
    }

    /// The subscription of broker consumer `consumer`.
    pub fn by_consumer(&mut self, consumer: u64) -> Option<&mut Sub> {
        let id = self.by_consumer.get(&consumer)?;
        self.subs.get_mut(id)
    }

    /// The subscription and ack id an ACK/NACK frame of `version` names.
    pub fn ack_target(&self, f: &Frame, version: Version) -> Result<(String, String), String> {
        if version == Version::V1_2 {
            let id = f.header("id").ok_or("ACK/NACK without an id header")?;
            let sub = id
                .split_once(':')
                .and_then(|(c, _)| c.parse::<u64>().ok())
                .and_then(|c| self.by_consumer.get(&c))
                .ok_or_else(|| format!("no message with ack id '{id}' is awaiting an ack"))?;
            return Ok((sub.clone(), id.to_string()));
        }
        let mid = f
            .header("message-id")
            .ok_or("ACK/NACK without a message-id header")?;
        let sub = match f.header("subscription") {
            Some(s) => s.to_string(),
            None if version == Version::V1_0 => self
                .subs
                .values()
                .find(|s| s.unacked.iter().any(|u| &*u.message_id == mid))
                .map(|s| s.id.clone())
                .ok_or_else(|| format!("no message '{mid}' is awaiting an ack"))?,
            None => return Err("ACK/NACK without a subscription header".into()),
        };
        let s = self
            .subs
            .get(&sub)
            .ok_or_else(|| format!("no subscription with id '{sub}'"))?;
        let u = s
            .unacked
            .iter()
            .find(|u| &*u.message_id == mid)
            .ok_or_else(|| format!("no message '{mid}' is awaiting an ack"))?;
        Ok((sub, u.ack_id.clone()))
    }

    /// Takes the deliveries an ACK (or NACK) of `ack_id` on `sub` settles: that one, or every
    /// earlier one too for an ACK in `client` mode.
    pub fn take(&mut self, sub: &str, ack_id: &str, nack: bool) -> Result<Vec<Unacked>, String> {
        let s = self
            .subs
            .get_mut(sub)
            .ok_or_else(|| format!("no subscription with id '{sub}'"))?;
        let pos = s
            .unacked
            .iter()
            .position(|u| u.ack_id == ack_id)
            .ok_or_else(|| format!("no message with ack id '{ack_id}' is awaiting an ack"))?;
        Ok(match s.ack {
            AckMode::Client if !nack => s.unacked.drain(..=pos).collect(),
            _ => s.unacked.remove(pos).into_iter().collect(),
        })
    }
}
