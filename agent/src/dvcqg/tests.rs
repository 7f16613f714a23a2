use super::*;
use chiso_proto::v1::{ApplicantType, Channel, DossierStatus};
use chiso_proto::vntime::parse_portal_datetime;
use serde_json::{Value, json};

const NAME: &str = "Nguyễn Văn A";
const ID_NUMBER: &str = "001099012345";
const PHONE: &str = "0912345678";
const EMAIL: &str = "a@b.vn";
const ADDRESS: &str = "Số 12 ngõ 34 phố Kim Mã, Phường Ba Đình";
const SUMMARY: &str = "Đề nghị cấp bản sao cho Nguyễn Văn A";

fn agency_map() -> HashMap<String, String> {
    HashMap::from([("000.00.01.H22".to_string(), "00004".to_string())])
}

fn parse(input: &str) -> Result<Vec<RecordOutcome>, FormatError> {
    let map = agency_map();
    let ctx = IntakeContext {
        locality: "01",
        catalogue: UnitCatalogue::official(),
        agency_map: &map,
    };
    parse_dossiers(input.as_bytes(), &ctx)
}

/// Builds a valid record of Phường Ba Đình (00004, Hà Nội) carrying every personal field.
fn record(code: &str) -> Value {
    json!({
        "MaHoSo": code,
        "MaTTHC": "1.001612",
        "TenTTHC": "Cấp bản sao trích lục hộ tịch",
        "MaLinhVuc": "G09-TP01",
        "TenLinhVuc": "Hộ tịch",
        "MaDonVi": "00004",
        "KenhThucHien": "2",
        "ChuHoSo": NAME,
        "SoGiayToChuHoSo": ID_NUMBER,
        "LoaiDoiTuong": "1",
        "MaDoiTuong": "TK-998877",
        "Email": EMAIL,
        "SoDienThoai": PHONE,
        "DiaChiThuongTru": ADDRESS,
        "DiaChi": ADDRESS,
        "TrichYeuHoSo": SUMMARY,
        "NgayNopHoSo": "20261001001000",
        "NgayTiepNhan": "20261001003000",
        "NgayHenTra": "20261005170000",
        "NgayKetThucXuLy": "20261003090000",
        "NgayTra": "20261003100000",
        "TrangThaiHoSo": "10",
        "HinhThuc": "0",
        "DonViXuLy": "UBND Phường Ba Đình",
        "HoSoCoThanhPhanSoHoa": "0",
        "DuocThanhToanTrucTuyen": "1",
        "TaiLieuNop": [
            {"TenTepDinhKem": "don.pdf", "DuocSoHoa": "0", "DuocTaiSuDung": "0"}
        ],
        "DanhSachLePhi": [
            {"TenPhiLePhi": "Lệ phí", "MaPhiLePhi": "LP01", "HinhThucThu": "1", "Gia": "8000", "LoaiPhiLePhi": "1"}
        ],
        "DanhSachGiayToKetQua": [
            {"TenGiayTo": "Bản sao", "DuongDanTepTinKetQua": "https://example.invalid/kq.pdf"}
        ]
    })
}

fn envelope(records: Vec<Value>) -> String {
    json!({
        "session": "token",
        "madonvi": "000.00.01.H22",
        "service": "DongBoHoSoMC",
        "isUpdating": false,
        "data": records
    })
    .to_string()
}

fn only_dossier(outcomes: &[RecordOutcome]) -> &Dossier {
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    outcomes[0].result.as_ref().expect("the record is valid")
}

fn only_error(outcomes: &[RecordOutcome]) -> &RecordError {
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    outcomes[0]
        .result
        .as_ref()
        .expect_err("the record is invalid")
}

fn with(mut value: Value, key: &str, field_value: Value) -> Value {
    value[key] = field_value;
    value
}

fn without(mut value: Value, key: &str) -> Value {
    value.as_object_mut().unwrap().remove(key);
    value
}

