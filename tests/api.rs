//! The HTTP API against a real server over real HTTP: a temporary store filled with
//! known calls, `vqprobe::api::spawn` on 127.0.0.1:0, and ureq. Every figure is
//! checked against a plain reference computation over the same records (and the
//! 7-day figures also against numbers worked out by hand in the comments).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use vqprobe::api::{self, ApiHandle, ApiState, KeySet};
use vqprobe::engine::push::{PushError, PushedCall};
use vqprobe::engine::record::{
    rfc3339, CallRecord, CallStatus, CallSummary, Direction, EndedReason, IntervalRecord,
    QualityRecord, Resolution, StreamRecord,
};
use vqprobe::store::Store;

const DAY_MS: i64 = 86_400_000;
const KEY: &str = "test-key-1";

fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(d.as_millis()).unwrap()
}

fn today() -> i64 {
    now_ms().div_euclid(DAY_MS)
}

fn day_string(day: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(day * 86_400).unwrap();
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

/// One test call: the columns the figures depend on.
#[derive(Debug, Clone)]
struct Spec {
    id: &'static str,
    days_ago: i64,
    agent: Option<&'static str>,
    mno: &'static str,
    status: CallStatus,
    duration: f64,
    mos: Option<f64>,
    jitter: Option<f64>,
    loss: Option<f64>,
    rtt: Option<f64>,
    resolution: Option<Resolution>,
}

#[allow(clippy::too_many_arguments)]
const fn spec(
    id: &'static str,
    days_ago: i64,
    agent: Option<&'static str>,
    mno: &'static str,
    status: CallStatus,
    duration: f64,
    mos: Option<f64>,
    jitter: Option<f64>,
    loss: Option<f64>,
    rtt: Option<f64>,
    resolution: Option<Resolution>,
) -> Spec {
    Spec {
        id,
        days_ago,
        agent,
        mno,
        status,
        duration,
        mos,
        jitter,
        loss,
        rtt,
        resolution,
    }
}

const A: Option<&str> = Some("agent-a");
const B: Option<&str> = Some("agent-b");
const C: Option<&str> = Some("agent-c");
const VF: &str = "Vodafone UK";
const EE: &str = "EE";
const TH: &str = "Three";
use CallStatus::{Abandoned, Completed, Failed, InProgress};
const R: Option<Resolution> = Some(Resolution::Resolved);
const U: Option<Resolution> = Some(Resolution::Unresolved);

/// 30 calls over 120 days: 3 agents (and one agent-less call pair), 3 MNOs.
fn specs() -> Vec<Spec> {
    vec![
        // The last 7 days (days_ago 0..=6).
        spec(
            "call-00",
            0,
            A,
            VF,
            Completed,
            60.0,
            Some(4.40),
            Some(2.0),
            Some(0.0),
            Some(40.0),
            R,
        ),
        spec(
            "call-01",
            0,
            A,
            EE,
            Completed,
            120.0,
            Some(4.20),
            Some(5.0),
            Some(0.01),
            Some(60.0),
            None,
        ),
        spec(
            "call-02", 0, B, VF, Failed, 0.0, None, None, None, None, None,
        ),
        spec(
            "call-03",
            1,
            B,
            TH,
            Completed,
            30.0,
            Some(3.00),
            Some(30.0),
            Some(0.05),
            Some(200.0),
            U,
        ),
        spec(
            "call-04",
            1,
            C,
            VF,
            Completed,
            90.0,
            Some(4.10),
            Some(4.0),
            Some(0.002),
            None,
            R,
        ),
        spec(
            "a84b4c76e66710@pc33.atlanta.example.com",
            2,
            A,
            EE,
            Abandoned,
            0.0,
            None,
            None,
            None,
            None,
            None,
        ),
        spec(
            "weird/id@host",
            2,
            C,
            TH,
            Completed,
            45.0,
            Some(2.50),
            Some(50.0),
            Some(0.08),
            Some(300.0),
            U,
        ),
        spec(
            "call-07",
            3,
            None,
            VF,
            Completed,
            200.0,
            Some(4.30),
            Some(1.0),
            Some(0.0),
            Some(20.0),
            None,
        ),
        spec(
            "call-08",
            4,
            A,
            VF,
            Completed,
            75.0,
            Some(3.90),
            Some(8.0),
            Some(0.005),
            Some(50.0),
            R,
        ),
        spec(
            "call-09",
            6,
            B,
            EE,
            Completed,
            100.0,
            Some(3.60),
            Some(12.0),
            Some(0.02),
            Some(80.0),
            None,
        ),
        spec(
            "call-10",
            6,
            C,
            VF,
            InProgress,
            10.0,
            Some(4.00),
            Some(3.0),
            Some(0.001),
            None,
            None,
        ),
        // Older.
        spec(
            "call-11",
            7,
            A,
            VF,
            Completed,
            50.0,
            Some(4.35),
            Some(2.0),
            Some(0.001),
            Some(30.0),
            R,
        ),
        spec(
            "call-12",
            9,
            B,
            TH,
            Completed,
            65.0,
            Some(3.05),
            Some(25.0),
            Some(0.04),
            Some(150.0),
            None,
        ),
        spec(
            "call-13", 12, C, EE, Failed, 0.0, None, None, None, None, None,
        ),
        spec(
            "call-14",
            15,
            A,
            TH,
            Completed,
            80.0,
            Some(3.20),
            Some(20.0),
            Some(0.03),
            Some(120.0),
            U,
        ),
        spec(
            "call-15",
            20,
            B,
            VF,
            Completed,
            95.0,
            Some(4.25),
            Some(2.0),
            Some(0.0),
            None,
            None,
        ),
        spec(
            "call-16",
            25,
            C,
            EE,
            Completed,
            110.0,
            Some(3.80),
            Some(9.0),
            Some(0.01),
            Some(70.0),
            R,
        ),
        spec(
            "call-17",
            29,
            A,
            VF,
            Completed,
            40.0,
            Some(4.15),
            Some(3.0),
            Some(0.002),
            Some(45.0),
            None,
        ),
        spec(
            "call-18",
            30,
            B,
            EE,
            Completed,
            70.0,
            Some(3.95),
            Some(6.0),
            Some(0.004),
            Some(55.0),
            None,
        ),
        spec(
            "call-19", 35, C, TH, Abandoned, 0.0, None, None, None, None, None,
        ),
        spec(
            "call-20",
            40,
            A,
            VF,
            Completed,
            85.0,
            Some(2.90),
            Some(40.0),
            Some(0.07),
            Some(250.0),
            U,
        ),
        spec(
            "call-21",
            50,
            B,
            TH,
            Completed,
            55.0,
            Some(3.40),
            Some(15.0),
            Some(0.02),
            Some(90.0),
            R,
        ),
        spec(
            "call-22",
            60,
            C,
            VF,
            Completed,
            125.0,
            Some(4.45),
            Some(1.0),
            Some(0.0),
            Some(25.0),
            None,
        ),
        spec(
            "call-23",
            70,
            None,
            EE,
            Completed,
            35.0,
            Some(3.10),
            Some(22.0),
            Some(0.035),
            Some(140.0),
            None,
        ),
        spec(
            "call-24",
            80,
            A,
            TH,
            Completed,
            60.0,
            Some(2.20),
            Some(70.0),
            Some(0.12),
            Some(400.0),
            U,
        ),
        spec(
            "call-25",
            85,
            B,
            VF,
            InProgress,
            5.0,
            Some(4.05),
            Some(2.0),
            Some(0.001),
            None,
            None,
        ),
        spec(
            "call-26",
            89,
            C,
            EE,
            Completed,
            150.0,
            Some(3.70),
            Some(10.0),
            Some(0.015),
            Some(85.0),
            R,
        ),
        spec(
            "call-27",
            90,
            A,
            VF,
            Completed,
            20.0,
            Some(4.00),
            Some(2.0),
            Some(0.0),
            Some(30.0),
            None,
        ),
        spec(
            "call-28",
            95,
            B,
            EE,
            Completed,
            33.0,
            Some(3.30),
            Some(9.0),
            Some(0.01),
            Some(60.0),
            R,
        ),
        spec(
            "call-29",
            120,
            C,
            TH,
            Completed,
            44.0,
            Some(1.50),
            Some(90.0),
            Some(0.2),
            Some(500.0),
            U,
        ),
    ]
}

fn created_ms(i: usize, s: &Spec) -> i64 {
    (today() - s.days_ago) * DAY_MS + 10 * 3_600_000 + i64::try_from(i).unwrap() * 60_000
}

fn record(i: usize, s: &Spec) -> CallRecord {
    let created = created_ms(i, s);
    let (direction, codec) = match i % 3 {
        0 => (Direction::Inbound, "PCMU"),
        1 => (Direction::Outbound, "PCMA"),
        _ => (Direction::Inbound, "G729"),
    };
    CallRecord {
        call: CallSummary {
            call_id: s.id.into(),
            sip_call_id: Some(s.id.into()),
            agent_id: s.agent.map(Into::into),
            from_number: Some(format!("+4477009{i:05}")),
            to_number: Some(format!("+44207946{i:04}")),
            from_raw: None,
            to_raw: None,
            from_anonymous: false,
            diverted_from: None,
            mno: s.mno.into(),
            mno_source: None,
            country: Some("GB".into()),
            direction,
            status: s.status,
            ended_reason: match s.status {
                Completed => Some(EndedReason::Bye),
                Failed => Some(EndedReason::Error),
                Abandoned => Some(EndedReason::Cancel),
                InProgress => None,
            },
            created_at: rfc3339(created * 1_000_000),
            ended_at: (s.status != InProgress)
                .then(|| rfc3339((created + (s.duration * 1000.0) as i64 + 2000) * 1_000_000)),
            duration_seconds: s.duration,
            codec: Some(codec.into()),
            one_way_audio: false,
            fax: false,
            xr_disagreement: false,
            quality_mos: s.mos,
            quality: QualityRecord {
                mos: s.mos,
                mos_lq: s.mos.map(|m| m + 0.05),
                r_factor: s.mos.map(|m| 20.0 * m),
                min_interval_mos: s.mos.map(|m| m - 0.2),
                jitter_ms: s.jitter,
                loss_ratio: s.loss,
                rtt_ms: s.rtt,
                one_way_delay_ms: s.rtt.map(|r| r / 2.0),
            },
            resolution: s.resolution,
            classified_at: s
                .resolution
                .map(|_| rfc3339((created + 3_600_000) * 1_000_000)),
            recording_url: (i % 4 == 0).then(|| format!("https://rec.example/{i}")),
            probe_id: None,
        },
        streams: vec![stream(i, s)],
    }
}

fn stream(i: usize, s: &Spec) -> StreamRecord {
    StreamRecord {
        direction: Direction::Inbound,
        src: format!("198.51.100.{}:{}", i + 1, 20_000 + i * 2),
        dst: "10.0.0.5:40000".into(),
        ssrc: vqprobe::wire::Ssrc(0x1000 + i as u32),
        payload_type: Some(vqprobe::wire::Pt(0)),
        codec: Some("PCMU".into()),
        clock_rate: Some(8000),
        packets: 500,
        other_payload_packets: 0,
        expected: 505,
        lost: 5,
        duplicates: 0,
        out_of_order: 1,
        jitter_ms: s.jitter,
        max_jitter_ms: s.jitter.map(|j| j * 2.0),
        mean_jitter_ms: s.jitter,
        max_delta_ms: 41.5,
        loss_runs: [3, 1, 0, 0, 0, 0, 0, 0, 0, 0],
        mos: s.mos,
        mos_lq: s.mos,
        mos_jb50: s.mos,
        mos_jb200: s.mos,
        r_factor: s.mos.map(|m| 20.0 * m),
        rtt_ms: s.rtt,
        intervals: vec![IntervalRecord {
            start: rfc3339(created_ms(i, s) * 1_000_000),
            packets: 250,
            lost: 2,
            jitter_ms: 1.5,
            mos: s.mos,
        }],
        remote: None,
        xr: None,
    }
}

fn records() -> Vec<CallRecord> {
    specs()
        .iter()
        .enumerate()
        .map(|(i, s)| record(i, s))
        .collect()
}

struct Server {
    handle: Option<ApiHandle>,
    base: String,
    agent: ureq::Agent,
    key: Option<String>,
    db: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().unwrap();
        }
    }
}

