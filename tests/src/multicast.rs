//! Multicast tests in a network namespace of their own: one with only its loopback, multicast
//! routed on it, so that no advertisement ever touches a real interface.
//!
//! [`in_loopback_namespace`] is called by the test itself: outside the namespace it creates one,
//! re-runs this test binary inside it with `ip netns exec`, filtered to that one test by its full
//! name, checks that the inner run passed, and deletes the namespace (on panic too); inside
//! (an environment variable names the namespace) it runs the test's body. Needs root and `ip`
//! (iproute2).

use std::process::Command;

/// The names and environment of one test run in a namespace.
#[derive(Debug, Clone, Copy)]
pub struct NamespacedTest<'a> {
    /// The test's `module_path!()`.
    pub module: &'a str,
    /// The test function's name.
    pub test: &'a str,
    /// The environment variable that names the namespace the inner run is in.
    pub ns_env: &'a str,
    /// The namespace's name before `<pid>`, e.g. `mqtest-`.
    pub prefix: &'a str,
    /// More environment of the inner run.
    pub envs: &'a [(&'a str, &'a str)],
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running ip {args:?} (is iproute2 installed?): {e}"));
    assert!(
        out.status.success(),
        "ip {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Deletes the namespace when the test ends, however it ends.
struct Namespace(String);

impl Namespace {
    fn create(prefix: &str) -> Namespace {
        let name = format!("{prefix}{}", std::process::id());
        ip(&["netns", "add", &name]);
        let ns = Namespace(name);
        ip(&["-n", &ns.0, "link", "set", "lo", "up"]);
        ip(&["-n", &ns.0, "link", "set", "lo", "multicast", "on"]);
        ip(&["-n", &ns.0, "route", "add", "224.0.0.0/4", "dev", "lo"]);
        ns
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Runs `body` inside a loopback-only namespace: outside, creates the namespace and re-runs the
/// test `t` in it, panicking unless that inner run passed; inside, refuses to go on anywhere
/// but in the namespace made for it, then runs `body` on a two-thread tokio runtime.
pub fn in_loopback_namespace(t: NamespacedTest<'_>, body: impl AsyncFnOnce()) {
    if let Ok(ns) = std::env::var(t.ns_env) {
        // Refuse to send multicast anywhere but inside the namespace made for it.
        let here = Command::new("ip")
            .args(["netns", "identify", &std::process::id().to_string()])
            .output()
            .expect("ip netns identify");
        assert_eq!(String::from_utf8_lossy(&here.stdout).trim(), ns);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        rt.block_on(body());
        return;
    }
    let ns = Namespace::create(t.prefix);
    let exe = std::env::current_exe().expect("this test binary");
    // The test's full name in this binary: its module path without the crate, then its own.
    let module = t.module.split_once("::").map_or(t.module, |(_, m)| m);
    let name = format!("{module}::{}", t.test);
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(exe)
        .args(["--exact", &name, "--nocapture", "--test-threads=1"])
        .env(t.ns_env, &ns.0)
        .envs(t.envs.iter().copied())
        .output()
        .expect("running the test inside the namespace");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "inside the namespace:\n{text}");
    assert!(
        text.contains("1 passed"),
        "the inner test did not run:\n{text}"
    );
}
