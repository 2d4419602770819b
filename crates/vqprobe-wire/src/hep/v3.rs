//! HEPv3 (HEP3/EEP): `HEP3`, a 16-bit total length, then chunks, each a 16-bit vendor
//! id, a 16-bit chunk type and a 16-bit length counting its own 6-byte header. Generic
//! chunks (vendor 0) used here:
//!
//! | type | value |
//! |------|-------|
//! | 0x0001 | IP family (2 IPv4, 10 IPv6), u8 |
//! | 0x0002 | IP protocol (17 UDP, 6 TCP), u8 |
//! | 0x0003 / 0x0004 | IPv4 source / destination |
//! | 0x0005 / 0x0006 | IPv6 source / destination |
//! | 0x0007 / 0x0008 | source / destination port, u16 |
//! | 0x0009 / 0x000a | time: seconds, microseconds, u32 |
//! | 0x000b | payload protocol type, u8 (1 SIP, 5 RTCP, …) |
//! | 0x000c | capture agent id, u32 |
//! | 0x000d | keep-alive timer, u16 |
//! | 0x000e | authentication key (password) |
//! | 0x000f | payload |
//! | 0x0010 | compressed payload |
//! | 0x0011 | correlation id |
//! | 0x0013 | node name |
//!
//! Unknown and vendor chunks are skipped by their length.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{Cursor, HepError, HepPacket};

/// The first four bytes of every HEPv3 packet.
pub const MAGIC: &[u8] = b"HEP3";
/// `HEP3` plus the total length.
pub const HEADER_LEN: usize = 6;
/// Vendor, type, length.
const CHUNK_HEADER_LEN: usize = 6;

const CH_FAMILY: u16 = 0x0001;
const CH_PROTO: u16 = 0x0002;
const CH_SRC4: u16 = 0x0003;
const CH_DST4: u16 = 0x0004;
const CH_SRC6: u16 = 0x0005;
const CH_DST6: u16 = 0x0006;
const CH_SPORT: u16 = 0x0007;
const CH_DPORT: u16 = 0x0008;
const CH_TSEC: u16 = 0x0009;
const CH_TUSEC: u16 = 0x000a;
const CH_PROTO_TYPE: u16 = 0x000b;
const CH_CAPTURE_ID: u16 = 0x000c;
const CH_KEEPALIVE: u16 = 0x000d;
const CH_AUTH_KEY: u16 = 0x000e;
const CH_PAYLOAD: u16 = 0x000f;
const CH_COMPRESSED: u16 = 0x0010;
const CH_CORRELATION: u16 = 0x0011;
const CH_NODE_NAME: u16 = 0x0013;

/// For a HEPv3 byte stream (TCP): the length of the packet at the start of `buf`,
/// `Ok(None)` while its header is incomplete.
///
/// # Errors
/// [`HepError::NotHep`] when the stream does not start with `HEP3` (it cannot be
/// resynchronised: the caller drops the connection), [`HepError::BadLength`] for a
/// total length below the header's.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, HepError> {
    let Some((head, _)) = buf.split_first_chunk::<HEADER_LEN>() else {
        let n = buf.len().min(MAGIC.len());
        if buf.get(..n) != MAGIC.get(..n) {
            return Err(HepError::NotHep(buf.first().copied().unwrap_or(0)));
        }
        return Ok(None);
    };
    if &head[..4] != MAGIC {
        return Err(HepError::NotHep(head[0]));
    }
    let len = usize::from(u16::from_be_bytes([head[4], head[5]]));
    if len < HEADER_LEN {
        return Err(HepError::BadLength("total"));
    }
    Ok(Some(len))
}

/// Reads a HEPv3 packet. Bytes after the declared total length are ignored.
///
/// # Errors
/// [`HepError`]: bad magic or lengths, a missing address, port or payload chunk, a
/// compressed payload.
pub fn parse(data: &[u8]) -> Result<HepPacket<'_>, HepError> {
    let total = frame_len(data)?.ok_or(HepError::Truncated("header"))?;
    let body = data
        .get(HEADER_LEN..total)
        .ok_or(HepError::Truncated("packet"))?;
    let mut c = Cursor::new(body);
    let mut ip_proto = None;
    let (mut src_ip, mut dst_ip): (Option<IpAddr>, Option<IpAddr>) = (None, None);
    let (mut sport, mut dport) = (None, None);
    let (mut tsec, mut tusec) = (None, None);
    let mut proto_type = 0;
    let mut capture_id = 0;
    let mut keepalive_s = None;
    let (mut auth_key, mut correlation_id, mut node_name, mut payload) = (None, None, None, None);
    while !c.rest.is_empty() {
        let [v0, v1, t0, t1, l0, l1] = c.array().ok_or(HepError::Truncated("chunk header"))?;
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        let value_len = len
            .checked_sub(CHUNK_HEADER_LEN)
            .ok_or(HepError::BadLength("chunk"))?;
        let value = c.take(value_len).ok_or(HepError::Truncated("chunk"))?;
        if u16::from_be_bytes([v0, v1]) != 0 {
            continue;
        }
        let bad = HepError::BadLength("chunk");
        match u16::from_be_bytes([t0, t1]) {
            CH_FAMILY => {}
            CH_PROTO => ip_proto = Some(u8_of(value).ok_or(bad)?),
            CH_SRC4 => src_ip = Some(IpAddr::V4(Ipv4Addr::from(arr::<4>(value).ok_or(bad)?))),
            CH_DST4 => dst_ip = Some(IpAddr::V4(Ipv4Addr::from(arr::<4>(value).ok_or(bad)?))),
            CH_SRC6 => src_ip = Some(IpAddr::V6(Ipv6Addr::from(arr::<16>(value).ok_or(bad)?))),
            CH_DST6 => dst_ip = Some(IpAddr::V6(Ipv6Addr::from(arr::<16>(value).ok_or(bad)?))),
            CH_SPORT => sport = Some(u16::from_be_bytes(arr(value).ok_or(bad)?)),
            CH_DPORT => dport = Some(u16::from_be_bytes(arr(value).ok_or(bad)?)),
            CH_TSEC => tsec = Some(u32::from_be_bytes(arr(value).ok_or(bad)?)),
            CH_TUSEC => tusec = Some(u32::from_be_bytes(arr(value).ok_or(bad)?)),
            CH_PROTO_TYPE => proto_type = u8_of(value).ok_or(bad)?,
            CH_CAPTURE_ID => capture_id = u32::from_be_bytes(arr(value).ok_or(bad)?),
            CH_KEEPALIVE => keepalive_s = Some(u16::from_be_bytes(arr(value).ok_or(bad)?)),
            CH_AUTH_KEY => auth_key = Some(value),
            CH_PAYLOAD => payload = Some(value),
            CH_COMPRESSED => return Err(HepError::Compressed),
            CH_CORRELATION => correlation_id = Some(value),
            CH_NODE_NAME => node_name = Some(value),
            _ => {}
        }
    }
    let src_ip = src_ip.ok_or(HepError::Missing("source address"))?;
    let dst_ip = dst_ip.ok_or(HepError::Missing("destination address"))?;
    let payload = payload.ok_or(HepError::Missing("payload"))?;
    Ok(HepPacket {
        version: 3,
        ip_proto: ip_proto.unwrap_or(super::IPPROTO_UDP),
        src: SocketAddr::new(src_ip, sport.unwrap_or(0)),
        dst: SocketAddr::new(dst_ip, dport.unwrap_or(0)),
        time: tsec.map(|s| (s, tusec.unwrap_or(0))),
        proto_type,
        capture_id,
        auth_key,
        correlation_id,
        node_name,
        keepalive_s,
        payload,
    })
}

