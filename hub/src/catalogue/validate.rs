//! Checks across a catalogue's entries: unique ids, references that resolve, points that add
//! up, and bands within the total.
//!
//! Sums are compared with a tolerance of 1e-9 points, so decimal maxima such as 2.5 add up.

use std::collections::HashSet;

use super::rule::number;
use super::{Body, Catalogue, CatalogueError, Formula, Rule};

const TOLERANCE: f64 = 1e-9;

/// Checks a parsed catalogue as a whole.
pub(super) fn check(catalogue: &Catalogue, origin: &str) -> Result<(), CatalogueError> {
    check_version(catalogue, origin)?;
    check_unique(catalogue, origin)?;
    check_references(catalogue, origin)?;
    check_formulas(catalogue, origin)?;
    check_parts(catalogue, origin)?;
    check_groups(catalogue, origin)?;
    check_bands(catalogue, origin)
}

fn invalid(
    origin: &str,
    entry: String,
    field: &'static str,
    value: String,
    reason: &str,
) -> CatalogueError {
    CatalogueError::Invalid {
        origin: origin.to_string(),
        entry,
        field,
        value,
        reason: reason.to_string(),
    }
}

fn check_version(catalogue: &Catalogue, origin: &str) -> Result<(), CatalogueError> {
    let version = &catalogue.version;
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    if version.is_empty() || !version.chars().all(allowed) {
        return Err(invalid(
            origin,
            "catalogue".into(),
            "version",
            format!("{version:?}"),
            "must be non-empty and use only letters, digits, '-', '.' and '_'",
        ));
    }
    Ok(())
}

fn first_duplicate<'a>(ids: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut seen = HashSet::new();
    ids.into_iter().find(|id| !seen.insert(*id))
}

fn check_unique(catalogue: &Catalogue, origin: &str) -> Result<(), CatalogueError> {
    let duplicate = |section: &'static str, id: &str| CatalogueError::Duplicate {
        origin: origin.to_string(),
        section,
        id: id.to_string(),
    };
    if let Some(id) = first_duplicate(catalogue.groups.iter().map(|group| group.id.as_str())) {
        return Err(duplicate("group", id));
    }
    // Indicators and parts share one namespace, because what-if input names either.
    let part_ids = catalogue
        .indicators
        .iter()
        .flat_map(|indicator| match &indicator.body {
            Body::Measure(_) => Vec::new(),
            Body::Parts(parts) => parts.iter().map(|part| part.id.as_str()).collect(),
        });
    let ids = catalogue
        .indicators
        .iter()
        .map(|indicator| indicator.id.as_str())
        .chain(part_ids);
    if let Some(id) = first_duplicate(ids) {
        return Err(duplicate("indicator", id));
    }
    if let Some(id) = first_duplicate(catalogue.formulas.iter().map(|formula| formula.id.as_str()))
    {
        return Err(duplicate("formula", id));
    }
    if let Some(name) = first_duplicate(catalogue.bands.iter().map(|band| band.name.as_str())) {
        return Err(duplicate("band", name));
    }
    Ok(())
}

fn check_references(catalogue: &Catalogue, origin: &str) -> Result<(), CatalogueError> {
    let groups: Vec<&str> = catalogue
        .groups
        .iter()
        .map(|group| group.id.as_str())
        .collect();
    let known = groups.join(", ");
    for indicator in &catalogue.indicators {
        if !groups.contains(&indicator.group.as_str()) {
            return Err(invalid(
                origin,
                format!("indicator {}", indicator.id),
                "group",
                format!("{:?}", indicator.group),
                &format!("no [[groups]] entry has this id; known groups: {known}"),
            ));
        }
    }
    for formula in &catalogue.formulas {
        if !groups.contains(&formula.group.as_str()) {
            return Err(invalid(
                origin,
                format!("formula {}", formula.id),
                "group",
                format!("{:?}", formula.group),
                &format!("no [[groups]] entry has this id; known groups: {known}"),
            ));
        }
    }
    Ok(())
}

fn check_formulas(catalogue: &Catalogue, origin: &str) -> Result<(), CatalogueError> {
    let mut seen = HashSet::new();
    for formula in &catalogue.formulas {
        let entry = || format!("formula {}", formula.id);
        if !(formula.cap.is_finite() && formula.cap > 0.0) {
            let reason = "must be a number above 0";
            return Err(invalid(origin, entry(), "cap", number(formula.cap), reason));
        }
        let mut reachable = 0.0;
        for term in &formula.terms {
            if !seen.insert(term.as_str()) {
                let reason = "an indicator may be a term of one formula only, once";
                return Err(invalid(
                    origin,
                    entry(),
                    "terms",
                    format!("{term:?}"),
                    reason,
                ));
            }
            reachable += check_term(catalogue, formula, term, origin)?;
        }
        if reachable + TOLERANCE < formula.cap {
            let reason = format!(
                "the terms give at most {} points, so the cap can never be reached",
                number(reachable)
            );
            return Err(invalid(
                origin,
                entry(),
                "cap",
                number(formula.cap),
                &reason,
            ));
        }
    }
    Ok(())
}

