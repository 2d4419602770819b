//! The call table: SIP dialogs, pushed calls and RTP-only pairs; what their SDP does to
//! media ownership (announcements, adoption of media seen before its SDP, codec
//! changes, hold, fax phases, forks); their timers; and their records.

use std::cmp::Reverse;
use std::net::SocketAddr;
use std::sync::Arc;

use super::{Call, CallKey, CallKind, Engine, MediaClaim, StreamId, PUSH_TTL, UNANSWERED_TIMEOUT};
use crate::calls::{build_record, synthesized_id, CallInput, Dialog};
use crate::media::PayloadMap;
use crate::ownership::Announced;
use crate::push::PushedCall;
use crate::record::{CallRecord, CallStatus, EndedReason};
use crate::signal::{MediaOffer, OfferKind, SipEvent};
use crate::stream::Stream;
use crate::time::Timestamp;

impl Engine {
    pub(super) fn sip_event(
        &mut self,
        at: Timestamp,
        src: SocketAddr,
        dst: SocketAddr,
        ev: &SipEvent,
    ) {
        if let Some(r) = &ev.vq_report {
            // An RFC 6035 report is about another call; its own dialog is not followed.
            self.on_vq_report(r);
            return;
        }
        let key = match self.dialogs.get(&ev.call_id) {
            Some(&k) if self.calls.contains_key(k) => k,
            _ => {
                let Some(d) = Dialog::open(ev, at, src, dst) else {
                    return;
                };
                let Some(k) = self.new_call(CallKind::Sip(Box::new(d)), at) else {
                    return;
                };
                self.dialogs.insert(ev.call_id.clone(), k);
                k
            }
        };
        let Some(call) = self.calls.get_mut(key) else {
            return;
        };
        let CallKind::Sip(d) = &mut call.kind else {
            return;
        };
        let out = d.on_event(ev, at, src, dst);
        let live = d.ended.is_none();
        match out.hold {
            Some(true) => call.holds.push((at, None)),
            Some(false) => {
                if let Some(h) = call.holds.last_mut() {
                    h.1.get_or_insert(at);
                }
            }
            None => {}
        }
        if out.vbd {
            call.fax = true;
        }
        let mut retire: Vec<StreamId> = Vec::new();
        match out.fax_phase {
            Some(true) => {
                // Audio before the fax phase ends here; audio after it is a new stream,
                // so the gap across the fax is never counted as loss.
                call.fax = true;
                call.fax_phase = true;
                retire.extend(call.streams.iter().copied());
            }
            Some(false) => call.fax_phase = false,
            None => {}
        }
        if !out.lost_forks.is_empty() {
            call.lost_forks.extend(out.lost_forks.iter().copied());
        }
        for sid in retire {
            self.retire(sid);
        }
        for m in out.media {
            self.announce(key, at, &m);
        }
        for ep in &out.lost_forks {
            self.owners.release_endpoint(ep, key);
        }
        if !out.lost_forks.is_empty() {
            self.drop_fork_streams(key);
        }
        if out.ended {
            self.owners.end(key);
            self.uncache_shared(key);
        } else if live {
            self.owners.reopen(key);
        }
        self.schedule(key);
    }

    /// Uncaches the flows of `key`'s streams that touch an endpoint another call holds
    /// now: `key` has ended, so such a flow may be the live call's (see `ownership`).
    /// O(the call's streams).
    fn uncache_shared(&mut self, key: CallKey) {
        let Some(call) = self.calls.get(key) else {
            return;
        };
        let shared = |e: &SocketAddr| self.owners.claim(e).is_some_and(|c| c.owner != key);
        let touched: Vec<(StreamId, SocketAddr, SocketAddr)> = call
            .streams
            .iter()
            .filter_map(|sid| self.streams.get(*sid).map(|s| (*sid, s.stream.key)))
            .filter(|(_, k)| shared(&k.src) || shared(&k.dst))
            .map(|(sid, k)| (sid, k.src, k.dst))
            .collect();
        for (sid, src, dst) in touched {
            self.uncache_flow(sid, src, dst);
        }
    }

    /// A call's SDP announces `m`: its RTP and RTCP endpoints become the call's.
    fn announce(&mut self, key: CallKey, at: Timestamp, m: &MediaOffer) {
        let claim = MediaClaim {
            payloads: m.payloads.clone(),
            kind: m.kind,
            rtcp: false,
        };
        let res = self.owners.announce(m.rtp, key, at, claim);
        self.announced(key, m.rtp, res, m.kind);
        // RTCP on the next port (RFC 3550's default, nearly always) needs no claim of
        // its own: it is found from the RTP endpoint (`Engine::rtcp_owner`).
        if m.rtcp != m.rtp && !crate::ownership::is_rtcp_of(m.rtcp, m.rtp) {
            let claim = MediaClaim {
                payloads: m.payloads.clone(),
                kind: m.kind,
                rtcp: true,
            };
            let res = self.owners.announce(m.rtcp, key, at, claim);
            self.announced(key, m.rtcp, res, m.kind);
        }
    }

