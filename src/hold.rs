//! Ordering across capture threads: media nobody owns yet waits until every capture
//! source has read past its capture time.
//!
//! With several capture threads (kernel fanout on one interface, or several interfaces),
//! a call's SIP and its RTP are different flows and may be read by different threads,
//! each up to a kernel block (100 ms) behind the wire. The first RTP packets of a call
//! can then reach the router before the 200 OK whose SDP announces them, and be routed
//! as media without a call. So such a packet is held (copied) until every source's
//! clock — the capture time of the last packet it read, or "now minus the block
//! timeout" when its ring is empty — has passed the packet's time: any SIP captured
//! before it has been routed by then. Later packets of a flow with packets held wait
//! behind them, so a flow's order is kept. Media with an owner is never held.
//!
//! With one capture source nothing is held: its own order is the capture order.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use rustc_hash::FxHashMap;
use vqprobe_engine::time::Timestamp;
use vqprobe_wire::decode::LinkType;

/// Frames one capture thread holds at most; beyond it they are routed at once.
pub const MAX_HELD: usize = 65_536;

/// How far behind the wall clock an idle source may still deliver packets: libpcap's
/// TPACKET_V3 block timeout (the 100 ms read timeout) plus a margin.
pub const IDLE_LAG_NS: i64 = 200_000_000;

/// The capture clocks of every live source.
#[derive(Debug, Default)]
pub struct Clocks {
    sources: RwLock<Vec<Arc<AtomicI64>>>,
}

impl Clocks {
    /// A clock for one more source, starting at the beginning of time.
    pub fn register(&self) -> Arc<AtomicI64> {
        let c = Arc::new(AtomicI64::new(i64::MIN));
        if let Ok(mut s) = self.sources.write() {
            s.push(c.clone());
        }
        c
    }

    /// Sources registered.
    pub fn len(&self) -> usize {
        self.sources.read().map_or(0, |s| s.len())
    }

    /// Whether no source is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The time every source has read past (nanoseconds since the epoch).
    pub fn watermark(&self) -> i64 {
        self.sources.read().map_or(i64::MIN, |s| {
            s.iter()
                .map(|c| c.load(Ordering::Acquire))
                .min()
                .unwrap_or(i64::MIN)
        })
    }
}

/// A frame waiting for the watermark.
#[derive(Debug)]
pub struct HeldFrame {
    /// Capture time.
    pub at: Timestamp,
    /// Its link type.
    pub link: LinkType,
    /// The frame's bytes (a copy: the capture buffer is reused).
    pub frame: Vec<u8>,
    key: (SocketAddr, SocketAddr),
}

/// One capture thread's held frames, oldest first.
#[derive(Debug, Default)]
pub struct Held {
    frames: VecDeque<HeldFrame>,
    /// Frames held per flow, so a flow's later packets queue behind its earlier ones.
    per_flow: FxHashMap<(SocketAddr, SocketAddr), u32>,
    /// Buffers of released frames, reused.
    spare: Vec<Vec<u8>>,
}

impl Held {
    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether the flow from `src` to `dst` has frames held.
    pub fn holds(&self, src: SocketAddr, dst: SocketAddr) -> bool {
        self.per_flow.contains_key(&(src, dst))
    }

    /// Holds a copy of `frame`; false (and nothing held) when full.
    pub fn push(
        &mut self,
        at: Timestamp,
        link: LinkType,
        frame: &[u8],
        src: SocketAddr,
        dst: SocketAddr,
    ) -> bool {
        if self.frames.len() >= MAX_HELD {
            return false;
        }
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(frame);
        *self.per_flow.entry((src, dst)).or_insert(0) += 1;
        self.frames.push_back(HeldFrame {
            at,
            link,
            frame: buf,
            key: (src, dst),
        });
        true
    }

    /// The oldest frame if its time is at or before `watermark` (all of them with
    /// `i64::MAX`).
    pub fn pop_due(&mut self, watermark: i64) -> Option<HeldFrame> {
        if self.frames.front()?.at.as_nanos() > watermark {
            return None;
        }
        let f = self.frames.pop_front()?;
        if let Some(n) = self.per_flow.get_mut(&f.key) {
            *n -= 1;
            if *n == 0 {
                self.per_flow.remove(&f.key);
            }
        }
        Some(f)
    }

    /// Returns a released frame's buffer for reuse.
    pub fn recycle(&mut self, frame: HeldFrame) {
        if self.spare.len() < 1024 {
            self.spare.push(frame.frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    #[test]
    fn watermark_is_the_slowest_source() {
        let c = Clocks::default();
        assert_eq!(c.watermark(), i64::MIN);
        let (a, b) = (c.register(), c.register());
        a.store(100, Ordering::Release);
        assert_eq!(c.watermark(), i64::MIN, "b has read nothing");
        b.store(40, Ordering::Release);
        assert_eq!(c.watermark(), 40);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn frames_leave_in_order_once_due_and_flows_stay_held_until_empty() {
        let mut h = Held::default();
        let (x, y) = (ep("10.0.0.1:4000"), ep("10.0.0.2:5000"));
        let t = Timestamp::from_nanos;
        assert!(h.push(t(10), LinkType::Ethernet, b"one", x, y));
        assert!(h.push(t(20), LinkType::Ethernet, b"two", x, y));
        assert!(h.holds(x, y) && !h.holds(y, x));
        assert!(h.pop_due(5).is_none());
        let f = h.pop_due(15).expect("due");
        assert_eq!(f.frame, b"one");
        h.recycle(f);
        assert!(h.holds(x, y), "the flow still has a frame held");
        assert!(h.pop_due(15).is_none());
        assert_eq!(h.pop_due(i64::MAX).map(|f| f.frame), Some(b"two".to_vec()));
        assert!(!h.holds(x, y) && h.is_empty());
    }
}
