//! The daemon's configuration: a TOML file (`config/vqprobe.toml` is the
//! documented example), command-line overrides on top, then validation.
//!
//! Every key has a default, so an empty file and no file at all give the
//! same configuration ([`Config::default`]); that is what `vqprobe run`
//! without `--config` uses. Unknown keys are errors rather than warnings:
//! a misspelt key that is silently ignored leaves the probe running with a
//! default the operator believes they changed.
//!
//! Loading is split in three steps so that flags can repair a file before
//! it is judged: [`Config::load`] (or [`Config::from_toml_str`]) parses,
//! [`Config::apply`] layers [`Overrides`] from the command line, and
//! [`Config::validate`] checks ranges. [`Config::resolve`] does all three.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use vqprobe_engine::numbers::{builtin_plan, Region};

/// Largest fixed jitter buffer accepted (ms). Beyond a second the buffer
/// alone pushes mouth-to-ear delay past anything G.107 rates as usable.
const JITTER_BUFFER_MAX_MS: u32 = 1000;

/// Why a configuration could not be read, parsed or accepted.
///
/// Every message is one line and carries its own context, so callers can
/// print it as is; none of the variants has a `source()`, which keeps
/// chain-joining printers from repeating the cause.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("cannot read config file {}: {error}", .path.display())]
    Read {
        /// File that failed.
        path: PathBuf,
        /// Underlying I/O error.
        error: std::io::Error,
    },
    /// The text is not valid TOML or does not fit the schema (unknown key,
    /// wrong type, bad value).
    #[error("{}", render_parse(.file.as_deref(), *.line, *.column, .key.as_deref(), .message))]
    Parse {
        /// File the text came from, when loaded from a file.
        file: Option<PathBuf>,
        /// 1-based line of the offending text, when known.
        line: Option<usize>,
        /// 1-based column (in characters), when known.
        column: Option<usize>,
        /// Dotted key path the error belongs to: the table holding an
        /// unknown key (`capture`), or the key whose value is wrong
        /// (`quality.jitter_buffer`). `None` at the top level.
        key: Option<String>,
        /// What is wrong, from the TOML parser or serde, on one line.
        message: String,
    },
    /// A value parsed but is out of range or inconsistent.
    #[error("{message}")]
    Invalid {
        /// Dotted key with its section, e.g. `pipeline.workers` or
        /// `api.key_hashes[1]`.
        key: String,
        /// Full one-line message, starting with the key.
        message: String,
    },
}

fn render_parse(
    file: Option<&Path>,
    line: Option<usize>,
    column: Option<usize>,
    key: Option<&str>,
    message: &str,
) -> String {
    // Compiler-style `file:line:column:` so editors and grep can jump to it.
    let mut out = String::new();
    if let Some(f) = file {
        out.push_str(&f.display().to_string());
        out.push(':');
    }
    match (line, column) {
        (Some(l), Some(c)) if file.is_some() => out.push_str(&format!("{l}:{c}:")),
        (Some(l), Some(c)) => out.push_str(&format!("line {l}, column {c}:")),
        _ => {}
    }
    if !out.is_empty() {
        out.push(' ');
    }
    if let Some(k) = key {
        out.push_str(&format!("in `{k}`: "));
    }
    out.push_str(message);
    out
}

/// The whole configuration, one field per TOML section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[capture]`: where and how packets are read.
    pub capture: CaptureConfig,
    /// `[pipeline]`: worker threads and the queues between them.
    pub pipeline: PipelineConfig,
    /// `[calls]`: call assembly, agent and MNO attribution.
    pub calls: CallsConfig,
    /// `[quality]`: scoring intervals, jitter buffer and codec values.
    pub quality: QualityConfig,
    /// `[store]`: the SQLite database.
    pub store: StoreConfig,
    /// `[api]`: the HTTP API and Prometheus endpoint.
    pub api: ApiConfig,
    /// `[bus]`: publishing call records to the fleet (NATS JetStream).
    pub bus: BusConfig,
    /// `[hep]`: Homer (HEP) export and input.
    pub hep: HepConfig,
}

/// `[capture]`: libpcap settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    /// Interfaces to capture on; `any` (Linux cooked capture) sees every
    /// interface, including VLAN sub-interfaces and bonds.
    pub interfaces: Vec<String>,
    /// BPF filter compiled by libpcap. The default keeps all UDP (RTP and
    /// RTCP use arbitrary ports, VXLAN and GTP-U are UDP too) and SIP over
    /// TCP on 5060/5061, and drops the rest in the kernel. An empty string
    /// captures everything.
    pub bpf: String,
    /// Bytes kept per packet; must cover a full MTU frame plus
    /// encapsulation so SIP bodies are whole.
    pub snaplen: u32,
    /// Kernel ring buffer per interface (MiB); larger rides out bursts
    /// without kernel drops.
    pub buffer_mb: u32,
    /// Deliver packets as they arrive instead of in kernel blocks (at most
    /// 100 ms late). Timestamps come from the kernel either way; immediate
    /// mode wakes the capture thread per packet and halves the packet rate
    /// a 2-core host can capture without drops, so it is off by default.
    pub immediate: bool,
    /// Put the interfaces in promiscuous mode (needed on a SPAN/mirror
    /// port, not on the SBC itself).
    pub promiscuous: bool,
    /// Capture threads per interface. Above 1, each thread opens its own
    /// handle and the kernel spreads packets over them by flow hash
    /// (PACKET_FANOUT_HASH, symmetric: both directions of a flow reach the
    /// same thread; fragments are reassembled first).
    pub threads: usize,
    /// The probed host's networks, for call and stream direction. Empty
    /// means "the host's own interface addresses", filled in by the daemon.
    #[serde(with = "cidr_list")]
    pub local_networks: Vec<IpNet>,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        Self {
            interfaces: vec!["any".to_string()],
            // No `vlan` clause: libpcap refuses it on `any` (Linux cooked
            // capture), and Linux hands tagged frames to the filter with
            // the tag already stripped, so `udp` matches them anyway.
            bpf: "udp or (tcp and (port 5060 or port 5061))".to_string(),
            snaplen: 1600,
            buffer_mb: 64,
            immediate: false,
            promiscuous: false,
            threads: 1,
            local_networks: Vec::new(),
        }
    }
}

