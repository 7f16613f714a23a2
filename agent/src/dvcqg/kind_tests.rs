//! Parser tests of the record kinds besides dossiers, of how a file's kind is decided, and of
//! the dossier fields for the national databases.

use super::*;
use chiso_proto::v1::{
    DossierStatus, DossierStep, Feedback, FeedbackTopic, OnlineLevel, Procedure, Rating,
};
use chiso_proto::vntime::parse_portal_datetime;
use serde_json::{Value, json};

const SENDER: &str = "Trần Thị Gửi";
const PHONE: &str = "0987654321";
const EMAIL: &str = "gui@example.invalid";
const ADDRESS: &str = "Số 7 phố Mẫu, Phường Ba Đình";
const TEXT: &str = "Phản ánh của Trần Thị Gửi về hồ sơ";
const HANDLER: &str = "Lê Văn Xử";

fn at(text: &str) -> i64 {
    parse_portal_datetime(text).unwrap()
}

fn parse_as(input: &str, expected: Option<Kind>) -> Result<ParsedRecords, FormatError> {
    let map = HashMap::from([("000.00.01.H22".to_string(), "00004".to_string())]);
    let ctx = IntakeContext {
        locality: "01",
        catalogue: UnitCatalogue::official(),
        agency_map: &map,
    };
    parse_records(input.as_bytes(), expected, &ctx)
}

fn envelope(service: &str, records: Vec<Value>) -> String {
    json!({
        "session": "token",
        "madonvi": "000.00.01.H22",
        "service": service,
        "isUpdating": false,
        "data": records
    })
    .to_string()
}

fn with(mut value: Value, key: &str, field_value: Value) -> Value {
    value[key] = field_value;
    value
}

fn without(mut value: Value, key: &str) -> Value {
    value.as_object_mut().unwrap().remove(key);
    value
}

/// Parses one record of `kind` in a bare array and returns its body or error.
fn one(kind: Kind, record: Value) -> Result<Body, RecordError> {
    let parsed = parse_as(&json!([record]).to_string(), Some(kind)).unwrap();
    assert_eq!(parsed.kind, kind);
    assert_eq!(parsed.outcomes.len(), 1);
    parsed.outcomes.into_iter().next().unwrap().result
}

/// Checks that one defect is rejected with its code and field, and that the error keeps the
/// record's key.
fn assert_rejected(kind: Kind, record: Value, field: &str, code: RejectCode, key: Option<&str>) {
    let error = one(kind, record).expect_err(field);
    assert_eq!(error.field, field, "{error:?}");
    assert_eq!(error.code, code, "{error:?}");
    assert_eq!(error.kind, kind);
    assert_eq!(error.key.as_deref(), key, "{error:?}");
    assert!(!error.message.is_empty());
}

/// Checks that no planted personal value reached the record, the error or the sanitized copy.
fn assert_nothing_planted(planted: &[&str], accepted: &Body, error: &RecordError) {
    let record = format!("{accepted:?}");
    for value in planted {
        assert!(!record.contains(value), "{value} in {record}");
        assert!(!error.message.contains(value), "{value} in message");
        assert!(
            !error.sanitized_json.contains(value),
            "{value} in {}",
            error.sanitized_json
        );
    }
}

fn procedure() -> Value {
    json!({
        "MaTTHC": "1.001612",
        "TenTTHC": "Cấp bản sao trích lục hộ tịch",
        "MaDonVi": "00004",
        "MucDo": "4",
        "NgayCongBo": "20261001090000",
        "HanCongBo": "20261005170000",
        "NgayCongKhai": "20261006090000",
        "HanCongKhai": "20261008170000",
        "CongKhaiDayDu": "1",
        "CoPhiLePhi": "1",
        "ThanhToanTrucTuyen": "1",
        "DoiTuongCongDan": "1",
        "KetNoiCSDLDanCu": "0"
    })
}

#[test]
fn procedure_maps_every_field() {
    let Ok(Body::Procedure(read)) = one(Kind::Procedure, procedure()) else {
        panic!("the procedure is valid");
    };
    let expected = Procedure {
        code: "1.001612".into(),
        version: 0,
        unit_code: "00004".into(),
        announced_at: Some(at("20261001090000")),
        announce_due_at: Some(at("20261005170000")),
        published_at: Some(at("20261006090000")),
        publish_due_at: Some(at("20261008170000")),
        content_complete: true,
        online_level: OnlineLevel::Full as i32,
        fee_bearing: true,
        payable_online: true,
        for_citizens: true,
        population_connected: false,
        abolished_at: None,
    };
    assert_eq!(read, expected);
}

