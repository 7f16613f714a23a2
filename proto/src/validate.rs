//! Record rules, written once: the agent applies them at intake to reject early, and the hub
//! applies them again as the authority before it stores anything.
//!
//! Field names in rejections follow the agent's input formats (`MaHoSo`, `NgayHenTra`, `MaPAKN`,
//! ...), which use the national portal's names where it has them, because that is what the
//! people correcting a source system read. `docs/record-formats.md` lists them per record kind.

use crate::units::UnitCatalogue;
use crate::v1::{
    ApplicantType, Channel, Dossier, DossierStatus, DossierStep, Feedback, FeedbackTopic,
    OnlineLevel, Procedure, Rating, RejectCode, Rejection,
};
use crate::vntime::vietnam_day;

/// Longest accepted dossier code, in bytes.
pub const MAX_CODE_LEN: usize = 100;
/// Longest accepted procedure or field code, in bytes.
pub const MAX_CATALOGUE_CODE_LEN: usize = 50;
/// Longest accepted unit code, in bytes. Province and commune codes have 2 or 5 digits and
/// ministry codes at most 16 characters, so a longer code is rejected before it is looked up or
/// echoed in a message.
pub const MAX_UNIT_CODE_LEN: usize = 16;
/// Lowest satisfaction level of a rating (very dissatisfied).
pub const MIN_RATING_LEVEL: u32 = 1;
/// Highest satisfaction level of a rating (very satisfied).
pub const MAX_RATING_LEVEL: u32 = 5;
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

