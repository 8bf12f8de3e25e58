//! `mqnode` processes: finding the executable, starting a node detached with its log, telling
//! whether a recorded pid is still that node, signalling it and waiting for it to exit.
//!
//! A pid from the manifest is only trusted after `/proc/PID/cmdline` shows the same `--name`
//! and `--data` arguments `mqctl` started it with: a reused pid is never signalled.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mq_shared::api::{ReadyEvent, Role};
use mq_shared::ctl::{ClusterManifest, NodeEntry};
use mq_shared::defaults::{LOG_TAIL_LINES, READY_POLL_INTERVAL};

use crate::error::{CliError, Result};
use crate::sys::{self, Signal};

/// Name of the node executable.
pub const MQNODE: &str = "mqnode";

/// Finds `mqnode`: `explicit` if given, else beside the running `mqctl`, else on `PATH`.
pub fn find_mqnode(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(absolute(path))
        } else {
            Err(CliError::MqnodeNotFound {
                searched: format!("at --mqnode {}, which is not a file", path.display()),
            })
        };
    }
    let mut searched = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        let candidate = dir.join(MQNODE);
        if candidate.is_file() {
            return Ok(candidate);
        }
        searched.push(format!("beside mqctl in {}", dir.display()));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(MQNODE);
            if candidate.is_file() {
                return Ok(absolute(&candidate));
            }
        }
    }
    searched.push("on PATH".to_string());
    Err(CliError::MqnodeNotFound {
        searched: searched.join(" and "),
    })
}

/// The executable recorded in the manifest if it still exists, else [`find_mqnode`].
pub fn mqnode_for(manifest: &ClusterManifest, explicit: Option<&Path>) -> Result<PathBuf> {
    if explicit.is_none()
        && let Some(recorded) = manifest.mqnode.as_deref().map(PathBuf::from)
        && recorded.is_file()
    {
        return Ok(recorded);
    }
    find_mqnode(explicit)
}

fn absolute(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The command line of a node: `--name N --data DIR --transport tcp://127.0.0.1:P --admin
/// 127.0.0.1:P --persistent true|false [--admin-token-file F] [--ha jdbc --store URL
/// [--store-password-file F]] [--ha replicated --replicas N --zk-address A --zk-path P --bind
/// tcp://127.0.0.1:0 --replication-token-file F]`.
pub fn node_args(manifest: &ClusterManifest, node: &NodeEntry) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "--name".into(),
        node.name.clone().into(),
        "--data".into(),
        node.data_dir.clone().into(),
        "--transport".into(),
        node.transport_uri().into(),
        "--admin".into(),
        format!("127.0.0.1:{}", node.admin_port).into(),
        "--persistent".into(),
        node.persistent.to_string().into(),
    ];
    if !manifest.token_file.is_empty() {
        args.push("--admin-token-file".into());
        args.push(manifest.token_file.clone().into());
    }
    // A JDBC pair: the group's database and its lease.
    if let Some(store) = manifest.group_of(&node.name).and_then(|g| g.store.as_ref()) {
        args.extend(["--ha".into(), "jdbc".into(), "--store".into()]);
        args.push(store.url.clone().into());
        if let Some(f) = &store.password_file {
            args.push("--store-password-file".into());
            args.push(f.clone().into());
        }
    }
    // A replicated group: its ZooKeeper election; the replication listener on a loopback port
    // the node picks (it publishes it in ZooKeeper).
    if let Some(group) = manifest.group_of(&node.name)
        && let Some(r) = &group.replicated
    {
        args.extend(["--ha".into(), "replicated".into(), "--replicas".into()]);
        args.push(group.members.len().to_string().into());
        args.extend(["--zk-address".into(), r.zk_address.clone().into()]);
        args.extend(["--zk-path".into(), r.zk_path.clone().into()]);
        args.extend(["--bind".into(), "tcp://127.0.0.1:0".into()]);
        args.extend([
            "--replication-token-file".into(),
            r.token_file.clone().into(),
        ]);
    }
    args.extend(
        crate::security::node_args(manifest, &node.name)
            .into_iter()
            .map(OsString::from),
    );
    args
}

