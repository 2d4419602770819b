//! RTCP parser tests: every packet type, damage of every kind, and real packets from
//! the shared captures.

use super::*;

/// Builds one RTCP packet with a correct length field; `body` must be
/// whole words.
fn packet(count: u8, pt: u8, body: &[u8]) -> Vec<u8> {
    assert_eq!(body.len() % 4, 0, "test body must be whole 32-bit words");
    let words = u16::try_from(body.len() / 4).expect("test body too long");
    let mut v = vec![0x80 | count, pt];
    v.extend_from_slice(&words.to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn report_block_bytes(rb: &ReportBlock) -> Vec<u8> {
    let mut v = rb.ssrc.to_be_bytes().to_vec();
    let cum = rb.cumulative_lost.to_be_bytes();
    v.extend_from_slice(&[rb.fraction_lost, cum[1], cum[2], cum[3]]);
    for w in [rb.ext_highest_seq, rb.jitter, rb.lsr, rb.dlsr] {
        v.extend_from_slice(&w.to_be_bytes());
    }
    v
}

fn sample_blocks() -> [ReportBlock; 2] {
    [
        ReportBlock {
            ssrc: 0x1111_2222,
            fraction_lost: 64,
            cumulative_lost: 1234,
            ext_highest_seq: 0x0001_0005,
            jitter: 160,
            lsr: 0xb705_2000,
            dlsr: 0x0005_4000,
        },
        ReportBlock {
            ssrc: 0x3333_4444,
            fraction_lost: 0,
            cumulative_lost: -3,
            ext_highest_seq: 65535,
            jitter: 7,
            lsr: 0,
            dlsr: 0,
        },
    ]
}

fn sr_bytes() -> Vec<u8> {
    let mut body = Vec::new();
    for w in [0xdead_beef_u32, 0xdd3a_c170, 0x4d61_4df8, 32000, 200, 32000] {
        body.extend_from_slice(&w.to_be_bytes());
    }
    for rb in sample_blocks() {
        body.extend(report_block_bytes(&rb));
    }
    packet(2, PT_SR, &body)
}

fn sdes_bytes(ssrc: u32, cname: &str) -> Vec<u8> {
    let mut body = ssrc.to_be_bytes().to_vec();
    body.extend_from_slice(&[SDES_CNAME, u8::try_from(cname.len()).expect("short cname")]);
    body.extend_from_slice(cname.as_bytes());
    // A TOOL item, then END and padding to the word boundary.
    body.extend_from_slice(&[6, 3, b'v', b'q', b'p', 0]);
    body.resize(body.len().next_multiple_of(4), 0);
    packet(1, PT_SDES, &body)
}

fn bye_bytes(ssrc: u32, reason: &str) -> Vec<u8> {
    let mut body = ssrc.to_be_bytes().to_vec();
    body.push(u8::try_from(reason.len()).expect("short reason"));
    body.extend_from_slice(reason.as_bytes());
    body.resize(body.len().next_multiple_of(4), 0);
    packet(1, PT_BYE, &body)
}

fn voip_metrics_block() -> Vec<u8> {
    let words: [[u8; 4]; 9] = [
        // BT 7, reserved, block length 8.
        [XR_BT_VOIP_METRICS, 0, 0, 8],
        // SSRC of source.
        [0x0a, 0x0b, 0x0c, 0x0d],
        // Loss 13/256, discard 26/256, burst density 128, gap density 5.
        [13, 26, 128, 5],
        // Burst duration 120 ms, gap duration 520 ms.
        [0x00, 0x78, 0x02, 0x08],
        // Round trip 45 ms, end system delay 60 ms.
        [0x00, 0x2d, 0x00, 0x3c],
        // Signal -18 dBm0, noise -62 dBm0, RERL unavailable, Gmin 16.
        [0xee, 0xc2, 127, 16],
        // R 82, external R unavailable, MOS-LQ 3.8, MOS-CQ 3.6.
        [82, 127, 38, 36],
        // RX config: PLC standard, JB adaptive, rate 5; JB nominal 20 ms.
        [0b1111_0101, 0, 0x00, 0x14],
        // JB maximum 60 ms, absolute maximum 200 ms.
        [0x00, 0x3c, 0x00, 0xc8],
    ];
    words.concat()
}

fn xr_bytes() -> Vec<u8> {
    let mut body = 0x5555_6666_u32.to_be_bytes().to_vec();
    // DLRR with two sub-blocks.
    body.extend_from_slice(&[XR_BT_DLRR, 0, 0, 6]);
    for w in [0x0102_0304_u32, 0xb705_2000, 0x0005_4000, 0x0a0b_0c0d, 0, 0] {
        body.extend_from_slice(&w.to_be_bytes());
    }
    // Receiver Reference Time.
    body.extend_from_slice(&[XR_BT_RRT, 0, 0, 2]);
    body.extend_from_slice(&0xdd3a_c170_u32.to_be_bytes());
    body.extend_from_slice(&0x4d61_4df8_u32.to_be_bytes());
    body.extend(voip_metrics_block());
    // A block type this parser does not decode (BT 42, unassigned) with 2 words.
    body.extend_from_slice(&[42, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8]);
    packet(0, PT_XR, &body)
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test hex"))
        .collect()
}

fn only(data: &[u8]) -> RtcpPacket {
    let c = parse_compound(data).expect("valid test packet");
    assert!(!c.truncated, "{:?}", c.error);
    assert_eq!(c.packets.len(), 1);
    c.packets.into_iter().next().expect("one packet")
}

#[test]
fn sender_report_with_two_blocks() {
    let RtcpPacket::Sr(sr) = only(&sr_bytes()) else {
        panic!("not an SR");
    };
    assert_eq!(sr.ssrc, 0xdead_beef);
    assert_eq!(
        sr.ntp,
        NtpTimestamp {
            seconds: 0xdd3a_c170,
            fraction: 0x4d61_4df8
        }
    );
    assert_eq!(sr.ntp.middle32(), 0xc170_4d61);
    assert_eq!(sr.rtp_ts, 32000);
    assert_eq!(sr.packet_count, 200);
    assert_eq!(sr.octet_count, 32000);
    assert_eq!(sr.reports.to_vec(), sample_blocks().to_vec());
    let [a, b] = [&sr.reports[0], &sr.reports[1]];
    assert_eq!(a.cumulative_lost, 1234);
    assert_eq!(b.cumulative_lost, -3, "24-bit 0xFFFFFD sign-extends");
    assert!((a.fraction_lost_ratio() - 0.25).abs() < 1e-12);
    assert!((a.dlsr_seconds() - 5.25).abs() < 1e-12);
    assert_eq!(a.jitter_ms(8000), Some(20.0));
    assert_eq!(a.jitter_ms(0), None);
}

#[test]
fn cumulative_lost_extremes() {
    for (wire, want) in [
        ([0x7f, 0xff, 0xff], 0x7f_ffff),
        ([0x80, 0x00, 0x00], -0x80_0000),
        ([0xff, 0xff, 0xff], -1),
        ([0, 0, 0], 0),
    ] {
        let mut body = 9_u32.to_be_bytes().to_vec();
        let mut rb = report_block_bytes(&ReportBlock::default());
        rb[5..8].copy_from_slice(&wire);
        body.extend(rb);
        let RtcpPacket::Rr(rr) = only(&packet(1, PT_RR, &body)) else {
            panic!("not an RR");
        };
        assert_eq!(rr.reports[0].cumulative_lost, want);
    }
}

#[test]
fn receiver_report() {
    let mut body = 0x0102_0304_u32.to_be_bytes().to_vec();
    body.extend(report_block_bytes(&sample_blocks()[1]));
    let RtcpPacket::Rr(rr) = only(&packet(1, PT_RR, &body)) else {
        panic!("not an RR");
    };
    assert_eq!(rr.ssrc, 0x0102_0304);
    assert_eq!(rr.reports.to_vec(), vec![sample_blocks()[1]]);

    // RR with no blocks is the 8-byte minimum.
    let RtcpPacket::Rr(rr) = only(&packet(0, PT_RR, &7_u32.to_be_bytes())) else {
        panic!("not an RR");
    };
    assert_eq!((rr.ssrc, rr.reports.len()), (7, 0));
}

#[test]
fn report_count_beyond_length_is_malformed() {
    let mut body = 1_u32.to_be_bytes().to_vec();
    body.extend(report_block_bytes(&sample_blocks()[0]));
    let err = parse_compound(&packet(2, PT_RR, &body)).expect_err("count 2, room for 1");
    assert!(
        matches!(err, RtcpError::Malformed { pt: PT_RR, .. }),
        "{err}"
    );
}

#[test]
fn sdes_with_cname() {
    let RtcpPacket::Sdes(sdes) = only(&sdes_bytes(0xabcd, "alice@10.0.0.1")) else {
        panic!("not SDES");
    };
    assert_eq!(
        sdes.chunks.to_vec(),
        vec![SdesChunk {
            ssrc: 0xabcd,
            cname: Some("alice@10.0.0.1".into()),
            other_items: 1,
        }]
    );
}

#[test]
fn sdes_two_chunks_and_item_overrun() {
    // Chunk 1: CNAME "ab" + END = 4 + 2 + 2 + 1 -> padded to 12.
    // Chunk 2: no items, just END -> 4 + 1 padded to 8.
    let body = [
        0, 0, 0, 1, 1, 2, b'a', b'b', 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0,
    ];
    let RtcpPacket::Sdes(sdes) = only(&packet(2, PT_SDES, &body)) else {
        panic!("not SDES");
    };
    assert_eq!(sdes.chunks.len(), 2);
    assert_eq!(sdes.chunks[0].cname.as_deref(), Some("ab"));
    assert_eq!((sdes.chunks[1].ssrc, &sdes.chunks[1].cname), (2, &None));

    // An item claiming 200 bytes in an 8-byte body.
    let bad = [0, 0, 0, 1, 1, 200, b'a', b'b'];
    assert!(matches!(
        parse_compound(&packet(1, PT_SDES, &bad)),
        Err(RtcpError::Malformed { pt: PT_SDES, .. })
    ));
}

#[test]
fn bye_with_reason() {
    let RtcpPacket::Bye(bye) = only(&bye_bytes(0x4242, "session shutdown")) else {
        panic!("not BYE");
    };
    assert_eq!(bye.ssrcs, vec![0x4242]);
    assert_eq!(bye.reason.as_deref(), Some("session shutdown"));

    let RtcpPacket::Bye(bye) = only(&packet(0, PT_BYE, &[])) else {
        panic!("not BYE");
    };
    assert_eq!(bye, Bye::default());
}

#[test]
fn app_packet() {
    let mut body = 0x0a0b_0c0d_u32.to_be_bytes().to_vec();
    body.extend_from_slice(b"QOS1");
    body.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    let RtcpPacket::App(app) = only(&packet(3, PT_APP, &body)) else {
        panic!("not APP");
    };
    assert_eq!(
        app,
        App {
            subtype: 3,
            ssrc: 0x0a0b_0c0d,
            name: *b"QOS1",
            data_len: 8
        }
    );
    assert_eq!(app.name_str(), Some("QOS1"));
}

#[test]
fn feedback_and_unknown_types_are_skipped_by_length() {
    let mut nack = 1_u32.to_be_bytes().to_vec();
    nack.extend_from_slice(&2_u32.to_be_bytes());
    nack.extend_from_slice(&[0, 5, 0, 0]);
    let mut data = packet(1, PT_RTPFB, &nack);
    data.extend(packet(1, PT_PSFB, &nack[..8]));
    data.extend(packet(0, 210, &[9; 12]));
    data.extend(packet(0, PT_RR, &3_u32.to_be_bytes()));
    let c = parse_compound(&data).expect("valid");
    assert!(!c.truncated);
    assert_eq!(
        c.packets[..3],
        [
            RtcpPacket::Feedback {
                pt: PT_RTPFB,
                ssrc: 1
            },
            RtcpPacket::Feedback {
                pt: PT_PSFB,
                ssrc: 1
            },
            RtcpPacket::Unknown { pt: 210 },
        ]
    );
    assert!(matches!(&c.packets[3], RtcpPacket::Rr(rr) if rr.ssrc == 3));
}

/// tshark 4.x decodes these same bytes (via text2pcap) to the values
/// asserted here, including "RERL: Unavailable" for 127.
#[test]
fn xr_with_dlrr_rrt_voip_metrics_and_unknown() {
    let RtcpPacket::Xr(xr) = only(&xr_bytes()) else {
        panic!("not XR");
    };
    assert_eq!(xr.ssrc, 0x5555_6666);
    assert_eq!(xr.blocks.len(), 4);
    assert_eq!(
        xr.blocks[0],
        XrBlock::Dlrr(vec![
            DlrrSubBlock {
                ssrc: 0x0102_0304,
                lrr: 0xb705_2000,
                dlrr: 0x0005_4000
            },
            DlrrSubBlock {
                ssrc: 0x0a0b_0c0d,
                lrr: 0,
                dlrr: 0
            },
        ])
    );
    assert_eq!(
        xr.blocks[1],
        XrBlock::ReceiverReferenceTime(NtpTimestamp {
            seconds: 0xdd3a_c170,
            fraction: 0x4d61_4df8
        })
    );
    let XrBlock::VoipMetrics(vm) = &xr.blocks[2] else {
        panic!("not VoIP Metrics: {:?}", xr.blocks[2]);
    };
    let want = VoipMetrics {
        ssrc: 0x0a0b_0c0d,
        loss_rate: 13.0 / 256.0,
        discard_rate: 26.0 / 256.0,
        burst_density: 0.5,
        gap_density: 5.0 / 256.0,
        burst_duration_ms: 120,
        gap_duration_ms: 520,
        round_trip_delay_ms: 45,
        end_system_delay_ms: 60,
        signal_level: Some(-18),
        noise_level: Some(-62),
        rerl: None,
        gmin: 16,
        r_factor: Some(82),
        ext_r_factor: None,
        mos_lq: Some(3.8),
        mos_cq: Some(3.6),
        rx_config: RxConfig {
            plc: PlcMethod::Standard,
            jba: JitterBufferMode::Adaptive,
            jb_rate: 5,
        },
        jb_nominal: 20,
        jb_maximum: 60,
        jb_abs_max: 200,
    };
    assert_eq!(*vm, want);
    assert_eq!(xr.blocks[3], XrBlock::Unknown { bt: 42, len: 8 });
}

#[test]
fn voip_metrics_unavailable_sentinels() {
    let mut block = voip_metrics_block();
    // signal, noise, RERL, gmin, R, ext R, MOS-LQ, MOS-CQ
    block[20..28].copy_from_slice(&[127, 127, 127, 16, 127, 127, 127, 127]);
    let mut body = 1_u32.to_be_bytes().to_vec();
    body.extend(block);
    let RtcpPacket::Xr(xr) = only(&packet(0, PT_XR, &body)) else {
        panic!("not XR");
    };
    let XrBlock::VoipMetrics(vm) = xr.blocks[0] else {
        panic!("not VoIP Metrics");
    };
    assert_eq!(
        (vm.signal_level, vm.noise_level, vm.rerl),
        (None, None, None)
    );
    assert_eq!((vm.r_factor, vm.ext_r_factor), (None, None));
    assert_eq!((vm.mos_lq, vm.mos_cq), (None, None));
}

#[test]
fn xr_bad_block_lengths_are_malformed() {
    // VoIP Metrics with block length 7 instead of 8.
    let mut block = voip_metrics_block();
    block[3] = 7;
    block.truncate(4 + 28);
    let mut body = 1_u32.to_be_bytes().to_vec();
    body.extend(block);
    assert!(matches!(
        parse_compound(&packet(0, PT_XR, &body)),
        Err(RtcpError::Malformed { pt: PT_XR, .. })
    ));
    // A block claiming more words than the packet has.
    let body = [0, 0, 0, 1, 99, 0, 0, 9, 0, 0, 0, 0];
    assert!(matches!(
        parse_compound(&packet(0, PT_XR, &body)),
        Err(RtcpError::Malformed { pt: PT_XR, .. })
    ));
    // DLRR whose length is not a multiple of 3 words.
    let body = [0, 0, 0, 1, XR_BT_DLRR, 0, 0, 1, 0, 0, 0, 0];
    assert!(matches!(
        parse_compound(&packet(0, PT_XR, &body)),
        Err(RtcpError::Malformed { pt: PT_XR, .. })
    ));
}

fn sr_sdes_bye() -> Vec<u8> {
    let mut data = sr_bytes();
    data.extend(sdes_bytes(0xdead_beef, "bob@example"));
    data.extend(bye_bytes(0xdead_beef, "bye"));
    data
}

#[test]
fn compound_sr_sdes_bye() {
    let data = sr_sdes_bye();
    assert!(looks_like_rtcp(&data));
    let c = parse_compound(&data).expect("valid compound");
    assert!(!c.truncated);
    assert_eq!(c.error, None);
    assert_eq!(c.packets.len(), 3);
    assert!(matches!(&c.packets[0], RtcpPacket::Sr(sr) if sr.reports.len() == 2));
    assert!(matches!(&c.packets[1], RtcpPacket::Sdes(s)
        if s.chunks[0].cname.as_deref() == Some("bob@example")));
    assert!(matches!(&c.packets[2], RtcpPacket::Bye(b) if b.reason.as_deref() == Some("bye")));
    let blocks: Vec<_> = c.report_blocks().collect();
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[1], (0xdead_beef, &sample_blocks()[1]));
}

#[test]
fn padding_on_last_packet() {
    let mut data = sr_bytes();
    // RR with 8 bytes of padding: SSRC word + 8 pad bytes, count last.
    let mut body = 0x77_u32.to_be_bytes().to_vec();
    body.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 8]);
    let mut rr = packet(0, PT_RR, &body);
    rr[0] |= 0x20;
    data.extend(rr);
    let c = parse_compound(&data).expect("valid padded compound");
    assert!(!c.truncated);
    assert!(
        matches!(&c.packets[1], RtcpPacket::Rr(rr) if rr.ssrc == 0x77 && rr.reports.is_empty())
    );

    // Padding that would leave the SSRC short makes the RR malformed.
    let mut short = packet(0, PT_RR, &[0, 0, 0, 4]);
    short[0] |= 0x20;
    assert!(matches!(
        parse_compound(&short),
        Err(RtcpError::Malformed { pt: PT_RR, .. })
    ));
    // A count of zero, and a count bigger than the body, are bad padding.
    for pad in [0_u8, 9] {
        let mut bad = packet(0, PT_RR, &[0, 0, 0, 0, 0, 0, 0, pad]);
        bad[0] |= 0x20;
        assert!(
            matches!(parse_compound(&bad), Err(RtcpError::BadPadding { padding, .. }) if padding == pad)
        );
    }
}

