//! The database schema, in one place: the versioned migrations that create the tables
//! (`calls`, `call_streams`), and the derived objects every query relies on — the
//! query indexes, the daily rollup `api_daily` kept exact by triggers, and the
//! `calls_version` counter — created or refreshed by [`prepare`] whenever a
//! read-write connection opens ([`crate::Store::open`]).
//!
//! The rollup `api_daily` holds, per UTC day, agent, MNO and country, the counts and sums the
//! summary endpoints need. SQLite triggers on `calls` maintain it inside the writer's
//! own transaction (insert adds a row's contribution, update shifts or moves it,
//! delete — retention — removes it), so it can never disagree with `calls`, whoever
//! writes. The price is on the write side: with the indexes and triggers a store
//! upsert costs about five times as much (≈12k instead of ≈55k upserts/s at a
//! million calls), far above what a probe writes.
//!
//! Three more triggers count every row written to `calls` in `api_meta`
//! (`calls_version`, see [`calls_version`]): two read transactions that see the same
//! count see the same calls, which is how a query split over several connections
//! checks that they all read one snapshot.
//!
//! The columns of `calls` are those of [`crate::columns::CALL_COLUMNS`]; a test holds
//! the migrated table to that list.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::error::StoreError;

/// Schema version this build writes and reads (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 4;

/// Migrations in order; migration `i` takes the schema from version `i` to `i + 1`.
/// Never edit one that has shipped: append a new one.
pub(crate) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE calls (
    call_id          TEXT PRIMARY KEY NOT NULL,
    sip_call_id      TEXT,
    agent_id         TEXT,
    from_number      TEXT,
    to_number        TEXT,
    mno              TEXT NOT NULL,
    country          TEXT,
    direction        TEXT NOT NULL,
    status           TEXT NOT NULL,
    ended_reason     TEXT,
    created_at_ms    INTEGER NOT NULL,
    created_at       TEXT NOT NULL,
    ended_at         TEXT,
    duration_seconds REAL NOT NULL,
    codec            TEXT,
    one_way_audio    INTEGER NOT NULL,
    quality_mos      REAL,
    mos              REAL,
    mos_lq           REAL,
    r_factor         REAL,
    min_interval_mos REAL,
    jitter_ms        REAL,
    loss_ratio       REAL,
    rtt_ms           REAL,
    one_way_delay_ms REAL,
    resolution       TEXT,
    classified_at    TEXT,
    recording_url    TEXT
);
CREATE INDEX calls_created ON calls (created_at_ms);
CREATE INDEX calls_agent_created ON calls (agent_id, created_at_ms);
CREATE INDEX calls_mno_created ON calls (mno, created_at_ms);
CREATE INDEX calls_status_created ON calls (status, created_at_ms);
CREATE TABLE call_streams (
    call_id      TEXT PRIMARY KEY NOT NULL
                 REFERENCES calls (call_id) ON DELETE CASCADE,
    streams_json TEXT NOT NULL
);
"#,
    // 2: fax calls (T.38 phase or V.152 voice-band data).
    "ALTER TABLE calls ADD COLUMN fax INTEGER NOT NULL DEFAULT 0;",
    // 3: numbers as signalled, anonymous callers, diversions, where the MNO came from.
    "ALTER TABLE calls ADD COLUMN from_raw TEXT;
     ALTER TABLE calls ADD COLUMN to_raw TEXT;
     ALTER TABLE calls ADD COLUMN from_anonymous INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE calls ADD COLUMN diverted_from TEXT;
     ALTER TABLE calls ADD COLUMN mno_source TEXT;",
    // 4: an endpoint's own quality report (RTCP XR, RFC 6035) disagrees with the probe.
    "ALTER TABLE calls ADD COLUMN xr_disagreement INTEGER NOT NULL DEFAULT 0;",
];

pub(crate) fn user_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

/// Brings the schema to [`SCHEMA_VERSION`], each step in its own transaction so a crash
/// mid-migration leaves the previous version intact.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let supported = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Read inside the write transaction: two processes opening a fresh file at once
        // must not both run the same migration.
        let version = user_version(&tx)?;
        if version > supported {
            return Err(StoreError::SchemaTooNew {
                found: version,
                supported,
            });
        }
        let Some(step) = usize::try_from(version)
            .ok()
            .and_then(|v| MIGRATIONS.get(v))
        else {
            return Ok(());
        };
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
}

