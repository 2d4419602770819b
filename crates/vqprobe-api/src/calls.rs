//! The call resources: list with filters and pages, one call with its streams, pushed
//! metadata from the platform, and the NOC's resolution.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use rusqlite::types::Value;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use time::UtcOffset;
use utoipa::{IntoParams, ToSchema};

use crate::push::{PushError, PushedCall};
use crate::record::{rfc3339, CallRecord, Resolution};
use crate::store::{call_from_row, CallQuery, CALL_COLUMNS};

use super::db::blocking;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::openapi::{CallRecordSchema, CallSummarySchema, PushedCallSchema};
use super::params::{non_empty, now_ms, one_of, parse_f64, parse_instant, parse_u32_in, Bound};
use super::App;

/// Largest `page_size`.
pub const MAX_PAGE_SIZE: u32 = 100;

/// Query of `GET /v1/calls`. Every filter is optional; they combine with AND.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Exact agent id.
    pub agent_id: Option<String>,
    /// Exact MNO name.
    pub mno: Option<String>,
    /// `in_progress`, `completed`, `failed` or `abandoned`.
    pub status: Option<String>,
    /// `inbound` or `outbound`.
    pub direction: Option<String>,
    /// Calls created at or after this RFC 3339 instant, or from the start of this
    /// `YYYY-MM-DD` (UTC).
    pub date_from: Option<String>,
    /// Calls created at or before this RFC 3339 instant, or up to the end of this
    /// `YYYY-MM-DD` (UTC): both bounds are inclusive.
    pub date_to: Option<String>,
    /// `quality_mos` at least this; unscored calls never match a MOS bound.
    #[param(value_type = Option<f64>)]
    pub min_mos: Option<String>,
    /// `quality_mos` at most this.
    #[param(value_type = Option<f64>)]
    pub max_mos: Option<String>,
    /// 1-based page (default 1).
    #[param(value_type = Option<u32>, minimum = 1)]
    pub page: Option<String>,
    /// Calls per page, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub page_size: Option<String>,
}

/// A page of calls.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CallPage {
    /// The calls, newest first, without `streams`.
    #[schema(value_type = Vec<CallSummarySchema>)]
    pub data: Vec<serde_json::Value>,
    /// This page (1-based).
    pub page: u32,
    /// Page size asked for.
    pub page_size: u32,
    /// Calls matching the filters, over all pages.
    pub total: u64,
}

/// Answer to a pushed call.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PushAccepted {
    /// The pushed id.
    pub call_id: String,
    /// Always `accepted`: the metadata waits for its media.
    pub status: String,
}

/// NOC classification of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResolutionValue {
    /// The issue behind the call was resolved.
    Resolved,
    /// It was not.
    Unresolved,
}

/// Body of `PUT /v1/calls/{call_id}/resolution`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolutionBody {
    /// `resolved` or `unresolved`.
    pub resolution: ResolutionValue,
}

/// Checks and converts the list parameters.
fn list_query(p: ListParams) -> Result<CallQuery, ApiError> {
    let utc = UtcOffset::UTC;
    let date_from_ms = p
        .date_from
        .as_deref()
        .map(|v| parse_instant("date_from", v, Bound::Start, utc))
        .transpose()?;
    let date_to_ms = p
        .date_to
        .as_deref()
        .map(|v| parse_instant("date_to", v, Bound::EndInclusive, utc))
        .transpose()?;
    if let (Some(from), Some(to)) = (date_from_ms, date_to_ms) {
        if from >= to {
            return Err(ApiError::bad_request("date_from must be before date_to"));
        }
    }
    let min_mos = parse_f64("min_mos", p.min_mos.as_deref())?;
    let max_mos = parse_f64("max_mos", p.max_mos.as_deref())?;
    if let (Some(lo), Some(hi)) = (min_mos, max_mos) {
        if lo > hi {
            return Err(ApiError::bad_request("min_mos must not exceed max_mos"));
        }
    }
    Ok(CallQuery {
        agent_id: non_empty("agent_id", p.agent_id)?,
        mno: non_empty("mno", p.mno)?,
        status: one_of(
            "status",
            p.status,
            &["in_progress", "completed", "failed", "abandoned"],
        )?,
        direction: one_of("direction", p.direction, &["inbound", "outbound"])?,
        date_from_ms,
        date_to_ms,
        min_mos,
        max_mos,
        page: parse_u32_in("page", p.page.as_deref(), 1, 1, u32::MAX)?,
        page_size: parse_u32_in("page_size", p.page_size.as_deref(), 20, 1, MAX_PAGE_SIZE)?,
    })
}

/// Calls matching the filters, newest first, one page at a time.
#[utoipa::path(
    get,
    path = "/v1/calls",
    tag = "calls",
    params(ListParams),
    responses(
        (status = 200, description = "One page of calls", body = CallPage),
        (status = 400, description = "A parameter is malformed or out of range", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
    )
)]
pub(crate) async fn list(
    State(app): State<Arc<App>>,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Json<CallPage>, ApiError> {
    let q = list_query(p)?;
    let (page, page_size) = (q.page, q.page_size);
    let db = Arc::clone(&app.db);
    let (calls, total) = blocking(move || db.read_blocking(|s| list_calls(s.conn(), &q))).await?;
    let data = calls
        .into_iter()
        .map(without_streams)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(CallPage {
        data,
        page,
        page_size,
        total,
    }))
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
fn list_calls(conn: &Connection, q: &CallQuery) -> Result<(Vec<CallRecord>, u64), ApiError> {
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
            "SELECT {CALL_COLUMNS} FROM calls INDEXED BY {page_index}{filter} \
             ORDER BY created_at_ms DESC, call_id LIMIT ? OFFSET ?"
        ))?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), call_from_row)?;
        calls = rows.collect::<Result<Vec<_>, _>>()?;
    }
    tx.finish()?;
    Ok((calls, u64::try_from(total).unwrap_or(0)))
}

