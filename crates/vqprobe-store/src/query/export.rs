//! The agent export's reads: every call of an agent, oldest first, in chunks of
//! [`CHUNK_ROWS`] rows per read transaction (so the daemon's writer and WAL checkpoints
//! are never held up by a long download), each row handed over as cells in
//! [`EXPORT_COLUMNS`] order without copying its text.

use std::sync::OnceLock;

use rusqlite::types::ValueRef;
use rusqlite::Connection;

use crate::columns::{column, ExportColumn, Kind, EXPORT_COLUMNS};
use crate::error::StoreError;

/// Rows read per chunk.
pub const CHUNK_ROWS: i64 = 1000;

/// Where the next chunk starts: after this `(created_at_ms, rowid)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportCursor {
    created_at_ms: i64,
    rowid: i64,
}

impl ExportCursor {
    /// After the call created at `created_at_ms` whose store-assigned, never-changing
    /// row number is `row` (SQLite's rowid, PostgreSQL's serial id).
    pub fn new(created_at_ms: i64, row: i64) -> ExportCursor {
        ExportCursor {
            created_at_ms,
            rowid: row,
        }
    }

    /// `(created_at_ms, row)` of the last call exported.
    pub fn position(self) -> (i64, i64) {
        (self.created_at_ms, self.rowid)
    }
}

/// One exported value, borrowed from the row it was read from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    /// No value (CSV: empty field; JSON: null).
    Null,
    /// A number.
    Real(f64),
    /// An integer.
    Int(i64),
    /// A flag.
    Bool(bool),
    /// Text.
    Text(&'a str),
}

/// `SELECT` of the stored export columns plus the cursor columns.
fn select() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let cols: Vec<&str> = EXPORT_COLUMNS
            .iter()
            .filter_map(|c| match c {
                ExportColumn::Stored(n) => Some(*n),
                ExportColumn::Constant(..) => None,
            })
            .collect();
        // The range on created_at_ms uses the (agent_id, created_at_ms) index; the OR
        // only filters the rare calls that share the cursor's millisecond.
        format!(
            "SELECT {}, created_at_ms, rowid FROM calls WHERE agent_id = ?1 \
             AND created_at_ms >= ?2 AND (created_at_ms > ?2 OR rowid > ?3) \
             ORDER BY created_at_ms, rowid LIMIT ?4",
            cols.join(", ")
        )
    })
}

/// Reads up to [`CHUNK_ROWS`] calls of the agent after `after`, in
/// `(created_at_ms, rowid)` order (rowid breaks ties and never changes for a call:
/// upserts update in place), handing each to `row` as cells in [`EXPORT_COLUMNS`]
/// order; returns where the next chunk starts, `None` at the end.
pub fn export_chunk(
    conn: &Connection,
    agent_id: &str,
    after: Option<ExportCursor>,
    row: &mut dyn FnMut(&[Cell<'_>]) -> Result<(), StoreError>,
) -> Result<Option<ExportCursor>, StoreError> {
    let (from_ms, from_rowid) = after.map_or((i64::MIN, i64::MIN), |c| (c.created_at_ms, c.rowid));
    let mut stmt = conn.prepare_cached(select())?;
    let mut rows = stmt.query(rusqlite::params![agent_id, from_ms, from_rowid, CHUNK_ROWS])?;
    let stored = EXPORT_COLUMNS
        .iter()
        .filter(|c| matches!(c, ExportColumn::Stored(_)))
        .count();
    let mut n = 0;
    let mut cursor = None;
    while let Some(r) = rows.next()? {
        let mut cells: Vec<Cell<'_>> = Vec::with_capacity(EXPORT_COLUMNS.len());
        let mut i = 0;
        for c in EXPORT_COLUMNS {
            let cell = match c {
                ExportColumn::Constant(_, v) => Cell::Text(v),
                ExportColumn::Stored(name) => {
                    let kind = column(name).map_or(Kind::Text, |c| c.kind);
                    let v = r.get_ref(i)?;
                    i += 1;
                    match (kind, v) {
                        (_, ValueRef::Null) => Cell::Null,
                        (Kind::Bool, ValueRef::Integer(b)) => Cell::Bool(b != 0),
                        (_, ValueRef::Integer(x)) => Cell::Int(x),
                        (_, ValueRef::Real(x)) => Cell::Real(x),
                        (_, ValueRef::Text(_)) => {
                            Cell::Text(v.as_str().map_err(rusqlite::Error::from)?)
                        }
                        (_, ValueRef::Blob(_)) => Cell::Null,
                    }
                }
            };
            cells.push(cell);
        }
        row(&cells)?;
        n += 1;
        cursor = Some(ExportCursor {
            created_at_ms: r.get(stored)?,
            rowid: r.get(stored + 1)?,
        });
    }
    Ok(cursor.filter(|_| n == CHUNK_ROWS))
}
