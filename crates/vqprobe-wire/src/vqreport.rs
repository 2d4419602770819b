//! RFC 6035 voice quality reports: the `application/vq-rtcpxr` body phones and gateways
//! PUBLISH to a collector at the end of a call (`VQSessionReport`), during it
//! (`VQIntervalReport`) or when quality drops (`VQAlertReport`).
//!
//! The body is lines of `Name: value`; the metric lines hold space-separated
//! `KEY=value` parameters, and the lines after `LocalMetrics:` (what the reporting
//! endpoint received) differ from those after `RemoteMetrics:` (what its peer reported
//! to it in RTCP XR). Percentages (NLR, JDR, BLD, GLD) are returned as ratios 0–1.
//! Unknown lines and parameters are ignored; a missing `CallID` is an error because
//! without it the report cannot be attached to a call.

use std::net::IpAddr;

use thiserror::Error;

/// Why a body is not a usable RFC 6035 report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum VqReportError {
    /// The body is not UTF-8 text.
    #[error("vq-rtcpxr body is not UTF-8")]
    NotUtf8,
    /// The first line is not `VQSessionReport`, `VQIntervalReport` or `VQAlertReport`.
    #[error("not an RFC 6035 report")]
    NotAReport,
    /// No `CallID` line: the report names no call.
    #[error("vq-rtcpxr report without CallID")]
    NoCallId,
}

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VqReportKind {
    /// `VQSessionReport` (usually `: CallTerm`, at the end of the call).
    Session,
    /// `VQIntervalReport`.
    Interval,
    /// `VQAlertReport`.
    Alert,
}

/// `IP=… PORT=… SSRC=…` of `LocalAddr` / `RemoteAddr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VqAddr {
    /// Media address.
    pub ip: Option<IpAddr>,
    /// Media port.
    pub port: Option<u16>,
    /// The SSRC this endpoint sends with.
    pub ssrc: Option<u32>,
}

/// One metrics section (`LocalMetrics` or `RemoteMetrics`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VqMetrics {
    /// `SessionDesc: PT=`.
    pub payload_type: Option<u8>,
    /// `SessionDesc: PD=` (codec name).
    pub codec: Option<String>,
    /// `SessionDesc: PLC=` (1 disabled, 2 enhanced, 3 standard, as RFC 3611).
    pub plc: Option<u8>,
    /// `JitterBuffer: JBA=` (0 unknown, 2 non-adaptive, 3 adaptive).
    pub jb_adaptive: Option<u8>,
    /// `JitterBuffer: JBR=` adjustment rate.
    pub jb_rate: Option<u8>,
    /// `JBN=` nominal delay, ms.
    pub jb_nominal_ms: Option<f64>,
    /// `JBM=` current maximum delay, ms.
    pub jb_max_ms: Option<f64>,
    /// `JBX=` absolute maximum delay, ms.
    pub jb_abs_max_ms: Option<f64>,
    /// `PacketLoss: NLR=` network loss, ratio.
    pub loss_rate: Option<f64>,
    /// `JDR=` jitter buffer discards, ratio.
    pub discard_rate: Option<f64>,
    /// `BurstGapLoss: BLD=` burst density, ratio.
    pub burst_density: Option<f64>,
    /// `BD=` burst duration, ms.
    pub burst_duration_ms: Option<f64>,
    /// `GLD=` gap density, ratio.
    pub gap_density: Option<f64>,
    /// `GD=` gap duration, ms.
    pub gap_duration_ms: Option<f64>,
    /// `GMIN=`.
    pub gmin: Option<u8>,
    /// `Delay: RTD=` round trip, ms.
    pub round_trip_delay_ms: Option<f64>,
    /// `ESD=` end-system delay, ms.
    pub end_system_delay_ms: Option<f64>,
    /// `IAJ=` interarrival jitter, ms.
    pub jitter_ms: Option<f64>,
    /// `MAJ=` mean absolute jitter, ms.
    pub mean_abs_jitter_ms: Option<f64>,
    /// `Signal: SL=` dBm0.
    pub signal_level_dbm: Option<f64>,
    /// `NL=` noise level, dBm0.
    pub noise_level_dbm: Option<f64>,
    /// `RERL=` residual echo return loss, dB.
    pub rerl_db: Option<f64>,
    /// `QualityEst: RLQ=` listening R.
    pub r_lq: Option<f64>,
    /// `RCQ=` conversational R.
    pub r_cq: Option<f64>,
    /// `EXTR=` external R.
    pub ext_r: Option<f64>,
    /// `MOSLQ=`.
    pub mos_lq: Option<f64>,
    /// `MOSCQ=`.
    pub mos_cq: Option<f64>,
}

