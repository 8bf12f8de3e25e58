//! A real ZooKeeper server for tests, and group members as child processes.
//!
//! [`ZooKeeper::start`] runs the Debian package's server (`/usr/share/java/zookeeper.jar`,
//! `org.apache.zookeeper.server.ZooKeeperServerMain`, standalone) on a free loopback port with
//! its own temporary data directory and configuration; [`ZooKeeper::start_in`] runs one inside
//! a lab host ([`crate::netns`]) on that host's address. Both answer only the four-letter words
//! the tests use, open no admin server, and are killed (by pid) with their directory removed
//! when dropped. The server's tick is 100 ms, so a session expires within 100 ms of its
//! timeout.
//!
//! [`Member`] runs the `zk_member` example (a `mqnode::ha::zk::ZkMember` printing its role
//! transitions as JSON lines) on loopback or inside a lab host, and can kill, pause and resume
//! it. Every address a server is asked at or a member is given goes through
//! [`crate::netns::guard`].
//!
//! Needs a JRE and the `zookeeper` package; `scripts/test.sh` installs them.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::netns::{self, Host, Origin};
use crate::process::{Log, append, die_with_parent, read_log, signal, wait_exit};
use crate::{free_port, poll_until};

/// The server's jar from the Debian package (its manifest names the other jars).
const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";
/// A logger for the server's messages (on stderr), from the same dependencies.
const SLF4J_SIMPLE_JAR: &str = "/usr/share/java/slf4j-simple.jar";
/// How long a server may take to serve (a JVM starting on a busy machine).
pub const ZK_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// The client port of a server inside a lab host.
pub const ZK_PORT: u16 = 2181;
/// How long one four-letter-word exchange may take.
const FOUR_LETTER_TIMEOUT: Duration = Duration::from_secs(2);

/// Milliseconds since the Unix epoch of `t`.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A running ZooKeeper server, killed and removed when dropped.
#[derive(Debug)]
pub struct ZooKeeper {
    child: Child,
    addr: SocketAddr,
    host: Option<Host>,
    log: Log,
    _dir: tempfile::TempDir,
}

impl ZooKeeper {
    /// Starts a server on a free loopback port and waits until it serves.
    #[track_caller]
    pub fn start() -> ZooKeeper {
        // The port is free when picked but could be taken before the JVM binds it.
        let mut last = String::new();
        for _ in 0..3 {
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            match ZooKeeper::spawn(addr, None) {
                Ok(zk) => return zk,
                Err(e) => last = e,
            }
        }
        panic!("ZooKeeper did not start on loopback:\n{last}");
    }

    /// Starts a server inside `host`, on its address and [`ZK_PORT`], and waits until it
    /// serves.
    #[track_caller]
    pub fn start_in(host: &Host) -> ZooKeeper {
        let addr = SocketAddr::new(IpAddr::V4(host.addr()), ZK_PORT);
        ZooKeeper::spawn(addr, Some(host.clone()))
            .unwrap_or_else(|e| panic!("ZooKeeper did not start in host {}:\n{e}", host.name()))
    }

