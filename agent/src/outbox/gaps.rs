//! The agent's record of completeness gaps: `gap_days` keeps the hub's latest verdict on each
//! unit-day found incomplete, open until a later digest matches, and `reexport` lists the records
//! the hub lacks that the agent can no longer resend. `chiso-agent gaps` prints both. Closing a
//! unit-day's gap also removes its `reexport` rows, because the hub then stores every record of it.

use rusqlite::params;

use super::digest::get_day;
use super::error::{OutboxError, sql_error};
use super::{Outbox, clamp_to_i64, get_u64, now_ms};

/// A unit-day the hub last reported as incomplete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GapDay {
    /// The handling unit's code.
    pub unit_code: String,
    /// Vietnam day of receipt, as `yyyymmdd`.
    pub day: u32,
    /// Records the agent expects the hub to store.
    pub agent_count: u64,
    /// Records the hub stores.
    pub hub_count: u64,
    /// Records queued again at the last check.
    pub resent: u64,
    /// Records past retention at the last check, listed for re-export.
    pub reexport: u64,
    /// When the gap was first found, in Unix milliseconds.
    pub detected_at_ms: i64,
    /// When the hub last reported it, in Unix milliseconds.
    pub checked_at_ms: i64,
}

/// A record the hub lacks and the agent cannot resend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReexportKey {
    /// The record key, such as a dossier code.
    pub key: String,
    /// The handling unit's code.
    pub unit_code: String,
    /// Vietnam day of receipt, as `yyyymmdd`.
    pub day: u32,
    /// The version in the ledger.
    pub version: u64,
    /// When it was first listed, in Unix milliseconds.
    pub reported_at_ms: i64,
}

