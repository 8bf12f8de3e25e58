//! What the chaos load sent, what the broker confirmed and what consumers got: one record per
//! message (producer, sequence), updated by the producers and consumers as it happens, and the
//! [`Audit`] computed from it at the end.
//!
//! A message body names its producer, sequence and send attempt ([`MsgId`]). Attempt 0 is the
//! first SEND; a producer that loses its connection before the RECEIPT sends the message again
//! with the next attempt, so two deliveries of one message either differ in attempt (a resend
//! of an unconfirmed SEND) or are the same SEND delivered twice (a redelivery, which must say
//! `redelivered:true`).

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde::Serialize;

/// A message body's identity: producer, sequence, send attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct MsgId {
    /// Producer index.
    pub producer: u32,
    /// Sequence within the producer, from 0.
    pub seq: u64,
    /// 0 for the first SEND, one more for each resend.
    pub attempt: u8,
}

impl MsgId {
    /// The body: `chaos p=P s=SEQ a=ATTEMPT` padded with `.` to `size` bytes.
    pub fn body(&self, size: usize) -> Bytes {
        let mut b = format!(
            "chaos p={} s={} a={} ",
            self.producer, self.seq, self.attempt
        )
        .into_bytes();
        if b.len() < size {
            b.resize(size, b'.');
        }
        Bytes::from(b)
    }

    /// The id at the start of a [`MsgId::body`]; `None` for any other body.
    pub fn parse(body: &[u8]) -> Option<MsgId> {
        let text = std::str::from_utf8(body).ok()?;
        let mut words = text.split(' ');
        if words.next()? != "chaos" {
            return None;
        }
        let mut field =
            |name: &str| -> Option<u64> { words.next()?.strip_prefix(name)?.parse().ok() };
        Some(MsgId {
            producer: u32::try_from(field("p=")?).ok()?,
            seq: field("s=")?,
            attempt: u8::try_from(field("a=")?).ok()?,
        })
    }
}

/// Where a delivery was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A load consumer (on group B, during the run and the drain).
    Load,
    /// The final drain of the queue on a group's master.
    Leftover,
    /// The final drain of the dead-letter queue.
    DeadLetter,
}

#[derive(Debug, Clone, Copy)]
struct Delivery {
    attempt: u8,
    redelivered: bool,
    source: Source,
}

/// One message. Most are delivered once: the first delivery is kept inline, so a run of
/// millions of messages costs no allocation per message.
#[derive(Debug, Default)]
struct Record {
    /// Attempts sent (the last one is `attempts - 1`).
    attempts: u8,
    /// The attempt a RECEIPT confirmed.
    receipted: Option<u8>,
    first: Option<Delivery>,
    more: Vec<Delivery>,
}

impl Record {
    fn deliveries(&self) -> impl Iterator<Item = &Delivery> {
        self.first.iter().chain(&self.more)
    }

    fn delivered(&self, attempt: u8) -> bool {
        self.deliveries().any(|d| d.attempt == attempt)
    }

    fn push(&mut self, d: Delivery) {
        if self.first.is_none() {
            self.first = Some(d);
        } else {
            self.more.push(d);
        }
    }
}

/// Running totals, cheap to read for progress lines.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Progress {
    /// Distinct messages sent (first attempts).
    pub sent: u64,
    /// SEND frames written, resends included.
    pub sends: u64,
    /// Messages confirmed by a RECEIPT.
    pub receipted: u64,
    /// Distinct messages delivered at least once.
    pub consumed: u64,
    /// Deliveries in all.
    pub deliveries: u64,
    /// Confirmed messages whose confirmed SEND has not been delivered yet.
    pub outstanding: u64,
}

/// The ledger of a run: per producer, one [`Record`] per sequence number.
#[derive(Debug, Default)]
pub struct Ledger {
    producers: Vec<Vec<Record>>,
    progress: Progress,
    /// Deliveries naming a message never sent.
    phantom: u64,
    /// Deliveries whose body is not a chaos body.
    foreign: u64,
}

/// A ledger shared by the producer and consumer tasks.
pub type SharedLedger = Arc<Mutex<Ledger>>;

/// Locks a shared ledger (a panicked holder leaves it usable: it only ever grows).
pub fn lock(l: &SharedLedger) -> std::sync::MutexGuard<'_, Ledger> {
    l.lock().unwrap_or_else(|e| e.into_inner())
}

impl Ledger {
    /// A ledger for `producers` producers.
    pub fn new(producers: usize) -> Ledger {
        Ledger {
            producers: (0..producers).map(|_| Vec::new()).collect(),
            ..Ledger::default()
        }
    }

