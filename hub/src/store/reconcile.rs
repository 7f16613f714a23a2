//! Completeness: comparing an agent's digest with the stored dossiers, recording the gaps, and
//! keeping the unit's own daily counts that the sync indicator divides by.
//!
//! A digest lists, per unit and Vietnam day of receipt, the count and digest hash of the records
//! the agent expects the hub to hold (see `chiso_proto::digest`). The writer thread runs the whole
//! comparison as one job. It hashes the stored rows of each unit-day in the digest's window and
//! of each listed unit-day outside it, compares them, opens or updates a row in `gaps` for every
//! mismatch, and closes the open gap of every unit-day that matches again. It then replaces the
//! agent's reported counts of those days in `reported_counts`, all in the same transaction. The hub hashes its
//! rows at every digest rather than keeping running sums, so rows lost or deleted behind the
//! store's back are found too. For each mismatched unit-day the report carries the hub's keys and
//! versions, up to [`MAX_GAP_KEYS`] in one report, so the agent can resend what the hub lacks.
//! Comparing an agent's digest never changes any dossier and is idempotent.
//!
//! NOTE: the job holds the write transaction while it reads and hashes the window's rows, which
//! delays other agents' batches in the same group commit. A 62-day window of a province with
//! 600,000 dossiers a year is about 100,000 rows; the cost was not measured.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use chiso_proto::digest::{DayDigest, KIND_DOSSIER, MAX_WINDOW_DAYS, day_from_number};
use chiso_proto::units::UnitCatalogue;
use chiso_proto::v1::{DigestBatch, GapReport, KeyVersion, UnitDay, UnitDayGap};
use rusqlite::{Connection, Row, params};
use tokio::sync::oneshot;

use super::gaps::{close_gap, open_gap_days, record_gap, store_reported};
use super::writer::Job;
use super::{StoreError, StoreHandle};

/// Maximum number of hub keys listed in one gap report, summed over its gaps. At about 30 bytes a key this
/// keeps a report near 600 KB, below the 4 MiB default message limit of both sides.
pub const MAX_GAP_KEYS: usize = 20_000;

/// Maximum number of gaps logged one by one per digest. The rest are only counted.
const MAX_LOGGED_GAPS: usize = 10;

/// Schema version 2: the tables of completeness and the hub's own arrival time of each dossier.
pub(super) const MIGRATION_TO_V2: &str = "
-- The hub's clock when it first stored the dossier. Version-1 rows only know when their current
-- version was stored, which is the closest value available.
ALTER TABLE dossiers ADD COLUMN received_by_hub_ms INTEGER;
UPDATE dossiers SET received_by_hub_ms = stored_at_ms;
CREATE INDEX dossiers_source_received ON dossiers (source, received_day);

ALTER TABLE agents ADD COLUMN last_digest_ms INTEGER;

-- One row per detected gap. At most one gap per source, unit and day is open at a time.
CREATE TABLE gaps (
    id             INTEGER PRIMARY KEY,
    source         TEXT NOT NULL,
    province_code  TEXT NOT NULL,
    unit_code      TEXT NOT NULL,
    day            INTEGER NOT NULL,
    agent_count    INTEGER NOT NULL,
    hub_count      INTEGER NOT NULL,
    detected_at_ms INTEGER NOT NULL,
    checked_at_ms  INTEGER NOT NULL,
    closed_at_ms   INTEGER
);
CREATE UNIQUE INDEX gaps_open ON gaps (source, unit_code, day) WHERE closed_at_ms IS NULL;
CREATE INDEX gaps_province_day ON gaps (province_code, day);
CREATE INDEX gaps_unit_day ON gaps (unit_code, day);

-- The latest count each agent reported per unit and day of receipt.
CREATE TABLE reported_counts (
    source         TEXT NOT NULL,
    province_code  TEXT NOT NULL,
    unit_code      TEXT NOT NULL,
    day            INTEGER NOT NULL,
    agent_count    INTEGER NOT NULL,
    rejected_count INTEGER NOT NULL,
    reported_at_ms INTEGER NOT NULL,
    PRIMARY KEY (source, unit_code, day)
);
CREATE INDEX reported_counts_province_day ON reported_counts (province_code, day);
CREATE INDEX reported_counts_unit_day ON reported_counts (unit_code, day);
";

/// A unit code and a `yyyymmdd` day.
pub(super) type UnitDayKey = (String, u32);

/// One unit-day as the agent reported it.
#[derive(Debug, Clone, Copy)]
pub(super) struct AgentDay {
    pub(super) digest: DayDigest,
    pub(super) rejected: u64,
}

