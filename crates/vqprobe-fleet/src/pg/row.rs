//! A record as PostgreSQL statement parameters, and a row back to a record, through the
//! one column list (`vqprobe_store::columns`).

use postgres::types::ToSql;
use rusqlite::types::Value;
use serde_json::Value as Json;
use tokio_postgres::Row;
use vqprobe_engine::record::{CallRecord, CallSummary};
use vqprobe_store::columns::{row_values, summary_from_values, Kind, CALL_COLUMNS};
use vqprobe_store::StoreError;

/// One parameter, typed by its column (a NULL must still carry its type).
pub type Param = Box<dyn ToSql + Sync + Send>;

/// The column parameters of a record, in [`CALL_COLUMNS`] order.
pub fn params(c: &CallSummary) -> Result<Vec<Param>, StoreError> {
    let values = row_values(c)?;
    let mut out: Vec<Param> = Vec::with_capacity(values.len());
    for (col, v) in CALL_COLUMNS.iter().zip(values) {
        let p: Param = match (col.kind, v) {
            (Kind::Text, Value::Text(s)) => Box::new(Some(s)),
            (Kind::Text, _) => Box::new(None::<String>),
            (Kind::Real, Value::Real(x)) => Box::new(Some(x)),
            (Kind::Real, Value::Integer(x)) => Box::new(Some(x as f64)),
            (Kind::Real, _) => Box::new(None::<f64>),
            (Kind::Bool, Value::Integer(b)) => Box::new(Some(b != 0)),
            (Kind::Bool, _) => Box::new(None::<bool>),
            (Kind::Int, Value::Integer(x)) => Box::new(Some(x)),
            (Kind::Int, _) => Box::new(None::<i64>),
        };
        out.push(p);
    }
    Ok(out)
}

fn bad(e: impl std::fmt::Display) -> StoreError {
    StoreError::Central(format!("bad row: {e}"))
}

/// A summary from a row whose first columns are [`super::schema::select_list`], with
/// `probe_id` at `probe_idx`.
pub fn summary(row: &Row, probe_idx: usize) -> Result<CallSummary, StoreError> {
    let mut values = Vec::with_capacity(CALL_COLUMNS.len());
    for (i, col) in CALL_COLUMNS.iter().enumerate() {
        let v = match col.kind {
            Kind::Text => row
                .try_get::<_, Option<String>>(i)
                .map_err(bad)?
                .map_or(Json::Null, Json::String),
            Kind::Real => row
                .try_get::<_, Option<f64>>(i)
                .map_err(bad)?
                .map_or(Json::Null, Json::from),
            Kind::Bool => row
                .try_get::<_, Option<bool>>(i)
                .map_err(bad)?
                .map_or(Json::Null, Json::Bool),
            Kind::Int => row
                .try_get::<_, Option<i64>>(i)
                .map_err(bad)?
                .map_or(Json::Null, Json::from),
        };
        values.push(v);
    }
    let mut s = summary_from_values(values).map_err(bad)?;
    s.probe_id = Some(row.try_get::<_, String>(probe_idx).map_err(bad)?);
    Ok(s)
}

/// A full record from a row of `select_list, probe_id, streams`.
pub fn record(row: &Row) -> Result<CallRecord, StoreError> {
    let n = CALL_COLUMNS.len();
    let call = summary(row, n)?;
    let streams: String = row.try_get(n + 1).map_err(bad)?;
    Ok(CallRecord {
        call,
        streams: serde_json::from_str(&streams)?,
    })
}
