//! Reconnect back-off, the one every reconnecting loop uses: the node's network bridges (as
//! ActiveMQ's `SimpleDiscoveryAgent` computes it) and the client's failover (as ActiveMQ's
//! `FailoverTransport` does). Pure: it says how long to wait, the caller sleeps.
//!
//! ```text
//!            failed()          failed()               failed()
//!   fresh ───────────► first ───────────► first × m ───────────► … ► max, max, …
//!     ▲                                                                  │
//!     └──────────── reset(): a link came up and stayed up long enough ◄──┘
//!
//!   the give_up_after-th failure in a row: failed() answers None, stop trying
//! ```
//!
//! After a failed attempt the caller waits `initialReconnectDelay`; with `useExponentialBackOff`
//! each further failure multiplies the wait by `backOffMultiplier` (`m`), capped at
//! `maxReconnectDelay` (without it the wait stays `initialReconnectDelay`). The two flavours
//! differ in small ways, kept as ActiveMQ has them, and [`BackoffConfig`] says which:
//!
//! - bridges ([`BackoffConfig::network`]): every wait is capped, growth is exact;
//!   `maxReconnectAttempts` > 0 gives up after that many failures in a row, 0 retries forever.
//!   A link that stayed up for at least `minConnectTime` resets the count; one that failed
//!   sooner counts as a failed attempt (the bridge decides, and calls [`Backoff::reset`]).
//! - failover ([`BackoffConfig::failover`]): the first wait is `initialReconnectDelay` as given,
//!   later ones grow in whole milliseconds and stay within 1 ms and `maxReconnectDelay`;
//!   `maxReconnectAttempts` (or `startupMaxReconnectAttempts`) -1 retries forever, 0 makes one
//!   attempt, n makes n more after the first.
//!
//! Whatever the config, a back-off neither panics nor overflows: growth saturates (a huge or
//! infinite multiplier reaches the cap, a `NaN` one falls to the floor), every later wait is
//! at most `max`, and the attempt count stops at `u64::MAX`. The URI parsers bound the options
//! as well (see [`crate::uri`]).

use std::time::Duration;

use crate::uri::{FailoverOptions, NetworkOptions};

/// The shortest cap on a wait: a `maxReconnectDelay` of 0 still waits 1 ms.
const MIN_CAP: Duration = Duration::from_millis(1);

/// How a back-off grows and when it gives up; built from a URI's options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffConfig {
    /// The wait after the first failure.
    pub first: Duration,
    /// The shortest of the later waits.
    pub min: Duration,
    /// The longest of the later waits.
    pub max: Duration,
    /// How each later wait follows from the one before.
    pub growth: Growth,
    /// The failure in a row at which [`Backoff::failed`] gives up; `None`: never.
    pub give_up_after: Option<u64>,
}

/// How a wait follows from the one before.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Growth {
    /// The same wait again (`useExponentialBackOff=false`).
    Constant,
    /// Times the multiplier, to the nanosecond.
    Exact(f64),
    /// Times the multiplier in whole milliseconds, truncated (ActiveMQ's `long` arithmetic).
    WholeMillis(f64),
}

impl BackoffConfig {
    /// The back-off of a network connector's bridges.
    pub fn network(o: &NetworkOptions) -> BackoffConfig {
        let max = Duration::from_millis(o.max_reconnect_delay_ms).max(MIN_CAP);
        BackoffConfig {
            first: Duration::from_millis(o.initial_reconnect_delay_ms).min(max),
            min: Duration::ZERO,
            max,
            growth: if o.use_exponential_back_off {
                Growth::Exact(o.back_off_multiplier.max(1.0))
            } else {
                Growth::Constant
            },
            give_up_after: u64::try_from(o.max_reconnect_attempts)
                .ok()
                .filter(|n| *n > 0),
        }
    }

    /// The back-off of a failover client; `attempts` is `maxReconnectAttempts` once connected,
    /// `startupMaxReconnectAttempts` before.
    pub fn failover(o: &FailoverOptions, attempts: i64) -> BackoffConfig {
        BackoffConfig {
            first: Duration::from_millis(o.initial_reconnect_delay_ms),
            min: MIN_CAP,
            max: Duration::from_millis(o.max_reconnect_delay_ms).max(MIN_CAP),
            growth: if o.use_exponential_back_off {
                Growth::WholeMillis(o.back_off_multiplier)
            } else {
                Growth::Constant
            },
            give_up_after: u64::try_from(attempts).ok().map(|n| n.saturating_add(1)),
        }
    }
}

impl From<&NetworkOptions> for BackoffConfig {
    fn from(o: &NetworkOptions) -> BackoffConfig {
        BackoffConfig::network(o)
    }
}

