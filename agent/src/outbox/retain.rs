//! Retained payloads: every record the hub acknowledged keeps its payload in `retained` for the
//! configured retention, so that a completeness gap the hub reports can be filled by queueing
//! the record again. [`Outbox::settle`] copies each settled row here in its own transaction, so
//! a record leaves the outbox and enters `retained` atomically. A record the hub rejected is kept
//! without payload and marked, so that digests leave it out. Such a row is never pruned, because
//! digests need it for as long as its version is the newest. `retained` contains one row per key, for its
//! newest acknowledged version.
//!
//! A record the hub lacks whose payload is gone (past retention, or acknowledged before this
//! table existed) cannot be resent. It is listed in `reexport` for an operator, and its ledger
//! content hash is cleared so that ingesting it again from the source queues it at the next
//! version instead of skipping it as unchanged.
//!
//! The tables are created with `IF NOT EXISTS` when the outbox opens. They only add to schema
//! version 1, so an older chiso-agent still opens the file and ignores them.

use std::path::Path;

use chiso_proto::v1::Rejection;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::error::{OutboxError, sql_error};
use super::schema::KIND_DOSSIER;
use super::{Outbox, clamp_to_i64, now_ms};

/// The retention tables, created when the outbox opens. `retained` is a WITHOUT ROWID table with
/// no index on `acked_at_ms`: its rows are small, so one B-tree keyed by (kind, key) keeps the file
/// smallest. Pruning scans it once per completeness round.
const RETENTION_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS retained (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    version INTEGER NOT NULL,
    -- NULL when the hub rejected this version.
    payload BLOB,
    rejected INTEGER NOT NULL DEFAULT 0,
    acked_at_ms INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;

-- The agent's view of each unit-day the hub last reported as incomplete.
CREATE TABLE IF NOT EXISTS gap_days (
    unit_code TEXT NOT NULL,
    day INTEGER NOT NULL,
    agent_count INTEGER NOT NULL,
    hub_count INTEGER NOT NULL,
    resent INTEGER NOT NULL,
    reexport INTEGER NOT NULL,
    detected_at_ms INTEGER NOT NULL,
    checked_at_ms INTEGER NOT NULL,
    closed_at_ms INTEGER,
    PRIMARY KEY (unit_code, day)
);

-- Records the hub lacks that the agent can no longer resend.
CREATE TABLE IF NOT EXISTS reexport (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    unit_code TEXT NOT NULL,
    day INTEGER NOT NULL,
    version INTEGER NOT NULL,
    reported_at_ms INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS reexport_unit_day ON reexport (unit_code, day);
";

/// A ledger key of one unit-day, as digests and resends see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerKey {
    /// The record key, such as a dossier code.
    pub key: String,
    /// The newest version the source gave.
    pub version: u64,
    /// True when the hub rejected this version.
    pub rejected: bool,
}

/// Outcome of [`Outbox::requeue`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequeueSummary {
    /// Records queued again from their retained payload.
    pub queued: usize,
    /// Records left alone because a version of them is already pending.
    pub pending: usize,
    /// Records without a retained payload, now listed in `reexport`.
    pub reexport: Vec<LedgerKey>,
}

/// Creates the retention tables unless they exist.
///
/// Another process may create them first, or hold the write lock for longer than the busy
/// timeout while it ingests a file. Either way the tables count as created once they exist.
pub(super) fn create_tables(conn: &Connection, path: &Path) -> Result<(), OutboxError> {
    let fail = sql_error(path, "create the retention tables");
    // Checking first keeps a read-only command such as `status` from taking the write lock.
    if tables_exist(conn).map_err(&fail)? {
        return Ok(());
    }
    let created = Transaction::new_unchecked(conn, TransactionBehavior::Immediate).and_then(|tx| {
        tx.execute_batch(RETENTION_SCHEMA)?;
        tx.commit()
    });
    match created {
        Ok(()) => Ok(()),
        Err(_) if tables_exist(conn).map_err(&fail)? => Ok(()),
        Err(error) => Err(fail(error)),
    }
}

