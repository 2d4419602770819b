//! SDP (RFC 8866, formerly RFC 4566) parsing, reduced to what a voice-quality probe needs:
//! where each media stream flows (`c=`, `m=`, `a=rtcp`, `a=rtcp-mux`), what the payload
//! types mean (`a=rtpmap`, RFC 3551 static types), how it is packetised (`a=ptime`) and
//! whether it is active (direction, port 0, `0.0.0.0`).
//!
//! SDP is parsed once per offer/answer, not per packet, so the result is owned and the
//! parser optimises for tolerance rather than speed: unknown or malformed attribute lines
//! are skipped, as are lines that are not `x=...` at all (trailing garbage, padding). Only
//! damage that makes the description meaningless (no `v=0`, an `m=` line without a port)
//! is an error. The parser never panics, whatever the input.

use std::net::IpAddr;

use thiserror::Error;

/// Why a body could not be read as SDP.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SdpError {
    /// The body holds no `x=value` line at all.
    #[error("SDP body is empty")]
    Empty,
    /// The first SDP line is not `v=` (RFC 8866 §5 makes it mandatory and first).
    #[error("SDP does not start with a v= line")]
    MissingVersion,
    /// `v=` carries something other than `0`, the only version ever defined.
    #[error("unsupported SDP version {0:?}")]
    UnsupportedVersion(String),
    /// An `m=` line without media type, a numeric port or a transport protocol. The line
    /// number (1-based, counting every line of the body) helps when reading captures.
    #[error("malformed m= line at line {line}")]
    BadMedia {
        /// 1-based line number within the body.
        line: usize,
    },
}

/// `o=` line: who created the session and which version of it this is. The version
/// increases with every re-offer that changes something, which lets a caller tell a real
/// media change from a repeated offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Originator's user name (`-` when not given).
    pub username: String,
    /// Session identifier, kept as text: implementations use numbers wider than 64 bits.
    pub session_id: String,
    /// Session version; `None` when it is not a decimal number that fits in 64 bits.
    pub session_version: Option<u64>,
    /// Address of the originator as written (an IP literal or a host name).
    pub address: String,
}

/// Media direction attribute (RFC 8866 §6.7), from the point of view of the side that
/// wrote the SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// `a=sendrecv`, also the default when no direction attribute is present.
    #[default]
    SendRecv,
    /// `a=sendonly`: the writer sends but will not receive (e.g. puts the peer on hold).
    SendOnly,
    /// `a=recvonly`: the writer receives but will not send.
    RecvOnly,
    /// `a=inactive`: no media either way.
    Inactive,
}

impl Direction {
    /// Whether the writer of the SDP intends to send media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the writer of the SDP intends to receive media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    fn from_attr(name: &str) -> Option<Direction> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }
}

/// Meaning of one RTP payload type: `a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// RTP payload type (0–127).
    pub pt: u8,
    /// Encoding name exactly as written (`PCMU`, `opus`, `G726-16`, ...). Encoding names
    /// are case-insensitive (RFC 4855 §3), so compare with [`RtpMap::is`].
    pub encoding: String,
    /// RTP timestamp clock rate in Hz.
    pub clock_rate: u32,
    /// Channel count when the mapping states one.
    pub channels: Option<u8>,
}

impl RtpMap {
    /// Case-insensitive comparison of the encoding name.
    pub fn is(&self, encoding: &str) -> bool {
        self.encoding.eq_ignore_ascii_case(encoding)
    }

    /// Whether this payload carries no speech of its own (DTMF events, comfort noise,
    /// redundancy, FEC): such types must not decide "the codec of the call".
    pub fn is_auxiliary(&self) -> bool {
        ["telephone-event", "CN", "red", "ulpfec", "flexfec", "rtx"]
            .iter()
            .any(|aux| self.is(aux))
    }
}

