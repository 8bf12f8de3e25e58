//! JavaScript and browser tests: Node.js scripts in `tests/js` (stompjs over `ws://`, the web
//! consoles in headless Chromium through playwright-core), run as bounded child processes.
//!
//! `scripts/test.sh` installs Node.js, npm, Debian's `chromium` and the packages of
//! `tests/js` (`npm ci`). Run by hand, [`scripts`] installs the npm packages itself when they
//! are missing (once per test process). A test skips ([`scripts_for`], [`browser_for`]), saying
//! why on stdout, only when Node.js or Chromium is not there at all or the packages cannot be
//! installed; every other failure
//! of a script fails the test with the script's own words.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::process::{Finished, run_bounded};
use crate::workspace_root;

/// Bound on `npm ci`.
const NPM_TIMEOUT: Duration = Duration::from_secs(300);

/// Where Debian's Chromium is.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// `tests/js`.
pub fn js_dir() -> PathBuf {
    workspace_root().join("tests").join("js")
}

/// The JavaScript scripts, ready to run: `Err` says why they cannot be (no Node.js, packages
/// that cannot be installed).
pub fn scripts() -> Result<Scripts, String> {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    READY.get_or_init(install).clone()?;
    Ok(Scripts { dir: js_dir() })
}

/// Debian's Chromium, when installed.
pub fn chromium() -> Result<PathBuf, String> {
    let path = PathBuf::from(CHROMIUM);
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{CHROMIUM} is not installed (apt-get install chromium; scripts/test.sh does)"
        ))
    }
}

/// Prints why a test does not run, as the one line a reader of the test output looks for.
///
/// Under `scripts/test.sh` (which installs what these tests need and sets
/// `MQ_REQUIRE_TOOLS=1`), a missing tool fails the test instead: CI never passes by skipping.
pub fn skip(test: &str, why: &str) {
    if std::env::var_os("MQ_REQUIRE_TOOLS").is_some_and(|v| v == "1") {
        panic!("{test} cannot run: {why} (MQ_REQUIRE_TOOLS=1)");
    }
    println!("SKIPPED {test}: {why}");
}

/// The scripts for the test named `test`, or `None` once [`skip`] has said why it cannot run.
pub fn scripts_for(test: &str) -> Option<Scripts> {
    scripts().map_err(|why| skip(test, &why)).ok()
}

/// The scripts and Chromium for the browser test named `test`, or `None` once [`skip`] has said
/// why it cannot run.
pub fn browser_for(test: &str) -> Option<(Scripts, PathBuf)> {
    let scripts = scripts_for(test)?;
    let chromium = chromium().map_err(|why| skip(test, &why)).ok()?;
    Some((scripts, chromium))
}

fn install() -> Result<(), String> {
    let node = Command::new("node").arg("--version").output();
    match node {
        Ok(o) if o.status.success() => {}
        _ => {
            return Err(
                "Node.js is not installed (apt-get install nodejs npm; scripts/test.sh does)"
                    .into(),
            );
        }
    }
    let dir = js_dir();
    if has_packages(&dir) {
        return Ok(());
    }
    let run = run_bounded(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir),
        NPM_TIMEOUT,
    );
    match run.status {
        Some(s) if s.success() && has_packages(&dir) => Ok(()),
        _ => Err(format!(
            "`npm ci` in {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&run.stderr).trim()
        )),
    }
}

fn has_packages(dir: &Path) -> bool {
    ["@stomp/stompjs", "playwright-core", "ws"].iter().all(|p| {
        dir.join("node_modules")
            .join(p)
            .join("package.json")
            .exists()
    })
}

/// The scripts of `tests/js`, with their packages installed.
#[derive(Debug, Clone)]
pub struct Scripts {
    dir: PathBuf,
}

impl Scripts {
    /// Runs `node SCRIPT ARGS...` in `tests/js` for at most `timeout`; on success, its last
    /// stdout line parsed as JSON. Panics with the script's stderr when it fails.
    #[track_caller]
    pub fn run(&self, script: &str, args: &[&str], timeout: Duration) -> serde_json::Value {
        let run = run_bounded(
            Command::new("node")
                .arg(script)
                .args(args)
                .current_dir(&self.dir),
            timeout,
        );
        let Finished {
            status,
            stdout,
            stderr,
        } = run;
        let out = String::from_utf8_lossy(&stdout);
        let err = String::from_utf8_lossy(&stderr);
        match status {
            Some(s) if s.success() => {}
            Some(s) => panic!("node {script} {args:?} failed ({s}):\n{err}\n{out}"),
            None => panic!("node {script} {args:?} ran past {timeout:?}; killed:\n{err}\n{out}"),
        }
        let last = out.lines().last().unwrap_or_default();
        serde_json::from_str(last)
            .unwrap_or_else(|e| panic!("node {script}: last line is not JSON ({e}): {out}"))
    }
}

/// Width and height of a PNG file, read from its header; `None` when it is not a PNG.
pub fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.len() < 24 || &bytes[..8] != SIGNATURE || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some((be(&bytes[16..20]), be(&bytes[20..24])))
}