/// Starts `node` detached (own process group, stdin closed, stdout and stderr appended to its
/// log), after writing a marker line to the log so that [`log_tail`] shows this run only.
/// Returns the child and the length of the log after the marker, where this run's lines start.
pub fn spawn(manifest: &ClusterManifest, node: &NodeEntry, mqnode: &Path) -> Result<(Child, u64)> {
    let log_path = Path::new(&node.log);
    for dir in [
        Path::new(&node.data_dir),
        log_path.parent().unwrap_or(log_path),
    ] {
        fs::create_dir_all(dir).map_err(|e| CliError::io("could not create", dir, e))?;
    }
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .map_err(|e| CliError::io("could not open", log_path, e))?;
    writeln!(
        log,
        "{} mqctl: starting {} ({})",
        RUN_MARKER,
        node.name,
        crate::home::now_rfc3339()
    )
    .map_err(|e| CliError::io("could not write", log_path, e))?;
    let log_from = log
        .metadata()
        .map_err(|e| CliError::io("could not read", log_path, e))?
        .len();
    let stderr = log
        .try_clone()
        .map_err(|e| CliError::io("could not open", log_path, e))?;
    let mut command = Command::new(mqnode);
    command
        .args(node_args(manifest, node))
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(stderr));
    sys::detach(&mut command);
    let child = command.spawn().map_err(|source| CliError::Spawn {
        node: node.name.clone(),
        program: mqnode.to_path_buf(),
        source,
    })?;
    Ok((child, log_from))
}

/// The role of the last ready line (`{"event":"ready",...}`, which `mqnode` prints on stdout
/// each time it starts serving or waiting) in `log` from byte `from` on.
pub fn ready_role(log: &Path, from: u64) -> Option<Role> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = fs::File::open(log).ok()?;
    file.seek(SeekFrom::Start(from)).ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    last_ready_role(&String::from_utf8_lossy(&bytes))
}

/// The role of the last ready line in `text`.
pub fn last_ready_role(text: &str) -> Option<Role> {
    text.lines()
        .rev()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str::<ReadyEvent>(l).ok())
        .find(|e| e.event == "ready")
        .map(|e| e.role)
}

/// Prefix of the line `mqctl` writes to a node's log before each start.
pub const RUN_MARKER: &str = "====";

/// The last `LOG_TAIL_LINES` lines of the latest run in a node's log, indented.
pub fn log_tail(path: &Path) -> String {
    let text = match fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => return format!("    (cannot read the log: {e})"),
    };
    tail_of_last_run(&text, LOG_TAIL_LINES)
}

/// The last `n` lines after the last run marker, indented by four spaces.
pub fn tail_of_last_run(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .rposition(|l| l.starts_with(RUN_MARKER))
        .map_or(0, |i| i + 1);
    let run = &lines[start..];
    let run = &run[run.len().saturating_sub(n)..];
    if run.is_empty() {
        return "    (the log is empty)".to_string();
    }
    run.iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `args` (a process's argv) is the command line of `node`: the same `--name` and
/// `--data` values.
pub fn is_command_of(args: &[String], node: &NodeEntry) -> bool {
    flag_value(args, "--name") == Some(node.name.as_str())
        && flag_value(args, "--data") == Some(node.data_dir.as_str())
}

/// The argv of a running process, empty if it is gone (or a zombie).
fn cmdline(pid: u32) -> Vec<String> {
    match fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(bytes) => bytes
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Whether `pid` is running and is `node`'s process.
pub fn pid_is_node(pid: u32, node: &NodeEntry) -> bool {
    sys::exists(pid) && is_command_of(&cmdline(pid), node)
}

/// The recorded pid of `node` if that process is running and is really `node`.
pub fn running_pid(node: &NodeEntry) -> Option<u32> {
    node.pid.filter(|pid| pid_is_node(*pid, node))
}

/// Sends `signal` to `node`'s recorded process if it is running and is `node`. `Ok(None)`
/// when there was nothing to signal.
pub fn signal(node: &NodeEntry, signal: Signal) -> Result<Option<u32>> {
    let Some(pid) = running_pid(node) else {
        return Ok(None);
    };
    match sys::send(pid, signal) {
        Ok(true) => Ok(Some(pid)),
        Ok(false) => Ok(None),
        Err(source) => Err(CliError::Signal {
            node: node.name.clone(),
            pid,
            source,
        }),
    }
}

/// The state letter of `/proc/PID/stat` (`R`, `S`, `D`, `Z`...), `None` when there is no such
/// process.
fn proc_state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ...": the command name may hold spaces and parentheses, the state follows
    // the last ") ".
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
}

/// Whether `pid`, signalled as `node`'s process, has finished exiting: gone, a zombie, or
/// another program under a reused pid. A process in the middle of exiting has already
/// released its memory (its command line reads empty) while it still holds its sockets and
/// files, so an empty command line alone is not an exit.
fn has_exited(pid: u32, node: &NodeEntry) -> bool {
    if !sys::exists(pid) || matches!(proc_state(pid), None | Some('Z' | 'X' | 'x')) {
        return true;
    }
    let args = cmdline(pid);
    !args.is_empty() && !is_command_of(&args, node)
}

/// Waits until `pid` is no longer `node`'s running process, at most `timeout`: until it has
/// finished exiting and released its ports and its store.
pub async fn wait_exit(pid: u32, node: &NodeEntry, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if has_exited(pid, node) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(READY_POLL_INTERVAL).await;
    }
}

/// Terminates a child `mqctl` started itself in this run: SIGTERM, then SIGKILL after
/// `timeout`, and reaps it.
pub async fn terminate_child(child: &mut Child, timeout: Duration) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let _ = sys::send(child.id(), Signal::Term);
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_)) | Err(_)) {
            return;
        }
        tokio::time::sleep(READY_POLL_INTERVAL).await;
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Processes whose `--data` lies inside `dir` (nodes of a cluster, recorded or not), with
/// their `--name`.
pub fn strays(dir: &Path) -> Vec<(u32, String)> {
    other_processes()
        .filter_map(|pid| {
            let args = cmdline(pid);
            uses_data_under(&args, dir)
                .then(|| (pid, flag_value(&args, "--name").unwrap_or("?").to_string()))
        })
        .collect()
}

