//! Mutation fuzzing of the whole per-packet path: real frames (SIP, SDP, RTP, RTCP from
//! the demo and the shared captures) with seeded byte flips, truncations and timestamp
//! jumps, fed through `Engine::on_frame` and finished. Nothing may panic (tests build
//! in debug, so arithmetic overflow panics too), and the counters must add up.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vqprobe::capture::OfflineCapture;
use vqprobe::engine::engine::{Engine, EngineConfig};
use vqprobe::engine::record::EndedReason;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A capture's link type and its frames with their timestamps.
type Frames = (vqprobe::wire::decode::LinkType, Vec<(i64, Vec<u8>)>);

fn frames(path: &Path) -> Option<Frames> {
    let mut cap = OfflineCapture::open(path).ok()?;
    let link = cap.link_type();
    let mut out = Vec::new();
    while let Ok(Some(f)) = cap.next_frame() {
        out.push((f.ts_ns, f.data.to_vec()));
    }
    Some((link, out))
}

fn captures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut v = vec![root.join("demo/sip-rtp-g711.pcap")];
    for name in [
        "sipnab__Asterisk_ZFONE_XLITE.pcap",
        "sipnab__rtp-protocol.pcap",
        "rtp-pcap__sip-rtp-g726.pcap",
        "nDPI__stun_google_meet.pcapng",
        "nDPI__false_positives.pcapng",
        "asterisk-testsuite__ast-2017-012_crash-27382.pcap",
    ] {
        let found = [
            root.join("tests/data/pcaps").join(name),
            root.join("../shared/pcaps/real").join(name),
        ]
        .into_iter()
        .find(|p| p.exists());
        v.extend(found);
    }
    v
}

fn engine() -> Engine {
    let numbers = Arc::new(vqprobe::engine::numbers::Numbering::builtin());
    Engine::new(EngineConfig::new(
        vqprobe::engine::calls::CallConfig::with_numbering(numbers),
    ))
}

#[test]
fn mutated_real_traffic_never_panics() {
    let mut rng = XorShift(0x5eed_f00d_dead_beef);
    let mut fed = 0u64;
    for path in captures() {
        let Some((link, clean)) = frames(&path) else {
            panic!("cannot read {}", path.display());
        };
        for round in 0..6 {
            let mut e = engine();
            let mut t_jump = 0i64;
            for (ts, frame) in &clean {
                let mut f = frame.clone();
                // A few byte flips, more in later rounds.
                let flips = rng.below(round * 2 + 1);
                for _ in 0..flips {
                    let i = rng.below(f.len());
                    if let Some(b) = f.get_mut(i) {
                        *b ^= (rng.next() >> 8) as u8 | 1;
                    }
                }
                // Sometimes cut the frame short.
                if rng.below(10) == 0 {
                    let keep = rng.below(f.len() + 1);
                    f.truncate(keep);
                }
                // Sometimes make time jump backwards or far forwards.
                if rng.below(200) == 0 {
                    t_jump = match rng.below(3) {
                        0 => -3_600_000_000_000,
                        1 => 86_400_000_000_000,
                        _ => 0,
                    };
                }
                e.on_frame(
                    vqprobe::engine::time::Timestamp::from_nanos(ts.saturating_add(t_jump)),
                    link,
                    &f,
                );
                fed += 1;
            }
            let recs = e.finish(EndedReason::EndOfCapture);
            let c = e.counters();
            assert_eq!(c.packets, clean.len() as u64, "{}", path.display());
            assert_eq!(c.calls, recs.len() as u64, "{}", path.display());
            for r in &recs {
                // Figures stay in range whatever the input.
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
    }
    assert!(fed > 1_000, "fed only {fed} frames");
}

#[test]
fn random_frames_on_every_link_type_never_panic() {
    use vqprobe::wire::decode::LinkType;
    let mut rng = XorShift(0x0123_4567_89ab_cdef);
    let mut e = engine();
    for i in 0..20_000i64 {
        let len = rng.below(300);
        let mut f: Vec<u8> = (0..len).map(|_| (rng.next() >> 24) as u8).collect();
        // Bias towards plausible headers so deeper layers are reached.
        if let Some(b) = f.get_mut(0) {
            if i % 3 == 0 {
                *b = 0x45;
            }
        }
        let link = [
            LinkType::Ethernet,
            LinkType::LinuxSll,
            LinkType::LinuxSll2,
            LinkType::RawIp,
            LinkType::Null,
        ][rng.below(5)];
        e.on_frame(
            vqprobe::engine::time::Timestamp::from_nanos(i * 1_000_000),
            link,
            &f,
        );
    }
    let _ = e.finish(EndedReason::EndOfCapture);
    assert_eq!(e.counters().packets, 20_000);
}
