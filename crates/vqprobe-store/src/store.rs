//! Embedded SQLite store of call records, and the writer thread that feeds it.
//!
//! One row per call in `calls`, with a real column for every field the HTTP API filters
//! or aggregates on, so analytics are plain indexed SQL. The streams (with their
//! intervals) are only ever needed whole, for `GET /v1/calls/{id}`, so they live as one
//! JSON document per call in `call_streams`: keeping that bulk out of `calls` keeps the
//! analytics scans on small rows.
//!
//! The database runs in WAL mode: one writer (the [`StoreWriter`] thread, plus the
//! occasional `set_resolution` from the API) and any number of concurrent readers
//! ([`Store::open_readonly`]), none of which block each other.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use rusqlite::types::{Type, Value};
use rusqlite::{named_params, Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior};
use serde::de::DeserializeOwned;

use crate::record::{CallRecord, QualityRecord, Resolution, StreamRecord};

/// Schema version this build writes and reads (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;

/// Records the writer buffers before it writes them, whatever the interval.
pub const WRITER_BATCH: usize = 1000;

/// Messages the writer's channel holds. Senders on the hot path should use `try_send`
/// and count a drop when it is full, so a stalled disk never blocks packet processing.
pub const WRITER_QUEUE_CAPACITY: usize = 65_536;

/// Longest the writer keeps a record in memory before writing it.
pub const MAX_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// How often the writer enforces retention (it also does so once at start).
pub const RETENTION_PERIOD: Duration = Duration::from_secs(3600);

/// Rows deleted per retention transaction; small enough that the writer lock is only
/// held for a moment and readers' WAL does not balloon.
pub const RETENTION_CHUNK: usize = 10_000;

/// How long a connection waits for another one's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const MS_PER_DAY: i64 = 86_400_000;

/// Migrations in order; migration `i` takes the schema from version `i` to `i + 1`.
/// Never edit one that has shipped: append a new one.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE calls (
    call_id          TEXT PRIMARY KEY NOT NULL,
    sip_call_id      TEXT,
    agent_id         TEXT,
    from_number      TEXT,
    to_number        TEXT,
    mno              TEXT NOT NULL,
    country          TEXT,
    direction        TEXT NOT NULL,
    status           TEXT NOT NULL,
    ended_reason     TEXT,
    created_at_ms    INTEGER NOT NULL,
    created_at       TEXT NOT NULL,
    ended_at         TEXT,
    duration_seconds REAL NOT NULL,
    codec            TEXT,
    one_way_audio    INTEGER NOT NULL,
    quality_mos      REAL,
    mos              REAL,
    mos_lq           REAL,
    r_factor         REAL,
    min_interval_mos REAL,
    jitter_ms        REAL,
    loss_ratio       REAL,
    rtt_ms           REAL,
    one_way_delay_ms REAL,
    resolution       TEXT,
    classified_at    TEXT,
    recording_url    TEXT
);
CREATE INDEX calls_created ON calls (created_at_ms);
CREATE INDEX calls_agent_created ON calls (agent_id, created_at_ms);
CREATE INDEX calls_mno_created ON calls (mno, created_at_ms);
CREATE INDEX calls_status_created ON calls (status, created_at_ms);
CREATE TABLE call_streams (
    call_id      TEXT PRIMARY KEY NOT NULL
                 REFERENCES calls (call_id) ON DELETE CASCADE,
    streams_json TEXT NOT NULL
);
"#];

