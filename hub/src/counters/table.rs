//! The counters table: applying contributions, moving the as-of day, rebuilding and verifying.

use std::collections::HashMap;

use chiso_proto::vntime::Period;
use chrono::{Datelike, NaiveDate};
use rusqlite::{Connection, OptionalExtension, params};

use super::contrib::{self, Contribution};
use super::facts::{
    self, DOSSIER_FACTS_COLUMNS, DossierFacts, FEEDBACK_COLUMNS, FeedbackFacts, PROCEDURE_COLUMNS,
    ProcedureFacts, RATING_COLUMNS, RatingFacts, Usage, number,
};
use super::{CounterRules, Reach, date_of};
use crate::catalogue::{CountId, PeriodRule};

/// Version 4 of the store schema: the record kinds besides dossiers, the dossier fields they
/// need, the facts each dossier was counted with, and the counters.
pub const MIGRATION_TO_V4: &str = "
ALTER TABLE dossiers ADD COLUMN personal_storage INTEGER NOT NULL DEFAULT 0;
ALTER TABLE dossiers ADD COLUMN population_data INTEGER NOT NULL DEFAULT 0;

CREATE TABLE procedures (
    source               TEXT NOT NULL,
    key                  TEXT NOT NULL,
    code                 TEXT NOT NULL,
    version              INTEGER NOT NULL,
    unit_code            TEXT NOT NULL,
    province_code        TEXT NOT NULL,
    announced_day        INTEGER,
    announce_due_day     INTEGER,
    published_day        INTEGER,
    publish_due_day      INTEGER,
    content_complete     INTEGER NOT NULL,
    online_level         INTEGER NOT NULL,
    fee_bearing          INTEGER NOT NULL,
    payable_online       INTEGER NOT NULL,
    for_citizens         INTEGER NOT NULL,
    population_connected INTEGER NOT NULL,
    abolished_day        INTEGER,
    stored_at_ms         INTEGER NOT NULL,
    PRIMARY KEY (source, key)
);

CREATE TABLE feedback (
    source        TEXT NOT NULL,
    code          TEXT NOT NULL,
    version       INTEGER NOT NULL,
    unit_code     TEXT NOT NULL,
    province_code TEXT NOT NULL,
    received_day  INTEGER NOT NULL,
    due_day       INTEGER,
    finished_day  INTEGER,
    topic         INTEGER NOT NULL,
    dissatisfied  INTEGER NOT NULL,
    recomplained  INTEGER NOT NULL,
    dossier_code  TEXT NOT NULL,
    stored_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (source, code)
);
CREATE INDEX feedback_dossier ON feedback (source, dossier_code);
CREATE INDEX feedback_finished ON feedback (finished_day);

CREATE TABLE ratings (
    source        TEXT NOT NULL,
    code          TEXT NOT NULL,
    version       INTEGER NOT NULL,
    unit_code     TEXT NOT NULL,
    province_code TEXT NOT NULL,
    dossier_code  TEXT NOT NULL,
    rated_day     INTEGER NOT NULL,
    level         INTEGER NOT NULL,
    stored_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (source, code)
);
CREATE INDEX ratings_dossier ON ratings (source, dossier_code);
CREATE INDEX ratings_day ON ratings (rated_day);

CREATE TABLE dossier_steps (
    source       TEXT NOT NULL,
    dossier_code TEXT NOT NULL,
    step         INTEGER NOT NULL,
    version      INTEGER NOT NULL,
    unit_code    TEXT NOT NULL,
    status       INTEGER NOT NULL,
    at_day       INTEGER NOT NULL,
    due_day      INTEGER,
    finished_day INTEGER,
    stored_at_ms INTEGER NOT NULL,
    PRIMARY KEY (source, dossier_code, step)
);

