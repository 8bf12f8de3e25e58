//! Test harness: real `mqnode` and `mqctl` processes on loopback, and helpers to drive them.
//!
//! One module per concern; the general ones are re-exported here, so a suite starts with
//! `use mq_tests::*`:
//! - [`bins`]: where the built binaries are ([`bin_path`]; `cargo build --workspace --bins`
//!   first).
//! - [`wait`]: the one polling loop ([`poll_until`], [`wait_for`] and their async twins) and the
//!   bounds tests wait for ([`SOON`], [`QUIET`], ...). Tests wait on conditions, never on bare
//!   sleeps.
//! - [`ports`]: loopback ports for tests that must name one before a node binds it.
//! - [`process`]: the one way `mqnode` is spawned (it dies with the test thread that started
//!   it), and [`run_mqnode`] with [`run_mqnode_on`] for starts that must be refused.
//! - [`node`]: [`Node`], one spawned `mqnode` learning its ports from its ready line, killed and
//!   reaped when dropped, its output printed when the test fails.
//! - [`cluster`]: [`HaGroup`], master/slave nodes on one shared data directory, and the member
//!   options and failover URIs of groups a test starts itself.
//! - [`admin`]: [`Admin`] and [`http`] for the admin API.
//! - [`stomp`]: STOMP through [`mq_shared::client::StompClient`], panicking with what failed.
//! - [`raw`]: [`RawConn`], STOMP at the byte level for bad input and heart-beats.
//! - [`stall`]: [`stall::stalled_subscriber`], a client that subscribes and stops reading.
//!
//! The helpers of single areas are modules to import by name: [`cli`] (`mqctl` runs in a private
//! home), [`ha`] (the store lock and a watch for two masters), [`load`] (producers and consumers
//! through failover), [`multicast`] (a loopback-only network namespace a multicast test
//! re-runs itself in), [`network`] (links, demand, exactly-once collection), [`postgres`] (a
//! PostgreSQL server of a test's own, and lease lockers in child processes), [`procfs`] (a
//! process's memory, CPU time and descriptors as `/proc` reports them), [`tmpfs`] (a small
//! file system to fill up), [`chaos`] (the soak: two master/slave pairs, a bridge, random
//! faults, an audit of every message), [`security`] (security files, logins, metrics, raw
//! HTTP), [`certs`] (a test CA and its certificates), [`netns`] (hosts as network namespaces,
//! faults between them, and the one connection guard) and [`zookeeper`] (a real ZooKeeper
//! server and group members as processes), and [`replicated`] (a `--ha replicated` group with
//! each member in a lab host of its own, and a watch of their roles).
//!
//! Every node gets its own temporary data directory (unless given one), ports come from port 0
//! and are read back from the ready line, and only processes started here are ever signalled.
//! Tests of one binary run in parallel threads: nothing here changes process-wide state
//! (environment, working directory, signal handlers).

pub mod admin;
pub mod background;
pub mod bins;
pub mod certs;
pub mod chaos;
pub mod cli;
pub mod cluster;
pub mod ha;
pub mod js;
pub mod load;
pub mod multicast;
pub mod netns;
pub mod network;
pub mod node;
pub mod ports;
pub mod postgres;
pub mod process;
pub mod procfs;
pub mod raw;
pub mod replicated;
pub mod security;
pub mod stall;
pub mod stomp;
pub mod tmpfs;
pub mod wait;
pub mod zookeeper;

pub use admin::*;
pub use bins::*;
pub use cluster::*;
pub use node::*;
pub use ports::*;
pub use process::{run_mqnode, run_mqnode_on};
pub use raw::*;
pub use stall::*;
pub use stomp::*;
pub use wait::*;

/// Re-exports for tests.
pub use mq_shared::api;
pub use mq_shared::client;
pub use mq_shared::frame;
