use super::*;

const SIP: &[u8] = b"INVITE sip:1234@127.0.0.1 SIP/2.0\r\nCall-ID: abc@x\r\n\r\n";

fn sample<'a>(payload: &'a [u8]) -> HepPacket<'a> {
    HepPacket {
        version: 3,
        ip_proto: IPPROTO_UDP,
        src: "192.0.2.10:5060".parse().expect("addr"),
        dst: "198.51.100.7:5080".parse().expect("addr"),
        time: Some((1_700_000_000, 123_456)),
        proto_type: PROTO_SIP,
        capture_id: 2001,
        auth_key: Some(b"myHep"),
        correlation_id: Some(b"abc@x"),
        node_name: Some(b"probe-1"),
        keepalive_s: None,
        payload,
    }
}

#[test]
fn v3_round_trips_every_chunk() {
    let p = sample(SIP);
    let mut buf = Vec::new();
    v3::encode(&p, &mut buf).expect("fits");
    assert_eq!(&buf[..4], b"HEP3");
    assert_eq!(usize::from(u16::from_be_bytes([buf[4], buf[5]])), buf.len());
    assert_eq!(parse(&buf), Ok(p));
    assert_eq!(p.time_ns(), Some(1_700_000_000_123_456_000));
}

#[test]
fn v3_encodes_auth_key_and_node_name_chunks_as_the_spec_lays_them_out() {
    // Kamailio's `$hep()` does not expose the node name (0x0013), so its bytes are
    // checked here against the HEP3 layout: vendor 0, type, length incl. 6-byte header.
    let mut buf = Vec::new();
    v3::encode(&sample(SIP), &mut buf).expect("fits");
    let has = |chunk: &[u8]| buf.windows(chunk.len()).any(|w| w == chunk);
    assert!(has(b"\0\0\0\x0e\0\x0bmyHep"), "auth key chunk");
    assert!(has(b"\0\0\0\x13\0\x0dprobe-1"), "node name chunk");
    assert!(has(b"\0\0\0\x11\0\x0babc@x"), "correlation id chunk");
    assert!(
        has(&[0, 0, 0, 0x0c, 0, 10, 0, 0, 0x07, 0xd1]),
        "capture id 2001"
    );
}

#[test]
fn v3_hand_made_vector() {
    // Chunks written by hand from the HEP3 spec: family, proto, IPv4 addresses, ports,
    // time, type 5, capture id 7, correlation id, payload; plus a vendor chunk to skip.
    let mut b: Vec<u8> = b"HEP3\0\0".to_vec();
    let mut ch = |vendor: u16, ty: u16, v: &[u8]| {
        b.extend_from_slice(&vendor.to_be_bytes());
        b.extend_from_slice(&ty.to_be_bytes());
        b.extend_from_slice(&((v.len() + 6) as u16).to_be_bytes());
        b.extend_from_slice(v);
    };
    ch(0, 1, &[2]);
    ch(0, 2, &[17]);
    ch(0, 3, &[10, 0, 0, 1]);
    ch(0, 4, &[10, 0, 0, 2]);
    ch(0, 7, &[0x13, 0x88]);
    ch(0, 8, &[0x13, 0x89]);
    ch(0, 9, &[0x65, 0x53, 0xf1, 0x00]);
    ch(0, 10, &[0, 0, 0, 5]);
    ch(0, 11, &[5]);
    ch(0, 12, &[0, 0, 0, 7]);
    ch(0x0003, 0x0020, b"vendor stuff");
    ch(0, 17, b"call-1");
    ch(0, 15, b"{}");
    let n = b.len() as u16;
    b[4..6].copy_from_slice(&n.to_be_bytes());
    let p = parse(&b).expect("parses");
    assert_eq!(p.src.to_string(), "10.0.0.1:5000");
    assert_eq!(p.dst.to_string(), "10.0.0.2:5001");
    assert_eq!(p.time, Some((0x6553_f100, 5)));
    assert_eq!((p.proto_type, p.capture_id), (PROTO_RTCP, 7));
    assert_eq!(p.correlation_id, Some(&b"call-1"[..]));
    assert_eq!(p.payload, b"{}");
    assert_eq!(p.node_name, None);
}

