//! The call resources: list with filters and pages, one call with its streams, pushed
//! metadata from the platform, and the NOC's resolution.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use time::UtcOffset;
use utoipa::{IntoParams, ToSchema};
use vqprobe_engine::push::{PushError, PushedCall};
use vqprobe_engine::record::{rfc3339, CallRecord, CallSummary, Resolution};
use vqprobe_store::query::calls::CallQuery;

use super::db::blocking;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::params::{
    non_empty, now_ms, one_of, parse_f64, parse_instant, parse_u32_in, scope, Bound, ProbeParam,
};
use super::App;

/// Largest `page_size`.
pub const MAX_PAGE_SIZE: u32 = 100;

/// Query of `GET /v1/calls`. Every filter is optional; they combine with AND.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Exact agent id.
    #[param(min_length = 1, max_length = 256)]
    pub agent_id: Option<String>,
    /// Exact MNO name.
    #[param(min_length = 1, max_length = 256)]
    pub mno: Option<String>,
    /// `in_progress`, `completed`, `failed` or `abandoned`.
    #[param(schema_with = status_schema)]
    pub status: Option<String>,
    /// `inbound` or `outbound`.
    #[param(schema_with = direction_schema)]
    pub direction: Option<String>,
    /// Calls created at or after this RFC 3339 instant, or from the start of this
    /// `YYYY-MM-DD` (UTC).
    #[param(schema_with = crate::params::date_or_instant_schema)]
    pub date_from: Option<String>,
    /// Calls created at or before this RFC 3339 instant, or up to the end of this
    /// `YYYY-MM-DD` (UTC): both bounds are inclusive.
    #[param(schema_with = crate::params::date_or_instant_schema)]
    pub date_to: Option<String>,
    /// `quality_mos` at least this; unscored calls never match a MOS bound.
    #[param(value_type = Option<f64>)]
    pub min_mos: Option<String>,
    /// `quality_mos` at most this.
    #[param(value_type = Option<f64>)]
    pub max_mos: Option<String>,
    /// 1-based page (default 1).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4294967295_i64)]
    pub page: Option<String>,
    /// Calls per page, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub page_size: Option<String>,
    /// Only this probe's calls (fleet aggregator only; a probe answers 400).
    pub probe_id: Option<String>,
}

/// The `status` values a filter accepts.
const STATUSES: [&str; 4] = ["in_progress", "completed", "failed", "abandoned"];
/// The `direction` values a filter accepts.
const DIRECTIONS: [&str; 2] = ["inbound", "outbound"];

fn status_schema() -> utoipa::openapi::schema::Object {
    crate::params::string_enum(&STATUSES)
}

fn direction_schema() -> utoipa::openapi::schema::Object {
    crate::params::string_enum(&DIRECTIONS)
}

/// A page of calls.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CallPage {
    /// The calls, newest first, without `streams`.
    pub data: Vec<CallSummary>,
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
        status: one_of("status", p.status, &STATUSES)?,
        direction: one_of("direction", p.direction, &DIRECTIONS)?,
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
    let scope = scope(&app, p.probe_id.clone())?;
    let q = list_query(p)?;
    let (page, page_size) = (q.page, q.page_size);
    let db = Arc::clone(&app.db);
    let (data, total) = blocking(move || Ok(db.list_calls(&q, &scope)?)).await?;
    Ok(Json(CallPage {
        data,
        page,
        page_size,
        total,
    }))
}

/// One call with its streams.
#[utoipa::path(
    get,
    path = "/v1/calls/{call_id}",
    tag = "calls",
    params(("call_id" = String, Path, description = "Call id, percent-encoded (`@` may stay as is)"), ProbeParam),
    responses(
        (status = 200, description = "The call", body = CallRecord),
        (status = 404, description = "No such call", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
    )
)]
pub(crate) async fn get(
    State(app): State<Arc<App>>,
    ApiPath(call_id): ApiPath<String>,
    ApiQuery(p): ApiQuery<ProbeParam>,
) -> Result<Json<CallRecord>, ApiError> {
    let scope = scope(&app, p.probe_id)?;
    let db = Arc::clone(&app.db);
    let id = call_id.clone();
    let found = blocking(move || Ok(db.get_call(&id, &scope)?)).await?;
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
    request_body = PushedCall,
    responses(
        (status = 202, description = "Accepted; it shows up in the call once its media is seen", body = PushAccepted),
        (status = 400, description = "Invalid metadata (bad JSON, unknown field, no media, bad call_id)", body = ErrorBody),
        (status = 413, description = "Body over the API's limit", body = ErrorBody),
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
    let Some(probe) = app.probe.as_ref() else {
        return Err(ApiError::Unavailable(
            "this vqprobe does not take pushed metadata (no capture pipeline)".into(),
        ));
    };
    let call_id = call.call_id.clone();
    match probe.push(call) {
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
    params(("call_id" = String, Path, description = "Call id, percent-encoded"), ProbeParam),
    request_body = ResolutionBody,
    responses(
        (status = 200, description = "The updated call", body = CallRecord),
        (status = 400, description = "resolution is not resolved or unresolved, or the body is not JSON", body = ErrorBody),
        (status = 413, description = "Body over the API's limit", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 404, description = "No such call", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
    )
)]
pub(crate) async fn set_resolution(
    State(app): State<Arc<App>>,
    ApiPath(call_id): ApiPath<String>,
    ApiQuery(p): ApiQuery<ProbeParam>,
    ApiJson(body): ApiJson<ResolutionBody>,
) -> Result<Json<CallRecord>, ApiError> {
    let resolution = match body.resolution {
        ResolutionValue::Resolved => Resolution::Resolved,
        ResolutionValue::Unresolved => Resolution::Unresolved,
    };
    let classified_at = rfc3339(now_ms().saturating_mul(1_000_000));
    let scope = scope(&app, p.probe_id)?;
    let db = Arc::clone(&app.db);
    let id = call_id.clone();
    let updated =
        blocking(move || Ok(db.set_resolution(&id, &scope, resolution, &classified_at)?)).await?;
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
