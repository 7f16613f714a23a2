//! The result of reading one input record, shared by the format parsers and the outbox.

use chiso_proto::v1::{Dossier, RejectCode};

/// One input record after parsing and validation.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordOutcome {
    /// 0-based position of the record in its file.
    pub index: usize,
    /// The record, with version 0 until the outbox assigns one, or why it was rejected.
    pub result: Result<Dossier, RecordError>,
}

/// Rejection of an input record at intake.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordError {
    /// The record's key (MaHoSo) when it could be read.
    pub key: Option<String>,
    /// Machine-readable reason.
    pub code: RejectCode,
    /// The field at fault, in the portal's naming, or `record` for the record as a whole.
    pub field: String,
    /// Description of the fault, naming the value and the fix.
    pub message: String,
    /// The record as JSON with every personal field removed, kept so an operator can see it.
    pub sanitized_json: String,
}
