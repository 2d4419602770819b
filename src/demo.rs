//! `vqprobe run --demo`: a day of calls that looks like a real one, made up at start
//! and replayed through the live pipeline, so a first run has something to show.
//!
//! The generator is the test suite's own capture writer (`tests/support/capgen.rs`,
//! SIP, SDP, RTP and RTCP with known content), fed with a plan drawn from a fixed seed:
//! a few hundred calls over 24 hours on a contact centre's SBC (agents are the
//! `X-Agent-Id` of its voice agents; far ends are mobile numbers of several MNOs),
//! mostly clean, some with loss bursts, jitter, long round trips, one-way audio,
//! rejections and cancels. The day runs up to a "live point" and goes on for
//! [`LIVE_TAIL`] after it, so calls are in progress when the console opens and new ones
//! start while it is watched.
//!
//! The capture is streamed through a pipe (no file, no disk), in time order, merging
//! only the calls that overlap, so memory stays at a few calls' packets. The daemon
//! replays it with [`crate::daemon::Replay::live_from`] at the live point and
//! `rebase_time`: everything before the live point goes through as fast as possible and
//! lands in the last 24 hours, the rest plays in real time.
//!
//! Remote numbers come from [`MNOS`], the one place that ties a demo MNO to a number
//! prefix of the MNO table (`config/mno-prefixes.csv`, embedded in the binary).

// The tests' generator, shared as is (it depends on nothing but std).
#[path = "../tests/support/capgen.rs"]
mod capgen;

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use capgen::{
    ms, secs, CaptureWriter, Event, FileFormat, LinkLayer, Nanos, ReportBlock, RtcpExchange, Sdp,
    SipDialog, StreamSpec, XorShift,
};

/// The seed of the demo day: the same plan every run.
pub const SEED: u64 = 0x0DE3_0DA7;

/// The site's network (SBC and agents' media servers): give it to the daemon as
/// `capture.local_networks` so directions come out right.
pub const LOCAL_NET: &str = "10.10.0.0/16";

/// How long the day goes on, in real time, after the live point.
pub const LIVE_TAIL: Nanos = secs(10 * 60);

/// Calls that start in the 24 hours before the live point.
pub const DAY_CALLS: usize = 300;

/// The capture clock's live point (a fixed instant; the replay maps it to "now"). A
/// multiple of the 5-second scoring interval, so rebasing keeps every interval.
pub const LIVE_POINT: Nanos = 1_700_006_400 * 1_000_000_000;

const DAY: Nanos = secs(86_400);

/// One far-end network: its name in the MNO table, a prefix of its numbers there, how
/// often it calls, and how its leg behaves.
#[derive(Debug, Clone, Copy)]
pub struct DemoMno {
    /// Name as the MNO table gives it (`unknown` for a number it does not cover).
    pub name: &'static str,
    /// A prefix (E.164) of its numbers; subscriber digits are added to fill 12 or 13.
    pub prefix: &'static str,
    /// Digits in a full number of this plan, `+` excluded.
    pub digits: usize,
    /// Relative share of calls.
    pub weight: u32,
    /// Network round trip to its subscribers, ms (RTCP shows it).
    pub rtt_ms: u64,
    /// Background loss towards the site, ratio.
    pub loss: f64,
    /// Chance that a call has a loss burst on this leg.
    pub burst_chance: f64,
    /// Chance that a call's leg loses heavily from start to end (a poor call).
    pub bad_chance: f64,
}

/// Every far-end network of the demo, with a number prefix from the MNO table. When the
/// MNO data changes, this is the one list to adapt (a test checks each prefix still
/// names its MNO).
#[rustfmt::skip]
pub const MNOS: &[DemoMno] = &[
    mno("EE",                  "+447956",  12, 20,  38, 0.001, 0.04, 0.0),
    mno("Vodafone UK",         "+447785",  12, 18,  42, 0.001, 0.05, 0.0),
    mno("O2 UK",               "+447802",  12, 14,  45, 0.002, 0.06, 0.0),
    mno("Telekom Deutschland", "+491511",  13, 10,  62, 0.001, 0.04, 0.0),
    mno("Vodafone Germany",    "+491522",  13,  8,  66, 0.002, 0.06, 0.0),
    mno("Vodacom",             "+2782",    11,  6, 210, 0.004, 0.08, 0.0),
    mno("Safaricom",           "+25470",   12,  6, 240, 0.005, 0.08, 0.0),
    mno("MTN Nigeria",         "+234803",  13, 10, 320, 0.012, 0.40, 0.30),
    mno("unknown",             "+1212555", 11,  4,  95, 0.001, 0.05, 0.0),
];

