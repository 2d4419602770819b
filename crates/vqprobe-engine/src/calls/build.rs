//! The call record: streams scored and placed, quality summarised, numbers and MNO
//! looked up — from a call's dialog (if signalled), its streams and what the platform
//! pushed about it.

use super::direction::{call_direction, is_local, stream_direction};
use super::numbers::call_numbers;
use super::{CallConfig, Dialog};
use crate::codec::Impairment;
use crate::record::{
    self, CallRecord, CallStatus, CallSummary, Direction, EndedReason, IntervalRecord,
    QualityRecord, RemoteRecord, StreamRecord,
};
use crate::score::{self, ScoreContext, StreamScore};
use crate::stream::Stream;
use crate::time::Timestamp;

fn opt6(x: Option<f64>) -> Option<f64> {
    x.filter(|v| v.is_finite()).map(record::round6)
}

struct Built {
    record: StreamRecord,
    score: StreamScore,
    voice: bool,
}

fn build_stream(
    cfg: &CallConfig,
    s: &Stream,
    direction: Direction,
    one_way_delay_ms: Option<f64>,
) -> Built {
    let codec_name = s.codec_name().map(str::to_string);
    let impairment: Impairment = codec_name
        .as_deref()
        .and_then(|n| cfg.codecs.lookup(n))
        .unwrap_or(score::UNKNOWN_CODEC);
    let ctx = ScoreContext {
        codec: impairment,
        one_way_delay_ms,
    };
    let mut sc = score::score_stream(s, &ctx);
    if !s.is_voice() {
        // telephone-event, comfort noise, video: nothing the E-model can score.
        sc = StreamScore::default();
    }
    let clock = (s.clock != 0).then_some(s.clock);
    let remote = s.remote.as_deref().map(|r| RemoteRecord {
        fraction_lost: record::round6(r.fraction_lost),
        cumulative_lost: r.cumulative_lost,
        jitter_ms: opt6(r.jitter_ms),
    });
    // The far end hears our outbound media: its reports score that direction.
    if direction == Direction::Outbound && s.is_voice() {
        if let Some(r) = s.remote.as_deref() {
            let frame = s.frame_ms.unwrap_or(20.0);
            if let Some((rr, rlq)) = score::score_remote(
                &ctx,
                r.cumulative_lost,
                s.seq.expected(),
                r.jitter_ms.unwrap_or(0.0),
                frame,
            ) {
                sc.r_factor = Some(rr);
                sc.mos = Some(crate::emodel::mos_from_r(rr));
                sc.mos_lq = Some(crate::emodel::mos_from_r(rlq));
            }
        }
    }
    let jitter_known = s.clock != 0;
    let tshark_known = s.tshark.had_clock;
    let record = StreamRecord {
        direction,
        src: s.key.src.to_string(),
        dst: s.key.dst.to_string(),
        ssrc: s.key.ssrc,
        payload_type: s.payload_type(),
        codec: codec_name,
        clock_rate: clock,
        packets: s.packets,
        other_payload_packets: s.other_payload_packets,
        expected: s.seq.expected(),
        lost: s.seq.lost(),
        duplicates: s.seq.duplicates(),
        out_of_order: s.seq.out_of_order(),
        jitter_ms: jitter_known.then(|| record::round6(s.jitter_ms())),
        max_jitter_ms: tshark_known.then(|| record::round6(s.tshark.max_jitter)),
        mean_jitter_ms: tshark_known.then(|| record::round6(s.tshark.mean_jitter)),
        max_delta_ms: record::round6(s.tshark.max_delta),
        loss_runs: s.playout.loss_runs,
        mos: opt6(sc.mos),
        mos_lq: opt6(sc.mos_lq),
        mos_jb50: opt6(sc.mos_jb50),
        mos_jb200: opt6(sc.mos_jb200),
        r_factor: opt6(sc.r_factor),
        rtt_ms: opt6(s.rtt.mean_ms()),
        intervals: sc
            .intervals
            .iter()
            .map(|i| IntervalRecord {
                start: record::rfc3339(i.start_ns),
                packets: i.packets,
                lost: i.lost,
                jitter_ms: record::round6(i.jitter_ms),
                mos: opt6(i.mos),
            })
            .collect(),
        remote,
        xr: s.xr.as_deref().map(|x| x.record(s.clock)),
    };
    Built {
        record,
        score: sc,
        voice: s.is_voice(),
    }
}

/// Everything needed to write one call record.
pub struct CallInput<'a> {
    /// vqprobe call id.
    pub call_id: String,
    /// The SIP dialog, if signalled.
    pub dialog: Option<&'a Dialog>,
    /// The call's streams.
    pub streams: Vec<&'a Stream>,
    /// End state decided by the caller (timeout, end of capture, shutdown) when SIP
    /// did not end the call.
    pub fallback_end: (CallStatus, EndedReason),
    /// Whether the call is still running (interim record).
    pub in_progress: bool,
    /// Metadata the platform pushed for this call; its fields win.
    pub meta: Option<&'a crate::push::PushedCall>,
    /// A T.38 phase or voice-band data was signalled.
    pub fax: bool,
    /// Periods the call was on hold (start, end; open while still held), kept out of
    /// the one-way-audio comparison: a held call is silent one way by design.
    pub holds: &'a [(Timestamp, Option<Timestamp>)],
}

