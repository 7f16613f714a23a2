//! Ministry catalogue files: the ministries and ministry-level agencies of the Government and
//! their units that handle procedures, as TOML.
//!
//! A file has a `version`, an optional `base` and one `[[unit]]` table per entry with `code`,
//! `name`, an optional `name_en` and an optional `parent`. An entry without a parent is a
//! ministry (or ministry-level agency). Every other entry is a unit of the ministry at the top
//! of its parent chain, which may be several levels long. The built-in file is
//! `proto/data/ministries-2025.toml`. A file given to the hub either replaces it or, with
//! `base = "ministries-2025"`, adds to it.
//!
//! Province and commune codes are all digits, so a ministry code must contain a letter. No code
//! may be used twice, even across the built-in list and a file that extends it.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::units::UnitCatalogue;

/// Version of the built-in ministry catalogue, and the `base` value that extends it.
pub const DEFAULT_VERSION: &str = "ministries-2025";

/// The built-in ministry catalogue.
const DEFAULT_TOML: &str = include_str!("../data/ministries-2025.toml");

/// Scorecard code of the table of all ministries.
pub const MINISTRIES_CODE: &str = "MINISTRIES";

/// Codes that scorecard requests use for groups of units, so no unit may have them.
pub const RESERVED_CODES: [&str; 2] = ["VN", MINISTRIES_CODE];

/// Minimum length of a ministry or ministry unit code, in bytes.
pub const MIN_CODE_LEN: usize = 2;
/// Maximum length of a ministry or ministry unit code, in bytes: the longest unit code a record
/// may carry.
pub const MAX_CODE_LEN: usize = crate::validate::MAX_UNIT_CODE_LEN;
/// Maximum length of a name, in bytes.
pub const MAX_NAME_LEN: usize = 300;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    version: String,
    #[serde(default)]
    base: Option<String>,
    #[serde(default, rename = "unit")]
    units: Vec<EntryToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryToml {
    code: String,
    name: String,
    #[serde(default)]
    name_en: Option<String>,
    #[serde(default)]
    parent: Option<String>,
}

/// One ministry, ministry-level agency or ministry unit of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinistryEntry {
    /// Unit code.
    pub code: String,
    /// Vietnamese name.
    pub name: String,
    /// English name.
    pub name_en: Option<String>,
    /// Code of the unit above; `None` for a ministry or ministry-level agency.
    pub parent: Option<String>,
}

/// A ministry catalogue file whose entries passed the checks that need no other file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinistryFile {
    /// Name of the list, reported in scorecards.
    pub version: String,
    /// Whether the file adds to the built-in list rather than replacing it.
    pub extends_default: bool,
    /// The entries, in file order.
    pub entries: Vec<MinistryEntry>,
    /// Origin of the file for messages: its path or "the built-in ministries-2025".
    pub origin: String,
}

/// An entry of a file, as messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRef {
    /// Origin of the file.
    pub origin: String,
    /// 1-based position among the file's `[[unit]]` tables.
    pub index: usize,
    /// The entry's code as written.
    pub code: String,
}

impl fmt::Display for EntryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[[unit]] {} (code {:?}) of {}",
            self.index, self.code, self.origin
        )
    }
}

