//! Test-only capture mixes whose calls are known in advance, for the tests that drive a
//! real `vqprobe run --replay` and read it back over HTTP (`tests/daemon_api.rs`,
//! `tests/daemon_prometheus.rs`).
//!
//! A mix is a list of [`MixCall`]s: agent (the `X-Agent-Id` header), direction, the remote
//! number (chosen where libphonenumber's carrier data names the MNO), outcome, media
//! length, and seeded loss per direction. [`write_mix`] turns it into a pcap with SIP
//! signalling, two-way PCMU RTP and optional RTCP (an SR/RR pair giving a round trip).
//! [`write_rtp_only`] writes RTP-only flows (no SIP) behind a lead-in packet, for pushed
//! metadata.
//!
//! The site's side is [`LOCAL_NET`] (give it to both `analyze --local-net` and the
//! daemon's `capture.local_networks`, so both agree on directions); the far side is
//! 198.51.100.0/24. Every call has its own media addresses, so no two calls share a flow.
//!
//! Include it after capgen:
//! `#[path = "support/capgen.rs"] mod capgen;` and
//! `#[path = "support/callmix.rs"] mod callmix;`.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use crate::capgen::{
    ms, random_loss, secs, Event, FileFormat, LinkLayer, Nanos, ReportBlock, RtcpExchange,
    Scenario, Sdp, SipDialog, StreamSpec,
};

/// The probed site's network (agents and the SBC).
pub const LOCAL_NET: &str = "10.10.0.0/16";

/// How a call ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answered, media both ways, BYE from the caller.
    Completed,
    /// Refused with 486 Busy Here (no media).
    Busy,
    /// CANCELled while ringing (no media).
    Cancelled,
}

/// One call of a mix.
#[derive(Clone, Debug)]
pub struct MixCall {
    /// SIP Call-ID (the daemon's `call_id` for a SIP call).
    pub sip_call_id: String,
    /// `X-Agent-Id` value.
    pub agent: &'static str,
    /// Whether the far end placed the call.
    pub inbound: bool,
    /// The far end's number (decides the MNO).
    pub remote_number: &'static str,
    /// The agent side's number.
    pub local_number: &'static str,
    /// How it ends.
    pub outcome: Outcome,
    /// INVITE time after the mix's base, ms.
    pub start_ms: u64,
    /// Media length, ms (completed calls), a multiple of 20.
    pub media_ms: u64,
    /// Loss ratio of the stream towards the site (seeded, exact pattern).
    pub loss_in: f64,
    /// Loss ratio of the stream away from the site.
    pub loss_out: f64,
    /// Arrival jitter amplitude, µs (quantised to 125 µs).
    pub jitter_us: u64,
    /// Add an RTCP SR (site) / RR (far end) exchange with this network round trip, µs.
    pub rtcp_rtt_us: Option<u64>,
}

impl MixCall {
    /// The number in `From` (the caller's).
    pub fn caller_number(&self) -> &'static str {
        if self.inbound {
            self.remote_number
        } else {
            self.local_number
        }
    }

    /// The number in `To` (the callee's).
    pub fn callee_number(&self) -> &'static str {
        if self.inbound {
            self.local_number
        } else {
            self.remote_number
        }
    }

    /// `inbound` or `outbound`.
    pub fn direction(&self) -> &'static str {
        if self.inbound {
            "inbound"
        } else {
            "outbound"
        }
    }

    /// The status the probe must give it.
    pub fn status(&self) -> &'static str {
        match self.outcome {
            Outcome::Completed => "completed",
            Outcome::Busy => "failed",
            Outcome::Cancelled => "abandoned",
        }
    }

    /// INVITE time after the base, ns.
    pub fn start(&self) -> Nanos {
        ms(self.start_ms)
    }

    /// When its last packet is sent, after the base, ns.
    pub fn end(&self) -> Nanos {
        match self.outcome {
            Outcome::Completed => self.start() + ms(900) + ms(self.media_ms) + ms(120),
            Outcome::Busy => self.start() + ms(303),
            Outcome::Cancelled => self.start() + ms(2000) + ms(8),
        }
    }
}

/// Site media address of call `i` (10.10.1.x).
pub fn local_media(i: usize) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(10, 10, 1, 10 + i as u8)),
        20_000 + 2 * i as u16,
    )
}

