//! The security rules end to end: logins, bridges, authorization entries, temporary
//! destinations, reloads and counters.

use std::path::PathBuf;

use super::*;

/// Cheap argon2id hashes (m=64 KiB, t=1) so that tests verify quickly; the costs do not change
/// what is checked.
const PW: &str = "$argon2id$v=19$m=64,t=1,p=1$bXF0ZXN0c2FsdHNhbHQxNg$XK11lK5/AvV5IB0pErr/Ddmbg/PnJG6CXOdaqoqZv34";
const S3CRET: &str = "$argon2id$v=19$m=64,t=1,p=1$bXF0ZXN0c2FsdHNhbHQxNg$fcC+pvjmWlrI2V/aqyRHAzOlN0fNVHR4lUsniSa6CxE";
const BRIDGE_PASS: &str = "$argon2id$v=19$m=64,t=1,p=1$bXF0ZXN0c2FsdHNhbHQxNg$Vw0+1lz7ACbl1FrlFZF1myHSWaC9SMr9tMwhzxqRkgY";

fn file(anonymous: bool, extra: &str) -> String {
    format!(
        r#"anonymous = {anonymous}
bridge-groups = ["brokers"]

[[users]]
name = "app"
password = "{PW}"
groups = ["apps"]

[[users]]
name = "ops"
password = "{S3CRET}"
groups = ["admins", "apps"]

[[users]]
name = "broker"
password = "{BRIDGE_PASS}"
groups = ["brokers"]

[[authorization]]
destination = "queue://orders.secret.>"
read = ["admins"]

[[authorization]]
destination = "queue://orders.>"
read = ["apps"]
write = ["apps"]
admin = ["apps"]

[[authorization]]
destination = "topic://prices.*"
read = ["anonymous", "apps"]
write = ["admins"]

[[authorization]]
destination = "queue://>"
read = ["brokers"]
write = ["brokers"]
admin = ["brokers"]
{extra}"#
    )
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    security: Security,
}

fn fixture(text: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let path = dir.path().join("security.toml");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write: {e}"));
    let security = Security::load(&path).unwrap_or_else(|e| panic!("load: {e}"));
    Fixture {
        _dir: dir,
        path,
        security,
    }
}

fn user(name: &str, groups: &[&str], bridge: bool) -> Principal {
    Principal {
        user: Some(name.to_string()),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        bridge,
    }
}

#[test]
fn without_a_file_only_loopback_gets_in_and_may_do_everything() {
    let s = Security::none();
    assert!(!s.is_enabled() && s.path().is_none());
    let p = s.authenticate(None, None, true);
    assert_eq!(p, Ok(Principal::anonymous(true)));
    // Credentials change nothing: there is nothing to check them against.
    assert_eq!(
        s.authenticate(Some("x"), Some("y"), true),
        Ok(Principal::anonymous(true))
    );
    assert_eq!(s.authenticate(None, None, false), Err(AuthError));
    assert_eq!(
        s.authenticate(Some("app"), Some("pw"), false),
        Err(AuthError)
    );
    assert_eq!(s.failed_logins(), 2);
    let anon = Principal::anonymous(false);
    for op in [Operation::Read, Operation::Write, Operation::Admin] {
        for d in ["/queue/a", "/topic/b", "/temp-queue/c", "/temp-topic/d"] {
            assert_eq!(s.authorize(&anon, op, d), Ok(()), "{op:?} {d}");
        }
    }
    assert_eq!(s.denied_operations(), 0);
    assert!(matches!(s.reload(), Err(SecurityError::NoFile)));
    assert!(!s.summary().enabled);
}

