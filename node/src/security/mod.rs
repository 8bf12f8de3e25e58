//! Security: who may connect and what they may do, from the security file ([`config`]), plus
//! the pieces the admin API and discovery use ([`secret`], [`advert`]).
//!
//! ```text
//! CONNECT login/passcode ──▶ Security::authenticate[_async] ──▶ Principal { user, groups, bridge }
//!                                 │ argon2id verify (blocking pool, bounded), login cache
//! SEND / SUBSCRIBE / create ──▶ Security::authorize(principal, op, destination) ──▶ Ok | Denied
//!                                 │ first matching [[authorization]] entry in file order
//! SIGHUP, POST /security/reload ──▶ Security::reload ──▶ new rules swapped in, or old ones kept
//! ```
//!
//! Without a security file ([`Security::none`]) only loopback clients get in, anonymously,
//! and may do everything (and act as bridges); the transport must then refuse to listen on
//! other addresses. With one:
//!
//! - A client with a login must give that user's password. A client without one (no `login`
//!   header, or an empty one) gets in only with `anonymous = true`, as user-less group
//!   `anonymous`. Every failure is the same [`AuthError`], `authentication failed`.
//! - A principal may act as a network bridge when one of its groups is in `bridge-groups`.
//! - `/queue/` and `/topic/` destinations: the first entry whose pattern matches decides; a
//!   principal in one of the entry's groups for the operation is allowed, everyone else, and
//!   everyone when no entry matches, is denied. A bridge may always read the advisory topic it
//!   follows demand on (`/topic/ActiveMQ.Advisory.Consumer`); what it forwards needs grants.
//! - Temporary destinations (`/temp-queue/NAME`, `/temp-topic/NAME`): the first matching
//!   `temp://` entry decides as above; with none, every principal may create and write. Only
//!   the connection that created one reads from it: [`Security::authorize`] denies every read,
//!   and the transport asks [`Security::authorize_owned`] for its own.
//! - Rules are looked up on every call through one atomic load; a reload swaps them whole.

mod cache;

pub mod advert;
pub mod config;
pub mod secret;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use arc_swap::ArcSwap;
use futures_util::FutureExt;
use mq_shared::defaults;
use mq_shared::password::{self, PasswordHash};

use self::cache::{CacheKey, LoginCache};
pub use self::config::ConfigError;
use self::config::{Entry, Pattern, SecurityConfig};
use crate::internode;

/// Prefix of temporary queues.
pub const TEMP_QUEUE_PREFIX: &str = "/temp-queue/";
/// Prefix of temporary topics.
pub const TEMP_TOPIC_PREFIX: &str = "/temp-topic/";

/// Whether `destination` is a temporary queue or topic.
pub fn is_temp(destination: &str) -> bool {
    temp_name(destination).is_some()
}

/// The name of a temporary destination, without its prefix.
fn temp_name(destination: &str) -> Option<&str> {
    destination
        .strip_prefix(TEMP_QUEUE_PREFIX)
        .or_else(|| destination.strip_prefix(TEMP_TOPIC_PREFIX))
}

/// Why the security rules could not be (re)loaded.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// The file cannot be used (at start).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A reload found the file unusable: the rules loaded before stay in force.
    #[error("{0} (the rules loaded before stay in force)")]
    Kept(ConfigError),
    /// A reload on a node started without a security file.
    #[error("this node has no security file to reload (start it with --security FILE)")]
    NoFile,
}

/// A failed login. It never says whether the user or the password was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("authentication failed")]
pub struct AuthError;

/// Who a connection is, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The login, or `None` for an anonymous client.
    pub user: Option<String>,
    /// The user's groups; `["anonymous"]` for an anonymous client.
    pub groups: Vec<String>,
    /// Whether the connection may act as a network bridge (its message ids and broker path
    /// honoured).
    pub bridge: bool,
}

impl Principal {
    fn anonymous(bridge: bool) -> Principal {
        Principal {
            user: None,
            groups: vec![defaults::ANONYMOUS_GROUP.to_string()],
            bridge,
        }
    }

    /// `user 'NAME'` or `anonymous`, for messages and logs.
    pub fn describe(&self) -> String {
        match &self.user {
            Some(u) => format!("user '{u}'"),
            None => "anonymous".to_string(),
        }
    }

