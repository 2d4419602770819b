//! End-to-end checks of `vqprobe analyze --format json` against captures written by the
//! test-only generator (`tests/support/capgen.rs`), whose truth is computed independently
//! of the engine. Every failure names the figure, what vqprobe said and what is true.

#[path = "support/capgen.rs"]
mod capgen;

use capgen::*;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("valid socket address literal")
}

/// Run `vqprobe analyze FILE --format json EXTRA…` in `dir` (so nothing lands in the repo).
fn analyze(dir: &Path, file: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vqprobe"))
        .arg("analyze")
        .arg(file)
        .args(["--format", "json"])
        .args(extra)
        .current_dir(dir)
        .output()
        .expect("spawn vqprobe")
}

/// `analyze` that must succeed; returns the parsed JSON document.
fn analyze_json(dir: &Path, file: &Path, extra: &[&str]) -> Value {
    let out = analyze(dir, file, extra);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "vqprobe analyze {} failed ({}); stderr:\n{stderr}",
        file.display(),
        out.status
    );
    assert!(
        !stderr.contains("panicked"),
        "vqprobe panicked on {}:\n{stderr}",
        file.display()
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        let text = String::from_utf8_lossy(&out.stdout);
        panic!(
            "stdout of analyze {} is not one JSON document ({e}); it starts:\n{}",
            file.display(),
            text.chars().take(600).collect::<String>()
        )
    })
}

fn calls(doc: &Value) -> Vec<&Value> {
    doc["calls"]
        .as_array()
        .expect("`calls` is an array")
        .iter()
        .collect()
}

fn all_streams(doc: &Value) -> Vec<&Value> {
    calls(doc)
        .into_iter()
        .flat_map(|c| c["streams"].as_array().into_iter().flatten())
        .collect()
}

/// One line per stream, for "not found" messages.
fn stream_list(doc: &Value) -> String {
    all_streams(doc)
        .iter()
        .map(|s| format!("  ssrc {} {} -> {}\n", s["ssrc"], s["src"], s["dst"]))
        .collect()
}

/// The stream in `calls[*].streams[*]` with the truth's SSRC, src and dst.
fn find_stream<'a>(doc: &'a Value, t: &Truth) -> &'a Value {
    let (ssrc, src, dst) = (t.ssrc_hex(), t.src.to_string(), t.dst.to_string());
    all_streams(doc)
        .into_iter()
        .find(|s| {
            s["ssrc"] == ssrc.as_str() && s["src"] == src.as_str() && s["dst"] == dst.as_str()
        })
        .unwrap_or_else(|| {
            panic!(
                "no stream ssrc {ssrc} {src} -> {dst} in the output; streams found:\n{}",
                stream_list(doc)
            )
        })
}

/// The call whose `sip_call_id` is `id`.
fn find_call<'a>(doc: &'a Value, id: &str) -> &'a Value {
    calls(doc)
        .into_iter()
        .find(|c| c["sip_call_id"] == id)
        .unwrap_or_else(|| {
            let ids: Vec<String> = calls(doc)
                .iter()
                .map(|c| c["sip_call_id"].to_string())
                .collect();
            panic!("no call with sip_call_id {id:?}; calls have {ids:?}")
        })
}

/// Collects every differing figure so one run shows them all.
struct Checker {
    ctx: String,
    errors: Vec<String>,
}

impl Checker {
    fn new(ctx: impl Into<String>) -> Self {
        Checker {
            ctx: ctx.into(),
            errors: Vec::new(),
        }
    }

    fn fail(&mut self, field: &str, msg: String) {
        self.errors.push(format!("{}: `{field}`: {msg}", self.ctx));
    }

    fn u64(&mut self, v: &Value, field: &str, want: u64) {
        match v[field].as_u64() {
            Some(got) if got == want => {}
            _ => self.fail(field, format!("vqprobe says {}, truth is {want}", v[field])),
        }
    }

