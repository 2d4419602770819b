//! [`CallStore`] on PostgreSQL: the same questions the probe's SQLite answers, in
//! PostgreSQL's dialect, with the same answers (nearest-rank percentiles, the same
//! ordering of groups — NULL first, then bytewise — and of pages).

use std::time::Duration;

use postgres::types::ToSql;
use postgres::NoTls;
use r2d2_postgres::PostgresConnectionManager;
use vqprobe_engine::record::{CallRecord, CallSummary, Resolution};
use vqprobe_store::aggregate::{fixed_step, too_many_rows, Out, ResultRow};
use vqprobe_store::columns::{column, ExportColumn, Kind, EXPORT_COLUMNS};
use vqprobe_store::plan::{Measure, OpKind, Plan, Step, MAX_ROWS};
use vqprobe_store::query::analytics::DayCount;
use vqprobe_store::query::analytics::{Dim, Group, QualityFigures, Summary};
use vqprobe_store::query::calls::CallQuery;
use vqprobe_store::query::export::{Cell, ExportCursor, CHUNK_ROWS};
use vqprobe_store::time::{day_string, ratio, DayWindow};
use vqprobe_store::{CallStore, RowSink, Scope, StoreError, POOR_MOS};

use super::row;
use super::schema::select_list;
use crate::FleetError;

type Manager = PostgresConnectionManager<NoTls>;
type Conn = r2d2::PooledConnection<Manager>;

/// The central store, read by the fleet API.
pub struct PgStore {
    pool: r2d2::Pool<Manager>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

impl PgStore {
    /// A pool of up to `size` connections to `url` (a `postgres://` URL or
    /// `key=value` string). Connects lazily: PostgreSQL may be down at start.
    pub fn new(url: &str, size: u32) -> Result<PgStore, FleetError> {
        let config: postgres::Config = url
            .parse()
            .map_err(|e| FleetError::Config(format!("postgres URL: {e}")))?;
        let pool = r2d2::Pool::builder()
            .max_size(size.max(1))
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(5))
            .build_unchecked(PostgresConnectionManager::new(config, NoTls));
        Ok(PgStore { pool })
    }

    fn conn(&self) -> Result<Conn, StoreError> {
        self.pool
            .get()
            .map_err(|e| StoreError::CentralUnavailable(e.to_string()))
    }
}

/// A PostgreSQL error as the API should see it: a lost or refused connection passes
/// (503), anything else is ours (500).
fn pg(e: postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) if !e.is_closed() => {
            StoreError::Central(format!("{}: {}", db.code().code(), db.message()))
        }
        _ => StoreError::CentralUnavailable(e.to_string()),
    }
}

