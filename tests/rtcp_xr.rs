//! The endpoints' own view of a call, beside the probe's: an RTCP XR packet (RFC 3611
//! VoIP Metrics and Statistics Summary blocks) and an RFC 6035 `vq-rtcpxr` PUBLISH,
//! both written here byte by byte with known values, in a generated call that
//! `vqprobe analyze` reads. The decoded fields are held to the values put in (the
//! hand-computed unit conversions are in the comments) and, for the XR blocks, to
//! tshark's RTCP dissector reading the same capture.

#[path = "support/capgen.rs"]
mod capgen;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use capgen::*;
use serde_json::Value;

const CALLER_SIP: &str = "10.0.0.1:5060";
const CALLEE_SIP: &str = "10.0.0.2:5060";
const COLLECTOR: &str = "10.0.0.9:5060";
const CALLER_MEDIA: &str = "10.0.0.1:40000";
const CALLEE_MEDIA: &str = "10.0.0.2:50000";
const CALL_ID: &str = "xr-call-1@10.0.0.1";
const A_SSRC: u32 = 0x1234_5678;
const B_SSRC: u32 = 0x8765_4321;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address literal")
}

/// An XR packet from the callee about the caller's stream: a VoIP Metrics block and a
/// Statistics Summary block.
fn xr_packet() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&[0x80, 207, 0, 0]);
    b.extend_from_slice(&B_SSRC.to_be_bytes());
    // VoIP Metrics (BT 7, length 8).
    b.extend_from_slice(&[7, 0, 0, 8]);
    b.extend_from_slice(&A_SSRC.to_be_bytes());
    b.extend_from_slice(&[13, 26, 128, 5]); // loss, discard, burst and gap density (/256)
    b.extend_from_slice(&120u16.to_be_bytes()); // burst duration
    b.extend_from_slice(&520u16.to_be_bytes()); // gap duration
    b.extend_from_slice(&45u16.to_be_bytes()); // round-trip delay
    b.extend_from_slice(&60u16.to_be_bytes()); // end-system delay
    b.extend_from_slice(&[(-18i8) as u8, (-62i8) as u8, 127, 16]); // SL, NL, RERL n/a, Gmin
    b.extend_from_slice(&[48, 127, 25, 21]); // R, ext R n/a, MOS-LQ 2.5, MOS-CQ 2.1
    b.extend_from_slice(&[0b1111_0101, 0]); // PLC standard, JB adaptive, rate 5
    b.extend_from_slice(&20u16.to_be_bytes()); // JB nominal
    b.extend_from_slice(&60u16.to_be_bytes()); // JB maximum
    b.extend_from_slice(&200u16.to_be_bytes()); // JB absolute maximum
                                                // Statistics Summary (BT 6, length 9): L, D, J set, ToH 1 (IPv4 TTL).
    b.extend_from_slice(&[6, 0b1110_1000, 0, 9]);
    b.extend_from_slice(&A_SSRC.to_be_bytes());
    b.extend_from_slice(&100u16.to_be_bytes());
    b.extend_from_slice(&350u16.to_be_bytes());
    for w in [7u32, 2, 8, 400, 120, 33] {
        b.extend_from_slice(&w.to_be_bytes());
    }
    b.extend_from_slice(&[60, 64, 63, 1]);
    let words = (b.len() / 4 - 1) as u16;
    b[2..4].copy_from_slice(&words.to_be_bytes());
    b
}

