//! [`Node`]: one spawned `mqnode`, started from [`NodeOpts`]. It learns its ports from the JSON
//! ready line, keeps later ready events (slave → master) for [`Node::wait_event`], keeps the
//! process's output for [`Node::log`] (printed when a test fails), and is killed and reaped
//! when dropped.
//!
//! Every node gets its own temporary data directory (unless given one), and ports come from
//! port 0 and are read back from the ready line. A node dies with the thread that started it
//! (so an interrupted run leaves none behind): start nodes from the test's own thread, not from
//! a helper thread that ends before the test.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use mq_shared::api::{ReadyEvent, Role};
use tempfile::TempDir;

use crate::process::{
    Log, append, limit_open_files, mqnode_command, mqnode_command_in, read_log, signal, wait_exit,
};
use crate::{Admin, EXIT_TIMEOUT, READY_TIMEOUT, poll_until};

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
    /// Open-files limit (`RLIMIT_NOFILE`) of the process; `None` inherits the test's.
    pub open_files: Option<u64>,
    /// The lab host (network namespace) the process runs in; `None`: the test's own. Its
    /// loopback addresses (STOMP, admin) are then that host's: reach them from inside it
    /// ([`crate::netns::HostRuntime`]).
    pub host: Option<crate::netns::Host>,
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
            open_files: None,
            host: None,
        }
    }

    /// Runs the node inside lab host `host` (`ip netns exec`), with its own loopback.
    pub fn in_host(mut self, host: &crate::netns::Host) -> NodeOpts {
        self.host = Some(host.clone());
        self
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

    /// Runs the node with at most `n` open file descriptors (`ulimit -n`).
    pub fn open_files(mut self, n: u64) -> NodeOpts {
        self.open_files = Some(n);
        self
    }

    /// Protects the admin API with `token`.
    pub fn token(mut self, token: &str) -> NodeOpts {
        self.token = Some(token.to_owned());
        self
    }
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
    /// The token the node generated (its ready line names the file), without a given one.
    generated_token: Option<String>,
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
                admin_token_file: None,
            },
            generated_token: None,
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
        let mut cmd = match &self.opts.host {
            Some(h) => mqnode_command_in(h, ["--name", &self.opts.name]),
            None => mqnode_command(["--name", &self.opts.name]),
        };
        cmd.arg("--data")
            .arg(&self.data_dir)
            .args(["--transport", transport, "--admin", admin]);
        if let Some(f) = &self.token_file {
            cmd.arg("--admin-token-file").arg(f);
        }
        if let Some(n) = self.opts.open_files {
            limit_open_files(&mut cmd, n);
        }
        cmd.args(&self.opts.args).env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        );
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
        // Says when stderr has been read to its end: a failed start's log is complete then.
        let (stderr_done, stderr_read) = channel::<()>();
        if let Some(err) = child.stderr.take() {
            let log = self.log.clone();
            thread::spawn(move || {
                let _done = stderr_done;
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
                let status = self.child.as_mut().and_then(|c| wait_exit(c, EXIT_TIMEOUT));
                // Reaped, or still running without stdout: kill it either way.
                self.kill_quietly();
                // Its last words (the reason it stopped) are in the log once stderr ends.
                let _ = stderr_read.recv_timeout(EXIT_TIMEOUT);
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
        if self.opts.token.is_none()
            && let Some(f) = &ev.admin_token_file
        {
            // A node always has an admin token: without one given, it makes its own.
            self.generated_token = std::fs::read_to_string(f)
                .ok()
                .map(|t| t.trim().to_string());
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

    /// The first `ws://` transport of the latest ready event; panics when the node has none.
    pub fn ws_url(&self) -> String {
        let transports = &self.ready.transports;
        transports
            .iter()
            .find(|t| t.starts_with("ws://"))
            .cloned()
            .unwrap_or_else(|| panic!("no ws:// transport in {transports:?}"))
    }

    /// `http://127.0.0.1:PORT` of the admin API.
    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }

    /// A client of this node's admin API (with the node's token, if any).
    pub fn admin(&self) -> Admin {
        Admin {
            base: self.admin_url(),
            token: self.token(),
        }
    }

    /// The admin token: the one given in [`NodeOpts::token`], else the one the node generated.
    pub fn token(&self) -> Option<String> {
        self.opts
            .token
            .clone()
            .or_else(|| self.generated_token.clone())
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
        read_log(&self.log)
    }

    /// SIGSTOP: the process is frozen (its sockets stay open) until [`Node::resume`].
    pub fn pause(&self) {
        signal(self.pid(), rustix::process::Signal::STOP);
    }

    /// SIGCONT after [`Node::pause`].
    pub fn resume(&self) {
        signal(self.pid(), rustix::process::Signal::CONT);
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
        signal(pid, rustix::process::Signal::TERM);
        self.wait_exit(EXIT_TIMEOUT)
    }

    /// Waits for the process to exit (after a shutdown request, say). Panics (after a SIGKILL)
    /// if it is still running after `timeout`.
    #[track_caller]
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        match self.child.as_mut().and_then(|c| wait_exit(c, timeout)) {
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
        let mut outcome = Err(None);
        poll_until(READY_TIMEOUT, || {
            let before = self.log().len();
            outcome = self.spawn(&transport, &admin);
            // A port just released can be taken briefly by another socket: retry only that.
            outcome.is_ok() || !self.log()[before..].contains("in use")
        });
        if let Err(status) = outcome {
            panic!(
                "node {} did not restart (exit status {status:?}); its output:\n{}",
                self.opts.name,
                self.log()
            );
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

    /// Takes in the ready events printed since the last look, without waiting; returns the
    /// latest role.
    pub fn refresh(&mut self) -> Role {
        while let Ok(ev) = self.events.try_recv() {
            self.take_event(ev);
        }
        self.ready.role
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