struct Resp {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    /// Asserts the error envelope with this status and code, and returns the message.
    fn error(&self, status: u16, code: &str) -> String {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        let v = self.json();
        assert_eq!(v["error"]["code"], code, "{v}");
        assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
        v["error"]["message"].as_str().unwrap().to_string()
    }
}

type Pushed = Arc<Mutex<Vec<PushedCall>>>;

/// The process behind the API, as a test needs it: metrics or not, pushes logged or
/// refused.
struct TestProbe {
    metrics: Option<vqprobe::metrics::Metrics>,
    push: Option<Pushed>,
    push_unavailable: bool,
}

impl api::Probe for TestProbe {
    fn metrics_text(&self) -> Option<String> {
        self.metrics.as_ref().map(|m| m.render(None))
    }

    fn stopping(&self) -> bool {
        false
    }

    fn push(&self, c: PushedCall) -> Result<(), PushError> {
        if self.push_unavailable {
            return Err(PushError::Unavailable);
        }
        match &self.push {
            Some(log) => {
                log.lock().unwrap().push(c);
                Ok(())
            }
            None => Err(PushError::Unavailable),
        }
    }
}

struct Options {
    keys: KeySet,
    metrics: bool,
    metrics_require_auth: bool,
    push: Option<Pushed>,
    push_unavailable: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            keys: KeySet::new(&[], [KEY]).unwrap(),
            metrics: false,
            metrics_require_auth: false,
            push: None,
            push_unavailable: false,
        }
    }
}

fn server_with(before: &[CallRecord], after: &[CallRecord], opts: Options) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data").join("vqprobe.db");
    if !before.is_empty() {
        Store::open(&db).unwrap().upsert_calls(before).unwrap();
    }
    let probe: Option<Arc<dyn api::Probe>> =
        (opts.metrics || opts.push.is_some() || opts.push_unavailable).then(|| {
            Arc::new(TestProbe {
                metrics: opts
                    .metrics
                    .then(|| vqprobe::metrics::Metrics::new(50, 200).unwrap()),
                push: opts.push.clone(),
                push_unavailable: opts.push_unavailable,
            }) as Arc<dyn api::Probe>
        });
    let key = (!opts.keys.is_empty()).then(|| KEY.to_string());
    let state = ApiState {
        db_path: db.clone(),
        keys: opts.keys,
        probe,
        metrics_require_auth: opts.metrics_require_auth,
        store: None,
    };
    let handle = api::spawn("127.0.0.1:0".parse().unwrap(), state).unwrap();
    // Written after start, so the rollup triggers (not the initial rebuild) see them.
    if !after.is_empty() {
        Store::open(&db).unwrap().upsert_calls(after).unwrap();
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    Server {
        base: format!("http://{}", handle.local_addr()),
        handle: Some(handle),
        agent,
        key,
        db,
        _dir: dir,
    }
}

