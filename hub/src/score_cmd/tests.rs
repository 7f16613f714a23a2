use std::collections::BTreeMap;

use chiso_proto::v1::UnitScore;
use serde_json::Value;

use super::inverse::leaf_score;
use super::*;
use crate::catalogue::CountId;
use crate::scores::source::{CountSource, Counts, Grouping, Scope, Window};
use crate::scores::{ScoreError, score_counts};

/// Expected result of one hand-computed case.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Assessed with these points.
    Points(f64),
    /// Not assessed: no rate and no points.
    NotAssessed,
}

/// (leaf id, numerator, denominator, expected result), every value worked out by hand.
#[rustfmt::skip]
const CASES: &[(&str, u64, u64, Expect)] = &[
    // Group 1, all proportional, zero denominator not assessed.
    ("PUBLISH_ON_TIME", 45, 60, Expect::Points(4.5)),              // 6 × 0.75
    ("PUBLISH_ON_TIME", 0, 0, Expect::NotAssessed),
    ("PUBLIC_UPDATE_ON_TIME", 7, 8, Expect::Points(3.5)),          // 4 × 0.875
    ("PUBLIC_UPDATE_ON_TIME", 0, 0, Expect::NotAssessed),
    ("PUBLIC_CONTENT_FULL", 3, 4, Expect::Points(1.5)),            // 2 × 0.75
    ("PUBLIC_CONTENT_FULL", 0, 0, Expect::NotAssessed),
    ("DOSSIER_SYNC", 950, 1000, Expect::Points(5.7)),              // 6 × 0.95
    ("DOSSIER_SYNC", 0, 0, Expect::NotAssessed),
    // Group 2.
    ("DOSSIER_ON_TIME", 156, 161, Expect::Points(19.37888198757764)), // 20 × 156/161
    ("DOSSIER_ON_TIME", 0, 161, Expect::Points(0.0)),
    ("DOSSIER_ON_TIME", 0, 0, Expect::NotAssessed),
    // Group 3, the parts of ONLINE_SERVICE.
    ("ONLINE_SERVICE_OFFERED", 52, 89, Expect::Points(1.4606741573033708)), // 2 × (52/89) / 0.8
    ("ONLINE_SERVICE_OFFERED", 80, 100, Expect::Points(2.0)),      // exactly 80%
    ("ONLINE_SERVICE_OFFERED", 9, 10, Expect::Points(2.0)),        // 2.25 capped at 2
    ("ONLINE_SERVICE_OFFERED", 0, 0, Expect::NotAssessed),
    ("ONLINE_SERVICE_USED", 3, 4, Expect::Points(3.0)),            // 4 × 0.75
    ("ONLINE_SERVICE_USED", 0, 0, Expect::NotAssessed),
    ("ONLINE_FILING", 1, 4, Expect::Points(3.0)),                  // 6 × 0.25 / 0.5
    ("ONLINE_FILING", 0, 0, Expect::NotAssessed),
    // Group 4.
    ("ORIGINAL_RESULT_AVAILABLE", 725, 1000, Expect::Points(4.35)), // 6 × 0.725
    ("ORIGINAL_RESULT_AVAILABLE", 0, 0, Expect::NotAssessed),
    ("SO_HOA_GIAY_TO_GIAI_QUYET", 243, 1000, Expect::Points(0.972)), // 4 × 0.243
    ("SO_HOA_GIAY_TO_GIAI_QUYET", 0, 0, Expect::NotAssessed),
    ("REUSED_DIGITIZED_DATA", 229, 1000, Expect::Points(0.5725)),  // 2 × 0.229 / 0.8
    ("REUSED_DIGITIZED_DATA", 85, 100, Expect::Points(2.0)),       // 2.125 capped at 2
    ("REUSED_DIGITIZED_DATA", 0, 0, Expect::NotAssessed),
    ("SYNCED_WITH_DVCQG_PERSONAL_STORAGE", 1, 8, Expect::Points(0.5)), // 4 × 0.125
    ("SYNCED_WITH_DVCQG_PERSONAL_STORAGE", 0, 0, Expect::NotAssessed),
    ("CITIZEN_DATA_CONNECTED_DOSSIER", 545, 1000, Expect::Points(1.09)), // 2 × 0.545
    ("CITIZEN_DATA_CONNECTED_DOSSIER", 0, 0, Expect::NotAssessed),
    ("CITIZEN_DATA_CONNECTED_FORMALITY", 1, 2, Expect::Points(1.0)), // 2 × 0.5
    ("CITIZEN_DATA_CONNECTED_FORMALITY", 0, 0, Expect::NotAssessed),
    // Group 5.
    ("DOSSIER_RECEIVING_SATISFACTION", 884, 1000, Expect::Points(5.8933333333333335)), // 6 × 0.884 / 0.9
    ("DOSSIER_RECEIVING_SATISFACTION", 95, 100, Expect::Points(6.0)), // 6.33 capped at 6
    ("DOSSIER_RECEIVING_SATISFACTION", 0, 0, Expect::Points(0.0)), // zero denominator: 0
    ("PETITION_PROCESSING_ON_TIME", 296, 570, Expect::Points(3.1157894736842104)), // 6 × 296/570
    ("PETITION_PROCESSING_ON_TIME", 0, 0, Expect::Points(6.0)),    // no feedback: full points
    ("PETITION_HANDLING_SATISFACTION", 1, 3, Expect::Points(2.0)), // 6 × 1/3
    ("PETITION_HANDLING_SATISFACTION", 0, 0, Expect::Points(6.0)),
    ("PETITION_CLASSIFICATION_TTHC", 10, 20, Expect::Points(0.0)), // tracked
    ("PETITION_CLASSIFICATION_TTHC", 0, 0, Expect::NotAssessed),
    ("PETITION_CLASSIFICATION_STAFF", 5, 20, Expect::Points(0.0)),
    ("PETITION_CLASSIFICATION_STAFF", 0, 0, Expect::NotAssessed),
    // Group 6, the payment formula's terms.
    ("PAYMENT_DOSSIER_ONLINE", 863, 1000, Expect::Points(5.178)),  // 6 × 0.863
    ("PAYMENT_DOSSIER_ONLINE", 0, 0, Expect::Points(0.0)),         // zero denominator: rate 0
    ("PAYMENT_FORMALITY_ONLINE", 3, 5, Expect::Points(1.5)),       // 2.5 × 0.6
    ("PAYMENT_FORMALITY_ONLINE", 9, 10, Expect::Points(2.0)),      // 2.25 capped at 2
    ("PAYMENT_FORMALITY_ONLINE", 0, 0, Expect::Points(0.0)),
    ("PAYMENT_FORMALITY_FEE_DATA", 2, 5, Expect::Points(1.0)),     // 2.5 × 0.4
    ("PAYMENT_FORMALITY_FEE_DATA", 0, 0, Expect::Points(0.0)),
];

