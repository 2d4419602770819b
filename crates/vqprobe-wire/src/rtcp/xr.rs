//! Extended Reports (RFC 3611): Receiver Reference Time, DLRR, Statistics Summary and
//! VoIP Metrics blocks; other block types are skipped by their length.

use super::ntp::NtpTimestamp;
use super::reader::Reader;
use super::{
    DLRR_SUB_BLOCK_LEN, STAT_SUMMARY_LEN, VOIP_METRICS_LEN, XR_BT_DLRR, XR_BT_RRT,
    XR_BT_STAT_SUMMARY, XR_BT_VOIP_METRICS, XR_UNAVAILABLE,
};

/// One DLRR sub-block (RFC 3611 §4.5): the XR counterpart of LSR/DLSR,
/// letting a receiver-only endpoint get an RTT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DlrrSubBlock {
    /// The receiver whose Receiver Reference Time block is being answered.
    pub ssrc: u32,
    /// Middle 32 bits of that RRT block's NTP timestamp (0: none received).
    pub lrr: u32,
    /// Delay since that RRT block was received, 1/65536 s.
    pub dlrr: u32,
}

/// Packet loss concealment in use (RFC 3611 §4.7.6, RX config bits 7-6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PlcMethod {
    /// `00`: not specified.
    #[default]
    Unspecified,
    /// `01`: concealment disabled (silence insertion).
    Disabled,
    /// `10`: enhanced concealment.
    Enhanced,
    /// `11`: standard concealment (e.g. G.711 Appendix I).
    Standard,
}

/// Jitter buffer mode (RFC 3611 §4.7.6, RX config bits 5-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum JitterBufferMode {
    /// `00`: unknown.
    #[default]
    Unknown,
    /// `01`: reserved by RFC 3611.
    Reserved,
    /// `10`: fixed-size buffer.
    NonAdaptive,
    /// `11`: adaptive buffer.
    Adaptive,
}

/// The receiver configuration octet of a VoIP Metrics block, unpacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RxConfig {
    /// Packet loss concealment method.
    pub plc: PlcMethod,
    /// Jitter buffer adaptivity.
    pub jba: JitterBufferMode,
    /// Jitter buffer adjustment rate, 0..=15 (only meaningful if adaptive).
    pub jb_rate: u8,
}

impl RxConfig {
    fn from_octet(b: u8) -> Self {
        let plc = match b >> 6 {
            0 => PlcMethod::Unspecified,
            1 => PlcMethod::Disabled,
            2 => PlcMethod::Enhanced,
            _ => PlcMethod::Standard,
        };
        let jba = match (b >> 4) & 0b11 {
            0 => JitterBufferMode::Unknown,
            1 => JitterBufferMode::Reserved,
            2 => JitterBufferMode::NonAdaptive,
            _ => JitterBufferMode::Adaptive,
        };
        Self {
            plc,
            jba,
            jb_rate: b & 0x0f,
        }
    }
}

