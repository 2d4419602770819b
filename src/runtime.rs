//! The live state the daemon shares with its observers: per capture source, its
//! counters; per worker, its latest snapshot; whether it is stopping. The daemon fills
//! it, the metrics and the API's health read it — so neither imports the daemon.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use vqprobe_engine::engine::Counters;

/// Counters of one capture source, shared with the metrics.
#[derive(Debug, Default)]
pub struct SourceStats {
    /// Frames read.
    pub packets: AtomicU64,
    /// Frames dropped because a worker queue was full.
    pub queue_dropped: AtomicU64,
    /// Kernel drops (pcap_stats `ps_drop`), latest value.
    pub kernel_dropped: AtomicU64,
    /// Interface/driver drops (pcap_stats `ps_ifdrop`), latest value.
    pub if_dropped: AtomicU64,
}

/// What a worker publishes once a second for metrics and health.
#[derive(Debug, Default, Clone)]
pub struct WorkerSnapshot {
    /// Its engine's counters.
    pub counters: Counters,
    /// Streams it holds.
    pub active_streams: usize,
    /// Calls it holds open (SIP dialogs, RTP-only pairs, pushed calls with media).
    pub active_dialogs: usize,
}

/// Everything the running daemon shares with its observers (metrics, API, health).
pub struct Runtime {
    /// Per capture source: its name and counters.
    pub sources: Vec<(String, Arc<SourceStats>)>,
    /// Per worker: its latest snapshot.
    pub workers: Vec<Arc<Mutex<WorkerSnapshot>>>,
    /// Set when the daemon is stopping.
    pub stopping: Arc<AtomicBool>,
    /// HEP export and input counters (zero when HEP is off).
    pub hep: Arc<crate::hep::HepStats>,
    /// The store writer's counters and fault state.
    pub store: Option<Arc<vqprobe_store::WriterStats>>,
    /// The fleet bus publisher's counters, when `[bus]` is configured.
    pub bus: Option<Arc<vqprobe_fleet::publisher::PublisherStats>>,
}

impl Runtime {
    /// One line of totals: what was read, dropped (kernel, queue) and recognised.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        for (name, st) in &self.sources {
            parts.push(format!(
                "{name}: {} packets, kernel dropped {}, interface dropped {}, queue dropped {}",
                st.packets.load(Ordering::Relaxed),
                st.kernel_dropped.load(Ordering::Relaxed),
                st.if_dropped.load(Ordering::Relaxed),
                st.queue_dropped.load(Ordering::Relaxed)
            ));
        }
        let (mut rtp, mut rtcp, mut sip, mut calls) = (0, 0, 0, 0);
        for w in &self.workers {
            if let Ok(s) = w.lock() {
                rtp += s.counters.rtp_packets;
                rtcp += s.counters.rtcp_packets;
                sip += s.counters.sip_messages;
                calls += s.counters.calls;
            }
        }
        parts.push(format!("rtp {rtp}, rtcp {rtcp}, sip {sip}, calls {calls}"));
        parts.join("; ")
    }
}
