//! Runs a planned aggregate query (see [`crate::plan`]) against the store.
//!
//! The calls of the time range are read once, in time order, from the covering index
//! `api_calls_cover` (no `calls` row is touched), and grouped by time bucket and
//! `groupBy` values. Counts, sums (compensated, as SQLite sums), means, minima and
//! maxima accumulate as rows stream by. Percentiles are nearest rank
//! (`percentile_disc`: the k-th smallest value with k = ⌈p·n/100⌉); they need the
//! group's values, which are held in memory up to [`HELD_VALUES`] in all. A query
//! needing more falls back to letting SQLite sort: one aggregate statement, then per
//! percentile column one statement streaming the values in group-then-value order
//! and picking the ranks on the way, which needs no memory beyond the result but is
//! several times slower.
//!
//! The in-memory scan runs on one thread per core ([`scan_threads`]), each on its own
//! read-only connection pinned to the same snapshot ([`crate::pool::Snapshot`]): the
//! range is cut into time chunks the threads take in turn, each thread groups its
//! calls on its own, and the groups are merged at the end — exactly: counts, minima
//! and maxima add up, compensated sums add with their compensation, and a group's
//! percentile values from every thread are gathered before its ranks are picked.
//! A call costs about 0.13 µs on one thread — about half of it SQLite stepping the
//! index and decoding the record, a quarter handing the columns over, a quarter
//! finding the group and adding the call in — so two threads take a 90-day query
//! over a million calls from ≈165 to ≈75 ms end to end on two cores.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rusqlite::types::{Value, ValueRef};
use rusqlite::Connection;
use rustc_hash::FxHashMap;
use time::{Date, Month, UtcOffset};

use crate::error::StoreError;
use crate::plan::{Measure, OpKind, Plan, Step, MAX_ROWS};
use crate::store::Store;
use crate::time::{unix_ms, MS_PER_DAY};

/// Percentile values held in memory per query before falling back to SQLite's
/// sorter (8 bytes each: 32 MiB). Scanning threads may overshoot it by
/// `HELD_FLUSH` values each before they notice; picking the ranks of a group whose
/// values several threads hold gathers them in one more buffer, as large as the
/// largest such group.
pub const HELD_VALUES: usize = 4_000_000;

/// Most `groupBy` columns (each may appear once).
const MAX_GROUPS: usize = 7;

/// One result row: bucket value (see [`bucket_sql`]), group values, one output per
/// operation.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow {
    /// The bucket (see [`bucket_sql`]).
    pub b: i64,
    /// Group values, in the plan's group order.
    pub groups: Vec<Option<String>>,
    /// One output per operation.
    pub out: Vec<Out>,
}

/// An operation's value in a row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Out {
    /// `count`.
    Count(i64),
    /// Everything else; `None` when the group has no value in the column.
    Num(Option<f64>),
}

/// Length of a fixed step, and the origin its buckets are aligned to (Monday
/// 1970-01-05 for weeks, the epoch otherwise), both in ms of local time.
pub fn fixed_step(step: Step) -> Option<(i64, i64)> {
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
pub fn bucket_count(step: Step, start: i64, end: i64, offset: UtcOffset) -> i64 {
    match fixed_step(step) {
        Some((s, _)) => (end - start) / s + 2,
        None => month_index(end, offset) - month_index(start, offset) + 1,
    }
}

/// Months since January 1970 of a local time.
pub fn month_index(ms: i64, offset: UtcOffset) -> i64 {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset);
    (i64::from(t.year()) - 1970) * 12 + i64::from(u8::from(t.month())) - 1
}

