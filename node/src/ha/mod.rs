//! Master/slave on a shared data directory.
//!
//! The store lock is the file `lock` in the data directory, held with an exclusive OS file
//! lock (`flock`), which the kernel releases when the holder dies ([`lock`]). The role machine
//! ([`role`]):
//!
//! ```text
//!            try_lock ok (+ fence)              lock lost / stepdown
//!  start ──▶ [slave: poll every lockAcquireSleepInterval] ──▶ [master] ──────────────▶ [slave]
//!                                                  │ every lockKeepAlivePeriod: is the file
//!                                                  │ at `lock` still the one we hold?
//! ```
//!
//! The keep-alive check guards against the lock file being deleted or replaced under a running
//! master (a new file could be locked by another node: two masters). The master compares the
//! device and inode of its open handle with the path's; on a mismatch it demotes itself.
//!
//! The other half of that guard is on the taker's side. Each holder writes a record into the
//! file: `NAME pid PID inode INO`, with the inode of the file it locked. A taker that finds the
//! inode of the very file it just locked knows the previous holder locked this same file and
//! has released it (stepped down, stopped or died): it may serve at once. Any other content
//! (a new file, a replaced one, a copy) means a master may still hold a lock on a file that is
//! no longer at the path; the taker then waits one `lockKeepAlivePeriod` ([`StoreLock::fenced`])
//! so that master has noticed and demoted before it serves.
//!
//! Members of a PostgreSQL store elect their master through a lease row in the database
//! instead (`--ha jdbc`): [`lease`], ActiveMQ's lease database locker, and [`jdbc`], its role
//! machine.

pub mod jdbc;
pub mod lease;
pub mod lock;
pub mod replicated;
pub mod role;
pub mod zk;

pub use lock::{LockError, LockRecord, StoreLock};