/// The standard server: the 30 calls, half written before start and half after.
fn server() -> Server {
    let recs = records();
    let (before, after) = recs.split_at(15);
    server_with(before, after, Options::default())
}

impl Server {
    fn req(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
        key: Option<&str>,
    ) -> Resp {
        let url = format!("{}{}", self.base, path);
        let auth = key.map(|k| format!("Bearer {k}"));
        let mut resp = match (method, body) {
            ("GET", None) => {
                let mut r = self.agent.get(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            ("DELETE", None) => {
                let mut r = self.agent.delete(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            (m, body) => {
                let mut r = match m {
                    "POST" => self.agent.post(&url),
                    "PUT" => self.agent.put(&url),
                    other => panic!("method {other}"),
                };
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                match body {
                    Some((ct, bytes)) => {
                        if !ct.is_empty() {
                            r = r.header("Content-Type", ct);
                        }
                        r.send(bytes)
                    }
                    None => r.send_empty(),
                }
            }
        }
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = resp
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .unwrap();
        Resp {
            status,
            headers,
            body,
        }
    }

    fn get(&self, path: &str) -> Resp {
        self.req("GET", path, None, self.key.as_deref())
    }

    fn get_json(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        assert!(r.header("content-type").starts_with("application/json"));
        r.json()
    }

    fn send_json(&self, method: &str, path: &str, body: &Value) -> Resp {
        let bytes = serde_json::to_vec(body).unwrap();
        self.req(
            method,
            path,
            Some(("application/json", &bytes)),
            self.key.as_deref(),
        )
    }
}

fn approx(v: &Value, want: Option<f64>, what: &str) {
    match want {
        None => assert!(v.is_null(), "{what}: want null, got {v}"),
        Some(w) => {
            let got = v
                .as_f64()
                .unwrap_or_else(|| panic!("{what}: not a number: {v}"));
            assert!((got - w).abs() < 1e-6, "{what}: got {got}, want {w}");
        }
    }
}

// ---------- Reference computations over the specs ----------

fn in_days(s: &Spec, days: i64) -> bool {
    s.days_ago < days
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Nearest-rank percentile (percentile_disc).
fn nearest_rank(values: &[f64], pct: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let k = ((pct / 100.0 * v.len() as f64).ceil() as usize).max(1);
    Some(v[k - 1])
}

fn figures(calls: &[&Spec]) -> Value {
    let mos: Vec<f64> = calls.iter().filter_map(|s| s.mos).collect();
    let jit: Vec<f64> = calls.iter().filter_map(|s| s.jitter).collect();
    let loss: Vec<f64> = calls.iter().filter_map(|s| s.loss).collect();
    let rtt: Vec<f64> = calls.iter().filter_map(|s| s.rtt).collect();
    let poor = mos.iter().filter(|m| **m < 3.1).count();
    json!({
        "calls": calls.len(),
        "average_mos": mean(&mos),
        "p10_mos": nearest_rank(&mos, 10.0),
        "poor_call_ratio": (!mos.is_empty()).then(|| poor as f64 / mos.len() as f64),
        "average_jitter_ms": mean(&jit),
        "average_loss_ratio": mean(&loss),
        "average_rtt_ms": mean(&rtt),
    })
}

fn assert_figures(got: &Value, want: &Value, what: &str) {
    assert_eq!(got["calls"], want["calls"], "{what}");
    for k in [
        "average_mos",
        "p10_mos",
        "poor_call_ratio",
        "average_jitter_ms",
        "average_loss_ratio",
        "average_rtt_ms",
    ] {
        approx(&got[k], want[k].as_f64(), &format!("{what}.{k}"));
    }
}

// ---------- Tests ----------

#[test]
fn summary_by_hand_for_seven_days() {
    let s = server();
    let v = s.get_json("/v1/analytics");
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "average_duration_seconds",
            "average_mos",
            "calls_per_day",
            "resolution_rate",
            "total_calls"
        ]
    );
    // Days 0..=6 hold calls 00..10: 11 calls.
    assert_eq!(v["total_calls"], 11);
    // Oldest first: day-6 {09,10}, day-5 {}, day-4 {08}, day-3 {07}, day-2 {05,06},
    // day-1 {03,04}, today {00,01,02}.
    let t = today();
    let per_day: Vec<(String, u64)> = v["calls_per_day"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["date"].as_str().unwrap().to_string(),
                d["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, u64)> = [2, 0, 1, 1, 2, 2, 3]
        .iter()
        .enumerate()
        .map(|(i, c)| (day_string(t - 6 + i as i64), *c))
        .collect();
    assert_eq!(per_day, want);
    // Classified: 00 R, 03 U, 04 R, 06 U, 08 R → 3/5.
    approx(&v["resolution_rate"], Some(0.6), "resolution_rate");
    // Completed: 60+120+30+90+45+200+75+100 = 720 over 8.
    approx(&v["average_duration_seconds"], Some(90.0), "duration");
    // Scored: 4.4+4.2+3.0+4.1+2.5+4.3+3.9+3.6+4.0 = 34.0 over 9.
    approx(&v["average_mos"], Some(34.0 / 9.0), "mos");
    // days=7 is the default.
    assert_eq!(s.get_json("/v1/analytics?days=7"), v);
}

#[test]
fn summary_matches_reference_for_every_window_and_filter() {
    let s = server();
    let all = specs();
    let t = today();
    for days in [7i64, 30, 90] {
        for (agent, mno) in [
            (None, None),
            (Some("agent-a"), None),
            (None, Some(VF)),
            (Some("agent-b"), Some(TH)),
            (Some("nobody"), None),
        ] {
            let mut path = format!("/v1/analytics?days={days}");
            if let Some(a) = agent {
                path += &format!("&agent_id={a}");
            }
            if let Some(m) = mno {
                path += &format!("&mno={}", m.replace(' ', "%20"));
            }
            let v = s.get_json(&path);
            let calls: Vec<&Spec> = all
                .iter()
                .filter(|c| in_days(c, days))
                .filter(|c| agent.is_none() || c.agent == agent)
                .filter(|c| mno.is_none() || Some(c.mno) == mno)
                .collect();
            assert_eq!(v["total_calls"], calls.len(), "{path}");
            let per_day = v["calls_per_day"].as_array().unwrap();
            assert_eq!(per_day.len(), days as usize, "{path}");
            for (i, d) in per_day.iter().enumerate() {
                let day = t - days + 1 + i as i64;
                assert_eq!(d["date"], day_string(day), "{path}");
                let n = calls.iter().filter(|c| t - c.days_ago == day).count();
                assert_eq!(d["count"], n, "{path} {day}");
            }
            let classified: Vec<_> = calls.iter().filter_map(|c| c.resolution).collect();
            let resolved = classified
                .iter()
                .filter(|r| **r == Resolution::Resolved)
                .count();
            approx(
                &v["resolution_rate"],
                (!classified.is_empty()).then(|| resolved as f64 / classified.len() as f64),
                &path,
            );
            let durations: Vec<f64> = calls
                .iter()
                .filter(|c| c.status == Completed)
                .map(|c| c.duration)
                .collect();
            approx(&v["average_duration_seconds"], mean(&durations), &path);
            let mos: Vec<f64> = calls.iter().filter_map(|c| c.mos).collect();
            approx(&v["average_mos"], mean(&mos), &path);
        }
    }
}

#[test]
fn mno_and_agent_tables() {
    let s = server();
    // By hand, 7 days: Vodafone UK = 00 04 07 08 10 (scored) + 02: 6 calls, MOS
    // 4.4 4.1 4.3 3.9 4.0 → mean 4.14, p10 (rank 1 of 5) 3.9, none poor, jitter
    // 2 4 1 8 3 → 3.6, RTT 40 20 50 → 36.666667.
    let v = s.get_json("/v1/analytics/mno");
    let rows = v.as_array().unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| r["mno"].as_str().unwrap())
            .collect::<Vec<_>>(),
        [VF, EE, TH]
    );
    assert_eq!(rows[0]["calls"], 6);
    approx(&rows[0]["average_mos"], Some(4.14), "vf mos");
    approx(&rows[0]["p10_mos"], Some(3.9), "vf p10");
    approx(&rows[0]["poor_call_ratio"], Some(0.0), "vf poor");
    approx(&rows[0]["average_jitter_ms"], Some(3.6), "vf jitter");
    approx(&rows[0]["average_loss_ratio"], Some(0.0016), "vf loss");
    approx(&rows[0]["average_rtt_ms"], Some(110.0 / 3.0), "vf rtt");
    // Three: 03 (3.0) and 06 (2.5), both poor.
    approx(&rows[2]["poor_call_ratio"], Some(1.0), "three poor");
    approx(&rows[2]["p10_mos"], Some(2.5), "three p10");
    assert_eq!(
        rows[0]
            .as_object()
            .unwrap()
            .keys()
            .collect::<BTreeSet<_>>()
            .len(),
        8
    );

    let all = specs();
    for days in [7i64, 30, 90] {
        let v = s.get_json(&format!("/v1/analytics/mno?days={days}"));
        let mut want: Vec<(&str, Vec<&Spec>)> = Vec::new();
        for m in [VF, EE, TH] {
            let calls: Vec<&Spec> = all
                .iter()
                .filter(|c| in_days(c, days) && c.mno == m)
                .collect();
            if !calls.is_empty() {
                want.push((m, calls));
            }
        }
        want.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
        let rows = v.as_array().unwrap();
        assert_eq!(rows.len(), want.len(), "days={days}");
        for (row, (m, calls)) in rows.iter().zip(&want) {
            assert_eq!(row["mno"], *m);
            assert_figures(row, &figures(calls), &format!("mno {m} days={days}"));
        }

        let v = s.get_json(&format!("/v1/analytics/agents?days={days}"));
        let mut want: Vec<(Option<&str>, Vec<&Spec>)> = Vec::new();
        for a in [A, B, C, None] {
            let calls: Vec<&Spec> = all
                .iter()
                .filter(|c| in_days(c, days) && c.agent == a)
                .collect();
            if !calls.is_empty() {
                want.push((a, calls));
            }
        }
        // Most calls first, then by id (no agent sorts first among equals).
        want.sort_by(|a, b| {
            b.1.len()
                .cmp(&a.1.len())
                .then(a.0.unwrap_or("").cmp(b.0.unwrap_or("")))
        });
        let rows = v.as_array().unwrap();
        assert_eq!(rows.len(), want.len(), "days={days}");
        for (row, (a, calls)) in rows.iter().zip(&want) {
            assert_eq!(row["agent_id"], json!(a), "days={days}");
            assert_figures(row, &figures(calls), &format!("agent {a:?} days={days}"));
        }
    }
    // 90 days: agent-a has 8 scored calls, p10 = rank 1; agent-c's p10 rank 1 of 6.
    // A group with >10 scored calls exercises rank > 1: checked in the bulk test.
}

#[test]
fn aggregate_queries() {
    let s = server();
    let all = specs();
    let t = today();
    let start = day_string(t - 29);
    let end = day_string(t);
    let body = json!({"queries": [{
        "name": "by_mno",
        "table": "calls",
        "groupBy": ["mno"],
        "operations": [
            {"operation": "count", "column": "call_id"},
            {"operation": "count", "column": "mos"},
            {"operation": "avg", "column": "mos"},
            {"operation": "p50", "column": "mos"},
            {"operation": "p95", "column": "mos", "alias": "mos95"},
            {"operation": "p90", "column": "jitter_ms"},
            {"operation": "p99", "column": "jitter_ms"},
            {"operation": "sum", "column": "duration_seconds"},
            {"operation": "min", "column": "rtt_ms"},
            {"operation": "max", "column": "loss_ratio"}
        ],
        "timeRange": {"start": start, "end": end}
    }]});
    let r = s.send_json("POST", "/v1/analytics", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v[0]["name"], "by_mno");
    assert_eq!(v[0]["timeRange"]["timezone"], "UTC");
    assert_eq!(v[0]["timeRange"]["start"], format!("{start}T00:00:00Z"));
    assert_eq!(
        v[0]["timeRange"]["end"],
        format!("{}T00:00:00Z", day_string(t + 1))
    );
    let rows = v[0]["result"].as_array().unwrap();
    let mut mnos = [VF, EE, TH];
    mnos.sort();
    assert_eq!(rows.len(), 3);
    for (row, m) in rows.iter().zip(mnos) {
        let calls: Vec<&Spec> = all
            .iter()
            .filter(|c| c.days_ago < 30 && c.mno == m)
            .collect();
        let mos: Vec<f64> = calls.iter().filter_map(|c| c.mos).collect();
        let jit: Vec<f64> = calls.iter().filter_map(|c| c.jitter).collect();
        let rtt: Vec<f64> = calls.iter().filter_map(|c| c.rtt).collect();
        let loss: Vec<f64> = calls.iter().filter_map(|c| c.loss).collect();
        assert_eq!(row["mno"], m);
        assert_eq!(row["date"], format!("{start}T00:00:00Z"));
        assert_eq!(row["count_call_id"], calls.len());
        assert_eq!(row["count_mos"], mos.len());
        approx(&row["avg_mos"], mean(&mos), "avg");
        approx(&row["p50_mos"], nearest_rank(&mos, 50.0), "p50");
        approx(&row["mos95"], nearest_rank(&mos, 95.0), "p95");
        approx(&row["p90_jitter_ms"], nearest_rank(&jit, 90.0), "p90");
        approx(&row["p99_jitter_ms"], nearest_rank(&jit, 99.0), "p99");
        approx(
            &row["sum_duration_seconds"],
            Some(calls.iter().map(|c| c.duration).sum()),
            "sum",
        );
        approx(
            &row["min_rtt_ms"],
            rtt.iter().cloned().reduce(f64::min),
            "min",
        );
        approx(
            &row["max_loss_ratio"],
            loss.iter().cloned().reduce(f64::max),
            "max",
        );
        assert_eq!(row.as_object().unwrap().len(), 12);
    }

    // Daily buckets in UTC, and in a fixed offset; weeks and months; two groups.
    for (tz, offset_ms) in [
        ("UTC", 0i64),
        ("+05:30", 19_800_000),
        ("-08:00", -28_800_000),
    ] {
        for step in ["hour", "day", "week", "month"] {
            let body = json!({"queries": [
                {"name": "daily", "table": "calls", "groupBy": ["agent_id", "status"],
                 "operations": [{"operation": "count", "column": "call_id"},
                                {"operation": "p50", "column": "mos"}],
                 "timeRange": {"start": format!("{}T00:00:00Z", day_string(t - 100)),
                               "end": format!("{}T00:00:00Z", day_string(t + 1)),
                               "step": step, "timezone": tz}}]});
            let r = s.send_json("POST", "/v1/analytics", &body);
            assert_eq!(r.status, 200, "{}", r.text());
            let v = r.json();
            let mut want: BTreeMap<(i64, String, String), Vec<&Spec>> = BTreeMap::new();
            for (i, c) in all.iter().enumerate() {
                if c.days_ago > 100 {
                    continue;
                }
                let local = created_ms(i, c) + offset_ms;
                let bucket = match step {
                    "hour" => local.div_euclid(3_600_000) * 3_600_000,
                    "day" => local.div_euclid(DAY_MS) * DAY_MS,
                    "week" => (local - 4 * DAY_MS).div_euclid(7 * DAY_MS) * 7 * DAY_MS + 4 * DAY_MS,
                    _ => {
                        let d = time::OffsetDateTime::from_unix_timestamp(local.div_euclid(1000))
                            .unwrap()
                            .date();
                        let first = d.replace_day(1).unwrap();
                        first.midnight().assume_utc().unix_timestamp() * 1000
                    }
                } - offset_ms;
                let status = serde_json::to_value(c.status).unwrap();
                want.entry((
                    bucket,
                    c.agent.unwrap_or("").to_string(),
                    status.as_str().unwrap().to_string(),
                ))
                .or_default()
                .push(c);
            }
            let rows = v[0]["result"].as_array().unwrap();
            assert_eq!(rows.len(), want.len(), "{tz} {step}");
            for (row, ((bucket, agent, status), calls)) in rows.iter().zip(&want) {
                let date = row["date"].as_str().unwrap();
                let parsed = time::OffsetDateTime::parse(
                    date,
                    &time::format_description::well_known::Rfc3339,
                )
                .unwrap();
                assert_eq!(
                    parsed.unix_timestamp() * 1000,
                    *bucket,
                    "{tz} {step} {date}"
                );
                assert_eq!(
                    parsed.offset().whole_seconds() as i64 * 1000,
                    offset_ms,
                    "{date}"
                );
                assert_eq!(row["agent_id"], json!((!agent.is_empty()).then_some(agent)));
                assert_eq!(row["status"], *status);
                assert_eq!(row["count_call_id"], calls.len());
                let mos: Vec<f64> = calls.iter().filter_map(|c| c.mos).collect();
                approx(&row["p50_mos"], nearest_rank(&mos, 50.0), "p50");
            }
        }
    }

    // Defaults: the last 7 days up to now, one bucket; several queries answer in order.
    let body = json!({"queries": [
        {"name": "n", "table": "calls", "operations": [{"operation": "count", "column": "call_id"}]},
        {"name": "m", "table": "calls", "groupBy": ["direction"],
         "operations": [{"operation": "max", "column": "mos"}]}]});
    let v = s.send_json("POST", "/v1/analytics", &body).json();
    let n_7d = all
        .iter()
        .enumerate()
        .filter(|(i, c)| {
            let ms = created_ms(*i, c);
            ms >= now_ms() - 7 * DAY_MS - 60_000 && ms < now_ms()
        })
        .count();
    let got = v[0]["result"][0]["count_call_id"].as_u64().unwrap_or(0) as usize;
    // Allow for a call crossing the window edge during the test run.
    assert!(got.abs_diff(n_7d) <= 1, "{got} vs {n_7d}");
    assert_eq!(v[1]["name"], "m");
}

#[test]
fn calls_list_pages_and_filters() {
    let s = server();
    let all = records();
    let mut newest_first = all.clone();
    newest_first.sort_by(|a, b| {
        b.call
            .created_at
            .cmp(&a.call.created_at)
            .then(a.call.call_id.cmp(&b.call.call_id))
    });
    let v = s.get_json("/v1/calls");
    assert_eq!(v["total"], 30);
    assert_eq!(v["page"], 1);
    assert_eq!(v["page_size"], 20);
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 20);
    for (got, want) in data.iter().zip(&newest_first) {
        let mut w = serde_json::to_value(want).unwrap();
        w.as_object_mut().unwrap().remove("streams");
        assert_eq!(*got, w);
        assert!(got.get("streams").is_none());
    }
    // Pages of 7 cover everything once.
    let mut seen = Vec::new();
    for page in 1..=5 {
        let v = s.get_json(&format!("/v1/calls?page={page}&page_size=7"));
        assert_eq!(v["total"], 30);
        seen.extend(
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["call_id"].as_str().unwrap().to_string()),
        );
    }
    assert_eq!(
        seen,
        newest_first
            .iter()
            .map(|c| c.call.call_id.clone())
            .collect::<Vec<_>>()
    );
    let v = s.get_json("/v1/calls?page=99&page_size=100");
    assert_eq!(v["total"], 30);
    assert_eq!(v["data"].as_array().unwrap().len(), 0);

    // Filters, each against a reference.
    let t = today();
    type Keep = Box<dyn Fn(&CallRecord) -> bool>;
    let cases: Vec<(String, Keep)> = vec![
        (
            "agent_id=agent-a".into(),
            Box::new(|c| c.call.agent_id.as_deref() == Some("agent-a")),
        ),
        ("mno=Vodafone%20UK".into(), Box::new(|c| c.call.mno == VF)),
        (
            "status=completed".into(),
            Box::new(|c| c.call.status == Completed),
        ),
        (
            "direction=outbound".into(),
            Box::new(|c| c.call.direction == Direction::Outbound),
        ),
        (
            "min_mos=3.9".into(),
            Box::new(|c| c.call.quality_mos.is_some_and(|m| m >= 3.9)),
        ),
        (
            "max_mos=3.1".into(),
            Box::new(|c| c.call.quality_mos.is_some_and(|m| m <= 3.1)),
        ),
        // Combinations, which take other index paths.
        (
            "mno=EE&status=completed".into(),
            Box::new(|c| c.call.mno == EE && c.call.status == Completed),
        ),
        (
            "agent_id=agent-c&min_mos=3.5".into(),
            Box::new(|c| {
                c.call.agent_id.as_deref() == Some("agent-c")
                    && c.call.quality_mos.is_some_and(|m| m >= 3.5)
            }),
        ),
        (
            "mno=Three&max_mos=3.1".into(),
            Box::new(|c| c.call.mno == TH && c.call.quality_mos.is_some_and(|m| m <= 3.1)),
        ),
        (
            "status=completed&direction=inbound".into(),
            Box::new(|c| c.call.status == Completed && c.call.direction == Direction::Inbound),
        ),
        (
            "direction=inbound&min_mos=4".into(),
            Box::new(|c| {
                c.call.direction == Direction::Inbound
                    && c.call.quality_mos.is_some_and(|m| m >= 4.0)
            }),
        ),
        (
            "status=abandoned".into(),
            Box::new(|c| c.call.status == Abandoned),
        ),
        (
            format!(
                "date_from={}&date_to={}",
                day_string(t - 6),
                day_string(t - 1)
            ),
            Box::new(move |c| {
                let d = c.call.created_at[..10].to_string();
                d >= day_string(t - 6) && d <= day_string(t - 1)
            }),
        ),
        (
            format!(
                "agent_id=agent-b&status=completed&min_mos=3&max_mos=4&date_from={}T00:00:00Z",
                day_string(t - 60)
            ),
            Box::new(move |c| {
                c.call.agent_id.as_deref() == Some("agent-b")
                    && c.call.status == Completed
                    && c.call.quality_mos.is_some_and(|m| (3.0..=4.0).contains(&m))
                    && c.call.created_at[..10] >= *day_string(t - 60)
            }),
        ),
    ];
    for (q, keep) in cases {
        let v = s.get_json(&format!("/v1/calls?{q}&page_size=100"));
        let want: Vec<&str> = newest_first
            .iter()
            .filter(|c| keep(c))
            .map(|c| c.call.call_id.as_str())
            .collect();
        let got: Vec<&str> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["call_id"].as_str().unwrap())
            .collect();
        assert!(!want.is_empty(), "{q}");
        assert_eq!(got, want, "{q}");
        assert_eq!(v["total"], want.len(), "{q}");
    }
    // An RFC 3339 date_to is inclusive to the millisecond.
    let c0 = &all[0];
    let v = s.get_json(&format!(
        "/v1/calls?date_from={0}&date_to={0}",
        c0.call.created_at
    ));
    assert_eq!(v["total"], 1);
    assert_eq!(v["data"][0]["call_id"], c0.call.call_id);
}