#[test]
fn bad_version_and_packet_type() {
    let mut data = sr_bytes();
    data[0] = (data[0] & 0x3f) | 0x40; // version 1
    assert_eq!(
        parse_compound(&data),
        Err(RtcpError::BadVersion {
            offset: 0,
            version: 1
        })
    );
    assert!(!looks_like_rtcp(&data));
    let mut data = sr_bytes();
    data[1] = 96;
    assert_eq!(
        parse_compound(&data),
        Err(RtcpError::BadPacketType { offset: 0, pt: 96 })
    );
}

#[test]
fn later_bad_packet_sets_truncated() {
    let mut data = sr_bytes();
    let sr_len = data.len();
    let mut sdes = sdes_bytes(1, "x");
    sdes[0] = 0x41; // version 1 in the second packet
    data.extend(sdes);
    let c = parse_compound(&data).expect("first packet is fine");
    assert!(c.truncated);
    assert_eq!(c.packets.len(), 1);
    assert_eq!(
        c.error,
        Some(RtcpError::BadVersion {
            offset: sr_len,
            version: 1
        })
    );
}

#[test]
fn every_prefix_of_a_compound_is_handled() {
    let mut data = sr_sdes_bye();
    data.extend(xr_bytes());
    let first_len = 4 + 24 + 48;
    for end in 0..=data.len() {
        let prefix = &data[..end];
        match parse_compound(prefix) {
            Ok(c) => {
                assert!(!c.packets.is_empty());
                // Whole packets only: a prefix that splits one is flagged.
                assert_eq!(c.truncated, c.error.is_some());
            }
            Err(e) => {
                // Only a cut inside the first packet may fail outright.
                assert!(end < first_len, "prefix {end}: {e}");
                assert!(
                    matches!(e, RtcpError::Truncated { .. }),
                    "prefix {end}: {e}"
                );
            }
        }
        let _ = looks_like_rtcp(prefix);
        let _ = is_muxed_rtcp(prefix);
    }
    let full = parse_compound(&data).expect("full compound");
    assert_eq!((full.packets.len(), full.truncated), (4, false));
    let cut = parse_compound(&data[..data.len() - 1]).expect("first packet intact");
    assert!(cut.truncated);
    assert_eq!(cut.packets.len(), 3);
}

