//! Store tests: schema, upserts, listing, retention, readers and the writer thread.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use vqprobe_engine::record::{
    CallRecord, CallStatus, CallSummary, Direction, EndedReason, IntervalRecord, QualityRecord,
    RemoteRecord, Resolution, StreamRecord, XrMetrics, XrRecord, XrSource, XrSummaryRecord,
};
use vqprobe_wire::{Pt, Ssrc};

use super::*;
use crate::query::calls::CallQuery;
use crate::schema::{user_version, SCHEMA_VERSION};
use crate::time::parse_rfc3339_ms;

fn stream(direction: Direction, src: &str, dst: &str, ssrc: &str) -> StreamRecord {
    StreamRecord {
        direction,
        src: src.to_string(),
        dst: dst.to_string(),
        ssrc: Ssrc(u32::from_str_radix(ssrc.trim_start_matches("0x"), 16).expect("hex ssrc")),
        payload_type: Some(Pt(0)),
        codec: Some("PCMU".to_string()),
        clock_rate: Some(8000),
        packets: 1502,
        other_payload_packets: 0,
        expected: 1500,
        lost: 3,
        duplicates: 5,
        out_of_order: 1,
        jitter_ms: Some(1.234567),
        max_jitter_ms: Some(4.5),
        mean_jitter_ms: None,
        max_delta_ms: 41.000001,
        loss_runs: [1, 1, 0, 0, 0, 0, 0, 0, 0, 0],
        mos: Some(4.312345),
        mos_lq: Some(4.401),
        mos_jb50: Some(4.3),
        mos_jb200: None,
        r_factor: Some(91.123456),
        rtt_ms: Some(37.5),
        intervals: vec![
            IntervalRecord {
                start: "2026-03-01T10:00:00.000Z".to_string(),
                packets: 250,
                lost: 0,
                jitter_ms: 0.875,
                mos: Some(4.41),
            },
            IntervalRecord {
                start: "2026-03-01T10:00:05.000Z".to_string(),
                packets: 12,
                lost: 3,
                jitter_ms: 2.0,
                mos: None,
            },
        ],
        remote: Some(RemoteRecord {
            fraction_lost: 0.0117,
            cumulative_lost: -2,
            jitter_ms: Some(3.125),
        }),
        xr: Some(XrRecord {
            source: XrSource::RtcpXr,
            reports: 2,
            latest: XrMetrics {
                loss_rate: Some(0.05),
                mos_cq: Some(3.6),
                plc: Some("standard".into()),
                jb_adaptive: Some(true),
                ..XrMetrics::default()
            },
            worst: XrMetrics {
                loss_rate: Some(0.1),
                mos_cq: Some(3.1),
                ..XrMetrics::default()
            },
            summary: Some(XrSummaryRecord {
                begin_seq: 1,
                end_seq: 100,
                lost_packets: Some(3),
                mean_jitter_ms: Some(2.5),
                ttl_kind: Some("ipv4_ttl".into()),
                min_ttl: Some(60),
                ..XrSummaryRecord::default()
            }),
        }),
    }
}

/// A completed inbound call created at 2026-03-01T10:00:00Z, every field filled.
pub(crate) fn sample_record(id: &str) -> CallRecord {
    CallRecord {
        call: CallSummary {
            call_id: id.to_string(),
            sip_call_id: Some(format!("{id}@sbc.example")),
            agent_id: Some("agent-7".to_string()),
            from_number: Some("+447700900123".to_string()),
            to_number: Some("+442071234567".to_string()),
            from_raw: None,
            to_raw: None,
            from_anonymous: false,
            diverted_from: None,
            mno: "Vodafone UK".to_string(),
            mno_source: None,
            country: Some("GB".to_string()),
            direction: Direction::Inbound,
            status: CallStatus::Completed,
            ended_reason: Some(EndedReason::Bye),
            created_at: "2026-03-01T10:00:00.000Z".to_string(),
            ended_at: Some("2026-03-01T10:01:30.500Z".to_string()),
            duration_seconds: 88.25,
            codec: Some("PCMU".to_string()),
            one_way_audio: false,
            fax: false,
            xr_disagreement: false,
            quality_mos: Some(4.312345),
            quality: QualityRecord {
                mos: Some(4.312345),
                mos_lq: Some(4.401),
                r_factor: Some(91.123456),
                min_interval_mos: Some(3.05),
                jitter_ms: Some(1.234567),
                loss_ratio: Some(0.002),
                rtt_ms: Some(75.0),
                one_way_delay_ms: Some(37.5),
            },
            resolution: None,
            classified_at: None,
            recording_url: None,
            probe_id: None,
        },
        streams: vec![
            stream(
                Direction::Inbound,
                "198.51.100.7:40000",
                "203.0.113.5:10000",
                "0x6a518186",
            ),
            stream(
                Direction::Outbound,
                "[2001:db8::5]:10000",
                "[2001:db8::7]:40000",
                "0x00000001",
            ),
        ],
    }
}

