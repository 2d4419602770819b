//! The fleet end to end, with real servers the test starts itself: `nats-server -js`
//! and a PostgreSQL cluster made with `initdb` (as `nobody` when run as root), probes
//! replaying generated busy-host captures with `[bus]` on, and `vqprobe aggregate`.
//!
//! Checked: the fleet API's totals are the sum of the probes', every record equals the
//! probe's own (plus `probe_id`), and through each fault — NATS down for 20 s while
//! calls finish, the aggregator killed with SIGKILL mid-ingest, PostgreSQL restarted,
//! two aggregators sharing the consumer — no call is lost or stored twice.

#[path = "support/busy.rs"]
mod busy;
#[path = "support/capgen.rs"]
mod capgen;
#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/http.rs"]
mod http;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use capgen::{write_capture, FileFormat, LinkLayer};
use daemon::{free_port, have_command, is_root, wait_for, ChildGuard, Daemon, Workdir, VQPROBE};
use http::Client;
use serde_json::Value;

/// Where Debian keeps the PostgreSQL server binaries (not on PATH).
fn pg_bin(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .collect();
    dirs.sort();
    dirs.into_iter()
        .rev()
        .map(|d| d.join(name))
        .find(|p| p.exists())
}

/// Runs `cmd` as `nobody` when we are root (PostgreSQL refuses to run as root).
fn as_postgres_user(bin: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    }
}

/// A PostgreSQL cluster in a temp dir on a free port.
struct Postgres {
    dir: tempfile::TempDir,
    port: u16,
    log: PathBuf,
    server: Option<ChildGuard>,
}

