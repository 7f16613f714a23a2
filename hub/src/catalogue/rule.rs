//! The scoring vocabulary of a catalogue: rules from a rate to points, what a zero denominator
//! gives, which records a period selects, and how sure a source is.
//!
//! Rules keep full `f64` precision and never round; the portal publishes two decimals, which is
//! a matter of display.

use std::fmt;

/// Rule that turns a rate (numerator / denominator, from 0 to 1) into points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// Points are the maximum times the rate.
    Proportional,
    /// Full points once the rate reaches the given fraction (such as 0.8). Below it, points are
    /// the maximum times the rate divided by the fraction.
    FullAt(f64),
    /// The given points, whatever the counts.
    Fixed(f64),
    /// Counted and shown, never scored.
    Tracked,
    /// A term of a group formula: the coefficient times the rate, at most the cap if any.
    Term {
        /// Points per unit of rate.
        coefficient: f64,
        /// Most points the term gives.
        cap: Option<f64>,
    },
}

impl Rule {
    /// Returns the points for a rate between 0 and 1.
    pub fn points(self, max_points: f64, rate: f64) -> f64 {
        match self {
            Rule::Proportional => max_points * rate,
            Rule::FullAt(threshold) => max_points.min(max_points * rate / threshold),
            Rule::Fixed(value) => value,
            Rule::Tracked => 0.0,
            Rule::Term { coefficient, cap } => {
                let points = coefficient * rate;
                cap.map_or(points, |cap| cap.min(points))
            }
        }
    }

    /// Returns whether the rule reads counts: every rule except a fixed value.
    pub fn uses_counts(self) -> bool {
        !matches!(self, Rule::Fixed(_))
    }

    /// Returns the rule as scorecards show it, such as "proportional" or "full at 50%".
    pub fn describe(self) -> String {
        match self {
            Rule::Proportional => "proportional".to_string(),
            Rule::FullAt(threshold) => format!("full at {}%", number(threshold * 100.0)),
            Rule::Fixed(value) => format!("fixed {} points", number(value)),
            Rule::Tracked => "tracked, no points".to_string(),
            Rule::Term { coefficient, cap } => {
                let term = format!("{} × rate", number(coefficient));
                match cap {
                    Some(cap) => format!("min({}, {term})", number(cap)),
                    None => term,
                }
            }
        }
    }
}

/// Formats a catalogue number without trailing zeros: 50, 12.5, 2.5.
pub fn number(value: f64) -> String {
    if (value - value.round()).abs() < 1e-9 {
        format!("{:.0}", value.round())
    } else {
        let text = format!("{value:.6}");
        text.trim_end_matches('0').to_string()
    }
}

/// Result of an indicator whose denominator is zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroDenominator {
    /// No rate and no points. The indicator's maximum is left out of the unit's assessed maximum.
    NotAssessed,
    /// Assessed with 0 points.
    Zero,
    /// Assessed with full points.
    FullPoints,
}

impl ZeroDenominator {
    /// Parses the catalogue spelling: `not_assessed`, `zero` or `full_points`.
    pub fn parse(value: &str) -> Option<ZeroDenominator> {
        match value {
            "not_assessed" => Some(ZeroDenominator::NotAssessed),
            "zero" => Some(ZeroDenominator::Zero),
            "full_points" => Some(ZeroDenominator::FullPoints),
            _ => None,
        }
    }

    /// Returns the catalogue spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ZeroDenominator::NotAssessed => "not_assessed",
            ZeroDenominator::Zero => "zero",
            ZeroDenominator::FullPoints => "full_points",
        }
    }
}

/// Selection of the period's records that an indicator counts.
///
/// For dossiers, handling-based counts take those received on or before the period's end and
/// not finished before its start (received in the period, or carried over unfinished), and
/// intake-based counts take those received in the period. Other record kinds apply the same
/// idea to their own dates: a procedure is handled while it is in force, feedback while it is
/// open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeriodRule {
    /// Received in the period or carried over unfinished.
    Handling,
    /// Received in the period.
    Intake,
}

impl PeriodRule {
    /// Both rules, in index order.
    pub const ALL: [PeriodRule; 2] = [PeriodRule::Handling, PeriodRule::Intake];

    /// Returns the rule's position in [`PeriodRule::ALL`].
    pub fn index(self) -> usize {
        match self {
            PeriodRule::Handling => 0,
            PeriodRule::Intake => 1,
        }
    }