#[test]
fn procedure_online_levels_map() {
    for (level, expected) in [
        ("1", OnlineLevel::None),
        ("2", OnlineLevel::None),
        ("3", OnlineLevel::Partial),
        ("4", OnlineLevel::Full),
    ] {
        let record = with(procedure(), "MucDo", json!(level));
        let Ok(Body::Procedure(read)) = one(Kind::Procedure, record) else {
            panic!("MucDo {level} is valid");
        };
        assert_eq!(read.online_level, expected as i32, "MucDo {level}");
    }
}

#[test]
fn procedure_defects_name_their_field() {
    let key = Some("00004/1.001612".to_string());
    let long_code = "1".repeat(51);
    let cases = [
        (
            without(procedure(), "MaTTHC"),
            "MaTTHC",
            RejectCode::MissingField,
            None,
        ),
        (
            with(procedure(), "MaTTHC", json!(long_code)),
            "MaTTHC",
            RejectCode::TooLong,
            Some(format!("00004/{long_code}")),
        ),
        (
            without(procedure(), "MucDo"),
            "MucDo",
            RejectCode::MissingField,
            key.clone(),
        ),
        (
            with(procedure(), "MucDo", json!("5")),
            "MucDo",
            RejectCode::InvalidValue,
            key.clone(),
        ),
        (
            with(procedure(), "MucDo", json!(true)),
            "MucDo",
            RejectCode::InvalidValue,
            key.clone(),
        ),
        (
            with(procedure(), "NgayCongBo", json!("2026-10-01")),
            "NgayCongBo",
            RejectCode::InvalidDate,
            key.clone(),
        ),
        (
            with(procedure(), "NgayCongKhai", json!("20260901090000")),
            "NgayCongKhai",
            RejectCode::DateOrder,
            key.clone(),
        ),
        (
            with(procedure(), "CoPhiLePhi", json!([1])),
            "CoPhiLePhi",
            RejectCode::InvalidValue,
            key.clone(),
        ),
        (
            with(procedure(), "MaDonVi", json!("79")),
            "MaDonVi",
            RejectCode::UnitNotAllowed,
            Some("79/1.001612".to_string()),
        ),
    ];
    for (record, field, code, key) in cases {
        assert_rejected(Kind::Procedure, record, field, code, key.as_deref());
    }

    // A record without MaDonVi takes the envelope's madonvi, which must resolve too.
    let input = envelope("DongBoTTHC", vec![without(procedure(), "MaDonVi")])
        .replace("000.00.01.H22", "000.00.01.H99");
    let parsed = parse_as(&input, None).unwrap();
    let error = parsed.outcomes[0].result.as_ref().unwrap_err();
    assert_eq!(error.field, "madonvi");
    assert_eq!(error.code, RejectCode::UnknownUnit);
    assert_eq!(error.key.as_deref(), Some("000.00.01.H99/1.001612"));
}

fn feedback() -> Value {
    json!({
        "MaPAKN": "PAKN-2026-000123",
        "MaDonVi": "00004",
        "TieuDe": "Chậm trả kết quả",
        "NoiDung": TEXT,
        "HoTen": SENDER,
        "SoDienThoai": PHONE,
        "Email": EMAIL,
        "DiaChi": ADDRESS,
        "NgayTiepNhan": "20261001090000",
        "HanXuLy": "20261011170000",
        "NgayTraLoi": "20261009100000",
        "NguoiTraLoi": HANDLER,
        "NoiDungTraLoi": format!("Trả lời bà {SENDER}"),
        "PhanLoai": "1",
        "KhongHaiLong": "0",
        "KhieuNaiLai": "1",
        "MaHoSo": "H22-261001-00001"
    })
}

