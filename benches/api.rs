//! HTTP API latency at scale: seeds a store with 1,000,000 synthetic calls over 90 days
//! (50 agents, 12 MNOs, realistic MOS/jitter/loss/RTT), starts the API with
//! `vqprobe::api::spawn` on 127.0.0.1:0 and times every endpoint 20 times over real
//! HTTP (ureq, time to last byte), printing a markdown table of median and p95.
//!
//! `cargo bench --bench api` (needs `[[bench]] name = "api" harness = false`).
//! Environment: `VQPROBE_BENCH_CALLS` (default 1000000), `VQPROBE_BENCH_DB` (a path
//! to keep the seeded database between runs; seeded only when it has too few calls),
//! `VQPROBE_BENCH_RUNS` (default 20), `VQPROBE_BENCH_ONLY` (time only the endpoints
//! whose name contains this text).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use vqprobe::api::{self, ApiState, KeySet};
use vqprobe::engine::record::{
    rfc3339, CallRecord, CallStatus, CallSummary, Direction, EndedReason, QualityRecord,
};
use vqprobe::store::Store;

const DAY_MS: i64 = 86_400_000;
const KEY: &str = "bench-key";
const AGENTS: usize = 50;
const MNOS: [&str; 12] = [
    "Vodafone UK",
    "EE",
    "O2 UK",
    "Three",
    "Telekom DE",
    "Vodafone DE",
    "Telefonica DE",
    "TIM",
    "Safaricom",
    "MTN Nigeria",
    "Airtel Nigeria",
    "Vodacom ZA",
];
const CODECS: [&str; 4] = ["PCMU", "PCMA", "G729", "opus"];