/// A digest after its checks.
pub(super) struct Request {
    pub(super) window: Option<(u32, u32)>,
    pub(super) days: BTreeMap<UnitDayKey, AgentDay>,
}

impl Request {
    fn in_window(&self, day: u32) -> bool {
        self.window
            .is_some_and(|(first, last)| (first..=last).contains(&day))
    }
}

impl StoreHandle {
    /// Compares a completeness digest from the agent of `locality` with the stored dossiers and
    /// returns the gap report once the gaps and counts are committed.
    ///
    /// Callers must queue it after every batch the agent sent before the digest, so that the
    /// comparison covers them. The writer runs jobs in the order they were queued.
    pub fn reconcile(
        &self,
        locality: &str,
        digest: DigestBatch,
    ) -> impl Future<Output = Result<GapReport, StoreError>> + Send + 'static {
        let (reply, response) = oneshot::channel();
        let queued = self.inner.jobs.send(Job::Reconcile {
            locality: locality.to_string(),
            digest,
            reply,
        });
        let queued = queued.is_ok();
        async move {
            if !queued {
                return Err(StoreError::Closed);
            }
            response.await.map_err(|_| StoreError::Closed)?
        }
    }
}

/// Runs the comparison inside the writer's transaction, as the module documentation describes.
pub(super) fn reconcile(
    conn: &Connection,
    catalogue: &UnitCatalogue,
    locality: &str,
    digest: &DigestBatch,
    now_ms: i64,
) -> Result<GapReport, StoreError> {
    let request = check_digest(catalogue, locality, digest)?;
    let stored = stored_digests(conn, locality, &request)?;
    let open = open_gap_days(conn, locality)?;

    // Unit-days to compare: what either side holds, and open gaps the digest covers.
    let mut compared: BTreeSet<UnitDayKey> = request.days.keys().cloned().collect();
    compared.extend(stored.keys().cloned());
    compared.extend(
        open.iter()
            .filter(|(_, day)| request.in_window(*day))
            .cloned(),
    );

    let mut report = GapReport {
        digest_id: digest.digest_id,
        ..GapReport::default()
    };
    let mut key_budget = MAX_GAP_KEYS;
    for unit_day in &compared {
        let agent = request
            .days
            .get(unit_day)
            .map_or_else(DayDigest::default, |day| day.digest);
        let hub = stored.get(unit_day).copied().unwrap_or_default();
        if agent == hub {
            report.matched += 1;
            if open.contains(unit_day) {
                close_gap(conn, locality, unit_day, now_ms)?;
            }
            continue;
        }
        record_gap(conn, locality, unit_day, agent.count, hub.count, now_ms)?;
        let gap = gap_with_keys(
            conn,
            locality,
            unit_day,
            agent.count,
            hub.count,
            &mut key_budget,
        )?;
        report.gaps.push(gap);
    }

    report.open_days = open
        .into_iter()
        .filter(|unit_day| !compared.contains(unit_day))
        .map(|(unit_code, day)| UnitDay { unit_code, day })
        .collect();
    store_reported(conn, locality, &request, now_ms)?;
    conn.prepare_cached("UPDATE agents SET last_digest_ms = ?2 WHERE locality = ?1")?
        .execute(params![locality, now_ms])?;
    log_report(locality, &report);
    Ok(report)
}

/// Checks the window and every entry, and drops entries for units outside the locality.
fn check_digest(
    catalogue: &UnitCatalogue,
    locality: &str,
    digest: &DigestBatch,
) -> Result<Request, StoreError> {
    let invalid = |reason: String| StoreError::InvalidDigest {
        locality: locality.to_string(),
        digest_id: digest.digest_id,
        reason,
    };
    let window = match (digest.first_day, digest.last_day) {
        (0, 0) => None,
        (first, last) => {
            let (Some(first_date), Some(last_date)) =
                (day_from_number(first), day_from_number(last))
            else {
                return Err(invalid(format!(
                    "window {first} to {last} is not two real days"
                )));
            };
            let span = (last_date - first_date).num_days() + 1;
            if !(1..=i64::from(MAX_WINDOW_DAYS)).contains(&span) {
                return Err(invalid(format!(
                    "window {first} to {last} spans {span} days"
                )));
            }
            Some((first, last))
        }
    };

    let mut days = BTreeMap::new();
    let mut foreign_units = 0usize;
    for entry in &digest.days {
        if day_from_number(entry.day).is_none() {
            return Err(invalid(format!(
                "unit {} has day {}, which is not a real yyyymmdd day",
                entry.unit_code, entry.day
            )));
        }
        // The agent checked its units at intake against the same catalogue, so a unit outside
        // the locality means the two catalogues differ. Its records were never stored here.
        if !catalogue.is_within(&entry.unit_code, locality) {
            foreign_units += 1;
            continue;
        }
        let day = AgentDay {
            digest: DayDigest {
                count: entry.count,
                hash: entry.hash,
            },
            rejected: entry.rejected,
        };
        if days
            .insert((entry.unit_code.clone(), entry.day), day)
            .is_some()
        {
            return Err(invalid(format!(
                "unit {} day {} is listed twice",
                entry.unit_code, entry.day
            )));
        }
    }
    if foreign_units > 0 {
        tracing::warn!(
            locality,
            digest_id = digest.digest_id,
            foreign_units,
            "digest entries for units outside the locality ignored"
        );
    }
    Ok(Request { window, days })
}

