//! Entry points for coverage-guided fuzzing (`fuzz/`, cargo-fuzz) and for the stable
//! `cargo test` that replays the committed corpora (`tests/fuzz_corpus.rs`), so both
//! drive exactly the same code. Each takes arbitrary bytes and must return without
//! panicking, whatever they hold; the few invariants that can be checked cheaply are
//! asserted here so a fuzzer finds their violation as a crash.

use std::sync::Arc;

use vqprobe_engine::calls::CallConfig;
use vqprobe_engine::engine::{Engine, EngineConfig};
use vqprobe_engine::numbers::Numbering;
use vqprobe_engine::record::EndedReason;
use vqprobe_engine::time::Timestamp;
use vqprobe_wire::decode::{self, LinkType};

/// Every link type the decoder knows, picked by the first input byte.
const LINKS: [LinkType; 5] = [
    LinkType::Ethernet,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::RawIp,
    LinkType::Null,
];

fn link_of(b: u8) -> LinkType {
    LINKS[usize::from(b) % LINKS.len()]
}

/// The names of the targets, as the `fuzz/` crate and the corpus directories call them.
pub const TARGETS: [&str; 7] = [
    "decode",
    "rtp",
    "rtcp",
    "sip",
    "sdp",
    "capture_file",
    "engine",
];

/// Runs target `name` on `data`; false for an unknown name.
pub fn run(name: &str, data: &[u8]) -> bool {
    match name {
        "decode" => decode_frame(data),
        "rtp" => rtp(data),
        "rtcp" => rtcp(data),
        "sip" => sip(data),
        "sdp" => sdp(data),
        "capture_file" => capture_file(data),
        "engine" => engine(data),
        _ => return false,
    }
    true
}

/// Link layer, IP (v4/v6, fragments), UDP/TCP and tunnels: first byte picks the link.
pub fn decode_frame(data: &[u8]) {
    let Some((&l, frame)) = data.split_first() else {
        return;
    };
    if let Ok(decode::Decoded::Segment(seg)) = decode::decode(link_of(l), frame) {
        assert!(seg.payload.len() <= frame.len(), "payload inside the frame");
    }
}

/// RTP fixed header, CSRCs, extension and padding.
pub fn rtp(data: &[u8]) {
    let _ = vqprobe_wire::rtp::parse(data);
}

/// RTCP compound packets: SR, RR, SDES, BYE, APP, XR (all block types).
pub fn rtcp(data: &[u8]) {
    let _ = vqprobe_wire::rtcp::parse_compound(data);
}

/// SIP over UDP (one message) and over TCP (a stream of them).
pub fn sip(data: &[u8]) {
    let _ = vqprobe_wire::sip::parse(data);
    let (msgs, used) = vqprobe_wire::sip::parse_stream(data);
    assert!(used <= data.len(), "consumed no more than given");
    drop(msgs);
}

/// SDP bodies.
pub fn sdp(data: &[u8]) {
    let _ = vqprobe_wire::sdp::parse(data);
}

/// A whole capture file (pcap or pcapng, through libpcap) read and fed to the engine,
/// as `analyze` does.
pub fn capture_file(data: &[u8]) {
    let Ok(mut file) = tempfile::NamedTempFile::new() else {
        return;
    };
    if std::io::Write::write_all(&mut file, data).is_err() {
        return;
    }
    let Ok(mut cap) = crate::capture::OfflineCapture::open(file.path()) else {
        return;
    };
    let link = cap.link_type();
    let mut e = new_engine();
    // Bounded: a file holds at most as many records as it has bytes / 16.
    while let Ok(Some(f)) = cap.next_frame() {
        e.on_frame(Timestamp::from_nanos(f.ts_ns), link, f.data);
    }
    finish(&mut e);
}

/// The engine's per-packet entry with arbitrary times: the input is a sequence of
/// records `[link: u8][time step: i32 LE, in ms, may be negative][len: u8][frame]`,
/// so time jumps forward and backward by up to 24 days a record, and a record whose
/// step is `i32::MIN` jumps by a century.
pub fn engine(data: &[u8]) {
    let mut e = new_engine();
    let mut t: i64 = 1_700_000_000_000_000_000;
    let mut rest = data;
    while rest.len() >= 6 {
        let link = link_of(rest[0]);
        let step = i32::from_le_bytes([rest[1], rest[2], rest[3], rest[4]]);
        let len = usize::from(rest[5]).min(rest.len() - 6);
        let frame = &rest[6..6 + len];
        rest = &rest[6 + len..];
        let jump = if step == i32::MIN {
            100 * 365 * 86_400 * 1_000_000_000
        } else {
            i64::from(step) * 1_000_000
        };
        t = t.saturating_add(jump).max(0);
        e.on_frame(Timestamp::from_nanos(t), link, frame);
    }
    finish(&mut e);
}

fn new_engine() -> Engine {
    // The built-in numbering data is loaded once, not per input.
    static NUMBERING: std::sync::OnceLock<Arc<Numbering>> = std::sync::OnceLock::new();
    let n = NUMBERING.get_or_init(|| Arc::new(Numbering::builtin()));
    Engine::new(EngineConfig::new(CallConfig::with_numbering(Arc::clone(n))))
}

fn finish(e: &mut Engine) {
    let records = e.finish(EndedReason::EndOfCapture);
    assert_eq!(
        e.counters().calls,
        records.len() as u64,
        "every call a record"
    );
    for r in &records {
        if let Some(m) = r.call.quality_mos {
            assert!((1.0..=4.5).contains(&m), "MOS {m} out of range");
        }
        for s in &r.streams {
            assert!(
                s.lost <= s.expected,
                "lost {} > expected {}",
                s.lost,
                s.expected
            );
        }
    }
}
