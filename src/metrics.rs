//! Prometheus metrics: the registry behind `GET /metrics`.
//!
//! Two kinds of series live here. Call-quality series (`vqprobe_calls_total` and the
//! histograms) are fed once per finished call by [`Metrics::observe_call`]. Capture
//! and engine series mirror counters the pipeline already keeps (`SourceStats`,
//! `WorkerSnapshot`) and are refreshed from the [`Runtime`] at each
//! [`Metrics::render`], so the hot path never touches the registry.
//!
//! Label sets are bounded: SIP methods come from the engine's fixed set, drop reasons
//! and malformed kinds are fixed here, and MNO and agent values are capped (the first
//! `cap` distinct values keep their name, later ones fold into `other`).

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard, PoisonError};

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use crate::runtime::Runtime;
use vqprobe_engine::record::{CallRecord, CallStatus};

/// MOS buckets: dense around the thresholds NOC engineers use (3.1 "poor", 3.6–3.8
/// "fair", 4.0+ "good", 4.4 is about the best narrowband G.711 gets).
const MOS_BUCKETS: [f64; 12] = [1.0, 1.5, 2.0, 2.5, 3.0, 3.1, 3.5, 3.8, 4.0, 4.2, 4.4, 4.5];
/// Jitter buckets in seconds: 1 ms (a clean LAN) to 500 ms (what no buffer hides).
const JITTER_BUCKETS: [f64; 12] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.3, 0.5,
];
/// Loss-ratio buckets: 0.1 % (inaudible with PLC) up to total loss.
const LOSS_BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1.0,
];
/// Round-trip buckets in seconds: G.114 puts the mouth-to-ear limit at 150 ms one
/// way, so the interesting range is 20 ms to a few hundred.
const RTT_BUCKETS: [f64; 12] = [
    0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.0,
];

/// SIP methods given a zero series up front, so `rate()` has a starting point from
/// the first scrape instead of missing the first increase.
const SIP_METHODS: [&str; 7] = [
    "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "RESPONSE",
];

/// Label value for values beyond the cap.
pub const OTHER_LABEL: &str = "other";
/// Agent label value for calls without an agent.
pub const NO_AGENT_LABEL: &str = "none";
/// Longest label value kept, in bytes: agent ids are pushed by the platform, and a
/// long one should not bloat every scrape.
const MAX_LABEL_BYTES: usize = 128;

/// Admits the first `cap` distinct values of a label and folds the rest into `other`.
#[derive(Debug)]
struct LabelCap {
    cap: usize,
    seen: HashSet<String>,
}

impl LabelCap {
    fn new(cap: usize) -> Self {
        LabelCap {
            cap,
            seen: HashSet::new(),
        }
    }

