//! Playout-order view of a stream: which sequence numbers were played, lost or thrown
//! away late by a jitter buffer, in sequence order, per 5-second interval.
//!
//! The E-model needs loss in playout order (burstiness) and the loss a receiver's
//! jitter buffer adds. A sequence number is final once the highest sequence number is
//! [`WINDOW`] ahead of it (a later arrival would be rejected by RFC 3550 A.1 anyway),
//! so the state is a ring of 128 slots, never a per-packet list.

use super::seq::WINDOW;

/// The jitter buffers every stream runs through.
pub const BUFFERS: usize = 3;
/// Index of the adaptive buffer (the one `mos` uses).
pub const JB_ADAPTIVE: usize = 0;
/// Index of the fixed 50 ms buffer.
pub const JB_FIXED_50: usize = 1;
/// Index of the fixed 200 ms buffer.
pub const JB_FIXED_200: usize = 2;
/// Ceiling of the adaptive buffer.
pub const ADAPTIVE_MAX_MS: f64 = 500.0;
/// Longest loss run with its own histogram bucket; longer runs share the last one.
pub const LOSS_RUN_BUCKETS: usize = 10;

/// A simulated receiver jitter buffer deciding, per packet, play or discard.
///
/// Delay variation is measured against the smallest transit seen (G.1020 Appendix II
/// style): a packet whose transit exceeds it by more than the buffer depth arrives
/// after its playout time and is discarded.
#[derive(Debug, Clone, Copy)]
pub struct JitterBuffer {
    fixed_ms: Option<f64>,
    depth_ms: f64,
}

impl JitterBuffer {
    /// A fixed buffer of the given depth.
    pub fn fixed(ms: f64) -> Self {
        JitterBuffer {
            fixed_ms: Some(ms),
            depth_ms: ms,
        }
    }

    /// An adaptive buffer starting at `initial_ms`.
    pub fn adaptive(initial_ms: f64) -> Self {
        JitterBuffer {
            fixed_ms: None,
            depth_ms: initial_ms,
        }
    }

    /// Current depth in ms (the buffer's contribution to mouth-to-ear delay).
    pub fn depth_ms(&self) -> f64 {
        self.depth_ms
    }

    /// Decides one packet; `variation_ms` is transit minus the minimum transit,
    /// `jitter_ms` the running RFC 3550 jitter, `frame_ms` the packet duration.
    /// Returns `true` when the packet is discarded.
    pub fn offer(&mut self, variation_ms: f64, jitter_ms: f64, frame_ms: f64) -> bool {
        let late = variation_ms > self.depth_ms;
        if self.fixed_ms.is_none() {
            let floor = frame_ms.max(10.0);
            if late {
                // Spike: grow at once to hold a packet this late (the packet itself is
                // already lost to playout).
                self.depth_ms = (variation_ms + frame_ms).min(ADAPTIVE_MAX_MS);
            } else {
                // Settle slowly towards a few jitters of headroom, as real adaptive
                // buffers shrink during talkspurts without audible skips.
                let target = (4.0 * jitter_ms).max(floor).min(ADAPTIVE_MAX_MS);
                if target > self.depth_ms {
                    self.depth_ms = target;
                } else {
                    self.depth_ms -= (self.depth_ms - target) / 64.0;
                }
            }
        }
        late
    }
}

/// Two-state (received / lost-or-discarded) transition counts, G.107 §7.5 via
/// ALGORITHMS.md §3: BurstR = 1/(p+q).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transitions {
    /// Received followed by received.
    pub rr: u64,
    /// Received followed by lost.
    pub rl: u64,
    /// Lost followed by received.
    pub lr: u64,
    /// Lost followed by lost.
    pub ll: u64,
}

impl Transitions {
    fn add(&mut self, prev_lost: bool, lost: bool, n: u64) {
        match (prev_lost, lost) {
            (false, false) => self.rr += n,
            (false, true) => self.rl += n,
            (true, false) => self.lr += n,
            (true, true) => self.ll += n,
        }
    }

    /// Adds another set of counts.
    pub fn merge(&mut self, o: &Transitions) {
        self.rr += o.rr;
        self.rl += o.rl;
        self.lr += o.lr;
        self.ll += o.ll;
    }
}

/// Per-interval accumulators for one buffer.
#[derive(Debug, Clone, Copy, Default)]
pub struct BufferInterval {
    /// Packets this buffer discarded as late.
    pub discarded: u64,
    /// Playout-order transitions (lost or discarded counts as lost).
    pub transitions: Transitions,
    /// Sum of the buffer depth at each played packet, for its mean.
    pub depth_sum_ms: f64,
    /// Packets the depth was sampled at.
    pub depth_samples: u64,
}