    fn f64(&mut self, v: &Value, field: &str, want: f64, tol: f64) {
        match v[field].as_f64() {
            Some(got) if (got - want).abs() <= tol => {}
            Some(got) => self.fail(
                field,
                format!(
                    "vqprobe says {got}, truth is {want} (diff {:e} > {tol:e})",
                    got - want
                ),
            ),
            None => self.fail(field, format!("vqprobe says {}, truth is {want}", v[field])),
        }
    }

    fn str(&mut self, v: &Value, field: &str, want: &str) {
        if v[field] != want {
            self.fail(
                field,
                format!("vqprobe says {}, expected {want:?}", v[field]),
            );
        }
    }

    fn null(&mut self, v: &Value, field: &str) {
        if !v[field].is_null() {
            self.fail(field, format!("vqprobe says {}, expected null", v[field]));
        }
    }

    fn that(&mut self, ok: bool, field: &str, msg: String) {
        if !ok {
            self.fail(field, msg);
        }
    }

    /// Checks of another context into this one.
    fn absorb(&mut self, other: Checker) {
        self.errors.extend(other.errors);
    }

    fn finish(self) {
        assert!(
            self.errors.is_empty(),
            "{} figure(s) differ:\n  {}",
            self.errors.len(),
            self.errors.join("\n  ")
        );
    }
}

/// Counters and RFC 3550 figures of one stream against its truth.
fn check_stream(ck: &mut Checker, s: &Value, t: &Truth) {
    ck.u64(s, "packets", t.packets);
    ck.u64(s, "expected", t.expected);
    ck.u64(s, "lost", t.lost);
    ck.u64(s, "duplicates", t.duplicates);
    ck.f64(s, "jitter_ms", t.jitter_ms, 1e-6);
}

fn stream_ctx(scenario: &str, t: &Truth) -> String {
    format!("{scenario}: stream {} {} -> {}", t.ssrc_hex(), t.src, t.dst)
}

const CALLER_MEDIA: &str = "10.0.0.1:40000";
const CALLEE_MEDIA: &str = "10.0.0.2:50000";

/// Wrap media between `caller_media` and `callee_media` in a SIP call (INVITE/100/180/
/// 200/ACK … BYE/200) whose SDP names the media ports, so the probe finds the streams by
/// SDP; the tests about figures should not hinge on RTP heuristics.
fn sip_around(
    sc: &mut Scenario,
    call_id: &str,
    caller_media: SocketAddr,
    callee_media: SocketAddr,
    media: (Nanos, Nanos),
) -> SipDialog {
    let dialog = SipDialog::new(
        call_id,
        "+447700900123",
        "+15551230000",
        SocketAddr::new(caller_media.ip(), 5060),
        SocketAddr::new(callee_media.ip(), 5060),
    );
    sc.extend(dialog.completed(
        media.0 - ms(600),
        media.0 - ms(100),
        media.1 + ms(100),
        &Sdp::pcmu(caller_media),
        &Sdp::pcmu(callee_media),
    ));
    dialog
}

/// A scenario holding one A→B stream inside a SIP call.
fn one_stream_call(call_id: &str, spec: &StreamSpec) -> (Scenario, Truth) {
    let mut sc = Scenario::new();
    let truth = sc.add_stream(spec);
    sip_around(
        &mut sc,
        call_id,
        spec.src,
        spec.dst,
        (spec.start_time, spec.end_time()),
    );
    (sc, truth)
}

fn media_start() -> Nanos {
    BASE_TIME + secs(2)
}

fn write(dir: &Path, name: &str, sc: &Scenario) -> PathBuf {
    let path = dir.join(name);
    sc.write(&path, FileFormat::PcapMicros, LinkLayer::Ethernet)
        .expect("write capture");
    path
}

// ---------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------

