//! Storage faults lose nothing: records wait in memory (counted, bounded) and are
//! written once the disk takes them again; `/healthz` says `degraded` meanwhile; SIGTERM
//! during a fault waits (bounded) and says what it could not write.
//!
//! - **Disk full**: the database on a 2 MiB tmpfs this test mounts, a replay of 3,000
//!   calls, then the tmpfs grown to 64 MiB: every call stored, none left in progress.
//! - **Read-only file**: the database and its WAL made immutable (`chattr +i`, which
//!   also stops writes through descriptors already open) while 3,000 calls replay, then
//!   made writable again.
//! - **Shutdown during a fault**: SIGTERM while the disk is full: the daemon exits after
//!   `store.shutdown_timeout_s` and prints how many records it could not write.
//!
//! Needs root (mount, chattr); skipped with a message otherwise.

#[path = "support/capgen.rs"]
mod capgen;
#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/http.rs"]
mod http;
#[path = "support/loadgen.rs"]
mod loadgen;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use daemon::{is_root, wait_for, Daemon, Workdir};
use serde_json::Value;

const CALLS: u32 = 3_000;

/// 3,000 short calls (about 1 s of media each way).
fn capture(work: &Workdir) -> PathBuf {
    let pcap = work.path().join("calls.pcap");
    loadgen::run(&loadgen::Options {
        out: pcap.clone(),
        calls: CALLS,
        packets: u64::from(CALLS) * 100,
        seed: 3,
    })
    .expect("generating the capture");
    pcap
}