/// `[pipeline]`: threads and queues between capture and the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Shard workers; each owns the streams whose flow hashes to it.
    pub workers: usize,
    /// Batches each worker's queue holds before capture starts dropping
    /// (and counting) packets rather than blocking.
    pub queue_depth: usize,
    /// Packets per batch handed from the capture thread to a worker.
    pub batch_size: usize,
    /// Concurrent streams tracked before new ones are refused (and
    /// counted); bounds memory under a flood of bogus flows.
    pub max_streams: usize,
    /// Concurrent calls (SIP dialogs, RTP-only pairs, pushed calls) held before new
    /// ones are refused (and counted); bounds memory under a flood of Call-IDs.
    pub max_calls: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            queue_depth: 256,
            batch_size: 256,
            max_streams: 100_000,
            max_calls: 100_000,
        }
    }
}

/// `[calls]`: call assembly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallsConfig {
    /// Seconds of RTP silence after which a call ends as `rtp_timeout`.
    pub rtp_timeout_s: u64,
    /// SIP header carrying the voice agent's id.
    pub agent_header: String,
    /// The user's MNO prefix table (`prefix,mno,country`), whose rows win over
    /// libphonenumber's carrier prefixes; `None`: libphonenumber's alone.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "lossy_opt_path"
    )]
    pub mno_prefixes: Option<PathBuf>,
    /// ISO 3166-1 alpha-2 country whose national format numbers without `+` or an
    /// international prefix are read in (`09876543210` with `IN`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_country: Option<String>,
    /// CSV of ported numbers (`number,mno`, from the operator's MNP feed); they win
    /// over every prefix.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "lossy_opt_path"
    )]
    pub ported_numbers: Option<PathBuf>,
}

impl Default for CallsConfig {
    fn default() -> Self {
        Self {
            rtp_timeout_s: 30,
            agent_header: "X-Agent-Id".to_string(),
            mno_prefixes: None,
            default_country: None,
            ported_numbers: None,
        }
    }
}

/// `[quality]`: scoring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualityConfig {
    /// Length of a scoring interval (s); intervals are aligned to UTC.
    pub interval_s: u64,
    /// Jitter buffer the headline MOS assumes.
    pub jitter_buffer: JitterBufferSetting,
    /// Per-codec E-model overrides keyed by rtpmap encoding name. Carried
    /// as written; the codec table validates the values.
    pub codecs: BTreeMap<String, CodecOverrideConfig>,
}

impl Default for QualityConfig {
    fn default() -> Self {
        Self {
            interval_s: 5,
            jitter_buffer: JitterBufferSetting::Adaptive,
            codecs: BTreeMap::new(),
        }
    }
}

/// One codec's override in `[quality.codecs.NAME]`; unset fields keep the
/// built-in value. Same fields as `codec::CodecOverride`, which validates
/// them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CodecOverrideConfig {
    /// Equipment impairment factor Ie.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ie: Option<f64>,
    /// Packet-loss robustness factor Bpl.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpl: Option<f64>,
    /// Codec frame length (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_ms: Option<f64>,
    /// Encoder look-ahead (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lookahead_ms: Option<f64>,
    /// Score on the G.107.1 wideband scale.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wideband: Option<bool>,
}

/// The jitter buffer the headline MOS is computed with: written
/// `"adaptive"` or as an integer size in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum JitterBufferSetting {
    /// The simulated adaptive buffer (follows the stream's jitter).
    #[default]
    Adaptive,
    /// A fixed buffer of this many milliseconds (1..=1000).
    Fixed(u32),
}

impl fmt::Display for JitterBufferSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Adaptive => f.write_str("adaptive"),
            Self::Fixed(ms) => write!(f, "{ms} ms"),
        }
    }
}

impl Serialize for JitterBufferSetting {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Adaptive => s.serialize_str("adaptive"),
            Self::Fixed(ms) => s.serialize_u32(*ms),
        }
    }
}

impl<'de> Deserialize<'de> for JitterBufferSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JitterBufferVisitor)
    }
}

struct JitterBufferVisitor;

impl JitterBufferVisitor {
    fn fixed<E: serde::de::Error>(
        self,
        ms: i128,
        unexp: serde::de::Unexpected<'_>,
    ) -> Result<JitterBufferSetting, E> {
        // Range-checked here as well as in validate() so the parse error
        // points at the line.
        match u32::try_from(ms) {
            Ok(v) if (1..=JITTER_BUFFER_MAX_MS).contains(&v) => Ok(JitterBufferSetting::Fixed(v)),
            _ => Err(E::invalid_value(unexp, &self)),
        }
    }
}

impl serde::de::Visitor<'_> for JitterBufferVisitor {
    type Value = JitterBufferSetting;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\"adaptive\" or a fixed buffer size in milliseconds (1 to {JITTER_BUFFER_MAX_MS})"
        )
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if v.trim().eq_ignore_ascii_case("adaptive") {
            Ok(JitterBufferSetting::Adaptive)
        } else {
            Err(E::invalid_value(serde::de::Unexpected::Str(v), &self))
        }
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.fixed(i128::from(v), serde::de::Unexpected::Signed(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.fixed(i128::from(v), serde::de::Unexpected::Unsigned(v))
    }
}

/// `[store]`: the SQLite database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Database file (created with its directory if missing). A relative
    /// path is relative to the working directory.
    #[serde(serialize_with = "lossy_path")]
    pub path: PathBuf,
    /// Days of call records kept; older ones are deleted.
    pub retention_days: u32,
    /// Longest time (ms) a finished record waits before it is committed;
    /// at most a second, so a crash loses at most a second of calls.
    pub flush_interval_ms: u64,
    /// Records kept in memory while the disk refuses writes (full,
    /// read-only, I/O errors), retried until it takes them; beyond this
    /// new calls are dropped and counted.
    pub pending_max: usize,
    /// Seconds shutdown keeps retrying a failing disk before it gives up
    /// and says what it could not write.
    pub shutdown_timeout_s: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("./data/vqprobe.db"),
            retention_days: 90,
            flush_interval_ms: 500,
            pending_max: 100_000,
            shutdown_timeout_s: 10,
        }
    }
}

