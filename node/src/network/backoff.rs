//! Reconnect back-off of one peer, as ActiveMQ's `SimpleDiscoveryAgent` computes it.
//!
//! After a failed attempt the bridge waits `initialReconnectDelay`; with
//! `useExponentialBackOff` each further failure multiplies the wait by `backOffMultiplier`,
//! capped at `maxReconnectDelay` (without it the wait stays `initialReconnectDelay`, also
//! capped). `maxReconnectAttempts` > 0 gives up after that many failures in a row; 0 (the
//! default) retries forever. A link that stayed up for at least `minConnectTime` resets the
//! count; one that failed sooner counts as a failed attempt.

use std::time::Duration;

use mq_shared::uri::NetworkOptions;

/// Back-off state of one peer.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    exponential: bool,
    multiplier: f64,
    max_attempts: i64,
    attempts: u64,
    delay: Option<Duration>,
}

impl Backoff {
    /// The back-off a connector's options describe.
    pub fn new(o: &NetworkOptions) -> Backoff {
        Backoff {
            initial: Duration::from_millis(o.initial_reconnect_delay_ms),
            max: Duration::from_millis(o.max_reconnect_delay_ms),
            exponential: o.use_exponential_back_off,
            multiplier: o.back_off_multiplier,
            max_attempts: o.max_reconnect_attempts,
            attempts: 0,
            delay: None,
        }
    }

    /// Records a failed attempt and returns how long to wait before the next one, or `None`
    /// once `maxReconnectAttempts` failures in a row have been used up.
    pub fn failed(&mut self) -> Option<Duration> {
        self.attempts += 1;
        if self.max_attempts > 0 && self.attempts >= self.max_attempts as u64 {
            return None;
        }
        let next = match self.delay {
            Some(prev) if self.exponential => prev.mul_f64(self.multiplier.max(1.0)),
            _ => self.initial,
        };
        let next = next.min(self.max.max(Duration::from_millis(1)));
        self.delay = Some(next);
        Some(next)
    }

    /// A link came up and stayed up long enough: start again from `initialReconnectDelay`.
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
    use tokio::time::Instant;

    fn opts(q: &str) -> NetworkOptions {
        let u: mq_shared::uri::NetworkUri = format!("static:(tcp://h:1)?{q}")
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        u.options().clone()
    }

    /// Waits as the bridge does, on tokio's (paused) clock, and returns the waits taken.
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
    async fn exponential_doubles_up_to_the_cap() {
        let mut b = Backoff::new(&opts("initialReconnectDelay=100&maxReconnectDelay=1000"));
        assert_eq!(run(&mut b, 6).await, vec![100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(run(&mut b, 2).await, vec![100, 200]);
    }

    #[tokio::test(start_paused = true)]
    async fn defaults_and_the_seed_configuration() {
        let start = Instant::now();
        let mut b = Backoff::new(&NetworkOptions::default());
        assert_eq!(
            run(&mut b, 7).await,
            vec![1000, 2000, 4000, 8000, 16000, 30000, 30000]
        );
        assert_eq!(start.elapsed(), Duration::from_millis(91_000));
        // The seed's Broker3: maxReconnectDelay=5000&useExponentialBackOff=false.
        let mut b = Backoff::new(&opts("maxReconnectDelay=5000&useExponentialBackOff=false"));
        assert_eq!(run(&mut b, 4).await, vec![1000, 1000, 1000, 1000]);
    }

    #[tokio::test(start_paused = true)]
    async fn multiplier_and_attempt_limit() {
        let mut b = Backoff::new(&opts(
            "initialReconnectDelay=10&backOffMultiplier=3&maxReconnectAttempts=4",
        ));
        assert_eq!(run(&mut b, 10).await, vec![10, 30, 90]);
        assert_eq!(b.attempts(), 4);
        assert!(b.failed().is_none());
    }
}
