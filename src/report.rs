//! The human table view of `vqprobe analyze --format table`: tshark's `rtp,streams`
//! columns plus RFC 3550 jitter and MOS, then one line per call.

use std::fmt::Write as _;

use crate::analyze::Analysis;

fn opt(v: Option<f64>, prec: usize) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x:.prec$}"))
}

/// Renders the analysis as fixed-width text.
pub fn table(a: &Analysis) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "========================= RTP Streams ========================"
    );
    let _ = writeln!(
        out,
        "{:>22} {:>22} {:>10} {:>8} {:>7} {:>7} {:>14} {:>13} {:>15} {:>14} {:>5} {:>5}  Call",
        "Src",
        "Dst",
        "SSRC",
        "Payload",
        "Pkts",
        "Lost",
        "Max Delta(ms)",
        "Max Jitter(ms)",
        "Mean Jitter(ms)",
        "RFC Jitter(ms)",
        "MOS",
        "Dir",
    );
    for c in &a.calls {
        for s in &c.streams {
            let pct = if s.expected > 0 {
                100.0 * s.lost as f64 / s.expected as f64
            } else {
                0.0
            };
            let _ = writeln!(
                out,
                "{:>22} {:>22} {:>10} {:>8} {:>7} {:>7} {:>14.3} {:>13} {:>15} {:>14} {:>5} {:>5}  {}",
                s.src,
                s.dst,
                s.ssrc,
                s.codec.as_deref().unwrap_or("?"),
                s.packets,
                format!("{} ({pct:.1}%)", s.lost),
                s.max_delta_ms,
                opt(s.max_jitter_ms, 3),
                opt(s.mean_jitter_ms, 3),
                opt(s.jitter_ms, 3),
                opt(s.mos, 2),
                &s.direction.as_str()[..3],
                c.call.call_id
            );
        }
    }
    let _ = writeln!(
        out,
        "============================ Calls ==========================="
    );
    for c in &a.calls {
        let _ = writeln!(
            out,
            "{}  {}  {} -> {}  {}  {}  {:.1}s  codec={}  mos={}  min5s={}  loss={}  rtt_ms={}  mno={}  agent={}{}",
            c.call.created_at,
            c.call.call_id,
            c.call.from_number.as_deref().unwrap_or("-"),
            c.call.to_number.as_deref().unwrap_or("-"),
            c.call.direction.as_str(),
            c.call.status.as_str(),
            c.call.duration_seconds,
            c.call.codec.as_deref().unwrap_or("-"),
            opt(c.call.quality_mos, 2),
            opt(c.call.quality.min_interval_mos, 2),
            opt(c.call.quality.loss_ratio.map(|l| l * 100.0), 2) + "%",
            opt(c.call.quality.rtt_ms, 1),
            c.call.mno,
            c.call.agent_id.as_deref().unwrap_or("-"),
            if c.call.one_way_audio { "  ONE-WAY AUDIO" } else { "" }
        );
    }
    let k = &a.capture.counters;
    let _ = writeln!(
        out,
        "==============================================================\n\
         packets={} rtp={} rtcp={} sip={} streams={} calls={} malformed={} rtp_malformed={} rtcp_malformed={} sip_malformed={} fragments={}{}",
        k.packets,
        k.rtp_packets,
        k.rtcp_packets,
        k.sip_messages,
        k.streams,
        k.calls,
        k.malformed,
        k.rtp_malformed,
        k.rtcp_malformed,
        k.sip_malformed,
        k.ip_fragments,
        if a.capture.truncated { " TRUNCATED" } else { "" }
    );
    out
}
