//! Flows: which UDP datagrams are RTP, RTCP or neither, and which stream — of which
//! call — an RTP packet belongs to.
//!
//! A flow seen before is a hash lookup away from its stream; the cached stream is used
//! as long as media ownership has not changed since (its epoch). After a change the
//! packet's owner is resolved again: the same call keeps its stream; a packet that
//! continues a stream whose endpoint moved to another call is that stream's straggler;
//! anything else (a new SSRC, a discontinuity) starts a stream of the new owner.

use std::net::SocketAddr;

use vqprobe_wire::rtcp as wire_rtcp;
use vqprobe_wire::rtp::{self, RtpHeader};

use super::{
    pair, Call, CallKey, CallKind, Engine, Flow, Pending, Slot, StreamId, MAX_CANDIDATES, PENDING,
    STRAGGLER_GAP_NS,
};
use crate::signal::OfferKind;
use crate::stream::{Stream, StreamKey};
use crate::time::Timestamp;

impl Engine {
    /// A UDP datagram: a known media flow's packet (the bulk of the traffic: one
    /// lookup, no SIP check), else SIP, RTCP, or a packet to classify.
    pub(super) fn on_udp(
        &mut self,
        at: Timestamp,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
        sip: Option<&[Result<crate::signal::SipEvent, ()>]>,
    ) {
        let flow_key = (src, dst);
        match self.flows.get(&flow_key) {
            Some(&Flow::Rtp { ssrc, stream }) => {
                if wire_rtcp::is_muxed_rtcp(payload) {
                    self.on_rtcp(at, src, dst, payload);
                    return;
                }
                match rtp::parse(payload) {
                    Ok(h) if h.payload_len == 0 => self.counters.media_keepalives += 1,
                    Ok(h) if h.ssrc == ssrc => self.feed(stream, at, &h),
                    Ok(h) => self.on_rtp(at, src, dst, &h),
                    Err(_) if payload.len() < 12 || payload.first().is_none_or(|b| b >> 6 != 2) => {
                        // Keepalives (RFC 6263), STUN, DTLS, ZRTP on a media port.
                        self.counters.media_keepalives += 1
                    }
                    Err(_) => self.counters.rtp_malformed += 1,
                }
            }
            Some(Flow::Candidate(pend)) => {
                let pend = **pend;
                match rtp::looks_like_rtp(payload) {
                    Some(h)
                        if pend.len > 0 && rtp::continues(&pend.packets[pend.len - 1].0, &h) =>
                    {
                        self.flows.remove(&flow_key);
                        for (p, t) in pend.packets.iter().take(pend.len) {
                            if p.ssrc == h.ssrc {
                                self.on_rtp(*t, src, dst, p);
                            }
                        }
                        self.on_rtp(at, src, dst, &h);
                    }
                    Some(h) => {
                        let mut next = pend;
                        let len = pend.len;
                        let same = len > 0 && pend.packets[len - 1].0.ssrc == h.ssrc;
                        next.len = if !same {
                            next.packets[0] = (h, at);
                            1
                        } else if len < PENDING {
                            next.packets[len] = (h, at);
                            len + 1
                        } else {
                            next.packets.rotate_left(1);
                            next.packets[PENDING - 1] = (h, at);
                            PENDING
                        };
                        if let Some(Flow::Candidate(p)) = self.flows.get_mut(&flow_key) {
                            **p = next;
                        }
                    }
                    None if wire_rtcp::looks_like_rtcp(payload) => {
                        // RTCP muxed onto the flow confirms it as media.
                        self.flows.remove(&flow_key);
                        self.on_rtcp(at, src, dst, payload);
                        for (p, t) in pend.packets.iter().take(pend.len) {
                            self.on_rtp(*t, src, dst, p);
                        }
                    }
                    // STUN, DTLS and the like between media packets: not our business.
                    None => {}
                }
            }
            None => {
                let seg = vqprobe_wire::decode::Segment {
                    src,
                    dst,
                    transport: vqprobe_wire::decode::Transport::Udp,
                    payload,
                };
                if !self.sip_payload(at, &seg, sip) {
                    self.classify_new(at, src, dst, payload);
                }
            }
        }
    }

