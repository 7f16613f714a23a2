use super::*;

const DVCQG: &str = include_str!("../../catalogues/dvcqg-2026.toml");

fn group_maxima(catalogue: &Catalogue) -> Vec<(String, f64)> {
    catalogue
        .groups
        .iter()
        .map(|group| (group.id.clone(), group.max_points))
        .collect()
}

fn maxima(values: &[f64]) -> Vec<(String, f64)> {
    values
        .iter()
        .enumerate()
        .map(|(index, value)| ((index + 1).to_string(), *value))
        .collect()
}

/// Parses the dvcqg-2026 text after one textual replacement, and returns the error message.
fn error_after(from: &str, to: &str) -> String {
    assert!(
        DVCQG.contains(from),
        "the test edits text that exists: {from}"
    );
    let text = DVCQG.replacen(from, to, 1);
    Catalogue::parse(&text, "edited.toml")
        .expect_err("the edited catalogue is invalid")
        .to_string()
}

fn assert_mentions(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
}

#[test]
fn builtin_group_maxima() {
    let portal = Catalogue::builtin("dvcqg-2026").unwrap();
    assert_eq!(portal.version, "dvcqg-2026");
    assert_eq!(
        group_maxima(&portal),
        maxima(&[18.0, 20.0, 12.0, 22.0, 18.0, 10.0])
    );
    assert_eq!(portal.total_points, 100.0);

    let decision = Catalogue::builtin("766-2022").unwrap();
    assert_eq!(decision.version, "766-2022");
    assert_eq!(
        group_maxima(&decision),
        maxima(&[18.0, 20.0, 22.0, 22.0, 18.0])
    );
    assert_eq!(decision.total_points, 100.0);
    assert_eq!(decision.group_of_formula("PAYMENT"), Some("3"));
    assert_eq!(portal.group_of_formula("PAYMENT"), Some("6"));
}

impl Catalogue {
    fn group_of_formula(&self, id: &str) -> Option<&str> {
        self.formulas
            .iter()
            .find(|formula| formula.id == id)
            .map(|formula| formula.group.as_str())
    }
}

#[test]
fn builtins_share_indicators() {
    let portal = Catalogue::builtin("dvcqg-2026").unwrap();
    let decision = Catalogue::builtin("766-2022").unwrap();
    assert_eq!(portal.indicators.len(), decision.indicators.len());
    assert_eq!(portal.indicators.len(), 21);
    for (six, five) in portal.indicators.iter().zip(&decision.indicators) {
        let expected_group = match six.group.as_str() {
            "6" => "3",
            other => other,
        };
        assert_eq!(five.group, expected_group, "{}", six.id);
        let mut regrouped = six.clone();
        regrouped.group = five.group.clone();
        assert_eq!(&regrouped, five, "{}", six.id);
    }
    assert_eq!(portal.bands, decision.bands);
    assert_eq!(portal.unconfirmed_ids(), vec!["ONLINE_SERVICE".to_string()]);
}

#[test]
fn builtin_ids_and_default() {
    let ids: Vec<&str> = Catalogue::builtin_ids().collect();
    assert_eq!(ids, vec!["dvcqg-2026", "766-2022"]);
    assert_eq!(Catalogue::default_shared().version, DEFAULT_CATALOGUE);
    let message = Catalogue::builtin("766-2021").unwrap_err().to_string();
    assert_mentions(&message, &["\"766-2021\"", "dvcqg-2026, 766-2022"]);
}

#[test]
fn bands_sorted_and_found() {
    let catalogue = Catalogue::builtin("dvcqg-2026").unwrap();
    let names: Vec<&str> = catalogue.bands.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, vec!["Tốt", "Khá", "Trung bình", "Yếu"]);
    // The two totals the press has named.
    assert_eq!(catalogue.band_for(61.5).unwrap().name, "Trung bình");
    assert_eq!(catalogue.band_for(43.0).unwrap().name, "Yếu");
    assert_eq!(catalogue.band_for(80.0).unwrap().name, "Tốt");
    assert_eq!(catalogue.band_for(79.999).unwrap().name, "Khá");
}

#[test]
fn leaves_cover_parts() {
    let catalogue = Catalogue::builtin("dvcqg-2026").unwrap();
    let leaf = catalogue.leaf("ONLINE_FILING").unwrap();
    assert_eq!(leaf.indicator.id, "ONLINE_SERVICE");
    assert_eq!(leaf.measure.rule, Rule::FullAt(0.5));
    assert_eq!(leaf.measure.max_points, 6.0);
    assert!(catalogue.leaf("ONLINE_SERVICE").is_none());
    assert_eq!(catalogue.leaves().count(), 20 + 3);

    let term = catalogue.leaf("PAYMENT_FORMALITY_ONLINE").unwrap();
    let expected = Rule::Term {
        coefficient: 2.5,
        cap: Some(2.0),
    };
    assert_eq!(term.measure.rule, expected);
    assert_eq!(term.measure.max_points, 2.0);
    assert_eq!(
        catalogue
            .leaf("PAYMENT_DOSSIER_ONLINE")
            .unwrap()
            .measure
            .max_points,
        6.0
    );
}