-- The facts each stored dossier is counted with: the dossier overlaid with its steps, ratings
-- and feedback. Counters change by subtracting the old row's contribution and adding the new.
CREATE TABLE dossier_facts (
    source            TEXT NOT NULL,
    code              TEXT NOT NULL,
    unit_code         TEXT NOT NULL,
    province_code     TEXT NOT NULL,
    received_day      INTEGER NOT NULL,
    due_day           INTEGER,
    finished_day      INTEGER,
    status            INTEGER NOT NULL,
    channel           INTEGER NOT NULL,
    electronic_result INTEGER NOT NULL,
    digitized         INTEGER NOT NULL,
    reused_data       INTEGER NOT NULL,
    fee_bearing       INTEGER NOT NULL,
    paid_online       INTEGER NOT NULL,
    personal_storage  INTEGER NOT NULL,
    population_data   INTEGER NOT NULL,
    dissatisfied      INTEGER NOT NULL,
    complained        INTEGER NOT NULL,
    procedure_code    TEXT NOT NULL,
    PRIMARY KEY (source, code)
);

-- Dossiers per procedure (key unit/code) and received day, online and fee-bearing, kept from the
-- dossier facts so a procedure's online use and fee data count without scanning dossiers.
CREATE TABLE procedure_usage (
    source TEXT NOT NULL,
    key    TEXT NOT NULL,
    day    INTEGER NOT NULL,
    online INTEGER NOT NULL,
    fee    INTEGER NOT NULL,
    PRIMARY KEY (source, key, day)
) WITHOUT ROWID;
CREATE INDEX dossier_facts_finished ON dossier_facts (finished_day);
CREATE INDEX dossier_facts_province ON dossier_facts (province_code, received_day);

-- reach 0 is the unit's own records, 1 the unit and everything below it.
CREATE TABLE counters (
    period TEXT NOT NULL,
    reach  INTEGER NOT NULL,
    unit   TEXT NOT NULL,
    count  TEXT NOT NULL,
    rule   TEXT NOT NULL,
    value  INTEGER NOT NULL,
    PRIMARY KEY (period, reach, unit, count, rule)
) WITHOUT ROWID;

CREATE TABLE counter_meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

/// Key of one counter.
pub type CounterKey = (String, Reach, Period, CountId, PeriodRule);

/// The counters of one target row, keyed by period, count and rule.
type TargetChanges = HashMap<(Period, CountId, PeriodRule), i64>;

/// Pending changes to counters, summed per counter and written once. Changes are grouped by
/// target (unit and reach), so a contribution allocates a unit code once per target.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delta {
    changes: HashMap<(String, Reach), TargetChanges>,
}

impl Delta {
    /// Adds a contribution with a sign: 1 to add, -1 to remove.
    pub fn apply(&mut self, contribution: &Contribution, sign: i64) {
        if contribution.items.is_empty() {
            return;
        }
        for (unit, reach) in contribution.targets() {
            let target = match self.changes.get_mut(&(unit.to_string(), reach)) {
                Some(target) => target,
                None => self.changes.entry((unit.to_string(), reach)).or_default(),
            };
            for item in &contribution.items {
                *target.entry(*item).or_default() += sign;
            }
        }
    }

    /// Adds another delta's changes to these.
    pub fn merge(&mut self, other: Delta) {
        if self.changes.is_empty() {
            self.changes = other.changes;
            return;
        }
        for (key, changes) in other.changes {
            let target = self.changes.entry(key).or_default();
            for (item, change) in changes {
                *target.entry(item).or_default() += change;
            }
        }
    }