/// `[api]`: HTTP API and metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Address and port the API listens on.
    pub listen: SocketAddr,
    /// SHA-256 hashes of the accepted bearer keys, each `sha256:` and 64
    /// lowercase hex digits; hashes so the file never holds a usable key.
    pub key_hashes: Vec<String>,
    /// Whether `/metrics` needs a bearer key too. Unset: it does whenever
    /// `listen` is not a loopback address (its labels name agents and MNOs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_require_auth: Option<bool>,
    /// Distinct MNO label values on Prometheus series before the rest fold
    /// into `other`.
    pub mno_label_cap: usize,
    /// Distinct agent label values on Prometheus series before the rest
    /// fold into `other`.
    pub agent_label_cap: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            key_hashes: Vec::new(),
            metrics_require_auth: None,
            mno_label_cap: 50,
            agent_label_cap: 200,
        }
    }
}

/// `[bus]`: the fleet bus. Off while `nats_url` is unset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusConfig {
    /// NATS server URL(s), comma-separated (`nats://host:4222`); unset: no bus.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nats_url: Option<String>,
    /// This probe's id on the bus and in the fleet view (letters, digits,
    /// `-`, `_`); unset: the host name's first label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe_id: Option<String>,
    /// Subject prefix: records go to `<prefix>.call.completed.<probe_id>`.
    pub subject_prefix: String,
    /// Records the outbox holds while NATS is unreachable; finished calls
    /// beyond it are counted (`vqprobe_bus_outbox_dropped_records_total`)
    /// and not queued.
    pub outbox_max: usize,
    /// Publish interim records of calls in progress too (to
    /// `<prefix>.call.interim.<probe_id>`).
    pub publish_interim: bool,
    /// Replicas of the `VQPROBE_CALLS` stream when this probe creates it
    /// (3 on a NATS cluster).
    pub replicas: usize,
    /// Seconds shutdown keeps publishing what the outbox holds.
    pub shutdown_timeout_s: u64,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            nats_url: None,
            probe_id: None,
            subject_prefix: "vqprobe".into(),
            outbox_max: 1_000_000,
            publish_interim: false,
            replicas: 1,
            shutdown_timeout_s: 5,
        }
    }
}

/// `[hep]`: HEP (Homer Encapsulation Protocol). Export sends a Homer capture server
/// the SIP and RTCP the probe captured and a quality report per call; input takes HEP
/// from agents already deployed (Kamailio `siptrace`, FreeSWITCH, rtpengine, heplify)
/// as if captured. Both are off by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HepConfig {
    /// Where to send HEPv3: `udp://host:port` or `tcp://host:port`; empty: no export.
    pub address: String,
    /// Capture agent id (HEP chunk 0x000c).
    pub capture_id: u32,
    /// Authentication key (HEP chunk 0x000e); empty: none sent.
    pub password: String,
    /// Node name (HEP chunk 0x0013); empty: none sent.
    pub node_name: String,
    /// HEP payload type of the per-call quality report: 32 is what Homer's Kamailio
    /// `sipcapture` stores as a report (`report_capture`); 34 (0x22) is the HEP3 list's
    /// "MOS full report".
    pub report_type: u8,
    /// Messages waiting for the HEP socket before further ones are dropped (and
    /// counted): export never blocks capture or the workers.
    pub queue_depth: usize,
    /// Where to receive HEP: `udp://ip:port` (HEPv1/v2/v3) and `tcp://ip:port`
    /// (HEPv3). With a listener, `capture.interfaces` may be empty (a HEP-only probe).
    pub listen: Vec<String>,
}

impl Default for HepConfig {
    fn default() -> Self {
        Self {
            address: String::new(),
            capture_id: 0,
            password: String::new(),
            node_name: String::new(),
            report_type: 32,
            queue_depth: 8192,
            listen: Vec::new(),
        }
    }
}

impl BusConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(id) = &self.probe_id {
            if !vqprobe_fleet::subjects::valid_probe_id(id) {
                return Err(invalid(
                    "bus.probe_id",
                    format!("{id:?} must be 1 to 64 letters, digits, - or _ (it is a NATS subject token)"),
                ));
            }
        }
        if self.subject_prefix.is_empty()
            || !self
                .subject_prefix
                .split('.')
                .all(vqprobe_fleet::subjects::valid_probe_id)
        {
            return Err(invalid(
                "bus.subject_prefix",
                format!(
                    "{:?} must be dot-separated tokens of letters, digits, - or _",
                    self.subject_prefix
                ),
            ));
        }
        check_range("bus.outbox_max", self.outbox_max, 1, 100_000_000)?;
        check_range("bus.replicas", self.replicas, 1, 5)?;
        check_range("bus.shutdown_timeout_s", self.shutdown_timeout_s, 0, 3600)
    }

    /// The probe id: configured, or the host name's first label made a valid token.
    pub fn effective_probe_id(&self) -> String {
        if let Some(id) = &self.probe_id {
            return id.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let first = host.trim().split('.').next().unwrap_or("");
        let id: String = first
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect();
        if id.is_empty() {
            "probe".into()
        } else {
            id
        }
    }
}

/// UDP or TCP, for a HEP address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HepTransport {
    /// One HEP packet per datagram.
    Udp,
    /// A stream of HEPv3 packets.
    Tcp,
}

/// A parsed `udp://host:port` or `tcp://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HepEndpoint {
    /// Transport.
    pub transport: HepTransport,
    /// `host:port` (resolved when used).
    pub host_port: String,
}

impl HepEndpoint {
    /// Parses `udp://host:port` / `tcp://host:port`; `None` for anything else.
    pub fn parse(s: &str) -> Option<HepEndpoint> {
        let (scheme, rest) = s.trim().split_once("://")?;
        let transport = match scheme.to_ascii_lowercase().as_str() {
            "udp" => HepTransport::Udp,
            "tcp" => HepTransport::Tcp,
            _ => return None,
        };
        let (host, port) = rest.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains(char::is_whitespace) || port.parse::<u16>().is_err() {
            return None;
        }
        Some(HepEndpoint {
            transport,
            host_port: rest.to_string(),
        })
    }
}