/// Errors of a ministry catalogue file.
#[derive(Debug, thiserror::Error)]
pub enum MinistryFileError {
    /// The file could not be read.
    #[error("cannot read ministry catalogue {path}: {source}")]
    Read {
        /// The file path.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file is not TOML of this format.
    #[error("invalid ministry catalogue {origin}: {source}")]
    Parse {
        /// Origin of the file.
        origin: String,
        /// Underlying error, with the line.
        source: toml::de::Error,
    },
    /// The version is empty or too long.
    #[error(
        "ministry catalogue {origin} has version {version:?}; set version to a name of 1 to 64 characters, such as \"ministries-2026-01\""
    )]
    InvalidVersion {
        /// Origin of the file.
        origin: String,
        /// The rejected value.
        version: String,
    },
    /// The base names no built-in list.
    #[error(
        "ministry catalogue {origin} has base = {base:?}; use base = \"{DEFAULT_VERSION}\" to add to the built-in list, or leave base out to replace it"
    )]
    UnknownBase {
        /// Origin of the file.
        origin: String,
        /// The rejected value.
        base: String,
    },
    /// A code has the wrong shape or is reserved.
    #[error("{entry}: invalid code: {reason}")]
    InvalidCode {
        /// The entry.
        entry: EntryRef,
        /// Description of the fault and of what is allowed.
        reason: &'static str,
    },
    /// A name is empty, too long or contains control characters.
    #[error("{entry}: invalid {field}: {reason}")]
    InvalidName {
        /// The entry.
        entry: EntryRef,
        /// `name` or `name_en`.
        field: &'static str,
        /// Description of the fault and of what is allowed.
        reason: &'static str,
    },
    /// A code is a code of the official province and commune catalogue.
    #[error(
        "{entry}: code clashes with {name} in the official 2025 catalogue; all-digit codes belong to provinces and communes, so give the unit a code with a letter"
    )]
    ClashesWithOfficial {
        /// The entry.
        entry: EntryRef,
        /// Name of the official unit with that code.
        name: String,
    },
    /// A code is used twice.
    #[error("{entry}: duplicate code, already used by {first}; give each unit its own code")]
    Duplicate {
        /// The later entry.
        entry: EntryRef,
        /// The earlier entry.
        first: EntryRef,
    },
    /// A parent is not a ministry or ministry unit of the catalogue.
    #[error(
        "{entry}: unknown parent {parent:?}, which is not a ministry or ministry unit of the catalogue; fix the code, add the parent, or set base = \"{DEFAULT_VERSION}\" to build on the built-in ministries"
    )]
    UnknownParent {
        /// The entry.
        entry: EntryRef,
        /// The rejected parent code.
        parent: String,
    },
    /// A chain of parents comes back to where it started.
    #[error(
        "{entry}: parent cycle {chain}; a ministry has no parent, and every unit's parents must lead up to one"
    )]
    Cycle {
        /// An entry of the cycle.
        entry: EntryRef,
        /// The codes of the cycle, as `A -> B -> A`.
        chain: String,
    },
}

/// A ministry or ministry unit whose parents are resolved, in catalogue order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedEntry {
    /// The entry.
    pub entry: MinistryEntry,
    /// Code of the ministry at the top of its parent chain: its own code for a ministry.
    pub ministry: String,
}

impl MinistryFile {
    /// Returns the built-in ministry catalogue.
    pub fn builtin() -> MinistryFile {
        MinistryFile::parse(DEFAULT_TOML, &format!("the built-in {DEFAULT_VERSION}"))
            .expect("the built-in ministry catalogue is checked by the unit tests of this module")
    }

    /// Reads and checks a file.
    pub fn read(path: &Path) -> Result<MinistryFile, MinistryFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| MinistryFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        MinistryFile::parse(&text, &path.display().to_string())
    }

    /// Parses a file and checks each entry on its own: code shape, names, reserved codes.
    /// Parents, duplicates and clashes need the whole catalogue, so [`resolve`] checks them.
    pub fn parse(text: &str, origin: &str) -> Result<MinistryFile, MinistryFileError> {
        let file: FileToml = toml::from_str(text).map_err(|source| MinistryFileError::Parse {
            origin: origin.to_string(),
            source,
        })?;
        let version = file.version.trim();
        if version.is_empty() || version.len() > 64 || version.chars().any(char::is_control) {
            return Err(MinistryFileError::InvalidVersion {
                origin: origin.to_string(),
                version: file.version,
            });
        }
        let extends_default = match file.base.as_deref() {
            None => false,
            Some(DEFAULT_VERSION) => true,
            Some(other) => {
                return Err(MinistryFileError::UnknownBase {
                    origin: origin.to_string(),
                    base: other.to_string(),
                });
            }
        };

        let mut entries = Vec::with_capacity(file.units.len());
        for (position, unit) in file.units.into_iter().enumerate() {
            let entry = EntryRef {
                origin: origin.to_string(),
                index: position + 1,
                code: unit.code.clone(),
            };
            check_code_shape(&entry)?;
            let name = check_name(&entry, "name", &unit.name)?;
            let name_en = match unit.name_en.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(text) => Some(check_name(&entry, "name_en", text)?),
            };
            let parent = unit
                .parent
                .map(|parent| parent.trim().to_string())
                .filter(|parent| !parent.is_empty());
            entries.push(MinistryEntry {
                code: unit.code,
                name,
                name_en,
                parent,
            });
        }
        Ok(MinistryFile {
            version: version.to_string(),
            extends_default,
            entries,
            origin: origin.to_string(),
        })
    }
}

