//! Reading the measure fields shared by indicators and parts (points, rule, counts, period
//! rule, zero-denominator result) into a [`Measure`], with the per-entry checks: unknown rules,
//! period rules, results and count names, misplaced fields, and numerators that are not
//! subsets of their denominators. Errors name the entry through [`At`].

use super::counts::{CountId, known_names};
use super::{CatalogueError, Confidence, Fraction, Measure, PeriodRule, Rule, ZeroDenominator};

/// The measure fields shared by indicators and parts.
pub(super) struct MeasureFields<'a> {
    pub(super) points: Option<f64>,
    pub(super) rule: &'a str,
    pub(super) numerator: Option<&'a str>,
    pub(super) denominator: Option<&'a str>,
    pub(super) period: Option<&'a str>,
    pub(super) threshold: Option<f64>,
    pub(super) value: Option<f64>,
    pub(super) zero_denominator: Option<&'a str>,
}

/// Location of an error: the catalogue's origin and the entry.
pub(super) struct At<'a> {
    pub(super) origin: &'a str,
    pub(super) entry: String,
}

impl At<'_> {
    pub(super) fn invalid(
        &self,
        field: &'static str,
        value: impl ToString,
        reason: &str,
    ) -> CatalogueError {
        CatalogueError::Invalid {
            origin: self.origin.to_string(),
            entry: self.entry.clone(),
            field,
            value: value.to_string(),
            reason: reason.to_string(),
        }
    }

    pub(super) fn missing(&self, field: &'static str, reason: &str) -> CatalogueError {
        self.invalid(field, "(missing)", reason)
    }

    pub(super) fn confidence(&self, value: &str) -> Result<Confidence, CatalogueError> {
        Confidence::parse(value).ok_or_else(|| {
            self.invalid(
                "confidence",
                format!("{value:?}"),
                "expected high, medium-high, medium or low",
            )
        })
    }

    pub(super) fn points(&self, field: &'static str, value: f64) -> Result<f64, CatalogueError> {
        if value.is_finite() && value >= 0.0 {
            Ok(value)
        } else {
            Err(self.invalid(field, value, "must be a finite number of 0 or more"))
        }
    }
}

/// Builds a measure from its fields; `term` is the rule a formula gives the entry, if any.
pub(super) fn measure(
    fields: &MeasureFields<'_>,
    term: Option<Rule>,
    at: &At<'_>,
) -> Result<Measure, CatalogueError> {
    let rule = rule(fields, term, at)?;
    let max_points = max_points(rule, fields, at)?;

    if !rule.uses_counts() {
        let has_counts = fields.numerator.is_some()
            || fields.denominator.is_some()
            || fields.period.is_some()
            || fields.zero_denominator.is_some();
        if has_counts {
            let reason = "a fixed value reads no counts; remove numerator, denominator, period and zero_denominator";
            return Err(at.invalid("rule", "\"fixed\"", reason));
        }
        return Ok(Measure {
            fraction: None,
            max_points,
            rule,
            zero_denominator: ZeroDenominator::NotAssessed,
        });
    }

    Ok(Measure {
        fraction: Some(fraction(fields, at)?),
        max_points,
        rule,
        zero_denominator: zero_denominator(fields, at)?,
    })
}

/// Returns the most points a rule gives: derived for formula terms and tracked entries, the
/// `points` field otherwise.
fn max_points(rule: Rule, fields: &MeasureFields<'_>, at: &At<'_>) -> Result<f64, CatalogueError> {
    let max_points = match rule {
        Rule::Term { coefficient, cap } => cap.map_or(coefficient, |cap| cap.min(coefficient)),
        Rule::Tracked => 0.0,
        _ => {
            let points = fields.points;
            let points = points.ok_or_else(|| at.missing("points", "the rule needs a maximum"))?;
            at.points("points", points)?
        }
    };
    if let Rule::Fixed(value) = rule
        && value > max_points
    {
        let reason = format!("must not exceed points = {max_points}");
        return Err(at.invalid("value", value, &reason));
    }
    Ok(max_points)
}

const REQUIRED: &str = "required unless rule = \"fixed\"";