impl CallQuery {
    /// The `WHERE …` text (empty without filters) and its bound values, for a query
    /// over `calls`. Only fixed SQL fragments are concatenated; every value is a bound
    /// parameter.
    pub fn where_clause(&self) -> (String, Vec<Value>) {
        let mut clauses: Vec<&str> = Vec::new();
        let mut args: Vec<Value> = Vec::new();
        let texts = [
            ("agent_id = ?", &self.agent_id),
            ("mno = ?", &self.mno),
            ("status = ?", &self.status),
            ("direction = ?", &self.direction),
        ];
        for (clause, value) in texts {
            if let Some(v) = value {
                clauses.push(clause);
                args.push(Value::Text(v.clone()));
            }
        }
        let numbers = [
            ("created_at_ms >= ?", self.date_from_ms.map(Value::Integer)),
            ("created_at_ms < ?", self.date_to_ms.map(Value::Integer)),
            ("quality_mos >= ?", self.min_mos.map(Value::Real)),
            ("quality_mos <= ?", self.max_mos.map(Value::Real)),
        ];
        for (clause, value) in numbers {
            if let Some(v) = value {
                clauses.push(clause);
                args.push(v);
            }
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        (filter, args)
    }
}

/// Columns of `calls` that make up a [`CallRecord`] (all but the streams), for readers
/// (the API) that build their own queries over the same schema.
pub const CALL_COLUMNS: &str = "call_id, sip_call_id, agent_id, from_number, to_number, mno, \
    country, direction, status, ended_reason, created_at, ended_at, duration_seconds, codec, \
    one_way_audio, quality_mos, mos, mos_lq, r_factor, min_interval_mos, jitter_ms, \
    loss_ratio, rtt_ms, one_way_delay_ms, resolution, classified_at, recording_url";

/// The NOC's classification and the recording link are set through the API, not by the
/// engine; a later interim or final record from the engine carries them as null and must
/// not wipe them, hence the COALESCEs.
const UPSERT_CALL: &str = "INSERT INTO calls (call_id, sip_call_id, agent_id, from_number, \
    to_number, mno, country, direction, status, ended_reason, created_at_ms, created_at, \
    ended_at, duration_seconds, codec, one_way_audio, quality_mos, mos, mos_lq, r_factor, \
    min_interval_mos, jitter_ms, loss_ratio, rtt_ms, one_way_delay_ms, resolution, \
    classified_at, recording_url) VALUES (:call_id, :sip_call_id, :agent_id, :from_number, \
    :to_number, :mno, :country, :direction, :status, :ended_reason, :created_at_ms, \
    :created_at, :ended_at, :duration_seconds, :codec, :one_way_audio, :quality_mos, :mos, \
    :mos_lq, :r_factor, :min_interval_mos, :jitter_ms, :loss_ratio, :rtt_ms, \
    :one_way_delay_ms, :resolution, :classified_at, :recording_url) \
    ON CONFLICT (call_id) DO UPDATE SET sip_call_id = excluded.sip_call_id, \
    agent_id = excluded.agent_id, from_number = excluded.from_number, \
    to_number = excluded.to_number, mno = excluded.mno, country = excluded.country, \
    direction = excluded.direction, status = excluded.status, \
    ended_reason = excluded.ended_reason, created_at_ms = excluded.created_at_ms, \
    created_at = excluded.created_at, ended_at = excluded.ended_at, \
    duration_seconds = excluded.duration_seconds, codec = excluded.codec, \
    one_way_audio = excluded.one_way_audio, quality_mos = excluded.quality_mos, \
    mos = excluded.mos, mos_lq = excluded.mos_lq, r_factor = excluded.r_factor, \
    min_interval_mos = excluded.min_interval_mos, jitter_ms = excluded.jitter_ms, \
    loss_ratio = excluded.loss_ratio, rtt_ms = excluded.rtt_ms, \
    one_way_delay_ms = excluded.one_way_delay_ms, \
    resolution = COALESCE(excluded.resolution, calls.resolution), \
    classified_at = COALESCE(excluded.classified_at, calls.classified_at), \
    recording_url = COALESCE(excluded.recording_url, calls.recording_url)";

/// An upsert rather than INSERT OR REPLACE on `calls`: REPLACE deletes the old row first,
/// which would lose the kept columns above and fire the cascade.
const UPSERT_STREAMS: &str = "INSERT INTO call_streams (call_id, streams_json) \
    VALUES (?1, ?2) ON CONFLICT (call_id) DO UPDATE SET streams_json = excluded.streams_json";

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database directory could not be created.
    #[error("cannot create directory {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// SQLite refused an operation.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The streams of a record could not be turned into JSON or back.
    #[error("streams JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A record's `created_at` is not an RFC 3339 timestamp, so it cannot be indexed.
    #[error("call {call_id}: created_at {value:?} is not an RFC 3339 timestamp")]
    BadTimestamp {
        /// The record.
        call_id: String,
        /// What it held.
        value: String,
    },
    /// The file was written by a newer vqprobe.
    #[error("database schema version {found} is newer than this vqprobe supports ({supported})")]
    SchemaTooNew {
        /// `user_version` in the file.
        found: i64,
        /// [`SCHEMA_VERSION`].
        supported: i64,
    },
    /// A read-only open found a database whose schema does not match this build.
    #[error(
        "database schema version {found}, expected {expected} (open it read-write once to migrate)"
    )]
    SchemaMismatch {
        /// `user_version` in the file.
        found: i64,
        /// [`SCHEMA_VERSION`].
        expected: i64,
    },
    /// SQLite would not switch to WAL (e.g. a network file system), so readers would
    /// block the writer.
    #[error("database cannot use WAL journal mode (got {0:?})")]
    NotWal(String),
    /// The writer thread could not be started.
    #[error("cannot start the store writer thread: {0}")]
    Spawn(std::io::Error),
    /// The writer thread panicked.
    #[error("the store writer thread panicked")]
    WriterPanicked,
}

