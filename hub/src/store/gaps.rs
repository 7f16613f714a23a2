//! The gap bookkeeping of completeness comparisons: the `gaps` rows of each source, unit and
//! day found incomplete, and the agents' reported daily counts in `reported_counts`. These
//! functions run inside the writer's transaction, called by the comparison in `reconcile`.

use std::collections::BTreeSet;

use rusqlite::{Connection, params};

use super::StoreError;
use super::reconcile::{Request, UnitDayKey, get_day};

/// Returns the unit-days of a source whose gap is open.
pub(super) fn open_gap_days(
    conn: &Connection,
    locality: &str,
) -> Result<BTreeSet<UnitDayKey>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT unit_code, day FROM gaps WHERE source = ?1 AND closed_at_ms IS NULL",
    )?;
    let days = statement
        .query_map([locality], |row| Ok((row.get(0)?, get_day(row, 1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(days)
}

/// Updates the open gap of a unit-day with the latest counts, or opens one.
pub(super) fn record_gap(
    conn: &Connection,
    locality: &str,
    (unit_code, day): &UnitDayKey,
    agent_count: u64,
    hub_count: u64,
    now_ms: i64,
) -> Result<(), StoreError> {
    let values = params![
        locality,
        unit_code,
        day,
        to_i64(agent_count),
        to_i64(hub_count),
        now_ms
    ];
    let updated = conn
        .prepare_cached(
            "UPDATE gaps SET agent_count = ?4, hub_count = ?5, checked_at_ms = ?6
             WHERE source = ?1 AND unit_code = ?2 AND day = ?3 AND closed_at_ms IS NULL",
        )?
        .execute(values)?;
    if updated == 0 {
        // The source is the agent's province, which is also the province of each of its units.
        conn.prepare_cached(
            "INSERT INTO gaps (source, province_code, unit_code, day, agent_count, hub_count,
                               detected_at_ms, checked_at_ms)
             VALUES (?1, ?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        )?
        .execute(values)?;
    }
    Ok(())
}

pub(super) fn close_gap(
    conn: &Connection,
    locality: &str,
    (unit_code, day): &UnitDayKey,
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE gaps SET closed_at_ms = ?4, checked_at_ms = ?4
         WHERE source = ?1 AND unit_code = ?2 AND day = ?3 AND closed_at_ms IS NULL",
    )?
    .execute(params![locality, unit_code, day, now_ms])?;
    Ok(())
}

/// Replaces the agent's reported counts: every day of the window, then each listed day.
pub(super) fn store_reported(
    conn: &Connection,
    locality: &str,
    request: &Request,
    now_ms: i64,
) -> Result<(), StoreError> {
    if let Some((first, last)) = request.window {
        // A unit-day of the window that the digest does not list has no records at the agent.
        conn.prepare_cached(
            "DELETE FROM reported_counts WHERE source = ?1 AND day BETWEEN ?2 AND ?3",
        )?
        .execute(params![locality, first, last])?;
    }
    let mut upsert = conn.prepare_cached(
        "INSERT INTO reported_counts (source, province_code, unit_code, day, agent_count,
                                      rejected_count, reported_at_ms)
         VALUES (?1, ?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (source, unit_code, day) DO UPDATE SET
             agent_count = excluded.agent_count,
             rejected_count = excluded.rejected_count,
             reported_at_ms = excluded.reported_at_ms",
    )?;
    for ((unit_code, day), agent) in &request.days {
        upsert.execute(params![
            locality,
            unit_code,
            day,
            to_i64(agent.digest.count),
            to_i64(agent.rejected),
            now_ms
        ])?;
    }
    Ok(())
}

/// Converts a count for SQLite, saturating at `i64::MAX`.
fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
