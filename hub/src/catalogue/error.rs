//! Errors of loading and validating an indicator catalogue. Every message names the catalogue
//! (built-in id or file path), the entry and the value at fault.

use std::path::PathBuf;

/// A catalogue that cannot be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    /// No built-in catalogue has the requested id.
    #[error("unknown built-in indicator catalogue {id:?}; use one of {known}, or catalogue_file")]
    UnknownBuiltin {
        /// The requested id.
        id: String,
        /// The built-in ids, comma separated.
        known: String,
    },
    /// The catalogue file could not be read.
    #[error("cannot read indicator catalogue file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The text is not TOML, or its top level does not match the catalogue schema.
    #[error("invalid indicator catalogue {origin}: {source}")]
    Syntax {
        /// The built-in id or the file path.
        origin: String,
        /// Underlying error, with the line and key.
        source: Box<toml::de::Error>,
    },
    /// An entry has an unknown field, a missing field or a value of the wrong type.
    #[error("invalid indicator catalogue {origin}: {entry}: {message}")]
    Entry {
        /// The built-in id or the file path.
        origin: String,
        /// The entry, such as `indicator PUBLISH_ON_TIME`.
        entry: String,
        /// Description of the fault, from the TOML reader.
        message: String,
    },
    /// A field has a value the catalogue does not allow.
    #[error("invalid indicator catalogue {origin}: {entry}: {field} = {value}: {reason}")]
    Invalid {
        /// The built-in id or the file path.
        origin: String,
        /// The entry, such as `indicator PUBLISH_ON_TIME`.
        entry: String,
        /// The field.
        field: &'static str,
        /// The rejected value.
        value: String,
        /// The values allowed.
        reason: String,
    },
    /// Two entries of one section share an id.
    #[error(
        "invalid indicator catalogue {origin}: duplicate {section} id {id:?}; ids must be unique"
    )]
    Duplicate {
        /// The built-in id or the file path.
        origin: String,
        /// The section, such as `indicator` (indicators and parts share one namespace).
        section: &'static str,
        /// The repeated id.
        id: String,
    },
    /// Points of the parts of an entry do not add up to its maximum.
    #[error(
        "invalid indicator catalogue {origin}: {entry} has a maximum of {expected} points, but {items} add up to {found}; make them agree"
    )]
    PointsMismatch {
        /// The built-in id or the file path.
        origin: String,
        /// The entry whose maximum is checked, such as `group 3`.
        entry: String,
        /// The entry's maximum.
        expected: f64,
        /// The sum found.
        found: f64,
        /// The summed items, with each item's points.
        items: String,
    },
}