fn tables_exist(conn: &Connection) -> rusqlite::Result<bool> {
    // `reexport` is created last, in the same transaction as the others.
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'reexport')",
        [],
        |row| row.get(0),
    )
}

/// Copies the pending rows up to `up_to_seq` into `retained` before settling deletes them. Rows
/// named in `rejections` are kept without payload and marked rejected. Keys queued again after a
/// `reexport` listing leave that list.
pub(super) fn retain_settled(
    tx: &Transaction<'_>,
    up_to_seq: u64,
    rejections: &[Rejection],
    now: i64,
) -> rusqlite::Result<()> {
    let up_to = clamp_to_i64(up_to_seq);
    tx.prepare_cached(
        "INSERT INTO retained (kind, key, version, payload, rejected, acked_at_ms)
         SELECT kind, key, version, payload, 0, ?2 FROM outbox WHERE seq <= ?1
         ON CONFLICT (kind, key) DO UPDATE SET
             version = excluded.version,
             payload = excluded.payload,
             rejected = 0,
             acked_at_ms = excluded.acked_at_ms
         WHERE excluded.version >= retained.version",
    )?
    .execute(params![up_to, now])?;

    let mut mark = tx.prepare_cached(
        "UPDATE retained SET rejected = 1, payload = NULL
         WHERE (kind, key, version) = (SELECT kind, key, version FROM outbox WHERE seq = ?1)",
    )?;
    for rejection in rejections.iter().filter(|r| r.seq <= up_to_seq) {
        mark.execute([clamp_to_i64(rejection.seq)])?;
    }

    tx.prepare_cached(
        "DELETE FROM reexport WHERE EXISTS (
             SELECT 1 FROM outbox
             WHERE outbox.seq <= ?1 AND outbox.kind = reexport.kind AND outbox.key = reexport.key)",
    )?
    .execute([up_to])?;
    Ok(())
}

impl Outbox {
    /// Deletes the payloads of stored records acknowledged before `acked_before_ms` (Unix
    /// milliseconds) and returns how many were deleted. Rejected markers stay.
    pub fn prune_retained(&mut self, acked_before_ms: i64) -> Result<usize, OutboxError> {
        let pruned = self
            .conn
            .execute(
                "DELETE FROM retained WHERE rejected = 0 AND acked_at_ms < ?1",
                [acked_before_ms],
            )
            .map_err(sql_error(&self.path, "prune retained payloads"))?;
        if pruned > 0 {
            tracing::info!(
                pruned,
                acked_before_ms,
                "retained payloads past retention deleted"
            );
        }
        Ok(pruned)
    }

    /// Queues again, in one transaction, the records of one unit-day that the hub lacks.
    ///
    /// A key with a pending version is left alone, because that version will reach the hub. A
    /// key whose retained payload at its ledger version is gone is listed in `reexport`, and its
    /// ledger content hash is cleared so that the next ingest of the record queues it again.
    pub fn requeue(
        &mut self,
        unit_code: &str,
        day: u32,
        keys: &[LedgerKey],
    ) -> Result<RequeueSummary, OutboxError> {
        let fail = sql_error(&self.path, "queue records again for the hub");
        let now = now_ms();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&fail)?;
        let mut summary = RequeueSummary::default();
        for key in keys {
            match requeue_one(&tx, key, now).map_err(&fail)? {
                Requeued::Queued => summary.queued += 1,
                Requeued::Pending => summary.pending += 1,
                Requeued::NoPayload => {
                    list_for_reexport(&tx, unit_code, day, key, now).map_err(&fail)?;
                    summary.reexport.push(key.clone());
                }
            }
        }
        tx.commit().map_err(&fail)?;
        Ok(summary)
    }
}

enum Requeued {
    Queued,
    Pending,
    NoPayload,
}

