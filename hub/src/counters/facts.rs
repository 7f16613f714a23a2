//! Record facts: the values the counters are built from, one per record, read from the store.
//!
//! A dossier's facts combine its own row with its processing steps, ratings and feedback, and
//! are kept in the `dossier_facts` table exactly as they were counted, so a change subtracts
//! precisely what was added before. The other kinds count from their own rows.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{CounterRules, date_of};

/// Statuses that end processing: 9 (processed) and 10 (returned).
const FINAL_STATUSES: [i32; 2] = [9, 10];

/// The dossier as counted: its row overlaid with its steps, with the flags its ratings and
/// feedback set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DossierFacts {
    /// Handling unit.
    pub unit_code: String,
    /// Province of the unit (the unit itself for a province).
    pub province_code: String,
    /// Received day.
    pub received_day: NaiveDate,
    /// Due day, after any step that moved it.
    pub due_day: Option<NaiveDate>,
    /// Finish day, from the dossier or a finishing step.
    pub finished_day: Option<NaiveDate>,
    /// Status code (TrangThaiHoSo), after the steps.
    pub status: i32,
    /// Channel code (KenhThucHien).
    pub channel: i32,
    /// Has an electronic result.
    pub electronic_result: bool,
    /// Components digitized.
    pub digitized: bool,
    /// Reuses digitized data.
    pub reused_data: bool,
    /// Charges a fee.
    pub fee_bearing: bool,
    /// Fee paid online.
    pub paid_online: bool,
    /// Linked to the applicant's data repository.
    pub personal_storage: bool,
    /// Used the national population database.
    pub population_data: bool,
    /// A rating of it is at or below the dissatisfied level.
    pub dissatisfied: bool,
    /// A feedback item names it.
    pub complained: bool,
    /// The procedure's code (MaTTHC), which links the dossier to its procedure's usage.
    pub procedure_code: String,
}

impl DossierFacts {
    /// Returns the key of the procedure the dossier was filed under (`unit/code`), which is how
    /// procedures are keyed.
    pub fn procedure_key(&self) -> String {
        format!(
            "{}{}{}",
            self.unit_code,
            chiso_proto::record::KEY_SEPARATOR,
            self.procedure_code
        )
    }
}

/// Dossiers filed under one procedure per received day: (online, fee-bearing).
pub type Usage = BTreeMap<NaiveDate, (i64, i64)>;

/// A feedback item as counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackFacts {
    /// Handling unit.
    pub unit_code: String,
    /// Province of the unit.
    pub province_code: String,
    /// Received day.
    pub received_day: NaiveDate,
    /// Due day.
    pub due_day: Option<NaiveDate>,
    /// Finish day.
    pub finished_day: Option<NaiveDate>,
    /// Topic code: 1 procedure, 2 staff, 3 other.
    pub topic: i32,
    /// The sender was dissatisfied.
    pub dissatisfied: bool,
    /// The sender complained again.
    pub recomplained: bool,
}

/// A procedure as counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcedureFacts {
    /// The applying unit.
    pub unit_code: String,
    /// Province of the unit.
    pub province_code: String,
    /// Announcement day.
    pub announced_day: Option<NaiveDate>,
    /// Legal deadline of the announcement.
    pub announce_due_day: Option<NaiveDate>,
    /// Day made public in the national procedure database.
    pub published_day: Option<NaiveDate>,
    /// Deadline for making it public.
    pub publish_due_day: Option<NaiveDate>,
    /// The public entry has every required part.
    pub content_complete: bool,
    /// Online level code: 1 none, 2 partial, 3 full.
    pub online_level: i32,
    /// Charges a fee.
    pub fee_bearing: bool,
    /// Fee payable online.
    pub payable_online: bool,
    /// Applicants are citizens.
    pub for_citizens: bool,
    /// Connected to the national population database.
    pub population_connected: bool,
    /// Abolished from this day.
    pub abolished_day: Option<NaiveDate>,
    /// Dossiers filed under it per received day, online and fee-bearing.
    pub usage: Usage,
}

/// A rating as counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatingFacts {
    /// The unit that handled the rated dossier.
    pub unit_code: String,
    /// Province of the unit.
    pub province_code: String,
    /// The rated dossier.
    pub dossier_code: String,
    /// Rating day.
    pub rated_day: NaiveDate,
    /// Level, 1 to 5.
    pub level: u32,
}

