//! Storing the record kinds besides dossiers. Each insert replaces a stored row of the same key
//! only when its version is higher, and reports whether a row changed.

use chiso_proto::v1::{DossierStep, Feedback, Procedure, Rating};
use chiso_proto::vntime::{day_number, vietnam_day};
use rusqlite::{Connection, params};

use super::StoreError;

fn day(instant: i64) -> i64 {
    day_number(vietnam_day(instant))
}

fn version(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Stores a procedure under its key (`unit/code`).
pub(super) fn upsert_procedure(
    conn: &Connection,
    source: &str,
    key: &str,
    procedure: &Procedure,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "INSERT INTO procedures (source, key, code, version, unit_code, province_code,
                 announced_day, announce_due_day, published_day, publish_due_day,
                 content_complete, online_level, fee_bearing, payable_online, for_citizens,
                 population_connected, abolished_day, stored_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?1, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
             ON CONFLICT (source, key) DO UPDATE SET
                 version = excluded.version,
                 announced_day = excluded.announced_day,
                 announce_due_day = excluded.announce_due_day,
                 published_day = excluded.published_day,
                 publish_due_day = excluded.publish_due_day,
                 content_complete = excluded.content_complete,
                 online_level = excluded.online_level,
                 fee_bearing = excluded.fee_bearing,
                 payable_online = excluded.payable_online,
                 for_citizens = excluded.for_citizens,
                 population_connected = excluded.population_connected,
                 abolished_day = excluded.abolished_day,
                 stored_at_ms = excluded.stored_at_ms
             WHERE excluded.version > procedures.version",
        )?
        .execute(params![
            source,
            key,
            procedure.code,
            version(procedure.version),
            procedure.unit_code,
            procedure.announced_at.map(day),
            procedure.announce_due_at.map(day),
            procedure.published_at.map(day),
            procedure.publish_due_at.map(day),
            procedure.content_complete,
            procedure.online_level,
            procedure.fee_bearing,
            procedure.payable_online,
            procedure.for_citizens,
            procedure.population_connected,
            procedure.abolished_at.map(day),
            now_ms,
        ])?;
    Ok(changed == 1)
}

/// Stores a feedback item.
pub(super) fn upsert_feedback(
    conn: &Connection,
    source: &str,
    feedback: &Feedback,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "INSERT INTO feedback (source, code, version, unit_code, province_code, received_day,
                 due_day, finished_day, topic, dissatisfied, recomplained, dossier_code,
                 stored_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?1, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT (source, code) DO UPDATE SET
                 version = excluded.version,
                 unit_code = excluded.unit_code,
                 received_day = excluded.received_day,
                 due_day = excluded.due_day,
                 finished_day = excluded.finished_day,
                 topic = excluded.topic,
                 dissatisfied = excluded.dissatisfied,
                 recomplained = excluded.recomplained,
                 dossier_code = excluded.dossier_code,
                 stored_at_ms = excluded.stored_at_ms
             WHERE excluded.version > feedback.version",
        )?
        .execute(params![
            source,
            feedback.code,
            version(feedback.version),
            feedback.unit_code,
            day(feedback.received_at),
            feedback.due_at.map(day),
            feedback.finished_at.map(day),
            feedback.topic,
            feedback.dissatisfied,
            feedback.recomplained,
            feedback.dossier_code,
            now_ms,
        ])?;
    Ok(changed == 1)
}

/// Stores a rating.
pub(super) fn upsert_rating(
    conn: &Connection,
    source: &str,
    rating: &Rating,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "INSERT INTO ratings (source, code, version, unit_code, province_code, dossier_code,
                 rated_day, level, stored_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?1, ?5, ?6, ?7, ?8)
             ON CONFLICT (source, code) DO UPDATE SET
                 version = excluded.version,
                 unit_code = excluded.unit_code,
                 dossier_code = excluded.dossier_code,
                 rated_day = excluded.rated_day,
                 level = excluded.level,
                 stored_at_ms = excluded.stored_at_ms
             WHERE excluded.version > ratings.version",
        )?
        .execute(params![
            source,
            rating.code,
            version(rating.version),
            rating.unit_code,
            rating.dossier_code,
            day(rating.rated_at),
            rating.level,
            now_ms,
        ])?;
    Ok(changed == 1)
}

/// Stores a processing step of a dossier.
pub(super) fn upsert_step(
    conn: &Connection,
    source: &str,
    step: &DossierStep,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "INSERT INTO dossier_steps (source, dossier_code, step, version, unit_code, status,
                 at_day, due_day, finished_day, stored_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (source, dossier_code, step) DO UPDATE SET
                 version = excluded.version,
                 unit_code = excluded.unit_code,
                 status = excluded.status,
                 at_day = excluded.at_day,
                 due_day = excluded.due_day,
                 finished_day = excluded.finished_day,
                 stored_at_ms = excluded.stored_at_ms
             WHERE excluded.version > dossier_steps.version",
        )?
        .execute(params![
            source,
            step.dossier_code,
            step.step,
            version(step.version),
            step.unit_code,
            step.status,
            day(step.at),
            step.due_at.map(day),
            step.finished_at.map(day),
            now_ms,
        ])?;
    Ok(changed == 1)
}
