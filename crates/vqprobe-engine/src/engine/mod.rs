//! The sans-I/O engine: fed `(time, frame)` pairs (or decoded segments and parsed SIP
//! events), it classifies flows, keeps every stream's state, follows SIP dialogs and
//! RTCP, attributes media to calls by [`crate::ownership`], and hands out finished call
//! records. It never reads a clock, a socket or a file: time comes from the packets and
//! from [`Engine::tick`], and [`Engine::poll_timeout`] tells the driver when it next
//! needs a tick (as str0m's `poll_output` does).
//!
//! Cost per packet is O(1) whatever the number of calls and streams: every lookup is a
//! hash map; a call ending, a timeout, a new stream, an RTCP report each touch only the
//! call's own streams; timeouts come off a heap.
//!
//! * [`rtp`](self) (`rtp.rs`): flows — RTP/RTCP classification, the choice of stream for
//!   a packet, payload-type hygiene;
//! * `rtcp.rs`: reports, round trips, XR;
//! * `calls.rs`: the call table — dialogs, pushed and RTP-only calls, ownership changes,
//!   hold and fax phases, timers, finished and interim records.

mod calls;
mod rtcp;
mod rtp;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;
use serde::Serialize;
use slotmap::SlotMap;
use vqprobe_wire::decode::{self, Decoded, LinkType, Segment, Transport};
use vqprobe_wire::Ssrc;

use crate::calls::{CallConfig, Dialog};
use crate::media::PayloadMap;
use crate::ownership::Ownership;
use crate::push::PushedCall;
use crate::record::{CallRecord, EndedReason};
use crate::signal::{self, OfferKind, SipEvent};
use crate::stream::{Stream, StreamKey};
use crate::time::Timestamp;

slotmap::new_key_type! {
    /// A call the engine holds (a SIP dialog, a pushed call, or an RTP-only pair).
    pub struct CallKey;
    /// A stream the engine holds.
    pub struct StreamId;
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Length of a quality interval.
    pub interval: Duration,
    /// A call with no RTP (and no SIP end) for this long ends with `rtp_timeout`.
    pub rtp_timeout: Duration,
    /// How long an ended dialog waits for stragglers before its record is written and
    /// its endpoints are free.
    pub linger: Duration,
    /// Most streams held at once; further ones are refused and counted.
    pub max_streams: usize,
    /// Streams one call may hold (a real call has a handful: both directions, a new
    /// SSRC after hold or a codec change, video); beyond it new ones are refused and
    /// counted, so an SSRC flood on a call's ports cannot grow its record.
    pub max_streams_per_call: usize,
    /// Most calls held at once; further ones are refused and counted.
    pub max_calls: usize,
    /// Headline jitter buffer: `None` adaptive, else fixed at this many ms.
    pub headline_fixed_ms: Option<f64>,
    /// Interim records of open calls this often (the daemon's live view); `None` for
    /// none (offline analysis).
    pub interim: Option<Duration>,
    /// Keep every RTCP datagram read, with its call, for the driver to mirror
    /// ([`Engine::drain_rtcp_taps`]; the daemon's HEP export).
    pub tap_rtcp: bool,
    /// Call assembly settings.
    pub calls: CallConfig,
}

