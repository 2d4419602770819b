//! Link, network and transport decoding: from a captured frame to the UDP or TCP
//! payload and its endpoints.
//!
//! Zero-copy: the returned payload borrows the frame. Header fields are read with
//! `pnet_packet`; every length is checked against the captured bytes before a slice is
//! taken, so a truncated or lying header gives a [`DecodeError`], never a panic.

use std::net::{IpAddr, SocketAddr};

use pnet_packet::ethernet::EthernetPacket;
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::ipv6::Ipv6Packet;
use pnet_packet::tcp::TcpPacket;
use pnet_packet::udp::UdpPacket;
use pnet_packet::vlan::VlanPacket;

/// UDP port of VXLAN (RFC 7348); its payload is an inner Ethernet frame.
pub const VXLAN_PORT: u16 = 4789;
/// UDP port of GTP-U (3GPP TS 29.281); mobile-core captures carry RTP inside it.
pub const GTPU_PORT: u16 = 2152;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

/// Tunnels nest; a bound keeps a crafted packet from recursing without end.
const MAX_ENCAP_DEPTH: u8 = 4;

/// The capture's link-layer header type, from the pcap `DLT_`/`LINKTYPE_` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    /// DLT_EN10MB: Ethernet II, possibly with 802.1Q/QinQ tags.
    Ethernet,
    /// DLT_LINUX_SLL: Linux cooked capture v1 (the `any` device).
    LinuxSll,
    /// DLT_LINUX_SLL2: Linux cooked capture v2.
    LinuxSll2,
    /// DLT_RAW / LINKTYPE_RAW: the frame starts with an IPv4 or IPv6 header.
    RawIp,
    /// LINKTYPE_IPV4: raw IPv4.
    Ipv4,
    /// LINKTYPE_IPV6: raw IPv6.
    Ipv6,
    /// DLT_NULL / DLT_LOOP: BSD loopback with a 4-byte address family.
    Null,
}

impl LinkType {
    /// Maps a pcap link-type number; `None` for link types the probe does not decode.
    pub fn from_dlt(dlt: i32) -> Option<Self> {
        match dlt {
            1 => Some(Self::Ethernet),
            113 => Some(Self::LinuxSll),
            276 => Some(Self::LinuxSll2),
            // 12 and 14 are DLT_RAW on some BSDs; 101 is the portable LINKTYPE_RAW.
            12 | 14 | 101 => Some(Self::RawIp),
            228 => Some(Self::Ipv4),
            229 => Some(Self::Ipv6),
            0 | 108 => Some(Self::Null),
            _ => None,
        }
    }
}

/// Transport protocol of a decoded segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP datagram.
    Udp,
    /// One TCP segment (no stream reassembly).
    Tcp,
}

/// A transport payload with its endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    /// Sender address and port.
    pub src: SocketAddr,
    /// Receiver address and port.
    pub dst: SocketAddr,
    /// UDP or TCP.
    pub transport: Transport,
    /// Application bytes (UDP payload or TCP segment data).
    pub payload: &'a [u8],
}