/// A parsed report.
#[derive(Debug, Clone, PartialEq)]
pub struct VqReport {
    /// Session, interval or alert.
    pub kind: VqReportKind,
    /// The Call-ID of the call reported on.
    pub call_id: String,
    /// `LocalAddr`: the reporting endpoint's media address and SSRC.
    pub local_addr: Option<VqAddr>,
    /// `RemoteAddr`: its peer's.
    pub remote_addr: Option<VqAddr>,
    /// What the reporting endpoint measured of the media it received.
    pub local: Option<VqMetrics>,
    /// What its peer reported (RTCP XR) of the media the reporting endpoint sent.
    pub remote: Option<VqMetrics>,
}

/// Parses an `application/vq-rtcpxr` body.
///
/// # Errors
/// [`VqReportError`] for a body that is not text, not a report, or names no call.
pub fn parse(body: &[u8]) -> Result<VqReport, VqReportError> {
    let text = std::str::from_utf8(body).map_err(|_| VqReportError::NotUtf8)?;
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().ok_or(VqReportError::NotAReport)?;
    let head = first.split(':').next().unwrap_or_default().trim();
    let kind = match head {
        "VQSessionReport" => VqReportKind::Session,
        "VQIntervalReport" => VqReportKind::Interval,
        "VQAlertReport" => VqReportKind::Alert,
        _ => return Err(VqReportError::NotAReport),
    };
    let mut report = VqReport {
        kind,
        call_id: String::new(),
        local_addr: None,
        remote_addr: None,
        local: None,
        remote: None,
    };
    // Which metrics section the parameter lines belong to: 0 none, 1 local, 2 remote.
    let mut section = 0u8;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        match name {
            "CallID" => report.call_id = value.to_string(),
            "LocalAddr" => report.local_addr = Some(addr(value)),
            "RemoteAddr" => report.remote_addr = Some(addr(value)),
            "LocalMetrics" => {
                section = 1;
                report.local.get_or_insert_with(VqMetrics::default);
            }
            "RemoteMetrics" => {
                section = 2;
                report.remote.get_or_insert_with(VqMetrics::default);
            }
            _ => {
                let m = match section {
                    1 => report.local.as_mut(),
                    2 => report.remote.as_mut(),
                    _ => None,
                };
                if let Some(m) = m {
                    metric_line(m, name, value);
                }
            }
        }
    }
    if report.call_id.is_empty() {
        return Err(VqReportError::NoCallId);
    }
    Ok(report)
}

/// `KEY=value` pairs of a parameter line (quoted values kept whole).
fn params(value: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = value;
    std::iter::from_fn(move || loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return None;
        }
        let (key, after) = rest.split_once('=')?;
        let (val, next) = if let Some(q) = after.strip_prefix('"') {
            match q.split_once('"') {
                Some((v, n)) => (v, n),
                None => (q, ""),
            }
        } else {
            match after.find(char::is_whitespace) {
                Some(i) => (&after[..i], &after[i..]),
                None => (after, ""),
            }
        };
        rest = next;
        let key = key.trim();
        if !key.contains(char::is_whitespace) {
            return Some((key, val));
        }
    })
}

fn addr(value: &str) -> VqAddr {
    let mut a = VqAddr {
        ip: None,
        port: None,
        ssrc: None,
    };
    for (k, v) in params(value) {
        match k {
            "IP" => a.ip = v.parse().ok(),
            "PORT" => a.port = v.parse().ok(),
            "SSRC" => {
                let hex = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X"));
                a.ssrc = match hex {
                    Some(h) => u32::from_str_radix(h, 16).ok(),
                    None => v.parse().ok(),
                };
            }
            _ => {}
        }
    }
    a
}

fn num(v: &str) -> Option<f64> {
    v.parse::<f64>().ok().filter(|x| x.is_finite())
}

