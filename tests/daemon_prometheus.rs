//! A real Prometheus scraping a real `vqprobe run`, and every Grafana dashboard query
//! answered from what it scraped.
//!
//! The daemon replays a generated capture at `--speed 1` (rebased to now): a 3 s
//! lead-in, then 8 calls starting 1 s apart with 3–4 s of media, so calls end one by
//! one while a private Prometheus (free port, temporary storage, 1 s scrapes) started
//! right after the daemon is already scraping. Counters and histograms therefore grow
//! across scrapes and `rate()`/`increase()`/`histogram_quantile()` have something to
//! measure. Checked:
//!
//! * `promtool check metrics` prints nothing for the daemon's `/metrics`, both before
//!   any call and after all of them;
//! * `sum(vqprobe_calls_total)` in Prometheus equals the number of calls, and the
//!   per-status split matches the calls the API lists;
//! * every `expr` of `config/grafana/vqprobe.json` (with `$__rate_interval` → `1m` and
//!   the template variables → `.*`, as tests/prometheus.rs substitutes them) succeeds
//!   as an instant query with at least one finite value, and every template variable
//!   query lists values.
//!
//! Needs Debian's `prometheus` package (`prometheus` and `promtool` on PATH); without
//! it the test says so and passes.

#[path = "support/capgen.rs"]
mod capgen;

#[path = "support/callmix.rs"]
mod callmix;

#[path = "support/daemon.rs"]
mod daemon;

#[path = "support/http.rs"]
mod http;

#[path = "support/probe.rs"]
mod probe;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use daemon::{have_command, Workdir};
use http::Client;
use probe::Probe;
use serde_json::Value;

const CALLS: usize = 8;

fn tools_missing() -> bool {
    if have_command("promtool") && have_command("prometheus") {
        return false;
    }
    eprintln!(
        "SKIPPED: promtool/prometheus not found on PATH \
         (apt-get install prometheus provides both)"
    );
    true
}

fn promtool_check(text: &str, dir: &Path, name: &str) {
    let file = dir.join(name);
    std::fs::write(&file, text).expect("writing exposition file");
    let input = std::fs::File::open(&file).expect("reopening exposition file");
    let out = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(input)
        .output()
        .expect("running promtool");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.trim().is_empty() && stderr.trim().is_empty(),
        "promtool check metrics on {name}: {}\nstdout: {stdout}\nstderr: {stderr}\n---\n{text}",
        out.status
    );
}

/// A private Prometheus server; killed (and reaped) when dropped.
struct PromServer {
    child: Child,
    base: String,
    log: PathBuf,
}