fn u8_of(v: &[u8]) -> Option<u8> {
    match v {
        [b] => Some(*b),
        _ => None,
    }
}

fn arr<const N: usize>(v: &[u8]) -> Option<[u8; N]> {
    v.try_into().ok()
}

/// Writes `p` as one HEPv3 packet, appending to `out`. The chunks go in the order
/// Kamailio's `siptrace` writes them, with the correlation id, key and node name before
/// the payload: Kamailio's `sipcapture` reads a correlation id up to the next zero byte,
/// which the following chunk's vendor id provides.
///
/// Both addresses are written in the family of `p.src`; an IPv4 `dst` beside an IPv6
/// source is written IPv4-mapped.
///
/// # Errors
/// [`HepError::TooLong`] when the packet would exceed 65,535 bytes.
pub fn encode(p: &HepPacket<'_>, out: &mut Vec<u8>) -> Result<(), HepError> {
    let start = out.len();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[0, 0]);
    let v6 = p.src.is_ipv6();
    chunk(out, CH_FAMILY, &[if v6 { 10 } else { 2 }]);
    chunk(out, CH_PROTO, &[p.ip_proto]);
    if v6 {
        chunk(out, CH_SRC6, &v6_of(p.src.ip()).octets());
        chunk(out, CH_DST6, &v6_of(p.dst.ip()).octets());
    } else {
        chunk(out, CH_SRC4, &v4_of(p.src.ip()).octets());
        chunk(out, CH_DST4, &v4_of(p.dst.ip()).octets());
    }
    chunk(out, CH_SPORT, &p.src.port().to_be_bytes());
    chunk(out, CH_DPORT, &p.dst.port().to_be_bytes());
    let (s, us) = p.time.unwrap_or_default();
    chunk(out, CH_TSEC, &s.to_be_bytes());
    chunk(out, CH_TUSEC, &us.to_be_bytes());
    chunk(out, CH_PROTO_TYPE, &[p.proto_type]);
    chunk(out, CH_CAPTURE_ID, &p.capture_id.to_be_bytes());
    if let Some(k) = p.keepalive_s {
        chunk(out, CH_KEEPALIVE, &k.to_be_bytes());
    }
    for (ty, v) in [
        (CH_CORRELATION, p.correlation_id),
        (CH_AUTH_KEY, p.auth_key),
        (CH_NODE_NAME, p.node_name),
    ] {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            if v.len() > usize::from(u16::MAX) - CHUNK_HEADER_LEN {
                out.truncate(start);
                return Err(HepError::TooLong(v.len()));
            }
            chunk(out, ty, v);
        }
    }
    if p.payload.len() > usize::from(u16::MAX) - CHUNK_HEADER_LEN {
        out.truncate(start);
        return Err(HepError::TooLong(p.payload.len()));
    }
    chunk(out, CH_PAYLOAD, p.payload);
    let total = out.len() - start;
    let Ok(total16) = u16::try_from(total) else {
        out.truncate(start);
        return Err(HepError::TooLong(total));
    };
    if let Some(len) = out.get_mut(start + 4..start + 6) {
        len.copy_from_slice(&total16.to_be_bytes());
    }
    Ok(())
}

/// Appends one generic chunk; the caller keeps `value` under 65,529 bytes.
fn chunk(out: &mut Vec<u8>, ty: u16, value: &[u8]) {
    let len = u16::try_from(value.len() + CHUNK_HEADER_LEN).unwrap_or(u16::MAX);
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&ty.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
}

fn v4_of(ip: IpAddr) -> Ipv4Addr {
    match ip {
        IpAddr::V4(a) => a,
        IpAddr::V6(a) => a.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
    }
}

fn v6_of(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}
