//! Intake: one parsed input file stored in one transaction. A valid record is compared with the
//! ledger by content hash under its kind and key (`chiso_proto::record::identify`): a new key is
//! queued at version 1, changed content at the next version, and identical content is not
//! queued. A changed record replaces its pending older version, so only the newest version is
//! sent. Ingesting the same file content again changes nothing.

use std::collections::HashMap;

use chiso_proto::record::{Kind, identify, set_version};
use chiso_proto::v1::record::Body;
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};

use super::error::{OutboxError, sql_error};
use super::payload::{content_hash, encode, ledger_day};
use super::space::{measure, refuse_if_passed};
use super::{IngestSummary, IntakeRejection, Outbox, clamp_to_i64, get_u64, now_ms};
use crate::record::{IntoBody, RecordError, RecordOutcome};

/// Result of comparing a valid record with the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    New,
    Changed { replaced_pending: bool },
    Unchanged,
}

/// A file's outcomes with earlier duplicates of a key removed.
struct FileOutcomes {
    /// The last valid record of each kind and key, in file order.
    records: Vec<Body>,
    /// Rejected records with their 0-based position in the file.
    errors: Vec<(usize, RecordError)>,
    /// Valid records dropped because the same key comes again later in the file.
    superseded: usize,
}

impl Outbox {
    /// Stores a parsed file's outcomes in one transaction: valid records are versioned and
    /// queued, rejected ones kept in `rejected`, and the file recorded in `input_files`.
    ///
    /// When a kind and key occur more than once among the valid records, the last one wins. A
    /// rejected record never replaces a valid one. If this `source` and `file_sha256` were
    /// ingested before, the rejections are returned but not stored a second time.
    ///
    /// While records are pending, the file is refused whole with [`OutboxError::Full`] when the
    /// outbox is already at a limit, or would pass one once the file is stored.
    pub fn ingest<T: IntoBody>(
        &mut self,
        source: &str,
        file_sha256: &str,
        outcomes: Vec<RecordOutcome<T>>,
    ) -> Result<IngestSummary, OutboxError> {
        let fail = sql_error(&self.path, "store the records of an input file");
        let now = now_ms();
        let mut summary = IngestSummary {
            records: outcomes.len(),
            ..IngestSummary::default()
        };
        let file = split_outcomes(outcomes);
        summary.superseded = file.superseded;

        let limits = self.limits;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&fail)?;
        // An empty outbox takes any file, even one larger than a limit: no drain could ever
        // make room for it.
        let before = measure(&tx).map_err(&fail)?;
        if before.pending > 0 {
            refuse_if_passed(&self.path, &limits, &before, &before, true)?;
        }
        let replaced_pending =
            store_records(&tx, file.records, now, &mut summary).map_err(&fail)?;

        // The rejections of a file already recorded were stored with it the first time.
        let seen_before = input_file_exists(&tx, source, file_sha256).map_err(&fail)?;
        summary.rejected =
            store_rejections(&tx, source, file.errors, seen_before, now).map_err(&fail)?;

        record_input_file(&tx, source, file_sha256, &summary, now).map_err(&fail)?;
        // Dropping the transaction on refusal rolls the whole file back.
        let after = measure(&tx).map_err(&fail)?;
        if before.pending > 0 {
            refuse_if_passed(&self.path, &limits, &after, &before, false)?;
        }
        tx.commit().map_err(&fail)?;
        if before.pending == 0 && limits.passed(&after, false).is_some() {
            tracing::warn!(
                source,
                pending = after.pending,
                used_bytes = after.used_bytes,
                "input larger than an outbox limit taken because nothing else was pending; raise the limit if this repeats"
            );
        }

        tracing::debug!(
            source,
            records = summary.records,
            stored_new = summary.stored_new,
            stored_changed = summary.stored_changed,
            unchanged = summary.unchanged,
            superseded = summary.superseded,
            rejected = summary.rejected.len(),
            replaced_pending,
            seen_before,
            "input file stored"
        );
        Ok(summary)
    }
}

