//! The locality's scorecard: fetched from the hub, printed as a table, and written as JSON for
//! the local portal. JSON files are written to a temporary name and renamed, so a reader never
//! sees half a file.

use chiso_proto::v1::scores_client::ScoresClient;
use chiso_proto::v1::{GetScoresRequest, GetScoresResponse, GroupScore, IndicatorScore, UnitScore};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::Path;
use tonic::transport::Channel;

/// Fetches the scorecard of a unit (empty code: the whole country) and its direct children.
pub async fn fetch(
    channel: Channel,
    unit_code: &str,
    period: &str,
    as_of: i64,
) -> Result<GetScoresResponse, tonic::Status> {
    let mut client = ScoresClient::new(channel);
    let request = GetScoresRequest {
        unit_code: unit_code.to_string(),
        period: period.to_string(),
        include_children: true,
        as_of,
    };
    Ok(client.get_scores(request).await?.into_inner())
}

/// Formats a score to two decimals, as the national portal shows it; "n/a" when not assessed.
pub fn display_points(points: Option<f64>) -> String {
    points.map_or_else(|| "n/a".to_string(), |points| format!("{points:.2}"))
}

fn display_rate(indicator: &IndicatorScore) -> String {
    indicator
        .rate
        .map_or_else(|| "n/a".to_string(), |rate| format!("{:.2}%", rate * 100.0))
}

/// Renders a scorecard as a fixed-width table: one row per unit with a column per group, the
/// total, band and rank, then each indicator of the first unit with its counts.
pub fn render_table(response: &GetScoresResponse) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Period {} | catalogue {} | units {}",
        response.period, response.catalogue_version, response.unit_catalogue_version
    );
    let header = render_header(response);
    let _ = writeln!(out, "{header}");
    let _ = writeln!(out, "{}", "-".repeat(header.chars().count()));

    for unit in &response.units {
        let _ = writeln!(out, "{}", render_row(unit));
    }
    if let Some(first) = response.units.first() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Indicators of {} {}:",
            first.unit_code, first.unit_name
        );
        for indicator in &first.indicators {
            render_indicator(&mut out, indicator, "  ");
        }
    }
    let _ = writeln!(
        out,
        "Scores to two decimals; a cell is points (numerator/denominator, rate); n/a = not assessed."
    );
    if !response.unconfirmed_indicators.is_empty() {
        let _ = writeln!(
            out,
            "* unconfirmed rule, no public source confirms it: {}",
            response.unconfirmed_indicators.join(", ")
        );
    }
    out
}

fn render_header(response: &GetScoresResponse) -> String {
    let groups = response
        .units
        .first()
        .map(|unit| unit.groups.as_slice())
        .unwrap_or_default();
    let mut header = format!("{:<7} {:<34}", "code", "unit");
    for group in groups {
        let flag = if group.unconfirmed { "*" } else { "" };
        let column = format!("{}{flag}/{:.0}", group.id, group.max_points);
        let _ = write!(header, " {column:>9}");
    }
    let total = format!("total/{:.0}", response.catalogue_max_points);
    let _ = write!(header, " {total:>10} {:<10} {:>7}", "band", "rank");
    header
}

fn render_row(unit: &UnitScore) -> String {
    let name: String = unit.unit_name.chars().take(34).collect();
    let mut row = format!("{:<7} {:<34}", unit.unit_code, name);
    for group in &unit.groups {
        let points = if group.assessed {
            Some(group.points)
        } else {
            None
        };
        let _ = write!(row, " {:>9}", display_points(points));
    }
    let rank = if unit.rank > 0 {
        format!("{}/{}", unit.rank, unit.rank_of)
    } else {
        "-".to_string()
    };
    let band = if unit.band.is_empty() {
        "-"
    } else {
        unit.band.as_str()
    };
    let _ = write!(row, " {:>10.2} {band:<10} {rank:>7}", unit.points);
    row
}