    /// Returns whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.changes
            .values()
            .all(|target| target.values().all(|change| *change == 0))
    }

    /// Writes the changes to the counters table and empties the delta.
    pub fn flush(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let mut statement = conn.prepare_cached(
            "INSERT INTO counters (period, reach, unit, count, rule, value)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (period, reach, unit, count, rule) DO UPDATE SET
                 value = counters.value + excluded.value",
        )?;
        for ((unit, reach), target) in self.changes.drain() {
            for ((period, count, rule), change) in target {
                if change != 0 {
                    statement.execute(params![
                        period.to_string(),
                        reach.as_i64(),
                        unit,
                        count.name(),
                        rule.as_str(),
                        change
                    ])?;
                }
            }
        }
        Ok(())
    }

    fn into_map(self) -> HashMap<CounterKey, i64> {
        let mut map = HashMap::new();
        for ((unit, reach), target) in self.changes {
            for ((period, count, rule), change) in target {
                map.insert((unit.clone(), reach, period, count, rule), change);
            }
        }
        map
    }

    fn from_map(map: HashMap<CounterKey, i64>) -> Delta {
        let mut delta = Delta::default();
        for ((unit, reach, period, count, rule), change) in map {
            *delta
                .changes
                .entry((unit, reach))
                .or_default()
                .entry((period, count, rule))
                .or_default() += change;
        }
        delta
    }
}

const META_AS_OF: &str = "as_of_day";
const META_RULES: &str = "rules";

/// Reads the day the counters are as of and the rules they were built with.
pub fn read_meta(conn: &Connection) -> rusqlite::Result<(Option<NaiveDate>, Option<String>)> {
    let get = |name: &str| -> rusqlite::Result<Option<String>> {
        conn.prepare_cached("SELECT value FROM counter_meta WHERE name = ?1")?
            .query_row([name], |row| row.get(0))
            .optional()
    };
    let as_of = get(META_AS_OF)?
        .and_then(|value| value.parse::<i64>().ok())
        .and_then(date_of);
    Ok((as_of, get(META_RULES)?))
}

/// Returns the day the counters are as of, if they were ever built.
pub fn as_of_day(conn: &Connection) -> rusqlite::Result<Option<NaiveDate>> {
    Ok(read_meta(conn)?.0)
}

fn write_meta(conn: &Connection, name: &str, value: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO counter_meta (name, value) VALUES (?1, ?2)")?
        .execute([name, value])?;
    Ok(())
}

/// Recounts a dossier after its row, steps, ratings or feedback changed.
pub fn refresh_dossier(
    conn: &Connection,
    rules: &CounterRules,
    as_of: NaiveDate,
    source: &str,
    code: &str,
    delta: &mut Delta,
) -> rusqlite::Result<()> {
    let old = facts::stored_dossier_facts(conn, source, code)?;
    let new = facts::derive_dossier_facts(conn, rules, source, code)?;
    if old == new {
        return Ok(());
    }
    if let Some(old) = &old {
        delta.apply(&contrib::dossier(rules, old, as_of), -1);
    }
    if let Some(new) = &new {
        delta.apply(&contrib::dossier(rules, new, as_of), 1);
    }
    facts::store_dossier_facts(conn, source, code, new.as_ref())?;
    refresh_usage(
        conn,
        rules,
        as_of,
        source,
        old.as_ref(),
        new.as_ref(),
        delta,
    )
}

/// Returns a dossier's share of its procedure's usage: the key, day, and online and fee counts.
fn usage_of(facts: &DossierFacts) -> (String, NaiveDate, i64, i64) {
    (
        facts.procedure_key(),
        facts.received_day,
        i64::from(facts.channel == contrib::ONLINE_CHANNEL),
        i64::from(facts.fee_bearing),
    )
}

