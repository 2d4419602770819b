//! SIP message parsing (RFC 3261), reduced to what a passive probe needs to follow calls:
//! the start line, the dialog identifiers (Call-ID, From/To tags, CSeq), the numbers of
//! the parties, arbitrary header lookup (e.g. a configured agent header) and the SDP body.
//!
//! The parser is sans-I/O and zero-copy: a [`SipMessage`] borrows from the packet bytes,
//! only the SDP (needed once per offer/answer) is owned. Like a probe should, it is
//! lenient where leniency costs nothing (LF-only line ends, malformed header lines that are
//! not needed, unknown methods, leading keep-alive CRLFs) and reports an error where the
//! message cannot be attributed to a dialog. It never panics, whatever the input.

use std::borrow::Cow;
use std::fmt;

use thiserror::Error;

use crate::sdp::{self, SdpError, SessionDescription};

/// Why bytes could not be read as a SIP message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SipError {
    /// Nothing but line breaks (keep-alives) or no bytes at all.
    #[error("empty SIP message")]
    Empty,
    /// The header section does not end, or the body is shorter than Content-Length:
    /// the message was cut (snaplen, IP fragment lost, TCP segment boundary).
    #[error("truncated SIP message")]
    Truncated,
    /// The first line is neither a request line nor a status line.
    #[error("malformed SIP start line")]
    BadStartLine,
    /// The start line or a header the probe needs is not UTF-8.
    #[error("SIP message is not valid UTF-8")]
    NotUtf8,
    /// A header without which the message cannot be placed in a dialog is absent.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// A needed header is present but cannot be parsed.
    #[error("malformed {0} header")]
    BadHeader(&'static str),
    /// More header lines than any real message carries ([`MAX_HEADERS`]): a flood.
    #[error("more than {MAX_HEADERS} SIP headers")]
    TooManyHeaders,
}

/// Header lines a message may have. Real ones carry a few dozen; the cap keeps the
/// work on a hostile message (a 64 KB datagram of one-letter headers) small.
pub const MAX_HEADERS: usize = 256;

/// SIP request method. Methods are case-sensitive (RFC 3261 §7.1), so `invite` is
/// [`Method::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method<'a> {
    /// INVITE (RFC 3261).
    Invite,
    /// ACK (RFC 3261).
    Ack,
    /// BYE (RFC 3261).
    Bye,
    /// CANCEL (RFC 3261).
    Cancel,
    /// OPTIONS (RFC 3261).
    Options,
    /// REGISTER (RFC 3261).
    Register,
    /// PRACK (RFC 3262).
    Prack,
    /// UPDATE (RFC 3311).
    Update,
    /// INFO (RFC 6086).
    Info,
    /// SUBSCRIBE (RFC 6665).
    Subscribe,
    /// NOTIFY (RFC 6665).
    Notify,
    /// PUBLISH (RFC 3903).
    Publish,
    /// REFER (RFC 3515).
    Refer,
    /// MESSAGE (RFC 3428).
    Message,
    /// Any other syntactically valid method token.
    Other(&'a str),
}

impl<'a> Method<'a> {
    /// Reads a method token: a known method, else [`Method::Other`] if the text is a
    /// valid RFC 3261 token, else `None`.
    pub fn from_token(token: &'a str) -> Option<Method<'a>> {
        if let Some(known) = Self::known(token.as_bytes()) {
            return Some(known);
        }
        is_token(token.as_bytes()).then_some(Method::Other(token))
    }

    fn known(token: &[u8]) -> Option<Method<'static>> {
        Some(match token {
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"BYE" => Method::Bye,
            b"CANCEL" => Method::Cancel,
            b"OPTIONS" => Method::Options,
            b"REGISTER" => Method::Register,
            b"PRACK" => Method::Prack,
            b"UPDATE" => Method::Update,
            b"INFO" => Method::Info,
            b"SUBSCRIBE" => Method::Subscribe,
            b"NOTIFY" => Method::Notify,
            b"PUBLISH" => Method::Publish,
            b"REFER" => Method::Refer,
            b"MESSAGE" => Method::Message,
            _ => return None,
        })
    }