fn day(row: &Row<'_>, index: usize) -> rusqlite::Result<NaiveDate> {
    let value: i64 = row.get(index)?;
    date_of(value).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Integer,
            format!("{value} is not a yyyymmdd day").into(),
        )
    })
}

fn optional_day(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<NaiveDate>> {
    let value: Option<i64> = row.get(index)?;
    match value {
        None => Ok(None),
        Some(_) => day(row, index).map(Some),
    }
}

/// Returns a date as a `yyyymmdd` number.
pub(super) fn number(day: NaiveDate) -> i64 {
    chiso_proto::vntime::day_number(day)
}

/// Columns of `dossier_facts` after the key, in the order [`dossier_facts_from_row`] reads them.
pub(super) const DOSSIER_FACTS_COLUMNS: &str = "unit_code, province_code, received_day, due_day, finished_day, status, channel, electronic_result, digitized, reused_data, fee_bearing, paid_online, personal_storage, population_data, dissatisfied, complained, procedure_code";

/// Reads a `dossier_facts` row selected with [`DOSSIER_FACTS_COLUMNS`] from column `first`.
pub(super) fn dossier_facts_from_row(
    row: &Row<'_>,
    first: usize,
) -> rusqlite::Result<DossierFacts> {
    Ok(DossierFacts {
        unit_code: row.get(first)?,
        province_code: row.get(first + 1)?,
        received_day: day(row, first + 2)?,
        due_day: optional_day(row, first + 3)?,
        finished_day: optional_day(row, first + 4)?,
        status: row.get(first + 5)?,
        channel: row.get(first + 6)?,
        electronic_result: row.get(first + 7)?,
        digitized: row.get(first + 8)?,
        reused_data: row.get(first + 9)?,
        fee_bearing: row.get(first + 10)?,
        paid_online: row.get(first + 11)?,
        personal_storage: row.get(first + 12)?,
        population_data: row.get(first + 13)?,
        dissatisfied: row.get(first + 14)?,
        complained: row.get(first + 15)?,
        procedure_code: row.get(first + 16)?,
    })
}

/// Reads the facts the counters hold for a dossier.
pub(super) fn stored_dossier_facts(
    conn: &Connection,
    source: &str,
    code: &str,
) -> rusqlite::Result<Option<DossierFacts>> {
    let sql = format!(
        "SELECT {DOSSIER_FACTS_COLUMNS} FROM dossier_facts WHERE source = ?1 AND code = ?2"
    );
    conn.prepare_cached(&sql)?
        .query_row(params![source, code], |row| dossier_facts_from_row(row, 0))
        .optional()
}

/// Writes the facts the counters now hold for a dossier, or deletes them.
pub(super) fn store_dossier_facts(
    conn: &Connection,
    source: &str,
    code: &str,
    facts: Option<&DossierFacts>,
) -> rusqlite::Result<()> {
    let Some(f) = facts else {
        conn.prepare_cached("DELETE FROM dossier_facts WHERE source = ?1 AND code = ?2")?
            .execute(params![source, code])?;
        return Ok(());
    };
    let sql = format!(
        "INSERT OR REPLACE INTO dossier_facts (source, code, {DOSSIER_FACTS_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
                 ?19)"
    );
    conn.prepare_cached(&sql)?.execute(params![
        source,
        code,
        f.unit_code,
        f.province_code,
        number(f.received_day),
        f.due_day.map(number),
        f.finished_day.map(number),
        f.status,
        f.channel,
        f.electronic_result,
        f.digitized,
        f.reused_data,
        f.fee_bearing,
        f.paid_online,
        f.personal_storage,
        f.population_data,
        f.dissatisfied,
        f.complained,
        f.procedure_code,
    ])?;
    Ok(())
}

