//! A real RTCP-XR sender: two `linphonec` (Debian `linphone-cli` 5.1.65) in network
//! namespaces the test creates, joined by a veth pair, calling each other with
//! `rtcp_xr_enabled=1` (file audio, no sound card, no ICE/STUN, as the user-agent
//! research found works headless). tcpdump records the call; `vqprobe analyze` reads
//! it, and every field of the latest VoIP Metrics block each side sent, and the range
//! of its Statistics Summary block, must equal tshark's decoding of the same bytes.
//!
//! What linphonec sends (asserted below): with `rtcp_xr_rcvr_rtt_mode=none`, every
//! regular compound (SR, SDES) carries a Statistics Summary block without any L/D/J/ToH
//! flag set and a VoIP Metrics block; the first ones come 3.5–7 s after the INVITE
//! (one run: caller 3.9 s, callee 5.7 s; which side goes first varies from run to run).
//!
//! Needs root, ip, tcpdump, tshark, linphonec; prints "SKIPPED" and passes without.

#[path = "support/daemon.rs"]
mod daemon;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use daemon::{analyze_json, wait_for, ChildGuard, Workdir};

const IP_A: &str = "10.79.0.1";
const IP_B: &str = "10.79.0.2";

fn sh(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Two namespaces and a veth pair, deleted on drop.
struct Net {
    a: String,
    b: String,
    veth_a: String,
}

impl Net {
    fn new() -> Net {
        let id = std::process::id();
        let n = Net {
            a: format!("lxra{id}"),
            b: format!("lxrb{id}"),
            veth_a: format!("lxa{id}"),
        };
        let vb = format!("lxb{id}");
        let ok = sh(&["ip", "netns", "add", &n.a])
            && sh(&["ip", "netns", "add", &n.b])
            && sh(&[
                "ip", "link", "add", &n.veth_a, "type", "veth", "peer", "name", &vb,
            ])
            && sh(&["ip", "link", "set", &n.veth_a, "netns", &n.a])
            && sh(&["ip", "link", "set", &vb, "netns", &n.b])
            && sh(&[
                "ip",
                "-n",
                &n.a,
                "addr",
                "add",
                &format!("{IP_A}/24"),
                "dev",
                &n.veth_a,
            ])
            && sh(&[
                "ip",
                "-n",
                &n.b,
                "addr",
                "add",
                &format!("{IP_B}/24"),
                "dev",
                &vb,
            ])
            && sh(&["ip", "-n", &n.a, "link", "set", "lo", "up"])
            && sh(&["ip", "-n", &n.b, "link", "set", "lo", "up"])
            && sh(&["ip", "-n", &n.a, "link", "set", &n.veth_a, "up"])
            && sh(&["ip", "-n", &n.b, "link", "set", &vb, "up"]);
        assert!(ok, "setting up namespaces {} / {}", n.a, n.b);
        n
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace removes its veth end and the pair with it.
        sh(&["ip", "netns", "del", &self.a]);
        sh(&["ip", "netns", "del", &self.b]);
    }
}

/// 20 s of a 440 Hz tone, 8 kHz mono 16-bit WAV (linphonec plays files at 8 kHz).
fn tone(path: &Path) {
    let n = 8000 * 20;
    let mut data = Vec::with_capacity(n * 2);
    for i in 0..n {
        let v = (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 8000.0).sin()) as i16;
        data.extend_from_slice(&v.to_le_bytes());
    }
    let mut w = Vec::new();
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&8000u32.to_le_bytes());
    w.extend_from_slice(&16000u32.to_le_bytes());
    w.extend_from_slice(&2u16.to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&(data.len() as u32).to_le_bytes());
    w.extend_from_slice(&data);
    std::fs::write(path, w).expect("tone");
}

/// linphonerc: PCMU only, RTCP-XR on (Statistics Summary and VoIP Metrics, no RTT mode).
fn linphonerc(dir: &Path, user: &str, ip: &str) {
    std::fs::create_dir_all(dir.join(".local/share/linphone")).expect("linphone dir");
    let mut rc = format!(
        "[sip]\nsip_port=5060\nsip_tcp_port=0\nsip_tls_port=0\nuse_ipv6=0\ncontact=sip:{user}@{ip}\n\
guess_hostname=0\ninc_timeout=30\nmedia_encryption=none\n[net]\nfirewall_policy=0\n\
[rtp]\nbind_address={ip}\naudio_rtp_port=10000\naudio_jitt_comp=60\nnortp_timeout=30\nrtcp_mux=0\n\
rtcp_xr_enabled=1\nrtcp_xr_rcvr_rtt_mode=none\nrtcp_xr_rcvr_rtt_max_size=10000\n\
rtcp_xr_stat_summary_enabled=1\nrtcp_xr_voip_metrics_enabled=1\n[sound]\nechocancellation=0\n\
[video]\ndisplay=0\ncapture=0\nautomatically_initiate=0\nautomatically_accept=0\n"
    );
    for (i, (mime, rate, ch, on)) in [
        ("PCMU", 8000, 1, 1),
        ("PCMA", 8000, 1, 0),
        ("opus", 48000, 2, 0),
        ("speex", 16000, 1, 0),
        ("speex", 8000, 1, 0),
        ("speex", 32000, 1, 0),
        ("GSM", 8000, 1, 0),
        ("G722", 8000, 1, 0),
        ("G729", 8000, 1, 0),
    ]
    .iter()
    .enumerate()
    {
        rc.push_str(&format!(
            "[audio_codec_{i}]\nmime={mime}\nrate={rate}\nchannels={ch}\nenabled={on}\n"
        ));
    }
    std::fs::write(dir.join("linphonerc"), rc).expect("linphonerc");
}

