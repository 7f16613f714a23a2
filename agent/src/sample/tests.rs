use super::*;
use crate::dvcqg::{IntakeContext, parse_dossiers};
use chiso_proto::v1::{Channel, Dossier, DossierStatus};
use chiso_proto::vntime::parse_portal_datetime;
use std::collections::{BTreeSet, HashMap};

/// Phú Thọ, October 2026, as of 20 October at noon Vietnam time.
fn spec(dossiers: usize, seed: u64) -> SampleSpec {
    SampleSpec {
        province: "25".to_string(),
        dossiers,
        month: "2026-10".parse().unwrap(),
        seed,
        as_of: parse_portal_datetime("20261020120000").unwrap(),
    }
}

fn parse_sample(envelope: &Value, locality: &str) -> Vec<Dossier> {
    let map = HashMap::new();
    let ctx = IntakeContext {
        locality,
        catalogue: UnitCatalogue::official(),
        agency_map: &map,
    };
    let bytes = serde_json::to_vec(envelope).unwrap();
    parse_dossiers(&bytes, &ctx)
        .unwrap()
        .into_iter()
        .map(|outcome| {
            outcome
                .result
                .unwrap_or_else(|error| panic!("record {} rejected: {error:?}", outcome.index))
        })
        .collect()
}

fn share(dossiers: &[Dossier], predicate: impl Fn(&Dossier) -> bool) -> f64 {
    dossiers.iter().filter(|d| predicate(d)).count() as f64 / dossiers.len() as f64
}

#[test]
fn same_spec_gives_same_bytes() {
    let catalogue = UnitCatalogue::official();
    let first = serde_json::to_vec(&generate(&spec(300, 7), catalogue).unwrap()).unwrap();
    let second = serde_json::to_vec(&generate(&spec(300, 7), catalogue).unwrap()).unwrap();
    assert_eq!(first, second);

    let directory = tempfile::tempdir().unwrap();
    let (path_a, path_b) = (
        directory.path().join("a.json"),
        directory.path().join("b.json"),
    );
    assert_eq!(
        write_sample(&spec(300, 7), catalogue, &path_a).unwrap(),
        300
    );
    assert_eq!(
        write_sample(&spec(300, 7), catalogue, &path_b).unwrap(),
        300
    );
    assert_eq!(
        std::fs::read(&path_a).unwrap(),
        std::fs::read(&path_b).unwrap()
    );
}

#[test]
fn different_seeds_differ() {
    let catalogue = UnitCatalogue::official();
    let first = generate(&spec(50, 1), catalogue).unwrap();
    let second = generate(&spec(50, 2), catalogue).unwrap();
    assert_ne!(first, second);
}

#[test]
fn every_record_round_trips() {
    let envelope = generate(&spec(2_000, 11), UnitCatalogue::official()).unwrap();
    assert_eq!(envelope["service"], "DongBoHoSoMC");
    assert_eq!(envelope["madonvi"], "25");
    let dossiers = parse_sample(&envelope, "25");
    assert_eq!(dossiers.len(), 2_000);

    let codes: BTreeSet<&str> = dossiers.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(codes.len(), 2_000, "MaHoSo values repeat");

    let catalogue = UnitCatalogue::official();
    assert!(
        dossiers
            .iter()
            .all(|d| catalogue.is_within(&d.unit_code, "25"))
    );
    assert!(dossiers.iter().any(|d| d.unit_code == "25"));
    assert!(dossiers.iter().any(|d| d.unit_code.len() == 5));

    let statuses: BTreeSet<i32> = dossiers.iter().map(|d| d.status).collect();
    for status in [
        DossierStatus::NotAccepted,
        DossierStatus::Processing,
        DossierStatus::Withdrawn,
        DossierStatus::Stopped,
        DossierStatus::Processed,
        DossierStatus::Returned,
    ] {
        assert!(statuses.contains(&(status as i32)), "no {status:?} dossier");
    }
}

