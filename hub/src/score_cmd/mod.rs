//! The what-if `score` command: counts as JSON on stdin, points, group totals, total and band as
//! JSON (full precision) or text (two decimals, as the national portal shows them) on stdout.
//!
//! Input is `{"metrics": {"DOSSIER_ON_TIME": {"numerator": 156, "denominator": 161}, ...}}`,
//! keyed by leaf id (an indicator without parts, or a part such as ONLINE_FILING). A leaf that
//! is left out is not assessed. Scoring goes through [`crate::scores::engine::score`], the code
//! live scorecards use. With `--metric` and `--target-points` or `--target-band`, the command
//! also returns how many more records, each counted in the metric's numerator and denominator,
//! reach the target (see [`inverse`]).

pub mod inverse;
pub mod output;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;

use chiso_proto::v1::UnitScore;
use serde::Deserialize;

use crate::catalogue::{Catalogue, CatalogueError, DEFAULT_CATALOGUE, Leaf, Rule};
use crate::scores::engine::{self, LeafInput};
pub use inverse::{Answer, Target};

/// Arguments of `chiso-hub score`.
#[derive(Debug, Clone, clap::Args)]
pub struct ScoreArgs {
    /// Built-in indicator catalogue: dvcqg-2026 (six groups) or 766-2022 (five groups).
    #[arg(long, default_value = DEFAULT_CATALOGUE)]
    pub catalogue: String,
    /// Catalogue TOML file to use instead of a built-in one.
    #[arg(long, conflicts_with = "catalogue")]
    pub catalogue_file: Option<PathBuf>,
    /// Leaf id (indicator or part) whose numerator --target-points or --target-band raises.
    #[arg(long)]
    pub metric: Option<String>,
    /// Points the metric itself should reach.
    #[arg(long, requires = "metric", conflicts_with = "target_band")]
    pub target_points: Option<f64>,
    /// Rating band the unit's total should reach, such as "Tốt".
    #[arg(long, requires = "metric")]
    pub target_band: Option<String>,
    /// Output format: json keeps full precision, text shows two decimals.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
}

/// Output format of the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// JSON with full-precision numbers.
    Json,
    /// A table with two decimals.
    Text,
}

/// Failures of the `score` command.
#[derive(Debug, thiserror::Error)]
pub enum ScoreCmdError {
    /// The catalogue could not be loaded.
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
    /// Stdin is not the expected JSON.
    #[error(
        "invalid input: {source}; expected {{\"metrics\": {{\"DOSSIER_ON_TIME\": {{\"numerator\": 156, \"denominator\": 161}}}}}}"
    )]
    Input {
        /// Underlying JSON error, with line and column.
        source: serde_json::Error,
    },
    /// A metric id is not a leaf of the catalogue.
    #[error("unknown metric {id:?} in catalogue {catalogue}; use one of: {known}")]
    UnknownMetric {
        /// The id given.
        id: String,
        /// The catalogue version.
        catalogue: String,
        /// The leaf ids, comma separated.
        known: String,
    },
    /// A metric's counts are impossible.
    #[error(
        "metric {id}: numerator {numerator} exceeds denominator {denominator}; the numerator counts a subset of the denominator's records"
    )]
    NumeratorAboveDenominator {
        /// The metric.
        id: String,
        /// The numerator given.
        numerator: u64,
        /// The denominator given.
        denominator: u64,
    },
    /// A metric with a fixed value was given counts, or named as a target.
    #[error("metric {id} has a fixed value and reads no counts; leave it out")]
    FixedMetric {
        /// The metric.
        id: String,
    },
    /// The target band is not in the catalogue.
    #[error("unknown band {name:?}; the catalogue's bands are: {known}")]
    UnknownBand {
        /// The band given.
        name: String,
        /// The catalogue's band names.
        known: String,
    },
    /// The target points are not a number of 0 or more.
    #[error("invalid --target-points {value}: must be a finite number of 0 or more")]
    InvalidTarget {
        /// The value given.
        value: f64,
    },
    /// Reading stdin or writing stdout failed.
    #[error("cannot read input or write output: {0}")]
    Io(#[from] std::io::Error),
}

/// Counts of one metric, as given on stdin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricCounts {
    /// Records that meet the metric.
    pub numerator: u64,
    /// Records the metric looks at.
    pub denominator: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    metrics: BTreeMap<String, MetricCounts>,
}

/// Validated what-if counts per leaf id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inputs {
    metrics: BTreeMap<String, MetricCounts>,
}

