//! Codec table: RTP clock rates and the E-model equipment values (Ie, Bpl)
//! per codec, keyed by static payload type or rtpmap encoding name.
//!
//! Ie/Bpl come from ITU-T G.113 Appendix I where it has them
//! (`reference/ALGORITHMS.md` §2). Where it has none (iLBC, AMR, AMR-WB, Opus,
//! Speex, G.722 on the narrowband scale, Bpl for GSM-FR and G.726) the entry
//! carries an assumed value and says why in [`CodecInfo::source`].
//!
//! Every codec is scored on the narrowband G.107 scale (`wideband: false`):
//! no ITU wideband Ie,WB/Bpl,WB values were available to us, and putting an
//! invented narrowband pair on the G.107.1 scale would only look precise.
//! The config can switch a codec to the wideband scale (with its own values)
//! through [`CodecOverride`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a payload carries; only voice is scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// Speech codec: scored by the E-model.
    Voice,
    /// RFC 4733 DTMF / telephone events.
    Event,
    /// RFC 3389 comfort noise.
    ComfortNoise,
    /// Video payload.
    Video,
}

/// One codec's static facts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CodecInfo {
    /// Canonical rtpmap encoding name, e.g. "PCMU".
    pub name: &'static str,
    /// RFC 3551 static payload type, if the codec has one.
    pub static_pt: Option<u8>,
    /// RTP timestamp clock rate (Hz). For dynamic payloads the SDP rtpmap is
    /// authoritative; this is the usual value.
    pub clock_rate: u32,
    /// Voice, events, comfort noise or video.
    pub kind: MediaKind,
    /// Equipment impairment factor Ie (narrowband scale).
    pub ie: f64,
    /// Packet-loss robustness factor Bpl.
    pub bpl: f64,
    /// Codec frame length (ms); for sample-based codecs one sample period.
    pub frame_ms: f64,
    /// Encoder look-ahead on top of the frame (ms).
    pub lookahead_ms: f64,
    /// Whether Ie/Bpl are on the G.107.1 wideband scale.
    pub wideband: bool,
    /// Where Ie/Bpl come from, or why they were assumed.
    pub source: &'static str,
}

impl CodecInfo {
    /// True for speech codecs, which the E-model scores; false for
    /// telephone-event, comfort noise and video.
    pub fn is_scored(&self) -> bool {
        self.kind == MediaKind::Voice
    }

    /// The E-model inputs of this codec.
    pub fn impairment(&self) -> Impairment {
        Impairment {
            ie: self.ie,
            bpl: self.bpl,
            frame_ms: self.frame_ms,
            lookahead_ms: self.lookahead_ms,
            wideband: self.wideband,
        }
    }
}

/// E-model inputs for one codec after config overrides.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Impairment {
    /// Equipment impairment factor Ie.
    pub ie: f64,
    /// Packet-loss robustness factor Bpl.
    pub bpl: f64,
    /// Codec frame length (ms).
    pub frame_ms: f64,
    /// Encoder look-ahead (ms).
    pub lookahead_ms: f64,
    /// Score on the G.107.1 wideband scale.
    pub wideband: bool,
}

const G711_SOURCE: &str = "G.113 App. I: G.711 with Appendix I PLC (Ie 0, Bpl 25.1). \
     Real endpoints conceal loss; without PLC G.113 gives Bpl 4.3";
const G726_SOURCE: &str = "G.113 App. I gives Ie only; no ITU Bpl, assumed the G.107 \
     default 4.3 (no concealment): ADPCM has no built-in PLC";
const NOT_SCORED: &str = "not a speech codec; not scored";

/// Builds a voice entry; keeps the table below one line per codec.
#[allow(clippy::too_many_arguments)]
const fn voice(
    name: &'static str,
    static_pt: Option<u8>,
    clock_rate: u32,
    ie: f64,
    bpl: f64,
    frame_ms: f64,
    lookahead_ms: f64,
    source: &'static str,
) -> CodecInfo {
    CodecInfo {
        name,
        static_pt,
        clock_rate,
        kind: MediaKind::Voice,
        ie,
        bpl,
        frame_ms,
        lookahead_ms,
        wideband: false,
        source,
    }
}