#[test]
fn catalogue_file_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custom.toml");
    std::fs::write(
        &path,
        DVCQG.replace("version = \"dvcqg-2026\"", "version = \"custom-1\""),
    )
    .unwrap();
    assert_eq!(Catalogue::from_file(&path).unwrap().version, "custom-1");

    let missing = dir.path().join("missing.toml");
    let message = Catalogue::from_file(&missing).unwrap_err().to_string();
    assert_mentions(&message, &["missing.toml"]);
}

#[test]
fn unknown_field_names_entry() {
    let message = error_after(
        "id = \"PUBLIC_CONTENT_FULL\"\n",
        "id = \"PUBLIC_CONTENT_FULL\"\npointz = 2\n",
    );
    assert_mentions(
        &message,
        &["edited.toml", "indicator PUBLIC_CONTENT_FULL", "pointz"],
    );

    let message = error_after("name = \"Khá\"\n", "name = \"Khá\"\nmax = 79\n");
    assert_mentions(&message, &["band Khá", "max"]);

    let message = error_after("version = \"dvcqg-2026\"", "versoin = \"dvcqg-2026\"");
    assert_mentions(&message, &["edited.toml", "versoin"]);
}

#[test]
fn points_mismatch_names_group() {
    let message = error_after(
        "period = \"intake\"\npoints = 2\nrule = \"proportional\"",
        "period = \"intake\"\npoints = 3\nrule = \"proportional\"",
    );
    assert_mentions(
        &message,
        &[
            "group 1 (Công khai, minh bạch)",
            "maximum of 18",
            "add up to 19",
            "PUBLIC_CONTENT_FULL 3",
        ],
    );

    let message = error_after(
        "points = 4\nrule = \"proportional\"\nzero_denominator = \"not_assessed\"\nsource = \"part 3.2",
        "points = 3\nrule = \"proportional\"\nzero_denominator = \"not_assessed\"\nsource = \"part 3.2",
    );
    assert_mentions(
        &message,
        &[
            "indicator ONLINE_SERVICE",
            "maximum of 12",
            "add up to 11",
            "ONLINE_SERVICE_USED 3",
        ],
    );

    let message = error_after("max_points = 10\n", "max_points = 11\n");
    assert_mentions(&message, &["group 6", "formula PAYMENT capped at 10"]);

    let message = error_after("cap = 10\n", "cap = 9\n");
    assert_mentions(&message, &["group 6", "maximum of 10", "add up to 9"]);

    let message = error_after("total_points = 100", "total_points = 99");
    assert_mentions(
        &message,
        &["total_points", "maximum of 99", "add up to 100"],
    );
}

#[test]
fn unknown_names_are_rejected() {
    let message = error_after(
        "numerator = \"dossier.online\"",
        "numerator = \"dossier.onlin\"",
    );
    assert_mentions(
        &message,
        &[
            "part ONLINE_FILING of indicator ONLINE_SERVICE",
            "numerator = \"dossier.onlin\"",
            "unknown count name",
            "dossier.online",
        ],
    );

    let message = error_after(
        "denominator = \"procedure.announced\"",
        "denominator = \"procedure.announce\"",
    );
    assert_mentions(
        &message,
        &[
            "indicator PUBLISH_ON_TIME",
            "denominator = \"procedure.announce\"",
        ],
    );

    let message = error_after(
        "rule = \"full_at\"\nthreshold = 0.8\nzero_denominator = \"not_assessed\"\nsource = \"2 points",
        "rule = \"full-at\"\nthreshold = 0.8\nzero_denominator = \"not_assessed\"\nsource = \"2 points",
    );
    assert_mentions(
        &message,
        &["indicator REUSED_DIGITIZED_DATA", "threshold", "full_at"],
    );

    let message = error_after(
        "rule = \"proportional\"\nzero_denominator = \"not_assessed\"\nsource = \"name: dinte.gov.vn bulletin; 4",
        "rule = \"linear\"\nzero_denominator = \"not_assessed\"\nsource = \"name: dinte.gov.vn bulletin; 4",
    );
    assert_mentions(
        &message,
        &[
            "indicator PUBLIC_UPDATE_ON_TIME",
            "rule = \"linear\"",
            "expected proportional, full_at",
        ],
    );

    let message = error_after(
        "period = \"handling\"\npoints = 20",
        "period = \"carried\"\npoints = 20",
    );
    assert_mentions(
        &message,
        &[
            "indicator DOSSIER_ON_TIME",
            "period = \"carried\"",
            "handling or intake",
        ],
    );

    let message = error_after(
        "zero_denominator = \"full_points\"",
        "zero_denominator = \"full\"",
    );
    assert_mentions(
        &message,
        &[
            "indicator PETITION_PROCESSING_ON_TIME",
            "zero_denominator = \"full\"",
        ],
    );

    let message = error_after(
        "confidence = \"medium-high\"",
        "confidence = \"fairly high\"",
    );
    assert_mentions(
        &message,
        &["indicator DOSSIER_ON_TIME", "confidence = \"fairly high\""],
    );

    let message = error_after("group = \"2\"", "group = \"7\"");
    assert_mentions(
        &message,
        &[
            "indicator DOSSIER_ON_TIME",
            "group = \"7\"",
            "known groups: 1, 2, 3",
        ],
    );
}

