//! "Hosts" as network namespaces, and the one connection guard of the harness.
//!
//! A [`Lab`] is a set of namespaces the test creates itself: one holding a bridge `br0`, and
//! one per [`Host`], joined to the bridge by a veth pair (`eth0` in the host, `p<N>` on the
//! bridge). Each host has one address `10.233.L.N/24` (L per lab, N per host) that exists only
//! inside these namespaces, its own loopback, and no other route: no default route, so nothing
//! run inside a host can reach any address but its lab's, even by mistake. The root namespace
//! is never touched (every interface is created inside its namespace) and has no route to a
//! lab either.
//!
//! ```text
//!   [mqt-P-L-zk] eth0 10.233.L.1 ─┐
//!   [mqt-P-L-a]  eth0 10.233.L.2 ─┼─ p1 p2 p3 ── br0 [mqt-P-L-br]
//!   [mqt-P-L-b]  eth0 10.233.L.3 ─┘
//! ```
//!
//! Faults, all inside the namespaces: [`Host::cut`] drops every packet between two hosts
//! (nft rules in the first host's namespace, both directions: the peers see silence, not a
//! reset), [`Host::lose`] drops a share of them at random (nft `numgen`), [`Host::delay`] delays
//! every packet leaving a host (tc netem, where the kernel has it), and [`Host::heal`] undoes a
//! cut or a loss. Processes run in a host through [`Host::command`] (`ip netns exec`).
//!
//! Dropping the lab deletes every namespace (and so every veth and the bridge), on panic too;
//! namespaces left by a test process that was killed are swept when the next lab is made.
//! Drop a lab after the processes running in it (declare it first).
//!
//! [`guard`] is the one check every test connection and every address handed to a process
//! goes through: loopback, or an address of a live host of this harness reached from a host of
//! the same lab along its own `eth0`; anything else is refused, and so is a lab address from
//! the root namespace (it has no route there: such a packet would leave by the default route).
//! Needs root, `ip` (iproute2) and `nft` (nftables); `scripts/test.sh` installs them.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

/// Prefix of every namespace this harness creates: `mqt-<pid>-<lab>-<host>`.
const PREFIX: &str = "mqt-";
/// The nft table the fault rules live in, inside a host's namespace.
const TABLE: &str = "mqtest";

/// Labs made by this process (the third octet of their addresses).
static LABS: AtomicU32 = AtomicU32::new(0);

/// Addresses of live hosts: address → (lab id, namespace).
static ADDRESSES: LazyLock<Mutex<HashMap<Ipv4Addr, (u32, String)>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn addresses() -> std::sync::MutexGuard<'static, HashMap<Ipv4Addr, (u32, String)>> {
    ADDRESSES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why a lab operation failed.
#[derive(Debug)]
pub enum NetnsError {
    /// A command could not run or failed.
    Command {
        /// The command line.
        command: String,
        /// Its error output (or why it could not start).
        error: String,
    },
    /// The kernel lacks a feature (e.g. the netem queueing discipline).
    Unsupported(String),
}

impl fmt::Display for NetnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetnsError::Command { command, error } => write!(f, "{command}: {error}"),
            NetnsError::Unsupported(what) => write!(f, "not supported by this kernel: {what}"),
        }
    }
}

impl std::error::Error for NetnsError {}