/// Builds an unscored entry; Ie/Bpl are placeholders nobody reads.
const fn other(
    name: &'static str,
    static_pt: Option<u8>,
    clock_rate: u32,
    kind: MediaKind,
) -> CodecInfo {
    CodecInfo {
        name,
        static_pt,
        clock_rate,
        kind,
        ie: 0.0,
        bpl: 4.3,
        frame_ms: 0.0,
        lookahead_ms: 0.0,
        wideband: false,
        source: NOT_SCORED,
    }
}

/// The codec table. Names are the canonical rtpmap encoding names.
pub static CODECS: &[CodecInfo] = &[
    voice("PCMU", Some(0), 8000, 0.0, 25.1, 0.125, 0.0, G711_SOURCE),
    voice("PCMA", Some(8), 8000, 0.0, 25.1, 0.125, 0.0, G711_SOURCE),
    // RTP clock 8000 although G.722 samples at 16 kHz (RFC 3551 §4.5.2).
    voice(
        "G722",
        Some(9),
        8000,
        0.0,
        25.1,
        0.0625,
        1.5,
        "no ITU narrowband value (G.113 App. IV wideband values not available to us): \
         assumed equal to G.711 with PLC (Ie 0, Bpl 25.1) and scored on the narrowband \
         scale, which cannot credit wideband audio",
    ),
    voice(
        "G729",
        Some(18),
        8000,
        11.0,
        19.0,
        10.0,
        5.0,
        "G.113 App. I: G.729A + VAD (Ie 11, Bpl 19). SDP \"G729\" is Annex A in practice; \
         plain G.729 has Ie 10 and no Bpl",
    ),
    voice(
        "G723",
        Some(4),
        8000,
        15.0,
        16.1,
        30.0,
        7.5,
        "G.113 App. I: G.723.1 6.3 kbit/s + VAD (Ie 15, Bpl 16.1); the 5.3 kbit/s mode \
         (Ie 19) cannot be told apart in RTP",
    ),
    voice(
        "GSM",
        Some(3),
        8000,
        20.0,
        10.0,
        20.0,
        0.0,
        "G.113 App. I: GSM-FR Ie 20; no ITU Bpl, assumed GSM-EFR's 10 (both rely on \
         GSM frame substitution and muting)",
    ),
    voice(
        "GSM-EFR",
        None,
        8000,
        5.0,
        10.0,
        20.0,
        0.0,
        "G.113 App. I: GSM-EFR (Ie 5, Bpl 10; the Bpl is not corroborated)",
    ),
    voice(
        "iLBC",
        None,
        8000,
        11.0,
        19.0,
        30.0,
        10.0,
        "no ITU value: assumed G.729A's Ie 11 / Bpl 19 (similar bit rate, own PLC); \
         conservative, iLBC was built to tolerate loss. Delay for the 30 ms mode, the \
         RFC 3952 default",
    ),
    voice(
        "AMR",
        None,
        8000,
        5.0,
        10.0,
        20.0,
        5.0,
        "no ITU value: assumed GSM-EFR's Ie 5 / Bpl 10 (G.113 App. I), since AMR's usual \
         12.2 kbit/s mode is GSM-EFR; lower modes are worse and RTP does not say which \
         is in use",
    ),
    voice(
        "AMR-WB",
        None,
        16000,
        5.0,
        10.0,
        20.0,
        5.0,
        "no ITU narrowband value (G.113 App. IV wideband values not available to us): \
         assumed AMR's Ie 5 / Bpl 10 and scored on the narrowband scale, which cannot \
         credit wideband audio",
    ),
    voice(
        "opus",
        None,
        48000,
        0.0,
        25.1,
        20.0,
        6.5,
        "no ITU value exists: assumed equal to G.711 with PLC (Ie 0, Bpl 25.1), since at \
         VoIP bit rates Opus is at least that good on the narrowband scale; in-band FEC \
         is not credited",
    ),
    voice(
        "speex",
        None,
        8000,
        11.0,
        19.0,
        20.0,
        10.0,
        "no ITU value: assumed G.729A's Ie 11 / Bpl 19 (CELP at a similar bit rate)",
    ),
    voice("G726-16", None, 8000, 50.0, 4.3, 0.125, 0.0, G726_SOURCE),
    voice("G726-24", None, 8000, 25.0, 4.3, 0.125, 0.0, G726_SOURCE),
    voice("G726-32", None, 8000, 7.0, 4.3, 0.125, 0.0, G726_SOURCE),
    voice("G726-40", None, 8000, 2.0, 4.3, 0.125, 0.0, G726_SOURCE),
    other("telephone-event", None, 8000, MediaKind::Event),
    other("CN", Some(13), 8000, MediaKind::ComfortNoise),
    other("CelB", Some(25), 90000, MediaKind::Video),
    other("JPEG", Some(26), 90000, MediaKind::Video),
    other("nv", Some(28), 90000, MediaKind::Video),
    other("H261", Some(31), 90000, MediaKind::Video),
    other("MPV", Some(32), 90000, MediaKind::Video),
    other("MP2T", Some(33), 90000, MediaKind::Video),
    other("H263", Some(34), 90000, MediaKind::Video),
    other("H264", None, 90000, MediaKind::Video),
    other("H265", None, 90000, MediaKind::Video),
    other("VP8", None, 90000, MediaKind::Video),
    other("VP9", None, 90000, MediaKind::Video),
];

