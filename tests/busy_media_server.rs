//! A busy media server: 10,000 calls over 50 port pairs handed to the next call as soon
//! as one ends (60 % within 100 ms, inside the linger), with hold/resume, codec changes,
//! T.38 phases, early media, CANCELs, 486s and re-used SSRCs (`support/busy.rs`). Every
//! stream must be attributed to its call with the generator's figures — offline through
//! `vqprobe analyze`, and live through the daemon capturing a veth in a namespace this
//! test creates while tcpreplay plays the same capture into it.

#[path = "support/busy.rs"]
mod busy;
#[path = "support/capgen.rs"]
mod capgen;
#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/netns.rs"]
mod netns;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use busy::{CallTruth, StreamTruth};
use capgen::{write_capture, FileFormat, LinkLayer};
use daemon::{have_command, is_root, wait_for, Workdir, VQPROBE};
use netns::Netns;
use serde_json::Value;

const CALLS: usize = 10_000;
const PAIRS: u16 = 50;

/// A stream as a comparable tuple.
type Key = (String, String, String, String, u64, u64);

fn truth_key(s: &StreamTruth) -> Key {
    (
        s.src.to_string(),
        s.dst.to_string(),
        s.ssrc.clone(),
        s.codec.to_string(),
        s.packets,
        s.lost,
    )
}

fn record_key(s: &Value) -> Key {
    (
        s["src"].as_str().unwrap_or("").to_string(),
        s["dst"].as_str().unwrap_or("").to_string(),
        s["ssrc"].as_str().unwrap_or("").to_string(),
        s["codec"].as_str().unwrap_or("").to_string(),
        s["packets"].as_u64().unwrap_or(0),
        s["lost"].as_u64().unwrap_or(0),
    )
}

/// Every difference between the records (`sip_call_id`, `status`, `ended_reason`,
/// `fax`, `streams`) and the truth, as lines.
fn mismatches(records: &[Value], truth: &BTreeMap<String, CallTruth>) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = BTreeMap::new();
    for r in records {
        let Some(id) = r["sip_call_id"].as_str() else {
            out.push(format!("a call with no SIP: {}", r["call_id"]));
            continue;
        };
        if seen.insert(id.to_string(), r).is_some() {
            out.push(format!("{id}: more than one record"));
        }
    }
    for (id, t) in truth {
        let Some(r) = seen.get(id.as_str()) else {
            out.push(format!("{id} ({:?}): no record", t.kind));
            continue;
        };
        let fax = r["fax"]
            .as_bool()
            .or_else(|| r["fax"].as_i64().map(|v| v != 0));
        let got = (
            r["status"].as_str().unwrap_or(""),
            r["ended_reason"].as_str().unwrap_or(""),
            fax.unwrap_or(false),
        );
        if got != (t.status, t.ended_reason, t.fax) {
            out.push(format!(
                "{id} ({:?}): status/reason/fax {got:?}, want {:?}",
                t.kind,
                (t.status, t.ended_reason, t.fax)
            ));
        }
        let mut want: Vec<Key> = t.streams.iter().map(truth_key).collect();
        let mut have: Vec<Key> = r["streams"]
            .as_array()
            .map(|a| a.iter().map(record_key).collect())
            .unwrap_or_default();
        want.sort();
        have.sort();
        if want != have {
            out.push(format!(
                "{id} ({:?}): streams\n  got  {have:?}\n  want {want:?}",
                t.kind
            ));
        }
    }
    out
}

fn report(label: &str, bad: &[String], calls: usize, secs: f64) {
    eprintln!(
        "{label}: {calls} calls checked, {} mismatches, {secs:.1} s",
        bad.len()
    );
    assert!(
        bad.is_empty(),
        "{label}: {} mismatches, the first:\n{}",
        bad.len(),
        bad.iter().take(12).cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn every_stream_to_its_call_offline_and_live() {
    let t0 = Instant::now();
    let work = Workdir::new();
    let gen = busy::generate(CALLS, PAIRS, 0x5eed);
    let pcap = work.path().join("busy.pcap");
    write_capture(
        &pcap,
        FileFormat::PcapMicros,
        LinkLayer::Ethernet,
        &gen.events,
    )
    .expect("writing the capture");
    let kinds = gen.truth.values().fold(BTreeMap::new(), |mut m, t| {
        *m.entry(format!("{:?}", t.kind)).or_insert(0) += 1;
        m
    });
    eprintln!(
        "busy: {} calls ({kinds:?}), {} datagrams, written in {:.1} s",
        gen.truth.len(),
        gen.events.len(),
        t0.elapsed().as_secs_f64()
    );

    // Offline.
    let t = Instant::now();
    let out = Command::new(VQPROBE)
        .args(["analyze", "--format", "json"])
        .arg(&pcap)
        .output()
        .expect("running vqprobe analyze");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("analyze JSON");
    let records = doc["calls"].as_array().cloned().unwrap_or_default();
    report(
        "analyze",
        &mismatches(&records, &gen.truth),
        records.len(),
        t.elapsed().as_secs_f64(),
    );

    // Live: the daemon on a veth in a namespace of our own, tcpreplay feeding it.
    if !is_root() || !have_command("tcpreplay") {
        eprintln!("SKIPPED: the live half needs root and tcpreplay");
        return;
    }
    let net = Netns::new("b");
    let db = work.db();
    let config = work.write(
        "busy.toml",
        "[calls]\nrtp_timeout_s = 5\n[store]\nflush_interval_ms = 200\n[pipeline]\nworkers = 2\n",
    );
    let stderr = work.path().join("daemon.stderr");
    let child = Command::new("ip")
        .args(["netns", "exec", &net.ns, VQPROBE, "run", "--config"])
        .arg(&config)
        .arg("--db")
        .arg(&db)
        .args(["--interface", &net.inner, "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&stderr).expect("stderr log"))
        .spawn()
        .expect("spawning the daemon");
    let mut guard = daemon::ChildGuard::new("vqprobe", child);
    let read_err = || std::fs::read_to_string(&stderr).unwrap_or_default();
    assert!(
        wait_for(Duration::from_secs(20), || read_err()
            .contains("capturing on")),
        "the daemon did not start capturing: {}",
        read_err()
    );
    let t = Instant::now();
    let replay = Command::new("tcpreplay")
        .args(["-i", &net.outer, "--preload-pcap", "--pps=60000"])
        .arg(&pcap)
        .output()
        .expect("running tcpreplay");
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    // Every call ends in SIP; the last ones are written after the linger.
    let done = wait_for(Duration::from_secs(60), || {
        daemon::try_calls(&db)
            .map(|rows| {
                rows.iter().filter(|r| r["status"] != "in_progress").count() >= gen.truth.len()
            })
            .unwrap_or(false)
    });
    let _ = guard.terminate(Duration::from_secs(20));
    let rows = daemon::calls(&db);
    assert!(
        done,
        "only {} of {} calls stored; stderr:\n{}",
        rows.len(),
        gen.truth.len(),
        read_err()
    );
    report(
        "daemon",
        &mismatches(&rows, &gen.truth),
        rows.len(),
        t.elapsed().as_secs_f64(),
    );
    let summary = read_err();
    let line = summary
        .lines()
        .rev()
        .find(|l| l.contains("packets, kernel dropped"));
    eprintln!("daemon: {}", line.unwrap_or("(no summary)"));
}
