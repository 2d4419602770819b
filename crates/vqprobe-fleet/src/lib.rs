//! vqprobe's fleet: many probes, one view.
//!
//! * [`subjects`]: the JetStream stream, subjects and message ids every side agrees on;
//! * [`publisher`]: on a probe, drains the SQLite outbox (`vqprobe_store::outbox`) to
//!   JetStream in order, deleting rows only once JetStream has acknowledged them;
//! * [`consumer`]: in `vqprobe aggregate`, the durable pull consumer shared by every
//!   aggregator instance, which upserts batches into PostgreSQL and acknowledges after
//!   the commit;
//! * [`pg`]: the central PostgreSQL store: schema, idempotent upserts (newer version
//!   wins), and [`vqprobe_store::CallStore`] so the API's handlers serve it unchanged.
//!
//! Delivery is at least once end to end (outbox → JetStream → consumer) and every
//! write is idempotent, keyed by `(probe_id, call_id)` and ordered by the record's
//! version, so a call is stored exactly once however often it travels.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod consumer;
pub mod error;
pub mod pg;
pub mod publisher;
pub mod subjects;

pub use error::FleetError;
