//! Scorecards per unit and period (month, quarter, half-year or year) for an indicator
//! catalogue.
//!
//! A scorecard covers the country, a province (its own dossiers plus all its communes') or a
//! commune, and optionally its direct children. Ministries form a separate table, as on the
//! national portal: a ministry's scorecard covers its own records and those of all its units,
//! `MINISTRIES` covers every ministry, and the country (`VN`) is the local government only.
//! Aggregates are rates of summed counts, never averages of the children's scores. A province is
//! ranked among all provinces, a ministry among all ministries, a commune among the communes of
//! its province and a ministry unit among the units of its ministry, whether or not its peers
//! are returned. Periods use Vietnam calendar days: a period runs from its first day to its last
//! day, or to the as-of day while it is still running, and a period that starts after the as-of
//! day is an error.
//!
//! Counts come from a [`CountSource`] (the running counters, [`CounterSource`]; [`SqlDossierSource`]
//! recounts dossiers in SQL as an independent check); [`engine`] turns them into
//! points, and the what-if command uses the same engine.

pub mod engine;
mod rank;
pub mod reported;
pub mod source;
pub mod sql;

use std::collections::HashMap;

use chiso_proto::units::{Level, Unit, UnitCatalogue};
use chiso_proto::v1::{Band, GetScoresResponse, UnitScore};
use chiso_proto::vntime::Period;
use chrono::NaiveDate;
use rusqlite::Connection;

use crate::catalogue::{Catalogue, Leaf};
use crate::counters::{CounterRules, CounterSource};
use engine::LeafInput;
pub use source::{CountSource, Counts, Grouping, Scope, Window};
pub use sql::SqlDossierSource;

/// Unit code of the whole country in scorecards.
pub const COUNTRY_CODE: &str = "VN";

/// Name of the whole country in scorecards.
pub const COUNTRY_NAME: &str = "Việt Nam";

/// Unit code of the table of all ministries in scorecards.
pub const MINISTRIES_CODE: &str = chiso_proto::ministries::MINISTRIES_CODE;

/// Name of the table of all ministries in scorecards: ministries and ministry-level agencies.
pub const MINISTRIES_NAME: &str = "Bộ, cơ quan ngang bộ";

/// A scorecard request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreQuery {
    /// A unit code of the catalogue, [`MINISTRIES_CODE`] for all ministries, or `None` (or
    /// [`COUNTRY_CODE`]) for the whole country.
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
        "unit code {code:?} is not in the unit catalogue; use a province code (2 digits), a commune code (5 digits), a ministry or ministry unit code, MINISTRIES for all ministries, or none for the whole country"
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

/// Computes the scorecard of a unit from the store's counters, built with the default rules.
///
/// `query.as_of` is taken as given; callers that accept 0 for "now" replace it first.
pub fn compute(
    conn: &Connection,
    units: &UnitCatalogue,
    catalogue: &Catalogue,
    query: &ScoreQuery,
) -> Result<GetScoresResponse, ScoreError> {
    compute_with_rules(conn, units, catalogue, CounterRules::default(), query)
}

/// Computes the scorecard of a unit from the store's counters, built with the given rules.
pub fn compute_with_rules(
    conn: &Connection,
    units: &UnitCatalogue,
    catalogue: &Catalogue,
    rules: CounterRules,
    query: &ScoreQuery,
) -> Result<GetScoresResponse, ScoreError> {
    compute_from(
        &CounterSource::new(conn, units, rules),
        units,
        catalogue,
        query,
    )
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
        Some(MINISTRIES_CODE) => scorer.all_ministries(query.include_children)?,
        Some(code) => {
            let unit = units.get(code).ok_or_else(|| ScoreError::UnknownUnit {
                code: code.to_string(),
            })?;
            match unit.level {
                Level::Province => scorer.province(unit, query.include_children)?,
                Level::Commune => scorer.commune(unit)?,
                Level::Ministry => scorer.ministry(unit, query.include_children)?,
                Level::MinistryUnit => scorer.ministry_unit(unit)?,
            }
        }
    };

    Ok(response(catalogue, units.version(), query.period, scores))
}

