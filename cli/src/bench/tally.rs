//! Counting what arrived: one bit per (producer, sequence), so loss and duplication are exact,
//! and one latency sample per message, so percentiles are exact too.
//!
//! Each consumer keeps its own [`Tally`] (no lock on the receive path); the run merges them
//! once at the end, which also finds a message delivered to two different consumers.

use mq_shared::bench::LatencyMs;

/// A growable set of sequence numbers.
#[derive(Debug, Default, Clone)]
struct Bits {
    words: Vec<u64>,
}

impl Bits {
    /// Sets `i`; returns whether it was already set.
    fn set(&mut self, i: u64) -> bool {
        let (w, b) = ((i / 64) as usize, i % 64);
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        let was = self.words[w] & (1 << b) != 0;
        self.words[w] |= 1 << b;
        was
    }

    /// How many of `0..n` are set.
    fn count_below(&self, n: u64) -> u64 {
        let full = (n / 64) as usize;
        let mut count: u64 = self
            .words
            .iter()
            .take(full)
            .map(|w| u64::from(w.count_ones()))
            .sum();
        let rest = n % 64;
        if rest > 0
            && let Some(w) = self.words.get(full)
        {
            count += u64::from((w & ((1u64 << rest) - 1)).count_ones());
        }
        count
    }
}

/// What one consumer received.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    seen: Vec<Bits>,
    /// Copies of a message this consumer had already received.
    pub duplicated: u64,
    /// Messages that are not from this run.
    pub foreign: u64,
    /// End-to-end latency of each first copy, in microseconds.
    pub latencies_us: Vec<u32>,
}

impl Tally {
    /// Records one message of this run; returns `true` if it is new to this consumer.
    pub fn record(&mut self, producer: u32, seq: u64, latency_us: u32) -> bool {
        let p = producer as usize;
        if p >= self.seen.len() {
            self.seen.resize(p + 1, Bits::default());
        }
        if self.seen[p].set(seq) {
            self.duplicated += 1;
            false
        } else {
            self.latencies_us.push(latency_us);
            true
        }
    }

    /// Merges other consumers' tallies into this one: a message seen by two consumers counts
    /// as duplicated (and only its first latency sample stays).
    pub fn merge(mut self, others: impl IntoIterator<Item = Tally>) -> Tally {
        for other in others {
            self.duplicated += other.duplicated;
            self.foreign += other.foreign;
            self.latencies_us.extend(other.latencies_us);
            for (p, bits) in other.seen.into_iter().enumerate() {
                if p >= self.seen.len() {
                    self.seen.resize(p + 1, Bits::default());
                }
                let mine = &mut self.seen[p].words;
                if mine.len() < bits.words.len() {
                    mine.resize(bits.words.len(), 0);
                }
                for (m, o) in mine.iter_mut().zip(bits.words) {
                    self.duplicated += u64::from((*m & o).count_ones());
                    *m |= o;
                }
            }
        }
        self
    }

    /// Distinct messages received.
    pub fn received(&self) -> u64 {
        self.seen
            .iter()
            .map(|b| {
                b.words
                    .iter()
                    .map(|w| u64::from(w.count_ones()))
                    .sum::<u64>()
            })
            .sum()
    }

    /// Messages sent (`sent[p]` by producer `p`, sequences `0..sent[p]`) that never arrived.
    pub fn lost(&self, sent: &[u64]) -> u64 {
        sent.iter()
            .enumerate()
            .map(|(p, &n)| n - self.seen.get(p).map_or(0, |b| b.count_below(n)))
            .sum()
    }

    /// Percentiles of the latency samples (sorts them).
    pub fn latency(&mut self) -> LatencyMs {
        let v = &mut self.latencies_us;
        if v.is_empty() {
            return LatencyMs::default();
        }
        v.sort_unstable();
        let at = |q: f64| {
            let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
            f64::from(v[i]) / 1000.0
        };
        let sum: u64 = v.iter().map(|&x| u64::from(x)).sum();
        LatencyMs {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max: at(1.0),
            mean: sum as f64 / v.len() as f64 / 1000.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_loss_and_duplicates_across_consumers() {
        let mut a = Tally::default();
        let mut b = Tally::default();
        for seq in 0..100 {
            if seq % 2 == 0 {
                assert!(a.record(0, seq, 10));
            } else if seq != 51 {
                assert!(b.record(0, seq, 20));
            }
        }
        assert!(!a.record(0, 4, 10), "same consumer twice");
        assert!(b.record(0, 6, 10), "new to b, a duplicate across consumers");
        a.record(1, 0, 5);
        let mut all = a.merge([b]);
        assert_eq!(all.received(), 100);
        assert_eq!(all.duplicated, 2);
        assert_eq!(all.lost(&[100, 1]), 1);
        assert_eq!(all.lost(&[100, 2]), 2);
        assert_eq!(all.lost(&[100, 1, 3]), 4);
        let l = all.latency();
        assert_eq!(l.max, 0.02);
        assert!(l.p50 >= 0.01 && l.p50 <= 0.02);
    }

    #[test]
    fn count_below_word_edges() {
        let mut bits = Bits::default();
        for i in [0, 63, 64, 127, 128] {
            bits.set(i);
        }
        assert_eq!(bits.count_below(0), 0);
        assert_eq!(bits.count_below(1), 1);
        assert_eq!(bits.count_below(64), 2);
        assert_eq!(bits.count_below(65), 3);
        assert_eq!(bits.count_below(128), 4);
        assert_eq!(bits.count_below(1000), 5);
    }

    #[test]
    fn percentiles_of_one_to_a_thousand() {
        let mut t = Tally::default();
        for i in 1..=1000u32 {
            t.record(0, u64::from(i), i * 1000);
        }
        let l = t.latency();
        assert_eq!(l.p50, 500.0);
        assert_eq!(l.p99, 990.0);
        assert_eq!(l.p999, 999.0);
        assert_eq!(l.max, 1000.0);
    }
}
