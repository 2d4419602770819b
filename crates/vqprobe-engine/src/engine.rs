//! The sans-I/O engine: fed `(timestamp, frame)` pairs, it classifies flows, keeps
//! every stream's state, follows SIP dialogs and RTCP, and hands out finished call
//! records. It never reads a clock, a socket or a file; time comes from the packets
//! and from [`Engine::tick`].

use std::net::SocketAddr;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::calls::{self, CallAssembler, CallConfig, CallInput, MediaEndpoint};
use crate::push::PushedCall;
use crate::record::{CallRecord, CallStatus, EndedReason};
use crate::stream::{RemoteReport, Stream, StreamKey, XrQuality};
use vqprobe_wire::decode::{self, Decoded, LinkType, Segment, Transport};
use vqprobe_wire::rtcp::{self, RtcpPacket, XrBlock};
use vqprobe_wire::rtp::{self, RtpHeader};
use vqprobe_wire::sip;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Length of a quality interval.
    pub interval_ns: i64,
    /// A call with no RTP (and no SIP end) for this long ends with `rtp_timeout`.
    pub rtp_timeout_ns: i64,
    /// How long an ended dialog waits for stragglers before its record is written.
    pub linger_ns: i64,
    /// Most streams held at once; further ones are refused and counted.
    pub max_streams: usize,
    /// Headline jitter buffer: `None` adaptive, else fixed at this many ms.
    pub headline_fixed_ms: Option<f64>,
    /// Call assembly settings.
    pub calls: CallConfig,
}

impl EngineConfig {
    /// Defaults of the contract: 5 s intervals, 30 s RTP timeout.
    pub fn new(calls: CallConfig) -> Self {
        EngineConfig {
            interval_ns: 5_000_000_000,
            rtp_timeout_ns: 30_000_000_000,
            linger_ns: 2_000_000_000,
            max_streams: 100_000,
            headline_fixed_ms: None,
            calls,
        }
    }
}

/// What the engine saw, for `capture` in the JSON and for metrics.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counters {
    /// Frames fed.
    pub packets: u64,
    /// Bytes of captured frames.
    pub bytes: u64,
    /// Frames whose headers were cut or inconsistent.
    pub malformed: u64,
    /// IP fragments (not reassembled).
    pub ip_fragments: u64,
    /// Frames that were not IP/UDP/TCP.
    pub ignored: u64,
    /// UDP datagrams decoded.
    pub udp: u64,
    /// TCP segments decoded.
    pub tcp: u64,
    /// RTP packets counted into streams.
    pub rtp_packets: u64,
    /// Packets on RTP flows that did not parse as RTP (STUN, DTLS, garbage).
    pub rtp_malformed: u64,
    /// RTCP compound datagrams.
    pub rtcp_packets: u64,
    /// RTCP datagrams that failed to parse (or were cut short).
    pub rtcp_malformed: u64,
    /// SIP messages parsed.
    pub sip_messages: u64,
    /// SIP messages by method (requests) or `RESPONSE`; a bounded set of names, the
    /// rest counted as `OTHER`.
    pub sip_by_method: std::collections::BTreeMap<&'static str, u64>,
    /// Datagrams that looked like SIP but did not parse.
    pub sip_malformed: u64,
    /// Streams created.
    pub streams: u64,
    /// Streams refused because the stream cap was reached.
    pub streams_refused: u64,
    /// Call records produced.
    pub calls: u64,
}

/// RTP-looking packets held while a flow is unconfirmed; duplicated captures (SPAN
/// plus bridge) put the same packet twice in a row, so more than one is kept.
const PENDING: usize = 4;
/// Unconfirmed flows kept before old ones are expired.
const MAX_CANDIDATES: usize = 4096;

#[derive(Debug, Clone, Copy)]
enum Flow {
    /// RTP-looking packets seen; one that continues the last confirms the flow.
    Candidate {
        pending: [(RtpHeader, i64); PENDING],
        len: usize,
    },
    /// RTP (and muxed RTCP).
    Rtp {
        ssrc: vqprobe_wire::Ssrc,
        slot: usize,
    },
    /// RTCP only.
    Rtcp,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum CallRef {
    Sip(Arc<str>),
    /// Media matched to metadata the platform pushed (no SIP seen).
    Pushed(Arc<str>),
    RtpOnly,
}

/// Pushed metadata waiting for (or attached to) media.
#[derive(Debug)]
struct PushedEntry {
    meta: PushedCall,
    at_ns: i64,
}

/// Pushed metadata that never meets media is forgotten after this long.
const PUSH_TTL_NS: i64 = 3600 * 1_000_000_000;

#[derive(Debug)]
struct Slot {
    stream: Stream,
    call: CallRef,
}

/// SR or XR RRT sightings per sender SSRC: (middle 32 NTP bits, capture time).
#[derive(Debug, Default, Clone, Copy)]
struct Sightings {
    ring: [(u32, i64); 8],
    next: usize,
}

impl Sightings {
    fn add(&mut self, mid: u32, at: i64) {
        self.ring[self.next % 8] = (mid, at);
        self.next += 1;
    }

