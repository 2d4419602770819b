//! Parsing of query-string values into typed values, each failure a 400 that names the
//! parameter, and the time helpers the handlers share.

use std::time::{SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, UtcOffset};

pub(crate) use vqprobe_store::time::{unix_ms, MS_PER_DAY};

use super::error::ApiError;

/// The `days` values the summary endpoints accept.
pub(crate) const ALLOWED_DAYS: [u32; 3] = [7, 30, 90];

/// Wall clock, unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `days`: absent means 7; anything but 7, 30 or 90 is refused.
pub(crate) fn parse_days(value: Option<&str>) -> Result<u32, ApiError> {
    let Some(v) = value else {
        return Ok(7);
    };
    match v.trim().parse::<u32>() {
        Ok(d) if ALLOWED_DAYS.contains(&d) => Ok(d),
        _ => Err(ApiError::bad_request(format!(
            "days must be one of 7, 30 or 90 (got {v:?})"
        ))),
    }
}

/// Longest filter value (an agent id, an MNO name), in characters.
pub(crate) const MAX_FILTER_LEN: usize = 256;

/// An optional filter value; an empty one is refused rather than silently matching
/// nothing (or everything), and so is one longer than [`MAX_FILTER_LEN`].
pub(crate) fn non_empty(name: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.is_empty() => Err(ApiError::bad_request(format!(
            "{name} must not be empty (leave it out to match any)"
        ))),
        Some(v) if v.chars().count() > MAX_FILTER_LEN => Err(ApiError::bad_request(format!(
            "{name} must be at most {MAX_FILTER_LEN} characters"
        ))),
        other => Ok(other),
    }
}

/// Query of the routes on one call: which probe's record (fleet aggregator only).
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProbeParam {
    /// The probe whose record is meant, when several probes saw the same call (fleet
    /// aggregator only; a probe answers 400). Without it the newest record.
    pub probe_id: Option<String>,
}

/// The probe a request is limited to. A probe's own store holds one probe and no
/// `probe_id`, so a filter on one is refused there (400) rather than ignored.
pub(crate) fn scope(
    app: &super::App,
    probe_id: Option<String>,
) -> Result<vqprobe_store::Scope, ApiError> {
    let probe_id = non_empty("probe_id", probe_id)?;
    if probe_id.is_some() && !app.db.has_probes() {
        return Err(ApiError::bad_request(
            "probe_id: this is a single probe; the filter is served by `vqprobe aggregate`",
        ));
    }
    Ok(vqprobe_store::Scope { probe_id })
}

/// Schema of `days`: one of 7, 30, 90.
pub(crate) fn days_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .enum_values(Some(ALLOWED_DAYS))
        .default(Some(7.into()))
        .build()
}

/// Schema of a string that is one of `values`.
pub(crate) fn string_enum(values: &[&str]) -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
}

/// Schema of a date, an RFC 3339 instant or null (`timeRange.start`, `.end`).
pub(crate) fn date_or_instant_or_null_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Type};
    AnyOfBuilder::new()
        .item(date_or_instant_schema())
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .build()
        .into()
}

/// Schema of a date or an RFC 3339 instant (`date_from`, `date_to`).
pub(crate) fn date_or_instant_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
    let of = |f| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(f)))
    };
    AnyOfBuilder::new()
        .item(of(KnownFormat::Date))
        .item(of(KnownFormat::DateTime))
        .build()
        .into()
}

/// A value from a fixed set (`status`, `direction`).
pub(crate) fn one_of(
    name: &str,
    value: Option<String>,
    allowed: &[&str],
) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if !allowed.contains(&v.as_str()) => Err(ApiError::bad_request(format!(
            "{name} must be one of {} (got {v:?})",
            allowed.join(", ")
        ))),
        other => Ok(other),
    }
}

/// A finite number.
pub(crate) fn parse_f64(name: &str, value: Option<&str>) -> Result<Option<f64>, ApiError> {
    let Some(v) = value else {
        return Ok(None);
    };
    match v.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(Some(x)),
        _ => Err(ApiError::bad_request(format!(
            "{name} must be a number (got {v:?})"
        ))),
    }
}

/// An integer in `min..=max`, `default` when absent.
pub(crate) fn parse_u32_in(
    name: &str,
    value: Option<&str>,
    default: u32,
    min: u32,
    max: u32,
) -> Result<u32, ApiError> {
    let Some(v) = value else {
        return Ok(default);
    };
    match v.trim().parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::bad_request(format!(
            "{name} must be an integer from {min} to {max} (got {v:?})"
        ))),
    }
}