    /// A datagram on a flow not seen before (or not cached: RTCP, unknown UDP).
    fn classify_new(&mut self, at: Timestamp, src: SocketAddr, dst: SocketAddr, payload: &[u8]) {
        let claim_rtcp = |c: Option<&crate::ownership::Claim<CallKey, super::MediaClaim>>| {
            c.map(|c| c.data.rtcp)
        };
        if let Some(c) = self.owners.resolve(&src, &dst) {
            if c.data.kind == OfferKind::T38 {
                // UDPTL of a fax phase: not RTP, but the call is alive.
                let k = c.owner;
                self.counters.fax_phase_packets += 1;
                if let Some(call) = self.calls.get_mut(k) {
                    call.last_media = call.last_media.max(at);
                }
                return;
            }
        }
        let (cs, cd) = (self.owners.claim(&src), self.owners.claim(&dst));
        let signalled_rtp = claim_rtcp(cs) == Some(false) || claim_rtcp(cd) == Some(false);
        let implicit = |e: &SocketAddr| {
            crate::ownership::rtp_of(*e)
                .is_some_and(|r| claim_rtcp(self.owners.claim(&r)) == Some(false))
        };
        let signalled_rtcp = claim_rtcp(cs) == Some(true)
            || claim_rtcp(cd) == Some(true)
            || (!signalled_rtp && (implicit(&src) || implicit(&dst)));
        if signalled_rtcp && !signalled_rtp {
            if let Ok(c) = wire_rtcp::parse_compound(payload) {
                self.on_compound(at, src, dst, &c);
                return;
            }
        }
        if wire_rtcp::looks_like_rtcp(payload) {
            self.on_rtcp(at, src, dst, payload);
            return;
        }
        let Some(h) = rtp::looks_like_rtp(payload) else {
            if signalled_rtp {
                self.counters.media_keepalives += 1;
            }
            return;
        };
        if h.payload_len == 0 {
            self.counters.media_keepalives += 1;
            return;
        }
        if signalled_rtp {
            self.on_rtp(at, src, dst, &h);
        } else {
            let pending = Pending {
                packets: [(h, at); PENDING],
                len: 1,
            };
            self.flows
                .insert((src, dst), Flow::Candidate(Box::new(pending)));
            self.candidates.push_back(((src, dst), at));
            self.expire_candidates(at);
        }
    }

    /// Unconfirmed flows are forgotten oldest first once there are many (merged
    /// captures jump in time and must not lose a flow's first packets to an age limit
    /// while there is room).
    fn expire_candidates(&mut self, now: Timestamp) {
        while self.candidates.len() > MAX_CANDIDATES {
            let Some((key, since)) = self.candidates.pop_front() else {
                break;
            };
            if let Some(Flow::Candidate(p)) = self.flows.get(&key) {
                let last = p.packets[p.len.saturating_sub(1)].1;
                if last <= since || now.nanos_since(last) > 10_000_000_000 {
                    self.flows.remove(&key);
                }
            }
        }
    }

