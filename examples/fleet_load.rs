//! Publishes synthetic call records to the fleet bus, as a probe's publisher does
//! (subject `vqprobe.call.completed.<probe>`, `Nats-Msg-Id`), for the aggregator's
//! ingest benchmark (`benches/fleet.sh`).
//!
//! `fleet_load NATS_URL TEMPLATE.json N PROBES` — TEMPLATE is one call record (a
//! `calls[0]` of `vqprobe analyze --format json`); each copy gets its own call id, a
//! `created_at` spread over the last 90 days, one of 12 MNOs, 40 agents and a MOS
//! drawn from 2.0 to 4.4.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde_json::Value;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, template, n, probes] = args.as_slice() else {
        anyhow::bail!("usage: fleet_load NATS_URL TEMPLATE.json N PROBES");
    };
    let n: u64 = n.parse().context("N")?;
    let probes: u64 = probes.parse().context("PROBES")?;
    let template: Value = serde_json::from_str(&std::fs::read_to_string(template)?)?;
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let client = async_nats::connect(url.as_str()).await?;
        let js = async_nats::jetstream::new(client);
        js.get_or_create_stream(async_nats::jetstream::stream::Config {
            name: "VQPROBE_CALLS".into(),
            subjects: vec!["vqprobe.call.>".into()],
            storage: async_nats::jetstream::stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await?;
        let t0 = Instant::now();
        let mut pending = Vec::new();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..n {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let probe = format!("probe-{:02}", i % probes);
            let mut r = template.clone();
            let created = now_ms - (seed % (90 * 86_400_000)) as i64;
            let at =
                time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(created) * 1_000_000)?;
            let ts = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute(),
                at.second(),
                at.millisecond()
            );
            let mos = 2.0 + (seed >> 20) as f64 % 2400.0 / 1000.0;
            let call_id = format!("load-{i}@bench");
            r["call_id"] = call_id.clone().into();
            r["probe_id"] = probe.clone().into();
            r["created_at"] = ts.into();
            r["mno"] = format!("MNO {}", seed % 12).into();
            r["agent_id"] = format!("agent-{:02}", (seed >> 8) % 40).into();
            r["quality_mos"] = mos.into();
            r["quality"]["mos"] = mos.into();
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(
                async_nats::header::NATS_MESSAGE_ID,
                format!("{probe}/{call_id}/1").as_str(),
            );
            let ack = js
                .publish_with_headers(
                    format!("vqprobe.call.completed.{probe}"),
                    headers,
                    serde_json::to_vec(&r)?.into(),
                )
                .await?;
            pending.push(ack);
            if pending.len() >= 1000 {
                for a in pending.drain(..) {
                    a.await?;
                }
            }
        }
        for a in pending.drain(..) {
            a.await?;
        }
        eprintln!(
            "published {n} records in {:.1} s ({:.0}/s)",
            t0.elapsed().as_secs_f64(),
            n as f64 / t0.elapsed().as_secs_f64()
        );
        anyhow::Ok(())
    })
}
