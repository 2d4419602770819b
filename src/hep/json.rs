//! The JSON Homer stores: RTCP as the capture agents send it (HEP type 5, the layout of
//! heplify and captagent: `sender_information`, `report_blocks`, `report_blocks_xr`),
//! and vqprobe's per-call quality report.

use serde_json::{json, Map, Value};
use vqprobe_engine::record::CallRecord;
use vqprobe_wire::rtcp::{Compound, RtcpPacket, XrBlock};

/// One RTCP compound as Homer's RTCP JSON. Raw wire values (fraction lost out of 256,
/// jitter in timestamp units, LSR/DLSR in 1/65536 s) as the agents send them; the
/// first SR or RR gives `type`, `ssrc` and the blocks, a VoIP Metrics block
/// `report_blocks_xr`.
pub fn rtcp_json(c: &Compound) -> String {
    let mut o = Map::new();
    let mut blocks = Vec::new();
    let mut main: Option<(u8, u32)> = None;
    for p in &c.packets {
        match p {
            RtcpPacket::Sr(sr) if main.is_none() => {
                main = Some((200, sr.ssrc));
                o.insert(
                    "sender_information".into(),
                    json!({
                        "ntp_timestamp_sec": sr.ntp.seconds,
                        "ntp_timestamp_usec": sr.ntp.fraction,
                        "rtp_timestamp": sr.rtp_ts,
                        "packets": sr.packet_count,
                        "octets": sr.octet_count,
                    }),
                );
                blocks.extend(sr.reports.iter().copied());
            }
            RtcpPacket::Rr(rr) if main.is_none() => {
                main = Some((201, rr.ssrc));
                blocks.extend(rr.reports.iter().copied());
            }
            RtcpPacket::Sdes(s) => {
                if let Some(ch) = s.chunks.first() {
                    o.entry("sdes_ssrc").or_insert(json!(ch.ssrc));
                }
            }
            RtcpPacket::Xr(xr) => {
                main.get_or_insert((207, xr.ssrc));
                for b in &xr.blocks {
                    if let XrBlock::VoipMetrics(vm) = b {
                        let raw = |r: f64| (r * 256.0).round() as u32;
                        o.entry("report_blocks_xr").or_insert(json!({
                            "type": 7,
                            "id": vm.ssrc,
                            "fraction_lost": raw(vm.loss_rate),
                            "fraction_discard": raw(vm.discard_rate),
                            "burst_density": raw(vm.burst_density),
                            "gap_density": raw(vm.gap_density),
                            "burst_duration": vm.burst_duration_ms,
                            "gap_duration": vm.gap_duration_ms,
                            "round_trip_delay": vm.round_trip_delay_ms,
                            "end_system_delay": vm.end_system_delay_ms,
                        }));
                    }
                }
            }
            _ => {}
        }
    }
    let (pt, ssrc) = main.unwrap_or((0, 0));
    o.insert("type".into(), json!(pt));
    o.insert("ssrc".into(), json!(ssrc));
    o.insert("report_count".into(), json!(blocks.len()));
    o.insert(
        "report_blocks".into(),
        Value::Array(
            blocks
                .iter()
                .map(|b| {
                    json!({
                        "source_ssrc": b.ssrc,
                        "fraction_lost": b.fraction_lost,
                        "packets_lost": b.cumulative_lost,
                        "highest_seq_no": b.ext_highest_seq,
                        "ia_jitter": b.jitter,
                        "lsr": b.lsr,
                        "dlsr": b.dlsr,
                    })
                })
                .collect(),
        ),
    );
    Value::Object(o).to_string()
}