/// Moves a dossier's share of its procedure's usage from its old facts to its new ones, and
/// recounts each procedure whose usage changed.
fn refresh_usage(
    conn: &Connection,
    rules: &CounterRules,
    as_of: NaiveDate,
    source: &str,
    old: Option<&DossierFacts>,
    new: Option<&DossierFacts>,
    delta: &mut Delta,
) -> rusqlite::Result<()> {
    let old = old.map(usage_of);
    let new = new.map(usage_of);
    if old == new {
        return Ok(());
    }
    let mut keys: Vec<String> = old
        .iter()
        .chain(&new)
        .map(|usage| usage.0.clone())
        .collect();
    keys.dedup();
    let before: Vec<Option<ProcedureFacts>> = keys
        .iter()
        .map(|key| facts::stored_procedure(conn, source, key))
        .collect::<Result<_, _>>()?;
    if let Some((key, day, online, fee)) = &old {
        facts::add_usage(conn, source, key, *day, -online, -fee)?;
    }
    if let Some((key, day, online, fee)) = &new {
        facts::add_usage(conn, source, key, *day, *online, *fee)?;
    }
    for (key, before) in keys.iter().zip(before) {
        let Some(before) = before else {
            continue;
        };
        delta.apply(&contrib::procedure(rules, &before, as_of), -1);
        if let Some(after) = facts::stored_procedure(conn, source, key)? {
            delta.apply(&contrib::procedure(rules, &after, as_of), 1);
        }
    }
    Ok(())
}

/// Reads a feedback item before it is replaced, for [`refresh_feedback`].
pub fn feedback_before(
    conn: &Connection,
    source: &str,
    code: &str,
) -> rusqlite::Result<Option<(FeedbackFacts, String)>> {
    facts::stored_feedback(conn, source, code)
}

/// Recounts a feedback item after it was stored, and the dossiers it names before and after.
pub fn refresh_feedback(
    conn: &Connection,
    rules: &CounterRules,
    as_of: NaiveDate,
    source: &str,
    code: &str,
    before: Option<(FeedbackFacts, String)>,
    delta: &mut Delta,
) -> rusqlite::Result<()> {
    let after = facts::stored_feedback(conn, source, code)?;
    if after == before {
        return Ok(());
    }
    let mut dossiers = Vec::new();
    if let Some((old, dossier)) = &before {
        delta.apply(&contrib::feedback(rules, old, as_of), -1);
        dossiers.push(dossier.clone());
    }
    if let Some((new, dossier)) = &after {
        delta.apply(&contrib::feedback(rules, new, as_of), 1);
        dossiers.push(dossier.clone());
    }
    dossiers.dedup();
    for dossier in dossiers.iter().filter(|code| !code.is_empty()) {
        refresh_dossier(conn, rules, as_of, source, dossier, delta)?;
    }
    Ok(())
}

/// Reads a rating before it is replaced, for [`refresh_rating`].
pub fn rating_before(
    conn: &Connection,
    source: &str,
    code: &str,
) -> rusqlite::Result<Option<RatingFacts>> {
    facts::stored_rating(conn, source, code)
}

/// Recounts a rating after it was stored, and the dossiers it rates before and after.
pub fn refresh_rating(
    conn: &Connection,
    rules: &CounterRules,
    as_of: NaiveDate,
    source: &str,
    code: &str,
    before: Option<RatingFacts>,
    delta: &mut Delta,
) -> rusqlite::Result<()> {
    let after = facts::stored_rating(conn, source, code)?;
    if after == before {
        return Ok(());
    }
    let mut dossiers = Vec::new();
    if let Some(old) = &before {
        delta.apply(&contrib::rating(rules, old, as_of), -1);
        dossiers.push(old.dossier_code.clone());
    }
    if let Some(new) = &after {
        delta.apply(&contrib::rating(rules, new, as_of), 1);
        dossiers.push(new.dossier_code.clone());
    }
    dossiers.dedup();
    for dossier in &dossiers {
        refresh_dossier(conn, rules, as_of, source, dossier, delta)?;
    }
    Ok(())
}

/// Reads a procedure before it is replaced, for [`refresh_procedure`].
pub fn procedure_before(
    conn: &Connection,
    source: &str,
    key: &str,
) -> rusqlite::Result<Option<ProcedureFacts>> {
    facts::stored_procedure(conn, source, key)
}

