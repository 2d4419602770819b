//! The live daemon against a real, impaired call on a veth pair.
//!
//! Topology (root, `ip netns`): veth `vqa<pid>` in the root namespace (10.231.N.1/24,
//! N = 1 + pid % 250 so parallel runs never share a subnet) ↔ `vqb<pid>` in namespace
//! `vqns<pid>` (10.231.N.2/24). `vqprobe run` captures on `vqa<pid>` with
//! `--local-net 10.231.N.1/32`, so media to peer A is inbound.
//!
//! Peer A (this process) streams PCMU to the relay; the relay (this very test binary,
//! re-executed inside the namespace with `ip netns exec`, see [`relay_child`]) passes
//! A→B through untouched and impairs B→A with a seeded pattern: 2 % loss including a
//! burst of 3, and a 0–40 ms delay per packet. Those delays are larger than the 20 ms
//! packet spacing now and then, so some packets arrive out of order (the probe's
//! `out_of_order` counts them; RFC 3550 jitter runs over arrival order, so the
//! reordering is part of the expected jitter, not an error). RTCP: A's SRs are delayed
//! 25–45 ms towards B, B holds each 10–40 ms (and says so in DLSR), and B's RRs are
//! delayed 30–60 ms back, so the probe's A-leg round trip is tens of ms.
//!
//! The relay records what it really did (`truth.json`); the test computes loss, RFC
//! 3550 jitter and the round trip from that record by hand and checks the call the
//! daemon stored in SQLite after SIGTERM. Jitter and round trip must be within 5 % of
//! the truth, widened by `u`, how well the truth's send times are known (half the
//! duration of each `send_to`: microseconds, unless a busy machine preempted the relay
//! inside the call; printed with the table).
//!
//! Skips (passes with a message) when not root or `ip netns` is unavailable.
//! Tunables: `VQ_IMPAIR_SEED` (default 0x5EED_CA11), `VQ_IMPAIR_PACKETS` (default 1000
//! = 20 s of audio, at least 750 so that MOS is computed).

#[path = "support/impair.rs"]
mod impair;

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use impair::{dlsr_ns, ALog, Net, RelayConfig, Truth, SSRC_A, SSRC_B};
use serde_json::Value;

const CHILD_ENV: &str = "VQ_IMPAIR_CHILD";
const DEFAULT_SEED: u64 = 0x5EED_CA11;
const DEFAULT_PACKETS: usize = 1000;
/// Tolerance of jitter and round trip against the hand-computed truth.
const REL_TOL: f64 = 0.05;

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

fn seed() -> u64 {
    env_u64("VQ_IMPAIR_SEED").unwrap_or(DEFAULT_SEED)
}

fn packets() -> usize {
    env_u64("VQ_IMPAIR_PACKETS").map_or(DEFAULT_PACKETS, |n| (n as usize).clamp(750, 1500))
}

/// The relay + peer B, when this binary is re-executed inside the namespace. A normal
/// test run ignores it; run by hand it does nothing without the environment.
#[test]
#[ignore = "helper: the test re-executes itself inside the namespace to run the relay"]
fn relay_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let get = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} not set"));
    let cfg = RelayConfig {
        seed: get("VQ_IMPAIR_SEED").parse().expect("seed"),
        packets: get("VQ_IMPAIR_PACKETS").parse().expect("packets"),
        net: Net {
            a: get("VQ_IMPAIR_A").parse().expect("A address"),
            relay: get("VQ_IMPAIR_RELAY").parse().expect("relay address"),
        },
        dir: PathBuf::from(get("VQ_IMPAIR_DIR")),
        deadline: Duration::from_secs(45),
    };
    if let Err(e) = impair::run_relay(&cfg) {
        panic!("relay: {e}");
    }
}

// ---------------------------------------------------------------------------------
// Environment: root, namespace, veth, processes
// ---------------------------------------------------------------------------------

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The namespace and veth pair; removed on drop, even after a failure.
struct Topology {
    ns: String,
    a_if: String,
    b_if: String,
    net: Net,
}

