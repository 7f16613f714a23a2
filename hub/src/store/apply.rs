//! The work of one job inside its savepoint: applying a batch, or recording a hello.
//!
//! A batch's records are handled in sequence order. A record at or below the agent's watermark
//! is a replay and changes nothing. A newer record is checked with the shared rules of
//! `chiso_proto::validate`: first that its unit lies within the locality, then its kind's
//! fields. A failing record becomes a stored rejection, and nothing of it reaches the record
//! tables. A valid record replaces the stored one of the same key only when its version is
//! higher, and a stored final dossier status (9 processed, 10 returned) never moves back to an
//! earlier one. Each stored change updates the counters (see `crate::counters`), and the
//! watermark then rises to the batch's last sequence number, all in the same transaction.

use chiso_proto::record::identify;
use chiso_proto::units::UnitCatalogue;
use chiso_proto::v1::record::Body;
use chiso_proto::v1::{Ack, Batch, Dossier, RejectCode, Rejection};
use chiso_proto::validate::{
    Invalid, check_dossier, check_feedback, check_procedure, check_rating, check_status_change,
    check_step, check_unit, rejection_key,
};
use chiso_proto::vntime::{day_number, vietnam_day};
use chrono::NaiveDate;
use rusqlite::{Connection, OptionalExtension, params};

use super::kinds;
use super::writer::Welcome;
use super::{MAX_HELLO_REJECTIONS, StoreError};
use crate::counters::{self, CounterRules, Delta};

/// Outcome of one record above the watermark.
enum Applied {
    Stored,
    Unchanged,
    Rejected(Rejection),
}

const UPSERT_DOSSIER: &str = "
INSERT INTO dossiers (
    source, code, version, unit_code, province_code, procedure_code, field_code, channel,
    status, received_at, due_at, finished_at, returned_at, received_day, due_day, finished_day,
    digitized, electronic_result, reused_data, paid_online, fee_bearing, applicant_type,
    stored_at_ms, received_by_hub_ms, personal_storage, population_data)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
    ?20, ?21, ?22, ?23, ?23, ?24, ?25)
-- received_by_hub_ms is the hub's clock at the first arrival, so a newer version leaves it.
ON CONFLICT (source, code) DO UPDATE SET
    version = excluded.version,
    unit_code = excluded.unit_code,
    province_code = excluded.province_code,
    procedure_code = excluded.procedure_code,
    field_code = excluded.field_code,
    channel = excluded.channel,
    status = excluded.status,
    received_at = excluded.received_at,
    due_at = excluded.due_at,
    finished_at = excluded.finished_at,
    returned_at = excluded.returned_at,
    received_day = excluded.received_day,
    due_day = excluded.due_day,
    finished_day = excluded.finished_day,
    digitized = excluded.digitized,
    electronic_result = excluded.electronic_result,
    reused_data = excluded.reused_data,
    paid_online = excluded.paid_online,
    fee_bearing = excluded.fee_bearing,
    applicant_type = excluded.applicant_type,
    stored_at_ms = excluded.stored_at_ms,
    personal_storage = excluded.personal_storage,
    population_data = excluded.population_data
WHERE excluded.version > dossiers.version
";

/// Inputs of applying records besides the connection: the unit catalogue, the counter rules,
/// the day the counters are as of, and the counter changes gathered so far.
pub(super) struct Context<'a> {
    pub(super) catalogue: &'a UnitCatalogue,
    pub(super) rules: &'a CounterRules,
    pub(super) as_of: NaiveDate,
    pub(super) delta: &'a mut Delta,
}

/// Applies one batch of `locality`'s agent and returns its Ack. The counter changes are added to
/// `delta`, which the caller writes in the same transaction.
pub(super) fn apply_batch(
    conn: &Connection,
    catalogue: &UnitCatalogue,
    rules: &CounterRules,
    locality: &str,
    batch: &Batch,
    now_ms: i64,
    delta: &mut Delta,
) -> Result<Ack, StoreError> {
    check_sequence(locality, batch)?;
    let watermark = read_watermark(conn, locality)?;
    let as_of = match counters::as_of_day(conn)? {
        Some(day) => day,
        None => vietnam_day(now_ms / 1000),
    };
    let mut context = Context {
        catalogue,
        rules,
        as_of,
        delta,
    };
    let mut ack = Ack {
        batch_id: batch.batch_id,
        ..Ack::default()
    };

    for record in &batch.records {
        if record.seq <= watermark {
            ack.unchanged += 1;
            continue;
        }
        match apply_record(conn, &mut context, locality, record, now_ms)? {
            Applied::Stored => ack.stored += 1,
            Applied::Unchanged => ack.unchanged += 1,
            Applied::Rejected(rejection) => {
                insert_rejection(conn, locality, &rejection, now_ms)?;
                ack.rejections.push(rejection);
            }
        }
    }

    let last_seq = batch.records.last().map_or(0, |record| record.seq);
    ack.committed_seq = advance_watermark(conn, locality, last_seq, now_ms)?;
    Ok(ack)
}

