use std::path::Path;

use chiso_proto::digest::{DayDigest, KIND_DOSSIER};
use chiso_proto::units::UnitCatalogue;
use chiso_proto::v1::record::Body;
use chiso_proto::v1::{Batch, Channel, DigestBatch, Dossier, DossierStatus, Record, UnitDayDigest};
use chiso_proto::vntime::parse_portal_datetime;
use chrono::NaiveDate;
use rusqlite::Connection;

use super::super::{StoreError, StoreHandle, agent_clocks, completeness, reported_counts};
use super::{MAX_GAP_KEYS, gap_with_keys};

const DAY: u32 = 20261005;

fn open(dir: &Path) -> StoreHandle {
    StoreHandle::open(&dir.join("hub.db"), UnitCatalogue::official()).unwrap()
}

fn dossier(code: &str, unit_code: &str, version: u64, day: u32) -> Dossier {
    Dossier {
        code: code.to_string(),
        version,
        unit_code: unit_code.to_string(),
        procedure_code: "1.001612".to_string(),
        channel: Channel::Online as i32,
        status: DossierStatus::Processing as i32,
        received_at: parse_portal_datetime(&format!("{day}080000")).unwrap(),
        ..Dossier::default()
    }
}

/// Applies dossiers as one batch with sequence numbers from `first_seq`.
async fn apply(store: &StoreHandle, first_seq: u64, dossiers: Vec<Dossier>) {
    let records = dossiers
        .into_iter()
        .zip(first_seq..)
        .map(|(dossier, seq)| Record {
            seq,
            body: Some(Body::Dossier(dossier)),
        })
        .collect();
    let batch = Batch {
        batch_id: first_seq,
        records,
    };
    store.apply_batch("01", batch).await.unwrap();
}

fn entry(unit_code: &str, day: u32, records: &[(&str, u64)], rejected: u64) -> UnitDayDigest {
    let mut digest = DayDigest::default();
    for (key, version) in records {
        digest.add(KIND_DOSSIER, key, *version);
    }
    UnitDayDigest {
        unit_code: unit_code.to_string(),
        day,
        count: digest.count,
        hash: digest.hash,
        rejected,
    }
}

fn digest(digest_id: u64, window: (u32, u32), days: Vec<UnitDayDigest>) -> DigestBatch {
    DigestBatch {
        digest_id,
        first_day: window.0,
        last_day: window.1,
        days,
    }
}

fn gap_rows(store: &StoreHandle) -> Vec<(String, u32, i64, i64, Option<i64>)> {
    let conn = store.reader().unwrap();
    let mut statement = conn
        .prepare(
            "SELECT unit_code, day, agent_count, hub_count, closed_at_ms FROM gaps ORDER BY id",
        )
        .unwrap();
    statement
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn date(day: u32) -> NaiveDate {
    chiso_proto::digest::day_from_number(day).unwrap()
}

#[tokio::test]
async fn matching_digest_finds_no_gap() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    apply(
        &store,
        1,
        vec![dossier("A", "00004", 1, DAY), dossier("B", "00004", 1, DAY)],
    )
    .await;
    apply(
        &store,
        3,
        vec![dossier("B", "00004", 2, DAY), dossier("C", "00008", 1, DAY)],
    )
    .await;

    let days = vec![
        entry("00004", DAY, &[("A", 1), ("B", 2)], 0),
        entry("00008", DAY, &[("C", 1)], 1),
    ];
    let report = store
        .reconcile("01", digest(7, (DAY, DAY), days))
        .await
        .unwrap();
    assert_eq!(report.digest_id, 7);
    assert_eq!(report.matched, 2);
    assert!(report.gaps.is_empty());
    assert!(report.open_days.is_empty());
    assert!(gap_rows(&store).is_empty());

    let conn = store.reader().unwrap();
    let catalogue = UnitCatalogue::official();
    let province = completeness(&conn, catalogue, Some("01"), date(DAY), date(DAY)).unwrap();
    assert_eq!(province.hub_count, 3);
    assert_eq!(
        province.agent_count, 4,
        "3 expected at the hub and 1 it rejected"
    );
    assert_eq!(province.rejected_count, 1);
    assert_eq!(province.open_gaps, 0);
    assert!(province.reported_at_unix_ms > 0);
    let commune = completeness(&conn, catalogue, Some("00004"), date(DAY), date(DAY)).unwrap();
    assert_eq!(commune.hub_count, 2);
    assert_eq!(commune.agent_count, 2);
    let counts = reported_counts(&conn, &["00004", "00008", "01"], date(DAY), date(DAY)).unwrap();
    assert_eq!(counts["00004"], 2);
    assert_eq!(counts["00008"], 2);
    assert_eq!(
        counts["01"], 0,
        "a province's own count leaves its communes out"
    );
}