/// A [`DemoMno`] in one line: name, prefix, digits, weight, RTT, loss, burst and bad
/// chances.
#[allow(clippy::too_many_arguments)]
const fn mno(
    name: &'static str,
    prefix: &'static str,
    digits: usize,
    weight: u32,
    rtt_ms: u64,
    loss: f64,
    burst_chance: f64,
    bad_chance: f64,
) -> DemoMno {
    DemoMno {
        name,
        prefix,
        digits,
        weight,
        rtt_ms,
        loss,
        burst_chance,
        bad_chance,
    }
}

/// The voice agents, their share of calls, and whether their media server's LAN adds
/// jitter to what they send (one of them does: it should come out as the worst agent).
pub const AGENTS: &[(&str, u32, bool)] = &[
    ("billing-01", 14, false),
    ("billing-02", 12, false),
    ("sales-01", 16, false),
    ("sales-02", 12, false),
    ("support-01", 16, false),
    ("support-02", 14, false),
    ("support-03", 12, true),
    ("retention-01", 8, false),
];

/// The site's numbers (Ofcom's range for drama, so no real line is named).
const SITE_NUMBER: &str = "+442079460";

/// How a call ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// Answered after `ring` ms, `media` ms of two-way audio (or one way), BYE.
    Answered {
        /// INVITE to 200 OK, ms.
        ring: u64,
        /// Media length, ms (a multiple of 20).
        media: u64,
    },
    /// A final error response.
    Rejected {
        /// SIP status code.
        code: u16,
        /// Its reason phrase.
        reason: &'static str,
    },
    /// CANCELled after `after` ms of ringing.
    Cancelled {
        /// INVITE to CANCEL, ms.
        after: u64,
    },
}

/// A stretch of a stream with extra loss or delay variation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Episode {
    /// Start, ms into the media.
    pub from: u64,
    /// Length, ms.
    pub len: u64,
    /// Loss ratio inside it.
    pub loss: f64,
    /// Arrival jitter amplitude inside it, µs.
    pub jitter_us: u64,
}

/// One planned call.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoCall {
    /// SIP Call-ID.
    pub call_id: String,
    /// `X-Agent-Id`.
    pub agent: &'static str,
    /// Whether the far end placed it.
    pub inbound: bool,
    /// The far end's number.
    pub remote: String,
    /// Index into [`MNOS`].
    pub mno: usize,
    /// The site's number.
    pub local: String,
    /// INVITE time, capture clock.
    pub start: Nanos,
    /// How it ends.
    pub outcome: Outcome,
    /// Background loss towards the site.
    pub loss_in: f64,
    /// Background arrival jitter of the far end's media, µs.
    pub jitter_in_us: u64,
    /// Background jitter of what the agent sends, µs.
    pub jitter_out_us: u64,
    /// Trouble on the far end's leg (towards the site).
    pub episodes_in: Vec<Episode>,
    /// Trouble on the agent's side (towards the far end).
    pub episodes_out: Vec<Episode>,
    /// The far end's media never arrives (NAT trouble): one-way audio.
    pub one_way: bool,
    /// Round trip of the RTCP exchanges, µs; `None`: no RTCP on this call.
    pub rtt_us: Option<u64>,
    /// Media address slot.
    pub slot: u32,
}

impl DemoCall {
    /// Media start (100 ms after the answer), when answered.
    fn media_start(&self) -> Option<(Nanos, u64)> {
        match self.outcome {
            Outcome::Answered { ring, media } => Some((self.start + ms(ring) + ms(100), media)),
            _ => None,
        }
    }

    /// The capture time of its last packet.
    pub fn end(&self) -> Nanos {
        match self.outcome {
            Outcome::Answered { ring, media } => self.start + ms(ring + 100 + media + 200),
            Outcome::Rejected { .. } => self.start + ms(303),
            Outcome::Cancelled { after } => self.start + ms(after + 8),
        }
    }
}

