//! The receiving endpoint's own reports about a stream — RTCP XR VoIP Metrics and
//! Statistics Summary blocks (RFC 3611), RFC 6035 PUBLISH reports — kept as the latest
//! and the worst, in the record's units.

use vqprobe_wire::rtcp::{JitterBufferMode, PlcMethod, StatSummary, TtlKind, VoipMetrics};
use vqprobe_wire::vqreport::VqMetrics;

use crate::record::{XrMetrics, XrRecord, XrSource, XrSummaryRecord};

/// What the endpoint receiving a stream said about it.
#[derive(Debug, Clone, PartialEq)]
pub struct XrState {
    /// Where the latest report came from.
    pub source: XrSource,
    /// Reports received.
    pub reports: u64,
    /// The latest report.
    pub latest: XrMetrics,
    /// The worst so far (see [`quality`]).
    pub worst: XrMetrics,
    /// The latest Statistics Summary block (jitter still in timestamp units).
    pub summary: Option<StatSummary>,
}

/// A report's quality on the MOS scale, for picking the worst: MOS-CQ, else the R
/// factor's MOS, else MOS-LQ, else what its loss alone would leave.
pub fn quality(m: &XrMetrics) -> Option<f64> {
    m.mos_cq
        .or_else(|| m.r_factor_cq.or(m.r_factor).map(crate::emodel::mos_from_r))
        .or(m.mos_lq)
        .or_else(|| {
            let lost = m.loss_rate.unwrap_or(0.0) + m.discard_rate.unwrap_or(0.0);
            (m.loss_rate.is_some() || m.discard_rate.is_some()).then(|| 4.5 - 3.5 * lost.min(1.0))
        })
}

impl XrState {
    /// Adds a report to the stream's state (creating it on the first).
    pub fn add(state: &mut Option<Box<XrState>>, source: XrSource, m: XrMetrics) {
        match state {
            None => {
                *state = Some(Box::new(XrState {
                    source,
                    reports: 1,
                    latest: m.clone(),
                    worst: m,
                    summary: None,
                }))
            }
            Some(s) => {
                s.source = source;
                s.reports += 1;
                let worse = match (quality(&m), quality(&s.worst)) {
                    (Some(new), Some(old)) => new < old,
                    (Some(_), None) => true,
                    _ => false,
                };
                if worse {
                    s.worst = m.clone();
                }
                s.latest = m;
            }
        }
    }

    /// Keeps a Statistics Summary block (a stream reported on only by these still gets
    /// an `xr` with empty metrics).
    pub fn add_summary(state: &mut Option<Box<XrState>>, summary: StatSummary) {
        let s = state.get_or_insert_with(|| {
            Box::new(XrState {
                source: XrSource::RtcpXr,
                reports: 0,
                latest: XrMetrics::default(),
                worst: XrMetrics::default(),
                summary: None,
            })
        });
        s.summary = Some(summary);
    }

    /// The record, jitter converted with the stream's clock (`0`: unknown, left out).
    pub fn record(&self, clock: u32) -> XrRecord {
        XrRecord {
            source: self.source,
            reports: self.reports,
            latest: self.latest.clone(),
            worst: self.worst.clone(),
            summary: self.summary.map(|s| summary_record(&s, clock)),
        }
    }
}

fn summary_record(s: &StatSummary, clock: u32) -> XrSummaryRecord {
    let ms = |ts: Option<u32>| {
        ts.filter(|_| clock != 0)
            .map(|t| crate::record::round6(f64::from(t) * 1000.0 / f64::from(clock)))
    };
    XrSummaryRecord {
        begin_seq: s.begin_seq,
        end_seq: s.end_seq,
        lost_packets: s.lost_packets,
        dup_packets: s.dup_packets,
        min_jitter_ms: ms(s.min_jitter),
        max_jitter_ms: ms(s.max_jitter),
        mean_jitter_ms: ms(s.mean_jitter),
        dev_jitter_ms: ms(s.dev_jitter),
        ttl_kind: match s.ttl_kind {
            TtlKind::Ipv4Ttl => Some("ipv4_ttl".to_string()),
            TtlKind::Ipv6HopLimit => Some("ipv6_hop_limit".to_string()),
            TtlKind::None | TtlKind::Undefined => None,
        },
        min_ttl: s.min_ttl_or_hl,
        max_ttl: s.max_ttl_or_hl,
        mean_ttl: s.mean_ttl_or_hl,
        dev_ttl: s.dev_ttl_or_hl,
    }
}

