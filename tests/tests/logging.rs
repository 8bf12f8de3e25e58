//! The node's log: stderr by default, or the file of `--log-file` (mode 0600, rotated at
//! `--log-max-size` keeping `--log-max-files`), as text or JSON lines (`--log-format`),
//! filtered by `RUST_LOG`; the ready line stays alone on stdout. Bad log options stop the
//! start with a sentence naming them.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::channel;

use mq_tests::client::AckMode;
use mq_tests::*;
use serde_json::Value;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// `path.n`.
fn rotated(path: &Path, n: usize) -> PathBuf {
    PathBuf::from(format!("{}.{n}", path.display()))
}

/// What the node wrote on stderr: its harness log without the stdout lines and markers.
fn stderr_lines(node: &Node) -> Vec<String> {
    node.log()
        .lines()
        .filter(|l| !l.starts_with("[stdout] ") && !l.starts_with("---- "))
        .map(String::from)
        .collect()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_log_file_takes_the_log_is_private_and_leaves_the_ready_line_on_stdout() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("mqnode.log");
    let mut node = Node::start(
        NodeOpts::new("logfile").args(["--log-file", path.to_str().expect("utf-8 path")]),
    );
    // The harness read the ready line from stdout, as before.
    assert_eq!(node.role(), api::Role::Master);
    wait_for(SOON, || read(&path).contains("serving"));
    assert_eq!(mode(&path), 0o600);
    let log = read(&path);
    assert!(log.contains(" INFO "), "{log}");
    assert!(!log.contains("\u{1b}["), "no colours in a file: {log}");
    assert!(
        stderr_lines(&node).is_empty(),
        "the log went to stderr too: {:?}",
        stderr_lines(&node)
    );
    assert!(node.terminate().success());
    assert!(read(&path).contains("store closed"), "{}", read(&path));
}

#[tokio::test]
async fn the_log_file_rotates_at_its_size_and_the_oldest_is_dropped() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("mqnode.log");
    let max = 2048;
    let node = Node::start(NodeOpts::new("rotate").args([
        "--log-file",
        path.to_str().expect("utf-8 path"),
        "--log-max-size",
        "2KiB",
        "--log-max-files",
        "2",
    ]));
    wait_for(SOON, || read(&path).contains("serving"));
    let first = "store lock taken";
    assert!(read(&path).contains(first), "{}", read(&path));

    // Each NACK logs a line (the message moved to the dead-letter queue): traffic until the
    // first lines have gone through path.1 and path.2 and out.
    let all = || {
        [
            read(&path),
            read(&rotated(&path, 1)),
            read(&rotated(&path, 2)),
        ]
        .concat()
    };
    let mut c = connect(&node.stomp_addr()).await;
    subscribe(&mut c, "/queue/churn", "s", AckMode::ClientIndividual).await;
    let mut sent = 0;
    while all().contains(first) {
        assert!(sent < 1000, "no rotation after {sent} messages: {}", all());
        send(&mut c, "/queue/churn", format!("m{sent}"), &[]).await;
        let m = recv(&mut c, SOON).await;
        nack_receipt(&mut c, &m).await;
        sent += 1;
        assert!(!rotated(&path, 3).exists(), "a third rotated file");
    }
    assert!(rotated(&path, 2).exists() && rotated(&path, 1).exists());
    for p in [path.clone(), rotated(&path, 1), rotated(&path, 2)] {
        let text = read(&p);
        assert_eq!(mode(&p), 0o600, "{}", p.display());
        assert!(text.len() <= max, "{}: {} bytes", p.display(), text.len());
        // Whole events only: every line is a log line, none is cut.
        assert!(text.ends_with('\n'), "{}: {text}", p.display());
        for line in text.lines() {
            assert!(
                line.starts_with("20") && (line.contains(" INFO ") || line.contains(" WARN ")),
                "{}: {line}",
                p.display()
            );
        }
    }
    assert!(
        all().contains("moved to the dead-letter queue"),
        "{}",
        all()
    );
}

