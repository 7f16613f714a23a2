use std::path::Path;

use chiso_proto::units::UnitCatalogue;
use chiso_proto::v1::record::Body;
use chiso_proto::v1::{Batch, Channel, Dossier, DossierStatus, Record, RejectCode};
use chiso_proto::vntime::parse_portal_datetime;
use tokio::task::JoinSet;

use super::{StoreError, StoreHandle};

fn open(dir: &Path) -> StoreHandle {
    StoreHandle::open(&dir.join("hub.db"), UnitCatalogue::official()).unwrap()
}

fn dossier(code: &str, unit_code: &str, version: u64) -> Dossier {
    Dossier {
        code: code.to_string(),
        version,
        unit_code: unit_code.to_string(),
        procedure_code: "1.001612".to_string(),
        channel: Channel::Online as i32,
        status: DossierStatus::Processing as i32,
        received_at: parse_portal_datetime("20261005080000").unwrap(),
        due_at: Some(parse_portal_datetime("20261012170000").unwrap()),
        ..Dossier::default()
    }
}

fn record(seq: u64, dossier: Dossier) -> Record {
    Record {
        seq,
        body: Some(Body::Dossier(dossier)),
    }
}

fn batch(batch_id: u64, records: Vec<Record>) -> Batch {
    Batch { batch_id, records }
}

fn count(store: &StoreHandle, sql: &str) -> i64 {
    store
        .reader()
        .unwrap()
        .query_row(sql, [], |row| row.get(0))
        .unwrap()
}

#[tokio::test]
async fn replayed_batch_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let records = vec![
        record(1, dossier("A", "00004", 1)),
        record(2, dossier("B", "00008", 1)),
        record(3, dossier("C", "01", 1)),
    ];

    let first = store.apply_batch("01", batch(7, records)).await.unwrap();
    assert_eq!(first.batch_id, 7);
    assert_eq!(first.stored, 3);
    assert_eq!(first.unchanged, 0);
    assert_eq!(first.committed_seq, 3);

    // The replay carries a newer version at an old sequence number: it must still be ignored.
    let mut newer = dossier("A", "00004", 2);
    newer.status = DossierStatus::Stopped as i32;
    let replay = vec![
        record(1, newer),
        record(2, dossier("B", "00008", 1)),
        record(3, dossier("C", "01", 1)),
    ];
    let second = store.apply_batch("01", batch(8, replay)).await.unwrap();
    assert_eq!(second.stored, 0);
    assert_eq!(second.unchanged, 3);
    assert_eq!(second.committed_seq, 3);
    assert!(second.rejections.is_empty());

    assert_eq!(count(&store, "SELECT count(*) FROM dossiers"), 3);
    assert_eq!(
        count(&store, "SELECT version FROM dossiers WHERE code = 'A'"),
        1
    );
    assert_eq!(
        count(&store, "SELECT status FROM dossiers WHERE code = 'A'"),
        4
    );
}

#[tokio::test]
async fn same_version_twice_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let records = vec![
        record(1, dossier("A", "00004", 1)),
        record(2, dossier("A", "00004", 1)),
    ];

    let ack = store.apply_batch("01", batch(1, records)).await.unwrap();
    assert_eq!(ack.stored, 1);
    assert_eq!(ack.unchanged, 1);
    assert_eq!(ack.committed_seq, 2);
    assert_eq!(count(&store, "SELECT count(*) FROM dossiers"), 1);
}