/// Deterministic xorshift64 so a failure reproduces exactly.
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

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }
}

#[test]
fn fuzz_random_and_mutated_bytes_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut seed_data = sr_sdes_bye();
    seed_data.extend(xr_bytes());
    let mut parsed = 0_usize;
    for i in 0..100_000 {
        let data: Vec<u8> = match i % 3 {
            // Pure noise.
            0 => {
                let len = usize::from(rng.byte() % 128);
                (0..len).map(|_| rng.byte()).collect()
            }
            // Plausible headers with random small lengths and bodies,
            // so the per-type parsers see hostile input, not just the
            // header checks.
            1 => {
                let mut v = Vec::new();
                for _ in 0..(1 + rng.byte() % 4) {
                    let words = rng.byte() % 12;
                    v.push(0x80 | (rng.byte() & 0x3f));
                    v.push(200 + rng.byte() % 8);
                    v.extend_from_slice(&[0, words]);
                    let extra = usize::from(rng.byte() % 3);
                    for _ in 0..usize::from(words) * 4 + extra.saturating_sub(1) {
                        v.push(rng.byte());
                    }
                }
                v
            }
            // A valid compound with a few bytes flipped.
            _ => {
                let mut v = seed_data.clone();
                for _ in 0..(1 + rng.byte() % 4) {
                    let at = usize::try_from(rng.next() % v.len() as u64).unwrap_or(0);
                    if let Some(b) = v.get_mut(at) {
                        *b ^= rng.byte();
                    }
                }
                v
            }
        };
        if parse_compound(&data).is_ok() {
            parsed += 1;
        }
        let _ = looks_like_rtcp(&data);
        let _ = is_muxed_rtcp(&data);
    }
    // Not a correctness claim, just proof the generators reach the
    // parsers rather than all failing at the version check.
    assert!(parsed > 10_000, "only {parsed} inputs parsed");
}

