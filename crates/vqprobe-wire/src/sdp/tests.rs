//! SDP parser tests: media, rtpmap, rtcp attributes, directions and damaged input.

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
    let sdp =
        parse(b"v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:4005\r\n").unwrap();
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
    let sdp = parse(b"v=0\r\nc=IN IP4 233.252.0.1/127/3\r\nm=audio 4000 RTP/AVP 0\r\n").unwrap();
    assert_eq!(
        sdp.connection,
        Some(IpAddr::V4(Ipv4Addr::new(233, 252, 0, 1)))
    );
    let sdp = parse(b"v=0\r\nc=IN IP4 media.example.com\r\nm=audio 4000 RTP/AVP 0\r\n").unwrap();
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

#[test]
fn more_media_sections_than_any_session_are_refused() {
    let mut body =
        String::from("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n");
    for i in 0..MAX_MEDIA {
        body.push_str(&format!("m=audio {} RTP/AVP 0\r\n", 10_000 + 2 * i));
    }
    assert_eq!(parse(body.as_bytes()).map(|s| s.media.len()), Ok(MAX_MEDIA));
    body.push_str("m=audio 9 RTP/AVP 0\r\n");
    assert_eq!(parse(body.as_bytes()).err(), Some(SdpError::TooManyMedia));
}