    fn find(&self, mid: u32) -> Option<i64> {
        self.ring
            .iter()
            .take(self.next.min(8))
            .find(|(m, _)| *m == mid)
            .map(|(_, at)| *at)
    }
}

/// The engine. One per capture (offline) or per shard (live).
pub struct Engine {
    cfg: EngineConfig,
    counters: Counters,
    flows: FxHashMap<(SocketAddr, SocketAddr), Flow>,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    by_key: FxHashMap<StreamKey, usize>,
    by_ssrc: FxHashMap<vqprobe_wire::Ssrc, Vec<usize>>,
    endpoints: FxHashMap<SocketAddr, MediaEndpoint>,
    rtcp_endpoints: FxHashMap<SocketAddr, Arc<str>>,
    sightings: FxHashMap<vqprobe_wire::Ssrc, Sightings>,
    pushed: FxHashMap<Arc<str>, PushedEntry>,
    pushed_endpoints: FxHashMap<SocketAddr, Arc<str>>,
    assembler: CallAssembler,
    finished: Vec<CallRecord>,
    now_ns: i64,
    first_ns: Option<i64>,
    last_tick_ns: i64,
}

impl Engine {
    /// A fresh engine.
    pub fn new(cfg: EngineConfig) -> Self {
        let assembler = CallAssembler::new(&cfg.calls.agent_header);
        Engine {
            cfg,
            counters: Counters::default(),
            flows: FxHashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            by_key: FxHashMap::default(),
            by_ssrc: FxHashMap::default(),
            endpoints: FxHashMap::default(),
            rtcp_endpoints: FxHashMap::default(),
            sightings: FxHashMap::default(),
            pushed: FxHashMap::default(),
            pushed_endpoints: FxHashMap::default(),
            assembler,
            finished: Vec::new(),
            now_ns: 0,
            first_ns: None,
            last_tick_ns: i64::MIN,
        }
    }

    /// Counters so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Capture time of the first frame fed.
    pub fn first_ns(&self) -> Option<i64> {
        self.first_ns
    }

    /// Latest capture time fed.
    pub fn now_ns(&self) -> i64 {
        self.now_ns
    }

    /// Streams held now.
    pub fn active_streams(&self) -> usize {
        self.by_key.len()
    }

    /// Open calls: SIP dialogs not yet ended, plus RTP-only pairs and pushed calls
    /// with media. O(streams); called once a second, not per packet.
    pub fn active_dialogs(&self) -> usize {
        let dialogs = self
            .assembler
            .dialogs()
            .filter(|d| d.ended_reason.is_none())
            .count();
        let mut others: rustc_hash::FxHashSet<(SocketAddr, SocketAddr, Option<&str>)> =
            rustc_hash::FxHashSet::default();
        for s in self.slots.iter().flatten() {
            match &s.call {
                CallRef::Sip(_) => {}
                CallRef::RtpOnly => {
                    let (a, b) = pair(s.stream.key.src, s.stream.key.dst);
                    others.insert((a, b, None));
                }
                CallRef::Pushed(id) => {
                    let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
                    others.insert((unspecified, unspecified, Some(id)));
                }
            }
        }
        dialogs + others.len()
    }

    /// Feeds one captured frame. Runs timeouts once per second of capture time.
    pub fn on_frame(&mut self, ts_ns: i64, link: LinkType, frame: &[u8]) {
        let decoded = decode::decode(link, frame);
        self.on_decoded(ts_ns, frame.len(), decoded);
    }

    /// Feeds a frame already decoded elsewhere (a capture thread decodes so that the
    /// engine's thread only runs the engine).
    pub fn on_decoded(
        &mut self,
        ts_ns: i64,
        frame_len: usize,
        decoded: Result<Decoded<'_>, decode::DecodeError>,
    ) {
        self.counters.packets += 1;
        self.counters.bytes += frame_len as u64;
        if self.first_ns.is_none() {
            self.first_ns = Some(ts_ns);
        }
        self.now_ns = self.now_ns.max(ts_ns);
        match decoded {
            Ok(Decoded::Segment(seg)) => self.on_segment(ts_ns, &seg),
            Ok(Decoded::Fragment) => self.counters.ip_fragments += 1,
            Ok(Decoded::Ignored) => self.counters.ignored += 1,
            Err(_) => self.counters.malformed += 1,
        }
        if self.now_ns.saturating_sub(self.last_tick_ns) >= 1_000_000_000 {
            self.last_tick_ns = self.now_ns;
            self.tick(self.now_ns);
        }
    }

    /// Feeds one decoded transport segment.
    pub fn on_segment(&mut self, ts_ns: i64, seg: &Segment<'_>) {
        match seg.transport {
            Transport::Tcp => {
                self.counters.tcp += 1;
                if sip::looks_like_sip(seg.payload) {
                    let (msgs, _) = sip::parse_stream(seg.payload);
                    for m in msgs {
                        match m {
                            Ok(m) => self.on_sip(ts_ns, seg.src, seg.dst, &m),
                            Err(_) => self.counters.sip_malformed += 1,
                        }
                    }
                }
            }
            Transport::Udp => {
                self.counters.udp += 1;
                self.on_udp(ts_ns, seg.src, seg.dst, seg.payload);
            }
        }
    }

