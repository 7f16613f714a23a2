//! Maps one processing step of a dossier, as the portal's `CapNhatTienDoHoSoMC` sends it, to a
//! [`DossierStep`]. The handler's name and title (`NguoiXuLy`, `ChucDanh`) and the free text of
//! the action (`NoiDungXuLy`) are never read.

use super::IntakeContext;
use super::fields::{FieldError, Fields};
use super::unit::resolve_unit;
use chiso_proto::v1::{DossierStatus, DossierStep, RejectCode};
use chiso_proto::validate::{MAX_INSTANT, MIN_RECEIVED_AT, check_step};
use serde_json::{Map, Value};

/// Returns the step number of a step that happened at `at` (Unix seconds): the seconds since
/// 2000-01-01T00:00:00+07:00, plus 1. `None` when `at` lies outside 2000 to 2099.
///
/// The portal's step record carries no step number, and a source sends a dossier's steps over
/// many files, so the number comes from the step's time. The same step then gets the same key
/// from any file, in any order, after any reinstall, and numbers rise with time.
///
/// NOTE: two steps of one dossier within the same second share a key, so the one read last
/// replaces the other.
pub fn step_number(at: i64) -> Option<u32> {
    if !(MIN_RECEIVED_AT..MAX_INSTANT).contains(&at) {
        return None;
    }
    u32::try_from(at - MIN_RECEIVED_AT + 1).ok()
}

/// Maps and checks one record. `envelope_unit` is the envelope's `madonvi`, used when the record
/// has no `MaDonVi`.
pub(super) fn read_step(
    record: &Map<String, Value>,
    envelope_unit: Option<&str>,
    ctx: &IntakeContext,
) -> Result<DossierStep, FieldError> {
    let fields = Fields::new(record);
    let dossier_code = fields.required_code("MaHoSo", "code of the dossier")?;
    let at = fields.required_date("ThoiDiemXuLy", "time of the step")?;
    let step = step_number(at).ok_or_else(|| {
        FieldError::new(
            RejectCode::InvalidDate,
            "ThoiDiemXuLy",
            format!(
                "ThoiDiemXuLy {} is outside 2000-01-01 to 2099-12-31",
                chiso_proto::vntime::format_portal_datetime(at)
            ),
        )
    })?;
    // The range check keeps the status inside i32.
    let status =
        fields.required_number("TrangThai", 1..=10, "a national status code from 1 to 10")? as i32;

    // A step that finishes processing without its own finish time finished when it happened,
    // as a dossier without NgayKetThucXuLy finishes at NgayTra.
    let finished_status = [
        DossierStatus::Processed as i32,
        DossierStatus::Returned as i32,
    ];
    let finished_at = match fields.date("NgayKetThucXuLy")? {
        Some(finished) => Some(finished),
        None if finished_status.contains(&status) => Some(at),
        None => None,
    };

    let dossier_step = DossierStep {
        dossier_code,
        step,
        unit_code: resolve_unit(&fields, envelope_unit, ctx)?,
        status,
        at,
        due_at: fields.date("NgayHenTraMoi")?,
        finished_at,
        ..DossierStep::default()
    };
    check_step(&dossier_step).map_err(FieldError::from)?;
    Ok(dossier_step)
}
