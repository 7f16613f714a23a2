//! Tests of the sample kinds besides dossiers: determinism, that every record passes intake,
//! that they agree with the dossiers, and that their shares follow the distribution.

use super::*;
use crate::dvcqg::{IntakeContext, parse_records};
use chiso_proto::v1::record::Body;
use chiso_proto::v1::{Dossier, DossierStep, Feedback, OnlineLevel, Procedure, Rating};
use chiso_proto::vntime::{parse_portal_datetime, vietnam_day};
use std::collections::{BTreeMap, BTreeSet};

/// Phú Thọ, October 2026. `as_of` is given as yyyyMMddHHmmss.
fn spec(dossiers: usize, seed: u64, as_of: &str) -> SampleSpec {
    SampleSpec {
        province: "25".to_string(),
        dossiers,
        month: "2026-10".parse().unwrap(),
        seed,
        as_of: parse_portal_datetime(as_of).unwrap(),
    }
}

/// Parses an envelope as intake would, with no explicit kind, and fails on any rejection.
fn parse_all(envelope: &Value, kind: Kind) -> Vec<Body> {
    let map = HashMap::new();
    let ctx = IntakeContext {
        locality: "25",
        catalogue: UnitCatalogue::official(),
        agency_map: &map,
    };
    let bytes = serde_json::to_vec(envelope).unwrap();
    let parsed = parse_records(&bytes, None, &ctx).unwrap();
    assert_eq!(parsed.kind, kind);
    parsed
        .outcomes
        .into_iter()
        .map(|outcome| {
            outcome
                .result
                .unwrap_or_else(|error| panic!("{kind} {} rejected: {error:?}", outcome.index))
        })
        .collect()
}

fn dossiers_of(set: &SampleSet) -> Vec<Dossier> {
    parse_all(&set.dossiers, Kind::Dossier)
        .into_iter()
        .map(|body| match body {
            Body::Dossier(dossier) => dossier,
            other => panic!("not a dossier: {other:?}"),
        })
        .collect()
}

fn procedures_of(set: &SampleSet) -> Vec<Procedure> {
    parse_all(&set.procedures, Kind::Procedure)
        .into_iter()
        .map(|body| match body {
            Body::Procedure(procedure) => procedure,
            other => panic!("not a procedure: {other:?}"),
        })
        .collect()
}

fn feedback_of(set: &SampleSet) -> Vec<Feedback> {
    parse_all(&set.feedback, Kind::Feedback)
        .into_iter()
        .map(|body| match body {
            Body::Feedback(feedback) => feedback,
            other => panic!("not a feedback item: {other:?}"),
        })
        .collect()
}

fn ratings_of(set: &SampleSet) -> Vec<Rating> {
    parse_all(&set.ratings, Kind::Rating)
        .into_iter()
        .map(|body| match body {
            Body::Rating(rating) => rating,
            other => panic!("not a rating: {other:?}"),
        })
        .collect()
}

fn steps_of(set: &SampleSet) -> Vec<DossierStep> {
    parse_all(&set.steps, Kind::Step)
        .into_iter()
        .map(|body| match body {
            Body::Step(step) => step,
            other => panic!("not a step: {other:?}"),
        })
        .collect()
}

fn share<T>(items: &[T], predicate: impl Fn(&T) -> bool) -> f64 {
    items.iter().filter(|item| predicate(item)).count() as f64 / items.len() as f64
}

#[test]
fn same_spec_gives_same_set() {
    let catalogue = UnitCatalogue::official();
    let first = generate_set(&spec(500, 7, "20261031235959"), catalogue).unwrap();
    let second = generate_set(&spec(500, 7, "20261031235959"), catalogue).unwrap();
    for kind in Kind::ALL {
        assert_eq!(
            serde_json::to_vec(first.envelope(kind)).unwrap(),
            serde_json::to_vec(second.envelope(kind)).unwrap(),
            "{kind}"
        );
    }
    let other_seed = generate_set(&spec(500, 8, "20261031235959"), catalogue).unwrap();
    assert_ne!(first.steps, other_seed.steps);
}