/// Recounts a procedure after it was stored.
pub fn refresh_procedure(
    conn: &Connection,
    rules: &CounterRules,
    as_of: NaiveDate,
    source: &str,
    key: &str,
    before: Option<ProcedureFacts>,
    delta: &mut Delta,
) -> rusqlite::Result<()> {
    let after = facts::stored_procedure(conn, source, key)?;
    if after == before {
        return Ok(());
    }
    if let Some(old) = &before {
        delta.apply(&contrib::procedure(rules, old, as_of), -1);
    }
    if let Some(new) = &after {
        delta.apply(&contrib::procedure(rules, new, as_of), 1);
    }
    Ok(())
}

/// Records whose contribution may differ between two as-of days, each with its contribution at
/// both, added to `delta` as (new − old). Dossiers are read from their stored facts.
fn advance_delta(
    conn: &Connection,
    rules: &CounterRules,
    from: NaiveDate,
    to: NaiveDate,
    delta: &mut Delta,
) -> rusqlite::Result<u64> {
    if from == to {
        return Ok(0);
    }
    let (low, high) = (from.min(to), from.max(to));
    let same_month = low.year() == high.year() && low.month() == high.month();
    // Within one month and forward, an open item changes only when it is received, finished or
    // passes its due day between the two days. Otherwise every open item joins or leaves
    // periods, so all of them are recounted.
    let narrow = if same_month && from < to {
        "AND (received_day > :low OR (due_day >= :low AND due_day < :high) OR finished_day <= :high)"
    } else {
        ""
    };
    let open = format!(
        "WHERE received_day <= :high AND (finished_day IS NULL OR finished_day > :low) {narrow}"
    );
    let (low_n, high_n) = (number(low), number(high));
    let mut affected = 0;

    let sql = format!("SELECT {DOSSIER_FACTS_COLUMNS} FROM dossier_facts {open}");
    let mut statement = conn.prepare(&sql)?;
    let mut rows = statement.query(rusqlite::named_params! {":low": low_n, ":high": high_n})?;
    while let Some(row) = rows.next()? {
        let facts = facts::dossier_facts_from_row(row, 0)?;
        delta.apply(&contrib::dossier(rules, &facts, from), -1);
        delta.apply(&contrib::dossier(rules, &facts, to), 1);
        affected += 1;
    }

    let sql = format!("SELECT {FEEDBACK_COLUMNS} FROM feedback {open}");
    let mut statement = conn.prepare(&sql)?;
    let mut rows = statement.query(rusqlite::named_params! {":low": low_n, ":high": high_n})?;
    while let Some(row) = rows.next()? {
        let facts = facts::feedback_from_row(row, 0)?;
        delta.apply(&contrib::feedback(rules, &facts, from), -1);
        delta.apply(&contrib::feedback(rules, &facts, to), 1);
        affected += 1;
    }

    let sql =
        format!("SELECT {RATING_COLUMNS} FROM ratings WHERE rated_day > ?1 AND rated_day <= ?2");
    let mut statement = conn.prepare(&sql)?;
    let mut rows = statement.query(params![low_n, high_n])?;
    while let Some(row) = rows.next()? {
        let facts = facts::rating_from_row(row, 0)?;
        delta.apply(&contrib::rating(rules, &facts, from), -1);
        delta.apply(&contrib::rating(rules, &facts, to), 1);
        affected += 1;
    }

    // Procedures are few, and whether one is in force depends on the day, so all are recounted.
    let sql = format!("SELECT source, key, {PROCEDURE_COLUMNS} FROM procedures");
    let mut statement = conn.prepare(&sql)?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let mut facts = facts::procedure_from_row(row, 2)?;
        facts.usage =
            facts::load_usage(conn, &row.get::<_, String>(0)?, &row.get::<_, String>(1)?)?;
        delta.apply(&contrib::procedure(rules, &facts, from), -1);
        delta.apply(&contrib::procedure(rules, &facts, to), 1);
        affected += 1;
    }
    Ok(affected)
}

