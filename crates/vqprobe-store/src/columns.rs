//! The one list of `calls` columns, and everything derived from it: the upsert, the
//! select list, the mapping of a record to a row and of a row back to a record, and
//! the columns of the agent export.
//!
//! Each column names where its value sits in the JSON of a
//! [`CallSummary`](vqprobe_engine::record::CallSummary) (`["quality", "mos"]` for
//! `quality.mos`), so the record type stays the single definition of a call: a row is
//! the record's JSON read column by column, and a record is a row's values put back at
//! their paths. Tests hold this list to the record (every field has a column) and to
//! the migrated table (every column exists with its type).

use std::sync::OnceLock;

use rusqlite::types::{Value, ValueRef};
use rusqlite::Row;
use serde_json::{Map, Value as Json};
use vqprobe_engine::record::{CallRecord, CallSummary};

use crate::error::StoreError;
use crate::time::parse_rfc3339_ms;

/// The SQL storage class of a column, and how its JSON value maps to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// TEXT; JSON strings (enums are stored by their JSON names).
    Text,
    /// REAL; JSON numbers.
    Real,
    /// INTEGER 0/1; JSON booleans.
    Bool,
    /// INTEGER; not in the record: derived when the row is written.
    Int,
}

impl Kind {
    /// The type as declared in `CREATE TABLE`.
    pub fn sql(self) -> &'static str {
        match self {
            Kind::Text => "TEXT",
            Kind::Real => "REAL",
            Kind::Bool | Kind::Int => "INTEGER",
        }
    }
}

/// Where a column's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The record's JSON at this path.
    Record(&'static [&'static str]),
    /// `created_at` as unix milliseconds (what every time filter and index uses).
    CreatedAtMs,
}

/// One column of `calls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Column name.
    pub name: &'static str,
    /// Storage class.
    pub kind: Kind,
    /// `NOT NULL` in the table.
    pub not_null: bool,
    /// Where the value comes from.
    pub source: Source,
    /// Set by the API (the NOC's classification, the recording link), not by the
    /// engine: a later record carrying it as null keeps the stored value.
    pub kept: bool,
}

const fn col(
    name: &'static str,
    kind: Kind,
    not_null: bool,
    path: &'static [&'static str],
) -> Column {
    Column {
        name,
        kind,
        not_null,
        source: Source::Record(path),
        kept: false,
    }
}

const fn kept(name: &'static str, path: &'static [&'static str]) -> Column {
    Column {
        name,
        kind: Kind::Text,
        not_null: false,
        source: Source::Record(path),
        kept: true,
    }
}

use Kind::{Bool, Real, Text};

/// Every column of `calls`, in table order.
pub const CALL_COLUMNS: &[Column] = &[
    col("call_id", Text, true, &["call_id"]),
    col("sip_call_id", Text, false, &["sip_call_id"]),
    col("agent_id", Text, false, &["agent_id"]),
    col("from_number", Text, false, &["from_number"]),
    col("to_number", Text, false, &["to_number"]),
    col("mno", Text, true, &["mno"]),
    col("country", Text, false, &["country"]),
    col("direction", Text, true, &["direction"]),
    col("status", Text, true, &["status"]),
    col("ended_reason", Text, false, &["ended_reason"]),
    Column {
        name: "created_at_ms",
        kind: Kind::Int,
        not_null: true,
        source: Source::CreatedAtMs,
        kept: false,
    },
    col("created_at", Text, true, &["created_at"]),
    col("ended_at", Text, false, &["ended_at"]),
    col("duration_seconds", Real, true, &["duration_seconds"]),
    col("codec", Text, false, &["codec"]),
    col("one_way_audio", Bool, true, &["one_way_audio"]),
    col("fax", Bool, true, &["fax"]),
    col("xr_disagreement", Bool, true, &["xr_disagreement"]),
    col("quality_mos", Real, false, &["quality_mos"]),
    col("mos", Real, false, &["quality", "mos"]),
    col("mos_lq", Real, false, &["quality", "mos_lq"]),
    col("r_factor", Real, false, &["quality", "r_factor"]),
    col(
        "min_interval_mos",
        Real,
        false,
        &["quality", "min_interval_mos"],
    ),
    col("jitter_ms", Real, false, &["quality", "jitter_ms"]),
    col("loss_ratio", Real, false, &["quality", "loss_ratio"]),
    col("rtt_ms", Real, false, &["quality", "rtt_ms"]),
    col(
        "one_way_delay_ms",
        Real,
        false,
        &["quality", "one_way_delay_ms"],
    ),
    kept("resolution", &["resolution"]),
    kept("classified_at", &["classified_at"]),
    kept("recording_url", &["recording_url"]),
    // Schema 3: the numbers as signalled, anonymous callers, diversions, and which
    // table named the MNO.
    col("from_raw", Text, false, &["from_raw"]),
    col("to_raw", Text, false, &["to_raw"]),
    col("from_anonymous", Bool, true, &["from_anonymous"]),
    col("diverted_from", Text, false, &["diverted_from"]),
    col("mno_source", Text, false, &["mno_source"]),
];

/// A column of the agent export: a stored column, or a constant the peer products'
/// conversation export has and a probe cannot fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportColumn {
    /// A column of [`CALL_COLUMNS`], by name.
    Stored(&'static str),
    /// Always this value.
    Constant(&'static str, &'static str),
}

impl ExportColumn {
    /// The export's header name.
    pub fn name(self) -> &'static str {
        match self {
            ExportColumn::Stored(n) | ExportColumn::Constant(n, _) => n,
        }
    }
}

