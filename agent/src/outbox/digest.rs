//! Local completeness digests: per unit and Vietnam day of receipt, the count and digest hash
//! (`chiso_proto::digest`) of the ledger's keys at their newest versions. A version the hub
//! rejected is left out and counted apart, because the hub never stores it.
//!
//! A digest is computed only while no record is pending, in one read transaction. Every key it
//! covers has then been settled, so the hub has committed it and a difference is a real gap, not
//! a record still on its way.
//!
//! NOTE: digests cover dossiers only. Procedures, feedback items, ratings and steps reach the
//! hub through the outbox like dossiers, but a gap in them is neither detected nor resent
//! ([`Outbox::requeue`] queues dossier payloads only).

use std::collections::BTreeMap;

use chiso_proto::digest::{DayDigest, KIND_DOSSIER};
use rusqlite::{Row, Statement, params};

use super::error::{OutboxError, sql_error};
use super::retain::LedgerKey;
use super::{Outbox, get_u64};

/// The digest of one unit-day of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalDigest {
    /// The handling unit's code.
    pub unit_code: String,
    /// Vietnam day of receipt, as `yyyymmdd`.
    pub day: u32,
    /// Count and hash of the keys the hub is expected to hold.
    pub digest: DayDigest,
    /// Keys whose newest version the hub rejected.
    pub rejected: u64,
}

/// Ledger rows with the hub's verdict on their version: 1 when it rejected it.
const LEDGER_ROWS: &str = "
SELECT ledger.unit_code, ledger.day, ledger.key, ledger.version, COALESCE(retained.rejected, 0)
FROM ledger
LEFT JOIN retained ON retained.kind = ledger.kind AND retained.key = ledger.key
                  AND retained.version = ledger.version
WHERE ledger.kind = ?1";

impl Outbox {
    /// Returns the digests of every unit-day from `first_day` to `last_day` (`yyyymmdd`, both
    /// included) that has records, and of each unit-day in `extra`, even an empty one. Returns
    /// `None` when records are pending, because the hub cannot have stored them yet.
    pub fn day_digests(
        &mut self,
        first_day: u32,
        last_day: u32,
        extra: &[(String, u32)],
    ) -> Result<Option<Vec<LocalDigest>>, OutboxError> {
        let fail = sql_error(&self.path, "compute completeness digests");
        // A deferred transaction reads one snapshot from its first statement on.
        let tx = self.conn.transaction().map_err(&fail)?;
        let pending: i64 = tx
            .query_row("SELECT COUNT(*) FROM outbox", [], |row| row.get(0))
            .map_err(&fail)?;
        if pending > 0 {
            return Ok(None);
        }

        let mut digests: BTreeMap<(String, u32), LocalDigest> = BTreeMap::new();
        let mut window = tx
            .prepare(&format!("{LEDGER_ROWS} AND ledger.day BETWEEN ?2 AND ?3"))
            .map_err(&fail)?;
        add_rows(
            &mut window,
            params![KIND_DOSSIER, first_day, last_day],
            &mut digests,
        )
        .map_err(&fail)?;

        let mut one_day = tx
            .prepare(&format!(
                "{LEDGER_ROWS} AND ledger.unit_code = ?2 AND ledger.day = ?3"
            ))
            .map_err(&fail)?;
        for (unit_code, day) in extra {
            if (first_day..=last_day).contains(day) {
                continue;
            }
            digests
                .entry((unit_code.clone(), *day))
                .or_insert_with(|| empty_digest(unit_code, *day));
            add_rows(
                &mut one_day,
                params![KIND_DOSSIER, unit_code, day],
                &mut digests,
            )
            .map_err(&fail)?;
        }
        Ok(Some(digests.into_values().collect()))
    }

    /// Returns the ledger keys of one unit-day at their newest versions, sorted by key.
    pub fn day_keys(&self, unit_code: &str, day: u32) -> Result<Vec<LedgerKey>, OutboxError> {
        let fail = sql_error(&self.path, "read the ledger keys of a unit-day");
        let mut statement = self
            .conn
            .prepare_cached(&format!(
                "{LEDGER_ROWS} AND ledger.unit_code = ?2 AND ledger.day = ?3 ORDER BY ledger.key"
            ))
            .map_err(&fail)?;
        let keys = statement
            .query_map(params![KIND_DOSSIER, unit_code, day], |row| {
                Ok(LedgerKey {
                    key: row.get(2)?,
                    version: get_u64(row, 3)?,
                    rejected: row.get::<_, i64>(4)? != 0,
                })
            })
            .map_err(&fail)?
            .collect::<Result<_, _>>()
            .map_err(&fail)?;
        Ok(keys)
    }
}

fn empty_digest(unit_code: &str, day: u32) -> LocalDigest {
    LocalDigest {
        unit_code: unit_code.to_string(),
        day,
        digest: DayDigest::default(),
        rejected: 0,
    }
}

fn add_rows(
    statement: &mut Statement<'_>,
    values: impl rusqlite::Params,
    digests: &mut BTreeMap<(String, u32), LocalDigest>,
) -> rusqlite::Result<()> {
    let mut rows = statement.query(values)?;
    while let Some(row) = rows.next()? {
        add_row(row, digests)?;
    }
    Ok(())
}