impl Topology {
    /// `Ok(None)` when namespaces are not available here (skip).
    fn create() -> Result<Option<Topology>, String> {
        let pid = std::process::id();
        let third = (1 + pid % 250) as u8;
        let topo = Topology {
            ns: format!("vqns{pid}"),
            a_if: format!("vqa{pid}"),
            b_if: format!("vqb{pid}"),
            net: Net {
                a: Ipv4Addr::new(10, 231, third, 1),
                relay: Ipv4Addr::new(10, 231, third, 2),
            },
        };
        if ip(&["netns", "list"]).is_err() || ip(&["netns", "add", &topo.ns]).is_err() {
            return Ok(None);
        }
        // From here on `topo` cleans up whatever was made.
        let (ns, a, b) = (topo.ns.as_str(), topo.a_if.as_str(), topo.b_if.as_str());
        let a_cidr = format!("{}/24", topo.net.a);
        let b_cidr = format!("{}/24", topo.net.relay);
        ip(&["link", "add", a, "type", "veth", "peer", "name", b])?;
        ip(&["link", "set", b, "netns", ns])?;
        ip(&["addr", "add", &a_cidr, "dev", a])?;
        ip(&["link", "set", a, "up"])?;
        ip(&["-n", ns, "addr", "add", &b_cidr, "dev", b])?;
        ip(&["-n", ns, "link", "set", b, "up"])?;
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        Ok(Some(topo))
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        // Deleting the namespace destroys vqb, and with it its peer vqa.
        let _ = ip(&["netns", "del", &self.ns]);
        let _ = ip(&["link", "del", &self.a_if]);
    }
}

