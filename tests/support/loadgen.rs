//! The load generator behind `examples/gen_load` and the allocation bench: ~N
//! concurrent SIP calls, each with two-way PCMU 20 ms RTP (seeded small jitter, ~0.5 %
//! loss) and RTCP SR every 5 s per direction.
//!
//! Packets are produced per 20 ms tick and merged through a small heap, so memory stays at
//! about one tick of packets however large the file. Needs `mod capgen` at the crate root.

use crate::capgen::*;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

const TICK: Nanos = ms(20);
/// Largest arrival delay either way; the merge holds packets this long.
const MAX_JITTER_US: u64 = 2_000;
const LOSS_RATIO: f64 = 0.005;
const RTCP_INTERVAL: Nanos = secs(5);

/// What to generate.
pub struct Options {
    /// Output pcap.
    pub out: PathBuf,
    /// Concurrent calls.
    pub calls: u32,
    /// RTP packets in all (at least).
    pub packets: u64,
    /// Generator seed.
    pub seed: u64,
}

/// One call's two media streams (its SIP and RTCP go straight into the control events).
struct Call {
    a_to_b: StreamSpec,
    b_to_a: StreamSpec,
}

/// A datagram waiting in the merge heap; ordered by time, then by insertion order so
/// equal times keep a deterministic order.
struct Pending {
    time: Nanos,
    order: u64,
    datagram: Datagram,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.time, self.order) == (o.time, o.order)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    // Reversed: BinaryHeap is a max-heap and we pop the earliest first.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.time, o.order).cmp(&(self.time, self.order))
    }
}

/// Caller numbers spread over a few national ranges (GB mobile operators, DE, the Ofcom
/// drama range and a NANP fictional range) so MNO lookups see hits and misses.
fn caller_number(c: u32) -> String {
    const PREFIXES: [&str; 5] = ["+447785", "+447956", "+491511", "+447700900", "+1555"];
    let p = PREFIXES[c as usize % PREFIXES.len()];
    // 12 digits after the "+", well inside E.164's 15.
    format!("{p}{:0w$}", c, w = 13 - p.len())
}

fn host(net: u8, c: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, net, (c / 250) as u8, (c % 250 + 1) as u8))
}

/// RTCP for one call: each side sends SR + SDES every 5 s with a report block about the
/// other side's stream (LSR/DLSR naming the peer's latest SR), as real endpoints do.
fn rtcp_events(call: &Call, seed: u64) -> Vec<Event> {
    let mut rng = XorShift::new(seed);
    let mut out = Vec::new();
    let mut last_sr: [Option<(Nanos, u64)>; 2] = [None, None];
    let sides = [&call.a_to_b, &call.b_to_a];
    let mut k = 1;
    loop {
        let mut any = false;
        for (side, me) in sides.iter().enumerate() {
            let peer = sides[1 - side];
            // B reports ~1.3 s after A so the two SR streams interleave.
            let t = me.start_time + k * RTCP_INTERVAL + side as u64 * ms(1_300) + ms(rng.below(40));
            if t >= me.end_time() {
                continue;
            }
            any = true;
            let sent = ((t - me.start_time) / TICK + 1).min(u64::from(me.count)) as u32;
            let got =
                ((t.saturating_sub(peer.start_time)) / TICK).min(u64::from(peer.count)) as u32;
            let mut blocks = Vec::new();
            if got > 0 {
                let lost = peer.loss.range(..got).count() as u32;
                let prev = got.saturating_sub((RTCP_INTERVAL / TICK) as u32);
                let lost_int = peer.loss.range(prev..got).count() as u32;
                let (lsr, dlsr) = match last_sr[1 - side] {
                    Some((t_peer, ntp)) => {
                        let hold = (t - t_peer) * 65_536 / NANOS_PER_SEC;
                        (ntp_middle32(ntp), hold as u32)
                    }
                    None => (0, 0),
                };
                blocks.push(ReportBlock {
                    ssrc: peer.ssrc,
                    fraction_lost: ((lost_int * 256) / (got - prev).max(1)) as u8,
                    cumulative_lost: lost as i32,
                    ext_highest_seq: u32::from(peer.seq(got - 1)),
                    jitter: 8 + rng.below(16) as u32,
                    lsr,
                    dlsr,
                });
            }
            let ntp = ntp_from_nanos(t);
            last_sr[side] = Some((t, ntp));
            let payload = compound(&[
                rtcp_sr(
                    me.ssrc,
                    ntp,
                    me.rtp_ts(sent),
                    sent,
                    sent * me.payload_len as u32,
                    &blocks,
                ),
                rtcp_sdes_cname(me.ssrc, &format!("ep{:08x}@{}", me.ssrc, me.src.ip())),
            ]);
            let src = SocketAddr::new(me.src.ip(), me.src.port() + 1);
            let dst = SocketAddr::new(me.dst.ip(), me.dst.port() + 1);
            out.push(Event::udp(t, src, dst, payload));
        }
        if !any {
            break;
        }
        k += 1;
    }
    out
}

/// Writes the capture; prints a one-line summary.
pub fn run(o: &Options) -> std::io::Result<()> {
    // Grow the streams until the packets actually sent (after loss) reach the target.
    let mut per_stream = o.packets.div_ceil(2 * u64::from(o.calls)).max(1) as u32;
    let (calls, control) = loop {
        let (calls, control) = build(o, per_stream);
        let sent: u64 = calls
            .iter()
            .flat_map(|c| [&c.a_to_b, &c.b_to_a])
            .map(|s| u64::from(s.count) - s.loss.len() as u64)
            .sum();
        if sent >= o.packets {
            break (calls, control);
        }
        per_stream += ((o.packets - sent).div_ceil(2 * u64::from(o.calls))) as u32;
    };
    write(o, &calls, &control, per_stream)
}

