//! Sender and Receiver Reports (RFC 3550 §6.4.1, §6.4.2) and their reception report
//! blocks.

use super::ntp::NtpTimestamp;
use super::reader::Reader;
use super::REPORT_BLOCK_LEN;

/// The report blocks of one SR or RR: inline up to two (a two-party call's endpoint
/// reports on one source), so reading a report allocates nothing.
pub type ReportBlocks = smallvec::SmallVec<[ReportBlock; 2]>;

/// One reception report block (RFC 3550 §6.4.1): what the reporter saw of
/// the stream sent by `ssrc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ReportBlock {
    /// The source this block reports on (the media sender, not the reporter).
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256 units.
    pub fraction_lost: u8,
    /// Cumulative packets lost, a 24-bit signed field sign-extended here:
    /// duplicates make it negative (RFC 3550 §6.4.1, A.3).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received (cycles << 16 | max seq).
    pub ext_highest_seq: u32,
    /// Interarrival jitter in RTP timestamp units of the reported stream.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received from
    /// `ssrc`; 0 means no SR has been received yet, so no RTT is possible.
    pub lsr: u32,
    /// Delay between receiving that SR and sending this report, 1/65536 s.
    pub dlsr: u32,
}

impl ReportBlock {
    /// Fraction lost as a ratio in 0..1 (the wire value is out of 256).
    #[must_use]
    pub fn fraction_lost_ratio(&self) -> f64 {
        f64::from(self.fraction_lost) / 256.0
    }

    /// DLSR in seconds.
    #[must_use]
    pub fn dlsr_seconds(&self) -> f64 {
        f64::from(self.dlsr) / 65536.0
    }

    /// Jitter in milliseconds given the reported stream's RTP clock rate;
    /// `None` for a zero clock rate, which would otherwise divide by zero.
    #[must_use]
    pub fn jitter_ms(&self, clock_rate: u32) -> Option<f64> {
        (clock_rate != 0).then(|| f64::from(self.jitter) * 1000.0 / f64::from(clock_rate))
    }
}

/// A Sender Report (PT 200).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SenderReport {
    /// SSRC of the sender of this report.
    pub ssrc: u32,
    /// Sender's wallclock when the report was sent.
    pub ntp: NtpTimestamp,
    /// RTP timestamp corresponding to `ntp`, in the sender's media clock.
    pub rtp_ts: u32,
    /// RTP data packets sent since the start of transmission.
    pub packet_count: u32,
    /// RTP payload octets sent since the start of transmission.
    pub octet_count: u32,
    /// Reception reports about the streams this sender receives.
    pub reports: ReportBlocks,
}

/// A Receiver Report (PT 201).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReceiverReport {
    /// SSRC of the sender of this report.
    pub ssrc: u32,
    /// Reception reports, one per source heard.
    pub reports: ReportBlocks,
}

pub(super) fn parse_report_blocks(
    r: &mut Reader<'_>,
    count: u8,
) -> Result<ReportBlocks, &'static str> {
    let mut reports = ReportBlocks::new();
    for _ in 0..count {
        let bytes = r
            .array::<REPORT_BLOCK_LEN>()
            .ok_or("report count exceeds packet length")?;
        let mut b = Reader::new(&bytes);
        // Infallible: exactly REPORT_BLOCK_LEN bytes are read from a buffer
        // of that size; the defaults are never used.
        let ssrc = b.u32().unwrap_or_default();
        let [fraction_lost, c0, c1, c2] = b.array::<4>().unwrap_or_default();
        reports.push(ReportBlock {
            ssrc,
            fraction_lost,
            // Put the 24 bits at the top, then an arithmetic shift drags
            // the sign bit down: 0xFFFFFF becomes -1.
            cumulative_lost: i32::from_be_bytes([c0, c1, c2, 0]) >> 8,
            ext_highest_seq: b.u32().unwrap_or_default(),
            jitter: b.u32().unwrap_or_default(),
            lsr: b.u32().unwrap_or_default(),
            dlsr: b.u32().unwrap_or_default(),
        });
    }
    // Bytes left over are profile-specific extensions (RFC 3550 §6.4.1),
    // legitimately ignored.
    Ok(reports)
}

pub(super) fn parse_sr(body: &[u8], count: u8) -> Result<SenderReport, &'static str> {
    let mut r = Reader::new(body);
    let mut field = || r.u32().ok_or("sender info shorter than 24 bytes");
    let ssrc = field()?;
    let ntp = NtpTimestamp {
        seconds: field()?,
        fraction: field()?,
    };
    let rtp_ts = field()?;
    let packet_count = field()?;
    let octet_count = field()?;
    Ok(SenderReport {
        ssrc,
        ntp,
        rtp_ts,
        packet_count,
        octet_count,
        reports: parse_report_blocks(&mut r, count)?,
    })
}

pub(super) fn parse_rr(body: &[u8], count: u8) -> Result<ReceiverReport, &'static str> {
    let mut r = Reader::new(body);
    let ssrc = r.u32().ok_or("reporter SSRC missing")?;
    Ok(ReceiverReport {
        ssrc,
        reports: parse_report_blocks(&mut r, count)?,
    })
}
