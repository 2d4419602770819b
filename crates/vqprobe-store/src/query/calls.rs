//! The call listing: filters, the choice of index for the count and the page, and the
//! page itself (newest first).

use rusqlite::types::Value;
use rusqlite::Connection;
use vqprobe_engine::record::CallSummary;

use crate::columns::{select_list, summary_from_row};
use crate::error::StoreError;

/// Filters and page for [`list_calls`]. `None` means "any".
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

/// The indexes a filtered count and page walk, chosen here rather than by SQLite's
/// planner, which without statistics cannot tell a selective `agent_id` from a
/// `status` that matches most calls, and may pick an index that needs a table read
/// per call. Returns `(index for the count, index for the page)`.
fn plan_indexes(q: &CallQuery) -> (&'static str, &'static str) {
    let eq = [
        (
            q.agent_id.is_some(),
            "calls_agent_created",
            "api_calls_agent_mos",
        ),
        (q.mno.is_some(), "calls_mno_created", "api_calls_mno_mos"),
        (q.status.is_some(), "calls_status_created", ""),
    ];
    let n_eq = eq.iter().filter(|e| e.0).count() + usize::from(q.direction.is_some());
    let mos = q.min_mos.is_some() || q.max_mos.is_some();
    let single = eq.iter().find(|e| e.0).filter(|_| n_eq == 1);
    let count = match (n_eq, mos, single) {
        // Dates only: the time index, alone.
        (0, false, _) => "calls_created",
        // One equality: its (column, created_at_ms) index counts alone.
        (1, false, Some(e)) => e.1,
        // One agent or MNO with a MOS range: its (column, MOS, time) index.
        (1, true, Some(e)) if !e.2.is_empty() => e.2,
        // Anything else is evaluated on the covering index alone, in time order.
        _ => "api_calls_cover",
    };
    // Pages walk newest first: an agent's or MNO's own calls when one is named (few
    // enough that checking the other filters row by row is cheap), else the covering
    // index, which checks every filter without reading a row.
    let page = if q.agent_id.is_some() {
        "calls_agent_created"
    } else if q.mno.is_some() {
        "calls_mno_created"
    } else if n_eq == 0 && !mos {
        "calls_created"
    } else {
        "api_calls_cover"
    };
    (count, page)
}

/// One page of calls matching `q`, newest first (ties by `call_id`), and how many
/// match in all; both read in one snapshot.
pub fn list_calls(conn: &Connection, q: &CallQuery) -> Result<(Vec<CallSummary>, u64), StoreError> {
    let (filter, mut args) = q.where_clause();
    let (count_index, page_index) = plan_indexes(q);

    let tx = conn.unchecked_transaction()?;
    let total: i64 = tx
        .prepare_cached(&format!(
            "SELECT COUNT(*) FROM calls INDEXED BY {count_index}{filter}"
        ))?
        .query_row(rusqlite::params_from_iter(args.iter()), |r| r.get(0))?;
    let size = i64::from(q.page_size);
    let offset = (i64::from(q.page.max(1)) - 1).saturating_mul(size);
    let mut calls = Vec::new();
    // A page past the end would walk every match only to return nothing.
    if offset < total && size > 0 {
        args.push(Value::Integer(size));
        args.push(Value::Integer(offset));
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {} FROM calls INDEXED BY {page_index}{filter} \
             ORDER BY created_at_ms DESC, call_id LIMIT ? OFFSET ?",
            select_list()
        ))?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), summary_from_row)?;
        calls = rows.collect::<Result<Vec<_>, _>>()?;
    }
    tx.finish()?;
    Ok((calls, u64::try_from(total).unwrap_or(0)))
}

/// `created_at` of the newest stored call, off the end of the time index: O(log n).
pub fn newest_created_at(conn: &Connection) -> Result<Option<String>, StoreError> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .query_row(
            "SELECT created_at FROM calls ORDER BY created_at_ms DESC LIMIT 1",
            [],
            |r| r.get::<_, String>(0),
        )
        .optional()?)
}