/// Derives a dossier's facts from its stored row, steps, ratings and feedback; `None` when the
/// dossier itself is not stored (its steps and ratings wait for it).
pub(super) fn derive_dossier_facts(
    conn: &Connection,
    rules: &CounterRules,
    source: &str,
    code: &str,
) -> rusqlite::Result<Option<DossierFacts>> {
    let row = conn
        .prepare_cached(
            "SELECT unit_code, province_code, received_day, due_day, finished_day, status, channel,
                    electronic_result, digitized, reused_data, fee_bearing, paid_online,
                    personal_storage, population_data, procedure_code
             FROM dossiers WHERE source = ?1 AND code = ?2",
        )?
        .query_row(params![source, code], |row| {
            Ok(DossierFacts {
                unit_code: row.get(0)?,
                province_code: row.get(1)?,
                received_day: day(row, 2)?,
                due_day: optional_day(row, 3)?,
                finished_day: optional_day(row, 4)?,
                status: row.get(5)?,
                channel: row.get(6)?,
                electronic_result: row.get(7)?,
                digitized: row.get(8)?,
                reused_data: row.get(9)?,
                fee_bearing: row.get(10)?,
                paid_online: row.get(11)?,
                personal_storage: row.get(12)?,
                population_data: row.get(13)?,
                dissatisfied: false,
                complained: false,
                procedure_code: row.get(14)?,
            })
        })
        .optional()?;
    let Some(mut facts) = row else {
        return Ok(None);
    };

    let finished_by_record = facts.finished_day.is_some();
    let mut statement = conn.prepare_cached(
        "SELECT status, at_day, due_day, finished_day FROM dossier_steps
         WHERE source = ?1 AND dossier_code = ?2 ORDER BY step",
    )?;
    let mut steps = statement.query(params![source, code])?;
    while let Some(step) = steps.next()? {
        let status: i32 = step.get(0)?;
        let at_day = day(step, 1)?;
        if let Some(due) = optional_day(step, 2)? {
            facts.due_day = Some(due);
        }
        if finished_by_record {
            continue;
        }
        facts.status = status;
        let finished = optional_day(step, 3)?;
        if finished.is_some() {
            facts.finished_day = finished;
        } else if FINAL_STATUSES.contains(&status) && facts.finished_day.is_none() {
            facts.finished_day = Some(at_day);
        }
    }
    if let Some(finished) = facts.finished_day {
        // A step cannot finish a dossier before it was received.
        facts.finished_day = Some(finished.max(facts.received_day));
    }

    facts.dissatisfied = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM ratings
                            WHERE source = ?1 AND dossier_code = ?2 AND level <= ?3)",
        )?
        .query_row(
            params![source, code, rules.rating_dissatisfied_max],
            |row| row.get(0),
        )?;
    facts.complained = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM feedback WHERE source = ?1 AND dossier_code = ?2)",
        )?
        .query_row(params![source, code], |row| row.get(0))?;
    Ok(Some(facts))
}

/// Columns of `feedback` that [`feedback_from_row`] reads.
pub(super) const FEEDBACK_COLUMNS: &str = "unit_code, province_code, received_day, due_day, finished_day, topic, dissatisfied, recomplained";

/// Reads a `feedback` row selected with [`FEEDBACK_COLUMNS`] from column `first`.
pub(super) fn feedback_from_row(row: &Row<'_>, first: usize) -> rusqlite::Result<FeedbackFacts> {
    Ok(FeedbackFacts {
        unit_code: row.get(first)?,
        province_code: row.get(first + 1)?,
        received_day: day(row, first + 2)?,
        due_day: optional_day(row, first + 3)?,
        finished_day: optional_day(row, first + 4)?,
        topic: row.get(first + 5)?,
        dissatisfied: row.get(first + 6)?,
        recomplained: row.get(first + 7)?,
    })
}

/// Reads a stored feedback item.
pub(super) fn stored_feedback(
    conn: &Connection,
    source: &str,
    code: &str,
) -> rusqlite::Result<Option<(FeedbackFacts, String)>> {
    let sql = format!(
        "SELECT {FEEDBACK_COLUMNS}, dossier_code FROM feedback WHERE source = ?1 AND code = ?2"
    );
    conn.prepare_cached(&sql)?
        .query_row(params![source, code], |row| {
            Ok((feedback_from_row(row, 0)?, row.get(8)?))
        })
        .optional()
}

/// Columns of `procedures` that [`procedure_from_row`] reads.
pub(super) const PROCEDURE_COLUMNS: &str = "unit_code, province_code, announced_day, announce_due_day, published_day, publish_due_day, content_complete, online_level, fee_bearing, payable_online, for_citizens, population_connected, abolished_day";

