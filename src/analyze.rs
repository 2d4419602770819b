//! Offline analysis: a whole capture file through the engine, into one document.

use std::path::Path;

use serde::Serialize;

use crate::batch::RawBatch;
use crate::capture::{CaptureError, OfflineCapture};
use vqprobe_engine::calls::CallConfig;
use vqprobe_engine::engine::{BatchFrame, Counters, Engine, EngineConfig};
use vqprobe_engine::record::{self, CallRecord, EndedReason};
use vqprobe_engine::time::Timestamp;
use vqprobe_wire::decode;

/// Frames per batch between the reader and the engine.
const BATCH: usize = 1024;

/// The `capture` object of `vqprobe analyze --format json`.
#[derive(Debug, Clone, Serialize)]
pub struct CaptureSummary {
    /// File analysed.
    pub file: String,
    /// pcap link-type number.
    pub link_type: i32,
    /// First frame, RFC 3339 UTC.
    pub first_packet_at: Option<String>,
    /// Last frame, RFC 3339 UTC.
    pub last_packet_at: Option<String>,
    /// Span of the capture, s.
    pub duration_seconds: f64,
    /// Whether reading stopped early on a damaged or cut file.
    pub truncated: bool,
    /// What stopped it.
    pub error: Option<String>,
    /// Engine counters.
    #[serde(flatten)]
    pub counters: Counters,
}

/// The whole document.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    /// Capture counters.
    pub capture: CaptureSummary,
    /// Every call, ordered by start.
    pub calls: Vec<CallRecord>,
}

/// An emptied vector of frames borrowing nothing, keeping its allocation: a batch's
/// frames borrow the batch's bytes, so the vector cannot simply outlive it, but its
/// memory can be handed to the next batch (collecting an empty vector in place reuses
/// the allocation), and the steady state allocates nothing per batch.
// `filter_map` to nothing is the point: it changes the element type's lifetime.
#[allow(clippy::unnecessary_filter_map)]
fn recycle<'b>(mut v: Vec<BatchFrame<'_>>) -> Vec<BatchFrame<'b>> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

/// Analyses a capture. A file that cannot be opened is an `Err`; a file damaged
/// part-way still yields everything read before the damage, with `truncated` set and
/// the error returned beside it so the caller can exit non-zero.
pub fn analyze_file(
    path: &Path,
    calls: CallConfig,
) -> Result<(Analysis, Option<CaptureError>), CaptureError> {
    let mut cap = OfflineCapture::open(path)?;
    let link = cap.link_type();
    let dlt = cap.dlt();
    let mut engine = Engine::new(EngineConfig::new(calls));
    // Two stages on two threads: libpcap reading alone (its per-packet cost is the
    // larger half), decoding and the engine on the caller's thread; batches go round
    // between them so steady state allocates nothing.
    let (full_tx, full_rx) = crossbeam_channel::bounded::<RawBatch>(4);
    let (empty_tx, empty_rx) = crossbeam_channel::bounded::<RawBatch>(8);
    let damage = std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let mut batch = RawBatch::with_capacity(BATCH);
            loop {
                match cap.next_frame() {
                    Ok(Some(f)) => {
                        batch.push(f.ts_ns, f.data);
                        if batch.len() >= BATCH {
                            let next = empty_rx
                                .try_recv()
                                .unwrap_or_else(|_| RawBatch::with_capacity(BATCH));
                            if full_tx.send(std::mem::replace(&mut batch, next)).is_err() {
                                return None;
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let _ = full_tx.send(batch);
                        return Some(e);
                    }
                }
            }
            let _ = full_tx.send(batch);
            None
        });
        let mut spare: Vec<BatchFrame<'static>> = Vec::with_capacity(BATCH);
        for mut batch in full_rx.iter() {
            let mut frames = recycle(std::mem::take(&mut spare));
            frames.extend(batch.iter().map(|(ts, frame)| BatchFrame {
                at: Timestamp::from_nanos(ts),
                len: frame.len(),
                decoded: decode::decode(link, frame),
                sip: None,
            }));
            engine.on_batch(&frames);
            spare = recycle(frames);
            batch.clear();
            let _ = empty_tx.try_send(batch);
        }
        reader.join().unwrap_or_else(|_| {
            Some(CaptureError::Damaged {
                packets: 0,
                reason: "capture reader thread failed".to_string(),
            })
        })
    });
    let first = engine.first_seen();
    let last = first.map(|_| engine.now());
    let records = engine.finish(EndedReason::EndOfCapture);
    let summary = CaptureSummary {
        file: path.display().to_string(),
        link_type: dlt,
        first_packet_at: first.map(Timestamp::rfc3339),
        last_packet_at: last.map(Timestamp::rfc3339),
        duration_seconds: match (first, last) {
            (Some(a), Some(b)) => record::round6(b.secs_since(a)),
            _ => 0.0,
        },
        truncated: damage.is_some(),
        error: damage.as_ref().map(ToString::to_string),
        counters: engine.counters().clone(),
    };
    Ok((
        Analysis {
            capture: summary,
            calls: records,
        },
        damage,
    ))
}
