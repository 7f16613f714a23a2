//! Maps one portal record to a [`Dossier`]: unit resolution, dates, flags, then the shared rules
//! of `chiso_proto::validate`.
//!
//! Only the fields named here are read. Personal fields (`ChuHoSo`, `SoGiayToChuHoSo`,
//! `MaDoiTuong`, `Email`, `SoDienThoai`, every `DiaChi...` key, `TrichYeuHoSo`) are never
//! touched, so they cannot reach the dossier or a message.

use super::IntakeContext;
use super::fields::{FieldError, Fields, echo};
use super::unit::resolve_unit;
use chiso_proto::v1::{ApplicantType, Dossier, RejectCode};
use chiso_proto::validate::check_dossier;
use serde_json::{Map, Value};

/// Maps and checks one record. `envelope_unit` is the envelope's `madonvi`, used when the record
/// has no `MaDonVi`.
pub(super) fn read_dossier(
    record: &Map<String, Value>,
    envelope_unit: Option<&str>,
    ctx: &IntakeContext,
) -> Result<Dossier, FieldError> {
    let fields = Fields::new(record);

    let mut dossier = Dossier {
        code: fields.required_code("MaHoSo", "dossier code")?,
        procedure_code: fields.required_code("MaTTHC", "procedure code")?,
        field_code: fields.code("MaLinhVuc")?.unwrap_or_default(),
        unit_code: resolve_unit(&fields, envelope_unit, ctx)?,
        ..Dossier::default()
    };
    read_codes(&fields, &mut dossier)?;
    read_dates(&fields, &mut dossier)?;
    read_flags(&fields, &mut dossier)?;

    check_dossier(&dossier).map_err(FieldError::from)?;
    Ok(dossier)
}

fn read_codes(fields: &Fields, dossier: &mut Dossier) -> Result<(), FieldError> {
    // The range checks keep both values far inside i32.
    dossier.channel = fields.required_number(
        "KenhThucHien",
        1..=3,
        "1 (in person), 2 (online) or 3 (public postal service)",
    )? as i32;
    dossier.status = fields.required_number(
        "TrangThaiHoSo",
        1..=10,
        "a national status code from 1 to 10",
    )? as i32;
    dossier.applicant_type = applicant_type(fields)?;
    Ok(())
}

/// Reads `LoaiDoiTuong`: 1 to 4, and unspecified for any other number or string. A value of
/// the wrong JSON type is still an error.
fn applicant_type(fields: &Fields) -> Result<i32, FieldError> {
    let value = match fields.given("LoaiDoiTuong") {
        None => return Ok(ApplicantType::Unspecified as i32),
        Some(Value::Number(number)) => number.as_i64(),
        Some(Value::String(text)) => text.trim().parse::<i64>().ok(),
        Some(other) => {
            return Err(fields.wrong_type("LoaiDoiTuong", other, "1, 2, 3 or 4"));
        }
    };
    match value {
        Some(code @ 1..=4) => Ok(code as i32),
        _ => Ok(ApplicantType::Unspecified as i32),
    }
}

fn read_dates(fields: &Fields, dossier: &mut Dossier) -> Result<(), FieldError> {
    // The received date falls back to the submission date, and finished falls back to returned.
    let received = match fields.date("NgayTiepNhan")? {
        Some(received) => Some(received),
        None => fields.date("NgayNopHoSo")?,
    };
    dossier.received_at = received.ok_or_else(|| {
        FieldError::new(
            RejectCode::MissingField,
            "NgayTiepNhan",
            "neither NgayTiepNhan nor NgayNopHoSo is set; send the date the dossier was received"
                .to_string(),
        )
    })?;

    dossier.due_at = fields.date("NgayHenTra")?;
    dossier.returned_at = fields.date("NgayTra")?;
    dossier.finished_at = match fields.date("NgayKetThucXuLy")? {
        Some(finished) => Some(finished),
        None => dossier.returned_at,
    };
    Ok(())
}