    /// The method as it appears on the wire.
    pub fn as_str(&self) -> &'a str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Prack => "PRACK",
            Method::Update => "UPDATE",
            Method::Info => "INFO",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Publish => "PUBLISH",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Other(token) => token,
        }
    }
}

impl fmt::Display for Method<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first line of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartLine<'a> {
    /// `METHOD Request-URI SIP/2.0`
    Request {
        /// Request method.
        method: Method<'a>,
        /// Request-URI as written.
        uri: &'a str,
    },
    /// `SIP/2.0 code reason`
    Response {
        /// Status code, 100–699.
        code: u16,
        /// Reason phrase as written (may be empty).
        reason: &'a str,
    },
}

/// The CSeq header: orders transactions within a dialog and, in responses, names the
/// method being answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// Sequence number.
    pub seq: u32,
    /// Method of the transaction.
    pub method: Method<'a>,
}

/// A From/To/P-Asserted-Identity style value: `"Display" <uri>;tag=...` or a bare URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// The URI, without angle brackets. For a bare URI (no `<>`), parameters after the
    /// first `;` belong to the header (RFC 3261 §20.10) and are not part of it.
    pub uri: &'a str,
    /// The `tag` parameter, which identifies the dialog side.
    pub tag: Option<&'a str>,
    /// Display name without its quotes; backslash escapes inside are kept as written.
    pub display: Option<&'a str>,
}

impl<'a> NameAddr<'a> {
    /// Parses one name-addr or addr-spec value. `None` when there is no usable URI.
    pub fn parse(value: &'a str) -> Option<NameAddr<'a>> {
        let value = trim_lws(value);
        let (display, uri, params) = if let Some(rest) = value.strip_prefix('"') {
            let close = closing_quote(rest)?;
            let display = rest.get(..close)?;
            let after = trim_lws(rest.get(close + 1..)?);
            let (uri, params) = bracketed(after)?;
            (Some(display), uri, params)
        } else if let Some(lt) = value.find('<') {
            let display = trim_lws(value.get(..lt)?);
            let (uri, params) = bracketed(value.get(lt..)?)?;
            (Some(display), uri, params)
        } else {
            match value.split_once(';') {
                Some((uri, params)) => (None, uri, params),
                None => (None, value, ""),
            }
        };
        let uri = trim_lws(uri);
        if uri.is_empty() || uri.contains(char::is_whitespace) {
            return None;
        }
        let tag = params
            .split(';')
            .filter_map(|p| p.split_once('='))
            .find(|(name, _)| trim_lws(name).eq_ignore_ascii_case("tag"))
            .map(|(_, v)| trim_lws(v))
            .filter(|v| !v.is_empty());
        Some(NameAddr {
            uri,
            tag,
            display: display.filter(|d| !d.is_empty()),
        })
    }
}

/// `<uri>params` → (uri, params).
fn bracketed(s: &str) -> Option<(&str, &str)> {
    let inner = s.strip_prefix('<')?;
    let (uri, params) = inner.split_once('>')?;
    Some((uri, params))
}

/// Index of the quote that closes a quoted string whose opening quote was stripped.
fn closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i),
            _ => {}
        }
    }
    None
}

/// A parsed SIP request or response, borrowing from the packet bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipMessage<'a> {
    /// Request or status line.
    pub start: StartLine<'a>,
    /// Call-ID, the dialog's identifier.
    pub call_id: &'a str,
    /// From header.
    pub from: NameAddr<'a>,
    /// To header.
    pub to: NameAddr<'a>,
    /// CSeq header.
    pub cseq: CSeq<'a>,
    /// Every header in order, name as written (possibly compact) and value trimmed. A
    /// folded value keeps its embedded line break; see [`unfold`].
    pub headers: Vec<(&'a str, &'a str)>,
    /// The body, cut to Content-Length when that header is present.
    pub body: &'a [u8],
    /// The session description carried in the body, if any could be parsed.
    pub sdp: Option<SessionDescription>,
    /// Why a body that should have been SDP could not be parsed, for counting; the
    /// message itself is still usable.
    pub sdp_error: Option<SdpError>,
}