/// The demo day.
#[derive(Debug, Clone)]
pub struct DemoPlan {
    /// Calls in INVITE order.
    pub calls: Vec<DemoCall>,
    /// Capture time of the live point ([`LIVE_POINT`]).
    pub live_point: Nanos,
}

impl DemoPlan {
    /// Calls, agents and MNOs it holds.
    pub fn counts(&self) -> (usize, usize, usize) {
        let agents: BTreeSet<&str> = self.calls.iter().map(|c| c.agent).collect();
        let mnos: BTreeSet<usize> = self.calls.iter().map(|c| c.mno).collect();
        (self.calls.len(), agents.len(), mnos.len())
    }
}

/// Relative call volume at a UTC second of the day: a working day, quiet nights.
fn volume_at(second_of_day: u64) -> f64 {
    match second_of_day / 3600 {
        0..=5 => 0.12,
        6 => 0.3,
        7 => 0.6,
        8..=11 => 1.0,
        12 | 13 => 0.8,
        14..=17 => 1.0,
        18 | 19 => 0.55,
        _ => 0.25,
    }
}

fn pick<T: Copy>(rng: &mut XorShift, items: &[T], weight: impl Fn(&T) -> u32) -> (usize, T) {
    let total: u64 = items.iter().map(|i| u64::from(weight(i))).sum();
    let mut r = rng.below(total.max(1));
    for (k, i) in items.iter().enumerate() {
        let w = u64::from(weight(i));
        if r < w {
            return (k, *i);
        }
        r -= w;
    }
    (0, items[0])
}

/// Talk time of an answered call, ms: mostly short (voice agents), a tail of long ones.
fn talk_ms(rng: &mut XorShift, long: bool) -> u64 {
    let s = if long {
        rng.between(150, 330)
    } else {
        match rng.below(10) {
            0..=5 => rng.between(12, 45),
            6..=8 => rng.between(45, 95),
            _ => rng.between(95, 200),
        }
    };
    u64::try_from(s).unwrap_or(30) * 1000
}

/// Plans the demo day. `live_second_of_day` is the UTC second of the day the live
/// point will be replayed at (it shapes the day's busy hours, nothing else).
pub fn plan(live_second_of_day: u64) -> DemoPlan {
    let mut rng = XorShift::new(SEED);
    let live = LIVE_POINT;
    let mut starts: Vec<(Nanos, bool)> = Vec::new();
    // The day: call starts drawn against the working-day volume curve.
    while starts.len() < DAY_CALLS {
        let back = rng.below(DAY / 1_000_000) * 1_000_000; // ms resolution
        let t = live - DAY + back;
        let sod = (live_second_of_day + 86_400 - (live - t) / 1_000_000_000 % 86_400) % 86_400;
        if rng.unit() < volume_at(sod) {
            starts.push((t, false));
        }
    }
    // Now and the next minutes: some calls under way at the live point, more starting.
    for k in 0..3u64 {
        starts.push((live - secs(40 + 35 * k), true));
    }
    for k in 0..7u64 {
        starts.push((live + secs(30 + 75 * k) + ms(rng.below(20_000)), true));
    }
    starts.sort_by_key(|s| s.0);

    // Each call's own draws depend on its index only, so who calls whom and how it
    // goes is the same at any hour; only the times follow the clock.
    let calls = starts
        .into_iter()
        .enumerate()
        .map(|(i, (start, live_call))| {
            let mut rng = XorShift::for_index(SEED ^ 0xCA11, i as u64);
            plan_call(&mut rng, i, start, live_call)
        })
        .collect();
    DemoPlan {
        calls,
        live_point: live,
    }
}