fn catalogue(id: &str) -> Catalogue {
    Catalogue::builtin(id).unwrap()
}

fn inputs(catalogue: &Catalogue, metrics: &[(&str, u64, u64)]) -> Inputs {
    let metrics: BTreeMap<String, MetricCounts> = metrics
        .iter()
        .map(|(id, numerator, denominator)| {
            let counts = MetricCounts {
                numerator: *numerator,
                denominator: *denominator,
            };
            (id.to_string(), counts)
        })
        .collect();
    Inputs::new(catalogue, metrics).unwrap()
}

/// A count source that computes every count. `score_counts` only reads which counts are
/// unavailable, never queries it.
struct EveryCount;

impl CountSource for EveryCount {
    fn unavailable(&self, _count: CountId) -> Option<String> {
        None
    }

    fn count(
        &self,
        _: Scope<'_>,
        _: Grouping,
        _: Window,
    ) -> Result<std::collections::HashMap<String, Counts>, ScoreError> {
        unreachable!("score_counts reads counts it is given")
    }
}

/// Scores one leaf's counts the live way: registry counts under the leaf's period rule.
fn live(catalogue: &Catalogue, id: &str, numerator: u64, denominator: u64) -> UnitScore {
    let leaf = catalogue.leaf(id).unwrap();
    let mut counts = Counts::default();
    if let Some(fraction) = leaf.measure.fraction {
        counts.set(fraction.denominator, fraction.period, denominator);
        counts.set(fraction.numerator, fraction.period, numerator);
    }
    score_counts(&EveryCount, catalogue, &counts)
}