impl<'a> SipMessage<'a> {
    /// The first value of a header, matched case-insensitively and with compact forms
    /// equivalent to long ones (`i` = `Call-ID`, ...).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers_named(name).next()
    }

    /// Every value of a header (e.g. all Via lines), in order.
    pub fn headers_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a str> + 's {
        self.headers
            .iter()
            .filter(move |(n, _)| names_match(n, name))
            .map(|&(_, v)| v)
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The request method, or for a response the method it answers (from CSeq).
    pub fn method(&self) -> Method<'a> {
        match self.start {
            StartLine::Request { method, .. } => method,
            StartLine::Response { .. } => self.cseq.method,
        }
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// The caller's telephone number: the network-asserted identity (RFC 3325
    /// P-Asserted-Identity, first value that holds a number) when present, since From
    /// is whatever the caller chose to write; else the From URI. Meaningful on requests
    /// that start a dialog.
    pub fn caller_number(&self) -> Option<String> {
        self.headers_named("P-Asserted-Identity")
            .flat_map(split_values)
            .filter_map(NameAddr::parse)
            .find_map(|addr| user_number(addr.uri))
            .or_else(|| user_number(self.from.uri))
    }

    /// The callee's telephone number: the To URI, else the Request-URI (which a proxy
    /// may have retargeted to a number while To still holds a name).
    pub fn callee_number(&self) -> Option<String> {
        user_number(self.to.uri).or_else(|| match self.start {
            StartLine::Request { uri, .. } => user_number(uri),
            StartLine::Response { .. } => None,
        })
    }
}

/// Cheap test whether a datagram or segment is worth handing to [`parse`]: it starts
/// (after keep-alive CRLFs) with `SIP/2.0 ` or a known method followed by a space.
pub fn looks_like_sip(data: &[u8]) -> bool {
    let data = skip_crlf(data);
    if data.starts_with(b"SIP/2.0 ") {
        return true;
    }
    // The longest known method is SUBSCRIBE (9 bytes), so the space must come early.
    let Some(space) = data.iter().take(10).position(|&b| b == b' ') else {
        return false;
    };
    data.get(..space)
        .is_some_and(|token| Method::known(token).is_some())
}

/// Parses one SIP message from a datagram (UDP). Without Content-Length the body is the
/// rest of the datagram; with it, the body is cut to it and a shorter body is
/// [`SipError::Truncated`]. Bytes after the body are ignored (RFC 3261 §18.3).
pub fn parse(data: &[u8]) -> Result<SipMessage<'_>, SipError> {
    let data = skip_crlf(data);
    if data.is_empty() {
        return Err(SipError::Empty);
    }
    match parse_one(data, false) {
        Ok(Framed { message, .. }) => message,
        Err(Unframed::Incomplete) => Err(SipError::Truncated),
        Err(Unframed::Broken(err)) => Err(err),
    }
}

/// Parses the whole messages at the start of a stream (SIP over TCP), framed by
/// Content-Length (mandatory on streams; taken as 0 when absent). Returns one result
/// per framed message and how many bytes were consumed; the unconsumed tail is an
/// incomplete message. A message that is framed but invalid yields an `Err` and parsing
/// continues after it; when the stream cannot be framed (bad start line or
/// Content-Length) an `Err` is returned and everything is consumed, since there is no
/// way to find the next message boundary.
pub fn parse_stream(data: &[u8]) -> (Vec<Result<SipMessage<'_>, SipError>>, usize) {
    let mut messages = Vec::new();
    let mut pos = 0;
    loop {
        let rest = data.get(pos..).unwrap_or_default();
        // CRLFs between messages are keep-alives (RFC 3261 §7.5, RFC 5626 §3.5.1).
        let skipped = rest.len() - skip_crlf(rest).len();
        pos += skipped;
        let rest = data.get(pos..).unwrap_or_default();
        if rest.is_empty() {
            break;
        }
        match parse_one(rest, true) {
            Ok(Framed { message, len }) => {
                messages.push(message);
                pos += len;
            }
            Err(Unframed::Incomplete) => break,
            Err(Unframed::Broken(err)) => {
                messages.push(Err(err));
                pos = data.len();
                break;
            }
        }
    }
    (messages, pos)
}

