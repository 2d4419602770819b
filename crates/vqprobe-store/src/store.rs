//! A connection to the embedded SQLite store of call records.
//!
//! One row per call in `calls`, with a real column for every field the HTTP API filters
//! or aggregates on ([`crate::columns`]), so analytics are plain indexed SQL. The
//! streams (with their intervals) are only ever needed whole, for
//! `GET /v1/calls/{id}`, so they live as one JSON document per call in
//! `call_streams`: keeping that bulk out of `calls` keeps the analytics scans on small
//! rows.
//!
//! The database runs in WAL mode: one writer (the [`crate::StoreWriter`] thread, plus
//! the occasional `set_resolution` from the API) and any number of concurrent readers
//! ([`Store::open_readonly`]), none of which block each other.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use vqprobe_engine::record::{CallRecord, Resolution};

use crate::columns;
use crate::error::StoreError;
use crate::schema::{self, migrate, user_version, SCHEMA_VERSION};

/// Rows deleted per retention transaction; small enough that the writer lock is only
/// held for a moment and readers' WAL does not balloon.
pub const RETENTION_CHUNK: usize = 10_000;

/// How long a connection waits for another one's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// An upsert rather than INSERT OR REPLACE on `calls`: REPLACE deletes the old row first,
/// which would lose the kept columns and fire the cascade.
const UPSERT_STREAMS: &str = "INSERT INTO call_streams (call_id, streams_json) \
    VALUES (?1, ?2) ON CONFLICT (call_id) DO UPDATE SET streams_json = excluded.streams_json";

/// A connection to the call store (read-write from [`Store::open`], read-only from
/// [`Store::open_readonly`]).
pub struct Store {
    conn: Connection,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.conn.path())
            .finish()
    }
}