impl EngineConfig {
    /// Defaults of the contract: 5 s intervals, 30 s RTP timeout, 2 s linger.
    pub fn new(calls: CallConfig) -> Self {
        EngineConfig {
            interval: Duration::from_secs(5),
            rtp_timeout: Duration::from_secs(30),
            linger: Duration::from_secs(2),
            max_streams: 100_000,
            max_streams_per_call: 64,
            max_calls: 100_000,
            headline_fixed_ms: None,
            interim: None,
            tap_rtcp: false,
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
    /// RTP packets of a payload type the call did not negotiate for their stream.
    pub other_payload_packets: u64,
    /// Packets on RTP flows that are RTP version 2 but broken (bad padding, header
    /// extension past the end).
    pub rtp_malformed: u64,
    /// Keepalives and other non-RTP datagrams on media flows (empty RTP packets,
    /// short datagrams, STUN, DTLS, ZRTP): counted, never malformed.
    pub media_keepalives: u64,
    /// RTP packets of an audio endpoint during a T.38 phase (not voice).
    pub fax_phase_packets: u64,
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
    /// Streams ended early because their endpoint changed owner or their codec was
    /// re-negotiated (their successor starts a new stream).
    pub streams_superseded: u64,
    /// Streams refused because the stream cap was reached.
    pub streams_refused: u64,
    /// Calls refused because the call cap was reached.
    pub calls_refused: u64,
    /// Streams of early dialogs (forks) that were not answered, left out of the call.
    pub fork_streams_dropped: u64,
    /// Call records produced.
    pub calls: u64,
    /// RTCP XR VoIP Metrics blocks read.
    pub xr_voip_metrics: u64,
    /// RFC 6035 quality reports (SIP PUBLISH `application/vq-rtcpxr`) read.
    pub vq_reports: u64,
    /// Of those, reports naming no call the engine holds (or no stream of it).
    pub vq_reports_unmatched: u64,
    /// RTCP datagrams not kept for the driver because [`MAX_TAPS`] were waiting.
    pub rtcp_taps_dropped: u64,
}

/// RTP-looking packets held while a flow is unconfirmed; duplicated captures (SPAN
/// plus bridge) put the same packet twice in a row, so more than one is kept.
const PENDING: usize = 4;
/// Unconfirmed flows kept before the oldest are expired.
const MAX_CANDIDATES: usize = 4096;
/// Pushed metadata that never meets media is forgotten after this long.
const PUSH_TTL: Duration = Duration::from_secs(3600);
/// A dialog that never got an answer nor media is given up after at least this long.
const UNANSWERED_TIMEOUT: Duration = Duration::from_secs(300);
/// A packet continuing a stream whose endpoint changed owner is that stream's
/// straggler when it comes within this long of the stream's last packet.
const STRAGGLER_GAP_NS: i64 = 1_000_000_000;

/// RTCP datagrams kept for the driver between two drains, at most.
pub const MAX_TAPS: usize = 4096;

/// An RTCP datagram the engine read, kept for a driver that mirrors RTCP elsewhere (the
/// daemon's HEP export), with the call it belongs to.
#[derive(Debug, Clone)]
pub struct RtcpTap {
    /// Capture time.
    pub at: Timestamp,
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// The SIP Call-ID (or pushed call id) of its call, when known.
    pub call_id: Option<Arc<str>>,
    /// The datagram, parsed.
    pub compound: vqprobe_wire::rtcp::Compound,
}

/// Per 5-tuple: what the flow has been classified as.
#[derive(Debug, Clone)]
enum Flow {
    /// RTP-looking packets seen; one that continues the last confirms the flow. Boxed:
    /// the table's entries stay small, which is what keeps a lookup among 100,000 flows
    /// to one cache line.
    Candidate(Box<Pending>),
    /// RTP (and muxed RTCP) of this stream. Dropped when either endpoint moves to
    /// another call (`Engine::invalidate_endpoint`), so a cached flow stays right.
    Rtp { ssrc: Ssrc, stream: StreamId },
}

/// Packets of an unconfirmed flow, held until one continues another.
#[derive(Debug, Clone, Copy)]
struct Pending {
    packets: [(vqprobe_wire::rtp::RtpHeader, Timestamp); PENDING],
    len: usize,
}

/// What a call's SDP said about one of its endpoints.
#[derive(Debug, Clone)]
struct MediaClaim {
    /// Payload types the endpoint expects (this negotiation's).
    payloads: Arc<PayloadMap>,
    /// Audio or T.38.
    kind: OfferKind,
    /// An RTCP endpoint (not RTP).
    rtcp: bool,
}

/// One stream and the call it belongs to.
#[derive(Debug)]
struct Slot {
    /// Boxed: the slot map's table then holds small slots, and growing it (it doubles)
    /// never reserves room for streams that do not exist.
    stream: Box<Stream>,
    call: CallKey,
    /// Superseded (owner change, codec change, fax phase): no longer takes packets by
    /// its key, still part of its call's record.
    retired: bool,
}

/// What kind of call.
#[derive(Debug)]
enum CallKind {
    /// A SIP dialog.
    Sip(Box<Dialog>),
    /// Metadata the platform pushed (no SIP seen), by its id.
    Pushed(Arc<str>),
    /// RTP between two endpoints with no signalling (unordered pair).
    RtpOnly(SocketAddr, SocketAddr),
}

/// A call the engine holds.
#[derive(Debug)]
struct Call {
    kind: CallKind,
    /// Metadata the platform pushed about it; its fields win.
    meta: Option<Box<PushedCall>>,
    /// When the metadata arrived (pushed calls without media expire from it).
    pushed_at: Timestamp,
    created: Timestamp,
    streams: Vec<StreamId>,
    /// Latest media not in its streams (UDPTL of a fax phase, streams of a call it
    /// absorbed); see `Engine::last_media`.
    last_media: Timestamp,
    /// Earliest timer entry pending for it (`MAX`: none).
    scheduled: Timestamp,
    /// When its next interim record is due (`MAX`: never).
    next_interim: Timestamp,
    /// A T.38 phase or voice-band data was signalled.
    fax: bool,
    /// A T.38 phase runs now: audio RTP is not voice.
    fax_phase: bool,
    /// Hold periods.
    holds: Vec<(Timestamp, Option<Timestamp>)>,
    /// Endpoints of early dialogs that lost to the answered one.
    lost_forks: Vec<SocketAddr>,
}

impl Call {
    fn new(kind: CallKind, at: Timestamp) -> Call {
        Call {
            kind,
            meta: None,
            pushed_at: at,
            created: at,
            streams: Vec::new(),
            last_media: Timestamp::MIN,
            scheduled: Timestamp::MAX,
            next_interim: Timestamp::MAX,
            fax: false,
            fax_phase: false,
            holds: Vec::new(),
            lost_forks: Vec::new(),
        }
    }

    fn dialog(&self) -> Option<&Dialog> {
        match &self.kind {
            CallKind::Sip(d) => Some(d),
            _ => None,
        }
    }
}

/// Streams from which [`Engine::on_batch`] warms the batch's state first. Below
/// this the streams' state fits in the caches and the extra pass only costs
/// (measured: 200 calls 5.3M packets/s with it, see the README; 20,000 calls
/// 30 % faster with it).
const WARM_STREAMS: usize = 2048;

/// One frame of a batch for [`Engine::on_batch`].
#[derive(Debug, Clone)]
pub struct BatchFrame<'a> {
    /// Capture time.
    pub at: Timestamp,
    /// Captured length.
    pub len: usize,
    /// What it decoded to.
    pub decoded: Result<Decoded<'a>, decode::DecodeError>,
    /// Its SIP, parsed by whoever routed it (`None`: the engine parses).
    pub sip: Option<&'a [Result<SipEvent, ()>]>,
}

/// SR or XR RRT sightings per sender SSRC: (middle 32 NTP bits, capture time).
#[derive(Debug, Default, Clone, Copy)]
struct Sightings {
    ring: [(u32, Timestamp); 8],
    next: usize,
}

impl Sightings {
    fn add(&mut self, mid: u32, at: Timestamp) {
        self.ring[self.next % 8] = (mid, at);
        self.next += 1;
    }

