//! Real captures (and the §7 F vectors) against tshark 4.0.17 `-z rtp,streams`.
//!
//! DESIGN.md promises that `packets`, `max_jitter_ms`, `mean_jitter_ms` and `max_delta_ms`
//! follow tshark's `rtp,streams` definitions, and that `lost` agrees with tshark wherever
//! duplicates and reordering do not make the two definitions part (tshark's Lost goes
//! negative with duplicates; the contract counts them apart). tshark's output for every
//! capture is committed under `tests/data/tshark/<file>.txt`:
//!
//! ```text
//! tshark -r real/FILE -o rtp.heuristic_rtp:TRUE -q -z rtp,streams > tests/data/tshark/FILE.txt
//! tshark -r vectors/sN.pcap -d udp.port==40000,rtp -q -z rtp,streams > tests/data/tshark/sN.pcap.txt
//! ```
//!
//! When tshark 4.0.17 is on PATH the test re-runs it and checks that the committed files
//! still say what tshark says; without it (or with another version, whose definitions
//! differ: ALGORITHMS.md §6) it uses the committed files and says so.
//!
//! A second group of tests checks facts about the captures that tshark cannot check but
//! `../shared/pcaps/README.md` states (or that follow from the captures' SIP/SDP and
//! sequence numbers, as read with tshark).
//!
//! The captures whose licence allows it are vendored in `tests/data/pcaps/` (with their
//! `PROVENANCE.tsv`), so a bare clone runs these tests on them; the rest (no licence)
//! and the §7 F vectors are read from `../shared/pcaps` when it is there, and skipped
//! with a message when it is not.

#[path = "support/tshark.rs"]
mod tshark;

use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use tshark::{compare_stream, parse_report, parse_row};

const PCAPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/pcaps");
const VENDORED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/pcaps");
const EXPECTED_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tshark");
/// The tshark whose definitions the contract follows (ALGORITHMS.md §6 "Versions").
const TSHARK_VERSION: &str = "4.0.17";

/// The one real capture whose tshark stream vqprobe does not report, by design: it holds
/// a single RTP packet. tshark's heuristic judges each packet alone and calls it a
/// stream; vqprobe takes a flow without signalling for RTP only after two packets that
/// continue each other (sequence and timestamp), so one lone packet is never a stream.
const SINGLE_PACKET_CAPTURE: &str = "packetnet__ipv6_rtp.pcap";

// ---------------------------------------------------------------------------------------
// Captures and their tshark invocations
// ---------------------------------------------------------------------------------------

struct Capture {
    path: PathBuf,
    name: String,
    /// tshark options before `-q -z rtp,streams`.
    tshark_opts: &'static [&'static str],
}

/// Names of the capture files in `dir` (sorted; empty when it is not there).
fn capture_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".pcap") || n.ends_with(".pcapng"))
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

/// A real capture by name: the vendored copy, else the shared one; `None` (after
/// saying so) when neither is there.
fn capture(name: &str) -> Option<PathBuf> {
    let vendored = Path::new(VENDORED).join(name);
    if vendored.is_file() {
        return Some(vendored);
    }
    let shared = Path::new(PCAPS).join("real").join(name);
    if shared.is_file() {
        return Some(shared);
    }
    eprintln!("SKIP: {name} is neither in {VENDORED} nor in {PCAPS}/real");
    None
}