/// What a frame turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A UDP or TCP payload.
    Segment(Segment<'a>),
    /// A non-first IP fragment, or a first fragment whose rest is elsewhere; counted only.
    Fragment,
    /// Valid, but not IP/UDP/TCP (ARP, ICMP, ...): not the probe's business.
    Ignored,
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A header claims more bytes than were captured.
    #[error("truncated {0} header")]
    Truncated(&'static str),
    /// The IP version nibble is neither 4 nor 6.
    #[error("bad IP version {0}")]
    BadIpVersion(u8),
    /// A header length field is impossible (e.g. IPv4 IHL < 5).
    #[error("bad {0} header length")]
    BadLength(&'static str),
}

/// Decodes one frame of the given link type down to its transport payload.
pub fn decode(link: LinkType, frame: &[u8]) -> Result<Decoded<'_>, DecodeError> {
    decode_at_depth(link, frame, 0)
}

fn decode_at_depth(link: LinkType, frame: &[u8], depth: u8) -> Result<Decoded<'_>, DecodeError> {
    match link {
        LinkType::Ethernet => ethernet(frame, depth),
        LinkType::LinuxSll => {
            // 16-byte header; the protocol (an EtherType) is the last 2 bytes.
            let proto = be16(frame, 14).ok_or(DecodeError::Truncated("SLL"))?;
            by_ethertype(proto, frame.get(16..).unwrap_or_default(), depth)
        }
        LinkType::LinuxSll2 => {
            // 20-byte header; the protocol comes first.
            let proto = be16(frame, 0).ok_or(DecodeError::Truncated("SLL2"))?;
            if frame.len() < 20 {
                return Err(DecodeError::Truncated("SLL2"));
            }
            by_ethertype(proto, &frame[20..], depth)
        }
        LinkType::RawIp => raw_ip(frame, depth),
        LinkType::Ipv4 => ipv4(frame, depth),
        LinkType::Ipv6 => ipv6(frame, depth),
        LinkType::Null => {
            let hdr = frame.get(..4).ok_or(DecodeError::Truncated("loopback"))?;
            // The family is in the capturing host's byte order, so accept either.
            let le = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
            let be = u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
            let body = &frame[4..];
            let family = if le < 256 { le } else { be };
            match family {
                2 => ipv4(body, depth),
                // AF_INET6 differs per OS: Linux 10, BSDs 24, 28 or 30.
                10 | 24 | 28 | 30 => ipv6(body, depth),
                _ => Ok(Decoded::Ignored),
            }
        }
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at + 2)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

fn ethernet(frame: &[u8], depth: u8) -> Result<Decoded<'_>, DecodeError> {
    let eth = EthernetPacket::new(frame).ok_or(DecodeError::Truncated("Ethernet"))?;
    let ethertype = eth.get_ethertype().0;
    by_ethertype(ethertype, &frame[14..], depth)
}

fn by_ethertype(ethertype: u16, body: &[u8], depth: u8) -> Result<Decoded<'_>, DecodeError> {
    let mut ethertype = ethertype;
    let mut body = body;
    // 802.1Q, 802.1ad and the pre-standard 0x9100 QinQ tag; stacked tags loop here.
    let mut tags = 0;
    while matches!(
        ethertype,
        ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD
    ) {
        tags += 1;
        if tags > 8 {
            return Err(DecodeError::BadLength("VLAN"));
        }
        let vlan = VlanPacket::new(body).ok_or(DecodeError::Truncated("802.1Q"))?;
        ethertype = vlan.get_ethertype().0;
        body = &body[4..];
    }
    match ethertype {
        ETHERTYPE_IPV4 => ipv4(body, depth),
        ETHERTYPE_IPV6 => ipv6(body, depth),
        ETHERTYPE_PPPOE_SESSION => pppoe(body, depth),
        _ => Ok(Decoded::Ignored),
    }
}

fn pppoe(body: &[u8], depth: u8) -> Result<Decoded<'_>, DecodeError> {
    // PPPoE session header (6 bytes) then a 2-byte PPP protocol.
    let proto = be16(body, 6).ok_or(DecodeError::Truncated("PPPoE"))?;
    let inner = &body[8..];
    match proto {
        0x0021 => ipv4(inner, depth),
        0x0057 => ipv6(inner, depth),
        _ => Ok(Decoded::Ignored),
    }
}

fn raw_ip(frame: &[u8], depth: u8) -> Result<Decoded<'_>, DecodeError> {
    let first = *frame.first().ok_or(DecodeError::Truncated("IP"))?;
    match first >> 4 {
        4 => ipv4(frame, depth),
        6 => ipv6(frame, depth),
        v => Err(DecodeError::BadIpVersion(v)),
    }
}

