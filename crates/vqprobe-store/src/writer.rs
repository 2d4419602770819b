//! The writer thread: owns the read-write connection and writes records in batches,
//! off the packet path, and enforces retention.
//!
//! Storage faults (disk full, file or file system read-only, I/O errors, a locked
//! database) lose nothing: the batch stays in memory — one entry per call, a newer
//! version of a record replacing the older — and is retried with back-off (1 s doubling
//! to 30 s) until the storage takes it; the writer keeps receiving meanwhile. Memory is
//! bounded by [`WriterOptions::pending_max`] records; a new call beyond it is dropped and
//! counted. At shutdown the writer retries for up to [`WriterOptions::shutdown_timeout`]
//! and then says what it could not write. A record the database refuses for what it
//! holds (not for the storage) is dropped and counted as failed.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use vqprobe_engine::record::CallRecord;

use crate::error::StoreError;
use crate::store::{Store, RETENTION_CHUNK};
use crate::time::MS_PER_DAY;

/// Records the writer buffers before it writes them, whatever the interval.
pub const WRITER_BATCH: usize = 1000;

/// Messages the writer's channel holds. Senders on the hot path should use `try_send`
/// and count a drop when it is full, so a stalled disk never blocks packet processing.
pub const WRITER_QUEUE_CAPACITY: usize = 65_536;

/// Longest the writer keeps a record in memory before writing it.
pub const MAX_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// How often the writer enforces retention (it also does so once at start).
pub const RETENTION_PERIOD: Duration = Duration::from_secs(3600);

/// First wait before a write that failed for the storage is tried again.
pub const RETRY_FIRST: Duration = Duration::from_secs(1);

/// Longest wait between retries.
pub const RETRY_MAX: Duration = Duration::from_secs(30);

/// How the writer behaves.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// Longest a record waits in memory before it is written (capped at
    /// [`MAX_FLUSH_INTERVAL`]).
    pub flush_interval: Duration,
    /// Calls older than this many days are deleted; 0 keeps everything.
    pub retention_days: u32,
    /// Records held in memory at most while the storage fails.
    pub pending_max: usize,
    /// How long shutdown keeps retrying a failing storage.
    pub shutdown_timeout: Duration,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            flush_interval: MAX_FLUSH_INTERVAL,
            retention_days: 0,
            pending_max: 100_000,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}
/// What the writer thread is asked to do.
#[derive(Debug)]
pub enum WriterMsg {
    /// Store this record (an interim or final one; later ones replace earlier ones).
    Call(Box<CallRecord>),
    /// Write everything buffered now, then send `()` on the channel.
    Flush(Sender<()>),
    /// Write everything buffered and stop.
    Shutdown,
}

/// Counters of the writer thread, for metrics (read with `Ordering::Relaxed`).
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Records written to the database.
    pub written: AtomicU64,
    /// Records the database refused for what they hold (e.g. a bad timestamp), dropped.
    pub failed: AtomicU64,
    /// Calls deleted by retention.
    pub deleted: AtomicU64,
    /// Writes that failed for the storage (each retry counts).
    pub errors: AtomicU64,
    /// Records held in memory for the next try.
    pub pending: AtomicU64,
    /// Records dropped because `pending_max` was reached while the storage failed.
    pub dropped: AtomicU64,
    /// Why the storage is failing now; `None` while writes succeed.
    fault: Mutex<Option<String>>,
}

impl WriterStats {
    /// Why writes are failing now (the last storage error), `None` when they are not.
    pub fn fault(&self) -> Option<String> {
        self.fault.lock().map_or(None, |f| f.clone())
    }

    fn set_fault(&self, why: Option<String>) {
        if let Ok(mut f) = self.fault.lock() {
            *f = why;
        }
    }
}

/// Handle of the thread that owns the read-write connection and writes records in
/// batches, off the packet path.
#[derive(Debug)]
pub struct StoreWriter {
    handle: JoinHandle<()>,
    stats: Arc<WriterStats>,
}

impl StoreWriter {
    /// Opens the store (errors come back here, before any thread starts) and starts the
    /// writer. Records are written at the latest `flush_interval` (capped at
    /// [`MAX_FLUSH_INTERVAL`]) after they arrive, or as soon as [`WRITER_BATCH`] are
    /// buffered. Calls older than `retention_days` by `now_ms()` are deleted at start
    /// and every [`RETENTION_PERIOD`]; 0 days keeps everything. The channel holds
    /// [`WRITER_QUEUE_CAPACITY`] messages; the thread stops on `Shutdown` or when every
    /// sender is gone, writing what it holds first.
    pub fn spawn(
        path: PathBuf,
        flush_interval: Duration,
        retention_days: u32,
        now_ms: fn() -> i64,
    ) -> Result<(StoreWriter, Sender<WriterMsg>), StoreError> {
        let opts = WriterOptions {
            flush_interval,
            retention_days,
            ..WriterOptions::default()
        };
        Self::spawn_with(path, opts, now_ms)
    }

