//! One packet with a hostile timestamp costs O(1): a capture (pcap and pcapng) whose one
//! record is moved forward by a day, a year, 70/100 years or backwards goes through
//! `analyze` and `run --replay` quickly, with the child's peak RSS under a fixed cap, and
//! the calls around it keep exactly the figures they have in the unmodified file.
//!
//! The moved record is the last packet of a short RTP-only stream between two SIP calls:
//! call A has ended (BYE) before it, call B starts after it. Before the engine skipped
//! empty time spans, one record moved by a year cost 2.3 GB and 7.6 s.

#[path = "support/capgen.rs"]
mod capgen;
#[path = "support/daemon.rs"]
mod daemon;

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use capgen::*;
use daemon::{Daemon, Workdir, VQPROBE};
use serde_json::Value;

/// Peak resident memory allowed to any child, KiB. A clean run of this capture peaks at
/// about 9 MiB; the unbounded engine needed 13 MB for a day and 2.3 GB for a year.
const RSS_CAP_KIB: u64 = 64 * 1024;

/// Wall time allowed to one `analyze` (a clean run takes well under a second).
const TIME_CAP: Duration = Duration::from_secs(10);

const DAY: i64 = 86_400;
const YEAR: i64 = 365 * DAY;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address literal")
}

/// Call A (media 2-12 s), a 50-packet RTP-only stream X (14-15 s), call B (media 20-30 s).
fn scenario() -> Scenario {
    let mut sc = Scenario::new();
    for (id, a, b, start) in [
        ("call-a@jump", "10.0.0.1:40000", "10.0.0.2:50000", 2),
        ("call-b@jump", "10.0.0.3:40002", "10.0.0.4:50002", 20),
    ] {
        let (a, b) = (addr(a), addr(b));
        let t0 = BASE_TIME + secs(start);
        let up = StreamSpec::pcmu(a, b, 0x1000 + start as u32, t0, 500)
            .with_loss([17, 18, 200])
            .with_jitter(start, 4_000, 125);
        let down = StreamSpec::pcmu(b, a, 0x2000 + start as u32, t0 + ms(7), 500);
        sc.add_stream(&up);
        sc.add_stream(&down);
        let d = SipDialog::new(
            id,
            "+447700900123",
            "+15551230000",
            SocketAddr::new(a.ip(), 5060),
            SocketAddr::new(b.ip(), 5060),
        );
        sc.extend(d.completed(
            t0 - ms(600),
            t0 - ms(100),
            up.end_time().max(down.end_time()) + ms(100),
            &Sdp::pcmu(a),
            &Sdp::pcmu(b),
        ));
    }
    let x = StreamSpec::pcmu(
        addr("10.9.9.9:30000"),
        addr("10.0.0.5:30002"),
        0xBAD0_0001,
        BASE_TIME + secs(14),
        50,
    );
    sc.add_stream(&x);
    sc
}

/// Byte offsets of each record's timestamp in a capture `capgen` wrote (little-endian):
/// pcap: (sec, frac) pairs; pcapng: EPB (high, low) µs pairs.
fn record_ts_offsets(bytes: &[u8], format: FileFormat) -> Vec<usize> {
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().expect("4 bytes"));
    let mut out = Vec::new();
    match format {
        FileFormat::Pcapng => {
            let mut o = 0;
            while o + 12 <= bytes.len() {
                let (kind, len) = (u32_at(o), u32_at(o + 4) as usize);
                if kind == 6 {
                    out.push(o + 12);
                }
                o += len;
            }
        }
        _ => {
            let mut o = 24;
            while o + 16 <= bytes.len() {
                out.push(o);
                o += 16 + u32_at(o + 8) as usize;
            }
        }
    }
    out
}

/// The index of the record holding stream X's last packet (SSRC 0xBAD00001, 14.98 s).
fn moved_record(bytes: &[u8], offsets: &[usize], format: FileFormat) -> usize {
    let ssrc = 0xBAD0_0001u32.to_be_bytes();
    let last = offsets
        .iter()
        .enumerate()
        .filter(|(_, &o)| {
            let start = o + if format == FileFormat::Pcapng { 20 } else { 16 };
            bytes[start..]
                .windows(4)
                .take(80)
                .any(|w| w == ssrc.as_slice())
        })
        .map(|(i, _)| i)
        .next_back();
    last.expect("stream X is in the capture")
}