/// Hashes the stored dossiers of every unit-day in the window and of each listed unit-day
/// outside it.
fn stored_digests(
    conn: &Connection,
    locality: &str,
    request: &Request,
) -> Result<BTreeMap<UnitDayKey, DayDigest>, StoreError> {
    let mut stored = BTreeMap::new();
    if let Some((first, last)) = request.window {
        let mut statement = conn.prepare_cached(
            "SELECT unit_code, received_day, code, version FROM dossiers
             WHERE source = ?1 AND received_day BETWEEN ?2 AND ?3",
        )?;
        let mut rows = statement.query(params![locality, first, last])?;
        while let Some(row) = rows.next()? {
            add_stored_row(&mut stored, row)?;
        }
    }

    let mut statement = conn.prepare_cached(
        "SELECT unit_code, received_day, code, version FROM dossiers
         WHERE source = ?1 AND unit_code = ?2 AND received_day = ?3",
    )?;
    for (unit_code, day) in request.days.keys() {
        if request.in_window(*day) {
            continue;
        }
        let mut rows = statement.query(params![locality, unit_code, day])?;
        while let Some(row) = rows.next()? {
            add_stored_row(&mut stored, row)?;
        }
    }
    Ok(stored)
}

fn add_stored_row(
    stored: &mut BTreeMap<UnitDayKey, DayDigest>,
    row: &Row<'_>,
) -> rusqlite::Result<()> {
    let unit_code: String = row.get(0)?;
    let day = get_day(row, 1)?;
    let code: String = row.get(2)?;
    let version: i64 = row.get(3)?;
    let version = u64::try_from(version).unwrap_or(0);
    stored
        .entry((unit_code, day))
        .or_default()
        .add(KIND_DOSSIER, &code, version);
    Ok(())
}

/// Reads a `yyyymmdd` day column. The store writes only days of years 2000 to 2099.
pub(super) fn get_day(row: &Row<'_>, index: usize) -> rusqlite::Result<u32> {
    let value: i64 = row.get(index)?;
    u32::try_from(value).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(index, value))
}

/// Builds a report entry with the hub's keys, unless they would exceed the remaining budget.
fn gap_with_keys(
    conn: &Connection,
    locality: &str,
    (unit_code, day): &UnitDayKey,
    agent_count: u64,
    hub_count: u64,
    key_budget: &mut usize,
) -> Result<UnitDayGap, StoreError> {
    let mut gap = UnitDayGap {
        unit_code: unit_code.clone(),
        day: *day,
        agent_count,
        hub_count,
        ..UnitDayGap::default()
    };
    let needed = usize::try_from(hub_count).unwrap_or(usize::MAX);
    if needed > *key_budget {
        gap.hub_keys_omitted = true;
        return Ok(gap);
    }
    *key_budget -= needed;

    let mut statement = conn.prepare_cached(
        "SELECT code, version FROM dossiers
         WHERE source = ?1 AND unit_code = ?2 AND received_day = ?3 ORDER BY code",
    )?;
    gap.hub_keys = statement
        .query_map(params![locality, unit_code, day], |row| {
            let version: i64 = row.get(1)?;
            Ok(KeyVersion {
                key: row.get(0)?,
                version: u64::try_from(version).unwrap_or(0),
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(gap)
}

fn log_report(locality: &str, report: &GapReport) {
    for gap in report.gaps.iter().take(MAX_LOGGED_GAPS) {
        tracing::warn!(
            locality,
            unit = %gap.unit_code,
            day = gap.day,
            agent_count = gap.agent_count,
            hub_count = gap.hub_count,
            "completeness gap found; the agent is asked to resend"
        );
    }
    tracing::info!(
        locality,
        digest_id = report.digest_id,
        matched = report.matched,
        gaps = report.gaps.len(),
        open_days_outside = report.open_days.len(),
        "completeness digest compared"
    );
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
