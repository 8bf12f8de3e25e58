//! Names of the STOMP headers ActiveMQ defines beyond the STOMP spec, spelt as ActiveMQ spells
//! them, for the node, the CLI and the tests alike.

/// SUBSCRIBE: most unacknowledged messages a subscription may hold (prefetch).
pub const PREFETCH_SIZE: &str = "activemq.prefetchSize";
/// SUBSCRIBE: consumer priority; higher is served first.
pub const PRIORITY: &str = "activemq.priority";
