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
}

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
mod tests {
    use super::*;
    use crate::sdp::Direction;
    use std::net::{IpAddr, Ipv4Addr};

    const INVITE: &[u8] = b"INVITE sip:+447700900123@sbc.example.net;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
From: \"Alice \\\"A\\\" Smith\" <sip:+44(20)7946-0018@example.com>;tag=1928301774\r\n\
To: <sip:+447700900123@sbc.example.net;user=phone>\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@198.51.100.1>\r\n\
x-agent-id: agent-42\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 256\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 198.51.100.1\r\n\
s=-\r\n\
c=IN IP4 198.51.100.1\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=ptime:20\r\n\
a=rtcp:49171\r\n\
a=sendrecv\r\n";

    /// A message with the given headers and body, Content-Length computed.
    fn message(start: &str, headers: &[&str], body: &str) -> Vec<u8> {
        let mut out = format!("{start}\r\n");
        for h in headers {
            out.push_str(h);
            out.push_str("\r\n");
        }
        out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        out.into_bytes()
    }

    const DIALOG: [&str; 5] = [
        "Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKnashds8",
        "From: Alice <sip:alice@example.com>;tag=1928301774",
        "To: Bob <sip:bob@example.net>;tag=a6c85cf",
        "Call-ID: a84b4c76e66710@pc33.example.com",
        "CSeq: 314159 INVITE",
    ];

    fn with_cseq(cseq: &str) -> Vec<&str> {
        let mut headers = DIALOG.to_vec();
        headers[4] = cseq;
        headers
    }

