//! The push loop's side of the outbox: reading pending records in sequence order, and settling
//! them once the hub has committed them. Settling is one transaction, so the hub's rejections are
//! recorded exactly when their rows leave the outbox.

use chiso_proto::record::Kind;
use chiso_proto::v1::{Record, Rejection};
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};

use super::error::{OutboxError, sql_error};
use super::retain;
use super::{Outbox, SettleSummary, clamp_to_i64, get_u64, now_ms, payload, reject_code_name};

impl Outbox {
    /// Returns up to `limit` pending records with a sequence number above `after_seq`, in
    /// ascending sequence order.
    pub fn pending_batch(&self, after_seq: u64, limit: usize) -> Result<Vec<Record>, OutboxError> {
        let fail = sql_error(&self.path, "read pending records");
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT seq, kind, payload FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(&fail)?;
        let rows = statement
            .query_map(
                params![clamp_to_i64(after_seq), clamp_to_i64(limit)],
                |row| Ok((get_u64(row, 0)?, row.get::<_, String>(1)?, row.get(2)?)),
            )
            .map_err(&fail)?;

        let mut records = Vec::new();
        for row in rows {
            let (seq, kind, payload): (u64, String, Vec<u8>) = row.map_err(&fail)?;
            records.push(self.decode_record(seq, kind, &payload)?);
        }
        Ok(records)
    }

    /// Settles every pending row with `seq <= up_to_seq` in one transaction: rows named in
    /// `rejections` move to `rejected` with origin `hub` and their payload, then all are deleted.
    ///
    /// Rejections above `up_to_seq` are ignored, because the hub has not settled those rows. A
    /// rejection already recorded for the same sequence number is not recorded twice, and one
    /// whose row was replaced by a newer version before settling is recorded without payload.
    ///
    /// Settled rows are copied into `retained` in the same transaction, so a gap the hub reports
    /// later can be resent from their payloads until retention prunes them.
    pub fn settle(
        &mut self,
        up_to_seq: u64,
        rejections: &[Rejection],
    ) -> Result<SettleSummary, OutboxError> {
        let fail = sql_error(&self.path, "settle acknowledged records");
        let up_to = clamp_to_i64(up_to_seq);
        let now = now_ms();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&fail)?;

        let mut summary = SettleSummary::default();
        for rejection in rejections.iter().filter(|r| r.seq <= up_to_seq) {
            if record_hub_rejection(&tx, rejection, now).map_err(&fail)? {
                summary.rejected += 1;
            }
        }
        retain::retain_settled(&tx, up_to_seq, rejections, now).map_err(&fail)?;
        summary.deleted = tx
            .execute("DELETE FROM outbox WHERE seq <= ?1", [up_to])
            .map_err(&fail)?;
        tx.commit().map_err(&fail)?;

        if summary.rejected > 0 {
            tracing::warn!(
                up_to_seq,
                rejected = summary.rejected,
                "hub rejected records; list them with chiso-agent status"
            );
        }
        tracing::debug!(up_to_seq, deleted = summary.deleted, "outbox settled");
        Ok(summary)
    }

    fn decode_record(&self, seq: u64, kind: String, bytes: &[u8]) -> Result<Record, OutboxError> {
        let Some(known) = Kind::parse(&kind) else {
            return Err(OutboxError::UnknownKind {
                path: self.path.clone(),
                seq,
                kind,
            });
        };
        let body = payload::decode(known, bytes).map_err(|source| OutboxError::CorruptPayload {
            path: self.path.clone(),
            seq,
            kind,
            source,
        })?;
        Ok(Record {
            seq,
            body: Some(body),
        })
    }
}

/// Copies a hub rejection into `rejected`, with the pending row's kind and payload when the row
/// is still there. Returns false, and records nothing, when this sequence number was already
/// rejected.
fn record_hub_rejection(
    tx: &Transaction<'_>,
    rejection: &Rejection,
    now: i64,
) -> rusqlite::Result<bool> {
    let seq = clamp_to_i64(rejection.seq);
    let already: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM rejected WHERE origin = 'hub' AND seq = ?1)",
        [seq],
        |row| row.get(0),
    )?;
    if already {
        return Ok(false);
    }

    let row: Option<(String, Vec<u8>)> = tx
        .query_row(
            "SELECT kind, payload FROM outbox WHERE seq = ?1",
            [seq],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    let (kind, payload) = match row {
        Some((kind, payload)) => (Some(kind), Some(payload)),
        None => (replacement_kind(tx, seq, &rejection.key)?, None),
    };
    tx.execute(
        "INSERT INTO rejected (origin, source, seq, key, code, field, message, payload,
                               rejected_at_ms, kind)
         VALUES ('hub', 'hub', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            seq,
            rejection.key,
            reject_code_name(rejection.code),
            rejection.field,
            rejection.message,
            payload,
            now,
            kind
        ],
    )?;
    Ok(true)
}