/// `sample_record` with the fields `list_calls` filters on replaced.
fn call(id: &str, agent: &str, mno: &str, created_at: &str, mos: Option<f64>) -> CallRecord {
    let mut c = sample_record(id);
    c.call.agent_id = Some(agent.to_string());
    c.call.mno = mno.to_string();
    c.call.created_at = created_at.to_string();
    c.call.quality_mos = mos;
    c
}

fn temp_store() -> (tempfile::TempDir, PathBuf, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested/deeper/vqprobe.db");
    let store = Store::open(&path).expect("open");
    (dir, path, store)
}

fn ids(calls: &[CallSummary]) -> Vec<&str> {
    calls.iter().map(|c| c.call_id.as_str()).collect()
}

fn ms(s: &str) -> i64 {
    parse_rfc3339_ms(s).expect("timestamp")
}

#[test]
fn open_creates_directories_wal_and_schema() {
    let (_dir, path, store) = temp_store();
    assert!(path.exists());
    let mode: String = store
        .conn()
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .expect("journal_mode");
    assert_eq!(mode, "wal");
    let sync: i64 = store
        .conn()
        .pragma_query_value(None, "synchronous", |r| r.get(0))
        .expect("synchronous");
    assert_eq!(sync, 1, "NORMAL");
    let fk: i64 = store
        .conn()
        .pragma_query_value(None, "foreign_keys", |r| r.get(0))
        .expect("foreign_keys");
    assert_eq!(fk, 1);
    assert_eq!(user_version(store.conn()).expect("version"), SCHEMA_VERSION);
    drop(store);
    // Re-opening an up-to-date file migrates nothing and keeps working.
    let store = Store::open(&path).expect("reopen");
    assert_eq!(store.count_calls().expect("count"), 0);
    assert_eq!(store.integrity_check().expect("check"), "ok");
}

#[test]
fn newer_schema_is_refused() {
    let (_dir, path, store) = temp_store();
    store
        .conn()
        .pragma_update(None, "user_version", 99)
        .expect("set version");
    drop(store);
    assert!(matches!(
        Store::open(&path),
        Err(StoreError::SchemaTooNew { found: 99, .. })
    ));
    assert!(matches!(
        Store::open_readonly(&path),
        Err(StoreError::SchemaMismatch { found: 99, .. })
    ));
}

#[test]
fn upsert_then_get_round_trips_exactly() {
    let (_dir, _path, mut store) = temp_store();
    let mut rec = sample_record("call-1");
    rec.call.recording_url = Some("https://rec.example/call-1.wav".to_string());
    rec.call.ended_reason = Some(EndedReason::RtpTimeout);
    rec.call.status = CallStatus::InProgress;
    rec.call.quality.rtt_ms = None;
    // Values that need all 17 significant digits, as raw E-model output would.
    rec.call.duration_seconds = 0.1 + 0.2;
    rec.streams[0].jitter_ms = Some(1.0 / 3.0);
    // Needs serde_json's `float_roundtrip` feature: the default parser is off by one
    // ulp on about 9 % of arbitrary doubles, this one among them.
    rec.streams[1].intervals[0].jitter_ms = 39.430133835633676;
    assert_eq!(store.upsert_calls(&[rec.clone()]).expect("upsert"), 1);
    let got = store.get_call("call-1").expect("get").expect("found");
    assert_eq!(
        serde_json::to_value(&got).expect("json"),
        serde_json::to_value(&rec).expect("json")
    );
    assert_eq!(got, rec);
    assert_eq!(store.get_call("nope").expect("get"), None);
    assert_eq!(store.count_calls().expect("count"), 1);
}

