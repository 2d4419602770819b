//! Test-only RTP/RTCP peers and an impairing relay for `tests/daemon_impairment.rs`.
//!
//! std only. The relay and peer B run inside a network namespace (the test re-executes
//! its own binary there, see `relay_child` in the test); peer A runs in the test process.
//!
//! Topology (addresses from [`Net`]):
//!
//! ```text
//!  peer A (root ns)                 veth             relay + peer B (namespace)
//!  a:40000 RTP  ───────────────────────────────────▶ r:50000 ─(as is)──▶ B 127.0.0.1:42000
//!  a:40000 RTP  ◀── drop 2 % + delay 0–40 ms ─────── r:50000 ◀─────────── B (via 127.0.0.1:51000)
//!  a:40001 RTCP ── A's SR: delay 25–45 ms ─────────▶ r:50001 ────────────▶ B 127.0.0.1:42001
//!  a:40001 RTCP ◀── B's RR: delay 30–60 ms ───────── r:50001 ◀──────────── B (via 127.0.0.1:51001)
//! ```
//!
//! Every impairment comes from a seeded generator and everything the relay did (which
//! sequence numbers it dropped, when it really sent each packet, each RTCP hop's delay)
//! is written to `truth.json`, so the test computes its expectations from what happened,
//! not from what was planned. Times are `CLOCK_REALTIME` ns, the clock libpcap stamps
//! packets with, and a send time is the midpoint of the timestamps taken just before
//! and just after `send_to` (the probe sees the packet during that call).

#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub const SSRC_A: u32 = 0xA1A1_A1A1;
pub const SSRC_B: u32 = 0xB2B2_B2B2;
pub const PORT_A_RTP: u16 = 40000;
pub const PORT_A_RTCP: u16 = 40001;
pub const PORT_RELAY_RTP: u16 = 50000;
pub const PORT_RELAY_RTCP: u16 = 50001;
const PORT_RELAY_IN_RTP: u16 = 51000;
const PORT_RELAY_IN_RTCP: u16 = 51001;
const PORT_B_RTP: u16 = 42000;
const PORT_B_RTCP: u16 = 42001;

/// PCMU: 20 ms frames of 160 bytes at 8 kHz.
pub const FRAME: Duration = Duration::from_millis(20);
pub const PAYLOAD_LEN: usize = 160;
pub const TS_STEP: u32 = 160;
pub const CLOCK_HZ: f64 = 8000.0;

/// A's first RTP sequence number and timestamp.
pub const A_SEQ0: u16 = 1000;
pub const A_TS0: u32 = 12_345;
/// B's are chosen so that both the sequence number and the timestamp wrap mid-call.
pub const B_SEQ0: u16 = 64_800;
pub const B_TS0: u32 = 0xFFFF_FFFF - 80_000;

/// A sends an SR 1 s after its stream starts and every 2.5 s after; B 2.25 s after its
/// stream starts and every 2.5 s after. Neither sends one in its last 0.5 s, so every
/// SR is answered while both streams are still open.
pub const SR_FIRST: Duration = Duration::from_millis(1000);
pub const B_SR_FIRST: Duration = Duration::from_millis(2250);
pub const SR_PERIOD: Duration = Duration::from_millis(2500);
pub const SR_QUIET_END: Duration = Duration::from_millis(500);
/// How long peers and relay keep running after the last RTP packet.
pub const TAIL: Duration = Duration::from_millis(1500);

/// Relay delays (ms, uniform, seeded).
pub const RTP_DELAY_MS: (u64, u64) = (0, 40);
pub const SR_FWD_DELAY_MS: (u64, u64) = (25, 45);
pub const RR_RET_DELAY_MS: (u64, u64) = (30, 60);
pub const OTHER_RTCP_DELAY_MS: (u64, u64) = (0, 40);
/// How long B holds an SR before answering with an RR (its DLSR), ms.
pub const B_HOLD_MS: (u64, u64) = (10, 40);

/// The addresses of one test's veth pair.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Net {
    /// Peer A, in the root namespace (the probed host).
    pub a: Ipv4Addr,
    /// The relay, inside the namespace.
    pub relay: Ipv4Addr,
}

impl Net {
    pub fn a_rtp(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.a, PORT_A_RTP))
    }
    pub fn a_rtcp(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.a, PORT_A_RTCP))
    }
    pub fn relay_rtp(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.relay, PORT_RELAY_RTP))
    }
    pub fn relay_rtcp(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.relay, PORT_RELAY_RTCP))
    }
}

