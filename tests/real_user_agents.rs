//! Real SIP user agents — Debian's `baresip` and `linphonec` — calling each other across a
//! veth pair between two network namespaces this test creates (`tests/ua/run-calls.sh`,
//! which also documents their quirks in `tests/ua/NOTES.md`), while the daemon captures
//! A's end of the veth beside tcpdump. Then, for every call:
//!
//! - the daemon's stored streams equal tshark's `rtp,streams` on tcpdump's capture of the
//!   same traffic (packets, lost, max delta, max and mean jitter), and `vqprobe analyze`
//!   of that capture agrees with the daemon;
//! - each stream belongs to the call whose SIP dialog surrounded it (two back-to-back
//!   calls on the very same ports and 5-tuples);
//! - the clients' own statistics agree: baresip's packets and jitter printed at hangup,
//!   linphonec's oRTP packet counters;
//! - the call-level verdicts hold: a CANCELled call has no streams, a hold is neither
//!   loss nor one-way audio, a UA whose SDP names 127.0.0.1 gives a one-way-audio call
//!   (its peer's RTP never reaches the wire), opus is scored.
//!
//! Needs root, baresip, linphonec, tcpdump, tshark and perl (`scripts/install-deps.sh`);
//! skipped with a message otherwise. About 90 s.

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/tshark.rs"]
mod tshark;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use daemon::{have_command, is_root, Workdir, VQPROBE};
use serde_json::Value;
use tshark::{compare_stream, parse_report, TsharkStream};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ua/run-calls.sh");
const SCENARIOS: [&str; 9] = ["s1", "s1m", "s2", "s3", "s4", "s5", "s5b", "s6a", "s6c"];

/// What each scenario must come out as: (calls, streams per call, expectations).
struct Expect {
    calls: usize,
    streams: usize,
    status: &'static str,
    codec: &'static str,
    one_way: bool,
}

fn expect(scenario: &str) -> Expect {
    let e = |calls, streams, status, codec, one_way| Expect {
        calls,
        streams,
        status,
        codec,
        one_way,
    };
    match scenario {
        "s2" => e(2, 2, "completed", "PCMU", false),
        "s3" => e(1, 2, "completed", "opus", false),
        "s4" => e(1, 0, "abandoned", "PCMU", false),
        "s6c" => e(1, 1, "completed", "PCMU", true),
        _ => e(1, 2, "completed", "PCMU", false),
    }
}

fn tshark(pcap: &Path, args: &[&str]) -> String {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args(args)
        .output()
        .expect("running tshark");
    assert!(out.status.success(), "tshark {args:?} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// (Call-ID, first INVITE time, BYE/CANCEL time) of every dialog in a capture, in
/// seconds from its first packet.
fn dialogs(pcap: &Path) -> Vec<(String, f64, f64)> {
    let text = tshark(
        pcap,
        &[
            "-Y",
            "sip.Method",
            "-T",
            "fields",
            "-e",
            "frame.time_relative",
            "-e",
            "sip.Call-ID",
            "-e",
            "sip.Method",
        ],
    );
    let mut by_id: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let (Some(t), Some(id), Some(m)) = (f.first(), f.get(1), f.get(2)) else {
            continue;
        };
        let t: f64 = t.parse().expect("frame time");
        let e = by_id.entry(id.to_string()).or_insert((t, f64::MAX));
        if *m == "BYE" || *m == "CANCEL" {
            e.1 = e.1.min(t);
        }
    }
    by_id.into_iter().map(|(id, (a, b))| (id, a, b)).collect()
}

fn stream_of<'a>(call: &'a Value, t: &TsharkStream) -> Option<&'a Value> {
    call["streams"].as_array()?.iter().find(|s| {
        s["src"].as_str().and_then(|v| v.parse::<SocketAddr>().ok()) == Some(t.src)
            && s["dst"].as_str().and_then(|v| v.parse::<SocketAddr>().ok()) == Some(t.dst)
            && s["ssrc"] == t.ssrc_hex()
    })
}

