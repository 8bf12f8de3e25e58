//! Unit tests of the node configuration.

use std::path::{Path, PathBuf};

use mq_shared::size::ByteSize;

use super::*;

#[test]
fn flags_win_over_file_and_bad_values_name_their_key() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let f = dir.path().join("node.toml");
    std::fs::write(
        &f,
        "name = \"fromfile\"\nprefetch = 7\ntransport = [\"tcp://127.0.0.1:0\"]\n",
    )?;
    let c = resolve(Options {
        config: Some(f.clone()),
        name: Some("fromflag".into()),
        ..Options::default()
    })?;
    assert_eq!(c.name, "fromflag");
    assert_eq!(c.prefetch, 7);
    std::fs::write(&f, "nmae = \"typo\"\n")?;
    let e = resolve(Options {
        config: Some(f),
        ..Options::default()
    })
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(e.contains("nmae"), "{e}");
    let e = resolve(Options {
        admin: Some("0.0.0.0:8161".into()),
        ..Options::default()
    })
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(e.contains("non-loopback"), "{e}");
    Ok(())
}

#[test]
fn sizes_take_units_and_log_settings_are_checked() -> Result<(), Box<dyn std::error::Error>> {
    let size = |s: &str| s.parse::<ByteSize>().map(|b| b.0);
    assert_eq!(size("4096"), Ok(4096));
    assert_eq!(size("100MiB"), Ok(100 << 20));
    assert_eq!(size("100 mib"), Ok(100 << 20));
    assert_eq!(size("512K"), Ok(512 << 10));
    assert_eq!(size("1GB"), Ok(1 << 30));
    for bad in ["", "MiB", "1.5MiB", "10 parsecs", "-1", "99999999999999GiB"] {
        assert!(size(bad).is_err(), "{bad}");
    }
    let dir = tempfile::tempdir()?;
    let f = dir.path().join("node.toml");
    std::fs::write(
        &f,
        "log-file = \"/tmp/n.log\"\nlog-max-size = \"2KiB\"\nlog-max-files = 3\nlog-format = \"json\"\n",
    )?;
    let c = resolve(Options {
        config: Some(f.clone()),
        ..Options::default()
    })?;
    let want = LogSettings {
        file: Some(PathBuf::from("/tmp/n.log")),
        max_size: 2048,
        max_files: 3,
        format: LogFormat::Json,
    };
    assert_eq!(c.log, want);
    std::fs::write(&f, "log-max-size = 5000\n")?;
    let c = resolve(Options {
        config: Some(f.clone()),
        ..Options::default()
    })?;
    assert_eq!(c.log.max_size, 5000);
    std::fs::write(&f, "log-format = \"xml\"\n")?;
    assert!(read_file(&f).is_err());
    let e = resolve(Options {
        log_max_size: Some(ByteSize(10)),
        ..Options::default()
    })
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(e.contains("log-max-size"), "{e}");
    Ok(())
}

/// `packaging/node.toml` names every key of [`Options`] (set, or commented out when it has
/// no default), names no other, and what it sets are the defaults: it cannot go stale.
#[test]
fn the_packaged_sample_config_lists_every_key_with_its_default()
-> Result<(), Box<dyn std::error::Error>> {
    use clap::CommandFactory;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/node.toml");
    let text = std::fs::read_to_string(&path)?;
    let named: std::collections::BTreeSet<&str> = text
        .lines()
        .filter_map(|line| {
            let line = line.trim_start().trim_start_matches('#').trim_start();
            let (key, _) = line.split_once('=')?;
            let key = key.trim();
            let kebab = key.chars().all(|c| c.is_ascii_lowercase() || c == '-');
            (!key.is_empty() && kebab).then_some(key)
        })
        .collect();
    let command = Options::command();
    let keys: std::collections::BTreeSet<&str> = command
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|l| !["config", "help", "version"].contains(l))
        .collect();
    let missing: Vec<_> = keys.difference(&named).collect();
    assert!(missing.is_empty(), "packaging/node.toml lacks {missing:?}");
    let unknown: Vec<_> = named.difference(&keys).collect();
    assert!(unknown.is_empty(), "packaging/node.toml names {unknown:?}");
    // The sample's data directory is the service's; every other value is the default.
    let data = Some(PathBuf::from("/var/lib/mqnode"));
    let sample = resolve(Options {
        config: Some(path),
        data: data.clone(),
        ..Options::default()
    })?;
    let defaults = resolve(Options {
        data,
        ..Options::default()
    })?;
    assert_eq!(format!("{sample:?}"), format!("{defaults:?}"));
    Ok(())
}