/// The caller's end-of-call report (RFC 6035): its LocalMetrics describe the callee's
/// stream it received.
fn publish() -> String {
    let body = format!(
        "VQSessionReport: CallTerm\r\n\
CallID: {CALL_ID}\r\n\
LocalID: <sip:+447700900123@10.0.0.1>\r\n\
RemoteID: <sip:+15551230000@10.0.0.2>\r\n\
LocalAddr: IP=10.0.0.1 PORT=40000 SSRC=0x{A_SSRC:08x}\r\n\
RemoteAddr: IP=10.0.0.2 PORT=50000 SSRC=0x{B_SSRC:08x}\r\n\
LocalMetrics:\r\n\
Timestamps: START=2023-11-14T22:13:23Z STOP=2023-11-14T22:13:53Z\r\n\
SessionDesc: PT=0 PD=PCMU SR=8000 FD=20 FPP=1 PPS=50 PLC=3 SSUP=off\r\n\
JitterBuffer: JBA=3 JBR=1 JBN=40 JBM=80 JBX=200\r\n\
PacketLoss: NLR=2.5 JDR=1.0\r\n\
BurstGapLoss: BLD=10 BD=60 GLD=1.5 GD=800 GMIN=16\r\n\
Delay: RTD=90 ESD=70 SOWD=45 IAJ=4 MAJ=3\r\n\
Signal: SL=-20 NL=-55 RERL=48\r\n\
QualityEst: RLQ=80 RCQ=78 MOSLQ=4.0 MOSCQ=3.9\r\n"
    );
    format!(
        "PUBLISH sip:collector@10.0.0.9 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKpub1\r\n\
From: <sip:+447700900123@10.0.0.1>;tag=pub1\r\n\
To: <sip:collector@10.0.0.9>\r\n\
Call-ID: publish-1@10.0.0.1\r\n\
CSeq: 1 PUBLISH\r\n\
Max-Forwards: 70\r\n\
Event: vq-rtcpxr\r\n\
Content-Type: application/vq-rtcpxr\r\n\
Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn tshark_fields(pcap: &Path, fields: &[&str]) -> Vec<String> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(pcap).args([
        "-o",
        "rtcp.heuristic_rtcp:TRUE",
        "-Y",
        "rtcp.xr.bt",
        "-T",
        "fields",
    ]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("run tshark");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next().expect("tshark decoded the XR packet");
    line.split('\t').map(str::to_string).collect()
}

fn f(v: &Value, key: &str) -> Option<f64> {
    v[key].as_f64()
}