impl Inputs {
    /// Checks counts against a catalogue: known leaf ids, no fixed values, numerator within
    /// denominator.
    pub fn new(
        catalogue: &Catalogue,
        metrics: BTreeMap<String, MetricCounts>,
    ) -> Result<Inputs, ScoreCmdError> {
        for (id, counts) in &metrics {
            let leaf = find_leaf(catalogue, id)?;
            if !leaf.measure.rule.uses_counts() {
                return Err(ScoreCmdError::FixedMetric { id: id.clone() });
            }
            if counts.numerator > counts.denominator {
                return Err(ScoreCmdError::NumeratorAboveDenominator {
                    id: id.clone(),
                    numerator: counts.numerator,
                    denominator: counts.denominator,
                });
            }
        }
        Ok(Inputs { metrics })
    }

    /// Parses and checks the JSON input.
    pub fn parse(catalogue: &Catalogue, text: &str) -> Result<Inputs, ScoreCmdError> {
        let input: Input =
            serde_json::from_str(text).map_err(|source| ScoreCmdError::Input { source })?;
        Inputs::new(catalogue, input.metrics)
    }

    /// Returns the counts given for a leaf.
    pub fn get(&self, id: &str) -> Option<MetricCounts> {
        self.metrics.get(id).copied()
    }

    /// Returns a copy with one leaf's counts replaced.
    pub fn with(&self, id: &str, counts: MetricCounts) -> Inputs {
        let mut metrics = self.metrics.clone();
        metrics.insert(id.to_string(), counts);
        Inputs { metrics }
    }
}

/// Returns the leaf with an id, or an error listing the catalogue's leaves.
pub fn find_leaf<'a>(catalogue: &'a Catalogue, id: &str) -> Result<Leaf<'a>, ScoreCmdError> {
    catalogue
        .leaf(id)
        .ok_or_else(|| ScoreCmdError::UnknownMetric {
            id: id.to_string(),
            catalogue: catalogue.version.clone(),
            known: catalogue
                .leaves()
                .map(|leaf| leaf.id)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Scores what-if counts through the engine of live scorecards.
pub fn evaluate(catalogue: &Catalogue, inputs: &Inputs) -> UnitScore {
    let input = |leaf: &Leaf<'_>| match inputs.get(leaf.id) {
        Some(counts) => LeafInput::Counts {
            numerator: counts.numerator,
            denominator: counts.denominator,
        },
        None if matches!(leaf.measure.rule, Rule::Fixed(_)) => LeafInput::Counts {
            numerator: 0,
            denominator: 0,
        },
        None => LeafInput::Missing("not assessed: no counts given".to_string()),
    };
    engine::score(catalogue, &input)
}

fn load_catalogue(args: &ScoreArgs) -> Result<Catalogue, CatalogueError> {
    match &args.catalogue_file {
        Some(path) => Catalogue::from_file(path),
        None => Catalogue::builtin(&args.catalogue),
    }
}

fn target(args: &ScoreArgs) -> Result<Option<(String, Target)>, ScoreCmdError> {
    let Some(metric) = &args.metric else {
        return Ok(None);
    };
    let target = match (&args.target_points, &args.target_band) {
        (Some(points), _) if !(points.is_finite() && *points >= 0.0) => {
            return Err(ScoreCmdError::InvalidTarget { value: *points });
        }
        (Some(points), _) => Target::Points(*points),
        (None, Some(band)) => Target::Band(band.clone()),
        (None, None) => return Ok(None),
    };
    Ok(Some((metric.clone(), target)))
}

/// Runs the command: reads counts from `input`, writes the result to `output`.
pub fn run(
    args: &ScoreArgs,
    mut input: impl Read,
    mut output: impl Write,
) -> Result<(), ScoreCmdError> {
    let catalogue = load_catalogue(args)?;
    let mut text = String::new();
    input.read_to_string(&mut text)?;
    let inputs = Inputs::parse(&catalogue, &text)?;

    let unit = evaluate(&catalogue, &inputs);
    let answer = match target(args)? {
        Some((metric, target)) => Some(inverse::records_needed(
            &catalogue, &inputs, &metric, &target,
        )?),
        None => None,
    };
    let rendered = match args.format {
        Format::Json => {
            let value = output::to_json(&catalogue, &unit, answer.as_ref());
            let mut text = serde_json::to_string_pretty(&value).map_err(std::io::Error::other)?;
            text.push('\n');
            text
        }
        Format::Text => output::to_text(&catalogue, &unit, answer.as_ref()),
    };
    output.write_all(rendered.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests;