    /// The label value to use for `value`.
    fn admit(&mut self, value: &str) -> String {
        let value = truncate(value, MAX_LABEL_BYTES);
        if self.seen.contains(value) {
            return value.to_string();
        }
        if self.seen.len() < self.cap {
            self.seen.insert(value.to_string());
            return value.to_string();
        }
        OTHER_LABEL.to_string()
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The label caps, behind one lock so an MNO and its agent are admitted together.
#[derive(Debug)]
struct Caps {
    mno: LabelCap,
    agent: LabelCap,
}

/// A poisoned lock only means another thread panicked mid-update; the sets and
/// counters it guards stay usable, and metrics must keep working.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The daemon's Prometheus registry and every series it exports.
pub struct Metrics {
    registry: Registry,
    caps: Mutex<Caps>,
    /// Serialises mirror refreshes: each reads a counter and adds the difference, and
    /// two renders interleaving would add it twice.
    refresh: Mutex<()>,
    capture_packets: IntCounterVec,
    capture_dropped: IntCounterVec,
    rtp_packets: IntCounter,
    rtcp_packets: IntCounter,
    sip_messages: IntCounterVec,
    malformed: IntCounterVec,
    streams_refused: IntCounter,
    calls_refused: IntCounter,
    active_calls: IntGauge,
    active_streams: IntGauge,
    calls: IntCounterVec,
    call_mos: HistogramVec,
    stream_jitter: HistogramVec,
    stream_loss: HistogramVec,
    rtt: HistogramVec,
    hep_sent: IntCounterVec,
    hep_dropped: IntCounterVec,
    hep_received: IntCounterVec,
    hep_malformed: IntCounter,
    hep_unsupported: IntCounter,
    store_written: IntCounter,
    store_errors: IntCounter,
    store_pending: IntGauge,
    store_dropped: IntCounterVec,
    bus_published: IntCounter,
    bus_errors: IntCounter,
    bus_outbox_depth: IntGauge,
    bus_outbox_dropped: IntCounter,
    bus_last_ack_age: prometheus::Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Builds the registry. `mno_cap` and `agent_cap` bound the distinct MNO and agent
    /// label values (`api.mno_label_cap`, `api.agent_label_cap`).
    ///
    /// Fails only if a metric definition is invalid, which for these fixed names
    /// means a bug; it is a `Result` so the daemon reports it instead of panicking.
    pub fn new(mno_cap: usize, agent_cap: usize) -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();

        let capture_packets = IntCounterVec::new(
            Opts::new(
                "vqprobe_capture_packets_total",
                "Frames read from each capture source.",
            ),
            &["interface"],
        )?;
        let capture_dropped = IntCounterVec::new(
            Opts::new(
                "vqprobe_capture_dropped_packets_total",
                "Frames lost per capture source: reason=kernel (pcap ps_drop), \
                 interface (ps_ifdrop), queue (a shard queue was full).",
            ),
            &["interface", "reason"],
        )?;
        let rtp_packets = IntCounter::new(
            "vqprobe_rtp_packets_total",
            "RTP packets counted into media streams.",
        )?;
        let rtcp_packets = IntCounter::new(
            "vqprobe_rtcp_packets_total",
            "RTCP compound datagrams received.",
        )?;
        let sip_messages = IntCounterVec::new(
            Opts::new(
                "vqprobe_sip_messages_total",
                "SIP messages parsed, by request method (RESPONSE for responses, \
                 OTHER for unlisted methods).",
            ),
            &["method"],
        )?;
        let malformed = IntCounterVec::new(
            Opts::new(
                "vqprobe_malformed_packets_total",
                "Packets that failed to decode, by layer: frame (L2-L4 headers), \
                 rtp, rtcp, sip.",
            ),
            &["kind"],
        )?;
        let streams_refused = IntCounter::new(
            "vqprobe_streams_refused_total",
            "Media streams not tracked because the concurrent stream cap was reached.",
        )?;
        let calls_refused = IntCounter::new(
            "vqprobe_calls_refused_total",
            "Calls (SIP dialogs, RTP-only pairs) not tracked because the concurrent call \
             cap (pipeline.max_calls) was reached.",
        )?;
        let active_calls = IntGauge::new(
            "vqprobe_active_calls",
            "Calls currently open: SIP dialogs not yet ended, RTP-only pairs and pushed calls with media.",
        )?;
        let active_streams =
            IntGauge::new("vqprobe_active_streams", "Media streams currently tracked.")?;
        let calls = IntCounterVec::new(
            Opts::new(
                "vqprobe_calls_total",
                "Finished calls by MNO, agent and final status.",
            ),
            &["mno", "agent", "status"],
        )?;
        let call_mos = HistogramVec::new(
            HistogramOpts::new(
                "vqprobe_call_mos",
                "Call MOS (E-model, worst direction) of finished calls with enough media.",
            )
            .buckets(MOS_BUCKETS.to_vec()),
            &["mno", "agent"],
        )?;
        let stream_jitter = HistogramVec::new(
            HistogramOpts::new(
                "vqprobe_stream_jitter_seconds",
                "Final RFC 3550 interarrival jitter of each stream of finished calls.",
            )
            .buckets(JITTER_BUCKETS.to_vec()),
            &["mno"],
        )?;
        let stream_loss = HistogramVec::new(
            HistogramOpts::new(
                "vqprobe_stream_loss_ratio",
                "Loss ratio (lost / expected) of each stream of finished calls.",
            )
            .buckets(LOSS_BUCKETS.to_vec()),
            &["mno"],
        )?;
        let rtt = HistogramVec::new(
            HistogramOpts::new(
                "vqprobe_rtt_seconds",
                "Round-trip time from RTCP of finished calls that measured one.",
            )
            .buckets(RTT_BUCKETS.to_vec()),
            &["mno"],
        )?;

        let hep_sent = IntCounterVec::new(
            Opts::new(
                "vqprobe_hep_sent_messages_total",
                "HEP messages sent to the capture server, by kind: sip, rtcp, report.",
            ),
            &["kind"],
        )?;
        let hep_dropped = IntCounterVec::new(
            Opts::new(
                "vqprobe_hep_dropped_messages_total",
                "HEP messages not sent: reason=queue (export queue full), send (socket \
                 failed), input (received but the input queue was full).",
            ),
            &["reason"],
        )?;
        let hep_received = IntCounterVec::new(
            Opts::new(
                "vqprobe_hep_received_packets_total",
                "HEP packets received from agents, by HEP version.",
            ),
            &["version"],
        )?;
        let hep_malformed = IntCounter::new(
            "vqprobe_hep_malformed_packets_total",
            "Bytes received on a HEP listener that were not a valid HEP packet.",
        )?;
        let hep_unsupported = IntCounter::new(
            "vqprobe_hep_unsupported_packets_total",
            "HEP packets received whose payload the probe does not analyse (logs, \
             reports, RTCP as JSON, compressed payloads).",
        )?;
        registry.register(Box::new(hep_sent.clone()))?;
        registry.register(Box::new(hep_dropped.clone()))?;
        registry.register(Box::new(hep_received.clone()))?;
        registry.register(Box::new(hep_malformed.clone()))?;
        registry.register(Box::new(hep_unsupported.clone()))?;
        for k in ["sip", "rtcp", "report"] {
            hep_sent.with_label_values(&[k]);
        }
        for r in ["queue", "send", "input"] {
            hep_dropped.with_label_values(&[r]);
        }
        for v in ["1", "2", "3"] {
            hep_received.with_label_values(&[v]);
        }
        let store_written = IntCounter::new(
            "vqprobe_store_written_records_total",
            "Call records written to the SQLite store (interim versions included).",
        )?;
        let store_errors = IntCounter::new(
            "vqprobe_store_errors_total",
            "Writes the store's disk refused (full, read-only, I/O error); each retry counts.",
        )?;
        let store_pending = IntGauge::new(
            "vqprobe_store_pending_records",
            "Call records waiting in memory because the disk refuses writes.",
        )?;
        let store_dropped = IntCounterVec::new(
            Opts::new(
                "vqprobe_store_dropped_records_total",
                "Call records never written: reason=overflow (store.pending_max reached \
                 while the disk failed), refused (the database rejected the record itself).",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(store_written.clone()))?;
        registry.register(Box::new(store_errors.clone()))?;
        registry.register(Box::new(store_pending.clone()))?;
        registry.register(Box::new(store_dropped.clone()))?;
        let bus_published = IntCounter::new(
            "vqprobe_bus_published_total",
            "Call records JetStream acknowledged (fleet bus).",
        )?;
        let bus_errors = IntCounter::new(
            "vqprobe_bus_errors_total",
            "Failed publishes and connects to NATS; each try counts.",
        )?;
        let bus_outbox_depth = IntGauge::new(
            "vqprobe_bus_outbox_depth",
            "Call records in the outbox waiting for JetStream.",
        )?;
        let bus_outbox_dropped = IntCounter::new(
            "vqprobe_bus_outbox_dropped_records_total",
            "Finished records not queued for the bus because the outbox held bus.outbox_max.",
        )?;
        let bus_last_ack_age = prometheus::Gauge::new(
            "vqprobe_bus_last_ack_age_seconds",
            "Seconds since JetStream last acknowledged a record (-1 before the first).",
        )?;
        registry.register(Box::new(bus_published.clone()))?;
        registry.register(Box::new(bus_errors.clone()))?;
        registry.register(Box::new(bus_outbox_depth.clone()))?;
        registry.register(Box::new(bus_outbox_dropped.clone()))?;
        registry.register(Box::new(bus_last_ack_age.clone()))?;
        registry.register(Box::new(capture_packets.clone()))?;
        registry.register(Box::new(capture_dropped.clone()))?;
        registry.register(Box::new(rtp_packets.clone()))?;
        registry.register(Box::new(rtcp_packets.clone()))?;
        registry.register(Box::new(sip_messages.clone()))?;
        registry.register(Box::new(malformed.clone()))?;
        registry.register(Box::new(streams_refused.clone()))?;
        registry.register(Box::new(calls_refused.clone()))?;
        registry.register(Box::new(active_calls.clone()))?;
        registry.register(Box::new(active_streams.clone()))?;
        registry.register(Box::new(calls.clone()))?;
        registry.register(Box::new(call_mos.clone()))?;
        registry.register(Box::new(stream_jitter.clone()))?;
        registry.register(Box::new(stream_loss.clone()))?;
        registry.register(Box::new(rtt.clone()))?;

        // Zero series for the fixed label sets: a family with no series is left out of
        // the exposition, and a series born at 1 hides its first increase from rate().
        for m in SIP_METHODS {
            sip_messages.with_label_values(&[m]);
        }
        for k in ["frame", "rtp", "rtcp", "sip"] {
            malformed.with_label_values(&[k]);
        }

        Ok(Metrics {
            registry,
            caps: Mutex::new(Caps {
                mno: LabelCap::new(mno_cap),
                agent: LabelCap::new(agent_cap),
            }),
            refresh: Mutex::new(()),
            capture_packets,
            capture_dropped,
            rtp_packets,
            rtcp_packets,
            sip_messages,
            malformed,
            streams_refused,
            calls_refused,
            active_calls,
            active_streams,
            calls,
            call_mos,
            stream_jitter,
            stream_loss,
            rtt,
            hep_sent,
            hep_dropped,
            hep_received,
            hep_malformed,
            hep_unsupported,
            store_written,
            store_errors,
            store_pending,
            store_dropped,
            bus_published,
            bus_errors,
            bus_outbox_depth,
            bus_outbox_dropped,
            bus_last_ack_age,
        })
    }

    /// Accounts one finished call: `vqprobe_calls_total`, its MOS, each stream's jitter
    /// and loss, and its round trip. Interim (`in_progress`) records are ignored, since
    /// counting them would count a call once per interim update.
    pub fn observe_call(&self, rec: &CallRecord) {
        if rec.call.status == CallStatus::InProgress {
            return;
        }
        let (mno, agent) = {
            let mut caps = lock(&self.caps);
            // An empty value would read as "label absent" in PromQL.
            let mno = caps.mno.admit(if rec.call.mno.is_empty() {
                "unknown"
            } else {
                &rec.call.mno
            });
            let agent = match rec.call.agent_id.as_deref() {
                Some(a) if !a.is_empty() => caps.agent.admit(a),
                _ => NO_AGENT_LABEL.to_string(),
            };
            (mno, agent)
        };
        self.calls
            .with_label_values(&[mno.as_str(), agent.as_str(), rec.call.status.as_str()])
            .inc();
        if let Some(mos) = rec.call.quality_mos.filter(|m| m.is_finite()) {
            self.call_mos
                .with_label_values(&[mno.as_str(), agent.as_str()])
                .observe(mos);
        }
        let jitter = self.stream_jitter.with_label_values(&[mno.as_str()]);
        let loss = self.stream_loss.with_label_values(&[mno.as_str()]);
        for s in &rec.streams {
            if let Some(j) = s.jitter_ms.filter(|j| j.is_finite() && *j >= 0.0) {
                jitter.observe(j / 1000.0);
            }
            // A stream with no sequence span (a single packet) has no loss ratio.
            if s.expected > 0 {
                loss.observe((s.lost as f64 / s.expected as f64).clamp(0.0, 1.0));
            }
        }
        if let Some(rtt) = rec
            .call
            .quality
            .rtt_ms
            .filter(|r| r.is_finite() && *r >= 0.0)
        {
            self.rtt
                .with_label_values(&[mno.as_str()])
                .observe(rtt / 1000.0);
        }
    }

    /// The exposition text (Prometheus text format 0.0.4). With a runtime, the capture
    /// and engine series are first brought up to date from it.
    ///
    /// `vqprobe_active_calls` counts open calls of every kind, as the workers publish
    /// them once a second.
    pub fn render(&self, runtime: Option<&Runtime>) -> String {
        if let Some(rt) = runtime {
            self.refresh(rt);
        }
        let families = self.registry.gather();
        let mut buf = Vec::new();
        match TextEncoder::new().encode(&families, &mut buf) {
            Ok(()) => String::from_utf8(buf)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            // A comment line keeps the reply valid exposition text while saying why it
            // is empty.
            Err(e) => format!("# vqprobe: encoding metrics failed: {e}\n"),
        }
    }

    /// Mirrors the runtime's counters into the registry.
    fn refresh(&self, rt: &Runtime) {
        use std::sync::atomic::Ordering::Relaxed;
        let _guard = lock(&self.refresh);
        for (name, st) in &rt.sources {
            let name = truncate(name, MAX_LABEL_BYTES);
            mirror(
                &self.capture_packets.with_label_values(&[name]),
                st.packets.load(Relaxed),
            );
            for (reason, value) in [
                ("kernel", st.kernel_dropped.load(Relaxed)),
                ("interface", st.if_dropped.load(Relaxed)),
                ("queue", st.queue_dropped.load(Relaxed)),
            ] {
                mirror(
                    &self.capture_dropped.with_label_values(&[name, reason]),
                    value,
                );
            }
        }

        let (mut rtp, mut rtcp, mut refused, mut calls_refused) = (0u64, 0u64, 0u64, 0u64);
        let (mut frame_bad, mut rtp_bad, mut rtcp_bad, mut sip_bad) = (0u64, 0u64, 0u64, 0u64);
        let (mut dialogs, mut streams) = (0usize, 0usize);
        let mut methods: std::collections::BTreeMap<&'static str, u64> = Default::default();
        for w in &rt.workers {
            let s = lock(w);
            let c = &s.counters;
            rtp = rtp.saturating_add(c.rtp_packets);
            rtcp = rtcp.saturating_add(c.rtcp_packets);
            refused = refused.saturating_add(c.streams_refused);
            calls_refused = calls_refused.saturating_add(c.calls_refused);
            frame_bad = frame_bad.saturating_add(c.malformed);
            rtp_bad = rtp_bad.saturating_add(c.rtp_malformed);
            rtcp_bad = rtcp_bad.saturating_add(c.rtcp_malformed);
            sip_bad = sip_bad.saturating_add(c.sip_malformed);
            for (m, n) in &c.sip_by_method {
                let e = methods.entry(m).or_insert(0);
                *e = e.saturating_add(*n);
            }
            dialogs = dialogs.saturating_add(s.active_dialogs);
            streams = streams.saturating_add(s.active_streams);
        }
        mirror(&self.rtp_packets, rtp);
        mirror(&self.rtcp_packets, rtcp);
        mirror(&self.streams_refused, refused);
        mirror(&self.calls_refused, calls_refused);
        for (kind, v) in [
            ("frame", frame_bad),
            ("rtp", rtp_bad),
            ("rtcp", rtcp_bad),
            ("sip", sip_bad),
        ] {
            mirror(&self.malformed.with_label_values(&[kind]), v);
        }
        for (m, n) in methods {
            mirror(&self.sip_messages.with_label_values(&[m]), n);
        }
        let h = &rt.hep;
        for (kind, c) in [
            ("sip", &h.sent_sip),
            ("rtcp", &h.sent_rtcp),
            ("report", &h.sent_report),
        ] {
            mirror(&self.hep_sent.with_label_values(&[kind]), c.load(Relaxed));
        }
        for (reason, c) in [
            ("queue", &h.dropped_queue),
            ("send", &h.dropped_send),
            ("input", &h.input_dropped),
        ] {
            mirror(
                &self.hep_dropped.with_label_values(&[reason]),
                c.load(Relaxed),
            );
        }
        for (v, c) in ["1", "2", "3"].iter().zip(&h.received) {
            mirror(&self.hep_received.with_label_values(&[v]), c.load(Relaxed));
        }
        mirror(&self.hep_malformed, h.malformed.load(Relaxed));
        mirror(&self.hep_unsupported, h.unsupported.load(Relaxed));
        self.active_calls
            .set(i64::try_from(dialogs).unwrap_or(i64::MAX));
        self.active_streams
            .set(i64::try_from(streams).unwrap_or(i64::MAX));
        if let Some(st) = &rt.store {
            mirror(&self.store_written, st.written.load(Relaxed));
            mirror(&self.store_errors, st.errors.load(Relaxed));
            self.store_pending
                .set(i64::try_from(st.pending.load(Relaxed)).unwrap_or(i64::MAX));
            mirror(
                &self.store_dropped.with_label_values(&["overflow"]),
                st.dropped.load(Relaxed),
            );
            mirror(
                &self.store_dropped.with_label_values(&["refused"]),
                st.failed.load(Relaxed),
            );
            mirror(&self.bus_outbox_dropped, st.outbox_dropped.load(Relaxed));
        }
        if let Some(bus) = &rt.bus {
            mirror(&self.bus_published, bus.published.load(Relaxed));
            mirror(&self.bus_errors, bus.errors.load(Relaxed));
            self.bus_outbox_depth
                .set(i64::try_from(bus.outbox_depth.load(Relaxed)).unwrap_or(i64::MAX));
            let last = bus.last_ack_ms.load(Relaxed);
            let age = if last == 0 {
                -1.0
            } else {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
                (now - last).max(0) as f64 / 1000.0
            };
            self.bus_last_ack_age.set(age);
        }
    }
}

/// Raises `counter` to `value`. A counter never goes down: a smaller value (a source
/// whose pcap stats restarted) is held until the source catches up, which Prometheus
/// would otherwise read as a reset and a spurious jump.
fn mirror(counter: &IntCounter, value: u64) {
    let cur = counter.get();
    if value > cur {
        counter.inc_by(value - cur);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{SourceStats, WorkerSnapshot};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use vqprobe_engine::record::{
        CallSummary, Direction, EndedReason, QualityRecord, StreamRecord,
    };

    fn stream(jitter_ms: f64, expected: u64, lost: u64) -> StreamRecord {
        StreamRecord {
            direction: Direction::Inbound,
            src: "192.0.2.1:4000".into(),
            dst: "198.51.100.1:5000".into(),
            ssrc: vqprobe_wire::Ssrc(1),
            payload_type: Some(vqprobe_wire::Pt(0)),
            codec: Some("PCMU".into()),
            clock_rate: Some(8000),
            packets: expected - lost,
            other_payload_packets: 0,
            expected,
            lost,
            duplicates: 0,
            out_of_order: 0,
            jitter_ms: Some(jitter_ms),
            max_jitter_ms: None,
            mean_jitter_ms: None,
            max_delta_ms: 20.0,
            loss_runs: [0; 10],
            mos: Some(4.0),
            mos_lq: Some(4.1),
            mos_jb50: None,
            mos_jb200: None,
            r_factor: Some(80.0),
            rtt_ms: None,
            intervals: Vec::new(),
            remote: None,
            xr: None,
        }
    }

    fn call(mno: &str, agent: Option<&str>, mos: Option<f64>) -> CallRecord {
        CallRecord {
            call: CallSummary {
                call_id: "c".into(),
                sip_call_id: None,
                agent_id: agent.map(str::to_string),
                from_number: None,
                to_number: None,
                from_raw: None,
                to_raw: None,
                from_anonymous: false,
                diverted_from: None,
                mno: mno.into(),
                mno_source: None,
                country: None,
                direction: Direction::Inbound,
                status: CallStatus::Completed,
                ended_reason: Some(EndedReason::Bye),
                created_at: "2024-01-01T00:00:00.000Z".into(),
                ended_at: Some("2024-01-01T00:01:00.000Z".into()),
                duration_seconds: 60.0,
                codec: Some("PCMU".into()),
                one_way_audio: false,
                fax: false,
                xr_disagreement: false,
                quality_mos: mos,
                quality: QualityRecord {
                    mos,
                    rtt_ms: Some(80.0),
                    ..QualityRecord::default()
                },
                resolution: None,
                classified_at: None,
                recording_url: None,
                probe_id: None,
            },
            streams: vec![stream(5.0, 1000, 10), stream(20.0, 1000, 0)],
        }
    }

    #[test]
    fn mno_and_agent_labels_are_capped() {
        let m = Metrics::new(2, 1).expect("fixed metric definitions");
        m.observe_call(&call("Vodafone UK", Some("a1"), Some(4.2)));
        m.observe_call(&call("unknown", Some("a2"), Some(4.2)));
        m.observe_call(&call("O2 UK", None, Some(4.2)));
        m.observe_call(&call("Vodafone UK", Some("a1"), Some(4.2)));
        let get =
            |mno: &str, agent: &str| m.calls.with_label_values(&[mno, agent, "completed"]).get();
        assert_eq!(get("Vodafone UK", "a1"), 2);
        // `unknown` took the second MNO slot, so O2 folds into `other`.
        assert_eq!(get("unknown", "other"), 1);
        assert_eq!(get("other", "none"), 1);
        let text = m.render(None);
        assert!(!text.contains("O2 UK"), "{text}");
        assert!(!text.contains("agent=\"a2\""), "{text}");
    }

    #[test]
    fn in_progress_records_are_not_counted() {
        let m = Metrics::new(10, 10).expect("fixed metric definitions");
        let mut c = call("unknown", None, Some(4.0));
        c.call.status = CallStatus::InProgress;
        m.observe_call(&c);
        assert!(!m.render(None).contains("vqprobe_calls_total{"));
    }

    #[test]
    fn histograms_observe_calls_and_streams() {
        let m = Metrics::new(10, 10).expect("fixed metric definitions");
        m.observe_call(&call("Vodafone UK", Some("a1"), Some(4.0)));
        m.observe_call(&call("Vodafone UK", Some("a1"), Some(3.0)));
        m.observe_call(&call("Vodafone UK", Some("a1"), None));

        let mos = m.call_mos.with_label_values(&["Vodafone UK", "a1"]);
        assert_eq!(mos.get_sample_count(), 2);
        assert!((mos.get_sample_sum() - 7.0).abs() < 1e-9);

        let jit = m.stream_jitter.with_label_values(&["Vodafone UK"]);
        assert_eq!(jit.get_sample_count(), 6);
        assert!((jit.get_sample_sum() - 3.0 * 0.025).abs() < 1e-9);

        let loss = m.stream_loss.with_label_values(&["Vodafone UK"]);
        assert_eq!(loss.get_sample_count(), 6);
        assert!((loss.get_sample_sum() - 3.0 * 0.01).abs() < 1e-9);

        let rtt = m.rtt.with_label_values(&["Vodafone UK"]);
        assert_eq!(rtt.get_sample_count(), 3);
        assert!((rtt.get_sample_sum() - 0.24).abs() < 1e-9);

        let text = m.render(None);
        assert!(
            text.contains("vqprobe_call_mos_bucket{agent=\"a1\",mno=\"Vodafone UK\",le=\"3.1\"} 1")
        );
    }

    fn runtime(packets: u64, rtp: u64) -> Runtime {
        let st = Arc::new(SourceStats::default());
        st.packets.store(packets, Ordering::Relaxed);
        st.queue_dropped.store(3, Ordering::Relaxed);
        let mut snap = WorkerSnapshot::default();
        snap.counters.rtp_packets = rtp;
        snap.counters.sip_by_method.insert("INVITE", 2);
        snap.active_dialogs = 1;
        snap.active_streams = 2;
        Runtime {
            sources: vec![("eth0".into(), st)],
            workers: vec![
                Arc::new(Mutex::new(snap.clone())),
                Arc::new(Mutex::new(snap)),
            ],
            stopping: Arc::new(AtomicBool::new(false)),
            hep: Default::default(),
            store: None,
            bus: None,
        }
    }

    #[test]
    fn runtime_counters_are_mirrored_monotonically() {
        let m = Metrics::new(10, 10).expect("fixed metric definitions");
        let text = m.render(Some(&runtime(100, 40)));
        assert!(text.contains("vqprobe_capture_packets_total{interface=\"eth0\"} 100"));
        assert!(text.contains(
            "vqprobe_capture_dropped_packets_total{interface=\"eth0\",reason=\"queue\"} 3"
        ));
        assert!(text.contains(
            "vqprobe_capture_dropped_packets_total{interface=\"eth0\",reason=\"kernel\"} 0"
        ));
        assert!(text.contains("vqprobe_rtp_packets_total 80"));
        assert!(text.contains("vqprobe_sip_messages_total{method=\"INVITE\"} 4"));
        assert!(text.contains("vqprobe_active_calls 2"));
        assert!(text.contains("vqprobe_active_streams 4"));
        // A smaller reading (a restarted source) does not move a counter back.
        let text = m.render(Some(&runtime(50, 100)));
        assert!(text.contains("vqprobe_capture_packets_total{interface=\"eth0\"} 100"));
        assert!(text.contains("vqprobe_rtp_packets_total 200"));
    }

    #[test]
    fn render_has_help_and_type_for_every_metric() {
        let m = Metrics::new(10, 10).expect("fixed metric definitions");
        m.observe_call(&call("unknown", None, Some(4.0)));
        let text = m.render(Some(&runtime(1, 1)));
        for (name, kind) in [
            ("vqprobe_capture_packets_total", "counter"),
            ("vqprobe_capture_dropped_packets_total", "counter"),
            ("vqprobe_rtp_packets_total", "counter"),
            ("vqprobe_rtcp_packets_total", "counter"),
            ("vqprobe_sip_messages_total", "counter"),
            ("vqprobe_malformed_packets_total", "counter"),
            ("vqprobe_streams_refused_total", "counter"),
            ("vqprobe_calls_refused_total", "counter"),
            ("vqprobe_active_calls", "gauge"),
            ("vqprobe_active_streams", "gauge"),
            ("vqprobe_calls_total", "counter"),
            ("vqprobe_call_mos", "histogram"),
            ("vqprobe_stream_jitter_seconds", "histogram"),
            ("vqprobe_stream_loss_ratio", "histogram"),
            ("vqprobe_rtt_seconds", "histogram"),
            ("vqprobe_hep_sent_messages_total", "counter"),
            ("vqprobe_hep_dropped_messages_total", "counter"),
            ("vqprobe_hep_received_packets_total", "counter"),
            ("vqprobe_hep_malformed_packets_total", "counter"),
            ("vqprobe_hep_unsupported_packets_total", "counter"),
        ] {
            assert!(text.contains(&format!("# HELP {name} ")), "{name}\n{text}");
            assert!(
                text.contains(&format!("# TYPE {name} {kind}\n")),
                "{name}\n{text}"
            );
        }
    }

    #[test]
    fn long_label_values_are_cut_on_a_char_boundary() {
        let s = "é".repeat(100);
        let t = truncate(&s, MAX_LABEL_BYTES);
        assert!(t.len() <= MAX_LABEL_BYTES && t.chars().all(|c| c == 'é'));
    }
}
