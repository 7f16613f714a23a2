//! Indicator definitions as data, and the rule that turns a numerator and a denominator into
//! points.
//!
//! The definitions here are the catalogue [`CATALOGUE_VERSION`]: two indicators of the national
//! portal's six-group layout, DOSSIER_ON_TIME and ONLINE_FILING. They are plain data so that a
//! versioned TOML catalogue can replace them later. Scoring keeps full `f64` precision and never
//! rounds; the portal publishes two decimals, which is a matter of display.

use chiso_proto::v1::IndicatorScore;

/// Version tag of the built-in indicator catalogue, reported with every scorecard.
pub const CATALOGUE_VERSION: &str = "dvcqg-2026-core";

/// Id of the on-time handling indicator.
pub const DOSSIER_ON_TIME: &str = "DOSSIER_ON_TIME";

/// Id of the online filing indicator.
pub const ONLINE_FILING: &str = "ONLINE_FILING";

/// Rule that turns a rate into points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// Points are the maximum times the rate.
    Proportional,
    /// Full points once the rate reaches the given fraction (such as 0.5). Below it, points are
    /// the maximum times the rate divided by the fraction.
    FullAt(f64),
}

impl Rule {
    /// Returns the points for a rate between 0 and 1.
    pub fn points(self, max_points: f64, rate: f64) -> f64 {
        match self {
            Rule::Proportional => max_points * rate,
            Rule::FullAt(threshold) => max_points.min(max_points * rate / threshold),
        }
    }

    /// Returns the rule as scorecards show it: "proportional" or "full at 50%".
    pub fn describe(self) -> String {
        match self {
            Rule::Proportional => "proportional".to_string(),
            Rule::FullAt(threshold) => {
                let percent = threshold * 100.0;
                if (percent - percent.round()).abs() < 1e-9 {
                    format!("full at {percent:.0}%")
                } else {
                    format!("full at {percent}%")
                }
            }
        }
    }
}

/// Result of an indicator whose denominator is zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroDenominator {
    /// No rate and no points. The indicator's maximum is left out of the unit's total.
    NotAssessed,
    /// Assessed with 0 points.
    Zero,
    /// Assessed with full points.
    FullPoints,
}

/// One indicator of the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub struct IndicatorDef {
    /// Stable id, the portal's metric code where it has one.
    pub id: &'static str,
    /// Name in Vietnamese, shown on scorecards.
    pub name_vi: &'static str,
    /// Name in English.
    pub name_en: &'static str,
    /// Points at a perfect rate.
    pub max_points: f64,
    /// Rule from rate to points.
    pub rule: Rule,
    /// Result when the denominator is zero.
    pub zero_denominator: ZeroDenominator,
    /// Sources of the formula, the maximum and the rule, with a confidence.
    pub source: &'static str,
}

static DEFINITIONS: [IndicatorDef; 2] = [
    IndicatorDef {
        id: DOSSIER_ON_TIME,
        name_vi: "Tỷ lệ hồ sơ xử lý trước hạn, đúng hạn",
        name_en: "Dossiers handled early or on time",
        max_points: 20.0,
        rule: Rule::Proportional,
        // NOTE: uncertain. The portal was once reported to give 0 points here for a zero
        // denominator, while ChippedTopaz/qd766 docs/SCORING_ANALYSIS_M0.md (commit 4b89c95)
        // had no zero-denominator sample. Not assessed keeps "no dossiers" apart from "all late".
        zero_denominator: ZeroDenominator::NotAssessed,
        source: "maximum 20 is the Tiến độ giải quyết group maximum (Nam Định Department of \
                 Home Affairs, high confidence); the proportional rule reproduces live portal \
                 scores (ChippedTopaz/qd766 docs/SCORING_ANALYSIS_M0.md, medium-high confidence)",
    },
    IndicatorDef {
        id: ONLINE_FILING,
        name_vi: "Tỷ lệ hồ sơ nộp trực tuyến",
        name_en: "Dossiers filed online",
        max_points: 6.0,
        rule: Rule::FullAt(0.5),
        zero_denominator: ZeroDenominator::NotAssessed,
        source: "indicator 3.3 of the Government Office's formula description, full at 50% \
                 (transcript in ChippedTopaz/qd766 web/src/formula-document.ts); 6 points is \
                 medium confidence, and the portal's online-service group has no fitted rule",
    },
];

