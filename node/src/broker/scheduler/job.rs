//! One scheduled message (a job): the `AMQ_SCHEDULED_*` headers read once, when it fires
//! first and next, what each fire delivers, and its store record. Pure: no clock, no I/O.
//!
//! The rules are ActiveMQ's (`SchedulerBroker`, `JobSchedulerImpl`):
//!
//! ```text
//! first fire   (cron ? next cron time after now : now) + (DELAY > 0 ? DELAY : PERIOD)
//! no CRON      each fire delivers; with repeats left, the next is at fire time + PERIOD
//!              with one repeat less; the last fire removes the job   (REPEAT + 1 copies)
//! CRON alone   each fire delivers; the next is the next cron time (forever)
//! CRON+REPEAT  each fire delivers nothing: it starts a new job without CRON (same DELAY,
//!              PERIOD, REPEAT, from the fire time), and the cron job waits for its next time
//! ```
//!
//! A message is scheduled when it has `AMQ_SCHEDULED_DELAY`, `_PERIOD` or `_CRON`;
//! `AMQ_SCHEDULED_REPEAT` alone schedules nothing. What a fire delivers is a copy without
//! the four headers (so a bridge's peer does not schedule it again) and with
//! `scheduledJobId`; a repeating or cron job's copies get a new `message-id` each, and a
//! message with `expires` gets its time to live counted again from the fire.

use std::str::FromStr;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::broker::Message;

pub use mq_shared::headers::{
    SCHEDULED_CRON as CRON, SCHEDULED_DELAY as DELAY, SCHEDULED_JOB_ID as JOB_ID,
    SCHEDULED_PERIOD as PERIOD, SCHEDULED_REPEAT as REPEAT,
};

/// How a message is scheduled, as its headers say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// ms before the first delivery (or, with CRON, after each cron time).
    pub delay: u64,
    /// ms between repeats.
    pub period: u64,
    /// Repeats after the first delivery (left, once the job runs).
    pub repeat: u32,
    /// Cron expression (empty: none).
    pub cron: String,
}

fn number<T: FromStr>(msg: &Message, name: &str) -> Result<Option<T>, String> {
    match msg.header(name).map(str::trim) {
        None => Ok(None),
        Some(v) => v.parse::<T>().map(Some).map_err(|_| {
            format!("{name} '{v}' is not a whole number of 0 or more (ActiveMQ scheduled delivery)")
        }),
    }
}

/// Parses a 5-field cron expression (minute hour day-of-month month day-of-week), as
/// ActiveMQ's `CronParser` takes them; seconds, years and `@` aliases are refused.
pub fn parse_cron(text: &str) -> Result<Cron, String> {
    let fields = text.split_whitespace().count();
    if fields != 5 {
        return Err(format!(
            "{CRON} '{text}' is not a cron expression of 5 fields (minute hour day-of-month month day-of-week)"
        ));
    }
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(text)
        .map_err(|e| format!("{CRON} '{text}' is not a valid cron expression: {e}"))
}

/// The first cron time strictly after `after_ms`, in the node's local time zone (as
/// ActiveMQ's `Calendar`), in ms since the epoch.
pub fn cron_next(cron: &Cron, after_ms: u64) -> Option<u64> {
    use chrono::TimeZone;
    let t = chrono::Local
        .timestamp_millis_opt(i64::try_from(after_ms).ok()?)
        .single()?;
    let next = cron.find_next_occurrence(&t, false).ok()?;
    u64::try_from(next.timestamp_millis()).ok()
}

impl Spec {
    /// How `msg` is to be scheduled: `None` when it is not (no DELAY, PERIOD or CRON);
    /// an error naming the header for a value that is not a number of 0 or more, or not a
    /// 5-field cron expression.
    pub fn of(msg: &Message) -> Result<Option<Spec>, String> {
        let delay = number::<u64>(msg, DELAY)?;
        let period = number::<u64>(msg, PERIOD)?;
        let repeat = number::<u32>(msg, REPEAT)?;
        let cron = msg.header(CRON).map(str::trim);
        if let Some(c) = cron
            && !c.is_empty()
        {
            parse_cron(c)?;
        }
        if delay.is_none() && period.is_none() && cron.is_none() {
            return Ok(None);
        }
        Ok(Some(Spec {
            delay: delay.unwrap_or(0),
            period: period.unwrap_or(0),
            repeat: repeat.unwrap_or(0),
            cron: cron.unwrap_or("").to_string(),
        }))
    }

