//! `vqprobe run`: live capture (or a paced replay of a file) through the sharded
//! pipeline into the store, until SIGTERM/SIGINT.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context, Result};
use crossbeam_channel::{bounded, Sender};

use crate::batch::Batch;
use crate::capture::{self, LiveCapture, LiveRead, LiveSettings, OfflineCapture};
use crate::config::{default_region, CallsConfig, Config, HepTransport, JitterBufferSetting};
use crate::hep::{self, HepOut, HepStats, HepTap};
use crate::metrics::Metrics;
use crate::pipeline::{self, Dispatcher, RouteTable, WorkerMsg};
use crate::runtime::{Runtime, SourceStats, WorkerSnapshot};
use vqprobe_engine::calls::CallConfig;
use vqprobe_engine::codec::{CodecOverride, CodecTable};
use vqprobe_engine::engine::{Engine, EngineConfig};
use vqprobe_engine::mno::MnoTable;
use vqprobe_engine::numbers::ported::PortedNumbers;
use vqprobe_engine::numbers::Numbering;
use vqprobe_engine::push::{PushError, PushedCall};
use vqprobe_engine::record::CallRecord;
use vqprobe_engine::time::Timestamp;
use vqprobe_fleet::publisher::{Publisher, PublisherOptions};
use vqprobe_store::outbox::OutboxOptions;
use vqprobe_store::{StoreWriter, WriterMsg, WriterOptions};

/// A capture file fed through the live path instead of an interface.
#[derive(Debug, Clone)]
pub struct Replay {
    /// pcap/pcapng file.
    pub file: PathBuf,
    /// 1 = real time, X = X times faster, 0 = as fast as possible.
    pub speed: f64,
    /// Shift capture timestamps so the first packet is "now" (demos: the calls then
    /// fall in the API's `days=` windows), or, with `live_from`, so that instant is.
    pub rebase_time: bool,
    /// A capture instant (ns) before which packets go through as fast as possible and
    /// from which they are paced at `speed`: a day of history, then live (the demo).
    pub live_from: Option<i64>,
    /// The source's name in metrics and logs; the file's path when `None`.
    pub name: Option<String>,
}

fn wall_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The user's MNO prefix table: the file's (errors name file and line), or none.
pub fn load_mno(path: Option<&std::path::Path>) -> Result<MnoTable> {
    Ok(match path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading MNO prefix table {}", p.display()))?;
            MnoTable::from_csv_named(&text, p)?
        }
        None => MnoTable::default(),
    })
}

/// The ported numbers of the operator's MNP feed, or none.
pub fn load_ported(path: Option<&std::path::Path>) -> Result<PortedNumbers> {
    Ok(match path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading ported numbers {}", p.display()))?;
            PortedNumbers::from_csv_named(&text, p)?
        }
        None => PortedNumbers::default(),
    })
}

/// libphonenumber's plans and carriers with the `[calls]` overrides: the user's
/// prefix table, the ported numbers and the default country.
pub fn load_numbering(calls: &CallsConfig) -> Result<Numbering> {
    let country = calls
        .default_country
        .as_deref()
        .map(default_region)
        .transpose()
        .map_err(|m| anyhow!("calls.default_country {m}"))?;
    Ok(Numbering::builtin()
        .with_overrides(Arc::new(load_mno(calls.mno_prefixes.as_deref())?))
        .with_ported(Arc::new(load_ported(calls.ported_numbers.as_deref())?))
        .with_default_country(country))
}

