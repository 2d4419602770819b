//! `POST /v1/analytics`: aggregate queries in the shape of Vapi's analytics API, over
//! vqprobe's call columns, with percentile operations added. This module is the
//! request shape, its validation into a [`Plan`] and the response shape; the store
//! (`vqprobe_store::aggregate`) runs plans.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Map;
use time::UtcOffset;
use utoipa::ToSchema;

use vqprobe_store::aggregate::{bucket_count, bucket_start, Out, ResultRow};
use vqprobe_store::plan::{step_name, GroupBy, Measure, OpKind, Plan, Step};

use super::db::blocking;
use super::error::{ApiError, ErrorBody};
use super::extract::ApiJson;
use super::params::{now_ms, parse_instant, rfc3339_at, Bound, MS_PER_DAY};
use super::App;

/// Queries per request.
pub const MAX_QUERIES: usize = 20;
/// Operations per query.
pub const MAX_OPERATIONS: usize = 20;
/// Time buckets a query may span.
pub const MAX_BUCKETS: i64 = 50_000;
/// Longest `name` and `alias`, as in Vapi's API.
pub const MAX_NAME: usize = 40;

/// Request body: a batch of queries, answered in order.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsRequest {
    /// The queries (1 to 20).
    #[schema(min_items = 1, max_items = 20)]
    pub queries: Vec<AnalyticsQuery>,
    /// Only this probe's calls, in every query (fleet aggregator only; a probe
    /// answers 400).
    #[serde(default)]
    pub probe_id: Option<String>,
}

/// One aggregate query.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AnalyticsQuery {
    /// Names the query in the response (1 to 40 characters, unique in the request).
    #[schema(min_length = 1, max_length = 40)]
    pub name: String,
    /// The table queried; only `calls`.
    pub table: Table,
    /// Columns to group by, besides the time bucket (each at most once).
    #[serde(default)]
    pub group_by: Vec<GroupBy>,
    /// Aggregations (1 to 20).
    #[schema(min_items = 1, max_items = 20)]
    pub operations: Vec<Operation>,
    /// Range and bucketing; default: the last 7 days up to now, one bucket, UTC.
    #[serde(default)]
    pub time_range: Option<TimeRange>,
}

/// Tables that can be queried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// One row per call.
    Calls,
}

/// One aggregation.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Operation {
    /// What to compute.
    pub operation: OpKind,
    /// Over which column.
    pub column: Measure,
    /// Key of the value in each result row; default `<operation>_<column>`, e.g.
    /// `p95_mos`.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 40)]
    pub alias: Option<String>,
}

/// Range and bucketing of a query.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeRange {
    /// First instant (RFC 3339) or day (`YYYY-MM-DD`, from midnight in `timezone`);
    /// default 7 days before `end`.
    #[schema(schema_with = crate::params::date_or_instant_or_null_schema)]
    pub start: Option<String>,
    /// End, exclusive (RFC 3339), or last day, included (`YYYY-MM-DD`); default now.
    #[schema(schema_with = crate::params::date_or_instant_or_null_schema)]
    pub end: Option<String>,
    /// Bucket size; without it the whole range is one bucket.
    pub step: Option<Step>,
    /// `UTC` (default) or a fixed offset such as `+05:30` or `-08:00`. Named zones
    /// (`Europe/London`) are refused: vqprobe carries no time-zone database.
    #[schema(pattern = r"^(UTC|Z|GMT|[+-](0[0-9]|1[0-9]|2[0-3]):?[0-5][0-9])$")]
    pub timezone: Option<String>,
}

/// The range a query actually covered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TimeRangeOut {
    /// First instant, RFC 3339 in the query's time zone.
    pub start: String,
    /// End (exclusive), RFC 3339 in the query's time zone.
    pub end: String,
    /// Bucket size, `null` for one bucket.
    pub step: Option<Step>,
    /// `UTC` or the fixed offset used.
    pub timezone: String,
}

/// The answer to one query.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueryResult {
    /// The query's name.
    pub name: String,
    /// Its effective range.
    #[serde(rename = "timeRange")]
    pub time_range: TimeRangeOut,
    /// One row per non-empty bucket and group, in bucket then group order:
    /// `date` (bucket start, RFC 3339 in the query's zone), the group columns, then
    /// one key per operation (counts are integers; the rest numbers, `null` when the
    /// group has no value for the column).
    #[schema(value_type = Vec<Object>)]
    pub result: Vec<Map<String, serde_json::Value>>,
}

