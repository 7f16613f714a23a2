//! Scorecards per unit and month, computed from the stored dossiers with grouped SQL.
//!
//! A scorecard covers the country, a province (its own dossiers plus all its communes') or a
//! commune, and optionally its direct children. Aggregates are rates of summed counts, never
//! averages of the children's scores. Periods use Vietnam calendar days: a month runs from its
//! first day to its last day, or to the as-of day while it is still running, and a month that
//! starts after the as-of day is an error.
//!
//! The rules for which dossiers count in a period live in the `count` submodule.

mod count;

use std::collections::HashMap;

use chiso_proto::units::{self, Level, UnitCatalogue};
use chiso_proto::v1::{GetScoresResponse, UnitScore};
use chiso_proto::vntime::Month;
use chrono::NaiveDate;
use rusqlite::Connection;

use crate::indicators;
use count::{Counts, Grouping, Period, Scope, count_dossiers};

/// Unit code of the whole country in scorecards.
pub const COUNTRY_CODE: &str = "VN";

/// Name of the whole country in scorecards.
pub const COUNTRY_NAME: &str = "Việt Nam";

/// Statuses left out of DOSSIER_ON_TIME: not accepted (3), withdrawn (7) and stopped (8).
// NOTE: medium confidence. The Government Office's formula description (transcript in
// ChippedTopaz/qd766 web/src/formula-document.ts, indicator 2.1) lists refusal, stopping and
// withdrawal of an accepted dossier among the finishing states, so 7 and 8 may belong in the
// denominator with their finish date.
pub const EXCLUDED_FROM_ON_TIME: [i32; 3] = [3, 7, 8];

/// A scorecard request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreQuery {
    /// A province or commune code, or `None` for the whole country.
    pub unit_code: Option<String>,
    /// The month to score.
    pub month: Month,
    /// Also score the unit's direct children.
    pub include_children: bool,
    /// Evaluation time in Unix seconds. Its Vietnam day is the last day of a running month.
    pub as_of: i64,
}

/// Failures of a scorecard computation.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// The requested unit is not in the unit catalogue.
    #[error(
        "unit code {code:?} is not in the 2025 unit catalogue; use a province code (2 digits), a commune code (5 digits), or none for the whole country"
    )]
    UnknownUnit {
        /// The requested code.
        code: String,
    },
    /// The requested month starts after the as-of day.
    #[error(
        "period {period} starts after the as-of day {as_of_day}; request {as_of_month} or an earlier month"
    )]
    PeriodInFuture {
        /// The requested month.
        period: Month,
        /// Vietnam day of the as-of time.
        as_of_day: NaiveDate,
        /// The month that contains the as-of day.
        as_of_month: Month,
    },
    /// An indicator of the catalogue has no counting rule in this build.
    #[error("indicator {id} has no counting rule in this hub build; use a matching catalogue")]
    UnsupportedIndicator {
        /// The indicator id.
        id: String,
    },
    /// A SQLite query failed.
    #[error("score query failed: {source}")]
    Sqlite {
        /// Underlying SQLite error.
        #[from]
        source: rusqlite::Error,
    },
}

/// Computes the scorecard of a unit, and of its direct children if requested.
///
/// `query.as_of` is taken as given; callers that accept 0 for "now" replace it first.
pub fn compute(
    conn: &Connection,
    catalogue: &UnitCatalogue,
    query: &ScoreQuery,
) -> Result<GetScoresResponse, ScoreError> {
    let period = Period::resolve(query.month, query.as_of)?;
    let code = query.unit_code.as_deref().filter(|code| !code.is_empty());

    let units = match code {
        None | Some(COUNTRY_CODE) => score_country(conn, catalogue, period, query)?,
        Some(code) => {
            let unit = catalogue.get(code).ok_or_else(|| ScoreError::UnknownUnit {
                code: code.to_string(),
            })?;
            match unit.level {
                Level::Province => score_province(conn, catalogue, unit, period, query)?,
                Level::Commune => score_commune(conn, unit, period)?,
            }
        }
    };

    Ok(GetScoresResponse {
        catalogue_version: indicators::CATALOGUE_VERSION.to_string(),
        computed_at_unix_ms: chrono::Utc::now().timestamp_millis(),
        period: query.month.to_string(),
        units,
        unit_catalogue_version: units::CATALOGUE_VERSION.to_string(),
    })
}

fn score_country(
    conn: &Connection,
    catalogue: &UnitCatalogue,
    period: Period,
    query: &ScoreQuery,
) -> Result<Vec<UnitScore>, ScoreError> {
    let by_province = count_dossiers(conn, Scope::Country, Grouping::Province, period)?;
    let mut scores = vec![score_unit(
        COUNTRY_CODE,
        COUNTRY_NAME,
        "country",
        &sum(&by_province),
    )?];

    if query.include_children {
        for code in catalogue.province_codes() {
            let name = catalogue.get(code).map_or("", |unit| unit.name.as_str());
            let counts = by_province.get(code).copied().unwrap_or_default();
            scores.push(score_unit(code, name, Level::Province.as_str(), &counts)?);
        }
    }
    Ok(scores)
}

fn score_province(
    conn: &Connection,
    catalogue: &UnitCatalogue,
    province: &units::Unit,
    period: Period,
    query: &ScoreQuery,
) -> Result<Vec<UnitScore>, ScoreError> {
    let scope = Scope::Province(&province.code);
    let by_unit = count_dossiers(conn, scope, Grouping::Unit, period)?;
    let mut scores = vec![score_unit(
        &province.code,
        &province.name,
        Level::Province.as_str(),
        &sum(&by_unit),
    )?];

    if query.include_children {
        for code in catalogue.communes_of(&province.code) {
            let name = catalogue.get(code).map_or("", |unit| unit.name.as_str());
            let counts = by_unit.get(code).copied().unwrap_or_default();
            scores.push(score_unit(code, name, Level::Commune.as_str(), &counts)?);
        }
    }
    Ok(scores)
}

fn score_commune(
    conn: &Connection,
    commune: &units::Unit,
    period: Period,
) -> Result<Vec<UnitScore>, ScoreError> {
    let scope = Scope::Unit(&commune.code);
    let by_unit = count_dossiers(conn, scope, Grouping::Unit, period)?;
    let counts = by_unit.get(&commune.code).copied().unwrap_or_default();
    Ok(vec![score_unit(
        &commune.code,
        &commune.name,
        Level::Commune.as_str(),
        &counts,
    )?])
}

fn sum(groups: &HashMap<String, Counts>) -> Counts {
    let mut total = Counts::default();
    for counts in groups.values() {
        total.add(counts);
    }
    total
}

/// Scores every indicator of the catalogue from one unit's counts.
fn score_unit(
    code: &str,
    name: &str,
    level: &str,
    counts: &Counts,
) -> Result<UnitScore, ScoreError> {
    let mut unit = UnitScore {
        unit_code: code.to_string(),
        unit_name: name.to_string(),
        level: level.to_string(),
        ..UnitScore::default()
    };
    for def in indicators::definitions() {
        let (numerator, denominator) =
            counts
                .fraction(def.id)
                .ok_or_else(|| ScoreError::UnsupportedIndicator {
                    id: def.id.to_string(),
                })?;
        let scored = indicators::score(def, numerator, denominator);
        if scored.assessed {
            unit.points += scored.points.unwrap_or(0.0);
            unit.max_points += def.max_points;
        }
        unit.indicators.push(scored);
    }
    Ok(unit)
}

#[cfg(test)]
mod tests;
