//! The scoring engine: one unit's indicators, groups, total and band from the numerator and
//! denominator of each leaf (an indicator without parts, or a part).
//!
//! Live scorecards and the what-if command both call [`score`], so a what-if result is exactly
//! what a scorecard would show for the same counts. Nothing is rounded. A leaf whose counts are
//! unavailable, or whose zero denominator is "not assessed", has no rate and no points, adds
//! nothing to its group and leaves its maximum out of the assessed maximum. A group total is
//! the sum of its plain indicators' points plus each formula's value, min(cap, sum of terms).

use chiso_proto::v1::{GroupScore, IndicatorScore, UnitScore};

use crate::catalogue::rule::number;
use crate::catalogue::{
    Body, Catalogue, Formula, Group, Indicator, Leaf, Measure, Part, Rule, ZeroDenominator,
};

/// Engine input for one leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeafInput {
    /// Numerator and denominator; the numerator must not exceed the denominator.
    Counts {
        /// Records that meet the leaf.
        numerator: u64,
        /// Records the leaf looks at.
        denominator: u64,
    },
    /// No counts, with the reason shown on the scorecard.
    Missing(String),
}

/// An indicator's score, with the maximum of its assessed part (all of it, or some parts).
struct Scored {
    score: IndicatorScore,
    assessed_max: f64,
}

