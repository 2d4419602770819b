//! HEPv1 and HEPv2: the fixed-layout headers older agents (Kamailio `siptrace` with
//! `hep_version` 1 or 2, OpenSIPS 1.x) still send.
//!
//! Layout, as Kamailio's `hep.h` defines it: version (1 or 2), header length (the
//! version header plus the address header: 16 for IPv4, 40 for IPv6), address family
//! (2 IPv4, 10 IPv6), IP protocol, source and destination port (network order), the
//! source and destination address; in v2 then a time header in the sender's (in
//! practice little-endian) byte order — seconds, microseconds, a 16-bit capture id and
//! two bytes of padding — and then the SIP payload to the end of the datagram.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{Cursor, HepError, HepPacket, PROTO_SIP};

/// Version header: version, length, family, protocol, two ports.
const HEADER_LEN: usize = 8;
/// The v2 time header: `struct hep_timehdr` is 4 + 4 + 2 bytes, padded to 12.
const TIME_LEN: usize = 12;

/// Reads a HEPv1 or HEPv2 packet.
///
/// # Errors
/// [`HepError`] for a short packet or an unknown address family.
pub fn parse(data: &[u8]) -> Result<HepPacket<'_>, HepError> {
    let mut c = Cursor::new(data);
    let [version, hdr_len, family, ip_proto] = c.array().ok_or(HepError::Truncated("header"))?;
    let sport = u16::from_be_bytes(c.array().ok_or(HepError::Truncated("header"))?);
    let dport = u16::from_be_bytes(c.array().ok_or(HepError::Truncated("header"))?);
    if !matches!(version, 1 | 2) {
        return Err(HepError::NotHep(version));
    }
    let (src, dst, addr_len) = match family {
        2 => {
            let s: [u8; 4] = c.array().ok_or(HepError::Truncated("address"))?;
            let d: [u8; 4] = c.array().ok_or(HepError::Truncated("address"))?;
            (
                IpAddr::from(Ipv4Addr::from(s)),
                IpAddr::from(Ipv4Addr::from(d)),
                8,
            )
        }
        // AF_INET6 is 10 on Linux; BSDs use 24, 28 or 30.
        10 | 24 | 28 | 30 => {
            let s: [u8; 16] = c.array().ok_or(HepError::Truncated("address"))?;
            let d: [u8; 16] = c.array().ok_or(HepError::Truncated("address"))?;
            (
                IpAddr::from(Ipv6Addr::from(s)),
                IpAddr::from(Ipv6Addr::from(d)),
                32,
            )
        }
        f => return Err(HepError::BadFamily(f)),
    };
    // Kamailio writes the version and address headers' length; some agents count the
    // time header too. Anything else means the layout is not what this reads.
    let expected = HEADER_LEN + addr_len;
    let hdr_len = usize::from(hdr_len);
    if hdr_len != expected && hdr_len != expected + TIME_LEN {
        return Err(HepError::BadLength("v2 header"));
    }
    let mut time = None;
    let mut capture_id = 0;
    if version == 2 {
        let t = c.take(TIME_LEN).ok_or(HepError::Truncated("time header"))?;
        let le32 = |i: usize| {
            t.get(i..i + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
                .unwrap_or_default()
        };
        time = Some((le32(0), le32(4)));
        capture_id = t
            .get(8..10)
            .and_then(|b| b.try_into().ok())
            .map(u16::from_le_bytes)
            .map_or(0, u32::from);
    }
    Ok(HepPacket {
        version,
        ip_proto,
        src: SocketAddr::new(src, sport),
        dst: SocketAddr::new(dst, dport),
        time,
        proto_type: PROTO_SIP,
        capture_id,
        auth_key: None,
        correlation_id: None,
        node_name: None,
        keepalive_s: None,
        payload: c.rest,
    })
}

/// Writes a HEPv1/v2 packet the way Kamailio's `siptrace` does (for tests and
/// vectors). Both addresses take the family of `src`; an IPv4 `dst` beside an IPv6
/// `src` is written IPv4-mapped, an IPv6 `dst` beside an IPv4 `src` as 0.0.0.0.
pub fn encode(p: &HepPacket<'_>, out: &mut Vec<u8>) {
    let v6 = p.src.is_ipv6();
    let (family, addr_len) = if v6 { (10u8, 32usize) } else { (2u8, 8usize) };
    out.push(p.version);
    out.push(u8::try_from(HEADER_LEN + addr_len).unwrap_or(u8::MAX));
    out.push(family);
    out.push(p.ip_proto);
    out.extend_from_slice(&p.src.port().to_be_bytes());
    out.extend_from_slice(&p.dst.port().to_be_bytes());
    for ip in [p.src.ip(), p.dst.ip()] {
        match (ip, v6) {
            (IpAddr::V4(a), false) => out.extend_from_slice(&a.octets()),
            (IpAddr::V6(_), false) => out.extend_from_slice(&[0; 4]),
            (IpAddr::V4(a), true) => out.extend_from_slice(&a.to_ipv6_mapped().octets()),
            (IpAddr::V6(a), true) => out.extend_from_slice(&a.octets()),
        }
    }
    if p.version == 2 {
        let (s, us) = p.time.unwrap_or_default();
        out.extend_from_slice(&s.to_le_bytes());
        out.extend_from_slice(&us.to_le_bytes());
        out.extend_from_slice(
            &u16::try_from(p.capture_id)
                .unwrap_or(u16::MAX)
                .to_le_bytes(),
        );
        out.extend_from_slice(&[0, 0]);
    }
    out.extend_from_slice(p.payload);
}
