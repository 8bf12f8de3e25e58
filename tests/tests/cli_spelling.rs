//! One spelling per idea: `--persistent`/`--non-persistent` (persistent by default) in every
//! command, `--messages N` for how many, `--url` for a node's admin URL and `--stomp` for a
//! STOMP URL, `NAME[/NODE]` for `bench` too; the old spellings still work, hidden.

use mq_shared::bench::BenchReport;
use mq_shared::ctl::{ClusterManifest, SendReport};
use mq_tests::cli::CliHome;

fn manifest(home: &CliHome, name: &str) -> ClusterManifest {
    let path = home.cluster_dir(name).join("cluster.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("manifest")).expect("parses")
}

#[test]
fn persistence_and_counts_are_spelled_alike_everywhere() {
    let home = CliHome::new();
    let _cluster = home.create("words", &["--nodes", "1"]);
    let send = |args: &[&str]| -> SendReport {
        let mut all = vec!["queue", "send", "words", "q", "--body", "x", "-o", "json"];
        all.extend_from_slice(args);
        home.run(&all).expect_code(0).json()
    };
    let r = send(&["--messages", "2"]);
    assert_eq!((r.sent, r.persistent), (2, true), "persistent by default");
    let r = send(&["--messages", "2", "--non-persistent"]);
    assert_eq!((r.sent, r.persistent), (2, false));
    let r = send(&["--non-persistent", "--persistent"]);
    assert!(r.persistent, "the last one wins");
    // The old spellings, hidden.
    let r = send(&["--count", "3", "--no-persistent"]);
    assert_eq!((r.sent, r.persistent), (3, false));
    let help = home.run(&["queue", "send", "--help"]).expect_code(0);
    assert!(help.stdout.contains("--messages") && help.stdout.contains("--non-persistent"));
    assert!(!help.stdout.contains("--count"), "{}", help.stdout);

    let m = manifest(&home, "words");
    let admin = m.nodes[0].admin_url();
    let stomp = m.nodes[0].transport_uri();
    let token = m.token_file.clone();

    // bench: persistent by default too, and it takes NAME, --url (admin) or --stomp.
    let bench = |args: &[&str]| -> BenchReport {
        let mut all = vec!["bench", "--messages", "20", "-o", "json"];
        all.extend_from_slice(args);
        home.run(&all).expect_code(0).json()
    };
    let r = bench(&["words", "--queue", "w.name"]);
    assert!(r.params.load.persistent);
    assert_eq!((r.sent, r.received, r.lost), (20, 20, 0));
    let (login, passcode) = home.login("words");
    let r = bench(&[
        "--url",
        &admin,
        "--token-file",
        &token,
        "--queue",
        "w.url",
        "--login",
        &login,
        "--passcode",
        &passcode,
    ]);
    assert_eq!(r.received, 20);
    assert_eq!(
        r.params.url, stomp,
        "the admin URL led to the STOMP transport"
    );
    let r = bench(&[
        "--stomp",
        &stomp,
        "--non-persistent",
        "--queue",
        "w.stomp",
        "--login",
        &login,
        "--passcode",
        &passcode,
    ]);
    assert!(!r.params.load.persistent);
    let r = bench(&[
        "--url",
        &stomp,
        "--queue",
        "w.old",
        "--login",
        &login,
        "--passcode",
        &passcode,
    ]);
    assert_eq!(r.received, 20, "--url with a STOMP URL still works");

    // --url is an admin URL in the admin commands: a STOMP URL there is a usage error.
    let run = home.run(&["queue", "browse", "--url", &stomp, "q"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--stomp"), "{}", run.stderr);
    // queue send over STOMP with --stomp.
    let r: SendReport = home.run_json(&[
        "queue",
        "send",
        "--stomp",
        &stomp,
        "q",
        "--body",
        "y",
        "--login",
        &login,
        "--passcode",
        &passcode,
    ]);
    assert_eq!(r.sent, 1);
}

#[test]
fn cluster_create_takes_the_same_persistence_flags() {
    let home = CliHome::new();
    let _a = home.create("mem", &["--nodes", "1", "--non-persistent"]);
    assert!(manifest(&home, "mem").nodes.iter().all(|n| !n.persistent));
    let _b = home.create("old", &["--nodes", "1", "--no-persistent"]);
    assert!(manifest(&home, "old").nodes.iter().all(|n| !n.persistent));
    let _c = home.create("disk", &["--nodes", "1"]);
    assert!(manifest(&home, "disk").nodes.iter().all(|n| n.persistent));
}
