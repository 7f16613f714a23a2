//! The result of reading one input record, shared by the format parsers and the outbox.

use chiso_proto::record::Kind;
use chiso_proto::v1::record::Body;
use chiso_proto::v1::{Dossier, DossierStep, Feedback, Procedure, Rating, RejectCode};

/// One input record after parsing and validation.
///
/// `T` is the record's type: [`Body`] for a record of any kind, as [`crate::dvcqg::parse_records`]
/// returns it, or one message type such as [`Dossier`] from [`crate::dvcqg::parse_dossiers`]. It
/// defaults to [`Dossier`], the only kind of earlier releases, so their callers still compile.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordOutcome<T = Dossier> {
    /// 0-based position of the record in its file.
    pub index: usize,
    /// The record, with version 0 until the outbox assigns one, or why it was rejected.
    pub result: Result<T, RecordError>,
}

/// Rejection of an input record at intake.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordError {
    /// The kind of record the file contains.
    pub kind: Kind,
    /// The record's key when it could be read: the key the hub uses, such as a dossier code or
    /// `unit/MaTTHC` for a procedure, or the record's own code when the rest is unreadable.
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

/// A record message that the outbox can store: any [`Body`], or one of its message types.
pub trait IntoBody {
    /// Wraps the message in its [`Body`] variant.
    fn into_body(self) -> Body;
}

impl IntoBody for Body {
    fn into_body(self) -> Body {
        self
    }
}

impl IntoBody for Dossier {
    fn into_body(self) -> Body {
        Body::Dossier(self)
    }
}

impl IntoBody for Procedure {
    fn into_body(self) -> Body {
        Body::Procedure(self)
    }
}

impl IntoBody for Feedback {
    fn into_body(self) -> Body {
        Body::Feedback(self)
    }
}

impl IntoBody for Rating {
    fn into_body(self) -> Body {
        Body::Rating(self)
    }
}

impl IntoBody for DossierStep {
    fn into_body(self) -> Body {
        Body::Step(self)
    }
}
