//! Security against real nodes: logins (one answer, `authentication failed`, whatever was
//! wrong), authorization per the first matching entry, the admin right to create, the refusal
//! of non-loopback transports without a security file, who may act as a bridge (and why ids a
//! client chooses cannot shadow forwarded messages), the admin API's token, Host and Origin
//! checks, masked connector passwords, reloads (API and SIGHUP), TLS transports, links and
//! HTTPS admin, and signed multicast discovery.

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;

use mq_tests::api::PeerState;
use mq_tests::certs::Pki;
use mq_tests::client::{AckMode, ClientError, ConnectOptions, StompClient};
use mq_tests::frame::{Command as StompCommand, Frame};
use mq_tests::multicast::{NamespacedTest, in_loopback_namespace};
use mq_tests::network::*;
use mq_tests::security::*;
use mq_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The exact ERROR message of every refused login.
const AUTH_FAILED: &str = "authentication failed";

/// The rules most tests run with. First match in file order: `orders.vip` before `orders.>`.
fn rules() -> SecurityFile {
    SecurityFile::new()
        .bridge_groups(&["brokers"])
        .user("app", "app-pw", &["apps"])
        .user("vip", "vip-pw", &["vips"])
        .user("owner", "owner-pw", &["apps", "owners"])
        .user("broker", "broker-pw", &["brokers"])
        .entry("queue://orders.vip", &["vips"], &["vips"], &["vips"])
        .entry(
            "queue://orders.>",
            &["apps", "brokers"],
            &["apps", "brokers"],
            &["apps", "brokers"],
        )
        .entry("queue://shared.>", &["apps"], &["apps"], &["owners"])
        .entry(
            "topic://prices.*",
            &["apps", "anonymous"],
            &["apps"],
            &["apps", "anonymous"],
        )
        .entry("queue://>", &["brokers"], &["brokers"], &["brokers"])
}

/// A node running `file`; the directory holding the file comes back with it.
fn secured(name: &str, file: &SecurityFile) -> (Node, SecurityDir) {
    let sec = SecurityDir::new(file);
    let node = Node::start(NodeOpts::new(name).args(sec.args()));
    (node, sec)
}

async fn login_ok(node: &Node, user: &str, password: &str) -> StompClient {
    connect_with(&node.stomp_addr(), login(user, password)).await
}

/// A CONNECT frame with the given optional `login` and `passcode`.
fn connect_frame(user: Option<&str>, password: Option<&str>) -> Frame {
    let mut f = Frame::new(StompCommand::Connect)
        .with_header("accept-version", "1.2")
        .with_header("host", "localhost");
    if let Some(u) = user {
        f.push_header("login", u);
    }
    if let Some(p) = password {
        f.push_header("passcode", p);
    }
    f
}

/// The ERROR message a SEND (with a receipt) gets; the node closes the connection after it.
async fn send_refused(c: &mut StompClient, dest: &str) -> String {
    match c.send(dest, "x", &[], true).await {
        Ok(()) => panic!("SEND to {dest} should have been refused"),
        Err(e) => server_message(&e).to_string(),
    }
}

/// The ERROR message a SUBSCRIBE gets.
async fn subscribe_refused(c: &mut StompClient, dest: &str) -> String {
    match c.subscribe(dest, "s", AckMode::Auto, &[]).await {
        Ok(()) => panic!("SUBSCRIBE to {dest} should have been refused"),
        Err(e) => server_message(&e).to_string(),
    }
}

/// Sends one message to `dest` as `user` and reads it back on a subscription of its own.
async fn round_trip(node: &Node, user: &str, password: &str, dest: &str) {
    let mut c = login_ok(node, user, password).await;
    subscribe(&mut c, dest, "s", AckMode::Auto).await;
    send(&mut c, dest, format!("hello {dest}"), &[]).await;
    let m = recv(&mut c, SOON).await;
    assert_eq!(body_str(&m), format!("hello {dest}"));
    let _ = c.disconnect().await;
}

// ---- authentication ------------------------------------------------------------------------

#[tokio::test]
async fn every_failed_login_gets_the_same_error_and_a_close_and_is_counted() {
    let (node, _sec) = secured("auth", &rules());
    let cases: [(&str, Option<&str>, Option<&str>); 5] = [
        ("wrong password", Some("app"), Some("not-app-pw")),
        ("unknown user", Some("nobody"), Some("app-pw")),
        ("no passcode", Some("app"), None),
        ("anonymous (no login)", None, None),
        ("anonymous (empty login)", Some(""), Some("")),
    ];
    for (what, user, password) in cases {
        let mut raw = RawConn::open(&node.stomp_addr()).await;
        raw.send_frame(&connect_frame(user, password)).await;
        let error = raw.expect_error_then_close(SOON).await;
        assert_eq!(error.header("message"), Some(AUTH_FAILED), "{what}");
        assert_eq!(
            body_str(&error),
            AUTH_FAILED,
            "{what}: the body says no more"
        );
    }
    assert_eq!(metric(&node, "mq_failed_logins_total").await, 5);
    // The right password gets in, and is not counted.
    round_trip(&node, "app", "app-pw", "/queue/orders.auth").await;
    assert_eq!(metric(&node, "mq_failed_logins_total").await, 5);
}