fn render_indicator(out: &mut String, indicator: &IndicatorScore, indent: &str) {
    let flag = if indicator.unconfirmed { " *" } else { "" };
    let cell = if indicator.parts.is_empty() {
        format!(
            "{} ({}/{}, {})",
            display_points(indicator.points),
            indicator.numerator,
            indicator.denominator,
            display_rate(indicator)
        )
    } else {
        display_points(indicator.points)
    };
    let id = format!("{indent}{}{flag}", indicator.id);
    let _ = write!(
        out,
        "{id:<40} {cell:>30} of {:<5.2} {}",
        indicator.max_points, indicator.rule
    );
    if !indicator.note.is_empty() {
        let _ = write!(out, "; {}", indicator.note);
    }
    let _ = writeln!(out);
    for part in &indicator.parts {
        render_indicator(out, part, &format!("{indent}  "));
    }
}

fn indicator_json(indicator: &IndicatorScore) -> Value {
    let parts: Vec<Value> = indicator.parts.iter().map(indicator_json).collect();
    json!({
        "id": indicator.id,
        "name": indicator.name,
        "group": indicator.group,
        "numerator": indicator.numerator,
        "denominator": indicator.denominator,
        "rate": indicator.rate,
        "points": indicator.points,
        "max_points": indicator.max_points,
        "assessed": indicator.assessed,
        "rule": indicator.rule,
        "period_rule": indicator.period_rule,
        "unconfirmed": indicator.unconfirmed,
        "note": indicator.note,
        "parts": parts,
    })
}

fn group_json(group: &GroupScore) -> Value {
    json!({
        "id": group.id,
        "name": group.name,
        "points": group.points,
        "max_points": group.max_points,
        "assessed_max_points": group.assessed_max_points,
        "assessed": group.assessed,
        "formula": group.formula,
        "unconfirmed": group.unconfirmed,
    })
}