/// Filters and page for [`Store::list_calls`]. `None` means "any".
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallQuery {
    /// Exact agent id.
    pub agent_id: Option<String>,
    /// Exact MNO name.
    pub mno: Option<String>,
    /// Exact status (`completed`, `in_progress`, …).
    pub status: Option<String>,
    /// `inbound` or `outbound`.
    pub direction: Option<String>,
    /// Calls created at or after this instant (unix ms).
    pub date_from_ms: Option<i64>,
    /// Calls created strictly before this instant (unix ms): a half-open range, so
    /// consecutive days never share a call.
    pub date_to_ms: Option<i64>,
    /// `quality_mos` at least this; calls without a MOS never match a MOS bound.
    pub min_mos: Option<f64>,
    /// `quality_mos` at most this.
    pub max_mos: Option<f64>,
    /// 1-based page; 0 is taken as 1.
    pub page: u32,
    /// Rows per page; 0 returns no rows but still the total.
    pub page_size: u32,
}

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
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
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
            let mut call_stmt = tx.prepare_cached(UPSERT_CALL)?;
            let mut streams_stmt = tx.prepare_cached(UPSERT_STREAMS)?;
            for c in calls {
                let created_at_ms =
                    parse_rfc3339_ms(&c.created_at).ok_or_else(|| StoreError::BadTimestamp {
                        call_id: c.call_id.clone(),
                        value: c.created_at.clone(),
                    })?;
                let q = &c.quality;
                call_stmt.execute(named_params! {
                    ":call_id": c.call_id,
                    ":sip_call_id": c.sip_call_id,
                    ":agent_id": c.agent_id,
                    ":from_number": c.from_number,
                    ":to_number": c.to_number,
                    ":mno": c.mno,
                    ":country": c.country,
                    ":direction": c.direction.as_str(),
                    ":status": c.status.as_str(),
                    ":ended_reason": c.ended_reason.map(|r| r.as_str()),
                    ":created_at_ms": created_at_ms,
                    ":created_at": c.created_at,
                    ":ended_at": c.ended_at,
                    ":duration_seconds": c.duration_seconds,
                    ":codec": c.codec,
                    ":one_way_audio": c.one_way_audio,
                    ":quality_mos": c.quality_mos,
                    ":mos": q.mos,
                    ":mos_lq": q.mos_lq,
                    ":r_factor": q.r_factor,
                    ":min_interval_mos": q.min_interval_mos,
                    ":jitter_ms": q.jitter_ms,
                    ":loss_ratio": q.loss_ratio,
                    ":rtt_ms": q.rtt_ms,
                    ":one_way_delay_ms": q.one_way_delay_ms,
                    ":resolution": c.resolution.map(resolution_str),
                    ":classified_at": c.classified_at,
                    ":recording_url": c.recording_url,
                })?;
                let streams = serde_json::to_string(&c.streams)?;
                streams_stmt.execute(rusqlite::params![c.call_id, streams])?;
            }
        }
        tx.commit()?;
        Ok(calls.len())
    }

    /// The full record, streams included, or `None` for an unknown id.
    pub fn get_call(&self, call_id: &str) -> Result<Option<CallRecord>, StoreError> {
        // One statement, so the row and its streams come from the same snapshot.
        let sql = format!(
            "SELECT {CALL_COLUMNS}, (SELECT s.streams_json FROM call_streams s \
             WHERE s.call_id = calls.call_id) AS streams_json FROM calls WHERE call_id = ?1"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let found = stmt
            .query_row([call_id], |row| {
                Ok((
                    call_from_row(row)?,
                    row.get::<_, Option<String>>("streams_json")?,
                ))
            })
            .optional()?;
        let Some((mut call, streams)) = found else {
            return Ok(None);
        };
        if let Some(json) = streams {
            call.streams = serde_json::from_str::<Vec<StreamRecord>>(&json)?;
        }
        Ok(Some(call))
    }

    /// Number of stored calls.
    pub fn count_calls(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM calls", [], |row| row.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// One page of calls matching `q` (without streams), newest first (ties by
    /// `call_id`), and the number of calls matching in all.
    pub fn list_calls(&self, q: &CallQuery) -> Result<(Vec<CallRecord>, u64), StoreError> {
        let (filter, mut args) = q.where_clause();

        let total: i64 = self
            .conn
            .prepare_cached(&format!("SELECT COUNT(*) FROM calls{filter}"))?
            .query_row(rusqlite::params_from_iter(args.iter()), |row| row.get(0))?;

        let page = i64::from(q.page.max(1));
        let size = i64::from(q.page_size);
        args.push(Value::Integer(size));
        args.push(Value::Integer((page - 1) * size));
        let sql = format!(
            "SELECT {CALL_COLUMNS} FROM calls{filter} \
             ORDER BY created_at_ms DESC, call_id LIMIT ? OFFSET ?"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), call_from_row)?;
        let calls = rows.collect::<Result<Vec<_>, _>>()?;
        Ok((calls, u64::try_from(total).unwrap_or(0)))
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
    fn delete_chunk(&mut self, cutoff_ms: i64, limit: usize) -> Result<usize, StoreError> {
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

fn user_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

/// Brings the schema to [`SCHEMA_VERSION`], each step in its own transaction so a crash
/// mid-migration leaves the previous version intact.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let supported = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Read inside the write transaction: two processes opening a fresh file at once
        // must not both run the same migration.
        let version = user_version(&tx)?;
        if version > supported {
            return Err(StoreError::SchemaTooNew {
                found: version,
                supported,
            });
        }
        let Some(step) = usize::try_from(version)
            .ok()
            .and_then(|v| MIGRATIONS.get(v))
        else {
            return Ok(());
        };
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
}

fn resolution_str(r: Resolution) -> &'static str {
    match r {
        Resolution::Resolved => "resolved",
        Resolution::Unresolved => "unresolved",
    }
}

/// RFC 3339 text to unix milliseconds (floored), `None` when it does not parse.
fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}

/// Reads a snake_case enum column through the same serde names the JSON uses, so the
/// stored text and the API can never disagree.
fn enum_col<T: DeserializeOwned>(row: &Row<'_>, name: &str) -> rusqlite::Result<T> {
    let text: String = row.get(name)?;
    serde_json::from_value(serde_json::Value::String(text)).map_err(|e| {
        let idx = row.as_ref().column_index(name).unwrap_or(usize::MAX);
        rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e))
    })
}

fn opt_enum_col<T: DeserializeOwned>(row: &Row<'_>, name: &str) -> rusqlite::Result<Option<T>> {
    match row.get::<_, Option<String>>(name)? {
        None => Ok(None),
        Some(_) => enum_col(row, name).map(Some),
    }
}

/// A record from a row selected with [`CALL_COLUMNS`]; streams are left empty.
pub fn call_from_row(row: &Row<'_>) -> rusqlite::Result<CallRecord> {
    Ok(CallRecord {
        call_id: row.get("call_id")?,
        sip_call_id: row.get("sip_call_id")?,
        agent_id: row.get("agent_id")?,
        from_number: row.get("from_number")?,
        to_number: row.get("to_number")?,
        mno: row.get("mno")?,
        country: row.get("country")?,
        direction: enum_col(row, "direction")?,
        status: enum_col(row, "status")?,
        ended_reason: opt_enum_col(row, "ended_reason")?,
        created_at: row.get("created_at")?,
        ended_at: row.get("ended_at")?,
        duration_seconds: row.get("duration_seconds")?,
        codec: row.get("codec")?,
        one_way_audio: row.get("one_way_audio")?,
        quality_mos: row.get("quality_mos")?,
        quality: QualityRecord {
            mos: row.get("mos")?,
            mos_lq: row.get("mos_lq")?,
            r_factor: row.get("r_factor")?,
            min_interval_mos: row.get("min_interval_mos")?,
            jitter_ms: row.get("jitter_ms")?,
            loss_ratio: row.get("loss_ratio")?,
            rtt_ms: row.get("rtt_ms")?,
            one_way_delay_ms: row.get("one_way_delay_ms")?,
        },
        resolution: opt_enum_col(row, "resolution")?,
        classified_at: row.get("classified_at")?,
        recording_url: row.get("recording_url")?,
        streams: Vec::new(),
    })
}

