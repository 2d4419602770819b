//! RTCP: what the far end reports about our streams (report blocks, XR VoIP
//! Metrics), and the probe-to-far-end round trip from SR/RR and RRT/DLRR pairs.
//!
//! A report names a stream by SSRC. Calls on reused ports and B2BUA legs can share an
//! SSRC, so among the streams with that SSRC the one of the call owning the RTCP flow
//! wins, then the one whose receiver is the reporter, then the newest.

use std::net::SocketAddr;

use vqprobe_wire::rtcp::{self as wire_rtcp, RtcpPacket, XrBlock};
use vqprobe_wire::Ssrc;

use super::{Engine, StreamId};
use crate::stream::{RemoteReport, XrQuality};
use crate::time::Timestamp;

impl Engine {
    pub(super) fn on_rtcp(
        &mut self,
        at: Timestamp,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
    ) {
        match wire_rtcp::parse_compound(payload) {
            Ok(c) => self.on_compound(at, src, dst, &c),
            Err(_) => {
                self.counters.rtcp_packets += 1;
                self.counters.rtcp_malformed += 1;
            }
        }
    }

    /// An RTCP datagram already parsed.
    pub(super) fn on_compound(
        &mut self,
        at: Timestamp,
        src: SocketAddr,
        dst: SocketAddr,
        compound: &wire_rtcp::Compound,
    ) {
        self.counters.rtcp_packets += 1;
        if compound.truncated {
            self.counters.rtcp_malformed += 1;
        }
        let owner = self.owners.resolve_rtcp(&src, &dst).map(|c| c.owner);
        for p in &compound.packets {
            match p {
                RtcpPacket::Sr(sr) => self.sighting(Ssrc(sr.ssrc), sr.ntp.middle32(), at),
                RtcpPacket::Xr(xr) => {
                    for b in &xr.blocks {
                        match b {
                            XrBlock::ReceiverReferenceTime(ntp) => {
                                self.sighting(Ssrc(xr.ssrc), ntp.middle32(), at)
                            }
                            XrBlock::Dlrr(subs) => {
                                for sb in subs {
                                    self.rtt_sample(Ssrc(sb.ssrc), src, owner, sb.lrr, sb.dlrr, at);
                                }
                            }
                            XrBlock::VoipMetrics(vm) => {
                                if let Some(sid) = self.stream_for_report(Ssrc(vm.ssrc), src, owner)
                                {
                                    if let Some(s) = self.streams.get_mut(sid) {
                                        let q = XrQuality {
                                            r_factor: vm.r_factor.map(f64::from),
                                            mos_lq: vm.mos_lq,
                                            mos_cq: vm.mos_cq,
                                        };
                                        match &mut s.stream.xr {
                                            Some(x) => **x = q,
                                            None => s.stream.xr = Some(Box::new(q)),
                                        }
                                    }
                                }
                            }
                            XrBlock::Unknown { .. } => {}
                        }
                    }
                }
                _ => {}
            }
        }
        for (_reporter, rb) in compound.report_blocks() {
            let about = Ssrc(rb.ssrc);
            if let Some(sid) = self.stream_for_report(about, src, owner) {
                if let Some(s) = self.streams.get_mut(sid) {
                    let clock = s.stream.clock;
                    s.stream.on_remote_report(RemoteReport {
                        fraction_lost: rb.fraction_lost_ratio(),
                        cumulative_lost: i64::from(rb.cumulative_lost),
                        jitter_ms: rb.jitter_ms(clock),
                        ext_highest_seq: rb.ext_highest_seq,
                        at_ns: at.as_nanos(),
                    });
                }
            }
            self.rtt_sample(about, src, owner, rb.lsr, rb.dlsr, at);
        }
    }

    /// An SR (or XR RRT) from `ssrc` seen now; kept only while a stream of that SSRC
    /// lives, so an RTCP flood of made-up SSRCs costs nothing.
    fn sighting(&mut self, ssrc: Ssrc, mid: u32, at: Timestamp) {
        if self.by_ssrc.contains_key(&ssrc) {
            self.sightings.entry(ssrc).or_default().add(mid, at);
        }
    }

    /// Probe-to-far-end round trip: RR arrival − sighting of the SR named by LSR − DLSR.
    fn rtt_sample(
        &mut self,
        about: Ssrc,
        reporter: SocketAddr,
        owner: Option<super::CallKey>,
        lsr: u32,
        dlsr: u32,
        at: Timestamp,
    ) {
        if lsr == 0 {
            return;
        }
        let Some(sent) = self.sightings.get(&about).and_then(|s| s.find(lsr)) else {
            return;
        };
        let rtt_ms = at.nanos_since(sent) as f64 / 1e6 - f64::from(dlsr) * 1000.0 / 65536.0;
        if let Some(sid) = self.stream_for_report(about, reporter, owner) {
            if let Some(s) = self.streams.get_mut(sid) {
                s.stream.rtt.add(rtt_ms);
            }
        }
    }

    /// The stream a report block is about.
    fn stream_for_report(
        &self,
        ssrc: Ssrc,
        reporter: SocketAddr,
        owner: Option<super::CallKey>,
    ) -> Option<StreamId> {
        let cands = self.by_ssrc.get(&ssrc)?;
        let slot = |i: &StreamId| self.streams.get(*i);
        if let Some(k) = owner {
            if let Some(found) = cands
                .iter()
                .rev()
                .find(|i| slot(i).is_some_and(|s| s.call == k))
            {
                return Some(*found);
            }
        }
        cands
            .iter()
            .rev()
            .find(|i| slot(i).is_some_and(|s| !s.retired && s.stream.key.dst.ip() == reporter.ip()))
            .or_else(|| {
                cands
                    .iter()
                    .rev()
                    .find(|i| slot(i).is_some_and(|s| !s.retired))
            })
            .or_else(|| cands.last())
            .copied()
    }
}