/// Every real capture (vendored, then the shared ones not vendored), then
/// `vectors/s1..s6.pcap` when the shared captures are there.
fn captures() -> Vec<Capture> {
    let mut names = capture_names(Path::new(VENDORED));
    assert!(
        !names.is_empty(),
        "no vendored captures in {VENDORED}: the checkout is incomplete"
    );
    let shared = capture_names(&Path::new(PCAPS).join("real"));
    if shared.is_empty() {
        eprintln!(
            "NOTE: {PCAPS} not found: checking the {} vendored captures only (the \
             unlicensed shared captures and the vectors are skipped)",
            names.len()
        );
    }
    for n in shared {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let mut out: Vec<Capture> = names
        .into_iter()
        .filter_map(|name| {
            Some(Capture {
                path: capture(&name)?,
                name,
                tshark_opts: &["-o", "rtp.heuristic_rtp:TRUE"],
            })
        })
        .collect();
    let vectors = Path::new(PCAPS).join("vectors");
    if vectors.is_dir() {
        for i in 1..=6 {
            let name = format!("s{i}.pcap");
            out.push(Capture {
                path: vectors.join(&name),
                name,
                tshark_opts: &["-d", "udp.port==40000,rtp"],
            });
        }
    }
    out
}

/// `Some(version)` when a tshark runs; the note says what the test does about it.
fn tshark_version() -> Option<String> {
    let out = Command::new("tshark").arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // "TShark (Wireshark) 4.0.17 (Git v4.0.17 packaged as ...)."
    let first = text.lines().next()?;
    let version = first.split_whitespace().nth(2)?;
    Some(version.to_string())
}

/// tshark's `rtp,streams` report for one capture, with an empty configuration directory
/// so that a user's preferences cannot change the figures.
fn run_tshark(cap: &Capture, config_dir: &Path) -> Result<String, String> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&cap.path)
        .args(cap.tshark_opts)
        .args(["-q", "-z", "rtp,streams"])
        .env("WIRESHARK_CONFIG_DIR", config_dir)
        .output()
        .map_err(|e| format!("spawn tshark: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "tshark exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| format!("tshark output is not UTF-8: {e}"))
}

#[test]
fn parser_reads_payloads_with_spaces_ipv6_and_negative_loss() {
    let row = "    76.878653     96.829533 192.168.105.172  4376 192.168.105.110  4376 \
               0x5711BF84 g711A, telephone-event   666     0 (0.0%)          29.930          \
               30.001          30.068           0.002           1.522          15.767 ";
    let s = parse_row(row).expect("row with a two-word payload parses");
    assert_eq!(s.payload, "g711A, telephone-event", "payload");
    assert_eq!((s.pkts, s.lost), (666, 0), "pkts, lost");
    assert_eq!(s.ssrc_hex(), "0x5711bf84", "ssrc");
    assert_eq!(
        (s.max_delta, s.mean_jitter, s.max_jitter),
        (30.068, 1.522, 15.767)
    );

    let row = "9783933.778377 9783933.983167 2001:4860:4864:6::81 19305 \
               2001:b07:a3d:c112:48a1:1094:1227:281e 45572 0x00000000       RTPType-97    93   \
               -10 (-9.7%)          0.000           2.226          79.757          -1.000           \
               0.000           0.000 X";
    let s = parse_row(row).expect("IPv6 row with a problem flag parses");
    assert_eq!(
        s.src.to_string(),
        "[2001:4860:4864:6::81]:19305",
        "IPv6 src"
    );
    assert_eq!((s.pkts, s.lost, s.max_delta), (93, -10, 79.757));
    assert_eq!(
        (s.max_jitter, s.mean_jitter),
        (0.0, 0.0),
        "no clock: zero jitter"
    );
}

// ---------------------------------------------------------------------------------------
// vqprobe
// ---------------------------------------------------------------------------------------

struct Analysis {
    status: std::process::ExitStatus,
    stderr: String,
    doc: Option<Value>,
}

fn analyze(path: &Path) -> Analysis {
    let out = Command::new(env!("CARGO_BIN_EXE_vqprobe"))
        .arg("analyze")
        .arg(path)
        .args(["--format", "json"])
        .output()
        .expect("spawn vqprobe analyze");
    Analysis {
        status: out.status,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        doc: serde_json::from_slice(&out.stdout).ok(),
    }
}