#[test]
fn later_record_keeps_resolution_and_recording() {
    let (_dir, _path, mut store) = temp_store();
    let mut rec = sample_record("call-1");
    rec.call.status = CallStatus::InProgress;
    rec.call.recording_url = Some("https://rec.example/1".to_string());
    store.upsert_calls(&[rec.clone()]).expect("upsert");
    assert!(store
        .set_resolution("call-1", Resolution::Resolved, "2026-03-01T11:00:00.000Z")
        .expect("set"));
    assert!(!store
        .set_resolution("unknown", Resolution::Resolved, "2026-03-01T11:00:00.000Z")
        .expect("set"));

    let mut fin = sample_record("call-1");
    fin.call.status = CallStatus::Completed;
    fin.call.duration_seconds = 120.0;
    fin.streams.pop();
    store.upsert_calls(&[fin]).expect("upsert again");
    let got = store.get_call("call-1").expect("get").expect("found");
    assert_eq!(got.call.status, CallStatus::Completed);
    assert_eq!(got.call.duration_seconds, 120.0);
    assert_eq!(got.streams.len(), 1);
    assert_eq!(got.call.resolution, Some(Resolution::Resolved));
    assert_eq!(
        got.call.classified_at.as_deref(),
        Some("2026-03-01T11:00:00.000Z")
    );
    assert_eq!(
        got.call.recording_url.as_deref(),
        Some("https://rec.example/1")
    );

    // A record that does carry a resolution wins.
    let mut over = sample_record("call-1");
    over.call.resolution = Some(Resolution::Unresolved);
    over.call.classified_at = Some("2026-03-02T00:00:00.000Z".to_string());
    store.upsert_calls(&[over]).expect("upsert third");
    let got = store.get_call("call-1").expect("get").expect("found");
    assert_eq!(got.call.resolution, Some(Resolution::Unresolved));
    assert_eq!(
        got.call.classified_at.as_deref(),
        Some("2026-03-02T00:00:00.000Z")
    );
}

#[test]
fn bad_timestamp_fails_the_batch_cleanly() {
    let (_dir, _path, mut store) = temp_store();
    let mut bad = sample_record("bad");
    bad.call.created_at = "yesterday".to_string();
    let err = store
        .upsert_calls(&[sample_record("good"), bad])
        .expect_err("must fail");
    assert!(matches!(err, StoreError::BadTimestamp { .. }), "{err}");
    // The transaction rolled back: not even the good record is there.
    assert_eq!(store.count_calls().expect("count"), 0);
}

fn filter_fixture(store: &mut Store) {
    let mut calls = vec![
        call(
            "a1",
            "alice",
            "Vodafone UK",
            "2026-03-01T09:00:00Z",
            Some(4.4),
        ),
        call("a2", "alice", "EE", "2026-03-02T09:00:00Z", Some(2.9)),
        call("a3", "alice", "Vodafone UK", "2026-03-03T09:00:00Z", None),
        call(
            "b1",
            "bob",
            "Vodafone UK",
            "2026-03-02T09:00:00Z",
            Some(3.5),
        ),
        call("b2", "bob", "O2 UK", "2026-03-04T09:00:00+01:00", Some(3.1)),
    ];
    calls[1].call.status = CallStatus::Failed;
    calls[3].call.direction = Direction::Outbound;
    store.upsert_calls(&calls).expect("upsert");
}

fn page(q: CallQuery) -> CallQuery {
    CallQuery {
        page: 1,
        page_size: 50,
        ..q
    }
}

#[test]
fn list_calls_filters() {
    let (_dir, _path, mut store) = temp_store();
    filter_fixture(&mut store);
    let list = |q: CallQuery| -> (Vec<String>, u64) {
        let (calls, total) = store.list_calls(&page(q)).expect("list");

        (ids(&calls).into_iter().map(String::from).collect(), total)
    };
    let s = |v: &str| Some(v.to_string());

    // Newest first; ties (a2/b1 at the same instant) by call_id.
    assert_eq!(
        list(CallQuery::default()),
        (
            vec![
                "b2".into(),
                "a3".into(),
                "a2".into(),
                "b1".into(),
                "a1".into()
            ],
            5
        )
    );
    let (got, total) = list(CallQuery {
        agent_id: s("alice"),
        ..Default::default()
    });
    assert_eq!(
        (got, total),
        (vec!["a3".into(), "a2".into(), "a1".into()], 3)
    );
    let (got, _) = list(CallQuery {
        mno: s("Vodafone UK"),
        agent_id: s("alice"),
        ..Default::default()
    });
    assert_eq!(got, vec!["a3", "a1"]);
    assert_eq!(
        list(CallQuery {
            status: s("failed"),
            ..Default::default()
        })
        .0,
        vec!["a2"]
    );
    assert_eq!(
        list(CallQuery {
            direction: s("outbound"),
            ..Default::default()
        })
        .0,
        vec!["b1"]
    );
    // Half-open date range: from inclusive, to exclusive; offsets are normalised.
    assert_eq!(
        list(CallQuery {
            date_from_ms: Some(ms("2026-03-02T09:00:00Z")),
            date_to_ms: Some(ms("2026-03-04T08:00:00Z")),
            ..Default::default()
        })
        .0,
        vec!["a3", "a2", "b1"]
    );
    // MOS range is inclusive and leaves out calls without a MOS.
    assert_eq!(
        list(CallQuery {
            min_mos: Some(3.1),
            max_mos: Some(4.0),
            ..Default::default()
        })
        .0,
        vec!["b2", "b1"]
    );
    assert_eq!(
        list(CallQuery {
            max_mos: Some(3.1),
            ..Default::default()
        })
        .0,
        vec!["b2", "a2"]
    );
}

