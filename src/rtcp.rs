//! RTCP compound packet parser: RFC 3550 (SR, RR, SDES, BYE, APP), RFC 4585
//! feedback (recognised and skipped), RFC 3611 XR (Receiver Reference Time,
//! DLRR, VoIP Metrics) and the RFC 5761 RTP/RTCP demultiplexing tests.
//!
//! Sans-I/O in the style of rustls/smoltcp: the caller hands over one UDP
//! payload, gets typed values back, and nothing here can panic on the bytes,
//! whatever they are. Every read is bounds-checked, every length is checked
//! against what actually arrived.
//!
//! The round-trip helpers at the bottom implement both the in-spec RFC 3550
//! §6.4.1 computation and the passive-observer variant the probe uses
//! (`reference/ALGORITHMS.md` §5).

use thiserror::Error;

/// Packet type of a Sender Report (RFC 3550 §6.4.1).
pub const PT_SR: u8 = 200;
/// Packet type of a Receiver Report (RFC 3550 §6.4.2).
pub const PT_RR: u8 = 201;
/// Packet type of a Source Description (RFC 3550 §6.5).
pub const PT_SDES: u8 = 202;
/// Packet type of a Goodbye (RFC 3550 §6.6).
pub const PT_BYE: u8 = 203;
/// Packet type of an application-defined packet (RFC 3550 §6.7).
pub const PT_APP: u8 = 204;
/// Packet type of transport-layer feedback (RFC 4585 §6.1).
pub const PT_RTPFB: u8 = 205;
/// Packet type of payload-specific feedback (RFC 4585 §6.1).
pub const PT_PSFB: u8 = 206;
/// Packet type of an Extended Report (RFC 3611 §2).
pub const PT_XR: u8 = 207;

/// SDES item type of the canonical name (RFC 3550 §6.5.1).
pub const SDES_CNAME: u8 = 1;

/// XR block type of a Receiver Reference Time block (RFC 3611 §4.4).
pub const XR_BT_RRT: u8 = 4;
/// XR block type of a DLRR block (RFC 3611 §4.5).
pub const XR_BT_DLRR: u8 = 5;
/// XR block type of a VoIP Metrics block (RFC 3611 §4.7).
pub const XR_BT_VOIP_METRICS: u8 = 7;

/// Every RTCP packet starts with a 4-byte header (V/P/count, PT, length).
const HEADER_LEN: usize = 4;
/// A report block in an SR or RR is six 32-bit words (RFC 3550 §6.4.1).
const REPORT_BLOCK_LEN: usize = 24;
/// RFC 3611 §4.7 fixes the VoIP Metrics block at 8 words after its header.
const VOIP_METRICS_LEN: usize = 32;
/// RFC 3611 §4.5: each DLRR sub-block is SSRC, LRR, DLRR.
const DLRR_SUB_BLOCK_LEN: usize = 12;
/// RFC 3611 §4.7.4/§4.7.5: the octet value meaning "unavailable".
const XR_UNAVAILABLE: u8 = 127;

/// Why an RTCP datagram, or one packet in it, could not be read.
///
/// Offsets are byte offsets into the datagram given to [`parse_compound`],
/// so a log line can point at the damage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RtcpError {
    /// The packet's header or its declared length runs past the end of the
    /// datagram (also used for an empty datagram or a trailing fragment of
    /// fewer than 4 bytes).
    #[error("RTCP packet at offset {offset} needs {needed} bytes, only {available} remain")]
    Truncated {
        /// Start of the packet in the datagram.
        offset: usize,
        /// Bytes the header (or its length field) asks for.
        needed: usize,
        /// Bytes actually left in the datagram from `offset`.
        available: usize,
    },
    /// The version field is not 2 (RFC 3550 §6.4.1).
    #[error("RTCP packet at offset {offset} has version {version}, expected 2")]
    BadVersion {
        /// Start of the packet in the datagram.
        offset: usize,
        /// The two version bits as found.
        version: u8,
    },
    /// The packet type lies outside 192..=223, the range RFC 5761 §4 sets
    /// aside for RTCP; such a packet is not RTCP at all.
    #[error(
        "RTCP packet at offset {offset} has packet type {pt}, outside the RTCP range 192..=223"
    )]
    BadPacketType {
        /// Start of the packet in the datagram.
        offset: usize,
        /// The packet type octet as found.
        pt: u8,
    },
    /// The padding bit is set but the last octet's padding count is zero or
    /// larger than the packet body (RFC 3550 §6.4.1, "padding").
    #[error("RTCP packet at offset {offset} claims {padding} bytes of padding in a {body_len}-byte body")]
    BadPadding {
        /// Start of the packet in the datagram.
        offset: usize,
        /// The padding count octet.
        padding: u8,
        /// Body length (packet length minus the 4-byte header).
        body_len: usize,
    },
    /// The packet is framed correctly but its contents contradict
    /// themselves, e.g. more report blocks than the length has room for.
    #[error("RTCP packet type {pt} at offset {offset} is malformed: {reason}")]
    Malformed {
        /// Start of the packet in the datagram.
        offset: usize,
        /// The packet type.
        pt: u8,
        /// What did not add up.
        reason: &'static str,
    },
}

/// A 64-bit NTP timestamp as carried in an SR or an XR Receiver Reference
/// Time block: seconds since 1900 and a binary fraction of a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NtpTimestamp {
    /// Whole seconds since 1900-01-01 00:00 UTC (wraps in 2036).
    pub seconds: u32,
    /// Fraction of a second in units of 2^-32 s.
    pub fraction: u32,
}

impl NtpTimestamp {
    /// The middle 32 bits (low 16 of seconds, high 16 of fraction): the
    /// value a receiver echoes as LSR (RFC 3550 §6.4.1) or LRR (RFC 3611
    /// §4.5), so matching an RR to the SR it answers compares against this.
    #[must_use]
    pub fn middle32(&self) -> u32 {
        ((self.seconds & 0xffff) << 16) | (self.fraction >> 16)
    }

    /// Seconds since 1900 as a float, for display and differences; the NTP
    /// era is ignored because endpoints' clocks are not trusted anyway.
    #[must_use]
    pub fn as_secs_f64(&self) -> f64 {
        f64::from(self.seconds) + f64::from(self.fraction) / 4_294_967_296.0
    }
}

/// One reception report block (RFC 3550 §6.4.1): what the reporter saw of
/// the stream sent by `ssrc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ReportBlock {
    /// The source this block reports on (the media sender, not the reporter).
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256 units.
    pub fraction_lost: u8,
    /// Cumulative packets lost, a 24-bit signed field sign-extended here:
    /// duplicates make it negative (RFC 3550 §6.4.1, A.3).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received (cycles << 16 | max seq).
    pub ext_highest_seq: u32,
    /// Interarrival jitter in RTP timestamp units of the reported stream.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received from
    /// `ssrc`; 0 means no SR has been received yet, so no RTT is possible.
    pub lsr: u32,
    /// Delay between receiving that SR and sending this report, 1/65536 s.
    pub dlsr: u32,
}

impl ReportBlock {
    /// Fraction lost as a ratio in 0..1 (the wire value is out of 256).
    #[must_use]
    pub fn fraction_lost_ratio(&self) -> f64 {
        f64::from(self.fraction_lost) / 256.0
    }

    /// DLSR in seconds.
    #[must_use]
    pub fn dlsr_seconds(&self) -> f64 {
        f64::from(self.dlsr) / 65536.0
    }

    /// Jitter in milliseconds given the reported stream's RTP clock rate;
    /// `None` for a zero clock rate, which would otherwise divide by zero.
    #[must_use]
    pub fn jitter_ms(&self, clock_rate: u32) -> Option<f64> {
        (clock_rate != 0).then(|| f64::from(self.jitter) * 1000.0 / f64::from(clock_rate))
    }
}

/// A Sender Report (PT 200).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SenderReport {
    /// SSRC of the sender of this report.
    pub ssrc: u32,
    /// Sender's wallclock when the report was sent.
    pub ntp: NtpTimestamp,
    /// RTP timestamp corresponding to `ntp`, in the sender's media clock.
    pub rtp_ts: u32,
    /// RTP data packets sent since the start of transmission.
    pub packet_count: u32,
    /// RTP payload octets sent since the start of transmission.
    pub octet_count: u32,
    /// Reception reports about the streams this sender receives.
    pub reports: Vec<ReportBlock>,
}

/// A Receiver Report (PT 201).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReceiverReport {
    /// SSRC of the sender of this report.
    pub ssrc: u32,
    /// Reception reports, one per source heard.
    pub reports: Vec<ReportBlock>,
}

/// One SDES chunk: the items describing one SSRC/CSRC.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SdesChunk {
    /// The source described.
    pub ssrc: u32,
    /// The first CNAME item, decoded as UTF-8 with invalid bytes replaced;
    /// it ties SSRCs of one endpoint together across streams.
    pub cname: Option<String>,
    /// Number of other items (NAME, TOOL, NOTE, PRIV, a repeated CNAME...),
    /// counted rather than kept because nothing downstream uses them.
    pub other_items: usize,
}

