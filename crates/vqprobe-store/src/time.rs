//! Time helpers of the store: RFC 3339 text ↔ unix milliseconds, and whole-day
//! windows (the unit of the daily rollup).

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Milliseconds in a day.
pub const MS_PER_DAY: i64 = 86_400_000;

/// RFC 3339 text to unix milliseconds (floored), `None` when it does not parse.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    unix_ms(t)
}

/// Unix ms of a timestamp, `None` out of range.
pub fn unix_ms(t: OffsetDateTime) -> Option<i64> {
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}

/// `YYYY-MM-DD` of a UTC day number.
pub fn day_string(day: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(day.saturating_mul(86_400))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let d = t.date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// A window of whole UTC calendar days, today included: `days = 7` on a Wednesday is
/// Thursday 00:00 UTC of the week before up to the end of today. Whole days make the
/// per-day series and the daily rollup agree exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayWindow {
    /// First day, days since the epoch.
    pub first_day: i64,
    /// Last day (today), days since the epoch.
    pub last_day: i64,
}

impl DayWindow {
    /// The last `days` UTC days ending with the day of `now_ms`.
    pub fn ending(now_ms: i64, days: u32) -> DayWindow {
        let last_day = now_ms.div_euclid(MS_PER_DAY);
        DayWindow {
            first_day: last_day - i64::from(days) + 1,
            last_day,
        }
    }

    /// Start of the window, unix ms (inclusive).
    pub fn start_ms(&self) -> i64 {
        self.first_day * MS_PER_DAY
    }

    /// End of the window, unix ms (exclusive).
    pub fn end_ms(&self) -> i64 {
        (self.last_day + 1) * MS_PER_DAY
    }
}

/// Divides for a mean, `None` for nothing to divide; rounded like every figure.
pub fn ratio(sum: f64, n: i64) -> Option<f64> {
    (n > 0).then(|| vqprobe_engine::record::round6(sum / n as f64))
}
