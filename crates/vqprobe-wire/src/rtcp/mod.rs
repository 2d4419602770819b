//! RTCP compound packet parser: RFC 3550 (SR, RR, SDES, BYE, APP), RFC 4585
//! feedback (recognised and skipped), RFC 3611 XR (Receiver Reference Time,
//! DLRR, Statistics Summary, VoIP Metrics) and the RFC 5761 RTP/RTCP demultiplexing tests.
//!
//! Sans-I/O in the style of rustls/smoltcp: the caller hands over one UDP
//! payload, gets typed values back, and nothing here can panic on the bytes,
//! whatever they are. Every read is bounds-checked, every length is checked
//! against what actually arrived.
//!
//! The round-trip helpers at the bottom implement both the in-spec RFC 3550
//! §6.4.1 computation and the passive-observer variant the probe uses
//! (`reference/ALGORITHMS.md` §5).

mod app;
mod bye;
mod ntp;
mod reader;
mod report;
mod sdes;
#[cfg(test)]
mod tests;
mod xr;

use thiserror::Error;

use reader::Reader;

pub use app::App;
pub use bye::Bye;
pub use ntp::NtpTimestamp;
pub use report::{ReceiverReport, ReportBlock, ReportBlocks, SenderReport};
pub use sdes::{Sdes, SdesChunk};
pub use xr::{
    DlrrSubBlock, JitterBufferMode, PlcMethod, RxConfig, StatSummary, TtlKind, VoipMetrics, Xr,
    XrBlock,
};

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
/// XR block type of a Statistics Summary block (RFC 3611 §4.6).
pub const XR_BT_STAT_SUMMARY: u8 = 6;
/// XR block type of a VoIP Metrics block (RFC 3611 §4.7).
pub const XR_BT_VOIP_METRICS: u8 = 7;

/// Every RTCP packet starts with a 4-byte header (V/P/count, PT, length).
pub(crate) const HEADER_LEN: usize = 4;
/// A report block in an SR or RR is six 32-bit words (RFC 3550 §6.4.1).
pub(crate) const REPORT_BLOCK_LEN: usize = 24;
/// RFC 3611 §4.7 fixes the VoIP Metrics block at 8 words after its header.
pub(crate) const VOIP_METRICS_LEN: usize = 32;
/// RFC 3611 §4.6 fixes the Statistics Summary block at 9 words after its header.
pub(crate) const STAT_SUMMARY_LEN: usize = 36;
/// RFC 3611 §4.5: each DLRR sub-block is SSRC, LRR, DLRR.
pub(crate) const DLRR_SUB_BLOCK_LEN: usize = 12;
/// RFC 3611 §4.7.4/§4.7.5: the octet value meaning "unavailable".
pub(crate) const XR_UNAVAILABLE: u8 = 127;

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
    pub packets: smallvec::SmallVec<[RtcpPacket; 3]>,
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
        PT_SR => RtcpPacket::Sr(report::parse_sr(body, count).map_err(malformed)?),
        PT_RR => RtcpPacket::Rr(report::parse_rr(body, count).map_err(malformed)?),
        PT_SDES => RtcpPacket::Sdes(sdes::parse_sdes(body, count).map_err(malformed)?),
        PT_BYE => RtcpPacket::Bye(bye::parse_bye(body, count).map_err(malformed)?),
        PT_APP => RtcpPacket::App(app::parse_app(body, count).map_err(malformed)?),
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
        PT_XR => RtcpPacket::Xr(xr::parse_xr(body).map_err(malformed)?),
        _ => RtcpPacket::Unknown { pt },
    };
    Ok((packet, offset + total))
}