#[test]
fn one_call_and_resolution() {
    let s = server();
    let all = records();
    for c in &all {
        let path = format!("/v1/calls/{}", c.call.call_id.replace('/', "%2F"));
        let v = s.get_json(&path);
        let got: CallRecord = serde_json::from_value(v).unwrap();
        assert_eq!(&got, c);
    }
    // `@` may also arrive percent-encoded.
    let v = s.get_json("/v1/calls/a84b4c76e66710%40pc33.atlanta.example.com");
    assert_eq!(v["call_id"], "a84b4c76e66710@pc33.atlanta.example.com");
    let msg = s.get("/v1/calls/no-such-call").error(404, "not_found");
    assert!(msg.contains("no-such-call"), "{msg}");

    // call-09 (day 6, unclassified) becomes resolved: 7-day rate 3/5 → 4/6.
    let before = now_ms();
    let r = s.send_json(
        "PUT",
        "/v1/calls/call-09/resolution",
        &json!({"resolution": "resolved"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let rec: CallRecord = serde_json::from_value(r.json()).unwrap();
    assert_eq!(rec.call.resolution, Some(Resolution::Resolved));
    let at = time::OffsetDateTime::parse(
        rec.call.classified_at.as_deref().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(rec.call.classified_at.as_deref().unwrap().ends_with('Z'));
    let at_ms = (at.unix_timestamp_nanos() / 1_000_000) as i64;
    assert!(at_ms >= before - 1 && at_ms <= now_ms() + 1, "{at}");
    assert_eq!(rec.streams, all[9].streams);
    let v = s.get_json("/v1/analytics");
    approx(&v["resolution_rate"], Some(4.0 / 6.0), "after resolve");
    // And an already classified one flips: call-00 R → U gives 3/6.
    let r = s.send_json(
        "PUT",
        "/v1/calls/call-00/resolution",
        &json!({"resolution": "unresolved"}),
    );
    assert_eq!(r.status, 200);
    approx(
        &s.get_json("/v1/analytics")["resolution_rate"],
        Some(0.5),
        "after flip",
    );

    s.send_json(
        "PUT",
        "/v1/calls/nope/resolution",
        &json!({"resolution": "resolved"}),
    )
    .error(404, "not_found");
    let m = s
        .send_json(
            "PUT",
            "/v1/calls/call-01/resolution",
            &json!({"resolution": "maybe"}),
        )
        .error(400, "bad_request");
    assert!(m.contains("maybe"), "{m}");
    let m = s
        .send_json(
            "PUT",
            "/v1/calls/call-01/resolution",
            &json!({"resolution": "resolved", "note": "x"}),
        )
        .error(400, "bad_request");
    assert!(m.contains("note"), "{m}");
    s.req(
        "PUT",
        "/v1/calls/call-01/resolution",
        Some(("", br#"{"resolution":"resolved"}"#)),
        Some(KEY),
    )
    .error(415, "unsupported_media_type");
    s.req(
        "PUT",
        "/v1/calls/call-01/resolution",
        Some(("application/json", b"{\"resolution\":")),
        Some(KEY),
    )
    .error(400, "bad_request");
}

fn export_rows(body: &[u8]) -> Vec<BTreeMap<String, String>> {
    let mut rd = csv::Reader::from_reader(body);
    rd.deserialize().collect::<Result<_, _>>().unwrap()
}

fn opt(x: Option<f64>) -> String {
    x.map(|v| v.to_string()).unwrap_or_default()
}

#[test]
fn export_csv_and_json() {
    let s = server();
    let all = records();
    let r = s.get("/v1/agents/agent-a/conversations/export?format=csv");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), "text/csv; charset=utf-8");
    assert_eq!(
        r.header("content-disposition"),
        "attachment; filename=\"agent-a-conversations.csv\""
    );
    let text = r.text();
    let header = "call_id,from_number,to_number,direction,status,duration_seconds,created_at,\
                  transcript_text,quality_mos,mos_lq,r_factor,min_interval_mos,jitter_ms,\
                  loss_ratio,rtt_ms,mno,codec\r\n";
    assert!(text.starts_with(header), "{text}");
    assert!(text.ends_with("\r\n"));
    let mut want: Vec<&CallRecord> = all
        .iter()
        .filter(|c| c.call.agent_id.as_deref() == Some("agent-a"))
        .collect();
    want.sort_by(|a, b| a.call.created_at.cmp(&b.call.created_at));
    let rows = export_rows(&r.body);
    assert_eq!(rows.len(), want.len());
    for (row, c) in rows.iter().zip(&want) {
        let q = &c.call.quality;
        let expect: BTreeMap<String, String> = [
            ("call_id", c.call.call_id.clone()),
            (
                "from_number",
                c.call.from_number.clone().unwrap_or_default(),
            ),
            ("to_number", c.call.to_number.clone().unwrap_or_default()),
            ("direction", c.call.direction.as_str().into()),
            ("status", c.call.status.as_str().into()),
            ("duration_seconds", format!("{:?}", c.call.duration_seconds)),
            ("created_at", c.call.created_at.clone()),
            ("transcript_text", String::new()),
            ("quality_mos", opt(c.call.quality_mos)),
            ("mos_lq", opt(q.mos_lq)),
            ("r_factor", opt(q.r_factor)),
            ("min_interval_mos", opt(q.min_interval_mos)),
            ("jitter_ms", opt(q.jitter_ms)),
            ("loss_ratio", opt(q.loss_ratio)),
            ("rtt_ms", opt(q.rtt_ms)),
            ("mno", c.call.mno.clone()),
            ("codec", c.call.codec.clone().unwrap_or_default()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        // Numbers compare as numbers (10 and 10.0 are the same figure).
        for (k, v) in &expect {
            let g = &row[k];
            match (g.parse::<f64>(), v.parse::<f64>()) {
                (Ok(a), Ok(b)) if !k.ends_with("number") => assert!((a - b).abs() < 1e-9, "{k}"),
                _ => assert_eq!(g, v, "{k}"),
            }
        }
        assert_eq!(row.len(), 17);
    }

    let r = s.get("/v1/agents/agent-a/conversations/export?format=json");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), "application/json");
    let v = r.json();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), want.len());
    for (row, c) in arr.iter().zip(&want) {
        assert_eq!(row["call_id"], c.call.call_id);
        assert_eq!(row["transcript_text"], "");
        approx(&row["quality_mos"], c.call.quality_mos, "mos");
        approx(&row["rtt_ms"], c.call.quality.rtt_ms, "rtt");
        assert_eq!(row.as_object().unwrap().len(), 17);
    }
    // Default format is CSV; an agent without calls is just the header / [].
    let r = s.get("/v1/agents/nobody/conversations/export");
    assert_eq!(r.text(), header);
    let r = s.get("/v1/agents/nobody/conversations/export?format=json");
    assert_eq!(r.text(), "[]");
    let m = s
        .get("/v1/agents/agent-a/conversations/export?format=xlsx")
        .error(400, "bad_request");
    assert!(m.contains("xlsx"), "{m}");
}

/// Enough calls for several export chunks, p10 ranks above 1, and calls sharing a
/// millisecond across a chunk boundary.
#[test]
fn bulk_export_and_percentile_ranks() {
    let base = today() * DAY_MS + 1000;
    let mut recs = Vec::new();
    for i in 0..2_345usize {
        let s = spec(
            "x",
            0,
            Some("bulk"),
            VF,
            Completed,
            1.0,
            None,
            None,
            None,
            None,
            None,
        );
        let mut r = record(0, &s);
        r.call.call_id = format!("bulk-{i:05}");
        // Pairs share a timestamp; order within a pair is insertion order.
        r.call.created_at = rfc3339((base + (i as i64 / 2) * 10) * 1_000_000);
        r.call.quality_mos = Some(1.0 + (i * 7 % 2_345) as f64 / 1000.0);
        r.call.quality.mos = r.call.quality_mos;
        r.call.from_number = Some(format!("+44 \"{i}\", x"));
        recs.push(r);
    }
    let s = server_with(&recs[..1000], &recs[1000..], Options::default());
    let r = s.get("/v1/agents/bulk/conversations/export?format=csv");
    assert_eq!(r.status, 200);
    let rows = export_rows(&r.body);
    assert_eq!(rows.len(), recs.len());
    for (row, c) in rows.iter().zip(&recs) {
        assert_eq!(row["call_id"], c.call.call_id);
        assert_eq!(Some(&row["from_number"]), c.call.from_number.as_ref());
    }
    let v = s.get_json("/v1/agents/bulk/conversations/export?format=json");
    assert_eq!(v.as_array().unwrap().len(), recs.len());
    let ids: BTreeSet<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["call_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), recs.len());

    let mos: Vec<f64> = recs.iter().filter_map(|r| r.call.quality_mos).collect();
    let v = s.get_json("/v1/analytics/agents");
    approx(&v[0]["p10_mos"], nearest_rank(&mos, 10.0), "p10");
    let v = s.get_json("/v1/analytics/mno?days=90");
    approx(&v[0]["p10_mos"], nearest_rank(&mos, 10.0), "p10 mno");
    approx(&v[0]["average_mos"], mean(&mos), "avg");
}

#[test]
fn auth_rules() {
    let hashed = format!("sha256:{}", hex::encode(Sha256::digest(b"hashed-key")));
    let keys = KeySet::new(&[hashed], [KEY]).unwrap();
    let s = server_with(
        &records(),
        &[],
        Options {
            keys,
            metrics: true,
            ..Options::default()
        },
    );
    let m = s
        .req("GET", "/v1/analytics", None, None)
        .error(401, "unauthorized");
    assert!(m.contains("Bearer"), "{m}");
    assert_eq!(
        s.req("GET", "/v1/analytics", None, None)
            .header("www-authenticate"),
        "Bearer"
    );
    s.req("GET", "/v1/calls", None, Some("wrong"))
        .error(401, "unauthorized");
    s.req("GET", "/openapi.json", None, Some("wrong"))
        .error(401, "unauthorized");
    s.req(
        "POST",
        "/v1/analytics",
        Some(("application/json", b"{}")),
        None,
    )
    .error(401, "unauthorized");
    assert_eq!(s.req("GET", "/v1/calls", None, Some(KEY)).status, 200);
    assert_eq!(
        s.req("GET", "/v1/calls", None, Some("hashed-key")).status,
        200
    );
    // Open: health (up/degraded only without a key); metrics unless configured
    // otherwise; unknown routes are 404.
    let h = s.req("GET", "/healthz", None, None);
    assert_eq!(h.status, 200);
    assert_eq!(h.json()["status"], "ok");
    assert!(
        h.json()["db"].is_null() && h.json()["last_call_at"].is_null(),
        "nothing beyond up/down without a key: {}",
        h.text()
    );
    let h = s.req("GET", "/healthz", None, Some(KEY));
    assert_eq!(h.json()["db"], "ok");
    let m = s.req("GET", "/metrics", None, None);
    assert_eq!(m.status, 200);
    assert_eq!(m.header("content-type"), "text/plain; version=0.0.4");
    assert!(m.text().contains("vqprobe_"), "{}", m.text());
    let msg = s
        .req("GET", "/v2/nothing", None, None)
        .error(404, "not_found");
    assert!(msg.contains("/v2/nothing"));

    let locked = server_with(
        &[],
        &[],
        Options {
            metrics: true,
            metrics_require_auth: true,
            ..Options::default()
        },
    );
    locked
        .req("GET", "/metrics", None, None)
        .error(401, "unauthorized");
    assert_eq!(locked.req("GET", "/metrics", None, Some(KEY)).status, 200);
    assert_eq!(locked.req("GET", "/healthz", None, None).status, 200);
    // Without metrics the route still answers, with 503.
    let none = server_with(&[], &[], Options::default());
    none.get("/metrics").error(503, "unavailable");
    // No keys at all: everything open (loopback only; see check_listen).
    let open = server_with(
        &[],
        &[],
        Options {
            keys: KeySet::empty(),
            ..Options::default()
        },
    );
    assert_eq!(open.req("GET", "/v1/calls", None, None).status, 200);
}

#[test]
fn bad_requests_are_400_envelopes_naming_the_problem() {
    let s = server();
    let gets = [
        ("/v1/analytics?days=14", "days"),
        ("/v1/analytics?days=abc", "days"),
        ("/v1/analytics?agent_id=", "agent_id"),
        ("/v1/analytics?agentId=a", "agentId"),
        ("/v1/analytics/mno?days=1", "days"),
        ("/v1/analytics/agents?days=365", "days"),
        ("/v1/calls?page_size=0", "page_size"),
        ("/v1/calls?page_size=101", "page_size"),
        ("/v1/calls?page=0", "page"),
        ("/v1/calls?page=-1", "page"),
        ("/v1/calls?date_from=yesterday", "date_from"),
        ("/v1/calls?date_to=2026-02-30", "date_to"),
        ("/v1/calls?min_mos=high", "min_mos"),
        ("/v1/calls?max_mos=inf", "max_mos"),
        ("/v1/calls?status=done", "status"),
        ("/v1/calls?direction=up", "direction"),
        ("/v1/calls?min_mos=4&max_mos=3", "min_mos"),
        ("/v1/calls?page=1&page=2", "page"),
        ("/v1/calls?sort=asc", "sort"),
        ("/v1/agents/a/conversations/export?format=pdf", "pdf"),
    ];
    for (path, named) in gets {
        let m = s.get(path).error(400, "bad_request");
        assert!(m.contains(named), "{path}: {m}");
    }
    let op = json!([{"operation": "avg", "column": "mos"}]);
    let posts = [
        (
            json!({"queries": [{"name": "q", "table": "call", "operations": op}]}),
            "call",
        ),
        (
            json!({"queries": [{"name": "q", "table": "calls", "operations": [{"operation": "avg", "column": "cost"}]}]}),
            "cost",
        ),
        (
            json!({"queries": [{"name": "q", "table": "calls", "operations": [{"operation": "median", "column": "mos"}]}]}),
            "median",
        ),
        (
            json!({"queries": [{"name": "q", "table": "calls", "groupBy": ["assistantId"], "operations": op}]}),
            "assistantId",
        ),
        (
            json!({"queries": [{"name": "q", "table": "calls", "operations": op, "timeRange": {"step": "decade"}}]}),
            "decade",
        ),
        (
            json!({"queries": [{"name": "q", "table": "calls", "operations": op, "timeRange": {"timezone": "Europe/London"}}]}),
            "Europe/London",
        ),
        (
            json!({"queries": [{"name": "q", "table": "calls", "operations": op, "timeRange": {"start": "2026-04-02", "end": "2026-04-01"}}]}),
            "start",
        ),
        (
            json!({"queries": [{"name": "q", "table": "calls", "operations": [{"operation": "p95", "column": "call_id"}]}]}),
            "call_id",
        ),
        (
            json!({"queries": [{"name": "q", "table": "calls", "operations": op, "groupByVariableValue": []}]}),
            "groupByVariableValue",
        ),
        (
            json!({"queries": [{"table": "calls", "operations": op}]}),
            "name",
        ),
        (json!({"queries": []}), "queries"),
        (json!([]), "expected"),
    ];
    for (body, named) in posts {
        let m = s
            .send_json("POST", "/v1/analytics", &body)
            .error(400, "bad_request");
        assert!(m.contains(named), "{body}: {m}");
    }
    s.req(
        "POST",
        "/v1/analytics",
        Some(("application/json", b"{not json")),
        Some(KEY),
    )
    .error(400, "bad_request");
    s.req(
        "POST",
        "/v1/analytics",
        Some(("text/plain", b"{}")),
        Some(KEY),
    )
    .error(415, "unsupported_media_type");
    let huge = vec![b' '; 300 * 1024];
    s.req(
        "POST",
        "/v1/analytics",
        Some(("application/json", &huge)),
        Some(KEY),
    )
    .error(413, "payload_too_large");
    let r = s.req("DELETE", "/v1/calls", None, Some(KEY));
    r.error(405, "method_not_allowed");
    assert!(r.header("allow").contains("GET"), "{:?}", r.headers);
    s.get("/nothing/here").error(404, "not_found");
}

#[test]
fn pushed_metadata() {
    let log: Pushed = Arc::default();
    let s = server_with(
        &[],
        &[],
        Options {
            push: Some(Arc::clone(&log)),
            ..Options::default()
        },
    );
    let good = json!({"call_id": "plat-1@x", "agent_id": "agent-a", "from_number": "+447700900001",
        "to_number": "+442079460000", "direction": "outbound", "mno": "EE",
        "media": [{"ip": "203.0.113.5", "port": 30000}, {"ip": "2001:db8::1", "port": 30002}]});
    let r = s.send_json("POST", "/v1/calls", &good);
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"call_id": "plat-1@x", "status": "accepted"})
    );
    let got = log.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0],
        serde_json::from_value::<PushedCall>(good.clone()).unwrap()
    );

    let bad = [
        (json!({"call_id": "x", "media": []}), "media"),
        (
            json!({"call_id": "", "media": [{"ip": "10.0.0.1", "port": 1}]}),
            "call_id",
        ),
        (
            json!({"call_id": "x", "media": [{"ip": "10.0.0.1", "port": 0}]}),
            "port",
        ),
        (
            json!({"call_id": "x", "media": [{"ip": "not-an-ip", "port": 5}]}),
            "media",
        ),
        (
            json!({"call_id": "x", "media": [{"ip": "10.0.0.1", "port": 5}], "colour": "red"}),
            "colour",
        ),
        (
            json!({"call_id": "x", "direction": "up", "media": [{"ip": "10.0.0.1", "port": 5}]}),
            "up",
        ),
        (json!({"media": [{"ip": "10.0.0.1", "port": 5}]}), "call_id"),
    ];
    for (body, named) in bad {
        let m = s
            .send_json("POST", "/v1/calls", &body)
            .error(400, "bad_request");
        assert!(m.contains(named), "{body}: {m}");
    }
    assert_eq!(log.lock().unwrap().len(), 1);

    let none = server_with(&[], &[], Options::default());
    none.send_json("POST", "/v1/calls", &good)
        .error(503, "unavailable");
    let full = server_with(
        &[],
        &[],
        Options {
            push_unavailable: true,
            ..Options::default()
        },
    );
    full.send_json("POST", "/v1/calls", &good)
        .error(503, "unavailable");
}