fn plc_name(p: PlcMethod) -> Option<String> {
    match p {
        PlcMethod::Unspecified => None,
        PlcMethod::Disabled => Some("disabled".into()),
        PlcMethod::Enhanced => Some("enhanced".into()),
        PlcMethod::Standard => Some("standard".into()),
    }
}

/// An RFC 3611 VoIP Metrics block in the record's units.
pub fn from_voip_metrics(vm: &VoipMetrics) -> XrMetrics {
    let round = crate::record::round6;
    XrMetrics {
        loss_rate: Some(round(vm.loss_rate)),
        discard_rate: Some(round(vm.discard_rate)),
        burst_density: Some(round(vm.burst_density)),
        gap_density: Some(round(vm.gap_density)),
        burst_duration_ms: Some(f64::from(vm.burst_duration_ms)),
        gap_duration_ms: Some(f64::from(vm.gap_duration_ms)),
        gmin: Some(vm.gmin),
        round_trip_delay_ms: Some(f64::from(vm.round_trip_delay_ms)),
        end_system_delay_ms: Some(f64::from(vm.end_system_delay_ms)),
        signal_level_dbm: vm.signal_level.map(f64::from),
        noise_level_dbm: vm.noise_level.map(f64::from),
        rerl_db: vm.rerl.map(f64::from),
        r_factor: vm.r_factor.map(f64::from),
        r_factor_cq: None,
        ext_r_factor: vm.ext_r_factor.map(f64::from),
        mos_lq: vm.mos_lq,
        mos_cq: vm.mos_cq,
        plc: plc_name(vm.rx_config.plc),
        jb_adaptive: match vm.rx_config.jba {
            JitterBufferMode::Adaptive => Some(true),
            JitterBufferMode::NonAdaptive => Some(false),
            JitterBufferMode::Unknown | JitterBufferMode::Reserved => None,
        },
        jb_rate: Some(vm.rx_config.jb_rate),
        jb_nominal_ms: Some(f64::from(vm.jb_nominal)),
        jb_max_ms: Some(f64::from(vm.jb_maximum)),
        jb_abs_max_ms: Some(f64::from(vm.jb_abs_max)),
        jitter_ms: None,
    }
}

/// The metrics of an RFC 6035 report in the record's units.
pub fn from_vq_metrics(m: &VqMetrics) -> XrMetrics {
    XrMetrics {
        loss_rate: m.loss_rate,
        discard_rate: m.discard_rate,
        burst_density: m.burst_density,
        gap_density: m.gap_density,
        burst_duration_ms: m.burst_duration_ms,
        gap_duration_ms: m.gap_duration_ms,
        gmin: m.gmin,
        round_trip_delay_ms: m.round_trip_delay_ms,
        end_system_delay_ms: m.end_system_delay_ms,
        signal_level_dbm: m.signal_level_dbm,
        noise_level_dbm: m.noise_level_dbm,
        rerl_db: m.rerl_db,
        r_factor: m.r_lq,
        r_factor_cq: m.r_cq,
        ext_r_factor: m.ext_r,
        mos_lq: m.mos_lq,
        mos_cq: m.mos_cq,
        plc: match m.plc {
            Some(1) => Some("disabled".into()),
            Some(2) => Some("enhanced".into()),
            Some(3) => Some("standard".into()),
            _ => None,
        },
        jb_adaptive: match m.jb_adaptive {
            Some(3) => Some(true),
            Some(2) => Some(false),
            _ => None,
        },
        jb_rate: m.jb_rate,
        jb_nominal_ms: m.jb_nominal_ms,
        jb_max_ms: m.jb_max_ms,
        jb_abs_max_ms: m.jb_abs_max_ms,
        jitter_ms: m.jitter_ms,
    }
}