#[tokio::test]
async fn anonymous_clients_get_in_only_where_the_file_allows_them() {
    let (node, _sec) = secured("anon", &rules().anonymous(true));
    // No login: in, as group "anonymous", with that group's rights only.
    let mut c = connect(&node.stomp_addr()).await;
    subscribe(&mut c, "/topic/prices.eu", "s", AckMode::Auto).await;
    assert_eq!(
        send_refused(&mut c, "/topic/prices.eu").await,
        "anonymous is not allowed to write to /topic/prices.eu"
    );
    // Anonymous access does not make a wrong password good.
    let e = refused(&node.stomp_addr(), login("app", "wrong")).await;
    assert_eq!(server_message(&e), AUTH_FAILED);
    let e = refused(&node.stomp_addr(), login("nobody", "")).await;
    assert_eq!(server_message(&e), AUTH_FAILED);
    assert_eq!(metric(&node, "mq_failed_logins_total").await, 2);
    // A user's messages reach the anonymous subscriber.
    let mut app = login_ok(&node, "app", "app-pw").await;
    let mut reader = connect(&node.stomp_addr()).await;
    subscribe(&mut reader, "/topic/prices.us", "s", AckMode::Auto).await;
    send(&mut app, "/topic/prices.us", "42", &[]).await;
    assert_eq!(body_str(&recv(&mut reader, SOON).await), "42");
}

// ---- authorization -------------------------------------------------------------------------

#[tokio::test]
async fn denied_send_and_subscribe_name_the_operation_and_the_destination() {
    let (node, _sec) = secured("deny", &rules());
    let mut c = login_ok(&node, "app", "app-pw").await;
    assert_eq!(
        send_refused(&mut c, "/queue/secret").await,
        "user 'app' is not allowed to write to /queue/secret"
    );
    // The ERROR closed the connection.
    assert!(matches!(
        c.recv_timeout(SOON).await,
        Err(ClientError::Closed | ClientError::Io(_))
    ));
    let mut c = login_ok(&node, "app", "app-pw").await;
    assert_eq!(
        subscribe_refused(&mut c, "/queue/secret").await,
        "user 'app' is not allowed to read from /queue/secret"
    );
    assert_eq!(metric(&node, "mq_denied_operations_total").await, 2);
    assert!(
        node.admin().queue("secret").await.is_none(),
        "a refused operation creates nothing"
    );
    // A topic no entry matches: nobody may use it.
    let mut c = login_ok(&node, "app", "app-pw").await;
    assert_eq!(
        send_refused(&mut c, "/topic/elsewhere").await,
        "user 'app' is not allowed to write to /topic/elsewhere"
    );
    assert_eq!(metric(&node, "mq_denied_operations_total").await, 3);
}

#[tokio::test]
async fn the_first_matching_entry_in_file_order_decides_and_wildcards_match() {
    let (node, _sec) = secured("order", &rules());
    // `queue://orders.>` covers every name under orders.
    round_trip(&node, "app", "app-pw", "/queue/orders.eu").await;
    round_trip(&node, "app", "app-pw", "/queue/orders.eu.north").await;
    // `queue://orders.vip` comes first: the wildcard after it, which would let apps in, is
    // never looked at.
    let mut c = login_ok(&node, "app", "app-pw").await;
    assert_eq!(
        send_refused(&mut c, "/queue/orders.vip").await,
        "user 'app' is not allowed to write to /queue/orders.vip"
    );
    let mut c = login_ok(&node, "app", "app-pw").await;
    assert_eq!(
        subscribe_refused(&mut c, "/queue/orders.vip").await,
        "user 'app' is not allowed to read from /queue/orders.vip"
    );
    round_trip(&node, "vip", "vip-pw", "/queue/orders.vip").await;
    let mut c = login_ok(&node, "vip", "vip-pw").await;
    assert_eq!(
        send_refused(&mut c, "/queue/orders.eu").await,
        "user 'vip' is not allowed to write to /queue/orders.eu"
    );
    assert_eq!(metric(&node, "mq_denied_operations_total").await, 3);
}

#[tokio::test]
async fn creating_a_destination_on_first_use_needs_the_admin_right() {
    let (node, _sec) = secured("create", &rules());
    let mut app = login_ok(&node, "app", "app-pw").await;
    assert_eq!(
        send_refused(&mut app, "/queue/shared.jobs").await,
        "user 'app' is not allowed to create /queue/shared.jobs"
    );
    let mut app = login_ok(&node, "app", "app-pw").await;
    assert_eq!(
        subscribe_refused(&mut app, "/queue/shared.jobs").await,
        "user 'app' is not allowed to create /queue/shared.jobs"
    );
    assert!(node.admin().queue("shared.jobs").await.is_none());
    // The owner creates it; then plain write and read rights are enough.
    let mut owner = login_ok(&node, "owner", "owner-pw").await;
    send_persistent(&mut owner, "/queue/shared.jobs", "first").await;
    assert!(node.admin().queue("shared.jobs").await.is_some());
    let mut app = login_ok(&node, "app", "app-pw").await;
    send_persistent(&mut app, "/queue/shared.jobs", "second").await;
    subscribe(&mut app, "/queue/shared.jobs", "s", AckMode::Auto).await;
    let got = drain(&mut app, 2, SOON).await;
    assert_eq!(bodies(&got), ["first", "second"]);
    assert_eq!(metric(&node, "mq_denied_operations_total").await, 2);
}

/// The example file of docs/security.md, with real hashes for its elided ones.
fn documented_file() -> String {
    let doc = std::fs::read_to_string(workspace_root().join("docs/security.md"))
        .expect("reading docs/security.md");
    let block = doc
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/security.md has a TOML example");
    // The documented hash of `app` is of "the password"; the others are elided.
    block.replace("$argon2id$v=19$m=19456,t=2,p=1$...", &hash("other-pw"))
}

