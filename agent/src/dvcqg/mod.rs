//! Reads the agent's JSON input: the national portal's dossier records (`DongBoHoSoMC`) and
//! processing steps (`CapNhatTienDoHoSoMC`), and procedures, feedback items and satisfaction
//! ratings in formats that follow the portal's naming. Each record maps to its message of
//! `chiso_proto::v1`, or to a [`RecordError`] that names the field at fault.
//! `docs/record-formats.md` describes every field.
//!
//! Three shapes are accepted and detected automatically: an envelope
//! `{session, madonvi, service, isUpdating, data: [...]}` like the portal's, a bare JSON array of
//! records, and JSON Lines (one record object per line). One file contains records of one kind.
//! The envelope's `service` names it, or the caller does (`--kind`, the HTTP route, the inbox
//! subfolder), and dossiers are assumed when neither does. A file that cannot be read is a
//! [`FormatError`], and nothing of it is kept. Inside a readable file every record stands alone,
//! so one bad record never hides the others. Personal fields (names, ID numbers, contacts,
//! addresses, free text) are never read into a record, never echoed in a message, and never kept
//! in [`RecordError::sanitized_json`], which contains only whitelisted fields.

mod dossier;
mod feedback;
mod fields;
mod keys;
#[cfg(test)]
mod kind_tests;
mod procedure;
mod rating;
mod sanitize;
mod shape;
mod step;
#[cfg(test)]
mod tests;
mod unit;

pub use step::step_number;

use crate::record::{IntoBody, RecordError, RecordOutcome};
use chiso_proto::record::Kind;
use chiso_proto::units::UnitCatalogue;
use chiso_proto::v1::record::Body;
use chiso_proto::v1::{Dossier, RejectCode};
use std::collections::HashMap;

/// Envelope `service` names and the record kind each one carries. `DongBoHoSoMC` and
/// `CapNhatTienDoHoSoMC` are the national portal's services. The portal publishes no service for
/// the other kinds, so their names are this product's.
pub const SERVICES: [(&str, Kind); 5] = [
    ("DongBoHoSoMC", Kind::Dossier),
    ("DongBoTTHC", Kind::Procedure),
    ("DongBoPAKN", Kind::Feedback),
    ("DongBoDanhGiaHaiLong", Kind::Rating),
    ("CapNhatTienDoHoSoMC", Kind::Step),
];

/// Returns the envelope `service` name of a record kind, as [`SERVICES`] lists it.
pub fn service_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Dossier => "DongBoHoSoMC",
        Kind::Procedure => "DongBoTTHC",
        Kind::Feedback => "DongBoPAKN",
        Kind::Rating => "DongBoDanhGiaHaiLong",
        Kind::Step => "CapNhatTienDoHoSoMC",
    }
}

/// Returns the record kind an envelope `service` name carries.
pub fn service_kind(service: &str) -> Option<Kind> {
    SERVICES
        .iter()
        .find(|(name, _)| *name == service)
        .map(|(_, kind)| *kind)
}

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
        "invalid JSON at line {line}, column {column} ({reason}); expected an envelope such as DongBoHoSoMC, a JSON array of records, or one record object per line"
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
        "input is {found}; expected an envelope object such as DongBoHoSoMC, a JSON array of records, or one record object per line"
    )]
    NotRecords {
        /// The kind of JSON value found, such as "a JSON string".
        found: String,
    },
    /// The envelope names a service that is not in [`SERVICES`].
    #[error(
        "envelope service {service:?} is not supported; send one of {}",
        service_list()
    )]
    UnsupportedService {
        /// The envelope's `service` value, cut to 60 characters.
        service: String,
    },
    /// The envelope's service carries another kind of record than the caller expects.
    #[error(
        "envelope service {service:?} carries {found} records, but this input must contain {expected} records; send it {}",
        where_to_send(*found)
    )]
    KindMismatch {
        /// The envelope's `service` name.
        service: String,
        /// The kind the service carries.
        found: Kind,
        /// The kind the command line, route or inbox folder requests.
        expected: Kind,
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

fn service_list() -> String {
    let names: Vec<String> = SERVICES
        .iter()
        .map(|(name, kind)| format!("{name} ({kind})"))
        .collect();
    names.join(", ")
}

fn where_to_send(kind: Kind) -> String {
    format!(
        "with --kind {kind}, to POST {}, or into the inbox folder {}/",
        route_of(kind),
        folder_of(kind)
    )
}

/// Returns the HTTP intake route of a record kind, such as `/v1/procedures`.
pub fn route_of(kind: Kind) -> &'static str {
    match kind {
        Kind::Dossier => "/v1/dossiers",
        Kind::Procedure => "/v1/procedures",
        Kind::Feedback => "/v1/feedback",
        Kind::Rating => "/v1/ratings",
        Kind::Step => "/v1/steps",
    }
}

/// Returns the inbox subfolder of a record kind, such as `procedures`.
pub fn folder_of(kind: Kind) -> &'static str {
    match kind {
        Kind::Dossier => "dossiers",
        Kind::Procedure => "procedures",
        Kind::Feedback => "feedback",
        Kind::Rating => "ratings",
        Kind::Step => "steps",
    }
}

