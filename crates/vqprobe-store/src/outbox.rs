//! The fleet bus outbox: finished call records waiting to be published to NATS
//! JetStream, written in the same transaction as the call row so a record is either
//! stored and queued for the fleet, or neither. The publisher (`vqprobe-fleet`) drains
//! it in `seq` order and deletes rows once JetStream has acknowledged them; while NATS
//! is unreachable the table grows up to [`OutboxOptions::max`] rows, and records past
//! that are counted, not queued (capture never waits for the bus).

use rusqlite::{Connection, OptionalExtension, Transaction};
use vqprobe_engine::record::{CallRecord, CallStatus};

use crate::error::StoreError;

/// Created with the schema: `seq` only grows (AUTOINCREMENT never reuses a number,
/// even after the rows are deleted), so it doubles as the record's version.
pub(crate) const DDL: &str = "CREATE TABLE IF NOT EXISTS bus_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id TEXT NOT NULL,
    status TEXT NOT NULL,
    payload TEXT NOT NULL
)";

/// What goes into the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxOptions {
    /// Stamped on every published record.
    pub probe_id: String,
    /// Queue interim records (calls still in progress) too, not only finished ones.
    pub interim: bool,
    /// Rows the outbox holds at most; records beyond are dropped and counted.
    pub max: usize,
}

/// One queued record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Queue position and record version (`Nats-Msg-Id: <probe>/<call>/<seq>`).
    pub seq: i64,
    /// The call's id.
    pub call_id: String,
    /// Whether the record is final (`completed.` subject) or interim.
    pub finished: bool,
    /// The record as JSON, `probe_id` included.
    pub payload: String,
}

/// Adds the records the options select to the outbox inside `tx`; returns
/// `(queued, dropped for lack of room)`.
pub(crate) fn enqueue(
    tx: &Transaction<'_>,
    opts: &OutboxOptions,
    calls: &[CallRecord],
) -> Result<(u64, u64), StoreError> {
    let mut depth: i64 = tx.query_row("SELECT COUNT(*) FROM bus_outbox", [], |r| r.get(0))?;
    let max = i64::try_from(opts.max).unwrap_or(i64::MAX);
    let (mut queued, mut dropped) = (0, 0);
    let mut stmt =
        tx.prepare_cached("INSERT INTO bus_outbox (call_id, status, payload) VALUES (?1, ?2, ?3)")?;
    for c in calls {
        let finished = c.call.status != CallStatus::InProgress;
        if !finished && !opts.interim {
            continue;
        }
        if depth >= max {
            dropped += 1;
            continue;
        }
        let mut rec = c.clone();
        rec.call.probe_id = Some(opts.probe_id.clone());
        let payload = serde_json::to_string(&rec)?;
        stmt.execute(rusqlite::params![
            c.call.call_id,
            c.call.status.as_str(),
            payload
        ])?;
        depth += 1;
        queued += 1;
    }
    Ok((queued, dropped))
}

/// The oldest `limit` rows, in `seq` order.
pub fn oldest(conn: &Connection, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, call_id, status, payload FROM bus_outbox ORDER BY seq LIMIT ?1",
    )?;
    let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
        Ok(OutboxRow {
            seq: r.get(0)?,
            call_id: r.get(1)?,
            finished: r.get::<_, String>(2)? != CallStatus::InProgress.as_str(),
            payload: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes every row up to and including `seq` (acknowledged by JetStream).
pub fn delete_through(conn: &Connection, seq: i64) -> Result<usize, StoreError> {
    Ok(conn.execute("DELETE FROM bus_outbox WHERE seq <= ?1", [seq])?)
}

/// Rows waiting.
pub fn depth(conn: &Connection) -> Result<u64, StoreError> {
    let n: Option<i64> = conn
        .query_row("SELECT COUNT(*) FROM bus_outbox", [], |r| r.get(0))
        .optional()?;
    Ok(n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
}