/// Checks the entries of several files as one catalogue beside the official units: no code
/// clashes with an official one or is used twice, every parent exists, and no parent chain
/// loops. Returns the entries in order, each with its ministry.
pub fn resolve(
    files: &[MinistryFile],
    official: &UnitCatalogue,
) -> Result<Vec<ResolvedEntry>, MinistryFileError> {
    let mut refs: Vec<EntryRef> = Vec::new();
    let mut entries: Vec<&MinistryEntry> = Vec::new();
    for file in files {
        for (position, entry) in file.entries.iter().enumerate() {
            refs.push(EntryRef {
                origin: file.origin.clone(),
                index: position + 1,
                code: entry.code.clone(),
            });
            entries.push(entry);
        }
    }

    let mut by_code: HashMap<&str, usize> = HashMap::new();
    for (position, entry) in entries.iter().enumerate() {
        if entry.code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(match official.get(&entry.code) {
                Some(unit) => MinistryFileError::ClashesWithOfficial {
                    entry: refs[position].clone(),
                    name: unit.name.clone(),
                },
                None => MinistryFileError::InvalidCode {
                    entry: refs[position].clone(),
                    reason: check_code(&entry.code)
                        .err()
                        .unwrap_or("all-digit codes are reserved for provinces and communes"),
                },
            });
        }
        if let Some(first) = by_code.insert(&entry.code, position) {
            return Err(MinistryFileError::Duplicate {
                entry: refs[position].clone(),
                first: refs[first].clone(),
            });
        }
    }
    for (position, entry) in entries.iter().enumerate() {
        if let Some(parent) = &entry.parent
            && !by_code.contains_key(parent.as_str())
        {
            return Err(MinistryFileError::UnknownParent {
                entry: refs[position].clone(),
                parent: parent.clone(),
            });
        }
    }

    let mut resolved = Vec::with_capacity(entries.len());
    for &entry in &entries {
        // Walks up until a ministry or a code seen before; every step adds a new code, so the
        // walk ends within entries.len() steps.
        let mut chain: Vec<&str> = vec![&entry.code];
        let mut current = entry;
        while let Some(parent) = &current.parent {
            if let Some(start) = chain.iter().position(|code| code == parent) {
                let mut cycle = chain[start..].to_vec();
                cycle.push(parent);
                return Err(MinistryFileError::Cycle {
                    entry: refs[by_code[parent.as_str()]].clone(),
                    chain: cycle.join(" -> "),
                });
            }
            chain.push(parent);
            current = entries[by_code[parent.as_str()]];
        }
        resolved.push(ResolvedEntry {
            entry: entry.clone(),
            ministry: current.code.clone(),
        });
    }
    Ok(resolved)
}

/// Checks that a code can be a ministry or ministry unit code: 2 to 16 uppercase ASCII letters,
/// digits, '-' or '_', at least one of them a letter, and not reserved. Returns what is wrong.
pub fn check_code(code: &str) -> Result<(), &'static str> {
    if !(MIN_CODE_LEN..=MAX_CODE_LEN).contains(&code.len()) {
        return Err("a code has 2 to 16 characters");
    }
    let allowed = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_';
    if !code.bytes().all(allowed) {
        return Err("a code has only uppercase ASCII letters, digits, '-' and '_'");
    }
    if !code.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(
            "codes without a letter are reserved for provinces (2 digits) and communes (5 digits); include a letter",
        );
    }
    if RESERVED_CODES.contains(&code) {
        return Err("VN and MINISTRIES are reserved for the country and ministries scorecards");
    }
    Ok(())
}

/// Checks a code's shape, except that an all-digit code is left to [`resolve`], which names the
/// official unit it clashes with.
fn check_code_shape(entry: &EntryRef) -> Result<(), MinistryFileError> {
    if entry.code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(());
    }
    check_code(&entry.code).map_err(|reason| MinistryFileError::InvalidCode {
        entry: entry.clone(),
        reason,
    })
}