/// A child process killed on drop unless it was waited for.
struct Proc {
    child: Option<Child>,
    name: &'static str,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Waits up to `limit`; kills on timeout.
    fn wait(&mut self, limit: Duration) -> Result<ExitStatus, String> {
        let Some(child) = self.child.as_mut() else {
            return Err(format!("{} already reaped", self.name));
        };
        let until = Instant::now() + limit;
        loop {
            match child.try_wait() {
                Ok(Some(st)) => {
                    self.child = None;
                    return Ok(st);
                }
                Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(20)),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    self.child = None;
                    return Err(format!("{} did not exit within {limit:?}", self.name));
                }
                Err(e) => return Err(format!("waiting for {}: {e}", self.name)),
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn wait_for_file(path: &Path, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

// ---------------------------------------------------------------------------------
// Truth, computed by hand from what the relay and peer A recorded
// ---------------------------------------------------------------------------------

/// RFC 3550 §6.4.1 / A.8 interarrival jitter of B's stream as the probe sees it: the
/// packets in the order the relay sent them (= the order they cross vqa), arrival =
/// the relay's send time, in ms.
///
///   D(i-1, i) = (R_i − R_{i−1}) − (S_i − S_{i−1})
///   J_i = J_{i−1} + (|D(i−1, i)| − J_{i−1}) / 16
///
/// Also returns how far the result can move because each R_i is only known to
/// ± u_i (half its `send_to` call, usually a few µs; more when the relay was preempted
/// inside the call): unrolled, J_N = Σ (1/16)(15/16)^(N−i) |D_i| and |D_i| moves by at
/// most u_i + u_{i−1}.
fn rfc3550_jitter_ms(t: &Truth) -> (f64, f64) {
    let mut jitter = 0.0f64;
    let mut bound = 0.0f64;
    let mut prev: Option<(f64, f64)> = None; // (transit, u)
    let (r0, s0) = match t.forwarded.first() {
        Some(f) => (f.sent_ns, f.ts),
        None => return (0.0, 0.0),
    };
    for f in &t.forwarded {
        let r_ms = (f.sent_ns - r0) as f64 / 1e6;
        // RTP timestamp relative to the first, wrap-safe (B's timestamp wraps).
        let s_ms = f64::from(f.ts.wrapping_sub(s0) as i32) / 8.0;
        let transit = r_ms - s_ms;
        let u = f.send_call_ns as f64 / 2e6;
        if let Some((p, pu)) = prev {
            let d = (transit - p).abs();
            jitter += (d - jitter) / 16.0;
            bound += (u + pu - bound) / 16.0;
        }
        prev = Some((transit, u));
    }
    (jitter, bound)
}

/// First copies that arrive after a higher sequence number (the probe's definition).
fn out_of_order(t: &Truth) -> u64 {
    let mut max: Option<usize> = None;
    let mut n = 0;
    for f in &t.forwarded {
        match max {
            Some(m) if f.index < m => n += 1,
            _ => max = Some(f.index),
        }
    }
    n
}

/// Histogram of loss-run lengths (1..=10+) over B's sequence space.
fn loss_runs(t: &Truth) -> [u64; 10] {
    let mut h = [0u64; 10];
    let mut run = 0usize;
    for k in 0..t.packets {
        if t.dropped_index.contains(&k) {
            run += 1;
        } else if run > 0 {
            h[run.min(10) - 1] += 1;
            run = 0;
        }
    }
    if run > 0 {
        h[run.min(10) - 1] += 1;
    }
    h
}

/// One RTT sample of A's leg.
struct RttSample {
    lsr: u32,
    sr_fwd_ms: f64,
    b_hold_ms: f64,
    rr_ret_ms: f64,
    /// RR leaves the relay − SR leaves A − DLSR: what the probe on vqa should measure.
    rtt_ms: f64,
    /// Half the two `send_to` calls' durations: how well `rtt_ms` is known.
    uncertainty_ms: f64,
}

fn far_leg_samples(t: &Truth, a: &ALog) -> Vec<RttSample> {
    let mut out = Vec::new();
    for rr in t.rtcp.iter().filter(|h| h.kind == "rr_b" && h.sent_ns > 0) {
        let Some(block) = rr.block else { continue };
        let Some(&(_, sr_sent, sr_call)) = a.sr_sent.iter().find(|(m, _, _)| *m == block.lsr)
        else {
            continue;
        };
        let Some(sr_hop) = t
            .rtcp
            .iter()
            .find(|h| h.kind == "sr_a" && h.key == block.lsr && h.sent_ns > 0)
        else {
            continue;
        };
        let dlsr = dlsr_ns(block.dlsr);
        out.push(RttSample {
            lsr: block.lsr,
            sr_fwd_ms: (sr_hop.sent_ns - sr_hop.recv_ns) as f64 / 1e6,
            b_hold_ms: dlsr / 1e6,
            rr_ret_ms: (rr.sent_ns - rr.recv_ns) as f64 / 1e6,
            rtt_ms: ((rr.sent_ns - sr_sent) as f64 - dlsr) / 1e6,
            uncertainty_ms: (sr_call + rr.send_call_ns) as f64 / 2e6,
        });
    }
    out
}

/// B's SR leaves the relay (probe sees it arrive) → A's RR leaves A, minus A's DLSR;
/// with the uncertainty of the two send times.
fn near_leg_samples(t: &Truth, a: &ALog) -> Vec<(f64, f64)> {
    a.answers
        .iter()
        .filter_map(|ans| {
            let hop = t
                .rtcp
                .iter()
                .find(|h| h.kind == "sr_b" && h.key == ans.b_sr_mid && h.sent_ns > 0)?;
            Some((
                ((ans.rr_sent_ns - hop.sent_ns) as f64 - dlsr_ns(ans.block.dlsr)) / 1e6,
                (ans.rr_send_call_ns + hop.send_call_ns) as f64 / 2e6,
            ))
        })
        .collect()
}

/// call_id, quality_mos, rtt_ms, status, ended_reason, direction
type CallRow = (
    String,
    Option<f64>,
    Option<f64>,
    String,
    Option<String>,
    String,
);

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Within `rel` of the truth, widened by how well the truth itself is known.
fn within(stored: f64, truth: f64, rel: f64, uncertainty: f64) -> bool {
    (stored - truth).abs() <= rel * truth.abs() + uncertainty
}

// ---------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------

#[test]
fn daemon_measures_loss_jitter_and_rtt_of_an_impaired_call() {
    let started = Instant::now();
    if !is_root() {
        eprintln!("SKIPPED: needs root and ip netns (not running as root)");
        return;
    }
    let topo = match Topology::create() {
        Ok(Some(t)) => t,
        Ok(None) => {
            eprintln!("SKIPPED: needs root and ip netns (`ip netns add` failed)");
            return;
        }
        Err(e) => panic!("setting up the veth pair: {e}"),
    };
    let net = topo.net;
    let seed = seed();
    let n = packets();
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("vq.db");
    eprintln!(
        "impairment test: seed {seed:#x}, {n} packets per direction, {} ↔ {} on {}/{}",
        net.a, net.relay, topo.a_if, topo.ns
    );

    // The daemon, capturing on vqa.
    let mut daemon = Proc {
        child: Some(
            Command::new(env!("CARGO_BIN_EXE_vqprobe"))
                .args(["run", "--interface", &topo.a_if, "--db"])
                .arg(&db)
                .args(["--local-net", &format!("{}/32", net.a)])
                .args(["--listen", "127.0.0.1:0"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawning vqprobe run"),
        ),
        name: "vqprobe run",
    };
    let daemon_log = Arc::new(Mutex::new(Vec::<String>::new()));
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let stderr = daemon
        .child
        .as_mut()
        .and_then(|c| c.stderr.take())
        .expect("daemon stderr");
    let log2 = daemon_log.clone();
    let log_thread = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("capturing on") {
                let _ = ready_tx.send(());
            }
            log2.lock().expect("log").push(line);
        }
    });
    let show_log = || daemon_log.lock().expect("log").join("\n");
    // `Daemon::start` opens the capture before the daemon prints "capturing on"; if a
    // later edit rewords that line, a daemon still running after 5 s has started too.
    if ready_rx.recv_timeout(Duration::from_secs(5)).is_err() {
        let exited = daemon.child.as_mut().map(|c| c.try_wait());
        if !matches!(exited, Some(Ok(None))) {
            panic!("daemon did not start ({exited:?}):\n{}", show_log());
        }
        eprintln!("no \"capturing on\" line from the daemon after 5 s; going on");
    }

    // Relay + peer B inside the namespace: this binary, re-executed.
    let relay_log = dir.path().join("relay.log");
    let mut relay = Proc {
        child: Some(
            Command::new("ip")
                .args(["netns", "exec", &topo.ns])
                .arg(std::env::current_exe().expect("test binary"))
                .args([
                    "relay_child",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_ENV, "1")
                .env("VQ_IMPAIR_SEED", seed.to_string())
                .env("VQ_IMPAIR_PACKETS", n.to_string())
                .env("VQ_IMPAIR_A", net.a.to_string())
                .env("VQ_IMPAIR_RELAY", net.relay.to_string())
                .env("VQ_IMPAIR_DIR", dir.path())
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&relay_log).expect("relay log"))
                .stderr(std::fs::File::create(dir.path().join("relay.err")).expect("log"))
                .spawn()
                .expect("spawning the relay"),
        ),
        name: "relay",
    };
    let relay_text = |dir: &Path| {
        format!(
            "{}\n{}",
            std::fs::read_to_string(dir.join("relay.log")).unwrap_or_default(),
            std::fs::read_to_string(dir.join("relay.err")).unwrap_or_default()
        )
    };
    if !wait_for_file(&dir.path().join("ready"), Duration::from_secs(10)) {
        panic!("relay did not start:\n{}", relay_text(dir.path()));
    }

    // Peer A, here; returns after its stream plus a tail.
    let alog = impair::run_peer_a(net, n).expect("peer A");
    let st = relay.wait(Duration::from_secs(15));
    assert!(
        matches!(st, Ok(s) if s.success()),
        "relay failed ({st:?}):\n{}",
        relay_text(dir.path())
    );
    let truth: Truth =
        serde_json::from_slice(&std::fs::read(dir.path().join("truth.json")).expect("truth.json"))
            .expect("truth.json parses");

    // Let the last frames reach the store's path, then stop the daemon.
    std::thread::sleep(Duration::from_millis(300));
    let kill = Command::new("kill")
        .args(["-TERM", &daemon.pid().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success(), "kill -TERM failed");
    let st = daemon.wait(Duration::from_secs(15));
    let _ = log_thread.join();
    assert!(
        matches!(st, Ok(s) if s.success()),
        "daemon did not exit 0 after SIGTERM ({st:?}):\n{}",
        show_log()
    );

    // ---- the stored call ----
    let conn = rusqlite::Connection::open(&db).expect("open store");
    let mut rows: Vec<CallRow> = Vec::new();
    {
        let mut q = conn
            .prepare(
                "SELECT call_id, quality_mos, rtt_ms, status, ended_reason, direction FROM calls",
            )
            .expect("query calls");
        let it = q
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .expect("calls rows");
        for r in it {
            rows.push(r.expect("row"));
        }
    }
    assert_eq!(
        rows.len(),
        1,
        "expected one call, got {rows:?}\ndaemon log:\n{}",
        show_log()
    );
    let (call_id, quality_mos, call_rtt, status, ended_reason, direction) = rows.remove(0);
    let streams_json: String = conn
        .query_row(
            "SELECT streams_json FROM call_streams WHERE call_id = ?1",
            [&call_id],
            |r| r.get(0),
        )
        .expect("streams of the call");
    let streams: Vec<Value> = serde_json::from_str(&streams_json).expect("streams JSON");
    let find = |ssrc: u32| {
        let hex = format!("{ssrc:#010x}");
        streams
            .iter()
            .find(|s| s["ssrc"] == hex.as_str())
            .unwrap_or_else(|| panic!("no stream {hex} in {streams_json}"))
            .clone()
    };
    let inbound = find(SSRC_B);
    let outbound = find(SSRC_A);

    // ---- truth by hand ----
    let dropped = truth.dropped_seqs.len() as u64;
    let (jitter_truth, jitter_unc) = rfc3550_jitter_ms(&truth);
    let far = far_leg_samples(&truth, &alog);
    let far_truth = mean(&far.iter().map(|s| s.rtt_ms).collect::<Vec<_>>());
    let far_unc = mean(&far.iter().map(|s| s.uncertainty_ms).collect::<Vec<_>>());
    let delays_sum = mean(
        &far.iter()
            .map(|s| s.sr_fwd_ms + s.rr_ret_ms)
            .collect::<Vec<_>>(),
    );
    let near = near_leg_samples(&truth, &alog);
    let near_truth = mean(&near.iter().map(|s| s.0).collect::<Vec<_>>());
    let near_unc = mean(&near.iter().map(|s| s.1).collect::<Vec<_>>());
    let last_b_rr = truth
        .rtcp
        .iter()
        .filter(|h| h.kind == "rr_b" && h.sent_ns > 0)
        .max_by_key(|h| h.sent_ns)
        .and_then(|h| h.block)
        .expect("B sent RRs");
    let last_a_rr = alog.answers.last().map(|a| a.block).expect("A sent RRs");
    let ooo_truth = out_of_order(&truth);
    let runs_truth = loss_runs(&truth);

    // ---- table ----
    let f = |v: &Value| v.as_f64();
    let u = |v: &Value| v.as_u64();
    let show = |v: Option<f64>| v.map_or("null".to_string(), |x| format!("{x:.3}"));
    let shown = |v: Option<u64>| v.map_or("null".to_string(), |x| x.to_string());
    let showi = |v: Option<i64>| v.map_or("null".to_string(), |x| x.to_string());
    let mut table: Vec<(String, String, String, String, bool)> = Vec::new();
    let mut row = |name: &str, truth: String, stored: String, tol: &str, ok: bool| {
        table.push((name.into(), truth, stored, tol.into(), ok));
    };
    let in_where = format!(
        "{} {}→{}",
        inbound["direction"].as_str().unwrap_or("null"),
        inbound["src"].as_str().unwrap_or("null"),
        inbound["dst"].as_str().unwrap_or("null")
    );
    let in_where_truth = format!("inbound {}→{}", net.relay_rtp(), net.a_rtp());
    row(
        "B→A direction src→dst",
        in_where_truth.clone(),
        in_where.clone(),
        "exact",
        in_where == in_where_truth,
    );
    let out_where = format!(
        "{} {}→{}",
        outbound["direction"].as_str().unwrap_or("null"),
        outbound["src"].as_str().unwrap_or("null"),
        outbound["dst"].as_str().unwrap_or("null")
    );
    let out_where_truth = format!("outbound {}→{}", net.a_rtp(), net.relay_rtp());
    row(
        "A→B direction src→dst",
        out_where_truth.clone(),
        out_where.clone(),
        "exact",
        out_where == out_where_truth,
    );
    let in_pk = u(&inbound["packets"]);
    row(
        "B→A packets (forwarded)",
        truth.forwarded.len().to_string(),
        shown(in_pk),
        "exact",
        in_pk == Some(truth.forwarded.len() as u64),
    );
    let in_exp = u(&inbound["expected"]);
    row(
        "B→A expected (sent)",
        truth.b_sent.to_string(),
        shown(in_exp),
        "exact",
        in_exp == Some(truth.b_sent),
    );
    let in_lost = u(&inbound["lost"]);
    row(
        "B→A lost (dropped)",
        dropped.to_string(),
        shown(in_lost),
        "exact",
        in_lost == Some(dropped),
    );
    let in_ooo = u(&inbound["out_of_order"]);
    row(
        "B→A out_of_order",
        ooo_truth.to_string(),
        shown(in_ooo),
        "exact",
        in_ooo == Some(ooo_truth),
    );
    let in_dup = u(&inbound["duplicates"]);
    row(
        "B→A duplicates",
        "0".into(),
        shown(in_dup),
        "exact",
        in_dup == Some(0),
    );
    let in_runs: Option<Vec<u64>> = inbound["loss_runs"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect());
    row(
        "B→A loss_runs (1..10+)",
        format!("{runs_truth:?}"),
        in_runs.as_ref().map_or("null".into(), |r| format!("{r:?}")),
        "exact",
        in_runs.as_deref() == Some(&runs_truth[..]),
    );
    let in_jit = f(&inbound["jitter_ms"]);
    row(
        "B→A jitter_ms (RFC 3550)",
        format!("{jitter_truth:.3}"),
        show(in_jit),
        "5 %+u",
        in_jit.is_some_and(|j| within(j, jitter_truth, REL_TOL, jitter_unc)),
    );
    let in_rem_cum = inbound["remote"]["cumulative_lost"].as_i64();
    row(
        "B→A remote.cumulative_lost (A's last RR)",
        last_a_rr.cumulative.to_string(),
        showi(in_rem_cum),
        "exact",
        in_rem_cum == Some(i64::from(last_a_rr.cumulative)),
    );
    let in_rtt = f(&inbound["rtt_ms"]);
    row(
        "B→A rtt_ms (probe↔A leg)",
        format!("{near_truth:.3}"),
        show(in_rtt),
        "1ms+u",
        in_rtt.is_some_and(|r| (r - near_truth).abs() <= 1.0 + near_unc),
    );
    let out_pk = u(&outbound["packets"]);
    row(
        "A→B packets",
        alog.rtp_sent.to_string(),
        shown(out_pk),
        "exact",
        out_pk == Some(alog.rtp_sent),
    );
    let out_lost = u(&outbound["lost"]);
    row(
        "A→B lost",
        "0".into(),
        shown(out_lost),
        "exact",
        out_lost == Some(0),
    );
    let out_rtt = f(&outbound["rtt_ms"]);
    row(
        "A→B rtt_ms (probe↔B leg)",
        format!("{far_truth:.3}"),
        show(out_rtt),
        "5 %+u",
        out_rtt.is_some_and(|r| within(r, far_truth, REL_TOL, far_unc)),
    );
    row(
        "  (mean SR fwd + RR return delay)",
        format!("{delays_sum:.3}"),
        show(out_rtt),
        "info",
        true,
    );
    let out_frac = f(&outbound["remote"]["fraction_lost"]);
    let frac_truth = f64::from(last_b_rr.fraction) / 256.0;
    row(
        "A→B remote.fraction_lost (B's last RR)",
        format!("{frac_truth:.6}"),
        out_frac.map_or("null".into(), |x| format!("{x:.6}")),
        "1e-6",
        out_frac.is_some_and(|x| (x - frac_truth).abs() < 1e-6),
    );
    let out_cum = outbound["remote"]["cumulative_lost"].as_i64();
    row(
        "A→B remote.cumulative_lost (B's last RR)",
        last_b_rr.cumulative.to_string(),
        showi(out_cum),
        "exact",
        out_cum == Some(i64::from(last_b_rr.cumulative)),
    );
    let out_rjit = f(&outbound["remote"]["jitter_ms"]);
    let rjit_truth = f64::from(last_b_rr.jitter) / 8.0;
    row(
        "A→B remote.jitter_ms (B's last RR)",
        format!("{rjit_truth:.3}"),
        show(out_rjit),
        "1e-3",
        out_rjit.is_some_and(|x| (x - rjit_truth).abs() < 1e-3),
    );
    let call_rtt_truth = far_truth + near_truth;
    row(
        "call quality.rtt_ms (sum of legs)",
        format!("{call_rtt_truth:.3}"),
        show(call_rtt),
        "5 %+u",
        call_rtt.is_some_and(|r| within(r, call_rtt_truth, REL_TOL, far_unc + near_unc)),
    );
    row(
        "call quality_mos",
        "< 4.3".into(),
        show(quality_mos),
        "< 4.3",
        quality_mos.is_some_and(|m| (1.0..4.3).contains(&m)),
    );
    let (in_mos, out_mos) = (f(&inbound["mos"]), f(&outbound["mos"]));
    row(
        "B→A / A→B stream mos",
        "numbers".into(),
        format!("{} / {}", show(in_mos), show(out_mos)),
        "1..4.5",
        [in_mos, out_mos]
            .iter()
            .all(|m| m.is_some_and(|m| (1.0..=4.5).contains(&m))),
    );
    let one_way: Option<bool> = conn
        .query_row(
            "SELECT one_way_audio FROM calls WHERE call_id = ?1",
            [&call_id],
            |r| r.get(0),
        )
        .ok();
    row(
        "call one_way_audio",
        "false".into(),
        format!("{one_way:?}"),
        "exact",
        one_way == Some(false),
    );
    row(
        "call ended_reason",
        "shutdown".into(),
        ended_reason.clone().unwrap_or_else(|| "null".into()),
        "exact",
        ended_reason.as_deref() == Some("shutdown"),
    );
    row(
        "call_id",
        "rtp-…".into(),
        call_id.clone(),
        "prefix",
        call_id.starts_with("rtp-") && streams.len() == 2,
    );

    println!("\nseed {seed:#x}; {n} packets each way; call {call_id} ({status}, {direction})");
    println!(
        "dropped B seqs: {:?}; far-leg RTT samples: {}; near-leg samples: {}; \
         relay send_to max {:.1} µs",
        truth.dropped_seqs,
        far.len(),
        near.len(),
        truth.max_send_call_ns as f64 / 1e3
    );
    println!(
        "truth uncertainty u from send_to timing: jitter ±{:.4} ms, A-leg RTT ±{:.4} ms, \
         near-leg RTT ±{:.4} ms",
        jitter_unc, far_unc, near_unc
    );
    for s in &far {
        println!(
            "  SR {:08x}: fwd {:.3} ms + B hold {:.3} ms + return {:.3} ms → rtt {:.3} ms",
            s.lsr, s.sr_fwd_ms, s.b_hold_ms, s.rr_ret_ms, s.rtt_ms
        );
    }
    let w = |k: usize| {
        table
            .iter()
            .map(|r| [&r.0, &r.1, &r.2, &r.3][k].chars().count())
            .chain([["metric", "truth", "stored", "tol"][k].len()])
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2, w3) = (w(0), w(1), w(2), w(3));
    println!(
        "\n| {:<w0$} | {:>w1$} | {:>w2$} | {:>w3$} | ok |",
        "metric", "truth", "stored", "tol"
    );
    println!(
        "|{}|{}|{}|{}|----|",
        "-".repeat(w0 + 2),
        "-".repeat(w1 + 2),
        "-".repeat(w2 + 2),
        "-".repeat(w3 + 2)
    );
    for (name, t, s, tol, ok) in &table {
        // `{:<w$}` pads by chars, so the arrows line up.
        println!(
            "| {name:<w0$} | {t:>w1$} | {s:>w2$} | {tol:>w3$} | {} |",
            if *ok { "✓ " } else { "✗ " }
        );
    }
    println!("\nwall time {:.1} s", started.elapsed().as_secs_f64());

    // ---- sanity of the run itself, then the verdict ----
    assert!(truth.errors.is_empty(), "relay errors: {:?}", truth.errors);
    assert!(alog.errors.is_empty(), "peer A errors: {:?}", alog.errors);
    assert_eq!(truth.b_sent, n as u64, "B sent every packet");
    assert_eq!(alog.rtp_sent, n as u64, "A sent every packet");
    let mut seen = truth.dropped_seen.clone();
    seen.sort_unstable();
    let mut planned = truth.dropped_seqs.clone();
    planned.sort_unstable();
    assert_eq!(seen, planned, "the relay dropped what it planned");
    assert_eq!(
        truth.forwarded.len() + truth.dropped_seqs.len(),
        n,
        "every B packet was either forwarded or dropped"
    );
    assert_eq!(
        alog.rtp_received as usize,
        truth.forwarded.len(),
        "A received every forwarded packet"
    );
    assert!(
        far.len() >= 5,
        "at least 5 RR answers to A's SRs: {}",
        far.len()
    );
    assert!(!near.is_empty(), "A answered B's SRs");
    assert!(
        far_truth > 40.0,
        "the far-leg RTT is tens of ms, so 5 % is meaningful ({far_truth})"
    );
    let failed: Vec<&str> = table
        .iter()
        .filter(|r| !r.4)
        .map(|r| r.0.as_str())
        .collect();
    assert!(
        failed.is_empty(),
        "stored figures differ from the truth: {failed:?}\nstreams: {streams_json}\n\
         daemon log:\n{}",
        show_log()
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the test must stay under 60 s"
    );
    drop(topo);
}