/// Which bound of a half-open `[start, end)` range a value is parsed into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bound {
    /// A start: a date is its first instant, an instant is itself.
    Start,
    /// An inclusive end: a date includes the whole day (the result is the next
    /// midnight), an instant includes itself (the result is 1 ms later).
    EndInclusive,
    /// An exclusive end: a date still includes the whole day, an instant is itself.
    EndExclusive,
}

/// An instant as unix ms from RFC 3339 (`2026-04-10T12:00:00Z`, any offset) or a date
/// (`2026-04-10`, midnight at `offset`), as the `bound` of a half-open range.
pub(crate) fn parse_instant(
    name: &str,
    value: &str,
    bound: Bound,
    offset: UtcOffset,
) -> Result<i64, ApiError> {
    let v = value.trim();
    let bad = || {
        ApiError::bad_request(format!(
            "{name} must be an RFC 3339 timestamp (2026-04-10T12:00:00Z) or a date \
             (2026-04-10), got {value:?}"
        ))
    };
    if let Ok(t) = OffsetDateTime::parse(v, &Rfc3339) {
        let ms = unix_ms(t).ok_or_else(bad)?;
        return Ok(match bound {
            Bound::Start | Bound::EndExclusive => ms,
            Bound::EndInclusive => ms.saturating_add(1),
        });
    }
    let date = Date::parse(v, format_description!("[year]-[month]-[day]")).map_err(|_| bad())?;
    let day = match bound {
        Bound::Start => date,
        Bound::EndInclusive | Bound::EndExclusive => date.next_day().ok_or_else(bad)?,
    };
    unix_ms(day.midnight().assume_offset(offset)).ok_or_else(bad)
}

/// RFC 3339 of unix ms at `offset` (`Z` for UTC), whole seconds unless there are
/// milliseconds to show.
pub(crate) fn rfc3339_at(ms: i64, offset: UtcOffset) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset);
    t.format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vqprobe_store::time::{day_string, DayWindow};

    #[test]
    fn days_values() {
        assert_eq!(parse_days(None), Ok(7));
        assert_eq!(parse_days(Some("30")), Ok(30));
        assert_eq!(parse_days(Some("90")), Ok(90));
        for bad in ["14", "", "7d", "-7", "99999999999"] {
            let e = parse_days(Some(bad)).unwrap_err();
            assert!(e.to_string().contains("7, 30 or 90"), "{e}");
        }
    }

    #[test]
    fn day_window_is_whole_utc_days() {
        // 2026-04-10T15:00:00Z
        let now = 1_775_833_200_000;
        let w = DayWindow::ending(now, 7);
        assert_eq!(day_string(w.last_day), "2026-04-10");
        assert_eq!(day_string(w.first_day), "2026-04-04");
        assert_eq!(w.end_ms() - w.start_ms(), 7 * MS_PER_DAY);
        assert_eq!(w.start_ms() % MS_PER_DAY, 0);
    }

    #[test]
    fn instants_and_dates() {
        let utc = UtcOffset::UTC;
        let p = |v, e| parse_instant("date_from", v, e, utc);
        assert_eq!(p("1970-01-02", Bound::Start), Ok(MS_PER_DAY));
        assert_eq!(p("1970-01-02", Bound::EndInclusive), Ok(2 * MS_PER_DAY));
        assert_eq!(p("1970-01-02", Bound::EndExclusive), Ok(2 * MS_PER_DAY));
        assert_eq!(p("1970-01-01T00:00:01Z", Bound::Start), Ok(1000));
        assert_eq!(
            p("1970-01-01T01:00:01+01:00", Bound::EndInclusive),
            Ok(1001)
        );
        assert_eq!(
            p("1970-01-01T01:00:01+01:00", Bound::EndExclusive),
            Ok(1000)
        );
        let e = p("yesterday", Bound::Start).unwrap_err();
        assert!(e.to_string().starts_with("date_from must be"), "{e}");
        let plus = UtcOffset::from_hms(5, 30, 0).unwrap();
        assert_eq!(
            parse_instant("x", "1970-01-02", Bound::Start, plus),
            Ok(MS_PER_DAY - 19_800_000)
        );
        assert_eq!(rfc3339_at(0, utc), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_at(1500, plus), "1970-01-01T05:30:01.5+05:30");
    }
}