/// Moves the counters to a new as-of day: dossiers and feedback that passed their due day
/// unfinished turn late, and open items join the periods that started. Returns the number of
/// records recounted, or `None` when the counters were never built.
pub fn advance(
    conn: &Connection,
    rules: &CounterRules,
    to: NaiveDate,
) -> rusqlite::Result<Option<u64>> {
    let Some(from) = as_of_day(conn)? else {
        return Ok(None);
    };
    let mut delta = Delta::default();
    let affected = advance_delta(conn, rules, from, to, &mut delta)?;
    delta.flush(conn)?;
    write_meta(conn, META_AS_OF, &number(to).to_string())?;
    Ok(Some(affected))
}

/// Every record's contribution as of a day, from freshly derived facts, with those facts.
struct Expected {
    counters: HashMap<CounterKey, i64>,
    dossier_facts: HashMap<(String, String), DossierFacts>,
    usage: HashMap<(String, String), Usage>,
    records: u64,
}

fn expected(
    conn: &Connection,
    rules: &CounterRules,
    as_of: NaiveDate,
) -> rusqlite::Result<Expected> {
    let mut delta = Delta::default();
    let mut dossier_facts = HashMap::new();
    let mut records = 0;

    let mut statement = conn.prepare("SELECT source, code FROM dossiers")?;
    let keys = statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for (source, code) in keys {
        if let Some(facts) = facts::derive_dossier_facts(conn, rules, &source, &code)? {
            delta.apply(&contrib::dossier(rules, &facts, as_of), 1);
            dossier_facts.insert((source, code), facts);
        }
        records += 1;
    }

    let sql = format!("SELECT {FEEDBACK_COLUMNS} FROM feedback");
    for facts in conn
        .prepare(&sql)?
        .query_map([], |row| facts::feedback_from_row(row, 0))?
    {
        delta.apply(&contrib::feedback(rules, &facts?, as_of), 1);
        records += 1;
    }
    let sql = format!("SELECT {RATING_COLUMNS} FROM ratings");
    for facts in conn
        .prepare(&sql)?
        .query_map([], |row| facts::rating_from_row(row, 0))?
    {
        delta.apply(&contrib::rating(rules, &facts?, as_of), 1);
        records += 1;
    }
    let mut usage: HashMap<(String, String), Usage> = HashMap::new();
    for ((source, _), facts) in &dossier_facts {
        let (key, day, online, fee) = usage_of(facts);
        let entry = usage
            .entry((source.clone(), key))
            .or_default()
            .entry(day)
            .or_default();
        entry.0 += online;
        entry.1 += fee;
    }
    for days in usage.values_mut() {
        days.retain(|_, (online, fee)| *online != 0 || *fee != 0);
    }
    usage.retain(|_, days| !days.is_empty());

    let sql = format!("SELECT source, key, {PROCEDURE_COLUMNS} FROM procedures");
    let mut statement = conn.prepare(&sql)?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let mut facts = facts::procedure_from_row(row, 2)?;
        let key = (row.get::<_, String>(0)?, row.get::<_, String>(1)?);
        facts.usage = usage.get(&key).cloned().unwrap_or_default();
        delta.apply(&contrib::procedure(rules, &facts, as_of), 1);
        records += 1;
    }
    Ok(Expected {
        counters: delta.into_map(),
        dossier_facts,
        usage,
        records,
    })
}

/// Rebuilds every counter and dossier facts row from the stored records as of a day, and
/// records the rules and the day. Returns the number of records counted.
pub fn rebuild(conn: &Connection, rules: &CounterRules, as_of: NaiveDate) -> rusqlite::Result<u64> {
    let expected = expected(conn, rules, as_of)?;
    conn.execute("DELETE FROM counters", [])?;
    conn.execute("DELETE FROM dossier_facts", [])?;
    conn.execute("DELETE FROM procedure_usage", [])?;
    for ((source, code), facts) in &expected.dossier_facts {
        facts::store_dossier_facts(conn, source, code, Some(facts))?;
    }
    for ((source, key), days) in &expected.usage {
        for (day, (online, fee)) in days {
            facts::add_usage(conn, source, key, *day, *online, *fee)?;
        }
    }
    Delta::from_map(expected.counters).flush(conn)?;
    write_meta(conn, META_AS_OF, &number(as_of).to_string())?;
    write_meta(conn, META_RULES, &rules.fingerprint())?;
    Ok(expected.records)
}