/// Runs `program args` (with `stdin` as its input when given) to its end; its stdout.
fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String, NetnsError> {
    use std::io::Write;
    use std::process::Stdio;
    let command = format!("{program} {}", args.join(" "));
    let err = |error: String| NetnsError::Command {
        command: command.clone(),
        error,
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err(format!("cannot run (install iproute2 and nftables): {e}")))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| err(e.to_string()))?;
    }
    let out = child.wait_with_output().map_err(|e| err(e.to_string()))?;
    if !out.status.success() {
        return Err(err(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// [`run`] that panics with the command and its error.
#[track_caller]
fn must(program: &str, args: &[&str]) -> String {
    run(program, args, None).unwrap_or_else(|e| panic!("{e}"))
}

/// Deletes the namespaces of this harness whose creating process is gone.
fn sweep() {
    let Ok(list) = run("ip", &["netns", "list"], None) else {
        return;
    };
    for line in list.lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = run("ip", &["netns", "del", name], None);
        }
    }
}

/// A set of hosts on one bridge, removed when dropped.
#[derive(Debug)]
pub struct Lab {
    id: u32,
    bridge: String,
    hosts: Vec<Host>,
}

impl Lab {
    /// Creates the lab's bridge namespace. Panics if namespaces cannot be made (not root, no
    /// iproute2).
    pub fn new() -> Lab {
        sweep();
        let id = LABS.fetch_add(1, Ordering::Relaxed) % 256;
        let bridge = format!("{PREFIX}{}-{id}-br", std::process::id());
        must("ip", &["netns", "add", &bridge]);
        let lab = Lab {
            id,
            bridge,
            hosts: Vec::new(),
        };
        must("ip", &["-n", &lab.bridge, "link", "set", "lo", "up"]);
        must(
            "ip",
            &["-n", &lab.bridge, "link", "add", "br0", "type", "bridge"],
        );
        must("ip", &["-n", &lab.bridge, "link", "set", "br0", "up"]);
        lab
    }

    /// Adds a host named `name` (lowercase letters and digits) with the next address.
    pub fn host(&mut self, name: &str) -> Host {
        assert!(
            !name.is_empty()
                && name.len() <= 12
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
            "host name {name:?}: 1 to 12 lowercase letters or digits"
        );
        let n = self.hosts.len() + 1;
        assert!(n < 255, "a lab holds at most 254 hosts");
        let ns = format!("{PREFIX}{}-{}-{name}", std::process::id(), self.id);
        let addr = Ipv4Addr::new(10, 233, self.id as u8, n as u8);
        must("ip", &["netns", "add", &ns]);
        let host = Host(Arc::new(HostInner {
            name: name.to_string(),
            ns,
            addr,
            lab: self.id,
            rules: Mutex::new(Rules::default()),
        }));
        // Owned by the lab from here: removed on drop even if a step below fails.
        self.hosts.push(host.clone());
        let ns = host.ns();
        let peer = format!("p{n}");
        let cidr = format!("{addr}/24");
        must("ip", &["-n", ns, "link", "set", "lo", "up"]);
        must(
            "ip",
            &[
                "-n",
                ns,
                "link",
                "add",
                "eth0",
                "type",
                "veth",
                "peer",
                "name",
                &peer,
                "netns",
                &self.bridge,
            ],
        );
        must(
            "ip",
            &["-n", &self.bridge, "link", "set", &peer, "master", "br0"],
        );
        must("ip", &["-n", &self.bridge, "link", "set", &peer, "up"]);
        must("ip", &["-n", ns, "addr", "add", &cidr, "dev", "eth0"]);
        must("ip", &["-n", ns, "link", "set", "eth0", "up"]);
        let default = must("ip", &["-n", ns, "route", "show", "default"]);
        assert!(
            default.trim().is_empty(),
            "host {name} has a default route: {default}"
        );
        addresses().insert(addr, (self.id, ns.to_string()));
        host
    }
}

impl Default for Lab {
    fn default() -> Lab {
        Lab::new()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let mut map = addresses();
        for h in &self.hosts {
            map.remove(&h.addr());
        }
        drop(map);
        for h in &self.hosts {
            let _ = run("ip", &["netns", "del", h.ns()], None);
        }
        let _ = run("ip", &["netns", "del", &self.bridge], None);
    }
}

/// The fault rules of one host, towards its peers' addresses.
#[derive(Debug, Default)]
struct Rules {
    /// Peers every packet to or from which is dropped.
    cut: BTreeMap<Ipv4Addr, ()>,
    /// Peers a percentage of packets to and from which are dropped.
    lossy: BTreeMap<Ipv4Addr, u8>,
}

impl Rules {
    /// The nft script that replaces the host's table with these rules.
    fn script(&self) -> String {
        let mut input = String::new();
        let mut output = String::new();
        for a in self.cut.keys() {
            input.push_str(&format!("    ip saddr {a} drop\n"));
            output.push_str(&format!("    ip daddr {a} drop\n"));
        }
        for (a, p) in &self.lossy {
            // numgen's values are 0..=99: "< 100" is out of its range, and means "all" anyway.
            let share = match p {
                0 => continue,
                100.. => String::new(),
                p => format!("numgen random mod 100 < {p} "),
            };
            input.push_str(&format!("    ip saddr {a} {share}drop\n"));
            output.push_str(&format!("    ip daddr {a} {share}drop\n"));
        }
        // Creating the table first makes the delete valid when it does not exist yet; the
        // whole script applies atomically.
        format!(
            "table inet {TABLE}\ndelete table inet {TABLE}\ntable inet {TABLE} {{\n  \
             chain input {{\n    type filter hook input priority 0; policy accept;\n{input}  }}\n  \
             chain output {{\n    type filter hook output priority 0; policy accept;\n{output}  }}\n}}\n"
        )
    }
}

#[derive(Debug)]
struct HostInner {
    name: String,
    ns: String,
    addr: Ipv4Addr,
    lab: u32,
    rules: Mutex<Rules>,
}

/// One host of a [`Lab`]: a network namespace with one address.
#[derive(Clone, Debug)]
pub struct Host(Arc<HostInner>);

impl Host {
    /// Its name in the lab.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Its namespace (for `ip netns exec`).
    pub fn ns(&self) -> &str {
        &self.0.ns
    }

    /// Its address, which exists only inside the lab.
    pub fn addr(&self) -> Ipv4Addr {
        self.0.addr
    }

    /// `program` to be run inside this host (`ip netns exec NS program`); the child's pid is
    /// the program's own (`ip` execs it).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.ns()]).arg(program);
        c
    }

    fn apply(&self, change: impl FnOnce(&mut Rules)) {
        let mut rules = self.0.rules.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut rules);
        let script = rules.script();
        if let Err(e) = run(
            "ip",
            &["netns", "exec", self.ns(), "nft", "-f", "-"],
            Some(&script),
        ) {
            panic!("nft rules for host {}: {e}\n{script}", self.name());
        }
    }

    /// Cuts the link to `other` silently: every packet between them is dropped (in this
    /// host's namespace, both directions). Established connections see silence, not a reset.
    pub fn cut(&self, other: &Host) {
        self.apply(|r| {
            r.cut.insert(other.addr(), ());
        });
    }

    /// Drops `percent` % of the packets between this host and `other`, at random.
    pub fn lose(&self, other: &Host, percent: u8) {
        assert!(percent <= 100, "a percentage");
        self.apply(|r| {
            r.lossy.insert(other.addr(), percent);
        });
    }

    /// Undoes [`Host::cut`] and [`Host::lose`] towards `other`.
    pub fn heal(&self, other: &Host) {
        self.apply(|r| {
            r.cut.remove(&other.addr());
            r.lossy.remove(&other.addr());
        });
    }

    /// Delays every packet leaving this host by `d` (tc netem on `eth0`); `Duration::ZERO`
    /// removes the delay. [`NetnsError::Unsupported`] where the kernel has no netem.
    pub fn delay(&self, d: Duration) -> Result<(), NetnsError> {
        let ns = self.ns();
        if d.is_zero() {
            return match run(
                "tc",
                &["-n", ns, "qdisc", "del", "dev", "eth0", "root"],
                None,
            ) {
                // Nothing to delete is what was asked.
                Err(NetnsError::Command { error, .. })
                    if error.contains("No such file") || error.contains("Cannot delete") =>
                {
                    Ok(())
                }
                r => r.map(|_| ()),
            };
        }
        let ms = format!("{}ms", d.as_millis());
        let args = [
            "-n", ns, "qdisc", "replace", "dev", "eth0", "root", "netem", "delay", &ms,
        ];
        match run("tc", &args, None) {
            Err(NetnsError::Command { error, .. }) if error.contains("unknown") => Err(
                NetnsError::Unsupported(format!("tc qdisc netem (CONFIG_NET_SCH_NETEM): {error}")),
            ),
            r => r.map(|_| ()),
        }
    }

    /// A TCP connection from inside this host to `to` (through [`guard`]).
    pub fn connect(&self, to: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        let to = guard(Origin::Host(self), to)?;
        let ns = format!("/run/netns/{}", self.ns());
        // A thread of its own enters the namespace (setns changes only the calling thread);
        // the socket stays in the namespace it was made in, whichever thread uses it later.
        std::thread::scope(|s| {
            s.spawn(|| {
                let f = File::open(&ns)?;
                rustix::thread::move_into_link_name_space(
                    std::os::fd::AsFd::as_fd(&f),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )?;
                TcpStream::connect_timeout(&to, timeout)
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the connecting thread panicked")))
        })
    }
}

/// Enters the network namespace of `host` on the calling thread (setns changes only it).
fn enter(host: &Host) -> io::Result<()> {
    let f = File::open(format!("/run/netns/{}", host.ns()))?;
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&f),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )?;
    Ok(())
}