#[test]
fn users_log_in_with_their_password_only() {
    let f = fixture(&file(false, ""));
    let s = &f.security;
    assert_eq!(
        s.authenticate(Some("app"), Some("pw"), false),
        Ok(user("app", &["apps"], false))
    );
    assert_eq!(
        s.authenticate(Some("ops"), Some("s3cret"), true),
        Ok(user("ops", &["admins", "apps"], false))
    );
    // Wrong password, unknown user, a password of another user, none: the same answer.
    for (login, pass) in [
        (Some("app"), Some("pw ")),
        (Some("app"), None),
        (Some("nobody"), Some("pw")),
        (Some("app"), Some("s3cret")),
        (Some("APP"), Some("pw")),
        (None, Some("pw")),
        (Some(""), Some("pw")),
    ] {
        let e = s.authenticate(login, pass, true);
        assert_eq!(e, Err(AuthError), "{login:?}/{pass:?}");
    }
    assert_eq!(AuthError.to_string(), "authentication failed");
    assert_eq!(s.failed_logins(), 7);
    let summary = s.summary();
    assert_eq!((summary.users, summary.entries), (3, 4));
    assert!(summary.enabled && !summary.anonymous);
}

#[test]
fn anonymous_clients_only_when_the_file_says_so() {
    let f = fixture(&file(true, ""));
    let s = &f.security;
    let anon = s.authenticate(None, None, false);
    assert_eq!(anon, Ok(Principal::anonymous(false)));
    assert_eq!(
        anon.map(|p| p.groups),
        Ok(vec![defaults::ANONYMOUS_GROUP.to_string()])
    );
    assert_eq!(
        s.authenticate(Some(""), None, false).map(|p| p.user),
        Ok(None)
    );
    // A login given must still be right.
    assert_eq!(
        s.authenticate(Some("app"), Some("wrong"), false),
        Err(AuthError)
    );
}

#[test]
fn bridges_are_users_of_the_bridge_groups() {
    let f = fixture(&file(false, ""));
    let s = &f.security;
    let b = s.authenticate(Some("broker"), Some("bridge-pass"), false);
    assert_eq!(b, Ok(user("broker", &["brokers"], true)));
    assert_eq!(
        s.authenticate(Some("app"), Some("pw"), false)
            .map(|p| p.bridge),
        Ok(false)
    );
}

#[test]
fn the_first_matching_entry_decides() {
    let f = fixture(&file(true, ""));
    let s = &f.security;
    let app = user("app", &["apps"], false);
    let ops = user("ops", &["admins", "apps"], false);
    let anon = Principal::anonymous(false);
    let allowed = |p: &Principal, op, d| s.authorize(p, op, d).is_ok();
    assert!(allowed(&app, Operation::Write, "/queue/orders.eu"));
    assert!(allowed(&app, Operation::Admin, "/queue/orders.eu.de"));
    assert!(allowed(&app, Operation::Read, "/queue/orders.eu"));
    // `orders.>` does not match `orders` itself, and `queue://>` is for brokers.
    assert!(!allowed(&app, Operation::Write, "/queue/orders"));
    // The earlier, narrower entry wins even though a later one would allow it.
    assert!(!allowed(&app, Operation::Read, "/queue/orders.secret.x"));
    assert!(allowed(&ops, Operation::Read, "/queue/orders.secret.x"));
    assert!(!allowed(&ops, Operation::Write, "/queue/orders.secret.x"));
    // Topics and queues are distinct.
    assert!(allowed(&anon, Operation::Read, "/topic/prices.eur"));
    assert!(!allowed(&anon, Operation::Write, "/topic/prices.eur"));
    assert!(allowed(&ops, Operation::Write, "/topic/prices.eur"));
    assert!(!allowed(&anon, Operation::Read, "/topic/prices.eur.x"));
    assert!(!allowed(&app, Operation::Read, "/topic/orders.eu"));
    // No entry: denied.
    assert!(!allowed(&app, Operation::Read, "/topic/other"));
    assert!(!allowed(&app, Operation::Read, "/somewhere/else"));
    assert_eq!(s.denied_operations(), 8);

    let denied = s.authorize(&app, Operation::Write, "/queue/orders.secret.x");
    assert_eq!(
        denied.map_err(|d| d.to_string()),
        Err("user 'app' is not allowed to write to /queue/orders.secret.x".to_string())
    );
    let denied = s.authorize(&anon, Operation::Admin, "/topic/prices.eur");
    assert_eq!(
        denied.map_err(|d| d.to_string()),
        Err("anonymous is not allowed to create /topic/prices.eur".to_string())
    );
    let denied = s.authorize(&anon, Operation::Read, "/queue/x");
    assert_eq!(
        denied.map_err(|d| d.to_string()),
        Err("anonymous is not allowed to read from /queue/x".to_string())
    );
}

