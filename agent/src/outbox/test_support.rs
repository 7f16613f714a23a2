//! Shared fixtures for the outbox tests: a fresh outbox in a temporary directory and dossiers.

use chiso_proto::v1::{Channel, Dossier, DossierStatus};
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
