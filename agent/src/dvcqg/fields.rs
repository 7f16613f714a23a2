//! Typed readers of one record's fields, with errors that name the portal field and its value.
//!
//! Absent keys, `null` and strings that are empty after trimming all mean "not given". Readers
//! are only ever called on non-personal fields, so echoing a bad value in a message is safe.
//! Echoed strings are cut to [`ECHO_MAX_CHARS`] characters.

use chiso_proto::v1::RejectCode;
use chiso_proto::validate::Invalid;
use chiso_proto::vntime::parse_portal_datetime;
use serde_json::{Map, Value};
use std::ops::RangeInclusive;

/// Maximum length of a bad value repeated in a message, in characters.
const ECHO_MAX_CHARS: usize = 60;

/// One field that broke a rule, before the record's key and sanitized copy are attached.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct FieldError {
    pub(super) code: RejectCode,
    pub(super) field: String,
    pub(super) message: String,
}

impl FieldError {
    pub(super) fn new(code: RejectCode, field: impl Into<String>, message: String) -> FieldError {
        FieldError {
            code,
            field: field.into(),
            message,
        }
    }
}

impl From<Invalid> for FieldError {
    /// Converts a broken shared rule of `chiso_proto::validate`.
    fn from(invalid: Invalid) -> FieldError {
        FieldError::new(invalid.code, invalid.field, invalid.message)
    }
}

/// The fields of one JSON object, with the prefix that names nested objects in messages, such
/// as `TaiLieuNop[2].`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fields<'a> {
    object: &'a Map<String, Value>,
    prefix: &'a str,
}

impl<'a> Fields<'a> {
    /// Reads a top-level record.
    pub(super) fn new(object: &'a Map<String, Value>) -> Fields<'a> {
        Fields { object, prefix: "" }
    }

    /// Reads an entry of a nested list, naming its fields `{prefix}{key}`.
    pub(super) fn nested(object: &'a Map<String, Value>, prefix: &'a str) -> Fields<'a> {
        Fields { object, prefix }
    }

    /// Returns the portal name of a field as messages show it.
    pub(super) fn label(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Tells whether the key exists at all, even as `null` or `""`.
    pub(super) fn has_key(&self, key: &str) -> bool {
        self.object.contains_key(key)
    }

    /// Returns the value unless it is absent, `null` or a blank string.
    pub(super) fn given(&self, key: &str) -> Option<&'a Value> {
        match self.object.get(key)? {
            Value::Null => None,
            Value::String(text) if text.trim().is_empty() => None,
            value => Some(value),
        }
    }