/// Wraps scored units with the catalogues' versions, maximum, bands and unconfirmed ids.
fn response(
    catalogue: &Catalogue,
    unit_catalogue_version: &str,
    period: Period,
    units: Vec<UnitScore>,
) -> GetScoresResponse {
    let bands = catalogue.bands.iter().map(|band| Band {
        name: band.name.clone(),
        min_points: band.min_points,
    });
    GetScoresResponse {
        catalogue_version: catalogue.version.clone(),
        computed_at_unix_ms: chrono::Utc::now().timestamp_millis(),
        period: period.to_string(),
        units,
        unit_catalogue_version: unit_catalogue_version.to_string(),
        catalogue_max_points: catalogue.total_points,
        bands: bands.collect(),
        unconfirmed_indicators: catalogue.unconfirmed_ids(),
        watermarks: Vec::new(),
        counters_as_of_day: 0,
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

    /// Counts every locality (province or ministry) with its units, from one grouped query.
    fn localities(&self) -> Result<HashMap<String, Counts>, ScoreError> {
        self.source
            .count(Scope::Country, Grouping::Province, self.window)
    }

    /// Scores localities of one table (provinces or ministries), ranked among themselves, and
    /// returns the sum of their counts with them.
    fn table<'c>(
        &self,
        by_locality: &HashMap<String, Counts>,
        codes: impl Iterator<Item = &'c str>,
        level: Level,
    ) -> (Counts, Vec<UnitScore>) {
        let mut total = Counts::default();
        let mut scores = Vec::new();
        for code in codes {
            let counts = by_locality.get(code).copied().unwrap_or_default();
            total.add(&counts);
            scores.push(self.unit(code, &self.name(code), level.as_str(), &counts));
        }
        rank::assign(&mut scores);
        (total, scores)
    }

    /// Scores every province, ranked among themselves; the total is the country's.
    fn provinces(&self) -> Result<(Counts, Vec<UnitScore>), ScoreError> {
        let by_locality = self.localities()?;
        Ok(self.table(&by_locality, self.units.province_codes(), Level::Province))
    }

    /// Scores every ministry, ranked among themselves; the total is the ministries table's.
    fn ministries(&self) -> Result<(Counts, Vec<UnitScore>), ScoreError> {
        let by_locality = self.localities()?;
        Ok(self.table(&by_locality, self.units.ministry_codes(), Level::Ministry))
    }

    /// Scores the units of a locality from one grouped query, ranked among themselves: the
    /// communes of a province or the units of a ministry.
    fn members(
        &self,
        locality: &str,
        codes: &[String],
        level: Level,
    ) -> Result<Vec<UnitScore>, ScoreError> {
        let by_unit = self
            .source
            .count(Scope::Province(locality), Grouping::Unit, self.window)?;
        let mut members: Vec<UnitScore> = codes
            .iter()
            .map(|code| {
                let counts = by_unit.get(code).copied().unwrap_or_default();
                self.unit(code, &self.name(code), level.as_str(), &counts)
            })
            .collect();
        rank::assign(&mut members);
        Ok(members)
    }

    fn communes(&self, province: &str) -> Result<Vec<UnitScore>, ScoreError> {
        self.members(province, self.units.communes_of(province), Level::Commune)
    }

    fn ministry_units(&self, ministry: &str) -> Result<Vec<UnitScore>, ScoreError> {
        self.members(
            ministry,
            self.units.units_of_ministry(ministry),
            Level::MinistryUnit,
        )
    }

    fn country(&self, include_children: bool) -> Result<Vec<UnitScore>, ScoreError> {
        let (total, provinces) = self.provinces()?;
        let mut scores = vec![self.unit(COUNTRY_CODE, COUNTRY_NAME, "country", &total)];
        if include_children {
            scores.extend(provinces);
        }
        Ok(scores)
    }

    fn all_ministries(&self, include_children: bool) -> Result<Vec<UnitScore>, ScoreError> {
        let (total, ministries) = self.ministries()?;
        let mut scores = vec![self.unit(MINISTRIES_CODE, MINISTRIES_NAME, "ministries", &total)];
        if include_children {
            scores.extend(ministries);
        }
        Ok(scores)
    }

    /// Picks one unit's scorecard out of its scored peers.
    fn pick(peers: Vec<UnitScore>, unit: &Unit) -> Result<UnitScore, ScoreError> {
        peers
            .into_iter()
            .find(|peer| peer.unit_code == unit.code)
            .ok_or_else(|| ScoreError::UnknownUnit {
                code: unit.code.clone(),
            })
    }

    // NOTE: ranking a province scores all provinces, which reads every locality's counters per
    // request.
    fn province(
        &self,
        province: &Unit,
        include_children: bool,
    ) -> Result<Vec<UnitScore>, ScoreError> {
        let (_, provinces) = self.provinces()?;
        let mut scores = vec![Self::pick(provinces, province)?];
        if include_children {
            scores.extend(self.communes(&province.code)?);
        }
        Ok(scores)
    }

    fn commune(&self, commune: &Unit) -> Result<Vec<UnitScore>, ScoreError> {
        let communes = self.communes(&commune.province_code)?;
        Ok(vec![Self::pick(communes, commune)?])
    }

    fn ministry(
        &self,
        ministry: &Unit,
        include_children: bool,
    ) -> Result<Vec<UnitScore>, ScoreError> {
        let (_, ministries) = self.ministries()?;
        let mut scores = vec![Self::pick(ministries, ministry)?];
        if include_children {
            scores.extend(self.ministry_units(&ministry.code)?);
        }
        Ok(scores)
    }

    /// Scores a ministry unit on its own records, ranked among every unit of its ministry.
    fn ministry_unit(&self, unit: &Unit) -> Result<Vec<UnitScore>, ScoreError> {
        let peers = self.ministry_units(&unit.province_code)?;
        Ok(vec![Self::pick(peers, unit)?])
    }
}

#[cfg(test)]
mod ministry_tests;
#[cfg(test)]
mod tests;