#[test]
fn bridges_follow_demand_but_need_grants_to_forward() {
    let f = fixture(&file(false, ""));
    let s = &f.security;
    let bridge = user("broker", &["brokers"], true);
    let app = user("app", &["apps"], false);
    let advisory = internode::ADVISORY_DESTINATION;
    assert!(s.authorize(&bridge, Operation::Read, advisory).is_ok());
    assert!(s.authorize(&app, Operation::Read, advisory).is_err());
    assert!(s.authorize(&bridge, Operation::Write, advisory).is_err());
    // `queue://>` grants brokers what they forward; `orders.>` comes first and does not.
    assert!(
        s.authorize(&bridge, Operation::Write, "/queue/jobs")
            .is_ok()
    );
    assert!(
        s.authorize(&bridge, Operation::Write, "/queue/orders.eu")
            .is_err()
    );
}

#[test]
fn temporary_destinations_default_to_open_use_and_owner_reads() {
    let f = fixture(&file(true, ""));
    let s = &f.security;
    let app = user("app", &["apps"], false);
    let anon = Principal::anonymous(false);
    for d in ["/temp-queue/reply.1", "/temp-topic/events"] {
        assert!(is_temp(d));
        for p in [&app, &anon] {
            assert!(s.authorize(p, Operation::Admin, d).is_ok());
            assert!(s.authorize(p, Operation::Write, d).is_ok());
            assert!(s.authorize_owned(p, Operation::Read, d).is_ok());
        }
        let e = s.authorize(&app, Operation::Read, d);
        assert_eq!(
            e.map_err(|d| d.to_string()),
            Err(format!(
                "user 'app' is not allowed to read from {d}: only the connection that created a temporary destination reads from it"
            ))
        );
    }
    assert!(!is_temp("/queue/temp-queue") && !is_temp("/temp-queue"));
    // authorize_owned of an ordinary destination is authorize.
    assert!(
        s.authorize_owned(&anon, Operation::Write, "/queue/orders.eu")
            .is_err()
    );
}

#[test]
fn temp_entries_restrict_temporary_destinations() {
    let extra = r#"
[[authorization]]
destination = "temp://private.>"
read = ["admins"]
write = ["admins"]
admin = ["admins"]

[[authorization]]
destination = "temp://>"
read = ["apps"]
write = ["apps"]
admin = ["apps"]
"#;
    let f = fixture(&file(true, extra));
    let s = &f.security;
    let app = user("app", &["apps"], false);
    let ops = user("ops", &["admins", "apps"], false);
    let anon = Principal::anonymous(false);
    assert!(
        s.authorize(&app, Operation::Admin, "/temp-queue/r1")
            .is_ok()
    );
    assert!(
        s.authorize(&anon, Operation::Admin, "/temp-queue/r1")
            .is_err()
    );
    assert!(
        s.authorize(&anon, Operation::Write, "/temp-topic/r1")
            .is_err()
    );
    assert!(
        s.authorize_owned(&app, Operation::Read, "/temp-queue/r1")
            .is_ok()
    );
    assert!(
        s.authorize_owned(&anon, Operation::Read, "/temp-queue/r1")
            .is_err()
    );
    assert!(
        s.authorize(&app, Operation::Write, "/temp-queue/private.x")
            .is_err()
    );
    assert!(
        s.authorize(&ops, Operation::Write, "/temp-queue/private.x")
            .is_ok()
    );
    // Even a granted reader reads only its own.
    assert!(
        s.authorize(&ops, Operation::Read, "/temp-queue/private.x")
            .is_err()
    );
    // temp:// entries never match ordinary destinations, nor queue:// entries temporary ones.
    assert!(
        s.authorize(&app, Operation::Write, "/queue/private.x")
            .is_err()
    );
}