    fn in_any(&self, groups: &[String]) -> bool {
        self.groups.iter().any(|g| groups.contains(g))
    }
}

/// What a principal wants to do with a destination (ActiveMQ's three permissions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// SUBSCRIBE, browse.
    Read,
    /// SEND.
    Write,
    /// Create the destination (on first use).
    Admin,
}

impl Operation {
    fn verb(self) -> &'static str {
        match self {
            Operation::Read => "read from",
            Operation::Write => "write to",
            Operation::Admin => "create",
        }
    }
}

/// A refused operation; `Display` is the sentence for the ERROR frame's `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// What was refused.
    pub operation: Operation,
    /// On what.
    pub destination: String,
    /// To whom ([`Principal::describe`]).
    pub who: String,
    /// The temporary destination belongs to another connection.
    pub not_owner: bool,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.not_owner {
            write!(
                f,
                "{} is not allowed to {} {}: only the connection that created a temporary destination reads from it",
                self.who,
                self.operation.verb(),
                self.destination
            )
        } else {
            write!(
                f,
                "{} is not allowed to {} {}",
                self.who,
                self.operation.verb(),
                self.destination
            )
        }
    }
}

impl std::error::Error for Denied {}

/// What the rules in force amount to, for the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Whether a security file is in use.
    pub enabled: bool,
    /// `anonymous` of the file.
    pub anonymous: bool,
    /// Users defined.
    pub users: usize,
    /// Authorization entries.
    pub entries: usize,
}

/// The security rules of a node and their counters; cheap to clone (one shared state).
#[derive(Clone)]
pub struct Security {
    inner: Arc<Inner>,
}

struct Inner {
    /// The security file; `None`: open to loopback only.
    path: Option<PathBuf>,
    rules: ArcSwap<SecurityConfig>,
    cache: LoginCache,
    /// Bounds password verifications running at once.
    checks: Arc<tokio::sync::Semaphore>,
    failed_logins: AtomicU64,
    denied_operations: AtomicU64,
}

impl fmt::Debug for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Security")
            .field("path", &self.inner.path)
            .field("summary", &self.summary())
            .finish()
    }
}

/// What a login needs once the cheap checks are done.
enum Plan {
    /// Decided without a password check.
    Done(Result<Principal, AuthError>),
    /// Decided by a password check.
    Verify(Check),
}

/// A password check still to make: `password` against `hash`, for `principal` on a match
/// (`None` for an unknown user, who fails either way).
struct Check {
    hash: PasswordHash,
    password: String,
    principal: Option<Principal>,
    cache_key: CacheKey,
}

impl Check {
    /// Whether the password matches: slow by design.
    fn matches(&self) -> bool {
        self.hash.verify(&self.password)
    }
}

/// Checked in place of an unknown user's hash, so that an unknown user takes as long to
/// refuse as a wrong password.
static UNKNOWN_USER_HASH: LazyLock<Option<PasswordHash>> =
    LazyLock::new(|| password::hash("no such user").ok());

impl Security {
    /// A node without a security file: loopback clients only, anonymous, allowed everything.
    pub fn none() -> Security {
        Security::with(None, SecurityConfig::default())
    }

    /// Reads and checks the security file at `path`.
    pub fn load(path: &Path) -> Result<Security, SecurityError> {
        let rules = SecurityConfig::load(path)?;
        Ok(Security::with(Some(path.to_path_buf()), rules))
    }

    /// Rules from an already checked file (tests, embedding).
    pub fn from_config(path: Option<PathBuf>, rules: SecurityConfig) -> Security {
        Security::with(path, rules)
    }

    fn with(path: Option<PathBuf>, rules: SecurityConfig) -> Security {
        Security {
            inner: Arc::new(Inner {
                path,
                rules: ArcSwap::from_pointee(rules),
                cache: LoginCache::new(defaults::LOGIN_CACHE_SIZE),
                checks: Arc::new(tokio::sync::Semaphore::new(
                    defaults::MAX_CONCURRENT_PASSWORD_CHECKS,
                )),
                failed_logins: AtomicU64::new(0),
                denied_operations: AtomicU64::new(0),
            }),
        }
    }

