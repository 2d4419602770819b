//! The live pipeline: capture threads decode each frame, parse its SIP once, pick the
//! worker whose engine owns its call, batch frames, and hand them over bounded crossbeam
//! channels to worker threads that each own an [`Engine`] and its streams.
//!
//! Routing uses the engine's own media-ownership rules ([`Ownership`]) with worker
//! numbers as owners: SIP goes to the worker of its Call-ID, and the endpoints its SDP
//! announces go there too, the newest announcement winning — so a port a media server
//! hands to the next call within a second follows that call at once, and no per-flow
//! cache can outlive the call that owned the flow (there is none: a packet's route is
//! two hash lookups under a read lock that is only written when SIP changes ownership).
//! Media without signalling goes by the unordered endpoint pair with the RTP/RTCP port
//! pair folded (`port & !1`), so both directions and their RTCP meet.
//!
//! The router's claims end with their call as the engine's do: at the SIP end plus the
//! linger, or — for a call that never ends in SIP — after [`ROUTE_IDLE`] without SIP.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use rustc_hash::{FxHashMap, FxHasher};
use vqprobe_engine::engine::Engine;
use vqprobe_engine::ownership::Ownership;
use vqprobe_engine::record::{CallRecord, EndedReason};
use vqprobe_engine::signal::{self, SipEvent};
use vqprobe_engine::time::Timestamp;
use vqprobe_wire::decode::{self, Decoded, LinkType, Segment};

use crate::batch::Batch;
use crate::hep::{json, HepOut, HepTap};
use crate::runtime::{SourceStats, WorkerSnapshot};

/// A call the router knows only by SIP that never ended is forgotten after this long
/// without SIP (the engine ended it by RTP timeout long before).
pub const ROUTE_IDLE: Duration = Duration::from_secs(2 * 3600);
/// Unsignalled media endpoints remembered for pushed metadata this long.
const UNOWNED_IDLE: Duration = Duration::from_secs(120);
/// Unsignalled media endpoints remembered at most (per capture thread, and shared):
/// a flood of unique flows must not grow the maps for the two minutes they are kept.
/// Beyond it a new flow is still routed by its hash; only metadata pushed for it
/// cannot find its worker by endpoint (it goes by its id instead).
const MAX_UNOWNED: usize = 65_536;

/// A call as the router sees it.
#[derive(Debug, Clone, Copy)]
struct CallRoute {
    shard: usize,
    /// When its SIP ended (BYE, CANCEL, final error).
    ended: Option<Timestamp>,
    last_sip: Timestamp,
    /// Earliest pending timer entry.
    scheduled: Timestamp,
}

/// Route ownership shared by every capture thread.
#[derive(Debug, Default)]
struct Routes {
    owners: Ownership<u64, ()>,
    calls: FxHashMap<u64, CallRoute>,
    timers: BinaryHeap<Reverse<(Timestamp, u64)>>,
    /// The engines' linger after a SIP end.
    linger: Duration,
    /// Most calls remembered: beyond it (a Call-ID flood) a call is routed by its
    /// Call-ID's hash alone, as the engines refuse it at their own cap anyway.
    max_calls: usize,
}

/// The capture side's copy of media ownership: which worker owns which call and which
/// media endpoint.
#[derive(Debug)]
pub struct RouteTable {
    routes: RwLock<Routes>,
    /// Endpoints of recently routed media without signalling, and their worker, so
    /// metadata pushed for them goes where their media already is.
    unowned: Mutex<FxHashMap<SocketAddr, (usize, Timestamp)>>,
    workers: usize,
    /// How far each live capture source has read, to order media across them.
    pub clocks: crate::hold::Clocks,
}

/// The route id of a call (its Call-ID or pushed id).
fn route_id(call_id: &str) -> u64 {
    let mut h = FxHasher::default();
    call_id.hash(&mut h);
    h.finish()
}

impl RouteTable {
    /// A table for `workers` workers whose engines linger `linger` after a SIP end,
    /// remembering at most `max_calls` calls.
    pub fn new(workers: usize, linger: Duration, max_calls: usize) -> RouteTable {
        RouteTable {
            routes: RwLock::new(Routes {
                linger,
                max_calls,
                ..Routes::default()
            }),
            unowned: Mutex::new(FxHashMap::default()),
            workers: workers.max(1),
            clocks: crate::hold::Clocks::default(),
        }
    }