fn add_row(
    row: &Row<'_>,
    digests: &mut BTreeMap<(String, u32), LocalDigest>,
) -> rusqlite::Result<()> {
    let unit_code: String = row.get(0)?;
    let day = get_day(row, 1)?;
    let key: String = row.get(2)?;
    let version = get_u64(row, 3)?;
    let rejected = row.get::<_, i64>(4)? != 0;

    let entry = digests
        .entry((unit_code, day))
        .or_insert_with_key(|(unit_code, day)| empty_digest(unit_code, *day));
    if rejected {
        entry.rejected += 1;
    } else {
        entry.digest.add(KIND_DOSSIER, &key, version);
    }
    Ok(())
}

/// Reads a `yyyymmdd` day column. Intake writes only days of years 2000 to 2099.
pub(super) fn get_day(row: &Row<'_>, index: usize) -> rusqlite::Result<u32> {
    let value: i64 = row.get(index)?;
    u32::try_from(value).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(index, value))
}

#[cfg(test)]
mod tests {
    use chiso_proto::digest::{DayDigest, KIND_DOSSIER};
    use chiso_proto::v1::{Dossier, Rejection};

    use super::super::Outbox;
    use super::super::test_support::{dossier, open_temp};
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

    fn expected(records: &[(&str, u64)]) -> DayDigest {
        let mut digest = DayDigest::default();
        for (key, version) in records {
            digest.add(KIND_DOSSIER, key, *version);
        }
        digest
    }

    #[test]
    fn pending_records_defer_digest() {
        let (_dir, mut outbox) = open_temp();
        ingest(&mut outbox, "in/1.json", vec![dossier("A", "00004", 0)]);
        assert_eq!(outbox.day_digests(DAY, DAY, &[]).unwrap(), None);

        outbox.settle(1, &[]).unwrap();
        let digests = outbox.day_digests(DAY, DAY, &[]).unwrap().unwrap();
        assert_eq!(digests.len(), 1);
        assert_eq!(digests[0].unit_code, "00004");
        assert_eq!(digests[0].day, DAY);
        assert_eq!(digests[0].digest, expected(&[("A", 1)]));
    }

    #[test]
    fn digest_per_unit_day_with_versions() {
        let (_dir, mut outbox) = open_temp();
        ingest(
            &mut outbox,
            "in/1.json",
            vec![
                dossier("A", "00004", 0),
                dossier("B", "00004", 1),
                dossier("C", "00008", 2),
                dossier("D", "00004", 30),
            ],
        );
        // B changes, and the same file is ingested again without change.
        ingest(&mut outbox, "in/2.json", vec![dossier("B", "00004", 3)]);
        ingest(&mut outbox, "in/2.json", vec![dossier("B", "00004", 3)]);
        outbox.settle(u64::MAX, &[]).unwrap();

        let digests = outbox.day_digests(DAY, DAY + 1, &[]).unwrap().unwrap();
        let units: Vec<(&str, u32)> = digests
            .iter()
            .map(|digest| (digest.unit_code.as_str(), digest.day))
            .collect();
        assert_eq!(
            units,
            vec![("00004", DAY), ("00004", DAY + 1), ("00008", DAY)]
        );
        assert_eq!(digests[0].digest, expected(&[("A", 1), ("B", 2)]));
        assert_eq!(digests[1].digest, expected(&[("D", 1)]));
        assert_eq!(digests[2].digest, expected(&[("C", 1)]));
    }

    #[test]
    fn rejected_version_counted_apart() {
        let (_dir, mut outbox) = open_temp();
        ingest(
            &mut outbox,
            "in/1.json",
            vec![dossier("A", "00004", 0), dossier("B", "00004", 1)],
        );
        let rejection = Rejection {
            seq: 2,
            key: "B".into(),
            ..Rejection::default()
        };
        outbox.settle(2, &[rejection]).unwrap();

        let digests = outbox.day_digests(DAY, DAY, &[]).unwrap().unwrap();
        assert_eq!(digests[0].digest, expected(&[("A", 1)]));
        assert_eq!(digests[0].rejected, 1);
        let keys = outbox.day_keys("00004", DAY).unwrap();
        assert_eq!(keys.len(), 2);
        assert!(!keys[0].rejected);
        assert!(keys[1].rejected);
    }

    #[test]
    fn extra_days_listed_even_when_empty() {
        let (_dir, mut outbox) = open_temp();
        ingest(&mut outbox, "in/1.json", vec![dossier("A", "00004", 0)]);
        outbox.settle(1, &[]).unwrap();

        let extra = [("00004".to_string(), DAY), ("00008".to_string(), 20250101)];
        let digests = outbox
            .day_digests(20260101, 20260102, &extra)
            .unwrap()
            .unwrap();
        assert_eq!(digests.len(), 2);
        assert_eq!(digests[0].unit_code, "00004");
        assert_eq!(digests[0].digest, expected(&[("A", 1)]));
        assert_eq!(digests[1].unit_code, "00008");
        assert_eq!(digests[1].day, 20250101);
        assert_eq!(digests[1].digest, DayDigest::default());
    }
}