#[test]
fn json_lines_parse_with_timestamp_level_target_and_fields() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("mqnode.json");
    let node = Node::start(NodeOpts::new("jsonfile").args([
        "--log-file",
        path.to_str().expect("utf-8 path"),
        "--log-format",
        "json",
    ]));
    wait_for(SOON, || read(&path).contains("serving"));
    let text = read(&path);
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() >= 2, "{text}");
    for l in &lines {
        for key in ["timestamp", "level", "target"] {
            assert!(l[key].is_string(), "{key} in {l}");
        }
        assert!(l["fields"]["message"].is_string(), "{l}");
    }
    let serving = lines
        .iter()
        .find(|l| l["fields"]["message"] == "serving")
        .unwrap_or_else(|| panic!("no serving line in {text}"));
    assert_eq!(serving["level"], "INFO");
    assert_eq!(serving["target"], "mqnode::master");
    assert_eq!(serving["fields"]["role"], "master");
    drop(node);

    // Without a file, JSON goes to stderr the same way.
    let node = Node::start(NodeOpts::new("jsonerr").args(["--log-format", "json"]));
    wait_for(SOON, || {
        stderr_lines(&node).iter().any(|l| l.contains("serving"))
    });
    for line in stderr_lines(&node) {
        let v: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string(), "{v}");
    }
}

/// A node started by hand with `RUST_LOG` set (the harness passes the test's own), killed
/// when dropped.
struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn rust_log_filters_what_reaches_the_file() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("mqnode.log");
    let data = dir.path().join("data");
    let child = Command::new(bin_path("mqnode"))
        .args(["--name", "filtered", "--transport", "tcp://127.0.0.1:0"])
        .args(["--admin", "127.0.0.1:0", "--data"])
        .arg(&data)
        .arg("--log-file")
        .arg(&path)
        .env("RUST_LOG", "info,mqnode::master=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn mqnode");
    let mut node = Spawned(child);
    let (tx, rx) = channel();
    let stdout = node.0.stdout.take().expect("stdout piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let ready = rx.recv_timeout(READY_TIMEOUT).expect("a ready line");
    assert!(ready.contains("\"ready\""), "{ready}");
    let pid = i32::try_from(node.0.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .expect("a pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    wait_for(EXIT_TIMEOUT, || node.0.try_wait().ok().flatten().is_some());
    let log = read(&path);
    // mqnode::ha::role logs at info; mqnode::master's info lines are filtered out.
    assert!(log.contains("store lock taken"), "{log}");
    assert!(log.contains("store closed"), "{log}");
    assert!(!log.contains("serving"), "{log}");
}

#[test]
fn bad_log_options_are_start_errors_that_name_them() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().join("data");
    let base = [
        "--name",
        "badlog",
        "--data",
        data.to_str().expect("utf-8 path"),
        "--transport",
        "tcp://127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
    ];
    let with = |extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        run_mqnode(&a)
    };

    let out = with(&["--log-format", "xml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("--log-format") && err.contains("xml") && err.contains("json"),
        "{err}"
    );

    // A directory, and a file in a folder that does not exist: the path and the reason.
    let folder = dir.path().to_str().expect("utf-8 path");
    let out = with(&["--log-file", folder]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("cannot open the log file") && err.contains(folder),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "printed a ready line: {out:?}");
    let missing = dir.path().join("no-such-folder").join("mqnode.log");
    let out = with(&["--log-file", missing.to_str().expect("utf-8 path")]);
    let err = stderr(&out);
    assert!(
        !out.status.success() && err.contains("No such file or directory"),
        "{err}"
    );

    let out = with(&["--log-max-size", "10"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("log-max-size"), "{}", stderr(&out));
    let out = with(&["--log-max-size", "ten"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a size"), "{}", stderr(&out));

    // The same key in the config file.
    let config = dir.path().join("node.toml");
    std::fs::write(&config, "log-format = \"xml\"\n").expect("write the config");
    let out = with(&["--config", config.to_str().expect("utf-8 path")]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("log-format") && err.contains("xml"), "{err}");
}