/// Splits outcomes into valid records and rejections, keeping only the last record per kind and
/// key.
fn split_outcomes<T: IntoBody>(outcomes: Vec<RecordOutcome<T>>) -> FileOutcomes {
    let outcomes: Vec<(usize, Result<Body, RecordError>)> = outcomes
        .into_iter()
        .map(|outcome| (outcome.index, outcome.result.map(IntoBody::into_body)))
        .collect();

    let mut last_position: HashMap<(Kind, String), usize> = HashMap::new();
    for (position, (_, result)) in outcomes.iter().enumerate() {
        if let Ok(body) = result {
            let id = identify(body);
            last_position.insert((id.kind, id.key.into_owned()), position);
        }
    }

    let mut file = FileOutcomes {
        records: Vec::with_capacity(last_position.len()),
        errors: Vec::new(),
        superseded: 0,
    };
    for (position, (index, result)) in outcomes.into_iter().enumerate() {
        match result {
            Ok(body) => {
                let id = identify(&body);
                let last = last_position.get(&(id.kind, id.key.into_owned()));
                if last == Some(&position) {
                    file.records.push(body);
                } else {
                    file.superseded += 1;
                }
            }
            Err(error) => file.errors.push((index, error)),
        }
    }
    file
}

/// Versions and queues each record and counts the outcomes. Returns how many pending rows were
/// replaced by a newer version.
fn store_records(
    tx: &Transaction<'_>,
    records: Vec<Body>,
    now: i64,
    summary: &mut IngestSummary,
) -> rusqlite::Result<usize> {
    let mut replaced_pending = 0;
    for body in records {
        match store_record(tx, body, now)? {
            Change::New => summary.stored_new += 1,
            Change::Changed {
                replaced_pending: replaced,
            } => {
                summary.stored_changed += 1;
                replaced_pending += usize::from(replaced);
            }
            Change::Unchanged => summary.unchanged += 1,
        }
    }
    Ok(replaced_pending)
}

/// Compares one record with the ledger and, when it is new or changed, updates the ledger and
/// queues it at its new version.
fn store_record(tx: &Transaction<'_>, mut body: Body, now: i64) -> rusqlite::Result<Change> {
    let hash = content_hash(&body);
    let (kind, key) = {
        let id = identify(&body);
        (id.kind, id.key.into_owned())
    };

    let previous: Option<(u64, Vec<u8>)> = tx
        .prepare_cached("SELECT version, content_hash FROM ledger WHERE kind = ?1 AND key = ?2")?
        .query_row(params![kind.as_str(), key], |row| {
            Ok((get_u64(row, 0)?, row.get(1)?))
        })
        .optional()?;
    let version = match &previous {
        Some((_, old_hash)) if *old_hash == hash => return Ok(Change::Unchanged),
        Some((old_version, _)) => old_version + 1,
        None => 1,
    };

    set_version(&mut body, version);
    upsert_ledger(tx, &body, &hash, now)?;
    let replaced_pending = queue(tx, &body, now)?;

    Ok(match previous {
        None => Change::New,
        Some(_) => Change::Changed { replaced_pending },
    })
}

fn upsert_ledger(tx: &Transaction<'_>, body: &Body, hash: &[u8], now: i64) -> rusqlite::Result<()> {
    let id = identify(body);
    tx.prepare_cached(
        "INSERT INTO ledger (kind, key, unit_code, day, version, content_hash, first_seen_ms,
                             last_changed_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
         ON CONFLICT (kind, key) DO UPDATE SET
             unit_code = excluded.unit_code,
             day = excluded.day,
             version = excluded.version,
             content_hash = excluded.content_hash,
             last_changed_ms = excluded.last_changed_ms",
    )?
    .execute(params![
        id.kind.as_str(),
        id.key,
        id.unit_code,
        ledger_day(body),
        clamp_to_i64(id.version),
        hash,
        now
    ])?;
    Ok(())
}

