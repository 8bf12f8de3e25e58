//! The PostgreSQL layer's errors: one sentence each, naming the server and what to do, and
//! the classification of the client's errors into them ([`PgError::classify`]).

use std::error::Error as _;
use std::io;

use deadpool_postgres::{PoolError, TimeoutType};
use tokio_postgres::error::SqlState;

use super::url::{PgUrl, PgUrlError};

/// What went wrong talking to PostgreSQL. Messages never contain the password.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The `--store` URL did not parse.
    #[error(transparent)]
    Url(#[from] PgUrlError),
    /// `--store-password-file` could not be read.
    #[error("cannot read the store password file {path}: {error}")]
    PasswordFile {
        /// The file.
        path: String,
        /// The I/O error (in the message, not a separate source, so it is printed once).
        error: io::Error,
    },
    /// `--store-password-file` holds nothing but a line end.
    #[error("the store password file {path} is empty")]
    EmptyPassword {
        /// The file.
        path: String,
    },
    /// Nothing answers at the address (refused, unknown host, no route).
    #[error(
        "cannot reach PostgreSQL at {addr}: {reason} (is the server running and listening there?)"
    )]
    Unreachable {
        /// `HOST:PORT`.
        addr: String,
        /// What the operating system or server said.
        reason: String,
    },
    /// The server did not complete a connection or answer a request in time.
    #[error("PostgreSQL at {addr} did not answer within {timeout_ms} ms")]
    Timeout {
        /// `HOST:PORT`.
        addr: String,
        /// The bound that passed.
        timeout_ms: u64,
    },
    /// The server refused the password.
    #[error(
        "PostgreSQL at {addr} refused the password of user {user:?} (check the file named by \
         --store-password-file)"
    )]
    BadPassword {
        /// `HOST:PORT`.
        addr: String,
        /// The user of the URL.
        user: String,
    },
    /// The server asks for a password and none was given.
    #[error(
        "PostgreSQL at {addr} asks for a password for user {user:?}: give one with \
         --store-password-file"
    )]
    PasswordRequired {
        /// `HOST:PORT`.
        addr: String,
        /// The user of the URL.
        user: String,
    },
    /// The server refused the login for another reason (no `pg_hba.conf` entry, no such role,
    /// too many connections).
    #[error("PostgreSQL at {addr} refused user {user:?}: {message}")]
    Refused {
        /// `HOST:PORT`.
        addr: String,
        /// The user of the URL.
        user: String,
        /// The server's message.
        message: String,
    },
    /// The database of the URL does not exist.
    #[error(
        "database {database:?} does not exist on PostgreSQL at {addr} (create it, e.g. \
         createdb -h HOST -p PORT -O {user} {database})"
    )]
    NoDatabase {
        /// `HOST:PORT`.
        addr: String,
        /// The user of the URL.
        user: String,
        /// The database of the URL.
        database: String,
    },
    /// No connection came free in the pool in time (every one busy).
    #[error("no free connection to PostgreSQL at {addr} within {timeout_ms} ms (pool of {size})")]
    PoolBusy {
        /// `HOST:PORT`.
        addr: String,
        /// The bound that passed.
        timeout_ms: u64,
        /// Connections in the pool.
        size: usize,
    },
    /// The schema in the database is newer than this build knows.
    #[error(
        "the store schema in the database is version {found}, newer than this mqnode knows \
         ({known}): upgrade mqnode, or point it at another database"
    )]
    SchemaTooNew {
        /// Version found in `mq_schema_version`.
        found: i32,
        /// The newest version this build knows.
        known: i32,
    },
    /// The store's tables are missing (the schema was not created, or was dropped).
    #[error("the store's tables are missing in the database: {0}")]
    NoSchema(String),
    /// A master's write refused by the lease check in its transaction: another member holds
    /// the lease now, or this member's lease ended.
    #[error("the write was refused: this member no longer holds the store's lease ({0})")]
    Fenced(String),
    /// An argument this layer refuses before sending (a batch too large, a negative limit).
    #[error("{0}")]
    Invalid(String),
    /// Anything else the server or the client reported.
    #[error("PostgreSQL: {}", describe(.0))]
    Db(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> Self {
        if e.code() == Some(&SqlState::UNDEFINED_TABLE) {
            return PgError::NoSchema(describe(&e));
        }
        PgError::Db(e)
    }
}