#[test]
fn rtt_rfc3550_example() {
    // RFC 3550 §6.4.1 figure: A = 0xb7108000, LSR = 0xb7052000,
    // DLSR = 0x00054000 (5.25 s) -> 0x00062000 = 6.125 s.
    let rtt = rtt_rfc3550(0xb710_8000, 0xb705_2000, 0x0005_4000);
    assert_eq!(rtt, 0x0006_2000);
    assert!((f64::from(rtt) / 65536.0 - 6.125).abs() < 1e-12);
    // Wrapping: A just past a 16-bit-seconds rollover gives 1.25 s.
    assert_eq!(
        rtt_rfc3550(0x0000_8000, 0xffff_0000, 0x0000_4000),
        0x0001_4000
    );
}

#[test]
fn rtt_passive_observer() {
    let rtt = rtt_from_report(10.5, 4.0, 6 * 65536);
    assert!((rtt - 0.5).abs() < 1e-12);
    assert!(
        rtt_from_report(10.0, 4.0, 7 * 65536) < 0.0,
        "negative is reported as is"
    );
}

#[test]
fn looks_like_rtcp_accepts_sr_rr_and_rejects_rtp() {
    assert!(looks_like_rtcp(&sr_bytes()));
    assert!(looks_like_rtcp(&sr_sdes_bye()));
    assert!(looks_like_rtcp(&packet(0, PT_RR, &1_u32.to_be_bytes())));
    assert!(looks_like_rtcp(&xr_bytes()));
    // Length field past the end of the datagram.
    assert!(!looks_like_rtcp(&sr_bytes()[..28]));
    // Not a multiple of 4 (e.g. SRTCP with an 80-bit tag).
    let mut odd = sr_bytes();
    odd.extend_from_slice(&[0; 14]);
    assert!(!looks_like_rtcp(&odd));
    assert!(is_muxed_rtcp(&odd));
    assert!(!looks_like_rtcp(&[]));
    assert!(!looks_like_rtcp(&[0x80, 200, 0]));

    // 172-byte RTP packets (12-byte header + 160 bytes of G.711) with
    // and without the marker bit: PT 0, 8, 96, 111.
    for pt in [0_u8, 8, 96, 111] {
        for marker in [0, 0x80] {
            let mut rtp = vec![0x80, marker | pt, 0x12, 0x34];
            rtp.extend_from_slice(&[0, 0, 0xa0, 0, 0xde, 0xad, 0xbe, 0xef]);
            rtp.extend_from_slice(&[0xd5; 160]);
            assert!(!looks_like_rtcp(&rtp), "PT {pt} marker {marker}");
            assert!(!is_muxed_rtcp(&rtp), "PT {pt} marker {marker}");
        }
    }
    // The RFC 5761 §4 collision: marker set, PT 72 reads as SR (200),
    // and a small sequence number reads as a length that fits.
    let mut collide = vec![0x80, 0x80 | 72, 0x00, 0x05];
    collide.extend_from_slice(&[0; 168]);
    assert!(looks_like_rtcp(&collide));
    assert!(is_muxed_rtcp(&collide));
}