fn check(unit: &UnitScore, id: &str, numerator: u64, denominator: u64, expect: Expect, path: &str) {
    let score = leaf_score(unit, id).unwrap_or_else(|| panic!("{id} scored"));
    assert_eq!(
        (score.numerator, score.denominator),
        (numerator, denominator),
        "{path} {id}"
    );
    match expect {
        Expect::Points(points) => {
            assert!(
                score.assessed,
                "{path} {id} {numerator}/{denominator} assessed"
            );
            let got = score.points.unwrap();
            assert!(
                (got - points).abs() < 1e-12,
                "{path} {id} {numerator}/{denominator}: {got} != {points}"
            );
            if denominator == 0 {
                assert_eq!(score.rate, None, "{path} {id}");
            }
        }
        Expect::NotAssessed => {
            assert!(
                !score.assessed,
                "{path} {id} {numerator}/{denominator} not assessed"
            );
            assert_eq!(score.points, None, "{path} {id}");
            assert_eq!(score.rate, None, "{path} {id}");
        }
    }
}

#[test]
fn every_leaf_by_hand() {
    for version in ["dvcqg-2026", "766-2022"] {
        let catalogue = catalogue(version);
        for &(id, numerator, denominator, expect) in CASES {
            let what_if = evaluate(
                &catalogue,
                &inputs(&catalogue, &[(id, numerator, denominator)]),
            );
            check(&what_if, id, numerator, denominator, expect, "what-if");
            let engine = live(&catalogue, id, numerator, denominator);
            check(&engine, id, numerator, denominator, expect, "engine");
        }
        // Every leaf that reads counts has a case, zero denominator included.
        for leaf in catalogue
            .leaves()
            .filter(|leaf| leaf.measure.rule.uses_counts())
        {
            assert!(
                CASES.iter().any(|case| case.0 == leaf.id && case.2 == 0),
                "{} zero case",
                leaf.id
            );
            assert!(
                CASES.iter().any(|case| case.0 == leaf.id && case.2 > 0),
                "{} case",
                leaf.id
            );
        }
    }
}

#[test]
fn fixed_value_needs_no_counts() {
    let catalogue = catalogue("dvcqg-2026");
    let unit = evaluate(&catalogue, &Inputs::default());
    let copy = leaf_score(&unit, "ELECTRONIC_CERTIFIED_COPY").unwrap();
    assert!(copy.assessed);
    assert_eq!(copy.points, Some(2.0));
    assert_eq!(copy.rule, "fixed 2 points");
    // Nothing else was given, so nothing else is assessed except the zero-denominator rules.
    let missing = leaf_score(&unit, "DOSSIER_ON_TIME").unwrap();
    assert_eq!(missing.note, "not assessed: no counts given");
    assert_eq!(unit.points, 2.0);
    assert_eq!(unit.band, "");
}

#[test]
fn group_maxima_at_full_rates() {
    let expected = [
        ("dvcqg-2026", vec![18.0, 20.0, 12.0, 22.0, 18.0, 10.0]),
        ("766-2022", vec![18.0, 20.0, 22.0, 22.0, 18.0]),
    ];
    for (version, maxima) in expected {
        let catalogue = catalogue(version);
        let all: Vec<(&str, u64, u64)> = catalogue
            .leaves()
            .filter(|leaf| leaf.measure.rule.uses_counts())
            .map(|leaf| (leaf.id, 7, 7))
            .collect();
        let unit = evaluate(&catalogue, &inputs(&catalogue, &all));
        let points: Vec<f64> = unit.groups.iter().map(|group| group.points).collect();
        assert_eq!(points, maxima, "{version}");
        let group_max: Vec<f64> = unit.groups.iter().map(|group| group.max_points).collect();
        assert_eq!(group_max, maxima, "{version}");
        assert_eq!(unit.points, 100.0, "{version}");
        assert_eq!(unit.max_points, 100.0, "{version}");
        assert_eq!(unit.band, "Tốt", "{version}");
    }
}

