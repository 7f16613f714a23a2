//! Reading a catalogue's TOML into the model, one entry at a time so that every error names
//! its entry (`indicator PUBLISH_ON_TIME`, `group 3`, `formula PAYMENT`).
//!
//! This module checks each entry on its own: unknown fields and missing or malformed values.
//! The measure fields are checked in `measure`, and checks across entries live in `validate`.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::measure::{At, MeasureFields, measure};
use super::{Band, Body, Catalogue, CatalogueError, Formula, Group, Indicator, Part, Rule};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogue {
    version: String,
    title: String,
    total_points: f64,
    bands_source: String,
    bands_confidence: String,
    #[serde(default)]
    bands: Vec<toml::Table>,
    groups: Vec<toml::Table>,
    indicators: Vec<toml::Table>,
    #[serde(default)]
    formulas: Vec<toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    id: String,
    name_vi: String,
    name_en: String,
    max_points: f64,
    source: String,
    confidence: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBand {
    name: String,
    min: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFormula {
    id: String,
    group: String,
    cap: f64,
    terms: Vec<RawTerm>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTerm {
    indicator: String,
    coefficient: f64,
    cap: Option<f64>,
}

/// Fields of an indicator entry. The measure fields are absent when it has parts.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIndicator {
    id: String,
    group: String,
    name_vi: String,
    name_en: String,
    points: Option<f64>,
    #[serde(default)]
    unconfirmed: bool,
    source: String,
    confidence: String,
    #[serde(default)]
    parts: Vec<toml::Table>,
    rule: Option<String>,
    numerator: Option<String>,
    denominator: Option<String>,
    period: Option<String>,
    threshold: Option<f64>,
    value: Option<f64>,
    zero_denominator: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPart {
    id: String,
    name_vi: String,
    name_en: String,
    points: f64,
    source: String,
    confidence: String,
    rule: String,
    numerator: Option<String>,
    denominator: Option<String>,
    period: Option<String>,
    threshold: Option<f64>,
    value: Option<f64>,
    zero_denominator: Option<String>,
}

/// Parses catalogue TOML into the model, checking each entry on its own.
pub(super) fn parse(text: &str, origin: &str) -> Result<Catalogue, CatalogueError> {
    let raw: RawCatalogue = toml::from_str(text).map_err(|source| CatalogueError::Syntax {
        origin: origin.to_string(),
        source: Box::new(source),
    })?;
    let top = At {
        origin,
        entry: "catalogue".to_string(),
    };

    let formulas: Vec<RawFormula> = entries(raw.formulas, "formula", "id", origin, Ok)?;
    let groups = entries(raw.groups, "group", "id", origin, |raw| group(raw, origin))?;
    let indicators = entries(raw.indicators, "indicator", "id", origin, |raw| {
        indicator(raw, &formulas, origin)
    })?;
    let mut bands = entries(raw.bands, "band", "name", origin, |raw: RawBand| {
        let at = At {
            origin,
            entry: format!("band {}", raw.name),
        };
        let min_points = at.points("min", raw.min)?;
        Ok(Band {
            name: raw.name,
            min_points,
        })
    })?;
    bands.sort_by(|a, b| b.min_points.total_cmp(&a.min_points));

    Ok(Catalogue {
        version: raw.version,
        title: raw.title,
        total_points: top.points("total_points", raw.total_points)?,
        groups,
        indicators,
        formulas: formulas.into_iter().map(formula).collect(),
        bands,
        bands_source: raw.bands_source,
        bands_confidence: top.confidence(&raw.bands_confidence)?,
    })
}

/// Deserializes every entry of one array of tables and converts it with `convert`.
fn entries<R: DeserializeOwned, T>(
    tables: Vec<toml::Table>,
    section: &str,
    key: &str,
    origin: &str,
    convert: impl Fn(R) -> Result<T, CatalogueError>,
) -> Result<Vec<T>, CatalogueError> {
    tables
        .into_iter()
        .enumerate()
        .map(|(index, table)| convert(entry(table, section, key, index, origin)?))
        .collect()
}

/// Deserializes one entry of an array of tables, naming it by its id (or its position).
fn entry<T: DeserializeOwned>(
    table: toml::Table,
    section: &str,
    key: &str,
    index: usize,
    origin: &str,
) -> Result<T, CatalogueError> {
    let name = match table.get(key).and_then(toml::Value::as_str) {
        Some(id) => format!("{section} {id}"),
        None => format!("{section} #{} (no {key})", index + 1),
    };
    table.try_into().map_err(|error| CatalogueError::Entry {
        origin: origin.to_string(),
        entry: name,
        message: error.message().to_string(),
    })
}

fn group(raw: RawGroup, origin: &str) -> Result<Group, CatalogueError> {
    let at = At {
        origin,
        entry: format!("group {}", raw.id),
    };
    Ok(Group {
        max_points: at.points("max_points", raw.max_points)?,
        confidence: at.confidence(&raw.confidence)?,
        id: raw.id,
        name_vi: raw.name_vi,
        name_en: raw.name_en,
        source: raw.source,
    })
}

fn formula(raw: RawFormula) -> Formula {
    Formula {
        id: raw.id,
        group: raw.group,
        cap: raw.cap,
        terms: raw.terms.into_iter().map(|term| term.indicator).collect(),
    }
}

/// Returns the term rule of an indicator that a formula names, if one does.
fn term_of(
    formulas: &[RawFormula],
    indicator: &str,
    at: &At<'_>,
) -> Result<Option<Rule>, CatalogueError> {
    let Some(term) = formulas
        .iter()
        .flat_map(|formula| &formula.terms)
        .find(|term| term.indicator == indicator)
    else {
        return Ok(None);
    };
    let coefficient = at.points("coefficient", term.coefficient)?;
    let cap = term.cap.map(|cap| at.points("cap", cap)).transpose()?;
    Ok(Some(Rule::Term { coefficient, cap }))
}

fn indicator(
    mut raw: RawIndicator,
    formulas: &[RawFormula],
    origin: &str,
) -> Result<Indicator, CatalogueError> {
    let at = At {
        origin,
        entry: format!("indicator {}", raw.id),
    };
    let confidence = at.confidence(&raw.confidence)?;
    let term = term_of(formulas, &raw.id, &at)?;

    let (body, max_points) = if raw.parts.is_empty() {
        let reason = "an indicator without parts needs a rule";
        let rule = raw
            .rule
            .as_deref()
            .ok_or_else(|| at.missing("rule", reason))?;
        let measure = measure(&fields(&raw, rule), term, &at)?;
        (Body::Measure(measure), measure.max_points)
    } else {
        let reason = "an indicator with parts needs its maximum";
        let points = raw.points.ok_or_else(|| at.missing("points", reason))?;
        let points = at.points("points", points)?;
        (parts_body(&mut raw, &at)?, points)
    };
    Ok(Indicator {
        id: raw.id,
        group: raw.group,
        name_vi: raw.name_vi,
        name_en: raw.name_en,
        max_points,
        unconfirmed: raw.unconfirmed,
        source: raw.source,
        confidence,
        body,
    })
}

/// Reads the parts of an indicator, which must carry no rule or counts of its own.
fn parts_body(raw: &mut RawIndicator, at: &At<'_>) -> Result<Body, CatalogueError> {
    if let Some(rule) = &raw.rule {
        let reason = "an indicator with parts has no rule of its own; set it on each part";
        return Err(at.invalid("rule", format!("{rule:?}"), reason));
    }
    let measure_fields = [
        ("numerator", raw.numerator.is_some()),
        ("denominator", raw.denominator.is_some()),
        ("period", raw.period.is_some()),
        ("threshold", raw.threshold.is_some()),
        ("value", raw.value.is_some()),
        ("zero_denominator", raw.zero_denominator.is_some()),
    ];
    if let Some((field, _)) = measure_fields.iter().find(|(_, set)| *set) {
        let reason = "an indicator with parts has no counts or rule fields of its own; set them on each part";
        return Err(at.invalid(field, "(set)", reason));
    }
    let tables = std::mem::take(&mut raw.parts);
    let parts = entries(tables, "part", "id", at.origin, |part_raw| {
        part(part_raw, &raw.id, at.origin)
    })?;
    Ok(Body::Parts(parts))
}

fn fields<'a>(raw: &'a RawIndicator, rule: &'a str) -> MeasureFields<'a> {
    MeasureFields {
        points: raw.points,
        rule,
        numerator: raw.numerator.as_deref(),
        denominator: raw.denominator.as_deref(),
        period: raw.period.as_deref(),
        threshold: raw.threshold,
        value: raw.value,
        zero_denominator: raw.zero_denominator.as_deref(),
    }
}

fn part(raw: RawPart, indicator: &str, origin: &str) -> Result<Part, CatalogueError> {
    let at = At {
        origin,
        entry: format!("part {} of indicator {indicator}", raw.id),
    };
    let fields = MeasureFields {
        points: Some(raw.points),
        rule: &raw.rule,
        numerator: raw.numerator.as_deref(),
        denominator: raw.denominator.as_deref(),
        period: raw.period.as_deref(),
        threshold: raw.threshold,
        value: raw.value,
        zero_denominator: raw.zero_denominator.as_deref(),
    };
    if raw.rule == "formula" {
        return Err(at.invalid("rule", "\"formula\"", "a part cannot be a formula term"));
    }
    Ok(Part {
        measure: measure(&fields, None, &at)?,
        confidence: at.confidence(&raw.confidence)?,
        id: raw.id,
        name_vi: raw.name_vi,
        name_en: raw.name_en,
        source: raw.source,
    })
}