#[tokio::test]
async fn the_documented_security_file_works_as_described() {
    let sec = SecurityDir::new(&SecurityFile::new());
    sec.replace(&documented_file());
    let node = Node::start(NodeOpts::new("doc").args(sec.args()));
    // The specific entry wins over the wildcard after it: apps write, only the auditor reads.
    let mut app = login_ok(&node, "app", "the password").await;
    send_persistent(&mut app, "/queue/orders.audit", "audited").await;
    assert_eq!(
        subscribe_refused(&mut app, "/queue/orders.audit").await,
        "user 'app' is not allowed to read from /queue/orders.audit"
    );
    let mut auditor = login_ok(&node, "auditor", "other-pw").await;
    subscribe(&mut auditor, "/queue/orders.audit", "s", AckMode::Auto).await;
    assert_eq!(body_str(&recv(&mut auditor, SOON).await), "audited");
    round_trip(&node, "app", "the password", "/queue/orders.eu.north").await;
    // `prices.*` is one segment; anonymous clients are not let in at all.
    let mut app = login_ok(&node, "app", "the password").await;
    assert_eq!(
        send_refused(&mut app, "/topic/prices.eu.north").await,
        "user 'app' is not allowed to write to /topic/prices.eu.north"
    );
    let e = refused(&node.stomp_addr(), ConnectOptions::default()).await;
    assert_eq!(server_message(&e), AUTH_FAILED);
    let mut app = login_ok(&node, "app", "the password").await;
    assert_eq!(
        send_refused(&mut app, "/queue/billing").await,
        "user 'app' is not allowed to write to /queue/billing"
    );
    let b = connect_with(
        &node.stomp_addr(),
        ConnectOptions {
            headers: vec![("mq-bridge".into(), "X".into())],
            ..login("broker", "other-pw")
        },
    )
    .await;
    assert_eq!(b.connected().header("mq-broker"), Some("doc"));
}

// ---- without a security file -----------------------------------------------------------------

