//! vqprobe's call store: the schema in one place, migrations, the writer, and every
//! query the API answers.
//!
//! * [`schema`]: the tables (versioned migrations) and their derived objects (query
//!   indexes, the daily rollup and its triggers), created when a read-write connection
//!   opens;
//! * [`columns`]: the one list of `calls` columns, from which the upsert, the row
//!   mapping and the export columns are all derived;
//! * [`Store`]: a connection (upsert, get, resolution, retention);
//!   [`writer::StoreWriter`]: the thread that writes records in batches;
//! * [`pool::Pool`]: read-only connections for concurrent readers, pinned to one
//!   snapshot when a query scans on several threads;
//! * [`query`]: the call listing, the summaries and rollups, the export's reads;
//!   [`plan`] and [`aggregate`]: aggregate queries.
//!
//! This crate knows SQL and the record types; it knows nothing of HTTP (the API crate
//! turns its answers into JSON) nor of packets.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod aggregate;
pub mod columns;
pub mod error;
pub mod plan;
pub mod pool;
pub mod query;
pub mod schema;
pub mod store;
pub mod time;
pub mod writer;

#[cfg(test)]
mod tests;

pub use error::StoreError;
pub use pool::{Pool, Snapshot};
pub use rusqlite::Connection;
pub use store::Store;
pub use writer::{StoreWriter, WriterMsg, WriterOptions, WriterStats};

/// MOS below which a call counts as poor (ITU-T G.107 Annex B: "many users
/// dissatisfied" starts at R = 60, MOS ≈ 3.1).
pub const POOR_MOS: f64 = schema::POOR_MOS;