/// Queues a record under a new sequence number and deletes its pending older version, if any.
/// Returns whether one was deleted.
fn queue(tx: &Transaction<'_>, body: &Body, now: i64) -> rusqlite::Result<bool> {
    let id = identify(body);
    let deleted = tx
        .prepare_cached("DELETE FROM outbox WHERE kind = ?1 AND key = ?2")?
        .execute(params![id.kind.as_str(), id.key])?;
    tx.prepare_cached(
        "INSERT INTO outbox (kind, key, version, payload, enqueued_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        id.kind.as_str(),
        id.key,
        clamp_to_i64(id.version),
        encode(body),
        now
    ])?;
    Ok(deleted > 0)
}

fn input_file_exists(tx: &Transaction<'_>, path: &str, sha256: &str) -> rusqlite::Result<bool> {
    tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM input_files WHERE path = ?1 AND sha256 = ?2)",
        params![path, sha256],
        |row| row.get(0),
    )
}

/// Stores each rejection in `rejected` unless `seen_before`, and returns them for the summary.
fn store_rejections(
    tx: &Transaction<'_>,
    source: &str,
    errors: Vec<(usize, RecordError)>,
    seen_before: bool,
    now: i64,
) -> rusqlite::Result<Vec<IntakeRejection>> {
    let mut rejections = Vec::with_capacity(errors.len());
    for (index, error) in errors {
        if !seen_before {
            insert_intake_rejection(tx, source, index, &error, now)?;
        }
        rejections.push(IntakeRejection {
            index,
            key: error.key,
            field: error.field,
            code: error.code,
            message: error.message,
        });
    }
    Ok(rejections)
}

fn insert_intake_rejection(
    tx: &Transaction<'_>,
    source: &str,
    index: usize,
    error: &RecordError,
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO rejected (origin, source, record_index, key, code, field, message,
                               sanitized_json, rejected_at_ms, kind)
         VALUES ('intake', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        source,
        clamp_to_i64(index),
        error.key,
        error.code.as_str_name(),
        error.field,
        error.message,
        error.sanitized_json,
        now,
        error.kind.as_str()
    ])?;
    Ok(())
}

