//! Kamailio as a real Homer peer for the HEP tests: started from a config written to a
//! temporary directory, listening on 127.0.0.1 ports the test picked, killed by PID.
//!
//! The capture-server tables: Debian's `kamailio-sqlite-modules` and
//! `kamailio-postgres-modules` ship no `sipcapture` schema (only `sip_trace` for the
//! `siptrace` module; Homer's own schema lives outside Kamailio), so the tables are
//! created here with exactly the columns the installed `sipcapture` module writes:
//! `sip_capture_store()` inserts the 44 columns of [`SIP_CAPTURE_COLUMNS`] for SIP
//! (its default column names), and `receive_logging_json_msg()` the 12 of
//! [`LOG_COLUMNS`] into `rtcp_capture` (HEP type 5) and `report_capture` (types 32 and
//! 99). [`check_module_columns`] holds the list to the module binary's strings.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::daemon::{wait_for, ChildGuard};

/// The module directory of the installed kamailio package: Debian's multiarch one for
/// this architecture, else the plain or lib64 layouts other distributions use.
pub fn modules() -> PathBuf {
    let candidates = [
        format!(
            "/usr/lib/{}-linux-gnu/kamailio/modules",
            std::env::consts::ARCH
        ),
        "/usr/lib/kamailio/modules".to_string(),
        "/usr/lib64/kamailio/modules".to_string(),
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|d| d.join("sl.so").is_file() || d.join("xlog.so").is_file())
        .unwrap_or_else(|| PathBuf::from(&candidates[0]))
}

/// Columns `sipcapture` writes for a SIP message (Kamailio 5.x `sip_capture_store`).
pub const SIP_CAPTURE_COLUMNS: &[&str] = &[
    "date",
    "micro_ts",
    "method",
    "reply_reason",
    "ruri",
    "ruri_user",
    "from_user",
    "from_tag",
    "to_user",
    "to_tag",
    "pid_user",
    "contact_user",
    "auth_user",
    "callid",
    "callid_aleg",
    "via_1",
    "via_1_branch",
    "cseq",
    "reason",
    "content_type",
    "auth",
    "user_agent",
    "source_ip",
    "source_port",
    "destination_ip",
    "destination_port",
    "contact_ip",
    "contact_port",
    "originator_ip",
    "originator_port",
    "proto",
    "family",
    "rtp_stat",
    "type",
    "node",
    "correlation_id",
    "from_domain",
    "to_domain",
    "ruri_domain",
    "diversion",
    "msg",
    "custom_field1",
    "custom_field2",
    "custom_field3",
];

/// Columns `sipcapture` writes for RTCP, reports and logs.
pub const LOG_COLUMNS: &[&str] = &[
    "date",
    "micro_ts",
    "correlation_id",
    "source_ip",
    "source_port",
    "destination_ip",
    "destination_port",
    "proto",
    "family",
    "type",
    "node",
    "msg",
];

/// Whether Kamailio and the modules a test needs are installed.
pub fn available(needed: &[&str]) -> bool {
    crate::daemon::have_command("kamailio")
        && needed
            .iter()
            .all(|m| modules().join(format!("{m}.so")).is_file())
}

/// Every column name is a string in the installed module (the defaults of its
/// `*_column` parameters), so the tables match what it inserts.
pub fn check_module_columns() {
    let bin = std::fs::read(modules().join("sipcapture.so")).expect("sipcapture.so");
    let has = |name: &str| {
        let mut needle = name.as_bytes().to_vec();
        needle.push(0);
        bin.windows(needle.len()).any(|w| w == needle.as_slice())
    };
    for c in SIP_CAPTURE_COLUMNS.iter().chain(LOG_COLUMNS) {
        assert!(has(c), "column {c} is not a string of sipcapture.so");
    }
}

/// Creates the capture tables in a new SQLite file.
pub fn create_capture_db(path: &Path) {
    let conn = rusqlite::Connection::open(path).expect("homer db");
    let cols = |list: &[&str]| {
        list.iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut sql = format!(
        "CREATE TABLE sip_capture (id INTEGER PRIMARY KEY AUTOINCREMENT, {});",
        cols(SIP_CAPTURE_COLUMNS)
    );
    for t in ["rtcp_capture", "report_capture", "logs_capture"] {
        sql.push_str(&format!(
            "CREATE TABLE {t} (id INTEGER PRIMARY KEY AUTOINCREMENT, {});",
            cols(LOG_COLUMNS)
        ));
    }
    conn.execute_batch(&sql).expect("creating capture tables");
}

/// A running Kamailio.
pub struct Kamailio {
    guard: ChildGuard,
    log: PathBuf,
}

impl Kamailio {
    /// Writes `cfg` to `dir/name.cfg` and runs `kamailio -DD -E` on it (foreground, log
    /// to stderr, which goes to `dir/name.log`); waits until it listens.
    pub fn start(dir: &Path, name: &str, cfg: &str) -> Kamailio {
        let cfg_path = dir.join(format!("{name}.cfg"));
        std::fs::write(&cfg_path, cfg).expect("kamailio config");
        let log = dir.join(format!("{name}.log"));
        let child = Command::new("kamailio")
            .arg("-f")
            .arg(&cfg_path)
            .args(["-DD", "-E", "-w"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("kamailio log"))
            .spawn()
            .expect("spawning kamailio");
        let mut k = Kamailio {
            guard: ChildGuard::new("kamailio", child),
            log,
        };
        let ready = wait_for(std::time::Duration::from_secs(10), || {
            k.log().contains("main(): processes") || !k.guard.is_running()
        });
        // The listeners come up right after the process count is logged.
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(
            ready && k.guard.is_running(),
            "kamailio did not start:\n{}",
            k.log()
        );
        k
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Stops it (SIGTERM to its main process; its children follow).
    pub fn stop(&mut self) {
        let _ = self.guard.terminate(std::time::Duration::from_secs(5));
    }
}
