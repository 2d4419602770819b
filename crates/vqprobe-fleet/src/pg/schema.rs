//! The central tables. One `calls` row per `(probe_id, call_id)`, with every column a
//! probe stores (same names, PostgreSQL types), the record's `version` (the probe's
//! outbox sequence: larger is newer) and its streams as JSON text. Indexed by time,
//! and by agent, MNO and probe with time, so the API's windows read only their range.

use std::sync::OnceLock;

use vqprobe_store::columns::{Kind, CALL_COLUMNS};

/// Schema version this build writes (table `vq_schema`).
pub const SCHEMA_VERSION: i64 = 1;

/// Serialises migrations between aggregator instances starting together.
const MIGRATION_LOCK: i64 = 0x0076_7170_726f_6265; // "vqprobe"

/// The PostgreSQL type of a column kind.
pub fn pg_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Text => "TEXT",
        Kind::Real => "DOUBLE PRECISION",
        Kind::Bool => "BOOLEAN",
        Kind::Int => "BIGINT",
    }
}

/// The migration to version 1.
fn v1() -> String {
    let cols: Vec<String> = CALL_COLUMNS
        .iter()
        .map(|c| {
            let nn = if c.not_null { " NOT NULL" } else { "" };
            format!("    {} {}{nn}", c.name, pg_type(c.kind))
        })
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS calls (
    id BIGSERIAL NOT NULL,
    probe_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    streams TEXT NOT NULL,
{},
    PRIMARY KEY (probe_id, call_id)
);
CREATE INDEX IF NOT EXISTS calls_created ON calls (created_at_ms);
CREATE INDEX IF NOT EXISTS calls_agent_created ON calls (agent_id, created_at_ms, id);
CREATE INDEX IF NOT EXISTS calls_mno_created ON calls (mno, created_at_ms);
CREATE INDEX IF NOT EXISTS calls_probe_created ON calls (probe_id, created_at_ms);
CREATE INDEX IF NOT EXISTS calls_call_id ON calls (call_id);",
        cols.join(",\n")
    )
}

/// Brings the database to [`SCHEMA_VERSION`]; safe to run from several instances at
/// once. Errors if the database is newer than this build.
pub async fn migrate(client: &mut tokio_postgres::Client) -> Result<(), crate::FleetError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS vq_schema (version BIGINT NOT NULL)")
        .await?;
    let found: Option<i64> = tx
        .query_opt("SELECT version FROM vq_schema", &[])
        .await?
        .map(|r| r.get(0));
    match found {
        Some(v) if v > SCHEMA_VERSION => {
            return Err(crate::FleetError::Config(format!(
                "central database schema version {v} is newer than this vqprobe supports ({SCHEMA_VERSION})"
            )))
        }
        Some(v) if v == SCHEMA_VERSION => {}
        _ => {
            tx.batch_execute(&v1()).await?;
            tx.execute("DELETE FROM vq_schema", &[]).await?;
            tx.execute("INSERT INTO vq_schema (version) VALUES ($1)", &[&SCHEMA_VERSION])
                .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// `call_id, sip_call_id, …` for `SELECT`.
pub fn select_list() -> &'static str {
    static LIST: OnceLock<String> = OnceLock::new();
    LIST.get_or_init(|| {
        CALL_COLUMNS
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// The idempotent upsert: `$1` probe, `$2` version, `$3` streams, then the columns in
/// [`CALL_COLUMNS`] order. A stale version changes nothing (and reports 0 rows); the
/// NOC's columns (resolution, …) survive a newer record that carries them as null.
pub fn upsert_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let names: Vec<&str> = CALL_COLUMNS.iter().map(|c| c.name).collect();
        let params: Vec<String> = (4..4 + names.len()).map(|i| format!("${i}")).collect();
        let mut sets = vec![
            "version = EXCLUDED.version".to_string(),
            "streams = EXCLUDED.streams".to_string(),
        ];
        sets.extend(CALL_COLUMNS.iter().filter(|c| c.name != "call_id").map(|c| {
            if c.kept {
                format!("{0} = COALESCE(EXCLUDED.{0}, calls.{0})", c.name)
            } else {
                format!("{0} = EXCLUDED.{0}", c.name)
            }
        }));
        format!(
            "INSERT INTO calls (probe_id, version, streams, {}) VALUES ($1, $2, $3, {}) \
             ON CONFLICT (probe_id, call_id) DO UPDATE SET {} WHERE calls.version < EXCLUDED.version",
            names.join(", "),
            params.join(", "),
            sets.join(", ")
        )
    })
}