/// A call's quality report: `event` is `interval` for an open call's interim record
/// and `end` for its final one; per stream MOS, MOS-LQ, R, jitter, loss, loss runs,
/// RTT, codec and direction, and the endpoint's own MOS where it reported one.
pub fn report_json(r: &CallRecord) -> String {
    let c = &r.call;
    let streams: Vec<Value> = r
        .streams
        .iter()
        .map(|s| {
            json!({
                "direction": s.direction,
                "src": s.src,
                "dst": s.dst,
                "ssrc": format!("{}", s.ssrc),
                "codec": s.codec,
                "packets": s.packets,
                "expected": s.expected,
                "lost": s.lost,
                "loss_ratio": (s.expected > 0).then(|| s.lost as f64 / s.expected as f64),
                "loss_runs": s.loss_runs,
                "jitter_ms": s.jitter_ms,
                "max_jitter_ms": s.max_jitter_ms,
                "rtt_ms": s.rtt_ms,
                "mos": s.mos,
                "mos_lq": s.mos_lq,
                "r_factor": s.r_factor,
                "endpoint_mos_cq": s.xr.as_ref().and_then(|x| x.latest.mos_cq),
                "endpoint_mos_lq": s.xr.as_ref().and_then(|x| x.latest.mos_lq),
            })
        })
        .collect();
    json!({
        "type": "vqprobe_quality",
        "event": if c.status == vqprobe_engine::record::CallStatus::InProgress { "interval" } else { "end" },
        "call_id": c.call_id,
        "sip_call_id": c.sip_call_id,
        "status": c.status,
        "ended_reason": c.ended_reason,
        "created_at": c.created_at,
        "ended_at": c.ended_at,
        "duration_seconds": c.duration_seconds,
        "codec": c.codec,
        "direction": c.direction,
        "mos": c.quality.mos,
        "mos_lq": c.quality.mos_lq,
        "r_factor": c.quality.r_factor,
        "min_interval_mos": c.quality.min_interval_mos,
        "jitter_ms": c.quality.jitter_ms,
        "loss_ratio": c.quality.loss_ratio,
        "rtt_ms": c.quality.rtt_ms,
        "one_way_audio": c.one_way_audio,
        "xr_disagreement": c.xr_disagreement,
        "streams": streams,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sr_with_block_and_sdes() {
        // SR from 0x11223344 with one report block about 0x55667788, then SDES.
        let mut b = vec![0x81, 200, 0, 12];
        for w in [0x1122_3344u32, 0xdd3a_c170, 0x4d61_4df8, 160, 50, 8000] {
            b.extend_from_slice(&w.to_be_bytes());
        }
        b.extend_from_slice(&0x5566_7788u32.to_be_bytes());
        b.extend_from_slice(&[13, 0, 0, 3]);
        for w in [0x0001_0010u32, 40, 0xb705_2000, 0x0005_4000] {
            b.extend_from_slice(&w.to_be_bytes());
        }
        b.extend_from_slice(&[0x81, 202, 0, 2]);
        b.extend_from_slice(&0x1122_3344u32.to_be_bytes());
        b.extend_from_slice(&[1, 1, b'a', 0]);
        let c = vqprobe_wire::rtcp::parse_compound(&b).expect("rtcp");
        let v: Value = serde_json::from_str(&rtcp_json(&c)).expect("json");
        assert_eq!(v["type"], 200);
        assert_eq!(v["ssrc"], 0x1122_3344u32);
        assert_eq!(v["sdes_ssrc"], 0x1122_3344u32);
        assert_eq!(v["sender_information"]["ntp_timestamp_sec"], 0xdd3a_c170u32);
        assert_eq!(v["sender_information"]["packets"], 50);
        assert_eq!(v["report_count"], 1);
        let rb = &v["report_blocks"][0];
        assert_eq!(rb["source_ssrc"], 0x5566_7788u32);
        assert_eq!(
            (rb["fraction_lost"].as_u64(), rb["packets_lost"].as_i64()),
            (Some(13), Some(3))
        );
        assert_eq!(
            (rb["highest_seq_no"].as_u64(), rb["ia_jitter"].as_u64()),
            (Some(0x0001_0010), Some(40))
        );
        assert_eq!(
            (rb["lsr"].as_u64(), rb["dlsr"].as_u64()),
            (Some(0xb705_2000), Some(0x0005_4000))
        );
    }
}
