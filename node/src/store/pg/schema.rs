//! The store's tables and their versioned migration, run by the node at start.
//!
//! `mq_schema_version` holds one row per migration applied (version, description, when).
//! [`migrate`] applies the missing ones in order, all in one transaction under an advisory
//! lock, so members starting together migrate once and a failed migration leaves the schema
//! as it was. A database whose schema is newer than this build knows is refused
//! ([`PgError::SchemaTooNew`]): an older node must not write into tables it does not
//! understand.
//!
//! Version 1, in ActiveMQ's JDBC shapes with our own names:
//!
//! | table | ActiveMQ's | columns |
//! | --- | --- | --- |
//! | `mq_msgs` | `ACTIVEMQ_MSGS` | `container` (the destination, `CONTAINER`), `seq` (its sequence in the destination; with `container` the key, ActiveMQ's `ID`), `priority` (0–9), `msg_id` (the message-id, `MSGID_PROD`+`MSGID_SEQ`), `expiration` (ms since the epoch, 0 for never), `msg` (the encoded message, `MSG`) |
//! | `mq_acks` | `ACTIVEMQ_ACKS` | `container`, `client_id`, `sub_name`, `selector`, `sub_dest`, `last_acked_seq` (`LAST_ACKED_ID`), `priority`: one row per durable subscription and priority |
//! | `mq_lock` | `ACTIVEMQ_LOCK` | one row (`id` 1): `holder` (`BROKER_NAME`), `holder_id` (the holding process), `epoch` (raised at every acquisition), `acquired_at`, `expires_at` (`TIME`, the lease's end in database time) |
//!
//! Version 2, what the node's store (`crate::store::pg::writer`) needs besides:
//!
//! | table | columns |
//! | --- | --- |
//! | `mq_msgs` | `transient` added: a spilled non-persistent message, dropped when a master opens the store |
//! | `mq_state` | `key` → `value` (bigint): `seq` (a mark at or above every sequence stored), `clean` (present while the store is closed cleanly), `redelivered_below` |
//! | `mq_dedup` | `msg_id` → `n`: the ids of the dedup window, `n` their arrival order |
//! | `mq_delivered` | (`container`, `seq`) → `deliveries`: written at a clean close for messages delivered and not acknowledged |
//! | `mq_sched` | `job_id` → `fire_at` (ms since the epoch), `job` (the encoded scheduled message); index (`fire_at`, `job_id`) |
//!
//! Messages are read in the order consumers get them: highest priority first, then by `seq`
//! (index `mq_msgs_order`).

use super::error::PgError;
use super::pool::PgClient;

/// One schema change: the SQL that takes the schema from `version - 1` to `version`.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// The version after this migration.
    pub version: i32,
    /// What it does, stored in `mq_schema_version`.
    pub description: &'static str,
    /// Statements, run as one batch.
    pub sql: &'static str,
}

/// Every migration this build knows, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "messages, durable subscription acks and the lease lock",
        sql: "
        CREATE TABLE mq_msgs (
            container  text     NOT NULL,
            seq        bigint   NOT NULL,
            priority   smallint NOT NULL,
            msg_id     text     NOT NULL,
            expiration bigint   NOT NULL DEFAULT 0,
            msg        bytea    NOT NULL,
            PRIMARY KEY (container, seq)
        );
        CREATE INDEX mq_msgs_order ON mq_msgs (container, priority DESC, seq);
        CREATE INDEX mq_msgs_expiration ON mq_msgs (expiration) WHERE expiration > 0;
        CREATE TABLE mq_acks (
            container      text     NOT NULL,
            client_id      text     NOT NULL,
            sub_name       text     NOT NULL,
            selector       text,
            sub_dest       text,
            last_acked_seq bigint,
            priority       smallint NOT NULL DEFAULT 5,
            PRIMARY KEY (container, client_id, sub_name, priority)
        );
        CREATE TABLE mq_lock (
            id          smallint PRIMARY KEY CHECK (id = 1),
            holder      text,
            holder_id   text,
            epoch       bigint   NOT NULL DEFAULT 0,
            acquired_at timestamptz,
            expires_at  timestamptz
        );
        INSERT INTO mq_lock (id) VALUES (1);
    ",
    },
    Migration {
        version: 2,
        description: "the node store: transient messages, state, dedup window, delivery marks, scheduled jobs",
        sql: "
        ALTER TABLE mq_msgs ADD COLUMN transient boolean NOT NULL DEFAULT false;
        CREATE TABLE mq_state (
            key   text   PRIMARY KEY,
            value bigint NOT NULL
        );
        CREATE TABLE mq_dedup (
            msg_id text   PRIMARY KEY,
            n      bigint NOT NULL
        );
        CREATE TABLE mq_delivered (
            container  text    NOT NULL,
            seq        bigint  NOT NULL,
            deliveries integer NOT NULL,
            PRIMARY KEY (container, seq)
        );
        CREATE TABLE mq_sched (
            job_id  text COLLATE \"C\" PRIMARY KEY,
            fire_at bigint NOT NULL,
            job     bytea  NOT NULL
        );
        CREATE INDEX mq_sched_order ON mq_sched (fire_at, job_id);
    ",
    },
];

/// The schema version this build writes: the last of [`MIGRATIONS`].
pub const SCHEMA_VERSION: i32 = 2;

/// Key of the advisory lock that serialises migrations (`"mqschema"` in ASCII).
const MIGRATION_LOCK: i64 = 0x6d71_7363_6865_6d61;

/// What [`migrate`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// The version found (0 for an empty database).
    pub from: i32,
    /// The version now.
    pub to: i32,
}

/// Brings the schema to [`SCHEMA_VERSION`]; refuses a newer one.
pub async fn migrate(client: &mut PgClient) -> Result<Migrated, PgError> {
    migrate_with(client, MIGRATIONS).await
}

/// [`migrate`] with a given list of migrations (for tests of later versions).
pub async fn migrate_with(
    client: &mut PgClient,
    migrations: &[Migration],
) -> Result<Migrated, PgError> {
    let known = migrations.last().map_or(0, |m| m.version);
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS mq_schema_version (
            version     integer PRIMARY KEY,
            description text NOT NULL,
            applied_at  timestamptz NOT NULL DEFAULT now()
        )",
    )
    .await?;
    let from: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM mq_schema_version",
            &[],
        )
        .await?
        .get(0);
    if from > known {
        return Err(PgError::SchemaTooNew { found: from, known });
    }
    for m in migrations.iter().filter(|m| m.version > from) {
        tx.batch_execute(m.sql).await?;
        tx.execute(
            "INSERT INTO mq_schema_version (version, description) VALUES ($1, $2)",
            &[&m.version, &m.description],
        )
        .await?;
        tracing::info!(
            version = m.version,
            description = m.description,
            "store schema migrated"
        );
    }
    tx.commit().await?;
    Ok(Migrated { from, to: known })
}

/// The schema version in the database (0 when none was applied).
pub async fn version(client: &PgClient) -> Result<i32, PgError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('mq_schema_version') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        return Ok(0);
    }
    Ok(client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM mq_schema_version",
            &[],
        )
        .await?
        .get(0))
}