    /// What an announcement changes beyond the claim itself.
    fn announced(
        &mut self,
        key: CallKey,
        ep: SocketAddr,
        res: Announced<CallKey>,
        kind: OfferKind,
    ) {
        if let Announced::Taken(prev) = res {
            self.invalidate_endpoint(ep, prev);
        }
        // A dialog announcing what the platform pushed metadata for takes it over.
        if let Announced::Taken(prev) = res {
            let prev_pushed = self
                .calls
                .get(prev)
                .is_some_and(|c| matches!(c.kind, CallKind::Pushed(_)));
            let me_sip = self
                .calls
                .get(key)
                .is_some_and(|c| matches!(c.kind, CallKind::Sip(_)));
            if prev_pushed && me_sip {
                self.merge_pushed(prev, key);
            }
        }
        // Media that arrived before its SDP joins the call now.
        if let Some(&r) = self.unowned_at.get(&ep) {
            if r != key && self.calls.contains_key(r) {
                self.adopt(r, key);
            }
        }
        // A new negotiation: the call's streams at this endpoint take the new payload
        // types; one whose codec neither side offers any more ends (its successor is a
        // new stream).
        if kind != OfferKind::Audio {
            return;
        }
        let Some(call) = self.calls.get(key) else {
            return;
        };
        let mut touched: Vec<(StreamId, SocketAddr, SocketAddr)> = Vec::new();
        for &sid in &call.streams {
            if let Some(slot) = self.streams.get(sid) {
                let k = slot.stream.key;
                if !slot.retired && (k.dst == ep || k.src == ep) {
                    touched.push((sid, k.src, k.dst));
                }
            }
        }
        let mut retire = Vec::new();
        for (sid, src, dst) in touched {
            let Some(map) = self.negotiated(key, src, dst) else {
                continue;
            };
            let Some(slot) = self.streams.get_mut(sid) else {
                continue;
            };
            let codec_gone = slot
                .stream
                .main_pt
                .is_some_and(|pt| !map.formats.is_empty() && map.get(pt).is_none());
            if codec_gone {
                retire.push(sid);
            } else {
                slot.stream.set_payloads(map);
            }
        }
        for sid in retire {
            self.retire(sid);
        }
    }

    /// An RTP-only call's streams move into `into` (their SDP came after them).
    fn adopt(&mut self, rtp_only: CallKey, into: CallKey) {
        let Some(r) = self.calls.remove(rtp_only) else {
            return;
        };
        if let CallKind::RtpOnly(a, b) = r.kind {
            self.forget_pair(rtp_only, a, b);
        }
        for sid in &r.streams {
            if let Some(slot) = self.streams.get_mut(*sid) {
                slot.call = into;
            }
        }
        if let Some(c) = self.calls.get_mut(into) {
            c.streams.extend(r.streams);
            c.last_media = c.last_media.max(r.last_media);
        }
    }

    fn forget_pair(&mut self, key: CallKey, a: SocketAddr, b: SocketAddr) {
        if self.rtp_pairs.get(&(a, b)) == Some(&key) {
            self.rtp_pairs.remove(&(a, b));
        }
        for e in [a, b] {
            if self.unowned_at.get(&e) == Some(&key) {
                self.unowned_at.remove(&e);
            }
        }
    }

    /// A pushed call's metadata, streams and endpoints go to the dialog that announced
    /// its media.
    fn merge_pushed(&mut self, pushed: CallKey, dialog: CallKey) {
        let Some(p) = self.calls.remove(pushed) else {
            return;
        };
        if let CallKind::Pushed(id) = &p.kind {
            if self.pushed.get(id) == Some(&pushed) {
                self.pushed.remove(id);
            }
        }
        self.owners.merge(pushed, dialog);
        for sid in &p.streams {
            if let Some(slot) = self.streams.get_mut(*sid) {
                slot.call = dialog;
            }
        }
        if let Some(d) = self.calls.get_mut(dialog) {
            d.streams.extend(p.streams);
            d.last_media = d.last_media.max(p.last_media);
            if d.meta.is_none() {
                d.meta = p.meta;
            }
        }
    }