#[test]
fn feedback_maps_every_field() {
    let Ok(Body::Feedback(read)) = one(Kind::Feedback, feedback()) else {
        panic!("the feedback item is valid");
    };
    let expected = Feedback {
        code: "PAKN-2026-000123".into(),
        version: 0,
        unit_code: "00004".into(),
        received_at: at("20261001090000"),
        due_at: Some(at("20261011170000")),
        finished_at: Some(at("20261009100000")),
        topic: FeedbackTopic::Procedure as i32,
        dissatisfied: false,
        recomplained: true,
        dossier_code: "H22-261001-00001".into(),
    };
    assert_eq!(read, expected);

    let open = without(
        without(without(feedback(), "NgayTraLoi"), "PhanLoai"),
        "MaHoSo",
    );
    let Ok(Body::Feedback(open)) = one(Kind::Feedback, open) else {
        panic!("an open feedback item is valid");
    };
    assert_eq!(open.finished_at, None);
    assert_eq!(open.topic, FeedbackTopic::Unspecified as i32);
    assert_eq!(open.dossier_code, "");
}

#[test]
fn feedback_defects_name_their_field() {
    let key = Some("PAKN-2026-000123");
    let cases = [
        (
            without(feedback(), "MaPAKN"),
            "MaPAKN",
            RejectCode::MissingField,
            None,
        ),
        (
            without(feedback(), "NgayTiepNhan"),
            "NgayTiepNhan",
            RejectCode::MissingField,
            key,
        ),
        (
            with(feedback(), "NgayTiepNhan", json!("20261301090000")),
            "NgayTiepNhan",
            RejectCode::InvalidDate,
            key,
        ),
        (
            with(feedback(), "HanXuLy", json!("20260930170000")),
            "HanXuLy",
            RejectCode::DateOrder,
            key,
        ),
        (
            with(feedback(), "NgayTraLoi", json!("20260915100000")),
            "NgayTraLoi",
            RejectCode::DateOrder,
            key,
        ),
        (
            with(feedback(), "PhanLoai", json!("4")),
            "PhanLoai",
            RejectCode::InvalidValue,
            key,
        ),
        (
            with(feedback(), "KhongHaiLong", json!({"a": 1})),
            "KhongHaiLong",
            RejectCode::InvalidValue,
            key,
        ),
        (
            with(feedback(), "MaDonVi", json!("99999")),
            "MaDonVi",
            RejectCode::UnknownUnit,
            key,
        ),
    ];
    for (record, field, code, key) in cases {
        assert_rejected(Kind::Feedback, record, field, code, key);
    }
}

#[test]
fn feedback_personal_data_never_kept() {
    let planted = [
        SENDER,
        PHONE,
        EMAIL,
        ADDRESS,
        TEXT,
        HANDLER,
        "Chậm trả kết quả",
    ];
    let bad = with(feedback(), "HanXuLy", json!("not a date"));
    let parsed = parse_as(&json!([feedback(), bad]).to_string(), Some(Kind::Feedback)).unwrap();
    let accepted = parsed.outcomes[0].result.as_ref().unwrap();
    let error = parsed.outcomes[1].result.as_ref().unwrap_err();
    assert_nothing_planted(&planted, accepted, error);

    let kept: Value = serde_json::from_str(&error.sanitized_json).unwrap();
    assert_eq!(kept["MaPAKN"], "PAKN-2026-000123");
    assert_eq!(kept["HanXuLy"], "not a date");
    for dropped in [
        "HoTen",
        "NoiDung",
        "TieuDe",
        "NguoiTraLoi",
        "NoiDungTraLoi",
        "Email",
    ] {
        assert!(kept.get(dropped).is_none(), "{dropped} kept");
    }
}

fn rating() -> Value {
    json!({
        "MaDanhGia": "DG-000123",
        "MaHoSo": "H22-261001-00001",
        "MaDonVi": "00004",
        "NgayDanhGia": "20261003100000",
        "MucDoHaiLong": 4,
        "NguoiDanhGia": SENDER,
        "YKien": format!("{SENDER} hài lòng")
    })
}

#[test]
fn rating_maps_every_field() {
    let Ok(Body::Rating(read)) = one(Kind::Rating, rating()) else {
        panic!("the rating is valid");
    };
    let expected = Rating {
        code: "DG-000123".into(),
        version: 0,
        unit_code: "00004".into(),
        dossier_code: "H22-261001-00001".into(),
        rated_at: at("20261003100000"),
        level: 4,
    };
    assert_eq!(read, expected);
}