#[tokio::test]
async fn missing_rows_open_then_close_gap() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    apply(
        &store,
        1,
        vec![
            dossier("A", "00004", 1, DAY),
            dossier("B", "00004", 1, DAY),
            dossier("C", "00004", 1, DAY),
        ],
    )
    .await;
    // Rows lost behind the store's back, as after restoring an old copy.
    let raw = Connection::open(dir.path().join("hub.db")).unwrap();
    raw.execute("DELETE FROM dossiers WHERE code = 'B'", [])
        .unwrap();

    let days = vec![entry("00004", DAY, &[("A", 1), ("B", 1), ("C", 1)], 0)];
    let report = store
        .reconcile("01", digest(1, (DAY, DAY), days.clone()))
        .await
        .unwrap();
    assert_eq!(report.matched, 0);
    assert_eq!(report.gaps.len(), 1);
    let gap = &report.gaps[0];
    assert_eq!((gap.unit_code.as_str(), gap.day), ("00004", DAY));
    assert_eq!(gap.agent_count, 3);
    assert_eq!(gap.hub_count, 2);
    let hub_keys: Vec<(&str, u64)> = gap
        .hub_keys
        .iter()
        .map(|k| (k.key.as_str(), k.version))
        .collect();
    assert_eq!(hub_keys, vec![("A", 1), ("C", 1)]);
    assert!(!gap.hub_keys_omitted);
    assert_eq!(
        gap_rows(&store),
        vec![("00004".to_string(), DAY, 3, 2, None)]
    );

    // The same digest again updates the open gap instead of opening a second one.
    store
        .reconcile("01", digest(2, (DAY, DAY), days.clone()))
        .await
        .unwrap();
    assert_eq!(gap_rows(&store).len(), 1);

    // The agent resends B under a new sequence number; the next digest closes the gap.
    apply(&store, 4, vec![dossier("B", "00004", 1, DAY)]).await;
    let report = store
        .reconcile("01", digest(3, (DAY, DAY), days))
        .await
        .unwrap();
    assert_eq!(report.matched, 1);
    assert!(report.gaps.is_empty());
    let rows = gap_rows(&store);
    assert_eq!(rows.len(), 1);
    assert!(rows[0].4.is_some(), "closed_at_ms is set");

    let conn = store.reader().unwrap();
    let last_digest = agent_clocks(&conn).unwrap()[0].last_digest_ms;
    assert!(last_digest.is_some());
}

#[tokio::test]
async fn version_mismatch_is_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    apply(&store, 1, vec![dossier("A", "00004", 1, DAY)]).await;

    let days = vec![entry("00004", DAY, &[("A", 2)], 0)];
    let report = store
        .reconcile("01", digest(1, (DAY, DAY), days))
        .await
        .unwrap();
    assert_eq!(report.gaps.len(), 1);
    assert_eq!(report.gaps[0].agent_count, 1);
    assert_eq!(report.gaps[0].hub_count, 1);
    assert_eq!(report.gaps[0].hub_keys[0].version, 1);
}

#[tokio::test]
async fn hub_only_day_in_window_is_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    apply(&store, 1, vec![dossier("A", "00004", 1, DAY)]).await;

    // The window covers DAY but the agent lists nothing for it.
    let report = store
        .reconcile("01", digest(1, (DAY - 1, DAY + 1), vec![]))
        .await
        .unwrap();
    assert_eq!(report.gaps.len(), 1);
    assert_eq!(report.gaps[0].agent_count, 0);
    assert_eq!(report.gaps[0].hub_count, 1);
}

#[tokio::test]
async fn open_gap_outside_window_is_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let old_day = 20260105;
    let days = vec![entry("00004", old_day, &[("OLD", 1)], 0)];
    let report = store
        .reconcile("01", digest(1, (0, 0), days))
        .await
        .unwrap();
    assert_eq!(report.gaps.len(), 1);

    // A later digest neither covers nor lists the old day, so the hub requests it.
    let report = store
        .reconcile("01", digest(2, (DAY, DAY), vec![]))
        .await
        .unwrap();
    assert!(report.gaps.is_empty());
    assert_eq!(report.open_days.len(), 1);
    assert_eq!(report.open_days[0].unit_code, "00004");
    assert_eq!(report.open_days[0].day, old_day);

    // An empty day in the window closes its open gap.
    let report = store
        .reconcile("01", digest(3, (old_day, old_day), vec![]))
        .await
        .unwrap();
    assert_eq!(report.matched, 1);
    assert!(gap_rows(&store)[0].4.is_some());
}

#[tokio::test]
async fn window_replaces_reported_counts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let days = vec![entry("00004", DAY, &[("A", 1), ("B", 1)], 0)];
    store
        .reconcile("01", digest(1, (DAY, DAY), days))
        .await
        .unwrap();
    store
        .reconcile("01", digest(2, (DAY, DAY), vec![]))
        .await
        .unwrap();

    let conn = store.reader().unwrap();
    let counts = reported_counts(&conn, &["00004"], date(DAY), date(DAY)).unwrap();
    assert_eq!(counts["00004"], 0, "the window said the day is now empty");
}