/// What the writer thread is asked to do.
#[derive(Debug)]
pub enum WriterMsg {
    /// Store this record (an interim or final one; later ones replace earlier ones).
    Call(Box<CallRecord>),
    /// Write everything buffered now, then send `()` on the channel.
    Flush(Sender<()>),
    /// Write everything buffered and stop.
    Shutdown,
}

/// Counters of the writer thread, for metrics (read with `Ordering::Relaxed`).
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Records written to the database.
    pub written: AtomicU64,
    /// Records that could not be written (bad timestamp, disk error) and were dropped.
    pub failed: AtomicU64,
    /// Calls deleted by retention.
    pub deleted: AtomicU64,
}

/// Handle of the thread that owns the read-write connection and writes records in
/// batches, off the packet path.
#[derive(Debug)]
pub struct StoreWriter {
    handle: JoinHandle<()>,
    stats: Arc<WriterStats>,
}

impl StoreWriter {
    /// Opens the store (errors come back here, before any thread starts) and starts the
    /// writer. Records are written at the latest `flush_interval` (capped at
    /// [`MAX_FLUSH_INTERVAL`]) after they arrive, or as soon as [`WRITER_BATCH`] are
    /// buffered. Calls older than `retention_days` by `now_ms()` are deleted at start
    /// and every [`RETENTION_PERIOD`]; 0 days keeps everything. The channel holds
    /// [`WRITER_QUEUE_CAPACITY`] messages; the thread stops on `Shutdown` or when every
    /// sender is gone, writing what it holds first.
    pub fn spawn(
        path: PathBuf,
        flush_interval: Duration,
        retention_days: u32,
        now_ms: fn() -> i64,
    ) -> Result<(StoreWriter, Sender<WriterMsg>), StoreError> {
        let mut store = Store::open(&path)?;
        // One daemon writes a database; rows still in progress at start were left by
        // one that died (kill -9, power loss) and will never be finished otherwise.
        store.close_interrupted()?;
        let (tx, rx) = crossbeam_channel::bounded(WRITER_QUEUE_CAPACITY);
        let stats = Arc::new(WriterStats::default());
        let worker = Worker {
            store,
            rx,
            stats: Arc::clone(&stats),
            flush_interval: flush_interval.min(MAX_FLUSH_INTERVAL),
            retention_days,
            now_ms,
            buf: Vec::with_capacity(WRITER_BATCH),
            first_buffered: None,
        };
        let handle = std::thread::Builder::new()
            .name("vqprobe-store".into())
            .spawn(move || worker.run())
            .map_err(StoreError::Spawn)?;
        Ok((StoreWriter { handle, stats }, tx))
    }

    /// The writer's counters.
    pub fn stats(&self) -> Arc<WriterStats> {
        Arc::clone(&self.stats)
    }

    /// Waits for the thread to end (send `WriterMsg::Shutdown` or drop every sender
    /// first, or this waits forever).
    pub fn join(self) -> Result<(), StoreError> {
        self.handle.join().map_err(|_| StoreError::WriterPanicked)
    }
}

/// State owned by the writer thread.
struct Worker {
    store: Store,
    rx: Receiver<WriterMsg>,
    stats: Arc<WriterStats>,
    flush_interval: Duration,
    retention_days: u32,
    now_ms: fn() -> i64,
    buf: Vec<CallRecord>,
    /// When the oldest buffered record arrived: the flush deadline runs from it.
    first_buffered: Option<Instant>,
}

/// Whether the loop goes on after a message.
enum Flow {
    Continue,
    Stop,
}

impl Worker {
    fn run(mut self) {
        let mut next_retention = Instant::now();
        // Retention runs one chunk per loop turn so a large backlog (say, after weeks
        // down) never keeps incoming records waiting for more than one chunk.
        let mut retention_cutoff: Option<i64> = None;
        loop {
            let now = Instant::now();
            if now >= next_retention {
                next_retention = now + RETENTION_PERIOD;
                if self.retention_days > 0 {
                    let keep_ms = i64::from(self.retention_days) * MS_PER_DAY;
                    retention_cutoff = Some((self.now_ms)().saturating_sub(keep_ms));
                }
            }
            let deadline = if retention_cutoff.is_some() {
                now
            } else {
                match self.first_buffered {
                    Some(t) => (t + self.flush_interval).min(next_retention),
                    None => next_retention,
                }
            };
            let flow = match self.rx.recv_deadline(deadline) {
                Ok(msg) => self.handle(msg),
                Err(RecvTimeoutError::Timeout) => Flow::Continue,
                Err(RecvTimeoutError::Disconnected) => Flow::Stop,
            };
            if let Flow::Stop = flow {
                break;
            }
            // Take whatever else is already queued in the same turn, so a burst is one
            // transaction rather than one loop per record.
            if let Flow::Stop = self.drain() {
                break;
            }
            if self
                .first_buffered
                .is_some_and(|t| t.elapsed() >= self.flush_interval)
            {
                self.flush();
            }
            if let Some(cutoff) = retention_cutoff {
                match self.store.delete_chunk(cutoff, RETENTION_CHUNK) {
                    Ok(n) => {
                        self.stats.deleted.fetch_add(n as u64, Ordering::Relaxed);
                        if n < RETENTION_CHUNK {
                            retention_cutoff = None;
                            // Keeps the planner's statistics fresh; cheap when nothing
                            // changed.
                            if let Err(e) = self.store.conn.execute_batch("PRAGMA optimize") {
                                eprintln!("vqprobe: store: PRAGMA optimize failed: {e}");
                            }
                        }
                    }
                    Err(e) => {
                        eprintln!("vqprobe: store: retention failed (next try in an hour): {e}");
                        retention_cutoff = None;
                    }
                }
            }
        }
        self.flush();
    }