    fn record(&mut self, id: MsgId) -> Option<&mut Record> {
        let seq = usize::try_from(id.seq).ok()?;
        self.producers.get_mut(id.producer as usize)?.get_mut(seq)
    }

    /// A SEND of `id` is about to be written. Sequences of a producer come in order.
    pub fn sent(&mut self, id: MsgId) {
        let Some(records) = self.producers.get_mut(id.producer as usize) else {
            return;
        };
        if id.seq == records.len() as u64 {
            records.push(Record::default());
            self.progress.sent += 1;
        }
        if let Some(r) = self.record(id) {
            r.attempts = r.attempts.max(id.attempt.saturating_add(1));
            self.progress.sends += 1;
        }
    }

    /// The RECEIPT for the SEND of `id` arrived.
    pub fn receipted(&mut self, id: MsgId) {
        let Some(r) = self.record(id) else { return };
        if r.receipted.is_some() {
            return;
        }
        r.receipted = Some(id.attempt);
        let outstanding = !r.delivered(id.attempt);
        self.progress.receipted += 1;
        if outstanding {
            self.progress.outstanding += 1;
        }
    }

    /// A consumer got the SEND of `id`, flagged `redelivered:true` or not.
    pub fn delivered(&mut self, id: MsgId, redelivered: bool, source: Source) {
        let Some(r) = self.record(id) else {
            self.phantom += 1;
            return;
        };
        if id.attempt >= r.attempts {
            self.phantom += 1;
            return;
        }
        let first = r.first.is_none();
        let completes = r.receipted == Some(id.attempt) && !r.delivered(id.attempt);
        r.push(Delivery {
            attempt: id.attempt,
            redelivered,
            source,
        });
        self.progress.deliveries += 1;
        if first {
            self.progress.consumed += 1;
        }
        if completes {
            self.progress.outstanding -= 1;
        }
    }

    /// A consumer got a body that is not a chaos body.
    pub fn foreign(&mut self) {
        self.foreign += 1;
    }

    /// Running totals.
    pub fn progress(&self) -> Progress {
        self.progress
    }

    /// Counts and violations over everything recorded.
    pub fn audit(&self) -> Audit {
        let mut a = Audit {
            sent: self.progress.sent,
            sends: self.progress.sends,
            resends: self.progress.sends - self.progress.sent,
            receipted: self.progress.receipted,
            consumed: self.progress.consumed,
            deliveries: self.progress.deliveries,
            phantom: self.phantom,
            foreign: self.foreign,
            ..Audit::default()
        };
        for (p, records) in self.producers.iter().enumerate() {
            for (seq, r) in records.iter().enumerate() {
                let id = |attempt| MsgId {
                    producer: p as u32,
                    seq: seq as u64,
                    attempt,
                };
                a.leftover += count(r, |d| d.source == Source::Leftover);
                a.dead_lettered += count(r, |d| d.source == Source::DeadLetter);
                if let Some(att) = r.receipted {
                    if !r.delivered(att) {
                        a.lost += 1;
                        if r.first.is_some() {
                            a.lost_other_attempt_consumed += 1;
                        }
                        if a.lost_sample.len() < SAMPLE {
                            a.lost_sample.push(id(att));
                        }
                    }
                } else {
                    a.unreceipted += 1;
                    if r.first.is_some() {
                        a.unreceipted_consumed += 1;
                    }
                }
                // Duplicates among deliveries to applications: the dead-letter queue is
                // another destination, its copy no second delivery of the queue's.
                let live: Vec<&Delivery> = r
                    .deliveries()
                    .filter(|d| d.source != Source::DeadLetter)
                    .collect();
                if live.len() < 2 {
                    continue;
                }
                a.duplicated_messages += 1;
                a.duplicates += live.len() as u64 - 1;
                let mut attempts: Vec<u8> = live.iter().map(|d| d.attempt).collect();
                attempts.sort_unstable();
                attempts.dedup();
                a.duplicates_resent += attempts.len() as u64 - 1;
                for att in attempts {
                    let of: Vec<&&Delivery> = live.iter().filter(|d| d.attempt == att).collect();
                    let unflagged = of.iter().filter(|d| !d.redelivered).count() as u64;
                    let extra = of.len() as u64 - 1;
                    // Only the first delivery of a SEND may lack the flag.
                    let bad = unflagged.saturating_sub(1);
                    a.duplicates_redelivered += extra - bad;
                    a.duplicates_unflagged += bad;
                    if bad > 0 && a.unflagged_sample.len() < SAMPLE {
                        a.unflagged_sample.push(id(att));
                    }
                }
            }
        }
        a
    }
}

fn count(r: &Record, f: impl Fn(&Delivery) -> bool) -> u64 {
    r.deliveries().filter(|d| f(d)).count() as u64
}