/// Losses: singles and bursts of 2, 3, 5 and 12 → exact counters and loss-run histogram.
#[test]
fn known_loss_bursts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = StreamSpec::pcmu(
        addr(CALLER_MEDIA),
        addr(CALLEE_MEDIA),
        0x1122_3344,
        media_start(),
        1500,
    )
    .with_loss([100, 300, 700, 1100]) // singles
    .with_loss([200, 201]) // 2
    .with_loss(400..403) // 3
    .with_loss(500..505) // 5
    .with_loss(900..912) // 12
    .with_jitter(7, 3_000, 125);
    let (sc, t) = one_stream_call("loss-bursts@capgen", &spec);
    assert_eq!(t.lost, 26, "generator self-check");
    assert_eq!(
        t.loss_runs,
        [4, 1, 1, 0, 1, 0, 0, 0, 0, 1],
        "generator self-check"
    );
    let doc = analyze_json(dir.path(), &write(dir.path(), "loss.pcap", &sc), &[]);

    let s = find_stream(&doc, &t);
    let mut ck = Checker::new(stream_ctx("known_loss_bursts", &t));
    check_stream(&mut ck, s, &t);
    let runs: Option<Vec<u64>> = s["loss_runs"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect());
    ck.that(
        runs.as_deref() == Some(&t.loss_runs[..]),
        "loss_runs",
        format!(
            "vqprobe says {}, truth is {:?}",
            s["loss_runs"], t.loss_runs
        ),
    );
    ck.finish();
}

/// Seeded arrival jitter up to ±15 ms (with the reordering it causes) → RFC 3550 jitter.
#[test]
fn jitter_seeded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = StreamSpec::pcmu(
        addr(CALLER_MEDIA),
        addr(CALLEE_MEDIA),
        0x5566_7788,
        media_start(),
        1000,
    )
    .with_jitter(42, 15_000, 125);
    let (sc, t) = one_stream_call("jitter@capgen", &spec);
    assert!(
        t.jitter_ms > 5.0,
        "generator self-check: jitter {}",
        t.jitter_ms
    );
    let doc = analyze_json(dir.path(), &write(dir.path(), "jitter.pcap", &sc), &[]);

    let s = find_stream(&doc, &t);
    let mut ck = Checker::new(stream_ctx("jitter_seeded", &t));
    ck.u64(s, "packets", t.packets);
    ck.u64(s, "expected", t.expected);
    ck.u64(s, "lost", t.lost);
    ck.f64(s, "jitter_ms", t.jitter_ms, 1e-6);
    ck.finish();
}

/// tshark 4.0.17's `rtp,streams` max delta / max and mean jitter, which the contract
/// follows exactly (the generator's model of them was checked against tshark 4.0.17 on
/// this very stream: 48.750 / 13.135 / 9.813 ms).
#[test]
fn tshark_stream_figures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = StreamSpec::pcmu(
        addr(CALLER_MEDIA),
        addr(CALLEE_MEDIA),
        0x5566_7788,
        media_start(),
        1000,
    )
    .with_jitter(42, 15_000, 125);
    let (sc, t) = one_stream_call("tshark-figures@capgen", &spec);
    let doc = analyze_json(dir.path(), &write(dir.path(), "ts.pcap", &sc), &[]);

    let s = find_stream(&doc, &t);
    let mut ck = Checker::new(stream_ctx("tshark_stream_figures", &t));
    ck.f64(s, "max_delta_ms", t.max_delta_ms, 1e-3);
    ck.f64(s, "max_jitter_ms", t.max_jitter_ms, 1e-3);
    ck.f64(s, "mean_jitter_ms", t.mean_jitter_ms, 1e-3);
    ck.finish();
}