#[test]
fn rating_defects_name_their_field() {
    let key = Some("DG-000123");
    let cases = [
        (
            without(rating(), "MaDanhGia"),
            "MaDanhGia",
            RejectCode::MissingField,
            None,
        ),
        (
            without(rating(), "MaHoSo"),
            "MaHoSo",
            RejectCode::MissingField,
            key,
        ),
        (
            without(rating(), "NgayDanhGia"),
            "NgayDanhGia",
            RejectCode::MissingField,
            key,
        ),
        (
            with(rating(), "NgayDanhGia", json!("yesterday")),
            "NgayDanhGia",
            RejectCode::InvalidDate,
            key,
        ),
        (
            without(rating(), "MucDoHaiLong"),
            "MucDoHaiLong",
            RejectCode::MissingField,
            key,
        ),
        (
            with(rating(), "MucDoHaiLong", json!(0)),
            "MucDoHaiLong",
            RejectCode::InvalidValue,
            key,
        ),
        (
            with(rating(), "MucDoHaiLong", json!("6")),
            "MucDoHaiLong",
            RejectCode::InvalidValue,
            key,
        ),
        (
            with(rating(), "MucDoHaiLong", json!(4.5)),
            "MucDoHaiLong",
            RejectCode::InvalidValue,
            key,
        ),
    ];
    for (record, field, code, key) in cases {
        assert_rejected(Kind::Rating, record, field, code, key);
    }
}

#[test]
fn rating_personal_data_never_kept() {
    let bad = with(rating(), "MucDoHaiLong", json!("9"));
    let parsed = parse_as(&json!([rating(), bad]).to_string(), Some(Kind::Rating)).unwrap();
    let accepted = parsed.outcomes[0].result.as_ref().unwrap();
    let error = parsed.outcomes[1].result.as_ref().unwrap_err();
    assert_nothing_planted(&[SENDER], accepted, error);
    let kept: Value = serde_json::from_str(&error.sanitized_json).unwrap();
    assert_eq!(kept["MucDoHaiLong"], "9");
    assert!(kept.get("YKien").is_none());
}

fn step() -> Value {
    json!({
        "MaHoSo": "H22-261001-00001",
        "NguoiXuLy": HANDLER,
        "ChucDanh": "Chuyên viên",
        "ThoiDiemXuLy": "20261003090000",
        "PhongBanXuLy": "Bộ phận một cửa",
        "NoiDungXuLy": format!("{HANDLER} trình ký"),
        "TrangThai": "4",
        "NgayBatDau": "20261001003000",
        "NgayKetThucTheoQuyDinh": "20261005170000"
    })
}

#[test]
fn step_maps_every_field() {
    // Steps usually carry no unit: the envelope's madonvi names it.
    let input = envelope("CapNhatTienDoHoSoMC", vec![step()]);
    let parsed = parse_as(&input, None).unwrap();
    assert_eq!(parsed.kind, Kind::Step);
    let Ok(Body::Step(read)) = &parsed.outcomes[0].result else {
        panic!("the step is valid: {:?}", parsed.outcomes[0]);
    };
    let expected = DossierStep {
        dossier_code: "H22-261001-00001".into(),
        step: step_number(at("20261003090000")).unwrap(),
        version: 0,
        unit_code: "00004".into(),
        status: DossierStatus::Processing as i32,
        at: at("20261003090000"),
        due_at: None,
        finished_at: None,
    };
    assert_eq!(read, &expected);
}

#[test]
fn step_number_follows_time() {
    assert_eq!(step_number(at("20000101000000")), Some(1));
    assert_eq!(step_number(at("20000101000001")), Some(2));
    let earlier = step_number(at("20261003090000")).unwrap();
    let later = step_number(at("20261003090001")).unwrap();
    assert_eq!(later, earlier + 1);
    assert_eq!(step_number(at("19991231235959")), None);
    assert_eq!(step_number(at("20991231235959")), Some(3_155_760_000));
    assert_eq!(step_number(at("21000101000000")), None);
}

