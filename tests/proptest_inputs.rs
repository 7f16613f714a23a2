//! Property tests over thousands of random, mostly malformed inputs to the three doors of
//! untrusted data: the agent's JSON intake (`parse_dossiers`), the shared record rules
//! (`chiso_proto::validate`) and the hub store's apply path. None may panic, and every bad input
//! must be rejected with a reason code, a field and a message.
//!
//! The record rules are checked against an oracle written here from their documentation, so a
//! rule that stops rejecting (or starts rejecting valid records) fails the test. Case counts are
//! fixed so the suite stays within seconds; the cargo-fuzz targets in `fuzz/` search longer.

use std::cell::Cell;
use std::collections::HashMap;

use chiso_agent::dvcqg::{IntakeContext, parse_dossiers};
use chiso_hub::store::StoreHandle;
use chiso_proto::units::UnitCatalogue;
use chiso_proto::v1::record::Body;
use chiso_proto::v1::{Batch, Dossier, Record, RejectCode};
use chiso_proto::validate::{
    MAX_CATALOGUE_CODE_LEN, MAX_CODE_LEN, MAX_INSTANT, MIN_RECEIVED_AT, check_dossier, check_unit,
};
use chiso_proto::vntime::vietnam_day;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use serde_json::{Value, json};

fn parse(input: &[u8]) -> Result<Vec<chiso_agent::record::RecordOutcome>, String> {
    let agency_map = HashMap::from([("000.00.01.H22".to_string(), "00004".to_string())]);
    let ctx = IntakeContext {
        locality: "01",
        catalogue: UnitCatalogue::official(),
        agency_map: &agency_map,
    };
    parse_dossiers(input, &ctx).map_err(|error| error.to_string())
}

/// Checks one intake outcome: an accepted dossier passes the hub's rules, and a rejection
/// carries a code, a field, a message and whitelisted JSON.
fn assert_outcome_sound(outcome: &chiso_agent::record::RecordOutcome) -> Result<(), TestCaseError> {
    match &outcome.result {
        Ok(dossier) => {
            prop_assert_eq!(check_dossier(dossier), Ok(()));
            prop_assert_eq!(
                check_unit(UnitCatalogue::official(), &dossier.unit_code, "01"),
                Ok(())
            );
        }
        Err(error) => {
            prop_assert_ne!(error.code, RejectCode::Unspecified, "{:?}", error);
            prop_assert!(!error.field.is_empty(), "{:?}", error);
            prop_assert!(!error.message.is_empty(), "{:?}", error);
            let sanitized: Value = serde_json::from_str(&error.sanitized_json)
                .map_err(|e| TestCaseError::fail(format!("sanitized JSON unreadable: {e}")))?;
            prop_assert!(sanitized.is_object(), "{}", error.sanitized_json);
        }
    }
    Ok(())
}

/// Builds a valid record of Phường Ba Đình (00004, province 01), still being processed.
fn base_record(code: &str) -> Value {
    json!({
        "MaHoSo": code,
        "MaTTHC": "1.001612",
        "MaLinhVuc": "G09-TP01",
        "MaDonVi": "00004",
        "KenhThucHien": "2",
        "LoaiDoiTuong": "1",
        "ChuHoSo": "Nguyễn Văn A",
        "NgayNopHoSo": "20261001001000",
        "NgayTiepNhan": "20261001003000",
        "NgayHenTra": "20261005170000",
        "TrangThaiHoSo": "4",
        "TaiLieuNop": [{"DuocSoHoa": "1", "DuocTaiSuDung": "0"}],
        "DanhSachLePhi": [{"Gia": "8000"}],
    })
}