    fn spawn(addr: SocketAddr, host: Option<Host>) -> Result<ZooKeeper, String> {
        for jar in [ZOOKEEPER_JAR, SLF4J_SIMPLE_JAR] {
            if !Path::new(jar).is_file() {
                return Err(format!(
                    "{jar} is missing: install the zookeeper package (scripts/test.sh does)"
                ));
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("mq-zk-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let data = dir.path().join("data");
        std::fs::create_dir(&data).map_err(|e| e.to_string())?;
        let cfg = dir.path().join("zoo.cfg");
        // Standalone; no admin server (it would listen on every address); the four-letter words
        // the harness asks; sessions from 200 ms to a minute.
        let text = format!(
            "tickTime=100\ndataDir={}\nclientPort={}\nclientPortAddress={}\n\
             minSessionTimeout=200\nmaxSessionTimeout=60000\nadmin.enableServer=false\n\
             4lw.commands.whitelist=ruok,srvr,dump\nmaxClientCnxns=0\n",
            data.display(),
            addr.port(),
            addr.ip()
        );
        std::fs::write(&cfg, text).map_err(|e| e.to_string())?;
        let mut cmd = match &host {
            Some(h) => h.command("java"),
            None => Command::new("java"),
        };
        cmd.args([
            "-Xmx128m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Djava.net.preferIPv4Stack=true",
            "-Dzookeeper.admin.enableServer=false",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
            "-cp",
            &format!("{ZOOKEEPER_JAR}:{SLF4J_SIMPLE_JAR}"),
            "org.apache.zookeeper.server.ZooKeeperServerMain",
        ])
        .arg(&cfg)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        die_with_parent(&mut cmd);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot run java (install a JRE; scripts/test.sh does): {e}"))?;
        let log: Log = Arc::default();
        drain(child.stdout.take(), &log);
        drain(child.stderr.take(), &log);
        let mut zk = ZooKeeper {
            child,
            addr,
            host,
            log,
            _dir: dir,
        };
        let mut exited = false;
        let ready = poll_until(ZK_READY_TIMEOUT, || {
            if matches!(zk.child.try_wait(), Ok(Some(_))) {
                exited = true;
                return true;
            }
            zk.four_letter("srvr")
                .is_ok_and(|a| a.contains("Mode: standalone"))
        });
        if exited || !ready {
            let why = if exited {
                "exited"
            } else {
                "did not answer in time"
            };
            return Err(format!("ZooKeeper at {addr} {why}:\n{}", read_log(&zk.log)));
        }
        Ok(zk)
    }

    /// Its client address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The host it runs in (`None`: loopback).
    pub fn host(&self) -> Option<&Host> {
        self.host.as_ref()
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The connect string for a client at `from`, through the connection guard (panics if
    /// refused).
    #[track_caller]
    pub fn connect_string(&self, from: Origin<'_>) -> String {
        match netns::guard(from, self.addr) {
            Ok(a) => a.to_string(),
            Err(e) => panic!("{e}"),
        }
    }

    /// Asks a four-letter word (from loopback, or from inside the server's own host) and
    /// returns the answer.
    pub fn four_letter(&self, word: &str) -> std::io::Result<String> {
        four_letter(self.addr, self.host.as_ref(), word)
    }

    /// The sessions the server holds now (its `dump`).
    pub fn sessions(&self) -> std::io::Result<BTreeSet<i64>> {
        Ok(parse_sessions(&self.four_letter("dump")?))
    }

    /// Watches session `id` from now on (polling `dump` every 10 ms on a thread, for at most a
    /// minute or until the returned track is dropped) until the server no longer lists it.
    pub fn track_session(&self, id: i64) -> SessionTrack {
        let state = Arc::new(Mutex::new(Track::default()));
        let (addr, host) = (self.addr, self.host.clone());
        let s = state.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(60) && Arc::strong_count(&s) > 1 {
                if let Ok(dump) = four_letter(addr, host.as_ref(), "dump") {
                    let now = SystemTime::now();
                    let mut t = s.lock().unwrap_or_else(|e| e.into_inner());
                    if parse_sessions(&dump).contains(&id) {
                        t.last_alive = Some(now);
                    } else if t.last_alive.is_some() {
                        t.gone = Some(now);
                        return;
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        SessionTrack(state)
    }

    /// Everything the server printed so far.
    pub fn output(&self) -> String {
        read_log(&self.log)
    }
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- ZooKeeper at {} (output) ---\n{}",
                self.addr,
                read_log(&self.log)
            );
        }
    }
}

/// Asks the server at `addr` (inside `host`, or on loopback) a four-letter word.
fn four_letter(addr: SocketAddr, host: Option<&Host>, word: &str) -> std::io::Result<String> {
    let mut c: TcpStream = match host {
        Some(h) => h.connect(addr, FOUR_LETTER_TIMEOUT)?,
        None => netns::connect(addr, FOUR_LETTER_TIMEOUT)?,
    };
    c.set_read_timeout(Some(FOUR_LETTER_TIMEOUT))?;
    c.set_write_timeout(Some(FOUR_LETTER_TIMEOUT))?;
    c.write_all(word.as_bytes())?;
    let mut s = String::new();
    c.read_to_string(&mut s)?;
    Ok(s)
}

/// Session ids (`0x…`) in a `dump` answer: the session tracker's expiry sets list every live
/// session, the ephemeral nodes' part those that own nodes. Its connections part is left out:
/// a connection of a session that expired can linger there (a paused client never closes it).
fn parse_sessions(dump: &str) -> BTreeSet<i64> {
    let sessions = dump.split("Connections dump").next().unwrap_or(dump);
    sessions
        .split_whitespace()
        .filter_map(|w| w.trim_end_matches(':').strip_prefix("0x"))
        .filter_map(|h| u64::from_str_radix(h, 16).ok())
        .map(|v| v as i64)
        .collect()
}

#[derive(Debug, Default)]
struct Track {
    last_alive: Option<SystemTime>,
    gone: Option<SystemTime>,
}

/// What [`ZooKeeper::track_session`] saw of one session.
#[derive(Debug)]
pub struct SessionTrack(Arc<Mutex<Track>>);

impl SessionTrack {
    /// The last time the server listed the session.
    pub fn last_alive(&self) -> Option<SystemTime> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).last_alive
    }

    /// The first time the server no longer listed it (after listing it once).
    pub fn gone(&self) -> Option<SystemTime> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).gone
    }
}

/// Reads `pipe` line by line into `log` on a thread.
fn drain<R: Read + Send + 'static>(pipe: Option<R>, log: &Log) {
    let Some(pipe) = pipe else { return };
    let log = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            append(&log, &line);
        }
    });
}