impl Outbox {
    /// Stores the hub's latest verdict on an incomplete unit-day. An open gap keeps its
    /// detection time, and a closed one opens again with `checked_at_ms` as its detection time.
    pub fn record_gap_day(&mut self, gap: &GapDay) -> Result<(), OutboxError> {
        self.conn
            .prepare_cached(
                "INSERT INTO gap_days (unit_code, day, agent_count, hub_count, resent, reexport,
                                       detected_at_ms, checked_at_ms, closed_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, NULL)
                 ON CONFLICT (unit_code, day) DO UPDATE SET
                     agent_count = excluded.agent_count,
                     hub_count = excluded.hub_count,
                     resent = excluded.resent,
                     reexport = excluded.reexport,
                     detected_at_ms = CASE WHEN gap_days.closed_at_ms IS NULL
                                           THEN gap_days.detected_at_ms
                                           ELSE excluded.detected_at_ms END,
                     checked_at_ms = excluded.checked_at_ms,
                     closed_at_ms = NULL",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    gap.unit_code,
                    gap.day,
                    clamp_to_i64(gap.agent_count),
                    clamp_to_i64(gap.hub_count),
                    clamp_to_i64(gap.resent),
                    clamp_to_i64(gap.reexport),
                    gap.checked_at_ms
                ])
            })
            .map_err(sql_error(&self.path, "record a completeness gap"))?;
        Ok(())
    }

    /// Closes the open gaps of the given unit-days, which the hub now reports complete, and
    /// drops their `reexport` rows. Returns how many gaps were closed.
    pub fn close_gap_days(&mut self, unit_days: &[(String, u32)]) -> Result<usize, OutboxError> {
        let fail = sql_error(&self.path, "close completeness gaps");
        let now = now_ms();
        let tx = self.conn.transaction().map_err(&fail)?;
        let mut closed = 0;
        {
            let mut close = tx
                .prepare(
                    "UPDATE gap_days SET closed_at_ms = ?3
                     WHERE unit_code = ?1 AND day = ?2 AND closed_at_ms IS NULL",
                )
                .map_err(&fail)?;
            let mut forget = tx
                .prepare("DELETE FROM reexport WHERE unit_code = ?1 AND day = ?2")
                .map_err(&fail)?;
            for (unit_code, day) in unit_days {
                closed += close.execute(params![unit_code, day, now]).map_err(&fail)?;
                forget.execute(params![unit_code, day]).map_err(&fail)?;
            }
        }
        tx.commit().map_err(&fail)?;
        Ok(closed)
    }

    /// Returns the open gaps, oldest day first.
    pub fn open_gap_days(&self) -> Result<Vec<GapDay>, OutboxError> {
        let fail = sql_error(&self.path, "read completeness gaps");
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT unit_code, day, agent_count, hub_count, resent, reexport, detected_at_ms,
                        checked_at_ms
                 FROM gap_days WHERE closed_at_ms IS NULL ORDER BY day, unit_code",
            )
            .map_err(&fail)?;
        let gaps = statement
            .query_map([], |row| {
                Ok(GapDay {
                    unit_code: row.get(0)?,
                    day: get_day(row, 1)?,
                    agent_count: get_u64(row, 2)?,
                    hub_count: get_u64(row, 3)?,
                    resent: get_u64(row, 4)?,
                    reexport: get_u64(row, 5)?,
                    detected_at_ms: row.get(6)?,
                    checked_at_ms: row.get(7)?,
                })
            })
            .map_err(&fail)?
            .collect::<Result<_, _>>()
            .map_err(&fail)?;
        Ok(gaps)
    }

    /// Returns the records to re-export from the source, by day, unit and key.
    pub fn reexport_keys(&self) -> Result<Vec<ReexportKey>, OutboxError> {
        let fail = sql_error(&self.path, "read the records to re-export");
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT key, unit_code, day, version, reported_at_ms FROM reexport
                 ORDER BY day, unit_code, key",
            )
            .map_err(&fail)?;
        let keys = statement
            .query_map([], |row| {
                Ok(ReexportKey {
                    key: row.get(0)?,
                    unit_code: row.get(1)?,
                    day: get_day(row, 2)?,
                    version: get_u64(row, 3)?,
                    reported_at_ms: row.get(4)?,
                })
            })
            .map_err(&fail)?
            .collect::<Result<_, _>>()
            .map_err(&fail)?;
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::open_temp;
    use super::GapDay;

    fn gap(unit_code: &str, day: u32, hub_count: u64, checked_at_ms: i64) -> GapDay {
        GapDay {
            unit_code: unit_code.to_string(),
            day,
            agent_count: 10,
            hub_count,
            resent: 10 - hub_count,
            reexport: 0,
            detected_at_ms: checked_at_ms,
            checked_at_ms,
        }
    }

    #[test]
    fn gap_keeps_detection_until_closed() {
        let (_dir, mut outbox) = open_temp();
        outbox
            .record_gap_day(&gap("00004", 20261001, 7, 100))
            .unwrap();
        outbox
            .record_gap_day(&gap("00004", 20261001, 9, 200))
            .unwrap();

        let open = outbox.open_gap_days().unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].hub_count, 9);
        assert_eq!(open[0].detected_at_ms, 100);
        assert_eq!(open[0].checked_at_ms, 200);

        let closed = outbox
            .close_gap_days(&[
                ("00004".to_string(), 20261001),
                ("00008".to_string(), 20261001),
            ])
            .unwrap();
        assert_eq!(closed, 1);
        assert!(outbox.open_gap_days().unwrap().is_empty());

        // Found again later: a new detection time.
        outbox
            .record_gap_day(&gap("00004", 20261001, 5, 300))
            .unwrap();
        let reopened = outbox.open_gap_days().unwrap();
        assert_eq!(reopened[0].detected_at_ms, 300);
    }

    #[test]
    fn closing_gap_forgets_reexport_rows() {
        let (_dir, mut outbox) = open_temp();
        outbox
            .conn
            .execute(
                "INSERT INTO reexport (kind, key, unit_code, day, version, reported_at_ms)
                 VALUES ('dossier', 'A', '00004', 20261001, 1, 0),
                        ('dossier', 'B', '00008', 20261001, 1, 0)",
                [],
            )
            .unwrap();
        outbox
            .close_gap_days(&[("00004".to_string(), 20261001)])
            .unwrap();
        let left: Vec<String> = outbox
            .reexport_keys()
            .unwrap()
            .into_iter()
            .map(|key| key.key)
            .collect();
        assert_eq!(left, vec!["B"]);
    }
}