/// One counter whose stored value differs from a full recompute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Unit code, or VN.
    pub unit: String,
    /// Own records or all below.
    pub reach: Reach,
    /// The period.
    pub period: Period,
    /// The count.
    pub count: CountId,
    /// The period rule.
    pub rule: PeriodRule,
    /// Value the counters hold (moved to the as-of day).
    pub stored: i64,
    /// Value recomputed from the records.
    pub recomputed: i64,
}

/// Result of [`verify`].
#[derive(Debug, Clone, Default)]
pub struct Verification {
    /// The day the stored counters were as of before being moved to the verified day.
    pub stored_as_of: Option<NaiveDate>,
    /// Records recounted.
    pub records: u64,
    /// Nonzero counters compared.
    pub counters: u64,
    /// Counters that differ, sorted.
    pub differences: Vec<Difference>,
    /// Dossiers whose stored facts differ from their records: (source, code).
    pub facts_differences: Vec<(String, String)>,
}

impl Verification {
    /// Returns whether the counters and facts equal a full recompute.
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty() && self.facts_differences.is_empty()
    }
}

/// Compares the counters, moved to `as_of` the way the hub moves them each day, with a full
/// recompute from the stored records as of that day. Writes nothing.
pub fn verify(
    conn: &Connection,
    rules: &CounterRules,
    as_of: NaiveDate,
) -> rusqlite::Result<Verification> {
    let stored_as_of = as_of_day(conn)?;
    let mut stored: HashMap<CounterKey, i64> = HashMap::new();
    let mut statement =
        conn.prepare("SELECT period, reach, unit, count, rule, value FROM counters")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let period: String = row.get(0)?;
        let reach: i64 = row.get(1)?;
        let count: String = row.get(3)?;
        let rule: String = row.get(4)?;
        let key = (|| {
            Some((
                row.get::<_, String>(2).ok()?,
                Reach::from_i64(reach)?,
                period.parse::<Period>().ok()?,
                CountId::from_name(&count)?,
                PeriodRule::parse(&rule)?,
            ))
        })();
        let value: i64 = row.get(5)?;
        match key {
            Some(key) => *stored.entry(key).or_default() += value,
            None => tracing::warn!(period, reach, count, rule, value, "unreadable counter row"),
        }
    }
    if let Some(from) = stored_as_of {
        let mut delta = Delta::default();
        advance_delta(conn, rules, from, as_of, &mut delta)?;
        for (key, change) in delta.into_map() {
            *stored.entry(key).or_default() += change;
        }
    }

    let expected = expected(conn, rules, as_of)?;
    let mut differences = Vec::new();
    let mut keys: Vec<&CounterKey> = stored.keys().chain(expected.counters.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut compared = 0;
    for key in keys {
        let stored_value = stored.get(key).copied().unwrap_or(0);
        let recomputed = expected.counters.get(key).copied().unwrap_or(0);
        if stored_value != 0 || recomputed != 0 {
            compared += 1;
        }
        if stored_value != recomputed {
            let (unit, reach, period, count, rule) = key.clone();
            differences.push(Difference {
                unit,
                reach,
                period,
                count,
                rule,
                stored: stored_value,
                recomputed,
            });
        }
    }

    let mut facts_differences = Vec::new();
    let sql = format!("SELECT source, code, {DOSSIER_FACTS_COLUMNS} FROM dossier_facts");
    let mut statement = conn.prepare(&sql)?;
    let mut seen = 0usize;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let key: (String, String) = (row.get(0)?, row.get(1)?);
        let facts = facts::dossier_facts_from_row(row, 2)?;
        if expected.dossier_facts.get(&key) != Some(&facts) {
            facts_differences.push(key);
        } else {
            seen += 1;
        }
    }
    if seen != expected.dossier_facts.len() {
        let mut stored_keys = std::collections::HashSet::new();
        let mut statement = conn.prepare("SELECT source, code FROM dossier_facts")?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            stored_keys.insert((row.get::<_, String>(0)?, row.get::<_, String>(1)?));
        }
        for key in expected.dossier_facts.keys() {
            if !stored_keys.contains(key) {
                facts_differences.push(key.clone());
            }
        }
    }
    let mut stored_usage: HashMap<(String, String), Usage> = HashMap::new();
    let mut statement =
        conn.prepare("SELECT source, key FROM procedure_usage GROUP BY source, key")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let key: (String, String) = (row.get(0)?, row.get(1)?);
        let days = facts::load_usage(conn, &key.0, &key.1)?;
        stored_usage.insert(key, days);
    }
    for key in stored_usage.keys().chain(expected.usage.keys()) {
        if stored_usage.get(key) != expected.usage.get(key) {
            facts_differences.push((key.0.clone(), format!("usage of procedure {}", key.1)));
        }
    }
    facts_differences.sort();
    facts_differences.dedup();

    Ok(Verification {
        stored_as_of,
        records: expected.records,
        counters: compared,
        differences,
        facts_differences,
    })
}