    #[test]
    fn invite_with_sdp() {
        assert_eq!(
            INVITE.len() - INVITE.windows(4).position(|w| w == b"\r\n\r\n").unwrap() - 4,
            256
        );
        let msg = parse(INVITE).unwrap();
        assert_eq!(
            msg.start,
            StartLine::Request {
                method: Method::Invite,
                uri: "sip:+447700900123@sbc.example.net;user=phone"
            }
        );
        assert!(msg.is_request());
        assert_eq!(msg.method(), Method::Invite);
        assert_eq!(msg.status(), None);
        assert_eq!(msg.call_id, "a84b4c76e66710@pc33.example.com");
        assert_eq!(msg.from.display, Some("Alice \\\"A\\\" Smith"));
        assert_eq!(msg.from.uri, "sip:+44(20)7946-0018@example.com");
        assert_eq!(msg.from.tag, Some("1928301774"));
        assert_eq!(msg.to.tag, None);
        assert_eq!(msg.to.uri, "sip:+447700900123@sbc.example.net;user=phone");
        assert_eq!(
            msg.cseq,
            CSeq {
                seq: 314159,
                method: Method::Invite
            }
        );
        assert_eq!(msg.header("X-Agent-Id"), Some("agent-42"));
        assert_eq!(msg.header("X-AGENT-ID"), Some("agent-42"));
        assert_eq!(msg.header("Max-Forwards"), Some("70"));
        assert_eq!(msg.header("P-Asserted-Identity"), None);
        assert_eq!(msg.caller_number().as_deref(), Some("+442079460018"));
        assert_eq!(msg.callee_number().as_deref(), Some("+447700900123"));
        assert_eq!(msg.body.len(), 256);

        let sdp = msg.sdp.as_ref().unwrap();
        assert!(msg.sdp_error.is_none());
        let audio = &sdp.media[0];
        assert_eq!(audio.port, 49170);
        assert_eq!(audio.formats, vec![0, 8, 101]);
        assert_eq!(audio.codec_for_pt(0).unwrap().encoding, "PCMU");
        assert_eq!(audio.codec_for_pt(8).unwrap().encoding, "PCMA");
        assert_eq!(audio.codec_for_pt(101).unwrap().encoding, "telephone-event");
        assert_eq!(audio.ptime_ms, Some(20));
        assert_eq!(audio.rtcp_port(), 49171);
        assert_eq!(audio.direction, Direction::SendRecv);
        assert_eq!(
            audio.effective_addr(sdp),
            Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)))
        );
        assert!(looks_like_sip(INVITE));
    }

    #[test]
    fn dialog_messages() {
        let ringing = message("SIP/2.0 180 Ringing", &DIALOG, "");
        let msg = parse(&ringing).unwrap();
        assert_eq!(
            msg.start,
            StartLine::Response {
                code: 180,
                reason: "Ringing"
            }
        );
        assert_eq!(msg.status(), Some(180));
        assert_eq!(msg.method(), Method::Invite);
        assert_eq!(msg.to.tag, Some("a6c85cf"));
        assert!(msg.body.is_empty() && msg.sdp.is_none() && msg.sdp_error.is_none());

        let sdp = "v=0\r\no=bob 1 1 IN IP4 203.0.113.9\r\ns=-\r\nc=IN IP4 203.0.113.9\r\n\
                   t=0 0\r\nm=audio 3456 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
        let ok = message(
            "SIP/2.0 200 OK",
            &[&DIALOG[..], &["Content-Type: application/sdp"]].concat(),
            sdp,
        );
        let msg = parse(&ok).unwrap();
        assert_eq!(msg.status(), Some(200));
        let answer = msg.sdp.as_ref().unwrap();
        assert_eq!(answer.media[0].port, 3456);
        assert_eq!(
            answer.connection,
            Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)))
        );

        let ack = message(
            "ACK sip:bob@203.0.113.9 SIP/2.0",
            &with_cseq("CSeq: 314159 ACK"),
            "",
        );
        let msg = parse(&ack).unwrap();
        assert_eq!(msg.method(), Method::Ack);
        assert_eq!(msg.cseq.method, Method::Ack);

        let bye = message(
            "BYE sip:alice@198.51.100.1 SIP/2.0",
            &with_cseq("CSeq: 231 BYE"),
            "",
        );
        let msg = parse(&bye).unwrap();
        assert_eq!(msg.method(), Method::Bye);
        assert_eq!(msg.cseq.seq, 231);

        let cancel = message(
            "CANCEL sip:bob@example.net SIP/2.0",
            &with_cseq("CSeq: 314159 CANCEL"),
            "",
        );
        assert_eq!(parse(&cancel).unwrap().method(), Method::Cancel);

        let terminated = message("SIP/2.0 487 Request Terminated", &DIALOG, "");
        let msg = parse(&terminated).unwrap();
        assert_eq!(
            msg.start,
            StartLine::Response {
                code: 487,
                reason: "Request Terminated"
            }
        );
        assert_eq!(msg.method(), Method::Invite);

        // An empty reason phrase is legal.
        let bare = message("SIP/2.0 503", &DIALOG, "");
        assert_eq!(
            parse(&bare).unwrap().start,
            StartLine::Response {
                code: 503,
                reason: ""
            }
        );
        // Unknown methods are kept, not rejected.
        let custom = message("FOO sip:x@y SIP/2.0", &with_cseq("CSeq: 1 FOO"), "");
        assert_eq!(parse(&custom).unwrap().method(), Method::Other("FOO"));
        assert_eq!(Method::Other("FOO").to_string(), "FOO");
    }

    #[test]
    fn reinvite_with_new_port_and_hold() {
        let sdp = "v=0\r\no=alice 2890844526 2890844527 IN IP4 198.51.100.1\r\ns=-\r\n\
                   c=IN IP4 198.51.100.1\r\nt=0 0\r\nm=audio 51372 RTP/AVP 0\r\n\
                   a=rtpmap:0 PCMU/8000\r\na=sendonly\r\n";
        let reinvite = message(
            "INVITE sip:bob@203.0.113.9 SIP/2.0",
            &[
                &with_cseq("CSeq: 314160 INVITE")[..],
                &["Content-Type: application/sdp"],
            ]
            .concat(),
            sdp,
        );
        let msg = parse(&reinvite).unwrap();
        assert_eq!(
            msg.to.tag,
            Some("a6c85cf"),
            "in-dialog request carries the To tag"
        );
        let sdp = msg.sdp.as_ref().unwrap();
        assert_eq!(
            sdp.origin.as_ref().unwrap().session_version,
            Some(2890844527)
        );
        assert_eq!(sdp.media[0].port, 51372);
        assert_eq!(sdp.media[0].direction, Direction::SendOnly);
        assert!(sdp.is_held());
    }

    #[test]
    fn compact_headers() {
        let body = "v=0\r\nc=IN IP6 2001:db8::1\r\nm=audio 7078 RTP/AVP 111 96\r\n\
                    a=rtpmap:111 opus/48000/2\r\na=rtpmap:96 AMR/8000\r\na=rtcp-mux\r\n";
        let raw = format!(
            "INVITE sip:bob@example.net SIP/2.0\r\nv: SIP/2.0/UDP [2001:db8::1]:5060\r\n\
             f: <sip:alice@example.com>;tag=88sja8x\r\nt: sip:bob@example.net\r\n\
             i: f81d4fae-7dec-11d0-a765-00a0c91e6bf6@foo.example.com\r\n\
             CSEQ: 1 INVITE\r\nm: <sip:alice@[2001:db8::1]>\r\nc: application/sdp\r\n\
             l: {}\r\n\r\n{body}",
            body.len()
        );
        let msg = parse(raw.as_bytes()).unwrap();
        assert_eq!(
            msg.call_id,
            "f81d4fae-7dec-11d0-a765-00a0c91e6bf6@foo.example.com"
        );
        assert_eq!(msg.from.tag, Some("88sja8x"));
        assert_eq!(msg.to.uri, "sip:bob@example.net");
        assert_eq!(msg.header("Call-ID"), Some(msg.call_id));
        assert_eq!(msg.header("contact"), Some("<sip:alice@[2001:db8::1]>"));
        assert_eq!(msg.header("i"), Some(msg.call_id));
        assert_eq!(msg.header("Via"), Some("SIP/2.0/UDP [2001:db8::1]:5060"));
        let sdp = msg.sdp.as_ref().unwrap();
        let audio = &sdp.media[0];
        assert_eq!(
            audio.effective_addr(sdp),
            Some("2001:db8::1".parse().unwrap())
        );
        assert!(audio.rtcp_mux);
        assert_eq!(audio.rtcp_port(), 7078);
        let opus = audio.codec_for_pt(111).unwrap();
        assert_eq!(
            (opus.encoding.as_str(), opus.clock_rate, opus.channels),
            ("opus", 48000, Some(2))
        );
        let amr = audio.codec_for_pt(96).unwrap();
        assert_eq!((amr.encoding.as_str(), amr.clock_rate), ("AMR", 8000));
    }

    #[test]
    fn header_folding_and_lf_only() {
        let raw = b"BYE sip:alice@198.51.100.1 SIP/2.0\n\
From: Bob\n <sip:bob@example.net>;tag=a6c85cf\n\
To: Alice <sip:alice@example.com>\n\t;tag=1928301774\n\
Call-ID: a84b4c76e66710@pc33.example.com\n\
CSeq: 231\n  BYE\n\
X-Agent-Id: agent\n  007\n\
Content-Length: 0\n\n";
        let msg = parse(raw).unwrap();
        assert_eq!(msg.from.uri, "sip:bob@example.net");
        assert_eq!(msg.from.display, Some("Bob"));
        assert_eq!(msg.to.tag, Some("1928301774"));
        assert_eq!(
            msg.cseq,
            CSeq {
                seq: 231,
                method: Method::Bye
            }
        );
        let agent = msg.header("x-agent-id").unwrap();
        assert_eq!(agent, "agent\n  007");
        assert_eq!(unfold(agent), "agent 007");
        assert!(matches!(unfold("plain"), Cow::Borrowed("plain")));
        assert_eq!(unfold("a \r\n\t b"), "a b");
    }

    #[test]
    fn numbers() {
        let cases = [
            ("sip:+447700900123@host;user=phone", Some("+447700900123")),
            ("tel:+44-7700-900123", Some("+447700900123")),
            (
                "tel:+1-201-555-0123;phone-context=example.com",
                Some("+12015550123"),
            ),
            ("TEL:7042;phone-context=example.com", Some("7042")),
            ("sip:07700900123@host", Some("07700900123")),
            ("sips:(0)20.7946.0018@host", Some("02079460018")),
            ("sip:+44%2077%2000@host", Some("+447700")),
            ("sip:%2B447700900123@host", Some("+447700900123")),
            (
                "sip:+447700900123;npdi;rn=+4477@host",
                Some("+447700900123"),
            ),
            ("sip:1234:secret@host", Some("1234")),
            ("<sip:+447700900123@host>", Some("+447700900123")),
            ("\"Bob\" <tel:+447700900123>;tag=x", Some("+447700900123")),
            ("sip:alice@host", None),
            ("sip:host.example.com", None),
            ("sip:*67@host", None),
            ("sip:+@host", None),
            ("sip:44+77@host", None),
            ("sip:%zz@host", None),
            ("mailto:123@host", None),
            ("", None),
            ("tel:", None),
        ];
        for (uri, want) in cases {
            assert_eq!(user_number(uri).as_deref(), want, "{uri}");
        }
    }

    #[test]
    fn caller_prefers_asserted_identity_and_callee_falls_back_to_request_uri() {
        let headers = [
            "From: \"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=1",
            "To: <sip:sales@example.net>",
            "Call-ID: pai-test",
            "CSeq: 1 INVITE",
            "P-Asserted-Identity: \"Alice, Sales\" <sip:alice@example.com>, <tel:+447700900123>",
        ];
        let raw = message(
            "INVITE sip:+442079460000@gw.example.net SIP/2.0",
            &headers,
            "",
        );
        let msg = parse(&raw).unwrap();
        assert_eq!(msg.caller_number().as_deref(), Some("+447700900123"));
        assert_eq!(msg.callee_number().as_deref(), Some("+442079460000"));
        assert_eq!(msg.to.tag, None);

        // Without PAI the From URI decides; a name gives no number.
        let raw = message("INVITE sip:bob@example.net SIP/2.0", &DIALOG, "");
        let msg = parse(&raw).unwrap();
        assert_eq!(msg.caller_number(), None);
        assert_eq!(msg.callee_number(), None);
    }

    #[test]
    fn name_addr_forms() {
        let parsed =
            NameAddr::parse("\"philippec1\"<sip:10008@192.168.10.2>;tag=as0b1a917b").unwrap();
        assert_eq!(parsed.display, Some("philippec1"));
        assert_eq!(parsed.uri, "sip:10008@192.168.10.2");
        assert_eq!(parsed.tag, Some("as0b1a917b"));
        // Bare URI: parameters after ';' are header parameters.
        let bare = NameAddr::parse("sip:alice@example.com;TAG=xyz").unwrap();
        assert_eq!(
            (bare.uri, bare.tag, bare.display),
            ("sip:alice@example.com", Some("xyz"), None)
        );
        // URI parameters inside brackets are not the tag.
        let inner = NameAddr::parse("<sip:a@b;tag=inner>;x=1").unwrap();
        assert_eq!((inner.uri, inner.tag), ("sip:a@b;tag=inner", None));
        assert_eq!(NameAddr::parse("\"unterminated <sip:a@b>"), None);
        assert_eq!(NameAddr::parse("Bob <sip:a@b"), None);
        assert_eq!(NameAddr::parse("<>"), None);
        assert_eq!(NameAddr::parse(""), None);
        assert_eq!(
            split_values("\"a, b\" <sip:x@y>, <sip:p,q@r>;tag=1, tel:+1"),
            vec!["\"a, b\" <sip:x@y>", " <sip:p,q@r>;tag=1", " tel:+1"]
        );
    }

    #[test]
    fn truncated_and_missing_headers() {
        // Body shorter than Content-Length.
        let mut short = message("SIP/2.0 200 OK", &DIALOG, "v=0\r\n");
        short.truncate(short.len() - 2);
        assert_eq!(parse(&short), Err(SipError::Truncated));
        // Extra bytes after the body are not part of the message.
        let mut long = message("SIP/2.0 200 OK", &DIALOG, "v=0\r\n");
        long.extend_from_slice(b"garbage");
        assert_eq!(parse(&long).unwrap().body, b"v=0\r\n");
        // Without Content-Length, a datagram's body is the rest of it.
        let no_len = b"SIP/2.0 200 OK\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\n\
                       Call-ID: x\r\nCSeq: 1 INVITE\r\n\r\nv=0\r\nm=audio 5 RTP/AVP 0\r\n";
        let msg = parse(no_len).unwrap();
        assert_eq!(msg.sdp.unwrap().media[0].port, 5);

        for (i, name) in ["From", "To", "Call-ID", "CSeq"].iter().enumerate() {
            let mut headers = DIALOG.to_vec();
            headers.remove(i + 1);
            let raw = message("SIP/2.0 200 OK", &headers, "");
            assert_eq!(parse(&raw), Err(SipError::MissingHeader(name)), "{name}");
        }
        for (i, bad) in [
            "From: <sip:a@b",
            "To: \"x",
            "Call-ID: has space",
            "CSeq: x INVITE",
        ]
        .iter()
        .enumerate()
        {
            let mut headers = DIALOG.to_vec();
            headers[i + 1] = bad;
            let raw = message("SIP/2.0 200 OK", &headers, "");
            assert!(matches!(parse(&raw), Err(SipError::BadHeader(_))), "{bad}");
        }
        let raw = message("SIP/2.0 200 OK", &with_cseq("CSeq: 4294967296 INVITE"), "");
        assert_eq!(parse(&raw), Err(SipError::BadHeader("CSeq")));
        let mut raw = message("SIP/2.0 200 OK", &DIALOG, "");
        let at = raw
            .windows(16)
            .position(|w| w == b"Content-Length: ")
            .unwrap();
        raw.splice(at + 16..at + 17, b"x".iter().copied());
        assert_eq!(parse(&raw), Err(SipError::BadHeader("Content-Length")));
    }

    #[test]
    fn bad_start_lines_and_garbage() {
        for start in [
            "SIP/2.0 99 Low",
            "SIP/2.0 700 High",
            "SIP/2.0 2000 Long",
            "SIP/2.0 OK",
            "INVITE sip:a@b",
            "INVITE sip:a@b HTTP/1.1",
            "INVITE  SIP/2.0",
            "INVITE sip:a@b SIP/2.0 extra",
            "INV(TE sip:a@b SIP/2.0",
            "GET / HTTP/1.1",
        ] {
            let raw = message(start, &DIALOG, "");
            assert_eq!(parse(&raw), Err(SipError::BadStartLine), "{start}");
        }
        assert_eq!(parse(b""), Err(SipError::Empty));
        assert_eq!(parse(b"\r\n\r\n"), Err(SipError::Empty));
        assert_eq!(
            parse(b"\x80\x00\x12\x34\xde\xad\xbe\xef\n\n"),
            Err(SipError::NotUtf8)
        );
        assert_eq!(
            parse(b"\x80\x00\x12\x34\xde\xad\xbe\xef"),
            Err(SipError::BadStartLine)
        );
        assert_eq!(parse(b"SIP/2.0 200 O"), Err(SipError::Truncated));
        assert!(!looks_like_sip(b"\x80\x00\x12\x34\xde\xad\xbe\xef"));
        assert!(!looks_like_sip(b""));
        assert!(!looks_like_sip(b"\r\n\r\n"));
        assert!(!looks_like_sip(b"GET / HTTP/1.1\r\n"));
        assert!(!looks_like_sip(b"INVITEsip:a@b"));
        assert!(!looks_like_sip(b"invite sip:a@b SIP/2.0"));
        assert!(looks_like_sip(b"\r\nBYE sip:a@b SIP/2.0\r\n"));
        assert!(looks_like_sip(b"SUBSCRIBE sip:a@b SIP/2.0\r\n"));
        assert!(looks_like_sip(b"SIP/2.0 487 Request Terminated\r\n"));
    }

    #[test]
    fn non_utf8_values() {
        // In a header the probe does not need: dropped, message still usable.
        let mut raw = message("SIP/2.0 200 OK", &DIALOG, "");
        raw.splice(16..16, b"User-Agent: caf\xe9\r\n".iter().copied());
        let msg = parse(&raw).unwrap();
        assert_eq!(msg.header("User-Agent"), None);
        // In the Call-ID: an error.
        let raw = message("SIP/2.0 200 OK", &DIALOG, "");
        let mut raw = raw;
        let at = raw.windows(8).position(|w| w == b"Call-ID:").unwrap();
        raw.insert(at + 10, 0xff);
        assert_eq!(parse(&raw), Err(SipError::NotUtf8));
    }

    #[test]
    fn bad_sdp_is_reported_not_fatal() {
        let raw = message(
            "SIP/2.0 200 OK",
            &[&DIALOG[..], &["Content-Type: application/sdp"]].concat(),
            "hello",
        );
        let msg = parse(&raw).unwrap();
        assert_eq!(msg.sdp, None);
        assert_eq!(msg.sdp_error, Some(SdpError::Empty));
        // Other body types are left alone.
        let raw = message(
            "INFO sip:a@b SIP/2.0",
            &[
                &with_cseq("CSeq: 2 INFO")[..],
                &["Content-Type: application/dtmf-relay"],
            ]
            .concat(),
            "Signal=5\r\nDuration=160\r\n",
        );
        let msg = parse(&raw).unwrap();
        assert_eq!((msg.sdp, msg.sdp_error), (None, None));
    }

    #[test]
    fn multipart_body() {
        let body = "--unique-boundary-1\r\n\
Content-Type: application/sdp\r\n\
\r\n\
v=0\r\n\
c=IN IP4 192.0.2.4\r\n\
m=audio 6666 RTP/AVP 8\r\n\
\r\n\
--unique-boundary-1\r\n\
Content-Type: application/ISUP; version=nxv3\r\n\
Content-Disposition: signal; handling=optional\r\n\
\r\n\
\x01\x00\x49\x00\r\n\
--unique-boundary-1--\r\n";
        let raw = message(
            "INVITE sip:+15551234567@gw.example.net SIP/2.0",
            &[
                &DIALOG[..],
                &["Content-Type: multipart/mixed; boundary=\"unique-boundary-1\""],
            ]
            .concat(),
            body,
        );
        let msg = parse(&raw).unwrap();
        let sdp = msg.sdp.unwrap();
        assert_eq!(sdp.media[0].port, 6666);
        assert_eq!(sdp.media[0].codec_for_pt(8).unwrap().encoding, "PCMA");

        // SDP as the second part, unquoted boundary, no SDP at all.
        let body = "--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nc: application/sdp\r\n\r\n\
                    v=0\r\nm=audio 7 RTP/AVP 0\r\n--b--";
        let ct = ["Content-Type: multipart/mixed;boundary=b"];
        let raw = message("SIP/2.0 200 OK", &[&DIALOG[..], &ct].concat(), body);
        assert_eq!(parse(&raw).unwrap().sdp.unwrap().media[0].port, 7);
        let raw = message(
            "SIP/2.0 200 OK",
            &[&DIALOG[..], &ct].concat(),
            "--b\r\n\r\nx\r\n--b--",
        );
        assert_eq!(parse(&raw).unwrap().sdp, None);
        let ct = ["Content-Type: multipart/mixed"];
        let raw = message(
            "SIP/2.0 200 OK",
            &[&DIALOG[..], &ct].concat(),
            "--b\r\n\r\nx\r\n--b--",
        );
        assert_eq!(parse(&raw).unwrap().sdp, None);
    }

    #[test]
    fn stream_framing() {
        let first = message("SIP/2.0 180 Ringing", &DIALOG, "");
        let second = INVITE;
        let mut stream = b"\r\n\r\n".to_vec();
        stream.extend_from_slice(&first);
        stream.extend_from_slice(b"\r\n");
        stream.extend_from_slice(second);
        let whole = stream.len();
        stream.extend_from_slice(&second[..100]);

        let (messages, consumed) = parse_stream(&stream);
        assert_eq!(consumed, whole);
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].as_ref().unwrap().status(), Some(180));
        assert_eq!(
            messages[1].as_ref().unwrap().sdp.as_ref().unwrap().media[0].port,
            49170
        );

        // Framed but invalid messages are reported and skipped.
        let mut headers = DIALOG.to_vec();
        headers.remove(3);
        let mut stream = message("SIP/2.0 200 OK", &headers, "");
        stream.extend_from_slice(&first);
        let (messages, consumed) = parse_stream(&stream);
        assert_eq!(consumed, stream.len());
        assert_eq!(messages[0], Err(SipError::MissingHeader("Call-ID")));
        assert!(messages[1].is_ok());

        // Without Content-Length a stream message has no body.
        let raw = b"OPTIONS sip:a@b SIP/2.0\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\n\
                    Call-ID: k\r\nCSeq: 1 OPTIONS\r\n\r\nOPTIONS sip:a@b SIP/2.0\r\n";
        let (messages, consumed) = parse_stream(raw);
        assert_eq!(messages.len(), 1);
        assert!(messages[0].as_ref().unwrap().body.is_empty());
        assert_eq!(&raw[consumed..], b"OPTIONS sip:a@b SIP/2.0\r\n");

        // Unframeable: everything consumed with one error.
        let (messages, consumed) =
            parse_stream(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n\n");
        assert_eq!((messages, consumed), (vec![Err(SipError::NotUtf8)], 13));
        assert_eq!(parse_stream(b""), (vec![], 0));
        assert_eq!(parse_stream(b"\r\n"), (vec![], 2));
    }

    #[test]
    fn every_prefix_is_truncated_never_a_panic() {
        for len in 0..INVITE.len() {
            let prefix = &INVITE[..len];
            let expected = if len == 0 {
                SipError::Empty
            } else {
                SipError::Truncated
            };
            assert_eq!(parse(prefix), Err(expected), "prefix of {len} bytes");
            assert_eq!(parse_stream(prefix), (vec![], 0), "prefix of {len} bytes");
        }
        assert!(parse(INVITE).is_ok());
    }

    /// Deterministic xorshift64 so a failure reproduces.
    fn xorshift(state: &mut u64) -> u64 {
        let mut x = *state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *state = x;
        x
    }

    #[test]
    fn mutation_fuzz_never_panics() {
        const INTERESTING: &[u8] = b"\r\n :;<>\"\\,=@%/\t\x00\xff0";
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut buf = Vec::with_capacity(INVITE.len() + 16);
        let mut parsed = 0;
        for _ in 0..50_000 {
            buf.clear();
            buf.extend_from_slice(INVITE);
            let edits = 1 + xorshift(&mut state) % 6;
            for _ in 0..edits {
                let pos = (xorshift(&mut state) % (buf.len() as u64 + 1)) as usize;
                let roll = xorshift(&mut state);
                let byte = if roll & 1 == 0 {
                    (roll >> 8) as u8
                } else {
                    INTERESTING[((roll >> 8) % INTERESTING.len() as u64) as usize]
                };
                match (roll >> 32) % 4 {
                    0 if pos < buf.len() => buf[pos] = byte,
                    1 => buf.insert(pos, byte),
                    2 if pos < buf.len() => {
                        buf.remove(pos);
                    }
                    _ => buf.truncate(pos),
                }
            }
            let _ = looks_like_sip(&buf);
            let _ = parse_stream(&buf);
            if let Ok(msg) = parse(&buf) {
                parsed += 1;
                let _ = (
                    msg.caller_number(),
                    msg.callee_number(),
                    msg.header("x-agent-id"),
                );
                let _ = (msg.method(), msg.status(), unfold(msg.call_id));
            }
        }
        // The mutations must leave some messages intact, or the loop tests only errors.
        assert!(parsed > 1_000, "only {parsed} parsed");

        // Pure binary garbage, as RTP or TLS on a SIP port would look.
        for _ in 0..2_000 {
            let len = (xorshift(&mut state) % 600) as usize;
            buf.clear();
            buf.extend((0..len).map(|_| xorshift(&mut state) as u8));
            assert!(parse(&buf).is_err());
            let _ = (looks_like_sip(&buf), parse_stream(&buf));
        }
    }

    mod real {
        //! Messages from /work/shared/pcaps/real, extracted with
        //! `tshark -T fields -e udp.payload` (or `tcp.payload`); expected values are
        //! tshark's decode of the same frames.

        use super::super::*;
        use crate::sdp::Direction;
        use std::net::IpAddr;

        /// rtp-pcap__sip-rtp-g726.pcap frame 1: INVITE offering PT 99 = G726-16.
        const G726_INVITE: &[u8] = b"\
INVITE sip:test@10.0.2.15:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.2.20:5060;branch=z9hG4bK-2134-1-0\r\n\
From: \"G726-16/8000\" <sip:sipp@10.0.2.20:5060>;tag=1\r\n\
To: test <sip:test@10.0.2.15:5060>\r\n\
Call-ID: 1-2134@10.0.2.20\r\n\
CSeq: 1 INVITE\r\n\
Contact: sip:sipp@10.0.2.20:5060\r\n\
Max-Forwards: 70\r\n\
Content-Type: application/sdp\r\n\
Content-Length:   128\r\n\
\r\n\
v=0\r\n\
o=- 42 42 IN IP4 10.0.2.20\r\n\
s=-\r\n\
c=IN IP4 10.0.2.20\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 99\r\n\
a=rtpmap:99 G726-16/8000\r\n\
a=recvonly\r\n\
";

        /// rtp-pcap__sip-rtp-g726.pcap frame 4: 200 OK answering with PT 99 and telephone-event.
        const G726_200_OK: &[u8] = b"\
SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 10.0.2.20:5060;branch=z9hG4bK-2134-1-0\r\n\
From: \"G726-16/8000\" <sip:sipp@10.0.2.20:5060>;tag=1\r\n\
To: test <sip:test@10.0.2.15:5060>;tag=2N3jgyZjgmrec\r\n\
Call-ID: 1-2134@10.0.2.20\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:test@10.0.2.15:5060;transport=udp>\r\n\
User-Agent: FreeSWITCH-mod_sofia/1.6.12-20-b91a0a6~64bit\r\n\
Accept: application/sdp\r\n\
Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, INFO, UPDATE, REGISTER, REFER, NOTIFY, PUBLISH, SUBSCRIBE\r\n\
Supported: timer, path, replaces\r\n\
Allow-Events: talk, hold, conference, presence, as-feature-event, dialog, line-seize, call-info, sla, include-session-description, presence.winfo, message-summary, refer\r\n\
Content-Type: application/sdp\r\n\
Content-Disposition: session\r\n\
Content-Length: 231\r\n\
Remote-Party-ID: \"test\" <sip:test@10.0.2.15>;party=calling;privacy=off;screen=no\r\n\
\r\n\
v=0\r\n\
o=FreeSWITCH 1480146334 1480146335 IN IP4 10.0.2.15\r\n\
s=FreeSWITCH\r\n\
c=IN IP4 10.0.2.15\r\n\
t=0 0\r\n\
m=audio 26326 RTP/AVP 99 101\r\n\
a=rtpmap:99 G726-16/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=sendonly\r\n\
a=ptime:20\r\n\
";

        /// rtp-pcap__sip-rtp-g726.pcap frame 434: the next call, where PT 99 means G726-24.
        const G726_24_INVITE: &[u8] = b"\
INVITE sip:test@10.0.2.15:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.2.20:5060;branch=z9hG4bK-2137-1-0\r\n\
From: \"G726-24/8000\" <sip:sipp@10.0.2.20:5060>;tag=1\r\n\
To: test <sip:test@10.0.2.15:5060>\r\n\
Call-ID: 1-2137@10.0.2.20\r\n\
CSeq: 1 INVITE\r\n\
Contact: sip:sipp@10.0.2.20:5060\r\n\
Max-Forwards: 70\r\n\
Content-Type: application/sdp\r\n\
Content-Length:   128\r\n\
\r\n\
v=0\r\n\
o=- 42 42 IN IP4 10.0.2.20\r\n\
s=-\r\n\
c=IN IP4 10.0.2.20\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 99\r\n\
a=rtpmap:99 G726-24/8000\r\n\
a=recvonly\r\n\
";

        /// heplify__sip_ipv6.pcap frame 1: INVITE with IPv6 SDP.
        const IPV6_INVITE: &[u8] = b"\
INVITE sip:4321@fec0:0:0:0:216:d3ff:fe0d:22c:5060 SIP/2.0\r\n\
Call-ID: c3eF6f58-363323Cd-8058EB88-10300252@fe80:0:0:0:21a:a0ff:fe07:32e0\r\n\
Contact: <sip:9876@fe80:0:0:0:21a:a0ff:fe07:32e0:5060>\r\n\
CSeq: 1 INVITE\r\n\
From: <sip:9876@fe80:0:0:0:21a:a0ff:fe07:32e0>;tag=a3bhg\r\n\
To: <sip:4321@fec0:0:0:0:216:d3ff:fe0d:22c>\r\n\
Via: SIP/2.0/UDP fe80:0:0:0:21a:a0ff:fe07:32e0:5060;branch=z9hG4bKkdjuw8376\r\n\
Max-Forwards: 70\r\n\
Allow: INVITE, ACK, BYE, CANCEL, REFER, OPTIONS, REGISTER, SUBSCRIBE\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 181\r\n\
\r\n\
v=0\r\n\
o=Valid8.com-UserAgent 8521 32 IN IP6 fe80:0:0:0:21a:a0ff:fe07:32e0\r\n\
s=SIP-Call\r\n\
c=IN IP6 fe80:0:0:0:21a:a0ff:fe07:32e0\r\n\
t=0 0\r\n\
m=audio 5008 RTP/AVP 0\r\n\
a=rtpmap:0 pcmu/8000/1\r\n\
";

        /// heplify__sip_ipv6.pcap frame 3: 200 OK whose SDP body has no Content-Type.
        const IPV6_200_OK: &[u8] = b"\
SIP/2.0 200 OK\r\n\
Call-ID: c3eF6f58-363323Cd-8058EB88-10300252@fe80:0:0:0:21a:a0ff:fe07:32e0\r\n\
Contact: <sip:4321@fec0:0:0:0:216:d3ff:fe0d:22c:5060>\r\n\
CSeq: 1 INVITE\r\n\
From: <sip:9876@fe80:0:0:0:21a:a0ff:fe07:32e0>;tag=a3bhg\r\n\
To: <sip:4321@fec0:0:0:0:216:d3ff:fe0d:22c>;tag=a3bhg\r\n\
Via: SIP/2.0/UDP fe80:0:0:0:21a:a0ff:fe07:32e0:5060;branch=z9hG4bKkdjuw8376\r\n\
Allow: INVITE, ACK, BYE, CANCEL, REFER, OPTIONS, REGISTER, SUBSCRIBE\r\n\
Content-Length: 179\r\n\
\r\n\
v=0\r\n\
o=Valid8.com-UserAgent 8521 32 IN IP6 fec0:0:0:0:216:d3ff:fe0d:22c\r\n\
s=SIP-Call\r\n\
c=IN IP6 fec0:0:0:0:216:d3ff:fe0d:22c\r\n\
t=0 0\r\n\
m=audio 5008 RTP/AVP 0\r\n\
a=rtpmap:0 pcmu/8000/1\r\n\
";

        /// sipnab__Asterisk_ZFONE_XLITE.pcap frame 18: INVITE with session-level ICE attributes before m=.
        const XLITE_INVITE: &[u8] = b"\
INVITE sip:10008@192.168.10.2 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.168.10.41:13434;branch=z9hG4bK-d8754z-e1fbfb6234524a52-1---d8754z-;rport\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:10009@192.168.10.41:13434>\r\n\
To: \"philippec1\"<sip:10008@192.168.10.2>\r\n\
From: \"Philippec2\"<sip:10009@192.168.10.2>;tag=40580753\r\n\
Call-ID: ZDYzOWVlNjEwM2NjZTBjNzliNmM1ZTNiOGZjNWFhN2E.\r\n\
CSeq: 2 INVITE\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO\r\n\
Content-Type: application/sdp\r\n\
Supported: replaces\r\n\
User-Agent: X-Lite 4 release 4.0 stamp 58832\r\n\
Authorization: Digest username=\"10009\",realm=\"192.168.10.2\",nonce=\"01390e87\",uri=\"sip:10008@192.168.10.2\",response=\"852c91cc98252f6f42ba08f46d63db61\",algorithm=MD5\r\n\
Content-Length: 410\r\n\
\r\n\
v=0\r\n\
o=- 12930044636772923 1 IN IP4 192.168.10.41\r\n\
s=CounterPath X-Lite 4.0\r\n\
c=IN IP4 192.168.10.41\r\n\
t=0 0\r\n\
a=ice-ufrag:64f1a0\r\n\
a=ice-pwd:6c3a6e332f19287d6887564731372ec9\r\n\
m=audio 64508 RTP/AVP 107 0 8 101\r\n\
a=rtpmap:107 BV32/16000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=sendrecv\r\n\
a=candidate:1 1 UDP 659136 192.168.10.41 64508 typ host\r\n\
a=candidate:1 2 UDP 659134 192.168.10.41 64509 typ host\r\n\
";

        /// sipnab__Asterisk_ZFONE_XLITE.pcap frame 1036: re-INVITE moving media to a new port.
        const ASTERISK_REINVITE: &[u8] = b"\
INVITE sip:10009@192.168.10.41:13434 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.168.10.2:5060;branch=z9hG4bK2522d149;rport\r\n\
Max-Forwards: 70\r\n\
From: \"philippec1\"<sip:10008@192.168.10.2>;tag=as0b1a917b\r\n\
To: \"Philippec2\"<sip:10009@192.168.10.2>;tag=40580753\r\n\
Contact: <sip:10008@192.168.10.2>\r\n\
Call-ID: ZDYzOWVlNjEwM2NjZTBjNzliNmM1ZTNiOGZjNWFhN2E.\r\n\
CSeq: 102 INVITE\r\n\
User-Agent: Asterisk PBX 1.6.0.6\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, SUBSCRIBE, NOTIFY\r\n\
Supported: replaces, timer\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 285\r\n\
\r\n\
v=0\r\n\
o=root 136222639 136222640 IN IP4 192.168.10.2\r\n\
s=Asterisk PBX 1.6.0.6\r\n\
c=IN IP4 192.168.10.2\r\n\
t=0 0\r\n\
m=audio 18874 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=silenceSupp:off - - - -\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n\
";

        /// sipp-scenarios__sipp_uac_Media_DTMF_Speex.pcap frame 7: INVITE over TCP with P-Asserted-Identity.
        const TCP_INVITE: &[u8] = b"\
INVITE sip:79108@217.214.169.162:5060;user=phone;transport=TCP SIP/2.0\r\n\
Via: SIP/2.0/TCP 10.59.27.11:5060;branch=z9hG4bK-524287-1---55658274f701cc63;rport\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:+46725098830@10.59.27.11;user=phone;transport=TCP>\r\n\
To: <sip:79108@217.214.169.162:5060;user=phone;transport=TCP>\r\n\
From: <sip:+46725098830@10.59.27.11;user=phone>;tag=969aad69\r\n\
Call-ID: wICUpfWaoQE5Q18tlxgjGQ..\r\n\
CSeq: 1 INVITE\r\n\
Session-Expires: 1800\r\n\
Min-SE: 90\r\n\
Alert-Info: <urn:alert:source:external>\r\n\
Alert-Info: <urn:alert:service:normal>\r\n\
Allow: INVITE, OPTIONS, BYE, ACK, CANCEL, INFO, REGISTER, REFER, PRACK, SUBSCRIBE, NOTIFY, MESSAGE, UPDATE, PUBLISH\r\n\
Content-Type: application/sdp\r\n\
Supported: timer, replaces, 100rel\r\n\
User-Agent: Aastra MX-ONE SN/16.3.2.2.6\r\n\
Privacy: none;private_none\r\n\
P-Asserted-Identity: <sip:+46725098830@10.59.27.11>\r\n\
Content-Length: 227\r\n\
\r\n\
v=0\r\n\
o=- 6745093594015371536 1 IN IP4 213.64.235.116\r\n\
s=-\r\n\
c=IN IP4 213.64.235.116\r\n\
t=0 0\r\n\
a=sendrecv\r\n\
m=audio 28832 RTP/AVP 8 98\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:98 telephone-event/8000\r\n\
a=fmtp:98 0-15\r\n\
a=sendrecv\r\n\
a=ptime:20\r\n\
";

        /// sipp-scenarios__sipp_uac_Media_DTMF_Speex.pcap frame 12: its 200 OK over TCP.
        const TCP_200_OK: &[u8] = b"\
SIP/2.0 200 OK\r\n\
To: <sip:79108@217.214.169.162:5060;user=phone;transport=TCP>;tag=5EkjGD000B-cst-1003912\r\n\
From: <sip:+46725098830@10.59.27.11;user=phone>;tag=969aad69\r\n\
Call-ID: wICUpfWaoQE5Q18tlxgjGQ..\r\n\
CSeq: 1 INVITE\r\n\
Via: SIP/2.0/TCP 10.59.27.11:5060;branch=z9hG4bK-524287-1---55658274f701cc63;rport=33745\r\n\
Record-Route: <sip:217.214.169.162:5060;transport=TCP;lr>\r\n\
Contact: <sip:TAS@217.214.169.162:5060;transport=TCP>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, INFO, OPTIONS, PRACK\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 290\r\n\
Supported: 100rel\r\n\
Min-SE: 90\r\n\
Session-Expires: 1800;refresher=uas\r\n\
Server: TAS/ACS internal v9.3.3015.3\r\n\
User-Agent: TAS/ACS v9.3.3015.3\r\n\
\r\n\
v=0\r\n\
o=UC201MICCTAS01 3784158974 1 IN IP4 217.214.169.162\r\n\
s=media_1001_ConferenceFocus_46_URI_f784070a-cdc4-434b-8019-fc9148f989c0\r\n\
c=IN IP4 217.214.169.162\r\n\
t=0 0\r\n\
m=audio 40000 RTP/AVP 8 98\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:98 telephone-event/8000\r\n\
a=fmtp:98 0-15\r\n\
a=sendrecv\r\n\
a=ptime:20\r\n\
";

        #[test]
        fn g726_dynamic_payload_type() {
            let invite = parse(G726_INVITE).unwrap();
            assert_eq!(invite.method(), Method::Invite);
            assert_eq!(invite.call_id, "1-2134@10.0.2.20");
            assert_eq!(invite.from.display, Some("G726-16/8000"));
            assert_eq!(invite.from.tag, Some("1"));
            let offer = invite.sdp.as_ref().unwrap();
            let audio = &offer.media[0];
            assert_eq!((audio.port, audio.formats.as_slice()), (6000, &[99][..]));
            let codec = audio.codec_for_pt(99).unwrap();
            assert_eq!(
                (codec.encoding.as_str(), codec.clock_rate),
                ("G726-16", 8000)
            );
            assert_eq!(audio.direction, Direction::RecvOnly);
            assert_eq!(
                audio.effective_addr(offer),
                Some("10.0.2.20".parse().unwrap())
            );

            let ok = parse(G726_200_OK).unwrap();
            assert_eq!(ok.status(), Some(200));
            assert_eq!(ok.call_id, invite.call_id);
            assert_eq!(ok.to.tag, Some("2N3jgyZjgmrec"));
            let answer = ok.sdp.as_ref().unwrap();
            let audio = &answer.media[0];
            assert_eq!(
                (audio.port, audio.formats.as_slice()),
                (26326, &[99, 101][..])
            );
            assert_eq!(audio.codec_for_pt(99).unwrap().encoding, "G726-16");
            assert_eq!(audio.codec_for_pt(101).unwrap().encoding, "telephone-event");
            assert_eq!(audio.direction, Direction::SendOnly);
            assert_eq!(audio.ptime_ms, Some(20));
            assert_eq!(audio.rtcp_port(), 26327);
            assert_eq!(
                audio.effective_addr(answer),
                Some("10.0.2.15".parse().unwrap())
            );

            // Same payload type, different meaning in the next call.
            let next = parse(G726_24_INVITE).unwrap();
            assert_eq!(next.call_id, "1-2137@10.0.2.20");
            let audio = &next.sdp.as_ref().unwrap().media[0];
            assert_eq!(audio.codec_for_pt(99).unwrap().encoding, "G726-24");
        }

        #[test]
        fn ipv6_sdp() {
            let invite = parse(IPV6_INVITE).unwrap();
            assert_eq!(
                invite.call_id,
                "c3eF6f58-363323Cd-8058EB88-10300252@fe80:0:0:0:21a:a0ff:fe07:32e0"
            );
            assert_eq!(invite.caller_number().as_deref(), Some("9876"));
            assert_eq!(invite.callee_number().as_deref(), Some("4321"));
            let offer = invite.sdp.as_ref().unwrap();
            let v6: IpAddr = "fe80::21a:a0ff:fe07:32e0".parse().unwrap();
            assert_eq!(offer.connection, Some(v6));
            let audio = &offer.media[0];
            assert_eq!(audio.port, 5008);
            let pcmu = audio.codec_for_pt(0).unwrap();
            assert!(pcmu.is("PCMU"));
            assert_eq!((pcmu.clock_rate, pcmu.channels), (8000, Some(1)));

            // tshark leaves this body undecoded (no Content-Type); it is SDP all the same.
            let ok = parse(IPV6_200_OK).unwrap();
            assert_eq!(ok.header("Content-Type"), None);
            let answer = ok.sdp.as_ref().unwrap();
            assert_eq!(answer.media[0].port, 5008);
            assert_eq!(
                answer.connection,
                Some("fec0::216:d3ff:fe0d:22c".parse().unwrap())
            );
        }

        #[test]
        fn reinvite_moves_media() {
            let first = parse(XLITE_INVITE).unwrap();
            let again = parse(ASTERISK_REINVITE).unwrap();
            assert_eq!(
                first.call_id,
                "ZDYzOWVlNjEwM2NjZTBjNzliNmM1ZTNiOGZjNWFhN2E."
            );
            assert_eq!(again.call_id, first.call_id);
            assert_eq!((first.cseq.seq, again.cseq.seq), (2, 102));
            assert_eq!(first.from.display, Some("Philippec2"));
            assert_eq!(first.to.display, Some("philippec1"));
            // The re-INVITE comes from the other side: From/To swap, both tagged.
            assert_eq!(again.from.tag, Some("as0b1a917b"));
            assert_eq!(again.to.tag, first.from.tag);

            let offer = first.sdp.as_ref().unwrap();
            let audio = &offer.media[0];
            assert_eq!(
                (audio.port, audio.formats.as_slice()),
                (64508, &[107, 0, 8, 101][..])
            );
            let bv32 = audio.codec_for_pt(107).unwrap();
            assert_eq!((bv32.encoding.as_str(), bv32.clock_rate), ("BV32", 16000));
            // PCMU and PCMA have no rtpmap here; the static table fills them in.
            assert_eq!(audio.codec_for_pt(8).unwrap().encoding, "PCMA");

            let moved = again.sdp.as_ref().unwrap();
            let audio = &moved.media[0];
            assert_eq!(
                (audio.port, audio.formats.as_slice()),
                (18874, &[0, 8, 101][..])
            );
            assert_eq!(
                audio.effective_addr(moved),
                Some("192.168.10.2".parse().unwrap())
            );
            assert_eq!(audio.ptime_ms, Some(20));
            assert_eq!(audio.direction, Direction::SendRecv);
            assert_eq!(audio.primary_codec().unwrap().encoding, "PCMU");
        }

        #[test]
        fn tcp_stream_with_asserted_identity() {
            let mut stream = TCP_INVITE.to_vec();
            stream.extend_from_slice(TCP_200_OK);
            let (messages, consumed) = parse_stream(&stream);
            assert_eq!((messages.len(), consumed), (2, stream.len()));
            let invite = messages[0].as_ref().unwrap();
            assert_eq!(invite.call_id, "wICUpfWaoQE5Q18tlxgjGQ..");
            assert_eq!(
                invite.header("P-Asserted-Identity"),
                Some("<sip:+46725098830@10.59.27.11>")
            );
            assert_eq!(invite.caller_number().as_deref(), Some("+46725098830"));
            assert_eq!(invite.callee_number().as_deref(), Some("79108"));
            assert_eq!(invite.headers_named("Alert-Info").count(), 2);
            let audio = &invite.sdp.as_ref().unwrap().media[0];
            assert_eq!(
                (audio.port, audio.formats.as_slice()),
                (28832, &[8, 98][..])
            );
            assert_eq!(audio.codec_for_pt(98).unwrap().encoding, "telephone-event");

            let ok = messages[1].as_ref().unwrap();
            assert_eq!(ok.status(), Some(200));
            let answer = ok.sdp.as_ref().unwrap();
            assert_eq!(answer.media[0].port, 40000);
            assert_eq!(answer.connection, Some("217.214.169.162".parse().unwrap()));
        }
    }
}
