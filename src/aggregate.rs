//! `vqprobe aggregate`: the fleet's central process. Consumes call records from NATS
//! JetStream into PostgreSQL (`vqprobe_fleet::consumer`) and serves the same `/v1` API
//! as a probe from there (`vqprobe_fleet::pg::PgStore` behind the API's store trait),
//! with `/metrics` about the ingest.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use prometheus::{Encoder, Gauge, IntCounter, IntGauge, Registry, TextEncoder};
use vqprobe_engine::push::{PushError, PushedCall};
use vqprobe_fleet::consumer::{self, ConsumerOptions, ConsumerStats};
use vqprobe_fleet::pg::PgStore;

use crate::config::Config;

/// What `vqprobe aggregate` was asked to do.
#[derive(Debug, Clone)]
pub struct AggregateArgs {
    /// NATS URL.
    pub nats_url: String,
    /// PostgreSQL URL.
    pub postgres_url: String,
    /// API address (default: the config's `api.listen`).
    pub listen: Option<SocketAddr>,
}

/// The aggregator's metrics, mirrored from the consumer's counters on each scrape.
struct AggregateMetrics {
    registry: Registry,
    stats: Arc<ConsumerStats>,
    written: IntCounter,
    stale: IntCounter,
    malformed: IntCounter,
    errors: IntCounter,
    batches: IntCounter,
    connected: IntGauge,
    last_commit_age: Gauge,
}

impl AggregateMetrics {
    fn new(stats: Arc<ConsumerStats>) -> Result<AggregateMetrics> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| -> Result<IntCounter> {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let written = counter(
            "vqprobe_aggregate_written_records_total",
            "Call records written to PostgreSQL (inserted, or replacing an older version).",
        )?;
        let stale = counter(
            "vqprobe_aggregate_stale_records_total",
            "Records ignored because the same or a newer version was stored (redeliveries).",
        )?;
        let malformed = counter(
            "vqprobe_aggregate_malformed_messages_total",
            "Messages on the stream that are not a call record; terminated, not retried.",
        )?;
        let errors = counter(
            "vqprobe_aggregate_errors_total",
            "Failed batches, fetches and connects (NATS or PostgreSQL).",
        )?;
        let batches = counter(
            "vqprobe_aggregate_batches_total",
            "Batches committed to PostgreSQL.",
        )?;
        let connected = IntGauge::new(
            "vqprobe_aggregate_connected",
            "1 while both NATS and PostgreSQL are connected.",
        )?;
        registry.register(Box::new(connected.clone()))?;
        let last_commit_age = Gauge::new(
            "vqprobe_aggregate_last_commit_age_seconds",
            "Seconds since the last batch was committed (-1 before the first).",
        )?;
        registry.register(Box::new(last_commit_age.clone()))?;
        Ok(AggregateMetrics {
            registry,
            stats,
            written,
            stale,
            malformed,
            errors,
            batches,
            connected,
            last_commit_age,
        })
    }

    fn render(&self) -> String {
        let s = &self.stats;
        for (c, v) in [
            (&self.written, s.written.load(Relaxed)),
            (&self.stale, s.stale.load(Relaxed)),
            (&self.malformed, s.malformed.load(Relaxed)),
            (&self.errors, s.errors.load(Relaxed)),
            (&self.batches, s.batches.load(Relaxed)),
        ] {
            c.inc_by(v.saturating_sub(c.get()));
        }
        self.connected.set(i64::from(s.connected.load(Relaxed)));
        let last = s.last_commit_ms.load(Relaxed);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        self.last_commit_age.set(if last == 0 {
            -1.0
        } else {
            (now - last).max(0) as f64 / 1000.0
        });
        let mut buf = Vec::new();
        match TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            Ok(()) => String::from_utf8_lossy(&buf).into_owned(),
            Err(e) => format!("# vqprobe: encoding metrics failed: {e}\n"),
        }
    }
}

/// The aggregator as the API sees it: metrics and health, no capture to push to.
struct AggregateProbe {
    metrics: AggregateMetrics,
    stopping: Arc<AtomicBool>,
}

impl vqprobe_api::Probe for AggregateProbe {
    fn metrics_text(&self) -> Option<String> {
        Some(self.metrics.render())
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Relaxed)
    }

    fn store_fault(&self) -> Option<String> {
        (!self.metrics.stats.connected.load(Relaxed))
            .then(|| "not connected to NATS and PostgreSQL (retrying)".to_string())
    }

    fn push(&self, _call: PushedCall) -> Result<(), PushError> {
        // Metadata belongs to the probe that sees the media.
        Err(PushError::Unavailable)
    }
}

/// Runs the aggregator until SIGTERM/SIGINT.
pub fn run(cfg: &Config, args: &AggregateArgs) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handler")?;
    }
    let listen = args.listen.unwrap_or(cfg.api.listen);
    let keys = vqprobe_api::KeySet::from_config(&cfg.api.key_hashes)
        .map_err(|e| anyhow::anyhow!("api.key_hashes / VQPROBE_API_KEYS: {e}"))?;
    vqprobe_api::check_listen(listen, &keys).map_err(anyhow::Error::msg)?;
    let store = PgStore::new(&args.postgres_url, 8)?;
    let stats = Arc::new(ConsumerStats::default());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .thread_name("vqprobe-ingest")
        .build()
        .context("starting the ingest runtime")?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let opts = ConsumerOptions {
        nats_url: args.nats_url.clone(),
        postgres_url: args.postgres_url.clone(),
        subject_prefix: cfg.bus.subject_prefix.clone(),
        replicas: cfg.bus.replicas,
        retention_days: cfg.store.retention_days,
    };
    let ingest = runtime.spawn(consumer::run(opts, stats.clone(), stop_rx));
    let stopping = Arc::new(AtomicBool::new(false));
    let probe = Arc::new(AggregateProbe {
        metrics: AggregateMetrics::new(stats)?,
        stopping: stopping.clone(),
    });
    let api = vqprobe_api::spawn(
        listen,
        vqprobe_api::ApiState {
            db_path: cfg.store.path.clone(),
            keys,
            probe: Some(probe),
            metrics_require_auth: cfg.api.metrics_need_key(),
            store: Some(Arc::new(store)),
        },
    )?;
    eprintln!(
        "vqprobe: aggregate: consuming {} into PostgreSQL, api http://{}",
        args.nats_url,
        api.local_addr()
    );
    while !stop.load(Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("vqprobe: aggregate: stopping");
    stopping.store(true, Relaxed);
    let _ = stop_tx.send(true);
    let _ = runtime.block_on(async { tokio::time::timeout(Duration::from_secs(10), ingest).await });
    runtime.shutdown_timeout(Duration::from_secs(2));
    api.shutdown()
}
