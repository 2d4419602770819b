//! `vqprobe run` capturing live on `lo` while sipp places three real calls.
//!
//! Callee: `sipp -sn uas` on 127.0.0.2:5071 with `-rtp_echo` on 127.0.0.2:16000 (every
//! RTP packet it receives goes straight back to its sender). Caller: `sipp -sn uac_pcap`
//! on 127.0.0.1:5070, three calls at one per second; each call plays sipp's
//! `g711a.pcap` (PCMA, 30 ms packets) from 127.0.0.1:6000/6004/6008, then an RFC 4733
//! DTMF '1' (`dtmf_2833_1.pcap`, another SSRC), then BYE. The daemon runs with
//! `--interface lo --local-net 127.0.0.2/32` and a BPF that keeps only these ports, so
//! the callee is the probed host: the calls (INVITE from 127.0.0.1) are inbound, media
//! to 127.0.0.2 is inbound and the echo outbound; with the echo both directions carry
//! the same packets, so no call is one-way.
//!
//! Needs root (live capture) and sipp (Debian sip-tester, whose scenario reads
//! `pcap/g711a.pcap` relative to the working directory: the test links `pcap` to
//! `/usr/share/sip-tester`). Without them it prints "SKIPPED: …" and passes.

#[path = "support/daemon.rs"]
mod daemon;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use daemon::{calls, calls_or_empty, f, s, streams, wait_for, ChildGuard, Daemon, Workdir};
use serde_json::Value;

const SIPP_PCAP_DIR: &str = "/usr/share/sip-tester";
const CALLER: &str = "127.0.0.1";
const CALLEE: &str = "127.0.0.2";
const CALLEE_SIP_PORT: u16 = 5071;
const CALLER_SIP_PORT: u16 = 5070;
const CALLEE_MEDIA_PORT: u16 = 16000;
const CALLER_MEDIA_PORT: u16 = 6000;
const CALLS: usize = 3;
const BPF: &str =
    "udp and (port 5070 or port 5071 or portrange 6000-6100 or portrange 16000-16100)";

/// What one run of the scenario left behind, shared by the tests of this file.
struct SippRun {
    /// The stored rows after SIGTERM.
    rows: Vec<Value>,
    /// Call-ID → the caller's media port announced in its INVITE (from sipp's trace).
    caller_ports: BTreeMap<String, u16>,
    /// RTP packets in sipp's g711a.pcap (what each call sends one way).
    rtp_per_call: usize,
    /// How long SIGTERM → exit took.
    stop_took: Duration,
    /// Whole run.
    took: Duration,
}

static RUN: OnceLock<Option<SippRun>> = OnceLock::new();

/// Runs the scenario once per test process (None when skipped).
fn sipp_run() -> Option<&'static SippRun> {
    RUN.get_or_init(run_scenario).as_ref()
}

/// Counts the RTP packets (UDP over IPv4 on Ethernet, RTP version 2) of a classic pcap.
fn count_rtp(path: &Path) -> usize {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert!(b.len() >= 24, "{}: not a pcap", path.display());
    let le = match [b[0], b[1], b[2], b[3]] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => panic!("{}: not a classic pcap", path.display()),
    };
    let rd = |at: usize| {
        let x = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if le {
            u32::from_le_bytes(x)
        } else {
            u32::from_be_bytes(x)
        }
    };
    assert_eq!(rd(20) & 0xffff, 1, "{}: not Ethernet", path.display());
    let mut n = 0;
    let mut at = 24;
    while at + 16 <= b.len() {
        let incl = rd(at + 8) as usize;
        let frame = &b[at + 16..(at + 16 + incl).min(b.len())];
        at += 16 + incl;
        let mut off = 12;
        let mut ethertype = frame
            .get(off..off + 2)
            .map(|x| u16::from_be_bytes([x[0], x[1]]));
        while ethertype == Some(0x8100) {
            off += 4;
            ethertype = frame
                .get(off..off + 2)
                .map(|x| u16::from_be_bytes([x[0], x[1]]));
        }
        if ethertype != Some(0x0800) {
            continue;
        }
        let ip = &frame[off + 2..];
        if ip.len() < 20 || ip[9] != 17 {
            continue;
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let Some(payload) = ip.get(ihl + 8..) else {
            continue;
        };
        if payload.len() >= 12 && payload[0] >> 6 == 2 {
            n += 1;
        }
    }
    n
}