/// Five duplicates and three adjacent swaps → duplicates counted apart, no loss.
#[test]
fn duplicates_and_reorder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = StreamSpec::pcmu(
        addr(CALLER_MEDIA),
        addr(CALLEE_MEDIA),
        0x0BAD_F00D,
        media_start(),
        500,
    )
    .with_duplicates([50, 150, 250, 350, 450])
    .with_swaps([(100, 101), (200, 201), (300, 301)]);
    let (sc, t) = one_stream_call("dups@capgen", &spec);
    assert_eq!(
        (t.duplicates, t.lost, t.out_of_order),
        (5, 0, 3),
        "generator self-check"
    );
    let doc = analyze_json(dir.path(), &write(dir.path(), "dups.pcap", &sc), &[]);

    let s = find_stream(&doc, &t);
    let mut ck = Checker::new(stream_ctx("duplicates_and_reorder", &t));
    ck.u64(s, "packets", t.packets);
    ck.u64(s, "expected", t.expected);
    ck.u64(s, "duplicates", 5);
    ck.u64(s, "lost", 0);
    ck.that(
        s["out_of_order"].as_u64().is_some_and(|n| n >= 3),
        "out_of_order",
        format!("vqprobe says {}, truth is at least 3", s["out_of_order"]),
    );
    ck.finish();
}

/// Sequence numbers wrap at 65535 and RTP timestamps at 2^32; two losses after the wrap.
#[test]
fn sequence_and_timestamp_wrap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = StreamSpec::pcmu(
        addr(CALLER_MEDIA),
        addr(CALLEE_MEDIA),
        0x7777_0001,
        media_start(),
        400,
    )
    .with_start(65_400, 0xFFFF_F000)
    .with_loss([200, 301])
    .with_jitter(9, 2_000, 125);
    let (sc, t) = one_stream_call("wrap@capgen", &spec);
    assert_eq!((t.expected, t.lost), (400, 2), "generator self-check");
    let doc = analyze_json(dir.path(), &write(dir.path(), "wrap.pcap", &sc), &[]);

    let s = find_stream(&doc, &t);
    let mut ck = Checker::new(stream_ctx("sequence_and_timestamp_wrap", &t));
    check_stream(&mut ck, s, &t);
    ck.finish();
}

/// Two-way call; A sends an SR every 5 s, B answers each with an RR naming it (LSR) after
/// a known hold (DLSR) → probe-to-B round trip, and B's report block as `remote` on A→B.
#[test]
fn rtcp_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (addr(CALLER_MEDIA), addr(CALLEE_MEDIA));
    let (a_rtcp, b_rtcp) = (addr("10.0.0.1:40001"), addr("10.0.0.2:50001"));
    let (a_ssrc, b_ssrc) = (0xA000_000A, 0xB000_000B);
    let start = media_start();
    let a_to_b = StreamSpec::pcmu(a, b, a_ssrc, start, 1000);
    let b_to_a = StreamSpec::pcmu(b, a, b_ssrc, start + us(7_000), 1000);

    let mut sc = Scenario::new();
    let t_ab = sc.add_stream(&a_to_b);
    let t_ba = sc.add_stream(&b_to_a);
    sip_around(&mut sc, "rtcp@capgen", a, b, (start, b_to_a.end_time()));

    // Different holds with the same network round trip: any aggregation of the three
    // measurements (last, mean, median…) gives the same figure.
    let mut rtts = Vec::new();
    for (k, dlsr) in [6_699u32, 13_107, 3_277].into_iter().enumerate() {
        let t_sr = start + secs(5 * (k as u64 + 1)) + us(3_000);
        let sent = ((t_sr - start) / ms(20)) as u32;
        let mut x = RtcpExchange::new(
            a_rtcp,
            b_rtcp,
            a_ssrc,
            b_ssrc,
            t_sr,
            37_250,
            dlsr,
            ReportBlock {
                fraction_lost: 64,
                cumulative_lost: 7,
                ext_highest_seq: u32::from(a_to_b.seq(sent - 1)),
                jitter: 80,
                ..ReportBlock::default()
            },
        );
        x.sr_rtp_ts = a_to_b.rtp_ts(sent);
        x.sr_packet_count = sent;
        x.sr_octet_count = sent * 160;
        rtts.push(sc.add_rtcp(&x));
    }
    let rtt = rtts.iter().sum::<f64>() / rtts.len() as f64;
    assert!(
        rtts.iter().all(|r| (r - rtt).abs() < 0.001) && (rtt - 37.25).abs() < 0.001,
        "generator self-check: {rtts:?}"
    );
    let doc = analyze_json(dir.path(), &write(dir.path(), "rtcp.pcap", &sc), &[]);

    let call = find_call(&doc, "rtcp@capgen");
    let mut ck = Checker::new("rtcp_round_trip: call rtcp@capgen quality");
    ck.f64(&call["quality"], "rtt_ms", rtt, 0.01);
    let s = find_stream(&doc, &t_ab);
    let mut sk = Checker::new(stream_ctx("rtcp_round_trip", &t_ab));
    if !s["rtt_ms"].is_null() {
        sk.f64(s, "rtt_ms", rtt, 0.01);
    }
    let mut rk = Checker::new(format!("{} remote", stream_ctx("rtcp_round_trip", &t_ab)));
    rk.f64(&s["remote"], "fraction_lost", 0.25, 1e-9);
    rk.u64(&s["remote"], "cumulative_lost", 7);
    rk.f64(&s["remote"], "jitter_ms", 10.0, 1e-6);
    // Both directions are still measured from RTP.
    let mut bk = Checker::new(stream_ctx("rtcp_round_trip", &t_ba));
    check_stream(&mut bk, find_stream(&doc, &t_ba), &t_ba);
    check_stream(&mut sk, s, &t_ab);
    ck.absorb(sk);
    ck.absorb(rk);
    ck.absorb(bk);
    ck.finish();
}