/// Bump when the rollup's columns or the triggers' arithmetic change: the rollup is
/// then dropped and rebuilt from `calls`. 2: keyed by country too.
pub const ROLLUP_VERSION: i64 = 2;

/// MOS below which a call counts as poor (ITU-T G.107 Annex B: "many users
/// dissatisfied" starts at R = 60, MOS ≈ 3.1).
pub const POOR_MOS: f64 = 3.1;

/// Query indexes, beyond the time/agent/MNO/status ones of the first migration:
/// - `api_calls_mno_mos`, `api_calls_agent_mos`, `api_calls_country_mos` —
///   `(group, quality_mos, created_at_ms)`: walk one MNO's, agent's or country's calls
///   in MOS order, for an exact p10 without sorting the group, and count MOS-filtered
///   lists of one agent or MNO.
/// - `api_calls_cover` — `created_at_ms` then every column `POST /v1/analytics` and
///   the call list filter on: a time range is read from this index alone, in order,
///   without touching the wide `calls` rows.
pub const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS api_calls_mno_mos ON calls (mno, quality_mos, created_at_ms);
CREATE INDEX IF NOT EXISTS api_calls_agent_mos ON calls (agent_id, quality_mos, created_at_ms);
CREATE INDEX IF NOT EXISTS api_calls_country_mos ON calls (country, quality_mos, created_at_ms);
CREATE INDEX IF NOT EXISTS api_calls_cover ON calls (created_at_ms, agent_id, mno, status,
    direction, country, codec, ended_reason, quality_mos, r_factor, jitter_ms, loss_ratio,
    rtt_ms, duration_seconds);
";

/// The rollup's bookkeeping.
const META: &str = "
CREATE TABLE IF NOT EXISTS api_meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
) WITHOUT ROWID;
";

/// The rollup. `agent_id` and `country` are `''` for calls without one, as a NULL in
/// a primary key would never conflict and so never be summed into.
const TABLES: &str = "
CREATE TABLE IF NOT EXISTS api_daily (
    day          INTEGER NOT NULL,
    agent_id     TEXT NOT NULL,
    mno          TEXT NOT NULL,
    country      TEXT NOT NULL,
    calls        INTEGER NOT NULL,
    completed    INTEGER NOT NULL,
    sum_duration REAL NOT NULL,
    resolved     INTEGER NOT NULL,
    classified   INTEGER NOT NULL,
    n_mos        INTEGER NOT NULL,
    sum_mos      REAL NOT NULL,
    n_poor       INTEGER NOT NULL,
    n_jitter     INTEGER NOT NULL,
    sum_jitter   REAL NOT NULL,
    n_loss       INTEGER NOT NULL,
    sum_loss     REAL NOT NULL,
    n_rtt        INTEGER NOT NULL,
    sum_rtt      REAL NOT NULL,
    PRIMARY KEY (day, agent_id, mno, country)
) WITHOUT ROWID;
";

/// Rollup value columns, in the order [`contribution`] yields them.
const VALUE_COLUMNS: [&str; 14] = [
    "calls",
    "completed",
    "sum_duration",
    "resolved",
    "classified",
    "n_mos",
    "sum_mos",
    "n_poor",
    "n_jitter",
    "sum_jitter",
    "n_loss",
    "sum_loss",
    "n_rtt",
    "sum_rtt",
];

/// `calls` columns whose change moves a row's contribution.
const WATCHED: [&str; 11] = [
    "created_at_ms",
    "agent_id",
    "mno",
    "country",
    "status",
    "duration_seconds",
    "resolution",
    "quality_mos",
    "jitter_ms",
    "loss_ratio",
    "rtt_ms",
];

/// The UTC day of `created_at_ms`, floored (also before 1970).
fn day_expr(row: &str) -> String {
    format!("(({row}.created_at_ms - ((({row}.created_at_ms % 86400000) + 86400000) % 86400000)) / 86400000)")
}

