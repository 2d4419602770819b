//! Per-packet cost of the offline/live path, in packets per second.
//!
//! The input is built in memory: 20,000 Ethernet/IPv4/UDP/RTP frames of 50 concurrent
//! PCMU streams (20 ms, 160-byte payload), arrival jitter of up to ±2 ms and 0.5 % loss,
//! in arrival order. Two benchmarks:
//!
//! - `decode`: `vqprobe::wire::decode::decode` alone (L2–L4 down to the UDP payload);
//! - `engine_on_frame`: `Engine::on_frame` over the whole set into a fresh engine
//!   (decode, flow classification, RTP parse, per-stream RFC 3550 / tshark metrics,
//!   jitter-buffer simulation, call assembly and the once-a-second tick).
//!
//! Run: `cargo bench --bench per_packet -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use std::sync::Arc;
use vqprobe::engine::engine::{Engine, EngineConfig};
use vqprobe::wire::decode::{self, LinkType};

const FRAMES: usize = 20_000;
const STREAMS: u32 = 50;
const PTIME_NS: i64 = 20_000_000;
const PAYLOAD_LEN: usize = 160;
/// Loss probability, in parts per million.
const LOSS_PPM: u64 = 5_000;
/// Arrival jitter: uniform in ±JITTER_NS.
const JITTER_NS: i64 = 2_000_000;
/// 2023-11-14T22:13:20Z, so timestamps look like a real capture's.
const T0_NS: i64 = 1_700_000_000_000_000_000;

/// A small deterministic generator (SplitMix64): the same frames on every run.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[-span, span]`.
    fn symmetric(&mut self, span: i64) -> i64 {
        let width = u64::try_from(2 * span + 1).expect("positive span");
        i64::try_from(self.next() % width).expect("fits i64") - span
    }
}

/// RFC 1071 checksum of an IPv4 header.
fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// One Ethernet II / IPv4 / UDP / RTP (PCMU) frame.
fn frame(src: ([u8; 4], u16), dst: ([u8; 4], u16), seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
    let rtp_len = 12 + PAYLOAD_LEN;
    let udp_len = 8 + rtp_len;
    let ip_len = 20 + udp_len;
    let mut f = Vec::with_capacity(14 + ip_len);
    // Ethernet: dst MAC, src MAC, EtherType IPv4.
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00]);
    // IPv4: version/IHL, DSCP EF, total length, id, DF, TTL 64, UDP, checksum, addresses.
    let ip_start = f.len();
    f.extend_from_slice(&[0x45, 0xB8]);
    f.extend_from_slice(&u16::try_from(ip_len).expect("frame fits").to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&[0x40, 0x00, 64, 17, 0, 0]);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&dst.0);
    let csum = ipv4_checksum(&f[ip_start..ip_start + 20]);
    f[ip_start + 10..ip_start + 12].copy_from_slice(&csum.to_be_bytes());
    // UDP, checksum 0 (none, allowed over IPv4).
    f.extend_from_slice(&src.1.to_be_bytes());
    f.extend_from_slice(&dst.1.to_be_bytes());
    f.extend_from_slice(&u16::try_from(udp_len).expect("frame fits").to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    // RTP: V=2, no padding/extension/CSRC, PT 0 (PCMU).
    f.extend_from_slice(&[0x80, 0x00]);
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&ts.to_be_bytes());
    f.extend_from_slice(&ssrc.to_be_bytes());
    // µ-law silence with a little variation.
    f.extend((0..PAYLOAD_LEN).map(|i| 0xFF ^ (i as u8 & 0x03)));
    f
}

/// `FRAMES` frames of `STREAMS` streams, sorted by arrival time: (ts_ns, frame).
fn build_frames() -> Vec<(i64, Vec<u8>)> {
    let mut rng = SplitMix(0x5EED_5EED_5EED);
    let mut out: Vec<(i64, Vec<u8>)> = Vec::with_capacity(FRAMES + 64);
    let mut tick: u32 = 0;
    'fill: loop {
        for s in 0..STREAMS {
            let sent_ns = T0_NS + i64::from(tick) * PTIME_NS + i64::from(s) * 97_000;
            // Sequence numbers start near the wrap so that it is exercised too.
            let seq = (65_000u32 + tick) as u16;
            let ts = 1_000_000u32.wrapping_add(tick * 160);
            let lost = rng.next() % 1_000_000 < LOSS_PPM;
            let arrival = sent_ns + rng.symmetric(JITTER_NS);
            if lost {
                continue;
            }
            let port = u16::try_from(20_000 + 2 * s).expect("port fits");
            let octet = u8::try_from(s).expect("stream index fits");
            let f = frame(
                ([10, 1, 0, octet + 1], port),
                ([10, 2, 0, 1], port + 10_000),
                seq,
                ts,
                0x5EED_0000 | s,
            );
            out.push((arrival, f));
            if out.len() == FRAMES {
                break 'fill;
            }
        }
        tick += 1;
    }
    out.sort_by_key(|(t, _)| *t);
    out
}

fn per_packet(c: &mut Criterion) {
    let frames = build_frames();
    let n = u64::try_from(frames.len()).expect("frame count fits u64");

    // The frames must decode to UDP segments, or the benchmark measures the error path.
    for (_, f) in &frames {
        match decode::decode(LinkType::Ethernet, f) {
            Ok(decode::Decoded::Segment(_)) => {}
            other => panic!("bench frame does not decode to a segment: {other:?}"),
        }
    }
    let numbers = Arc::new(vqprobe::engine::numbers::Numbering::builtin());
    let cfg = EngineConfig::new(vqprobe::engine::calls::CallConfig::with_numbering(numbers));
    // ... and the engine must take them for RTP.
    {
        let mut engine = Engine::new(cfg.clone());
        for (t, f) in &frames {
            engine.on_frame(
                vqprobe::engine::time::Timestamp::from_nanos(*t),
                LinkType::Ethernet,
                f,
            );
        }
        assert_eq!(
            engine.active_streams(),
            STREAMS as usize,
            "the engine should hold one stream per generated stream"
        );
        // ... and every frame must reach the RTP path, the first of each flow included.
        assert_eq!(
            engine.counters().rtp_packets,
            n,
            "every generated frame should be counted as RTP"
        );
    }

    let mut group = c.benchmark_group("per_packet");
    group.throughput(Throughput::Elements(n));
    group.bench_function("decode", |b| {
        b.iter(|| {
            for (_, f) in &frames {
                let _ = black_box(decode::decode(LinkType::Ethernet, black_box(f)));
            }
        });
    });
    group.bench_function("engine_on_frame", |b| {
        b.iter_batched(
            || Engine::new(cfg.clone()),
            |mut engine| {
                for (t, f) in &frames {
                    engine.on_frame(
                        vqprobe::engine::time::Timestamp::from_nanos(*t),
                        LinkType::Ethernet,
                        black_box(f),
                    );
                }
                engine
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, per_packet);
criterion_main!(benches);
