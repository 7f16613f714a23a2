//! Maps one feedback or petition item (phản ánh, kiến nghị) to a [`Feedback`]. The sender, the
//! text of the item and the text of the answer are never read: only codes, dates, the topic and
//! the two outcome flags reach the record.

use super::IntakeContext;
use super::fields::{FieldError, Fields};
use super::unit::resolve_unit;
use chiso_proto::v1::Feedback;
use chiso_proto::validate::check_feedback;
use serde_json::{Map, Value};

/// Maps and checks one record. `envelope_unit` is the envelope's `madonvi`, used when the record
/// has no `MaDonVi`.
pub(super) fn read_feedback(
    record: &Map<String, Value>,
    envelope_unit: Option<&str>,
    ctx: &IntakeContext,
) -> Result<Feedback, FieldError> {
    let fields = Fields::new(record);
    let topic = fields.number_in(
        "PhanLoai",
        1..=3,
        "1 (about a procedure), 2 (about staff) or 3 (other)",
    )?;
    let feedback = Feedback {
        code: fields.required_code("MaPAKN", "feedback code")?,
        unit_code: resolve_unit(&fields, envelope_unit, ctx)?,
        received_at: fields.required_date("NgayTiepNhan", "date the item was received")?,
        due_at: fields.date("HanXuLy")?,
        finished_at: fields.date("NgayTraLoi")?,
        // The range check keeps the topic inside i32, and an absent topic is 0, not given.
        topic: topic.unwrap_or(0) as i32,
        dissatisfied: fields.flag("KhongHaiLong")?,
        recomplained: fields.flag("KhieuNaiLai")?,
        dossier_code: fields.code("MaHoSo")?.unwrap_or_default(),
        ..Feedback::default()
    };
    check_feedback(&feedback).map_err(FieldError::from)?;
    Ok(feedback)
}
