//! Test-only helpers for driving `vqprobe run` as a real process.
//!
//! * [`Workdir`]: a temporary directory holding the config files, the daemon's stderr
//!   logs and (by default) the SQLite database.
//! * [`Daemon`]: `vqprobe run --config … --db … --listen 127.0.0.1:<free port> ARGS…`,
//!   with a Drop guard that sends SIGTERM, waits a little, then SIGKILLs.
//! * [`ChildGuard`]: the same guard for any other child (sipp, tshark).
//! * [`wait_for`]: bounded polling.
//! * [`calls`] / [`try_calls`]: the stored rows, read through a read-only rusqlite
//!   connection, as JSON objects (every `calls` column by name, plus `streams`: the parsed
//!   `call_streams.streams_json`, or null when the call has no streams row).
//!
//! Include it with `#[path = "support/daemon.rs"] mod daemon;`.
#![allow(dead_code)]

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use serde_json::{Map, Value};

/// The binary under test.
pub const VQPROBE: &str = env!("CARGO_BIN_EXE_vqprobe");

/// How long a Drop guard waits after SIGTERM before it SIGKILLs.
const DROP_GRACE: Duration = Duration::from_secs(5);

static SPAWNS: AtomicUsize = AtomicUsize::new(0);

/// Polls `cond` every 100 ms until it holds or `timeout` has passed; returns whether it
/// held. Always evaluates `cond` at least once.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends `signal` (e.g. "TERM", "KILL") to `pid` with kill(1); false if kill failed.
pub fn send_signal(pid: u32, signal: &str) -> bool {
    Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Waits (polling, bounded) for `child` to exit.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) => {}
            Err(_) => return None,
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `cmd` can be run (found on PATH).
pub fn have_command(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Whether the tests run as root (`id -u` prints 0).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A loopback TCP port that was free a moment ago (for `--listen`, so parallel daemons
/// never fight over the default 8080 once the API listens).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral loopback port")
}

/// Kills a child process when dropped: SIGTERM, up to 5 s of grace, then SIGKILL.
pub struct ChildGuard {
    child: Option<Child>,
    name: String,
}

impl ChildGuard {
    /// Guards `child`; `name` is used in messages.
    pub fn new(name: &str, child: Child) -> ChildGuard {
        ChildGuard {
            child: Some(child),
            name: name.to_string(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Waits up to `timeout` for the process to exit on its own.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let st = wait_child(self.child.as_mut()?, timeout)?;
        self.child = None;
        Some(st)
    }

    /// Sends SIGTERM and waits up to `timeout`; returns the status and how long it took.
    pub fn terminate(&mut self, timeout: Duration) -> Option<(ExitStatus, Duration)> {
        let pid = self.pid();
        let t0 = Instant::now();
        send_signal(pid, "TERM");
        let st = self.wait(timeout)?;
        Some((st, t0.elapsed()))
    }

    /// SIGKILL now and reap.
    pub fn kill9(&mut self) -> Option<ExitStatus> {
        let mut c = self.child.take()?;
        send_signal(c.id(), "KILL");
        let _ = c.kill();
        c.wait().ok()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        if matches!(c.try_wait(), Ok(Some(_))) {
            return;
        }
        send_signal(c.id(), "TERM");
        if wait_child(&mut c, DROP_GRACE).is_none() {
            eprintln!("{}: did not stop after SIGTERM; SIGKILL", self.name);
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A temporary directory for one test: configs, logs and (by default) the database.
pub struct Workdir {
    dir: tempfile::TempDir,
}

impl Default for Workdir {
    fn default() -> Self {
        Self::new()
    }
}

impl Workdir {
    /// A fresh directory (removed when dropped).
    pub fn new() -> Workdir {
        Workdir {
            dir: tempfile::Builder::new()
                .prefix("vqprobe-test-")
                .tempdir()
                .expect("creating a temp dir"),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The default database path inside it.
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("vqprobe.db")
    }

    /// Writes `text` to `name` inside the directory and returns the path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
        p
    }
}

/// A running `vqprobe run`. Dropping it stops it (SIGTERM, then SIGKILL).
pub struct Daemon {
    guard: ChildGuard,
    /// The database it writes.
    pub db: PathBuf,
    /// Its config file.
    pub config: PathBuf,
    /// Where its stderr goes.
    pub stderr_path: PathBuf,
    /// When it was spawned.
    pub started: Instant,
    /// Its API's base URL (`http://127.0.0.1:P`).
    pub base: String,
}

impl Daemon {
    /// Spawns `vqprobe run --config <work>/daemon-N.toml --db <db> --listen 127.0.0.1:P
    /// ARGS…` with `config_toml` as the whole config file. stdout and stderr go to
    /// files in the work dir; [`Daemon::stderr`] reads the latter.
    pub fn spawn(work: &Workdir, db: &Path, config_toml: &str, args: &[&str]) -> Daemon {
        let n = SPAWNS.fetch_add(1, Ordering::SeqCst);
        let config = work.write(&format!("daemon-{n}.toml"), config_toml);
        let stderr_path = work.path().join(format!("daemon-{n}.stderr"));
        let stdout_path = work.path().join(format!("daemon-{n}.stdout"));
        let listen = format!("127.0.0.1:{}", free_port());
        let mut cmd = Command::new(VQPROBE);
        cmd.arg("run")
            .arg("--config")
            .arg(&config)
            .arg("--db")
            .arg(db)
            .args(["--listen", &listen])
            .args(args)
            .current_dir(work.path())
            .stdin(Stdio::null())
            .stdout(File::create(&stdout_path).expect("creating stdout log"))
            .stderr(File::create(&stderr_path).expect("creating stderr log"));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {VQPROBE}: {e}"));
        Daemon {
            guard: ChildGuard::new("vqprobe", child),
            db: db.to_path_buf(),
            config,
            stderr_path,
            started: Instant::now(),
            base: format!("http://{listen}"),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        self.guard.is_running()
    }

    /// Everything it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Waits (bounded) until its stderr contains `needle`; panics with the stderr if it
    /// exits first or the time runs out.
    pub fn wait_stderr(&mut self, needle: &str, timeout: Duration) {
        let ok = wait_for(timeout, || {
            self.stderr().contains(needle) || !self.guard.is_running()
        });
        let err = self.stderr();
        assert!(
            ok && err.contains(needle),
            "vqprobe did not print {needle:?} within {timeout:?} (running: {}); stderr:\n{err}",
            self.guard.is_running()
        );
    }

    /// SIGTERM, then waits up to `timeout` for the exit; returns its status and how long
    /// the exit took. Panics (after SIGKILL) if it does not exit in time.
    pub fn terminate(&mut self, timeout: Duration) -> (ExitStatus, Duration) {
        match self.guard.terminate(timeout) {
            Some(r) => r,
            None => {
                self.guard.kill9();
                panic!(
                    "vqprobe did not exit within {timeout:?} of SIGTERM; stderr:\n{}",
                    self.stderr()
                );
            }
        }
    }

    /// SIGKILL (kill -9) and reap.
    pub fn kill9(&mut self) -> Option<ExitStatus> {
        self.guard.kill9()
    }

    /// Waits up to `timeout` for it to exit on its own.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.guard.wait(timeout)
    }
}

/// `vqprobe analyze FILE --format json ARGS…`, parsed.
pub fn analyze_json(file: &Path, args: &[&str]) -> Value {
    let out = Command::new(VQPROBE)
        .arg("analyze")
        .arg(file)
        .args(["--format", "json"])
        .args(args)
        .output()
        .expect("running vqprobe analyze");
    assert!(
        out.status.success(),
        "vqprobe analyze {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("analyze JSON")
}

/// A read-only connection to the store (WAL lets it read while the daemon writes).
pub fn open_ro(db: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

fn json_of(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => Value::from(f),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::String(format!("<{} byte blob>", b.len())),
    }
}

/// Every stored call, ordered by `created_at_ms, call_id`: each `calls` column by name,
/// plus `streams` (the parsed `call_streams.streams_json`, or null).
pub fn try_calls(db: &Path) -> Result<Vec<Value>, String> {
    let conn = open_ro(db).map_err(|e| e.to_string())?;
    let mut stmt = conn
        .prepare(
            "SELECT c.*, s.streams_json AS streams_json__ FROM calls c \
             LEFT JOIN call_streams s ON s.call_id = c.call_id \
             ORDER BY c.created_at_ms, c.call_id",
        )
        .map_err(|e| e.to_string())?;
    let names: Vec<String> = stmt.column_names().map(str::to_string).collect();
    let rows = stmt
        .query_map([], |row| {
            let mut obj = Map::new();
            for (i, name) in names.iter().enumerate() {
                let v = json_of(row.get_ref(i)?);
                if name == "streams_json__" {
                    let streams = match &v {
                        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|e| {
                            Value::String(format!("<unparsable streams_json: {e}>"))
                        }),
                        _ => Value::Null,
                    };
                    obj.insert("streams".into(), streams);
                } else {
                    obj.insert(name.clone(), v);
                }
            }
            Ok(Value::Object(obj))
        })
        .map_err(|e| e.to_string())?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

/// [`try_calls`], panicking on error.
pub fn calls(db: &Path) -> Vec<Value> {
    try_calls(db).unwrap_or_else(|e| panic!("reading {}: {e}", db.display()))
}

/// [`try_calls`], empty on error (for polling before the database exists).
pub fn calls_or_empty(db: &Path) -> Vec<Value> {
    try_calls(db).unwrap_or_default()
}

/// `PRAGMA integrity_check` over a read-only connection: "ok" or the findings joined
/// with "; ".
pub fn integrity_check(db: &Path) -> String {
    let conn = open_ro(db).unwrap_or_else(|e| panic!("opening {}: {e}", db.display()));
    let mut stmt = conn
        .prepare("PRAGMA integrity_check")
        .expect("PRAGMA integrity_check");
    let lines: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .expect("integrity_check rows")
        .collect::<Result<_, _>>()
        .expect("integrity_check rows");
    lines.join("; ")
}

/// A column of a row as text ("" when null or absent).
pub fn s<'a>(row: &'a Value, key: &str) -> &'a str {
    row.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A column of a row as a number (None when null or absent).
pub fn f(row: &Value, key: &str) -> Option<f64> {
    row.get(key).and_then(Value::as_f64)
}

/// The stream objects of a row (empty when none).
pub fn streams(row: &Value) -> Vec<Value> {
    row.get("streams")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}
