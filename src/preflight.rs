//! What `vqprobe run` would refuse, found before anything starts: the one list of
//! start-up checks, run by `run` itself and by `check-config` (which also says what it
//! could not check without starting).

use std::path::Path;

use crate::config::Config;

/// The outcome of the checks.
#[derive(Debug, Default)]
pub struct Preflight {
    /// Problems `run` would stop on, one line each.
    pub problems: Vec<String>,
    /// What cannot be known without starting, one line each.
    pub unchecked: Vec<String>,
}

impl Preflight {
    /// Whether `run` would start.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks `cfg` (already validated for ranges and formats) against this host: keys
/// for a non-loopback listen, capture interfaces, the database path, the MNO table,
/// codec overrides. `replay`: the capture comes from a file, interfaces are unused.
pub fn check(cfg: &Config, replay: bool) -> Preflight {
    let mut p = Preflight::default();
    match vqprobe_api::KeySet::from_config(&cfg.api.key_hashes) {
        Ok(keys) => {
            if let Err(e) = vqprobe_api::check_listen(cfg.api.listen, &keys) {
                p.problems.push(e);
            }
        }
        Err(e) => p
            .problems
            .push(format!("api.key_hashes / {}: {e}", vqprobe_api::KEYS_ENV)),
    }
    if !replay {
        check_interfaces(cfg, &mut p);
    }
    check_db_path(&cfg.store.path, &mut p);
    if let Err(e) = crate::daemon::call_config(cfg) {
        let msg: Vec<String> = e.chain().map(ToString::to_string).collect();
        p.problems.push(msg.join(": "));
    }
    p.unchecked.push(format!(
        "that this process may capture (CAP_NET_RAW, or root) and that {} is free to \
         listen on: known only when `run` opens them",
        cfg.api.listen
    ));
    p
}

fn check_interfaces(cfg: &Config, p: &mut Preflight) {
    match pcap::Device::list() {
        Ok(devs) => {
            for name in &cfg.capture.interfaces {
                if name != "any" && !devs.iter().any(|d| &d.name == name) {
                    let known: Vec<&str> = devs.iter().map(|d| d.name.as_str()).collect();
                    p.problems.push(format!(
                        "capture.interfaces: no interface {name:?} on this host (there are: {})",
                        known.join(", ")
                    ));
                }
            }
        }
        Err(e) => p.unchecked.push(format!(
            "capture.interfaces: the interface list is unavailable ({e})"
        )),
    }
}

/// The database must be a file (or nothing yet) in a directory this process can
/// create files in, or one it can create.
fn check_db_path(path: &Path, p: &mut Preflight) {
    if path.is_dir() {
        p.problems.push(format!(
            "store.path {} is a directory; name the database file in it",
            path.display()
        ));
        return;
    }
    if path.exists() {
        if let Err(e) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
        {
            p.problems.push(format!(
                "store.path {} cannot be opened for writing: {e}",
                path.display()
            ));
        }
        return;
    }
    // The nearest existing ancestor must take a new entry.
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d.as_os_str().is_empty() {
            dir = Some(Path::new("."));
            break;
        }
        if d.exists() {
            break;
        }
        dir = d.parent();
    }
    let Some(dir) = dir else {
        return;
    };
    if !dir.is_dir() {
        p.problems.push(format!(
            "store.path {}: {} is not a directory",
            path.display(),
            dir.display()
        ));
        return;
    }
    let probe = dir.join(format!(".vqprobe-check-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
        }
        Err(e) => p.problems.push(format!(
            "store.path {}: cannot create files in {}: {e}",
            path.display(),
            dir.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_path_problems_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut p = Preflight::default();
        check_db_path(dir.path(), &mut p);
        assert!(p.problems[0].contains("is a directory"), "{:?}", p.problems);

        let mut p = Preflight::default();
        check_db_path(&dir.path().join("new/sub/v.db"), &mut p);
        assert!(p.ok(), "a creatable path: {:?}", p.problems);

        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").expect("write");
        let mut p = Preflight::default();
        check_db_path(&file.join("v.db"), &mut p);
        assert!(
            p.problems[0].contains("not a directory"),
            "{:?}",
            p.problems
        );
    }

    #[test]
    fn a_non_loopback_listen_without_keys_is_refused() {
        let mut cfg = Config::default();
        cfg.api.listen = "0.0.0.0:8080".parse().expect("addr");
        cfg.store.path = std::env::temp_dir().join("vqprobe-preflight-test.db");
        let p = check(&cfg, true);
        assert!(
            p.problems.iter().any(|m| m.contains("not a loopback")),
            "{:?}",
            p.problems
        );
    }
}