#[test]
fn reload_swaps_rules_or_keeps_the_old_ones() {
    let f = fixture(&file(false, ""));
    let s = &f.security;
    let clone = s.clone();
    assert!(s.authenticate(Some("app"), Some("pw"), false).is_ok());
    assert_eq!(s.inner.cache.len(), 1);

    // A broken file: the error names file and line, and the old rules stay.
    let broken = file(
        false,
        "\n[[users]]\nname = \"app\"\npassword = \"x\"\ngroups = [\"a\"]\n",
    );
    std::fs::write(&f.path, &broken).unwrap_or_else(|e| panic!("{e}"));
    let e = s.reload().map_err(|e| e.to_string());
    let text = e.err().unwrap_or_default();
    assert!(text.contains("security.toml, line "), "{text}");
    assert!(text.contains("user 'app' is defined twice"), "{text}");
    assert!(
        text.ends_with("(the rules loaded before stay in force)"),
        "{text}"
    );
    assert!(s.authenticate(Some("app"), Some("pw"), false).is_ok());
    assert!(
        s.authorize(
            &user("app", &["apps"], false),
            Operation::Write,
            "/queue/orders.a"
        )
        .is_ok()
    );

    // A good one: the new rules apply, on every clone, and remembered logins are forgotten.
    let next = file(true, "").replace("queue://orders.>", "queue://invoices.>");
    std::fs::write(&f.path, next).unwrap_or_else(|e| panic!("{e}"));
    assert!(s.reload().is_ok());
    assert_eq!(s.inner.cache.len(), 0);
    assert!(clone.authenticate(None, None, false).is_ok());
    let app = user("app", &["apps"], false);
    assert!(
        clone
            .authorize(&app, Operation::Write, "/queue/orders.a")
            .is_err()
    );
    assert!(
        clone
            .authorize(&app, Operation::Write, "/queue/invoices.a")
            .is_ok()
    );

    // A vanished file is an error too, and changes nothing.
    std::fs::remove_file(&f.path).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        s.reload(),
        Err(SecurityError::Kept(ConfigError::Read { .. }))
    ));
    assert!(clone.authenticate(None, None, false).is_ok());
}

#[test]
fn successful_logins_are_remembered_and_failures_are_not() {
    let f = fixture(&file(false, ""));
    let s = &f.security;
    assert!(s.authenticate(Some("app"), Some("wrong"), false).is_err());
    assert_eq!(s.inner.cache.len(), 0);
    assert!(s.authenticate(Some("app"), Some("pw"), false).is_ok());
    assert!(s.authenticate(Some("app"), Some("pw"), false).is_ok());
    assert_eq!(s.inner.cache.len(), 1);
    // The remembered login does not let another password in.
    assert!(s.authenticate(Some("app"), Some("pw2"), false).is_err());
}

#[test]
fn load_errors_name_the_file() {
    let e = Security::load(Path::new("/nonexistent/security.toml")).map(|_| ());
    let text = e.map_err(|e| e.to_string()).err().unwrap_or_default();
    assert!(
        text.contains("cannot read the security file /nonexistent/security.toml"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_logins_run_off_the_runtime_and_all_complete() {
    let f = fixture(&file(false, ""));
    let s = f.security.clone();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let pass = if i % 2 == 0 { "pw" } else { "nope" };
            s.authenticate_async(Some("app"), Some(pass), false).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await {
            Ok(Ok(p)) => {
                assert_eq!(p.user.as_deref(), Some("app"));
                ok += 1;
            }
            Ok(Err(AuthError)) => {}
            Err(e) => panic!("task failed: {e}"),
        }
    }
    assert_eq!(ok, 8);
    assert_eq!(s.failed_logins(), 8);
    // Every permit came back.
    assert_eq!(
        s.inner.checks.available_permits(),
        defaults::MAX_CONCURRENT_PASSWORD_CHECKS
    );
    assert_eq!(
        s.authenticate_async(None, None, false).await,
        Err(AuthError)
    );
}
