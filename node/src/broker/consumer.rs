//! Consumers as destinations see them, and what a destination hands a consumer.
//!
//! A [`ConsumerSpec`] is a subscription attached to a queue or topic: a local client's, or a
//! network bridge's standing for consumers on other brokers ([`NetworkConsumer`]). Dispatch
//! sends a [`Delivery`] down the consumer's channel; a queue delivery carries an opaque
//! [`AckHandle`] that the holder gives back to [`super::Core::settle`] to acknowledge it.

use std::sync::Arc;

use mq_shared::selector::Selector;
use mq_shared::uri::NetworkOptions;
use tokio::sync::mpsc;

use super::message::Message;
use super::queue::Queue;
use super::topic::Topic;

/// A consumer as a queue or topic sees it.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Unique consumer id.
    pub id: u64,
    /// Connection it belongs to.
    pub conn: u64,
    /// Most unacked messages.
    pub prefetch: usize,
    /// 0 for local consumers, negative for network bridges.
    pub priority: i32,
    /// Whether this consumer is another broker's bridge.
    pub network: bool,
    /// For a bridge's consumer: where it forwards to, the demand it stands for, and the
    /// loop-prevention filter dispatch applies (see [`NetworkConsumer`]).
    pub bridge: Option<Arc<NetworkConsumer>>,
    /// What the SUBSCRIBE asked for beyond the basics: selector, exclusive, noLocal, ...
    pub options: ConsumerOptions,
    /// Where deliveries go (the connection's writer).
    pub tx: mpsc::UnboundedSender<Delivery>,
}

/// A subscription's ActiveMQ options (`selector`, `activemq.exclusive`, `activemq.noLocal`,
/// `activemq.maximumPendingMessageLimit`), and whether it came through a wildcard.
#[derive(Debug, Clone, Default)]
pub struct ConsumerOptions {
    /// Only messages this selector is TRUE for are handed over.
    pub selector: Option<Arc<Selector>>,
    /// A queue's exclusive consumer: while attached (the first, highest priority one), it
    /// gets every message it accepts.
    pub exclusive: bool,
    /// A topic subscriber that never gets its own connection's messages.
    pub no_local: bool,
    /// A topic subscriber's own `pending-message-limit`.
    pub pending_limit: Option<usize>,
    /// Attached through a wildcard subscription: its demand is the pattern's, not the
    /// destination's (see `super::wildcard`).
    pub wildcard: bool,
    /// For a wildcard subscription: which matching destinations it may attach to (those its
    /// reader is authorized to read); all of them when `None`.
    pub permit: Option<Permit>,
}

/// A test of destination names (`/queue/X`, `/topic/X`), e.g. a principal's read rights.
#[derive(Clone)]
pub struct Permit(pub Arc<dyn Fn(&str) -> bool + Send + Sync>);

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Permit")
    }
}

impl ConsumerSpec {
    /// Whether dispatch may hand `msg` to this consumer: the network filter of a bridge's
    /// consumer (no loops, `messageTTL`), then the selector.
    pub fn accepts(&self, msg: &Message) -> bool {
        self.bridge.as_ref().is_none_or(|b| b.accepts(msg))
            && self
                .options
                .selector
                .as_ref()
                .is_none_or(|s| s.matches(msg))
    }

    /// Hops to the consumers this one stands for: 0 for a local consumer.
    pub fn hops(&self) -> u32 {
        self.bridge.as_ref().map_or(0, |b| b.hops)
    }
}

/// What a network consumer (one standing for consumers on other brokers) carries.
///
/// Dispatch uses it as ActiveMQ's `NetworkBridgeFilter`: a message is never handed to a
/// consumer whose remote broker is already in the message's broker path, nor once the path
/// is `message_ttl` long; such a message stays for other consumers. Demand advisories use
/// `hops` and `origin` so that demand travels at most `consumerTTL` hops and never returns
/// to a broker it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConsumer {
    /// The broker this consumer forwards to.
    pub remote_broker: Arc<str>,
    /// Hops from this node to the nearest consumer this one stands for (1: the peer's own).
    pub hops: u32,
    /// Brokers that every consumer this one stands for lies behind (the peer included).
    pub origin: Vec<Arc<str>>,
    /// `messageTTL`: most brokers a message may have crossed and still be forwarded.
    pub message_ttl: u32,
    /// For a wildcard consumer: the connector's destination filters, which each destination
    /// it attaches to must pass (`excludedDestinations`, `dynamicallyIncludedDestinations`).
    pub scope: Option<Arc<NetworkOptions>>,
}

impl NetworkConsumer {
    /// Whether `msg` may be handed to this consumer (not back to a broker it crossed, and
    /// within `messageTTL`).
    pub fn accepts(&self, msg: &Message) -> bool {
        let mut n = 0u32;
        for b in msg.broker_path() {
            if b == &*self.remote_broker {
                return false;
            }
            n += 1;
        }
        n < self.message_ttl
    }

    /// Whether this consumer may attach to `destination` (a wildcard's match): its
    /// connector's filters allow forwarding it.
    pub fn permits(&self, destination: &str) -> bool {
        self.scope
            .as_ref()
            .is_none_or(|o| o.allows_dynamic(destination) || o.is_static(destination))
    }
}