/// A copy of the capture with record `idx`'s time moved by `delta` seconds (for a
/// negative delta below the epoch: to the epoch).
fn moved(bytes: &[u8], format: FileFormat, idx: usize, delta: i64) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let o = record_ts_offsets(bytes, format)[idx];
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().expect("4 bytes"));
    match format {
        FileFormat::Pcapng => {
            let us = (u64::from(u32_at(o)) << 32) | u64::from(u32_at(o + 4));
            let us = (us as i64 + delta * 1_000_000).max(0) as u64;
            out[o..o + 4].copy_from_slice(&((us >> 32) as u32).to_le_bytes());
            out[o + 4..o + 8].copy_from_slice(&(us as u32).to_le_bytes());
        }
        _ => {
            let sec = i64::from(u32_at(o)) + delta;
            let sec = u32::try_from(sec.max(0)).expect("pcap seconds fit in 32 bits");
            out[o..o + 4].copy_from_slice(&sec.to_le_bytes());
        }
    }
    out
}

/// Runs `vqprobe analyze FILE --format json`; returns the document, the child's peak
/// RSS (KiB, from wait4's rusage: this child alone) and the wall time.
// Reaped by `wait4` below, which clippy does not see.
#[allow(clippy::zombie_processes)]
fn analyze_measured(file: &Path) -> (Value, u64, Duration) {
    let started = Instant::now();
    let mut child = Command::new(VQPROBE)
        .arg("analyze")
        .arg(file)
        .args(["--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vqprobe analyze");
    let mut stdout = child.stdout.take().expect("stdout pipe");
    let mut stderr = child.stderr.take().expect("stderr pipe");
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut out = Vec::new();
    stdout.read_to_end(&mut out).expect("read stdout");
    let err = err_reader.join().expect("stderr reader");
    let (status, rss) = wait4(child.id());
    let took = started.elapsed();
    assert!(
        status == 0,
        "analyze {} exited with wait status {status}: {err}",
        file.display()
    );
    let doc = serde_json::from_slice(&out).expect("analyze JSON");
    (doc, rss, took)
}

/// Reaps `pid` with wait4: (wait status, peak RSS in KiB).
fn wait4(pid: u32) -> (i32, u64) {
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills; pid is our own unreaped child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut ru) };
    assert_eq!(r, pid as libc::pid_t, "wait4");
    (status, ru.ru_maxrss as u64)
}

/// The calls with a SIP Call-ID (A and B), by Call-ID: what must not change.
fn sip_calls(doc: &Value) -> Vec<Value> {
    let mut v: Vec<Value> = doc["calls"]
        .as_array()
        .expect("calls array")
        .iter()
        .filter(|c| c["sip_call_id"].is_string())
        .cloned()
        .collect();
    v.sort_by_key(|c| c["sip_call_id"].as_str().unwrap_or("").to_string());
    v
}

