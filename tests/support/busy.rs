//! A busy media server, generated with its truth: thousands of calls over a small pool of
//! port pairs that are handed to the next call as soon as one ends (often within 100 ms,
//! inside the engine's 2 s linger), with random durations, re-INVITEs (hold and resume,
//! a codec change, a T.38 fax phase and back), early media, CANCELs and 486s, some calls
//! re-using the previous call's SSRC. Every 5-tuple of every call is also used by other
//! calls: only SIP ownership can tell them apart.
//!
//! The truth is what each call must come out as: its Call-ID, status, end reason, fax
//! flag, and each of its streams (5-tuple, SSRC, codec, packets, lost).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::capgen::*;

/// What kind of call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Answered, talks, BYE.
    Plain,
    /// Answered; the caller holds the call mid-way (the server stops sending) and resumes.
    Hold,
    /// Answered; a re-INVITE moves both directions from PCMU to PCMA.
    CodecChange,
    /// Answered; a re-INVITE switches to T.38, UDPTL flows, a re-INVITE comes back.
    Fax,
    /// The server sends early media after a 183 with SDP, then answers.
    EarlyMedia,
    /// CANCELled while ringing.
    Cancel,
    /// Rejected with 486 Busy Here.
    Busy,
}

/// One stream a call must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamTruth {
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// `0x…`.
    pub ssrc: String,
    /// Codec name.
    pub codec: &'static str,
    /// Packets sent.
    pub packets: u64,
    /// Of those, never sent (lost).
    pub lost: u64,
}

/// What one call must come out as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallTruth {
    /// SIP Call-ID.
    pub call_id: String,
    /// What kind of call.
    pub kind: Kind,
    /// `completed`, `failed`, `abandoned`.
    pub status: &'static str,
    /// `bye`, `error`, `cancel`.
    pub ended_reason: &'static str,
    /// T.38 phase.
    pub fax: bool,
    /// Streams, sorted by (src, dst, ssrc, first packet).
    pub streams: Vec<StreamTruth>,
}

/// The generated capture.
pub struct Busy {
    /// Datagrams in time order.
    pub events: Vec<Event>,
    /// Per Call-ID.
    pub truth: BTreeMap<String, CallTruth>,
}

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 9, 1, 1);

/// One leg of media: a stream segment sent at 20 ms from `start`.
struct Leg {
    spec: StreamSpec,
    codec: &'static str,
}

