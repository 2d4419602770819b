//! Reading captures through libpcap (the `pcap` crate): pcap (µs and ns) and pcapng
//! files offline. Live capture joins this module in the daemon.

use std::path::Path;

use pcap::{Capture, Offline, Precision};

use crate::decode::LinkType;

/// Why a capture could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file does not exist or cannot be opened.
    #[error("cannot open {path}: {reason}")]
    Open {
        /// File path.
        path: String,
        /// libpcap's or the OS's words.
        reason: String,
    },
    /// The link type is one the probe does not decode.
    #[error(
        "unsupported link type {0} (supported: Ethernet, Linux cooked v1/v2, raw IP, loopback)"
    )]
    LinkType(i32),
    /// Reading stopped part-way (truncated or corrupt file).
    #[error("capture damaged after {packets} packets: {reason}")]
    Damaged {
        /// Packets read before the damage.
        packets: u64,
        /// libpcap's words.
        reason: String,
    },
}

/// An offline capture file, read packet by packet with nanosecond timestamps.
pub struct OfflineCapture {
    cap: Capture<Offline>,
    link: LinkType,
    dlt: i32,
    read: u64,
}

/// One frame from a capture.
pub struct Frame<'a> {
    /// Capture time, ns since the epoch.
    pub ts_ns: i64,
    /// Captured bytes.
    pub data: &'a [u8],
    /// Original length on the wire.
    pub wire_len: u32,
}

impl OfflineCapture {
    /// Opens a pcap or pcapng file. Timestamps are read at nanosecond precision
    /// whatever the file stores (libpcap scales µs files).
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let shown = path.display().to_string();
        if let Err(e) = std::fs::metadata(path) {
            return Err(CaptureError::Open {
                path: shown,
                reason: e.to_string(),
            });
        }
        let cap = Capture::from_file_with_precision(path, Precision::Nano).map_err(|e| {
            CaptureError::Open {
                path: shown.clone(),
                reason: e.to_string(),
            }
        })?;
        let dlt = cap.get_datalink().0;
        let link = LinkType::from_dlt(dlt).ok_or(CaptureError::LinkType(dlt))?;
        Ok(OfflineCapture {
            cap,
            link,
            dlt,
            read: 0,
        })
    }

    /// The link type of the file.
    pub fn link_type(&self) -> LinkType {
        self.link
    }

    /// The raw DLT number.
    pub fn dlt(&self) -> i32 {
        self.dlt
    }

    /// The next frame; `Ok(None)` at a clean end of file.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        match self.cap.next_packet() {
            Ok(p) => {
                self.read += 1;
                let tv = p.header.ts;
                // With Precision::Nano libpcap puts nanoseconds in tv_usec. time_t and
                // suseconds_t are i64 here but not on every target, hence the from().
                #[allow(clippy::useless_conversion)]
                let ts_ns = i64::from(tv.tv_sec)
                    .saturating_mul(1_000_000_000)
                    .saturating_add(i64::from(tv.tv_usec));
                Ok(Some(Frame {
                    ts_ns,
                    data: p.data,
                    wire_len: p.header.len,
                }))
            }
            Err(pcap::Error::NoMorePackets) => Ok(None),
            Err(e) => Err(CaptureError::Damaged {
                packets: self.read,
                reason: e.to_string(),
            }),
        }
    }
}
