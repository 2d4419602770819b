//! The records the engine produces, in the JSON shape of the contract (snake_case;
//! absent figures are `null`, not 0).

pub use crate::numbers::MnoSource;
use serde::{Deserialize, Serialize};
use vqprobe_wire::{Pt, Ssrc};

/// Media or call direction relative to the probed host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Media arriving at the host / a call the far end placed.
    Inbound,
    /// Media leaving the host / a call the host placed.
    Outbound,
}

impl Direction {
    /// The lowercase name used in JSON and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// Lifecycle state of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    /// Still running (live daemon only).
    InProgress,
    /// Answered and ended.
    Completed,
    /// Rejected with a final error response, or never set up.
    Failed,
    /// Cancelled by the caller before answer, or unanswered when signalling stopped.
    Abandoned,
}

impl CallStatus {
    /// The snake_case name used in JSON and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::InProgress => "in_progress",
            CallStatus::Completed => "completed",
            CallStatus::Failed => "failed",
            CallStatus::Abandoned => "abandoned",
        }
    }
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EndedReason {
    /// A BYE.
    Bye,
    /// A CANCEL before answer.
    Cancel,
    /// A final 3xx–6xx response to the INVITE.
    Error,
    /// No RTP (and no SIP end) for longer than the RTP timeout.
    RtpTimeout,
    /// The capture ended with the call still open (offline analysis).
    EndOfCapture,
    /// The daemon stopped with the call still open.
    Shutdown,
}

impl EndedReason {
    /// The snake_case name used in JSON and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            EndedReason::Bye => "bye",
            EndedReason::Cancel => "cancel",
            EndedReason::Error => "error",
            EndedReason::RtpTimeout => "rtp_timeout",
            EndedReason::EndOfCapture => "end_of_capture",
            EndedReason::Shutdown => "shutdown",
        }
    }
}

/// Outcome of a call once the NOC has looked at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// The issue behind the call was resolved.
    Resolved,
    /// It was not.
    Unresolved,
}

/// Far-end RTCP report figures about a stream.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RemoteRecord {
    /// Fraction lost in its last report interval, 0–1.
    pub fraction_lost: f64,
    /// Cumulative lost as reported.
    pub cumulative_lost: i64,
    /// Jitter it measured, ms.
    pub jitter_ms: Option<f64>,
}

/// Where an endpoint's own quality view came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum XrSource {
    /// RTCP XR (RFC 3611) VoIP Metrics blocks in the media path.
    RtcpXr,
    /// A SIP PUBLISH `application/vq-rtcpxr` report (RFC 6035).
    SipPublish,
}

/// What an endpoint itself reported about the media it received: an RFC 3611 VoIP
/// Metrics block or the metrics of an RFC 6035 report. Absent or "unavailable" values
/// are `null`; rates and densities are ratios 0–1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct XrMetrics {
    /// Packets lost in the network.
    pub loss_rate: Option<f64>,
    /// Packets the jitter buffer discarded (late or early).
    pub discard_rate: Option<f64>,
    /// Lost or discarded within bursts.
    pub burst_density: Option<f64>,
    /// Lost or discarded within gaps.
    pub gap_density: Option<f64>,
    /// Mean burst length, ms.
    pub burst_duration_ms: Option<f64>,
    /// Mean gap length, ms.
    pub gap_duration_ms: Option<f64>,
    /// Gap threshold Gmin (packets).
    pub gmin: Option<u8>,
    /// Round trip between the RTP interfaces, ms.
    pub round_trip_delay_ms: Option<f64>,
    /// End-system delay (buffering, coding, packetisation), ms.
    pub end_system_delay_ms: Option<f64>,
    /// Speech signal level, dBm0.
    pub signal_level_dbm: Option<f64>,
    /// Background noise level, dBm0.
    pub noise_level_dbm: Option<f64>,
    /// Residual echo return loss, dB.
    pub rerl_db: Option<f64>,
    /// R factor (listening quality for an RFC 6035 report).
    pub r_factor: Option<f64>,
    /// Conversational R factor (RFC 6035 `RCQ`).
    pub r_factor_cq: Option<f64>,
    /// R factor of an external segment (e.g. a mobile leg).
    pub ext_r_factor: Option<f64>,
    /// Listening-quality MOS.
    pub mos_lq: Option<f64>,
    /// Conversational-quality MOS.
    pub mos_cq: Option<f64>,
    /// Packet loss concealment: `disabled`, `enhanced`, `standard`, or `null`.
    pub plc: Option<String>,
    /// Jitter buffer adaptive (`true`), fixed (`false`), or unknown.
    pub jb_adaptive: Option<bool>,
    /// Jitter buffer adjustment rate (0–15).
    pub jb_rate: Option<u8>,
    /// Jitter buffer nominal delay, ms.
    pub jb_nominal_ms: Option<f64>,
    /// Jitter buffer current maximum delay, ms.
    pub jb_max_ms: Option<f64>,
    /// Jitter buffer absolute maximum delay, ms.
    pub jb_abs_max_ms: Option<f64>,
    /// Interarrival jitter the endpoint measured, ms (RFC 6035 `IAJ`).
    pub jitter_ms: Option<f64>,
}

