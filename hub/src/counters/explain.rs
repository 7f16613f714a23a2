//! The records behind one count of one unit and period, a page at a time, so a locality can
//! check each figure of its scorecard.

use std::collections::HashMap;

use chiso_proto::vntime::Period;
use chrono::NaiveDate;
use rusqlite::{Connection, Row};

use super::facts::{
    self, DOSSIER_FACTS_COLUMNS, FEEDBACK_COLUMNS, PROCEDURE_COLUMNS, RATING_COLUMNS,
};
use super::{CounterRules, contrib};
use crate::catalogue::{CountId, PeriodRule, RecordKind};

/// The units whose records a listing covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitFilter<'a> {
    /// Every unit of local government: provinces and communes, not ministries.
    Country,
    /// A province and all its communes.
    Province(&'a str),
    /// One unit's own records.
    Unit(&'a str),
}

/// One record behind a count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    /// Record kind name.
    pub kind: &'static str,
    /// The sending agent's locality.
    pub source: String,
    /// The record's key.
    pub key: String,
    /// The record's unit.
    pub unit_code: String,
    /// The facts that decide the count, by name.
    pub facts: HashMap<String, String>,
}

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// Records of the count in all.
    pub total: u64,
    /// The page's records, in (source, key) order.
    pub records: Vec<Explained>,
    /// The last (source, key) of the page when more follow.
    pub next: Option<(String, String)>,
}

/// A listing request: units, period, count, rule and page.
#[derive(Debug, Clone, Copy)]
pub struct Listing<'a> {
    /// Units covered.
    pub units: UnitFilter<'a>,
    /// The period.
    pub period: Period,
    /// The count.
    pub count: CountId,
    /// The period rule.
    pub rule: PeriodRule,
    /// The day the period is judged as of.
    pub as_of: NaiveDate,
    /// Records after this (source, key), for the pages after the first.
    pub after: Option<(&'a str, &'a str)>,
    /// Most records on the page.
    pub limit: usize,
}

fn day(value: Option<NaiveDate>) -> String {
    value.map_or_else(String::new, |day| day.to_string())
}

fn flag(value: bool) -> String {
    value.to_string()
}

fn facts_map(pairs: Vec<(&str, String)>) -> HashMap<String, String> {
    pairs
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
}

/// Lists the records behind a count; counts from the stored facts as the counters do.
pub fn explain(
    conn: &Connection,
    rules: &CounterRules,
    listing: &Listing<'_>,
) -> rusqlite::Result<Page> {
    let (table, key_column, columns) = match listing.count.kind() {
        RecordKind::Dossier => ("dossier_facts", "code", DOSSIER_FACTS_COLUMNS),
        RecordKind::Feedback => ("feedback", "code", FEEDBACK_COLUMNS),
        RecordKind::Rating => ("ratings", "code", RATING_COLUMNS),
        RecordKind::Procedure => ("procedures", "key", PROCEDURE_COLUMNS),
        RecordKind::Digest => return Ok(Page::default()),
    };
    let (filter, value) = match listing.units {
        // Province codes are two digits, and ministry codes contain a letter.
        UnitFilter::Country => ("?1 IS NULL AND province_code GLOB '[0-9][0-9]'", None),
        UnitFilter::Province(code) => ("province_code = ?1", Some(code)),
        UnitFilter::Unit(code) => ("unit_code = ?1", Some(code)),
    };
    let sql = format!(
        "SELECT source, {key_column}, {columns} FROM {table} WHERE {filter}
         ORDER BY source, {key_column}"
    );
    let mut statement = conn.prepare(&sql)?;
    let mut rows = statement.query([value])?;
    let mut page = Page::default();
    while let Some(row) = rows.next()? {
        let Some(record) = included(conn, rules, listing, row)? else {
            continue;
        };
        page.total += 1;
        let after = listing.after.is_none_or(|(source, key)| {
            (record.source.as_str(), record.key.as_str()) > (source, key)
        });
        if !after {
            continue;
        }
        if page.records.len() < listing.limit {
            page.records.push(record);
        } else if page.next.is_none() {
            let last = page
                .records
                .last()
                .map(|last| (last.source.clone(), last.key.clone()));
            page.next = last;
        }
    }
    Ok(page)
}

/// Returns the row's record when it is in the listed count.
fn included(
    conn: &Connection,
    rules: &CounterRules,
    listing: &Listing<'_>,
    row: &Row<'_>,
) -> rusqlite::Result<Option<Explained>> {
    let source: String = row.get(0)?;
    let key: String = row.get(1)?;
    let (contribution, kind, pairs) = match listing.count.kind() {
        RecordKind::Dossier => {
            let f = facts::dossier_facts_from_row(row, 2)?;
            let pairs = vec![
                ("received_day", f.received_day.to_string()),
                ("due_day", day(f.due_day)),
                ("finished_day", day(f.finished_day)),
                ("status", f.status.to_string()),
                ("channel", f.channel.to_string()),
                ("electronic_result", flag(f.electronic_result)),
                ("digitized", flag(f.digitized)),
                ("reused_data", flag(f.reused_data)),
                ("fee_bearing", flag(f.fee_bearing)),
                ("paid_online", flag(f.paid_online)),
                ("personal_storage", flag(f.personal_storage)),
                ("population_data", flag(f.population_data)),
                ("dissatisfied", flag(f.dissatisfied)),
                ("complained", flag(f.complained)),
            ];
            (contrib::dossier(rules, &f, listing.as_of), "dossier", pairs)
        }
        RecordKind::Feedback => {
            let f = facts::feedback_from_row(row, 2)?;
            let pairs = vec![
                ("received_day", f.received_day.to_string()),
                ("due_day", day(f.due_day)),
                ("finished_day", day(f.finished_day)),
                ("topic", f.topic.to_string()),
                ("dissatisfied", flag(f.dissatisfied)),
                ("recomplained", flag(f.recomplained)),
            ];
            (
                contrib::feedback(rules, &f, listing.as_of),
                "feedback",
                pairs,
            )
        }
        RecordKind::Rating => {
            let f = facts::rating_from_row(row, 2)?;
            let pairs = vec![
                ("dossier_code", f.dossier_code.clone()),
                ("rated_day", f.rated_day.to_string()),
                ("level", f.level.to_string()),
            ];
            (contrib::rating(rules, &f, listing.as_of), "rating", pairs)
        }
        RecordKind::Procedure => {
            let mut f = facts::procedure_from_row(row, 2)?;
            f.usage = facts::load_usage(conn, &source, &key)?;
            let used_days = f.usage.len();
            let pairs = vec![
                ("announced_day", day(f.announced_day)),
                ("announce_due_day", day(f.announce_due_day)),
                ("published_day", day(f.published_day)),
                ("publish_due_day", day(f.publish_due_day)),
                ("abolished_day", day(f.abolished_day)),
                ("content_complete", flag(f.content_complete)),
                ("online_level", f.online_level.to_string()),
                ("fee_bearing", flag(f.fee_bearing)),
                ("payable_online", flag(f.payable_online)),
                ("for_citizens", flag(f.for_citizens)),
                ("population_connected", flag(f.population_connected)),
                ("days_with_dossiers", used_days.to_string()),
            ];
            (
                contrib::procedure(rules, &f, listing.as_of),
                "procedure",
                pairs,
            )
        }
        RecordKind::Digest => return Ok(None),
    };
    if !contribution.includes(listing.period, listing.count, listing.rule) {
        return Ok(None);
    }
    Ok(Some(Explained {
        kind,
        source,
        key,
        unit_code: contribution.unit_code,
        facts: facts_map(pairs),
    }))
}