/// splitmix64: a deterministic generator, so every run seeds the same calls.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(1e-12);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Call `i` of `n`: created in order over the last 90 days (as a probe writes them,
/// give or take a minute), the `n..` extras in the last hour.
fn synthetic(i: usize, n: usize, now_ms: i64, rng: &mut Rng) -> CallRecord {
    let span = 90 * DAY_MS - 120_000;
    let created = if i < n {
        now_ms - 90 * DAY_MS
            + (span as f64 * i as f64 / n as f64) as i64
            + (rng.unit() * 60_000.0) as i64
    } else {
        now_ms - 3_600_000 + (rng.unit() * 3_500_000.0) as i64
    };
    // A few agents and MNOs carry more traffic than others, as in real life.
    let agent = (rng.below(AGENTS) + rng.below(AGENTS)) / 2;
    let mno_i = (rng.below(MNOS.len()) * rng.below(MNOS.len())) / MNOS.len();
    let mno_i = if rng.unit() < 0.03 { usize::MAX } else { mno_i };
    let roll = rng.unit();
    let status = if roll < 0.85 {
        CallStatus::Completed
    } else if roll < 0.92 {
        CallStatus::Failed
    } else if roll < 0.97 {
        CallStatus::Abandoned
    } else {
        CallStatus::InProgress
    };
    let media = matches!(status, CallStatus::Completed | CallStatus::InProgress);
    // Network quality: mostly good, a bad tail per MNO.
    let bad = rng.unit() < 0.05 + 0.01 * (mno_i % 5) as f64;
    let loss = if media {
        let base = (rng.normal() * 0.004 + 0.003).max(0.0);
        Some(round3(if bad { base + rng.unit() * 0.12 } else { base }))
    } else {
        None
    };
    let jitter =
        media.then(|| round3((rng.normal() * 0.5 + 1.2).exp() * if bad { 4.0 } else { 1.0 }));
    let rtt = (media && rng.unit() < 0.7)
        .then(|| round3(40.0 + rng.unit() * 120.0 + if bad { 200.0 } else { 0.0 }));
    let mos = media.then(|| {
        let l = loss.unwrap_or(0.0);
        let j = jitter.unwrap_or(0.0);
        round3((4.35 - 18.0 * l - 0.01 * j + rng.normal() * 0.08).clamp(1.0, 4.5))
    });
    let duration = match status {
        CallStatus::Completed => round3((rng.normal() * 0.8 + 4.7).exp().min(7200.0)),
        CallStatus::InProgress => round3(rng.unit() * 300.0),
        _ => 0.0,
    };
    let resolution = (status == CallStatus::Completed && rng.unit() < 0.6).then(|| {
        if rng.unit() < 0.8 {
            vqprobe::engine::record::Resolution::Resolved
        } else {
            vqprobe::engine::record::Resolution::Unresolved
        }
    });
    let direction = if i % 3 == 0 {
        Direction::Outbound
    } else {
        Direction::Inbound
    };
    CallRecord {
        call: CallSummary {
            call_id: format!("bench-{i:07}@sbc.example.net"),
            sip_call_id: Some(format!("bench-{i:07}@sbc.example.net")),
            agent_id: Some(format!("agent-{agent:02}")),
            from_number: Some(format!("+4477009{:05}", i % 100_000)),
            to_number: Some(format!("+4420794{:05}", (i * 7) % 100_000)),
            from_raw: None,
            to_raw: None,
            from_anonymous: false,
            diverted_from: None,
            mno: MNOS.get(mno_i).unwrap_or(&"unknown").to_string(),
            mno_source: None,
            country: Some("GB".into()),
            direction,
            status,
            ended_reason: match status {
                CallStatus::Completed => Some(EndedReason::Bye),
                CallStatus::Failed => Some(EndedReason::Error),
                CallStatus::Abandoned => Some(EndedReason::Cancel),
                CallStatus::InProgress => None,
            },
            created_at: rfc3339(created * 1_000_000),
            ended_at: (status != CallStatus::InProgress)
                .then(|| rfc3339((created + (duration * 1000.0) as i64 + 1500) * 1_000_000)),
            duration_seconds: duration,
            codec: Some(CODECS[i % CODECS.len()].into()),
            one_way_audio: false,
            fax: false,
            xr_disagreement: false,
            quality_mos: mos,
            quality: QualityRecord {
                mos,
                mos_lq: mos.map(|m| (m + 0.1).min(4.5)),
                r_factor: mos.map(|m| round3(20.0 * m)),
                min_interval_mos: mos.map(|m| (m - 0.3).max(1.0)),
                jitter_ms: jitter,
                loss_ratio: loss,
                rtt_ms: rtt,
                one_way_delay_ms: rtt.map(|r| r / 2.0),
            },
            resolution,
            classified_at: resolution.map(|_| rfc3339((created + 3_600_000) * 1_000_000)),
            recording_url: None,
            probe_id: None,
        },
        streams: Vec::new(),
    }
}

fn seed(store: &mut Store, from: usize, to: usize, n: usize, now_ms: i64) -> Duration {
    let started = Instant::now();
    let mut rng = Rng(0x5eed ^ from as u64);
    let mut chunk = Vec::with_capacity(10_000);
    for i in from..to {
        chunk.push(synthetic(i, n, now_ms, &mut rng));
        if chunk.len() == 10_000 {
            store.upsert_calls(&chunk).expect("seeding");
            chunk.clear();
        }
    }
    if !chunk.is_empty() {
        store.upsert_calls(&chunk).expect("seeding");
    }
    started.elapsed()
}

struct Case {
    name: String,
    method: &'static str,
    path: String,
    body: Option<serde_json::Value>,
}

