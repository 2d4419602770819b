//! The HTTP API of a real `vqprobe run` fed by `--replay` of generated captures whose
//! calls are known, checked with a real HTTP client (ureq).
//!
//! The truth for every per-call figure is `vqprobe analyze --format json` on the same
//! file (the same sans-I/O engine), itself checked against the generator's plan (agent,
//! direction, MNO, status, packets and losses per direction). Every rollup (summary,
//! MNO and agent tables, aggregate queries, export) is computed here by hand from those
//! records.
//!
//! * [`replayed_calls_through_the_api`]: 12 SIP calls (3 agents; far ends on T-Mobile
//!   and Vodafone in Germany, Three in the UK and one unknown number; inbound and
//!   outbound; a 486 and a CANCEL; 12–30 s of two-way PCMU with seeded 0/1/5/20 % loss;
//!   RTCP round trips on four). The capture carries today's timestamps and is replayed
//!   at `--speed 0` without `--rebase-time`, so the daemon sees exactly what analyze saw
//!   and every figure, `created_at` included, must be equal (see the next point).
//! * [`rebased_replay_lands_today`]: the same calls dated 2023 and replayed with
//!   `--rebase-time`: they land today, every shift is the same, and each figure that
//!   does not depend on where the 5-second scoring intervals fall equals analyze's. MOS
//!   does depend on it: the rebase shift is not a multiple of `quality.interval_s`, so
//!   the interval boundaries move relative to the packets and MOS figures differ from
//!   analyze's by up to about 0.01. [`rebased_replay_keeps_mos`] (ignored) asserts
//!   the exact MOS and fails until the shift is rounded to whole intervals.
//! * [`pushed_metadata_names_rtp_only_media`]: `POST /v1/calls` before the media of an
//!   RTP-only flow starts (replay at `--speed 3` with a lead-in), and for a flow already
//!   running on the pushed id's worker: the stored calls carry the pushed id, agent,
//!   MNO, numbers and direction, with the media figures analyze finds.
//!   [`push_for_running_flow_on_another_worker`] (ignored) shows that metadata pushed
//!   for a flow already cached on another worker never attaches.
//! * [`api_keys_from_config_and_env`] and [`non_loopback_listen_without_keys_is_refused`].
//!
//! The per-MNO and per-agent tables the daemon serves are printed on stderr (see them
//! with `--nocapture`).

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

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use callmix::{MediaTruth, MixCall, RtpOnlyFlow, LOCAL_NET};
use daemon::{wait_for, Workdir};
use http::{enc, Client};
use probe::Probe;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Figures are stored rounded to 6 decimals; equal figures agree to this.
const TOL: f64 = 1e-6;

// ---------------------------------------------------------------------------------------
// Time

fn now_ns() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos(),
    )
    .expect("ns fit u64")
}

fn rfc3339_ns(ns: i128) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(ns)
        .expect("timestamp")
        .format(&Rfc3339)
        .expect("format")
}

fn parse_ns(s: &str) -> i128 {
    OffsetDateTime::parse(s, &Rfc3339)
        .unwrap_or_else(|e| panic!("{s:?}: {e}"))
        .unix_timestamp_nanos()
}

/// `YYYY-MM-DD` (UTC) of an instant.
fn day_of_ns(ns: i128) -> String {
    rfc3339_ns(ns)[..10].to_string()
}

fn today() -> String {
    day_of_ns(now_ns() as i128)
}

// ---------------------------------------------------------------------------------------
// Reference computations

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Nearest-rank percentile: the k-th smallest with k = ⌈p·n/100⌉ (at least 1).
fn nearest_rank(values: &[f64], pct: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let k = ((pct / 100.0 * v.len() as f64).ceil() as usize).max(1);
    Some(v[k - 1])
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn mos(c: &Value) -> Option<f64> {
    num(&c["quality_mos"])
}

fn q(c: &Value, k: &str) -> Option<f64> {
    num(&c["quality"][k])
}

/// The MNO/agent table figures of a group of calls.
fn figures(calls: &[&Value]) -> Value {
    let m: Vec<f64> = calls.iter().filter_map(|c| mos(c)).collect();
    let jit: Vec<f64> = calls.iter().filter_map(|c| q(c, "jitter_ms")).collect();
    let loss: Vec<f64> = calls.iter().filter_map(|c| q(c, "loss_ratio")).collect();
    let rtt: Vec<f64> = calls.iter().filter_map(|c| q(c, "rtt_ms")).collect();
    let poor = m.iter().filter(|x| **x < 3.1).count();
    json!({
        "calls": calls.len(),
        "average_mos": mean(&m),
        "p10_mos": nearest_rank(&m, 10.0),
        "poor_call_ratio": (!m.is_empty()).then(|| poor as f64 / m.len() as f64),
        "average_jitter_ms": mean(&jit),
        "average_loss_ratio": mean(&loss),
        "average_rtt_ms": mean(&rtt),
    })
}

const FIGURE_KEYS: [&str; 6] = [
    "average_mos",
    "p10_mos",
    "poor_call_ratio",
    "average_jitter_ms",
    "average_loss_ratio",
    "average_rtt_ms",
];

/// `got` is `want` (a number within [`TOL`], or both null).
fn approx(got: &Value, want: Option<f64>, what: &str) {
    match want {
        None => assert!(got.is_null(), "{what}: want null, got {got}"),
        Some(w) => {
            let g = got
                .as_f64()
                .unwrap_or_else(|| panic!("{what}: want {w}, got {got}"));
            assert!((g - w).abs() <= TOL, "{what}: got {g}, want {w}");
        }
    }
}

/// Differences between two JSON values, numbers compared within [`TOL`]; keys in
/// `skip` (at any depth) are left out.
fn diff(path: &str, got: &Value, want: &Value, skip: &[&str], out: &mut Vec<String>) {
    match (got, want) {
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (
                a.as_f64().unwrap_or(f64::NAN),
                b.as_f64().unwrap_or(f64::NAN),
            );
            if (a - b).abs() > TOL {
                out.push(format!("{path}: {a} != {b}"));
            }
        }
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                if skip.contains(&k.as_str()) {
                    continue;
                }
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => diff(&format!("{path}.{k}"), x, y, skip, out),
                    (x, y) => out.push(format!("{path}.{k}: present {:?} vs {:?}", x, y)),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                out.push(format!("{path}: {} items vs {}", a.len(), b.len()));
            } else {
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    diff(&format!("{path}[{i}]"), x, y, skip, out);
                }
            }
        }
        (a, b) => {
            if a != b {
                out.push(format!("{path}: {a} != {b}"));
            }
        }
    }
}

fn assert_same(what: &str, got: &Value, want: &Value, skip: &[&str]) {
    let mut d = Vec::new();
    diff(what, got, want, skip, &mut d);
    assert!(
        d.is_empty(),
        "{what}: {} differences:\n{}\ngot:  {got}\nwant: {want}",
        d.len(),
        d.join("\n")
    );
}

fn ids<'a>(calls: impl IntoIterator<Item = &'a Value>) -> BTreeSet<String> {
    calls
        .into_iter()
        .map(|c| c["call_id"].as_str().expect("call_id").to_string())
        .collect()
}

/// The MNO libphonenumber's carrier data gives each remote number of the mixes (as
/// Python `phonenumbers`' `carrier.name_for_number` says; tests/numbers_oracle.rs
/// holds vqprobe to that package).
fn expected_mno(number: &str) -> &'static str {
    if number.starts_with("+49151") {
        "T-Mobile"
    } else if number.starts_with("+49152") {
        "Vodafone"
    } else if number.starts_with("+447400") {
        "Three"
    } else {
        "unknown"
    }
}

/// The country libphonenumber gives each remote number of the mixes (+1 555 is not a
/// valid NANP number, so no country).
fn expected_country(number: &str) -> Value {
    if number.starts_with("+49") {
        json!("DE")
    } else if number.starts_with("+44") {
        json!("GB")
    } else {
        Value::Null
    }
}

