//! vqprobe — passive voice-quality probe: the binary's library half.
//!
//! The crates under `crates/` carry the data flow — `vqprobe-wire` (bytes to typed
//! packets) → `vqprobe-engine` (the sans-I/O core: streams, calls, E-model, records) →
//! `vqprobe-store` (SQLite) → `vqprobe-api` (axum). This package is the edge that
//! does the I/O and wires them together: [`config`], [`capture`] (libpcap),
//! [`batch`] and [`pipeline`] (capture-side routing, worker threads), [`daemon`]
//! (`vqprobe run`), [`demo`] (the generated day of `vqprobe run --demo`), [`hep`] (Homer: HEP export and input), [`runtime`] (the live counters the daemon fills and the metrics and
//! API read), [`metrics`] (Prometheus), [`analyze`] and [`report`] (`vqprobe analyze`).

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod aggregate;
pub mod analyze;
pub mod batch;
pub mod capture;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod fuzz_targets;
pub mod hep;
pub mod hep_input;
pub mod hold;
pub mod metrics;
pub mod number;
pub mod pipeline;
pub mod preflight;
pub mod report;
pub mod runtime;

pub use vqprobe_api as api;
pub use vqprobe_engine as engine;
pub use vqprobe_store as store;
pub use vqprobe_wire as wire;