/// Builds the call record: streams scored, quality summarised, MNO looked up.
pub fn build_record(cfg: &CallConfig, input: CallInput<'_>) -> CallRecord {
    let CallInput {
        call_id,
        dialog,
        mut streams,
        fallback_end,
        in_progress,
        meta,
        fax,
        holds,
    } = input;
    streams.sort_by_key(|s| (s.first, s.key));
    let first_src = streams.first().map(|s| s.key.src);

    // RTT legs: each stream's own leg; the call's round trip is their sum.
    let rtt_sum: Option<f64> = {
        let legs: Vec<f64> = streams.iter().filter_map(|s| s.rtt.mean_ms()).collect();
        (!legs.is_empty()).then(|| legs.iter().sum())
    };
    let owd = rtt_sum.map(|r| r / 2.0);

    // Directions must agree within a call: a stream that runs between the same two
    // hosts as one already placed, either way round, follows it (signalling alone is
    // ambiguous when both user agents share an address, e.g. a hairpinned call).
    let mut placed: Vec<(std::net::IpAddr, std::net::IpAddr, Direction)> = Vec::new();
    let mut built: Vec<Built> = Vec::with_capacity(streams.len());
    for s in &streams {
        let (a, b) = (s.key.src.ip(), s.key.dst.ip());
        let known = placed.iter().find_map(|&(x, y, d)| {
            if (x, y) == (a, b) {
                Some(d)
            } else if (x, y) == (b, a) && a != b {
                Some(match d {
                    Direction::Inbound => Direction::Outbound,
                    Direction::Outbound => Direction::Inbound,
                })
            } else {
                None
            }
        });
        let dir = if !cfg.local_nets.is_empty() {
            stream_direction(cfg, dialog, s, first_src)
        } else {
            known.unwrap_or_else(|| stream_direction(cfg, dialog, s, first_src))
        };
        placed.push((a, b, dir));
        built.push(build_stream(cfg, s, dir, owd));
    }
    let voice_streams: Vec<(Direction, &Stream)> = built
        .iter()
        .zip(&streams)
        .filter(|(b, _)| b.voice)
        .map(|(b, s)| (b.record.direction, *s))
        .collect();
    built.sort_by_key(|b| match b.record.direction {
        Direction::Inbound => 0,
        Direction::Outbound => 1,
    });

    let first = streams.iter().map(|s| s.first).min();
    let last = streams.iter().map(|s| s.last).max();
    let direction = meta
        .and_then(|m| m.direction)
        .unwrap_or_else(|| match (dialog, first_src) {
            // RTP only: the side that spoke first placed the call.
            (None, Some(src)) if is_local(&cfg.local_nets, src.ip()) => Direction::Outbound,
            _ => call_direction(cfg, dialog),
        });

    let (created, status, ended_reason, ended, duration_s) = match dialog {
        Some(d) => {
            let (status, reason) = match (d.ended_reason, in_progress) {
                (Some(r), _) => (d.status, Some(r)),
                (None, true) => (CallStatus::InProgress, None),
                (None, false) => {
                    if d.answered.is_none() && d.final_code.is_some_and(|c| c >= 300) {
                        // Challenged and never retried.
                        (CallStatus::Failed, Some(EndedReason::Error))
                    } else {
                        let status = if d.answered.is_some() {
                            CallStatus::Completed
                        } else if fallback_end.0 == CallStatus::Completed {
                            // Media flowed but the 200 OK was not captured.
                            if streams.is_empty() {
                                CallStatus::Abandoned
                            } else {
                                CallStatus::Completed
                            }
                        } else {
                            fallback_end.0
                        };
                        (status, Some(fallback_end.1))
                    }
                }
            };
            let end = d.ended.or(if in_progress {
                None
            } else {
                last.max(Some(d.last_sip))
            });
            let start_talk = d.answered.or(if d.ended_reason.is_none() {
                first
            } else {
                None
            });
            let duration = match (start_talk, end.or(last)) {
                (Some(a), Some(e)) if e > a => e.secs_since(a),
                _ => 0.0,
            };
            (d.created, status, reason, end, duration)
        }
        None => {
            let start = first.unwrap_or_default();
            let end = last.unwrap_or(start);
            let (status, reason) = if in_progress {
                (CallStatus::InProgress, None)
            } else {
                (fallback_end.0, Some(fallback_end.1))
            };
            (
                start,
                status,
                reason,
                (!in_progress).then_some(end),
                end.secs_since(start),
            )
        }
    };

    // Quality: worst direction for MOS, worst figures across directions.
    let worst = built
        .iter()
        .filter(|b| b.score.mos.is_some())
        .min_by(|a, b| {
            a.score
                .mos
                .unwrap_or(5.0)
                .total_cmp(&b.score.mos.unwrap_or(5.0))
        });
    let quality_mos = worst.and_then(|b| b.score.mos).map(record::round6);
    let mos_lq = built
        .iter()
        .filter_map(|b| b.score.mos_lq)
        .min_by(f64::total_cmp);
    let min_interval_mos = built
        .iter()
        .filter_map(|b| b.score.min_interval_mos)
        .min_by(f64::total_cmp);
    let jitter = built
        .iter()
        .filter_map(|b| b.record.jitter_ms)
        .max_by(f64::total_cmp);
    let loss_ratio = built
        .iter()
        .filter(|b| b.record.expected > 0)
        .map(|b| b.record.lost as f64 / b.record.expected as f64)
        .max_by(f64::total_cmp);
    let voice: Vec<&Built> = built.iter().filter(|b| b.voice).collect();
    // Packets outside hold periods, per direction.
    let mut inbound = 0;
    let mut outbound = 0;
    for (b, s) in &voice_streams {
        let n = packets_outside(s, holds);
        match b {
            Direction::Inbound => inbound += n,
            Direction::Outbound => outbound += n,
        }
    }
    let (hi, lo) = (inbound.max(outbound), inbound.min(outbound));
    // One direction silent: under 5 % of the other's packets, once there is media.
    let one_way_audio = hi >= score::MIN_PACKETS && lo * 20 < hi;

    let xr_disagreement = voice.iter().any(|b| disagrees(&b.record));

    let codec = voice
        .iter()
        .find_map(|b| b.record.codec.clone())
        .or_else(|| {
            dialog.and_then(|d| d.sdp_codec.as_deref()).map(|name| {
                crate::codec::by_name(name).map_or_else(|| name.to_string(), |c| c.name.to_string())
            })
        });
    let agent_id = meta
        .and_then(|m| m.agent_id.clone())
        .or_else(|| dialog.and_then(|d| d.agent_id.clone()));
    let numbers = call_numbers(&cfg.numbers, dialog.map(|d| &d.parties), meta, direction);

    CallRecord {
        call: CallSummary {
            call_id: meta.map_or(call_id, |m| m.call_id.clone()),
            sip_call_id: dialog.map(|d| d.call_id.to_string()),
            agent_id,
            from_number: numbers.from_number,
            to_number: numbers.to_number,
            from_raw: numbers.from_raw,
            to_raw: numbers.to_raw,
            from_anonymous: numbers.from_anonymous,
            diverted_from: numbers.diverted_from,
            mno: numbers.mno,
            mno_source: numbers.mno_source,
            country: numbers.country,
            direction,
            status,
            ended_reason,
            created_at: created.rfc3339(),
            ended_at: ended.map(Timestamp::rfc3339),
            duration_seconds: record::round6(duration_s),
            codec,
            one_way_audio,
            fax,
            xr_disagreement,
            quality_mos,
            quality: QualityRecord {
                mos: quality_mos,
                mos_lq: opt6(mos_lq),
                r_factor: opt6(worst.and_then(|b| b.score.r_factor)),
                min_interval_mos: opt6(min_interval_mos),
                jitter_ms: opt6(jitter),
                loss_ratio: opt6(loss_ratio),
                rtt_ms: opt6(rtt_sum),
                one_way_delay_ms: opt6(owd),
            },
            resolution: None,
            classified_at: None,
            recording_url: meta.and_then(|m| m.recording_url.clone()),
            probe_id: None,
        },
        streams: built.into_iter().map(|b| b.record).collect(),
    }
}