/// Parameters as the driver takes them.
fn refs(p: &[Box<dyn ToSql + Sync + Send>]) -> Vec<&(dyn ToSql + Sync)> {
    p.iter()
        .map(|b| b.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// `floor(created_at_ms / day)` (also before 1970).
const DAY: &str =
    "((created_at_ms - (((created_at_ms % 86400000) + 86400000) % 86400000)) / 86400000)";

/// SUM of a float column without float drift (exact numeric sum, rounded once).
fn exact_sum(expr: &str) -> String {
    format!("COALESCE(SUM(({expr})::numeric), 0)::float8")
}

impl CallStore for PgStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn has_probes(&self) -> bool {
        true
    }

    fn summary(
        &self,
        w: DayWindow,
        agent: Option<&str>,
        mno: Option<&str>,
        scope: &Scope,
    ) -> Result<Summary, StoreError> {
        let mut c = self.conn()?;
        let sql = format!(
            "SELECT {DAY} AS day, COUNT(*), COUNT(*) FILTER (WHERE status = 'completed'), \
             {}, COUNT(*) FILTER (WHERE resolution = 'resolved'), \
             COUNT(resolution), COUNT(quality_mos), {} FROM calls \
             WHERE created_at_ms >= $1 AND created_at_ms < $2 \
             AND ($3::text IS NULL OR agent_id = $3) AND ($4::text IS NULL OR mno = $4) \
             AND ($5::text IS NULL OR probe_id = $5) GROUP BY day ORDER BY day",
            exact_sum("CASE WHEN status = 'completed' THEN duration_seconds ELSE 0 END"),
            exact_sum("quality_mos"),
        );
        let rows = c
            .query(
                &sql,
                &[&w.start_ms(), &w.end_ms(), &agent, &mno, &scope.probe_id],
            )
            .map_err(pg)?;
        let (mut total, mut completed, mut duration, mut resolved, mut classified) =
            (0i64, 0i64, 0.0, 0i64, 0i64);
        let (mut n_mos, mut sum_mos) = (0i64, 0.0);
        let mut per_day = Vec::new();
        for r in &rows {
            let day: i64 = r.get(0);
            let calls: i64 = r.get(1);
            per_day.push((day, calls));
            total += calls;
            completed += r.get::<_, i64>(2);
            duration += r.get::<_, f64>(3);
            resolved += r.get::<_, i64>(4);
            classified += r.get::<_, i64>(5);
            n_mos += r.get::<_, i64>(6);
            sum_mos += r.get::<_, f64>(7);
        }
        let mut calls_per_day = Vec::new();
        let mut next = per_day.iter().peekable();
        for day in w.first_day..=w.last_day {
            let count = match next.peek() {
                Some((d, c)) if *d == day => {
                    next.next();
                    *c
                }
                _ => 0,
            };
            calls_per_day.push(DayCount {
                date: day_string(day),
                count: u64::try_from(count).unwrap_or(0),
            });
        }
        Ok(Summary {
            total_calls: u64::try_from(total).unwrap_or(0),
            calls_per_day,
            resolution_rate: ratio(resolved as f64, classified),
            average_duration_seconds: ratio(duration, completed),
            average_mos: ratio(sum_mos, n_mos),
        })
    }

    fn breakdown(&self, w: DayWindow, dim: Dim, scope: &Scope) -> Result<Vec<Group>, StoreError> {
        let key = match dim {
            Dim::Mno => "mno",
            Dim::Agent => "COALESCE(agent_id, '')",
            Dim::Country => "COALESCE(country, '')",
        };
        let sql = format!(
            "SELECT {key} AS k, COUNT(*) AS c, COUNT(quality_mos), {}, \
             COUNT(*) FILTER (WHERE quality_mos < {POOR_MOS}), COUNT(jitter_ms), {}, \
             COUNT(loss_ratio), {}, COUNT(rtt_ms), {}, \
             (array_agg(quality_mos ORDER BY quality_mos) FILTER (WHERE quality_mos IS NOT NULL))\
             [GREATEST((COUNT(quality_mos) + 9) / 10, 1)] \
             FROM calls WHERE created_at_ms >= $1 AND created_at_ms < $2 \
             AND ($3::text IS NULL OR probe_id = $3) \
             GROUP BY k ORDER BY c DESC, {key} COLLATE \"C\"",
            exact_sum("quality_mos"),
            exact_sum("jitter_ms"),
            exact_sum("loss_ratio"),
            exact_sum("rtt_ms"),
        );
        let mut c = self.conn()?;
        let rows = c
            .query(&sql, &[&w.start_ms(), &w.end_ms(), &scope.probe_id])
            .map_err(pg)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let name: String = r.get(0);
            let n_mos: i64 = r.get(2);
            // '' stands for "no agent" / "no country", as in the probe's rollup.
            let name = (!(dim != Dim::Mno && name.is_empty())).then_some(name);
            out.push((
                name,
                QualityFigures {
                    calls: u64::try_from(r.get::<_, i64>(1)).unwrap_or(0),
                    average_mos: ratio(r.get(3), n_mos),
                    p10_mos: r.get::<_, Option<f64>>(11),
                    poor_call_ratio: ratio(r.get::<_, i64>(4) as f64, n_mos),
                    average_jitter_ms: ratio(r.get(6), r.get(5)),
                    average_loss_ratio: ratio(r.get(8), r.get(7)),
                    average_rtt_ms: ratio(r.get(10), r.get(9)),
                },
            ));
        }
        Ok(out)
    }

    fn list_calls(
        &self,
        q: &CallQuery,
        scope: &Scope,
    ) -> Result<(Vec<CallSummary>, u64), StoreError> {
        let mut clauses: Vec<String> = Vec::new();
        let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        let texts = [
            ("agent_id", &q.agent_id),
            ("mno", &q.mno),
            ("status", &q.status),
            ("direction", &q.direction),
            ("probe_id", &scope.probe_id),
        ];
        for (col, v) in texts {
            if let Some(v) = v {
                args.push(Box::new(v.clone()));
                clauses.push(format!("{col} = ${}", args.len()));
            }
        }
        let ints = [
            ("created_at_ms >=", q.date_from_ms),
            ("created_at_ms <", q.date_to_ms),
        ];
        for (op, v) in ints {
            if let Some(v) = v {
                args.push(Box::new(v));
                clauses.push(format!("{op} ${}", args.len()));
            }
        }
        let reals = [("quality_mos >=", q.min_mos), ("quality_mos <=", q.max_mos)];
        for (op, v) in reals {
            if let Some(v) = v {
                args.push(Box::new(v));
                clauses.push(format!("{op} ${}", args.len()));
            }
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        let mut c = self.conn()?;
        let mut tx = c
            .build_transaction()
            .read_only(true)
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .start()
            .map_err(pg)?;
        let total: i64 = tx
            .query_one(&format!("SELECT COUNT(*) FROM calls{filter}"), &refs(&args))
            .map_err(pg)?
            .get(0);
        let size = i64::from(q.page_size);
        let offset = (i64::from(q.page.max(1)) - 1).saturating_mul(size);
        let mut calls = Vec::new();
        if offset < total && size > 0 {
            let n = args.len();
            args.push(Box::new(size));
            args.push(Box::new(offset));
            let sql = format!(
                "SELECT {}, probe_id FROM calls{filter} \
                 ORDER BY created_at_ms DESC, call_id COLLATE \"C\", probe_id COLLATE \"C\" \
                 LIMIT ${} OFFSET ${}",
                select_list(),
                n + 1,
                n + 2
            );
            let probe_idx = vqprobe_store::columns::CALL_COLUMNS.len();
            for r in tx.query(&sql, &refs(&args)).map_err(pg)? {
                calls.push(row::summary(&r, probe_idx)?);
            }
        }
        tx.commit().map_err(pg)?;
        Ok((calls, u64::try_from(total).unwrap_or(0)))
    }

    fn get_call(&self, call_id: &str, scope: &Scope) -> Result<Option<CallRecord>, StoreError> {
        let mut c = self.conn()?;
        let sql = format!(
            "SELECT {}, probe_id, streams FROM calls WHERE call_id = $1 \
             AND ($2::text IS NULL OR probe_id = $2) \
             ORDER BY created_at_ms DESC, probe_id COLLATE \"C\" LIMIT 1",
            select_list()
        );
        match c
            .query_opt(&sql, &[&call_id, &scope.probe_id])
            .map_err(pg)?
        {
            Some(r) => Ok(Some(row::record(&r)?)),
            None => Ok(None),
        }
    }

    fn set_resolution(
        &self,
        call_id: &str,
        scope: &Scope,
        resolution: Resolution,
        classified_at: &str,
    ) -> Result<Option<CallRecord>, StoreError> {
        let value = match resolution {
            Resolution::Resolved => "resolved",
            Resolution::Unresolved => "unresolved",
        };
        // Without a probe the NOC classifies the call wherever it was seen.
        let n = self
            .conn()?
            .execute(
                "UPDATE calls SET resolution = $1, classified_at = $2 WHERE call_id = $3 \
                 AND ($4::text IS NULL OR probe_id = $4)",
                &[&value, &classified_at, &call_id, &scope.probe_id],
            )
            .map_err(pg)?;
        if n == 0 {
            return Ok(None);
        }
        self.get_call(call_id, scope)
    }

    fn newest_created_at(&self) -> Result<Option<String>, StoreError> {
        let mut c = self.conn()?;
        Ok(c.query_opt(
            "SELECT created_at FROM calls ORDER BY created_at_ms DESC LIMIT 1",
            &[],
        )
        .map_err(pg)?
        .map(|r| r.get(0)))
    }

    fn aggregate(&self, plans: &[Plan], scope: &Scope) -> Result<Vec<Vec<ResultRow>>, StoreError> {
        let mut c = self.conn()?;
        // One snapshot for the batch, as on a probe.
        let mut tx = c
            .build_transaction()
            .read_only(true)
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .start()
            .map_err(pg)?;
        let mut out = Vec::with_capacity(plans.len());
        for p in plans {
            out.push(aggregate_one(&mut tx, p, scope)?);
        }
        tx.commit().map_err(pg)?;
        Ok(out)
    }

    fn export_chunk(
        &self,
        agent_id: &str,
        scope: &Scope,
        after: Option<ExportCursor>,
        sink: &mut RowSink<'_>,
    ) -> Result<Option<ExportCursor>, StoreError> {
        let stored: Vec<&str> = EXPORT_COLUMNS
            .iter()
            .filter_map(|c| match c {
                ExportColumn::Stored(n) => Some(*n),
                ExportColumn::Constant(..) => None,
            })
            .collect();
        let sql = format!(
            "SELECT {}, created_at_ms, id FROM calls WHERE agent_id = $1 \
             AND ($2::text IS NULL OR probe_id = $2) AND (created_at_ms, id) > ($3, $4) \
             ORDER BY created_at_ms, id LIMIT $5",
            stored.join(", ")
        );
        let (from_ms, from_id) = after.map_or((i64::MIN, i64::MIN), ExportCursor::position);
        let mut c = self.conn()?;
        let rows = c
            .query(
                &sql,
                &[&agent_id, &scope.probe_id, &from_ms, &from_id, &CHUNK_ROWS],
            )
            .map_err(pg)?;
        let mut cursor = None;
        for r in &rows {
            let mut texts: Vec<Option<String>> = Vec::new();
            let mut cells_raw: Vec<(Kind, usize)> = Vec::new();
            let mut i = 0;
            for col in EXPORT_COLUMNS {
                if let ExportColumn::Stored(name) = col {
                    let kind = column(name).map_or(Kind::Text, |c| c.kind);
                    cells_raw.push((kind, i));
                    texts.push(if kind == Kind::Text {
                        r.try_get::<_, Option<String>>(i).map_err(pg)?
                    } else {
                        None
                    });
                    i += 1;
                }
            }
            let mut cells: Vec<Cell<'_>> = Vec::with_capacity(EXPORT_COLUMNS.len());
            let mut j = 0;
            for col in EXPORT_COLUMNS {
                let cell = match col {
                    ExportColumn::Constant(_, v) => Cell::Text(v),
                    ExportColumn::Stored(_) => {
                        let (kind, idx) = cells_raw[j];
                        let cell = match kind {
                            Kind::Text => texts[j].as_deref().map_or(Cell::Null, Cell::Text),
                            Kind::Real => r
                                .try_get::<_, Option<f64>>(idx)
                                .map_err(pg)?
                                .map_or(Cell::Null, Cell::Real),
                            Kind::Bool => r
                                .try_get::<_, Option<bool>>(idx)
                                .map_err(pg)?
                                .map_or(Cell::Null, Cell::Bool),
                            Kind::Int => r
                                .try_get::<_, Option<i64>>(idx)
                                .map_err(pg)?
                                .map_or(Cell::Null, Cell::Int),
                        };
                        j += 1;
                        cell
                    }
                };
                cells.push(cell);
            }
            sink(&cells)?;
            cursor = Some(ExportCursor::new(
                r.get(stored.len()),
                r.get(stored.len() + 1),
            ));
        }
        Ok(cursor.filter(|_| rows.len() as i64 == CHUNK_ROWS))
    }
}

/// The bucket expression of a plan (see `vqprobe_store::aggregate`): bucket start in
/// unix ms for fixed steps, the month index for months, 0 without a step. The numbers
/// are ours (offsets and step lengths), never the client's text.
fn bucket_sql(p: &Plan) -> String {
    let off = i64::from(p.offset.whole_seconds()) * 1000;
    match p.step {
        None => "0::bigint".into(),
        Some(Step::Month) => {
            let t = format!(
                "(to_timestamp(((created_at_ms + {off}) - ((((created_at_ms + {off}) % 1000) + 1000) % 1000)) / 1000) AT TIME ZONE 'UTC')"
            );
            format!(
                "((EXTRACT(YEAR FROM {t})::bigint - 1970) * 12 + EXTRACT(MONTH FROM {t})::bigint - 1)"
            )
        }
        Some(step) => {
            let (s, origin) = fixed_step(step).unwrap_or((86_400_000, 0));
            let a = off - origin;
            format!("((created_at_ms + {a}) - ((((created_at_ms + {a}) % {s}) + {s}) % {s}) - {a})")
        }
    }
}

fn aggregate_one(
    tx: &mut postgres::Transaction<'_>,
    p: &Plan,
    scope: &Scope,
) -> Result<Vec<ResultRow>, StoreError> {
    let groups: Vec<&str> = p.groups.iter().map(|g| g.name()).collect();
    let mut select = vec![format!("{} AS b", bucket_sql(p))];
    select.extend(groups.iter().map(|g| g.to_string()));
    for (op, col, _) in &p.ops {
        let c = col.sql();
        select.push(match (op, col) {
            (OpKind::Count, Measure::CallId) => "COUNT(*)".into(),
            (OpKind::Count, _) => format!("COUNT({c})"),
            (OpKind::Sum, _) => format!("SUM(({c})::numeric)::float8"),
            (OpKind::Avg, _) => format!("AVG(({c})::numeric)::float8"),
            (OpKind::Min, _) => format!("MIN({c})"),
            (OpKind::Max, _) => format!("MAX({c})"),
            (op, _) => {
                // Nearest rank ⌈pct·n/100⌉, in integers as the probe computes it.
                let pct = op.percentile().unwrap_or(50);
                format!(
                    "(array_agg({c} ORDER BY {c}) FILTER (WHERE {c} IS NOT NULL))\
                     [GREATEST(({pct} * COUNT({c}) + 99) / 100, 1)]"
                )
            }
        });
    }
    let mut order = vec!["b".to_string()];
    order.extend(
        groups
            .iter()
            .map(|g| format!("{g} COLLATE \"C\" NULLS FIRST")),
    );
    let group_by: Vec<String> = (1..=1 + groups.len()).map(|i| i.to_string()).collect();
    let sql = format!(
        "SELECT {} FROM calls WHERE created_at_ms >= $1 AND created_at_ms < $2 \
         AND ($3::text IS NULL OR probe_id = $3) GROUP BY {} ORDER BY {} LIMIT {}",
        select.join(", "),
        group_by.join(", "),
        order.join(", "),
        MAX_ROWS + 1
    );
    let rows = tx
        .query(&sql, &[&p.start_ms, &p.end_ms, &scope.probe_id])
        .map_err(pg)?;
    if rows.len() > MAX_ROWS {
        return Err(too_many_rows(p));
    }
    let n = groups.len();
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let mut g = Vec::with_capacity(n);
        for i in 0..n {
            g.push(r.try_get::<_, Option<String>>(1 + i).map_err(pg)?);
        }
        let mut o = Vec::with_capacity(p.ops.len());
        for (j, (op, _, _)) in p.ops.iter().enumerate() {
            let idx = 1 + n + j;
            o.push(match op {
                OpKind::Count => Out::Count(r.try_get(idx).map_err(pg)?),
                _ => Out::Num(r.try_get::<_, Option<f64>>(idx).map_err(pg)?),
            });
        }
        out.push(ResultRow {
            b: r.try_get(0).map_err(pg)?,
            groups: g,
            out: o,
        });
    }
    Ok(out)
}
