//! The NOC console in a real browser: Debian's headless Chromium, driven through
//! chromedriver (WebDriver, with the fantoccini client), against real daemons. Every
//! figure the pages show is compared with what the API answers for the same question
//! (the console has no other source, so they must be equal to the last digit); the
//! page's raw figures are read from the `data-v` attribute the console puts on each.
//!
//! * [`console_on_known_calls`]: a daemon with an API key, fed by `--replay
//!   --rebase-time` of the 12 known calls of `callmix::api_mix` (3 agents, 4 MNOs, a
//!   486, a CANCEL, one call with 20 % loss towards the site). The key is asked for; a
//!   wrong key gets a clear message; with the right one the overview's worst MNO and its
//!   p10 MOS, the call and poor-call counts and the MOS bands are the API's; the call
//!   list's total and its agent and status filters are the API's; the poor call's page
//!   shows the API's interval MOS values, per direction, in order. The key never shows
//!   in a URL.
//! * [`console_on_the_demo_day`]: `vqprobe run --demo` (no key, loopback): the overview
//!   names the API's worst MNO (MTN Nigeria by the demo's design) with its p10 MOS, the
//!   list refreshes by itself while calls are in progress, a poor call's page loads.
//!
//! On every page: no console error (chromedriver's browser log: script errors, failed
//! loads, CSP violations), except the 401s the wrong key is meant to cause. Screenshots
//! of every page at 1280x800 (a wall screen) and 390x844 (a phone), the viewport and
//! the whole page, go to `target/console-screenshots/`.
//!
//! Needs `chromium` and `chromedriver` (Debian's `chromium`, `chromium-driver`; the
//! installer script puts them in); prints SKIPPED without them.

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

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use daemon::{have_command, ChildGuard, Workdir};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use http::{enc, Client as Api};
use probe::Probe;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const KEY: &str = "console-test-key-7f3a";
const SIZES: [(u32, u32); 2] = [(1280, 800), (390, 844)];
const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// The browser

/// chromedriver's log endpoint (not in W3C WebDriver; Chromium keeps it).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (::http::Method, Option<String>) {
        (::http::Method::POST, Some(r#"{"type":"browser"}"#.into()))
    }
}

/// A DevTools command through chromedriver (device metrics: an exact viewport size).
#[derive(Debug)]
struct Cdp(Value);

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (::http::Method, Option<String>) {
        (::http::Method::POST, Some(self.0.to_string()))
    }
}