#[test]
fn without_a_security_file_a_non_loopback_transport_refuses_to_start() {
    let data = tempfile::tempdir().expect("a data directory");
    let data = data.path().display().to_string();
    let out = run_mqnode_on("open", &data, "tcp://0.0.0.0:0", &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it started: {err}");
    assert!(
        err.contains("refusing to serve STOMP on non-loopback tcp://0.0.0.0:0 without --security"),
        "{err}"
    );
    assert!(
        out.stdout.is_empty(),
        "no ready line: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn without_a_security_file_loopback_clients_get_in_anonymously() {
    let node = Node::start(NodeOpts::new("open"));
    let mut c = connect(&node.stomp_addr()).await;
    subscribe(&mut c, "/queue/open", "s", AckMode::Auto).await;
    send(&mut c, "/queue/open", "hi", &[]).await;
    assert_eq!(body_str(&recv(&mut c, SOON).await), "hi");
    // A login, if one is given, is not checked: there is nothing to check it against.
    let _c = connect_with(&node.stomp_addr(), login("anyone", "anything")).await;
    // Loopback peers may act as bridges.
    let opts = ConnectOptions {
        headers: vec![("mq-bridge".into(), "X".into())],
        ..ConnectOptions::default()
    };
    let b = connect_with(&node.stomp_addr(), opts).await;
    assert_eq!(b.connected().header("mq-broker"), Some("open"));
    // There is no file to reload.
    let r = node.admin().post("/api/v1/security/reload", None).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.body.contains("this node has no security file to reload"),
        "{}",
        r.body
    );
}

// ---- bridges ---------------------------------------------------------------------------------

#[tokio::test]
async fn only_users_in_bridge_groups_may_act_as_bridges() {
    let (node, _sec) = secured("bridges", &rules().anonymous(true));
    let claim = |opts: ConnectOptions| ConnectOptions {
        headers: vec![("mq-bridge".into(), "X".into())],
        ..opts
    };
    let e = refused(&node.stomp_addr(), claim(login("app", "app-pw"))).await;
    assert_eq!(
        server_message(&e),
        "user 'app' may not act as a network bridge (not in bridge-groups)"
    );
    let e = refused(&node.stomp_addr(), claim(ConnectOptions::default())).await;
    assert_eq!(
        server_message(&e),
        "anonymous may not act as a network bridge (not in bridge-groups)"
    );
    let b = connect_with(&node.stomp_addr(), claim(login("broker", "broker-pw"))).await;
    assert_eq!(b.connected().header("mq-broker"), Some("bridges"));
    // Without the claim a bridge user is an ordinary client.
    let c = login_ok(&node, "broker", "broker-pw").await;
    assert_eq!(c.connected().header("mq-broker"), None);
}

/// An id `ID:BROKER-UUID` split into the broker's part and the UUID's 32 hex digits.
fn split_id(id: &str) -> Option<(&str, String)> {
    let u = id.strip_prefix("ID:")?;
    let parts: Vec<&str> = u.rsplitn(6, '-').collect();
    if parts.len() != 6 {
        return None;
    }
    let broker = parts[5];
    let hex: String = parts[..5].iter().rev().copied().collect();
    Some((broker, hex))
}

/// The id after `id` by `k`, as someone who knows the id scheme would guess it: the UUID's
/// 128 bits plus `k` (and, for ids ending in a number, that number plus `k`).
fn guess_next(id: &str, k: u128) -> String {
    let (broker, hex) = split_id(id).unwrap_or(("", String::new()));
    match u128::from_str_radix(&hex, 16) {
        Ok(v) => {
            let h = format!("{:032x}", v.wrapping_add(k));
            format!(
                "ID:{broker}-{}-{}-{}-{}-{}",
                &h[0..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            )
        }
        Err(_) => match id.rsplit_once('-') {
            Some((head, n)) => format!("{head}-{}", n.parse::<u128>().unwrap_or(0) + k),
            None => format!("{id}-{k}"),
        },
    }
}

/// Whether `id` is `ID:`, the broker's name and a version 4 UUID.
fn is_uuid_id(id: &str) -> bool {
    let Some(u) = id.strip_prefix("ID:") else {
        return false;
    };
    let mut groups: Vec<&str> = u.rsplitn(6, '-').collect();
    if groups.len() != 6 {
        return false;
    }
    groups.truncate(5);
    groups.reverse();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
        && groups[2].starts_with('4')
}

#[tokio::test]
async fn ids_a_client_chooses_cannot_shadow_forwarded_messages() {
    const GUESSES: u128 = 2_000;
    const REAL: usize = 20;
    let (b, _sb) = secured("B", &rules());
    let link = static_uri(
        &[&b],
        "userName=broker&password=broker-pw&initialReconnectDelay=100",
    );
    let sa = SecurityDir::new(&rules());
    let a = Node::start(
        NodeOpts::new("A")
            .args(sa.args())
            .args(["--network", &link]),
    );
    wait_connected(&a, 1).await;
    let mut consumer = login_ok(&b, "app", "app-pw").await;
    subscribe(&mut consumer, "/queue/orders.x", "s", AckMode::Auto).await;
    wait_consumers(&a, "orders.x", 1).await;

    // A plain client learns one id of A's ...
    let mut probe = login_ok(&a, "app", "app-pw").await;
    subscribe(&mut probe, "/queue/orders.probe", "s", AckMode::Auto).await;
    send(&mut probe, "/queue/orders.probe", "probe", &[]).await;
    let seen = recv(&mut probe, SOON).await;
    let id0 = seen.header("message-id").unwrap_or_default().to_string();
    assert!(is_uuid_id(&id0), "message ids are random UUIDs: {id0}");
    // ... and stores the next ids on B first, as if A had forwarded them, broker path and all.
    let guessed: HashSet<String> = (1..=GUESSES).map(|k| guess_next(&id0, k)).collect();
    let mut forger = login_ok(&b, "app", "app-pw").await;
    let mut ids: Vec<&String> = guessed.iter().collect();
    ids.sort();
    for window in ids.chunks(200) {
        let mut receipts = Vec::new();
        for id in window {
            let r = forger.next_receipt_id();
            let f = Frame::new(StompCommand::Send)
                .with_header("destination", "/queue/orders.x")
                .with_header("message-id", id.as_str())
                .with_header("mq-broker-path", "A")
                .with_header("persistent", "true")
                .with_header("receipt", r.as_str())
                .with_body("forged");
            forger.queue_frame(&f);
            receipts.push(r);
        }
        forger.flush().await.expect("writing the forged SENDs");
        for r in receipts {
            if let Err(e) = forger.wait_receipt(&r).await {
                panic!("receipt {r} for a forged SEND: {e}");
            }
        }
    }
    // Then A's own messages, each confirmed, all reach the consumer on B.
    let mut producer = login_ok(&a, "app", "app-pw").await;
    for i in 0..REAL {
        send_persistent(&mut producer, "/queue/orders.x", format!("real-{i}")).await;
    }
    let got = drain(&mut consumer, GUESSES as usize + REAL, SOON).await;
    let mut real = Vec::new();
    for m in &got {
        let id = m.header("message-id").unwrap_or_default();
        assert!(
            !guessed.contains(id),
            "B kept an id a client chose: {id} ({})",
            body_str(m)
        );
        assert!(is_uuid_id(id), "{id}");
        if body_str(m) != "forged" {
            real.push(body_str(m));
        }
    }
    let want: Vec<String> = (0..REAL).map(|i| format!("real-{i}")).collect();
    assert_eq!(
        real, want,
        "every message sent on A reached B, once, in order"
    );
    expect_nothing(&mut consumer, QUIET).await;
}

// ---- admin API -------------------------------------------------------------------------------

#[tokio::test]
async fn the_admin_api_needs_the_token() {
    let node = Node::start(NodeOpts::new("token"));
    let url = format!("{}/api/v1/broker", node.admin_url());
    for token in [None, Some("wrong-token")] {
        let r = http(reqwest::Method::GET, &url, None, token).await;
        assert_eq!(r.status, 401, "{token:?}: {}", r.body);
        assert!(r.body.contains("\"unauthorized\""), "{}", r.body);
    }
    let r = http(
        reqwest::Method::GET,
        &format!("{}/metrics", node.admin_url()),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.body);
    let r = node.admin().get("/api/v1/broker").await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Health checks stay open to probes.
    let r = http(
        reqwest::Method::GET,
        &format!("{}/healthz", node.admin_url()),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn the_admin_api_refuses_foreign_hosts_and_origins() {
    let mut node =
        Node::start(NodeOpts::new("origin").args(["--admin-allowed-hosts", "mq.example"]));
    let token = node.token().expect("a node always has a token");
    let bearer = format!("Bearer {token}");
    let own = node.admin_url().trim_start_matches("http://").to_string();
    let auth = [("Authorization", bearer.as_str())];

    let r = admin_raw(
        &node,
        "GET",
        "/api/v1/broker",
        "attacker.example",
        &auth,
        "",
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("attacker.example"), "{}", r.body);
    // A web page's form posted to the admin API: refused, with or without the token.
    let form = [
        ("Origin", "http://attacker.example"),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    let with_token = [form[0], form[1], auth[0]];
    for headers in [&form[..], &with_token[..]] {
        let r = admin_raw(
            &node,
            "POST",
            "/api/v1/shutdown",
            &own,
            headers,
            "confirm=yes",
        )
        .await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(r.body.contains("another origin"), "{}", r.body);
    }
    let r = node.admin().get("/api/v1/broker").await;
    assert_eq!(r.status, 200, "the node is still up: {}", r.body);
    assert!(node.is_running());
    // Its own origin, localhost and an allowed name are answered.
    let own_origin = format!("http://{own}");
    let with_own = [auth[0], ("Origin", own_origin.as_str())];
    for (host, headers) in [
        (own.as_str(), &with_own[..]),
        ("localhost", &auth[..]),
        ("mq.example", &auth[..]),
    ] {
        let r = admin_raw(&node, "GET", "/api/v1/broker", host, headers, "").await;
        assert_eq!(r.status, 200, "Host {host}: {}", r.body);
    }
}

#[tokio::test]
async fn the_generated_token_file_is_private_and_named_in_the_ready_line() {
    let node = Node::start(NodeOpts::new("gen"));
    let file = node
        .ready()
        .admin_token_file
        .clone()
        .expect("the ready line names the token file");
    assert_eq!(
        std::path::Path::new(&file),
        node.data_dir().join("admin.token")
    );
    let meta = std::fs::metadata(&file).expect("the token file exists");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{file}");
    let token = std::fs::read_to_string(&file).expect("reading the token file");
    assert!(token.trim().len() >= 32, "a long random token: {token:?}");
    let r = http(
        reqwest::Method::GET,
        &format!("{}/api/v1/broker", node.admin_url()),
        None,
        Some(token.trim()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

// ---- secrets ---------------------------------------------------------------------------------

#[tokio::test]
async fn connector_passwords_are_masked_in_answers_and_logs_and_saved_privately() {
    let (b, _sb) = secured(
        "B",
        &SecurityFile::new()
            .bridge_groups(&["brokers"])
            .user("broker", "s3cret", &["brokers"]),
    );
    let a = Node::start(NodeOpts::new("A"));
    let good = static_uri(
        &[&b],
        "userName=broker&password=s3cret&initialReconnectDelay=100",
    );
    let info = add_link(&a, &good).await;
    assert!(info.uri.contains("password=***"), "{}", info.uri);
    let bad = static_uri(
        &[&b],
        "name=bad&userName=broker&password=n0t-the-one&initialReconnectDelay=100",
    );
    add_link(&a, &bad).await;
    wait_connected(&a, 1).await;
    // The wrong password is refused, in the same words as any failed login.
    wait_for_async(LINK, async || {
        connectors(&a).await.connectors.iter().any(|c| {
            c.name == "bad"
                && c.peers.iter().any(|p| {
                    p.state != PeerState::Connected
                        && p.last_error
                            .as_deref()
                            .is_some_and(|e| e.contains(AUTH_FAILED))
                })
        })
    })
    .await;
    assert!(metric(&b, "mq_failed_logins_total").await >= 1);

    let listed = a.admin().get("/api/v1/network-connectors").await;
    assert_eq!(listed.status, 200);
    for secret in ["s3cret", "n0t-the-one"] {
        assert!(!listed.body.contains(secret), "{}", listed.body);
        assert!(
            !a.log().contains(secret),
            "A's log shows {secret}:\n{}",
            a.log()
        );
        assert!(
            !b.log().contains(secret),
            "B's log shows {secret}:\n{}",
            b.log()
        );
    }
    assert!(listed.body.contains("password=***"), "{}", listed.body);
    let saved = a.data_dir().join("network-connectors.json");
    let meta = std::fs::metadata(&saved).expect("run-time connectors are saved");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}

#[test]
fn a_transport_that_cannot_listen_does_not_print_its_discovery_secret() {
    let (_held, port) = busy_port();
    let data = tempfile::tempdir().expect("a data directory");
    let data = data.path().display().to_string();
    let transport =
        format!("tcp://127.0.0.1:{port}?discoveryUri=multicast://default?secret=t0p-secret");
    let out = run_mqnode_on("busy", &data, &transport, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("cannot listen on transport"), "{err}");
    assert!(err.contains("secret=***"), "{err}");
    assert!(!err.contains("t0p-secret"), "{err}");
}

// ---- reload ----------------------------------------------------------------------------------

#[tokio::test]
async fn reload_through_the_api_applies_a_good_file_and_keeps_the_rules_on_a_bad_one() {
    let (node, sec) = secured("reload", &rules());
    let e = refused(&node.stomp_addr(), login("late", "late-pw")).await;
    assert_eq!(server_message(&e), AUTH_FAILED);

    let more = rules()
        .user("late", "late-pw", &["apps"])
        .user("spare", "spare-pw", &["apps"]);
    sec.replace(&more.to_toml());
    let r = node.admin().post("/api/v1/security/reload", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("\"reloaded\""), "{}", r.body);
    round_trip(&node, "late", "late-pw", "/queue/orders.late").await;

    // A broken file: an error naming file, line and column, and the rules stay as they were.
    sec.replace("anonymous = true\n[[users]]\nname = \"late\"\npassword = \"plain text\"\ngroups = [\"apps\"]\n");
    let r = node.admin().post("/api/v1/security/reload", None).await;
    assert_eq!(r.status, 409, "{}", r.body);
    let path = sec.path.display().to_string();
    for part in [
        path.as_str(),
        "line 4",
        "password of user 'late'",
        "the rules loaded before stay in force",
    ] {
        assert!(r.body.contains(part), "missing {part:?}: {}", r.body);
    }
    assert!(!r.body.contains("plain text"), "{}", r.body);
    // `spare` never logged in (no remembered login): the rules checked are the old ones.
    round_trip(&node, "spare", "spare-pw", "/queue/orders.spare").await;
    let e = refused(&node.stomp_addr(), ConnectOptions::default()).await;
    assert_eq!(server_message(&e), AUTH_FAILED, "still no anonymous access");
    let mut c = login_ok(&node, "late", "late-pw").await;
    assert_eq!(
        send_refused(&mut c, "/queue/secret").await,
        "user 'late' is not allowed to write to /queue/secret"
    );
}

#[tokio::test]
async fn sighup_reloads_the_security_file() {
    let (node, sec) = secured("hup", &rules());
    let hup = || {
        let pid = rustix::process::Pid::from_raw(node.pid() as i32).expect("a child's pid");
        rustix::process::kill_process(pid, rustix::process::Signal::HUP).expect("SIGHUP");
    };
    let e = refused(&node.stomp_addr(), login("hup", "hup-pw")).await;
    assert_eq!(server_message(&e), AUTH_FAILED);
    sec.replace(
        &rules()
            .user("hup", "hup-pw", &["apps"])
            .user("spare", "spare-pw", &["apps"])
            .to_toml(),
    );
    hup();
    wait_for(SOON, || {
        node.log().contains("SIGHUP: security file reloaded")
    });
    round_trip(&node, "hup", "hup-pw", "/queue/orders.hup").await;

    sec.replace("anonymous = maybe\n");
    hup();
    wait_for(SOON, || {
        node.log()
            .contains("SIGHUP: security file not reloaded; the old rules stay")
    });
    round_trip(&node, "spare", "spare-pw", "/queue/orders.spare").await;
}

// ---- TLS -------------------------------------------------------------------------------------

/// A node with an `ssl://` transport (`query` appended) and the CA's node certificate.
fn tls_node(name: &str, pki: &Pki, query: &str, extra: &[String]) -> Node {
    let mut opts = NodeOpts::new(name)
        .args(pki.node_args())
        .args(extra.to_vec());
    opts.transport = format!("ssl://127.0.0.1:0{query}");
    Node::start(opts)
}

fn ssl_url(node: &Node) -> String {
    let url = node.ready().transports[0].clone();
    assert!(url.starts_with("ssl://"), "{url}");
    url
}

fn tls_opts(tls: std::sync::Arc<mq_shared::tls::ClientConfig>) -> ConnectOptions {
    ConnectOptions {
        tls: Some(tls),
        ..ConnectOptions::default()
    }
}

#[tokio::test]
async fn an_ssl_transport_carries_stomp_and_refuses_plain_bytes() {
    let pki = Pki::new();
    let sec = SecurityDir::new(&rules());
    let node = tls_node("tls", &pki, "", &sec.args());
    let url = ssl_url(&node);
    let mut c = connect_with(&url, login_tls("app", "app-pw", pki.client())).await;
    subscribe(&mut c, "/queue/orders.tls", "s", AckMode::Auto).await;
    send(&mut c, "/queue/orders.tls", "over tls", &[]).await;
    assert_eq!(body_str(&recv(&mut c, SOON).await), "over tls");
    // The login is checked over TLS as over TCP: the same ERROR, then the end of the session.
    let e = refused(&url, login_tls("app", "wrong", pki.client())).await;
    assert_eq!(server_message(&e), AUTH_FAILED);
    let mut tls = mq_shared::tls::connect(&node.stomp_addr(), Some(&pki.client()), "127.0.0.1")
        .await
        .expect("a TLS session");
    tls.write_all(b"CONNECT\naccept-version:1.2\nhost:localhost\nlogin:app\npasscode:wrong\n\n\0")
        .await
        .expect("writing CONNECT");
    let mut got = Vec::new();
    let read = tokio::time::timeout(SOON, tls.read_to_end(&mut got)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(
        read.is_ok(),
        "the session did not end within {SOON:?}; got {text:?}"
    );
    assert!(
        text.starts_with("ERROR\n") && text.contains("message:authentication failed"),
        "{text:?}"
    );

    // Plain STOMP on the TLS port: no CONNECTED, only a closed socket.
    let mut tcp = tokio::net::TcpStream::connect(node.stomp_addr())
        .await
        .expect("TCP connect");
    tcp.write_all(b"CONNECT\naccept-version:1.2\nhost:localhost\nlogin:app\npasscode:app-pw\n\n\0")
        .await
        .expect("writing plain bytes");
    let mut got = Vec::new();
    let read = tokio::time::timeout(SOON, tcp.read_to_end(&mut got)).await;
    assert!(
        read.is_ok(),
        "the node did not close the socket within {SOON:?}"
    );
    let text = String::from_utf8_lossy(&got);
    assert!(!text.contains("CONNECTED"), "{text:?}");
    assert!(node.admin().queue("orders.tls").await.is_some());
}

#[tokio::test]
async fn a_certificate_not_signed_by_the_ca_is_refused_by_the_client() {
    let pki = Pki::new();
    let mut opts = NodeOpts::new("rogue").args([
        "--tls-cert".to_string(),
        pki.rogue_cert.display().to_string(),
        "--tls-key".to_string(),
        pki.rogue_key.display().to_string(),
    ]);
    opts.transport = "ssl://127.0.0.1:0".into();
    let node = Node::start(opts);
    let e = refused(&ssl_url(&node), tls_opts(pki.client())).await;
    let text = e.to_string();
    assert!(matches!(e, ClientError::Tls(_)), "{text}");
    assert!(
        text.contains("the peer's certificate is not signed by the trusted CA (tls-ca)"),
        "{text}"
    );
    // Without any CA the client does not even try.
    let e = refused(&ssl_url(&node), ConnectOptions::default()).await;
    assert!(e.to_string().contains("needs a CA file"), "{e}");
}

#[tokio::test]
async fn need_client_auth_refuses_clients_without_a_certificate_from_the_ca() {
    let pki = Pki::new();
    let node = tls_node("mtls", &pki, "?needClientAuth=true", &[]);
    let url = ssl_url(&node);
    for (what, tls) in [
        ("no certificate", pki.client()),
        ("a certificate of another CA", pki.client_with_rogue_cert()),
    ] {
        match StompClient::connect(&url, tls_opts(tls)).await {
            Ok(_) => panic!("a client with {what} got in"),
            Err(e) => assert!(
                matches!(
                    e,
                    ClientError::Tls(_) | ClientError::Io(_) | ClientError::Closed
                ),
                "{what}: {e}"
            ),
        }
    }
    let mut c = connect_with(&url, tls_opts(pki.client_with_cert())).await;
    subscribe(&mut c, "/queue/mtls", "s", AckMode::Auto).await;
    send(&mut c, "/queue/mtls", "with a certificate", &[]).await;
    assert_eq!(body_str(&recv(&mut c, SOON).await), "with a certificate");
}

#[tokio::test]
async fn a_bridge_reaches_an_ssl_peer_and_forwards() {
    let pki = Pki::new();
    // B wants client certificates: A's bridge presents the node certificate.
    let b = tls_node("B", &pki, "?needClientAuth=true", &[]);
    let link = format!("static:({})?initialReconnectDelay=100", ssl_url(&b));
    let a = Node::start(
        NodeOpts::new("A")
            .args(pki.node_args())
            .args(["--network", &link]),
    );
    wait_connected(&a, 1).await;
    let peer = &connectors(&a).await.connectors[0].peers[0];
    assert_eq!(peer.remote_broker.as_deref(), Some("B"));
    let mut c = connect_with(&ssl_url(&b), tls_opts(pki.client_with_cert())).await;
    subscribe(&mut c, "/queue/tls.link", "s", AckMode::Auto).await;
    wait_consumers(&a, "tls.link", 1).await;
    produce(&a, "/queue/tls.link", 0..50, 64).await;
    expect_each_once(&mut c, 50).await;
}

#[tokio::test]
async fn a_node_with_only_a_ca_links_to_an_ssl_peer() {
    let pki = Pki::new();
    let b = tls_node("B", &pki, "", &[]);
    let link = format!("static:({})?initialReconnectDelay=100", ssl_url(&b));
    // A has no certificate of its own: it only verifies B against the CA.
    let a = Node::start(NodeOpts::new("A").args([
        "--tls-ca".to_string(),
        pki.ca.display().to_string(),
        "--network".to_string(),
        link,
    ]));
    wait_connected(&a, 1).await;
    let mut c = connect_with(&ssl_url(&b), tls_opts(pki.client())).await;
    subscribe(&mut c, "/queue/ca.only", "s", AckMode::Auto).await;
    wait_consumers(&a, "ca.only", 1).await;
    produce(&a, "/queue/ca.only", 0..20, 64).await;
    expect_each_once(&mut c, 20).await;
}

#[tokio::test]
async fn an_ssl_peer_added_through_the_api_needs_a_ca() {
    let node = Node::start(NodeOpts::new("noca"));
    let body =
        serde_json::json!({ "uri": "static:(ssl://127.0.0.1:1)?password=s3cret" }).to_string();
    let r = node
        .admin()
        .post("/api/v1/network-connectors", Some(&body))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("needs --tls-ca"), "{}", r.body);
    assert!(!r.body.contains("s3cret"), "{}", r.body);
    assert!(connectors(&node).await.connectors.is_empty());
}

#[test]
fn a_network_connector_to_an_ssl_peer_needs_a_ca() {
    let pki = Pki::new();
    let data = tempfile::tempdir().expect("a data directory");
    let data = data.path().display().to_string();
    let cert = pki.node_cert.display().to_string();
    let key = pki.node_key.display().to_string();
    let out = run_mqnode_on(
        "noca",
        &data,
        "tcp://127.0.0.1:0",
        &[
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--network",
            "static:(ssl://127.0.0.1:1)",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("a network connector to an ssl:// peer needs --tls-ca to verify it"),
        "{err}"
    );
}

#[tokio::test]
async fn the_admin_api_serves_https_with_its_certificate() {
    let pki = Pki::new();
    let node = Node::start(NodeOpts::new("https").args([
        "--admin-tls-cert".to_string(),
        pki.node_cert.display().to_string(),
        "--admin-tls-key".to_string(),
        pki.node_key.display().to_string(),
    ]));
    let url = node.ready().admin.clone();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let addr = url.trim_start_matches("https://").to_string();
    let token = node.token().expect("a token");
    let bearer = format!("Bearer {token}");
    let https = async |path: &str, headers: &[(&str, &str)]| {
        let stream = mq_shared::tls::connect(&addr, Some(&pki.client()), "127.0.0.1")
            .await
            .unwrap_or_else(|e| panic!("TLS to the admin API: {e}"));
        raw_http(stream, &request_text("GET", path, &addr, headers, "")).await
    };
    let r = https("/api/v1/broker", &[("Authorization", &bearer)]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains(&format!("\"admin\":\"{url}\"")),
        "{}",
        r.body
    );
    let r = https("/api/v1/broker", &[]).await;
    assert_eq!(r.status, 401, "{}", r.body);
    // Its own origin is https://...; the same host over http is another origin.
    let own = format!("https://{addr}");
    let r = https(
        "/api/v1/broker",
        &[("Authorization", &bearer), ("Origin", &own)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let plain_origin = format!("http://{addr}");
    let r = https(
        "/api/v1/broker",
        &[("Authorization", &bearer), ("Origin", &plain_origin)],
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    // Plain HTTP on the HTTPS port gets no HTTP answer.
    let mut tcp = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("TCP connect");
    tcp.write_all(request_text("GET", "/healthz", &addr, &[], "").as_bytes())
        .await
        .expect("writing plain HTTP");
    let mut got = Vec::new();
    let read = tokio::time::timeout(SOON, tcp.read_to_end(&mut got)).await;
    assert!(
        read.is_ok(),
        "the admin API did not close the socket within {SOON:?}"
    );
    assert!(
        !got.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
}

// ---- signed discovery ------------------------------------------------------------------------

/// Outside, it creates a namespace and re-runs itself in it (as the discovery test does);
/// inside, three nodes advertise and listen: two with one secret, one with another.
#[test]
fn signed_discovery_finds_nodes_with_the_same_secret_and_ignores_the_others() {
    in_loopback_namespace(
        NamespacedTest {
            module: module_path!(),
            test: "signed_discovery_finds_nodes_with_the_same_secret_and_ignores_the_others",
            ns_env: "MQ_TEST_SECURITY_NETNS",
            prefix: "mqsec-",
            // The discovery module says, at debug level, which advertisements it ignores.
            envs: &[("RUST_LOG", "info,mqnode::network::discovery=debug")],
        },
        signed_discovery_inside,
    );
}

/// The remote brokers of the first connector's peers.
fn peers_of(l: &mq_tests::api::NetworkConnectorList) -> Vec<Option<String>> {
    l.connectors[0]
        .peers
        .iter()
        .map(|p| p.remote_broker.clone())
        .collect()
}

async fn signed_discovery_inside() {
    let opts = |name: &str, secret: &str| {
        NodeOpts::new(name).args([
            "--discovery".to_string(),
            format!("multicast://default?secret={secret}"),
            "--network".to_string(),
            format!(
                "multicast://default?secret={secret}&initialReconnectDelay=100&maxReconnectDelay=500"
            ),
        ])
    };
    // The outsiders first, so they have been advertising all along: one with another secret,
    // one with none.
    let outsider = Node::start(opts("S3", "another-secret"));
    let unsigned = Node::start(NodeOpts::new("S4").args([
        "--discovery",
        "multicast://default",
        "--network",
        "multicast://default?initialReconnectDelay=100&maxReconnectDelay=500",
    ]));
    let s1 = Node::start(opts("S1", "group-secret"));
    let s2 = Node::start(opts("S2", "group-secret"));
    wait_connected(&s1, 1).await;
    wait_connected(&s2, 1).await;
    // Each node has heard (and dropped) adverts signed with the other secret, and unsigned ones.
    let ignored = "ignoring an advertisement that is not signed with the group's secret";
    for n in [&s1, &s2, &outsider] {
        wait_for(SOON, || {
            let log = n.log();
            log.contains(&format!("{ignored} from=")) && log.contains("unsigned advertisement")
        });
        wait_for(SOON, || n.log().contains("wrongly signed advertisement"));
    }
    // The node without a secret reads a signed advert's service as a bad URI.
    wait_for(SOON, || {
        unsigned
            .log()
            .contains("ignoring an advertisement with a bad URI")
    });
    assert!(peers_of(&connectors(&unsigned).await).is_empty());
    let peers = peers_of;
    assert_eq!(peers(&connectors(&s1).await), [Some("S2".to_string())]);
    assert_eq!(peers(&connectors(&s2).await), [Some("S1".to_string())]);
    assert!(peers(&connectors(&outsider).await).is_empty());
    for n in [&s1, &s2, &outsider, &unsigned] {
        for secret in ["group-secret", "another-secret"] {
            assert!(
                !n.log().contains(secret),
                "{secret} in the log of {}",
                n.name()
            );
        }
    }
    // The two that found each other forward.
    let mut c = consumer(&s2, "/queue/signed").await;
    wait_consumers(&s1, "signed", 1).await;
    produce(&s1, "/queue/signed", 0..20, 32).await;
    expect_each_once(&mut c, 20).await;
}
