//! Where the binaries under test are: the workspace's target directory, debug or release.

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
    let path = target.join(profile).join(name);
    if !path.is_file() {
        panic!(
            "{} not found: run cargo build --workspace --bins first{}",
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