fn plan_call(rng: &mut XorShift, i: usize, start: Nanos, live_call: bool) -> DemoCall {
    let (mno_idx, mno) = pick(rng, MNOS, |m| m.weight);
    let (_, (agent, _, noisy_lan)) = pick(rng, AGENTS, |a| a.1);
    let inbound = rng.chance(0.7);
    let digits = mno.digits.saturating_sub(mno.prefix.len() - 1);
    let subscriber: String = (0..digits)
        .map(|_| char::from(b'0' + rng.below(10) as u8))
        .collect();
    let remote = format!("{}{subscriber}", mno.prefix);
    let local = format!("{SITE_NUMBER}{:03}", 100 + rng.below(60));
    // Outcome: live calls are answered and long enough to watch.
    let roll = rng.unit();
    let outcome = if !live_call && roll < 0.035 {
        Outcome::Rejected {
            code: 486,
            reason: "Busy Here",
        }
    } else if !live_call && roll < 0.055 {
        Outcome::Rejected {
            code: 480,
            reason: "Temporarily Unavailable",
        }
    } else if !live_call && roll < 0.065 {
        Outcome::Rejected {
            code: 503,
            reason: "Service Unavailable",
        }
    } else if !live_call && roll < 0.07 {
        Outcome::Rejected {
            code: 404,
            reason: "Not Found",
        }
    } else if !live_call && roll < 0.12 {
        Outcome::Cancelled {
            after: 3_000 + rng.below(20_000),
        }
    } else {
        Outcome::Answered {
            ring: 1_500 + rng.below(7_000),
            media: talk_ms(rng, live_call),
        }
    };
    let media = match outcome {
        Outcome::Answered { media, .. } => media,
        _ => 0,
    };
    let mut episodes_in = Vec::new();
    let mut episodes_out = Vec::new();
    let mut one_way = false;
    if media > 0 {
        // Trouble on the far end's leg: a loss burst of a few seconds, more often on the
        // networks that have it, sometimes with a jitter storm.
        if rng.chance(mno.burst_chance) {
            let len = 2_000 + rng.below(9_000);
            let from = rng.below(media.saturating_sub(len).max(1));
            episodes_in.push(Episode {
                from,
                len,
                loss: 0.15 + rng.unit() * 0.45,
                jitter_us: if rng.chance(0.4) { 30_000 } else { 0 },
            });
        }
        // A leg that loses all along: a poor call.
        if rng.chance(mno.bad_chance) {
            episodes_in.push(Episode {
                from: 0,
                len: media,
                loss: 0.10 + rng.unit() * 0.15,
                jitter_us: 20_000,
            });
        }
        // A jittery, lossy stretch on the agent's side: rare, but frequent on the agent
        // behind the congested LAN.
        if rng.chance(if noisy_lan { 0.6 } else { 0.03 }) {
            let len = 20_000 + rng.below(40_000);
            let from = rng.below(media.saturating_sub(len).max(1));
            episodes_out.push(Episode {
                from,
                len,
                loss: if noisy_lan {
                    0.12 + rng.unit() * 0.18
                } else {
                    0.01
                },
                jitter_us: 60_000 + 20_000 * rng.below(5),
            });
        }
        one_way = !live_call && rng.chance(0.02);
    }
    let rtt_us = rng
        .chance(0.7)
        .then(|| mno.rtt_ms * 1000 + rng.below(mno.rtt_ms * 150));
    DemoCall {
        call_id: format!("demo-{i:04}-{:08x}@sbc.demo.vqprobe", rng.next_u64() as u32),
        agent,
        inbound,
        remote,
        mno: mno_idx,
        local,
        start,
        outcome,
        loss_in: mno.loss * rng.unit() * 2.0,
        jitter_in_us: 500 + 125 * rng.below(16),
        jitter_out_us: if noisy_lan { 3_000 } else { 375 },
        episodes_in,
        episodes_out,
        one_way,
        rtt_us,
        slot: u32::try_from(i).unwrap_or(0),
    }
}

fn local_sip() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 10, 0, 1)), 5060)
}

fn carrier_sip() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)), 5060)
}

/// The agent side's media address of slot `k` (a media server per 32 slots).
fn site_media(k: u32) -> SocketAddr {
    let server = (k / 32 % 200) as u8;
    let port = 20_000 + 2 * (k % 5_000) as u16;
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 10, 1, 10 + server)), port)
}

/// The carrier's media gateway address of slot `k`.
fn carrier_media(k: u32) -> SocketAddr {
    let port = 30_000 + 2 * (k % 10_000) as u16;
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, 20 + (k % 8) as u8)),
        port,
    )
}

