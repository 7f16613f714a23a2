//! Every record kind through the outbox: versioning, pending batches, settling with the hub's
//! rejections, resending, and the `rejected.kind` column added to outbox files of schema
//! version 1.

use chiso_proto::record::{Kind, identify, set_version};
use chiso_proto::v1::record::Body;
use chiso_proto::v1::{RejectCode, Rejection};
use prost::Message;
use rusqlite::Connection;

use super::schema::{APPLICATION_ID, SCHEMA_V1, SCHEMA_VERSION};
use super::test_support::{dossier, open_temp, record_of_each_kind};
use super::{Outbox, ResendSelection};
use crate::record::RecordOutcome;

fn outcomes(bodies: Vec<Body>) -> Vec<RecordOutcome<Body>> {
    bodies
        .into_iter()
        .enumerate()
        .map(|(index, body)| RecordOutcome {
            index,
            result: Ok(body),
        })
        .collect()
}

/// Returns the pending records' bodies, in sequence order.
fn pending_bodies(outbox: &Outbox) -> Vec<Body> {
    outbox
        .pending_batch(0, 100)
        .unwrap()
        .into_iter()
        .map(|record| record.body.expect("every pending record has a body"))
        .collect()
}

/// Returns the bodies with their versions set, as the outbox sends them.
fn versioned(bodies: Vec<Body>, version: u64) -> Vec<Body> {
    bodies
        .into_iter()
        .map(|mut body| {
            set_version(&mut body, version);
            body
        })
        .collect()
}

fn unknown_kind(seq: u64, body: &Body) -> Rejection {
    Rejection {
        seq,
        key: identify(body).key.into_owned(),
        code: RejectCode::UnknownKind as i32,
        field: String::new(),
        message: "the record carries no body the hub knows".into(),
    }
}

#[test]
fn every_kind_round_trips() {
    let (_dir, mut outbox) = open_temp();
    let records = record_of_each_kind(0);
    let summary = outbox
        .ingest("in/all.json", "sha-1", outcomes(records.clone()))
        .unwrap();
    assert_eq!(summary.stored_new, 5);

    // Pending: each kind at version 1, in file order, with its kind and key in the row.
    let sent = pending_bodies(&outbox);
    assert_eq!(sent, versioned(records.clone(), 1));
    let rows: Vec<(String, String)> = outbox
        .conn
        .prepare("SELECT kind, key FROM outbox ORDER BY seq")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected_rows: Vec<(String, String)> = sent
        .iter()
        .map(|body| {
            let id = identify(body);
            (id.kind.to_string(), id.key.into_owned())
        })
        .collect();
    assert_eq!(rows, expected_rows);
    assert_eq!(rows[1], ("procedure".into(), "01/1.001612".into()));
    assert_eq!(rows[4], ("step".into(), "HS-1/7".into()));

    // The hub rejects every kind but dossiers, as one that does not store them yet.
    let rejections: Vec<Rejection> = (2..=5)
        .map(|seq| unknown_kind(seq, &sent[seq as usize - 1]))
        .collect();
    let settled = outbox.settle(5, &rejections).unwrap();
    assert_eq!(settled.deleted, 5);
    assert_eq!(settled.rejected, 4);
    let listed = outbox.rejects(10).unwrap();
    let kinds: Vec<Option<&str>> = listed.iter().map(|row| row.kind.as_deref()).collect();
    assert_eq!(
        kinds,
        [
            Some("step"),
            Some("rating"),
            Some("feedback"),
            Some("procedure")
        ]
    );
    assert_eq!(listed[3].key.as_deref(), Some("01/1.001612"));

    // Once the hub stores them, the kept payloads go again, unchanged.
    let resent = outbox.resend_rejected(ResendSelection::All).unwrap();
    assert_eq!(resent.requeued, 4);
    assert_eq!(resent.superseded + resent.without_payload, 0);
    // Resending walks the rejections newest first.
    let mut requeued = sent[1..].to_vec();
    requeued.reverse();
    assert_eq!(pending_bodies(&outbox), requeued);
    let seqs: Vec<u64> = outbox
        .pending_batch(0, 10)
        .unwrap()
        .iter()
        .map(|record| record.seq)
        .collect();
    assert_eq!(seqs, [6, 7, 8, 9]);
    assert_eq!(outbox.settle(9, &[]).unwrap().deleted, 4);
    assert_eq!(outbox.stats().unwrap().backlog, 0);
    assert!(outbox.rejects(10).unwrap().is_empty());

    // Every kind keeps its acknowledged payload for completeness resends.
    let retained: Vec<(String, Vec<u8>)> = outbox
        .conn
        .prepare("SELECT kind, payload FROM retained WHERE rejected = 0 ORDER BY kind")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let retained_kinds: Vec<&str> = retained.iter().map(|(kind, _)| kind.as_str()).collect();
    assert_eq!(
        retained_kinds,
        ["dossier", "feedback", "procedure", "rating", "step"]
    );
    let rating = chiso_proto::v1::Rating::decode(retained[3].1.as_slice()).unwrap();
    assert_eq!(rating.code, "DG-1");
    assert_eq!(rating.version, 1);
}

