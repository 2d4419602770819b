//! The summary endpoints: `GET /v1/analytics` (volume, resolution, duration, MOS over
//! the last 7/30/90 UTC days) and the per-MNO / per-agent quality tables, answered by
//! `vqprobe_store::query::analytics`: counts, sums and ratios from the daily rollup; the p10 MOS is an
//! exact nearest-rank percentile found by walking one group's calls in MOS order on a
//! covering index, so no endpoint reads more than a small fraction of the calls.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use vqprobe_store::query::analytics::{AgentRow, CountryRow, Dim, Group, MnoRow, Summary};
use vqprobe_store::time::DayWindow;

use super::db::blocking;
use super::error::{ApiError, ErrorBody};
use super::extract::ApiQuery;
use super::params::{non_empty, now_ms, parse_days, scope};
use super::App;

/// Query of `GET /v1/analytics`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SummaryParams {
    /// Look-back in UTC calendar days, today included: 7 (default), 30 or 90.
    #[param(schema_with = crate::params::days_schema, example = 7)]
    pub days: Option<String>,
    /// Only this agent's calls.
    #[param(min_length = 1, max_length = 256)]
    pub agent_id: Option<String>,
    /// Only calls on this MNO.
    #[param(min_length = 1, max_length = 256)]
    pub mno: Option<String>,
    /// Only this probe's calls (fleet aggregator only; a probe answers 400).
    pub probe_id: Option<String>,
}

/// Query of the per-MNO and per-agent tables.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DaysParams {
    /// Look-back in UTC calendar days, today included: 7 (default), 30 or 90.
    #[param(schema_with = crate::params::days_schema, example = 7)]
    pub days: Option<String>,
    /// Only this probe's calls (fleet aggregator only; a probe answers 400).
    pub probe_id: Option<String>,
}

/// Volume, resolution, duration and MOS over the last 7, 30 or 90 UTC days.
#[utoipa::path(
    get,
    path = "/v1/analytics",
    tag = "analytics",
    params(SummaryParams),
    responses(
        (status = 200, description = "Summary of the window", body = Summary),
        (status = 400, description = "Bad parameter (e.g. days not 7, 30 or 90)", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
    )
)]
pub(crate) async fn summary(
    State(app): State<Arc<App>>,
    ApiQuery(p): ApiQuery<SummaryParams>,
) -> Result<Json<Summary>, ApiError> {
    let days = parse_days(p.days.as_deref())?;
    let agent = non_empty("agent_id", p.agent_id)?;
    let mno = non_empty("mno", p.mno)?;
    let scope = scope(&app, p.probe_id)?;
    let window = DayWindow::ending(now_ms(), days);
    let db = Arc::clone(&app.db);
    let s =
        blocking(move || Ok(db.summary(window, agent.as_deref(), mno.as_deref(), &scope)?)).await?;
    Ok(Json(s))
}

/// Call quality per MNO over the last 7, 30 or 90 UTC days, most calls first.
#[utoipa::path(
    get,
    path = "/v1/analytics/mno",
    tag = "analytics",
    params(DaysParams),
    responses(
        (status = 200, description = "One row per MNO, most calls first", body = [MnoRow]),
        (status = 400, description = "days not 7, 30 or 90", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
    )
)]
pub(crate) async fn by_mno(
    State(app): State<Arc<App>>,
    ApiQuery(p): ApiQuery<DaysParams>,
) -> Result<Json<Vec<MnoRow>>, ApiError> {
    let rows = breakdown(app, p, Dim::Mno).await?;
    Ok(Json(
        rows.into_iter()
            .map(|(mno, figures)| MnoRow {
                mno: mno.unwrap_or_default(),
                figures,
            })
            .collect(),
    ))
}

/// Call quality per agent over the last 7, 30 or 90 UTC days, most calls first.
#[utoipa::path(
    get,
    path = "/v1/analytics/agents",
    tag = "analytics",
    params(DaysParams),
    responses(
        (status = 200, description = "One row per agent (agent_id null: calls without an agent), most calls first", body = [AgentRow]),
        (status = 400, description = "days not 7, 30 or 90", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
    )
)]
pub(crate) async fn by_agent(
    State(app): State<Arc<App>>,
    ApiQuery(p): ApiQuery<DaysParams>,
) -> Result<Json<Vec<AgentRow>>, ApiError> {
    let rows = breakdown(app, p, Dim::Agent).await?;
    Ok(Json(
        rows.into_iter()
            .map(|(agent_id, figures)| AgentRow { agent_id, figures })
            .collect(),
    ))
}

/// Call quality per country of the remote party over the last 7, 30 or 90 UTC days,
/// most calls first.
#[utoipa::path(
    get,
    path = "/v1/analytics/countries",
    tag = "analytics",
    params(DaysParams),
    responses(
        (status = 200, description = "One row per ISO 3166-1 alpha-2 country (country null: remote number not placed), most calls first", body = [CountryRow]),
        (status = 400, description = "days not 7, 30 or 90", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
    )
)]
pub(crate) async fn by_country(
    State(app): State<Arc<App>>,
    ApiQuery(p): ApiQuery<DaysParams>,
) -> Result<Json<Vec<CountryRow>>, ApiError> {
    let rows = breakdown(app, p, Dim::Country).await?;
    Ok(Json(
        rows.into_iter()
            .map(|(country, figures)| CountryRow { country, figures })
            .collect(),
    ))
}

async fn breakdown(app: Arc<App>, p: DaysParams, dim: Dim) -> Result<Vec<Group>, ApiError> {
    let days = parse_days(p.days.as_deref())?;
    let scope = scope(&app, p.probe_id)?;
    let window = DayWindow::ending(now_ms(), days);
    let db = Arc::clone(&app.db);
    blocking(move || Ok(db.breakdown(window, dim, &scope)?)).await
}