// --- Real captures (payloads extracted with tshark, fields as tshark
// --- decodes them with `-V -Y rtcp`).

/// nDPI rtcp_multiple_pkts_in_the_same_datagram.pcap frame 1
/// (FreeSWITCH, t = 0.000000): SR + SDES.
const NDPI_SR: &str = "81c8000c5d931534dd3ac1704d614df800007d00000000c800007d0000000000000000010000000000000000000000000000000081ca000e5d931534010835643933313533340725467265655357495443482e6f7267202d2d20436f6d6520746f20436c7565436f6e2e636f6d000000";
/// Same capture, frame 4 (t = 4.028126): RR + SDES answering frame 1.
const NDPI_RR: &str = "81c9000701932db45d931534000000010000bf8b00000006c1704d610004051c81ca000e01932db40107313933326462340725467265655357495443482e6f7267202d2d20436f6d6520746f20436c7565436f6e2e636f6d00000000";
/// sngrep aaa.pcap frame 633: SR + SDES (CNAME, TOOL) + BYE.
const SNGREP_SR_SDES_BYE: &str = "80c800063796cb7142c907ca5efac603000024c3000000090000060c81ca000b3796cb71011d31313839343239372d3434333261396638403139322e3136382e312e3206055349505053000081cb00063796cb711073657373696f6e2073687574646f776e000000";
/// sipnab rtp-protocol.pcap frame 9: SR with no blocks + SDES.
const SIPNAB_SR: &str =
    "80c8000644c61afb001cd3b3da1cab0c32a1053c00000001000000a081ca000344c61afb0103633000000000";