/// Path of an example binary of this crate, next to the running test binary
/// (`target/<profile>/examples/NAME`).
pub fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test binary>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let path = profile_dir.join("examples").join(name);
    if !path.is_file() {
        panic!(
            "{} not found: build it with cargo build -p mq-tests --examples (scripts/test.sh does)",
            path.display()
        );
    }
    path
}

/// How a [`Member`] joins.
#[derive(Clone, Debug)]
pub struct MemberOpts {
    /// Member name.
    pub name: String,
    /// Group path.
    pub path: String,
    /// Weight.
    pub weight: u32,
    /// Quorum for an election.
    pub quorum: usize,
    /// Session timeout asked of ZooKeeper.
    pub session_timeout: Duration,
    /// Journal position at start.
    pub position: u64,
}

impl MemberOpts {
    /// Member `name` of group `/mq/test`: weight 1, quorum 1, a 2000 ms session, position 0.
    pub fn new(name: &str) -> MemberOpts {
        MemberOpts {
            name: name.to_string(),
            path: "/mq/test".into(),
            weight: 1,
            quorum: 1,
            session_timeout: Duration::from_millis(2000),
            position: 0,
        }
    }

    /// With this weight.
    pub fn weight(mut self, w: u32) -> MemberOpts {
        self.weight = w;
        self
    }

    /// With this quorum.
    pub fn quorum(mut self, q: usize) -> MemberOpts {
        self.quorum = q;
        self
    }

    /// With this starting position.
    pub fn position(mut self, p: u64) -> MemberOpts {
        self.position = p;
        self
    }
}

/// One line a member printed, with when the harness read it.
#[derive(Clone, Debug)]
pub struct Event {
    /// The JSON object.
    pub json: Value,
    /// When it arrived.
    pub at: SystemTime,
}

/// A `zk_member` process, killed when dropped (its output printed if the test failed).
#[derive(Debug)]
pub struct Member {
    name: String,
    child: Child,
    events: Arc<Mutex<Vec<Event>>>,
    log: Log,
    dir: tempfile::TempDir,
    killed: bool,
}