/// The same stream under every supported encapsulation and file format yields the same
/// figures, equal to the truth.
#[test]
fn vlan_qinq_ipv6_vxlan_linktypes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let variants: [(&str, FileFormat, LinkLayer, bool); 11] = [
        (
            "ethernet",
            FileFormat::PcapMicros,
            LinkLayer::Ethernet,
            false,
        ),
        (
            "vlan",
            FileFormat::PcapMicros,
            LinkLayer::Vlan { vid: 100 },
            false,
        ),
        (
            "qinq",
            FileFormat::PcapMicros,
            LinkLayer::QinQ {
                outer: 300,
                inner: 20,
            },
            false,
        ),
        ("ipv6", FileFormat::PcapMicros, LinkLayer::Ethernet, true),
        (
            "vxlan",
            FileFormat::PcapMicros,
            LinkLayer::Vxlan { vni: 5001 },
            false,
        ),
        ("sll", FileFormat::PcapMicros, LinkLayer::Sll, false),
        ("sll2", FileFormat::PcapMicros, LinkLayer::Sll2, false),
        ("raw_ip", FileFormat::PcapMicros, LinkLayer::RawIp, false),
        ("null", FileFormat::PcapMicros, LinkLayer::Null, false),
        ("pcap_ns", FileFormat::PcapNanos, LinkLayer::Ethernet, false),
        ("pcapng", FileFormat::Pcapng, LinkLayer::Ethernet, false),
    ];
    let mut all = Checker::new("vlan_qinq_ipv6_vxlan_linktypes");
    let mut reference: Option<Truth> = None;
    for (name, format, link, v6) in variants {
        let (src, dst) = if v6 {
            (addr("[2001:db8::1]:40000"), addr("[2001:db8::2]:50000"))
        } else {
            (addr(CALLER_MEDIA), addr(CALLEE_MEDIA))
        };
        let spec = StreamSpec::pcmu(src, dst, 0x0000_CAFE, media_start(), 300)
            .with_loss([60, 150, 151])
            .with_jitter(3, 4_000, 125);
        let (sc, t) = one_stream_call(&format!("{name}@capgen"), &spec);
        assert_eq!(t.lost, 3, "generator self-check");
        if let Some(r) = &reference {
            assert!(
                (r.packets, r.lost, r.jitter_ms) == (t.packets, t.lost, t.jitter_ms),
                "generator self-check: {name} differs"
            );
        } else {
            reference = Some(t.clone());
        }
        let path = dir.path().join(format!("{name}.cap"));
        sc.write(&path, format, link).expect("write capture");
        let doc = analyze_json(dir.path(), &path, &[]);
        let mut ck = Checker::new(stream_ctx(name, &t));
        match all_streams(&doc).into_iter().find(|s| {
            s["ssrc"] == t.ssrc_hex().as_str()
                && s["src"] == t.src.to_string().as_str()
                && s["dst"] == t.dst.to_string().as_str()
        }) {
            Some(s) => {
                ck.u64(s, "packets", t.packets);
                ck.u64(s, "expected", t.expected);
                ck.u64(s, "lost", t.lost);
                ck.f64(s, "jitter_ms", t.jitter_ms, 1e-6);
            }
            None => ck.fail(
                "streams",
                format!("stream not found; streams:\n{}", stream_list(&doc)),
            ),
        }
        all.absorb(ck);
    }
    all.finish();
}