/// Checks that a unit exists and lies within the locality: the province itself or its communes,
/// or the ministry itself or its units.
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
                "MaDonVi is {} bytes long; the maximum is {MAX_UNIT_CODE_LEN}, and catalogue codes have 2 or 5 digits, or up to {MAX_UNIT_CODE_LEN} characters for ministries",
                unit_code.len()
            ),
        ));
    }
    let Some(unit) = catalogue.get(unit_code) else {
        return Err(Invalid::new(
            RejectCode::UnknownUnit,
            "MaDonVi",
            format!(
                "unit code {unit_code:?} is not in the unit catalogue (2025 provinces and communes, and ministries); map the source's agency id to a catalogue code"
            ),
        ));
    };
    if unit.province_code != locality {
        let owner = if unit.level.is_ministry_level() {
            "ministry"
        } else {
            "province"
        };
        return Err(Invalid::new(
            RejectCode::UnitNotAllowed,
            "MaDonVi",
            format!(
                "unit {unit_code} ({}) belongs to {owner} {}, not to this agent's locality {locality}",
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

/// Checks every field rule of a procedure except unit ownership and its version.
pub fn check_procedure(procedure: &Procedure) -> Result<(), Invalid> {
    check_code_field("MaTTHC", &procedure.code, MAX_CATALOGUE_CODE_LEN, true)?;

    let level = OnlineLevel::try_from(procedure.online_level).unwrap_or(OnlineLevel::Unspecified);
    if level == OnlineLevel::Unspecified {
        return Err(Invalid::new(
            RejectCode::InvalidValue,
            "MucDo",
            format!(
                "online level {} is not 1 (no online service), 2 (partial) or 3 (full)",
                procedure.online_level
            ),
        ));
    }

    let dated_fields = [
        ("NgayCongBo", procedure.announced_at, "announcement"),
        (
            "HanCongBo",
            procedure.announce_due_at,
            "announcement deadline",
        ),
        ("NgayCongKhai", procedure.published_at, "publication"),
        (
            "HanCongKhai",
            procedure.publish_due_at,
            "publication deadline",
        ),
        ("NgayBaiBo", procedure.abolished_at, "abolition"),
    ];
    for (field, value, what) in dated_fields {
        if let Some(value) = value {
            check_instant(field, value, what)?;
        }
    }

    // Publication, its deadline and abolition all follow the announcement decision.
    if let Some(announced) = procedure.announced_at {
        let later_fields = [
            ("NgayCongKhai", procedure.published_at, "publication"),
            (
                "HanCongKhai",
                procedure.publish_due_at,
                "publication deadline",
            ),
            ("NgayBaiBo", procedure.abolished_at, "abolition"),
        ];
        for (field, value, what) in later_fields {
            if let Some(value) = value {
                check_not_before(field, value, what, announced, "announcement")?;
            }
        }
    }
    Ok(())
}

/// Checks every field rule of a feedback item except unit ownership and its version.
pub fn check_feedback(feedback: &Feedback) -> Result<(), Invalid> {
    check_code_field("MaPAKN", &feedback.code, MAX_CODE_LEN, true)?;
    check_code_field("MaHoSo", &feedback.dossier_code, MAX_CODE_LEN, false)?;

    if FeedbackTopic::try_from(feedback.topic).is_err() {
        return Err(Invalid::new(
            RejectCode::InvalidValue,
            "PhanLoai",
            format!(
                "topic {} is not 0 (not given), 1 (procedure), 2 (staff) or 3 (other)",
                feedback.topic
            ),
        ));
    }

    check_instant("NgayTiepNhan", feedback.received_at, "received")?;
    let later_fields = [
        ("HanXuLy", feedback.due_at, "due"),
        ("NgayTraLoi", feedback.finished_at, "answer"),
    ];
    for (field, value, what) in later_fields {
        if let Some(value) = value {
            check_instant(field, value, what)?;
            check_not_before(field, value, what, feedback.received_at, "received")?;
        }
    }
    Ok(())
}

/// Checks every field rule of a satisfaction rating except unit ownership and its version.
pub fn check_rating(rating: &Rating) -> Result<(), Invalid> {
    check_code_field("MaDanhGia", &rating.code, MAX_CODE_LEN, true)?;
    check_code_field("MaHoSo", &rating.dossier_code, MAX_CODE_LEN, true)?;
    check_instant("NgayDanhGia", rating.rated_at, "rating")?;
    if !(MIN_RATING_LEVEL..=MAX_RATING_LEVEL).contains(&rating.level) {
        return Err(Invalid::new(
            RejectCode::InvalidValue,
            "MucDoHaiLong",
            format!(
                "satisfaction level {} is not 1 (very dissatisfied) to 5 (very satisfied)",
                rating.level
            ),
        ));
    }
    Ok(())
}

/// Checks every field rule of a dossier's processing step except unit ownership and its
/// version.
pub fn check_step(step: &DossierStep) -> Result<(), Invalid> {
    check_code_field("MaHoSo", &step.dossier_code, MAX_CODE_LEN, true)?;
    if step.step == 0 {
        return Err(Invalid::new(
            RejectCode::InvalidValue,
            "step",
            "step number 0 is invalid; steps are numbered from 1",
        ));
    }

    let status = DossierStatus::try_from(step.status).unwrap_or(DossierStatus::Unspecified);
    if status == DossierStatus::Unspecified {
        return Err(Invalid::new(
            RejectCode::InvalidValue,
            "TrangThai",
            format!(
                "status {} is not a national status code 1 to 10",
                step.status
            ),
        ));
    }

    check_instant("ThoiDiemXuLy", step.at, "step")?;
    if let Some(due) = step.due_at {
        // A due date a step sets lies ahead of the step.
        check_instant("NgayHenTraMoi", due, "new due")?;
        check_not_before("NgayHenTraMoi", due, "new due", step.at, "step")?;
    }
    if let Some(finished) = step.finished_at {
        check_instant("NgayKetThucXuLy", finished, "finish")?;
        // A step reports a finish that has already happened.
        if vietnam_day(finished) > vietnam_day(step.at) {
            return Err(Invalid::new(
                RejectCode::DateOrder,
                "NgayKetThucXuLy",
                format!(
                    "finish date {} is after the step date {}; correct the dates in the source",
                    vietnam_day(finished),
                    vietnam_day(step.at)
                ),
            ));
        }
    }

    let finished_status = matches!(status, DossierStatus::Processed | DossierStatus::Returned);
    if finished_status && step.finished_at.is_none() {
        return Err(Invalid::new(
            RejectCode::MissingField,
            "NgayKetThucXuLy",
            format!(
                "status {} means processing finished, but the step has no finish time",
                step.status
            ),
        ));
    }
    Ok(())
}

/// Checks that an instant lies in the accepted years 2000 to 2099 (Vietnam time).
fn check_instant(field: &'static str, value: i64, what: &str) -> Result<(), Invalid> {
    if (MIN_RECEIVED_AT..MAX_INSTANT).contains(&value) {
        return Ok(());
    }
    Err(Invalid::new(
        RejectCode::InvalidDate,
        field,
        format!(
            "{what} time {} is outside 2000-01-01 to 2099-12-31",
            crate::vntime::format_portal_datetime(value)
        ),
    ))
}

/// Checks that `value` falls on the Vietnam day of `reference` or later.
fn check_not_before(
    field: &'static str,
    value: i64,
    what: &str,
    reference: i64,
    reference_what: &str,
) -> Result<(), Invalid> {
    let (day, reference_day) = (vietnam_day(value), vietnam_day(reference));
    if day >= reference_day {
        return Ok(());
    }
    Err(Invalid::new(
        RejectCode::DateOrder,
        field,
        format!(
            "{what} date {day} is before the {reference_what} date {reference_day}; correct the dates in the source"
        ),
    ))
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
    fn ministry_unit_within_its_ministry_only() {
        let text = "version = \"t\"\nbase = \"ministries-2025\"\n[[unit]]\ncode = \"TCT\"\nname = \"Cục Thuế\"\nparent = \"BTC\"\n";
        let file = crate::ministries::MinistryFile::parse(text, "t.toml").unwrap();
        let catalogue = UnitCatalogue::with_ministries(file).unwrap();
        assert_eq!(check_unit(&catalogue, "TCT", "BTC"), Ok(()));
        assert_eq!(check_unit(&catalogue, "BTC", "BTC"), Ok(()));
        let foreign = check_unit(&catalogue, "TCT", "BYT").unwrap_err();
        assert_eq!(foreign.code, RejectCode::UnitNotAllowed);
        assert!(
            foreign.message.contains("belongs to ministry BTC"),
            "{}",
            foreign.message
        );
        let local = check_unit(&catalogue, "00004", "BTC").unwrap_err();
        assert_eq!(local.code, RejectCode::UnitNotAllowed);
        assert!(
            local.message.contains("belongs to province 01"),
            "{}",
            local.message
        );
        let ministry_for_province = check_unit(&catalogue, "TCT", "01").unwrap_err();
        assert_eq!(ministry_for_province.code, RejectCode::UnitNotAllowed);
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

    fn at(text: &str) -> i64 {
        parse_portal_datetime(text).unwrap()
    }

    fn valid_procedure() -> Procedure {
        Procedure {
            code: "1.001612".into(),
            version: 1,
            unit_code: "01".into(),
            announced_at: Some(at("20261001090000")),
            announce_due_at: Some(at("20261005170000")),
            published_at: Some(at("20261006090000")),
            publish_due_at: Some(at("20261008170000")),
            content_complete: true,
            online_level: OnlineLevel::Full as i32,
            fee_bearing: true,
            payable_online: true,
            for_citizens: true,
            population_connected: false,
            abolished_at: None,
        }
    }

    fn valid_feedback() -> Feedback {
        Feedback {
            code: "PAKN-2026-000123".into(),
            version: 1,
            unit_code: "00004".into(),
            received_at: at("20261001090000"),
            due_at: Some(at("20261011170000")),
            finished_at: Some(at("20261009100000")),
            topic: FeedbackTopic::Procedure as i32,
            dissatisfied: false,
            recomplained: false,
            dossier_code: "000.00.01.H22-261001-00001".into(),
        }
    }

    fn valid_rating() -> Rating {
        Rating {
            code: "DG-000123".into(),
            version: 1,
            unit_code: "00004".into(),
            dossier_code: "000.00.01.H22-261001-00001".into(),
            rated_at: at("20261003100000"),
            level: 5,
        }
    }

    fn valid_step() -> DossierStep {
        DossierStep {
            dossier_code: "000.00.01.H22-261001-00001".into(),
            step: 3,
            version: 1,
            unit_code: "00004".into(),
            status: DossierStatus::Processed as i32,
            at: at("20261003090000"),
            due_at: None,
            finished_at: Some(at("20261003090000")),
        }
    }

    /// A broken rule: the field and code it must name, and the change that breaks it.
    type Case<'a, T> = (&'a str, RejectCode, Box<dyn Fn(&mut T)>);

    /// Applies each mutation to a fresh valid record and checks the field and code named.
    fn assert_each_rule<T>(
        valid: fn() -> T,
        check: fn(&T) -> Result<(), Invalid>,
        cases: Vec<Case<'_, T>>,
    ) {
        assert_eq!(check(&valid()), Ok(()));
        for (field, code, mutate) in cases {
            let mut record = valid();
            mutate(&mut record);
            let invalid = check(&record).expect_err(field);
            assert_eq!(invalid.field, field, "{invalid}");
            assert_eq!(invalid.code, code, "{invalid}");
            assert!(!invalid.message.is_empty(), "{field}");
        }
    }

    #[test]
    fn procedure_rules_name_their_fields() {
        type Mutation = Box<dyn Fn(&mut Procedure)>;
        let cases: Vec<(&str, RejectCode, Mutation)> = vec![
            (
                "MaTTHC",
                RejectCode::MissingField,
                Box::new(|p| p.code.clear()),
            ),
            (
                "MaTTHC",
                RejectCode::TooLong,
                Box::new(|p| p.code = "1".repeat(51)),
            ),
            (
                "MaTTHC",
                RejectCode::InvalidValue,
                Box::new(|p| p.code = "1.0\n1".into()),
            ),
            (
                "MucDo",
                RejectCode::InvalidValue,
                Box::new(|p| p.online_level = 0),
            ),
            (
                "MucDo",
                RejectCode::InvalidValue,
                Box::new(|p| p.online_level = 4),
            ),
            (
                "NgayCongBo",
                RejectCode::InvalidDate,
                Box::new(|p| p.announced_at = Some(0)),
            ),
            (
                "HanCongBo",
                RejectCode::InvalidDate,
                Box::new(|p| p.announce_due_at = Some(MAX_INSTANT)),
            ),
            (
                "NgayBaiBo",
                RejectCode::InvalidDate,
                Box::new(|p| p.abolished_at = Some(-5)),
            ),
            (
                "NgayCongKhai",
                RejectCode::DateOrder,
                Box::new(|p| p.published_at = Some(at("20260930235959"))),
            ),
            (
                "HanCongKhai",
                RejectCode::DateOrder,
                Box::new(|p| p.publish_due_at = Some(at("20260901170000"))),
            ),
            (
                "NgayBaiBo",
                RejectCode::DateOrder,
                Box::new(|p| p.abolished_at = Some(at("20250101000000"))),
            ),
        ];
        assert_each_rule(valid_procedure, check_procedure, cases);
    }

    #[test]
    fn procedure_without_dates_passes() {
        let procedure = Procedure {
            announced_at: None,
            announce_due_at: None,
            published_at: None,
            publish_due_at: None,
            ..valid_procedure()
        };
        assert_eq!(check_procedure(&procedure), Ok(()));

        // A late announcement is a fact to score, not an error.
        let late = Procedure {
            announce_due_at: Some(at("20260901170000")),
            ..valid_procedure()
        };
        assert_eq!(check_procedure(&late), Ok(()));
    }

    #[test]
    fn feedback_rules_name_their_fields() {
        type Mutation = Box<dyn Fn(&mut Feedback)>;
        let cases: Vec<(&str, RejectCode, Mutation)> = vec![
            (
                "MaPAKN",
                RejectCode::MissingField,
                Box::new(|f| f.code.clear()),
            ),
            (
                "MaPAKN",
                RejectCode::TooLong,
                Box::new(|f| f.code = "P".repeat(101)),
            ),
            (
                "MaHoSo",
                RejectCode::TooLong,
                Box::new(|f| f.dossier_code = "H".repeat(101)),
            ),
            (
                "PhanLoai",
                RejectCode::InvalidValue,
                Box::new(|f| f.topic = 7),
            ),
            (
                "NgayTiepNhan",
                RejectCode::InvalidDate,
                Box::new(|f| f.received_at = 0),
            ),
            (
                "HanXuLy",
                RejectCode::InvalidDate,
                Box::new(|f| f.due_at = Some(MAX_INSTANT)),
            ),
            (
                "HanXuLy",
                RejectCode::DateOrder,
                Box::new(|f| f.due_at = Some(at("20260930170000"))),
            ),
            (
                "NgayTraLoi",
                RejectCode::DateOrder,
                Box::new(|f| f.finished_at = Some(at("20260930170000"))),
            ),
        ];
        assert_each_rule(valid_feedback, check_feedback, cases);

        let open = Feedback {
            due_at: None,
            finished_at: None,
            dossier_code: String::new(),
            topic: FeedbackTopic::Unspecified as i32,
            ..valid_feedback()
        };
        assert_eq!(check_feedback(&open), Ok(()));
    }

    #[test]
    fn rating_rules_name_their_fields() {
        type Mutation = Box<dyn Fn(&mut Rating)>;
        let cases: Vec<(&str, RejectCode, Mutation)> = vec![
            (
                "MaDanhGia",
                RejectCode::MissingField,
                Box::new(|r| r.code.clear()),
            ),
            (
                "MaHoSo",
                RejectCode::MissingField,
                Box::new(|r| r.dossier_code.clear()),
            ),
            (
                "MaHoSo",
                RejectCode::TooLong,
                Box::new(|r| r.dossier_code = "H".repeat(101)),
            ),
            (
                "NgayDanhGia",
                RejectCode::InvalidDate,
                Box::new(|r| r.rated_at = 0),
            ),
            (
                "MucDoHaiLong",
                RejectCode::InvalidValue,
                Box::new(|r| r.level = 0),
            ),
            (
                "MucDoHaiLong",
                RejectCode::InvalidValue,
                Box::new(|r| r.level = 6),
            ),
        ];
        assert_each_rule(valid_rating, check_rating, cases);
        for level in MIN_RATING_LEVEL..=MAX_RATING_LEVEL {
            let rating = Rating {
                level,
                ..valid_rating()
            };
            assert_eq!(check_rating(&rating), Ok(()), "level {level}");
        }
    }

    #[test]
    fn step_rules_name_their_fields() {
        type Mutation = Box<dyn Fn(&mut DossierStep)>;
        let cases: Vec<(&str, RejectCode, Mutation)> = vec![
            (
                "MaHoSo",
                RejectCode::MissingField,
                Box::new(|s| s.dossier_code.clear()),
            ),
            ("step", RejectCode::InvalidValue, Box::new(|s| s.step = 0)),
            (
                "TrangThai",
                RejectCode::InvalidValue,
                Box::new(|s| s.status = 0),
            ),
            (
                "TrangThai",
                RejectCode::InvalidValue,
                Box::new(|s| s.status = 11),
            ),
            (
                "ThoiDiemXuLy",
                RejectCode::InvalidDate,
                Box::new(|s| s.at = 0),
            ),
            (
                "NgayHenTraMoi",
                RejectCode::InvalidDate,
                Box::new(|s| s.due_at = Some(MAX_INSTANT)),
            ),
            (
                "NgayHenTraMoi",
                RejectCode::DateOrder,
                Box::new(|s| s.due_at = Some(at("20261002170000"))),
            ),
            (
                "NgayKetThucXuLy",
                RejectCode::DateOrder,
                Box::new(|s| s.finished_at = Some(at("20261004090000"))),
            ),
            (
                "NgayKetThucXuLy",
                RejectCode::MissingField,
                Box::new(|s| s.finished_at = None),
            ),
        ];
        assert_each_rule(valid_step, check_step, cases);

        let supplement = DossierStep {
            status: DossierStatus::SupplementRequested as i32,
            due_at: Some(at("20261010170000")),
            finished_at: None,
            ..valid_step()
        };
        assert_eq!(check_step(&supplement), Ok(()));
    }
}