#[test]
fn xr_blocks_and_rfc6035_report_beside_the_probe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (addr(CALLER_MEDIA), addr(CALLEE_MEDIA));
    let dialog = SipDialog::new(
        CALL_ID,
        "+447700900123",
        "+15551230000",
        addr(CALLER_SIP),
        addr(CALLEE_SIP),
    );
    let t_invite = BASE_TIME + secs(1);
    let t_answer = t_invite + ms(500);
    let start = t_answer + ms(20);
    let a_to_b = StreamSpec::pcmu(a, b, A_SSRC, start, 1000);
    let b_to_a = StreamSpec::pcmu(b, a, B_SSRC, start + us(7_000), 1000);
    let mut sc = Scenario::new();
    sc.add_stream(&a_to_b);
    sc.add_stream(&b_to_a);
    let rtcp = |p: SocketAddr| SocketAddr::new(p.ip(), p.port() + 1);
    sc.push(Event::udp(start + secs(10), rtcp(b), rtcp(a), xr_packet()));
    let t_bye = b_to_a.end_time() + ms(20);
    sc.extend(dialog.completed(t_invite, t_answer, t_bye, &Sdp::pcmu(a), &Sdp::pcmu(b)));
    sc.push(Event::udp(
        t_bye + ms(30),
        addr(CALLER_SIP),
        addr(COLLECTOR),
        publish().into_bytes(),
    ));
    let pcap = dir.path().join("xr.pcap");
    sc.write(&pcap, FileFormat::PcapNanos, LinkLayer::Ethernet)
        .expect("write capture");

    let out = Command::new(env!("CARGO_BIN_EXE_vqprobe"))
        .arg("analyze")
        .arg(&pcap)
        .args(["--format", "json", "--local-net", "10.0.0.2/32"])
        .current_dir(dir.path())
        .output()
        .expect("run vqprobe");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let calls = doc["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 1, "the PUBLISH is no call of its own: {doc}");
    let call = &calls[0];
    assert_eq!(call["sip_call_id"], CALL_ID);
    let stream = |ssrc: u32| {
        call["streams"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["ssrc"] == format!("0x{ssrc:08x}")))
            .unwrap_or_else(|| panic!("stream {ssrc:#x} in {call}"))
    };

    // The callee's XR about the caller's stream.
    let ab = stream(A_SSRC);
    let xr = &ab["xr"];
    assert_eq!(xr["source"], "rtcp_xr");
    assert_eq!(xr["reports"], 1);
    let m = &xr["latest"];
    let want = [
        ("loss_rate", Some(0.050781)),    // 13/256 = 0.05078125
        ("discard_rate", Some(0.101563)), // 26/256 = 0.1015625
        ("burst_density", Some(0.5)),     // 128/256
        ("gap_density", Some(0.019531)),  // 5/256 = 0.01953125
        ("burst_duration_ms", Some(120.0)),
        ("gap_duration_ms", Some(520.0)),
        ("round_trip_delay_ms", Some(45.0)),
        ("end_system_delay_ms", Some(60.0)),
        ("signal_level_dbm", Some(-18.0)), // 0xee as a signed octet
        ("noise_level_dbm", Some(-62.0)),  // 0xc2
        ("rerl_db", None),                 // 127: unavailable
        ("gmin", Some(16.0)),
        ("r_factor", Some(48.0)),
        ("ext_r_factor", None), // 127: unavailable
        ("mos_lq", Some(2.5)),  // 25 / 10
        ("mos_cq", Some(2.1)),  // 21 / 10
        ("jb_rate", Some(5.0)),
        ("jb_nominal_ms", Some(20.0)),
        ("jb_max_ms", Some(60.0)),
        ("jb_abs_max_ms", Some(200.0)),
    ];
    for (k, v) in want {
        assert_eq!(f(m, k), v, "xr.latest.{k}: {m}");
    }
    assert_eq!(m["plc"], "standard");
    assert_eq!(m["jb_adaptive"], true);
    assert_eq!(
        xr["worst"], xr["latest"],
        "one report is both latest and worst"
    );
    let s = &xr["summary"];
    assert_eq!(
        (s["begin_seq"].as_u64(), s["end_seq"].as_u64()),
        (Some(100), Some(350))
    );
    assert_eq!(
        (s["lost_packets"].as_u64(), s["dup_packets"].as_u64()),
        (Some(7), Some(2))
    );
    // Jitter in timestamp units over the 8 kHz clock: 8, 400, 120, 33 -> ms.
    for (k, v) in [
        ("min_jitter_ms", 1.0),
        ("max_jitter_ms", 50.0),
        ("mean_jitter_ms", 15.0),
        ("dev_jitter_ms", 4.125),
    ] {
        assert_eq!(f(s, k), Some(v), "xr.summary.{k}: {s}");
    }
    assert_eq!(s["ttl_kind"], "ipv4_ttl");
    assert_eq!(
        [&s["min_ttl"], &s["max_ttl"], &s["mean_ttl"], &s["dev_ttl"]].map(|v| v.as_u64()),
        [Some(60), Some(64), Some(63), Some(1)]
    );

    // tshark reads the same XR bytes to the same raw values.
    let t = tshark_fields(
        &pcap,
        &[
            "rtcp.xr.voipmetrics.burstdensity",
            "rtcp.xr.voipmetrics.gapdensity",
            "rtcp.xr.voipmetrics.burstduration",
            "rtcp.xr.voipmetrics.gapduration",
            "rtcp.xr.voipmetrics.rtdelay",
            "rtcp.xr.voipmetrics.esdelay",
            "rtcp.xr.voipmetrics.signallevel",
            "rtcp.xr.voipmetrics.noiselevel",
            "rtcp.xr.voipmetrics.gmin",
            "rtcp.xr.voipmetrics.rfactor",
            "rtcp.xr.voipmetrics.moslq",
            "rtcp.xr.voipmetrics.moscq",
            "rtcp.xr.voipmetrics.jbrate",
            "rtcp.xr.voipmetrics.jbnominal",
            "rtcp.xr.voipmetrics.jbmax",
            "rtcp.xr.voipmetrics.jbabsmax",
            "rtcp.xr.stats.lost",
            "rtcp.xr.stats.dups",
            "rtcp.xr.stats.minjitter",
            "rtcp.xr.stats.maxjitter",
            "rtcp.xr.stats.meanjitter",
            "rtcp.xr.stats.devjitter",
            "rtcp.xr.stats.minttl",
            "rtcp.xr.stats.maxttl",
        ],
    );
    let num = |i: usize| {
        t[i].parse::<f64>()
            .unwrap_or_else(|_| panic!("tshark field {i}: {t:?}"))
    };
    assert_eq!(num(0) / 256.0, 0.5);
    assert_eq!(
        ((num(1) / 256.0) * 1e6).round() / 1e6,
        f(m, "gap_density").expect("gap")
    );
    for (i, k) in [
        (2, "burst_duration_ms"),
        (3, "gap_duration_ms"),
        (4, "round_trip_delay_ms"),
        (5, "end_system_delay_ms"),
        (6, "signal_level_dbm"),
        (7, "noise_level_dbm"),
        (8, "gmin"),
        (9, "r_factor"),
        (12, "jb_rate"),
        (13, "jb_nominal_ms"),
        (14, "jb_max_ms"),
        (15, "jb_abs_max_ms"),
    ] {
        assert_eq!(Some(num(i)), f(m, k), "tshark vs vqprobe for {k}");
    }
    assert!(
        (num(10) - 2.5).abs() < 1e-6 && (num(11) - 2.1).abs() < 1e-6,
        "{t:?}"
    );
    assert_eq!((num(16), num(17)), (7.0, 2.0));
    assert_eq!(
        (num(18) / 8.0, num(19) / 8.0, num(20) / 8.0, num(21) / 8.0),
        (1.0, 50.0, 15.0, 4.125)
    );
    assert_eq!((num(22), num(23)), (60.0, 64.0));

    // The caller's RFC 6035 report lands on the stream it received.
    let ba = stream(B_SSRC);
    let x = &ba["xr"];
    assert_eq!(x["source"], "sip_publish");
    let m = &x["latest"];
    for (k, v) in [
        ("loss_rate", 0.025), // NLR=2.5 %
        ("discard_rate", 0.01),
        ("burst_density", 0.1),
        ("burst_duration_ms", 60.0),
        ("gap_density", 0.015),
        ("gap_duration_ms", 800.0),
        ("gmin", 16.0),
        ("round_trip_delay_ms", 90.0),
        ("end_system_delay_ms", 70.0),
        ("jitter_ms", 4.0),
        ("signal_level_dbm", -20.0),
        ("noise_level_dbm", -55.0),
        ("rerl_db", 48.0),
        ("r_factor", 80.0),
        ("r_factor_cq", 78.0),
        ("mos_lq", 4.0),
        ("mos_cq", 3.9),
        ("jb_rate", 1.0),
        ("jb_nominal_ms", 40.0),
        ("jb_max_ms", 80.0),
        ("jb_abs_max_ms", 200.0),
    ] {
        assert_eq!(f(m, k), Some(v), "publish {k}: {m}");
    }
    assert_eq!(
        (m["plc"].as_str(), m["jb_adaptive"].as_bool()),
        (Some("standard"), Some(true))
    );

    // The caller's stream is clean to the probe (MOS above 4) but the callee rates it
    // 2.1: the call is flagged. The callee's stream agrees (probe above 4, phone 3.9).
    let probe_mos = f(ab, "mos").expect("probe MOS");
    assert!(probe_mos > 4.0, "clean stream: {probe_mos}");
    assert!(f(ba, "mos").expect("probe MOS") - 3.9 < 1.0);
    assert_eq!(call["xr_disagreement"], true);
    let counters = &doc["capture"];
    assert_eq!(counters["xr_voip_metrics"], 1, "{counters}");
    assert_eq!(
        (
            counters["vq_reports"].as_u64(),
            counters["vq_reports_unmatched"].as_u64()
        ),
        (Some(1), Some(0))
    );
}
