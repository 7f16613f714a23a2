//! Resending records the hub rejected, once the cause was corrected on the hub's side (a unit
//! catalogue update, a rule fixed). The kept payload is queued again under a new sequence number
//! at its own version, and its row leaves `rejected`. A rejection whose record has since been
//! replaced by a newer version, or that has no payload, stays where it is: the newer version was
//! queued when it was ingested, and a record without payload must be ingested again from its
//! corrected source. Every record kind is resent the same way.

use chiso_proto::record::{Kind, identify};
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};

use super::error::{OutboxError, sql_error};
use super::schema::KIND_DOSSIER;
use super::{Outbox, clamp_to_i64, now_ms, payload};

/// Selection of the hub rejections [`Outbox::resend_rejected`] queues again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResendSelection<'a> {
    /// The rejections of one record key, of any kind, such as a dossier code.
    Key(&'a str),
    /// The rejections of one record key of one kind, such as `01/1.001612` of a procedure.
    KindKey(Kind, &'a str),
    /// Every hub rejection.
    All,
}

/// Outcome counts of [`Outbox::resend_rejected`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResendSummary {
    /// Records queued again; their rejection rows were removed.
    pub requeued: usize,
    /// Rejections left in place because a newer version of the record was accepted since.
    pub superseded: usize,
    /// Rejections left in place because they kept no payload; ingest the source again.
    pub without_payload: usize,
}

/// One hub rejection row considered for resending.
struct Candidate {
    id: i64,
    seq: Option<i64>,
    /// NULL in rows written by a release that knew only dossiers.
    kind: Option<String>,
    payload: Option<Vec<u8>>,
}

impl Outbox {
    /// Queues the selected hub-rejected records again from their kept payloads, in one
    /// transaction. Intake rejections are never resent: they were not valid records.
    pub fn resend_rejected(
        &mut self,
        selection: ResendSelection<'_>,
    ) -> Result<ResendSummary, OutboxError> {
        let fail = sql_error(&self.path, "queue rejected records again");
        let (kind, key) = match selection {
            ResendSelection::Key(key) => (None, Some(key.to_string())),
            ResendSelection::KindKey(kind, key) => (Some(kind), Some(key.to_string())),
            ResendSelection::All => (None, None),
        };
        let now = now_ms();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&fail)?;
        let candidates = hub_rejections(&tx, kind, key.as_deref()).map_err(&fail)?;

        let mut summary = ResendSummary::default();
        for candidate in candidates {
            let Some(bytes) = &candidate.payload else {
                summary.without_payload += 1;
                continue;
            };
            let stored_kind = candidate.kind.as_deref().unwrap_or(KIND_DOSSIER);
            let seq = candidate
                .seq
                .map_or(0, |seq| u64::try_from(seq).unwrap_or(0));
            let Some(record_kind) = Kind::parse(stored_kind) else {
                return Err(OutboxError::UnknownKind {
                    path: self.path.clone(),
                    seq,
                    kind: stored_kind.to_string(),
                });
            };
            let body = payload::decode(record_kind, bytes).map_err(|source| {
                OutboxError::CorruptPayload {
                    path: self.path.clone(),
                    seq,
                    kind: stored_kind.to_string(),
                    source,
                }
            })?;
            let id = identify(&body);
            if requeue(&tx, candidate.id, &id, bytes, now).map_err(&fail)? {
                summary.requeued += 1;
            } else {
                summary.superseded += 1;
            }
        }
        tx.commit().map_err(&fail)?;
        tracing::info!(
            kind = kind.map_or("*", Kind::as_str),
            key = key.as_deref().unwrap_or("*"),
            requeued = summary.requeued,
            superseded = summary.superseded,
            without_payload = summary.without_payload,
            "hub rejections queued again"
        );
        Ok(summary)
    }
}

fn hub_rejections(
    tx: &Transaction<'_>,
    kind: Option<Kind>,
    key: Option<&str>,
) -> rusqlite::Result<Vec<Candidate>> {
    // Newest first, so when a key was rejected more than once its latest version is queued and
    // the older rows count as superseded. A NULL kind is a dossier's.
    let mut statement = tx.prepare(
        "SELECT id, seq, kind, payload FROM rejected
         WHERE origin = 'hub' AND (?1 IS NULL OR key = ?1)
           AND (?2 IS NULL OR COALESCE(kind, 'dossier') = ?2)
         ORDER BY id DESC",
    )?;
    let rows = statement.query_map(params![key, kind.map(Kind::as_str)], |row| {
        Ok(Candidate {
            id: row.get(0)?,
            seq: row.get(1)?,
            kind: row.get(2)?,
            payload: row.get(3)?,
        })
    })?;
    rows.collect()
}