/// nDPI stun_google_meet.pcapng frame 153: SRTCP, clear APP header then
/// ciphertext.
const MEET_SRTCP: &str = "8dcc0004d2b3ec9f360e0dd519a8e700712f8d52b5365490d97b98067f71560f8b051903541489f736a996948eddbc117a555e83a8f9032112a8d65a8000000a";

#[test]
fn real_freeswitch_sr_and_rr() {
    let sr_data = hex(NDPI_SR);
    assert!(looks_like_rtcp(&sr_data));
    let c = parse_compound(&sr_data).expect("real SR");
    assert!(!c.truncated);
    let [RtcpPacket::Sr(sr), RtcpPacket::Sdes(sdes)] = &c.packets[..] else {
        panic!("expected SR + SDES: {:?}", c.packets);
    };
    assert_eq!(sr.ssrc, 0x5d93_1534);
    assert_eq!(sr.ntp.seconds, 3_711_615_344);
    assert_eq!(sr.ntp.fraction, 1_298_222_584);
    assert_eq!(sr.rtp_ts, 32000);
    assert_eq!(sr.packet_count, 200);
    assert_eq!(sr.octet_count, 32000);
    assert_eq!(
        sr.reports.to_vec(),
        vec![ReportBlock {
            ssrc: 0,
            fraction_lost: 0,
            cumulative_lost: 1,
            ext_highest_seq: 0,
            jitter: 0,
            lsr: 0,
            dlsr: 0
        }]
    );
    assert_eq!(sdes.chunks[0].ssrc, 0x5d93_1534);
    assert_eq!(sdes.chunks[0].cname.as_deref(), Some("5d931534"));
    assert_eq!(sdes.chunks[0].other_items, 1, "NOTE item");

    let rr_data = hex(NDPI_RR);
    assert!(looks_like_rtcp(&rr_data));
    let c = parse_compound(&rr_data).expect("real RR");
    let [RtcpPacket::Rr(rr), RtcpPacket::Sdes(sdes)] = &c.packets[..] else {
        panic!("expected RR + SDES: {:?}", c.packets);
    };
    assert_eq!(rr.ssrc, 0x0193_2db4);
    let block = ReportBlock {
        ssrc: 0x5d93_1534,
        fraction_lost: 0,
        cumulative_lost: 1,
        ext_highest_seq: 49035,
        jitter: 6,
        lsr: 0xc170_4d61,
        dlsr: 263_452,
    };
    assert_eq!(rr.reports.to_vec(), vec![block]);
    assert_eq!(sdes.chunks[0].cname.as_deref(), Some("1932db4"));

    // The RR's LSR names frame 1's SR; the probe saw them 4.028126 s
    // apart and the far end held the SR for 263452/65536 = 4.01996 s,
    // giving an 8.17 ms leg RTT.
    assert_eq!(block.lsr, sr.ntp.middle32());
    let rtt = rtt_from_report(4.028_126, 0.0, block.dlsr);
    assert!((rtt - 0.008_167).abs() < 1e-6, "rtt {rtt}");
}