#[test]
fn finishing_step_finishes_when_taken() {
    let processed = with(
        with(step(), "TrangThai", json!("9")),
        "MaDonVi",
        json!("00004"),
    );
    let Ok(Body::Step(step_record)) = one(Kind::Step, processed) else {
        panic!("a processed step is valid");
    };
    assert_eq!(step_record.finished_at, Some(at("20261003090000")));

    let returned = with(
        with(
            with(step(), "TrangThai", json!(10)),
            "MaDonVi",
            json!("00004"),
        ),
        "NgayKetThucXuLy",
        json!("20261002160000"),
    );
    let Ok(Body::Step(step_record)) = one(Kind::Step, returned) else {
        panic!("a returned step with its finish time is valid");
    };
    assert_eq!(step_record.finished_at, Some(at("20261002160000")));

    let supplement = with(
        with(
            with(step(), "TrangThai", json!("5")),
            "MaDonVi",
            json!("00004"),
        ),
        "NgayHenTraMoi",
        json!("20261012170000"),
    );
    let Ok(Body::Step(step_record)) = one(Kind::Step, supplement) else {
        panic!("a supplement request with a new due date is valid");
    };
    assert_eq!(step_record.due_at, Some(at("20261012170000")));
    assert_eq!(step_record.finished_at, None);
}

#[test]
fn step_defects_name_their_field() {
    let base = with(step(), "MaDonVi", json!("00004"));
    let key = format!(
        "H22-261001-00001/{}",
        step_number(at("20261003090000")).unwrap()
    );
    let key = Some(key.as_str());
    let cases = [
        (
            without(base.clone(), "MaHoSo"),
            "MaHoSo",
            RejectCode::MissingField,
            None,
        ),
        (
            without(base.clone(), "ThoiDiemXuLy"),
            "ThoiDiemXuLy",
            RejectCode::MissingField,
            Some("H22-261001-00001"),
        ),
        (
            with(base.clone(), "ThoiDiemXuLy", json!("19991231235959")),
            "ThoiDiemXuLy",
            RejectCode::InvalidDate,
            Some("H22-261001-00001"),
        ),
        (
            without(base.clone(), "TrangThai"),
            "TrangThai",
            RejectCode::MissingField,
            key,
        ),
        (
            with(base.clone(), "TrangThai", json!("11")),
            "TrangThai",
            RejectCode::InvalidValue,
            key,
        ),
        (
            with(base.clone(), "NgayHenTraMoi", json!("20261001170000")),
            "NgayHenTraMoi",
            RejectCode::DateOrder,
            key,
        ),
        (
            with(base.clone(), "NgayKetThucXuLy", json!("20261004090000")),
            "NgayKetThucXuLy",
            RejectCode::DateOrder,
            key,
        ),
        (
            without(step(), "MaHoSo"),
            "MaHoSo",
            RejectCode::MissingField,
            None,
        ),
    ];
    for (record, field, code, key) in cases {
        assert_rejected(Kind::Step, record, field, code, key);
    }

    let no_unit = one(Kind::Step, step()).unwrap_err();
    assert_eq!(no_unit.field, "MaDonVi");
    assert_eq!(no_unit.code, RejectCode::MissingField);
}

#[test]
fn step_personal_data_never_kept() {
    let good = with(step(), "MaDonVi", json!("00004"));
    let bad = with(good.clone(), "TrangThai", json!("0"));
    let parsed = parse_as(&json!([good, bad]).to_string(), Some(Kind::Step)).unwrap();
    let accepted = parsed.outcomes[0].result.as_ref().unwrap();
    let error = parsed.outcomes[1].result.as_ref().unwrap_err();
    assert_nothing_planted(&[HANDLER, "trình ký"], accepted, error);
    let kept: Value = serde_json::from_str(&error.sanitized_json).unwrap();
    assert_eq!(kept["TrangThai"], "0");
    assert_eq!(kept["PhongBanXuLy"], "Bộ phận một cửa");
    for dropped in ["NguoiXuLy", "ChucDanh", "NoiDungXuLy"] {
        assert!(kept.get(dropped).is_none(), "{dropped} kept");
    }
}

