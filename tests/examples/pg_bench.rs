//! Figures of the PostgreSQL store's layer on this machine, against a server of its own
//! (`mq_tests::postgres::PgServer`, PostgreSQL's defaults: `fsync` and `synchronous_commit` on):
//!
//! ```text
//! cargo build --release -p mq-tests --examples
//! MQ_TEST_PROFILE=release target/release/examples/pg_bench [MESSAGES] [BATCHES] [TAKEOVERS]
//! ```
//!
//! 1. One writer, one 1 KiB message per transaction, each awaited before the next (a RECEIPT
//!    per message): MESSAGES (default 2000) fenced transactions, then as many plain ones to
//!    show what the fence costs. Latency median and p99, messages per second.
//! 2. One writer, batches of 100 messages of 1 KiB per fenced transaction: BATCHES (default
//!    100) batches.
//! 3. Takeover after `kill -9` of the holder, keep-alive 1 s, lease
//!    (`lock-acquire-sleep-interval`) 2 s: two `pg_locker` processes; the holder is killed at a
//!    random point of its renewal period, and the figure is the time from the kill to the
//!    other's `acquired` line. TAKEOVERS (default 10) runs, the killed one restarted as the
//!    waiting member each time.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use mq_tests::postgres::{Locker, LockerOpts, PgServer};
use mqnode::ha::lease::LeaseLocker;
use mqnode::store::pg::messages::insert_messages;
use mqnode::store::pg::{PgConfig, PgPool, StoredMessage};

const KEEP_ALIVE_MS: u64 = 1_000;
const LEASE_MS: u64 = 2_000;
const BATCH: usize = 100;
const SIZE: usize = 1024;

fn message(seq: i64) -> StoredMessage {
    StoredMessage {
        container: "queue://bench".into(),
        seq,
        priority: 4,
        msg_id: format!("ID:bench-{seq}"),
        expiration_ms: 0,
        msg: vec![b'm'; SIZE],
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn report(label: &str, mut lat: Vec<Duration>, messages: usize, elapsed: Duration) {
    lat.sort();
    println!(
        "{label}: {messages} messages in {:.2} s = {:.0} msg/s; per transaction median {:.2} ms, p99 {:.2} ms",
        elapsed.as_secs_f64(),
        messages as f64 / elapsed.as_secs_f64(),
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
    );
}

/// A pseudo-random number in `0..n` (xorshift of the clock; enough to spread kill times).
fn random_below(state: &mut u64, n: u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state % n.max(1)
}

async fn writes(server: &PgServer, messages: usize, batches: usize) -> Result<()> {
    let config = PgConfig::from_options(&server.url(), Some(&server.password_file()))?;
    let (pool, _) = mqnode::store::pg::open(&config).await?;
    let mut lock_config = config.clone();
    lock_config.pool_size = 2;
    let lock_pool = PgPool::connect(&lock_config).await?;
    let locker = LeaseLocker::new(
        lock_pool,
        "bench",
        Duration::from_millis(KEEP_ALIVE_MS),
        Duration::from_millis(LEASE_MS),
    )?;
    let lease = locker.acquire().await?;

    let mut seq = 0i64;
    let mut lat = Vec::with_capacity(messages);
    let start = Instant::now();
    for _ in 0..messages {
        seq += 1;
        let m = [message(seq)];
        let t = Instant::now();
        lease
            .fenced_transaction(&pool, async |tx| insert_messages(tx, &m).await)
            .await?;
        lat.push(t.elapsed());
    }
    report("fenced, 1 per transaction", lat, messages, start.elapsed());

    let mut lat = Vec::with_capacity(messages);
    let mut client = pool.get().await?;
    let start = Instant::now();
    for _ in 0..messages {
        seq += 1;
        let m = [message(seq)];
        let t = Instant::now();
        let tx = client.transaction().await?;
        insert_messages(&tx, &m).await?;
        tx.commit().await?;
        lat.push(t.elapsed());
    }
    drop(client);
    report(
        "plain (no fence), 1 per transaction",
        lat,
        messages,
        start.elapsed(),
    );

    let mut lat = Vec::with_capacity(batches);
    let start = Instant::now();
    for _ in 0..batches {
        let batch: Vec<StoredMessage> = (0..BATCH)
            .map(|_| {
                seq += 1;
                message(seq)
            })
            .collect();
        let t = Instant::now();
        lease
            .fenced_transaction(&pool, async |tx| insert_messages(tx, &batch).await)
            .await?;
        lat.push(t.elapsed());
    }
    report(
        &format!("fenced, {BATCH} per transaction"),
        lat,
        batches * BATCH,
        start.elapsed(),
    );
    lease.release().await?;
    Ok(())
}

fn takeovers(server: &PgServer, runs: usize) -> Result<()> {
    let opts = |name: &str| LockerOpts {
        keep_alive_ms: KEEP_ALIVE_MS,
        acquire_ms: LEASE_MS,
        ..LockerOpts::new(name, server)
    };
    let wait = Duration::from_millis(4 * LEASE_MS);
    let mut holder = Locker::start(&opts("t-a"));
    holder
        .next_event(0, wait, |e| e.kind() == "acquired")
        .context("t-a takes the lease")?;
    let mut waiter = Locker::start(&opts("t-b"));
    waiter
        .next_event(0, wait, |e| e.kind() == "waiting")
        .context("t-b waits")?;
    let mut rng = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let mut figures = Vec::with_capacity(runs);
    for run in 1..=runs {
        // Kill at a random point of the renewal period.
        let from = holder.event_count();
        holder
            .next_event(from, wait, |e| e.kind() == "renewed")
            .context("the holder renews")?;
        std::thread::sleep(Duration::from_millis(random_below(&mut rng, KEEP_ALIVE_MS)));
        let from = waiter.event_count();
        let killed = Instant::now();
        holder.kill();
        let Some(took) = waiter.next_event(from, wait, |e| e.kind() == "acquired") else {
            bail!("run {run}: {} did not take over", waiter.name());
        };
        let ms = (took.read_at - killed).as_secs_f64() * 1e3;
        println!(
            "takeover run {run}: {} -> {} in {ms:.0} ms",
            holder.name(),
            waiter.name()
        );
        figures.push(ms);
        let name = holder.name().to_string();
        holder = Locker::start(&opts(&name));
        holder
            .next_event(0, wait, |e| e.kind() == "waiting")
            .context("the restarted member waits")?;
        std::mem::swap(&mut holder, &mut waiter);
    }
    figures.sort_by(f64::total_cmp);
    println!(
        "takeover after kill -9 (keep-alive {KEEP_ALIVE_MS} ms, lease {LEASE_MS} ms): median {:.0} ms over {runs} runs (min {:.0}, max {:.0})",
        figures[figures.len() / 2],
        figures[0],
        figures[figures.len() - 1]
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut next = |default: usize| -> Result<usize> {
        Ok(match args.next() {
            Some(a) => a.parse().with_context(|| format!("not a number: {a}"))?,
            None => default,
        })
    };
    let (messages, batches, runs) = (next(2000)?, next(100)?, next(10)?);
    let server = PgServer::start();
    println!(
        "PostgreSQL on 127.0.0.1:{} ({}), messages of {SIZE} bytes",
        server.port(),
        server.psql("mq", "SHOW server_version")
    );
    writes(&server, messages, batches).await?;
    takeovers(&server, runs.max(1))?;
    Ok(())
}
