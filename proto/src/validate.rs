//! Record rules, written once: the agent applies them at intake to reject early, and the hub
//! applies them again as the authority before it stores anything.
//!
//! Field names in rejections follow the national portal's dossier format (`MaHoSo`,
//! `NgayHenTra`, ...), because that is what the people correcting a source system read.

use crate::units::UnitCatalogue;
use crate::v1::{ApplicantType, Channel, Dossier, DossierStatus, RejectCode, Rejection};
use crate::vntime::vietnam_day;

/// Longest accepted dossier code, in bytes.
pub const MAX_CODE_LEN: usize = 100;
/// Longest accepted procedure or field code, in bytes.
pub const MAX_CATALOGUE_CODE_LEN: usize = 50;
/// Longest accepted unit code, in bytes. Catalogue codes have 2 or 5 digits, so a longer code is
/// rejected before it is looked up or echoed in a message.
pub const MAX_UNIT_CODE_LEN: usize = 16;
/// Earliest accepted received time: 2000-01-01T00:00:00+07:00.
pub const MIN_RECEIVED_AT: i64 = 946_659_600;
/// Latest accepted instant of any date: 2100-01-01T00:00:00+07:00.
pub const MAX_INSTANT: i64 = 4_102_419_600;

/// One broken rule, with the field it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Machine-readable reason.
    pub code: RejectCode,
    /// The field at fault, in the portal's naming.
    pub field: &'static str,
    /// Description of the fault, naming the value and the fix.
    pub message: String,
}

impl Invalid {
    fn new(code: RejectCode, field: &'static str, message: impl Into<String>) -> Invalid {
        Invalid {
            code,
            field,
            message: message.into(),
        }
    }