    /// The worker of a media flow from `src` to `dst`, `None` when no call owns it.
    fn media_shard(&self, src: &SocketAddr, dst: &SocketAddr) -> Option<usize> {
        let r = self.routes.read().ok()?;
        let owner = r.owners.resolve_rtcp(src, dst)?.owner;
        r.calls.get(&owner).map(|c| c.shard)
    }

    /// Routes one SIP message: returns its worker, and records the endpoints its SDP
    /// announces (and the end of its call) as the engine will.
    fn sip(&self, ev: &SipEvent, at: Timestamp) -> usize {
        if ev.vq_report.is_some() {
            // An RFC 6035 report goes to the worker of the call it reports on; its own
            // PUBLISH dialog is not a call.
            let call_id = ev.routing_call_id();
            let known = self
                .routes
                .read()
                .ok()
                .and_then(|r| r.calls.get(&route_id(call_id)).map(|c| c.shard));
            return known.unwrap_or_else(|| shard_of_call(call_id, self.workers));
        }
        let id = route_id(&ev.call_id);
        let Ok(mut r) = self.routes.write() else {
            return shard_of_call(&ev.call_id, self.workers);
        };
        r.expire(at);
        let r = &mut *r;
        let full = r.calls.len() >= r.max_calls;
        let shard = match r.calls.get_mut(&id) {
            Some(c) => {
                c.last_sip = c.last_sip.max(at);
                if ev.is_request() && ev.method == signal::SipMethod::Invite && c.ended.is_some() {
                    // A new INVITE (an auth retry) reopens a call its challenge ended.
                    c.ended = None;
                    r.owners.reopen(id);
                }
                c.shard
            }
            None if full => {
                return shard_of_call(&ev.call_id, self.workers);
            }
            None => {
                let shard = shard_of_call(&ev.call_id, self.workers);
                r.calls.insert(
                    id,
                    CallRoute {
                        shard,
                        ended: None,
                        last_sip: at,
                        scheduled: Timestamp::MAX,
                    },
                );
                shard
            }
        };
        if let Some(offer) = &ev.offer {
            for m in &offer.media {
                r.owners.announce(m.rtp, id, at, ());
                if m.rtcp != m.rtp && !vqprobe_engine::ownership::is_rtcp_of(m.rtcp, m.rtp) {
                    r.owners.announce(m.rtcp, id, at, ());
                }
            }
        }
        if ev.ends_call() {
            if let Some(c) = r.calls.get_mut(&id) {
                c.ended.get_or_insert(at);
            }
            r.owners.end(id);
        }
        r.schedule(id);
        shard
    }

    /// Pushed call metadata: the worker holding media at its endpoints (or its id's),
    /// with the endpoints routed there from now on.
    pub fn push(&self, call_id: &str, endpoints: &[SocketAddr], at: Timestamp) -> usize {
        let id = route_id(call_id);
        let held = {
            let r = self.routes.read().ok();
            r.and_then(|r| {
                endpoints.iter().find_map(|e| {
                    let owner = r.owners.claim(e)?.owner;
                    r.calls.get(&owner).map(|c| c.shard)
                })
            })
        };
        let running = self
            .unowned
            .lock()
            .ok()
            .and_then(|m| endpoints.iter().find_map(|e| m.get(e).map(|(s, _)| *s)));
        let shard = held
            .or(running)
            .unwrap_or_else(|| shard_of_call(call_id, self.workers));
        if held.is_none() {
            if let Some(mut r) = self
                .routes
                .write()
                .ok()
                .filter(|r| r.calls.len() < r.max_calls)
            {
                r.calls.insert(
                    id,
                    CallRoute {
                        shard,
                        ended: None,
                        last_sip: at,
                        scheduled: Timestamp::MAX,
                    },
                );
                for e in endpoints {
                    r.owners.announce(*e, id, at, ());
                }
                r.schedule(id);
            }
        }
        shard
    }

    /// Publishes endpoints of unsignalled media a capture thread routed (new ones at
    /// once, the rest refreshed once a second) and forgets those idle too long.
    fn note_unowned(&self, seen: &FxHashMap<SocketAddr, (usize, Timestamp)>, now: Timestamp) {
        if let Ok(mut m) = self.unowned.lock() {
            m.retain(|_, (_, at)| now.nanos_since(*at) < UNOWNED_IDLE.as_nanos() as i64);
            for (k, v) in seen {
                if m.len() < MAX_UNOWNED || m.contains_key(k) {
                    m.insert(*k, *v);
                }
            }
        }
    }

