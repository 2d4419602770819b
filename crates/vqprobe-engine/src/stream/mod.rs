//! One RTP stream (one direction, one SSRC, one 5-tuple): every per-packet figure the
//! contract defines, updated in O(1) per packet with bounded memory.

pub mod jitter;
pub mod playout;
pub mod seq;
pub mod xr;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::codec::MediaKind;
use crate::media::{self, PayloadMap, PtInfo};
use crate::time::Timestamp;
use jitter::{RfcJitter, TsharkStats};
use playout::{JitterBuffer, Playout, BUFFERS, JB_ADAPTIVE, JB_FIXED_200, JB_FIXED_50};
use seq::{SeqOutcome, SeqTracker};
use vqprobe_wire::rtp::RtpHeader;
use vqprobe_wire::{Pt, Ssrc};

/// Consecutive packet pairs summed before a clock is inferred.
const CLOCK_PAIRS: u32 = 25;
/// Arrival time those pairs must span (so bursts average out).
const CLOCK_SPAN_NS: i64 = 400_000_000;

/// The per-packet part of [`PtInfo`], cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq)]
struct PtClock {
    tshark_clock: u32,
    kind: MediaKind,
    /// Negotiated for this stream (the map is not read per packet: one cache line
    /// less for every packet of a stream).
    negotiated: bool,
}

/// Identity of a stream: RFC 3550 keys by SSRC; B2BUAs reuse an SSRC on both legs,
/// so the 5-tuple is part of the key too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// Synchronisation source.
    pub ssrc: Ssrc,
}

/// What the far end said about this stream in RTCP report blocks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RemoteReport {
    /// Fraction lost since its previous report (0–1).
    pub fraction_lost: f64,
    /// Cumulative packets lost (signed, as reported).
    pub cumulative_lost: i64,
    /// Interarrival jitter in ms (report units over the stream's clock).
    pub jitter_ms: Option<f64>,
    /// Extended highest sequence number it had received.
    pub ext_highest_seq: u32,
    /// Capture time of the report.
    pub at_ns: i64,
}

/// Round-trip samples measured from RTCP for the probe-to-far-end leg of this stream.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RttStats {
    /// Samples taken.
    pub samples: u64,
    /// Latest sample (ms).
    pub last_ms: f64,
    /// Sum of samples (ms), for the mean.
    pub sum_ms: f64,
    /// Largest sample (ms).
    pub max_ms: f64,
}

impl RttStats {
    /// Adds one sample; negative values (clock skew in the far end's DLSR) clamp to 0.
    pub fn add(&mut self, ms: f64) {
        let ms = ms.max(0.0);
        self.samples += 1;
        self.last_ms = ms;
        self.sum_ms += ms;
        self.max_ms = self.max_ms.max(ms);
    }

    /// Mean of the samples, `None` without samples.
    pub fn mean_ms(&self) -> Option<f64> {
        (self.samples > 0).then(|| self.sum_ms / self.samples as f64)
    }
}

