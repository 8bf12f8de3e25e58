//! A real PostgreSQL server for tests ([`PgServer`]), and lease lockers in child processes
//! ([`Locker`], the `pg_locker` example printing its transitions as JSON lines).
//!
//! [`PgServer::start`] runs `initdb` in a temporary directory (a superuser `mq` with a random
//! password, `scram-sha-256` on TCP, `trust` on the socket, which is in that private directory),
//! creates the database `mq`, and starts `postgres` on 127.0.0.1 and a free port, its unix
//! socket in the directory too; it waits until the server reports `ready` in `postmaster.pid`
//! and accepts a TCP connection. The server can be stopped and started again on the same port
//! and data ([`PgServer::stop`], [`PgServer::start_again`]). Dropping it stops the postmaster
//! by its pid (immediate shutdown, then SIGKILL) and removes the directory.
//!
//! The binaries are PostgreSQL's in `$MQ_TEST_PG_BIN`, else the newest
//! `/usr/lib/postgresql/*/bin` (Debian's `postgresql` package, which `scripts/test.sh`
//! installs), else `initdb` and `postgres` on the `PATH`. `initdb` and `postgres` refuse to run
//! as root: a test run as root runs them as the user `$MQ_TEST_PG_USER`, else `postgres`
//! (the package's), the directory given to that user.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tempfile::TempDir;

use crate::process::{die_with_parent, run_bounded, signal, wait_exit};
use crate::{EXIT_TIMEOUT, READY_TIMEOUT, example_path, free_port, poll_until};

// Where PostgreSQL is installed and whom it runs as: the code mqctl finds it with.
use mq_shared::installed;

/// The superuser `initdb` creates, and the owner of the database `mq`.
pub const PG_USER: &str = "mq";
/// The database [`PgServer::url`] names.
pub const PG_DATABASE: &str = "mq";

/// How long `initdb` may take.
const INITDB_TIMEOUT: Duration = Duration::from_secs(60);

/// A PostgreSQL server of its own for a test.
pub struct PgServer {
    dir: TempDir,
    bin: PathBuf,
    owner: Option<(u32, u32)>,
    port: u16,
    password: String,
    child: Option<Child>,
}