    fn drain(&mut self) -> Flow {
        for _ in 0..WRITER_BATCH {
            match self.rx.try_recv() {
                Ok(msg) => {
                    if let Flow::Stop = self.handle(msg) {
                        return Flow::Stop;
                    }
                }
                Err(TryRecvError::Empty) => return Flow::Continue,
                Err(TryRecvError::Disconnected) => return Flow::Stop,
            }
        }
        Flow::Continue
    }

    fn handle(&mut self, msg: WriterMsg) -> Flow {
        match msg {
            WriterMsg::Call(rec) => {
                if self.buf.is_empty() {
                    self.first_buffered = Some(Instant::now());
                }
                self.buf.push(*rec);
                if self.buf.len() >= WRITER_BATCH {
                    self.flush();
                }
                Flow::Continue
            }
            WriterMsg::Flush(ack) => {
                self.flush();
                // The asker may have given up waiting; nothing to do about that.
                let _ = ack.send(());
                Flow::Continue
            }
            WriterMsg::Shutdown => Flow::Stop,
        }
    }

    fn flush(&mut self) {
        self.first_buffered = None;
        if self.buf.is_empty() {
            return;
        }
        match self.store.upsert_calls(&self.buf) {
            Ok(n) => {
                self.stats.written.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(batch_err) => {
                // One bad record must not cost the other 999: retry them one by one.
                let (mut ok, mut failed) = (0u64, 0u64);
                let mut last_err = String::new();
                for rec in &self.buf {
                    match self.store.upsert_calls(std::slice::from_ref(rec)) {
                        Ok(_) => ok += 1,
                        Err(e) => {
                            failed += 1;
                            last_err.clear();
                            let _ = write!(last_err, "{e}");
                        }
                    }
                }
                self.stats.written.fetch_add(ok, Ordering::Relaxed);
                self.stats.failed.fetch_add(failed, Ordering::Relaxed);
                eprintln!(
                    "vqprobe: store: writing {} records failed ({batch_err}); one by one \
                     {ok} written, {failed} dropped (last error: {last_err})",
                    self.buf.len()
                );
            }
        }
        self.buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{
        CallStatus, Direction, EndedReason, IntervalRecord, RemoteRecord, StreamRecord,
    };

    fn stream(direction: Direction, src: &str, dst: &str, ssrc: &str) -> StreamRecord {
        StreamRecord {
            direction,
            src: src.to_string(),
            dst: dst.to_string(),
            ssrc: ssrc.to_string(),
            payload_type: Some(0),
            codec: Some("PCMU".to_string()),
            clock_rate: Some(8000),
            packets: 1502,
            expected: 1500,
            lost: 3,
            duplicates: 5,
            out_of_order: 1,
            jitter_ms: Some(1.234567),
            max_jitter_ms: Some(4.5),
            mean_jitter_ms: None,
            max_delta_ms: 41.000001,
            loss_runs: [1, 1, 0, 0, 0, 0, 0, 0, 0, 0],
            mos: Some(4.312345),
            mos_lq: Some(4.401),
            mos_jb50: Some(4.3),
            mos_jb200: None,
            r_factor: Some(91.123456),
            rtt_ms: Some(37.5),
            intervals: vec![
                IntervalRecord {
                    start: "2026-03-01T10:00:00.000Z".to_string(),
                    packets: 250,
                    lost: 0,
                    jitter_ms: 0.875,
                    mos: Some(4.41),
                },
                IntervalRecord {
                    start: "2026-03-01T10:00:05.000Z".to_string(),
                    packets: 12,
                    lost: 3,
                    jitter_ms: 2.0,
                    mos: None,
                },
            ],
            remote: Some(RemoteRecord {
                fraction_lost: 0.0117,
                cumulative_lost: -2,
                jitter_ms: Some(3.125),
            }),
        }
    }

    /// A completed inbound call created at 2026-03-01T10:00:00Z, every field filled.
    fn sample_record(id: &str) -> CallRecord {
        CallRecord {
            call_id: id.to_string(),
            sip_call_id: Some(format!("{id}@sbc.example")),
            agent_id: Some("agent-7".to_string()),
            from_number: Some("+447700900123".to_string()),
            to_number: Some("+442071234567".to_string()),
            mno: "Vodafone UK".to_string(),
            country: Some("GB".to_string()),
            direction: Direction::Inbound,
            status: CallStatus::Completed,
            ended_reason: Some(EndedReason::Bye),
            created_at: "2026-03-01T10:00:00.000Z".to_string(),
            ended_at: Some("2026-03-01T10:01:30.500Z".to_string()),
            duration_seconds: 88.25,
            codec: Some("PCMU".to_string()),
            one_way_audio: false,
            quality_mos: Some(4.312345),
            quality: QualityRecord {
                mos: Some(4.312345),
                mos_lq: Some(4.401),
                r_factor: Some(91.123456),
                min_interval_mos: Some(3.05),
                jitter_ms: Some(1.234567),
                loss_ratio: Some(0.002),
                rtt_ms: Some(75.0),
                one_way_delay_ms: Some(37.5),
            },
            resolution: None,
            classified_at: None,
            recording_url: None,
            streams: vec![
                stream(
                    Direction::Inbound,
                    "198.51.100.7:40000",
                    "203.0.113.5:10000",
                    "0x6a518186",
                ),
                stream(
                    Direction::Outbound,
                    "[2001:db8::5]:10000",
                    "[2001:db8::7]:40000",
                    "0x00000001",
                ),
            ],
        }
    }

    /// `sample_record` with the fields `list_calls` filters on replaced.
    fn call(id: &str, agent: &str, mno: &str, created_at: &str, mos: Option<f64>) -> CallRecord {
        let mut c = sample_record(id);
        c.agent_id = Some(agent.to_string());
        c.mno = mno.to_string();
        c.created_at = created_at.to_string();
        c.quality_mos = mos;
        c
    }

    fn temp_store() -> (tempfile::TempDir, PathBuf, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/deeper/vqprobe.db");
        let store = Store::open(&path).expect("open");
        (dir, path, store)
    }

    fn ids(calls: &[CallRecord]) -> Vec<&str> {
        calls.iter().map(|c| c.call_id.as_str()).collect()
    }

    fn ms(s: &str) -> i64 {
        parse_rfc3339_ms(s).expect("timestamp")
    }

    #[test]
    fn open_creates_directories_wal_and_schema() {
        let (_dir, path, store) = temp_store();
        assert!(path.exists());
        let mode: String = store
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .expect("journal_mode");
        assert_eq!(mode, "wal");
        let sync: i64 = store
            .conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .expect("synchronous");
        assert_eq!(sync, 1, "NORMAL");
        let fk: i64 = store
            .conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .expect("foreign_keys");
        assert_eq!(fk, 1);
        assert_eq!(user_version(&store.conn).expect("version"), SCHEMA_VERSION);
        drop(store);
        // Re-opening an up-to-date file migrates nothing and keeps working.
        let store = Store::open(&path).expect("reopen");
        assert_eq!(store.count_calls().expect("count"), 0);
        assert_eq!(store.integrity_check().expect("check"), "ok");
    }

    #[test]
    fn newer_schema_is_refused() {
        let (_dir, path, store) = temp_store();
        store
            .conn
            .pragma_update(None, "user_version", 99)
            .expect("set version");
        drop(store);
        assert!(matches!(
            Store::open(&path),
            Err(StoreError::SchemaTooNew { found: 99, .. })
        ));
        assert!(matches!(
            Store::open_readonly(&path),
            Err(StoreError::SchemaMismatch { found: 99, .. })
        ));
    }

    #[test]
    fn upsert_then_get_round_trips_exactly() {
        let (_dir, _path, mut store) = temp_store();
        let mut rec = sample_record("call-1");
        rec.recording_url = Some("https://rec.example/call-1.wav".to_string());
        rec.ended_reason = Some(EndedReason::RtpTimeout);
        rec.status = CallStatus::InProgress;
        rec.quality.rtt_ms = None;
        // Values that need all 17 significant digits, as raw E-model output would.
        rec.duration_seconds = 0.1 + 0.2;
        rec.streams[0].jitter_ms = Some(1.0 / 3.0);
        // Needs serde_json's `float_roundtrip` feature: the default parser is off by one
        // ulp on about 9 % of arbitrary doubles, this one among them.
        rec.streams[1].intervals[0].jitter_ms = 39.430133835633676;
        assert_eq!(store.upsert_calls(&[rec.clone()]).expect("upsert"), 1);
        let got = store.get_call("call-1").expect("get").expect("found");
        assert_eq!(
            serde_json::to_value(&got).expect("json"),
            serde_json::to_value(&rec).expect("json")
        );
        assert_eq!(got, rec);
        assert_eq!(store.get_call("nope").expect("get"), None);
        assert_eq!(store.count_calls().expect("count"), 1);
    }

    #[test]
    fn later_record_keeps_resolution_and_recording() {
        let (_dir, _path, mut store) = temp_store();
        let mut rec = sample_record("call-1");
        rec.status = CallStatus::InProgress;
        rec.recording_url = Some("https://rec.example/1".to_string());
        store.upsert_calls(&[rec.clone()]).expect("upsert");
        assert!(store
            .set_resolution("call-1", Resolution::Resolved, "2026-03-01T11:00:00.000Z")
            .expect("set"));
        assert!(!store
            .set_resolution("unknown", Resolution::Resolved, "2026-03-01T11:00:00.000Z")
            .expect("set"));

        let mut fin = sample_record("call-1");
        fin.status = CallStatus::Completed;
        fin.duration_seconds = 120.0;
        fin.streams.pop();
        store.upsert_calls(&[fin]).expect("upsert again");
        let got = store.get_call("call-1").expect("get").expect("found");
        assert_eq!(got.status, CallStatus::Completed);
        assert_eq!(got.duration_seconds, 120.0);
        assert_eq!(got.streams.len(), 1);
        assert_eq!(got.resolution, Some(Resolution::Resolved));
        assert_eq!(
            got.classified_at.as_deref(),
            Some("2026-03-01T11:00:00.000Z")
        );
        assert_eq!(got.recording_url.as_deref(), Some("https://rec.example/1"));

        // A record that does carry a resolution wins.
        let mut over = sample_record("call-1");
        over.resolution = Some(Resolution::Unresolved);
        over.classified_at = Some("2026-03-02T00:00:00.000Z".to_string());
        store.upsert_calls(&[over]).expect("upsert third");
        let got = store.get_call("call-1").expect("get").expect("found");
        assert_eq!(got.resolution, Some(Resolution::Unresolved));
        assert_eq!(
            got.classified_at.as_deref(),
            Some("2026-03-02T00:00:00.000Z")
        );
    }

    #[test]
    fn bad_timestamp_fails_the_batch_cleanly() {
        let (_dir, _path, mut store) = temp_store();
        let mut bad = sample_record("bad");
        bad.created_at = "yesterday".to_string();
        let err = store
            .upsert_calls(&[sample_record("good"), bad])
            .expect_err("must fail");
        assert!(matches!(err, StoreError::BadTimestamp { .. }), "{err}");
        // The transaction rolled back: not even the good record is there.
        assert_eq!(store.count_calls().expect("count"), 0);
    }

    fn filter_fixture(store: &mut Store) {
        let mut calls = vec![
            call(
                "a1",
                "alice",
                "Vodafone UK",
                "2026-03-01T09:00:00Z",
                Some(4.4),
            ),
            call("a2", "alice", "EE", "2026-03-02T09:00:00Z", Some(2.9)),
            call("a3", "alice", "Vodafone UK", "2026-03-03T09:00:00Z", None),
            call(
                "b1",
                "bob",
                "Vodafone UK",
                "2026-03-02T09:00:00Z",
                Some(3.5),
            ),
            call("b2", "bob", "O2 UK", "2026-03-04T09:00:00+01:00", Some(3.1)),
        ];
        calls[1].status = CallStatus::Failed;
        calls[3].direction = Direction::Outbound;
        store.upsert_calls(&calls).expect("upsert");
    }

    fn page(q: CallQuery) -> CallQuery {
        CallQuery {
            page: 1,
            page_size: 50,
            ..q
        }
    }

    #[test]
    fn list_calls_filters() {
        let (_dir, _path, mut store) = temp_store();
        filter_fixture(&mut store);
        let list = |q: CallQuery| -> (Vec<String>, u64) {
            let (calls, total) = store.list_calls(&page(q)).expect("list");
            assert!(calls.iter().all(|c| c.streams.is_empty()));
            (ids(&calls).into_iter().map(String::from).collect(), total)
        };
        let s = |v: &str| Some(v.to_string());

        // Newest first; ties (a2/b1 at the same instant) by call_id.
        assert_eq!(
            list(CallQuery::default()),
            (
                vec![
                    "b2".into(),
                    "a3".into(),
                    "a2".into(),
                    "b1".into(),
                    "a1".into()
                ],
                5
            )
        );
        let (got, total) = list(CallQuery {
            agent_id: s("alice"),
            ..Default::default()
        });
        assert_eq!(
            (got, total),
            (vec!["a3".into(), "a2".into(), "a1".into()], 3)
        );
        let (got, _) = list(CallQuery {
            mno: s("Vodafone UK"),
            agent_id: s("alice"),
            ..Default::default()
        });
        assert_eq!(got, vec!["a3", "a1"]);
        assert_eq!(
            list(CallQuery {
                status: s("failed"),
                ..Default::default()
            })
            .0,
            vec!["a2"]
        );
        assert_eq!(
            list(CallQuery {
                direction: s("outbound"),
                ..Default::default()
            })
            .0,
            vec!["b1"]
        );
        // Half-open date range: from inclusive, to exclusive; offsets are normalised.
        assert_eq!(
            list(CallQuery {
                date_from_ms: Some(ms("2026-03-02T09:00:00Z")),
                date_to_ms: Some(ms("2026-03-04T08:00:00Z")),
                ..Default::default()
            })
            .0,
            vec!["a3", "a2", "b1"]
        );
        // MOS range is inclusive and leaves out calls without a MOS.
        assert_eq!(
            list(CallQuery {
                min_mos: Some(3.1),
                max_mos: Some(4.0),
                ..Default::default()
            })
            .0,
            vec!["b2", "b1"]
        );
        assert_eq!(
            list(CallQuery {
                max_mos: Some(3.1),
                ..Default::default()
            })
            .0,
            vec!["b2", "a2"]
        );
    }

    #[test]
    fn list_calls_paginates_with_total() {
        let (_dir, _path, mut store) = temp_store();
        let calls: Vec<CallRecord> = (0..25)
            .map(|i| {
                let created = format!("2026-03-01T10:{i:02}:00Z");
                call(&format!("c{i:02}"), "alice", "EE", &created, Some(4.0))
            })
            .collect();
        store.upsert_calls(&calls).expect("upsert");
        let q = |page, page_size| CallQuery {
            page,
            page_size,
            ..Default::default()
        };
        let (p1, total) = store.list_calls(&q(1, 10)).expect("p1");
        assert_eq!(total, 25);
        assert_eq!(ids(&p1).first(), Some(&"c24"));
        assert_eq!(p1.len(), 10);
        let (p3, total) = store.list_calls(&q(3, 10)).expect("p3");
        assert_eq!(total, 25);
        assert_eq!(ids(&p3), vec!["c04", "c03", "c02", "c01", "c00"]);
        let (p4, total) = store.list_calls(&q(4, 10)).expect("p4");
        assert!(p4.is_empty());
        assert_eq!(total, 25);
        // Page 0 is page 1; page size 0 only counts.
        assert_eq!(store.list_calls(&q(0, 10)).expect("p0").0, p1);
        let (none, total) = store.list_calls(&q(1, 0)).expect("size 0");
        assert!(none.is_empty());
        assert_eq!(total, 25);
        // Every call appears exactly once across the pages.
        let mut all = Vec::new();
        for p in 1..=3 {
            all.extend(store.list_calls(&q(p, 10)).expect("page").0);
        }
        let mut seen = ids(&all);
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 25);
    }

    #[test]
    fn sql_injection_in_filters_matches_nothing() {
        let (_dir, _path, mut store) = temp_store();
        filter_fixture(&mut store);
        let evil = Some("' OR 1=1 --".to_string());
        for q in [
            CallQuery {
                agent_id: evil.clone(),
                ..Default::default()
            },
            CallQuery {
                mno: evil.clone(),
                ..Default::default()
            },
            CallQuery {
                status: evil.clone(),
                ..Default::default()
            },
            CallQuery {
                direction: Some("inbound' OR '1'='1".to_string()),
                ..Default::default()
            },
        ] {
            let (calls, total) = store.list_calls(&page(q)).expect("list");
            assert!(calls.is_empty());
            assert_eq!(total, 0);
        }
        assert_eq!(store.get_call("' OR 1=1 --").expect("get"), None);
        assert_eq!(store.count_calls().expect("count"), 5, "nothing dropped");
    }

    #[test]
    fn retention_deletes_only_older_rows_and_their_streams() {
        let (_dir, _path, mut store) = temp_store();
        let calls: Vec<CallRecord> = (1..=9)
            .map(|d| {
                let created = format!("2026-03-0{d}T00:00:00Z");
                call(&format!("d{d}"), "alice", "EE", &created, Some(4.0))
            })
            .collect();
        store.upsert_calls(&calls).expect("upsert");
        let cutoff = ms("2026-03-05T00:00:00Z");
        // Small chunks, to exercise the loop the writer runs in 10k steps.
        assert_eq!(store.delete_chunk(cutoff, 3).expect("chunk"), 3);
        assert_eq!(store.delete_older_than(cutoff).expect("rest"), 1);
        assert_eq!(store.delete_older_than(cutoff).expect("again"), 0);
        let (left, total) = store.list_calls(&page(CallQuery::default())).expect("list");
        assert_eq!(total, 5);
        assert_eq!(ids(&left), vec!["d9", "d8", "d7", "d6", "d5"]);
        let streams: i64 = store
            .conn
            .query_row("SELECT COUNT(*) FROM call_streams", [], |r| r.get(0))
            .expect("streams");
        assert_eq!(streams, 5, "streams deleted with their calls");
    }

    #[test]
    fn readonly_reads_while_writer_writes_and_cannot_write() {
        let (_dir, path, mut store) = temp_store();
        store.upsert_calls(&[sample_record("one")]).expect("upsert");
        let mut reader = Store::open_readonly(&path).expect("readonly");
        assert_eq!(reader.count_calls().expect("count"), 1);
        store.upsert_calls(&[sample_record("two")]).expect("upsert");
        assert_eq!(reader.count_calls().expect("count"), 2);
        assert!(reader
            .set_resolution("one", Resolution::Resolved, "2026-03-01T11:00:00Z")
            .is_err());
        let missing = path.with_file_name("missing.db");
        assert!(Store::open_readonly(&missing).is_err());
        assert!(!missing.exists(), "read-only open must not create a file");
    }

    #[test]
    fn integrity_check_ok() {
        let (_dir, _path, mut store) = temp_store();
        filter_fixture(&mut store);
        assert_eq!(store.integrity_check().expect("check"), "ok");
    }

    #[test]
    fn errors_can_cross_threads() {
        // anyhow's `context` in the daemon needs this.
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<StoreError>();
        assert_send_sync::<WriterStats>();
    }

    fn fixed_now() -> i64 {
        parse_rfc3339_ms("2026-03-10T00:00:00Z").unwrap_or(0)
    }

    #[test]
    fn writer_flushes_within_interval() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db/vqprobe.db");
        let interval = Duration::from_millis(300);
        let (writer, tx) = StoreWriter::spawn(path.clone(), interval, 0, fixed_now).expect("spawn");
        let reader = Store::open_readonly(&path).expect("reader");
        tx.send(WriterMsg::Call(Box::new(sample_record("w1"))))
            .expect("send");
        std::thread::sleep(interval + Duration::from_millis(200));
        let got = reader.get_call("w1").expect("get").expect("flushed");
        assert_eq!(got, sample_record("w1"));
        assert_eq!(writer.stats().written.load(Ordering::Relaxed), 1);
        tx.send(WriterMsg::Shutdown).expect("shutdown");
        writer.join().expect("join");
    }

