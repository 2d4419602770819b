//! Engine tests: media ownership (port reuse, media before SDP, shared endpoints),
//! payload-type hygiene, keepalives, hold, fax, forks, timers and bounded state.

use std::net::SocketAddr;
use std::sync::Arc;

use super::*;
use crate::push::MediaAddr;
use crate::record::{CallStatus, Direction};

fn cfg() -> EngineConfig {
    EngineConfig::new(CallConfig::with_mno(Arc::new(
        crate::mno::MnoTable::embedded(),
    )))
}

fn a(s: &str) -> SocketAddr {
    s.parse().expect("addr")
}

fn udp(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let (SocketAddr::V4(s), SocketAddr::V4(d)) = (src, dst) else {
        panic!("v4 only in these tests");
    };
    let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0];
    ip.extend_from_slice(&s.ip().octets());
    ip.extend_from_slice(&d.ip().octets());
    ip[2..4].copy_from_slice(&((20 + 8 + payload.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&s.port().to_be_bytes());
    ip.extend_from_slice(&d.port().to_be_bytes());
    ip.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&[0, 0]);
    ip.extend_from_slice(payload);
    ip
}

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0xd5; 160]);
    p
}

fn ms(t: i64) -> Timestamp {
    Timestamp::from_nanos(t * 1_000_000)
}