/// The calls, and their SIP and RTCP events sorted by time.
fn build(o: &Options, per_stream: u32) -> (Vec<Call>, Vec<Event>) {
    let mut calls = Vec::with_capacity(o.calls as usize);
    let mut control: Vec<Event> = Vec::new();
    for c in 0..o.calls {
        let (a_ip, b_ip) = (host(1, c), host(2, c));
        let a = SocketAddr::new(a_ip, 20_000 + 2 * (c % 5_000) as u16);
        let b = SocketAddr::new(b_ip, 30_000 + 2 * (c % 5_000) as u16);
        // Calls start spread over the first second so they overlap almost entirely.
        let t_invite = BASE_TIME + u64::from(c) * (NANOS_PER_SEC / u64::from(o.calls));
        let t_answer = t_invite + ms(300);
        let start = t_answer + ms(20);
        let seed = o.seed.wrapping_mul(1_000_003).wrapping_add(u64::from(c));
        let mut a_to_b = StreamSpec::pcmu(a, b, 0x1000_0000 + c, start, per_stream).with_jitter(
            seed * 2,
            MAX_JITTER_US,
            1,
        );
        a_to_b.loss = random_loss(seed * 2, per_stream, LOSS_RATIO);
        let mut b_to_a = StreamSpec::pcmu(b, a, 0x2000_0000 + c, start + us(7_000), per_stream)
            .with_jitter(seed * 2 + 1, MAX_JITTER_US, 1);
        b_to_a.loss = random_loss(seed * 2 + 1, per_stream, LOSS_RATIO);
        let dialog = SipDialog::new(
            &format!("load-{c:05}-{seed:x}@capgen"),
            &caller_number(c),
            &format!("+1555{:07}", c),
            SocketAddr::new(a_ip, 5060),
            SocketAddr::new(b_ip, 5060),
        )
        .with_header("X-Agent-Id", &format!("agent-{}", c % 40));
        let call = Call { a_to_b, b_to_a };
        let t_bye = call.b_to_a.end_time() + ms(40);
        control.extend(dialog.completed(t_invite, t_answer, t_bye, &Sdp::pcmu(a), &Sdp::pcmu(b)));
        control.extend(rtcp_events(&call, seed ^ 0xC0FFEE));
        calls.push(call);
    }
    sort_events(&mut control);
    (calls, control)
}

fn write(o: &Options, calls: &[Call], control: &[Event], per_stream: u32) -> std::io::Result<()> {
    let mut w = CaptureWriter::create(&o.out, FileFormat::PcapMicros, LinkLayer::Ethernet)?;
    let mut heap: BinaryHeap<Pending> = BinaryHeap::new();
    let mut order = 0u64;
    let mut next_control = 0usize;
    let mut rtp = 0u64;
    let last_end = calls
        .iter()
        .map(|c| c.a_to_b.end_time().max(c.b_to_a.end_time()))
        .max()
        .unwrap_or(BASE_TIME);
    let mut push = |heap: &mut BinaryHeap<Pending>, time: Nanos, datagram: Datagram| {
        order += 1;
        heap.push(Pending {
            time,
            order,
            datagram,
        });
    };
    let mut window = BASE_TIME;
    let mut last_written = 0;
    while window <= last_end + TICK || next_control < control.len() || !heap.is_empty() {
        let window_end = window + TICK;
        for call in calls {
            for s in [&call.a_to_b, &call.b_to_a] {
                // The one packet (if any) whose nominal time falls in this window.
                if window_end <= s.start_time {
                    continue;
                }
                let i = (window.saturating_sub(s.start_time)).div_ceil(TICK);
                if i >= u64::from(s.count) || s.nominal_time(i as u32) >= window_end {
                    continue;
                }
                let i = i as u32;
                for t in s.sends_of(i) {
                    let d = Datagram {
                        src: s.src,
                        dst: s.dst,
                        payload: s.packet(i),
                    };
                    push(&mut heap, t, d);
                    rtp += 1;
                }
            }
        }
        while next_control < control.len() && control[next_control].time < window_end {
            let e = control[next_control].clone();
            push(&mut heap, e.time, e.datagram);
            next_control += 1;
        }
        // Media of later windows arrives no earlier than this (control events of later
        // windows are later still), so everything before it is final.
        let safe = window_end - us(MAX_JITTER_US);
        let drain_all = window > last_end + TICK && next_control >= control.len();
        while heap.peek().is_some_and(|p| drain_all || p.time < safe) {
            let p = heap.pop().expect("peeked");
            assert!(p.time >= last_written, "merge emitted out of order");
            last_written = p.time;
            w.write_datagram(p.time, &p.datagram)?;
        }
        window = window_end;
    }
    let records = w.records();
    w.finish()?;
    let size = std::fs::metadata(&o.out)?.len();
    println!(
        "wrote {}: {} records ({} RTP in {} streams of {} packets, {} SIP/RTCP), {:.1} MiB, {:.1} s",
        o.out.display(),
        records,
        rtp,
        2 * calls.len(),
        per_stream,
        records - rtp,
        size as f64 / (1024.0 * 1024.0),
        (last_end - BASE_TIME) as f64 / 1e9
    );
    Ok(())
}