#[test]
fn set_dossiers_equal_dossier_sample() {
    let catalogue = UnitCatalogue::official();
    let spec = spec(300, 3, "20261020120000");
    let set = generate_set(&spec, catalogue).unwrap();
    assert_eq!(set.dossiers, generate(&spec, catalogue).unwrap());
    assert_eq!(set.dossiers["service"], "DongBoHoSoMC");
    assert_eq!(set.procedures["service"], "DongBoTTHC");
    assert_eq!(set.feedback["service"], "DongBoPAKN");
    assert_eq!(set.ratings["service"], "DongBoDanhGiaHaiLong");
    assert_eq!(set.steps["service"], "CapNhatTienDoHoSoMC");
}

#[test]
fn written_files_match_generated_set() {
    let catalogue = UnitCatalogue::official();
    let spec = spec(200, 5, "20261031235959");
    let dir = tempfile::tempdir().unwrap();
    let written = write_sample_set(&spec, catalogue, dir.path()).unwrap();
    let set = generate_set(&spec, catalogue).unwrap();
    assert_eq!(written.len(), 5);
    for (kind, path, records) in written {
        let read: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(&read, set.envelope(kind), "{kind}");
        assert_eq!(records, set.count(kind), "{kind}");
    }
    assert!(dir.path().join("ratings.json").exists());

    let single = dir.path().join("feedback-only.json");
    let count = write_sample_kind(&spec, Kind::Feedback, catalogue, &single).unwrap();
    let read: Value = serde_json::from_slice(&std::fs::read(&single).unwrap()).unwrap();
    assert_eq!(read, set.feedback);
    assert_eq!(count, set.count(Kind::Feedback));
}

#[test]
fn every_kind_passes_intake() {
    let spec = spec(3_000, 11, "20261020120000");
    let set = generate_set(&spec, UnitCatalogue::official()).unwrap();
    let dossiers = dossiers_of(&set);
    let catalogue = UnitCatalogue::official();

    let procedures = procedures_of(&set);
    let keys: BTreeSet<(&str, &str)> = procedures
        .iter()
        .map(|p| (p.unit_code.as_str(), p.code.as_str()))
        .collect();
    assert_eq!(keys.len(), procedures.len(), "procedure keys repeat");
    // Every dossier's procedure is listed, as an online service, for its unit.
    let online: BTreeSet<(&str, &str)> = procedures
        .iter()
        .filter(|p| p.online_level != OnlineLevel::None as i32)
        .map(|p| (p.unit_code.as_str(), p.code.as_str()))
        .collect();
    for dossier in &dossiers {
        let key = (dossier.unit_code.as_str(), dossier.procedure_code.as_str());
        assert!(online.contains(&key), "{key:?} is not an online procedure");
    }

    let feedback = feedback_of(&set);
    let codes: BTreeSet<&str> = dossiers.iter().map(|d| d.code.as_str()).collect();
    assert!(!feedback.is_empty());
    for item in &feedback {
        assert!(catalogue.is_within(&item.unit_code, "25"));
        assert!(item.received_at <= spec.as_of, "{}", item.code);
        assert!(
            item.finished_at.is_none_or(|t| t <= spec.as_of),
            "{}",
            item.code
        );
        assert!(item.dossier_code.is_empty() || codes.contains(item.dossier_code.as_str()));
    }

    let by_code: BTreeMap<&str, &Dossier> = dossiers.iter().map(|d| (d.code.as_str(), d)).collect();
    let ratings = ratings_of(&set);
    assert!(!ratings.is_empty());
    for rating in &ratings {
        let dossier = by_code[rating.dossier_code.as_str()];
        assert_eq!(rating.unit_code, dossier.unit_code);
        let finished = dossier
            .finished_at
            .expect("only finished dossiers are rated");
        assert!(rating.rated_at >= finished, "{}", rating.code);
        assert!(rating.rated_at <= spec.as_of, "{}", rating.code);
    }

    // Each dossier's last step carries its status, and steps never run past as_of.
    let steps = steps_of(&set);
    let mut last: BTreeMap<&str, &DossierStep> = BTreeMap::new();
    for step in &steps {
        assert!(step.at <= spec.as_of, "{}", step.dossier_code);
        let previous = last.insert(step.dossier_code.as_str(), step);
        if let Some(previous) = previous {
            assert!(
                previous.step < step.step,
                "{} steps out of order",
                step.dossier_code
            );
        }
    }
    assert_eq!(last.len(), dossiers.len());
    for dossier in &dossiers {
        let step = last[dossier.code.as_str()];
        assert_eq!(step.status, dossier.status, "{}", dossier.code);
        assert_eq!(step.unit_code, dossier.unit_code);
        if let Some(finished) = dossier.finished_at {
            assert_eq!(step.finished_at, Some(finished), "{}", dossier.code);
        }
    }
}

