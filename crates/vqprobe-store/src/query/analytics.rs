//! The summary queries: volume, resolution, duration and MOS over a window of whole
//! days, and the per-MNO / per-agent / per-country quality tables. Counts, sums and ratios come from
//! the daily rollup (see [`crate::schema`]); the p10 MOS is an exact nearest-rank
//! percentile found by walking one group's calls in MOS order on a covering index, so
//! no query reads more than a small fraction of the calls.

use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::time::{day_string, ratio, DayWindow};

/// Calls on one UTC day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DayCount {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    /// Calls created that day.
    pub count: u64,
}

/// Response of `GET /v1/analytics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MnoRow {
    /// Mobile network operator (`unknown` when no prefix matched).
    pub mno: String,
    /// Its figures.
    #[serde(flatten)]
    pub figures: QualityFigures,
}

/// One row of `GET /v1/analytics/agents`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentRow {
    /// Agent; `null` for calls without one.
    pub agent_id: Option<String>,
    /// Its figures.
    #[serde(flatten)]
    pub figures: QualityFigures,
}

/// One row of `GET /v1/analytics/countries`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CountryRow {
    /// ISO 3166-1 alpha-2 country of the remote party; `null` for calls whose remote
    /// number could not be placed (none, withheld, an extension, a short code).
    pub country: Option<String>,
    /// Its figures.
    #[serde(flatten)]
    pub figures: QualityFigures,
}

/// Which table a quality breakdown is by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dim {
    /// Per MNO.
    Mno,
    /// Per agent.
    Agent,
    /// Per country of the remote party.
    Country,
}

/// A group's name (`None`: calls without an agent or a country) and its figures.
pub type Group = (Option<String>, QualityFigures);

/// Volume, resolution, duration and MOS of the window, optionally for one agent
/// and/or one MNO.
pub fn summary_query(
    conn: &Connection,
    w: DayWindow,
    agent: Option<&str>,
    mno: Option<&str>,
) -> Result<Summary, StoreError> {
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

/// Quality figures per MNO, agent or country over the window, most calls first. One read
/// transaction: the rollup's counts and the percentile walk see the same snapshot.
pub fn breakdown_query(
    conn: &Connection,
    w: DayWindow,
    dim: Dim,
) -> Result<Vec<Group>, StoreError> {
    // One read transaction: the rollup's counts and the percentile walk see the same
    // snapshot, so the rank is right even while the daemon writes.
    let tx = conn.unchecked_transaction()?;
    let key = match dim {
        Dim::Mno => "mno",
        Dim::Agent => "agent_id",
        Dim::Country => "country",
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
            // '' is the rollup's stand-in for "no agent" and "no country".
            let name = (!(dim != Dim::Mno && name.is_empty())).then_some(name);
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
) -> Result<Option<f64>, StoreError> {
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
        (Dim::Country, true) => {
            "SELECT quality_mos FROM calls INDEXED BY api_calls_country_mos WHERE country = ?1 \
             AND quality_mos IS NOT NULL AND +created_at_ms >= ?2 AND +created_at_ms < ?3 \
             ORDER BY quality_mos LIMIT 1 OFFSET ?4"
        }
        (Dim::Country, false) => {
            "SELECT quality_mos FROM calls INDEXED BY api_calls_country_mos WHERE country IS NULL \
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