/// Export columns, in order: the peer products' conversation columns (the transcript
/// is always empty: a probe has no audio-to-text), then vqprobe's quality columns.
pub const EXPORT_COLUMNS: &[ExportColumn] = &[
    ExportColumn::Stored("call_id"),
    ExportColumn::Stored("from_number"),
    ExportColumn::Stored("to_number"),
    ExportColumn::Stored("direction"),
    ExportColumn::Stored("status"),
    ExportColumn::Stored("duration_seconds"),
    ExportColumn::Stored("created_at"),
    ExportColumn::Constant("transcript_text", ""),
    ExportColumn::Stored("quality_mos"),
    ExportColumn::Stored("mos_lq"),
    ExportColumn::Stored("r_factor"),
    ExportColumn::Stored("min_interval_mos"),
    ExportColumn::Stored("jitter_ms"),
    ExportColumn::Stored("loss_ratio"),
    ExportColumn::Stored("rtt_ms"),
    ExportColumn::Stored("mno"),
    ExportColumn::Stored("codec"),
];

/// The column of [`CALL_COLUMNS`] with this name.
pub fn column(name: &str) -> Option<&'static Column> {
    CALL_COLUMNS.iter().find(|c| c.name == name)
}

/// `call_id, sip_call_id, …`: every column, for `SELECT`.
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

/// The upsert of one row: positional parameters in [`CALL_COLUMNS`] order. A later
/// record for the same call replaces every figure but keeps the `kept` columns
/// when it carries them as null. An upsert rather than INSERT OR REPLACE: REPLACE
/// deletes the old row first, which would lose the kept columns and fire the cascade.
pub fn upsert_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let names: Vec<&str> = CALL_COLUMNS.iter().map(|c| c.name).collect();
        let params: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
        let sets: Vec<String> = CALL_COLUMNS
            .iter()
            .filter(|c| c.name != "call_id")
            .map(|c| {
                if c.kept {
                    format!("{0} = COALESCE(excluded.{0}, calls.{0})", c.name)
                } else {
                    format!("{0} = excluded.{0}", c.name)
                }
            })
            .collect();
        format!(
            "INSERT INTO calls ({}) VALUES ({}) ON CONFLICT (call_id) DO UPDATE SET {}",
            names.join(", "),
            params.join(", "),
            sets.join(", ")
        )
    })
}

fn at<'a>(json: &'a Json, path: &[&str]) -> &'a Json {
    path.iter()
        .fold(json, |v, k| v.get(k).unwrap_or(&Json::Null))
}

