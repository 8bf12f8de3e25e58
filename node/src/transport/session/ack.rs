//! ACK, NACK and COMMIT: settling deliveries (at once or in a transaction); and the MESSAGE
//! frame a delivery becomes, with what its ack will settle.

use mq_shared::frame::{Command, Frame, Version};

use super::{Out, Reply, Session, error_frame};
use crate::broker::{AckHandle, Delivery, Outgoing, Settle};
use crate::transport::subscription::{AckMode, Unacked};
use crate::transport::transaction::{self, TxOp};

impl Session {
    /// How this connection's ACK settles a delivery: a bridge acks once its own node has the
    /// message, so its ACKs count as forwarded.
    fn settle_kind(&self, nack: bool) -> Settle {
        match (nack, self.bridge.is_some()) {
            (true, _) => Settle::Nack,
            (false, true) => Settle::Forwarded,
            (false, false) => Settle::Ack,
        }
    }

    pub(super) fn on_ack(
        &mut self,
        f: &Frame,
        nack: bool,
        receipt: Option<&str>,
    ) -> Result<Reply, String> {
        let (sub, ack_id) = self.subs.ack_target(f, self.version())?;
        if let Some(tx) = f.header("transaction") {
            self.txs.push(tx, TxOp::Ack { sub, ack_id, nack })?;
            return Ok(Reply::Now);
        }
        let how = self.settle_kind(nack);
        let taken = self.subs.take(&sub, &ack_id, nack)?;
        let items = handles(taken, how);
        let Some(r) = receipt else {
            self.broker.settle(items, None);
            return Ok(Reply::Now);
        };
        let out = self.out.clone();
        let r = r.to_string();
        self.broker.settle(
            items,
            Some(Box::new(move |res| {
                let f = match res {
                    Ok(_) => Out::Frame(Frame::new(Command::Receipt).with_header("receipt-id", r)),
                    Err(e) => Out::Fatal(error_frame(&format!("ack not stored: {e}"), Some(&r))),
                };
                out.send(f);
            })),
        );
        Ok(Reply::Later)
    }

    pub(super) fn on_commit(&mut self, f: &Frame, receipt: Option<&str>) -> Result<Reply, String> {
        let tx = transaction::name(f, "COMMIT")?;
        let ops = self.txs.end(tx)?;
        let mut msgs = Vec::new();
        let mut acks = Vec::new();
        for op in ops {
            match op {
                TxOp::Send(m) => msgs.push(m),
                TxOp::Ack { sub, ack_id, nack } => {
                    // An ack of a message that is no longer pending (redelivered elsewhere)
                    // is skipped, as ActiveMQ does.
                    if let Ok(taken) = self.subs.take(&sub, &ack_id, nack) {
                        acks.extend(handles(taken, self.settle_kind(nack)));
                    }
                }
            }
        }
        let done = self.store_completion(receipt, "transaction not stored");
        // Ordered: the transaction's messages go after everything this connection sent before.
        self.broker
            .commit_transaction(msgs, acks, Some(self.conn), done);
        Ok(Reply::Later)
    }

    /// The MESSAGE frame for a delivery, and the handle to settle it with once it is written
    /// when its subscription is in `auto` mode. `None` when the subscription is gone (the
    /// queue redelivers the message: unsubscribing gave it back).
    pub fn delivery_frame(&mut self, d: Delivery) -> Option<(Frame, Option<AckHandle>)> {
        let version = self.version();
        let to_bridge = self.bridge.as_ref().map(|_| self.broker.name().to_string());
        let sub = self.subs.by_consumer(d.consumer)?;
        let m = &d.message;
        let ack_id = format!("{}:{}", d.consumer, m.id);
        let mut f = m.to_frame(Outgoing::Deliver {
            subscription: &sub.id,
            ack: (sub.ack != AckMode::Auto && version == Version::V1_2).then_some(&*ack_id),
            redelivered: d.redelivered,
            to_bridge: to_bridge.as_deref(),
        });
        if let Some((_, topic)) = &sub.durable {
            // A durable subscriber's messages come from its topic.
            f.set_header("destination", topic.as_str());
        }
        if !self.names.is_empty() {
            // The owner of a temporary destination sees it by the name it gave it.
            if let Some(n) = self.names.own_name(&m.destination) {
                f.set_header("destination", n);
            }
            if let Some(n) = f
                .header(mq_shared::headers::REPLY_TO)
                .and_then(|r| self.names.own_name_of(r))
            {
                let n = n.to_string();
                f.set_header(mq_shared::headers::REPLY_TO, n);
            }
        }
        let auto = match sub.ack {
            AckMode::Auto => d.ack,
            _ => {
                sub.unacked.push_back(Unacked {
                    ack_id,
                    message_id: m.id.clone(),
                    handle: d.ack,
                });
                None
            }
        };
        Some((f, auto))
    }

    /// Settles deliveries of `auto` subscriptions once written to the socket.
    pub fn auto_ack(&self, handles: impl IntoIterator<Item = AckHandle>) {
        self.broker
            .settle(handles.into_iter().map(|h| (h, Settle::Ack)), None);
    }
}

fn handles(taken: Vec<Unacked>, how: Settle) -> Vec<(AckHandle, Settle)> {
    taken
        .into_iter()
        .filter_map(|u| u.handle.map(|h| (h, how)))
        .collect()
}
