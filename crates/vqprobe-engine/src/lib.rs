//! vqprobe's sans-I/O core: everything between a decoded packet and a call record.
//!
//! The [`engine::Engine`] is a plain state machine (as str0m's `Rtc` or smoltcp's
//! `Interface`): it is fed `(time, bytes)` and asked for finished records. It never
//! reads a clock, a socket or a file — this crate's `Cargo.toml` has no capture,
//! async, database or HTTP crate, `time` is built without its `std` feature (so it
//! cannot read the clock either), and `clippy.toml` here forbids `SystemTime::now`,
//! `Instant::now` and file access — so `vqprobe analyze`, `run --replay` and live
//! capture all run the very same code, and every test is deterministic.
//!
//! Where things are:
//!
//! * a stream's loss, duplicates and reordering: [`stream::seq`]; its jitter:
//!   [`stream::jitter`]; its playout view (loss runs, jitter buffers, 5 s intervals):
//!   [`stream::playout`];
//! * MOS: [`emodel`] (ITU-T G.107) with codec values from [`codec`] (G.113), applied
//!   per interval and per stream by [`score`];
//! * which media belongs to which call: [`ownership`] (the rules, shared with the live
//!   pipeline's router), applied by the [`engine`] to SIP dialogs ([`calls`]);
//! * the record types and their JSON shape: [`record`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod calls;
pub mod codec;
pub mod emodel;
pub mod engine;
pub mod media;
pub mod mno;
pub mod numbers;
pub mod ownership;
pub mod push;
pub mod record;
pub mod score;
pub mod signal;
pub mod stream;
pub mod time;