#[tokio::test]
async fn newer_version_replaces_older_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut finished = dossier("A", "00004", 3);
    finished.status = DossierStatus::Returned as i32;
    finished.finished_at = Some(parse_portal_datetime("20261009100000").unwrap());
    let mut stale = dossier("A", "00004", 1);
    stale.status = DossierStatus::Stopped as i32;

    let first = store
        .apply_batch("01", batch(1, vec![record(1, dossier("A", "00004", 2))]))
        .await
        .unwrap();
    assert_eq!(first.stored, 1);

    let second = store
        .apply_batch("01", batch(2, vec![record(2, finished), record(3, stale)]))
        .await
        .unwrap();
    assert_eq!(second.stored, 1);
    assert_eq!(second.unchanged, 1);
    assert_eq!(second.committed_seq, 3);

    assert_eq!(count(&store, "SELECT version FROM dossiers"), 3);
    assert_eq!(count(&store, "SELECT status FROM dossiers"), 10);
    assert_eq!(count(&store, "SELECT finished_day FROM dossiers"), 20261009);
    assert_eq!(count(&store, "SELECT due_day FROM dossiers"), 20261012);
    assert_eq!(count(&store, "SELECT received_day FROM dossiers"), 20261005);
}

#[tokio::test]
async fn commune_of_other_province_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // 25747 is Phường Thủ Dầu Một, a commune of Hồ Chí Minh City (79), sent by Hà Nội's agent.
    let records = vec![
        record(4, dossier("FOREIGN", "25747", 1)),
        record(5, dossier("OWN", "00004", 1)),
    ];

    let ack = store.apply_batch("01", batch(1, records)).await.unwrap();
    assert_eq!(ack.stored, 1);
    assert_eq!(ack.committed_seq, 5);
    assert_eq!(ack.rejections.len(), 1);
    let rejection = &ack.rejections[0];
    assert_eq!(rejection.seq, 4);
    assert_eq!(rejection.key, "FOREIGN");
    assert_eq!(rejection.code, RejectCode::UnitNotAllowed as i32);
    assert_eq!(rejection.field, "MaDonVi");

    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM dossiers WHERE unit_code = '25747'"
        ),
        0
    );
    assert_eq!(count(&store, "SELECT count(*) FROM dossiers"), 1);
    assert_eq!(count(&store, "SELECT count(*) FROM rejections"), 1);

    let (last_seq, resent) = store.hello("01", "0.1.0", 0, 4).await.unwrap();
    assert_eq!(last_seq, 5);
    assert_eq!(resent, ack.rejections);
    let (_, above) = store.hello("01", "0.1.0", 0, 5).await.unwrap();
    assert!(above.is_empty());
    let (_, empty_outbox) = store.hello("01", "0.1.0", 0, 0).await.unwrap();
    assert!(empty_outbox.is_empty());
}

#[tokio::test]
async fn invalid_records_become_rejections() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut no_procedure = dossier("NO-PROC", "00004", 1);
    no_procedure.procedure_code.clear();
    let records = vec![
        Record { seq: 1, body: None },
        record(2, dossier("V0", "00004", 0)),
        record(3, dossier("UNKNOWN-UNIT", "99999", 1)),
        record(4, no_procedure),
    ];

    let ack = store.apply_batch("01", batch(1, records)).await.unwrap();
    assert_eq!(ack.stored, 0);
    assert_eq!(ack.committed_seq, 4);
    let codes: Vec<(u64, i32, &str)> = ack
        .rejections
        .iter()
        .map(|r| (r.seq, r.code, r.field.as_str()))
        .collect();
    assert_eq!(
        codes,
        vec![
            (1, RejectCode::UnknownKind as i32, ""),
            (2, RejectCode::MissingField as i32, "version"),
            (3, RejectCode::UnknownUnit as i32, "MaDonVi"),
            (4, RejectCode::MissingField as i32, "MaTTHC"),
        ]
    );
    assert_eq!(count(&store, "SELECT count(*) FROM dossiers"), 0);
    assert_eq!(count(&store, "SELECT count(*) FROM rejections"), 4);
}

