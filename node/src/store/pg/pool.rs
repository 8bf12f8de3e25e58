//! Connecting: [`PgConfig`] (the URL, the password read from its file, the bounds and session
//! settings) and [`PgPool`], a pool of connections made with it.
//!
//! [`PgPool::connect`] makes one connection first, under [`PgConfig::connect_timeout`], so a
//! bad password, a missing database or a server that is down is reported at start as one
//! sentence ([`PgError`]) instead of a pool timeout later. Every connection of the pool is then
//! made and handed out under the same bound.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use super::error::PgError;
use super::url::PgUrl;
use super::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT, DEFAULT_POOL_SIZE};

/// A password, shown as `***` by `Debug` and `Display` so that it never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// A password given in memory (tests, embedding).
    pub fn new(p: impl Into<String>) -> Self {
        Password(p.into())
    }

    /// Reads `--store-password-file`: its whole content, less one trailing line end (`\n` or
    /// `\r\n`), so that `echo secret > file` works and a password may still hold spaces.
    pub fn read_file(path: &Path) -> Result<Password, PgError> {
        let text = std::fs::read_to_string(path).map_err(|error| PgError::PasswordFile {
            path: path.display().to_string(),
            error,
        })?;
        let p = text
            .strip_suffix('\n')
            .map(|t| t.strip_suffix('\r').unwrap_or(t))
            .unwrap_or(&text);
        if p.is_empty() {
            return Err(PgError::EmptyPassword {
                path: path.display().to_string(),
            });
        }
        Ok(Password(p.to_string()))
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How to reach the store's database, and the settings of every session.
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// Server, user and database.
    pub url: PgUrl,
    /// The password (from `--store-password-file`); `None` for trust or peer authentication.
    pub password: Option<Password>,
    /// Bound on making one connection (TCP, authentication, startup) and on waiting for a free
    /// connection in the pool.
    pub connect_timeout: Duration,
    /// Connections in the pool.
    pub pool_size: usize,
    /// `application_name` of the sessions, shown in `pg_stat_activity`.
    pub application_name: String,
    /// The server ends a session left idle inside a transaction this long
    /// (`idle_in_transaction_session_timeout`), releasing its locks: a frozen member cannot
    /// hold the lease row locked forever.
    pub idle_in_transaction_timeout: Duration,
    /// Bound on waiting for a row lock (`lock_timeout`); `None` leaves the server's default
    /// (no bound).
    pub lock_timeout: Option<Duration>,
    /// Bound on one statement (`statement_timeout`); `None` leaves the server's default.
    pub statement_timeout: Option<Duration>,
}

impl PgConfig {
    /// The defaults of [`super`] for `url`, without a password.
    pub fn new(url: PgUrl) -> Self {
        PgConfig {
            url,
            password: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            pool_size: DEFAULT_POOL_SIZE,
            application_name: "mqnode".into(),
            idle_in_transaction_timeout: DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT,
            lock_timeout: None,
            statement_timeout: None,
        }
    }

    /// `--store URL` and `--store-password-file FILE`, as the node's options give them.
    pub fn from_options(url: &str, password_file: Option<&Path>) -> Result<Self, PgError> {
        let mut c = PgConfig::new(url.parse()?);
        if let Some(path) = password_file {
            c.password = Some(Password::read_file(path)?);
        }
        Ok(c)
    }

    fn client_config(&self) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host(&self.url.host)
            .port(self.url.port)
            .user(&self.url.user)
            .dbname(&self.url.database)
            .application_name(&self.application_name)
            .connect_timeout(self.connect_timeout)
            // A server that vanishes without a FIN (a cut link) is noticed by the kernel.
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(5))
            .keepalives_interval(Duration::from_secs(1))
            .keepalives_retries(3)
            .tcp_user_timeout(self.connect_timeout);
        let mut options = vec![format!(
            "-c idle_in_transaction_session_timeout={}",
            self.idle_in_transaction_timeout.as_millis()
        )];
        if let Some(t) = self.lock_timeout {
            options.push(format!("-c lock_timeout={}", t.as_millis()));
        }
        if let Some(t) = self.statement_timeout {
            options.push(format!("-c statement_timeout={}", t.as_millis()));
        }
        c.options(options.join(" "));
        if let Some(p) = &self.password {
            c.password(p.expose());
        }
        c
    }

    fn timeout_ms(&self) -> u64 {
        u64::try_from(self.connect_timeout.as_millis()).unwrap_or(u64::MAX)
    }
}

/// A pool of connections to the store's database. Cheap to clone (clones share the pool).
#[derive(Clone)]
pub struct PgPool {
    pool: Pool,
    config: PgConfig,
}

impl fmt::Debug for PgPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgPool")
            .field("url", &self.config.url.to_string())
            .field("size", &self.config.pool_size)
            .finish()
    }
}

/// A connection from a [`PgPool`], back in the pool when dropped.
pub type PgClient = deadpool_postgres::Client;

impl PgPool {
    /// Connects once (to report a bad URL, password or database, or a server that is down, as
    /// one sentence), then makes the pool.
    pub async fn connect(config: &PgConfig) -> Result<PgPool, PgError> {
        let client_config = config.client_config();
        let attempt = tokio::time::timeout(config.connect_timeout, client_config.connect(NoTls));
        match attempt.await {
            Err(_) => {
                return Err(PgError::Timeout {
                    addr: config.url.address(),
                    timeout_ms: config.timeout_ms(),
                });
            }
            Ok(Err(e)) => return Err(PgError::classify(e, &config.url, config.timeout_ms())),
            // The connection task is dropped with the client: this one only proved the login.
            Ok(Ok((client, _connection))) => drop(client),
        }
        let manager = Manager::from_config(
            client_config,
            NoTls,
            ManagerConfig {
                // A closed connection is dropped on its return; a broken one fails its next
                // query, and the caller retries with another.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.connect_timeout))
            .create_timeout(Some(config.connect_timeout))
            .recycle_timeout(Some(config.connect_timeout))
            .build()
            .map_err(|e| PgError::Invalid(format!("cannot make the connection pool: {e}")))?;
        Ok(PgPool {
            pool,
            config: config.clone(),
        })
    }

    /// A connection, waiting at most [`PgConfig::connect_timeout`] for one to come free or be
    /// made.
    pub async fn get(&self) -> Result<PgClient, PgError> {
        self.pool.get().await.map_err(|e| {
            PgError::from_pool(
                e,
                &self.config.url,
                self.config.timeout_ms(),
                self.config.pool_size,
            )
        })
    }

    /// The configuration the pool was made with.
    pub fn config(&self) -> &PgConfig {
        &self.config
    }

    /// Closes the pool: idle connections are closed, those in use when they come back.
    pub fn close(&self) {
        self.pool.close();
    }
}
