//! Shared by the Prometheus tests: `promtool check metrics`, a private Prometheus server,
//! instant queries, and running every expression of the Grafana dashboard.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// True (after saying so) when `promtool` or `prometheus` is not installed.
pub fn tools_missing() -> bool {
    if have("promtool") && have("prometheus") {
        return false;
    }
    eprintln!(
        "SKIPPED: promtool/prometheus not found on PATH \
         (apt-get install prometheus provides both)"
    );
    true
}

/// `promtool check metrics` on `text` must exit 0 and print nothing.
pub fn promtool_check(text: &str, dir: &Path, name: &str) {
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

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a probe port");
    l.local_addr().expect("local addr").port()
}

/// A private Prometheus server (free loopback port, temporary storage, 1 s scrapes of
/// one target); killed and reaped when dropped.
pub struct PromServer {
    child: Child,
    base: String,
    log: PathBuf,
    http: ureq::Agent,
}

impl PromServer {
    /// Starts Prometheus in `dir`, scraping `target` (`host:port`, path `/metrics`).
    pub fn start(dir: &Path, target: &str) -> PromServer {
        let port = free_port();
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
        let http = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(5)))
            .http_status_as_error(false)
            .build()
            .into();
        PromServer {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            http,
        }
    }

    /// The last lines of Prometheus's own log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Runs an instant query; the whole JSON reply (errors included).
    pub fn query(&self, expr: &str) -> Result<Value, String> {
        let mut resp = self
            .http
            .post(format!("{}/api/v1/query", self.base))
            .send_form([("query", expr)])
            .map_err(|e| e.to_string())?;
        resp.body_mut()
            .read_json::<Value>()
            .map_err(|e| e.to_string())
    }

    /// Polls `expr` until `done` holds for its values, up to `limit`.
    pub fn wait_for(&self, expr: &str, limit: Duration, done: impl Fn(&[f64]) -> bool) -> Vec<f64> {
        let start = Instant::now();
        loop {
            let last = match self.query(expr) {
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
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for PromServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The result array of a query reply.
pub fn results(v: &Value) -> &[Value] {
    v["data"]["result"].as_array().map_or(&[], Vec::as_slice)
}

/// Sample values of an instant-vector (or scalar) reply.
pub fn values(v: &Value) -> Vec<f64> {
    let parse = |s: &Value| s[1].as_str().and_then(|x| x.parse::<f64>().ok());
    match v["data"]["resultType"].as_str() {
        Some("scalar") => parse(&v["data"]["result"]).into_iter().collect(),
        _ => results(v)
            .iter()
            .filter_map(|r| parse(&r["value"]))
            .collect(),
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

/// What running the dashboard against a Prometheus found.
pub struct DashboardRun {
    /// Panel expressions found.
    pub exprs: usize,
    /// Expressions that answered with at least one finite value.
    pub answered: usize,
    /// Everything that did not (expressions and template variables).
    pub failures: Vec<String>,
}

/// Runs every panel expression of `config/grafana/vqprobe.json` (variables substituted)
/// and every `label_values` template variable as instant queries.
pub fn run_dashboard(prom: &PromServer) -> DashboardRun {
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
        match prom.query(&q) {
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
    // Template variables (`label_values(metric, label)`) must list values too.
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
        match prom.query(&q) {
            Ok(r) if !results(&r).is_empty() => eprintln!(
                "ok   variable {}: {q} -> {} values",
                v["name"],
                results(&r).len()
            ),
            Ok(r) => failures.push(format!("variable {}: {q} -> {r}", v["name"])),
            Err(e) => failures.push(format!("variable {}: {q} -> {e}", v["name"])),
        }
    }
    DashboardRun {
        exprs: exprs.len(),
        answered,
        failures,
    }
}