/// The telephone number in a SIP, SIPS or tel URI (also accepted inside `<...>`), if its
/// user part is dialable: an optional leading `+` and digits once the visual separators
/// `-` `.` `(` `)` and spaces (RFC 3966 §5.1.1) and percent-escapes are removed. The
/// number is kept as given, not converted to E.164: `sip:07700900123@host` gives
/// `07700900123`. Names (`sip:alice@host`), service codes (`*67`) and URIs without a
/// user part give `None`.
pub fn user_number(uri: &str) -> Option<String> {
    let uri = trim_lws(uri);
    let uri = match (uri.find('<'), uri.rfind('>')) {
        (Some(open), Some(close)) if open < close => uri.get(open + 1..close)?,
        _ => uri,
    };
    let (scheme, rest) = uri.split_once(':')?;
    let user = if scheme.eq_ignore_ascii_case("tel") {
        rest.split(';').next()?
    } else if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
        let (userinfo, _host) = rest.split_once('@')?;
        // `user;param=x:password` — user parameters (RFC 4694 npdi, rn) and the
        // deprecated password are not part of the number.
        userinfo.split([';', ':']).next()?
    } else {
        return None;
    };
    let user = percent_decode(user)?;
    let mut number = String::with_capacity(user.len());
    for c in user.chars() {
        match c {
            '0'..='9' => number.push(c),
            '+' if number.is_empty() => number.push(c),
            '-' | '.' | '(' | ')' | ' ' => {}
            _ => return None,
        }
    }
    number.bytes().any(|b| b.is_ascii_digit()).then_some(number)
}

/// A header value with folded line breaks (RFC 3261 §7.3.1 LWS) replaced by one space.
/// Borrows unless the value was actually folded.
pub fn unfold(value: &str) -> Cow<'_, str> {
    if !value.contains(['\r', '\n']) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    let mut in_break = false;
    for c in value.chars() {
        if matches!(c, '\r' | '\n') {
            in_break = true;
            continue;
        }
        if in_break {
            if matches!(c, ' ' | '\t') {
                continue;
            }
            // Folding replaces the break and the whitespace around it with one space.
            let trimmed = out.trim_end_matches([' ', '\t']).len();
            out.truncate(trimmed);
            out.push(' ');
            in_break = false;
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// A message whose extent is known: `len` bytes belong to it even if it is invalid.
struct Framed<'a> {
    message: Result<SipMessage<'a>, SipError>,
    len: usize,
}

/// Why no message extent could be determined.
enum Unframed {
    /// More bytes are needed.
    Incomplete,
    /// The bytes do not frame as SIP at all.
    Broken(SipError),
}

/// Reads the message at the start of `data` (leading CRLFs already skipped). On a stream
/// a missing Content-Length means an empty body, in a datagram the rest of it.
fn parse_one(data: &[u8], stream: bool) -> Result<Framed<'_>, Unframed> {
    // The start line is checked before looking for the end of the header section so that
    // garbage is reported as such rather than as a truncated message.
    let Some(first_len) = data.iter().position(|&b| b == b'\n') else {
        // A cut start line counts as truncated only while it could still become one.
        return Err(if could_be_start_line(data) {
            Unframed::Incomplete
        } else {
            Unframed::Broken(SipError::BadStartLine)
        });
    };
    let first = data.get(..first_len).unwrap_or_default();
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    let start = match std::str::from_utf8(first) {
        Ok(line) => match parse_start_line(line) {
            Some(start) => start,
            None => return Err(Unframed::Broken(SipError::BadStartLine)),
        },
        Err(_) => return Err(Unframed::Broken(SipError::NotUtf8)),
    };
    let Some((head_len, body_start)) = find_head_end(data) else {
        return Err(Unframed::Incomplete);
    };
    let head = data.get(first_len + 1..head_len).unwrap_or_default();
    let (headers, deferred) = parse_headers(head);
    if headers.len() > MAX_HEADERS {
        return Err(Unframed::Broken(SipError::TooManyHeaders));
    }

    let body_len = match headers
        .iter()
        .find(|(name, _)| names_match(name, "Content-Length"))
    {
        Some((_, value)) => match value.parse::<usize>() {
            Ok(len) => len,
            Err(_) => return Err(Unframed::Broken(SipError::BadHeader("Content-Length"))),
        },
        None if stream => 0,
        None => data.len().saturating_sub(body_start),
    };
    let Some(end) = body_start.checked_add(body_len) else {
        return Err(Unframed::Incomplete);
    };
    let Some(body) = data.get(body_start..end) else {
        return Err(Unframed::Incomplete);
    };
    let message = match deferred {
        Some(err) => Err(err),
        None => build(start, headers, body),
    };
    Ok(Framed { message, len: end })
}