/// Scores every indicator and group of a catalogue for one unit.
///
/// The result has no unit code, name, level or rank; callers fill them in. Its band is empty
/// when no leaf has a nonzero denominator, so a unit without data gets no band.
pub fn score(catalogue: &Catalogue, input: &dyn Fn(&Leaf<'_>) -> LeafInput) -> UnitScore {
    let mut unit = UnitScore::default();
    for group in &catalogue.groups {
        let group_score = score_group(catalogue, group, input, &mut unit.indicators);
        unit.points += group_score.points;
        unit.max_points += group_score.assessed_max_points;
        unit.groups.push(group_score);
    }

    if has_data(&unit) {
        let band = catalogue.band_for(unit.points);
        unit.band = band.map(|band| band.name.clone()).unwrap_or_default();
    }
    unit
}

/// Scores a group's indicators, appending them to `indicators`, and returns the group total.
fn score_group(
    catalogue: &Catalogue,
    group: &Group,
    input: &dyn Fn(&Leaf<'_>) -> LeafInput,
    indicators: &mut Vec<IndicatorScore>,
) -> GroupScore {
    let mut group_score = GroupScore {
        id: group.id.clone(),
        name: group.name_vi.clone(),
        name_en: group.name_en.clone(),
        max_points: group.max_points,
        ..GroupScore::default()
    };
    // Per formula: the sum of its assessed terms' points and of their maxima.
    let mut formula_sums: Vec<(&Formula, f64, f64)> = catalogue
        .formulas_of(&group.id)
        .map(|formula| (formula, 0.0, 0.0))
        .collect();

    for indicator in catalogue.indicators_of(&group.id) {
        let scored = score_indicator(indicator, input);
        group_score.indicator_ids.push(indicator.id.clone());
        group_score.unconfirmed |= indicator.unconfirmed;
        if scored.score.assessed {
            group_score.assessed = true;
            add_assessed(&mut group_score, &mut formula_sums, &indicator.id, &scored);
        }
        indicators.push(scored.score);
    }

    for (formula, sum, max) in &formula_sums {
        group_score.points += formula.cap.min(*sum);
        group_score.assessed_max_points += formula.cap.min(*max);
    }
    if !formula_sums.is_empty() {
        group_score.formula = describe_group(catalogue, &group.id);
    }
    group_score
}

/// Adds an assessed indicator to its formula's sums, or to the group when it is no term.
fn add_assessed(
    group_score: &mut GroupScore,
    formula_sums: &mut [(&Formula, f64, f64)],
    id: &str,
    scored: &Scored,
) {
    let points = scored.score.points.unwrap_or(0.0);
    let term = formula_sums
        .iter_mut()
        .find(|(formula, _, _)| formula.terms.iter().any(|term| term == id));
    match term {
        Some((_, sum, max)) => {
            *sum += points;
            *max += scored.assessed_max;
        }
        None => {
            group_score.points += points;
            group_score.assessed_max_points += scored.assessed_max;
        }
    }
}

/// Returns whether any leaf of a scored unit has a nonzero denominator.
pub fn has_data(unit: &UnitScore) -> bool {
    unit.indicators.iter().any(|indicator| {
        indicator.denominator > 0 || indicator.parts.iter().any(|part| part.denominator > 0)
    })
}

fn score_indicator(indicator: &Indicator, input: &dyn Fn(&Leaf<'_>) -> LeafInput) -> Scored {
    let mut scored = match &indicator.body {
        Body::Measure(measure) => {
            let leaf = Leaf {
                id: &indicator.id,
                indicator,
                measure,
            };
            let names = (
                indicator.id.as_str(),
                indicator.name_vi.as_str(),
                indicator.name_en.as_str(),
            );
            let score = score_leaf(names, measure, input(&leaf));
            let assessed_max = if score.assessed {
                measure.max_points
            } else {
                0.0
            };
            Scored {
                score,
                assessed_max,
            }
        }
        Body::Parts(parts) => score_parts(indicator, parts, input),
    };
    let score = &mut scored.score;
    score.group = indicator.group.clone();
    score.unconfirmed = indicator.unconfirmed;
    score.source = indicator.source.clone();
    score.confidence = indicator.confidence.as_str().to_string();
    scored
}

/// Scores an indicator made of parts: the sum of its assessed parts.
fn score_parts(
    indicator: &Indicator,
    parts: &[Part],
    input: &dyn Fn(&Leaf<'_>) -> LeafInput,
) -> Scored {
    let mut score = IndicatorScore {
        id: indicator.id.clone(),
        name: indicator.name_vi.clone(),
        name_en: indicator.name_en.clone(),
        max_points: indicator.max_points,
        rule: "sum of parts".to_string(),
        ..IndicatorScore::default()
    };
    let mut assessed_max = 0.0;
    for part in parts {
        let leaf = Leaf {
            id: &part.id,
            indicator,
            measure: &part.measure,
        };
        let names = (
            part.id.as_str(),
            part.name_vi.as_str(),
            part.name_en.as_str(),
        );
        let mut part_score = score_leaf(names, &part.measure, input(&leaf));
        part_score.group = indicator.group.clone();
        part_score.unconfirmed = indicator.unconfirmed;
        part_score.source = part.source.clone();
        part_score.confidence = part.confidence.as_str().to_string();
        if part_score.assessed {
            score.assessed = true;
            let points = part_score.points.unwrap_or(0.0);
            score.points = Some(score.points.unwrap_or(0.0) + points);
            assessed_max += part.measure.max_points;
        }
        score.parts.push(part_score);
    }
    Scored {
        score,
        assessed_max,
    }
}

/// Scores one leaf, named by (id, Vietnamese name, English name), from its counts and rule.
fn score_leaf(names: (&str, &str, &str), measure: &Measure, input: LeafInput) -> IndicatorScore {
    let (id, name_vi, name_en) = names;
    let period_rule = measure.fraction.map(|fraction| fraction.period.as_str());
    let mut score = IndicatorScore {
        id: id.to_string(),
        name: name_vi.to_string(),
        name_en: name_en.to_string(),
        max_points: measure.max_points,
        assessed: true,
        rule: measure.rule.describe(),
        period_rule: period_rule.unwrap_or_default().to_string(),
        ..IndicatorScore::default()
    };
    if let Rule::Fixed(value) = measure.rule {
        score.points = Some(value);
        return score;
    }

    let (numerator, denominator) = match input {
        LeafInput::Counts {
            numerator,
            denominator,
        } => (numerator, denominator),
        LeafInput::Missing(note) => {
            score.assessed = false;
            score.note = note;
            return score;
        }
    };
    score.numerator = numerator;
    score.denominator = denominator;
    if denominator == 0 {
        match measure.zero_denominator {
            ZeroDenominator::NotAssessed => score.assessed = false,
            ZeroDenominator::Zero => score.points = Some(0.0),
            ZeroDenominator::FullPoints => score.points = Some(measure.max_points),
        }
        return score;
    }

    let rate = numerator as f64 / denominator as f64;
    score.rate = Some(rate);
    score.points = Some(measure.rule.points(measure.max_points, rate));
    score
}

/// Describes how a group with formulas adds up, such as
/// "ONLINE_SERVICE + min(10, 6 × PAYMENT_DOSSIER_ONLINE + …)".
fn describe_group(catalogue: &Catalogue, group: &str) -> String {
    let plain = catalogue
        .indicators_of(group)
        .filter(|indicator| {
            catalogue.formula_of(&indicator.id).is_none() && indicator.max_points > 0.0
        })
        .map(|indicator| indicator.id.clone());
    let formulas = catalogue.formulas_of(group).map(|formula| {
        let terms: Vec<String> = formula
            .terms
            .iter()
            .map(
                |term| match catalogue.leaf(term).map(|leaf| leaf.measure.rule) {
                    Some(Rule::Term {
                        coefficient,
                        cap: Some(cap),
                    }) => {
                        format!("min({}, {} × {term})", number(cap), number(coefficient))
                    }
                    Some(Rule::Term {
                        coefficient,
                        cap: None,
                    }) => format!("{} × {term}", number(coefficient)),
                    _ => term.clone(),
                },
            )
            .collect();
        format!("min({}, {})", number(formula.cap), terms.join(" + "))
    });
    plain.chain(formulas).collect::<Vec<_>>().join(" + ")
}