impl PgServer {
    /// Initialises and starts a server (see the module doc); panics with its log if it does
    /// not come up within [`READY_TIMEOUT`].
    #[track_caller]
    pub fn start() -> PgServer {
        let bin = pg_bin_dir();
        let owner = server_owner();
        let dir = tempfile::Builder::new()
            .prefix("mq-pg-")
            .tempdir()
            .expect("a temporary directory");
        // Private: the socket in it trusts whoever reaches it.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod 700");
        let password = random_hex(16);
        let pwfile = dir.path().join("password");
        write_private(&pwfile, &password);
        let sock = dir.path().join("sock");
        std::fs::create_dir(&sock).expect("socket directory");
        if let Some((uid, gid)) = owner {
            for p in [dir.path(), &pwfile, &sock] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid)).expect("chown to the pg user");
            }
        }
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(dir.path().join("data"))
            .args([
                "-U",
                PG_USER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .args(["-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .env("LC_ALL", "C")
            .current_dir(dir.path());
        as_owner(&mut initdb, owner);
        let run = run_bounded(&mut initdb, INITDB_TIMEOUT);
        if !run.status.is_some_and(|s| s.success()) {
            panic!(
                "initdb failed ({:?}):\n{}{}",
                run.status,
                String::from_utf8_lossy(&run.stdout),
                String::from_utf8_lossy(&run.stderr)
            );
        }
        let mut server = PgServer {
            dir,
            bin,
            owner,
            port: 0,
            password,
            child: None,
        };
        // A free port can be taken by another test between our look and the server's bind:
        // then try another.
        let mut tries = 0;
        loop {
            server.port = free_port();
            match server.spawn() {
                Ok(()) => break,
                Err(log) if tries < 3 && log.contains("could not bind") => tries += 1,
                Err(log) => panic!("postgres did not start; its log:\n{log}"),
            }
        }
        server.psql(
            "postgres",
            &format!("CREATE DATABASE {PG_DATABASE} OWNER {PG_USER}"),
        );
        server
    }

    /// Starts `postgres` on the data directory and port; `Err(log)` when it exits or is not
    /// ready within [`READY_TIMEOUT`].
    fn spawn(&mut self) -> Result<(), String> {
        let log_path = self.dir.path().join("postgres.log");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("server log file");
        let mut cmd = Command::new(self.bin.join("postgres"));
        cmd.arg("-D")
            .arg(self.data_dir())
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.socket_dir().display()
            ))
            .args(["-c", "max_connections=100", "-c", "shared_buffers=16MB"])
            .args([
                "-c",
                "logging_collector=off",
                "-c",
                "log_min_messages=warning",
            ])
            .env("LC_ALL", "C")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log);
        as_owner(&mut cmd, self.owner);
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().expect("spawning postgres");
        let pidfile = self.data_dir().join("postmaster.pid");
        let mut exited = false;
        let ready = poll_until(READY_TIMEOUT, || {
            if !matches!(child.try_wait(), Ok(None)) {
                exited = true;
                return true;
            }
            // Line 8 of postmaster.pid is the server's status.
            std::fs::read_to_string(&pidfile)
                .is_ok_and(|t| t.lines().nth(7).is_some_and(|l| l.trim() == "ready"))
                && TcpStream::connect(self.addr()).is_ok()
        });
        if !ready || exited {
            let _ = child.kill();
            let _ = child.wait();
            return Err(self.log());
        }
        self.child = Some(child);
        Ok(())
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The password of [`PG_USER`].
    pub fn password(&self) -> &str {
        &self.password
    }

    /// A file holding the password (what `--store-password-file` names).
    pub fn password_file(&self) -> PathBuf {
        self.dir.path().join("password")
    }

    /// `postgres://mq@127.0.0.1:PORT/mq`.
    pub fn url(&self) -> String {
        self.url_for(PG_DATABASE)
    }

    /// `postgres://mq@127.0.0.1:PORT/DB`.
    pub fn url_for(&self, database: &str) -> String {
        format!("postgres://{PG_USER}@127.0.0.1:{}/{database}", self.port)
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The directory of the unix socket.
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    /// The postmaster's pid; panics when stopped.
    pub fn pid(&self) -> u32 {
        match &self.child {
            Some(c) => c.id(),
            None => panic!("the PostgreSQL server is stopped"),
        }
    }

    /// Whether the server runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Creates a database owned by [`PG_USER`].
    pub fn create_database(&self, name: &str) {
        self.psql(
            "postgres",
            &format!("CREATE DATABASE \"{name}\" OWNER {PG_USER}"),
        );
    }

    /// Runs `sql` in `database` through `psql` on the unix socket; returns its unaligned,
    /// tuples-only output. Panics when `psql` fails.
    #[track_caller]
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let mut cmd = Command::new(self.bin.join("psql"));
        cmd.arg("-h")
            .arg(self.socket_dir())
            .args(["-p", &self.port.to_string(), "-U", PG_USER, "-d", database])
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql]);
        let run = run_bounded(&mut cmd, READY_TIMEOUT);
        if !run.status.is_some_and(|s| s.success()) {
            panic!(
                "psql {sql:?} failed ({:?}): {}",
                run.status,
                String::from_utf8_lossy(&run.stderr)
            );
        }
        String::from_utf8_lossy(&run.stdout).trim().to_string()
    }

    /// Fast shutdown (SIGINT: sessions are ended, then a checkpoint); waits for the exit.
    #[track_caller]
    pub fn stop(&mut self) {
        self.stop_with(rustix::process::Signal::INT);
    }

    /// Immediate shutdown (SIGQUIT: as a crash, recovered at the next start); waits for the
    /// exit.
    #[track_caller]
    pub fn stop_immediate(&mut self) {
        self.stop_with(rustix::process::Signal::QUIT);
    }

    #[track_caller]
    fn stop_with(&mut self, sig: rustix::process::Signal) {
        let Some(mut child) = self.child.take() else {
            panic!("the PostgreSQL server is already stopped");
        };
        signal(child.id(), sig);
        if wait_exit(&mut child, EXIT_TIMEOUT).is_none() {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "postgres did not stop within {EXIT_TIMEOUT:?}; its log:\n{}",
                self.log()
            );
        }
    }

    /// Starts the stopped server again, same data and port.
    #[track_caller]
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the PostgreSQL server is running");
        if let Err(log) = self.spawn() {
            panic!("postgres did not start again; its log:\n{log}");
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if matches!(child.try_wait(), Ok(None)) {
                signal(child.id(), rustix::process::Signal::QUIT);
            }
            if wait_exit(&mut child, EXIT_TIMEOUT).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if thread::panicking() {
            eprintln!("==== PostgreSQL log ====\n{}==== end ====", self.log());
        }
    }
}