fn lo(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

// ---------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------

/// splitmix64: tiny, seedable, good enough for test impairments.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// Uniform duration in `[lo_ms, hi_ms]` at µs resolution, in ns.
    pub fn delay_ns(&mut self, (lo_ms, hi_ms): (u64, u64)) -> i64 {
        let us = lo_ms * 1000 + self.below((hi_ms - lo_ms) * 1000 + 1);
        (us * 1000) as i64
    }
}

/// Wall clock in ns since the Unix epoch (the clock pcap timestamps use).
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Sends; returns the midpoint of the wall-clock times taken just before and after the
/// call, and their distance (the packet crossed the veth, and was stamped by libpcap,
/// somewhere in between).
fn send_timed(sock: &UdpSocket, data: &[u8], to: SocketAddr) -> std::io::Result<(i64, i64)> {
    let t1 = now_ns();
    sock.send_to(data, to)?;
    let t2 = now_ns();
    Ok((t1 + (t2 - t1) / 2, t2 - t1))
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

/// 64-bit NTP timestamp of a wall-clock time.
pub fn ntp_of(ns: i64) -> u64 {
    let secs = (ns / 1_000_000_000) as u64 + 2_208_988_800;
    let frac = (((ns % 1_000_000_000) as u64) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// The middle 32 bits of an NTP timestamp (what LSR carries).
pub fn mid32(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// A holding time in DLSR units (1/65536 s), truncated.
pub fn dlsr_units(hold_ns: i64) -> u32 {
    ((hold_ns.max(0) as u128 * 65_536) / 1_000_000_000) as u32
}

/// DLSR units back to ns.
pub fn dlsr_ns(dlsr: u32) -> f64 {
    f64::from(dlsr) * 1e9 / 65_536.0
}

// ---------------------------------------------------------------------------------
// RTP and RTCP wire format (RFC 3550 §5.1, §6.4)
// ---------------------------------------------------------------------------------

pub fn rtp_packet(seq: u16, ts: u32, ssrc: u32, marker: bool) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + PAYLOAD_LEN);
    p.push(0x80);
    p.push(if marker { 0x80 } else { 0x00 }); // PT 0 = PCMU
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.resize(12 + PAYLOAD_LEN, 0xFF);
    p
}

/// `(seq, ts, ssrc)` of an RTP packet.
pub fn parse_rtp(p: &[u8]) -> Option<(u16, u32, u32)> {
    if p.len() < 12 || p[0] >> 6 != 2 || (200..=204).contains(&p[1]) {
        return None;
    }
    Some((
        u16::from_be_bytes([p[2], p[3]]),
        u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
        u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
    ))
}

/// One RTCP report block.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ReportBlock {
    pub ssrc: u32,
    /// Fraction lost, in 1/256.
    pub fraction: u8,
    /// Cumulative lost (24-bit signed on the wire).
    pub cumulative: i32,
    pub ext_high: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    pub lsr: u32,
    pub dlsr: u32,
}

impl ReportBlock {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        let cum = (self.cumulative.clamp(-0x80_0000, 0x7F_FFFF) as u32) & 0x00FF_FFFF;
        out.extend_from_slice(&((u32::from(self.fraction) << 24) | cum).to_be_bytes());
        out.extend_from_slice(&self.ext_high.to_be_bytes());
        out.extend_from_slice(&self.jitter.to_be_bytes());
        out.extend_from_slice(&self.lsr.to_be_bytes());
        out.extend_from_slice(&self.dlsr.to_be_bytes());
    }

    fn read(b: &[u8]) -> Option<ReportBlock> {
        let w = |i: usize| -> Option<u32> {
            Some(u32::from_be_bytes(b.get(i..i + 4)?.try_into().ok()?))
        };
        let second = w(4)?;
        let cum24 = second & 0x00FF_FFFF;
        let cumulative = ((cum24 << 8) as i32) >> 8; // sign-extend 24 bits
        Some(ReportBlock {
            ssrc: w(0)?,
            fraction: (second >> 24) as u8,
            cumulative,
            ext_high: w(8)?,
            jitter: w(12)?,
            lsr: w(16)?,
            dlsr: w(20)?,
        })
    }
}

fn sdes_cname(ssrc: u32, cname: &str, out: &mut Vec<u8>) {
    let mut chunk = Vec::new();
    chunk.extend_from_slice(&ssrc.to_be_bytes());
    chunk.push(1); // CNAME
    chunk.push(cname.len() as u8);
    chunk.extend_from_slice(cname.as_bytes());
    chunk.push(0); // end of items
    while chunk.len() % 4 != 0 {
        chunk.push(0);
    }
    let words = (4 + chunk.len()) / 4 - 1;
    out.push(0x81); // V=2, SC=1
    out.push(202);
    out.extend_from_slice(&(words as u16).to_be_bytes());
    out.extend_from_slice(&chunk);
}

