//! Shared fixtures for the outbox tests: a fresh outbox in a temporary directory, dossiers, and
//! records of every kind.

use chiso_proto::v1::record::Body;
use chiso_proto::v1::{
    Channel, Dossier, DossierStatus, DossierStep, Feedback, OnlineLevel, Procedure, Rating,
};
use tempfile::TempDir;

use super::Outbox;

/// 2026-10-01 08:00:00 in Vietnam (UTC+7), in Unix seconds.
pub(super) const RECEIVED_AT: i64 = 1_790_816_400;

/// Opens a new outbox file `outbox.db` in a fresh temporary directory.
pub(super) fn open_temp() -> (TempDir, Outbox) {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let outbox = Outbox::open(&dir.path().join("outbox.db")).expect("open a new outbox");
    (dir, outbox)
}

/// Builds a valid dossier. `hours` moves its received time, so each value gives other content.
pub(super) fn dossier(code: &str, unit_code: &str, hours: i64) -> Dossier {
    Dossier {
        code: code.to_string(),
        version: 0,
        unit_code: unit_code.to_string(),
        procedure_code: "1.001234".to_string(),
        field_code: "G01".to_string(),
        channel: Channel::Online as i32,
        status: DossierStatus::Received as i32,
        received_at: RECEIVED_AT + hours * 3600,
        due_at: Some(RECEIVED_AT + 10 * 86_400),
        ..Dossier::default()
    }
}

/// Builds one valid record of every kind for unit `01`. `hours` moves each record's main time,
/// so each value gives other content.
pub(super) fn record_of_each_kind(hours: i64) -> Vec<Body> {
    let at = RECEIVED_AT + hours * 3600;
    vec![
        Body::Dossier(dossier("HS-1", "01", hours)),
        Body::Procedure(Procedure {
            code: "1.001612".into(),
            unit_code: "01".into(),
            announced_at: Some(at),
            online_level: OnlineLevel::Partial as i32,
            ..Procedure::default()
        }),
        Body::Feedback(Feedback {
            code: "PAKN-1".into(),
            unit_code: "01".into(),
            received_at: at,
            ..Feedback::default()
        }),
        Body::Rating(Rating {
            code: "DG-1".into(),
            unit_code: "01".into(),
            dossier_code: "HS-1".into(),
            rated_at: at,
            level: 5,
            ..Rating::default()
        }),
        Body::Step(DossierStep {
            dossier_code: "HS-1".into(),
            step: 7,
            unit_code: "01".into(),
            status: DossierStatus::Processing as i32,
            at,
            ..DossierStep::default()
        }),
    ]
}