    fn cron(&self) -> Option<Cron> {
        if self.cron.is_empty() {
            None
        } else {
            parse_cron(&self.cron).ok()
        }
    }

    /// When a job of this spec scheduled at `now` fires first.
    pub fn first_fire(&self, now: u64) -> u64 {
        let start = match self.cron() {
            Some(c) => cron_next(&c, now).unwrap_or(now),
            None => now,
        };
        start.saturating_add(if self.delay > 0 {
            self.delay
        } else {
            self.period
        })
    }
}

/// A scheduled message: its id, when it fires next, how, and the message.
#[derive(Debug, Clone)]
pub struct Job {
    /// Job id (`scheduledJobId` of what it delivers).
    pub id: Arc<str>,
    /// Next fire, ms since the epoch.
    pub at: u64,
    /// How it repeats (`repeat`: repeats left).
    pub spec: Spec,
    /// The message as it was sent (scheduling headers included).
    pub msg: Arc<Message>,
}

/// What one fire does.
#[derive(Debug)]
pub struct Fired {
    /// The copy to deliver (none for a cron job that starts a repeating one).
    pub deliver: Option<Message>,
    /// The job with its next time, or `None`: the job is done.
    pub next: Option<Job>,
    /// A new job a cron job with REPEAT starts.
    pub child: Option<Job>,
}

impl Job {
    /// Fires the job at `now`; `new_id` names fresh message and job ids.
    pub fn fire(&self, now: u64, mut new_id: impl FnMut() -> String) -> Fired {
        let cron = self.spec.cron();
        match cron {
            None => Fired {
                deliver: Some(self.copy(now, &mut new_id)),
                next: (self.spec.repeat > 0).then(|| Job {
                    id: self.id.clone(),
                    at: now.saturating_add(self.spec.period),
                    spec: Spec {
                        repeat: self.spec.repeat - 1,
                        ..self.spec.clone()
                    },
                    msg: self.msg.clone(),
                }),
                child: None,
            },
            Some(c) => {
                let next = cron_next(&c, now).map(|at| Job { at, ..self.clone() });
                if self.spec.repeat == 0 {
                    Fired {
                        deliver: Some(self.copy(now, &mut new_id)),
                        next,
                        child: None,
                    }
                } else {
                    let spec = Spec {
                        cron: String::new(),
                        ..self.spec.clone()
                    };
                    let child = Job {
                        id: Arc::from(new_id()),
                        at: spec.first_fire(now),
                        spec,
                        msg: self.msg.clone(),
                    };
                    Fired {
                        deliver: None,
                        next,
                        child: Some(child),
                    }
                }
            }
        }
    }

    /// The copy a fire at `now` delivers.
    fn copy(&self, now: u64, new_id: &mut impl FnMut() -> String) -> Message {
        let mut m = (*self.msg).clone();
        let repeats = m
            .header(REPEAT)
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(0);
        if repeats != 0 || m.header(CRON).is_some_and(|c| !c.trim().is_empty()) {
            // The original could be delivered many times: each copy is a message of its own.
            m.id = Arc::from(new_id());
        }
        m.headers
            .retain(|(k, _)| ![DELAY, PERIOD, REPEAT, CRON, JOB_ID].contains(&k.as_str()));
        m.headers.push((JOB_ID.to_string(), self.id.to_string()));
        if m.expires > 0 && m.timestamp > 0 {
            let ttl = m.expires.saturating_sub(m.timestamp);
            let expires = now.saturating_add(ttl);
            if expires > m.expires {
                if ttl > 0 {
                    m.expires = expires;
                }
                m.timestamp = now;
            }
        }
        m
    }

    /// The store record (the id and fire time are its key).
    pub fn encode(&self) -> Bytes {
        let msg = self.msg.encode();
        let mut b = BytesMut::with_capacity(msg.len() + 32 + self.spec.cron.len());
        b.put_u8(1);
        b.put_u64_le(self.spec.delay);
        b.put_u64_le(self.spec.period);
        b.put_u32_le(self.spec.repeat);
        let cron = &self.spec.cron.as_bytes()[..self.spec.cron.len().min(u16::MAX as usize)];
        b.put_u16_le(cron.len() as u16);
        b.put_slice(cron);
        b.put_slice(&msg);
        b.freeze()
    }

