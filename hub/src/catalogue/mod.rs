//! The indicator catalogue as versioned data: groups, indicators, group formulas and rating
//! bands, loaded from TOML and validated before the hub serves a single score.
//!
//! Two catalogues are built in (embedded from `hub/catalogues/`): `dvcqg-2026`, the national
//! portal's six groups, and `766-2022`, the same indicators in the decision's five groups. A
//! hub may also load a catalogue file. A loaded catalogue is consistent. Its ids are unique,
//! every count name is in the registry ([`counts`]) and every numerator is a subset of its
//! denominator. Each group's indicator points (and formula caps) add up to the group maximum,
//! and the group maxima add up to the total. Uncertain facts (points, thresholds,
//! zero-denominator results, bands) are data in the TOML files, each with its source and
//! confidence.

pub mod counts;
mod error;
mod load;
mod measure;
pub mod rule;
mod validate;

use std::path::Path;
use std::sync::{Arc, OnceLock};

pub use counts::{CountId, CountKey, RecordKind};
pub use error::CatalogueError;
pub use rule::{Confidence, PeriodRule, Rule, ZeroDenominator};

/// Id of the catalogue a hub uses when its configuration names none.
pub const DEFAULT_CATALOGUE: &str = "dvcqg-2026";

/// Points within this distance below a band's minimum reach the band.
const BAND_TOLERANCE: f64 = 1e-9;

/// The built-in catalogues: id and TOML text.
const BUILTIN: [(&str, &str); 2] = [
    (
        "dvcqg-2026",
        include_str!("../../catalogues/dvcqg-2026.toml"),
    ),
    ("766-2022", include_str!("../../catalogues/766-2022.toml")),
];

/// A validated indicator catalogue.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalogue {
    /// Version tag reported with every scorecard, such as `dvcqg-2026`.
    pub version: String,
    /// Title of the catalogue.
    pub title: String,
    /// Sum of the group maxima (100).
    pub total_points: f64,
    /// Groups in scorecard order.
    pub groups: Vec<Group>,
    /// Indicators in scorecard order.
    pub indicators: Vec<Indicator>,
    /// Group formulas that combine the rates of several indicators.
    pub formulas: Vec<Formula>,
    /// Rating bands, highest minimum first.
    pub bands: Vec<Band>,
    /// Source of the band thresholds.
    pub bands_source: String,
    /// Confidence of the band thresholds.
    pub bands_confidence: Confidence,
}

/// A group of indicators with a maximum of points.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Stable id, such as `3`.
    pub id: String,
    /// Name in Vietnamese, shown on scorecards.
    pub name_vi: String,
    /// Name in English.
    pub name_en: String,
    /// Most points the group gives.
    pub max_points: f64,
    /// Source of the maximum.
    pub source: String,
    /// Confidence of the maximum.
    pub confidence: Confidence,
}

/// One indicator of a catalogue.
#[derive(Debug, Clone, PartialEq)]
pub struct Indicator {
    /// Stable id, the portal's metric code where it has one.
    pub id: String,
    /// Id of its group.
    pub group: String,
    /// Name in Vietnamese, shown on scorecards.
    pub name_vi: String,
    /// Name in English.
    pub name_en: String,
    /// Most points the indicator gives (for a formula term: its most before the formula's cap).
    pub max_points: f64,
    /// True when no public source confirms the rule.
    pub unconfirmed: bool,
    /// Public sources of the definition.
    pub source: String,
    /// Confidence of the definition.
    pub confidence: Confidence,
    /// Measurement of the indicator.
    pub body: Body,
}

/// Measurement of an indicator: direct, or the sum of parts.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// One numerator, denominator and rule.
    Measure(Measure),
    /// Parts, each with its own counts and rule, whose points add up to the indicator's.
    Parts(Vec<Part>),
}

/// A part of an indicator made of parts, such as 3.3 of ONLINE_SERVICE.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// Stable id, unique among indicators and parts.
    pub id: String,
    /// Name in Vietnamese.
    pub name_vi: String,
    /// Name in English.
    pub name_en: String,
    /// Counts and rule.
    pub measure: Measure,
    /// Public sources of the part.
    pub source: String,
    /// Confidence of the part.
    pub confidence: Confidence,
}

/// The counts and the rule of an indicator or a part.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measure {
    /// Numerator, denominator and period rule; `None` only for a fixed value.
    pub fraction: Option<Fraction>,
    /// Most points.
    pub max_points: f64,
    /// Rule from rate to points.
    pub rule: Rule,
    /// Result when the denominator is zero.
    pub zero_denominator: ZeroDenominator,
}

/// The counts an indicator divides.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fraction {
    /// Count of the records that meet the indicator.
    pub numerator: CountId,
    /// Count of the records the indicator looks at.
    pub denominator: CountId,
    /// Period rule that selects the counted records.
    pub period: PeriodRule,
}