    /// Reads a code: a string (trimmed) or a JSON integer written out in decimal.
    pub(super) fn code(&self, key: &str) -> Result<Option<String>, FieldError> {
        match self.given(key) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.trim().to_string())),
            Some(Value::Number(number)) if number.is_i64() || number.is_u64() => {
                Ok(Some(number.to_string()))
            }
            Some(other) => Err(self.wrong_type(key, other, "a string")),
        }
    }

    /// Reads a code that must be given. `meaning` names it in the message, such as "dossier
    /// code".
    pub(super) fn required_code(&self, key: &str, meaning: &str) -> Result<String, FieldError> {
        self.code(key)?.ok_or_else(|| self.missing(key, meaning))
    }

    /// Reads a portal date-time that must be given.
    pub(super) fn required_date(&self, key: &str, meaning: &str) -> Result<i64, FieldError> {
        self.date(key)?.ok_or_else(|| self.missing(key, meaning))
    }

    /// Reads a small integer code that must be given, and checks its range.
    pub(super) fn required_number(
        &self,
        key: &str,
        range: RangeInclusive<i64>,
        expected: &str,
    ) -> Result<i64, FieldError> {
        self.number_in(key, range, expected)?.ok_or_else(|| {
            FieldError::new(
                RejectCode::MissingField,
                self.label(key),
                format!(
                    "{} is missing or empty; expected {expected}",
                    self.label(key)
                ),
            )
        })
    }

    /// Builds the error for a required field that is absent.
    fn missing(&self, key: &str, meaning: &str) -> FieldError {
        FieldError::new(
            RejectCode::MissingField,
            self.label(key),
            format!(
                "{} is missing or empty; send the {meaning}",
                self.label(key)
            ),
        )
    }

    /// Reads a small integer code given as a JSON integer or a numeric string, and checks its
    /// range. `expected` lists the allowed values for the message.
    pub(super) fn number_in(
        &self,
        key: &str,
        range: RangeInclusive<i64>,
        expected: &str,
    ) -> Result<Option<i64>, FieldError> {
        let Some(value) = self.given(key) else {
            return Ok(None);
        };
        let number = match value {
            Value::Number(number) => number.as_i64(),
            Value::String(text) => text.trim().parse::<i64>().ok(),
            other => return Err(self.wrong_type(key, other, expected)),
        };
        match number {
            Some(number) if range.contains(&number) => Ok(Some(number)),
            _ => Err(FieldError::new(
                RejectCode::InvalidValue,
                self.label(key),
                format!(
                    "{} is {}; expected {expected}",
                    self.label(key),
                    describe(value)
                ),
            )),
        }
    }

    /// Reads a portal date-time (`yyyyMMddHHmmss`, Vietnam time) into Unix seconds.
    pub(super) fn date(&self, key: &str) -> Result<Option<i64>, FieldError> {
        let Some(value) = self.given(key) else {
            return Ok(None);
        };
        let text = match value {
            Value::String(text) => text.trim().to_string(),
            Value::Number(number) if number.is_u64() => number.to_string(),
            other => return Err(self.wrong_type(key, other, "a date string yyyyMMddHHmmss")),
        };
        parse_portal_datetime(&text).map(Some).map_err(|_| {
            FieldError::new(
                RejectCode::InvalidDate,
                self.label(key),
                format!(
                    "{} {:?} is not a valid date; write it as yyyyMMddHHmmss in Vietnam time, such as 20261001003000",
                    self.label(key),
                    echo(&text)
                ),
            )
        })
    }

    /// Reads a portal flag: true for `"1"` or `1`, false for any other string or number and for
    /// an absent value.
    pub(super) fn flag(&self, key: &str) -> Result<bool, FieldError> {
        match self.given(key) {
            None => Ok(false),
            Some(Value::String(text)) => Ok(text.trim() == "1"),
            Some(Value::Number(number)) => Ok(number.as_i64() == Some(1)),
            Some(other) => Err(self.wrong_type(key, other, "\"0\" or \"1\"")),
        }
    }

    /// Reads a list of objects; an absent list is empty.
    pub(super) fn objects(&self, key: &str) -> Result<Vec<&'a Map<String, Value>>, FieldError> {
        let elements = match self.given(key) {
            None => return Ok(Vec::new()),
            Some(Value::Array(elements)) => elements,
            Some(other) => return Err(self.wrong_type(key, other, "a JSON array")),
        };
        elements
            .iter()
            .enumerate()
            .map(|(position, element)| match element {
                Value::Object(object) => Ok(object),
                other => Err(FieldError::new(
                    RejectCode::InvalidValue,
                    format!("{}[{position}]", self.label(key)),
                    format!(
                        "{}[{position}] is {}; expected an object",
                        self.label(key),
                        describe(other)
                    ),
                )),
            })
            .collect()
    }

    /// Builds the error for a value of the wrong JSON type.
    pub(super) fn wrong_type(&self, key: &str, value: &Value, expected: &str) -> FieldError {
        FieldError::new(
            RejectCode::InvalidValue,
            self.label(key),
            format!(
                "{} is {}; expected {expected}",
                self.label(key),
                describe(value)
            ),
        )
    }
}

/// Names the kind of a JSON value, such as "a JSON array", without its content.
pub(super) fn describe_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a JSON boolean",
        Value::Number(_) => "a JSON number",
        Value::String(_) => "a JSON string",
        Value::Array(_) => "a JSON array",
        Value::Object(_) => "a JSON object",
    }
}

/// Describes a non-personal value with its content: the string itself, or the kind and value.
pub(super) fn describe(value: &Value) -> String {
    match value {
        Value::Bool(flag) => format!("the JSON boolean {flag}"),
        Value::Number(number) => format!("the JSON number {number}"),
        Value::String(text) => format!("{:?}", echo(text)),
        other => describe_kind(other).to_string(),
    }
}

/// Cuts a string to [`ECHO_MAX_CHARS`] characters, marking the cut with "...".
pub(super) fn echo(text: &str) -> String {
    if text.chars().count() <= ECHO_MAX_CHARS {
        return text.to_string();
    }
    let kept: String = text.chars().take(ECHO_MAX_CHARS).collect();
    format!("{kept}...")
}
