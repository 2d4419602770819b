//! The central store on PostgreSQL.
//!
//! * [`schema`]: the tables, from the same column list as the probe's SQLite
//!   (`vqprobe_store::columns::CALL_COLUMNS`) plus `probe_id`, `version` and the
//!   streams; migrations applied at start under an advisory lock;
//! * [`row`]: a record to statement parameters and a row back to a record;
//! * [`ingest`]: the batched, idempotent upsert (newer version wins) the consumer runs;
//! * [`store`]: [`vqprobe_store::CallStore`] over a connection pool, so the API's
//!   handlers answer from PostgreSQL with the same JSON as from a probe.

pub mod ingest;
pub mod row;
pub mod schema;
pub mod store;

pub use store::PgStore;