fn pct(v: &str) -> Option<f64> {
    num(v).map(|p| p / 100.0)
}

fn metric_line(m: &mut VqMetrics, name: &str, value: &str) {
    for (k, v) in params(value) {
        match (name, k) {
            ("SessionDesc", "PT") => m.payload_type = v.parse().ok(),
            ("SessionDesc", "PD") => m.codec = Some(v.to_string()),
            ("SessionDesc", "PLC") => m.plc = v.parse().ok(),
            ("JitterBuffer", "JBA") => m.jb_adaptive = v.parse().ok(),
            ("JitterBuffer", "JBR") => m.jb_rate = v.parse().ok(),
            ("JitterBuffer", "JBN") => m.jb_nominal_ms = num(v),
            ("JitterBuffer", "JBM") => m.jb_max_ms = num(v),
            ("JitterBuffer", "JBX") => m.jb_abs_max_ms = num(v),
            ("PacketLoss", "NLR") => m.loss_rate = pct(v),
            ("PacketLoss", "JDR") => m.discard_rate = pct(v),
            ("BurstGapLoss", "BLD") => m.burst_density = pct(v),
            ("BurstGapLoss", "BD") => m.burst_duration_ms = num(v),
            ("BurstGapLoss", "GLD") => m.gap_density = pct(v),
            ("BurstGapLoss", "GD") => m.gap_duration_ms = num(v),
            ("BurstGapLoss", "GMIN") => m.gmin = v.parse().ok(),
            ("Delay", "RTD") => m.round_trip_delay_ms = num(v),
            ("Delay", "ESD") => m.end_system_delay_ms = num(v),
            ("Delay", "IAJ") => m.jitter_ms = num(v),
            ("Delay", "MAJ") => m.mean_abs_jitter_ms = num(v),
            ("Signal", "SL") => m.signal_level_dbm = num(v),
            ("Signal", "NL") => m.noise_level_dbm = num(v),
            ("Signal", "RERL") => m.rerl_db = num(v),
            ("QualityEst", "RLQ") => m.r_lq = num(v),
            ("QualityEst", "RCQ") => m.r_cq = num(v),
            ("QualityEst", "EXTR") => m.ext_r = num(v),
            ("QualityEst", "MOSLQ") => m.mos_lq = num(v),
            ("QualityEst", "MOSCQ") => m.mos_cq = num(v),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of RFC 6035 §5.1 (line breaks as a phone sends them).
    const RFC_EXAMPLE: &str = "VQSessionReport: CallTerm\r\n\
CallID: 6dg37f1890463\r\n\
LocalID: Alice <sip:alice@atlanta.example.org>\r\n\
RemoteID: Bill <sip:bill@biloxy.example.org>\r\n\
OrigID: Alice <sip:alice@atlanta.example.org>\r\n\
LocalGroup: example-phone-55671\r\n\
RemoteGroup: example-gateway-09871\r\n\
LocalAddr: IP=10.10.1.100 PORT=5000 SSRC=0x2468abcd\r\n\
LocalMAC: 00:1f:5b:cc:21:0f\r\n\
RemoteAddr:IP=11.1.1.150 PORT=5002 SSRC=0x1357efff\r\n\
RemoteMAC: 00:26:08:8e:95:02\r\n\
LocalMetrics:\r\n\
Timestamps:START=2004-10-10T18:23:43Z STOP=2004-10-10T18:29:02Z\r\n\
SessionDesc:PT=18 PD=G729 SR=8000 FD=20 FO=20 FPP=2 PPS=50 FMTP=\"annexb=no\" PLC=3 SSUP=on\r\n\
JitterBuffer:JBA=3 JBR=2 JBN=40 JBM=80 JBX=120\r\n\
PacketLoss:NLR=5.0 JDR=2.0\r\n\
BurstGapLoss:BLD=0 BD=0 GLD=2.0 GD=500 GMIN=16\r\n\
Delay:RTD=200 ESD=140 SOWD=200 IAJ=2 MAJ=10\r\n\
Signal:SL=-21 NL=-50 RERL=55\r\n\
QualityEst:RLQ=88 RCQ=85 EXTR=90 MOSLQ=4.2 MOSCQ=4.3 QoEEstAlg=P.564\r\n\
RemoteMetrics:\r\n\
Timestamps:START=2004-10-10T18:23:43Z STOP=2004-10-10T18:29:02Z\r\n\
SessionDesc:PT=18 PD=G729 SR=8000 FD=20 FO=20 FPP=2 PPS=50 FMTP=\"annexb=no\" PLC=3 SSUP=on\r\n\
JitterBuffer:JBA=3 JBR=2 JBN=40 JBM=80 JBX=120\r\n\
PacketLoss:NLR=5.0 JDR=2.0\r\n\
BurstGapLoss:BLD=0 BD=0 GLD=2.0 GD=500 GMIN=16\r\n\
Delay:RTD=200 ESD=140 SOWD=200 IAJ=2 MAJ=10\r\n\
Signal:SL=-21 NL=-45 RERL=55\r\n\
QualityEst:RLQ=90 RCQ=85 EXTR=90 MOSLQ=4.4 MOSCQ=4.3 QoEEstAlg=P.564\r\n\
DialogID:1890463548@alice.example.org;to-tag=8472761;from-tag=9123dh311\r\n";

    #[test]
    fn rfc_6035_example() {
        let r = parse(RFC_EXAMPLE.as_bytes()).expect("parses");
        assert_eq!(r.kind, VqReportKind::Session);
        assert_eq!(r.call_id, "6dg37f1890463");
        let la = r.local_addr.expect("local addr");
        assert_eq!(la.ip, Some("10.10.1.100".parse().expect("ip")));
        assert_eq!((la.port, la.ssrc), (Some(5000), Some(0x2468_abcd)));
        let ra = r.remote_addr.expect("remote addr");
        assert_eq!((ra.port, ra.ssrc), (Some(5002), Some(0x1357_efff)));
        let l = r.local.expect("local");
        assert_eq!(l.codec.as_deref(), Some("G729"));
        assert_eq!((l.payload_type, l.plc), (Some(18), Some(3)));
        assert_eq!((l.jb_adaptive, l.jb_rate), (Some(3), Some(2)));
        assert_eq!(
            (l.jb_nominal_ms, l.jb_max_ms, l.jb_abs_max_ms),
            (Some(40.0), Some(80.0), Some(120.0))
        );
        assert_eq!((l.loss_rate, l.discard_rate), (Some(0.05), Some(0.02)));
        assert_eq!(
            (l.gap_density, l.gap_duration_ms, l.gmin),
            (Some(0.02), Some(500.0), Some(16))
        );
        assert_eq!(
            (
                l.round_trip_delay_ms,
                l.end_system_delay_ms,
                l.jitter_ms,
                l.mean_abs_jitter_ms
            ),
            (Some(200.0), Some(140.0), Some(2.0), Some(10.0))
        );
        assert_eq!(
            (l.signal_level_dbm, l.noise_level_dbm, l.rerl_db),
            (Some(-21.0), Some(-50.0), Some(55.0))
        );
        assert_eq!(
            (l.r_lq, l.r_cq, l.ext_r),
            (Some(88.0), Some(85.0), Some(90.0))
        );
        assert_eq!((l.mos_lq, l.mos_cq), (Some(4.2), Some(4.3)));
        let rm = r.remote.expect("remote");
        assert_eq!(
            (rm.noise_level_dbm, rm.r_lq, rm.mos_lq),
            (Some(-45.0), Some(90.0), Some(4.4))
        );
    }

    #[test]
    fn bad_bodies() {
        assert_eq!(parse(b"\xff\xfe"), Err(VqReportError::NotUtf8));
        assert_eq!(parse(b"v=0\r\n"), Err(VqReportError::NotAReport));
        assert_eq!(
            parse(b"VQIntervalReport\r\nLocalMetrics:\r\n"),
            Err(VqReportError::NoCallId)
        );
        // Garbage parameters are skipped, never a panic.
        let r = parse(b"VQAlertReport: x\nCallID: c\nLocalMetrics:\nDelay: RTD= =5 ESD=x IAJ\"=\nQualityEst: MOSCQ=\"3.1\n")
            .expect("parses");
        assert_eq!(r.kind, VqReportKind::Alert);
        for n in 0..RFC_EXAMPLE.len() {
            let _ = parse(&RFC_EXAMPLE.as_bytes()[..n]);
        }
    }
}
