//! RTP identifiers as types (as str0m does): a synchronisation source, a payload type
//! and a sequence number are all small integers on the wire, and mixing them up is a
//! bug the compiler should catch.

use std::fmt;

/// An RTP synchronisation source (RFC 3550 §5.1), shown as `0x` + 8 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Ssrc(pub u32);

impl fmt::Display for Ssrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08x}", self.0)
    }
}

impl From<u32> for Ssrc {
    fn from(v: u32) -> Self {
        Ssrc(v)
    }
}

/// An RTP payload type: 7 bits, 0–127.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Pt(pub u8);

impl Pt {
    /// Whether it is in the dynamic range (96–127) that only signalling can name.
    pub fn is_dynamic(self) -> bool {
        self.0 >= 96
    }
}

impl fmt::Display for Pt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u8> for Pt {
    fn from(v: u8) -> Self {
        Pt(v)
    }
}

/// A 16-bit RTP sequence number as it is on the wire (it wraps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNo(pub u16);

impl SeqNo {
    /// How far `later` is ahead of `self`, modulo 2^16.
    pub fn distance_to(self, later: SeqNo) -> u16 {
        later.0.wrapping_sub(self.0)
    }

    /// The next sequence number.
    pub fn next(self) -> SeqNo {
        SeqNo(self.0.wrapping_add(1))
    }
}

impl fmt::Display for SeqNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u16> for SeqNo {
    fn from(v: u16) -> Self {
        SeqNo(v)
    }
}

/// An extended (unwrapped) sequence number: cycles × 2^16 + the 16-bit number
/// (RFC 3550 A.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ExtSeq(pub u64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_distance() {
        assert_eq!(Ssrc(0x6a51_8186).to_string(), "0x6a518186");
        assert_eq!(Ssrc(1).to_string(), "0x00000001");
        assert_eq!(SeqNo(65535).distance_to(SeqNo(2)), 3);
        assert_eq!(SeqNo(65535).next(), SeqNo(0));
        assert!(Pt(96).is_dynamic() && !Pt(8).is_dynamic());
    }
}
