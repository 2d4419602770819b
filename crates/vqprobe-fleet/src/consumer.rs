//! The aggregator's ingest: a durable pull consumer (shared by every `vqprobe
//! aggregate` instance, so each message goes to one of them) feeding batched upserts
//! into PostgreSQL, acknowledged only after the commit.
//!
//! A crash between commit and acknowledgement redelivers the batch; the upsert keyed
//! by `(probe_id, call_id)` and ordered by version makes that harmless. When
//! PostgreSQL fails, the batch is negatively acknowledged (redelivered after a second)
//! and the connection rebuilt with back-off; when NATS fails, the client reconnects by
//! itself and fetching resumes.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, consumer::pull, AckKind};
use futures_util::StreamExt;
use vqprobe_engine::record::CallRecord;

use crate::pg::ingest::{delete_older_than, upsert_batch, Incoming};
use crate::pg::schema::migrate;
use crate::subjects;
use crate::FleetError;

/// Messages fetched per batch at most.
pub const BATCH: usize = 500;

/// How long JetStream waits for an acknowledgement before redelivering.
pub const ACK_WAIT: Duration = Duration::from_secs(10);

/// Longest wait between reconnects.
const RETRY_MAX: Duration = Duration::from_secs(30);

/// How often retention runs.
const RETENTION_PERIOD: Duration = Duration::from_secs(3600);

/// Where to read from and write to.
#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// NATS server URL(s).
    pub nats_url: String,
    /// PostgreSQL URL.
    pub postgres_url: String,
    /// Subject prefix of the probes.
    pub subject_prefix: String,
    /// Stream replicas when the aggregator creates the stream.
    pub replicas: usize,
    /// Days of calls kept (by `created_at`); 0 keeps everything.
    pub retention_days: u32,
}

/// Counters for metrics.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    /// Records written (inserted or replaced by a newer version).
    pub written: AtomicU64,
    /// Records ignored because a newer or equal version was stored.
    pub stale: AtomicU64,
    /// Messages that are not a call record (acknowledged as terminal, not retried).
    pub malformed: AtomicU64,
    /// Failed batches, fetches and connects.
    pub errors: AtomicU64,
    /// Batches committed.
    pub batches: AtomicU64,
    /// Unix ms of the last commit.
    pub last_commit_ms: AtomicI64,
    /// Whether PostgreSQL and NATS are connected now.
    pub connected: AtomicBool,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Runs until `stop` turns true: connects (retrying), consumes, reconnects on failure.
pub async fn run(
    opts: ConsumerOptions,
    stats: Arc<ConsumerStats>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_secs(1);
    while !*stop.borrow() {
        let result = tokio::select! {
            r = session(&opts, &stats, &mut backoff) => r,
            _ = stop.wait_for(|s| *s) => Ok(()),
        };
        stats.connected.store(false, Ordering::Relaxed);
        if let Err(e) = result {
            stats.errors.fetch_add(1, Ordering::Relaxed);
            eprintln!(
                "vqprobe: aggregate: {e}; reconnecting in {}s",
                backoff.as_secs()
            );
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.wait_for(|s| *s) => {}
            }
            backoff = (backoff * 2).min(RETRY_MAX);
        }
    }
}

/// Connects both ends and consumes until an error.
async fn session(
    opts: &ConsumerOptions,
    stats: &ConsumerStats,
    backoff: &mut Duration,
) -> Result<(), FleetError> {
    let (mut client, connection) =
        tokio_postgres::connect(&opts.postgres_url, tokio_postgres::NoTls).await?;
    let pg_task = tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("vqprobe: aggregate: postgres connection: {e}");
        }
    });
    let result = consume(opts, stats, &mut client, backoff).await;
    pg_task.abort();
    result
}