    fn on_udp(&mut self, ts_ns: i64, src: SocketAddr, dst: SocketAddr, payload: &[u8]) {
        let flow_key = (src, dst);
        match self.flows.get(&flow_key).copied() {
            Some(Flow::Rtp { ssrc, slot }) => {
                if rtcp::is_muxed_rtcp(payload) {
                    self.on_rtcp(ts_ns, src, payload);
                    return;
                }
                match rtp::parse(payload) {
                    Ok(h) if h.ssrc == ssrc => self.feed_slot(slot, ts_ns, &h),
                    Ok(h) => self.on_rtp(ts_ns, src, dst, &h),
                    Err(_) => self.counters.rtp_malformed += 1,
                }
            }
            Some(Flow::Rtcp) => {
                // RTCP-mux (WebRTC): a flow first seen carrying RTCP also carries RTP.
                if rtcp::is_muxed_rtcp(payload) {
                    self.on_rtcp(ts_ns, src, payload);
                } else if let Some(h) = rtp::looks_like_rtp(payload) {
                    self.on_rtp(ts_ns, src, dst, &h);
                }
            }
            Some(Flow::Candidate { mut pending, len }) => match rtp::looks_like_rtp(payload) {
                Some(h) if len > 0 && rtp::continues(&pending[len - 1].0, &h) => {
                    self.flows.remove(&flow_key);
                    for (p, at) in pending.iter().take(len) {
                        if p.ssrc == h.ssrc {
                            self.on_rtp(*at, src, dst, p);
                        }
                    }
                    self.on_rtp(ts_ns, src, dst, &h);
                }
                Some(h) => {
                    let same = len > 0 && pending[len - 1].0.ssrc == h.ssrc;
                    let len = if !same {
                        pending[0] = (h, ts_ns);
                        1
                    } else if len < PENDING {
                        pending[len] = (h, ts_ns);
                        len + 1
                    } else {
                        pending.rotate_left(1);
                        pending[PENDING - 1] = (h, ts_ns);
                        PENDING
                    };
                    self.flows
                        .insert(flow_key, Flow::Candidate { pending, len });
                }
                None if rtcp::looks_like_rtcp(payload) => {
                    // RTCP muxed onto the flow confirms it as media.
                    self.flows.remove(&flow_key);
                    self.on_rtcp(ts_ns, src, payload);
                    for (p, at) in pending.iter().take(len) {
                        self.on_rtp(*at, src, dst, p);
                    }
                }
                // STUN, DTLS and the like between media packets: not our business.
                None => {}
            },
            None => self.classify_new(ts_ns, src, dst, payload),
        }
    }

    fn classify_new(&mut self, ts_ns: i64, src: SocketAddr, dst: SocketAddr, payload: &[u8]) {
        if sip::looks_like_sip(payload) {
            match sip::parse(payload) {
                Ok(m) => self.on_sip(ts_ns, src, dst, &m),
                Err(_) => self.counters.sip_malformed += 1,
            }
            return;
        }
        let signalled_rtp = self.endpoints.contains_key(&dst) || self.endpoints.contains_key(&src);
        let signalled_rtcp =
            self.rtcp_endpoints.contains_key(&dst) || self.rtcp_endpoints.contains_key(&src);
        if signalled_rtcp && !signalled_rtp && rtcp::parse_compound(payload).is_ok() {
            self.flows.insert((src, dst), Flow::Rtcp);
            self.on_rtcp(ts_ns, src, payload);
            return;
        }
        if rtcp::looks_like_rtcp(payload) {
            if !signalled_rtp {
                self.flows.insert((src, dst), Flow::Rtcp);
            }
            self.on_rtcp(ts_ns, src, payload);
            return;
        }
        let Some(h) = rtp::looks_like_rtp(payload) else {
            return;
        };
        if signalled_rtp {
            self.on_rtp(ts_ns, src, dst, &h);
        } else {
            let mut pending = [(h, ts_ns); PENDING];
            pending[0] = (h, ts_ns);
            self.flows
                .insert((src, dst), Flow::Candidate { pending, len: 1 });
        }
    }

    fn on_rtp(&mut self, ts_ns: i64, src: SocketAddr, dst: SocketAddr, h: &RtpHeader) {
        let key = StreamKey {
            src,
            dst,
            ssrc: h.ssrc,
        };
        let slot = match self.by_key.get(&key) {
            Some(&s) => s,
            None => match self.new_stream(key, ts_ns) {
                Some(s) => s,
                None => return,
            },
        };
        self.flows
            .insert((src, dst), Flow::Rtp { ssrc: h.ssrc, slot });
        self.feed_slot(slot, ts_ns, h);
    }

    fn feed_slot(&mut self, slot: usize, ts_ns: i64, h: &RtpHeader) {
        if let Some(Some(s)) = self.slots.get_mut(slot) {
            self.counters.rtp_packets += 1;
            s.stream.on_packet(ts_ns, h);
        }
    }