/// A minimal SIP message from `from` to `to`.
fn sip(
    start: &str,
    call_id: &str,
    cseq: &str,
    to_tag: &str,
    sdp: Option<(&str, u16, &str)>,
) -> Vec<u8> {
    let body = sdp.map_or(String::new(), |(ip, port, fmt)| {
        let pts: Vec<&str> = fmt.split(',').map(|f| f.split(':').next().unwrap_or("0")).collect();
        let mut b = format!(
            "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {}\r\n",
            pts.join(" ")
        );
        for f in fmt.split(',') {
            if let Some((pt, name)) = f.split_once(':') {
                b.push_str(&format!("a=rtpmap:{pt} {name}\r\n"));
            }
        }
        b
    });
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    let tag = if to_tag.is_empty() {
        String::new()
    } else {
        format!(";tag={to_tag}")
    };
    format!(
        "{start}\r\nVia: SIP/2.0/UDP 10.0.0.1:5060\r\nFrom: <sip:+447700900123@x>;tag=f\r\n\
To: <sip:+442071234567@y>{tag}\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\n{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A SIP message with an SDP body given whole.
fn sip_with_body(start: &str, call_id: &str, cseq: &str, to_tag: &str, body: &str) -> Vec<u8> {
    format!(
        "{start}\r\nVia: SIP/2.0/UDP 10.0.0.1:5060\r\nFrom: <sip:a@x>;tag=f\r\nTo: <sip:b@y>;tag={to_tag}\r\n\
Call-ID: {call_id}\r\nCSeq: {cseq}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

const UAC: &str = "10.0.0.1:5060";
const UAS: &str = "10.0.0.2:5060";

/// Drives one call: INVITE (caller media at `caller`), 200 (callee media at `callee`),
/// `n` packets each way from `t0`, BYE at the end. Returns the time after the BYE.
#[allow(clippy::too_many_arguments)]
fn call(
    e: &mut Engine,
    id: &str,
    t0: i64,
    caller: &str,
    callee: &str,
    fmt: &str,
    pt: u8,
    ssrcs: (u32, u32),
    n: u16,
) -> i64 {
    let (uac, uas) = (a(UAC), a(UAS));
    let (cm, sm) = (a(caller), a(callee));
    let c_ip = cm.ip().to_string();
    let s_ip = sm.ip().to_string();
    e.on_frame(
        ms(t0),
        LinkType::RawIp,
        &udp(
            uac,
            uas,
            &sip(
                "INVITE sip:b@y SIP/2.0",
                id,
                "1 INVITE",
                "",
                Some((&c_ip, cm.port(), fmt)),
            ),
        ),
    );
    e.on_frame(
        ms(t0 + 10),
        LinkType::RawIp,
        &udp(
            uas,
            uac,
            &sip(
                "SIP/2.0 200 OK",
                id,
                "1 INVITE",
                "t",
                Some((&s_ip, sm.port(), fmt)),
            ),
        ),
    );
    let mut t = t0 + 20;
    for i in 0..n {
        e.on_frame(
            ms(t),
            LinkType::RawIp,
            &udp(cm, sm, &rtp(pt, i, u32::from(i) * 160, ssrcs.0)),
        );
        e.on_frame(
            ms(t + 1),
            LinkType::RawIp,
            &udp(sm, cm, &rtp(pt, 1000 + i, u32::from(i) * 160, ssrcs.1)),
        );
        t += 20;
    }
    e.on_frame(
        ms(t),
        LinkType::RawIp,
        &udp(
            uac,
            uas,
            &sip("BYE sip:b@y SIP/2.0", id, "2 BYE", "t", None),
        ),
    );
    t + 1
}

#[test]
fn reused_ports_go_to_the_next_call_within_a_second() {
    let mut e = Engine::new(cfg());
    let mut t = 0;
    // Five calls back to back on the same two media endpoints, 500 ms apart.
    for k in 0..5u32 {
        t = call(
            &mut e,
            &format!("call-{k}"),
            t,
            "10.0.0.1:4000",
            "10.0.0.2:6000",
            "0:PCMU/8000",
            0,
            (100 + k, 200 + k),
            100,
        ) + 500;
    }
    let recs = e.finish(EndedReason::EndOfCapture);
    assert_eq!(
        recs.len(),
        5,
        "{:?}",
        recs.iter().map(|r| &r.call.call_id).collect::<Vec<_>>()
    );
    for (k, r) in recs.iter().enumerate() {
        assert_eq!(r.call.call_id, format!("call-{k}"));
        assert_eq!(r.call.ended_reason, Some(EndedReason::Bye));
        assert_eq!(r.streams.len(), 2, "call-{k}: {:?}", r.streams);
        for s in &r.streams {
            assert_eq!(s.packets, 100);
            assert_eq!(s.lost, 0);
        }
        assert!(r.call.quality_mos.is_some());
    }
}

#[test]
fn same_ssrc_continuing_into_the_next_call_starts_a_new_stream_after_a_discontinuity() {
    let mut e = Engine::new(cfg());
    let t = call(
        &mut e,
        "c1",
        0,
        "10.0.0.1:4000",
        "10.0.0.2:6000",
        "0:PCMU/8000",
        0,
        (7, 8),
        60,
    );
    // The next call reuses the ports and (a relay's habit) the SSRCs, restarting
    // sequence numbers far away.
    let t2 = call(
        &mut e,
        "c2",
        t + 100,
        "10.0.0.1:4000",
        "10.0.0.2:6000",
        "0:PCMU/8000",
        0,
        (7, 8),
        60,
    );
    let _ = t2;
    let recs = e.finish(EndedReason::EndOfCapture);
    assert_eq!(recs.len(), 2);
    for r in &recs {
        assert_eq!(r.streams.len(), 2, "{}", r.call.call_id);
        assert!(r.streams.iter().all(|s| s.packets == 60 && s.lost == 0));
    }
}

#[test]
fn payload_types_mean_what_this_call_negotiated() {
    let mut e = Engine::new(cfg());
    // Call 1: PT 96 is telephone-event. Call 2 on the same ports: PT 96 is opus.
    let t = call(
        &mut e,
        "c1",
        0,
        "10.0.0.1:4000",
        "10.0.0.2:6000",
        "0:PCMU/8000,96:telephone-event/8000",
        0,
        (1, 2),
        60,
    );
    call(
        &mut e,
        "c2",
        t + 200,
        "10.0.0.1:4000",
        "10.0.0.2:6000",
        "96:opus/48000/2",
        96,
        (3, 4),
        60,
    );
    let recs = e.finish(EndedReason::EndOfCapture);
    let c2 = &recs[1];
    assert_eq!(c2.call.call_id, "c2");
    for s in &c2.streams {
        assert_eq!(s.codec.as_deref(), Some("opus"), "{s:?}");
        assert_eq!(s.clock_rate, Some(48000));
        assert!(s.jitter_ms.is_some());
    }
}

#[test]
fn media_before_its_sdp_joins_the_call() {
    let mut e = Engine::new(cfg());
    let (cm, sm) = (a("10.0.0.1:4000"), a("10.0.0.2:6000"));
    // 20 packets with no signalling yet (the INVITE was not captured)…
    for i in 0..20u16 {
        e.on_frame(
            ms(i64::from(i) * 20),
            LinkType::RawIp,
            &udp(cm, sm, &rtp(0, i, u32::from(i) * 160, 9)),
        );
    }
    // …then a re-INVITE announces the caller's endpoint: the stream joins the dialog.
    e.on_frame(
        ms(400),
        LinkType::RawIp,
        &udp(
            a(UAC),
            a(UAS),
            &sip(
                "INVITE sip:b@y SIP/2.0",
                "late",
                "5 INVITE",
                "t",
                Some(("10.0.0.1", 4000, "0:PCMU/8000")),
            ),
        ),
    );
    for i in 20..80u16 {
        e.on_frame(
            ms(i64::from(i) * 20),
            LinkType::RawIp,
            &udp(cm, sm, &rtp(0, i, u32::from(i) * 160, 9)),
        );
    }
    let recs = e.finish(EndedReason::EndOfCapture);
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0].call.call_id, "late");
    assert_eq!(recs[0].streams.len(), 1);
    assert_eq!(recs[0].streams[0].packets, 80);
    assert_eq!(recs[0].streams[0].lost, 0);
}

#[test]
fn other_payload_types_keepalives_and_events_are_kept_apart() {
    let mut e = Engine::new(cfg());
    let (uac, uas) = (a(UAC), a(UAS));
    let (cm, sm) = (a("10.0.0.1:4000"), a("10.0.0.2:6000"));
    e.on_frame(
        ms(0),
        LinkType::RawIp,
        &udp(
            uac,
            uas,
            &sip(
                "INVITE sip:b@y SIP/2.0",
                "nse",
                "1 INVITE",
                "",
                Some(("10.0.0.1", 4000, "0:PCMU/8000")),
            ),
        ),
    );
    e.on_frame(
        ms(5),
        LinkType::RawIp,
        &udp(
            uas,
            uac,
            &sip(
                "SIP/2.0 200 OK",
                "nse",
                "1 INVITE",
                "t",
                Some(("10.0.0.2", 6000, "0:PCMU/8000")),
            ),
        ),
    );
    let mut seq = 0u16;
    for i in 0..200i64 {
        e.on_frame(
            ms(10 + i * 20),
            LinkType::RawIp,
            &udp(cm, sm, &rtp(0, seq, (i as u32) * 160, 5)),
        );
        seq += 1;
        if i % 10 == 5 {
            // A Cisco NSE event on PT 100 in the same sequence space, with a wild
            // timestamp: not negotiated, so not jitter, not loss, not scored.
            e.on_frame(
                ms(10 + i * 20 + 3),
                LinkType::RawIp,
                &udp(cm, sm, &rtp(100, seq, 0x7fff_0000, 5)),
            );
            seq += 1;
        }
        if i % 50 == 0 {
            // 20-byte keepalives on the media port.
            e.on_frame(
                ms(10 + i * 20 + 7),
                LinkType::RawIp,
                &udp(cm, sm, &[0u8; 20]),
            );
        }
    }
    // A DTMF-only stream (telephone-event, no SDP mapping needed: PT 101 unknown here
    // is "other"; a telephone-event negotiated stream gets no MOS).
    let recs = e.finish(EndedReason::EndOfCapture);
    let s = &recs[0].streams[0];
    assert_eq!(s.packets, 220);
    assert_eq!(s.other_payload_packets, 20);
    assert_eq!(s.lost, 0);
    assert!(s.jitter_ms.is_some_and(|j| j < 0.001), "{s:?}");
    assert!(s.max_jitter_ms.is_some_and(|j| j < 0.001), "{s:?}");
    assert_eq!(e.counters().media_keepalives, 4);
    assert_eq!(e.counters().rtp_malformed, 0);
}

#[test]
fn a_telephone_event_stream_has_no_mos() {
    let mut e = Engine::new(cfg());
    let t = call(
        &mut e,
        "dtmf",
        0,
        "10.0.0.1:4000",
        "10.0.0.2:6000",
        "101:telephone-event/8000",
        101,
        (1, 2),
        80,
    );
    let _ = t;
    let recs = e.finish(EndedReason::EndOfCapture);
    assert!(recs[0]
        .streams
        .iter()
        .all(|s| s.mos.is_none() && s.r_factor.is_none()));
    assert!(recs[0].call.quality_mos.is_none());
}

#[test]
fn pushed_metadata_names_the_rtp_only_call() {
    let mut e = Engine::new(cfg());
    let far = a("192.0.2.10:30000");
    let us = a("198.51.100.5:40000");
    e.push_call(
        PushedCall {
            call_id: "platform-123".into(),
            agent_id: Some("agent-7".into()),
            from_number: Some("+447700900123".into()),
            to_number: Some("+15551230000".into()),
            direction: Some(Direction::Inbound),
            mno: Some("Example Mobile".into()),
            recording_url: None,
            media: vec![MediaAddr {
                ip: us.ip(),
                port: us.port(),
            }],
        },
        Timestamp::from_nanos(0),
    );
    for i in 0..100u16 {
        e.on_frame(
            ms(i64::from(i) * 20),
            LinkType::RawIp,
            &udp(far, us, &rtp(0, i, u32::from(i) * 160, 0xabcd_0001)),
        );
    }
    let recs = e.finish(EndedReason::EndOfCapture);
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!(r.call.call_id, "platform-123");
    assert_eq!(r.call.agent_id.as_deref(), Some("agent-7"));
    assert_eq!(r.call.mno, "Example Mobile");
    assert_eq!(r.streams.len(), 1);
    assert_eq!(r.streams[0].packets, 100);
}

#[test]
fn rtcp_floods_keep_no_state() {
    let mut e = Engine::new(cfg());
    // SRs and RRs from 10,000 different ports and SSRCs, no stream among them.
    let mut sr = vec![0x80u8, 200, 0, 6];
    sr.extend_from_slice(&[0; 24]);
    for i in 0..10_000u16 {
        let src = SocketAddr::from(([192, 0, 2, 1], 1000 + i));
        let dst = a("198.51.100.5:40001");
        sr[4..8].copy_from_slice(&u32::from(i).to_be_bytes());
        e.on_frame(ms(i64::from(i)), LinkType::RawIp, &udp(src, dst, &sr));
    }
    e.tick(ms(20_000));
    assert!(e.flows.is_empty());
    assert!(e.sightings.is_empty());
    assert_eq!(e.counters().rtcp_packets, 10_000);
}

#[test]
fn ending_calls_touches_only_their_own_state() {
    let mut e = Engine::new(cfg());
    // 2,000 concurrent RTP-only pairs, then all time out.
    for i in 0..2000u32 {
        let src = SocketAddr::from(([10, 1, (i >> 8) as u8, i as u8], 4000));
        let dst = SocketAddr::from(([10, 2, (i >> 8) as u8, i as u8], 6000));
        for k in 0..3u16 {
            e.on_frame(
                ms(i64::from(k) * 20),
                LinkType::RawIp,
                &udp(src, dst, &rtp(0, k, u32::from(k) * 160, i)),
            );
        }
    }
    assert_eq!(e.active_calls(), 2000);
    // The driver is woken no later than the first call can time out.
    assert!(e
        .poll_timeout()
        .is_some_and(|t| t <= ms(40).plus(e.cfg.rtp_timeout)));
    e.tick(ms(60_000));
    assert_eq!(e.active_calls(), 0);
    assert_eq!(e.active_streams(), 0);
    assert!(e.by_key.is_empty() && e.by_ssrc.is_empty() && e.flows.is_empty());
    assert_eq!(e.drain_finished().len(), 2000);
}

#[test]
fn a_hold_is_not_one_way_audio() {
    let mut e = Engine::new(cfg());
    let (uac, uas) = (a(UAC), a(UAS));
    let (cm, sm) = (a("10.0.0.1:4000"), a("10.0.0.2:6000"));
    e.on_frame(
        ms(0),
        LinkType::RawIp,
        &udp(
            uac,
            uas,
            &sip(
                "INVITE sip:b@y SIP/2.0",
                "h",
                "1 INVITE",
                "",
                Some(("10.0.0.1", 4000, "0:PCMU/8000")),
            ),
        ),
    );
    e.on_frame(
        ms(5),
        LinkType::RawIp,
        &udp(
            uas,
            uac,
            &sip(
                "SIP/2.0 200 OK",
                "h",
                "1 INVITE",
                "t",
                Some(("10.0.0.2", 6000, "0:PCMU/8000")),
            ),
        ),
    );
    let mut t = 10;
    let (mut s1, mut s2) = (0u16, 0u16);
    // 10 s both ways, 60 s on hold (the callee keeps sending music on hold), 10 s both.
    for phase in 0..3 {
        let secs = if phase == 1 { 60 } else { 10 };
        if phase == 1 {
            let body = "v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\n";
            e.on_frame(
                ms(t),
                LinkType::RawIp,
                &udp(
                    uac,
                    uas,
                    &sip_with_body("INVITE sip:b@y SIP/2.0", "h", "2 INVITE", "t", body),
                ),
            );
        }
        if phase == 2 {
            e.on_frame(
                ms(t),
                LinkType::RawIp,
                &udp(
                    uac,
                    uas,
                    &sip(
                        "INVITE sip:b@y SIP/2.0",
                        "h",
                        "3 INVITE",
                        "t",
                        Some(("10.0.0.1", 4000, "0:PCMU/8000")),
                    ),
                ),
            );
        }
        for _ in 0..secs * 50 {
            if phase != 1 {
                e.on_frame(
                    ms(t),
                    LinkType::RawIp,
                    &udp(cm, sm, &rtp(0, s1, u32::from(s1) * 160, 1)),
                );
                s1 += 1;
            }
            e.on_frame(
                ms(t + 1),
                LinkType::RawIp,
                &udp(sm, cm, &rtp(0, s2, u32::from(s2) * 160, 2)),
            );
            s2 += 1;
            t += 20;
        }
    }
    let recs = e.finish(EndedReason::EndOfCapture);
    assert_eq!(recs.len(), 1);
    assert!(!recs[0].call.one_way_audio, "{:?}", recs[0].call);
    assert!(recs[0].streams.iter().all(|s| s.lost == 0));
}

#[test]
fn a_t38_phase_marks_fax_and_its_gap_is_not_loss() {
    let mut e = Engine::new(cfg());
    let (uac, uas) = (a(UAC), a(UAS));
    let (cm, sm) = (a("10.0.0.1:4000"), a("10.0.0.2:6000"));
    e.on_frame(
        ms(0),
        LinkType::RawIp,
        &udp(
            uac,
            uas,
            &sip(
                "INVITE sip:b@y SIP/2.0",
                "fax",
                "1 INVITE",
                "",
                Some(("10.0.0.1", 4000, "0:PCMU/8000")),
            ),
        ),
    );
    e.on_frame(
        ms(5),
        LinkType::RawIp,
        &udp(
            uas,
            uac,
            &sip(
                "SIP/2.0 200 OK",
                "fax",
                "1 INVITE",
                "t",
                Some(("10.0.0.2", 6000, "0:PCMU/8000")),
            ),
        ),
    );
    let t38 = |ip: &str, port: u16| {
        format!("v=0\r\no=- 1 2 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\nm=image {port} udptl t38\r\n")
    };
    let reinvite =
        |body: String, cseq: &str| sip_with_body("INVITE sip:b@y SIP/2.0", "fax", cseq, "t", &body);
    let mut t = 10;
    let mut seq = 0u16;
    for _ in 0..250 {
        e.on_frame(
            ms(t),
            LinkType::RawIp,
            &udp(cm, sm, &rtp(0, seq, u32::from(seq) * 160, 1)),
        );
        seq += 1;
        t += 20;
    }
    e.on_frame(
        ms(t),
        LinkType::RawIp,
        &udp(uac, uas, &reinvite(t38("10.0.0.1", 4002), "2 INVITE")),
    );
    // 40 s of fax over UDPTL (not RTP) while the gateway's RTP sequence runs on.
    let udptl = (a("10.0.0.2:6002"), a("10.0.0.1:4002"));
    for _ in 0..1000 {
        e.on_frame(
            ms(t),
            LinkType::RawIp,
            &udp(udptl.0, udptl.1, &[0x00, 0x01, 0x02, 0x03, 0x04, 0x05]),
        );
        t += 40;
    }
    seq += 2000;
    let back = String::from_utf8(sip(
        "INVITE sip:b@y SIP/2.0",
        "fax",
        "3 INVITE",
        "t",
        Some(("10.0.0.1", 4000, "0:PCMU/8000")),
    ))
    .expect("utf8");
    e.on_frame(ms(t), LinkType::RawIp, &udp(uac, uas, back.as_bytes()));
    for _ in 0..250 {
        e.on_frame(
            ms(t),
            LinkType::RawIp,
            &udp(cm, sm, &rtp(0, seq, u32::from(seq) * 160, 1)),
        );
        seq += 1;
        t += 20;
    }
    let recs = e.finish(EndedReason::EndOfCapture);
    assert_eq!(recs.len(), 1, "{recs:#?}");
    let r = &recs[0];
    assert!(r.call.fax);
    assert_eq!(r.streams.len(), 2, "{:?}", r.streams);
    assert!(r.streams.iter().all(|s| s.lost == 0 && s.packets == 250));
    assert!(
        r.call.quality_mos.is_some_and(|m| m > 4.0),
        "{:?}",
        r.call.quality_mos
    );
}

#[test]
fn shared_media_address_still_gives_both_directions() {
    let mut c = cfg();
    // Both user agents behind one address; local networks say nothing useful.
    c.calls.local_nets = vec!["10.0.0.0/8".parse().expect("net")];
    let mut e = Engine::new(c);
    call(
        &mut e,
        "shared",
        0,
        "10.0.0.9:4000",
        "10.0.0.9:6000",
        "0:PCMU/8000",
        0,
        (1, 2),
        100,
    );
    let recs = e.finish(EndedReason::EndOfCapture);
    let dirs: Vec<Direction> = recs[0].streams.iter().map(|s| s.direction).collect();
    assert!(
        dirs.contains(&Direction::Inbound) && dirs.contains(&Direction::Outbound),
        "{dirs:?}"
    );
    assert!(!recs[0].call.one_way_audio);
    assert_eq!(recs[0].call.status, CallStatus::Completed);
}

#[test]
fn far_future_timestamps_cost_nothing() {
    let mut e = Engine::new(cfg());
    let (x, y) = (a("10.0.0.1:4000"), a("10.0.0.2:6000"));
    for i in 0..100u16 {
        e.on_frame(
            ms(i64::from(i) * 20),
            LinkType::RawIp,
            &udp(x, y, &rtp(0, i, u32::from(i) * 160, 1)),
        );
    }
    // One packet 100 years later, then the stream goes on from there.
    let far = 100 * 365 * 86_400_000i64;
    for i in 100..110u16 {
        e.on_frame(
            ms(far + i64::from(i) * 20),
            LinkType::RawIp,
            &udp(x, y, &rtp(0, i, u32::from(i) * 160, 1)),
        );
    }
    let recs = e.finish(EndedReason::EndOfCapture);
    let intervals: usize = recs
        .iter()
        .flat_map(|r| &r.streams)
        .map(|s| s.intervals.len())
        .sum();
    assert!(intervals <= 4, "{intervals} intervals");
}

#[test]
fn an_ssrc_flood_on_a_calls_ports_is_capped_and_the_real_stream_still_measured() {
    let mut e = Engine::new(cfg());
    let (src, dst) = (a("10.9.0.1:4000"), a("10.9.0.2:6000"));
    // 200 packets of the real stream; from the 20th on (it is established), each is
    // followed by 50 packets of fresh SSRCs.
    let mut fake = 0x7000_0000u32;
    for k in 0..200u16 {
        let t = i64::from(k) * 20;
        e.on_frame(
            ms(t),
            LinkType::RawIp,
            &udp(src, dst, &rtp(0, k, u32::from(k) * 160, 42)),
        );
        for _ in 0..if k >= 20 { 50 } else { 0 } {
            fake += 1;
            e.on_frame(
                ms(t),
                LinkType::RawIp,
                &udp(src, dst, &rtp(0, 7, 999, fake)),
            );
        }
    }
    assert!(e.active_streams() <= e.cfg.max_streams_per_call);
    assert!(e.counters().streams_refused >= 9_000 - 64);
    let recs = e.finish(EndedReason::EndOfCapture);
    assert_eq!(recs.len(), 1);
    let real = recs[0]
        .streams
        .iter()
        .find(|s| s.ssrc == Ssrc(42))
        .expect("the real stream");
    assert_eq!((real.packets, real.lost), (200, 0));
    assert!(recs[0].streams.len() <= 64);
}