/// One message handed to one consumer.
#[derive(Debug)]
pub struct Delivery {
    /// Consumer id.
    pub consumer: u64,
    /// The message.
    pub message: Arc<Message>,
    /// Delivered before without an ack.
    pub redelivered: bool,
    /// What to settle it with (queue and topic deliveries alike; `None` only for frames that
    /// need no settling).
    pub ack: Option<AckHandle>,
}

/// Names one delivery for [`super::Core::settle`]; opaque to its holder.
#[derive(Debug, Clone)]
pub struct AckHandle {
    pub(super) target: AckTarget,
    pub(super) consumer: u64,
}

/// What a delivery is settled against.
#[derive(Clone)]
pub(super) enum AckTarget {
    /// A queue's message: the store sequence.
    Queue { queue: Arc<Queue>, seq: u64 },
    /// A topic's copy: it only frees room in the subscriber's window.
    Topic(Arc<Topic>),
}

impl std::fmt::Debug for AckTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AckTarget::Queue { queue, seq } => write!(f, "{}#{seq}", queue.destination),
            AckTarget::Topic(t) => write!(f, "/topic/{}", t.name),
        }
    }
}

impl AckHandle {
    /// Whether this is a queue delivery (a topic copy needs no receipt from a peer).
    pub fn is_queue(&self) -> bool {
        matches!(self.target, AckTarget::Queue { .. })
    }
}

/// How a delivery is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Consumed: it leaves the queue and the store.
    Ack,
    /// Stored by the peer a bridge forwarded it to: leaves, counted as forwarded.
    Forwarded,
    /// Rejected (STOMP NACK, ActiveMQ's poison ack): to the dead-letter queue.
    Nack,
}

/// Demand for one destination as one bridge should see it: see [`super::Core::demand_for`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demand {
    /// The destination (a wildcard pattern for wildcard subscriptions).
    pub destination: mq_shared::destination::Destination,
    /// Consumers counted (local and network).
    pub consumers: usize,
    /// Fewest hops to one of them (0: a local consumer).
    pub hops: u32,
    /// Brokers that all of them lie behind (empty as soon as one is local).
    pub origin: Vec<Arc<str>>,
    /// The union (OR) of their selectors; `None` when one of them has none.
    pub selector: Option<String>,
}

/// Consumers of one destination folded into demand: count, fewest hops, common origin and
/// the union of their selectors.
pub(crate) type Fold = (usize, u32, Vec<Arc<str>>, Option<String>);

/// The bridge demand is folded for: the consumers of its own connection `conn`, and those
/// whose demand came through the broker it forwards to, `broker`, are left out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ForBridge<'a> {
    /// The bridge's connection.
    pub(crate) conn: Option<u64>,
    /// The broker it forwards to.
    pub(crate) broker: Option<&'a str>,
}

impl Demand {
    /// The demand of `destination`, from its consumers' fold.
    pub(crate) fn of(
        destination: mq_shared::destination::Destination,
        (consumers, hops, origin, selector): Fold,
    ) -> Demand {
        Demand {
            destination,
            consumers,
            hops,
            origin,
            selector,
        }
    }
}

/// Folds consumers into a [`Demand`] aggregate for bridge `to`, skipping those a wildcard
/// attached too (their demand is the pattern's).
pub(crate) fn fold_demand<'a>(
    consumers: impl Iterator<Item = &'a ConsumerSpec>,
    to: ForBridge<'_>,
) -> Option<Fold> {
    fold(consumers.filter(|c| !c.options.wildcard), to)
}

/// [`fold_demand`] without the wildcard rule: for the consumers of one pattern.
pub(crate) fn fold<'a>(
    consumers: impl Iterator<Item = &'a ConsumerSpec>,
    to: ForBridge<'_>,
) -> Option<Fold> {
    let mut count = 0;
    let mut hops = u32::MAX;
    let mut origin: Option<Vec<Arc<str>>> = None;
    let mut selectors = Some(Vec::new());
    for c in consumers {
        if Some(c.conn) == to.conn {
            continue;
        }
        let o: &[Arc<str>] = c.bridge.as_ref().map_or(&[], |b| &b.origin[..]);
        if let Some(x) = to.broker
            && o.iter().any(|b| &**b == x)
        {
            continue;
        }
        count += 1;
        hops = hops.min(c.hops());
        origin = Some(match origin {
            None => o.to_vec(),
            Some(prev) => prev.into_iter().filter(|b| o.contains(b)).collect(),
        });
        selectors = match (selectors, &c.options.selector) {
            (Some(mut v), Some(s)) => {
                v.push(s.to_string());
                Some(v)
            }
            _ => None,
        };
    }
    (count > 0).then(|| {
        (
            count,
            hops,
            origin.unwrap_or_default(),
            selectors.and_then(union),
        )
    })
}

/// The union of selectors as one selector, `(a) OR (b)`, in a stable order; `None` (select
/// everything) when it would be longer than a selector may be.
fn union(mut selectors: Vec<String>) -> Option<String> {
    selectors.sort();
    selectors.dedup();
    let text = match selectors.len() {
        0 => return None,
        1 => selectors.pop()?,
        _ => selectors
            .iter()
            .map(|s| format!("({s})"))
            .collect::<Vec<_>>()
            .join(" OR "),
    };
    (text.len() <= mq_shared::selector::MAX_LENGTH).then_some(text)
}
