//! Call assembly: SIP dialogs and their media, RTP-only pairs, and the call record
//! built from them.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use rustc_hash::FxHashMap;

use crate::codec::{CodecTable, Impairment};
use crate::media::{PayloadFormat, PayloadMap};
use crate::mno::MnoTable;
use crate::record::{
    self, CallRecord, CallStatus, CallSummary, Direction, EndedReason, IntervalRecord,
    QualityRecord, RemoteRecord, StreamRecord,
};
use crate::score::{self, ScoreContext, StreamScore};
use crate::stream::Stream;
use vqprobe_wire::sdp::SessionDescription;
use vqprobe_wire::sip::{Method, SipMessage};

/// Settings the assembler and record builder need.
#[derive(Debug, Clone)]
pub struct CallConfig {
    /// SIP header naming the agent (`X-Agent-Id` by default).
    pub agent_header: String,
    /// Networks of the probed host; empty means "decide from SIP roles".
    pub local_nets: Vec<IpNet>,
    /// E.164 prefix → MNO table.
    pub mno: Arc<MnoTable>,
    /// Codec impairment values (with config overrides).
    pub codecs: Arc<CodecTable>,
}

impl CallConfig {
    /// Defaults of the contract (agent header `X-Agent-Id`, no local networks, the
    /// built-in codec table) with the given MNO table.
    pub fn with_mno(mno: Arc<MnoTable>) -> CallConfig {
        CallConfig {
            agent_header: "X-Agent-Id".to_string(),
            local_nets: Vec::new(),
            mno,
            codecs: Arc::new(CodecTable::default()),
        }
    }
}

/// A media endpoint a dialog's SDP announced.
#[derive(Debug, Clone)]
pub struct MediaEndpoint {
    /// Dialog (Call-ID) it belongs to.
    pub call_id: Arc<str>,
    /// RTP address and port.
    pub rtp: SocketAddr,
    /// RTCP address and port (equal to `rtp` with rtcp-mux).
    pub rtcp: SocketAddr,
    /// Payload formats offered/answered there.
    pub payloads: Arc<PayloadMap>,
}

/// One SIP dialog (INVITE transaction and what follows).
#[derive(Debug, Clone)]
pub struct Dialog {
    /// SIP Call-ID.
    pub call_id: Arc<str>,
    /// INVITE capture time.
    pub created_ns: i64,
    /// 2xx to the INVITE.
    pub answered_ns: Option<i64>,
    /// BYE, CANCEL or final error.
    pub ended_ns: Option<i64>,
    /// Current status.
    pub status: CallStatus,
    /// Why it ended.
    pub ended_reason: Option<EndedReason>,
    /// Last final response code to an INVITE.
    pub final_code: Option<u16>,
    /// Caller's number.
    pub from_number: Option<String>,
    /// Callee's number.
    pub to_number: Option<String>,
    /// Agent from the configured header.
    pub agent_id: Option<String>,
    /// Where the first INVITE came from.
    pub caller_signalling: SocketAddr,
    /// Where it went.
    pub callee_signalling: SocketAddr,
    /// Media endpoints in the caller's SDP (offer in the INVITE).
    pub caller_media: Vec<SocketAddr>,
    /// Media endpoints in the callee's SDP (answer).
    pub callee_media: Vec<SocketAddr>,
    /// Primary codec named by SDP.
    pub sdp_codec: Option<String>,
    /// Last SIP message of the dialog.
    pub last_sip_ns: i64,
    cancelled: bool,
}

/// What the assembler learnt from one SIP message.
#[derive(Debug, Default)]
pub struct SipOutcome {
    /// Media endpoints to bind to the dialog.
    pub media: Vec<MediaEndpoint>,
    /// The dialog reached a final state (BYE, CANCEL+487, final error).
    pub ended: Option<Arc<str>>,
}

/// Tracks SIP dialogs by Call-ID.
#[derive(Debug, Default)]
pub struct CallAssembler {
    dialogs: FxHashMap<Arc<str>, Dialog>,
    agent_header: String,
}

impl CallAssembler {
    /// An assembler reading the agent from `agent_header`.
    pub fn new(agent_header: &str) -> Self {
        CallAssembler {
            dialogs: FxHashMap::default(),
            agent_header: agent_header.to_string(),
        }
    }

    /// The dialog with this Call-ID.
    pub fn get(&self, call_id: &str) -> Option<&Dialog> {
        self.dialogs.get(call_id)
    }