/// A compound SR (no report blocks) + SDES CNAME.
pub fn sender_report(ssrc: u32, ntp: u64, rtp_ts: u32, packets: u32, octets: u32) -> Vec<u8> {
    let mut p = vec![0x80, 200, 0, 6];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&ntp.to_be_bytes());
    p.extend_from_slice(&rtp_ts.to_be_bytes());
    p.extend_from_slice(&packets.to_be_bytes());
    p.extend_from_slice(&octets.to_be_bytes());
    sdes_cname(ssrc, &format!("peer-{ssrc:08x}@vqprobe.test"), &mut p);
    p
}

/// A compound RR with one report block + SDES CNAME.
pub fn receiver_report(ssrc: u32, block: &ReportBlock) -> Vec<u8> {
    let mut p = vec![0x81, 201, 0, 7];
    p.extend_from_slice(&ssrc.to_be_bytes());
    block.write(&mut p);
    sdes_cname(ssrc, &format!("peer-{ssrc:08x}@vqprobe.test"), &mut p);
    p
}

/// The first packet of an RTCP compound, as far as the peers care.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rtcp {
    Sr {
        ssrc: u32,
        ntp_mid: u32,
    },
    Rr {
        ssrc: u32,
        block: Option<ReportBlock>,
    },
}

pub fn parse_rtcp(p: &[u8]) -> Option<Rtcp> {
    if p.len() < 8 || p[0] >> 6 != 2 {
        return None;
    }
    let ssrc = u32::from_be_bytes(p[4..8].try_into().ok()?);
    match p[1] {
        200 if p.len() >= 28 => {
            let ntp = u64::from_be_bytes(p[8..16].try_into().ok()?);
            Some(Rtcp::Sr {
                ssrc,
                ntp_mid: mid32(ntp),
            })
        }
        201 => {
            let block = if p[0] & 0x1F > 0 {
                ReportBlock::read(p.get(8..32)?)
            } else {
                None
            };
            Some(Rtcp::Rr { ssrc, block })
        }
        _ => None,
    }
}

/// A receiver's view of one incoming stream (RFC 3550 A.1, A.3, A.8), to fill in the
/// report blocks the peers send honestly.
#[derive(Debug, Clone, Default)]
pub struct RecvStats {
    started: bool,
    base_ext: u32,
    max_seq: u16,
    cycles: u32,
    pub received: u32,
    expected_prior: u32,
    received_prior: u32,
    transit: f64,
    jitter: f64,
}

impl RecvStats {
    pub fn on_packet(&mut self, seq: u16, ts: u32, arrival_ns: i64) {
        let arrival_units = arrival_ns as f64 / 1e9 * CLOCK_HZ;
        let transit = arrival_units - f64::from(ts);
        if !self.started {
            self.started = true;
            self.base_ext = u32::from(seq);
            self.max_seq = seq;
            self.transit = transit;
        } else {
            let udelta = seq.wrapping_sub(self.max_seq);
            if udelta < 3000 {
                if seq < self.max_seq {
                    self.cycles += 65_536;
                }
                self.max_seq = seq;
            }
            let mut d = transit - self.transit;
            d -= 4_294_967_296.0 * (d / 4_294_967_296.0).round();
            self.transit = transit;
            self.jitter += (d.abs() - self.jitter) / 16.0;
        }
        self.received += 1;
    }

    /// The block about `ssrc` to put in the next report (updates the interval state).
    pub fn block(&mut self, ssrc: u32, lsr: u32, dlsr: u32) -> ReportBlock {
        let ext_high = self.cycles + u32::from(self.max_seq);
        let expected = if self.started {
            ext_high - self.base_ext + 1
        } else {
            0
        };
        let cumulative = expected as i64 - i64::from(self.received);
        let expected_interval = expected - self.expected_prior;
        self.expected_prior = expected;
        let received_interval = self.received - self.received_prior;
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        ReportBlock {
            ssrc,
            fraction,
            cumulative: cumulative as i32,
            ext_high,
            jitter: self.jitter as u32,
            lsr,
            dlsr,
        }
    }
}

// ---------------------------------------------------------------------------------
// The recorded truth
// ---------------------------------------------------------------------------------

/// One B→A RTP packet the relay forwarded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Forwarded {
    /// Index in B's stream (0-based).
    pub index: usize,
    pub seq: u16,
    pub ts: u32,
    /// When the relay received it from B.
    pub recv_ns: i64,
    pub planned_delay_ns: i64,
    /// When the relay sent it to A (the probe sees it then).
    pub sent_ns: i64,
    /// Duration of that `send_to` call: `sent_ns` is known to ± half of it.
    pub send_call_ns: i64,
}

