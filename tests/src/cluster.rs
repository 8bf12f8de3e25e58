//! Master/slave groups: nodes sharing one data directory. [`HaGroup`] starts and drives such a
//! group ([`HaGroup::master`], [`HaGroup::kill`], [`HaGroup::restart`]); [`member`] and
//! [`failover_uri`] serve tests that start the members themselves and need their addresses
//! before they serve.

use std::path::Path;
use std::time::Duration;

use mq_shared::api::Role;
use tempfile::TempDir;

use crate::{Node, NodeOpts, free_port, wait_for};

/// A master/slave group: nodes sharing one data directory (a temporary one the group owns).
pub struct HaGroup {
    /// The nodes, in start order.
    pub nodes: Vec<Node>,
    /// The shared data directory; declared after `nodes` so it is removed after they are gone.
    dir: TempDir,
}

impl HaGroup {
    /// Starts `n` nodes named `NAME-0`, `NAME-1`, ... on one data directory, one after the
    /// other: the first becomes master, the others slaves. `args` go to every node.
    #[track_caller]
    pub fn start(name: &str, n: usize, args: &[&str]) -> HaGroup {
        let dir = tempfile::Builder::new()
            .prefix(&format!("mq-{name}-"))
            .tempdir()
            .expect("creating a shared data directory");
        let nodes = (0..n)
            .map(|i| {
                Node::start(
                    NodeOpts::new(&format!("{name}-{i}"))
                        .data(dir.path())
                        .args(args.iter().copied()),
                )
            })
            .collect();
        HaGroup { nodes, dir }
    }

    /// The shared data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Waits until exactly one running node's latest ready event says master (or
    /// standalone), and returns its index.
    #[track_caller]
    pub fn master(&mut self, timeout: Duration) -> usize {
        let mut found = None;
        wait_for(timeout, || {
            let masters: Vec<usize> = self
                .nodes
                .iter_mut()
                .enumerate()
                .filter_map(|(i, n)| {
                    let serving = n.refresh() != Role::Slave;
                    (n.is_running() && serving).then_some(i)
                })
                .collect();
            found = masters.first().copied();
            masters.len() == 1
        });
        found.expect("a master was found")
    }

    /// SIGKILLs node `i`.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// Starts node `i` again (same data directory and ports).
    #[track_caller]
    pub fn restart(&mut self, i: usize) {
        self.nodes[i].restart();
    }
}

/// Options for member `name` of a group on `data_dir`, with a fixed STOMP port (so that
/// failover URIs can name a slave's port before it serves).
pub fn member(name: &str, data_dir: &Path) -> NodeOpts {
    let mut opts = NodeOpts::new(name).data(data_dir);
    opts.transport = format!("tcp://127.0.0.1:{}", free_port());
    opts
}

/// `failover:(tcp://A,tcp://B,...)?randomize=false&initialReconnectDelay=10&maxReconnectDelay=100`
pub fn failover_uri(stomp_urls: &[String]) -> String {
    format!(
        "failover:({})?randomize=false&initialReconnectDelay=10&maxReconnectDelay=100",
        stomp_urls.join(",")
    )
}