#[test]
fn list_calls_paginates_with_total() {
    let (_dir, _path, mut store) = temp_store();
    let calls: Vec<CallRecord> = (0..25)
        .map(|i| {
            let created = format!("2026-03-01T10:{i:02}:00Z");
            call(&format!("c{i:02}"), "alice", "EE", &created, Some(4.0))
        })
        .collect();
    store.upsert_calls(&calls).expect("upsert");
    let q = |page, page_size| CallQuery {
        page,
        page_size,
        ..Default::default()
    };
    let (p1, total) = store.list_calls(&q(1, 10)).expect("p1");
    assert_eq!(total, 25);
    assert_eq!(ids(&p1).first(), Some(&"c24"));
    assert_eq!(p1.len(), 10);
    let (p3, total) = store.list_calls(&q(3, 10)).expect("p3");
    assert_eq!(total, 25);
    assert_eq!(ids(&p3), vec!["c04", "c03", "c02", "c01", "c00"]);
    let (p4, total) = store.list_calls(&q(4, 10)).expect("p4");
    assert!(p4.is_empty());
    assert_eq!(total, 25);
    // Page 0 is page 1; page size 0 only counts.
    assert_eq!(store.list_calls(&q(0, 10)).expect("p0").0, p1);
    let (none, total) = store.list_calls(&q(1, 0)).expect("size 0");
    assert!(none.is_empty());
    assert_eq!(total, 25);
    // Every call appears exactly once across the pages.
    let mut all = Vec::new();
    for p in 1..=3 {
        all.extend(store.list_calls(&q(p, 10)).expect("page").0);
    }
    let mut seen = ids(&all);
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 25);
}

#[test]
fn sql_injection_in_filters_matches_nothing() {
    let (_dir, _path, mut store) = temp_store();
    filter_fixture(&mut store);
    let evil = Some("' OR 1=1 --".to_string());
    for q in [
        CallQuery {
            agent_id: evil.clone(),
            ..Default::default()
        },
        CallQuery {
            mno: evil.clone(),
            ..Default::default()
        },
        CallQuery {
            status: evil.clone(),
            ..Default::default()
        },
        CallQuery {
            direction: Some("inbound' OR '1'='1".to_string()),
            ..Default::default()
        },
    ] {
        let (calls, total) = store.list_calls(&page(q)).expect("list");
        assert!(calls.is_empty());
        assert_eq!(total, 0);
    }
    assert_eq!(store.get_call("' OR 1=1 --").expect("get"), None);
    assert_eq!(store.count_calls().expect("count"), 5, "nothing dropped");
}

#[test]
fn retention_deletes_only_older_rows_and_their_streams() {
    let (_dir, _path, mut store) = temp_store();
    let calls: Vec<CallRecord> = (1..=9)
        .map(|d| {
            let created = format!("2026-03-0{d}T00:00:00Z");
            call(&format!("d{d}"), "alice", "EE", &created, Some(4.0))
        })
        .collect();
    store.upsert_calls(&calls).expect("upsert");
    let cutoff = ms("2026-03-05T00:00:00Z");
    // Small chunks, to exercise the loop the writer runs in 10k steps.
    assert_eq!(store.delete_chunk(cutoff, 3).expect("chunk"), 3);
    assert_eq!(store.delete_older_than(cutoff).expect("rest"), 1);
    assert_eq!(store.delete_older_than(cutoff).expect("again"), 0);
    let (left, total) = store.list_calls(&page(CallQuery::default())).expect("list");
    assert_eq!(total, 5);
    assert_eq!(ids(&left), vec!["d9", "d8", "d7", "d6", "d5"]);
    let streams: i64 = store
        .conn()
        .query_row("SELECT COUNT(*) FROM call_streams", [], |r| r.get(0))
        .expect("streams");
    assert_eq!(streams, 5, "streams deleted with their calls");
}