/// Far-end media address of call `i` (198.51.100.x).
pub fn remote_media(i: usize) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10 + i as u8)),
        30_000 + 2 * i as u16,
    )
}

/// The SBC's SIP socket.
pub fn local_sip() -> SocketAddr {
    "10.10.0.1:5060".parse().expect("address")
}

/// The carrier's SIP socket.
pub fn remote_sip() -> SocketAddr {
    "198.51.100.1:5060".parse().expect("address")
}

fn rtcp_of(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip(), a.port() + 1)
}

/// Truth of a call's streams: packets sent and lost per direction (site-bound first).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MediaTruth {
    /// Packets the far end sent towards the site.
    pub sent_in: u32,
    /// Of which lost.
    pub lost_in: u32,
    /// Packets the site sent to the far end.
    pub sent_out: u32,
    /// Of which lost.
    pub lost_out: u32,
}

/// Adds call `i` (`c`) to `sc` at `base`; returns its media truth.
pub fn add_call(sc: &mut Scenario, base: Nanos, i: usize, c: &MixCall) -> MediaTruth {
    let (caller, callee) = if c.inbound {
        (remote_sip(), local_sip())
    } else {
        (local_sip(), remote_sip())
    };
    let (caller_media, callee_media) = if c.inbound {
        (remote_media(i), local_media(i))
    } else {
        (local_media(i), remote_media(i))
    };
    let dialog = SipDialog::new(
        &c.sip_call_id,
        c.caller_number(),
        c.callee_number(),
        caller,
        callee,
    )
    .with_header("X-Agent-Id", c.agent);
    let offer = Sdp::pcmu(caller_media);
    let answer = Sdp::pcmu(callee_media);
    let t0 = base + c.start();
    match c.outcome {
        Outcome::Busy => {
            sc.extend(dialog.rejected(t0, 486, "Busy Here", &offer));
            return MediaTruth::default();
        }
        Outcome::Cancelled => {
            sc.extend(dialog.cancelled(t0, t0 + ms(2000), &offer));
            return MediaTruth::default();
        }
        Outcome::Completed => {}
    }
    let t_answer = t0 + ms(800);
    let media_start = t_answer + ms(100);
    let count = u32::try_from(c.media_ms / 20).expect("packet count");
    let seed = 0xCA11_0000 + i as u64 * 16;
    let ssrc_in = 0x1000_0000 + i as u32 * 2;
    let ssrc_out = ssrc_in + 1;
    let mut inbound =
        StreamSpec::pcmu(remote_media(i), local_media(i), ssrc_in, media_start, count)
            .with_loss(random_loss(seed, count, c.loss_in));
    // The site answers 7 ms later than the far end starts.
    let mut outbound = StreamSpec::pcmu(
        local_media(i),
        remote_media(i),
        ssrc_out,
        media_start + ms(7),
        count,
    )
    .with_loss(random_loss(seed + 1, count, c.loss_out));
    if c.jitter_us > 0 {
        inbound = inbound.with_jitter(seed + 2, c.jitter_us, 125);
        outbound = outbound.with_jitter(seed + 3, c.jitter_us / 2, 125);
    }
    let truth = MediaTruth {
        sent_in: count,
        lost_in: inbound.loss.len() as u32,
        sent_out: count,
        lost_out: outbound.loss.len() as u32,
    };
    sc.add_stream(&inbound);
    sc.add_stream(&outbound);
    if let Some(rtt_us) = c.rtcp_rtt_us {
        // SR (site) / RR (far end) exchanges 5 s and (for media over 11 s) 10 s into the
        // media, or 1 s before the end of shorter media, each reporting what the far end
        // really lost.
        let mut at = vec![secs(5).min(ms(c.media_ms).saturating_sub(secs(1)))];
        if ms(c.media_ms) > secs(11) {
            at.push(secs(10));
        }
        for (k, off) in at.into_iter().enumerate() {
            let t_sr = media_start + ms(7) + off + ms(3);
            let sent = ((t_sr - (media_start + ms(7))) / ms(20)) as u32;
            let lost = outbound.loss.iter().filter(|&&x| x < sent).count();
            let mut x = RtcpExchange::new(
                rtcp_of(local_media(i)),
                rtcp_of(remote_media(i)),
                ssrc_out,
                ssrc_in,
                t_sr,
                rtt_us,
                6_554 * (k as u32 + 1),
                ReportBlock {
                    fraction_lost: ((lost as f64 / f64::from(sent.max(1))) * 256.0) as u8,
                    cumulative_lost: lost as i32,
                    ext_highest_seq: u32::from(outbound.seq(sent - 1)),
                    jitter: 16,
                    ..ReportBlock::default()
                },
            );
            x.sr_rtp_ts = outbound.rtp_ts(sent);
            x.sr_packet_count = sent;
            x.sr_octet_count = sent * 160;
            sc.add_rtcp(&x);
        }
    }
    let t_bye = media_start + ms(c.media_ms) + ms(120);
    sc.extend(dialog.completed(t0, t_answer, t_bye, &offer, &answer));
    truth
}