    fn new_stream(&mut self, key: StreamKey, ts_ns: i64) -> Option<usize> {
        if self.by_key.len() >= self.cfg.max_streams {
            self.counters.streams_refused += 1;
            return None;
        }
        // A new SSRC on a flow already in a call (DTMF, a codec restart) stays in it.
        if let Some(Flow::Rtp { slot, .. }) = self.flows.get(&(key.src, key.dst)) {
            if let Some(Some(s)) = self.slots.get(*slot) {
                let (call, payloads) = (s.call.clone(), s.stream.payloads());
                return Some(self.insert_stream(key, ts_ns, call, payloads));
            }
        }
        let ep = match (self.endpoints.get(&key.src), self.endpoints.get(&key.dst)) {
            // Both ends announced by different dialogs (an endpoint shared by many
            // calls, such as a media server port): the dialog that lists both wins.
            (Some(a), Some(b)) if a.call_id != b.call_id => {
                let lists_both = |id: &str| {
                    self.assembler.get(id).is_some_and(|d| {
                        let has = |x: &SocketAddr| {
                            d.caller_media.contains(x) || d.callee_media.contains(x)
                        };
                        has(&key.src) && has(&key.dst)
                    })
                };
                if lists_both(&a.call_id) {
                    Some(a)
                } else {
                    Some(b)
                }
            }
            (a, b) => b.or(a),
        };
        let (call, payloads) = match ep {
            Some(e) => (CallRef::Sip(e.call_id.clone()), Some(e.payloads.clone())),
            None => match self
                .pushed_endpoints
                .get(&key.dst)
                .or_else(|| self.pushed_endpoints.get(&key.src))
            {
                Some(id) => (CallRef::Pushed(id.clone()), None),
                None => (CallRef::RtpOnly, None),
            },
        };
        let (call, payloads) = (call, payloads);
        Some(self.insert_stream(key, ts_ns, call, payloads))
    }