#[test]
fn nothing_happens_after_as_of() {
    let spec = spec(2_000, 3);
    let dossiers = parse_sample(&generate(&spec, UnitCatalogue::official()).unwrap(), "25");
    let month_start = parse_portal_datetime("20261001000000").unwrap();
    for dossier in &dossiers {
        assert!(dossier.received_at >= month_start, "{}", dossier.code);
        assert!(dossier.received_at <= spec.as_of, "{}", dossier.code);
        assert!(
            dossier.finished_at.is_none_or(|t| t <= spec.as_of),
            "{}",
            dossier.code
        );
        assert!(
            dossier.returned_at.is_none_or(|t| t <= spec.as_of),
            "{}",
            dossier.code
        );
    }
    let open = dossiers
        .iter()
        .filter(|d| d.status == DossierStatus::Processing as i32)
        .count();
    assert!(open > 0, "no dossier is left open at as_of");
}

#[test]
fn shares_follow_distribution() {
    let dossiers = parse_sample(
        &generate(&spec(5_000, 5), UnitCatalogue::official()).unwrap(),
        "25",
    );
    let defaults = Distribution::default();

    let online = share(&dossiers, |d| d.channel == Channel::Online as i32);
    assert!(
        (online - defaults.online).abs() < 0.01,
        "online share {online}"
    );
    let digitized = share(&dossiers, |d| d.digitized);
    assert!(
        (digitized - defaults.digitized).abs() < 0.03,
        "digitized share {digitized}"
    );
    let fee_bearing: Vec<Dossier> = dossiers.iter().filter(|d| d.fee_bearing).cloned().collect();
    let paid = share(&fee_bearing, |d| d.paid_online);
    assert!(
        (paid - defaults.paid_online).abs() < 0.04,
        "paid online share {paid}"
    );
}

#[test]
fn channel_mix_is_a_parameter() {
    let distribution = Distribution {
        online: 0.5,
        post: 0.1,
        ..Distribution::default()
    };
    let envelope =
        generate_with(&spec(5_000, 9), &distribution, UnitCatalogue::official()).unwrap();
    let dossiers = parse_sample(&envelope, "25");
    let online = share(&dossiers, |d| d.channel == Channel::Online as i32);
    let post = share(&dossiers, |d| d.channel == Channel::Post as i32);
    assert!((online - 0.5).abs() < 0.04, "online share {online}");
    assert!((post - 0.1).abs() < 0.02, "post share {post}");
}

#[test]
fn units_get_different_shares() {
    let distribution = Distribution::default();
    let low = distribution.for_unit(-1.0);
    let high = distribution.for_unit(1.0);
    assert!(low.on_time < distribution.on_time);
    assert!(distribution.on_time < high.on_time);
    assert!(low.digitized < high.digitized);
    assert!(high.online <= 1.0);
    assert!(low.online >= 0.0);

    let flat = Distribution {
        unit_spread: 0.0,
        ..Distribution::default()
    };
    assert_eq!(flat.for_unit(1.0), flat);
}

#[test]
fn personal_fields_are_in_file() {
    let envelope = generate(&spec(20, 4), UnitCatalogue::official()).unwrap();
    for record in envelope["data"].as_array().unwrap() {
        for field in [
            "ChuHoSo",
            "SoGiayToChuHoSo",
            "SoDienThoai",
            "Email",
            "DiaChi",
        ] {
            let value = record[field].as_str().unwrap_or_default();
            assert!(!value.is_empty(), "{field} missing in {}", record["MaHoSo"]);
        }
        assert!(
            record["SoGiayToChuHoSo"]
                .as_str()
                .unwrap()
                .starts_with("999")
        );
    }
}

#[test]
fn bad_inputs_are_rejected() {
    let catalogue = UnitCatalogue::official();
    let commune = SampleSpec {
        province: "04792".to_string(),
        ..spec(10, 1)
    };
    assert!(matches!(
        generate(&commune, catalogue),
        Err(SampleError::UnknownProvince { .. })
    ));

    let early = SampleSpec {
        as_of: parse_portal_datetime("20260930235959").unwrap(),
        ..spec(10, 1)
    };
    assert!(matches!(
        generate(&early, catalogue),
        Err(SampleError::AsOfBeforeMonth { .. })
    ));

    let wrong = Distribution {
        on_time: 1.2,
        ..Distribution::default()
    };
    let error = generate_with(&spec(10, 1), &wrong, catalogue).unwrap_err();
    assert!(error.to_string().contains("on_time"), "{error}");
}
