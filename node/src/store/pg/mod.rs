//! The PostgreSQL store's database layer (ActiveMQ's `jdbcPersistenceAdapter`): every member
//! of a group points `--store postgres://USER@HOST:PORT/DB` (password from
//! `--store-password-file`) at the same database, which holds the messages, the durable
//! subscriptions' acks and the lease row that elects the master (`crate::ha::lease`).
//!
//! ```text
//! --store URL ──▶ url::PgUrl ──┐
//! --store-password-file ──▶ Password ──▶ PgConfig ──▶ PgPool::connect ──▶ schema::migrate
//!                                                        │
//!                    messages (insert, delete, read, count) ◀── a master's fenced transaction
//!                    lock (take, renew, release, fence)     ◀── crate::ha::lease
//! ```
//!
//! The client is `tokio-postgres` with a `deadpool-postgres` pool: an async client on the
//! runtime the node already runs, with statements checked by the server at run time (no
//! database needed to build), pipelining, and a pool with bounds on waiting, connecting and
//! recycling; `sqlx` would bring its macros and several back ends for one we need. Files:
//! `url` (the URL type), `pool` (configuration, password, pool), `error` (the sentences),
//! `schema` (tables and migrations), `messages`, `lock`, `writer` (the node's store over these
//! tables: group commit, reads, recovery).

pub mod error;
pub mod lock;
pub mod messages;
pub mod pool;
pub mod schema;
pub mod url;
pub mod writer;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use error::PgError;
pub use messages::{Cursor, MessageKey, StoredMessage};
pub use pool::{Password, PgClient, PgConfig, PgPool};
pub use url::{PgUrl, PgUrlError};
pub use writer::Fence;

/// Bound on making one connection and on waiting for a free one in the pool.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections in a store's pool: group commit needs few, reads and acks a few more.
pub const DEFAULT_POOL_SIZE: usize = 8;
/// `idle_in_transaction_session_timeout` of every session: a member frozen inside a
/// transaction (a stopped process, a cut link) loses it, and its locks, after this long.
pub const DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to the store's database and brings its schema to [`schema::SCHEMA_VERSION`]:
/// what a node does at start.
pub async fn open(config: &PgConfig) -> Result<(PgPool, schema::Migrated), PgError> {
    let pool = PgPool::connect(config).await?;
    let mut client = pool.get().await?;
    let migrated = schema::migrate(&mut client).await?;
    drop(client);
    Ok((pool, migrated))
}

#[cfg(test)]
mod store_tests;