#[test]
fn readonly_reads_while_writer_writes_and_cannot_write() {
    let (_dir, path, mut store) = temp_store();
    store.upsert_calls(&[sample_record("one")]).expect("upsert");
    let mut reader = Store::open_readonly(&path).expect("readonly");
    assert_eq!(reader.count_calls().expect("count"), 1);
    store.upsert_calls(&[sample_record("two")]).expect("upsert");
    assert_eq!(reader.count_calls().expect("count"), 2);
    assert!(reader
        .set_resolution("one", Resolution::Resolved, "2026-03-01T11:00:00Z")
        .is_err());
    let missing = path.with_file_name("missing.db");
    assert!(Store::open_readonly(&missing).is_err());
    assert!(!missing.exists(), "read-only open must not create a file");
}

#[test]
fn integrity_check_ok() {
    let (_dir, _path, mut store) = temp_store();
    filter_fixture(&mut store);
    assert_eq!(store.integrity_check().expect("check"), "ok");
}

#[test]
fn errors_can_cross_threads() {
    // anyhow's `context` in the daemon needs this.
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<StoreError>();
    assert_send_sync::<WriterStats>();
}

fn fixed_now() -> i64 {
    parse_rfc3339_ms("2026-03-10T00:00:00Z").unwrap_or(0)
}

#[test]
fn writer_flushes_within_interval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db/vqprobe.db");
    let interval = Duration::from_millis(300);
    let (writer, tx) = StoreWriter::spawn(path.clone(), interval, 0, fixed_now).expect("spawn");
    let reader = Store::open_readonly(&path).expect("reader");
    tx.send(WriterMsg::Call(Box::new(sample_record("w1"))))
        .expect("send");
    std::thread::sleep(interval + Duration::from_millis(200));
    let got = reader.get_call("w1").expect("get").expect("flushed");
    assert_eq!(got, sample_record("w1"));
    assert_eq!(writer.stats().written.load(Ordering::Relaxed), 1);
    tx.send(WriterMsg::Shutdown).expect("shutdown");
    writer.join().expect("join");
}

#[test]
fn writer_survives_large_batch_bad_record_and_enforces_retention() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("vqprobe.db");
    {
        let mut store = Store::open(&path).expect("open");
        let old = call("old", "alice", "EE", "2025-01-01T00:00:00Z", Some(4.0));
        let recent = call("recent", "alice", "EE", "2026-03-09T00:00:00Z", Some(4.0));
        store.upsert_calls(&[old, recent]).expect("seed");
    }
    let (writer, tx) =
        StoreWriter::spawn(path.clone(), Duration::from_secs(1), 90, fixed_now).expect("spawn");
    let stats = writer.stats();
    for i in 0..5000 {
        let mut rec = sample_record(&format!("bulk-{i:05}"));
        rec.call.created_at = "2026-03-09T12:00:00.000Z".to_string();
        tx.send(WriterMsg::Call(Box::new(rec))).expect("send");
    }
    let mut bad = sample_record("bad");
    bad.call.created_at = "not a time".to_string();
    tx.send(WriterMsg::Call(Box::new(bad))).expect("send bad");
    // An update of an earlier record in the same stream of messages wins.
    let mut last = sample_record("bulk-00000");
    last.call.created_at = "2026-03-09T12:00:00.000Z".to_string();
    last.call.duration_seconds = 1.5;
    tx.send(WriterMsg::Call(Box::new(last))).expect("send");
    let (ack_tx, ack_rx) = crossbeam_channel::bounded(1);
    tx.send(WriterMsg::Flush(ack_tx)).expect("flush");
    ack_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("flush acknowledged");

    let reader = Store::open_readonly(&path).expect("reader");
    assert_eq!(reader.count_calls().expect("count"), 5001, "5000 + recent");
    assert_eq!(reader.get_call("old").expect("get"), None);
    assert!(reader.get_call("recent").expect("get").is_some());
    assert_eq!(
        reader
            .get_call("bulk-00000")
            .expect("get")
            .map(|c| c.call.duration_seconds),
        Some(1.5)
    );
    assert_eq!(stats.written.load(Ordering::Relaxed), 5001);
    assert_eq!(stats.failed.load(Ordering::Relaxed), 1);
    assert_eq!(stats.deleted.load(Ordering::Relaxed), 1);

    // Dropping the last sender stops the writer as Shutdown would.
    drop(tx);
    writer.join().expect("join");
    assert_eq!(reader.integrity_check().expect("check"), "ok");
}

#[test]
fn database_files_are_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("new").join("vqprobe.db");
    let mut store = Store::open(&path).expect("open");
    store
        .upsert_calls(&[call("perm-1", "a", "m", "2026-01-01T00:00:00Z", Some(4.0))])
        .expect("write");
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0)
    };
    assert_eq!(mode(path.parent().expect("dir")), 0o700);
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", path.display()));
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
}