impl Leg {
    #[allow(clippy::too_many_arguments)]
    fn new(
        src: SocketAddr,
        dst: SocketAddr,
        ssrc: u32,
        (pt, codec): (u8, &'static str),
        start: Nanos,
        count: u32,
        seq_start: u16,
        ts_start: u32,
        rng: &mut XorShift,
    ) -> Leg {
        let mut spec =
            StreamSpec::pcmu(src, dst, ssrc, start, count).with_start(seq_start, ts_start);
        spec.pt = pt;
        // Up to 2 % loss, exact indices, never the first or last packet.
        let ratio = rng.below(21) as f64 / 1000.0;
        spec.loss = random_loss(rng.next_u64(), count, ratio)
            .into_iter()
            .filter(|&i| i > 0 && i + 1 < count)
            .collect();
        Leg { spec, codec }
    }

    fn truth(&self) -> StreamTruth {
        StreamTruth {
            src: self.spec.src,
            dst: self.spec.dst,
            ssrc: format!("0x{:08x}", self.spec.ssrc),
            codec: self.codec,
            packets: u64::from(self.spec.count) - self.spec.loss.len() as u64,
            lost: self.spec.loss.len() as u64,
        }
    }
}

const PCMU: (u8, &str) = (0, "PCMU");
const PCMA: (u8, &str) = (8, "PCMA");

/// `calls` calls over `pairs` port pairs, seeded.
pub fn generate(calls: usize, pairs: u16, seed: u64) -> Busy {
    let mut rng = XorShift::new(seed);
    let mut events: Vec<Event> = Vec::new();
    let mut truth = BTreeMap::new();
    let sig_client = SocketAddr::new(IpAddr::V4(CLIENT), 5060);
    let sig_server = SocketAddr::new(IpAddr::V4(SERVER), 5060);
    // Per pair: when it is free again, and the SSRCs its last call used.
    let mut free_at: Vec<Nanos> = (0..pairs)
        .map(|p| BASE_TIME + ms(u64::from(p) * 37))
        .collect();
    let mut last_ssrc: Vec<(u32, u32)> = vec![(0, 0); pairs as usize];
    for n in 0..calls {
        // The pair free soonest takes the next call.
        let (p, _) = free_at
            .iter()
            .enumerate()
            .min_by_key(|(_, t)| **t)
            .expect("pairs");
        let p16 = p as u16;
        let client_media = SocketAddr::new(IpAddr::V4(CLIENT), 20_000 + 2 * p16);
        let server_media = SocketAddr::new(IpAddr::V4(SERVER), 30_000 + 2 * p16);
        // Most calls start within 100 ms of the previous one's end: inside the linger.
        let gap = if rng.chance(0.6) {
            ms(rng.below(100))
        } else {
            ms(100 + rng.below(900))
        };
        let t0 = free_at[p] + gap;
        let kind = match rng.below(100) {
            0..=54 => Kind::Plain,
            55..=61 => Kind::Hold,
            62..=66 => Kind::CodecChange,
            67..=71 => Kind::Fax,
            72..=79 => Kind::EarlyMedia,
            80..=89 => Kind::Cancel,
            _ => Kind::Busy,
        };
        let call_id = format!("busy-{n:05}-{:x}@capgen", rng.next_u64() & 0xffff_ffff);
        let dialog = SipDialog::new(
            &call_id,
            "+447700900123",
            "+442071234567",
            sig_client,
            sig_server,
        );
        let offer = Sdp::pcmu(client_media);
        let answer = Sdp::pcmu(server_media);
        // A relay habit: 1 call in 20 keeps the previous call's SSRCs on the pair.
        let (ssrc_c, ssrc_s) = if last_ssrc[p].0 != 0 && rng.chance(0.05) {
            last_ssrc[p]
        } else {
            (rng.next_u64() as u32 | 1, rng.next_u64() as u32 | 1)
        };
        last_ssrc[p] = (ssrc_c, ssrc_s);
        let mut legs: Vec<Leg> = Vec::new();
        let end;
        let (status, reason, fax) = match kind {
            Kind::Busy => {
                events.extend(dialog.rejected(t0, 486, "Busy Here", &offer));
                end = t0 + ms(310);
                ("failed", "error", false)
            }
            Kind::Cancel => {
                let t_cancel = t0 + ms(200 + rng.below(600));
                events.extend(dialog.cancelled(t0, t_cancel, &offer));
                end = t_cancel + ms(10);
                ("abandoned", "cancel", false)
            }
            _ => {
                let t_answer = t0 + ms(300);
                let media0 = t_answer + ms(20);
                let n_pkts = 30 + rng.below(70) as u32; // 0.6 – 2 s per phase
                let seq_c = rng.next_u64() as u16;
                let seq_s = rng.next_u64() as u16;
                let ts_c = rng.next_u64() as u32;
                let ts_s = rng.next_u64() as u32;
                events.push(dialog.to_callee(t0, dialog.invite(Some(&offer))));
                events.push(dialog.to_caller(t0 + ms(2), dialog.response(100, "Trying", None)));
                let mut early = 0u32;
                if kind == Kind::EarlyMedia {
                    events.push(dialog.to_caller(
                        t0 + ms(40),
                        dialog.response(183, "Session Progress", Some(&answer)),
                    ));
                    early = 12; // 240 ms of ringback before the answer
                } else {
                    events
                        .push(dialog.to_caller(t0 + ms(40), dialog.response(180, "Ringing", None)));
                }
                events.push(dialog.to_caller(t_answer, dialog.response(200, "OK", Some(&answer))));
                events.push(dialog.to_callee(t_answer + ms(3), dialog.ack()));
                let c2s =
                    |legs: &mut Vec<Leg>, codec, start, count, seq, ts, rng: &mut XorShift| {
                        legs.push(Leg::new(
                            client_media,
                            server_media,
                            ssrc_c,
                            codec,
                            start,
                            count,
                            seq,
                            ts,
                            rng,
                        ));
                    };
                let s2c =
                    |legs: &mut Vec<Leg>, codec, start, count, seq, ts, rng: &mut XorShift| {
                        legs.push(Leg::new(
                            server_media,
                            client_media,
                            ssrc_s,
                            codec,
                            start,
                            count,
                            seq,
                            ts,
                            rng,
                        ));
                    };
                match kind {
                    Kind::Plain | Kind::EarlyMedia => {
                        c2s(&mut legs, PCMU, media0, n_pkts, seq_c, ts_c, &mut rng);
                        let s_start = media0 + ms(7) - ms(20 * u64::from(early));
                        s2c(
                            &mut legs,
                            PCMU,
                            s_start,
                            n_pkts + early,
                            seq_s,
                            ts_s,
                            &mut rng,
                        );
                        end = media0 + ms(20 * u64::from(n_pkts) + 20);
                    }
                    Kind::Hold => {
                        // Caller keeps sending (music on hold from its side); the server
                        // is silent for the hold, then continues its sequence.
                        let hold_at = media0 + ms(20 * u64::from(n_pkts));
                        let hold_len = ms(400 + rng.below(600));
                        let resume = hold_at + hold_len;
                        let total = n_pkts * 2 + (hold_len / ms(20)) as u32;
                        c2s(&mut legs, PCMU, media0, total, seq_c, ts_c, &mut rng);
                        let mut before = Leg::new(
                            server_media,
                            client_media,
                            ssrc_s,
                            PCMU,
                            media0 + ms(7),
                            n_pkts,
                            seq_s,
                            ts_s,
                            &mut rng,
                        );
                        before.spec.loss.clear();
                        let skipped = (resume - media0) / ms(20);
                        let mut after = Leg::new(
                            server_media,
                            client_media,
                            ssrc_s,
                            PCMU,
                            resume + ms(7),
                            n_pkts,
                            seq_s.wrapping_add(n_pkts as u16),
                            ts_s.wrapping_add(160 * skipped as u32),
                            &mut rng,
                        );
                        after.spec.loss.clear();
                        let mut held = Sdp::pcmu(client_media);
                        held.direction = "sendonly";
                        held.session_id += 1;
                        let mut held_answer = Sdp::pcmu(server_media);
                        held_answer.direction = "recvonly";
                        events.push(
                            dialog.to_callee(hold_at + ms(5), dialog.reinvite(2, true, &held)),
                        );
                        events.push(
                            dialog.to_caller(
                                hold_at + ms(9),
                                dialog.reinvite_ok(2, true, &held_answer),
                            ),
                        );
                        events.push(
                            dialog.to_callee(resume - ms(10), dialog.reinvite(3, true, &offer)),
                        );
                        events.push(
                            dialog.to_caller(resume - ms(6), dialog.reinvite_ok(3, true, &answer)),
                        );
                        // One server stream, sequence continuous across the hold.
                        let merged = StreamTruth {
                            packets: u64::from(2 * n_pkts),
                            ..before.truth()
                        };
                        events.extend(before.spec.events());
                        events.extend(after.spec.events());
                        legs.push(Leg {
                            spec: before.spec,
                            codec: "PCMU",
                        });
                        truth_override(&mut legs, merged);
                        end = resume + ms(20 * u64::from(n_pkts) + 30);
                    }
                    Kind::CodecChange | Kind::Fax => {
                        c2s(&mut legs, PCMU, media0, n_pkts, seq_c, ts_c, &mut rng);
                        s2c(
                            &mut legs,
                            PCMU,
                            media0 + ms(7),
                            n_pkts,
                            seq_s,
                            ts_s,
                            &mut rng,
                        );
                        let switch = media0 + ms(20 * u64::from(n_pkts) + 10);
                        let (codec, back_at, jump) = if kind == Kind::CodecChange {
                            events.push(dialog.to_callee(
                                switch,
                                dialog.reinvite(
                                    2,
                                    true,
                                    &Sdp::single(client_media, (8, "PCMA", 8000)),
                                ),
                            ));
                            events.push(dialog.to_caller(
                                switch + ms(4),
                                dialog.reinvite_ok(
                                    2,
                                    true,
                                    &Sdp::single(server_media, (8, "PCMA", 8000)),
                                ),
                            ));
                            (PCMA, switch + ms(15), 0u16)
                        } else {
                            let mut t38o = Sdp::pcmu(SocketAddr::new(
                                client_media.ip(),
                                client_media.port() + 100,
                            ));
                            t38o.t38 = true;
                            let mut t38a = Sdp::pcmu(SocketAddr::new(
                                server_media.ip(),
                                server_media.port() + 100,
                            ));
                            t38a.t38 = true;
                            events.push(dialog.to_callee(switch, dialog.reinvite(2, true, &t38o)));
                            events.push(
                                dialog
                                    .to_caller(switch + ms(4), dialog.reinvite_ok(2, true, &t38a)),
                            );
                            // UDPTL both ways for a few seconds.
                            let fax_len = 60 + rng.below(60);
                            for i in 0..fax_len {
                                let t = switch + ms(20 + 40 * i);
                                let udptl = vec![
                                    0x00,
                                    (i & 0xff) as u8,
                                    0x00,
                                    0x05,
                                    0x01,
                                    0x02,
                                    0x03,
                                    0x04,
                                ];
                                events.push(Event::udp(
                                    t,
                                    SocketAddr::new(client_media.ip(), client_media.port() + 100),
                                    SocketAddr::new(server_media.ip(), server_media.port() + 100),
                                    udptl.clone(),
                                ));
                                events.push(Event::udp(
                                    t + ms(3),
                                    SocketAddr::new(server_media.ip(), server_media.port() + 100),
                                    SocketAddr::new(client_media.ip(), client_media.port() + 100),
                                    udptl,
                                ));
                            }
                            let back = switch + ms(40 * fax_len + 40);
                            events.push(dialog.to_callee(back, dialog.reinvite(3, true, &offer)));
                            events.push(
                                dialog
                                    .to_caller(back + ms(4), dialog.reinvite_ok(3, true, &answer)),
                            );
                            // The gateway's sequence kept counting through the fax.
                            (PCMU, back + ms(15), (fax_len * 2) as u16)
                        };
                        let m = 30 + rng.below(40) as u32;
                        c2s(
                            &mut legs,
                            codec,
                            back_at,
                            m,
                            seq_c.wrapping_add(n_pkts as u16).wrapping_add(jump),
                            ts_c.wrapping_add(160 * (n_pkts + u32::from(jump))),
                            &mut rng,
                        );
                        s2c(
                            &mut legs,
                            codec,
                            back_at + ms(7),
                            m,
                            seq_s.wrapping_add(n_pkts as u16).wrapping_add(jump),
                            ts_s.wrapping_add(160 * (n_pkts + u32::from(jump))),
                            &mut rng,
                        );
                        end = back_at + ms(20 * u64::from(m) + 20);
                    }
                    Kind::Cancel | Kind::Busy => unreachable!("handled above"),
                }
                events.push(dialog.to_callee(end, dialog.bye(true)));
                events.push(dialog.to_caller(end + ms(3), dialog.bye_ok(true)));
                ("completed", "bye", kind == Kind::Fax)
            }
        };
        let mut streams: Vec<StreamTruth> = Vec::new();
        for leg in &legs {
            if !matches!(kind, Kind::Hold) || leg.spec.src == client_media {
                events.extend(leg.spec.events());
            }
            streams.push(leg.truth());
        }
        streams.sort_by(|a, b| {
            (a.src, a.dst, &a.ssrc, a.codec).cmp(&(b.src, b.dst, &b.ssrc, b.codec))
        });
        truth.insert(
            call_id.clone(),
            CallTruth {
                call_id,
                kind,
                status,
                ended_reason: reason,
                fax,
                streams,
            },
        );
        free_at[p] = end + ms(5);
    }
    sort_events(&mut events);
    Busy { events, truth }
}

/// Replaces the truth of the last leg with `merged` (a stream sent in two segments
/// with a continuous sequence is one stream).
fn truth_override(legs: &mut [Leg], merged: StreamTruth) {
    if let Some(last) = legs.last_mut() {
        last.spec.count = (merged.packets + merged.lost) as u32;
        last.spec.loss.clear();
    }
}
