//! Read functions of completeness: per unit and period, the dossier count the agents reported
//! against the count the hub stores, the open gaps, and each agent's clock offset and last
//! contacts.
//!
//! Reported counts are the agents' latest digests per unit and Vietnam day of receipt, so a day
//! counts as its agent last reported it, and a day never reported counts 0. Like scores, a
//! province covers itself and all its communes, a ministry itself and all its units, the
//! country every province, and the ministries table every ministry. These
//! functions only read, so they run on reader connections.

use std::collections::HashMap;

use chiso_proto::units::{Level, UnitCatalogue};
use chiso_proto::v1::{Completeness, GetScoresResponse};
use chiso_proto::vntime::day_number;
use chrono::NaiveDate;
use rusqlite::{Connection, params};

use super::StoreError;

/// The units a completeness figure covers.
#[derive(Debug, Clone, Copy)]
enum Scope<'a> {
    /// Every province: rows whose locality has a province code.
    Country,
    /// Every ministry: rows whose locality has no province code.
    Ministries,
    /// A locality (province or ministry) and its units.
    Province(&'a str),
    Unit(&'a str),
}

impl Scope<'_> {
    /// Returns the SQL condition on a table with `province_code` and `unit_code` columns, with
    /// the scope's code as parameter `?3`.
    fn condition(self) -> &'static str {
        match self {
            // A province code is two digits (units::is_province_code); ministry codes contain a
            // letter.
            Scope::Country => "?3 IS NULL AND province_code GLOB '[0-9][0-9]'",
            Scope::Ministries => "?3 IS NULL AND province_code NOT GLOB '[0-9][0-9]'",
            Scope::Province(_) => "province_code = ?3",
            Scope::Unit(_) => "unit_code = ?3",
        }
    }

    fn code(self) -> Option<String> {
        match self {
            Scope::Country | Scope::Ministries => None,
            Scope::Province(code) | Scope::Unit(code) => Some(code.to_string()),
        }
    }
}

/// Returns the completeness of a unit over the days `first_day` to `last_day`, both included.
///
/// `unit_code` is a unit code of the catalogue, or `None` for the whole country. A code that is
/// not in the catalogue has no rows, so every figure is 0.
pub fn completeness(
    conn: &Connection,
    catalogue: &UnitCatalogue,
    unit_code: Option<&str>,
    first_day: NaiveDate,
    last_day: NaiveDate,
) -> Result<Completeness, StoreError> {
    let scope = match unit_code {
        None => Scope::Country,
        Some(code) => match catalogue.get(code).map(|unit| unit.level) {
            Some(Level::Province | Level::Ministry) => Scope::Province(code),
            _ => Scope::Unit(code),
        },
    };
    scope_completeness(conn, scope, first_day, last_day)
}

/// Fills `completeness` of every unit in a scorecard, judged by each unit's `level`.
pub fn attach_completeness(
    conn: &Connection,
    response: &mut GetScoresResponse,
    first_day: NaiveDate,
    last_day: NaiveDate,
) -> Result<(), StoreError> {
    for unit in &mut response.units {
        let scope = match unit.level.as_str() {
            "country" => Scope::Country,
            "ministries" => Scope::Ministries,
            "province" | "ministry" => Scope::Province(&unit.unit_code),
            _ => Scope::Unit(&unit.unit_code),
        };
        unit.completeness = Some(scope_completeness(conn, scope, first_day, last_day)?);
    }
    Ok(())
}