// ---------------------------------------------------------------------------------------
// A daemon replaying a mix

fn config(extra: &str) -> String {
    format!(
        "[capture]\nlocal_networks = [\"{LOCAL_NET}\"]\n\n[calls]\nrtp_timeout_s = 2\n\n{extra}"
    )
}

fn loopback() -> String {
    format!("127.0.0.1:{}", daemon::free_port())
}

/// A daemon that replayed a generated mix, with analyze's records of the same file.
/// Fields drop in order: the daemon stops before its directory goes.
struct Replayed {
    _probe: Probe,
    client: Client,
    mix: Vec<MixCall>,
    /// analyze's records, by call id.
    truth: BTreeMap<String, Value>,
    _work: Workdir,
}

/// Writes `mix` at `base`, analyses it, checks analyze against the plan, replays it
/// with `args`, and waits (≤ 30 s) until every call is stored with a final status.
fn replay(mix: Vec<MixCall>, base: u64, args: &[&str]) -> Replayed {
    let work = Workdir::new();
    let cap = work.path().join("mix.pcap");
    let media = callmix::write_mix(&cap, base, capgen::ms(500), &mix);
    let doc = daemon::analyze_json(&cap, &["--local-net", LOCAL_NET]);
    let truth: BTreeMap<String, Value> = doc["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .map(|c| {
            (
                c["call_id"].as_str().expect("call_id").to_string(),
                c.clone(),
            )
        })
        .collect();
    check_truth_against_plan(&mix, &media, &truth);

    let cap_s = cap.to_str().expect("utf-8 path");
    let mut all_args = vec!["--replay", cap_s];
    all_args.extend_from_slice(args);
    let mut probe = Probe::spawn(&work, &config(""), &work.db(), &loopback(), &all_args, &[]);
    probe.wait_api(Duration::from_secs(10));
    let client = Client::new(&probe.base(), None);
    wait_final(&client, &mut probe, mix.len());
    Replayed {
        _probe: probe,
        client,
        mix,
        truth,
        _work: work,
    }
}

/// Polls `/v1/calls?page_size=100` (≤ 30 s) until `n` calls are stored, none
/// `in_progress`; returns them.
fn wait_final(client: &Client, probe: &mut Probe, n: usize) -> Vec<Value> {
    let mut last = Value::Null;
    let ok = wait_for(Duration::from_secs(30), || {
        let r = client.get("/v1/calls?page_size=100");
        if r.status != 200 {
            return false;
        }
        last = r.json();
        let data = last["data"].as_array().cloned().unwrap_or_default();
        last["total"] == n && data.iter().all(|c| c["status"] != "in_progress")
    });
    assert!(
        ok,
        "not all {n} calls final within 30 s (running: {}); last listing: {last}\nstderr:\n{}",
        probe.is_running(),
        probe.stderr()
    );
    last["data"].as_array().cloned().unwrap_or_default()
}

/// analyze's records are what the generator planned (so they can be the truth).
fn check_truth_against_plan(
    mix: &[MixCall],
    media: &[MediaTruth],
    truth: &BTreeMap<String, Value>,
) {
    assert_eq!(truth.len(), mix.len(), "analyze found {:?}", truth.keys());
    for (c, m) in mix.iter().zip(media) {
        let t = truth
            .get(&c.sip_call_id)
            .unwrap_or_else(|| panic!("analyze lost {}", c.sip_call_id));
        let what = &c.sip_call_id;
        assert_eq!(t["sip_call_id"], c.sip_call_id.as_str(), "{what}");
        assert_eq!(t["agent_id"], c.agent, "{what}");
        assert_eq!(t["direction"], c.direction(), "{what}");
        assert_eq!(t["status"], c.status(), "{what}");
        assert_eq!(t["from_number"], c.caller_number(), "{what}");
        assert_eq!(t["to_number"], c.callee_number(), "{what}");
        assert_eq!(t["mno"], expected_mno(c.remote_number), "{what}");
        assert_eq!(t["country"], expected_country(c.remote_number), "{what}");
        let source = (expected_mno(c.remote_number) != "unknown").then_some("libphonenumber");
        assert_eq!(t["mno_source"], json!(source), "{what}");
        // The capture writes E.164 user parts: raw and normalised agree.
        assert_eq!(t["from_raw"], c.caller_number(), "{what}");
        assert_eq!(t["to_raw"], c.callee_number(), "{what}");
        assert_eq!(t["from_anonymous"], false, "{what}");
        let streams = t["streams"].as_array().expect("streams");
        if c.outcome != callmix::Outcome::Completed {
            assert!(streams.is_empty(), "{what}: {t}");
            assert!(t["quality_mos"].is_null(), "{what}");
            continue;
        }
        assert_eq!(streams.len(), 2, "{what}: {t}");
        for s in streams {
            let (sent, lost) = if s["direction"] == "inbound" {
                (m.sent_in, m.lost_in)
            } else {
                (m.sent_out, m.lost_out)
            };
            assert_eq!(s["expected"], sent, "{what}: {s}");
            assert_eq!(s["lost"], lost, "{what}: {s}");
            assert_eq!(s["packets"], sent - lost, "{what}: {s}");
        }
        assert!(t["quality_mos"].is_f64(), "{what}: {t}");
        assert_eq!(
            t["quality"]["rtt_ms"].is_null(),
            c.rtcp_rtt_us.is_none(),
            "{what}"
        );
    }
}

impl Replayed {
    fn calls(&self) -> Vec<&Value> {
        self.truth.values().collect()
    }

    fn plan(&self, call_id: &str) -> &MixCall {
        self.mix
            .iter()
            .find(|c| c.sip_call_id == call_id)
            .expect("planned call")
    }
}

// ---------------------------------------------------------------------------------------
// The main test

/// Columns of a call in the list (a CallRecord without streams).
fn without_streams(c: &Value) -> Value {
    let mut v = c.clone();
    v.as_object_mut().expect("object").remove("streams");
    v
}

