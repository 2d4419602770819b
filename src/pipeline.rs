//! The live pipeline: capture threads decode just enough to pick a shard, batch
//! frames, and hand them over bounded crossbeam channels to worker threads that each
//! own an [`Engine`] and the state of their streams. No lock is taken per packet: a
//! flow's shard is cached in the capture thread; the shared SDP route table is read
//! only for a flow's first packet and written only when SIP announces media.
//!
//! Sharding keeps a call together: SIP goes to the shard of its Call-ID and the media
//! its SDP announces is routed there too; media without signalling goes by the
//! unordered endpoint pair with the RTP/RTCP port pair folded (`port & !1`), so both
//! directions of a stream and their RTCP land on one worker.

use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use rustc_hash::{FxHashMap, FxHasher};

use crate::batch::Batch;
use vqprobe_engine::engine::Engine;
use vqprobe_wire::decode::{self, Decoded, LinkType, Segment, Transport};

use crate::runtime::{SourceStats, WorkerSnapshot};
use vqprobe_engine::record::{CallRecord, EndedReason};
use vqprobe_wire::sip;

/// Media endpoints announced by SDP, with the shard that owns their call.
#[derive(Debug, Default)]
pub struct RouteTable {
    map: RwLock<FxHashMap<SocketAddr, (usize, i64)>>,
    /// Endpoints of media flows already running, and the shard that holds them, so
    /// metadata pushed mid-call goes where the media already is.
    active: RwLock<FxHashMap<SocketAddr, (usize, i64)>>,
}

/// Routes kept at most this long after their SDP (a flow already cached keeps its
/// shard; only new flows of a call that old would miss the route).
const ROUTE_TTL_NS: i64 = 6 * 3600 * 1_000_000_000;
const MAX_ROUTES: usize = 1_000_000;

impl RouteTable {
    /// The shard for a flow between `src` and `dst`. When both ends were announced
    /// by calls on different shards, the older announcement wins: an endpoint shared
    /// by many calls (an SBC's media port) is re-announced by every new call, while
    /// the other end is specific to the call that owns the flow.
    fn lookup(&self, src: &SocketAddr, dst: &SocketAddr) -> Option<usize> {
        let m = self.map.read().ok()?;
        match (m.get(src), m.get(dst)) {
            (Some(&(s1, t1)), Some(&(s2, t2))) => Some(if t1 <= t2 { s1 } else { s2 }),
            (Some(&(s, _)), None) | (None, Some(&(s, _))) => Some(s),
            (None, None) => None,
        }
    }

    /// Routes `addrs` to `shard` (SDP media, or pushed call metadata).
    pub fn insert(&self, addrs: &[SocketAddr], shard: usize, now_ns: i64) {
        if let Ok(mut m) = self.map.write() {
            if m.len() >= MAX_ROUTES {
                m.retain(|_, (_, at)| now_ns.saturating_sub(*at) < ROUTE_TTL_NS);
            }
            for a in addrs {
                m.insert(*a, (shard, now_ns));
            }
        }
    }

    /// Forgets routes older than the TTL.
    pub fn expire(&self, now_ns: i64) {
        if let Ok(mut m) = self.map.write() {
            m.retain(|_, (_, at)| now_ns.saturating_sub(*at) < ROUTE_TTL_NS);
        }
    }

    /// Records that a media flow between `src` and `dst` runs on `shard`.
    fn note_flows(&self, flows: &[(SocketAddr, SocketAddr, usize)], now_ns: i64) {
        if flows.is_empty() {
            return;
        }
        if let Ok(mut m) = self.active.write() {
            for &(src, dst, shard) in flows {
                m.insert(src, (shard, now_ns));
                m.insert(dst, (shard, now_ns));
            }
        }
    }

    /// Forgets running-flow endpoints not refreshed since `before_ns`.
    fn expire_active(&self, before_ns: i64) {
        if let Ok(mut m) = self.active.write() {
            m.retain(|_, (_, at)| *at >= before_ns);
        }
    }

    /// The shard already holding media at any of `addrs`, if one does.
    pub fn shard_holding(&self, addrs: &[SocketAddr]) -> Option<usize> {
        let m = self.active.read().ok()?;
        addrs.iter().find_map(|a| m.get(a).map(|(s, _)| *s))
    }
}

/// Message to a worker.
pub enum WorkerMsg {
    /// Frames to process.
    Batch(Batch),
    /// Time passes (ns since the epoch): run timeouts, publish interim records.
    Tick(i64),
    /// Call metadata pushed by the platform (with the time it arrived).
    Push(Box<vqprobe_engine::push::PushedCall>, i64),
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

/// Flows idle this long are forgotten by the capture thread's cache.
const FLOW_IDLE_NS: i64 = 120 * 1_000_000_000;

/// The per-capture-thread dispatcher: decode, route, batch, hand over.
pub struct Dispatcher {
    shards: Vec<Sender<WorkerMsg>>,
    pool: Receiver<Batch>,
    batches: Vec<Batch>,
    batch_size: usize,
    routes: Arc<RouteTable>,
    flows: FxHashMap<(SocketAddr, SocketAddr), (usize, i64)>,
    stats: Arc<SourceStats>,
    last_sweep_ns: i64,
}

impl Dispatcher {
    /// A dispatcher feeding `shards`, taking empty batches back from `pool`.
    pub fn new(
        shards: Vec<Sender<WorkerMsg>>,
        pool: Receiver<Batch>,
        batch_size: usize,
        routes: Arc<RouteTable>,
        stats: Arc<SourceStats>,
    ) -> Self {
        let n = shards.len();
        Dispatcher {
            shards,
            pool,
            batches: (0..n).map(|_| Batch::with_capacity(batch_size)).collect(),
            batch_size: batch_size.max(1),
            routes,
            flows: FxHashMap::default(),
            stats,
            last_sweep_ns: 0,
        }
    }

