//! An aggregate query, validated and ready to run ([`Plan`]), and the vocabulary it is
//! written in: group-by columns, operations, measured columns, time steps. The API
//! parses requests into plans; [`crate::aggregate`] runs them.

use serde::{Deserialize, Serialize};
use time::UtcOffset;

/// Columns a query can group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// Agent id.
    AgentId,
    /// Mobile network operator.
    Mno,
    /// ISO country of the remote number.
    Country,
    /// Codec.
    Codec,
    /// Call status.
    Status,
    /// Call direction.
    Direction,
    /// Why the call ended.
    EndedReason,
    /// The probe that measured the call (fleet aggregator only).
    ProbeId,
}

impl GroupBy {
    /// The name in requests and results, which is also the SQL column.
    pub fn name(self) -> &'static str {
        match self {
            GroupBy::AgentId => "agent_id",
            GroupBy::Mno => "mno",
            GroupBy::Country => "country",
            GroupBy::Codec => "codec",
            GroupBy::Status => "status",
            GroupBy::Direction => "direction",
            GroupBy::EndedReason => "ended_reason",
            GroupBy::ProbeId => "probe_id",
        }
    }
}

/// Aggregation operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// Sum of the values.
    Sum,
    /// Mean of the values.
    Avg,
    /// Number of values (`call_id`: number of calls).
    Count,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Median, nearest rank.
    P50,
    /// 90th percentile, nearest rank.
    P90,
    /// 95th percentile, nearest rank.
    P95,
    /// 99th percentile, nearest rank.
    P99,
}

impl OpKind {
    /// The name in requests and results.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Sum => "sum",
            OpKind::Avg => "avg",
            OpKind::Count => "count",
            OpKind::Min => "min",
            OpKind::Max => "max",
            OpKind::P50 => "p50",
            OpKind::P90 => "p90",
            OpKind::P95 => "p95",
            OpKind::P99 => "p99",
        }
    }

    /// The percentile, for the percentile operations.
    pub fn percentile(self) -> Option<i64> {
        match self {
            OpKind::P50 => Some(50),
            OpKind::P90 => Some(90),
            OpKind::P95 => Some(95),
            OpKind::P99 => Some(99),
            _ => None,
        }
    }
}

/// Columns operations apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Column))]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// The call's MOS (`quality_mos`, worst direction).
    Mos,
    /// R-factor of the worst direction.
    RFactor,
    /// Largest RFC 3550 jitter of any direction, ms.
    JitterMs,
    /// Largest loss ratio of any direction, 0–1.
    LossRatio,
    /// Round trip from RTCP, ms.
    RttMs,
    /// Talk time, seconds.
    DurationSeconds,
    /// The call itself: only `count`, which counts calls.
    CallId,
}

impl Measure {
    /// The name in requests and results.
    pub fn name(self) -> &'static str {
        match self {
            Measure::Mos => "mos",
            Measure::RFactor => "r_factor",
            Measure::JitterMs => "jitter_ms",
            Measure::LossRatio => "loss_ratio",
            Measure::RttMs => "rtt_ms",
            Measure::DurationSeconds => "duration_seconds",
            Measure::CallId => "call_id",
        }
    }

    /// The `calls` column behind it.
    pub fn sql(self) -> &'static str {
        match self {
            Measure::Mos => "quality_mos",
            other => other.name(),
        }
    }
}

/// Time buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Calendar minutes.
    Minute,
    /// Hours.
    Hour,
    /// Days, midnight to midnight in the query's time zone.
    Day,
    /// ISO weeks, from Monday 00:00 in the query's time zone.
    Week,
    /// Calendar months in the query's time zone.
    Month,
}

/// The name of a step in requests and messages.
pub fn step_name(step: Step) -> &'static str {
    match step {
        Step::Minute => "minute",
        Step::Hour => "hour",
        Step::Day => "day",
        Step::Week => "week",
        Step::Month => "month",
    }
}

/// A validated query, ready to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The query's name.
    pub name: String,
    /// Group columns, in request order.
    pub groups: Vec<GroupBy>,
    /// Operations with their result keys.
    pub ops: Vec<(OpKind, Measure, String)>,
    /// Range start, unix ms (inclusive).
    pub start_ms: i64,
    /// Range end, unix ms (exclusive).
    pub end_ms: i64,
    /// Bucket size.
    pub step: Option<Step>,
    /// Time zone of the buckets.
    pub offset: UtcOffset,
    /// How the zone is echoed.
    pub timezone: String,
}

/// Result rows per query (buckets × groups).
pub const MAX_ROWS: usize = 100_000;