/// Unix ms of local midnight on the first of the month `idx` (months since 1970).
pub fn month_start_ms(idx: i64, offset: UtcOffset) -> Option<i64> {
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
            // Local seconds, floored (SQLite's `/` truncates towards zero).
            let local = "((created_at_ms + :off) - ((((created_at_ms + :off) % 1000) + 1000) % 1000)) / 1000";
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
pub fn bucket_start(p: &Plan, b: i64) -> i64 {
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
fn columns(p: &Plan) -> Vec<Measure> {
    let mut cols = Vec::new();
    for (_, col, _) in &p.ops {
        if *col != Measure::CallId && !cols.contains(col) {
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
/// as SQLite orders text). `others` are further connections reading the same
/// snapshot as `conn` (see [`crate::pool::Snapshot`]); the in-memory path scans with
/// one more thread per connection.
pub fn execute(
    conn: &Connection,
    others: &mut [Store],
    p: &Plan,
    budget: usize,
) -> Result<Vec<ResultRow>, StoreError> {
    match in_memory(conn, others, p, budget)? {
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

    /// Adds another sum, compensation included.
    fn merge(&mut self, o: Sum) {
        self.add(o.s);
        self.c += o.c;
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
    /// Further values of the group, seen by other threads (see [`Self::merge`]).
    more: Vec<Vec<f64>>,
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

    /// Adds the figures of the same column of the same group seen elsewhere.
    fn merge(&mut self, o: ColAcc) {
        if o.n == 0 {
            return;
        }
        if self.n == 0 {
            self.min = o.min;
            self.max = o.max;
        } else {
            self.min = self.min.min(o.min);
            self.max = self.max.max(o.max);
        }
        self.n += o.n;
        self.sum.merge(o.sum);
        // Not copied together here: a group's values are gathered once, into a
        // buffer reused for every group, when its percentiles are picked.
        if let Some(w) = o.values.filter(|w| !w.is_empty()) {
            self.more.push(w);
        }
        self.more.extend(o.more);
    }
}

/// One group: its row count and per-column figures.
#[derive(Debug, Clone)]
struct GroupAcc {
    rows: i64,
    cols: Vec<ColAcc>,
}

impl GroupAcc {
    fn merge(&mut self, o: GroupAcc) {
        self.rows += o.rows;
        for (c, oc) in self.cols.iter_mut().zip(o.cols) {
            c.merge(oc);
        }
    }
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

/// Time chunks per scanning thread: the range is cut into this many pieces per
/// thread, and each thread takes the next piece when it is done with one, so a
/// thread slowed down by other work (or a chunk denser than the rest) holds up no
/// other for long.
const CHUNKS_PER_THREAD: usize = 8;

/// Percentile values a scanning thread holds before it adds them to the shared count
/// checked against the budget (which may so be exceeded by this much per thread).
const HELD_FLUSH: usize = 4096;

/// Threads a query's calls are scanned with: one per core, 4 at most.
pub fn scan_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, 4)
}

/// Interned values of the `groupBy` columns of a call (unused ones 0).
type Ids = [u32; MAX_GROUPS];

/// The groups one thread has seen: accumulators in creation order, keyed by bucket
/// and tuple (one id for the combination of group values).
///
/// Finding a call's group is most of the per-call work once SQLite has handed the
/// row over. Calls come in time order, so consecutive calls mostly share a bucket:
/// the current bucket's groups are kept in a table indexed by tuple, and only a
/// group not seen yet in the bucket (or a bucket revisited) goes through the hash map.
struct Groups {
    /// `groupBy` columns: with none the tuple is 0, with one it is that column's id,
    /// with more an id interned in `tuples`.
    ng: usize,
    tuples: FxHashMap<Ids, u32>,
    tuple_ids: Vec<Ids>,
    /// `(bucket, tuple)` of each accumulator.
    keys: Vec<(i64, u32)>,
    accs: Vec<GroupAcc>,
    index: FxHashMap<(i64, u32), u32>,
    /// The bucket `recent` is about.
    recent_b: Option<i64>,
    /// By tuple: `(stamp, accumulator)`, valid when the stamp is `stamp`.
    recent: Vec<(u32, u32)>,
    stamp: u32,
}

impl Groups {
    fn new(ng: usize) -> Groups {
        Groups {
            ng,
            tuples: FxHashMap::default(),
            tuple_ids: Vec::new(),
            keys: Vec::new(),
            accs: Vec::new(),
            index: FxHashMap::default(),
            recent_b: None,
            recent: Vec::new(),
            stamp: 0,
        }
    }

    fn tuple(&mut self, ids: &Ids) -> u32 {
        match self.ng {
            0 => 0,
            1 => ids[0],
            _ => {
                if let Some(t) = self.tuples.get(ids) {
                    return *t;
                }
                let t = u32::try_from(self.tuple_ids.len()).unwrap_or(u32::MAX);
                self.tuple_ids.push(*ids);
                self.tuples.insert(*ids, t);
                t
            }
        }
    }

    fn ids(&self, tuple: u32) -> Ids {
        match self.ng {
            0 => [0; MAX_GROUPS],
            1 => {
                let mut ids = [0; MAX_GROUPS];
                ids[0] = tuple;
                ids
            }
            _ => self.tuple_ids[tuple as usize],
        }
    }

    /// The accumulator of `(b, tuple)`, a clone of `empty` if new; `None` if that
    /// would make more than [`MAX_ROWS`].
    fn get(&mut self, b: i64, tuple: u32, empty: &GroupAcc) -> Option<&mut GroupAcc> {
        if self.recent_b != Some(b) {
            self.recent_b = Some(b);
            self.stamp = self.stamp.wrapping_add(1);
            if self.stamp == 0 {
                self.recent.fill((0, 0));
                self.stamp = 1;
            }
        }
        let t = tuple as usize;
        if let Some(&(stamp, slot)) = self.recent.get(t) {
            if stamp == self.stamp {
                return self.accs.get_mut(slot as usize);
            }
        }
        let slot = match self.index.entry((b, tuple)) {
            Entry::Occupied(o) => *o.get(),
            Entry::Vacant(_) if self.accs.len() >= MAX_ROWS => return None,
            Entry::Vacant(v) => {
                let slot = u32::try_from(self.accs.len()).unwrap_or(u32::MAX);
                self.accs.push(empty.clone());
                self.keys.push((b, tuple));
                *v.insert(slot)
            }
        };
        if t >= self.recent.len() {
            self.recent.resize(t + 1, (0, 0));
        }
        self.recent[t] = (self.stamp, slot);
        self.accs.get_mut(slot as usize)
    }

    /// Adds a group seen by another thread.
    fn absorb(&mut self, b: i64, tuple: u32, acc: GroupAcc) {
        match self.index.entry((b, tuple)) {
            Entry::Occupied(o) => self.accs[*o.get() as usize].merge(acc),
            Entry::Vacant(v) => {
                v.insert(u32::try_from(self.accs.len()).unwrap_or(u32::MAX));
                self.accs.push(acc);
                self.keys.push((b, tuple));
            }
        }
    }

    fn len(&self) -> usize {
        self.accs.len()
    }
}

/// What every scanning thread of one query shares.
struct Scan<'a> {
    p: &'a Plan,
    /// `SELECT [created_at_ms,] <groups>, <columns>` over `[:start, :end)`.
    sql: String,
    /// Index of the first group column: 1 after the time, else 0.
    first: usize,
    /// Per numeric column, whether its values are kept (for a percentile).
    wants_values: Vec<bool>,
    /// The range's pieces, in time order.
    chunks: Vec<(i64, i64)>,
    /// The next piece to take.
    next: AtomicUsize,
    /// Percentile values held by all threads (as last flushed).
    held: AtomicUsize,
    budget: usize,
    /// Set when a thread fails or exceeds the budget: the others stop.
    stop: AtomicBool,
}

/// How one thread's scan ended.
enum Part {
    /// Its groups (boxed: a few hundred bytes, moved between threads once).
    Done(Box<Partial>),
    /// The budget was exceeded.
    OverBudget,
    /// Another thread failed or exceeded the budget.
    Stopped,
}

/// The groups one thread has seen, keyed by its own interned ids.
struct Partial {
    dicts: Vec<Dict>,
    groups: Groups,
}

/// The bucket of a call's time, remembering the last bucket's bounds: calls come in
/// time order, so most calls fall in the bucket of the one before.
struct Bucketer {
    step: Option<Step>,
    offset: UtcOffset,
    /// Bounds `[lo, hi)` of the bucket `b`.
    lo: i64,
    hi: i64,
    b: i64,
}

impl Bucketer {
    fn new(p: &Plan) -> Bucketer {
        Bucketer {
            step: p.step,
            offset: p.offset,
            lo: 0,
            hi: 0,
            b: 0,
        }
    }

    /// The bucket value of `t` (unix ms), as [`bucket_sql`] computes it.
    fn of(&mut self, t: i64) -> i64 {
        if t < self.lo || t >= self.hi {
            self.find(t);
        }
        self.b
    }

    fn find(&mut self, t: i64) {
        match self.step {
            None => (self.b, self.lo, self.hi) = (0, i64::MIN, i64::MAX),
            Some(Step::Month) => {
                let idx = month_index(t, self.offset);
                self.b = idx;
                // Unrepresentable bounds leave an empty range: the next call asks again.
                self.lo = month_start_ms(idx, self.offset).unwrap_or(t);
                self.hi = month_start_ms(idx + 1, self.offset).unwrap_or(t);
            }
            Some(step) => {
                let (s, origin) = fixed_step(step).unwrap_or((MS_PER_DAY, 0));
                let a = offset_ms(self.offset) - origin;
                self.b = t.wrapping_sub(t.wrapping_add(a).rem_euclid(s));
                self.lo = self.b;
                self.hi = self.b.saturating_add(s);
            }
        }
    }
}

/// The in-memory path; `None` when the percentile values exceed `budget`.
///
/// The range is cut into time chunks that the calling thread and one thread per
/// connection in `others` (each in a read transaction on the same snapshot as
/// `conn`, see [`crate::pool::Snapshot`]) scan side by side, each into its own groups;
/// the groups are then merged. Counts, sums, minima and maxima merge exactly (sums
/// keep their compensation); percentile values are concatenated, so the ranks are
/// picked from all of a group's values as if one thread had read them.
fn in_memory(
    conn: &Connection,
    others: &mut [Store],
    p: &Plan,
    budget: usize,
) -> Result<Option<Vec<ResultRow>>, StoreError> {
    let cols = columns(p);
    let wants_values: Vec<bool> = cols
        .iter()
        .map(|c| {
            p.ops
                .iter()
                .any(|(op, col, _)| col == c && op.percentile().is_some())
        })
        .collect();
    // The time only when there are buckets to put calls in; `0` when nothing at all
    // is read (count of calls, no groups).
    let mut select: Vec<&str> = p.step.map(|_| "created_at_ms").into_iter().collect();
    select.extend(p.groups.iter().map(|g| g.name()));
    select.extend(cols.iter().map(|c| c.sql()));
    if select.is_empty() {
        select.push("0");
    }
    let select = select.join(", ");
    let threads = 1 + others.len();
    let n_chunks = if threads == 1 {
        1
    } else {
        threads * CHUNKS_PER_THREAD
    };
    let span = i128::from(p.end_ms) - i128::from(p.start_ms);
    let cut = |i: usize| {
        let at = i128::from(p.start_ms) + span * i as i128 / n_chunks as i128;
        i64::try_from(at).unwrap_or(p.end_ms)
    };
    let scan = Scan {
        p,
        sql: format!(
            "SELECT {select} FROM calls INDEXED BY api_calls_cover \
             WHERE created_at_ms >= :start AND created_at_ms < :end"
        ),
        wants_values,
        first: usize::from(p.step.is_some()),
        chunks: (0..n_chunks)
            .map(|i| (cut(i), cut(i + 1)))
            .filter(|(lo, hi)| lo < hi)
            .collect(),
        next: AtomicUsize::new(0),
        held: AtomicUsize::new(0),
        budget,
        stop: AtomicBool::new(false),
    };
    let results: Vec<Result<Part, StoreError>> = std::thread::scope(|threads| {
        let handles: Vec<_> = others
            .iter_mut()
            .map(|store| {
                let scan = &scan;
                threads.spawn(move || scan.run(store.conn()))
            })
            .collect();
        let mut results = vec![scan.run(conn)];
        for h in handles {
            results.push(h.join().unwrap_or_else(|_| {
                Err(StoreError::Internal(
                    "an aggregate scan thread panicked".into(),
                ))
            }));
        }
        results
    });
    let mut parts = Vec::with_capacity(results.len());
    let mut over_budget = false;
    for r in results {
        match r? {
            Part::Done(part) => parts.push(*part),
            Part::OverBudget => over_budget = true,
            Part::Stopped => {}
        }
    }
    if over_budget {
        return Ok(None);
    }
    let Partial { dicts, mut groups } = merge(parts, p);
    if groups.len() > MAX_ROWS {
        return Err(too_many_rows(p));
    }

    let mut out: Vec<ResultRow> = Vec::with_capacity(groups.len());
    let keys = std::mem::take(&mut groups.keys);
    // Per column, where a group's values seen by several threads are gathered.
    let mut gathered: Vec<Vec<f64>> = cols.iter().map(|_| Vec::new()).collect();
    for ((b, tuple), mut acc) in keys.into_iter().zip(std::mem::take(&mut groups.accs)) {
        let ids = groups.ids(tuple);
        for (c, buf) in acc.cols.iter_mut().zip(gathered.iter_mut()) {
            if let (Some(v), false) = (c.values.as_mut(), c.more.is_empty()) {
                buf.clear();
                buf.extend_from_slice(v);
                for w in c.more.drain(..) {
                    buf.extend_from_slice(&w);
                }
                // Swapped in for the selection below, back out when the group is done.
                std::mem::swap(v, buf);
            }
        }
        let outs = p
            .ops
            .iter()
            .map(|(op, col, _)| {
                if *col == Measure::CallId {
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
        for (c, buf) in acc.cols.iter_mut().zip(gathered.iter_mut()) {
            if let Some(v) = c.values.as_mut() {
                if v.capacity() > buf.capacity() {
                    std::mem::swap(v, buf);
                }
            }
        }
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

impl Scan<'_> {
    /// One thread's share of the scan; stops the others when it fails or exceeds the
    /// budget.
    fn run(&self, conn: &Connection) -> Result<Part, StoreError> {
        let out = self.chunks_on(conn);
        if !matches!(out, Ok(Part::Done(_))) {
            self.stop.store(true, Ordering::Relaxed);
        }
        out
    }

    /// Adds `n` held values to the shared count; whether the budget is exceeded.
    fn hold(&self, n: usize) -> bool {
        self.held.fetch_add(n, Ordering::Relaxed).saturating_add(n) > self.budget
    }

    fn chunks_on(&self, conn: &Connection) -> Result<Part, StoreError> {
        let p = self.p;
        let ng = p.groups.len().min(MAX_GROUPS);
        let first = self.first;
        let mut stmt = conn.prepare_cached(&self.sql)?;
        let mut dicts: Vec<Dict> = (0..ng).map(|_| Dict::default()).collect();
        let mut groups = Groups::new(ng);
        let empty = GroupAcc {
            rows: 0,
            cols: self
                .wants_values
                .iter()
                .map(|w| ColAcc {
                    values: w.then(Vec::new),
                    ..ColAcc::default()
                })
                .collect(),
        };
        let mut bucket = Bucketer::new(p);
        let mut held = 0usize;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(Part::Stopped);
            }
            let Some(&(lo, hi)) = self.chunks.get(self.next.fetch_add(1, Ordering::Relaxed)) else {
                break;
            };
            let mut rows = stmt.query(rusqlite::named_params! {":start": lo, ":end": hi})?;
            while let Some(r) = rows.next()? {
                let b = if first == 0 {
                    0
                } else {
                    match r.get_ref(0)? {
                        ValueRef::Integer(t) => bucket.of(t),
                        _ => continue,
                    }
                };
                let mut ids = [0u32; MAX_GROUPS];
                for (i, dict) in dicts.iter_mut().enumerate() {
                    ids[i] = dict.id(r.get_ref(first + i)?);
                }
                let tuple = groups.tuple(&ids);
                let Some(acc) = groups.get(b, tuple, &empty) else {
                    return Err(too_many_rows(p));
                };
                acc.rows += 1;
                for (ci, col) in acc.cols.iter_mut().enumerate() {
                    let x = match r.get_ref(first + ng + ci)? {
                        ValueRef::Real(x) => x,
                        ValueRef::Integer(i) => i as f64,
                        _ => continue,
                    };
                    col.add(x);
                    if self.wants_values[ci] {
                        held += 1;
                    }
                }
                if held >= HELD_FLUSH {
                    if self.hold(held) {
                        return Ok(Part::OverBudget);
                    }
                    if self.stop.load(Ordering::Relaxed) {
                        return Ok(Part::Stopped);
                    }
                    held = 0;
                }
            }
        }
        if self.hold(held) {
            return Ok(Part::OverBudget);
        }
        Ok(Part::Done(Box::new(Partial { dicts, groups })))
    }
}

/// Merges the threads' groups into the first thread's: the others' ids are mapped to
/// the first's dictionaries, and groups seen by several threads are combined.
fn merge(parts: Vec<Partial>, p: &Plan) -> Partial {
    let mut parts = parts.into_iter();
    let Some(mut base) = parts.next() else {
        return Partial {
            dicts: Vec::new(),
            groups: Groups::new(p.groups.len().min(MAX_GROUPS)),
        };
    };
    for mut part in parts {
        // Old id → base id, per groupBy column (NULL stays 0).
        let remap: Vec<Vec<u32>> = part
            .dicts
            .iter()
            .zip(base.dicts.iter_mut())
            .map(|(d, into)| {
                let mut m = vec![0u32; d.names.len().max(1)];
                for (bytes, id) in &d.ids {
                    m[*id as usize] = into.intern(bytes);
                }
                m
            })
            .collect();
        let keys = std::mem::take(&mut part.groups.keys);
        for ((b, tuple), acc) in keys.into_iter().zip(std::mem::take(&mut part.groups.accs)) {
            let ids = part.groups.ids(tuple);
            let mut mapped = [0u32; MAX_GROUPS];
            for (i, m) in remap.iter().enumerate() {
                mapped[i] = m.get(ids[i] as usize).copied().unwrap_or(0);
            }
            let tuple = base.groups.tuple(&mapped);
            base.groups.absorb(b, tuple, acc);
        }
    }
    base
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
fn sorted(conn: &Connection, p: &Plan) -> Result<Vec<ResultRow>, StoreError> {
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
                (OpKind::Count, Measure::CallId) => ", COUNT(*)".to_string(),
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

    let mut pct_columns: Vec<Measure> = Vec::new();
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

/// The error of a query with more than [`MAX_ROWS`] result rows.
pub fn too_many_rows(p: &Plan) -> StoreError {
    StoreError::TooLarge(format!(
        "query {:?} has more than {MAX_ROWS} result rows; use a larger step, a shorter \
         range or fewer groupBy columns",
        p.name
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::GroupBy;
    use crate::store::Store;
    use vqprobe_engine::record::{CallRecord, CallStatus, CallSummary, Direction, QualityRecord};

    /// Both paths, on the same calls, give the same rows, and so does the in-memory
    /// path split over threads.
    #[test]
    fn in_memory_and_sorted_paths_agree() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let mut store = Store::open(&path).unwrap();
        let mut calls = Vec::new();
        let mut x: u64 = 7;
        for i in 0..600u64 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let r = (x >> 33) % 1000;
            let mos = (r % 7 != 0).then_some(1.0 + (r as f64) * 0.0035);
            calls.push(CallRecord {
                call: CallSummary {
                    call_id: format!("c{i}"),
                    sip_call_id: None,
                    agent_id: (r % 5 != 0).then(|| format!("a{}", r % 3)),
                    from_number: None,
                    to_number: None,
                    from_raw: None,
                    to_raw: None,
                    from_anonymous: false,
                    diverted_from: None,
                    mno: ["X", "Y", "Z"][(r % 3) as usize].into(),
                    mno_source: None,
                    country: None,
                    direction: if r % 2 == 0 {
                        Direction::Inbound
                    } else {
                        Direction::Outbound
                    },
                    status: CallStatus::Completed,
                    ended_reason: None,
                    // From 1969-12-07 on, half a second off the hour: buckets before 1970
                    // must be floored the same way in SQL and in Rust.
                    created_at: vqprobe_engine::record::rfc3339(
                        ((i as i64 - 300) * 7_200_000 - 500) * 1_000_000,
                    ),
                    ended_at: None,
                    duration_seconds: (r % 100) as f64,
                    codec: None,
                    one_way_audio: false,
                    fax: false,
                    xr_disagreement: false,
                    quality_mos: mos,
                    quality: QualityRecord {
                        mos,
                        jitter_ms: (r % 11 != 0).then(|| (r % 37) as f64 / 3.0),
                        ..QualityRecord::default()
                    },
                    resolution: None,
                    classified_at: None,
                    recording_url: None,
                    probe_id: None,
                },
                streams: Vec::new(),
            });
        }
        store.upsert_calls(&calls).unwrap();
        let ops = vec![
            (OpKind::Count, Measure::CallId, "n".to_string()),
            (OpKind::Count, Measure::Mos, "nm".to_string()),
            (OpKind::Sum, Measure::DurationSeconds, "s".to_string()),
            (OpKind::Avg, Measure::Mos, "a".to_string()),
            (OpKind::Min, Measure::JitterMs, "mi".to_string()),
            (OpKind::Max, Measure::Mos, "ma".to_string()),
            (OpKind::P50, Measure::Mos, "p50".to_string()),
            (OpKind::P99, Measure::JitterMs, "p99".to_string()),
            (OpKind::P90, Measure::RttMs, "p90rtt".to_string()),
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
            (vec![], Some(Step::Month), 0),
            (
                vec![
                    GroupBy::Mno,
                    GroupBy::AgentId,
                    GroupBy::Direction,
                    GroupBy::Status,
                ],
                Some(Step::Day),
                0,
            ),
        ];
        // Three more readers than the one: more threads than chunks per core expect.
        let mut readers: Vec<Store> = (0..4)
            .map(|_| Store::open_readonly(&path).unwrap())
            .collect();
        let mut snap = crate::pool::Snapshot::begin(&mut readers).unwrap();
        let (conn, others) = snap.connections();
        assert_eq!(others.len(), 3);
        for (groups, step, off) in plans {
            let p = Plan {
                name: "t".into(),
                groups,
                ops: ops.clone(),
                start_ms: -300 * 7_200_000,
                end_ms: 300 * 7_200_000,
                step,
                offset: UtcOffset::from_whole_seconds(off).unwrap(),
                timezone: "x".into(),
            };
            let fast = execute(store.conn(), &mut [], &p, usize::MAX).unwrap();
            let slow = execute(store.conn(), &mut [], &p, 0).unwrap();
            let threaded = execute(conn, others, &p, usize::MAX).unwrap();
            // Over budget on some thread: the sorted path, whatever the threads did.
            let threaded_slow = execute(conn, others, &p, 100).unwrap();
            assert!(!fast.is_empty());
            for other in [&slow, &threaded, &threaded_slow] {
                assert_eq!(fast.len(), other.len(), "{p:?}");
                for (f, s) in fast.iter().zip(other) {
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
    }

    /// The k-th value of a group whose values several threads saw, with ties and
    /// uneven shares, is the k-th of all of them.
    #[test]
    fn merged_percentiles_are_exact() {
        let mut all = Vec::new();
        let mut accs: Vec<ColAcc> = Vec::new();
        for (t, share) in [5usize, 0, 1, 37].into_iter().enumerate() {
            let mut acc = ColAcc {
                values: Some(Vec::new()),
                ..ColAcc::default()
            };
            for i in 0..share {
                let x = ((i * 7 + t * 3) % 11) as f64 / 4.0;
                acc.add(x);
                all.push(x);
            }
            accs.push(acc);
        }
        let mut merged = accs.remove(0);
        for a in accs {
            merged.merge(a);
        }
        assert_eq!(merged.n, all.len() as i64);
        assert_eq!(merged.more.len(), 2, "empty shares are not kept");
        let mut gathered: Vec<f64> = merged.values.clone().unwrap();
        for w in &merged.more {
            gathered.extend_from_slice(w);
        }
        gathered.sort_by(f64::total_cmp);
        all.sort_by(f64::total_cmp);
        assert_eq!(gathered, all);
        assert_eq!(merged.min, all[0]);
        assert_eq!(merged.max, all[all.len() - 1]);
        assert!((merged.sum.value() - all.iter().sum::<f64>()).abs() < 1e-12);
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