    fn insert_stream(
        &mut self,
        key: StreamKey,
        ts_ns: i64,
        call: CallRef,
        payloads: Option<Arc<crate::media::PayloadMap>>,
    ) -> usize {
        let stream = Stream::new(key, ts_ns, payloads, self.cfg.interval_ns, true)
            .with_headline_buffer(self.cfg.headline_fixed_ms);
        let slot = Slot { stream, call };
        let idx = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(slot);
                i
            }
            None => {
                self.slots.push(Some(slot));
                self.slots.len() - 1
            }
        };
        self.by_key.insert(key, idx);
        self.by_ssrc.entry(key.ssrc).or_default().push(idx);
        self.counters.streams += 1;
        idx
    }

    fn on_sip(&mut self, ts_ns: i64, src: SocketAddr, dst: SocketAddr, msg: &sip::SipMessage<'_>) {
        self.counters.sip_messages += 1;
        let method = if msg.is_request() {
            method_label(msg.method())
        } else {
            "RESPONSE"
        };
        *self.counters.sip_by_method.entry(method).or_insert(0) += 1;
        let out = self.assembler.on_sip(ts_ns, src, dst, msg);
        for ep in out.media {
            self.rtcp_endpoints.insert(ep.rtcp, ep.call_id.clone());
            // Streams that started before their SDP was seen join the call now.
            for s in self.slots.iter_mut().flatten() {
                if s.call == CallRef::RtpOnly
                    && (s.stream.key.dst == ep.rtp || s.stream.key.src == ep.rtp)
                {
                    s.call = CallRef::Sip(ep.call_id.clone());
                    s.stream.set_payloads(ep.payloads.clone());
                }
            }
            self.endpoints.insert(ep.rtp, ep);
        }
    }

    /// Registers call metadata pushed by the platform: media at its endpoints becomes
    /// that call (RTP-only streams already running there join it now).
    pub fn push_call(&mut self, call: PushedCall, now_ns: i64) {
        let id: Arc<str> = Arc::from(call.call_id.as_str());
        let addrs: Vec<SocketAddr> = call.media.iter().map(|m| m.socket()).collect();
        for a in &addrs {
            self.pushed_endpoints.insert(*a, id.clone());
        }
        for s in self.slots.iter_mut().flatten() {
            if s.call == CallRef::RtpOnly
                && (addrs.contains(&s.stream.key.src) || addrs.contains(&s.stream.key.dst))
            {
                s.call = CallRef::Pushed(id.clone());
            }
        }
        self.pushed.insert(
            id,
            PushedEntry {
                meta: call,
                at_ns: now_ns,
            },
        );
    }

    /// Pushed metadata that matches a SIP dialog's media, if any.
    fn meta_for_dialog(&self, d: &calls::Dialog, streams: &[&Stream]) -> Option<Arc<str>> {
        d.caller_media
            .iter()
            .chain(d.callee_media.iter())
            .chain(streams.iter().flat_map(|s| [&s.key.src, &s.key.dst]))
            .find_map(|a| self.pushed_endpoints.get(a).cloned())
    }

    fn forget_push(&mut self, id: &Arc<str>) {
        self.pushed.remove(id);
        self.pushed_endpoints.retain(|_, v| v != id);
    }

    fn on_rtcp(&mut self, ts_ns: i64, src: SocketAddr, payload: &[u8]) {
        self.counters.rtcp_packets += 1;
        let compound = match rtcp::parse_compound(payload) {
            Ok(c) => c,
            Err(_) => {
                self.counters.rtcp_malformed += 1;
                return;
            }
        };
        if compound.truncated {
            self.counters.rtcp_malformed += 1;
        }
        for p in &compound.packets {
            match p {
                RtcpPacket::Sr(sr) => {
                    self.sightings
                        .entry(vqprobe_wire::Ssrc(sr.ssrc))
                        .or_default()
                        .add(sr.ntp.middle32(), ts_ns);
                }
                RtcpPacket::Xr(xr) => {
                    for b in &xr.blocks {
                        match b {
                            XrBlock::ReceiverReferenceTime(ntp) => {
                                self.sightings
                                    .entry(vqprobe_wire::Ssrc(xr.ssrc))
                                    .or_default()
                                    .add(ntp.middle32(), ts_ns);
                            }
                            XrBlock::Dlrr(subs) => {
                                for sb in subs {
                                    self.rtt_sample(
                                        vqprobe_wire::Ssrc(sb.ssrc),
                                        src,
                                        sb.lrr,
                                        sb.dlrr,
                                        ts_ns,
                                    );
                                }
                            }
                            XrBlock::VoipMetrics(vm) => {
                                if let Some(slot) =
                                    self.stream_for_report(vqprobe_wire::Ssrc(vm.ssrc), src)
                                {
                                    if let Some(Some(s)) = self.slots.get_mut(slot) {
                                        s.stream.xr = Some(XrQuality {
                                            r_factor: vm.r_factor.map(f64::from),
                                            mos_lq: vm.mos_lq,
                                            mos_cq: vm.mos_cq,
                                        });
                                    }
                                }
                            }
                            XrBlock::Unknown { .. } => {}
                        }
                    }
                }
                _ => {}
            }
        }
        for (_reporter, rb) in compound.report_blocks() {
            if let Some(slot) = self.stream_for_report(vqprobe_wire::Ssrc(rb.ssrc), src) {
                if let Some(Some(s)) = self.slots.get_mut(slot) {
                    let clock = s.stream.clock;
                    s.stream.on_remote_report(RemoteReport {
                        fraction_lost: rb.fraction_lost_ratio(),
                        cumulative_lost: i64::from(rb.cumulative_lost),
                        jitter_ms: rb.jitter_ms(clock),
                        ext_highest_seq: rb.ext_highest_seq,
                        at_ns: ts_ns,
                    });
                }
            }
            self.rtt_sample(vqprobe_wire::Ssrc(rb.ssrc), src, rb.lsr, rb.dlsr, ts_ns);
        }
    }

    /// Probe-to-far-end round trip: RR arrival − sighting of the SR named by LSR − DLSR.
    fn rtt_sample(
        &mut self,
        about: vqprobe_wire::Ssrc,
        reporter: SocketAddr,
        lsr: u32,
        dlsr: u32,
        ts_ns: i64,
    ) {
        if lsr == 0 {
            return;
        }
        let Some(sent) = self.sightings.get(&about).and_then(|s| s.find(lsr)) else {
            return;
        };
        let rtt_ms = (ts_ns - sent) as f64 / 1e6 - f64::from(dlsr) * 1000.0 / 65536.0;
        if let Some(slot) = self.stream_for_report(about, reporter) {
            if let Some(Some(s)) = self.slots.get_mut(slot) {
                s.stream.rtt.add(rtt_ms);
            }
        }
    }

    /// The stream a report block is about: its SSRC, preferring the one whose receiver
    /// is the reporter (B2BUAs reuse SSRCs across legs).
    fn stream_for_report(&self, ssrc: vqprobe_wire::Ssrc, reporter: SocketAddr) -> Option<usize> {
        let cands = self.by_ssrc.get(&ssrc)?;
        let slot_of = |i: &usize| self.slots.get(*i).and_then(|s| s.as_ref());
        cands
            .iter()
            .find(|i| slot_of(i).is_some_and(|s| s.stream.key.dst.ip() == reporter.ip()))
            .or_else(|| cands.last())
            .copied()
    }

    /// Runs timeouts at capture time `now_ns`: ends calls whose SIP ended (after a
    /// short linger) or whose media went silent, and frees their state.
    pub fn tick(&mut self, now_ns: i64) {
        // Unconfirmed flows are forgotten after 10 s, but only once there are many:
        // merged captures jump in time and must not lose a flow's first packets.
        let candidates = self
            .flows
            .values()
            .filter(|f| matches!(f, Flow::Candidate { .. }))
            .count();
        if candidates > MAX_CANDIDATES {
            self.flows.retain(|_, f| match f {
                Flow::Candidate { pending, len } => {
                    now_ns.saturating_sub(pending[len.saturating_sub(1)].1) < 10_000_000_000
                }
                _ => true,
            });
        }
        // RTCP-only flows carry no state of their own (a packet re-classifies in a few
        // byte checks), so when they pile up beyond what the live streams explain they
        // are simply forgotten; SR sightings live only as long as their stream.
        if self.flows.len() > 2 * self.by_key.len() + MAX_CANDIDATES {
            self.flows.retain(|_, f| !matches!(f, Flow::Rtcp));
        }
        let by_ssrc = &self.by_ssrc;
        self.sightings.retain(|ssrc, _| by_ssrc.contains_key(ssrc));
        let timeout = self.cfg.rtp_timeout_ns;
        let linger = self.cfg.linger_ns;
        let mut last_media: FxHashMap<Arc<str>, i64> = FxHashMap::default();
        for s in self.slots.iter().flatten() {
            if let CallRef::Sip(id) = &s.call {
                let e = last_media.entry(id.clone()).or_insert(i64::MIN);
                *e = (*e).max(s.stream.last_ns);
            }
        }
        let mut done: Vec<(Arc<str>, (CallStatus, EndedReason))> = Vec::new();
        for d in self.assembler.dialogs() {
            let media = last_media.get(&d.call_id).copied();
            let activity = media.unwrap_or(i64::MIN).max(d.last_sip_ns);
            if let Some(end) = d.ended_ns {
                if now_ns.saturating_sub(end) >= linger
                    && now_ns.saturating_sub(media.unwrap_or(i64::MIN)) >= linger
                {
                    done.push((d.call_id.clone(), (d.status, EndedReason::Bye)));
                }
            } else if d.answered_ns.is_some() || media.is_some() {
                if now_ns.saturating_sub(activity) >= timeout {
                    done.push((
                        d.call_id.clone(),
                        (CallStatus::Completed, EndedReason::RtpTimeout),
                    ));
                }
            } else if now_ns.saturating_sub(d.last_sip_ns) >= timeout.max(300_000_000_000) {
                done.push((
                    d.call_id.clone(),
                    (CallStatus::Abandoned, EndedReason::RtpTimeout),
                ));
            }
        }
        for (id, end) in done {
            self.finish_dialog(&id, end, false);
        }
        self.finish_rtp_only(
            Some(now_ns.saturating_sub(timeout)),
            (CallStatus::Completed, EndedReason::RtpTimeout),
        );
        self.finish_pushed(
            Some(now_ns.saturating_sub(timeout)),
            (CallStatus::Completed, EndedReason::RtpTimeout),
        );
    }

    fn take_streams(&mut self, pred: impl Fn(&Slot) -> bool) -> Vec<Stream> {
        let mut out = Vec::new();
        for i in 0..self.slots.len() {
            let take = self.slots[i].as_ref().is_some_and(&pred);
            if take {
                if let Some(slot) = self.slots[i].take() {
                    let key = slot.stream.key;
                    self.by_key.remove(&key);
                    if let Some(v) = self.by_ssrc.get_mut(&key.ssrc) {
                        v.retain(|&x| x != i);
                        if v.is_empty() {
                            self.by_ssrc.remove(&key.ssrc);
                        }
                    }
                    self.flows.remove(&(key.src, key.dst));
                    self.free.push(i);
                    let mut s = slot.stream;
                    s.finish();
                    out.push(s);
                }
            }
        }
        out
    }

    fn finish_dialog(
        &mut self,
        id: &Arc<str>,
        fallback: (CallStatus, EndedReason),
        in_progress: bool,
    ) {
        let streams = self.take_streams(|s| s.call == CallRef::Sip(id.clone()));
        let Some(dialog) = self.assembler.remove(id) else {
            return;
        };
        self.endpoints.retain(|_, e| e.call_id != *id);
        self.rtcp_endpoints.retain(|_, c| c != id);
        let push_id = self.meta_for_dialog(&dialog, &streams.iter().collect::<Vec<_>>());
        let meta = push_id
            .as_ref()
            .and_then(|p| self.pushed.get(p))
            .map(|e| &e.meta);
        let record = calls::build_record(
            &self.cfg.calls,
            CallInput {
                call_id: dialog.call_id.to_string(),
                dialog: Some(&dialog),
                streams: streams.iter().collect(),
                fallback_end: fallback,
                in_progress,
                meta,
            },
        );
        if let Some(p) = push_id {
            self.forget_push(&p);
        }
        self.counters.calls += 1;
        self.finished.push(record);
    }

    /// Ends RTP-only pairs whose streams all went quiet before `idle_before` (all of
    /// them when `None`).
    fn finish_rtp_only(&mut self, idle_before: Option<i64>, end: (CallStatus, EndedReason)) {
        // Group RTP-only streams by unordered endpoint pair.
        let mut pairs: FxHashMap<(SocketAddr, SocketAddr), (i64, i64)> = FxHashMap::default();
        for s in self.slots.iter().flatten() {
            if s.call != CallRef::RtpOnly {
                continue;
            }
            let k = pair(s.stream.key.src, s.stream.key.dst);
            let e = pairs.entry(k).or_insert((i64::MAX, i64::MIN));
            e.0 = e.0.min(s.stream.first_ns);
            e.1 = e.1.max(s.stream.last_ns);
        }
        let mut ready: Vec<((SocketAddr, SocketAddr), i64)> = pairs
            .into_iter()
            .filter(|(_, (_, last))| idle_before.is_none_or(|t| *last < t))
            .map(|(k, (first, _))| (k, first))
            .collect();
        ready.sort_by_key(|(k, first)| (*first, *k));
        for (k, first) in ready {
            let streams = self.take_streams(|s| {
                s.call == CallRef::RtpOnly && pair(s.stream.key.src, s.stream.key.dst) == k
            });
            let record = calls::build_record(
                &self.cfg.calls,
                CallInput {
                    call_id: calls::synthesized_id(k.0, k.1, first),
                    dialog: None,
                    streams: streams.iter().collect(),
                    fallback_end: end,
                    in_progress: false,
                    meta: None,
                },
            );
            self.counters.calls += 1;
            self.finished.push(record);
        }
    }

    /// Ends pushed calls whose streams all went quiet before `idle_before` (all when
    /// `None`), and forgets pushed metadata that never met media within its TTL.
    fn finish_pushed(&mut self, idle_before: Option<i64>, end: (CallStatus, EndedReason)) {
        let mut last: FxHashMap<Arc<str>, i64> = FxHashMap::default();
        for s in self.slots.iter().flatten() {
            if let CallRef::Pushed(id) = &s.call {
                let e = last.entry(id.clone()).or_insert(i64::MIN);
                *e = (*e).max(s.stream.last_ns);
            }
        }
        let mut ready: Vec<Arc<str>> = last
            .into_iter()
            .filter(|(_, l)| idle_before.is_none_or(|t| *l < t))
            .map(|(id, _)| id)
            .collect();
        ready.sort();
        for id in ready {
            let streams = self.take_streams(|s| s.call == CallRef::Pushed(id.clone()));
            let record = calls::build_record(
                &self.cfg.calls,
                CallInput {
                    call_id: id.to_string(),
                    dialog: None,
                    streams: streams.iter().collect(),
                    fallback_end: end,
                    in_progress: false,
                    meta: self.pushed.get(&id).map(|e| &e.meta),
                },
            );
            self.forget_push(&id);
            self.counters.calls += 1;
            self.finished.push(record);
        }
        if let Some(t) = idle_before {
            let now = t.saturating_add(self.cfg.rtp_timeout_ns);
            let stale: Vec<Arc<str>> = self
                .pushed
                .iter()
                .filter(|(_, e)| now.saturating_sub(e.at_ns) > PUSH_TTL_NS)
                .map(|(k, _)| k.clone())
                .collect();
            for id in stale {
                self.forget_push(&id);
            }
        }
    }

    /// In-progress records of every open call, from the figures final so far (the
    /// live daemon stores these every interval so active calls are visible).
    pub fn interim_records(&self) -> Vec<CallRecord> {
        let mut by_call: FxHashMap<Arc<str>, Vec<&Stream>> = FxHashMap::default();
        let mut by_push: FxHashMap<Arc<str>, Vec<&Stream>> = FxHashMap::default();
        let mut pairs: FxHashMap<(SocketAddr, SocketAddr), Vec<&Stream>> = FxHashMap::default();
        for s in self.slots.iter().flatten() {
            match &s.call {
                CallRef::Sip(id) => by_call.entry(id.clone()).or_default().push(&s.stream),
                CallRef::Pushed(id) => by_push.entry(id.clone()).or_default().push(&s.stream),
                CallRef::RtpOnly => pairs
                    .entry(pair(s.stream.key.src, s.stream.key.dst))
                    .or_default()
                    .push(&s.stream),
            }
        }
        let mut out = Vec::new();
        for d in self.assembler.dialogs() {
            let streams = by_call.remove(&d.call_id).unwrap_or_default();
            if d.ended_reason.is_some() {
                // Ended, lingering for stragglers: its final record follows shortly, and
                // an interim one would look final with figures not yet complete.
                continue;
            }
            let meta = self
                .meta_for_dialog(d, &streams)
                .and_then(|p| self.pushed.get(&p))
                .map(|e| &e.meta);
            out.push(calls::build_record(
                &self.cfg.calls,
                CallInput {
                    call_id: d.call_id.to_string(),
                    dialog: Some(d),
                    streams,
                    fallback_end: (CallStatus::InProgress, EndedReason::Shutdown),
                    in_progress: true,
                    meta,
                },
            ));
        }
        for (id, streams) in by_push {
            out.push(calls::build_record(
                &self.cfg.calls,
                CallInput {
                    call_id: id.to_string(),
                    dialog: None,
                    streams,
                    fallback_end: (CallStatus::InProgress, EndedReason::Shutdown),
                    in_progress: true,
                    meta: self.pushed.get(&id).map(|e| &e.meta),
                },
            ));
        }
        for ((a, b), streams) in pairs {
            let first = streams.iter().map(|s| s.first_ns).min().unwrap_or(0);
            out.push(calls::build_record(
                &self.cfg.calls,
                CallInput {
                    call_id: calls::synthesized_id(a, b, first),
                    dialog: None,
                    streams,
                    fallback_end: (CallStatus::InProgress, EndedReason::Shutdown),
                    in_progress: true,
                    meta: None,
                },
            ));
        }
        out
    }

    /// Call records finished so far (drains them).
    pub fn drain_finished(&mut self) -> Vec<CallRecord> {
        std::mem::take(&mut self.finished)
    }

    /// Ends every open call with `reason` (end of capture, shutdown) and returns all
    /// records not yet drained, ordered by start time.
    pub fn finish(&mut self, reason: EndedReason) -> Vec<CallRecord> {
        let mut ids: Vec<(i64, Arc<str>)> = self
            .assembler
            .dialogs()
            .map(|d| (d.created_ns, d.call_id.clone()))
            .collect();
        ids.sort();
        for (_, id) in ids {
            self.finish_dialog(&id, (CallStatus::Completed, reason), false);
        }
        self.finish_rtp_only(None, (CallStatus::Completed, reason));
        self.finish_pushed(None, (CallStatus::Completed, reason));
        let mut out = self.drain_finished();
        out.sort_by(|a, b| {
            a.call
                .created_at
                .cmp(&b.call.created_at)
                .then(a.call.call_id.cmp(&b.call.call_id))
        });
        out
    }
}

