//! Rendering a what-if result: JSON with full-precision numbers and `null` for "not assessed",
//! or a text table with two decimals, as the national portal shows scores.

use std::fmt::Write as _;

use chiso_proto::v1::{GroupScore, IndicatorScore, UnitScore};
use serde_json::{Value, json};

use super::inverse::{Answer, Target};
use crate::catalogue::Catalogue;

/// Formats points to two decimals; "n/a" when not assessed.
pub fn display_points(points: Option<f64>) -> String {
    points.map_or_else(|| "n/a".to_string(), |points| format!("{points:.2}"))
}

/// Formats a rate as a percentage to two decimals; "n/a" when there is none.
pub fn display_rate(rate: Option<f64>) -> String {
    rate.map_or_else(|| "n/a".to_string(), |rate| format!("{:.2}%", rate * 100.0))
}

fn indicator_json(score: &IndicatorScore) -> Value {
    let parts: Vec<Value> = score.parts.iter().map(indicator_json).collect();
    json!({
        "id": score.id,
        "group": score.group,
        "name": score.name,
        "name_en": score.name_en,
        "numerator": score.numerator,
        "denominator": score.denominator,
        "rate": score.rate,
        "points": score.points,
        "max_points": score.max_points,
        "assessed": score.assessed,
        "rule": score.rule,
        "period_rule": score.period_rule,
        "unconfirmed": score.unconfirmed,
        "note": score.note,
        "source": score.source,
        "confidence": score.confidence,
        "parts": parts,
    })
}

fn group_json(group: &GroupScore) -> Value {
    json!({
        "id": group.id,
        "name": group.name,
        "name_en": group.name_en,
        "points": group.points,
        "max_points": group.max_points,
        "assessed_max_points": group.assessed_max_points,
        "assessed": group.assessed,
        "formula": group.formula,
        "unconfirmed": group.unconfirmed,
    })
}

fn answer_json(answer: &Answer) -> Value {
    let target = match &answer.target {
        Target::Points(points) => json!({"points": points}),
        Target::Band(band) => json!({"band": band}),
    };
    let after = answer.after.as_ref().map(|unit| {
        let metric = super::inverse::leaf_score(unit, &answer.metric);
        json!({
            "numerator": answer.counts_after.map(|counts| counts.numerator),
            "denominator": answer.counts_after.map(|counts| counts.denominator),
            "metric_points": metric.and_then(|score| score.points),
            "total": unit.points,
            "band": unit.band,
        })
    });
    json!({
        "metric": answer.metric,
        "target": target,
        "reachable": answer.additional.is_some(),
        "additional_records": answer.additional,
        "after": after,
    })
}

/// Converts a what-if result to JSON, keeping full precision.
pub fn to_json(catalogue: &Catalogue, unit: &UnitScore, answer: Option<&Answer>) -> Value {
    let mut value = json!({
        "catalogue": catalogue.version,
        "metrics": unit.indicators.iter().map(indicator_json).collect::<Vec<_>>(),
        "groups": unit.groups.iter().map(group_json).collect::<Vec<_>>(),
        "total": unit.points,
        "assessed_max_points": unit.max_points,
        "catalogue_max_points": catalogue.total_points,
        "band": unit.band,
    });
    if let Some(answer) = answer {
        value["target"] = answer_json(answer);
    }
    value
}

fn indicator_line(out: &mut String, score: &IndicatorScore, indent: &str) {
    let flag = if score.unconfirmed { " *" } else { "" };
    let counts = if score.parts.is_empty() {
        format!("{}/{}", score.numerator, score.denominator)
    } else {
        "parts".to_string()
    };
    let _ = writeln!(
        out,
        "{indent}{:<36} {:>8} / {:<5} {:>12} {:>8} {}{flag}",
        score.id,
        display_points(score.points),
        format!("{:.2}", score.max_points),
        counts,
        display_rate(score.rate),
        score.rule,
    );
}

fn render_group(out: &mut String, unit: &UnitScore, group: &GroupScore) {
    let points = display_points(Some(group.points));
    let _ = writeln!(
        out,
        "Group {} {}: {points} / {:.2}",
        group.id, group.name, group.max_points
    );
    if !group.formula.is_empty() {
        let _ = writeln!(out, "  = {}", group.formula);
    }
    for id in &group.indicator_ids {
        let Some(score) = unit.indicators.iter().find(|score| &score.id == id) else {
            continue;
        };
        indicator_line(out, score, "  ");
        for part in &score.parts {
            indicator_line(out, part, "    ");
        }
    }
}

/// Renders a what-if result as a table with two decimals.
pub fn to_text(catalogue: &Catalogue, unit: &UnitScore, answer: Option<&Answer>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Catalogue {}", catalogue.version);
    for group in &unit.groups {
        render_group(&mut out, unit, group);
    }
    let band = if unit.band.is_empty() {
        "none"
    } else {
        unit.band.as_str()
    };
    let _ = writeln!(
        out,
        "Total {} / {:.2}, band {band}",
        display_points(Some(unit.points)),
        catalogue.total_points
    );
    if unit.indicators.iter().any(|score| score.unconfirmed) {
        let _ = writeln!(
            out,
            "* unconfirmed rule: no public source confirms it; the catalogue's default is shown"
        );
    }
    if let Some(answer) = answer {
        let _ = writeln!(out, "{}", describe_answer(answer));
    }
    out
}

/// Describes the result of an inverse search in one sentence.
fn describe_answer(answer: &Answer) -> String {
    let metric = &answer.metric;
    match (&answer.target, answer.additional) {
        (Target::Points(points), Some(additional)) => format!(
            "{metric} reaches {points:.2} points with {additional} more records in its numerator and denominator."
        ),
        (Target::Points(points), None) => {
            format!("{metric} cannot reach {points:.2} points by adding records.")
        }
        (Target::Band(band), Some(additional)) => format!(
            "Band {band} is reached with {additional} more records in the numerator and denominator of {metric}."
        ),
        (Target::Band(band), None) => {
            format!("Band {band} cannot be reached by adding records to {metric}.")
        }
    }
}
