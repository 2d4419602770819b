//! The aggregator's write: a batch of records upserted in one transaction.

use std::collections::HashMap;

use postgres::types::ToSql;
use vqprobe_engine::record::CallRecord;

use super::row::{params, Param};
use super::schema::upsert_sql;
use crate::FleetError;

/// A record as it arrived from the bus.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The probe that measured it.
    pub probe_id: String,
    /// Its version (the probe's outbox sequence).
    pub version: i64,
    /// The record.
    pub record: CallRecord,
}

/// What a batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Rows inserted or replaced by a newer version.
    pub written: u64,
    /// Records older than (or the same version as) what was stored: ignored.
    pub stale: u64,
}

/// Upserts the batch in one transaction; on error nothing is written. Within a batch
/// only the newest version of each call is sent.
pub async fn upsert_batch(
    client: &mut tokio_postgres::Client,
    batch: &[Incoming],
) -> Result<Outcome, FleetError> {
    let mut newest: HashMap<(&str, &str), usize> = HashMap::with_capacity(batch.len());
    for (i, r) in batch.iter().enumerate() {
        let key = (r.probe_id.as_str(), r.record.call.call_id.as_str());
        match newest.get(&key) {
            Some(&j) if batch[j].version >= r.version => {}
            _ => {
                newest.insert(key, i);
            }
        }
    }
    let mut out = Outcome {
        stale: (batch.len() - newest.len()) as u64,
        ..Outcome::default()
    };
    let mut order: Vec<usize> = newest.into_values().collect();
    order.sort_unstable();
    let tx = client.transaction().await?;
    let stmt = tx.prepare(upsert_sql()).await?;
    let mut rows: Vec<Vec<Param>> = Vec::with_capacity(order.len());
    for &i in &order {
        let r = &batch[i];
        let mut p: Vec<Param> = Vec::with_capacity(3 + 32);
        p.push(Box::new(r.probe_id.clone()));
        p.push(Box::new(r.version));
        p.push(Box::new(serde_json::to_string(&r.record.streams).map_err(
            |e| FleetError::Config(format!("streams JSON: {e}")),
        )?));
        p.extend(params(&r.record.call)?);
        rows.push(p);
    }
    // Pipelined: every statement is sent before the first answer is awaited.
    let futures = rows.iter().map(|p| {
        let refs: Vec<&(dyn ToSql + Sync)> = p
            .iter()
            .map(|b| b.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let tx = &tx;
        let stmt = &stmt;
        async move { tx.execute(stmt, &refs).await }
    });
    for n in futures_util::future::try_join_all(futures).await? {
        if n > 0 {
            out.written += 1;
        } else {
            out.stale += 1;
        }
    }
    tx.commit().await?;
    Ok(out)
}

/// Deletes calls created before `cutoff_ms`; returns how many went.
pub async fn delete_older_than(
    client: &tokio_postgres::Client,
    cutoff_ms: i64,
) -> Result<u64, FleetError> {
    Ok(client
        .execute("DELETE FROM calls WHERE created_at_ms < $1", &[&cutoff_ms])
        .await?)
}
