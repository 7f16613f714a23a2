//! The inverse what-if question: how many more records, each counted in one metric's numerator
//! and denominator, bring the metric to a number of points, or the unit's total to a band.
//!
//! Adding k such records turns n/d into (n + k)/(d + k), which never decreases, and every rule
//! and formula is non-decreasing in the rate, so "the target is met" is monotone in k. The
//! result is the smallest k for which the scoring engine itself meets the target, found by
//! doubling and then bisection, so it is exact for the engine's arithmetic. Points count as
//! reached within [`TOLERANCE`], which absorbs floating-point noise only. Searching stops at
//! [`MAX_ADDITIONAL`] records: at that size, a target that needs a rate of exactly 1 still
//! misses by more than the tolerance (by at least 2.5 × (d − n)/(d + k) points for the smallest
//! coefficient in the built-in catalogues), so it is reported unreachable.

use chiso_proto::v1::{IndicatorScore, UnitScore};

use super::{Inputs, MetricCounts, ScoreCmdError, evaluate, find_leaf};
use crate::catalogue::Catalogue;
use crate::catalogue::rule::number;

/// Points within this distance below a target count as reaching it.
pub const TOLERANCE: f64 = 1e-9;

/// Largest number of additional records the search considers.
pub const MAX_ADDITIONAL: u64 = 100_000_000;

/// Target of an inverse search.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// The metric's own points.
    Points(f64),
    /// The unit's band, or a higher one.
    Band(String),
}

/// Result of an inverse search.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The metric whose counts rise.
    pub metric: String,
    /// The target asked for.
    pub target: Target,
    /// Additional records needed, or `None` when the target cannot be reached.
    pub additional: Option<u64>,
    /// The metric's counts once the target is reached.
    pub counts_after: Option<MetricCounts>,
    /// The unit's score once the target is reached.
    pub after: Option<UnitScore>,
}

/// Finds a leaf's score among a unit's indicators and their parts.
pub fn leaf_score<'a>(unit: &'a UnitScore, id: &str) -> Option<&'a IndicatorScore> {
    unit.indicators
        .iter()
        .flat_map(|indicator| std::iter::once(indicator).chain(&indicator.parts))
        .find(|score| score.id == id)
}

/// Returns the position of a band (0 is the highest), or an error listing the bands.
fn band_position(catalogue: &Catalogue, name: &str) -> Result<usize, ScoreCmdError> {
    catalogue
        .bands
        .iter()
        .position(|band| band.name == name)
        .ok_or_else(|| ScoreCmdError::UnknownBand {
            name: name.to_string(),
            known: catalogue
                .bands
                .iter()
                .map(|band| format!("{} (from {})", band.name, number(band.min_points)))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Finds how many more numerator records reach the target.
pub fn records_needed(
    catalogue: &Catalogue,
    inputs: &Inputs,
    metric: &str,
    target: &Target,
) -> Result<Answer, ScoreCmdError> {
    let leaf = find_leaf(catalogue, metric)?;
    if !leaf.measure.rule.uses_counts() {
        return Err(ScoreCmdError::FixedMetric {
            id: metric.to_string(),
        });
    }
    let band = match target {
        Target::Band(name) => Some(band_position(catalogue, name)?),
        Target::Points(_) => None,
    };
    let base = inputs.get(metric).unwrap_or(MetricCounts {
        numerator: 0,
        denominator: 0,
    });
    let counts = |k: u64| MetricCounts {
        numerator: base.numerator + k,
        denominator: base.denominator + k,
    };
    let scored = |k: u64| evaluate(catalogue, &inputs.with(metric, counts(k)));
    let meets = |unit: &UnitScore| target_met(catalogue, unit, metric, target, band);

    let additional = smallest(|k| meets(&scored(k)));
    Ok(Answer {
        metric: metric.to_string(),
        target: target.clone(),
        additional,
        counts_after: additional.map(counts),
        after: additional.map(scored),
    })
}

/// Returns whether a scored unit meets the target; `band` is the target band's position.
fn target_met(
    catalogue: &Catalogue,
    unit: &UnitScore,
    metric: &str,
    target: &Target,
    band: Option<usize>,
) -> bool {
    match (target, band) {
        (Target::Points(points), _) => {
            let score = leaf_score(unit, metric).and_then(|score| score.points);
            score.unwrap_or(0.0) + TOLERANCE >= *points
        }
        (Target::Band(_), Some(wanted)) => catalogue
            .bands
            .iter()
            .position(|band| band.name == unit.band)
            .is_some_and(|reached| reached <= wanted),
        (Target::Band(_), None) => false,
    }
}

/// Returns the smallest k in 0..=MAX_ADDITIONAL with `meets(k)`, for a monotone `meets`.
fn smallest(meets: impl Fn(u64) -> bool) -> Option<u64> {
    if meets(0) {
        return Some(0);
    }
    let mut low = 0;
    let mut high = 1;
    while !meets(high) {
        if high == MAX_ADDITIONAL {
            return None;
        }
        low = high;
        high = (high * 2).min(MAX_ADDITIONAL);
    }
    // meets(low) is false and meets(high) is true.
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if meets(middle) {
            high = middle;
        } else {
            low = middle;
        }
    }
    Some(high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smallest_finds_threshold() {
        assert_eq!(smallest(|k| k >= 1800), Some(1800));
        assert_eq!(smallest(|_| true), Some(0));
        assert_eq!(smallest(|k| k >= 1), Some(1));
        assert_eq!(smallest(|k| k >= MAX_ADDITIONAL), Some(MAX_ADDITIONAL));
        assert_eq!(smallest(|_| false), None);
    }
}
