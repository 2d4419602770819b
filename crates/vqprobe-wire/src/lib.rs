//! vqprobe's wire parsers: bytes in, small typed values out.
//!
//! Every parser here reads bytes that anyone can put on a wire or in a capture file,
//! so every entry point makes the same promise (smoltcp's `wire` contract, in our
//! words):
//!
//! * **No panics, whatever the input.** Lengths are checked against what actually
//!   arrived before any slice is taken; a header that lies about its length gives an
//!   error value, never an out-of-bounds read. The fuzz targets in `fuzz/` and the
//!   seeded mutation tests beside each parser hold every function below to this.
//! * **No allocation it does not need.** [`decode`] and [`rtp`] borrow the frame and
//!   copy a few header fields; [`rtcp`] and [`sip`] borrow where they can and own only
//!   what is read once per message (SDP, SDES text, report blocks).
//! * **Errors say what was wrong** ([`decode::DecodeError`], [`rtp::RtpError`],
//!   [`rtcp::RtcpError`], [`sip::SipError`], [`sdp::SdpError`]), so the engine can count
//!   damage by kind.
//!
//! The entry points that accept hostile bytes: [`decode::decode`], [`hep::parse`],
//! [`hep::v3::frame_len`], [`vqreport::parse`], [`rtp::parse`],
//! [`rtp::looks_like_rtp`], [`rtcp::parse_compound`], [`rtcp::looks_like_rtcp`],
//! [`sip::parse`], [`sip::parse_stream`], [`sip::looks_like_sip`], [`sdp::parse`].
//!
//! Identifiers of RTP are types ([`ids`]): an SSRC cannot be passed where a payload
//! type is wanted.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod decode;
pub mod hep;
pub mod ids;
pub mod rtcp;
pub mod rtp;
pub mod sdp;
pub mod sip;
pub mod vqreport;

pub use ids::{Pt, SeqNo, Ssrc};