/// Per-stream state fed one packet at a time.
#[derive(Debug, Clone)]
pub struct Stream {
    /// Identity.
    pub key: StreamKey,
    /// Capture time of the first packet.
    pub first: Timestamp,
    /// Capture time of the last packet.
    pub last: Timestamp,
    /// Packets received, duplicates included.
    pub packets: u64,
    /// Packets of a payload type the call did not negotiate for this stream (Cisco NSE
    /// beside G.711, a stray comfort-noise type): counted, kept out of jitter, timing
    /// and scoring (their sequence numbers still count as received).
    pub other_payload_packets: u64,
    /// Sequence number and RTP timestamp of the latest packet, whatever its type.
    pub last_seq_ts: Option<(vqprobe_wire::SeqNo, u32)>,
    /// Payload bytes received.
    pub payload_bytes: u64,
    /// Payload type of the first voice (or first) packet.
    pub main_pt: Option<Pt>,
    /// Resolved info for `main_pt`.
    pub main_info: Option<PtInfo>,
    /// Payload type and name of the very first packet (for streams with no voice,
    /// such as a DTMF-only SSRC).
    pub first_pt: Option<(Pt, Option<String>)>,
    /// Clock used for RFC jitter and the buffers (0 until known or inferred).
    pub clock: u32,
    /// Packet duration (ms) from consecutive timestamps, or `a=ptime`.
    pub frame_ms: Option<f64>,
    /// Latest far-end report about this stream.
    pub remote: Option<Box<RemoteReport>>,
    /// The receiving endpoint's own reports about this stream (RTCP XR, RFC 6035).
    pub xr: Option<Box<xr::XrState>>,
    /// Probe-to-far-end round trips.
    pub rtt: RttStats,
    /// Sequence tracking (RFC 3550 A.1 with duplicates).
    pub seq: SeqTracker,
    /// RFC 3550 A.8 jitter.
    pub rfc_jitter: RfcJitter,
    /// tshark's statistics.
    pub tshark: TsharkStats,
    /// Playout view: loss runs, buffers, intervals.
    pub playout: Playout,
    payloads: Option<Arc<PayloadMap>>,
    cached_pt: Option<(Pt, PtClock)>,
    buffers: [JitterBuffer; BUFFERS],
    min_transit_ms: Option<f64>,
    ts_ext: i64,
    last_ts: Option<u32>,
    prev_seq_ts: Option<(vqprobe_wire::SeqNo, u32, i64)>,
    /// Clock inference: (sum of timestamp steps, sum of arrival gaps ns, pairs).
    clock_guess: Option<(u64, i64, u32)>,
}

impl Stream {
    /// A new stream; `trusted` skips RFC 3550 probation (signalled or confirmed flows).
    pub fn new(
        key: StreamKey,
        first: Timestamp,
        payloads: Option<Arc<PayloadMap>>,
        interval_ns: i64,
        trusted: bool,
    ) -> Self {
        let frame_ms = payloads.as_ref().and_then(|p| p.ptime_ms).map(f64::from);
        Stream {
            key,
            first,
            last: first,
            packets: 0,
            other_payload_packets: 0,
            last_seq_ts: None,
            payload_bytes: 0,
            main_pt: None,
            main_info: None,
            first_pt: None,
            clock: 0,
            frame_ms,
            remote: None,
            xr: None,
            rtt: RttStats::default(),
            seq: if trusted {
                SeqTracker::trusted()
            } else {
                SeqTracker::new()
            },
            rfc_jitter: RfcJitter::default(),
            tshark: TsharkStats::default(),
            playout: Playout::new(interval_ns),
            payloads,
            cached_pt: None,
            buffers: [
                JitterBuffer::adaptive(40.0),
                JitterBuffer::fixed(50.0),
                JitterBuffer::fixed(200.0),
            ],
            min_transit_ms: None,
            ts_ext: 0,
            last_ts: None,
            prev_seq_ts: None,
            clock_guess: None,
        }
    }

    /// Makes the headline buffer (the one `mos` uses) fixed at `ms`, or keeps it
    /// adaptive with `None` (config `quality.jitter_buffer`).
    pub fn with_headline_buffer(mut self, fixed_ms: Option<f64>) -> Self {
        if let Some(ms) = fixed_ms {
            self.buffers[JB_ADAPTIVE] = JitterBuffer::fixed(ms);
        }
        self
    }

    /// The signalled payload formats, if any.
    pub fn payloads(&self) -> Option<Arc<PayloadMap>> {
        self.payloads.clone()
    }

    /// Attaches signalled payload formats learnt after the stream started.
    pub fn set_payloads(&mut self, payloads: Arc<PayloadMap>) {
        if self.frame_ms.is_none() {
            self.frame_ms = payloads.ptime_ms.map(f64::from);
        }
        self.payloads = Some(payloads);
        self.cached_pt = None;
        if let Some((pt, _)) = self.first_pt {
            self.first_pt = Some((pt, media::resolve(pt, self.payloads.as_deref()).name));
        }
        if let Some(pt) = self.main_pt {
            let info = media::resolve(pt, self.payloads.as_deref());
            if self.clock == 0 {
                self.clock = info.clock;
            }
            self.main_info = Some(info);
        }
    }

