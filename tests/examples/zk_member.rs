//! One member of a replicated group, for the ZooKeeper election tests: joins through
//! `mqnode::ha::zk::ZkMember` and prints what happens to it as JSON lines on stdout, each
//! with the wall-clock time `ts_ms` (milliseconds since the Unix epoch):
//!
//! ```text
//! {"event":"joined","name":"a","seq":0,"session":"0x1000…","ts_ms":…}
//! {"event":"role","role":"candidate"|"master"|"replica"|"lost","epoch":…,"master":"b",
//!  "session":"0x…","lease_end_ms":…,"ts_ms":…}
//! {"event":"error","error":"…"}            (then exit 1)
//! {"event":"left","ts_ms":…}               (after SIGTERM, then exit 0)
//! ```
//!
//! `zk_member --zk HOST:PORT --name NAME [--path /mq/G] [--weight W] [--quorum Q]
//! [--session-timeout-ms MS] [--position-file FILE]`: the position is read from FILE (decimal;
//! 0 when missing) each time the member publishes it, so a test can move it between elections.
//! The test harness (`mq_tests::zookeeper::Member`) is the one that runs it, with an address
//! that went through its connection guard.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mqnode::ha::zk::{Role, ZkConfig, ZkMember};
use serde_json::{Value, json};

fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn now_ms() -> u64 {
    ms(SystemTime::now())
}

fn emit(v: Value) {
    println!("{v}");
}

fn parse() -> Result<ZkConfig, String> {
    let mut args = std::env::args().skip(1);
    let (mut zk, mut name, mut path, mut weight, mut quorum, mut timeout, mut file) =
        (None, None, None, None, None, None, None);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--zk" => zk = Some(value),
            "--name" => name = Some(value),
            "--path" => path = Some(value),
            "--weight" => weight = Some(num(&value)?),
            "--quorum" => quorum = Some(num(&value)?),
            "--session-timeout-ms" => timeout = Some(num(&value)?),
            "--position-file" => file = Some(value),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    let zk = zk.ok_or("--zk is required")?;
    let name = name.ok_or("--name is required")?;
    let position = move || {
        file.as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    };
    let mut cfg = ZkConfig::new(zk, "test", name, "127.0.0.1:0", position);
    if let Some(p) = path {
        cfg.path = p;
    }
    if let Some(w) = weight {
        cfg.weight = u32::try_from(w).map_err(|e| e.to_string())?;
    }
    if let Some(q) = quorum {
        cfg.quorum = usize::try_from(q).map_err(|e| e.to_string())?;
    }
    if let Some(t) = timeout {
        cfg.session_timeout = Duration::from_millis(t);
    }
    Ok(cfg)
}

fn session(m: &ZkMember) -> Value {
    m.session_id()
        .map_or(Value::Null, |s| Value::String(format!("{s:#x}")))
}

fn role_event(m: &ZkMember, role: &Role) -> Value {
    let mut v = json!({"event": "role", "session": session(m), "seq": m.seq(), "ts_ms": now_ms()});
    match role {
        Role::Candidate => v["role"] = json!("candidate"),
        Role::Master { epoch } => {
            v["role"] = json!("master");
            v["epoch"] = json!(epoch);
        }
        Role::Replica { master, epoch } => {
            v["role"] = json!("replica");
            v["epoch"] = json!(epoch);
            v["master"] = json!(master.name);
        }
        Role::Lost => {
            v["role"] = json!("lost");
            v["lease_end_ms"] = json!(m.lease_end().map(ms));
        }
    }
    v
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    // Logs (RUST_LOG, e.g. info) on stderr; the events on stdout.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cfg = match parse() {
        Ok(c) => c,
        Err(e) => {
            emit(json!({"event": "error", "error": e}));
            return ExitCode::FAILURE;
        }
    };
    let name = cfg.name.clone();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            emit(json!({"event": "error", "error": e.to_string()}));
            return ExitCode::FAILURE;
        }
    };
    let member = match ZkMember::join(cfg).await {
        Ok(m) => m,
        Err(e) => {
            emit(json!({"event": "error", "error": e.to_string()}));
            return ExitCode::FAILURE;
        }
    };
    // Subscribe before reading the current role, so no transition falls in between.
    let mut transitions = member.transitions();
    emit(json!({"event": "joined", "name": name, "seq": member.seq(),
        "session": session(&member), "ts_ms": now_ms()}));
    let mut last = member.role();
    emit(role_event(&member, &last));
    loop {
        tokio::select! {
            r = transitions.recv() => match r {
                Ok(role) => {
                    if role != last {
                        emit(role_event(&member, &role));
                        last = role;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    emit(json!({"event": "lagged", "missed": n}));
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
            _ = term.recv() => break,
        }
    }
    member.leave().await;
    emit(json!({"event": "left", "ts_ms": now_ms()}));
    ExitCode::SUCCESS
}
