//! Interarrival jitter two ways: RFC 3550 A.8 (the contract's `jitter_ms`) and
//! tshark 4.0's `rtp,streams` statistics (`max_jitter_ms`, `mean_jitter_ms`,
//! `max_delta_ms`), so that figures can be checked against tshark on the same capture.

/// RFC 3550 A.8 estimator, kept in RTP timestamp units as the RFC does.
#[derive(Debug, Clone, Copy, Default)]
pub struct RfcJitter {
    prev_transit: Option<f64>,
    jitter: f64,
}

impl RfcJitter {
    /// Feeds one packet: arrival in seconds, RTP timestamp, clock in Hz.
    ///
    /// Transit is computed in timestamp units with 32-bit wrapping differences, so a
    /// timestamp wrap does not disturb it.
    pub fn update(&mut self, arrival_s: f64, ts: u32, clock: u32) {
        let arrival_units = arrival_s * f64::from(clock);
        let transit = arrival_units - f64::from(ts);
        if let Some(prev) = self.prev_transit {
            // Wrap-safe: the difference of two transits modulo 2^32.
            let mut d = transit - prev;
            let span = 4_294_967_296.0;
            d -= span * (d / span).round();
            self.jitter += (d.abs() - self.jitter) / 16.0;
        }
        self.prev_transit = Some(transit);
    }

    /// Current value in timestamp units.
    pub fn units(&self) -> f64 {
        self.jitter
    }

    /// Current value in milliseconds at the given clock.
    pub fn ms(&self, clock: u32) -> f64 {
        if clock == 0 {
            0.0
        } else {
            self.jitter * 1000.0 / f64::from(clock)
        }
    }

    /// Forgets the previous transit (the source restarted its timeline).
    pub fn reset_transit(&mut self) {
        self.prev_transit = None;
    }
}

/// Static payload types tshark treats as comfort noise.
const PT_CN: u8 = 13;
const PT_CN_OLD: u8 = 19;

/// tshark 4.0.17 `rtppacket_analyse` statistics (ui/tap-rtp-analysis.c), in ms.
///
/// Kept bug-for-bug: the clock divisor is `clock/1000` in integer arithmetic, the
/// nominal time is relative to the stream's first timestamp, out-of-order packets are
/// included, and the mean divides by the number of packets before this one. Packets
/// excluded from max/mean: the first, marker-bit packets, CN and the packet after CN.
#[derive(Debug, Clone, Copy, Default)]
pub struct TsharkStats {
    started: bool,
    first_ts: u32,
    time_ms: f64,
    last_nominal: f64,
    jitter: f64,
    delta: f64,
    prev_pt: u8,
    total: u64,
    /// Largest jitter among included packets.
    pub max_jitter: f64,
    /// Running mean jitter as tshark computes it.
    pub mean_jitter: f64,
    /// Largest gap between consecutive arrivals among included packets.
    pub max_delta: f64,
    /// Whether any packet had a clock tshark knows (else it shows no jitter).
    pub had_clock: bool,
}

impl TsharkStats {
    /// Feeds one packet in arrival order; `clock` is tshark's idea of the rate (0 when
    /// it would not know it, which disables jitter as tshark does).
    pub fn update(&mut self, time_ms: f64, ts: u32, pt: u8, marker: bool, clock: u32) {
        if !self.started {
            self.started = true;
            self.first_ts = ts;
            self.time_ms = time_ms;
            self.last_nominal = 0.0;
            self.prev_pt = pt;
            self.total = 1;
            return;
        }
        let is_cn = pt == PT_CN || pt == PT_CN_OLD;
        let follows_cn = self.prev_pt == PT_CN || self.prev_pt == PT_CN_OLD;
        self.prev_pt = pt;
        let mut current_jitter = 0.0;
        let divisor = clock / 1000;
        self.had_clock |= divisor != 0;
        if divisor != 0 {
            let nominal = f64::from(ts.wrapping_sub(self.first_ts)) / f64::from(divisor);
            let expected = self.time_ms + (nominal - self.last_nominal);
            let diff = (time_ms - expected).abs();
            current_jitter = (15.0 * self.jitter + diff) / 16.0;
            self.delta = time_ms - self.time_ms;
            self.jitter = current_jitter;
            self.last_nominal = nominal;
        } else {
            self.delta = time_ms - self.time_ms;
        }
        if !marker && !is_cn && !follows_cn {
            if self.delta > self.max_delta {
                self.max_delta = self.delta;
            }
            if divisor != 0 {
                if self.jitter > self.max_jitter {
                    self.max_jitter = self.jitter;
                }
                let n = self.total as f64;
                self.mean_jitter = (self.mean_jitter * (n - 1.0) + current_jitter) / n;
            }
        }
        self.time_ms = time_ms;
        self.total += 1;
    }

    /// The running jitter (tshark's "Jitter" column for the last packet).
    pub fn jitter(&self) -> f64 {
        self.jitter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_jitter_constant_offset_is_zero() {
        let mut j = RfcJitter::default();
        for i in 0..100u32 {
            j.update(f64::from(i) * 0.02 + 5.0, i * 160, 8000);
        }
        assert!(j.units().abs() < 1e-9);
    }

    #[test]
    fn rfc_jitter_single_step() {
        // One packet 8 ms late: |D| = 64 units, J = 64/16 = 4 units = 0.5 ms.
        let mut j = RfcJitter::default();
        j.update(0.0, 0, 8000);
        j.update(0.028, 160, 8000);
        assert!((j.units() - 4.0).abs() < 1e-9);
        assert!((j.ms(8000) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn rfc_jitter_timestamp_wrap() {
        // Wireshark's unit-test case: 0xFFFFFF00 -> 0x10 is 272 units ahead.
        let mut j = RfcJitter::default();
        j.update(0.0, 0xFFFF_FF00, 8000);
        j.update(0.034, 0x10, 8000);
        assert!((j.units() - 0.0).abs() < 1e-6);
    }

    #[test]
    fn tshark_excludes_first_and_marker() {
        let mut s = TsharkStats::default();
        s.update(0.0, 0, 0, false, 8000);
        s.update(100.0, 160, 0, true, 8000);
        assert_eq!(s.max_delta, 0.0);
        s.update(120.0, 320, 0, false, 8000);
        assert_eq!(s.max_delta, 20.0);
    }
}