/// An RTCP XR Statistics Summary block (RFC 3611 §4.6), jitter in ms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct XrSummaryRecord {
    /// First sequence number covered.
    pub begin_seq: u16,
    /// Last sequence number covered plus one.
    pub end_seq: u16,
    /// Packets lost in that range.
    pub lost_packets: Option<u32>,
    /// Duplicates in that range.
    pub dup_packets: Option<u32>,
    /// Minimum jitter, ms.
    pub min_jitter_ms: Option<f64>,
    /// Maximum jitter, ms.
    pub max_jitter_ms: Option<f64>,
    /// Mean jitter, ms.
    pub mean_jitter_ms: Option<f64>,
    /// Standard deviation of jitter, ms.
    pub dev_jitter_ms: Option<f64>,
    /// `ipv4_ttl` or `ipv6_hop_limit` when the TTL fields are reported.
    pub ttl_kind: Option<String>,
    /// Minimum TTL / Hop Limit.
    pub min_ttl: Option<u8>,
    /// Maximum TTL / Hop Limit.
    pub max_ttl: Option<u8>,
    /// Mean TTL / Hop Limit.
    pub mean_ttl: Option<u8>,
    /// Standard deviation of TTL / Hop Limit.
    pub dev_ttl: Option<u8>,
}

/// The receiving endpoint's own view of a stream, beside the probe's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct XrRecord {
    /// Where the latest report came from.
    pub source: XrSource,
    /// Reports received.
    pub reports: u64,
    /// The latest report.
    pub latest: XrMetrics,
    /// The worst report: lowest MOS-CQ (else R factor, else MOS-LQ, else highest loss).
    pub worst: XrMetrics,
    /// The latest Statistics Summary block, when the endpoint sends them.
    pub summary: Option<XrSummaryRecord>,
}

/// One 5-second interval of a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IntervalRecord {
    /// Interval start, RFC 3339 UTC.
    pub start: String,
    /// Packets received in it.
    pub packets: u64,
    /// Sequence numbers lost in it.
    pub lost: u64,
    /// RFC 3550 jitter at its end, ms.
    pub jitter_ms: f64,
    /// MOS of the interval, `null` with too little media.
    pub mos: Option<f64>,
}

