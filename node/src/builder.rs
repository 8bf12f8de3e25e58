//! The embedded API: [`Broker::builder`], mirroring ActiveMQ's `BrokerService` setters, and
//! the running [`Broker`]. The builder collects the same [`Options`] as the `mqnode` flags and
//! starts through the same validation ([`crate::config::resolve`]).

use std::path::PathBuf;
use std::sync::Arc;

use mq_shared::api::ReadyEvent;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{self, Options};
use crate::node::{NodeError, NodeState, start};

/// Builder of a node, mirroring ActiveMQ's `BrokerService` setters.
#[derive(Debug, Default)]
pub struct BrokerBuilder {
    options: Options,
}

impl BrokerBuilder {
    /// Broker name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.options.name = Some(name.into());
        self
    }
    /// Store persistent messages.
    pub fn persistent(mut self, p: bool) -> Self {
        self.options.persistent = Some(p);
        self
    }
    /// Data directory.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.options.data = Some(dir.into());
        self
    }
    /// Adds a transport connector (`tcp://HOST:PORT`).
    pub fn transport(mut self, uri: impl Into<String>) -> Self {
        self.options.transport.push(uri.into());
        self
    }
    /// Adds a network connector (`static:(...)` or `multicast://default`).
    pub fn network(mut self, uri: impl Into<String>) -> Self {
        self.options.network.push(uri.into());
        self
    }
    /// Admin API address (`HOST:PORT`).
    pub fn admin(mut self, addr: impl Into<String>) -> Self {
        self.options.admin = Some(addr.into());
        self
    }
    /// Starts from a set of options (the binary's flags and file keys); later setters win.
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Validates (as the binary does), binds the admin API and starts the role machine.
    /// Returns once the node is serving as master or waiting as slave.
    pub async fn start(self) -> Result<Broker, NodeError> {
        let config = config::resolve(self.options)?;
        start(config, CancellationToken::new()).await
    }
}

/// A running node.
pub struct Broker {
    state: Arc<NodeState>,
    events: Option<mpsc::UnboundedReceiver<ReadyEvent>>,
    done: tokio::task::JoinHandle<Result<(), NodeError>>,
}

impl Broker {
    /// A builder with ActiveMQ's defaults.
    pub fn builder() -> BrokerBuilder {
        BrokerBuilder::default()
    }

    pub(crate) fn new(
        state: Arc<NodeState>,
        events: mpsc::UnboundedReceiver<ReadyEvent>,
        done: tokio::task::JoinHandle<Result<(), NodeError>>,
    ) -> Broker {
        Broker {
            state,
            events: Some(events),
            done,
        }
    }

    /// Shared state (admin API, tests).
    pub fn state(&self) -> &Arc<NodeState> {
        &self.state
    }

    /// Admin base URL.
    pub fn admin_url(&self) -> &str {
        &self.state.admin_url
    }

    /// Bound transport URIs while master.
    pub fn transports(&self) -> Vec<String> {
        self.state
            .serving()
            .map(|s| s.transports)
            .unwrap_or_default()
    }

    /// The ready events (one per role taken); can be taken once.
    pub fn take_events(&mut self) -> Option<mpsc::UnboundedReceiver<ReadyEvent>> {
        self.events.take()
    }

    /// Asks the node to stop (as SIGTERM does).
    pub fn stop(&self) {
        self.state.shutdown.cancel();
    }

    /// Waits until the node has stopped: connections closed, commits finished, store closed.
    pub async fn wait(self) -> Result<(), NodeError> {
        match self.done.await {
            Ok(r) => r,
            Err(e) => Err(NodeError::Task(e.to_string())),
        }
    }
}
