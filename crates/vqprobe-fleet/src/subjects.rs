//! Names on the bus, in one place (DESIGN.md "Fleet"): stream `VQPROBE_CALLS` over
//! `<prefix>.call.>`, finished records on `<prefix>.call.completed.<probe_id>`, interim
//! ones on `<prefix>.call.interim.<probe_id>`, and `Nats-Msg-Id:
//! <probe_id>/<call_id>/<version>` so JetStream drops a re-published duplicate within
//! its duplicate window and the aggregator keeps the newest version of a call.

use std::time::Duration;

/// The JetStream stream.
pub const STREAM: &str = "VQPROBE_CALLS";

/// The durable pull consumer every aggregator instance shares.
pub const CONSUMER: &str = "vqprobe-aggregate";

/// Default subject prefix.
pub const DEFAULT_PREFIX: &str = "vqprobe";

/// How long JetStream remembers message ids to drop duplicates.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Every subject of the stream.
pub fn stream_subjects(prefix: &str) -> String {
    format!("{prefix}.call.>")
}

/// The subject of a record.
pub fn subject(prefix: &str, probe_id: &str, finished: bool) -> String {
    let kind = if finished { "completed" } else { "interim" };
    format!("{prefix}.call.{kind}.{probe_id}")
}

/// `Nats-Msg-Id` of a record version.
pub fn msg_id(probe_id: &str, call_id: &str, version: i64) -> String {
    format!("{probe_id}/{call_id}/{version}")
}

/// The version at the end of a `Nats-Msg-Id` (call ids may hold `/`, the version
/// never does).
pub fn version_of(msg_id: &str) -> Option<i64> {
    msg_id.rsplit_once('/')?.1.parse().ok()
}

/// Whether a probe id is one subject token: letters, digits, `-` and `_`, 1 to 64
/// characters (dots would split the token, `*`/`>` are wildcards).
pub fn valid_probe_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The JetStream stream configuration (both sides create it when absent).
pub fn stream_config(prefix: &str, replicas: usize) -> async_nats::jetstream::stream::Config {
    async_nats::jetstream::stream::Config {
        name: STREAM.to_string(),
        subjects: vec![stream_subjects(prefix)],
        storage: async_nats::jetstream::stream::StorageType::File,
        num_replicas: replicas.max(1),
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            subject("vqprobe", "sbc-1", true),
            "vqprobe.call.completed.sbc-1"
        );
        assert_eq!(subject("x", "p", false), "x.call.interim.p");
        let id = msg_id("sbc-1", "a/b@host", 42);
        assert_eq!(id, "sbc-1/a/b@host/42");
        assert_eq!(version_of(&id), Some(42));
        assert_eq!(version_of("nothing"), None);
        assert!(valid_probe_id("sbc-01_a"));
        for bad in ["", "a.b", "a*", "a>", "a b", &"x".repeat(65)] {
            assert!(!valid_probe_id(bad), "{bad}");
        }
    }
}