struct Browser {
    client: Client,
    shots: PathBuf,
    _driver: ChildGuard,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// chromedriver on a free port and a headless Chromium session; `None` (after
    /// printing SKIPPED) when either is missing.
    async fn start() -> Option<Browser> {
        let chromium = ["chromium", "chromium-browser"]
            .into_iter()
            .find(|c| have_command(c));
        let (Some(chromium), true) = (chromium, have_command("chromedriver")) else {
            eprintln!("SKIPPED: chromium and chromedriver are needed (scripts/install-deps.sh)");
            return None;
        };
        let port = daemon::free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let driver = ChildGuard::new("chromedriver", driver);
        let base = format!("http://127.0.0.1:{port}/");
        let status = Api::new(&base, None);
        assert!(
            daemon::wait_for(Duration::from_secs(10), || status
                .try_req("GET", "/status", None, &[])
                .is_ok_and(|r| r.status == 200)),
            "chromedriver did not come up on {base}"
        );
        let profile = tempfile::tempdir().expect("profile dir");
        let binary = Command::new("sh")
            .args(["-c", &format!("command -v {chromium}")])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .expect("locating chromium");
        let caps = json!({
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": binary,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--no-first-run", "--disable-sync", "--hide-scrollbars",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&base)
            .await
            .expect("a WebDriver session");
        let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("target dir")
            .join("console-screenshots");
        std::fs::create_dir_all(&shots).expect("screenshot dir");
        let b = Browser {
            client,
            shots,
            _driver: driver,
            _profile: profile,
        };
        b.viewport(SIZES[0].0, SIZES[0].1).await;
        Some(b)
    }

    async fn viewport(&self, w: u32, h: u32) {
        self.client
            .issue_cmd(Cdp(json!({
                "cmd": "Emulation.setDeviceMetricsOverride",
                "params": {"width": w, "height": h, "deviceScaleFactor": 1, "mobile": w < 600},
            })))
            .await
            .expect("setting the viewport");
    }

    /// Browser log entries since the last call.
    async fn log(&self) -> Vec<Value> {
        match self
            .client
            .issue_cmd(BrowserLog)
            .await
            .expect("browser log")
        {
            Value::Array(v) => v,
            other => panic!("browser log: {other}"),
        }
    }

    /// Panics on any error in the browser log since the last check.
    async fn assert_clean(&self, page: &str) {
        let errors: Vec<String> = self
            .log()
            .await
            .into_iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].to_string())
            .collect();
        assert!(errors.is_empty(), "{page}: console errors: {errors:#?}");
    }

    async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigating");
    }

    async fn wait_css(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} did not appear: {e}"))
    }

    async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// The raw figure (`data-v`) of the first element matching `css`.
    async fn figure(&self, css: &str) -> String {
        self.wait_css(css)
            .await
            .attr("data-v")
            .await
            .expect("data-v")
            .unwrap_or_else(|| panic!("{css} has no data-v"))
    }

    /// Waits until `css`'s `data-v` is set (the page filled it from the API).
    async fn figure_when_set(&self, css: &str) -> String {
        let t0 = Instant::now();
        loop {
            let v = self
                .js(&format!(
                    "const e = document.querySelector({css:?}); return e && e.dataset.v !== undefined ? e.dataset.v : null;"
                ))
                .await;
            if let Value::String(s) = v {
                return s;
            }
            assert!(t0.elapsed() < WAIT, "{css} never got a figure");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Screenshots of the current page at both sizes (viewport and whole page), after
    /// `ready` (CSS) shows at each size.
    async fn shoot(&self, name: &str, ready: &str) {
        for (w, h) in SIZES {
            self.viewport(w, h).await;
            self.wait_css(ready).await;
            // Charts follow their containers' width on the next frame.
            tokio::time::sleep(Duration::from_millis(400)).await;
            let png = self.client.screenshot().await.expect("screenshot");
            std::fs::write(self.shots.join(format!("{name}-{w}x{h}.png")), png).expect("png");
            let full = self
                .js("return document.documentElement.scrollHeight")
                .await
                .as_u64()
                .unwrap_or(u64::from(h));
            self.viewport(w, u32::try_from(full).unwrap_or(h).max(h))
                .await;
            tokio::time::sleep(Duration::from_millis(400)).await;
            let png = self.client.screenshot().await.expect("screenshot");
            std::fs::write(self.shots.join(format!("{name}-{w}x{h}-full.png")), png).expect("png");
        }
        self.viewport(SIZES[0].0, SIZES[0].1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    async fn close(self) {
        let _ = self.client.close().await;
    }
}

// ---------------------------------------------------------------------------------------
// Oracles

/// The worst MNO as the console defines it (lowest p10 MOS; more calls first on a tie).
fn worst_of(rows: &Value, name: &str) -> (String, f64) {
    rows.as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| {
            Some((
                r[name].as_str()?.to_string(),
                r["p10_mos"].as_f64()?,
                r["calls"].as_u64()?,
            ))
        })
        .min_by(|a, b| a.1.total_cmp(&b.1).then(b.2.cmp(&a.2)))
        .map(|(n, p, _)| (n, p))
        .expect("a scored row")
}

fn total(api: &Api, query: &str) -> u64 {
    api.get_json(&format!("/v1/calls?{query}&page_size=1"))["total"]
        .as_u64()
        .expect("total")
}

fn num(s: &str) -> f64 {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s:?}"))
}

fn now_iso(offset_s: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(offset_s);
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("formatting")
}

// ---------------------------------------------------------------------------------------
// Known calls, with a key

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_on_known_calls() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let work = Workdir::new();
    let cap = work.path().join("mix.pcap");
    let mix = callmix::api_mix();
    callmix::write_mix(&cap, capgen::BASE_TIME, capgen::ms(500), &mix);
    let hash = hex::encode(Sha256::digest(KEY.as_bytes()));
    let cfg = format!(
        "[capture]\nlocal_networks = [\"{}\"]\n\n[calls]\nrtp_timeout_s = 2\n\n[api]\nkey_hashes = [\"sha256:{hash}\"]\n",
        callmix::LOCAL_NET
    );
    let listen = format!("127.0.0.1:{}", daemon::free_port());
    let cap_s = cap.to_str().expect("utf-8 path");
    let mut p = Probe::spawn(
        &work,
        &cfg,
        &work.db(),
        &listen,
        &["--replay", cap_s, "--speed", "0", "--rebase-time"],
        &[],
    );
    p.wait_api(Duration::from_secs(10));
    let api = Api::new(&p.base(), Some(KEY));
    assert!(
        daemon::wait_for(Duration::from_secs(30), || {
            let v = api.get_json("/v1/calls?page_size=100");
            v["total"] == mix.len()
                && v["data"]
                    .as_array()
                    .is_some_and(|d| d.iter().all(|c| c["status"] != "in_progress"))
        }),
        "the replayed calls were not all stored: {}",
        p.stderr()
    );
    let base = p.base();

    // The key: asked for, a wrong one refused with a clear message, never in the URL.
    b.goto(&format!("{base}/")).await;
    let input = b.wait_css("#key-input").await;
    b.shoot("key", "#key-form").await;
    input.send_keys("not-the-key").await.expect("typing");
    b.wait_css("#key-form button")
        .await
        .click()
        .await
        .expect("submit");
    let msg = b
        .wait_css("#key-error:not([hidden])")
        .await
        .text()
        .await
        .expect("text");
    assert!(
        msg.contains("refused") && msg.contains("401"),
        "wrong-key message: {msg:?}"
    );
    b.shoot("key-refused", "#key-error").await;
    // The refused request is the only error the browser logs.
    let log = b.log().await;
    assert!(
        log.iter()
            .filter(|e| e["level"] == "SEVERE")
            .all(|e| e["message"].as_str().is_some_and(|m| m.contains("401"))),
        "{log:#?}"
    );
    let input = b.wait_css("#key-input").await;
    input.send_keys(KEY).await.expect("typing");
    b.wait_css("#key-form button")
        .await
        .click()
        .await
        .expect("submit");

    // Overview: the worst MNO and its p10 MOS, counts and MOS bands, as the API says.
    b.wait_css("#mno-rollup").await;
    let url = b.client.current_url().await.expect("url");
    assert!(!url.as_str().contains(KEY), "key in the URL: {url}");
    let stored = b
        .js("return sessionStorage.getItem('vqprobe.apiKey')")
        .await;
    assert_eq!(stored, KEY);
    let (worst, p10) = worst_of(&api.get_json("/v1/analytics/mno?days=7"), "mno");
    let first = "#mno-rollup tbody tr:first-child";
    assert_eq!(b.figure(&format!("{first} td:nth-child(1)")).await, worst);
    assert_eq!(
        num(&b.figure(&format!("{first} td:nth-child(3)")).await),
        p10
    );
    let shown = b
        .wait_css(&format!("{first} td:nth-child(3)"))
        .await
        .text()
        .await
        .expect("text");
    assert_eq!(shown, format!("{p10:.2}"));
    eprintln!("known calls: worst MNO {worst}, p10 MOS {p10} (shown {shown})");
    let (worst_agent, agent_p10) =
        worst_of(&api.get_json("/v1/analytics/agents?days=7"), "agent_id");
    let first = "#agent-rollup tbody tr:first-child";
    assert_eq!(
        b.figure(&format!("{first} td:nth-child(1)")).await,
        worst_agent
    );
    assert_eq!(
        num(&b.figure(&format!("{first} td:nth-child(3)")).await),
        agent_p10
    );
    let day = total(&api, &format!("date_from={}", enc(&now_iso(-86_400))));
    assert_eq!(day, mix.len() as u64);
    assert_eq!(num(&b.figure_when_set("#calls-24h").await), day as f64);
    let poor = total(
        &api,
        &format!("date_from={}&max_mos=3.0999995", enc(&now_iso(-86_400))),
    );
    assert_eq!(num(&b.figure_when_set("#poor-24h").await), poor as f64);
    assert!(poor >= 1, "the mix has a poor call");
    let bands: Vec<u64> = b
        .js("return [...document.querySelectorAll('#dist-24h td')].map(td => Number(td.dataset.v))")
        .await
        .as_array()
        .expect("bands")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    let scored = total(
        &api,
        &format!("date_from={}&min_mos=1", enc(&now_iso(-86_400))),
    );
    assert_eq!(bands.len(), 6);
    assert_eq!(bands.iter().sum::<u64>(), scored);
    assert_eq!(bands[0] + bands[1], poor);
    eprintln!("known calls: {day} calls in 24 h, {poor} poor, MOS bands {bands:?}");
    b.assert_clean("overview").await;
    b.shoot("known-overview", "#mno-rollup").await;
    b.assert_clean("overview (resized)").await;

    // Calls: the total, then the agent and status filters.
    b.goto(&format!("{base}/calls")).await;
    b.wait_css("#calls-table").await;
    assert_eq!(
        b.figure_when_set("#calls-summary").await,
        mix.len().to_string()
    );
    let rows = b
        .js("return document.querySelectorAll('#calls-table tbody tr').length")
        .await;
    assert_eq!(rows, mix.len());
    b.shoot("known-calls", "#calls-table").await;
    b.wait_css("#f-agent_id option[value='agent-b']").await;
    b.wait_css("#f-agent_id")
        .await
        .select_by_value("agent-b")
        .await
        .expect("agent filter");
    b.wait_css("#f-status")
        .await
        .select_by_value("completed")
        .await
        .expect("status");
    b.wait_css("#apply").await.click().await.expect("apply");
    let want = total(&api, "agent_id=agent-b&status=completed");
    let t0 = Instant::now();
    loop {
        let url = b.client.current_url().await.expect("url");
        let agents = b
            .js("return [...document.querySelectorAll('#calls-table tbody tr td:nth-child(2)')].map(td => td.textContent)")
            .await;
        let n = agents.as_array().map_or(0, Vec::len);
        if url.as_str().contains("agent_id=agent-b")
            && n as u64 == want
            && agents
                .as_array()
                .is_some_and(|a| a.iter().all(|x| x == "agent-b"))
        {
            break;
        }
        assert!(
            t0.elapsed() < WAIT,
            "filtered list: {agents} at {url}, want {want} rows"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(b.figure_when_set("#calls-summary").await, want.to_string());
    let statuses = b.js("return [...document.querySelectorAll('#calls-table tbody tr')].map(tr => tr.dataset.status)").await;
    assert!(
        statuses
            .as_array()
            .expect("statuses")
            .iter()
            .all(|s| s == "completed"),
        "{statuses}"
    );
    eprintln!("known calls: agent-b completed = {want} rows, as the API");
    b.assert_clean("calls").await;
    b.shoot("known-calls-filtered", "#calls-table").await;
    // "Poor only" keeps the other filters and adds MOS < 3.1.
    b.goto(&format!("{base}/calls")).await;
    b.wait_css("#calls-table").await;
    b.wait_css("#poor-only")
        .await
        .click()
        .await
        .expect("poor only");
    let want_poor = total(&api, "max_mos=3.0999995");
    let t0 = Instant::now();
    while b
        .client
        .current_url()
        .await
        .expect("url")
        .query()
        .is_none_or(|q| !q.contains("max_mos"))
    {
        assert!(t0.elapsed() < WAIT, "poor-only did not filter");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.wait_css("#calls-table").await;
    assert_eq!(
        b.figure_when_set("#calls-summary").await,
        want_poor.to_string()
    );
    eprintln!("known calls: poor only = {want_poor} rows, as the API");

    // The poor call's page: interval MOS per direction, in order, as the API's record.
    let poor_id = api.get_json("/v1/calls?max_mos=3.0999995&page_size=1")["data"][0]["call_id"]
        .as_str()
        .expect("a poor call")
        .to_string();
    let rec = api.get_json(&format!("/v1/calls/{}", enc(&poor_id)));
    b.goto(&format!("{base}/calls/{}", enc(&poor_id))).await;
    b.wait_css("#timelines canvas").await;
    let shown_id = b.wait_css("#call-id").await.text().await.expect("text");
    assert_eq!(shown_id, poor_id);
    assert_eq!(
        num(&b.figure("#call-quality tr:first-child td").await),
        rec["quality_mos"].as_f64().expect("mos")
    );
    for dir in ["inbound", "outbound"] {
        let streams: Vec<&Value> = rec["streams"]
            .as_array()
            .expect("streams")
            .iter()
            .filter(|s| s["direction"] == dir)
            .collect();
        for (k, s) in streams.iter().enumerate() {
            let want: Vec<Value> = s["intervals"]
                .as_array()
                .expect("intervals")
                .iter()
                .map(|i| i["mos"].clone())
                .collect();
            let got = b
                .js(&format!(
                    "return [...document.querySelectorAll('#intervals-{dir}-{k} tbody tr td:last-child')].map(td => td.dataset.v === 'null' ? null : Number(td.dataset.v))"
                ))
                .await;
            assert_eq!(
                got,
                Value::Array(want.clone()),
                "{dir} stream {k} interval MOS"
            );
            eprintln!("known calls: {poor_id} {dir} interval MOS {got}");
        }
    }
    b.assert_clean("call").await;
    b.shoot("known-call", "#timelines canvas").await;

    // An unknown call says so.
    b.goto(&format!("{base}/calls/no-such-call")).await;
    b.wait_css("#call-missing").await;
    let log = b.log().await;
    assert!(
        log.iter()
            .filter(|e| e["level"] == "SEVERE")
            .all(|e| e["message"].as_str().is_some_and(|m| m.contains("404"))),
        "{log:#?}"
    );
    b.close().await;
    drop(p);
}

// ---------------------------------------------------------------------------------------
// The demo day

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_on_the_demo_day() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let work = Workdir::new();
    let listen = format!("127.0.0.1:{}", daemon::free_port());
    let mut p = Probe::spawn(&work, "", &work.db(), &listen, &["--demo"], &[]);
    p.wait_api(Duration::from_secs(10));
    let api = Api::new(&p.base(), None);
    assert!(
        daemon::wait_for(Duration::from_secs(60), || p
            .stderr()
            .contains("reached the live point")),
        "the demo did not reach its live point: {}",
        p.stderr()
    );
    // Everything before the live point is stored within a flush interval or two.
    let want_day = 300;
    assert!(
        daemon::wait_for(Duration::from_secs(20), || total(
            &api,
            "date_from=2000-01-01"
        ) >= want_day),
        "demo calls stored: {}",
        total(&api, "date_from=2000-01-01")
    );
    let base = p.base();
    b.goto(&format!("{base}/")).await;
    b.wait_css("#mno-rollup").await;
    // The figures a newcomer sees, equal to the API's at the same moment (a live call
    // may end in between: read the page, then the API, and retry once).
    let mut ok = false;
    for _ in 0..3 {
        let name = b
            .figure("#mno-rollup tbody tr:first-child td:nth-child(1)")
            .await;
        let p10 = num(&b
            .figure("#mno-rollup tbody tr:first-child td:nth-child(3)")
            .await);
        let (worst, want) = worst_of(&api.get_json("/v1/analytics/mno?days=7"), "mno");
        if name == worst && p10 == want {
            eprintln!("demo: worst MNO {name}, p10 MOS {p10}");
            assert_eq!(name, "MTN Nigeria", "the demo's worst MNO by design");
            ok = true;
            break;
        }
        b.client.refresh().await.expect("reload");
        b.wait_css("#mno-rollup").await;
    }
    assert!(ok, "the overview's worst MNO never matched the API's");
    let agent = b
        .figure("#agent-rollup tbody tr:first-child td:nth-child(1)")
        .await;
    let active = num(&b.figure_when_set("#active-calls").await);
    let calls = num(&b.figure_when_set("#calls-24h").await);
    let poor = num(&b.figure_when_set("#poor-24h").await);
    let mnos = api
        .get_json("/v1/analytics/mno?days=7")
        .as_array()
        .map_or(0, Vec::len);
    let agents = api
        .get_json("/v1/analytics/agents?days=7")
        .as_array()
        .map_or(0, Vec::len);
    eprintln!(
        "demo: {calls} calls in the last 24 h, {poor} poor, {active} active, {agents} agents, {mnos} MNOs, worst agent {agent}"
    );
    assert!(calls >= want_day as f64 && active >= 1.0 && poor >= 1.0);
    assert_eq!((agents, mnos), (8, 9));
    b.assert_clean("demo overview").await;
    b.shoot("demo-overview", "#mno-rollup").await;
    b.assert_clean("demo overview (resized)").await;

    // The list refreshes by itself (in-progress calls update live).
    b.goto(&format!("{base}/calls")).await;
    b.wait_css("#calls-table").await;
    let note = b.wait_css("#live-note").await.text().await.expect("note");
    assert!(note.starts_with("live"), "{note}");
    let t0 = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = b.wait_css("#live-note").await.text().await.expect("note");
        if now != note {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "the list did not refresh: {note}"
        );
    }
    b.assert_clean("demo calls").await;
    b.shoot("demo-calls", "#calls-table").await;

    // A poor call with a bad stretch: its page.
    let id = api.get_json("/v1/calls?max_mos=3.0999995&page_size=1")["data"][0]["call_id"]
        .as_str()
        .expect("a poor demo call")
        .to_string();
    b.goto(&format!("{base}/calls/{}", enc(&id))).await;
    b.wait_css("#timelines canvas").await;
    b.assert_clean("demo call").await;
    b.shoot("demo-call", "#timelines canvas").await;
    b.close().await;
    drop(p);
}
