//! Resolves the unit a record belongs to, the same way for every record kind: the record's
//! `MaDonVi`, else the envelope's `madonvi`, then through `agency_map`, then checked against the
//! unit catalogue and the agent's locality. The unit is never guessed from names or codes.

use super::IntakeContext;
use super::fields::{FieldError, Fields, echo};
use chiso_proto::v1::RejectCode;
use chiso_proto::validate::{Invalid, check_unit};

/// Resolves the record's unit code, or returns the error that names `MaDonVi` or `madonvi`.
pub(super) fn resolve_unit(
    fields: &Fields,
    envelope_unit: Option<&str>,
    ctx: &IntakeContext,
) -> Result<String, FieldError> {
    let (field, source) = match (fields.code("MaDonVi")?, envelope_unit) {
        (Some(unit), _) => ("MaDonVi", unit),
        (None, Some(unit)) => ("madonvi", unit.to_string()),
        (None, None) => {
            return Err(FieldError::new(
                RejectCode::MissingField,
                "MaDonVi",
                "the record has no MaDonVi and the file has no envelope madonvi; add MaDonVi to each record, or send an envelope whose madonvi names the unit".to_string(),
            ));
        }
    };

    let mapped = ctx.agency_map.get(&source);
    let unit = mapped.cloned().unwrap_or_else(|| source.clone());
    match check_unit(ctx.catalogue, &unit, ctx.locality) {
        Ok(()) => Ok(unit),
        Err(invalid) => Err(unit_error(invalid, field, &source, mapped.is_some())),
    }
}

fn unit_error(invalid: Invalid, field: &str, source: &str, mapped: bool) -> FieldError {
    let source_text = format!("{field} {:?}", echo(source));
    let message = match (invalid.code, mapped) {
        (RejectCode::UnknownUnit, false) => format!(
            "{source_text} is neither a code of the 2025 unit catalogue nor a key of agency_map; add it to [agency_map] in the agent config, mapped to its commune or province code"
        ),
        (RejectCode::UnknownUnit, true) => format!(
            "{source_text} is mapped by agency_map to a code that is not in the 2025 unit catalogue; correct that entry of [agency_map] in the agent config"
        ),
        (_, false) => format!(
            "{source_text}: {}; correct the unit in the source system, or send this unit's records through its own province's agent",
            invalid.message
        ),
        (_, true) => format!(
            "{source_text}, mapped by agency_map: {}; correct that entry of [agency_map] in the agent config",
            invalid.message
        ),
    };
    FieldError::new(invalid.code, field, message)
}

/// Returns the unit code a record names, mapped through `agency_map`, without checking it, so a
/// rejected record's key can name its unit.
pub(super) fn unchecked_unit(
    fields: &Fields,
    envelope_unit: Option<&str>,
    ctx: &IntakeContext,
) -> Option<String> {
    let source = match fields.code("MaDonVi") {
        Ok(Some(unit)) => unit,
        _ => envelope_unit?.to_string(),
    };
    Some(ctx.agency_map.get(&source).cloned().unwrap_or(source))
}
