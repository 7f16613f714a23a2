//! File intake: read a file, parse every record, and commit the outcome to the outbox in one
//! transaction. A file is recorded as ingested only in that same transaction, so a crash before
//! the commit leaves nothing behind and the next run reads the whole file again.

use crate::dvcqg::{self, FormatError, IntakeContext};
use crate::outbox::{IngestSummary, Outbox, OutboxError};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Why a file could not be taken in; nothing of it was stored.
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
    /// The file is not in an accepted shape.
    #[error("{path}: {source}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: FormatError,
    },
    /// The outbox could not store it.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// Reads, parses and stores one file of national-format dossiers.
pub fn ingest_file(
    outbox: &mut Outbox,
    path: &Path,
    context: &IntakeContext,
) -> Result<IngestSummary, IntakeError> {
    let bytes = std::fs::read(path).map_err(|source| IntakeError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let outcomes =
        dvcqg::parse_dossiers(&bytes, context).map_err(|source| IntakeError::Format {
            path: path.to_path_buf(),
            source,
        })?;
    let source = path.display().to_string();
    let summary = outbox.ingest(&source, &sha256, outcomes)?;
    tracing::info!(
        file = %source,
        records = summary.records,
        stored_new = summary.stored_new,
        stored_changed = summary.stored_changed,
        unchanged = summary.unchanged,
        rejected = summary.rejected.len(),
        "file ingested"
    );
    Ok(summary)
}
