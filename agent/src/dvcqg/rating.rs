//! Maps one satisfaction rating of a dossier (đánh giá mức độ hài lòng) to a [`Rating`]. The
//! person who rated and any comment are never read.

use super::IntakeContext;
use super::fields::{FieldError, Fields};
use super::unit::resolve_unit;
use chiso_proto::v1::Rating;
use chiso_proto::validate::check_rating;
use serde_json::{Map, Value};

/// Maps and checks one record. `envelope_unit` is the envelope's `madonvi`, used when the record
/// has no `MaDonVi`.
pub(super) fn read_rating(
    record: &Map<String, Value>,
    envelope_unit: Option<&str>,
    ctx: &IntakeContext,
) -> Result<Rating, FieldError> {
    let fields = Fields::new(record);
    let level = fields.required_number(
        "MucDoHaiLong",
        1..=5,
        "1 (very dissatisfied), 2 (dissatisfied), 3 (neutral), 4 (satisfied) or 5 (very satisfied)",
    )?;
    let rating = Rating {
        code: fields.required_code("MaDanhGia", "rating code")?,
        dossier_code: fields.required_code("MaHoSo", "code of the rated dossier")?,
        unit_code: resolve_unit(&fields, envelope_unit, ctx)?,
        rated_at: fields.required_date("NgayDanhGia", "date of the rating")?,
        // The range check keeps the level inside u32.
        level: level as u32,
        ..Rating::default()
    };
    check_rating(&rating).map_err(FieldError::from)?;
    Ok(rating)
}