/// A Source Description packet (PT 202).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sdes {
    /// Chunks in wire order.
    pub chunks: Vec<SdesChunk>,
}

/// A Goodbye packet (PT 203).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bye {
    /// Sources leaving the session.
    pub ssrcs: Vec<u32>,
    /// Optional reason text (UTF-8, invalid bytes replaced); an empty reason
    /// is reported as `None`.
    pub reason: Option<String>,
}

/// An application-defined packet (PT 204), kept as metadata only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct App {
    /// The 5-bit subtype from the header's count field.
    pub subtype: u8,
    /// SSRC/CSRC of the sender.
    pub ssrc: u32,
    /// Four-octet name, normally ASCII (not checked: vendors ignore that).
    pub name: [u8; 4],
    /// Bytes of application data after the name (padding excluded).
    pub data_len: usize,
}

impl App {
    /// The name as text when it is printable ASCII, which RFC 3550 §6.7
    /// requires but encrypted or proprietary senders do not honour.
    #[must_use]
    pub fn name_str(&self) -> Option<&str> {
        if self.name.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            std::str::from_utf8(&self.name).ok()
        } else {
            None
        }
    }
}

/// One DLRR sub-block (RFC 3611 §4.5): the XR counterpart of LSR/DLSR,
/// letting a receiver-only endpoint get an RTT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DlrrSubBlock {
    /// The receiver whose Receiver Reference Time block is being answered.
    pub ssrc: u32,
    /// Middle 32 bits of that RRT block's NTP timestamp (0: none received).
    pub lrr: u32,
    /// Delay since that RRT block was received, 1/65536 s.
    pub dlrr: u32,
}

/// Packet loss concealment in use (RFC 3611 §4.7.6, RX config bits 7-6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PlcMethod {
    /// `00`: not specified.
    #[default]
    Unspecified,
    /// `01`: concealment disabled (silence insertion).
    Disabled,
    /// `10`: enhanced concealment.
    Enhanced,
    /// `11`: standard concealment (e.g. G.711 Appendix I).
    Standard,
}

/// Jitter buffer mode (RFC 3611 §4.7.6, RX config bits 5-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum JitterBufferMode {
    /// `00`: unknown.
    #[default]
    Unknown,
    /// `01`: reserved by RFC 3611.
    Reserved,
    /// `10`: fixed-size buffer.
    NonAdaptive,
    /// `11`: adaptive buffer.
    Adaptive,
}

/// The receiver configuration octet of a VoIP Metrics block, unpacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RxConfig {
    /// Packet loss concealment method.
    pub plc: PlcMethod,
    /// Jitter buffer adaptivity.
    pub jba: JitterBufferMode,
    /// Jitter buffer adjustment rate, 0..=15 (only meaningful if adaptive).
    pub jb_rate: u8,
}

impl RxConfig {
    fn from_octet(b: u8) -> Self {
        let plc = match b >> 6 {
            0 => PlcMethod::Unspecified,
            1 => PlcMethod::Disabled,
            2 => PlcMethod::Enhanced,
            _ => PlcMethod::Standard,
        };
        let jba = match (b >> 4) & 0b11 {
            0 => JitterBufferMode::Unknown,
            1 => JitterBufferMode::Reserved,
            2 => JitterBufferMode::NonAdaptive,
            _ => JitterBufferMode::Adaptive,
        };
        Self {
            plc,
            jba,
            jb_rate: b & 0x0f,
        }
    }
}

/// A VoIP Metrics report block (RFC 3611 §4.7): the far end's own view of
/// the call, including its E-model R factor and MOS estimates.
///
/// Fields that RFC 3611 marks with the sentinel 127 ("unavailable"), or
/// that hold a value outside the range the RFC allows, are `None` rather
/// than a number nobody should average.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct VoipMetrics {
    /// The source the metrics describe.
    pub ssrc: u32,
    /// Fraction of packets lost since the start of reception, 0..1.
    pub loss_rate: f64,
    /// Fraction of packets discarded (late/early) by the jitter buffer, 0..1.
    pub discard_rate: f64,
    /// Fraction of packets lost or discarded within bursts, 0..1.
    pub burst_density: f64,
    /// Fraction of packets lost or discarded within gaps, 0..1.
    pub gap_density: f64,
    /// Mean burst duration, ms.
    pub burst_duration_ms: u16,
    /// Mean gap duration, ms.
    pub gap_duration_ms: u16,
    /// Most recent round-trip time between the RTP interfaces, ms.
    pub round_trip_delay_ms: u16,
    /// Most recent end-system delay estimate, ms (0 is what senders write
    /// when they have no estimate; kept raw because 0 is also a value).
    pub end_system_delay_ms: u16,
    /// Speech signal level in dBm0 (signed), `None` if unavailable.
    pub signal_level: Option<i8>,
    /// Background noise level in dBm0 (signed), `None` if unavailable.
    pub noise_level: Option<i8>,
    /// Residual echo return loss in dB, `None` if unavailable.
    pub rerl: Option<u8>,
    /// Gap threshold used for the burst/gap metrics (RFC 3611 recommends 16).
    pub gmin: u8,
    /// R factor of this RTP segment, 0..=100, `None` if unavailable.
    pub r_factor: Option<u8>,
    /// R factor of an external segment (e.g. a cellular leg), 0..=100.
    pub ext_r_factor: Option<u8>,
    /// Listening-quality MOS, 1.0..=5.0 (wire value is MOS × 10).
    pub mos_lq: Option<f64>,
    /// Conversational-quality MOS, 1.0..=5.0 (wire value is MOS × 10).
    pub mos_cq: Option<f64>,
    /// Receiver configuration (PLC, jitter buffer mode and rate).
    pub rx_config: RxConfig,
    /// Jitter buffer nominal delay, ms.
    pub jb_nominal: u16,
    /// Jitter buffer current maximum delay, ms.
    pub jb_maximum: u16,
    /// Jitter buffer absolute maximum delay, ms.
    pub jb_abs_max: u16,
}

/// One report block of an XR packet.
#[derive(Debug, Clone, PartialEq)]
pub enum XrBlock {
    /// BT 4: the receiver's wallclock, answered by a DLRR block.
    ReceiverReferenceTime(NtpTimestamp),
    /// BT 5: answers to Receiver Reference Time blocks.
    Dlrr(Vec<DlrrSubBlock>),
    /// BT 7: VoIP Metrics.
    VoipMetrics(VoipMetrics),
    /// Any other block type, skipped by its length (RFC 3611 §3 asks
    /// receivers to ignore blocks they do not understand).
    Unknown {
        /// Block type.
        bt: u8,
        /// Bytes of block content after the 4-byte block header.
        len: usize,
    },
}

/// An Extended Report packet (PT 207).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Xr {
    /// SSRC of the originator of this XR packet.
    pub ssrc: u32,
    /// Report blocks in wire order.
    pub blocks: Vec<XrBlock>,
}

/// One packet of a compound RTCP datagram.
#[derive(Debug, Clone, PartialEq)]
pub enum RtcpPacket {
    /// Sender Report (200).
    Sr(SenderReport),
    /// Receiver Report (201).
    Rr(ReceiverReport),
    /// Source Description (202).
    Sdes(Sdes),
    /// Goodbye (203).
    Bye(Bye),
    /// Application-defined (204).
    App(App),
    /// RFC 4585 feedback (205 RTPFB, 206 PSFB): recognised, not decoded,
    /// because NACK/PLI/REMB say nothing the probe does not measure itself.
    Feedback {
        /// 205 or 206.
        pt: u8,
        /// SSRC of the packet sender.
        ssrc: u32,
    },
    /// Extended Report (207).
    Xr(Xr),
    /// Any other packet type in the RTCP range 192..=223, skipped by length.
    Unknown {
        /// The packet type.
        pt: u8,
    },
}

/// The packets of one RTCP datagram.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Compound {
    /// Packets in wire order.
    pub packets: Vec<RtcpPacket>,
    /// True when a packet after the first was damaged and parsing stopped
    /// there; `packets` then holds everything before it. See
    /// [`parse_compound`] for why this is not an error.
    pub truncated: bool,
    /// What stopped parsing when `truncated` is true; `None` otherwise.
    pub error: Option<RtcpError>,
}

impl Compound {
    /// Every reception report block in the datagram, SR and RR alike, each
    /// with the SSRC of the endpoint that sent the report.
    pub fn report_blocks(&self) -> impl Iterator<Item = (u32, &ReportBlock)> + '_ {
        self.packets.iter().flat_map(|p| {
            let (reporter, blocks): (u32, &[ReportBlock]) = match p {
                RtcpPacket::Sr(sr) => (sr.ssrc, &sr.reports),
                RtcpPacket::Rr(rr) => (rr.ssrc, &rr.reports),
                _ => (0, &[]),
            };
            blocks.iter().map(move |b| (reporter, b))
        })
    }
}