/// The row values of a record, in [`CALL_COLUMNS`] order.
pub fn row_values(c: &CallSummary) -> Result<Vec<Value>, StoreError> {
    let json = serde_json::to_value(c)?;
    let mut out = Vec::with_capacity(CALL_COLUMNS.len());
    for col in CALL_COLUMNS {
        let v = match col.source {
            Source::CreatedAtMs => {
                let ms =
                    parse_rfc3339_ms(&c.created_at).ok_or_else(|| StoreError::BadTimestamp {
                        call_id: c.call_id.clone(),
                        value: c.created_at.clone(),
                    })?;
                Value::Integer(ms)
            }
            Source::Record(path) => match (col.kind, at(&json, path)) {
                (_, Json::Null) => Value::Null,
                (Kind::Text, Json::String(s)) => Value::Text(s.clone()),
                (Kind::Real, Json::Number(n)) => n.as_f64().map_or(Value::Null, Value::Real),
                (Kind::Bool, Json::Bool(b)) => Value::Integer(i64::from(*b)),
                (Kind::Int, Json::Number(n)) => n.as_i64().map_or(Value::Null, Value::Integer),
                (_, other) => {
                    return Err(StoreError::Internal(format!(
                        "column {} cannot hold {other}",
                        col.name
                    )))
                }
            },
        };
        out.push(v);
    }
    Ok(out)
}

fn put(obj: &mut Map<String, Json>, path: &[&str], v: Json) {
    match path {
        [] => {}
        [last] => {
            obj.insert((*last).to_string(), v);
        }
        [first, rest @ ..] => {
            let inner = obj
                .entry((*first).to_string())
                .or_insert_with(|| Json::Object(Map::new()));
            if let Json::Object(m) = inner {
                put(m, rest, v);
            }
        }
    }
}

/// A record (without streams) from a row selected with [`select_list`].
pub fn summary_from_row(row: &Row<'_>) -> rusqlite::Result<CallSummary> {
    let mut obj = Map::new();
    for (i, col) in CALL_COLUMNS.iter().enumerate() {
        let Source::Record(path) = col.source else {
            continue;
        };
        let v = match (col.kind, row.get_ref(i)?) {
            (_, ValueRef::Null) => Json::Null,
            (Kind::Bool, ValueRef::Integer(n)) => Json::Bool(n != 0),
            (_, ValueRef::Integer(n)) => Json::from(n),
            (_, ValueRef::Real(x)) => Json::from(x),
            (_, ValueRef::Text(t)) => Json::String(String::from_utf8_lossy(t).into_owned()),
            (_, ValueRef::Blob(_)) => Json::Null,
        };
        put(&mut obj, path, v);
    }
    serde_json::from_value(Json::Object(obj)).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// A record (without streams) from one JSON value per column of [`CALL_COLUMNS`], in
/// order (how another store hands its row over; derived columns' values are ignored).
pub fn summary_from_values(
    values: impl IntoIterator<Item = Json>,
) -> Result<CallSummary, serde_json::Error> {
    let mut obj = Map::new();
    for (col, v) in CALL_COLUMNS.iter().zip(values) {
        if let Source::Record(path) = col.source {
            put(&mut obj, path, v);
        }
    }
    serde_json::from_value(Json::Object(obj))
}

/// A full record from its summary and the stored streams JSON.
pub fn record_from_parts(
    call: CallSummary,
    streams_json: Option<&str>,
) -> Result<CallRecord, StoreError> {
    let streams = match streams_json {
        Some(j) => serde_json::from_str(j)?,
        None => Vec::new(),
    };
    Ok(CallRecord { call, streams })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every leaf of a summary's JSON (with every optional figure filled) is a column,
    /// and every record column is a leaf: a new field on the record without a column
    /// fails here.
    #[test]
    fn every_record_field_has_a_column() {
        let json = serde_json::to_value(crate::tests::sample_record("x").call).expect("json");
        fn leaves(v: &Json, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
            match v {
                Json::Object(m) => {
                    for (k, v) in m {
                        let mut p = prefix.clone();
                        p.push(k.clone());
                        leaves(v, p, out);
                    }
                }
                _ => out.push(prefix),
            }
        }
        let mut found = Vec::new();
        leaves(&json, Vec::new(), &mut found);
        let mut paths: Vec<Vec<String>> = CALL_COLUMNS
            .iter()
            .filter_map(|c| match c.source {
                Source::Record(p) => Some(p.iter().map(|s| s.to_string()).collect()),
                Source::CreatedAtMs => None,
            })
            .collect();
        found.sort();
        paths.sort();
        assert_eq!(found, paths);
    }

    #[test]
    fn export_columns_are_stored_columns() {
        for c in EXPORT_COLUMNS {
            if let ExportColumn::Stored(name) = c {
                assert!(column(name).is_some(), "{name}");
            }
        }
    }
}