fn ipv4(pkt: &[u8], depth: u8) -> Result<Decoded<'_>, DecodeError> {
    let ip = Ipv4Packet::new(pkt).ok_or(DecodeError::Truncated("IPv4"))?;
    if ip.get_version() != 4 {
        return Err(DecodeError::BadIpVersion(ip.get_version()));
    }
    let ihl = usize::from(ip.get_header_length()) * 4;
    if ihl < 20 {
        return Err(DecodeError::BadLength("IPv4"));
    }
    let total = usize::from(ip.get_total_length());
    if total < ihl {
        return Err(DecodeError::BadLength("IPv4"));
    }
    // The captured frame may be shorter (snaplen) or longer (Ethernet padding) than the
    // datagram; the payload ends at whichever comes first.
    let end = total.min(pkt.len());
    if end < ihl {
        return Err(DecodeError::Truncated("IPv4"));
    }
    let frag_offset = ip.get_fragment_offset();
    let more_fragments = ip.get_flags() & 0b001 != 0;
    if frag_offset != 0 || more_fragments {
        return Ok(Decoded::Fragment);
    }
    let src = IpAddr::V4(ip.get_source());
    let dst = IpAddr::V4(ip.get_destination());
    transport(
        ip.get_next_level_protocol().0,
        src,
        dst,
        &pkt[ihl..end],
        depth,
    )
}

fn ipv6(pkt: &[u8], depth: u8) -> Result<Decoded<'_>, DecodeError> {
    let ip = Ipv6Packet::new(pkt).ok_or(DecodeError::Truncated("IPv6"))?;
    if ip.get_version() != 6 {
        return Err(DecodeError::BadIpVersion(ip.get_version()));
    }
    let payload_len = usize::from(ip.get_payload_length());
    let end = (40 + payload_len).min(pkt.len());
    let src = IpAddr::V6(ip.get_source());
    let dst = IpAddr::V6(ip.get_destination());
    let mut next = ip.get_next_header().0;
    let mut off = 40;
    // Walk the extension headers that can precede UDP/TCP.
    for _ in 0..8 {
        match next {
            // Hop-by-hop, routing, destination options: (next, len in 8-octet units - 1).
            0 | 43 | 60 => {
                let h = pkt
                    .get(off..off + 2)
                    .ok_or(DecodeError::Truncated("IPv6 ext"))?;
                next = h[0];
                off += (usize::from(h[1]) + 1) * 8;
            }
            44 => {
                let h = pkt
                    .get(off..off + 8)
                    .ok_or(DecodeError::Truncated("IPv6 frag"))?;
                let offset_flags = u16::from_be_bytes([h[2], h[3]]);
                if offset_flags & 0xfff9 != 0 {
                    // Non-zero offset or more-fragments: a piece of a larger datagram.
                    return Ok(Decoded::Fragment);
                }
                next = h[0];
                off += 8;
            }
            _ => break,
        }
    }
    if off > end {
        return Err(DecodeError::Truncated("IPv6 ext"));
    }
    transport(next, src, dst, &pkt[off..end], depth)
}

fn transport<'a>(
    proto: u8,
    src: IpAddr,
    dst: IpAddr,
    body: &'a [u8],
    depth: u8,
) -> Result<Decoded<'a>, DecodeError> {
    match proto {
        IPPROTO_UDP => {
            let udp = UdpPacket::new(body).ok_or(DecodeError::Truncated("UDP"))?;
            let len = usize::from(udp.get_length());
            if len < 8 {
                return Err(DecodeError::BadLength("UDP"));
            }
            let end = len.min(body.len());
            let payload = &body[8..end];
            let (sport, dport) = (udp.get_source(), udp.get_destination());
            if depth < MAX_ENCAP_DEPTH {
                if dport == VXLAN_PORT && payload.len() >= 8 && payload[0] & 0x08 != 0 {
                    return decode_at_depth(LinkType::Ethernet, &payload[8..], depth + 1);
                }
                if (dport == GTPU_PORT || sport == GTPU_PORT) && payload.len() >= 8 {
                    if let Some(inner) = gtpu_payload(payload) {
                        return raw_ip(inner, depth + 1);
                    }
                }
            }
            Ok(Decoded::Segment(Segment {
                src: SocketAddr::new(src, sport),
                dst: SocketAddr::new(dst, dport),
                transport: Transport::Udp,
                payload,
            }))
        }
        IPPROTO_TCP => {
            let tcp = TcpPacket::new(body).ok_or(DecodeError::Truncated("TCP"))?;
            let data_off = usize::from(tcp.get_data_offset()) * 4;
            if data_off < 20 {
                return Err(DecodeError::BadLength("TCP"));
            }
            let payload = body.get(data_off..).ok_or(DecodeError::Truncated("TCP"))?;
            Ok(Decoded::Segment(Segment {
                src: SocketAddr::new(src, tcp.get_source()),
                dst: SocketAddr::new(dst, tcp.get_destination()),
                transport: Transport::Tcp,
                payload,
            }))
        }
        _ => Ok(Decoded::Ignored),
    }
}