    /// Streams of forks that were not answered leave the call.
    fn drop_fork_streams(&mut self, key: CallKey) {
        let Some(call) = self.calls.get(key) else {
            return;
        };
        let lost = call.lost_forks.clone();
        let dropped: Vec<StreamId> = call
            .streams
            .iter()
            .copied()
            .filter(|sid| {
                self.streams.get(*sid).is_some_and(|s| {
                    lost.contains(&s.stream.key.src) || lost.contains(&s.stream.key.dst)
                })
            })
            .collect();
        for sid in &dropped {
            self.remove_stream(*sid);
            self.counters.fork_streams_dropped += 1;
        }
        if let Some(call) = self.calls.get_mut(key) {
            call.streams.retain(|s| !dropped.contains(s));
        }
    }

    pub(super) fn pushed_call(&mut self, meta: PushedCall, at: Timestamp) {
        let endpoints: Vec<SocketAddr> = meta.media.iter().map(|m| m.socket()).collect();
        // A SIP dialog holding the media takes the metadata.
        let dialog = endpoints.iter().find_map(|e| {
            self.owners.claim(e).map(|c| c.owner).filter(|k| {
                self.calls
                    .get(*k)
                    .is_some_and(|c| matches!(c.kind, CallKind::Sip(_)))
            })
        });
        if let Some(k) = dialog {
            if let Some(c) = self.calls.get_mut(k) {
                c.meta = Some(Box::new(meta));
            }
            return;
        }
        let id: Arc<str> = Arc::from(meta.call_id.as_str());
        let key = match self.pushed.get(&id) {
            Some(&k) if self.calls.contains_key(k) => k,
            _ => {
                let Some(k) = self.new_call(CallKind::Pushed(id.clone()), at) else {
                    return;
                };
                self.pushed.insert(id, k);
                k
            }
        };
        if let Some(c) = self.calls.get_mut(key) {
            c.meta = Some(Box::new(meta));
            c.pushed_at = at;
        }
        let payloads = Arc::new(PayloadMap::default());
        for ep in endpoints {
            let claim = MediaClaim {
                payloads: payloads.clone(),
                kind: OfferKind::Audio,
                rtcp: false,
            };
            let res = self.owners.announce(ep, key, at, claim);
            self.announced(key, ep, res, OfferKind::Audio);
        }
        self.schedule(key);
    }

    /// The call's latest media: computed from its own streams when asked (at a timer,
    /// a SIP event), so a packet never writes to its call.
    fn last_media(&self, c: &Call) -> Timestamp {
        c.streams
            .iter()
            .filter_map(|sid| self.streams.get(*sid))
            .map(|s| s.stream.last)
            .fold(c.last_media, Timestamp::max)
    }

    /// When the call's end is due (timeout, linger), whatever its interim records.
    fn end_due(&self, c: &Call) -> Timestamp {
        let timeout = self.cfg.rtp_timeout;
        let last_media = self.last_media(c);
        match &c.kind {
            CallKind::Sip(d) => {
                if let Some(end) = d.ended {
                    end.max(last_media).plus(self.cfg.linger)
                } else if d.answered.is_some() || !c.streams.is_empty() {
                    last_media.max(d.last_sip).plus(timeout)
                } else {
                    d.last_sip.plus(timeout.max(UNANSWERED_TIMEOUT))
                }
            }
            CallKind::Pushed(_) if c.streams.is_empty() => c.pushed_at.plus(PUSH_TTL),
            CallKind::Pushed(_) | CallKind::RtpOnly(..) => last_media.max(c.created).plus(timeout),
        }
    }

    /// Makes sure a timer entry is pending no later than the call's next due time.
    pub(super) fn schedule(&mut self, key: CallKey) {
        let Some(c) = self.calls.get(key) else {
            return;
        };
        let due = self.end_due(c).min(c.next_interim);
        if due < c.scheduled {
            if let Some(c) = self.calls.get_mut(key) {
                c.scheduled = due;
            }
            self.timers.push(Reverse((due, key)));
        }
    }

    /// Runs what is due at `now`: interim records of open calls, and calls whose SIP
    /// ended (after the linger) or whose media went silent, with their state freed.
    /// Each call costs O(its streams); stale timer entries are skipped.
    pub fn tick(&mut self, now: Timestamp) {
        self.now = self.now.max(now);
        while let Some(&Reverse((at, key))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(c) = self.calls.get_mut(key) else {
                continue;
            };
            if c.scheduled != at {
                continue;
            }
            c.scheduled = Timestamp::MAX;
            // Without interim records (offline analysis) none is ever due, even for a
            // packet stamped at the end of time (Timestamp::MAX, where next_interim
            // sits): that once gave a call two records.
            if self.cfg.interim.is_some() && c.next_interim <= now {
                // After a jump in time the missed records are skipped, not made up.
                c.next_interim = match self.cfg.interim {
                    Some(every) => now.plus(every),
                    None => Timestamp::MAX,
                };
                self.interim(key);
            }
            let ended = self.calls.get(key).is_some_and(|c| self.end_due(c) <= now);
            if ended {
                self.finish_call(key, None);
            } else {
                self.schedule(key);
            }
        }
    }