/// Parses every packet of a compound RTCP datagram (one UDP payload).
///
/// Policy on damage: the result is `Err` only when the *first* packet cannot
/// be read, since then nothing in the datagram can be trusted to be RTCP.
/// When a later packet is bad, parsing stops there and the packets already
/// read are returned with [`Compound::truncated`] set and the cause in
/// [`Compound::error`]. RFC 3550 puts the SR/RR first in every compound, so
/// this keeps the loss/jitter/LSR figures the probe needs even when a
/// trailing SDES or XR is mangled, while the flag lets the caller count the
/// damage. SRTCP shows up this way too: its first 8 bytes are clear and the
/// rest is ciphertext. Once one length field is wrong the next packet's start
/// is unknown, so nothing after it is attempted.
///
/// The RFC 3550 rule that a compound must begin with an SR or RR is not
/// enforced: reduced-size RTCP (RFC 5506) sends feedback or XR alone.
///
/// # Errors
/// [`RtcpError`] describing the first packet's problem: a bad version, a
/// packet type outside 192..=223, a length past the end of the datagram
/// (`Truncated`, also returned for an empty datagram), bad padding, or a
/// body that contradicts its header (`Malformed`).
pub fn parse_compound(data: &[u8]) -> Result<Compound, RtcpError> {
    let mut compound = Compound::default();
    let mut offset = 0;
    loop {
        match parse_packet(data, offset) {
            Ok((packet, next)) => {
                compound.packets.push(packet);
                offset = next;
                if offset >= data.len() {
                    return Ok(compound);
                }
            }
            Err(e) if compound.packets.is_empty() => return Err(e),
            Err(e) => {
                compound.truncated = true;
                compound.error = Some(e);
                return Ok(compound);
            }
        }
    }
}

/// Cheap test of whether a UDP payload is an unencrypted RTCP compound, for
/// spotting RTCP on ports nobody announced and for RFC 5761 RTP/RTCP mux.
///
/// Checks: version 2; first packet type 200..=207 (SR, RR, SDES, BYE, APP,
/// RTPFB, PSFB, XR); the first packet's declared length fits in the
/// datagram; the datagram length is a multiple of 4, which every unencrypted
/// compound is because every RTCP packet is whole 32-bit words.
///
/// False positives: RFC 5761 §4 notes that an RTP packet whose marker bit is
/// set and whose payload type is 72..=79 has a second octet of 200..=207,
/// exactly an RTCP SR..XR type; RFC 5761 rules payload types 64..=95 out
/// on a muxed session, but a sender that ignores that can still pass here when its
/// sequence number is small enough to read as a plausible length. Any other
/// protocol whose payload happens to begin `0x80..=0xBF, 0xC8..=0xCF` can
/// collide in the same way; the length and alignment checks cut the odds but
/// do not remove them, so callers should confirm with [`parse_compound`] and
/// with flow context (port + 1, SDP `a=rtcp`).
///
/// False negatives: SRTCP (RFC 3711) appends a 4-byte index and usually a
/// 10-byte authentication tag, so its length is usually not a multiple of 4; on a
/// flow already known to be muxed use [`is_muxed_rtcp`] instead.
#[must_use]
pub fn looks_like_rtcp(data: &[u8]) -> bool {
    let Some(&[b0, pt, len_hi, len_lo]) = data.first_chunk::<HEADER_LEN>() else {
        return false;
    };
    let first_len = (usize::from(u16::from_be_bytes([len_hi, len_lo])) + 1) * 4;
    b0 >> 6 == 2
        && (PT_SR..=PT_XR).contains(&pt)
        && first_len <= data.len()
        && is_whole_words(data.len())
}

/// RFC 5761 §4 demultiplexing on a flow known to carry RTP and RTCP on one
/// port: the packet is RTCP when its version is 2 and its second octet is in
/// 192..=223. Works for SRTCP as well, because that octet stays in clear.
#[must_use]
pub fn is_muxed_rtcp(data: &[u8]) -> bool {
    matches!(data.first_chunk::<2>(), Some(&[b0, pt]) if b0 >> 6 == 2 && (192..=223).contains(&pt))
}

/// True when `n` bytes are whole 32-bit words, as every unencrypted RTCP
/// compound is. A mask rather than `%` keeps this MSRV-1.80 clean under both
/// old and new clippy (`manual_is_multiple_of`).
fn is_whole_words(n: usize) -> bool {
    n & 0b11 == 0
}

/// Passive-observer leg round trip in seconds (`reference/ALGORITHMS.md`
/// §5): when the probe saw the RR, minus when it saw the SR that the RR's
/// LSR names, minus the DLSR the far end says it held the SR for. The result
/// is the probe → far end → probe round trip.
///
/// Both timestamps are capture times in seconds on the probe's own clock,
/// so no endpoint clock is trusted. The result can be negative when DLSR
/// was rounded or the SR was seen on a different path; callers decide what
/// to keep (Wireshark reports such values as they are). Only meaningful
/// when the report block's LSR is non-zero.
#[must_use]
pub fn rtt_from_report(rr_arrival_ts: f64, sr_sighting_ts: f64, dlsr: u32) -> f64 {
    rr_arrival_ts - sr_sighting_ts - f64::from(dlsr) / 65536.0
}

/// RFC 3550 §6.4.1 round trip as an endpoint computes it: A − LSR − DLSR,
/// with A the middle 32 bits of the NTP time the report arrived, all in
/// 1/65536 s and wrapping like the 32-bit fields they come from.
///
/// The same arithmetic gives the XR receiver RTT (RFC 3611 §4.5) with LRR
/// and DLRR in place of LSR and DLSR. A result with the top bit set means
/// the clocks disagree (a "negative" RTT) and should be discarded.
#[must_use]
pub fn rtt_rfc3550(a_ntp_middle32: u32, lsr: u32, dlsr: u32) -> u32 {
    a_ntp_middle32.wrapping_sub(lsr).wrapping_sub(dlsr)
}

/// Bounds-checked big-endian reader over a packet body; every read returns
/// `None` instead of panicking when the bytes run out.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(rest: &'a [u8]) -> Self {
        Self { rest }
    }

    fn remaining(&self) -> usize {
        self.rest.len()
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.rest.split_at_checked(n)?;
        self.rest = tail;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, tail) = self.rest.split_first_chunk::<N>()?;
        self.rest = tail;
        Some(*head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|[b]| b)
    }

    fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }
}

/// Reads the packet starting at `offset`, returning it and the offset of
/// the next one.
fn parse_packet(data: &[u8], offset: usize) -> Result<(RtcpPacket, usize), RtcpError> {
    let rest = data.get(offset..).unwrap_or_default();
    let Some(&[b0, pt, len_hi, len_lo]) = rest.first_chunk::<HEADER_LEN>() else {
        return Err(RtcpError::Truncated {
            offset,
            needed: HEADER_LEN,
            available: rest.len(),
        });
    };
    let version = b0 >> 6;
    if version != 2 {
        return Err(RtcpError::BadVersion { offset, version });
    }
    if !(192..=223).contains(&pt) {
        return Err(RtcpError::BadPacketType { offset, pt });
    }
    let has_padding = b0 & 0x20 != 0;
    let count = b0 & 0x1f;
    // At most 65536 words, so this cannot overflow even a 32-bit usize.
    let total = (usize::from(u16::from_be_bytes([len_hi, len_lo])) + 1) * 4;
    let Some(packet) = rest.get(..total) else {
        return Err(RtcpError::Truncated {
            offset,
            needed: total,
            available: rest.len(),
        });
    };
    let mut body = packet.get(HEADER_LEN..).unwrap_or_default();
    if has_padding {
        // The count includes itself, so 0 is invalid, and it can eat the
        // whole body but never the header.
        let padding = body.last().copied().unwrap_or(0);
        let kept = body.len().checked_sub(usize::from(padding));
        match (padding, kept) {
            (1.., Some(kept)) => body = body.get(..kept).unwrap_or_default(),
            _ => {
                return Err(RtcpError::BadPadding {
                    offset,
                    padding,
                    body_len: body.len(),
                })
            }
        }
    }
    let malformed = |reason| RtcpError::Malformed { offset, pt, reason };
    let packet = match pt {
        PT_SR => RtcpPacket::Sr(parse_sr(body, count).map_err(malformed)?),
        PT_RR => RtcpPacket::Rr(parse_rr(body, count).map_err(malformed)?),
        PT_SDES => RtcpPacket::Sdes(parse_sdes(body, count).map_err(malformed)?),
        PT_BYE => RtcpPacket::Bye(parse_bye(body, count).map_err(malformed)?),
        PT_APP => RtcpPacket::App(parse_app(body, count).map_err(malformed)?),
        PT_RTPFB | PT_PSFB => {
            // RFC 4585 §6.1: sender SSRC then media SSRC are mandatory.
            let mut r = Reader::new(body);
            let ssrc = r
                .u32()
                .ok_or_else(|| malformed("feedback sender SSRC missing"))?;
            r.u32()
                .ok_or_else(|| malformed("feedback media SSRC missing"))?;
            RtcpPacket::Feedback { pt, ssrc }
        }
        PT_XR => RtcpPacket::Xr(parse_xr(body).map_err(malformed)?),
        _ => RtcpPacket::Unknown { pt },
    };
    Ok((packet, offset + total))
}