#[test]
fn payment_formula_caps_sum() {
    let catalogue = catalogue("dvcqg-2026");
    // 6 × 0.863 + min(2, 2.5 × 0.6) + 2.5 × 0.4 = 5.178 + 1.5 + 1 = 7.678.
    let some = [
        ("PAYMENT_DOSSIER_ONLINE", 863, 1000),
        ("PAYMENT_FORMALITY_ONLINE", 3, 5),
        ("PAYMENT_FORMALITY_FEE_DATA", 2, 5),
    ];
    let unit = evaluate(&catalogue, &inputs(&catalogue, &some));
    let payment = unit.groups.iter().find(|group| group.id == "6").unwrap();
    assert!((payment.points - 7.678).abs() < 1e-12, "{}", payment.points);
    // 6 + 2 + 2.5 = 10.5, capped at 10.
    let full = [
        ("PAYMENT_DOSSIER_ONLINE", 1, 1),
        ("PAYMENT_FORMALITY_ONLINE", 1, 1),
        ("PAYMENT_FORMALITY_FEE_DATA", 1, 1),
    ];
    let unit = evaluate(&catalogue, &inputs(&catalogue, &full));
    assert_eq!(
        unit.groups
            .iter()
            .find(|group| group.id == "6")
            .unwrap()
            .points,
        10.0
    );

    // In the five-group catalogue the same formula sits in group 3 beside ONLINE_SERVICE:
    // 3 (ONLINE_FILING 1/4) + min(10, 10.5) = 13.
    let decision = super::tests::catalogue("766-2022");
    let mixed = [
        ("ONLINE_FILING", 1, 4),
        ("PAYMENT_DOSSIER_ONLINE", 1, 1),
        ("PAYMENT_FORMALITY_ONLINE", 1, 1),
        ("PAYMENT_FORMALITY_FEE_DATA", 1, 1),
    ];
    let unit = evaluate(&decision, &inputs(&decision, &mixed));
    let online = unit.groups.iter().find(|group| group.id == "3").unwrap();
    assert_eq!(online.points, 13.0);
    assert_eq!(online.max_points, 22.0);
    assert!(online.unconfirmed);
    assert!(
        online.formula.starts_with("ONLINE_SERVICE + min(10, "),
        "{}",
        online.formula
    );
}

fn answer(metrics: &[(&str, u64, u64)], metric: &str, target: Target) -> Answer {
    let catalogue = catalogue("dvcqg-2026");
    let inputs = inputs(&catalogue, metrics);
    inverse::records_needed(&catalogue, &inputs, metric, &target).unwrap()
}

