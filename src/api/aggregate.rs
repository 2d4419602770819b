//! Runs a planned aggregate query (see [`super::query`]) against the store.
//!
//! The calls of the time range are read once, in time order, from the covering index
//! `api_calls_cover` (no `calls` row is touched), and grouped in a hash map by time
//! bucket and `groupBy` values. Counts, sums (compensated, as SQLite sums), means,
//! minima and maxima accumulate as rows stream by. Percentiles are nearest rank
//! (`percentile_disc`: the k-th smallest value with k = ⌈p·n/100⌉); they need the
//! group's values, which are held in memory up to [`HELD_VALUES`] in all. A query
//! needing more falls back to letting SQLite sort: one aggregate statement, then per
//! percentile column one statement streaming the values in group-then-value order
//! and picking the ranks on the way, which needs no memory beyond the result but is
//! several times slower.

use std::collections::HashMap;

use rusqlite::types::{Value, ValueRef};
use rusqlite::Connection;
use rustc_hash::FxHashMap;
use time::{Date, Month, UtcOffset};

use super::error::ApiError;
use super::params::{unix_ms, MS_PER_DAY};
use super::query::{Column, OpKind, Plan, Step, MAX_ROWS};

/// Percentile values held in memory per query before falling back to SQLite's
/// sorter (8 bytes each: 32 MiB).
pub const HELD_VALUES: usize = 4_000_000;

/// Most `groupBy` columns (each may appear once).
const MAX_GROUPS: usize = 7;

/// One result row: bucket value (see [`bucket_sql`]), group values, one output per
/// operation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResultRow {
    pub b: i64,
    pub groups: Vec<Option<String>>,
    pub out: Vec<Out>,
}

/// An operation's value in a row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Out {
    /// `count`.
    Count(i64),
    /// Everything else; `None` when the group has no value in the column.
    Num(Option<f64>),
}

/// Length of a fixed step, and the origin its buckets are aligned to (Monday
/// 1970-01-05 for weeks, the epoch otherwise), both in ms of local time.
pub(crate) fn fixed_step(step: Step) -> Option<(i64, i64)> {
    match step {
        Step::Minute => Some((60_000, 0)),
        Step::Hour => Some((3_600_000, 0)),
        Step::Day => Some((MS_PER_DAY, 0)),
        Step::Week => Some((7 * MS_PER_DAY, 4 * MS_PER_DAY)),
        Step::Month => None,
    }
}

fn offset_ms(offset: UtcOffset) -> i64 {
    i64::from(offset.whole_seconds()) * 1000
}

/// Buckets the range touches (an upper bound good enough for the cap).
pub(crate) fn bucket_count(step: Step, start: i64, end: i64, offset: UtcOffset) -> i64 {
    match fixed_step(step) {
        Some((s, _)) => (end - start) / s + 2,
        None => month_index(end, offset) - month_index(start, offset) + 1,
    }
}

/// Months since January 1970 of a local time.
pub(crate) fn month_index(ms: i64, offset: UtcOffset) -> i64 {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset);
    (i64::from(t.year()) - 1970) * 12 + i64::from(u8::from(t.month())) - 1
}

/// Unix ms of local midnight on the first of the month `idx` (months since 1970).
pub(crate) fn month_start_ms(idx: i64, offset: UtcOffset) -> Option<i64> {
    let year = i32::try_from(1970 + idx.div_euclid(12)).ok()?;
    let month = Month::try_from(u8::try_from(idx.rem_euclid(12) + 1).ok()?).ok()?;
    let date = Date::from_calendar_date(year, month, 1).ok()?;
    unix_ms(date.midnight().assume_offset(offset))
}