#[test]
fn replayed_calls_through_the_api() {
    // Today's timestamps, in the past (the last packet a few seconds ago), so the
    // replay needs no rebase and the calls fall in every `days=` window. A whole
    // multiple of 5 s, so the scoring intervals cut the streams the same way on every
    // run and the figures (the printed tables) are reproducible.
    let base = (now_ns() - 60_000_000_000) / 5_000_000_000 * 5_000_000_000;
    let t0 = Instant::now();
    let r = replay(callmix::api_mix(), base, &["--speed", "0"]);
    let all_final = t0.elapsed();
    let c = &r.client;
    let n = r.mix.len();

    // ---- /v1/calls: every call, every figure ------------------------------------------
    let list = c.get_json("/v1/calls?page_size=100");
    assert_eq!(list["total"], n);
    assert_eq!(list["page"], 1);
    assert_eq!(list["page_size"], 100);
    let data = list["data"].as_array().expect("data").clone();
    assert_eq!(data.len(), n);
    for got in &data {
        let id = got["call_id"].as_str().expect("call_id");
        let want = r
            .truth
            .get(id)
            .unwrap_or_else(|| panic!("unknown call {id}"));
        assert!(
            got.get("streams").is_none(),
            "a list carries no streams: {got}"
        );
        assert_same(&format!("list {id}"), got, &without_streams(want), &[]);
    }
    // Newest first.
    let created: Vec<i128> = data
        .iter()
        .map(|c| parse_ns(c["created_at"].as_str().expect("created_at")))
        .collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "{created:?}");

    // Filters, alone and combined, against the same filter applied to the truth.
    let calls = r.calls();
    let by = |f: &dyn Fn(&Value) -> bool| -> BTreeSet<String> {
        ids(calls.iter().copied().filter(|c| f(c)))
    };
    let mut cases: Vec<(String, BTreeSet<String>)> = Vec::new();
    for a in ["agent-a", "agent-b", "agent-c", "agent-nobody"] {
        cases.push((format!("agent_id={a}"), by(&|c| c["agent_id"] == a)));
    }
    for m in ["T-Mobile", "Vodafone", "Three", "unknown", "EE"] {
        cases.push((format!("mno={}", enc(m)), by(&|c| c["mno"] == m)));
    }
    for s in ["completed", "failed", "abandoned", "in_progress"] {
        cases.push((format!("status={s}"), by(&|c| c["status"] == s)));
    }
    for d in ["inbound", "outbound"] {
        cases.push((format!("direction={d}"), by(&|c| c["direction"] == d)));
    }
    for lo in [3.0, 3.9, 4.3] {
        cases.push((
            format!("min_mos={lo}"),
            by(&|c| mos(c).is_some_and(|m| m >= lo)),
        ));
        cases.push((
            format!("max_mos={lo}"),
            by(&|c| mos(c).is_some_and(|m| m <= lo)),
        ));
    }
    cases.push((
        "min_mos=3.8&max_mos=4.29".into(),
        by(&|c| mos(c).is_some_and(|m| (3.8..=4.29).contains(&m))),
    ));
    cases.push((
        "agent_id=agent-a&direction=outbound".into(),
        by(&|c| c["agent_id"] == "agent-a" && c["direction"] == "outbound"),
    ));
    cases.push((
        format!("mno={}&status=completed&min_mos=3.5", enc("Three")),
        by(&|c| {
            c["mno"] == "Three" && c["status"] == "completed" && mos(c).is_some_and(|m| m >= 3.5)
        }),
    ));
    let today_s = today();
    let day_from = rfc3339_ns(i128::from(base));
    cases.push((
        format!("date_from={}&date_to={}", today_s, today_s),
        by(&|c| {
            c["created_at"]
                .as_str()
                .is_some_and(|t| t.starts_with(&today_s))
        }),
    ));
    cases.push((
        format!("date_from={}", enc(&day_from)),
        by(&|c| parse_ns(c["created_at"].as_str().unwrap_or("")) >= i128::from(base)),
    ));
    let mut nonempty = 0;
    for (qs, want) in &cases {
        let v = c.get_json(&format!("/v1/calls?page_size=100&{qs}"));
        let got = ids(v["data"].as_array().expect("data"));
        assert_eq!(&got, want, "/v1/calls?{qs}");
        assert_eq!(v["total"], want.len(), "/v1/calls?{qs} total");
        nonempty += usize::from(!want.is_empty());
    }
    assert!(
        nonempty >= cases.len() - 4,
        "filters should mostly match something"
    );

    // Pages of 5: 5 + 5 + 2, in the order of the full listing, then an empty page.
    let order: Vec<String> = data
        .iter()
        .map(|c| c["call_id"].as_str().unwrap_or("").to_string())
        .collect();
    let mut paged = Vec::new();
    for page in 1..=3 {
        let v = c.get_json(&format!("/v1/calls?page_size=5&page={page}"));
        assert_eq!(v["total"], n, "page {page}");
        assert_eq!(v["page"], page);
        assert_eq!(v["page_size"], 5);
        let d = v["data"].as_array().expect("data");
        assert_eq!(d.len(), if page < 3 { 5 } else { n - 10 }, "page {page}");
        paged.extend(
            d.iter()
                .map(|c| c["call_id"].as_str().unwrap_or("").to_string()),
        );
    }
    assert_eq!(paged, order, "pages of 5 walk the listing in order");
    let v = c.get_json("/v1/calls?page_size=5&page=4");
    assert_eq!(v["total"], n);
    assert_eq!(v["data"], json!([]));
    let v = c.get_json("/v1/calls?page_size=2&agent_id=agent-b&page=2");
    assert_eq!(v["total"], 4);
    assert_eq!(v["data"].as_array().map(Vec::len), Some(2));
    c.get("/v1/calls?page_size=101").error(400, "bad_request");
    c.get("/v1/calls?status=done").error(400, "bad_request");

    // ---- /v1/calls/{id}: the full record, streams included ----------------------------
    for (id, want) in &r.truth {
        let got = c.get_json(&format!("/v1/calls/{}", enc(id)));
        assert_same(&format!("GET /v1/calls/{id}"), &got, want, &[]);
        // The plain '@' form names the same call.
        assert_eq!(
            c.get_json(&format!("/v1/calls/{id}"))["call_id"],
            id.as_str()
        );
        let plan = r.plan(id);
        let streams = got["streams"].as_array().expect("streams");
        if plan.outcome == callmix::Outcome::Completed {
            let dirs: Vec<&str> = streams
                .iter()
                .map(|s| s["direction"].as_str().unwrap_or(""))
                .collect();
            assert_eq!(dirs, ["inbound", "outbound"], "{id}");
            assert!(streams.iter().all(|s| s["codec"] == "PCMU"), "{id}");
        }
    }
    let m = c.get("/v1/calls/no-such-call%40x").error(404, "not_found");
    assert!(m.contains("no-such-call@x"), "{m}");

    // ---- /v1/analytics before any resolution -----------------------------------------
    let summary = |qs: &str| c.get_json(&format!("/v1/analytics?{qs}"));
    let v = summary("days=7");
    assert!(
        v["resolution_rate"].is_null(),
        "nothing classified yet: {v}"
    );

    // ---- Resolutions: 2 resolved, 1 unresolved ---------------------------------------
    let resolutions = [
        ("mix-00@capgen.test", "resolved"),
        ("mix-04@capgen.test", "resolved"),
        ("mix-08@capgen.test", "unresolved"),
    ];
    for (id, res) in resolutions {
        let before = now_ns() as i128;
        let resp = c.send_json(
            "PUT",
            &format!("/v1/calls/{}/resolution", enc(id)),
            &json!({ "resolution": res }),
        );
        assert_eq!(resp.status, 200, "PUT {id}: {}", resp.text());
        let v = resp.json();
        assert_eq!(v["resolution"], res);
        let at = parse_ns(v["classified_at"].as_str().expect("classified_at"));
        assert!(
            at >= before - 1_000_000_000 && at <= now_ns() as i128 + 1_000_000_000,
            "classified_at {} is not now",
            v["classified_at"]
        );
        // Everything else is untouched.
        assert_same(
            &format!("PUT {id}"),
            &v,
            &r.truth[id],
            &["resolution", "classified_at"],
        );
        assert_eq!(
            c.get_json(&format!("/v1/calls/{}", enc(id)))["resolution"],
            res
        );
    }
    c.send_json(
        "PUT",
        "/v1/calls/mix-01%40capgen.test/resolution",
        &json!({ "resolution": "maybe" }),
    )
    .error(400, "bad_request");
    c.send_json(
        "PUT",
        "/v1/calls/nope/resolution",
        &json!({ "resolution": "resolved" }),
    )
    .error(404, "not_found");
    let resolved: BTreeMap<&str, bool> = resolutions
        .iter()
        .map(|(id, res)| (*id, *res == "resolved"))
        .collect();

    // ---- /v1/analytics?days=7, plain and filtered --------------------------------------
    let summary_want = |f: &dyn Fn(&Value) -> bool| -> Value {
        let sel: Vec<&Value> = calls.iter().copied().filter(|c| f(c)).collect();
        let m: Vec<f64> = sel.iter().filter_map(|c| mos(c)).collect();
        let d: Vec<f64> = sel
            .iter()
            .filter(|c| c["status"] == "completed")
            .filter_map(|c| num(&c["duration_seconds"]))
            .collect();
        let classified: Vec<bool> = sel
            .iter()
            .filter_map(|c| resolved.get(c["call_id"].as_str().unwrap_or("")).copied())
            .collect();
        let rate = (!classified.is_empty())
            .then(|| classified.iter().filter(|x| **x).count() as f64 / classified.len() as f64);
        let mut per_day: BTreeMap<String, usize> = BTreeMap::new();
        for c in &sel {
            *per_day
                .entry(c["created_at"].as_str().unwrap_or("")[..10].to_string())
                .or_default() += 1;
        }
        json!({
            "total_calls": sel.len(),
            "average_mos": mean(&m),
            "average_duration_seconds": mean(&d),
            "resolution_rate": rate,
            "per_day": per_day,
        })
    };
    let check_summary = |qs: &str, f: &dyn Fn(&Value) -> bool| {
        let got = summary(qs);
        let want = summary_want(f);
        assert_eq!(got["total_calls"], want["total_calls"], "{qs}");
        for k in ["average_mos", "average_duration_seconds", "resolution_rate"] {
            approx(
                &got[k],
                want[k].as_f64(),
                &format!("/v1/analytics?{qs} {k}"),
            );
        }
        let days: usize = qs
            .split('&')
            .find_map(|p| p.strip_prefix("days="))
            .map_or(7, |d| d.parse().expect("days"));
        let per_day = got["calls_per_day"].as_array().expect("calls_per_day");
        assert_eq!(per_day.len(), days, "{qs}: {got}");
        assert_eq!(
            per_day.last().map(|d| &d["date"]),
            Some(&json!(today())),
            "{qs}"
        );
        for d in per_day {
            let date = d["date"].as_str().expect("date");
            let n = want["per_day"][date].as_u64().unwrap_or(0);
            assert_eq!(d["count"], n, "{qs}: {date}");
        }
        got
    };
    let all = check_summary("days=7", &|_| true);
    assert_eq!(all["total_calls"], n);
    approx(&all["resolution_rate"], Some(2.0 / 3.0), "resolution_rate");
    check_summary("days=30", &|_| true);
    check_summary("days=90", &|_| true);
    for a in ["agent-a", "agent-b", "agent-c"] {
        check_summary(&format!("days=7&agent_id={a}"), &|c| c["agent_id"] == a);
    }
    for m in ["T-Mobile", "Vodafone", "Three", "unknown"] {
        check_summary(&format!("days=7&mno={}", enc(m)), &|c| c["mno"] == m);
    }
    check_summary(
        &format!("days=7&agent_id=agent-c&mno={}", enc("Three")),
        &|c| c["agent_id"] == "agent-c" && c["mno"] == "Three",
    );
    // agent-c's only classified call is unresolved; Vodafone's calls have none.
    approx(
        &summary("agent_id=agent-c")["resolution_rate"],
        Some(0.0),
        "agent-c",
    );
    assert!(summary(&format!("mno={}", enc("Vodafone")))["resolution_rate"].is_null());
    let m = c.get("/v1/analytics?days=5").error(400, "bad_request");
    assert!(m.contains("days"), "{m}");

    // ---- MNO and agent tables ------------------------------------------------------
    let groups = |key: &str| -> Vec<(String, Value)> {
        // A null agent or country is a group of its own, named "" here.
        let name_of = |c: &Value| c[key].as_str().unwrap_or("").to_string();
        let mut names: Vec<String> = calls
            .iter()
            .map(|c| name_of(c))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let count = |name: &str| calls.iter().filter(|c| name_of(c) == name).count();
        // Most calls first, then by name.
        names.sort_by(|a, b| count(b).cmp(&count(a)).then(a.cmp(b)));
        names
            .into_iter()
            .map(|name| {
                let sel: Vec<&Value> = calls
                    .iter()
                    .copied()
                    .filter(|c| name_of(c) == name)
                    .collect();
                (name, figures(&sel))
            })
            .collect()
    };
    let mut table = String::new();
    for (path, key) in [
        ("/v1/analytics/mno?days=7", "mno"),
        ("/v1/analytics/agents?days=7", "agent_id"),
        ("/v1/analytics/countries?days=7", "country"),
    ] {
        let got = c.get_json(path);
        let rows = got.as_array().expect("rows");
        let want = groups(key);
        let got_names: Vec<&str> = rows.iter().map(|r| r[key].as_str().unwrap_or("")).collect();
        let want_names: Vec<&str> = want.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(got_names, want_names, "{path}: rows and their order");
        table.push_str(&format!(
            "\n{:<21} {:>5} {:>8} {:>8} {:>6} {:>10} {:>9} {:>8}\n",
            key, "calls", "avg_mos", "p10_mos", "poor", "jitter_ms", "loss", "rtt_ms"
        ));
        for (row, (name, w)) in rows.iter().zip(&want) {
            assert_eq!(row["calls"], w["calls"], "{path} {name}");
            for k in FIGURE_KEYS {
                approx(&row[k], w[k].as_f64(), &format!("{path} {name} {k}"));
            }
            let f = |k: &str, p: usize| {
                row[k]
                    .as_f64()
                    .map_or("-".to_string(), |x| format!("{x:.p$}"))
            };
            table.push_str(&format!(
                "{:<21} {:>5} {:>8} {:>8} {:>6} {:>10} {:>9} {:>8}\n",
                name,
                row["calls"].as_u64().unwrap_or(0),
                f("average_mos", 4),
                f("p10_mos", 4),
                f("poor_call_ratio", 3),
                f("average_jitter_ms", 4),
                f("average_loss_ratio", 5),
                f("average_rtt_ms", 2),
            ));
        }
        c.get(&format!("{}0", path.trim_end_matches('7')))
            .error(400, "bad_request");
    }
    eprintln!("rollups from the daemon (equal to the hand computation):{table}");

    // ---- POST /v1/analytics --------------------------------------------------------
    let range = json!({
        "start": rfc3339_ns(i128::from(base) - 3_600_000_000_000),
        "end": rfc3339_ns(now_ns() as i128 + 3_600_000_000_000),
    });
    let body = json!({ "queries": [
        {
            "name": "by-mno",
            "table": "calls",
            "groupBy": ["mno"],
            "operations": [
                { "operation": "count", "column": "call_id", "alias": "calls" },
                { "operation": "avg", "column": "mos", "alias": "avg_mos" },
                { "operation": "p50", "column": "mos", "alias": "p50_mos" },
                { "operation": "max", "column": "jitter_ms", "alias": "max_jitter" }
            ],
            "timeRange": range
        },
        {
            "name": "by-agent-status",
            "table": "calls",
            "groupBy": ["agent_id", "status"],
            "operations": [
                { "operation": "count", "column": "call_id" },
                { "operation": "sum", "column": "duration_seconds" },
                { "operation": "min", "column": "mos" },
                { "operation": "p90", "column": "loss_ratio" },
                { "operation": "avg", "column": "rtt_ms" }
            ],
            "timeRange": range
        }
    ]});
    let resp = c.send_json("POST", "/v1/analytics", &body);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let v = resp.json();
    let results = v.as_array().expect("results");
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["name"], "by-mno");
    assert_eq!(results[1]["name"], "by-agent-status");
    // by-mno: one row per MNO (one bucket).
    let rows = results[0]["result"].as_array().expect("result");
    let mnos: BTreeSet<String> = calls
        .iter()
        .map(|c| c["mno"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(rows.len(), mnos.len(), "{v}");
    for row in rows {
        let name = row["mno"].as_str().expect("mno");
        let sel: Vec<&Value> = calls.iter().copied().filter(|c| c["mno"] == name).collect();
        let m: Vec<f64> = sel.iter().filter_map(|c| mos(c)).collect();
        let j: Vec<f64> = sel.iter().filter_map(|c| q(c, "jitter_ms")).collect();
        assert_eq!(row["calls"], sel.len(), "{name}");
        approx(&row["avg_mos"], mean(&m), &format!("{name} avg_mos"));
        approx(
            &row["p50_mos"],
            nearest_rank(&m, 50.0),
            &format!("{name} p50_mos"),
        );
        approx(
            &row["max_jitter"],
            j.iter().copied().reduce(f64::max),
            &format!("{name} max_jitter"),
        );
        assert!(row["date"].is_string(), "{row}");
    }
    // by-agent-status: one row per (agent, status) present.
    let rows = results[1]["result"].as_array().expect("result");
    let pairs: BTreeSet<(String, String)> = calls
        .iter()
        .map(|c| {
            (
                c["agent_id"].as_str().unwrap_or("").to_string(),
                c["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(rows.len(), pairs.len(), "{v}");
    for row in rows {
        let (a, s) = (
            row["agent_id"].as_str().expect("a"),
            row["status"].as_str().expect("s"),
        );
        let sel: Vec<&Value> = calls
            .iter()
            .copied()
            .filter(|c| c["agent_id"] == a && c["status"] == s)
            .collect();
        let what = format!("{a}/{s}");
        assert_eq!(row["count_call_id"], sel.len(), "{what}");
        let d: Vec<f64> = sel
            .iter()
            .filter_map(|c| num(&c["duration_seconds"]))
            .collect();
        approx(&row["sum_duration_seconds"], Some(d.iter().sum()), &what);
        let m: Vec<f64> = sel.iter().filter_map(|c| mos(c)).collect();
        approx(&row["min_mos"], m.iter().copied().reduce(f64::min), &what);
        let l: Vec<f64> = sel.iter().filter_map(|c| q(c, "loss_ratio")).collect();
        approx(&row["p90_loss_ratio"], nearest_rank(&l, 90.0), &what);
        let t: Vec<f64> = sel.iter().filter_map(|c| q(c, "rtt_ms")).collect();
        approx(&row["avg_rtt_ms"], mean(&t), &what);
    }
    // Unknown names are 400s that name them.
    let bad = |op: Value, group: Value| {
        json!({ "queries": [{ "name": "q", "table": "calls", "groupBy": group,
                              "operations": [op] }] })
    };
    for (body, name) in [
        (
            bad(
                json!({"operation": "avg", "column": "bogus_col"}),
                json!(["mno"]),
            ),
            "bogus_col",
        ),
        (
            bad(
                json!({"operation": "median", "column": "mos"}),
                json!(["mno"]),
            ),
            "median",
        ),
        (
            bad(
                json!({"operation": "avg", "column": "mos"}),
                json!(["planet"]),
            ),
            "planet",
        ),
    ] {
        let m = c
            .send_json("POST", "/v1/analytics", &body)
            .error(400, "bad_request");
        assert!(m.contains(name), "the 400 should name {name}: {m}");
    }

    // ---- Export of one agent -------------------------------------------------------
    let columns = [
        "call_id",
        "from_number",
        "to_number",
        "direction",
        "status",
        "duration_seconds",
        "created_at",
        "transcript_text",
        "quality_mos",
        "mos_lq",
        "r_factor",
        "min_interval_mos",
        "jitter_ms",
        "loss_ratio",
        "rtt_ms",
        "mno",
        "codec",
    ];
    let export_want = |c: &Value, col: &str| -> Value {
        match col {
            "transcript_text" => json!(""),
            "quality_mos" => c["quality_mos"].clone(),
            "mos_lq" | "r_factor" | "min_interval_mos" | "jitter_ms" | "loss_ratio" | "rtt_ms" => {
                c["quality"][col].clone()
            }
            other => c[other].clone(),
        }
    };
    let mut agent_b: Vec<&Value> = calls
        .iter()
        .copied()
        .filter(|c| c["agent_id"] == "agent-b")
        .collect();
    agent_b.sort_by_key(|c| parse_ns(c["created_at"].as_str().unwrap_or("")));
    let resp = c.get("/v1/agents/agent-b/conversations/export?format=csv");
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(
        resp.header("content-type").starts_with("text/csv"),
        "{:?}",
        resp.headers
    );
    let mut rd = csv::Reader::from_reader(resp.body.as_slice());
    let header: Vec<String> = rd
        .headers()
        .expect("CSV header")
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(header, columns);
    let rows: Vec<csv::StringRecord> = rd.records().collect::<Result<_, _>>().expect("CSV rows");
    assert_eq!(rows.len(), agent_b.len());
    for (row, want) in rows.iter().zip(&agent_b) {
        let id = want["call_id"].as_str().unwrap_or("");
        assert_eq!(row.len(), columns.len(), "{id}");
        for (col, cell) in columns.iter().zip(row.iter()) {
            let w = export_want(want, col);
            match &w {
                Value::Null => assert_eq!(cell, "", "{id} {col}"),
                Value::Number(x) => {
                    let g: f64 = cell
                        .parse()
                        .unwrap_or_else(|e| panic!("{id} {col}: {cell:?}: {e}"));
                    assert!(
                        (g - x.as_f64().unwrap_or(f64::NAN)).abs() <= TOL,
                        "{id} {col}: {cell} vs {x}"
                    );
                }
                Value::String(s) => assert_eq!(cell, s, "{id} {col}"),
                other => panic!("{id} {col}: unexpected {other}"),
            }
        }
    }
    let v = c.get_json("/v1/agents/agent-b/conversations/export?format=json");
    let arr = v.as_array().expect("array");
    assert_eq!(arr.len(), agent_b.len());
    for (row, want) in arr.iter().zip(&agent_b) {
        let obj = row.as_object().expect("object");
        assert_eq!(
            obj.keys().map(String::as_str).collect::<BTreeSet<&str>>(),
            columns.iter().copied().collect::<BTreeSet<&str>>()
        );
        for col in columns {
            assert_same(
                &format!("export json {} {col}", want["call_id"]),
                &row[col],
                &export_want(want, col),
                &[],
            );
        }
    }

    // ---- Health, metrics, OpenAPI --------------------------------------------------
    let h = c.get("/healthz");
    assert_eq!(h.status, 200, "{}", h.text());
    let hv = h.json();
    assert_eq!(hv["status"], "ok");
    assert_eq!(hv["capture"], "running");
    let newest = data[0]["created_at"].clone();
    assert_eq!(hv["last_call_at"], newest);

    let metrics = c.get("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics.header("content-type").starts_with("text/plain"));
    let text = metrics.text();
    let mut by_status: BTreeMap<String, f64> = BTreeMap::new();
    let mut sum = 0.0;
    for line in text
        .lines()
        .filter(|l| l.starts_with("vqprobe_calls_total{"))
    {
        let (labels, value) = line.rsplit_once(' ').expect("sample");
        let value: f64 = value.parse().expect("sample value");
        sum += value;
        let status = labels
            .split("status=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or("?");
        *by_status.entry(status.to_string()).or_default() += value;
    }
    assert_eq!(sum, n as f64, "sum of vqprobe_calls_total:\n{text}");
    for s in ["completed", "failed", "abandoned"] {
        let want = calls.iter().filter(|c| c["status"] == s).count() as f64;
        assert_eq!(
            by_status.get(s).copied().unwrap_or(0.0),
            want,
            "{s}: {by_status:?}"
        );
    }

    let doc = c.get_json("/openapi.json");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let expected: BTreeSet<(String, String)> = [
        ("GET", "/healthz"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("GET", "/v1/analytics"),
        ("POST", "/v1/analytics"),
        ("GET", "/v1/analytics/mno"),
        ("GET", "/v1/analytics/agents"),
        ("GET", "/v1/analytics/countries"),
        ("GET", "/v1/calls"),
        ("POST", "/v1/calls"),
        ("GET", "/v1/calls/{call_id}"),
        ("PUT", "/v1/calls/{call_id}/resolution"),
        ("GET", "/v1/agents/{agent_id}/conversations/export"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    let served: BTreeSet<(String, String)> = vqprobe::api::served_routes()
        .into_iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(served, expected, "the daemon's route table");
    assert_eq!(documented, expected, "/openapi.json paths");
    // Each documented route is really served by the running daemon.
    for (method, path) in &documented {
        let concrete = path
            .replace("{call_id}", "mix-01%40capgen.test")
            .replace("{agent_id}", "agent-a");
        let resp = match method.as_str() {
            "GET" => c.get(&concrete),
            // Empty objects: a 400 (or 422) from the handler, not the router's 404/405.
            _ => c.send_json(method, &concrete, &json!({})),
        };
        assert_ne!(resp.status, 405, "{method} {path}");
        assert_ne!(resp.status, 404, "{method} {path}: {}", resp.text());
        assert!(resp.status < 500, "{method} {path}: {}", resp.text());
    }
    let m = c.get("/v1/nothing").error(404, "not_found");
    assert!(!m.is_empty());

    eprintln!(
        "replayed_calls_through_the_api: {n} calls final {:.2} s after start; whole test {:.2} s",
        all_final.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    drop(r);
}

// ---------------------------------------------------------------------------------------
// --rebase-time

/// Figures that do not depend on where the scoring intervals fall.
const INTERVAL_FIGURES: [&str; 8] = [
    "quality_mos",
    "mos",
    "mos_lq",
    "r_factor",
    "min_interval_mos",
    "mos_jb50",
    "mos_jb200",
    "intervals",
];

#[test]
fn rebased_replay_lands_today() {
    let t0 = Instant::now();
    let r = replay(
        callmix::api_mix(),
        capgen::BASE_TIME,
        &["--speed", "0", "--rebase-time"],
    );
    let c = &r.client;
    let data = c.get_json("/v1/calls?page_size=100")["data"]
        .as_array()
        .cloned()
        .expect("data");
    let now = now_ns() as i128;
    let allowed: BTreeSet<String> = [now - 120_000_000_000, now, now + 120_000_000_000]
        .into_iter()
        .map(day_of_ns)
        .collect();
    let mut shifts = Vec::new();
    let mut mos_diffs = Vec::new();
    for got in &data {
        let id = got["call_id"].as_str().expect("id");
        let want = &r.truth[id];
        let full = c.get_json(&format!("/v1/calls/{}", enc(id)));
        let created = parse_ns(got["created_at"].as_str().expect("created_at"));
        assert!(
            allowed.contains(&day_of_ns(created)),
            "{id} created {} is not today",
            got["created_at"]
        );
        shifts.push(created - parse_ns(want["created_at"].as_str().expect("created_at")));
        // Everything but timestamps and interval-bound figures is analyze's.
        let mut skip = vec!["created_at", "ended_at", "start"];
        skip.extend(INTERVAL_FIGURES);
        assert_same(&format!("rebased {id}"), &full, want, &skip);
        if let (Some(a), Some(b)) = (mos(&full), mos(want)) {
            mos_diffs.push(((a - b).abs(), id.to_string()));
        }
        // Shifted by the same amount as created_at.
        if let (Some(e), Some(w)) = (got["ended_at"].as_str(), want["ended_at"].as_str()) {
            let d = parse_ns(e) - parse_ns(w) - shifts.last().copied().unwrap_or(0);
            assert!(
                d.abs() <= 1_000_000,
                "{id}: ended_at shifted differently by {d} ns"
            );
        }
    }
    let (lo, hi) = (
        shifts.iter().min().copied().unwrap_or(0),
        shifts.iter().max().copied().unwrap_or(0),
    );
    assert!(
        hi - lo <= 1_000_000,
        "one shift for all calls: {lo}..{hi} ns"
    );
    let v = c.get_json("/v1/analytics?days=7");
    assert_eq!(v["total_calls"], r.mix.len(), "{v}");
    let counted: u64 = v["calls_per_day"]
        .as_array()
        .expect("per day")
        .iter()
        .filter_map(|d| d["count"].as_u64())
        .sum();
    assert_eq!(counted, r.mix.len() as u64);
    mos_diffs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let worst = mos_diffs.first().cloned().unwrap_or((0.0, String::new()));
    // Until the shift is whole intervals, MOS moves a little with it (see the module
    // docs); a large move would be another fault.
    assert!(
        worst.0 < 0.05,
        "rebased MOS differs by {} on {}",
        worst.0,
        worst.1
    );
    eprintln!(
        "rebased_replay_lands_today: shift {:.3} s; quality_mos differs from analyze on {} \
         of {} scored calls, at most {:.6} ({}); {:.2} s",
        lo as f64 / 1e9,
        mos_diffs.iter().filter(|d| d.0 > TOL).count(),
        mos_diffs.len(),
        worst.0,
        worst.1,
        t0.elapsed().as_secs_f64()
    );
}

/// `--rebase-time` shifts timestamps by a whole number of scoring intervals, so the
/// UTC-aligned 5-second intervals cut the streams where `analyze` does and every MOS
/// equals the offline figure.
#[test]
fn rebased_replay_keeps_mos() {
    let r = replay(
        callmix::api_mix(),
        capgen::BASE_TIME,
        &["--speed", "0", "--rebase-time"],
    );
    for (id, want) in &r.truth {
        let got = r.client.get_json(&format!("/v1/calls/{}", enc(id)));
        assert_same(
            &format!("rebased {id}"),
            &got,
            want,
            &["created_at", "ended_at", "start"],
        );
    }
}

// ---------------------------------------------------------------------------------------
// Pushed metadata

/// The worker that the capture thread gives an RTP-only flow between `a` and `b`
/// (mirrors `pipeline::Dispatcher::route` for a flow no SDP or push announced: the
/// unordered endpoint pair with the port's low bit folded, FxHash, modulo workers).
fn rtp_only_shard(a: SocketAddr, b: SocketAddr, workers: usize) -> usize {
    let fold = |mut x: SocketAddr| {
        x.set_port(x.port() & !1);
        x
    };
    let (x, y) = (fold(a), fold(b));
    let key = if x <= y { (x, y) } else { (y, x) };
    let mut h = rustc_hash::FxHasher::default();
    key.hash(&mut h);
    (h.finish() % workers as u64) as usize
}

/// The first of `prefix-1`, `prefix-2`, … whose shard is (or is not) `shard`.
fn id_on_shard(prefix: &str, shard: usize, same: bool, workers: usize) -> String {
    (1..1000)
        .map(|k| format!("{prefix}-{k}"))
        .find(|id| (vqprobe::pipeline::shard_of_call(id, workers) == shard) == same)
        .expect("some id hashes there")
}

fn push_body(id: &str, site: SocketAddr, from: &str) -> Value {
    json!({
        "call_id": id,
        "agent_id": "agent-z",
        "mno": "PushedMNO",
        "from_number": from,
        "to_number": "+4930900999",
        "direction": "inbound",
        "media": [{ "ip": site.ip().to_string(), "port": site.port() }],
    })
}

/// analyze's RTP-only call whose streams touch `site`.
fn rtp_only_truth(doc: &Value, site: SocketAddr) -> Value {
    let site = site.to_string();
    doc["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .find(|c| {
            c["streams"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|s| s["src"] == site.as_str() || s["dst"] == site.as_str())
            })
        })
        .cloned()
        .unwrap_or_else(|| panic!("analyze has no call at {site}: {doc}"))
}

/// Waits (≤ 5 s) until `/metrics` says the daemon tracks at least `n` streams.
fn wait_active_streams(c: &Client, n: u64) {
    let mut last = String::new();
    let ok = wait_for(Duration::from_secs(5), || {
        last = c.get("/metrics").text();
        last.lines()
            .find_map(|l| l.strip_prefix("vqprobe_active_streams "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .is_some_and(|v| v >= n as f64)
    });
    assert!(ok, "the daemon never tracked {n} streams:\n{last}");
}

/// Checks a stored pushed call against the metadata and analyze's media figures.
fn check_pushed(got: &Value, id: &str, from: &str, want: &Value) {
    assert_eq!(got["call_id"], id, "{got}");
    assert_eq!(got["agent_id"], "agent-z", "{got}");
    assert_eq!(got["mno"], "PushedMNO", "{got}");
    assert_eq!(got["from_number"], from, "{got}");
    assert_eq!(got["to_number"], "+4930900999", "{got}");
    assert_eq!(got["direction"], "inbound", "{got}");
    assert!(got["sip_call_id"].is_null(), "{got}");
    assert_eq!(got["status"], "completed", "{got}");
    assert_eq!(got["ended_reason"], "rtp_timeout", "{got}");
    // The media figures are analyze's (same timestamps, no rebase).
    assert_same(
        &format!("pushed {id} streams"),
        &got["streams"],
        &want["streams"],
        &[],
    );
    assert_same(
        &format!("pushed {id} quality"),
        &got["quality"],
        &want["quality"],
        &[],
    );
    for k in [
        "quality_mos",
        "duration_seconds",
        "created_at",
        "codec",
        "one_way_audio",
    ] {
        assert_same(&format!("pushed {id} {k}"), &got[k], &want[k], &[]);
    }
}

#[test]
fn pushed_metadata_names_rtp_only_media() {
    let t0 = Instant::now();
    let work = Workdir::new();
    let cap = work.path().join("rtp-only.pcap");
    let speed = 3.0;
    // crm-1's media starts 9 s into the capture (3 s at speed 3): the push comes first.
    // The second flow runs from 0.3 s on: its push comes while it runs.
    let later = RtpOnlyFlow {
        site: "10.10.2.10:22000".parse().expect("addr"),
        far: "198.51.100.200:42000".parse().expect("addr"),
        start_ms: 9_000,
        media_ms: 12_000,
        loss_in: 0.01,
        ssrc: 0x2000_0000,
    };
    let running = RtpOnlyFlow {
        site: "10.10.2.11:22002".parse().expect("addr"),
        far: "198.51.100.201:42002".parse().expect("addr"),
        start_ms: 300,
        media_ms: 24_000,
        loss_in: 0.05,
        ssrc: 0x2000_0010,
    };
    let base = now_ns() / 1_000_000 * 1_000_000;
    callmix::write_rtp_only(&cap, base, &[later.clone(), running.clone()]);
    let doc = daemon::analyze_json(&cap, &["--local-net", LOCAL_NET]);
    assert_eq!(doc["calls"].as_array().map(Vec::len), Some(2), "{doc}");
    let want_later = rtp_only_truth(&doc, later.site);
    let want_running = rtp_only_truth(&doc, running.site);
    for w in [&want_later, &want_running] {
        assert!(
            w["sip_call_id"].is_null() && w["quality_mos"].is_f64(),
            "{w}"
        );
    }

    // The running flow's worker, and a pushed id owned by that same worker.
    let workers = 2;
    let shard = rtp_only_shard(running.far, running.site, workers);
    let id_running = id_on_shard("crm-running", shard, true, workers);

    let cap_s = cap.to_str().expect("utf-8");
    let speed_s = speed.to_string();
    let mut probe = Probe::spawn(
        &work,
        &config("[pipeline]\nworkers = 2\n"),
        &work.db(),
        &loopback(),
        &["--replay", cap_s, "--speed", &speed_s],
        &[],
    );
    probe.wait_api(Duration::from_secs(5));
    let c = Client::new(&probe.base(), None);

    // Bad metadata is refused with the field named, and nothing is stored for it.
    let mut no_media = push_body("crm-bad", later.site, "+4915112345678");
    no_media["media"] = json!([]);
    let m = c
        .send_json("POST", "/v1/calls", &no_media)
        .error(400, "bad_request");
    assert!(m.contains("media"), "{m}");
    let mut extra = push_body("crm-bad", later.site, "+4915112345678");
    extra["colour"] = json!("blue");
    let m = c
        .send_json("POST", "/v1/calls", &extra)
        .error(400, "bad_request");
    assert!(m.contains("colour"), "{m}");
    let raw =
        serde_json::to_vec(&push_body("crm-bad", later.site, "+4915112345678")).expect("json");
    c.req("POST", "/v1/calls", Some(("text/plain", &raw)))
        .error(415, "unsupported_media_type");

    // crm-1 before its media starts.
    let push = |id: &str, site: SocketAddr, from: &str| {
        let resp = c.send_json("POST", "/v1/calls", &push_body(id, site, from));
        assert_eq!(resp.status, 202, "push {id}: {}", resp.text());
        assert_eq!(resp.json(), json!({ "call_id": id, "status": "accepted" }));
    };
    push("crm-1", later.site, "+4915112345678");
    let pushed_after = probe.started.elapsed();
    assert!(
        pushed_after.as_secs_f64() < later.start_ms as f64 / 1000.0 / speed - 0.3,
        "the push ({pushed_after:?} after start) should come before crm-1's media"
    );
    // The running flow's id once the daemon tracks its two streams.
    wait_active_streams(&c, 2);
    push(&id_running, running.site, "+447400999000");
    let pushed_running_after = probe.started.elapsed();

    // Both calls end by the 2 s RTP timeout after the replay (~8 s at speed 3).
    let mut stored = BTreeMap::new();
    let ok = wait_for(Duration::from_secs(30), || {
        for id in ["crm-1", id_running.as_str()] {
            let r = c.get(&format!("/v1/calls/{id}"));
            if r.status == 200 && r.json()["status"] != "in_progress" {
                stored.insert(id.to_string(), r.json());
            }
        }
        stored.len() == 2
    });
    let listing = c.get("/v1/calls?page_size=100").text();
    assert!(
        ok,
        "pushed calls not stored as such within 30 s; stored: {:?}\nlisting: {listing}\nstderr:\n{}",
        stored.keys(),
        probe.stderr()
    );
    check_pushed(&stored["crm-1"], "crm-1", "+4915112345678", &want_later);
    check_pushed(
        &stored[&id_running],
        &id_running,
        "+447400999000",
        &want_running,
    );
    // No stray RTP-only call for the same media.
    let v = c.get_json("/v1/calls?page_size=100");
    assert_eq!(v["total"], 2, "{v}");
    // The pushed names reach the rollups.
    let mno = c.get_json("/v1/analytics/mno?days=7");
    assert_eq!(mno[0]["mno"], "PushedMNO", "{mno}");
    assert_eq!(mno[0]["calls"], 2, "{mno}");
    let agents = c.get_json("/v1/analytics/agents?days=7");
    assert_eq!(agents[0]["agent_id"], "agent-z", "{agents}");
    eprintln!(
        "pushed_metadata_names_rtp_only_media: crm-1 pushed {:.2} s after start (its media \
         at {:.1} s); the running flow's push at {:.2} s, on worker {shard} as {id_running}; \
         {:.2} s",
        pushed_after.as_secs_f64(),
        later.start_ms as f64 / 1000.0 / speed,
        pushed_running_after.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    drop(probe);
}

/// Metadata pushed for an RTP-only flow that is already running attaches even when the
/// pushed id would hash to another worker: the capture threads publish which worker
/// holds each running flow, and the push goes there.
#[test]
fn push_for_running_flow_on_another_worker() {
    let work = Workdir::new();
    let cap = work.path().join("rtp-only.pcap");
    let running = RtpOnlyFlow {
        site: "10.10.2.11:22002".parse().expect("addr"),
        far: "198.51.100.201:42002".parse().expect("addr"),
        start_ms: 300,
        media_ms: 9_000,
        loss_in: 0.01,
        ssrc: 0x2000_0010,
    };
    let base = now_ns() / 1_000_000 * 1_000_000;
    callmix::write_rtp_only(&cap, base, std::slice::from_ref(&running));
    let workers = 2;
    let shard = rtp_only_shard(running.far, running.site, workers);
    let id = id_on_shard("crm-other", shard, false, workers);
    let cap_s = cap.to_str().expect("utf-8");
    let mut probe = Probe::spawn(
        &work,
        &config("[pipeline]\nworkers = 2\n"),
        &work.db(),
        &loopback(),
        &["--replay", cap_s, "--speed", "3"],
        &[],
    );
    probe.wait_api(Duration::from_secs(5));
    let c = Client::new(&probe.base(), None);
    wait_active_streams(&c, 2);
    let resp = c.send_json(
        "POST",
        "/v1/calls",
        &push_body(&id, running.site, "+447400999000"),
    );
    assert_eq!(resp.status, 202, "{}", resp.text());
    let listing = wait_final(&c, &mut probe, 1);
    assert_eq!(
        listing[0]["call_id"],
        id.as_str(),
        "the running flow (worker {shard}) did not take the metadata pushed as {id} \
         (worker {}): {}",
        1 - shard,
        listing[0]
    );
}

// ---------------------------------------------------------------------------------------
// Authentication and listen rules

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// A small capture to replay (so the daemon never captures live traffic).
fn small_capture(work: &Workdir) -> PathBuf {
    let cap = work.path().join("small.pcap");
    let base = (now_ns() - 30_000_000_000) / 1_000_000 * 1_000_000;
    callmix::write_mix(&cap, base, capgen::ms(100), &callmix::staggered_mix(3));
    cap
}

#[test]
fn api_keys_from_config_and_env() {
    let t0 = Instant::now();
    let work = Workdir::new();
    let cap = small_capture(&work);
    let cap_s = cap.to_str().expect("utf-8");
    let replay = ["--replay", cap_s, "--speed", "0"];

    // 1. A key from the config file, as its SHA-256.
    let cfg = config(&format!(
        "[api]\nkey_hashes = [\"sha256:{}\"]\n",
        sha256_hex("secret-key")
    ));
    let db1 = work.path().join("one.db");
    let mut p = Probe::spawn(&work, &cfg, &db1, &loopback(), &replay, &[]);
    p.wait_api(Duration::from_secs(5));
    assert!(
        p.stderr().contains("1 bearer key(s) accepted"),
        "{}",
        p.stderr()
    );
    let anon = Client::new(&p.base(), None);
    let good = anon.with_key(Some("secret-key"));
    let wrong = anon.with_key(Some("secret-key-2"));
    let keyed_routes = [
        ("GET", "/v1/calls"),
        ("GET", "/v1/calls/stag-00%40capgen.test"),
        ("GET", "/v1/analytics"),
        ("GET", "/v1/analytics/mno"),
        ("GET", "/v1/analytics/agents"),
        ("GET", "/v1/analytics/countries"),
        ("GET", "/v1/agents/agent-a/conversations/export"),
        ("GET", "/openapi.json"),
        ("POST", "/v1/analytics"),
        ("POST", "/v1/calls"),
        ("PUT", "/v1/calls/stag-00%40capgen.test/resolution"),
    ];
    for (method, path) in keyed_routes {
        for (who, client) in [("no key", &anon), ("wrong key", &wrong)] {
            let r = client.req(method, path, Some(("application/json", b"{}")));
            let m = r.error(401, "unauthorized");
            assert!(m.contains("Bearer"), "{method} {path} ({who}): {m}");
        }
    }
    // Other spellings of a bad Authorization header.
    for h in ["Basic c2VjcmV0LWtleQ==", "secret-key", "Bearer", "Bearer  "] {
        let r = anon
            .try_req("GET", "/v1/calls", None, &[("Authorization", h)])
            .expect("request");
        r.error(401, "unauthorized");
    }
    wait_final(&good, &mut p, 3);
    assert_eq!(good.get_json("/v1/calls")["total"], 3);
    let r = anon
        .try_req(
            "GET",
            "/v1/calls",
            None,
            &[("Authorization", "bearer secret-key")],
        )
        .expect("request");
    assert_eq!(
        r.status,
        200,
        "the scheme is case-insensitive: {}",
        r.text()
    );
    // The resolution was not applied by the refused PUT.
    assert!(good.get_json("/v1/calls/stag-00%40capgen.test")["resolution"].is_null());
    // /healthz is open; /metrics is open unless metrics_require_auth.
    assert_eq!(anon.get("/healthz").status, 200);
    assert_eq!(anon.get("/metrics").status, 200);
    drop(p);

    // 2. Keys from VQPROBE_API_KEYS, /metrics behind them too.
    let cfg = config("[api]\nmetrics_require_auth = true\n");
    let db2 = work.path().join("two.db");
    let mut p = Probe::spawn(
        &work,
        &cfg,
        &db2,
        &loopback(),
        &replay,
        &[("VQPROBE_API_KEYS", "k1, k2")],
    );
    p.wait_api(Duration::from_secs(5));
    assert!(
        p.stderr().contains("2 bearer key(s) accepted"),
        "{}",
        p.stderr()
    );
    let anon = Client::new(&p.base(), None);
    for k in ["k1", "k2"] {
        let c = anon.with_key(Some(k));
        assert_eq!(c.get("/v1/calls").status, 200, "{k}");
        let m = c.get("/metrics");
        assert_eq!(m.status, 200, "{k}");
        assert!(m.text().contains("vqprobe_"), "{k}");
    }
    for k in ["k3", "secret-key", "k1,k2", "k1x"] {
        anon.with_key(Some(k))
            .get("/v1/calls")
            .error(401, "unauthorized");
    }
    anon.get("/v1/calls").error(401, "unauthorized");
    anon.get("/metrics").error(401, "unauthorized");
    assert_eq!(anon.get("/healthz").status, 200);
    drop(p);

    // 3. Both together: the config's hash and the environment's key.
    let cfg = config(&format!(
        "[api]\nkey_hashes = [\"sha256:{}\"]\n",
        sha256_hex("secret-key")
    ));
    let db3 = work.path().join("three.db");
    let mut p = Probe::spawn(
        &work,
        &cfg,
        &db3,
        &loopback(),
        &replay,
        &[("VQPROBE_API_KEYS", "k1")],
    );
    p.wait_api(Duration::from_secs(5));
    let anon = Client::new(&p.base(), None);
    for k in ["k1", "secret-key"] {
        assert_eq!(
            anon.with_key(Some(k)).get("/v1/analytics").status,
            200,
            "{k}"
        );
    }
    anon.get("/v1/analytics").error(401, "unauthorized");
    drop(p);
    eprintln!(
        "api_keys_from_config_and_env: {:.2} s",
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn non_loopback_listen_without_keys_is_refused() {
    let work = Workdir::new();
    let cap = small_capture(&work);
    let cap_s = cap.to_str().expect("utf-8");
    let port = daemon::free_port();
    for (listen, envs, extra_cfg) in [
        (format!("0.0.0.0:{port}"), vec![], String::new()),
        (format!("[::]:{port}"), vec![], String::new()),
        // An empty key list in the environment is no key.
        (
            format!("0.0.0.0:{port}"),
            vec![("VQPROBE_API_KEYS", " , ")],
            String::new(),
        ),
    ] {
        let t = Instant::now();
        let mut p = Probe::spawn(
            &work,
            &config(&extra_cfg),
            &work.db(),
            &listen,
            &["--replay", cap_s, "--speed", "0"],
            &envs,
        );
        let st = p
            .wait_exit(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("{listen}: still running; stderr:\n{}", p.stderr()));
        assert!(!st.success(), "{listen}: exit {st}");
        assert_eq!(st.code(), Some(2), "{listen}: exit {st}");
        let err = p.stderr();
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{listen}: one line on stderr, got:\n{err}");
        let line = lines[0];
        assert!(line.starts_with("vqprobe: "), "{line}");
        assert!(line.contains(&listen), "{line}");
        assert!(line.contains("not a loopback address"), "{line}");
        assert!(
            line.contains("VQPROBE_API_KEYS") && line.contains("api.key_hashes"),
            "{line}"
        );
        // Nothing was started: no database, nothing listening.
        assert!(!work.db().exists(), "{listen}: the database was created");
        let probe = format!("127.0.0.1:{port}");
        assert!(
            std::net::TcpStream::connect_timeout(
                &probe.parse().expect("addr"),
                Duration::from_millis(300)
            )
            .is_err(),
            "{listen}: something listens on {probe}"
        );
        eprintln!(
            "refused {listen} in {:.2} s: {line}",
            t.elapsed().as_secs_f64()
        );
    }
    // A malformed hash is refused the same way, naming the key.
    let mut p = Probe::spawn(
        &work,
        &config("[api]\nkey_hashes = [\"sha256:nothex\"]\n"),
        &work.db(),
        &loopback(),
        &["--replay", cap_s, "--speed", "0"],
        &[],
    );
    let st = p.wait_exit(Duration::from_secs(5)).expect("exits");
    assert_eq!(st.code(), Some(2));
    let err = p.stderr();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("api.key_hashes[0]") && !err.contains("nothex"),
        "{err}"
    );
}