/// Checks that every sequence number is storable and larger than the one before it.
fn check_sequence(locality: &str, batch: &Batch) -> Result<(), StoreError> {
    let mut previous = None;
    for record in &batch.records {
        let seq = record.seq;
        if seq == 0 || i64::try_from(seq).is_err() {
            return Err(StoreError::InvalidSeq {
                locality: locality.to_string(),
                seq,
            });
        }
        if let Some(previous) = previous.filter(|&previous| seq <= previous) {
            return Err(StoreError::OutOfOrder {
                locality: locality.to_string(),
                seq,
                previous,
            });
        }
        previous = Some(seq);
    }
    Ok(())
}

fn read_watermark(conn: &Connection, locality: &str) -> Result<u64, StoreError> {
    let last_seq: Option<i64> = conn
        .prepare_cached("SELECT last_seq FROM agents WHERE locality = ?1")?
        .query_row([locality], |row| row.get(0))
        .optional()?;
    Ok(last_seq.map_or(0, to_u64))
}

/// Raises the watermark to `last_seq` unless it is already higher, and returns the result.
fn advance_watermark(
    conn: &Connection,
    locality: &str,
    last_seq: u64,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let new_watermark: i64 = conn
        .prepare_cached(
            "INSERT INTO agents (locality, last_seq, last_batch_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (locality) DO UPDATE SET
                 last_seq = max(agents.last_seq, excluded.last_seq),
                 last_batch_ms = excluded.last_batch_ms
             RETURNING last_seq",
        )?
        .query_row(params![locality, to_i64(last_seq), now_ms], |row| {
            row.get(0)
        })?;
    Ok(to_u64(new_watermark))
}

fn apply_record(
    conn: &Connection,
    context: &mut Context<'_>,
    locality: &str,
    record: &chiso_proto::v1::Record,
    now_ms: i64,
) -> Result<Applied, StoreError> {
    let body = match checked_body(context.catalogue, locality, record) {
        Ok(body) => body,
        Err(rejection) => return Ok(Applied::Rejected(rejection)),
    };
    let changed = match body {
        Body::Dossier(dossier) => {
            if let Err(invalid) = check_against_stored(conn, locality, dossier)? {
                let rejection = invalid.into_rejection(record.seq, &dossier.code);
                return Ok(Applied::Rejected(rejection));
            }
            // check_unit accepted the unit, so its province is the locality itself.
            let changed = upsert_dossier(conn, locality, locality, dossier, now_ms)?;
            if changed {
                counters::refresh_dossier(
                    conn,
                    context.rules,
                    context.as_of,
                    locality,
                    &dossier.code,
                    context.delta,
                )?;
            }
            changed
        }
        Body::Step(step) => {
            let changed = kinds::upsert_step(conn, locality, step, now_ms)?;
            if changed {
                counters::refresh_dossier(
                    conn,
                    context.rules,
                    context.as_of,
                    locality,
                    &step.dossier_code,
                    context.delta,
                )?;
            }
            changed
        }
        Body::Procedure(procedure) => {
            let key = identify(body).key.into_owned();
            let before = counters::procedure_before(conn, locality, &key)?;
            let changed = kinds::upsert_procedure(conn, locality, &key, procedure, now_ms)?;
            if changed {
                counters::refresh_procedure(
                    conn,
                    context.rules,
                    context.as_of,
                    locality,
                    &key,
                    before,
                    context.delta,
                )?;
            }
            changed
        }
        Body::Feedback(feedback) => {
            let before = counters::feedback_before(conn, locality, &feedback.code)?;
            let changed = kinds::upsert_feedback(conn, locality, feedback, now_ms)?;
            if changed {
                counters::refresh_feedback(
                    conn,
                    context.rules,
                    context.as_of,
                    locality,
                    &feedback.code,
                    before,
                    context.delta,
                )?;
            }
            changed
        }
        Body::Rating(rating) => {
            let before = counters::rating_before(conn, locality, &rating.code)?;
            let changed = kinds::upsert_rating(conn, locality, rating, now_ms)?;
            if changed {
                counters::refresh_rating(
                    conn,
                    context.rules,
                    context.as_of,
                    locality,
                    &rating.code,
                    before,
                    context.delta,
                )?;
            }
            changed
        }
    };
    Ok(if changed {
        Applied::Stored
    } else {
        Applied::Unchanged
    })
}