    fn note_new_unowned(&self, endpoint: SocketAddr, shard: usize, at: Timestamp) {
        if let Ok(mut m) = self.unowned.lock() {
            if m.len() < MAX_UNOWNED {
                m.insert(endpoint, (shard, at));
            }
        }
    }

    /// Endpoints currently owned (for tests and metrics).
    pub fn owned_endpoints(&self) -> usize {
        self.routes.read().map_or(0, |r| r.owners.len())
    }
}

impl Routes {
    fn due(&self, c: &CallRoute) -> Timestamp {
        match c.ended {
            // The engine frees endpoints at the end plus its linger; a little later
            // here, so stragglers still reach the worker that holds the call.
            Some(end) => end.plus(self.linger * 2),
            None => c.last_sip.plus(ROUTE_IDLE),
        }
    }

    fn schedule(&mut self, id: u64) {
        let Some(&c) = self.calls.get(&id) else {
            return;
        };
        let due = self.due(&c);
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        if due < c.scheduled {
            c.scheduled = due;
            self.timers.push(Reverse((due, id)));
        }
    }

    /// Forgets calls whose time is up (at most a few per SIP message: amortised O(1)).
    fn expire(&mut self, now: Timestamp) {
        while let Some(&Reverse((at, id))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(c) = self.calls.get_mut(&id) else {
                continue;
            };
            if c.scheduled != at {
                continue;
            }
            c.scheduled = Timestamp::MAX;
            // Checked again with the latest state: a re-INVITE may have reopened the
            // call, more SIP may have come.
            let c = *c;
            if self.due(&c) <= now {
                self.calls.remove(&id);
                self.owners.release(id);
            } else {
                self.schedule(id);
            }
        }
    }
}

/// Message to a worker.
pub enum WorkerMsg {
    /// Frames to process.
    Batch(Batch),
    /// Time passes (the driver's clock): run timeouts, publish interim records.
    Tick(Timestamp),
    /// Call metadata pushed by the platform (with the time it arrived).
    Push(Box<vqprobe_engine::push::PushedCall>, Timestamp),
    /// Answer on the channel once every message before this one is processed.
    Barrier(Sender<()>),
    /// End every open call as `shutdown` and stop.
    Shutdown,
}

/// The shard that owns a call id (SIP Call-ID or pushed id) among `n` workers.
pub fn shard_of_call(call_id: &str, n: usize) -> usize {
    shard_of(&call_id, n)
}

fn shard_of<T: Hash>(v: &T, n: usize) -> usize {
    let mut h = FxHasher::default();
    v.hash(&mut h);
    (h.finish() % n.max(1) as u64) as usize
}