fn parse_report_blocks(r: &mut Reader<'_>, count: u8) -> Result<Vec<ReportBlock>, &'static str> {
    let mut reports = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let bytes = r
            .array::<REPORT_BLOCK_LEN>()
            .ok_or("report count exceeds packet length")?;
        let mut b = Reader::new(&bytes);
        // Infallible: exactly REPORT_BLOCK_LEN bytes are read from a buffer
        // of that size; the defaults are never used.
        let ssrc = b.u32().unwrap_or_default();
        let [fraction_lost, c0, c1, c2] = b.array::<4>().unwrap_or_default();
        reports.push(ReportBlock {
            ssrc,
            fraction_lost,
            // Put the 24 bits at the top, then an arithmetic shift drags
            // the sign bit down: 0xFFFFFF becomes -1.
            cumulative_lost: i32::from_be_bytes([c0, c1, c2, 0]) >> 8,
            ext_highest_seq: b.u32().unwrap_or_default(),
            jitter: b.u32().unwrap_or_default(),
            lsr: b.u32().unwrap_or_default(),
            dlsr: b.u32().unwrap_or_default(),
        });
    }
    // Bytes left over are profile-specific extensions (RFC 3550 §6.4.1),
    // legitimately ignored.
    Ok(reports)
}

fn parse_sr(body: &[u8], count: u8) -> Result<SenderReport, &'static str> {
    let mut r = Reader::new(body);
    let mut field = || r.u32().ok_or("sender info shorter than 24 bytes");
    let ssrc = field()?;
    let ntp = NtpTimestamp {
        seconds: field()?,
        fraction: field()?,
    };
    let rtp_ts = field()?;
    let packet_count = field()?;
    let octet_count = field()?;
    Ok(SenderReport {
        ssrc,
        ntp,
        rtp_ts,
        packet_count,
        octet_count,
        reports: parse_report_blocks(&mut r, count)?,
    })
}

fn parse_rr(body: &[u8], count: u8) -> Result<ReceiverReport, &'static str> {
    let mut r = Reader::new(body);
    let ssrc = r.u32().ok_or("reporter SSRC missing")?;
    Ok(ReceiverReport {
        ssrc,
        reports: parse_report_blocks(&mut r, count)?,
    })
}

fn parse_sdes(body: &[u8], count: u8) -> Result<Sdes, &'static str> {
    let mut r = Reader::new(body);
    let mut chunks = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let ssrc = r.u32().ok_or("SDES chunk count exceeds packet length")?;
        let mut chunk = SdesChunk {
            ssrc,
            ..SdesChunk::default()
        };
        // A missing END octet at the very end of the packet is tolerated:
        // the item list is unambiguous there and some stacks omit it.
        while let Some(item_type) = r.u8() {
            if item_type == 0 {
                break;
            }
            let len = r.u8().ok_or("SDES item length missing")?;
            let text = r
                .take(usize::from(len))
                .ok_or("SDES item overruns packet")?;
            if item_type == SDES_CNAME && chunk.cname.is_none() {
                chunk.cname = Some(text_item(text));
            } else {
                chunk.other_items += 1;
            }
        }
        // Each chunk starts on a 32-bit boundary; the body starts on one
        // too, so aligning the position within the body is enough.
        let pos = body.len() - r.remaining();
        let pad = pos.next_multiple_of(4) - pos;
        // Short final padding is harmless: there is nothing after it.
        let _ = r.take(pad.min(r.remaining()));
        chunks.push(chunk);
    }
    Ok(Sdes { chunks })
}

/// Decodes an SDES item or BYE reason. Some stacks count a C string's
/// terminating NUL in the item length (sipnab's capture sends CNAME "c0\0");
/// tshark shows such text up to the NUL, and so does this.
fn text_item(text: &[u8]) -> String {
    let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
    String::from_utf8_lossy(text.get(..end).unwrap_or_default()).into_owned()
}

fn parse_bye(body: &[u8], count: u8) -> Result<Bye, &'static str> {
    let mut r = Reader::new(body);
    let mut ssrcs = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        ssrcs.push(r.u32().ok_or("BYE source count exceeds packet length")?);
    }
    let reason = match r.u8() {
        None | Some(0) => None,
        Some(len) => {
            let text = r
                .take(usize::from(len))
                .ok_or("BYE reason overruns packet")?;
            Some(text_item(text))
        }
    };
    Ok(Bye { ssrcs, reason })
}

fn parse_app(body: &[u8], subtype: u8) -> Result<App, &'static str> {
    let mut r = Reader::new(body);
    let ssrc = r.u32().ok_or("APP SSRC missing")?;
    let name = r.array::<4>().ok_or("APP name missing")?;
    Ok(App {
        subtype,
        ssrc,
        name,
        data_len: r.remaining(),
    })
}

fn parse_xr(body: &[u8]) -> Result<Xr, &'static str> {
    let mut r = Reader::new(body);
    let ssrc = r.u32().ok_or("XR sender SSRC missing")?;
    let mut blocks = Vec::new();
    while r.remaining() > 0 {
        let [bt, _type_specific, len_hi, len_lo] =
            r.array::<4>().ok_or("XR block header truncated")?;
        // Block length counts the words after the block header (RFC 3611 §3).
        let len = usize::from(u16::from_be_bytes([len_hi, len_lo])) * 4;
        let content = r.take(len).ok_or("XR block overruns packet")?;
        blocks.push(parse_xr_block(bt, content)?);
    }
    Ok(Xr { ssrc, blocks })
}

fn parse_xr_block(bt: u8, content: &[u8]) -> Result<XrBlock, &'static str> {
    let mut r = Reader::new(content);
    match bt {
        XR_BT_RRT => {
            if content.len() != 8 {
                return Err("XR Receiver Reference Time block length is not 2");
            }
            Ok(XrBlock::ReceiverReferenceTime(NtpTimestamp {
                seconds: r.u32().unwrap_or_default(),
                fraction: r.u32().unwrap_or_default(),
            }))
        }
        XR_BT_DLRR => {
            if !content
                .chunks_exact(DLRR_SUB_BLOCK_LEN)
                .remainder()
                .is_empty()
            {
                return Err("XR DLRR block length is not a multiple of 3");
            }
            let mut subs = Vec::with_capacity(content.len() / DLRR_SUB_BLOCK_LEN);
            while r.remaining() > 0 {
                subs.push(DlrrSubBlock {
                    ssrc: r.u32().unwrap_or_default(),
                    lrr: r.u32().unwrap_or_default(),
                    dlrr: r.u32().unwrap_or_default(),
                });
            }
            Ok(XrBlock::Dlrr(subs))
        }
        XR_BT_VOIP_METRICS => {
            if content.len() != VOIP_METRICS_LEN {
                return Err("XR VoIP Metrics block length is not 8");
            }
            Ok(XrBlock::VoipMetrics(parse_voip_metrics(&mut r)))
        }
        _ => Ok(XrBlock::Unknown {
            bt,
            len: content.len(),
        }),
    }
}

/// Decodes a VoIP Metrics block body; the caller has checked it is exactly
/// [`VOIP_METRICS_LEN`] bytes, so the defaults are never used.
fn parse_voip_metrics(r: &mut Reader<'_>) -> VoipMetrics {
    let ssrc = r.u32().unwrap_or_default();
    let [loss, discard, burst_d, gap_d] = r.array::<4>().unwrap_or_default();
    let burst_duration_ms = r.u16().unwrap_or_default();
    let gap_duration_ms = r.u16().unwrap_or_default();
    let round_trip_delay_ms = r.u16().unwrap_or_default();
    let end_system_delay_ms = r.u16().unwrap_or_default();
    let [signal, noise, rerl, gmin] = r.array::<4>().unwrap_or_default();
    let [r_factor, ext_r_factor, mos_lq, mos_cq] = r.array::<4>().unwrap_or_default();
    let [rx_config, _reserved] = r.array::<2>().unwrap_or_default();
    VoipMetrics {
        ssrc,
        loss_rate: per_256(loss),
        discard_rate: per_256(discard),
        burst_density: per_256(burst_d),
        gap_density: per_256(gap_d),
        burst_duration_ms,
        gap_duration_ms,
        round_trip_delay_ms,
        end_system_delay_ms,
        signal_level: dbm0(signal),
        noise_level: dbm0(noise),
        rerl: (rerl != XR_UNAVAILABLE).then_some(rerl),
        gmin,
        r_factor: r_factor_value(r_factor),
        ext_r_factor: r_factor_value(ext_r_factor),
        mos_lq: mos_value(mos_lq),
        mos_cq: mos_value(mos_cq),
        rx_config: RxConfig::from_octet(rx_config),
        jb_nominal: r.u16().unwrap_or_default(),
        jb_maximum: r.u16().unwrap_or_default(),
        jb_abs_max: r.u16().unwrap_or_default(),
    }
}