fn rtcp_port(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip(), a.port() + 1)
}

/// One direction's packets: which are lost and each one's arrival delay.
struct Leg<'a> {
    spec: StreamSpec,
    seed: u64,
    loss: f64,
    jitter_us: u64,
    episodes: &'a [Episode],
}

impl Leg<'_> {
    /// Arrival events of the stream's packets (lost ones left out), unsorted, and the
    /// number lost.
    fn events(&self, out: &mut Vec<Event>) -> u32 {
        let mut lost = 0;
        for i in 0..self.spec.count {
            let at_ms = u64::from(i) * 20;
            let ep = self
                .episodes
                .iter()
                .find(|e| at_ms >= e.from && at_ms < e.from + e.len);
            let loss = ep.map_or(self.loss, |e| e.loss.max(self.loss));
            let jitter = ep.map_or(self.jitter_us, |e| e.jitter_us.max(self.jitter_us));
            let mut rng = XorShift::for_index(self.seed, u64::from(i));
            // The first and last packets always arrive: they anchor expected.
            if i != 0 && i + 1 != self.spec.count && rng.chance(loss) {
                lost += 1;
                continue;
            }
            let steps = i64::try_from(jitter / 125).unwrap_or(0);
            let delay_us = if i == 0 || steps == 0 {
                0
            } else {
                rng.between(0, steps) * 125
            };
            let t = self.spec.nominal_time(i) + u64::try_from(delay_us).unwrap_or(0) * 1_000;
            out.push(Event::udp(
                t,
                self.spec.src,
                self.spec.dst,
                self.spec.packet(i),
            ));
        }
        lost
    }
}

/// The interarrival jitter the far end reports at `off` into the media, in 8 kHz units:
/// about a third of the delay spread it saw over the last 10 s (delays are uniform).
fn reported_jitter(c: &DemoCall, off: Nanos) -> u32 {
    let (to, from) = (off / 1_000_000, (off / 1_000_000).saturating_sub(10_000));
    let spread = c
        .episodes_out
        .iter()
        .filter(|e| e.from < to && e.from + e.len > from)
        .map(|e| e.jitter_us)
        .fold(c.jitter_out_us, u64::max);
    u32::try_from(spread / 3 / 125).unwrap_or(u32::MAX)
}

