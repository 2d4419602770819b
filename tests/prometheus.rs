//! The exposition and the Grafana dashboard against the real Prometheus tools:
//! `promtool check metrics` lints what `Metrics::render` produces, and a private
//! Prometheus server scrapes it and answers every PromQL expression of
//! `config/grafana/vqprobe.json` with data.
//!
//! Needs Debian's `prometheus` package (`promtool` and `prometheus` on PATH); without
//! it the tests say so and pass. The scrape target is a small std-only HTTP server in
//! this file that renders a shared `Metrics` on each request, with a hand-built
//! `Runtime` standing in for the daemon's.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use vqprobe::daemon::Runtime;
use vqprobe::metrics::Metrics;
use vqprobe::pipeline::{SourceStats, WorkerSnapshot};
use vqprobe::record::{
    CallRecord, CallStatus, Direction, EndedReason, QualityRecord, StreamRecord,
};

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn tools_missing() -> bool {
    if have("promtool") && have("prometheus") {
        return false;
    }
    eprintln!(
        "skipping: promtool/prometheus not found on PATH \
         (apt-get install prometheus provides both)"
    );
    true
}

// ---------------------------------------------------------------------------
// Call records

const MNOS: [&str; 4] = ["Vodafone UK", "EE", "unknown", "Safaricom"];
/// The quote and backslash make sure label escaping survives the real parser.
const AGENTS: [Option<&str>; 4] = [
    Some("agent-1"),
    Some("agent-2"),
    None,
    Some("agent \"q\" \\x"),
];

fn stream(direction: Direction, jitter_ms: f64, expected: u64, lost: u64) -> StreamRecord {
    StreamRecord {
        direction,
        src: "192.0.2.10:40000".into(),
        dst: "198.51.100.20:50000".into(),
        ssrc: "0x0badcafe".into(),
        payload_type: Some(8),
        codec: Some("PCMA".into()),
        clock_rate: Some(8000),
        packets: expected - lost,
        expected,
        lost,
        duplicates: 0,
        out_of_order: 0,
        jitter_ms: Some(jitter_ms),
        max_jitter_ms: Some(jitter_ms * 2.0),
        mean_jitter_ms: Some(jitter_ms),
        max_delta_ms: 40.0,
        loss_runs: [0; 10],
        mos: Some(4.0),
        mos_lq: Some(4.1),
        mos_jb50: Some(4.0),
        mos_jb200: Some(3.9),
        r_factor: Some(80.0),
        rtt_ms: Some(60.0),
        intervals: Vec::new(),
        remote: None,
    }
}

/// The `i`-th test call: MNO, agent, MOS and impairments all vary with `i`, so every
/// MNO and agent gets new observations in every round of four.
fn call(i: usize) -> CallRecord {
    let status = match i % 5 {
        3 => CallStatus::Failed,
        4 => CallStatus::Abandoned,
        _ => CallStatus::Completed,
    };
    let answered = status == CallStatus::Completed;
    let mos = answered.then(|| [4.3, 3.9, 2.8, 3.6][i % 4] - 0.01 * (i % 7) as f64);
    let streams = if answered {
        let j = 2.0 + (i % 9) as f64 * 7.5;
        vec![
            stream(Direction::Inbound, j, 3000, (i % 6) as u64 * 12),
            stream(Direction::Outbound, j / 2.0, 3000, 0),
        ]
    } else {
        Vec::new()
    };
    let rtt = answered.then_some(40.0 + (i % 11) as f64 * 25.0);
    CallRecord {
        call_id: format!("call-{i}"),
        sip_call_id: Some(format!("call-{i}@test")),
        agent_id: AGENTS[i % 4].map(str::to_string),
        from_number: Some("+447700900123".into()),
        to_number: Some("+442071838750".into()),
        mno: MNOS[i % 4].into(),
        country: Some("GB".into()),
        direction: Direction::Inbound,
        status,
        ended_reason: Some(match status {
            CallStatus::Failed => EndedReason::Error,
            CallStatus::Abandoned => EndedReason::Cancel,
            _ => EndedReason::Bye,
        }),
        created_at: "2024-05-01T10:00:00.000Z".into(),
        ended_at: Some("2024-05-01T10:01:00.000Z".into()),
        duration_seconds: if answered { 60.0 } else { 0.0 },
        codec: answered.then(|| "PCMA".to_string()),
        one_way_audio: false,
        quality_mos: mos,
        quality: QualityRecord {
            mos,
            mos_lq: mos.map(|m| m + 0.1),
            r_factor: mos.map(|_| 80.0),
            min_interval_mos: mos,
            jitter_ms: answered.then_some(10.0),
            loss_ratio: answered.then_some(0.01),
            rtt_ms: rtt,
            one_way_delay_ms: rtt.map(|r| r / 2.0),
        },
        resolution: None,
        classified_at: None,
        recording_url: None,
        streams,
    }
}