/// The SQL of the bucket a call falls in, and its parameters. For fixed steps the
/// value is the bucket's start in unix ms; for months, the month index; without a
/// step, 0.
fn bucket_sql(p: &Plan) -> (String, Vec<(&'static str, i64)>) {
    match p.step {
        None => ("0".into(), Vec::new()),
        Some(Step::Month) => {
            let local = "(created_at_ms + :off) / 1000";
            (
                format!(
                    "(CAST(strftime('%Y', {local}, 'unixepoch') AS INTEGER) - 1970) * 12 \
                     + CAST(strftime('%m', {local}, 'unixepoch') AS INTEGER) - 1"
                ),
                vec![(":off", offset_ms(p.offset))],
            )
        }
        Some(step) => {
            let (s, origin) = fixed_step(step).unwrap_or((MS_PER_DAY, 0));
            // t = local time − origin; bucket start = t − floor_mod(t, s) + origin − offset
            // = (created + a) − floor_mod(created + a, s) − a with a = offset − origin.
            (
                "((created_at_ms + :a) - ((((created_at_ms + :a) % :s) + :s) % :s) - :a)".into(),
                vec![(":a", offset_ms(p.offset) - origin), (":s", s)],
            )
        }
    }
}

/// Bucket start in unix ms from the bucket value.
pub(crate) fn bucket_start(p: &Plan, b: i64) -> i64 {
    match p.step {
        None => p.start_ms,
        Some(Step::Month) => month_start_ms(b, p.offset).unwrap_or(p.start_ms),
        Some(_) => b,
    }
}

/// The statement parameters shared by every statement of a query.
fn params(p: &Plan) -> Vec<(&'static str, Value)> {
    let (_, bucket_params) = bucket_sql(p);
    let mut params: Vec<(&str, Value)> = vec![
        (":start", Value::Integer(p.start_ms)),
        (":end", Value::Integer(p.end_ms)),
    ];
    params.extend(bucket_params.iter().map(|(k, v)| (*k, Value::Integer(*v))));
    params
}

fn bind<'a>(params: &'a [(&'static str, Value)]) -> Vec<(&'static str, &'a dyn rusqlite::ToSql)> {
    params
        .iter()
        .map(|(k, v)| (*k, v as &dyn rusqlite::ToSql))
        .collect()
}

/// The numeric columns the operations read, each once, in first-use order.
fn columns(p: &Plan) -> Vec<Column> {
    let mut cols = Vec::new();
    for (_, col, _) in &p.ops {
        if *col != Column::CallId && !cols.contains(col) {
            cols.push(*col);
        }
    }
    cols
}

/// Nearest rank ⌈pct·n/100⌉ (1-based), at least 1.
fn rank(pct: i64, n: i64) -> i64 {
    ((pct * n + 99) / 100).max(1)
}

/// Runs the query: in memory when its percentile values fit `budget`, else through
/// SQLite's sorter. Rows come in bucket, then group order (NULL first, then bytewise,
/// as SQLite orders text).
pub(crate) fn execute(
    conn: &Connection,
    p: &Plan,
    budget: usize,
) -> Result<Vec<ResultRow>, ApiError> {
    match in_memory(conn, p, budget)? {
        Some(rows) => Ok(rows),
        None => sorted(conn, p),
    }
}

/// Neumaier-compensated sum, as SQLite's `SUM` and `AVG` compute it, so both paths
/// agree to the last bit that matters.
#[derive(Debug, Clone, Copy, Default)]
struct Sum {
    s: f64,
    c: f64,
}

impl Sum {
    fn add(&mut self, x: f64) {
        let t = self.s + x;
        if self.s.abs() >= x.abs() {
            self.c += (self.s - t) + x;
        } else {
            self.c += (x - t) + self.s;
        }
        self.s = t;
    }

    fn value(&self) -> f64 {
        self.s + self.c
    }
}

/// Running figures of one column in one group.
#[derive(Debug, Clone, Default)]
struct ColAcc {
    n: i64,
    sum: Sum,
    min: f64,
    max: f64,
    /// The values, when a percentile of this column is asked for.
    values: Option<Vec<f64>>,
}

impl ColAcc {
    fn add(&mut self, x: f64) {
        if self.n == 0 {
            self.min = x;
            self.max = x;
        } else {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
        self.n += 1;
        self.sum.add(x);
        if let Some(v) = self.values.as_mut() {
            v.push(x);
        }
    }
}

/// One group: its row count and per-column figures.
#[derive(Debug, Clone)]
struct GroupAcc {
    rows: i64,
    cols: Vec<ColAcc>,
}

/// Interned text values of one `groupBy` column: id 0 is NULL.
#[derive(Debug, Default)]
struct Dict {
    ids: FxHashMap<Vec<u8>, u32>,
    names: Vec<Option<String>>,
}

impl Dict {
    fn id(&mut self, v: ValueRef<'_>) -> u32 {
        let bytes: &[u8] = match v {
            ValueRef::Null => return 0,
            ValueRef::Text(t) | ValueRef::Blob(t) => t,
            // Group columns are TEXT; anything else is keyed by its text form.
            ValueRef::Integer(i) => return self.intern(i.to_string().as_bytes()),
            ValueRef::Real(r) => return self.intern(r.to_string().as_bytes()),
        };
        self.intern(bytes)
    }

    fn intern(&mut self, bytes: &[u8]) -> u32 {
        if let Some(id) = self.ids.get(bytes) {
            return *id;
        }
        if self.names.is_empty() {
            self.names.push(None);
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names
            .push(Some(String::from_utf8_lossy(bytes).into_owned()));
        self.ids.insert(bytes.to_vec(), id);
        id
    }

    fn name(&self, id: u32) -> Option<String> {
        self.names.get(id as usize).cloned().flatten()
    }
}

/// The in-memory path; `None` when the percentile values exceed `budget`.
fn in_memory(
    conn: &Connection,
    p: &Plan,
    budget: usize,
) -> Result<Option<Vec<ResultRow>>, ApiError> {
    let (bucket, _) = bucket_sql(p);
    let cols = columns(p);
    let wants_values: Vec<bool> = cols
        .iter()
        .map(|c| {
            p.ops
                .iter()
                .any(|(op, col, _)| col == c && op.percentile().is_some())
        })
        .collect();
    let ng = p.groups.len().min(MAX_GROUPS);
    let select: String = p
        .groups
        .iter()
        .map(|g| g.name())
        .chain(cols.iter().map(|c| c.sql()))
        .map(|c| format!(", {c}"))
        .collect();
    let sql = format!(
        "SELECT {bucket}{select} FROM calls INDEXED BY api_calls_cover \
         WHERE created_at_ms >= :start AND created_at_ms < :end"
    );
    let params = params(p);
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(bind(&params).as_slice())?;
    let mut dicts: Vec<Dict> = (0..ng).map(|_| Dict::default()).collect();
    // FxHash: the keys are our own small integers, and hashing is most of the work
    // per call once SQLite has handed the row over.
    let mut groups: FxHashMap<(i64, [u32; MAX_GROUPS]), GroupAcc> = FxHashMap::default();
    let empty = GroupAcc {
        rows: 0,
        cols: wants_values
            .iter()
            .map(|w| ColAcc {
                values: w.then(Vec::new),
                ..ColAcc::default()
            })
            .collect(),
    };
    let mut held = 0usize;
    while let Some(r) = rows.next()? {
        let b: i64 = r.get(0)?;
        let mut ids = [0u32; MAX_GROUPS];
        for (i, dict) in dicts.iter_mut().enumerate() {
            ids[i] = dict.id(r.get_ref(1 + i)?);
        }
        let len = groups.len();
        let acc = groups.entry((b, ids)).or_insert_with(|| empty.clone());
        if len >= MAX_ROWS && acc.rows == 0 {
            return Err(too_many_rows(p));
        }
        acc.rows += 1;
        for (ci, col) in acc.cols.iter_mut().enumerate() {
            let x = match r.get_ref(1 + ng + ci)? {
                ValueRef::Real(x) => x,
                ValueRef::Integer(i) => i as f64,
                _ => continue,
            };
            col.add(x);
            if wants_values[ci] {
                held += 1;
                if held > budget {
                    return Ok(None);
                }
            }
        }
    }

    let mut out: Vec<ResultRow> = Vec::with_capacity(groups.len());
    for ((b, ids), mut acc) in groups {
        let outs = p
            .ops
            .iter()
            .map(|(op, col, _)| {
                if *col == Column::CallId {
                    return Out::Count(acc.rows);
                }
                let ci = cols.iter().position(|c| c == col).unwrap_or(0);
                let c = &mut acc.cols[ci];
                let has = c.n > 0;
                match op {
                    OpKind::Count => Out::Count(c.n),
                    OpKind::Sum => Out::Num(has.then(|| c.sum.value())),
                    OpKind::Avg => Out::Num(has.then(|| c.sum.value() / c.n as f64)),
                    OpKind::Min => Out::Num(has.then_some(c.min)),
                    OpKind::Max => Out::Num(has.then_some(c.max)),
                    pct => Out::Num(pct.percentile().and_then(|pc| {
                        let k = usize::try_from(rank(pc, c.n)).ok()?.checked_sub(1)?;
                        let values = c.values.as_mut()?;
                        if k >= values.len() {
                            return None;
                        }
                        // Selection, not a sort: O(n), and the slice stays a
                        // permutation, so the next rank on it is still right.
                        let (_, v, _) = values.select_nth_unstable_by(k, f64::total_cmp);
                        Some(*v)
                    })),
                }
            })
            .collect();
        let names = dicts
            .iter()
            .enumerate()
            .map(|(i, d)| d.name(ids[i]))
            .collect();
        out.push(ResultRow {
            b,
            groups: names,
            out: outs,
        });
    }
    out.sort_by(|x, y| x.b.cmp(&y.b).then_with(|| x.groups.cmp(&y.groups)));
    Ok(Some(out))
}

/// A group's key in the sorted path.
type Key = (i64, Vec<Option<String>>);

/// Progress through one group's values in a percentile pass.
struct GroupWalk {
    key: Key,
    /// The group's result row.
    row: usize,
    /// (operation index, 1-based rank) to pick from this group.
    wanted: Vec<(usize, i64)>,
    /// Rank of the value just read.
    pos: i64,
}

/// Whether the current row (bucket at 0, groups from 1) still belongs to `key`.
fn same_group(row: &rusqlite::Row<'_>, key: &Key) -> rusqlite::Result<bool> {
    if row.get::<_, i64>(0)? != key.0 {
        return Ok(false);
    }
    for (i, g) in key.1.iter().enumerate() {
        let same = match (row.get_ref(i + 1)?, g) {
            (ValueRef::Null, None) => true,
            (ValueRef::Text(t), Some(s)) => t == s.as_bytes(),
            _ => false,
        };
        if !same {
            return Ok(false);
        }
    }
    Ok(true)
}

fn read_key(row: &rusqlite::Row<'_>, n_groups: usize) -> rusqlite::Result<Key> {
    let mut groups = Vec::with_capacity(n_groups);
    for i in 0..n_groups {
        groups.push(row.get::<_, Option<String>>(i + 1)?);
    }
    Ok((row.get(0)?, groups))
}

/// The bounded-memory path: SQL aggregates, then SQLite-sorted percentile passes.
fn sorted(conn: &Connection, p: &Plan) -> Result<Vec<ResultRow>, ApiError> {
    let (bucket, _) = bucket_sql(p);
    let group_cols: Vec<&str> = p.groups.iter().map(|g| g.name()).collect();
    let mut order = vec!["b".to_string()];
    order.extend(group_cols.iter().map(|c| c.to_string()));
    let order = order.join(", ");
    let select_groups: String = group_cols.iter().map(|c| format!(", {c}")).collect();
    let aggs: String = p
        .ops
        .iter()
        .map(|(op, col, _)| {
            let c = col.sql();
            match (op, col) {
                (OpKind::Count, Column::CallId) => ", COUNT(*)".to_string(),
                (OpKind::Count, _) => format!(", COUNT({c})"),
                (OpKind::Sum, _) => format!(", SUM({c})"),
                (OpKind::Avg, _) => format!(", AVG({c})"),
                (OpKind::Min, _) => format!(", MIN({c})"),
                (OpKind::Max, _) => format!(", MAX({c})"),
                // The group's value count: the percentile's rank is taken from it.
                (_, _) => format!(", COUNT({c})"),
            }
        })
        .collect();
    let params = params(p);
    let bound = bind(&params);

    let sql = format!(
        "SELECT {bucket} AS b{select_groups}{aggs} FROM calls INDEXED BY api_calls_cover \
         WHERE created_at_ms >= :start AND created_at_ms < :end \
         GROUP BY {order} ORDER BY {order}"
    );
    let n_groups = group_cols.len();
    let mut keys: Vec<Key> = Vec::new();
    let mut outs: Vec<Vec<Out>> = Vec::new();
    // Value counts of the percentile operations, by row and operation.
    let mut counts: Vec<Vec<i64>> = Vec::new();
    {
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(bound.as_slice())?;
        while let Some(r) = rows.next()? {
            if keys.len() >= MAX_ROWS {
                return Err(too_many_rows(p));
            }
            keys.push(read_key(r, n_groups)?);
            let mut o = Vec::with_capacity(p.ops.len());
            let mut c = Vec::with_capacity(p.ops.len());
            for (j, (op, _, _)) in p.ops.iter().enumerate() {
                let idx = 1 + n_groups + j;
                match op {
                    OpKind::Count => {
                        o.push(Out::Count(r.get(idx)?));
                        c.push(0);
                    }
                    op if op.percentile().is_some() => {
                        o.push(Out::Num(None));
                        c.push(r.get(idx)?);
                    }
                    _ => {
                        o.push(Out::Num(r.get::<_, Option<f64>>(idx)?));
                        c.push(0);
                    }
                }
            }
            outs.push(o);
            counts.push(c);
        }
    }

    let mut pct_columns: Vec<Column> = Vec::new();
    for (op, col, _) in &p.ops {
        if op.percentile().is_some() && !pct_columns.contains(col) {
            pct_columns.push(*col);
        }
    }
    if !pct_columns.is_empty() {
        let index: HashMap<&Key, usize> = keys.iter().enumerate().map(|(i, k)| (k, i)).collect();
        for col in pct_columns {
            let c = col.sql();
            let sql = format!(
                "SELECT {bucket} AS b{select_groups}, {c} FROM calls INDEXED BY api_calls_cover \
                 WHERE created_at_ms >= :start AND created_at_ms < :end AND {c} IS NOT NULL \
                 ORDER BY {order}, {c}"
            );
            let wanted = |row: usize| -> Vec<(usize, i64)> {
                p.ops
                    .iter()
                    .enumerate()
                    .filter(|(_, (_, oc, _))| *oc == col)
                    .filter_map(|(j, (op, _, _))| Some((j, rank(op.percentile()?, counts[row][j]))))
                    .collect()
            };
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(bound.as_slice())?;
            let mut current: Option<GroupWalk> = None;
            while let Some(r) = rows.next()? {
                let fresh = match &current {
                    Some(w) => !same_group(r, &w.key)?,
                    None => true,
                };
                if fresh {
                    let key = read_key(r, n_groups)?;
                    let Some(&row) = index.get(&key) else {
                        // Both statements read one snapshot, so every group is known;
                        // skip rather than fail if that ever changes.
                        current = None;
                        continue;
                    };
                    current = Some(GroupWalk {
                        key,
                        row,
                        wanted: wanted(row),
                        pos: 0,
                    });
                }
                if let Some(w) = current.as_mut() {
                    w.pos += 1;
                    for (j, rank) in &w.wanted {
                        if *rank == w.pos {
                            outs[w.row][*j] = Out::Num(Some(r.get(1 + n_groups)?));
                        }
                    }
                }
            }
        }
    }
    Ok(keys
        .into_iter()
        .zip(outs)
        .map(|((b, groups), out)| ResultRow { b, groups, out })
        .collect())
}

fn too_many_rows(p: &Plan) -> ApiError {
    ApiError::bad_request(format!(
        "query {:?} has more than {MAX_ROWS} result rows; use a larger step, a shorter \
         range or fewer groupBy columns",
        p.name
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::query::GroupBy;
    use crate::record::{CallRecord, CallStatus, Direction, QualityRecord};
    use crate::store::Store;

    /// Both paths, on the same calls, give the same rows.
    #[test]
    fn in_memory_and_sorted_paths_agree() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("a.db")).unwrap();
        crate::api::schema::prepare_store(&mut store).unwrap();
        let mut calls = Vec::new();
        let mut x: u64 = 7;
        for i in 0..600u64 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let r = (x >> 33) % 1000;
            let mos = (r % 7 != 0).then_some(1.0 + (r as f64) * 0.0035);
            calls.push(CallRecord {
                call_id: format!("c{i}"),
                sip_call_id: None,
                agent_id: (r % 5 != 0).then(|| format!("a{}", r % 3)),
                from_number: None,
                to_number: None,
                mno: ["X", "Y", "Z"][(r % 3) as usize].into(),
                country: None,
                direction: if r % 2 == 0 {
                    Direction::Inbound
                } else {
                    Direction::Outbound
                },
                status: CallStatus::Completed,
                ended_reason: None,
                created_at: crate::record::rfc3339((i as i64) * 7_200_000 * 1_000_000),
                ended_at: None,
                duration_seconds: (r % 100) as f64,
                codec: None,
                one_way_audio: false,
                quality_mos: mos,
                quality: QualityRecord {
                    mos,
                    jitter_ms: (r % 11 != 0).then(|| (r % 37) as f64 / 3.0),
                    ..QualityRecord::default()
                },
                resolution: None,
                classified_at: None,
                recording_url: None,
                streams: Vec::new(),
            });
        }
        store.upsert_calls(&calls).unwrap();
        let ops = vec![
            (OpKind::Count, Column::CallId, "n".to_string()),
            (OpKind::Count, Column::Mos, "nm".to_string()),
            (OpKind::Sum, Column::DurationSeconds, "s".to_string()),
            (OpKind::Avg, Column::Mos, "a".to_string()),
            (OpKind::Min, Column::JitterMs, "mi".to_string()),
            (OpKind::Max, Column::Mos, "ma".to_string()),
            (OpKind::P50, Column::Mos, "p50".to_string()),
            (OpKind::P99, Column::JitterMs, "p99".to_string()),
            (OpKind::P90, Column::RttMs, "p90rtt".to_string()),
        ];
        let plans = [
            (vec![], None, 0),
            (vec![GroupBy::Mno], Some(Step::Day), 0),
            (
                vec![GroupBy::AgentId, GroupBy::Direction],
                Some(Step::Week),
                19_800,
            ),
            (
                vec![GroupBy::Mno, GroupBy::AgentId],
                Some(Step::Month),
                -28_800,
            ),
            (vec![GroupBy::Status], Some(Step::Hour), 3_600),
        ];
        for (groups, step, off) in plans {
            let p = Plan {
                name: "t".into(),
                groups,
                ops: ops.clone(),
                start_ms: 0,
                end_ms: 600 * 7_200_000,
                step,
                offset: UtcOffset::from_whole_seconds(off).unwrap(),
                timezone: "x".into(),
            };
            let fast = execute(store.conn(), &p, usize::MAX).unwrap();
            let slow = execute(store.conn(), &p, 0).unwrap();
            assert!(!fast.is_empty());
            assert_eq!(fast.len(), slow.len(), "{p:?}");
            for (f, s) in fast.iter().zip(&slow) {
                assert_eq!((f.b, &f.groups), (s.b, &s.groups), "{p:?}");
                for (a, b) in f.out.iter().zip(&s.out) {
                    match (a, b) {
                        (Out::Num(Some(x)), Out::Num(Some(y))) => {
                            assert!((x - y).abs() < 1e-9, "{x} {y} {p:?}")
                        }
                        _ => assert_eq!(a, b, "{p:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn months() {
        let utc = UtcOffset::UTC;
        assert_eq!(month_index(0, utc), 0);
        assert_eq!(month_start_ms(0, utc), Some(0));
        assert_eq!(month_start_ms(1, utc), Some(31 * MS_PER_DAY));
        let minus = UtcOffset::from_hms(-1, 0, 0).unwrap();
        // 1970-01-01T00:30Z is still December 1969 at -01:00.
        assert_eq!(month_index(1_800_000, minus), -1);
        assert_eq!(month_start_ms(0, minus), Some(3_600_000));
    }
}