/// A VoIP Metrics report block (RFC 3611 §4.7): the far end's own view of
/// the call, including its E-model R factor and MOS estimates.
///
/// Fields that RFC 3611 marks with the sentinel 127 ("unavailable"), or
/// that hold a value outside the range the RFC allows, are `None` rather
/// than a number nobody should average.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct VoipMetrics {
    /// The source the metrics describe.
    pub ssrc: u32,
    /// Fraction of packets lost since the start of reception, 0..1.
    pub loss_rate: f64,
    /// Fraction of packets discarded (late/early) by the jitter buffer, 0..1.
    pub discard_rate: f64,
    /// Fraction of packets lost or discarded within bursts, 0..1.
    pub burst_density: f64,
    /// Fraction of packets lost or discarded within gaps, 0..1.
    pub gap_density: f64,
    /// Mean burst duration, ms.
    pub burst_duration_ms: u16,
    /// Mean gap duration, ms.
    pub gap_duration_ms: u16,
    /// Most recent round-trip time between the RTP interfaces, ms.
    pub round_trip_delay_ms: u16,
    /// Most recent end-system delay estimate, ms (0 is what senders write
    /// when they have no estimate; kept raw because 0 is also a value).
    pub end_system_delay_ms: u16,
    /// Speech signal level in dBm0 (signed), `None` if unavailable.
    pub signal_level: Option<i8>,
    /// Background noise level in dBm0 (signed), `None` if unavailable.
    pub noise_level: Option<i8>,
    /// Residual echo return loss in dB, `None` if unavailable.
    pub rerl: Option<u8>,
    /// Gap threshold used for the burst/gap metrics (RFC 3611 recommends 16).
    pub gmin: u8,
    /// R factor of this RTP segment, 0..=100, `None` if unavailable.
    pub r_factor: Option<u8>,
    /// R factor of an external segment (e.g. a cellular leg), 0..=100.
    pub ext_r_factor: Option<u8>,
    /// Listening-quality MOS, 1.0..=5.0 (wire value is MOS × 10).
    pub mos_lq: Option<f64>,
    /// Conversational-quality MOS, 1.0..=5.0 (wire value is MOS × 10).
    pub mos_cq: Option<f64>,
    /// Receiver configuration (PLC, jitter buffer mode and rate).
    pub rx_config: RxConfig,
    /// Jitter buffer nominal delay, ms.
    pub jb_nominal: u16,
    /// Jitter buffer current maximum delay, ms.
    pub jb_maximum: u16,
    /// Jitter buffer absolute maximum delay, ms.
    pub jb_abs_max: u16,
}

/// What the TTL or Hop Limit fields of a Statistics Summary block report (RFC 3611
/// §4.6, `ToH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TtlKind {
    /// `0`: not reported.
    #[default]
    None,
    /// `1`: IPv4 TTL values.
    Ipv4Ttl,
    /// `2`: IPv6 Hop Limit values.
    Ipv6HopLimit,
    /// `3`: undefined by RFC 3611.
    Undefined,
}

/// A Statistics Summary report block (RFC 3611 §4.6): loss, duplicates, jitter and
/// TTL over a sequence range of one source. Fields whose flag says "not reported" are
/// `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct StatSummary {
    /// The source reported on.
    pub ssrc: u32,
    /// First sequence number of the interval.
    pub begin_seq: u16,
    /// Last sequence number of the interval plus one (modulo 2^16).
    pub end_seq: u16,
    /// Packets lost in the interval (L flag).
    pub lost_packets: Option<u32>,
    /// Duplicated packets in the interval (D flag).
    pub dup_packets: Option<u32>,
    /// Minimum relative transit time difference, RTP timestamp units (J flag).
    pub min_jitter: Option<u32>,
    /// Maximum, timestamp units.
    pub max_jitter: Option<u32>,
    /// Mean, timestamp units.
    pub mean_jitter: Option<u32>,
    /// Standard deviation, timestamp units.
    pub dev_jitter: Option<u32>,
    /// What the TTL/Hop Limit fields hold.
    pub ttl_kind: TtlKind,
    /// Minimum TTL or Hop Limit.
    pub min_ttl_or_hl: Option<u8>,
    /// Maximum.
    pub max_ttl_or_hl: Option<u8>,
    /// Mean.
    pub mean_ttl_or_hl: Option<u8>,
    /// Standard deviation.
    pub dev_ttl_or_hl: Option<u8>,
}

/// One report block of an XR packet.
#[derive(Debug, Clone, PartialEq)]
pub enum XrBlock {
    /// BT 4: the receiver's wallclock, answered by a DLRR block.
    ReceiverReferenceTime(NtpTimestamp),
    /// BT 5: answers to Receiver Reference Time blocks.
    Dlrr(Vec<DlrrSubBlock>),
    /// BT 6: Statistics Summary.
    StatSummary(StatSummary),
    /// BT 7: VoIP Metrics.
    VoipMetrics(VoipMetrics),
    /// Any other block type, skipped by its length (RFC 3611 §3 asks
    /// receivers to ignore blocks they do not understand).
    Unknown {
        /// Block type.
        bt: u8,
        /// Bytes of block content after the 4-byte block header.
        len: usize,
    },
}