/// Every packet of a call, in capture order.
pub fn call_events(c: &DemoCall) -> Vec<Event> {
    let (caller, callee) = if c.inbound {
        (carrier_sip(), local_sip())
    } else {
        (local_sip(), carrier_sip())
    };
    let (site, far) = (site_media(c.slot), carrier_media(c.slot));
    let (caller_media, callee_media) = if c.inbound { (far, site) } else { (site, far) };
    let (from, to) = if c.inbound {
        (&c.remote, &c.local)
    } else {
        (&c.local, &c.remote)
    };
    let dialog =
        SipDialog::new(&c.call_id, from, to, caller, callee).with_header("X-Agent-Id", c.agent);
    let offer = Sdp::pcmu(caller_media);
    let answer = Sdp::pcmu(callee_media);
    let mut ev = match c.outcome {
        Outcome::Rejected { code, reason } => dialog.rejected(c.start, code, reason, &offer),
        Outcome::Cancelled { after } => dialog.cancelled(c.start, c.start + ms(after), &offer),
        Outcome::Answered { ring, media } => {
            let t_answer = c.start + ms(ring);
            let t_bye = t_answer + ms(100 + media + 200);
            dialog.completed(c.start, t_answer, t_bye, &offer, &answer)
        }
    };
    if let Some((media_start, media)) = c.media_start() {
        let count = u32::try_from(media / 20).unwrap_or(0);
        let seed = SEED ^ (u64::from(c.slot) << 20);
        let ssrc_in = 0x1000_0000 ^ (c.slot.wrapping_mul(0x9E37_79B9) & 0x0FFF_FFFE);
        let ssrc_out = ssrc_in ^ 1;
        let inbound = Leg {
            spec: StreamSpec::pcmu(far, site, ssrc_in, media_start, count),
            seed,
            loss: c.loss_in,
            jitter_us: c.jitter_in_us,
            episodes: &c.episodes_in,
        };
        // The agent starts talking a few ms after the far end.
        let outbound = Leg {
            spec: StreamSpec::pcmu(site, far, ssrc_out, media_start + ms(7), count),
            seed: seed + 1,
            loss: 0.0,
            jitter_us: c.jitter_out_us,
            episodes: &c.episodes_out,
        };
        if !c.one_way {
            inbound.events(&mut ev);
        }
        let lost_out = outbound.events(&mut ev);
        if let Some(rtt_us) = c.rtt_us {
            // The site sends an SR every 10 s; the far end answers with an RR reporting
            // what it lost of the agent's stream.
            let mut k = 0u32;
            while u64::from(k) * 10_000 + 5_000 < media {
                let off = ms(5_000 + u64::from(k) * 10_000);
                let t_sr = media_start + ms(7) + off + ms(3);
                let sent = u32::try_from(off / ms(20)).unwrap_or(0).max(1);
                let lost = if count > 0 {
                    u64::from(lost_out) * u64::from(sent) / u64::from(count)
                } else {
                    0
                };
                let mut x = RtcpExchange::new(
                    rtcp_port(site),
                    rtcp_port(far),
                    ssrc_out,
                    ssrc_in,
                    t_sr,
                    rtt_us,
                    6_554,
                    ReportBlock {
                        fraction_lost: u8::try_from(lost * 256 / u64::from(sent)).unwrap_or(255),
                        cumulative_lost: i32::try_from(lost).unwrap_or(0),
                        ext_highest_seq: u32::from(outbound.spec.seq(sent - 1)),
                        jitter: reported_jitter(c, off),
                        ..ReportBlock::default()
                    },
                );
                x.sr_rtp_ts = outbound.spec.rtp_ts(sent);
                x.sr_packet_count = sent;
                x.sr_octet_count = sent * 160;
                ev.extend(x.events());
                k += 1;
            }
        }
    }
    ev.sort_by_key(|e| e.time);
    ev
}

/// Writes the plan as a pcap (µs, Ethernet) to `out`, in capture order, holding only
/// the calls in progress at each moment. Returns the packets written.
pub fn write_capture<W: Write>(plan: &DemoPlan, out: W) -> io::Result<u64> {
    let mut w = CaptureWriter::new(out, FileFormat::PcapMicros, LinkLayer::Ethernet)?;
    // Open calls' remaining events (reversed, so the next is at the end), merged by a
    // heap of (next time, call).
    let mut open: Vec<Vec<Event>> = vec![Vec::new(); plan.calls.len()];
    let mut heap: BinaryHeap<Reverse<(Nanos, usize)>> = BinaryHeap::new();
    let mut next_call = 0;
    loop {
        // A call joins the merge once the merge reaches its INVITE (none of its packets
        // comes earlier).
        while let Some(c) = plan.calls.get(next_call) {
            if heap.peek().is_some_and(|Reverse((t, _))| *t < c.start) {
                break;
            }
            let mut ev = call_events(c);
            ev.reverse();
            if let Some(first) = ev.last() {
                heap.push(Reverse((first.time, next_call)));
            }
            open[next_call] = ev;
            next_call += 1;
        }
        let Some(Reverse((_, k))) = heap.pop() else {
            break;
        };
        if let Some(e) = open[k].pop() {
            w.write_event(&e)?;
        }
        if let Some(next) = open[k].last() {
            heap.push(Reverse((next.time, k)));
        } else {
            open[k] = Vec::new();
        }
    }
    let n = w.records();
    w.finish()?;
    Ok(n)
}

/// The demo capture being written into a pipe whose read end the replay opens by path
/// (`/dev/fd/N`).
#[derive(Debug)]
pub struct DemoSource {
    reader: rustix::fd::OwnedFd,
    calls: usize,
    agents: usize,
    mnos: usize,
}