/// One RTCP compound that crossed the relay.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RtcpHop {
    /// `sr_a` (A's SR, to B), `rr_b` (B's RR, to A), `sr_b` (to A), `rr_a` (to B).
    pub kind: String,
    /// NTP middle 32 bits for an SR, LSR for an RR.
    pub key: u32,
    pub recv_ns: i64,
    pub planned_delay_ns: i64,
    /// 0 when never sent.
    pub sent_ns: i64,
    /// Duration of the `send_to` call.
    pub send_call_ns: i64,
    /// The report block of an RR.
    pub block: Option<ReportBlock>,
}

/// Everything the relay (and B) did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Truth {
    pub seed: u64,
    pub packets: usize,
    pub b_seq0: u16,
    pub b_ts0: u32,
    /// B's stream: indices the plan drops, and their sequence numbers.
    pub dropped_index: Vec<usize>,
    pub dropped_seqs: Vec<u16>,
    /// Sequence numbers the relay really dropped (must equal `dropped_seqs`).
    pub dropped_seen: Vec<u16>,
    /// B→A RTP packets in the order the relay sent them.
    pub forwarded: Vec<Forwarded>,
    /// RTCP hops in the order the relay received them.
    pub rtcp: Vec<RtcpHop>,
    /// RTP packets B sent and A→B RTP packets B received.
    pub b_sent: u64,
    pub b_received: u64,
    /// A→B RTP packets the relay forwarded.
    pub a_forwarded: u64,
    /// Longest gap between the timestamps around a relay `send_to` (ns).
    pub max_send_call_ns: i64,
    /// Problems the child noticed (empty when all went to plan).
    pub errors: Vec<String>,
}

/// The seeded impairment plan for B's stream: which indices to drop (2 %, with one
/// burst of 3 and otherwise isolated losses) and the delay of each index (0–40 ms,
/// µs resolution; index 0 is not delayed so it is also the first packet A sees).
/// The first and last 5 packets are never dropped.
pub fn plan(seed: u64, n: usize) -> (BTreeSet<usize>, Vec<i64>) {
    assert!(n >= 200, "the plan needs at least 200 packets");
    let mut rng = Rng::new(seed);
    let n_drop = (n * 2).div_ceil(100).max(5);
    let mut drops = BTreeSet::new();
    let burst = 100 + rng.below((n - 200) as u64) as usize;
    drops.extend([burst, burst + 1, burst + 2]);
    let mut guard = 0;
    while drops.len() < n_drop && guard < 100_000 {
        guard += 1;
        let k = 5 + rng.below((n - 10) as u64) as usize;
        if (k - 1..=k + 1).any(|j| drops.contains(&j)) {
            continue;
        }
        drops.insert(k);
    }
    let delays = (0..n)
        .map(|k| {
            if k == 0 {
                0
            } else {
                rng.delay_ns(RTP_DELAY_MS)
            }
        })
        .collect();
    (drops, delays)
}

// ---------------------------------------------------------------------------------
// The relay with peer B (runs inside the namespace)
// ---------------------------------------------------------------------------------

/// What the relay child needs.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub seed: u64,
    pub packets: usize,
    pub net: Net,
    /// Where `ready` and `truth.json` go.
    pub dir: PathBuf,
    /// Hard limit on the child's life.
    pub deadline: Duration,
}

enum Hook {
    Rtp(Forwarded),
    Rtcp(usize),
    Plain,
}

struct Item {
    sock: Arc<UdpSocket>,
    to: SocketAddr,
    data: Vec<u8>,
    hook: Hook,
}

#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    items: HashMap<u64, Item>,
    next: u64,
}

struct Scheduler {
    q: Mutex<Queue>,
    cv: Condvar,
}

impl Scheduler {
    fn push(&self, due: Instant, item: Item) {
        let mut q = self.q.lock().expect("queue");
        let id = q.next;
        q.next += 1;
        q.heap.push(Reverse((due, id)));
        q.items.insert(id, item);
        self.cv.notify_one();
    }