/// Assembles a message once framing is done: checks the dialog headers, finds the SDP.
fn build<'a>(
    start: StartLine<'a>,
    headers: Vec<(&'a str, &'a str)>,
    body: &'a [u8],
) -> Result<SipMessage<'a>, SipError> {
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| names_match(n, name))
            .map(|&(_, v)| v)
    };
    let call_id = find("Call-ID").ok_or(SipError::MissingHeader("Call-ID"))?;
    if call_id.is_empty() || call_id.contains(char::is_whitespace) {
        return Err(SipError::BadHeader("Call-ID"));
    }
    let from = find("From").ok_or(SipError::MissingHeader("From"))?;
    let from = NameAddr::parse(from).ok_or(SipError::BadHeader("From"))?;
    let to = find("To").ok_or(SipError::MissingHeader("To"))?;
    let to = NameAddr::parse(to).ok_or(SipError::BadHeader("To"))?;
    let cseq = find("CSeq").ok_or(SipError::MissingHeader("CSeq"))?;
    let cseq = parse_cseq(cseq).ok_or(SipError::BadHeader("CSeq"))?;

    let (sdp, sdp_error) = match sdp_body(find("Content-Type"), body) {
        Some(bytes) => match sdp::parse(bytes) {
            Ok(sdp) => (Some(sdp), None),
            Err(err) => (None, Some(err)),
        },
        None => (None, None),
    };
    Ok(SipMessage {
        start,
        call_id,
        from,
        to,
        cseq,
        headers,
        body,
        sdp,
        sdp_error,
    })
}

fn parse_start_line(line: &str) -> Option<StartLine<'_>> {
    if let Some(rest) = strip_prefix_ignore_case(line, "SIP/2.0 ") {
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let code: u16 = code.parse().ok().filter(|c| (100..=699).contains(c))?;
        return Some(StartLine::Response {
            code,
            reason: trim_lws(reason),
        });
    }
    let mut parts = line.split(' ').filter(|p| !p.is_empty());
    let method = Method::from_token(parts.next()?)?;
    let uri = parts.next()?;
    let version = parts.next()?;
    if parts.next().is_some() || !version.eq_ignore_ascii_case("SIP/2.0") || !uri.contains(':') {
        return None;
    }
    Some(StartLine::Request { method, uri })
}

/// Whether an unterminated first line is free of the control bytes a start line cannot
/// hold, so that binary payloads are not mistaken for cut SIP.
fn could_be_start_line(partial: &[u8]) -> bool {
    let partial = partial.strip_suffix(b"\r").unwrap_or(partial);
    partial
        .iter()
        .all(|&b| (b >= 0x20 && b != 0x7f) || b == b'\t')
}

fn parse_cseq(value: &str) -> Option<CSeq<'_>> {
    let mut parts = value.split_ascii_whitespace();
    let seq = parts.next()?.parse().ok()?;
    let method = Method::from_token(parts.next()?)?;
    if parts.next().is_some() {
        return None;
    }
    Some(CSeq { seq, method })
}

/// Finds the empty line that ends the header section: returns (length of the header
/// section including its last line break, offset of the body).
fn find_head_end(data: &[u8]) -> Option<(usize, usize)> {
    let mut pos = 0;
    loop {
        let rest = data.get(pos..)?;
        let newline = rest.iter().position(|&b| b == b'\n')?;
        let line = rest.get(..newline)?;
        if line.is_empty() || line == b"\r" {
            return Some((pos, pos + newline + 1));
        }
        pos += newline + 1;
    }
}