impl Postgres {
    fn init() -> Postgres {
        let dir = tempfile::Builder::new()
            .prefix("vqprobe-pg-")
            .tempdir()
            .expect("temp dir");
        if is_root() {
            let st = Command::new("chown")
                .args(["-R", "nobody"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(st.success());
        }
        let data = dir.path().join("data");
        let initdb = pg_bin("initdb").expect("initdb (Debian package postgresql)");
        let out = as_postgres_user(&initdb)
            .args(["-D"])
            .arg(&data)
            .args(["-U", "vqprobe", "--auth=trust", "-E", "UTF8", "--locale=C"])
            .output()
            .expect("running initdb");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let log = dir.path().join("postgres.log");
        let mut pg = Postgres {
            dir,
            port: free_port(),
            log,
            server: None,
        };
        pg.start();
        pg
    }

    fn url(&self) -> String {
        format!("postgres://vqprobe@127.0.0.1:{}/postgres", self.port)
    }

    fn start(&mut self) {
        let postgres = pg_bin("postgres").expect("postgres binary");
        let child = as_postgres_user(&postgres)
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-p", &self.port.to_string(), "-h", "127.0.0.1", "-k"])
            .arg(self.dir.path())
            .args(["-c", "fsync=off", "-c", "max_connections=50"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&self.log).expect("pg log"))
            .spawn()
            .expect("starting postgres");
        self.server = Some(ChildGuard::new("postgres", child));
        let port = self.port;
        assert!(
            wait_for(Duration::from_secs(30), || {
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            }),
            "postgres did not start: {}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// Fast shutdown (SIGINT), as `pg_ctl stop -m fast` does.
    fn stop(&mut self) {
        if let Some(mut s) = self.server.take() {
            // The postmaster itself (runuser does not pass SIGINT on).
            let pid = std::fs::read_to_string(self.dir.path().join("data/postmaster.pid"))
                .ok()
                .and_then(|t| t.lines().next()?.trim().parse::<u32>().ok())
                .unwrap_or(s.pid());
            let sent = daemon::send_signal(pid, "INT");
            assert!(
                s.wait(Duration::from_secs(30)).is_some(),
                "postgres (pid {pid}, signal sent: {sent}) did not stop: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

/// `nats-server -js` on a free port with its store in a temp dir.
struct Nats {
    dir: tempfile::TempDir,
    port: u16,
    server: Option<ChildGuard>,
}

impl Nats {
    fn start_new() -> Nats {
        let mut n = Nats {
            dir: tempfile::tempdir().expect("temp dir"),
            port: free_port(),
            server: None,
        };
        n.start();
        n
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn start(&mut self) {
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(self.dir.path().join("nats.log")).expect("nats log"))
            .spawn()
            .expect("starting nats-server");
        self.server = Some(ChildGuard::new("nats-server", child));
        let port = self.port;
        assert!(
            wait_for(Duration::from_secs(15), || {
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            }),
            "nats-server did not start"
        );
    }

    fn stop(&mut self) {
        if let Some(mut s) = self.server.take() {
            assert!(s.terminate(Duration::from_secs(15)).is_some());
        }
    }
}

/// `vqprobe aggregate` on a free port.
struct Aggregator {
    guard: ChildGuard,
    api: Client,
    stderr: PathBuf,
}

impl Aggregator {
    fn spawn(work: &Workdir, nats: &Nats, pg: &Postgres, name: &str) -> Aggregator {
        let listen = format!("127.0.0.1:{}", free_port());
        let stderr = work.path().join(format!("{name}.stderr"));
        let child = Command::new(VQPROBE)
            .args(["aggregate", "--nats", &nats.url(), "--postgres", &pg.url()])
            .args(["--listen", &listen])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr).expect("log"))
            .spawn()
            .expect("spawning vqprobe aggregate");
        let api = Client::new(&format!("http://{listen}"), None);
        let a = Aggregator {
            guard: ChildGuard::new(name, child),
            api,
            stderr,
        };
        assert!(
            wait_for(Duration::from_secs(20), || a
                .api
                .try_req("GET", "/healthz", None, &[])
                .is_ok()),
            "aggregate did not start: {}",
            std::fs::read_to_string(&a.stderr).unwrap_or_default()
        );
        a
    }

    fn metric(&self, name: &str) -> f64 {
        metric(&self.api, name)
    }
}

fn metric(api: &Client, name: &str) -> f64 {
    let text = api.get("/metrics").text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

/// Calls a probe's (or the fleet's) API lists, optionally for one probe.
fn total(api: &Client, probe: Option<&str>) -> u64 {
    let q = probe.map_or(String::new(), |p| format!("&probe_id={p}"));
    match api.try_req("GET", &format!("/v1/calls?page_size=1{q}"), None, &[]) {
        Ok(r) if r.status == 200 => r.json()["total"].as_u64().unwrap_or(0),
        _ => 0,
    }
}

/// Every call id of a probe's own API.
fn call_ids(api: &Client) -> Vec<String> {
    let mut ids = Vec::new();
    for page in 1.. {
        let v = api.get_json(&format!("/v1/calls?page_size=100&page={page}"));
        let data = v["data"].as_array().cloned().unwrap_or_default();
        if data.is_empty() {
            break;
        }
        ids.extend(
            data.iter()
                .filter_map(|c| c["call_id"].as_str().map(String::from)),
        );
    }
    ids
}

/// A probe replaying a generated busy capture with the bus on; waits until every call
/// of the capture is finished in its own store.
fn probe(work: &Workdir, nats: &Nats, id: &str, calls: usize, seed: u64) -> (Daemon, Client) {
    let gen = busy::generate(calls, 40, seed);
    let pcap = work.path().join(format!("{id}.pcap"));
    write_capture(
        &pcap,
        FileFormat::PcapMicros,
        LinkLayer::Ethernet,
        &gen.events,
    )
    .expect("writing capture");
    let cfg = format!(
        "[capture]\nlocal_networks = [\"10.0.0.0/8\"]\n[bus]\nnats_url = \"{}\"\nprobe_id = \"{id}\"\n",
        nats.url()
    );
    let db = work.path().join(format!("{id}.db"));
    let pcap_s = pcap.to_string_lossy().to_string();
    let d = Daemon::spawn(
        work,
        &db,
        &cfg,
        &["--replay", &pcap_s, "--speed", "0", "--rebase-time"],
    );
    let api = Client::new(&d.base, None);
    let finished = |api: &Client| {
        api.try_req("GET", "/v1/calls?status=in_progress&page_size=1", None, &[])
            .ok()
            .filter(|r| r.status == 200)
            .map(|r| r.json()["total"].as_u64() == Some(0))
            .unwrap_or(false)
            && total(api, None) == gen.truth.len() as u64
    };
    assert!(
        wait_for(Duration::from_secs(90), || finished(&api)),
        "probe {id}: calls not all finished: {} of {}; {}",
        total(&api, None),
        gen.truth.len(),
        d.stderr()
    );
    (d, api)
}

/// Every record of the probe equals the fleet's record of it (which adds `probe_id`).
fn records_equal(probe_api: &Client, fleet: &Client, id: &str) -> usize {
    let ids = call_ids(probe_api);
    for call in &ids {
        let mine = probe_api.get_json(&format!("/v1/calls/{call}"));
        let mut theirs = fleet.get_json(&format!("/v1/calls/{call}?probe_id={id}"));
        assert_eq!(theirs["probe_id"], Value::from(id));
        theirs.as_object_mut().map(|o| o.remove("probe_id"));
        assert_eq!(mine, theirs, "call {call} of {id}");
    }
    ids.len()
}

fn wait_fleet(fleet: &Client, id: &str, want: u64, secs: u64, work: &Workdir) -> Duration {
    let t0 = Instant::now();
    if !wait_for(Duration::from_secs(secs), || total(fleet, Some(id)) == want) {
        // What the processes said, for the failure message.
        let mut logs = String::new();
        if let Ok(rd) = std::fs::read_dir(work.path()) {
            for e in rd.flatten() {
                if e.path().extension().is_some_and(|x| x == "stderr") {
                    let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(15).collect();
                    logs += &format!(
                        "\n--- {}:\n{}",
                        e.path().display(),
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    );
                }
            }
        }
        panic!(
            "fleet has {} of {want} calls of {id}{logs}",
            total(fleet, Some(id))
        );
    }
    t0.elapsed()
}

#[test]
fn fleet_sums_probes_and_loses_nothing_through_faults() {
    for cmd in ["nats-server", "runuser"] {
        assert!(
            have_command(cmd),
            "{cmd} is needed (scripts/install-deps.sh)"
        );
    }
    let work = Workdir::new();
    let mut pg = Postgres::init();
    let mut nats = Nats::start_new();
    let mut agg = Aggregator::spawn(&work, &nats, &pg, "aggregate-1");
    let fleet = agg.api.clone();

    // Two probes, different captures, one NATS, one aggregator.
    let (_pa, a) = probe(&work, &nats, "probe-a", 300, 1);
    let na = total(&a, None);
    let t = wait_fleet(&fleet, "probe-a", na, 60, &work);
    eprintln!("probe-a: {na} calls, in the fleet {t:?} after the probe had them");

    // NATS down for 20 s while probe-b's calls finish.
    nats.stop();
    let down = Instant::now();
    let (_pb, b) = probe(&work, &nats, "probe-b", 300, 2);
    let nb = total(&b, None);
    let depth = metric(&b, "vqprobe_bus_outbox_depth");
    assert!(
        depth > 0.0,
        "the outbox holds probe-b's calls while NATS is down"
    );
    std::thread::sleep(Duration::from_secs(20).saturating_sub(down.elapsed()));
    eprintln!("NATS down {:?}; probe-b outbox {depth}", down.elapsed());
    nats.start();
    let t = wait_fleet(&fleet, "probe-b", nb, 90, &work);
    eprintln!("NATS back: probe-b's {nb} calls in the fleet after {t:?}");
    assert_eq!(metric(&b, "vqprobe_bus_outbox_depth"), 0.0);
    assert!(metric(&b, "vqprobe_bus_errors_total") > 0.0);

    // Totals: the fleet's are the sum of the probes'.
    assert_eq!(total(&fleet, None), na + nb);
    let sa = a.get_json("/v1/analytics?days=7");
    let sb = b.get_json("/v1/analytics?days=7");
    let sf = fleet.get_json("/v1/analytics?days=7");
    assert_eq!(
        sf["total_calls"].as_u64(),
        Some(sa["total_calls"].as_u64().unwrap() + sb["total_calls"].as_u64().unwrap())
    );
    let fa = fleet.get_json("/v1/analytics?days=7&probe_id=probe-a");
    assert_eq!(fa, sa, "fleet summary for probe-a equals probe-a's own");
    let ma = a.get_json("/v1/analytics/mno?days=7");
    let fma = fleet.get_json("/v1/analytics/mno?days=7&probe_id=probe-a");
    assert_eq!(fma, ma, "per-MNO table for probe-a");
    let q = r#"{"queries":[{"name":"q","table":"calls","groupBy":["probe_id","status"],
        "operations":[{"operation":"count","column":"call_id"},{"operation":"p50","column":"mos"}]}]}"#;
    let r = fleet.req(
        "POST",
        "/v1/analytics",
        Some(("application/json", q.as_bytes())),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let rows = r.json()[0]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut by_probe: BTreeMap<String, u64> = BTreeMap::new();
    for row in &rows {
        *by_probe
            .entry(row["probe_id"].as_str().unwrap_or("").to_string())
            .or_default() += row["count_call_id"].as_u64().unwrap_or(0);
    }
    assert_eq!(by_probe.get("probe-a"), Some(&na));
    assert_eq!(by_probe.get("probe-b"), Some(&nb));
    // A probe refuses the fleet-only column.
    let r = a.req(
        "POST",
        "/v1/analytics",
        Some(("application/json", q.as_bytes())),
    );
    assert_eq!(r.status, 400);
    // Every record equals the probe's own.
    let checked = records_equal(&a, &fleet, "probe-a") + records_equal(&b, &fleet, "probe-b");
    eprintln!("records equal to the probes' own: {checked}");

    // The aggregator killed with SIGKILL mid-ingest, then restarted.
    agg.guard.kill9();
    let (_pc, c) = probe(&work, &nats, "probe-c", 3000, 3);
    let nc = total(&c, None);
    assert!(wait_for(Duration::from_secs(30), || metric(
        &c,
        "vqprobe_bus_outbox_depth"
    ) == 0.0));
    let agg2 = Aggregator::spawn(&work, &nats, &pg, "aggregate-1b");
    let mut seen = 0;
    assert!(wait_for(Duration::from_secs(60), || {
        seen = total(&agg2.api, Some("probe-c"));
        seen > 0
    }));
    let mut agg2 = agg2;
    agg2.guard.kill9();
    eprintln!("aggregate killed with {seen} of {nc} probe-c calls stored");
    let agg = Aggregator::spawn(&work, &nats, &pg, "aggregate-1c");
    let fleet = agg.api.clone();
    let t = wait_fleet(&fleet, "probe-c", nc, 90, &work);
    eprintln!("aggregate restarted: probe-c {nc} of {nc} in the fleet after {t:?}");
    assert_eq!(total(&fleet, None), na + nb + nc);

    // PostgreSQL restarted while calls arrive.
    pg.stop();
    let (_pd, d) = probe(&work, &nats, "probe-d", 300, 4);
    let nd = total(&d, None);
    std::thread::sleep(Duration::from_secs(3));
    assert!(agg.metric("vqprobe_aggregate_errors_total") > 0.0);
    pg.start();
    let t = wait_fleet(&fleet, "probe-d", nd, 90, &work);
    eprintln!("PostgreSQL back: probe-d's {nd} calls after {t:?}");

    // Two aggregators on the one durable consumer.
    let other = Aggregator::spawn(&work, &nats, &pg, "aggregate-2");
    let (w1, w2) = (
        agg.metric("vqprobe_aggregate_written_records_total"),
        other.metric("vqprobe_aggregate_written_records_total"),
    );
    let (_pe, e) = probe(&work, &nats, "probe-e", 3000, 5);
    let ne = total(&e, None);
    wait_fleet(&fleet, "probe-e", ne, 90, &work);
    let (d1, d2) = (
        agg.metric("vqprobe_aggregate_written_records_total") - w1,
        other.metric("vqprobe_aggregate_written_records_total") - w2,
    );
    eprintln!("two aggregators: {d1} + {d2} records written for probe-e's {ne} calls");
    assert!(
        d1 > 0.0 && d2 > 0.0,
        "both aggregators took part: {d1} {d2}"
    );
    assert_eq!(total(&fleet, None), na + nb + nc + nd + ne);
    assert_eq!(total(&other.api, None), na + nb + nc + nd + ne);
    let checked = records_equal(&e, &fleet, "probe-e") + records_equal(&c, &fleet, "probe-c");
    eprintln!(
        "fleet totals {} = {na} + {nb} + {nc} + {nd} + {ne}; {checked} more records equal",
        total(&fleet, None)
    );
}
