//! Interoperability with a third-party client: runs the stomp.py suite in `tests/python`
//! against the `mqnode` binary. Python 3 with `stomp-py` and `pytest` is required (CI and
//! `scripts/test.sh` install them); without them this test fails and says how to install them.

use std::process::Command;
use std::time::Duration;

use mq_tests::process::run_bounded;
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
    let run = run_bounded(
        Command::new("python3")
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
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        SUITE_TIMEOUT,
    );
    let out = String::from_utf8_lossy(&run.stdout);
    let err = String::from_utf8_lossy(&run.stderr);
    match run.status {
        Some(s) if s.success() => println!("{out}"),
        Some(s) => panic!("the stomp.py suite failed ({s}):\n{out}\n{err}"),
        None => panic!("the stomp.py suite ran past {SUITE_TIMEOUT:?}; killed:\n{out}\n{err}"),
    }
}