/// A stand-in for the daemon's runtime, whose counters the test moves forward.
fn fake_runtime() -> Runtime {
    let workers = (0..2)
        .map(|_| Arc::new(Mutex::new(WorkerSnapshot::default())))
        .collect();
    Runtime {
        sources: vec![("eth0".into(), Arc::new(SourceStats::default()))],
        workers,
        stopping: Arc::new(AtomicBool::new(false)),
    }
}

/// Moves every runtime counter forward, as a second of traffic would.
fn advance(rt: &Runtime, step: u64) {
    for (_, st) in &rt.sources {
        st.packets.fetch_add(1000 * step, Ordering::Relaxed);
        st.queue_dropped.fetch_add(step, Ordering::Relaxed);
        st.kernel_dropped.fetch_add(2 * step, Ordering::Relaxed);
    }
    for w in &rt.workers {
        let mut s = w.lock().unwrap_or_else(|e| e.into_inner());
        s.counters.rtp_packets += 900 * step;
        s.counters.rtcp_packets += 9 * step;
        s.counters.sip_messages += 6 * step;
        s.counters.malformed += step;
        s.counters.sip_malformed += step;
        s.counters.streams_refused += step;
        for m in ["INVITE", "ACK", "BYE", "RESPONSE"] {
            *s.counters.sip_by_method.entry(m).or_insert(0) += step;
        }
        s.active_dialogs = 3 + step as usize % 4;
        s.active_streams = 2 * s.active_dialogs;
    }
}

// ---------------------------------------------------------------------------
// (a) promtool check metrics

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

#[test]
fn promtool_lints_the_exposition_clean() {
    if tools_missing() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let m = Metrics::new(3, 3).expect("metrics");
    // Before any call: families without series must not trip the linter either.
    promtool_check(&m.render(None), dir.path(), "empty.prom");
    for i in 0..12 {
        m.observe_call(&call(i));
    }
    let text = m.render(None);
    assert!(text.contains("mno=\"other\""), "cap of 3 folds the 4th MNO");
    promtool_check(&text, dir.path(), "calls.prom");
    let rt = fake_runtime();
    advance(&rt, 1);
    promtool_check(&m.render(Some(&rt)), dir.path(), "runtime.prom");
}

// ---------------------------------------------------------------------------
// (b) and (c): a private Prometheus scraping a tiny /metrics server