impl Member {
    /// Starts a member of `zk`'s group at `from` (loopback, or inside a lab host), with the
    /// server's address through the connection guard.
    #[track_caller]
    pub fn start(zk: &ZooKeeper, from: Origin<'_>, opts: MemberOpts) -> Member {
        let address = zk.connect_string(from);
        let dir = tempfile::Builder::new()
            .prefix("mq-zkm-")
            .tempdir()
            .expect("a temporary directory");
        let exe = example_path("zk_member");
        let mut cmd = match from {
            Origin::Host(h) => h.command(&exe),
            Origin::Root => Command::new(&exe),
        };
        let position = dir.path().join("position");
        cmd.args(["--zk", &address, "--name", &opts.name, "--path", &opts.path])
            .args(["--weight", &opts.weight.to_string()])
            .args(["--quorum", &opts.quorum.to_string()])
            .args([
                "--session-timeout-ms",
                &opts.session_timeout.as_millis().to_string(),
            ])
            .arg("--position-file")
            .arg(&position)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        die_with_parent(&mut cmd);
        std::fs::write(&position, opts.position.to_string()).expect("writing the position file");
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", exe.display()));
        let mut m = Member {
            name: opts.name.clone(),
            child,
            events: Arc::default(),
            log: Arc::default(),
            dir,
            killed: false,
        };
        let events = m.events.clone();
        let log = m.log.clone();
        if let Some(out) = m.child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    append(&log, &line);
                    if let Ok(json) = serde_json::from_str::<Value>(&line) {
                        let at = SystemTime::now();
                        events
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(Event { json, at });
                    }
                }
            });
        }
        drain(m.child.stderr.take(), &m.log);
        m
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sets the position it publishes at the next election.
    pub fn set_position(&self, p: u64) {
        let file = self.dir.path().join("position");
        let tmp = self.dir.path().join("position.tmp");
        std::fs::write(&tmp, p.to_string())
            .and_then(|()| std::fs::rename(&tmp, &file))
            .expect("writing the position file");
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Its role events so far.
    pub fn roles(&self) -> Vec<Event> {
        self.events()
            .into_iter()
            .filter(|e| e.json["event"] == "role")
            .collect()
    }

    /// The roles it reported after its first `seen` role events.
    pub fn roles_after(&self, seen: usize) -> Vec<Value> {
        self.roles()
            .into_iter()
            .skip(seen)
            .map(|e| e.json)
            .collect()
    }

    /// Its latest role event.
    pub fn role(&self) -> Option<Value> {
        self.roles().pop().map(|e| e.json)
    }

    /// The epoch, if its latest role is master.
    pub fn master_epoch(&self) -> Option<u64> {
        self.role()
            .filter(|r| r["role"] == "master")
            .and_then(|r| r["epoch"].as_u64())
    }

    /// Waits until a role event after the first `after` ones satisfies `pred`; returns it.
    /// Panics (with the member's output) after `timeout`.
    #[track_caller]
    pub fn wait_role(
        &self,
        after: usize,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Event {
        let mut found = None;
        let ok = poll_until(timeout, || {
            found = self.roles().into_iter().skip(after).find(|e| pred(&e.json));
            found.is_some()
        });
        match found {
            Some(e) if ok => e,
            _ => panic!(
                "member {}: no such role within {timeout:?}; output:\n{}",
                self.name,
                read_log(&self.log)
            ),
        }
    }

    /// The session id it reported last.
    pub fn session(&self) -> Option<i64> {
        self.events()
            .iter()
            .rev()
            .find_map(|e| e.json["session"].as_str().map(str::to_string))
            .and_then(|s| i64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
    }

    /// Kills it with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.killed = true;
    }

    /// Stops it with SIGSTOP.
    pub fn pause(&self) {
        signal(self.pid(), rustix::process::Signal::STOP);
    }

    /// Resumes it with SIGCONT.
    pub fn resume(&self) {
        signal(self.pid(), rustix::process::Signal::CONT);
    }

    /// Asks it to leave (SIGTERM) and waits for its exit; whether it exited cleanly.
    pub fn leave(&mut self) -> bool {
        signal(self.pid(), rustix::process::Signal::TERM);
        let st = wait_exit(&mut self.child, Duration::from_secs(10));
        self.killed = true;
        st.is_some_and(|s| s.success())
    }

    /// Everything it printed.
    pub fn output(&self) -> String {
        read_log(&self.log)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if !self.killed {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- member {} (output) ---\n{}",
                self.name,
                read_log(&self.log)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_read_from_a_dump_but_not_its_connections() {
        let dump = "SessionTracker dump:\nSession Sets (2)/(2):\n0 expire at Thu Jan 01:\n\
                    1 expire at Fri Jan 02 10:00:00 UTC 2026:\n\t0x1000a2b3c4d0000\n\t0x1000a2b3c4d0001\n\
                    ephemeral nodes dump:\nSessions with Ephemerals (1):\n0x1000a2b3c4d0000:\n\
                    \t/mq/test/members/member-0000000000\nConnections dump:\n\
                    Connections Sets (1)/(1):\n1 expire at Fri Jan 02:\n\
                    \tip: /127.0.0.1:47600 sessionId: 0x1000a2b3c4d0009\n";
        let s = parse_sessions(dump);
        assert_eq!(
            s.into_iter().collect::<Vec<_>>(),
            vec![0x1000a2b3c4d0000, 0x1000a2b3c4d0001]
        );
    }
}