    /// Decodes, routes and batches one frame; full batches are handed over.
    pub fn on_frame(&mut self, ts_ns: i64, link: LinkType, frame: &[u8]) {
        self.stats.packets.fetch_add(1, Ordering::Relaxed);
        let decoded = decode::decode(link, frame);
        let shard = match &decoded {
            Ok(Decoded::Segment(seg)) => self.route(ts_ns, seg),
            _ => 0,
        };
        if let Some(b) = self.batches.get_mut(shard) {
            b.push_decoded(ts_ns, frame.len(), decoded);
            if b.len() >= self.batch_size {
                self.send(shard);
            }
        }
        if ts_ns.saturating_sub(self.last_sweep_ns) > 10_000_000_000 {
            self.last_sweep_ns = ts_ns;
            self.flows
                .retain(|_, (_, seen)| ts_ns.saturating_sub(*seen) < FLOW_IDLE_NS);
            // Refresh the shared view of running flows (one write per sweep).
            let live: Vec<(SocketAddr, SocketAddr, usize)> = self
                .flows
                .iter()
                .filter(|(_, (_, seen))| ts_ns.saturating_sub(*seen) < 20_000_000_000)
                .map(|(&(a, b), &(s, _))| (a, b, s))
                .collect();
            self.routes.note_flows(&live, ts_ns);
            self.routes
                .expire_active(ts_ns.saturating_sub(FLOW_IDLE_NS));
        }
    }

    fn route(&mut self, ts_ns: i64, seg: &Segment<'_>) -> usize {
        let n = self.shards.len();
        let key = (seg.src, seg.dst);
        if let Some((shard, seen)) = self.flows.get_mut(&key) {
            *seen = ts_ns;
            return *shard;
        }
        if sip::looks_like_sip(seg.payload) {
            return self.route_sip(ts_ns, seg);
        }
        let shard = self
            .routes
            .lookup(&seg.src, &seg.dst)
            .unwrap_or_else(|| shard_of(&pair_key(seg.src, seg.dst), n));
        if seg.transport == Transport::Udp {
            self.flows.insert(key, (shard, ts_ns));
            self.routes.note_flows(&[(seg.src, seg.dst, shard)], ts_ns);
        }
        shard
    }

    /// SIP goes to its Call-ID's shard, and the media its SDP announces goes there too.
    fn route_sip(&mut self, ts_ns: i64, seg: &Segment<'_>) -> usize {
        let n = self.shards.len();
        let msg = match seg.transport {
            Transport::Udp => sip::parse(seg.payload).ok(),
            Transport::Tcp => sip::parse_stream(seg.payload)
                .0
                .into_iter()
                .find_map(Result::ok),
        };
        let Some(msg) = msg else {
            return shard_of(&pair_key(seg.src, seg.dst), n);
        };
        let shard = shard_of(&msg.call_id, n);
        if let Some(sdp) = &msg.sdp {
            let mut addrs = Vec::new();
            for m in sdp.audio() {
                if let Some(ip) = m.effective_addr(sdp) {
                    addrs.push(SocketAddr::new(ip, m.port));
                    let rtcp_ip = m.rtcp_addr(sdp).unwrap_or(ip);
                    addrs.push(SocketAddr::new(rtcp_ip, m.rtcp_port()));
                }
            }
            self.routes.insert(&addrs, shard, ts_ns);
        }
        shard
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

/// Settings of a worker.
pub struct WorkerSettings {
    /// How often interim records of open calls are published.
    pub interim_ns: i64,
}

/// Runs one worker until `Shutdown` or until every sender is gone.
pub fn run_worker(
    mut engine: Engine,
    rx: Receiver<WorkerMsg>,
    pool: Sender<Batch>,
    sink: Sender<CallRecord>,
    snapshot: Arc<Mutex<WorkerSnapshot>>,
    settings: WorkerSettings,
) {
    let mut last_interim = i64::MIN;
    let publish = |engine: &mut Engine, sink: &Sender<CallRecord>| {
        for r in engine.drain_finished() {
            let _ = sink.send(r);
        }
    };
    for msg in rx.iter() {
        match msg {
            WorkerMsg::Batch(mut b) => {
                b.for_each(|ts, len, d| engine.on_decoded(ts, len, d));
                b.clear();
                let _ = pool.try_send(b);
                publish(&mut engine, &sink);
            }
            WorkerMsg::Tick(now) => {
                engine.tick(now);
                publish(&mut engine, &sink);
                if now.saturating_sub(last_interim) >= settings.interim_ns {
                    last_interim = now;
                    for r in engine.interim_records() {
                        let _ = sink.send(r);
                    }
                }
                if let Ok(mut s) = snapshot.lock() {
                    s.counters = engine.counters().clone();
                    s.active_streams = engine.active_streams();
                    s.active_dialogs = engine.active_dialogs();
                }
            }
            WorkerMsg::Push(call, now) => engine.push_call(*call, now),
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
}