#[test]
fn numerator_outside_denominator() {
    let message = error_after(
        "numerator = \"dossier.on_time\"\ndenominator = \"dossier.handled\"",
        "numerator = \"dossier.handled\"\ndenominator = \"dossier.on_time\"",
    );
    assert_mentions(
        &message,
        &[
            "indicator DOSSIER_ON_TIME",
            "numerator = \"dossier.handled\"",
            "not a subset of the denominator \"dossier.on_time\"",
        ],
    );
}

#[test]
fn duplicate_ids_are_named() {
    let message = error_after("id = \"PUBLIC_UPDATE_ON_TIME\"", "id = \"PUBLISH_ON_TIME\"");
    assert_mentions(&message, &["duplicate indicator id \"PUBLISH_ON_TIME\""]);

    let message = error_after("id = \"ONLINE_SERVICE_USED\"", "id = \"DOSSIER_ON_TIME\"");
    assert_mentions(&message, &["duplicate indicator id \"DOSSIER_ON_TIME\""]);

    let message = error_after("id = \"6\"", "id = \"5\"");
    assert_mentions(&message, &["duplicate group id \"5\""]);

    let message = error_after("name = \"Khá\"", "name = \"Tốt\"");
    assert_mentions(&message, &["duplicate band id \"Tốt\""]);
}

#[test]
fn rule_fields_are_checked() {
    let message = error_after("threshold = 0.5", "threshold = 50");
    assert_mentions(
        &message,
        &["part ONLINE_FILING", "threshold = 50", "fraction"],
    );

    let message = error_after("rule = \"fixed\"\nvalue = 2", "rule = \"fixed\"\nvalue = 3");
    assert_mentions(
        &message,
        &["indicator ELECTRONIC_CERTIFIED_COPY", "value = 3"],
    );

    let message = error_after(
        "points = 0\nrule = \"tracked\"",
        "points = 1\nrule = \"tracked\"",
    );
    assert_mentions(
        &message,
        &[
            "indicator PETITION_CLASSIFICATION_TTHC",
            "points = 1",
            "no points",
        ],
    );

    let message = error_after(
        "{ indicator = \"PAYMENT_FORMALITY_FEE_DATA\", coefficient = 2.5 },\n",
        "",
    );
    assert_mentions(
        &message,
        &[
            "indicator PAYMENT_FORMALITY_FEE_DATA",
            "no [[formulas]] term",
        ],
    );

    let message = error_after(
        "{ indicator = \"PAYMENT_FORMALITY_FEE_DATA\", coefficient = 2.5 },",
        "{ indicator = \"PAYMENT_FORMALITY_FEE_DATA\", coefficient = 2.5 },\n{ indicator = \"PAYMENT_EXTRA\", coefficient = 1 },",
    );
    assert_mentions(
        &message,
        &[
            "formula PAYMENT",
            "terms = \"PAYMENT_EXTRA\"",
            "no indicator has this id",
        ],
    );

    let message = error_after(
        "{ indicator = \"PAYMENT_DOSSIER_ONLINE\", coefficient = 6 }",
        "{ indicator = \"PAYMENT_DOSSIER_ONLINE\", coefficient = 6, weight = 1 }",
    );
    assert_mentions(&message, &["edited.toml", "weight"]);

    let message = error_after(
        "id = \"PAYMENT_DOSSIER_ONLINE\"\ngroup = \"6\"\nname_vi = \"Tỷ lệ hồ sơ thanh toán trực tuyến\"\nname_en = \"Fee-bearing dossiers paid online (A)\"\nnumerator = \"dossier.paid_online\"\ndenominator = \"dossier.fee_bearing\"\nperiod = \"intake\"\nrule = \"formula\"",
        "id = \"PAYMENT_DOSSIER_ONLINE\"\ngroup = \"6\"\nname_vi = \"Tỷ lệ hồ sơ thanh toán trực tuyến\"\nname_en = \"Fee-bearing dossiers paid online (A)\"\nnumerator = \"dossier.paid_online\"\ndenominator = \"dossier.fee_bearing\"\nperiod = \"intake\"\nrule = \"proportional\"",
    );
    assert_mentions(
        &message,
        &["indicator PAYMENT_DOSSIER_ONLINE", "must be \"formula\""],
    );

    let message = error_after("name = \"Khá\"\nmin = 65", "name = \"Khá\"\nmin = 120");
    assert_mentions(&message, &["band Khá", "min = 120"]);
}