/// The records of one file, all of one kind.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRecords {
    /// The kind of every record of the file.
    pub kind: Kind,
    /// One outcome per record, in file order.
    pub outcomes: Vec<RecordOutcome<Body>>,
}

/// Decides the kind of a file's records from the envelope's `service` and the kind the caller
/// expects. A file without a service contains the expected kind, or dossiers.
fn resolve_kind(service: Option<&str>, expected: Option<Kind>) -> Result<Kind, FormatError> {
    let Some(service) = service else {
        return Ok(expected.unwrap_or(Kind::Dossier));
    };
    let found = service_kind(service).ok_or_else(|| FormatError::UnsupportedService {
        service: fields::echo(service),
    })?;
    match expected {
        Some(expected) if expected != found => Err(FormatError::KindMismatch {
            service: service.to_string(),
            found,
            expected,
        }),
        _ => Ok(found),
    }
}

/// Parses a file into one outcome per record, in file order. `expected` is the kind the caller
/// requests (`--kind`, the HTTP route, the inbox subfolder), or `None` to take the envelope's.
///
/// An empty file (only whitespace) yields no outcomes. Each outcome's `index` is the record's
/// 0-based position among the records of the file: in JSON Lines, blank lines are not counted.
pub fn parse_records(
    input: &[u8],
    expected: Option<Kind>,
    ctx: &IntakeContext,
) -> Result<ParsedRecords, FormatError> {
    let (kind, outcomes) = parse_file(input, expected, ctx, read_record)?;
    Ok(ParsedRecords { kind, outcomes })
}

/// Parses a file of national-format dossiers into one outcome per record, in file order.
///
/// The file must contain dossiers: an envelope whose `service` names another kind is a
/// [`FormatError::KindMismatch`]. See [`parse_records`] for the rest.
pub fn parse_dossiers(
    input: &[u8],
    ctx: &IntakeContext,
) -> Result<Vec<RecordOutcome<Dossier>>, FormatError> {
    let read = |_: Kind, record: &Record, envelope_unit: Option<&str>, ctx: &IntakeContext| {
        dossier::read_dossier(record, envelope_unit, ctx)
    };
    let (_, outcomes) = parse_file(input, Some(Kind::Dossier), ctx, read)?;
    Ok(outcomes)
}

/// One record object of an input file.
type Record = serde_json::Map<String, serde_json::Value>;

/// Splits a file, decides its kind, and reads each record with `read`.
fn parse_file<T>(
    input: &[u8],
    expected: Option<Kind>,
    ctx: &IntakeContext,
    read: impl Fn(Kind, &Record, Option<&str>, &IntakeContext) -> Result<T, fields::FieldError>,
) -> Result<(Kind, Vec<RecordOutcome<T>>), FormatError> {
    let parsed = shape::split(input)?;
    let kind = resolve_kind(parsed.service.as_deref(), expected)?;
    let envelope_unit = parsed.envelope_unit.as_deref();

    let outcomes: Vec<RecordOutcome<T>> = parsed
        .items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let result = match item {
                shape::Item::Unreadable { message } => Err(unreadable(kind, message)),
                shape::Item::Record(record) => read(kind, &record, envelope_unit, ctx)
                    .map_err(|error| rejected(kind, &record, error, envelope_unit, ctx)),
            };
            RecordOutcome { index, result }
        })
        .collect();

    let rejected = outcomes.iter().filter(|o| o.result.is_err()).count();
    tracing::debug!(
        shape = parsed.shape.as_str(),
        kind = kind.as_str(),
        records = outcomes.len(),
        rejected,
        "input parsed"
    );
    Ok((kind, outcomes))
}

fn unreadable(kind: Kind, message: String) -> RecordError {
    RecordError {
        kind,
        key: None,
        code: RejectCode::InvalidValue,
        field: "record".to_string(),
        message,
        // The raw text may hold personal data and cannot be reduced to known fields.
        sanitized_json: "{}".to_string(),
    }
}

fn rejected(
    kind: Kind,
    record: &Record,
    error: fields::FieldError,
    envelope_unit: Option<&str>,
    ctx: &IntakeContext,
) -> RecordError {
    RecordError {
        kind,
        key: keys::record_key(kind, record, envelope_unit, ctx),
        code: error.code,
        field: error.field,
        message: error.message,
        sanitized_json: sanitize::sanitized_json(kind, record),
    }
}

fn read_record(
    kind: Kind,
    record: &Record,
    envelope_unit: Option<&str>,
    ctx: &IntakeContext,
) -> Result<Body, fields::FieldError> {
    Ok(match kind {
        Kind::Dossier => dossier::read_dossier(record, envelope_unit, ctx)?.into_body(),
        Kind::Procedure => procedure::read_procedure(record, envelope_unit, ctx)?.into_body(),
        Kind::Feedback => feedback::read_feedback(record, envelope_unit, ctx)?.into_body(),
        Kind::Rating => rating::read_rating(record, envelope_unit, ctx)?.into_body(),
        Kind::Step => step::read_step(record, envelope_unit, ctx)?.into_body(),
    })
}