/// Records the file as done. A row from an earlier ingest of the same content is left as it is.
fn record_input_file(
    tx: &Transaction<'_>,
    path: &str,
    sha256: &str,
    summary: &IngestSummary,
    now: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO input_files (path, sha256, records, stored, unchanged, rejected,
                                  ingested_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (path, sha256) DO NOTHING",
        params![
            path,
            sha256,
            clamp_to_i64(summary.records),
            clamp_to_i64(summary.stored_new + summary.stored_changed),
            clamp_to_i64(summary.unchanged),
            clamp_to_i64(summary.rejected.len()),
            now
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use chiso_proto::record::Kind;
    use chiso_proto::v1::{RejectCode, record};
    use chiso_proto::vntime::{day_number, vietnam_day};
    use prost::Message;
    use sha2::{Digest, Sha256};

    use super::super::test_support::{RECEIVED_AT, dossier, open_temp};
    use super::super::{IngestSummary, Outbox};
    use crate::record::{RecordError, RecordOutcome};

    fn valid(index: usize, dossier: chiso_proto::v1::Dossier) -> RecordOutcome {
        RecordOutcome {
            index,
            result: Ok(dossier),
        }
    }

    fn invalid(index: usize, key: Option<&str>) -> RecordOutcome {
        RecordOutcome {
            index,
            result: Err(RecordError {
                kind: Kind::Dossier,
                key: key.map(str::to_string),
                code: RejectCode::UnknownUnit,
                field: "MaDonVi".to_string(),
                message: "unit 99999 is not in the 2025 unit catalogue".to_string(),
                sanitized_json: r#"{"MaHoSo":"HS-BAD","MaDonVi":"99999"}"#.to_string(),
            }),
        }
    }

    /// Pending (seq, code, version) triples in sequence order.
    fn pending(outbox: &Outbox) -> Vec<(u64, String, u64)> {
        outbox
            .pending_batch(0, 1000)
            .unwrap()
            .into_iter()
            .map(|record| match record.body {
                Some(record::Body::Dossier(d)) => (record.seq, d.code, d.version),
                other => panic!("record seq {} is not a dossier: {other:?}", record.seq),
            })
            .collect()
    }

    fn ledger_version(outbox: &Outbox, key: &str) -> i64 {
        outbox
            .conn
            .query_row(
                "SELECT version FROM ledger WHERE kind = 'dossier' AND key = ?1",
                [key],
                |row| row.get(0),
            )
            .unwrap()
    }

    fn count(outbox: &Outbox, table: &str) -> i64 {
        outbox
            .conn
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| {
                row.get(0)
            })
            .unwrap()
    }

    #[test]
    fn versions_new_changed_and_unchanged() {
        let (_dir, mut outbox) = open_temp();
        let first = vec![
            valid(0, dossier("HS-A", "01", 0)),
            valid(1, dossier("HS-B", "01", 0)),
        ];
        let summary = outbox.ingest("in/1.json", "sha-1", first).unwrap();
        assert_eq!(summary.records, 2);
        assert_eq!(summary.stored_new, 2);
        assert_eq!(summary.stored_changed, 0);
        assert_eq!(summary.unchanged, 0);

        let second = vec![
            valid(0, dossier("HS-A", "01", 0)),
            valid(1, dossier("HS-B", "01", 5)),
            valid(2, dossier("HS-C", "01", 0)),
        ];
        let summary = outbox.ingest("in/2.json", "sha-2", second).unwrap();
        assert_eq!(summary.stored_new, 1);
        assert_eq!(summary.stored_changed, 1);
        assert_eq!(summary.unchanged, 1);

        assert_eq!(ledger_version(&outbox, "HS-A"), 1);
        assert_eq!(ledger_version(&outbox, "HS-B"), 2);
        assert_eq!(ledger_version(&outbox, "HS-C"), 1);
        let expected = vec![
            (1, "HS-A".to_string(), 1),
            (3, "HS-B".to_string(), 2),
            (4, "HS-C".to_string(), 1),
        ];
        assert_eq!(pending(&outbox), expected);
    }

    #[test]
    fn reingest_of_same_outcomes_changes_nothing() {
        let (_dir, mut outbox) = open_temp();
        let outcomes = vec![
            valid(0, dossier("HS-A", "01", 0)),
            invalid(1, Some("HS-BAD")),
            valid(2, dossier("HS-B", "01", 0)),
            valid(3, dossier("HS-A", "01", 3)),
        ];
        let first = outbox
            .ingest("in/1.json", "sha-1", outcomes.clone())
            .unwrap();
        assert_eq!(first.stored_new, 2);
        assert_eq!(first.superseded, 1);
        assert_eq!(first.rejected.len(), 1);
        let stats_before = outbox.stats().unwrap();
        let pending_before = pending(&outbox);

        let again = outbox.ingest("in/1.json", "sha-1", outcomes).unwrap();
        assert_eq!(again.records, 4);
        assert_eq!(again.stored_new, 0);
        assert_eq!(again.stored_changed, 0);
        assert_eq!(again.unchanged, 2);
        assert_eq!(again.superseded, 1);
        assert_eq!(again.rejected.len(), 1, "rejections are still reported");

        assert_eq!(outbox.stats().unwrap(), stats_before);
        assert_eq!(pending(&outbox), pending_before);
        assert_eq!(ledger_version(&outbox, "HS-A"), 1);
        assert_eq!(count(&outbox, "rejected"), 1, "rejections are stored once");
        assert_eq!(count(&outbox, "input_files"), 1);
    }

    #[test]
    fn coalescing_keeps_newest_pending_version() {
        let (_dir, mut outbox) = open_temp();
        outbox
            .ingest(
                "in/1.json",
                "sha-1",
                vec![valid(0, dossier("HS-A", "01", 0))],
            )
            .unwrap();
        outbox
            .ingest(
                "in/2.json",
                "sha-2",
                vec![valid(0, dossier("HS-A", "01", 1))],
            )
            .unwrap();
        let summary = outbox
            .ingest(
                "in/3.json",
                "sha-3",
                vec![valid(0, dossier("HS-A", "01", 2))],
            )
            .unwrap();
        assert_eq!(summary.stored_changed, 1);

        assert_eq!(pending(&outbox), vec![(3, "HS-A".to_string(), 3)]);
        let batch = outbox.pending_batch(0, 10).unwrap();
        let Some(record::Body::Dossier(sent)) = &batch[0].body else {
            panic!("expected a dossier body");
        };
        assert_eq!(sent.received_at, RECEIVED_AT + 2 * 3600);

        let stats = outbox.stats().unwrap();
        assert_eq!(stats.backlog, 1);
        assert_eq!(stats.oldest_pending_seq, Some(3));
        assert_eq!(stats.last_seq, 3);
    }

    #[test]
    fn same_key_twice_in_file_last_wins() {
        let (_dir, mut outbox) = open_temp();
        let outcomes = vec![
            valid(0, dossier("HS-A", "01", 0)),
            valid(1, dossier("HS-A", "01", 7)),
        ];
        let summary = outbox.ingest("in/1.json", "sha-1", outcomes).unwrap();
        assert_eq!(summary.stored_new, 1);
        assert_eq!(summary.superseded, 1);
        assert_eq!(summary.stored_changed, 0);

        let batch = outbox.pending_batch(0, 10).unwrap();
        assert_eq!(batch.len(), 1);
        let Some(record::Body::Dossier(sent)) = &batch[0].body else {
            panic!("expected a dossier body");
        };
        assert_eq!(sent.received_at, RECEIVED_AT + 7 * 3600);
        assert_eq!(sent.version, 1);
    }

    #[test]
    fn later_duplicate_with_new_content_is_a_change() {
        let (_dir, mut outbox) = open_temp();
        outbox
            .ingest(
                "in/1.json",
                "sha-1",
                vec![valid(0, dossier("HS-A", "01", 0))],
            )
            .unwrap();
        let outcomes = vec![
            valid(0, dossier("HS-A", "01", 0)),
            valid(1, dossier("HS-A", "01", 4)),
        ];
        let summary = outbox.ingest("in/2.json", "sha-2", outcomes).unwrap();
        assert_eq!(summary.stored_changed, 1);
        assert_eq!(summary.unchanged, 0);
        assert_eq!(summary.superseded, 1);
        assert_eq!(pending(&outbox), vec![(2, "HS-A".to_string(), 2)]);
    }

    #[test]
    fn intake_rejections_stored_with_sanitized_json() {
        let (_dir, mut outbox) = open_temp();
        let outcomes = vec![
            valid(0, dossier("HS-A", "01", 0)),
            invalid(1, Some("HS-BAD")),
        ];
        let summary = outbox.ingest("in/1.json", "sha-1", outcomes).unwrap();
        assert_eq!(summary.rejected.len(), 1);
        let rejection = &summary.rejected[0];
        assert_eq!(rejection.index, 1);
        assert_eq!(rejection.key.as_deref(), Some("HS-BAD"));
        assert_eq!(rejection.code, RejectCode::UnknownUnit);
        assert_eq!(rejection.field, "MaDonVi");

        type Row = (
            String,
            String,
            Option<i64>,
            Option<i64>,
            String,
            Option<String>,
            Option<Vec<u8>>,
        );
        let row: Row = outbox
            .conn
            .query_row(
                "SELECT origin, source, record_index, seq, code, sanitized_json, payload
                 FROM rejected",
                [],
                |row| {
                    Ok((
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                        row.get(5)?,
                        row.get(6)?,
                    ))
                },
            )
            .unwrap();
        assert_eq!(row.0, "intake");
        assert_eq!(row.1, "in/1.json");
        assert_eq!(row.2, Some(1));
        assert_eq!(row.3, None);
        assert_eq!(row.4, "REJECT_CODE_UNKNOWN_UNIT");
        assert_eq!(
            row.5.as_deref(),
            Some(r#"{"MaHoSo":"HS-BAD","MaDonVi":"99999"}"#)
        );
        assert_eq!(row.6, None);

        let listed = outbox.rejects(10).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].origin, "intake");
        assert_eq!(listed[0].record_index, Some(1));
        assert_eq!(listed[0].key.as_deref(), Some("HS-BAD"));
        assert_eq!(listed[0].code, "REJECT_CODE_UNKNOWN_UNIT");
        assert_eq!(
            listed[0].message,
            "unit 99999 is not in the 2025 unit catalogue"
        );
        assert_eq!(outbox.stats().unwrap().rejected, 1);
    }

    #[test]
    fn ledger_keeps_unit_vietnam_day_and_hash() {
        let (_dir, mut outbox) = open_temp();
        // 00:30 on 2 October in Vietnam is still 1 October in UTC.
        let mut late = dossier("HS-A", "01001", 0);
        late.received_at = RECEIVED_AT + 16 * 3600 + 30 * 60;
        outbox
            .ingest("in/1.json", "sha-1", vec![valid(0, late.clone())])
            .unwrap();

        let (unit, day, hash): (String, i64, Vec<u8>) = outbox
            .conn
            .query_row(
                "SELECT unit_code, day, content_hash FROM ledger WHERE key = 'HS-A'",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .unwrap();
        assert_eq!(unit, "01001");
        assert_eq!(day, 20_261_002);
        assert_eq!(day, day_number(vietnam_day(late.received_at)));
        assert_eq!(hash, Sha256::digest(late.encode_to_vec()).to_vec());

        let payload: Vec<u8> = outbox
            .conn
            .query_row("SELECT payload FROM outbox", [], |row| row.get(0))
            .unwrap();
        let stored = chiso_proto::v1::Dossier::decode(payload.as_slice()).unwrap();
        assert_eq!(stored.version, 1);
        assert_eq!(stored.code, "HS-A");
    }

    #[test]
    fn summary_counts_add_up_to_records() {
        let (_dir, mut outbox) = open_temp();
        outbox
            .ingest(
                "in/1.json",
                "sha-1",
                vec![valid(0, dossier("HS-A", "01", 0))],
            )
            .unwrap();
        let outcomes = vec![
            valid(0, dossier("HS-A", "01", 0)),
            valid(1, dossier("HS-B", "01", 0)),
            valid(2, dossier("HS-B", "01", 1)),
            invalid(3, None),
            valid(4, dossier("HS-C", "01", 0)),
        ];
        let IngestSummary {
            records,
            stored_new,
            stored_changed,
            unchanged,
            superseded,
            rejected,
        } = outbox.ingest("in/2.json", "sha-2", outcomes).unwrap();
        assert_eq!(records, 5);
        assert_eq!(stored_new, 2);
        assert_eq!(stored_changed, 0);
        assert_eq!(unchanged, 1);
        assert_eq!(superseded, 1);
        assert_eq!(rejected.len(), 1);
        assert_eq!(
            records,
            stored_new + stored_changed + unchanged + superseded + rejected.len()
        );

        let (stored, counted_unchanged, counted_rejected): (i64, i64, i64) = outbox
            .conn
            .query_row(
                "SELECT stored, unchanged, rejected FROM input_files WHERE path = 'in/2.json'",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .unwrap();
        assert_eq!(stored, 2);
        assert_eq!(counted_unchanged, 1);
        assert_eq!(counted_rejected, 1);
    }
}
