//! Spawning processes: one `mqnode` command builder (stdin closed, output piped, the child dies
//! with the thread that spawned it), an open-files limit for a child, signals to children,
//! bounded waits for their exit, [`run_bounded`] for a process run to its end, and
//! [`run_mqnode`] (and [`run_mqnode_on`], the usual name, data, transport and admin options) for
//! starts that must be refused.
//!
//! Only processes started here are ever signalled.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::{READY_TIMEOUT, bin_path, poll_until};

/// Output of a process, shared with the threads that drain its pipes.
pub(crate) type Log = Arc<Mutex<String>>;

/// Appends one line to `log`.
pub(crate) fn append(log: &Log, line: &str) {
    let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
    l.push_str(line);
    l.push('\n');
}

/// Everything in `log` so far.
pub(crate) fn read_log(log: &Log) -> String {
    log.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// `mqnode ARGS` with stdin closed and stdout and stderr piped, made to die with the thread
/// that spawns it: the one way nodes are started.
pub(crate) fn mqnode_command<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    piped(Command::new(bin_path("mqnode")), args)
}

/// [`mqnode_command`] run inside lab host `host` (`ip netns exec NS mqnode ARGS`: `ip` execs
/// mqnode, so the child's pid is mqnode's own).
pub(crate) fn mqnode_command_in<I, S>(host: &crate::netns::Host, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    piped(host.command(bin_path("mqnode")), args)
}

/// `cmd ARGS` with stdin closed, stdout and stderr piped, dying with its spawning thread.
fn piped<I, S>(mut cmd: Command, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    die_with_parent(&mut cmd);
    cmd
}

/// Waits (at most `timeout`) for `child` to exit; `None` if it is still running (or cannot be
/// asked).
pub(crate) fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let mut status = None;
    poll_until(timeout, || match child.try_wait() {
        Ok(Some(s)) => {
            status = Some(s);
            true
        }
        Ok(None) => false,
        Err(_) => true,
    });
    status
}

/// Sends `sig` to a process this harness started (a child not yet reaped: the caller holds
/// its `Child`, so the pid cannot name another process).
pub(crate) fn signal(pid: u32, sig: rustix::process::Signal) {
    let target = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .expect("a child's pid is a positive i32");
    if let Err(e) = rustix::process::kill_process(target, sig) {
        panic!("kill({pid}, {sig:?}) failed: {e}");
    }
}

/// Makes the child die with SIGKILL if the thread that spawned it ends (the test process
/// crashed or was killed), so an interrupted test run leaves no node behind. Nodes must be
/// started from the test's own thread, which lives as long as the test.
#[allow(unsafe_code)]
pub(crate) fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: `pre_exec` is unsafe because the closure runs in the child between fork and
    // exec; it only calls prctl(2) (through rustix), which is async-signal-safe and touches no
    // memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(std::io::Error::from)
        });
    }
}

/// Lowers the child's open-files limit (`RLIMIT_NOFILE`, soft and hard) to `n` before it
/// runs, for tests of a process that runs out of file descriptors.
#[allow(unsafe_code)]
pub(crate) fn limit_open_files(cmd: &mut Command, n: u64) {
    use rustix::process::{Resource, Rlimit, setrlimit};
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec; it only calls setrlimit(2)
    // (through rustix), which is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(move || {
            setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(n),
                    maximum: Some(n),
                },
            )
            .map_err(std::io::Error::from)
        });
    }
}

/// What [`run_bounded`] saw of a process.
#[derive(Debug)]
pub struct Finished {
    /// The exit status; `None` when it was still running at the deadline (and was killed).
    pub status: Option<ExitStatus>,
    /// Everything written on stdout.
    pub stdout: Vec<u8>,
    /// Everything written on stderr.
    pub stderr: Vec<u8>,
}

/// Runs `cmd` (stdin closed, stdout and stderr collected) until it exits or `timeout` passes;
/// a process still running then is killed.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Finished {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {:?}: {e}", cmd.get_program()));
    let out = read_in_thread(child.stdout.take());
    let err = read_in_thread(child.stderr.take());
    let status = wait_exit(&mut child, timeout);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    Finished {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Reads `pipe` to its end on a thread of its own (so that a full pipe never blocks the child).
fn read_in_thread<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut v);
        }
        v
    })
}

/// Runs `mqnode ARGS` to its exit (at most [`READY_TIMEOUT`]), for tests of refused starts.
/// Panics if it is still running then (and kills it).
#[track_caller]
pub fn run_mqnode(args: &[&str]) -> Output {
    let run = run_bounded(&mut mqnode_command(args), READY_TIMEOUT);
    let Some(status) = run.status else {
        panic!("mqnode {args:?} was still running after {READY_TIMEOUT:?}");
    };
    Output {
        status,
        stdout: run.stdout,
        stderr: run.stderr,
    }
}

/// [`run_mqnode`] for a node `name` on data directory `data` with the one STOMP transport
/// `transport` and a port-0 admin API on loopback, then `extra` options.
#[track_caller]
pub fn run_mqnode_on(name: &str, data: &str, transport: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "--name",
        name,
        "--data",
        data,
        "--transport",
        transport,
        "--admin",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    run_mqnode(&args)
}