/// A bounded label for a SIP method.
fn method_label(m: sip::Method<'_>) -> &'static str {
    use sip::Method as M;
    match m {
        M::Invite => "INVITE",
        M::Ack => "ACK",
        M::Bye => "BYE",
        M::Cancel => "CANCEL",
        M::Options => "OPTIONS",
        M::Register => "REGISTER",
        M::Prack => "PRACK",
        M::Update => "UPDATE",
        M::Info => "INFO",
        M::Subscribe => "SUBSCRIBE",
        M::Notify => "NOTIFY",
        M::Publish => "PUBLISH",
        M::Refer => "REFER",
        M::Message => "MESSAGE",
        M::Other(_) => "OTHER",
    }
}

fn pair(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::MediaAddr;

    fn frame(src: SocketAddr, dst: SocketAddr, seq: u16) -> Vec<u8> {
        let mut rtp = vec![0x80, 0];
        rtp.extend_from_slice(&seq.to_be_bytes());
        rtp.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        rtp.extend_from_slice(&0xabcd_0001u32.to_be_bytes());
        rtp.extend_from_slice(&[0xd5; 160]);
        let (SocketAddr::V4(s), SocketAddr::V4(d)) = (src, dst) else {
            panic!("v4 only in this test");
        };
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0];
        ip.extend_from_slice(&s.ip().octets());
        ip.extend_from_slice(&d.ip().octets());
        ip[2..4].copy_from_slice(&((20 + 8 + rtp.len()) as u16).to_be_bytes());
        ip.extend_from_slice(&s.port().to_be_bytes());
        ip.extend_from_slice(&d.port().to_be_bytes());
        ip.extend_from_slice(&((8 + rtp.len()) as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 0]);
        ip.extend_from_slice(&rtp);
        ip
    }

    #[test]
    fn rtcp_only_flows_do_not_pile_up() {
        let cfg = EngineConfig::new(crate::calls::CallConfig::with_mno(Arc::new(
            crate::mno::MnoTable::embedded(),
        )));
        let mut e = Engine::new(cfg);
        // An RR with no report blocks from 10,000 different ports.
        let rr = [0x80u8, 201, 0, 1, 0, 0, 0, 7];
        for i in 0..10_000u16 {
            let src: SocketAddr = SocketAddr::from(([192, 0, 2, 1], 1000 + i));
            let dst: SocketAddr = "198.51.100.5:40001".parse().expect("addr");
            e.on_udp(i64::from(i) * 1_000_000, src, dst, &rr);
        }
        e.tick(20_000_000_000);
        assert!(
            e.flows.len() <= MAX_CANDIDATES,
            "{} flows kept",
            e.flows.len()
        );
        assert!(e.sightings.is_empty());
        assert_eq!(e.counters().rtcp_packets, 10_000);
    }

    #[test]
    fn pushed_metadata_names_the_rtp_only_call() {
        let cfg = EngineConfig::new(crate::calls::CallConfig::with_mno(Arc::new(
            crate::mno::MnoTable::embedded(),
        )));
        let mut e = Engine::new(cfg);
        let far: SocketAddr = "192.0.2.10:30000".parse().expect("addr");
        let us: SocketAddr = "198.51.100.5:40000".parse().expect("addr");
        e.push_call(
            PushedCall {
                call_id: "platform-123".into(),
                agent_id: Some("agent-7".into()),
                from_number: Some("+447700900123".into()),
                to_number: Some("+15551230000".into()),
                direction: Some(crate::record::Direction::Inbound),
                mno: Some("Example Mobile".into()),
                recording_url: None,
                media: vec![MediaAddr {
                    ip: us.ip(),
                    port: us.port(),
                }],
            },
            0,
        );
        for i in 0..100u16 {
            e.on_frame(
                i64::from(i) * 20_000_000,
                LinkType::RawIp,
                &frame(far, us, i),
            );
        }
        let recs = e.finish(EndedReason::EndOfCapture);
        assert_eq!(recs.len(), 1);
        let r = &recs[0];
        assert_eq!(r.call.call_id, "platform-123");
        assert_eq!(r.call.agent_id.as_deref(), Some("agent-7"));
        assert_eq!(r.call.mno, "Example Mobile");
        assert_eq!(r.streams.len(), 1);
        assert_eq!(r.streams[0].packets, 100);
    }
}
