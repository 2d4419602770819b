//! SIP parser tests: dialogs, compact and folded headers, numbers, multipart bodies,
//! stream framing, and truncation and mutation of every message.

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
    let parsed = NameAddr::parse("\"philippec1\"<sip:10008@192.168.10.2>;tag=as0b1a917b").unwrap();
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
    let (messages, consumed) = parse_stream(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n\n");
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
    //! Messages from the shared captures (`pcaps/real`), extracted with
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

#[test]
fn a_flood_of_headers_is_refused_not_read() {
    let extra: Vec<String> = (0..MAX_HEADERS).map(|i| format!("X-F{i}: v")).collect();
    let mut headers = DIALOG.to_vec();
    headers.extend(extra.iter().map(String::as_str));
    let m = message("INVITE sip:bob@example.net SIP/2.0", &headers, "");
    assert_eq!(parse(&m).err(), Some(SipError::TooManyHeaders));
    // A few short of the cap still parses.
    let m = message("INVITE sip:bob@example.net SIP/2.0", &DIALOG, "");
    assert!(parse(&m).is_ok());
}
