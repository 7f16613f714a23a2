//! Tells the three accepted file shapes apart and splits a file into record objects.
//!
//! A file is first parsed as one JSON value. An object with a `data` or `service` key is an
//! envelope like the portal's, another object is a single record, and an array is a list of
//! records. When
//! that parse fails, a file of two or more non-blank lines whose first one looks like a complete
//! object (`{` ... `}`) is read as JSON Lines. Any other failure is a [`FormatError`] with the
//! parser's position. Elements and lines that are not objects become [`Item::Unreadable`].

use super::FormatError;
use super::fields::describe_kind;
use serde_json::{Map, Value};

/// Shape of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    Empty,
    Envelope,
    Array,
    SingleObject,
    JsonLines,
}

impl Shape {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Shape::Empty => "empty",
            Shape::Envelope => "envelope",
            Shape::Array => "array",
            Shape::SingleObject => "single object",
            Shape::JsonLines => "json lines",
        }
    }
}

/// One entry of a file: a record object, or why the entry is not one.
#[derive(Debug)]
pub(super) enum Item {
    Record(Map<String, Value>),
    Unreadable { message: String },
}

/// A file split into entries, with the envelope's unit and service when there is one.
#[derive(Debug)]
pub(super) struct Parsed {
    pub(super) shape: Shape,
    pub(super) envelope_unit: Option<String>,
    /// The envelope's `service`, trimmed; `None` without an envelope or a service.
    pub(super) service: Option<String>,
    pub(super) items: Vec<Item>,
}

/// Detects the shape of `input` and splits it into entries.
pub(super) fn split(input: &[u8]) -> Result<Parsed, FormatError> {
    let text = std::str::from_utf8(input).map_err(|error| FormatError::NotUtf8 {
        offset: error.valid_up_to(),
    })?;
    // Windows tools often write a byte order mark, which JSON parsers reject.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);

    if text.trim().is_empty() {
        return Ok(parsed(Shape::Empty, Vec::new()));
    }

    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(object)) if is_envelope(&object) => envelope(object),
        Ok(Value::Object(object)) => Ok(parsed(Shape::SingleObject, vec![Item::Record(object)])),
        Ok(Value::Array(elements)) => Ok(parsed(Shape::Array, array_items(elements))),
        Ok(other) => Err(FormatError::NotRecords {
            found: describe_kind(&other).to_string(),
        }),
        Err(_) if looks_like_json_lines(text) => Ok(parsed(Shape::JsonLines, json_lines(text))),
        Err(error) => Err(json_error(&error)),
    }
}

fn parsed(shape: Shape, items: Vec<Item>) -> Parsed {
    Parsed {
        shape,
        envelope_unit: None,
        service: None,
        items,
    }
}

fn is_envelope(object: &Map<String, Value>) -> bool {
    object.contains_key("data") || object.contains_key("service")
}

fn envelope(mut object: Map<String, Value>) -> Result<Parsed, FormatError> {
    let service = envelope_service(object.get("service"))?;
    let unit = envelope_unit(object.get("madonvi"))?;

    let elements = match object.remove("data") {
        Some(Value::Array(elements)) => elements,
        None | Some(Value::Null) => {
            return Err(FormatError::Envelope {
                field: "data",
                problem: "is missing; put the records in a `data` array".to_string(),
            });
        }
        Some(other) => {
            return Err(FormatError::Envelope {
                field: "data",
                problem: format!("is {}; expected an array of records", describe_kind(&other)),
            });
        }
    };
    Ok(Parsed {
        shape: Shape::Envelope,
        envelope_unit: unit,
        service,
        items: array_items(elements),
    })
}

/// Reads the envelope's `service`; a blank one counts as absent. The caller maps it to a kind.
fn envelope_service(service: Option<&Value>) -> Result<Option<String>, FormatError> {
    match service {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(name)) if name.trim().is_empty() => Ok(None),
        Some(Value::String(name)) => Ok(Some(name.trim().to_string())),
        Some(other) => Err(FormatError::Envelope {
            field: "service",
            problem: format!(
                "is {}; expected a service name as a string, such as \"DongBoHoSoMC\"",
                describe_kind(other)
            ),
        }),
    }
}

fn envelope_unit(madonvi: Option<&Value>) -> Result<Option<String>, FormatError> {
    match madonvi {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(code)) if code.trim().is_empty() => Ok(None),
        Some(Value::String(code)) => Ok(Some(code.trim().to_string())),
        Some(other) => Err(FormatError::Envelope {
            field: "madonvi",
            problem: format!(
                "is {}; expected a unit code or agency id as a string, such as \"01\"",
                describe_kind(other)
            ),
        }),
    }
}

fn array_items(elements: Vec<Value>) -> Vec<Item> {
    elements
        .into_iter()
        .enumerate()
        .map(|(position, element)| match element {
            Value::Object(object) => Item::Record(object),
            other => Item::Unreadable {
                message: format!(
                    "element {position} of the record array is {}; expected a record object",
                    describe_kind(&other)
                ),
            },
        })
        .collect()
}

fn looks_like_json_lines(text: &str) -> bool {
    let mut lines = text.lines().map(str::trim).filter(|line| !line.is_empty());
    let first_is_object = lines
        .next()
        .is_some_and(|line| line.starts_with('{') && line.ends_with('}'));
    first_is_object && lines.next().is_some()
}

fn json_lines(text: &str) -> Vec<Item> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(line_index, line)| json_line_item(line_index + 1, line))
        .collect()
}

fn json_line_item(line_number: usize, line: &str) -> Item {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(object)) => Item::Record(object),
        Ok(other) => Item::Unreadable {
            message: format!(
                "line {line_number} is {}; expected one record object per line",
                describe_kind(&other)
            ),
        },
        Err(error) => Item::Unreadable {
            message: format!(
                "line {line_number} is not valid JSON ({} at column {}); correct or remove that line",
                reason_of(&error),
                error.column()
            ),
        },
    }
}

fn json_error(error: &serde_json::Error) -> FormatError {
    FormatError::Json {
        line: error.line(),
        column: error.column(),
        reason: reason_of(error),
    }
}

/// Returns serde_json's message without its " at line L column C" suffix, which the caller
/// reports in its own words. The message never quotes the input text.
fn reason_of(error: &serde_json::Error) -> String {
    let full = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    full.strip_suffix(&suffix).unwrap_or(&full).to_string()
}