/// Back-off state of one reconnecting loop.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    attempts: u64,
    delay: Option<Duration>,
}

impl Backoff {
    /// A fresh back-off: no failure yet.
    pub fn new(config: impl Into<BackoffConfig>) -> Backoff {
        Backoff {
            config: config.into(),
            attempts: 0,
            delay: None,
        }
    }

    /// Records a failed attempt and returns how long to wait before the next one, or `None`
    /// once the failures in a row have reached `give_up_after`.
    pub fn failed(&mut self) -> Option<Duration> {
        self.attempts = self.attempts.saturating_add(1);
        if let Some(n) = self.config.give_up_after
            && self.attempts >= n
        {
            return None;
        }
        let next = match self.delay {
            None => self.config.first,
            // Not `clamp`, which panics when min > max: the cap wins.
            Some(prev) => self.grow(prev).max(self.config.min).min(self.config.max),
        };
        self.delay = Some(next);
        Some(next)
    }

    /// The wait after `prev`, before bounds, saturating whatever the multiplier: a product too
    /// large for a `Duration` is `Duration::MAX`, one that is negative or not a number is zero.
    fn grow(&self, prev: Duration) -> Duration {
        match self.config.growth {
            Growth::Constant => prev,
            Growth::Exact(m) => {
                let secs = prev.as_secs_f64() * m;
                Duration::try_from_secs_f64(secs).unwrap_or(if secs > 0.0 {
                    Duration::MAX
                } else {
                    Duration::ZERO
                })
            }
            Growth::WholeMillis(m) => {
                let ms = u64::try_from(prev.as_millis()).unwrap_or(u64::MAX) as f64 * m;
                // `as` saturates, and takes NaN to 0: whole milliseconds, truncated.
                Duration::from_millis(ms as u64)
            }
        }
    }

    /// A link came up and stayed up long enough: start again from the first wait.
    pub fn reset(&mut self) {
        self.attempts = 0;
        self.delay = None;
    }