/// One direction of media (one SSRC on one 5-tuple).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamRecord {
    /// Relative to the probed host.
    pub direction: Direction,
    /// Sender `ip:port` (`[v6]:port`).
    pub src: String,
    /// Receiver `ip:port`.
    pub dst: String,
    /// `0x` + 8 lowercase hex digits.
    #[serde(with = "ssrc_hex")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "0x6a518186", pattern = "^0x[0-9a-f]{8}$"))]
    pub ssrc: Ssrc,
    /// Payload type of the voice payload (first one seen).
    #[serde(with = "pt_opt")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u8>, maximum = 127))]
    pub payload_type: Option<Pt>,
    /// Codec name.
    pub codec: Option<String>,
    /// RTP clock rate used, Hz.
    pub clock_rate: Option<u32>,
    /// Packets received, duplicates included (tshark's `Pkts`).
    pub packets: u64,
    /// Of those, packets of a payload type the call did not negotiate for the stream:
    /// kept out of jitter, timing and scoring.
    #[serde(default)]
    pub other_payload_packets: u64,
    /// Highest extended sequence − first + 1.
    pub expected: u64,
    /// Expected − unique received.
    pub lost: u64,
    /// Copies of already received packets.
    pub duplicates: u64,
    /// First copies that arrived after a higher sequence number.
    pub out_of_order: u64,
    /// RFC 3550 interarrival jitter, final value, ms.
    pub jitter_ms: Option<f64>,
    /// tshark's max jitter, ms.
    pub max_jitter_ms: Option<f64>,
    /// tshark's mean jitter, ms.
    pub mean_jitter_ms: Option<f64>,
    /// tshark's max delta, ms.
    pub max_delta_ms: f64,
    /// Histogram of loss-run lengths: index 0 = single losses … index 9 = 10 or more.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<u64>, min_items = 10, max_items = 10))]
    pub loss_runs: [u64; 10],
    /// Conversational MOS (adaptive jitter buffer).
    pub mos: Option<f64>,
    /// Listening MOS.
    pub mos_lq: Option<f64>,
    /// MOS behind a fixed 50 ms jitter buffer.
    pub mos_jb50: Option<f64>,
    /// MOS behind a fixed 200 ms jitter buffer.
    pub mos_jb200: Option<f64>,
    /// R-factor behind `mos`.
    pub r_factor: Option<f64>,
    /// Probe-to-far-end round trip from RTCP, ms.
    pub rtt_ms: Option<f64>,
    /// 5-second intervals.
    pub intervals: Vec<IntervalRecord>,
    /// What the far end reported about this stream.
    pub remote: Option<RemoteRecord>,
    /// The receiving endpoint's own quality reports (RTCP XR, RFC 6035 PUBLISH).
    #[serde(default)]
    pub xr: Option<XrRecord>,
}

/// Call-level quality summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QualityRecord {
    /// Conversational MOS of the worst direction.
    pub mos: Option<f64>,
    /// Listening MOS of the worst direction.
    pub mos_lq: Option<f64>,
    /// R-factor of the worst direction.
    pub r_factor: Option<f64>,
    /// Lowest 5-second MOS of any direction.
    pub min_interval_mos: Option<f64>,
    /// Largest RFC 3550 jitter of any direction, ms.
    pub jitter_ms: Option<f64>,
    /// Largest loss ratio of any direction (lost / expected).
    pub loss_ratio: Option<f64>,
    /// Round trip from RTCP, ms.
    pub rtt_ms: Option<f64>,
    /// RTT / 2, ms.
    pub one_way_delay_ms: Option<f64>,
}