/// Byte ranges of the lines of `buf`, without their CRLF or LF.
fn line_ranges(buf: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || {
        let rest = buf.get(pos..).filter(|r| !r.is_empty())?;
        let (len, advance) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (i, i + 1),
            None => (rest.len(), rest.len()),
        };
        let start = pos;
        let mut end = pos + len;
        if end > start && buf.get(end - 1) == Some(&b'\r') {
            end -= 1;
        }
        pos += advance;
        Some((start, end))
    })
}

/// Splits header lines into (name, value), joining folded continuation lines. Values
/// are borrowed as one contiguous slice, so a folded value keeps its line break. Lines
/// that are not `name: value` are skipped. A non-UTF-8 value is dropped unless the
/// header is one the probe needs, in which case the error is returned for the message.
fn parse_headers(head: &[u8]) -> (Vec<(&str, &str)>, Option<SipError>) {
    let mut headers = Vec::new();
    let mut deferred = None;
    let mut pending: Option<HeaderSpan> = None;

    for (start, end) in line_ranges(head) {
        let line = head.get(start..end).unwrap_or_default();
        if line.first().is_some_and(|&b| is_wsp(b)) {
            if let Some(span) = pending.as_mut() {
                span.value_end = end;
            }
            continue;
        }
        if let Some(span) = pending.take() {
            span.push_to(head, &mut headers, &mut deferred);
        }
        if headers.len() > MAX_HEADERS {
            // The caller refuses the message; no need to read the rest.
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line.get(..colon).unwrap_or_default();
        let name_len = name.len() - name.iter().rev().take_while(|&&b| is_wsp(b)).count();
        if !is_token(name.get(..name_len).unwrap_or_default()) {
            continue;
        }
        pending = Some(HeaderSpan {
            name_start: start,
            name_end: start + name_len,
            value_start: start + colon + 1,
            value_end: end,
        });
    }
    if let Some(span) = pending {
        span.push_to(head, &mut headers, &mut deferred);
    }
    (headers, deferred)
}

/// Where one (possibly folded) header lies in the header section.
struct HeaderSpan {
    name_start: usize,
    name_end: usize,
    value_start: usize,
    value_end: usize,
}

impl HeaderSpan {
    fn push_to<'a>(
        &self,
        head: &'a [u8],
        headers: &mut Vec<(&'a str, &'a str)>,
        deferred: &mut Option<SipError>,
    ) {
        // The name was checked to be a token, so it is ASCII.
        let Some(Ok(name)) = head
            .get(self.name_start..self.name_end)
            .map(std::str::from_utf8)
        else {
            return;
        };
        match head
            .get(self.value_start..self.value_end)
            .map(std::str::from_utf8)
        {
            Some(Ok(value)) => headers.push((name, trim_lws(value))),
            _ => {
                if is_needed(name) && deferred.is_none() {
                    *deferred = Some(SipError::NotUtf8);
                }
            }
        }
    }
}

/// Headers whose loss would make the message unusable or misframed.
fn is_needed(name: &str) -> bool {
    [
        "Call-ID",
        "From",
        "To",
        "CSeq",
        "Content-Length",
        "Content-Type",
    ]
    .iter()
    .any(|needed| names_match(name, needed))
}

/// The bytes of the SDP in a body: the whole body for `application/sdp`, the SDP part of
/// a `multipart/*` body, or, with any other or no type, a body that starts like SDP.
fn sdp_body<'a>(content_type: Option<&str>, body: &'a [u8]) -> Option<&'a [u8]> {
    if body.is_empty() {
        return None;
    }
    if let Some(ct) = content_type {
        let media_type = trim_lws(ct.split(';').next().unwrap_or_default());
        if media_type.eq_ignore_ascii_case("application/sdp") {
            return Some(body);
        }
        if strip_prefix_ignore_case(media_type, "multipart/").is_some() {
            return multipart_sdp(ct, body);
        }
    }
    body.starts_with(b"v=0").then_some(body)
}