    /// An RTP packet whose stream is not cached (or whose ownership changed since).
    pub(super) fn on_rtp(
        &mut self,
        at: Timestamp,
        src: SocketAddr,
        dst: SocketAddr,
        h: &RtpHeader,
    ) {
        let owner = self
            .owners
            .resolve(&src, &dst)
            .map(|c| (c.owner, c.data.kind));
        let key = StreamKey {
            src,
            dst,
            ssrc: h.ssrc,
        };
        if let Some(&sid) = self.by_key.get(&key) {
            let Some(slot) = self.streams.get(sid) else {
                self.by_key.remove(&key);
                return self.on_rtp(at, src, dst, h);
            };
            let keeps = match owner {
                None => true,
                Some((k, ..)) => k == slot.call,
            };
            if keeps {
                self.cache_flow(src, dst, h.ssrc, sid);
                self.feed(sid, at, h);
                return;
            }
            if slot.stream.continued_by(at, h, STRAGGLER_GAP_NS) {
                // The old call's straggler: fed, not cached, so the next packet is
                // checked again.
                self.feed(sid, at, h);
                return;
            }
            // A new source on an endpoint that changed owner: the old stream stays
            // with its call, a new one starts for the new owner.
            self.retire(sid);
        }
        let (call, payloads) = match owner {
            Some((k, kind)) => {
                if kind == OfferKind::T38 || self.calls.get(k).is_some_and(|c| c.fax_phase) {
                    self.counters.fax_phase_packets += 1;
                    return;
                }
                (k, self.negotiated(k, src, dst))
            }
            None => {
                // A new SSRC on a flow already in a call (DTMF, a restart) stays in it.
                let via_flow = self.flow_call(src, dst);
                match via_flow {
                    Some((k, p)) => (k, p),
                    None => match self.rtp_only_call(at, src, dst) {
                        Some(k) => (k, None),
                        None => return,
                    },
                }
            }
        };
        if let Some(sid) = self.new_stream(key, at, call, payloads) {
            self.cache_flow(src, dst, h.ssrc, sid);
            self.feed(sid, at, h);
        }
    }

    /// Caches `sid` as the stream of the flow.
    fn cache_flow(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        ssrc: vqprobe_wire::Ssrc,
        sid: StreamId,
    ) {
        self.flows
            .insert((src, dst), Flow::Rtp { ssrc, stream: sid });
    }

    /// Drops the cached flow of `sid` (if it is cached).
    pub(super) fn uncache_flow(&mut self, sid: StreamId, src: SocketAddr, dst: SocketAddr) {
        if matches!(self.flows.get(&(src, dst)), Some(Flow::Rtp { stream, .. }) if *stream == sid) {
            self.flows.remove(&(src, dst));
        }
    }

    /// `ep` moved from call `prev` to another: `prev`'s flows there resolve again on
    /// their next packet (a straggler keeps its stream; a new source starts the new
    /// owner's). O(`prev`'s streams); media at `ep` without a call is adopted instead
    /// (see `announced`).
    pub(super) fn invalidate_endpoint(&mut self, ep: SocketAddr, prev: CallKey) {
        let Some(call) = self.calls.get(prev) else {
            return;
        };
        let touched: Vec<(StreamId, SocketAddr, SocketAddr)> = call
            .streams
            .iter()
            .filter_map(|sid| self.streams.get(*sid).map(|s| (*sid, s.stream.key)))
            .filter(|(_, k)| k.src == ep || k.dst == ep)
            .map(|(sid, k)| (sid, k.src, k.dst))
            .collect();
        for (sid, src, dst) in touched {
            self.uncache_flow(sid, src, dst);
        }
    }

    /// The payload types call `k` negotiated for a flow from `src` to `dst`: the
    /// receiver's SDP, with what the sender's SDP adds.
    pub(super) fn negotiated(
        &self,
        k: CallKey,
        src: SocketAddr,
        dst: SocketAddr,
    ) -> Option<std::sync::Arc<crate::media::PayloadMap>> {
        let of = |e: &SocketAddr| {
            self.owners
                .claim(e)
                .filter(|c| c.owner == k && !c.data.rtcp)
                .map(|c| c.data.payloads.clone())
        };
        match (of(&dst), of(&src)) {
            // A new map only when the sender named a type the receiver did not (peers
            // usually offer and answer the same ones: the receiver's map is shared).
            (Some(d), Some(s))
                if !std::sync::Arc::ptr_eq(&d, &s)
                    && s.formats.iter().any(|f| d.get(f.pt).is_none()) =>
            {
                Some(std::sync::Arc::new(d.union(&s)))
            }
            (Some(d), _) => Some(d),
            (None, s) => s,
        }
    }

