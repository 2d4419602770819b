//! `vqprobe run` persistence: replay → SIGTERM → restart on the same database keeps the
//! records; `kill -9` loses nothing that was committed; open calls are visible as
//! `in_progress` rows with interim metrics and are closed on SIGTERM.
//!
//! No root needed: everything goes through `--replay`. The real captures come from
//! `tests/data/pcaps/` (or `../shared/pcaps/real/`; skipped with a message when absent) and the repo's
//! `demo/sip-rtp-g711.pcap`.
//!
//! Why the captures are copied with shifted timestamps: a replayed call is stored with
//! its capture time as `created_at` (2016 for these files), and the store's retention
//! (`store.retention_days`, 1..=3650, default 90) deletes everything older at every
//! daemon start. Replaying the original files, the second start would delete the first
//! run's records (observed: 8 g726 calls, restart with the demo, 2 rows left). The copies
//! are moved forward by a whole number of days, so every UTC-aligned scoring interval, and
//! so every figure, is the same as for the original file, and the records are recent.

#[path = "support/daemon.rs"]
mod daemon;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use daemon::{calls, calls_or_empty, integrity_check, wait_for, Daemon, Workdir};
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A real capture: vendored in `tests/data/pcaps`, else from `../shared/pcaps/real`.
fn shared_capture(name: &str) -> Option<PathBuf> {
    [
        repo().join("tests/data/pcaps").join(name),
        repo().join("../shared/pcaps/real").join(name),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

const G726: &str = "rtp-pcap__sip-rtp-g726.pcap";

/// Copies a classic pcap (either byte order, µs or ns) to `dst`, moving every timestamp
/// forward by whole days so the first packet falls within the last 24 hours.
fn shift_to_recent(src: &Path, dst: &Path) {
    let mut b = std::fs::read(src).unwrap_or_else(|e| panic!("reading {}: {e}", src.display()));
    assert!(b.len() >= 24, "{}: not a pcap file", src.display());
    let magic = [b[0], b[1], b[2], b[3]];
    let le = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => panic!("{}: not a classic pcap file (pcapng?)", src.display()),
    };
    let rd = |b: &[u8], at: usize| {
        let x = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if le {
            u32::from_le_bytes(x)
        } else {
            u32::from_be_bytes(x)
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let mut delta: Option<u32> = None;
    let mut at = 24;
    while at + 16 <= b.len() {
        let sec = rd(&b, at);
        let d = *delta.get_or_insert_with(|| {
            let days = now.saturating_sub(u64::from(sec)) / 86_400;
            u32::try_from(days * 86_400).expect("shift fits in u32")
        });
        let shifted = sec.checked_add(d).expect("timestamp fits in u32");
        let bytes = if le {
            shifted.to_le_bytes()
        } else {
            shifted.to_be_bytes()
        };
        b[at..at + 4].copy_from_slice(&bytes);
        let incl = rd(&b, at + 8) as usize;
        at += 16 + incl;
    }
    std::fs::write(dst, &b).unwrap_or_else(|e| panic!("writing {}: {e}", dst.display()));
}

/// A shifted copy of `src` inside the work dir.
fn recent_copy(work: &Workdir, src: &Path) -> PathBuf {
    let name = src.file_name().expect("file name").to_string_lossy();
    let dst = work.path().join(format!("recent-{name}"));
    shift_to_recent(src, &dst);
    dst
}

/// The Call-IDs of the calls `vqprobe analyze` (the same engine) finds in `file`.
fn analyzed_call_ids(file: &Path) -> BTreeSet<String> {
    analyzed_reasons(file).into_keys().collect()
}

/// Call-ID → the `ended_reason` the daemon must store: analyze's, except that a call
/// still open at the end of the file (`end_of_capture` offline) ends by `rtp_timeout`
/// in the daemon, whose clock runs on after the last replayed packet.
fn analyzed_reasons(file: &Path) -> BTreeMap<String, String> {
    let v = daemon::analyze_json(file, &[]);
    v["calls"]
        .as_array()
        .expect("calls array")
        .iter()
        .filter_map(|c| {
            let id = c["sip_call_id"].as_str()?.to_string();
            let reason = match c["ended_reason"].as_str().unwrap_or("") {
                "end_of_capture" => "rtp_timeout",
                r => r,
            };
            Some((id, reason.to_string()))
        })
        .collect()
}

/// Every stored call's `ended_reason` is the one expected for it.
fn assert_reasons(rows: &[Value], want: &BTreeMap<String, String>) {
    for r in rows {
        if let Some(reason) = want.get(daemon::s(r, "sip_call_id")) {
            assert_eq!(daemon::s(r, "ended_reason"), reason, "{r}");
            assert_eq!(daemon::s(r, "status"), "completed", "{r}");
        }
    }
}

fn by_call_id(rows: &[Value]) -> BTreeMap<String, Value> {
    rows.iter()
        .map(|r| (daemon::s(r, "call_id").to_string(), r.clone()))
        .collect()
}

fn is_final(row: &Value) -> bool {
    daemon::s(row, "status") != "in_progress"
}

fn summary(rows: &[Value]) -> String {
    let mut out = String::new();
    for r in rows {
        let pkts: i64 = daemon::streams(r)
            .iter()
            .filter_map(|s| s["packets"].as_i64())
            .sum();
        out.push_str(&format!(
            "  {:<24} {:<12} {:<10} codec={:<8} mos={:<6} streams={} packets={}\n",
            daemon::s(r, "call_id"),
            daemon::s(r, "status"),
            daemon::s(r, "ended_reason"),
            daemon::s(r, "codec"),
            daemon::f(r, "quality_mos").map_or("-".into(), |m| format!("{m:.2}")),
            daemon::streams(r).len(),
            pkts
        ));
    }
    out
}

/// The demo's second call has no BYE: with a 3 s RTP timeout it ends (as `rtp_timeout`)
/// 3 s after the replay's last packet instead of 30 s.
const BASE_CONFIG: &str = "[calls]\nrtp_timeout_s = 3\n[store]\nflush_interval_ms = 500\n";

/// (c)1: replay the 8 g726 calls at full speed, SIGTERM (exit 0 within 5 s), restart on
/// the same database with the demo's 2 calls: 10 calls, integrity ok, the first 8 intact.
#[test]
fn replay_sigterm_restart_keeps_records() {
    let Some(g726) = shared_capture(G726) else {
        println!("SKIPPED: {G726} not found");
        return;
    };
    let t0 = Instant::now();
    let work = Workdir::new();
    let db = work.db();
    let g726 = recent_copy(&work, &g726);
    let demo = recent_copy(&work, &repo().join("demo/sip-rtp-g711.pcap"));
    let g726_ids = analyzed_call_ids(&g726);
    let demo_reasons = analyzed_reasons(&demo);
    let demo_ids = analyzed_call_ids(&demo);
    assert_eq!(g726_ids.len(), 8, "analyze finds 8 calls in {G726}");
    assert_eq!(demo_ids.len(), 2, "analyze finds 2 calls in the demo");

    // First run.
    let mut d1 = Daemon::spawn(
        &work,
        &db,
        BASE_CONFIG,
        &[
            "--replay",
            g726.to_str().expect("utf-8 path"),
            "--speed",
            "0",
        ],
    );
    let stored_all = |db: &Path, want: &BTreeSet<String>| {
        let rows = calls_or_empty(db);
        let done: BTreeSet<String> = rows
            .iter()
            .filter(|r| daemon::s(r, "status") == "completed")
            .map(|r| daemon::s(r, "sip_call_id").to_string())
            .collect();
        want.is_subset(&done)
    };
    assert!(
        wait_for(Duration::from_secs(20), || stored_all(&db, &g726_ids)),
        "the 8 g726 calls were not all stored as completed within 20 s; rows:\n{}stderr:\n{}",
        summary(&calls_or_empty(&db)),
        d1.stderr()
    );
    let (st, took) = d1.terminate(Duration::from_secs(10));
    assert!(
        st.success(),
        "exit after SIGTERM: {st}; stderr:\n{}",
        d1.stderr()
    );
    assert!(
        took < Duration::from_secs(5),
        "SIGTERM → exit took {took:?}"
    );
    let first = calls(&db);
    println!(
        "run 1 (g726, speed 0): SIGTERM → exit 0 in {took:?}\n{}",
        summary(&first)
    );
    assert_eq!(first.len(), 8, "rows after run 1:\n{}", summary(&first));
    for r in &first {
        assert_eq!(daemon::s(r, "status"), "completed", "{r}");
        assert_eq!(daemon::s(r, "ended_reason"), "bye", "{r}");
        assert!(g726_ids.contains(daemon::s(r, "sip_call_id")), "{r}");
        assert_eq!(daemon::streams(r).len(), 1, "one stream per g726 call: {r}");
    }

    // Second run on the same database.
    let mut d2 = Daemon::spawn(
        &work,
        &db,
        BASE_CONFIG,
        &[
            "--replay",
            demo.to_str().expect("utf-8 path"),
            "--speed",
            "0",
        ],
    );
    assert!(
        wait_for(Duration::from_secs(20), || stored_all(&db, &demo_ids)),
        "the demo's 2 calls were not stored within 20 s; rows:\n{}stderr:\n{}",
        summary(&calls_or_empty(&db)),
        d2.stderr()
    );
    let (st, took2) = d2.terminate(Duration::from_secs(10));
    assert!(
        st.success(),
        "exit after SIGTERM: {st}; stderr:\n{}",
        d2.stderr()
    );
    assert!(
        took2 < Duration::from_secs(5),
        "SIGTERM → exit took {took2:?}"
    );
    let all = calls(&db);
    println!(
        "run 2 (demo, speed 0, same db): SIGTERM → exit 0 in {took2:?}\n{}",
        summary(&all)
    );
    assert_eq!(all.len(), 10, "rows after restart:\n{}", summary(&all));
    let all_ids: BTreeSet<String> = all
        .iter()
        .map(|r| daemon::s(r, "sip_call_id").to_string())
        .collect();
    let want: BTreeSet<String> = g726_ids.union(&demo_ids).cloned().collect();
    assert_eq!(all_ids, want);
    // The first run's rows are untouched by the restart.
    let after = by_call_id(&all);
    for (id, row) in by_call_id(&first) {
        assert_eq!(
            after.get(&id),
            Some(&row),
            "row {id} changed across the restart"
        );
    }
    assert_reasons(&all, &demo_reasons);
    assert_eq!(integrity_check(&db), "ok");
    println!("total {:.1} s", t0.elapsed().as_secs_f64());
}

/// (c)2: kill -9 mid-replay loses no committed record, the file stays intact, and a fresh
/// daemon opens it and adds records.
#[test]
fn kill9_loses_nothing_committed() {
    let t0 = Instant::now();
    let work = Workdir::new();
    let db = work.db();
    // A capture whose first call ends early (BYE at 8.6 s) while later calls go on.
    let (src, label) = match shared_capture(G726) {
        Some(p) => (p, G726),
        None => {
            println!("note: {G726} absent; using demo/sip-rtp-g711.pcap for the kill -9 run");
            (repo().join("demo/sip-rtp-g711.pcap"), "demo")
        }
    };
    let long = recent_copy(&work, &src);
    let demo = recent_copy(&work, &repo().join("demo/sip-rtp-g711.pcap"));
    let demo_reasons = analyzed_reasons(&demo);
    let demo_ids = analyzed_call_ids(&demo);

    let mut d = Daemon::spawn(
        &work,
        &db,
        BASE_CONFIG,
        &[
            "--replay",
            long.to_str().expect("utf-8 path"),
            "--speed",
            "1",
        ],
    );
    assert!(
        wait_for(Duration::from_secs(25), || calls_or_empty(&db)
            .iter()
            .any(is_final)),
        "no finished call stored within 25 s of a real-time replay of {label}; stderr:\n{}",
        d.stderr()
    );
    let noted: BTreeMap<String, Value> =
        by_call_id(&calls(&db).into_iter().filter(is_final).collect::<Vec<_>>());
    // The writer commits at most flush_interval_ms (≤ 1 s) after a record arrives.
    std::thread::sleep(Duration::from_millis(1500));
    let before_kill = calls(&db);
    assert!(
        d.is_running(),
        "the replay ended early; stderr:\n{}",
        d.stderr()
    );
    let killed_at = t0.elapsed();
    d.kill9();
    println!(
        "kill -9 at {:.1} s into the {label} replay; stored then:\n{}",
        killed_at.as_secs_f64(),
        summary(&before_kill)
    );

    // Reopen: everything committed is there, the finished rows unchanged.
    assert_eq!(integrity_check(&db), "ok", "integrity after kill -9");
    let after = calls(&db);
    let after_by_id = by_call_id(&after);
    for (id, row) in &noted {
        assert_eq!(
            after_by_id.get(id),
            Some(row),
            "finished call {id} (stored ≥ 1.5 s before the kill) missing or changed"
        );
    }
    for row in &before_kill {
        let id = daemon::s(row, "call_id");
        let now = after_by_id
            .get(id)
            .unwrap_or_else(|| panic!("call {id} read before the kill is gone"));
        if is_final(row) {
            assert_eq!(now, row, "finished call {id} changed");
        }
    }
    assert_eq!(after.len(), before_kill.len(), "rows appeared or vanished");

    // A fresh daemon opens the same file and adds records.
    let mut d2 = Daemon::spawn(
        &work,
        &db,
        BASE_CONFIG,
        &[
            "--replay",
            demo.to_str().expect("utf-8 path"),
            "--speed",
            "0",
        ],
    );
    let want = after.len() + demo_ids.len();
    assert!(
        wait_for(Duration::from_secs(20), || {
            let rows = calls_or_empty(&db);
            rows.len() == want
                && demo_ids.iter().all(|id| {
                    rows.iter().any(|r| {
                        daemon::s(r, "sip_call_id") == id && daemon::s(r, "status") == "completed"
                    })
                })
        }),
        "the restarted daemon did not add the demo's 2 calls; rows:\n{}stderr:\n{}",
        summary(&calls_or_empty(&db)),
        d2.stderr()
    );
    let (st, took) = d2.terminate(Duration::from_secs(10));
    assert!(
        st.success(),
        "exit after SIGTERM: {st}; stderr:\n{}",
        d2.stderr()
    );
    let fin = calls(&db);
    assert_eq!(fin.len(), want);
    assert_reasons(&fin, &demo_reasons);
    assert_eq!(integrity_check(&db), "ok");
    let stale: Vec<&Value> = fin
        .iter()
        .filter(|r| daemon::s(r, "status") == "in_progress")
        .collect();
    println!(
        "after restart (demo, speed 0; SIGTERM → exit 0 in {took:?}): {} rows, {} still \
         in_progress from the killed run\n{}total {:.1} s",
        fin.len(),
        stale.len(),
        summary(&fin),
        t0.elapsed().as_secs_f64()
    );
}

/// (c)3: while a real-time replay is mid-call there is an `in_progress` row with interim
/// figures that grow; after SIGTERM the row is final (`shutdown`, or `bye` if it ended).
#[test]
fn interim_rows_then_closed_by_sigterm() {
    let t0 = Instant::now();
    let work = Workdir::new();
    let db = work.db();
    let src = shared_capture(G726).unwrap_or_else(|| repo().join("demo/sip-rtp-g711.pcap"));
    let file = recent_copy(&work, &src);
    // Interim records are published every quality.interval_s (of capture time). An
    // interval is scored once it holds ≥ 50 packets and is over (observed: the MOS of
    // the interim row appears one interval after the interval closes), so 2 s intervals
    // of 20 ms packets give an interim MOS about 4 s into the call; the first call's BYE
    // comes at 8.6 s.
    let config = "[quality]\ninterval_s = 2\n[store]\nflush_interval_ms = 200\n";
    let mut d = Daemon::spawn(
        &work,
        &db,
        config,
        &[
            "--replay",
            file.to_str().expect("utf-8 path"),
            "--speed",
            "1",
        ],
    );
    let packets = |r: &Value| -> i64 {
        daemon::streams(r)
            .iter()
            .filter_map(|s| s["packets"].as_i64())
            .sum()
    };
    let mut first: Option<Value> = None;
    assert!(
        wait_for(Duration::from_secs(8), || {
            first = calls_or_empty(&db)
                .into_iter()
                .find(|r| daemon::s(r, "status") == "in_progress" && packets(r) >= 50);
            first.is_some()
        }),
        "no in_progress row with ≥ 50 packets within 8 s; rows:\n{}stderr:\n{}",
        summary(&calls_or_empty(&db)),
        d.stderr()
    );
    let first = first.expect("row");
    let id = daemon::s(&first, "call_id").to_string();
    let p1 = packets(&first);
    let seen1 = t0.elapsed();
    assert!(
        daemon::s(&first, "ended_reason").is_empty(),
        "an open call has no ended_reason: {first}"
    );
    // A later interim record of the same call carries more packets and a MOS.
    let mut later: Option<Value> = None;
    assert!(
        wait_for(Duration::from_secs(6), || {
            later = calls_or_empty(&db).into_iter().find(|r| {
                daemon::s(r, "call_id") == id
                    && daemon::s(r, "status") == "in_progress"
                    && packets(r) > p1
                    && daemon::f(r, "quality_mos").is_some()
            });
            later.is_some()
        }),
        "the in_progress row of {id} did not get more packets and a MOS within 6 s; rows:\n{}",
        summary(&calls_or_empty(&db))
    );
    let later = later.expect("row");
    let p2 = packets(&later);
    let seen2 = t0.elapsed();

    let (st, took) = d.terminate(Duration::from_secs(10));
    assert!(
        st.success(),
        "exit after SIGTERM: {st}; stderr:\n{}",
        d.stderr()
    );
    let rows = calls(&db);
    let row = rows
        .iter()
        .find(|r| daemon::s(r, "call_id") == id)
        .unwrap_or_else(|| panic!("call {id} gone after SIGTERM"));
    println!(
        "in_progress {id}: {p1} packets at {:.1} s (mos {:?}), {p2} packets at {:.1} s \
         (mos {:?}); SIGTERM → exit 0 in {took:?}; then\n{}total {:.1} s",
        seen1.as_secs_f64(),
        daemon::f(&first, "quality_mos"),
        seen2.as_secs_f64(),
        daemon::f(&later, "quality_mos"),
        summary(&rows),
        t0.elapsed().as_secs_f64()
    );
    assert!(
        rows.iter().all(is_final),
        "rows still in_progress after SIGTERM:\n{}",
        summary(&rows)
    );
    let reason = daemon::s(row, "ended_reason");
    assert!(
        reason == "shutdown" || reason == "bye",
        "ended_reason after SIGTERM: {reason:?}"
    );
    assert!(
        packets(row) >= p2,
        "final packets {} < interim {p2}",
        packets(row)
    );
    assert_eq!(integrity_check(&db), "ok");
}