    /// Removes and returns a dialog.
    pub fn remove(&mut self, call_id: &str) -> Option<Dialog> {
        self.dialogs.remove(call_id)
    }

    /// Dialogs still held.
    pub fn dialogs(&self) -> impl Iterator<Item = &Dialog> {
        self.dialogs.values()
    }

    /// Number of dialogs held.
    pub fn len(&self) -> usize {
        self.dialogs.len()
    }

    /// Whether no dialog is held.
    pub fn is_empty(&self) -> bool {
        self.dialogs.is_empty()
    }

    /// Feeds one SIP message seen at `ts_ns` from `src` to `dst`.
    pub fn on_sip(
        &mut self,
        ts_ns: i64,
        src: SocketAddr,
        dst: SocketAddr,
        msg: &SipMessage<'_>,
    ) -> SipOutcome {
        let mut out = SipOutcome::default();
        let method = msg.method();
        let is_invite_tx = method == Method::Invite;
        if !self.dialogs.contains_key(msg.call_id) {
            // Only an INVITE opens a call; REGISTER, OPTIONS, SUBSCRIBE… are not calls.
            if !(is_invite_tx && msg.is_request()) {
                return out;
            }
            let call_id: Arc<str> = Arc::from(msg.call_id);
            self.dialogs.insert(
                call_id.clone(),
                Dialog {
                    call_id,
                    created_ns: ts_ns,
                    answered_ns: None,
                    ended_ns: None,
                    status: CallStatus::InProgress,
                    ended_reason: None,
                    final_code: None,
                    from_number: msg.caller_number(),
                    to_number: msg.callee_number(),
                    agent_id: msg.header(&self.agent_header).map(|s| s.trim().to_string()),
                    caller_signalling: src,
                    callee_signalling: dst,
                    caller_media: Vec::new(),
                    callee_media: Vec::new(),
                    sdp_codec: None,
                    last_sip_ns: ts_ns,
                    cancelled: false,
                },
            );
        }
        let Some(d) = self.dialogs.get_mut(msg.call_id) else {
            return out;
        };
        d.last_sip_ns = ts_ns;
        if d.agent_id.is_none() {
            d.agent_id = msg.header(&self.agent_header).map(|s| s.trim().to_string());
        }
        if let Some(sdp) = &msg.sdp {
            // Who sent this SDP: the caller's side sends from the caller's signalling
            // address (requests and responses alike), or towards the callee's.
            let from_caller = src == d.caller_signalling
                || (src != d.callee_signalling && dst == d.callee_signalling);
            let endpoints = media_endpoints(&d.call_id, sdp);
            let list = if from_caller {
                &mut d.caller_media
            } else {
                &mut d.callee_media
            };
            for e in &endpoints {
                if !list.contains(&e.rtp) {
                    list.push(e.rtp);
                }
            }
            if d.sdp_codec.is_none() {
                d.sdp_codec = sdp
                    .audio()
                    .find_map(|m| m.primary_codec().map(|c| c.encoding.clone()));
            }
            out.media = endpoints;
        }
        match (msg.status(), method) {
            // A new INVITE after an auth challenge reopens the call.
            (None, Method::Invite)
                if d.ended_reason.is_none()
                    || d.final_code.is_some_and(|c| c == 401 || c == 407) =>
            {
                d.status = CallStatus::InProgress;
                d.ended_reason = None;
                d.ended_ns = None;
            }
            (None, Method::Cancel) if d.answered_ns.is_none() => {
                d.cancelled = true;
                d.status = CallStatus::Abandoned;
                d.ended_reason = Some(EndedReason::Cancel);
                d.ended_ns = Some(ts_ns);
                out.ended = Some(d.call_id.clone());
            }
            (None, Method::Bye) if d.ended_ns.is_none() => {
                d.ended_ns = Some(ts_ns);
                d.ended_reason = Some(EndedReason::Bye);
                d.status = if d.answered_ns.is_some() {
                    CallStatus::Completed
                } else {
                    CallStatus::Abandoned
                };
                out.ended = Some(d.call_id.clone());
            }
            // An auth challenge is answered by a new INVITE in the same dialog: not
            // an end. If no retry follows, the call fails when it times out.
            (Some(code @ (401 | 407)), Method::Invite) => {
                d.final_code = Some(code);
            }
            (Some(code), Method::Invite) if code >= 200 => {
                d.final_code = Some(code);
                if (200..300).contains(&code) {
                    if d.answered_ns.is_none() {
                        d.answered_ns = Some(ts_ns);
                    }
                } else if d.answered_ns.is_none() && d.ended_reason.is_none() {
                    if code == 487 || d.cancelled {
                        d.status = CallStatus::Abandoned;
                        d.ended_reason = Some(EndedReason::Cancel);
                    } else {
                        d.status = CallStatus::Failed;
                        d.ended_reason = Some(EndedReason::Error);
                    }
                    d.ended_ns = Some(ts_ns);
                    out.ended = Some(d.call_id.clone());
                }
            }
            _ => {}
        }
        out
    }
}