/// One reporting interval of a stream.
#[derive(Debug, Clone, Copy, Default)]
pub struct Interval {
    /// Interval number: start time = index × interval length (absolute, UTC-aligned).
    pub index: i64,
    /// Packets that arrived in the interval (duplicates included).
    pub packets: u64,
    /// Sequence numbers finalised in the interval.
    pub expected: u64,
    /// Of those, never received.
    pub lost: u64,
    /// RFC 3550 jitter (ms) at the interval's last packet.
    pub jitter_ms: f64,
    /// Per-buffer figures, indexed by `JB_*`.
    pub buffers: [BufferInterval; BUFFERS],
}

/// One ring slot packed in a `u16`: bit 15 received, bits 12–14 discarded by buffer 0–2,
/// bits 0–11 the interval it arrived in, modulo 4096. Every slot in the window arrived
/// within 4096 intervals (5.7 h) of the newest arrival, so the interval decodes
/// unambiguously against it. A stream is 256 bytes of ring instead of kilobytes: at
/// 100,000 concurrent streams that is what lets them fit in memory.
#[derive(Debug, Clone, Copy, Default)]
struct Slot(u16);

const RECEIVED: u16 = 1 << 15;
const IV_BITS: u32 = 12;
const IV_MASK: u16 = (1 << IV_BITS) - 1;

impl Slot {
    fn new(discarded: [bool; BUFFERS], interval: i64) -> Slot {
        let mut bits = RECEIVED | (interval.rem_euclid(1 << IV_BITS) as u16);
        for (k, d) in discarded.iter().enumerate() {
            if *d {
                bits |= 1 << (12 + k);
            }
        }
        Slot(bits)
    }

    fn received(self) -> bool {
        self.0 & RECEIVED != 0
    }

    fn discarded(self, k: usize) -> bool {
        self.0 & (1 << (12 + k)) != 0
    }

    /// The interval, given the newest arrival's (`latest`, never earlier).
    fn interval(self, latest: i64) -> i64 {
        let stored = i64::from(self.0 & IV_MASK);
        latest - (latest - stored).rem_euclid(1 << IV_BITS)
    }
}

/// Finalises sequence numbers in order and keeps the interval series.
#[derive(Debug, Clone)]
pub struct Playout {
    interval_ns: i64,
    ring: Box<[Slot; WINDOW as usize]>,
    /// Interval of the newest arrival: ring slots' intervals decode against it.
    latest_interval: i64,
    next_final: Option<u64>,
    highest: u64,
    /// State of the previous finalised number; `None` before the first.
    prev_lost: Option<[bool; BUFFERS]>,
    /// Interval of the last finalised packet: a loss belongs where its neighbour played.
    final_interval: i64,
    run: u64,
    /// Histogram of network loss-run lengths: index 0 = runs of 1 … index 9 = 10+.
    pub loss_runs: [u64; LOSS_RUN_BUCKETS],
    /// Closed intervals, oldest first (see [`Playout::intervals`]).
    closed: Vec<Interval>,
    /// The newest interval, kept inline: nearly every packet touches only it.
    current: Option<Interval>,
}

impl Playout {
    /// An empty playout view with intervals of `interval_ns` nanoseconds.
    pub fn new(interval_ns: i64) -> Self {
        Playout {
            interval_ns: interval_ns.max(1),
            ring: Box::new([Slot::default(); WINDOW as usize]),
            latest_interval: i64::MIN,
            next_final: None,
            highest: 0,
            prev_lost: None,
            final_interval: 0,
            run: 0,
            loss_runs: [0; LOSS_RUN_BUCKETS],
            closed: Vec::new(),
            current: None,
        }
    }

    /// Reads the ring slot and interval the next packet touches (see `Stream::warm`).
    pub fn warm(&self) -> u64 {
        let next = self.highest.wrapping_add(1) % WINDOW;
        u64::from(self.ring[next as usize].0) ^ self.current.map_or(0, |c| c.packets)
    }

