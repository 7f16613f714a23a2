//! Reduces a rejected record to a whitelist of non-personal fields, so an operator can see what
//! was rejected without the agent keeping anyone's name, ID number, contacts or address.
//!
//! Anything not on the whitelist is dropped, including keys this parser does not know. Lists of
//! submitted files, fees, supplements and results are reduced to their length.

use serde_json::{Map, Value, json};

/// Scalar fields kept as they are: codes, names of procedures and agencies, dates, statuses.
const KEPT_FIELDS: [&str; 20] = [
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
];

/// Lists kept only as `{"count": n}`, because their entries may name people or files.
const COUNTED_LISTS: [&str; 4] = [
    "TaiLieuNop",
    "DanhSachLePhi",
    "DanhSachHoSoBoSung",
    "DanhSachGiayToKetQua",
];

/// Maximum length of a kept string, in characters.
const KEPT_STRING_MAX_CHARS: usize = 200;

/// Returns the record as JSON with only whitelisted fields.
pub(super) fn sanitized_json(record: &Map<String, Value>) -> String {
    let mut kept = Map::new();
    for key in KEPT_FIELDS {
        if let Some(value) = record.get(key) {
            kept.insert(key.to_string(), scalar(value));
        }
    }
    for key in COUNTED_LISTS {
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
