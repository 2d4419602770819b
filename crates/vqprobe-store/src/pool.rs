//! Database access for readers (the API's handlers): a small pool of read-only connections (WAL lets them
//! read while the daemon writes) and one read-write connection for the rare write, all
//! used from tokio's blocking threads so SQLite never stalls the async workers. A
//! query scanned by several threads takes several readers at once and pins them to
//! one snapshot ([`Snapshot`]).

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::Connection;

use crate::error::StoreError;
use crate::schema::calls_version;
use crate::store::Store;

/// Idle read connections kept for reuse; more can be open at once (one per blocking
/// task), the surplus is closed when returned.
const MAX_IDLE: usize = 8;

/// Connections to the call store.
pub struct Pool {
    path: PathBuf,
    idle: Mutex<Vec<Store>>,
    writer: Mutex<Option<Store>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves a usable Vec / Option behind.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Pool {
    /// Pool for the database at `path` (nothing is opened yet).
    pub fn new(path: PathBuf) -> Pool {
        Pool {
            path,
            idle: Mutex::new(Vec::new()),
            writer: Mutex::new(None),
        }
    }

    /// Runs `f` on a read-only connection, on the calling (blocking) thread.
    pub fn read_blocking<R>(
        &self,
        f: impl FnOnce(&Store) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.read_many(1, |stores| f(&stores[0]))
    }

    /// Runs `f` on `n` (at least one) read-only connections at once, on the calling
    /// (blocking) thread: a query split over threads needs one connection per thread.
    pub fn read_many<R>(
        &self,
        n: usize,
        f: impl FnOnce(&mut [Store]) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let n = n.max(1);
        let mut stores = {
            let mut idle = lock(&self.idle);
            let keep = idle.len().saturating_sub(n);
            idle.split_off(keep)
        };
        while stores.len() < n {
            stores.push(open_reader(&self.path)?);
        }
        let out = f(&mut stores);
        // A connection that failed may be the reason (a replaced file, a schema
        // change); a fresh one is cheap, so only good ones go back.
        if out.is_ok() {
            let mut idle = lock(&self.idle);
            let room = MAX_IDLE.saturating_sub(idle.len());
            idle.extend(stores.into_iter().take(room));
        }
        out
    }

    /// Runs `f` on the read-write connection (opened on first use), on the calling
    /// (blocking) thread. Writes are serialised here and by SQLite's write lock.
    pub fn write_blocking<R>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let mut guard = lock(&self.writer);
        if guard.is_none() {
            *guard = Some(Store::open(&self.path)?);
        }
        let Some(store) = guard.as_mut() else {
            return Err(StoreError::Internal("writer connection vanished".into()));
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
pub const READER_MMAP_BYTES: i64 = 1 << 30;

fn open_reader(path: &std::path::Path) -> Result<Store, StoreError> {
    let store = Store::open_readonly(path)?;
    store
        .conn()
        .pragma_update(None, "mmap_size", READER_MMAP_BYTES)?;
    Ok(store)
}

/// Tries at giving every connection of a [`Snapshot`] the same snapshot before going
/// on with the first connection alone.
const PIN_ATTEMPTS: usize = 3;

/// Read transactions on several connections that all see the same calls: the first
/// connection's, and the others' when they could be pinned to it. Ended (rolled back:
/// they only read) when dropped.
///
/// SQLite cannot hand one WAL snapshot to several connections (that needs
/// `SQLITE_ENABLE_SNAPSHOT`, which the bundled build lacks). Instead every connection
/// begins its own read transaction and reads the `calls_version` counter the API's
/// triggers raise on every change to `calls` ([`calls_version`]): equal counters mean
/// no write to `calls` committed in between, so all read the same calls. A write
/// that lands in the microseconds between makes it try again; after
/// [`PIN_ATTEMPTS`] the other connections are left out, which is slower but as
/// exact.
pub struct Snapshot<'a> {
    first: &'a Store,
    others: &'a mut [Store],
}

impl<'a> Snapshot<'a> {
    /// Begins the read transactions on `stores` (at least one).
    pub fn begin(stores: &'a mut [Store]) -> Result<Snapshot<'a>, StoreError> {
        let Some((first, others)) = stores.split_first_mut() else {
            return Err(StoreError::Internal("no database connection".into()));
        };
        let mut snap = Snapshot { first, others };
        for _ in 0..PIN_ATTEMPTS {
            // Without the counter (a database the API has not prepared) there is no
            // telling: go alone.
            let Some(version) = begin_read(snap.first.conn())? else {
                break;
            };
            let mut same = true;
            for s in snap.others.iter() {
                same = begin_read(s.conn())? == Some(version);
                if !same {
                    break;
                }
            }
            if same {
                return Ok(snap);
            }
            snap.end();
        }
        snap.end();
        snap.others = &mut [];
        begin_read(snap.first.conn())?;
        Ok(snap)
    }

    /// The first connection, and the others that read the same calls (none when they
    /// could not be pinned).
    pub fn connections(&mut self) -> (&Connection, &mut [Store]) {
        (self.first.conn(), self.others)
    }

    fn end(&mut self) {
        for s in std::iter::once(self.first).chain(self.others.iter()) {
            if !s.conn().is_autocommit() {
                // Ending a read-only transaction cannot lose anything; should it fail,
                // the next begin_read tries again.
                let _ = s.conn().execute_batch("ROLLBACK");
            }
        }
    }
}

impl Drop for Snapshot<'_> {
    fn drop(&mut self) {
        self.end();
    }
}

/// Begins a read transaction and starts its snapshot by reading `calls_version`.
fn begin_read(conn: &Connection) -> Result<Option<i64>, StoreError> {
    if !conn.is_autocommit() {
        conn.execute_batch("ROLLBACK")?;
    }
    conn.execute_batch("BEGIN")?;
    Ok(calls_version(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(conn: &Connection) -> i64 {
        conn.query_row("SELECT COUNT(*) FROM calls", [], |r| r.get(0))
            .unwrap()
    }

    /// Every connection of a snapshot reads the calls as they were when it began,
    /// whatever is written meanwhile; without the counter to check that, the first
    /// connection goes alone.
    #[test]
    fn snapshot_pins_every_connection_or_goes_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let writer = Store::open(&path).unwrap();
        let insert = |id: &str| {
            writer
                .conn()
                .execute(
                    "INSERT INTO calls (call_id, mno, direction, status, created_at_ms, \
                     created_at, duration_seconds, one_way_audio) \
                     VALUES (?1, 'M', 'inbound', 'completed', 0, '1970-01-01T00:00:00Z', 1, 0)",
                    [id],
                )
                .unwrap();
        };
        insert("a");
        let db = Pool::new(path);
        db.read_many(3, |stores| {
            let mut snap = Snapshot::begin(stores)?;
            insert("b");
            let (first, others) = snap.connections();
            assert_eq!(others.len(), 2);
            assert_eq!(count(first), 1);
            for s in others.iter() {
                assert_eq!(count(s.conn()), 1);
            }
            Ok(())
        })
        .unwrap();
        // The pooled connections come back out of their transactions.
        db.read_many(3, |stores| {
            assert!(stores.iter().all(|s| s.conn().is_autocommit()));
            let mut snap = Snapshot::begin(stores)?;
            let (first, others) = snap.connections();
            assert_eq!((count(first), others.len()), (2, 2));
            Ok(())
        })
        .unwrap();
        writer
            .conn()
            .execute("DELETE FROM api_meta WHERE key = 'calls_version'", [])
            .unwrap();
        db.read_many(3, |stores| {
            let mut snap = Snapshot::begin(stores)?;
            let (first, others) = snap.connections();
            assert_eq!((count(first), others.len()), (2, 0));
            Ok(())
        })
        .unwrap();
    }
}