/// Writes the mix to `path` (pcap, µs, Ethernet) with its first INVITE `base + lead_in`;
/// returns each call's media truth. A harmless non-RTP datagram at `base` anchors the
/// replay clock, so at `--speed 1` the first call starts `lead_in` after the replay.
pub fn write_mix(path: &Path, base: Nanos, lead_in: Nanos, calls: &[MixCall]) -> Vec<MediaTruth> {
    let mut sc = Scenario::new();
    sc.push(anchor(base));
    let truths = calls
        .iter()
        .enumerate()
        .map(|(i, c)| add_call(&mut sc, base + lead_in, i, c))
        .collect();
    sc.write(path, FileFormat::PcapMicros, LinkLayer::Ethernet)
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    truths
}

/// A datagram that is neither RTP nor SIP (a 1-packet flow is never a stream).
pub fn anchor(t: Nanos) -> Event {
    Event::udp(
        t,
        "192.0.2.250:9".parse().expect("address"),
        "192.0.2.251:9".parse().expect("address"),
        b"vqprobe test anchor".to_vec(),
    )
}

/// An RTP-only two-way flow between `site` and `far` (no SIP).
#[derive(Clone, Debug)]
pub struct RtpOnlyFlow {
    /// Site endpoint.
    pub site: SocketAddr,
    /// Far endpoint.
    pub far: SocketAddr,
    /// Media start after the base, ms.
    pub start_ms: u64,
    /// Media length, ms.
    pub media_ms: u64,
    /// Loss ratio towards the site.
    pub loss_in: f64,
    /// SSRC of the far end's stream (the site's is + 1).
    pub ssrc: u32,
}

