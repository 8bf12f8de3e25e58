//! The JSON shape of `mqctl bench -o json`.
//!
//! One [`BenchReport`] per run: what was asked for ([`BenchParams`]), what happened (counts,
//! rates, end-to-end latency) and the verdict (`lost`, `duplicated`). Scripts such as
//! `scripts/bench.sh` parse it, so fields are added, never renamed or removed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Whether producers ask for a RECEIPT per SEND.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReceiptMode {
    /// Every SEND carries a `receipt` header and the producer waits for it (up to its window
    /// of outstanding receipts).
    Each,
    /// No receipts: SEND frames are written back to back.
    None,
}

impl ReceiptMode {
    /// `each` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptMode::Each => "each",
            ReceiptMode::None => "none",
        }
    }
}

/// What a bench run was asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchParams {
    /// The broker, as given with `--url`.
    pub url: String,
    /// The endpoint actually used (`host:port`).
    pub endpoint: String,
    /// The `server` header of the broker's CONNECTED frame, if it sent one.
    pub server: Option<String>,
    /// The destination (`/queue/NAME`).
    pub destination: String,
    /// The load; its fields sit beside the ones above in JSON.
    #[serde(flatten)]
    pub load: BenchLoad,
}

/// The load a run puts on the broker: how much, how fast, over how many connections. `mqctl`
/// runs from it and reports it as it ran, inside [`BenchParams`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchLoad {
    /// Messages asked for (`--messages`), or `null` for a timed run.
    pub messages: Option<u64>,
    /// Seconds asked for (`--duration`), or `null` for a counted run.
    pub duration_s: Option<f64>,
    /// Body size in bytes.
    pub size: usize,
    /// Producer connections.
    pub producers: u32,
    /// Consumer connections.
    pub consumers: u32,
    /// SEND frames carried `persistent:true`.
    pub persistent: bool,
    /// Receipts asked for.
    pub receipts: ReceiptMode,
    /// Receipts a producer may have outstanding (1: wait for each before the next SEND).
    pub window: u32,
    /// Target total send rate in messages per second, or `null` for as fast as possible.
    pub rate: Option<f64>,
    /// Consumer ack mode (`auto`, `client`, `client-individual`).
    pub ack: String,
    /// `activemq.prefetchSize` asked for on SUBSCRIBE.
    pub prefetch: u32,
    /// Messages sent and consumed before the measured run, not counted.
    pub warmup: u64,
    /// The consumers' `selector`, if any (`--selector`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Headers on every SEND (`--header NAME=VALUE`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// End-to-end latency, from the producer's send timestamp to the consumer's receipt of the
/// MESSAGE, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyMs {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest seen.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

/// The result of one `mqctl bench` run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// What was asked for.
    pub params: BenchParams,
    /// SEND frames written (and, with receipts, confirmed).
    pub sent: u64,
    /// Distinct messages of this run received by the consumers.
    pub received: u64,
    /// Milliseconds from the first SEND to the last producer finishing (last receipt).
    pub send_ms: f64,
    /// Milliseconds from the first SEND to the last message received.
    pub total_ms: f64,
    /// `sent` per second of `send_ms`.
    pub send_rate: f64,
    /// `received` per second of `total_ms`: the end-to-end throughput.
    pub receive_rate: f64,
    /// End-to-end latency of the received messages.
    pub latency_ms: LatencyMs,
    /// Messages sent that no consumer received.
    pub lost: u64,
    /// Extra copies received of messages already received.
    pub duplicated: u64,
    /// Messages received that this run did not send (left in the queue by an earlier run).
    pub foreign: u64,
    /// Client errors (a dropped connection, an ERROR frame), one line each.
    pub errors: Vec<String>,
}

impl BenchReport {
    /// Every message arrived exactly once and no client failed.
    pub fn ok(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.errors.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_mode_is_lowercase_in_json() {
        assert_eq!(
            serde_json::to_string(&ReceiptMode::Each).expect("serialises"),
            "\"each\""
        );
        assert_eq!(ReceiptMode::None.as_str(), "none");
    }

    #[test]
    fn params_are_one_flat_object_in_field_order() {
        let params = BenchParams {
            url: "tcp://h:1".into(),
            endpoint: "h:1".into(),
            server: None,
            destination: "/queue/q".into(),
            load: BenchLoad {
                messages: Some(10),
                duration_s: None,
                size: 64,
                producers: 1,
                consumers: 2,
                persistent: true,
                receipts: ReceiptMode::Each,
                window: 1,
                rate: None,
                ack: "auto".into(),
                prefetch: 100,
                warmup: 0,
                selector: None,
                headers: BTreeMap::new(),
            },
        };
        let json = serde_json::to_string(&params).expect("serialises");
        assert_eq!(
            json,
            concat!(
                r#"{"url":"tcp://h:1","endpoint":"h:1","server":null,"destination":"/queue/q","#,
                r#""messages":10,"duration_s":null,"size":64,"producers":1,"consumers":2,"#,
                r#""persistent":true,"receipts":"each","window":1,"rate":null,"ack":"auto","#,
                r#""prefetch":100,"warmup":0}"#
            )
        );
        let back: BenchParams = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, params);
    }
}
