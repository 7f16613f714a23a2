//! Intake of JSON input of any record kind, from a file or an HTTP body: parse every record, then
//! commit the outcome to the outbox in one transaction. An input is recorded as ingested only in
//! that same transaction, so a crash before the commit leaves nothing behind and the input is
//! read again whole. Parsing happens before the outbox is touched, so callers that share the
//! outbox hold it only for the commit.

use crate::dvcqg::{self, FormatError, IntakeContext};
use crate::outbox::{IngestSummary, Outbox, OutboxError};
use crate::record::RecordOutcome;
use chiso_proto::record::Kind;
use chiso_proto::units::UnitCatalogue;
use chiso_proto::v1::record::Body;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Failure to take in an input; nothing of it was stored.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The input is not in an accepted shape.
    #[error("{source_name}: {source}")]
    Format {
        /// The file path, or the name of the HTTP source.
        source_name: String,
        /// The parser's error.
        source: FormatError,
    },
    /// The outbox could not store it.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

impl IntakeError {
    /// Tells whether the outbox refused the input because it is at a limit.
    pub fn is_full(&self) -> bool {
        matches!(self, IntakeError::Outbox(OutboxError::Full { .. }))
    }

    /// Tells whether the input itself is at fault (unreadable or not in an accepted shape), so
    /// sending it again unchanged cannot succeed.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, IntakeError::Read { .. } | IntakeError::Format { .. })
    }
}

/// An input parsed and ready to commit.
#[derive(Debug)]
pub struct ParsedInput {
    /// Origin: a file path, or the HTTP source name.
    pub source: String,
    /// SHA-256 of its bytes, in hex.
    pub sha256: String,
    /// The kind of every record of the input.
    pub kind: Kind,
    /// One outcome per record, in input order.
    pub outcomes: Vec<RecordOutcome<Body>>,
}

/// The settings parsing needs, owned so that long-running intake tasks can keep them.
#[derive(Debug, Clone)]
pub struct IntakeSettings {
    /// The agent's province code.
    pub locality: String,
    /// Source agency ids mapped to catalogue codes.
    pub agency_map: HashMap<String, String>,
    /// The unit catalogue records are checked against.
    pub catalogue: &'static UnitCatalogue,
}

impl IntakeSettings {
    /// Borrows the settings as the parser's context.
    pub fn context(&self) -> IntakeContext<'_> {
        IntakeContext {
            locality: &self.locality,
            catalogue: self.catalogue,
            agency_map: &self.agency_map,
        }
    }
}

/// Parses input bytes that came from `source`. `kind` is the kind the caller expects, or `None`
/// to take the envelope's `service` (dossiers when there is none).
pub fn parse_bytes(
    source: String,
    bytes: &[u8],
    kind: Option<Kind>,
    context: &IntakeContext,
) -> Result<ParsedInput, IntakeError> {
    let sha256 = hex::encode(Sha256::digest(bytes));
    match dvcqg::parse_records(bytes, kind, context) {
        Ok(parsed) => Ok(ParsedInput {
            source,
            sha256,
            kind: parsed.kind,
            outcomes: parsed.outcomes,
        }),
        Err(error) => Err(IntakeError::Format {
            source_name: source,
            source: error,
        }),
    }
}

/// Reads and parses one file; `kind` as for [`parse_bytes`].
pub fn read_file(
    path: &Path,
    kind: Option<Kind>,
    context: &IntakeContext,
) -> Result<ParsedInput, IntakeError> {
    let bytes = std::fs::read(path).map_err(|source| IntakeError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_bytes(path.display().to_string(), &bytes, kind, context)
}

/// Commits a parsed input to the outbox.
pub fn store(outbox: &mut Outbox, input: ParsedInput) -> Result<IngestSummary, IntakeError> {
    let summary = outbox.ingest(&input.source, &input.sha256, input.outcomes)?;
    tracing::info!(
        source = %input.source,
        kind = input.kind.as_str(),
        records = summary.records,
        stored_new = summary.stored_new,
        stored_changed = summary.stored_changed,
        unchanged = summary.unchanged,
        rejected = summary.rejected.len(),
        "input ingested"
    );
    Ok(summary)
}

/// Reads, parses and stores one file; `kind` as for [`parse_bytes`].
pub fn ingest_file(
    outbox: &mut Outbox,
    path: &Path,
    kind: Option<Kind>,
    context: &IntakeContext,
) -> Result<IngestSummary, IntakeError> {
    let input = read_file(path, kind, context)?;
    store(outbox, input)
}
