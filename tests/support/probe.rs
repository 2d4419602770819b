//! Test-only launcher for `vqprobe run` when a test needs what
//! [`crate::daemon::Daemon::spawn`] does not offer: its own `--listen` (a non-loopback
//! address), environment variables (`VQPROBE_API_KEYS`), and the API's base URL.
//!
//! The process is held by a [`ChildGuard`] (SIGTERM, then SIGKILL on drop). The
//! environment variable `VQPROBE_API_KEYS` is removed from the child unless the test
//! sets it, so a developer's shell cannot change what a test sees.
//!
//! Include it after the daemon helpers:
//! `#[path = "support/daemon.rs"] mod daemon;` and
//! `#[path = "support/probe.rs"] mod probe;`.
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::daemon::{wait_for, ChildGuard, Workdir, VQPROBE};

static RUNS: AtomicUsize = AtomicUsize::new(0);

/// A running `vqprobe run`.
pub struct Probe {
    guard: ChildGuard,
    /// Its stderr log.
    pub stderr_path: PathBuf,
    /// The address it was told to listen on.
    pub listen: String,
    /// When it was spawned.
    pub started: Instant,
}

impl Probe {
    /// Spawns `vqprobe run --config <cfg> --db <db> --listen <listen> ARGS…` with `envs`
    /// added to the environment.
    pub fn spawn(
        work: &Workdir,
        config_toml: &str,
        db: &Path,
        listen: &str,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Probe {
        let n = RUNS.fetch_add(1, Ordering::SeqCst);
        let config = work.write(&format!("probe-{n}.toml"), config_toml);
        let stderr_path = work.path().join(format!("probe-{n}.stderr"));
        let stdout_path = work.path().join(format!("probe-{n}.stdout"));
        let mut cmd = Command::new(VQPROBE);
        cmd.arg("run")
            .arg("--config")
            .arg(&config)
            .arg("--db")
            .arg(db)
            .args(["--listen", listen])
            .args(args)
            .env_remove("VQPROBE_API_KEYS")
            .current_dir(work.path())
            .stdin(Stdio::null())
            .stdout(File::create(&stdout_path).expect("creating stdout log"))
            .stderr(File::create(&stderr_path).expect("creating stderr log"));
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {VQPROBE}: {e}"));
        Probe {
            guard: ChildGuard::new("vqprobe", child),
            stderr_path,
            listen: listen.to_string(),
            started: Instant::now(),
        }
    }

    /// `http://<listen>`.
    pub fn base(&self) -> String {
        format!("http://{}", self.listen)
    }

    /// Everything it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Whether it still runs.
    pub fn is_running(&mut self) -> bool {
        self.guard.is_running()
    }

    /// Waits until it says the API is up ("api http://"), panicking with its stderr if
    /// it exits or `timeout` passes first.
    pub fn wait_api(&mut self, timeout: Duration) {
        let ok = wait_for(timeout, || {
            self.stderr().contains("api http://") || !self.guard.is_running()
        });
        assert!(
            ok && self.stderr().contains("api http://"),
            "vqprobe did not start its API within {timeout:?} (running: {}); stderr:\n{}",
            self.guard.is_running(),
            self.stderr()
        );
    }

    /// Waits up to `timeout` for it to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.guard.wait(timeout)
    }

    /// SIGTERM and wait (bounded); panics if it does not exit.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        match self.guard.terminate(timeout) {
            Some((st, _)) => st,
            None => {
                self.guard.kill9();
                panic!(
                    "vqprobe did not exit within {timeout:?} of SIGTERM; stderr:\n{}",
                    self.stderr()
                );
            }
        }
    }
}