/// A complete SIP call with an agent header and E.164 numbers, 30 s of two-way media with
/// 1 % seeded loss → one call record with the signalling, agent, MNO and quality figures.
#[test]
fn sip_call_with_agent_and_mno() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (addr(CALLER_MEDIA), addr(CALLEE_MEDIA));
    let call_id = "a84b4c76e66710@pc33.capgen.example";
    let dialog = SipDialog::new(
        call_id,
        "+447700900123",
        "+15551230000",
        addr("10.0.0.1:5060"),
        addr("10.0.0.2:5060"),
    )
    .with_header("X-Agent-Id", "agent-42");
    let t_invite = BASE_TIME + secs(1);
    let t_answer = t_invite + ms(500);
    let start = t_answer + ms(20);
    let a_to_b = StreamSpec::pcmu(a, b, 0x1234_5678, start, 1500).with_jitter(11, 2_000, 125);
    let a_to_b = StreamSpec {
        loss: random_loss(101, 1500, 0.01),
        ..a_to_b
    };
    let b_to_a =
        StreamSpec::pcmu(b, a, 0x8765_4321, start + us(9_000), 1500).with_jitter(12, 2_000, 125);
    let b_to_a = StreamSpec {
        loss: random_loss(202, 1500, 0.01),
        ..b_to_a
    };
    let mut sc = Scenario::new();
    let t_ab = sc.add_stream(&a_to_b);
    let t_ba = sc.add_stream(&b_to_a);
    let t_bye = b_to_a.end_time() + ms(20);
    sc.extend(dialog.completed(t_invite, t_answer, t_bye, &Sdp::pcmu(a), &Sdp::pcmu(b)));
    assert!(t_ab.lost > 5 && t_ba.lost > 5, "generator self-check");
    let path = write(dir.path(), "sip.pcap", &sc);
    let doc = analyze_json(dir.path(), &path, &["--local-net", "10.0.0.2/32"]);

    let mut ck = Checker::new(format!("sip_call_with_agent_and_mno: call {call_id}"));
    let n = calls(&doc).len();
    ck.that(
        n == 1,
        "calls",
        format!("vqprobe reports {n} calls, truth is 1"),
    );
    let call = find_call(&doc, call_id);
    ck.str(call, "sip_call_id", call_id);
    ck.str(call, "agent_id", "agent-42");
    ck.str(call, "from_number", "+447700900123");
    ck.str(call, "to_number", "+15551230000");
    ck.str(call, "status", "completed");
    ck.str(call, "ended_reason", "bye");
    ck.str(call, "codec", "PCMU");
    ck.str(call, "direction", "inbound");
    ck.f64(call, "duration_seconds", 30.0, 1.0);
    let streams = call["streams"].as_array().map_or(0, Vec::len);
    ck.that(
        streams == 2,
        "streams",
        format!("vqprobe reports {streams} streams, truth is 2"),
    );
    ck.that(
        call["quality_mos"]
            .as_f64()
            .is_some_and(|m| m > 1.0 && m <= 4.5),
        "quality_mos",
        format!(
            "vqprobe says {}, expected a number in (1, 4.5]",
            call["quality_mos"]
        ),
    );
    ck.that(
        call["mno"].as_str().is_some_and(|m| !m.is_empty()),
        "mno",
        format!("vqprobe says {}, expected a non-empty string", call["mno"]),
    );
    for t in [&t_ab, &t_ba] {
        let mut sk = Checker::new(stream_ctx("sip_call_with_agent_and_mno", t));
        check_stream(&mut sk, find_stream(&doc, t), t);
        ck.absorb(sk);
    }
    ck.finish();
}