    /// As [`StoreWriter::spawn`], with every option.
    pub fn spawn_with(
        path: PathBuf,
        opts: WriterOptions,
        now_ms: fn() -> i64,
    ) -> Result<(StoreWriter, Sender<WriterMsg>), StoreError> {
        let mut store = Store::open(&path)?;
        // One daemon writes a database; rows still in progress at start were left by
        // one that died (kill -9, power loss) and will never be finished otherwise.
        store.close_interrupted()?;
        let (tx, rx) = crossbeam_channel::bounded(WRITER_QUEUE_CAPACITY);
        let stats = Arc::new(WriterStats::default());
        let worker = Worker {
            store,
            rx,
            stats: Arc::clone(&stats),
            flush_interval: opts.flush_interval.min(MAX_FLUSH_INTERVAL),
            retention_days: opts.retention_days,
            pending_max: opts.pending_max.max(WRITER_BATCH),
            shutdown_timeout: opts.shutdown_timeout,
            now_ms,
            buf: Vec::with_capacity(WRITER_BATCH),
            index: HashMap::new(),
            first_buffered: None,
            retry_at: None,
            backoff: RETRY_FIRST,
        };
        let handle = std::thread::Builder::new()
            .name("vqprobe-store".into())
            .spawn(move || worker.run())
            .map_err(StoreError::Spawn)?;
        Ok((StoreWriter { handle, stats }, tx))
    }

    /// The writer's counters.
    pub fn stats(&self) -> Arc<WriterStats> {
        Arc::clone(&self.stats)
    }

    /// Waits for the thread to end (send `WriterMsg::Shutdown` or drop every sender
    /// first, or this waits forever).
    pub fn join(self) -> Result<(), StoreError> {
        self.handle.join().map_err(|_| StoreError::WriterPanicked)
    }
}

/// State owned by the writer thread.
struct Worker {
    store: Store,
    rx: Receiver<WriterMsg>,
    stats: Arc<WriterStats>,
    flush_interval: Duration,
    retention_days: u32,
    pending_max: usize,
    shutdown_timeout: Duration,
    now_ms: fn() -> i64,
    /// Records to write, one per call.
    buf: Vec<CallRecord>,
    /// Position in `buf` of each call's record.
    index: HashMap<String, usize>,
    /// When the oldest buffered record arrived: the flush deadline runs from it.
    first_buffered: Option<Instant>,
    /// While the storage fails: when to try again.
    retry_at: Option<Instant>,
    /// The wait after the next failure.
    backoff: Duration,
}

/// Whether the loop goes on after a message.
enum Flow {
    Continue,
    Stop,
}

impl Worker {
    fn run(mut self) {
        let mut next_retention = Instant::now();
        // Retention runs one chunk per loop turn so a large backlog (say, after weeks
        // down) never keeps incoming records waiting for more than one chunk.
        let mut retention_cutoff: Option<i64> = None;
        loop {
            let now = Instant::now();
            if now >= next_retention {
                next_retention = now + RETENTION_PERIOD;
                if self.retention_days > 0 {
                    let keep_ms = i64::from(self.retention_days) * MS_PER_DAY;
                    retention_cutoff = Some((self.now_ms)().saturating_sub(keep_ms));
                }
            }
            let deadline = if retention_cutoff.is_some() {
                now
            } else {
                match (self.retry_at, self.first_buffered) {
                    (Some(r), _) => r.min(next_retention),
                    (None, Some(t)) => (t + self.flush_interval).min(next_retention),
                    (None, None) => next_retention,
                }
            };
            let flow = match self.rx.recv_deadline(deadline) {
                Ok(msg) => self.handle(msg),
                Err(RecvTimeoutError::Timeout) => Flow::Continue,
                Err(RecvTimeoutError::Disconnected) => Flow::Stop,
            };
            if let Flow::Stop = flow {
                break;
            }
            // Take whatever else is already queued in the same turn, so a burst is one
            // transaction rather than one loop per record.
            if let Flow::Stop = self.drain() {
                break;
            }
            if self
                .first_buffered
                .is_some_and(|t| t.elapsed() >= self.flush_interval)
            {
                self.flush();
            }
            if let (Some(cutoff), None) = (retention_cutoff, self.retry_at) {
                match self.store.delete_chunk(cutoff, RETENTION_CHUNK) {
                    Ok(n) => {
                        self.stats.deleted.fetch_add(n as u64, Ordering::Relaxed);
                        if n < RETENTION_CHUNK {
                            retention_cutoff = None;
                            // Keeps the planner's statistics fresh; cheap when nothing
                            // changed.
                            if let Err(e) = self.store.conn().execute_batch("PRAGMA optimize") {
                                eprintln!("vqprobe: store: PRAGMA optimize failed: {e}");
                            }
                        }
                    }
                    Err(e) => {
                        eprintln!("vqprobe: store: retention failed (next try in an hour): {e}");
                        retention_cutoff = None;
                    }
                }
            }
        }
        self.shutdown_flush();
    }

