//! Network connectors: bridges from this node to other nodes (store and forward, on demand).

use mq_shared::uri::NetworkUri;

use crate::broker::Core;

/// The network connectors of a node.
pub struct Manager {
    broker_name: String,
}

impl Manager {
    /// No connectors yet.
    pub fn new(broker_name: String) -> Manager {
        Manager { broker_name }
    }

    /// Starts the configured connectors' bridges over `core` (when the node becomes master).
    pub fn start(&self, _core: Core, networks: &[NetworkUri], _uris: &[String]) {
        if !networks.is_empty() {
            tracing::warn!(broker = %self.broker_name, "network connectors are not started by this build");
        }
    }

    /// Stops every bridge (when the node stops serving).
    pub async fn stop(&self) {}
}