/// Builds the engine's call settings from the config (local networks default to the
/// host's addresses).
pub fn call_config(cfg: &Config) -> Result<CallConfig> {
    let numbers = load_numbering(&cfg.calls)?;
    let overrides = cfg.quality.codecs.iter().map(|(k, v)| {
        (
            k.clone(),
            CodecOverride {
                ie: v.ie,
                bpl: v.bpl,
                frame_ms: v.frame_ms,
                lookahead_ms: v.lookahead_ms,
                wideband: v.wideband,
            },
        )
    });
    let codecs = CodecTable::with_overrides(overrides).context("quality.codecs")?;
    let local_nets = if cfg.capture.local_networks.is_empty() {
        capture::host_networks()
    } else {
        cfg.capture.local_networks.clone()
    };
    Ok(CallConfig {
        agent_header: cfg.calls.agent_header.clone(),
        local_nets,
        numbers: Arc::new(numbers),
        codecs: Arc::new(codecs),
    })
}

fn engine_config(cfg: &Config, calls: CallConfig) -> EngineConfig {
    let mut e = EngineConfig::new(calls);
    // RTCP is kept for the HEP exporter only when there is one.
    e.tap_rtcp = cfg.hep.export_endpoint().is_some();
    e.interval = Duration::from_secs(cfg.quality.interval_s.max(1));
    e.rtp_timeout = Duration::from_secs(cfg.calls.rtp_timeout_s);
    // The caps bound the whole process: each worker's engine holds its share.
    let workers = cfg.pipeline.workers.max(1);
    e.max_streams = cfg.pipeline.max_streams.div_ceil(workers);
    e.max_calls = cfg.pipeline.max_calls.div_ceil(workers);
    // Open calls are visible in the store with interim figures every interval.
    e.interim = Some(e.interval);
    if let JitterBufferSetting::Fixed(ms) = cfg.quality.jitter_buffer {
        e.headline_fixed_ms = Some(f64::from(ms));
    }
    e
}

/// A running daemon: threads and the channels between them.
pub struct Daemon {
    runtime: Arc<Runtime>,
    metrics: Arc<Metrics>,
    probe: Arc<DaemonProbe>,
    stop_capture: Arc<AtomicBool>,
    capture_threads: Vec<JoinHandle<Result<()>>>,
    worker_txs: Vec<Sender<WorkerMsg>>,
    worker_threads: Vec<JoinHandle<()>>,
    forward_thread: Option<JoinHandle<()>>,
    hep_thread: Option<JoinHandle<()>>,
    writer: Option<StoreWriter>,
    writer_tx: Sender<WriterMsg>,
    publisher: Option<Publisher>,
    bus_drain: Duration,
    replay_clock: Arc<AtomicI64>,
    replay_done: Arc<AtomicBool>,
    replay: bool,
}

