//! What `mqctl` tells about itself: completion scripts a shell accepts, man pages for every
//! command, and `--help` with every default.

use std::process::Command;

use mq_tests::cli::CliHome;

#[test]
fn completions_are_valid_shell() {
    let home = CliHome::new();
    let bash = home.run(&["completions", "bash"]).expect_code(0);
    assert!(bash.stdout.contains("mqctl"), "{}", bash.stdout);
    let file = home.path().join("mqctl.bash");
    std::fs::write(&file, &bash.stdout).expect("write the script");
    let check = Command::new("bash")
        .arg("-n")
        .arg(&file)
        .output()
        .expect("run bash -n");
    assert!(
        check.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    for shell in ["zsh", "fish"] {
        let run = home.run(&["completions", shell]).expect_code(0);
        assert!(run.stdout.contains("cluster"), "{shell}: {}", run.stdout);
    }
    assert_eq!(home.run(&["completions", "tcsh"]).code, 2);
}

#[test]
fn man_pages_are_generated() {
    let home = CliHome::new();
    let page = home.run(&["man"]).expect_code(0);
    assert!(
        page.stdout.starts_with(".ie") || page.stdout.contains(".TH"),
        "{}",
        page.stdout
    );
    assert!(page.stdout.contains("mqctl"));
    let dir = home.path().join("man1");
    home.run(&["man", "--dir", dir.to_str().expect("utf-8 path")])
        .expect_code(0);
    for name in [
        "mqctl.1",
        "mqctl-cluster-create.1",
        "mqctl-queue-stat.1",
        "mqctl-bench.1",
        "mqctl-node-logs.1",
    ] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        assert!(text.contains(".TH"), "{name}: {text}");
    }
}

#[test]
fn help_shows_every_default() {
    let home = CliHome::new();
    let bench = home.run(&["bench", "--help"]).expect_code(0);
    for default in [
        "[default: 1024]",
        "[default: 10000 without --duration]",
        "[default: mqbench]",
        "[default: as fast as",
        "[default: tcp://127.0.0.1:61613",
        "[default: auto]",
        "[default: 1000]",
    ] {
        assert!(
            bench.stdout.contains(default),
            "{default}:\n{}",
            bench.stdout
        );
    }
    let create = home.run(&["cluster", "create", "--help"]).expect_code(0);
    for default in [
        "[default: 61700]",
        "[default: 3]",
        "[default: mesh]",
        "[default: 20]",
    ] {
        assert!(
            create.stdout.contains(default),
            "{default}:\n{}",
            create.stdout
        );
    }
}