/// The peak RSS of a running process (VmHWM), KiB.
fn vm_hwm(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

/// `run --replay FILE --speed 0` until the replay has finished: the stored A and B rows
/// (by Call-ID) and the daemon's peak RSS (KiB).
fn replay_measured(work: &Workdir, file: &Path, tag: &str) -> (Vec<Value>, u64) {
    let db = work.path().join(format!("{tag}.db"));
    let mut d = Daemon::spawn(
        work,
        &db,
        "",
        &["--replay", file.to_str().expect("utf-8"), "--speed", "0"],
    );
    d.wait_stderr("replay finished", Duration::from_secs(30));
    let hwm = vm_hwm(d.pid());
    let (status, _) = d.terminate(Duration::from_secs(15));
    assert!(status.success(), "daemon exit {status}: {}", d.stderr());
    let mut rows: Vec<Value> = daemon::calls(&db)
        .into_iter()
        .filter(|r| {
            r["sip_call_id"]
                .as_str()
                .is_some_and(|s| s.ends_with("@jump"))
        })
        .map(|mut r| {
            // The row id and write time are the store's, not the call's.
            if let Some(o) = r.as_object_mut() {
                o.remove("id");
                o.remove("updated_at");
            }
            r
        })
        .collect();
    rows.sort_by_key(|c| c["sip_call_id"].as_str().unwrap_or("").to_string());
    (rows, hwm)
}

fn jumps(format: FileFormat) -> Vec<(&'static str, i64)> {
    let far = if format == FileFormat::Pcapng {
        ("+100 years", 100 * YEAR)
    } else {
        // Classic pcap seconds are 32 bits (until 2106): 70 years is as far as it goes.
        ("+70 years", 70 * YEAR)
    };
    vec![
        ("+1 day", DAY),
        ("+1 year", YEAR),
        far,
        ("-1 day", -DAY),
        ("to the epoch", -60 * YEAR),
    ]
}

fn check_analyze(format: FileFormat, name: &str) {
    let work = Workdir::new();
    let clean = scenario().to_bytes(format, LinkLayer::Ethernet);
    let offsets = record_ts_offsets(&clean, format);
    let idx = moved_record(&clean, &offsets, format);
    let base_path = work.path().join(format!("clean.{name}"));
    std::fs::write(&base_path, &clean).expect("write capture");
    let (base, base_rss, base_took) = analyze_measured(&base_path);
    let want = sip_calls(&base);
    assert_eq!(want.len(), 2, "calls A and B in the clean file: {base}");
    println!("{name} clean: peak RSS {base_rss} KiB, {base_took:?}");
    for (label, delta) in jumps(format) {
        let path = work.path().join(format!("moved.{name}"));
        std::fs::write(&path, moved(&clean, format, idx, delta)).expect("write capture");
        let (doc, rss, took) = analyze_measured(&path);
        println!("{name} {label}: peak RSS {rss} KiB, {took:?}");
        assert!(
            rss < RSS_CAP_KIB,
            "{name} {label}: peak RSS {rss} KiB over the {RSS_CAP_KIB} KiB cap"
        );
        assert!(took < TIME_CAP, "{name} {label}: took {took:?}");
        assert_eq!(
            sip_calls(&doc),
            want,
            "{name} {label}: calls A and B differ from the clean file's"
        );
        assert_eq!(
            doc["capture"]["packets"], base["capture"]["packets"],
            "{name} {label}: every packet read"
        );
    }
}

#[test]
fn analyze_pcap_one_record_moved() {
    check_analyze(FileFormat::PcapMicros, "pcap");
}

#[test]
fn analyze_pcapng_one_record_moved() {
    check_analyze(FileFormat::Pcapng, "pcapng");
}

#[test]
fn replay_one_record_moved() {
    let work = Workdir::new();
    for format in [FileFormat::PcapNanos, FileFormat::Pcapng] {
        let name = if format == FileFormat::Pcapng {
            "pcapng"
        } else {
            "pcap"
        };
        let clean = scenario().to_bytes(format, LinkLayer::Ethernet);
        let offsets = record_ts_offsets(&clean, format);
        let idx = moved_record(&clean, &offsets, format);
        let base_path = work.path().join(format!("clean.{name}"));
        std::fs::write(&base_path, &clean).expect("write capture");
        let (want, base_rss) = replay_measured(&work, &base_path, &format!("{name}-clean"));
        assert_eq!(want.len(), 2, "calls A and B stored from the clean file");
        println!("replay {name} clean: peak RSS {base_rss} KiB");
        for (i, (label, delta)) in jumps(format).into_iter().enumerate() {
            let path = work.path().join(format!("moved-{i}.{name}"));
            std::fs::write(&path, moved(&clean, format, idx, delta)).expect("write capture");
            let started = Instant::now();
            let (rows, rss) = replay_measured(&work, &path, &format!("{name}-{i}"));
            println!(
                "replay {name} {label}: peak RSS {rss} KiB, {:?}",
                started.elapsed()
            );
            // The daemon's own baseline (threads, API, SQLite) is about 44 MiB: the
            // jump may add no more than noise on top of it.
            assert!(
                rss < RSS_CAP_KIB && rss < base_rss + 8 * 1024,
                "replay {name} {label}: peak RSS {rss} KiB (clean {base_rss} KiB)"
            );
            assert_eq!(
                rows, want,
                "replay {name} {label}: stored calls A and B differ from the clean replay's"
            );
        }
    }
}