/// Returns the indicators of the built-in catalogue, in scorecard order.
pub fn definitions() -> &'static [IndicatorDef] {
    &DEFINITIONS
}

/// Scores one indicator from its counts. The numerator must not exceed the denominator.
pub fn score(def: &IndicatorDef, numerator: u64, denominator: u64) -> IndicatorScore {
    let mut result = IndicatorScore {
        id: def.id.to_string(),
        name: def.name_vi.to_string(),
        numerator,
        denominator,
        rate: None,
        points: None,
        max_points: def.max_points,
        assessed: true,
        rule: def.rule.describe(),
    };

    if denominator == 0 {
        match def.zero_denominator {
            ZeroDenominator::NotAssessed => result.assessed = false,
            ZeroDenominator::Zero => result.points = Some(0.0),
            ZeroDenominator::FullPoints => result.points = Some(def.max_points),
        }
        return result;
    }

    let rate = numerator as f64 / denominator as f64;
    result.rate = Some(rate);
    result.points = Some(def.rule.points(def.max_points, rate));
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition(id: &str) -> &'static IndicatorDef {
        definitions()
            .iter()
            .find(|def| def.id == id)
            .expect("the test names a built-in indicator")
    }

    #[test]
    fn catalogue_has_both_indicators() {
        let ids: Vec<&str> = definitions().iter().map(|def| def.id).collect();
        assert_eq!(ids, vec![DOSSIER_ON_TIME, ONLINE_FILING]);
        assert_eq!(definition(DOSSIER_ON_TIME).max_points, 20.0);
        assert_eq!(definition(ONLINE_FILING).max_points, 6.0);
    }

    #[test]
    fn proportional_keeps_full_precision() {
        let scored = score(definition(DOSSIER_ON_TIME), 2, 3);
        assert!(scored.assessed);
        assert_eq!(scored.rate, Some(2.0 / 3.0));
        // 20 × 2/3 = 13.333…, not rounded to the portal's two decimals.
        assert_eq!(scored.points, Some(20.0 * (2.0 / 3.0)));
        assert_eq!(scored.rule, "proportional");
        assert_eq!(scored.name, "Tỷ lệ hồ sơ xử lý trước hạn, đúng hạn");
    }

    #[test]
    fn full_at_half_caps_at_max() {
        let online = definition(ONLINE_FILING);
        assert_eq!(online.rule.describe(), "full at 50%");

        // 1/4 = 0.25 → 6 × 0.25 / 0.5 = 3.
        assert_eq!(score(online, 1, 4).points, Some(3.0));
        // Exactly 50% reaches the threshold: 6 × 0.5 / 0.5 = 6.
        assert_eq!(score(online, 1, 2).points, Some(6.0));
        // 9/10 = 0.9 → 6 × 0.9 / 0.5 = 10.8, capped at 6.
        assert_eq!(score(online, 9, 10).points, Some(6.0));
        assert_eq!(score(online, 0, 10).points, Some(0.0));
    }

    #[test]
    fn zero_denominator_rules() {
        let not_assessed = score(definition(DOSSIER_ON_TIME), 0, 0);
        assert!(!not_assessed.assessed);
        assert_eq!(not_assessed.rate, None);
        assert_eq!(not_assessed.points, None);
        assert_eq!(not_assessed.max_points, 20.0);

        let mut zero = definition(DOSSIER_ON_TIME).clone();
        zero.zero_denominator = ZeroDenominator::Zero;
        let scored = score(&zero, 0, 0);
        assert!(scored.assessed);
        assert_eq!(scored.rate, None);
        assert_eq!(scored.points, Some(0.0));

        let mut full = definition(ONLINE_FILING).clone();
        full.zero_denominator = ZeroDenominator::FullPoints;
        let scored = score(&full, 0, 0);
        assert!(scored.assessed);
        assert_eq!(scored.points, Some(6.0));
    }

    #[test]
    fn rule_describes_fractional_threshold() {
        assert_eq!(Rule::FullAt(0.8).describe(), "full at 80%");
        assert_eq!(Rule::FullAt(0.9).describe(), "full at 90%");
        assert_eq!(Rule::FullAt(0.125).describe(), "full at 12.5%");
    }
}
