//! The summary endpoints: `GET /v1/analytics` (volume, resolution, duration, MOS over
//! the last 7/30/90 UTC days) and the per-MNO / per-agent quality tables. Counts, sums
//! and ratios come from the daily rollup (see [`super::schema`]); the p10 MOS is an
//! exact nearest-rank percentile found by walking one group's calls in MOS order on a
//! covering index, so no endpoint reads more than a small fraction of the calls.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::db::blocking;
use super::error::{ApiError, ErrorBody};
use super::extract::ApiQuery;
use super::params::{day_string, non_empty, now_ms, parse_days, ratio, DayWindow};
use super::App;

/// Query of `GET /v1/analytics`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SummaryParams {
    /// Look-back in UTC calendar days, today included: 7 (default), 30 or 90.
    #[param(value_type = Option<u32>, example = 7)]
    pub days: Option<String>,
    /// Only this agent's calls.
    pub agent_id: Option<String>,
    /// Only calls on this MNO.
    pub mno: Option<String>,
}

/// Query of the per-MNO and per-agent tables.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DaysParams {
    /// Look-back in UTC calendar days, today included: 7 (default), 30 or 90.
    #[param(value_type = Option<u32>, example = 7)]
    pub days: Option<String>,
}

/// Calls on one UTC day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DayCount {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    /// Calls created that day.
    pub count: u64,
}

/// Response of `GET /v1/analytics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Summary {
    /// Calls created in the window (any status, in-progress ones included).
    pub total_calls: u64,
    /// One entry per day of the window, oldest first, days without calls as 0.
    pub calls_per_day: Vec<DayCount>,
    /// Resolved ÷ classified (calls with any resolution) — the peer products'
    /// definition; `null` when no call in the window is classified.
    pub resolution_rate: Option<f64>,
    /// Mean `duration_seconds` of the window's completed calls (failed, abandoned and
    /// in-progress calls have no finished talk time); `null` without any.
    pub average_duration_seconds: Option<f64>,
    /// Mean `quality_mos` of the calls that have one.
    pub average_mos: Option<f64>,
}

/// Quality figures of one MNO's or one agent's calls in the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QualityFigures {
    /// Calls in the window.
    pub calls: u64,
    /// Mean `quality_mos` of the calls that have one.
    pub average_mos: Option<f64>,
    /// 10th percentile of `quality_mos`, nearest rank: the smallest MOS with at least
    /// 10 % of the scored calls at or below it.
    pub p10_mos: Option<f64>,
    /// Share of the scored calls with `quality_mos` below 3.1.
    pub poor_call_ratio: Option<f64>,
    /// Mean call `jitter_ms` (calls that have one).
    pub average_jitter_ms: Option<f64>,
    /// Mean call `loss_ratio` (calls that have one).
    pub average_loss_ratio: Option<f64>,
    /// Mean call `rtt_ms` (calls that have one).
    pub average_rtt_ms: Option<f64>,
}

/// One row of `GET /v1/analytics/mno`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MnoRow {
    /// Mobile network operator (`unknown` when no prefix matched).
    pub mno: String,
    /// Its figures.
    #[serde(flatten)]
    pub figures: QualityFigures,
}

/// One row of `GET /v1/analytics/agents`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentRow {
    /// Agent; `null` for calls without one.
    pub agent_id: Option<String>,
    /// Its figures.
    #[serde(flatten)]
    pub figures: QualityFigures,
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
    let window = DayWindow::ending(now_ms(), days);
    let db = Arc::clone(&app.db);
    let s = blocking(move || {
        db.read_blocking(|s| summary_query(s.conn(), window, agent.as_deref(), mno.as_deref()))
    })
    .await?;
    Ok(Json(s))
}

fn summary_query(
    conn: &Connection,
    w: DayWindow,
    agent: Option<&str>,
    mno: Option<&str>,
) -> Result<Summary, ApiError> {
    let mut stmt = conn.prepare_cached(
        "SELECT day, SUM(calls), SUM(completed), TOTAL(sum_duration), SUM(resolved), \
         SUM(classified), SUM(n_mos), TOTAL(sum_mos) FROM api_daily \
         WHERE day >= ?1 AND day <= ?2 AND (?3 IS NULL OR agent_id = ?3) \
         AND (?4 IS NULL OR mno = ?4) GROUP BY day ORDER BY day",
    )?;
    let mut rows = stmt.query(rusqlite::params![w.first_day, w.last_day, agent, mno])?;
    let mut per_day = Vec::new();
    let (mut total, mut completed, mut duration, mut resolved, mut classified) = (0, 0, 0.0, 0, 0);
    let (mut n_mos, mut sum_mos) = (0, 0.0);
    while let Some(r) = rows.next()? {
        let day: i64 = r.get(0)?;
        let calls: i64 = r.get(1)?;
        per_day.push((day, calls));
        total += calls;
        completed += r.get::<_, i64>(2)?;
        duration += r.get::<_, f64>(3)?;
        resolved += r.get::<_, i64>(4)?;
        classified += r.get::<_, i64>(5)?;
        n_mos += r.get::<_, i64>(6)?;
        sum_mos += r.get::<_, f64>(7)?;
    }
    let mut calls_per_day = Vec::new();
    let mut next = per_day.iter().peekable();
    for day in w.first_day..=w.last_day {
        let count = match next.peek() {
            Some((d, c)) if *d == day => {
                next.next();
                *c
            }
            _ => 0,
        };
        calls_per_day.push(DayCount {
            date: day_string(day),
            count: u64::try_from(count).unwrap_or(0),
        });
    }
    Ok(Summary {
        total_calls: u64::try_from(total).unwrap_or(0),
        calls_per_day,
        resolution_rate: ratio(resolved as f64, classified),
        average_duration_seconds: ratio(duration, completed),
        average_mos: ratio(sum_mos, n_mos),
    })
}