/// Returns the kind of the newer version that replaced a rejected row, when exactly one kind has
/// a pending row with the rejection's key after `seq`. Coalescing keeps the kind and key of the
/// row it replaces.
fn replacement_kind(tx: &Transaction<'_>, seq: i64, key: &str) -> rusqlite::Result<Option<String>> {
    let mut statement =
        tx.prepare_cached("SELECT DISTINCT kind FROM outbox WHERE key = ?1 AND seq > ?2")?;
    let kinds: Vec<String> = statement
        .query_map(params![key, seq], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(match kinds.as_slice() {
        [kind] => Some(kind.clone()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use chiso_proto::v1::{Dossier, RejectCode, Rejection};
    use prost::Message;

    use super::super::test_support::{dossier, open_temp};
    use super::super::{Outbox, OutboxError};
    use crate::record::RecordOutcome;

    fn ingest_codes(outbox: &mut Outbox, file: &str, codes: &[&str]) {
        let outcomes = codes
            .iter()
            .enumerate()
            .map(|(index, code)| RecordOutcome {
                index,
                result: Ok(dossier(code, "01", 0)),
            })
            .collect();
        outbox.ingest(file, file, outcomes).unwrap();
    }

    fn pending_seqs(outbox: &Outbox) -> Vec<u64> {
        let batch = outbox.pending_batch(0, 1000).unwrap();
        batch.iter().map(|record| record.seq).collect()
    }

    fn rejection(seq: u64, key: &str) -> Rejection {
        Rejection {
            seq,
            key: key.to_string(),
            code: RejectCode::UnitNotAllowed as i32,
            field: "MaDonVi".to_string(),
            message: "unit 79 belongs to another locality".to_string(),
        }
    }

    #[test]
    fn pending_batch_respects_after_seq_and_limit() {
        let (_dir, mut outbox) = open_temp();
        ingest_codes(&mut outbox, "in/1.json", &["A", "B", "C", "D", "E"]);

        let seqs: Vec<u64> = outbox
            .pending_batch(2, 2)
            .unwrap()
            .iter()
            .map(|record| record.seq)
            .collect();
        assert_eq!(seqs, vec![3, 4]);
        assert!(outbox.pending_batch(5, 10).unwrap().is_empty());
        assert!(outbox.pending_batch(u64::MAX, 10).unwrap().is_empty());
        assert!(outbox.pending_batch(0, 0).unwrap().is_empty());
        assert_eq!(outbox.pending_batch(0, usize::MAX).unwrap().len(), 5);
    }

    #[test]
    fn settle_moves_hub_rejections() {
        let (_dir, mut outbox) = open_temp();
        ingest_codes(&mut outbox, "in/1.json", &["A", "B", "C"]);
        let rejections = [rejection(2, "B"), rejection(3, "C")];

        let summary = outbox.settle(2, &rejections).unwrap();
        assert_eq!(summary.deleted, 2);
        assert_eq!(summary.rejected, 1, "seq 3 is above up_to_seq");
        assert_eq!(pending_seqs(&outbox), vec![3]);

        let listed = outbox.rejects(10).unwrap();
        assert_eq!(listed.len(), 1);
        let row = &listed[0];
        assert_eq!(row.origin, "hub");
        assert_eq!(row.source, "hub");
        assert_eq!(row.seq, Some(2));
        assert_eq!(row.record_index, None);
        assert_eq!(row.key.as_deref(), Some("B"));
        assert_eq!(row.code, "REJECT_CODE_UNIT_NOT_ALLOWED");
        assert_eq!(row.field, "MaDonVi");
        assert_eq!(row.message, "unit 79 belongs to another locality");

        let payload: Vec<u8> = outbox
            .conn
            .query_row("SELECT payload FROM rejected WHERE seq = 2", [], |row| {
                row.get(0)
            })
            .unwrap();
        let rejected_dossier = Dossier::decode(payload.as_slice()).unwrap();
        assert_eq!(rejected_dossier.code, "B");
        assert_eq!(rejected_dossier.version, 1);

        let stats = outbox.stats().unwrap();
        assert_eq!(stats.backlog, 1);
        assert_eq!(stats.oldest_pending_seq, Some(3));
        assert_eq!(stats.rejected, 1);
        assert_eq!(stats.ledger_keys, 3, "the ledger keeps settled keys");
    }

    #[test]
    fn settle_repeated_records_rejection_once() {
        let (_dir, mut outbox) = open_temp();
        ingest_codes(&mut outbox, "in/1.json", &["A", "B"]);
        let rejections = [rejection(1, "A")];

        assert_eq!(outbox.settle(1, &rejections).unwrap().rejected, 1);
        let again = outbox.settle(1, &rejections).unwrap();
        assert_eq!(again.rejected, 0);
        assert_eq!(again.deleted, 0);
        assert_eq!(outbox.stats().unwrap().rejected, 1);
        assert_eq!(pending_seqs(&outbox), vec![2]);
    }

    #[test]
    fn rejection_of_replaced_row_has_no_payload() {
        let (_dir, mut outbox) = open_temp();
        ingest_codes(&mut outbox, "in/1.json", &["A"]);
        // A newer version replaces seq 1 while the hub is still judging it.
        let newer = RecordOutcome {
            index: 0,
            result: Ok(dossier("A", "01", 9)),
        };
        outbox.ingest("in/2.json", "sha-2", vec![newer]).unwrap();
        assert_eq!(pending_seqs(&outbox), vec![2]);

        let summary = outbox.settle(1, &[rejection(1, "A")]).unwrap();
        assert_eq!(summary.deleted, 0);
        assert_eq!(summary.rejected, 1);
        let payload: Option<Vec<u8>> = outbox
            .conn
            .query_row("SELECT payload FROM rejected WHERE seq = 1", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(payload, None);
        assert_eq!(pending_seqs(&outbox), vec![2]);
    }

    #[test]
    fn sequence_numbers_never_reused() {
        let (dir, mut outbox) = open_temp();
        ingest_codes(&mut outbox, "in/1.json", &["A", "B"]);
        assert_eq!(outbox.settle(2, &[]).unwrap().deleted, 2);
        let stats = outbox.stats().unwrap();
        assert_eq!(stats.backlog, 0);
        assert_eq!(stats.oldest_pending_seq, None);
        assert_eq!(stats.last_seq, 2);

        ingest_codes(&mut outbox, "in/2.json", &["C"]);
        assert_eq!(pending_seqs(&outbox), vec![3]);
        outbox.settle(u64::MAX, &[]).unwrap();
        drop(outbox);

        let mut reopened = Outbox::open(&dir.path().join("outbox.db")).unwrap();
        assert_eq!(reopened.stats().unwrap().last_seq, 3);
        ingest_codes(&mut reopened, "in/3.json", &["D"]);
        assert_eq!(pending_seqs(&reopened), vec![4]);
    }

    #[test]
    fn corrupt_payload_fails_naming_seq() {
        let (_dir, mut outbox) = open_temp();
        ingest_codes(&mut outbox, "in/1.json", &["A"]);
        outbox
            .conn
            .execute("UPDATE outbox SET payload = x'ffffffff' WHERE seq = 1", [])
            .unwrap();

        let error = outbox.pending_batch(0, 10).unwrap_err();
        assert!(
            matches!(error, OutboxError::CorruptPayload { seq: 1, .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("seq 1"), "{error}");
    }

    #[test]
    fn unknown_kind_fails_naming_kind() {
        let (_dir, mut outbox) = open_temp();
        ingest_codes(&mut outbox, "in/1.json", &["A"]);
        outbox
            .conn
            .execute("UPDATE outbox SET kind = 'survey' WHERE seq = 1", [])
            .unwrap();

        let error = outbox.pending_batch(0, 10).unwrap_err();
        assert!(
            matches!(&error, OutboxError::UnknownKind { seq: 1, kind, .. } if kind == "survey"),
            "{error:?}"
        );
    }
}