impl HepConfig {
    /// The export address, when export is on.
    pub fn export_endpoint(&self) -> Option<HepEndpoint> {
        HepEndpoint::parse(&self.address)
    }

    /// The listeners, with their socket addresses.
    pub fn listeners(&self) -> Vec<(HepTransport, SocketAddr)> {
        self.listen
            .iter()
            .filter_map(|l| {
                let e = HepEndpoint::parse(l)?;
                Some((e.transport, e.host_port.parse().ok()?))
            })
            .collect()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !self.address.trim().is_empty() && self.export_endpoint().is_none() {
            return Err(invalid(
                "hep.address",
                format!(
                    "must be \"udp://host:port\" or \"tcp://host:port\", got {:?}",
                    self.address
                ),
            ));
        }
        for (i, l) in self.listen.iter().enumerate() {
            let ok =
                HepEndpoint::parse(l).is_some_and(|e| e.host_port.parse::<SocketAddr>().is_ok());
            if !ok {
                return Err(invalid(
                    &format!("hep.listen[{i}]"),
                    format!("must be \"udp://IP:PORT\" or \"tcp://IP:PORT\", got {l:?}"),
                ));
            }
        }
        if matches!(self.report_type, 0 | 1 | 5) {
            return Err(invalid(
                "hep.report_type",
                format!(
                    "must be a HEP payload type other than 0, 1 (SIP) and 5 (RTCP), got {}",
                    self.report_type
                ),
            ));
        }
        check_range("hep.queue_depth", self.queue_depth, 1, 1_048_576)
    }
}

/// Values given on the command line; they win over the file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// `--interface` (repeatable): replaces `capture.interfaces` when
    /// non-empty.
    pub interfaces: Vec<String>,
    /// `--listen`: replaces `api.listen`.
    pub listen: Option<SocketAddr>,
    /// `--db`: replaces `store.path`.
    pub db: Option<PathBuf>,
    /// `--mno-prefixes`: replaces `calls.mno_prefixes`.
    pub mno_prefixes: Option<PathBuf>,
    /// `--default-country`: replaces `calls.default_country`.
    pub default_country: Option<String>,
    /// `--ported-numbers`: replaces `calls.ported_numbers`.
    pub ported_numbers: Option<PathBuf>,
    /// `--local-net` (repeatable): replaces `capture.local_networks` when
    /// non-empty.
    pub local_nets: Vec<IpNet>,
    /// `--workers`: replaces `pipeline.workers`.
    pub workers: Option<usize>,
    /// `--capture-threads`: replaces `capture.threads`.
    pub capture_threads: Option<usize>,
}

impl Config {
    /// Reads and parses `path`. Does not validate: apply overrides first,
    /// then call [`Config::validate`] (or use [`Config::resolve`]).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        Self::from_toml_str(&text).map_err(|e| match e {
            ConfigError::Parse {
                file: None,
                line,
                column,
                key,
                message,
            } => ConfigError::Parse {
                file: Some(path.to_path_buf()),
                line,
                column,
                key,
                message,
            },
            other => other,
        })
    }

    /// Parses TOML text; missing keys and sections take their defaults.
    /// Does not validate.
    pub fn from_toml_str(s: &str) -> Result<Config, ConfigError> {
        toml::from_str(s).map_err(|e| parse_error(s, &e))
    }

    /// Loads `path` (defaults when `None`), applies `overrides` and
    /// validates: what `vqprobe run` needs in one call.
    pub fn resolve(path: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut config = match path {
            Some(p) => Self::load(p)?,
            None => Self::default(),
        };
        config.apply(overrides);
        config.validate()?;
        Ok(config)
    }

    /// Layers command-line values over the file: non-empty lists and
    /// `Some` values replace what the file said.
    pub fn apply(&mut self, o: &Overrides) {
        if !o.interfaces.is_empty() {
            self.capture.interfaces = o.interfaces.clone();
        }
        if let Some(listen) = o.listen {
            self.api.listen = listen;
        }
        if let Some(db) = &o.db {
            self.store.path = db.clone();
        }
        if let Some(mno) = &o.mno_prefixes {
            self.calls.mno_prefixes = Some(mno.clone());
        }
        if let Some(c) = &o.default_country {
            self.calls.default_country = Some(c.clone());
        }
        if let Some(p) = &o.ported_numbers {
            self.calls.ported_numbers = Some(p.clone());
        }
        if !o.local_nets.is_empty() {
            self.capture.local_networks = o.local_nets.clone();
        }
        if let Some(workers) = o.workers {
            self.pipeline.workers = workers;
        }
        if let Some(threads) = o.capture_threads {
            self.capture.threads = threads;
        }
    }

    /// Checks ranges and formats; the first problem found is returned,
    /// naming its key with the section.
    ///
    /// Not checked here, because other modules own them: the BPF syntax
    /// (libpcap compiles it), codec values (`codec::CodecTable`), the MNO
    /// table's contents, and the rule that a non-loopback `listen` needs
    /// keys (keys may also come from `VQPROBE_API_KEYS`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.capture.validate(!self.hep.listen.is_empty())?;
        self.pipeline.validate()?;
        self.calls.validate()?;
        self.quality.validate()?;
        self.store.validate()?;
        self.api.validate()?;
        self.bus.validate()?;
        self.hep.validate()
    }

    /// The effective configuration as TOML, for `vqprobe check-config`.
    /// Parsing the result gives back an equal `Config`.
    pub fn to_toml_string(&self) -> String {
        // Paths are written lossily and every other field is plain data,
        // so serialisation only fails for numbers beyond i64, which
        // validate() rules out; say so rather than panic.
        toml::to_string_pretty(self)
            .unwrap_or_else(|e| format!("# cannot render configuration as TOML: {e}\n"))
    }
}

