//! What signalling (SDP or pushed metadata) says about a media endpoint, and how a
//! payload type resolves to a codec and clock for the metrics.

use vqprobe_wire::Pt;

use crate::codec::{self, MediaKind};

/// One `a=rtpmap` (or static) payload format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadFormat {
    /// RTP payload type.
    pub pt: Pt,
    /// Encoding name as signalled (e.g. `opus`, `G726-32`).
    pub encoding: String,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
}

/// The payload formats negotiated for one media endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayloadMap {
    /// Formats in SDP order.
    pub formats: Vec<PayloadFormat>,
    /// `a=ptime`, when signalled.
    pub ptime_ms: Option<u32>,
}

impl PayloadMap {
    /// The signalled format for a payload type.
    pub fn get(&self, pt: Pt) -> Option<&PayloadFormat> {
        self.formats.iter().find(|f| f.pt == pt)
    }

    /// This map with the formats of `other` it lacks appended: what either side of a
    /// negotiation named (peers that answer one codec and send another still send a
    /// negotiated payload type; a type neither side named is not).
    pub fn union(&self, other: &PayloadMap) -> PayloadMap {
        let mut formats = self.formats.clone();
        for f in &other.formats {
            if self.get(f.pt).is_none() {
                formats.push(f.clone());
            }
        }
        PayloadMap {
            formats,
            ptime_ms: self.ptime_ms.or(other.ptime_ms),
        }
    }
}

/// How one payload type of a stream is treated.
#[derive(Debug, Clone, PartialEq)]
pub struct PtInfo {
    /// Codec name for reports (`PCMU`, `opus`, ...); `None` when unknown.
    pub name: Option<String>,
    /// Clock rate the probe uses (0 = unknown: inferred from the stream).
    pub clock: u32,
    /// Clock rate tshark would use (0 = tshark computes no jitter).
    pub tshark_clock: u32,
    /// Voice, events, comfort noise or video; unknown payloads count as voice.
    pub kind: MediaKind,
}

/// Resolves a payload type against the signalled map, then the static table.
pub fn resolve(pt: Pt, map: Option<&PayloadMap>) -> PtInfo {
    let signalled = map.and_then(|m| m.get(pt));
    let tshark_clock = tshark_clock(pt.0, signalled.map(|f| (f.encoding.as_str(), f.clock_rate)));
    if let Some(f) = signalled {
        let info = codec::by_name(&f.encoding);
        return PtInfo {
            name: Some(info.map_or_else(|| f.encoding.clone(), |c| c.name.to_string())),
            clock: f.clock_rate,
            tshark_clock,
            kind: info.map_or(MediaKind::Voice, |c| c.kind),
        };
    }
    if !pt.is_dynamic() {
        if let Some(c) = codec::by_static_pt(pt.0) {
            return PtInfo {
                name: Some(c.name.to_string()),
                clock: c.clock_rate,
                tshark_clock,
                kind: c.kind,
            };
        }
        if let Some(clock) = codec::static_clock_rate(pt.0) {
            return PtInfo {
                name: None,
                clock,
                tshark_clock,
                kind: if clock == 90_000 {
                    MediaKind::Video
                } else {
                    MediaKind::Voice
                },
            };
        }
    }
    PtInfo {
        name: None,
        clock: 0,
        tshark_clock,
        kind: MediaKind::Voice,
    }
}

/// tshark's clock rate for a payload type: the static map below 96; above, 0 for
/// telephone-event, else the SDP rate, else 0 (tshark has no name without SDP).
pub fn tshark_clock(pt: u8, sdp: Option<(&str, u32)>) -> u32 {
    if pt < 96 {
        return match pt {
            0 | 1 | 2 | 3 | 4 | 5 | 7 | 8 | 9 | 12 | 13 | 15 | 18 | 19 => 8000,
            6 => 16000,
            10 | 11 => 44100,
            16 => 11025,
            17 => 22050,
            14 | 25 | 26 | 28 | 31 | 32 | 33 | 34 => 90000,
            _ => 0,
        };
    }
    match sdp {
        Some((name, _)) if name.eq_ignore_ascii_case("telephone-event") => 0,
        Some((_, rate)) => rate,
        None => 0,
    }
}

/// Snaps a measured timestamp rate to the audio clock it most likely is.
///
/// Used when a dynamic payload type comes with no SDP (RTP-only captures): the RTP
/// timestamp advances at the clock rate, so ts-delta / arrival-delta over a few
/// packets names it to within the network jitter.
pub fn infer_clock(ts_delta: u32, arrival_delta_s: f64) -> Option<u32> {
    infer_clock_total(u64::from(ts_delta), arrival_delta_s)
}

/// [`infer_clock`] over summed deltas of many packet pairs.
pub fn infer_clock_total(ts_delta: u64, arrival_delta_s: f64) -> Option<u32> {
    const RATES: [u32; 7] = [8000, 12000, 16000, 24000, 32000, 48000, 90000];
    if arrival_delta_s <= 0.005 || ts_delta == 0 {
        return None;
    }
    let measured = ts_delta as f64 / arrival_delta_s;
    RATES
        .iter()
        .copied()
        .min_by(|a, b| {
            let da = (measured / f64::from(*a)).ln().abs();
            let db = (measured / f64::from(*b)).ln().abs();
            da.total_cmp(&db)
        })
        .filter(|r| (measured / f64::from(*r)).ln().abs() < 0.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_and_signalled() {
        let pcmu = resolve(Pt(0), None);
        assert_eq!((pcmu.name.as_deref(), pcmu.clock), (Some("PCMU"), 8000));
        let map = PayloadMap {
            formats: vec![PayloadFormat {
                pt: Pt(99),
                encoding: "opus".into(),
                clock_rate: 48000,
            }],
            ptime_ms: Some(20),
        };
        let opus = resolve(Pt(99), Some(&map));
        assert_eq!((opus.clock, opus.tshark_clock), (48000, 48000));
        let unknown = resolve(Pt(107), None);
        assert_eq!((unknown.clock, unknown.tshark_clock), (0, 0));
    }

    #[test]
    fn clock_inference() {
        assert_eq!(infer_clock(2880, 0.060), Some(48000));
        assert_eq!(infer_clock(160, 0.021), Some(8000));
        assert_eq!(infer_clock(320, 0.020), Some(16000));
        assert_eq!(infer_clock(160, 0.001), None);
    }

    #[test]
    fn tshark_clock_quirks() {
        assert_eq!(tshark_clock(9, None), 8000);
        assert_eq!(tshark_clock(101, Some(("telephone-event", 8000))), 0);
        assert_eq!(tshark_clock(111, Some(("opus", 48000))), 48000);
        assert_eq!(tshark_clock(107, None), 0);
    }
}
