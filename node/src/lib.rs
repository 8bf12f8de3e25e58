//! # mqnode: one broker node of mq
//!
//! ```text
//! client ──STOMP──▶ transport (connection task ▸ session) ──▶ broker::Core ──▶ Queue / Topic ──▶ consumer
//!                                                              │    ▲                     └──▶ network bridge ──▶ peer node
//!                                                              ▼    │ recovery
//!                                                            store (journal + redb, group commit)
//! admin API (axum) ──▶ NodeState ──▶ Core (stats, send, browse, purge), HA (stepdown), shutdown
//! ```
//!
//! A map of the crate, in the order a message meets it:
//!
//! | module | role |
//! | --- | --- |
//! | [`config`] | the options (flags and TOML, one type) and their validation |
//! | [`node`] | [`start`]: the admin API and the role machine; [`NodeState`] they share |
//! | [`ha`] | the store lock, the PostgreSQL lease, and the master/slave role machines |
//! | [`master`] | what runs while master, and how it stops |
//! | [`transport`] | STOMP sockets: accept loop, connection task, session |
//! | [`broker`] | destinations, dispatch, the frame ⇄ message mapping; the core API |
//! | [`store`] | the durable store: journal + redb or PostgreSQL, group commit |
//! | [`internode`] | the protocol between nodes: bridge headers, broker path, demand advisories |
//! | [`network`] | network connectors: bridges, demand selection, discovery |
//! | [`admin`] | the HTTP admin API and metrics |
//! | [`security`] | the security file: logins, authorization, signed adverts, secrets |
//! | [`supervise`] | restarting tasks that panic, loudly |
//! | [`builder`] | the embedded API, [`Broker::builder`] (ActiveMQ's `BrokerService`) |
//!
//! The `mqnode` binary is a thin shell: it parses [`config::Options`], calls [`start`] with a
//! shutdown token wired to SIGTERM/SIGINT, and prints the ready events.

pub mod admin;
pub mod broker;
pub mod builder;
pub mod config;
pub mod ha;
pub mod internode;
pub mod master;
pub mod network;
pub mod node;
pub mod security;
pub mod store;
pub mod supervise;
pub mod transport;

pub use builder::{Broker, BrokerBuilder};
pub use node::{NodeError, NodeState, Serving, start};