/// An Extended Report packet (PT 207).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Xr {
    /// SSRC of the originator of this XR packet.
    pub ssrc: u32,
    /// Report blocks in wire order.
    pub blocks: Vec<XrBlock>,
}

pub(super) fn parse_xr(body: &[u8]) -> Result<Xr, &'static str> {
    let mut r = Reader::new(body);
    let ssrc = r.u32().ok_or("XR sender SSRC missing")?;
    let mut blocks = Vec::new();
    while r.remaining() > 0 {
        let [bt, type_specific, len_hi, len_lo] =
            r.array::<4>().ok_or("XR block header truncated")?;
        // Block length counts the words after the block header (RFC 3611 §3).
        let len = usize::from(u16::from_be_bytes([len_hi, len_lo])) * 4;
        let content = r.take(len).ok_or("XR block overruns packet")?;
        blocks.push(parse_xr_block_flags(bt, type_specific, content)?);
    }
    Ok(Xr { ssrc, blocks })
}

/// One block, with its header's type-specific octet (the Statistics Summary flags).
pub(super) fn parse_xr_block_flags(
    bt: u8,
    flags: u8,
    content: &[u8],
) -> Result<XrBlock, &'static str> {
    let mut r = Reader::new(content);
    match bt {
        XR_BT_STAT_SUMMARY => {
            if content.len() != STAT_SUMMARY_LEN {
                return Err("XR Statistics Summary block length is not 9");
            }
            Ok(XrBlock::StatSummary(parse_stat_summary(flags, &mut r)))
        }
        XR_BT_RRT => {
            if content.len() != 8 {
                return Err("XR Receiver Reference Time block length is not 2");
            }
            Ok(XrBlock::ReceiverReferenceTime(NtpTimestamp {
                seconds: r.u32().unwrap_or_default(),
                fraction: r.u32().unwrap_or_default(),
            }))
        }
        XR_BT_DLRR => {
            if !content
                .chunks_exact(DLRR_SUB_BLOCK_LEN)
                .remainder()
                .is_empty()
            {
                return Err("XR DLRR block length is not a multiple of 3");
            }
            let mut subs = Vec::with_capacity(content.len() / DLRR_SUB_BLOCK_LEN);
            while r.remaining() > 0 {
                subs.push(DlrrSubBlock {
                    ssrc: r.u32().unwrap_or_default(),
                    lrr: r.u32().unwrap_or_default(),
                    dlrr: r.u32().unwrap_or_default(),
                });
            }
            Ok(XrBlock::Dlrr(subs))
        }
        XR_BT_VOIP_METRICS => {
            if content.len() != VOIP_METRICS_LEN {
                return Err("XR VoIP Metrics block length is not 8");
            }
            Ok(XrBlock::VoipMetrics(parse_voip_metrics(&mut r)))
        }
        _ => Ok(XrBlock::Unknown {
            bt,
            len: content.len(),
        }),
    }
}