/// A tokio runtime whose every thread lives in one lab host's network namespace, so that the
/// sockets its tasks open (STOMP clients, HTTP requests) are that host's: `127.0.0.1` is the
/// host's own loopback, where the processes of [`Host::command`] listen. Futures given to
/// [`HostRuntime::run`] run on its workers, never on the caller's thread (which stays in its
/// own namespace). Addresses its clients connect to go through [`HostRuntime::guard`].
#[derive(Debug)]
pub struct HostRuntime {
    host: Host,
    rt: Option<tokio::runtime::Runtime>,
}

impl HostRuntime {
    /// A runtime with 2 worker threads inside `host`. Panics if it cannot be built.
    pub fn new(host: &Host) -> HostRuntime {
        let h = host.clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .on_thread_start(move || {
                if let Err(e) = enter(&h) {
                    // A thread outside the namespace would reach the wrong loopback: fail loudly.
                    panic!("entering the namespace of host {}: {e}", h.name());
                }
            })
            .build()
            .unwrap_or_else(|e| panic!("a runtime for host {}: {e}", host.name()));
        HostRuntime {
            host: host.clone(),
            rt: Some(rt),
        }
    }

    /// The host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// [`guard`] from this host: `to` when this host may connect to it (panics otherwise).
    #[track_caller]
    pub fn guard(&self, to: SocketAddr) -> SocketAddr {
        guard(Origin::Host(&self.host), to).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs `f` to its end on this runtime's workers; a panic in it is raised here.
    pub fn run<F>(&self, f: F) -> F::Output
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let rt = self.runtime();
        match rt.block_on(rt.spawn(f)) {
            Ok(v) => v,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("a task in host {}: {e}", self.host.name()),
        }
    }