/// Running processes (other than this one) with `arg` as one of their arguments.
pub fn pids_with_arg(arg: &str) -> Vec<u32> {
    other_processes()
        .filter(|pid| cmdline(*pid).iter().any(|a| a == arg))
        .collect()
}

/// The pids in `/proc` other than this process's (none when `/proc` cannot be read).
fn other_processes() -> impl Iterator<Item = u32> {
    let own = std::process::id();
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(move |pid| *pid != own)
}

/// The value of `--flag V` or `--flag=V` in `args`.
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.windows(2)
        .find(|w| w[0] == flag)
        .map(|w| w[1].as_str())
        .or_else(|| {
            let prefix = format!("{flag}=");
            args.iter().find_map(|a| a.strip_prefix(&prefix))
        })
}

/// Whether `args` is a node command line (`--name` given) with `--data` inside `dir`.
pub fn uses_data_under(args: &[String], dir: &Path) -> bool {
    flag_value(args, "--name").is_some()
        && flag_value(args, "--data").is_some_and(|data| Path::new(data).starts_with(dir))
}

/// Stops every [`strays`] process of `dir`: SIGTERM, then SIGKILL after the bounded wait.
pub async fn stop_strays(dir: &Path) -> Vec<(u32, String)> {
    let found = strays(dir);
    for (pid, _) in &found {
        let _ = sys::send(*pid, Signal::Term);
    }
    let deadline = Instant::now() + mq_shared::defaults::NODE_STOP_TIMEOUT;
    for (pid, _) in &found {
        while is_stray(*pid, dir) && Instant::now() < deadline {
            tokio::time::sleep(READY_POLL_INTERVAL).await;
        }
        if is_stray(*pid, dir) {
            let _ = sys::send(*pid, Signal::Kill);
        }
    }
    found
}