    /// Clock and kind of a payload type; cached because a stream rarely changes PT
    /// and resolving allocates the codec name.
    fn pt_clock(&mut self, pt: Pt) -> PtClock {
        match self.cached_pt {
            Some((p, c)) if p == pt => c,
            _ => {
                let info = media::resolve(pt, self.payloads.as_deref());
                let c = PtClock {
                    tshark_clock: info.tshark_clock,
                    kind: info.kind,
                    negotiated: self.negotiated(pt),
                };
                self.cached_pt = Some((pt, c));
                c
            }
        }
    }

    /// Reads (without changing) the memory the next packet's update touches, a line
    /// at a time, so a batch driver can have it on its way; the value means nothing.
    pub fn warm(&self) -> u64 {
        let mut w = self.packets
            ^ self.other_payload_packets
            ^ self.payload_bytes
            ^ u64::from(self.clock)
            ^ self.seq.expected()
            ^ self.rfc_jitter.units().to_bits()
            ^ self.tshark.max_delta.to_bits()
            ^ self.tshark.max_jitter.to_bits()
            ^ self.last.as_nanos() as u64
            ^ self.first.as_nanos() as u64
            ^ self.ts_ext as u64
            ^ self.frame_ms.map_or(0, f64::to_bits)
            ^ self.min_transit_ms.map_or(0, f64::to_bits)
            ^ u64::from(self.last_ts.unwrap_or(0))
            ^ self.prev_seq_ts.map_or(0, |(_, ts, _)| u64::from(ts))
            ^ self.cached_pt.map_or(0, |(p, _)| u64::from(p.0))
            ^ u64::from(self.main_pt.map_or(0, |p| p.0))
            ^ self.playout.warm();
        for b in &self.buffers {
            w ^= b.depth_ms().to_bits();
        }
        w
    }

    /// Whether the signalling negotiated this payload type for the stream (always true
    /// without signalling).
    pub fn negotiated(&self, pt: vqprobe_wire::Pt) -> bool {
        match &self.payloads {
            Some(map) if !map.formats.is_empty() => map.get(pt).is_some(),
            _ => true,
        }
    }

    /// Whether `h` continues this stream: its next sequence numbers and timestamps,
    /// within `max_gap` of the last packet (a straggler, not a new source).
    pub fn continued_by(&self, arrival: Timestamp, h: &RtpHeader, max_gap_ns: i64) -> bool {
        let Some((seq, ts)) = self.last_seq_ts else {
            return false;
        };
        let dseq = seq.distance_to(h.seq);
        let dts = h.ts.wrapping_sub(ts);
        (1..=64).contains(&dseq)
            && dts <= 90_000 * 2
            && arrival.nanos_since(self.last) <= max_gap_ns
    }