/// The RFC 3551 meaning of a static payload type, used when an `m=` line lists it without
/// an `a=rtpmap` (which RFC 8866 allows) and for RTP found without any signalling.
pub fn static_rtpmap(pt: u8) -> Option<RtpMap> {
    let (encoding, clock_rate, channels) = match pt {
        0 => ("PCMU", 8000, None),
        3 => ("GSM", 8000, None),
        4 => ("G723", 8000, None),
        5 => ("DVI4", 8000, None),
        6 => ("DVI4", 16000, None),
        7 => ("LPC", 8000, None),
        8 => ("PCMA", 8000, None),
        // G.722 samples at 16 kHz but RFC 3551 §4.5.2 fixes its RTP clock at 8 kHz.
        9 => ("G722", 8000, None),
        10 => ("L16", 44100, Some(2)),
        11 => ("L16", 44100, None),
        12 => ("QCELP", 8000, None),
        13 => ("CN", 8000, None),
        14 => ("MPA", 90000, None),
        15 => ("G728", 8000, None),
        16 => ("DVI4", 11025, None),
        17 => ("DVI4", 22050, None),
        18 => ("G729", 8000, None),
        25 => ("CelB", 90000, None),
        26 => ("JPEG", 90000, None),
        28 => ("nv", 90000, None),
        31 => ("H261", 90000, None),
        32 => ("MPV", 90000, None),
        33 => ("MP2T", 90000, None),
        34 => ("H263", 90000, None),
        _ => return None,
    };
    Some(RtpMap {
        pt,
        encoding: encoding.to_owned(),
        clock_rate,
        channels,
    })
}

/// One `m=` section with the attributes that matter for locating and scoring its RTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// Media type as written: `audio`, `video`, `image`, `application`, ...
    pub kind: String,
    /// RTP port; 0 means the stream is rejected or disabled (RFC 3264 §6).
    pub port: u16,
    /// Number of consecutive RTP ports from `<port>/<count>`; 1 when not given.
    pub port_count: u16,
    /// Transport protocol as written: `RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVPF`, ...
    pub proto: String,
    /// Payload types listed on the `m=` line, in preference order. Non-numeric formats
    /// (e.g. `t38`, `webrtc-datachannel`) are not RTP payload types and are left out.
    pub formats: Vec<u8>,
    /// Media-level `c=` address; when present it overrides the session-level one.
    pub connection: Option<IpAddr>,
    /// Payload type mappings: every `a=rtpmap` of this section in the order written, then
    /// the RFC 3551 meaning of listed static types that had no `a=rtpmap`.
    pub rtpmap: Vec<RtpMap>,
    /// `a=fmtp:<pt> <parameters>` lines, parameters kept as written.
    pub fmtp: Vec<(u8, String)>,
    /// Packetisation time from `a=ptime`, in milliseconds.
    pub ptime_ms: Option<u32>,
    /// Explicit RTCP port and optional address from `a=rtcp` (RFC 3605).
    pub rtcp: Option<(u16, Option<IpAddr>)>,
    /// `a=rtcp-mux` (RFC 5761): RTCP shares the RTP port.
    pub rtcp_mux: bool,
    /// Effective direction: the media-level attribute, else the session-level one, else
    /// `sendrecv`.
    pub direction: Direction,
    /// `a=crypto` present (SDES-SRTP, RFC 4568): payloads are encrypted.
    pub crypto: bool,
}

impl MediaDescription {
    fn new(kind: String, port: u16, port_count: u16, proto: String, formats: Vec<u8>) -> Self {
        MediaDescription {
            kind,
            port,
            port_count,
            proto,
            formats,
            connection: None,
            rtpmap: Vec::new(),
            fmtp: Vec::new(),
            ptime_ms: None,
            rtcp: None,
            rtcp_mux: false,
            direction: Direction::SendRecv,
            crypto: false,
        }
    }

    /// Whether this is an audio stream.
    pub fn is_audio(&self) -> bool {
        self.kind.eq_ignore_ascii_case("audio")
    }

    /// Whether the stream was rejected or disabled (port 0).
    pub fn is_rejected(&self) -> bool {
        self.port == 0
    }

    /// The address RTP for this stream is sent to: the media-level `c=`, else the
    /// session-level one.
    pub fn effective_addr(&self, session: &SessionDescription) -> Option<IpAddr> {
        self.connection.or(session.connection)
    }

    /// The port RTCP for this stream is expected on: explicit `a=rtcp`, else the RTP port
    /// itself with `a=rtcp-mux`, else RTP port + 1 (RFC 3550 §11). An RTP port of 65535,
    /// which RFC 3550 forbids anyway, yields 65535 rather than overflowing.
    pub fn rtcp_port(&self) -> u16 {
        if let Some((port, _)) = self.rtcp {
            port
        } else if self.rtcp_mux {
            self.port
        } else {
            self.port.saturating_add(1)
        }
    }