    /// Parses the catalogue spelling: `handling` or `intake`.
    pub fn parse(value: &str) -> Option<PeriodRule> {
        match value {
            "handling" => Some(PeriodRule::Handling),
            "intake" => Some(PeriodRule::Intake),
            _ => None,
        }
    }

    /// Returns the catalogue spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PeriodRule::Handling => "handling",
            PeriodRule::Intake => "intake",
        }
    }
}

/// Confidence of the public sources in a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Confidence {
    /// Stated by an official source, or contradicted by none.
    High,
    /// Fitted to live portal data and reproduced on every published score checked.
    MediumHigh,
    /// One secondary source, or a transcript of an official description.
    Medium,
    /// Inferred, conflicting sources, or a default with no source.
    Low,
}

impl Confidence {
    /// Parses the catalogue spelling: `high`, `medium-high`, `medium` or `low`.
    pub fn parse(value: &str) -> Option<Confidence> {
        match value {
            "high" => Some(Confidence::High),
            "medium-high" => Some(Confidence::MediumHigh),
            "medium" => Some(Confidence::Medium),
            "low" => Some(Confidence::Low),
            _ => None,
        }
    }

    /// Returns the catalogue spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::High => "high",
            Confidence::MediumHigh => "medium-high",
            Confidence::Medium => "medium",
            Confidence::Low => "low",
        }
    }
}

impl fmt::Display for Confidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_points_by_hand() {
        // 20 × 2/3 = 13.333…, not rounded.
        assert_eq!(
            Rule::Proportional.points(20.0, 2.0 / 3.0),
            20.0 * (2.0 / 3.0)
        );
        // 6 × 0.25 / 0.5 = 3; 6 × 0.9 / 0.5 = 10.8, capped at 6.
        assert_eq!(Rule::FullAt(0.5).points(6.0, 0.25), 3.0);
        assert_eq!(Rule::FullAt(0.5).points(6.0, 0.5), 6.0);
        assert_eq!(Rule::FullAt(0.5).points(6.0, 0.9), 6.0);
        assert_eq!(Rule::Fixed(2.0).points(2.0, 0.0), 2.0);
        assert_eq!(Rule::Tracked.points(0.0, 0.7), 0.0);
        let capped = Rule::Term {
            coefficient: 2.5,
            cap: Some(2.0),
        };
        // 2.5 × 0.6 = 1.5 stays under the cap; 2.5 × 0.9 = 2.25 is capped at 2.
        assert_eq!(capped.points(2.0, 0.6), 1.5);
        assert_eq!(capped.points(2.0, 0.9), 2.0);
    }

    #[test]
    fn rule_descriptions() {
        assert_eq!(Rule::Proportional.describe(), "proportional");
        assert_eq!(Rule::FullAt(0.5).describe(), "full at 50%");
        assert_eq!(Rule::FullAt(0.8).describe(), "full at 80%");
        assert_eq!(Rule::FullAt(0.9).describe(), "full at 90%");
        assert_eq!(Rule::FullAt(0.125).describe(), "full at 12.5%");
        assert_eq!(Rule::Fixed(2.0).describe(), "fixed 2 points");
        assert_eq!(Rule::Tracked.describe(), "tracked, no points");
        let term = Rule::Term {
            coefficient: 2.5,
            cap: Some(2.0),
        };
        assert_eq!(term.describe(), "min(2, 2.5 × rate)");
        let term = Rule::Term {
            coefficient: 6.0,
            cap: None,
        };
        assert_eq!(term.describe(), "6 × rate");
    }

    #[test]
    fn spellings_round_trip() {
        for zero in [
            ZeroDenominator::NotAssessed,
            ZeroDenominator::Zero,
            ZeroDenominator::FullPoints,
        ] {
            assert_eq!(ZeroDenominator::parse(zero.as_str()), Some(zero));
        }
        for rule in PeriodRule::ALL {
            assert_eq!(PeriodRule::parse(rule.as_str()), Some(rule));
        }
        for confidence in [
            Confidence::High,
            Confidence::MediumHigh,
            Confidence::Medium,
            Confidence::Low,
        ] {
            assert_eq!(Confidence::parse(confidence.as_str()), Some(confidence));
        }
        assert_eq!(ZeroDenominator::parse("full"), None);
        assert_eq!(PeriodRule::parse("carried"), None);
    }
}