    /// Starts `f` on this runtime's workers without waiting for it.
    pub fn spawn<F>(&self, f: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime().spawn(f)
    }

    /// The runtime's handle, to spawn from other tasks.
    pub fn handle(&self) -> tokio::runtime::Handle {
        self.runtime().handle().clone()
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        match &self.rt {
            Some(rt) => rt,
            None => unreachable!("the runtime is taken only on drop"),
        }
    }
}

impl Drop for HostRuntime {
    fn drop(&mut self) {
        // Dropped from inside another runtime's task it must not block: let it go in the
        // background then.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Where a connection is made from.
#[derive(Clone, Copy, Debug)]
pub enum Origin<'a> {
    /// The test process's own (root) network namespace.
    Root,
    /// Inside a lab host.
    Host(&'a Host),
}

/// The one connection guard: returns `to` when a connection from `from` may be made, and an
/// error (kind `PermissionDenied`) otherwise. Allowed: loopback (the origin's own), and the
/// address of a live host of this harness when `from` is a host of the same lab whose route
/// to it is its own `eth0` (or `lo` for itself). Every other address is refused, and so is a
/// lab address from the root namespace.
pub fn guard(from: Origin<'_>, to: SocketAddr) -> io::Result<SocketAddr> {
    let refuse = |why: String| {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("connection guard: {to} refused: {why}"),
        ))
    };
    let ip = match to.ip() {
        IpAddr::V4(ip) => ip,
        IpAddr::V6(ip) if ip.is_loopback() => return Ok(to),
        IpAddr::V6(_) => return refuse("neither loopback nor a lab address".into()),
    };
    if ip.is_loopback() {
        return Ok(to);
    }
    let Some((lab, _)) = addresses().get(&ip).cloned() else {
        return refuse("neither loopback nor the address of a live lab host".into());
    };
    let host = match from {
        Origin::Root => {
            return refuse(
                "a lab address from the root namespace (no route: it would leave by the \
                 default route); connect from inside a lab host"
                    .into(),
            );
        }
        Origin::Host(h) => h,
    };
    if host.0.lab != lab {
        return refuse(format!("host {} is in another lab", host.name()));
    }
    let route = run(
        "ip",
        &["-n", host.ns(), "-j", "route", "get", &ip.to_string()],
        None,
    )
    .map_err(io::Error::other)?;
    let dev: Option<String> = serde_json::from_str::<serde_json::Value>(&route)
        .ok()
        .and_then(|v| v.get(0)?.get("dev")?.as_str().map(str::to_string));
    match dev.as_deref() {
        Some("eth0") | Some("lo") => Ok(to),
        _ => refuse(format!("host {} routes it by {route}", host.name())),
    }
}