fn read_flags(fields: &Fields, dossier: &mut Dossier) -> Result<(), FieldError> {
    let documents = fields.objects("TaiLieuNop")?;
    let mut any_digitized = false;
    let mut any_reused = false;
    let mut any_from_storage = false;
    for (position, document) in documents.into_iter().enumerate() {
        let prefix = format!("TaiLieuNop[{position}].");
        let document = Fields::nested(document, &prefix);
        any_digitized |= document.flag("DuocSoHoa")?;
        let reuse = document.number_in("DuocTaiSuDung", 0..=2, "0, 1 or 2")?;
        any_reused |= matches!(reuse, Some(1 | 2));
        any_from_storage |= document.flag("DuocLayTuKhoDMQG")?;
    }

    dossier.digitized = fields.flag("HoSoCoThanhPhanSoHoa")? || any_digitized;
    dossier.reused_data = any_reused;
    // NOTE: the public codebases name `DuocLayTuKhoDMQG` (a file taken from the applicant's data
    // repository on the national portal) but not how the portal counts a linked dossier, so any
    // such file marks the dossier. `KetNoiCSDLDanCu` is this product's flag, because the portal's
    // codes for the national databases a dossier used are not public.
    dossier.personal_storage = any_from_storage;
    dossier.population_data = fields.flag("KetNoiCSDLDanCu")?;
    dossier.paid_online = fields.flag("DuocThanhToanTrucTuyen")?;
    dossier.fee_bearing = has_positive_fee(fields)?;
    dossier.electronic_result = has_result_file(fields)?;
    Ok(())
}

/// Tells whether any `DanhSachLePhi` entry carries a positive amount in `Gia`.
///
/// NOTE: the official specification is not public. `Gia` is the amount's name in the public
/// one-stop codebases VietOpenCPS/opencps-v2 (DVCQGIntegrationActionImpl.java) and
/// HuanVu201/DichVuCong_KhoaLuan_PASETO, which both send it as a string. An entry without a
/// `Gia` key counts as a fee, because a listed fee means one applies.
fn has_positive_fee(fields: &Fields) -> Result<bool, FieldError> {
    let mut fee_bearing = false;
    for (position, fee) in fields.objects("DanhSachLePhi")?.into_iter().enumerate() {
        let prefix = format!("DanhSachLePhi[{position}].");
        let fee = Fields::nested(fee, &prefix);
        fee_bearing |= match fee.given("Gia") {
            None => !fee.has_key("Gia"),
            Some(amount) => is_positive_amount(&fee, amount)?,
        };
    }
    Ok(fee_bearing)
}

/// Reads an amount in dong: a JSON number, or digits with optional `.`, `,` or space group
/// separators. Only the sign matters, so separators are dropped rather than interpreted.
fn is_positive_amount(fee: &Fields, amount: &Value) -> Result<bool, FieldError> {
    let invalid = |shown: String| {
        FieldError::new(
            RejectCode::InvalidValue,
            fee.label("Gia"),
            format!(
                "{} is {shown}; expected an amount in dong that is zero or more, such as \"50000\"",
                fee.label("Gia")
            ),
        )
    };
    match amount {
        Value::Number(number) => match number.as_f64() {
            Some(value) if value >= 0.0 => Ok(value > 0.0),
            _ => Err(invalid(format!("the JSON number {number}"))),
        },
        Value::String(text) => {
            let digits: String = text
                .chars()
                .filter(|c| !matches!(c, '.' | ',') && !c.is_whitespace())
                .collect();
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(format!("{:?}", echo(text))));
            }
            Ok(digits.bytes().any(|b| b != b'0'))
        }
        other => Err(fee.wrong_type("Gia", other, "an amount in dong such as \"50000\"")),
    }
}

/// Tells whether any `DanhSachGiayToKetQua` entry points to a result file.
///
/// NOTE: a result document with a file is an electronic result, but the official name of the file
/// field is not public. Both codebases named at `has_positive_fee` send the link as
/// `DuongDanTepTinKetQua`. An entry without that key counts, and one whose link is empty does not.
fn has_result_file(fields: &Fields) -> Result<bool, FieldError> {
    let mut electronic = false;
    for result in fields.objects("DanhSachGiayToKetQua")? {
        let result = Fields::new(result);
        electronic |= match result.given("DuongDanTepTinKetQua") {
            Some(_) => true,
            None => !result.has_key("DuongDanTepTinKetQua"),
        };
    }
    Ok(electronic)
}