    /// Converts into the wire form, for the record with this sequence number and key. The key
    /// is cut by [`rejection_key`].
    pub fn into_rejection(self, seq: u64, key: &str) -> Rejection {
        Rejection {
            seq,
            key: rejection_key(key),
            code: self.code as i32,
            field: self.field.to_string(),
            message: self.message,
        }
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Returns a record key fit to store with a rejection: at most [`MAX_CODE_LEN`] bytes, cut at a
/// character boundary, so that an oversized `MaHoSo` cannot bloat the rejections it causes.
pub fn rejection_key(key: &str) -> String {
    let mut end = key.len().min(MAX_CODE_LEN);
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    key[..end].to_string()
}

/// Checks that a unit exists and lies within the locality (the province itself or its communes).
pub fn check_unit(
    catalogue: &UnitCatalogue,
    unit_code: &str,
    locality: &str,
) -> Result<(), Invalid> {
    if unit_code.len() > MAX_UNIT_CODE_LEN {
        return Err(Invalid::new(
            RejectCode::TooLong,
            "MaDonVi",
            format!(
                "MaDonVi is {} bytes long; the maximum is {MAX_UNIT_CODE_LEN}, and catalogue codes have 2 or 5 digits",
                unit_code.len()
            ),
        ));
    }
    let Some(unit) = catalogue.get(unit_code) else {
        return Err(Invalid::new(
            RejectCode::UnknownUnit,
            "MaDonVi",
            format!(
                "unit code {unit_code:?} is not in the 2025 unit catalogue; map the source's agency id to a catalogue code"
            ),
        ));
    };
    if unit.province_code != locality {
        return Err(Invalid::new(
            RejectCode::UnitNotAllowed,
            "MaDonVi",
            format!(
                "unit {unit_code} ({}) belongs to province {}, not to this agent's locality {locality}",
                unit.name, unit.province_code
            ),
        ));
    }
    Ok(())
}

/// Checks every field rule of a dossier except unit ownership and its version, which the agent
/// assigns after this check and the hub checks on its own.
pub fn check_dossier(dossier: &Dossier) -> Result<(), Invalid> {
    check_code_field("MaHoSo", &dossier.code, MAX_CODE_LEN, true)?;
    check_code_field(
        "MaTTHC",
        &dossier.procedure_code,
        MAX_CATALOGUE_CODE_LEN,
        true,
    )?;
    check_code_field(
        "MaLinhVuc",
        &dossier.field_code,
        MAX_CATALOGUE_CODE_LEN,
        false,
    )?;

    let channel = Channel::try_from(dossier.channel).unwrap_or(Channel::Unspecified);
    if channel == Channel::Unspecified {
        return Err(Invalid::new(
            RejectCode::InvalidValue,
            "KenhThucHien",
            format!(
                "channel {} is not one of 1 (in person), 2 (online), 3 (post)",
                dossier.channel
            ),
        ));
    }

    let status = DossierStatus::try_from(dossier.status).unwrap_or(DossierStatus::Unspecified);
    if status == DossierStatus::Unspecified {
        return Err(Invalid::new(
            RejectCode::InvalidValue,
            "TrangThaiHoSo",
            format!(
                "status {} is not a national status code 1 to 10",
                dossier.status
            ),
        ));
    }

    if ApplicantType::try_from(dossier.applicant_type).is_err() {
        return Err(Invalid::new(
            RejectCode::InvalidValue,
            "LoaiDoiTuong",
            format!(
                "applicant type {} is not 0 (not given) or 1 to 4",
                dossier.applicant_type
            ),
        ));
    }

    check_dates(dossier, status)
}

/// Checks that a newer version of a stored dossier does not move it out of a final status (9
/// processed, 10 returned) to an earlier one. The hub calls it with the stored status before it
/// replaces a dossier; an agent cannot, because it does not keep the statuses it sent.
pub fn check_status_change(stored_status: i32, dossier: &Dossier) -> Result<(), Invalid> {
    let final_statuses = [
        DossierStatus::Processed as i32,
        DossierStatus::Returned as i32,
    ];
    if final_statuses.contains(&stored_status) && dossier.status < stored_status {
        return Err(Invalid::new(
            RejectCode::StatusRegression,
            "TrangThaiHoSo",
            format!(
                "status {} would replace the final status {stored_status} stored for this dossier; a processed or returned dossier cannot return to an earlier status, so correct the source record",
                dossier.status
            ),
        ));
    }
    Ok(())
}

fn check_dates(dossier: &Dossier, status: DossierStatus) -> Result<(), Invalid> {
    if !(MIN_RECEIVED_AT..MAX_INSTANT).contains(&dossier.received_at) {
        return Err(Invalid::new(
            RejectCode::InvalidDate,
            "NgayTiepNhan",
            format!(
                "received time {} is outside 2000-01-01 to 2099-12-31",
                crate::vntime::format_portal_datetime(dossier.received_at)
            ),
        ));
    }
    let received_day = vietnam_day(dossier.received_at);

    let dated_fields = [
        ("NgayHenTra", dossier.due_at, "due"),
        ("NgayKetThucXuLy", dossier.finished_at, "finish"),
        ("NgayTra", dossier.returned_at, "return"),
    ];
    for (field, value, what) in dated_fields {
        let Some(value) = value else { continue };
        if !(MIN_RECEIVED_AT..MAX_INSTANT).contains(&value) {
            return Err(Invalid::new(
                RejectCode::InvalidDate,
                field,
                format!("{what} time {value} is outside 2000-01-01 to 2099-12-31"),
            ));
        }
        if vietnam_day(value) < received_day {
            return Err(Invalid::new(
                RejectCode::DateOrder,
                field,
                format!(
                    "{what} date {} is before the received date {}; correct the dates in the source",
                    vietnam_day(value),
                    received_day
                ),
            ));
        }
    }

    if let (Some(finished), Some(returned)) = (dossier.finished_at, dossier.returned_at)
        && vietnam_day(returned) < vietnam_day(finished)
    {
        return Err(Invalid::new(
            RejectCode::DateOrder,
            "NgayTra",
            format!(
                "return date {} is before the processing finish date {}; correct the dates in the source",
                vietnam_day(returned),
                vietnam_day(finished)
            ),
        ));
    }

    let finished_status = matches!(status, DossierStatus::Processed | DossierStatus::Returned);
    if finished_status && dossier.finished_at.is_none() {
        return Err(Invalid::new(
            RejectCode::MissingField,
            "NgayKetThucXuLy",
            format!(
                "status {} means processing finished, but neither NgayKetThucXuLy nor NgayTra is set",
                dossier.status
            ),
        ));
    }
    Ok(())
}

fn check_code_field(
    field: &'static str,
    value: &str,
    max_len: usize,
    required: bool,
) -> Result<(), Invalid> {
    if value.is_empty() {
        if required {
            return Err(Invalid::new(
                RejectCode::MissingField,
                field,
                format!("{field} is missing or empty"),
            ));
        }
        return Ok(());
    }
    if value.len() > max_len {
        return Err(Invalid::new(
            RejectCode::TooLong,
            field,
            format!(
                "{field} is {} bytes long; the maximum is {max_len}",
                value.len()
            ),
        ));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(Invalid::new(
            RejectCode::InvalidValue,
            field,
            format!("{field} {value:?} contains control characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vntime::parse_portal_datetime;

    fn valid_dossier() -> Dossier {
        Dossier {
            code: "000.00.01.H22-261001-00001".into(),
            version: 1,
            unit_code: "00004".into(),
            procedure_code: "1.001612".into(),
            field_code: "G09-TP01".into(),
            channel: Channel::Online as i32,
            status: DossierStatus::Returned as i32,
            received_at: parse_portal_datetime("20261001003000").unwrap(),
            due_at: Some(parse_portal_datetime("20261005170000").unwrap()),
            finished_at: Some(parse_portal_datetime("20261003090000").unwrap()),
            returned_at: None,
            ..Dossier::default()
        }
    }

    #[test]
    fn valid_dossier_passes() {
        assert_eq!(check_dossier(&valid_dossier()), Ok(()));
    }

    #[test]
    fn each_broken_rule_names_its_field() {
        type Mutation = Box<dyn Fn(&mut Dossier)>;
        let cases: Vec<(&str, RejectCode, Mutation)> = vec![
            (
                "MaHoSo",
                RejectCode::MissingField,
                Box::new(|d| d.code.clear()),
            ),
            (
                "MaHoSo",
                RejectCode::TooLong,
                Box::new(|d| d.code = "x".repeat(101)),
            ),
            (
                "MaTTHC",
                RejectCode::MissingField,
                Box::new(|d| d.procedure_code.clear()),
            ),
            (
                "KenhThucHien",
                RejectCode::InvalidValue,
                Box::new(|d| d.channel = 9),
            ),
            (
                "TrangThaiHoSo",
                RejectCode::InvalidValue,
                Box::new(|d| d.status = 0),
            ),
            (
                "NgayTiepNhan",
                RejectCode::InvalidDate,
                Box::new(|d| d.received_at = 0),
            ),
            (
                "NgayHenTra",
                RejectCode::DateOrder,
                Box::new(|d| d.due_at = Some(parse_portal_datetime("20260930235959").unwrap())),
            ),
            (
                "NgayKetThucXuLy",
                RejectCode::MissingField,
                Box::new(|d| d.finished_at = None),
            ),
            (
                "MaLinhVuc",
                RejectCode::TooLong,
                Box::new(|d| d.field_code = "G".repeat(51)),
            ),
            (
                "MaTTHC",
                RejectCode::InvalidValue,
                Box::new(|d| d.procedure_code = "1.00\u{0}1612".into()),
            ),
            (
                "LoaiDoiTuong",
                RejectCode::InvalidValue,
                Box::new(|d| d.applicant_type = 5),
            ),
            (
                "NgayTra",
                RejectCode::DateOrder,
                Box::new(|d| {
                    d.returned_at = Some(parse_portal_datetime("20261002090000").unwrap())
                }),
            ),
            (
                "NgayKetThucXuLy",
                RejectCode::InvalidDate,
                Box::new(|d| d.finished_at = Some(MAX_INSTANT)),
            ),
        ];
        for (field, code, mutate) in cases {
            let mut dossier = valid_dossier();
            mutate(&mut dossier);
            let invalid = check_dossier(&dossier).unwrap_err();
            assert_eq!(invalid.field, field, "{invalid}");
            assert_eq!(invalid.code, code, "{invalid}");
        }
    }

    #[test]
    fn unit_outside_locality_is_not_allowed() {
        let catalogue = UnitCatalogue::official();
        assert_eq!(check_unit(catalogue, "00004", "01"), Ok(()));
        let foreign = check_unit(catalogue, "00004", "79").unwrap_err();
        assert_eq!(foreign.code, RejectCode::UnitNotAllowed);
        let unknown = check_unit(catalogue, "99999", "01").unwrap_err();
        assert_eq!(unknown.code, RejectCode::UnknownUnit);
    }

    #[test]
    fn overlong_unit_code_is_not_echoed() {
        let catalogue = UnitCatalogue::official();
        let long = "7".repeat(5_000);
        let invalid = check_unit(catalogue, &long, "79").unwrap_err();
        assert_eq!(invalid.code, RejectCode::TooLong);
        assert!(invalid.message.len() < 200, "{}", invalid.message);
    }

    #[test]
    fn rejection_key_is_cut_at_char_boundary() {
        let key = "ư".repeat(80);
        let cut = rejection_key(&key);
        assert!(cut.len() <= MAX_CODE_LEN);
        assert_eq!(cut, "ư".repeat(50));
        assert_eq!(rejection_key("HN-1"), "HN-1");
    }

    #[test]
    fn final_status_cannot_regress() {
        let mut newer = valid_dossier();
        newer.status = DossierStatus::Processing as i32;
        let invalid = check_status_change(DossierStatus::Returned as i32, &newer).unwrap_err();
        assert_eq!(invalid.code, RejectCode::StatusRegression);
        assert_eq!(invalid.field, "TrangThaiHoSo");

        newer.status = DossierStatus::Processed as i32;
        let back_to_processed = check_status_change(DossierStatus::Returned as i32, &newer);
        assert_eq!(
            back_to_processed.unwrap_err().code,
            RejectCode::StatusRegression
        );

        newer.status = DossierStatus::Returned as i32;
        assert_eq!(
            check_status_change(DossierStatus::Processed as i32, &newer),
            Ok(())
        );
        newer.status = DossierStatus::Received as i32;
        assert_eq!(
            check_status_change(DossierStatus::Processing as i32, &newer),
            Ok(())
        );
    }
}
