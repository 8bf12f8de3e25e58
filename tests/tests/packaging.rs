//! `packaging/`: the systemd unit passes `systemd-analyze verify` and agrees with the sample
//! config, and a node starts from the sample config. (That the sample names every key with
//! its default is a unit test of the node's config module, next to the options.)

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use mq_tests::js::skip;
use mq_tests::process::run_bounded;
use mq_tests::*;

/// Bound on `systemd-analyze verify`.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(60);

fn packaging(file: &str) -> PathBuf {
    workspace_root().join("packaging").join(file)
}

fn read(file: &str) -> String {
    let p = packaging(file);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The value of `key = ...` in the unit (the last one, as systemd reads it).
fn unit_value<'a>(unit: &'a str, key: &str) -> Option<&'a str> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .next_back()
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let test = "packaging::the_systemd_unit_passes_systemd_analyze_verify";
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        skip(
            test,
            "systemd-analyze is not installed (apt-get install systemd; scripts/test.sh does)",
        );
        return;
    }
    let unit = read("mqnode.service");
    // verify checks that ExecStart's program exists: point it at the binary under test.
    let installed = "/usr/local/bin/mqnode";
    assert!(unit.contains(&format!("ExecStart={installed} ")), "{unit}");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let copy = dir.path().join("mqnode.service");
    let mqnode = bin_path("mqnode");
    std::fs::write(
        &copy,
        unit.replace(installed, mqnode.to_str().expect("utf-8 path")),
    )
    .expect("write the unit");
    let run = run_bounded(
        Command::new("systemd-analyze").arg("verify").arg(&copy),
        VERIFY_TIMEOUT,
    );
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        run.status.is_some_and(|s| s.success()),
        "systemd-analyze verify failed: {out}"
    );
    // Unknown keys and bad values are warnings with a success status: none may name the unit.
    let about_unit: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("mqnode.service"))
        .collect();
    assert!(about_unit.is_empty(), "{about_unit:?}");
}

#[test]
fn the_unit_and_the_sample_config_agree() {
    let unit = read("mqnode.service");
    let config = read("node.toml");
    let state = unit_value(&unit, "StateDirectory").expect("StateDirectory");
    assert!(
        config.contains(&format!("\ndata = \"/var/lib/{state}\"\n")),
        "node.toml's data is not the StateDirectory /var/lib/{state}"
    );
    assert!(
        unit_value(&unit, "ReadWritePaths") == Some(&format!("/var/lib/{state}")),
        "ReadWritePaths"
    );
    assert!(
        unit_value(&unit, "ExecStart")
            .is_some_and(|e| e.ends_with(" --config /etc/mqnode/node.toml")),
        "ExecStart"
    );
    assert_eq!(unit_value(&unit, "KillSignal"), Some("SIGTERM"));
    assert_eq!(unit_value(&unit, "Restart"), Some("on-failure"));
    // A stop must fit in TimeoutStopSec with room to spare: shutdown-grace, then the store.
    let stop: u64 = unit_value(&unit, "TimeoutStopSec")
        .and_then(|v| v.strip_suffix('s'))
        .and_then(|v| v.parse().ok())
        .expect("TimeoutStopSec=Ns");
    let grace_ms: u64 = config
        .lines()
        .find_map(|l| l.strip_prefix("shutdown-grace = "))
        .and_then(|v| v.trim().parse().ok())
        .expect("shutdown-grace in node.toml");
    assert!(stop * 1000 >= 10 * grace_ms, "TimeoutStopSec={stop}s");
}

#[test]
fn a_node_starts_from_the_sample_config() {
    // The harness's --data, --transport and --admin win over the file's.
    let config = packaging("node.toml");
    let mut node = Node::start(
        NodeOpts::new("sample").args(["--config", config.to_str().expect("utf-8 path")]),
    );
    assert_eq!(node.role(), api::Role::Master);
    assert!(node.terminate().success());
}