impl Store {
    /// Opens (creating it and its parent directories if needed) the database read-write,
    /// in WAL mode, and migrates the schema to [`SCHEMA_VERSION`].
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Call records name people's numbers: only the service reads them. Modes
            // apply to what is created here; existing directories keep theirs.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| StoreError::CreateDir {
                    path: dir.to_path_buf(),
                    source,
                })?;
        }
        // Created 0600 before SQLite opens it, whatever the umask: SQLite gives its
        // -wal and -shm files the database file's mode. A failure here (read-only
        // directory or file) is reported by SQLite's own open just below.
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path);
        let mut conn = Connection::open(path)?;
        // Before anything that takes a lock, so a concurrent writer makes us wait, not fail.
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::NotWal(mode));
        }
        // NORMAL is durable across process crashes in WAL mode; only a power cut can
        // lose the last commits, which is fine for a probe and much cheaper than FULL.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        migrate(&mut conn)?;
        schema::prepare(&conn)?;
        Ok(Store { conn })
    }

    /// Opens an existing database read-only (for the HTTP API and tools). WAL lets it
    /// read while the writer writes; the schema must already be current.
    pub fn open_readonly(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let found = user_version(&conn)?;
        if found != SCHEMA_VERSION {
            return Err(StoreError::SchemaMismatch {
                found,
                expected: SCHEMA_VERSION,
            });
        }
        Ok(Store { conn })
    }

    /// The underlying connection, for analytics queries over the documented schema.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Inserts or updates a batch of records in one transaction and returns how many
    /// were written. A stored `resolution`, `classified_at` or `recording_url` survives
    /// a new record that has it null. Any bad record fails the whole batch.
    pub fn upsert_calls(&mut self, calls: &[CallRecord]) -> Result<usize, StoreError> {
        // IMMEDIATE takes the write lock up front, where busy_timeout can wait for it,
        // instead of failing on a read-to-write upgrade halfway through.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut call_stmt = tx.prepare_cached(columns::upsert_sql())?;
            let mut streams_stmt = tx.prepare_cached(UPSERT_STREAMS)?;
            for c in calls {
                let values = columns::row_values(&c.call)?;
                call_stmt.execute(rusqlite::params_from_iter(values.iter()))?;
                let streams = serde_json::to_string(&c.streams)?;
                streams_stmt.execute(rusqlite::params![c.call.call_id, streams])?;
            }
        }
        tx.commit()?;
        Ok(calls.len())
    }

    /// The full record, streams included, or `None` for an unknown id.
    pub fn get_call(&self, call_id: &str) -> Result<Option<CallRecord>, StoreError> {
        // One statement, so the row and its streams come from the same snapshot.
        let sql = format!(
            "SELECT {}, (SELECT s.streams_json FROM call_streams s \
             WHERE s.call_id = calls.call_id) AS streams_json FROM calls WHERE call_id = ?1",
            columns::select_list()
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let found = stmt
            .query_row([call_id], |row| {
                Ok((
                    columns::summary_from_row(row)?,
                    row.get::<_, Option<String>>("streams_json")?,
                ))
            })
            .optional()?;
        match found {
            None => Ok(None),
            Some((call, streams)) => columns::record_from_parts(call, streams.as_deref()).map(Some),
        }
    }

    /// Number of stored calls.
    pub fn count_calls(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM calls", [], |row| row.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// One page of calls matching `q` (without streams), newest first, and the number
    /// of calls matching in all (see [`crate::query::calls::list_calls`]).
    pub fn list_calls(
        &self,
        q: &crate::query::calls::CallQuery,
    ) -> Result<(Vec<vqprobe_engine::record::CallSummary>, u64), StoreError> {
        crate::query::calls::list_calls(&self.conn, q)
    }

    /// Sets the NOC classification of a call; `false` when the call is unknown.
    pub fn set_resolution(
        &mut self,
        call_id: &str,
        resolution: Resolution,
        classified_at: &str,
    ) -> Result<bool, StoreError> {
        let changed = self.conn.execute(
            "UPDATE calls SET resolution = ?1, classified_at = ?2 WHERE call_id = ?3",
            rusqlite::params![resolution_str(resolution), classified_at, call_id],
        )?;
        Ok(changed > 0)
    }

    /// Deletes calls created before `cutoff_ms` (unix ms), [`RETENTION_CHUNK`] rows per
    /// transaction, and returns how many went.
    pub fn delete_older_than(&mut self, cutoff_ms: i64) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let n = self.delete_chunk(cutoff_ms, RETENTION_CHUNK)?;
            total += n;
            if n < RETENTION_CHUNK {
                return Ok(total);
            }
        }
    }

    /// One retention step: at most `limit` calls older than the cutoff, in one
    /// (autocommit) statement; their streams go with them through the foreign key.
    pub(crate) fn delete_chunk(
        &mut self,
        cutoff_ms: i64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let n = self
            .conn
            .prepare_cached(
                "DELETE FROM calls WHERE rowid IN \
             (SELECT rowid FROM calls WHERE created_at_ms < ?1 LIMIT ?2)",
            )?
            .execute(rusqlite::params![cutoff_ms, limit])?;
        Ok(n)
    }

    /// Marks calls left `in_progress` by a daemon that died as ended by `shutdown`.
    pub fn close_interrupted(&mut self) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "UPDATE calls SET status = 'completed', ended_reason = 'shutdown' \
             WHERE status = 'in_progress'",
            [],
        )?)
    }

    /// SQLite's `PRAGMA integrity_check`: `"ok"`, or its findings joined by `"; "`.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        let mut out = String::new();
        self.conn.pragma_query(None, "integrity_check", |row| {
            let line: String = row.get(0)?;
            if !out.is_empty() {
                out.push_str("; ");
            }
            out.push_str(&line);
            Ok(())
        })?;
        Ok(out)
    }
}

fn resolution_str(r: Resolution) -> &'static str {
    match r {
        Resolution::Resolved => "resolved",
        Resolution::Unresolved => "unresolved",
    }
}
