//! Resource floods stay inside the configured caps, the excess is counted, and a real
//! call in the same capture is measured exactly as without the flood.
//!
//! One generated capture holds a 60 s call R (two PCMU streams with loss and jitter)
//! and, during its media:
//! - 100,000 INVITEs with unique Call-IDs and SDP offers, never answered;
//! - 1,000,000 RTP packets with unique SSRCs: half towards R's own media port (from
//!   another address), half on 250,000 unique flows;
//! - SIP messages with 3,000 headers, SDPs with 1,000 m= sections and SDPs with 3,000
//!   attribute lines.
//!
//! `analyze` (default caps: 100,000 calls, 100,000 streams, 64 streams per call) and
//! `run --replay` with `pipeline.max_calls`/`max_streams` set low must keep their peak
//! RSS under a fixed bound, count what they refused (engine counters, Prometheus
//! metrics), and give R the figures it has in the same capture without the flood.

#[path = "support/capgen.rs"]
mod capgen;
#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/http.rs"]
mod http;

use std::io::{BufWriter, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use capgen::*;
use daemon::{Daemon, Workdir, VQPROBE};
use serde_json::Value;

const INVITES: u32 = 100_000;
const SSRCS: u32 = 1_000_000;
const BIG_HEADERS: usize = 3_000;
const BIG_M_SECTIONS: usize = 1_000;
const BIG_ATTRIBUTES: usize = 3_000;
/// Each kind of oversized message, this many times.
const BIG_EACH: u32 = 3;

const R_CALLER: &str = "10.0.0.1:40000";
const R_CALLEE: &str = "10.0.0.2:50000";
const R_CALL_ID: &str = "real-call@flood";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address literal")
}

fn v4(a: u8, b: u8, c: u8, d: u8, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), port)
}

