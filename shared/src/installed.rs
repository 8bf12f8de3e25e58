//! Where PostgreSQL's programs are installed, and the ids of the system user to run them as
//! (PostgreSQL refuses to run as root): `mqctl cluster create --ha jdbc` finds the local
//! server it starts this way, and so does the integration tests' harness.

use std::path::PathBuf;

/// The newest `/usr/lib/postgresql/*/bin` holding `initdb` (Debian's `postgresql` package),
/// else the first folder of the `PATH` holding `initdb` and every one of `programs`.
pub fn bin_dir(programs: &[&str]) -> Option<PathBuf> {
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max();
    if let Some((_, bin)) = newest {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).find(|p| {
            p.join("initdb").is_file() && programs.iter().all(|program| p.join(program).is_file())
        })
    })
}

/// The uid and gid of the user `name` in `/etc/passwd`.
pub fn user_ids(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() > 3 && f[0] == name {
            Some((f[2].parse().ok()?, f[3].parse().ok()?))
        } else {
            None
        }
    })
}
