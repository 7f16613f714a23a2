//! Scorecards per unit and period (month, quarter, half-year or year) for an indicator
//! catalogue.
//!
//! A scorecard covers the country, a province (its own dossiers plus all its communes') or a
//! commune, and optionally its direct children. Aggregates are rates of summed counts, never
//! averages of the children's scores. A province is ranked among all provinces and a commune
//! among the communes of its province, whether or not its peers are returned. Periods use
//! Vietnam calendar days: a period runs from its first day to its last day, or to the as-of day
//! while it is still running, and a period that starts after the as-of day is an error.
//!
//! Counts come from a [`CountSource`] (today [`SqlDossierSource`]); [`engine`] turns them into
//! points, and the what-if command uses the same engine.

pub mod engine;
mod rank;
pub mod source;
pub mod sql;

use chiso_proto::units::{self, Level, Unit, UnitCatalogue};
use chiso_proto::v1::{Band, GetScoresResponse, UnitScore};
use chiso_proto::vntime::Period;
use chrono::NaiveDate;
use rusqlite::Connection;

use crate::catalogue::{Catalogue, Leaf};
use engine::LeafInput;
pub use source::{CountSource, Counts, Grouping, Scope, Window};
pub use sql::{EXCLUDED_FROM_ON_TIME, SqlDossierSource};

/// Unit code of the whole country in scorecards.
pub const COUNTRY_CODE: &str = "VN";

/// Name of the whole country in scorecards.
pub const COUNTRY_NAME: &str = "Việt Nam";

/// A scorecard request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreQuery {
    /// A province or commune code, or `None` for the whole country.
    pub unit_code: Option<String>,
    /// The period to score.
    pub period: Period,
    /// Also score the unit's direct children.
    pub include_children: bool,
    /// Evaluation time in Unix seconds. Its Vietnam day is the last day of a running period.
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
    /// The requested period starts after the as-of day.
    #[error(
        "period {period} starts after the as-of day {as_of_day}; request {as_of_period} or an earlier period"
    )]
    PeriodInFuture {
        /// The requested period.
        period: Period,
        /// Vietnam day of the as-of time.
        as_of_day: NaiveDate,
        /// The period of the same kind that contains the as-of day.
        as_of_period: Period,
    },
    /// A SQLite query failed.
    #[error("score query failed: {source}")]
    Sqlite {
        /// Underlying SQLite error.
        #[from]
        source: rusqlite::Error,
    },
}

/// Computes the scorecard of a unit from the stored dossiers.
///
/// `query.as_of` is taken as given; callers that accept 0 for "now" replace it first.
pub fn compute(
    conn: &Connection,
    units: &UnitCatalogue,
    catalogue: &Catalogue,
    query: &ScoreQuery,
) -> Result<GetScoresResponse, ScoreError> {
    compute_from(&SqlDossierSource::new(conn), units, catalogue, query)
}

/// Computes the scorecard of a unit, and of its direct children if requested, from any source.
pub fn compute_from(
    source: &dyn CountSource,
    units: &UnitCatalogue,
    catalogue: &Catalogue,
    query: &ScoreQuery,
) -> Result<GetScoresResponse, ScoreError> {
    let window = Window::resolve(query.period, query.as_of)?;
    let scorer = Scorer {
        source,
        units,
        catalogue,
        window,
    };
    let code = query.unit_code.as_deref().filter(|code| !code.is_empty());

    let scores = match code {
        None | Some(COUNTRY_CODE) => scorer.country(query.include_children)?,
        Some(code) => {
            let unit = units.get(code).ok_or_else(|| ScoreError::UnknownUnit {
                code: code.to_string(),
            })?;
            match unit.level {
                Level::Province => scorer.province(unit, query.include_children)?,
                Level::Commune => scorer.commune(unit)?,
            }
        }
    };

    Ok(response(catalogue, query.period, scores))
}

/// Wraps scored units with the catalogue's version, maximum, bands and unconfirmed ids.
fn response(catalogue: &Catalogue, period: Period, units: Vec<UnitScore>) -> GetScoresResponse {
    let bands = catalogue.bands.iter().map(|band| Band {
        name: band.name.clone(),
        min_points: band.min_points,
    });
    GetScoresResponse {
        catalogue_version: catalogue.version.clone(),
        computed_at_unix_ms: chrono::Utc::now().timestamp_millis(),
        period: period.to_string(),
        units,
        unit_catalogue_version: units::CATALOGUE_VERSION.to_string(),
        catalogue_max_points: catalogue.total_points,
        bands: bands.collect(),
        unconfirmed_indicators: catalogue.unconfirmed_ids(),
    }
}