/// Checks a dossier that would replace a stored one (its version is higher) against the stored
/// status: a final status (9 or 10) may not move back to an earlier one.
fn check_against_stored(
    conn: &Connection,
    source: &str,
    dossier: &Dossier,
) -> Result<Result<(), Invalid>, StoreError> {
    let stored: Option<(i64, i32)> = conn
        .prepare_cached("SELECT version, status FROM dossiers WHERE source = ?1 AND code = ?2")?
        .query_row(params![source, dossier.code], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    Ok(match stored {
        Some((version, status)) if to_i64(dossier.version) > version => {
            check_status_change(status, dossier)
        }
        _ => Ok(()),
    })
}

/// Returns the record's body if it may be stored, or the rejection that explains why not.
fn checked_body<'a>(
    catalogue: &UnitCatalogue,
    locality: &str,
    record: &'a chiso_proto::v1::Record,
) -> Result<&'a Body, Rejection> {
    let seq = record.seq;
    let Some(body) = &record.body else {
        return Err(Rejection {
            seq,
            key: String::new(),
            code: RejectCode::UnknownKind as i32,
            field: String::new(),
            message: format!(
                "record {seq} carries no body this hub knows; run agent and hub versions that share the same chiso.v1 record kinds"
            ),
        });
    };
    let id = identify(body);

    let rejection = |code: RejectCode, message: String| Rejection {
        seq,
        key: rejection_key(&id.key),
        code: code as i32,
        field: "version".to_string(),
        message,
    };
    if id.version == 0 {
        return Err(rejection(
            RejectCode::MissingField,
            format!(
                "{} version is 0; the agent numbers versions from 1",
                id.kind
            ),
        ));
    }
    if i64::try_from(id.version).is_err() {
        return Err(rejection(
            RejectCode::InvalidValue,
            format!(
                "{} version {} exceeds the largest storable version {}",
                id.kind,
                id.version,
                i64::MAX
            ),
        ));
    }

    let checked = match body {
        Body::Dossier(dossier) => check_dossier(dossier),
        Body::Procedure(procedure) => check_procedure(procedure),
        Body::Feedback(feedback) => check_feedback(feedback),
        Body::Rating(rating) => check_rating(rating),
        Body::Step(step) => check_step(step),
    };
    check_unit(catalogue, id.unit_code, locality)
        .and(checked)
        .map_err(|invalid| invalid.into_rejection(seq, &id.key))?;
    Ok(body)
}

/// Inserts or replaces the dossier when its version is newer; returns whether a row changed.
fn upsert_dossier(
    conn: &Connection,
    source: &str,
    province_code: &str,
    dossier: &Dossier,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let day = |instant: i64| day_number(vietnam_day(instant));
    let changed = conn.prepare_cached(UPSERT_DOSSIER)?.execute(params![
        source,
        dossier.code,
        to_i64(dossier.version),
        dossier.unit_code,
        province_code,
        dossier.procedure_code,
        dossier.field_code,
        dossier.channel,
        dossier.status,
        dossier.received_at,
        dossier.due_at,
        dossier.finished_at,
        dossier.returned_at,
        day(dossier.received_at),
        dossier.due_at.map(day),
        dossier.finished_at.map(day),
        dossier.digitized,
        dossier.electronic_result,
        dossier.reused_data,
        dossier.paid_online,
        dossier.fee_bearing,
        dossier.applicant_type,
        now_ms,
        dossier.personal_storage,
        dossier.population_data,
    ])?;
    Ok(changed == 1)
}

fn insert_rejection(
    conn: &Connection,
    source: &str,
    rejection: &Rejection,
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO rejections (source, seq, key, code, field, message, rejected_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        source,
        to_i64(rejection.seq),
        rejection.key,
        rejection.code,
        rejection.field,
        rejection.message,
        now_ms,
    ])?;
    Ok(())
}

/// Records a hello and returns the watermark and the rejections at or above
/// `oldest_pending_seq` (none when it is 0, which means the agent's outbox is empty).
pub(super) fn record_hello(
    conn: &Connection,
    locality: &str,
    agent_version: &str,
    clock_offset_ms: i64,
    oldest_pending_seq: u64,
    cert_not_after: Option<i64>,
    now_ms: i64,
) -> Result<Welcome, StoreError> {
    let last_seq: i64 = conn
        .prepare_cached(
            "INSERT INTO agents (locality, agent_version, last_hello_ms, clock_offset_ms,
                                 cert_not_after)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (locality) DO UPDATE SET
                 agent_version = excluded.agent_version,
                 last_hello_ms = excluded.last_hello_ms,
                 clock_offset_ms = excluded.clock_offset_ms,
                 cert_not_after = coalesce(excluded.cert_not_after, agents.cert_not_after)
             RETURNING last_seq",
        )?
        .query_row(
            params![
                locality,
                agent_version,
                now_ms,
                clock_offset_ms,
                cert_not_after
            ],
            |row| row.get(0),
        )?;

    if oldest_pending_seq == 0 {
        return Ok((to_u64(last_seq), Vec::new()));
    }
    let from = to_i64(oldest_pending_seq);
    let rejections = conn
        .prepare_cached(
            "SELECT seq, key, code, field, message FROM rejections
             WHERE source = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3",
        )?
        .query_map(
            params![locality, from, MAX_HELLO_REJECTIONS as i64],
            |row| {
                Ok(Rejection {
                    seq: to_u64(row.get(0)?),
                    key: row.get(1)?,
                    code: row.get(2)?,
                    field: row.get(3)?,
                    message: row.get(4)?,
                })
            },
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((to_u64(last_seq), rejections))
}

/// Converts a sequence number or version for SQLite. Values above i64::MAX are rejected before
/// anything is stored, so saturating only affects lookups such as `seq >= ?`.
fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Converts a stored sequence number back; the store only writes values from 0 to i64::MAX.
fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}