/// Converts a scorecard to JSON, keeping full precision and `null` for "not assessed".
pub fn to_json(response: &GetScoresResponse) -> Value {
    let units: Vec<Value> = response
        .units
        .iter()
        .map(|unit| {
            json!({
                "unit_code": unit.unit_code,
                "unit_name": unit.unit_name,
                "level": unit.level,
                "points": unit.points,
                "max_points": unit.max_points,
                "band": unit.band,
                "rank": unit.rank,
                "rank_of": unit.rank_of,
                "groups": unit.groups.iter().map(group_json).collect::<Vec<_>>(),
                "indicators": unit.indicators.iter().map(indicator_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    let bands: Vec<Value> = response
        .bands
        .iter()
        .map(|band| json!({"name": band.name, "min_points": band.min_points}))
        .collect();
    json!({
        "period": response.period,
        "catalogue_version": response.catalogue_version,
        "catalogue_max_points": response.catalogue_max_points,
        "bands": bands,
        "unconfirmed_indicators": response.unconfirmed_indicators,
        "unit_catalogue_version": response.unit_catalogue_version,
        "computed_at_unix_ms": response.computed_at_unix_ms,
        "units": units,
    })
}

/// Writes the scorecard JSON atomically: a temporary file in the same folder, then a rename.
pub fn write_json(response: &GetScoresResponse, path: &Path) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(&to_json(response)).map_err(std::io::Error::other)?;
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)?;
    }
    let temporary = path.with_extension("json.tmp");
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path)
}

/// Fetches one page of the records behind an indicator's numerator or denominator.
pub async fn fetch_explain(
    channel: Channel,
    request: chiso_proto::v1::ExplainRequest,
) -> Result<chiso_proto::v1::ExplainResponse, tonic::Status> {
    let mut client = ScoresClient::new(channel);
    Ok(client.explain(request).await?.into_inner())
}

/// Renders one page of an Explain answer: a header with the total, then one line per record
/// with its facts in name order.
pub fn render_explain(response: &chiso_proto::v1::ExplainResponse) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {} ({}, {}): {} records",
        response.indicator_id,
        response.count,
        response.period_rule,
        response.period,
        response.total
    );
    for record in &response.records {
        let mut facts: Vec<_> = record.facts.iter().collect();
        facts.sort();
        let facts: Vec<String> = facts
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let _ = writeln!(
            out,
            "{} {} {} unit {}: {}",
            record.kind,
            record.source,
            record.key.escape_debug(),
            record.unit_code,
            facts.join(" ")
        );
    }
    if !response.next_page_token.is_empty() {
        let _ = writeln!(
            out,
            "next page: --page-token '{}'",
            response.next_page_token
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> GetScoresResponse {
        GetScoresResponse {
            catalogue_version: "test".into(),
            period: "2026-10".into(),
            units: vec![UnitScore {
                unit_code: "01".into(),
                unit_name: "Thành phố Hà Nội".into(),
                level: "province".into(),
                indicators: vec![
                    IndicatorScore {
                        id: "DOSSIER_ON_TIME".into(),
                        numerator: 156,
                        denominator: 161,
                        rate: Some(156.0 / 161.0),
                        points: Some(20.0 * 156.0 / 161.0),
                        max_points: 20.0,
                        assessed: true,
                        ..IndicatorScore::default()
                    },
                    IndicatorScore {
                        id: "ONLINE_FILING".into(),
                        max_points: 6.0,
                        ..IndicatorScore::default()
                    },
                ],
                points: 20.0 * 156.0 / 161.0,
                max_points: 20.0,
                ..UnitScore::default()
            }],
            ..GetScoresResponse::default()
        }
    }

    #[test]
    fn table_shows_two_decimals_and_not_assessed() {
        let table = render_table(&sample());
        assert!(table.contains("19.38 (156/161, 96.89%)"), "{table}");
        assert!(table.contains("n/a (0/0, n/a)"), "{table}");
    }

    #[test]
    fn json_keeps_full_precision_and_null() {
        let value = to_json(&sample());
        let indicators = &value["units"][0]["indicators"];
        assert_eq!(indicators[0]["points"].as_f64(), Some(20.0 * 156.0 / 161.0));
        assert!(indicators[1]["points"].is_null());
        assert_eq!(indicators[1]["assessed"], Value::Bool(false));
    }

    fn with_groups() -> GetScoresResponse {
        let mut response = sample();
        response.catalogue_max_points = 100.0;
        response.unconfirmed_indicators = vec!["ONLINE_SERVICE".into()];
        let unit = &mut response.units[0];
        unit.band = "Yếu".into();
        unit.rank = 3;
        unit.rank_of = 34;
        unit.groups = vec![
            GroupScore {
                id: "2".into(),
                points: 20.0 * 156.0 / 161.0,
                max_points: 20.0,
                assessed: true,
                ..GroupScore::default()
            },
            GroupScore {
                id: "3".into(),
                max_points: 12.0,
                unconfirmed: true,
                ..GroupScore::default()
            },
        ];
        let online = unit.indicators.remove(1);
        unit.indicators.push(IndicatorScore {
            id: "ONLINE_SERVICE".into(),
            max_points: 12.0,
            unconfirmed: true,
            rule: "sum of parts".into(),
            parts: vec![online],
            ..IndicatorScore::default()
        });
        response
    }

    #[test]
    fn table_shows_groups_rank_and_parts() {
        let table = render_table(&with_groups());
        assert!(table.contains("3*/12"), "{table}");
        assert!(table.contains("total/100"), "{table}");
        assert!(
            table.contains("19.38       n/a      19.38 Yếu           3/34"),
            "{table}"
        );
        assert!(table.contains("  ONLINE_SERVICE *"), "{table}");
        assert!(table.contains("    ONLINE_FILING"), "{table}");
        assert!(
            table.contains("unconfirmed rule, no public source confirms it: ONLINE_SERVICE"),
            "{table}"
        );
    }

    #[test]
    fn json_nests_parts_and_groups() {
        let value = to_json(&with_groups());
        let unit = &value["units"][0];
        assert_eq!(unit["rank"], 3);
        assert_eq!(unit["band"], "Yếu");
        assert_eq!(
            unit["groups"][0]["points"].as_f64(),
            Some(20.0 * 156.0 / 161.0)
        );
        assert_eq!(unit["indicators"][1]["parts"][0]["id"], "ONLINE_FILING");
        assert_eq!(unit["indicators"][1]["unconfirmed"], Value::Bool(true));
        assert_eq!(value["unconfirmed_indicators"][0], "ONLINE_SERVICE");
    }

    #[test]
    fn json_file_is_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portal/scores.json");
        write_json(&sample(), &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["period"], "2026-10");
        assert!(!dir.path().join("portal/scores.json.tmp").exists());
    }
}
