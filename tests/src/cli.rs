//! Helpers for tests that drive the real `mqctl` binary against real `mqnode` processes.
//!
//! Each test gets its own `MQCTL_HOME` in a temporary folder ([`CliHome`]) and a guard per
//! cluster ([`ClusterGuard`]) that destroys it when dropped, so that no process outlives the
//! test even when an assertion fails. Waits poll a condition with a deadline, never sleep blind.
//!
//! Binaries are found by [`crate::bin_path`], waits use [`crate::poll_until`] and free ports
//! come from [`crate::free_port`].
//!
//! `mqctl` hands out cluster ports from a base upward, below or above the kernel's ephemeral
//! range. So that tests running at once (in this process, or in another test run on the same
//! machine) do not race for the same ports, each home gets its own block of ports as its
//! default base (`MQCTL_BASE_PORT`), below the ephemeral range.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde::de::DeserializeOwned;

use crate::bin_path;

/// One finished `mqctl` run.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Everything printed on stdout.
    pub stdout: String,
    /// Everything printed on stderr.
    pub stderr: String,
}

impl Run {
    fn from_output(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Panics with both streams unless the exit code is `code`.
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "expected exit code {code}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Parses stdout as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not the expected JSON ({e}):\n{}", self.stdout))
    }

    /// stdout's lines split on tabs (plain output), header first.
    pub fn rows(&self) -> Vec<Vec<String>> {
        self.stdout
            .lines()
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    }
}

/// Ports each home may hand out by default: a block of [`PORT_BLOCK`] from its base.
pub const PORT_BLOCK: u16 = 64;
/// Where the blocks start; they end below the ephemeral range (32768 on Linux by default).
const FIRST_BLOCK: u16 = 10_000;
/// How many blocks fit between [`FIRST_BLOCK`] and 32000.
const BLOCKS: u32 = (32_000 - FIRST_BLOCK as u32) / PORT_BLOCK as u32;

/// The next home's base port: blocks taken in turn from an offset that depends on the pid, so
/// that two test processes rarely start from the same block.
fn next_base_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let turn = NEXT.fetch_add(1, Ordering::Relaxed);
    let block = (std::process::id().wrapping_mul(37).wrapping_add(turn)) % BLOCKS;
    FIRST_BLOCK + (block as u16) * PORT_BLOCK
}

/// A private `MQCTL_HOME` for one test.
#[derive(Debug)]
pub struct CliHome {
    dir: tempfile::TempDir,
    mqctl: PathBuf,
    base_port: u16,
}

impl Default for CliHome {
    fn default() -> Self {
        Self::new()
    }
}

impl CliHome {
    /// A fresh, empty home.
    pub fn new() -> CliHome {
        CliHome {
            dir: tempfile::Builder::new()
                .prefix("mqctl-test-")
                .tempdir()
                .expect("temporary MQCTL_HOME"),
            mqctl: bin_path("mqctl"),
            base_port: next_base_port(),
        }
    }

    /// The first port `cluster create` hands out in this home (`MQCTL_BASE_PORT`).
    pub fn base_port(&self) -> u16 {
        self.base_port
    }

    /// The home folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `HOME/clusters/NAME`.
    pub fn cluster_dir(&self, name: &str) -> PathBuf {
        self.path().join("clusters").join(name)
    }

    /// The client user's login and password of cluster `name` (from its credentials file):
    /// clusters are secured, so STOMP clients log in.
    pub fn login(&self, name: &str) -> (String, String) {
        let path = self.cluster_dir(name).join("credentials.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let v: serde_json::Value = serde_json::from_str(&text).expect("credentials are JSON");
        let password = v["app"].as_str().expect("an app password").to_string();
        ("app".to_string(), password)
    }

    /// STOMP client options that log in to cluster `name`.
    pub fn stomp_options(&self, name: &str) -> mq_shared::client::ConnectOptions {
        let (login, passcode) = self.login(name);
        mq_shared::client::ConnectOptions {
            login: Some(login),
            passcode: Some(passcode),
            ..mq_shared::client::ConnectOptions::default()
        }
    }

    /// The `mqctl` binary under test.
    pub fn mqctl_path(&self) -> &Path {
        &self.mqctl
    }

    /// Runs `mqctl ARGS` with this home; stdout is a pipe, so the default format is plain.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[])
    }