/// Scores one unit from its counts through the engine.
pub fn score_counts(source: &dyn CountSource, catalogue: &Catalogue, counts: &Counts) -> UnitScore {
    let input = |leaf: &Leaf<'_>| {
        let Some(fraction) = leaf.measure.fraction else {
            return LeafInput::Counts {
                numerator: 0,
                denominator: 0,
            };
        };
        let missing = source
            .unavailable(fraction.numerator)
            .or_else(|| source.unavailable(fraction.denominator));
        match missing {
            Some(note) => LeafInput::Missing(note),
            None => LeafInput::Counts {
                numerator: counts.get(fraction.numerator, fraction.period),
                denominator: counts.get(fraction.denominator, fraction.period),
            },
        }
    };
    engine::score(catalogue, &input)
}

struct Scorer<'a> {
    source: &'a dyn CountSource,
    units: &'a UnitCatalogue,
    catalogue: &'a Catalogue,
    window: Window,
}

impl Scorer<'_> {
    fn unit(&self, code: &str, name: &str, level: &str, counts: &Counts) -> UnitScore {
        let mut unit = score_counts(self.source, self.catalogue, counts);
        unit.unit_code = code.to_string();
        unit.unit_name = name.to_string();
        unit.level = level.to_string();
        unit
    }

    fn name(&self, code: &str) -> String {
        self.units
            .get(code)
            .map_or_else(String::new, |unit| unit.name.clone())
    }

    /// Scores every province from one grouped query, ranked among themselves.
    fn provinces(&self) -> Result<(Counts, Vec<UnitScore>), ScoreError> {
        let by_province = self
            .source
            .count(Scope::Country, Grouping::Province, self.window)?;
        let mut provinces: Vec<UnitScore> = self
            .units
            .province_codes()
            .map(|code| {
                let counts = by_province.get(code).copied().unwrap_or_default();
                self.unit(code, &self.name(code), Level::Province.as_str(), &counts)
            })
            .collect();
        rank::assign(&mut provinces);
        Ok((Counts::sum(by_province.values()), provinces))
    }

    /// Scores every commune of a province from one grouped query, ranked among themselves.
    fn communes(&self, province: &str) -> Result<Vec<UnitScore>, ScoreError> {
        let by_unit = self
            .source
            .count(Scope::Province(province), Grouping::Unit, self.window)?;
        let mut communes: Vec<UnitScore> = self
            .units
            .communes_of(province)
            .iter()
            .map(|code| {
                let counts = by_unit.get(code).copied().unwrap_or_default();
                self.unit(code, &self.name(code), Level::Commune.as_str(), &counts)
            })
            .collect();
        rank::assign(&mut communes);
        Ok(communes)
    }

    fn country(&self, include_children: bool) -> Result<Vec<UnitScore>, ScoreError> {
        let (total, provinces) = self.provinces()?;
        let mut scores = vec![self.unit(COUNTRY_CODE, COUNTRY_NAME, "country", &total)];
        if include_children {
            scores.extend(provinces);
        }
        Ok(scores)
    }

    // NOTE: ranking a province scores all provinces, which costs a country-wide query per
    // request until counts come from running counters.
    fn province(
        &self,
        province: &Unit,
        include_children: bool,
    ) -> Result<Vec<UnitScore>, ScoreError> {
        let (_, provinces) = self.provinces()?;
        let own = provinces
            .into_iter()
            .find(|unit| unit.unit_code == province.code)
            .ok_or_else(|| ScoreError::UnknownUnit {
                code: province.code.clone(),
            })?;
        let mut scores = vec![own];
        if include_children {
            scores.extend(self.communes(&province.code)?);
        }
        Ok(scores)
    }

    fn commune(&self, commune: &Unit) -> Result<Vec<UnitScore>, ScoreError> {
        let province = commune.province_code.as_str();
        let own = self
            .communes(province)?
            .into_iter()
            .find(|unit| unit.unit_code == commune.code)
            .ok_or_else(|| ScoreError::UnknownUnit {
                code: commune.code.clone(),
            })?;
        Ok(vec![own])
    }
}

#[cfg(test)]
mod tests;