impl CaptureConfig {
    /// `hep_input`: HEP listeners are configured, so no interface is needed.
    fn validate(&self, hep_input: bool) -> Result<(), ConfigError> {
        if self.interfaces.is_empty() && !hep_input {
            return Err(invalid(
                "capture.interfaces",
                "must not be empty (use [\"any\"] for every interface)".into(),
            ));
        }
        for (i, name) in self.interfaces.iter().enumerate() {
            let key = format!("capture.interfaces[{i}]");
            if name.is_empty() || name.chars().any(char::is_whitespace) {
                return Err(invalid(
                    &key,
                    format!("must be an interface name without spaces, got {name:?}"),
                ));
            }
            if self.interfaces[..i].contains(name) {
                return Err(invalid(&key, format!("{name:?} is listed twice")));
            }
        }
        // `any` already sees every interface: listing others too would
        // count each of their packets twice (as duplicates and loss noise).
        if self.interfaces.len() > 1 && self.interfaces.iter().any(|n| n == "any") {
            return Err(invalid(
                "capture.interfaces",
                "\"any\" already covers every interface; list it alone".into(),
            ));
        }
        check_range("capture.snaplen", self.snaplen, 64, 262_144)?;
        // libpcap takes the buffer size in bytes as a C int.
        check_range("capture.buffer_mb", self.buffer_mb, 1, 2047)?;
        check_range("capture.threads", self.threads, 1, 16)?;
        Ok(())
    }
}

impl PipelineConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        check_range("pipeline.workers", self.workers, 1, 64)?;
        check_range("pipeline.queue_depth", self.queue_depth, 1, 1_048_576)?;
        check_range("pipeline.batch_size", self.batch_size, 1, 65_536)?;
        check_range("pipeline.max_streams", self.max_streams, 1, 10_000_000)?;
        check_range("pipeline.max_calls", self.max_calls, 1, 10_000_000)
    }
}

/// A country code the number plans know, as the engine's type.
pub fn default_region(code: &str) -> Result<Region, String> {
    Region::parse(code)
        .filter(|r| builtin_plan().has_region(*r))
        .ok_or_else(|| {
            format!("must be an ISO 3166-1 alpha-2 country code libphonenumber knows (GB, IN, US…), got {code:?}")
        })
}

impl CallsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        check_range("calls.rtp_timeout_s", self.rtp_timeout_s, 1, 86_400)?;
        if !is_sip_token(&self.agent_header) {
            return Err(invalid(
                "calls.agent_header",
                format!(
                    "must be a SIP header name (letters, digits and -.!%*_+`'~), got {:?}",
                    self.agent_header
                ),
            ));
        }
        if self
            .mno_prefixes
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(invalid(
                "calls.mno_prefixes",
                "must be a file path; leave it out for libphonenumber's carriers alone".into(),
            ));
        }
        if self
            .ported_numbers
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(invalid(
                "calls.ported_numbers",
                "must be a file path; leave it out when there is no MNP feed".into(),
            ));
        }
        if let Some(c) = &self.default_country {
            default_region(c).map_err(|m| invalid("calls.default_country", m))?;
        }
        Ok(())
    }
}

impl QualityConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        check_range("quality.interval_s", self.interval_s, 1, 3600)?;
        if let JitterBufferSetting::Fixed(ms) = self.jitter_buffer {
            if !(1..=JITTER_BUFFER_MAX_MS).contains(&ms) {
                return Err(invalid(
                    "quality.jitter_buffer",
                    format!(
                        "must be \"adaptive\" or between 1 and {JITTER_BUFFER_MAX_MS} ms, got {ms}"
                    ),
                ));
            }
        }
        if self.codecs.keys().any(|k| k.trim().is_empty()) {
            return Err(invalid(
                "quality.codecs",
                "codec names must not be empty".into(),
            ));
        }
        Ok(())
    }
}

impl StoreConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.path.as_os_str().is_empty() {
            return Err(invalid("store.path", "must not be empty".into()));
        }
        check_range("store.retention_days", self.retention_days, 0, 3650)?;
        check_range("store.flush_interval_ms", self.flush_interval_ms, 1, 1000)?;
        check_range("store.pending_max", self.pending_max, 1000, 10_000_000)?;
        check_range("store.shutdown_timeout_s", self.shutdown_timeout_s, 0, 600)
    }
}

impl ApiConfig {
    /// Whether `/metrics` needs a key: as configured, else when `listen` is reachable
    /// from other hosts.
    pub fn metrics_need_key(&self) -> bool {
        self.metrics_require_auth
            .unwrap_or(!self.listen.ip().to_canonical().is_loopback())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (i, h) in self.key_hashes.iter().enumerate() {
            // The value is not echoed: someone who pasted the key itself
            // instead of its hash should not find it in the logs.
            if !is_key_hash(h) {
                return Err(invalid(
                    &format!("api.key_hashes[{i}]"),
                    "expected \"sha256:\" followed by 64 lowercase hex digits \
                     (sha256sum of the key)"
                        .into(),
                ));
            }
        }
        check_range("api.mno_label_cap", self.mno_label_cap, 0, 10_000)?;
        check_range("api.agent_label_cap", self.agent_label_cap, 0, 10_000)
    }
}

/// `key` with its problem; `key[..]:`-style keys read better with a colon.
fn invalid(key: &str, problem: String) -> ConfigError {
    let sep = if key.ends_with(']') { ": " } else { " " };
    ConfigError::Invalid {
        key: key.to_string(),
        message: format!("{key}{sep}{problem}"),
    }
}

fn check_range<T>(key: &str, v: T, min: T, max: T) -> Result<(), ConfigError>
where
    T: PartialOrd + fmt::Display + Copy,
{
    if v < min || v > max {
        return Err(invalid(
            key,
            format!("must be between {min} and {max}, got {v}"),
        ));
    }
    Ok(())
}

fn is_sip_token(s: &str) -> bool {
    // RFC 3261 `token`.
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c))
}

