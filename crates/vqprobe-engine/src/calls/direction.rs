//! Which way a stream and a call go, relative to the probed host.
//!
//! With `capture.local_networks` (live: the host's own addresses by default), media to a
//! local address is inbound. When that cannot tell — both ends local or both remote, as
//! when two user agents share one media address — SIP roles and SDP ports decide: the
//! callee is taken as the probed host, and each stream is matched to the side whose SDP
//! announced its receiving (or sending) endpoint, so two directions never come out the
//! same.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use super::{CallConfig, Dialog};
use crate::record::Direction;
use crate::stream::Stream;

pub(crate) fn is_local(nets: &[IpNet], ip: IpAddr) -> bool {
    nets.iter().any(|n| n.contains(&ip))
}

/// Direction of a stream relative to the probed host.
pub fn stream_direction(
    cfg: &CallConfig,
    dialog: Option<&Dialog>,
    stream: &Stream,
    first_stream_src: Option<SocketAddr>,
) -> Direction {
    let (src, dst) = (stream.key.src, stream.key.dst);
    if !cfg.local_nets.is_empty() {
        let (src_local, dst_local) = (
            is_local(&cfg.local_nets, src.ip()),
            is_local(&cfg.local_nets, dst.ip()),
        );
        if dst_local && !src_local {
            return Direction::Inbound;
        }
        if src_local && !dst_local {
            return Direction::Outbound;
        }
    }
    if let Some(d) = dialog {
        // The callee is taken as the probed host: media to the callee's SDP endpoint
        // (or from the caller's) arrives.
        if d.callee_media.contains(&dst) || d.caller_media.contains(&src) {
            return Direction::Inbound;
        }
        if d.caller_media.contains(&dst) || d.callee_media.contains(&src) {
            return Direction::Outbound;
        }
        if src.ip() != dst.ip() {
            if dst.ip() == d.callee_signalling.ip() {
                return Direction::Inbound;
            }
            if src.ip() == d.callee_signalling.ip() {
                return Direction::Outbound;
            }
        }
    }
    // RTP only: the side that spoke first is the far end calling in.
    match first_stream_src {
        Some(first) if first == dst => Direction::Outbound,
        _ => Direction::Inbound,
    }
}

/// Direction of a call: `inbound` when the far end sent the INVITE.
pub fn call_direction(cfg: &CallConfig, dialog: Option<&Dialog>) -> Direction {
    match dialog {
        Some(d) if !cfg.local_nets.is_empty() => {
            let caller_local = is_local(&cfg.local_nets, d.caller_signalling.ip());
            let callee_local = is_local(&cfg.local_nets, d.callee_signalling.ip());
            if caller_local && !callee_local {
                Direction::Outbound
            } else {
                Direction::Inbound
            }
        }
        _ => Direction::Inbound,
    }
}
