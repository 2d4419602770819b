//! What can go wrong in the store, as one enum callers can match on (the API maps it
//! to statuses: [`StoreError::is_unavailable`] → 503, [`StoreError::TooLarge`] → 400).

use std::path::PathBuf;

use rusqlite::ErrorCode;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database directory could not be created.
    #[error("cannot create directory {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// SQLite refused an operation.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The streams of a record could not be turned into JSON or back.
    #[error("streams JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A record's `created_at` is not an RFC 3339 timestamp, so it cannot be indexed.
    #[error("call {call_id}: created_at {value:?} is not an RFC 3339 timestamp")]
    BadTimestamp {
        /// The record.
        call_id: String,
        /// What it held.
        value: String,
    },
    /// The file was written by a newer vqprobe.
    #[error("database schema version {found} is newer than this vqprobe supports ({supported})")]
    SchemaTooNew {
        /// `user_version` in the file.
        found: i64,
        /// [`SCHEMA_VERSION`].
        supported: i64,
    },
    /// A read-only open found a database whose schema does not match this build.
    #[error(
        "database schema version {found}, expected {expected} (open it read-write once to migrate)"
    )]
    SchemaMismatch {
        /// `user_version` in the file.
        found: i64,
        /// [`SCHEMA_VERSION`].
        expected: i64,
    },
    /// SQLite would not switch to WAL (e.g. a network file system), so readers would
    /// block the writer.
    #[error("database cannot use WAL journal mode (got {0:?})")]
    NotWal(String),
    /// The writer thread could not be started.
    #[error("cannot start the store writer thread: {0}")]
    Spawn(std::io::Error),
    /// The writer thread panicked.
    #[error("the store writer thread panicked")]
    WriterPanicked,
    /// A query would produce more than the store is willing to compute or return
    /// (the client's request is too large; the message says what to change).
    #[error("{0}")]
    TooLarge(String),
    /// A query could not be run for a reason on our side (a thread failed).
    #[error("{0}")]
    Internal(String),
}

impl StoreError {
    /// Whether the fault is the storage's, not the record's: the disk is full or
    /// read-only, the file cannot be opened or written, the database is locked. The
    /// same records will go in once the storage is back, so they are kept and retried.
    pub fn is_storage_fault(&self) -> bool {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => matches!(
                f.code,
                ErrorCode::DiskFull
                    | ErrorCode::SystemIoFailure
                    | ErrorCode::ReadOnly
                    | ErrorCode::DatabaseBusy
                    | ErrorCode::DatabaseLocked
                    | ErrorCode::CannotOpen
                    | ErrorCode::PermissionDenied
                    | ErrorCode::OutOfMemory
                    | ErrorCode::FileLockingProtocolFailed
            ),
            StoreError::CreateDir { .. } => true,
            _ => false,
        }
    }

    /// Whether the database is busy, locked, missing or not migrated yet: a state that
    /// passes (503), as opposed to a fault (500).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => matches!(
                f.code,
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::CannotOpen
            ),
            StoreError::SchemaMismatch { .. } | StoreError::CreateDir { .. } => true,
            _ => false,
        }
    }
}