/// Queues the record `id` names again unless the ledger contains a newer version or a version
/// of it is already pending. Returns whether it was queued.
fn requeue(
    tx: &Transaction<'_>,
    rejection_id: i64,
    id: &chiso_proto::record::RecordId<'_>,
    payload: &[u8],
    now: i64,
) -> rusqlite::Result<bool> {
    let kind = id.kind.as_str();
    let ledger_version: Option<i64> = tx
        .query_row(
            "SELECT version FROM ledger WHERE kind = ?1 AND key = ?2",
            params![kind, id.key],
            |row| row.get(0),
        )
        .optional()?;
    let pending: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM outbox WHERE kind = ?1 AND key = ?2)",
        params![kind, id.key],
        |row| row.get(0),
    )?;
    let version = clamp_to_i64(id.version);
    if pending || ledger_version.is_some_and(|ledger| ledger > version) {
        return Ok(false);
    }
    tx.execute(
        "INSERT INTO outbox (kind, key, version, payload, enqueued_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![kind, id.key, version, payload, now],
    )?;
    tx.execute("DELETE FROM rejected WHERE id = ?1", [rejection_id])?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use chiso_proto::v1::{RejectCode, Rejection, record};

    use super::super::test_support::{dossier, open_temp};
    use super::super::{Outbox, ResendSelection};
    use crate::record::RecordOutcome;

    fn ingest(outbox: &mut Outbox, file: &str, records: &[(&str, i64)]) {
        let outcomes = records
            .iter()
            .enumerate()
            .map(|(index, (code, hours))| RecordOutcome {
                index,
                result: Ok(dossier(code, "01", *hours)),
            })
            .collect();
        outbox.ingest(file, file, outcomes).unwrap();
    }

    fn rejection(seq: u64, key: &str) -> Rejection {
        Rejection {
            seq,
            key: key.to_string(),
            code: RejectCode::UnknownUnit as i32,
            field: "MaDonVi".into(),
            message: "unit 01 is not in the hub's catalogue".into(),
        }
    }

    fn pending(outbox: &Outbox) -> Vec<(u64, String, u64)> {
        outbox
            .pending_batch(0, 100)
            .unwrap()
            .into_iter()
            .map(|record| match record.body {
                Some(record::Body::Dossier(dossier)) => (record.seq, dossier.code, dossier.version),
                other => panic!("record {} is not a dossier: {other:?}", record.seq),
            })
            .collect()
    }

    #[test]
    fn resend_one_key_requeues_its_payload() {
        let (_dir, mut outbox) = open_temp();
        ingest(&mut outbox, "a.json", &[("A", 0), ("B", 0), ("C", 0)]);
        outbox
            .settle(3, &[rejection(1, "A"), rejection(3, "C")])
            .unwrap();
        assert!(pending(&outbox).is_empty());

        let summary = outbox.resend_rejected(ResendSelection::Key("C")).unwrap();
        assert_eq!(summary.requeued, 1);
        assert_eq!(summary.superseded + summary.without_payload, 0);
        assert_eq!(pending(&outbox), vec![(4, "C".to_string(), 1)]);
        let left: Vec<Option<String>> = outbox
            .rejects(10)
            .unwrap()
            .into_iter()
            .map(|r| r.key)
            .collect();
        assert_eq!(left, vec![Some("A".to_string())]);

        // Asking again finds nothing to resend for C.
        let again = outbox.resend_rejected(ResendSelection::Key("C")).unwrap();
        assert_eq!(again.requeued, 0);
        assert_eq!(pending(&outbox).len(), 1);
    }

    #[test]
    fn resend_all_skips_superseded_and_intake_rejections() {
        let (_dir, mut outbox) = open_temp();
        ingest(&mut outbox, "a.json", &[("A", 0), ("B", 0)]);
        outbox
            .settle(2, &[rejection(1, "A"), rejection(2, "B")])
            .unwrap();
        // B changed at the source and its version 2 is pending: the rejected version 1 is stale.
        ingest(&mut outbox, "b.json", &[("B", 5)]);
        // An intake rejection has no payload to resend.
        let bad: RecordOutcome = RecordOutcome {
            index: 0,
            result: Err(crate::record::RecordError {
                kind: chiso_proto::record::Kind::Dossier,
                key: Some("Z".into()),
                code: RejectCode::MissingField,
                field: "NgayTiepNhan".into(),
                message: "missing".into(),
                sanitized_json: "{}".into(),
            }),
        };
        outbox.ingest("c.json", "c", vec![bad]).unwrap();

        let summary = outbox.resend_rejected(ResendSelection::All).unwrap();
        assert_eq!(summary.requeued, 1);
        assert_eq!(summary.superseded, 1);
        assert_eq!(summary.without_payload, 0);
        assert_eq!(
            pending(&outbox),
            vec![(3, "B".to_string(), 2), (4, "A".to_string(), 1)]
        );
        assert_eq!(
            outbox.stats().unwrap().rejected,
            2,
            "B's stale row and Z stay"
        );
    }

    #[test]
    fn rejection_without_payload_is_counted() {
        let (_dir, mut outbox) = open_temp();
        ingest(&mut outbox, "a.json", &[("A", 0)]);
        ingest(&mut outbox, "b.json", &[("A", 3)]);
        // seq 1 was replaced by seq 2 before the hub's verdict on it, so no payload was kept.
        outbox.settle(1, &[rejection(1, "A")]).unwrap();
        outbox.settle(2, &[]).unwrap();
        let summary = outbox.resend_rejected(ResendSelection::Key("A")).unwrap();
        assert_eq!(summary.without_payload, 1);
        assert_eq!(summary.requeued, 0);
        assert!(pending(&outbox).is_empty());
    }
}