    /// The address RTCP for this stream is expected at: the `a=rtcp` address when given,
    /// else the RTP address.
    pub fn rtcp_addr(&self, session: &SessionDescription) -> Option<IpAddr> {
        match self.rtcp {
            Some((_, Some(addr))) => Some(addr),
            _ => self.effective_addr(session),
        }
    }

    /// The mapping of a payload type, explicit or static.
    pub fn codec_for_pt(&self, pt: u8) -> Option<&RtpMap> {
        self.rtpmap.iter().find(|m| m.pt == pt)
    }

    /// The preferred speech codec: the first listed payload type with a known mapping
    /// that is not DTMF, comfort noise or redundancy.
    pub fn primary_codec(&self) -> Option<&RtpMap> {
        self.formats
            .iter()
            .filter_map(|&pt| self.codec_for_pt(pt))
            .find(|m| !m.is_auxiliary())
    }

    /// Whether payloads are encrypted (SRTP by SDES `a=crypto` or a secure profile such
    /// as `RTP/SAVP`), so only RTP headers can be measured.
    pub fn is_srtp(&self) -> bool {
        self.crypto || self.proto.to_ascii_uppercase().contains("SAVP")
    }

    /// Whether this stream is on hold as RFC 3264 §8.4 signals it: direction `sendonly`
    /// or `inactive`, or the legacy RFC 2543 style connection address `0.0.0.0` (or `::`).
    /// A rejected stream (port 0) is not "held"; see [`MediaDescription::is_rejected`].
    pub fn is_held(&self, session: &SessionDescription) -> bool {
        matches!(self.direction, Direction::SendOnly | Direction::Inactive)
            || self
                .effective_addr(session)
                .is_some_and(|addr| addr.is_unspecified())
    }
}

/// A parsed session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// The `o=` line, if present and well-formed.
    pub origin: Option<Origin>,
    /// Session-level `c=` address (the default for every media section).
    pub connection: Option<IpAddr>,
    /// Session-level direction attribute, if one was written.
    pub direction: Option<Direction>,
    /// Media sections in order (the order is significant for offer/answer matching).
    pub media: Vec<MediaDescription>,
}

impl SessionDescription {
    /// The audio sections.
    pub fn audio(&self) -> impl Iterator<Item = &MediaDescription> {
        self.media.iter().filter(|m| m.is_audio())
    }

    /// Whether the call is on hold: there is at least one audio stream that is not
    /// rejected, and every such stream is held.
    pub fn is_held(&self) -> bool {
        let mut active = self.audio().filter(|m| !m.is_rejected()).peekable();
        active.peek().is_some() && active.all(|m| m.is_held(self))
    }
}