#[test]
fn every_kind_is_versioned_by_content() {
    let (_dir, mut outbox) = open_temp();
    outbox
        .ingest("in/1.json", "sha-1", outcomes(record_of_each_kind(0)))
        .unwrap();
    outbox.settle(5, &[]).unwrap();

    let again = outbox
        .ingest("in/2.json", "sha-2", outcomes(record_of_each_kind(0)))
        .unwrap();
    assert_eq!(again.unchanged, 5);
    assert_eq!(again.stored_new + again.stored_changed, 0);
    assert!(pending_bodies(&outbox).is_empty());

    let changed = outbox
        .ingest("in/3.json", "sha-3", outcomes(record_of_each_kind(2)))
        .unwrap();
    assert_eq!(changed.stored_changed, 5);
    assert_eq!(
        pending_bodies(&outbox),
        versioned(record_of_each_kind(2), 2)
    );

    let days: Vec<(String, i64)> = outbox
        .conn
        .prepare("SELECT kind, day FROM ledger ORDER BY kind")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (kind, day) in days {
        assert_eq!(day, 20_261_001, "ledger day of the {kind}");
    }
}

#[test]
fn same_key_of_two_kinds_stays_apart() {
    let (_dir, mut outbox) = open_temp();
    let mut records = record_of_each_kind(0);
    // A feedback item and a rating whose codes equal a dossier's code.
    for body in &mut records {
        match body {
            Body::Feedback(feedback) => feedback.code = "HS-1".into(),
            Body::Rating(rating) => rating.code = "HS-1".into(),
            _ => {}
        }
    }
    let summary = outbox
        .ingest("in/1.json", "sha-1", outcomes(records.clone()))
        .unwrap();
    assert_eq!(summary.stored_new, 5);
    assert_eq!(summary.superseded, 0);

    let sent = pending_bodies(&outbox);
    let rejections = [unknown_kind(1, &sent[0]), unknown_kind(4, &sent[3])];
    outbox.settle(5, &rejections).unwrap();

    let resent = outbox
        .resend_rejected(ResendSelection::KindKey(Kind::Rating, "HS-1"))
        .unwrap();
    assert_eq!(resent.requeued, 1);
    assert_eq!(pending_bodies(&outbox), vec![sent[3].clone()]);
    let left = outbox.rejects(10).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].kind.as_deref(), Some("dossier"));
}

#[test]
fn replaced_row_rejection_keeps_kind() {
    let (_dir, mut outbox) = open_temp();
    let first = record_of_each_kind(0);
    outbox
        .ingest("in/1.json", "sha-1", outcomes(vec![first[2].clone()]))
        .unwrap();
    // A newer version replaces seq 1 while the hub is still judging it.
    let second = record_of_each_kind(3);
    outbox
        .ingest("in/2.json", "sha-2", outcomes(vec![second[2].clone()]))
        .unwrap();

    outbox.settle(1, &[unknown_kind(1, &first[2])]).unwrap();
    let listed = outbox.rejects(10).unwrap();
    assert_eq!(listed[0].kind.as_deref(), Some("feedback"));
    let resent = outbox.resend_rejected(ResendSelection::All).unwrap();
    assert_eq!(resent.without_payload, 1);
}

/// Creates an outbox file as a release that knew only dossiers wrote it: schema version 1
/// without `rejected.kind`, with one hub rejection that kept its dossier payload.
fn write_v1_outbox(path: &std::path::Path) -> Vec<u8> {
    let mut old = dossier("HS-OLD", "01", 0);
    old.version = 1;
    let payload = old.encode_to_vec();
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(SCHEMA_V1).unwrap();
    conn.pragma_update(None, "application_id", APPLICATION_ID)
        .unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)
        .unwrap();
    conn.execute(
        "INSERT INTO ledger (kind, key, unit_code, day, version, content_hash, first_seen_ms,
                             last_changed_ms)
         VALUES ('dossier', 'HS-OLD', '01', 20261001, 1, x'00', 1, 1)",
        [],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO rejected (origin, source, seq, key, code, field, message, payload,
                               rejected_at_ms)
         VALUES ('hub', 'hub', 1, 'HS-OLD', 'REJECT_CODE_UNKNOWN_UNIT', 'MaDonVi', 'old', ?1, 1)",
        [&payload],
    )
    .unwrap();
    payload
}

#[test]
fn version_one_outbox_gains_rejected_kind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let payload = write_v1_outbox(&path);

    let mut outbox = Outbox::open(&path).unwrap();
    let listed = outbox.rejects(10).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].kind.as_deref(), Some("dossier"));

    let resent = outbox
        .resend_rejected(ResendSelection::Key("HS-OLD"))
        .unwrap();
    assert_eq!(resent.requeued, 1);
    let batch = outbox.pending_batch(0, 10).unwrap();
    let Some(Body::Dossier(sent)) = &batch[0].body else {
        panic!("expected the old dossier, got {batch:?}");
    };
    assert_eq!(sent.encode_to_vec(), payload);

    // Reopening finds the column and changes nothing.
    drop(outbox);
    let reopened = Outbox::open(&path).unwrap();
    let user_version: i64 = reopened
        .conn
        .pragma_query_one(None, "user_version")
        .unwrap();
    assert_eq!(user_version, SCHEMA_VERSION);
    assert_eq!(reopened.stats().unwrap().backlog, 1);
}

#[test]
fn null_kind_rejection_resends_as_dossier() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    write_v1_outbox(&path);
    drop(Outbox::open(&path).unwrap());
    // An older release writes after the upgrade and leaves the new column NULL.
    let conn = Connection::open(&path).unwrap();
    conn.execute("UPDATE rejected SET kind = NULL", []).unwrap();
    drop(conn);

    let mut outbox = Outbox::open(&path).unwrap();
    assert_eq!(outbox.rejects(10).unwrap()[0].kind, None);
    let resent = outbox
        .resend_rejected(ResendSelection::KindKey(Kind::Dossier, "HS-OLD"))
        .unwrap();
    assert_eq!(resent.requeued, 1);
    let batch = outbox.pending_batch(0, 10).unwrap();
    assert!(matches!(&batch[0].body, Some(Body::Dossier(d)) if d.code == "HS-OLD"));
}
