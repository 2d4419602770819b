//! Two capture threads on one interface (PACKET_FANOUT by flow hash): tcpreplay plays a
//! generated capture of 300 SIP calls (RTP both ways, RTCP) into a veth whose other end
//! sits in a namespace this test creates, where the daemon captures with
//! `--capture-threads 2`. Zero drops, both threads busy, and the same records as
//! `vqprobe analyze` of the file: every call, its status, and every stream with its
//! packets and loss (timing figures differ: the replay has its own clock).
//!
//! Needs root and tcpreplay; skipped with a message otherwise.

#[path = "support/capgen.rs"]
mod capgen;
#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/loadgen.rs"]
mod loadgen;
#[path = "support/netns.rs"]
mod netns;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use daemon::{have_command, is_root, wait_for, Workdir, VQPROBE};
use netns::Netns;
use serde_json::Value;

const CALLS: u32 = 300;

/// A call as a comparable value: status, ended reason, and its streams' (src, dst,
/// ssrc, codec, packets, lost), sorted.
type CallKey = (
    String,
    String,
    Vec<(String, String, String, String, u64, u64)>,
);

fn key(call: &Value) -> (String, CallKey) {
    let mut streams: Vec<_> = daemon::streams(call)
        .iter()
        .map(|s| {
            (
                s["src"].as_str().unwrap_or("").to_string(),
                s["dst"].as_str().unwrap_or("").to_string(),
                s["ssrc"].as_str().unwrap_or("").to_string(),
                s["codec"].as_str().unwrap_or("").to_string(),
                s["packets"].as_u64().unwrap_or(0),
                s["lost"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    streams.sort();
    (
        call["sip_call_id"].as_str().unwrap_or("").to_string(),
        (
            call["status"].as_str().unwrap_or("").to_string(),
            call["ended_reason"].as_str().unwrap_or("").to_string(),
            streams,
        ),
    )
}

#[test]
fn two_capture_threads_see_every_packet_once_with_the_same_records() {
    if !is_root() || !have_command("tcpreplay") {
        eprintln!("SKIPPED: needs root and tcpreplay");
        return;
    }
    let work = Workdir::new();
    let pcap = work.path().join("load.pcap");
    loadgen::run(&loadgen::Options {
        out: pcap.clone(),
        calls: CALLS,
        packets: 240_000,
        seed: 11,
    })
    .expect("generating the capture");
    let offline = daemon::analyze_json(&pcap, &[]);
    let want: BTreeMap<String, CallKey> = offline["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .map(key)
        .collect();
    assert_eq!(want.len(), CALLS as usize);

    let net = Netns::new("fan");
    let db = work.db();
    let config = work.write(
        "fanout.toml",
        "[store]\nflush_interval_ms = 200\n[pipeline]\nworkers = 2\n",
    );
    let stderr = work.path().join("daemon.stderr");
    let child = Command::new("ip")
        .args(["netns", "exec", &net.ns, VQPROBE, "run", "--config"])
        .arg(&config)
        .arg("--db")
        .arg(&db)
        .args(["--interface", &net.inner, "--capture-threads", "2"])
        .args(["--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&stderr).expect("stderr log"))
        .spawn()
        .expect("spawning the daemon");
    let mut guard = daemon::ChildGuard::new("vqprobe", child);
    let read_err = || std::fs::read_to_string(&stderr).unwrap_or_default();
    assert!(
        wait_for(Duration::from_secs(20), || read_err()
            .contains("with 2 threads each")),
        "the daemon did not start two capture threads: {}",
        read_err()
    );
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
    let done = wait_for(Duration::from_secs(30), || {
        daemon::try_calls(&db)
            .map(|rows| rows.iter().filter(|r| r["status"] != "in_progress").count() >= want.len())
            .unwrap_or(false)
    });
    let _ = guard.terminate(Duration::from_secs(20));
    let log = read_err();
    assert!(done, "not every call was stored; stderr:\n{log}");

    // Both threads read packets, and nothing was dropped anywhere.
    let per_thread: Vec<(String, u64, u64)> = log
        .lines()
        .filter(|l| l.contains("packets, kernel dropped"))
        .flat_map(|l| l.trim_start_matches("vqprobe: ").split("; "))
        .filter_map(|seg| {
            // "NAME: N packets, kernel dropped K, interface dropped I, queue dropped Q"
            let (name, rest) = seg.split_once(": ")?;
            let mut nums = rest.split([',', ' ']).filter_map(|t| t.parse::<u64>().ok());
            let packets = nums.next()?;
            let dropped: u64 = nums.take(3).sum();
            rest.contains("queue dropped")
                .then(|| (name.to_string(), packets, dropped))
        })
        .collect();
    eprintln!("capture threads (name, packets, dropped): {per_thread:?}");
    assert_eq!(per_thread.len(), 2, "two capture summaries:\n{log}");
    let total: u64 = per_thread.iter().map(|t| t.1).sum();
    let sent = offline["capture"]["packets"].as_u64().unwrap_or(0);
    assert!(
        per_thread.iter().all(|t| t.1 > sent / 10),
        "both threads carry traffic"
    );
    assert!(per_thread.iter().all(|t| t.2 == 0), "no drops:\n{log}");
    // The veth may add a few frames of its own (IPv6 router solicitations).
    assert!(
        total >= sent && total <= sent + 20,
        "captured {total} packets, the file holds {sent}"
    );

    let got: BTreeMap<String, CallKey> = daemon::calls(&db).iter().map(key).collect();
    let mut diffs: Vec<String> = Vec::new();
    for (id, w) in &want {
        match got.get(id) {
            Some(g) if g == w => {}
            Some(g) => diffs.push(format!("{id}: daemon {g:?}\n    analyze {w:?}")),
            None => diffs.push(format!("{id}: not stored")),
        }
    }
    if got.len() != want.len() {
        diffs.push(format!(
            "{} calls stored, {} in the file",
            got.len(),
            want.len()
        ));
    }
    assert!(
        diffs.is_empty(),
        "{} difference(s):\n  {}",
        diffs.len(),
        diffs.join("\n  ")
    );
}