fn is_key_hash(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Turns a toml error into a one-line [`ConfigError::Parse`].
fn parse_error(input: &str, e: &toml::de::Error) -> ConfigError {
    let (line, column) = match e.span() {
        Some(span) => {
            let (l, c) = line_column(input, span.start);
            (Some(l), Some(c))
        }
        None => (None, None),
    };
    ConfigError::Parse {
        file: None,
        line,
        column,
        key: key_path(e),
        message: one_line(e.message()),
    }
}

/// The dotted key path toml collected while unwinding. It is only exposed
/// through `Display`, as a trailing "in `a.b`" line when the error carries
/// no input (toml then cannot draw its snippet), so render it that way.
fn key_path(e: &toml::de::Error) -> Option<String> {
    let mut bare = e.clone();
    bare.set_input(None);
    let shown = bare.to_string();
    shown.lines().rev().find_map(|l| {
        l.strip_prefix("in `")
            .and_then(|rest| rest.strip_suffix('`'))
            .filter(|k| !k.is_empty())
            .map(str::to_string)
    })
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// 1-based line and character column of byte offset `at` in `input`.
fn line_column(input: &str, at: usize) -> (usize, usize) {
    let at = at.min(input.len());
    // Spans are char boundaries, but clamp defensively rather than panic.
    let at = (0..=at)
        .rev()
        .find(|i| input.is_char_boundary(*i))
        .unwrap_or(0);
    let before = &input[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn lossy_path<S: Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    // A non-UTF-8 path (possible from the command line) must not make
    // check-config fail; show it the way the OS would print it.
    s.serialize_str(&p.to_string_lossy())
}

fn lossy_opt_path<S: Serializer>(p: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Some(p) => lossy_path(p, s),
        None => s.serialize_none(),
    }
}

/// `Vec<IpNet>` as a list of strings; a bare address means that one host.
mod cidr_list {
    use super::*;

    pub fn serialize<S: Serializer>(nets: &[IpNet], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(nets.iter().map(ToString::to_string))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
        let raw = Vec::<String>::deserialize(d)?;
        raw.iter()
            .map(|s| {
                let t = s.trim();
                t.parse::<IpNet>()
                    .or_else(|_| t.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        serde::de::Error::custom(format!(
                            "{s:?} is not an IP network (expected CIDR such as \
                             \"10.0.0.0/8\" or \"2001:db8::/32\", or a single address)"
                        ))
                    })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped example, so a key renamed here cannot leave it stale.
    const EXAMPLE: &str = include_str!("../config/vqprobe.toml");

    fn parse_err(s: &str) -> String {
        match Config::from_toml_str(s) {
            Ok(c) => panic!("expected an error, parsed {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn invalid_msg(c: &Config) -> String {
        match c.validate() {
            Ok(()) => panic!("expected a validation error for {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn empty_text_gives_defaults() {
        let c = Config::from_toml_str("").unwrap();
        assert_eq!(c, Config::default());
        c.validate().unwrap();
        assert_eq!(c.capture.interfaces, ["any"]);
        assert_eq!(c.store.path, PathBuf::from("./data/vqprobe.db"));
        assert_eq!(c.api.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.quality.jitter_buffer, JitterBufferSetting::Adaptive);
    }

    #[test]
    fn empty_sections_give_defaults() {
        let c = Config::from_toml_str(
            "[capture]\n[pipeline]\n[calls]\n[quality]\n[quality.codecs]\n[store]\n[api]\n",
        )
        .unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn full_example_parses() {
        let text = r#"
[capture]
interfaces = ["eth0", "eth1"]
bpf = "udp"
snaplen = 9000
buffer_mb = 256
immediate = true
promiscuous = true
local_networks = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]

[pipeline]
workers = 4
queue_depth = 2048
batch_size = 128
max_streams = 500000

[calls]
rtp_timeout_s = 60
agent_header = "X-Agent"
mno_prefixes = "/etc/vqprobe/mno.csv"

[quality]
interval_s = 10
jitter_buffer = 80

[quality.codecs.G729]
ie = 11.0
bpl = 19.0

[quality.codecs.opus]
ie = 0
bpl = 20
frame_ms = 20
lookahead_ms = 6.5
wideband = true

[store]
path = "/var/lib/vqprobe/vqprobe.db"
retention_days = 30
flush_interval_ms = 250

[api]
listen = "0.0.0.0:9090"
key_hashes = ["sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]
metrics_require_auth = true
mno_label_cap = 20
agent_label_cap = 100
"#;
        let c = Config::from_toml_str(text).unwrap();
        c.validate().unwrap();
        assert_eq!(c.capture.interfaces, ["eth0", "eth1"]);
        assert!(c.capture.immediate && c.capture.promiscuous);
        assert_eq!(
            c.capture.local_networks,
            vec![
                "10.0.0.0/8".parse::<IpNet>().unwrap(),
                "2001:db8::/32".parse().unwrap(),
                "192.0.2.7/32".parse().unwrap(),
            ]
        );
        assert_eq!(c.pipeline.workers, 4);
        assert_eq!(c.pipeline.max_streams, 500_000);
        assert_eq!(
            c.calls.mno_prefixes.as_deref(),
            Some(Path::new("/etc/vqprobe/mno.csv"))
        );
        assert_eq!(c.quality.jitter_buffer, JitterBufferSetting::Fixed(80));
        // TOML integers are accepted where floats are expected.
        assert_eq!(
            c.quality.codecs["opus"],
            CodecOverrideConfig {
                ie: Some(0.0),
                bpl: Some(20.0),
                frame_ms: Some(20.0),
                lookahead_ms: Some(6.5),
                wideband: Some(true),
            }
        );
        assert_eq!(c.quality.codecs["G729"].frame_ms, None);
        assert_eq!(c.store.flush_interval_ms, 250);
        assert_eq!(c.api.listen, "0.0.0.0:9090".parse().unwrap());
        assert_eq!(c.api.metrics_require_auth, Some(true));
        // And the full config survives a round trip.
        assert_eq!(Config::from_toml_str(&c.to_toml_string()).unwrap(), c);
    }

    #[test]
    fn unknown_key_in_every_section_is_named_with_its_section() {
        for section in ["capture", "pipeline", "calls", "quality", "store", "api"] {
            let msg = parse_err(&format!("[{section}]\nbogus_key = 1\n"));
            assert!(msg.contains("bogus_key"), "{msg}");
            assert!(msg.contains(&format!("in `{section}`")), "{msg}");
            assert!(msg.contains("line 2, column 1"), "{msg}");
            assert!(!msg.contains('\n'), "{msg}");
        }
        let msg = parse_err("[quality.codecs.G729]\nie = 11\nbogus_key = 1\n");
        assert!(msg.contains("bogus_key"), "{msg}");
        assert!(msg.contains("in `quality.codecs.G729`"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
    }

    #[test]
    fn unknown_section_and_top_level_key_are_named() {
        let msg = parse_err("[captur]\ninterfaces = [\"eth0\"]\n");
        assert!(msg.contains("captur"), "{msg}");
        assert!(msg.contains("line 1"), "{msg}");
        let msg = parse_err("workers = 4\n");
        assert!(msg.contains("workers"), "{msg}");
        // Dotted keys reach the same checks.
        let msg = parse_err("pipeline.worker = 4\n");
        assert!(
            msg.contains("worker") && msg.contains("in `pipeline`"),
            "{msg}"
        );
    }

    #[test]
    fn wrong_type_names_the_key() {
        let msg = parse_err("[pipeline]\nworkers = \"four\"\n");
        assert!(msg.contains("in `pipeline.workers`"), "{msg}");
        assert!(msg.contains("line 2"), "{msg}");
        let msg = parse_err("[api]\nlisten = \"localhost\"\n");
        assert!(msg.contains("api.listen"), "{msg}");
        let msg = parse_err("[capture]\nlocal_networks = [\"10.0.0.0/33\"]\n");
        assert!(msg.contains("capture.local_networks"), "{msg}");
        assert!(msg.contains("10.0.0.0/33"), "{msg}");
    }

    #[test]
    fn syntax_error_is_one_line_with_position() {
        let msg = parse_err("[capture]\nsnaplen = = 3\n");
        assert!(msg.starts_with("line 2, column"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
        let msg = parse_err("[store]\npath = \"a\"\npath = \"b\"\n");
        assert!(msg.contains("line 3"), "{msg}");
    }

    #[test]
    fn jitter_buffer_settings() {
        let jb = |v: &str| Config::from_toml_str(&format!("[quality]\njitter_buffer = {v}\n"));
        assert_eq!(
            jb("\"adaptive\"").unwrap().quality.jitter_buffer,
            JitterBufferSetting::Adaptive
        );
        assert_eq!(
            jb("\"Adaptive\"").unwrap().quality.jitter_buffer,
            JitterBufferSetting::Adaptive
        );
        assert_eq!(
            jb("60").unwrap().quality.jitter_buffer,
            JitterBufferSetting::Fixed(60)
        );
        for bad in ["\"sometimes\"", "-5", "0", "1001", "60.5", "true", "\"60\""] {
            let msg = jb(bad).map(|c| c.quality.jitter_buffer).unwrap_err();
            let msg = msg.to_string();
            assert!(msg.contains("quality.jitter_buffer"), "{bad}: {msg}");
            assert!(msg.contains("line 2"), "{bad}: {msg}");
        }
        let msg = jb("\"sometimes\"").unwrap_err().to_string();
        assert!(msg.contains("\"adaptive\""), "{msg}");
        // Built in code rather than parsed: validate() still catches it.
        let mut c = Config::default();
        c.quality.jitter_buffer = JitterBufferSetting::Fixed(0);
        assert!(invalid_msg(&c).contains("quality.jitter_buffer"));
        assert_eq!(JitterBufferSetting::Fixed(60).to_string(), "60 ms");
    }

    #[test]
    fn bad_key_hash_is_named_by_index_without_echoing_it() {
        let good = format!("sha256:{}", "ab".repeat(32));
        let mut c = Config::default();
        c.api.key_hashes = vec![good.clone(), "my-secret-api-key".into()];
        let msg = invalid_msg(&c);
        assert!(
            msg.starts_with(
                "api.key_hashes[1]: expected \"sha256:\" followed by 64 lowercase hex digits"
            ),
            "{msg}"
        );
        assert!(!msg.contains("my-secret-api-key"), "{msg}");
        for bad in [
            format!("sha256:{}", "AB".repeat(32)),
            format!("sha256:{}", "ab".repeat(31)),
            format!("sha512:{}", "ab".repeat(32)),
            "ab".repeat(32),
        ] {
            c.api.key_hashes = vec![bad];
            assert!(invalid_msg(&c).contains("api.key_hashes[0]"));
        }
        c.api.key_hashes = vec![good];
        c.validate().unwrap();
    }

    #[test]
    fn range_errors_name_section_and_key() {
        // A mutation of the defaults and the start of the message it causes.
        type Case = (fn(&mut Config), &'static str);
        let cases: Vec<Case> = vec![
            (
                |c| c.pipeline.workers = 0,
                "pipeline.workers must be between 1 and 64, got 0",
            ),
            (
                |c| c.pipeline.workers = 65,
                "pipeline.workers must be between 1 and 64, got 65",
            ),
            (|c| c.pipeline.queue_depth = 0, "pipeline.queue_depth"),
            (|c| c.pipeline.batch_size = 0, "pipeline.batch_size"),
            (|c| c.pipeline.max_streams = 0, "pipeline.max_streams"),
            (|c| c.pipeline.max_calls = 0, "pipeline.max_calls"),
            (
                |c| c.store.flush_interval_ms = 1001,
                "store.flush_interval_ms must be between 1 and 1000, got 1001",
            ),
            (|c| c.store.retention_days = 3651, "store.retention_days"),
            (
                |c| c.store.path = PathBuf::new(),
                "store.path must not be empty",
            ),
            (
                |c| c.capture.interfaces.clear(),
                "capture.interfaces must not be empty",
            ),
            (
                |c| c.capture.interfaces = vec!["eth0".into(), "eth0".into()],
                "capture.interfaces[1]: \"eth0\" is listed twice",
            ),
            (
                |c| c.capture.interfaces = vec!["any".into(), "eth0".into()],
                "capture.interfaces",
            ),
            (
                |c| c.capture.interfaces = vec![String::new()],
                "capture.interfaces[0]",
            ),
            (
                |c| c.capture.snaplen = 63,
                "capture.snaplen must be between 64 and 262144, got 63",
            ),
            (|c| c.capture.snaplen = 262_145, "capture.snaplen"),
            (|c| c.capture.buffer_mb = 0, "capture.buffer_mb"),
            (
                |c| c.quality.interval_s = 0,
                "quality.interval_s must be between 1 and 3600, got 0",
            ),
            (|c| c.quality.interval_s = 3601, "quality.interval_s"),
            (
                |c| c.calls.rtp_timeout_s = 0,
                "calls.rtp_timeout_s must be between 1 and 86400, got 0",
            ),
            (|c| c.calls.rtp_timeout_s = 86_401, "calls.rtp_timeout_s"),
            (
                |c| c.calls.agent_header = "X Agent".into(),
                "calls.agent_header",
            ),
            (
                |c| c.calls.agent_header = String::new(),
                "calls.agent_header",
            ),
            (
                |c| c.calls.mno_prefixes = Some(PathBuf::new()),
                "calls.mno_prefixes",
            ),
            (
                |c| c.calls.ported_numbers = Some(PathBuf::new()),
                "calls.ported_numbers",
            ),
            (
                |c| c.calls.default_country = Some("XX".into()),
                "calls.default_country must be an ISO 3166-1 alpha-2 country code",
            ),
            (
                |c| c.calls.default_country = Some("GBR".into()),
                "calls.default_country",
            ),
            (
                |c| {
                    c.quality
                        .codecs
                        .insert(" ".into(), CodecOverrideConfig::default());
                },
                "quality.codecs",
            ),
            (|c| c.api.mno_label_cap = 10_001, "api.mno_label_cap"),
            (|c| c.api.agent_label_cap = 10_001, "api.agent_label_cap"),
        ];
        for (mutate, want) in cases {
            let mut c = Config::default();
            mutate(&mut c);
            let err = c.validate().unwrap_err();
            let msg = err.to_string();
            assert!(msg.starts_with(want), "want {want:?}, got {msg:?}");
            if let ConfigError::Invalid { key, .. } = &err {
                assert!(want.starts_with(key.as_str()), "{key} vs {want}");
            } else {
                panic!("not Invalid: {err:?}");
            }
        }
    }

    #[test]
    fn example_file_parses_validates_and_round_trips() {
        let c = Config::from_toml_str(EXAMPLE).unwrap();
        c.validate().unwrap();
        // The example documents the defaults, so it must equal them.
        assert_eq!(c, Config::default());
        let text = c.to_toml_string();
        assert_eq!(Config::from_toml_str(&text).unwrap(), c);
    }

    #[test]
    fn effective_config_round_trips_with_every_kind_of_value() {
        let mut c = Config::default();
        c.calls.mno_prefixes = Some("/etc/vqprobe/mno.csv".into());
        c.calls.default_country = Some("IN".into());
        c.calls.ported_numbers = Some("/var/lib/vqprobe/mnp.csv".into());
        c.capture.local_networks = vec!["10.1.0.0/16".parse().unwrap()];
        c.quality.jitter_buffer = JitterBufferSetting::Fixed(200);
        c.quality.codecs.insert(
            "AMR".into(),
            CodecOverrideConfig {
                ie: Some(5.0),
                bpl: Some(10.1),
                ..Default::default()
            },
        );
        c.quality
            .codecs
            .insert("PCMU".into(), CodecOverrideConfig::default());
        c.api.listen = "[::1]:8443".parse().unwrap();
        let text = c.to_toml_string();
        assert_eq!(Config::from_toml_str(&text).unwrap(), c, "{text}");
        assert!(text.contains("jitter_buffer = 200"), "{text}");
        assert!(Config::default()
            .to_toml_string()
            .contains("jitter_buffer = \"adaptive\""));
    }

    #[test]
    fn overrides_replace_only_what_was_given() {
        let mut c = Config::from_toml_str(
            "[capture]\ninterfaces = [\"eth0\"]\nlocal_networks = [\"10.0.0.0/8\"]\n\
             [pipeline]\nworkers = 0\n",
        )
        .unwrap();
        assert!(c.validate().is_err());
        c.apply(&Overrides::default());
        assert_eq!(c.capture.interfaces, ["eth0"]);
        assert_eq!(c.pipeline.workers, 0);

        let o = Overrides {
            interfaces: vec!["ens1".into(), "ens2".into()],
            listen: Some("0.0.0.0:9000".parse().unwrap()),
            db: Some("/tmp/x.db".into()),
            mno_prefixes: Some("/tmp/mno.csv".into()),
            default_country: Some("br".into()),
            ported_numbers: Some("/tmp/mnp.csv".into()),
            local_nets: vec!["192.168.0.0/16".parse().unwrap()],
            workers: Some(8),
            capture_threads: Some(2),
        };
        c.apply(&o);
        c.validate().unwrap();
        assert_eq!(c.capture.threads, 2);
        assert_eq!(c.capture.interfaces, ["ens1", "ens2"]);
        assert_eq!(c.api.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(c.store.path, PathBuf::from("/tmp/x.db"));
        assert_eq!(
            c.calls.mno_prefixes.as_deref(),
            Some(Path::new("/tmp/mno.csv"))
        );
        assert_eq!(c.calls.default_country.as_deref(), Some("br"));
        assert_eq!(
            c.calls.ported_numbers.as_deref(),
            Some(Path::new("/tmp/mnp.csv"))
        );
        assert_eq!(
            c.capture.local_networks,
            vec!["192.168.0.0/16".parse::<IpNet>().unwrap()]
        );
        assert_eq!(c.pipeline.workers, 8);
        // Untouched keys keep the file's (here default) values.
        assert_eq!(c.store.retention_days, 90);
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("vqprobe-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();

        let missing = dir.join("missing.toml");
        let msg = Config::load(&missing).unwrap_err().to_string();
        assert!(msg.starts_with("cannot read config file "), "{msg}");
        assert!(msg.contains("missing.toml"), "{msg}");

        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "[api]\nlisten = \"127.0.0.1:8080\"\ntypo = true\n").unwrap();
        let msg = Config::load(&bad).unwrap_err().to_string();
        assert!(
            msg.starts_with(&format!(
                "{}:3:1: in `api`: unknown field `typo`",
                bad.display()
            )),
            "{msg}"
        );

        let good = dir.join("good.toml");
        std::fs::write(&good, "[pipeline]\nworkers = 0\n").unwrap();
        let o = Overrides {
            workers: Some(3),
            ..Default::default()
        };
        // The flag repairs the file's value before validation.
        assert_eq!(
            Config::resolve(Some(&good), &o).unwrap().pipeline.workers,
            3
        );
        assert!(Config::resolve(Some(&good), &Overrides::default()).is_err());
        assert_eq!(
            Config::resolve(None, &Overrides::default()).unwrap(),
            Config::default()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