#[test]
fn inverse_target_points() {
    // 20 × (156 + k)/(161 + k) ≥ 19.5 ⇔ 0.025 k ≥ 0.975 ⇔ k ≥ 39.
    let reached = answer(
        &[("DOSSIER_ON_TIME", 156, 161)],
        "DOSSIER_ON_TIME",
        Target::Points(19.5),
    );
    assert_eq!(reached.additional, Some(39));
    let after = reached.counts_after.unwrap();
    assert_eq!((after.numerator, after.denominator), (195, 200));
    // One record fewer falls short: 20 × 194/199 = 19.497…
    let catalogue = catalogue("dvcqg-2026");
    let short = evaluate(
        &catalogue,
        &inputs(&catalogue, &[("DOSSIER_ON_TIME", 194, 199)]),
    );
    assert!(
        leaf_score(&short, "DOSSIER_ON_TIME")
            .unwrap()
            .points
            .unwrap()
            < 19.5
    );

    // The maximum needs a rate of exactly 1, which 156/161 never reaches; above it, nothing does.
    assert_eq!(
        answer(
            &[("DOSSIER_ON_TIME", 156, 161)],
            "DOSSIER_ON_TIME",
            Target::Points(20.0)
        )
        .additional,
        None
    );
    assert_eq!(
        answer(
            &[("DOSSIER_ON_TIME", 161, 161)],
            "DOSSIER_ON_TIME",
            Target::Points(20.0)
        )
        .additional,
        Some(0)
    );
    assert_eq!(
        answer(
            &[("DOSSIER_ON_TIME", 161, 161)],
            "DOSSIER_ON_TIME",
            Target::Points(20.5)
        )
        .additional,
        None
    );

    // Full at 50%: (1 + k)/(4 + k) ≥ 0.5 ⇔ k ≥ 2.
    assert_eq!(
        answer(
            &[("ONLINE_FILING", 1, 4)],
            "ONLINE_FILING",
            Target::Points(6.0)
        )
        .additional,
        Some(2)
    );
    // Not given means 0/0: one record makes 1/1.
    assert_eq!(
        answer(&[], "PUBLISH_ON_TIME", Target::Points(6.0)).additional,
        Some(1)
    );
    // No feedback already gives full points.
    assert_eq!(
        answer(
            &[("PETITION_PROCESSING_ON_TIME", 0, 0)],
            "PETITION_PROCESSING_ON_TIME",
            Target::Points(6.0)
        )
        .additional,
        Some(0)
    );
    // A capped term: 2.5 × (3 + k)/(5 + k) ≥ 2 ⇔ k ≥ 5; above its cap of 2, unreachable.
    assert_eq!(
        answer(
            &[("PAYMENT_FORMALITY_ONLINE", 3, 5)],
            "PAYMENT_FORMALITY_ONLINE",
            Target::Points(2.0)
        )
        .additional,
        Some(5)
    );
    assert_eq!(
        answer(
            &[("PAYMENT_FORMALITY_ONLINE", 3, 5)],
            "PAYMENT_FORMALITY_ONLINE",
            Target::Points(2.1)
        )
        .additional,
        None
    );
    // A tracked indicator gives no points.
    assert_eq!(
        answer(
            &[("PETITION_CLASSIFICATION_TTHC", 1, 2)],
            "PETITION_CLASSIFICATION_TTHC",
            Target::Points(0.5)
        )
        .additional,
        None
    );
}

#[test]
fn inverse_target_band() {
    // 10 (on time 50/100) + 6 + 6 + 4 + 2 + 6 + 6 (no feedback) + 2 (fixed) = 42: Yếu.
    let metrics = [
        ("DOSSIER_ON_TIME", 50, 100),
        ("ONLINE_FILING", 1, 1),
        ("ORIGINAL_RESULT_AVAILABLE", 1, 1),
        ("SO_HOA_GIAY_TO_GIAI_QUYET", 1, 1),
        ("REUSED_DIGITIZED_DATA", 1, 1),
        ("PETITION_PROCESSING_ON_TIME", 0, 0),
        ("PETITION_HANDLING_SATISFACTION", 0, 0),
    ];
    let catalogue = catalogue("dvcqg-2026");
    let now = evaluate(&catalogue, &inputs(&catalogue, &metrics));
    assert!((now.points - 42.0).abs() < 1e-12, "{}", now.points);
    assert_eq!(now.band, "Yếu");

    // Trung bình from 50 needs 18 points on time: (50 + k)/(100 + k) ≥ 0.9 ⇔ k ≥ 400.
    let reached = answer(
        &metrics,
        "DOSSIER_ON_TIME",
        Target::Band("Trung bình".into()),
    );
    assert_eq!(reached.additional, Some(400));
    assert_eq!(reached.after.unwrap().band, "Trung bình");
    // Khá needs 65, 23 more points than the 20 the indicator can give.
    assert_eq!(
        answer(&metrics, "DOSSIER_ON_TIME", Target::Band("Khá".into())).additional,
        None
    );
    assert_eq!(
        answer(&metrics, "DOSSIER_ON_TIME", Target::Band("Yếu".into())).additional,
        Some(0)
    );
}

fn run_text(args: &[&str], stdin: &str) -> Result<String, ScoreCmdError> {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: ScoreArgs,
    }
    let cli = Cli::try_parse_from(std::iter::once("score").chain(args.iter().copied())).unwrap();
    let mut output = Vec::new();
    run(&cli.args, stdin.as_bytes(), &mut output)?;
    Ok(String::from_utf8(output).unwrap())
}

const INPUT: &str = r#"{"metrics": {"DOSSIER_ON_TIME": {"numerator": 156, "denominator": 161}}}"#;