fn pair_key(src: SocketAddr, dst: SocketAddr) -> (SocketAddr, SocketAddr) {
    let fold = |mut a: SocketAddr| {
        a.set_port(a.port() & !1);
        a
    };
    let (a, b) = (fold(src), fold(dst));
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// The per-capture-thread dispatcher: decode, parse SIP once, route, batch, hand over.
pub struct Dispatcher {
    shards: Vec<Sender<WorkerMsg>>,
    pool: Receiver<Batch>,
    batches: Vec<Batch>,
    batch_size: usize,
    routes: Arc<RouteTable>,
    agent_header: String,
    stats: Arc<SourceStats>,
    /// A file replay waits for a full worker queue instead of dropping (a file can
    /// wait; an interface cannot).
    lossless: bool,
    /// Unsignalled media endpoints this thread routed lately, and where.
    unowned: FxHashMap<SocketAddr, (usize, Timestamp)>,
    last_publish: Timestamp,
    /// HEP export of the SIP this thread sees (`None`: export off, no cost).
    hep: Option<HepTap>,
    /// This source's capture clock, when other sources capture beside it.
    clock: Option<Arc<std::sync::atomic::AtomicI64>>,
    /// Media without an owner, waiting for every source to pass its time.
    held: crate::hold::Held,
}

impl Dispatcher {
    /// A dispatcher feeding `shards`, taking empty batches back from `pool`.
    pub fn new(
        shards: Vec<Sender<WorkerMsg>>,
        pool: Receiver<Batch>,
        batch_size: usize,
        routes: Arc<RouteTable>,
        agent_header: String,
        stats: Arc<SourceStats>,
    ) -> Self {
        let n = shards.len();
        Dispatcher {
            shards,
            pool,
            batches: (0..n).map(|_| Batch::with_capacity(batch_size)).collect(),
            batch_size: batch_size.max(1),
            routes,
            agent_header,
            stats,
            lossless: false,
            unowned: FxHashMap::default(),
            last_publish: Timestamp::MIN,
            hep: None,
            clock: None,
            held: crate::hold::Held::default(),
        }
    }

    /// Mirrors every SIP message this dispatcher routes to a HEP capture server.
    pub fn with_hep(mut self, tap: Option<HepTap>) -> Self {
        self.hep = tap;
        self
    }

    /// Makes this one of several live sources (capture threads) feeding the same
    /// workers: unowned media then waits until every source has read past its time
    /// (see `hold`). Call it for every source before any starts.
    pub fn ordered(mut self) -> Self {
        self.clock = Some(self.routes.clocks.register());
        self
    }

    /// The capture ring is empty at wall time `now_ns`: this source will deliver nothing
    /// older than the ring's block timeout, so its clock moves up to there.
    pub fn idle(&mut self, now_ns: i64) {
        if let Some(c) = &self.clock {
            c.fetch_max(
                now_ns.saturating_sub(crate::hold::IDLE_LAG_NS),
                Ordering::AcqRel,
            );
        }
        self.release(false);
        self.flush();
    }

    /// Routes held frames whose time every source has passed (all with `all`).
    fn release(&mut self, all: bool) {
        if self.held.is_empty() {
            return;
        }
        let wm = if all {
            i64::MAX
        } else {
            self.routes.clocks.watermark()
        };
        while let Some(f) = self.held.pop_due(wm) {
            self.dispatch(f.at, f.link, &f.frame, false);
            self.held.recycle(f);
        }
    }

    /// Routes everything still held and hands over every batch (at the end).
    pub fn finish(&mut self) {
        self.release(true);
        self.flush();
    }

    /// Makes the dispatcher wait for room in a worker's queue rather than drop (file
    /// replays).
    pub fn lossless(mut self) -> Self {
        self.lossless = true;
        self
    }

    /// Hands over every batch, then waits until every worker has processed everything
    /// sent to it so far.
    pub fn drain(&mut self) {
        self.flush();
        let mut acks = Vec::new();
        for tx in &self.shards {
            let (ack_tx, ack_rx) = crossbeam_channel::bounded(1);
            if tx.send(WorkerMsg::Barrier(ack_tx)).is_ok() {
                acks.push(ack_rx);
            }
        }
        for a in acks {
            let _ = a.recv();
        }
    }

    /// Decodes, routes and batches one frame; full batches are handed over.
    pub fn on_frame(&mut self, at: Timestamp, link: LinkType, frame: &[u8]) {
        self.stats.packets.fetch_add(1, Ordering::Relaxed);
        if let Some(c) = &self.clock {
            c.fetch_max(at.as_nanos(), Ordering::AcqRel);
            self.release(false);
        }
        self.dispatch(at, link, frame, true);
    }

    /// Routes one frame to its worker's batch, or holds it (`may_hold`, see `hold`).
    fn dispatch(&mut self, at: Timestamp, link: LinkType, frame: &[u8], may_hold: bool) {
        let decoded = decode::decode(link, frame);
        let holdable = may_hold.then_some((link, frame));
        self.on_decoded(at, frame.len(), decoded, holdable);
    }

    /// Routes and batches a transport segment that arrived without a frame (HEP input:
    /// the agent sent the payload with its original addresses). Never held: HEP input
    /// is one source in arrival order.
    pub fn on_segment(&mut self, at: Timestamp, seg: Segment<'_>, len: usize) {
        self.stats.packets.fetch_add(1, Ordering::Relaxed);
        self.on_decoded(at, len, Ok(Decoded::Segment(seg)), None);
    }

    /// Batches a decoded packet; `holdable` is the frame when it may wait in `held`.
    fn on_decoded(
        &mut self,
        at: Timestamp,
        frame_len: usize,
        decoded: Result<Decoded<'_>, decode::DecodeError>,
        holdable: Option<(LinkType, &[u8])>,
    ) {
        let (shard, sip) = match &decoded {
            Ok(Decoded::Segment(seg)) => {
                let hold = holdable.is_some() && self.clock.is_some();
                match self.route(at, seg, hold) {
                    Some(r) => r,
                    None => {
                        if let Some((link, frame)) = holdable {
                            if self.held.push(at, link, frame, seg.src, seg.dst) {
                                return;
                            }
                        }
                        // Full: route it now, as one source would.
                        (self.unowned_shard(at, seg), Vec::new())
                    }
                }
            }
            _ => (0, Vec::new()),
        };
        if let Some(b) = self.batches.get_mut(shard) {
            b.push_decoded(at.as_nanos(), frame_len, decoded, sip);
            if b.len() >= self.batch_size {
                self.send(shard);
            }
        }
        if at.nanos_since(self.last_publish) > 1_000_000_000 {
            self.last_publish = at;
            let idle = UNOWNED_IDLE.as_nanos() as i64;
            self.unowned
                .retain(|_, (_, seen)| at.nanos_since(*seen) < idle);
            self.routes.note_unowned(&self.unowned, at);
        }
    }

    /// The worker of a segment and its parsed SIP; `None` when it is media nobody owns
    /// yet and `hold` allows holding it (or its flow has frames held already).
    fn route(
        &mut self,
        at: Timestamp,
        seg: &Segment<'_>,
        hold: bool,
    ) -> Option<(usize, Vec<Result<SipEvent, ()>>)> {
        let events = signal::parse_payload(seg.transport, seg.payload, &self.agent_header);
        if !events.is_empty() {
            if let Some(tap) = &self.hep {
                // One HEP packet per datagram or segment, correlated by its (first)
                // message's Call-ID.
                if let Some(Ok(ev)) = events.first() {
                    tap.send(HepOut::Sip {
                        at,
                        src: seg.src,
                        dst: seg.dst,
                        transport: seg.transport,
                        payload: seg.payload.to_vec(),
                        call_id: ev.call_id.to_string(),
                    });
                }
            }
            let mut shard = None;
            let events: Vec<Result<SipEvent, ()>> = events
                .into_iter()
                .map(|r| {
                    if let Ok(ev) = &r {
                        let s = self.routes.sip(ev, at);
                        shard.get_or_insert(s);
                    }
                    r.map_err(|_| ())
                })
                .collect();
            let shard =
                shard.unwrap_or_else(|| shard_of(&pair_key(seg.src, seg.dst), self.shards.len()));
            return Some((shard, events));
        }
        if hold && self.held.holds(seg.src, seg.dst) {
            return None;
        }
        let shard = match self.routes.media_shard(&seg.src, &seg.dst) {
            Some(s) => s,
            None if hold => return None,
            None => self.unowned_shard(at, seg),
        };
        Some((shard, Vec::new()))
    }

    /// The worker of media nobody owns: by its flow, remembered for pushed metadata.
    fn unowned_shard(&mut self, at: Timestamp, seg: &Segment<'_>) -> usize {
        let s = shard_of(&pair_key(seg.src, seg.dst), self.shards.len());
        let full = self.unowned.len() >= MAX_UNOWNED;
        for e in [seg.src, seg.dst] {
            match self.unowned.get_mut(&e) {
                Some(v) => *v = (s, at),
                None if full => {}
                None => {
                    // A new flow is published at once: metadata pushed for it
                    // a moment later must find where it runs.
                    self.unowned.insert(e, (s, at));
                    self.routes.note_new_unowned(e, s, at);
                }
            }
        }
        s
    }

    fn send(&mut self, shard: usize) {
        let Some(slot) = self.batches.get_mut(shard) else {
            return;
        };
        if slot.is_empty() {
            return;
        }
        let fresh = self
            .pool
            .try_recv()
            .unwrap_or_else(|_| Batch::with_capacity(self.batch_size));
        let batch = std::mem::replace(slot, fresh);
        let n = batch.len() as u64;
        if let Some(tx) = self.shards.get(shard) {
            if self.lossless {
                if tx.send(WorkerMsg::Batch(batch)).is_err() {
                    self.stats.queue_dropped.fetch_add(n, Ordering::Relaxed);
                }
                return;
            }
            match tx.try_send(WorkerMsg::Batch(batch)) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    // Never block capture: the batch is dropped and counted.
                    self.stats.queue_dropped.fetch_add(n, Ordering::Relaxed);
                }
            }
        }
    }

    /// Hands over every non-empty batch (on a read timeout or at the end).
    pub fn flush(&mut self) {
        for s in 0..self.batches.len() {
            self.send(s);
        }
    }
}

