//! vqprobe — passive voice-quality probe.
//!
//! Data flows one way: [`capture`] (pcap) → [`decode`] (L2–L4) → [`engine`] (flow
//! classification, [`rtp`], [`rtcp`], [`sip`]/[`sdp`]) → [`stream`] (per-SSRC metrics)
//! → [`score`] ([`emodel`] with [`codec`] values) → [`calls`] (dialogs and records,
//! [`mno`] lookup) → [`record`] (JSON shapes) and [`report`] (table view).
//!
//! The engine is sans-I/O: it is fed timestamps and bytes and never reads a clock, a
//! socket or a file, so offline analysis and live capture run the same code.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod analyze;
pub mod api;
pub mod batch;
pub mod calls;
pub mod capture;
pub mod codec;
pub mod config;
pub mod daemon;
pub mod decode;
pub mod emodel;
pub mod engine;
pub mod media;
pub mod metrics;
pub mod mno;
pub mod pipeline;
pub mod push;
pub mod record;
pub mod report;
pub mod rtcp;
pub mod rtp;
pub mod score;
pub mod sdp;
pub mod sip;
pub mod store;
pub mod stream;