#[tokio::test]
async fn invalid_digest_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let twice = vec![
        entry("00004", DAY, &[("A", 1)], 0),
        entry("00004", DAY, &[("A", 1)], 0),
    ];
    let cases = [
        digest(1, (DAY, DAY), twice),
        digest(2, (20261301, DAY), vec![]),
        digest(3, (20240101, DAY), vec![]),
        digest(4, (DAY, DAY - 1), vec![]),
        digest(5, (0, 0), vec![entry("00004", 20260230, &[], 0)]),
    ];
    for case in cases {
        let id = case.digest_id;
        let error = store.reconcile("01", case).await.unwrap_err();
        assert!(
            matches!(&error, StoreError::InvalidDigest { digest_id, .. } if *digest_id == id),
            "{error:?}"
        );
    }
    assert!(gap_rows(&store).is_empty());
    let conn = store.reader().unwrap();
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM reported_counts", [], |row| row.get(0))
        .unwrap();
    assert_eq!(rows, 0);
}

#[tokio::test]
async fn foreign_units_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // 25747 is a commune of province 79, not of 01.
    let days = vec![entry("25747", DAY, &[("X", 1)], 0)];
    let report = store
        .reconcile("01", digest(1, (DAY, DAY), days))
        .await
        .unwrap();
    assert!(report.gaps.is_empty());
    assert_eq!(report.matched, 0);
}

#[tokio::test]
async fn key_budget_leaves_keys_out() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    apply(
        &store,
        1,
        vec![dossier("A", "00004", 1, DAY), dossier("B", "00004", 1, DAY)],
    )
    .await;
    let conn = store.reader().unwrap();
    let unit_day = ("00004".to_string(), DAY);

    let mut budget = 1;
    let gap = gap_with_keys(&conn, "01", &unit_day, 3, 2, &mut budget).unwrap();
    assert!(gap.hub_keys_omitted);
    assert!(gap.hub_keys.is_empty());
    assert_eq!(budget, 1);

    let mut budget = MAX_GAP_KEYS;
    let gap = gap_with_keys(&conn, "01", &unit_day, 3, 2, &mut budget).unwrap();
    assert_eq!(gap.hub_keys.len(), 2);
    assert_eq!(budget, MAX_GAP_KEYS - 2);
}

#[test]
fn version_1_database_migrates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.db");
    let raw = Connection::open(&path).unwrap();
    raw.execute_batch(super::super::schema::CREATE_SCHEMA)
        .unwrap();
    raw.pragma_update(None, "user_version", 1).unwrap();
    raw.execute(
        "INSERT INTO dossiers (source, code, version, unit_code, province_code, procedure_code,
             field_code, channel, status, received_at, received_day, digitized,
             electronic_result, reused_data, paid_online, fee_bearing, applicant_type,
             stored_at_ms)
         VALUES ('01', 'A', 1, '00004', '01', 'P', '', 2, 4, 0, 20261005, 0, 0, 0, 0, 0, 0, 1234)",
        [],
    )
    .unwrap();
    drop(raw);

    let store = StoreHandle::open(&path, UnitCatalogue::official()).unwrap();
    let conn = store.reader().unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, crate::store::schema::SCHEMA_VERSION);
    let received: i64 = conn
        .query_row(
            "SELECT received_by_hub_ms FROM dossiers WHERE code = 'A'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(received, 1234);
    let gaps: i64 = conn
        .query_row("SELECT COUNT(*) FROM gaps", [], |row| row.get(0))
        .unwrap();
    assert_eq!(gaps, 0);
}

#[tokio::test]
async fn first_arrival_time_survives_update() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    apply(&store, 1, vec![dossier("A", "00004", 1, DAY)]).await;
    let conn = store.reader().unwrap();
    let read = |conn: &Connection| -> (i64, i64) {
        conn.query_row(
            "SELECT received_by_hub_ms, stored_at_ms FROM dossiers WHERE code = 'A'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap()
    };
    let (first_arrival, _) = read(&conn);
    std::thread::sleep(std::time::Duration::from_millis(5));
    apply(&store, 2, vec![dossier("A", "00004", 2, DAY)]).await;
    let (arrival, stored) = read(&conn);
    assert_eq!(arrival, first_arrival);
    assert!(
        stored > first_arrival,
        "stored_at_ms follows the newest version"
    );
}

#[tokio::test]
async fn hello_clock_offset_is_readable() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.hello("01", "test", -1500, 0).await.unwrap();
    let conn = store.reader().unwrap();
    let agents = agent_clocks(&conn).unwrap();
    assert_eq!(agents.len(), 1);
    assert_eq!(agents[0].locality, "01");
    assert_eq!(agents[0].clock_offset_ms, Some(-1500));
    assert_eq!(agents[0].agent_version.as_deref(), Some("test"));
    assert!(agents[0].last_hello_ms.is_some());
    assert_eq!(agents[0].last_digest_ms, None);
}