#[test]
fn text_two_decimals_json_full() {
    let text = run_text(&["--format", "text"], INPUT).unwrap();
    assert!(text.contains("19.38 / 20.00"), "{text}");
    assert!(text.contains("156/161"), "{text}");
    assert!(text.contains("96.89%"), "{text}");
    assert!(!text.contains("19.378"), "{text}");
    // 19.378… + the fixed 2 points.
    assert!(text.contains("Total 21.38 / 100.00, band Yếu"), "{text}");
    assert!(text.contains("* unconfirmed rule"), "{text}");

    let json: Value = serde_json::from_str(&run_text(&[], INPUT).unwrap()).unwrap();
    assert_eq!(json["catalogue"], "dvcqg-2026");
    let on_time = json["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|metric| metric["id"] == "DOSSIER_ON_TIME")
        .unwrap();
    assert_eq!(on_time["points"].as_f64(), Some(20.0 * (156.0 / 161.0)));
    assert_eq!(on_time["rate"].as_f64(), Some(156.0 / 161.0));
    assert_eq!(json["total"].as_f64(), Some(20.0 * (156.0 / 161.0) + 2.0));
    let sync = json["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|metric| metric["id"] == "DOSSIER_SYNC")
        .unwrap();
    assert!(sync["points"].is_null());
    assert_eq!(sync["assessed"], Value::Bool(false));
    assert_eq!(json["groups"].as_array().unwrap().len(), 6);
}

#[test]
fn command_answers_target() {
    let json: Value = serde_json::from_str(
        &run_text(
            &["--metric", "DOSSIER_ON_TIME", "--target-points", "19.5"],
            INPUT,
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(json["target"]["additional_records"], 39);
    assert_eq!(json["target"]["reachable"], true);
    assert_eq!(json["target"]["after"]["numerator"], 195);

    let json: Value = serde_json::from_str(
        &run_text(
            &[
                "--catalogue",
                "766-2022",
                "--metric",
                "DOSSIER_ON_TIME",
                "--target-band",
                "Tốt",
            ],
            INPUT,
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(json["catalogue"], "766-2022");
    assert!(json["target"]["additional_records"].is_null());
    assert_eq!(json["target"]["reachable"], false);

    let text = run_text(
        &[
            "--format",
            "text",
            "--metric",
            "DOSSIER_ON_TIME",
            "--target-points",
            "20",
        ],
        INPUT,
    )
    .unwrap();
    assert!(
        text.contains("DOSSIER_ON_TIME cannot reach 20.00 points by adding records."),
        "{text}"
    );
}

#[test]
fn command_errors_name_value() {
    let error = |args: &[&str], input: &str| run_text(args, input).unwrap_err().to_string();

    let message = error(
        &[],
        r#"{"metrics": {"DOSSIER_ONTIME": {"numerator": 1, "denominator": 2}}}"#,
    );
    assert!(
        message.contains("\"DOSSIER_ONTIME\"") && message.contains("DOSSIER_ON_TIME, "),
        "{message}"
    );
    let message = error(
        &[],
        r#"{"metrics": {"DOSSIER_ON_TIME": {"numerator": 3, "denominator": 2}}}"#,
    );
    assert!(
        message.contains("numerator 3 exceeds denominator 2"),
        "{message}"
    );
    let message = error(
        &[],
        r#"{"metrics": {"ELECTRONIC_CERTIFIED_COPY": {"numerator": 1, "denominator": 1}}}"#,
    );
    assert!(
        message.contains("ELECTRONIC_CERTIFIED_COPY has a fixed value"),
        "{message}"
    );
    let message = error(
        &[],
        r#"{"metrics": {"DOSSIER_ON_TIME": {"numeratr": 1, "denominator": 2}}}"#,
    );
    assert!(message.contains("numeratr"), "{message}");
    let message = error(
        &["--metric", "DOSSIER_ON_TIME", "--target-band", "Giỏi"],
        INPUT,
    );
    assert!(
        message.contains("\"Giỏi\"") && message.contains("Tốt (from 80)"),
        "{message}"
    );
    let message = error(
        &["--metric", "DOSSIER_ON_TIME", "--target-points=-1"],
        INPUT,
    );
    assert!(message.contains("--target-points -1"), "{message}");
    let message = error(&["--catalogue", "766"], INPUT);
    assert!(message.contains("\"766\""), "{message}");
}
