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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[path = "support/prom.rs"]
mod prom;

use prom::{promtool_check, run_dashboard, tools_missing, PromServer};
use vqprobe::engine::record::{
    CallRecord, CallStatus, CallSummary, Direction, EndedReason, QualityRecord, StreamRecord,
};
use vqprobe::metrics::Metrics;
use vqprobe::runtime::Runtime;
use vqprobe::runtime::{SourceStats, WorkerSnapshot};

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
        ssrc: vqprobe::wire::Ssrc(0x0bad_cafe),
        payload_type: Some(vqprobe::wire::Pt(8)),
        codec: Some("PCMA".into()),
        clock_rate: Some(8000),
        packets: expected - lost,
        other_payload_packets: 0,
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
        xr: None,
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
        call: CallSummary {
            call_id: format!("call-{i}"),
            sip_call_id: Some(format!("call-{i}@test")),
            agent_id: AGENTS[i % 4].map(str::to_string),
            from_number: Some("+447700900123".into()),
            to_number: Some("+442071838750".into()),
            from_raw: None,
            to_raw: None,
            from_anonymous: false,
            diverted_from: None,
            mno: MNOS[i % 4].into(),
            mno_source: None,
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
            fax: false,
            xr_disagreement: false,
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
            probe_id: None,
        },
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
        hep: Default::default(),
        store: None,
        bus: None,
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
    let prom = PromServer::start(dir.path(), &server.addr.to_string());

    // (b) The first scrapes carry exactly the calls observed so far.
    prom.wait_for("vqprobe_calls_total", Duration::from_secs(30), |v| {
        !v.is_empty()
    });
    let sum = prom.wait_for("sum(vqprobe_calls_total)", Duration::from_secs(5), |v| {
        v.len() == 1
    });
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
    prom.wait_for("sum(vqprobe_calls_total)", Duration::from_secs(10), |v| {
        v == [want]
    });
    assert!(
        server.scrapes.load(Ordering::Relaxed) >= 3,
        "too few scrapes"
    );

    // (c) Every dashboard expression is valid and returns data.
    let run = run_dashboard(&prom);
    assert!(
        run.failures.is_empty(),
        "{} of {} dashboard queries failed:\n{}",
        run.failures.len(),
        run.exprs,
        run.failures.join("\n")
    );
}
