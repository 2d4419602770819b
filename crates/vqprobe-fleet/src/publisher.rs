//! The probe side of the bus: one thread that drains the SQLite outbox to JetStream.
//!
//! Rows are read oldest first, published as a pipelined batch, and deleted up to the
//! last one JetStream acknowledged in order, so a crash or an outage at any point
//! re-publishes at most what was not yet acknowledged (JetStream drops the duplicates
//! by `Nats-Msg-Id`; the aggregator's upsert ignores what slips through). While NATS is
//! unreachable the publisher waits with back-off (1 s doubling to 30 s) and the outbox
//! grows, bounded by the writer's `outbox_max`; capture never waits for it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream;
use async_nats::HeaderMap;
use rusqlite::Connection;
use vqprobe_store::outbox;

use crate::error::FleetError;
use crate::subjects;

/// Rows published per batch (acknowledgements are awaited per batch).
pub const BATCH: usize = 256;

/// First wait after a failure.
pub const RETRY_FIRST: Duration = Duration::from_secs(1);

/// Longest wait between tries.
pub const RETRY_MAX: Duration = Duration::from_secs(30);

/// How often an empty outbox is looked at again.
const IDLE_POLL: Duration = Duration::from_millis(200);

/// Where and how to publish.
#[derive(Debug, Clone)]
pub struct PublisherOptions {
    /// NATS server URL(s), comma-separated.
    pub nats_url: String,
    /// This probe's id (a subject token).
    pub probe_id: String,
    /// Subject prefix.
    pub subject_prefix: String,
    /// Replicas of the stream when this probe creates it.
    pub replicas: usize,
    /// The probe's database, which holds the outbox.
    pub db_path: PathBuf,
}

/// Counters for metrics (read with `Ordering::Relaxed`).
#[derive(Debug, Default)]
pub struct PublisherStats {
    /// Records JetStream acknowledged.
    pub published: AtomicU64,
    /// Failed publishes, connects and outbox reads (each try counts).
    pub errors: AtomicU64,
    /// Rows in the outbox at the last look.
    pub outbox_depth: AtomicU64,
    /// Unix ms of the last acknowledgement, 0 before the first.
    pub last_ack_ms: AtomicI64,
}

/// The running publisher.
#[derive(Debug)]
pub struct Publisher {
    thread: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    drain_until_ms: Arc<AtomicI64>,
    stats: Arc<PublisherStats>,
}

impl Publisher {
    /// Starts the publisher thread. NATS need not be up: it connects (and reconnects)
    /// in the background.
    pub fn spawn(opts: PublisherOptions) -> Result<Publisher, FleetError> {
        if !subjects::valid_probe_id(&opts.probe_id) {
            return Err(FleetError::Config(format!(
                "probe_id {:?} must be 1 to 64 letters, digits, - or _",
                opts.probe_id
            )));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let drain_until_ms = Arc::new(AtomicI64::new(0));
        let stats = Arc::new(PublisherStats::default());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| FleetError::Spawn {
                what: "the bus runtime",
                source,
            })?;
        let (s, st, d) = (
            Arc::clone(&stop),
            Arc::clone(&stats),
            Arc::clone(&drain_until_ms),
        );
        let thread = std::thread::Builder::new()
            .name("vqprobe-bus".into())
            .spawn(move || runtime.block_on(run(opts, s, d, st)))
            .map_err(|source| FleetError::Spawn {
                what: "the bus thread",
                source,
            })?;
        Ok(Publisher {
            thread: Some(thread),
            stop,
            drain_until_ms,
            stats,
        })
    }

    /// The counters.
    pub fn stats(&self) -> Arc<PublisherStats> {
        Arc::clone(&self.stats)
    }