    /// Ends a call now: `reason` for a forced end (end of capture, shutdown), `None`
    /// when it timed out. Frees its streams and endpoints and writes its record.
    pub(super) fn finish_call(&mut self, key: CallKey, reason: Option<EndedReason>) {
        let Some(call) = self.calls.remove(key) else {
            return;
        };
        let mut streams: Vec<Stream> = Vec::with_capacity(call.streams.len());
        for sid in &call.streams {
            if let Some(mut s) = self.remove_stream(*sid) {
                s.finish();
                streams.push(s);
            }
        }
        self.owners.release(key);
        let call_id = match &call.kind {
            CallKind::Sip(d) => {
                if self.dialogs.get(&d.call_id) == Some(&key) {
                    self.dialogs.remove(&d.call_id);
                }
                d.call_id.to_string()
            }
            CallKind::Pushed(id) => {
                if self.pushed.get(id) == Some(&key) {
                    self.pushed.remove(id);
                }
                id.to_string()
            }
            CallKind::RtpOnly(a, b) => {
                self.forget_pair(key, *a, *b);
                let first = streams
                    .iter()
                    .map(|s| s.first)
                    .min()
                    .unwrap_or(call.created);
                synthesized_id(*a, *b, first)
            }
        };
        let fallback = match (reason, &call.kind) {
            (Some(r), _) => (CallStatus::Completed, r),
            (None, CallKind::Sip(d)) if d.answered.is_none() && call.streams.is_empty() => {
                (CallStatus::Abandoned, EndedReason::RtpTimeout)
            }
            (None, _) => (CallStatus::Completed, EndedReason::RtpTimeout),
        };
        let record = build_record(
            &self.cfg.calls,
            CallInput {
                call_id,
                dialog: call.dialog(),
                streams: streams.iter().collect(),
                fallback_end: fallback,
                in_progress: false,
                meta: call.meta.as_deref(),
                fax: call.fax,
                holds: &call.holds,
            },
        );
        self.counters.calls += 1;
        self.finished.push(record);
    }

    /// An interim record of an open call (live view). A dialog that ended and lingers
    /// for stragglers gets none: it would look final with figures not yet complete.
    fn interim(&mut self, key: CallKey) {
        let Some(call) = self.calls.get(key) else {
            return;
        };
        if call.dialog().is_some_and(|d| d.ended.is_some()) {
            return;
        }
        let streams: Vec<&Stream> = call
            .streams
            .iter()
            .filter_map(|sid| self.streams.get(*sid).map(|s| &*s.stream))
            .collect();
        let call_id = match &call.kind {
            CallKind::Sip(d) => d.call_id.to_string(),
            CallKind::Pushed(id) => id.to_string(),
            CallKind::RtpOnly(a, b) => {
                let first = streams
                    .iter()
                    .map(|s| s.first)
                    .min()
                    .unwrap_or(call.created);
                synthesized_id(*a, *b, first)
            }
        };
        let record: CallRecord = build_record(
            &self.cfg.calls,
            CallInput {
                call_id,
                dialog: call.dialog(),
                streams,
                fallback_end: (CallStatus::InProgress, EndedReason::Shutdown),
                in_progress: true,
                meta: call.meta.as_deref(),
                fax: call.fax,
                holds: &call.holds,
            },
        );
        self.finished.push(record);
    }

    /// Takes a stream out of every index and returns it.
    fn remove_stream(&mut self, sid: StreamId) -> Option<Stream> {
        let key = self.streams.get(sid)?.stream.key;
        self.uncache_flow(sid, key.src, key.dst);
        let slot = self.streams.remove(sid)?;
        if self.by_key.get(&key) == Some(&sid) {
            self.by_key.remove(&key);
        }
        if let Some(v) = self.by_ssrc.get_mut(&key.ssrc) {
            v.retain(|s| *s != sid);
            if v.is_empty() {
                self.by_ssrc.remove(&key.ssrc);
                self.sightings.remove(&key.ssrc);
            }
        }
        Some(*slot.stream)
    }
}