#[test]
fn health_reports_an_unreadable_store() {
    let s = server();
    let h = s.req("GET", "/healthz", None, Some(KEY));
    assert_eq!(h.status, 200);
    let v = h.json();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["db"], "ok");
    assert_eq!(v["capture"], "none");
    // The newest call is call-02, today at 10:02.
    assert_eq!(v["last_call_at"], records()[2].call.created_at);
    // Another server whose file turns to garbage before its first request (a pooled
    // connection would still read the old, unlinked file).
    let s = server();
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", s.db.display()));
        let _ = std::fs::remove_file(&p);
    }
    std::fs::write(&s.db, vec![b'x'; 8192]).unwrap();
    let anon = s.req("GET", "/healthz", None, None);
    assert_eq!(anon.status, 503, "{}", anon.text());
    assert_eq!(anon.json()["status"], "unavailable");
    assert!(anon.json()["error"].is_null(), "no detail without a key");
    let h = s.req("GET", "/healthz", None, Some(KEY));
    assert_eq!(h.status, 503, "{}", h.text());
    let v = h.json();
    assert_eq!(v["status"], "unavailable");
    assert_eq!(v["db"], "error");
    assert!(v["error"]["code"].is_string());
    // Data endpoints fail as server faults, not as the client's.
    let r = s.get("/v1/calls");
    assert!(r.status >= 500, "{}", r.text());
    assert!(r.json()["error"]["code"].is_string());
}