#[tokio::test]
async fn out_of_order_seqs_apply_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let records = vec![
        record(1, dossier("A", "00004", 1)),
        record(3, dossier("B", "00004", 1)),
        record(2, dossier("C", "00004", 1)),
    ];

    let error = store
        .apply_batch("01", batch(1, records))
        .await
        .unwrap_err();
    match error {
        StoreError::OutOfOrder {
            locality,
            seq,
            previous,
        } => {
            assert_eq!(locality, "01");
            assert_eq!(seq, 2);
            assert_eq!(previous, 3);
        }
        other => panic!("expected OutOfOrder, got {other}"),
    }

    let repeated = vec![
        record(1, dossier("A", "00004", 1)),
        record(1, dossier("B", "00004", 1)),
    ];
    let error = store
        .apply_batch("01", batch(2, repeated))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::OutOfOrder {
                seq: 1,
                previous: 1,
                ..
            }
        ),
        "{error}"
    );

    let zero = vec![record(0, dossier("A", "00004", 1))];
    let error = store.apply_batch("01", batch(3, zero)).await.unwrap_err();
    assert!(
        matches!(error, StoreError::InvalidSeq { seq: 0, .. }),
        "{error}"
    );

    assert_eq!(count(&store, "SELECT count(*) FROM dossiers"), 0);
    let (last_seq, _) = store.hello("01", "0.1.0", 0, 0).await.unwrap();
    assert_eq!(last_seq, 0);
}

#[tokio::test]
async fn watermark_persists_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let records = vec![
        record(10, dossier("A", "00004", 1)),
        record(11, dossier("B", "00004", 1)),
    ];
    store
        .apply_batch("01", batch(1, records.clone()))
        .await
        .unwrap();
    drop(store);

    let reopened = open(dir.path());
    let (last_seq, _) = reopened.hello("01", "0.2.0", -1500, 0).await.unwrap();
    assert_eq!(last_seq, 11);
    let replay = reopened.apply_batch("01", batch(2, records)).await.unwrap();
    assert_eq!(replay.unchanged, 2);
    assert_eq!(replay.stored, 0);

    let reader = reopened.reader().unwrap();
    let (version, offset): (String, i64) = reader
        .query_row(
            "SELECT agent_version, clock_offset_ms FROM agents WHERE locality = '01'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!(version, "0.2.0");
    assert_eq!(offset, -1500);
}

#[tokio::test]
async fn unknown_schema_version_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);

    let error = StoreHandle::open(&path, UnitCatalogue::official()).unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::SchemaVersion {
                found: 99,
                supported: super::schema::SCHEMA_VERSION,
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn group_commit_two_localities_all_land() {
    const BATCHES: u64 = 40;
    const PER_BATCH: u64 = 5;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());

    // Holding the write lock from another connection keeps the writer busy on its first job
    // while every other job queues up, so the later jobs must share commits.
    let blocker = rusqlite::Connection::open(store.path()).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();

    let mut acks = JoinSet::new();
    for batch_index in 0..BATCHES {
        for (locality, unit) in [("01", "00004"), ("79", "25747")] {
            let records = (0..PER_BATCH)
                .map(|i| {
                    let seq = batch_index * PER_BATCH + i + 1;
                    record(seq, dossier(&format!("{locality}-{seq}"), unit, 1))
                })
                .collect();
            acks.spawn(store.apply_batch(locality, batch(batch_index, records)));
        }
    }
    blocker.execute_batch("COMMIT").unwrap();

    let mut acked = 0;
    while let Some(ack) = acks.join_next().await {
        let ack = ack.unwrap().unwrap();
        assert_eq!(ack.stored, PER_BATCH as u32);
        assert!(ack.rejections.is_empty());
        acked += 1;
    }
    assert_eq!(acked, 2 * BATCHES);

    let total = (2 * BATCHES * PER_BATCH) as i64;
    assert_eq!(count(&store, "SELECT count(*) FROM dossiers"), total);
    let expected_watermark = (BATCHES * PER_BATCH) as i64;
    assert_eq!(
        count(&store, "SELECT min(last_seq) FROM agents"),
        expected_watermark
    );
    assert_eq!(
        count(&store, "SELECT max(last_seq) FROM agents"),
        expected_watermark
    );

    let stats = store.commit_stats();
    assert_eq!(stats.jobs, 2 * BATCHES);
    // One commit for the job taken before the lock was released, then groups of at most 64.
    assert!(stats.commits <= 3, "{stats:?}");
}
