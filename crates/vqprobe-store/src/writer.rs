//! The writer thread: owns the read-write connection and writes records in batches,
//! off the packet path, and enforces retention.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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
    /// Records that could not be written (bad timestamp, disk error) and were dropped.
    pub failed: AtomicU64,
    /// Calls deleted by retention.
    pub deleted: AtomicU64,
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
            flush_interval: flush_interval.min(MAX_FLUSH_INTERVAL),
            retention_days,
            now_ms,
            buf: Vec::with_capacity(WRITER_BATCH),
            first_buffered: None,
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
    now_ms: fn() -> i64,
    buf: Vec<CallRecord>,
    /// When the oldest buffered record arrived: the flush deadline runs from it.
    first_buffered: Option<Instant>,
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
                match self.first_buffered {
                    Some(t) => (t + self.flush_interval).min(next_retention),
                    None => next_retention,
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
            if let Some(cutoff) = retention_cutoff {
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
        self.flush();
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
                self.buf.push(*rec);
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

    fn flush(&mut self) {
        self.first_buffered = None;
        if self.buf.is_empty() {
            return;
        }
        match self.store.upsert_calls(&self.buf) {
            Ok(n) => {
                self.stats.written.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(batch_err) => {
                // One bad record must not cost the other 999: retry them one by one.
                let (mut ok, mut failed) = (0u64, 0u64);
                let mut last_err = String::new();
                for rec in &self.buf {
                    match self.store.upsert_calls(std::slice::from_ref(rec)) {
                        Ok(_) => ok += 1,
                        Err(e) => {
                            failed += 1;
                            last_err.clear();
                            let _ = write!(last_err, "{e}");
                        }
                    }
                }
                self.stats.written.fetch_add(ok, Ordering::Relaxed);
                self.stats.failed.fetch_add(failed, Ordering::Relaxed);
                eprintln!(
                    "vqprobe: store: writing {} records failed ({batch_err}); one by one \
                     {ok} written, {failed} dropped (last error: {last_err})",
                    self.buf.len()
                );
            }
        }
        self.buf.clear();
    }
}