    /// Re-reads the security file. On success the new rules apply to every later call (and
    /// remembered logins are forgotten); on error the rules in force stay, and the error says
    /// why (file, line, column).
    pub fn reload(&self) -> Result<(), SecurityError> {
        let path = self.inner.path.as_deref().ok_or(SecurityError::NoFile)?;
        let rules = SecurityConfig::load(path).map_err(SecurityError::Kept)?;
        self.inner.rules.store(Arc::new(rules));
        self.inner.cache.clear();
        Ok(())
    }

    /// Whether a security file is in use (without one, transports must listen on loopback only).
    pub fn is_enabled(&self) -> bool {
        self.inner.path.is_some()
    }

    /// The security file, if any.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// What the rules in force amount to.
    pub fn summary(&self) -> Summary {
        let rules = self.inner.rules.load();
        Summary {
            enabled: self.is_enabled(),
            anonymous: rules.anonymous,
            users: rules.users.len(),
            entries: rules.authorization.len(),
        }
    }

    /// Logins refused since start.
    pub fn failed_logins(&self) -> u64 {
        self.inner.failed_logins.load(Ordering::Relaxed)
    }

    /// Operations denied since start.
    pub fn denied_operations(&self) -> u64 {
        self.inner.denied_operations.load(Ordering::Relaxed)
    }

    /// Authenticates a CONNECT's `login` and `passcode`; `from_loopback`: the client's address
    /// is a loopback one. Runs the password check on the calling thread: slow by design (see
    /// [`Security::authenticate_async`]).
    pub fn authenticate(
        &self,
        login: Option<&str>,
        passcode: Option<&str>,
        from_loopback: bool,
    ) -> Result<Principal, AuthError> {
        // A check made in place never waits, so the login is over at its first poll.
        self.login(login, passcode, from_loopback, |check| {
            std::future::ready(Some((check.matches(), check)))
        })
        .now_or_never()
        .unwrap_or(Err(AuthError))
    }

    /// [`Security::authenticate`] for async callers: a password check runs on tokio's blocking
    /// pool, at most `MAX_CONCURRENT_PASSWORD_CHECKS` at once (others wait their turn), so a
    /// reconnect storm neither stalls the runtime nor takes every core and megabyte.
    pub async fn authenticate_async(
        &self,
        login: Option<&str>,
        passcode: Option<&str>,
        from_loopback: bool,
    ) -> Result<Principal, AuthError> {
        self.login(login, passcode, from_loopback, async |check| {
            // The permit goes with the check, so that it is held until the check ends even
            // if this future is dropped (the client went away) while it runs.
            let permit = self.inner.checks.clone().acquire_owned().await.ok()?;
            tokio::task::spawn_blocking(move || {
                let matched = check.matches();
                drop(permit);
                (matched, check)
            })
            .await
            .ok()
        })
        .await
    }