/// Reads a `procedures` row selected with [`PROCEDURE_COLUMNS`] from column `first`.
pub(super) fn procedure_from_row(row: &Row<'_>, first: usize) -> rusqlite::Result<ProcedureFacts> {
    Ok(ProcedureFacts {
        unit_code: row.get(first)?,
        province_code: row.get(first + 1)?,
        announced_day: optional_day(row, first + 2)?,
        announce_due_day: optional_day(row, first + 3)?,
        published_day: optional_day(row, first + 4)?,
        publish_due_day: optional_day(row, first + 5)?,
        content_complete: row.get(first + 6)?,
        online_level: row.get(first + 7)?,
        fee_bearing: row.get(first + 8)?,
        payable_online: row.get(first + 9)?,
        for_citizens: row.get(first + 10)?,
        population_connected: row.get(first + 11)?,
        abolished_day: optional_day(row, first + 12)?,
        usage: Usage::new(),
    })
}

/// Reads a stored procedure by its key (`unit/code`).
pub(super) fn stored_procedure(
    conn: &Connection,
    source: &str,
    key: &str,
) -> rusqlite::Result<Option<ProcedureFacts>> {
    let sql = format!("SELECT {PROCEDURE_COLUMNS} FROM procedures WHERE source = ?1 AND key = ?2");
    let facts = conn
        .prepare_cached(&sql)?
        .query_row(params![source, key], |row| procedure_from_row(row, 0))
        .optional()?;
    match facts {
        Some(mut facts) => {
            facts.usage = load_usage(conn, source, key)?;
            Ok(Some(facts))
        }
        None => Ok(None),
    }
}

/// Reads the usage of a procedure: its dossiers per received day.
pub(super) fn load_usage(conn: &Connection, source: &str, key: &str) -> rusqlite::Result<Usage> {
    let mut statement = conn.prepare_cached(
        "SELECT day, online, fee FROM procedure_usage WHERE source = ?1 AND key = ?2",
    )?;
    let mut rows = statement.query(params![source, key])?;
    let mut usage = Usage::new();
    while let Some(row) = rows.next()? {
        usage.insert(day(row, 0)?, (row.get(1)?, row.get(2)?));
    }
    Ok(usage)
}

/// Adds to the usage of a procedure on one day, deleting the row when it falls to nothing.
pub(super) fn add_usage(
    conn: &Connection,
    source: &str,
    key: &str,
    day: NaiveDate,
    online: i64,
    fee: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO procedure_usage (source, key, day, online, fee) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (source, key, day) DO UPDATE SET
             online = procedure_usage.online + excluded.online,
             fee = procedure_usage.fee + excluded.fee",
    )?
    .execute(params![source, key, number(day), online, fee])?;
    conn.prepare_cached(
        "DELETE FROM procedure_usage
         WHERE source = ?1 AND key = ?2 AND day = ?3 AND online = 0 AND fee = 0",
    )?
    .execute(params![source, key, number(day)])?;
    Ok(())
}

/// Columns of `ratings` that [`rating_from_row`] reads.
pub(super) const RATING_COLUMNS: &str = "unit_code, province_code, dossier_code, rated_day, level";

/// Reads a `ratings` row selected with [`RATING_COLUMNS`] from column `first`.
pub(super) fn rating_from_row(row: &Row<'_>, first: usize) -> rusqlite::Result<RatingFacts> {
    Ok(RatingFacts {
        unit_code: row.get(first)?,
        province_code: row.get(first + 1)?,
        dossier_code: row.get(first + 2)?,
        rated_day: day(row, first + 3)?,
        level: row.get(first + 4)?,
    })
}

/// Reads a stored rating.
pub(super) fn stored_rating(
    conn: &Connection,
    source: &str,
    code: &str,
) -> rusqlite::Result<Option<RatingFacts>> {
    let sql = format!("SELECT {RATING_COLUMNS} FROM ratings WHERE source = ?1 AND code = ?2");
    conn.prepare_cached(&sql)?
        .query_row(params![source, code], |row| rating_from_row(row, 0))
        .optional()
}