/// A group formula: the sum of its terms, at most its cap.
#[derive(Debug, Clone, PartialEq)]
pub struct Formula {
    /// Stable id, such as `PAYMENT`.
    pub id: String,
    /// Id of its group.
    pub group: String,
    /// Most points the formula gives.
    pub cap: f64,
    /// Ids of the term indicators; each has a [`Rule::Term`].
    pub terms: Vec<String>,
}

/// A rating band: a total of at least `min_points` earns the name.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    /// Name, such as "Tốt".
    pub name: String,
    /// Lowest total of the band.
    pub min_points: f64,
}

/// A scored item that reads counts directly: an indicator without parts, or a part.
#[derive(Debug, Clone, Copy)]
pub struct Leaf<'a> {
    /// The leaf's id.
    pub id: &'a str,
    /// The indicator the leaf belongs to (itself when it has no parts).
    pub indicator: &'a Indicator,
    /// Counts and rule.
    pub measure: &'a Measure,
}

impl Catalogue {
    /// Returns the ids of the built-in catalogues.
    pub fn builtin_ids() -> impl Iterator<Item = &'static str> {
        BUILTIN.iter().map(|(id, _)| *id)
    }

    /// Loads and validates a built-in catalogue.
    pub fn builtin(id: &str) -> Result<Catalogue, CatalogueError> {
        let (_, text) = BUILTIN
            .iter()
            .find(|(builtin, _)| *builtin == id)
            .ok_or_else(|| CatalogueError::UnknownBuiltin {
                id: id.to_string(),
                known: Catalogue::builtin_ids().collect::<Vec<_>>().join(", "),
            })?;
        Catalogue::parse(text, &format!("{id} (built in)"))
    }

    /// Returns the default built-in catalogue, parsed once per process.
    pub fn default_shared() -> Arc<Catalogue> {
        static DEFAULT: OnceLock<Arc<Catalogue>> = OnceLock::new();
        DEFAULT
            .get_or_init(|| {
                let catalogue = Catalogue::builtin(DEFAULT_CATALOGUE)
                    .expect("the built-in catalogues pass validation, which a unit test checks");
                Arc::new(catalogue)
            })
            .clone()
    }

    /// Loads and validates a catalogue file.
    pub fn from_file(path: &Path) -> Result<Catalogue, CatalogueError> {
        let text = std::fs::read_to_string(path).map_err(|source| CatalogueError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Catalogue::parse(&text, &path.display().to_string())
    }

    /// Parses and validates catalogue TOML; `origin` names it in error messages.
    pub fn parse(text: &str, origin: &str) -> Result<Catalogue, CatalogueError> {
        let catalogue = load::parse(text, origin)?;
        validate::check(&catalogue, origin)?;
        Ok(catalogue)
    }

    /// Returns the indicators of a group, in catalogue order.
    pub fn indicators_of<'a>(&'a self, group: &'a str) -> impl Iterator<Item = &'a Indicator> {
        self.indicators
            .iter()
            .filter(move |indicator| indicator.group == group)
    }

    /// Returns the formulas of a group.
    pub fn formulas_of<'a>(&'a self, group: &'a str) -> impl Iterator<Item = &'a Formula> {
        self.formulas
            .iter()
            .filter(move |formula| formula.group == group)
    }

    /// Returns the formula an indicator is a term of, if any.
    pub fn formula_of(&self, indicator: &str) -> Option<&Formula> {
        self.formulas
            .iter()
            .find(|formula| formula.terms.iter().any(|term| term == indicator))
    }

    /// Returns every leaf: indicators without parts, and the parts of the others.
    pub fn leaves(&self) -> impl Iterator<Item = Leaf<'_>> {
        self.indicators
            .iter()
            .flat_map(|indicator| -> Vec<Leaf<'_>> {
                match &indicator.body {
                    Body::Measure(measure) => vec![Leaf {
                        id: &indicator.id,
                        indicator,
                        measure,
                    }],
                    Body::Parts(parts) => parts
                        .iter()
                        .map(|part| Leaf {
                            id: &part.id,
                            indicator,
                            measure: &part.measure,
                        })
                        .collect(),
                }
            })
    }

    /// Returns the leaf with an id, if any.
    pub fn leaf(&self, id: &str) -> Option<Leaf<'_>> {
        self.leaves().find(|leaf| leaf.id == id)
    }

    /// Returns the band a total earns, if it reaches the lowest band. A total within 1e-9
    /// below a minimum reaches it, so floating-point noise in a sum never costs a band.
    pub fn band_for(&self, total: f64) -> Option<&Band> {
        self.bands
            .iter()
            .find(|band| total + BAND_TOLERANCE >= band.min_points)
    }

    /// Returns the ids of indicators whose rule is unconfirmed.
    pub fn unconfirmed_ids(&self) -> Vec<String> {
        self.indicators
            .iter()
            .filter(|indicator| indicator.unconfirmed)
            .map(|indicator| indicator.id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests;