/// Where PostgreSQL's programs are (see the module doc).
fn pg_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MQ_TEST_PG_BIN") {
        return PathBuf::from(dir);
    }
    installed::bin_dir(&["postgres"]).unwrap_or_else(|| {
        panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): \
             apt-get install postgresql, or run scripts/test.sh, which installs it"
        )
    })
}

/// The user to run the server as: `None` when not root.
fn server_owner() -> Option<(u32, u32)> {
    if !rustix::process::geteuid().is_root() {
        return None;
    }
    let name = std::env::var("MQ_TEST_PG_USER").unwrap_or_else(|_| "postgres".into());
    match installed::user_ids(&name) {
        Some((0, _)) | None => panic!(
            "tests run as root need a non-root user for PostgreSQL (initdb refuses root): \
             user {name:?} not found; install postgresql (it creates the user postgres) or \
             set MQ_TEST_PG_USER"
        ),
        Some(ids) => Some(ids),
    }
}

fn as_owner(cmd: &mut Command, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        cmd.uid(uid).gid(gid);
    }
}

/// `n` random bytes from the kernel, as hex.
fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("reading /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).expect("writing a test file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
}

/// The wall clock in ms since the epoch. On this machine it is also the database's clock.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// How to start a [`Locker`]: the `pg_locker` example's flags.
#[derive(Debug, Clone)]
pub struct LockerOpts {
    /// `--name`: the holder name.
    pub name: String,
    /// `--store`.
    pub url: String,
    /// `--store-password-file`.
    pub password_file: Option<PathBuf>,
    /// `--lock-keep-alive-period` (ms).
    pub keep_alive_ms: u64,
    /// `--lock-acquire-sleep-interval` (ms).
    pub acquire_ms: u64,
    /// `--clock-offset-ms`: the locker's wall clock is this far off.
    pub clock_offset_ms: i64,
    /// `--max-allowable-diff-from-db-time` (ms).
    pub max_diff_ms: Option<u64>,
    /// `--write-every-ms`: a fenced write this often while holding.
    pub write_every_ms: Option<u64>,
}

impl LockerOpts {
    /// A locker `name` on `server`'s database, keep-alive 200 ms, lease 500 ms.
    pub fn new(name: &str, server: &PgServer) -> LockerOpts {
        LockerOpts {
            name: name.into(),
            url: server.url(),
            password_file: Some(server.password_file()),
            keep_alive_ms: 200,
            acquire_ms: 500,
            clock_offset_ms: 0,
            max_diff_ms: None,
            write_every_ms: None,
        }
    }

    fn args(&self) -> Vec<String> {
        let mut a = vec![
            "--name".into(),
            self.name.clone(),
            "--store".into(),
            self.url.clone(),
            "--lock-keep-alive-period".into(),
            self.keep_alive_ms.to_string(),
            "--lock-acquire-sleep-interval".into(),
            self.acquire_ms.to_string(),
            "--clock-offset-ms".into(),
            self.clock_offset_ms.to_string(),
        ];
        if let Some(p) = &self.password_file {
            a.push("--store-password-file".into());
            a.push(p.display().to_string());
        }
        if let Some(m) = self.max_diff_ms {
            a.push("--max-allowable-diff-from-db-time".into());
            a.push(m.to_string());
        }
        if let Some(w) = self.write_every_ms {
            a.push("--write-every-ms".into());
            a.push(w.to_string());
        }
        a
    }
}

/// One JSON line of a locker, with when the test read it.
#[derive(Debug, Clone)]
pub struct LockerEvent {
    /// The line.
    pub json: Value,
    /// The test's wall clock when it was read (ms since the epoch; the database's clock too).
    pub read_at_ms: i64,
    /// The test's monotonic clock when it was read.
    pub read_at: Instant,
}

impl LockerEvent {
    /// Its `"event"`.
    pub fn kind(&self) -> &str {
        self.json["event"].as_str().unwrap_or("")
    }

    /// An integer field.
    pub fn int(&self, field: &str) -> i64 {
        self.json[field]
            .as_i64()
            .unwrap_or_else(|| panic!("no integer {field:?} in {}", self.json))
    }
}

#[derive(Default)]
struct Lines {
    events: Vec<LockerEvent>,
    stderr: String,
    closed: bool,
}