#[test]
fn v2_as_kamailio_writes_it() {
    // Kamailio siptrace, hep_version 2, IPv4: 8-byte header (length 16), addresses,
    // little-endian time header with the capture id, then the SIP message.
    let mut b = vec![
        2, 16, 2, 17, 0x13, 0xc4, 0x13, 0xc5, 127, 0, 0, 1, 127, 0, 0, 2,
    ];
    b.extend_from_slice(&1_700_000_001u32.to_le_bytes());
    b.extend_from_slice(&999u32.to_le_bytes());
    b.extend_from_slice(&2001u16.to_le_bytes());
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(SIP);
    let p = parse(&b).expect("parses");
    assert_eq!(p.version, 2);
    assert_eq!(p.src.to_string(), "127.0.0.1:5060");
    assert_eq!(p.dst.to_string(), "127.0.0.2:5061");
    assert_eq!(p.time, Some((1_700_000_001, 999)));
    assert_eq!(p.capture_id, 2001);
    assert_eq!(p.payload, SIP);
    let mut again = Vec::new();
    v2::encode(&p, &mut again);
    assert_eq!(again, b);
    // HEPv1: no time header.
    let mut v1 = b[..16].to_vec();
    v1[0] = 1;
    v1.extend_from_slice(SIP);
    let p1 = parse(&v1).expect("v1");
    assert_eq!((p1.version, p1.time, p1.payload), (1, None, SIP));
}

#[test]
fn v2_ipv6() {
    let p = HepPacket {
        version: 2,
        src: "[2001:db8::1]:5060".parse().expect("addr"),
        dst: "[2001:db8::2]:5070".parse().expect("addr"),
        auth_key: None,
        correlation_id: None,
        node_name: None,
        ..sample(SIP)
    };
    let mut b = Vec::new();
    v2::encode(&p, &mut b);
    assert_eq!(b[1], 40);
    let back = parse(&b).expect("parses");
    assert_eq!((back.src, back.dst, back.payload), (p.src, p.dst, SIP));
}

#[test]
fn tcp_framing() {
    let mut stream = Vec::new();
    v3::encode(&sample(SIP), &mut stream).expect("fits");
    let first = stream.len();
    v3::encode(&sample(b"second"), &mut stream).expect("fits");
    assert_eq!(v3::frame_len(&stream[..3]), Ok(None));
    assert_eq!(v3::frame_len(&stream), Ok(Some(first)));
    assert_eq!(
        v3::frame_len(&stream[first..]),
        Ok(Some(stream.len() - first))
    );
    assert!(matches!(
        v3::frame_len(b"GET /"),
        Err(HepError::NotHep(b'G'))
    ));
    assert_eq!(
        v3::frame_len(b"HEP3\0\x03"),
        Err(HepError::BadLength("total"))
    );
}

#[test]
fn errors_name_the_damage() {
    assert_eq!(parse(b""), Err(HepError::Truncated("header")));
    assert_eq!(parse(b"\x80\x00"), Err(HepError::NotHep(0x80)));
    let mut b = Vec::new();
    v3::encode(&sample(SIP), &mut b).expect("fits");
    // A chunk claiming fewer bytes than its own header.
    let mut bad = b.clone();
    bad[10..12].copy_from_slice(&3u16.to_be_bytes());
    assert_eq!(parse(&bad), Err(HepError::BadLength("chunk")));
    // Total length past the datagram.
    assert_eq!(parse(&b[..b.len() - 1]), Err(HepError::Truncated("packet")));
    // v2 with an unknown family.
    assert_eq!(
        parse(&[2, 16, 7, 17, 0, 0, 0, 0]),
        Err(HepError::BadFamily(7))
    );
    let too_big = vec![b'x'; 70_000];
    let mut out = vec![1, 2, 3];
    assert_eq!(
        v3::encode(&sample(&too_big), &mut out),
        Err(HepError::TooLong(70_000))
    );
    assert_eq!(out, [1, 2, 3], "nothing half-written");
}

#[test]
fn every_truncation_and_mutation_is_an_error_not_a_panic() {
    let mut b = Vec::new();
    v3::encode(&sample(SIP), &mut b).expect("fits");
    let mut v2b = Vec::new();
    v2::encode(
        &HepPacket {
            version: 2,
            ..sample(SIP)
        },
        &mut v2b,
    );
    for base in [&b, &v2b] {
        for n in 0..base.len() {
            let _ = parse(&base[..n]);
            let _ = v3::frame_len(&base[..n]);
        }
    }
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..50_000 {
        for base in [&b, &v2b] {
            let mut f = base.clone();
            for _ in 0..3 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x as usize) % f.len();
                f[i] = (x >> 32) as u8;
            }
            let _ = parse(&f);
        }
    }
}
