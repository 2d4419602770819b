//! Homer (HEP): sending a capture server what the probe measures ([`export`]) and taking
//! HEP from agents already deployed ([`crate::hep_input`]). The wire format is
//! `vqprobe_wire::hep`; the JSON Homer stores for RTCP and reports is [`json`].
//!
//! Export never blocks capture or the workers: they hand a [`HepOut`] to a bounded
//! channel with `try_send` ([`HepTap::send`]) and a full queue drops the message and
//! counts it. One exporter thread owns the socket.

pub mod export;
pub mod json;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Sender, TrySendError};
use vqprobe_engine::time::Timestamp;
use vqprobe_wire::decode::Transport;

/// Counters of HEP export and input, shared with the metrics.
#[derive(Debug, Default)]
pub struct HepStats {
    /// SIP messages sent (HEP type 1).
    pub sent_sip: AtomicU64,
    /// RTCP reports sent (HEP type 5, JSON).
    pub sent_rtcp: AtomicU64,
    /// Quality reports sent.
    pub sent_report: AtomicU64,
    /// Messages dropped because the export queue was full.
    pub dropped_queue: AtomicU64,
    /// Messages dropped because the socket failed (connection refused, reset, …).
    pub dropped_send: AtomicU64,
    /// HEP packets received, by version 1, 2, 3.
    pub received: [AtomicU64; 3],
    /// Received bytes that were not a HEP packet (or a broken one).
    pub malformed: AtomicU64,
    /// HEP packets of a payload type the engine does not take (logs, reports, JSON
    /// RTCP) or a compressed payload.
    pub unsupported: AtomicU64,
    /// Packets received but dropped because the input queue was full.
    pub input_dropped: AtomicU64,
}

/// What the exporter sends.
#[derive(Debug, Clone)]
pub enum HepOut {
    /// A captured SIP message.
    Sip {
        /// Capture time.
        at: Timestamp,
        /// Sender.
        src: SocketAddr,
        /// Receiver.
        dst: SocketAddr,
        /// UDP or TCP.
        transport: Transport,
        /// The message bytes.
        payload: Vec<u8>,
        /// Its Call-ID.
        call_id: String,
    },
    /// An RTCP datagram as Homer's JSON.
    Rtcp {
        /// Capture time.
        at: Timestamp,
        /// Sender.
        src: SocketAddr,
        /// Receiver.
        dst: SocketAddr,
        /// The SIP Call-ID of its call (empty when unknown).
        call_id: String,
        /// The JSON.
        json: String,
    },
    /// A per-call quality report.
    Report {
        /// When it was made (the record's latest time).
        at: Timestamp,
        /// Media endpoints of the call's first stream (unspecified without media).
        src: SocketAddr,
        /// The other end.
        dst: SocketAddr,
        /// The SIP Call-ID (or vqprobe's call id).
        call_id: String,
        /// The JSON.
        json: String,
    },
}

/// The sending end of the export queue, for capture threads and workers.
#[derive(Debug, Clone)]
pub struct HepTap {
    tx: Sender<HepOut>,
    stats: Arc<HepStats>,
}

impl HepTap {
    /// A tap onto `tx`, counting into `stats`.
    pub fn new(tx: Sender<HepOut>, stats: Arc<HepStats>) -> Self {
        HepTap { tx, stats }
    }

    /// Queues a message; never blocks. A full (or closed) queue drops it and counts it.
    pub fn send(&self, m: HepOut) {
        match self.tx.try_send(m) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.stats.dropped_queue.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