/// A record as JSON with the `streams` key left out (lists never carry media detail).
fn without_streams(c: CallRecord) -> Result<serde_json::Value, ApiError> {
    let mut v =
        serde_json::to_value(c).map_err(|e| ApiError::Internal(format!("record json: {e}")))?;
    if let Some(obj) = v.as_object_mut() {
        obj.remove("streams");
    }
    Ok(v)
}

/// One call with its streams.
#[utoipa::path(
    get,
    path = "/v1/calls/{call_id}",
    tag = "calls",
    params(("call_id" = String, Path, description = "Call id, percent-encoded (`@` may stay as is)")),
    responses(
        (status = 200, description = "The call", body = CallRecordSchema),
        (status = 404, description = "No such call", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
    )
)]
pub(crate) async fn get(
    State(app): State<Arc<App>>,
    ApiPath(call_id): ApiPath<String>,
) -> Result<Json<CallRecord>, ApiError> {
    let db = Arc::clone(&app.db);
    let id = call_id.clone();
    let found = blocking(move || db.read_blocking(|s| Ok(s.get_call(&id)?))).await?;
    found
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no call with id {call_id:?}")))
}

/// Metadata of a call the platform is about to place or has received; the probe
/// attaches it to the media arriving at the listed endpoints.
#[utoipa::path(
    post,
    path = "/v1/calls",
    tag = "calls",
    request_body = PushedCallSchema,
    responses(
        (status = 202, description = "Accepted; it shows up in the call once its media is seen", body = PushAccepted),
        (status = 400, description = "Invalid metadata (bad JSON, unknown field, no media, bad call_id)", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 503, description = "The capture pipeline cannot take metadata now", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
    )
)]
pub(crate) async fn push(
    State(app): State<Arc<App>>,
    ApiJson(call): ApiJson<PushedCall>,
) -> Result<(StatusCode, Json<PushAccepted>), ApiError> {
    call.validate()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let Some(push) = app.push.as_ref() else {
        return Err(ApiError::Unavailable(
            "this vqprobe does not take pushed metadata (no capture pipeline)".into(),
        ));
    };
    let call_id = call.call_id.clone();
    match push(call) {
        Ok(()) => Ok((
            StatusCode::ACCEPTED,
            Json(PushAccepted {
                call_id,
                status: "accepted".into(),
            }),
        )),
        Err(PushError::Unavailable) => {
            Err(ApiError::Unavailable(PushError::Unavailable.to_string()))
        }
        Err(e) => Err(ApiError::bad_request(e.to_string())),
    }
}

/// Sets the NOC's resolution of a call and stamps `classified_at` with the current
/// time (RFC 3339 UTC).
#[utoipa::path(
    put,
    path = "/v1/calls/{call_id}/resolution",
    tag = "calls",
    params(("call_id" = String, Path, description = "Call id, percent-encoded")),
    request_body = ResolutionBody,
    responses(
        (status = 200, description = "The updated call", body = CallRecordSchema),
        (status = 400, description = "resolution is not resolved or unresolved", body = ErrorBody),
        (status = 404, description = "No such call", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
    )
)]
pub(crate) async fn set_resolution(
    State(app): State<Arc<App>>,
    ApiPath(call_id): ApiPath<String>,
    ApiJson(body): ApiJson<ResolutionBody>,
) -> Result<Json<CallRecord>, ApiError> {
    let resolution = match body.resolution {
        ResolutionValue::Resolved => Resolution::Resolved,
        ResolutionValue::Unresolved => Resolution::Unresolved,
    };
    let classified_at = rfc3339(now_ms().saturating_mul(1_000_000));
    let db = Arc::clone(&app.db);
    let id = call_id.clone();
    let updated = blocking(move || {
        db.write_blocking(|s| {
            if !s.set_resolution(&id, resolution, &classified_at)? {
                return Ok(None);
            }
            Ok(s.get_call(&id)?)
        })
    })
    .await?;
    updated
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no call with id {call_id:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Result<CallQuery, ApiError> {
        let qs: String = pairs.iter().map(|(k, v)| format!("{k}={v}&")).collect();
        let uri: axum::http::Uri = format!("/v1/calls?{qs}").parse().unwrap();
        let axum::extract::Query(p) = axum::extract::Query::<ListParams>::try_from_uri(&uri)?;
        list_query(p)
    }

    #[test]
    fn defaults_and_bounds() {
        let q = params(&[]).unwrap();
        assert_eq!((q.page, q.page_size), (1, 20));
        assert_eq!(params(&[("page_size", "100")]).unwrap().page_size, 100);
        for (k, v) in [
            ("page_size", "0"),
            ("page_size", "101"),
            ("page", "0"),
            ("page", "x"),
            ("min_mos", "NaN"),
            ("status", "done"),
            ("direction", "sideways"),
            ("date_from", "2026-13-01"),
            ("agent_id", ""),
        ] {
            let e = params(&[(k, v)]).unwrap_err();
            assert!(e.to_string().starts_with(k), "{k}={v}: {e}");
        }
        assert!(params(&[("min_mos", "4"), ("max_mos", "3")]).is_err());
        assert!(params(&[("date_from", "2026-04-02"), ("date_to", "2026-04-01")]).is_err());
        let day = params(&[("date_from", "2026-04-01"), ("date_to", "2026-04-01")]).unwrap();
        assert_eq!(
            day.date_to_ms.unwrap() - day.date_from_ms.unwrap(),
            86_400_000
        );
    }
}