#[test]
fn procedure_shares_follow_phu_tho() {
    let set = generate_set(&spec(100, 2, "20261031235959"), UnitCatalogue::official()).unwrap();
    let procedures = procedures_of(&set);
    let defaults = Distribution::default();
    let communes = UnitCatalogue::official().communes_of("25").len();
    assert_eq!(
        procedures.len(),
        defaults.province_procedures + communes * defaults.commune_procedures
    );

    let province: Vec<&Procedure> = procedures.iter().filter(|p| p.unit_code == "25").collect();
    assert_eq!(province.len(), 89);
    let online = share(&procedures, |p| p.online_level != OnlineLevel::None as i32);
    let expected = defaults.procedure_partial + defaults.procedure_full;
    assert!((online - expected).abs() < 0.05, "online share {online}");
    let full = share(&procedures, |p| p.online_level == OnlineLevel::Full as i32);
    assert!(
        (full - defaults.procedure_full).abs() < 0.05,
        "full share {full}"
    );

    // Announcements spread over the year before as_of, so some fall in the sample's month.
    let month = Month::of_instant(spec(1, 1, "20261031235959").as_of);
    let in_month = procedures
        .iter()
        .filter(|p| {
            p.announced_at
                .is_some_and(|t| Month::of_day(vietnam_day(t)) == month)
        })
        .count();
    assert!(
        in_month > 100,
        "{in_month} procedures announced in the month"
    );
}

#[test]
fn feedback_and_rating_shares_follow_phu_tho() {
    // as_of two months after the month, so every item is answered.
    let distribution = Distribution {
        feedback_per_dossier: 0.4,
        ..Distribution::default()
    };
    let spec = spec(5_000, 9, "20261231235959");
    let set = generate_set_with(&spec, &distribution, UnitCatalogue::official()).unwrap();

    let feedback = feedback_of(&set);
    assert_eq!(feedback.len(), 2_000);
    let answered: Vec<&Feedback> = feedback
        .iter()
        .filter(|f| f.finished_at.is_some())
        .collect();
    assert_eq!(answered.len(), feedback.len());
    let on_time = share(&answered, |f| {
        vietnam_day(f.finished_at.unwrap()) <= vietnam_day(f.due_at.unwrap())
    });
    assert!((on_time - 0.519).abs() < 0.04, "feedback on time {on_time}");

    let ratings = ratings_of(&set);
    let satisfied = share(&ratings, |r| r.level >= 4);
    assert!((satisfied - 0.884).abs() < 0.03, "satisfied {satisfied}");

    let dossiers = dossiers_of(&set);
    let population = share(&dossiers, |d| d.population_data);
    assert!(
        (population - 0.545).abs() < 0.03,
        "population database {population}"
    );
    assert!(dossiers.iter().all(|d| !d.personal_storage));
}

#[test]
fn default_feedback_count_follows_phu_tho() {
    let set = generate_set(&spec(5_000, 4, "20261031235959"), UnitCatalogue::official()).unwrap();
    // 5,000 × 570 / 597,918 = 4.77, rounded.
    assert_eq!(set.count(Kind::Feedback), 5);
}

#[test]
fn personal_fields_are_in_every_kind() {
    let distribution = Distribution {
        feedback_per_dossier: 0.05,
        ..Distribution::default()
    };
    let spec = spec(400, 6, "20261231235959");
    let set = generate_set_with(&spec, &distribution, UnitCatalogue::official()).unwrap();
    let planted = [
        (Kind::Feedback, "HoTen"),
        (Kind::Feedback, "NoiDung"),
        (Kind::Feedback, "SoDienThoai"),
        (Kind::Rating, "NguoiDanhGia"),
        (Kind::Rating, "YKien"),
        (Kind::Step, "NguoiXuLy"),
    ];
    for (kind, field) in planted {
        let records = set.envelope(kind)["data"].as_array().unwrap();
        assert!(!records.is_empty(), "{kind}");
        for record in records {
            let value = record[field].as_str().unwrap_or_default();
            assert!(!value.is_empty(), "{kind} {field} missing in {record}");
        }
    }
}