#[test]
fn real_sngrep_sr_sdes_bye() {
    let data = hex(SNGREP_SR_SDES_BYE);
    assert!(looks_like_rtcp(&data));
    let c = parse_compound(&data).expect("real compound");
    assert!(!c.truncated);
    let [RtcpPacket::Sr(sr), RtcpPacket::Sdes(sdes), RtcpPacket::Bye(bye)] = &c.packets[..] else {
        panic!("expected SR + SDES + BYE: {:?}", c.packets);
    };
    assert_eq!(sr.ssrc, 0x3796_cb71);
    assert_eq!(
        sr.ntp,
        NtpTimestamp {
            seconds: 1_120_470_986,
            fraction: 1_593_492_995
        }
    );
    assert_eq!(
        (sr.rtp_ts, sr.packet_count, sr.octet_count),
        (9411, 9, 1548)
    );
    assert!(sr.reports.is_empty());
    assert_eq!(
        sdes.chunks.to_vec(),
        vec![SdesChunk {
            ssrc: 0x3796_cb71,
            cname: Some("11894297-4432a9f8@192.168.1.2".into()),
            other_items: 1,
        }]
    );
    assert_eq!(bye.ssrcs, vec![0x3796_cb71]);
    assert_eq!(bye.reason.as_deref(), Some("session shutdown"));
}

#[test]
fn real_sipnab_sr_without_blocks() {
    let data = hex(SIPNAB_SR);
    let c = parse_compound(&data).expect("real compound");
    let [RtcpPacket::Sr(sr), RtcpPacket::Sdes(sdes)] = &c.packets[..] else {
        panic!("expected SR + SDES: {:?}", c.packets);
    };
    assert_eq!(sr.ssrc, 0x44c6_1afb);
    assert_eq!(sr.ntp.seconds, 1_889_203);
    assert_eq!(sr.ntp.fraction, 3_659_311_884);
    assert_eq!(
        (sr.rtp_ts, sr.packet_count, sr.octet_count),
        (849_413_436, 1, 160)
    );
    assert_eq!(sdes.chunks[0].cname.as_deref(), Some("c0"));
    assert_eq!(sdes.chunks[0].other_items, 0);
}