/// INVITE → 486 is a failed call; INVITE → CANCEL → 487 an abandoned one; neither has
/// media, so neither has a MOS.
#[test]
fn sip_failed_and_cancelled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let busy = SipDialog::new(
        "busy-486@capgen",
        "+447700900123",
        "+15551230000",
        addr("10.0.0.1:5060"),
        addr("10.0.0.2:5060"),
    );
    let gone = SipDialog::new(
        "cancel-487@capgen",
        "+447700900124",
        "+15551230001",
        addr("10.0.0.1:5060"),
        addr("10.0.0.2:5060"),
    );
    let mut sc = Scenario::new();
    let t0 = BASE_TIME + secs(1);
    sc.extend(busy.rejected(t0, 486, "Busy Here", &Sdp::pcmu(addr("10.0.0.1:40000"))));
    sc.extend(gone.cancelled(
        t0 + secs(2),
        t0 + secs(6),
        &Sdp::pcmu(addr("10.0.0.1:40002")),
    ));
    let doc = analyze_json(dir.path(), &write(dir.path(), "fail.pcap", &sc), &[]);

    let mut ck = Checker::new("sip_failed_and_cancelled: call busy-486@capgen");
    let call = find_call(&doc, "busy-486@capgen");
    ck.str(call, "status", "failed");
    ck.null(call, "quality_mos");
    let mut ck2 = Checker::new("sip_failed_and_cancelled: call cancel-487@capgen");
    let call = find_call(&doc, "cancel-487@capgen");
    ck2.str(call, "status", "abandoned");
    ck2.null(call, "quality_mos");
    ck.absorb(ck2);
    ck.finish();
}

/// 20 packets per direction is too little to judge: MOS is null, not a made-up 4.5.
#[test]
fn too_little_media() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (addr(CALLER_MEDIA), addr(CALLEE_MEDIA));
    let start = media_start();
    let mut sc = Scenario::new();
    let t_ab = sc.add_stream(&StreamSpec::pcmu(a, b, 0x0000_0020, start, 20));
    let t_ba = sc.add_stream(&StreamSpec::pcmu(b, a, 0x0000_0021, start + ms(5), 20));
    sip_around(&mut sc, "short@capgen", a, b, (start, start + ms(405)));
    let doc = analyze_json(dir.path(), &write(dir.path(), "short.pcap", &sc), &[]);

    let mut ck = Checker::new("too_little_media: call short@capgen");
    ck.null(find_call(&doc, "short@capgen"), "quality_mos");
    for t in [&t_ab, &t_ba] {
        let s = find_stream(&doc, t);
        let mut sk = Checker::new(stream_ctx("too_little_media", t));
        sk.u64(s, "packets", 20);
        sk.null(s, "mos");
        ck.absorb(sk);
    }
    ck.finish();
}

