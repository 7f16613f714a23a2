//! Reads the national portal's dossier JSON (`DongBoHoSoMC`) and maps each record to a
//! [`Dossier`], or to a [`RecordError`] that names the portal field at fault.
//!
//! Three shapes are accepted and detected automatically: the portal envelope
//! `{session, madonvi, service, isUpdating, data: [...]}`, a bare JSON array of records, and
//! JSON Lines (one record object per line). A file that cannot be read as any of them is a
//! [`FormatError`], and nothing of it is kept. Inside a readable file every record stands alone,
//! so one bad record never hides the others. Personal fields (names, ID numbers, contacts,
//! addresses, the free-text summary) are never read into a [`Dossier`], never echoed in a message,
//! and never kept in [`RecordError::sanitized_json`], which contains only whitelisted fields.

mod dossier;
mod fields;
mod sanitize;
mod shape;
#[cfg(test)]
mod tests;

use crate::record::{RecordError, RecordOutcome};
use chiso_proto::units::UnitCatalogue;
use chiso_proto::v1::{Dossier, RejectCode};
use std::collections::HashMap;

/// Agent settings the parser needs to resolve and check units.
#[derive(Debug, Clone, Copy)]
pub struct IntakeContext<'a> {
    /// The agent's province code, such as `"01"`.
    pub locality: &'a str,
    /// The 2025 unit catalogue.
    pub catalogue: &'a UnitCatalogue,
    /// Source agency ids (such as `000.00.01.H22`) mapped to catalogue codes, from the config key
    /// `agency_map`.
    pub agency_map: &'a HashMap<String, String>,
}

/// A file that cannot be read as any accepted shape; none of its records is taken in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The bytes are not UTF-8.
    #[error(
        "input is not UTF-8: the byte at offset {offset} starts an invalid sequence; save the file as UTF-8"
    )]
    NotUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// The text is not JSON, nor JSON Lines.
    #[error(
        "invalid JSON at line {line}, column {column} ({reason}); expected a DongBoHoSoMC envelope, a JSON array of dossier records, or one record object per line"
    )]
    Json {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The JSON parser's description of the error.
        reason: String,
    },
    /// The JSON is valid but is neither an object nor an array.
    #[error(
        "input is {found}; expected a DongBoHoSoMC envelope object, a JSON array of dossier records, or one record object per line"
    )]
    NotRecords {
        /// The kind of JSON value found, such as "a JSON string".
        found: String,
    },
    /// The envelope names a service other than `DongBoHoSoMC`.
    #[error("{}", unsupported_service_message(service))]
    UnsupportedService {
        /// The envelope's `service` value.
        service: String,
    },
    /// An envelope field has the wrong shape.
    #[error("envelope field `{field}` {problem}")]
    Envelope {
        /// The envelope field: `data`, `service` or `madonvi`.
        field: &'static str,
        /// The problem and what to send instead.
        problem: String,
    },
}

fn unsupported_service_message(service: &str) -> String {
    if service == shape::PROGRESS_SERVICE {
        format!(
            "envelope service {service:?} (processing steps) is not supported yet; this agent reads dossiers sent as {}",
            shape::DOSSIER_SERVICE
        )
    } else {
        format!(
            "envelope service {service:?} is not supported; this agent reads dossiers sent as {}",
            shape::DOSSIER_SERVICE
        )
    }
}

/// Parses a file of national-format dossiers into one outcome per record, in file order.
///
/// An empty file (only whitespace) yields no outcomes. Each outcome's `index` is the record's
/// 0-based position among the records of the file: in JSON Lines, blank lines are not counted.
pub fn parse_dossiers(
    input: &[u8],
    ctx: &IntakeContext,
) -> Result<Vec<RecordOutcome>, FormatError> {
    let parsed = shape::split(input)?;
    let envelope_unit = parsed.envelope_unit.as_deref();

    let outcomes: Vec<RecordOutcome> = parsed
        .items
        .into_iter()
        .enumerate()
        .map(|(index, item)| RecordOutcome {
            index,
            result: read_item(item, envelope_unit, ctx),
        })
        .collect();

    let rejected = outcomes.iter().filter(|o| o.result.is_err()).count();
    tracing::debug!(
        shape = parsed.shape.as_str(),
        records = outcomes.len(),
        rejected,
        "dossier file parsed"
    );
    Ok(outcomes)
}

fn read_item(
    item: shape::Item,
    envelope_unit: Option<&str>,
    ctx: &IntakeContext,
) -> Result<Dossier, RecordError> {
    match item {
        shape::Item::Unreadable { message } => Err(RecordError {
            key: None,
            code: RejectCode::InvalidValue,
            field: "record".to_string(),
            message,
            // The raw text may hold personal data and cannot be reduced to known fields.
            sanitized_json: "{}".to_string(),
        }),
        shape::Item::Record(record) => {
            dossier::read_dossier(&record, envelope_unit, ctx).map_err(|error| RecordError {
                key: dossier::record_key(&record),
                code: error.code,
                field: error.field,
                message: error.message,
                sanitized_json: sanitize::sanitized_json(&record),
            })
        }
    }
}