/// How many ids the audit lists as examples.
const SAMPLE: usize = 20;

/// The final count. `duplicates = duplicates_resent + duplicates_redelivered +
/// duplicates_unflagged`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Audit {
    /// Distinct messages sent.
    pub sent: u64,
    /// SEND frames written, resends included.
    pub sends: u64,
    /// SEND frames that were resends of an unconfirmed message.
    pub resends: u64,
    /// Messages confirmed by a RECEIPT.
    pub receipted: u64,
    /// Messages never confirmed (the run ended, or gave up, before their RECEIPT).
    pub unreceipted: u64,
    /// Of those, delivered anyway (stored before the connection broke).
    pub unreceipted_consumed: u64,
    /// Distinct messages delivered at least once.
    pub consumed: u64,
    /// Deliveries in all.
    pub deliveries: u64,
    /// Deliveries made by the final drain of the queue.
    pub leftover: u64,
    /// Deliveries made by the final drain of the dead-letter queue.
    pub dead_lettered: u64,
    /// Messages delivered more than once (dead-letter copies aside).
    pub duplicated_messages: u64,
    /// Deliveries beyond the first of each message.
    pub duplicates: u64,
    /// Of those, deliveries of a resent SEND (another attempt of the message).
    pub duplicates_resent: u64,
    /// Of those, second deliveries of one SEND that said `redelivered:true`.
    pub duplicates_redelivered: u64,
    /// Of those, second deliveries of one SEND without `redelivered:true`: violations.
    pub duplicates_unflagged: u64,
    /// Up to 20 SENDs delivered twice without the flag.
    pub unflagged_sample: Vec<MsgId>,
    /// Confirmed SENDs never delivered: violations.
    pub lost: u64,
    /// Of those, messages of which another attempt was delivered.
    pub lost_other_attempt_consumed: u64,
    /// Up to 20 lost SENDs.
    pub lost_sample: Vec<MsgId>,
    /// Deliveries of a message never sent: violations.
    pub phantom: u64,
    /// Deliveries whose body is not a chaos body: violations.
    pub foreign: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(seq: u64, attempt: u8) -> MsgId {
        MsgId {
            producer: 0,
            seq,
            attempt,
        }
    }

    #[test]
    fn bodies_round_trip() {
        let m = MsgId {
            producer: 3,
            seq: 123_456,
            attempt: 2,
        };
        assert_eq!(MsgId::parse(&m.body(256)), Some(m));
        assert_eq!(m.body(256).len(), 256);
        assert_eq!(MsgId::parse(b"hello"), None);
    }

    #[test]
    fn classifies_loss_resends_and_redeliveries() {
        let mut l = Ledger::new(1);
        // 0: sent, receipted, delivered once.
        l.sent(id(0, 0));
        l.receipted(id(0, 0));
        l.delivered(id(0, 0), false, Source::Load);
        // 1: attempt 0 stored without a receipt, resent; both delivered.
        l.sent(id(1, 0));
        l.sent(id(1, 1));
        l.delivered(id(1, 0), false, Source::Load);
        l.receipted(id(1, 1));
        l.delivered(id(1, 1), false, Source::Load);
        // 2: delivered, then redelivered with the flag, then without it.
        l.sent(id(2, 0));
        l.delivered(id(2, 0), false, Source::Load);
        l.receipted(id(2, 0));
        l.delivered(id(2, 0), true, Source::Load);
        l.delivered(id(2, 0), false, Source::Leftover);
        // 3: receipted, never delivered; 4: never receipted.
        l.sent(id(3, 0));
        l.receipted(id(3, 0));
        l.sent(id(4, 0));
        assert_eq!(l.progress().outstanding, 1);
        let a = l.audit();
        assert_eq!((a.sent, a.sends, a.resends), (5, 6, 1));
        assert_eq!((a.receipted, a.unreceipted, a.consumed), (4, 1, 3));
        assert_eq!((a.lost, a.lost_sample.clone()), (1, vec![id(3, 0)]));
        assert_eq!(a.duplicates, 3);
        assert_eq!(a.duplicates_resent, 1);
        assert_eq!(a.duplicates_redelivered, 1);
        assert_eq!(a.duplicates_unflagged, 1);
        assert_eq!(a.leftover, 1);
    }

    #[test]
    fn a_delivery_of_an_unsent_message_is_phantom() {
        let mut l = Ledger::new(1);
        l.sent(id(0, 0));
        l.delivered(id(0, 1), false, Source::Load);
        l.delivered(id(5, 0), false, Source::Load);
        assert_eq!(l.audit().phantom, 2);
    }
}
