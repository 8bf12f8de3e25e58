//! Store errors: [`StoreError`] is what callers see (cheap to clone, so one failed group commit
//! can be handed to every submission in it); [`Cause`] is the redb, journal or PostgreSQL error
//! underneath, converted with `?` inside the store.

use std::sync::Arc;

/// The error underneath a failed store operation.
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    /// redb could not open or create its file.
    #[error(transparent)]
    Database(#[from] redb::DatabaseError),
    /// redb could not begin a transaction.
    #[error(transparent)]
    Transaction(#[from] redb::TransactionError),
    /// redb could not open a table.
    #[error(transparent)]
    Table(#[from] redb::TableError),
    /// redb could not read or write its file.
    #[error(transparent)]
    Storage(#[from] redb::StorageError),
    /// redb could not commit a transaction.
    #[error(transparent)]
    Commit(#[from] redb::CommitError),
    /// redb refused a durability setting.
    #[error(transparent)]
    Durability(#[from] redb::SetDurabilityError),
    /// The PostgreSQL store's database refused or failed a request.
    #[error(transparent)]
    Postgres(#[from] super::pg::PgError),
    /// The journal file could not be read, written or synced.
    #[error("journal: {0}")]
    Journal(#[from] std::io::Error),
}

/// Store failures. Each message is a sentence fit for a client's ERROR frame.
#[derive(Debug, thiserror::Error, Clone)]
pub enum StoreError {
    /// The store file could not be opened or created.
    #[error("cannot open store {path}: {source}")]
    Open {
        /// Store file.
        path: String,
        /// Why.
        #[source]
        source: Arc<Cause>,
    },
    /// The PostgreSQL store could not be opened: the server unreachable, the login refused,
    /// the database missing, the schema newer than this build, or recovery failed. The cause
    /// is part of the sentence (not a separate source, so it is printed once).
    #[error("cannot open store {url}: {cause}")]
    OpenDatabase {
        /// The store's URL (it never holds a password).
        url: String,
        /// Why.
        cause: Arc<Cause>,
    },
    /// Another process has the store file open (a master that has not let go of it yet).
    #[error("store {path} is still open by another process")]
    AlreadyOpen {
        /// Store file.
        path: String,
    },
    /// A write failed (disk full, I/O error); nothing of it was committed.
    #[error("store write failed: {0}")]
    Write(#[source] Arc<Cause>),
    /// A commit, a queue name or a message id is larger than the store takes; nothing of the
    /// commit was written.
    #[error("store write failed: {what} of {bytes} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// What is too large.
        what: &'static str,
        /// Its size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// The journal reached its hard limit because checkpoints into redb keep failing.
    #[error(
        "store full: the journal reached its limit of {limit} bytes because checkpoints keep failing; writes are refused until one succeeds"
    )]
    Full {
        /// The limit in bytes.
        limit: u64,
    },
    /// A failed journal write could not be undone on disk: every write is refused until it
    /// is (the next submission retries) or a checkpoint covers it.
    #[error(
        "store write failed: a failed journal write could not be undone ({0}); writes are refused until it can be"
    )]
    Failed(#[source] Arc<Cause>),
    /// A read of stored messages failed.
    #[error("store read failed: {0}")]
    Read(#[source] Arc<Cause>),
    /// The store is closed (node stopping or stepping down).
    #[error("store is closed")]
    Closed,
    /// A task that ran store work failed (panicked or was cancelled).
    #[error("{0}")]
    Task(String),
}

impl StoreError {
    /// A failed write.
    pub(crate) fn write(c: impl Into<Cause>) -> StoreError {
        StoreError::Write(Arc::new(c.into()))
    }

    /// A failed read.
    pub(crate) fn read(c: impl Into<Cause>) -> StoreError {
        StoreError::Read(Arc::new(c.into()))
    }
}