/// nDPI discord_mid_flow.pcap frame 22: SRTCP whose clear SR is
/// followed by ciphertext (tshark: "XR, version 0, Malformed").
const DISCORD_SRTCP: &str = "80c8000600162ffde255cc8226162a136f4c01860d5c48136d2bc4f922cfd88df03aba863b5b3613ca452508a3711bda3e4e25071ca78906cc010080";

#[test]
fn real_srtcp_parses_clear_header_then_flags_damage() {
    let data = hex(DISCORD_SRTCP);
    let c = parse_compound(&data).expect("clear first packet");
    assert!(c.truncated);
    assert_eq!(
        c.error,
        Some(RtcpError::BadVersion {
            offset: 28,
            version: 0
        })
    );
    let [RtcpPacket::Sr(sr)] = &c.packets[..] else {
        panic!("expected SR: {:?}", c.packets);
    };
    assert_eq!(sr.ssrc, 0x0016_2ffd);
    assert_eq!(sr.ntp.seconds, 3_797_273_730);
    assert_eq!(sr.ntp.fraction, 638_986_771);
    assert_eq!(sr.rtp_ts, 1_867_252_102);
    assert_eq!(sr.packet_count, 224_151_571);
    assert_eq!(sr.octet_count, 1_831_585_017);

    let data = hex(MEET_SRTCP);
    assert!(is_muxed_rtcp(&data));
    let c = parse_compound(&data).expect("clear first packet");
    assert!(c.truncated);
    assert!(c.error.is_some());
    let [RtcpPacket::App(app)] = &c.packets[..] else {
        panic!("expected APP: {:?}", c.packets);
    };
    assert_eq!((app.subtype, app.ssrc, app.data_len), (13, 0xd2b3_ec9f, 8));
    assert_eq!(app.name_str(), None, "tshark: name is not a string");
}

/// A Statistics Summary block (RFC 3611 §4.6) with L, D and J set and IPv4 TTLs, and
/// one with only the L flag: unflagged fields read as absent.
#[test]
fn xr_statistics_summary() {
    let mut body = 0x0102_0304_u32.to_be_bytes().to_vec();
    // L D J ToH=01 -> 0b1110_1000.
    body.extend_from_slice(&[XR_BT_STAT_SUMMARY, 0b1110_1000, 0, 9]);
    body.extend_from_slice(&0xaabb_ccdd_u32.to_be_bytes());
    body.extend_from_slice(&100u16.to_be_bytes());
    body.extend_from_slice(&350u16.to_be_bytes());
    for w in [7u32, 2, 8, 400, 120, 33] {
        body.extend_from_slice(&w.to_be_bytes());
    }
    body.extend_from_slice(&[60, 64, 63, 1]);
    body.extend_from_slice(&[XR_BT_STAT_SUMMARY, 0b1000_0000, 0, 9]);
    body.extend_from_slice(&[0; 36]);
    let RtcpPacket::Xr(xr) = only(&packet(0, PT_XR, &body)) else {
        panic!("not XR");
    };
    let XrBlock::StatSummary(s) = xr.blocks[0] else {
        panic!("not a Statistics Summary: {:?}", xr.blocks[0]);
    };
    assert_eq!(
        s,
        StatSummary {
            ssrc: 0xaabb_ccdd,
            begin_seq: 100,
            end_seq: 350,
            lost_packets: Some(7),
            dup_packets: Some(2),
            min_jitter: Some(8),
            max_jitter: Some(400),
            mean_jitter: Some(120),
            dev_jitter: Some(33),
            ttl_kind: TtlKind::Ipv4Ttl,
            min_ttl_or_hl: Some(60),
            max_ttl_or_hl: Some(64),
            mean_ttl_or_hl: Some(63),
            dev_ttl_or_hl: Some(1),
        }
    );
    let XrBlock::StatSummary(only_l) = xr.blocks[1] else {
        panic!("not a Statistics Summary");
    };
    assert_eq!(only_l.lost_packets, Some(0));
    assert_eq!(
        (only_l.dup_packets, only_l.mean_jitter, only_l.min_ttl_or_hl),
        (None, None, None)
    );
    // Length 8 instead of 9 is malformed.
    let mut bad = 1u32.to_be_bytes().to_vec();
    bad.extend_from_slice(&[XR_BT_STAT_SUMMARY, 0, 0, 8]);
    bad.extend_from_slice(&[0; 32]);
    assert!(parse_compound(&packet(0, PT_XR, &bad)).is_err());
}
