//! Interoperability with a third-party client: runs the stomp.py suite in `tests/python`
//! against the `mqnode` binary. Python 3 with `stomp-py` and `pytest` is required (CI and
//! `scripts/test.sh` install them); without them this test fails and says how to install them.

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use mq_tests::{bin_path, workspace_root};

/// Bound on the whole Python suite (each of its tests bounds its own waits).
const SUITE_TIMEOUT: Duration = Duration::from_secs(180);

#[test]
fn stomp_py_suite_passes() {
    let probe = Command::new("python3")
        .args(["-c", "import stomp, pytest"])
        .output();
    match probe {
        Err(e) => panic!(
            "python3 cannot be run ({e}): install Python 3, then `python3 -m pip install stomp-py pytest` (scripts/test.sh does both)"
        ),
        Ok(o) if !o.status.success() => panic!(
            "the interop suite needs stomp.py and pytest: run `python3 -m pip install stomp-py pytest` (scripts/test.sh does). python3 said:\n{}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Ok(_) => {}
    }
    let mut child = Command::new("python3")
        .args([
            "-m",
            "pytest",
            "tests/python",
            "-q",
            "-p",
            "no:cacheprovider",
        ])
        .current_dir(workspace_root())
        .env("MQNODE_BIN", bin_path("mqnode"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting pytest");
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut status = None;
    if !mq_tests::poll_until(SUITE_TIMEOUT, || {
        status = child.try_wait().expect("waiting for pytest");
        status.is_some()
    }) {
        let _ = child.kill();
        let _ = child.wait();
    }
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    match status {
        Some(s) if s.success() => println!("{out}"),
        Some(s) => panic!("the stomp.py suite failed ({s}):\n{out}\n{err}"),
        None => panic!("the stomp.py suite ran past {SUITE_TIMEOUT:?}; killed:\n{out}\n{err}"),
    }
}