    /// Feeds one RTP packet of this stream, in capture order.
    pub fn on_packet(&mut self, arrival: Timestamp, h: &RtpHeader) {
        let arrival_ns = arrival.as_nanos();
        self.packets += 1;
        self.last = self.last.max(arrival);
        self.last_seq_ts = Some((h.seq, h.ts));
        let info = self.pt_clock(h.pt);
        if !info.negotiated {
            // Received (not lost), but not voice: no jitter, no buffers, no score.
            self.other_payload_packets += 1;
            if let SeqOutcome::Next(ext) | SeqOutcome::Late(ext) | SeqOutcome::Restart(ext) =
                self.seq.update(h.seq.0)
            {
                self.playout
                    .received(ext, arrival_ns, [false; BUFFERS], None);
            }
            return;
        }
        self.payload_bytes += u64::from(h.payload_len);
        let rel_ms = arrival.nanos_since(self.first) as f64 / 1e6;
        self.tshark
            .update(rel_ms, h.ts, h.pt.0, h.marker, info.tshark_clock);

        if self.first_pt.is_none() {
            let name = media::resolve(h.pt, self.payloads.as_deref()).name;
            self.first_pt = Some((h.pt, name));
        }
        let voice = matches!(info.kind, MediaKind::Voice);
        if self.main_pt.is_none() && voice {
            let full = media::resolve(h.pt, self.payloads.as_deref());
            self.main_pt = Some(h.pt);
            self.clock = full.clock;
            self.main_info = Some(full);
        }
        let is_main = self.main_pt == Some(h.pt);

        let outcome = self.seq.update(h.seq.0);
        let ext = match outcome {
            SeqOutcome::Next(e) | SeqOutcome::Late(e) => Some(e),
            SeqOutcome::Restart(e) => {
                self.playout.restart();
                self.min_transit_ms = None;
                self.rfc_jitter.reset_transit();
                self.last_ts = None;
                Some(e)
            }
            SeqOutcome::Duplicate(_) | SeqOutcome::Probation | SeqOutcome::Jump => None,
        };

        if is_main {
            self.learn_clock_and_frame(arrival_ns, h);
        }

        let mut discarded = [false; BUFFERS];
        let mut depths = [0.0; BUFFERS];
        if is_main && self.clock != 0 {
            // RFC 3550 A.8 runs over every packet in arrival order, copies included.
            let rel_s = arrival.nanos_since(self.first) as f64 / 1e9;
            self.rfc_jitter.update(rel_s, h.ts, self.clock);
        }
        if is_main && self.clock != 0 && !matches!(outcome, SeqOutcome::Duplicate(_)) {
            let transit_ms = rel_ms - self.extend_ts(h.ts) as f64 * 1000.0 / f64::from(self.clock);
            let min = self
                .min_transit_ms
                .map_or(transit_ms, |m| m.min(transit_ms));
            self.min_transit_ms = Some(min);
            let jitter_ms = self.rfc_jitter.ms(self.clock);
            let frame = self.frame_ms.unwrap_or(20.0);
            for (k, jb) in self.buffers.iter_mut().enumerate() {
                discarded[k] = jb.offer(transit_ms - min, jitter_ms, frame);
                depths[k] = jb.depth_ms();
            }
        } else {
            for (k, jb) in self.buffers.iter().enumerate() {
                depths[k] = jb.depth_ms();
            }
        }
        self.playout
            .arrival(arrival_ns, self.rfc_jitter.ms(self.clock));
        if let Some(ext) = ext {
            self.playout
                .received(ext, arrival_ns, discarded, Some(depths));
        }
    }

    /// Unwraps the RTP timestamp into a signed 64-bit timeline.
    fn extend_ts(&mut self, ts: u32) -> i64 {
        match self.last_ts {
            None => {
                self.ts_ext = i64::from(ts);
            }
            Some(prev) => {
                self.ts_ext += i64::from(ts.wrapping_sub(prev) as i32);
            }
        }
        self.last_ts = Some(ts);
        self.ts_ext
    }

    fn learn_clock_and_frame(&mut self, arrival_ns: i64, h: &RtpHeader) {
        if let Some((pseq, pts, pns)) = self.prev_seq_ts {
            if h.seq == pseq {
                // A duplicate: pairing the next packet with it would halve its gap.
                return;
            }
            if h.seq == pseq.next() && !h.marker {
                let dts = h.ts.wrapping_sub(pts);
                if self.clock == 0 && dts < 90_000 {
                    // Sum over many consecutive pairs: one pair's arrival gap is mostly
                    // network jitter (bursts arrive a few ms apart).
                    let dt = (arrival_ns - pns).max(0);
                    let (sum_ts, sum_ns, n) = self.clock_guess.get_or_insert((0, 0, 0));
                    *sum_ts += u64::from(dts);
                    *sum_ns += dt;
                    *n += 1;
                    if *n >= CLOCK_PAIRS && *sum_ns >= CLOCK_SPAN_NS {
                        let measured = media::infer_clock_total(*sum_ts, *sum_ns as f64 / 1e9);
                        self.clock_guess = None;
                        if let Some(c) = measured {
                            self.clock = c;
                            if let Some(mi) = self.main_info.as_mut() {
                                mi.clock = c;
                            }
                        }
                    }
                }
                if self.frame_ms.is_none() && self.clock != 0 && dts > 0 && dts < self.clock {
                    self.frame_ms = Some(f64::from(dts) * 1000.0 / f64::from(self.clock));
                }
            }
        }
        self.prev_seq_ts = Some((h.seq, h.ts, arrival_ns));
    }