/// Serves `GET /metrics` from a shared `Metrics` until dropped.
struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    scrapes: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    fn start(metrics: Arc<Metrics>, rt: Arc<Runtime>) -> MetricsServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding scrape target");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("local addr");
        let stop = Arc::new(AtomicBool::new(false));
        let scrapes = Arc::new(AtomicU64::new(0));
        let (stop2, scrapes2) = (stop.clone(), scrapes.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        if serve(conn, &metrics, &rt) {
                            scrapes2.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        MetricsServer {
            addr,
            stop,
            scrapes,
            thread: Some(thread),
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers one request; true when it was a scrape of /metrics.
fn serve(mut conn: TcpStream, metrics: &Metrics, rt: &Runtime) -> bool {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let mut req = Vec::new();
    let mut buf = [0u8; 2048];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 16 * 1024 {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&req);
    let is_scrape = head.starts_with("GET /metrics ") || head.starts_with("GET /metrics?");
    let (status, ctype, body) = if is_scrape {
        (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(Some(rt)),
        )
    } else {
        ("404 Not Found", "text/plain", "not found\n".to_string())
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(reply.as_bytes());
    is_scrape
}

/// A Prometheus server of our own; killed when dropped.
struct PromServer {
    child: Child,
    base: String,
    log: PathBuf,
}

impl PromServer {
    fn start(dir: &Path, target: SocketAddr) -> PromServer {
        let port = free_port();
        let cfg = dir.join("prom.yml");
        std::fs::write(
            &cfg,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: vqprobe\n    static_configs:\n      - targets: ['{target}']\n"
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
                dir.join("data").display()
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

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("binding a probe port");
    l.local_addr().expect("local addr").port()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// Runs an instant query; returns the whole JSON reply (errors included).
fn query(http: &ureq::Agent, prom: &PromServer, expr: &str) -> Result<Value, String> {
    let mut resp = http
        .post(format!("{}/api/v1/query", prom.base))
        .send_form([("query", expr)])
        .map_err(|e| e.to_string())?;
    resp.body_mut()
        .read_json::<Value>()
        .map_err(|e| e.to_string())
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
fn wait_for(
    http: &ureq::Agent,
    prom: &PromServer,
    expr: &str,
    limit: Duration,
    done: impl Fn(&[f64]) -> bool,
) -> Vec<f64> {
    let start = Instant::now();
    loop {
        let last = match query(http, prom, expr) {
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
            prom.log_tail()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Every `expr` of every panel target, with its panel's title, rows included.
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

/// Substitutes Grafana's built-in and template variables as Grafana would with "All"
/// selected (`allValue` is `.*`).
fn substitute(expr: &str, vars: &[String]) -> String {
    let mut e = expr
        .replace("${__rate_interval}", "1m")
        .replace("$__rate_interval", "1m")
        .replace("${__interval}", "15s")
        .replace("$__interval", "15s")
        .replace("${__range}", "5m")
        .replace("$__range", "5m");
    let mut vars = vars.to_vec();
    // Longest first, so `$mno` cannot eat the start of a `$mno_x`.
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

#[test]
fn prometheus_scrapes_metrics_and_answers_every_dashboard_query() {
    if tools_missing() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let metrics = Arc::new(Metrics::new(50, 200).expect("metrics"));
    let rt = Arc::new(fake_runtime());
    advance(&rt, 1);
    let mut observed = 0usize;
    for _ in 0..8 {
        metrics.observe_call(&call(observed));
        observed += 1;
    }

    let server = MetricsServer::start(metrics.clone(), rt.clone());
    let prom = PromServer::start(dir.path(), server.addr);
    let http = agent();

    // (b) The first scrapes carry exactly the calls observed so far.
    wait_for(
        &http,
        &prom,
        "vqprobe_calls_total",
        Duration::from_secs(30),
        |v| !v.is_empty(),
    );
    let sum = wait_for(
        &http,
        &prom,
        "sum(vqprobe_calls_total)",
        Duration::from_secs(5),
        |v| v.len() == 1,
    );
    assert_eq!(sum, [observed as f64], "sum(vqprobe_calls_total)");

    // Traffic between scrapes, so rate() and increase() have something to measure.
    let phase = Instant::now();
    let mut step = 2;
    while phase.elapsed() < Duration::from_secs(6) {
        for _ in 0..4 {
            metrics.observe_call(&call(observed));
            observed += 1;
        }
        advance(&rt, step);
        step += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    let want = observed as f64;
    wait_for(
        &http,
        &prom,
        "sum(vqprobe_calls_total)",
        Duration::from_secs(10),
        |v| v == [want],
    );
    assert!(
        server.scrapes.load(Ordering::Relaxed) >= 3,
        "too few scrapes"
    );

    // (c) Every dashboard expression is valid and returns data.
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
    for (title, expr) in &exprs {
        let q = substitute(expr, &vars);
        if q.contains('$') {
            failures.push(format!("{title}: unsubstituted variable in {q}"));
            continue;
        }
        match query(&http, &prom, &q) {
            Ok(v) if v["status"] == "success" => {
                let vals = values(&v);
                if vals.is_empty() {
                    failures.push(format!("{title}: no data for {q}"));
                } else if !vals.iter().any(|x| x.is_finite()) {
                    failures.push(format!("{title}: only NaN/Inf {vals:?} for {q}"));
                } else {
                    eprintln!("ok   {title}: {q} -> {vals:?}");
                }
            }
            Ok(v) => failures.push(format!("{title}: {q} -> {v}")),
            Err(e) => failures.push(format!("{title}: {q} -> {e}")),
        }
    }

    // Template variables (`label_values(metric, label)`) must list values too.
    for v in dash["templating"]["list"].as_array().into_iter().flatten() {
        let Some(def) = v["definition"].as_str() else {
            continue;
        };
        let Some(inner) = def
            .strip_prefix("label_values(")
            .and_then(|s| s.strip_suffix(')'))
        else {
            failures.push(format!("variable {}: unexpected query {def}", v["name"]));
            continue;
        };
        let Some((metric, label)) = inner.split_once(',') else {
            failures.push(format!("variable {}: unexpected query {def}", v["name"]));
            continue;
        };
        let q = format!("count by ({}) ({})", label.trim(), metric.trim());
        match query(&http, &prom, &q) {
            Ok(r) if !results(&r).is_empty() => eprintln!("ok   variable {}: {q}", v["name"]),
            Ok(r) => failures.push(format!("variable {}: {q} -> {r}", v["name"])),
            Err(e) => failures.push(format!("variable {}: {q} -> {e}", v["name"])),
        }
    }

    assert!(
        failures.is_empty(),
        "{} of {} dashboard queries failed:\n{}",
        failures.len(),
        exprs.len(),
        failures.join("\n")
    );
}
