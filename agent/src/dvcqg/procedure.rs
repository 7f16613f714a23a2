//! Maps one procedure record to a [`Procedure`]: the unit that applies it, its online service
//! level, the announcement and publication dates with their deadlines, and its flags, then the
//! shared rules of `chiso_proto::validate`.

use super::IntakeContext;
use super::fields::{FieldError, Fields};
use super::unit::resolve_unit;
use chiso_proto::v1::{OnlineLevel, Procedure};
use chiso_proto::validate::check_procedure;
use serde_json::{Map, Value};

/// Values of `MucDo`, listed in messages.
const LEVELS: &str =
    "1 or 2 (no online service), 3 (partial online service) or 4 (full online service)";

/// Maps and checks one record. `envelope_unit` is the envelope's `madonvi`, used when the record
/// has no `MaDonVi`.
pub(super) fn read_procedure(
    record: &Map<String, Value>,
    envelope_unit: Option<&str>,
    ctx: &IntakeContext,
) -> Result<Procedure, FieldError> {
    let fields = Fields::new(record);
    let procedure = Procedure {
        code: fields.required_code("MaTTHC", "procedure code")?,
        unit_code: resolve_unit(&fields, envelope_unit, ctx)?,
        online_level: online_level(&fields)? as i32,
        announced_at: fields.date("NgayCongBo")?,
        announce_due_at: fields.date("HanCongBo")?,
        published_at: fields.date("NgayCongKhai")?,
        publish_due_at: fields.date("HanCongKhai")?,
        abolished_at: fields.date("NgayBaiBo")?,
        content_complete: fields.flag("CongKhaiDayDu")?,
        fee_bearing: fields.flag("CoPhiLePhi")?,
        payable_online: fields.flag("ThanhToanTrucTuyen")?,
        for_citizens: fields.flag("DoiTuongCongDan")?,
        population_connected: fields.flag("KetNoiCSDLDanCu")?,
        ..Procedure::default()
    };
    check_procedure(&procedure).map_err(FieldError::from)?;
    Ok(procedure)
}

/// Reads `MucDo` on the four levels of online public service that Decree 43/2011/NĐ-CP defined
/// and one-stop systems still record. Decree 42/2022/NĐ-CP calls level 4 full ("toàn trình")
/// and level 3 partial ("một phần"); levels 1 and 2 only inform and offer forms.
///
/// NOTE: this mapping is this product's reading of the two decrees, not a documented field of
/// the national portal.
fn online_level(fields: &Fields) -> Result<OnlineLevel, FieldError> {
    let level = fields.required_number("MucDo", 1..=4, LEVELS)?;
    Ok(match level {
        4 => OnlineLevel::Full,
        3 => OnlineLevel::Partial,
        _ => OnlineLevel::None,
    })
}