#[test]
fn envelope_maps_every_field() {
    let outcomes = parse(&envelope(vec![record("H22-261001-00001")])).unwrap();
    let dossier = only_dossier(&outcomes);

    assert_eq!(dossier.code, "H22-261001-00001");
    assert_eq!(dossier.version, 0);
    assert_eq!(dossier.unit_code, "00004");
    assert_eq!(dossier.procedure_code, "1.001612");
    assert_eq!(dossier.field_code, "G09-TP01");
    assert_eq!(dossier.channel, Channel::Online as i32);
    assert_eq!(dossier.status, DossierStatus::Returned as i32);
    assert_eq!(dossier.applicant_type, ApplicantType::Citizen as i32);
    assert_eq!(
        dossier.received_at,
        parse_portal_datetime("20261001003000").unwrap()
    );
    assert_eq!(
        dossier.due_at,
        Some(parse_portal_datetime("20261005170000").unwrap())
    );
    assert_eq!(
        dossier.finished_at,
        Some(parse_portal_datetime("20261003090000").unwrap())
    );
    assert_eq!(
        dossier.returned_at,
        Some(parse_portal_datetime("20261003100000").unwrap())
    );
    assert!(!dossier.digitized);
    assert!(!dossier.reused_data);
    assert!(dossier.paid_online);
    assert!(dossier.fee_bearing);
    assert!(dossier.electronic_result);
}

#[test]
fn envelope_madonvi_used_without_record_unit() {
    let input = envelope(vec![without(record("A-1"), "MaDonVi")]);
    let outcomes = parse(&input).unwrap();
    // The envelope's agency id goes through agency_map as well.
    assert_eq!(only_dossier(&outcomes).unit_code, "00004");
}

#[test]
fn record_unit_wins_over_envelope() {
    let input = envelope(vec![with(record("A-1"), "MaDonVi", json!("00008"))]);
    let outcomes = parse(&input).unwrap();
    assert_eq!(only_dossier(&outcomes).unit_code, "00008");
}

#[test]
fn agency_map_maps_record_unit() {
    let input = json!([with(record("A-1"), "MaDonVi", json!("000.00.01.H22"))]).to_string();
    let outcomes = parse(&input).unwrap();
    assert_eq!(only_dossier(&outcomes).unit_code, "00004");
}

#[test]
fn bare_array_reads_each_record() {
    let input = json!([record("A-1"), record("A-2"), record("A-3")]).to_string();
    let outcomes = parse(&input).unwrap();
    let codes: Vec<&str> = outcomes
        .iter()
        .map(|o| o.result.as_ref().unwrap().code.as_str())
        .collect();
    assert_eq!(codes, ["A-1", "A-2", "A-3"]);
    let indexes: Vec<usize> = outcomes.iter().map(|o| o.index).collect();
    assert_eq!(indexes, [0, 1, 2]);
}

#[test]
fn array_without_unit_is_rejected() {
    let input = json!([without(record("A-1"), "MaDonVi")]).to_string();
    let error = only_error(&parse(&input).unwrap()).clone();
    assert_eq!(error.code, RejectCode::MissingField);
    assert_eq!(error.field, "MaDonVi");
}

#[test]
fn json_lines_keep_good_lines() {
    let input = format!(
        "{}\n\n{{\"MaHoSo\": \"broken\", \n{}\r\n[1, 2]\n",
        record("L-1"),
        record("L-2")
    );
    let outcomes = parse(&input).unwrap();
    assert_eq!(outcomes.len(), 4);

    assert_eq!(outcomes[0].result.as_ref().unwrap().code, "L-1");
    assert_eq!(outcomes[2].result.as_ref().unwrap().code, "L-2");

    let broken = outcomes[1].result.as_ref().unwrap_err();
    assert_eq!(outcomes[1].index, 1);
    assert_eq!(broken.field, "record");
    assert_eq!(broken.code, RejectCode::InvalidValue);
    assert_eq!(broken.key, None);
    assert!(broken.message.contains("line 3"), "{}", broken.message);
    assert!(!broken.message.contains("broken"), "{}", broken.message);

    let array = outcomes[3].result.as_ref().unwrap_err();
    assert_eq!(array.field, "record");
    assert!(array.message.contains("line 5"), "{}", array.message);
}

#[test]
fn single_object_is_one_record() {
    let input = serde_json::to_string_pretty(&record("S-1")).unwrap();
    let outcomes = parse(&input).unwrap();
    assert_eq!(only_dossier(&outcomes).code, "S-1");
}