impl PromServer {
    fn start(dir: &Path, target: &str) -> PromServer {
        let port = daemon::free_port();
        let cfg = dir.join("prom.yml");
        std::fs::write(
            &cfg,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: vqprobe\n    metrics_path: /metrics\n    \
                 static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("writing prom.yml");
        let log = dir.join("prometheus.log");
        let log_file = std::fs::File::create(&log).expect("creating prometheus log");
        let log_err = log_file.try_clone().expect("cloning log handle");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .expect("starting prometheus");
        PromServer {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for PromServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs an instant query; the whole JSON reply (errors included).
fn query(prom: &Client, expr: &str) -> Result<Value, String> {
    let body = format!("query={}", http::enc(expr));
    let r = prom.try_req(
        "POST",
        "/api/v1/query",
        Some(("application/x-www-form-urlencoded", body.as_bytes())),
        &[],
    )?;
    serde_json::from_slice(&r.body).map_err(|e| format!("{e}: {}", r.text()))
}

fn results(v: &Value) -> &[Value] {
    v["data"]["result"].as_array().map_or(&[], Vec::as_slice)
}

/// Sample values of an instant-vector (or scalar) reply.
fn values(v: &Value) -> Vec<f64> {
    let parse = |s: &Value| s[1].as_str().and_then(|x| x.parse::<f64>().ok());
    match v["data"]["resultType"].as_str() {
        Some("scalar") => parse(&v["data"]["result"]).into_iter().collect(),
        _ => results(v)
            .iter()
            .filter_map(|r| parse(&r["value"]))
            .collect(),
    }
}

/// Polls `expr` until `done` holds for its values, up to `limit`.
fn wait_query(
    prom: &Client,
    server: &PromServer,
    expr: &str,
    limit: Duration,
    done: impl Fn(&[f64]) -> bool,
) -> Vec<f64> {
    let start = Instant::now();
    loop {
        let last = match query(prom, expr) {
            Ok(v) => {
                let vals = values(&v);
                if done(&vals) {
                    return vals;
                }
                v.to_string()
            }
            Err(e) => e,
        };
        assert!(
            start.elapsed() < limit,
            "{expr}: no acceptable answer within {limit:?}; last: {last}\nprometheus log:\n{}",
            server.log_tail()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Every `expr` of every panel target with its panel's title, rows included.
fn dashboard_exprs(v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(o) => {
            let title = o.get("title").and_then(Value::as_str).unwrap_or("");
            if let Some(targets) = o.get("targets").and_then(Value::as_array) {
                for t in targets {
                    if let Some(e) = t.get("expr").and_then(Value::as_str) {
                        out.push((title.to_string(), e.to_string()));
                    }
                }
            }
            for (k, child) in o {
                if k != "targets" {
                    dashboard_exprs(child, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|c| dashboard_exprs(c, out)),
        _ => {}
    }
}

/// Grafana's built-in and template variables as Grafana substitutes them with "All"
/// selected (`allValue` `.*`), as in tests/prometheus.rs.
fn substitute(expr: &str, vars: &[String]) -> String {
    let mut e = expr
        .replace("${__rate_interval}", "1m")
        .replace("$__rate_interval", "1m")
        .replace("${__interval}", "15s")
        .replace("$__interval", "15s")
        .replace("${__range}", "5m")
        .replace("$__range", "5m");
    let mut vars = vars.to_vec();
    vars.sort_by_key(|v| std::cmp::Reverse(v.len()));
    for v in &vars {
        e = e
            .replace(&format!("${{{v}}}"), ".*")
            .replace(&format!("${v}"), ".*");
    }
    e
}

fn load_dashboard() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/grafana/vqprobe.json");
    let text = std::fs::read_to_string(&path).expect("reading the Grafana dashboard");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

fn now_ns() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_nanos(),
    )
    .expect("fits")
}

#[test]
fn prometheus_scrapes_the_daemon_and_answers_every_dashboard_query() {
    if tools_missing() {
        return;
    }
    let t0 = Instant::now();
    let work = Workdir::new();
    let cap = work.path().join("staggered.pcap");
    let mix = callmix::staggered_mix(CALLS);
    let base = now_ns() / 1_000_000 * 1_000_000;
    callmix::write_mix(&cap, base, capgen::secs(3), &mix);
    let cap_s = cap.to_str().expect("utf-8");

    let listen = format!("127.0.0.1:{}", daemon::free_port());
    let config = format!(
        "[capture]\nlocal_networks = [\"{}\"]\n\n[calls]\nrtp_timeout_s = 2\n",
        callmix::LOCAL_NET
    );
    let mut vq = Probe::spawn(
        &work,
        &config,
        &work.db(),
        &listen,
        &["--replay", cap_s, "--speed", "1", "--rebase-time"],
        &[],
    );
    vq.wait_api(Duration::from_secs(5));
    let api = Client::new(&vq.base(), None);
    let prom_dir = work.path().join("prom");
    std::fs::create_dir_all(&prom_dir).expect("prometheus dir");
    let server = PromServer::start(&prom_dir, &listen);
    let prom = Client::new(&server.base, None);

    // The exposition before any call has ended lints clean too.
    let early = api.get("/metrics");
    assert_eq!(early.status, 200);
    assert!(
        !early.text().contains("vqprobe_calls_total{"),
        "no call can have ended during the lead-in"
    );
    promtool_check(&early.text(), work.path(), "early.prom");

    // Prometheus scrapes the daemon.
    wait_query(
        &prom,
        &server,
        "up{job=\"vqprobe\"}",
        Duration::from_secs(20),
        |v| v == [1.0],
    );
    let scraping_after = t0.elapsed();

    // All calls end (the last about 17 s into the replay).
    let mut listing = Value::Null;
    let done = daemon::wait_for(Duration::from_secs(30), || {
        let r = api.get("/v1/calls?page_size=100");
        if r.status != 200 {
            return false;
        }
        listing = r.json();
        listing["total"] == CALLS
            && listing["data"]
                .as_array()
                .is_some_and(|d| d.iter().all(|c| c["status"] != "in_progress"))
    });
    assert!(
        done,
        "not all {CALLS} calls final within 30 s; last listing: {listing}\nstderr:\n{}",
        vq.stderr()
    );
    let calls_final_after = t0.elapsed();
    let mut by_status: BTreeMap<String, f64> = BTreeMap::new();
    for c in listing["data"].as_array().into_iter().flatten() {
        *by_status
            .entry(c["status"].as_str().unwrap_or("?").to_string())
            .or_default() += 1.0;
    }
    // What the histograms must hold, from the stored records.
    let (mut n_mos, mut sum_mos, mut n_rtt, mut sum_rtt_s, mut n_streams) = (0, 0.0, 0, 0.0, 0);
    for (c, plan) in mix.iter().enumerate() {
        let id = http::enc(&plan.sip_call_id);
        let got = api.get_json(&format!("/v1/calls/{id}"));
        assert_eq!(got["status"], plan.status(), "call {c}: {got}");
        if let Some(m) = got["quality_mos"].as_f64() {
            n_mos += 1;
            sum_mos += m;
        }
        if let Some(r) = got["quality"]["rtt_ms"].as_f64() {
            n_rtt += 1;
            sum_rtt_s += r / 1000.0;
        }
        n_streams += got["streams"].as_array().map_or(0, Vec::len);
    }
    assert!(
        n_mos >= 5 && n_rtt >= 2,
        "the mix should give scores and round trips"
    );

    // The daemon's own exposition lints clean with every family populated.
    let text = api.get("/metrics").text();
    promtool_check(&text, work.path(), "final.prom");
    for family in [
        "vqprobe_calls_total{",
        "vqprobe_call_mos_bucket{",
        "vqprobe_stream_jitter_seconds_bucket{",
        "vqprobe_stream_loss_ratio_bucket{",
        "vqprobe_rtt_seconds_bucket{",
    ] {
        assert!(text.contains(family), "{family} missing from:\n{text}");
    }

    // Prometheus has every call.
    let sum = wait_query(
        &prom,
        &server,
        "sum(vqprobe_calls_total)",
        Duration::from_secs(10),
        |v| v == [CALLS as f64],
    );
    assert_eq!(sum, [CALLS as f64]);
    for (status, n) in &by_status {
        let expr = format!("sum(vqprobe_calls_total{{status=\"{status}\"}})");
        let want = *n;
        wait_query(&prom, &server, &expr, Duration::from_secs(5), |v| {
            v == [want]
        });
    }
    // The histograms hold exactly the stored calls' figures.
    let near = |want: f64| move |v: &[f64]| v.len() == 1 && (v[0] - want).abs() <= 1e-6;
    for (expr, want) in [
        ("sum(vqprobe_call_mos_count)", n_mos as f64),
        ("sum(vqprobe_call_mos_sum)", sum_mos),
        ("sum(vqprobe_rtt_seconds_count)", n_rtt as f64),
        ("sum(vqprobe_rtt_seconds_sum)", sum_rtt_s),
        ("sum(vqprobe_stream_jitter_seconds_count)", n_streams as f64),
        ("sum(vqprobe_stream_loss_ratio_count)", n_streams as f64),
    ] {
        wait_query(&prom, &server, expr, Duration::from_secs(5), near(want));
    }

    // Every dashboard expression is valid and answers with data.
    let dash = load_dashboard();
    let vars: Vec<String> = dash["templating"]["list"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter(|v| v["type"] != "datasource")
                .filter_map(|v| v["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut exprs = Vec::new();
    dashboard_exprs(&dash["panels"], &mut exprs);
    assert!(exprs.len() >= 20, "only {} expressions found", exprs.len());
    let mut failures = Vec::new();
    let mut answered = 0;
    for (title, expr) in &exprs {
        let q = substitute(expr, &vars);
        if q.contains('$') {
            failures.push(format!("{title}: unsubstituted variable in {q}"));
            continue;
        }
        match query(&prom, &q) {
            Ok(v) if v["status"] == "success" => {
                let vals = values(&v);
                if vals.is_empty() {
                    failures.push(format!("{title}: no data for {q}"));
                } else if !vals.iter().any(|x| x.is_finite()) {
                    failures.push(format!("{title}: only NaN/Inf {vals:?} for {q}"));
                } else {
                    answered += 1;
                    eprintln!("ok   {title}: {q} -> {vals:?}");
                }
            }
            Ok(v) => failures.push(format!("{title}: {q} -> {v}")),
            Err(e) => failures.push(format!("{title}: {q} -> {e}")),
        }
    }
    for v in dash["templating"]["list"].as_array().into_iter().flatten() {
        let Some(def) = v["definition"].as_str() else {
            continue;
        };
        let Some((metric, label)) = def
            .strip_prefix("label_values(")
            .and_then(|s| s.strip_suffix(')'))
            .and_then(|s| s.split_once(','))
        else {
            failures.push(format!("variable {}: unexpected query {def}", v["name"]));
            continue;
        };
        let q = format!("count by ({}) ({})", label.trim(), metric.trim());
        match query(&prom, &q) {
            Ok(r) if !results(&r).is_empty() => {
                eprintln!(
                    "ok   variable {}: {q} -> {} values",
                    v["name"],
                    results(&r).len()
                )
            }
            Ok(r) => failures.push(format!("variable {}: {q} -> {r}", v["name"])),
            Err(e) => failures.push(format!("variable {}: {q} -> {e}", v["name"])),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} dashboard queries failed:\n{}\nprometheus log:\n{}",
        failures.len(),
        exprs.len(),
        failures.join("\n"),
        server.log_tail()
    );
    eprintln!(
        "daemon_prometheus: Prometheus scraping after {:.1} s, {CALLS} calls final after \
         {:.1} s, {answered} dashboard expressions answered; whole test {:.1} s",
        scraping_after.as_secs_f64(),
        calls_final_after.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    drop(server);
    drop(vq);
}