    fn find(&self, mid: u32) -> Option<Timestamp> {
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
    interval_ns: i64,
    counters: Counters,
    flows: FxHashMap<(SocketAddr, SocketAddr), Flow>,
    /// Candidate flows in creation order, to expire the oldest.
    candidates: VecDeque<((SocketAddr, SocketAddr), Timestamp)>,
    streams: SlotMap<StreamId, Slot>,
    by_key: FxHashMap<StreamKey, StreamId>,
    by_ssrc: FxHashMap<Ssrc, Vec<StreamId>>,
    sightings: FxHashMap<Ssrc, Sightings>,
    calls: SlotMap<CallKey, Call>,
    dialogs: FxHashMap<Arc<str>, CallKey>,
    pushed: FxHashMap<Arc<str>, CallKey>,
    rtp_pairs: FxHashMap<(SocketAddr, SocketAddr), CallKey>,
    /// Endpoints of live RTP-only calls, so SDP arriving after its media adopts them.
    unowned_at: FxHashMap<SocketAddr, CallKey>,
    owners: Ownership<CallKey, MediaClaim>,
    timers: BinaryHeap<Reverse<(Timestamp, CallKey)>>,
    finished: Vec<CallRecord>,
    taps: Vec<RtcpTap>,
    now: Timestamp,
    first: Option<Timestamp>,
}

impl Engine {
    /// A fresh engine.
    pub fn new(cfg: EngineConfig) -> Self {
        let interval_ns = i64::try_from(cfg.interval.as_nanos())
            .unwrap_or(5_000_000_000)
            .max(1);
        Engine {
            cfg,
            interval_ns,
            counters: Counters::default(),
            flows: FxHashMap::default(),
            candidates: VecDeque::new(),
            streams: SlotMap::with_key(),
            by_key: FxHashMap::default(),
            by_ssrc: FxHashMap::default(),
            sightings: FxHashMap::default(),
            calls: SlotMap::with_key(),
            dialogs: FxHashMap::default(),
            pushed: FxHashMap::default(),
            rtp_pairs: FxHashMap::default(),
            unowned_at: FxHashMap::default(),
            owners: Ownership::new(),
            timers: BinaryHeap::new(),
            finished: Vec::new(),
            taps: Vec::new(),
            now: Timestamp::MIN,
            first: None,
        }
    }