/// A `pg_locker` process (the example in `tests/examples`), its JSON events collected as they
/// come. Killed and reaped when dropped; its output is printed when the test fails.
pub struct Locker {
    name: String,
    child: Option<Child>,
    lines: Arc<(Mutex<Lines>, Condvar)>,
}

impl Locker {
    /// Spawns the locker (from the test's own thread: it dies with that thread).
    pub fn start(opts: &LockerOpts) -> Locker {
        let mut cmd = Command::new(example_path("pg_locker"));
        cmd.args(opts.args())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().expect("spawning pg_locker");
        let lines: Arc<(Mutex<Lines>, Condvar)> = Arc::default();
        if let Some(out) = child.stdout.take() {
            let l = lines.clone();
            thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    let event = LockerEvent {
                        json: serde_json::from_str(&line)
                            .unwrap_or_else(|_| Value::String(line.clone())),
                        read_at_ms: now_ms(),
                        read_at: Instant::now(),
                    };
                    let mut g = l.0.lock().unwrap_or_else(|e| e.into_inner());
                    g.events.push(event);
                    l.1.notify_all();
                }
                l.0.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
                l.1.notify_all();
            });
        }
        if let Some(err) = child.stderr.take() {
            let l = lines.clone();
            thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    let mut g = l.0.lock().unwrap_or_else(|e| e.into_inner());
                    g.stderr.push_str(&line);
                    g.stderr.push('\n');
                }
            });
        }
        Locker {
            name: opts.name.clone(),
            child: Some(child),
            lines,
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its pid; panics when it was killed.
    pub fn pid(&self) -> u32 {
        match &self.child {
            Some(c) => c.id(),
            None => panic!("locker {} was killed", self.name),
        }
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<LockerEvent> {
        self.lines
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .events
            .clone()
    }

    /// What it wrote on stderr (its log).
    pub fn stderr(&self) -> String {
        self.lines
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stderr
            .clone()
    }

    /// The first event after the first `skip` that `pred` accepts, waiting at most `timeout`;
    /// `None` when none came (or the output ended).
    pub fn next_event(
        &self,
        skip: usize,
        timeout: Duration,
        mut pred: impl FnMut(&LockerEvent) -> bool,
    ) -> Option<LockerEvent> {
        let until = Instant::now() + timeout;
        let (m, cv) = &*self.lines;
        let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(e) = g.events.iter().skip(skip).find(|e| pred(e)) {
                return Some(e.clone());
            }
            let now = Instant::now();
            if g.closed || now >= until {
                return None;
            }
            g = cv
                .wait_timeout(g, until - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The first event of kind `kind` after the first `skip`; panics (with the locker's
    /// output) if none comes within `timeout`.
    #[track_caller]
    pub fn wait_event(&self, skip: usize, kind: &str, timeout: Duration) -> LockerEvent {
        match self.next_event(skip, timeout, |e| e.kind() == kind) {
            Some(e) => e,
            None => panic!(
                "locker {}: no {kind:?} event within {timeout:?}; events: {:?}\nstderr:\n{}",
                self.name,
                self.events()
                    .iter()
                    .map(|e| e.json.to_string())
                    .collect::<Vec<_>>(),
                self.stderr()
            ),
        }
    }

    /// How many events so far.
    pub fn event_count(&self) -> usize {
        self.lines
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .events
            .len()
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP: the process stops running (its sockets stay open).
    pub fn freeze(&self) {
        signal(self.pid(), rustix::process::Signal::STOP);
    }

    /// SIGCONT after [`Locker::freeze`].
    pub fn thaw(&self) {
        signal(self.pid(), rustix::process::Signal::CONT);
    }

    /// Waits (at most `timeout`) for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let status = wait_exit(self.child.as_mut()?, timeout);
        if status.is_some() {
            // Let the reader threads take the last lines.
            let (m, cv) = &*self.lines;
            let g = m.lock().unwrap_or_else(|e| e.into_inner());
            let _ = cv.wait_timeout_while(g, READY_TIMEOUT, |l| !l.closed);
        }
        status
    }
}

impl Drop for Locker {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() {
            eprintln!(
                "==== locker {} ====\n{}\n{}==== end of locker {} ====",
                self.name,
                self.events()
                    .iter()
                    .map(|e| format!("{} {}", e.read_at_ms, e.json))
                    .collect::<Vec<_>>()
                    .join("\n"),
                self.stderr(),
                self.name
            );
        }
    }
}