    /// Failed attempts in a row so far.
    pub fn attempts(&self) -> u64 {
        self.attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uri::{ClientUri, NetworkUri, UriError};
    use tokio::time::Instant;

    fn network(q: &str) -> Result<BackoffConfig, UriError> {
        let u: NetworkUri = format!("static:(tcp://h:1)?{q}").parse()?;
        Ok(BackoffConfig::network(u.options()))
    }

    /// A failover client's back-off before its first connection.
    fn failover(q: &str) -> Result<BackoffConfig, UriError> {
        let u: ClientUri = format!("failover:(tcp://h:1)?{q}").parse()?;
        let ClientUri::Failover(f) = u else {
            unreachable!("failover: parses as a failover")
        };
        Ok(BackoffConfig::failover(
            &f.options,
            f.options.startup_max_reconnect_attempts,
        ))
    }

    /// Waits as the callers do, on tokio's (paused) clock, and returns the waits taken in ms.
    async fn run(b: &mut Backoff, failures: usize) -> Vec<u64> {
        let mut waits = Vec::new();
        for _ in 0..failures {
            let Some(d) = b.failed() else { break };
            let t = Instant::now();
            tokio::time::sleep(d).await;
            waits.push(t.elapsed().as_millis() as u64);
        }
        waits
    }

    #[tokio::test(start_paused = true)]
    async fn exponential_doubles_up_to_the_cap() -> Result<(), UriError> {
        let mut b = Backoff::new(network("initialReconnectDelay=100&maxReconnectDelay=1000")?);
        assert_eq!(run(&mut b, 6).await, vec![100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(run(&mut b, 2).await, vec![100, 200]);
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn defaults_and_the_seed_configuration() -> Result<(), UriError> {
        let start = Instant::now();
        let mut b = Backoff::new(&NetworkOptions::default());
        assert_eq!(
            run(&mut b, 7).await,
            vec![1000, 2000, 4000, 8000, 16000, 30000, 30000]
        );
        assert_eq!(start.elapsed(), Duration::from_millis(91_000));
        // The seed's Broker3: maxReconnectDelay=5000&useExponentialBackOff=false.
        let mut b = Backoff::new(network(
            "maxReconnectDelay=5000&useExponentialBackOff=false",
        )?);
        assert_eq!(run(&mut b, 4).await, vec![1000, 1000, 1000, 1000]);
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn multiplier_and_attempt_limit() -> Result<(), UriError> {
        let mut b = Backoff::new(network(
            "initialReconnectDelay=10&backOffMultiplier=3&maxReconnectAttempts=4",
        )?);
        assert_eq!(run(&mut b, 10).await, vec![10, 30, 90]);
        assert_eq!(b.attempts(), 4);
        assert!(b.failed().is_none());
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn network_caps_even_the_first_wait() -> Result<(), UriError> {
        let mut b = Backoff::new(network("initialReconnectDelay=800&maxReconnectDelay=300")?);
        assert_eq!(run(&mut b, 2).await, vec![300, 300]);
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn failover_defaults_and_whole_milliseconds() -> Result<(), UriError> {
        let mut b = Backoff::new(failover("")?);
        assert_eq!(run(&mut b, 5).await, vec![10, 20, 40, 80, 160]);
        // 22.5 ms is 22 ms, and the next wait grows from 22.
        let mut b = Backoff::new(failover("backOffMultiplier=1.5")?);
        assert_eq!(run(&mut b, 5).await, vec![10, 15, 22, 33, 49]);
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn failover_first_wait_as_given_then_bounded() -> Result<(), UriError> {
        let mut b = Backoff::new(failover("initialReconnectDelay=800&maxReconnectDelay=300")?);
        assert_eq!(run(&mut b, 3).await, vec![800, 300, 300]);
        let mut b = Backoff::new(failover("initialReconnectDelay=0")?);
        assert_eq!(run(&mut b, 3).await, vec![0, 1, 2]);
        let mut b = Backoff::new(failover(
            "initialReconnectDelay=0&useExponentialBackOff=false",
        )?);
        assert_eq!(run(&mut b, 3).await, vec![0, 1, 1]);
        Ok(())
    }

    /// A config no URI can give (their options are validated): the arithmetic holds anyway.
    fn wild(first_ms: u64, max_ms: u64, growth: Growth) -> BackoffConfig {
        BackoffConfig {
            first: Duration::from_millis(first_ms),
            min: Duration::ZERO,
            max: Duration::from_millis(max_ms),
            growth,
            give_up_after: None,
        }
    }

    fn waits(config: BackoffConfig, failures: usize) -> Vec<Option<Duration>> {
        let mut b = Backoff::new(config);
        (0..failures).map(|_| b.failed()).collect()
    }

    #[test]
    fn a_huge_multiplier_is_capped_not_a_panic() {
        // What static:(tcp://...)?backOffMultiplier=1e21&maxReconnectDelay=100 asked for.
        let o = NetworkOptions {
            back_off_multiplier: 1e21,
            max_reconnect_delay_ms: 100,
            ..NetworkOptions::default()
        };
        let ms100 = Some(Duration::from_millis(100));
        assert_eq!(waits(BackoffConfig::network(&o), 4), vec![ms100; 4]);
        let f = FailoverOptions {
            back_off_multiplier: 1e21,
            max_reconnect_delay_ms: 100,
            ..FailoverOptions::default()
        };
        let first = Some(Duration::from_millis(10));
        assert_eq!(
            waits(BackoffConfig::failover(&f, -1), 3),
            vec![first, ms100, ms100]
        );
    }

    #[test]
    fn any_multiplier_and_any_delay_stay_within_the_cap() {
        let multipliers = [f64::INFINITY, f64::NAN, -3.0, 0.0, f64::MAX, 1e300, 1.0];
        for m in multipliers {
            for growth in [Growth::Exact(m), Growth::WholeMillis(m)] {
                for (first, max) in [(u64::MAX, u64::MAX), (u64::MAX, 5), (1, u64::MAX)] {
                    let all = waits(wild(first, max, growth), 6);
                    let cap = Duration::from_millis(max);
                    assert!(
                        all.iter().skip(1).all(|w| w.is_some_and(|w| w <= cap)),
                        "{growth:?} {first} {max}: {all:?}"
                    );
                }
            }
        }
        // Bounds the wrong way round: the cap wins.
        let mut inverted = wild(10, 5, Growth::Exact(2.0));
        inverted.min = Duration::from_secs(60);
        assert_eq!(waits(inverted, 2)[1], Some(Duration::from_millis(5)));
    }

    #[test]
    fn failover_attempts_count_reconnects_after_the_first() -> Result<(), UriError> {
        let tries = |q: &str| -> Result<u64, UriError> {
            let mut b = Backoff::new(failover(q)?);
            while b.failed().is_some() {}
            Ok(b.attempts())
        };
        assert_eq!(tries("startupMaxReconnectAttempts=0")?, 1);
        assert_eq!(tries("startupMaxReconnectAttempts=2")?, 3);
        let mut forever = Backoff::new(failover("startupMaxReconnectAttempts=-1")?);
        assert!((0..10_000).all(|_| forever.failed().is_some()));
        Ok(())
    }
}