    #[test]
    fn writer_survives_large_batch_bad_record_and_enforces_retention() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vqprobe.db");
        {
            let mut store = Store::open(&path).expect("open");
            let old = call("old", "alice", "EE", "2025-01-01T00:00:00Z", Some(4.0));
            let recent = call("recent", "alice", "EE", "2026-03-09T00:00:00Z", Some(4.0));
            store.upsert_calls(&[old, recent]).expect("seed");
        }
        let (writer, tx) =
            StoreWriter::spawn(path.clone(), Duration::from_secs(1), 90, fixed_now).expect("spawn");
        let stats = writer.stats();
        for i in 0..5000 {
            let mut rec = sample_record(&format!("bulk-{i:05}"));
            rec.created_at = "2026-03-09T12:00:00.000Z".to_string();
            tx.send(WriterMsg::Call(Box::new(rec))).expect("send");
        }
        let mut bad = sample_record("bad");
        bad.created_at = "not a time".to_string();
        tx.send(WriterMsg::Call(Box::new(bad))).expect("send bad");
        // An update of an earlier record in the same stream of messages wins.
        let mut last = sample_record("bulk-00000");
        last.created_at = "2026-03-09T12:00:00.000Z".to_string();
        last.duration_seconds = 1.5;
        tx.send(WriterMsg::Call(Box::new(last))).expect("send");
        let (ack_tx, ack_rx) = crossbeam_channel::bounded(1);
        tx.send(WriterMsg::Flush(ack_tx)).expect("flush");
        ack_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("flush acknowledged");

        let reader = Store::open_readonly(&path).expect("reader");
        assert_eq!(reader.count_calls().expect("count"), 5001, "5000 + recent");
        assert_eq!(reader.get_call("old").expect("get"), None);
        assert!(reader.get_call("recent").expect("get").is_some());
        assert_eq!(
            reader
                .get_call("bulk-00000")
                .expect("get")
                .map(|c| c.duration_seconds),
            Some(1.5)
        );
        assert_eq!(stats.written.load(Ordering::Relaxed), 5001);
        assert_eq!(stats.failed.load(Ordering::Relaxed), 1);
        assert_eq!(stats.deleted.load(Ordering::Relaxed), 1);

        // Dropping the last sender stops the writer as Shutdown would.
        drop(tx);
        writer.join().expect("join");
        assert_eq!(reader.integrity_check().expect("check"), "ok");
    }
}