impl Daemon {
    /// Starts store, workers and capture. Errors (bad interface, unwritable database)
    /// come back before any thread is left running.
    pub fn start(cfg: &Config, replay: Option<Replay>) -> Result<Daemon> {
        let calls = call_config(cfg)?;
        // A replayed capture's calls carry their capture dates, which retention
        // would delete at once.
        let retention = if replay.is_some() {
            0
        } else {
            cfg.store.retention_days
        };
        let (writer, writer_tx) = StoreWriter::spawn_with(
            cfg.store.path.clone(),
            WriterOptions {
                flush_interval: Duration::from_millis(cfg.store.flush_interval_ms),
                retention_days: retention,
                pending_max: cfg.store.pending_max,
                shutdown_timeout: Duration::from_secs(cfg.store.shutdown_timeout_s),
                outbox: cfg.bus.nats_url.as_ref().map(|_| OutboxOptions {
                    probe_id: cfg.bus.effective_probe_id(),
                    interim: cfg.bus.publish_interim,
                    max: cfg.bus.outbox_max,
                }),
            },
            now_ms,
        )
        .with_context(|| format!("opening store {}", cfg.store.path.display()))?;

        // HEP export: one thread owns the socket; everyone else queues without blocking.
        let hep_stats = Arc::new(HepStats::default());
        let (hep_tap, hep_thread) = match cfg.hep.export_endpoint() {
            Some(_) => {
                let (tx, rx) = bounded::<HepOut>(cfg.hep.queue_depth.max(1));
                let h = hep::export::spawn(&cfg.hep, rx, hep_stats.clone())?;
                eprintln!("vqprobe: HEP export to {}", cfg.hep.address);
                (Some(HepTap::new(tx, hep_stats.clone())), Some(h))
            }
            None => (None, None),
        };

        // Records from every worker go through one forwarder to the store writer.
        let (rec_tx, rec_rx) = bounded::<CallRecord>(65_536);
        let fwd_writer = writer_tx.clone();
        let metrics = Arc::new(
            Metrics::new(cfg.api.mno_label_cap, cfg.api.agent_label_cap)
                .context("registering metrics")?,
        );
        let fwd_metrics = metrics.clone();
        let fwd_hep = hep_tap.clone();
        let forward_thread = std::thread::Builder::new()
            .name("vqprobe-sink".into())
            .spawn(move || {
                for r in rec_rx.iter() {
                    // Interim records are skipped by the metrics; finished ones come once.
                    fwd_metrics.observe_call(&r);
                    if let Some(tap) = &fwd_hep {
                        tap.send(quality_report(&r));
                    }
                    let _ = fwd_writer.send(WriterMsg::Call(Box::new(r)));
                }
            })
            .context("spawning sink thread")?;

        let n = cfg.pipeline.workers.max(1);
        let (pool_tx, pool_rx) = bounded::<Batch>(n * 8);
        let mut worker_txs = Vec::new();
        let mut worker_threads = Vec::new();
        let mut snapshots = Vec::new();
        let interim_ns = i64::try_from(cfg.quality.interval_s).unwrap_or(5) * 1_000_000_000;
        let linger = EngineConfig::new(calls.clone()).linger;
        for i in 0..n {
            let (tx, rx) = bounded::<WorkerMsg>(cfg.pipeline.queue_depth.max(1));
            let snap = Arc::new(Mutex::new(WorkerSnapshot::default()));
            let engine = Engine::new(engine_config(cfg, calls.clone()));
            let (pool, sink, s2) = (pool_tx.clone(), rec_tx.clone(), snap.clone());
            let tap = hep_tap.clone();
            let h = std::thread::Builder::new()
                .name(format!("vqprobe-worker-{i}"))
                .spawn(move || pipeline::run_worker(engine, rx, pool, sink, s2, tap))
                .context("spawning worker")?;
            worker_txs.push(tx);
            worker_threads.push(h);
            snapshots.push(snap);
        }
        drop(rec_tx);

        let routes = Arc::new(RouteTable::new(n, linger, cfg.pipeline.max_calls));
        let stop_capture = Arc::new(AtomicBool::new(false));
        let replay_clock = Arc::new(AtomicI64::new(0));
        let replay_done = Arc::new(AtomicBool::new(false));
        let mut sources = Vec::new();
        let mut capture_threads = Vec::new();
        let batch_size = cfg.pipeline.batch_size.max(1);
        let is_replay = replay.is_some();
        match replay {
            Some(r) => {
                let cap = OfflineCapture::open(&r.file)?;
                let stats = Arc::new(SourceStats::default());
                let name = r
                    .name
                    .clone()
                    .unwrap_or_else(|| r.file.display().to_string());
                sources.push((name, stats.clone()));
                let mut disp = Dispatcher::new(
                    worker_txs.clone(),
                    pool_rx.clone(),
                    batch_size,
                    routes.clone(),
                    cfg.calls.agent_header.clone(),
                    stats,
                )
                .lossless()
                .with_hep(hep_tap.clone());
                let (stop, clock, done) = (
                    stop_capture.clone(),
                    replay_clock.clone(),
                    replay_done.clone(),
                );
                let replay_stats = sources.last().map(|(_, s)| s.clone()).unwrap_or_default();
                capture_threads.push(
                    std::thread::Builder::new()
                        .name("vqprobe-replay".into())
                        .spawn(move || {
                            let started = Instant::now();
                            let res = replay_loop(
                                cap,
                                &mut disp,
                                Pace {
                                    speed: r.speed,
                                    rebase_time: r.rebase_time,
                                    live_from: r.live_from,
                                    interval_ns: interim_ns,
                                },
                                &stop,
                                &clock,
                            );
                            disp.drain();
                            done.store(true, Ordering::SeqCst);
                            eprintln!(
                                "vqprobe: replay finished: {} packets in {:.3} s",
                                replay_stats.packets.load(Ordering::Relaxed),
                                started.elapsed().as_secs_f64()
                            );
                            res
                        })
                        .context("spawning replay thread")?,
                );
            }
            None => {
                let threads = cfg.capture.threads.max(1);
                let ordered = threads * cfg.capture.interfaces.len() > 1;
                for (i, iface) in cfg.capture.interfaces.iter().enumerate() {
                    for t in 0..threads {
                        let settings = LiveSettings {
                            interface: iface.clone(),
                            bpf: cfg.capture.bpf.clone(),
                            snaplen: cfg.capture.snaplen,
                            buffer_mb: cfg.capture.buffer_mb,
                            immediate: cfg.capture.immediate,
                            promiscuous: cfg.capture.promiscuous,
                            fanout_group: (threads > 1).then(|| fanout_group(i)),
                        };
                        let cap = LiveCapture::open(&settings)
                            .with_context(|| format!("capture on {iface}"))?;
                        let stats = Arc::new(SourceStats::default());
                        let name = if threads > 1 {
                            format!("{iface}/{t}")
                        } else {
                            iface.clone()
                        };
                        sources.push((name.clone(), stats.clone()));
                        let mut disp = Dispatcher::new(
                            worker_txs.clone(),
                            pool_rx.clone(),
                            batch_size,
                            routes.clone(),
                            cfg.calls.agent_header.clone(),
                            stats.clone(),
                        )
                        .with_hep(hep_tap.clone());
                        if ordered {
                            disp = disp.ordered();
                        }
                        let stop = stop_capture.clone();
                        capture_threads.push(
                            std::thread::Builder::new()
                                .name(format!("vqprobe-cap-{name}"))
                                .spawn(move || {
                                    let res = live_loop(cap, &mut disp, &stop, &stats);
                                    disp.finish();
                                    res
                                })
                                .context("spawning capture thread")?,
                        );
                    }
                }
            }
        }
        let listeners = cfg.hep.listeners();
        if !listeners.is_empty() {
            let stats = Arc::new(SourceStats::default());
            sources.push(("hep".to_string(), stats.clone()));
            // What arrives by HEP is not sent back out by HEP.
            let disp = Dispatcher::new(
                worker_txs.clone(),
                pool_rx.clone(),
                batch_size,
                routes.clone(),
                cfg.calls.agent_header.clone(),
                stats,
            );
            let input =
                crate::hep_input::start(&listeners, disp, hep_stats.clone(), stop_capture.clone())?;
            for (t, a) in &input.bound {
                let scheme = match t {
                    HepTransport::Udp => "udp",
                    HepTransport::Tcp => "tcp",
                };
                eprintln!("vqprobe: HEP input on {scheme}://{a}");
            }
            capture_threads.extend(input.threads);
        }
        drop(hep_tap);
        // The outbox exists once the writer has opened the database.
        let publisher = match &cfg.bus.nats_url {
            Some(url) => Some(
                Publisher::spawn(PublisherOptions {
                    nats_url: url.clone(),
                    probe_id: cfg.bus.effective_probe_id(),
                    subject_prefix: cfg.bus.subject_prefix.clone(),
                    replicas: cfg.bus.replicas,
                    db_path: cfg.store.path.clone(),
                })
                .context("starting the bus publisher")?,
            ),
            None => None,
        };
        let runtime = Arc::new(Runtime {
            sources,
            workers: snapshots,
            stopping: Arc::new(AtomicBool::new(false)),
            hep: hep_stats,
            store: Some(writer.stats()),
            bus: publisher.as_ref().map(Publisher::stats),
        });
        let probe = Arc::new(DaemonProbe {
            runtime: runtime.clone(),
            metrics: metrics.clone(),
            workers: worker_txs.clone(),
            routes,
        });
        Ok(Daemon {
            runtime,
            metrics,
            probe,
            stop_capture,
            capture_threads,
            worker_txs,
            worker_threads,
            forward_thread: Some(forward_thread),
            hep_thread,
            writer: Some(writer),
            writer_tx,
            publisher,
            bus_drain: Duration::from_secs(cfg.bus.shutdown_timeout_s),
            replay_clock,
            replay_done,
            replay: is_replay,
        })
    }