fn media_endpoints(call_id: &Arc<str>, sdp: &SessionDescription) -> Vec<MediaEndpoint> {
    let mut out = Vec::new();
    for m in sdp.audio() {
        if m.is_rejected() {
            continue;
        }
        let Some(addr) = m.effective_addr(sdp) else {
            continue;
        };
        if addr.is_unspecified() {
            continue;
        }
        let rtcp_addr = m.rtcp_addr(sdp).unwrap_or(addr);
        let formats = m
            .formats
            .iter()
            .filter_map(|&pt| {
                m.codec_for_pt(pt)
                    .cloned()
                    .or_else(|| vqprobe_wire::sdp::static_rtpmap(pt))
            })
            .map(|r| PayloadFormat {
                pt: vqprobe_wire::Pt(r.pt),
                encoding: r.encoding,
                clock_rate: r.clock_rate,
            })
            .collect();
        out.push(MediaEndpoint {
            call_id: call_id.clone(),
            rtp: SocketAddr::new(addr, m.port),
            rtcp: SocketAddr::new(rtcp_addr, m.rtcp_port()),
            payloads: Arc::new(PayloadMap {
                formats,
                ptime_ms: m.ptime_ms,
            }),
        });
    }
    out
}

fn is_local(nets: &[IpNet], ip: IpAddr) -> bool {
    nets.iter().any(|n| n.contains(&ip))
}

/// Direction of a stream relative to the probed host.
pub fn stream_direction(
    cfg: &CallConfig,
    dialog: Option<&Dialog>,
    stream: &Stream,
    first_stream_src: Option<SocketAddr>,
) -> Direction {
    let (src, dst) = (stream.key.src, stream.key.dst);
    if !cfg.local_nets.is_empty() {
        if is_local(&cfg.local_nets, dst.ip()) {
            return Direction::Inbound;
        }
        if is_local(&cfg.local_nets, src.ip()) {
            return Direction::Outbound;
        }
    }
    if let Some(d) = dialog {
        // Without local networks the callee is taken as the probed host.
        if d.callee_media.contains(&dst) || d.caller_media.contains(&src) {
            return Direction::Inbound;
        }
        if d.caller_media.contains(&dst) || d.callee_media.contains(&src) {
            return Direction::Outbound;
        }
        if dst.ip() == d.callee_signalling.ip() {
            return Direction::Inbound;
        }
        if src.ip() == d.callee_signalling.ip() {
            return Direction::Outbound;
        }
    }
    // RTP only: the side that spoke first is the far end calling in.
    match first_stream_src {
        Some(first) if first == dst => Direction::Outbound,
        _ => Direction::Inbound,
    }
}