    /// Counters so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Capture time of the first frame fed.
    pub fn first_seen(&self) -> Option<Timestamp> {
        self.first
    }

    /// Latest capture time fed (or ticked).
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Streams held now.
    pub fn active_streams(&self) -> usize {
        self.streams.len()
    }

    /// Open calls: SIP dialogs not yet ended, RTP-only pairs, pushed calls. O(1).
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// When the engine next needs [`Engine::tick`] (a call timing out, an interim
    /// record due); `None` while it holds no call.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Feeds a batch of decoded frames, as [`Engine::on_decoded`] would one by one,
    /// with the same result — but first looks up every packet's stream and reads the
    /// memory its update will touch. Those loads are independent, so the CPU has many
    /// cache misses in flight at once instead of one after another: with tens of
    /// thousands of streams (far more state than the caches hold) this is what keeps
    /// the cost per packet near what it is with a few hundred.
    pub fn on_batch<'a>(&mut self, frames: &[BatchFrame<'a>]) {
        if self.streams.len() >= WARM_STREAMS {
            self.warm(frames);
        }
        for f in frames {
            self.on_decoded(f.at, f.len, f.decoded, f.sip);
        }
    }

    /// Reads the state `frames` will update, so the misses overlap (see
    /// [`Engine::on_batch`]).
    fn warm(&self, frames: &[BatchFrame<'_>]) {
        // Short loops with independent loads: the first finds the streams (hash
        // lookups), the next reads their state, a few lines at a time.
        let mut sids: Vec<StreamId> = Vec::with_capacity(frames.len());
        for f in frames {
            if let Ok(Decoded::Segment(seg)) = &f.decoded {
                if let Some(Flow::Rtp { stream, .. }) = self.flows.get(&(seg.src, seg.dst)) {
                    sids.push(*stream);
                }
            }
        }
        let mut warmth = 0u64;
        for sid in &sids {
            if let Some(slot) = self.streams.get(*sid) {
                warmth ^= slot.stream.packets;
            }
        }
        for sid in &sids {
            if let Some(slot) = self.streams.get(*sid) {
                warmth ^= slot.stream.warm();
            }
        }
        std::hint::black_box(warmth);
    }

    /// Feeds one captured frame: decodes it, parses SIP, runs due timers.
    pub fn on_frame(&mut self, at: Timestamp, link: LinkType, frame: &[u8]) {
        let decoded = decode::decode(link, frame);
        self.on_decoded(at, frame.len(), decoded, None);
    }

    /// Feeds a frame decoded elsewhere (a capture thread decodes to route it). When
    /// that thread also parsed its SIP, `sip` carries the result, so SIP is parsed
    /// once; with `None` the engine parses SIP itself.
    pub fn on_decoded(
        &mut self,
        at: Timestamp,
        frame_len: usize,
        decoded: Result<Decoded<'_>, decode::DecodeError>,
        sip: Option<&[Result<SipEvent, ()>]>,
    ) {
        self.counters.packets += 1;
        self.counters.bytes += frame_len as u64;
        if self.first.is_none() {
            self.first = Some(at);
        }
        self.advance(at);
        match decoded {
            Ok(Decoded::Segment(seg)) => self.on_segment(at, &seg, sip),
            Ok(Decoded::Fragment) => self.counters.ip_fragments += 1,
            Ok(Decoded::Ignored) => self.counters.ignored += 1,
            Err(_) => self.counters.malformed += 1,
        }
    }

    /// Moves the engine's clock to `at` (never backwards) and runs what fell due.
    fn advance(&mut self, at: Timestamp) {
        if at > self.now {
            self.now = at;
            if self.poll_timeout().is_some_and(|due| due <= at) {
                self.tick(at);
            }
        }
    }

    /// Feeds one decoded transport segment (SIP already parsed in `sip`, if given).
    fn on_segment(
        &mut self,
        at: Timestamp,
        seg: &Segment<'_>,
        sip: Option<&[Result<SipEvent, ()>]>,
    ) {
        match seg.transport {
            Transport::Udp => {
                self.counters.udp += 1;
                self.on_udp(at, seg.src, seg.dst, seg.payload, sip);
            }
            Transport::Tcp => {
                self.counters.tcp += 1;
                self.sip_payload(at, seg, sip);
            }
        }
    }

    /// The SIP in a payload (parsed here unless `sip` brings it parsed already);
    /// whether there was any.
    pub(super) fn sip_payload(
        &mut self,
        at: Timestamp,
        seg: &Segment<'_>,
        sip: Option<&[Result<SipEvent, ()>]>,
    ) -> bool {
        let parsed;
        let events: &[Result<SipEvent, ()>] = match sip {
            Some(ev) => ev,
            None => {
                parsed =
                    signal::parse_payload(seg.transport, seg.payload, &self.cfg.calls.agent_header)
                        .into_iter()
                        .map(|r| r.map_err(|_| ()))
                        .collect::<Vec<_>>();
                &parsed
            }
        };
        for ev in events {
            match ev {
                Ok(ev) => self.on_sip(at, seg.src, seg.dst, ev),
                Err(()) => self.counters.sip_malformed += 1,
            }
        }
        !events.is_empty()
    }

    /// Feeds one SIP message seen at `at` from `src` to `dst`.
    pub fn on_sip(&mut self, at: Timestamp, src: SocketAddr, dst: SocketAddr, ev: &SipEvent) {
        self.advance(at);
        self.counters.sip_messages += 1;
        *self.counters.sip_by_method.entry(ev.label()).or_insert(0) += 1;
        self.sip_event(at, src, dst, ev);
    }

    /// Registers call metadata pushed by the platform (at `at`, the driver's clock):
    /// media at its endpoints becomes that call's, or, when a SIP dialog already holds
    /// them, the dialog takes the metadata.
    pub fn push_call(&mut self, call: PushedCall, at: Timestamp) {
        self.advance(at);
        self.pushed_call(call, at);
    }

    /// RTCP datagrams read since the last call, with their calls (only with
    /// [`EngineConfig::tap_rtcp`]).
    pub fn drain_rtcp_taps(&mut self) -> Vec<RtcpTap> {
        std::mem::take(&mut self.taps)
    }

    /// The id a call is known by outside: its SIP Call-ID, or the pushed id.
    fn call_label(&self, k: CallKey) -> Option<Arc<str>> {
        match &self.calls.get(k)?.kind {
            CallKind::Sip(d) => Some(d.call_id.clone()),
            CallKind::Pushed(id) => Some(id.clone()),
            CallKind::RtpOnly(..) => None,
        }
    }

    /// Call records finished so far (drains them).
    pub fn drain_finished(&mut self) -> Vec<CallRecord> {
        std::mem::take(&mut self.finished)
    }

    /// Ends every open call with `reason` (end of capture, shutdown) and returns all
    /// records not yet drained, ordered by start time.
    pub fn finish(&mut self, reason: EndedReason) -> Vec<CallRecord> {
        let mut keys: Vec<(Timestamp, CallKey)> =
            self.calls.iter().map(|(k, c)| (c.created, k)).collect();
        keys.sort();
        for (_, k) in keys {
            self.finish_call(k, Some(reason));
        }
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

/// An unordered endpoint pair.
fn pair(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}