/// The key and value expressions of one `calls` row (`NEW` or `OLD`) in the rollup.
/// Averages are over calls that have the figure; duration over completed calls.
fn contribution(row: &str) -> (String, [String; 14]) {
    let key = format!(
        "{}, IFNULL({row}.agent_id, ''), {row}.mno, IFNULL({row}.country, '')",
        day_expr(row)
    );
    let values = [
        "1".to_string(),
        format!("({row}.status = 'completed')"),
        format!("(CASE WHEN {row}.status = 'completed' THEN {row}.duration_seconds ELSE 0.0 END)"),
        format!("({row}.resolution IS 'resolved')"),
        format!("({row}.resolution IS NOT NULL)"),
        format!("({row}.quality_mos IS NOT NULL)"),
        format!("IFNULL({row}.quality_mos, 0.0)"),
        format!("IFNULL({row}.quality_mos < {POOR_MOS}, 0)"),
        format!("({row}.jitter_ms IS NOT NULL)"),
        format!("IFNULL({row}.jitter_ms, 0.0)"),
        format!("({row}.loss_ratio IS NOT NULL)"),
        format!("IFNULL({row}.loss_ratio, 0.0)"),
        format!("({row}.rtt_ms IS NOT NULL)"),
        format!("IFNULL({row}.rtt_ms, 0.0)"),
    ];
    (key, values)
}

/// An upsert adding (`sign` = "") or removing (`sign` = "-") a row's contribution.
fn apply(row: &str, sign: &str) -> String {
    let (key, values) = contribution(row);
    let vals: Vec<String> = values.iter().map(|v| format!("{sign}{v}")).collect();
    let sets: Vec<String> = VALUE_COLUMNS
        .iter()
        .map(|c| format!("{c} = {c} + excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO api_daily (day, agent_id, mno, country, {cols}) VALUES ({key}, {vals}) \
         ON CONFLICT (day, agent_id, mno, country) DO UPDATE SET {sets};",
        cols = VALUE_COLUMNS.join(", "),
        vals = vals.join(", "),
        sets = sets.join(", "),
    )
}

/// Drops the rollup row a removal emptied, so retention leaves no zero rows behind.
fn prune(row: &str) -> String {
    format!(
        "DELETE FROM api_daily WHERE day = {} AND agent_id = IFNULL({row}.agent_id, '') \
         AND mno = {row}.mno AND country = IFNULL({row}.country, '') AND calls = 0;",
        day_expr(row)
    )
}

/// An update adding NEW's and removing OLD's contribution in place, for a row whose
/// rollup key did not change (an interim record followed by the next one): one
/// statement instead of two upserts and a prune.
fn shift() -> String {
    let (_, new_values) = contribution("NEW");
    let (_, old_values) = contribution("OLD");
    let sets: Vec<String> = VALUE_COLUMNS
        .iter()
        .zip(new_values.iter().zip(old_values.iter()))
        .map(|(c, (n, o))| format!("{c} = {c} + {n} - {o}"))
        .collect();
    format!(
        "UPDATE api_daily SET {sets} WHERE day = {day} AND agent_id = IFNULL(NEW.agent_id, '') \
         AND mno = NEW.mno AND country = IFNULL(NEW.country, '');",
        sets = sets.join(", "),
        day = day_expr("NEW"),
    )
}

/// Key in `api_meta` of the count of rows ever inserted into, updated in or deleted
/// from `calls` (see [`calls_version`]).
const CALLS_VERSION_KEY: &str = "calls_version";

/// Triggers bumping `calls_version` on every row change of `calls`, whichever
/// columns change (the rollup's update triggers ignore some).
fn version_triggers() -> String {
    let bump = format!("UPDATE api_meta SET value = value + 1 WHERE key = '{CALLS_VERSION_KEY}';");
    format!(
        "DROP TRIGGER IF EXISTS api_version_insert;
         DROP TRIGGER IF EXISTS api_version_update;
         DROP TRIGGER IF EXISTS api_version_delete;
         CREATE TRIGGER api_version_insert AFTER INSERT ON calls BEGIN {bump} END;
         CREATE TRIGGER api_version_update AFTER UPDATE ON calls BEGIN {bump} END;
         CREATE TRIGGER api_version_delete AFTER DELETE ON calls BEGIN {bump} END;
         INSERT INTO api_meta (key, value) VALUES ('{CALLS_VERSION_KEY}', 0)
             ON CONFLICT (key) DO NOTHING;"
    )
}

/// The count of row changes to `calls` that the connection's current snapshot has
/// seen committed; `None` when the counter is missing (a database the API has not
/// prepared). Every transaction that changes `calls` raises it, so read transactions
/// on several connections that get the same value read the same calls. Called in a
/// read transaction, this is also what starts its snapshot.
pub(crate) fn calls_version(conn: &rusqlite::Connection) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT value FROM api_meta WHERE key = ?1")?
        .query_row([CALLS_VERSION_KEY], |r| r.get(0))
        .optional()
}