/// Direction of a call: `inbound` when the far end sent the INVITE.
pub fn call_direction(cfg: &CallConfig, dialog: Option<&Dialog>) -> Direction {
    match dialog {
        Some(d) if !cfg.local_nets.is_empty() => {
            let caller_local = is_local(&cfg.local_nets, d.caller_signalling.ip());
            let callee_local = is_local(&cfg.local_nets, d.callee_signalling.ip());
            if caller_local && !callee_local {
                Direction::Outbound
            } else {
                Direction::Inbound
            }
        }
        _ => Direction::Inbound,
    }
}

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
    let clock = (s.clock != 0).then_some(s.clock);
    let remote = s.remote.map(|r| RemoteRecord {
        fraction_lost: record::round6(r.fraction_lost),
        cumulative_lost: r.cumulative_lost,
        jitter_ms: opt6(r.jitter_ms),
    });
    // The far end hears our outbound media: its reports score that direction.
    if direction == Direction::Outbound {
        if let Some(r) = s.remote {
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
    } = input;
    streams.sort_by_key(|s| (s.first_ns, s.key));
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
    built.sort_by_key(|b| match b.record.direction {
        Direction::Inbound => 0,
        Direction::Outbound => 1,
    });

    let first_ns = streams.iter().map(|s| s.first_ns).min();
    let last_ns = streams.iter().map(|s| s.last_ns).max();
    let direction = meta
        .and_then(|m| m.direction)
        .unwrap_or_else(|| match (dialog, first_src) {
            // RTP only: the side that spoke first placed the call.
            (None, Some(src)) if is_local(&cfg.local_nets, src.ip()) => Direction::Outbound,
            _ => call_direction(cfg, dialog),
        });

    let (created_ns, status, ended_reason, ended_ns, duration_s) = match dialog {
        Some(d) => {
            let (status, reason) = match (d.ended_reason, in_progress) {
                (Some(r), _) => (d.status, Some(r)),
                (None, true) => (CallStatus::InProgress, None),
                (None, false) => {
                    if d.answered_ns.is_none() && d.final_code.is_some_and(|c| c >= 300) {
                        // Challenged and never retried.
                        (CallStatus::Failed, Some(EndedReason::Error))
                    } else {
                        let status = if d.answered_ns.is_some() {
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
            let end = d.ended_ns.or(if in_progress {
                None
            } else {
                last_ns.max(Some(d.last_sip_ns))
            });
            let start_talk = d.answered_ns.or(if d.ended_reason.is_none() {
                first_ns
            } else {
                None
            });
            let duration = match (start_talk, end.or(last_ns)) {
                (Some(a), Some(e)) if e > a => (e - a) as f64 / 1e9,
                _ => 0.0,
            };
            (d.created_ns, status, reason, end, duration)
        }
        None => {
            let start = first_ns.unwrap_or(0);
            let end = last_ns.unwrap_or(start);
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
                (end - start) as f64 / 1e9,
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
    let inbound = voice
        .iter()
        .filter(|b| b.record.direction == Direction::Inbound)
        .map(|b| b.record.packets)
        .sum::<u64>();
    let outbound = voice
        .iter()
        .filter(|b| b.record.direction == Direction::Outbound)
        .map(|b| b.record.packets)
        .sum::<u64>();
    let (hi, lo) = (inbound.max(outbound), inbound.min(outbound));
    // One direction silent: under 5 % of the other's packets, once there is media.
    let one_way_audio = hi >= score::MIN_PACKETS && lo * 20 < hi;

    let codec = voice
        .iter()
        .find_map(|b| b.record.codec.clone())
        .or_else(|| {
            dialog.and_then(|d| d.sdp_codec.as_deref()).map(|name| {
                crate::codec::by_name(name).map_or_else(|| name.to_string(), |c| c.name.to_string())
            })
        });
    let (mut from_number, mut to_number, mut agent_id) = dialog.map_or((None, None, None), |d| {
        (
            d.from_number.clone(),
            d.to_number.clone(),
            d.agent_id.clone(),
        )
    });
    if let Some(m) = meta {
        from_number = m.from_number.clone().or(from_number);
        to_number = m.to_number.clone().or(to_number);
        agent_id = m.agent_id.clone().or(agent_id);
    }
    let remote_number = match direction {
        Direction::Inbound => from_number.as_deref(),
        Direction::Outbound => to_number.as_deref(),
    };
    let (mut mno, country) = match remote_number.and_then(|n| cfg.mno.lookup(n)) {
        Some((m, c)) => (m.to_string(), Some(c.to_string())),
        None => ("unknown".to_string(), None),
    };
    // An explicit MNO from the platform wins over the prefix table.
    if let Some(m) = meta.and_then(|m| m.mno.clone()) {
        mno = m;
    }

    CallRecord {
        call: CallSummary {
            call_id: meta.map_or(call_id, |m| m.call_id.clone()),
            sip_call_id: dialog.map(|d| d.call_id.to_string()),
            agent_id,
            from_number,
            to_number,
            mno,
            country,
            direction,
            status,
            ended_reason,
            created_at: record::rfc3339(created_ns),
            ended_at: ended_ns.map(record::rfc3339),
            duration_seconds: record::round6(duration_s),
            codec,
            one_way_audio,
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
        },
        streams: built.into_iter().map(|b| b.record).collect(),
    }
}

/// A stable id for an RTP-only call: `rtp-` and 16 hex digits of FNV-1a over the
/// ordered endpoint pair and the start time, so the same capture gives the same ids.
pub fn synthesized_id(a: SocketAddr, b: SocketAddr, start_ns: i64) -> String {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in format!("{lo}|{hi}|{start_ns}").bytes() {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("rtp-{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:+15551230000@10.0.0.2 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060\r\n\
From: <sip:+447700900123@10.0.0.1>;tag=a\r\n\
To: <sip:+15551230000@10.0.0.2>\r\n\
Call-ID: abc@10.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
X-Agent-Id: agent-42\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 84\r\n\r\n\
v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

    fn msg(s: &str) -> SipMessage<'_> {
        vqprobe_wire::sip::parse(s.as_bytes()).expect("valid SIP")
    }

    fn resp(code: u16, method: &str) -> String {
        format!(
            "SIP/2.0 {code} X\r\nVia: SIP/2.0/UDP 10.0.0.1:5060\r\nFrom: <sip:a@x>;tag=a\r\n\
To: <sip:b@y>;tag=b\r\nCall-ID: abc@10.0.0.1\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
        )
    }

    fn addrs() -> (SocketAddr, SocketAddr) {
        (
            "10.0.0.1:5060".parse().expect("addr"),
            "10.0.0.2:5060".parse().expect("addr"),
        )
    }

    #[test]
    fn invite_registers_media_and_agent() {
        let mut a = CallAssembler::new("x-agent-id");
        let (c, s) = addrs();
        let out = a.on_sip(0, c, s, &msg(INVITE));
        assert_eq!(out.media.len(), 1);
        assert_eq!(out.media[0].rtp.to_string(), "10.0.0.1:4000");
        assert_eq!(out.media[0].rtcp.to_string(), "10.0.0.1:4001");
        let d = a.get("abc@10.0.0.1").expect("dialog");
        assert_eq!(d.agent_id.as_deref(), Some("agent-42"));
        assert_eq!(d.from_number.as_deref(), Some("+447700900123"));
        assert_eq!(d.caller_media.len(), 1);
    }

    #[test]
    fn busy_is_failed_and_cancel_is_abandoned() {
        let (c, s) = addrs();
        let mut a = CallAssembler::new("X-Agent-Id");
        a.on_sip(0, c, s, &msg(INVITE));
        let r = resp(486, "INVITE");
        let out = a.on_sip(1, s, c, &msg(&r));
        assert!(out.ended.is_some());
        assert_eq!(
            a.get("abc@10.0.0.1").map(|d| d.status),
            Some(CallStatus::Failed)
        );

        let mut b = CallAssembler::new("X-Agent-Id");
        b.on_sip(0, c, s, &msg(INVITE));
        let cancel = INVITE
            .replacen("INVITE sip", "CANCEL sip", 1)
            .replace("1 INVITE", "1 CANCEL");
        b.on_sip(1, c, s, &msg(&cancel));
        b.on_sip(2, s, c, &msg(&resp(487, "INVITE")));
        let d = b.get("abc@10.0.0.1").expect("dialog");
        assert_eq!(
            (d.status, d.ended_reason),
            (CallStatus::Abandoned, Some(EndedReason::Cancel))
        );
    }

    #[test]
    fn answered_then_bye_is_completed() {
        let (c, s) = addrs();
        let mut a = CallAssembler::new("X-Agent-Id");
        a.on_sip(0, c, s, &msg(INVITE));
        a.on_sip(1, s, c, &msg(&resp(200, "INVITE")));
        let bye = INVITE
            .replacen("INVITE sip", "BYE sip", 1)
            .replace("1 INVITE", "2 BYE");
        let out = a.on_sip(9, c, s, &msg(&bye));
        assert!(out.ended.is_some());
        let d = a.get("abc@10.0.0.1").expect("dialog");
        assert_eq!(
            (d.status, d.ended_reason),
            (CallStatus::Completed, Some(EndedReason::Bye))
        );
    }

    #[test]
    fn register_is_not_a_call() {
        let (c, s) = addrs();
        let mut a = CallAssembler::new("X-Agent-Id");
        let reg = INVITE
            .replacen("INVITE sip", "REGISTER sip", 1)
            .replace("1 INVITE", "1 REGISTER");
        a.on_sip(0, c, s, &msg(&reg));
        assert!(a.is_empty());
    }

    #[test]
    fn synthesized_ids_are_stable_and_symmetric() {
        let (c, s) = addrs();
        assert_eq!(synthesized_id(c, s, 5), synthesized_id(s, c, 5));
        assert!(synthesized_id(c, s, 5).starts_with("rtp-"));
    }
}
