//! Where the binaries (and this crate's examples) under test are: the workspace's target
//! directory, debug or release.

use std::path::{Path, PathBuf};

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// Path of a built workspace binary: `$CARGO_TARGET_DIR` (else `target/` in the workspace),
/// then `debug/NAME`, or `release/NAME` with `MQ_TEST_PROFILE=release`.
///
/// Panics with the command to run when the binary is missing.
pub fn bin_path(name: &str) -> PathBuf {
    built(name, "", "--workspace --bins")
}

/// Path of a built example of this crate (`debug/examples/NAME`, or under `release/`), which
/// `cargo test` builds with the tests. Panics with the command to run when it is missing.
pub fn example_path(name: &str) -> PathBuf {
    built(name, "examples", "-p mq-tests --examples")
}

fn built(name: &str, sub: &str, build_flags: &str) -> PathBuf {
    let root = workspace_root();
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                root.join(dir)
            }
        }
        None => root.join("target"),
    };
    let profile = match std::env::var("MQ_TEST_PROFILE").as_deref() {
        Ok("release") => "release",
        _ => "debug",
    };
    let path = target.join(profile).join(sub).join(name);
    if !path.is_file() {
        panic!(
            "{} not found: run cargo build {build_flags} first{}",
            path.display(),
            if profile == "release" {
                " --release"
            } else {
                ""
            }
        );
    }
    path
}