impl DemoSource {
    /// Plans the day for the current UTC hour and starts writing it on a thread of its
    /// own (it blocks until the replay reads, and stops when the replay closes the
    /// pipe).
    pub fn start() -> anyhow::Result<DemoSource> {
        use anyhow::Context as _;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let plan = plan(now % 86_400);
        let (calls, agents, mnos) = plan.counts();
        let (reader, writer) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .context("making a pipe for the demo capture")?;
        // A larger pipe lets the writer run ahead in bigger steps; the default works too.
        let _ = rustix::pipe::fcntl_setpipe_size(&writer, 1 << 20);
        std::thread::Builder::new()
            .name("vqprobe-demo".into())
            .spawn(move || {
                let out = io::BufWriter::with_capacity(1 << 20, std::fs::File::from(writer));
                match write_capture(&plan, out) {
                    Ok(_) => {}
                    // The replay stopped reading (the daemon is stopping).
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
                    Err(e) => eprintln!("vqprobe: demo capture: {e}"),
                }
            })
            .context("starting the demo generator")?;
        Ok(DemoSource {
            reader,
            calls,
            agents,
            mnos,
        })
    }

    /// Where the replay opens the capture.
    pub fn path(&self) -> std::path::PathBuf {
        use rustix::fd::AsRawFd as _;
        std::path::PathBuf::from(format!("/dev/fd/{}", self.reader.as_raw_fd()))
    }

    /// The capture instant the replay should map to now ([`LIVE_POINT`]).
    pub fn live_from(&self) -> i64 {
        i64::try_from(LIVE_POINT).unwrap_or(i64::MAX)
    }

    /// One line for the start-up message.
    pub fn summary(&self) -> String {
        format!(
            "{} calls ({} agents, {} MNOs) over the last 24 h, then {} minutes live",
            self.calls,
            self.agents,
            self.mnos,
            LIVE_TAIL / secs(60)
        )
    }

    /// Call once the replay has opened [`DemoSource::path`]: lets go of this end, so the
    /// writer sees the pipe close when the replay does.
    pub fn opened(self) -> anyhow::Result<()> {
        drop(self.reader);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vqprobe_engine::mno::MnoTable;

    #[test]
    fn every_demo_number_names_its_mno() {
        let table = MnoTable::embedded();
        let p = plan(12 * 3600);
        for c in &p.calls {
            let want = MNOS[c.mno].name;
            let got = table.lookup(&c.remote).map_or("unknown", |(m, _)| m);
            assert_eq!(got, want, "{} ({})", c.remote, c.call_id);
        }
    }

    #[test]
    fn the_day_is_a_day() {
        let p = plan(15 * 3600);
        let (calls, agents, mnos) = p.counts();
        assert_eq!(calls, DAY_CALLS + 10);
        assert_eq!(agents, AGENTS.len());
        assert_eq!(mnos, MNOS.len());
        let first = p.calls.first().map(|c| c.start).unwrap_or(0);
        assert!(first >= LIVE_POINT - DAY);
        let live = p
            .calls
            .iter()
            .filter(|c| c.start < LIVE_POINT && c.end() > LIVE_POINT)
            .count();
        assert!(live >= 3, "{live} calls under way at the live point");
        assert!(p.calls.iter().any(|c| c.one_way));
        assert!(p
            .calls
            .iter()
            .any(|c| matches!(c.outcome, Outcome::Cancelled { .. })));
        assert!(p
            .calls
            .iter()
            .any(|c| matches!(c.outcome, Outcome::Rejected { .. })));
        // Same plan every time for the same hour.
        assert_eq!(plan(15 * 3600).calls, p.calls);
    }

    #[test]
    fn capture_is_in_time_order() {
        let mut p = plan(10 * 3600);
        p.calls.truncate(40);
        let mut bytes = Vec::new();
        let n = write_capture(&p, &mut bytes).unwrap();
        assert!(n > 1000);
        // pcap records: 24-byte header, then 16-byte record headers.
        let mut off = 24;
        let mut last = 0u64;
        let mut seen = 0;
        while off + 16 <= bytes.len() {
            let sec = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap());
            let usec = u32::from_le_bytes(bytes[off + 4..off + 8].try_into().unwrap());
            let len = u32::from_le_bytes(bytes[off + 8..off + 12].try_into().unwrap()) as usize;
            let t = u64::from(sec) * 1_000_000 + u64::from(usec);
            assert!(t >= last, "record {seen} goes back in time");
            last = t;
            off += 16 + len;
            seen += 1;
        }
        assert_eq!(seen, n);
    }
}