/// Other spellings seen in rtpmap lines, mapped to canonical names.
const ALIASES: &[(&str, &str)] = &[
    ("G729A", "G729"),
    ("AAL2-G726-16", "G726-16"),
    ("AAL2-G726-24", "G726-24"),
    ("AAL2-G726-32", "G726-32"),
    ("AAL2-G726-40", "G726-40"),
    // RFC 3551 §4.5.4 originally called G.726-32 "G721".
    ("G721", "G726-32"),
];

/// The codec with RFC 3551 static payload type `pt`, if the table has one.
pub fn by_static_pt(pt: u8) -> Option<&'static CodecInfo> {
    CODECS.iter().find(|c| c.static_pt == Some(pt))
}

/// The codec with rtpmap encoding name `name`, case-insensitively, including
/// the aliases above (e.g. "g729a", "AAL2-G726-32").
pub fn by_name(name: &str) -> Option<&'static CodecInfo> {
    let name = name.trim();
    let canonical = ALIASES
        .iter()
        .find(|(alias, _)| alias.eq_ignore_ascii_case(name))
        .map_or(name, |(_, canonical)| canonical);
    CODECS
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(canonical))
}

/// RTP clock rate of a static payload type (RFC 3551 Tables 4 and 5).
///
/// Beyond ALGORITHMS.md §4's list this also knows PT 14 (MPA, 90 kHz) and
/// PT 16/17 (DVI4 at 11 025 / 22 050 Hz), which RFC 3551 defines too.
pub fn static_clock_rate(pt: u8) -> Option<u32> {
    match pt {
        0 | 3 | 4 | 5 | 7 | 8 | 9 | 12 | 13 | 15 | 18 | 19 => Some(8000),
        6 => Some(16000),
        10 | 11 => Some(44100),
        16 => Some(11025),
        17 => Some(22050),
        14 | 25 | 26 | 28 | 31 | 32 | 33 | 34 => Some(90000),
        _ => None,
    }
}

/// Config override for one codec (`[quality] codecs` in the config); unset
/// fields keep the table value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodecOverride {
    /// Equipment impairment factor Ie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ie: Option<f64>,
    /// Packet-loss robustness factor Bpl.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bpl: Option<f64>,
    /// Codec frame length (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_ms: Option<f64>,
    /// Encoder look-ahead (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookahead_ms: Option<f64>,
    /// Score on the G.107.1 wideband scale (then Ie/Bpl must be wideband
    /// values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wideband: Option<bool>,
}

/// Why a codec override was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CodecError {
    /// The codec is not in the table, so the override must supply Ie and Bpl.
    #[error("codec {name:?} is not built in; its override needs both ie and bpl")]
    UnknownIncomplete {
        /// Codec name as configured.
        name: String,
    },
    /// Events, comfort noise and video are never scored.
    #[error("codec {name:?} is not a speech codec and is never scored")]
    NotScored {
        /// Canonical codec name.
        name: String,
    },
    /// A value is not finite or outside its range.
    #[error("codec {name:?}: {field} = {value} is outside {range}")]
    OutOfRange {
        /// Codec name as configured.
        name: String,
        /// Field name.
        field: &'static str,
        /// Offending value.
        value: f64,
        /// Accepted range, for the message.
        range: &'static str,
    },
    /// Two keys name the same codec (e.g. "G729" and "g729a").
    #[error("codec {name:?} is configured twice (as {first:?} and {second:?})")]
    Duplicate {
        /// Canonical codec name.
        name: String,
        /// First key.
        first: String,
        /// Second key.
        second: String,
    },
}