fn fraction(fields: &MeasureFields<'_>, at: &At<'_>) -> Result<Fraction, CatalogueError> {
    let numerator = fields
        .numerator
        .ok_or_else(|| at.missing("numerator", REQUIRED))?;
    let numerator = count(numerator, "numerator", at)?;
    let denominator = fields
        .denominator
        .ok_or_else(|| at.missing("denominator", REQUIRED))?;
    let denominator = count(denominator, "denominator", at)?;
    if !numerator.is_within(denominator) {
        let reason = format!(
            "is not a subset of the denominator {:?}, so the rate could exceed 1; use a count within it",
            denominator.name()
        );
        return Err(at.invalid("numerator", format!("{:?}", numerator.name()), &reason));
    }

    let period = fields
        .period
        .ok_or_else(|| at.missing("period", REQUIRED))?;
    let period = PeriodRule::parse(period).ok_or_else(|| {
        at.invalid(
            "period",
            format!("{period:?}"),
            "expected handling or intake",
        )
    })?;
    Ok(Fraction {
        numerator,
        denominator,
        period,
    })
}

fn zero_denominator(
    fields: &MeasureFields<'_>,
    at: &At<'_>,
) -> Result<ZeroDenominator, CatalogueError> {
    let zero = fields.zero_denominator;
    let zero = zero.ok_or_else(|| at.missing("zero_denominator", REQUIRED))?;
    ZeroDenominator::parse(zero).ok_or_else(|| {
        let reason = "expected not_assessed, zero or full_points";
        at.invalid("zero_denominator", format!("{zero:?}"), reason)
    })
}

/// Rejects `threshold`, `value` or a formula term on an entry whose rule does not use them.
fn check_rule_fields(
    fields: &MeasureFields<'_>,
    term: Option<Rule>,
    at: &At<'_>,
) -> Result<(), CatalogueError> {
    let name = fields.rule;
    if let Some(threshold) = fields.threshold.filter(|_| name != "full_at") {
        return Err(at.invalid("threshold", threshold, "applies only to rule = \"full_at\""));
    }
    if let Some(value) = fields.value.filter(|_| name != "fixed") {
        return Err(at.invalid("value", value, "applies only to rule = \"fixed\""));
    }
    if term.is_some() && name != "formula" {
        let reason = "a [[formulas]] term names this indicator, so its rule must be \"formula\"";
        return Err(at.invalid("rule", format!("{name:?}"), reason));
    }
    Ok(())
}

fn rule(
    fields: &MeasureFields<'_>,
    term: Option<Rule>,
    at: &At<'_>,
) -> Result<Rule, CatalogueError> {
    check_rule_fields(fields, term, at)?;
    match fields.rule {
        "proportional" => Ok(Rule::Proportional),
        "full_at" => full_at(fields, at),
        "fixed" => {
            let reason = "rule = \"fixed\" needs the points it gives";
            let value = fields.value.ok_or_else(|| at.missing("value", reason))?;
            Ok(Rule::Fixed(at.points("value", value)?))
        }
        "tracked" => match fields.points {
            Some(points) if points != 0.0 => {
                let reason = "a tracked indicator gives no points; use 0 or leave it out";
                Err(at.invalid("points", points, reason))
            }
            _ => Ok(Rule::Tracked),
        },
        "formula" => {
            if let Some(points) = fields.points {
                let reason = "a formula term takes its maximum from the formula's coefficient and cap; leave points out";
                return Err(at.invalid("points", points, reason));
            }
            let reason = "no [[formulas]] term names this indicator";
            term.ok_or_else(|| at.invalid("rule", "\"formula\"", reason))
        }
        other => {
            let reason = "expected proportional, full_at, fixed, tracked or formula";
            Err(at.invalid("rule", format!("{other:?}"), reason))
        }
    }
}

fn full_at(fields: &MeasureFields<'_>, at: &At<'_>) -> Result<Rule, CatalogueError> {
    let reason = "rule = \"full_at\" needs a threshold fraction such as 0.8";
    let threshold = fields
        .threshold
        .ok_or_else(|| at.missing("threshold", reason))?;
    if threshold.is_finite() && threshold > 0.0 && threshold <= 1.0 {
        Ok(Rule::FullAt(threshold))
    } else {
        let reason = "must be a fraction above 0 and at most 1, such as 0.8";
        Err(at.invalid("threshold", threshold, reason))
    }
}

fn count(name: &str, field: &'static str, at: &At<'_>) -> Result<CountId, CatalogueError> {
    CountId::from_name(name).ok_or_else(|| {
        let reason = format!("unknown count name; known counts: {}", known_names());
        at.invalid(field, format!("{name:?}"), &reason)
    })
}
