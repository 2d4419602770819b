//! Heap allocations per packet, counted by a global allocator that wraps the system one.
//!
//! 1. **The packet path in steady state**: a capture of 200 SIP calls (RTP both ways,
//!    RTCP SR + SDES every 5 s) is read and fed to the engine in batches, as `analyze`
//!    does; allocations are counted over the middle half of the packets, when every call
//!    is established and none has ended (no SIP, no records). This must be 0.
//! 2. **`analyze` end to end, per extra packet**: two captures of the same 200 calls,
//!    one with twice the media; the difference in allocations over the difference in
//!    packets is what longer calls cost in all (reading, decoding, the engine and the
//!    records, whose per-5-second interval entries grow with the call).
//!
//! Run: `cargo bench --bench allocs`

#[path = "../tests/support/capgen.rs"]
mod capgen;
#[path = "../tests/support/loadgen.rs"]
mod loadgen;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use vqprobe::analyze::analyze_file;
use vqprobe::capture::OfflineCapture;
use vqprobe::engine::calls::CallConfig;
use vqprobe::engine::engine::{BatchFrame, Engine, EngineConfig};
use vqprobe::engine::mno::MnoTable;
use vqprobe::engine::time::Timestamp;
use vqprobe::wire::decode;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counters are
// plain atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const CALLS: u32 = 200;

/// Allocations and bytes allocated while analysing a capture of `packets` RTP packets,
/// and the packets read.
fn measure(dir: &std::path::Path, packets: u64) -> (u64, u64, u64) {
    let out = dir.join(format!("load-{packets}.pcap"));
    loadgen::run(&loadgen::Options {
        out: out.clone(),
        calls: CALLS,
        packets,
        seed: 7,
    })
    .expect("generate the capture");
    let calls = CallConfig::with_mno(Arc::new(MnoTable::embedded()));
    let (a0, b0) = (
        ALLOCS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    let (analysis, damage) = analyze_file(&out, calls).expect("analyse");
    let (a1, b1) = (
        ALLOCS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    assert!(damage.is_none(), "generated capture is whole");
    assert_eq!(analysis.calls.len(), CALLS as usize, "every call found");
    (a1 - a0, b1 - b0, analysis.capture.counters.packets)
}

/// Allocations while feeding the middle half of `path`'s packets to an engine, and
/// how many packets that was.
fn steady_state(path: &std::path::Path) -> (u64, u64) {
    let mut cap = OfflineCapture::open(path).expect("open capture");
    let link = cap.link_type();
    let mut raw: Vec<(i64, Vec<u8>)> = Vec::new();
    while let Some(f) = cap.next_frame().expect("read capture") {
        raw.push((f.ts_ns, f.data.to_vec()));
    }
    let calls = CallConfig::with_mno(Arc::new(MnoTable::embedded()));
    let mut engine = Engine::new(EngineConfig::new(calls));
    let (from, to) = (raw.len() / 4, raw.len() * 3 / 4);
    let mut frames: Vec<BatchFrame<'_>> = Vec::with_capacity(256);
    let mut counted = (0, 0);
    for (i, chunk) in raw.chunks(256).enumerate() {
        let start = i * 256;
        let inside = start >= from && start + chunk.len() <= to;
        let before = ALLOCS.load(Ordering::Relaxed);
        frames.clear();
        frames.extend(chunk.iter().map(|(ts, data)| BatchFrame {
            at: Timestamp::from_nanos(*ts),
            len: data.len(),
            decoded: decode::decode(link, data),
            sip: None,
        }));
        engine.on_batch(&frames);
        if inside {
            counted.0 += ALLOCS.load(Ordering::Relaxed) - before;
            counted.1 += chunk.len() as u64;
        }
    }
    assert_eq!(
        engine.active_calls(),
        CALLS as usize,
        "calls open mid-capture"
    );
    counted
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it too (quickly).
    let quick = !std::env::args().any(|a| a == "--bench");
    let base: u64 = if quick { 40_000 } else { 400_000 };
    let dir = tempfile::tempdir().expect("temp dir");
    let (a1, b1, p1) = measure(dir.path(), base);
    let (steady, steady_packets) = steady_state(&dir.path().join(format!("load-{base}.pcap")));
    println!(
        "allocs: packet path, steady state: {steady} allocations in {steady_packets} packets \
         (RTP and RTCP of {CALLS} established calls) = {:.6} per packet",
        steady as f64 / steady_packets.max(1) as f64
    );
    let (a2, b2, p2) = measure(dir.path(), 2 * base);
    let extra = (p2 - p1).max(1) as f64;
    println!("allocs: {CALLS} calls, {p1} packets: {a1} allocations ({b1} bytes)");
    println!("allocs: {CALLS} calls, {p2} packets: {a2} allocations ({b2} bytes)");
    println!(
        "allocs: analyze end to end, per extra packet: {:.4} allocations, {:.1} bytes",
        (a2 as f64 - a1 as f64) / extra,
        (b2 as f64 - b1 as f64) / extra
    );
}
