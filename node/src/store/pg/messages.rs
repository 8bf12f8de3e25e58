//! Message rows (`mq_msgs`): insert a batch, delete by key, read a destination in delivery
//! order from a cursor, count per destination.
//!
//! Writes take a [`Transaction`], so a batch is always one transaction and a master runs it
//! inside its lease's fence (`crate::ha::lease::Lease::fenced_transaction`); reads take any
//! client. Each batch is one statement (`UNNEST` of one array per column), whatever its size.

use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::Row;

use super::error::PgError;

/// A message as stored: its key (`container`, `seq`), its delivery order (`priority`, then
/// `seq`) and its encoded bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The destination, e.g. `queue://orders`.
    pub container: String,
    /// The message's sequence in its destination.
    pub seq: i64,
    /// JMS priority, 0–9; higher is delivered first.
    pub priority: i16,
    /// The message-id header.
    pub msg_id: String,
    /// When the message expires, in ms since the epoch; 0 for never.
    pub expiration_ms: i64,
    /// The encoded message.
    pub msg: Vec<u8>,
}

impl StoredMessage {
    /// The row's key.
    pub fn key(&self) -> MessageKey {
        MessageKey {
            container: self.container.clone(),
            seq: self.seq,
        }
    }

    /// The position just after this message, to read on from.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            priority: self.priority,
            seq: self.seq,
        }
    }
}

/// A message row's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageKey {
    /// The destination.
    pub container: String,
    /// The message's sequence in it.
    pub seq: i64,
}

/// A position in a destination's delivery order: [`read_queue`] returns what comes after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Priority of the last message read.
    pub priority: i16,
    /// Sequence of the last message read.
    pub seq: i64,
}

const COLUMNS: &str = "container, seq, priority, msg_id, expiration, msg";

fn from_row(r: &Row) -> StoredMessage {
    StoredMessage {
        container: r.get(0),
        seq: r.get(1),
        priority: r.get(2),
        msg_id: r.get(3),
        expiration_ms: r.get(4),
        msg: r.get(5),
    }
}

/// Inserts `msgs` in `tx` (one statement); returns how many rows were written. A key already
/// stored fails the whole statement (and so the transaction).
pub async fn insert_messages(tx: &Transaction<'_>, msgs: &[StoredMessage]) -> Result<u64, PgError> {
    if msgs.is_empty() {
        return Ok(0);
    }
    let containers: Vec<&str> = msgs.iter().map(|m| m.container.as_str()).collect();
    let seqs: Vec<i64> = msgs.iter().map(|m| m.seq).collect();
    let priorities: Vec<i16> = msgs.iter().map(|m| m.priority).collect();
    let ids: Vec<&str> = msgs.iter().map(|m| m.msg_id.as_str()).collect();
    let expirations: Vec<i64> = msgs.iter().map(|m| m.expiration_ms).collect();
    let bodies: Vec<&[u8]> = msgs.iter().map(|m| m.msg.as_slice()).collect();
    let st = tx
        .prepare_cached(
            "INSERT INTO mq_msgs (container, seq, priority, msg_id, expiration, msg)
             SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::smallint[], $4::text[],
                                  $5::bigint[], $6::bytea[])",
        )
        .await?;
    Ok(tx
        .execute(
            &st,
            &[&containers, &seqs, &priorities, &ids, &expirations, &bodies],
        )
        .await?)
}

/// Deletes the rows of `keys` in `tx`; returns how many existed.
pub async fn delete_messages(tx: &Transaction<'_>, keys: &[MessageKey]) -> Result<u64, PgError> {
    if keys.is_empty() {
        return Ok(0);
    }
    let containers: Vec<&str> = keys.iter().map(|k| k.container.as_str()).collect();
    let seqs: Vec<i64> = keys.iter().map(|k| k.seq).collect();
    let st = tx
        .prepare_cached(
            "DELETE FROM mq_msgs m USING UNNEST($1::text[], $2::bigint[]) AS k(container, seq)
             WHERE m.container = k.container AND m.seq = k.seq",
        )
        .await?;
    Ok(tx.execute(&st, &[&containers, &seqs]).await?)
}

/// Up to `limit` messages of `container` in delivery order (priority high to low, then
/// `seq`), after `after` (from the start when `None`).
pub async fn read_queue(
    client: &impl GenericClient,
    container: &str,
    after: Option<Cursor>,
    limit: i64,
) -> Result<Vec<StoredMessage>, PgError> {
    if limit < 0 {
        return Err(PgError::Invalid(format!(
            "a read limit must not be negative, not {limit}"
        )));
    }
    let rows = match after {
        None => {
            let st = client
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM mq_msgs WHERE container = $1
                     ORDER BY priority DESC, seq LIMIT $2"
                ))
                .await?;
            client.query(&st, &[&container, &limit]).await?
        }
        Some(c) => {
            let st = client
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM mq_msgs
                     WHERE container = $1 AND (priority < $2 OR (priority = $2 AND seq > $3))
                     ORDER BY priority DESC, seq LIMIT $4"
                ))
                .await?;
            client
                .query(&st, &[&container, &c.priority, &c.seq, &limit])
                .await?
        }
    };
    Ok(rows.iter().map(from_row).collect())
}

/// Stored messages per destination, by destination name.
pub async fn count_per_queue(client: &impl GenericClient) -> Result<Vec<(String, i64)>, PgError> {
    let st = client
        .prepare_cached(
            "SELECT container, count(*) FROM mq_msgs GROUP BY container ORDER BY container",
        )
        .await?;
    Ok(client
        .query(&st, &[])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}
