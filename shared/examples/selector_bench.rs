//! Times selector evaluation: `cargo run --release -p mq-shared --example selector_bench`.
//!
//! Evaluates a three-clause selector against a message of ten headers (as a list of pairs,
//! the shape a frame's headers have) and prints the mean time per evaluation, for a message
//! that matches (every clause runs) and one that fails at the first clause, the same message
//! in a `HashMap` (to separate header lookup from evaluation), and the time to parse.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use mq_shared::selector::{Selector, SelectorError};

const SELECTOR: &str = "type = 'order' AND amount > 100 AND region IN ('eu','us')";

fn headers(kind: &str) -> Vec<(String, String)> {
    [
        ("destination", "/queue/orders"),
        ("message-id", "ID:node-1-42"),
        ("content-type", "application/json"),
        ("persistent", "true"),
        ("priority", "4"),
        ("correlation-id", "c-123"),
        ("customer", "acme"),
        ("type", kind),
        ("amount", "250"),
        ("region", "eu"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Mean time of `f` in ns, over enough runs to fill about half a second, best of three.
fn time(mut f: impl FnMut() -> bool) -> f64 {
    let mut runs: u32 = 1;
    loop {
        let start = Instant::now();
        for _ in 0..runs {
            black_box(f());
        }
        if start.elapsed() > Duration::from_millis(100) {
            break;
        }
        runs = runs.saturating_mul(2);
    }
    (0..3)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..runs * 5 {
                black_box(f());
            }
            start.elapsed().as_secs_f64() * 1e9 / f64::from(runs * 5)
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() -> Result<(), SelectorError> {
    let selector = Selector::parse(SELECTOR)?;
    let hit = headers("order");
    let miss = headers("refund");
    assert!(selector.matches(&hit));
    assert!(!selector.matches(&miss));

    let matching = time(|| black_box(&selector).matches(black_box(&hit)));
    let failing = time(|| black_box(&selector).matches(black_box(&miss)));
    let parsing = time(|| Selector::parse(black_box(SELECTOR)).is_ok());
    let map: HashMap<String, String> = hit.iter().cloned().collect();
    let hashed = time(|| black_box(&selector).matches(black_box(&map)));

    println!("selector: {selector}");
    println!("message:  {} headers", hit.len());
    println!("evaluate, matching:                {matching:>7.1} ns");
    println!("evaluate, failing at clause one:   {failing:>7.1} ns");
    println!("evaluate, matching, in a HashMap:  {hashed:>7.1} ns");
    println!("parse:                             {parsing:>7.1} ns");
    Ok(())
}
