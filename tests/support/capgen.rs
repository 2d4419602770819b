//! Test-only capture generator with known truth.
//!
//! Writes real capture files (pcap µs/ns, pcapng) holding SIP, RTP and RTCP over a choice
//! of link layers, and computes — with its own plain implementation of RFC 3550 A.1/A.3/A.8
//! and of tshark 4.0.17's `rtp,streams` figures — what a correct probe must report for every
//! stream. It deliberately depends on nothing but `std` (not even the `vqprobe` crate), so a
//! bug in the engine cannot leak into the truth it is checked against.
//!
//! Times are [`Nanos`] since the Unix epoch. Generated times are whole microseconds, so the
//! µs formats and libpcap's default µs precision lose nothing; RTP arrival patterns used for
//! jitter checks are usually quantised to whole RTP timestamp units so that integer and
//! floating-point RFC 3550 implementations agree exactly.
#![allow(dead_code)]

use std::collections::{BTreeSet, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

/// Capture time: nanoseconds since the Unix epoch.
pub type Nanos = u64;

/// A round, deterministic capture epoch (2023-11-14T22:13:20Z).
pub const BASE_TIME: Nanos = 1_700_000_000 * NANOS_PER_SEC;

/// Nanoseconds per second.
pub const NANOS_PER_SEC: u64 = 1_000_000_000;

/// `x` milliseconds as [`Nanos`].
pub const fn ms(x: u64) -> Nanos {
    x * 1_000_000
}

/// `x` microseconds as [`Nanos`].
pub const fn us(x: u64) -> Nanos {
    x * 1_000
}

/// `x` seconds as [`Nanos`].
pub const fn secs(x: u64) -> Nanos {
    x * NANOS_PER_SEC
}

/// Seconds between the NTP epoch (1900) and the Unix epoch (1970).
pub const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

// ---------------------------------------------------------------------------------------
// Deterministic randomness
// ---------------------------------------------------------------------------------------

/// xorshift64* PRNG: deterministic across platforms and toolchains, no `rand` crate.
#[derive(Clone, Debug)]
pub struct XorShift(u64);

/// splitmix64 finaliser; spreads nearby seeds (0, 1, 2, …) over the whole state space.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl XorShift {
    /// A generator seeded with `seed` (any value, zero included).
    pub fn new(seed: u64) -> Self {
        let s = splitmix64(seed);
        // xorshift has a fixed point at zero.
        XorShift(if s == 0 { 0x2545_F491_4F6C_DD1D } else { s })
    }

    /// A generator for item `index` of the sequence named `seed`, so per-packet values can
    /// be computed in any order (the load generator streams; tests build all at once).
    pub fn for_index(seed: u64, index: u64) -> Self {
        Self::new(seed ^ splitmix64(index.wrapping_add(0x5851_F42D_4C95_7F2D)))
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (modulo bias is irrelevant for test patterns).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "XorShift::below(0)");
        self.next_u64() % n
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: i64, hi: i64) -> i64 {
        assert!(lo <= hi, "XorShift::between: empty range");
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Fill `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let r = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
    }
}

/// Indices in `0..count` lost independently with probability `ratio`, never the first or
/// the last packet: losing those would change `expected` itself and muddle loss tests.
pub fn random_loss(seed: u64, count: u32, ratio: f64) -> BTreeSet<u32> {
    let mut rng = XorShift::new(seed);
    (0..count)
        .filter(|&i| rng.chance(ratio) && i != 0 && i + 1 != count)
        .collect()
}

// ---------------------------------------------------------------------------------------
// Layers 3/4: IPv4, IPv6, UDP
// ---------------------------------------------------------------------------------------

/// RFC 1071 one's-complement sum, not yet folded or inverted, so pseudo-headers chain.
fn ones_sum(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

/// Fold and invert a one's-complement sum into a checksum field.
fn fold_checksum(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// The Internet checksum of `data` (RFC 1071).
pub fn internet_checksum(data: &[u8]) -> u16 {
    fold_checksum(ones_sum(0, data))
}

/// A UDP header + payload with the checksum computed over the IPv4 or IPv6 pseudo-header.
pub fn udp_segment(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    assert!(len <= 0xFFFF, "UDP datagram too large: {len} bytes");
    let mut seg = Vec::with_capacity(len);
    seg.extend_from_slice(&src.port().to_be_bytes());
    seg.extend_from_slice(&dst.port().to_be_bytes());
    seg.extend_from_slice(&(len as u16).to_be_bytes());
    seg.extend_from_slice(&[0, 0]);
    seg.extend_from_slice(payload);
    let mut sum = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let sum = ones_sum(0, &s.octets());
            ones_sum(sum, &d.octets()) + 17 + len as u32
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let sum = ones_sum(0, &s.octets());
            ones_sum(sum, &d.octets()) + 17 + len as u32
        }
        _ => panic!("udp_segment: mixed address families {src} -> {dst}"),
    };
    sum = ones_sum(sum, &seg);
    let mut ck = fold_checksum(sum);
    // A computed zero is sent as all ones (RFC 768); zero means "no checksum" in IPv4.
    if ck == 0 {
        ck = 0xFFFF;
    }
    seg[6..8].copy_from_slice(&ck.to_be_bytes());
    seg
}

/// An IPv4 (with a correct header checksum) or IPv6 packet carrying a UDP datagram.
/// `ip_id` is the IPv4 identification field; IPv6 ignores it.
pub fn ip_udp(src: SocketAddr, dst: SocketAddr, payload: &[u8], ip_id: u16) -> Vec<u8> {
    let udp = udp_segment(src, dst, payload);
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = 20 + udp.len();
            assert!(total <= 0xFFFF, "IPv4 packet too large");
            let mut p = Vec::with_capacity(total);
            p.push(0x45);
            p.push(0xB8); // DSCP EF, as voice gear marks media
            p.extend_from_slice(&(total as u16).to_be_bytes());
            p.extend_from_slice(&ip_id.to_be_bytes());
            p.extend_from_slice(&0x4000u16.to_be_bytes()); // DF, no fragments
            p.push(64);
            p.push(17);
            p.extend_from_slice(&[0, 0]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            let ck = internet_checksum(&p[..20]);
            p[10..12].copy_from_slice(&ck.to_be_bytes());
            p.extend_from_slice(&udp);
            p
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut p = Vec::with_capacity(40 + udp.len());
            // Version 6, traffic class EF (0xB8), flow label 0.
            p.extend_from_slice(&(0x6000_0000u32 | (0xB8 << 20)).to_be_bytes());
            p.extend_from_slice(&(udp.len() as u16).to_be_bytes());
            p.push(17);
            p.push(64);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&udp);
            p
        }
        _ => panic!("ip_udp: mixed address families {src} -> {dst}"),
    }
}

// ---------------------------------------------------------------------------------------
// Layer 2 and file formats
// ---------------------------------------------------------------------------------------

/// Capture file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// Classic pcap, µs timestamps (magic 0xa1b2c3d4).
    PcapMicros,
    /// Classic pcap, ns timestamps (magic 0xa1b23c4d).
    PcapNanos,
    /// pcapng: one SHB, one IDB (default µs resolution), EPBs.
    Pcapng,
}

/// Link layer (and optional tunnel) that every IP packet is wrapped in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkLayer {
    /// Ethernet II (linktype 1).
    Ethernet,
    /// Ethernet with one 802.1Q tag.
    Vlan {
        /// VLAN id (12 bits).
        vid: u16,
    },
    /// Ethernet with an 802.1ad (0x88a8) outer tag and an 802.1Q inner tag.
    QinQ {
        /// Service VLAN id.
        outer: u16,
        /// Customer VLAN id.
        inner: u16,
    },
    /// Ethernet / IPv4 / UDP 4789 / VXLAN / inner Ethernet frame.
    Vxlan {
        /// VXLAN network identifier (24 bits).
        vni: u32,
    },
    /// Linux cooked capture v1 (linktype 113).
    Sll,
    /// Linux cooked capture v2 (linktype 276).
    Sll2,
    /// Raw IP, no link header (linktype 101).
    RawIp,
    /// BSD loopback: 4-byte address family in host (here: little-endian) order (linktype 0).
    Null,
}

impl LinkLayer {
    /// The pcap LINKTYPE_ value written in the file header.
    pub fn linktype(self) -> u32 {
        match self {
            LinkLayer::Ethernet
            | LinkLayer::Vlan { .. }
            | LinkLayer::QinQ { .. }
            | LinkLayer::Vxlan { .. } => 1,
            LinkLayer::Sll => 113,
            LinkLayer::Sll2 => 276,
            LinkLayer::RawIp => 101,
            LinkLayer::Null => 0,
        }
    }
}

/// A locally administered MAC derived from an IP address, so each host keeps one MAC.
pub fn mac_for(ip: IpAddr) -> [u8; 6] {
    let o = match ip {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(a) => {
            let b = a.octets();
            [b[12], b[13], b[14], b[15]]
        }
    };
    [0x02, 0x00, o[0], o[1], o[2], o[3]]
}

/// An Ethernet II frame; `tags` are (TPID, VLAN id) pairs, outermost first.
pub fn ethernet_frame(
    src: [u8; 6],
    dst: [u8; 6],
    tags: &[(u16, u16)],
    ethertype: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + 4 * tags.len() + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    for &(tpid, vid) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        // PCP 5 (voice); DEI 0.
        f.extend_from_slice(&((5u16 << 13) | (vid & 0x0FFF)).to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// One UDP datagram between two sockets, before any IP or link framing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// UDP payload (RTP, RTCP, SIP or anything else).
    pub payload: Vec<u8>,
}

/// A datagram seen by the probe at `time`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Capture timestamp.
    pub time: Nanos,
    /// What was captured.
    pub datagram: Datagram,
}

impl Event {
    /// A UDP event.
    pub fn udp(time: Nanos, src: SocketAddr, dst: SocketAddr, payload: Vec<u8>) -> Self {
        Event {
            time,
            datagram: Datagram { src, dst, payload },
        }
    }
}

/// Sort events by capture time, keeping insertion order for equal times (the truth of each
/// stream is computed in that same order).
pub fn sort_events(events: &mut [Event]) {
    events.sort_by_key(|e| e.time);
}

const VTEP_A: Ipv4Addr = Ipv4Addr::new(192, 168, 100, 1);
const VTEP_B: Ipv4Addr = Ipv4Addr::new(192, 168, 100, 2);

/// Writes capture records to any `Write`, framing datagrams for the chosen link layer.
pub struct CaptureWriter<W: Write> {
    out: W,
    format: FileFormat,
    link: LinkLayer,
    ip_id: u16,
    records: u64,
}

impl CaptureWriter<BufWriter<File>> {
    /// Create (truncate) `path` and write the file header.
    pub fn create(path: &Path, format: FileFormat, link: LinkLayer) -> io::Result<Self> {
        let file = File::create(path)?;
        CaptureWriter::new(BufWriter::with_capacity(1 << 20, file), format, link)
    }
}

impl<W: Write> CaptureWriter<W> {
    /// Snap length written in the headers; larger than any frame we produce.
    pub const SNAPLEN: u32 = 262_144;

    /// Wrap `out` and write the file header (pcap global header, or pcapng SHB + IDB).
    pub fn new(mut out: W, format: FileFormat, link: LinkLayer) -> io::Result<Self> {
        match format {
            FileFormat::PcapMicros | FileFormat::PcapNanos => {
                let magic: u32 = if format == FileFormat::PcapMicros {
                    0xA1B2_C3D4
                } else {
                    0xA1B2_3C4D
                };
                let mut h = Vec::with_capacity(24);
                h.extend_from_slice(&magic.to_le_bytes());
                h.extend_from_slice(&2u16.to_le_bytes());
                h.extend_from_slice(&4u16.to_le_bytes());
                h.extend_from_slice(&0i32.to_le_bytes()); // thiszone
                h.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
                h.extend_from_slice(&Self::SNAPLEN.to_le_bytes());
                h.extend_from_slice(&link.linktype().to_le_bytes());
                out.write_all(&h)?;
            }
            FileFormat::Pcapng => {
                // Section Header Block, no options, unknown section length.
                let mut shb = Vec::with_capacity(28);
                shb.extend_from_slice(&0x0A0D_0D0Au32.to_le_bytes());
                shb.extend_from_slice(&28u32.to_le_bytes());
                shb.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
                shb.extend_from_slice(&1u16.to_le_bytes());
                shb.extend_from_slice(&0u16.to_le_bytes());
                shb.extend_from_slice(&(-1i64).to_le_bytes());
                shb.extend_from_slice(&28u32.to_le_bytes());
                out.write_all(&shb)?;
                // Interface Description Block without if_tsresol: timestamps are µs.
                let mut idb = Vec::with_capacity(20);
                idb.extend_from_slice(&1u32.to_le_bytes());
                idb.extend_from_slice(&20u32.to_le_bytes());
                idb.extend_from_slice(&(link.linktype() as u16).to_le_bytes());
                idb.extend_from_slice(&0u16.to_le_bytes());
                idb.extend_from_slice(&Self::SNAPLEN.to_le_bytes());
                idb.extend_from_slice(&20u32.to_le_bytes());
                out.write_all(&idb)?;
            }
        }
        Ok(CaptureWriter {
            out,
            format,
            link,
            ip_id: 1,
            records: 0,
        })
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Write one record holding `frame` (already framed for this file's link type).
    pub fn write_frame(&mut self, time: Nanos, frame: &[u8]) -> io::Result<()> {
        let len = frame.len() as u32;
        match self.format {
            FileFormat::PcapMicros | FileFormat::PcapNanos => {
                let sec = time / NANOS_PER_SEC;
                let frac = time % NANOS_PER_SEC;
                let frac = if self.format == FileFormat::PcapMicros {
                    frac / 1_000
                } else {
                    frac
                };
                let mut h = [0u8; 16];
                h[0..4].copy_from_slice(&(sec as u32).to_le_bytes());
                h[4..8].copy_from_slice(&(frac as u32).to_le_bytes());
                h[8..12].copy_from_slice(&len.to_le_bytes());
                h[12..16].copy_from_slice(&len.to_le_bytes());
                self.out.write_all(&h)?;
                self.out.write_all(frame)?;
            }
            FileFormat::Pcapng => {
                let pad = (4 - frame.len() % 4) % 4;
                let total = 32 + frame.len() + pad;
                let ts = time / 1_000;
                let mut h = Vec::with_capacity(28);
                h.extend_from_slice(&6u32.to_le_bytes());
                h.extend_from_slice(&(total as u32).to_le_bytes());
                h.extend_from_slice(&0u32.to_le_bytes()); // interface 0
                h.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
                h.extend_from_slice(&(ts as u32).to_le_bytes());
                h.extend_from_slice(&len.to_le_bytes());
                h.extend_from_slice(&len.to_le_bytes());
                self.out.write_all(&h)?;
                self.out.write_all(frame)?;
                self.out.write_all(&[0u8; 3][..pad])?;
                self.out.write_all(&(total as u32).to_le_bytes())?;
            }
        }
        self.records += 1;
        Ok(())
    }

    /// Frame `d` for this writer's link layer and write it.
    pub fn write_datagram(&mut self, time: Nanos, d: &Datagram) -> io::Result<()> {
        let frame = self.frame(d);
        self.write_frame(time, &frame)
    }

    /// Write an event.
    pub fn write_event(&mut self, e: &Event) -> io::Result<()> {
        self.write_datagram(e.time, &e.datagram)
    }

    /// Build the link-layer frame for one datagram.
    pub fn frame(&mut self, d: &Datagram) -> Vec<u8> {
        self.ip_id = self.ip_id.wrapping_add(1);
        let ip = ip_udp(d.src, d.dst, &d.payload, self.ip_id);
        let v6 = d.src.is_ipv6();
        let ethertype: u16 = if v6 { 0x86DD } else { 0x0800 };
        let (smac, dmac) = (mac_for(d.src.ip()), mac_for(d.dst.ip()));
        match self.link {
            LinkLayer::Ethernet => ethernet_frame(smac, dmac, &[], ethertype, &ip),
            LinkLayer::Vlan { vid } => ethernet_frame(smac, dmac, &[(0x8100, vid)], ethertype, &ip),
            LinkLayer::QinQ { outer, inner } => ethernet_frame(
                smac,
                dmac,
                &[(0x88A8, outer), (0x8100, inner)],
                ethertype,
                &ip,
            ),
            LinkLayer::Vxlan { vni } => {
                let inner = ethernet_frame(smac, dmac, &[], ethertype, &ip);
                let mut vx = Vec::with_capacity(8 + inner.len());
                vx.extend_from_slice(&[0x08, 0, 0, 0]); // I flag: VNI valid
                vx.extend_from_slice(&((vni & 0x00FF_FFFF) << 8).to_be_bytes());
                vx.extend_from_slice(&inner);
                // Source port from the inner flow, as VTEPs do for ECMP entropy.
                let entropy =
                    (u32::from(d.src.port()) ^ u32::from(d.dst.port()).rotate_left(7)) % 16_384;
                let outer_src = SocketAddr::new(IpAddr::V4(VTEP_A), 49_152 + entropy as u16);
                let outer_dst = SocketAddr::new(IpAddr::V4(VTEP_B), 4789);
                self.ip_id = self.ip_id.wrapping_add(1);
                let outer_ip = ip_udp(outer_src, outer_dst, &vx, self.ip_id);
                ethernet_frame(
                    mac_for(IpAddr::V4(VTEP_A)),
                    mac_for(IpAddr::V4(VTEP_B)),
                    &[],
                    0x0800,
                    &outer_ip,
                )
            }
            LinkLayer::Sll => {
                let mut f = Vec::with_capacity(16 + ip.len());
                f.extend_from_slice(&0u16.to_be_bytes()); // packet type: to us
                f.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
                f.extend_from_slice(&6u16.to_be_bytes());
                f.extend_from_slice(&smac);
                f.extend_from_slice(&[0, 0]);
                f.extend_from_slice(&ethertype.to_be_bytes());
                f.extend_from_slice(&ip);
                f
            }
            LinkLayer::Sll2 => {
                let mut f = Vec::with_capacity(20 + ip.len());
                f.extend_from_slice(&ethertype.to_be_bytes());
                f.extend_from_slice(&0u16.to_be_bytes()); // reserved
                f.extend_from_slice(&2u32.to_be_bytes()); // interface index
                f.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
                f.push(0); // packet type: to us
                f.push(6);
                f.extend_from_slice(&smac);
                f.extend_from_slice(&[0, 0]);
                f.extend_from_slice(&ip);
                f
            }
            LinkLayer::RawIp => ip,
            LinkLayer::Null => {
                // AF_INET = 2 everywhere; AF_INET6 differs per BSD, 30 is Darwin's (the
                // commonest source of loopback captures); libpcap accepts 24, 28 and 30.
                let af: u32 = if v6 { 30 } else { 2 };
                let mut f = Vec::with_capacity(4 + ip.len());
                f.extend_from_slice(&af.to_le_bytes());
                f.extend_from_slice(&ip);
                f
            }
        }
    }

    /// Flush and return the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Write `events` (sorted here, stably, by time) to `path`.
pub fn write_capture(
    path: &Path,
    format: FileFormat,
    link: LinkLayer,
    events: &[Event],
) -> io::Result<()> {
    let mut sorted = events.to_vec();
    sort_events(&mut sorted);
    let mut w = CaptureWriter::create(path, format, link)?;
    for e in &sorted {
        w.write_event(e)?;
    }
    w.finish()?;
    Ok(())
}

/// The bytes of a capture file holding `events` (sorted stably by time).
pub fn capture_bytes(format: FileFormat, link: LinkLayer, events: &[Event]) -> Vec<u8> {
    let mut sorted = events.to_vec();
    sort_events(&mut sorted);
    let mut w = CaptureWriter::new(Vec::new(), format, link).expect("writing to a Vec");
    for e in &sorted {
        w.write_event(e).expect("writing to a Vec");
    }
    w.finish().expect("writing to a Vec")
}

// ---------------------------------------------------------------------------------------
// RTP and RTCP
// ---------------------------------------------------------------------------------------

/// An RTP v2 packet without CSRCs or extension; the payload is `payload_len` bytes of
/// `fill` (0xFF is µ-law silence).
pub fn rtp_packet(
    pt: u8,
    marker: bool,
    seq: u16,
    ts: u32,
    ssrc: u32,
    payload_len: usize,
    fill: u8,
) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + payload_len);
    p.push(0x80);
    p.push((u8::from(marker) << 7) | (pt & 0x7F));
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.resize(12 + payload_len, fill);
    p
}

/// RTCP packet types (RFC 3550 §12.1, RFC 3611).
pub mod rtcp_pt {
    /// Sender report.
    pub const SR: u8 = 200;
    /// Receiver report.
    pub const RR: u8 = 201;
    /// Source description.
    pub const SDES: u8 = 202;
    /// Goodbye.
    pub const BYE: u8 = 203;
    /// Application-defined.
    pub const APP: u8 = 204;
    /// Extended report.
    pub const XR: u8 = 207;
}

/// Prefix `body` (everything after the 4-byte header) with an RTCP common header.
fn rtcp_wrap(count: u8, pt: u8, body: Vec<u8>) -> Vec<u8> {
    assert_eq!(body.len() % 4, 0, "RTCP body must be 32-bit aligned");
    let words = (body.len() + 4) / 4 - 1;
    let mut p = Vec::with_capacity(4 + body.len());
    p.push(0x80 | (count & 0x1F));
    p.push(pt);
    p.extend_from_slice(&(words as u16).to_be_bytes());
    p.extend(body);
    p
}

/// One RTCP reception report block (RFC 3550 §6.4.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportBlock {
    /// SSRC of the source this block is about.
    pub ssrc: u32,
    /// Fraction lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed on the wire).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received (cycles << 16 | max_seq).
    pub ext_highest_seq: u32,
    /// Interarrival jitter in RTP timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the last SR's NTP timestamp (0: none received).
    pub lsr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub dlsr: u32,
}

impl ReportBlock {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        let cum = (self.cumulative_lost as u32) & 0x00FF_FFFF;
        out.extend_from_slice(&((u32::from(self.fraction_lost) << 24) | cum).to_be_bytes());
        out.extend_from_slice(&self.ext_highest_seq.to_be_bytes());
        out.extend_from_slice(&self.jitter.to_be_bytes());
        out.extend_from_slice(&self.lsr.to_be_bytes());
        out.extend_from_slice(&self.dlsr.to_be_bytes());
    }
}

/// 64-bit NTP timestamp for a Unix-epoch time.
pub fn ntp_from_nanos(t: Nanos) -> u64 {
    let secs = t / NANOS_PER_SEC + NTP_UNIX_OFFSET;
    let frac = ((t % NANOS_PER_SEC) << 32) / NANOS_PER_SEC;
    (secs << 32) | frac
}

/// The middle 32 bits of an NTP timestamp: the LSR of RFC 3550 and LRR of RFC 3611.
pub fn ntp_middle32(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// A sender report.
pub fn rtcp_sr(
    ssrc: u32,
    ntp: u64,
    rtp_ts: u32,
    packet_count: u32,
    octet_count: u32,
    blocks: &[ReportBlock],
) -> Vec<u8> {
    assert!(blocks.len() < 32, "at most 31 report blocks");
    let mut b = Vec::with_capacity(24 + 24 * blocks.len());
    b.extend_from_slice(&ssrc.to_be_bytes());
    b.extend_from_slice(&ntp.to_be_bytes());
    b.extend_from_slice(&rtp_ts.to_be_bytes());
    b.extend_from_slice(&packet_count.to_be_bytes());
    b.extend_from_slice(&octet_count.to_be_bytes());
    for rb in blocks {
        rb.put(&mut b);
    }
    rtcp_wrap(blocks.len() as u8, rtcp_pt::SR, b)
}

/// A receiver report.
pub fn rtcp_rr(ssrc: u32, blocks: &[ReportBlock]) -> Vec<u8> {
    assert!(blocks.len() < 32, "at most 31 report blocks");
    let mut b = Vec::with_capacity(4 + 24 * blocks.len());
    b.extend_from_slice(&ssrc.to_be_bytes());
    for rb in blocks {
        rb.put(&mut b);
    }
    rtcp_wrap(blocks.len() as u8, rtcp_pt::RR, b)
}

/// An SDES packet with one chunk carrying a CNAME item.
pub fn rtcp_sdes_cname(ssrc: u32, cname: &str) -> Vec<u8> {
    assert!(cname.len() <= 255, "CNAME too long");
    let mut b = Vec::new();
    b.extend_from_slice(&ssrc.to_be_bytes());
    b.push(1); // CNAME
    b.push(cname.len() as u8);
    b.extend_from_slice(cname.as_bytes());
    // The item list ends with a null octet, then pad to 32 bits (RFC 3550 §6.5).
    b.push(0);
    while b.len() % 4 != 0 {
        b.push(0);
    }
    rtcp_wrap(1, rtcp_pt::SDES, b)
}

/// A BYE for one SSRC with an optional reason.
pub fn rtcp_bye(ssrc: u32, reason: Option<&str>) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&ssrc.to_be_bytes());
    if let Some(r) = reason {
        assert!(r.len() <= 255, "BYE reason too long");
        b.push(r.len() as u8);
        b.extend_from_slice(r.as_bytes());
        while b.len() % 4 != 0 {
            b.push(0);
        }
    }
    rtcp_wrap(1, rtcp_pt::BYE, b)
}

/// RFC 3611 §4.7 VoIP Metrics report block fields, as they go on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoipMetrics {
    /// SSRC of the source this block is about.
    pub ssrc: u32,
    /// Loss rate, 1/256.
    pub loss_rate: u8,
    /// Discard rate, 1/256.
    pub discard_rate: u8,
    /// Burst density, 1/256.
    pub burst_density: u8,
    /// Gap density, 1/256.
    pub gap_density: u8,
    /// Mean burst duration, ms.
    pub burst_duration: u16,
    /// Mean gap duration, ms.
    pub gap_duration: u16,
    /// Round-trip delay, ms.
    pub round_trip_delay: u16,
    /// End-system delay, ms.
    pub end_system_delay: u16,
    /// Signal level, dBm0 (127 = unavailable).
    pub signal_level: i8,
    /// Noise level, dBm0 (127 = unavailable).
    pub noise_level: i8,
    /// Residual echo return loss, dB (127 = unavailable).
    pub rerl: u8,
    /// Gap threshold (RECOMMENDED 16).
    pub gmin: u8,
    /// R factor (127 = unavailable).
    pub r_factor: u8,
    /// External R factor (127 = unavailable).
    pub ext_r_factor: u8,
    /// MOS-LQ ×10 (127 = unavailable).
    pub mos_lq: u8,
    /// MOS-CQ ×10 (127 = unavailable).
    pub mos_cq: u8,
    /// Receiver configuration byte (PLC, JBA, JB rate).
    pub rx_config: u8,
    /// Nominal jitter buffer delay, ms.
    pub jb_nominal: u16,
    /// Maximum jitter buffer delay, ms.
    pub jb_maximum: u16,
    /// Absolute maximum jitter buffer delay, ms.
    pub jb_abs_max: u16,
}

impl VoipMetrics {
    /// Plausible values for a clean G.711 call about `ssrc`.
    pub fn clean(ssrc: u32) -> Self {
        VoipMetrics {
            ssrc,
            loss_rate: 0,
            discard_rate: 0,
            burst_density: 0,
            gap_density: 0,
            burst_duration: 0,
            gap_duration: 0,
            round_trip_delay: 40,
            end_system_delay: 60,
            signal_level: -20,
            noise_level: -60,
            rerl: 127,
            gmin: 16,
            r_factor: 93,
            ext_r_factor: 127,
            mos_lq: 44,
            mos_cq: 43,
            rx_config: 0b1100_0000, // PLC: standard; JBA: unknown
            jb_nominal: 40,
            jb_maximum: 80,
            jb_abs_max: 500,
        }
    }
}

/// One RFC 3611 extended report block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XrBlock {
    /// BT=4 Receiver Reference Time: an NTP timestamp.
    ReceiverReferenceTime(u64),
    /// BT=5 DLRR: sub-blocks of (SSRC, LRR, DLRR in 1/65536 s).
    Dlrr(Vec<(u32, u32, u32)>),
    /// BT=7 VoIP Metrics.
    VoipMetrics(VoipMetrics),
}

/// An XR packet from `ssrc` carrying `blocks`.
pub fn rtcp_xr(ssrc: u32, blocks: &[XrBlock]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&ssrc.to_be_bytes());
    for blk in blocks {
        match blk {
            XrBlock::ReceiverReferenceTime(ntp) => {
                b.extend_from_slice(&[4, 0]);
                b.extend_from_slice(&2u16.to_be_bytes());
                b.extend_from_slice(&ntp.to_be_bytes());
            }
            XrBlock::Dlrr(subs) => {
                b.extend_from_slice(&[5, 0]);
                b.extend_from_slice(&((3 * subs.len()) as u16).to_be_bytes());
                for &(s, lrr, dlrr) in subs {
                    b.extend_from_slice(&s.to_be_bytes());
                    b.extend_from_slice(&lrr.to_be_bytes());
                    b.extend_from_slice(&dlrr.to_be_bytes());
                }
            }
            XrBlock::VoipMetrics(m) => {
                b.extend_from_slice(&[7, 0]);
                b.extend_from_slice(&8u16.to_be_bytes());
                b.extend_from_slice(&m.ssrc.to_be_bytes());
                b.extend_from_slice(&[m.loss_rate, m.discard_rate, m.burst_density]);
                b.push(m.gap_density);
                b.extend_from_slice(&m.burst_duration.to_be_bytes());
                b.extend_from_slice(&m.gap_duration.to_be_bytes());
                b.extend_from_slice(&m.round_trip_delay.to_be_bytes());
                b.extend_from_slice(&m.end_system_delay.to_be_bytes());
                b.extend_from_slice(&[m.signal_level as u8, m.noise_level as u8, m.rerl]);
                b.push(m.gmin);
                b.extend_from_slice(&[m.r_factor, m.ext_r_factor, m.mos_lq, m.mos_cq]);
                b.extend_from_slice(&[m.rx_config, 0]);
                b.extend_from_slice(&m.jb_nominal.to_be_bytes());
                b.extend_from_slice(&m.jb_maximum.to_be_bytes());
                b.extend_from_slice(&m.jb_abs_max.to_be_bytes());
            }
        }
    }
    rtcp_wrap(0, rtcp_pt::XR, b)
}

/// Concatenate RTCP packets into one compound datagram.
pub fn compound(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

// ---------------------------------------------------------------------------------------
// SIP and SDP
// ---------------------------------------------------------------------------------------

/// The host part of a SIP URI / Via for an address (`[v6]` bracketed).
fn sip_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    }
}

/// An SDP audio offer or answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sdp {
    /// Connection address (`c=`), also the origin address.
    pub addr: IpAddr,
    /// RTP port (`m=audio PORT`).
    pub port: u16,
    /// (payload type, encoding name, clock rate), in preference order.
    pub codecs: Vec<(u8, String, u32)>,
    /// `a=ptime`, if any.
    pub ptime_ms: Option<u32>,
    /// `a=rtcp:PORT`, if any (otherwise RTCP is on port + 1).
    pub rtcp_port: Option<u16>,
    /// `a=rtcp-mux`.
    pub rtcp_mux: bool,
    /// `o=` session id and version.
    pub session_id: u64,
    /// Direction attribute (`sendrecv`, `sendonly`, `recvonly`, `inactive`).
    pub direction: &'static str,
    /// A T.38 fax offer: the audio line is disabled (port 0) and `m=image PORT udptl t38`
    /// carries the fax.
    pub t38: bool,
}

impl Sdp {
    /// PCMU/8000 with telephone-event/8000, 20 ms ptime, media at `media`.
    pub fn pcmu(media: SocketAddr) -> Self {
        Sdp {
            addr: media.ip(),
            port: media.port(),
            codecs: vec![
                (0, "PCMU".to_string(), 8000),
                (101, "telephone-event".to_string(), 8000),
            ],
            ptime_ms: Some(20),
            rtcp_port: None,
            rtcp_mux: false,
            session_id: 1_000_000 + u64::from(media.port()),
            direction: "sendrecv",
            t38: false,
        }
    }

    /// A single codec at `media` (e.g. `(8, "PCMA", 8000)`), 20 ms.
    pub fn single(media: SocketAddr, codec: (u8, &str, u32)) -> Self {
        Sdp {
            codecs: vec![(codec.0, codec.1.to_string(), codec.2)],
            ..Sdp::pcmu(media)
        }
    }

    /// The SDP body text (CRLF line ends).
    pub fn render(&self) -> String {
        let fam = if self.addr.is_ipv6() { "IP6" } else { "IP4" };
        let pts: Vec<String> = self.codecs.iter().map(|c| c.0.to_string()).collect();
        let mut s = String::new();
        s.push_str("v=0\r\n");
        s.push_str(&format!(
            "o=- {id} {id} IN {fam} {a}\r\n",
            id = self.session_id,
            a = self.addr
        ));
        s.push_str("s=capgen\r\n");
        s.push_str(&format!("c=IN {fam} {}\r\n", self.addr));
        s.push_str("t=0 0\r\n");
        if self.t38 {
            s.push_str(&format!("m=audio 0 RTP/AVP {}\r\n", pts.join(" ")));
            s.push_str(&format!("m=image {} udptl t38\r\n", self.port));
            s.push_str("a=T38FaxVersion:0\r\na=T38FaxRateManagement:transferredTCF\r\n");
            return s;
        }
        s.push_str(&format!(
            "m=audio {} RTP/AVP {}\r\n",
            self.port,
            pts.join(" ")
        ));
        for (pt, name, clock) in &self.codecs {
            s.push_str(&format!("a=rtpmap:{pt} {name}/{clock}\r\n"));
            if name.eq_ignore_ascii_case("telephone-event") {
                s.push_str(&format!("a=fmtp:{pt} 0-16\r\n"));
            }
        }
        if let Some(p) = self.ptime_ms {
            s.push_str(&format!("a=ptime:{p}\r\n"));
        }
        if let Some(p) = self.rtcp_port {
            s.push_str(&format!("a=rtcp:{p}\r\n"));
        }
        if self.rtcp_mux {
            s.push_str("a=rtcp-mux\r\n");
        }
        s.push_str(&format!("a={}\r\n", self.direction));
        s
    }
}

/// One SIP dialog between a caller and a callee (signalling sockets), with builders for
/// each message and scripts for whole call flows. Requests come from the caller unless a
/// method says otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipDialog {
    /// Call-ID header value.
    pub call_id: String,
    /// Caller number, e.g. `+447700900123` (user part of From).
    pub from_number: String,
    /// Callee number (user part of To and the Request-URI).
    pub to_number: String,
    /// Caller's SIP socket.
    pub caller: SocketAddr,
    /// Callee's SIP socket.
    pub callee: SocketAddr,
    /// From tag.
    pub from_tag: String,
    /// To tag (added by the callee from 180 onwards).
    pub to_tag: String,
    /// Extra headers put on the INVITE, e.g. (`X-Agent-Id`, `agent-42`).
    pub extra_headers: Vec<(String, String)>,
}

impl SipDialog {
    /// A dialog with tags derived from the Call-ID.
    pub fn new(
        call_id: &str,
        from_number: &str,
        to_number: &str,
        caller: SocketAddr,
        callee: SocketAddr,
    ) -> Self {
        let h = splitmix64(
            call_id
                .bytes()
                .fold(0u64, |a, b| a.rotate_left(5) ^ u64::from(b)),
        );
        SipDialog {
            call_id: call_id.to_string(),
            from_number: from_number.to_string(),
            to_number: to_number.to_string(),
            caller,
            callee,
            from_tag: format!("{:08x}", h as u32),
            to_tag: format!("{:08x}", (h >> 32) as u32),
            extra_headers: Vec::new(),
        }
    }

    /// Add a header to the INVITE.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.extra_headers
            .push((name.to_string(), value.to_string()));
        self
    }

    fn caller_uri(&self) -> String {
        format!("sip:{}@{}", self.from_number, sip_host(self.caller.ip()))
    }

    fn callee_uri(&self) -> String {
        format!("sip:{}@{}", self.to_number, sip_host(self.callee.ip()))
    }

    fn via(&self, from_caller: bool, branch: &str) -> String {
        let a = if from_caller {
            self.caller
        } else {
            self.callee
        };
        format!(
            "Via: SIP/2.0/UDP {}:{};branch=z9hG4bK{}-{}\r\n",
            sip_host(a.ip()),
            a.port(),
            self.from_tag,
            branch
        )
    }

    fn caller_from_line(&self) -> String {
        format!("From: <{}>;tag={}\r\n", self.caller_uri(), self.from_tag)
    }

    fn callee_to_line(&self, tagged: bool) -> String {
        if tagged {
            format!("To: <{}>;tag={}\r\n", self.callee_uri(), self.to_tag)
        } else {
            format!("To: <{}>\r\n", self.callee_uri())
        }
    }

    fn finish(mut head: String, body: Option<String>) -> String {
        match body {
            Some(b) => {
                head.push_str("Content-Type: application/sdp\r\n");
                head.push_str(&format!("Content-Length: {}\r\n\r\n", b.len()));
                head.push_str(&b);
            }
            None => head.push_str("Content-Length: 0\r\n\r\n"),
        }
        head
    }

    fn contact(&self, caller_side: bool) -> String {
        if caller_side {
            format!(
                "Contact: <sip:{}@{}:{}>\r\n",
                self.from_number,
                sip_host(self.caller.ip()),
                self.caller.port()
            )
        } else {
            format!(
                "Contact: <sip:{}@{}:{}>\r\n",
                self.to_number,
                sip_host(self.callee.ip()),
                self.callee.port()
            )
        }
    }

    /// INVITE (CSeq 1) with the extra headers and an optional SDP offer.
    pub fn invite(&self, sdp: Option<&Sdp>) -> String {
        let mut h = format!("INVITE {} SIP/2.0\r\n", self.callee_uri());
        h.push_str(&self.via(true, "inv"));
        h.push_str("Max-Forwards: 70\r\n");
        h.push_str(&self.caller_from_line());
        h.push_str(&self.callee_to_line(false));
        h.push_str(&format!("Call-ID: {}\r\n", self.call_id));
        h.push_str("CSeq: 1 INVITE\r\n");
        h.push_str(&self.contact(true));
        h.push_str("User-Agent: capgen\r\n");
        for (k, v) in &self.extra_headers {
            h.push_str(&format!("{k}: {v}\r\n"));
        }
        Self::finish(h, sdp.map(Sdp::render))
    }

    /// A response from the callee to the INVITE (100 untagged, others with the To tag).
    pub fn response(&self, code: u16, reason: &str, sdp: Option<&Sdp>) -> String {
        self.response_to(code, reason, "INVITE", 1, "inv", sdp)
    }

    fn response_to(
        &self,
        code: u16,
        reason: &str,
        method: &str,
        cseq: u32,
        branch: &str,
        sdp: Option<&Sdp>,
    ) -> String {
        let mut h = format!("SIP/2.0 {code} {reason}\r\n");
        h.push_str(&self.via(true, branch));
        h.push_str(&self.caller_from_line());
        h.push_str(&self.callee_to_line(code != 100));
        h.push_str(&format!("Call-ID: {}\r\n", self.call_id));
        h.push_str(&format!("CSeq: {cseq} {method}\r\n"));
        if method == "INVITE" && (180..300).contains(&code) {
            h.push_str(&self.contact(false));
        }
        Self::finish(h, sdp.map(Sdp::render))
    }

    /// A re-INVITE in the dialog (CSeq `cseq`) from the caller or the callee, with an
    /// SDP (hold, resume, codec change, a T.38 switch).
    pub fn reinvite(&self, cseq: u32, from_caller: bool, sdp: &Sdp) -> String {
        let (a, uri) = if from_caller {
            (self.caller, self.callee_uri())
        } else {
            (self.callee, self.caller_uri())
        };
        let mut h = format!("INVITE {uri} SIP/2.0\r\n");
        h.push_str(&format!(
            "Via: SIP/2.0/UDP {}:{};branch=z9hG4bK{}-re{cseq}\r\n",
            sip_host(a.ip()),
            a.port(),
            self.from_tag
        ));
        h.push_str("Max-Forwards: 70\r\n");
        if from_caller {
            h.push_str(&self.caller_from_line());
            h.push_str(&self.callee_to_line(true));
        } else {
            h.push_str(&format!(
                "From: <{}>;tag={}\r\n",
                self.callee_uri(),
                self.to_tag
            ));
            h.push_str(&format!(
                "To: <{}>;tag={}\r\n",
                self.caller_uri(),
                self.from_tag
            ));
        }
        h.push_str(&format!("Call-ID: {}\r\n", self.call_id));
        h.push_str(&format!("CSeq: {cseq} INVITE\r\n"));
        h.push_str(&self.contact(from_caller));
        Self::finish(h, Some(sdp.render()))
    }

    /// The 200 OK to a re-INVITE, with the answering side's SDP.
    pub fn reinvite_ok(&self, cseq: u32, from_caller: bool, sdp: &Sdp) -> String {
        let mut h = "SIP/2.0 200 OK\r\n".to_string();
        let a = if from_caller {
            self.caller
        } else {
            self.callee
        };
        h.push_str(&format!(
            "Via: SIP/2.0/UDP {}:{};branch=z9hG4bK{}-re{cseq}\r\n",
            sip_host(a.ip()),
            a.port(),
            self.from_tag
        ));
        if from_caller {
            h.push_str(&self.caller_from_line());
            h.push_str(&self.callee_to_line(true));
        } else {
            h.push_str(&format!(
                "From: <{}>;tag={}\r\n",
                self.callee_uri(),
                self.to_tag
            ));
            h.push_str(&format!(
                "To: <{}>;tag={}\r\n",
                self.caller_uri(),
                self.from_tag
            ));
        }
        h.push_str(&format!("Call-ID: {}\r\n", self.call_id));
        h.push_str(&format!("CSeq: {cseq} INVITE\r\n"));
        Self::finish(h, Some(sdp.render()))
    }

    /// ACK for a 2xx (a new transaction).
    pub fn ack(&self) -> String {
        let mut h = format!(
            "ACK sip:{}@{}:{} SIP/2.0\r\n",
            self.to_number,
            sip_host(self.callee.ip()),
            self.callee.port()
        );
        h.push_str(&self.via(true, "ack"));
        h.push_str("Max-Forwards: 70\r\n");
        h.push_str(&self.caller_from_line());
        h.push_str(&self.callee_to_line(true));
        h.push_str(&format!("Call-ID: {}\r\n", self.call_id));
        h.push_str("CSeq: 1 ACK\r\n");
        Self::finish(h, None)
    }

    /// ACK for a non-2xx final response (same branch as the INVITE, RFC 3261 §17.1.1.3).
    pub fn ack_error(&self) -> String {
        let mut h = format!("ACK {} SIP/2.0\r\n", self.callee_uri());
        h.push_str(&self.via(true, "inv"));
        h.push_str("Max-Forwards: 70\r\n");
        h.push_str(&self.caller_from_line());
        h.push_str(&self.callee_to_line(true));
        h.push_str(&format!("Call-ID: {}\r\n", self.call_id));
        h.push_str("CSeq: 1 ACK\r\n");
        Self::finish(h, None)
    }

    /// BYE, from the caller (CSeq 2) or from the callee (CSeq 1 in its own space).
    pub fn bye(&self, from_caller: bool) -> String {
        let mut h = if from_caller {
            format!(
                "BYE sip:{}@{}:{} SIP/2.0\r\n",
                self.to_number,
                sip_host(self.callee.ip()),
                self.callee.port()
            )
        } else {
            format!(
                "BYE sip:{}@{}:{} SIP/2.0\r\n",
                self.from_number,
                sip_host(self.caller.ip()),
                self.caller.port()
            )
        };
        h.push_str(&self.via(from_caller, "bye"));
        h.push_str("Max-Forwards: 70\r\n");
        if from_caller {
            h.push_str(&self.caller_from_line());
            h.push_str(&self.callee_to_line(true));
        } else {
            // In the callee's requests the dialog's From/To swap places (RFC 3261 §12.2.1.1).
            h.push_str(&format!(
                "From: <{}>;tag={}\r\n",
                self.callee_uri(),
                self.to_tag
            ));
            h.push_str(&format!(
                "To: <{}>;tag={}\r\n",
                self.caller_uri(),
                self.from_tag
            ));
        }
        h.push_str(&format!("Call-ID: {}\r\n", self.call_id));
        h.push_str(&format!(
            "CSeq: {} BYE\r\n",
            if from_caller { 2 } else { 1 }
        ));
        Self::finish(h, None)
    }

    /// 200 OK to a BYE sent by the caller (`bye_from_caller`) or by the callee.
    pub fn bye_ok(&self, bye_from_caller: bool) -> String {
        let mut h = "SIP/2.0 200 OK\r\n".to_string();
        h.push_str(&self.via(bye_from_caller, "bye"));
        if bye_from_caller {
            h.push_str(&self.caller_from_line());
            h.push_str(&self.callee_to_line(true));
        } else {
            h.push_str(&format!(
                "From: <{}>;tag={}\r\n",
                self.callee_uri(),
                self.to_tag
            ));
            h.push_str(&format!(
                "To: <{}>;tag={}\r\n",
                self.caller_uri(),
                self.from_tag
            ));
        }
        h.push_str(&format!("Call-ID: {}\r\n", self.call_id));
        h.push_str(&format!(
            "CSeq: {} BYE\r\n",
            if bye_from_caller { 2 } else { 1 }
        ));
        Self::finish(h, None)
    }

    /// CANCEL of the INVITE (same branch and CSeq number, RFC 3261 §9.1).
    pub fn cancel(&self) -> String {
        let mut h = format!("CANCEL {} SIP/2.0\r\n", self.callee_uri());
        h.push_str(&self.via(true, "inv"));
        h.push_str("Max-Forwards: 70\r\n");
        h.push_str(&self.caller_from_line());
        h.push_str(&self.callee_to_line(false));
        h.push_str(&format!("Call-ID: {}\r\n", self.call_id));
        h.push_str("CSeq: 1 CANCEL\r\n");
        Self::finish(h, None)
    }

    /// 200 OK to the CANCEL.
    pub fn cancel_ok(&self) -> String {
        self.response_to(200, "OK", "CANCEL", 1, "inv", None)
    }

    /// An event carrying `msg` from the caller to the callee at `time`.
    pub fn to_callee(&self, time: Nanos, msg: String) -> Event {
        Event::udp(time, self.caller, self.callee, msg.into_bytes())
    }

    /// An event carrying `msg` from the callee to the caller at `time`.
    pub fn to_caller(&self, time: Nanos, msg: String) -> Event {
        Event::udp(time, self.callee, self.caller, msg.into_bytes())
    }

    /// INVITE at `t_invite`, 100, 180, 200 OK (answer) at `t_answer`, ACK, and BYE from the
    /// caller at `t_bye` with its 200.
    pub fn completed(
        &self,
        t_invite: Nanos,
        t_answer: Nanos,
        t_bye: Nanos,
        offer: &Sdp,
        answer: &Sdp,
    ) -> Vec<Event> {
        assert!(t_invite + ms(40) < t_answer && t_answer + ms(3) < t_bye);
        vec![
            self.to_callee(t_invite, self.invite(Some(offer))),
            self.to_caller(t_invite + ms(2), self.response(100, "Trying", None)),
            self.to_caller(t_invite + ms(40), self.response(180, "Ringing", None)),
            self.to_caller(t_answer, self.response(200, "OK", Some(answer))),
            self.to_callee(t_answer + ms(3), self.ack()),
            self.to_callee(t_bye, self.bye(true)),
            self.to_caller(t_bye + ms(3), self.bye_ok(true)),
        ]
    }

    /// INVITE at `t_invite`, 100, then a final error `code` 300 ms later and its ACK.
    pub fn rejected(&self, t_invite: Nanos, code: u16, reason: &str, offer: &Sdp) -> Vec<Event> {
        vec![
            self.to_callee(t_invite, self.invite(Some(offer))),
            self.to_caller(t_invite + ms(2), self.response(100, "Trying", None)),
            self.to_caller(t_invite + ms(300), self.response(code, reason, None)),
            self.to_callee(t_invite + ms(303), self.ack_error()),
        ]
    }

    /// INVITE, 100, 180, CANCEL at `t_cancel`, 200 (CANCEL), 487 (INVITE), ACK.
    pub fn cancelled(&self, t_invite: Nanos, t_cancel: Nanos, offer: &Sdp) -> Vec<Event> {
        assert!(t_invite + ms(40) < t_cancel);
        vec![
            self.to_callee(t_invite, self.invite(Some(offer))),
            self.to_caller(t_invite + ms(2), self.response(100, "Trying", None)),
            self.to_caller(t_invite + ms(40), self.response(180, "Ringing", None)),
            self.to_callee(t_cancel, self.cancel()),
            self.to_caller(t_cancel + ms(3), self.cancel_ok()),
            self.to_caller(
                t_cancel + ms(5),
                self.response(487, "Request Terminated", None),
            ),
            self.to_callee(t_cancel + ms(8), self.ack_error()),
        ]
    }
}

// ---------------------------------------------------------------------------------------
// RTP stream scenario and its truth
// ---------------------------------------------------------------------------------------

/// A seeded per-packet arrival-delay pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Jitter {
    /// Pattern seed.
    pub seed: u64,
    /// Delays are uniform in `-max_us..=max_us` …
    pub max_us: u64,
    /// … in multiples of `step_us` (125 µs = one 8 kHz timestamp unit keeps arrival times
    /// whole timestamp units, so integer and float RFC 3550 implementations agree).
    pub step_us: u64,
}

impl Jitter {
    /// Delay of packet slot `i` in µs; slot 0 is never delayed so the first packet stays
    /// first and anchors `expected`.
    pub fn delay_us(&self, i: u32) -> i64 {
        if i == 0 || self.max_us == 0 {
            return 0;
        }
        let step = self.step_us.max(1);
        let steps = (self.max_us / step) as i64;
        XorShift::for_index(self.seed, u64::from(i)).between(-steps, steps) * step as i64
    }
}

/// One RTP stream with known impairments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSpec {
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// SSRC.
    pub ssrc: u32,
    /// Payload type.
    pub pt: u8,
    /// RTP clock rate, Hz.
    pub clock_rate: u32,
    /// Packetisation interval, ms.
    pub ptime_ms: u32,
    /// Payload bytes per packet.
    pub payload_len: usize,
    /// Nominal send time of packet 0 (as captured).
    pub start_time: Nanos,
    /// Packets the sender produces (indices `0..count`).
    pub count: u32,
    /// Sequence number of packet 0 (65500 to test wrap).
    pub seq_start: u16,
    /// RTP timestamp of packet 0 (near 2^32 to test wrap).
    pub ts_start: u32,
    /// Indices never sent.
    pub loss: BTreeSet<u32>,
    /// Indices sent twice (the copy `duplicate_delay_us` after the original).
    pub duplicates: BTreeSet<u32>,
    /// Index pairs that exchange their arrival slots (so they arrive in swapped order).
    pub swaps: Vec<(u32, u32)>,
    /// Arrival delay pattern.
    pub jitter: Option<Jitter>,
    /// Delay of a duplicate after its original, µs.
    pub duplicate_delay_us: u64,
    /// Set the marker bit on packet 0 (start of talkspurt).
    pub marker_first: bool,
}

impl StreamSpec {
    /// A clean PCMU (PT 0, 8 kHz, 20 ms, 160-byte) stream.
    pub fn pcmu(
        src: SocketAddr,
        dst: SocketAddr,
        ssrc: u32,
        start_time: Nanos,
        count: u32,
    ) -> Self {
        StreamSpec {
            src,
            dst,
            ssrc,
            pt: 0,
            clock_rate: 8000,
            ptime_ms: 20,
            payload_len: 160,
            start_time,
            count,
            seq_start: (ssrc as u16) & 0x7FFF,
            ts_start: ssrc.rotate_left(13) & 0x7FFF_FFFF,
            loss: BTreeSet::new(),
            duplicates: BTreeSet::new(),
            swaps: Vec::new(),
            jitter: None,
            duplicate_delay_us: 1_000,
            marker_first: true,
        }
    }

    /// Lose these indices.
    pub fn with_loss(mut self, idx: impl IntoIterator<Item = u32>) -> Self {
        self.loss.extend(idx);
        self
    }

    /// Send these indices twice.
    pub fn with_duplicates(mut self, idx: impl IntoIterator<Item = u32>) -> Self {
        self.duplicates.extend(idx);
        self
    }

    /// Swap the arrival slots of these index pairs.
    pub fn with_swaps(mut self, pairs: impl IntoIterator<Item = (u32, u32)>) -> Self {
        self.swaps.extend(pairs);
        self
    }

    /// Seeded arrival jitter up to ±`max_us`, quantised to `step_us`.
    pub fn with_jitter(mut self, seed: u64, max_us: u64, step_us: u64) -> Self {
        self.jitter = Some(Jitter {
            seed,
            max_us,
            step_us,
        });
        self
    }

    /// Start sequence number and RTP timestamp.
    pub fn with_start(mut self, seq_start: u16, ts_start: u32) -> Self {
        self.seq_start = seq_start;
        self.ts_start = ts_start;
        self
    }

    /// RTP timestamp units per packet.
    pub fn samples_per_packet(&self) -> u32 {
        self.clock_rate * self.ptime_ms / 1000
    }

    /// Sequence number of packet `i`.
    pub fn seq(&self, i: u32) -> u16 {
        self.seq_start.wrapping_add(i as u16)
    }

    /// RTP timestamp of packet `i`.
    pub fn rtp_ts(&self, i: u32) -> u32 {
        self.ts_start
            .wrapping_add(i.wrapping_mul(self.samples_per_packet()))
    }

    /// Nominal (jitter-free) send time of slot `i`.
    pub fn nominal_time(&self, i: u32) -> Nanos {
        self.start_time + u64::from(i) * ms(u64::from(self.ptime_ms))
    }

    /// Nominal time just after the last packet.
    pub fn end_time(&self) -> Nanos {
        self.nominal_time(self.count)
    }

    /// Arrival time of slot `i` (nominal time plus the jitter pattern).
    pub fn slot_time(&self, i: u32) -> Nanos {
        let d = self.jitter.map_or(0, |j| j.delay_us(i));
        let t = self.nominal_time(i) as i64 + d * 1_000;
        assert!(t > 0, "arrival before the epoch");
        t as Nanos
    }

    /// The RTP packet with index `i` (payload bytes vary per packet, as real audio does).
    pub fn packet(&self, i: u32) -> Vec<u8> {
        let fill = 0x80 | (i as u8 & 0x7F);
        rtp_packet(
            self.pt,
            self.marker_first && i == 0,
            self.seq(i),
            self.rtp_ts(i),
            self.ssrc,
            self.payload_len,
            fill,
        )
    }

    /// Capture times at which packet `i` appears: none if lost, two if duplicated.
    pub fn sends_of(&self, i: u32) -> Vec<Nanos> {
        if self.loss.contains(&i) {
            return Vec::new();
        }
        let slot = self
            .swaps
            .iter()
            .find_map(|&(a, b)| {
                if a == i {
                    Some(b)
                } else if b == i {
                    Some(a)
                } else {
                    None
                }
            })
            .unwrap_or(i);
        let t = self.slot_time(slot);
        if self.duplicates.contains(&i) {
            vec![t, t + us(self.duplicate_delay_us)]
        } else {
            vec![t]
        }
    }

    /// Every (capture time, packet index) in capture order (stable for equal times).
    pub fn sends(&self) -> Vec<(Nanos, u32)> {
        let mut v: Vec<(Nanos, u32)> = (0..self.count)
            .flat_map(|i| self.sends_of(i).into_iter().map(move |t| (t, i)))
            .collect();
        v.sort_by_key(|s| s.0);
        v
    }

    /// The stream's capture events, in capture order.
    pub fn events(&self) -> Vec<Event> {
        self.sends()
            .into_iter()
            .map(|(t, i)| Event::udp(t, self.src, self.dst, self.packet(i)))
            .collect()
    }

    /// What a correct receiver at the probe reports for this stream.
    pub fn truth(&self) -> Truth {
        let arrivals: Vec<RtpArrival> = self
            .sends()
            .into_iter()
            .map(|(t, i)| RtpArrival {
                time: t,
                seq: self.seq(i),
                ts: self.rtp_ts(i),
                marker: self.marker_first && i == 0,
                pt: self.pt,
            })
            .collect();
        Truth::from_arrivals(self.src, self.dst, self.ssrc, self.clock_rate, &arrivals)
    }
}

/// One RTP packet as the probe sees it (the inputs of the truth computation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpArrival {
    /// Capture time.
    pub time: Nanos,
    /// Sequence number.
    pub seq: u16,
    /// RTP timestamp.
    pub ts: u32,
    /// Marker bit.
    pub marker: bool,
    /// Payload type.
    pub pt: u8,
}

/// Figures a correct probe reports for one stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Truth {
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// SSRC.
    pub ssrc: u32,
    /// RTP clock rate used for ms conversions.
    pub clock_rate: u32,
    /// Packets received, duplicates included.
    pub packets: u64,
    /// Highest extended sequence number − first + 1.
    pub expected: u64,
    /// Expected − unique received (never negative).
    pub lost: u64,
    /// Packets whose sequence number had already been received.
    pub duplicates: u64,
    /// Non-duplicate packets with a sequence number below the highest seen so far.
    pub out_of_order: u64,
    /// RFC 3550 A.8 final interarrival jitter, ms.
    pub jitter_ms: f64,
    /// Runs of consecutive lost sequence numbers: index k counts runs of length k + 1,
    /// index 9 counts runs of 10 or more.
    pub loss_runs: [u64; 10],
    /// tshark 4.0.17 `rtp,streams` Max Delta (ms).
    pub max_delta_ms: f64,
    /// tshark 4.0.17 Max Jitter (ms).
    pub max_jitter_ms: f64,
    /// tshark 4.0.17 Mean Jitter (ms).
    pub mean_jitter_ms: f64,
    /// tshark's Lost: (last-arrived ext seq − first + 1) − packets; negative with duplicates.
    pub tshark_lost: i64,
}

impl Truth {
    /// Compute the truth from packets in arrival order, by hand: RFC 3550 A.1 extended
    /// sequence numbers (without probation, as the contract counts the first packet), A.3
    /// loss, A.8 jitter with real-valued arrival times in timestamp units; and tshark's
    /// `rtp,streams` (4.0.17) delta/jitter statistics.
    pub fn from_arrivals(
        src: SocketAddr,
        dst: SocketAddr,
        ssrc: u32,
        clock_rate: u32,
        arrivals: &[RtpArrival],
    ) -> Truth {
        let mut t = Truth {
            src,
            dst,
            ssrc,
            clock_rate,
            packets: arrivals.len() as u64,
            expected: 0,
            lost: 0,
            duplicates: 0,
            out_of_order: 0,
            jitter_ms: 0.0,
            loss_runs: [0; 10],
            max_delta_ms: 0.0,
            max_jitter_ms: 0.0,
            mean_jitter_ms: 0.0,
            tshark_lost: 0,
        };
        let Some(first) = arrivals.first() else {
            return t;
        };

        // Sequence: extend each number to the value nearest the highest seen so far.
        let first_ext = i64::from(first.seq);
        let mut highest = first_ext;
        let mut seen: HashSet<i64> = HashSet::new();
        let mut last_ext = first_ext;
        for a in arrivals {
            let delta = a.seq.wrapping_sub(highest as u16) as i16;
            let ext = highest + i64::from(delta);
            if !seen.insert(ext) {
                t.duplicates += 1;
            } else if ext < highest {
                t.out_of_order += 1;
            }
            highest = highest.max(ext);
            last_ext = ext;
        }
        t.expected = (highest - first_ext + 1) as u64;
        let mut run = 0u64;
        for s in first_ext..=highest {
            if seen.contains(&s) {
                if run > 0 {
                    t.loss_runs[(run.min(10) - 1) as usize] += 1;
                }
                run = 0;
            } else {
                t.lost += 1;
                run += 1;
            }
        }
        // The highest number was received, so no run is open here.
        t.tshark_lost = (last_ext - first_ext + 1) - arrivals.len() as i64;

        // RFC 3550 A.8: transit = arrival − timestamp, both in timestamp units; timestamps
        // are unwrapped through signed 32-bit differences, arrivals made relative to the
        // first packet so f64 keeps them exact.
        let clock = f64::from(clock_rate);
        let mut j = 0.0f64;
        let mut prev_transit = 0.0f64;
        let mut ts_unwrapped = 0i64;
        let mut prev_ts = first.ts;
        for (k, a) in arrivals.iter().enumerate() {
            ts_unwrapped += i64::from(a.ts.wrapping_sub(prev_ts) as i32);
            prev_ts = a.ts;
            let arrival = (a.time - first.time) as f64 * clock / 1e9;
            let transit = arrival - ts_unwrapped as f64;
            if k > 0 {
                let d = (transit - prev_transit).abs();
                j += (d - j) / 16.0;
            }
            prev_transit = transit;
        }
        t.jitter_ms = j / clock * 1000.0;

        // tshark 4.0.17 (ui/tap-rtp-analysis.c): times in ms, nominal time from the first
        // packet's timestamp divided by the *integer* clock/1000; packets before the first
        // timestamp are out of time sequence; first, marker and CN packets (and the one
        // after CN) are left out of max/mean, while the mean still divides by every packet.
        let per_ms = f64::from(clock_rate / 1000);
        let ms_of = |n: Nanos| (n - first.time) as f64 / 1e6;
        let mut tj = 0.0f64;
        let mut prev_time = 0.0f64;
        let mut last_nominal = 0.0f64;
        let mut prev_pt = first.pt;
        for (k, a) in arrivals.iter().enumerate().skip(1) {
            let now = ms_of(a.time);
            let nominal_units = a.ts.wrapping_sub(first.ts);
            let in_sequence = nominal_units < 0x8000_0000;
            let is_cn = a.pt == 13 || a.pt == 19;
            let follows_cn = prev_pt == 13 || prev_pt == 19;
            prev_pt = a.pt;
            let mut delta = 0.0;
            if in_sequence {
                let nominal = f64::from(nominal_units) / per_ms;
                let expected_time = prev_time + (nominal - last_nominal);
                tj = (15.0 * tj + (now - expected_time).abs()) / 16.0;
                delta = now - prev_time;
                last_nominal = nominal;
            }
            if in_sequence && !a.marker && !is_cn && !follows_cn {
                t.max_delta_ms = t.max_delta_ms.max(delta);
                t.max_jitter_ms = t.max_jitter_ms.max(tj);
                // total_nr before this packet is k.
                t.mean_jitter_ms = (t.mean_jitter_ms * (k as f64 - 1.0) + tj) / k as f64;
            }
            if in_sequence {
                prev_time = now;
            }
        }
        t
    }

    /// `ssrc` as the contract prints it: `0x` + 8 lowercase hex digits.
    pub fn ssrc_hex(&self) -> String {
        format!("0x{:08x}", self.ssrc)
    }

    /// Sum of `loss_runs` weighted by run length (exact while no run exceeds 9).
    pub fn lost_in_runs(&self) -> u64 {
        self.loss_runs
            .iter()
            .enumerate()
            .map(|(k, n)| (k as u64 + 1) * n)
            .sum()
    }
}

/// One SR from endpoint A answered by an RR from the far end B, with a known round trip
/// from the probe to B and back (ALGORITHMS.md §5 "Passive observer").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtcpExchange {
    /// A's RTCP socket (sends the SR).
    pub a_rtcp: SocketAddr,
    /// B's RTCP socket (sends the RR).
    pub b_rtcp: SocketAddr,
    /// A's SSRC (the RR's report block is about it).
    pub a_ssrc: u32,
    /// B's SSRC.
    pub b_ssrc: u32,
    /// Capture time of A's SR.
    pub t_sr: Nanos,
    /// A's wall clock minus capture time, ns: the probe must not trust endpoint clocks.
    pub a_clock_offset_ns: i64,
    /// SR sender info: RTP timestamp, packets and octets sent.
    pub sr_rtp_ts: u32,
    /// Packets A sent so far.
    pub sr_packet_count: u32,
    /// Payload octets A sent so far.
    pub sr_octet_count: u32,
    /// DLSR in B's RR, 1/65536 s.
    pub dlsr: u32,
    /// Capture time of B's RR.
    pub t_rr: Nanos,
    /// The RR's report block contents (its `ssrc`, `lsr` and `dlsr` are filled in).
    pub report: ReportBlock,
}

impl RtcpExchange {
    /// An exchange where B holds the SR for `dlsr`/65536 s and the network round trip
    /// probe→B→probe is `rtt_us`. t_rr is rounded to whole µs; [`Self::rtt_ms`] is exact
    /// for the times actually written.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        a_rtcp: SocketAddr,
        b_rtcp: SocketAddr,
        a_ssrc: u32,
        b_ssrc: u32,
        t_sr: Nanos,
        rtt_us: u64,
        dlsr: u32,
        report: ReportBlock,
    ) -> Self {
        let hold_us = (u64::from(dlsr) * 1_000_000 + 32_768) / 65_536;
        RtcpExchange {
            a_rtcp,
            b_rtcp,
            a_ssrc,
            b_ssrc,
            t_sr,
            a_clock_offset_ns: 3_217_000_123,
            sr_rtp_ts: 0,
            sr_packet_count: 0,
            sr_octet_count: 0,
            dlsr,
            t_rr: t_sr + us(rtt_us + hold_us),
            report,
        }
    }

    /// NTP timestamp in A's SR (A's clock, offset from the capture clock).
    pub fn sr_ntp(&self) -> u64 {
        ntp_from_nanos((self.t_sr as i64 + self.a_clock_offset_ns) as Nanos)
    }

    /// The LSR B echoes.
    pub fn lsr(&self) -> u32 {
        ntp_middle32(self.sr_ntp())
    }

    /// A's compound SR + SDES.
    pub fn sr_packet(&self) -> Vec<u8> {
        compound(&[
            rtcp_sr(
                self.a_ssrc,
                self.sr_ntp(),
                self.sr_rtp_ts,
                self.sr_packet_count,
                self.sr_octet_count,
                &[],
            ),
            rtcp_sdes_cname(self.a_ssrc, &format!("a@{}", self.a_rtcp.ip())),
        ])
    }

    /// B's compound RR + SDES, its block naming A's SR.
    pub fn rr_packet(&self) -> Vec<u8> {
        let block = ReportBlock {
            ssrc: self.a_ssrc,
            lsr: self.lsr(),
            dlsr: self.dlsr,
            ..self.report
        };
        compound(&[
            rtcp_rr(self.b_ssrc, &[block]),
            rtcp_sdes_cname(self.b_ssrc, &format!("b@{}", self.b_rtcp.ip())),
        ])
    }

    /// The SR (A→B at `t_sr`) and RR (B→A at `t_rr`) events.
    pub fn events(&self) -> Vec<Event> {
        vec![
            Event::udp(self.t_sr, self.a_rtcp, self.b_rtcp, self.sr_packet()),
            Event::udp(self.t_rr, self.b_rtcp, self.a_rtcp, self.rr_packet()),
        ]
    }

    /// RTT truth, ms: t_rr − t_sr − DLSR/65536 s.
    pub fn rtt_ms(&self) -> f64 {
        (self.t_rr - self.t_sr) as f64 / 1e6 - f64::from(self.dlsr) * 1000.0 / 65_536.0
    }
}

/// A capture under construction: events from any number of streams, dialogs and RTCP
/// exchanges, merged by time when written.
#[derive(Clone, Debug, Default)]
pub struct Scenario {
    /// Everything captured, in insertion order.
    pub events: Vec<Event>,
}

impl Scenario {
    /// An empty scenario.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one event.
    pub fn push(&mut self, e: Event) {
        self.events.push(e);
    }

    /// Add events.
    pub fn extend(&mut self, es: impl IntoIterator<Item = Event>) {
        self.events.extend(es);
    }

    /// Add a stream's packets and return its truth.
    pub fn add_stream(&mut self, s: &StreamSpec) -> Truth {
        self.events.extend(s.events());
        s.truth()
    }

    /// Add an RTCP exchange and return its RTT truth (ms).
    pub fn add_rtcp(&mut self, x: &RtcpExchange) -> f64 {
        self.events.extend(x.events());
        x.rtt_ms()
    }

    /// Events sorted by capture time (stable).
    pub fn sorted_events(&self) -> Vec<Event> {
        let mut v = self.events.clone();
        sort_events(&mut v);
        v
    }

    /// Write the capture to `path`.
    pub fn write(&self, path: &Path, format: FileFormat, link: LinkLayer) -> io::Result<()> {
        write_capture(path, format, link, &self.events)
    }

    /// The capture file bytes.
    pub fn to_bytes(&self, format: FileFormat, link: LinkLayer) -> Vec<u8> {
        capture_bytes(format, link, &self.events)
    }
}
