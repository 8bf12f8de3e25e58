//! Names of the STOMP headers ActiveMQ defines beyond the STOMP spec, spelt as ActiveMQ spells
//! them, for the node, the CLI and the tests alike.

/// SUBSCRIBE: most unacknowledged messages a subscription may hold (prefetch).
pub const PREFETCH_SIZE: &str = "activemq.prefetchSize";
/// SUBSCRIBE: consumer priority; higher is served first.
pub const PRIORITY: &str = "activemq.priority";
/// SUBSCRIBE: a JMS message selector (SQL-92 conditional expression).
pub const SELECTOR: &str = "selector";
/// SUBSCRIBE: an exclusive queue consumer, which gets every message while it is attached.
pub const EXCLUSIVE: &str = "activemq.exclusive";
/// SUBSCRIBE: a topic subscription that does not receive its own connection's messages.
pub const NO_LOCAL: &str = "activemq.noLocal";
/// SUBSCRIBE: a topic subscription that first receives messages published before it.
pub const RETROACTIVE: &str = "activemq.retroactive";
/// SUBSCRIBE: dispatch from a broker thread rather than the producer's (a tuning hint).
pub const DISPATCH_ASYNC: &str = "activemq.dispatchAsync";
/// SUBSCRIBE: copies a slow topic subscriber may have waiting beyond its prefetch.
pub const MAXIMUM_PENDING_MESSAGE_LIMIT: &str = "activemq.maximumPendingMessageLimit";
/// CONNECT: the client's identity; durable subscriptions belong to it, and one connection at
/// a time may use it.
pub const CLIENT_ID: &str = "client-id";
/// SUBSCRIBE (with CONNECT `client-id`): the name of a durable topic subscription; on
/// UNSUBSCRIBE, removes it.
pub const SUBSCRIPTION_NAME: &str = "activemq.subscriptionName";
/// SUBSCRIBE: a queue browser, which sees the messages without consuming them.
pub const BROWSER: &str = "browser";
/// SEND and SUBSCRIBE: ActiveMQ's message transformation (`jms-xml`, `jms-json`, ...).
pub const TRANSFORMATION: &str = "transformation";
/// SEND: the message group a queue message belongs to.
pub const GROUP_ID: &str = "JMSXGroupID";
/// SEND: the message's sequence number in its group; `-1` closes the group.
pub const GROUP_SEQ: &str = "JMSXGroupSeq";
/// SEND: where replies should go (a temporary destination is mapped for the responder).
pub const REPLY_TO: &str = "reply-to";
/// SEND: ms before a scheduled message's first delivery.
pub const SCHEDULED_DELAY: &str = "AMQ_SCHEDULED_DELAY";
/// SEND: ms between a scheduled message's repeats.
pub const SCHEDULED_PERIOD: &str = "AMQ_SCHEDULED_PERIOD";
/// SEND: deliveries of a scheduled message after its first.
pub const SCHEDULED_REPEAT: &str = "AMQ_SCHEDULED_REPEAT";
/// SEND: a 5-field cron expression: deliver at each of its times.
pub const SCHEDULED_CRON: &str = "AMQ_SCHEDULED_CRON";
/// SEND: ActiveMQ's scheduled delivery headers.
pub const SCHEDULED: [&str; 4] = [
    SCHEDULED_DELAY,
    SCHEDULED_PERIOD,
    SCHEDULED_REPEAT,
    SCHEDULED_CRON,
];
/// MESSAGE: the id of the scheduled message a delivery came from (ActiveMQ's name).
pub const SCHEDULED_JOB_ID: &str = "scheduledJobId";
/// CONNECT: ActiveMQ echoes it as `response-id` in CONNECTED.
pub const REQUEST_ID: &str = "request-id";
/// CONNECTED: the CONNECT's `request-id`.
pub const RESPONSE_ID: &str = "response-id";
/// Prefix of ActiveMQ's SUBSCRIBE options (its `ConsumerInfo` properties).
pub const ACTIVEMQ_PREFIX: &str = "activemq.";