/// Runs aggregate queries over the calls.
#[utoipa::path(
    post,
    path = "/v1/analytics",
    tag = "analytics",
    request_body = AnalyticsRequest,
    responses(
        (status = 200, description = "One result per query, in request order", body = [QueryResult]),
        (status = 400, description = "Bad query: unknown table, column, operation, groupBy, step or time zone; bad range; result too large", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 413, description = "Body over the API's limit", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
    )
)]
pub(crate) async fn run(
    State(app): State<Arc<App>>,
    ApiJson(req): ApiJson<AnalyticsRequest>,
) -> Result<Json<Vec<QueryResult>>, ApiError> {
    let scope = super::params::scope(&app, req.probe_id.clone())?;
    let plans = plan_all(&req, now_ms())?;
    if !app.db.has_probes() && plans.iter().any(|p| p.groups.contains(&GroupBy::ProbeId)) {
        return Err(ApiError::bad_request(
            "groupBy probe_id: this is a single probe; the column is served by `vqprobe aggregate`",
        ));
    }
    let db = Arc::clone(&app.db);
    let out = blocking(move || {
        let rows = db.aggregate(&plans, &scope)?;
        Ok(plans
            .iter()
            .zip(rows)
            .map(|(p, r)| render(p, r))
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Json(out))
}

fn plan_all(req: &AnalyticsRequest, now: i64) -> Result<Vec<Plan>, ApiError> {
    if req.queries.is_empty() || req.queries.len() > MAX_QUERIES {
        return Err(ApiError::bad_request(format!(
            "queries must hold 1 to {MAX_QUERIES} queries (got {})",
            req.queries.len()
        )));
    }
    let mut plans: Vec<Plan> = Vec::with_capacity(req.queries.len());
    for (i, q) in req.queries.iter().enumerate() {
        let plan = plan(i, q, now)?;
        if plans.iter().any(|p| p.name == plan.name) {
            return Err(ApiError::bad_request(format!(
                "queries[{i}].name {:?} is used by an earlier query",
                plan.name
            )));
        }
        plans.push(plan);
    }
    Ok(plans)
}

fn plan(i: usize, q: &AnalyticsQuery, now: i64) -> Result<Plan, ApiError> {
    let at =
        |field: &str, msg: String| ApiError::bad_request(format!("queries[{i}].{field}: {msg}"));
    if q.name.is_empty() || q.name.chars().count() > MAX_NAME {
        return Err(at("name", format!("must be 1 to {MAX_NAME} characters")));
    }
    let Table::Calls = q.table;
    for (j, g) in q.group_by.iter().enumerate() {
        if q.group_by[..j].contains(g) {
            return Err(at("groupBy", format!("{} is listed twice", g.name())));
        }
    }
    if q.operations.is_empty() || q.operations.len() > MAX_OPERATIONS {
        return Err(at(
            "operations",
            format!("must hold 1 to {MAX_OPERATIONS} operations"),
        ));
    }
    let mut ops: Vec<(OpKind, Measure, String)> = Vec::with_capacity(q.operations.len());
    for (j, op) in q.operations.iter().enumerate() {
        let field = format!("operations[{j}]");
        if op.column == Measure::CallId && op.operation != OpKind::Count {
            return Err(at(
                &field,
                format!(
                    "{} is not defined on call_id (only count is)",
                    op.operation.name()
                ),
            ));
        }
        let alias = match &op.alias {
            Some(a) => a.clone(),
            None => format!("{}_{}", op.operation.name(), op.column.name()),
        };
        if alias.is_empty() || alias.chars().count() > MAX_NAME {
            return Err(at(
                &field,
                format!("alias must be 1 to {MAX_NAME} characters"),
            ));
        }
        if alias == "date" || q.group_by.iter().any(|g| g.name() == alias) {
            return Err(at(
                &field,
                format!("alias {alias:?} clashes with a column of the result"),
            ));
        }
        if ops.iter().any(|(_, _, a)| *a == alias) {
            return Err(at(
                &field,
                format!("alias {alias:?} is used by another operation; set a distinct alias"),
            ));
        }
        ops.push((op.operation, op.column, alias));
    }

    let tr = q.time_range.clone().unwrap_or_default();
    let (offset, timezone) = match tr.timezone.as_deref() {
        None => (UtcOffset::UTC, "UTC".to_string()),
        Some(tz) => parse_timezone(tz).map_err(|m| at("timeRange.timezone", m))?,
    };
    let parse = |field: &str, v: &str, bound| {
        parse_instant(field, v, bound, offset)
            .map_err(|e| ApiError::bad_request(format!("queries[{i}].timeRange.{e}")))
    };
    let end_ms = match tr.end.as_deref() {
        Some(v) => parse("end", v, Bound::EndExclusive)?,
        None => now,
    };
    let start_ms = match tr.start.as_deref() {
        Some(v) => parse("start", v, Bound::Start)?,
        None => end_ms.saturating_sub(7 * MS_PER_DAY),
    };
    if start_ms >= end_ms {
        return Err(at("timeRange", "start must be before end".into()));
    }
    if let Some(step) = tr.step {
        let n = bucket_count(step, start_ms, end_ms, offset);
        if n > MAX_BUCKETS {
            return Err(at(
                "timeRange",
                format!(
                    "step {} over this range makes {n} buckets, more than {MAX_BUCKETS}; use a larger step or a shorter range",
                    step_name(step)
                ),
            ));
        }
    }
    Ok(Plan {
        name: q.name.clone(),
        groups: q.group_by.clone(),
        ops,
        start_ms,
        end_ms,
        step: tr.step,
        offset,
        timezone,
    })
}

/// `UTC` (also `Z`, `GMT`, `Etc/UTC`) or a fixed offset `±HH:MM`, `±HHMM`, `±HH`
/// (optionally after `UTC`/`GMT`), up to ±14:00. Returns the offset and its label.
fn parse_timezone(tz: &str) -> Result<(UtcOffset, String), String> {
    let t = tz.trim();
    if ["UTC", "Z", "GMT", "Etc/UTC", "Etc/GMT"]
        .iter()
        .any(|u| t.eq_ignore_ascii_case(u))
    {
        return Ok((UtcOffset::UTC, "UTC".into()));
    }
    let unsupported = || {
        format!(
            "{tz:?} is not supported: vqprobe has no time-zone database, so use UTC or a \
             fixed offset such as +05:30 or -08:00"
        )
    };
    let body = ["UTC", "GMT", "utc", "gmt"]
        .iter()
        .find_map(|p| t.strip_prefix(p))
        .unwrap_or(t);
    let (sign, rest) = match body.as_bytes().first() {
        Some(b'+') => (1i8, &body[1..]),
        Some(b'-') => (-1i8, &body[1..]),
        _ => return Err(unsupported()),
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    let colon_ok = match rest.find(':') {
        None => true,
        Some(pos) => pos == 2 && rest.len() == 5,
    };
    if !colon_ok || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(unsupported());
    }
    let (h, m) = match digits.len() {
        2 => (digits.parse::<i8>().ok(), Some(0)),
        4 => (
            digits[..2].parse::<i8>().ok(),
            digits[2..].parse::<i8>().ok(),
        ),
        _ => (None, None),
    };
    let (Some(h), Some(m)) = (h, m) else {
        return Err(unsupported());
    };
    if h > 14 || m > 59 || (h == 14 && m > 0) {
        return Err(format!(
            "{tz:?} is out of range (offsets go from -14:00 to +14:00)"
        ));
    }
    let offset = UtcOffset::from_hms(sign * h, sign * m, 0).map_err(|_| unsupported())?;
    if offset.is_utc() {
        return Ok((UtcOffset::UTC, "UTC".into()));
    }
    let label = format!("{}{:02}:{:02}", if sign > 0 { '+' } else { '-' }, h, m);
    Ok((offset, label))
}

/// The response shape of an executed query.
fn render(p: &Plan, rows: Vec<ResultRow>) -> QueryResult {
    let result = rows
        .into_iter()
        .map(|r| {
            let mut row = Map::new();
            row.insert(
                "date".into(),
                rfc3339_at(bucket_start(p, r.b), p.offset).into(),
            );
            for (g, v) in p.groups.iter().zip(r.groups) {
                row.insert(
                    g.name().into(),
                    v.map_or(serde_json::Value::Null, Into::into),
                );
            }
            for ((_, _, alias), out) in p.ops.iter().zip(r.out) {
                let v = match out {
                    Out::Count(n) => n.into(),
                    Out::Num(x) => x
                        .map(vqprobe_engine::record::round6)
                        .map_or(serde_json::Value::Null, Into::into),
                };
                row.insert(alias.clone(), v);
            }
            row
        })
        .collect();
    QueryResult {
        name: p.name.clone(),
        time_range: TimeRangeOut {
            start: rfc3339_at(p.start_ms, p.offset),
            end: rfc3339_at(p.end_ms, p.offset),
            step: p.step,
            timezone: p.timezone.clone(),
        },
        result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timezones() {
        let ok = |s: &str| parse_timezone(s).unwrap();
        assert_eq!(ok("UTC"), (UtcOffset::UTC, "UTC".into()));
        assert_eq!(ok("utc").1, "UTC");
        assert_eq!(ok("+00:00").1, "UTC");
        assert_eq!(ok("+05:30").0.whole_seconds(), 19_800);
        assert_eq!(ok("+05:30").1, "+05:30");
        assert_eq!(ok("-0800").0.whole_seconds(), -28_800);
        assert_eq!(ok("UTC-08").1, "-08:00");
        assert_eq!(ok("+14:00").1, "+14:00");
        for bad in [
            "Europe/London",
            "+5:30",
            "+05:3",
            "+15:00",
            "+05:60",
            "",
            "+",
            "05:30",
        ] {
            let e = parse_timezone(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
        assert!(parse_timezone("America/New_York")
            .unwrap_err()
            .contains("no time-zone database"));
    }

    fn req(json: serde_json::Value) -> Result<Vec<Plan>, ApiError> {
        let r: AnalyticsRequest =
            serde_json::from_value(json).map_err(|e| ApiError::bad_request(e.to_string()))?;
        plan_all(&r, 100 * MS_PER_DAY)
    }

    #[test]
    fn validation_names_the_problem() {
        use serde_json::json;
        let op = json!([{"operation": "avg", "column": "mos"}]);
        let p =
            req(json!({"queries": [{"name": "q", "table": "calls", "operations": op}]})).unwrap();
        assert_eq!(p[0].ops[0].2, "avg_mos");
        assert_eq!(p[0].end_ms - p[0].start_ms, 7 * MS_PER_DAY);
        let cases = [
            (json!({"queries": []}), "queries must hold"),
            (
                json!({"queries": [{"name": "q", "table": "calls", "operations": [{"operation": "sum", "column": "call_id"}]}]}),
                "sum is not defined on call_id",
            ),
            (
                json!({"queries": [{"name": "q", "table": "calls", "operations": op, "groupBy": ["mno", "mno"]}]}),
                "mno is listed twice",
            ),
            (
                json!({"queries": [{"name": "q", "table": "calls", "operations": op}, {"name": "q", "table": "calls", "operations": op}]}),
                "queries[1].name",
            ),
            (
                json!({"queries": [{"name": "q", "table": "calls", "operations": [{"operation": "avg", "column": "mos", "alias": "mno"}], "groupBy": ["mno"]}]}),
                "clashes",
            ),
            (
                json!({"queries": [{"name": "q", "table": "calls", "operations": [{"operation": "avg", "column": "mos"}, {"operation": "avg", "column": "mos"}]}]}),
                "distinct alias",
            ),
            (
                json!({"queries": [{"name": "q", "table": "calls", "operations": op, "timeRange": {"timezone": "Asia/Kolkata"}}]}),
                "timeRange.timezone",
            ),
            (
                json!({"queries": [{"name": "q", "table": "calls", "operations": op, "timeRange": {"start": "2026-01-02", "end": "2026-01-01"}}]}),
                "start must be before end",
            ),
            (
                json!({"queries": [{"name": "q", "table": "calls", "operations": op, "timeRange": {"start": "soon"}}]}),
                "queries[0].timeRange.start must be",
            ),
            (
                json!({"queries": [{"name": "q", "table": "calls", "operations": op, "timeRange": {"start": "1970-01-01", "step": "minute"}}]}),
                "buckets",
            ),
        ];
        for (body, want) in cases {
            let e = req(body.clone()).unwrap_err();
            assert!(e.to_string().contains(want), "{body}: {e}");
        }
    }
}