/// Call-ID → the media port of the INVITE's SDP, from a sipp `-trace_msg` log.
fn invites_in_trace(log: &str) -> BTreeMap<String, u16> {
    let mut out = BTreeMap::new();
    for block in log.split("\n-----------------------------------------------") {
        let lines: Vec<&str> = block.lines().map(str::trim).collect();
        if !lines.iter().any(|l| l.starts_with("INVITE sip:")) {
            continue;
        }
        let call_id = lines
            .iter()
            .find_map(|l| l.strip_prefix("Call-ID:").map(|v| v.trim().to_string()));
        let port = lines.iter().find_map(|l| {
            l.strip_prefix("m=audio ")
                .and_then(|r| r.split_whitespace().next())
                .and_then(|p| p.parse::<u16>().ok())
        });
        if let (Some(id), Some(port)) = (call_id, port) {
            out.insert(id, port);
        }
    }
    out
}

fn sipp(work: &Workdir, name: &str, args: &[&str]) -> ChildGuard {
    let out = File::create(work.path().join(format!("{name}.out"))).expect("sipp log");
    let err = out.try_clone().expect("sipp log");
    let child = Command::new("sipp")
        .args(args)
        .current_dir(work.path())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("spawning sipp ({name}): {e}"));
    ChildGuard::new(&format!("sipp {name}"), child)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn run_scenario() -> Option<SippRun> {
    let pcap_dir = PathBuf::from(SIPP_PCAP_DIR);
    if !daemon::is_root() || !daemon::have_command("sipp") || !pcap_dir.join("g711a.pcap").is_file()
    {
        println!("SKIPPED: needs root and sipp (sip-tester)");
        return None;
    }
    let t0 = Instant::now();
    let rtp_per_call = count_rtp(&pcap_dir.join("g711a.pcap"));
    let work = Workdir::new();
    std::os::unix::fs::symlink(&pcap_dir, work.path().join("pcap")).expect("linking pcap/");
    let db = work.db();
    let config = format!(
        "[capture]\nbpf = \"{BPF}\"\n[calls]\nrtp_timeout_s = 5\n[store]\nflush_interval_ms = 200\n"
    );
    let mut d = Daemon::spawn(
        &work,
        &db,
        &config,
        &["--interface", "lo", "--local-net", "127.0.0.2/32"],
    );
    // Printed once the capture handle is open (packets from now on are kept).
    d.wait_stderr("capturing on lo", Duration::from_secs(10));

    let (callee_sip, callee_media) = (CALLEE_SIP_PORT.to_string(), CALLEE_MEDIA_PORT.to_string());
    let calls_n = CALLS.to_string();
    let mut uas = sipp(
        &work,
        "uas",
        &[
            "-sn",
            "uas",
            "-i",
            CALLEE,
            "-p",
            &callee_sip,
            "-mi",
            CALLEE,
            "-rtp_echo",
            "-mp",
            &callee_media,
            "-m",
            &calls_n,
            "-timeout",
            "60s",
            "-nostdin",
            "-trace_msg",
            "-message_file",
            "uas.msg",
        ],
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        uas.is_running(),
        "sipp uas exited at once (ports {CALLEE_SIP_PORT}/{CALLEE_MEDIA_PORT} busy?):\n{}",
        tail(&read(&work.path().join("uas.out")), 20)
    );
    let remote = format!("{CALLEE}:{CALLEE_SIP_PORT}");
    let (caller_sip, caller_media) = (CALLER_SIP_PORT.to_string(), CALLER_MEDIA_PORT.to_string());
    let mut uac = sipp(
        &work,
        "uac",
        &[
            "-sn",
            "uac_pcap",
            &remote,
            "-i",
            CALLER,
            "-p",
            &caller_sip,
            "-mi",
            CALLER,
            "-mp",
            &caller_media,
            "-m",
            &calls_n,
            "-r",
            "1",
            "-timeout",
            "60s",
            "-nostdin",
            "-trace_msg",
            "-message_file",
            "uac.msg",
        ],
    );
    let st = uac.wait(Duration::from_secs(75));
    let uac_out = read(&work.path().join("uac.out"));
    let st =
        st.unwrap_or_else(|| panic!("sipp uac still running after 75 s:\n{}", tail(&uac_out, 30)));
    assert!(
        st.success(),
        "sipp uac failed ({st}):\n{}",
        tail(&uac_out, 40)
    );
    drop(uas); // its last job (200 OK to the last BYE) is done once the uac has exited

    let caller_ports = invites_in_trace(&read(&work.path().join("uac.msg")));
    assert_eq!(
        caller_ports.len(),
        CALLS,
        "Call-IDs in sipp's trace: {caller_ports:?}"
    );
    // Each call ends 2 s (the engine's linger) after its BYE.
    let all_done = wait_for(Duration::from_secs(10), || {
        let rows = calls_or_empty(&db);
        rows.len() >= CALLS && rows.iter().all(|r| s(r, "status") == "completed")
    });
    if !all_done {
        println!(
            "note: calls not all completed 10 s after the caller exited:\n{}",
            table(&calls_or_empty(&db))
        );
    }
    let (st, stop_took) = d.terminate(Duration::from_secs(10));
    assert!(
        st.success(),
        "vqprobe exit after SIGTERM: {st}; stderr:\n{}",
        d.stderr()
    );
    println!("daemon stderr:\n{}", d.stderr().trim_end());
    Some(SippRun {
        rows: calls(&db),
        caller_ports,
        rtp_per_call,
        stop_took,
        took: t0.elapsed(),
    })
}