/// Returns the T-PDU of a GTPv1-U G-PDU (message type 255), or `None`.
fn gtpu_payload(b: &[u8]) -> Option<&[u8]> {
    let flags = *b.first()?;
    if flags >> 5 != 1 || b.get(1) != Some(&0xff) {
        return None;
    }
    let mut off = 8;
    if flags & 0x07 != 0 {
        // Sequence number, N-PDU number and next-extension-type fields.
        let mut next_ext = *b.get(off + 3)?;
        off += 4;
        while next_ext != 0 {
            let len = usize::from(*b.get(off)?) * 4;
            if len == 0 {
                return None;
            }
            next_ext = *b.get(off + len - 1)?;
            off += len;
        }
    }
    let inner = b.get(off..)?;
    match inner.first()? >> 4 {
        4 | 6 => Some(inner),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp_v4(payload: &[u8]) -> Vec<u8> {
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let total = (20 + 8 + payload.len()) as u16;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        let ulen = (8 + payload.len()) as u16;
        ip.extend_from_slice(&4000u16.to_be_bytes());
        ip.extend_from_slice(&5000u16.to_be_bytes());
        ip.extend_from_slice(&ulen.to_be_bytes());
        ip.extend_from_slice(&[0, 0]);
        ip.extend_from_slice(payload);
        ip
    }

    fn eth(ethertype: u16, body: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(body);
        f
    }

    #[test]
    fn ethernet_ipv4_udp() {
        let f = eth(0x0800, &udp_v4(b"hello"));
        let Ok(Decoded::Segment(s)) = decode(LinkType::Ethernet, &f) else {
            panic!("not decoded");
        };
        assert_eq!(s.payload, b"hello");
        assert_eq!(s.src.to_string(), "10.0.0.1:4000");
        assert_eq!(s.dst.to_string(), "10.0.0.2:5000");
    }

    #[test]
    fn qinq_and_padding() {
        let mut inner = vec![0, 20];
        inner.extend_from_slice(&0x0800u16.to_be_bytes());
        let mut body = vec![0, 10];
        body.extend_from_slice(&0x8100u16.to_be_bytes());
        body.extend_from_slice(&inner);
        body.extend_from_slice(&udp_v4(b"x"));
        body.extend_from_slice(&[0; 10]); // Ethernet padding after the datagram
        let f = eth(0x88a8, &body);
        let Ok(Decoded::Segment(s)) = decode(LinkType::Ethernet, &f) else {
            panic!("not decoded");
        };
        assert_eq!(s.payload, b"x");
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let f = eth(0x0800, &udp_v4(b"payload bytes"));
        for n in 0..f.len() {
            let _ = decode(LinkType::Ethernet, &f[..n]);
            let _ = decode(LinkType::LinuxSll, &f[..n]);
            let _ = decode(LinkType::Null, &f[..n]);
            let _ = decode(LinkType::RawIp, &f[..n]);
        }
    }

    #[test]
    fn fuzz_never_panics() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let base = eth(0x0800, &udp_v4(&[0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1]));
        for _ in 0..50_000 {
            let mut f = base.clone();
            for _ in 0..3 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x as usize) % f.len();
                f[i] = (x >> 32) as u8;
            }
            for lt in [LinkType::Ethernet, LinkType::LinuxSll2, LinkType::RawIp] {
                let _ = decode(lt, &f);
            }
        }
    }

    #[test]
    fn fragment_is_counted() {
        let mut ip = udp_v4(b"abc");
        ip[6] = 0x20; // more fragments
        assert_eq!(decode(LinkType::RawIp, &ip), Ok(Decoded::Fragment));
    }
}