/// A tmpfs of `size` mounted on `dir`, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("mount point");
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount");
        assert!(st.success(), "mount tmpfs failed");
        Tmpfs(dir.to_path_buf())
    }

    fn resize(&self, size: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .expect("remount");
        assert!(st.success(), "remount failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn config(work: &Workdir) -> String {
    let _ = work;
    "[store]\nflush_interval_ms = 100\nshutdown_timeout_s = 3\n[calls]\nrtp_timeout_s = 5\n"
        .to_string()
}

/// Polls until `/healthz` says `want`; returns the last body.
fn wait_health(c: &http::Client, want: &str, limit: Duration) -> Value {
    let mut last = Value::Null;
    wait_for(limit, || {
        last = c.get("/healthz").json();
        last["status"] == want
    });
    last
}

/// Every stored call: (count, count still in progress).
fn stored(db: &Path) -> (usize, usize) {
    let rows = daemon::calls_or_empty(db);
    let open = rows.iter().filter(|r| r["status"] == "in_progress").count();
    (rows.len(), open)
}

#[test]
fn disk_full_then_space_again_loses_nothing() {
    if !is_root() {
        eprintln!("SKIPPED: needs root to mount a tmpfs");
        return;
    }
    let work = Workdir::new();
    let pcap = capture(&work);
    let fs = Tmpfs::mount(&work.path().join("small"), "2m");
    let db = fs.0.join("vqprobe.db");
    let started = Instant::now();
    let mut d = Daemon::spawn(
        &work,
        &db,
        &config(&work),
        &[
            "--replay",
            pcap.to_str().expect("utf-8 path"),
            "--speed",
            "0",
        ],
    );
    let c = http::Client::new(&d.base, None);
    assert!(c.wait_up(Duration::from_secs(20)), "API up");
    d.wait_stderr("replay finished", Duration::from_secs(60));

    let h = wait_health(&c, "degraded", Duration::from_secs(30));
    assert_eq!(h["status"], "degraded", "healthz during the fault: {h}");
    let m = c.get("/metrics").text();
    let (pending, errors) = (
        metric(&m, "vqprobe_store_pending_records"),
        metric(&m, "vqprobe_store_errors_total"),
    );
    assert!(
        pending > 0.0 && errors > 0.0,
        "pending {pending}, errors {errors}"
    );
    let (before, _) = stored(&db);
    eprintln!(
        "disk full: {before} calls stored, {pending} records pending, {errors} write errors; \
         healthz: {}",
        h["error"]["message"]
    );

    fs.resize("64m");
    let ok = wait_for(Duration::from_secs(60), || {
        let m = c.get("/metrics").text();
        metric(&m, "vqprobe_store_pending_records") == 0.0
            && c.get("/healthz").json()["status"] == "ok"
    });
    assert!(ok, "never recovered; stderr:\n{}", d.stderr());
    let (status, _) = d.terminate(Duration::from_secs(30));
    assert!(status.success(), "exit: {status}; stderr:\n{}", d.stderr());
    let (n, open) = stored(&db);
    let m_dropped = metric(&m, "vqprobe_store_dropped_records_total");
    eprintln!(
        "after space came back: {n} calls stored of {CALLS}, {open} in progress, \
         {m_dropped} dropped, {:.1} s in all",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        (n, open),
        (CALLS as usize, 0),
        "every call stored, none lost"
    );
    assert!(d.stderr().contains("writing again"), "{}", d.stderr());
}

#[test]
fn sigterm_during_a_fault_says_what_it_could_not_write() {
    if !is_root() {
        eprintln!("SKIPPED: needs root to mount a tmpfs");
        return;
    }
    let work = Workdir::new();
    let pcap = capture(&work);
    let fs = Tmpfs::mount(&work.path().join("small"), "2m");
    let db = fs.0.join("vqprobe.db");
    let mut d = Daemon::spawn(
        &work,
        &db,
        &config(&work),
        &[
            "--replay",
            pcap.to_str().expect("utf-8 path"),
            "--speed",
            "0",
        ],
    );
    let c = http::Client::new(&d.base, None);
    assert!(c.wait_up(Duration::from_secs(20)), "API up");
    d.wait_stderr("replay finished", Duration::from_secs(60));
    assert_eq!(
        wait_health(&c, "degraded", Duration::from_secs(30))["status"],
        "degraded"
    );
    let t = Instant::now();
    let (_, took) = d.terminate(Duration::from_secs(30));
    let err = d.stderr();
    let line = err
        .lines()
        .find(|l| l.contains("shutting down with"))
        .unwrap_or_else(|| panic!("no word on what was not written:\n{err}"));
    eprintln!("{line} (exit after {:.1} s)", t.elapsed().as_secs_f64());
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(20),
        "waited {took:?} for the disk (shutdown_timeout_s = 3)"
    );
    let n: usize = line
        .split("shutting down with ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("a count");
    let (stored, _) = stored(&db);
    assert!(n > 0, "records were pending");
    assert!(
        stored + n >= CALLS as usize,
        "{stored} stored + {n} reported unwritten covers all {CALLS} calls"
    );
}

#[test]
fn read_only_database_then_writable_loses_nothing() {
    if !is_root() {
        eprintln!("SKIPPED: needs root for chattr");
        return;
    }
    let work = Workdir::new();
    let pcap = capture(&work);
    let db = work.path().join("ro").join("vqprobe.db");
    // Start, so the store and its WAL exist, then make them immutable.
    let mut d = Daemon::spawn(
        &work,
        &db,
        &config(&work),
        &[
            "--replay",
            pcap.to_str().expect("utf-8 path"),
            "--speed",
            "0.25",
        ],
    );
    let c = http::Client::new(&d.base, None);
    assert!(c.wait_up(Duration::from_secs(20)), "API up");
    let files: Vec<PathBuf> = ["", "-wal"]
        .iter()
        .map(|s| PathBuf::from(format!("{}{s}", db.display())))
        .collect();
    let chattr = |flag: &str| {
        files.iter().all(|f| {
            Command::new("chattr")
                .arg(flag)
                .arg(f)
                .status()
                .is_ok_and(|s| s.success())
        })
    };
    if !chattr("+i") {
        chattr("-i");
        eprintln!("SKIPPED: this file system does not support chattr +i");
        return;
    }
    d.wait_stderr("replay finished", Duration::from_secs(120));
    let h = wait_health(&c, "degraded", Duration::from_secs(30));
    let ok_degraded = h["status"] == "degraded";
    assert!(chattr("-i"), "chattr -i");
    assert!(ok_degraded, "healthz while read-only: {h}");
    eprintln!("read-only: healthz {}", h["error"]["message"]);
    let ok = wait_for(Duration::from_secs(60), || {
        c.get("/healthz").json()["status"] == "ok"
            && metric(&c.get("/metrics").text(), "vqprobe_store_pending_records") == 0.0
    });
    assert!(ok, "never recovered; stderr:\n{}", d.stderr());
    d.terminate(Duration::from_secs(30));
    let (n, open) = stored(&db);
    eprintln!("after the file was writable again: {n} of {CALLS} calls stored, {open} open");
    assert_eq!((n, open), (CALLS as usize, 0));
}