    /// The call (and payload map) of the stream the flow carried before, if any.
    fn flow_call(
        &self,
        src: SocketAddr,
        dst: SocketAddr,
    ) -> Option<(CallKey, Option<std::sync::Arc<crate::media::PayloadMap>>)> {
        match self.flows.get(&(src, dst)) {
            Some(Flow::Rtp { stream, .. }) => self
                .streams
                .get(*stream)
                .map(|s| (s.call, s.stream.payloads())),
            _ => None,
        }
    }

    /// The RTP-only call of an endpoint pair, created when new.
    fn rtp_only_call(
        &mut self,
        at: Timestamp,
        src: SocketAddr,
        dst: SocketAddr,
    ) -> Option<CallKey> {
        let p = pair(src, dst);
        if let Some(&k) = self.rtp_pairs.get(&p) {
            if self.calls.contains_key(k) {
                return Some(k);
            }
        }
        let k = self.new_call(CallKind::RtpOnly(p.0, p.1), at)?;
        self.rtp_pairs.insert(p, k);
        self.unowned_at.insert(p.0, k);
        self.unowned_at.insert(p.1, k);
        Some(k)
    }

    /// A new call of `kind`, or `None` (counted) at the cap.
    pub(super) fn new_call(&mut self, kind: CallKind, at: Timestamp) -> Option<CallKey> {
        if self.calls.len() >= self.cfg.max_calls {
            self.counters.calls_refused += 1;
            return None;
        }
        let mut call = Call::new(kind, at);
        if let Some(every) = self.cfg.interim {
            call.next_interim = at.plus(every);
        }
        let k = self.calls.insert(call);
        self.schedule(k);
        Some(k)
    }

    fn new_stream(
        &mut self,
        key: StreamKey,
        at: Timestamp,
        call: CallKey,
        payloads: Option<std::sync::Arc<crate::media::PayloadMap>>,
    ) -> Option<StreamId> {
        if self.streams.len() >= self.cfg.max_streams {
            self.counters.streams_refused += 1;
            return None;
        }
        let c = self.calls.get_mut(call)?;
        if c.streams.len() >= self.cfg.max_streams_per_call {
            // An SSRC flood on a call's ports must not grow its record without bound.
            self.counters.streams_refused += 1;
            return None;
        }
        let stream = Stream::new(key, at, payloads, self.interval_ns, true)
            .with_headline_buffer(self.cfg.headline_fixed_ms);
        let sid = self.streams.insert(Slot {
            stream: Box::new(stream),
            call,
            retired: false,
        });
        c.streams.push(sid);
        if let Some(old) = self.by_key.insert(key, sid) {
            if let Some(s) = self.streams.get_mut(old) {
                s.retired = true;
            }
        }
        self.by_ssrc.entry(key.ssrc).or_default().push(sid);
        self.counters.streams += 1;
        Some(sid)
    }

    /// Takes a stream out of packet routing (its key may start a new stream); it stays
    /// in its call's record.
    pub(super) fn retire(&mut self, sid: StreamId) {
        let Some(slot) = self.streams.get_mut(sid) else {
            return;
        };
        if slot.retired {
            return;
        }
        slot.retired = true;
        let key = slot.stream.key;
        if self.by_key.get(&key) == Some(&sid) {
            self.by_key.remove(&key);
        }
        if matches!(self.flows.get(&(key.src, key.dst)), Some(Flow::Rtp { stream, .. }) if *stream == sid)
        {
            self.flows.remove(&(key.src, key.dst));
        }
        self.counters.streams_superseded += 1;
    }

    fn feed(&mut self, sid: StreamId, at: Timestamp, h: &RtpHeader) {
        if let Some(slot) = self.streams.get_mut(sid) {
            self.counters.rtp_packets += 1;
            let before = slot.stream.other_payload_packets;
            slot.stream.on_packet(at, h);
            if slot.stream.other_payload_packets != before {
                self.counters.other_payload_packets += 1;
            }
        }
    }
}
