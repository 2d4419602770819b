//! The 64-bit NTP timestamp of SRs and XR Receiver Reference Time blocks.

/// A 64-bit NTP timestamp as carried in an SR or an XR Receiver Reference
/// Time block: seconds since 1900 and a binary fraction of a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NtpTimestamp {
    /// Whole seconds since 1900-01-01 00:00 UTC (wraps in 2036).
    pub seconds: u32,
    /// Fraction of a second in units of 2^-32 s.
    pub fraction: u32,
}

impl NtpTimestamp {
    /// The middle 32 bits (low 16 of seconds, high 16 of fraction): the
    /// value a receiver echoes as LSR (RFC 3550 §6.4.1) or LRR (RFC 3611
    /// §4.5), so matching an RR to the SR it answers compares against this.
    #[must_use]
    pub fn middle32(&self) -> u32 {
        ((self.seconds & 0xffff) << 16) | (self.fraction >> 16)
    }

    /// Seconds since 1900 as a float, for display and differences; the NTP
    /// era is ignored because endpoints' clocks are not trusted anyway.
    #[must_use]
    pub fn as_secs_f64(&self) -> f64 {
        f64::from(self.seconds) + f64::from(self.fraction) / 4_294_967_296.0
    }
}