    /// Runs `mqctl COMMAND --url URL... --token-file TOKEN_FILE REST`: a command aimed at
    /// nodes by their admin URLs rather than at a cluster of this home.
    pub fn run_by_url(
        &self,
        command: &[&str],
        urls: &[&str],
        token_file: &str,
        rest: &[&str],
    ) -> Run {
        let mut args = command.to_vec();
        for url in urls {
            args.extend(["--url", url]);
        }
        args.extend(["--token-file", token_file]);
        args.extend(rest);
        self.run(&args)
    }

    /// Runs `mqctl ARGS -o json`, panics unless it exits 0, and parses what it printed.
    pub fn run_json<T: DeserializeOwned>(&self, args: &[&str]) -> T {
        let mut args = args.to_vec();
        args.extend(["-o", "json"]);
        self.run(&args).expect_code(0).json()
    }

    /// Runs `mqctl ARGS` with extra environment variables.
    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let output = Command::new(&self.mqctl)
            .args(args)
            .env("MQCTL_HOME", self.path())
            .env("MQCTL_BASE_PORT", self.base_port.to_string())
            .env_remove("MQCTL_TOKEN_FILE")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .expect("run mqctl");
        Run::from_output(output)
    }

    /// Runs `mqctl cluster create NAME ARGS` (exit 0 expected) and returns a guard that
    /// destroys the cluster when dropped.
    pub fn create(&self, name: &str, args: &[&str]) -> ClusterGuard<'_> {
        let mut all = vec!["cluster", "create", name];
        all.extend_from_slice(args);
        // The guard exists before the run so that a half-created cluster is cleaned up too.
        let guard = ClusterGuard {
            home: self,
            name: name.to_string(),
        };
        self.run(&all).expect_code(0);
        guard
    }
}

impl Drop for CliHome {
    fn drop(&mut self) {
        // Last resort: no node started under this home survives the test.
        kill_processes_under(self.dir.path());
    }
}

/// Destroys its cluster when dropped.
#[derive(Debug)]
pub struct ClusterGuard<'a> {
    home: &'a CliHome,
    name: String,
}

impl ClusterGuard<'_> {
    /// Cluster name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `NAME/NODE`.
    pub fn node(&self, node: &str) -> String {
        format!("{}/{node}", self.name)
    }
}

impl Drop for ClusterGuard<'_> {
    fn drop(&mut self) {
        if self.home.cluster_dir(&self.name).exists() {
            let _ = self.home.run(&["cluster", "destroy", &self.name, "--yes"]);
        }
        kill_processes_under(&self.home.cluster_dir(&self.name));
    }
}

/// The argv of a live process (empty for a zombie or a vanished pid).
pub fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| {
            bytes
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Pids of live processes with a `--data` argument inside `dir`.
pub fn processes_under(dir: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|pid| {
            let args = cmdline(*pid);
            args.windows(2)
                .any(|w| w[0] == "--data" && Path::new(&w[1]).starts_with(dir))
        })
        .collect()
}

/// Whether `pid` is a live (not zombie) process.
pub fn is_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name: "pid (comm) S ...".
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

/// SIGKILL every process with `--data` inside `dir`.
pub fn kill_processes_under(dir: &Path) {
    for pid in processes_under(dir) {
        let _ = Command::new("kill")
            .args(["-9", &pid.to_string()])
            .stderr(Stdio::null())
            .status();
    }
}

/// Writes an executable shell script and returns its path.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}
