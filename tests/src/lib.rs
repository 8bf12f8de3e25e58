//! Test harness: real `mqnode` processes on loopback, and helpers to drive them.
//!
//! - [`bin_path`] finds a built binary (`cargo build --workspace --bins` first).
//! - [`Node`] is one spawned `mqnode`: it learns its ports from the JSON ready line, keeps
//!   later ready events (slave → master) for [`Node::wait_event`], keeps the process's output
//!   for [`Node::log`] (printed when a test fails), and is killed and reaped when dropped.
//! - [`wait_for`] and [`wait_for_async`] poll a condition with a bounded timeout: tests wait on
//!   conditions, never on bare sleeps.
//! - [`Admin`] and [`get_json`]/[`post_json`]/[`delete_json`] wrap the admin API.
//! - The STOMP helpers wrap [`mq_shared::client::StompClient`]; [`RawConn`] speaks bytes for
//!   tests that must send what a well-behaved client never would.
//!
//! Every node gets its own temporary data directory (unless given one), ports come from port 0
//! and are read back from the ready line, and only processes started here are ever signalled.
//! A node dies with the thread that started it (so an interrupted run leaves none behind):
//! start nodes from the test's own thread, not from a helper thread that ends before the test.
//! [`HaGroup`] starts master/slave nodes on one shared data directory.

pub mod cli;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::panic::Location;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mq_shared::api::{QueueStats, ReadyEvent, Role};
use mq_shared::client::{AckMode, ClientError, ConnectOptions, StompClient};
use mq_shared::frame::{Command as StompCommand, Decoder, Frame, Item, Limits, Version, encode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a node may take from spawn to its ready line (debug builds start slower).
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a node may take to exit after SIGTERM or a shutdown request.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// A generous bound for things that should happen at once (a message to arrive, a counter to
/// change); only reached when a test is about to fail.
pub const SOON: Duration = Duration::from_secs(10);
/// How long to watch for something that must not happen (a message that must not arrive).
pub const QUIET: Duration = Duration::from_millis(300);

// ---- binaries ------------------------------------------------------------------------------

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// Path of a built workspace binary: `$CARGO_TARGET_DIR` (else `target/` in the workspace),
/// then `debug/NAME`, or `release/NAME` with `MQ_TEST_PROFILE=release`.
///
/// Panics with the command to run when the binary is missing.
pub fn bin_path(name: &str) -> PathBuf {
    let root = workspace_root();
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                root.join(dir)
            }
        }
        None => root.join("target"),
    };
    let profile = match std::env::var("MQ_TEST_PROFILE").as_deref() {
        Ok("release") => "release",
        _ => "debug",
    };
    let path = target.join(profile).join(name);
    if !path.is_file() {
        panic!(
            "{} not found: run cargo build --workspace --bins first{}",
            path.display(),
            if profile == "release" {
                " --release"
            } else {
                ""
            }
        );
    }
    path
}

// ---- waiting -------------------------------------------------------------------------------

/// How often [`wait_for`] and [`wait_for_async`] look at their condition.
const POLL: Duration = Duration::from_millis(15);

/// Polls `cond` every ~15 ms until it is true or `timeout` passes; returns whether it held
/// (for callers that want their own failure message).
pub fn poll_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() >= timeout {
            return false;
        }
        thread::sleep(POLL);
    }
}

/// Polls `cond` every ~15 ms until it is true; panics (naming the caller's line) if it is still
/// false after `timeout`.
#[track_caller]
pub fn wait_for(timeout: Duration, cond: impl FnMut() -> bool) {
    let caller = Location::caller();
    if !poll_until(timeout, cond) {
        panic!("condition at {caller} not met within {timeout:?}");
    }
}