/// Parses an SDP body. Lines may end in CRLF or LF; lines that are not `x=...` and lines
/// that are not UTF-8 are skipped; unknown line types and attributes are ignored.
pub fn parse(body: &[u8]) -> Result<SessionDescription, SdpError> {
    let mut session = SessionDescription {
        origin: None,
        connection: None,
        direction: None,
        media: Vec::new(),
    };
    // Direction attributes of each media section as written; kept apart from the
    // default so that the session-level attribute can fill in only where none was given.
    let mut media_dirs: Vec<Option<Direction>> = Vec::new();
    let mut seen_version = false;

    for (index, raw) in body.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let Some((kind, value)) = sdp_line(raw) else {
            continue;
        };
        if !seen_version {
            if kind != 'v' {
                return Err(SdpError::MissingVersion);
            }
            if value.trim() != "0" {
                return Err(SdpError::UnsupportedVersion(value.trim().to_owned()));
            }
            seen_version = true;
            continue;
        }
        match kind {
            'o' if session.media.is_empty() => session.origin = parse_origin(value),
            'c' => {
                // An unusable address (a host name, which RFC 8866 allows but no media
                // stack uses) is ignored rather than guessed at.
                if let Some(addr) = parse_connection(value) {
                    match session.media.last_mut() {
                        Some(media) => media.connection = Some(addr),
                        None => session.connection = Some(addr),
                    }
                }
            }
            'm' => {
                let media = parse_media(value).ok_or(SdpError::BadMedia { line: index + 1 })?;
                session.media.push(media);
                media_dirs.push(None);
            }
            'a' => {
                let (name, arg) = match value.split_once(':') {
                    Some((name, arg)) => (name.trim(), Some(arg.trim())),
                    None => (value.trim(), None),
                };
                match (session.media.last_mut(), media_dirs.last_mut()) {
                    (Some(media), Some(dir)) => apply_media_attr(media, dir, name, arg),
                    _ => {
                        if let Some(d) = Direction::from_attr(name) {
                            session.direction = Some(d);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    if !seen_version {
        return Err(SdpError::Empty);
    }
    for (media, dir) in session.media.iter_mut().zip(media_dirs) {
        media.direction = dir.or(session.direction).unwrap_or_default();
        // Static payload types may be listed without rtpmap (RFC 8866 §6.6); filling
        // them in here spares every consumer the fallback.
        let implicit: Vec<RtpMap> = media
            .formats
            .iter()
            .filter(|&&pt| !media.rtpmap.iter().any(|m| m.pt == pt))
            .filter_map(|&pt| static_rtpmap(pt))
            .collect();
        media.rtpmap.extend(implicit);
    }
    Ok(session)
}

/// Splits `x=value`, where `x` is a lowercase letter. Anything else is not an SDP line.
fn sdp_line(raw: &[u8]) -> Option<(char, &str)> {
    let (&kind, rest) = raw.split_first()?;
    let value = rest.strip_prefix(b"=")?;
    if !kind.is_ascii_lowercase() {
        return None;
    }
    let value = std::str::from_utf8(value).ok()?;
    Some((char::from(kind), value))
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`
fn parse_origin(value: &str) -> Option<Origin> {
    let mut fields = value.split_ascii_whitespace();
    let username = fields.next()?;
    let session_id = fields.next()?;
    let session_version = fields.next()?;
    let _net_type = fields.next()?;
    let _addr_type = fields.next()?;
    let address = fields.next()?;
    Some(Origin {
        username: username.to_owned(),
        session_id: session_id.to_owned(),
        session_version: session_version.parse().ok(),
        address: address.to_owned(),
    })
}

/// `c=IN IP4 <addr>[/<ttl>[/<count>]]` or `c=IN IP6 <addr>[/<count>]`.
fn parse_connection(value: &str) -> Option<IpAddr> {
    let mut fields = value.split_ascii_whitespace();
    let net_type = fields.next()?;
    let _addr_type = fields.next()?;
    let address = fields.next()?;
    if !net_type.eq_ignore_ascii_case("IN") {
        return None;
    }
    // The address type is not checked against the address: an IP literal is
    // unambiguous, and some devices write `IP4` in front of IPv6 addresses.
    let address = address.split('/').next()?;
    address.parse().ok()
}

/// `m=<media> <port>[/<count>] <proto> <fmt> ...`
fn parse_media(value: &str) -> Option<MediaDescription> {
    let mut fields = value.split_ascii_whitespace();
    let kind = fields.next()?;
    let port_spec = fields.next()?;
    let proto = fields.next()?;
    let (port, port_count) = match port_spec.split_once('/') {
        Some((port, count)) => (port.parse().ok()?, count.parse().ok()?),
        None => (port_spec.parse().ok()?, 1),
    };
    let formats = fields
        .filter_map(|f| f.parse::<u8>().ok())
        .filter(|&pt| pt <= 127)
        .collect();
    Some(MediaDescription::new(
        kind.to_owned(),
        port,
        port_count,
        proto.to_owned(),
        formats,
    ))
}

fn apply_media_attr(
    media: &mut MediaDescription,
    dir: &mut Option<Direction>,
    name: &str,
    arg: Option<&str>,
) {
    match (name, arg) {
        ("rtpmap", Some(arg)) => {
            if let Some(map) = parse_rtpmap(arg) {
                // The first mapping wins: a duplicate is an error in the SDP and the
                // first is what most stacks act on.
                if media.codec_for_pt(map.pt).is_none() {
                    media.rtpmap.push(map);
                }
            }
        }
        ("fmtp", Some(arg)) => {
            if let Some((pt, params)) = arg.split_once(char::is_whitespace) {
                if let Ok(pt) = pt.parse::<u8>() {
                    media.fmtp.push((pt, params.trim().to_owned()));
                }
            }
        }
        ("ptime", Some(arg)) => {
            // Some stacks write a fraction (`20.0`); packetisation below 1 ms is not a
            // thing, so the integer part is what counts.
            let whole = arg.split('.').next().unwrap_or(arg);
            media.ptime_ms = whole.trim().parse().ok().filter(|&ms| ms > 0);
        }
        ("rtcp", Some(arg)) => media.rtcp = parse_rtcp_attr(arg),
        ("rtcp-mux", _) => media.rtcp_mux = true,
        ("crypto", _) => media.crypto = true,
        (other, None) => {
            if let Some(d) = Direction::from_attr(other) {
                *dir = Some(d);
            }
        }
        _ => {}
    }
}

/// `<pt> <encoding>/<clock rate>[/<channels>]`
fn parse_rtpmap(arg: &str) -> Option<RtpMap> {
    let (pt, rest) = arg.split_once(char::is_whitespace)?;
    let pt: u8 = pt.parse().ok().filter(|&pt| pt <= 127)?;
    let mut parts = rest.trim().split('/');
    let encoding = parts.next()?.trim();
    if encoding.is_empty() {
        return None;
    }
    let clock_rate: u32 = parts.next()?.trim().parse().ok()?;
    let channels = match parts.next() {
        Some(ch) => Some(ch.trim().parse().ok()?),
        None => None,
    };
    Some(RtpMap {
        pt,
        encoding: encoding.to_owned(),
        clock_rate,
        channels,
    })
}

/// `a=rtcp:<port> [IN IP4|IP6 <addr>]` (RFC 3605).
fn parse_rtcp_attr(arg: &str) -> Option<(u16, Option<IpAddr>)> {
    let (port, rest) = match arg.split_once(char::is_whitespace) {
        Some((port, rest)) => (port, Some(rest)),
        None => (arg, None),
    };
    let port = port.parse().ok()?;
    Some((port, rest.and_then(parse_connection)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const OFFER: &[u8] = b"v=0\r\n\
o=alice 2890844526 2890844527 IN IP4 198.51.100.1\r\n\
s=-\r\n\
c=IN IP4 198.51.100.1\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=rtcp:53020 IN IP4 198.51.100.2\r\n\
a=sendrecv\r\n";

    #[test]
    fn parses_basic_audio_offer() {
        let sdp = parse(OFFER).unwrap();
        let origin = sdp.origin.as_ref().unwrap();
        assert_eq!(origin.username, "alice");
        assert_eq!(origin.session_version, Some(2890844527));
        assert_eq!(origin.address, "198.51.100.1");
        assert_eq!(
            sdp.connection,
            Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)))
        );
        assert_eq!(sdp.media.len(), 1);
        let m = &sdp.media[0];
        assert!(m.is_audio());
        assert_eq!(m.port, 49170);
        assert_eq!(m.proto, "RTP/AVP");
        assert_eq!(m.formats, vec![0, 8, 101]);
        assert_eq!(m.ptime_ms, Some(20));
        assert_eq!(
            m.rtcp,
            Some((53020, Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)))))
        );
        assert_eq!(m.rtcp_port(), 53020);
        assert_eq!(
            m.rtcp_addr(&sdp),
            Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)))
        );
        assert_eq!(m.direction, Direction::SendRecv);
        assert!(!m.crypto && !m.is_srtp() && !m.rtcp_mux);
        assert_eq!(m.codec_for_pt(8).unwrap().encoding, "PCMA");
        assert_eq!(m.codec_for_pt(101).unwrap().encoding, "telephone-event");
        assert_eq!(m.primary_codec().unwrap().encoding, "PCMU");
        assert_eq!(m.fmtp, vec![(101, "0-16".to_owned())]);
        assert_eq!(m.effective_addr(&sdp), sdp.connection);
        assert!(!m.is_held(&sdp) && !sdp.is_held());
    }

    #[test]
    fn lf_only_and_garbage_lines_are_tolerated() {
        let body = b"\nv=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\n\
                     t=0 0\nm=audio 4000 RTP/AVP 18\nthis is not sdp\na=foo:bar\n\
                     X=upper case is not a type\n\0\0\0\xff\xfe";
        let sdp = parse(body).unwrap();
        assert_eq!(sdp.media.len(), 1);
        assert_eq!(sdp.media[0].port, 4000);
        // Static payload type without rtpmap gets the RFC 3551 meaning.
        let g729 = sdp.media[0].codec_for_pt(18).unwrap();
        assert_eq!((g729.encoding.as_str(), g729.clock_rate), ("G729", 8000));
    }

    #[test]
    fn default_rtcp_port_and_mux() {
        let sdp = parse(b"v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n").unwrap();
        assert_eq!(sdp.media[0].rtcp_port(), 4001);
        let sdp =
            parse(b"v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp-mux\r\n").unwrap();
        assert!(sdp.media[0].rtcp_mux);
        assert_eq!(sdp.media[0].rtcp_port(), 4000);
        let sdp = parse(b"v=0\r\nm=audio 65535 RTP/AVP 0\r\n").unwrap();
        assert_eq!(sdp.media[0].rtcp_port(), 65535);
        // a=rtcp without an address keeps the RTP address.
        let sdp = parse(b"v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:4005\r\n")
            .unwrap();
        assert_eq!(sdp.media[0].rtcp, Some((4005, None)));
        assert_eq!(sdp.media[0].rtcp_addr(&sdp), sdp.connection);
    }

    #[test]
    fn ipv6_connection_and_media_level_override() {
        let body = b"v=0\r\no=- 1 2 IN IP6 2001:db8::1\r\nc=IN IP6 2001:db8::1\r\nt=0 0\r\n\
                     m=audio 5008 RTP/AVP 0\r\n\
                     m=audio 5010 RTP/AVP 8\r\nc=IN IP4 192.0.2.7\r\n";
        let sdp = parse(body).unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(sdp.connection, Some(v6));
        assert_eq!(sdp.media[0].connection, None);
        assert_eq!(sdp.media[0].effective_addr(&sdp), Some(v6));
        assert_eq!(
            sdp.media[1].effective_addr(&sdp),
            Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)))
        );
    }

    #[test]
    fn multicast_ttl_suffix_and_hostname_connection() {
        let sdp =
            parse(b"v=0\r\nc=IN IP4 233.252.0.1/127/3\r\nm=audio 4000 RTP/AVP 0\r\n").unwrap();
        assert_eq!(
            sdp.connection,
            Some(IpAddr::V4(Ipv4Addr::new(233, 252, 0, 1)))
        );
        let sdp =
            parse(b"v=0\r\nc=IN IP4 media.example.com\r\nm=audio 4000 RTP/AVP 0\r\n").unwrap();
        assert_eq!(sdp.connection, None);
    }

    #[test]
    fn dynamic_payload_types() {
        let body = b"v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 111 96 97 0\r\n\
                     a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n\
                     a=rtpmap:96 AMR/8000\r\na=rtpmap:97 AMR-WB/16000/1\r\n";
        let sdp = parse(body).unwrap();
        let m = &sdp.media[0];
        let opus = m.codec_for_pt(111).unwrap();
        assert!(opus.is("OPUS"));
        assert_eq!((opus.clock_rate, opus.channels), (48000, Some(2)));
        let amr = m.codec_for_pt(96).unwrap();
        assert_eq!(
            (amr.encoding.as_str(), amr.clock_rate, amr.channels),
            ("AMR", 8000, None)
        );
        assert_eq!(m.codec_for_pt(97).unwrap().channels, Some(1));
        assert_eq!(m.codec_for_pt(0).unwrap().encoding, "PCMU");
        assert!(m.codec_for_pt(98).is_none());
        assert_eq!(m.primary_codec().unwrap().pt, 111);
    }

    #[test]
    fn hold_and_rejection() {
        let sendonly =
            parse(b"v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4002 RTP/AVP 0\r\na=sendonly\r\n").unwrap();
        assert_eq!(sendonly.media[0].direction, Direction::SendOnly);
        assert!(sendonly.media[0].is_held(&sendonly) && sendonly.is_held());
        assert!(sendonly.media[0].direction.sends() && !sendonly.media[0].direction.receives());

        let zero = parse(b"v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 4002 RTP/AVP 0\r\n").unwrap();
        assert_eq!(zero.connection, Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
        assert!(zero.is_held());

        let zero6 = parse(b"v=0\r\nc=IN IP6 ::\r\nm=audio 4002 RTP/AVP 0\r\n").unwrap();
        assert_eq!(zero6.connection, Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)));
        assert!(zero6.is_held());

        let rejected = parse(b"v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 0 RTP/AVP 0\r\n").unwrap();
        assert_eq!(rejected.media[0].port, 0);
        assert!(rejected.media[0].is_rejected());
        assert!(!rejected.is_held());

        // Session-level direction applies unless a media section overrides it.
        let body = b"v=0\r\nc=IN IP4 10.0.0.1\r\na=inactive\r\nm=audio 4000 RTP/AVP 0\r\n\
                     m=audio 4002 RTP/AVP 0\r\na=recvonly\r\n";
        let sdp = parse(body).unwrap();
        assert_eq!(sdp.direction, Some(Direction::Inactive));
        assert_eq!(sdp.media[0].direction, Direction::Inactive);
        assert_eq!(sdp.media[1].direction, Direction::RecvOnly);
    }

    #[test]
    fn srtp_and_other_media() {
        let body = b"v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/SAVP 0\r\n\
                     a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n\
                     m=video 0 RTP/AVP 31\r\nm=image 4010 udptl t38\r\nm=audio 4020/2 RTP/AVP 0\r\n";
        let sdp = parse(body).unwrap();
        assert!(sdp.media[0].crypto && sdp.media[0].is_srtp());
        assert_eq!(sdp.media[1].kind, "video");
        assert_eq!(sdp.media[2].formats, Vec::<u8>::new());
        assert_eq!(sdp.media[3].port_count, 2);
        assert_eq!(sdp.audio().count(), 2);
    }

    #[test]
    fn errors() {
        assert_eq!(parse(b""), Err(SdpError::Empty));
        assert_eq!(parse(b"\r\n\r\nhello\r\n"), Err(SdpError::Empty));
        assert_eq!(
            parse(b"o=- 1 1 IN IP4 1.2.3.4\r\nv=0\r\n"),
            Err(SdpError::MissingVersion)
        );
        assert_eq!(
            parse(b"v=1\r\n"),
            Err(SdpError::UnsupportedVersion("1".to_owned()))
        );
        assert_eq!(
            parse(b"v=0\r\ns=-\r\nm=audio RTP/AVP 0\r\n"),
            Err(SdpError::BadMedia { line: 3 })
        );
        assert_eq!(
            parse(b"v=0\r\nm=audio 70000 RTP/AVP 0\r\n"),
            Err(SdpError::BadMedia { line: 2 })
        );
        // Malformed attributes are skipped, not fatal.
        let sdp = parse(
            b"v=0\r\nm=audio 4000 RTP/AVP 96\r\na=rtpmap:96\r\na=rtpmap:300 X/1\r\n\
                          a=rtpmap:96 /8000\r\na=rtpmap:96 X/abc\r\na=ptime:abc\r\na=rtcp:x\r\n",
        )
        .unwrap();
        let m = &sdp.media[0];
        assert!(m.rtpmap.is_empty() && m.ptime_ms.is_none() && m.rtcp.is_none());
    }

    /// Deterministic xorshift64 so failures reproduce.
    fn xorshift(state: &mut u64) -> u64 {
        let mut x = *state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *state = x;
        x
    }

    #[test]
    fn prefixes_and_mutations_never_panic() {
        for len in 0..=OFFER.len() {
            let _ = parse(&OFFER[..len]);
        }
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut buf = OFFER.to_vec();
        for _ in 0..20_000 {
            buf.clear();
            buf.extend_from_slice(OFFER);
            let edits = 1 + xorshift(&mut state) % 8;
            for _ in 0..edits {
                let pos = (xorshift(&mut state) % buf.len() as u64) as usize;
                let byte = xorshift(&mut state) as u8;
                match xorshift(&mut state) % 3 {
                    0 => buf[pos] = byte,
                    1 => buf.insert(pos, byte),
                    _ => {
                        buf.remove(pos);
                    }
                }
                if buf.is_empty() {
                    break;
                }
            }
            let _ = parse(&buf);
        }
    }
}