#[test]
fn bad_records_do_not_hide_good_ones() {
    let records = vec![
        record("M-0"),
        with(record("M-1"), "NgayHenTra", json!("2026-10-05")),
        record("M-2"),
        with(record("M-3"), "KenhThucHien", json!(true)),
    ];
    let outcomes = parse(&envelope(records)).unwrap();
    assert_eq!(outcomes.len(), 4);
    assert_eq!(outcomes.iter().filter(|o| o.result.is_ok()).count(), 2);
    assert_eq!(outcomes[0].result.as_ref().unwrap().code, "M-0");
    assert_eq!(outcomes[2].result.as_ref().unwrap().code, "M-2");

    let date = outcomes[1].result.as_ref().unwrap_err();
    assert_eq!(outcomes[1].index, 1);
    assert_eq!(date.key.as_deref(), Some("M-1"));
    assert_eq!(date.code, RejectCode::InvalidDate);
    assert_eq!(date.field, "NgayHenTra");
    assert!(date.message.contains("\"2026-10-05\""), "{}", date.message);
    assert!(date.message.contains("yyyyMMddHHmmss"), "{}", date.message);

    let channel = outcomes[3].result.as_ref().unwrap_err();
    assert_eq!(outcomes[3].index, 3);
    assert_eq!(channel.key.as_deref(), Some("M-3"));
    assert_eq!(channel.code, RejectCode::InvalidValue);
    assert_eq!(channel.field, "KenhThucHien");
    assert!(
        channel.message.contains("JSON boolean"),
        "{}",
        channel.message
    );
}

#[test]
fn non_object_element_is_rejected_record() {
    let input = envelope(vec![json!("A-1"), record("A-2")]);
    let outcomes = parse(&input).unwrap();
    let error = outcomes[0].result.as_ref().unwrap_err();
    assert_eq!(error.field, "record");
    assert_eq!(error.code, RejectCode::InvalidValue);
    assert!(error.message.contains("JSON string"), "{}", error.message);
    assert_eq!(error.sanitized_json, "{}");
    assert!(outcomes[1].result.is_ok());
}

#[test]
fn personal_data_never_kept() {
    let planted = [NAME, ID_NUMBER, PHONE, EMAIL, ADDRESS, SUMMARY, "TK-998877"];
    let mut bad = with(record("P-1"), "NgayHenTra", json!("not a date"));
    bad["UnknownField"] = json!(NAME);
    bad["TaiLieuNop"][0]["TenTepDinhKem"] = json!(format!("CCCD {ID_NUMBER}.pdf"));
    let outcomes = parse(&envelope(vec![record("P-0"), bad])).unwrap();

    let dossier = format!("{:?}", outcomes[0].result.as_ref().unwrap());
    let error = outcomes[1].result.as_ref().unwrap_err();
    for value in planted {
        assert!(!dossier.contains(value), "{value} in {dossier}");
        assert!(
            !error.sanitized_json.contains(value),
            "{value} in sanitized_json"
        );
        assert!(!error.message.contains(value), "{value} in message");
    }

    let kept: Value = serde_json::from_str(&error.sanitized_json).unwrap();
    assert_eq!(kept["MaHoSo"], "P-1");
    assert_eq!(kept["NgayHenTra"], "not a date");
    assert_eq!(kept["TaiLieuNop"], json!({"count": 1}));
    for dropped in [
        "ChuHoSo",
        "SoGiayToChuHoSo",
        "Email",
        "DiaChi",
        "UnknownField",
    ] {
        assert!(kept.get(dropped).is_none(), "{dropped} kept");
    }
}

#[test]
fn received_time_is_vietnam_time() {
    let outcomes = parse(&envelope(vec![record("T-1")])).unwrap();
    let received = only_dossier(&outcomes).received_at;
    let utc = chrono::DateTime::from_timestamp(received, 0).unwrap();
    assert_eq!(utc.to_rfc3339(), "2026-09-30T17:30:00+00:00");
}

#[test]
fn fallback_dates_fill_gaps() {
    let mut value = with(record("F-1"), "NgayTiepNhan", json!(""));
    value = with(value, "NgayKetThucXuLy", json!(null));
    value = with(value, "NgayHenTra", json!(""));
    let outcomes = parse(&envelope(vec![value])).unwrap();
    let dossier = only_dossier(&outcomes);
    assert_eq!(
        dossier.received_at,
        parse_portal_datetime("20261001001000").unwrap()
    );
    assert_eq!(dossier.finished_at, dossier.returned_at);
    assert!(dossier.finished_at.is_some());
    assert_eq!(dossier.due_at, None);
}

#[test]
fn missing_received_date_is_rejected() {
    let value = without(without(record("F-2"), "NgayTiepNhan"), "NgayNopHoSo");
    let error = only_error(&parse(&envelope(vec![value])).unwrap()).clone();
    assert_eq!(error.code, RejectCode::MissingField);
    assert_eq!(error.field, "NgayTiepNhan");
}