    /// Sends each item when due until `stop` is set and the queue is empty.
    fn run(&self, stop: &AtomicBool, truth: &Mutex<Truth>, hard: Instant) {
        loop {
            let item = {
                let mut q = self.q.lock().expect("queue");
                loop {
                    let now = Instant::now();
                    if now > hard || (stop.load(Ordering::SeqCst) && q.heap.is_empty()) {
                        return;
                    }
                    match q.heap.peek() {
                        Some(Reverse((due, _))) if *due <= now => break,
                        Some(Reverse((due, _))) => {
                            let wait = (*due - now).min(Duration::from_millis(50));
                            q = self.cv.wait_timeout(q, wait).expect("queue").0;
                        }
                        None => {
                            q = self
                                .cv
                                .wait_timeout(q, Duration::from_millis(50))
                                .expect("queue")
                                .0;
                        }
                    }
                }
                let Some(Reverse((_, id))) = q.heap.pop() else {
                    continue;
                };
                match q.items.remove(&id) {
                    Some(i) => i,
                    None => continue,
                }
            };
            let t1 = now_ns();
            let res = item.sock.send_to(&item.data, item.to);
            let t2 = now_ns();
            let sent = t1 + (t2 - t1) / 2;
            let mut t = truth.lock().expect("truth");
            t.max_send_call_ns = t.max_send_call_ns.max(t2 - t1);
            if let Err(e) = res {
                t.errors.push(format!("send to {}: {e}", item.to));
                continue;
            }
            match item.hook {
                Hook::Rtp(mut f) => {
                    f.sent_ns = sent;
                    f.send_call_ns = t2 - t1;
                    t.forwarded.push(f);
                }
                Hook::Rtcp(i) => {
                    if let Some(h) = t.rtcp.get_mut(i) {
                        h.sent_ns = sent;
                        h.send_call_ns = t2 - t1;
                    }
                }
                Hook::Plain => {}
            }
        }
    }
}

fn bind(addr: SocketAddr) -> Result<Arc<UdpSocket>, String> {
    let s = UdpSocket::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_millis(20)))
        .map_err(|e| format!("timeout {addr}: {e}"))?;
    Ok(Arc::new(s))
}