/// The content of the first `application/sdp` part of a MIME multipart body (RFC 2046
/// §5.1), e.g. SDP next to ISUP from a SIP-T gateway. Nested multiparts are not searched.
fn multipart_sdp<'a>(content_type: &str, body: &'a [u8]) -> Option<&'a [u8]> {
    let boundary = content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        trim_lws(name)
            .eq_ignore_ascii_case("boundary")
            .then(|| trim_lws(value).trim_matches('"'))
    })?;
    if boundary.is_empty() {
        return None;
    }
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    // A delimiter only counts at the start of a line.
    let starts: Vec<usize> = body
        .windows(delimiter.len())
        .enumerate()
        .filter(|&(i, window)| window == delimiter && (i == 0 || body.get(i - 1) == Some(&b'\n')))
        .map(|(i, _)| i)
        .collect();
    for pair in starts.windows(2) {
        let [this, next] = *pair else {
            continue;
        };
        let part = body.get(this + delimiter.len()..next)?;
        if part.starts_with(b"--") {
            break;
        }
        // The line break before a delimiter belongs to the delimiter.
        let part = part.strip_suffix(b"\n").unwrap_or(part);
        let part = part.strip_suffix(b"\r").unwrap_or(part);
        // Skip the rest of the delimiter line (transport padding).
        let after_delimiter = part.iter().position(|&b| b == b'\n')? + 1;
        let part = part.get(after_delimiter..)?;
        let (head_len, content_start) = find_head_end(part)?;
        let (part_headers, _) = parse_headers(part.get(..head_len)?);
        let is_sdp = part_headers.iter().any(|(name, value)| {
            names_match(name, "Content-Type")
                && trim_lws(value.split(';').next().unwrap_or_default())
                    .eq_ignore_ascii_case("application/sdp")
        });
        if is_sdp {
            return part.get(content_start..);
        }
    }
    None
}

/// Splits a header value into its comma-separated values, ignoring commas inside quoted
/// strings and angle brackets (where URIs may contain them).
fn split_values(value: &str) -> Vec<&str> {
    let mut values = Vec::new();
    let (mut in_quotes, mut escaped, mut in_angle) = (false, false, false);
    let mut start = 0;
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '<' if !in_quotes => in_angle = true,
            '>' if !in_quotes => in_angle = false,
            ',' if !in_quotes && !in_angle => {
                values.extend(value.get(start..i));
                start = i + 1;
            }
            _ => {}
        }
    }
    values.extend(value.get(start..));
    values
}

/// Header name comparison: case-insensitive, with RFC 3261 §7.3.3 (and later RFCs')
/// compact forms equal to their long forms.
fn names_match(a: &str, b: &str) -> bool {
    expand_compact(a).eq_ignore_ascii_case(expand_compact(b))
}

fn expand_compact(name: &str) -> &str {
    let [letter] = name.as_bytes() else {
        return name;
    };
    match letter.to_ascii_lowercase() {
        b'i' => "Call-ID",
        b'f' => "From",
        b't' => "To",
        b'm' => "Contact",
        b'c' => "Content-Type",
        b'l' => "Content-Length",
        b'v' => "Via",
        b'e' => "Content-Encoding",
        b'k' => "Supported",
        b's' => "Subject",
        b'o' => "Event",
        b'r' => "Refer-To",
        b'b' => "Referred-By",
        b'u' => "Allow-Events",
        b'x' => "Session-Expires",
        b'a' => "Accept-Contact",
        b'j' => "Reject-Contact",
        b'd' => "Request-Disposition",
        b'y' => "Identity",
        b'n' => "Identity-Info",
        _ => name,
    }
}

/// RFC 3261 `token` characters.
fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes.iter().all(|&b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
                )
        })
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Trims linear whitespace, including the line breaks a folded value keeps.
fn trim_lws(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\r', '\n'])
}

fn skip_crlf(data: &[u8]) -> &[u8] {
    let n = data
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    data.get(n..).unwrap_or_default()
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

/// Decodes `%XX` escapes; `None` on a malformed escape or non-UTF-8 result.
fn percent_decode(s: &str) -> Option<Cow<'_, str>> {
    if !s.contains('%') {
        return Some(Cow::Borrowed(s));
    }
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = char::from(bytes.next()?).to_digit(16)?;
            let lo = char::from(bytes.next()?).to_digit(16)?;
            out.push(u8::try_from(hi * 16 + lo).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

#[cfg(test)]
mod tests;
