//! Batches of decoded frames handed from a capture thread to an engine thread.
//!
//! The capture side decodes each frame down to its transport payload and copies only
//! that payload into one arena per batch, so a batch is two allocations however many
//! packets it carries, and the engine side borrows payloads back out of it. SIP the
//! capture side parsed (to route its call) travels with the frame as events, so the
//! engine never parses a message again.

use std::net::SocketAddr;

use vqprobe_engine::engine::BatchFrame;
use vqprobe_engine::signal::SipEvent;
use vqprobe_engine::time::Timestamp;
use vqprobe_wire::decode::{DecodeError, Decoded, Segment, Transport};

/// What one frame decoded to, with its payload as a range of the batch arena.
#[derive(Debug, Clone, Copy)]
enum Item {
    Segment {
        src: SocketAddr,
        dst: SocketAddr,
        transport: Transport,
        start: u32,
        len: u32,
        /// The SIP events parsed from it: a range of the batch's `sip`.
        sip_start: u32,
        sip_len: u32,
    },
    Fragment,
    Ignored,
    Malformed(DecodeError),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    ts_ns: i64,
    frame_len: u32,
    item: Item,
}

/// A batch of decoded frames in capture order.
#[derive(Debug, Default)]
pub struct Batch {
    entries: Vec<Entry>,
    arena: Vec<u8>,
    sip: Vec<Result<SipEvent, ()>>,
}

impl Batch {
    /// An empty batch with room for `frames` frames.
    pub fn with_capacity(frames: usize) -> Self {
        Batch {
            entries: Vec::with_capacity(frames),
            arena: Vec::with_capacity(frames * 256),
            sip: Vec::new(),
        }
    }

    /// Frames in the batch.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Empties the batch, keeping its allocations for reuse.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.arena.clear();
        self.sip.clear();
    }

    /// Appends a frame decoded by the caller (who needed the result to route it), with
    /// the SIP events it parsed from the payload (empty for media).
    pub fn push_decoded(
        &mut self,
        ts_ns: i64,
        frame_len: usize,
        decoded: Result<Decoded<'_>, DecodeError>,
        sip: Vec<Result<SipEvent, ()>>,
    ) {
        let item = match decoded {
            Ok(Decoded::Segment(seg)) => {
                let start = self.arena.len();
                let sip_start = self.sip.len();
                let sip_len = sip.len();
                self.sip.extend(sip);
                // A parsed SIP message's bytes are not needed again.
                let payload = if sip_len > 0 { &[][..] } else { seg.payload };
                self.arena.extend_from_slice(payload);
                Item::Segment {
                    src: seg.src,
                    dst: seg.dst,
                    transport: seg.transport,
                    start: u32::try_from(start).unwrap_or(u32::MAX),
                    len: u32::try_from(payload.len()).unwrap_or(0),
                    sip_start: u32::try_from(sip_start).unwrap_or(u32::MAX),
                    sip_len: u32::try_from(sip_len).unwrap_or(0),
                }
            }
            Ok(Decoded::Fragment) => Item::Fragment,
            Ok(Decoded::Ignored) => Item::Ignored,
            Err(e) => Item::Malformed(e),
        };
        self.entries.push(Entry {
            ts_ns,
            frame_len: u32::try_from(frame_len).unwrap_or(u32::MAX),
            item,
        });
    }

    /// Every frame in order as the engine wants it: time, frame length, what it decoded
    /// to, and the SIP events parsed from it (empty: not SIP).
    pub fn frames(&self) -> Vec<BatchFrame<'_>> {
        let mut out = Vec::with_capacity(self.entries.len());
        self.for_each(|at, len, decoded, sip| {
            out.push(BatchFrame {
                at,
                len,
                decoded,
                sip: Some(sip),
            })
        });
        out
    }

    /// Visits every frame in order as the engine wants it: time, frame length, what it
    /// decoded to, and the SIP events parsed from it (empty: not SIP).
    pub fn for_each<'a>(
        &'a self,
        mut f: impl FnMut(
            Timestamp,
            usize,
            Result<Decoded<'a>, DecodeError>,
            &'a [Result<SipEvent, ()>],
        ),
    ) {
        for e in &self.entries {
            let (decoded, sip) = match e.item {
                Item::Segment {
                    src,
                    dst,
                    transport,
                    start,
                    len,
                    sip_start,
                    sip_len,
                } => {
                    let (s, l) = (start as usize, len as usize);
                    let payload = self.arena.get(s..s + l).unwrap_or_default();
                    let (a, n) = (sip_start as usize, sip_len as usize);
                    let sip = self.sip.get(a..a + n).unwrap_or_default();
                    (
                        Ok(Decoded::Segment(Segment {
                            src,
                            dst,
                            transport,
                            payload,
                        })),
                        sip,
                    )
                }
                Item::Fragment => (Ok(Decoded::Fragment), &[][..]),
                Item::Ignored => (Ok(Decoded::Ignored), &[][..]),
                Item::Malformed(err) => (Err(err), &[][..]),
            };
            f(
                Timestamp::from_nanos(e.ts_ns),
                e.frame_len as usize,
                decoded,
                sip,
            );
        }
    }
}

/// Raw frames copied out of libpcap's buffer, for a reader thread whose only job is
/// reading (offline analysis: libpcap's per-packet cost is the bottleneck there, so
/// decoding happens on the engine's side).
#[derive(Debug, Default)]
pub struct RawBatch {
    frames: Vec<(i64, u32, u32)>,
    arena: Vec<u8>,
}

impl RawBatch {
    /// An empty batch with room for `frames` frames.
    pub fn with_capacity(frames: usize) -> Self {
        RawBatch {
            frames: Vec::with_capacity(frames),
            arena: Vec::with_capacity(frames * 256),
        }
    }

    /// Frames in the batch.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Empties the batch, keeping its allocations.
    pub fn clear(&mut self) {
        self.frames.clear();
        self.arena.clear();
    }

    /// Copies a frame in.
    pub fn push(&mut self, ts_ns: i64, frame: &[u8]) {
        let start = u32::try_from(self.arena.len()).unwrap_or(u32::MAX);
        self.arena.extend_from_slice(frame);
        self.frames
            .push((ts_ns, start, u32::try_from(frame.len()).unwrap_or(0)));
    }

    /// Every frame in order, borrowed from the batch.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &[u8])> + '_ {
        self.frames.iter().map(|&(ts, start, len)| {
            let (s, l) = (start as usize, len as usize);
            (ts, self.arena.get(s..s + l).unwrap_or_default())
        })
    }

    /// Visits every frame in order.
    pub fn for_each(&self, mut f: impl FnMut(i64, &[u8])) {
        for &(ts, start, len) in &self.frames {
            let (s, l) = (start as usize, len as usize);
            f(ts, self.arena.get(s..s + l).unwrap_or_default());
        }
    }
}