/// How far apart (in MOS) an endpoint's own figure and the probe's must be for the
/// call to be flagged: a full point is the difference between "good" and "poor".
pub const XR_DISAGREEMENT_MOS: f64 = 1.0;

/// Whether the receiving endpoint's latest report and the probe disagree sharply about
/// a stream: conversational MOS against MOS-CQ (else listening MOS against MOS-LQ).
fn disagrees(r: &StreamRecord) -> bool {
    let Some(x) = &r.xr else {
        return false;
    };
    let pairs = [(r.mos, x.latest.mos_cq), (r.mos_lq, x.latest.mos_lq)];
    pairs
        .iter()
        .find_map(|&(probe, endpoint)| Some((probe?, endpoint?)))
        .is_some_and(|(probe, endpoint)| (probe - endpoint).abs() >= XR_DISAGREEMENT_MOS)
}

/// A stream's packets that arrived outside the call's hold periods (by 5 s interval:
/// an interval overlapping a hold counts as held).
fn packets_outside(s: &Stream, holds: &[(Timestamp, Option<Timestamp>)]) -> u64 {
    if holds.is_empty() {
        return s.packets;
    }
    let len = s.playout.interval_ns();
    s.playout
        .intervals()
        .filter(|iv| {
            let start = Timestamp::from_nanos(iv.index.saturating_mul(len));
            let end = start.add_nanos(len);
            !holds
                .iter()
                .any(|(h0, h1)| *h0 < end && h1.is_none_or(|h1| h1 > start))
        })
        .map(|iv| iv.packets)
        .sum()
}
