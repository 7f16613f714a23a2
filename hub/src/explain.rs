//! The Explain call: the records behind one indicator's numerator or denominator for a unit and
//! period, checked against the caller's identity.

use chiso_proto::identity::Identity;
use chiso_proto::units::{Level, UnitCatalogue};
use chiso_proto::v1::{ExplainRequest, ExplainResponse, ExplainedRecord, FractionSide};
use chiso_proto::vntime::{Period, PeriodKind, vietnam_day};
use rusqlite::Connection;
use tonic::Status;

use crate::catalogue::Catalogue;
use crate::counters::CounterRules;
use crate::counters::explain::{Listing, UnitFilter, explain};
use crate::scores::COUNTRY_CODE;

/// Records per page when the request leaves the limit at 0.
pub const DEFAULT_LIMIT: u32 = 100;
/// Maximum records per page.
pub const MAX_LIMIT: u32 = 1_000;

/// Builds the response to a caller's Explain request as of `now` (Unix seconds).
pub fn answer(
    conn: &Connection,
    units: &UnitCatalogue,
    catalogue: &Catalogue,
    rules: &CounterRules,
    caller: &Identity,
    request: &ExplainRequest,
    now: i64,
) -> Result<ExplainResponse, Status> {
    let code = request.unit_code.as_str();
    let filter = match code {
        "" | COUNTRY_CODE => UnitFilter::Country,
        code => match units.get(code) {
            Some(unit) if matches!(unit.level, Level::Province | Level::Ministry) => {
                UnitFilter::Province(code)
            }
            Some(_) => UnitFilter::Unit(code),
            None => {
                return Err(Status::invalid_argument(format!(
                    "unit code {code:?} is not in the unit catalogue; use a province code (2 digits), a commune code (5 digits), a ministry or ministry unit code, or none for the whole country"
                )));
            }
        },
    };
    authorize(units, caller, filter)?;

    let parts = catalogue
        .indicators
        .iter()
        .find(|indicator| indicator.id == request.indicator_id)
        .and_then(|indicator| match &indicator.body {
            crate::catalogue::Body::Parts(parts) => Some(parts),
            crate::catalogue::Body::Measure(_) => None,
        });
    if let Some(parts) = parts {
        let ids: Vec<&str> = parts.iter().map(|part| part.id.as_str()).collect();
        return Err(Status::invalid_argument(format!(
            "indicator {} is the sum of its parts; explain one of them: {}",
            request.indicator_id,
            ids.join(", ")
        )));
    }
    let leaf = catalogue.leaf(&request.indicator_id).ok_or_else(|| {
        let known: Vec<&str> = catalogue.leaves().map(|leaf| leaf.id).collect();
        Status::invalid_argument(format!(
            "indicator {:?} is not in catalogue {}; known ids: {}",
            request.indicator_id,
            catalogue.version,
            known.join(", ")
        ))
    })?;
    let Some(fraction) = leaf.measure.fraction else {
        return Err(Status::failed_precondition(format!(
            "indicator {} has a fixed value and counts no records",
            leaf.id
        )));
    };
    let count = match FractionSide::try_from(request.side) {
        Ok(FractionSide::Numerator) => fraction.numerator,
        Ok(FractionSide::Denominator) => fraction.denominator,
        _ => {
            return Err(Status::invalid_argument(format!(
                "side {} is not 1 (numerator) or 2 (denominator)",
                request.side
            )));
        }
    };

    let as_of = if request.as_of > 0 {
        request.as_of
    } else {
        now
    };
    let period = if request.period.is_empty() {
        Period::of_instant(PeriodKind::Month, as_of)
    } else {
        request
            .period
            .parse::<Period>()
            .map_err(|error| Status::invalid_argument(error.to_string()))?
    };
    let as_of_day = vietnam_day(as_of);
    if period.first_day() > as_of_day {
        return Err(Status::invalid_argument(format!(
            "period {period} starts after the as-of day {as_of_day}"
        )));
    }
    let limit = match request.limit {
        0 => DEFAULT_LIMIT,
        limit if limit <= MAX_LIMIT => limit,
        limit => {
            return Err(Status::invalid_argument(format!(
                "limit {limit} is above the maximum {MAX_LIMIT} records per page"
            )));
        }
    };
    let after = parse_token(&request.page_token)?;

    let listing = Listing {
        units: filter,
        period,
        count,
        rule: fraction.period,
        as_of: as_of_day,
        after: after
            .as_ref()
            .map(|(source, key)| (source.as_str(), key.as_str())),
        limit: limit as usize,
    };
    let page = explain(conn, rules, &listing).map_err(|error| {
        tracing::error!(%error, indicator = leaf.id, "explain query failed");
        Status::internal("explain query failed")
    })?;
    Ok(ExplainResponse {
        indicator_id: leaf.id.to_string(),
        count: count.name().to_string(),
        period_rule: fraction.period.as_str().to_string(),
        period: period.to_string(),
        total: page.total,
        records: page
            .records
            .into_iter()
            .map(|record| ExplainedRecord {
                kind: record.kind.to_string(),
                source: record.source,
                key: record.key,
                unit_code: record.unit_code,
                facts: record.facts,
            })
            .collect(),
        next_page_token: page
            .next
            .map_or_else(String::new, |(source, key)| token(&source, &key)),
    })
}

/// Agents may list their own locality's units; operators any unit.
fn authorize(
    units: &UnitCatalogue,
    caller: &Identity,
    filter: UnitFilter<'_>,
) -> Result<(), Status> {
    let locality = match caller {
        Identity::Operator(_) => return Ok(()),
        Identity::Agent(locality) => locality,
    };
    let allowed = match filter {
        UnitFilter::Country => false,
        UnitFilter::Province(code) | UnitFilter::Unit(code) => units.is_within(code, locality),
    };
    if allowed {
        Ok(())
    } else {
        Err(Status::permission_denied(format!(
            "agent of locality {locality} may list only units of its own locality; ask for {locality} or one of its units"
        )))
    }
}

/// Encodes a page position as `<source length>:<source><key>`, which no key can confuse.
fn token(source: &str, key: &str) -> String {
    format!("{}:{source}{key}", source.len())
}

fn parse_token(token: &str) -> Result<Option<(String, String)>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || {
        Status::invalid_argument(
            "page_token is not one this hub returned; pass next_page_token unchanged, or empty for the first page",
        )
    };
    let (length, rest) = token.split_once(':').ok_or_else(invalid)?;
    let length: usize = length.parse().map_err(|_| invalid())?;
    if !rest.is_char_boundary(length.min(rest.len())) || length > rest.len() {
        return Err(invalid());
    }
    let (source, key) = rest.split_at(length);
    Ok(Some((source.to_string(), key.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_keys_with_separators() {
        for (source, key) in [("01", "H01/2026:5"), ("79", ""), ("01", "ư:1")] {
            let parsed = parse_token(&token(source, key)).unwrap();
            assert_eq!(parsed, Some((source.to_string(), key.to_string())));
        }
        assert!(parse_token("x").is_err());
        assert!(parse_token("9:01").is_err());
        assert_eq!(parse_token("").unwrap(), None);
    }
}
