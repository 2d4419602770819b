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
    /// More media sections than any real session has ([`MAX_MEDIA`]): each would claim
    /// media endpoints for the call.
    #[error("more than {MAX_MEDIA} m= sections")]
    TooManyMedia,
}

/// Media sections an SDP may have. A voice call has one or two; a WebRTC gateway's
/// bundled multi-party offer can have dozens.
pub const MAX_MEDIA: usize = 64;

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
    /// `a=gpmd:<pt> vbd=yes` (ITU-T V.152): the stream carries voice-band data, i.e. a
    /// G.711 pass-through fax or modem call.
    pub vbd: bool,
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
            vbd: false,
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
                if session.media.len() >= MAX_MEDIA {
                    return Err(SdpError::TooManyMedia);
                }
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
        ("gpmd", Some(arg)) if arg.to_ascii_lowercase().contains("vbd=yes") => media.vbd = true,
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
mod tests;
