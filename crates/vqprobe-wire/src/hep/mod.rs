//! HEP, the Homer Encapsulation Protocol: what capture agents (Kamailio `siptrace`,
//! FreeSWITCH, rtpengine, heplify, Asterisk `res_hep`) send to a Homer capture server,
//! and what vqprobe sends to one.
//!
//! * HEPv1 and HEPv2 ([`v2`]): a fixed header (version, header length, address family,
//!   IP protocol, ports), the two addresses, in v2 a little-endian time header with a
//!   16-bit capture id, then the payload (always SIP).
//! * HEPv3 ([`v3`]): `HEP3`, a 16-bit total length, then chunks of (vendor, type,
//!   length, value); the generic chunks (vendor 0) carry addresses, ports, time, the
//!   payload's protocol type, capture id, password, correlation id and node name.
//!
//! [`parse`] accepts hostile bytes: every length is checked against what arrived,
//! nothing panics, and the result borrows the datagram. A HEPv3 stream over TCP is cut
//! into packets with [`v3::frame_len`]. [`v3::encode`] writes HEPv3.
//!
//! No crate on crates.io does this job well (the one `hep` crate parses with unchecked
//! slicing, turns binary payloads into strings and does not encode), so the codec is
//! written here, with vectors decoded by Kamailio's `sipcapture` in the tests.

#[cfg(test)]
mod tests;
pub mod v2;
pub mod v3;

use std::net::SocketAddr;

use thiserror::Error;

/// HEP payload type of SIP.
pub const PROTO_SIP: u8 = 1;
/// HEP payload type of RTP.
pub const PROTO_RTP: u8 = 4;
/// HEP payload type of RTCP (binary, or the JSON Homer stores).
pub const PROTO_RTCP: u8 = 5;
/// HEP payload type Kamailio's `sipcapture` stores as a report (`report_capture`).
pub const PROTO_REPORT: u8 = 32;
/// HEP payload type of a full MOS report (JSON), as the HEP3 type list names it.
pub const PROTO_MOS_REPORT: u8 = 0x22;
/// HEP payload type of log lines (JSON).
pub const PROTO_LOG: u8 = 100;

/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;
/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;

/// Why bytes are not a HEP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum HepError {
    /// Neither `HEP3` nor a version 1 or 2 header.
    #[error("not a HEP packet (first byte {0:#04x})")]
    NotHep(u8),
    /// The packet ends before a header, chunk or payload it announces.
    #[error("truncated HEP {0}")]
    Truncated(&'static str),
    /// A length field is impossible (a chunk shorter than its own header, a total
    /// length below the HEPv3 header).
    #[error("bad HEP {0} length")]
    BadLength(&'static str),
    /// The address family is neither IPv4 nor IPv6.
    #[error("unsupported HEP address family {0}")]
    BadFamily(u8),
    /// A HEPv3 packet lacks a chunk every packet needs.
    #[error("HEPv3 packet without {0}")]
    Missing(&'static str),
    /// The payload is compressed (chunk 0x0010), which vqprobe does not inflate.
    #[error("compressed HEP payload")]
    Compressed,
    /// What is to be encoded does not fit the 16-bit lengths of HEPv3.
    #[error("HEP packet too long ({0} bytes)")]
    TooLong(usize),
}

/// One HEP packet of any version, borrowing its datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HepPacket<'a> {
    /// 1, 2 or 3.
    pub version: u8,
    /// IP protocol of the captured packet (17 UDP, 6 TCP, others as sent).
    pub ip_proto: u8,
    /// Where the captured packet came from.
    pub src: SocketAddr,
    /// Where it went.
    pub dst: SocketAddr,
    /// Capture time (seconds, microseconds since the epoch); `None` in HEPv1 or a
    /// HEPv3 packet without time chunks.
    pub time: Option<(u32, u32)>,
    /// What the payload is ([`PROTO_SIP`], [`PROTO_RTCP`], …); HEPv1/v2 carry SIP.
    pub proto_type: u8,
    /// The agent's capture id (0 when absent).
    pub capture_id: u32,
    /// Authentication key (HEPv3 chunk 0x000e).
    pub auth_key: Option<&'a [u8]>,
    /// Correlation id (HEPv3 chunk 0x0011), the SIP Call-ID for RTCP and reports.
    pub correlation_id: Option<&'a [u8]>,
    /// Node name (HEPv3 chunk 0x0013).
    pub node_name: Option<&'a [u8]>,
    /// Keep-alive timer, seconds (HEPv3 chunk 0x000d).
    pub keepalive_s: Option<u16>,
    /// The captured payload.
    pub payload: &'a [u8],
}

impl HepPacket<'_> {
    /// Capture time in nanoseconds since the epoch, if the packet carries one.
    pub fn time_ns(&self) -> Option<i64> {
        self.time
            .map(|(s, us)| i64::from(s) * 1_000_000_000 + i64::from(us) * 1_000)
    }
}

/// Reads one HEP packet (v1, v2 or v3) from a datagram.
///
/// # Errors
/// [`HepError`] saying what was wrong; never panics.
pub fn parse(data: &[u8]) -> Result<HepPacket<'_>, HepError> {
    match data.first() {
        None => Err(HepError::Truncated("header")),
        Some(b'H') if data.starts_with(v3::MAGIC) => v3::parse(data),
        Some(1 | 2) => v2::parse(data),
        Some(&b) => Err(HepError::NotHep(b)),
    }
}

/// A bounds-checked big-endian cursor: every read is `None` past the end.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn new(rest: &'a [u8]) -> Self {
        Cursor { rest }
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
}