#[test]
fn envelope_service_decides_kind() {
    let cases = [
        ("DongBoTTHC", procedure(), Kind::Procedure),
        ("DongBoPAKN", feedback(), Kind::Feedback),
        ("DongBoDanhGiaHaiLong", rating(), Kind::Rating),
        ("CapNhatTienDoHoSoMC", step(), Kind::Step),
    ];
    for (service, record, kind) in cases {
        assert_eq!(service_kind(service), Some(kind));
        assert_eq!(service_name(kind), service);
        let parsed = parse_as(&envelope(service, vec![record.clone()]), None).unwrap();
        assert_eq!(parsed.kind, kind, "{service}");
        assert!(
            parsed.outcomes[0].result.is_ok(),
            "{:?}",
            parsed.outcomes[0]
        );

        // The same kind asked for explicitly is accepted too.
        let explicit = parse_as(&envelope(service, vec![record]), Some(kind)).unwrap();
        assert_eq!(explicit.kind, kind);
    }
    assert_eq!(service_name(Kind::Dossier), "DongBoHoSoMC");
}

#[test]
fn explicit_kind_must_match_service() {
    let input = envelope("DongBoPAKN", vec![feedback()]);
    let error = parse_as(&input, Some(Kind::Rating)).unwrap_err();
    assert_eq!(
        error,
        FormatError::KindMismatch {
            service: "DongBoPAKN".into(),
            found: Kind::Feedback,
            expected: Kind::Rating,
        }
    );
    let message = error.to_string();
    assert!(message.contains("feedback"), "{message}");
    assert!(message.contains("rating"), "{message}");
    assert!(message.contains("/v1/feedback"), "{message}");
}

#[test]
fn file_without_service_takes_expected_kind() {
    // JSON Lines of ratings with --kind rating.
    let lines = format!(
        "{}\n{}\n",
        rating(),
        with(rating(), "MaDanhGia", json!("DG-2"))
    );
    let parsed = parse_as(&lines, Some(Kind::Rating)).unwrap();
    assert_eq!(parsed.kind, Kind::Rating);
    assert_eq!(parsed.outcomes.len(), 2);
    assert!(parsed.outcomes.iter().all(|outcome| outcome.result.is_ok()));

    // Without a kind, a bare array is read as dossiers, so a rating fails as a dossier.
    let parsed = parse_as(&json!([rating()]).to_string(), None).unwrap();
    assert_eq!(parsed.kind, Kind::Dossier);
    let error = parsed.outcomes[0].result.as_ref().unwrap_err();
    assert_eq!(error.kind, Kind::Dossier);
    assert_eq!(error.field, "MaTTHC");

    // An envelope without service also takes the expected kind.
    let mut input: Value = serde_json::from_str(&envelope("x", vec![procedure()])).unwrap();
    input.as_object_mut().unwrap().remove("service");
    let parsed = parse_as(&input.to_string(), Some(Kind::Procedure)).unwrap();
    assert_eq!(parsed.kind, Kind::Procedure);
    assert!(parsed.outcomes[0].result.is_ok());
}

#[test]
fn long_unknown_service_is_cut() {
    let input = json!({"service": "X".repeat(10_000), "data": []}).to_string();
    let error = parse_as(&input, None).unwrap_err();
    assert!(error.to_string().len() < 400, "{error}");
    assert!(error.to_string().contains("XXX..."), "{error}");
}

#[test]
fn service_of_wrong_type_is_format_error() {
    let input = json!({"service": 7, "data": []}).to_string();
    let error = parse_as(&input, None).unwrap_err();
    assert!(
        matches!(
            error,
            FormatError::Envelope {
                field: "service",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn dossier_reads_national_database_flags() {
    let dossier = json!({
        "MaHoSo": "H22-261001-00009",
        "MaTTHC": "1.001612",
        "MaDonVi": "00004",
        "KenhThucHien": "2",
        "TrangThaiHoSo": "2",
        "NgayTiepNhan": "20261001003000",
        "KetNoiCSDLDanCu": "1",
        "TaiLieuNop": [
            {"DuocSoHoa": "0", "DuocLayTuKhoDMQG": "0"},
            {"DuocSoHoa": "1", "DuocLayTuKhoDMQG": "1"}
        ]
    });
    let Ok(Body::Dossier(read)) = one(Kind::Dossier, dossier.clone()) else {
        panic!("the dossier is valid");
    };
    assert!(read.personal_storage);
    assert!(read.population_data);

    let plain = without(with(dossier, "TaiLieuNop", json!([])), "KetNoiCSDLDanCu");
    let Ok(Body::Dossier(read)) = one(Kind::Dossier, plain) else {
        panic!("the dossier is valid");
    };
    assert!(!read.personal_storage);
    assert!(!read.population_data);
}