    /// The interval series, oldest first: every interval that saw a packet or a loss.
    pub fn intervals(&self) -> impl Iterator<Item = &Interval> + '_ {
        self.closed.iter().chain(self.current.iter())
    }

    /// Interval number of a capture time.
    pub fn interval_of(&self, arrival_ns: i64) -> i64 {
        arrival_ns.div_euclid(self.interval_ns)
    }

    /// Length of an interval in nanoseconds.
    pub fn interval_ns(&self) -> i64 {
        self.interval_ns
    }

    /// The interval `index`, created when it is new. Intervals are kept sparse: a
    /// stream silent for a day (or a hostile timestamp years ahead) adds one interval,
    /// not one per five seconds of the gap.
    fn interval_mut(&mut self, index: i64) -> &mut Interval {
        let cur = self.current.map_or(i64::MIN, |c| c.index);
        if index > cur {
            if let Some(c) = self.current.take() {
                self.closed.push(c);
            }
            return self.current.insert(Interval {
                index,
                ..Interval::default()
            });
        }
        if index == cur {
            if let Some(c) = self.current.as_mut() {
                return c;
            }
        }
        // An older interval (a reordered capture, a loss finalised late): found, or
        // inserted in order.
        let pos = match self.closed.binary_search_by_key(&index, |i| i.index) {
            Ok(pos) => pos,
            Err(pos) => {
                self.closed.insert(
                    pos,
                    Interval {
                        index,
                        ..Interval::default()
                    },
                );
                pos
            }
        };
        &mut self.closed[pos]
    }

    /// Records an arrival (any copy) for the interval packet count and jitter.
    pub fn arrival(&mut self, arrival_ns: i64, jitter_ms: f64) {
        let idx = self.interval_of(arrival_ns);
        let iv = self.interval_mut(idx);
        iv.packets += 1;
        iv.jitter_ms = jitter_ms;
    }

    /// Records the first copy of extended sequence `ext`, its interval and which
    /// buffers discarded it (with their depth at that moment); `depths_ms` is `None`
    /// for a packet that is received but not played (a payload type the call did not
    /// negotiate): it is not lost, and it says nothing about the buffers.
    pub fn received(
        &mut self,
        ext: u64,
        arrival_ns: i64,
        discarded: [bool; BUFFERS],
        depths_ms: Option<[f64; BUFFERS]>,
    ) {
        let idx = self.interval_of(arrival_ns);
        if let Some(depths_ms) = depths_ms {
            let iv = self.interval_mut(idx);
            for (b, d) in iv.buffers.iter_mut().zip(depths_ms) {
                b.depth_sum_ms += d;
                b.depth_samples += 1;
            }
        }
        match self.next_final {
            None => {
                self.next_final = Some(ext);
                self.highest = ext;
                self.final_interval = idx;
            }
            Some(nf) if ext < nf => return, // too late to play: already counted lost
            Some(_) => {}
        }
        if ext > self.highest {
            // Finalise what the window moves past before reusing its slots.
            let keep_from = (ext + 1).saturating_sub(WINDOW);
            self.finalize_below(keep_from);
            self.highest = ext;
        }
        if self.latest_interval != i64::MIN
            && idx.saturating_sub(self.latest_interval) >= 1 << IV_BITS
        {
            // Hours of silence: what is pending is final now (the ring cannot tell
            // intervals that far apart).
            self.finalize_below(ext.min(self.highest + 1));
        }
        self.latest_interval = self.latest_interval.max(idx);
        self.ring[(ext % WINDOW) as usize] = Slot::new(discarded, idx);
    }

    /// Finalises everything still pending (end of stream or restart).
    pub fn flush(&mut self) {
        let end = self.highest + 1;
        self.finalize_below(end);
    }

    /// Starts a new sequence segment (a source restart): flush, then forget the base.
    pub fn restart(&mut self) {
        self.flush();
        self.next_final = None;
    }

    fn finalize_below(&mut self, end: u64) {
        let Some(mut nf) = self.next_final else {
            return;
        };
        // Slots past the old highest were emptied when their predecessor 128 numbers
        // back was finalised, so a gap reads as lost without special-casing.
        while nf < end {
            let slot = std::mem::take(&mut self.ring[(nf % WINDOW) as usize]);
            if slot.received() {
                self.final_interval = slot.interval(self.latest_interval);
            }
            self.finalize_one(slot, self.final_interval);
            nf += 1;
        }
        self.next_final = Some(nf);
    }

    fn finalize_one(&mut self, slot: Slot, idx: i64) {
        let prev = self.prev_lost;
        let iv = self.interval_mut(idx);
        iv.expected += 1;
        if !slot.received() {
            iv.lost += 1;
        }
        let mut now_lost = [false; BUFFERS];
        for (k, b) in iv.buffers.iter_mut().enumerate() {
            let lost = !slot.received() || slot.discarded(k);
            if slot.received() && slot.discarded(k) {
                b.discarded += 1;
            }
            if let Some(p) = prev {
                b.transitions.add(p[k], lost, 1);
            }
            now_lost[k] = lost;
        }
        self.prev_lost = Some(now_lost);
        if slot.received() {
            self.close_run();
        } else {
            self.run += 1;
        }
    }

    fn close_run(&mut self) {
        if self.run > 0 {
            let bucket = (self.run.min(LOSS_RUN_BUCKETS as u64) - 1) as usize;
            self.loss_runs[bucket] += 1;
            self.run = 0;
        }
    }

    /// Closes an open loss run into the histogram (call after [`Playout::flush`]).
    pub fn close(&mut self) {
        self.close_run();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn run(seqs: &[u64]) -> Playout {
        let mut p = Playout::new(5 * S);
        for (i, &s) in seqs.iter().enumerate() {
            let t = i as i64 * 20_000_000;
            p.arrival(t, 0.0);
            p.received(s, t, [false; BUFFERS], Some([0.0; BUFFERS]));
        }
        p.flush();
        p.close();
        p
    }

    #[test]
    fn loss_runs_and_transitions() {
        // 60 packets, losing 10 and 20–22 (ALGORITHMS.md §7 E).
        let seqs: Vec<u64> = (0..60).filter(|s| ![10, 20, 21, 22].contains(s)).collect();
        let p = run(&seqs);
        assert_eq!(p.loss_runs[0], 1);
        assert_eq!(p.loss_runs[2], 1);
        let mut t = Transitions::default();
        let mut exp = 0;
        let mut lost = 0;
        for iv in p.intervals() {
            t.merge(&iv.buffers[0].transitions);
            exp += iv.expected;
            lost += iv.lost;
        }
        assert_eq!((exp, lost), (60, 4));
        // 59 transitions: R->L twice, L->R twice, L->L twice.
        assert_eq!(
            t,
            Transitions {
                rr: 53,
                rl: 2,
                lr: 2,
                ll: 2
            }
        );
    }

    #[test]
    fn long_gap_beyond_window() {
        let mut seqs: Vec<u64> = (0..10).collect();
        seqs.extend(500..510);
        let p = run(&seqs);
        let lost: u64 = p.intervals().map(|i| i.lost).sum();
        let exp: u64 = p.intervals().map(|i| i.expected).sum();
        assert_eq!((exp, lost), (510, 490));
        assert_eq!(p.loss_runs[9], 1);
    }

    #[test]
    fn reordered_packet_is_not_lost() {
        let p = run(&[0, 1, 3, 2, 4, 5]);
        let lost: u64 = p.intervals().map(|i| i.lost).sum();
        assert_eq!(lost, 0);
    }

    #[test]
    fn a_day_of_silence_adds_one_interval() {
        let mut p = Playout::new(5 * S);
        for (i, t) in [0, 20_000_000, 86_400 * S, 86_400 * S + 20_000_000]
            .iter()
            .enumerate()
        {
            p.arrival(*t, 0.0);
            p.received(i as u64, *t, [false; BUFFERS], Some([0.0; BUFFERS]));
        }
        p.flush();
        assert_eq!(p.intervals().count(), 2);
        // Reordered into an older, missing interval: inserted in order.
        p.arrival(10 * S, 0.0);
        assert_eq!(
            p.intervals().map(|i| i.index).collect::<Vec<_>>(),
            [0, 2, 17_280]
        );
    }

    #[test]
    fn intervals_split_by_time() {
        let seqs: Vec<u64> = (0..600).collect(); // 12 s at 20 ms
        let p = run(&seqs);
        assert_eq!(p.intervals().count(), 3);
        assert_eq!(p.intervals().next().map(|i| i.packets), Some(250));
        let exp: u64 = p.intervals().map(|i| i.expected).sum();
        assert_eq!(exp, 600);
    }

    #[test]
    fn adaptive_buffer_grows_on_spike_and_fixed_discards() {
        let mut a = JitterBuffer::adaptive(40.0);
        let mut f = JitterBuffer::fixed(50.0);
        assert!(!f.offer(30.0, 2.0, 20.0));
        assert!(f.offer(80.0, 2.0, 20.0));
        assert!(a.offer(120.0, 2.0, 20.0));
        assert!((a.depth_ms() - 140.0).abs() < 1e-9);
        assert!(!a.offer(120.0, 2.0, 20.0));
    }
}