#[test]
fn flags_read_from_nested_lists() {
    let mut value = record("N-1");
    value["HoSoCoThanhPhanSoHoa"] = json!(0);
    value["DuocThanhToanTrucTuyen"] = json!("3");
    value["TaiLieuNop"] = json!([
        {"DuocSoHoa": 0, "DuocTaiSuDung": 0},
        {"DuocSoHoa": "1", "DuocTaiSuDung": 2}
    ]);
    value["DanhSachLePhi"] = json!([{"Gia": "0"}, {"Gia": 0}]);
    value["DanhSachGiayToKetQua"] = json!([{"TenGiayTo": "Bản giấy", "DuongDanTepTinKetQua": ""}]);
    let outcomes = parse(&envelope(vec![value])).unwrap();
    let dossier = only_dossier(&outcomes);
    assert!(dossier.digitized);
    assert!(dossier.reused_data);
    assert!(!dossier.paid_online);
    assert!(!dossier.fee_bearing);
    assert!(!dossier.electronic_result);
}

#[test]
fn fee_amounts_read_by_sign() {
    let cases = [
        (json!([]), false),
        (json!([{"Gia": "50.000"}]), true),
        (json!([{"Gia": "0"}, {"Gia": "1,500"}]), true),
        (json!([{"Gia": 12000}]), true),
        (json!([{"Gia": ""}]), false),
        (json!([{"TenPhiLePhi": "Lệ phí"}]), true),
    ];
    for (fees, expected) in cases {
        let value = with(record("G-1"), "DanhSachLePhi", fees.clone());
        let outcomes = parse(&envelope(vec![value])).unwrap();
        assert_eq!(only_dossier(&outcomes).fee_bearing, expected, "{fees}");
    }
}

#[test]
fn bad_fee_amount_names_entry() {
    let value = with(record("G-2"), "DanhSachLePhi", json!([{"Gia": "miễn phí"}]));
    let error = only_error(&parse(&envelope(vec![value])).unwrap()).clone();
    assert_eq!(error.code, RejectCode::InvalidValue);
    assert_eq!(error.field, "DanhSachLePhi[0].Gia");
    assert!(error.message.contains("miễn phí"), "{}", error.message);
}

#[test]
fn numbers_accepted_for_codes() {
    let mut value = record("C-1");
    value["KenhThucHien"] = json!(1);
    value["TrangThaiHoSo"] = json!(4);
    value["LoaiDoiTuong"] = json!(7);
    value["NgayKetThucXuLy"] = json!("");
    value["NgayTra"] = json!("");
    let outcomes = parse(&envelope(vec![value])).unwrap();
    let dossier = only_dossier(&outcomes);
    assert_eq!(dossier.channel, Channel::InPerson as i32);
    assert_eq!(dossier.status, DossierStatus::Processing as i32);
    assert_eq!(dossier.applicant_type, ApplicantType::Unspecified as i32);
    assert_eq!(dossier.finished_at, None);
}

#[test]
fn out_of_range_codes_are_rejected() {
    let cases = [
        ("KenhThucHien", json!("4"), RejectCode::InvalidValue),
        ("KenhThucHien", json!("online"), RejectCode::InvalidValue),
        ("TrangThaiHoSo", json!(11), RejectCode::InvalidValue),
        ("TrangThaiHoSo", json!(""), RejectCode::MissingField),
        ("MaTTHC", json!(""), RejectCode::MissingField),
        ("MaTTHC", json!({"code": 1}), RejectCode::InvalidValue),
        (
            "HoSoCoThanhPhanSoHoa",
            json!(true),
            RejectCode::InvalidValue,
        ),
        ("TaiLieuNop", json!("none"), RejectCode::InvalidValue),
    ];
    for (field, value, code) in cases {
        let outcomes = parse(&envelope(vec![with(record("R-1"), field, value.clone())])).unwrap();
        let error = only_error(&outcomes);
        assert_eq!(error.field, field, "{value}: {}", error.message);
        assert_eq!(error.code, code, "{field} = {value}");
    }
}

#[test]
fn missing_code_has_no_key() {
    let outcomes = parse(&envelope(vec![without(record("K-1"), "MaHoSo")])).unwrap();
    let error = only_error(&outcomes);
    assert_eq!(error.key, None);
    assert_eq!(error.field, "MaHoSo");
    assert_eq!(error.code, RejectCode::MissingField);
}

#[test]
fn shared_rules_apply_after_mapping() {
    let value = with(record("D-1"), "NgayHenTra", json!("20260930170000"));
    let error = only_error(&parse(&envelope(vec![value])).unwrap()).clone();
    assert_eq!(error.code, RejectCode::DateOrder);
    assert_eq!(error.field, "NgayHenTra");
    assert_eq!(error.key.as_deref(), Some("D-1"));
}

