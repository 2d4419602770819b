//! Reading captures through libpcap (the `pcap` crate): pcap (µs and ns) and pcapng
//! files offline. Live capture joins this module in the daemon.

use std::path::Path;

use pcap::{Capture, Offline, Precision};

use vqprobe_wire::decode::LinkType;

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

/// Settings of a live capture handle.
#[derive(Debug, Clone)]
pub struct LiveSettings {
    /// Interface name (`any` for all, Linux cooked link type).
    pub interface: String,
    /// BPF filter expression; empty for none.
    pub bpf: String,
    /// Bytes captured per packet.
    pub snaplen: u32,
    /// Kernel ring buffer size, MiB.
    pub buffer_mb: u32,
    /// Deliver packets as they arrive instead of when the buffer fills.
    pub immediate: bool,
    /// Promiscuous mode.
    pub promiscuous: bool,
    /// Join this PACKET_FANOUT group (hash mode): several handles on one interface
    /// then share its packets, each flow (both directions) on one handle.
    pub fanout_group: Option<u16>,
}

/// Kernel-side counters of a live handle (pcap_stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Packets the kernel passed the filter.
    pub received: u64,
    /// Dropped for lack of buffer space.
    pub dropped: u64,
    /// Dropped by the interface or driver.
    pub if_dropped: u64,
}

/// A live capture on one interface.
pub struct LiveCapture {
    cap: Capture<pcap::Active>,
    link: LinkType,
    fd: std::os::fd::RawFd,
}

/// What a live read returned.
pub enum LiveRead<'a> {
    /// A frame.
    Frame(Frame<'a>),
    /// The read timeout passed with nothing to read (lets the caller check for stop).
    Idle,
}

impl LiveCapture {
    /// Opens and activates a capture handle with the given settings.
    pub fn open(s: &LiveSettings) -> Result<Self, CaptureError> {
        let err = |e: pcap::Error| CaptureError::Open {
            path: s.interface.clone(),
            reason: e.to_string(),
        };
        let mb = i32::try_from(s.buffer_mb.saturating_mul(1024 * 1024)).unwrap_or(i32::MAX);
        let mut cap = Capture::from_device(s.interface.as_str())
            .map_err(err)?
            .snaplen(i32::try_from(s.snaplen).unwrap_or(65535))
            .buffer_size(mb)
            .immediate_mode(s.immediate)
            .promisc(s.promiscuous)
            // A short timeout so a quiet interface still lets the thread see "stop".
            .timeout(100)
            .precision(Precision::Nano)
            .open()
            .map_err(err)?
            // Non-blocking plus our own poll(): on Linux a blocking read on an idle
            // interface never returns at the read timeout, and pcap_breakloop races with
            // a packet being delivered (the packet is lost), so neither can wake us.
            .setnonblock()
            .map_err(err)?;
        if !s.bpf.trim().is_empty() {
            cap.filter(&s.bpf, true).map_err(|e| CaptureError::Open {
                path: s.interface.clone(),
                reason: format!("bad BPF filter {:?}: {e}", s.bpf),
            })?;
        }
        let dlt = cap.get_datalink().0;
        let link = LinkType::from_dlt(dlt).ok_or(CaptureError::LinkType(dlt))?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&cap);
        if let Some(group) = s.fanout_group {
            join_fanout(fd, group).map_err(|e| CaptureError::Open {
                path: s.interface.clone(),
                reason: format!("PACKET_FANOUT group {group}: {e}"),
            })?;
        }
        Ok(LiveCapture { cap, link, fd })
    }

    /// The handle's link type.
    pub fn link_type(&self) -> LinkType {
        self.link
    }

    /// The next frame, or `Idle` after the read timeout.
    pub fn read(&mut self) -> Result<LiveRead<'_>, CaptureError> {
        match self.cap.next_packet() {
            Ok(p) => {
                let tv = p.header.ts;
                #[allow(clippy::useless_conversion)]
                let ts_ns = i64::from(tv.tv_sec)
                    .saturating_mul(1_000_000_000)
                    .saturating_add(i64::from(tv.tv_usec));
                Ok(LiveRead::Frame(Frame {
                    ts_ns,
                    data: p.data,
                    wire_len: p.header.len,
                }))
            }
            // Nothing buffered: wait up to 100 ms for the socket to become readable.
            Err(pcap::Error::TimeoutExpired) | Err(pcap::Error::NoMorePackets) => {
                wait_readable(self.fd, 100);
                Ok(LiveRead::Idle)
            }
            Err(e) => Err(CaptureError::Damaged {
                packets: 0,
                reason: e.to_string(),
            }),
        }
    }

    /// Kernel counters since the handle opened.
    pub fn stats(&mut self) -> Option<KernelStats> {
        self.cap.stats().ok().map(|s| KernelStats {
            received: u64::from(s.received),
            dropped: u64::from(s.dropped),
            if_dropped: u64::from(s.if_dropped),
        })
    }
}

/// Adds the (activated, hence bound) AF_PACKET socket `fd` to fanout group `group`,
/// hashing by flow. Linux hashes symmetrically (`__skb_get_hash_symmetric`), so both
/// directions of a flow go to one socket; with `DEFRAG` the kernel reassembles IP
/// fragments before hashing, so a fragmented SIP message is not split across sockets.
/// libpcap has no call for this, hence the socket option on its descriptor.
#[allow(unsafe_code)]
fn join_fanout(fd: std::os::fd::RawFd, group: u16) -> std::io::Result<()> {
    // Low 16 bits: the group id; high 16 bits: mode and flags. The cast keeps the bits.
    let arg = (u32::from(group)
        | ((libc::PACKET_FANOUT_HASH | libc::PACKET_FANOUT_FLAG_DEFRAG) << 16))
        as libc::c_int;
    // SAFETY: `fd` is the open capture socket owned by the caller's `Capture`; the
    // option value is a c_int on our stack, passed with its exact size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_FANOUT,
            (&arg as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Waits until `fd` is readable or `timeout_ms` passes.
#[allow(unsafe_code)]
fn wait_readable(fd: std::os::fd::RawFd, timeout_ms: i64) {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    // SAFETY: `fd` is the capture handle's socket, owned by the `Capture` in the same
    // `LiveCapture` that calls this; it stays open for the whole (synchronous) call.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let mut fds = [PollFd::from_borrowed_fd(borrowed, PollFlags::IN)];
    let ts = Timespec {
        tv_sec: timeout_ms / 1000,
        tv_nsec: (timeout_ms % 1000) * 1_000_000,
    };
    // EINTR or an error: the caller loops and reads again anyway.
    let _ = poll(&mut fds, Some(&ts));
}

/// The host's interface addresses, as host-sized networks (the default
/// `local_networks`: media to these addresses is inbound).
pub fn host_networks() -> Vec<ipnet::IpNet> {
    let mut out = Vec::new();
    if let Ok(devs) = pcap::Device::list() {
        for d in devs {
            for a in d.addresses {
                let net = ipnet::IpNet::from(a.addr);
                if !out.contains(&net) {
                    out.push(net);
                }
            }
        }
    }
    out
}