/// The triggers, recreated at every start so they always match this build.
fn triggers() -> String {
    let changed: Vec<String> = WATCHED
        .iter()
        .map(|c| format!("OLD.{c} IS NOT NEW.{c}"))
        .collect();
    let same_key = format!(
        "{} = {} AND IFNULL(OLD.agent_id, '') = IFNULL(NEW.agent_id, '') AND OLD.mno = NEW.mno \
         AND IFNULL(OLD.country, '') = IFNULL(NEW.country, '')",
        day_expr("OLD"),
        day_expr("NEW")
    );
    format!(
        "DROP TRIGGER IF EXISTS api_daily_insert;
         DROP TRIGGER IF EXISTS api_daily_update;
         DROP TRIGGER IF EXISTS api_daily_move;
         DROP TRIGGER IF EXISTS api_daily_delete;
         CREATE TRIGGER api_daily_insert AFTER INSERT ON calls BEGIN {ins} END;
         CREATE TRIGGER api_daily_update AFTER UPDATE ON calls
             WHEN ({same_key}) AND ({changed}) BEGIN {shift} END;
         CREATE TRIGGER api_daily_move AFTER UPDATE ON calls WHEN NOT ({same_key})
             BEGIN {del_old} {prune_old} {ins} END;
         CREATE TRIGGER api_daily_delete AFTER DELETE ON calls BEGIN {del_old} {prune_old} END;",
        ins = apply("NEW", ""),
        shift = shift(),
        del_old = apply("OLD", "-"),
        prune_old = prune("OLD"),
        changed = changed.join(" OR "),
    )
}

/// Rebuilds the rollup from `calls` in one statement.
fn rebuild() -> String {
    let sums = [
        "COUNT(*)",
        "COUNT(CASE WHEN status = 'completed' THEN 1 END)",
        "TOTAL(CASE WHEN status = 'completed' THEN duration_seconds END)",
        "COUNT(CASE WHEN resolution = 'resolved' THEN 1 END)",
        "COUNT(resolution)",
        "COUNT(quality_mos)",
        "TOTAL(quality_mos)",
        &format!("COUNT(CASE WHEN quality_mos < {POOR_MOS} THEN 1 END)"),
        "COUNT(jitter_ms)",
        "TOTAL(jitter_ms)",
        "COUNT(loss_ratio)",
        "TOTAL(loss_ratio)",
        "COUNT(rtt_ms)",
        "TOTAL(rtt_ms)",
    ]
    .join(", ");
    format!(
        "DELETE FROM api_daily;
         INSERT INTO api_daily (day, agent_id, mno, country, {cols})
             SELECT {day} AS d, IFNULL(agent_id, '') AS a, mno, IFNULL(country, '') AS c,
                 {sums}
             FROM calls GROUP BY d, a, mno, c;",
        cols = VALUE_COLUMNS.join(", "),
        day = day_expr("calls"),
    )
}