/// Reads the counters of one period and reach, per unit.
pub(super) fn read_period(
    conn: &Connection,
    period: Period,
    reach: Reach,
) -> rusqlite::Result<Vec<(String, CountId, PeriodRule, i64)>> {
    let mut statement = conn.prepare_cached(
        "SELECT unit, count, rule, value FROM counters WHERE period = ?1 AND reach = ?2",
    )?;
    let rows = statement.query_map(params![period.to_string(), reach.as_i64()], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, i64>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (unit, count, rule, value) = row?;
        if let (Some(count), Some(rule)) = (CountId::from_name(&count), PeriodRule::parse(&rule)) {
            out.push((unit, count, rule, value));
        }
    }
    Ok(out)
}

/// Computes every stored record's contribution as of a day from the stored facts, for the units
/// of a province (or all units). A request for another as-of day than the counters' needs it.
pub(super) fn contributions(
    conn: &Connection,
    rules: &CounterRules,
    province: Option<&str>,
    as_of: NaiveDate,
    mut each: impl FnMut(Contribution),
) -> rusqlite::Result<()> {
    let filter = if province.is_some() {
        "WHERE province_code = ?1"
    } else {
        "WHERE ?1 IS NULL"
    };
    let sql = format!("SELECT {DOSSIER_FACTS_COLUMNS} FROM dossier_facts {filter}");
    for facts in conn
        .prepare(&sql)?
        .query_map([province], |row| facts::dossier_facts_from_row(row, 0))?
    {
        each(contrib::dossier(rules, &facts?, as_of));
    }
    let sql = format!("SELECT {FEEDBACK_COLUMNS} FROM feedback {filter}");
    for facts in conn
        .prepare(&sql)?
        .query_map([province], |row| facts::feedback_from_row(row, 0))?
    {
        each(contrib::feedback(rules, &facts?, as_of));
    }
    let sql = format!("SELECT {RATING_COLUMNS} FROM ratings {filter}");
    for facts in conn
        .prepare(&sql)?
        .query_map([province], |row| facts::rating_from_row(row, 0))?
    {
        each(contrib::rating(rules, &facts?, as_of));
    }
    let sql = format!("SELECT source, key, {PROCEDURE_COLUMNS} FROM procedures {filter}");
    let mut statement = conn.prepare(&sql)?;
    let mut rows = statement.query([province])?;
    while let Some(row) = rows.next()? {
        let mut facts = facts::procedure_from_row(row, 2)?;
        facts.usage =
            facts::load_usage(conn, &row.get::<_, String>(0)?, &row.get::<_, String>(1)?)?;
        each(contrib::procedure(rules, &facts, as_of));
    }
    Ok(())
}