/// Which table a quality breakdown is by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dim {
    Mno,
    Agent,
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

/// A group's name (`None`: calls without an agent) and its figures.
type Group = (Option<String>, QualityFigures);

async fn breakdown(app: Arc<App>, p: DaysParams, dim: Dim) -> Result<Vec<Group>, ApiError> {
    let days = parse_days(p.days.as_deref())?;
    let window = DayWindow::ending(now_ms(), days);
    let db = Arc::clone(&app.db);
    blocking(move || db.read_blocking(|s| breakdown_query(s.conn(), window, dim))).await
}

fn breakdown_query(conn: &Connection, w: DayWindow, dim: Dim) -> Result<Vec<Group>, ApiError> {
    // One read transaction: the rollup's counts and the percentile walk see the same
    // snapshot, so the rank is right even while the daemon writes.
    let tx = conn.unchecked_transaction()?;
    let key = match dim {
        Dim::Mno => "mno",
        Dim::Agent => "agent_id",
    };
    let mut out = Vec::new();
    {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {key}, SUM(calls) AS c, SUM(n_mos), TOTAL(sum_mos), SUM(n_poor), \
             SUM(n_jitter), TOTAL(sum_jitter), SUM(n_loss), TOTAL(sum_loss), SUM(n_rtt), \
             TOTAL(sum_rtt) FROM api_daily WHERE day >= ?1 AND day <= ?2 \
             GROUP BY {key} ORDER BY c DESC, {key}"
        ))?;
        let mut rows = stmt.query([w.first_day, w.last_day])?;
        while let Some(r) = rows.next()? {
            let name: String = r.get(0)?;
            let n_mos: i64 = r.get(2)?;
            // '' is the rollup's stand-in for "no agent".
            let name = (!(dim == Dim::Agent && name.is_empty())).then_some(name);
            let figures = QualityFigures {
                calls: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                average_mos: ratio(r.get(3)?, n_mos),
                // Filled in below, once this statement is done with the connection.
                p10_mos: None,
                poor_call_ratio: ratio(r.get::<_, i64>(4)? as f64, n_mos),
                average_jitter_ms: ratio(r.get(6)?, r.get(5)?),
                average_loss_ratio: ratio(r.get(8)?, r.get(7)?),
                average_rtt_ms: ratio(r.get(10)?, r.get(9)?),
            };
            out.push((name, figures, n_mos));
        }
    }
    let mut groups = Vec::with_capacity(out.len());
    for (name, mut figures, n_mos) in out {
        figures.p10_mos = p10(&tx, dim, name.as_deref(), w, n_mos)?;
        groups.push((name, figures));
    }
    tx.finish()?;
    Ok(groups)
}

/// Nearest-rank 10th percentile of `quality_mos` in one group: the k-th smallest with
/// k = ⌈n/10⌉. The walk follows the `(group, quality_mos, created_at_ms)` index in MOS
/// order and checks the window on the index entry (the `+` keeps SQLite from picking
/// the time index and sorting instead), so it reads about a tenth of the group's
/// calls and no table rows.
fn p10(
    conn: &Connection,
    dim: Dim,
    group: Option<&str>,
    w: DayWindow,
    n: i64,
) -> Result<Option<f64>, ApiError> {
    if n <= 0 {
        return Ok(None);
    }
    let offset = (n + 9) / 10 - 1;
    let sql = match (dim, group.is_some()) {
        (Dim::Mno, _) => {
            "SELECT quality_mos FROM calls INDEXED BY api_calls_mno_mos WHERE mno = ?1 \
             AND quality_mos IS NOT NULL AND +created_at_ms >= ?2 AND +created_at_ms < ?3 \
             ORDER BY quality_mos LIMIT 1 OFFSET ?4"
        }
        (Dim::Agent, true) => {
            "SELECT quality_mos FROM calls INDEXED BY api_calls_agent_mos WHERE agent_id = ?1 \
             AND quality_mos IS NOT NULL AND +created_at_ms >= ?2 AND +created_at_ms < ?3 \
             ORDER BY quality_mos LIMIT 1 OFFSET ?4"
        }
        (Dim::Agent, false) => {
            "SELECT quality_mos FROM calls INDEXED BY api_calls_agent_mos WHERE agent_id IS NULL \
             AND ?1 IS NULL AND quality_mos IS NOT NULL AND +created_at_ms >= ?2 \
             AND +created_at_ms < ?3 ORDER BY quality_mos LIMIT 1 OFFSET ?4"
        }
    };
    let v = conn
        .prepare_cached(sql)?
        .query_row(
            rusqlite::params![group, w.start_ms(), w.end_ms(), offset],
            |r| r.get::<_, f64>(0),
        )
        .optional()?;
    Ok(v)
}
