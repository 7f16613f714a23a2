//! Reduces a rejected record to a whitelist of non-personal fields, so an operator can see what
//! was rejected without the agent keeping anyone's name, ID number, contacts or address.
//!
//! Each record kind has its own whitelist, and anything not on it is dropped, including keys
//! this parser does not know. Lists of submitted files, fees, supplements and results are reduced
//! to their length.

use chiso_proto::record::Kind;
use serde_json::{Map, Value, json};

/// Scalar fields of a dossier kept as they are: codes, names of procedures and agencies, dates,
/// statuses.
const DOSSIER_FIELDS: [&str; 21] = [
    "MaHoSo",
    "MaTTHC",
    "TenTTHC",
    "MaLinhVuc",
    "TenLinhVuc",
    "SoBienNhan",
    "KenhThucHien",
    "LoaiDoiTuong",
    "NgayNopHoSo",
    "NgayTiepNhan",
    "NgayHenTra",
    "NgayKetThucXuLy",
    "NgayTra",
    "NgayTuChoi",
    "TrangThaiHoSo",
    "HinhThuc",
    "DonViXuLy",
    "MaDonVi",
    "HoSoCoThanhPhanSoHoa",
    "DuocThanhToanTrucTuyen",
    "KetNoiCSDLDanCu",
];

/// Scalar fields of a procedure kept as they are.
const PROCEDURE_FIELDS: [&str; 16] = [
    "MaTTHC",
    "TenTTHC",
    "MaLinhVuc",
    "TenLinhVuc",
    "MaDonVi",
    "MucDo",
    "NgayCongBo",
    "HanCongBo",
    "NgayCongKhai",
    "HanCongKhai",
    "NgayBaiBo",
    "CongKhaiDayDu",
    "CoPhiLePhi",
    "ThanhToanTrucTuyen",
    "DoiTuongCongDan",
    "KetNoiCSDLDanCu",
];

/// Scalar fields of a feedback item kept as they are. The sender, the title and text of the
/// item, and the answer's text and author are left out.
const FEEDBACK_FIELDS: [&str; 10] = [
    "MaPAKN",
    "MaDonVi",
    "MaLinhVuc",
    "NgayTiepNhan",
    "HanXuLy",
    "NgayTraLoi",
    "PhanLoai",
    "KhongHaiLong",
    "KhieuNaiLai",
    "MaHoSo",
];

/// Scalar fields of a rating kept as they are. The person who rated and the comment are left
/// out.
const RATING_FIELDS: [&str; 5] = [
    "MaDanhGia",
    "MaHoSo",
    "MaDonVi",
    "NgayDanhGia",
    "MucDoHaiLong",
];

/// Scalar fields of a processing step kept as they are. The handler's name and title and the
/// text of the action are left out.
const STEP_FIELDS: [&str; 9] = [
    "MaHoSo",
    "MaDonVi",
    "ThoiDiemXuLy",
    "TrangThai",
    "NgayBatDau",
    "NgayKetThucTheoQuyDinh",
    "NgayHenTraMoi",
    "NgayKetThucXuLy",
    "PhongBanXuLy",
];

/// Lists of a dossier kept only as `{"count": n}`, because their entries may name people or
/// files.
const DOSSIER_LISTS: [&str; 5] = [
    "TaiLieuNop",
    "DanhSachLePhi",
    "DanhSachHoSoBoSung",
    "DanhSachGiayToKetQua",
    "DSKetNoiCSDL",
];

/// Maximum length of a kept string, in characters.
const KEPT_STRING_MAX_CHARS: usize = 200;

/// Returns the record as JSON with only the whitelisted fields of its kind.
pub(super) fn sanitized_json(kind: Kind, record: &Map<String, Value>) -> String {
    let (fields, lists): (&[&str], &[&str]) = match kind {
        Kind::Dossier => (&DOSSIER_FIELDS, &DOSSIER_LISTS),
        Kind::Procedure => (&PROCEDURE_FIELDS, &[]),
        Kind::Feedback => (&FEEDBACK_FIELDS, &[]),
        Kind::Rating => (&RATING_FIELDS, &[]),
        Kind::Step => (&STEP_FIELDS, &[]),
    };
    let mut kept = Map::new();
    for &key in fields {
        if let Some(value) = record.get(key) {
            kept.insert(key.to_string(), scalar(value));
        }
    }
    for &key in lists {
        if let Some(Value::Array(entries)) = record.get(key) {
            kept.insert(key.to_string(), json!({ "count": entries.len() }));
        }
    }
    Value::Object(kept).to_string()
}

/// Keeps a scalar, cutting long strings. A nested value in a scalar field is replaced by its
/// kind, because it is not what the field should hold and might hold anything.
fn scalar(value: &Value) -> Value {
    match value {
        Value::String(text) if text.chars().count() > KEPT_STRING_MAX_CHARS => {
            Value::String(text.chars().take(KEPT_STRING_MAX_CHARS).collect())
        }
        Value::Array(_) => Value::String("<array>".to_string()),
        Value::Object(_) => Value::String("<object>".to_string()),
        other => other.clone(),
    }
}