/// A TCP connection from the root namespace to `to` (through [`guard`]: loopback only).
pub fn connect(to: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    TcpStream::connect_timeout(&guard(Origin::Root, to)?, timeout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::time::Instant;

    /// A server inside `host` that answers each connection with `hi`, on a thread that ends
    /// when the returned guard is dropped (so its socket does not keep the namespace alive).
    struct Server {
        addr: SocketAddr,
        stop: Arc<std::sync::atomic::AtomicBool>,
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
        }
    }

    fn echo_server(host: &Host) -> Server {
        let ns = format!("/run/netns/{}", host.ns());
        let addr = SocketAddr::new(IpAddr::V4(host.addr()), 0);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let halt = stop.clone();
        std::thread::spawn(move || {
            let l = File::open(&ns).and_then(|f| {
                rustix::thread::move_into_link_name_space(
                    std::os::fd::AsFd::as_fd(&f),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )?;
                let l = TcpListener::bind(addr)?;
                l.set_nonblocking(true)?;
                Ok(l)
            });
            let l = match l {
                Ok(l) => l,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let _ = tx.send(l.local_addr());
            while !halt.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut c, _)) => {
                        let _ = c.write_all(b"hi");
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the server thread answers")
            .expect("binding inside the host");
        Server { addr, stop }
    }

    fn greet(from: &Host, to: SocketAddr) -> io::Result<String> {
        let mut c = from.connect(to, Duration::from_millis(500))?;
        c.set_read_timeout(Some(Duration::from_millis(500)))?;
        let mut buf = [0u8; 2];
        c.read_exact(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    #[test]
    fn hosts_reach_each_other_and_a_cut_is_silent_until_healed() -> io::Result<()> {
        let mut lab = Lab::new();
        let a = lab.host("a");
        let b = lab.host("b");
        let server = echo_server(&b);
        let server_addr = server.addr;
        assert_eq!(greet(&a, server_addr)?, "hi");
        a.cut(&b);
        let t = Instant::now();
        let e = greet(&a, server_addr).expect_err("the link is cut");
        // Dropped, not refused: the connect runs into its timeout.
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(t.elapsed() >= Duration::from_millis(450));
        a.heal(&b);
        assert_eq!(greet(&a, server_addr)?, "hi");
        // A 100 % loss is a cut too; healing restores it.
        a.lose(&b, 100);
        assert!(greet(&a, server_addr).is_err());
        a.heal(&b);
        assert_eq!(greet(&a, server_addr)?, "hi");
        // A partial loss is a random-number rule the kernel accepted.
        a.lose(&b, 30);
        let rules = must(
            "ip",
            &[
                "netns",
                "exec",
                a.ns(),
                "nft",
                "list",
                "table",
                "inet",
                TABLE,
            ],
        );
        assert!(rules.contains("numgen random mod 100 < 30"), "{rules}");
        a.heal(&b);
        assert_eq!(greet(&a, server_addr)?, "hi");
        Ok(())
    }

    #[test]
    fn the_guard_refuses_every_address_but_loopback_and_the_labs_own() {
        let mut lab = Lab::new();
        let a = lab.host("a");
        let b = lab.host("b");
        let sa = |ip: Ipv4Addr| SocketAddr::new(IpAddr::V4(ip), 2181);
        let loopback: SocketAddr = "127.0.0.1:2181".parse().expect("an address");
        assert!(guard(Origin::Root, loopback).is_ok());
        assert!(guard(Origin::Host(&a), loopback).is_ok());
        assert!(guard(Origin::Host(&a), sa(b.addr())).is_ok());
        assert!(guard(Origin::Host(&a), sa(a.addr())).is_ok());
        // A lab address from the root namespace, private and public addresses elsewhere,
        // an address in the lab's range that no host has: all refused.
        for (from, ip) in [
            (Origin::Root, b.addr()),
            (Origin::Host(&a), Ipv4Addr::new(10, 233, 250, 250)),
            (Origin::Host(&a), Ipv4Addr::new(192, 168, 1, 1)),
            (Origin::Host(&a), Ipv4Addr::new(8, 8, 8, 8)),
            (Origin::Root, Ipv4Addr::new(10, 0, 0, 1)),
        ] {
            let e = guard(from, sa(ip)).expect_err("refused");
            assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{ip}: {e}");
        }
        assert!(connect(sa(b.addr()), Duration::from_millis(100)).is_err());
        // Another lab's host is not reachable from this one.
        let mut other = Lab::new();
        let c = other.host("c");
        assert!(guard(Origin::Host(&a), sa(c.addr())).is_err());
        // Once a lab is gone, its addresses are refused everywhere.
        let gone = b.addr();
        drop(lab);
        assert!(guard(Origin::Host(&c), sa(gone)).is_err());
    }

    #[test]
    fn dropping_a_lab_removes_its_namespaces() {
        let mut lab = Lab::new();
        let a = lab.host("a");
        let ns = a.ns().to_string();
        let bridge = lab.bridge.clone();
        let listed = |name: &str| must("ip", &["netns", "list"]).contains(name);
        assert!(listed(&ns) && listed(&bridge));
        drop(lab);
        assert!(!listed(&ns) && !listed(&bridge));
    }

    #[test]
    fn a_delay_slows_the_link_where_the_kernel_has_netem() -> io::Result<()> {
        let mut lab = Lab::new();
        let a = lab.host("a");
        let b = lab.host("b");
        let server = echo_server(&b);
        let server_addr = server.addr;
        match a.delay(Duration::from_millis(200)) {
            Ok(()) => {
                let t = Instant::now();
                assert_eq!(greet(&a, server_addr)?, "hi");
                assert!(
                    t.elapsed() >= Duration::from_millis(200),
                    "{:?}",
                    t.elapsed()
                );
                a.delay(Duration::ZERO).map_err(io::Error::other)?;
            }
            Err(NetnsError::Unsupported(what)) => {
                assert!(what.contains("netem"), "{what}");
                eprintln!("skipping the delay check: {what}");
            }
            Err(e) => panic!("{e}"),
        }
        Ok(())
    }
}