/// Async [`wait_for`]: polls `cond` (an async closure) every ~15 ms until it is true; panics
/// (naming the caller's line) if it is still false after `timeout`.
#[track_caller]
pub fn wait_for_async(
    timeout: Duration,
    mut cond: impl AsyncFnMut() -> bool,
) -> impl Future<Output = ()> {
    let caller = Location::caller();
    async move {
        let start = Instant::now();
        loop {
            if cond().await {
                return;
            }
            if start.elapsed() >= timeout {
                panic!("condition at {caller} not met within {timeout:?}");
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

// ---- nodes ---------------------------------------------------------------------------------

/// How to start a node. Defaults: transport `tcp://127.0.0.1:0`, admin `127.0.0.1:0`, a fresh
/// temporary data directory owned by the [`Node`].
#[derive(Debug, Clone)]
pub struct NodeOpts {
    /// `--name`.
    pub name: String,
    /// `--data`; `None` gives the node its own temporary directory.
    pub data: Option<PathBuf>,
    /// `--transport`.
    pub transport: String,
    /// `--admin`.
    pub admin: String,
    /// Further flags, passed as given.
    pub args: Vec<String>,
    /// Admin bearer token: written to a file passed as `--admin-token-file`, and sent by
    /// [`Node::admin`].
    pub token: Option<String>,
}

impl NodeOpts {
    /// Defaults for a node called `name`.
    pub fn new(name: &str) -> NodeOpts {
        NodeOpts {
            name: name.to_owned(),
            data: None,
            transport: "tcp://127.0.0.1:0".to_owned(),
            admin: "127.0.0.1:0".to_owned(),
            args: Vec::new(),
            token: None,
        }
    }

    /// Uses `dir` as the data directory (shared with another node for master/slave).
    pub fn data(mut self, dir: impl Into<PathBuf>) -> NodeOpts {
        self.data = Some(dir.into());
        self
    }

    /// Adds flags, e.g. `.args(["--maximum-redeliveries", "2"])`.
    pub fn args<I, S>(mut self, args: I) -> NodeOpts
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Protects the admin API with `token`.
    pub fn token(mut self, token: &str) -> NodeOpts {
        self.token = Some(token.to_owned());
        self
    }
}

/// Output of a node, shared with the threads that drain its pipes.
type Log = Arc<Mutex<String>>;

fn append(log: &Log, line: &str) {
    let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
    l.push_str(line);
    l.push('\n');
}

/// Why [`Node::try_start`] failed: the process exited or never printed a ready line.
#[derive(Debug)]
pub struct StartFailure {
    /// Exit status, if the process exited.
    pub status: Option<ExitStatus>,
    /// Everything it wrote (stderr and stdout).
    pub log: String,
}

/// A running `mqnode` process. Dropping it kills (SIGKILL) and reaps the process; when the
/// test is failing, the node's output is printed first.
pub struct Node {
    opts: NodeOpts,
    data_dir: PathBuf,
    /// Owned temporary directories (data, token file); removed after the process is gone.
    _dirs: Vec<TempDir>,
    token_file: Option<PathBuf>,
    child: Option<Child>,
    events: Receiver<ReadyEvent>,
    ready: ReadyEvent,
    stomp_port: Option<u16>,
    admin_port: u16,
    log: Log,
    starts: u32,
}

impl Node {
    /// Starts a node and waits (at most [`READY_TIMEOUT`]) for its ready line. Panics with the
    /// node's output if it exits or stays silent.
    #[track_caller]
    pub fn start(opts: NodeOpts) -> Node {
        let name = opts.name.clone();
        match Node::try_start(opts) {
            Ok(n) => n,
            Err(f) => panic!(
                "node {name} did not start (exit status {:?}); its output:\n{}",
                f.status, f.log
            ),
        }
    }

    /// Starts a node; `Err` when it exits before its ready line or prints none in time.
    pub fn try_start(opts: NodeOpts) -> Result<Node, StartFailure> {
        let mut dirs = Vec::new();
        let data_dir = match &opts.data {
            Some(d) => d.clone(),
            None => {
                let d = tempfile::Builder::new()
                    .prefix(&format!("mq-{}-", opts.name))
                    .tempdir()
                    .expect("creating a temporary data directory");
                let p = d.path().to_path_buf();
                dirs.push(d);
                p
            }
        };
        let token_file = match &opts.token {
            Some(token) => {
                let d = tempfile::tempdir().expect("creating a directory for the token file");
                let f = d.path().join("admin.token");
                std::fs::write(&f, format!("{token}\n")).expect("writing the token file");
                dirs.push(d);
                Some(f)
            }
            None => None,
        };
        let mut node = Node {
            data_dir,
            _dirs: dirs,
            token_file,
            child: None,
            events: channel().1,
            ready: ReadyEvent {
                event: String::new(),
                name: opts.name.clone(),
                role: Role::Slave,
                admin: String::new(),
                transports: Vec::new(),
            },
            stomp_port: None,
            admin_port: 0,
            log: Arc::new(Mutex::new(String::new())),
            starts: 0,
            opts,
        };
        let transport = node.opts.transport.clone();
        let admin = node.opts.admin.clone();
        match node.spawn(&transport, &admin) {
            Ok(()) => Ok(node),
            Err(status) => Err(StartFailure {
                status,
                log: node.log(),
            }),
        }
    }

    /// Spawns the process and waits for its first ready line.
    fn spawn(&mut self, transport: &str, admin: &str) -> Result<(), Option<ExitStatus>> {
        self.starts += 1;
        append(
            &self.log,
            &format!(
                "---- start #{} of node {} ----",
                self.starts, self.opts.name
            ),
        );
        let mut cmd = Command::new(bin_path("mqnode"));
        cmd.arg("--name")
            .arg(&self.opts.name)
            .arg("--data")
            .arg(&self.data_dir)
            .arg("--transport")
            .arg(transport)
            .arg("--admin")
            .arg(admin);
        if let Some(f) = &self.token_file {
            cmd.arg("--admin-token-file").arg(f);
        }
        cmd.args(&self.opts.args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().expect("spawning mqnode");
        let (tx, rx) = channel();
        if let Some(out) = child.stdout.take() {
            let log = self.log.clone();
            thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    append(&log, &format!("[stdout] {line}"));
                    if let Ok(ev) = serde_json::from_str::<ReadyEvent>(&line) {
                        // The node may outlive interest in its events.
                        let _ = tx.send(ev);
                    }
                }
            });
        }
        if let Some(err) = child.stderr.take() {
            let log = self.log.clone();
            thread::spawn(move || {
                let mut r = BufReader::new(err);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match r.read_until(b'\n', &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let line = String::from_utf8_lossy(&buf);
                            append(&log, line.trim_end_matches('\n'));
                        }
                    }
                }
            });
        }
        self.child = Some(child);
        self.events = rx;
        match self.events.recv_timeout(READY_TIMEOUT) {
            Ok(ev) => {
                self.take_event(ev);
                Ok(())
            }
            Err(RecvTimeoutError::Disconnected) => {
                // stdout closed: the process is exiting.
                let status = self.wait_exit_quietly(EXIT_TIMEOUT);
                // Reaped, or still running without stdout: kill it either way.
                self.kill_quietly();
                Err(status)
            }
            Err(RecvTimeoutError::Timeout) => {
                self.kill_quietly();
                append(
                    &self.log,
                    &format!("---- no ready line within {READY_TIMEOUT:?}; killed ----"),
                );
                Err(None)
            }
        }
    }

    fn take_event(&mut self, ev: ReadyEvent) {
        if let Some(port) = ev.transports.first().and_then(|t| port_of(t)) {
            self.stomp_port = Some(port);
        }
        if let Some(port) = port_of(&ev.admin) {
            self.admin_port = port;
        }
        self.ready = ev;
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.opts.name
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The latest ready event.
    pub fn ready(&self) -> &ReadyEvent {
        &self.ready
    }

    /// The role of the latest ready event.
    pub fn role(&self) -> Role {
        self.ready.role
    }

    /// `127.0.0.1:PORT` of the STOMP transport. Panics on a node that never served.
    pub fn stomp_addr(&self) -> String {
        match self.stomp_port {
            Some(p) => format!("127.0.0.1:{p}"),
            None => panic!(
                "node {} has no transport: it has not been master (role {})",
                self.opts.name, self.ready.role
            ),
        }
    }

    /// `tcp://127.0.0.1:PORT` of the STOMP transport.
    pub fn stomp_url(&self) -> String {
        format!("tcp://{}", self.stomp_addr())
    }

    /// `http://127.0.0.1:PORT` of the admin API.
    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }

    /// A client of this node's admin API (with the node's token, if any).
    pub fn admin(&self) -> Admin {
        Admin {
            base: self.admin_url(),
            token: self.opts.token.clone(),
        }
    }

    /// Process id of the current process. Panics if it is not running.
    pub fn pid(&self) -> u32 {
        match &self.child {
            Some(c) => c.id(),
            None => panic!("node {} is not running", self.opts.name),
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Everything the node wrote so far, across restarts.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// SIGKILL and reap: a crash.
    pub fn kill(&mut self) {
        assert!(
            self.child.is_some(),
            "node {} is not running",
            self.opts.name
        );
        self.kill_quietly();
        append(&self.log, "---- killed (SIGKILL) ----");
    }

    fn kill_quietly(&mut self) {
        if let Some(mut c) = self.child.take() {
            // Child::kill sends SIGKILL to this child only.
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait (at most [`EXIT_TIMEOUT`]) for the exit status. Panics (after a
    /// SIGKILL) if the node does not exit in time.
    #[track_caller]
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.pid();
        signal(pid, libc::SIGTERM);
        self.wait_exit(EXIT_TIMEOUT)
    }

    /// Waits for the process to exit (after a shutdown request, say). Panics (after a SIGKILL)
    /// if it is still running after `timeout`.
    #[track_caller]
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        match self.wait_exit_quietly(timeout) {
            Some(status) => {
                self.child = None;
                append(&self.log, &format!("---- exited: {status} ----"));
                status
            }
            None => {
                self.kill_quietly();
                panic!(
                    "node {} did not exit within {timeout:?}; killed it. Its output:\n{}",
                    self.opts.name,
                    self.log()
                );
            }
        }
    }

    fn wait_exit_quietly(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let c = self.child.as_mut()?;
        let start = Instant::now();
        loop {
            match c.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if start.elapsed() < timeout => thread::sleep(POLL),
                _ => return None,
            }
        }
    }

    /// Starts the node again with the same data directory and the same ports, so clients can
    /// reconnect to the addresses they knew. A running node is stopped with SIGTERM first.
    #[track_caller]
    pub fn restart(&mut self) {
        if self.is_running() {
            let status = self.terminate();
            assert!(
                status.success(),
                "node {} exited with {status}",
                self.name()
            );
        }
        self.child = None;
        let transport = match self.stomp_port {
            Some(p) => format!("tcp://127.0.0.1:{p}"),
            None => self.opts.transport.clone(),
        };
        let admin = format!("127.0.0.1:{}", self.admin_port);
        // A port just released can be taken briefly by another socket; retry for a while.
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let before = self.log().len();
            match self.spawn(&transport, &admin) {
                Ok(()) => return,
                Err(status) => {
                    let in_use = self.log()[before..].contains("in use");
                    if !in_use || Instant::now() >= deadline {
                        panic!(
                            "node {} did not restart (exit status {status:?}); its output:\n{}",
                            self.opts.name,
                            self.log()
                        );
                    }
                    thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    /// Waits for a new ready event with `role` (e.g. a slave printing `master` on takeover)
    /// and returns it; the node's transport address follows it. Events with other roles are
    /// skipped; events printed before this call and not yet seen count.
    #[track_caller]
    pub fn wait_event(&mut self, role: Role, timeout: Duration) -> ReadyEvent {
        let deadline = Instant::now() + timeout;
        loop {
            match self
                .events
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(ev) => {
                    let hit = ev.role == role;
                    self.take_event(ev);
                    if hit {
                        return self.ready.clone();
                    }
                }
                Err(_) => panic!(
                    "node {} printed no ready event with role {role} within {timeout:?}; its output:\n{}",
                    self.opts.name,
                    self.log()
                ),
            }
        }
    }
}

impl Node {
    /// Takes in the ready events printed since the last look, without waiting; returns the
    /// latest role.
    pub fn refresh(&mut self) -> Role {
        while let Ok(ev) = self.events.try_recv() {
            self.take_event(ev);
        }
        self.ready.role
    }
}

/// A master/slave group: nodes sharing one data directory (a temporary one the group owns).
pub struct HaGroup {
    /// The nodes, in start order.
    pub nodes: Vec<Node>,
    /// The shared data directory; declared after `nodes` so it is removed after they are gone.
    dir: TempDir,
}

impl HaGroup {
    /// Starts `n` nodes named `NAME-0`, `NAME-1`, ... on one data directory, one after the
    /// other: the first becomes master, the others slaves. `args` go to every node.
    #[track_caller]
    pub fn start(name: &str, n: usize, args: &[&str]) -> HaGroup {
        let dir = tempfile::Builder::new()
            .prefix(&format!("mq-{name}-"))
            .tempdir()
            .expect("creating a shared data directory");
        let nodes = (0..n)
            .map(|i| {
                Node::start(
                    NodeOpts::new(&format!("{name}-{i}"))
                        .data(dir.path())
                        .args(args.iter().copied()),
                )
            })
            .collect();
        HaGroup { nodes, dir }
    }

    /// The shared data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Waits until exactly one running node's latest ready event says master (or
    /// standalone), and returns its index.
    #[track_caller]
    pub fn master(&mut self, timeout: Duration) -> usize {
        let mut found = None;
        wait_for(timeout, || {
            let masters: Vec<usize> = self
                .nodes
                .iter_mut()
                .enumerate()
                .filter_map(|(i, n)| {
                    let serving = n.refresh() != Role::Slave;
                    (n.is_running() && serving).then_some(i)
                })
                .collect();
            found = masters.first().copied();
            masters.len() == 1
        });
        found.expect("a master was found")
    }

    /// SIGKILLs node `i`.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// Starts node `i` again (same data directory and ports).
    #[track_caller]
    pub fn restart(&mut self, i: usize) {
        self.nodes[i].restart();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill_quietly();
        if thread::panicking() {
            eprintln!(
                "==== output of node {} ====\n{}==== end of node {} ====",
                self.opts.name,
                self.log(),
                self.opts.name
            );
        }
    }
}

/// The port of `tcp://HOST:PORT` or `http://HOST:PORT`.
fn port_of(uri: &str) -> Option<u16> {
    uri.trim_end_matches('/').rsplit(':').next()?.parse().ok()
}

/// Sends `sig` to a process this harness started.
#[allow(unsafe_code)]
fn signal(pid: u32, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    // SAFETY: kill(2) has no memory effects; `pid` is a child of this process that has not
    // been reaped yet (the caller holds its `Child`), so it cannot name another process.
    let r = unsafe { libc::kill(pid, sig) };
    assert_eq!(
        r,
        0,
        "kill({pid}, {sig}) failed: {}",
        std::io::Error::last_os_error()
    );
}

/// Makes the child die with SIGKILL if the thread that spawned it ends (the test process
/// crashed or was killed), so an interrupted test run leaves no node behind. Nodes must be
/// started from the test's own thread, which lives as long as the test.
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec and only calls prctl(2),
    // which is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Runs `mqnode ARGS` to its exit (at most [`READY_TIMEOUT`]), for tests of refused starts.
/// Panics if it is still running then (and kills it).
#[track_caller]
pub fn run_mqnode(args: &[&str]) -> Output {
    let mut cmd = Command::new(bin_path("mqnode"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    die_with_parent(&mut cmd);
    let mut child = cmd.spawn().expect("spawning mqnode");
    let mut out = child.stdout.take().expect("stdout is piped");
    let mut err = child.stderr.take().expect("stderr is piped");
    let out_t = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_t = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() < READY_TIMEOUT => thread::sleep(POLL),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("mqnode {args:?} was still running after {READY_TIMEOUT:?}");
            }
        }
    };
    Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}

/// A loopback port that is bound (and so in use) while the returned listener lives.
pub fn busy_port() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    let port = l.local_addr().expect("local address").port();
    (l, port)
}

// ---- admin API -----------------------------------------------------------------------------

/// An HTTP answer: status and raw body.
#[derive(Debug, Clone)]
pub struct HttpReply {
    /// Status code.
    pub status: u16,
    /// Body text.
    pub body: String,
}

impl HttpReply {
    /// The body parsed as `T`; panics with the body when it does not parse.
    #[track_caller]
    pub fn json<T: DeserializeOwned>(&self) -> T {
        match serde_json::from_str(&self.body) {
            Ok(v) => v,
            Err(e) => panic!(
                "HTTP {} body is not the expected JSON ({e}): {}",
                self.status, self.body
            ),
        }
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("building an HTTP client")
}

/// One HTTP request; `body` is sent as JSON text as given. Panics if the request fails at the
/// transport level (node not listening).
pub async fn http(
    method: reqwest::Method,
    url: &str,
    body: Option<String>,
    token: Option<&str>,
) -> HttpReply {
    let mut req = http_client().request(method.clone(), url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(b);
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => panic!("{method} {url} failed: {e}"),
    };
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    HttpReply { status, body }
}

/// `GET url`: status and body parsed as `T`.
pub async fn get_json<T: DeserializeOwned>(url: &str, token: Option<&str>) -> (u16, T) {
    let r = http(reqwest::Method::GET, url, None, token).await;
    (r.status, r.json())
}

/// `POST url` with `body` as JSON: status and answer parsed as `T`.
pub async fn post_json<T: DeserializeOwned>(
    url: &str,
    body: &impl Serialize,
    token: Option<&str>,
) -> (u16, T) {
    let text = serde_json::to_string(body).expect("serialising a request body");
    let r = http(reqwest::Method::POST, url, Some(text), token).await;
    (r.status, r.json())
}

/// `DELETE url`: status and answer parsed as `T`.
pub async fn delete_json<T: DeserializeOwned>(url: &str, token: Option<&str>) -> (u16, T) {
    let r = http(reqwest::Method::DELETE, url, None, token).await;
    (r.status, r.json())
}

/// A node's admin API: base URL and bearer token.
#[derive(Debug, Clone)]
pub struct Admin {
    /// `http://HOST:PORT`.
    pub base: String,
    /// Token sent as `Authorization: Bearer`.
    pub token: Option<String>,
}

impl Admin {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET path` (e.g. `/api/v1/queues`).
    pub async fn get(&self, path: &str) -> HttpReply {
        http(
            reqwest::Method::GET,
            &self.url(path),
            None,
            self.token.as_deref(),
        )
        .await
    }

    /// `POST path` with a raw body (`None`: no body).
    pub async fn post(&self, path: &str, body: Option<&str>) -> HttpReply {
        http(
            reqwest::Method::POST,
            &self.url(path),
            body.map(str::to_owned),
            self.token.as_deref(),
        )
        .await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> HttpReply {
        http(
            reqwest::Method::DELETE,
            &self.url(path),
            None,
            self.token.as_deref(),
        )
        .await
    }

    /// `GET path` that must answer 200, parsed as `T`.
    #[track_caller]
    pub fn get_ok<T: DeserializeOwned>(&self, path: &str) -> impl Future<Output = T> {
        let caller = Location::caller();
        async move {
            let r = self.get(path).await;
            assert_eq!(r.status, 200, "GET {path} at {caller}: {}", r.body);
            r.json()
        }
    }

    /// Statistics of queue `name`, `None` when the node does not know it (404).
    pub async fn queue(&self, name: &str) -> Option<QueueStats> {
        let r = self.get(&format!("/api/v1/queues/{name}")).await;
        match r.status {
            200 => Some(r.json()),
            404 => None,
            s => panic!("GET /api/v1/queues/{name}: HTTP {s}: {}", r.body),
        }
    }

    /// Depth of queue `name` (0 when it does not exist).
    pub async fn depth(&self, name: &str) -> u64 {
        self.queue(name).await.map(|q| q.depth).unwrap_or(0)
    }

    /// The node's role according to `GET /api/v1/broker`.
    pub async fn role(&self) -> Role {
        let b: mq_shared::api::BrokerInfo = self.get_ok("/api/v1/broker").await;
        b.role
    }
}

// ---- STOMP ---------------------------------------------------------------------------------

/// Connects with the client's defaults (STOMP 1.2 negotiated, no heart-beats).
pub async fn connect(addr: &str) -> StompClient {
    connect_with(addr, ConnectOptions::default()).await
}

/// Connects with `opts`; panics if the node refuses.
pub async fn connect_with(addr: &str, opts: ConnectOptions) -> StompClient {
    match StompClient::connect(addr, opts).await {
        Ok(c) => c,
        Err(e) => panic!("STOMP connect to {addr} failed: {e}"),
    }
}

/// Subscribes (waiting for the receipt).
pub async fn subscribe(c: &mut StompClient, dest: &str, id: &str, ack: AckMode) {
    subscribe_with(c, dest, id, ack, &[]).await
}

/// Subscribes with extra headers (waiting for the receipt).
pub async fn subscribe_with(
    c: &mut StompClient,
    dest: &str,
    id: &str,
    ack: AckMode,
    headers: &[(&str, &str)],
) {
    if let Err(e) = c.subscribe(dest, id, ack, headers).await {
        panic!("SUBSCRIBE {dest} failed: {e}");
    }
}

/// Sends with a receipt and waits for it.
pub async fn send(
    c: &mut StompClient,
    dest: &str,
    body: impl Into<Bytes>,
    headers: &[(&str, &str)],
) {
    if let Err(e) = c.send(dest, body, headers, true).await {
        panic!("SEND to {dest} failed: {e}");
    }
}

/// Sends a persistent message with a receipt: once this returns, the message is durable.
pub async fn send_persistent(c: &mut StompClient, dest: &str, body: impl Into<Bytes>) {
    send(c, dest, body, &[("persistent", "true")]).await
}

/// Sends `bodies` to `dest` with a receipt each, pipelined in windows of `window` frames:
/// every window is written at once, then its receipts are awaited.
pub async fn send_pipelined(
    c: &mut StompClient,
    dest: &str,
    bodies: impl IntoIterator<Item = Bytes>,
    headers: &[(&str, &str)],
    window: usize,
) {
    let mut ids: Vec<String> = Vec::with_capacity(window);
    let mut bodies = bodies.into_iter().peekable();
    while bodies.peek().is_some() {
        for body in bodies.by_ref().take(window) {
            let id = c.next_receipt_id();
            let mut f = Frame::new(StompCommand::Send)
                .with_header("destination", dest)
                .with_header("receipt", id.as_str())
                .with_body(body);
            for (k, v) in headers {
                f.push_header(*k, *v);
            }
            c.queue_frame(&f);
            ids.push(id);
        }
        if let Err(e) = c.flush().await {
            panic!("writing SEND frames to {dest} failed: {e}");
        }
        for id in ids.drain(..) {
            match tokio::time::timeout(SOON, c.wait_receipt(&id)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => panic!("no receipt {id} for a SEND to {dest}: {e}"),
                Err(_) => panic!("no receipt {id} for a SEND to {dest} within {SOON:?}"),
            }
        }
    }
}

/// The next MESSAGE (or other non-receipt frame); panics if none arrives within `timeout`.
pub async fn recv(c: &mut StompClient, timeout: Duration) -> Frame {
    match c.recv_timeout(timeout).await {
        Ok(Some(f)) => f,
        Ok(None) => panic!("no frame within {timeout:?}"),
        Err(e) => panic!("receiving failed: {e}"),
    }
}

/// Exactly `n` frames, each within `timeout` of the previous one.
pub async fn drain(c: &mut StompClient, n: usize, timeout: Duration) -> Vec<Frame> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        match c.recv_timeout(timeout).await {
            Ok(Some(f)) => got.push(f),
            Ok(None) => panic!(
                "got {} of {n} frames; nothing more within {timeout:?}",
                got.len()
            ),
            Err(e) => panic!("got {} of {n} frames, then: {e}", got.len()),
        }
    }
    got
}

/// Asserts that no frame arrives within `d`.
pub async fn expect_nothing(c: &mut StompClient, d: Duration) {
    match c.recv_timeout(d).await {
        Ok(None) => {}
        Ok(Some(f)) => panic!(
            "expected nothing, got {} {:?} body {:?}",
            f.command,
            f.headers,
            body_str(&f)
        ),
        Err(e) => panic!("expected nothing, got an error: {e}"),
    }
}

/// Acknowledges a message (no receipt).
pub async fn ack(c: &mut StompClient, m: &Frame) {
    if let Err(e) = c.ack(m).await {
        panic!("ACK failed: {e}");
    }
}

/// Acknowledges a message and waits for the receipt of the ACK.
pub async fn ack_receipt(c: &mut StompClient, m: &Frame) {
    let mut f = c.ack_frame(m).expect("an ACK frame for this message");
    let id = c.next_receipt_id();
    f.push_header("receipt", id.as_str());
    c.send_frame(f).await.expect("writing ACK");
    c.wait_receipt(&id).await.expect("receipt for ACK");
}

/// The body as UTF-8 (lossy).
pub fn body_str(f: &Frame) -> String {
    String::from_utf8_lossy(&f.body).into_owned()
}

/// Bodies of `frames` as UTF-8.
pub fn bodies(frames: &[Frame]) -> Vec<String> {
    frames.iter().map(body_str).collect()
}

/// Whether a client error is the end of the connection (closed, reset, or an ERROR frame).
pub fn is_closed(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Closed | ClientError::Io(_) | ClientError::Server { .. }
    )
}

// ---- raw STOMP -----------------------------------------------------------------------------

/// What a raw connection read next.
#[derive(Debug)]
pub enum RawEvent {
    /// A frame.
    Frame(Frame),
    /// A heart-beat (one EOL between frames).
    HeartBeat,
    /// The server closed the connection (EOF or reset).
    Closed,
    /// Nothing within the timeout.
    Timeout,
}

/// A STOMP connection at the byte level: sends exactly the bytes a test gives it.
pub struct RawConn {
    stream: TcpStream,
    buf: BytesMut,
    decoder: Decoder,
    version: Version,
    pending: VecDeque<Item>,
}

impl RawConn {
    /// Opens a TCP connection; no STOMP is spoken yet.
    pub async fn open(addr: &str) -> RawConn {
        let stream = match TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(e) => panic!("TCP connect to {addr} failed: {e}"),
        };
        let _ = stream.set_nodelay(true);
        RawConn {
            stream,
            buf: BytesMut::with_capacity(64 * 1024),
            decoder: Decoder::new(Limits {
                max_frame_size: 1 << 30,
                max_headers: 100_000,
                max_header_length: 1 << 20,
            }),
            version: Version::V1_2,
            pending: VecDeque::new(),
        }
    }

    /// Opens a connection and sends CONNECT with `accept-version` (`None`: a 1.0 CONNECT
    /// without the header) and `heart-beat`; returns the CONNECTED frame.
    pub async fn connect(
        addr: &str,
        accept_version: Option<&str>,
        heart_beat: &str,
    ) -> (RawConn, Frame) {
        let mut c = RawConn::open(addr).await;
        let mut f = Frame::new(StompCommand::Connect).with_header("host", "localhost");
        if let Some(v) = accept_version {
            f.push_header("accept-version", v);
            f.push_header("heart-beat", heart_beat);
        }
        c.send_frame(&f).await;
        let connected = c.frame(SOON).await;
        assert_eq!(
            connected.command,
            StompCommand::Connected,
            "expected CONNECTED, got {connected:?}"
        );
        c.version = match connected.header("version") {
            Some("1.1") => Version::V1_1,
            Some("1.2") => Version::V1_2,
            _ => Version::V1_0,
        };
        c.decoder.set_version(c.version);
        (c, connected)
    }

    /// Writes raw bytes. Errors are returned, not fatal: a server that already closed is
    /// something tests of bad input expect.
    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// Encodes and writes a frame with the negotiated version's escaping; panics on error.
    pub async fn send_frame(&mut self, f: &Frame) {
        let mut b = BytesMut::new();
        encode(f, self.version, &mut b);
        if let Err(e) = self.write(&b).await {
            panic!("writing {} failed: {e}", f.command);
        }
    }

    /// Closes our sending side (the server sees EOF) and keeps reading.
    pub async fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown().await;
    }

    /// The next frame, heart-beat, close or timeout.
    pub async fn next(&mut self, timeout: Duration) -> RawEvent {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(item) = self.pending.pop_front() {
                return match item {
                    Item::Frame(f) => RawEvent::Frame(f),
                    Item::HeartBeat => RawEvent::HeartBeat,
                };
            }
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(item)) => {
                    self.pending.push_back(item);
                    continue;
                }
                Ok(None) => {}
                Err(e) => panic!("the server sent an invalid frame: {e}"),
            }
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Err(_) => return RawEvent::Timeout,
                Ok(Ok(0)) | Ok(Err(_)) => return RawEvent::Closed,
                Ok(Ok(_)) => {}
            }
        }
    }

    /// The next frame, skipping heart-beats; panics on close or timeout.
    pub async fn frame(&mut self, timeout: Duration) -> Frame {
        loop {
            match self.next(timeout).await {
                RawEvent::Frame(f) => return f,
                RawEvent::HeartBeat => {}
                other => panic!("expected a frame, got {other:?}"),
            }
        }
    }

    /// Expects an ERROR frame with a non-empty `message` header (skipping other frames and
    /// heart-beats), then the server closing the connection, all within `timeout`. Returns the
    /// ERROR frame.
    pub async fn expect_error_then_close(&mut self, timeout: Duration) -> Frame {
        let deadline = tokio::time::Instant::now() + timeout;
        let left = || deadline.saturating_duration_since(tokio::time::Instant::now());
        let error = loop {
            match self.next(left()).await {
                RawEvent::Frame(f) if f.command == StompCommand::Error => break f,
                RawEvent::Frame(_) | RawEvent::HeartBeat => {}
                other => panic!("expected an ERROR frame, got {other:?}"),
            }
        };
        assert!(
            error.header("message").is_some_and(|m| !m.is_empty()),
            "ERROR frame without a message header: {error:?}"
        );
        self.expect_closed(left()).await;
        error
    }

    /// Expects the server to close the connection within `timeout`; frames and heart-beats
    /// before the close are skipped and returned.
    pub async fn expect_closed(&mut self, timeout: Duration) -> Vec<Frame> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut frames = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                RawEvent::Closed => return frames,
                RawEvent::Frame(f) => frames.push(f),
                RawEvent::HeartBeat => {}
                RawEvent::Timeout => panic!(
                    "the server did not close the connection within {timeout:?} (frames meanwhile: {frames:?})"
                ),
            }
        }
    }
}

/// A body of `len` bytes whose start spells `i` (so order can be checked) padded with `.`.
pub fn numbered_body(i: usize, len: usize) -> Bytes {
    let mut b = format!("{i:08}").into_bytes();
    b.resize(len.max(8), b'.');
    Bytes::from(b)
}

/// The number at the start of a [`numbered_body`].
pub fn body_number(f: &Frame) -> usize {
    let s = std::str::from_utf8(&f.body[..8.min(f.body.len())]).unwrap_or("");
    s.parse()
        .unwrap_or_else(|_| panic!("body does not start with a number: {:?}", body_str(f)))
}

/// Re-exports for tests.
pub use mq_shared::api;
pub use mq_shared::client;
pub use mq_shared::frame;