    /// A login: the cheap part (`plan`), then the password check, if one is
    /// needed, made by `check` (`None`: it could not be made, and the login fails); failures
    /// are counted.
    async fn login<F>(
        &self,
        login: Option<&str>,
        passcode: Option<&str>,
        from_loopback: bool,
        check: impl FnOnce(Check) -> F,
    ) -> Result<Principal, AuthError>
    where
        F: Future<Output = Option<(bool, Check)>>,
    {
        let result = match self.plan(login, passcode, from_loopback) {
            Plan::Done(result) => result,
            Plan::Verify(c) => match check(c).await {
                Some((matched, c)) => self.decide(matched, c),
                None => Err(AuthError),
            },
        };
        if result.is_err() {
            self.inner.failed_logins.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// The cheap part of a login: everything but the password hash.
    fn plan(&self, login: Option<&str>, passcode: Option<&str>, from_loopback: bool) -> Plan {
        if !self.is_enabled() {
            return Plan::Done(if from_loopback {
                Ok(Principal::anonymous(true))
            } else {
                Err(AuthError)
            });
        }
        let rules = self.inner.rules.load();
        let Some(login) = login.filter(|l| !l.is_empty()) else {
            return Plan::Done(if rules.anonymous {
                Ok(Principal::anonymous(false))
            } else {
                Err(AuthError)
            });
        };
        let password = passcode.unwrap_or_default();
        let Some(user) = rules.users.get(login) else {
            return match UNKNOWN_USER_HASH.as_ref() {
                Some(hash) => Plan::Verify(Check {
                    cache_key: [0; 32],
                    hash: hash.clone(),
                    password: password.to_string(),
                    principal: None,
                }),
                None => Plan::Done(Err(AuthError)),
            };
        };
        let principal = Principal {
            user: Some(user.name.clone()),
            bridge: user.groups.iter().any(|g| rules.bridge_groups.contains(g)),
            groups: user.groups.clone(),
        };
        let cache_key = self
            .inner
            .cache
            .key_for(login, password, user.password.as_str());
        if self.inner.cache.contains(&cache_key) {
            return Plan::Done(Ok(principal));
        }
        Plan::Verify(Check {
            hash: user.password.clone(),
            password: password.to_string(),
            principal: Some(principal),
            cache_key,
        })
    }

    /// The login a finished check decides (a match is cached).
    fn decide(&self, matched: bool, check: Check) -> Result<Principal, AuthError> {
        match check.principal {
            Some(p) if matched => {
                self.inner.cache.insert(check.cache_key);
                Ok(p)
            }
            _ => Err(AuthError),
        }
    }

    /// Whether `principal` may do `op` on `destination` (`/queue/X`, `/topic/X`,
    /// `/temp-queue/X` or `/temp-topic/X`, as in the STOMP header). Reading a temporary
    /// destination is always denied here: the connection that created it asks
    /// [`Security::authorize_owned`]. Without a security file everything is allowed.
    pub fn authorize(
        &self,
        principal: &Principal,
        op: Operation,
        destination: &str,
    ) -> Result<(), Denied> {
        let not_owner = is_temp(destination) && op == Operation::Read;
        if self.is_enabled() && not_owner {
            return Err(self.deny(principal, op, destination, true));
        }
        self.authorize_owned(principal, op, destination)
    }

    /// [`Security::authorize`] for a temporary destination that the asking connection created
    /// (the transport knows which): reading it is up to the `temp://` entries, as writing is.
    /// For other destinations, the same as [`Security::authorize`].
    pub fn authorize_owned(
        &self,
        principal: &Principal,
        op: Operation,
        destination: &str,
    ) -> Result<(), Denied> {
        if !self.is_enabled() {
            return Ok(());
        }
        let rules = self.inner.rules.load();
        let allowed = match temp_name(destination) {
            Some(name) => match first_match(&rules.authorization, |p| match p {
                Pattern::Temp(f) => f.matches(name),
                Pattern::Destination(_) => false,
            }) {
                Some(entry) => grants(entry, principal, op),
                // Default for temporary destinations: every principal may use its own.
                None => true,
            },
            None if principal.bridge
                && op == Operation::Read
                && destination == internode::ADVISORY_DESTINATION =>
            {
                true
            }
            None => first_match(&rules.authorization, |p| match p {
                Pattern::Destination(f) => f.matches(destination),
                Pattern::Temp(_) => false,
            })
            .is_some_and(|entry| grants(entry, principal, op)),
        };
        if allowed {
            Ok(())
        } else {
            Err(self.deny(principal, op, destination, false))
        }
    }

    fn deny(
        &self,
        principal: &Principal,
        op: Operation,
        destination: &str,
        not_owner: bool,
    ) -> Denied {
        self.inner.denied_operations.fetch_add(1, Ordering::Relaxed);
        Denied {
            operation: op,
            destination: destination.to_string(),
            who: principal.describe(),
            not_owner,
        }
    }
}

fn first_match(entries: &[Entry], matches: impl Fn(&Pattern) -> bool) -> Option<&Entry> {
    entries.iter().find(|e| matches(&e.pattern))
}

fn grants(entry: &Entry, principal: &Principal, op: Operation) -> bool {
    let groups = match op {
        Operation::Read => &entry.read,
        Operation::Write => &entry.write,
        Operation::Admin => &entry.admin,
    };
    groups.as_deref().is_some_and(|g| principal.in_any(g))
}

#[cfg(test)]
mod tests;