fn num(v: Option<f64>, prec: usize) -> String {
    v.map_or("-".into(), |x| format!("{x:.prec$}"))
}

/// The stored calls and their streams, as a small table.
fn table(rows: &[Value]) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{:<20} {:<10} {:<7} {:<8} {:<5} {:<5} {:>5} {:>9} {:>6} {:>6}\n",
        "sip_call_id",
        "status",
        "reason",
        "dir",
        "1way",
        "codec",
        "mos",
        "jitter_ms",
        "loss",
        "dur_s"
    ));
    for r in rows {
        out.push_str(&format!(
            "{:<20} {:<10} {:<7} {:<8} {:<5} {:<5} {:>5} {:>9} {:>6} {:>6}\n",
            s(r, "sip_call_id"),
            s(r, "status"),
            s(r, "ended_reason"),
            s(r, "direction"),
            r["one_way_audio"]
                .as_i64()
                .map_or("-".into(), |x| (x != 0).to_string()),
            s(r, "codec"),
            num(f(r, "quality_mos"), 2),
            num(f(r, "jitter_ms"), 3),
            num(f(r, "loss_ratio"), 3),
            num(f(r, "duration_seconds"), 2),
        ));
        for st in streams(r) {
            out.push_str(&format!(
                "    {:<8} {:>15} -> {:<15} {} {:<5} pkts={:<4} lost={} jitter_ms={} mos={}\n",
                st["direction"].as_str().unwrap_or("-"),
                st["src"].as_str().unwrap_or("-"),
                st["dst"].as_str().unwrap_or("-"),
                st["ssrc"].as_str().unwrap_or("-"),
                st["codec"].as_str().unwrap_or("-"),
                st["packets"],
                st["lost"],
                num(st["jitter_ms"].as_f64(), 3),
                num(st["mos"].as_f64(), 2),
            ));
        }
    }
    out
}

/// Streams of `row` that touch neither the call's own caller media address nor the
/// callee's (shared) echo port from/to the call's own port.
fn foreign_streams(row: &Value, caller_port: u16) -> Vec<String> {
    let own = format!("{CALLER}:{caller_port}");
    streams(row)
        .iter()
        .filter(|st| st["src"].as_str() != Some(&own) && st["dst"].as_str() != Some(&own))
        .map(|st| {
            format!(
                "{} -> {} {} ({} packets)",
                st["src"].as_str().unwrap_or("-"),
                st["dst"].as_str().unwrap_or("-"),
                st["ssrc"].as_str().unwrap_or("-"),
                st["packets"]
            )
        })
        .collect()
}