    /// Keeps publishing until the outbox is empty or `drain` has passed, then stops
    /// and waits for the thread. What is not published stays in the outbox for the
    /// next start.
    pub fn shutdown(mut self, drain: Duration) {
        let ms = i64::try_from(drain.as_millis()).unwrap_or(i64::MAX);
        self.drain_until_ms
            .store(now_ms().saturating_add(ms), Ordering::Relaxed);
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Sleeps `d` in small steps, cut to 200 ms when asked to stop (draining retries
/// quickly until its deadline, without spinning).
async fn pause(d: Duration, stop: &AtomicBool) {
    if stop.load(Ordering::Relaxed) {
        tokio::time::sleep(d.min(Duration::from_millis(200))).await;
        return;
    }
    let end = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(50).min(end - Instant::now())).await;
    }
}

async fn run(
    opts: PublisherOptions,
    stop: Arc<AtomicBool>,
    drain_until_ms: Arc<AtomicI64>,
    stats: Arc<PublisherStats>,
) {
    let mut backoff = RETRY_FIRST;
    let mut db: Option<Connection> = None;
    let mut js: Option<jetstream::Context> = None;
    // Asked to stop: go on while there is something to publish and time to do it
    // (records the writer flushed at shutdown are in the outbox by then).
    let mut empty = false;
    let mut stop_seen = false;
    loop {
        if stop.load(Ordering::Relaxed) {
            if !stop_seen {
                stop_seen = true;
                empty = false;
            } else if empty || now_ms() >= drain_until_ms.load(Ordering::Relaxed) {
                break;
            }
        }
        let step = async {
            if db.is_none() {
                db = Some(open_outbox(&opts)?);
            }
            let conn = db.as_ref().ok_or(FleetError::Config("no outbox".into()))?;
            // The depth is known whether or not NATS is.
            let depth = outbox::depth(conn)?;
            stats.outbox_depth.store(depth, Ordering::Relaxed);
            if depth == 0 {
                return Ok(0);
            }
            if js.is_none() {
                js = Some(connect(&opts).await?);
            }
            let ctx = js.as_ref().ok_or(FleetError::Config("no NATS".into()))?;
            drain_batch(conn, ctx, &opts, &stats).await
        };
        match step.await {
            Ok(0) => {
                backoff = RETRY_FIRST;
                empty = true;
                pause(IDLE_POLL, &stop).await;
            }
            Ok(_) => {
                empty = false;
                backoff = RETRY_FIRST;
            }
            Err(e) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("vqprobe: bus: {e}; retrying in {}s", backoff.as_secs());
                if matches!(e, FleetError::Store(_)) {
                    db = None;
                }
                pause(backoff, &stop).await;
                backoff = (backoff * 2).min(RETRY_MAX);
            }
        }
    }
}

/// Opens the outbox (the probe's database; the writer created the table).
fn open_outbox(opts: &PublisherOptions) -> Result<Connection, FleetError> {
    let db = Connection::open(&opts.db_path).map_err(vqprobe_store::StoreError::from)?;
    db.busy_timeout(Duration::from_secs(5))
        .map_err(vqprobe_store::StoreError::from)?;
    Ok(db)
}

/// A JetStream context, creating the stream when absent.
async fn connect(opts: &PublisherOptions) -> Result<jetstream::Context, FleetError> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .retry_on_initial_connect()
        .connect(opts.nats_url.as_str())
        .await
        .map_err(FleetError::nats)?;
    let js = jetstream::new(client);
    js.get_or_create_stream(subjects::stream_config(&opts.subject_prefix, opts.replicas))
        .await
        .map_err(FleetError::nats)?;
    Ok(js)
}

/// Publishes the oldest rows and deletes those acknowledged in order; returns how
/// many went.
async fn drain_batch(
    db: &Connection,
    js: &jetstream::Context,
    opts: &PublisherOptions,
    stats: &PublisherStats,
) -> Result<usize, FleetError> {
    let depth = stats.outbox_depth.load(Ordering::Relaxed);
    let rows = outbox::oldest(db, BATCH)?;
    let mut pending = Vec::with_capacity(rows.len());
    let mut failure = None;
    for row in &rows {
        let mut headers = HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            subjects::msg_id(&opts.probe_id, &row.call_id, row.seq).as_str(),
        );
        let subject = subjects::subject(&opts.subject_prefix, &opts.probe_id, row.finished);
        match js
            .publish_with_headers(subject, headers, row.payload.clone().into())
            .await
        {
            Ok(ack) => pending.push((row.seq, ack)),
            Err(e) => {
                failure = Some(FleetError::nats(e));
                break;
            }
        }
    }
    // Acknowledgements in publish order: the outbox is deleted only up to the first
    // gap, so nothing is lost when a later one came back but an earlier did not.
    let mut acked_through = None;
    let mut n = 0;
    for (seq, ack) in pending {
        match ack.await {
            Ok(_) => {
                acked_through = Some(seq);
                n += 1;
            }
            Err(e) => {
                failure.get_or_insert(FleetError::nats(e));
                break;
            }
        }
    }
    if let Some(seq) = acked_through {
        outbox::delete_through(db, seq)?;
        stats.published.fetch_add(n as u64, Ordering::Relaxed);
        stats.last_ack_ms.store(now_ms(), Ordering::Relaxed);
        stats
            .outbox_depth
            .store(depth.saturating_sub(n as u64), Ordering::Relaxed);
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(n),
    }
}
