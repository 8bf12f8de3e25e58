//! The lease's timing ([`LeaseTiming`]: how long it lasts, how often it is renewed, how long
//! a slave sleeps) and a master's renewal schedule, both pure.

use std::time::Duration;

use tokio::time::Instant;

use super::{LeaseError, millis};

/// How long a slave sleeps past the end the row gives, so that its try lands after it.
const WAKE_SLACK: Duration = Duration::from_millis(5);
/// The shortest retry of a failed renewal.
const MIN_RETRY: Duration = Duration::from_millis(5);

/// The lease's timing: renewed every `keep_alive`, lasting `lease` (ActiveMQ's
/// `lockKeepAlivePeriod` and `lockAcquireSleepInterval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    keep_alive: Duration,
    lease: Duration,
}

impl LeaseTiming {
    /// Checks `acquire_interval > keep_alive > 0`.
    pub fn new(keep_alive: Duration, acquire_interval: Duration) -> Result<Self, LeaseError> {
        if keep_alive.is_zero() || acquire_interval <= keep_alive {
            return Err(LeaseError::Timing {
                keep_alive_ms: millis(keep_alive),
                acquire_ms: millis(acquire_interval),
            });
        }
        Ok(LeaseTiming {
            keep_alive,
            lease: acquire_interval,
        })
    }

    /// `lock-keep-alive-period`: how often the master renews.
    pub fn keep_alive(&self) -> Duration {
        self.keep_alive
    }

    /// `lock-acquire-sleep-interval`: how long a lease lasts, and a slave's longest sleep.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// What the master keeps between its own deadline and the earliest end of its lease:
    /// `(L - K) / 2`.
    pub fn stop_margin(&self) -> Duration {
        (self.lease - self.keep_alive) / 2
    }

    /// The master's deadline for a take or renewal sent at `sent`.
    pub fn deadline(&self, sent: Instant) -> Instant {
        sent + self.lease - self.stop_margin()
    }

    /// How soon a failed renewal is tried again.
    pub fn retry_interval(&self) -> Duration {
        (self.keep_alive / 4).max(MIN_RETRY)
    }

    /// How long a slave sleeps when the lease has `remaining` (database time) to run.
    pub fn slave_sleep(&self, remaining: Duration) -> Duration {
        (remaining + WAKE_SLACK).min(self.lease)
    }
}

/// A master's renewal schedule: pure, driven by the renewal task with its clock readings.
#[derive(Debug, Clone, Copy)]
pub(super) struct Schedule {
    timing: LeaseTiming,
    pub(super) deadline: Instant,
    next: Instant,
}

impl Schedule {
    /// After a take sent at `sent`.
    pub(super) fn new(timing: LeaseTiming, sent: Instant) -> Self {
        Schedule {
            timing,
            deadline: timing.deadline(sent),
            next: sent + timing.keep_alive,
        }
    }

    /// A renewal sent at `sent` succeeded.
    pub(super) fn renewed(&mut self, sent: Instant) {
        self.deadline = self.deadline.max(self.timing.deadline(sent));
        self.next = sent + self.timing.keep_alive;
    }

    /// A renewal failed at `now`: try again soon, never past the deadline.
    pub(super) fn failed(&mut self, now: Instant) {
        self.next = (now + self.timing.retry_interval()).min(self.deadline);
    }

    /// When the task wakes next.
    pub(super) fn wake_at(&self) -> Instant {
        self.next.min(self.deadline)
    }

    /// Whether the lease must be taken as lost at `now`.
    pub(super) fn lost(&self, now: Instant) -> bool {
        now >= self.deadline
    }

    /// How long an attempt at `now` may take.
    pub(super) fn budget(&self, now: Instant) -> Duration {
        self.deadline.saturating_duration_since(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_acquire_interval_must_exceed_the_keep_alive() {
        for (k, a) in [(200, 200), (500, 200), (0, 100)] {
            let e = LeaseTiming::new(ms(k), ms(a)).expect_err("refused");
            let text = e.to_string();
            assert!(
                text.contains("lock-acquire-sleep-interval")
                    && text.contains("lock-keep-alive-period"),
                "{text}"
            );
        }
        let t = LeaseTiming::new(ms(200), ms(500)).expect("valid");
        assert_eq!((t.keep_alive(), t.lease()), (ms(200), ms(500)));
        assert_eq!(t.stop_margin(), ms(150));
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_follows_the_last_renewal_sent_and_stays_inside_the_lease() {
        let t = LeaseTiming::new(ms(200), ms(500)).expect("valid");
        let start = Instant::now();
        let mut s = Schedule::new(t, start);
        // The take was sent at `start`: the lease ends no earlier than start + 500 in the
        // database; the member stops at start + 350.
        assert_eq!(s.deadline, start + ms(350));
        assert_eq!(s.wake_at(), start + ms(200));
        // A renewal sent at 200 that took 80 ms to answer still counts from 200.
        tokio::time::advance(ms(280)).await;
        s.renewed(start + ms(200));
        assert_eq!(s.deadline, start + ms(550));
        assert_eq!(s.wake_at(), start + ms(400));
        // Failures retry every 50 ms, never past the deadline, which does not move.
        tokio::time::advance(ms(120)).await;
        s.failed(Instant::now());
        assert_eq!(s.wake_at(), start + ms(450));
        tokio::time::advance(ms(100)).await;
        s.failed(Instant::now());
        assert_eq!(s.wake_at(), start + ms(550));
        assert!(!s.lost(start + ms(549)));
        assert!(s.lost(start + ms(550)));
        assert_eq!(s.budget(start + ms(500)), ms(50));
        // The member's end is always stop_margin before the lease's earliest end.
        assert_eq!(s.deadline + t.stop_margin(), start + ms(200) + t.lease());
    }

    #[test]
    fn a_slave_sleeps_until_the_row_says_the_lease_ends_at_most_one_interval() {
        let t = LeaseTiming::new(ms(200), ms(500)).expect("valid");
        assert_eq!(t.slave_sleep(ms(120)), ms(125));
        assert_eq!(t.slave_sleep(Duration::ZERO), ms(5));
        assert_eq!(t.slave_sleep(ms(10_000)), ms(500));
        assert_eq!(t.retry_interval(), ms(50));
        assert_eq!(
            LeaseTiming::new(ms(8), ms(20))
                .expect("valid")
                .retry_interval(),
            MIN_RETRY
        );
    }
}