/// The numbers after `label` on the first line of `log` that starts with it.
fn figures(log: &str, label: &str) -> Vec<f64> {
    log.lines()
        .find(|l| l.starts_with(label))
        .map(|l| {
            l[label.len()..]
                .split_whitespace()
                .filter_map(|t| t.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// linphonec's oRTP counter `what` ("sent", "received") from its debug log.
fn ortp(log: &str, what: &str) -> Option<u64> {
    let needle = format!("ortp-message-{what} ");
    log.lines()
        .filter(|l| l.contains(&needle) && !l.contains("rtcp"))
        .filter_map(|l| l.split_whitespace().rev().nth(1)?.parse().ok())
        .next_back()
}

#[test]
fn real_user_agents_match_tshark_and_their_own_statistics() {
    let missing: Vec<&str> = ["baresip", "linphonec", "tcpdump", "tshark", "perl", "ip"]
        .into_iter()
        .filter(|c| !have_command(c))
        .collect();
    if !is_root() || !missing.is_empty() {
        eprintln!("SKIPPED: needs root and {missing:?}");
        return;
    }
    let work = Workdir::new();
    let db = work.db();
    let config = work.write("probe.toml", "[store]\nflush_interval_ms = 200\n");
    let out = work.path().join("calls");
    let probe = format!(
        "{VQPROBE} run --config {} --db {} --listen 127.0.0.1:0 --workers 2",
        config.display(),
        db.display()
    );
    let status = Command::new("bash")
        .arg(SCRIPT)
        .arg(&out)
        .env("MEDIA_SECONDS", "4")
        .env("SCENARIOS", SCENARIOS.join(" "))
        .env("PROBE_CMD", &probe)
        .status()
        .expect("running tests/ua/run-calls.sh");
    let summary = std::fs::read_to_string(out.join("SUMMARY.txt")).unwrap_or_default();
    let probe_err = std::fs::read_to_string(out.join("logs/probe.err")).unwrap_or_default();
    assert!(
        status.success(),
        "the calls did not go as scripted ({status}):\n{summary}\nprobe:\n{probe_err}"
    );
    let rows = daemon::calls(&db);
    let by_id: BTreeMap<&str, &Value> = rows
        .iter()
        .filter_map(|r| Some((r["sip_call_id"].as_str()?, r)))
        .collect();

    let mut errs: Vec<String> = Vec::new();
    let mut expected_calls = 0;
    let mut table: Vec<String> = Vec::new();
    for sc in SCENARIOS {
        let pcap = out.join(format!("{sc}.pcap"));
        let want = expect(sc);
        let calls = dialogs(&pcap);
        expected_calls += calls.len();
        if calls.len() != want.calls {
            errs.push(format!(
                "{sc}: {} SIP dialogs, want {}",
                calls.len(),
                want.calls
            ));
        }
        let streams = parse_report(&tshark(
            &pcap,
            &["-o", "rtp.heuristic_rtp:TRUE", "-q", "-z", "rtp,streams"],
        ))
        .expect("tshark rtp,streams parses");
        let offline = daemon::analyze_json(&pcap, &[]);
        for (id, t0, t1) in &calls {
            let Some(row) = by_id.get(id.as_str()) else {
                errs.push(format!("{sc}: the daemon stored no call {id}"));
                continue;
            };
            let ctx = format!("{sc} {id}");
            if row["status"] != want.status {
                errs.push(format!(
                    "{ctx}: status {}, want {}",
                    row["status"], want.status
                ));
            }
            if row["codec"] != want.codec {
                errs.push(format!(
                    "{ctx}: codec {}, want {}",
                    row["codec"], want.codec
                ));
            }
            let one_way = row["one_way_audio"]
                .as_bool()
                .or(row["one_way_audio"].as_i64().map(|v| v != 0));
            if one_way != Some(want.one_way) {
                errs.push(format!(
                    "{ctx}: one_way_audio {}, want {}",
                    row["one_way_audio"], want.one_way
                ));
            }
            if want.streams > 0 && !row["quality_mos"].is_number() {
                errs.push(format!("{ctx}: no MOS"));
            }
            let n = row["streams"].as_array().map_or(0, Vec::len);
            if n != want.streams {
                errs.push(format!("{ctx}: {n} streams, want {}", want.streams));
            }
            // The streams tshark saw during this dialog are this call's.
            let mine: Vec<&TsharkStream> = streams
                .iter()
                .filter(|t| t.start >= *t0 && t.start <= *t1)
                .collect();
            if mine.len() != want.streams {
                errs.push(format!(
                    "{ctx}: tshark saw {} streams in the dialog, want {}",
                    mine.len(),
                    want.streams
                ));
            }
            let off = offline["calls"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["sip_call_id"] == id.as_str()));
            for t in mine {
                let Some(s) = stream_of(row, t) else {
                    errs.push(format!("{ctx}: the daemon has no stream {}", t.label()));
                    continue;
                };
                compare_stream(&format!("{ctx} daemon"), t, s, &mut errs);
                match off.and_then(|c| stream_of(c, t)) {
                    Some(o) => compare_stream(&format!("{ctx} analyze"), t, o, &mut errs),
                    None => errs.push(format!("{ctx}: analyze has no stream {}", t.label())),
                }
                table.push(format!(
                    "{sc:<4} {:<21} -> {:<21} {:>5} {:>5} | tshark pkts {:>4} lost {} max jitter {:.3} mean {:.3} max delta {:.3} | vqprobe pkts {:>4} lost {} max jitter {:.3} mean {:.3} max delta {:.3} jitter {:.3} mos {}",
                    t.src.to_string(),
                    t.dst.to_string(),
                    s["codec"].as_str().unwrap_or("?"),
                    s["ssrc"].as_str().unwrap_or("?"),
                    t.pkts,
                    t.lost,
                    t.max_jitter,
                    t.mean_jitter,
                    t.max_delta,
                    s["packets"],
                    s["lost"],
                    s["max_jitter_ms"].as_f64().unwrap_or(f64::NAN),
                    s["mean_jitter_ms"].as_f64().unwrap_or(f64::NAN),
                    s["max_delta_ms"].as_f64().unwrap_or(f64::NAN),
                    s["jitter_ms"].as_f64().unwrap_or(f64::NAN),
                    s["mos"],
                ));
            }
        }
    }
    // Nothing more: no media became a call of its own.
    if rows.len() != expected_calls {
        let extra: Vec<String> = rows
            .iter()
            .filter(|r| !r["sip_call_id"].is_string())
            .map(|r| format!("{} {} streams", r["call_id"], daemon::streams(r).len()))
            .collect();
        errs.push(format!(
            "the daemon stored {} calls, the captures hold {expected_calls} dialogs; without SIP: {extra:?}",
            rows.len()
        ));
    }

    // The clients' own counts. baresip prints "packets: TX RX" and "jitter: TX RX (ms)"
    // at hangup; the caller (A, where the probe captures) sends A->B and receives B->A.
    for sc in ["s1", "s3"] {
        let log = std::fs::read_to_string(out.join(format!("logs/{sc}-A-baresip.log")))
            .unwrap_or_default();
        let pkts = figures(&log, "packets:");
        let jit = figures(&log, "jitter:");
        let row = dialogs(&out.join(format!("{sc}.pcap")))
            .first()
            .and_then(|(id, _, _)| by_id.get(id.as_str()).copied());
        // The jitter line is there only when RTCP reports were exchanged (not in s3).
        let rx_jitter = jit.get(1).copied();
        let (Some(row), [tx, rx]) = (row, pkts.as_slice()) else {
            errs.push(format!("{sc}: no baresip statistics or no call"));
            continue;
        };
        let dir = |src: &str| {
            daemon::streams(row)
                .into_iter()
                .find(|s| s["src"].as_str().is_some_and(|v| v.starts_with(src)))
        };
        let (Some(ab), Some(ba)) = (dir("10.77.0.1:"), dir("10.77.0.2:")) else {
            errs.push(format!("{sc}: streams missing"));
            continue;
        };
        let (ab_p, ba_p) = (
            ab["packets"].as_f64().unwrap_or(-1.0),
            ba["packets"].as_f64().unwrap_or(-1.0),
        );
        let ba_j = ba["jitter_ms"].as_f64().unwrap_or(f64::NAN);
        table.push(format!(
            "{sc} baresip caller: sent {tx} received {rx} jitter {rx_jitter:?} ms | vqprobe A->B {ab_p} B->A {ba_p} jitter {ba_j:.3} ms"
        ));
        if (ab_p - tx).abs() > 2.0 || (ba_p - rx).abs() > 2.0 {
            errs.push(format!(
                "{sc}: baresip sent/received {tx}/{rx}, vqprobe {ab_p}/{ba_p}"
            ));
        }
        // baresip prints its RFC 3550 jitter to 0.1 ms, from receive times in user space
        // (scheduling adds to it), the probe from kernel capture times: close, not equal.
        if let Some(j) = rx_jitter {
            if (ba_j - j).abs() > 1.0 {
                errs.push(format!(
                    "{sc}: baresip's receive jitter {j} ms, vqprobe's {ba_j:.3} ms"
                ));
            }
        }
    }
    // linphonec (caller A in s6a) counts what it sent and received in its oRTP stats.
    {
        let log =
            std::fs::read_to_string(out.join("logs/s6a-A-linphonec.debug.log")).unwrap_or_default();
        let row = dialogs(&out.join("s6a.pcap"))
            .first()
            .and_then(|(id, _, _)| by_id.get(id.as_str()).copied());
        match (row, ortp(&log, "sent"), ortp(&log, "received")) {
            (Some(row), Some(sent), Some(recv)) => {
                let count = |src: &str| {
                    daemon::streams(row)
                        .into_iter()
                        .find(|s| s["src"].as_str().is_some_and(|v| v.starts_with(src)))
                        .and_then(|s| s["packets"].as_u64())
                        .unwrap_or(0)
                };
                let (ab, ba) = (count("10.77.0.1:"), count("10.77.0.2:"));
                table.push(format!(
                    "s6a linphonec caller: sent {sent} received {recv} | vqprobe A->B {ab} B->A {ba}"
                ));
                if ab.abs_diff(sent) > 2 || ba.abs_diff(recv) > 2 {
                    errs.push(format!(
                        "s6a: linphonec sent/received {sent}/{recv}, vqprobe {ab}/{ba}"
                    ));
                }
            }
            _ => errs.push("s6a: no linphonec oRTP statistics or no call".to_string()),
        }
    }
    eprintln!(
        "real user agents: {} calls stored for {expected_calls} dialogs\n  {}",
        rows.len(),
        table.join("\n  ")
    );
    assert!(
        errs.is_empty(),
        "{} problem(s):\n  {}",
        errs.len(),
        errs.join("\n  ")
    );
}