async fn consume(
    opts: &ConsumerOptions,
    stats: &ConsumerStats,
    client: &mut tokio_postgres::Client,
    backoff: &mut Duration,
) -> Result<(), FleetError> {
    migrate(client).await?;
    let nats = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(opts.nats_url.as_str())
        .await
        .map_err(FleetError::nats)?;
    let js = jetstream::new(nats);
    let stream = js
        .get_or_create_stream(subjects::stream_config(&opts.subject_prefix, opts.replicas))
        .await
        .map_err(FleetError::nats)?;
    let consumer = stream
        .get_or_create_consumer(
            subjects::CONSUMER,
            pull::Config {
                durable_name: Some(subjects::CONSUMER.to_string()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                filter_subject: subjects::stream_subjects(&opts.subject_prefix),
                max_ack_pending: 20_000,
                ..Default::default()
            },
        )
        .await
        .map_err(FleetError::nats)?;
    stats.connected.store(true, Ordering::Relaxed);
    *backoff = Duration::from_secs(1);
    let mut last_retention: Option<Instant> = None;
    loop {
        if opts.retention_days > 0 && last_retention.is_none_or(|t| t.elapsed() >= RETENTION_PERIOD)
        {
            let cutoff = now_ms() - i64::from(opts.retention_days) * 86_400_000;
            let n = delete_older_than(client, cutoff).await?;
            if n > 0 {
                eprintln!("vqprobe: aggregate: retention deleted {n} calls");
            }
            last_retention = Some(Instant::now());
        }
        let mut batch = consumer
            .fetch()
            .max_messages(BATCH)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .map_err(FleetError::nats)?;
        let mut msgs = Vec::with_capacity(BATCH);
        while let Some(m) = batch.next().await {
            msgs.push(m.map_err(FleetError::nats)?);
        }
        if msgs.is_empty() {
            continue;
        }
        let mut records = Vec::with_capacity(msgs.len());
        let mut keep = Vec::with_capacity(msgs.len());
        for m in msgs {
            match decode(&m) {
                Ok(r) => {
                    records.push(r);
                    keep.push(m);
                }
                Err(why) => {
                    let n = stats.malformed.fetch_add(1, Ordering::Relaxed);
                    // The first few say why; the counter tells the rest.
                    if n < 5 {
                        eprintln!(
                            "vqprobe: aggregate: dropping a message on {}: {why}",
                            m.subject
                        );
                    }
                    let _ = m.ack_with(AckKind::Term).await;
                }
            }
        }
        match upsert_batch(client, &records).await {
            Ok(out) => {
                stats.written.fetch_add(out.written, Ordering::Relaxed);
                stats.stale.fetch_add(out.stale, Ordering::Relaxed);
                stats.batches.fetch_add(1, Ordering::Relaxed);
                stats.last_commit_ms.store(now_ms(), Ordering::Relaxed);
                for m in &keep {
                    // A lost ack only means a redelivery, which the upsert ignores.
                    if let Err(e) = m.ack().await {
                        stats.errors.fetch_add(1, Ordering::Relaxed);
                        eprintln!("vqprobe: aggregate: ack: {e}");
                    }
                }
            }
            Err(e) => {
                for m in &keep {
                    let _ = m.ack_with(AckKind::Nak(Some(Duration::from_secs(1)))).await;
                }
                return Err(e);
            }
        }
    }
}

/// A message's record: the JSON of a `CallRecord` with `probe_id`, and the version
/// from `Nats-Msg-Id`; why not when it is not one.
fn decode(m: &jetstream::Message) -> Result<Incoming, String> {
    let record: CallRecord =
        serde_json::from_slice(&m.payload).map_err(|e| format!("not a call record: {e}"))?;
    let probe_id = record
        .call
        .probe_id
        .clone()
        .filter(|p| subjects::valid_probe_id(p))
        .ok_or("no valid probe_id")?;
    let version = m
        .headers
        .as_ref()
        .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
        .and_then(|v| subjects::version_of(v.as_str()))
        .ok_or_else(|| {
            format!(
                "no Nats-Msg-Id ending in a version (headers: {:?})",
                m.headers
            )
        })?;
    // The record's own timestamps must parse, or the row could not be indexed.
    vqprobe_store::time::parse_rfc3339_ms(&record.call.created_at)
        .ok_or_else(|| format!("created_at {:?} is not RFC 3339", record.call.created_at))?;
    Ok(Incoming {
        probe_id,
        version,
        record,
    })
}