/// Runs relay and peer B until B's stream has ended plus [`TAIL`] (or the deadline),
/// then writes `truth.json` into `cfg.dir`.
pub fn run_relay(cfg: &RelayConfig) -> Result<(), String> {
    let hard = Instant::now() + cfg.deadline;
    let net = cfg.net;
    let out_rtp = bind(net.relay_rtp())?;
    let out_rtcp = bind(net.relay_rtcp())?;
    let in_rtp = bind(lo(PORT_RELAY_IN_RTP))?;
    let in_rtcp = bind(lo(PORT_RELAY_IN_RTCP))?;
    let b_rtp = bind(lo(PORT_B_RTP))?;
    let b_rtcp = bind(lo(PORT_B_RTCP))?;

    let (drops, delays) = plan(cfg.seed, cfg.packets);
    let truth = Arc::new(Mutex::new(Truth {
        seed: cfg.seed,
        packets: cfg.packets,
        b_seq0: B_SEQ0,
        b_ts0: B_TS0,
        dropped_index: drops.iter().copied().collect(),
        dropped_seqs: drops
            .iter()
            .map(|&k| B_SEQ0.wrapping_add(k as u16))
            .collect(),
        ..Truth::default()
    }));
    let sched = Arc::new(Scheduler {
        q: Mutex::new(Queue::default()),
        cv: Condvar::new(),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let started: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
    let b_stats = Arc::new(Mutex::new(RecvStats::default()));
    let b_sent = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();

    // Scheduler: the impaired sends.
    {
        let (sched, stop, truth) = (sched.clone(), stop.clone(), truth.clone());
        threads.push(std::thread::spawn(move || sched.run(&stop, &truth, hard)));
    }
    // A → B RTP, unimpaired; the first packet starts B.
    {
        let (out_rtp, in_rtp, stop, started, truth) = (
            out_rtp.clone(),
            in_rtp.clone(),
            stop.clone(),
            started.clone(),
            truth.clone(),
        );
        threads.push(std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::SeqCst) && Instant::now() < hard {
                let Ok((n, _)) = out_rtp.recv_from(&mut buf) else {
                    continue;
                };
                started.get_or_init(Instant::now);
                if in_rtp.send_to(&buf[..n], lo(PORT_B_RTP)).is_ok() {
                    truth.lock().expect("truth").a_forwarded += 1;
                }
            }
        }));
    }
    // B → A RTP: drop per plan, delay per plan.
    {
        let (in_rtp, out_rtp, stop, sched, truth) = (
            in_rtp.clone(),
            out_rtp.clone(),
            stop.clone(),
            sched.clone(),
            truth.clone(),
        );
        let a = net.a_rtp();
        threads.push(std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::SeqCst) && Instant::now() < hard {
                let Ok((n, _)) = in_rtp.recv_from(&mut buf) else {
                    continue;
                };
                let recv = Instant::now();
                let recv_ns = now_ns();
                let Some((seq, ts, _)) = parse_rtp(&buf[..n]) else {
                    continue;
                };
                let index = usize::from(seq.wrapping_sub(B_SEQ0));
                if drops.contains(&index) {
                    truth.lock().expect("truth").dropped_seen.push(seq);
                    continue;
                }
                let planned = delays.get(index).copied().unwrap_or(0);
                sched.push(
                    recv + Duration::from_nanos(planned as u64),
                    Item {
                        sock: out_rtp.clone(),
                        to: a,
                        data: buf[..n].to_vec(),
                        hook: Hook::Rtp(Forwarded {
                            index,
                            seq,
                            ts,
                            recv_ns,
                            planned_delay_ns: planned,
                            sent_ns: 0,
                            send_call_ns: 0,
                        }),
                    },
                );
            }
        }));
    }
    // RTCP both ways, delayed; every hop recorded.
    for (from_a, rx, tx, to, seed_mix) in [
        (
            true,
            out_rtcp.clone(),
            in_rtcp.clone(),
            lo(PORT_B_RTCP),
            0x5151u64,
        ),
        (
            false,
            in_rtcp.clone(),
            out_rtcp.clone(),
            net.a_rtcp(),
            0x7272u64,
        ),
    ] {
        let (stop, sched, truth) = (stop.clone(), sched.clone(), truth.clone());
        let mut rng = Rng::new(cfg.seed ^ seed_mix);
        threads.push(std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::SeqCst) && Instant::now() < hard {
                let Ok((n, _)) = rx.recv_from(&mut buf) else {
                    continue;
                };
                let recv = Instant::now();
                let recv_ns = now_ns();
                let (kind, key, block, range) = match (parse_rtcp(&buf[..n]), from_a) {
                    (Some(Rtcp::Sr { ntp_mid, .. }), true) => {
                        ("sr_a", ntp_mid, None, SR_FWD_DELAY_MS)
                    }
                    (Some(Rtcp::Sr { ntp_mid, .. }), false) => {
                        ("sr_b", ntp_mid, None, OTHER_RTCP_DELAY_MS)
                    }
                    (Some(Rtcp::Rr { block, .. }), true) => (
                        "rr_a",
                        block.map_or(0, |b| b.lsr),
                        block,
                        OTHER_RTCP_DELAY_MS,
                    ),
                    (Some(Rtcp::Rr { block, .. }), false) => {
                        ("rr_b", block.map_or(0, |b| b.lsr), block, RR_RET_DELAY_MS)
                    }
                    (None, _) => ("other", 0, None, OTHER_RTCP_DELAY_MS),
                };
                let planned = rng.delay_ns(range);
                let idx = {
                    let mut t = truth.lock().expect("truth");
                    t.rtcp.push(RtcpHop {
                        kind: kind.to_string(),
                        key,
                        recv_ns,
                        planned_delay_ns: planned,
                        sent_ns: 0,
                        send_call_ns: 0,
                        block,
                    });
                    t.rtcp.len() - 1
                };
                sched.push(
                    recv + Duration::from_nanos(planned as u64),
                    Item {
                        sock: tx.clone(),
                        to,
                        data: buf[..n].to_vec(),
                        hook: Hook::Rtcp(idx),
                    },
                );
            }
        }));
    }
    // Peer B: RTP receiver (for its reports).
    {
        let (b_rtp, stop, b_stats) = (b_rtp.clone(), stop.clone(), b_stats.clone());
        threads.push(std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::SeqCst) && Instant::now() < hard {
                let Ok((n, _)) = b_rtp.recv_from(&mut buf) else {
                    continue;
                };
                let at = now_ns();
                if let Some((seq, ts, ssrc)) = parse_rtp(&buf[..n]) {
                    if ssrc == SSRC_A {
                        b_stats.lock().expect("stats").on_packet(seq, ts, at);
                    }
                }
            }
        }));
    }
    // Peer B: RTCP (answers A's SRs after a seeded hold, sends its own SRs).
    {
        let (b_rtcp, stop, b_stats, b_sent, started) = (
            b_rtcp.clone(),
            stop.clone(),
            b_stats.clone(),
            b_sent.clone(),
            started.clone(),
        );
        let mut rng = Rng::new(cfg.seed ^ 0xB0B0);
        let stream_len = FRAME * cfg.packets as u32;
        threads.push(std::thread::spawn(move || {
            let relay = lo(PORT_RELAY_IN_RTCP);
            let mut buf = [0u8; 2048];
            // (due, lsr, received at)
            let mut pending: Vec<(Instant, u32, Instant)> = Vec::new();
            let mut n_sr = 0u32;
            b_rtcp
                .set_read_timeout(Some(Duration::from_millis(1)))
                .expect("timeout");
            while !stop.load(Ordering::SeqCst) && Instant::now() < hard {
                if let Ok((n, _)) = b_rtcp.recv_from(&mut buf) {
                    let at = Instant::now();
                    if let Some(Rtcp::Sr { ntp_mid, .. }) = parse_rtcp(&buf[..n]) {
                        let hold = rng.delay_ns(B_HOLD_MS);
                        pending.push((at + Duration::from_nanos(hold as u64), ntp_mid, at));
                    }
                }
                let now = Instant::now();
                let mut i = 0;
                while i < pending.len() {
                    if pending[i].0 <= now {
                        let (_, lsr, at) = pending.remove(i);
                        let dlsr = dlsr_units(at.elapsed().as_nanos() as i64);
                        let block = b_stats.lock().expect("stats").block(SSRC_A, lsr, dlsr);
                        let _ = b_rtcp.send_to(&receiver_report(SSRC_B, &block), relay);
                    } else {
                        i += 1;
                    }
                }
                if let Some(&t0) = started.get() {
                    let due = t0 + B_SR_FIRST + SR_PERIOD * n_sr;
                    if now >= due && due + SR_QUIET_END < t0 + stream_len {
                        n_sr += 1;
                        let sent = b_sent.load(Ordering::SeqCst) as u32;
                        let rtp_ts = B_TS0
                            .wrapping_add((now.duration_since(t0).as_secs_f64() * CLOCK_HZ) as u32);
                        let sr = sender_report(
                            SSRC_B,
                            ntp_of(now_ns()),
                            rtp_ts,
                            sent,
                            sent * PAYLOAD_LEN as u32,
                        );
                        let _ = b_rtcp.send_to(&sr, relay);
                    }
                }
            }
        }));
    }

    std::fs::write(cfg.dir.join("ready"), b"ready").map_err(|e| format!("ready file: {e}"))?;

    // Peer B: RTP sender, in this thread; it starts with A's first packet.
    while started.get().is_none() && Instant::now() < hard {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut child_errors = Vec::new();
    match started.get().copied() {
        None => child_errors.push("A's RTP never arrived".to_string()),
        Some(t0) => {
            let relay = lo(PORT_RELAY_IN_RTP);
            for k in 0..cfg.packets {
                sleep_until(t0 + FRAME * k as u32);
                if Instant::now() > hard {
                    child_errors.push("deadline hit while B was streaming".into());
                    break;
                }
                let seq = B_SEQ0.wrapping_add(k as u16);
                let ts = B_TS0.wrapping_add(TS_STEP.wrapping_mul(k as u32));
                match send_timed(&b_rtp, &rtp_packet(seq, ts, SSRC_B, k == 0), relay) {
                    Ok(_) => {
                        b_sent.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => child_errors.push(format!("B send: {e}")),
                }
            }
            sleep_until((Instant::now() + TAIL).min(hard));
        }
    }
    stop.store(true, Ordering::SeqCst);
    sched.cv.notify_all();
    for t in threads {
        if t.join().is_err() {
            child_errors.push("a relay thread panicked".into());
        }
    }
    let mut t = truth.lock().expect("truth").clone();
    t.errors.extend(child_errors);
    t.b_sent = b_sent.load(Ordering::SeqCst);
    t.b_received = u64::from(b_stats.lock().expect("stats").received);
    let json = serde_json::to_vec_pretty(&t).map_err(|e| e.to_string())?;
    let tmp = cfg.dir.join("truth.json.tmp");
    std::fs::write(&tmp, json).map_err(|e| format!("writing truth: {e}"))?;
    std::fs::rename(&tmp, cfg.dir.join("truth.json")).map_err(|e| format!("truth: {e}"))?;
    Ok(())
}

// ---------------------------------------------------------------------------------
// Peer A (runs in the test process, root namespace)
// ---------------------------------------------------------------------------------

/// B's SR that A answered.
#[derive(Debug, Clone)]
pub struct AAnswer {
    pub b_sr_mid: u32,
    pub sr_recv_ns: i64,
    pub rr_sent_ns: i64,
    pub rr_send_call_ns: i64,
    pub block: ReportBlock,
}

/// What peer A did and saw.
#[derive(Debug, Clone, Default)]
pub struct ALog {
    /// A's SRs: (NTP middle 32 bits, send time, duration of the send call).
    pub sr_sent: Vec<(u32, i64, i64)>,
    /// B's RRs as they arrived: (arrival, block).
    pub rr_from_b: Vec<(i64, ReportBlock)>,
    /// A's answers to B's SRs, in send order.
    pub answers: Vec<AAnswer>,
    pub rtp_sent: u64,
    pub rtp_received: u64,
    pub errors: Vec<String>,
}

/// Streams `packets` RTP packets from A to the relay with SRs, answers B's SRs, and
/// keeps listening for [`TAIL`] after its last packet.
pub fn run_peer_a(net: Net, packets: usize) -> Result<ALog, String> {
    let rtp = bind(SocketAddr::V4(SocketAddrV4::new(net.a, PORT_A_RTP)))?;
    let rtcp = bind(SocketAddr::V4(SocketAddrV4::new(net.a, PORT_A_RTCP)))?;
    rtcp.set_read_timeout(Some(Duration::from_millis(1)))
        .map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let stream_len = FRAME * packets as u32;
    let end = t0 + stream_len + TAIL;
    let stats = Arc::new(Mutex::new(RecvStats::default()));
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));

    let rx = {
        let (rtp, stats, stop) = (rtp.clone(), stats.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::SeqCst) && Instant::now() < end + TAIL {
                let Ok((n, _)) = rtp.recv_from(&mut buf) else {
                    continue;
                };
                let at = now_ns();
                if let Some((seq, ts, ssrc)) = parse_rtp(&buf[..n]) {
                    if ssrc == SSRC_B {
                        stats.lock().expect("stats").on_packet(seq, ts, at);
                    }
                }
            }
        })
    };
    let tx = {
        let (rtp, sent) = (rtp.clone(), sent.clone());
        let to = net.relay_rtp();
        std::thread::spawn(move || -> Vec<String> {
            let mut errs = Vec::new();
            for k in 0..packets {
                sleep_until(t0 + FRAME * k as u32);
                let seq = A_SEQ0.wrapping_add(k as u16);
                let ts = A_TS0.wrapping_add(TS_STEP * k as u32);
                match rtp.send_to(&rtp_packet(seq, ts, SSRC_A, k == 0), to) {
                    Ok(_) => {
                        sent.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => errs.push(format!("A RTP send: {e}")),
                }
            }
            errs
        })
    };

    let mut log = ALog::default();
    let relay = net.relay_rtcp();
    let mut buf = [0u8; 2048];
    let mut n_sr = 0u32;
    while Instant::now() < end {
        if let Ok((n, _)) = rtcp.recv_from(&mut buf) {
            let at_i = Instant::now();
            let at = now_ns();
            match parse_rtcp(&buf[..n]) {
                Some(Rtcp::Sr { ntp_mid, .. }) => {
                    // Answer at once; DLSR is the real holding time.
                    let dlsr = dlsr_units(at_i.elapsed().as_nanos() as i64);
                    let block = stats.lock().expect("stats").block(SSRC_B, ntp_mid, dlsr);
                    match send_timed(&rtcp, &receiver_report(SSRC_A, &block), relay) {
                        Ok((sent_ns, call_ns)) => log.answers.push(AAnswer {
                            b_sr_mid: ntp_mid,
                            sr_recv_ns: at,
                            rr_sent_ns: sent_ns,
                            rr_send_call_ns: call_ns,
                            block,
                        }),
                        Err(e) => log.errors.push(format!("A RR send: {e}")),
                    }
                }
                Some(Rtcp::Rr {
                    block: Some(block), ..
                }) => log.rr_from_b.push((at, block)),
                _ => {}
            }
        }
        let due = t0 + SR_FIRST + SR_PERIOD * n_sr;
        if Instant::now() >= due && due + SR_QUIET_END < t0 + stream_len {
            n_sr += 1;
            let count = sent.load(Ordering::SeqCst) as u32;
            let rtp_ts = A_TS0.wrapping_add((t0.elapsed().as_secs_f64() * CLOCK_HZ) as u32);
            // The NTP time is taken just before sending: the probe sees the SR then.
            let ntp = ntp_of(now_ns());
            let sr = sender_report(SSRC_A, ntp, rtp_ts, count, count * PAYLOAD_LEN as u32);
            match send_timed(&rtcp, &sr, relay) {
                Ok((sent_ns, call_ns)) => log.sr_sent.push((mid32(ntp), sent_ns, call_ns)),
                Err(e) => log.errors.push(format!("A SR send: {e}")),
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    match tx.join() {
        Ok(errs) => log.errors.extend(errs),
        Err(_) => log.errors.push("A's sender panicked".into()),
    }
    if rx.join().is_err() {
        log.errors.push("A's receiver panicked".into());
    }
    log.rtp_sent = sent.load(Ordering::SeqCst);
    log.rtp_received = u64::from(stats.lock().expect("stats").received);
    Ok(log)
}