/// RFC 3611 rates and densities are fixed point with the binary point at
/// the left edge, i.e. n/256.
fn per_256(v: u8) -> f64 {
    f64::from(v) / 256.0
}

/// Signed dBm0 level; 127 is "unavailable" (RFC 3611 §4.7.4).
fn dbm0(v: u8) -> Option<i8> {
    (v != XR_UNAVAILABLE).then_some(i8::from_be_bytes([v]))
}

/// R factor 0..=100; 127 means unavailable and anything else above 100 is
/// not an R factor, so both become `None`.
fn r_factor_value(v: u8) -> Option<u8> {
    (v <= 100).then_some(v)
}

/// MOS × 10 in 10..=50; 127 means unavailable, and values outside the MOS
/// scale are garbage, so both become `None`.
fn mos_value(v: u8) -> Option<f64> {
    (10..=50).contains(&v).then(|| f64::from(v) / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds one RTCP packet with a correct length field; `body` must be
    /// whole words.
    fn packet(count: u8, pt: u8, body: &[u8]) -> Vec<u8> {
        assert_eq!(body.len() % 4, 0, "test body must be whole 32-bit words");
        let words = u16::try_from(body.len() / 4).expect("test body too long");
        let mut v = vec![0x80 | count, pt];
        v.extend_from_slice(&words.to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn report_block_bytes(rb: &ReportBlock) -> Vec<u8> {
        let mut v = rb.ssrc.to_be_bytes().to_vec();
        let cum = rb.cumulative_lost.to_be_bytes();
        v.extend_from_slice(&[rb.fraction_lost, cum[1], cum[2], cum[3]]);
        for w in [rb.ext_highest_seq, rb.jitter, rb.lsr, rb.dlsr] {
            v.extend_from_slice(&w.to_be_bytes());
        }
        v
    }

    fn sample_blocks() -> [ReportBlock; 2] {
        [
            ReportBlock {
                ssrc: 0x1111_2222,
                fraction_lost: 64,
                cumulative_lost: 1234,
                ext_highest_seq: 0x0001_0005,
                jitter: 160,
                lsr: 0xb705_2000,
                dlsr: 0x0005_4000,
            },
            ReportBlock {
                ssrc: 0x3333_4444,
                fraction_lost: 0,
                cumulative_lost: -3,
                ext_highest_seq: 65535,
                jitter: 7,
                lsr: 0,
                dlsr: 0,
            },
        ]
    }

    fn sr_bytes() -> Vec<u8> {
        let mut body = Vec::new();
        for w in [0xdead_beef_u32, 0xdd3a_c170, 0x4d61_4df8, 32000, 200, 32000] {
            body.extend_from_slice(&w.to_be_bytes());
        }
        for rb in sample_blocks() {
            body.extend(report_block_bytes(&rb));
        }
        packet(2, PT_SR, &body)
    }

    fn sdes_bytes(ssrc: u32, cname: &str) -> Vec<u8> {
        let mut body = ssrc.to_be_bytes().to_vec();
        body.extend_from_slice(&[SDES_CNAME, u8::try_from(cname.len()).expect("short cname")]);
        body.extend_from_slice(cname.as_bytes());
        // A TOOL item, then END and padding to the word boundary.
        body.extend_from_slice(&[6, 3, b'v', b'q', b'p', 0]);
        body.resize(body.len().next_multiple_of(4), 0);
        packet(1, PT_SDES, &body)
    }

    fn bye_bytes(ssrc: u32, reason: &str) -> Vec<u8> {
        let mut body = ssrc.to_be_bytes().to_vec();
        body.push(u8::try_from(reason.len()).expect("short reason"));
        body.extend_from_slice(reason.as_bytes());
        body.resize(body.len().next_multiple_of(4), 0);
        packet(1, PT_BYE, &body)
    }

    fn voip_metrics_block() -> Vec<u8> {
        let words: [[u8; 4]; 9] = [
            // BT 7, reserved, block length 8.
            [XR_BT_VOIP_METRICS, 0, 0, 8],
            // SSRC of source.
            [0x0a, 0x0b, 0x0c, 0x0d],
            // Loss 13/256, discard 26/256, burst density 128, gap density 5.
            [13, 26, 128, 5],
            // Burst duration 120 ms, gap duration 520 ms.
            [0x00, 0x78, 0x02, 0x08],
            // Round trip 45 ms, end system delay 60 ms.
            [0x00, 0x2d, 0x00, 0x3c],
            // Signal -18 dBm0, noise -62 dBm0, RERL unavailable, Gmin 16.
            [0xee, 0xc2, 127, 16],
            // R 82, external R unavailable, MOS-LQ 3.8, MOS-CQ 3.6.
            [82, 127, 38, 36],
            // RX config: PLC standard, JB adaptive, rate 5; JB nominal 20 ms.
            [0b1111_0101, 0, 0x00, 0x14],
            // JB maximum 60 ms, absolute maximum 200 ms.
            [0x00, 0x3c, 0x00, 0xc8],
        ];
        words.concat()
    }

    fn xr_bytes() -> Vec<u8> {
        let mut body = 0x5555_6666_u32.to_be_bytes().to_vec();
        // DLRR with two sub-blocks.
        body.extend_from_slice(&[XR_BT_DLRR, 0, 0, 6]);
        for w in [0x0102_0304_u32, 0xb705_2000, 0x0005_4000, 0x0a0b_0c0d, 0, 0] {
            body.extend_from_slice(&w.to_be_bytes());
        }
        // Receiver Reference Time.
        body.extend_from_slice(&[XR_BT_RRT, 0, 0, 2]);
        body.extend_from_slice(&0xdd3a_c170_u32.to_be_bytes());
        body.extend_from_slice(&0x4d61_4df8_u32.to_be_bytes());
        body.extend(voip_metrics_block());
        // An unknown block type (BT 6, Statistics Summary) with 2 words.
        body.extend_from_slice(&[6, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8]);
        packet(0, PT_XR, &body)
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test hex"))
            .collect()
    }

    fn only(data: &[u8]) -> RtcpPacket {
        let c = parse_compound(data).expect("valid test packet");
        assert!(!c.truncated, "{:?}", c.error);
        assert_eq!(c.packets.len(), 1);
        c.packets.into_iter().next().expect("one packet")
    }

    #[test]
    fn sender_report_with_two_blocks() {
        let RtcpPacket::Sr(sr) = only(&sr_bytes()) else {
            panic!("not an SR");
        };
        assert_eq!(sr.ssrc, 0xdead_beef);
        assert_eq!(
            sr.ntp,
            NtpTimestamp {
                seconds: 0xdd3a_c170,
                fraction: 0x4d61_4df8
            }
        );
        assert_eq!(sr.ntp.middle32(), 0xc170_4d61);
        assert_eq!(sr.rtp_ts, 32000);
        assert_eq!(sr.packet_count, 200);
        assert_eq!(sr.octet_count, 32000);
        assert_eq!(sr.reports, sample_blocks());
        let [a, b] = [&sr.reports[0], &sr.reports[1]];
        assert_eq!(a.cumulative_lost, 1234);
        assert_eq!(b.cumulative_lost, -3, "24-bit 0xFFFFFD sign-extends");
        assert!((a.fraction_lost_ratio() - 0.25).abs() < 1e-12);
        assert!((a.dlsr_seconds() - 5.25).abs() < 1e-12);
        assert_eq!(a.jitter_ms(8000), Some(20.0));
        assert_eq!(a.jitter_ms(0), None);
    }

    #[test]
    fn cumulative_lost_extremes() {
        for (wire, want) in [
            ([0x7f, 0xff, 0xff], 0x7f_ffff),
            ([0x80, 0x00, 0x00], -0x80_0000),
            ([0xff, 0xff, 0xff], -1),
            ([0, 0, 0], 0),
        ] {
            let mut body = 9_u32.to_be_bytes().to_vec();
            let mut rb = report_block_bytes(&ReportBlock::default());
            rb[5..8].copy_from_slice(&wire);
            body.extend(rb);
            let RtcpPacket::Rr(rr) = only(&packet(1, PT_RR, &body)) else {
                panic!("not an RR");
            };
            assert_eq!(rr.reports[0].cumulative_lost, want);
        }
    }

    #[test]
    fn receiver_report() {
        let mut body = 0x0102_0304_u32.to_be_bytes().to_vec();
        body.extend(report_block_bytes(&sample_blocks()[1]));
        let RtcpPacket::Rr(rr) = only(&packet(1, PT_RR, &body)) else {
            panic!("not an RR");
        };
        assert_eq!(rr.ssrc, 0x0102_0304);
        assert_eq!(rr.reports, vec![sample_blocks()[1]]);

        // RR with no blocks is the 8-byte minimum.
        let RtcpPacket::Rr(rr) = only(&packet(0, PT_RR, &7_u32.to_be_bytes())) else {
            panic!("not an RR");
        };
        assert_eq!((rr.ssrc, rr.reports.len()), (7, 0));
    }

    #[test]
    fn report_count_beyond_length_is_malformed() {
        let mut body = 1_u32.to_be_bytes().to_vec();
        body.extend(report_block_bytes(&sample_blocks()[0]));
        let err = parse_compound(&packet(2, PT_RR, &body)).expect_err("count 2, room for 1");
        assert!(
            matches!(err, RtcpError::Malformed { pt: PT_RR, .. }),
            "{err}"
        );
    }

    #[test]
    fn sdes_with_cname() {
        let RtcpPacket::Sdes(sdes) = only(&sdes_bytes(0xabcd, "alice@10.0.0.1")) else {
            panic!("not SDES");
        };
        assert_eq!(
            sdes.chunks,
            vec![SdesChunk {
                ssrc: 0xabcd,
                cname: Some("alice@10.0.0.1".into()),
                other_items: 1,
            }]
        );
    }

    #[test]
    fn sdes_two_chunks_and_item_overrun() {
        // Chunk 1: CNAME "ab" + END = 4 + 2 + 2 + 1 -> padded to 12.
        // Chunk 2: no items, just END -> 4 + 1 padded to 8.
        let body = [
            0, 0, 0, 1, 1, 2, b'a', b'b', 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0,
        ];
        let RtcpPacket::Sdes(sdes) = only(&packet(2, PT_SDES, &body)) else {
            panic!("not SDES");
        };
        assert_eq!(sdes.chunks.len(), 2);
        assert_eq!(sdes.chunks[0].cname.as_deref(), Some("ab"));
        assert_eq!((sdes.chunks[1].ssrc, &sdes.chunks[1].cname), (2, &None));

        // An item claiming 200 bytes in an 8-byte body.
        let bad = [0, 0, 0, 1, 1, 200, b'a', b'b'];
        assert!(matches!(
            parse_compound(&packet(1, PT_SDES, &bad)),
            Err(RtcpError::Malformed { pt: PT_SDES, .. })
        ));
    }

    #[test]
    fn bye_with_reason() {
        let RtcpPacket::Bye(bye) = only(&bye_bytes(0x4242, "session shutdown")) else {
            panic!("not BYE");
        };
        assert_eq!(bye.ssrcs, vec![0x4242]);
        assert_eq!(bye.reason.as_deref(), Some("session shutdown"));

        let RtcpPacket::Bye(bye) = only(&packet(0, PT_BYE, &[])) else {
            panic!("not BYE");
        };
        assert_eq!(bye, Bye::default());
    }

    #[test]
    fn app_packet() {
        let mut body = 0x0a0b_0c0d_u32.to_be_bytes().to_vec();
        body.extend_from_slice(b"QOS1");
        body.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        let RtcpPacket::App(app) = only(&packet(3, PT_APP, &body)) else {
            panic!("not APP");
        };
        assert_eq!(
            app,
            App {
                subtype: 3,
                ssrc: 0x0a0b_0c0d,
                name: *b"QOS1",
                data_len: 8
            }
        );
        assert_eq!(app.name_str(), Some("QOS1"));
    }

    #[test]
    fn feedback_and_unknown_types_are_skipped_by_length() {
        let mut nack = 1_u32.to_be_bytes().to_vec();
        nack.extend_from_slice(&2_u32.to_be_bytes());
        nack.extend_from_slice(&[0, 5, 0, 0]);
        let mut data = packet(1, PT_RTPFB, &nack);
        data.extend(packet(1, PT_PSFB, &nack[..8]));
        data.extend(packet(0, 210, &[9; 12]));
        data.extend(packet(0, PT_RR, &3_u32.to_be_bytes()));
        let c = parse_compound(&data).expect("valid");
        assert!(!c.truncated);
        assert_eq!(
            c.packets[..3],
            [
                RtcpPacket::Feedback {
                    pt: PT_RTPFB,
                    ssrc: 1
                },
                RtcpPacket::Feedback {
                    pt: PT_PSFB,
                    ssrc: 1
                },
                RtcpPacket::Unknown { pt: 210 },
            ]
        );
        assert!(matches!(&c.packets[3], RtcpPacket::Rr(rr) if rr.ssrc == 3));
    }

    /// tshark 4.x decodes these same bytes (via text2pcap) to the values
    /// asserted here, including "RERL: Unavailable" for 127.
    #[test]
    fn xr_with_dlrr_rrt_voip_metrics_and_unknown() {
        let RtcpPacket::Xr(xr) = only(&xr_bytes()) else {
            panic!("not XR");
        };
        assert_eq!(xr.ssrc, 0x5555_6666);
        assert_eq!(xr.blocks.len(), 4);
        assert_eq!(
            xr.blocks[0],
            XrBlock::Dlrr(vec![
                DlrrSubBlock {
                    ssrc: 0x0102_0304,
                    lrr: 0xb705_2000,
                    dlrr: 0x0005_4000
                },
                DlrrSubBlock {
                    ssrc: 0x0a0b_0c0d,
                    lrr: 0,
                    dlrr: 0
                },
            ])
        );
        assert_eq!(
            xr.blocks[1],
            XrBlock::ReceiverReferenceTime(NtpTimestamp {
                seconds: 0xdd3a_c170,
                fraction: 0x4d61_4df8
            })
        );
        let XrBlock::VoipMetrics(vm) = &xr.blocks[2] else {
            panic!("not VoIP Metrics: {:?}", xr.blocks[2]);
        };
        let want = VoipMetrics {
            ssrc: 0x0a0b_0c0d,
            loss_rate: 13.0 / 256.0,
            discard_rate: 26.0 / 256.0,
            burst_density: 0.5,
            gap_density: 5.0 / 256.0,
            burst_duration_ms: 120,
            gap_duration_ms: 520,
            round_trip_delay_ms: 45,
            end_system_delay_ms: 60,
            signal_level: Some(-18),
            noise_level: Some(-62),
            rerl: None,
            gmin: 16,
            r_factor: Some(82),
            ext_r_factor: None,
            mos_lq: Some(3.8),
            mos_cq: Some(3.6),
            rx_config: RxConfig {
                plc: PlcMethod::Standard,
                jba: JitterBufferMode::Adaptive,
                jb_rate: 5,
            },
            jb_nominal: 20,
            jb_maximum: 60,
            jb_abs_max: 200,
        };
        assert_eq!(*vm, want);
        assert_eq!(xr.blocks[3], XrBlock::Unknown { bt: 6, len: 8 });
    }

    #[test]
    fn voip_metrics_unavailable_sentinels() {
        let mut block = voip_metrics_block();
        // signal, noise, RERL, gmin, R, ext R, MOS-LQ, MOS-CQ
        block[20..28].copy_from_slice(&[127, 127, 127, 16, 127, 127, 127, 127]);
        let mut body = 1_u32.to_be_bytes().to_vec();
        body.extend(block);
        let RtcpPacket::Xr(xr) = only(&packet(0, PT_XR, &body)) else {
            panic!("not XR");
        };
        let XrBlock::VoipMetrics(vm) = xr.blocks[0] else {
            panic!("not VoIP Metrics");
        };
        assert_eq!(
            (vm.signal_level, vm.noise_level, vm.rerl),
            (None, None, None)
        );
        assert_eq!((vm.r_factor, vm.ext_r_factor), (None, None));
        assert_eq!((vm.mos_lq, vm.mos_cq), (None, None));
    }

    #[test]
    fn xr_bad_block_lengths_are_malformed() {
        // VoIP Metrics with block length 7 instead of 8.
        let mut block = voip_metrics_block();
        block[3] = 7;
        block.truncate(4 + 28);
        let mut body = 1_u32.to_be_bytes().to_vec();
        body.extend(block);
        assert!(matches!(
            parse_compound(&packet(0, PT_XR, &body)),
            Err(RtcpError::Malformed { pt: PT_XR, .. })
        ));
        // A block claiming more words than the packet has.
        let body = [0, 0, 0, 1, 99, 0, 0, 9, 0, 0, 0, 0];
        assert!(matches!(
            parse_compound(&packet(0, PT_XR, &body)),
            Err(RtcpError::Malformed { pt: PT_XR, .. })
        ));
        // DLRR whose length is not a multiple of 3 words.
        let body = [0, 0, 0, 1, XR_BT_DLRR, 0, 0, 1, 0, 0, 0, 0];
        assert!(matches!(
            parse_compound(&packet(0, PT_XR, &body)),
            Err(RtcpError::Malformed { pt: PT_XR, .. })
        ));
    }

    fn sr_sdes_bye() -> Vec<u8> {
        let mut data = sr_bytes();
        data.extend(sdes_bytes(0xdead_beef, "bob@example"));
        data.extend(bye_bytes(0xdead_beef, "bye"));
        data
    }

    #[test]
    fn compound_sr_sdes_bye() {
        let data = sr_sdes_bye();
        assert!(looks_like_rtcp(&data));
        let c = parse_compound(&data).expect("valid compound");
        assert!(!c.truncated);
        assert_eq!(c.error, None);
        assert_eq!(c.packets.len(), 3);
        assert!(matches!(&c.packets[0], RtcpPacket::Sr(sr) if sr.reports.len() == 2));
        assert!(matches!(&c.packets[1], RtcpPacket::Sdes(s)
            if s.chunks[0].cname.as_deref() == Some("bob@example")));
        assert!(matches!(&c.packets[2], RtcpPacket::Bye(b) if b.reason.as_deref() == Some("bye")));
        let blocks: Vec<_> = c.report_blocks().collect();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[1], (0xdead_beef, &sample_blocks()[1]));
    }

    #[test]
    fn padding_on_last_packet() {
        let mut data = sr_bytes();
        // RR with 8 bytes of padding: SSRC word + 8 pad bytes, count last.
        let mut body = 0x77_u32.to_be_bytes().to_vec();
        body.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 8]);
        let mut rr = packet(0, PT_RR, &body);
        rr[0] |= 0x20;
        data.extend(rr);
        let c = parse_compound(&data).expect("valid padded compound");
        assert!(!c.truncated);
        assert!(
            matches!(&c.packets[1], RtcpPacket::Rr(rr) if rr.ssrc == 0x77 && rr.reports.is_empty())
        );

        // Padding that would leave the SSRC short makes the RR malformed.
        let mut short = packet(0, PT_RR, &[0, 0, 0, 4]);
        short[0] |= 0x20;
        assert!(matches!(
            parse_compound(&short),
            Err(RtcpError::Malformed { pt: PT_RR, .. })
        ));
        // A count of zero, and a count bigger than the body, are bad padding.
        for pad in [0_u8, 9] {
            let mut bad = packet(0, PT_RR, &[0, 0, 0, 0, 0, 0, 0, pad]);
            bad[0] |= 0x20;
            assert!(
                matches!(parse_compound(&bad), Err(RtcpError::BadPadding { padding, .. }) if padding == pad)
            );
        }
    }

    #[test]
    fn bad_version_and_packet_type() {
        let mut data = sr_bytes();
        data[0] = (data[0] & 0x3f) | 0x40; // version 1
        assert_eq!(
            parse_compound(&data),
            Err(RtcpError::BadVersion {
                offset: 0,
                version: 1
            })
        );
        assert!(!looks_like_rtcp(&data));
        let mut data = sr_bytes();
        data[1] = 96;
        assert_eq!(
            parse_compound(&data),
            Err(RtcpError::BadPacketType { offset: 0, pt: 96 })
        );
    }

    #[test]
    fn later_bad_packet_sets_truncated() {
        let mut data = sr_bytes();
        let sr_len = data.len();
        let mut sdes = sdes_bytes(1, "x");
        sdes[0] = 0x41; // version 1 in the second packet
        data.extend(sdes);
        let c = parse_compound(&data).expect("first packet is fine");
        assert!(c.truncated);
        assert_eq!(c.packets.len(), 1);
        assert_eq!(
            c.error,
            Some(RtcpError::BadVersion {
                offset: sr_len,
                version: 1
            })
        );
    }

    #[test]
    fn every_prefix_of_a_compound_is_handled() {
        let mut data = sr_sdes_bye();
        data.extend(xr_bytes());
        let first_len = 4 + 24 + 48;
        for end in 0..=data.len() {
            let prefix = &data[..end];
            match parse_compound(prefix) {
                Ok(c) => {
                    assert!(!c.packets.is_empty());
                    // Whole packets only: a prefix that splits one is flagged.
                    assert_eq!(c.truncated, c.error.is_some());
                }
                Err(e) => {
                    // Only a cut inside the first packet may fail outright.
                    assert!(end < first_len, "prefix {end}: {e}");
                    assert!(
                        matches!(e, RtcpError::Truncated { .. }),
                        "prefix {end}: {e}"
                    );
                }
            }
            let _ = looks_like_rtcp(prefix);
            let _ = is_muxed_rtcp(prefix);
        }
        let full = parse_compound(&data).expect("full compound");
        assert_eq!((full.packets.len(), full.truncated), (4, false));
        let cut = parse_compound(&data[..data.len() - 1]).expect("first packet intact");
        assert!(cut.truncated);
        assert_eq!(cut.packets.len(), 3);
    }

    /// Deterministic xorshift64 so a failure reproduces exactly.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn byte(&mut self) -> u8 {
            self.next().to_le_bytes()[0]
        }
    }

    #[test]
    fn fuzz_random_and_mutated_bytes_never_panic() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut seed_data = sr_sdes_bye();
        seed_data.extend(xr_bytes());
        let mut parsed = 0_usize;
        for i in 0..100_000 {
            let data: Vec<u8> = match i % 3 {
                // Pure noise.
                0 => {
                    let len = usize::from(rng.byte() % 128);
                    (0..len).map(|_| rng.byte()).collect()
                }
                // Plausible headers with random small lengths and bodies,
                // so the per-type parsers see hostile input, not just the
                // header checks.
                1 => {
                    let mut v = Vec::new();
                    for _ in 0..(1 + rng.byte() % 4) {
                        let words = rng.byte() % 12;
                        v.push(0x80 | (rng.byte() & 0x3f));
                        v.push(200 + rng.byte() % 8);
                        v.extend_from_slice(&[0, words]);
                        let extra = usize::from(rng.byte() % 3);
                        for _ in 0..usize::from(words) * 4 + extra.saturating_sub(1) {
                            v.push(rng.byte());
                        }
                    }
                    v
                }
                // A valid compound with a few bytes flipped.
                _ => {
                    let mut v = seed_data.clone();
                    for _ in 0..(1 + rng.byte() % 4) {
                        let at = usize::try_from(rng.next() % v.len() as u64).unwrap_or(0);
                        if let Some(b) = v.get_mut(at) {
                            *b ^= rng.byte();
                        }
                    }
                    v
                }
            };
            if parse_compound(&data).is_ok() {
                parsed += 1;
            }
            let _ = looks_like_rtcp(&data);
            let _ = is_muxed_rtcp(&data);
        }
        // Not a correctness claim, just proof the generators reach the
        // parsers rather than all failing at the version check.
        assert!(parsed > 10_000, "only {parsed} inputs parsed");
    }

    #[test]
    fn rtt_rfc3550_example() {
        // RFC 3550 §6.4.1 figure: A = 0xb7108000, LSR = 0xb7052000,
        // DLSR = 0x00054000 (5.25 s) -> 0x00062000 = 6.125 s.
        let rtt = rtt_rfc3550(0xb710_8000, 0xb705_2000, 0x0005_4000);
        assert_eq!(rtt, 0x0006_2000);
        assert!((f64::from(rtt) / 65536.0 - 6.125).abs() < 1e-12);
        // Wrapping: A just past a 16-bit-seconds rollover gives 1.25 s.
        assert_eq!(
            rtt_rfc3550(0x0000_8000, 0xffff_0000, 0x0000_4000),
            0x0001_4000
        );
    }

    #[test]
    fn rtt_passive_observer() {
        let rtt = rtt_from_report(10.5, 4.0, 6 * 65536);
        assert!((rtt - 0.5).abs() < 1e-12);
        assert!(
            rtt_from_report(10.0, 4.0, 7 * 65536) < 0.0,
            "negative is reported as is"
        );
    }

    #[test]
    fn looks_like_rtcp_accepts_sr_rr_and_rejects_rtp() {
        assert!(looks_like_rtcp(&sr_bytes()));
        assert!(looks_like_rtcp(&sr_sdes_bye()));
        assert!(looks_like_rtcp(&packet(0, PT_RR, &1_u32.to_be_bytes())));
        assert!(looks_like_rtcp(&xr_bytes()));
        // Length field past the end of the datagram.
        assert!(!looks_like_rtcp(&sr_bytes()[..28]));
        // Not a multiple of 4 (e.g. SRTCP with an 80-bit tag).
        let mut odd = sr_bytes();
        odd.extend_from_slice(&[0; 14]);
        assert!(!looks_like_rtcp(&odd));
        assert!(is_muxed_rtcp(&odd));
        assert!(!looks_like_rtcp(&[]));
        assert!(!looks_like_rtcp(&[0x80, 200, 0]));

        // 172-byte RTP packets (12-byte header + 160 bytes of G.711) with
        // and without the marker bit: PT 0, 8, 96, 111.
        for pt in [0_u8, 8, 96, 111] {
            for marker in [0, 0x80] {
                let mut rtp = vec![0x80, marker | pt, 0x12, 0x34];
                rtp.extend_from_slice(&[0, 0, 0xa0, 0, 0xde, 0xad, 0xbe, 0xef]);
                rtp.extend_from_slice(&[0xd5; 160]);
                assert!(!looks_like_rtcp(&rtp), "PT {pt} marker {marker}");
                assert!(!is_muxed_rtcp(&rtp), "PT {pt} marker {marker}");
            }
        }
        // The RFC 5761 §4 collision: marker set, PT 72 reads as SR (200),
        // and a small sequence number reads as a length that fits.
        let mut collide = vec![0x80, 0x80 | 72, 0x00, 0x05];
        collide.extend_from_slice(&[0; 168]);
        assert!(looks_like_rtcp(&collide));
        assert!(is_muxed_rtcp(&collide));
    }

    // --- Real captures (payloads extracted with tshark, fields as tshark
    // --- decodes them with `-V -Y rtcp`).

    /// nDPI rtcp_multiple_pkts_in_the_same_datagram.pcap frame 1
    /// (FreeSWITCH, t = 0.000000): SR + SDES.
    const NDPI_SR: &str = "81c8000c5d931534dd3ac1704d614df800007d00000000c800007d0000000000000000010000000000000000000000000000000081ca000e5d931534010835643933313533340725467265655357495443482e6f7267202d2d20436f6d6520746f20436c7565436f6e2e636f6d000000";
    /// Same capture, frame 4 (t = 4.028126): RR + SDES answering frame 1.
    const NDPI_RR: &str = "81c9000701932db45d931534000000010000bf8b00000006c1704d610004051c81ca000e01932db40107313933326462340725467265655357495443482e6f7267202d2d20436f6d6520746f20436c7565436f6e2e636f6d00000000";
    /// sngrep aaa.pcap frame 633: SR + SDES (CNAME, TOOL) + BYE.
    const SNGREP_SR_SDES_BYE: &str = "80c800063796cb7142c907ca5efac603000024c3000000090000060c81ca000b3796cb71011d31313839343239372d3434333261396638403139322e3136382e312e3206055349505053000081cb00063796cb711073657373696f6e2073687574646f776e000000";
    /// sipnab rtp-protocol.pcap frame 9: SR with no blocks + SDES.
    const SIPNAB_SR: &str =
        "80c8000644c61afb001cd3b3da1cab0c32a1053c00000001000000a081ca000344c61afb0103633000000000";
    /// nDPI stun_google_meet.pcapng frame 153: SRTCP, clear APP header then
    /// ciphertext.
    const MEET_SRTCP: &str = "8dcc0004d2b3ec9f360e0dd519a8e700712f8d52b5365490d97b98067f71560f8b051903541489f736a996948eddbc117a555e83a8f9032112a8d65a8000000a";

    #[test]
    fn real_freeswitch_sr_and_rr() {
        let sr_data = hex(NDPI_SR);
        assert!(looks_like_rtcp(&sr_data));
        let c = parse_compound(&sr_data).expect("real SR");
        assert!(!c.truncated);
        let [RtcpPacket::Sr(sr), RtcpPacket::Sdes(sdes)] = &c.packets[..] else {
            panic!("expected SR + SDES: {:?}", c.packets);
        };
        assert_eq!(sr.ssrc, 0x5d93_1534);
        assert_eq!(sr.ntp.seconds, 3_711_615_344);
        assert_eq!(sr.ntp.fraction, 1_298_222_584);
        assert_eq!(sr.rtp_ts, 32000);
        assert_eq!(sr.packet_count, 200);
        assert_eq!(sr.octet_count, 32000);
        assert_eq!(
            sr.reports,
            vec![ReportBlock {
                ssrc: 0,
                fraction_lost: 0,
                cumulative_lost: 1,
                ext_highest_seq: 0,
                jitter: 0,
                lsr: 0,
                dlsr: 0
            }]
        );
        assert_eq!(sdes.chunks[0].ssrc, 0x5d93_1534);
        assert_eq!(sdes.chunks[0].cname.as_deref(), Some("5d931534"));
        assert_eq!(sdes.chunks[0].other_items, 1, "NOTE item");

        let rr_data = hex(NDPI_RR);
        assert!(looks_like_rtcp(&rr_data));
        let c = parse_compound(&rr_data).expect("real RR");
        let [RtcpPacket::Rr(rr), RtcpPacket::Sdes(sdes)] = &c.packets[..] else {
            panic!("expected RR + SDES: {:?}", c.packets);
        };
        assert_eq!(rr.ssrc, 0x0193_2db4);
        let block = ReportBlock {
            ssrc: 0x5d93_1534,
            fraction_lost: 0,
            cumulative_lost: 1,
            ext_highest_seq: 49035,
            jitter: 6,
            lsr: 0xc170_4d61,
            dlsr: 263_452,
        };
        assert_eq!(rr.reports, vec![block]);
        assert_eq!(sdes.chunks[0].cname.as_deref(), Some("1932db4"));

        // The RR's LSR names frame 1's SR; the probe saw them 4.028126 s
        // apart and the far end held the SR for 263452/65536 = 4.01996 s,
        // giving an 8.17 ms leg RTT.
        assert_eq!(block.lsr, sr.ntp.middle32());
        let rtt = rtt_from_report(4.028_126, 0.0, block.dlsr);
        assert!((rtt - 0.008_167).abs() < 1e-6, "rtt {rtt}");
    }

    #[test]
    fn real_sngrep_sr_sdes_bye() {
        let data = hex(SNGREP_SR_SDES_BYE);
        assert!(looks_like_rtcp(&data));
        let c = parse_compound(&data).expect("real compound");
        assert!(!c.truncated);
        let [RtcpPacket::Sr(sr), RtcpPacket::Sdes(sdes), RtcpPacket::Bye(bye)] = &c.packets[..]
        else {
            panic!("expected SR + SDES + BYE: {:?}", c.packets);
        };
        assert_eq!(sr.ssrc, 0x3796_cb71);
        assert_eq!(
            sr.ntp,
            NtpTimestamp {
                seconds: 1_120_470_986,
                fraction: 1_593_492_995
            }
        );
        assert_eq!(
            (sr.rtp_ts, sr.packet_count, sr.octet_count),
            (9411, 9, 1548)
        );
        assert!(sr.reports.is_empty());
        assert_eq!(
            sdes.chunks,
            vec![SdesChunk {
                ssrc: 0x3796_cb71,
                cname: Some("11894297-4432a9f8@192.168.1.2".into()),
                other_items: 1,
            }]
        );
        assert_eq!(bye.ssrcs, vec![0x3796_cb71]);
        assert_eq!(bye.reason.as_deref(), Some("session shutdown"));
    }

    #[test]
    fn real_sipnab_sr_without_blocks() {
        let data = hex(SIPNAB_SR);
        let c = parse_compound(&data).expect("real compound");
        let [RtcpPacket::Sr(sr), RtcpPacket::Sdes(sdes)] = &c.packets[..] else {
            panic!("expected SR + SDES: {:?}", c.packets);
        };
        assert_eq!(sr.ssrc, 0x44c6_1afb);
        assert_eq!(sr.ntp.seconds, 1_889_203);
        assert_eq!(sr.ntp.fraction, 3_659_311_884);
        assert_eq!(
            (sr.rtp_ts, sr.packet_count, sr.octet_count),
            (849_413_436, 1, 160)
        );
        assert_eq!(sdes.chunks[0].cname.as_deref(), Some("c0"));
        assert_eq!(sdes.chunks[0].other_items, 0);
    }

    /// nDPI discord_mid_flow.pcap frame 22: SRTCP whose clear SR is
    /// followed by ciphertext (tshark: "XR, version 0, Malformed").
    const DISCORD_SRTCP: &str = "80c8000600162ffde255cc8226162a136f4c01860d5c48136d2bc4f922cfd88df03aba863b5b3613ca452508a3711bda3e4e25071ca78906cc010080";

    #[test]
    fn real_srtcp_parses_clear_header_then_flags_damage() {
        let data = hex(DISCORD_SRTCP);
        let c = parse_compound(&data).expect("clear first packet");
        assert!(c.truncated);
        assert_eq!(
            c.error,
            Some(RtcpError::BadVersion {
                offset: 28,
                version: 0
            })
        );
        let [RtcpPacket::Sr(sr)] = &c.packets[..] else {
            panic!("expected SR: {:?}", c.packets);
        };
        assert_eq!(sr.ssrc, 0x0016_2ffd);
        assert_eq!(sr.ntp.seconds, 3_797_273_730);
        assert_eq!(sr.ntp.fraction, 638_986_771);
        assert_eq!(sr.rtp_ts, 1_867_252_102);
        assert_eq!(sr.packet_count, 224_151_571);
        assert_eq!(sr.octet_count, 1_831_585_017);

        let data = hex(MEET_SRTCP);
        assert!(is_muxed_rtcp(&data));
        let c = parse_compound(&data).expect("clear first packet");
        assert!(c.truncated);
        assert!(c.error.is_some());
        let [RtcpPacket::App(app)] = &c.packets[..] else {
            panic!("expected APP: {:?}", c.packets);
        };
        assert_eq!((app.subtype, app.ssrc, app.data_len), (13, 0xd2b3_ec9f, 8));
        assert_eq!(app.name_str(), None, "tshark: name is not a string");
    }
}
