//! A connection's open STOMP transactions: SENDs and ACKs held until COMMIT (one store commit
//! for all of them) or dropped on ABORT. Transactions still open when the connection ends are
//! aborted.

use std::collections::HashMap;

use crate::broker::Message;

/// One operation held by a transaction.
pub enum TxOp {
    /// A SEND.
    Send(Message),
    /// An ACK or NACK of the delivery `ack_id` of subscription `sub`.
    Ack {
        /// Subscription id.
        sub: String,
        /// The 1.2 ack id of the delivery.
        ack_id: String,
        /// A NACK.
        nack: bool,
    },
}

/// The open transactions of one connection, by name.
#[derive(Default)]
pub struct Transactions {
    open: HashMap<String, Vec<TxOp>>,
}

impl Transactions {
    /// BEGIN.
    pub fn begin(&mut self, tx: &str) -> Result<(), String> {
        if self.open.contains_key(tx) {
            return Err(format!("transaction '{tx}' is already open"));
        }
        self.open.insert(tx.to_string(), Vec::new());
        Ok(())
    }

    /// Adds an operation to open transaction `tx`.
    pub fn push(&mut self, tx: &str, op: TxOp) -> Result<(), String> {
        self.open
            .get_mut(tx)
            .ok_or_else(|| format!("transaction '{tx}' was not begun"))?
            .push(op);
        Ok(())
    }

    /// Ends `tx` (COMMIT or ABORT), returning its operations in order.
    pub fn end(&mut self, tx: &str) -> Result<Vec<TxOp>, String> {
        self.open
            .remove(tx)
            .ok_or_else(|| format!("transaction '{tx}' was not begun"))
    }

    /// Aborts every open transaction.
    pub fn clear(&mut self) {
        self.open.clear();
    }
}

/// The `transaction` header a frame must carry (BEGIN, COMMIT, ABORT).
pub fn name<'a>(f: &'a mq_shared::frame::Frame, command: &str) -> Result<&'a str, String> {
    f.header("transaction")
        .ok_or_else(|| format!("{command} without a transaction header"))
}