/// A call without its media streams: every call-level field, as listed by
/// `GET /v1/calls` and stored one column each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallSummary {
    /// vqprobe's id: the SIP Call-ID, the pushed id, or `rtp-…` for RTP-only pairs.
    pub call_id: String,
    /// SIP Call-ID when signalled.
    pub sip_call_id: Option<String>,
    /// Agent, from pushed metadata or the agent header.
    pub agent_id: Option<String>,
    /// Caller's number: E.164 when it could be placed in a country (valid, or written
    /// in international form), else the digits as signalled (an extension).
    pub from_number: Option<String>,
    /// Callee's number, as `from_number`.
    pub to_number: Option<String>,
    /// The caller's user part as signalled or pushed, before normalisation
    /// (`09876543210`, `+44 20 7946 0958`, `anonymous`, `alice`).
    #[serde(default)]
    pub from_raw: Option<String>,
    /// The callee's user part as signalled or pushed.
    #[serde(default)]
    pub to_raw: Option<String>,
    /// The caller withheld their identity (anonymous From, `Privacy: id`, RPID
    /// `privacy=full`); `from_number` still holds a network-asserted number if any.
    #[serde(default)]
    pub from_anonymous: bool,
    /// The number the call was first diverted from (Diversion header), normalised as
    /// `from_number`.
    #[serde(default)]
    pub diverted_from: Option<String>,
    /// Mobile network operator of the remote number, or `unknown`.
    pub mno: String,
    /// Which table named the MNO; `null` when it is `unknown`.
    #[serde(default)]
    pub mno_source: Option<MnoSource>,
    /// ISO 3166-1 alpha-2 country of the remote number.
    pub country: Option<String>,
    /// `inbound` when the far end placed the call.
    pub direction: Direction,
    /// Lifecycle state.
    pub status: CallStatus,
    /// Why it ended.
    pub ended_reason: Option<EndedReason>,
    /// Start (INVITE or first packet), RFC 3339 UTC.
    pub created_at: String,
    /// End, RFC 3339 UTC.
    pub ended_at: Option<String>,
    /// Talk time (answer to end) for SIP calls; first to last packet otherwise.
    pub duration_seconds: f64,
    /// Codec of the first voice stream.
    pub codec: Option<String>,
    /// Media in one direction only (outside hold periods).
    pub one_way_audio: bool,
    /// A fax call: a T.38 phase, or voice-band data (V.152) signalled. Its MOS covers
    /// the voice phases only.
    #[serde(default)]
    pub fax: bool,
    /// An endpoint's own quality report (RTCP XR or RFC 6035) disagrees sharply with
    /// the probe's figures for the same stream (MOS apart by a point or more): trouble
    /// the network does not show, e.g. behind the phone's jitter buffer.
    #[serde(default)]
    pub xr_disagreement: bool,
    /// MOS of the worst direction.
    pub quality_mos: Option<f64>,
    /// Quality summary.
    pub quality: QualityRecord,
    /// NOC classification.
    pub resolution: Option<Resolution>,
    /// When `resolution` was set.
    pub classified_at: Option<String>,
    /// Link to a recording, when the platform pushed one.
    pub recording_url: Option<String>,
    /// The probe that measured the call: set on records published to the fleet bus
    /// and served by `vqprobe aggregate`; absent on a probe's own API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_id: Option<String>,
}

/// A call and its media, as stored and served: the call-level fields (flattened into
/// the same JSON object) and its streams.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallRecord {
    /// Everything but the streams.
    #[serde(flatten)]
    pub call: CallSummary,
    /// Media streams.
    pub streams: Vec<StreamRecord>,
}

/// Formats nanoseconds since the epoch as RFC 3339 UTC with millisecond precision.
pub fn rfc3339(ns: i64) -> String {
    let ms = ns.div_euclid(1_000_000);
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// The SSRC's JSON form, `0x` + 8 lowercase hex digits (as the contract and tshark
/// show it).
mod ssrc_hex {
    use serde::{Deserialize, Deserializer, Serializer};
    use vqprobe_wire::Ssrc;

    pub fn serialize<S: Serializer>(ssrc: &Ssrc, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(ssrc)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Ssrc, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.strip_prefix("0x")
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .map(Ssrc)
            .ok_or_else(|| serde::de::Error::custom(format!("bad SSRC {text:?}")))
    }
}

/// An optional payload type as a plain JSON number.
mod pt_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use vqprobe_wire::Pt;

    pub fn serialize<S: Serializer>(pt: &Option<Pt>, s: S) -> Result<S::Ok, S::Error> {
        match pt {
            Some(p) => s.serialize_some(&p.0),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Pt>, D::Error> {
        Ok(Option::<u8>::deserialize(d)?.map(Pt))
    }
}

/// Rounds a figure for output: enough digits for any test, no float noise.
pub fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_and_ssrc_formats() {
        assert_eq!(
            rfc3339(1_700_000_000_123_456_789),
            "2023-11-14T22:13:20.123Z"
        );
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct W(#[serde(with = "ssrc_hex")] Ssrc);
        let json = |ssrc: u32| serde_json::to_value(W(Ssrc(ssrc))).expect("serialises");
        assert_eq!(json(0x6a51_8186), "0x6a518186");
        assert_eq!(json(1), "0x00000001");
        let back: W = serde_json::from_value(json(0xdead_beef)).expect("parses");
        assert_eq!(back, W(Ssrc(0xdead_beef)));
    }
}