    /// Records a far-end report block about this stream.
    pub fn on_remote_report(&mut self, report: RemoteReport) {
        // Reports arrive every few seconds for the life of the stream: one box, reused.
        match &mut self.remote {
            Some(r) => **r = report,
            None => self.remote = Some(Box::new(report)),
        }
    }

    /// Ends the stream: everything pending in the playout window becomes final.
    pub fn finish(&mut self) {
        self.playout.flush();
        self.playout.close();
    }

    /// RFC 3550 jitter now, in ms (0 while the clock is unknown).
    pub fn jitter_ms(&self) -> f64 {
        self.rfc_jitter.ms(self.clock)
    }

    /// Whether the stream carries voice the E-model can score: a voice payload type
    /// (telephone-event, comfort noise and video are not).
    pub fn is_voice(&self) -> bool {
        self.main_pt.is_some()
    }

    /// Codec name for reports.
    pub fn codec_name(&self) -> Option<&str> {
        match &self.main_info {
            Some(i) => i.name.as_deref(),
            None => self.first_pt.as_ref().and_then(|(_, n)| n.as_deref()),
        }
    }

    /// Payload type for reports: the voice payload's, else the first packet's.
    pub fn payload_type(&self) -> Option<Pt> {
        self.main_pt.or(self.first_pt.as_ref().map(|(pt, _)| *pt))
    }

    /// Which jitter buffer index the headline `mos` uses.
    pub const HEADLINE_BUFFER: usize = JB_ADAPTIVE;
    /// Fixed 50 ms buffer index.
    pub const BUFFER_50: usize = JB_FIXED_50;
    /// Fixed 200 ms buffer index.
    pub const BUFFER_200: usize = JB_FIXED_200;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> StreamKey {
        StreamKey {
            src: "10.0.0.1:4000".parse().expect("addr"),
            dst: "10.0.0.2:5000".parse().expect("addr"),
            ssrc: vqprobe_wire::Ssrc(1),
        }
    }

    fn hdr(seq: u16, ts: u32) -> RtpHeader {
        RtpHeader {
            seq: vqprobe_wire::SeqNo(seq),
            ts,
            ssrc: vqprobe_wire::Ssrc(1),
            pt: vqprobe_wire::Pt(0),
            marker: false,
            payload_len: 160,
        }
    }

    #[test]
    fn clean_stream() {
        let mut s = Stream::new(key(), Timestamp::from_nanos(0), None, 5_000_000_000, true);
        for i in 0..500u16 {
            s.on_packet(
                Timestamp::from_nanos(i64::from(i) * 20_000_000),
                &hdr(i, u32::from(i) * 160),
            );
        }
        s.finish();
        assert_eq!(s.packets, 500);
        assert_eq!(s.seq.lost(), 0);
        assert_eq!(s.clock, 8000);
        assert_eq!(s.frame_ms, Some(20.0));
        assert!(s.jitter_ms().abs() < 1e-9);
        let exp: u64 = s.playout.intervals().map(|i| i.expected).sum();
        assert_eq!(exp, 500);
    }

    #[test]
    fn late_spike_is_discarded_by_small_buffers_only() {
        let mut s = Stream::new(key(), Timestamp::from_nanos(0), None, 5_000_000_000, true);
        for i in 0..100u16 {
            let late = if i == 50 { 120_000_000 } else { 0 };
            s.on_packet(
                Timestamp::from_nanos(i64::from(i) * 20_000_000 + late),
                &hdr(i, u32::from(i) * 160),
            );
        }
        s.finish();
        let d: Vec<u64> = (0..BUFFERS)
            .map(|k| s.playout.intervals().map(|i| i.buffers[k].discarded).sum())
            .collect();
        assert_eq!(d[JB_FIXED_50], 1);
        assert_eq!(d[JB_FIXED_200], 0);
        assert_eq!(d[JB_ADAPTIVE], 1);
    }
}
