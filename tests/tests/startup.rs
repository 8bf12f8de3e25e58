//! Starts that must be refused with a clear message and a non-zero exit, and configuration
//! from a file.

use mq_shared::api::{BrokerInfo, Role};
use mq_tests::*;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `mqnode` flags for a throwaway node in `dir`, plus `extra`.
fn args<'a>(dir: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--name", "refused", "--data", dir];
    v.extend_from_slice(extra);
    v
}

#[tokio::test]
async fn admin_on_every_interface_needs_a_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8 path");
    let out = run_mqnode(&args(
        d,
        &["--transport", "tcp://127.0.0.1:0", "--admin", "0.0.0.0:0"],
    ));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("0.0.0.0") && err.contains("--admin-token-file"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "printed a ready line: {out:?}");

    // With a token it starts.
    let node = Node::start(
        NodeOpts {
            admin: "0.0.0.0:0".into(),
            ..NodeOpts::new("open")
        }
        .token("t"),
    );
    let b: BrokerInfo = node.admin().get_ok("/api/v1/broker").await;
    assert_eq!(b.name, "open");
}

/// Which listener [`start_on_a_busy_port`] gives the busy port.
enum Busy {
    Transport,
    Admin,
}

/// Runs a throwaway node whose transport or admin API is given a port held busy meanwhile;
/// returns its output and the port.
fn start_on_a_busy_port(which: Busy) -> (std::process::Output, u16) {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8 path");
    let (_held, port) = busy_port();
    let transport = format!("tcp://127.0.0.1:{port}");
    let admin = format!("127.0.0.1:{port}");
    let listen = match which {
        Busy::Transport => ["--transport", &transport, "--admin", "127.0.0.1:0"],
        Busy::Admin => ["--transport", "tcp://127.0.0.1:0", "--admin", &admin],
    };
    (run_mqnode(&args(d, &listen)), port)
}

/// [`start_on_a_busy_port`], asserting that the start was refused naming the port.
fn refused_naming_the_busy_port(which: Busy) -> std::process::Output {
    let (out, port) = start_on_a_busy_port(which);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&port.to_string()), "{err}");
    out
}

#[test]
fn a_transport_port_in_use_is_named() {
    let out = refused_naming_the_busy_port(Busy::Transport);
    assert!(out.stdout.is_empty(), "printed a ready line: {out:?}");
}

#[test]
fn an_admin_port_in_use_is_named() {
    refused_naming_the_busy_port(Busy::Admin);
}

#[test]
fn config_file_errors_are_clear() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8 path");
    let listen = ["--transport", "tcp://127.0.0.1:0", "--admin", "127.0.0.1:0"];

    // (file, its contents (none: it does not exist), what the error must name)
    for (name, contents, named) in [
        ("missing.toml", None, "missing.toml"),
        (
            "invalid.toml",
            Some("name = \"unterminated\nprefetch = = 3\n"),
            "invalid.toml",
        ),
        (
            "unknown.toml",
            Some("prefetch = 10\nmaximum-redelivery = 3\n"),
            "maximum-redelivery",
        ),
    ] {
        let file = dir.path().join(name);
        if let Some(text) = contents {
            std::fs::write(&file, text).expect("write");
        }
        let mut a = args(d, &listen);
        a.extend_from_slice(&["--config", file.to_str().expect("utf-8 path")]);
        let out = run_mqnode(&a);
        assert!(!out.status.success(), "{name}");
        assert!(stderr(&out).contains(named), "{}", stderr(&out));
    }

    // A bad value names its flag.
    let out = run_mqnode(&args(d, &["--transport", "udp://127.0.0.1:0"]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("transport"), "{}", stderr(&out));
}

#[tokio::test]
async fn a_config_file_sets_what_flags_do_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("node.toml");
    std::fs::write(&file, "name = \"from-file\"\npersistent = false\n").expect("write");
    let file = file.to_str().expect("utf-8 path").to_owned();
    // The harness passes --name, which wins over the file's.
    let node = Node::start(NodeOpts::new("from-flag").args(["--config", &file]));
    let b: BrokerInfo = node.admin().get_ok("/api/v1/broker").await;
    assert_eq!(b.name, "from-flag");
    assert!(!b.persistent);
    assert_eq!(b.role, Role::Standalone);
    assert_eq!(node.role(), Role::Standalone);

    // Without a store, persistent:true messages still flow (from memory).
    let mut c = connect(&node.stomp_addr()).await;
    subscribe(&mut c, "/queue/mem", "s", client::AckMode::Auto).await;
    send_persistent(&mut c, "/queue/mem", "in memory").await;
    assert_eq!(body_str(&recv(&mut c, SOON).await), "in memory");
    let r = node
        .admin()
        .post(
            "/api/v1/queues/mem/messages",
            Some(r#"{"body":"via admin"}"#),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let s: mq_shared::api::SendResponse = r.json();
    assert!(
        !s.persistent,
        "a node without a store says it stored: {s:?}"
    );
    assert_eq!(body_str(&recv(&mut c, SOON).await), "via admin");
}

#[test]
fn a_refused_start_names_its_cause_once() {
    // `mqnode: node X failed to start: cannot listen on transport tcp://...: Address already
    // in use (os error 98)` with the OS error printed once, not twice.
    let (out, _) = start_on_a_busy_port(Busy::Transport);
    let err = stderr(&out);
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("mqnode: "), "{err}");
    assert_eq!(
        last.matches("os error").count(),
        1,
        "cause repeated: {last}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.toml");
    let out = run_mqnode(&["--config", missing.to_str().expect("utf-8 path")]);
    let err = stderr(&out);
    assert_eq!(err.matches("os error").count(), 1, "cause repeated: {err}");
}