/// The codec table with the config's overrides applied.
///
/// Deserialises from a map of codec name → [`CodecOverride`] and validates
/// it, so a bad override fails config loading instead of skewing scores.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(
    try_from = "BTreeMap<String, CodecOverride>",
    into = "BTreeMap<String, CodecOverride>"
)]
pub struct CodecTable {
    /// Keyed by canonical name (upper-cased name for codecs not built in).
    overrides: BTreeMap<String, CodecOverride>,
}

impl CodecTable {
    /// Validates `overrides` (name → override) and builds the table.
    pub fn with_overrides<I>(overrides: I) -> Result<Self, CodecError>
    where
        I: IntoIterator<Item = (String, CodecOverride)>,
    {
        let mut out: BTreeMap<String, (String, CodecOverride)> = BTreeMap::new();
        for (key, o) in overrides {
            let base = by_name(&key);
            if let Some(b) = base.filter(|b| !b.is_scored()) {
                return Err(CodecError::NotScored {
                    name: b.name.to_string(),
                });
            }
            let merged = merge(base.map(CodecInfo::impairment), &o)
                .ok_or_else(|| CodecError::UnknownIncomplete { name: key.clone() })?;
            validate(&key, &merged)?;
            let canonical = base.map_or_else(|| key.trim().to_ascii_uppercase(), |b| b.name.into());
            if let Some((first, _)) = out.get(&canonical) {
                return Err(CodecError::Duplicate {
                    name: canonical,
                    first: first.clone(),
                    second: key,
                });
            }
            out.insert(canonical, (key, o));
        }
        Ok(Self {
            overrides: out.into_iter().map(|(k, (_, o))| (k, o)).collect(),
        })
    }

    /// E-model inputs for rtpmap encoding name `name`: the built-in values
    /// with any override applied. `None` for unknown codecs without an
    /// override and for codecs that are never scored.
    pub fn lookup(&self, name: &str) -> Option<Impairment> {
        let base = by_name(name);
        if base.is_some_and(|b| !b.is_scored()) {
            return None;
        }
        let key = base.map_or_else(|| name.trim().to_ascii_uppercase(), |b| b.name.into());
        match self.overrides.get(&key) {
            Some(o) => merge(base.map(CodecInfo::impairment), o),
            None => base.map(CodecInfo::impairment),
        }
    }

    /// [`CodecTable::lookup`] by static payload type.
    pub fn lookup_static_pt(&self, pt: u8) -> Option<Impairment> {
        by_static_pt(pt).and_then(|c| self.lookup(c.name))
    }
}

impl TryFrom<BTreeMap<String, CodecOverride>> for CodecTable {
    type Error = CodecError;

    fn try_from(map: BTreeMap<String, CodecOverride>) -> Result<Self, Self::Error> {
        Self::with_overrides(map)
    }
}

impl From<CodecTable> for BTreeMap<String, CodecOverride> {
    fn from(t: CodecTable) -> Self {
        t.overrides
    }
}

/// Applies `o` on top of `base`; without a base Ie and Bpl are mandatory
/// and the frame defaults to 20 ms, the usual VoIP packetisation.
fn merge(base: Option<Impairment>, o: &CodecOverride) -> Option<Impairment> {
    let base = match base {
        Some(b) => b,
        None => Impairment {
            ie: o.ie?,
            bpl: o.bpl?,
            frame_ms: 20.0,
            lookahead_ms: 0.0,
            wideband: false,
        },
    };
    Some(Impairment {
        ie: o.ie.unwrap_or(base.ie),
        bpl: o.bpl.unwrap_or(base.bpl),
        frame_ms: o.frame_ms.unwrap_or(base.frame_ms),
        lookahead_ms: o.lookahead_ms.unwrap_or(base.lookahead_ms),
        wideband: o.wideband.unwrap_or(base.wideband),
    })
}