/// Checks one term of a formula and returns the most points it gives.
fn check_term(
    catalogue: &Catalogue,
    formula: &Formula,
    term: &str,
    origin: &str,
) -> Result<f64, CatalogueError> {
    let entry = || format!("formula {}", formula.id);
    let indicator = catalogue
        .indicators
        .iter()
        .find(|indicator| indicator.id == term);
    let Some(indicator) = indicator else {
        let reason = "no indicator has this id";
        return Err(invalid(
            origin,
            entry(),
            "terms",
            format!("{term:?}"),
            reason,
        ));
    };
    if indicator.group != formula.group {
        let reason = format!(
            "the indicator is in group {}, the formula in group {}",
            indicator.group, formula.group
        );
        return Err(invalid(
            origin,
            entry(),
            "terms",
            format!("{term:?}"),
            &reason,
        ));
    }
    if let Body::Measure(measure) = &indicator.body
        && let Rule::Term { coefficient, .. } = measure.rule
        && coefficient <= 0.0
    {
        let reason = "must be above 0";
        return Err(invalid(
            origin,
            entry(),
            "coefficient",
            number(coefficient),
            reason,
        ));
    }
    Ok(indicator.max_points)
}

fn check_parts(catalogue: &Catalogue, origin: &str) -> Result<(), CatalogueError> {
    for indicator in &catalogue.indicators {
        let Body::Parts(parts) = &indicator.body else {
            continue;
        };
        let found: f64 = parts.iter().map(|part| part.measure.max_points).sum();
        if (found - indicator.max_points).abs() > TOLERANCE {
            let items = parts
                .iter()
                .map(|part| format!("{} {}", part.id, number(part.measure.max_points)))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(CatalogueError::PointsMismatch {
                origin: origin.to_string(),
                entry: format!("indicator {}", indicator.id),
                expected: indicator.max_points,
                found,
                items: format!("its parts ({items})"),
            });
        }
    }
    Ok(())
}

/// Checks that each group's points add up to its maximum, and the maxima to the total.
fn check_groups(catalogue: &Catalogue, origin: &str) -> Result<(), CatalogueError> {
    for group in &catalogue.groups {
        let (found, items) = group_points(catalogue, &group.id);
        if items.is_empty() {
            let reason = "no indicator belongs to this group";
            let entry = format!("group {}", group.id);
            return Err(invalid(
                origin,
                entry,
                "id",
                format!("{:?}", group.id),
                reason,
            ));
        }
        if (found - group.max_points).abs() > TOLERANCE {
            return Err(CatalogueError::PointsMismatch {
                origin: origin.to_string(),
                entry: format!("group {} ({})", group.id, group.name_vi),
                expected: group.max_points,
                found,
                items: format!("its indicators ({})", items.join(", ")),
            });
        }
    }

    let found: f64 = catalogue.groups.iter().map(|group| group.max_points).sum();
    if (found - catalogue.total_points).abs() > TOLERANCE {
        let items = catalogue
            .groups
            .iter()
            .map(|group| format!("{} {}", group.id, number(group.max_points)))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(CatalogueError::PointsMismatch {
            origin: origin.to_string(),
            entry: "the catalogue's total_points".to_string(),
            expected: catalogue.total_points,
            found,
            items: format!("the group maxima ({items})"),
        });
    }
    Ok(())
}

/// Returns the most points a group's entries give (plain indicators and formula caps), with a
/// description of each entry.
fn group_points(catalogue: &Catalogue, group: &str) -> (f64, Vec<String>) {
    let mut items = Vec::new();
    let mut found = 0.0;
    for indicator in catalogue.indicators_of(group) {
        if catalogue.formula_of(&indicator.id).is_none() {
            found += indicator.max_points;
            items.push(format!("{} {}", indicator.id, number(indicator.max_points)));
        }
    }
    for formula in catalogue.formulas_of(group) {
        found += formula.cap;
        items.push(format!(
            "formula {} capped at {}",
            formula.id,
            number(formula.cap)
        ));
    }
    (found, items)
}

fn check_bands(catalogue: &Catalogue, origin: &str) -> Result<(), CatalogueError> {
    let mut mins = HashSet::new();
    for band in &catalogue.bands {
        let entry = || format!("band {}", band.name);
        if band.name.trim().is_empty() {
            return Err(invalid(
                origin,
                entry(),
                "name",
                format!("{:?}", band.name),
                "must not be empty",
            ));
        }
        if band.min_points > catalogue.total_points {
            let reason = format!(
                "must not exceed total_points = {}",
                number(catalogue.total_points)
            );
            return Err(invalid(
                origin,
                entry(),
                "min",
                number(band.min_points),
                &reason,
            ));
        }
        if !mins.insert(band.min_points.to_bits()) {
            return Err(invalid(
                origin,
                entry(),
                "min",
                number(band.min_points),
                "another band has the same minimum",
            ));
        }
    }
    Ok(())
}