/// The client's error with its causes, `: `-separated (the client's own `Display` is only the
/// outer kind, e.g. "db error").
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {} ({})", db.severity(), db.message(), db.code().code());
    }
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

impl PgError {
    /// Classifies an error met while connecting to the server at `url` into the sentences
    /// above (a refused password, a missing database, nothing listening...).
    pub fn classify(e: tokio_postgres::Error, url: &PgUrl, timeout_ms: u64) -> PgError {
        let addr = url.address();
        let user = url.user.clone();
        if let Some(db) = e.as_db_error() {
            let code = db.code();
            if *code == SqlState::INVALID_PASSWORD {
                return PgError::BadPassword { addr, user };
            }
            if *code == SqlState::INVALID_CATALOG_NAME {
                return PgError::NoDatabase {
                    addr,
                    user,
                    database: url.database.clone(),
                };
            }
            if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                || *code == SqlState::TOO_MANY_CONNECTIONS
            {
                return PgError::Refused {
                    addr,
                    user,
                    message: db.message().to_string(),
                };
            }
            if *code == SqlState::CANNOT_CONNECT_NOW
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
            {
                return PgError::Unreachable {
                    addr,
                    reason: db.message().to_string(),
                };
            }
            return e.into();
        }
        let mut cause = e.source();
        while let Some(c) = cause {
            if let Some(io) = c.downcast_ref::<io::Error>() {
                return match io.kind() {
                    io::ErrorKind::TimedOut => PgError::Timeout { addr, timeout_ms },
                    _ => PgError::Unreachable {
                        addr,
                        reason: io.to_string(),
                    },
                };
            }
            if c.to_string() == "password missing" {
                return PgError::PasswordRequired { addr, user };
            }
            cause = c.source();
        }
        if e.is_closed() {
            return PgError::Unreachable {
                addr,
                reason: "the server closed the connection".into(),
            };
        }
        e.into()
    }

    /// Classifies a pool's error (a connection that could not be made, or none free in time).
    pub(crate) fn from_pool(e: PoolError, url: &PgUrl, timeout_ms: u64, size: usize) -> PgError {
        match e {
            PoolError::Backend(e) => PgError::classify(e, url, timeout_ms),
            PoolError::Timeout(TimeoutType::Wait) => PgError::PoolBusy {
                addr: url.address(),
                timeout_ms,
                size,
            },
            PoolError::Timeout(_) => PgError::Timeout {
                addr: url.address(),
                timeout_ms,
            },
            other => PgError::Unreachable {
                addr: url.address(),
                reason: other.to_string(),
            },
        }
    }

    /// Whether retrying cannot help: the schema is missing or newer, or a statement is wrong
    /// for this database (SQLSTATE classes 22 and 42, a value of the wrong type). Unreachable
    /// servers, refused logins, lock and statement timeouts are not fatal: they may pass.
    pub fn is_fatal(&self) -> bool {
        match self {
            PgError::NoSchema(_)
            | PgError::SchemaTooNew { .. }
            | PgError::Invalid(_)
            | PgError::Url(_)
            | PgError::PasswordFile { .. }
            | PgError::EmptyPassword { .. }
            | PgError::Fenced(_) => true,
            PgError::Db(e) => match e.code() {
                Some(c) => c.code().starts_with("42") || c.code().starts_with("22"),
                None => {
                    let s = e.to_string();
                    s.starts_with("error serializing")
                        || s.starts_with("error deserializing")
                        || s.starts_with("invalid column")
                }
            },
            _ => false,
        }
    }
}