/// Keys the parser reads, where random values do the most damage.
const KEYS: [&str; 20] = [
    "MaHoSo",
    "MaTTHC",
    "MaLinhVuc",
    "MaDonVi",
    "KenhThucHien",
    "LoaiDoiTuong",
    "NgayNopHoSo",
    "NgayTiepNhan",
    "NgayHenTra",
    "NgayKetThucXuLy",
    "NgayTra",
    "TrangThaiHoSo",
    "HoSoCoThanhPhanSoHoa",
    "DuocThanhToanTrucTuyen",
    "TaiLieuNop",
    "DanhSachLePhi",
    "DanhSachGiayToKetQua",
    "TenTTHC",
    "SoBienNhan",
    "DonViXuLy",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e12f64..1e12).prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        "[0-9]{0,16}".prop_map(Value::String),
        "20[0-9]{12}".prop_map(Value::String),
        "-?[0-9]{1,3}".prop_map(Value::String),
        Just(Value::String("x".repeat(5_000))),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map("[A-Za-z]{0,12}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Generates records from the valid base with some keys replaced, removed or added at random.
fn mutated_record() -> impl Strategy<Value = Value> {
    let edits = vec((0..KEYS.len(), prop::option::of(json_value())), 0..6);
    let extra = btree_map("[A-Za-z]{1,12}", json_value(), 0..3);
    ("[A-Z0-9.-]{1,30}", edits, extra).prop_map(|(code, edits, extra)| {
        let mut record = base_record(&code);
        let object = record
            .as_object_mut()
            .expect("the base record is an object");
        for (key, value) in edits {
            match value {
                Some(value) => object.insert(KEYS[key].to_string(), value),
                None => object.remove(KEYS[key]),
            };
        }
        object.extend(extra);
        record
    })
}

/// Serializes records as a portal envelope, a bare array or JSON Lines.
fn file_of(records: &[Value], shape: u8) -> Vec<u8> {
    match shape % 3 {
        0 => json!({"session": "s", "madonvi": "000.00.01.H22", "service": "DongBoHoSoMC",
                    "isUpdating": false, "data": records})
        .to_string()
        .into_bytes(),
        1 => Value::Array(records.to_vec()).to_string().into_bytes(),
        _ => records
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
            .into_bytes(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn intake_survives_random_bytes(bytes in vec(any::<u8>(), 0..2_048)) {
        if let Ok(outcomes) = parse(&bytes) {
            for outcome in &outcomes {
                assert_outcome_sound(outcome)?;
            }
        }
    }

    #[test]
    fn intake_survives_damaged_json(bytes in "[\\[\\]{}\",:0-9a-zA-Z \\n\\\\]{0,300}") {
        if let Ok(outcomes) = parse(bytes.as_bytes()) {
            for outcome in &outcomes {
                assert_outcome_sound(outcome)?;
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn intake_judges_every_mutated_record(records in vec(mutated_record(), 1..6), shape in any::<u8>()) {
        let outcomes = parse(&file_of(&records, shape))
            .map_err(|error| TestCaseError::fail(format!("a file of objects was refused whole: {error}")))?;
        prop_assert_eq!(outcomes.len(), records.len());
        for (index, outcome) in outcomes.iter().enumerate() {
            prop_assert_eq!(outcome.index, index);
            assert_outcome_sound(outcome)?;
        }
    }

    #[test]
    fn intake_rejects_each_known_defect(defect in 0..KNOWN_DEFECTS.len(), code in "[A-Z0-9]{1,20}") {
        let (key, value, field) = KNOWN_DEFECTS[defect];
        let mut record = base_record(&code);
        record[key] = value();
        let outcomes = parse(&file_of(&[record], 1))
            .map_err(TestCaseError::fail)?;
        prop_assert_eq!(outcomes.len(), 1);
        let Err(error) = &outcomes[0].result else {
            return Err(TestCaseError::fail(format!("{key} = {} was accepted", value())));
        };
        prop_assert_eq!(&error.field, field, "{:?}", error);
        prop_assert_ne!(error.code, RejectCode::Unspecified);
        assert_outcome_sound(&outcomes[0])?;
    }
}

type ValueFn = fn() -> Value;

/// Defects in one field of an otherwise valid record, and the field each rejection must name.
const KNOWN_DEFECTS: [(&str, ValueFn, &str); 12] = [
    ("KenhThucHien", || json!("9"), "KenhThucHien"),
    ("KenhThucHien", || json!([1]), "KenhThucHien"),
    ("TrangThaiHoSo", || json!("0"), "TrangThaiHoSo"),
    ("TrangThaiHoSo", || json!("11"), "TrangThaiHoSo"),
    ("TrangThaiHoSo", || json!("10"), "NgayKetThucXuLy"),
    ("NgayTiepNhan", || json!("20261301003000"), "NgayTiepNhan"),
    ("NgayHenTra", || json!("20260930170000"), "NgayHenTra"),
    ("MaHoSo", || json!("x".repeat(101)), "MaHoSo"),
    ("MaTTHC", || json!(""), "MaTTHC"),
    ("MaTTHC", || json!("1.00\u{1}1612"), "MaTTHC"),
    ("MaDonVi", || json!("99999"), "MaDonVi"),
    ("MaDonVi", || json!("25747"), "MaDonVi"),
];

/// Tells whether a dossier passes the record rules, restated from `chiso_proto::validate`'s
/// documentation.
fn oracle_valid(dossier: &Dossier) -> bool {
    let code_ok = |value: &str, max: usize, required: bool| {
        (!required || !value.is_empty())
            && value.len() <= max
            && !value.chars().any(char::is_control)
    };
    let in_range = |instant: i64| (MIN_RECEIVED_AT..MAX_INSTANT).contains(&instant);
    let received = dossier.received_at;
    let not_before_received = |value: Option<i64>| {
        value.is_none_or(|instant| {
            in_range(instant) && vietnam_day(instant) >= vietnam_day(received)
        })
    };
    let finished_status = matches!(dossier.status, 9 | 10);
    code_ok(&dossier.code, MAX_CODE_LEN, true)
        && code_ok(&dossier.procedure_code, MAX_CATALOGUE_CODE_LEN, true)
        && code_ok(&dossier.field_code, MAX_CATALOGUE_CODE_LEN, false)
        && (1..=3).contains(&dossier.channel)
        && (1..=10).contains(&dossier.status)
        && (0..=4).contains(&dossier.applicant_type)
        && in_range(received)
        && not_before_received(dossier.due_at)
        && not_before_received(dossier.finished_at)
        && not_before_received(dossier.returned_at)
        && match (dossier.finished_at, dossier.returned_at) {
            (Some(finished), Some(returned)) => vietnam_day(returned) >= vietnam_day(finished),
            _ => true,
        }
        && (!finished_status || dossier.finished_at.is_some())
}

fn code_text(max: usize) -> impl Strategy<Value = String> {
    let fitting = proptest::string::string_regex(&format!("[A-Za-z0-9.-]{{1,{max}}}"))
        .expect("a valid pattern");
    let too_long = proptest::string::string_regex(&format!("[A-Z]{{{},{}}}", max + 1, max + 20))
        .expect("a valid pattern");
    prop_oneof![
        4 => fitting,
        1 => Just(String::new()),
        1 => proptest::string::string_regex(".{0,20}").expect("a valid pattern"),
        1 => too_long,
    ]
}

fn instant() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => 1_790_000_000i64..1_800_000_000,
        1 => Just(MIN_RECEIVED_AT),
        1 => Just(MIN_RECEIVED_AT - 1),
        1 => Just(MAX_INSTANT - 1),
        1 => Just(MAX_INSTANT),
        1 => any::<i64>(),
    ]
}

/// Generates dossiers whose every field is random, biased towards the edges of each rule.
fn any_dossier() -> impl Strategy<Value = Dossier> {
    let codes = (
        code_text(MAX_CODE_LEN),
        code_text(MAX_CATALOGUE_CODE_LEN),
        code_text(MAX_CATALOGUE_CODE_LEN),
    );
    let enums = (-1i32..5, -1i32..12, -1i32..6);
    let dates = (
        instant(),
        prop::option::of(instant()),
        prop::option::of(instant()),
        prop::option::of(instant()),
    );
    let flags = any::<[bool; 5]>();
    (codes, enums, dates, flags).prop_map(|(codes, enums, dates, flags)| Dossier {
        code: codes.0,
        version: 1,
        unit_code: "00004".into(),
        procedure_code: codes.1,
        field_code: codes.2,
        channel: enums.0,
        status: enums.1,
        received_at: dates.0,
        due_at: dates.1,
        finished_at: dates.2,
        returned_at: dates.3,
        digitized: flags[0],
        electronic_result: flags[1],
        reused_data: flags[2],
        paid_online: flags[3],
        fee_bearing: flags[4],
        applicant_type: enums.2,
        personal_storage: flags[0] && flags[1],
        population_data: flags[2] && flags[3],
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn record_rules_match_oracle(dossier in any_dossier()) {
        let verdict = check_dossier(&dossier);
        prop_assert_eq!(verdict.is_ok(), oracle_valid(&dossier), "{:?} for {:?}", verdict, dossier);
        if let Err(invalid) = verdict {
            prop_assert_ne!(invalid.code, RejectCode::Unspecified);
            prop_assert!(!invalid.field.is_empty());
            prop_assert!(!invalid.message.is_empty());
            prop_assert!(invalid.message.len() < 600, "{}", invalid.message);
        }
    }

    #[test]
    fn unit_rule_never_panics(unit in ".{0,40}", locality in "[0-9]{0,3}") {
        if check_unit(UnitCatalogue::official(), &unit, &locality).is_ok() {
            let known = UnitCatalogue::official().get(&unit);
            prop_assert!(known.is_some_and(|unit| unit.province_code == locality));
        }
    }
}

/// One record of a random batch: no body, or a dossier of a random unit and version.
fn any_record() -> impl Strategy<Value = Option<Dossier>> {
    let unit = prop_oneof![
        4 => Just("00004".to_string()),
        1 => Just("25747".to_string()),
        1 => Just("01".to_string()),
        1 => Just("99999".to_string()),
        1 => ".{0,30}",
    ];
    let version = prop_oneof![8 => 1u64..1_000, 1 => Just(0u64), 1 => Just(u64::MAX)];
    prop::option::weighted(0.95, (any_dossier(), unit, version)).prop_map(|record| {
        record.map(|(mut dossier, unit, version)| {
            dossier.unit_code = unit;
            dossier.version = version;
            dossier
        })
    })
}

#[test]
fn store_apply_rejects_every_bad_record() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = StoreHandle::open(&dir.path().join("hub.db"), UnitCatalogue::official()).unwrap();
    let next_seq = Cell::new(1u64);
    let config = ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let strategy = (vec(any_record(), 0..30), any::<bool>());

    let result = TestRunner::new(config).run(&strategy, |(bodies, scramble)| {
        let first = next_seq.get();
        let mut records: Vec<Record> = bodies
            .into_iter()
            .enumerate()
            .map(|(offset, body)| {
                let seq = first + offset as u64;
                let body = body.map(|mut dossier| {
                    // Codes are unique per record, so a valid record is always stored as new.
                    dossier.code = format!("{}~{seq}", dossier.code);
                    Body::Dossier(dossier)
                });
                Record { seq, body }
            })
            .collect();
        if scramble && records.len() > 1 {
            records.swap(0, 1);
        }
        let count = records.len();
        let batch = Batch {
            batch_id: first,
            records: records.clone(),
        };
        let applied = runtime.block_on(store.apply_batch("01", batch));

        if scramble && count > 1 {
            let error = applied.expect_err("an out-of-order batch was applied");
            prop_assert!(error.to_string().contains("strictly increase"), "{}", error);
            return Ok(());
        }
        let ack = applied.map_err(|error| TestCaseError::fail(error.to_string()))?;
        next_seq.set(first + count as u64);
        prop_assert_eq!(
            ack.stored as usize + ack.unchanged as usize + ack.rejections.len(),
            count
        );
        if count > 0 {
            prop_assert_eq!(ack.committed_seq, first + count as u64 - 1);
        }
        for record in &records {
            let rejection = ack.rejections.iter().find(|r| r.seq == record.seq);
            let valid = match &record.body {
                Some(Body::Dossier(dossier)) => {
                    (1..=i64::MAX as u64).contains(&dossier.version)
                        && check_unit(UnitCatalogue::official(), &dossier.unit_code, "01").is_ok()
                        && oracle_valid(dossier)
                }
                // Only dossiers are generated here; the other kinds have their own rule tests.
                Some(_) | None => false,
            };
            match rejection {
                Some(rejection) => {
                    prop_assert!(!valid, "a valid record was rejected: {:?}", rejection);
                    prop_assert_ne!(rejection.code, RejectCode::Unspecified as i32);
                    prop_assert!(!rejection.message.is_empty());
                    prop_assert!(rejection.key.len() <= MAX_CODE_LEN);
                }
                None => prop_assert!(valid, "an invalid record was not rejected: {:?}", record),
            }
        }
        Ok(())
    });
    result.unwrap();

    // Nothing that breaks a rule reached the dossiers table.
    let connection = store.reader().unwrap();
    let mut statement = connection
        .prepare(
            "SELECT code, unit_code, procedure_code, field_code, channel, status, received_at,
                    due_at, finished_at, returned_at, applicant_type, version FROM dossiers",
        )
        .unwrap();
    let rows: Vec<Dossier> = statement
        .query_map([], |row| {
            Ok(Dossier {
                code: row.get(0)?,
                unit_code: row.get(1)?,
                procedure_code: row.get(2)?,
                field_code: row.get(3)?,
                channel: row.get(4)?,
                status: row.get(5)?,
                received_at: row.get(6)?,
                due_at: row.get(7)?,
                finished_at: row.get(8)?,
                returned_at: row.get(9)?,
                applicant_type: row.get(10)?,
                version: row.get::<_, i64>(11)? as u64,
                ..Dossier::default()
            })
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!rows.is_empty(), "no valid record was ever generated");
    for dossier in &rows {
        assert!(
            oracle_valid(dossier),
            "stored an invalid dossier: {dossier:?}"
        );
        assert_eq!(
            check_unit(UnitCatalogue::official(), &dossier.unit_code, "01"),
            Ok(())
        );
    }
}