fn requeue_one(tx: &Transaction<'_>, key: &LedgerKey, now: i64) -> rusqlite::Result<Requeued> {
    let pending: bool = tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM outbox WHERE kind = ?1 AND key = ?2)")?
        .query_row(params![KIND_DOSSIER, key.key], |row| row.get(0))?;
    if pending {
        return Ok(Requeued::Pending);
    }

    let payload: Option<Vec<u8>> = tx
        .prepare_cached(
            "SELECT payload FROM retained
             WHERE kind = ?1 AND key = ?2 AND version = ?3 AND rejected = 0",
        )?
        .query_row(
            params![KIND_DOSSIER, key.key, clamp_to_i64(key.version)],
            |row| row.get(0),
        )
        .optional()?
        .flatten();
    let Some(payload) = payload else {
        return Ok(Requeued::NoPayload);
    };
    tx.prepare_cached(
        "INSERT INTO outbox (kind, key, version, payload, enqueued_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        KIND_DOSSIER,
        key.key,
        clamp_to_i64(key.version),
        payload,
        now
    ])?;
    Ok(Requeued::Queued)
}

fn list_for_reexport(
    tx: &Transaction<'_>,
    unit_code: &str,
    day: u32,
    key: &LedgerKey,
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO reexport (kind, key, unit_code, day, version, reported_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (kind, key) DO UPDATE SET
             unit_code = excluded.unit_code,
             day = excluded.day,
             version = excluded.version",
    )?
    .execute(params![
        KIND_DOSSIER,
        key.key,
        unit_code,
        day,
        clamp_to_i64(key.version),
        now
    ])?;
    // An empty hash equals no content hash, so the next ingest of the record counts as a change.
    tx.prepare_cached("UPDATE ledger SET content_hash = x'' WHERE kind = ?1 AND key = ?2")?
        .execute(params![KIND_DOSSIER, key.key])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use chiso_proto::v1::{Dossier, RejectCode, Rejection};
    use prost::Message;

    use super::super::Outbox;
    use super::super::test_support::{dossier, open_temp};
    use super::LedgerKey;
    use crate::record::RecordOutcome;

    /// Day of `test_support::RECEIVED_AT` in Vietnam.
    const DAY: u32 = 20261001;

    fn ingest(outbox: &mut Outbox, file: &str, dossiers: Vec<Dossier>) {
        let outcomes = dossiers
            .into_iter()
            .enumerate()
            .map(|(index, dossier)| RecordOutcome {
                index,
                result: Ok(dossier),
            })
            .collect();
        outbox.ingest(file, file, outcomes).unwrap();
    }

    fn retained(outbox: &Outbox, key: &str) -> Option<(i64, Option<Vec<u8>>, bool)> {
        outbox
            .conn
            .query_row(
                "SELECT version, payload, rejected FROM retained WHERE key = ?1",
                [key],
                |row| Ok((row.get(0)?, row.get(1)?, row.get::<_, i64>(2)? != 0)),
            )
            .ok()
    }

    fn ledger_key(key: &str, version: u64) -> LedgerKey {
        LedgerKey {
            key: key.to_string(),
            version,
            rejected: false,
        }
    }

    fn pending_keys(outbox: &Outbox) -> Vec<(i64, String, i64)> {
        let mut statement = outbox
            .conn
            .prepare("SELECT seq, key, version FROM outbox ORDER BY seq")
            .unwrap();
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn settle_keeps_payloads_and_marks_rejections() {
        let (_dir, mut outbox) = open_temp();
        ingest(
            &mut outbox,
            "in/1.json",
            vec![dossier("A", "01", 0), dossier("B", "01", 0)],
        );
        let rejection = Rejection {
            seq: 2,
            key: "B".into(),
            code: RejectCode::InvalidValue as i32,
            ..Rejection::default()
        };
        outbox.settle(2, &[rejection]).unwrap();

        let (version, payload, rejected) = retained(&outbox, "A").unwrap();
        assert_eq!(version, 1);
        assert!(!rejected);
        let retained_dossier = Dossier::decode(payload.unwrap().as_slice()).unwrap();
        assert_eq!(retained_dossier.code, "A");
        assert_eq!(retained_dossier.version, 1);

        let (version, payload, rejected) = retained(&outbox, "B").unwrap();
        assert_eq!(version, 1);
        assert_eq!(payload, None);
        assert!(rejected);
    }

    #[test]
    fn newer_version_replaces_retained_row() {
        let (_dir, mut outbox) = open_temp();
        ingest(&mut outbox, "in/1.json", vec![dossier("A", "01", 0)]);
        outbox.settle(1, &[]).unwrap();
        ingest(&mut outbox, "in/2.json", vec![dossier("A", "01", 5)]);
        outbox.settle(2, &[]).unwrap();

        let (version, payload, _) = retained(&outbox, "A").unwrap();
        assert_eq!(version, 2);
        let retained_dossier = Dossier::decode(payload.unwrap().as_slice()).unwrap();
        assert_eq!(retained_dossier.version, 2);
        let rows: i64 = outbox
            .conn
            .query_row("SELECT COUNT(*) FROM retained", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 1);
    }

    #[test]
    fn prune_drops_old_payloads_only() {
        let (_dir, mut outbox) = open_temp();
        ingest(
            &mut outbox,
            "in/1.json",
            vec![dossier("A", "01", 0), dossier("B", "01", 0)],
        );
        let rejection = Rejection {
            seq: 2,
            key: "B".into(),
            ..Rejection::default()
        };
        outbox.settle(2, &[rejection]).unwrap();

        assert_eq!(outbox.prune_retained(0).unwrap(), 0, "nothing is that old");
        assert_eq!(outbox.prune_retained(i64::MAX).unwrap(), 1);
        assert_eq!(retained(&outbox, "A"), None);
        assert!(
            retained(&outbox, "B").unwrap().2,
            "the rejected marker stays"
        );
    }

    #[test]
    fn requeue_uses_retained_payload() {
        let (_dir, mut outbox) = open_temp();
        ingest(
            &mut outbox,
            "in/1.json",
            vec![dossier("A", "01", 0), dossier("B", "01", 0)],
        );
        outbox.settle(2, &[]).unwrap();

        let summary = outbox.requeue("01", DAY, &[ledger_key("A", 1)]).unwrap();
        assert_eq!(summary.queued, 1);
        assert_eq!(summary.pending, 0);
        assert!(summary.reexport.is_empty());
        assert_eq!(pending_keys(&outbox), vec![(3, "A".to_string(), 1)]);

        // A key already pending is left alone.
        let again = outbox.requeue("01", DAY, &[ledger_key("A", 1)]).unwrap();
        assert_eq!(again.queued, 0);
        assert_eq!(again.pending, 1);
        assert_eq!(pending_keys(&outbox).len(), 1);
    }

    #[test]
    fn requeue_without_payload_lists_for_reexport() {
        let (_dir, mut outbox) = open_temp();
        ingest(&mut outbox, "in/1.json", vec![dossier("A", "01", 0)]);
        outbox.settle(1, &[]).unwrap();
        outbox.prune_retained(i64::MAX).unwrap();

        let summary = outbox.requeue("01", DAY, &[ledger_key("A", 1)]).unwrap();
        assert_eq!(summary.queued, 0);
        assert_eq!(summary.reexport, vec![ledger_key("A", 1)]);
        let listed = outbox.reexport_keys().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].key, "A");
        assert_eq!(listed[0].unit_code, "01");
        assert_eq!(listed[0].day, DAY);
        assert_eq!(listed[0].version, 1);

        // Ingesting the same content again now queues it, at the next version.
        ingest(&mut outbox, "in/1-again.json", vec![dossier("A", "01", 0)]);
        assert_eq!(pending_keys(&outbox), vec![(2, "A".to_string(), 2)]);
        outbox.settle(2, &[]).unwrap();
        assert!(
            outbox.reexport_keys().unwrap().is_empty(),
            "settling it clears the listing"
        );
    }
}