fn scope_completeness(
    conn: &Connection,
    scope: Scope<'_>,
    first_day: NaiveDate,
    last_day: NaiveDate,
) -> Result<Completeness, StoreError> {
    let condition = scope.condition();
    let values = params![day_number(first_day), day_number(last_day), scope.code()];

    let hub_count: i64 = conn
        .prepare_cached(&format!(
            "SELECT COUNT(*) FROM dossiers
             WHERE {condition} AND received_day BETWEEN ?1 AND ?2"
        ))?
        .query_row(values, |row| row.get(0))?;
    let (reported, rejected, reported_at_ms): (i64, i64, i64) = conn
        .prepare_cached(&format!(
            "SELECT COALESCE(SUM(agent_count), 0), COALESCE(SUM(rejected_count), 0),
                    COALESCE(MAX(reported_at_ms), 0)
             FROM reported_counts WHERE {condition} AND day BETWEEN ?1 AND ?2"
        ))?
        .query_row(values, |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    let open_gaps: i64 = conn
        .prepare_cached(&format!(
            "SELECT COUNT(*) FROM gaps
             WHERE {condition} AND day BETWEEN ?1 AND ?2 AND closed_at_ms IS NULL"
        ))?
        .query_row(values, |row| row.get(0))?;

    Ok(Completeness {
        agent_count: to_u64(reported).saturating_add(to_u64(rejected)),
        hub_count: to_u64(hub_count),
        rejected_count: to_u64(rejected),
        open_gaps: u32::try_from(open_gaps).unwrap_or(u32::MAX),
        reported_at_unix_ms: reported_at_ms,
    })
}

/// Returns, for each code in `unit_codes`, the dossiers received from `first_day` to `last_day`
/// by the unit's own count: the sum of its agent's latest daily reports, including records the
/// hub rejected. This is the unit's side of DOSSIER_SYNC's denominator.
///
/// Each code counts only dossiers handled by that unit itself, not by its communes. A code with
/// no report in the period maps to 0.
pub fn reported_counts(
    conn: &Connection,
    unit_codes: &[&str],
    first_day: NaiveDate,
    last_day: NaiveDate,
) -> Result<HashMap<String, u64>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT COALESCE(SUM(agent_count + rejected_count), 0) FROM reported_counts
         WHERE unit_code = ?1 AND day BETWEEN ?2 AND ?3",
    )?;
    let mut counts = HashMap::with_capacity(unit_codes.len());
    for code in unit_codes {
        let count: i64 = statement.query_row(
            params![code, day_number(first_day), day_number(last_day)],
            |row| row.get(0),
        )?;
        counts.insert((*code).to_string(), to_u64(count));
    }
    Ok(counts)
}

/// An agent's last contacts with the hub, on the hub's clock, and its clock offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentClock {
    /// The agent's locality.
    pub locality: String,
    /// Highest sequence number committed for the agent.
    pub last_seq: u64,
    /// Version the agent sent in its last Hello.
    pub agent_version: Option<String>,
    /// Hub time of the last Hello, in Unix milliseconds.
    pub last_hello_ms: Option<i64>,
    /// Agent clock minus hub clock at the last Hello, in milliseconds. It includes the Hello's
    /// network delay, so it is accurate to about one round trip.
    pub clock_offset_ms: Option<i64>,
    /// Hub time of the last committed batch, in Unix milliseconds.
    pub last_batch_ms: Option<i64>,
    /// Hub time of the last compared digest, in Unix milliseconds.
    pub last_digest_ms: Option<i64>,
}

/// Returns every agent the hub has seen, ordered by locality.
pub fn agent_clocks(conn: &Connection) -> Result<Vec<AgentClock>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT locality, last_seq, agent_version, last_hello_ms, clock_offset_ms,
                last_batch_ms, last_digest_ms
         FROM agents ORDER BY locality",
    )?;
    let agents = statement
        .query_map([], |row| {
            Ok(AgentClock {
                locality: row.get(0)?,
                last_seq: to_u64(row.get(1)?),
                agent_version: row.get(2)?,
                last_hello_ms: row.get(3)?,
                clock_offset_ms: row.get(4)?,
                last_batch_ms: row.get(5)?,
                last_digest_ms: row.get(6)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(agents)
}

/// Converts a stored count back; the store writes only counts from 0 to `i64::MAX`.
fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}