    /// Shared view for metrics and the API.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.clone()
    }

    /// The Prometheus metrics.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The daemon as the API sees it: metrics, capture state, pushed metadata.
    pub fn probe(&self) -> Arc<dyn vqprobe_api::Probe> {
        self.probe.clone()
    }

    /// The time the engines should consider "now": the wall clock live; during a
    /// replay the replayed clock, then it runs on from the last packet in real time
    /// so open calls close by timeout as usual.
    fn engine_now(&self, replay_ended_at: Option<Instant>) -> i64 {
        if !self.replay {
            return wall_ns();
        }
        let base = self.replay_clock.load(Ordering::Relaxed);
        match replay_ended_at {
            Some(t) => base.saturating_add(i64::try_from(t.elapsed().as_nanos()).unwrap_or(0)),
            None => base,
        }
    }

    /// Runs until `stop` is set: sends ticks once a second.
    pub fn run_until(&self, stop: &AtomicBool) {
        let mut ended_at: Option<Instant> = None;
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
            if self.replay && ended_at.is_none() && self.replay_done.load(Ordering::SeqCst) {
                ended_at = Some(Instant::now());
            }
            let now = self.engine_now(ended_at);
            if now == 0 {
                continue;
            }
            for tx in &self.worker_txs {
                // A full queue means the worker is busy with packets; it will tick on
                // their timestamps anyway.
                let _ = tx.try_send(WorkerMsg::Tick(Timestamp::from_nanos(now)));
            }
        }
    }

    /// Stops capture, ends open calls as `shutdown`, flushes the store and joins
    /// every thread.
    pub fn shutdown(mut self) -> Result<()> {
        self.runtime.stopping.store(true, Ordering::SeqCst);
        self.stop_capture.store(true, Ordering::SeqCst);
        let mut first_err = None;
        for h in self.capture_threads.drain(..) {
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => first_err = first_err.or(Some(e)),
                Err(_) => first_err = first_err.or(Some(anyhow!("capture thread panicked"))),
            }
        }
        for tx in &self.worker_txs {
            let _ = tx.send(WorkerMsg::Shutdown);
        }
        self.worker_txs.clear();
        for h in self.worker_threads.drain(..) {
            let _ = h.join();
        }
        if let Some(h) = self.forward_thread.take() {
            let _ = h.join();
        }
        // Every sender is gone now: the exporter sends what is queued and ends.
        if let Some(h) = self.hep_thread.take() {
            let _ = h.join();
        }
        eprintln!("vqprobe: {}", self.runtime.summary());
        let _ = self.writer_tx.send(WriterMsg::Shutdown);
        if let Some(w) = self.writer.take() {
            if let Err(e) = w.join() {
                first_err = first_err.or(Some(anyhow!("store: {e}")));
            }
        }
        if let Some(p) = self.publisher.take() {
            let stats = p.stats();
            p.shutdown(self.bus_drain);
            let left = stats.outbox_depth.load(Ordering::Relaxed);
            if left > 0 {
                eprintln!("vqprobe: bus: {left} records stay in the outbox for the next start");
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// What the API reads from and hands to the running daemon.
struct DaemonProbe {
    runtime: Arc<Runtime>,
    metrics: Arc<Metrics>,
    workers: Vec<Sender<WorkerMsg>>,
    routes: Arc<RouteTable>,
}

impl vqprobe_api::Probe for DaemonProbe {
    fn metrics_text(&self) -> Option<String> {
        Some(self.metrics.render(Some(&self.runtime)))
    }

    fn stopping(&self) -> bool {
        self.runtime.stopping.load(Ordering::Relaxed)
    }

    fn store_fault(&self) -> Option<String> {
        self.runtime.store.as_ref().and_then(|s| s.fault())
    }

    /// Pushed metadata goes to its call id's shard, and its media endpoints are routed
    /// there (as SDP's are) so the media meets it.
    fn push(&self, call: PushedCall) -> Result<(), PushError> {
        call.validate()?;
        let addrs: Vec<std::net::SocketAddr> = call.media.iter().map(|m| m.socket()).collect();
        // The worker holding the media (signalled or not) decides; else the call id.
        let now = Timestamp::from_nanos(wall_ns());
        let shard = self.routes.push(&call.call_id, &addrs, now);
        let tx = self.workers.get(shard).ok_or(PushError::Unavailable)?;
        tx.try_send(WorkerMsg::Push(Box::new(call), now))
            .map_err(|_| PushError::Unavailable)
    }
}

/// A call record as the HEP quality report of its call, correlated by its SIP Call-ID
/// and addressed with its first stream's endpoints. Stamped in capture time, as its
/// SIP and RTCP are: a finished call at its end, an interim record at the start of the
/// latest interval it scores (the record does not say how far into that interval its
/// media reached), else at the call's start.
fn quality_report(r: &CallRecord) -> HepOut {
    let unspecified = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
    let first = r.streams.first();
    let addr = |s: Option<&str>| s.and_then(|s| s.parse().ok()).unwrap_or(unspecified);
    let ns = |t: &str| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .ok()
            .and_then(|t| i64::try_from(t.unix_timestamp_nanos()).ok())
    };
    let latest_interval = || {
        r.streams
            .iter()
            .filter_map(|s| s.intervals.last())
            .filter_map(|i| ns(&i.start))
            .max()
    };
    let at = r
        .call
        .ended_at
        .as_deref()
        .and_then(ns)
        .or_else(latest_interval)
        .or_else(|| ns(&r.call.created_at))
        .map_or_else(|| Timestamp::from_nanos(wall_ns()), Timestamp::from_nanos);
    HepOut::Report {
        at,
        src: addr(first.map(|s| s.src.as_str())),
        dst: addr(first.map(|s| s.dst.as_str())),
        call_id: r
            .call
            .sip_call_id
            .clone()
            .unwrap_or_else(|| r.call.call_id.clone()),
        json: hep::json::report_json(r),
    }
}

fn now_ms() -> i64 {
    wall_ns() / 1_000_000
}

/// A PACKET_FANOUT group id for the `index`th interface: group ids are shared by every
/// process in the network namespace, so this one is made of the process id.
fn fanout_group(index: usize) -> u16 {
    let pid = std::process::id();
    // Fold the 32-bit pid into 16 bits, then step by interface.
    ((pid ^ (pid >> 16)) as u16).wrapping_add(index as u16)
}

fn live_loop(
    mut cap: LiveCapture,
    disp: &mut Dispatcher,
    stop: &AtomicBool,
    stats: &SourceStats,
) -> Result<()> {
    let link = cap.link_type();
    let mut last_flush = Instant::now();
    let mut last_stats = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match cap.read().map_err(|e| anyhow!("{e}"))? {
            LiveRead::Frame(f) => disp.on_frame(Timestamp::from_nanos(f.ts_ns), link, f.data),
            LiveRead::Idle => disp.idle(wall_ns()),
        }
        // Partial batches still move on a quiet link, at most 50 ms late.
        if last_flush.elapsed() >= Duration::from_millis(50) {
            disp.flush();
            last_flush = Instant::now();
        }
        if last_stats.elapsed() >= Duration::from_secs(1) {
            last_stats = Instant::now();
            if let Some(k) = cap.stats() {
                stats.kernel_dropped.store(k.dropped, Ordering::Relaxed);
                stats.if_dropped.store(k.if_dropped, Ordering::Relaxed);
            }
        }
    }
    if let Some(k) = cap.stats() {
        stats.kernel_dropped.store(k.dropped, Ordering::Relaxed);
        stats.if_dropped.store(k.if_dropped, Ordering::Relaxed);
    }
    Ok(())
}