fn case(name: &str, method: &'static str, path: &str, body: Option<serde_json::Value>) -> Case {
    Case {
        name: name.into(),
        method,
        path: path.into(),
        body,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let k = ((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[k - 1]
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let n_calls = env_usize("VQPROBE_BENCH_CALLS", 1_000_000);
    let runs = env_usize("VQPROBE_BENCH_RUNS", 20).max(1);
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let tmp = tempfile::tempdir().expect("temp dir");
    let db: PathBuf = std::env::var_os("VQPROBE_BENCH_DB")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().join("bench.db"));

    let mut store = Store::open(&db).expect("open store");
    let have = store.count_calls().expect("count") as usize;
    if have < n_calls {
        let t = seed(&mut store, have, n_calls, n_calls, now_ms);
        eprintln!(
            "seeded {} calls in {:.1} s ({:.0} calls/s, without the API's triggers)",
            n_calls - have,
            t.as_secs_f64(),
            (n_calls - have) as f64 / t.as_secs_f64()
        );
    } else {
        eprintln!("reusing {} ({have} calls)", db.display());
    }
    drop(store);

    let metrics = Arc::new(vqprobe::metrics::Metrics::new(50, 200).expect("metrics"));
    let started = Instant::now();
    let handle = api::spawn(
        "127.0.0.1:0".parse().expect("addr"),
        ApiState {
            db_path: db.clone(),
            keys: KeySet::new(&[], [KEY]).expect("keys"),
            probe: Some(Arc::new(BenchProbe(metrics))),
            metrics_require_auth: false,
            store: None,
        },
    )
    .expect("spawn");
    eprintln!(
        "api::spawn (indexes, rollup, triggers) took {:.2} s",
        started.elapsed().as_secs_f64()
    );

    // Write cost with the rollup triggers live, for comparison with seeding.
    let mut store = Store::open(&db).expect("open store");
    let extra = 20_000;
    let t = seed(&mut store, n_calls, n_calls + extra, n_calls, now_ms);
    eprintln!(
        "upserted {extra} more calls with triggers in {:.2} s ({:.0} calls/s)",
        t.as_secs_f64(),
        extra as f64 / t.as_secs_f64()
    );
    drop(store);

    let base = format!("http://{}", handle.local_addr());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let day = |d: i64| {
        let t = time::OffsetDateTime::from_unix_timestamp((now_ms / DAY_MS - d) * 86_400)
            .expect("date");
        format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
    };
    let by_mno = |range: Option<serde_json::Value>, step: Option<&str>| {
        let mut q = serde_json::json!({
            "name": "mno", "table": "calls", "groupBy": ["mno"],
            "operations": [
                {"operation": "count", "column": "call_id"},
                {"operation": "avg", "column": "mos"},
                {"operation": "p95", "column": "jitter_ms"},
                {"operation": "p95", "column": "mos"}
            ]
        });
        let mut tr = range.unwrap_or_else(|| serde_json::json!({}));
        if let Some(s) = step {
            tr["step"] = s.into();
        }
        q["timeRange"] = tr;
        serde_json::json!({ "queries": [q] })
    };
    let cases = vec![
        case(
            "GET /v1/analytics?days=7",
            "GET",
            "/v1/analytics?days=7",
            None,
        ),
        case(
            "GET /v1/analytics?days=30",
            "GET",
            "/v1/analytics?days=30",
            None,
        ),
        case(
            "GET /v1/analytics?days=90",
            "GET",
            "/v1/analytics?days=90",
            None,
        ),
        case(
            "GET /v1/analytics?days=90&agent_id&mno",
            "GET",
            "/v1/analytics?days=90&agent_id=agent-25&mno=EE",
            None,
        ),
        case(
            "POST /v1/analytics mno × (count, avg, p95 mos, p95 jitter), last 7 days",
            "POST",
            "/v1/analytics",
            Some(by_mno(None, None)),
        ),
        case(
            "POST /v1/analytics same, 30 days, step day",
            "POST",
            "/v1/analytics",
            Some(by_mno(
                Some(serde_json::json!({"start": day(29), "end": day(0)})),
                Some("day"),
            )),
        ),
        case(
            "POST /v1/analytics same, 90 days",
            "POST",
            "/v1/analytics",
            Some(by_mno(
                Some(serde_json::json!({"start": day(89), "end": day(0)})),
                None,
            )),
        ),
        case(
            "GET /v1/analytics/mno?days=7",
            "GET",
            "/v1/analytics/mno?days=7",
            None,
        ),
        case(
            "GET /v1/analytics/mno?days=90",
            "GET",
            "/v1/analytics/mno?days=90",
            None,
        ),
        case(
            "GET /v1/analytics/agents?days=7",
            "GET",
            "/v1/analytics/agents?days=7",
            None,
        ),
        case(
            "GET /v1/analytics/agents?days=90",
            "GET",
            "/v1/analytics/agents?days=90",
            None,
        ),
        case("GET /v1/calls (page 1)", "GET", "/v1/calls", None),
        case(
            "GET /v1/calls?status&direction page 1",
            "GET",
            "/v1/calls?status=failed&direction=outbound",
            None,
        ),
        case(
            "GET /v1/calls?mno&status page 500",
            "GET",
            "/v1/calls?mno=EE&status=completed&page=500&page_size=20",
            None,
        ),
        case(
            "GET /v1/calls?agent_id&min_mos&date_from page 500",
            "GET",
            &format!(
                "/v1/calls?agent_id=agent-25&min_mos=3.5&date_from={}&page=500&page_size=20",
                day(89)
            ),
            None,
        ),
        case(
            "GET /v1/calls/{call_id}",
            "GET",
            &format!("/v1/calls/bench-{:07}@sbc.example.net", n_calls / 2),
            None,
        ),
        case(
            "PUT /v1/calls/{call_id}/resolution",
            "PUT",
            &format!(
                "/v1/calls/bench-{:07}@sbc.example.net/resolution",
                n_calls / 2 + 1
            ),
            Some(serde_json::json!({"resolution": "resolved"})),
        ),
        case(
            "GET export csv, busiest agent (time to last byte)",
            "GET",
            "/v1/agents/agent-25/conversations/export?format=csv",
            None,
        ),
        case(
            "GET export json, busiest agent (time to last byte)",
            "GET",
            "/v1/agents/agent-25/conversations/export?format=json",
            None,
        ),
        case(
            "GET export csv, a quieter agent (time to last byte)",
            "GET",
            "/v1/agents/agent-05/conversations/export?format=csv",
            None,
        ),
        case("GET /healthz", "GET", "/healthz", None),
        case("GET /metrics", "GET", "/metrics", None),
        case("GET /openapi.json", "GET", "/openapi.json", None),
    ];

    let only = std::env::var("VQPROBE_BENCH_ONLY").unwrap_or_default();
    println!("| endpoint ({n_calls} calls) | median ms | p95 ms | bytes |");
    println!("|---|---:|---:|---:|");
    for c in cases.iter().filter(|c| c.name.contains(&only)) {
        let mut times = Vec::with_capacity(runs);
        let mut bytes = 0;
        // One warm-up request: connection set-up and SQLite's first page reads.
        for i in 0..=runs {
            let url = format!("{base}{}", c.path);
            let t = Instant::now();
            let mut resp = match (c.method, &c.body) {
                ("GET", _) => agent
                    .get(&url)
                    .header("Authorization", format!("Bearer {KEY}"))
                    .call(),
                ("POST", Some(b)) => agent
                    .post(&url)
                    .header("Authorization", format!("Bearer {KEY}"))
                    .send_json(b),
                ("PUT", Some(b)) => agent
                    .put(&url)
                    .header("Authorization", format!("Bearer {KEY}"))
                    .send_json(b),
                _ => panic!("bad case {}", c.name),
            }
            .expect("request");
            let status = resp.status().as_u16();
            let body = resp
                .body_mut()
                .with_config()
                .limit(1 << 32)
                .read_to_vec()
                .expect("body");
            let elapsed = t.elapsed().as_secs_f64() * 1000.0;
            assert!(
                status < 300,
                "{}: {status} {}",
                c.name,
                String::from_utf8_lossy(&body)
            );
            bytes = body.len();
            if i > 0 {
                times.push(elapsed);
            }
        }
        times.sort_by(f64::total_cmp);
        println!(
            "| {} | {:.1} | {:.1} | {} |",
            c.name,
            percentile(&times, 50.0),
            percentile(&times, 95.0),
            bytes
        );
    }
    handle.shutdown().expect("shutdown");
}

/// The process behind the API in the bench: metrics only.
struct BenchProbe(Arc<vqprobe::metrics::Metrics>);

impl api::Probe for BenchProbe {
    fn metrics_text(&self) -> Option<String> {
        Some(self.0.render(None))
    }

    fn stopping(&self) -> bool {
        false
    }

    fn push(
        &self,
        _call: vqprobe::engine::push::PushedCall,
    ) -> Result<(), vqprobe::engine::push::PushError> {
        Err(vqprobe::engine::push::PushError::Unavailable)
    }
}