struct Phone {
    guard: ChildGuard,
    stdin: ChildStdin,
}

impl Phone {
    fn start(ns: &str, dir: &Path, extra: &[&str], out: &Path) -> Phone {
        let mut child: Child = Command::new("ip")
            .args(["netns", "exec", ns, "timeout", "60", "linphonec", "-c"])
            .arg(dir.join("linphonerc"))
            .args(extra)
            .env("HOME", dir)
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(out).expect("out"))
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning linphonec");
        let stdin = child.stdin.take().expect("stdin");
        Phone {
            guard: ChildGuard::new("linphonec", child),
            stdin,
        }
    }

    fn cmd(&mut self, line: &str) {
        let _ = writeln!(self.stdin, "{line}");
        let _ = self.stdin.flush();
    }
}

/// tshark's fields of every RTCP compound carrying XR, last occurrence of each field
/// (the VoIP Metrics block is the compound's last).
fn tshark_xr(pcap: &Path) -> Vec<BTreeMap<String, String>> {
    let fields = [
        "frame.time_epoch",
        "ip.src",
        "rtcp.xr.bt",
        "rtcp.ssrc.identifier",
        "rtcp.ssrc.fraction",
        "rtcp.ssrc.discarded",
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
        "rtcp.xr.beginseq",
        "rtcp.xr.endseq",
        "rtcp.xr.stats.lrflag",
        "rtcp.xr.stats.jitterflag",
    ];
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(pcap)
        .args(["-o", "rtcp.heuristic_rtcp:TRUE", "-Y", "rtcp.xr.bt == 7"])
        .args(["-T", "fields", "-E", "occurrence=l"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            fields
                .iter()
                .zip(l.split('\t'))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn first_invite_epoch(pcap: &Path) -> f64 {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args([
            "-Y",
            "sip.Method == \"INVITE\"",
            "-T",
            "fields",
            "-e",
            "frame.time_epoch",
        ])
        .output()
        .expect("tshark");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("an INVITE in the capture")
}

#[test]
fn linphonec_rtcp_xr_is_decoded_as_tshark_decodes_it() {
    if !daemon::is_root()
        || !["ip", "tcpdump", "tshark", "linphonec"]
            .iter()
            .all(|c| daemon::have_command(c))
    {
        println!("SKIPPED: needs root, ip, tcpdump, tshark and linphonec");
        return;
    }
    let work = Workdir::new();
    let net = Net::new();
    let wav = work.path().join("tone.wav");
    tone(&wav);
    let (dir_a, dir_b) = (work.path().join("a"), work.path().join("b"));
    linphonerc(&dir_a, "carol", IP_A);
    linphonerc(&dir_b, "dave", IP_B);
    let pcap = work.path().join("call.pcap");
    let dump_log = work.path().join("tcpdump.log");
    let dump = Command::new("ip")
        .args([
            "netns",
            "exec",
            &net.a,
            "tcpdump",
            "-i",
            &net.veth_a,
            "-n",
            "-U",
            "-s",
            "0",
            "-w",
        ])
        .arg(&pcap)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&dump_log).expect("log"))
        .spawn()
        .expect("tcpdump");
    let mut dump = ChildGuard::new("tcpdump", dump);
    assert!(wait_for(Duration::from_secs(5), || {
        std::fs::read_to_string(&dump_log)
            .unwrap_or_default()
            .contains("listening on")
    }));

    let mut b = Phone::start(&net.b, &dir_b, &["-a"], &work.path().join("b.out"));
    let mut a = Phone::start(&net.a, &dir_a, &[], &work.path().join("a.out"));
    std::thread::sleep(Duration::from_secs(2));
    for p in [&mut a, &mut b] {
        p.cmd("soundcard use files");
        p.cmd(&format!("play {}", wav.display()));
    }
    std::thread::sleep(Duration::from_millis(500));
    a.cmd(&format!("call sip:dave@{IP_B}"));
    // Long enough for both sides' first XR (≈ 4 s and ≈ 8 s) and the caller's second.
    std::thread::sleep(Duration::from_secs(11));
    a.cmd("terminate");
    std::thread::sleep(Duration::from_secs(1));
    a.cmd("quit");
    b.cmd("quit");
    let _ = a.guard.wait(Duration::from_secs(5));
    let _ = b.guard.wait(Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(300));
    daemon::send_signal(dump.pid(), "INT");
    let _ = dump.wait(Duration::from_secs(5));
    drop(net);

    let xr = tshark_xr(&pcap);
    let invite = first_invite_epoch(&pcap);
    let first_from = |ip: &str| {
        xr.iter()
            .find(|r| r["ip.src"] == ip)
            .map(|r| r["frame.time_epoch"].parse::<f64>().unwrap_or(0.0) - invite)
    };
    let (fa, fb) = (first_from(IP_A), first_from(IP_B));
    println!(
        "linphonec XR: {} compounds with VoIP Metrics; first from the caller {fa:?} s and from the callee {fb:?} s after the INVITE",
        xr.len()
    );
    for first in [fa, fb] {
        assert!(
            first.is_some_and(|t| (2.0..10.0).contains(&t)),
            "both sides send VoIP Metrics within the call's first seconds: {fa:?} {fb:?}"
        );
    }
    for r in &xr {
        assert!(
            !r["rtcp.xr.beginseq"].is_empty(),
            "a Statistics Summary beside the VoIP Metrics: {r:?}"
        );
        assert_eq!(
            r["rtcp.xr.stats.lrflag"], "0",
            "no loss figure reported: {r:?}"
        );
        assert_eq!(
            r["rtcp.xr.stats.jitterflag"], "0",
            "no jitter figure reported: {r:?}"
        );
    }

    let doc = analyze_json(&pcap, &["--local-net", &format!("{IP_B}/32")]);
    let calls = doc["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 1, "{doc}");
    let streams = calls[0]["streams"].as_array().expect("streams");
    let n = |s: &str| s.parse::<f64>().expect("tshark number");
    for ip in [IP_A, IP_B] {
        let sent: Vec<&BTreeMap<String, String>> =
            xr.iter().filter(|r| r["ip.src"] == ip).collect();
        let last = sent.last().expect("XR from this side");
        let ssrc = last["rtcp.ssrc.identifier"].to_lowercase();
        let s = streams
            .iter()
            .find(|s| s["ssrc"] == ssrc.as_str())
            .unwrap_or_else(|| panic!("stream {ssrc} in {streams:?}"));
        let x = &s["xr"];
        println!("vqprobe xr of {ssrc} (reported by {ip}): {x}");
        assert_eq!(x["source"], "rtcp_xr");
        assert_eq!(x["reports"].as_u64(), Some(sent.len() as u64));
        let m = &x["latest"];
        let round = |v: f64| (v * 1e6).round() / 1e6;
        for (field, key, scale) in [
            ("rtcp.ssrc.fraction", "loss_rate", 256.0),
            ("rtcp.ssrc.discarded", "discard_rate", 256.0),
            ("rtcp.xr.voipmetrics.burstdensity", "burst_density", 256.0),
            ("rtcp.xr.voipmetrics.gapdensity", "gap_density", 256.0),
            (
                "rtcp.xr.voipmetrics.burstduration",
                "burst_duration_ms",
                1.0,
            ),
            ("rtcp.xr.voipmetrics.gapduration", "gap_duration_ms", 1.0),
            ("rtcp.xr.voipmetrics.rtdelay", "round_trip_delay_ms", 1.0),
            ("rtcp.xr.voipmetrics.esdelay", "end_system_delay_ms", 1.0),
            ("rtcp.xr.voipmetrics.signallevel", "signal_level_dbm", 1.0),
            ("rtcp.xr.voipmetrics.noiselevel", "noise_level_dbm", 1.0),
            ("rtcp.xr.voipmetrics.gmin", "gmin", 1.0),
            ("rtcp.xr.voipmetrics.rfactor", "r_factor", 1.0),
            ("rtcp.xr.voipmetrics.moslq", "mos_lq", 1.0),
            ("rtcp.xr.voipmetrics.moscq", "mos_cq", 1.0),
            ("rtcp.xr.voipmetrics.jbrate", "jb_rate", 1.0),
            ("rtcp.xr.voipmetrics.jbnominal", "jb_nominal_ms", 1.0),
            ("rtcp.xr.voipmetrics.jbmax", "jb_max_ms", 1.0),
            ("rtcp.xr.voipmetrics.jbabsmax", "jb_abs_max_ms", 1.0),
        ] {
            let want = round(n(&last[field]) / scale);
            let got = m[key].as_f64().map(round);
            assert_eq!(
                got,
                Some(want),
                "{key} of {ssrc}: vqprobe {m} vs tshark {last:?}"
            );
        }
        let sum = &x["summary"];
        assert_eq!(
            sum["begin_seq"].as_f64(),
            Some(n(&last["rtcp.xr.beginseq"]))
        );
        assert_eq!(sum["end_seq"].as_f64(), Some(n(&last["rtcp.xr.endseq"])));
        for k in [
            "lost_packets",
            "dup_packets",
            "mean_jitter_ms",
            "ttl_kind",
            "min_ttl",
        ] {
            assert!(sum[k].is_null(), "{k} is not reported by linphonec: {sum}");
        }
    }
}
