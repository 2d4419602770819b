//! Database access for handlers: a small pool of read-only connections (WAL lets them
//! read while the daemon writes) and one read-write connection for the rare write, all
//! used from tokio's blocking threads so SQLite never stalls the async workers.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::store::Store;

use super::error::ApiError;

/// Idle read connections kept for reuse; more can be open at once (one per blocking
/// task), the surplus is closed when returned.
const MAX_IDLE: usize = 8;

/// Connections to the call store.
pub(crate) struct Db {
    path: PathBuf,
    idle: Mutex<Vec<Store>>,
    writer: Mutex<Option<Store>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves a usable Vec / Option behind.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Db {
    /// Pool for the database at `path` (nothing is opened yet).
    pub(crate) fn new(path: PathBuf) -> Db {
        Db {
            path,
            idle: Mutex::new(Vec::new()),
            writer: Mutex::new(None),
        }
    }

    /// Runs `f` on a read-only connection, on the calling (blocking) thread.
    pub(crate) fn read_blocking<R>(
        &self,
        f: impl FnOnce(&Store) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        let popped = lock(&self.idle).pop();
        let store = match popped {
            Some(s) => s,
            None => open_reader(&self.path)?,
        };
        let out = f(&store);
        // A connection that failed may be the reason (a replaced file, a schema
        // change); a fresh one is cheap, so only good ones go back.
        if out.is_ok() {
            let mut idle = lock(&self.idle);
            if idle.len() < MAX_IDLE {
                idle.push(store);
            }
        }
        out
    }

    /// Runs `f` on the read-write connection (opened on first use), on the calling
    /// (blocking) thread. Writes are serialised here and by SQLite's write lock.
    pub(crate) fn write_blocking<R>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        let mut guard = lock(&self.writer);
        if guard.is_none() {
            *guard = Some(Store::open(&self.path)?);
        }
        let Some(store) = guard.as_mut() else {
            return Err(ApiError::Internal("writer connection vanished".into()));
        };
        let out = f(store);
        if out.is_err() {
            *guard = None;
        }
        out
    }
}

/// Bytes of the database file a reader maps into memory instead of copying pages
/// through `read()` into its own cache: scans of a covering index then cost no
/// system calls, and the pages are the kernel's cached ones, shared by every reader.
pub(crate) const READER_MMAP_BYTES: i64 = 1 << 30;

fn open_reader(path: &std::path::Path) -> Result<Store, ApiError> {
    let store = Store::open_readonly(path)?;
    store
        .conn()
        .pragma_update(None, "mmap_size", READER_MMAP_BYTES)?;
    Ok(store)
}

/// Runs blocking database work off the async threads.
pub(crate) async fn blocking<R, F>(f: F) -> Result<R, ApiError>
where
    F: FnOnce() -> Result<R, ApiError> + Send + 'static,
    R: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(out) => out,
        Err(e) => Err(ApiError::Internal(format!("database task failed: {e}"))),
    }
}