/// Runs one worker until `Shutdown` or until every sender is gone.
pub fn run_worker(
    mut engine: Engine,
    rx: Receiver<WorkerMsg>,
    pool: Sender<Batch>,
    sink: Sender<CallRecord>,
    snapshot: Arc<Mutex<WorkerSnapshot>>,
    hep: Option<HepTap>,
) {
    let publish = |engine: &mut Engine, sink: &Sender<CallRecord>| {
        for r in engine.drain_finished() {
            let _ = sink.send(r);
        }
        if let Some(tap) = &hep {
            for t in engine.drain_rtcp_taps() {
                tap.send(HepOut::Rtcp {
                    at: t.at,
                    src: t.src,
                    dst: t.dst,
                    call_id: t.call_id.as_deref().unwrap_or_default().to_string(),
                    json: json::rtcp_json(&t.compound),
                });
            }
        }
    };
    for msg in rx.iter() {
        match msg {
            WorkerMsg::Batch(mut b) => {
                engine.on_batch(&b.frames());
                b.clear();
                let _ = pool.try_send(b);
                publish(&mut engine, &sink);
            }
            WorkerMsg::Tick(now) => {
                engine.tick(now);
                publish(&mut engine, &sink);
                if let Ok(mut s) = snapshot.lock() {
                    s.counters = engine.counters().clone();
                    s.active_streams = engine.active_streams();
                    s.active_dialogs = engine.active_calls();
                }
            }
            WorkerMsg::Push(call, at) => engine.push_call(*call, at),
            WorkerMsg::Barrier(ack) => {
                let _ = ack.send(());
            }
            WorkerMsg::Shutdown => break,
        }
    }
    for r in engine.finish(EndedReason::Shutdown) {
        let _ = sink.send(r);
    }
    if let Ok(mut s) = snapshot.lock() {
        s.counters = engine.counters().clone();
        s.active_streams = 0;
        s.active_dialogs = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_and_rtcp_share_a_shard() {
        let a: SocketAddr = "10.0.0.1:4000".parse().expect("addr");
        let b: SocketAddr = "10.0.0.2:5000".parse().expect("addr");
        let a1: SocketAddr = "10.0.0.1:4001".parse().expect("addr");
        let b1: SocketAddr = "10.0.0.2:5001".parse().expect("addr");
        for n in 1..8 {
            let s = shard_of(&pair_key(a, b), n);
            assert_eq!(s, shard_of(&pair_key(b, a), n));
            assert_eq!(s, shard_of(&pair_key(a1, b1), n));
            assert_eq!(s, shard_of(&pair_key(b1, a1), n));
        }
    }

    fn invite(call_id: &str, port: u16) -> SipEvent {
        let sdp = format!("v=0\r\no=- 1 1 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\n");
        let msg = format!(
            "INVITE sip:b@y SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\n\
Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        );
        match signal::parse_payload(vqprobe_wire::decode::Transport::Udp, msg.as_bytes(), "X").pop()
        {
            Some(Ok(ev)) => ev,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_reused_port_follows_the_newest_call_and_claims_end_with_calls() {
        let t = RouteTable::new(64, Duration::from_secs(2), 100_000);
        let media: SocketAddr = "10.0.0.9:4000".parse().expect("addr");
        let far: SocketAddr = "192.0.2.1:7000".parse().expect("addr");
        // Two Call-IDs that hash to different workers.
        let ids: Vec<String> = (0..100).map(|i| format!("c{i}")).collect();
        let first = &ids[0];
        let second = ids
            .iter()
            .find(|id| shard_of_call(id, 64) != shard_of_call(first, 64))
            .expect("two shards");
        let s1 = t.sip(&invite(first, 4000), Timestamp::from_secs(0));
        assert_eq!(t.media_shard(&far, &media), Some(s1));
        let s2 = t.sip(&invite(second, 4000), Timestamp::from_secs(1));
        assert_ne!(s1, s2);
        assert_eq!(t.media_shard(&far, &media), Some(s2));
        // BYE of the second call: its claim goes after the linger.
        let mut bye = invite(second, 4000);
        bye.method = signal::SipMethod::Bye;
        bye.offer = None;
        t.sip(&bye, Timestamp::from_secs(60));
        let _ = t.sip(&invite("other", 5000), Timestamp::from_secs(70));
        assert_eq!(
            t.media_shard(&far, &media),
            None,
            "released with the call that held it"
        );
    }
}
