//! Packet time as a type. The engine never reads a clock: every instant it knows came
//! with a packet (its capture timestamp) or with an explicit tick from its driver.

use std::fmt;
use std::time::Duration;

/// An instant: nanoseconds since the Unix epoch, as capture timestamps are. Arithmetic
/// saturates, so a hostile timestamp (year 2262 or 1677) cannot overflow anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The earliest representable instant (used as "never").
    pub const MIN: Timestamp = Timestamp(i64::MIN);
    /// The latest representable instant.
    pub const MAX: Timestamp = Timestamp(i64::MAX);

    /// From nanoseconds since the epoch.
    pub const fn from_nanos(ns: i64) -> Timestamp {
        Timestamp(ns)
    }

    /// From whole seconds since the epoch.
    pub const fn from_secs(s: i64) -> Timestamp {
        Timestamp(s.saturating_mul(1_000_000_000))
    }

    /// From milliseconds since the epoch.
    pub const fn from_millis(ms: i64) -> Timestamp {
        Timestamp(ms.saturating_mul(1_000_000))
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// Milliseconds since the epoch (floored).
    pub const fn as_millis(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// Signed nanoseconds from `earlier` to `self` (saturating).
    pub const fn nanos_since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// Seconds from `earlier` to `self`, as a float.
    pub fn secs_since(self, earlier: Timestamp) -> f64 {
        self.nanos_since(earlier) as f64 / 1e9
    }

    /// `self + d`, saturating.
    pub fn plus(self, d: Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
        )
    }

    /// `self - d`, saturating.
    pub fn minus(self, d: Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_sub(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
        )
    }

    /// `self + ns`, saturating.
    pub const fn add_nanos(self, ns: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(ns))
    }

    /// Whether at least `d` has passed from `earlier` to `self`.
    pub fn elapsed_since(self, earlier: Timestamp, d: Duration) -> bool {
        self.nanos_since(earlier) >= i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
    }

    /// RFC 3339 UTC with millisecond precision (`2026-12-04T16:24:46.123Z`).
    pub fn rfc3339(self) -> String {
        crate::record::rfc3339(self.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturates_and_formats() {
        assert_eq!(Timestamp::MAX.plus(Duration::from_secs(1)), Timestamp::MAX);
        assert_eq!(Timestamp::MIN.minus(Duration::from_secs(1)), Timestamp::MIN);
        assert_eq!(
            Timestamp::from_nanos(1_700_000_000_123_456_789).rfc3339(),
            "2023-11-14T22:13:20.123Z"
        );
        let a = Timestamp::from_secs(10);
        assert_eq!(a.nanos_since(Timestamp::from_secs(4)), 6_000_000_000);
        assert!(a.elapsed_since(Timestamp::from_secs(4), Duration::from_secs(6)));
        assert!(!a.elapsed_since(Timestamp::from_secs(5), Duration::from_secs(6)));
        assert!(a.elapsed_since(Timestamp::MIN, Duration::from_secs(6)));
    }
}
