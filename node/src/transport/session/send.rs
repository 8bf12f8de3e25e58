//! SEND: a message (or a composite SEND's messages) checked, then published, scheduled, put
//! in a transaction, or held by producer flow control until there is room.

use std::sync::Arc;

use mq_shared::frame::Frame;

use super::{Close, Reply, Session, error_frame};
use crate::broker::scheduler::Spec;
use crate::broker::{Message, TempOwner};
use crate::security::Operation;
use crate::transport::transaction::TxOp;

/// A SEND waiting for space (`producer-flow-control`).
pub(super) struct Held {
    msgs: Vec<Message>,
    receipt: Option<String>,
    from_bridge: bool,
    since: std::time::Instant,
}

impl Session {
    /// The node's usage, whose changes wake a held SEND.
    pub fn usage(&self) -> Arc<crate::broker::usage::Usage> {
        self.broker.usage().clone()
    }

    /// Whether a SEND waits for space: the connection reads nothing more meanwhile.
    pub fn is_held(&self) -> bool {
        self.held.is_some()
    }

    /// Tries the held SEND again: `Ok(true)` once it is published (frames behind it may be
    /// read again), `Ok(false)` while it still waits, `Err` with the ERROR when its wait is
    /// over (`send-fail-if-no-space-after-timeout`).
    pub fn retry_held(&mut self) -> Result<bool, Close> {
        let Some(h) = self.held.take() else {
            return Ok(true);
        };
        match h.msgs.iter().try_for_each(|m| self.broker.admit(m)) {
            Ok(()) => {
                self.publish(h.msgs, h.receipt.as_deref(), h.from_bridge);
                Ok(true)
            }
            Err(full) => {
                let flow = self.broker.usage().limits().flow;
                if !full.is_transient() && flow.fail_after.is_some_and(|t| h.since.elapsed() >= t) {
                    self.broker.usage().count_refused();
                    return Err(Close(Some(error_frame(
                        &full.to_string(),
                        h.receipt.as_deref(),
                    ))));
                }
                self.held = Some(h);
                Ok(false)
            }
        }
    }

    pub(super) fn on_send(&mut self, mut f: Frame, receipt: Option<&str>) -> Result<Reply, String> {
        let from_bridge = self.bridge.is_some();
        let tx = f.header("transaction").map(str::to_string);
        let broker = self.broker.clone();
        let msgs = if from_bridge {
            // A bridge forwards to one concrete destination, under its global name.
            vec![Message::from_frame(f, true, || broker.new_message_id())?]
        } else {
            let text = f
                .header("destination")
                .ok_or("SEND without a destination header")?
                .to_string();
            let dests = self.names.resolve_send(&text, &self.broker, self.conn)?;
            if let Some(r) = f.header(mq_shared::headers::REPLY_TO)
                && mq_shared::destination::own_temp(r).is_some()
            {
                // The responder gets a name it can send to.
                let d = self.names.resolve(r, &self.broker, self.conn)?;
                f.set_header(mq_shared::headers::REPLY_TO, d.as_str());
            }
            f.set_header("destination", dests[0].as_str());
            let first = Message::from_frame(f, false, || broker.new_message_id())?;
            let mut msgs = Vec::with_capacity(dests.len());
            for d in &dests[1..] {
                // Each part is a message of its own, with its own id.
                let mut m = first.clone();
                m.destination = d.clone();
                m.id = Arc::from(broker.new_message_id());
                msgs.push(m);
            }
            msgs.insert(0, first);
            msgs
        };
        // Scheduled delivery, its headers checked before anything else happens (not for a
        // bridge's forward: a fired copy has no such headers).
        let scheduled = match (from_bridge, self.broker.scheduler_support(), msgs.first()) {
            (false, true, Some(m)) => Spec::of(m)?,
            _ => None,
        };
        for m in &msgs {
            // (A bridge's forward to one is accepted and dropped: refusing it would break the
            // link, and the message would come again.)
            if !from_bridge
                && m.destination.is_temp()
                && self.broker.temp_owner(&m.destination) == TempOwner::Gone
            {
                return Err(format!(
                    "temporary destination {} no longer exists: the connection that created it has closed",
                    m.destination
                ));
            }
            self.allow(Operation::Write, &m.destination)?;
        }
        for m in &msgs {
            if !self.produced.contains(&m.destination) {
                self.broker.add_producer(&m.destination, self.conn);
                self.produced.insert(m.destination.clone());
            }
        }
        if let Some(tx) = tx {
            // A transaction's scheduled messages become jobs when it commits.
            for m in msgs {
                self.txs.push(&tx, TxOp::Send(m))?;
            }
            return Ok(Reply::Now);
        }
        if let Some(spec) = scheduled {
            self.broker.schedule(msgs, &spec, || {
                self.store_completion(receipt, "scheduled message not stored")
            })?;
            return Ok(Reply::Later);
        }
        if let Err(full) = msgs.iter().try_for_each(|m| self.broker.admit(m)) {
            let flow = self.broker.usage().limits().flow;
            if !full.is_transient() && (!flow.hold || flow.fail_at_once) {
                self.broker.usage().count_refused();
                return Err(full.to_string());
            }
            // Held: no RECEIPT and nothing more read until there is room.
            tracing::debug!(conn = self.conn, reason = %full, "SEND held by producer flow control");
            // (Waiting for the temp store's writer is pacing, not a limit reached.)
            if !full.is_transient() {
                self.broker.usage().count_held();
            }
            self.held = Some(Held {
                msgs,
                receipt: receipt.map(str::to_string),
                from_bridge,
                since: std::time::Instant::now(),
            });
            return Ok(Reply::Later);
        }
        self.publish(msgs, receipt, from_bridge);
        Ok(Reply::Later)
    }

    /// Publishes a SEND's message (a composite SEND's messages); its RECEIPT (or ERROR)
    /// follows the store.
    fn publish(&mut self, msgs: Vec<Message>, receipt: Option<&str>, from_bridge: bool) {
        let ordered = self.pending.count() > 0;
        let bytes = msgs.iter().map(|m| m.size() as usize).sum();
        let done = self.store_completion_of(bytes, receipt, "message not stored");
        if msgs.len() == 1 {
            if let Some(msg) = msgs.into_iter().next() {
                self.broker
                    .publish(msg, Some(self.conn), ordered, from_bridge, Some(done));
            }
        } else {
            // A composite SEND: every part in one store commit, the RECEIPT once all of them
            // are stored.
            self.broker
                .commit_transaction(msgs, Vec::new(), Some(self.conn), done);
        }
    }
}