/// `analyze` that must succeed, without a panic, printing one JSON document.
fn analyze_ok(path: &Path) -> Value {
    let a = analyze(path);
    assert!(
        a.status.success() && !a.stderr.contains("panicked"),
        "vqprobe analyze {} failed ({}); stderr:\n{}",
        path.display(),
        a.status,
        a.stderr
    );
    a.doc.unwrap_or_else(|| {
        panic!(
            "vqprobe analyze {} did not print one JSON document",
            path.display()
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

/// Streams keyed by (src, dst, ssrc string). Addresses are parsed so that IPv6 spelling
/// differences cannot hide a match; the SSRC is compared as vqprobe prints it.
fn stream_index(doc: &Value) -> Result<HashMap<(SocketAddr, SocketAddr, String), &Value>, String> {
    let mut idx = HashMap::new();
    for s in all_streams(doc) {
        let addr = |field: &str| -> Result<SocketAddr, String> {
            s[field]
                .as_str()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| format!("stream `{field}` {} is not ip:port", s[field]))
        };
        let ssrc = s["ssrc"]
            .as_str()
            .ok_or_else(|| format!("stream `ssrc` {} is not a string", s["ssrc"]))?
            .to_string();
        let key = (addr("src")?, addr("dst")?, ssrc);
        if idx.insert(key.clone(), s).is_some() {
            return Err(format!(
                "two streams share src {} dst {} ssrc {}",
                key.0, key.1, key.2
            ));
        }
    }
    Ok(idx)
}

// ---------------------------------------------------------------------------------------
// The tshark comparison
// ---------------------------------------------------------------------------------------

#[test]
fn every_capture_matches_tshark_rtp_streams() {
    let caps = captures();

    let version = tshark_version();
    let rerun = match &version {
        Some(v) if v == TSHARK_VERSION => true,
        Some(v) => {
            eprintln!(
                "NOTE: tshark {v} is on PATH, not {TSHARK_VERSION} (whose definitions the \
                 contract follows); using the committed tshark output without re-running it"
            );
            false
        }
        None => {
            eprintln!("NOTE: tshark not on PATH; using the committed tshark output");
            false
        }
    };
    let config_dir = tempfile::tempdir().expect("temporary WIRESHARK_CONFIG_DIR");

    let mut errs: Vec<String> = Vec::new();
    let mut summary: Vec<String> = Vec::new();
    for cap in &caps {
        let committed_path = Path::new(EXPECTED_DIR).join(format!("{}.txt", cap.name));
        let committed = match std::fs::read_to_string(&committed_path) {
            Ok(t) => t,
            Err(e) => {
                errs.push(format!(
                    "{}: no committed tshark output at {} ({e}); generate it with \
                     `tshark -r {} {} -q -z rtp,streams`",
                    cap.name,
                    committed_path.display(),
                    cap.path.display(),
                    cap.tshark_opts.join(" ")
                ));
                continue;
            }
        };
        if rerun {
            match run_tshark(cap, config_dir.path()) {
                Ok(now) if now == committed => {}
                Ok(now) => errs.push(format!(
                    "{}: tshark {TSHARK_VERSION} output differs from {}:\n--- committed\n{committed}\
                     --- tshark now\n{now}",
                    cap.name,
                    committed_path.display()
                )),
                Err(e) => errs.push(format!("{}: {e}", cap.name)),
            }
        }
        let rows = match parse_report(&committed) {
            Ok(r) => r,
            Err(e) => {
                errs.push(format!("{}: {}: {e}", cap.name, committed_path.display()));
                continue;
            }
        };

        let a = analyze(&cap.path);
        if !a.status.success() || a.stderr.contains("panicked") {
            errs.push(format!(
                "{}: vqprobe analyze failed ({}): {}",
                cap.name,
                a.status,
                a.stderr.trim()
            ));
            continue;
        }
        let Some(doc) = a.doc else {
            errs.push(format!("{}: vqprobe printed no JSON document", cap.name));
            continue;
        };
        let idx = match stream_index(&doc) {
            Ok(i) => i,
            Err(e) => {
                errs.push(format!("{}: {e}", cap.name));
                continue;
            }
        };

        if cap.name == SINGLE_PACKET_CAPTURE {
            // See SINGLE_PACKET_CAPTURE: tshark's one-packet "stream" is not one for vqprobe.
            let one = rows.len() == 1 && rows[0].pkts == 1;
            if !one {
                errs.push(format!(
                    "{}: expected tshark to show exactly one 1-packet stream (the documented \
                     exception), it shows {rows:?}",
                    cap.name
                ));
            }
            if !idx.is_empty() {
                errs.push(format!(
                    "{}: a lone RTP packet is not a stream for vqprobe, yet it reports {} \
                     stream(s)",
                    cap.name,
                    idx.len()
                ));
            }
            summary.push(format!(
                "{}: 0/{} tshark streams expected (single RTP packet, documented exception); \
                 vqprobe reports {}",
                cap.name,
                rows.len(),
                idx.len()
            ));
            continue;
        }

        let mut matched = 0;
        for t in &rows {
            let key = (t.src, t.dst, t.ssrc_hex());
            match idx.get(&key) {
                None => errs.push(format!(
                    "{}: tshark stream {} missing from vqprobe's output (vqprobe has {} \
                     stream(s): {:?})",
                    cap.name,
                    t.label(),
                    idx.len(),
                    idx.keys().collect::<Vec<_>>()
                )),
                Some(s) => {
                    let before = errs.len();
                    compare_stream(&cap.name, t, s, &mut errs);
                    if errs.len() == before {
                        matched += 1;
                    }
                }
            }
        }
        summary.push(format!(
            "{}: {matched}/{} tshark streams matched; vqprobe reports {} stream(s)",
            cap.name,
            rows.len(),
            idx.len()
        ));
    }

    println!(
        "tshark rtp,streams comparison ({} captures; committed output {}):",
        caps.len(),
        if rerun {
            "re-checked against tshark on PATH"
        } else {
            "used as committed"
        }
    );
    for line in &summary {
        println!("  {line}");
    }
    assert!(
        errs.is_empty(),
        "{} mismatch(es) against tshark rtp,streams:\n  {}",
        errs.len(),
        errs.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------
// Facts about the captures that tshark cannot check (pcaps/README.md, SIP/SDP, seq numbers)
// ---------------------------------------------------------------------------------------

/// The JSON of the real capture NAME, or `None` (skip) when it is not available.
fn real(name: &str) -> Option<Value> {
    Some(analyze_ok(&capture(name)?))
}

fn stream<'a>(doc: &'a Value, ssrc: &str, file: &str) -> &'a Value {
    let found: Vec<&Value> = all_streams(doc)
        .into_iter()
        .filter(|s| s["ssrc"] == ssrc)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{file}: expected one stream with ssrc {ssrc}, found {}; all: {:?}",
        found.len(),
        all_streams(doc)
            .iter()
            .map(|s| format!("{} {}->{}", s["ssrc"], s["src"], s["dst"]))
            .collect::<Vec<_>>()
    );
    found[0]
}

/// Collects differing figures so one run shows them all.
#[derive(Default)]
struct Errors(Vec<String>);

impl Errors {
    fn eq(&mut self, ctx: &str, field: &str, got: &Value, want: impl Into<Value>) {
        let want = want.into();
        if *got != want {
            self.0.push(format!(
                "{ctx}: `{field}`: vqprobe says {got}, expected {want}"
            ));
        }
    }

    fn that(&mut self, ok: bool, msg: String) {
        if !ok {
            self.0.push(msg);
        }
    }

    fn finish(self, file: &str) {
        assert!(
            self.0.is_empty(),
            "{file}: {} figure(s) wrong:\n  {}",
            self.0.len(),
            self.0.join("\n  ")
        );
    }
}

#[test]
fn carrier_g711u_loses_14_packets_in_two_runs() {
    let file = "asterisk-testsuite__CARRIER_G711U.pcap";
    let Some(doc) = real(file) else { return };
    let s = stream(&doc, "0x17cb308c", file);
    let mut e = Errors::default();
    let ctx = format!("{file}: stream 0x17cb308c");
    e.eq(&ctx, "codec", &s["codec"], "PCMU");
    e.eq(&ctx, "packets", &s["packets"], 800);
    e.eq(&ctx, "expected", &s["expected"], 814);
    e.eq(&ctx, "lost", &s["lost"], 14);
    e.eq(&ctx, "duplicates", &s["duplicates"], 0);
    // The "260 ms gap" is seq 4006 -> 4019 (12 lost), then 4019 -> 4022 (2 lost):
    // one run of 2 and one of 10 or more.
    e.eq(
        &ctx,
        "loss_runs",
        &s["loss_runs"],
        serde_json::json!([0, 1, 0, 0, 0, 0, 0, 0, 0, 1]),
    );
    e.finish(file);
}

#[test]
fn opus_fec_dropped_loses_the_29_removed_packets_of_3000() {
    let file = "asterisk-testsuite__opus_16_bit_48khz_60_fec_dropped.pcapng";
    let Some(doc) = real(file) else { return };
    let s = stream(&doc, "0x3760bfaa", file);
    let mut e = Errors::default();
    let ctx = format!("{file}: stream 0x3760bfaa");
    // Known truth: 29 single packets removed from the 3000 of *_fec_rtp.pcapng.
    e.eq(&ctx, "packets", &s["packets"], 2971);
    e.eq(&ctx, "expected", &s["expected"], 3000);
    e.eq(&ctx, "lost", &s["lost"], 29);
    e.eq(
        &ctx,
        "loss_runs",
        &s["loss_runs"],
        serde_json::json!([29, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    );
    // No SDP: the clock must come from the timestamps (960 per 20 ms) — Opus is 48 kHz.
    e.eq(&ctx, "clock_rate", &s["clock_rate"], 48000);
    e.finish(file);
}

#[test]
fn amr_nb_duplicates_are_counted_apart_from_loss() {
    let file = "rtpdump__sample1_ipv4_amr-nb.pcap";
    let Some(doc) = real(file) else { return };
    // Most packets were captured twice, so tshark's Lost is negative on four streams.
    // Read with tshark (`-Y rtp -T fields -e rtp.ssrc -e rtp.seq`), the unique sequence
    // numbers still have real holes, each matched by a timestamp step of the missing
    // frames (160 per frame): 0x0025b105 lacks seq 24 and 222..=231 (11), 0x00612603 lacks
    // 15, 40 and 125 (3), 0x40c1b512 and 0x401dd106 lack seq 24 (1 each). So "lost 0" in
    // the README is tshark's duplicates cancelling real loss; the RFC figure is below.
    // (ssrc, packets, unique = expected - lost, lost, duplicates)
    let want: [(&str, u64, u64, u64, u64); 6] = [
        ("0x0025b105", 1052, 537, 11, 526),
        ("0x710006b8", 246, 246, 0, 0),
        ("0x00612603", 528, 267, 3, 264),
        ("0x71008205", 279, 279, 0, 0),
        ("0x40c1b512", 118, 60, 1, 59),
        ("0x401dd106", 240, 121, 1, 120),
    ];
    assert_eq!(
        all_streams(&doc).len(),
        want.len(),
        "{file}: number of streams"
    );
    let mut e = Errors::default();
    for (ssrc, packets, expected, lost, dups) in want {
        let s = stream(&doc, ssrc, file);
        let ctx = format!("{file}: stream {ssrc}");
        e.eq(&ctx, "packets", &s["packets"], packets);
        e.eq(&ctx, "expected", &s["expected"], expected);
        e.eq(&ctx, "lost", &s["lost"], lost);
        e.eq(&ctx, "duplicates", &s["duplicates"], dups);
        // AMR-NB's RTP clock is 8000 Hz (RFC 4867; the repo's sample-audio.sdp says
        // AMR/8000): 160 timestamp units per 20 ms frame. No SDP is in the capture, so
        // vqprobe must infer it from the timestamps.
        e.eq(&ctx, "clock_rate", &s["clock_rate"], 8000);
    }
    e.finish(file);
}

#[test]
fn g726_calls_take_their_codec_from_their_own_sdp() {
    let file = "rtp-pcap__sip-rtp-g726.pcap";
    let Some(doc) = real(file) else { return };
    // Every call uses dynamic PT 99; the 200 OK SDP of each names a different codec
    // (read with tshark: `-Y 'sip.Status-Code==200 && sdp' -e sdp.media_attr`). vqprobe
    // folds the AAL2 bit packing of a rate into that rate's G726 entry (codec.rs aliases:
    // same Ie), so the AAL2 calls read G726-NN.
    let want = [
        ("1-2134@10.0.2.20", "G726-16"), // G726-16/8000
        ("1-2137@10.0.2.20", "G726-24"), // G726-24/8000
        ("1-2138@10.0.2.20", "G726-32"), // G726-32/8000
        ("1-2139@10.0.2.20", "G726-40"), // G726-40/8000
        ("1-2140@10.0.2.20", "G726-16"), // AAL2-G726-16/8000
        ("1-2141@10.0.2.20", "G726-24"), // AAL2-G726-24/8000
        ("1-2142@10.0.2.20", "G726-32"), // AAL2-G726-32/8000
        ("1-2143@10.0.2.20", "G726-40"), // AAL2-G726-40/8000
    ];
    let cs = calls(&doc);
    assert_eq!(cs.len(), 8, "{file}: number of calls");
    let mut e = Errors::default();
    let mut codecs = std::collections::BTreeSet::new();
    for (call_id, codec) in want {
        let Some(c) = cs.iter().find(|c| c["sip_call_id"] == call_id) else {
            e.0.push(format!("{file}: no call with sip_call_id {call_id:?}"));
            continue;
        };
        let ctx = format!("{file}: call {call_id}");
        e.eq(&ctx, "codec", &c["codec"], codec);
        let streams = c["streams"].as_array().map_or(0, Vec::len);
        e.that(
            streams == 1,
            format!("{ctx}: `streams`: vqprobe has {streams}, the call has 1 (one-way media)"),
        );
        for s in c["streams"].as_array().into_iter().flatten() {
            e.eq(&ctx, "streams[].codec", &s["codec"], codec);
            e.eq(&ctx, "streams[].payload_type", &s["payload_type"], 99);
            e.eq(&ctx, "streams[].clock_rate", &s["clock_rate"], 8000);
            codecs.insert(s["codec"].to_string());
        }
    }
    e.that(
        codecs.len() == 4,
        format!("{file}: the 8 calls use 4 G.726 rates, vqprobe shows codecs {codecs:?}"),
    );
    e.finish(file);
}

#[test]
fn speex_calls_take_their_clock_rate_from_their_own_sdp() {
    let file = "rtp-pcap__sip-rtp-speex.pcap";
    let Some(doc) = real(file) else { return };
    // One PT (99), three clock rates: `a=rtpmap:99 speex/8000`, `/16000`, `/32000`.
    let want = [
        ("1-4245@10.0.2.20", 8000),
        ("1-4247@10.0.2.20", 16000),
        ("1-4248@10.0.2.20", 32000),
    ];
    assert_eq!(calls(&doc).len(), 3, "{file}: number of calls");
    let mut e = Errors::default();
    for (call_id, clock) in want {
        let Some(c) = calls(&doc)
            .into_iter()
            .find(|c| c["sip_call_id"] == call_id)
        else {
            e.0.push(format!("{file}: no call with sip_call_id {call_id:?}"));
            continue;
        };
        let ctx = format!("{file}: call {call_id}");
        for s in c["streams"].as_array().into_iter().flatten() {
            e.eq(&ctx, "streams[].clock_rate", &s["clock_rate"], clock);
        }
    }
    e.finish(file);
}

#[test]
fn sngrep_failed_and_cancelled_calls_are_one_record_per_call_id() {
    let file = "sngrep__aaa.pcap";
    let Some(doc) = real(file) else { return };
    // SIP as read with tshark: four Call-IDs send INVITEs (11 INVITEs with retransmissions
    // and auth retries). 105090259: INVITE, 100, CANCEL, 408 -> abandoned. The other three
    // get 407, re-INVITE with credentials (same Call-ID, CSeq 2), then 403 (85216695,
    // 24487391) or 183 with early media and 480 (11894297) -> failed. The 407 challenge is
    // part of the same call attempt, so each Call-ID is one record: `call_id` is the key
    // of GET /v1/calls/{call_id}.
    let want = [
        ("105090259-446faf7a@192.168.1.2", "abandoned"),
        ("85216695-42dcdb1d@192.168.1.2", "failed"),
        ("24487391-449bf2a0@192.168.1.2", "failed"),
        ("11894297-4432a9f8@192.168.1.2", "failed"),
    ];
    let cs = calls(&doc);
    let mut e = Errors::default();
    let ids: Vec<String> = cs.iter().map(|c| c["call_id"].to_string()).collect();
    let mut uniq = ids.clone();
    uniq.sort();
    uniq.dedup();
    e.that(
        uniq.len() == ids.len(),
        format!(
            "{file}: `call_id` repeats across records ({} records, {} distinct): {ids:?}",
            ids.len(),
            uniq.len()
        ),
    );
    e.that(
        cs.len() == want.len(),
        format!(
            "{file}: vqprobe has {} call records, the capture has {} calls (Call-IDs with \
             an INVITE)",
            cs.len(),
            want.len()
        ),
    );
    e.that(
        cs.iter().any(|c| c["status"] != "completed"),
        format!("{file}: every call says completed, yet none was answered"),
    );
    for (call_id, status) in want {
        let these: Vec<&&Value> = cs.iter().filter(|c| c["sip_call_id"] == call_id).collect();
        if these.is_empty() {
            e.0.push(format!("{file}: no call with sip_call_id {call_id:?}"));
        }
        for c in these {
            e.eq(
                &format!("{file}: call {call_id}"),
                "status",
                &c["status"],
                status,
            );
        }
    }
    // The only RTP (9 PCMA packets, 212.242.33.36:40392 in the 183's SDP) is the early
    // media of 11894297.
    let with_media: Vec<String> = cs
        .iter()
        .filter(|c| c["streams"].as_array().is_some_and(|s| !s.is_empty()))
        .map(|c| c["sip_call_id"].to_string())
        .collect();
    e.that(
        with_media == ["\"11894297-4432a9f8@192.168.1.2\""],
        format!("{file}: calls with media: vqprobe {with_media:?}, expected only 11894297"),
    );
    e.eq(
        &format!("{file}: capture"),
        "rtcp_packets",
        &doc["capture"]["rtcp_packets"],
        1,
    );
    e.finish(file);
}

#[test]
fn answered_sip_call_has_media_both_ways() {
    let file = "sipp-scenarios__sipp_uac_Media_DTMF_Speex.pcap";
    let Some(doc) = real(file) else { return };
    // Read with tshark: the INVITE (10.59.27.11 -> 217.214.169.162) offers media at
    // 213.64.235.116:28832, the 200 OK answers 217.214.169.162:40000, and PCMA flows both
    // ways (1144 and 975 packets). Without --local-net the callee is the probed host
    // (DESIGN.md), so caller -> callee media is inbound and callee -> caller outbound, and
    // with both directions carrying voice the call is not one-way audio.
    let cs = calls(&doc);
    assert_eq!(cs.len(), 1, "{file}: number of calls");
    let c = cs[0];
    let mut e = Errors::default();
    let ctx = format!("{file}: call {}", c["sip_call_id"]);
    e.eq(
        &ctx,
        "sip_call_id",
        &c["sip_call_id"],
        "wICUpfWaoQE5Q18tlxgjGQ..",
    );
    e.eq(&ctx, "one_way_audio", &c["one_way_audio"], false);
    e.eq(&ctx, "direction", &c["direction"], "inbound");
    let want = [
        ("0x421970fe", "213.64.235.116:28832", "inbound"),
        ("0x93451ab2", "217.214.169.162:40000", "outbound"),
    ];
    for (ssrc, src, direction) in want {
        let s = stream(&doc, ssrc, file);
        let sctx = format!("{file}: stream {ssrc}");
        e.eq(&sctx, "src", &s["src"], src);
        e.eq(&sctx, "direction", &s["direction"], direction);
    }
    e.finish(file);
}

#[test]
fn rtcp_datagrams_are_counted() {
    // RTCP datagrams (compound packets count once), from the README's RTCP column and
    // tshark (`-o rtcp.heuristic_rtcp:TRUE -Y rtcp`, plus `-d` on the ZFONE RTCP ports).
    let want: [(&str, u64); 8] = [
        ("sipnab__rtp-protocol.pcap", 2), // SR+SDES from each side
        ("rtpproxy__rtcp.o.pcap", 1),     // SR+SDES
        ("asterisk-testsuite__ast-2017-012_crash-27382.pcap", 2),
        ("nDPI__rtcp_multiple_pkts_in_the_same_datagram.pcap", 5),
        ("packetnet__ipv6_rtcp2.pcap", 1),   // raw IPv6
        ("nDPI__discord_mid_flow.pcap", 30), // VLAN + PPPoE
        ("sngrep__aaa.pcap", 1),             // SR+SDES+BYE
        // 2 RR+SDES in clear, then 5 SRTCP SRs (headers in clear) once ZRTP has run.
        ("sipnab__Asterisk_ZFONE_XLITE.pcap", 7),
    ];
    let mut e = Errors::default();
    for (file, n) in want {
        let Some(doc) = real(file) else { continue };
        e.eq(
            &format!("{file}: capture"),
            "rtcp_packets",
            &doc["capture"]["rtcp_packets"],
            n,
        );
    }
    e.finish("RTCP captures");
}
