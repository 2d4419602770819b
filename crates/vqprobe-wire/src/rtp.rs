//! RTP header reading (via `rtp-rs`) and the heuristics that tell RTP from other UDP.

use rtp_rs::RtpReader;

use crate::ids::{Pt, SeqNo, Ssrc};

/// The RTP header fields the metrics need, copied out of the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// Sequence number.
    pub seq: SeqNo,
    /// RTP timestamp.
    pub ts: u32,
    /// Synchronisation source.
    pub ssrc: Ssrc,
    /// Payload type (7 bits).
    pub pt: Pt,
    /// Marker bit (start of a talkspurt for audio).
    pub marker: bool,
    /// Payload bytes after the header, extension and CSRCs, less padding.
    pub payload_len: u16,
}

/// Why a datagram is not an RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// `rtp-rs` rejected the header (short, wrong version, bad extension or padding).
    #[error("malformed RTP header")]
    Malformed,
}

/// Parses the fixed header, CSRCs, extension and padding of an RTP packet.
pub fn parse(data: &[u8]) -> Result<RtpHeader, RtpError> {
    let r = RtpReader::new(data).map_err(|_| RtpError::Malformed)?;
    let pad = r.padding().unwrap_or(0) as usize;
    let payload_len = data
        .len()
        .saturating_sub(r.payload_offset())
        .saturating_sub(pad);
    Ok(RtpHeader {
        seq: SeqNo(u16::from(r.sequence_number())),
        ts: r.timestamp(),
        ssrc: Ssrc(r.ssrc()),
        pt: Pt(r.payload_type()),
        marker: r.mark(),
        payload_len: u16::try_from(payload_len).unwrap_or(u16::MAX),
    })
}

/// Payload types that are plausible for RTP media on an unknown port.
///
/// RFC 3551 static audio/video types and the dynamic range; 72–76 would collide with
/// RTCP when the marker bit is set (RFC 5761 §4), and 35–71/77–95 are unassigned, so a
/// packet claiming them is most likely not RTP.
pub fn plausible_pt(pt: Pt) -> bool {
    matches!(pt.0, 0..=34 | 96..=127)
}

/// Cheap per-packet test: could this datagram be RTP at all?
pub fn looks_like_rtp(data: &[u8]) -> Option<RtpHeader> {
    if data.len() < 12 || data[0] >> 6 != 2 {
        return None;
    }
    let h = parse(data).ok()?;
    if !plausible_pt(h.pt) {
        return None;
    }
    Some(h)
}

/// Whether a later packet continues the stream an earlier one started, the way a
/// real media source does: same SSRC, sequence a little ahead, timestamp a little ahead.
///
/// Used to confirm a heuristic flow before it is treated as RTP, so that random UDP
/// (DNS, QUIC, games) that happens to start with `0x80` is not taken for media.
pub fn continues(prev: &RtpHeader, next: &RtpHeader) -> bool {
    if prev.ssrc != next.ssrc {
        return false;
    }
    let dseq = prev.seq.distance_to(next.seq);
    // 90000 Hz video at a few seconds, or silence suppression gaps in audio.
    let dts = next.ts.wrapping_sub(prev.ts);
    (1..=32).contains(&dseq) && dts <= 90_000 * 10
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(seq: u16, ts: u32, pt: u8) -> Vec<u8> {
        let mut b = vec![0x80, pt];
        b.extend_from_slice(&seq.to_be_bytes());
        b.extend_from_slice(&ts.to_be_bytes());
        b.extend_from_slice(&0x1122_3344u32.to_be_bytes());
        b.extend_from_slice(&[0xff; 160]);
        b
    }

    #[test]
    fn parses_header() {
        let h = parse(&pkt(7, 1600, 0)).expect("valid");
        assert_eq!(
            (h.seq, h.ts, h.ssrc, h.pt, h.payload_len),
            (SeqNo(7), 1600, Ssrc(0x1122_3344), Pt(0), 160)
        );
    }

    #[test]
    fn padding_is_not_payload() {
        let mut b = pkt(1, 0, 8);
        b[0] |= 0x20;
        if let Some(last) = b.last_mut() {
            *last = 4;
        }
        assert_eq!(parse(&b).expect("valid").payload_len, 156);
    }

    #[test]
    fn heuristics() {
        let a = looks_like_rtp(&pkt(1, 0, 0)).expect("rtp");
        let b = looks_like_rtp(&pkt(2, 160, 0)).expect("rtp");
        assert!(continues(&a, &b));
        assert!(!continues(&b, &a));
        assert!(looks_like_rtp(&pkt(1, 0, 72)).is_none());
        assert!(looks_like_rtp(b"\x80\x00short").is_none());
    }
}
