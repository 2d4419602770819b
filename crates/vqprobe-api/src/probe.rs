//! What the process behind the API provides beyond the store: its Prometheus metrics,
//! whether its capture is stopping, and where pushed call metadata goes. The daemon
//! implements [`Probe`]; the API depends on this trait, never on the daemon.

use vqprobe_engine::push::{PushError, PushedCall};

/// The running probe, as the API sees it.
pub trait Probe: Send + Sync {
    /// Every metric in the Prometheus text exposition format 0.0.4, `None` when this
    /// process keeps no metrics. May lock worker snapshots: called on a blocking
    /// thread.
    fn metrics_text(&self) -> Option<String>;
    /// Whether the probe is shutting down (health answers 503 then).
    fn stopping(&self) -> bool;
    /// Why records are not reaching the store now (the disk refuses writes and they
    /// wait in memory), `None` when they are.
    fn store_fault(&self) -> Option<String> {
        None
    }
    /// Hands pushed call metadata to the capture pipeline. Must not block: answer
    /// [`PushError::Unavailable`] when the pipeline cannot take it now.
    fn push(&self, call: PushedCall) -> Result<(), PushError>;
}