/// Call R: INVITE at 1.4 s, media 2-62 s both ways, BYE after.
fn real_call() -> Scenario {
    let mut sc = Scenario::new();
    let (a, b) = (addr(R_CALLER), addr(R_CALLEE));
    let t0 = BASE_TIME + secs(2);
    let up = StreamSpec::pcmu(a, b, 0x1111_0001, t0, 3_000)
        .with_loss([100, 101, 102, 1_500, 2_999 - 7])
        .with_jitter(7, 6_000, 125);
    let down = StreamSpec::pcmu(b, a, 0x2222_0002, t0 + ms(9), 3_000).with_loss([40, 41]);
    sc.add_stream(&up);
    sc.add_stream(&down);
    let d = SipDialog::new(
        R_CALL_ID,
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
    sc
}

/// `msg` (headers and body) with `extra` header lines after the request line and the
/// body replaced by `body` (Content-Length fixed).
fn rewrite(msg: &str, extra: &str, body: Option<&str>) -> String {
    let (head, old_body) = msg.split_once("\r\n\r\n").expect("SIP head and body");
    let body = body.unwrap_or(old_body);
    let (first, rest) = head.split_once("\r\n").expect("request line");
    let rest: String = rest
        .split("\r\n")
        .filter(|l| !l.starts_with("Content-Length"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    format!(
        "{first}\r\n{extra}{rest}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Flood item `j` (0..SLOTS): one INVITE in every 11 slots, RTP in the rest.
fn flood_item(j: u32) -> (SocketAddr, SocketAddr, Vec<u8>) {
    if j % 11 == 10 {
        invite(j / 11)
    } else {
        rtp(j - (j + 1) / 11)
    }
}

/// Flood slots: 1,000,000 RTP packets and 100,000 INVITEs.
const SLOTS: u32 = SSRCS + INVITES;

/// The oversized message (kind, copy) sent right after slot `j`, if any.
fn big_after(j: u32) -> Option<(u32, u32)> {
    let (copy, off) = (j / 300_000, j % 300_000);
    (copy < BIG_EACH && (1_000..1_003).contains(&off)).then(|| (copy, off - 1_000))
}

/// INVITE `n` of the Call-ID flood: unique caller, Call-ID and media port.
fn invite(n: u32) -> (SocketAddr, SocketAddr, Vec<u8>) {
    let caller = v4(10, 77 + (n >> 16) as u8, (n >> 8) as u8, n as u8, 5060);
    let callee = SocketAddr::new(addr(R_CALLEE).ip(), 5060);
    let d = SipDialog::new(
        &format!("flood-{n}@attacker"),
        "+441632960000",
        "+15551230000",
        caller,
        callee,
    );
    let media = SocketAddr::new(caller.ip(), 30_000 + 2 * (n % 1_000) as u16);
    (
        caller,
        callee,
        d.invite(Some(&Sdp::pcmu(media))).into_bytes(),
    )
}

/// RTP packet `k` of the SSRC flood (SSRC unique per packet).
fn rtp(k: u32) -> (SocketAddr, SocketAddr, Vec<u8>) {
    if k < SSRCS / 2 {
        // Towards R's caller media port, from an attacker's address.
        let p = rtp_packet(
            0,
            false,
            k as u16,
            k.wrapping_mul(160),
            0x4000_0000 + k,
            20,
            0xFF,
        );
        (v4(10, 66, 0, 1, 7_000), addr(R_CALLER), p)
    } else {
        let m = k - SSRCS / 2;
        let f = m / 2;
        let p = rtp_packet(
            0,
            false,
            m as u16,
            m.wrapping_mul(160),
            0x5000_0000 + m,
            20,
            0xFF,
        );
        (
            v4(
                10,
                88,
                (f >> 8) as u8,
                f as u8,
                10_000 + 2 * (f >> 16) as u16,
            ),
            v4(10, 99, 0, 1, 20_000 + 2 * (f % 10_000) as u16),
            p,
        )
    }
}

/// Oversized message `which` (0: 3,000 headers, 1: 1,000 m= sections, 2: 3,000 SDP
/// attributes), copy `n`.
fn big_message(n: u32, which: u32) -> (SocketAddr, SocketAddr, Vec<u8>) {
    let caller = v4(10, 55, which as u8, n as u8, 5060);
    let callee = SocketAddr::new(addr(R_CALLEE).ip(), 5060);
    let d = SipDialog::new(
        &format!("big-{which}-{n}@attacker"),
        "+441632960001",
        "+15551230000",
        caller,
        callee,
    );
    let media = SocketAddr::new(caller.ip(), 31_000);
    let invite = d.invite(Some(&Sdp::pcmu(media)));
    let sdp = Sdp::pcmu(media).render();
    let msg = match which {
        0 => {
            let extra: String = (0..BIG_HEADERS).map(|i| format!("X-F{i}: v\r\n")).collect();
            rewrite(&invite, &extra, None)
        }
        1 => {
            let mut body = sdp.clone();
            for i in 0..BIG_M_SECTIONS {
                body.push_str(&format!("m=audio {} RTP/AVP 0\r\n", 32_000 + 2 * i));
            }
            rewrite(&invite, "", Some(&body))
        }
        _ => {
            let mut body = sdp.clone();
            for i in 0..BIG_ATTRIBUTES {
                body.push_str(&format!("a=x-flood:{i}\r\n"));
            }
            rewrite(&invite, "", Some(&body))
        }
    };
    assert!(msg.len() < 60_000, "fits a UDP datagram: {}", msg.len());
    (caller, callee, msg.into_bytes())
}

/// Writes the capture: R's events merged in time order with the flood (one item every
/// 52 µs from 3 s on, when R's media runs) when `flood`.
fn write_capture(path: &Path, flood: bool) {
    let mut events = real_call().sorted_events().into_iter().peekable();
    let file = std::fs::File::create(path).expect("create capture");
    let mut w = CaptureWriter::new(
        BufWriter::with_capacity(1 << 20, file),
        FileFormat::PcapMicros,
        LinkLayer::Ethernet,
    )
    .expect("capture header");
    let start = BASE_TIME + secs(3);
    let n = if flood { SLOTS } else { 0 };
    for j in 0..n {
        let t = start + us(52 * u64::from(j));
        while let Some(e) = events.next_if(|e| e.time <= t) {
            w.write_event(&e).expect("write");
        }
        let (src, dst, payload) = flood_item(j);
        w.write_event(&Event::udp(t, src, dst, payload))
            .expect("write");
        if let Some((copy, which)) = big_after(j) {
            let (src, dst, payload) = big_message(copy, which);
            w.write_event(&Event::udp(t + us(1), src, dst, payload))
                .expect("write");
        }
    }
    for e in events {
        w.write_event(&e).expect("write");
    }
    w.finish().expect("finish capture");
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

/// `vqprobe analyze FILE --format json`: the document, peak RSS (KiB), wall time.
// Reaped by `wait4`, which clippy does not see.
#[allow(clippy::zombie_processes)]
fn analyze_measured(file: &Path) -> (Value, u64, Duration) {
    let started = Instant::now();
    let mut child = Command::new(VQPROBE)
        .arg("analyze")
        .arg(file)
        .args(["--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn vqprobe analyze");
    let mut out = Vec::new();
    child
        .stdout
        .take()
        .expect("stdout pipe")
        .read_to_end(&mut out)
        .expect("read stdout");
    let (status, rss) = wait4(child.id());
    assert_eq!(status, 0, "analyze {} failed", file.display());
    let doc = serde_json::from_slice(&out).expect("analyze JSON");
    (doc, rss, started.elapsed())
}

/// R's figures: the call without its stream list, and its two real streams. (The
/// flood's packets towards R's port from another address are streams of R too, up to
/// the per-call cap; they are checked separately.)
fn r_figures(call: &Value) -> (Value, Vec<Value>) {
    let mut c = call.clone();
    let streams = c
        .as_object_mut()
        .and_then(|o| o.remove("streams"))
        .and_then(|s| s.as_array().cloned())
        .unwrap_or_default();
    let mut real: Vec<Value> = streams
        .into_iter()
        .filter(|s| s["ssrc"] == "0x11110001" || s["ssrc"] == "0x22220002")
        .collect();
    real.sort_by_key(|s| s["ssrc"].as_str().unwrap_or("").to_string());
    (c, real)
}

fn find_r(doc: &Value) -> &Value {
    doc["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .find(|c| c["sip_call_id"] == R_CALL_ID)
        .expect("call R in the output")
}

struct Captures {
    _work: Workdir,
    clean: PathBuf,
    flood: PathBuf,
}

fn captures() -> Captures {
    let work = Workdir::new();
    let clean = work.path().join("clean.pcap");
    let flood = work.path().join("flood.pcap");
    write_capture(&clean, false);
    write_capture(&flood, true);
    Captures {
        _work: work,
        clean,
        flood,
    }
}

/// Stream fields that are the same for R's real streams with or without the flood.
fn real_streams_equal(want: &[Value], got: &[Value], ctx: &str) {
    assert_eq!(
        want.len(),
        2,
        "{ctx}: R has its two streams without the flood"
    );
    assert_eq!(got, want, "{ctx}: R's real streams differ with the flood");
}

#[test]
fn floods_stay_under_the_caps_and_the_real_call_is_unchanged() {
    let caps = captures();
    let (clean, clean_rss, _) = analyze_measured(&caps.clean);
    let (doc, rss, took) = analyze_measured(&caps.flood);
    let size = std::fs::metadata(&caps.flood).map(|m| m.len()).unwrap_or(0);
    let c = &doc["capture"];
    println!(
        "analyze flood ({size} bytes, {} packets): peak RSS {rss} KiB (clean {clean_rss} KiB), \
         {took:?}; calls {} refused {}, streams {} refused {}, sip malformed {}",
        c["packets"],
        c["calls"],
        c["calls_refused"],
        c["streams"],
        c["streams_refused"],
        c["sip_malformed"]
    );
    // 100,000 calls and 100,000 streams (the default caps) at a few hundred bytes each,
    // plus the router and the output: bounded well under this.
    assert!(rss < 400 * 1024, "analyze peak RSS {rss} KiB");
    assert_eq!(
        c["packets"].as_u64(),
        Some(
            clean["capture"]["packets"].as_u64().expect("packets")
                + u64::from(SLOTS + 3 * BIG_EACH)
        )
    );
    // SIP messages with 3,000 headers are refused as malformed and counted; INVITEs
    // whose SDP has 1,000 m= sections or 3,000 attributes are dialogs (their SDP
    // refused: no media claimed).
    assert_eq!(
        c["sip_malformed"].as_u64(),
        Some(u64::from(BIG_EACH)),
        "3,000 headers are refused"
    );
    // Every dialog is either tracked (a record) or refused and counted: R, the INVITE
    // flood and the two kinds of oversized-SDP INVITEs, against the 100,000 call cap.
    let dialogs = 1 + u64::from(INVITES) + 2 * u64::from(BIG_EACH);
    assert_eq!(
        c["calls"].as_u64(),
        Some(100_000),
        "calls tracked = the cap"
    );
    assert_eq!(
        c["calls_refused"].as_u64(),
        Some(dialogs - 100_000),
        "the excess over the call cap is counted"
    );
    // The SSRC flood on R's port: R keeps 64 streams (its 2 and 62 of the flood's),
    // the other 499,938 are refused and counted. The flood on unique flows changes
    // SSRC with every packet: never confirmed as RTP, held in the bounded candidate
    // table only.
    assert_eq!(c["streams"].as_u64(), Some(64), "streams tracked");
    assert_eq!(
        c["streams_refused"].as_u64(),
        Some(u64::from(SSRCS / 2) - 62),
        "SSRCs over the per-call cap counted"
    );

    let (want_call, want_streams) = r_figures(find_r(&clean));
    let r = find_r(&doc);
    let (got_call, got_streams) = r_figures(r);
    real_streams_equal(&want_streams, &got_streams, "analyze");
    let held = r["streams"].as_array().map_or(0, Vec::len);
    assert_eq!(held, 64, "R holds 64 streams (per-call cap)");
    let strip = |mut v: Value| {
        // The stream count is R's real two plus the flood's SSRCs on its port.
        if let Some(o) = v.as_object_mut() {
            o.remove("stream_count");
        }
        v
    };
    assert_eq!(
        strip(got_call),
        strip(want_call),
        "analyze: R's call figures differ with the flood"
    );
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

/// Sum of a metric's samples whose line starts with `prefix` (name and labels).
fn metric(text: &str, prefix: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Call caps the replay runs with (one worker, so the counts are exact).
const DAEMON_CALLS: u64 = 20_000;
const DAEMON_CONFIG: &str =
    "[pipeline]\nworkers = 1\nmax_calls = 20000\nmax_streams = 20000\n[store]\nflush_interval_ms = 100\n";

/// `run --replay FILE --speed 0` with [`DAEMON_CONFIG`]: R's stored row, the daemon's
/// peak RSS (KiB) and its /metrics text once the replay has finished.
fn replay(work: &Workdir, file: &Path, tag: &str, want_refused: u64) -> (Value, u64, String) {
    let db = work.path().join(format!("{tag}.db"));
    let mut d = Daemon::spawn(
        work,
        &db,
        DAEMON_CONFIG,
        &["--replay", file.to_str().expect("utf-8"), "--speed", "0"],
    );
    let c = http::Client::new(&d.base, None);
    assert!(c.wait_up(Duration::from_secs(20)), "API up");
    d.wait_stderr("replay finished", Duration::from_secs(120));
    // Metrics mirror the workers' counters a little later.
    let mut text = String::new();
    daemon::wait_for(Duration::from_secs(10), || {
        text = c.get("/metrics").text();
        metric(&text, "vqprobe_calls_refused_total") >= want_refused
    });
    let hwm = vm_hwm(d.pid());
    let (status, _) = d.terminate(Duration::from_secs(60));
    assert!(status.success(), "daemon exit {status}: {}", d.stderr());
    let row = daemon::calls(&db)
        .into_iter()
        .find(|r| r["sip_call_id"] == R_CALL_ID)
        .expect("R stored");
    (row, hwm, text)
}

/// R's stored row without the store's own columns and without the stream list.
fn stored_figures(row: &Value) -> (Value, Vec<Value>) {
    let mut row = row.clone();
    if let Some(o) = row.as_object_mut() {
        for k in ["id", "updated_at", "stream_count"] {
            o.remove(k);
        }
    }
    r_figures(&row)
}

#[test]
fn replay_flood_stays_under_configured_caps() {
    let caps = captures();
    let work = Workdir::new();
    let (clean, clean_rss, _) = replay(&work, &caps.clean, "clean", 0);
    let dialogs = 1 + u64::from(INVITES) + 2 * u64::from(BIG_EACH);
    let started = Instant::now();
    let (flood, rss, text) = replay(&work, &caps.flood, "flood", dialogs - DAEMON_CALLS);
    let refused = metric(&text, "vqprobe_calls_refused_total");
    let streams_refused = metric(&text, "vqprobe_streams_refused_total");
    let sip_bad = metric(&text, "vqprobe_malformed_packets_total{kind=\"sip\"}");
    println!(
        "replay flood (max_calls {DAEMON_CALLS}): peak RSS {rss} KiB (clean {clean_rss} KiB), \
         {:?}; calls refused {refused}, streams refused {streams_refused}, sip malformed {sip_bad}",
        started.elapsed()
    );
    assert_eq!(
        refused,
        dialogs - DAEMON_CALLS,
        "calls over the cap counted"
    );
    assert_eq!(
        streams_refused,
        u64::from(SSRCS / 2) - 62,
        "SSRCs over the per-call cap"
    );
    assert_eq!(
        sip_bad,
        u64::from(BIG_EACH),
        "3,000-header messages refused"
    );
    // Measured: about 260 MiB with 20,000 calls held, about 155 MiB with 1,000 (where
    // that floor goes under this flood is not yet broken down); a clean replay of R
    // alone peaks at 45 MiB.
    assert!(rss < 320 * 1024, "daemon peak RSS {rss} KiB");
    let (want_call, want_streams) = stored_figures(&clean);
    let (got_call, got_streams) = stored_figures(&flood);
    real_streams_equal(&want_streams, &got_streams, "replay");
    assert_eq!(
        got_call, want_call,
        "replay: R's stored figures differ with the flood"
    );
}