/// Broken inputs give one clear stderr line and a non-zero exit; garbage inside a valid
/// capture is counted, never a panic.
#[test]
fn truncated_and_garbage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = StreamSpec::pcmu(
        addr(CALLER_MEDIA),
        addr(CALLEE_MEDIA),
        0x0000_7777,
        media_start(),
        100,
    );
    let mut sc = Scenario::new();
    sc.add_stream(&spec);
    let good = sc.to_bytes(FileFormat::PcapMicros, LinkLayer::Ethernet);

    // Cut 37 bytes into the last 230-byte record: its header promises more than is there.
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &good[..good.len() - 37]).expect("write");
    // A pcap global header that stops half-way.
    let stub = dir.path().join("stub.pcap");
    std::fs::write(&stub, &good[..12]).expect("write");
    let text = dir.path().join("notes.pcap");
    std::fs::write(&text, "this is not a capture\njust some text\n").expect("write");
    let missing = dir.path().join("does-not-exist.pcap");

    let mut errors = Vec::new();
    for (what, path) in [
        ("truncated capture", &cut),
        ("half a header", &stub),
        ("text file", &text),
        ("missing file", &missing),
    ] {
        let out = analyze(dir.path(), path, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines = stderr.trim_end().lines().count();
        if out.status.success() {
            errors.push(format!("{what}: exit status is success, expected non-zero"));
        }
        if lines != 1 {
            errors.push(format!(
                "{what}: stderr has {lines} lines, expected 1:\n{stderr}"
            ));
        }
        if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
            errors.push(format!("{what}: panicked:\n{stderr}"));
        }
    }

    // Random UDP payloads on RTP/RTCP/SIP-looking ports, many shaped like RTP v2 or RTCP
    // headers with lying lengths.
    let mut rng = XorShift::new(0xDEAD_BEEF);
    let mut junk = Scenario::new();
    for i in 0..3_000u64 {
        let len = rng.below(300) as usize;
        let mut payload = vec![0u8; len];
        rng.fill(&mut payload);
        match (i % 4, len) {
            (0, 2..) => payload[0] = 0x80, // RTP v2 look
            (1, 2..) => {
                payload[0] = 0x80 | (rng.below(32) as u8);
                payload[1] = 200 + rng.below(8) as u8; // RTCP look
            }
            _ => {}
        }
        let (sport, dport) = match i % 4 {
            0 => (16_384 + 2 * rng.below(8), 20_000 + 2 * rng.below(8)),
            1 => (16_385 + 2 * rng.below(8), 20_001 + 2 * rng.below(8)),
            2 => (5060, 5060),
            _ => (10_000 + rng.below(50_000), 10_000 + rng.below(50_000)),
        };
        junk.push(Event::udp(
            BASE_TIME + i * ms(3),
            addr(&format!("10.9.0.1:{sport}")),
            addr(&format!("10.9.0.2:{dport}")),
            payload,
        ));
    }
    let garbage = write(dir.path(), "garbage.pcap", &junk);
    let out = analyze(dir.path(), &garbage, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        errors.push(format!(
            "random payloads: exit status {}, expected success; stderr:\n{stderr}",
            out.status
        ));
    }
    if stderr.contains("panicked") {
        errors.push(format!("random payloads: panicked:\n{stderr}"));
    }
    match serde_json::from_slice::<Value>(&out.stdout) {
        Ok(doc) if doc["capture"].is_object() => {}
        Ok(doc) => errors.push(format!(
            "random payloads: `capture` counters missing; got {}",
            doc["capture"]
        )),
        Err(e) => errors.push(format!("random payloads: stdout is not JSON: {e}")),
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// Without any SIP, the probe still finds the RTP stream (heuristics) and measures it.
#[test]
fn rtp_only_heuristic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = StreamSpec::pcmu(
        addr("10.0.0.1:30000"),
        addr("10.0.0.2:31000"),
        0x0123_4567,
        media_start(),
        1500,
    )
    .with_loss([100, 300, 700])
    .with_loss(400..403)
    .with_jitter(5, 3_000, 125);
    let mut sc = Scenario::new();
    let t = sc.add_stream(&spec);
    let doc = analyze_json(dir.path(), &write(dir.path(), "rtp-only.pcap", &sc), &[]);

    let s = find_stream(&doc, &t);
    let mut ck = Checker::new(stream_ctx("rtp_only_heuristic", &t));
    check_stream(&mut ck, s, &t);
    ck.finish();
}