fn check_name(
    entry: &EntryRef,
    field: &'static str,
    name: &str,
) -> Result<String, MinistryFileError> {
    let name = name.trim();
    let invalid = |reason| MinistryFileError::InvalidName {
        entry: entry.clone(),
        field,
        reason,
    };
    if name.is_empty() {
        return Err(invalid("a name is required"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(invalid("a name has at most 300 bytes"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid(
            "a name has no control characters such as line breaks",
        ));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> UnitCatalogue {
        UnitCatalogue::local()
    }

    fn parse(text: &str) -> Result<MinistryFile, MinistryFileError> {
        MinistryFile::parse(text, "test.toml")
    }

    fn resolve_text(text: &str) -> Result<Vec<ResolvedEntry>, MinistryFileError> {
        resolve(&[parse(text)?], &local())
    }

    #[test]
    fn builtin_has_fourteen_ministries_and_three_agencies() {
        let file = MinistryFile::builtin();
        assert_eq!(file.version, DEFAULT_VERSION);
        assert!(!file.extends_default);
        assert_eq!(file.entries.len(), 17);
        assert!(file.entries.iter().all(|entry| entry.parent.is_none()));
        assert!(file.entries.iter().all(|entry| entry.name_en.is_some()));
        let resolved = resolve(&[file], &local()).unwrap();
        let finance = resolved
            .iter()
            .find(|unit| unit.entry.code == "BTC")
            .expect("the Ministry of Finance is built in");
        assert_eq!(finance.entry.name, "Bộ Tài chính");
        assert_eq!(finance.ministry, "BTC");
    }

    #[test]
    fn nested_units_resolve_to_their_ministry() {
        let text = r#"
version = "test"
[[unit]]
code = "TCT"
name = "Tổng cục Thuế"
parent = "BTC"
[[unit]]
code = "BTC"
name = "Bộ Tài chính"
parent = ""
[[unit]]
code = "CT-HN"
name = "Chi cục Thuế khu vực I"
parent = "TCT"
"#;
        let resolved = resolve_text(text).unwrap();
        let ministries: Vec<(&str, &str)> = resolved
            .iter()
            .map(|unit| (unit.entry.code.as_str(), unit.ministry.as_str()))
            .collect();
        assert_eq!(
            ministries,
            vec![("TCT", "BTC"), ("BTC", "BTC"), ("CT-HN", "BTC")]
        );
        assert_eq!(resolved[1].entry.parent, None);
        assert_eq!(resolved[1].entry.name_en, None);
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let message = parse("version = \"x\"\n[[unit]]\ncode = \"A1\"\nname = \n")
            .unwrap_err()
            .to_string();
        assert!(message.contains("test.toml"), "{message}");
        assert!(message.contains("line 4"), "{message}");
    }

    #[test]
    fn unknown_field_is_rejected() {
        let message =
            parse("version = \"x\"\n[[unit]]\ncode = \"AB\"\nname = \"n\"\nparnet = \"X\"\n")
                .unwrap_err()
                .to_string();
        assert!(message.contains("parnet"), "{message}");
    }

    #[test]
    fn empty_version_is_rejected() {
        let error = parse("version = \" \"\n").unwrap_err();
        assert!(
            matches!(error, MinistryFileError::InvalidVersion { .. }),
            "{error}"
        );
    }

    #[test]
    fn unknown_base_names_the_choices() {
        let error = parse("version = \"x\"\nbase = \"ministries-2024\"\n").unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, MinistryFileError::UnknownBase { .. }),
            "{message}"
        );
        assert!(message.contains("\"ministries-2024\""), "{message}");
        assert!(message.contains("base = \"ministries-2025\""), "{message}");
        assert!(
            parse("version = \"x\"\nbase = \"ministries-2025\"\n")
                .unwrap()
                .extends_default
        );
    }

    #[test]
    fn malformed_codes_are_rejected() {
        for code in [
            "B",
            "btc",
            "BỘ",
            "B TC",
            "ABCDEFGHIJKLMNOPQ",
            "VN",
            "MINISTRIES",
            "1-2",
        ] {
            let text = format!("version = \"x\"\n[[unit]]\ncode = \"{code}\"\nname = \"n\"\n");
            let error = parse(&text).unwrap_err();
            let message = error.to_string();
            assert!(
                matches!(error, MinistryFileError::InvalidCode { .. }),
                "{code}: {message}"
            );
            assert!(message.contains(&format!("{code:?}")), "{message}");
            assert!(message.contains("[[unit]] 1"), "{message}");
        }
    }

    #[test]
    fn empty_or_multiline_name_is_rejected() {
        for (name, field) in [
            ("name = \"  \"", "name"),
            ("name = \"a\"\nname_en = \"x\\ny\"", "name_en"),
        ] {
            let text = format!("version = \"x\"\n[[unit]]\ncode = \"AB\"\n{name}\n");
            let error = parse(&text).unwrap_err();
            assert!(
                matches!(&error, MinistryFileError::InvalidName { field: found, .. } if *found == field),
                "{error}"
            );
        }
    }

    #[test]
    fn official_code_clashes() {
        let error =
            resolve_text("version = \"x\"\n[[unit]]\ncode = \"01\"\nname = \"n\"\n").unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, MinistryFileError::ClashesWithOfficial { .. }),
            "{message}"
        );
        assert!(message.contains("Thành phố Hà Nội"), "{message}");

        let error =
            resolve_text("version = \"x\"\n[[unit]]\ncode = \"99\"\nname = \"n\"\n").unwrap_err();
        assert!(
            matches!(error, MinistryFileError::InvalidCode { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("include a letter"), "{error}");
    }

    #[test]
    fn duplicate_names_both_entries() {
        let text = "version = \"x\"\n[[unit]]\ncode = \"AB\"\nname = \"a\"\n[[unit]]\ncode = \"AB\"\nname = \"b\"\n";
        let error = resolve_text(text).unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, MinistryFileError::Duplicate { .. }),
            "{message}"
        );
        assert!(message.contains("[[unit]] 2 (code \"AB\")"), "{message}");
        assert!(message.contains("[[unit]] 1 (code \"AB\")"), "{message}");
    }

    #[test]
    fn duplicate_across_builtin_and_extension() {
        let text = "version = \"x\"\nbase = \"ministries-2025\"\n[[unit]]\ncode = \"BTC\"\nname = \"Bộ Tài chính\"\n";
        let files = [MinistryFile::builtin(), parse(text).unwrap()];
        let message = resolve(&files, &local()).unwrap_err().to_string();
        assert!(message.contains("of test.toml"), "{message}");
        assert!(
            message.contains("of the built-in ministries-2025"),
            "{message}"
        );
    }

    #[test]
    fn unknown_parent_is_named() {
        let text = "version = \"x\"\n[[unit]]\ncode = \"TCT\"\nname = \"n\"\nparent = \"BTC\"\n";
        let error = resolve_text(text).unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, MinistryFileError::UnknownParent { .. }),
            "{message}"
        );
        assert!(message.contains("\"BTC\""), "{message}");

        // A province is not a parent of ministry units.
        let text = "version = \"x\"\n[[unit]]\ncode = \"TCT\"\nname = \"n\"\nparent = \"01\"\n";
        let error = resolve_text(text).unwrap_err();
        assert!(
            matches!(error, MinistryFileError::UnknownParent { .. }),
            "{error}"
        );
    }

    #[test]
    fn parent_cycle_is_named() {
        let text = r#"
version = "x"
[[unit]]
code = "AB"
name = "a"
parent = "CD"
[[unit]]
code = "CD"
name = "c"
parent = "EF"
[[unit]]
code = "EF"
name = "e"
parent = "AB"
"#;
        let error = resolve_text(text).unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, MinistryFileError::Cycle { .. }),
            "{message}"
        );
        assert!(message.contains("AB -> CD -> EF -> AB"), "{message}");

        let own = "version = \"x\"\n[[unit]]\ncode = \"AB\"\nname = \"a\"\nparent = \"AB\"\n";
        let message = resolve_text(own).unwrap_err().to_string();
        assert!(message.contains("AB -> AB"), "{message}");
    }
}
