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

#[path = "support/prom.rs"]
mod prom;

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use daemon::Workdir;
use http::Client;
use probe::Probe;
use prom::{promtool_check, run_dashboard, tools_missing, PromServer};
use serde_json::Value;

const CALLS: usize = 8;

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

    // The exposition before any call has ended lints clean too.
    let early = api.get("/metrics");
    assert_eq!(early.status, 200);
    assert!(
        !early.text().contains("vqprobe_calls_total{"),
        "no call can have ended during the lead-in"
    );
    promtool_check(&early.text(), work.path(), "early.prom");

    // Prometheus scrapes the daemon.
    server.wait_for("up{job=\"vqprobe\"}", Duration::from_secs(20), |v| {
        v == [1.0]
    });
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
    let sum = server.wait_for("sum(vqprobe_calls_total)", Duration::from_secs(10), |v| {
        v == [CALLS as f64]
    });
    assert_eq!(sum, [CALLS as f64]);
    for (status, n) in &by_status {
        let expr = format!("sum(vqprobe_calls_total{{status=\"{status}\"}})");
        let want = *n;
        server.wait_for(&expr, Duration::from_secs(5), |v| v == [want]);
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
        server.wait_for(expr, Duration::from_secs(5), near(want));
    }

    // Every dashboard expression is valid and answers with data.
    let run = run_dashboard(&server);
    let answered = run.answered;
    assert!(
        run.failures.is_empty(),
        "{} of {} dashboard queries failed:\n{}\nprometheus log:\n{}",
        run.failures.len(),
        run.exprs,
        run.failures.join("\n"),
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
