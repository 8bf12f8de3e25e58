//! One lease locker (`mqnode::ha::lease`) in a process of its own, printing its transitions as
//! JSON lines on stdout, for the tests of `tests/tests/pg_lease.rs` and the takeover figures of
//! `pg_bench`:
//!
//! ```text
//! pg_locker --name A --store postgres://mq@127.0.0.1:PORT/mq --store-password-file FILE \
//!           --lock-keep-alive-period 200 --lock-acquire-sleep-interval 500 \
//!           [--clock-offset-ms N] [--max-allowable-diff-from-db-time MS] [--write-every-ms MS]
//! ```
//!
//! Events: `started`, `clock` (offset to the database's clock), `waiting`, `acquired` (epoch,
//! acquired_at_ms, expires_at_ms: database time), `renewed` (expires_at_ms), `write` (a fenced
//! insert while holding, every `--write-every-ms`, and one right after the lease is lost: `ok`
//! or the refusal), `lost` (reason), `error` (then exit 2 for the configuration or the
//! connection, 3 for the clock). `--clock-offset-ms` shifts this process's wall clock, which
//! only the clock measurement reads. After a loss it waits for the lease again.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::Parser;
use mqnode::ha::lease::{Lease, LeaseError, LeaseLocker, LeaseState};
use mqnode::store::pg::messages::insert_messages;
use mqnode::store::pg::{PgConfig, PgPool, StoredMessage};
use serde_json::json;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    name: String,
    #[arg(long)]
    store: String,
    #[arg(long)]
    store_password_file: Option<PathBuf>,
    #[arg(long, default_value_t = 200)]
    lock_keep_alive_period: u64,
    #[arg(long, default_value_t = 500)]
    lock_acquire_sleep_interval: u64,
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    clock_offset_ms: i64,
    #[arg(long)]
    max_allowable_diff_from_db_time: Option<u64>,
    #[arg(long)]
    write_every_ms: Option<u64>,
}

fn emit(v: serde_json::Value) {
    println!("{v}");
}

fn fail(stage: &str, e: &dyn std::fmt::Display, code: u8) -> ExitCode {
    emit(json!({"event": "error", "stage": stage, "message": e.to_string()}));
    ExitCode::from(code)
}

/// This process's wall clock, `offset_ms` off.
fn skewed(offset_ms: i64) -> SystemTime {
    let now = SystemTime::now();
    let d = Duration::from_millis(offset_ms.unsigned_abs());
    if offset_ms >= 0 { now + d } else { now - d }
}

/// One fenced insert into this locker's own destination.
async fn write(lease: &Lease, pool: &PgPool, name: &str, seq: i64) -> Result<u64, LeaseError> {
    let msg = StoredMessage {
        container: format!("queue://{name}"),
        seq,
        priority: 4,
        msg_id: format!("{name}-{seq}"),
        expiration_ms: 0,
        msg: vec![b'x'; 64],
    };
    lease
        .fenced_transaction(pool, async |tx| insert_messages(tx, &[msg]).await)
        .await
}

fn write_event(seq: i64, after_lost: bool, r: &Result<u64, LeaseError>) {
    match r {
        Ok(_) => emit(json!({"event": "write", "seq": seq, "after_lost": after_lost, "ok": true})),
        Err(e) => emit(json!({
            "event": "write", "seq": seq, "after_lost": after_lost, "ok": false,
            "fenced": matches!(e, LeaseError::Deposed { .. } | LeaseError::Expired { .. }),
            "error": e.to_string(),
        })),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    emit(json!({"event": "started", "name": args.name, "pid": std::process::id()}));
    let keep_alive = Duration::from_millis(args.lock_keep_alive_period);
    let acquire = Duration::from_millis(args.lock_acquire_sleep_interval);
    let mut config = match PgConfig::from_options(&args.store, args.store_password_file.as_deref())
    {
        Ok(c) => c,
        Err(e) => return fail("config", &e, 2),
    };
    config.application_name = format!("pg_locker {}", args.name);
    config.idle_in_transaction_timeout = acquire;
    let pool = match mqnode::store::pg::open(&config).await {
        Ok((pool, _)) => pool,
        Err(e) => return fail("connect", &e, 2),
    };
    // The locker's own small pool, bounded on row locks, as the node would run it: renewals
    // never wait for a connection behind the writes.
    let mut lock_config = config.clone();
    lock_config.pool_size = 2;
    lock_config.lock_timeout = Some(keep_alive);
    let lock_pool = match PgPool::connect(&lock_config).await {
        Ok(p) => p,
        Err(e) => return fail("connect", &e, 2),
    };
    let offset = args.clock_offset_ms;
    let locker = match LeaseLocker::new(lock_pool, &args.name, keep_alive, acquire) {
        Ok(l) => l
            .max_allowable_diff_from_db_time(
                args.max_allowable_diff_from_db_time
                    .map(Duration::from_millis),
            )
            .wall_clock(Arc::new(move || skewed(offset))),
        Err(e) => return fail("config", &e, 2),
    };
    match locker.clock_offset().await {
        Ok(o) => emit(json!({"event": "clock", "offset_ms": o.offset_ms, "rtt_ms": o.rtt_ms})),
        Err(e @ LeaseError::ClockSkew { .. }) => return fail("clock", &e, 3),
        Err(e) => return fail("connect", &e, 2),
    }
    let mut seq = 0i64;
    loop {
        emit(json!({"event": "waiting"}));
        let lease = match locker.acquire().await {
            Ok(l) => l,
            Err(e) => return fail("clock", &e, 3),
        };
        let info = lease.info();
        emit(json!({
            "event": "acquired", "epoch": lease.epoch(),
            "acquired_at_ms": lease.acquired_at_ms(), "expires_at_ms": info.expires_at_ms,
        }));
        let mut state = lease.state();
        state.mark_unchanged();
        let period = Duration::from_millis(args.write_every_ms.unwrap_or(3_600_000).max(1));
        let mut writes = tokio::time::interval(period);
        writes.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                changed = state.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let now = state.borrow_and_update().clone();
                    match now {
                        LeaseState::Held { expires_at_ms, .. } => {
                            emit(json!({"event": "renewed", "expires_at_ms": expires_at_ms}));
                        }
                        LeaseState::Lost { reason } => {
                            emit(json!({"event": "lost", "reason": reason}));
                            break;
                        }
                    }
                }
                _ = writes.tick(), if args.write_every_ms.is_some() => {
                    seq += 1;
                    let r = write(&lease, &pool, &args.name, seq).await;
                    write_event(seq, false, &r);
                }
            }
        }
        // The deposed (or cut off) holder tries once more: the fence must refuse it.
        seq += 1;
        let r = write(&lease, &pool, &args.name, seq).await;
        write_event(seq, true, &r);
    }
}