#[test]
fn documented_routes_are_served_and_back() {
    let s = server();
    let doc = s.get_json("/openapi.json");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let served: BTreeSet<(String, String)> = api::served_routes()
        .into_iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, served);
    // And each one really answers (not the router's 404 or 405).
    for (method, path) in &documented {
        let concrete = path
            .replace("{call_id}", "call-01")
            .replace("{agent_id}", "agent-a");
        let r = match method.as_str() {
            "GET" => s.get(&concrete),
            "POST" | "PUT" => s.send_json(method, &concrete, &json!({})),
            m => panic!("{m}"),
        };
        assert_ne!(r.status, 405, "{method} {path}");
        if r.status == 404 {
            let m = r.json()["error"]["message"].as_str().unwrap().to_string();
            assert!(!m.starts_with("no route"), "{method} {path}: {m}");
        }
    }
}

#[test]
fn listen_rules_and_bind_errors() {
    let keys = KeySet::empty();
    assert!(api::check_listen("127.0.0.1:8080".parse().unwrap(), &keys).is_ok());
    assert!(api::check_listen("0.0.0.0:8080".parse().unwrap(), &keys).is_err());
    // A port in use is an error from spawn, not a panic on the server thread.
    let s = server();
    let addr = s.handle.as_ref().unwrap().local_addr();
    let dir = tempfile::tempdir().unwrap();
    let err = api::spawn(
        addr,
        ApiState {
            db_path: dir.path().join("x.db"),
            keys: KeySet::empty(),
            probe: None,
            metrics_require_auth: false,
            store: None,
        },
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains(&addr.to_string()), "{err:#}");
}