/// Writes RTP-only flows behind an anchor datagram at `base`.
pub fn write_rtp_only(path: &Path, base: Nanos, flows: &[RtpOnlyFlow]) {
    let mut sc = Scenario::new();
    sc.push(anchor(base));
    for (k, f) in flows.iter().enumerate() {
        let count = u32::try_from(f.media_ms / 20).expect("packet count");
        let start = base + ms(f.start_ms);
        let inbound = StreamSpec::pcmu(f.far, f.site, f.ssrc, start, count)
            .with_loss(random_loss(0xF10 + k as u64, count, f.loss_in))
            .with_jitter(0xF20 + k as u64, 2_000, 125);
        let outbound = StreamSpec::pcmu(f.site, f.far, f.ssrc + 1, start + ms(5), count);
        sc.add_stream(&inbound);
        sc.add_stream(&outbound);
    }
    sc.write(path, FileFormat::PcapMicros, LinkLayer::Ethernet)
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// The 12-call mix of `tests/daemon_api.rs`: agents a/b/c (4 calls each), far ends on
/// T-Mobile (DE), Vodafone (DE) and Three (GB) plus one unknown (+1 555…),
/// inbound and outbound, one 486 and one CANCEL, media 12–30 s with 0/1/5 % loss per
/// direction, and one call with 20 % loss towards the site (MOS below 3.1, a "poor"
/// call). Four completed calls carry RTCP, so they have a round trip.
pub fn api_mix() -> Vec<MixCall> {
    // (agent, inbound, remote, local, outcome, media s, loss in, loss out, jitter µs, rtt µs)
    type Row = (
        &'static str,
        bool,
        &'static str,
        &'static str,
        Outcome,
        u64,
        f64,
        f64,
        u64,
        Option<u64>,
    );
    use Outcome::{Busy, Cancelled, Completed};
    let rows: [Row; 12] = [
        (
            "agent-a",
            true,
            "+4915112345670",
            "+4930900100",
            Completed,
            20,
            0.0,
            0.0,
            1_000,
            Some(40_000),
        ),
        (
            "agent-a",
            true,
            "+4915201234567",
            "+4930900100",
            Completed,
            25,
            0.01,
            0.0,
            2_000,
            None,
        ),
        (
            "agent-a",
            false,
            "+447400123456",
            "+4930900100",
            Completed,
            15,
            0.05,
            0.01,
            3_000,
            Some(120_000),
        ),
        (
            "agent-a",
            true,
            "+15555550123",
            "+4930900100",
            Completed,
            12,
            0.0,
            0.01,
            1_500,
            None,
        ),
        (
            "agent-b",
            true,
            "+4915112340001",
            "+4930900200",
            Completed,
            30,
            0.05,
            0.0,
            4_000,
            None,
        ),
        (
            "agent-b",
            false,
            "+4915201230002",
            "+4930900200",
            Completed,
            18,
            0.01,
            0.01,
            2_500,
            Some(80_000),
        ),
        (
            "agent-b",
            true,
            "+447400000003",
            "+4930900200",
            Busy,
            0,
            0.0,
            0.0,
            0,
            None,
        ),
        (
            "agent-b",
            true,
            "+4915112340004",
            "+4930900200",
            Completed,
            22,
            0.0,
            0.0,
            500,
            None,
        ),
        (
            "agent-c",
            true,
            "+447400000005",
            "+4930900300",
            Completed,
            28,
            0.01,
            0.05,
            3_500,
            None,
        ),
        (
            "agent-c",
            false,
            "+4915112340006",
            "+4930900300",
            Completed,
            16,
            0.05,
            0.05,
            2_000,
            Some(60_000),
        ),
        (
            "agent-c",
            true,
            "+4915201230007",
            "+4930900300",
            Cancelled,
            0,
            0.0,
            0.0,
            0,
            None,
        ),
        (
            "agent-c",
            true,
            "+447400000008",
            "+4930900300",
            Completed,
            14,
            0.20,
            0.05,
            1_000,
            None,
        ),
    ];
    rows.iter()
        .enumerate()
        .map(|(i, r)| MixCall {
            sip_call_id: format!("mix-{i:02}@capgen.test"),
            agent: r.0,
            inbound: r.1,
            remote_number: r.2,
            local_number: r.3,
            outcome: r.4,
            start_ms: i as u64 * 1_500,
            media_ms: r.5 * 1000,
            loss_in: r.6,
            loss_out: r.7,
            jitter_us: r.8,
            rtcp_rtt_us: r.9,
        })
        .collect()
}

/// A short mix for the Prometheus test: `n` calls starting 1 s apart with 3–4 s of
/// media each (so at `--speed 1` they end one by one over about `n` seconds). Agent and
/// far end go round together (agent-a on T-Mobile, agent-b on Vodafone, agent-c
/// on Three, every fourth call outbound), so each MNO/agent series is observed
/// again after it first appears and rate() over it is not zero; agent-a's calls carry
/// RTCP (a round trip). Call 4 is refused (486), call 7 cancelled.
pub fn staggered_mix(n: usize) -> Vec<MixCall> {
    const AGENTS: [&str; 3] = ["agent-a", "agent-b", "agent-c"];
    const REMOTES: [&str; 3] = ["+4915112345670", "+4915201234567", "+447400123456"];
    const LOSS: [f64; 3] = [0.0, 0.01, 0.05];
    (0..n)
        .map(|i| MixCall {
            sip_call_id: format!("stag-{i:02}@capgen.test"),
            agent: AGENTS[i % 3],
            inbound: i % 4 != 3,
            remote_number: REMOTES[i % 3],
            local_number: "+4930900100",
            outcome: match i {
                4 => Outcome::Busy,
                7 => Outcome::Cancelled,
                _ => Outcome::Completed,
            },
            start_ms: i as u64 * 1_000,
            media_ms: 3_000 + (i as u64 % 2) * 1_000,
            loss_in: LOSS[i % 3],
            loss_out: LOSS[(i + 1) % 3],
            jitter_us: 500 + 500 * (i as u64 % 4),
            rtcp_rtt_us: (i % 3 == 0).then_some(30_000 + 10_000 * i as u64),
        })
        .collect()
}
