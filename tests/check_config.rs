//! `check-config` refuses what `run` refuses, with the same message: for each config
//! `run` stops on (a non-loopback listen without keys, a capture interface that does
//! not exist, a database path that is a directory or whose directory cannot be
//! created, a bad key hash), `run` exits non-zero before starting and `check-config`
//! exits non-zero naming the same problem; a good config passes both ways.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const VQPROBE: &str = env!("CARGO_BIN_EXE_vqprobe");

/// Runs `vqprobe ARGS…` with a bound on its time (a `run` that unexpectedly starts is
/// killed); the output and whether it was killed.
fn run_bounded(args: &[&str], limit: Duration) -> (Output, bool) {
    let mut child = Command::new(VQPROBE)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vqprobe");
    let started = Instant::now();
    let mut killed = false;
    while child.try_wait().expect("try_wait").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            killed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (child.wait_with_output().expect("output"), killed)
}

/// The problem lines `check-config` lists under "`run` would refuse this config:".
fn problems(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .skip_while(|l| !l.contains("`run` would refuse this config"))
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn check_case(dir: &Path, name: &str, toml: &str, want: &str) {
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(&cfg, toml).expect("write config");
    let cfg = cfg.to_str().expect("utf-8 path");

    let (check, _) = run_bounded(&["check-config", cfg], Duration::from_secs(20));
    let check_err = String::from_utf8_lossy(&check.stderr).to_string();
    assert!(
        !check.status.success(),
        "{name}: check-config accepted it:\n{check_err}"
    );
    let listed = problems(&check_err);
    assert!(
        listed.iter().any(|p| p.contains(want)),
        "{name}: check-config does not name {want:?}:\n{check_err}"
    );

    let (run, killed) = run_bounded(&["run", "--config", cfg], Duration::from_secs(20));
    let run_err = String::from_utf8_lossy(&run.stderr).to_string();
    assert!(
        !killed,
        "{name}: run started instead of refusing:\n{run_err}"
    );
    assert!(!run.status.success(), "{name}: run succeeded:\n{run_err}");
    // The same messages, word for word.
    for p in &listed {
        assert!(
            run_err.contains(p.as_str()),
            "{name}: run's error does not carry check-config's {p:?}:\n{run_err}"
        );
    }
}

#[test]
fn check_config_refuses_what_run_refuses() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let db_dir = d.join("a-directory");
    std::fs::create_dir_all(&db_dir).expect("mkdir");
    let file = d.join("a-file");
    std::fs::write(&file, "x").expect("write");
    let port = 20_000 + std::process::id() % 20_000;
    let pid = std::process::id();
    let db = d.join("ok.db");
    let db = db.display();
    let cases = [
        (
            "public-listen-without-keys",
            format!("[api]\nlisten = \"0.0.0.0:{port}\"\n[store]\npath = \"{db}\"\n"),
            "0.0.0.0",
        ),
        (
            "missing-interface",
            format!("[capture]\ninterfaces = [\"nosuch{pid}\"]\n[store]\npath = \"{db}\"\n"),
            &*format!("nosuch{pid}"),
        ),
        (
            "db-path-is-a-directory",
            format!("[store]\npath = \"{}\"\n", db_dir.display()),
            &*db_dir.display().to_string(),
        ),
        (
            "db-directory-cannot-be-created",
            format!("[store]\npath = \"{}/sub/vqprobe.db\"\n", file.display()),
            &*file.display().to_string(),
        ),
    ]
    .map(|(n, t, w)| (n, t, w.to_string()));
    for (name, toml, want) in &cases {
        check_case(d, name, toml, want);
    }
}

#[test]
fn a_good_config_passes_check_config() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = dir.path().join("ok.toml");
    let db = dir.path().join("data/vqprobe.db");
    std::fs::write(
        &cfg,
        format!(
            "[api]\nlisten = \"127.0.0.1:8080\"\n[store]\npath = \"{}\"\n",
            db.display()
        ),
    )
    .expect("write config");
    let (out, _) = run_bounded(
        &["check-config", cfg.to_str().expect("utf-8")],
        Duration::from_secs(20),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "check-config refused a good config:\n{err}"
    );
    assert!(
        err.contains("not checked:"),
        "says what it could not check:\n{err}"
    );
}