    /// A job from its store record; `None` if it is not one.
    pub fn decode(id: Arc<str>, at: u64, record: &Bytes) -> Option<Job> {
        let mut b: &[u8] = record;
        if b.remaining() < 1 + 8 + 8 + 4 + 2 || b.get_u8() != 1 {
            return None;
        }
        let delay = b.get_u64_le();
        let period = b.get_u64_le();
        let repeat = b.get_u32_le();
        let n = b.get_u16_le() as usize;
        if b.remaining() < n {
            return None;
        }
        let cron = std::str::from_utf8(&b[..n]).ok()?.to_string();
        b.advance(n);
        let msg = Message::decode_shared(&record.slice(record.len() - b.len()..))?;
        Some(Job {
            id,
            at,
            spec: Spec {
                delay,
                period,
                repeat,
                cron,
            },
            msg: Arc::new(msg),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mq_shared::destination::Destination;

    fn msg(headers: &[(&str, &str)]) -> Message {
        Message {
            id: Arc::from("ID:m-1"),
            destination: Destination::queue("q"),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: Bytes::from_static(b"hello"),
            persistent: true,
            expires: 0,
            timestamp: 1_000,
        }
    }

    fn job(headers: &[(&str, &str)], now: u64) -> Result<Job, String> {
        let m = msg(headers);
        let spec = Spec::of(&m)?.ok_or("not scheduled")?;
        Ok(Job {
            id: Arc::from("job-1"),
            at: spec.first_fire(now),
            spec,
            msg: Arc::new(m),
        })
    }

    #[test]
    fn bad_values_are_errors_that_name_the_header() {
        for (h, v) in [
            (DELAY, "-5"),
            (DELAY, "soon"),
            (PERIOD, "1.5"),
            (REPEAT, "-1"),
            (CRON, "* * * *"),
            (CRON, "0 0 * * * *"),
            (CRON, "61 * * * *"),
            (CRON, "@hourly"),
        ] {
            let e = Spec::of(&msg(&[(h, v)])).err();
            assert!(
                e.as_deref().is_some_and(|e| e.contains(h)),
                "{h}={v}: {e:?}"
            );
        }
    }

    #[test]
    fn repeat_alone_schedules_nothing() -> Result<(), String> {
        assert_eq!(Spec::of(&msg(&[(REPEAT, "3")]))?, None);
        assert_eq!(Spec::of(&msg(&[("x", "1")]))?, None);
        Ok(())
    }

    #[test]
    fn delay_then_period_repeats_make_repeat_plus_one_copies() -> Result<(), String> {
        let j = job(&[(DELAY, "500"), (PERIOD, "100"), (REPEAT, "2")], 10_000)?;
        assert_eq!(j.at, 10_500);
        let mut ids = 0;
        let mut new_id = || {
            ids += 1;
            format!("ID:new-{ids}")
        };
        let f = j.fire(10_510, &mut new_id);
        let copy = f.deliver.ok_or("no copy")?;
        assert_eq!(
            copy.id.as_ref(),
            "ID:new-1",
            "a repeating job's copies get new ids"
        );
        assert_eq!(copy.header(JOB_ID), Some("job-1"));
        assert!(copy.header(DELAY).is_none() && copy.header(REPEAT).is_none());
        let n = f.next.ok_or("no next")?;
        assert_eq!(
            (n.at, n.spec.repeat),
            (10_610, 1),
            "next = fire time + period"
        );
        let n = n.fire(10_620, &mut new_id).next.ok_or("no next")?;
        assert_eq!((n.at, n.spec.repeat), (10_720, 0));
        let last = n.fire(10_720, &mut new_id);
        assert!(last.deliver.is_some() && last.next.is_none());
        Ok(())
    }

    #[test]
    fn a_one_shot_keeps_its_message_id_and_period_alone_is_a_delay() -> Result<(), String> {
        let j = job(&[(PERIOD, "300")], 1_000)?;
        assert_eq!(j.at, 1_300);
        let f = j.fire(1_300, || "ID:other".into());
        assert_eq!(f.deliver.map(|m| m.id), Some(Arc::from("ID:m-1")));
        assert!(f.next.is_none());
        Ok(())
    }

    #[test]
    fn time_to_live_counts_from_the_fire() -> Result<(), String> {
        let mut j = job(&[(DELAY, "5000")], 1_000)?;
        let mut m = (*j.msg).clone();
        m.expires = 3_000;
        j.msg = Arc::new(m);
        let copy = j.fire(6_000, || "x".into()).deliver.ok_or("no copy")?;
        assert_eq!((copy.timestamp, copy.expires), (6_000, 8_000));
        Ok(())
    }

    fn local_ms(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Result<u64, String> {
        use chrono::TimeZone;
        chrono::Local
            .with_ymd_and_hms(y, mo, d, h, mi, s)
            .single()
            .map(|t| t.timestamp_millis() as u64)
            .ok_or_else(|| "no such local time".to_string())
    }

    #[test]
    fn cron_next_time_is_the_next_matching_minute() -> Result<(), String> {
        let every = parse_cron("* * * * *")?;
        let t = local_ms(2026, 3, 4, 10, 20, 30)?;
        assert_eq!(cron_next(&every, t), Some(local_ms(2026, 3, 4, 10, 21, 0)?));
        let at_noon = parse_cron("0 12 * * *")?;
        assert_eq!(
            cron_next(&at_noon, t),
            Some(local_ms(2026, 3, 4, 12, 0, 0)?)
        );
        let noon = local_ms(2026, 3, 4, 12, 0, 0)?;
        assert_eq!(
            cron_next(&at_noon, noon),
            Some(local_ms(2026, 3, 5, 12, 0, 0)?)
        );
        // Day of week 1 is Monday (2026-03-09), as in ActiveMQ and cron.
        let mondays = parse_cron("30 8 * * 1")?;
        assert_eq!(
            cron_next(&mondays, t),
            Some(local_ms(2026, 3, 9, 8, 30, 0)?)
        );
        // 0 and 7 are both Sunday (2026-03-08).
        for sunday in ["0 0 * * 0", "0 0 * * 7"] {
            assert_eq!(
                cron_next(&parse_cron(sunday)?, t),
                Some(local_ms(2026, 3, 8, 0, 0, 0)?)
            );
        }
        let ranges = parse_cron("*/15 9-17 1 * *")?;
        assert_eq!(cron_next(&ranges, t), Some(local_ms(2026, 4, 1, 9, 0, 0)?));
        Ok(())
    }

    #[test]
    fn cron_with_delay_and_cron_with_repeat_follow_activemq() -> Result<(), String> {
        let t = local_ms(2026, 3, 4, 10, 20, 30)?;
        let minute = local_ms(2026, 3, 4, 10, 21, 0)?;
        // CRON alone: delivered at each cron time, forever.
        let j = job(&[(CRON, "* * * * *")], t)?;
        assert_eq!(j.at, minute);
        let f = j.fire(minute, || "ID:c".into());
        assert!(f.deliver.is_some() && f.child.is_none());
        assert_eq!(f.next.map(|n| n.at), Some(minute + 60_000));
        // CRON + DELAY: the first fire is the cron time plus the delay.
        assert_eq!(
            job(&[(CRON, "* * * * *"), (DELAY, "2000")], t)?.at,
            minute + 2_000
        );
        // CRON + REPEAT: a fire starts a job of DELAY/PERIOD/REPEAT and delivers nothing.
        let j = job(&[(CRON, "* * * * *"), (PERIOD, "1000"), (REPEAT, "2")], t)?;
        let f = j.fire(minute + 1_000, || "job-2".into());
        assert!(f.deliver.is_none());
        let child = f.child.ok_or("no child")?;
        assert_eq!(child.id.as_ref(), "job-2");
        assert_eq!((child.at, child.spec.repeat), (minute + 2_000, 2));
        assert!(child.spec.cron.is_empty());
        assert_eq!(f.next.map(|n| n.at), Some(minute + 60_000));
        Ok(())
    }

    #[test]
    fn the_store_record_round_trips() -> Result<(), String> {
        let j = job(&[(CRON, "5 * * * *"), (DELAY, "7"), (REPEAT, "3")], 1_000)?;
        let back = Job::decode(j.id.clone(), j.at, &j.encode()).ok_or("not decoded")?;
        assert_eq!(back.spec, j.spec);
        assert_eq!(*back.msg, *j.msg);
        assert!(Job::decode(j.id.clone(), 0, &Bytes::from_static(b"\x02")).is_none());
        Ok(())
    }
}