fn validate(name: &str, i: &Impairment) -> Result<(), CodecError> {
    let (ie_max, ie_range) = if i.wideband {
        (129.0, "[0, 129] (wideband)")
    } else {
        (95.0, "[0, 95]")
    };
    let checks: [(&'static str, f64, bool, &'static str); 4] = [
        ("ie", i.ie, (0.0..=ie_max).contains(&i.ie), ie_range),
        ("bpl", i.bpl, i.bpl > 0.0 && i.bpl <= 100.0, "(0, 100]"),
        (
            "frame_ms",
            i.frame_ms,
            (0.0..=1000.0).contains(&i.frame_ms),
            "[0, 1000]",
        ),
        (
            "lookahead_ms",
            i.lookahead_ms,
            (0.0..=1000.0).contains(&i.lookahead_ms),
            "[0, 1000]",
        ),
    ];
    // NaN fails every `contains` and comparison above, so it lands here too.
    match checks.into_iter().find(|(_, _, ok, _)| !ok) {
        Some((field, value, _, range)) => Err(CodecError::OutOfRange {
            name: name.to_string(),
            field,
            value,
            range,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_payload_types() {
        let expect = [
            (0, "PCMU"),
            (3, "GSM"),
            (4, "G723"),
            (8, "PCMA"),
            (9, "G722"),
            (13, "CN"),
            (18, "G729"),
            (34, "H263"),
        ];
        for (pt, name) in expect {
            assert_eq!(by_static_pt(pt).map(|c| c.name), Some(name), "PT {pt}");
        }
        assert!(by_static_pt(96).is_none());
        assert!(by_static_pt(127).is_none());
    }

    #[test]
    fn names_are_case_insensitive_and_aliased() {
        let expect = [
            ("pcmu", "PCMU"),
            ("PCMA", "PCMA"),
            ("G729", "G729"),
            ("g729a", "G729"),
            ("AMR-WB", "AMR-WB"),
            ("amr", "AMR"),
            ("opus", "opus"),
            ("OPUS", "opus"),
            ("telephone-event", "telephone-event"),
            ("G726-32", "G726-32"),
            ("AAL2-G726-32", "G726-32"),
            ("speex", "speex"),
            ("ilbc", "iLBC"),
            (" GSM ", "GSM"),
        ];
        for (name, canonical) in expect {
            assert_eq!(by_name(name).map(|c| c.name), Some(canonical), "{name}");
        }
        assert!(by_name("L16").is_none());
        assert!(by_name("").is_none());
    }

    #[test]
    fn clock_rates() {
        for pt in [0, 3, 4, 5, 7, 8, 9, 12, 13, 15, 18, 19] {
            assert_eq!(static_clock_rate(pt), Some(8000), "PT {pt}");
        }
        assert_eq!(static_clock_rate(6), Some(16000));
        assert_eq!(static_clock_rate(10), Some(44100));
        assert_eq!(static_clock_rate(11), Some(44100));
        for pt in [25, 26, 28, 31, 32, 33, 34] {
            assert_eq!(static_clock_rate(pt), Some(90000), "PT {pt}");
        }
        assert_eq!(static_clock_rate(96), None);
        assert_eq!(static_clock_rate(2), None);
        assert_eq!(by_name("opus").map(|c| c.clock_rate), Some(48000));
        assert_eq!(by_name("G722").map(|c| c.clock_rate), Some(8000));
        // The table must agree with the static map for every static entry.
        for c in CODECS {
            if let Some(pt) = c.static_pt {
                assert_eq!(static_clock_rate(pt), Some(c.clock_rate), "{}", c.name);
            }
        }
    }

    #[test]
    fn table_is_sane() {
        let mut names: Vec<String> = CODECS.iter().map(|c| c.name.to_uppercase()).collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "duplicate codec names");
        for c in CODECS {
            assert!(!c.source.is_empty(), "{}", c.name);
            if c.is_scored() {
                assert!((0.0..=95.0).contains(&c.ie), "{} ie", c.name);
                assert!(c.bpl > 0.0, "{} bpl", c.name);
                assert!(c.frame_ms > 0.0 && c.lookahead_ms >= 0.0, "{}", c.name);
                assert!(!c.wideband, "{} is scored narrowband", c.name);
            }
        }
        for (alias, canonical) in ALIASES {
            assert!(by_name(canonical).is_some(), "alias {alias} → {canonical}");
        }
        let g711 = by_name("PCMU").map(CodecInfo::impairment);
        assert_eq!(g711.map(|i| (i.ie, i.bpl)), Some((0.0, 25.1)));
        let g726 = ["G726-16", "G726-24", "G726-32", "G726-40"].map(|n| by_name(n).map(|c| c.ie));
        assert_eq!(g726, [Some(50.0), Some(25.0), Some(7.0), Some(2.0)]);
    }

    #[test]
    fn scored_or_not() {
        for n in ["telephone-event", "CN", "H264", "VP8"] {
            assert_eq!(by_name(n).map(CodecInfo::is_scored), Some(false), "{n}");
        }
        for n in ["PCMU", "G722", "opus", "AMR-WB", "speex", "G726-16"] {
            assert_eq!(by_name(n).map(CodecInfo::is_scored), Some(true), "{n}");
        }
        let t = CodecTable::default();
        assert!(t.lookup("telephone-event").is_none());
        assert!(t.lookup("nonexistent").is_none());
        assert_eq!(t.lookup_static_pt(18).map(|i| i.ie), Some(11.0));
        assert!(t.lookup_static_pt(13).is_none());
    }

    #[test]
    fn overrides_apply_by_any_spelling() -> Result<(), CodecError> {
        let t = CodecTable::with_overrides([
            (
                "g729a".to_string(),
                CodecOverride {
                    bpl: Some(30.0),
                    ..Default::default()
                },
            ),
            (
                "G728".to_string(),
                CodecOverride {
                    ie: Some(7.0),
                    bpl: Some(10.0),
                    ..Default::default()
                },
            ),
        ])?;
        let g729 = t.lookup("G729");
        assert_eq!(g729.map(|i| (i.ie, i.bpl)), Some((11.0, 30.0)));
        let g728 = t.lookup("g728");
        assert_eq!(
            g728.map(|i| (i.ie, i.bpl, i.frame_ms)),
            Some((7.0, 10.0, 20.0))
        );
        assert_eq!(t.lookup("PCMU").map(|i| i.bpl), Some(25.1));
        Ok(())
    }

    #[test]
    fn bad_overrides_are_refused() {
        let one =
            |name: &str, o: CodecOverride| CodecTable::with_overrides([(name.to_string(), o)]);
        let ie = |v: f64| CodecOverride {
            ie: Some(v),
            ..Default::default()
        };
        assert!(matches!(
            one("PCMU", ie(-1.0)),
            Err(CodecError::OutOfRange { field: "ie", .. })
        ));
        assert!(matches!(
            one("PCMU", ie(f64::NAN)),
            Err(CodecError::OutOfRange { .. })
        ));
        let bpl0 = CodecOverride {
            bpl: Some(0.0),
            ..Default::default()
        };
        assert!(matches!(
            one("opus", bpl0),
            Err(CodecError::OutOfRange { field: "bpl", .. })
        ));
        assert!(matches!(
            one("G728", ie(7.0)),
            Err(CodecError::UnknownIncomplete { .. })
        ));
        assert!(matches!(
            one("telephone-event", ie(0.0)),
            Err(CodecError::NotScored { .. })
        ));
        let dup = CodecTable::with_overrides([
            ("G729".to_string(), ie(10.0)),
            ("g729a".to_string(), ie(12.0)),
        ]);
        assert!(matches!(dup, Err(CodecError::Duplicate { .. })));
        // 110 is only valid on the wideband scale.
        let wb = CodecOverride {
            ie: Some(110.0),
            wideband: Some(true),
            ..Default::default()
        };
        assert!(one("G722", wb).is_ok());
        assert!(one("G722", ie(110.0)).is_err());
    }

    #[test]
    fn deserialises_with_validation() {
        let ok: Result<CodecTable, _> =
            serde_json::from_str(r#"{"PCMU": {"bpl": 4.3}, "AMR-WB": {"ie": 3}}"#);
        let t = match ok {
            Ok(t) => t,
            Err(e) => panic!("valid overrides rejected: {e}"),
        };
        assert_eq!(t.lookup("pcmu").map(|i| i.bpl), Some(4.3));
        assert_eq!(t.lookup("amr-wb").map(|i| i.ie), Some(3.0));

        let unknown_field: Result<CodecTable, _> = serde_json::from_str(r#"{"PCMU": {"iee": 1}}"#);
        let msg = unknown_field.map(|_| ()).err().map(|e| e.to_string());
        assert!(msg.is_some_and(|m| m.contains("iee")));

        let bad: Result<CodecTable, _> = serde_json::from_str(r#"{"PCMU": {"ie": 200}}"#);
        assert!(bad.is_err());

        let round = serde_json::to_string(&t).map_err(|e| e.to_string());
        assert_eq!(
            round.as_deref(),
            Ok(r#"{"AMR-WB":{"ie":3.0},"PCMU":{"bpl":4.3}}"#)
        );
    }
}