/// Creates (or refreshes) the derived objects — query indexes, the rollup and its
/// triggers, the version counter — in one IMMEDIATE transaction so no write slips
/// between a rebuild and its triggers. Idempotent; a changed [`ROLLUP_VERSION`]
/// rebuilds the rollup from `calls`. Returns whether it was rebuilt.
pub(crate) fn prepare(conn: &Connection) -> Result<bool, StoreError> {
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    tx.execute_batch(INDEXES)?;
    tx.execute_batch(META)?;
    let version: Option<i64> = tx
        .query_row(
            "SELECT value FROM api_meta WHERE key = 'rollup_version'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let rebuilt = version != Some(ROLLUP_VERSION);
    if rebuilt {
        // Another version's rollup may have other key columns: start afresh.
        tx.execute_batch("DROP TABLE IF EXISTS api_daily;")?;
    }
    tx.execute_batch(TABLES)?;
    tx.execute_batch(&triggers())?;
    tx.execute_batch(&version_triggers())?;
    if rebuilt {
        tx.execute_batch(&rebuild())?;
        tx.execute(
            "INSERT INTO api_meta (key, value) VALUES ('rollup_version', ?1) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [ROLLUP_VERSION],
        )?;
    }
    tx.commit()?;
    Ok(rebuilt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use vqprobe_engine::record::{
        CallRecord, CallStatus, CallSummary, Direction, QualityRecord, Resolution,
    };

    fn call(id: &str, created: &str, agent: Option<&str>, mos: Option<f64>) -> CallRecord {
        CallRecord {
            call: CallSummary {
                call_id: id.into(),
                sip_call_id: None,
                agent_id: agent.map(Into::into),
                from_number: None,
                to_number: None,
                from_raw: None,
                to_raw: None,
                from_anonymous: false,
                diverted_from: None,
                mno: "M".into(),
                mno_source: None,
                country: None,
                direction: Direction::Inbound,
                status: CallStatus::Completed,
                ended_reason: None,
                created_at: created.into(),
                ended_at: None,
                duration_seconds: 10.0,
                codec: None,
                one_way_audio: false,
                fax: false,
                xr_disagreement: false,
                quality_mos: mos,
                quality: QualityRecord {
                    mos,
                    jitter_ms: Some(2.0),
                    ..QualityRecord::default()
                },
                resolution: None,
                classified_at: None,
                recording_url: None,
                probe_id: None,
            },
            streams: Vec::new(),
        }
    }

    type Row = (i64, String, String, i64, i64, f64, i64, i64, i64, f64, i64);

    fn rollup(store: &Store) -> Vec<Row> {
        let mut stmt = store
            .conn()
            .prepare(
                "SELECT day, agent_id, mno, calls, completed, sum_duration, resolved, \
                 classified, n_mos, sum_mos, n_poor FROM api_daily ORDER BY 1, 2, 3",
            )
            .unwrap();
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                ))
            })
            .unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    /// The triggers must leave exactly what a rebuild from scratch computes.
    #[test]
    fn triggers_match_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut store = Store::open(&path).unwrap();
        // Rows the rollup does not hold (an older build's) are picked up by a rebuild.
        store
            .upsert_calls(&[call("a", "1970-01-01T10:00:00Z", Some("x"), Some(4.0))])
            .unwrap();
        store
            .conn()
            .execute_batch(
                "DELETE FROM api_daily; DELETE FROM api_meta WHERE key = 'rollup_version'",
            )
            .unwrap();
        assert!(prepare(store.conn()).unwrap());
        assert!(!prepare(store.conn()).unwrap());
        store
            .upsert_calls(&[
                call("b", "1970-01-01T11:00:00Z", Some("x"), Some(3.0)),
                call("c", "1970-01-02T00:00:00Z", None, None),
                call("d", "1969-12-31T23:59:59Z", None, Some(2.0)),
            ])
            .unwrap();
        // A later record of the same call on the same day, agent and MNO updates
        // the rollup row in place...
        let mut a2 = call("a", "1970-01-01T10:00:00Z", Some("x"), Some(4.0));
        a2.call.duration_seconds = 10.0;
        store.upsert_calls(&[a2.clone()]).unwrap();
        a2.call.quality_mos = Some(4.5);
        a2.call.status = CallStatus::Failed;
        store.upsert_calls(&[a2.clone()]).unwrap();
        a2.call.quality_mos = Some(4.0);
        a2.call.status = CallStatus::Completed;
        store.upsert_calls(&[a2]).unwrap();
        // ...one whose day or agent changed moves the contribution.
        let mut b2 = call("b", "1970-01-02T11:00:00Z", Some("y"), Some(4.25));
        b2.call.status = CallStatus::Failed;
        store.upsert_calls(&[b2]).unwrap();
        store
            .set_resolution("a", Resolution::Resolved, "1970-01-03T00:00:00Z")
            .unwrap();
        store
            .set_resolution("c", Resolution::Unresolved, "1970-01-03T00:00:00Z")
            .unwrap();
        store.delete_older_than(0).unwrap();
        let by_trigger = rollup(&store);
        store.conn().execute("DELETE FROM api_meta", []).unwrap();
        assert!(prepare(store.conn()).unwrap());
        assert_eq!(by_trigger, rollup(&store));
        assert_eq!(
            by_trigger,
            vec![
                (0, "x".into(), "M".into(), 1, 1, 10.0, 1, 1, 1, 4.0, 0),
                (1, "".into(), "M".into(), 1, 1, 10.0, 0, 1, 0, 0.0, 0),
                (1, "y".into(), "M".into(), 1, 0, 0.0, 0, 0, 1, 4.25, 0),
            ]
        );
    }

    /// Every committed change to `calls` raises `calls_version`, also one the rollup
    /// ignores; re-preparing keeps the count.
    #[test]
    fn calls_version_counts_every_change() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("v.db")).unwrap();
        let version = |s: &Store| calls_version(s.conn()).unwrap().unwrap();
        let mut seen = vec![version(&store)];
        store
            .upsert_calls(&[call("a", "1970-01-01T10:00:00Z", Some("x"), Some(4.0))])
            .unwrap();
        seen.push(version(&store));
        let mut a = call("a", "1970-01-01T10:00:00Z", Some("x"), Some(4.0));
        a.call.codec = Some("PCMA".into());
        store.upsert_calls(&[a]).unwrap();
        seen.push(version(&store));
        store
            .set_resolution("a", Resolution::Resolved, "1970-01-02T00:00:00Z")
            .unwrap();
        seen.push(version(&store));
        assert_eq!(
            store
                .delete_older_than(1_000 * crate::time::MS_PER_DAY)
                .unwrap(),
            1
        );
        seen.push(version(&store));
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
        assert!(!prepare(store.conn()).unwrap());
        assert_eq!(version(&store), seen[seen.len() - 1]);
    }

    #[test]
    fn migrated_table_has_exactly_the_listed_columns() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("c.db")).unwrap();
        let mut stmt = store.conn().prepare("PRAGMA table_info(calls)").unwrap();
        let mut got: Vec<(String, String, bool)> = stmt
            .query_map([], |r| Ok((r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? != 0)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut want: Vec<(String, String, bool)> = crate::columns::CALL_COLUMNS
            .iter()
            .map(|c| (c.name.to_string(), c.kind.sql().to_string(), c.not_null))
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }

    /// A version 2 file (before the numbers columns, rollup keyed without country)
    /// opens as version 3 with its rows intact, and its rollup is rebuilt by country.
    #[test]
    fn version_2_file_migrates_and_rolls_up_by_country() {
        use crate::query::analytics::{breakdown_query, Dim};
        use crate::time::DayWindow;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute_batch(MIGRATIONS[1]).unwrap();
            conn.pragma_update(None, "user_version", 2).unwrap();
            // Version 1 of the rollup, as a build before schema 3 left it.
            conn.execute_batch(
                "CREATE TABLE api_meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL)
                     WITHOUT ROWID;
                 INSERT INTO api_meta VALUES ('rollup_version', 1), ('calls_version', 0);
                 CREATE TABLE api_daily (day INTEGER NOT NULL, agent_id TEXT NOT NULL,
                     mno TEXT NOT NULL, calls INTEGER NOT NULL,
                     PRIMARY KEY (day, agent_id, mno)) WITHOUT ROWID;",
            )
            .unwrap();
            for (id, country, mos) in [("a", "'IN'", 4.0), ("b", "'IN'", 2.0), ("c", "NULL", 3.5)] {
                conn.execute_batch(&format!(
                    "INSERT INTO calls (call_id, mno, country, direction, status, created_at_ms,
                         created_at, duration_seconds, one_way_audio, quality_mos)
                     VALUES ('{id}', 'Airtel', {country}, 'inbound', 'completed', 3600000,
                         '1970-01-01T01:00:00.000Z', 10.0, 0, {mos});"
                ))
                .unwrap();
            }
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(user_version(store.conn()).unwrap(), SCHEMA_VERSION);
        let (raw, anonymous): (Option<String>, i64) = store
            .conn()
            .query_row(
                "SELECT from_raw, from_anonymous FROM calls WHERE call_id = 'a'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((raw, anonymous), (None, 0));
        let rows =
            breakdown_query(store.conn(), DayWindow::ending(3_600_000, 7), Dim::Country).unwrap();
        type Row<'a> = (Option<&'a str>, u64, Option<f64>, Option<f64>);
        let got: Vec<Row<'_>> = rows
            .iter()
            .map(|(c, f)| (c.as_deref(), f.calls, f.average_mos, f.p10_mos))
            .collect();
        assert_eq!(
            got,
            [
                (Some("IN"), 2, Some(3.0), Some(2.0)),
                (None, 1, Some(3.5), Some(3.5))
            ]
        );
    }
}