    /// The last write: retried until it succeeds or the shutdown timeout passes, then
    /// what could not be written is said.
    fn shutdown_flush(&mut self) {
        let give_up = Instant::now() + self.shutdown_timeout;
        loop {
            self.retry_at = None;
            self.flush();
            if self.buf.is_empty() {
                return;
            }
            let now = Instant::now();
            if now >= give_up {
                break;
            }
            std::thread::sleep(self.backoff.min(give_up - now).min(Duration::from_secs(1)));
        }
        let ids: Vec<&str> = self
            .buf
            .iter()
            .take(10)
            .map(|r| r.call.call_id.as_str())
            .collect();
        eprintln!(
            "vqprobe: store: shutting down with {} records not written ({}): {}{}",
            self.buf.len(),
            self.stats.fault().unwrap_or_default(),
            ids.join(", "),
            if self.buf.len() > ids.len() {
                ", ..."
            } else {
                ""
            }
        );
    }

    fn drain(&mut self) -> Flow {
        for _ in 0..WRITER_BATCH {
            match self.rx.try_recv() {
                Ok(msg) => {
                    if let Flow::Stop = self.handle(msg) {
                        return Flow::Stop;
                    }
                }
                Err(TryRecvError::Empty) => return Flow::Continue,
                Err(TryRecvError::Disconnected) => return Flow::Stop,
            }
        }
        Flow::Continue
    }

    fn handle(&mut self, msg: WriterMsg) -> Flow {
        match msg {
            WriterMsg::Call(rec) => {
                if self.buf.is_empty() {
                    self.first_buffered = Some(Instant::now());
                }
                if let Some(&i) = self.index.get(&rec.call.call_id) {
                    // A newer version of a record not yet written replaces it.
                    if let Some(slot) = self.buf.get_mut(i) {
                        *slot = *rec;
                    }
                } else if self.buf.len() >= self.pending_max {
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.index.insert(rec.call.call_id.clone(), self.buf.len());
                    self.buf.push(*rec);
                }
                self.stats
                    .pending
                    .store(self.buf.len() as u64, Ordering::Relaxed);
                if self.buf.len() >= WRITER_BATCH {
                    self.flush();
                }
                Flow::Continue
            }
            WriterMsg::Flush(ack) => {
                self.flush();
                // The asker may have given up waiting; nothing to do about that.
                let _ = ack.send(());
                Flow::Continue
            }
            WriterMsg::Shutdown => Flow::Stop,
        }
    }

    /// Writes what is buffered, unless a retry is not due yet.
    fn flush(&mut self) {
        if self.buf.is_empty() {
            self.first_buffered = None;
            return;
        }
        if self.retry_at.is_some_and(|t| Instant::now() < t) {
            return;
        }
        self.first_buffered = None;
        match self.store.upsert_calls(&self.buf) {
            Ok(n) => {
                self.stats.written.fetch_add(n as u64, Ordering::Relaxed);
                self.buf.clear();
                self.recovered(n);
            }
            Err(e) if e.is_storage_fault() => self.storage_failed(&e),
            Err(batch_err) => {
                // One bad record must not cost the others: one by one, keeping those the
                // storage (not the record) refused.
                let (mut ok, mut failed) = (0u64, 0u64);
                let mut last_err = String::new();
                let mut storage_err = None;
                let mut keep = Vec::new();
                for rec in self.buf.drain(..) {
                    if storage_err.is_some() {
                        keep.push(rec);
                        continue;
                    }
                    match self.store.upsert_calls(std::slice::from_ref(&rec)) {
                        Ok(_) => ok += 1,
                        Err(e) if e.is_storage_fault() => {
                            storage_err = Some(e);
                            keep.push(rec);
                        }
                        Err(e) => {
                            failed += 1;
                            last_err.clear();
                            let _ = write!(last_err, "{e}");
                        }
                    }
                }
                self.stats.written.fetch_add(ok, Ordering::Relaxed);
                self.stats.failed.fetch_add(failed, Ordering::Relaxed);
                if failed > 0 {
                    eprintln!(
                        "vqprobe: store: {failed} records refused and dropped ({batch_err}; \
                         last: {last_err}); {ok} written"
                    );
                }
                self.buf = keep;
                match storage_err {
                    Some(e) => self.storage_failed(&e),
                    None => self.recovered(ok as usize),
                }
            }
        }
        self.index.clear();
        for (i, r) in self.buf.iter().enumerate() {
            self.index.insert(r.call.call_id.clone(), i);
        }
        self.stats
            .pending
            .store(self.buf.len() as u64, Ordering::Relaxed);
    }

    /// A write failed for the storage: keep everything and try again later.
    fn storage_failed(&mut self, e: &StoreError) {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        if self.retry_at.is_none() {
            eprintln!(
                "vqprobe: store: writing failed ({e}); {} records kept in memory, retrying",
                self.buf.len()
            );
        }
        self.stats.set_fault(Some(e.to_string()));
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(RETRY_MAX);
        if self.first_buffered.is_none() {
            self.first_buffered = Some(Instant::now());
        }
    }

    /// A write went through: leave the fault state, if in it.
    fn recovered(&mut self, written: usize) {
        if self.retry_at.take().is_some() {
            eprintln!("vqprobe: store: writing again ({written} held records written)");
        }
        self.backoff = RETRY_FIRST;
        self.stats.set_fault(None);
    }
}
