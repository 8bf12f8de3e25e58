//! # mq-shared: the contracts of mq
//!
//! Everything that `mqnode` and `mqctl` must agree on lives here, defined once:
//!
//! - [`destination`]: `/queue/NAME` and `/topic/NAME`, parsed once.
//! - [`frame`]: the STOMP 1.0/1.1/1.2 frame codec, pure (no I/O), limits enforced while decoding.
//! - [`headers`]: the ActiveMQ header names (prefetch, priority, ...).
//! - [`heartbeat`]: the `heart-beat` header and what two sides agree on.
//! - [`uri`]: connector URIs (`tcp://`, `static:(...)`, `masterslave:(...)`, `failover:(...)`,
//!   `multicast://default`) with ActiveMQ's option names and defaults.
//! - [`api`]: the admin API's JSON request and response types.
//! - [`backoff`]: reconnect back-off, for the node's bridges and the client's failover.
//! - [`selector`]: JMS message selectors (`selector` on SUBSCRIBE), parsed and evaluated.
//! - [`bench`]: the report of `mqctl bench -o json`.
//! - [`ctl`]: the JSON shapes `mqctl -o json` prints, and the cluster manifest.
//! - [`defaults`]: every default, in one place.
//! - [`password`]: argon2id password hashes (PHC strings), made by `mqctl`, checked by the node.
//! - [`console`]: what mqnode's web console and `mqctl console` serve alike (page head, headers).
//! - [`installed`]: where PostgreSQL's programs are installed, and its system user.
//! - `connection` (feature `client`): one framed STOMP connection over any byte stream, with
//!   heart-beats and a write deadline; the node's server side, its bridges and the client use it.
//! - `tls` (feature `client`): TLS (rustls) for transports and links: certificate files,
//!   server and client configurations, and one stream type for plain and TLS sockets.
//! - `client` (feature `client`): an async STOMP client over tokio, used by `mqctl`, by the
//!   node's network bridges and by the tests.

pub mod api;
pub mod backoff;
pub mod bench;
pub mod console;
pub mod ctl;
pub mod defaults;
pub mod destination;
pub mod frame;
pub mod headers;
pub mod heartbeat;
pub mod installed;
pub mod password;
pub mod selector;
pub mod size;
pub mod uri;

#[cfg(feature = "client")]
pub mod client;

#[cfg(feature = "client")]
pub mod connection;

#[cfg(feature = "client")]
pub mod failover;

#[cfg(feature = "client")]
pub mod tls;