fn is_stray(pid: u32, dir: &Path) -> bool {
    sys::exists(pid) && uses_data_under(&cmdline(pid), dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> NodeEntry {
        NodeEntry {
            name: "node1".into(),
            group: "node1".into(),
            data_dir: "/h/clusters/c/node1/data".into(),
            log: "/h/clusters/c/node1/node.log".into(),
            transport_port: 61700,
            admin_port: 61701,
            pid: Some(1),
            persistent: true,
            tls: false,
            remote: None,
        }
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn identity_needs_name_and_data() {
        let n = node();
        assert!(is_command_of(
            &args(&[
                "/bin/mqnode",
                "--name",
                "node1",
                "--data",
                "/h/clusters/c/node1/data"
            ]),
            &n
        ));
        assert!(is_command_of(
            &args(&["mqnode", "--name=node1", "--data=/h/clusters/c/node1/data"]),
            &n
        ));
        assert!(!is_command_of(&args(&["mqnode", "--name", "node1"]), &n));
        assert!(!is_command_of(
            &args(&[
                "mqnode",
                "--name",
                "node2",
                "--data",
                "/h/clusters/c/node1/data"
            ]),
            &n
        ));
        assert!(!is_command_of(&args(&["bash"]), &n));
        assert!(!is_command_of(&[], &n));
    }

    #[test]
    fn a_signalled_node_has_exited_once_a_zombie_and_not_before() {
        let n = node();
        let mut child = std::process::Command::new("sh")
            // `read` is a builtin: the shell itself waits, with the node's flags in its argv.
            .args(["-c", "read line", "sh", "--name", "node1"])
            .args(["--data", "/h/clusters/c/node1/data"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("spawn sh");
        let pid = child.id();
        assert!(!has_exited(pid, &n), "running with the node's command line");
        assert!(has_exited(std::process::id(), &n), "another program");
        assert_eq!(sys::send(pid, Signal::Kill).ok(), Some(true));
        // Not reaped yet: a zombie, or still exiting, until the kernel is done with it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while proc_state(pid) != Some('Z') && Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert_eq!(proc_state(pid), Some('Z'));
        assert!(has_exited(pid, &n));
        child.wait().expect("reap");
        assert!(has_exited(pid, &n), "gone");
        assert_eq!(proc_state(pid), None);
    }

    #[test]
    fn the_last_ready_line_tells_the_role() {
        let log = "2025 INFO starting\n{\"event\":\"ready\",\"name\":\"n\",\"role\":\"slave\",\"admin\":\"http://127.0.0.1:1\",\"transports\":[]}\nINFO lock taken\n{\"event\":\"ready\",\"name\":\"n\",\"role\":\"master\",\"admin\":\"http://127.0.0.1:1\",\"transports\":[\"tcp://127.0.0.1:2\"]}\n";
        assert_eq!(last_ready_role(log), Some(Role::Master));
        assert_eq!(
            last_ready_role("INFO starting\n{\"event\":\"other\"}\n"),
            None
        );
        assert_eq!(last_ready_role(""), None);
    }

    #[test]
    fn tail_shows_the_last_run_only() {
        let log = "==== mqctl: starting node1\nold 1\nold 2\n==== mqctl: starting node1\nnew 1\nnew 2\nnew 3\n";
        assert_eq!(tail_of_last_run(log, 2), "    new 2\n    new 3");
        assert_eq!(tail_of_last_run("a\nb\n", 20), "    a\n    b");
        assert_eq!(
            tail_of_last_run("==== mqctl: starting\n", 20),
            "    (the log is empty)"
        );
    }

    #[test]
    fn args_carry_the_manifest() {
        let n = node();
        let m = ClusterManifest {
            nodes: vec![n.clone()],
            ..crate::cluster::bare_manifest("c", String::new(), "/h/clusters/c/admin.token".into())
        };
        let a: Vec<String> = node_args(&m, &n)
            .into_iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            a,
            [
                "--name",
                "node1",
                "--data",
                "/h/clusters/c/node1/data",
                "--transport",
                "tcp://127.0.0.1:61700",
                "--admin",
                "127.0.0.1:61701",
                "--persistent",
                "true",
                "--admin-token-file",
                "/h/clusters/c/admin.token"
            ]
        );
        assert!(is_command_of(&a, &n));
    }

    #[test]
    fn strays_are_recognised_by_their_data_dir() {
        let dir = Path::new("/h/clusters/c");
        assert!(uses_data_under(
            &args(&[
                "mqnode",
                "--name",
                "node1",
                "--data",
                "/h/clusters/c/node1/data"
            ]),
            dir
        ));
        assert!(!uses_data_under(
            &args(&[
                "mqnode",
                "--name",
                "node1",
                "--data",
                "/h/clusters/cc/node1/data"
            ]),
            dir
        ));
        assert!(!uses_data_under(
            &args(&["vim", "/h/clusters/c/node1/data"]),
            dir
        ));
    }

    #[test]
    fn our_own_process_is_not_a_node() {
        let mut n = node();
        n.pid = Some(std::process::id());
        assert_eq!(running_pid(&n), None);
    }
}