#[test]
fn sipp_calls_captured_live_on_lo() {
    let Some(run) = sipp_run() else {
        return;
    };
    let rows = &run.rows;
    println!(
        "stored after 3 sipp uac_pcap calls (g711a.pcap: {} RTP packets per direction); \
         SIGTERM → exit 0 in {:?}; scenario {:.1} s\n{}",
        run.rtp_per_call,
        run.stop_took,
        run.took.as_secs_f64(),
        table(rows)
    );
    assert_eq!(rows.len(), CALLS, "exactly {CALLS} calls stored");
    let stored_ids: BTreeSet<&str> = rows.iter().map(|r| s(r, "sip_call_id")).collect();
    let sipp_ids: BTreeSet<&str> = run.caller_ports.keys().map(String::as_str).collect();
    assert_eq!(
        stored_ids, sipp_ids,
        "stored sip_call_ids vs sipp's Call-IDs"
    );

    let want = run.rtp_per_call as f64;
    let within = |n: f64| (n - want).abs() <= want * 0.05;
    let callee = format!("{CALLEE}:{CALLEE_MEDIA_PORT}");
    for r in rows {
        let id = s(r, "sip_call_id");
        let own = format!("{CALLER}:{}", run.caller_ports[id]);
        assert_eq!(s(r, "status"), "completed", "{id}");
        assert_eq!(s(r, "ended_reason"), "bye", "{id}");
        assert_eq!(s(r, "codec"), "PCMA", "{id}");
        // The INVITE came from 127.0.0.1, outside --local-net: the far end called us.
        assert_eq!(s(r, "direction"), "inbound", "{id}");
        // -rtp_echo sends every packet back: both directions carry media.
        assert_eq!(r["one_way_audio"].as_i64(), Some(0), "{id}: one_way_audio");
        let mos = f(r, "quality_mos").unwrap_or_else(|| panic!("{id}: quality_mos is null"));
        assert!(mos > 4.0, "{id}: quality_mos {mos}");
        let jitter = f(r, "jitter_ms").unwrap_or(f64::NAN);
        assert!(jitter < 5.0, "{id}: jitter_ms {jitter}");
        assert_eq!(f(r, "loss_ratio"), Some(0.0), "{id}: loss_ratio");
        let dur = f(r, "duration_seconds").unwrap_or(0.0);
        assert!(
            (8.0..12.0).contains(&dur),
            "{id}: duration {dur} s (8 s + 1 s pauses)"
        );

        // Both directions of the call's PCMA media.
        for (src, dst, dir) in [(&own, &callee, "inbound"), (&callee, &own, "outbound")] {
            let st = streams(r)
                .into_iter()
                .find(|st| {
                    st["src"].as_str() == Some(src.as_str())
                        && st["dst"].as_str() == Some(dst.as_str())
                        && st["codec"].as_str() == Some("PCMA")
                })
                .unwrap_or_else(|| panic!("{id}: no PCMA stream {src} -> {dst}"));
            let pkts = st["packets"].as_f64().unwrap_or(0.0);
            assert!(
                within(pkts),
                "{id} {src}->{dst}: {pkts} packets, sipp sent {want}"
            );
            assert_eq!(st["direction"].as_str(), Some(dir), "{id} {src}->{dst}");
            assert_eq!(st["lost"].as_i64(), Some(0), "{id} {src}->{dst}: lost");
            let j = st["jitter_ms"].as_f64().unwrap_or(f64::NAN);
            assert!(j < 5.0, "{id} {src}->{dst}: jitter_ms {j}");
            let m = st["mos"].as_f64().unwrap_or(0.0);
            assert!(m > 4.0, "{id} {src}->{dst}: mos {m}");
        }
        let foreign = foreign_streams(r, run.caller_ports[id]);
        if !foreign.is_empty() {
            println!(
                "DEFECT (see sipp_streams_stay_with_their_call): {id} holds streams of other \
                 calls: {foreign:?}"
            );
        }
    }
}

/// Every stream stored with a call is that call's: its src or dst is the caller media
/// address the call's INVITE announced. The callee answers every call with the same
/// 127.0.0.2:16000, and the DTMF that sipp plays at 8 s into each call has a new SSRC
/// on the call's existing 5-tuple: it must stay with the call that owns the 5-tuple,
/// not join the dialog that last announced the shared endpoint.
#[test]
fn sipp_streams_stay_with_their_call() {
    let Some(run) = sipp_run() else {
        return;
    };
    let mut wrong = Vec::new();
    for r in &run.rows {
        let id = s(r, "sip_call_id");
        for st in foreign_streams(r, run.caller_ports[id]) {
            wrong.push(format!("{id}: {st}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "streams stored with the wrong call:\n{}\n{}",
        wrong.join("\n"),
        table(&run.rows)
    );
}