#[test]
fn commune_of_other_province_not_allowed() {
    // 25747 is Phường Thủ Dầu Một, in Thành phố Hồ Chí Minh (79).
    let value = with(record("U-1"), "MaDonVi", json!("25747"));
    let error = only_error(&parse(&envelope(vec![value])).unwrap()).clone();
    assert_eq!(error.code, RejectCode::UnitNotAllowed);
    assert_eq!(error.field, "MaDonVi");
    assert!(error.message.contains("79"), "{}", error.message);
}

#[test]
fn unknown_unit_points_to_agency_map() {
    let value = with(record("U-2"), "MaDonVi", json!("000.00.99.H22"));
    let error = only_error(&parse(&envelope(vec![value])).unwrap()).clone();
    assert_eq!(error.code, RejectCode::UnknownUnit);
    assert_eq!(error.field, "MaDonVi");
    assert!(error.message.contains("000.00.99.H22"), "{}", error.message);
    assert!(error.message.contains("[agency_map]"), "{}", error.message);
}

#[test]
fn unknown_envelope_unit_names_madonvi() {
    let mut input: Value =
        serde_json::from_str(&envelope(vec![without(record("U-3"), "MaDonVi")])).unwrap();
    input["madonvi"] = json!("H99");
    let error = only_error(&parse(&input.to_string()).unwrap()).clone();
    assert_eq!(error.code, RejectCode::UnknownUnit);
    assert_eq!(error.field, "madonvi");
}

#[test]
fn unknown_service_is_format_error() {
    let mut input: Value = serde_json::from_str(&envelope(vec![record("S-1")])).unwrap();
    input["service"] = json!("LayThuTuc");
    let error = parse(&input.to_string()).unwrap_err();
    assert_eq!(
        error,
        FormatError::UnsupportedService {
            service: "LayThuTuc".to_string()
        }
    );
    let message = error.to_string();
    assert!(message.contains("LayThuTuc"), "{message}");
    assert!(message.contains("DongBoHoSoMC"), "{message}");
    assert!(message.contains("CapNhatTienDoHoSoMC"), "{message}");
}

#[test]
fn steps_envelope_is_not_dossiers() {
    let mut input: Value = serde_json::from_str(&envelope(vec![record("S-1")])).unwrap();
    input["service"] = json!("CapNhatTienDoHoSoMC");
    let error = parse(&input.to_string()).unwrap_err();
    assert_eq!(
        error,
        FormatError::KindMismatch {
            service: "CapNhatTienDoHoSoMC".to_string(),
            found: Kind::Step,
            expected: Kind::Dossier,
        }
    );
    let message = error.to_string();
    assert!(message.contains("--kind step"), "{message}");
    assert!(message.contains("/v1/steps"), "{message}");
}

#[test]
fn envelope_without_data_is_format_error() {
    let input = json!({"service": "DongBoHoSoMC", "madonvi": "01"}).to_string();
    let error = parse(&input).unwrap_err();
    assert!(
        matches!(error, FormatError::Envelope { field: "data", .. }),
        "{error}"
    );
}

#[test]
fn not_json_is_format_error_with_position() {
    let error = parse("{\n  \"service\": \"DongBoHoSoMC\",\n  \"data\": [,]\n}").unwrap_err();
    let FormatError::Json { line, column, .. } = &error else {
        panic!("expected a JSON error, got {error:?}");
    };
    assert_eq!((*line, *column), (3, 12));
    let message = error.to_string();
    assert!(message.contains("line 3, column 12"), "{message}");

    let plain = parse("MaHoSo;MaTTHC\nA-1;1.001612\n").unwrap_err();
    assert!(
        matches!(
            plain,
            FormatError::Json {
                line: 1,
                column: 1,
                ..
            }
        ),
        "{plain:?}"
    );
}

#[test]
fn scalar_json_is_format_error() {
    let error = parse("\"hello\"").unwrap_err();
    assert_eq!(
        error,
        FormatError::NotRecords {
            found: "a JSON string".to_string()
        }
    );
}

#[test]
fn invalid_utf8_is_format_error() {
    let map = agency_map();
    let ctx = IntakeContext {
        locality: "01",
        catalogue: UnitCatalogue::official(),
        agency_map: &map,
    };
    let error = parse_dossiers(b"[{\"MaHoSo\": \"\xff\"}]", &ctx).unwrap_err();
    assert_eq!(error, FormatError::NotUtf8 { offset: 13 });
}

#[test]
fn byte_order_mark_and_empty_input() {
    let input = format!("\u{feff}{}", json!([record("B-1")]));
    assert_eq!(parse(&input).unwrap().len(), 1);
    assert!(parse("  \n\n").unwrap().is_empty());
}