/// How a replay is timed.
#[derive(Debug, Clone, Copy)]
struct Pace {
    speed: f64,
    rebase_time: bool,
    live_from: Option<i64>,
    interval_ns: i64,
}

fn replay_loop(
    mut cap: OfflineCapture,
    disp: &mut Dispatcher,
    pace: Pace,
    stop: &AtomicBool,
    clock: &AtomicI64,
) -> Result<()> {
    let link = cap.link_type();
    let mut shift: Option<i64> = None;
    // The instant pacing counts from: the first packet, or the live point once reached.
    let mut anchor: Option<(i64, Instant)> = None;
    let mut last_flush = Instant::now();
    let replay_started = Instant::now();
    let mut announced_live = false;
    // Latest timestamp handed to the dispatcher (some may wait in partial batches).
    let mut handed_over = i64::MIN;
    while !stop.load(Ordering::Relaxed) {
        let Some(f) = cap.next_frame().map_err(|e| anyhow!("{e}"))? else {
            break;
        };
        let shift = *shift.get_or_insert_with(|| {
            if !pace.rebase_time {
                return 0;
            }
            // Whole intervals, so the 5 s scoring intervals cut the streams where an
            // offline analysis of the same file does and the figures are identical.
            let s = wall_ns().saturating_sub(pace.live_from.unwrap_or(f.ts_ns));
            s - s.rem_euclid(pace.interval_ns.max(1))
        });
        let ts_ns = f.ts_ns.saturating_add(shift);
        let paced = pace.speed > 0.0 && pace.live_from.is_none_or(|l| f.ts_ns >= l);
        if paced {
            // Honour capture timestamps, scaled by the speed.
            let (t0, started) = *anchor.get_or_insert_with(|| (f.ts_ns, Instant::now()));
            let due = Duration::from_nanos(u64::try_from(f.ts_ns.saturating_sub(t0)).unwrap_or(0))
                .div_f64(pace.speed);
            let elapsed = started.elapsed();
            if due > elapsed {
                disp.flush();
                clock.fetch_max(handed_over, Ordering::Relaxed);
                let mut wait = due - elapsed;
                while wait > Duration::ZERO && !stop.load(Ordering::Relaxed) {
                    let step = wait.min(Duration::from_millis(100));
                    std::thread::sleep(step);
                    wait = wait.saturating_sub(step);
                }
            }
        }
        if paced && !announced_live {
            announced_live = true;
            if pace.live_from.is_some() {
                eprintln!(
                    "vqprobe: replay reached the live point after {:.1} s; real time from here",
                    replay_started.elapsed().as_secs_f64()
                );
            }
        }
        disp.on_frame(Timestamp::from_nanos(ts_ns), link, f.data);
        handed_over = handed_over.max(ts_ns);
        if last_flush.elapsed() >= Duration::from_millis(50) {
            disp.flush();
            // The clock the ticks carry moves only past packets already handed to the
            // workers: a tick queued ahead of a partial batch would run the engines'
            // timers (the RTP timeout) past packets they have not seen yet.
            clock.fetch_max(handed_over, Ordering::Relaxed);
            last_flush = Instant::now();
        }
    }
    disp.flush();
    clock.fetch_max(handed_over, Ordering::Relaxed);
    Ok(())
}