/// Decodes a Statistics Summary block body (exactly [`STAT_SUMMARY_LEN`] bytes,
/// checked by the caller) with the L, D, J and ToH flags of its header.
fn parse_stat_summary(flags: u8, r: &mut Reader<'_>) -> StatSummary {
    let (l, d, j) = (flags & 0x80 != 0, flags & 0x40 != 0, flags & 0x20 != 0);
    let ttl_kind = match (flags >> 3) & 0b11 {
        0 => TtlKind::None,
        1 => TtlKind::Ipv4Ttl,
        2 => TtlKind::Ipv6HopLimit,
        _ => TtlKind::Undefined,
    };
    let ssrc = r.u32().unwrap_or_default();
    let begin_seq = r.u16().unwrap_or_default();
    let end_seq = r.u16().unwrap_or_default();
    let lost = r.u32().unwrap_or_default();
    let dup = r.u32().unwrap_or_default();
    let [min_j, max_j, mean_j, dev_j] = [(); 4].map(|()| r.u32().unwrap_or_default());
    let [min_t, max_t, mean_t, dev_t] = r.array::<4>().unwrap_or_default();
    let ttl = ttl_kind != TtlKind::None;
    StatSummary {
        ssrc,
        begin_seq,
        end_seq,
        lost_packets: l.then_some(lost),
        dup_packets: d.then_some(dup),
        min_jitter: j.then_some(min_j),
        max_jitter: j.then_some(max_j),
        mean_jitter: j.then_some(mean_j),
        dev_jitter: j.then_some(dev_j),
        ttl_kind,
        min_ttl_or_hl: ttl.then_some(min_t),
        max_ttl_or_hl: ttl.then_some(max_t),
        mean_ttl_or_hl: ttl.then_some(mean_t),
        dev_ttl_or_hl: ttl.then_some(dev_t),
    }
}

/// Decodes a VoIP Metrics block body; the caller has checked it is exactly
/// [`VOIP_METRICS_LEN`] bytes, so the defaults are never used.
pub(super) fn parse_voip_metrics(r: &mut Reader<'_>) -> VoipMetrics {
    let ssrc = r.u32().unwrap_or_default();
    let [loss, discard, burst_d, gap_d] = r.array::<4>().unwrap_or_default();
    let burst_duration_ms = r.u16().unwrap_or_default();
    let gap_duration_ms = r.u16().unwrap_or_default();
    let round_trip_delay_ms = r.u16().unwrap_or_default();
    let end_system_delay_ms = r.u16().unwrap_or_default();
    let [signal, noise, rerl, gmin] = r.array::<4>().unwrap_or_default();
    let [r_factor, ext_r_factor, mos_lq, mos_cq] = r.array::<4>().unwrap_or_default();
    let [rx_config, _reserved] = r.array::<2>().unwrap_or_default();
    VoipMetrics {
        ssrc,
        loss_rate: per_256(loss),
        discard_rate: per_256(discard),
        burst_density: per_256(burst_d),
        gap_density: per_256(gap_d),
        burst_duration_ms,
        gap_duration_ms,
        round_trip_delay_ms,
        end_system_delay_ms,
        signal_level: dbm0(signal),
        noise_level: dbm0(noise),
        rerl: (rerl != XR_UNAVAILABLE).then_some(rerl),
        gmin,
        r_factor: r_factor_value(r_factor),
        ext_r_factor: r_factor_value(ext_r_factor),
        mos_lq: mos_value(mos_lq),
        mos_cq: mos_value(mos_cq),
        rx_config: RxConfig::from_octet(rx_config),
        jb_nominal: r.u16().unwrap_or_default(),
        jb_maximum: r.u16().unwrap_or_default(),
        jb_abs_max: r.u16().unwrap_or_default(),
    }
}

/// RFC 3611 rates and densities are fixed point with the binary point at
/// the left edge, i.e. n/256.
pub(super) fn per_256(v: u8) -> f64 {
    f64::from(v) / 256.0
}

/// Signed dBm0 level; 127 is "unavailable" (RFC 3611 §4.7.4).
pub(super) fn dbm0(v: u8) -> Option<i8> {
    (v != XR_UNAVAILABLE).then_some(i8::from_be_bytes([v]))
}

/// R factor 0..=100; 127 means unavailable and anything else above 100 is
/// not an R factor, so both become `None`.
pub(super) fn r_factor_value(v: u8) -> Option<u8> {
    (v <= 100).then_some(v)
}

/// MOS × 10 in 10..=50; 127 means unavailable, and values outside the MOS
/// scale are garbage, so both become `None`.
pub(super) fn mos_value(v: u8) -> Option<f64> {
    (10..=50).contains(&v).then(|| f64::from(v) / 10.0)
}
